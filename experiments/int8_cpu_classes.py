"""INT8 drop per CPU class and target (docs/deploy.md, "INT8 on every CPU"): the saturation of issue #26.

x86 CPUs without VNNI sum pairs of u8 x s8 products in int16 and saturate on full-range int8 weights.
This script measures each ``--target`` of ``repsr quantize`` on the CPU at hand *and* on an emulated
AVX2-only CPU (``qemu-x86_64 -cpu Haswell``, user mode: the same Python and wheels, whose kernels
dispatch on the emulated CPUID, so onnxruntime and OpenVINO pick their AVX2 int8 kernels):

    python experiments/int8_cpu_classes.py make OUT [SCALES]         # quantize (host), fp32 scores
    python experiments/int8_cpu_classes.py score OUT host [SETS]      # INT8 scores, this CPU
    qemu-x86_64 -cpu Haswell $(python -c 'import os,sys;print(os.path.realpath(sys.executable))') \\
        experiments/int8_cpu_classes.py score OUT haswell Set5 --files 'x*-[av]*.onnx'  # emulated AVX2
    python experiments/int8_cpu_classes.py table OUT                  # the markdown table

Calibration is ``repsr quantize``'s default (T91 + BSD200, 100 images each, 64 px crops); scores are
repsr's evaluator (Y PSNR, crop = scale). Emulation is ~50x slower: Set5 only there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CALIB = [DATA / "T91", DATA / "BSD200"]
TARGETS = ("any", "vnni", "symmetric")


def make(out: Path, scales: list[int]) -> None:
    from repsr.evaluate import evaluate
    from repsr.export.quantize import QuantOptions, calibration_batches, quantize_model
    from repsr.inference import load_runner

    out.mkdir(parents=True, exist_ok=True)
    fp32 = {}
    for scale in scales:
        model = load_runner(f"repsr-m4c16-x{scale}", network=True)
        batches = calibration_batches(CALIB, model.config)
        for target in TARGETS:
            quantize_model(model, out / f"x{scale}-{target}.onnx", batches, QuantOptions(target=target))
        sets = [DATA / s for s in ("Set5", "Set14", "B100")]
        fp32[scale] = {k: r.psnr for k, r in evaluate(model, sets, scale, progress=False).items()}
        print(f"x{scale}: quantized, fp32 {fp32[scale]}", flush=True)
    (out / "fp32.json").write_text(json.dumps(fp32, indent=1))


def score(out: Path, cpu: str, sets: list[str], files: str = "x*-*.onnx") -> None:
    from repsr.evaluate import evaluate
    from repsr.inference import load_upscaler

    results_path = out / f"int8-{cpu}.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for path in sorted(out.glob(files)):
        scale = int(path.name[1])
        for backend in ("onnx", "openvino"):
            key = f"{path.stem}|{backend}"
            if key in results:
                continue
            runner = load_upscaler(str(path), backend, threads=1)
            scores = evaluate(runner, [DATA / s for s in sets], scale, progress=False)
            results[key] = {k: r.psnr for k, r in scores.items()}
            results_path.write_text(json.dumps(results, indent=1))
            print(key, results[key], flush=True)


def table(out: Path) -> None:
    fp32 = json.loads((out / "fp32.json").read_text())
    columns = [(cpu, json.loads((out / f"int8-{cpu}.json").read_text()))
               for cpu in ("host", "haswell") if (out / f"int8-{cpu}.json").is_file()]
    print("| model | target | runtime | " + " | ".join(f"{s} drop, {cpu}" for cpu, res in columns
                                                        for s in next(iter(res.values()))) + " |")
    print("|---" * (3 + sum(len(next(iter(res.values()))) for _, res in columns)) + "|")
    for scale in sorted(fp32):
        for target in TARGETS:
            for backend in ("onnx", "openvino"):
                key, cells = f"x{scale}-{target}|{backend}", []
                for _, res in columns:
                    sets = next(iter(res.values()))
                    row = res.get(key)
                    cells += [f"{fp32[scale][s] - row[s]:.3f}" if row else "-" for s in sets]
                runtime = "onnxruntime" if backend == "onnx" else "OpenVINO"
                print(f"| repsr-m4c16-x{scale} | {target} | {runtime} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "make":
        make(folder, [int(s) for s in sys.argv[3:]] or [2, 3, 4])
    elif command == "score":  # score OUT CPU [SETS...] [--files GLOB]
        rest = sys.argv[4:]
        files = rest[rest.index("--files") + 1] if "--files" in rest else "x*-*.onnx"
        names = [a for a in rest if a != "--files" and a != files]
        score(folder, sys.argv[3], names or ["Set5", "Set14", "B100"], files)
    else:
        table(folder)
