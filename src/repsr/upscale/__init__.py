"""Upscale jobs: files, folders, animations and videos through any :class:`repsr.inference.Upscaler`.

``plan`` pairs inputs with outputs (and refuses plans that would lose a file or a frame), ``image``,
``animation`` and ``video`` do one file each, ``jobs`` runs a plan. The modules import downward only:
plan <- image <- animation; image, animation, video <- jobs.
"""

from repsr.upscale.image import upscale_image_file, upscale_pixels
from repsr.upscale.jobs import out_of_memory_hint, upscale_jobs
from repsr.upscale.plan import (
           EXTS,
           VIDEO_SUFFIXES,
           Job,
           UpscaleOptions,
           check_jobs,
           input_megapixels,
           is_video,
           plan_jobs,
)
from repsr.upscale.video import upscale_video

__all__ = ["EXTS", "VIDEO_SUFFIXES", "Job", "UpscaleOptions", "check_jobs", "input_megapixels", "is_video",
           "out_of_memory_hint", "plan_jobs", "upscale_image_file", "upscale_jobs", "upscale_pixels",
           "upscale_video"]
