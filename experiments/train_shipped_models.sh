#!/usr/bin/env bash
# Train, merge and evaluate the shipped RepSR M4C16 models (x2, x3, x4) exactly as they were made
# (see docs/models.md). Run from the repository root with ../shared/data present.
# Phase 1: the three runs side by side, one torch thread each, on the project's 2-core CPU.
# Phase 2 (x3, x4): resume the finished run with more iterations (a warm restart of the cosine
# schedule; BN stays frozen since the phase-1 switch).
set -euo pipefail
# model.zero_init_tail=false: the shipped nets were trained before the tail zero-init became the default
common=(model.zero_init_tail=false train.batch_size=16 train.patch_size=32 train.lr=5e-4 train.bn_calib_batches=50 train.val_every=1000
        train.ckpt_every=250 train.log_every=50 'data.val=[../shared/data/Set5]')
export OMP_NUM_THREADS=1
train() {  # scale iters [--resume]
  repsr train configs/repsr.yaml "${@:3}" --set model.scale="$1" train.iters="$2" "${common[@]}" \
    output=runs/ship/repsr-m4c16-x"$1"
}
train 4 4000 > runs/ship-x4.log 2>&1 &
train 3 3000 > runs/ship-x3.log 2>&1 &
train 2 3000 > runs/ship-x2.log 2>&1 &
wait
train 3 6000 --resume > runs/ship-x3-phase2.log 2>&1 &
train 4 9000 --resume > runs/ship-x4-phase2.log 2>&1 &
wait
for s in 2 3 4; do
  # the final weights (BN frozen), never the Set5-selected "best" ones
  repsr merge runs/ship/repsr-m4c16-x$s/model_latest.safetensors -o src/repsr/pretrained/repsr-m4c16-x$s.safetensors --check
  repsr eval --model repsr-m4c16-x$s --data ../shared/data/Set5 ../shared/data/Set14 ../shared/data/B100
done
