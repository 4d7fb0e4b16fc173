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


def seed_table(summary: dict[str, Any]) -> str:
    """One row per setting: seeds, mean +/- sd of PSNR per eval set, and the difference to the first row.

    A difference is marked (*) only when it exceeds twice the larger of the two settings' sd, and only
    where both have at least two seeds: one seed cannot tell a setting from its noise.
    """
    groups = seed_groups(summary["variants"])
    if not groups:
        return ""
    sets = list(dict.fromkeys(name for rows in groups.values() for r in rows for name in r["scores"]))
    stats = {label: {s: mean_sd([r["scores"][s]["psnr"] for r in rows if s in r["scores"]]) for s in sets}
             for label, rows in groups.items()}
    first = next(iter(groups))
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

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in summary["variants"]:
        if r["curve"] and "seconds" in r["curve"][0]:  # partial (--only) runs have no common time axis
            ax.plot([p["seconds"] / 60 for p in r["curve"]], [p["psnr"] for p in r["curve"]], marker=".",
                    label=r["label"])
    ax.set_xlabel("training time (minutes, measured cost per iteration, this CPU)")
    ax.set_ylabel("validation PSNR (dB, merged net)")
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
                 "sd (both settings with >= 2 seeds).", "", seed_table(summary), ""]
    text += ["![PSNR vs speed](psnr_vs_speed.png) ![PSNR vs training time](psnr_vs_time.png)", ""]
    path = out_dir / "results.md"
    path.write_text("\n".join(text))
    return path
