"""720p -> 4K (x3) with Bicubic++ on the CPU, every path timed in one interleaved run (docs/bicubic_pp.md).

Usage: PYTHONPATH=src python experiments/bicubic_pp_speed.py [WEIGHTS] [REPS] [THREADS]
Rows: PyTorch NCHW; channels_last with PixelShuffle (what BicubicPP does) and with conv_out's
outputs reordered from (c, i, j) to (i, j, c) so that the shuffle of an NHWC tensor is a copy of
contiguous 18-float runs (the candidate of issue 14, not shipped: it measured no faster);
onnxruntime fp32 with DepthToSpace CRD (PyTorch's order) and with the reordered conv_out + DCR
(what export_onnx writes since this measurement); OpenCV INTER_CUBIC on uint8 and float32.
Rounds are interleaved (each round runs every row once) so load from other jobs hits all rows
alike. Both reorderings are checked to give equal output.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from repsr.export.onnx import export_onnx
from repsr.inference.engines.onnxruntime import OnnxUpscaler
from repsr.weights import load_model

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "bicubic_pp_x3.pth"


def reordered_shuffle(model, x):
    """BicubicPP's forward (even sizes) with conv_out reordered to (i, j, c) and the shuffle as a run copy.

    conv_out runs with output channel ``(i * r + j) * C + c`` taking the official channel
    ``c * r * r + i * r + j``; its NHWC result, viewed as (N, H, W, i, j * C + c), is copied to
    (N, H, i, W, j * C + c), which *is* the NHWC memory of the (N, C, rH, rW) output.
    """
    x0 = model.act(model.conv0(x))
    y = model.act(model.conv2(model.act(model.conv1(x0)))) + x0
    r, c = model.shuffle.upscale_factor, model.config.in_channels
    order = torch.arange(r * r * c).view(c, r * r).t().reshape(-1)
    z = F.conv2d(y, model.conv_out.weight[order], padding=1)
    n, _, h, w = z.shape
    out = torch.empty(n, h, r, w, r * c)
    out.copy_(z.permute(0, 2, 3, 1).reshape(n, h, w, r, r * c).permute(0, 1, 3, 2, 4))
    return out.view(n, h * r, w * r, c).permute(0, 3, 1, 2)


def crd_copy(src: Path, dst: Path) -> None:
    """The exported graph (DCR, conv_out reordered) turned back into PyTorch's CRD layout."""
    proto = onnx.load(str(src))
    shuffle = next(n for n in proto.graph.node if n.op_type == "DepthToSpace")
    conv = next(n for n in proto.graph.node if shuffle.input[0] in n.output)
    r = next(a.i for a in shuffle.attribute if a.name == "blocksize")
    for init in proto.graph.initializer:
        if init.name in conv.input[1:]:
            w = numpy_helper.to_array(init)
            order = np.arange(len(w)).reshape(len(w) // (r * r), r * r).T.reshape(-1)
            init.CopyFrom(numpy_helper.from_array(w[np.argsort(order)], init.name))
    next(a for a in shuffle.attribute if a.name == "mode").s = b"CRD"
    onnx.save(proto, str(dst))


def main() -> None:
    weights = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else str(PEER)
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    model = load_model(weights, bgr=True)
    x = torch.rand(1, 3, 720, 1280, generator=torch.Generator().manual_seed(0))
    cl = load_model(weights, bgr=True).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    tmp = Path(tempfile.mkdtemp())
    export_onnx(model, tmp / "dcr.onnx")
    crd_copy(tmp / "dcr.onnx", tmp / "crd.onnx")
    crd, dcr = OnnxUpscaler(tmp / "crd.onnx", threads=threads), OnnxUpscaler(tmp / "dcr.onnx", threads=threads)
    feed = x.numpy()
    img = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
    img8 = (img * 255).astype(np.uint8)
    rows = {
        "PyTorch NCHW (PixelShuffle)": lambda: model(x),
        "PyTorch channels_last, PixelShuffle (shipped)": lambda: cl(x_cl),
        "PyTorch channels_last, reordered conv_out + run copy": lambda: reordered_shuffle(cl, x_cl),
        "onnxruntime fp32, DepthToSpace CRD (PyTorch's order)": lambda: crd._run(feed),
        "onnxruntime fp32, reordered conv_out + DCR (shipped export)": lambda: dcr._run(feed),
        "OpenCV INTER_CUBIC uint8": lambda: cv2.resize(img8, (3840, 2160), interpolation=cv2.INTER_CUBIC),
        "OpenCV INTER_CUBIC float32": lambda: cv2.resize(img, (3840, 2160), interpolation=cv2.INTER_CUBIC),
    }
    with torch.no_grad():
        assert torch.equal(reordered_shuffle(cl, x_cl), cl(x_cl))
        print("DCR vs CRD onnxruntime max |diff|:", float(np.abs(crd._run(feed) - dcr._run(feed)).max()))
        times: dict[str, list[float]] = {k: [] for k in rows}
        for fn in rows.values():
            fn()
        for _ in range(reps):
            for name, fn in rows.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(1000 * (time.perf_counter() - t0))
    ref = float(np.median(times["OpenCV INTER_CUBIC uint8"]))
    print(f"{threads} thread(s), {reps} interleaved rounds; median (best) ms; x = median / OpenCV uint8 median")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"| {name} | {med:.1f} ({min(ts):.1f}) | {med / ref:.1f} |")


if __name__ == "__main__":
    main()
