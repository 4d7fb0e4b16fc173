"""Pretrained models shipped inside the package, addressable by name (``repsr-m4c16-x4``).

Shipped files live in ``repsr/pretrained/<name>.safetensors`` (merged nets, tens of KB each).
:func:`model_path` turns a user's ``--model`` argument -- a shipped name or a path -- into a file;
:func:`repsr.inference.load_runner`, the one loader every command uses, loads what it names.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from repsr.errors import WeightsError

DEFAULT_MODEL = "repsr-m4c16-x{scale}"
FAST_MODEL = "repsr-bicubicpp-x{scale}"  # ``repsr upscale --fast``: Bicubic++, near-bicubic cost


def _pretrained_dir() -> Path:
    return Path(str(resources.files("repsr") / "pretrained"))


def shipped_models() -> list[str]:
    """Names of the models shipped with this installation."""
    return sorted(p.stem for p in _pretrained_dir().glob("*.safetensors"))


def default_model_name(scale: int, fast: bool = False) -> str:
    return (FAST_MODEL if fast else DEFAULT_MODEL).format(scale=scale)


def model_path(name_or_path: str) -> Path:
    """The file behind a shipped name or a path, or a one-line error listing what exists."""
    candidate = _pretrained_dir() / f"{name_or_path}.safetensors"
    if candidate.is_file():
        return candidate
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(shipped_models()) or "none"
    raise WeightsError(f"'{name_or_path}' is neither a file nor a shipped model (shipped: {names})")

