"""``repsr study STUDY.yaml``: train, evaluate and time a list of variants side by side.

Writes ``results.json``, ``results.md`` and plots to the study's ``report`` folder. Finished
variants are reused (from their run folder or the report's committed ``variants/`` copies), an
interrupted one resumes from its checkpoint, a diverged one is reported. ``--only`` trains a few
variants now; ``--report-only`` trains nothing and reports what is finished, so a long study can be
spread over several sessions.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from repsr.errors import UserError

if TYPE_CHECKING:
    from repsr.study.config import ArtifactPair, StudyConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("study", help="train and compare variants at equal budgets (tables, plots)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", help="study file (YAML), e.g. experiments/blocks_m4c16_x4.yaml")
    p.add_argument("--only", nargs="+", metavar="VARIANT", help="train only these variants now")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: report the finished variants (references and costs included)")
    p.set_defaults(run=run)


def _artifacts(study: StudyConfig, pair: ArtifactPair, report_dir: Path, scale: int) -> None:
    """The BN-artifact crops of the study's baseline/fixed pair. They need the trained weights, which
    live only in the (uncommitted) run folders: a study continued on a fresh machine keeps the
    artifact figures already in the report instead of failing."""
    from repsr.inference import load_runner
    from repsr.study.artifacts import artifact_study

    titles = {v.name: v.title for v in study.variants}
    models = []
    for name in (pair.baseline, pair.fixed):
        path = Path(study.output) / name / "model_merged.safetensors"
        if not path.is_file():
            print(f"artifact crops not redone: {path} is gone (retrain variant '{name}' to redo them)")
            return
        models.append(load_runner(str(path), network=True))
    baseline, fixed = models
    rows = artifact_study(baseline, fixed, study.eval_sets, scale, report_dir,
                          (titles[pair.baseline], titles[pair.fixed]), pair.crops, pair.crop_size)
    data = [asdict(r) | {"gain": r.gain} for r in rows]
    (report_dir / "artifacts.json").write_text(json.dumps(data, indent=1))


def run(args: argparse.Namespace) -> int:
    from repsr.study import load_study, report_dir, run_study
    from repsr.study.report import write_report

    study = load_study(args.study)
    unknown = sorted(set(args.only or []) - {v.name for v in study.variants})
    if unknown:
        raise UserError(f"--only: no variant named '{unknown[0]}' in {args.study}")
    if args.only and args.report_only:
        raise UserError("--only trains variants, --report-only trains none: give one of them")
    summary = run_study(study, only=args.only, report_only=args.report_only)
    folder = report_dir(study)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(summary, indent=1))
    if study.artifacts and not args.only:
        _artifacts(study, study.artifacts, folder, summary["scale"])
    print(f"wrote {write_report(summary, folder)}")
    return 0
