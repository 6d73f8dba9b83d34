"""Adam and AdamW as optax GradientTransformations that follow torch.optim step for step."""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax import tree_utils as otu

ScalarOrSchedule = optax.ScalarOrSchedule
MaskOrFn = Any


class ScaleByTorchAdamState(NamedTuple):
    """State of :func:`scale_by_torch_adam`.

    Attributes:
      count: number of updates so far (int32, saturating, never overflows).
      mu: first moment, in ``mu_dtype`` if given.
      nu: second moment (raw, not bias-corrected), in the parameters' dtype.
      nu_max: running maximum of the raw ``nu`` with ``amsgrad=True``; ``None`` otherwise.
    """

    count: chex.Array
    mu: optax.Updates
    nu: optax.Updates
    nu_max: optax.Updates | None


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_hyperparams(learning_rate: Any, b1: Any, b2: Any, eps: Any, weight_decay: Any) -> None:
    """torch.optim's argument checks, for Python numbers (arrays from inject_hyperparams pass)."""
    if _is_number(learning_rate) and learning_rate < 0:
        raise ValueError(f"`learning_rate` must be >= 0, got {learning_rate}.")
    if _is_number(eps) and eps < 0:
        raise ValueError(f"`eps` must be >= 0, got {eps}.")
    for name, b in (("b1", b1), ("b2", b2)):
        if _is_number(b) and not 0.0 <= b < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), got {b}.")
    if _is_number(weight_decay) and weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}.")


def _one_minus_power(b: Any, t: jax.Array) -> jax.Array:
    """``1 - b**t`` without float32 cancellation.

    torch computes the bias corrections in float64. In float32, ``1 - 0.999**t`` loses ~1e-5
    relative accuracy at small ``t`` (0.999 itself rounds by 1.3e-8); ``-expm1(t * log(b))`` with
    ``log(b)`` taken in double precision keeps it near 1e-7. Traced ``b`` (inject_hyperparams)
    falls back to float32 logs.
    """
    if _is_number(b):
        if b == 0:
            return jnp.ones_like(t)
        log_b = jnp.float32(math.log(b))
    else:
        log_b = jnp.log(jnp.asarray(b, jnp.float32))
    return -jnp.expm1(t * log_b)


def scale_by_torch_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    amsgrad: bool = False,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""Rescale updates by torch's Adam rule (without the learning rate).

    .. math::
        m_t = m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}), \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
        \hat v_t = \max(\hat v_{t-1}, v_t) \text{ (amsgrad)}

    .. math::
        u_t = \frac{m_t}{1 - \beta_1^t} \Big/ \left(\frac{\sqrt{v_t}}{\sqrt{1 - \beta_2^t}} + \epsilon\right)

    Chain it with ``optax.scale_by_learning_rate`` (or use :func:`adam` / :func:`adamw`).

    Args:
      b1, b2: moment decay rates in [0, 1).
      eps: added to the bias-corrected root of the second moment (OUTSIDE the square root, after
        the bias correction, as torch does).
      amsgrad: keep the running maximum of the RAW second moment (torch's variant).
      mu_dtype: optional dtype for the first moment (e.g. ``jnp.bfloat16``).

    Differences from optax:
      ``optax.scale_by_adam`` adds eps to ``sqrt(v_hat)`` with ``v_hat`` bias-corrected (same
      value, different rounding) and ``optax.scale_by_amsgrad`` takes the maximum of the
      bias-corrected second moment, a different algorithm from torch's amsgrad.
    """
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)

    def init_fn(params: Any) -> Any:
        mu = otu.tree_zeros_like(params, dtype=mu_dtype)
        nu = otu.tree_zeros_like(params)
        nu_max = otu.tree_zeros_like(params) if amsgrad else None
        return ScaleByTorchAdamState(jnp.zeros([], jnp.int32), mu, nu, nu_max)

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        count = jnp.asarray(optax.safe_int32_increment(state.count))
        # m.lerp_(g, 1 - b1) is m + w (g - m) for w < 0.5, torch's formula for the usual b1.
        mu = jax.tree.map(
            lambda g, m: (m + (1 - b1) * (g.astype(m.dtype) - m)).astype(m.dtype), updates, state.mu
        )
        # v.mul_(b2).addcmul_(g, g, value=1 - b2): torch rounds (1 - b2) * g first, then * g.
        nu = jax.tree.map(lambda g, v: v * b2 + ((1 - b2) * g) * g, updates, state.nu)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu) if amsgrad else None
        t = count.astype(jnp.float32)
        bc1 = _one_minus_power(b1, t)
        bc2_sqrt = jnp.sqrt(_one_minus_power(b2, t))
        second = nu_max if amsgrad else nu

        def direction(m, v, g):
            denom = jnp.sqrt(v) / bc2_sqrt.astype(v.dtype) + eps
            return ((m.astype(v.dtype) / bc1.astype(v.dtype)) / denom).astype(g.dtype)

        new_updates = jax.tree.map(direction, mu, second, updates)
        return new_updates, ScaleByTorchAdamState(count, mu, nu, nu_max)

    return optax.GradientTransformation(init_fn, update_fn)


def _check_mask_structure(mask: Any, params: Any) -> None:
    mask_tree = mask(params) if callable(mask) else mask
    try:
        jax.tree.map(lambda _m, _p: None, mask_tree, params, is_leaf=lambda x: x is None)
    except ValueError as e:
        ps, ms = jax.tree.structure(params), jax.tree.structure(mask_tree)
        raise ValueError(
            f"`mask` must have the same tree structure as the parameters (or be a callable returning "
            f"one); got mask structure {ms} for parameters {ps}."
        ) from e


def decay_weights(
    weight_decay: ScalarOrSchedule, mask: MaskOrFn = None
) -> optax.GradientTransformation:
    """Add ``weight_decay * params`` to the updates where ``mask`` is True (optax's
    ``add_decayed_weights`` with the mask structure checked up front and a clear error)."""
    inner = optax.add_decayed_weights(weight_decay, mask)

    def init_fn(params):
        if mask is not None:
            _check_mask_structure(mask, params)
        return inner.init(params)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("weight decay needs `params`: call `update(grads, state, params)`.")
        if mask is not None:
            _check_mask_structure(mask, params)
        return inner.update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


class DecoupledDecayState(NamedTuple):
    """State of :func:`decoupled_weight_decay`: the update count that feeds a schedule."""

    count: chex.Array


def decoupled_weight_decay(
    learning_rate: ScalarOrSchedule, weight_decay: float, mask: MaskOrFn = None
) -> optax.GradientTransformation:
    r"""torch AdamW's ``p.mul_(1 - lr * weight_decay)`` as an additive update, rounding included.

    Adds :math:`(\mathrm{fl}(1 - \eta\lambda) - 1)\, p` to the updates, where
    :math:`\mathrm{fl}` rounds to float32 as torch does when it scales a float32 parameter. With
    ``lr * wd = 1e-5`` that rounding changes the effective decay by ~0.6%, so reproducing it
    matters over long runs. Place it after the learning-rate scaling of the other updates.
    """

    def init_fn(params):
        if mask is not None:
            _check_mask_structure(mask, params)
        return DecoupledDecayState(jnp.zeros([], jnp.int32))

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        if params is None:
            raise ValueError("weight decay needs `params`: call `update(grads, state, params)`.")
        lr: Any = learning_rate(state.count) if callable(learning_rate) else learning_rate
        if _is_number(lr) and _is_number(weight_decay):
            factor: Any = float(np.float32(1.0 - float(lr) * float(weight_decay))) - 1.0  # exact in float32
        else:
            factor = (1.0 - jnp.asarray(lr, jnp.float32) * weight_decay) - 1.0
        mask_tree = mask(params) if callable(mask) else mask
        if mask_tree is None:
            mask_tree = jax.tree.map(lambda _: True, params)
        else:
            _check_mask_structure(mask, params)

        def add(u, p, m):
            decayed = u + (p * jnp.asarray(factor, p.dtype)).astype(u.dtype)
            return decayed if m is True else (u if m is False else jnp.where(m, decayed, u))

        new = jax.tree.map(add, updates, params, mask_tree)
        return new, DecoupledDecayState(jnp.asarray(optax.safe_int32_increment(state.count)))

    return optax.GradientTransformation(init_fn, update_fn)


def negate_if(maximize: bool) -> optax.GradientTransformation:
    """``g -> -g`` when ``maximize`` (torch's ``maximize=True``), identity otherwise."""
    return optax.scale(-1.0) if maximize else optax.identity()


def _torch_adam(
    learning_rate: ScalarOrSchedule,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    mask: MaskOrFn,
    mu_dtype: Any,
    decoupled: bool,
) -> optax.GradientTransformation:
    _check_hyperparams(learning_rate, b1, b2, eps, weight_decay)
    decay_on = not (_is_number(weight_decay) and weight_decay == 0)
    steps = [negate_if(maximize)]
    if decay_on and not decoupled:  # Adam: L2 term joins the gradient before the moments
        steps.append(decay_weights(weight_decay, mask))
    steps.append(scale_by_torch_adam(b1, b2, eps, amsgrad=amsgrad, mu_dtype=mu_dtype))
    steps.append(optax.scale_by_learning_rate(learning_rate))
    if decay_on and decoupled:  # AdamW: p *= 1 - lr * wd, with the same (current) lr
        steps.append(decoupled_weight_decay(learning_rate, weight_decay, mask))
    return optax.chain(*steps)


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    amsgrad: bool = False,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.Adam`` as an optax transform (``update(grads, state, params)``).

    One step, in torch's order: ``g = -g`` if ``maximize``; ``g += weight_decay * p`` (L2);
    the moments and bias corrections of :func:`scale_by_torch_adam`; ``p -= lr * u``.

    Args:
      learning_rate: float or optax schedule (called with the update count, 0 at the first step:
        the lr a torch LR scheduler stepped after each ``optimizer.step()`` gives).
      b1, b2: torch's ``betas``.
      eps: torch's ``eps``.
      weight_decay: L2 coefficient added to the gradient (torch Adam's weight_decay).
      amsgrad, maximize: torch's switches.
      mask: pytree of bools (or a callable of the params returning one) selecting the parameters
        that get weight decay: torch's parameter groups with ``weight_decay=0``.
      mu_dtype: optional dtype of the first moment.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jaxnn import optim
      >>> opt = optim.adam(1e-3)
      >>> params = {"w": jnp.ones(3)}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.ones(3)}, state, params)
      >>> optax.apply_updates(params, updates)["w"]
      Array([0.999, 0.999, 0.999], dtype=float32)

    Differences from optax:
      ``optax.adam`` has no L2 weight decay, no ``maximize``, and a different amsgrad.
    """
    return _torch_adam(
        learning_rate, b1, b2, eps, weight_decay, amsgrad, maximize, mask, mu_dtype, decoupled=False
    )


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    *,
    amsgrad: bool = False,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.AdamW`` as an optax transform (``update(grads, state, params)``).

    Decoupled decay: :math:`p \leftarrow p (1 - \eta \lambda) - \eta u_t`, with :math:`\eta` the
    current learning rate and :math:`u_t` from :func:`scale_by_torch_adam`.

    Args:
      learning_rate: float or optax schedule (count 0 at the first update).
      weight_decay: decoupled decay coefficient, torch's default 1e-2.
      b1, b2, eps, amsgrad, maximize, mask, mu_dtype: as in :func:`adam`.

    Differences from optax:
      ``optax.adamw`` defaults to ``weight_decay=1e-4``, 100x less than torch's 1e-2, and its
      amsgrad variant (``optax.amsgrad``) takes the maximum of the bias-corrected moment.
    """
    return _torch_adam(
        learning_rate, b1, b2, eps, weight_decay, amsgrad, maximize, mask, mu_dtype, decoupled=True
    )

