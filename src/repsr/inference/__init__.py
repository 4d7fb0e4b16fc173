"""Running a model on images: the :class:`Upscaler` protocol, its torch and ONNX engines, one loader, tiling."""

from repsr.inference.compiled import ALIASES, AUTO_COMPILE_MPIX, BACKENDS, CompiledUpscaler, choose_backend
from repsr.inference.load import is_onnx, load_runner, load_upscaler, merged
from repsr.inference.tiles import Tile, plan_tiles, upscale_tiled, upscale_to_pixels
from repsr.inference.upscaler import TorchUpscaler, Upscaler, as_upscaler, resolve_device, super_resolve

__all__ = ["ALIASES", "AUTO_COMPILE_MPIX", "BACKENDS", "CompiledUpscaler", "choose_backend", "Tile", "TorchUpscaler",
           "Upscaler", "as_upscaler", "is_onnx", "load_runner", "load_upscaler", "merged", "plan_tiles",
           "resolve_device", "super_resolve", "upscale_tiled", "upscale_to_pixels"]
