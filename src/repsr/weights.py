"""Saving and loading model weights safely, with the config that rebuilds the model.

repsr's own format is safetensors with the :class:`ModelConfig` as JSON in the metadata, so a file
rebuilds its own network (training-time or merged) without any side information. Foreign files
are read without unpickling code: ``.pth`` only through ``torch.load(weights_only=True)``. Three
foreign layouts are recognised by their keys, the way spandrel detects architectures: Real-ESRGAN's
SRVGGNetCompact (``params`` / ``params_ema``; PReLU variant), the merged plain ECBSR nets that ETDS
publishes (``backbone.{i}.0`` conv / ``backbone.{i}.1`` PReLU: the same network, renamed) and the
official Bicubic++ release (``conv0`` ... ``conv_out``).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from repsr.atomic import atomic_write
from repsr.config import ModelConfig
from repsr.errors import UserError, WeightsError
from repsr.models import build_model, model_config

FORMAT = "repsr-1"


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model``'s weights and config to ``path`` (safetensors), atomically."""
    config = model_config(model)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": config.to_json(), **(metadata or {})}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def save_compact_pth(model: nn.Module, path: str | Path) -> None:
    """Write a merged VGG-style net as ``{"params": state_dict}``, Real-ESRGAN/chaiNNer's layout."""
    if model_config(model).arch != "compact":
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


def infer_compact_config(state: dict[str, Tensor]) -> ModelConfig:
    """Rebuild an SRVGGNetCompact's config from its keys (as spandrel does)."""
    indices = sorted(int(k.split(".")[1]) for k in state if k.startswith("body.") and k.endswith(".weight"))
    if not indices or state.get("body.1.weight") is None or state["body.1.weight"].dim() != 1:
        raise WeightsError("not an SRVGGNetCompact (PReLU) state dict")
    first, last = state["body.0.weight"], state[f"body.{indices[-1]}.bias"]
    in_ch, channels = first.shape[1], first.shape[0]
    scale = round((last.numel() / in_ch) ** 0.5)
    return ModelConfig(arch="compact", scale=scale, blocks=(indices[-1] - 2) // 2, channels=channels,
                       in_channels=in_ch)


_BACKBONE_KEY = re.compile(r"backbone\.(\d+)\.([01])\.(weight|bias)")


def is_backbone_layout(state: dict[str, Tensor]) -> bool:
    """A merged plain ECBSR (ETDS's release): ``backbone.{i}.0`` convs, ``backbone.{i}.1`` PReLUs, last conv alone."""
    matches = [_BACKBONE_KEY.fullmatch(k) for k in state]
    if not matches or None in matches:
        return False
    last = max(int(m.group(1)) for m in matches if m is not None)
    prelus = [f"backbone.{i}.1.weight" for i in range(last)]
    return all(k in state and state[k].dim() == 1 for k in prelus) and f"backbone.{last}.1.weight" not in state


def backbone_to_compact(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename ``backbone.{i}.0`` -> ``body.{2i}`` and ``backbone.{i}.1`` -> ``body.{2i+1}`` (SRVGGNetCompact).

    The networks are the same function: conv3x3 + PReLU stack, last conv, pixel shuffle, and an
    input repeated per output sub-pixel before the shuffle, which is nearest-neighbour upsampling.
    """
    renamed = {}
    for key, value in state.items():
        match = _BACKBONE_KEY.fullmatch(key)
        if match is None:
            raise WeightsError(f"'{key}' is not a backbone.{{i}}.{{0,1}} key")
        index, part, kind = match.groups()
        renamed[f"body.{2 * int(index) + int(part)}.{kind}"] = value
    return renamed


def infer_bicubic_pp_config(state: dict[str, Tensor]) -> ModelConfig:
    """Config of an official-layout Bicubic++ state dict (width, scale, biases)."""
    conv0, out = state["conv0.weight"], state["conv_out.weight"]
    in_ch = conv0.shape[1]
    shuffle = round((out.shape[0] / in_ch) ** 0.5)
    if shuffle % 2 or in_ch * shuffle * shuffle != out.shape[0]:
        raise WeightsError("conv_out of this Bicubic++ file has no valid pixel-shuffle factor")
    mid = state["conv1.weight"].shape[0] if "conv1.weight" in state else conv0.shape[0]
    return ModelConfig(arch="bicubic_pp", scale=shuffle // 2, channels=conv0.shape[0], in_channels=in_ch,
                       bias="conv0.bias" in state, mid_channels=None if mid == conv0.shape[0] else mid)


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
    obj = safe_torch_load(path)
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: no state dict of tensors inside")
    return backbone_to_compact(obj) if is_backbone_layout(obj) else obj


def _config_for_foreign(path: Path, state: dict[str, Tensor]) -> ModelConfig:
    if "body.0.weight" in state:
        return infer_compact_config(state)
    if "conv0.weight" in state and "conv_out.weight" in state:
        return infer_bicubic_pp_config(state)
    raise WeightsError(f"{path}: unrecognised weights layout (not repsr, SRVGGNetCompact, ECBSR backbone or "
                       "Bicubic++)")


def load_state(path: str | Path) -> tuple[ModelConfig, dict[str, Tensor], dict[str, str]]:
    """Read ``(config, state_dict, metadata)`` from a repsr, Compact or Bicubic++ file."""
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
        else:
            config = _config_for_foreign(path, state)
        return config, state, meta
    if path.suffix in (".pth", ".pt", ".ckpt"):
        state = _read_pth(path)
        return _config_for_foreign(path, state), state, {}
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

