"""group_norm, layer_norm and linear with torch's semantics."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import jax
import jax.core
import jax.extend
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.interpreters import batching, mlir

from .. import _kernels
from .._utils import (
    check_float,
    check_norm_param_dtype,
    check_real_float,
    check_same_dtype,
    is_int,
    shape_str,
    stat_dtype,
)


def _lead(p: jax.Array, ndim: int) -> jax.Array:
    """Reshape a trailing-dims parameter for explicit broadcasting (no rank promotion)."""
    return jnp.reshape(p, (1,) * (ndim - p.ndim) + tuple(p.shape))


# Reduction layout of the statistics. "rows": x is (R, m), one group per row. "strided": x is
# (N, S, G, C/G) (channels last), one group per (n, g) over S positions and C/G channels.
_Layout = Literal["rows", "strided"]
_CHUNK = 16  # terms per reduction step along an outer axis (XLA CPU unrolls up to 16)
_LANES = 16  # a row of m values is summed as m/16 terms of 16 lanes


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Knuth's TwoSum: ``s = fl(a + b)`` and the rounding error ``e``, with ``s + e == a + b`` exactly."""
    s = a + b
    z = s - a
    return s, (a - (s - z)) + (b - z)


def _add_compensated(a: tuple, b: tuple) -> tuple:
    """Reduction step over ``(sum, sum_err, sumsq, sumsq_err)``: both sums error-compensated."""
    s1, e1 = _two_sum(a[0], b[0])
    s2, e2 = _two_sum(a[2], b[2])
    return s1, a[1] + b[1] + e1, s2, a[3] + b[3] + e2


def _add_pair_compensated(a: tuple, b: tuple) -> tuple:
    """Reduction step over ``(sum, sum_err)``: one error-compensated sum."""
    s, e = _two_sum(a[0], b[0])
    return s, a[1] + b[1] + e


# Operands of at least this many elements are reduced with :func:`_add_compensated` as two
# two-output reductions (the sums, then the sums of squares; the same TwoSum steps): XLA's CPU
# backend vectorises those, while it emits the four-output reduction as scalar code (12 ms for
# 21 MB). On the 1/16-size partial sums the first level leaves of a (128, 40960) input this took
# the moments pass from 1.9 to 1.3 ms (measured, same bits out). Smaller operands keep one
# four-output reduction (~0.15 ms at this size): one fusion fewer, and compile time grows with
# the number of fusions.
_SPLIT_MIN = 1 << 16


def _add_sumsq_compensated(a: tuple, b: tuple) -> tuple:
    """First-level step over ``(sum, sumsq, sumsq_err)``: plain sum, compensated sum of squares.

    XLA's CPU backend does not vectorise the four-output step when the shift ``x - c`` is fused
    into it (12 ms instead of 1.1 ms for 21 MB, measured); the three-output one it does. The
    plain sum of at most ``_CHUNK`` terms of ``d`` costs at most a few ulps of ``sum|d|``, a
    shift of the output far below its own rounding.
    """
    s2, e2 = _two_sum(a[1], b[1])
    return a[0] + b[0], s2, a[2] + b[2] + e2


# (first level, later levels): the compensated moments, or plain differentiable sums (None).
_Steps = tuple[Callable | None, Callable | None]
_COMPENSATED: _Steps = (_add_sumsq_compensated, _add_compensated)
_PLAIN: _Steps = (None, None)


def _reduce(ops: tuple, step: Callable | None, axis: int) -> tuple:
    """``lax.reduce`` with ``step``, or plain (transposable, so differentiable) sums for None."""
    if step is None:
        return tuple(jnp.sum(o, axis) for o in ops)
    zero = jnp.zeros((), ops[0].dtype)
    if step is _add_compensated and ops[0].size >= _SPLIT_MIN:
        pair = (zero, zero)
        s1 = lax.reduce(ops[:2], pair, _add_pair_compensated, (axis,))
        s2 = lax.reduce(ops[2:], pair, _add_pair_compensated, (axis,))
        return (*s1, *s2)
    return tuple(lax.reduce(ops, (zero,) * len(ops), step, (axis,)))


def _next_level(ops: tuple) -> tuple:
    """``(sum, sumsq, sumsq_err)`` after the first level becomes ``(sum, 0, sumsq, sumsq_err)``."""
    return (ops[0], jnp.zeros_like(ops[0]), ops[1], ops[2]) if len(ops) == 3 else ops


def _sum_outer(ops: tuple, axis: int, steps: _Steps) -> tuple:
    """Reduce ``ops`` over ``axis`` (not the minor one) with ``step``; the axis is kept, size 1.

    A cascade: each level sums chunks of ``_CHUNK`` neighbours (zero-padded; zeros do not change
    a sum) while the minor dimension stays contiguous as vector lanes, and writes 1/32 of its
    input. XLA's CPU backend unrolls and vectorises such short outer reductions (measured: 16 terms
    of a compensated sum at 1.5 ms for 21 MB, 32 terms at 11.5 ms, not unrolled);
    one long reduction over the same axis, or over the minor axis, runs several times slower.
    """
    step = steps[0]
    while True:
        n = ops[0].shape[axis]
        if n <= _CHUNK:
            return _next_level(tuple(jnp.expand_dims(r, axis) for r in _reduce(ops, step, axis)))
        # a chunk of 8..16 terms that divides n needs no padding (n = 20: two chunks of 10)
        chunk = next((k for k in range(_CHUNK, _CHUNK // 2 - 1, -1) if n % k == 0), _CHUNK)
        blocks = -(-n // chunk)
        if blocks * chunk != n:
            widths = [(0, 0)] * ops[0].ndim
            widths[axis] = (0, blocks * chunk - n)
            ops = tuple(jnp.pad(o, widths) for o in ops)
        shape = ops[0].shape[:axis] + (blocks, chunk) + ops[0].shape[axis + 1 :]
        ops = _next_level(_reduce(tuple(o.reshape(shape) for o in ops), step, axis + 1))
        step = steps[1]


def _group_sums(ops: tuple, layout: _Layout, steps: _Steps) -> tuple:
    """Sum ``ops`` over each group of ``layout``, keeping dims so that the results broadcast."""
    later = (steps[1], steps[1])  # the partial sums of the first cascade are small
    if layout == "strided":
        n, positions, g, cg = ops[0].shape
        flat = tuple(o.reshape(n, positions, g * cg) for o in ops)  # (N, S, C): channels as lanes
        part = tuple(o.reshape(n, g, cg) for o in _sum_outer(flat, 1, steps))
        part = tuple(jnp.moveaxis(o, 2, 0) for o in part)  # (C/G, N, G)
        return tuple(o.reshape(n, 1, g, 1) for o in _sum_outer(part, 0, later))
    r, m = ops[0].shape
    if m < 2 * _LANES:  # short rows: sum the transpose, rows as lanes
        return tuple(o.T for o in _sum_outer(tuple(o.T for o in ops), 0, steps))
    lanes = -(-m // _LANES)
    if lanes * _LANES != m:
        ops = tuple(jnp.pad(o, ((0, 0), (0, lanes * _LANES - m))) for o in ops)
    part = _sum_outer(tuple(o.reshape(r, lanes, _LANES) for o in ops), 1, steps)  # (R, 1, 16)
    part = tuple(o.reshape(r, _LANES).T for o in part)  # (16, R)
    return tuple(o.T for o in _sum_outer(part, 0, later))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _moments(d: jax.Array, layout: _Layout) -> tuple[jax.Array, jax.Array]:
    """``(sum(d), sum(d * d))`` over each group of ``layout``, accurately, in any summation order.

    Error-compensated summation (TwoSum, as in Kahan/Neumaier summation; every step carries the
    rounding error of its sum alongside it) keeps both sums within a few ulps of the exact ones
    whatever order XLA adds in: small terms are not absorbed by a large one (an outlier), and
    the result does not change with the CPU's vector width or the backend's reduction tree.
    Differentiated as plain sums (custom_jvp).
    """
    s1, e1, s2, e2 = _group_sums((d, d * d, jnp.zeros_like(d)), layout, _COMPENSATED)
    return _add_error(s1, e1), _add_error(s2, e2)


def _add_error(s: jax.Array, e: jax.Array) -> jax.Array:
    """``s + e``; an overflowed sum stays inf (its error term is ``inf - inf``, nan). A sum of
    squares that overflows float32 then gives ``rstd = 0`` and an output of 0, as torch's does."""
    return jnp.where(jnp.isinf(s), s, s + e)


@_moments.defjvp
def _moments_jvp(layout, primals, tangents):
    (d,), (t,) = primals, tangents
    return _moments(d, layout), _group_sums((t, 2 * d * t), layout, _PLAIN)


def _normalize(x: jax.Array, layout: _Layout, eps: float, stats: bool = False) -> Any:
    """``(x - mean) / sqrt(var + eps)`` over each group of ``layout`` (biased variance).

    Two passes, as robust statistics code does. A plain sum gives a shift ``c`` close to the
    mean; the moments of ``d = x - c`` then have no catastrophic cancellation: not the
    ``E[x^2] - E[x]^2`` one, and not the milder one of shifting by one sample, which fails when
    that sample is an outlier. They are summed with error compensation (:func:`_moments`), and
    ``var = E[d^2] - E[d]^2`` only corrects for ``c``'s own rounding. The mean ``c + E[d]`` is
    kept as an unevaluated sum ``hi + lo`` (TwoSum): ``x - hi`` rounds once, as torch's
    ``x - mean``, and ``lo`` keeps the bits of the mean below ``hi``'s last place, so data with
    mean 1e4 and std 1 keeps float32 precision. The scale is written ``1 / sqrt(var + eps)`` as
    torch computes it, but XLA's simplifier turns that into its ``rsqrt`` (up to ~1.6 ulp off;
    seen in the CPU program), so one output in a few differs from torch by an ulp. The result
    does not depend on ``c`` mathematically, so no gradient flows through it.

    ``count`` passes through ``lax.optimization_barrier`` so that every division by it is a real,
    correctly rounded division. XLA rewrites division by a constant as a product with the
    rounded reciprocal; it then recomputed ``c = total * (1/count)`` inside one fusion and
    contracted ``x - total * r`` into a fused multiply-add there, while another fusion read the
    rounded ``c``, so the correction ``E[d]`` was for a different shift (on CPUs with FMA: up to
    half an ulp of the mean, 5e-4 at mean 1e4; measured), and a constant row's mean missed the
    row's value by an ulp.

    With ``stats=True`` also the statistics, per group with kept dimensions: ``(y, hi, lo, rstd)``.
    """
    if x.size == 0 and not stats:
        return x
    n = x.shape[1] * x.shape[3] if layout == "strided" else x.shape[1]
    count = lax.optimization_barrier(jnp.asarray(n, x.dtype))
    if layout == "rows":
        total = jnp.sum(x, 1, keepdims=True)  # XLA's own row sum is fastest here; only a shift
    else:
        (total,) = _group_sums((x,), layout, _PLAIN)
    c = lax.optimization_barrier(lax.stop_gradient(total / count))  # once per group, not per element
    s1, s2 = _moments(x - c, layout)
    mean_d = s1 / count
    var = jnp.maximum(s2 / count - mean_d * mean_d, 0.0)
    rstd = 1.0 / jnp.sqrt(var + eps)
    hi, lo = _two_sum(c, mean_d)
    y = ((x - hi) - lo) * rstd
    return (y, hi, lo, rstd) if stats else y


def _normalized_shape(normalized_shape: Any, input: Any) -> tuple[int, ...]:
    """torch's rule for ``normalized_shape`` (layer_norm, rms_norm): an int or a tuple of ints equal
    to ``input``'s trailing dimensions."""
    if is_int(normalized_shape):
        norm_shape: tuple[int, ...] = (int(normalized_shape),)
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
    return norm_shape


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
      weight, bias: optional ``(C,)`` affine parameters, of ``input``'s dtype or (for
        float16/bfloat16 input) float32, as torch's mixed-precision CPU kernel accepts.
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

    Implementation:
      float32 on the CPU runs jaxnn's kernel (jaxnn/_kernels/group_norm.cc, an XLA FFI custom
      call): each group's statistics in one float64 pass shifted by its first value, then its
      output while the group is in cache, as torch's kernel does. Elsewhere (GPU/TPU, other
      dtypes, programs partitioned over several devices, ``jax.export``) the XLA implementation:
      error-compensated shifted moments in the input's statistics dtype. Both are at least as
      accurate as torch's against float64. float32 derivatives use the analytic formula with
      the per-group statistics (torch's backward), other dtypes autodiff of the XLA ops.

    Differences from Flax:
      flax's GroupNorm defaults to ``epsilon=1e-6`` (torch 1e-5), works channels-last only, and
      with ``use_fast_variance=True`` computes ``E[x^2] - E[x]^2``, which loses all precision when
      ``|mean| >> std``. jaxnn uses shifted moments (see the stress tests).
    """
    check_real_float(input, "input")
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
            if tuple(p.shape) != (c,):
                raise ValueError(f"`{name}` must have shape ({c},), got {shape_str(p.shape)}.")
    check_norm_param_dtype(input, weight, bias)
    n = input.shape[0]
    spatial = math.prod(input.shape[1:-1] if channels_last else input.shape[2:])
    if n * (c // num_groups) * spatial == 1:
        raise ValueError(
            f"group_norm expects more than 1 value per group, got `input` of shape "
            f"{shape_str(input.shape)} with `num_groups`={num_groups} (torch's rule)."
        )
    x = jnp.asarray(input)
    static_eps = _check_eps(eps)
    if x.dtype == jnp.float32 and x.size and static_eps:
        ones = jnp.ones((c,), x.dtype)
        w = ones if weight is None else jnp.asarray(weight, x.dtype)
        b = jnp.zeros_like(ones) if bias is None else jnp.asarray(bias, x.dtype)
        return _group_norm_f32(x, w, b, num_groups, float(eps), channels_last)
    return _group_norm_xla(x, weight, bias, num_groups, eps, channels_last)


def _check_eps(eps: Any) -> bool:
    """torch's rule for ``eps`` (a real number; a TypeError otherwise); True when it is a Python or
    NumPy number, False for a JAX array (a traced ``eps`` takes the XLA implementation)."""
    if isinstance(eps, jax.Array) and eps.ndim == 0 and jnp.issubdtype(eps.dtype, jnp.floating):
        return False
    if isinstance(eps, numbers.Real) and not isinstance(eps, jax.Array):
        return True
    raise TypeError(f"`eps` must be a float, got {eps!r} of type {type(eps).__name__}.")


def _group_norm_xla(
    x: jax.Array, weight: jax.Array | None, bias: jax.Array | None, num_groups: int, eps: float, channels_last: bool
) -> jax.Array:
    """group_norm in XLA ops, any float dtype (validated arguments)."""
    dtype = x.dtype
    x = x.astype(stat_dtype(dtype))
    n, c_axis = x.shape[0], x.ndim - 1 if channels_last else 1
    c = x.shape[c_axis]
    spatial = math.prod(x.shape[1:-1] if channels_last else x.shape[2:])
    if channels_last:
        grouped = x.reshape((n, spatial, num_groups, c // num_groups))
        y = _normalize(grouped, "strided", eps).reshape(x.shape)
    else:
        grouped = x.reshape((n * num_groups, (c // num_groups) * spatial))  # one group per row
        y = _normalize(grouped, "rows", eps).reshape(x.shape)
    shape = [1] * x.ndim
    shape[c_axis] = c
    if weight is not None:
        y = y * jnp.reshape(weight, shape).astype(y.dtype)
    if bias is not None:
        y = y + jnp.reshape(bias, shape).astype(y.dtype)
    return y.astype(dtype)


# float32 group_norm as a primitive of its own, so that the choice of implementation is made when
# the program is lowered: on the CPU jaxnn's kernel (jaxnn/_kernels/group_norm.cc, an XLA FFI
# custom call), elsewhere (GPU, TPU) and in programs lowered for serialisation (jax.export: a
# custom call would tie the artifact to this process's registration) the XLA implementation.
# Operands: x as (*L, N, C, S), or (*L, N, S, C) channels last, with weight and bias (C,) or
# (*L, C) (per-sample parameters, from vmap).


def _group_norm_kernel_call(x, weight, bias, *, num_groups: int, eps: float, channels_last: bool) -> tuple:
    """The CPU kernel: one pass per group for its statistics (in float64, shifted by the group's first
    element) and its output while the group is in cache. Returns ``(y, stats)``."""
    stats = jax.ShapeDtypeStruct(x.shape[:-2] + (num_groups, 3), x.dtype)
    call = jax.ffi.ffi_call("jaxnn_group_norm_f32", (jax.ShapeDtypeStruct(x.shape, x.dtype), stats))
    y, stats = call(x, weight, bias, groups=np.int64(num_groups), eps=np.float64(eps), channels_last=channels_last)
    return y, stats


def _group_norm_xla_call(x, weight, bias, *, num_groups: int, eps: float, channels_last: bool) -> tuple:
    """The primitive's operands through :func:`_normalize`: ``(y, stats)``, parameters per leading index."""
    flat = x.reshape((-1,) + x.shape[-2:])
    r = flat.shape[0]
    if channels_last:
        s, c = flat.shape[1:]
        y, *st = _normalize(flat.reshape(r, s, num_groups, c // num_groups), "strided", eps, stats=True)
    else:
        c, s = flat.shape[1:]
        y, *st = _normalize(flat.reshape(r * num_groups, (c // num_groups) * s), "rows", eps, stats=True)
    stats = jnp.stack([a.reshape(r, num_groups) for a in st], -1).reshape(x.shape[:-2] + (num_groups, 3))
    tail = (1, 1, -1) if channels_last else (1, -1, 1)
    lead = weight.shape[:-1] + (1,) * (x.ndim - 3 - (weight.ndim - 1))
    return y.reshape(x.shape) * weight.reshape(lead + tail) + bias.reshape(lead + tail), stats


_group_norm_p = jax.extend.core.Primitive("jaxnn_group_norm")
_group_norm_p.multiple_results = True


@functools.cache
def _group_norm_p_jit(num_groups: int, eps: float, channels_last: bool) -> Callable:
    return jax.jit(partial(_group_norm_p.bind, num_groups=num_groups, eps=eps, channels_last=channels_last))


def _group_norm_p_abstract(x, weight, bias, *, num_groups: int, **params):
    return [jax.core.ShapedArray(x.shape, x.dtype), jax.core.ShapedArray(x.shape[:-2] + (num_groups, 3), x.dtype)]


def _per_device_program(ctx) -> bool:
    """Whether the program being lowered runs as is on one device: a custom call has no sharding
    rule, so in a program that XLA partitions over several devices it would gather its operands
    to every device (right values, lost sharding); there the XLA implementation is used."""
    axis_context = ctx.module_context.axis_context
    num_devices = getattr(axis_context, "num_devices", None)  # jit's sharding context
    if num_devices is not None:
        return num_devices == 1
    mesh, manual = getattr(axis_context, "mesh", None), getattr(axis_context, "manual_axes", None)
    if mesh is not None and manual is not None:  # shard_map: a per-device body where every axis is manual
        return set(mesh.axis_names) <= set(manual)
    return True  # pmap's replica context: a per-device program


def _group_norm_p_cpu_lowering(ctx, *args, **params):
    use_kernel = (
        not ctx.module_context.lowering_parameters.for_export
        and _per_device_program(ctx)
        and _kernels.available("group_norm")
    )
    impl = _group_norm_kernel_call if use_kernel else _group_norm_xla_call
    return mlir.lower_fun(impl, multiple_results=True)(ctx, *args, **params)


def _group_norm_p_batch(args, dims, **params):
    """vmap: the batch axis first; per-sample parameters become leading dimensions of weight/bias."""
    size = next(a.shape[d] for a, d in zip(args, dims, strict=True) if d is not None)
    x, weight, bias = (
        jnp.broadcast_to(a, (size, *a.shape)) if d is None else jnp.moveaxis(a, d, 0)
        for a, d in zip(args, dims, strict=True)
    )
    if dims[1] is None and dims[2] is None and args[1].ndim == 1:
        weight, bias = args[1], args[2]  # shared parameters stay (C,)
    else:
        lead = x.shape[:-3]  # (batch, *L); p is (batch, C) or (batch, *L, C)
        weight, bias = (
            jnp.broadcast_to(p.reshape((size,) + (1,) * (len(lead) + 1 - p.ndim) + p.shape[1:]), (*lead, p.shape[-1]))
            for p in (weight, bias)
        )
    return _group_norm_p.bind(x, weight, bias, **params), (0, 0)


def _group_norm_p_impl(*args, **params):
    """Eager evaluation through jit; under ``jax.disable_jit()`` jit would call ``bind`` again, forever."""
    with jax.disable_jit(False):
        return _group_norm_p_jit(**params)(*args)


_group_norm_p.def_impl(_group_norm_p_impl)
_group_norm_p.def_abstract_eval(_group_norm_p_abstract)
mlir.register_lowering(_group_norm_p, mlir.lower_fun(_group_norm_xla_call, multiple_results=True))
mlir.register_lowering(_group_norm_p, _group_norm_p_cpu_lowering, platform="cpu")
batching.primitive_batchers[_group_norm_p] = _group_norm_p_batch


def _group_norm_f32(x, weight, bias, num_groups: int, eps: float, channels_last: bool) -> jax.Array:
    """float32 group_norm through the primitive above (validated arguments, weight/bias (C,))."""
    return _group_norm_f32_stats(x, weight, bias, num_groups, eps, channels_last)[0]


@partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5))
def _group_norm_f32_stats(x, weight, bias, num_groups: int, eps: float, channels_last: bool) -> tuple:
    """``(y, stats)``: y of x's shape; stats ``(N, G, 3)``: each group's mean as ``hi + lo`` and rstd.

    Derivatives (custom_jvp) by the analytic group_norm formula from these statistics, as torch's
    backward does: with ``xhat = (x - mean) * rstd`` and group means ``<.>``,
    ``d xhat = rstd * (dx - <dx> - xhat * <xhat * dx>)``, ``dy = d xhat * w + xhat * dw + db``,
    ``d mean = <dx>``, ``d rstd = -rstd^2 <xhat * dx>``. The rule calls this function again, so
    every order of derivative takes the same path.
    """
    n, c = x.shape[0], x.shape[-1] if channels_last else x.shape[1]
    x3 = x.reshape((n, -1, c) if channels_last else (n, c, -1))
    y, stats = _group_norm_p.bind(x3, weight, bias, num_groups=num_groups, eps=eps, channels_last=channels_last)
    return y.reshape(x.shape), stats


@_group_norm_f32_stats.defjvp
def _group_norm_f32_stats_jvp(num_groups, eps, channels_last, primals, tangents):
    (x, weight, bias), (tx, tw, tb) = primals, tangents
    y, stats = _group_norm_f32_stats(x, weight, bias, num_groups, eps, channels_last)
    n, g = x.shape[0], num_groups
    c = x.shape[-1] if channels_last else x.shape[1]
    if channels_last:  # (N, S, G, C/G), statistics (N, 1, G, 1)
        grouped, stat_shape, axes = (n, -1, g, c // g), (n, 1, g, 1), (1, 3)
    else:  # (N, G, C/G * S), statistics (N, G, 1)
        grouped, stat_shape, axes = (n, g, -1), (n, g, 1), (2,)
    hi, lo, rstd = (stats[..., i].reshape(stat_shape) for i in range(3))
    xhat = ((x.reshape(grouped) - hi) - lo) * rstd
    gtx = tx.reshape(grouped)
    m1 = jnp.mean(gtx, axes, keepdims=True)
    m2 = jnp.mean(xhat * gtx, axes, keepdims=True)
    t_xhat = (rstd * (gtx - m1 - xhat * m2)).reshape(x.shape)
    param_shape = [1] * x.ndim
    param_shape[x.ndim - 1 if channels_last else 1] = c
    w, t_w, t_b = (jnp.reshape(p, param_shape) for p in (weight, tw, tb))
    ty = t_xhat * w + xhat.reshape(x.shape) * t_w + t_b
    t_stats = jnp.stack([m1.reshape(n, g), jnp.zeros((n, g), x.dtype), (-rstd * rstd * m2).reshape(n, g)], -1)
    return (y, stats), (ty, t_stats)


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
      weight, bias: optional, of shape ``normalized_shape``; of ``input``'s dtype or (for
        float16/bfloat16 input) float32, as torch's mixed-precision CPU kernel accepts.
      eps: added to the biased variance (torch: 1e-5; flax.linen.LayerNorm: 1e-6).

    Returns:
      Same shape and dtype as ``input`` (statistics in float32 for half-precision inputs).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.layer_norm(jnp.array([[1.0, 2.0, 3.0]]), 3).round(4)
      Array([[-1.2247,  0.    ,  1.2247]], dtype=float32)
    """
    check_real_float(input, "input")
    norm_shape = _normalized_shape(normalized_shape, input)
    k = len(norm_shape)
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None:
            check_float(p, name)
            if tuple(p.shape) != norm_shape:
                raise ValueError(f"`{name}` must have shape {shape_str(norm_shape)}, got {shape_str(p.shape)}.")
    check_norm_param_dtype(input, weight, bias)
    dtype = input.dtype
    x = jnp.asarray(input).astype(stat_dtype(dtype))
    m = math.prod(norm_shape)
    rows = math.prod(x.shape[: x.ndim - k])
    y = _normalize(x.reshape((rows, m)), "rows", eps).reshape(x.shape)
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



def rms_norm(
    input: jax.Array,
    normalized_shape: int | Sequence[int],
    weight: jax.Array | None = None,
    eps: float | None = None,
) -> jax.Array:
    r"""Root-mean-square normalisation over the last ``len(normalized_shape)`` dims, ``F.rms_norm``.

    .. math::
        y = \frac{x}{\sqrt{\mathrm{E}[x^2] + \epsilon}} \cdot \gamma

    with the mean over the trailing ``normalized_shape`` dimensions, :math:`\gamma` = ``weight``.

    Args:
      input: ``(*, *normalized_shape)``.
      normalized_shape: int or tuple; must equal the trailing dimensions of ``input``.
      weight: optional, of shape ``normalized_shape`` (any floating dtype).
      eps: added to the mean square; None is torch's rule, the machine epsilon of the dtype the
        statistics are computed in: ``finfo(float32).eps`` for float16/bfloat16/float32 input,
        ``finfo(float64).eps`` for float64.

    Returns:
      Same shape and dtype as ``input``. float16/bfloat16 input is computed in float32 (weight
      included) and rounded once at the end, as torch 2.13's kernel does.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.rms_norm(jnp.array([[3.0, 4.0]]), 2)
      Array([[0.848528..., 1.131370...]], dtype=float32)

    Differences from PyTorch:
      None in results. The mean square is summed with error compensation, so it does not depend on
      the summation order. torch warns when ``weight``'s dtype differs from ``input``'s; jaxnn
      computes the same result silently.
    """
    check_float(input, "input")
    norm_shape = _normalized_shape(normalized_shape, input)
    k = len(norm_shape)
    if weight is not None:
        check_float(weight, "weight")
        if tuple(weight.shape) != norm_shape:
            raise ValueError(f"`weight` must have shape {shape_str(norm_shape)}, got {shape_str(weight.shape)}.")
    if eps is not None and not isinstance(eps, int | float):
        raise TypeError(f"`eps` must be a float or None, got {eps!r}.")
    dtype = input.dtype
    sdtype = stat_dtype(dtype)
    e = float(jnp.finfo(sdtype).eps) if eps is None else float(eps)
    x = jnp.asarray(input).astype(sdtype)
    m = math.prod(norm_shape)
    rows = math.prod(x.shape[: x.ndim - k])
    if x.size == 0:
        return jnp.asarray(input)
    xr = x.reshape((rows, m))
    count = lax.optimization_barrier(jnp.asarray(m, sdtype))
    _, s2 = _moments(xr, "rows")
    rstd = 1.0 / jnp.sqrt(s2 / count + jnp.asarray(e, sdtype))  # XLA may emit rsqrt (see _normalize)
    y = (xr * rstd).reshape(x.shape)
    if weight is not None:
        w = _lead(weight, y.ndim)
        y = y.astype(jnp.promote_types(sdtype, w.dtype)) * w
    return y.astype(dtype)
