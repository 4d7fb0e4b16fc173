#!/usr/bin/env bash
# Train, merge and evaluate the shipped RepSR M4C16 models (x2, x3, x4) exactly as they were made
# for repsr 0.1.0 (see docs/models.md). Run from the repository root with ../shared/data present.
# The three runs were started side by side, one torch thread each, on the project's 2-core CPU.
set -euo pipefail
for s in 4 3 2; do
  iters=3000; [ "$s" = 4 ] && iters=4000
  OMP_NUM_THREADS=1 repsr train configs/repsr.yaml --set model.scale=$s train.iters=$iters \
    train.batch_size=16 train.patch_size=32 train.lr=5e-4 train.bn_calib_batches=50 \
    train.val_every=1000 train.ckpt_every=250 train.log_every=50 'data.val=[../shared/data/Set5]' \
    output=runs/ship/repsr-m4c16-x$s > runs/ship-x$s.log 2>&1 &
done
wait
for s in 2 3 4; do
  # the final weights (BN switched at 80% and frozen), never the Set5-selected "best" ones
  repsr merge runs/ship/repsr-m4c16-x$s/model_latest.safetensors -o src/repsr/pretrained/repsr-m4c16-x$s.safetensors --check
  repsr eval --model repsr-m4c16-x$s --data ../shared/data/Set5 ../shared/data/Set14 ../shared/data/B100 --json --quiet
done
