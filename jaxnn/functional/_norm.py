"""group_norm, layer_norm and linear with torch's semantics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import check_float, check_same_dtype, is_int, shape_str, stat_dtype


def _lead(p: jax.Array, ndim: int) -> jax.Array:
    """Reshape a trailing-dims parameter for explicit broadcasting (no rank promotion)."""
    return jnp.reshape(p, (1,) * (ndim - p.ndim) + tuple(p.shape))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _sum_and_sumsq(d: jax.Array, dims: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """``(sum(d), sum(d * d))`` over ``dims`` in ONE variadic reduction: a single read of ``d``.

    Two separate ``jnp.sum`` calls make XLA materialise ``d`` and read it twice; the variadic
    reduce over the outer (non-contiguous) dims keeps the minor dimension as vector lanes and
    runs at copy speed on CPU. Differentiated with plain sums (custom_jvp).
    """
    zero = jnp.zeros((), d.dtype)
    s1, s2 = lax.reduce((d, d * d), (zero, zero), lambda a, b: (a[0] + b[0], a[1] + b[1]), dims)
    return s1, s2


@_sum_and_sumsq.defjvp
def _sum_and_sumsq_jvp(dims, primals, tangents):
    (d,), (t,) = primals, tangents
    return _sum_and_sumsq(d, dims), (jnp.sum(t, dims), jnp.sum(2 * d * t, dims))


def _normalize(x: jax.Array, axes: tuple[int, ...], eps: float) -> jax.Array:
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance), in ``x``'s dtype.

    Moments of ``x - s``, where the shift ``s`` is the first element of each reduction window:
    shifted moments do not cancel catastrophically when the mean is far larger than the spread
    (the ``E[x^2] - E[x]^2`` trap), and the output subtracts ``s`` before the small residual mean,
    so data with mean 1e4 and std 1 keeps float32 precision. The result does not depend on ``s``
    mathematically, so no gradient flows through it. With several reduced axes, the outer ones
    are summed in one variadic pass (see :func:`_sum_and_sumsq`) and the innermost afterwards.
    """
    keep = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    shift = lax.stop_gradient(x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))])
    d = x - shift
    count = math.prod(x.shape[a] for a in axes)
    if len(axes) > 1:
        outer, inner = tuple(axes[:-1]), axes[-1] - len(axes[:-1])
        p1, p2 = _sum_and_sumsq(d, outer)
        s1, s2 = jnp.sum(p1, inner).reshape(keep), jnp.sum(p2, inner).reshape(keep)
    else:
        s1, s2 = jnp.sum(d, axes, keepdims=True), jnp.sum(d * d, axes, keepdims=True)
    mean_d = s1 / count
    var = s2 / count - mean_d * mean_d
    rstd = lax.rsqrt(jnp.maximum(var, 0.0) + eps)
    return (d - mean_d) * rstd


def group_norm(
    input: jax.Array,
    num_groups: int,
    weight: jax.Array | None = None,
    bias: jax.Array | None = None,
    eps: float = 1e-5,
    *,
    channels_last: bool = False,
) -> jax.Array:
    r"""Group normalisation, ``torch.nn.functional.group_norm``.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    with mean and BIASED variance per (sample, group) over ``C / num_groups`` channels and all
    spatial positions; :math:`\gamma` = ``weight`` and :math:`\beta` = ``bias`` per channel.

    Args:
      input: ``(N, C, *)`` with at least 2 dimensions; ``(N, *, C)`` with ``channels_last=True``.
      num_groups: positive int dividing ``C``.
      weight, bias: optional ``(C,)`` affine parameters.
      eps: added to the variance (torch: 1e-5).
      channels_last: channels on the last axis (NHWC), as Flax and XLA prefer.

    Returns:
      Same shape and dtype as ``input``. float16/bfloat16 inputs are normalised in float32.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.arange(8.0).reshape(1, 4, 2)
      >>> F.group_norm(x, 2).round(4)
      Array([[[-1.3416, -0.4472],
              [ 0.4472,  1.3416],
              [-1.3416, -0.4472],
              [ 0.4472,  1.3416]]], dtype=float32)

    Differences from Flax:
      flax's GroupNorm defaults to ``epsilon=1e-6`` (torch 1e-5), works channels-last only, and
      with ``use_fast_variance=True`` computes ``E[x^2] - E[x]^2``, which loses all precision when
      ``|mean| >> std``. jaxnn uses shifted moments (see the stress tests).
    """
    check_float(input, "input")
    if input.ndim < 2:
        raise ValueError(f"`input` must have at least 2 dimensions (N, C, *), got shape {shape_str(input.shape)}.")
    if not is_int(num_groups) or num_groups <= 0:
        raise ValueError(f"`num_groups` must be a positive int, got {num_groups!r}.")
    c_axis = input.ndim - 1 if channels_last else 1
    c = input.shape[c_axis]
    if c % num_groups:
        raise ValueError(
            f"`num_groups` (={num_groups}) must divide the number of channels (={c}) of `input` "
            f"with shape {shape_str(input.shape)}."
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_float(p, name)
            check_same_dtype(input, p, name)
            if tuple(p.shape) != (c,):
                raise ValueError(f"`{name}` must have shape ({c},), got {shape_str(p.shape)}.")
    n = input.shape[0]
    spatial = math.prod(input.shape[1:-1] if channels_last else input.shape[2:])
    if n * (c // num_groups) * spatial == 1:
        raise ValueError(
            f"group_norm expects more than 1 value per group, got `input` of shape "
            f"{shape_str(input.shape)} with `num_groups`={num_groups} (torch's rule)."
        )
    dtype = input.dtype
    x = jnp.asarray(input).astype(stat_dtype(dtype))
    if channels_last:
        grouped = x.reshape((n, spatial, num_groups, c // num_groups))
        y = _normalize(grouped, (1, 3), eps).reshape(x.shape)
    else:
        grouped = x.reshape((n, num_groups, c // num_groups, spatial))
        y = _normalize(grouped, (2, 3), eps).reshape(x.shape)
    shape = [1] * x.ndim
    shape[c_axis] = c
    if weight is not None:
        y = y * jnp.reshape(weight, shape).astype(y.dtype)
    if bias is not None:
        y = y + jnp.reshape(bias, shape).astype(y.dtype)
    return y.astype(dtype)


def layer_norm(
    input: jax.Array,
    normalized_shape: int | Sequence[int],
    weight: jax.Array | None = None,
    bias: jax.Array | None = None,
    eps: float = 1e-5,
) -> jax.Array:
    r"""Layer normalisation over the last ``len(normalized_shape)`` dimensions, ``F.layer_norm``.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    Args:
      input: ``(*, *normalized_shape)``.
      normalized_shape: int or tuple; must equal the trailing dimensions of ``input``.
      weight, bias: optional, of shape ``normalized_shape``.
      eps: added to the biased variance (torch: 1e-5; flax.linen.LayerNorm: 1e-6).

    Returns:
      Same shape and dtype as ``input`` (statistics in float32 for half-precision inputs).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.layer_norm(jnp.array([[1.0, 2.0, 3.0]]), 3).round(4)
      Array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """
    check_float(input, "input")
    if is_int(normalized_shape):
        norm_shape: tuple[int, ...] = (int(normalized_shape),)  # type: ignore[arg-type]
    elif isinstance(normalized_shape, Sequence) and all(is_int(s) for s in normalized_shape):
        norm_shape = tuple(int(s) for s in normalized_shape)
    else:
        raise TypeError(f"`normalized_shape` must be an int or a tuple of ints, got {normalized_shape!r}.")
    k = len(norm_shape)
    if k == 0 or k > input.ndim or tuple(input.shape[input.ndim - k :]) != norm_shape:
        raise ValueError(
            f"`normalized_shape`={list(norm_shape)} expects `input` of shape [*, "
            f"{', '.join(map(str, norm_shape))}], got {shape_str(input.shape)}."
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_float(p, name)
            check_same_dtype(input, p, name)
            if tuple(p.shape) != norm_shape:
                raise ValueError(f"`{name}` must have shape {shape_str(norm_shape)}, got {shape_str(p.shape)}.")
    dtype = input.dtype
    x = jnp.asarray(input).astype(stat_dtype(dtype))
    y = _normalize(x, tuple(range(x.ndim - k, x.ndim)), eps)
    if weight is not None:
        y = y * _lead(weight, y.ndim).astype(y.dtype)
    if bias is not None:
        y = y + _lead(bias, y.ndim).astype(y.dtype)
    return y.astype(dtype)


def linear(input: jax.Array, weight: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    r"""Affine map :math:`y = x W^T + b`, ``torch.nn.functional.linear``.

    Args:
      input: ``(*, in_features)``.
      weight: ``(out_features, in_features)`` (torch's layout; flax's Dense kernel is the
        transpose), or ``(in_features,)`` for a dot product.
      bias: optional ``(out_features,)`` (or ``()`` with a 1-D weight).

    Returns:
      ``(*, out_features)`` in the input dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(4)).shape
      (2, 4)
    """
    check_float(input, "input")
    check_float(weight, "weight")
    check_same_dtype(input, weight, "weight")
    if weight.ndim not in (1, 2):
        raise ValueError(f"`weight` must be 1D or 2D (out_features, in_features), got shape {shape_str(weight.shape)}.")
    if input.ndim < 1:
        raise ValueError("`input` must have at least 1 dimension, got a 0-d array.")
    in_features = weight.shape[-1]
    if input.shape[-1] != in_features:
        raise ValueError(
            f"`input` last dimension ({input.shape[-1]}) must equal `weight`'s in_features "
            f"({in_features}); shapes {shape_str(input.shape)} and {shape_str(weight.shape)}."
        )
    out_shape = tuple(weight.shape[:-1])
    if bias is not None:
        check_float(bias, "bias")
        check_same_dtype(input, bias, "bias")
        if tuple(bias.shape) != out_shape:
            raise ValueError(f"`bias` must have shape {shape_str(out_shape)}, got {shape_str(bias.shape)}.")
    acc = stat_dtype(input.dtype)
    y = lax.dot_general(
        jnp.asarray(input),
        jnp.asarray(weight),
        (((input.ndim - 1,), (weight.ndim - 1,)), ((), ())),
        preferred_element_type=None if acc == input.dtype else acc,
    )
    if bias is not None:
        y = y + _lead(bias, y.ndim).astype(y.dtype)
    return y.astype(input.dtype)

