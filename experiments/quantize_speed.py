"""onnxruntime CPU time of the shipped x4 net: fp32 vs the INT8 variants of docs/deploy.md, interleaved.

Usage: PYTHONPATH=src python experiments/quantize_speed.py [WIDTHxHEIGHT] [REPS] [THREADS]
Every round runs every file once, so load from other jobs hits all rows alike; prints median (best).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from repsr.export.onnx import export_onnx
from repsr.export.quantize import QuantOptions, calibration_batches, quantize_model
from repsr.inference import load_runner
from repsr.inference.engines.onnxruntime import OnnxUpscaler

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VARIANTS = {
    "INT8 default (A8W8, tail float)": QuantOptions(),
    "INT8 --fuse-activations": QuantOptions(conv_outputs=False),
    "INT8 --activations uint16 (A16W8)": QuantOptions(activations="uint16"),
    "INT8 --keep-float none": QuantOptions(keep_float=()),
}


def main() -> None:
    w, h = (int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "320x180").split("x"))
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    model = load_runner("repsr-m4c16-x4", network=True)
    tmp = Path(tempfile.mkdtemp())
    export_onnx(model, tmp / "fp32.onnx")
    batches = calibration_batches([DATA / "T91", DATA / "BSD200"], model.config)
    runners = {"onnxruntime fp32": OnnxUpscaler(tmp / "fp32.onnx", threads=threads)}
    for i, (name, options) in enumerate(VARIANTS.items()):
        quantize_model(model, tmp / f"q{i}.onnx", batches, options)
        runners[name] = OnnxUpscaler(tmp / f"q{i}.onnx", threads=threads)
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for r in runners.values():
        r._run(x)
    for _ in range(reps):
        for name, r in runners.items():
            t0 = time.perf_counter()
            r._run(x)
            times[name].append(1000 * (time.perf_counter() - t0))
    ref = float(np.median(times["onnxruntime fp32"]))
    print(f"{w}x{h} x4, {threads} thread(s), {reps} interleaved rounds: median (best) ms, time / fp32")
    for name, ts in times.items():
        print(f"| {name} | {np.median(ts):.1f} ({min(ts):.1f}) | {np.median(ts) / ref:.2f} |")


if __name__ == "__main__":
    main()
