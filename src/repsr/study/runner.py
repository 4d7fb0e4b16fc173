"""Train, evaluate and time every variant of a study; a finished variant is never retrained.

Each variant lives in ``<output>/<name>/`` (the ordinary `repsr train` run folder) and ends with a
``result.json`` there, copied to ``<report>/variants/<name>.json``. The run folders are large and
not committed; the report copies are small and are, so a study can be continued in a later session
on a fresh machine. Re-running a study skips variants with a result (either copy), resumes a
variant whose run was interrupted (from its latest checkpoint) and records -- rather than drops --
a variant whose training diverged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from repsr.atomic import atomic_write
from repsr.errors import UserError
from repsr.evaluate import evaluate
from repsr.inference import load_runner
from repsr.models import build_model
from repsr.reparam.convert import reparameterize
from repsr.study.config import StudyConfig, Variant
from repsr.train.checkpoint import find_checkpoint
from repsr.train.config import TrainConfig, bn_switch_iteration, load_train_config
from repsr.train.cost import StepSetup, forward_ms, run_mean_ms, step_ms
from repsr.train.loop import train
from repsr.train.precision import resolve_amp
from repsr.weights import load_model


@dataclass
class VariantResult:
    """What a study table shows for one variant (also written as ``result.json``)."""

    name: str
    label: str
    overrides: list[str]
    iters: int = 0
    train_seconds: float = 0.0  # iters x ms_per_iter: training compute, validation excluded
    ms_per_iter: float = 0.0  # measured side by side for all variants (repsr.train.cost)
    wall_ms_per_iter: float = 0.0  # as the run itself saw it (depends on the machine's load then)
    params_train: int = 0
    params_merged: int = 0
    merged_ms: float = 0.0  # one frame at the study's bench size, PyTorch fp32
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # set -> psnr/ssim
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)  # set -> image -> psnr
    curve: list[dict[str, float]] = field(default_factory=list)  # iter, seconds, psnr (val mean)
    diverged: str = ""  # the error message when training failed

    @classmethod
    def load(cls, path: Path) -> VariantResult:
        return cls(**json.loads(path.read_text()))


def write_result(path: Path, result: VariantResult) -> None:
    """Write ``result.json``, the variant's "finished" marker: atomically, or a kill could fake a finish."""
    text = json.dumps(asdict(result), indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def report_dir(study: StudyConfig) -> Path:
    return Path(study.report or study.output)


def committed_result(study: StudyConfig, name: str) -> Path:
    """The report's small copy of a variant's ``result.json`` (committed; the run folder is not)."""
    return report_dir(study) / "variants" / f"{name}.json"


def finished_result(study: StudyConfig, name: str) -> Path | None:
    """Where a finished variant's result is: its run folder, else the report's committed copy."""
    for path in (Path(study.output) / name / "result.json", committed_result(study, name)):
        if path.is_file():
            return path
    return None


def variant_config(study: StudyConfig, overrides: list[str], output: str = "unused") -> TrainConfig:
    """The training config of a variant: the base file, the study's common overrides, then its own."""
    return load_train_config(study.base, [*study.set, *overrides, f"output={output}"])


def _merged_net(study: StudyConfig, row: VariantResult, config: TrainConfig) -> torch.nn.Module:
    """The variant's merged net; when its run folder is gone (a result reused from the report), the
    same merged architecture untrained -- a plain conv stack's speed does not depend on its weights."""
    path = Path(study.output) / row.name / "model_merged.safetensors"
    if path.is_file():
        return load_model(path)
    return reparameterize(build_model(config.model).eval())


def _bench_input(size: str) -> torch.Tensor:
    w, h = (int(v) for v in size.lower().split("x"))
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))


def _curve(run_dir: Path) -> list[dict[str, float]]:
    """Validation PSNR (mean over val sets, merged net) per iteration; seconds come with the costs."""
    points: list[dict[str, float]] = []
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return points
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "val" and rec.get("merged"):
            psnrs = [s["psnr"] for s in rec["merged"].values()]
            points.append({"iter": rec["iter"], "psnr": sum(psnrs) / len(psnrs)})
    return points


def score_model(model: torch.nn.Module | None, eval_sets: list[str],
                scale: int) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Mean PSNR/SSIM per set and per-image PSNR of ``model`` (None: MATLAB bicubic)."""
    results = evaluate(model, eval_sets, scale, progress=False)
    scores = {name: {"psnr": r.psnr, "ssim": r.ssim} for name, r in results.items()}
    per_image = {name: {i.name: i.psnr for i in r.images} for name, r in results.items()}
    return scores, per_image


def run_variant(study: StudyConfig, variant: Variant) -> VariantResult:
    """Train (or resume) one variant, then evaluate and time its merged network."""
    run_dir = Path(study.output) / variant.name
    config = variant_config(study, variant.set, str(run_dir))
    result = VariantResult(variant.name, variant.title, variant.set, iters=config.train.iters)
    resume = find_checkpoint(run_dir) is not None
    try:
        run = train(config, resume=resume)
    except UserError as exc:
        result.diverged = str(exc)
        return result
    result.wall_ms_per_iter = run.wall_ms_per_iter
    model = load_model(run_dir / "model_latest.safetensors")
    merged = load_model(run_dir / "model_merged.safetensors")
    result.params_train = sum(p.numel() for p in model.parameters())
    result.params_merged = sum(p.numel() for p in merged.parameters())
    result.scores, result.per_image = score_model(merged, study.eval_sets, config.model.scale)
    result.curve = _curve(run_dir)
    return result


def reference_rows(study: StudyConfig, scale: int, nets: dict[str, torch.nn.Module]) -> list[VariantResult]:
    """Bicubic and the study's reference models (``nets``: name -> merged net), scored the same way."""
    rows = []
    scores, per_image = score_model(None, study.eval_sets, scale)
    rows.append(VariantResult("bicubic", "bicubic (MATLAB)", [], scores=scores, per_image=per_image))
    for name, merged in nets.items():
        row = VariantResult(name, name, [], params_merged=sum(p.numel() for p in merged.parameters()))
        row.scores, row.per_image = score_model(merged, study.eval_sets, scale)
        rows.append(row)
    return rows


def attach_costs(study: StudyConfig, rows: list[VariantResult], references: list[VariantResult],
                 reference_nets: dict[str, torch.nn.Module]) -> None:
    """Measure every variant's step cost and every merged net's speed side by side (one process,
    round-robin), and put the rows on one time axis.

    ``seconds`` of a curve point = iteration x cost per iteration: validation time is excluded and
    a resumed run sits on the same axis as one that never stopped.
    """
    rows = [r for r in rows if not r.diverged]
    configs = {r.name: variant_config(study, r.overrides) for r in rows}
    nets = {r.name: _merged_net(study, r, configs[r.name]) for r in rows}
    speeds = forward_ms({**nets, **reference_nets}, _bench_input(study.bench_size), reps=study.bench_reps)
    for row in [*rows, *references]:
        row.merged_ms = speeds.get(row.name, 0.0)
    if not rows:
        return
    first = next(iter(configs.values()))
    costs = run_step_ms(configs, first.train.batch_size, first.train.patch_size)
    for row in rows:
        row.ms_per_iter = costs[row.name]
        row.train_seconds = row.ms_per_iter * row.iters / 1000
        for point in row.curve:
            point["seconds"] = point["iter"] * row.ms_per_iter / 1000


def run_step_ms(configs: dict[str, TrainConfig], batch: int, patch: int) -> dict[str, float]:
    """Each variant's mean training step as it runs: its precision and forward, both BN-switch phases
    timed side by side and weighted by where its switch falls."""
    cpu = torch.device("cpu")
    setups = {}
    for name, c in configs.items():
        bf16 = resolve_amp(c.train.amp, cpu) == "bf16"
        for phase in (False, True):
            setups[f"{name}|{phase}"] = StepSetup(c.model, bf16, c.train.merged_forward, switched=phase)
    ms, _ = step_ms(setups, batch, patch)
    means = {}
    for name, c in configs.items():
        at = bn_switch_iteration(c.train)
        fraction = 1.0 if at is None else min(at / c.train.iters, 1.0)
        means[name] = run_mean_ms(ms[f"{name}|False"], ms[f"{name}|True"], fraction)
    return means


def run_study(study: StudyConfig, only: list[str] | None = None, report_only: bool = False,
              log: Callable[[str], object] = print) -> dict[str, Any]:
    """Run every (or the ``only``) variant not yet finished and collect all results in one dict.

    ``report_only`` trains nothing: the report covers the finished variants (a study part-way done,
    e.g. continued over several sessions), with reference rows and side-by-side costs as usual."""
    out = Path(study.output)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[VariantResult] = []
    scale = variant_config(study, []).model.scale
    for variant in study.variants:
        found = finished_result(study, variant.name)
        if found is not None:
            log(f"[{variant.name}] finished earlier: using {found}")
            result = VariantResult.load(found)
        elif only and variant.name not in only:
            continue
        elif report_only:
            log(f"[{variant.name}] not run yet: left out of this report")
            continue
        else:
            log(f"[{variant.name}] training ({' '.join(variant.set) or 'base config'})")
            result = run_variant(study, variant)
            if result.diverged:
                log(f"[{variant.name}] DIVERGED: {result.diverged}")
            write_result(out / variant.name / "result.json", result)
        copy = committed_result(study, variant.name)
        if not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            write_result(copy, result)
        rows.append(result)
    # a partial run (``only``) skips reference rows and costs: their models may not exist yet
    references: list[VariantResult] = []
    if not only:
        reference_nets = {name: reparameterize(load_runner(name, network=True)) for name in study.reference_models}
        references = reference_rows(study, scale, reference_nets)
        attach_costs(study, rows, references, reference_nets)
    return {"study": study.name, "scale": scale, "bench_size": study.bench_size, "time_target": study.time_target,
            "baselines": study.baselines,
            "threads": torch.get_num_threads(), "variants": [asdict(r) for r in rows],
            "references": [asdict(r) for r in references]}
