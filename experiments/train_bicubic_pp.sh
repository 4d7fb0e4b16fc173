#!/usr/bin/env bash
# Train repsr's own Bicubic++ (issue #25): the three-stage pipeline at a real budget, plus the control that
# shows whether pruning earns its place (the final 32/32 bias-free shape trained from scratch for the same
# total iterations). Run from the repository root with ../shared/data present; every stage resumes.
#
#   experiments/train_bicubic_pp.sh stage1 [--resume]   # wide 40/40 net with biases, NTIRE LR
#   experiments/train_bicubic_pp.sh scratch [--resume]  # control: 32/32, no bias, from scratch, TOTAL iterations
#   experiments/train_bicubic_pp.sh stage2 [--resume]   # global pruning 40 -> 32 by measured PSNR, fine-tune
#   experiments/train_bicubic_pp.sh stage3 [--resume]   # biases dropped, fine-tune (the shipped net)
#   DEGRADATION=bicubic experiments/train_bicubic_pp.sh leg   # a short leg of the shipped net (or LEG_INIT) on
#                                                       # one LR kind (bicubic, ntire = control, mixed = both)
#
# Recipe (SPEC section 3, official stage 1 where it is known): MSE, Adam 5e-4 cosine to 5e-6, batch 16,
# LR patch 64 (100k iterations = 0.9x the LR patch pixels of the official stage 1: 1000 epochs x 800 x 96^2),
# all 8 flips/rotations, NTIRE degradation (Pillow bicubic down, JPEG q90). Data: the five training sets
# of ../shared/data minus the 20 held-out images (experiments/holdout_split.py), the same split as the
# shipped M4C16 nets; validation on the held-out images only (never Set5/Set14/B100).
# THREADS=1 when two jobs share the two cores (stage1 and scratch ran side by side), 2 on a quiet machine.
set -euo pipefail
stage=${1:?usage: $0 stage1|scratch|stage2|stage3|leg [--resume]}
scale=${SCALE:-3}
threads=${THREADS:-1}
stage1_iters=${STAGE1_ITERS:-100000}
ft_iters=${FT_ITERS:-20000}       # each of stage 2 and stage 3
total=$((stage1_iters + 2 * ft_iters))
python experiments/holdout_split.py >/dev/null
train_sets='[runs/data/train/T91,runs/data/train/BSD200,runs/data/train/BSD200test,runs/data/train/DIV2K100LR,runs/data/train/RealSR16]'
root=runs/bpp/x$scale
mkdir -p "$root"
common=(model.scale="$scale" train.batch_size=16 train.patch_size=64 train.threads="$threads"
        train.val_every=5000 train.ckpt_every=1000 train.log_every=500 "data.train=$train_sets"
        "data.val=[runs/data/holdout]" data.val_max_images=null)
prune_val=(--data runs/data/holdout --val-images 20 --val-crop 96)
case $stage in
  stage1)
    repsr train configs/bicubic_pp_stage1.yaml "${@:2}" --set "${common[@]}" model.channels=40 model.bias=true \
      train.iters="$stage1_iters" train.lr=5e-4 output="$root/stage1" 2>&1 | tee -a "$root/stage1.log" ;;
  scratch)
    repsr train configs/bicubic_pp_stage1.yaml "${@:2}" --set "${common[@]}" model.channels=32 model.bias=false \
      train.iters="$total" train.lr=5e-4 seed=1 output="$root/scratch" 2>&1 | tee -a "$root/scratch.log" ;;
  stage2)
    repsr prune "$root/stage1/model_latest.safetensors" "${prune_val[@]}" --target-channels 32 --per-round 2 \
      --finetune-iters 30 --finetune-config configs/bicubic_pp_stage2.yaml \
      --set "${common[@]}" train.iters="$ft_iters" train.lr=1e-4 output="$root/stage2_ft" \
      -o "$root/stage2.safetensors" "${@:2}" 2>&1 | tee -a "$root/stage2.log" ;;
  stage3)
    repsr prune "$root/stage2.safetensors" "${prune_val[@]}" --target-channels 32 --drop-bias \
      --finetune-config configs/bicubic_pp_stage3.yaml \
      --set "${common[@]}" train.iters="$ft_iters" train.lr=1e-4 output="$root/stage3_ft" \
      -o "$root/stage3.safetensors" "${@:2}" 2>&1 | tee -a "$root/stage3.log" ;;
  leg)
    deg=${DEGRADATION:?set DEGRADATION=bicubic, ntire or mixed}
    repsr train configs/bicubic_pp_stage3.yaml "${@:2}" --set "${common[@]}" model.channels=32 model.bias=false \
      data.degradation="$deg" train.init_weights="${LEG_INIT:-src/repsr/pretrained/repsr-bicubicpp-x$scale.safetensors}" \
      train.iters="${LEG_ITERS:-5000}" train.lr=2e-5 train.val_every=1000 seed=5 output="$root/leg_$deg" \
      2>&1 | tee -a "$root/leg_$deg.log" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
