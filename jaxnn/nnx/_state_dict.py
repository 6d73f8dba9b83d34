"""torch state_dicts for flax.nnx modules: dotted keys straight from the module graph."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _layers as L
from .._checkpoint import CheckpointError, LoadResult, as_state_dict, optional_counters, plan_load, save_file
from ._modules import _Layer

__all__ = ["CheckpointError", "LoadResult", "load_state_dict", "save_state_dict", "state_dict"]


def _variables(module: nnx.Module) -> dict[str, nnx.Variable]:
    """The state_dict's Variables under ``module`` by torch-style dotted path: parameters
    (``nnx.Param``) and persistent buffers (``nnx.BatchStat``), subclasses included. Everything else
    stays out, as torch's state_dict holds only parameters and persistent buffers: RNG state,
    non-persistent :class:`~jaxnn.nnx.Buffer`, ``nnx.Cache``, sown ``nnx.Intermediate`` values,
    other variable types. List children contribute their index, as torch's ModuleList/Sequential do."""
    out: dict[str, nnx.Variable] = {}
    for path, node in nnx.iter_graph(module):
        if isinstance(node, (nnx.Param, nnx.BatchStat)):
            out[".".join(str(p) for p in path)] = node
    return out


def state_dict(module: nnx.Module) -> dict[str, jax.Array]:
    """``{'down.0.conv1.weight': array, ...}``: parameters and persistent buffers (``running_mean``,
    ``num_batches_tracked``, ...) under torch's names, as torch's ``module.state_dict()``.

    Examples:
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> net = jn.Sequential(jn.Linear(3, 4, rngs=nnx.Rngs(0)), jn.BatchNorm1d(4))
      >>> sorted(jn.state_dict(net))
      ['0.bias', '0.weight', '1.bias', '1.num_batches_tracked', '1.running_mean', '1.running_var', '1.weight']
    """
    return {k: v[...] for k, v in _variables(module).items()}


def load_state_dict(
    module: nnx.Module,
    state_dict: Mapping[str, Any] | str | os.PathLike,
    *,
    strict: bool = True,
    dtype: Any = None,
) -> LoadResult:
    """Load a torch state_dict into ``module`` in place, by name, with no transposes.

    Args:
      module: a jaxnn.nnx model whose attribute names follow the torch model's.
      state_dict: mapping of dotted keys to numpy arrays, JAX arrays or torch tensors (torch is
        imported only if a tensor is passed), or a path to a ``.safetensors`` (read without torch)
        or ``.pt`` / ``.bin`` file (``torch.load(weights_only=True)``). Parameters and persistent
        buffers (BatchNorm's running statistics) are loaded alike.
      strict: if True, any missing or unexpected key is an error (all of them reported at once).
        With False they are returned. Shape mismatches are always errors. As in torch, a
        BatchNorm's ``num_batches_tracked`` may be absent (older checkpoints; torch's check
        applies only to its own state_dicts whose ``_metadata`` says version 2): the counter
        then keeps its value.
      dtype: cast every floating value to this dtype (default: keep each variable's dtype;
        integer buffers such as ``num_batches_tracked`` always keep theirs).

    Returns:
      ``LoadResult(missing_keys, unexpected_keys)``.

    Raises:
      CheckpointError (ValueError): missing/unexpected keys (strict) or shape mismatches; nothing
        is loaded then. TypeError: a value that is not an array. FileNotFoundError: bad path.
    """
    given = as_state_dict(state_dict)
    variables = _variables(module)
    expected = {k: (tuple(v[...].shape), v[...].dtype) for k, v in variables.items()}
    norms = [".".join(str(p) for p in path) for path, node in nnx.iter_graph(module)
             if isinstance(node, _Layer) and isinstance(node._layer, L.BatchNorm) and node._layer.track_running_stats]
    values, result = plan_load(expected, given, strict=strict, dtype=dtype,
                               optional=optional_counters(norms, state_dict))
    for key, arr in values.items():
        variables[key].set_value(jnp.asarray(arr))
    return result


def save_state_dict(module: nnx.Module, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write :func:`state_dict` to a ``.safetensors`` file that torch's ``load_state_dict`` reads."""
    save_file(state_dict(module), path, metadata)
