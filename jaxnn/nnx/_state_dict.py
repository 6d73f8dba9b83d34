"""torch state_dicts for flax.nnx modules: dotted keys straight from the module graph."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
from flax import nnx
from flax.nnx import graphlib

from .. import _layers as L
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
from ._modules import _Layer

__all__ = ["CheckpointError", "LoadResult", "load_state_dict", "save_state_dict", "state_dict"]


def _walk(node: Any, path: tuple[str, ...], on_path: set[int]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, node) under ``node``, a node reached by several paths once per path (torch's
    state_dict lists a tied or twice-registered parameter under each name). Children come in
    attribute order for modules (torch's registration order), the graph's order otherwise."""
    yield path, node
    if isinstance(node, nnx.Variable) or id(node) in on_path:
        return
    impl = graphlib.get_node_impl(node) if graphlib.is_node(node) else None
    if impl is None:
        return
    children = dict(impl.node_dict(node))
    if isinstance(node, nnx.Module):
        order = [k for k in vars(node) if k in children]
        children = {k: children[k] for k in order + [k for k in children if k not in order]}
    on_path.add(id(node))
    for key, child in children.items():
        yield from _walk(child, (*path, str(key)), on_path)
    on_path.discard(id(node))


def _groups(module: nnx.Module, norms: list[str] | None = None) -> dict[int, tuple[list[str], nnx.Variable]]:
    """The state_dict's Variables under ``module``, each with all its torch-style dotted paths (the
    first one is where it is written): parameters (``nnx.Param``) and persistent buffers
    (``nnx.BatchStat``), subclasses included. Everything else stays out, as torch's state_dict
    holds only parameters and persistent buffers: RNG state, non-persistent
    :class:`~jaxnn.nnx.Buffer`, ``nnx.Cache``, sown ``nnx.Intermediate`` values, other variable
    types. List children contribute their index, as torch's ModuleList/Sequential do. ``norms``,
    if given, collects the prefixes of BatchNorm layers with running statistics."""
    out: dict[int, tuple[list[str], nnx.Variable]] = {}
    for path, node in _walk(module, (), set()):
        if isinstance(node, (nnx.Param, nnx.BatchStat)):
            out.setdefault(id(node), ([], node))[0].append(".".join(path))
        elif (norms is not None and isinstance(node, _Layer)
              and isinstance(node._layer, L.BatchNorm) and node._layer.track_running_stats):  # InstanceNorm too
            norms.append(".".join(path))
    return out


def state_dict(module: nnx.Module) -> dict[str, jax.Array]:
    """``{'down.0.conv1.weight': array, ...}``: parameters and persistent buffers (``running_mean``,
    ``num_batches_tracked``, ...) under torch's names, as torch's ``module.state_dict()``. A
    variable the module reaches under several names (tied weights, a layer stored under two
    attributes as diffusers' ``Downsample2D`` does) is listed under each, as in torch.

    Examples:
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> net = jn.Sequential(jn.Linear(3, 4, rngs=nnx.Rngs(0)), jn.BatchNorm1d(4))
      >>> sorted(jn.state_dict(net))
      ['0.bias', '0.weight', '1.bias', '1.num_batches_tracked', '1.running_mean', '1.running_var', '1.weight']
    """
    return {name: var.get_value() for names, var in _groups(module).values() for name in names}


def load_state_dict(
    module: nnx.Module,
    state_dict: Mapping[str, Any] | str | os.PathLike,
    *,
    strict: bool = True,
    dtype: Any = None,
    key_map: KeyMap | None = None,
    variant: str | None = None,
    sharding: Any = None,
) -> LoadResult:
    """Load a torch state_dict into ``module`` in place, by name, with no transposes.

    Args:
      module: a jaxnn.nnx model whose attribute names follow the torch model's. It may be abstract
        (``nnx.eval_shape(lambda: Model(...))``): every variable is then created from the file.
      state_dict: a mapping of dotted keys to numpy arrays, JAX arrays or torch tensors (torch is
        imported only if a tensor is passed); or the path of a ``.safetensors`` file (read with
        the safetensors library, without torch), a ``.pt`` / ``.bin`` file
        (``torch.load(weights_only=True)``), an index of shards (``*.safetensors.index.json``,
        ``pytorch_model.bin.index.json``), or a folder holding one of those as ``save_pretrained``
        writes it. Parameters and persistent buffers (BatchNorm's running statistics) load alike.
      strict: if True, any missing or unexpected key is an error (all of them reported at once,
        with the nearest name suggested). With False they are returned. Shape mismatches are
        always errors. A variable with several names (tied) is satisfied by any one of them; a
        checkpoint key that is one tensor with a loaded key (torch tensors sharing storage) is
        not unexpected. As in torch, a BatchNorm's (or InstanceNorm's) ``num_batches_tracked`` may be absent (older
        checkpoints; torch's check applies only to its own state_dicts whose ``_metadata`` says
        version 2): the counter then keeps its value.
      dtype: cast every floating value to this dtype (default: each variable's own dtype; integer
        buffers such as ``num_batches_tracked`` always keep theirs); it must be a real floating
        dtype. float16, bfloat16 and float8 values load bit-exactly into variables of their dtype;
        other casts round as torch's ``copy_`` does (float8_e4m3fn saturates overflow to +-448).
      key_map: rewrite checkpoint keys before matching: a callable ``key -> key`` (None drops the
        key) or a mapping ``{regex: replacement}`` applied in order with ``re.sub``, e.g.
        ``{r"^module\\.": ""}`` for DDP checkpoints or ``{r"^model\\.diffusion_model\\.": ""}``.
        Errors show the keys after mapping.
      variant: in a folder, load ``*.{variant}.safetensors`` (and its index) instead of the plain
        files, as ``from_pretrained(variant=...)``.
      sharding: place each variable as it is read: one ``jax.sharding.Sharding`` for all, a
        mapping from key to sharding, or a callable ``key -> sharding``. Without one (or for a key
        the mapping or callable gives None), a variable already sharded over several devices keeps
        its sharding; others go to the default device. Each device's slice is read on its own
        from a ``.safetensors`` file, so the host never holds a whole sharded tensor (with an
        abstract module, never the whole model).

    Returns:
      ``LoadResult(missing_keys, unexpected_keys)``.

    Raises:
      CheckpointError (ValueError): a bad file (named; truncated, offsets out of range or
        overlapping, unknown dtype, a missing shard), missing/unexpected keys (strict), shape
        mismatches, a floating value for an integer variable, a value that is not a tensor (a
        ``.pt`` file may hold ints beside its tensors: those are merely unexpected keys unless a
        variable has their name), missing keys of an abstract module; nothing is loaded then. A
        path that does not exist raises it as ``CheckpointNotFoundError`` (also a
        ``FileNotFoundError``). ValueError: ``dtype`` not a floating dtype. TypeError: a
        ``sharding`` that gives something other than a ``jax.sharding.Sharding`` or None.

    Differences from PyTorch: a path is accepted as well as a mapping; keys are not mapped by
    torch's ``_load_from_state_dict`` hooks (use ``key_map``).
    """
    ck = open_checkpoint(state_dict, variant=variant).mapped(key_map)
    norms: list[str] = []
    groups = list(_groups(module, norms).values())
    targets = []
    for names, var in groups:
        value = var.get_value()
        targets.append(Target(tuple(names), tuple(value.shape), value.dtype))
    chosen, result = plan_load(targets, ck, strict=strict, dtype=dtype, optional=optional_counters(norms, ck))
    abstract = [t.names[0] for i, (t, (_, var)) in enumerate(zip(targets, groups, strict=True))
                if i not in chosen and isinstance(var.get_value(), jax.ShapeDtypeStruct)]
    if abstract:
        raise CheckpointError("the module is abstract (nnx.eval_shape) and the checkpoint has no value for: "
                              + ", ".join(repr(k) for k in sorted(abstract)) + ".")
    values = {i: read_value(entry, targets[i], dtype,
                            resolve_sharding(sharding, targets[i].names[0], groups[i][1].get_value()))
              for i, entry in chosen.items()}
    for i, value in values.items():
        groups[i][1].set_value(value)
    return result


def save_state_dict(
    module: nnx.Module,
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
    *,
    max_shard_size: int | str | None = None,
    variant: str | None = None,
    weights_name: str = "model.safetensors",
) -> list[str]:
    """Write the module's state_dict as ``.safetensors`` that torch, transformers and diffusers read.

    Args:
      module: the model.
      path: a ``.safetensors`` file, or a folder (created) that gets ``weights_name``, or shards
        ``model-00001-of-0000N.safetensors`` with the index ``model.safetensors.index.json`` when
        the state exceeds ``max_shard_size``, as ``save_pretrained`` writes them (diffusers models
        use ``weights_name="diffusion_pytorch_model.safetensors"``).
      metadata: ``{str: str}`` for each file's header, merged over ``{"format": "pt"}``.
      max_shard_size: bytes per shard, an int or a string such as ``"5GB"`` (folder only).
      variant: file names with the variant (``model.fp16.safetensors``,
        ``model.safetensors.index.fp16.json``), as ``save_pretrained(variant=...)``.
      weights_name: the file name in a folder. Files an earlier save of the same name and variant
        left there (other shards, the index, the single file) are removed, as ``save_pretrained``
        does, so a stale index is never loaded instead of the new file.

    A variable the module reaches under several names (tied) is written once, under the first
    name in attribute order, as safetensors and ``save_pretrained`` write shared tensors.

    Returns:
      The paths written.
    """
    tensors = {names[0]: var.get_value() for names, var in _groups(module).values()}
    return save_checkpoint(tensors, path, metadata=metadata, max_shard_size=max_shard_size, variant=variant,
                           weights_name=weights_name)
