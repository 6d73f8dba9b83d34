"""``torch.optim.lr_scheduler`` as optax schedules: the same class names and arguments, the same numbers.

Each scheduler takes the learning rate torch would read from the optimizer in place of the
optimizer (``CyclicLR`` and ``OneCycleLR`` set it themselves, so they take none) and returns an
optax schedule: a jit-safe function of the update count that gives, at count ``k``, the learning
rate torch's ``get_last_lr()`` shows after ``k`` calls of ``scheduler.step()``. Count 0 is the
first update, which is how optax calls a schedule, so a scheduler stepped after every
``optimizer.step()`` maps directly::

    # torch                                              # jaxnn
    opt = torch.optim.SGD(params, lr=0.01)               sched = lr_scheduler.CosineAnnealingLR(0.01, T_max=10)
    sched = CosineAnnealingLR(opt, T_max=10)             tx = optim.sgd(sched)
    for batch in data:                                   for batch in data:
        ...; opt.step(); sched.step()                        ...; updates, state = tx.update(g, state, params)

A scheduler stepped once per epoch of ``n`` updates is ``lambda c: sched(c // n)``.

torch computes learning rates recursively in Python floats (doubles). jaxnn reproduces the
recursion where it matters: finite or periodic schedules are tabulated at construction with torch's
own double-precision recursion and rounded once to float32; powers ``gamma**n`` come from
double-precision tables; the rest are float32 formulas arranged to avoid cancellation. Every
schedule equals torch's ``get_last_lr()`` to float32 rounding (a few units in the last place, tested
over 2000 steps), where a float32 closed form drifts by up to 1e-5 relative (and by far more near
a cosine's minimum).
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRSchedule",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "ReduceLROnPlateauState",
    "SequentialLR",
    "StepLR",
    "current_lr",
]

#: The longest table a schedule builds (entries of float32): longer horizons raise ValueError.
MAX_TABLE = 1 << 20

_INT32_MAX = int(np.iinfo(np.int32).max)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_lr(value: Any, name: str = "learning_rate") -> float:
    if not _is_number(value):
        raise TypeError(f"`{name}` must be a Python number, got {type(value).__name__}.")
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value}.")
    return float(value)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def _count(count: Any) -> jax.Array:
    c = jnp.asarray(count)
    if not jnp.issubdtype(c.dtype, jnp.integer):
        c = c.astype(jnp.int32)
    return jnp.clip(c, 0, _INT32_MAX).astype(jnp.int32)


def _f32_table(values: Any, name: str) -> jax.Array:
    arr = np.asarray(values, np.float64)
    if arr.size > MAX_TABLE:
        raise ValueError(
            f"{name} would tabulate {arr.size} learning rates; at most {MAX_TABLE} are supported "
            f"(jaxnn.optim.lr_scheduler.MAX_TABLE)."
        )
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return jnp.asarray(arr.astype(np.float32))


class _Pow:
    """``scale * gamma**n`` for int32 ``n``, from three double-precision tables (error <= ~2 ulp)."""

    _B = 2048  # n = n2 * 2**22 + n1 * 2**11 + n0

    def __init__(self, gamma: float, scale: float = 1.0):
        j = np.arange(self._B, dtype=np.float64)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            t0 = scale * np.power(float(gamma), j)
            t1 = np.power(float(gamma), j * self._B)
            t2 = np.power(float(gamma), np.arange(512, dtype=np.float64) * self._B * self._B)
            self.t = [jnp.asarray(t.astype(np.float32)) for t in (t0, t1, t2)]

    def __call__(self, n: jax.Array) -> jax.Array:
        n = _count(n)
        t0, t1, t2 = self.t
        return (t0[n & 2047] * t1[(n >> 11) & 2047]) * t2[n >> 22]


class LRSchedule:
    """Base of the jaxnn schedulers: a callable ``count -> learning rate`` (float32), i.e. an optax
    schedule. ``base_lr`` is the learning rate torch would read from the optimizer."""

    base_lr: float
    #: multiplicative at every step (``lr <- lr * r_k``), so it can join a :class:`ChainedScheduler`
    chainable: bool = False

    def __call__(self, count: Any) -> jax.Array:
        return self._scaled(_count(count), self.base_lr)

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_lr={self.base_lr})"


class _Tabulated(LRSchedule):
    """A schedule given by torch's recursion ``lr_k = step(k, lr_{k-1})``, tabulated in doubles.

    ``_horizon``: after this count the schedule is constant (``_period`` None), or the table holds
    one period of ``_period`` counts.
    """

    _horizon: int = 0
    _period: int | None = None

    def _step(self, k: int, lr: float, base: float) -> float:
        raise NotImplementedError

    def _table(self, scale: float) -> jax.Array:
        cache = self.__dict__.setdefault("_tables", {})
        if scale not in cache:
            n = self._period if self._period is not None else self._horizon + 1
            if n > MAX_TABLE:
                raise ValueError(
                    f"{type(self).__name__} would tabulate {n} learning rates; at most {MAX_TABLE} are "
                    "supported (jaxnn.optim.lr_scheduler.MAX_TABLE)."
                )
            values, lr = [], float(scale)
            for k in range(n):
                lr = self._step(k, lr, float(scale))
                values.append(lr)
            cache[scale] = _f32_table(values, type(self).__name__)
        return cache[scale]

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        table = self._table(scale)
        idx = count % self._period if self._period is not None else jnp.minimum(count, self._horizon)
        return table[idx]


class LambdaLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.LambdaLR``: :math:`\text{lr}_k = \text{lr} \cdot \lambda(k)`.

    Args:
      learning_rate: torch's optimizer lr (the ``initial_lr``).
      lr_lambda: the factor as a function of the count. It is called with a traced int32 count
        (as every optax schedule is), so it must use ``jnp`` operations, not Python branches.

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> s = lr_scheduler.LambdaLR(0.1, lambda k: 0.5 ** k)
      >>> float(s(2))
      0.02500000037252903
    """

    def __init__(self, learning_rate: float, lr_lambda: Callable[[Any], Any]):
        self.base_lr = _check_lr(learning_rate)
        if not callable(lr_lambda):
            raise TypeError(f"`lr_lambda` should be a function, but got {type(lr_lambda).__name__}.")
        self.lr_lambda = lr_lambda

    def __call__(self, count: Any) -> jax.Array:
        factor = jnp.asarray(self.lr_lambda(_count(count)), jnp.float32)
        return jnp.float32(self.base_lr) * factor


class MultiplicativeLR(_Tabulated):
    r"""``torch.optim.lr_scheduler.MultiplicativeLR``: :math:`\text{lr}_k = \text{lr}_{k-1} \lambda(k)`.

    ``lr_lambda`` is called in Python with ints, as torch calls it, for ``k = 1 .. total_iters``;
    the products are taken in doubles in torch's order.

    Args:
      learning_rate: torch's optimizer lr.
      lr_lambda: a Python function of the step index returning the factor.
      total_iters: (keyword-only, jaxnn's) how many steps to tabulate. Counts beyond it give
        ``nan`` (torch's value is unknown without calling ``lr_lambda``): pass at least the length
        of training.
    """

    chainable = True

    def __init__(self, learning_rate: float, lr_lambda: Callable[[int], float], *, total_iters: int):
        self.base_lr = _check_lr(learning_rate)
        if not callable(lr_lambda):
            raise TypeError(f"`lr_lambda` should be a function, but got {type(lr_lambda).__name__}.")
        self.lr_lambda = lr_lambda
        self._horizon = _check_int(total_iters, "total_iters", 0)

    def _step(self, k: int, lr: float, base: float) -> float:
        return lr if k == 0 else lr * float(self.lr_lambda(k))

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        value = super()._scaled(count, scale)
        return jnp.where(count > self._horizon, jnp.float32(jnp.nan), value)


class StepLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.StepLR``: :math:`\text{lr} \cdot \gamma^{\lfloor k / \text{step\_size} \rfloor}`.

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> s = lr_scheduler.StepLR(0.1, step_size=2, gamma=0.5)
      >>> [round(float(s(k)), 6) for k in range(5)]
      [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    chainable = True

    def __init__(self, learning_rate: float, step_size: int, gamma: float = 0.1):
        self.base_lr = _check_lr(learning_rate)
        self.step_size = _check_int(step_size, "step_size", 1)
        self.gamma = float(gamma)
        self._pows: dict[float, _Pow] = {}

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        pow_ = self._pows.setdefault(scale, _Pow(self.gamma, scale))
        return pow_(count // self.step_size)


class MultiStepLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.MultiStepLR``: :math:`\text{lr} \cdot \gamma^{n_k}`, with
    :math:`n_k` the number of milestones :math:`\le k` (a repeated milestone counts twice)."""

    chainable = True

    def __init__(self, learning_rate: float, milestones: Sequence[int], gamma: float = 0.1):
        self.base_lr = _check_lr(learning_rate)
        ms = sorted(Counter(milestones).elements())
        for m in ms:
            _check_int(m, "milestones", -(1 << 62))
        self.milestones = ms
        self.gamma = float(gamma)
        self._pows: dict[float, _Pow] = {}

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        pow_ = self._pows.setdefault(scale, _Pow(self.gamma, scale))
        # torch decays at a milestone m when last_epoch == m, for m >= 1 (epoch 0 is the initial lr)
        ms = [m for m in self.milestones if m >= 1]
        if not ms:
            return pow_(jnp.zeros_like(count))
        n = jnp.searchsorted(jnp.asarray(ms, jnp.int32), count, side="right").astype(jnp.int32)
        return pow_(n)


class ExponentialLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.ExponentialLR``: :math:`\text{lr} \cdot \gamma^k`.

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> float(lr_scheduler.ExponentialLR(1.0, gamma=0.5)(3))
      0.125
    """

    chainable = True

    def __init__(self, learning_rate: float, gamma: float):
        self.base_lr = _check_lr(learning_rate)
        self.gamma = float(gamma)
        self._pows: dict[float, _Pow] = {}

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        return self._pows.setdefault(scale, _Pow(self.gamma, scale))(count)


class ConstantLR(_Tabulated):
    r"""``torch.optim.lr_scheduler.ConstantLR``: ``lr * factor`` for the first ``total_iters``
    counts, then ``lr`` (``lr * factor * (1 / factor)`` in doubles, as torch)."""

    chainable = True

    def __init__(self, learning_rate: float, factor: float = 1.0 / 3, total_iters: int = 5):
        self.base_lr = _check_lr(learning_rate)
        if factor > 1.0 or factor < 0:
            raise ValueError(f"`factor` (Constant multiplicative factor) must be in [0, 1], got {factor}.")
        if factor == 0:
            raise ValueError("`factor` must be > 0: torch divides by it at `total_iters`.")
        self.factor = float(factor)
        self.total_iters = _check_int(total_iters, "total_iters", 0)
        self._horizon = max(self.total_iters, 0) + 1

    def _step(self, k: int, lr: float, base: float) -> float:
        if k == 0:
            return lr * self.factor
        if k != self.total_iters:
            return lr
        return lr * (1.0 / self.factor)


class LinearLR(_Tabulated):
    r"""``torch.optim.lr_scheduler.LinearLR``: the factor goes linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` counts (torch's recursion, tabulated in doubles).

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> s = lr_scheduler.LinearLR(0.1, start_factor=0.5, total_iters=2)
      >>> [round(float(s(k)), 6) for k in range(4)]
      [0.05, 0.075, 0.1, 0.1]
    """

    chainable = True

    def __init__(
        self, learning_rate: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
    ):
        self.base_lr = _check_lr(learning_rate)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(f"`start_factor` must be in (0, 1], got {start_factor}.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(f"`end_factor` must be in [0, 1], got {end_factor}.")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _check_int(total_iters, "total_iters", 1)
        self._horizon = self.total_iters + 1

    def _step(self, k: int, lr: float, base: float) -> float:
        s, e, t = self.start_factor, self.end_factor, self.total_iters
        if k == 0:
            return lr * s
        if k > t:
            return lr
        return lr * (1.0 + (e - s) / (t * s + (k - 1) * (e - s)))


class PolynomialLR(_Tabulated):
    r"""``torch.optim.lr_scheduler.PolynomialLR``: :math:`\text{lr} (1 - k/T)^{p}` up to
    :math:`T` = ``total_iters``, then constant (torch's recursion, tabulated in doubles)."""

    chainable = True

    def __init__(self, learning_rate: float, total_iters: int = 5, power: float = 1.0):
        self.base_lr = _check_lr(learning_rate)
        self.total_iters = _check_int(total_iters, "total_iters", 1)
        self.power = float(power)
        self._horizon = self.total_iters + 1

    def _step(self, k: int, lr: float, base: float) -> float:
        t = self.total_iters
        if k == 0 or k > t:
            return lr
        return lr * ((1.0 - k / t) / (1.0 - (k - 1) / t)) ** self.power


class CosineAnnealingLR(_Tabulated):
    r"""``torch.optim.lr_scheduler.CosineAnnealingLR``, torch's recursive form.

    .. math::
        \eta_{k} = \eta_{\min} + (\eta_{k-1} - \eta_{\min})
        \frac{1 + \cos(\pi k / T_{max})}{1 + \cos(\pi (k-1) / T_{max})}

    It does not stop at ``T_max``: past it the learning rate climbs back along the cosine (period
    ``2 T_max``), as torch's does. One period is tabulated with torch's double-precision
    recursion, so ``T_max`` is at most ``MAX_TABLE // 2``.

    Args:
      learning_rate: torch's optimizer lr (:math:`\eta_{\max}`).
      T_max: half period, in counts.
      eta_min: the minimum.

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> s = lr_scheduler.CosineAnnealingLR(0.01, T_max=10, eta_min=1e-3)
      >>> [round(float(s(k)), 6) for k in (0, 10, 11, 12)]
      [0.01, 0.001, 0.00122, 0.001859]

    Differences from optax:
      ``optax.cosine_decay_schedule`` stays at its minimum after ``decay_steps``.
    """

    def __init__(self, learning_rate: float, T_max: int, eta_min: float = 0.0):
        self.base_lr = _check_lr(learning_rate)
        self.T_max = _check_int(T_max, "T_max", 1)
        self.eta_min = float(eta_min)
        self._period = 2 * self.T_max

    def _step(self, k: int, lr: float, base: float) -> float:
        t, m = self.T_max, self.eta_min
        if k == 0:
            return lr
        if (k - 1 - t) % (2 * t) == 0:
            return lr + (base - m) * (1 - math.cos(math.pi / t)) / 2
        return (1 + math.cos(math.pi * k / t)) / (1 + math.cos(math.pi * (k - 1) / t)) * (lr - m) + m


def _half_cos_sq(num: jax.Array, den: jax.Array) -> jax.Array:
    """``(1 + cos(pi * num / den)) / 2`` for ``0 <= num <= den`` without cancellation near ``num = den``:
    ``cos(pi num / (2 den))**2``, taken as ``sin(pi (den - num) / (2 den))**2`` past the middle."""
    num = num.astype(jnp.float32)
    den = den.astype(jnp.float32)
    first = 2 * num <= den
    arg = jnp.where(first, num, den - num) / (2 * den) * jnp.float32(math.pi)
    return jnp.where(first, jnp.cos(arg) ** 2, jnp.sin(arg) ** 2)


class CosineAnnealingWarmRestarts(LRSchedule):
    r"""``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` (stepped once per update).

    .. math::
        \eta_k = \eta_{\min} + (\eta_{\max} - \eta_{\min}) \frac{1 + \cos(\pi T_{cur} / T_i)}{2}

    with :math:`T_{cur}` the counts since the last restart and :math:`T_i = T_0 T_{mult}^i`.

    Args:
      learning_rate: torch's optimizer lr (:math:`\eta_{\max}`).
      T_0: counts until the first restart.
      T_mult: growth factor of the period after each restart (int >= 1).
      eta_min: the minimum.
    """

    def __init__(self, learning_rate: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0):
        self.base_lr = _check_lr(learning_rate)
        self.T_0 = _check_int(T_0, "T_0", 1)
        self.T_mult = _check_int(T_mult, "T_mult", 1)
        if not _is_number(eta_min):
            raise ValueError(f"`eta_min` must be a float or int, got {eta_min!r}.")
        self.eta_min = float(eta_min)
        starts, lengths, s, t = [], [], 0, self.T_0
        while s <= _INT32_MAX and len(starts) < 64:
            starts.append(s)
            lengths.append(t)
            s, t = s + t, t * self.T_mult
            if self.T_mult == 1:
                break
        self._starts = np.asarray(starts, np.int64)
        self._lengths = np.asarray(lengths, np.float64)
        # torch's doubles for the first cycles (all counts when T_mult == 1), rounded once; the float32
        # formula (a few ulps) only past MAX_TABLE counts
        values: list[float] = []
        base, m = self.base_lr, self.eta_min
        for t_i in lengths:
            if len(values) + t_i > MAX_TABLE:
                break
            values.extend(m + (base - m) * (1 + math.cos(math.pi * t_cur / t_i)) / 2 for t_cur in range(t_i))
        self._table_len = len(values)
        self._table = _f32_table(values, "CosineAnnealingWarmRestarts") if values else None

    def __call__(self, count: Any) -> jax.Array:
        k = _count(count)
        if self.T_mult == 1:
            if self._table is not None:
                return self._table[k % self.T_0]
            t_cur, t_i = k % self.T_0, jnp.int32(self.T_0)
        else:
            starts = jnp.asarray(self._starts.clip(max=_INT32_MAX), jnp.int32)
            i = jnp.searchsorted(starts, k, side="right") - 1
            t_cur = k - starts[i]
            t_i = jnp.asarray(self._lengths.clip(max=2.0**62), jnp.float32)[i]
        c = _half_cos_sq(t_cur, jnp.asarray(t_i))
        value = jnp.float32(self.eta_min) + jnp.float32(self.base_lr - self.eta_min) * c
        if self._table is not None:
            value = jnp.where(k < self._table_len, self._table[jnp.minimum(k, self._table_len - 1)], value)
        return value


class CyclicLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.CyclicLR`` (stepped once per update).

    The learning rate cycles between ``base_lr`` and ``max_lr``: up over ``step_size_up`` counts,
    down over ``step_size_down`` (default ``step_size_up``), the amplitude scaled by ``mode``:
    ``'triangular'`` (1), ``'triangular2'`` (halved every cycle), ``'exp_range'``
    (``gamma**count``), or by a custom ``scale_fn`` of the cycle number (``scale_mode='cycle'``)
    or of the count (``'iterations'``), called with a traced value (use ``jnp``).

    ``self.momentum`` is torch's cycled momentum (or ``beta1``), inverse to the learning rate
    between ``base_momentum`` and ``max_momentum`` (``None`` with ``cycle_momentum=False``):
    pass it with ``optax.inject_hyperparams``, e.g.
    ``optax.inject_hyperparams(optim.sgd)(learning_rate=s, momentum=s.momentum)``.

    Differences from PyTorch:
      No optimizer argument: torch sets the optimizer's lr to ``base_lr``.
    """

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[Any], Any] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
    ):
        self.base_lr = _check_lr(base_lr, "base_lr")
        self.max_lr = _check_lr(max_lr, "max_lr")
        up = _check_int(step_size_up, "step_size_up", 1)
        down = up if step_size_down is None else _check_int(step_size_down, "step_size_down", 1)
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"`mode` is invalid ({mode!r}) and `scale_fn` is None.")
        if scale_fn is None:
            scale_mode = "iterations" if mode == "exp_range" else "cycle"
        elif scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"`scale_mode` must be 'cycle' or 'iterations', got {scale_mode!r}.")
        self.mode, self.gamma, self.scale_fn, self.scale_mode = mode, float(gamma), scale_fn, scale_mode
        self.total_size = up + down
        step_size_up_f, total = float(up), float(up) + float(down)
        step_ratio = step_size_up_f / total
        factors = []
        for r in range(self.total_size):  # torch's scale_factor for last_epoch = r (first cycle)
            cycle = math.floor(1 + r / total)
            x = 1.0 + r / total - cycle
            factors.append(x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1))
        factors_np = np.asarray(factors, np.float64)
        self._height = _f32_table((self.max_lr - self.base_lr) * factors_np, "CyclicLR")
        self._pow = _Pow(self.gamma) if scale_fn is None and mode == "exp_range" else None
        self.cycle_momentum = bool(cycle_momentum)
        self.momentum: Callable[[Any], jax.Array] | None = None
        if self.cycle_momentum:
            base_m, max_m = float(base_momentum), float(max_momentum)
            m_height = _f32_table((max_m - base_m) * factors_np, "CyclicLR")
            self.momentum = lambda count: jnp.float32(max_m) - m_height[_count(count) % self.total_size] * (
                self._scale(_count(count))
            )

    def _scale(self, k: jax.Array) -> jax.Array:
        cycle = k // self.total_size + 1
        if self.scale_fn is not None:
            arg = cycle if self.scale_mode == "cycle" else k
            return jnp.asarray(self.scale_fn(arg.astype(jnp.float32)), jnp.float32)
        if self.mode == "triangular":
            return jnp.float32(1.0)
        if self.mode == "triangular2":
            return jnp.ldexp(jnp.float32(1.0), -(jnp.minimum(cycle, 200) - 1))
        return cast(_Pow, self._pow)(k)

    def __call__(self, count: Any) -> jax.Array:
        k = _count(count)
        return jnp.float32(self.base_lr) + self._height[k % self.total_size] * self._scale(k)


class OneCycleLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.OneCycleLR`` (stepped once per update), tabulated in doubles.

    Warm up from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of ``total_steps``, then
    anneal (``'cos'`` or ``'linear'``) to ``max_lr / div_factor / final_div_factor``;
    ``three_phase=True`` anneals back to the initial lr first, as in the paper. Counts past
    ``total_steps`` (where torch raises) hold the value at ``total_steps``.

    ``self.momentum`` is torch's cycled momentum or ``beta1`` (``None`` with
    ``cycle_momentum=False``), for ``optax.inject_hyperparams``:
    ``optax.inject_hyperparams(optim.adamw)(learning_rate=s, b1=s.momentum)``.

    Differences from PyTorch:
      No optimizer argument (torch sets the optimizer's lr itself).

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> s = lr_scheduler.OneCycleLR(0.1, total_steps=10)
      >>> round(float(s(0)), 6), round(float(s(2)), 6), round(float(s(9)), 9)
      (0.004, 0.1, 4e-07)
    """

    def __init__(
        self,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        max_lr = _check_lr(max_lr, "max_lr")
        if total_steps is not None:
            total = _check_int(total_steps, "total_steps", 1)
        elif epochs is not None and steps_per_epoch is not None:
            total = _check_int(epochs, "epochs", 1) * _check_int(steps_per_epoch, "steps_per_epoch", 1)
        else:
            raise ValueError("You must define either `total_steps` OR (`epochs` AND `steps_per_epoch`).")
        if not isinstance(pct_start, float) or pct_start < 0 or pct_start > 1:
            raise ValueError(f"`pct_start` must be a float between 0 and 1, got {pct_start!r}.")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"`anneal_strategy` must be one of 'cos' or 'linear', got {anneal_strategy!r}.")
        self.total_steps = total
        initial = max_lr / div_factor
        lrs = {"initial": initial, "max": max_lr, "min": initial / final_div_factor}
        moms = {"max": float(max_momentum), "base": float(base_momentum)}
        if three_phase:
            phases = [
                (float(pct_start * total) - 1, "initial", "max", "max", "base"),
                (float(2 * pct_start * total) - 2, "max", "initial", "base", "max"),
                (total - 1, "initial", "min", "max", "max"),
            ]
        else:
            phases = [
                (float(pct_start * total) - 1, "initial", "max", "max", "base"),
                (total - 1, "max", "min", "base", "max"),
            ]

        def anneal(start: float, end: float, pct: float) -> float:
            if anneal_strategy == "cos":
                return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
            return (end - start) * pct + start

        lr_values, mom_values = [], []
        for step_num in range(total + 1):
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(phases):
                if step_num <= end_step or i == len(phases) - 1:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr_values.append(anneal(lrs[lr0], lrs[lr1], pct))
                    mom_values.append(anneal(moms[m0], moms[m1], pct))
                    break
                start_step = end_step
        self.base_lr = initial
        self._lr = _f32_table(lr_values, "OneCycleLR")
        self.momentum: Callable[[Any], jax.Array] | None = None
        if cycle_momentum:
            moms_table = _f32_table(mom_values, "OneCycleLR")
            self.momentum = lambda count: moms_table[jnp.minimum(_count(count), total)]

    def __call__(self, count: Any) -> jax.Array:
        return self._lr[jnp.minimum(_count(count), self.total_steps)]


def _check_schedules(schedulers: Sequence[Any], who: str) -> list[LRSchedule]:
    if len(schedulers) < 1:
        raise ValueError(f"{who} expects at least one scheduler, but got none.")
    out = []
    for i, s in enumerate(schedulers):
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"{who} does not support `ReduceLROnPlateau` (index {i}).")
        if not isinstance(s, LRSchedule):
            raise TypeError(f"{who}: `schedulers[{i}]` must be a jaxnn.optim.lr_scheduler schedule, got {s!r}.")
        out.append(s)
    return out


class SequentialLR(LRSchedule):
    r"""``torch.optim.lr_scheduler.SequentialLR``: ``schedulers[i]`` from ``milestones[i-1]`` on,
    each restarted at its milestone (count ``k`` is ``k - milestones[i-1]`` for it).

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> warmup = lr_scheduler.LinearLR(0.1, start_factor=0.1, total_iters=2)
      >>> decay = lr_scheduler.ExponentialLR(0.1, gamma=0.5)
      >>> s = lr_scheduler.SequentialLR([warmup, decay], milestones=[2])
      >>> [round(float(s(k)), 6) for k in range(5)]
      [0.01, 0.055, 0.1, 0.05, 0.025]

    Differences from PyTorch:
      No optimizer argument. ``MultiplicativeLR``, ``SequentialLR`` and ``ChainedScheduler``
      after the first position are refused (torch continues a ``MultiplicativeLR`` from the
      previous scheduler's lr and cannot restart the other two).
    """

    def __init__(self, schedulers: Sequence[LRSchedule], milestones: Sequence[int]):
        scheds = _check_schedules(schedulers, "SequentialLR")
        if len(milestones) != len(scheds) - 1:
            raise ValueError(
                "SequentialLR expects one more scheduler than milestones, got "
                f"{len(scheds)} schedulers and {len(milestones)} milestones."
            )
        for i, s in enumerate(scheds[1:], 1):
            if isinstance(s, MultiplicativeLR | SequentialLR | ChainedScheduler):
                raise ValueError(f"SequentialLR: `schedulers[{i}]` ({type(s).__name__}) cannot be restarted.")
        self.schedulers = scheds
        self.milestones = [_check_int(m, "milestones", 0) for m in milestones]
        self.base_lr = scheds[0].base_lr

    def __call__(self, count: Any) -> jax.Array:
        k = _count(count)
        if not self.milestones:
            return self.schedulers[0](k)
        ms = jnp.asarray(self.milestones, jnp.int32)
        idx = jnp.searchsorted(ms, k, side="right")
        starts = [0, *self.milestones]
        values = [s(jnp.maximum(k - start, 0)) for s, start in zip(self.schedulers, starts, strict=True)]
        return jnp.stack(values)[idx]


class ChainedScheduler(LRSchedule):
    r"""``torch.optim.lr_scheduler.ChainedScheduler``: all ``schedulers`` stepped together, each
    multiplying the learning rate by its own factor.

    Only multiplicative schedulers can be chained (``StepLR``, ``MultiStepLR``,
    ``ExponentialLR``, ``ConstantLR``, ``LinearLR``, ``PolynomialLR``, ``MultiplicativeLR``):
    the others overwrite the lr each step (torch then keeps only part of the earlier factors) and
    are refused with ValueError. All must have the same ``learning_rate`` (one optimizer in torch).

    Examples:
      >>> from jaxnn.optim import lr_scheduler
      >>> s = lr_scheduler.ChainedScheduler([lr_scheduler.ConstantLR(1.0, factor=0.1, total_iters=2),
      ...                                    lr_scheduler.ExponentialLR(1.0, gamma=0.9)])
      >>> [round(float(s(k)), 6) for k in range(4)]
      [0.1, 0.09, 0.81, 0.729]
    """

    chainable = True

    def __init__(self, schedulers: Sequence[LRSchedule]):
        scheds = _check_schedules(schedulers, "ChainedScheduler")
        for i, s in enumerate(scheds):
            if not s.chainable:
                raise ValueError(
                    f"ChainedScheduler: `schedulers[{i}]` ({type(s).__name__}) is not multiplicative; "
                    "use SequentialLR or LambdaLR."
                )
            if s.base_lr != scheds[0].base_lr:
                raise ValueError(
                    f"ChainedScheduler: all schedulers need the same `learning_rate`; got {scheds[0].base_lr} "
                    f"and {s.base_lr} at index {i}."
                )
        self.schedulers = scheds
        self.base_lr = scheds[0].base_lr

    def _scaled(self, count: jax.Array, scale: float) -> jax.Array:
        value = self.schedulers[0]._scaled(count, scale)
        for s in self.schedulers[1:]:
            value = value * s._scaled(count, 1.0)
        return value


# --- ReduceLROnPlateau ------------------------------------------------------------------------------


class ReduceLROnPlateauState(NamedTuple):
    """State of :class:`ReduceLROnPlateau`.

    Attributes:
      lr: the current learning rate (float32).
      best: the best metric so far (``inf`` / ``-inf`` before the first).
      num_bad_epochs: metric steps without improvement (int32).
      cooldown_counter: metric steps left in the cooldown (int32).
      last_epoch: metric steps so far (int32, saturating).
    """

    lr: chex.Array
    best: chex.Array
    num_bad_epochs: chex.Array
    cooldown_counter: chex.Array
    last_epoch: chex.Array


class ReduceLROnPlateau(optax.GradientTransformationExtraArgs):
    r"""``torch.optim.lr_scheduler.ReduceLROnPlateau`` as a transform driven by a metric value.

    Chain it after an optimizer built with the same ``learning_rate``; it scales the updates by
    ``lr / learning_rate``. ``update(updates, state, params, value=metric)`` first scales with the
    current lr, then does one torch ``scheduler.step(metric)`` (the order of ``optimizer.step()``
    then ``scheduler.step(metric)``); without ``value`` (or ``value=None``) there is no metric
    step, so a per-epoch metric goes with the last update of the epoch only.

    In ``mode='min'`` an improvement is ``metric < best * (1 - threshold)``
    (``threshold_mode='rel'``) or ``metric < best - threshold`` (``'abs'``); ``'max'`` mirrors
    it. After more than ``patience`` steps without improvement the lr becomes
    ``max(lr * factor, min_lr)`` (unless that changes it by ``eps`` or less) and ``cooldown``
    steps follow in which bad steps are not counted.

    Args:
      learning_rate: the optimizer's lr.
      mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps: torch's.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jaxnn import optim
      >>> from jaxnn.optim import lr_scheduler
      >>> tx = optax.chain(optim.sgd(0.1), lr_scheduler.ReduceLROnPlateau(0.1, patience=0))
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> for loss in (1.0, 2.0):
      ...     _, state = tx.update({"w": jnp.ones(2)}, state, params, value=loss)
      >>> round(float(lr_scheduler.current_lr(state)), 6)
      0.01

    Differences from PyTorch:
      The lr and the metric are float32 (torch: Python doubles); the lr reaches the parameters as
      a scale of the optimizer's updates, so with decoupled weight decay the decay term's float32
      rounding is that of ``learning_rate`` (for that exactness use ``optax.inject_hyperparams``
      and set the lr from :func:`current_lr`). One lr for all parameters (``min_lr`` a number).
    """

    def __new__(
        cls,
        learning_rate: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ):
        base = _check_lr(learning_rate)
        if not _is_number(factor) or factor >= 1.0:
            raise ValueError(f"`factor` should be < 1.0, got {factor}.")
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` {mode!r} is unknown: use 'min' or 'max'.")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"`threshold_mode` {threshold_mode!r} is unknown: use 'rel' or 'abs'.")
        patience = _check_int(patience, "patience", -(1 << 30))
        cooldown = _check_int(cooldown, "cooldown", -(1 << 30))
        min_lr = float(min_lr)
        worse = math.inf if mode == "min" else -math.inf

        def is_better(a: jax.Array, best: jax.Array) -> jax.Array:
            if mode == "min" and threshold_mode == "rel":
                return a < best * jnp.float32(1.0 - threshold)
            if mode == "min":
                return a < best - jnp.float32(threshold)
            if threshold_mode == "rel":
                return a > best * jnp.float32(threshold + 1.0)
            return a > best + jnp.float32(threshold)

        def init_fn(params: Any) -> ReduceLROnPlateauState:
            del params
            i0 = jnp.zeros([], jnp.int32)
            return ReduceLROnPlateauState(jnp.float32(base), jnp.float32(worse), i0, i0, i0)

        def update_fn(updates: Any, state: Any, params: Any = None, *, value: Any = None, **extra: Any):
            del params, extra
            scale = state.lr / jnp.float32(base) if base != 0 else jnp.float32(0.0)
            updates = jax.tree.map(lambda u: (u * scale.astype(u.dtype)).astype(u.dtype), updates)
            if value is None:
                return updates, state
            current = jnp.asarray(value, jnp.float32).reshape(())
            better = is_better(current, state.best)
            best = jnp.where(better, current, state.best)
            bad = jnp.where(better, 0, state.num_bad_epochs + 1)
            in_cooldown = state.cooldown_counter > 0
            cool = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
            bad = jnp.where(in_cooldown, 0, bad)
            reduce = bad > patience
            new_lr = jnp.maximum(state.lr * jnp.float32(factor), jnp.float32(min_lr))
            changed = reduce & (state.lr - new_lr > jnp.float32(eps))
            lr = jnp.where(changed, new_lr, state.lr)
            cool = jnp.where(reduce, cooldown, cool)
            bad = jnp.where(reduce, 0, bad)
            step = jnp.asarray(optax.safe_int32_increment(state.last_epoch))
            return updates, ReduceLROnPlateauState(lr, best, bad.astype(jnp.int32), cool.astype(jnp.int32), step)

        return super().__new__(cls, init_fn, update_fn)


def current_lr(opt_state: Any) -> jax.Array:
    """The learning rate a :class:`ReduceLROnPlateau` in ``opt_state`` (any depth, or an
    ``nnx.Optimizer``) holds now: torch's ``get_last_lr()[0]``."""
    state = opt_state
    if not isinstance(state, tuple) and hasattr(state, "opt_state"):
        state = state.opt_state
    is_s = lambda x: isinstance(x, ReduceLROnPlateauState)
    found = [s for s in jax.tree.leaves(state, is_leaf=is_s) if is_s(s)]
    if len(found) != 1:
        raise ValueError(f"`opt_state` holds {len(found)} ReduceLROnPlateau states (expected one).")
    value = found[0].lr
    return value.get_value() if hasattr(value, "get_value") else value

