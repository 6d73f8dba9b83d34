"""RMSprop, Adagrad, Adamax, NAdam, RAdam and Adadelta as optax transforms that follow torch.optim.

Each is ``scale_by_torch_<name>`` (torch's update direction, without the learning rate) chained
with the learning rate, after ``maximize`` and weight decay in torch's order. Step-dependent
coefficients that torch computes in Python doubles are computed here without float32
cancellation.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from optax import tree_utils as otu

from ._adam import (
    MaskOrFn,
    ScalarOrSchedule,
    _is_number,
    _one_minus_power,
    decay_weights,
    decoupled_weight_decay,
    negate_if,
)


def _check(**values: Any) -> None:
    for name, value in values.items():
        if _is_number(value) and value < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value}.")


def _check_betas(b1: Any, b2: Any) -> None:
    for name, b in (("b1", b1), ("b2", b2)):
        if _is_number(b) and not 0.0 <= b < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), got {b}.")


def _chain(
    maximize: bool,
    weight_decay: Any,
    mask: MaskOrFn,
    direction: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    decoupled: bool = False,
) -> optax.GradientTransformation:
    decay_on = not (_is_number(weight_decay) and weight_decay == 0)
    steps = [negate_if(maximize)]
    if decay_on and not decoupled:
        steps.append(decay_weights(weight_decay, mask))
    steps += [direction, optax.scale_by_learning_rate(learning_rate)]
    if decay_on and decoupled:
        steps.append(decoupled_weight_decay(learning_rate, weight_decay, mask))
    return optax.chain(*steps)


def _increment(count: jax.Array) -> jax.Array:
    return jnp.asarray(optax.safe_int32_increment(count))


# --- RMSprop ---------------------------------------------------------------------------------------


class ScaleByTorchRMSpropState(NamedTuple):
    """State of :func:`scale_by_torch_rmsprop`.

    Attributes:
      count: number of updates so far (int32, saturating).
      square_avg: running average of squared gradients.
      grad_avg: running average of gradients with ``centered=True``; ``None`` otherwise.
      momentum_buffer: with ``momentum > 0``; ``None`` otherwise (in ``mu_dtype`` if given).
    """

    count: chex.Array
    square_avg: optax.Updates
    grad_avg: optax.Updates | None
    momentum_buffer: optax.Updates | None


def scale_by_torch_rmsprop(
    alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0, *, centered: bool = False, mu_dtype: Any = None
) -> optax.GradientTransformation:
    r"""torch RMSprop's direction (without the learning rate).

    .. math::
        v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \quad
        \bar g_t = \bar g_{t-1} + (1 - \alpha)(g_t - \bar g_{t-1}) \text{ (centered)}, \quad
        d_t = \sqrt{v_t - \bar g_t^2} + \epsilon, \quad
        b_t = \mu b_{t-1} + g_t / d_t, \quad u_t = b_t \text{ or } g_t / d_t
    """
    momentum_on = not (_is_number(momentum) and momentum == 0)
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)

    def init_fn(params: Any) -> Any:
        return ScaleByTorchRMSpropState(
            jnp.zeros([], jnp.int32),
            otu.tree_zeros_like(params),
            otu.tree_zeros_like(params) if centered else None,
            otu.tree_zeros_like(params, dtype=mu_dtype) if momentum_on else None,
        )

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        sq = jax.tree.map(lambda g, v: v * alpha + ((1 - alpha) * g) * g, updates, state.square_avg)
        if centered:
            gavg = jax.tree.map(lambda g, a: a + (1 - alpha) * (g - a), updates, state.grad_avg)
            avg = jax.tree.map(lambda v, a: jnp.sqrt(v + (-a) * a) + eps, sq, gavg)
        else:
            gavg = None
            avg = jax.tree.map(lambda v: jnp.sqrt(v) + eps, sq)
        if momentum_on:
            buf = jax.tree.map(
                lambda b, g, d: (b * momentum + (g / d).astype(b.dtype)).astype(b.dtype),
                state.momentum_buffer,
                updates,
                avg,
            )
            out = jax.tree.map(lambda b, g: b.astype(g.dtype), buf, updates)
        else:
            buf = None
            out = jax.tree.map(lambda g, d: g / d, updates, avg)
        return out, ScaleByTorchRMSpropState(_increment(state.count), sq, gavg, buf)

    return optax.GradientTransformation(init_fn, update_fn)


def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.RMSprop`` as an optax transform (``update(grads, state, params)``).

    ``g = -g`` if ``maximize``; ``g += weight_decay * p``; the direction of
    :func:`scale_by_torch_rmsprop`; ``p -= lr * u``. torch's defaults (lr 1e-2, alpha 0.99,
    eps 1e-8). ``mask`` selects the parameters with weight decay; ``mu_dtype`` the momentum
    buffer's dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> tx = optim.rmsprop(0.01)
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> updates.round(6)  # -0.01 / (sqrt(0.01) + 1e-8)
      Array([-0.1, -0.1], dtype=float32)
    """
    _check(learning_rate=learning_rate, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
    direction = scale_by_torch_rmsprop(alpha, eps, momentum, centered=centered, mu_dtype=mu_dtype)
    return _chain(maximize, weight_decay, mask, direction, learning_rate)


# --- Adagrad ---------------------------------------------------------------------------------------


class ScaleByTorchAdagradState(NamedTuple):
    """State of :func:`scale_by_torch_adagrad`.

    Attributes:
      count: number of updates so far (int32, saturating).
      sum: torch's ``sum`` of squared gradients (starts at ``initial_accumulator_value``).
    """

    count: chex.Array
    sum: optax.Updates


def scale_by_torch_adagrad(
    lr_decay: float = 0.0, initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> optax.GradientTransformation:
    r"""torch Adagrad's direction (without the learning rate; optax's adagrad starts its sum at 0.1
    and has no ``lr_decay``).

    .. math::
        s_t = s_{t-1} + g_t^2, \quad u_t = \frac{g_t}{\sqrt{s_t} + \epsilon} \Big/ (1 + (t - 1)\,\text{lr\_decay})
    """

    def init_fn(params: Any) -> ScaleByTorchAdagradState:
        sums = jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
        return ScaleByTorchAdagradState(jnp.zeros([], jnp.int32), sums)

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        count = _increment(state.count)
        sums = jax.tree.map(lambda g, s: s + g * g, updates, state.sum)
        decay = 1 + (count.astype(jnp.float32) - 1) * jnp.float32(lr_decay)
        out = jax.tree.map(lambda g, s: (g / (jnp.sqrt(s) + eps)) / decay.astype(g.dtype), updates, sums)
        return out, ScaleByTorchAdagradState(count, sums)

    return optax.GradientTransformation(init_fn, update_fn)


def adagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.Adagrad`` as an optax transform (``update(grads, state, params)``).

    ``g = -g`` if ``maximize``; ``g += weight_decay * p``; the direction of
    :func:`scale_by_torch_adagrad`; ``p -= lr * u``. torch's defaults (lr 1e-2, eps 1e-10,
    accumulator starting at 0).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> tx = optim.adagrad(0.1)
      >>> updates, _ = tx.update(jnp.full(2, 2.0), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> updates
      Array([-0.1, -0.1], dtype=float32)
    """
    _check(
        learning_rate=learning_rate,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    direction = scale_by_torch_adagrad(lr_decay, initial_accumulator_value, eps)
    return _chain(maximize, weight_decay, mask, direction, learning_rate)


# --- Adamax ----------------------------------------------------------------------------------------


class ScaleByTorchAdamaxState(NamedTuple):
    """State of :func:`scale_by_torch_adamax`.

    Attributes:
      count: number of updates so far (int32, saturating).
      exp_avg: first moment, in ``mu_dtype`` if given.
      exp_inf: exponentially weighted infinity norm.
    """

    count: chex.Array
    exp_avg: optax.Updates
    exp_inf: optax.Updates


def scale_by_torch_adamax(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *, mu_dtype: Any = None
) -> optax.GradientTransformation:
    r"""torch Adamax's direction (without the learning rate).

    .. math::
        m_t = m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}), \quad
        u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \quad
        d_t = \frac{m_t}{u_t} \Big/ (1 - \beta_1^t)
    """
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)

    def init_fn(params: Any) -> ScaleByTorchAdamaxState:
        return ScaleByTorchAdamaxState(
            jnp.zeros([], jnp.int32), otu.tree_zeros_like(params, dtype=mu_dtype), otu.tree_zeros_like(params)
        )

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        count = _increment(state.count)
        mu = jax.tree.map(
            lambda g, m: (m + (1 - b1) * (g.astype(m.dtype) - m)).astype(m.dtype), updates, state.exp_avg
        )
        inf = jax.tree.map(lambda g, u: jnp.maximum(u * b2, jnp.abs(g) + eps), updates, state.exp_inf)
        bc1 = _one_minus_power(b1, count.astype(jnp.float32))
        out = jax.tree.map(
            lambda m, u, g: ((m.astype(u.dtype) / u) / bc1.astype(u.dtype)).astype(g.dtype), mu, inf, updates
        )
        return out, ScaleByTorchAdamaxState(count, mu, inf)

    return optax.GradientTransformation(init_fn, update_fn)


def adamax(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.Adamax`` as an optax transform (``update(grads, state, params)``).

    ``g = -g`` if ``maximize``; ``g += weight_decay * p``; :func:`scale_by_torch_adamax`;
    ``p -= lr * d``. torch's defaults (lr 2e-3, betas (0.9, 0.999), eps 1e-8).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> tx = optim.adamax(0.1)
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> updates.round(6)
      Array([-0.1, -0.1], dtype=float32)
    """
    _check(learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)
    _check_betas(b1, b2)
    return _chain(maximize, weight_decay, mask, scale_by_torch_adamax(b1, b2, eps, mu_dtype=mu_dtype), learning_rate)


# --- NAdam -----------------------------------------------------------------------------------------


class ScaleByTorchNAdamState(NamedTuple):
    """State of :func:`scale_by_torch_nadam`.

    Attributes:
      count: number of updates so far (int32, saturating).
      mu_product: torch's ``mu_product``, the float32 product of the momentum coefficients.
      exp_avg: first moment, in ``mu_dtype`` if given.
      exp_avg_sq: second moment.
    """

    count: chex.Array
    mu_product: chex.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def scale_by_torch_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, momentum_decay: float = 4e-3, *, mu_dtype: Any = None
) -> optax.GradientTransformation:
    r"""torch NAdam's direction (without the learning rate).

    .. math::
        \mu_t = \beta_1 (1 - \tfrac12 \, 0.96^{t \psi}), \quad \Pi_t = \prod_{i \le t} \mu_i, \quad
        d_t = \sqrt{v_t / (1 - \beta_2^t)} + \epsilon

    .. math::
        u_t = \frac{1 - \mu_t}{1 - \Pi_t} \frac{g_t}{d_t} + \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}} \frac{m_t}{d_t}

    with :math:`\psi` = ``momentum_decay`` and :math:`m, v` Adam's moments.
    """
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)
    log96 = math.log(0.96)

    def init_fn(params: Any) -> ScaleByTorchNAdamState:
        return ScaleByTorchNAdamState(
            jnp.zeros([], jnp.int32),
            jnp.ones([], jnp.float32),
            otu.tree_zeros_like(params, dtype=mu_dtype),
            otu.tree_zeros_like(params),
        )

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        count = _increment(state.count)
        t = count.astype(jnp.float32)
        mu = b1 * (1.0 - 0.5 * jnp.exp(t * jnp.float32(momentum_decay * log96)))
        mu_next = b1 * (1.0 - 0.5 * jnp.exp((t + 1) * jnp.float32(momentum_decay * log96)))
        mu_product = state.mu_product * mu
        m_new = jax.tree.map(
            lambda g, m: (m + (1 - b1) * (g.astype(m.dtype) - m)).astype(m.dtype), updates, state.exp_avg
        )
        v_new = jax.tree.map(lambda g, v: v * b2 + ((1 - b2) * g) * g, updates, state.exp_avg_sq)
        bc2 = _one_minus_power(b2, t)
        c_grad = (1.0 - mu) / (1.0 - mu_product)
        c_avg = mu_next / (1.0 - mu_product * mu_next)

        def direction(g, m, v):
            denom = jnp.sqrt(v / bc2.astype(v.dtype)) + eps
            return (c_grad.astype(g.dtype) * (g / denom) + c_avg.astype(g.dtype) * (m.astype(g.dtype) / denom)).astype(
                g.dtype
            )

        out = jax.tree.map(direction, updates, m_new, v_new)
        return out, ScaleByTorchNAdamState(count, mu_product, m_new, v_new)

    return optax.GradientTransformation(init_fn, update_fn)


def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.NAdam`` as an optax transform (``update(grads, state, params)``).

    ``g = -g`` if ``maximize``; weight decay as L2 (``g += wd * p``) or, with
    ``decoupled_weight_decay=True``, as AdamW's ``p *= 1 - lr * wd``;
    :func:`scale_by_torch_nadam`; ``p -= lr * u``. torch's defaults (lr 2e-3, momentum_decay 4e-3).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> tx = optim.nadam()
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> updates.shape
      (2,)

    Differences from optax:
      ``optax.nadam`` is Adam with a Nesterov-style first moment, without the momentum schedule
      (``momentum_decay``) and the products of torch's NAdam.
    """
    _check(learning_rate=learning_rate, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
    _check_betas(b1, b2)
    direction = scale_by_torch_nadam(b1, b2, eps, momentum_decay, mu_dtype=mu_dtype)
    return _chain(maximize, weight_decay, mask, direction, learning_rate, decoupled=decoupled_weight_decay)


# --- RAdam -----------------------------------------------------------------------------------------


class ScaleByTorchRAdamState(NamedTuple):
    """State of :func:`scale_by_torch_radam`.

    Attributes:
      count: number of updates so far (int32, saturating).
      exp_avg: first moment, in ``mu_dtype`` if given.
      exp_avg_sq: second moment.
    """

    count: chex.Array
    exp_avg: optax.Updates
    exp_avg_sq: optax.Updates


def _one_minus_x_over_expm1(x: jax.Array) -> jax.Array:
    """``1 - x / expm1(x)`` for ``x >= 0``, accurate for small ``x`` (Bernoulli series below 1)."""
    x2 = x * x
    series = x / 2 - x2 / 12 + x2 * x2 / 720 - x2 * x2 * x2 / 30240 + x2 * x2 * x2 * x2 / 1209600
    safe = jnp.where(x < 1, 1.0, x)
    direct = 1 - safe / jnp.expm1(safe)
    return jnp.where(x < 1, series, direct)


def _radam_rho(b2: float, t: jax.Array) -> jax.Array:
    r"""torch's ``rho_t = rho_inf - 2 t b2^t / (1 - b2^t)`` without float32 cancellation.

    With :math:`c = -\ln b_2` and :math:`x = t c`: :math:`2 t b_2^t / (1 - b_2^t) = (2/c)\, x / \mathrm{expm1}(x)`,
    so :math:`\rho_t = (\rho_\infty - 2/c) + (2/c)(1 - x / \mathrm{expm1}(x))`, with the
    constant taken in doubles.
    """
    if b2 == 0:
        return jnp.ones_like(t)  # rho_inf = 1; b2**t = 0 for t >= 1
    c = -math.log(b2)
    rho_inf = 2 / (1 - b2) - 1
    return jnp.float32(rho_inf - 2 / c) + jnp.float32(2 / c) * _one_minus_x_over_expm1(t * jnp.float32(c))


def scale_by_torch_radam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *, mu_dtype: Any = None
) -> optax.GradientTransformation:
    r"""torch RAdam's direction (without the learning rate).

    .. math::
        \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t}, \quad \rho_\infty = \frac{2}{1 - \beta_2} - 1

    .. math::
        u_t = \hat m_t \, r_t \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} \text{ if } \rho_t > 5,
        \ \hat m_t \text{ otherwise}, \quad
        r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}
    """
    for name, b in (("b1", b1), ("b2", b2)):
        if not _is_number(b):
            raise TypeError(
                f"`{name}` must be a Python number (RAdam's rectification is decided from it); with "
                "optax.inject_hyperparams pass static_args=('b1', 'b2')."
            )
    mu_dtype = None if mu_dtype is None else jnp.dtype(mu_dtype)
    rho_inf = 2 / (1 - b2) - 1
    rect_den = (rho_inf - 4) * (rho_inf - 2)

    def init_fn(params: Any) -> ScaleByTorchRAdamState:
        return ScaleByTorchRAdamState(
            jnp.zeros([], jnp.int32), otu.tree_zeros_like(params, dtype=mu_dtype), otu.tree_zeros_like(params)
        )

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        count = _increment(state.count)
        t = count.astype(jnp.float32)
        m_new = jax.tree.map(
            lambda g, m: (m + (1 - b1) * (g.astype(m.dtype) - m)).astype(m.dtype), updates, state.exp_avg
        )
        v_new = jax.tree.map(lambda g, v: v * b2 + ((1 - b2) * g) * g, updates, state.exp_avg_sq)
        bc1 = _one_minus_power(b1, t)
        bc2 = _one_minus_power(b2, t)
        rho_t = _radam_rho(b2, t)
        rectified = rho_t > 5.0
        safe_rho = jnp.where(rectified, rho_t, 6.0)
        if rect_den > 0:
            rect = jnp.sqrt((safe_rho - 4) * (safe_rho - 2) * jnp.float32(rho_inf / rect_den) / safe_rho)
        else:
            rect = jnp.ones_like(safe_rho)

        def direction(m, v, g):
            m_hat = m.astype(v.dtype) / bc1.astype(v.dtype)
            adaptive = jnp.sqrt(bc2).astype(v.dtype) / (jnp.sqrt(v) + eps)
            return jnp.where(rectified, m_hat * adaptive * rect.astype(v.dtype), m_hat).astype(g.dtype)

        out = jax.tree.map(direction, m_new, v_new, updates)
        return out, ScaleByTorchRAdamState(count, m_new, v_new)

    return optax.GradientTransformation(init_fn, update_fn)


def radam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.RAdam`` as an optax transform (``update(grads, state, params)``).

    ``g = -g`` if ``maximize``; weight decay as L2 or (``decoupled_weight_decay=True``) as
    AdamW's; :func:`scale_by_torch_radam`; ``p -= lr * u``. torch's defaults (lr 1e-3).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> tx = optim.radam(0.1)
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> updates.round(6)  # first steps are not rectified: -lr * m_hat
      Array([-0.1, -0.1], dtype=float32)
    """
    _check(learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)
    _check_betas(b1, b2)
    direction = scale_by_torch_radam(b1, b2, eps, mu_dtype=mu_dtype)
    return _chain(maximize, weight_decay, mask, direction, learning_rate, decoupled=decoupled_weight_decay)


# --- Adadelta --------------------------------------------------------------------------------------


class ScaleByTorchAdadeltaState(NamedTuple):
    """State of :func:`scale_by_torch_adadelta`.

    Attributes:
      count: number of updates so far (int32, saturating).
      square_avg: running average of squared gradients.
      acc_delta: running average of squared updates.
    """

    count: chex.Array
    square_avg: optax.Updates
    acc_delta: optax.Updates


def scale_by_torch_adadelta(rho: float = 0.9, eps: float = 1e-6) -> optax.GradientTransformation:
    r"""torch Adadelta's direction (without the learning rate).

    .. math::
        v_t = \rho v_{t-1} + (1 - \rho) g_t^2, \quad
        \delta_t = \frac{\sqrt{a_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}} g_t, \quad
        a_t = \rho a_{t-1} + (1 - \rho) \delta_t^2
    """

    def init_fn(params: Any) -> ScaleByTorchAdadeltaState:
        return ScaleByTorchAdadeltaState(
            jnp.zeros([], jnp.int32), otu.tree_zeros_like(params), otu.tree_zeros_like(params)
        )

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        sq = jax.tree.map(lambda g, v: v * rho + ((1 - rho) * g) * g, updates, state.square_avg)
        delta = jax.tree.map(
            lambda g, v, a: (jnp.sqrt(a + eps) / jnp.sqrt(v + eps)) * g, updates, sq, state.acc_delta
        )
        acc = jax.tree.map(lambda d, a: a * rho + ((1 - rho) * d) * d, delta, state.acc_delta)
        return delta, ScaleByTorchAdadeltaState(_increment(state.count), sq, acc)

    return optax.GradientTransformation(init_fn, update_fn)


def adadelta(
    learning_rate: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
    mask: MaskOrFn = None,
) -> optax.GradientTransformation:
    r"""``torch.optim.Adadelta`` as an optax transform (``update(grads, state, params)``).

    ``g = -g`` if ``maximize``; ``g += weight_decay * p``; :func:`scale_by_torch_adadelta`;
    ``p -= lr * delta``. torch's defaults (lr 1.0, rho 0.9, eps 1e-6).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> tx = optim.adadelta()
      >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
      >>> updates.shape
      (2,)
    """
    _check(learning_rate=learning_rate, eps=eps, weight_decay=weight_decay)
    if _is_number(rho) and not 0.0 <= rho <= 1.0:
        raise ValueError(f"`rho` must be in [0, 1], got {rho}.")
    return _chain(maximize, weight_decay, mask, scale_by_torch_adadelta(rho, eps), learning_rate)
