"""torch.optim.SGD as an optax GradientTransformation that follows torch step for step."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import chex
import jax
import jax.numpy as jnp
import optax
from optax import tree_utils as otu

from ._adam import MaskOrFn, ScalarOrSchedule, _is_number, decay_weights, negate_if


class ScaleByTorchMomentumState(NamedTuple):
    """State of :func:`scale_by_torch_momentum`.

    Attributes:
      count: number of updates so far (int32, saturating); 0 means the buffer is still empty.
      momentum_buffer: torch's ``momentum_buffer``, in ``mu_dtype`` if given.
    """

    count: chex.Array
    momentum_buffer: optax.Updates


def scale_by_torch_momentum(
    momentum: float = 0.9, dampening: float = 0.0, *, nesterov: bool = False, mu_dtype: Any = None
) -> optax.GradientTransformation:
    r"""torch SGD's momentum buffer (without the learning rate).

    .. math::
        b_1 = g_1, \quad b_t = \mu b_{t-1} + (1 - \tau) g_t, \quad
        u_t = g_t + \mu b_t \text{ (nesterov)}, \ u_t = b_t \text{ otherwise}

    with :math:`\mu` = ``momentum`` and :math:`\tau` = ``dampening``.

    Differences from optax:
      ``optax.trace`` computes the same buffer without dampening (``dampening=0``).
    """
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)

    def init_fn(params: Any) -> ScaleByTorchMomentumState:
        return ScaleByTorchMomentumState(jnp.zeros([], jnp.int32), otu.tree_zeros_like(params, dtype=mu_dtype))

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        first = state.count == 0

        def buf_update(g, b):
            later = b * momentum + (1 - dampening) * g.astype(b.dtype)  # buf.mul_(m).add_(g, alpha=1-d)
            return jnp.where(first, g.astype(b.dtype), later).astype(b.dtype)

        buf = jax.tree.map(buf_update, updates, state.momentum_buffer)
        if nesterov:
            out = jax.tree.map(lambda g, b: (g + momentum * b.astype(g.dtype)).astype(g.dtype), updates, buf)
        else:
            out = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, buf)
        count = jnp.asarray(optax.safe_int32_increment(state.count))
        return out, ScaleByTorchMomentumState(count, buf)

    return optax.GradientTransformation(init_fn, update_fn)


def sgd(
    learning_rate: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.SGD`` as an optax transform (``update(grads, state, params)``).

    One step, in torch's order: ``g = -g`` if ``maximize``; ``g += weight_decay * p``; with
    ``momentum``, the buffer of :func:`scale_by_torch_momentum` (it starts AS the first gradient);
    ``p -= lr * g``.

    Args:
      learning_rate: float or optax schedule (count 0 at the first update); torch's default 1e-3.
      momentum: torch's ``momentum`` (0 keeps no buffer).
      dampening: torch's ``dampening``.
      weight_decay: L2 coefficient added to the gradient.
      nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
      maximize: ascend instead of descend.
      mask: pytree of bools (or a callable of the params) selecting the parameters with weight decay.
      mu_dtype: optional dtype of the momentum buffer.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jaxnn import optim
      >>> tx = optim.sgd(0.1, momentum=0.9)
      >>> params = jnp.ones(2)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.ones(2), state, params)
      >>> updates  # -lr * (0.9 * 1 + 1)
      Array([-0.19, -0.19], dtype=float32)

    Differences from optax:
      ``optax.sgd(momentum=...)`` has no dampening, weight decay or ``maximize``; torch's
      default lr is 1e-3.
    """
    checked: tuple[tuple[str, Any], ...] = (
        ("learning_rate", learning_rate), ("momentum", momentum), ("weight_decay", weight_decay)
    )
    for name, value in checked:
        if _is_number(value) and cast(float, value) < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value}.")
    momentum_on = not (_is_number(momentum) and momentum == 0)
    if nesterov and (not momentum_on or (_is_number(momentum) and momentum <= 0) or dampening != 0):
        raise ValueError(
            f"Nesterov momentum requires a momentum and zero dampening (got `momentum`={momentum}, "
            f"`dampening`={dampening})."
        )
    steps = [negate_if(maximize)]
    if not (_is_number(weight_decay) and weight_decay == 0):
        steps.append(decay_weights(weight_decay, mask))
    if momentum_on:
        steps.append(scale_by_torch_momentum(momentum, dampening, nesterov=nesterov, mu_dtype=mu_dtype))
    steps.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*steps)
