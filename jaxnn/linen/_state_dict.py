"""torch state_dicts for flax.linen parameter trees ('net.0.weight' <-> {'net_0': {'weight'}})."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from flax.traverse_util import flatten_dict, unflatten_dict

from .._checkpoint import LoadResult, as_state_dict, plan_load, save_file

_INDEXED = re.compile(r"^(.*?)((?:_\d+)+)$")


def _to_linen_path(key: str) -> tuple[str, ...]:
    """'down.0.conv1.weight' -> ('down_0', 'conv1', 'weight'): list indices join their parent
    the way linen names list children."""
    out: list[str] = []
    for seg in key.split("."):
        if seg.isdigit() and out:
            out[-1] = f"{out[-1]}_{seg}"
        else:
            out.append(seg)
    return tuple(out)


def _to_torch_key(path: tuple[Any, ...]) -> str:
    """('down_0', 'conv1', 'weight') -> 'down.0.conv1.weight'."""
    segs = []
    for seg in map(str, path):
        m = _INDEXED.match(seg)
        if m and m.group(1):
            segs.append(m.group(1) + m.group(2).replace("_", "."))
        else:
            segs.append(seg)
    return ".".join(segs)


def _unwrap(params: Mapping[str, Any]) -> Mapping[str, Any]:
    return params["params"] if set(params) == {"params"} else params


def state_dict_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A linen params tree (or ``{'params': ...}``) as a torch state_dict with dotted keys.

    Children that linen named ``net_0`` (list entries) become ``net.0``. Name torch attributes
    that end in ``_<digits>`` differently (e.g. ``conv1``, not ``conv_1``): linen cannot tell
    them apart from list entries.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.linen import state_dict_from_params
      >>> sorted(state_dict_from_params({"params": {"blocks_0": {"weight": jnp.ones(2)}}}))
      ['blocks.0.weight']
    """
    flat = flatten_dict(dict(_unwrap(params)))
    return {_to_torch_key(path): value for path, value in flat.items()}


def params_from_state_dict(
    state_dict: Mapping[str, Any] | str | os.PathLike,
    template: Mapping[str, Any] | None = None,
    *,
    strict: bool = True,
    dtype: Any = None,
) -> dict[str, Any]:
    """A torch state_dict (mapping or checkpoint path) as a linen params tree.

    Args:
      state_dict: as for :func:`jaxnn.nnx.load_state_dict` (arrays, torch tensors, or a path).
      template: optional params from ``model.init(...)``; with it, keys and shapes are checked
        (all problems in one error, nothing returned partially), values take its dtypes, and with
        ``strict=False`` missing entries keep the template's values.
      strict: report missing/unexpected keys as errors (only with a template).
      dtype: cast every value to this dtype.

    Returns:
      The params tree (without the ``'params'`` wrapper): ``model.apply({'params': p}, x)``.
    """
    given = as_state_dict(state_dict)
    if template is None:
        tree = {_to_linen_path(k): jnp.asarray(v if dtype is None else v.astype(dtype)) for k, v in given.items()}
        return unflatten_dict(tree)
    current = state_dict_from_params(template)
    expected = {k: (tuple(v.shape), v.dtype) for k, v in current.items()}
    values, _ = plan_load(expected, given, strict=strict, dtype=dtype)
    merged = {k: jnp.asarray(values[k]) if k in values else v for k, v in current.items()}
    return unflatten_dict({_to_linen_path(k): v for k, v in merged.items()})


def load_result(state_dict: Mapping[str, Any], template: Mapping[str, Any]) -> LoadResult:
    """Which keys of ``state_dict`` a linen ``template`` lacks or has in excess."""
    have, want = set(as_state_dict(state_dict)), set(state_dict_from_params(template))
    return LoadResult(sorted(want - have), sorted(have - want))


def save_params(params: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write linen params to a ``.safetensors`` file under torch's dotted names."""
    save_file(state_dict_from_params(params), path, metadata)
