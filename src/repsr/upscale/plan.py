"""Planning an upscale run: which input file goes to which output, and the run's options.

Folders are walked recursively and their relative layout is kept under ``-o``; files inside the
output folder are never inputs (an output folder inside the input folder is not re-upscaled on
the next run). Output names are checked before any work: two inputs that would write the same
file, an output that would replace an input, or an animation written to a format that holds one
frame, are refused. Images, animations and videos are planned alike; :mod:`repsr.upscale.image`,
:mod:`repsr.upscale.animation` and :mod:`repsr.upscale.video` do the work.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from repsr.errors import UserError
from repsr.imageio import ANIMATED_SUFFIXES, IMAGE_SUFFIXES, count_frames

EXTS = ("auto", "png", "jpg", "webp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class UpscaleOptions:
    """Per-run choices: tiling, output naming, final scale (``None`` = the model's), video batch."""

    tile: int = 0
    tile_pad: int | None = None
    suffix: str = ""
    ext: str = "auto"
    outscale: float | None = None
    batch: int | None = None  # video frames per network call; None: by frame size (video.frames_per_call)


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def input_megapixels(jobs: list[Job]) -> float:
    """Input pixels of the whole run in MP, from file headers (no decoding): what decides whether compiling pays.

    Every frame of a video or an animation counts. A file whose header cannot be read counts as
    nothing here; it is reported when its job runs.
    """
    total = 0
    for job in jobs:
        with contextlib.suppress(Exception):
            if is_video(job.source):
                with av.open(str(job.source)) as container:
                    stream = container.streams.video[0]
                    total += stream.codec_context.width * stream.codec_context.height * (stream.frames or 1)
            else:
                with Image.open(job.source) as im:
                    total += im.size[0] * im.size[1] * int(getattr(im, "n_frames", 1))
    return total / 1e6


def _walk(folder: Path, skip: Path) -> list[Path]:
    """Images and videos under ``folder``, hidden files and anything under ``skip`` left out."""
    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    skip = skip.resolve()
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith(".") and not p.resolve().is_relative_to(skip))


def _target_name(rel: Path, opts: UpscaleOptions) -> Path:
    ext = rel.suffix if opts.ext == "auto" or is_video(rel) else f".{opts.ext}"
    return rel.with_name(f"{rel.stem}{opts.suffix}{ext}")


def plan_jobs(inputs: list[str | Path], output: str | Path, opts: UpscaleOptions) -> list[Job]:
    """Pair every input file with its output path, refusing any plan that would lose a file.

    One input file with an ``-o`` that has a known suffix writes exactly there; otherwise ``-o``
    is a folder and each file keeps its name (plus ``--suffix``; folder inputs keep their
    relative sub-folders). Missing inputs, a video written as an image (or the reverse), two
    inputs with one output name and outputs that would replace an input are user errors.
    """
    output = Path(output)
    sources = [Path(p) for p in inputs]
    for src in sources:
        if not src.exists():
            raise UserError(f"{src}: no such file or folder")
    for src in sources:
        if src.is_dir() and src.resolve() == output.resolve():
            raise UserError(f"-o {output} is the input folder itself: outputs would mix with the inputs (and be "
                            "read as inputs next time); choose another output folder")
    single = len(sources) == 1 and sources[0].is_file()
    if single and output.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        jobs = [Job(sources[0], output)]
    else:
        jobs = []
        for src in sources:
            pairs = [(f, f.relative_to(src)) for f in _walk(src, output)] if src.is_dir() else [(src, Path(src.name))]
            jobs += [Job(f, output / _target_name(rel, opts)) for f, rel in pairs]
    check_jobs(jobs)
    return jobs


def _frames_lost(job: Job) -> int:
    """Frames ``job`` would drop: an animation's count (from its header) when its target holds one frame, else 0."""
    if job.source.suffix.lower() not in ANIMATED_SUFFIXES or job.target.suffix.lower() in ANIMATED_SUFFIXES:
        return 0
    frames = count_frames(job.source)
    return frames if frames > 1 else 0


def check_jobs(jobs: list[Job]) -> None:
    """Raise before any work if a job cannot be done or would overwrite what another needs."""
    sources = {job.source.resolve(): job for job in jobs}
    targets: dict[Path, Job] = {}
    for job in jobs:
        if is_video(job.source) != is_video(job.target):
            what = "a video" if is_video(job.source) else "an image"
            raise UserError(f"{job.source}: {what} cannot be written as '{job.target.suffix}' "
                            f"(name the output {job.source.suffix} or give a folder)")
        if frames := _frames_lost(job):
            raise UserError(f"{job.source}: an animation ({frames} frames) cannot be written as "
                            f"'{job.target.suffix}', which keeps one frame; .gif, .png (APNG) and .webp keep them all "
                            "(name the output so, or use --ext png or --ext webp)")
        target = job.target.resolve()
        if target == job.source.resolve():
            raise UserError(f"{job.source}: output would overwrite the input (use --suffix or another -o)")
        if target in sources:
            raise UserError(f"{job.source}: output {job.target} would overwrite the input {sources[target].source} "
                            "(use --suffix or another -o)")
        if target in targets:
            raise UserError(f"{targets[target].source} and {job.source} would both be written to {job.target} "
                            "(use --ext auto or --suffix, or upscale them separately)")
        targets[target] = job

