"""instance_norm (and the running statistics torch updates in place) and local_response_norm."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import check_float, check_norm_param_dtype, check_real_float, is_int, shape_str, stat_dtype
from ._activation import _round
from ._norm import _moments, _normalize


def _given(v: Any) -> str:
    return "None" if v is None else f"an array of shape {shape_str(v.shape)}"


def _check(input: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any, use_input_stats: bool,
           momentum: Any) -> int:
    check_real_float(input, "input")
    if momentum is None:
        raise TypeError("instance_norm(): `momentum` must be a float, not None (torch's rule).")
    if input.ndim < 2:
        raise ValueError(
            f"instance_norm: `input` must have at least 2 dimensions (N, C, *), got shape {shape_str(input.shape)}."
        )
    if use_input_stats and math.prod(input.shape[2:]) == 1:  # torch's _verify_spatial_size
        raise ValueError(
            f"Expected more than 1 spatial element when training, got input size {shape_str(input.shape)} "
            "(instance_norm normalises each (sample, channel) over its spatial positions)."
        )
    if use_input_stats and (running_mean is None) != (running_var is None):
        raise ValueError(
            "running_mean and running_var must either both be None or neither be None (torch's rule), got "
            f"`running_mean`={_given(running_mean)}, `running_var`={_given(running_var)}."
        )
    if not use_input_stats and (running_mean is None or running_var is None):
        raise ValueError(
            "Expected running_mean and running_var to be defined when use_input_stats is false, got "
            f"`running_mean`={_given(running_mean)}, `running_var`={_given(running_var)}."
        )
    c = input.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if v is not None:
            check_float(v, name)
            if tuple(v.shape) != (c,):
                raise ValueError(
                    f"`{name}` must have shape ({c},) (the channels of `input` {shape_str(input.shape)}), got "
                    f"{shape_str(v.shape)}."
                )
    check_norm_param_dtype(input, weight, bias)
    return c


def _stats(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and BIASED variance of each row of ``x`` (R, m): shifted, error-compensated moments,
    the statistics :func:`jaxnn.functional._norm._normalize` normalises with."""
    m = x.shape[1]
    count = lax.optimization_barrier(jnp.asarray(m, x.dtype))
    c = lax.optimization_barrier(lax.stop_gradient(jnp.sum(x, 1, keepdims=True) / count))
    s1, s2 = _moments(x - c, "rows")
    mean_d = s1 / count
    var = jnp.maximum(s2 / count - mean_d * mean_d, 0.0)
    return (c + mean_d)[:, 0], var[:, 0]


def _half_params(dtype: Any, *params: Any) -> bool:
    """torch's non-mixed reduced-precision batch_norm: float16/bfloat16 input and no float32
    ``weight``/``bias`` (float32 running statistics alone do not switch torch to its mixed kernel),
    so its saved statistics are half too."""
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
    return half and not any(p is not None and p.dtype == jnp.float32 for p in params)


def _half_saved_stats(rows: jax.Array, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """The statistics torch's CPU batch_norm saves for float16/bfloat16 input without float32
    parameters: the mean stored in the input dtype and the variance about that stored mean
    (bfloat16's kernel also stores the sum of squared deviations in bfloat16)."""
    mean, var = _stats(rows)
    mean_h = _round(mean, dtype)
    var = var + jnp.square(mean - mean_h)  # deviations from the stored (rounded) mean, as torch's
    if jnp.dtype(dtype) == jnp.dtype(jnp.bfloat16):
        count = jnp.asarray(rows.shape[1], rows.dtype)
        var = _round(var * count, dtype) / count
    return mean_h, var


def _half_param_transform(rows: jax.Array, dtype: Any, weight: Any, bias: Any, eps: float, n: int,
                          c: int) -> jax.Array:
    """torch's CPU batch_norm output for float16/bfloat16 input without float32 parameters:
    ``invstd`` from :func:`_half_saved_stats` stored in the input dtype too, then
    ``x * alpha + beta`` in float32 with ``alpha = invstd * weight``, ``beta = bias - mean * alpha``,
    rounded once."""
    acc = rows.dtype
    mean_h, var = _half_saved_stats(rows, dtype)
    alpha = _round(1.0 / jnp.sqrt(var + jnp.asarray(eps, acc)), dtype)
    if weight is not None:
        alpha = (alpha.reshape(n, c) * weight.astype(acc)[None]).reshape(-1)
    beta = -mean_h * alpha
    if bias is not None:
        beta = (beta.reshape(n, c) + bias.astype(acc)[None]).reshape(-1)
    return rows * alpha[:, None] + beta[:, None]


def _instance_norm(input: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any,
                   use_input_stats: bool, momentum: Any, eps: float) -> tuple[jax.Array, Any, Any]:
    """The output and the running statistics torch leaves behind (updated when
    ``use_input_stats`` and given; otherwise as they were)."""
    c = _check(input, running_mean, running_var, weight, bias, use_input_stats, momentum)
    if input.size == 0:  # torch returns the empty output
        if use_input_stats and running_mean is not None and running_var is not None and input.shape[0] == 0:
            # torch averages the N updated copies of the statistics: the mean of none is NaN
            running_mean = jnp.full(running_mean.shape, jnp.nan, running_mean.dtype)
            running_var = jnp.full(running_var.shape, jnp.nan, running_var.dtype)
        return jnp.asarray(input), running_mean, running_var
    dtype = input.dtype
    acc = stat_dtype(dtype)
    n = input.shape[0]
    x = jnp.asarray(input).astype(acc)
    rows = x.reshape((n * c, -1))  # one (sample, channel) per row
    shape = (1, c) + (1,) * (x.ndim - 2)
    if use_input_stats:
        half_stats = _half_params(dtype, weight, bias)  # float32 running statistics do not count (measured)
        if half_stats:
            y = _half_param_transform(rows, dtype, weight, bias, eps, n, c).reshape(x.shape)
        else:
            y = _normalize(rows, "rows", eps).reshape(x.shape)
            if weight is not None:
                y = y * jnp.reshape(weight, shape).astype(acc)
            if bias is not None:
                y = y + jnp.reshape(bias, shape).astype(acc)
        if running_mean is not None and running_var is not None:
            stat_rows = lax.stop_gradient(rows)
            mean, var = _half_saved_stats(stat_rows, dtype) if half_stats else _stats(stat_rows)
            m = rows.shape[1]
            mom = jnp.asarray(momentum, acc)
            # torch: batch_norm on (1, N*C, *) updates N*C copies, then averages them over N
            new_mean = (1 - mom) * running_mean.astype(acc)[None] + mom * mean.reshape(n, c)
            new_var = (1 - mom) * running_var.astype(acc)[None] + mom * (var * (m / (m - 1))).reshape(n, c)
            if half_stats:  # torch updates half copies of the statistics there, then averages them in half
                new_mean, new_var = _round(new_mean, dtype), _round(new_var, dtype)
                mean_n, var_n = _round(jnp.mean(new_mean, 0), dtype), _round(jnp.mean(new_var, 0), dtype)
            else:
                mean_n, var_n = jnp.mean(new_mean, 0), jnp.mean(new_var, 0)
            running_mean = mean_n.astype(running_mean.dtype)
            running_var = var_n.astype(running_var.dtype)
        return y.astype(dtype), running_mean, running_var
    # running statistics: torch's batch_norm evaluation kernel, x * alpha + beta
    alpha = lax.rsqrt(running_var.astype(acc) + jnp.asarray(eps, acc))
    if weight is not None:
        alpha = alpha * weight.astype(acc)
    beta = -running_mean.astype(acc) * alpha
    if bias is not None:
        beta = beta + bias.astype(acc)
    y = x * jnp.reshape(alpha, shape) + jnp.reshape(beta, shape)
    return y.astype(dtype), running_mean, running_var


def instance_norm(
    input: jax.Array,
    running_mean: jax.Array | None = None,
    running_var: jax.Array | None = None,
    weight: jax.Array | None = None,
    bias: jax.Array | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Instance normalisation, ``torch.nn.functional.instance_norm``.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    with mean and BIASED variance per (sample, channel) over all spatial positions
    (``use_input_stats=True``), or ``running_mean`` / ``running_var`` (``use_input_stats=False``);
    :math:`\gamma` = ``weight``, :math:`\beta` = ``bias`` per channel.

    Args:
      input: ``(N, C, *)`` with more than one spatial element when ``use_input_stats``.
      running_mean, running_var: optional ``(C,)``; both or neither; required when
        ``use_input_stats=False``.
      weight, bias: optional ``(C,)``, of ``input``'s dtype or (for float16/bfloat16 input)
        float32, as torch's mixed-precision CPU kernel accepts.
      use_input_stats: normalise with each instance's own statistics.
      momentum: the running statistics' update weight (see :func:`instance_norm_running_stats`).
      eps: added to the variance.

    Returns:
      Same shape and dtype as ``input``. float16/bfloat16 input follows torch's CPU kernels: with
      float32 ``weight``/``bias`` (its mixed-precision kernel) float32 statistics and one rounding;
      without (no parameters, or half ones) the mean and ``1/std`` are stored in the input dtype
      first and the variance is taken about the stored mean, as torch's saved statistics are.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.instance_norm(jnp.array([[[1.0, 3.0], [0.0, 4.0]]]))
      Array([[[-0.99999..., 0.99999...],
              [-0.99999..., 0.99999...]]], dtype=float32)

    Differences from PyTorch:
      torch updates ``running_mean`` / ``running_var`` IN PLACE when ``use_input_stats`` and they
      are given; JAX arrays are immutable: get the new values from
      :func:`instance_norm_running_stats` (the modules do this). The statistics are summed with
      error compensation (as :func:`group_norm`'s), so they do not depend on the reduction order.
      Errors are ValueError where torch raises RuntimeError. bfloat16 without float32 parameters:
      torch's kernel also stores the sum of squared deviations in bfloat16 after a float32 sum in
      vector lanes, whose order decides the rounding of some rows' ``1/std``: jaxnn's results are
      within two bfloat16 units of torch's there (float16 and every mixed case: bit for bit). For
      float16/bfloat16 running statistics torch sums the half mean in half-precision vector lanes:
      the updated statistics agree to one unit of the half dtype.
    """
    return _instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)[0]


def instance_norm_running_stats(
    input: jax.Array,
    running_mean: jax.Array,
    running_var: jax.Array,
    momentum: float | jax.Array = 0.1,
    *,
    weight: jax.Array | None = None,
    bias: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    r"""The running statistics torch's ``instance_norm(..., use_input_stats=True)`` writes in place.

    .. math::
        \text{running\_mean} \leftarrow \frac{1}{N}\sum_n \big((1 - m)\,\text{running\_mean}
        + m\,\mathrm{E}[x_{n}]\big), \quad
        \text{running\_var} \leftarrow \frac{1}{N}\sum_n \big((1 - m)\,\text{running\_var}
        + m\,\tfrac{S}{S - 1}\mathrm{Var}[x_{n}]\big)

    per channel, with the UNBIASED variance of each instance (``S`` spatial positions), averaged
    over the batch, as torch's batch_norm-on-``(1, N*C, *)`` implementation leaves them.

    Args:
      input: ``(N, C, *)``.
      running_mean, running_var: ``(C,)``.
      momentum: ``m``, a float or a scalar array.
      weight, bias: keyword-only, the ``instance_norm`` call's: they do not enter the statistics,
        but float32 ones with float16/bfloat16 input select torch's float32 kernel, whose
        statistics are not rounded to the input dtype first.

    Returns:
      ``(new_running_mean, new_running_var)`` in the dtypes of the given ones. An empty batch
      (``N = 0``) gives NaN statistics, as torch's average over no instances does.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.array([[[1.0, 3.0]]])
      >>> F.instance_norm_running_stats(x, jnp.zeros(1), jnp.ones(1))
      (Array([0.2], dtype=float32), Array([1.1], dtype=float32))
    """
    _, mean, var = _instance_norm(input, running_mean, running_var, weight, bias, True, momentum, 1e-5)
    return mean, var


def local_response_norm(
    input: jax.Array, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> jax.Array:
    r"""Local response normalisation across channels, ``torch.nn.functional.local_response_norm``.

    .. math::
        y_c = x_c \Big/ \Big(k + \frac{\alpha}{n} \sum_{c' = c - \lfloor n/2 \rfloor}^{c + \lfloor (n-1)/2 \rfloor}
        x_{c'}^2\Big)^{\beta}

    with ``n`` = ``size`` and zeros outside the channel range (torch's average pool over the
    squared input, zero-padded by ``(size // 2, (size - 1) // 2)``, dividing by ``size``).

    Args:
      input: ``(N, C, *)`` with at least 3 dimensions.
      size: the number of neighbouring channels, a positive int.
      alpha, beta, k: as in the formula.

    Returns:
      Same shape and dtype. torch's op sequence (square, pool, ``* alpha``, ``+ k``, ``** beta``,
      divide) with each result rounded to the input dtype, as torch stores it; the pool sums in
      window order in float32.

    Differences from PyTorch:
      float16/bfloat16 input with 4 or more dimensions has no torch CPU kernel (its
      ``avg_pool3d`` raises NotImplementedError); jaxnn computes it, equal to torch's 3-D path over
      the same channels. bfloat16 with ``beta=-0.5``: torch's vectorised ``rsqrt`` rounds
      differently from its scalar ``1 / sqrt``; jaxnn computes ``1 / sqrt`` correctly rounded.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.local_response_norm(jnp.ones((1, 3, 1)), 2, alpha=1.0, beta=1.0, k=1.0)[0, :, 0]
      Array([0.6666667, 0.5      , 0.5      ], dtype=float32)
    """
    check_float(input, "input")
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions), "
                         f"`input` of shape {shape_str(input.shape)}.")
    if not is_int(size) or size <= 0:
        raise ValueError(f"`size` must be a positive int (channels in the window), got {size!r}.")
    for name, v in (("alpha", alpha), ("beta", beta), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"`{name}` must be a float, got {v!r}.")
    x = jnp.asarray(input)
    if x.size == 0:
        return x
    dtype = x.dtype
    acc = stat_dtype(dtype)
    xc = x.astype(acc)
    sq = _round(xc * xc, dtype)
    c = x.shape[1]
    lo, hi = size // 2, (size - 1) // 2
    widths = [(0, 0)] * x.ndim
    widths[1] = (lo, hi)
    padded = jnp.pad(sq, widths)
    total = lax.slice_in_dim(padded, 0, c, axis=1)
    for j in range(1, size):  # the pool's window order, one rounding per addition
        total = total + lax.slice_in_dim(padded, j, j + c, axis=1)
    div = _round(total / jnp.asarray(size, acc), dtype)
    div = _round(div * jnp.asarray(alpha, acc), dtype)
    div = _round(div + jnp.asarray(k, acc), dtype)
    div = _round(_pow(div, float(beta), dtype), dtype)
    return (xc / div).astype(dtype)


def _pow(x: jax.Array, e: float, dtype: Any) -> jax.Array:
    """torch's CPU ``pow(tensor, scalar)``: exact products for 2, 3 and -2; sqrt, ``1 / sqrt`` and
    the reciprocal for 0.5, -0.5 and -1; otherwise ``pow`` with the exponent converted to the
    tensor's dtype for float16/bfloat16 (torch's ``cast_scalar_t``: 0.75 is exact, 1.3 is not)."""
    if e == 2.0:
        return x * x
    # bfloat16's vectorised kernel stores each product in bfloat16 (float16 computes in float32)
    bf16 = jnp.dtype(dtype) == jnp.dtype(jnp.bfloat16)
    if e == 3.0:
        return (_round(x * x, dtype) if bf16 else x * x) * x
    if e == -2.0:
        return 1.0 / (_round(x * x, dtype) if bf16 else x * x)
    if e == 0.5:
        return jnp.sqrt(x)
    if e == -0.5:  # a real division: XLA would rewrite 1 / sqrt into its approximate rsqrt
        return 1.0 / lax.optimization_barrier(jnp.sqrt(x))
    if e == -1.0:
        return 1.0 / x
    if jnp.dtype(dtype) != x.dtype:
        e = float(np.asarray(e, dtype=np.dtype(dtype)))
    return x ** jnp.asarray(e, x.dtype)
