"""End-to-end speed of ``repsr upscale`` on a folder, next to the network alone: is I/O off the critical path?

Why beside :mod:`repsr.bench`: the network rows time one call on a float tensor, but a user waits for decode,
colour conversion, network, quantisation and PNG/JPEG encode of every file. Here each backend (eager,
torch.compile, OpenVINO when installed) is timed twice on the same images: "network only" (the engine's calls
on the images, decoded to float beforehand) and "end to end" (:func:`repsr.upscale.upscale_jobs` on the
folder, the path ``repsr upscale`` runs, writing into a temporary folder). Their ratio is what the pipeline
costs on top of the network; the ratio to "network only, eager" is the speed-up a user sees. Rounds are
interleaved (one pass of each candidate per round, median of the rounds), so a burst of load on a shared
machine is spread over all rows.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from repsr.bench import time_round_robin
from repsr.errors import UserError
from repsr.global_state import preserved
from repsr.hub import model_path
from repsr.imageio import read_image
from repsr.inference import Upscaler, choose_engine, engine_named, load_upscaler
from repsr.upscale import UpscaleOptions, input_megapixels, is_video, plan_jobs, upscale_jobs

# (row label, backend, channels_last): the old default (eager NCHW) is the reference of "x eager"
FOLDER_BACKENDS = (("eager NCHW", "eager", False), ("eager", "eager", True), ("compile", "compile", True),
                   ("openvino", "openvino", True))


@dataclass
class FolderRow:
    """One backend and stage over the whole folder."""

    backend: str  # "eager NCHW" (the reference), "eager" (channels_last), "compile" or "openvino"
    stage: str  # "network only" or "end to end"
    ms_per_image: float
    x_eager: float = 1.0  # speed-up over "network only, eager" (time ratio)
    x_network: float = 1.0  # this time / the same backend's network-only time
    setup_s: float | None = None  # compiling (every image size once) before the first timed round


@dataclass
class FolderBench:
    """What :func:`run_folder_bench` measured (``repsr bench --folder``; ``--json`` prints it under ``folder``)."""

    folder: str
    images: int
    first_size: tuple[int, int]  # (width, height) of the first image
    model: str
    threads: int
    reps: int
    default: str  # the engine repsr upscale picks for this folder (--backend auto)
    rows: list[FolderRow]


def _warm(upscaler: Upscaler, images: list[torch.Tensor]) -> float:
    """Seconds to run every distinct image size once (torch.compile compiles here, not in the timing)."""
    start, seen = time.perf_counter(), set()
    for x in images:
        if x.shape not in seen:
            seen.add(x.shape)
            upscaler(x)
    return time.perf_counter() - start


def run_folder_bench(model: str, folder: str | Path, threads: int, reps: int = 3,
                     backends: tuple[tuple[str, str, bool], ...] = FOLDER_BACKENDS) -> FolderBench:
    """Rows of network-only and end-to-end milliseconds per image for each backend on ``folder``'s images.

    torch runs ``threads`` threads meanwhile; the caller's count is back on return.
    """
    with preserved():
        torch.set_num_threads(threads)
        return _run(model, folder, threads, reps, backends)


def _installed(backend: str) -> bool:
    engine = engine_named(backend)
    return engine is not None and engine.installed()


def _run(model: str, folder: str | Path, threads: int, reps: int,
         backends: tuple[tuple[str, str, bool], ...]) -> FolderBench:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [job for job in plan_jobs([folder], tmp, UpscaleOptions()) if not is_video(job.source)]
        if not jobs:
            raise UserError(f"{folder}: no images to time")
        default = choose_engine(None, model_path(model), "cpu", None, input_megapixels(jobs)).name
        backends = tuple(b for b in backends if _installed(b[1]))
        images = [torch.from_numpy(read_image(job.source).colour()).permute(2, 0, 1)[None] for job in jobs]
        engines = {label: load_upscaler(model, name, "cpu", channels_last=cl) for label, name, cl in backends}
        setup = {name: _warm(up, images) for name, up in engines.items()}

        def network_only(up: Upscaler) -> object:
            return [up(x) for x in images]

        def end_to_end(up: Upscaler) -> object:
            return upscale_jobs(up, jobs, UpscaleOptions(), verbose=False)

        fns: list[Callable[[], object]] = []
        labels = []
        for name, up in engines.items():
            fns += [partial(network_only, up), partial(end_to_end, up)]
            labels += [(name, "network only"), (name, "end to end")]
        times = [ms / len(jobs) for ms in time_round_robin(fns, 0, reps, torch.device("cpu"))]
    rows = [FolderRow(name, stage, ms) for (name, stage), ms in zip(labels, times, strict=True)]
    reference = rows[0].ms_per_image
    for i, row in enumerate(rows):
        row.x_eager = reference / row.ms_per_image
        row.x_network = row.ms_per_image / rows[i - i % 2].ms_per_image
        row.setup_s = setup[row.backend]
    size = int(images[0].shape[-1]), int(images[0].shape[-2])
    return FolderBench(str(folder), len(jobs), size, model, threads, reps, default, rows)
