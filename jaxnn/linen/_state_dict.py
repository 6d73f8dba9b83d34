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

import jax
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from .._checkpoint import (
    CheckpointError,
    KeyMap,
    LoadResult,
    Target,
    open_checkpoint,
    optional_counters,
    plan_load,
    read_value,
    resolve_sharding,
    save_checkpoint,
)

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
    key_map: KeyMap | None = None,
    variant: str | None = None,
    sharding: Any = None,
) -> tuple[dict[str, Any], LoadResult]:
    """Put a torch state_dict into linen variables: the functional twin of
    :func:`jaxnn.nnx.load_state_dict` (same arguments, same errors).

    Args:
      variables: ``model.init(...)``'s result, or ``jax.eval_shape(model.init, ...)``'s (abstract:
        every value then comes from the checkpoint); gives the keys, shapes and dtypes.
      state_dict: a mapping of dotted keys to arrays or torch tensors, or the path of a file
        (``.safetensors`` without torch, ``.pt``/``.bin`` with it), an index of shards, or a folder.
      strict: report missing/unexpected keys as errors (all at once; nothing returned then).
        With False, missing entries keep the values in ``variables``. As in torch, a BatchNorm's
        ``num_batches_tracked`` may be absent (it keeps its value in ``variables``). Checkpoint
        keys that are one tensor with a loaded key (torch tensors sharing storage, such as
        diffusers' ``Downsample2D`` ``conv``/``Conv2d_0``) are not unexpected.
      dtype: cast floating values to this dtype (default: each variable's dtype); a real floating
        dtype (ValueError otherwise).
      key_map: a callable ``key -> key`` (None drops it) or ``{regex: replacement}`` applied to
        checkpoint keys before matching (``{r"^module\\.": ""}``).
      variant: in a folder, load the ``*.{variant}.safetensors`` files.
      sharding: one ``jax.sharding.Sharding``, a mapping from key, or a callable of the key; each
        device's slice is read on its own from the file. Without one (or where the mapping or callable
        gives None), a value already sharded over several devices keeps its sharding.

    Returns:
      ``(new_variables, LoadResult(missing_keys, unexpected_keys))``; collections other than
      ``params`` and ``batch_stats`` are passed through unchanged.

    Raises:
      CheckpointError (ValueError): a bad file (named), missing/unexpected keys (strict), shape
        mismatches, floating values for integer variables, a non-tensor value (an int in a ``.pt``
        file) for a variable's key (unmatched ones are only unexpected keys), missing keys of
        abstract variables.
    """
    ck = open_checkpoint(state_dict, variant=variant).mapped(key_map)
    flat = _flat(variables)
    keys = list(flat)
    targets = [Target((k,), tuple(flat[k][2].shape), flat[k][2].dtype) for k in keys]
    chosen, result = plan_load(targets, ck, strict=strict, dtype=dtype,
                               optional=optional_counters(_norm_prefixes(flat), ck))
    abstract = [k for i, k in enumerate(keys) if i not in chosen and isinstance(flat[k][2], jax.ShapeDtypeStruct)]
    if abstract:
        raise CheckpointError("the variables are abstract (jax.eval_shape) and the checkpoint has no value for: "
                              + ", ".join(repr(k) for k in sorted(abstract)) + ".")
    values = {keys[i]: read_value(entry, targets[i], dtype, resolve_sharding(sharding, keys[i], flat[keys[i]][2]))
              for i, entry in chosen.items()}
    trees: dict[str, dict[tuple[str, ...], Any]] = {}
    for key, (col, path, value) in flat.items():
        trees.setdefault(col, {})[path] = values.get(key, value)
    out = {col: unfreeze(dict(value)) if isinstance(value, Mapping) else value for col, value in variables.items()}
    out.update({col: unflatten_dict(tree) for col, tree in trees.items()})
    return out, result


def save_state_dict(
    variables: Mapping[str, Any],
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
    *,
    max_shard_size: int | str | None = None,
    variant: str | None = None,
    weights_name: str = "model.safetensors",
) -> list[str]:
    """Write :func:`state_dict` as ``.safetensors``: one file, or a folder with shards and an index
    as ``save_pretrained`` writes them (see :func:`jaxnn.nnx.save_state_dict`). Returns the paths."""
    return save_checkpoint(state_dict(variables), path, metadata=metadata, max_shard_size=max_shard_size,
                           variant=variant, weights_name=weights_name)
