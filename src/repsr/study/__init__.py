"""Side-by-side studies of RepSR's claims: equal data, iterations, seed and schedule for every variant."""

from repsr.study.config import StudyConfig, Variant, load_study
from repsr.study.runner import report_dir, run_study

__all__ = ["StudyConfig", "Variant", "load_study", "report_dir", "run_study"]
