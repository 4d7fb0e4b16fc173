#!/usr/bin/env bash
# Regenerate every number of docs/results.md (issue 7) from the repository root, with
# ../shared/data present. Finished variants are reused (runs/study-m4c16-x4/<variant>/result.json);
# delete that folder to retrain from scratch. Two processes keep both cores of a 2-core CPU busy.
set -euo pipefail
export OMP_NUM_THREADS=1
blocks=experiments/blocks_m4c16_x4.yaml
ablation=experiments/switch_ablation_m4c16_x4.yaml
repsr study $blocks --only plain plain_bn plain_bn_switch repvgg acb &
repsr study $blocks --only dbb ecbsr repsr &
wait
repsr study $ablation --only repsr_switch0.5 repsr_switch0.7 repsr_switch0.9 &
repsr study $ablation --only repsr_switch0.95 repsr_switch0.8_running repsr_no_switch &
wait
# full runs: nothing left to train; side-by-side step costs, reference rows, BN-artifact crops, reports
repsr study $blocks
repsr study $ablation
