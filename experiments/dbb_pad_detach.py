"""How much does repsr's DBB differ from the DBB release by not detaching the border padding value?

The release pads the 1x1 stage's output with its bias *detached*; repsr keeps it attached, so its
gradient is the true gradient of the block's function (and equals the merged-kernel training's).
This script measures the difference where it acts -- the gradients -- on a trained DBB M4C16 x4
net (a study run's ``model_latest.safetensors``; else a fresh net with the default init) and
real training patches (T91, never the test sets):

    python experiments/dbb_pad_detach.py [runs/study-fair-m4c16-x4/dbb_s0/model_latest.safetensors]

Printed: per parameter, the gradient norms both ways and of their difference, and the relative
difference and cosine of the whole-network gradients. Before the BN switch only: afterwards training runs the merged
kernel, whose gradient is the attached one in both implementations' sense.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from repsr.config import ModelConfig
from repsr.models import build_model
from repsr.reparam import kernel as K
from repsr.weights import load_model

TRAIN = Path("../shared/data/T91")


def patches(scale: int, count: int = 16, lr: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """HR crops of T91 and their LR (area downscale: the gradient comparison needs no MATLAB bicubic)."""
    rng = np.random.default_rng(seed)
    files = sorted(p for p in TRAIN.rglob("*.png"))
    size = lr * scale
    hr = []
    while len(hr) < count:
        img = np.asarray(Image.open(files[rng.integers(len(files))]).convert("RGB"), dtype=np.float32) / 255
        if min(img.shape[:2]) < size:
            continue
        y, x = rng.integers(img.shape[0] - size + 1), rng.integers(img.shape[1] - size + 1)
        hr.append(torch.from_numpy(img[y : y + size, x : x + size]).permute(2, 0, 1))
    hr_t = torch.stack(hr)
    return F.avg_pool2d(hr_t, scale), hr_t


def gradients(model: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    F.l1_loss(model(lr), hr).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if path and path.is_file():
        model = load_model(path)
        print(f"trained net: {path}")
    else:
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch="dbb", scale=4, zero_init_tail=False))
        print("fresh DBB M4C16 x4 (default init: a zeroed tail would leave the inner gradients zero)")
    model.train()  # batch statistics: the phase in which the two padding choices differ
    lr, hr = patches(model.config.scale)
    attached = gradients(model, lr, hr)
    original = K.BiasPad.forward
    K.BiasPad.forward = lambda self, x, value: original(self, x, value.detach())
    try:
        detached = gradients(model, lr, hr)
    finally:
        K.BiasPad.forward = original
    flat_a = torch.cat([g.flatten() for g in attached.values()])
    flat_d = torch.cat([detached[n].flatten() for n in attached])
    changed = 0
    for name in attached:
        a, d = attached[name].norm().item(), detached[name].norm().item()
        diff = (attached[name] - detached[name]).norm().item()
        if diff > 0:
            changed += 1
            print(f"  {name:52s} |g| attached {a:.2e}  detached {d:.2e}  |difference| {diff:.2e}")
    print(f"parameters whose gradient changes: {changed} of {len(attached)}")
    cos = F.cosine_similarity(flat_a, flat_d, dim=0).item()
    print(f"whole-network gradient: relative difference {(flat_a - flat_d).norm() / flat_a.norm():.2e}, "
          f"cosine {min(cos, 1.0):.6f}")


if __name__ == "__main__":
    main()
