"""Typed, frozen configuration dataclasses and one strict loader for all of them.

Why strict: YAML read through ``dict.get`` turns a typo (``bn_swich: 0.5``) into a silent
default. :func:`from_dict` rejects unknown keys and wrong types with a one-line error that names
the file and the dotted key, and nested dataclasses are checked recursively.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from repsr.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored inside every weights file.

    ``arch`` picks the family (see :data:`repsr.models.registry.FAMILIES`). ``blocks``/``channels``
    are the paper's M and C. The remaining fields are per-family options: each family's registry
    entry names the ones it reads, and building a model rejects non-default values given to a
    family that does not read them. One flat record, so every weights file written so far reads
    unchanged; a new family's option is a new field with a default.
    """

    arch: str = "repsr"
    scale: int = 4
    blocks: int = 4
    channels: int = 16
    in_channels: int = 3
    # Start VGG-style nets from their nearest-neighbour skip: every family zeroes its tail block's output
    # (BN scales, RepSR's squeeze, ECB's branch ends, plain's conv; see RepBlock.zero_init_output).
    # False = PyTorch's default init everywhere.
    zero_init_tail: bool = True
    # Channel order the weights expect: the official Bicubic++ release was trained on BGR images.
    bgr: bool = False
    # RepSR block: number of expand-and-squeeze paths, expansion ratio r, clean identity path,
    # BatchNorm after the 1x1 squeeze as well as after the 3x3 expand.
    paths: int = 2
    expand_ratio: int = 2
    identity: bool = True
    bn_after_squeeze: bool = False
    # ECB: expansion of the 1x1 -> 3x3 path (ECBSR uses 2).
    ecb_expand: int = 2
    # Bicubic++: biases on its convolutions (removed in its third stage), and conv1's output width
    # (None = channels; differs from channels only between rounds of structured pruning).
    bias: bool = True
    mid_channels: int | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "<metadata>") -> ModelConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: model config is not valid JSON ({exc})") from None
        return from_dict(cls, data, source)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_value(tp: Any, value: Any, key: str, source: str) -> Any:
    """Return ``value`` converted to ``tp`` or raise a ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, source, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(arg, value, key, source)
            except ConfigError:
                continue  # the next member of the union may take it; none did: one error below
        raise ConfigError(f"{source}: '{key}' has the wrong type ({type(value).__name__}: {value!r})")
    if origin in (list, tuple):
        if isinstance(value, (str, Path)):
            value = [value]  # a single folder where a list is expected is a common, harmless shorthand
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list, got {type(value).__name__}")
        (item_tp, *_rest) = typing.get_args(tp) or (Any,)
        items = [_check_value(item_tp, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{source}: '{key}' must be one of {choices}, got {value!r}")
        return value
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: '{key}' has unsupported type {_type_name(tp)}")


def from_dict(cls: type[T], data: dict[str, Any], source: str = "<config>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at '{prefix or '<top>'}', got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key '{prefix}{unknown[0]}' (known: {', '.join(sorted(fields))})")
    kwargs = {name: _check_value(hints[name], value, prefix + name, source) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning I/O and syntax errors into one-line ConfigErrors."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars/lists) to a nested dict."""
    pairs = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            pairs.append((key.strip(), yaml.safe_load(raw) if raw != "" else ""))
        except yaml.YAMLError:
            raise ConfigError(f"{source}: cannot parse value of '{key}'") from None
    return _set_dotted(data, pairs, source)


def apply_values(data: dict[str, Any], values: Mapping[str, Any], source: str = "<values>") -> dict[str, Any]:
    """Set dotted keys (``train.lr``) of a nested dict to values that are already typed, with no parsing: options a
    command holds as numbers and lists go into a config as they are, not through text and back."""
    return _set_dotted(data, list(values.items()), source)


def _set_dotted(data: dict[str, Any], pairs: list[tuple[str, Any]], source: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(data))  # deep copy of plain data
    for key, value in pairs:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: '{key}' goes through a non-mapping value")
        node[parts[-1]] = value
    return out


def replace(config: T, **changes: Any) -> T:
    """``dataclasses.replace`` under a name that reads well at call sites."""
    return dataclasses.replace(config, **changes)


__all__ = ["ModelConfig", "from_dict", "load_yaml", "apply_overrides", "apply_values", "replace", "field"]
