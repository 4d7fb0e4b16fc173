"""Running a model on images: the :class:`Upscaler` protocol, the engines that run it, one loader, tiling."""

from repsr.inference.engines import (
                                     ALIASES,
                                     AUTO_COMPILE_MPIX,
                                     BACKENDS,
                                     ENGINES,
                                     PRECISIONS,
                                     Engine,
                                     choose_engine,
                                     engine_named,
                                     is_model_file,
                                     merged,
                                     output_suffixes,
                                     writer_for,
)
from repsr.inference.engines.torch_compile import CompiledUpscaler
from repsr.inference.load import load_runner, load_upscaler
from repsr.inference.tiles import Tile, plan_tiles, upscale_tiled, upscale_to_pixels
from repsr.inference.upscaler import TorchUpscaler, Upscaler, as_upscaler, resolve_device, super_resolve

__all__ = ["ALIASES", "AUTO_COMPILE_MPIX", "BACKENDS", "ENGINES", "PRECISIONS", "CompiledUpscaler", "Engine", "Tile",
           "TorchUpscaler", "Upscaler", "as_upscaler", "choose_engine", "engine_named", "is_model_file",
           "load_runner", "load_upscaler", "merged", "output_suffixes", "plan_tiles", "resolve_device",
           "super_resolve", "upscale_tiled", "upscale_to_pixels", "writer_for"]
