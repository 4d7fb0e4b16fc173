#!/usr/bin/env bash
# Short runs (RepSR M4C16 x4, 3,000 iterations) that fix the shipped-model recipe (docs/models.md):
#   amp_bf16 vs amp_fp32: bf16 autocast must not change what is learned (docs/training.md);
#   amp_bf16 vs area_bf16: patch sampling per image or per area, chosen on held-out training images.
# One job at a time, one torch thread (other work shared the two cores). Run from the repository root with ../shared/data present.
set -euo pipefail
python experiments/holdout_split.py
train_sets='[runs/data/train/T91,runs/data/train/BSD200,runs/data/train/BSD200test,runs/data/train/DIV2K100LR,runs/data/train/RealSR16]'
common=(model.scale=4 train.iters=3000 train.batch_size=16 train.patch_size=48 train.lr=5e-4 train.bn_switch=0.5
        train.bn_calib_batches=50 train.threads=1 train.val_every=1000 train.ckpt_every=500 train.log_every=250
        "data.train=$train_sets" 'data.val=[runs/data/holdout]')
run() {  # name overrides...
  repsr train configs/repsr.yaml --set "${common[@]}" "${@:2}" output=runs/recipe/"$1" > runs/recipe-"$1".log 2>&1
}
mkdir -p runs/recipe
run amp_bf16 train.amp=bf16
run amp_fp32 train.amp=false
run area_bf16 train.amp=bf16 data.sampling=area
for name in amp_bf16 amp_fp32 area_bf16; do
  repsr merge runs/recipe/$name/model_latest.safetensors -o runs/recipe/$name.safetensors
done
repsr eval --model runs/recipe/amp_bf16.safetensors runs/recipe/amp_fp32.safetensors runs/recipe/area_bf16.safetensors \
  --data ../shared/data/Set5 ../shared/data/Set14 ../shared/data/B100 runs/data/holdout --json > runs/recipe/eval.json || \
for name in amp_bf16 amp_fp32 area_bf16; do
  repsr eval --model runs/recipe/$name.safetensors --data ../shared/data/Set5 ../shared/data/Set14 ../shared/data/B100 runs/data/holdout
done
