"""Upscaling an animated GIF, APNG or WebP: every frame, written as an animation again.

Why a job of its own: :func:`~repsr.imageio.read_image` keeps an image's first frame, so an
animation went out as one still picture with exit 0 (issue 26). Here each frame is decoded,
upscaled (through :func:`~repsr.upscale.image.upscale_pixels`, alpha on its own as for a still image)
and turned into the output format's pixels before the next is decoded: no frame is ever held as
float, and the input frames are not kept. Pillow's encoders take the whole list of frames before
writing the first byte, so the output frames are held in 8 bits (GIF: one byte per pixel).
Durations and the loop count are kept; GIF has 1-bit transparency, so its upscaled alpha is
thresholded back at half (:func:`~repsr.imageio.gif_frame`). An animation written to a format
that holds none is refused when the run is planned (:func:`~repsr.upscale.plan.check_jobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image
from rich.progress import Progress

from repsr.imageio import Animation, gif_frame, read_animation, read_frames, write_animation
from repsr.inference import Upscaler
from repsr.progress import subtask
from repsr.upscale.image import format_warnings, upscale_pixels
from repsr.upscale.plan import Job, UpscaleOptions


@dataclass(frozen=True)
class PreparedAnimation:
    """An animation's frame facts and its output size: the read stage of a job (no frame decoded yet)."""

    animation: Animation
    size: tuple[int, int]  # output (W, H)
    gif: bool  # written as GIF: palette frames, one byte per pixel
    warnings: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of every output frame (the encoder holds them all), for the pipeline's memory budget.

        Pillow stores a palette frame in one byte per pixel and an RGB or RGBA frame in four.
        """
        return self.size[0] * self.size[1] * (1 if self.gif else 4) * self.animation.frames


@dataclass(frozen=True)
class UpscaledAnimation:
    """The encoded-ready frames of a computed animation and the facts its file keeps."""

    frames: list[Image.Image]
    animation: Animation


def prepare_animation(job: Job, scale: int, opts: UpscaleOptions) -> PreparedAnimation:
    """Read ``job.source``'s frame durations, loop count and transparency, and decide the output size."""
    animation = read_animation(job.source)
    suffix = job.target.suffix.lower()
    w, h = animation.size
    factor = opts.outscale or scale
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    warnings = format_warnings(job, suffix, gray=False, alpha=animation.alpha, bit_depth=8)
    return PreparedAnimation(animation, size, suffix == ".gif", warnings)


def compute_animation(upscaler: Upscaler, job: Job, prepared: PreparedAnimation, opts: UpscaleOptions,
                      progress: Progress | None = None) -> UpscaledAnimation:
    """Every frame upscaled, one at a time, as the Pillow image the output format stores."""
    animation = prepared.animation
    frames = []
    with subtask(progress, f"{job.source.name} (frames)", animation.frames, "frames") as tick:
        for frame in read_frames(animation):
            out = upscale_pixels(upscaler, frame, prepared.size, 8, animation.alpha, opts)
            frames.append(gif_frame(out) if prepared.gif else Image.fromarray(out))
            tick(1)
    return UpscaledAnimation(frames, animation)


def write_animation_output(job: Job, upscaled: UpscaledAnimation) -> None:
    """Encode the frames to ``job.target`` with the source's durations and loop count."""
    write_animation(job.target, upscaled.frames, upscaled.animation.durations, upscaled.animation.loop)

