"""A nested state (dicts, lists, tuples, tensors, numbers) as flat named tensors plus a JSON skeleton.

What a safetensors file can hold is a flat ``{name: tensor}`` map and a ``{str: str}`` metadata map;
a training state is a tree (``optimizer.state_dict()`` alone mixes int-keyed dicts, lists, tuples,
0-d tensors, floats, bools and None). :func:`flatten` moves every tensor out under its path
(``optimizer/state/3/exp_avg``) and describes everything else in a JSON skeleton; :func:`unflatten`
rebuilds a tree equal to the original: same container types (a tuple stays a tuple: ``random.setstate``
and Adam's ``betas`` want one), same key types and order (the optimizer's state is keyed by int), same
dtypes and shapes, and floats bit for bit (JSON's shortest repr round-trips; inf and NaN are spelled out).
One simplification: an ``OrderedDict`` (what ``state_dict()`` returns) comes back as a plain dict in the
same order, without the ``_metadata`` attribute torch hangs on it (per-module state-dict versions: safetensors
model files drop it too, and every module here loads without it).

The skeleton is plain JSON. A value is one of: ``null``, ``true``/``false``, a JSON number (an int or a
float as Python wrote it), a string, a list (a Python list), or an object with exactly one key saying
what it is: ``{"tensor": name}``, ``{"tuple": [...]}``, ``{"dict": {str: value}}`` (a dict whose keys are
all strings), ``{"items": [[key, value], ...]}`` (any other dict; keys are ints or strings), ``{"float":
"inf" | "-inf" | "nan"}``. Anything else (a numpy array, a function) is refused with its path, so what
is written is exactly what is read.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeAlias

import torch
from torch import Tensor

Json: TypeAlias = "None | bool | int | float | str | list[Json] | dict[str, Json]"

_SPECIAL_FLOATS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _name(prefix: str, key: str | int) -> str:
    """The tensor path of ``key`` under ``prefix``; a '/' inside a key is escaped so paths stay unique."""
    part = str(key).replace("%", "%25").replace("/", "%2F")
    return f"{prefix}/{part}" if prefix else part


def flatten(tree: object) -> tuple[dict[str, Tensor], Json]:
    """Split ``tree`` into ``{path: tensor}`` (detached, contiguous CPU copies) and its JSON skeleton."""
    tensors: dict[str, Tensor] = {}
    skeleton = _encode(tree, "", tensors)
    return tensors, skeleton


def _encode(value: object, path: str, tensors: dict[str, Tensor]) -> Json:
    # exact types: a subclass (an IntEnum, numpy's float64) would come back as its base class
    if value is None or type(value) is bool or type(value) is int or type(value) is str:
        return value
    if type(value) is float:
        if math.isfinite(value):
            return value
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, Tensor):
        if value.layout != torch.strided:
            raise TypeError(f"{path or '<root>'}: a {value.layout} tensor cannot be stored (dense tensors only)")
        if path in tensors:
            raise ValueError(f"{path}: two tensors at one path (a dict with both the int and the str key)")
        # a copy of its own: safetensors refuses tensors that share memory, and views of larger storages
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()
        return {"tensor": path}
    if type(value) is list:
        return [_encode(v, _name(path, i), tensors) for i, v in enumerate(value)]
    if type(value) is tuple:
        return {"tuple": [_encode(v, _name(path, i), tensors) for i, v in enumerate(value)]}
    if isinstance(value, dict) and type(value) in (dict, OrderedDict):
        keys = list(value)
        if all(type(k) is str for k in keys):
            return {"dict": {k: _encode(v, _name(path, k), tensors) for k, v in value.items()}}
        if not all(type(k) in (str, int) for k in keys):
            bad = next(k for k in keys if type(k) not in (str, int))
            raise TypeError(f"{path or '<root>'}: dict key {bad!r} is a {type(bad).__name__} (str or int only)")
        return {"items": [[k, _encode(v, _name(path, k), tensors)] for k, v in value.items()]}
    raise TypeError(f"{path or '<root>'}: a {type(value).__name__} cannot be stored (tensors, numbers, "
                    "strings, None and dicts/lists/tuples of them only)")


def unflatten(skeleton: Json, tensors: Mapping[str, Tensor]) -> object:
    """Rebuild the tree :func:`flatten` split; a malformed skeleton or a missing tensor is a ValueError."""
    if skeleton is None or isinstance(skeleton, (bool, int, float, str)):
        return skeleton
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    if len(skeleton) != 1:
        raise ValueError(f"a skeleton object has one key, not {sorted(skeleton)}")
    ((kind, body),) = skeleton.items()
    if kind == "tensor" and isinstance(body, str):
        if body not in tensors:
            raise ValueError(f"tensor '{body}' is missing")
        return tensors[body]
    if kind == "tuple" and isinstance(body, list):
        return tuple(unflatten(v, tensors) for v in body)
    if kind == "dict" and isinstance(body, dict):
        return {k: unflatten(v, tensors) for k, v in body.items()}
    if kind == "items" and isinstance(body, list):
        return dict(_item(pair, tensors) for pair in body)
    if kind == "float" and isinstance(body, str) and body in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[body]
    raise ValueError(f"unknown skeleton entry {kind!r}")


def _item(pair: Json, tensors: Mapping[str, Tensor]) -> tuple[str | int, object]:
    if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) in (str, int)):
        raise ValueError(f"a dict item is [key, value] with an int or str key, not {pair!r:.60}")
    key = pair[0]
    assert isinstance(key, (str, int))
    return key, unflatten(pair[1], tensors)
