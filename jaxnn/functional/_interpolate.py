"""Resampling: ``interpolate`` (torch's source-index rules, one spatial axis at a time) and the
``pixel_shuffle`` / ``pixel_unshuffle`` rearrangements.

Every resize is separable: along each spatial axis, output element ``o`` is a weighted sum of a few
input elements whose indices and weights depend only on the static sizes. Those tables are built
here in NumPy, in the precision torch's CPU kernels use (the input's "opmath" type: float32 for
float32/float16/bfloat16, float64 for float64; nearest indices always in float32), and the array
work is a handful of gathers, so the op is jit-, vmap- and grad-safe.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_array, is_int, shape_str

INTERPOLATE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_LINEAR_RANK = {"linear": 3, "bilinear": 4, "trilinear": 5}

# A table along one axis: indices (out, K), weights (out, K) or None (a plain gather), and for
# 'area' the number of elements each output averages (None otherwise).
_Table = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def _opmath(dtype: Any) -> Any:
    """torch's accumulation type: float64 for float64, float32 for everything narrower."""
    return np.float64 if jnp.dtype(dtype) == jnp.float64 else np.float32


def _scale(in_size: int, out_size: int, align_corners: bool, scale: float | None, ft: Any) -> Any:
    """aten's ``area_pixel_compute_scale`` in the float type ``ft``: ``1/scale_factor`` when a
    scale factor reaches the kernel, else ``in/out`` (``(in-1)/(out-1)`` with align_corners)."""
    if align_corners:
        return ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0)
    if scale is not None and scale > 0:
        return ft(1.0 / scale)
    return ft(in_size) / ft(out_size)


def _nearest_table(in_size: int, out_size: int, scale: float | None, exact: bool, rank: int) -> _Table:
    """torch's CPU kernels, reproduced bit for bit: the index scale is a float; the 2-D kernel
    (``nearest_idx``) copies when the size is unchanged and halves when it doubles; the 1-D and 3-D
    kernels compute nearest-exact as ``floor(fma(scale, dst + 0.5, -0.5) + 0.5)``."""
    f32 = np.float32
    s = _scale(in_size, out_size, False, scale, f32)
    dst = np.arange(out_size)
    if not exact:
        if rank == 4 and out_size == in_size:
            src = dst
        elif rank == 4 and out_size == 2 * in_size:
            src = dst >> 1
        else:  # floorf(dst * scale) in float
            src = np.floor(dst.astype(f32) * s)
    elif rank == 4:  # floorf((dst + 0.5) * scale): the product in double, rounded to float
        src = np.floor(((dst + 0.5) * np.float64(s)).astype(f32))
    else:  # one rounding of s * (dst + 0.5) - 0.5 (exact in double), clamped at 0, + 0.5 in double
        real = (np.float64(s) * (dst + 0.5) - 0.5).astype(f32)
        real = np.maximum(real, f32(0))
        src = np.floor((real.astype(np.float64) + 0.5).astype(f32))
    idx = np.minimum(np.asarray(src).astype(np.int64), in_size - 1)
    return idx[:, None], None, None


def _round_weights(w: np.ndarray, dtype: Any) -> np.ndarray:
    """aten stores interpolation weights in the input's dtype and reads them back in opmath."""
    return np.asarray(w).astype(jnp.dtype(dtype)).astype(_opmath(dtype))


def _linear_table(in_size: int, out_size: int, align_corners: bool, scale: float | None, dtype: Any) -> _Table:
    ft = _opmath(dtype)
    dst = np.arange(out_size)
    if out_size == in_size:  # aten copies: lambda0 = 1, lambda1 = 0
        idx0 = dst
        lam1 = np.zeros(out_size, ft)
    else:
        s = _scale(in_size, out_size, align_corners, scale, ft)
        if align_corners:
            real = s * dst.astype(ft)
        else:
            real = s * (dst.astype(ft) + ft(0.5)) - ft(0.5)
            real = np.where(real < 0, ft(0), real).astype(ft)
        idx0 = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
        lam1 = np.clip(real - idx0.astype(ft), ft(0), ft(1)).astype(ft)
    idx1 = idx0 + (idx0 < in_size - 1)
    lam1 = _round_weights(lam1, dtype)
    lam0 = _round_weights(ft(1) - lam1, dtype)
    return np.stack([idx0, idx1], 1), np.stack([lam0, lam1], 1), None


def _cubic_table(in_size: int, out_size: int, align_corners: bool, scale: float | None, dtype: Any) -> _Table:
    ft = _opmath(dtype)
    a = ft(-0.75)
    dst = np.arange(out_size)
    s = _scale(in_size, out_size, align_corners, scale, ft)
    real = s * dst.astype(ft) if align_corners else s * (dst.astype(ft) + ft(0.5)) - ft(0.5)
    idx = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
    t = np.clip(real - idx.astype(ft), ft(0), ft(1)).astype(ft)

    def conv1(x: np.ndarray) -> np.ndarray:  # |x| <= 1
        return ((a + ft(2)) * x - (a + ft(3))) * x * x + ft(1)

    def conv2(x: np.ndarray) -> np.ndarray:  # 1 < |x| < 2
        return ((a * x - ft(5) * a) * x + ft(8) * a) * x - ft(4) * a

    t2 = ft(1) - t
    w = np.stack([conv2(t + ft(1)), conv1(t), conv1(t2), conv2(t2 + ft(1))], 1).astype(ft)
    idxs = np.clip(idx[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return idxs, _round_weights(w, dtype), None


def _area_table(in_size: int, out_size: int) -> _Table:
    """adaptive average pooling: output ``o`` averages ``[floor(o*in/out), ceil((o+1)*in/out))``."""
    o = np.arange(out_size)
    start = (o * in_size) // out_size
    end = -((-(o + 1) * in_size) // out_size)
    k = int(np.max(end - start))
    idx = start[:, None] + np.arange(k)[None, :]
    mask = idx < end[:, None]
    return np.minimum(idx, in_size - 1), mask.astype(np.float64), (end - start)


def _aa_table(in_size: int, out_size: int, align_corners: bool, scale: float | None, bicubic: bool) -> _Table:
    """aten's antialiased (PIL-style) separable filter: the kernel widened by the downscale factor,
    weights normalised to sum 1. bicubic uses a = -0.5 here (PIL's), not -0.75."""
    s = float(_scale(in_size, out_size, align_corners, scale, np.float64))
    interp = 4 if bicubic else 2
    support = interp * 0.5 * s if s >= 1.0 else interp * 0.5
    inv = 1.0 / s if s >= 1.0 else 1.0
    kmax = int(math.ceil(support)) * 2 + 1

    def filt(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        if not bicubic:
            return np.where(x < 1.0, 1.0 - x, 0.0)
        a = -0.5
        return np.where(x < 1.0, ((a + 2) * x - (a + 3)) * x * x + 1,
                        np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))

    idx = np.zeros((out_size, kmax), np.int64)
    w = np.zeros((out_size, kmax), np.float64)
    for i in range(out_size):
        center = s * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xsize = min(max(min(int(center + support + 0.5), in_size) - xmin, 0), kmax)
        j = np.arange(xsize)
        wi = filt((j + xmin - center + 0.5) * inv)
        total = wi.sum()
        if total != 0.0:
            wi = wi / total
        idx[i, :xsize] = xmin + j
        idx[i, xsize:] = min(xmin, in_size - 1)
        w[i, :xsize] = wi
    return idx, w, None


def _resample_axis(x: jax.Array, axis: int, table: _Table) -> jax.Array:
    """One axis of a separable resize: ``sum_k w[o, k] * x[..., idx[o, k], ...]`` in order of k."""
    idx, w, count = table
    shape = [1] * x.ndim
    shape[axis] = idx.shape[0]
    out: jax.Array | None = None
    for k in range(idx.shape[1]):
        term = jnp.take(x, jnp.asarray(idx[:, k], jnp.int32), axis=axis, mode="clip")
        if count is not None:  # area: masked sum (an unused slot must not turn inf into nan)
            if not w[:, k].all():  # type: ignore[index]
                term = jnp.where(jnp.asarray(w[:, k].reshape(shape) > 0), term, jnp.zeros((), x.dtype))  # type: ignore[index]
        elif w is not None:
            term = term * jnp.asarray(w[:, k].reshape(shape), x.dtype)
        out = term if out is None else out + term
    out = jnp.asarray(out)
    if count is not None:
        out = out / jnp.asarray(count.reshape(shape), x.dtype)
    return out


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _output_and_scales(
    input: Any, size: Any, scale_factor: Any, mode: str, recompute_scale_factor: bool | None
) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """torch's size / scale_factor handling: the output size and the scales the kernel sees."""
    dim = input.ndim - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of `size` or `scale_factor` should be defined, got both.")
    if size is not None:
        if isinstance(size, Sequence) and not isinstance(size, str):
            if len(size) != dim:
                raise ValueError(
                    f"`size` {tuple(size)!r} must have one entry per spatial dimension: `input` of shape "
                    f"{shape_str(input.shape)} has {dim} (spatial {spatial}). Provide `input` as "
                    "(N, C, d1, ..., dK) and `size` as (o1, ..., oK)."
                )
            sizes = tuple(size)
        else:
            sizes = (size,) * dim
        if not all(is_int(s) for s in sizes):
            raise TypeError(f"`size` must be an int or a tuple of ints, got {size!r}.")
        if recompute_scale_factor:
            raise ValueError("`recompute_scale_factor` is not meaningful with an explicit `size`.")
        out = tuple(int(s) for s in sizes)
        scales: tuple[float | None, ...] = (None,) * dim
    elif scale_factor is not None:
        if isinstance(scale_factor, Sequence) and not isinstance(scale_factor, str):
            if len(scale_factor) != dim:
                raise ValueError(
                    f"`scale_factor` {tuple(scale_factor)!r} must have one entry per spatial dimension: "
                    f"`input` of shape {shape_str(input.shape)} has {dim} (spatial {spatial})."
                )
            factors = tuple(scale_factor)
        else:
            factors = (scale_factor,) * dim
        if not all(_is_real(f) for f in factors):
            raise TypeError(f"`scale_factor` must be a float or a tuple of floats, got {scale_factor!r}.")
        out = tuple(int(s * float(f)) for s, f in zip(spatial, factors, strict=True))
        recompute = recompute_scale_factor or mode == "area"
        scales = (None,) * dim if recompute else tuple(float(f) for f in factors)
    else:
        raise ValueError("either `size` or `scale_factor` should be defined.")
    if any(s <= 0 for s in spatial) or any(o <= 0 for o in out):
        raise ValueError(
            f"input and output sizes should be greater than 0, got input spatial size {spatial} and "
            f"output size {list(out)}."
        )
    return out, scales


def interpolate(
    input: jax.Array,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> jax.Array:
    r"""Resize the spatial dimensions of ``input``: ``F.interpolate``, torch's exact sampling.

    Along each spatial axis of input size :math:`L_{in}` and output size :math:`L_{out}`
    (``size``, or :math:`\lfloor L_{in} \cdot s \rfloor` for ``scale_factor`` :math:`s`), output
    element :math:`d` reads the input at

    .. math::
        \text{nearest: } \min(\lfloor d\,r \rfloor, L_{in}-1) \qquad
        \text{nearest-exact: } \min(\lfloor (d + \tfrac12)\,r \rfloor, L_{in}-1)

        \text{linear/cubic: } \max((d + \tfrac12)\,r - \tfrac12, 0)
        \quad\text{or, with align\_corners, } d\,\frac{L_{in}-1}{L_{out}-1}

    where the index scale :math:`r` is :math:`1/s` when ``scale_factor`` is given and
    ``recompute_scale_factor`` is not True, else :math:`L_{in}/L_{out}`; so ``scale_factor=s``
    and ``size=floor(L*s)`` can pick different pixels, as in torch. Linear modes interpolate the
    two neighbours; ``bicubic`` is cubic convolution with :math:`A=-0.75` over four neighbours
    (indices clamped at the border, no clamp of the negative source position); ``area`` is
    adaptive average pooling.

    Args:
      input: ``(N, C, W)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)`` floating array.
      size: output spatial size: an int or one int per spatial dimension.
      scale_factor: multiplier(s) for the spatial size; exactly one of ``size``/``scale_factor``.
      mode: ``'nearest'`` (default), ``'nearest-exact'``, ``'linear'`` (3-D input),
        ``'bilinear'`` / ``'bicubic'`` (4-D), ``'trilinear'`` (5-D) or ``'area'``.
      align_corners: for the linear and cubic modes (``None`` = False); an error for the others.
      recompute_scale_factor: True: compute the index scale from the output size instead of
        ``scale_factor`` (with ``scale_factor`` only).
      antialias: for ``bilinear``/``bicubic`` on 4-D input: torch's antialiased (PIL-style)
        filter, widened by the downscale factor (its bicubic kernel uses :math:`A=-0.5`).

    Returns:
      ``(N, C, *size)`` array of ``input``'s dtype. float16/bfloat16 are computed in float32 and
      rounded once, with the weights rounded to the input's dtype first, as torch does.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.interpolate(jnp.arange(4.0).reshape(1, 1, 4), size=6)
      Array([[[0., 0., 1., 2., 2., 3.]]], dtype=float32)
      >>> F.interpolate(jnp.array([[[0.0, 1.0]]]), scale_factor=2, mode="linear")
      Array([[[0.  , 0.25, 0.75, 1.  ]]], dtype=float32)

    Differences from PyTorch:
      Same sampling and dtype rules; nearest modes are gathers and bit-exact, including the
      quirks of torch's CPU kernels (its 2-D nearest kernel copies when a size is unchanged and
      halves when it doubles, whatever ``scale_factor`` says; its vectorised 1-D/3-D
      nearest-exact kernels round the source position once, as a fused multiply-add, which jaxnn
      follows; torch's scalar kernel (``ATEN_CPU_CAPABILITY=default``) rounds twice and picks the
      other neighbour where the position is an exact tie, e.g. 2 -> 41, output 20). Linear,
      cubic and area modes agree to float rounding.
      Gradients are the exact vjp of the output; torch's 1-D/3-D nearest backward kernels use
      other index rules than their forward kernels in those quirky cases (e.g. 2 -> 41
      nearest-exact: output 20 is ``x[1]``, torch sends its gradient to ``x[0]``), so there the
      gradients differ from torch's. torch raises NotImplementedError for an unknown mode
      or a mode/rank mismatch; jaxnn raises ValueError. ``mode='lanczos'`` (torch 2.13,
      CPU only) raises NotImplementedError. Antialiasing is also computed for float16/bfloat16
      (torch's CPU kernel rejects them, its CUDA kernel accepts them).

    Differences from jax.image.resize:
      ``jax.image.resize``'s 'nearest' is torch's 'nearest-exact', its cubic kernel uses
      :math:`A=-0.5`, and it antialiases when downsampling by default; torch does not.
    """
    check_array(input, "input")
    if not isinstance(mode, str):
        raise TypeError(f"`mode` must be a string, got {mode!r}.")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                f"`align_corners` (={align_corners!r}) can only be set with the interpolating modes "
                f"linear | bilinear | bicubic | trilinear, got mode={mode!r}; leave it None."
            )
    else:
        align_corners = bool(align_corners) if align_corners is not None else False
    if input.ndim not in (3, 4, 5):
        raise ValueError(
            f"`input` must be 3-D, 4-D or 5-D (N, C, *spatial) for interpolate, got shape "
            f"{shape_str(input.shape)}."
        )
    out_size, scales = _output_and_scales(input, size, scale_factor, mode, recompute_scale_factor)
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError(
            f"`antialias=True` needs mode 'bilinear' or 'bicubic' and a 4-D input, got mode={mode!r} "
            f"and `input` of shape {shape_str(input.shape)}."
        )
    if mode == "lanczos":
        raise NotImplementedError("mode='lanczos' (torch 2.13, CPU only) is not implemented in jaxnn.")
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"`mode` must be one of {INTERPOLATE_MODES}, got {mode!r}.")
    if mode in _LINEAR_RANK and input.ndim != _LINEAR_RANK[mode]:
        raise ValueError(
            f"mode={mode!r} needs a {_LINEAR_RANK[mode]}-D input, got {input.ndim}-D `input` of shape "
            f"{shape_str(input.shape)}; use 'linear' for 3-D, 'bilinear' for 4-D, 'trilinear' for 5-D."
        )
    if mode == "bicubic" and input.ndim != 4:
        raise ValueError(f"mode='bicubic' needs a 4-D input, got shape {shape_str(input.shape)}.")
    if not jnp.issubdtype(input.dtype, jnp.floating):
        raise TypeError(f"`input` must have a floating dtype for interpolate, got {input.dtype}.")

    x = jnp.asarray(input)
    dtype = x.dtype
    if mode in ("nearest", "nearest-exact"):
        for i, (n_in, n_out, s) in enumerate(zip(x.shape[2:], out_size, scales, strict=True)):
            table = _nearest_table(n_in, n_out, s, mode == "nearest-exact", input.ndim)
            if n_in != n_out or not np.array_equal(table[0][:, 0], np.arange(n_out)):
                x = _resample_axis(x, 2 + i, table)
        return x
    x = x.astype(_opmath(dtype))
    for i in reversed(range(len(out_size))):  # the last (contiguous) axis first, as aten nests them
        n_in, n_out, s = x.shape[2 + i], out_size[i], scales[i]
        if antialias:
            if n_in == n_out:
                continue
            table = _aa_table(n_in, n_out, bool(align_corners), s, mode == "bicubic")
        elif mode == "area":
            if n_in == n_out:
                continue
            table = _area_table(n_in, n_out)
        elif mode == "bicubic":
            table = _cubic_table(n_in, n_out, bool(align_corners), s, dtype)
        else:
            table = _linear_table(n_in, n_out, bool(align_corners), s, dtype)
        x = _resample_axis(x, 2 + i, table)
    return x.astype(dtype)


def upsample(
    input: jax.Array,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> jax.Array:
    """Deprecated alias of :func:`interpolate` (torch's ``F.upsample``, with its UserWarning).

    Examples:
      >>> import warnings, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore")
      ...     F.upsample(jnp.ones((1, 1, 2)), scale_factor=2).shape
      (1, 1, 4)
    """
    warnings.warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(
    input: jax.Array, size: int | Sequence[int] | None = None, scale_factor: float | None = None
) -> jax.Array:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='nearest')`` (torch's
    ``F.upsample_nearest``, with its UserWarning)."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(
    input: jax.Array,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
) -> jax.Array:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)``
    (torch's ``F.upsample_bilinear``, with its UserWarning)."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _check_factor(value: Any, name: str) -> int:
    if not is_int(value):
        raise TypeError(f"`{name}` must be an int, got {value!r}.")
    if value <= 0:
        raise ValueError(f"`{name}` must be positive, got {value}.")
    return int(value)


def pixel_shuffle(input: jax.Array, upscale_factor: int) -> jax.Array:
    r"""Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)``: ``F.pixel_shuffle``.

    ``out[..., c, h r + i, w r + j] = input[..., c r^2 + i r + j, h, w]`` with
    :math:`r` = ``upscale_factor``.

    Args:
      input: array with at least 3 dimensions; ``input.shape[-3]`` divisible by ``r**2``.
      upscale_factor: positive int.

    Returns:
      The rearranged array (bit-exact: a reshape and a transpose).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.pixel_shuffle(jnp.arange(4.0).reshape(1, 4, 1, 1), 2)[0, 0]
      Array([[0., 1.],
             [2., 3.]], dtype=float32)

    Differences from PyTorch:
      None in results. torch raises RuntimeError for bad arguments; jaxnn ValueError/TypeError.
    """
    check_array(input, "input")
    r = _check_factor(upscale_factor, "upscale_factor")
    if input.ndim < 3:
        raise ValueError(
            f"pixel_shuffle needs `input` with at least 3 dimensions, got shape {shape_str(input.shape)}."
        )
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(
            f"pixel_shuffle needs the channel dimension `input.shape[-3]` (={c}) to be divisible by "
            f"`upscale_factor`**2 (={r * r})."
        )
    n = len(lead)
    x = jnp.reshape(input, (*lead, c // (r * r), r, r, h, w))
    x = jnp.transpose(x, (*range(n), n, n + 3, n + 1, n + 4, n + 2))
    return jnp.reshape(x, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: jax.Array, downscale_factor: int) -> jax.Array:
    r"""Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)``: ``F.pixel_unshuffle``, the
    inverse of :func:`pixel_shuffle`.

    Args:
      input: array with at least 3 dimensions; its last two sizes divisible by ``r``.
      downscale_factor: positive int :math:`r`.

    Returns:
      The rearranged array (bit-exact).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.pixel_unshuffle(jnp.arange(4.0).reshape(1, 1, 2, 2), 2).ravel()
      Array([0., 1., 2., 3.], dtype=float32)

    Differences from PyTorch:
      None in results. torch raises RuntimeError for bad arguments; jaxnn ValueError/TypeError.
    """
    check_array(input, "input")
    r = _check_factor(downscale_factor, "downscale_factor")
    if input.ndim < 3:
        raise ValueError(
            f"pixel_unshuffle needs `input` with at least 3 dimensions, got shape {shape_str(input.shape)}."
        )
    *lead, c, h, w = input.shape
    for name, v in (("height `input.shape[-2]`", h), ("width `input.shape[-1]`", w)):
        if v % r:
            raise ValueError(f"pixel_unshuffle needs the {name} (={v}) to be divisible by `downscale_factor` (={r}).")
    n = len(lead)
    x = jnp.reshape(input, (*lead, c, h // r, r, w // r, r))
    x = jnp.transpose(x, (*range(n), n, n + 2, n + 4, n + 1, n + 3))
    return jnp.reshape(x, (*lead, c * r * r, h // r, w // r))
