"""torch-style parameter groups as ``optax.multi_transform`` labels."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import jax
import optax

_TORCH_NAMES = {"lr": "learning_rate"}


def _name(path: tuple[Any, ...]) -> str:
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


def _selects(spec: Any, name: str, leaf: Any) -> bool:
    if callable(spec):
        return bool(spec(name, leaf))
    names = [spec] if isinstance(spec, str) else list(spec)
    return any(name == n or name.startswith(n + ".") for n in names)


def param_group_labels(params: Any, groups: Sequence[Mapping[str, Any]]) -> Any:
    """Labels for ``optax.multi_transform`` from torch-style parameter groups.

    Args:
      params: the parameter pytree. A leaf's name is its path joined by dots (``"fc.weight"``,
        ``"blocks.0.conv.bias"``: torch's ``named_parameters()`` names for jaxnn modules).
      groups: torch's list of dicts; ``group["params"]`` is a name, a list of names (a name also
        selects everything under it: ``"fc"`` selects ``"fc.weight"`` and ``"fc.bias"``), or a
        callable ``(name, leaf) -> bool``.

    Returns:
      A pytree like ``params`` with the label ``str(i)`` of the group holding each leaf, and
      ``"frozen"`` for leaves in no group (torch does not update them).

    Raises:
      ValueError: a leaf in more than one group (torch raises too), a group without
        ``"params"``, or a name that selects nothing.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    names = [_name(path) for path, _ in leaves]
    labels = ["frozen"] * len(leaves)
    for i, group in enumerate(groups):
        if "params" not in group:
            raise ValueError(f"`groups[{i}]` has no 'params' entry.")
        spec = group["params"]
        hit = False
        for j, (name, (_, leaf)) in enumerate(zip(names, leaves, strict=True)):
            if _selects(spec, name, leaf):
                if labels[j] != "frozen":
                    raise ValueError(f"some parameters appear in more than one parameter group: {name!r}.")
                labels[j] = str(i)
                hit = True
        if not hit:
            raise ValueError(f"`groups[{i}]['params']` selects no parameter (names: {names[:8]}...).")
    return jax.tree_util.tree_unflatten(treedef, labels)


def param_groups(
    optimizer: Callable[..., optax.GradientTransformation],
    groups: Sequence[Mapping[str, Any]],
    **defaults: Any,
) -> optax.GradientTransformation:
    """torch's ``Optimizer(groups, **defaults)`` as ``optax.multi_transform``.

    Each group gets ``optimizer(**(defaults | group options))``; torch's option names are accepted
    (``lr`` -> ``learning_rate``). Leaves in no group are not updated (``optax.set_to_zero``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> params = {"fc": {"weight": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
      >>> tx = optim.param_groups(optim.sgd, [{"params": "fc.weight"},
      ...                                      {"params": "fc.bias", "lr": 0.5}], lr=0.1)
      >>> updates, _ = tx.update(params, tx.init(params), params)
      >>> float(updates["fc"]["weight"][0, 0]), float(updates["fc"]["bias"][0])
      (-0.10000000149011612, -0.5)
    """
    transforms: dict[Hashable, optax.GradientTransformation] = {"frozen": optax.set_to_zero()}
    base = {_TORCH_NAMES.get(k, k): v for k, v in defaults.items()}
    for i, group in enumerate(groups):
        opts = {_TORCH_NAMES.get(k, k): v for k, v in group.items() if k != "params"}
        transforms[str(i)] = optimizer(**(base | opts))
    group_list = list(groups)
    return optax.multi_transform(transforms, lambda params: param_group_labels(params, group_list))
