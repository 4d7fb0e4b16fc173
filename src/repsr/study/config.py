"""Typed description of a study: one base training config, a list of variants, what to measure.

A study trains every variant with the same data, iterations, seed and schedule (the base config
plus the study's common overrides), then changes only what the variant's own overrides say. That
is what makes the comparison fair: the variants differ in exactly the keys listed in their row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from repsr.config import from_dict, load_yaml
from repsr.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    """One row of a study: a name (its run folder) and the overrides that define it."""

    name: str
    set: list[str] = field(default_factory=list)
    label: str = ""  # shown in tables and plots; defaults to ``name``

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ArtifactPair:
    """Study 2: compare ``baseline`` (e.g. plain BN) against ``fixed`` (e.g. BN with the switch)."""

    baseline: str
    fixed: str
    crops: int = 3  # side-by-side crops to write
    crop_size: int = 96  # HR pixels


@dataclass(frozen=True)
class StudyConfig:
    """A study file (YAML). Paths are relative to the file's folder unless absolute."""

    name: str
    base: str  # a `repsr train` config
    variants: list[Variant]
    eval_sets: list[str]
    set: list[str] = field(default_factory=list)  # overrides common to every variant
    output: str = "runs/study"  # run folders (checkpoints, logs); large, not committed
    report: str = ""  # results.json/.md and plots (e.g. docs/results/blocks); default: ``output``
    bench_size: str = "320x180"  # LR input of the merged-throughput measurement (W x H)
    bench_reps: int = 10
    reference_models: list[str] = field(default_factory=list)  # shipped models / files shown as extra rows
    artifacts: ArtifactPair | None = None
    # label of the setting whose final validation PSNR the others race to (the "RepSR reaches ECBSR
    # quality in half the training time" claim); "" for no time-to-quality table
    time_target: str = ""
    # labels of the settings the seed tables give differences to (one table each); [] = the first setting
    baselines: list[str] = field(default_factory=list)


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study file. Paths inside it are relative to the working directory
    (run studies from the repository root), like those of ``repsr train`` configs."""
    path = Path(path)
    config = from_dict(StudyConfig, load_yaml(path), str(path))
    names = [v.name for v in config.variants]
    if not names:
        raise ConfigError(f"{path}: 'variants' is empty")
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: variant names must be unique")
    if config.artifacts and not {config.artifacts.baseline, config.artifacts.fixed} <= set(names):
        raise ConfigError(f"{path}: 'artifacts' names a variant that is not in 'variants'")
    labels = {v.title for v in config.variants}
    for key, named in (("time_target", [config.time_target] if config.time_target else []),
                       ("baselines", config.baselines)):
        for label in named:
            if label not in labels:
                raise ConfigError(f"{path}: '{key}' must name labels of variants, not '{label}'")
    return config
