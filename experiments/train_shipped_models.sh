#!/usr/bin/env bash
# Train, merge and evaluate the shipped RepSR M4C16 models and, with CHANNELS=32, the wider M4C32 tier
# (docs/models.md has the record of what was run, when and on what: legs 1-2 = ITERS=25000/20000/40000 for x2/x3/x4, then --resume with ITERS=125000/80000/110000;
# v4 adds leg 3: LOSS=mse, --resume with ITERS=260000/150000/200000; x3's with THREADS=2; v5 adds leg 4 for
# x2 and x4: LOSS=mse, --resume with ITERS=420000/-/300000). Run from the repository root with ../shared/data present.
#   experiments/train_shipped_models.sh 4        # one scale (x4 first, then 3 and 2)
#   experiments/train_shipped_models.sh 4 --resume   # continue an interrupted run from its checkpoint
#   LOSS=mse ITERS=200000 experiments/train_shipped_models.sh 4 --resume   # a further leg, MSE loss
#   CHANNELS=32 experiments/train_shipped_models.sh 4   # the wider tier, repsr-m4c32-x4 (issue 28, item 3)
# Recipe, chosen on held-out *training* images (experiments/holdout_split.py; experiments/recipe_check*.sh):
#   all five training sets minus the 20 held-out images, per-image sampling (area sampling: -0.036 dB),
#   batch 16, LR patch 48, Adam 5e-4 cosine to 1e-6, L1, tail zero-init (default), BN switch at 0.25
#   (at equal iterations as good as 0.5 on the held-out images, 25.299 vs 25.294 dB, and the merged steps
#   after it cost a third), bf16 autocast (amp: auto; fp32 and bf16 runs ended within 0.001 dB),
#   merged-kernel forward after the switch, no EMA. One job at a time; 1 torch thread while other work
#   shares the two cores (set THREADS=2 on a quiet machine).
set -euo pipefail
scale=${1:?usage: $0 SCALE [--resume]}
iters=${ITERS:-40000}
threads=${THREADS:-1}
loss=${LOSS:-l1}
channels=${CHANNELS:-16}
name=repsr-m4c$channels-x$scale
python experiments/holdout_split.py
train_sets='[runs/data/train/T91,runs/data/train/BSD200,runs/data/train/BSD200test,runs/data/train/DIV2K100LR,runs/data/train/RealSR16]'
run=runs/ship/$name
mkdir -p runs/ship
repsr train configs/repsr.yaml "${@:2}" --set model.scale="$scale" model.channels="$channels" train.iters="$iters" train.batch_size=16 \
  train.patch_size=48 train.lr=5e-4 train.bn_switch=0.25 train.bn_calib_batches=100 train.threads="$threads" \
  train.val_every=2500 train.ckpt_every=1000 train.log_every=500 "data.train=$train_sets" \
  "data.val=[runs/data/holdout]" optim.loss="$loss" output="$run" 2>&1 | tee -a "runs/ship-$name.log"
# the final weights (BN frozen), never the validation-selected "best" ones
repsr merge "$run/model_latest.safetensors" -o "src/repsr/pretrained/$name.safetensors" --check
repsr eval --model "$name" "../shared/peers/etds_ecbsr_m4c${channels}_x$scale.pth" bicubic --scale "$scale" \
  --data ../shared/data/Set5 ../shared/data/Set14 ../shared/data/B100 runs/data/holdout
