"""The engine registry: every runtime repsr can run a model on, and the one rule that picks one.

Adding a runtime is one module in this package that builds an :class:`Engine` (name, files it reads
and writes, precisions, devices, package and extra, loader, exporter, bench rows) plus one entry in
:data:`ENGINES`. ``--backend`` choices, ``repsr bench`` rows, ``repsr eval``'s model kinds and ``repsr
merge -o``'s formats are all read from here (docs/architecture.md, "add a runtime").
"""

from __future__ import annotations

from pathlib import Path

from repsr.errors import UserError
from repsr.inference.engines import coreml, executorch, ncnn, onnxruntime, openvino, torch_compile, torch_eager
from repsr.inference.engines.spec import PRECISIONS, Engine, LoadRequest, Timed, merged

ENGINES: dict[str, Engine] = {e.name: e for e in (
    torch_eager.ENGINE,
    torch_compile.ENGINE,
    onnxruntime.ENGINE,
    openvino.ENGINE,
    ncnn.ENGINE,
    executorch.ENGINE,
    coreml.ENGINE,
)}
ALIASES = {"torch": "eager", "onnxruntime": "onnx", "ov": "openvino"}  # earlier releases' names, short names
BACKENDS = ("auto", *ENGINES)
# ``auto`` on the CPU, fastest exact engine first: OpenVINO fp32 ran the merged nets 2.6-2.9x faster than
# eager and 1.5-2x faster than torch.compile on both CPU classes measured (docs/deploy.md). Without it,
# compile pays from AUTO_COMPILE_MPIX of input (its compile costs seconds), eager below that.
AUTO_ORDER = ("openvino",)
AUTO_COMPILE_MPIX = 7.0  # ~eight 720p frames, where compiling is repaid by the faster network
# ``--precision auto`` (the CLI's default): bf16 where the engine runs it natively. Measured Y PSNR drop of
# OpenVINO bf16 vs fp32 on Set5/Set14/B100: <= 0.005 dB for every shipped model (docs/deploy.md), at ~2.3x
# the speed on an AVX512-BF16/AMX CPU; elsewhere bf16 is emulated and auto stays fp32.
AUTO_PRECISIONS = ("bf16",)


def auto_precision(engine: Engine) -> str | None:
    """What ``--precision auto`` runs on ``engine`` here: the first of :data:`AUTO_PRECISIONS` it runs natively,
    else None (the file's own precision: fp32 for float weights)."""
    return next((p for p in AUTO_PRECISIONS if p in engine.precisions and p in engine.native()), None)


def engine_named(name: str | None) -> Engine | None:
    """The engine called ``name`` (an alias allowed); None for ``auto``; a one-line error if unknown."""
    name = ALIASES.get(name or "auto", name or "auto")
    if name == "auto":
        return None
    if name not in ENGINES:
        raise UserError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    return ENGINES[name]


def readers(path: str | Path) -> list[Engine]:
    """Engines that run a file of this suffix as it is, in :data:`AUTO_ORDER` first."""
    suffix = Path(path).suffix.lower()
    found = [e for e in ENGINES.values() if suffix in e.reads and e.name != "eager"]
    return sorted(found, key=lambda e: (e.name not in AUTO_ORDER, AUTO_ORDER.index(e.name) if e.name in AUTO_ORDER
                                        else 0))


def owner_of(path: str | Path) -> Engine:
    """The engine of a model file's own format (``.onnx``: onnxruntime, ``.xml``: OpenVINO): what ``repsr eval``,
    ``bench`` and ``ntire`` run a file on unless ``--backend`` says otherwise, so scores keep their meaning."""
    suffix = Path(path).suffix.lower()
    return next((e for e in ENGINES.values() if suffix in e.writes and e.name != "eager"), None) or readers(path)[0]


def is_model_file(path: str | Path) -> bool:
    """A file some non-PyTorch engine runs directly (``.onnx``, ``.xml``), as opposed to PyTorch weights."""
    return bool(readers(path))


def writer_for(path: str | Path) -> Engine | None:
    """The engine whose format ``path``'s suffix names (``repsr merge -o``), or None."""
    suffix = Path(path).suffix.lower()
    return next((e for e in ENGINES.values() if suffix in e.writes), None)


def output_suffixes() -> tuple[str, ...]:
    return tuple(s for e in ENGINES.values() for s in e.writes)


def choose_engine(backend: str | None, path: str | Path, device: str | None = "cpu", precision: str | None = None,
                  workload_mpix: float = 0.0) -> Engine:
    """The engine that runs ``path`` for ``backend`` (None or ``auto``: the fastest exact one available).

    ``auto``: CUDA (or fp16) runs PyTorch eager, where the fp16 inf/NaN fallback lives; a model file
    (``.onnx``, ``.xml``) runs on the first installed engine that reads it; PyTorch weights on the CPU run
    on the first installed engine of :data:`AUTO_ORDER` that has ``precision``, else torch.compile for runs of
    :data:`AUTO_COMPILE_MPIX` or more, else eager. bf16 and INT8 are never chosen unasked.
    """
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    chosen = engine_named(backend)
    if chosen is not None:
        return chosen
    from repsr.inference.upscaler import resolve_device

    if precision == "fp16" or resolve_device(device).type == "cuda":
        return ENGINES["eager"]
    files = readers(path)
    if files:
        usable = [e for e in files if e.installed()]
        if not usable:
            files[0].require()
        return usable[0]
    for name in AUTO_ORDER:
        candidate = ENGINES[name]
        if candidate.installed() and (precision is None or precision in candidate.precisions):
            return candidate
    if precision not in (None, "fp32"):
        return next(e for e in ENGINES.values() if precision in e.precisions)
    return ENGINES["compile"] if workload_mpix >= AUTO_COMPILE_MPIX else ENGINES["eager"]


__all__ = ["ALIASES", "AUTO_COMPILE_MPIX", "AUTO_ORDER", "AUTO_PRECISIONS", "BACKENDS", "ENGINES", "PRECISIONS",
           "Engine", "LoadRequest", "Timed", "auto_precision", "choose_engine", "engine_named",
           "is_model_file", "merged", "output_suffixes", "owner_of", "readers", "writer_for"]
