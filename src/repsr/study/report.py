"""Turn a study's ``results.json`` into a Markdown table and plots (PNG).

Plots: PSNR against merged-network throughput (the paper's Figure 1 view) and validation PSNR
against training wall time (the "RepSR reaches ECBSR quality in half the time" claim).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _cell(scores: dict[str, dict[str, float]], name: str) -> str:
    s = scores.get(name)
    if not s or math.isnan(s["psnr"]):
        return "–"
    return f"{s['psnr']:.2f} / {s['ssim']:.4f}"


def markdown_table(summary: dict[str, Any]) -> str:
    """One row per variant, then the reference rows (bicubic, shipped models)."""
    rows = summary["variants"] + summary["references"]
    sets = list(dict.fromkeys(name for r in rows for name in r["scores"]))
    head = ["variant", "params (train → merged)", "train ms/iter", *[f"{s} PSNR / SSIM" for s in sets],
            f"merged ms/frame ({summary['bench_size']})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        params = f"{r['params_train']:,} → {r['params_merged']:,}" if r["params_train"] else (
            f"{r['params_merged']:,}" if r["params_merged"] else "–")
        cost = f"{r['ms_per_iter']:.0f}" if r["ms_per_iter"] else "–"
        speed = f"{r['merged_ms']:.1f}" if r["merged_ms"] else "–"
        if r["diverged"]:
            cells = [f"diverged: {r['diverged']}"] + ["–"] * (len(sets) - 1)
        else:
            cells = [_cell(r["scores"], s) for s in sets]
        lines.append("| " + " | ".join([r["label"], params, cost, *cells, speed]) + " |")
    return "\n".join(lines)


def seed_groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows that share a label are seeds of one setting (the study file gives them one label)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if not r["diverged"]:
            groups.setdefault(r["label"], []).append(r)
    return groups


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _scores_and_validation(row: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The row's eval-set scores plus its last validation PSNR (held-out training images) as one more set."""
    return {**row["scores"], **({"validation": {"psnr": row["curve"][-1]["psnr"]}} if row.get("curve") else {})}


def seed_table(summary: dict[str, Any], baseline: str | None = None) -> str:
    """One row per setting: seeds, mean +/- sd of PSNR per eval set (and of the final validation PSNR),
    and the difference to the ``baseline`` setting (a label; default: the first row).

    A difference is marked (*) only when it exceeds twice the larger of the two settings' sd, and only
    where both have at least two seeds: one seed cannot tell a setting from its noise.
    """
    groups = seed_groups(summary["variants"])
    if not groups:
        return ""
    scores = {label: [_scores_and_validation(r) for r in rows] for label, rows in groups.items()}
    sets = list(dict.fromkeys(name for rows in scores.values() for r in rows for name in r))
    stats = {label: {s: mean_sd([r[s]["psnr"] for r in rows if s in r]) for s in sets}
             for label, rows in scores.items()}
    first = baseline if baseline in groups else next(iter(groups))
    head = ["setting", "seeds", *[f"{s} PSNR mean ± sd" for s in sets], *[f"Δ{s} vs {first}" for s in sets]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, rows in groups.items():
        cells = [f"{stats[label][s][0]:.3f} ± {stats[label][s][1]:.3f}" for s in sets]
        deltas = []
        for s in sets:
            delta = stats[label][s][0] - stats[first][s][0]
            noise = 2 * max(stats[label][s][1], stats[first][s][1])
            real = len(rows) > 1 and len(groups[first]) > 1 and abs(delta) > noise
            deltas.append(f"{delta:+.3f}{' *' if real else ''}")
        lines.append("| " + " | ".join([label, str(len(rows)), *cells, *deltas]) + " |")
    return "\n".join(lines)


def mean_curve(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(seconds, PSNR) of a setting's validation curve, averaged over its seeds at the iterations all
    of them validated; seconds = iteration x the setting's mean measured cost per iteration."""
    timed = [r for r in rows if r["curve"] and "seconds" in r["curve"][0]]
    if not timed:
        return []
    iters = sorted(set.intersection(*({p["iter"] for p in r["curve"]} for r in timed)))
    ms = sum(r["ms_per_iter"] for r in timed) / len(timed)
    points = []
    for it in iters:
        psnrs = [next(p["psnr"] for p in r["curve"] if p["iter"] == it) for r in timed]
        points.append((it * ms / 1000, sum(psnrs) / len(psnrs)))
    return points


def seconds_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """First time the curve reaches ``target``, linearly interpolated between validation points (a
    curve already there at its first point gets that point's time: nothing is known before it);
    None if it never does."""
    previous = None
    for seconds, psnr in curve:
        if psnr >= target:
            if previous is None or previous[1] >= target:
                return seconds
            (t0, p0) = previous
            return t0 + (seconds - t0) * (target - p0) / (psnr - p0)
        previous = (seconds, psnr)
    return None


def time_to_quality_table(summary: dict[str, Any]) -> str:
    """How long each setting (seed mean) takes to reach the target setting's final validation PSNR."""
    groups = seed_groups(summary["variants"])
    target = summary.get("time_target")
    if not target or target not in groups:
        return ""
    curves = {label: mean_curve(rows) for label, rows in groups.items()}
    if not curves[target]:
        return ""
    goal_seconds, goal = curves[target][-1]
    head = ["setting", "seeds", "final validation PSNR", f"time to reach {target}'s final {goal:.3f} dB",
            f"vs {target}'s own time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, curve in curves.items():
        if not curve:
            continue
        reached = seconds_to_reach(curve, goal)
        when = f"{reached / 60:.1f} min" if reached is not None else "not reached"
        ratio = f"{reached / goal_seconds:.2f}x" if reached is not None else "–"
        lines.append(f"| {label} | {len(groups[label])} | {curve[-1][1]:.3f} | {when} | {ratio} |")
    return "\n".join(lines)


def _mean_psnr(row: dict[str, Any]) -> float:
    values = [s["psnr"] for s in row["scores"].values()]
    return sum(values) / len(values) if values else math.nan


def plot_psnr_vs_speed(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in summary["variants"] + summary["references"]:
        if r["merged_ms"] and not r["diverged"]:
            ax.scatter(1000 / r["merged_ms"], _mean_psnr(r))
            ax.annotate(r["label"], (1000 / r["merged_ms"], _mean_psnr(r)), fontsize=7)
    # from zero: nets of one size merge to the same plain network, so their speeds differ only by
    # timing noise, which a zoomed axis would dress up as a trade-off
    ax.set_xlim(left=0, right=max([1000 / r["merged_ms"] for r in summary["variants"] + summary["references"]
                                    if r["merged_ms"]], default=1) * 1.15)
    ax.set_xlabel(f"merged network, frames/s at {summary['bench_size']} (CPU, {summary['threads']} thread(s))")
    ax.set_ylabel("mean PSNR (dB, Y) over the eval sets")
    ax.set_title(f"{summary['study']}: quality vs speed")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_psnr_vs_time(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, rows in seed_groups(summary["variants"]).items():
        curve = mean_curve(rows)  # empty for partial (--only) runs: they have no common time axis
        if curve:
            seeds = f" ({len(rows)} seeds)" if len(rows) > 1 else ""
            ax.plot([t / 60 for t, _ in curve], [p for _, p in curve], marker=".", label=label + seeds)
    ax.set_xlabel("training time (minutes, measured cost per iteration, this CPU)")
    ax.set_ylabel("validation PSNR (dB, merged net; seed mean)")
    ax.set_title(f"{summary['study']}: quality vs training time")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write ``results.md``, ``psnr_vs_speed.png`` and ``psnr_vs_time.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_psnr_vs_speed(summary, out_dir / "psnr_vs_speed.png")
    plot_psnr_vs_time(summary, out_dir / "psnr_vs_time.png")
    text = [f"# {summary['study']}", "", f"Scale x{summary['scale']}; PSNR/SSIM on Y, crop = scale; merged-net "
            f"speed in PyTorch fp32 on this CPU with {summary['threads']} thread(s); train ms/iter and merged "
            "ms/frame measured side by side in one process (round-robin, best pass).", "", markdown_table(summary), ""]
    if any(len(rows) > 1 for rows in seed_groups(summary["variants"]).values()):
        text += ["## Seeds", "", "Mean ± sample sd over seeds; * marks a difference larger than twice the larger "
                 "sd (both settings with >= 2 seeds)."]
        for baseline in summary.get("baselines") or [None]:
            text += ["", seed_table(summary, baseline)]
        text += [""]
    race = time_to_quality_table(summary)
    if race:
        text += ["## Time to quality", "", "Validation curves averaged over seeds, on one time axis (iterations x "
                 "measured cost per iteration; validation excluded), interpolated between validation points.", "",
                 race, ""]
    text += ["![PSNR vs speed](psnr_vs_speed.png) ![PSNR vs training time](psnr_vs_time.png)", ""]
    path = out_dir / "results.md"
    path.write_text("\n".join(text))
    return path
