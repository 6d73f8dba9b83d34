"""torch state_dicts for flax.linen variables: ``{'params': ..., 'batch_stats': ...}`` <-> dotted keys.

Keys are the module names joined by dots: a linen module named ``conv1`` inside ``down`` gives
``down.conv1.weight``. Lists of children are :class:`~jaxnn.linen.ModuleList` /
:class:`~jaxnn.linen.Sequential`, whose children are named ``0``, ``1``, ... as in torch, so no key
is ever guessed from a name (diffusers' ``linear_1`` stays ``linear_1``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from .._checkpoint import CheckpointError, LoadResult, as_state_dict, optional_counters, plan_load, save_file

__all__ = ["CheckpointError", "LoadResult", "STATE_DICT_COLLECTIONS", "load_state_dict", "save_state_dict",
           "state_dict"]

# The collections torch's state_dict holds: parameters and persistent buffers.
STATE_DICT_COLLECTIONS = ("params", "batch_stats")


def _check_variables(variables: Mapping[str, Any]) -> None:
    if not isinstance(variables, Mapping) or not set(variables) & set(STATE_DICT_COLLECTIONS) and variables:
        raise TypeError(
            "expected linen variables as `model.init(...)` returns them ({'params': ..., 'batch_stats': ...}), "
            f"got a mapping with keys {sorted(variables) if isinstance(variables, Mapping) else type(variables)}."
        )


def _flat(variables: Mapping[str, Any]) -> dict[str, tuple[str, tuple[str, ...], Any]]:
    _check_variables(variables)
    out = {}
    for col in STATE_DICT_COLLECTIONS:
        for path, value in flatten_dict(unfreeze(dict(variables.get(col, {})))).items():
            out[".".join(map(str, path))] = (col, path, value)
    return out


def _norm_prefixes(flat: Mapping[str, tuple[str, tuple[str, ...], Any]]) -> list[str]:
    """The BatchNorm layers with running statistics: ``batch_stats`` holding ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` side by side (linen variables carry no module type)."""
    stats = {path for col, path, _ in flat.values() if col == "batch_stats"}
    return [".".join(path[:-1]) for path in stats if path[-1] == "num_batches_tracked"
            and path[:-1] + ("running_mean",) in stats and path[:-1] + ("running_var",) in stats]


def state_dict(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Linen variables as torch's state_dict: parameters and persistent buffers by dotted key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> net = jl.Sequential([jl.Linear(3, 4), jl.BatchNorm1d(4)])
      >>> variables = net.init(jax.random.key(0), jnp.ones((2, 3)))
      >>> sorted(jl.state_dict(variables))
      ['0.bias', '0.weight', '1.bias', '1.num_batches_tracked', '1.running_mean', '1.running_var', '1.weight']
    """
    return {k: v for k, (_, _, v) in _flat(variables).items()}


def load_state_dict(
    variables: Mapping[str, Any],
    state_dict: Mapping[str, Any] | str | os.PathLike,
    *,
    strict: bool = True,
    dtype: Any = None,
) -> tuple[dict[str, Any], LoadResult]:
    """Put a torch state_dict into linen variables: the functional twin of
    :func:`jaxnn.nnx.load_state_dict`.

    Args:
      variables: ``model.init(...)``'s result; gives the keys, shapes and dtypes.
      state_dict: mapping of dotted keys to arrays or torch tensors, or a checkpoint path
        (``.safetensors`` without torch, ``.pt``/``.bin`` with it).
      strict: report missing/unexpected keys as errors (all at once; nothing returned then).
        With False, missing entries keep the values in ``variables``. As in torch, a BatchNorm's
        ``num_batches_tracked`` may be absent (it keeps its value in ``variables``).
      dtype: cast floating values to this dtype (default: each variable's dtype).

    Returns:
      ``(new_variables, LoadResult(missing_keys, unexpected_keys))``; collections other than
      ``params`` and ``batch_stats`` are passed through unchanged.

    Raises:
      CheckpointError (ValueError): missing/unexpected keys (strict) or shape mismatches.
    """
    given = as_state_dict(state_dict)
    flat = _flat(variables)
    expected = {k: (tuple(v.shape), v.dtype) for k, (_, _, v) in flat.items()}
    values, result = plan_load(expected, given, strict=strict, dtype=dtype,
                               optional=optional_counters(_norm_prefixes(flat), state_dict))
    trees: dict[str, dict[tuple[str, ...], Any]] = {}
    for key, (col, path, value) in flat.items():
        trees.setdefault(col, {})[path] = jnp.asarray(values[key]) if key in values else value
    out = {col: unfreeze(dict(value)) if isinstance(value, Mapping) else value for col, value in variables.items()}
    out.update({col: unflatten_dict(tree) for col, tree in trees.items()})
    return out, result


def save_state_dict(
    variables: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write :func:`state_dict` to a ``.safetensors`` file that torch's ``load_state_dict`` reads."""
    save_file(state_dict(variables), path, metadata)
