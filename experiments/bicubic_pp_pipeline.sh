#!/bin/bash
# Bicubic++ three-stage pipeline as run for docs/bicubic_pp.md ("Second run"): stage 1 trains the wide net
# with biases, stage 2 prunes globally to 32 channels by measured validation PSNR and fine-tunes, stage 3
# drops the biases and fine-tunes. Needs ../shared/data (T91, BSD200, Set14); run from the repository root.
# Since the rounds became trainer runs, they share the stage config (patch 64 below; the recorded run
# fine-tuned its rounds on patches of 32 at a linearly decayed lr 1e-4).
# Evaluate each stage: repsr ntire WEIGHTS --data ../shared/data/B100 --methods model
set -e
repsr train configs/bicubic_pp_stage1.yaml --set train.iters=10000 train.patch_size=64 train.val_every=2000 \
  train.ckpt_every=1000 train.threads=2 output=runs/bpp_long_stage1
repsr prune runs/bpp_long_stage1/model_latest.safetensors \
  --data ../shared/data/Set14 --val-images 14 --val-crop 80 --target-channels 32 --per-round 2 \
  --finetune-iters 30 --finetune-config configs/bicubic_pp_stage2.yaml \
  --set train.iters=1000 train.patch_size=64 train.threads=2 output=runs/bpp_long_stage2_ft \
  -o runs/bpp_long_stage2.safetensors
repsr prune runs/bpp_long_stage2.safetensors \
  --data ../shared/data/Set14 --val-images 14 --val-crop 80 --target-channels 32 \
  --drop-bias --finetune-config configs/bicubic_pp_stage3.yaml \
  --set train.iters=1500 train.patch_size=64 train.threads=2 output=runs/bpp_long_stage3_ft \
  -o runs/bpp_long_stage3.safetensors
