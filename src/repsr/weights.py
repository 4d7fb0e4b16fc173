"""Saving and loading model weights safely, with the config that rebuilds the model.

repsr's own format is safetensors with the :class:`ModelConfig` as JSON in the metadata, so a file
rebuilds its own network (training-time or merged) without any side information. Foreign files
are read without unpickling code: ``.pth`` only through ``torch.load(weights_only=True)``. Foreign
layouts are recognised by their keys, the way spandrel detects architectures; each family's registry
entry declares the layouts it reads (:mod:`repsr.models.registry`): Real-ESRGAN's SRVGGNetCompact
(``params`` / ``params_ema``; PReLU variant), the merged plain ECBSR nets that ETDS publishes
(``backbone.{i}.0`` conv / ``backbone.{i}.1`` PReLU: the same network, renamed) and the official
Bicubic++ release (``conv0`` ... ``conv_out``).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from repsr.atomic import atomic_write
from repsr.config import ModelConfig
from repsr.errors import UserError, WeightsError
from repsr.models import CompactSR, build_model, model_config
from repsr.models.registry import recognise

FORMAT = "repsr-1"


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model``'s weights and config to ``path`` (safetensors), atomically."""
    config = model_config(model)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": config.to_json(), **(metadata or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def save_compact_pth(model: nn.Module, path: str | Path) -> None:
    """Write a merged VGG-style net as ``{"params": state_dict}``, Real-ESRGAN/chaiNNer's layout."""
    if not isinstance(model, CompactSR):
        raise WeightsError("only a merged (compact) network can be written in the Compact .pth layout")
    state = {k: v.detach().to("cpu").float().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save({"params": state}, tmp))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a repsr safetensors file (empty for foreign files)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None


def safe_torch_load(path: str | Path, what: str = "weights file") -> object:
    """``torch.load(weights_only=True)`` with a precise one-line error for each way it fails.

    What users meet: a 0-byte or cut-off file (a killed write, a partial download), a file that
    holds pickled code or objects (refused, never unpickled), or something that is not a torch
    file at all. torch reports these as EOFError, RuntimeError, OSError or UnpicklingError with
    multi-line texts; here each becomes one line that says which it is.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch's notes on a raw pickle's protocol: the refusal below says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many untyped errors for bad files
        size = path.stat().st_size if path.is_file() else 0
        with open(path, "rb") as f:
            head = f.read(4)
        text = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        if size == 0:
            why = f"{what} is empty (0 bytes: its write was interrupted)"
        elif head != b"PK\x03\x04" and head[:1] != b"\x80":  # neither a zip nor a legacy pickle
            why = f"{what} is not a PyTorch file ({size:,} bytes)"
        elif "Weights only load failed" in text:
            why = f"{what} holds pickled Python objects, not only tensors; refusing to unpickle it"
        elif isinstance(exc, (EOFError, OSError)) or "zip archive" in text or "central directory" in text:
            why = f"{what} is truncated or corrupt ({size:,} bytes; {text or type(exc).__name__})"
        else:
            why = f"{what} is not a readable PyTorch file ({type(exc).__name__}: {text[:120]})"
        raise WeightsError(f"{path}: {why}") from None


def _read_pth(path: Path) -> dict[str, Tensor]:
    """The state dict inside a ``.pth``: bare, or under the keys trainers wrap it in (BasicSR's ``params_ema``)."""
    obj = safe_torch_load(path)
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: no state dict of tensors inside")
    return obj


def load_state(path: str | Path) -> tuple[ModelConfig, dict[str, Tensor], dict[str, str]]:
    """Read ``(config, state_dict, metadata)`` from any weights file repsr reads.

    repsr's own safetensors state their config; any other state dict (a ``.pth``, or a safetensors
    file without the config) is matched against the foreign layouts of the family registry
    (:func:`repsr.models.registry.recognise`), which renames its keys into the family's own.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        meta = read_metadata(path)
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise WeightsError(f"{path}: corrupt safetensors file ({exc})") from None
        if "config" in meta:
            try:
                config = ModelConfig.from_json(meta["config"], str(path))
            except UserError as exc:
                raise WeightsError(str(exc)) from None
            return config, state, meta
        config, state = recognise(state, str(path))
        return config, state, meta
    if path.suffix in (".pth", ".pt", ".ckpt"):
        config, state = recognise(_read_pth(path), str(path))
        return config, state, {}
    raise WeightsError(f"{path}: unsupported weights format '{path.suffix}' (use .safetensors or .pth)")


def load_model(path: str | Path, device: str | torch.device = "cpu", bgr: bool | None = None) -> nn.Module:
    """Rebuild the model stored in ``path`` and load its weights strictly; returns it in eval mode.

    ``bgr`` overrides the channel order the weights expect. Foreign files cannot say it (the
    official Bicubic++ release was trained on BGR images: load it with ``bgr=True``); ``None``
    keeps what the file's config says (RGB for foreign files).
    """
    config, state, _ = load_state(path)
    if bgr is not None:
        config = dataclasses.replace(config, bgr=bool(bgr))
    try:
        model = build_model(config)
    except ValueError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise WeightsError(f"{path}: weights do not fit {config.arch} ({first})") from None
    return model.to(device).eval()

