"""Sweep INT8 quantization options for the shipped models: PSNR drop on Set5/Set14/B100 (docs/deploy.md).

Usage: PYTHONPATH=src python experiments/quantize_sweep.py OUT_DIR [SCALES] [VARIANTS]
Each variant is quantized with calibration crops of T91 + BSD200 (training images) and scored with
repsr's evaluator (Y PSNR, crop = scale, gray bridge.png on its gray values) next to fp32 PyTorch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from repsr.evaluate import evaluate
from repsr.export.onnx import export_onnx
from repsr.export.quantize import QuantOptions, calibration_batches, quantize_model
from repsr.inference import load_runner
from repsr.inference.engines.onnxruntime import OnnxUpscaler

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = [DATA / "Set5", DATA / "Set14", DATA / "B100"]
CALIB = [DATA / "T91", DATA / "BSD200"]

VARIANTS = {
    "naive-u8": QuantOptions("minmax", "uint8", (), equalize=False),
    "eq-u8": QuantOptions("minmax", "uint8", ()),
    "eq-u8-tail": QuantOptions("minmax", "uint8", ("tail",)),
    "eq-u8-tail-pct": QuantOptions("percentile", "uint8", ("tail",)),
    "eq-u8-tail-entropy": QuantOptions("entropy", "uint8", ("tail",)),
    "eq-u8-tail-fusedact": QuantOptions("minmax", "uint8", ("tail",), conv_outputs=False),
    "eq-u16": QuantOptions("minmax", "uint16", ()),
    "eq-u16-tail": QuantOptions("minmax", "uint16", ("tail",)),
}


def psnrs(model) -> dict[str, float]:
    scale = model.scale if hasattr(model, "scale") else model.config.scale
    return {k: round(r.psnr, 4) for k, r in evaluate(model, SETS, scale, progress=False).items()}


def main() -> None:
    out = Path(sys.argv[1])
    scales = [int(s) for s in sys.argv[2].split(",")] if len(sys.argv) > 2 else [2, 3, 4]
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else list(VARIANTS)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    for scale in scales:
        name = f"repsr-m4c16-x{scale}"
        model = load_runner(name, network=True)
        fp32 = out / f"{name}.onnx"
        export_onnx(model, fp32)
        row = results.setdefault(name, {})
        if "fp32" not in row:
            row["fp32"] = psnrs(model)
            print(name, "fp32", row["fp32"], flush=True)
        batches = calibration_batches(CALIB, model.config)  # the defaults `repsr quantize` uses
        for variant in names:
            t0 = time.perf_counter()
            target = out / f"{name}-{variant}.onnx"
            quantize_model(model, target, batches, VARIANTS[variant])
            scores = psnrs(OnnxUpscaler(target, threads=1))
            row[variant] = scores
            drop = {k: round(row["fp32"][k] - v, 4) for k, v in scores.items()}
            print(name, variant, scores, "drop", drop, f"{time.perf_counter() - t0:.0f}s", flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
