#!/usr/bin/env bash
# One fine-tune leg of a shipped M4C16 net (issue 28), started from its committed checkpoint's weights
# with a fresh optimiser and cosine schedule, validated on the 20 held-out images and the structure-rich
# split (experiments/leg_data.py; neither is trained on), then evaluated next to the peer.
#   SCALE=2 DATA=leg_clean EMA=0.999 ITERS=30000 LR=1e-4 experiments/shipped_leg.sh NAME [--resume]
# DATA: leg (the training images as they are) | leg_clean (JPEG-sourced images halved); EMA: a decay or
# null; PAGES=N adds N rendered training pages of each of the 6 kinds (runs/data/pages-N); DOWNSCALED=F adds
# the leg_clean images shrunk by F (runs/data/downscaled-F, multi-scale augmentation). BN stays
# frozen as the checkpoint left it (bn_switch null). Outputs: runs/legs/NAME.
set -euo pipefail
name=${1:?usage: SCALE=S [DATA=leg|leg_clean] [EMA=0.999|null] [ITERS=N] [LR=x] $0 NAME [--resume]}
scale=${SCALE:?set SCALE}
data=${DATA:-leg}
ema=${EMA:-0.999}
iters=${ITERS:-30000}
lr=${LR:-1e-4}
threads=${THREADS:-2}
pages=${PAGES:-0}
downscaled=${DOWNSCALED:-0}
declare -A version=([2]=5 [3]=4 [4]=5)
ckpt=experiments/checkpoints/repsr-m4c16-x$scale-v${version[$scale]}/latest.pt
init=runs/legs/init-x$scale.safetensors
mkdir -p runs/legs
python experiments/holdout_split.py >/dev/null
python experiments/leg_data.py --train-pages "$pages" --downscaled "$downscaled" >/dev/null
if [ ! -f "$init" ]; then  # the training graph (BN frozen) of the committed checkpoint
  python - "$ckpt" "$init" <<'PY'
import sys

from repsr.models import build_model
from repsr.train.checkpoint import load_checkpoint
from repsr.train.config import config_from_json
from repsr.weights import save_model

state = load_checkpoint(sys.argv[1])
model = build_model(config_from_json(state["config"], sys.argv[1]).model)
model.load_state_dict(state["model"])
save_model(model, sys.argv[2])
PY
fi
val="[runs/data/holdout,runs/data/structure]"
sets="[runs/data/$data/T91,runs/data/$data/BSD200,runs/data/$data/BSD200test,runs/data/$data/DIV2K100LR,runs/data/$data/RealSR16"
if [ "$pages" != 0 ]; then sets="$sets,runs/data/pages-$pages"; fi
if [ "$downscaled" != 0 ]; then sets="$sets,runs/data/downscaled-$downscaled"; fi
sets="$sets]"
repsr train configs/repsr.yaml "${@:2}" --set model.scale="$scale" train.init_weights="$init" train.bn_switch=null \
  train.iters="$iters" train.batch_size=16 train.patch_size=48 train.lr="$lr" train.ema="$ema" \
  train.threads="$threads" train.val_every=2500 train.ckpt_every=1000 train.log_every=500 "data.train=$sets" \
  "data.val=$val" optim.loss=mse optim.schedule=cosine optim.min_lr=1e-6 output="runs/legs/$name" \
  2>&1 | tee -a "runs/legs/$name.log"
repsr eval --model "runs/legs/$name/model_merged.safetensors" "repsr-m4c16-x$scale" \
  "../shared/peers/etds_ecbsr_m4c16_x$scale.pth" --scale "$scale" --data ../shared/data/Set5 ../shared/data/Set14 \
  ../shared/data/B100 runs/data/holdout runs/data/structure runs/data/synthetic 2>&1 | tee -a "runs/legs/$name.log"
