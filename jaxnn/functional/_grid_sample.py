"""Spatial transformer sampling: ``grid_sample`` and ``affine_grid``.

``grid_sample`` follows torch's CPU kernels formula by formula: for 4-D input the vectorised kernel
(``aten/src/ATen/native/cpu/GridSamplerKernel.cpp``: un-normalisation ``(g + 1) * s - 0.5``,
reflection by the double span with ``trunc``, weights ``1 - (x - floor x)``, corner sums in
nw, ne, sw, se order, bicubic ``A = -0.75`` on taps padded one by one), for 5-D input the scalar
kernel (``GridSampler.cpp``: ``((g + 1) * size - 1) / 2``, ``fmod`` reflection, eight corner
products). Each output point reads its corners with one gather per corner, vectorised over the
batch (``vmap``) and over all output points: no Python loop over pixels.

Gradients are the vjp of that forward, which is what torch's backward kernels compute: the
corner weights' derivatives for the grid, a scatter-add for the input; the clip of
``border``/``reflection`` has zero gradient at and beyond the borders (``jnp.where``, not
``jnp.clip`` whose ties would give 1/2), and ``nearest`` gives the grid a zero gradient.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_array, is_int, shape_str

GRID_SAMPLE_MODES = ("bilinear", "nearest", "bicubic")
GRID_SAMPLE_PADDING_MODES = ("zeros", "border", "reflection")
_ALIGN_WARNING = (
    "Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. Please "
    "specify align_corners=True if the old behavior is desired. See the documentation of grid_sample for "
    "details."
)
_A = -0.75  # torch's cubic convolution constant (UpSample.h, GridSamplerKernel.cpp)


def _compute_dtype(dtype: Any) -> Any:
    """float64 stays float64; float32, float16 and bfloat16 are computed in float32."""
    return jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32


def _clip(c: jax.Array, size: int) -> jax.Array:
    """Clip to ``[0, size - 1]``; NaN -> 0 (torch's vectorised clamp order). The gradient is 0 at and
    beyond the borders, as torch's (its backward counts the borders as out of bounds)."""
    hi = jnp.asarray(size - 1, c.dtype)
    return jnp.where(c > 0, jnp.where(c < hi, c, hi), jnp.zeros((), c.dtype))


def _clip_scalar(c: jax.Array, size: int) -> jax.Array:
    """The scalar (5-D) kernel's clip, ``std::min(size - 1, std::max(c, 0))``: NaN (a NaN grid, or an
    infinite one reflected) -> ``size - 1``, unlike the vectorised clamp. Gradient as :func:`_clip`."""
    hi = jnp.asarray(size - 1, c.dtype)
    m = jnp.where((c > 0) | jnp.isnan(c), c, jnp.zeros((), c.dtype))
    return jnp.where(m < hi, m, hi)


class _Axis:
    """Coordinate rules along one spatial axis of input size ``size`` (torch's ComputeLocation)."""

    def __init__(self, size: int, align_corners: bool, padding_mode: str, vectorised: bool, dtype: Any):
        self.size, self.align, self.padding, self.vec = size, align_corners, padding_mode, vectorised
        self.ft = np.dtype(dtype).type

    def unnormalize(self, g: jax.Array) -> jax.Array:
        ft, n = self.ft, self.size
        if self.vec:  # GridSamplerKernel.cpp
            if self.align:
                return (g + ft(1)) * (ft(n - 1) / ft(2))
            return (g + ft(1)) * (ft(n) / ft(2)) - ft(0.5)
        if self.align:  # GridSampler.h grid_sampler_unnormalize
            return ((g + ft(1)) / ft(2)) * ft(n - 1)
        return ((g + ft(1)) * ft(n) - ft(1)) / ft(2)

    def reflect(self, c: jax.Array) -> jax.Array:
        ft, n = self.ft, self.size
        if self.vec:
            if self.align and n <= 1:
                return jnp.zeros_like(c)
            low = ft(0) if self.align else ft(-0.5)
            twice_span = ft(n - 1) * ft(2) if self.align else ft(n) * ft(2)
            a = jnp.abs(c - low) if not self.align else jnp.abs(c)
            extra = a - jnp.trunc(a / twice_span) * twice_span
            out = jnp.minimum(extra, twice_span - extra)
            return out if self.align else out + low
        twice_low, twice_high = (0, 2 * (n - 1)) if self.align else (-1, 2 * n - 1)
        if twice_low == twice_high:
            return jnp.zeros_like(c)
        lo = ft(twice_low) / ft(2)
        span = ft(twice_high - twice_low) / ft(2)
        a = jnp.abs(c - lo)
        extra = jnp.fmod(a, span)
        flips = jnp.floor(a / span)
        odd = jnp.fmod(flips, ft(2)) != 0
        return jnp.where(odd, span - extra + lo, extra + lo)

    def pad(self, c: jax.Array) -> jax.Array:
        """torch's compute_coordinates: border clips, reflection reflects then clips."""
        clip = _clip if self.vec else _clip_scalar
        if self.padding == "border":
            return clip(c, self.size)
        if self.padding == "reflection":
            return clip(self.reflect(c), self.size)
        return c

    def source(self, g: jax.Array) -> jax.Array:
        return self.pad(self.unnormalize(g))


def _axis_index(c: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """An integer-valued float coordinate -> (clipped int32 index, in-bounds mask). Bounds are
    tested on the floats, so huge or NaN coordinates are simply out of bounds (torch's int
    conversion sends them out of bounds too)."""
    ok = (c > -1) & (c < size)
    return jnp.clip(jnp.where(ok, c, 0), 0, size - 1).astype(jnp.int32), ok


def _read_all(x: jax.Array, points: Sequence[Sequence[tuple[jax.Array, jax.Array]]],
              sizes: Sequence[int]) -> list[jax.Array]:
    """Read ``x`` (N, C, S) at K sets of points in one gather per batch element (one scatter-add in
    the backward pass). Each set gives one ``(index, mask)`` per axis, outermost first, each (N, P);
    returns K arrays (N, C, P), zero where a point is out of bounds."""
    flats, masks = [], []
    for axes in points:
        flat, mask = None, None
        for (i, ok), n in zip(axes, sizes, strict=True):
            flat = i if flat is None else flat * n + i
            mask = ok if mask is None else mask & ok
        flats.append(flat)
        masks.append(mask)
    k, p = len(flats), flats[0].shape[1]
    index = jnp.concatenate(flats, axis=1)  # (N, K*P)
    ok = jnp.concatenate(masks, axis=1)
    v = jax.vmap(lambda xn, idx: jnp.take(xn, idx, axis=1, mode="clip"))(x, index)  # (N, C, K*P)
    v = jnp.where(ok[:, None, :], v, jnp.zeros((), v.dtype))
    return [v[:, :, j * p : (j + 1) * p] for j in range(k)]


def _bilinear_2d(x: jax.Array, gx: jax.Array, gy: jax.Array, ax_w: _Axis, ax_h: _Axis) -> jax.Array:
    """GridSamplerKernel.cpp: ``w = x - floor(x)``, ``e = 1 - w`` (same for y), corners summed in
    nw, ne, sw, se order. Out-of-bounds corners read 0 (border/reflection never leave [0, size-1]
    but the far corner may step past the last row/column, where torch masks it too)."""
    h, w = ax_h.size, ax_w.size
    ft = ax_w.ft
    cx, cy = ax_w.source(gx), ax_h.source(gy)
    x_w, y_n = jnp.floor(cx), jnp.floor(cy)
    we = cx - x_w
    ea = ft(1) - we
    no = cy - y_n
    so = ft(1) - no
    xw, xe = _axis_index(x_w, w), _axis_index(x_w + ft(1), w)
    yn, ys = _axis_index(y_n, h), _axis_index(y_n + ft(1), h)
    v_nw, v_ne, v_sw, v_se = _read_all(x, [(yn, xw), (yn, xe), (ys, xw), (ys, xe)], (h, w))

    def wt(a: jax.Array, b: jax.Array) -> jax.Array:
        return (a * b)[:, None, :]

    out = v_nw * wt(so, ea) + v_ne * wt(so, we)
    out = out + v_sw * wt(no, ea)
    return out + v_se * wt(no, we)


def _nearest(x: jax.Array, coords: Sequence[jax.Array], sizes: Sequence[int]) -> jax.Array:
    """``coords`` outermost first; rounded half to even (``nearbyint``); no gradient to the grid."""
    idx = [_axis_index(jax.lax.stop_gradient(jnp.round(c)), n) for c, n in zip(coords, sizes, strict=True)]
    return _read_all(x, [idx], sizes)[0]


def _cubic_coefficients(t: jax.Array, ft: Any) -> list[jax.Array]:
    """torch's cubic convolution weights of the taps at -1, 0, 1, 2 for fraction ``t`` (A = -0.75)."""
    a = ft(_A)
    x0 = t + ft(1)
    c0 = ((a * x0 - ft(5) * a) * x0 + ft(8) * a) * x0 - ft(4) * a
    c1 = ((a + ft(2)) * t - (a + ft(3))) * t * t + ft(1)
    x2 = ft(1) - t
    c2 = ((a + ft(2)) * x2 - (a + ft(3))) * x2 * x2 + ft(1)
    x3 = ft(2) - t
    c3 = ((a * x3 - ft(5) * a) * x3 + ft(8) * a) * x3 - ft(4) * a
    return [c0, c1, c2, c3]


def _bicubic_2d(x: jax.Array, gx: jax.Array, gy: jax.Array, ax_w: _Axis, ax_h: _Axis) -> jax.Array:
    """GridSamplerKernel.cpp: the un-normalised (unpadded) position's floor and fraction; each of
    the 4x4 taps is padded on its own (border: clipped, reflection: reflected then clipped, zeros:
    read as 0 outside) and truncated to int; rows of 4 are interpolated along x first, then y."""
    h, w = ax_h.size, ax_w.size
    ft = ax_w.ft
    cx, cy = ax_w.unnormalize(gx), ax_h.unnormalize(gy)
    ix, iy = jnp.floor(cx), jnp.floor(cy)
    coeff_x = _cubic_coefficients(cx - ix, ft)
    coeff_y = _cubic_coefficients(cy - iy, ft)
    ix, iy = jax.lax.stop_gradient(ix), jax.lax.stop_gradient(iy)
    xs = [_axis_index(jnp.trunc(ax_w.pad(ix + ft(d))), w) for d in range(-1, 3)]
    ys = [_axis_index(jnp.trunc(ax_h.pad(iy + ft(d))), h) for d in range(-1, 3)]
    vals = _read_all(x, [(ys[i], xs[j]) for i in range(4) for j in range(4)], (h, w))
    out = None
    for i in range(4):
        r = None
        for j in range(4):
            term = coeff_x[j][:, None, :] * vals[4 * i + j]
            r = term if r is None else r + term
        assert r is not None
        term = coeff_y[i][:, None, :] * r
        out = term if out is None else out + term
    assert out is not None
    return out


def _trilinear_3d(x: jax.Array, g: Sequence[jax.Array], axes: Sequence[_Axis]) -> jax.Array:
    """torch's scalar 3-D kernel: ``g`` and ``axes`` ordered (x=W, y=H, z=D); weights are products
    of the distances to the opposite corner, ``(x1 - x)(y1 - y)(z1 - z)``, summed in torch's
    order (tnw, tne, tsw, tse, bnw, bne, bsw, bse); as torch, only in-bounds corners are added (an
    infinite coordinate's NaN weights do not reach the sum)."""
    ft = axes[0].ft
    cx, cy, cz = (a.source(v) for a, v in zip(axes, g, strict=True))
    x0, y0, z0 = jnp.floor(cx), jnp.floor(cy), jnp.floor(cz)
    x1, y1, z1 = x0 + ft(1), y0 + ft(1), z0 + ft(1)
    sizes = (axes[2].size, axes[1].size, axes[0].size)
    wx, wy, wz = (x1 - cx, cx - x0), (y1 - cy, cy - y0), (z1 - cz, cz - z0)
    ix = (_axis_index(x0, sizes[2]), _axis_index(x1, sizes[2]))
    iy = (_axis_index(y0, sizes[1]), _axis_index(y1, sizes[1]))
    iz = (_axis_index(z0, sizes[0]), _axis_index(z1, sizes[0]))
    order = [(dz, dy, dx) for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)]
    vals = _read_all(x, [(iz[dz], iy[dy], ix[dx]) for dz, dy, dx in order], sizes)
    out = None
    for v, (dz, dy, dx) in zip(vals, order, strict=True):
        ok = (iz[dz][1] & iy[dy][1] & ix[dx][1])[:, None, :]
        term = jnp.where(ok, v * (wx[dx] * wy[dy] * wz[dz])[:, None, :], jnp.zeros((), v.dtype))
        out = term if out is None else out + term
    assert out is not None
    return out


def _check_align_corners(align_corners: Any) -> bool:
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=3)
        return False
    if not isinstance(align_corners, bool | np.bool_):
        raise TypeError(f"`align_corners` must be a bool or None, got {align_corners!r}.")
    return bool(align_corners)


def grid_sample(
    input: jax.Array,
    grid: jax.Array,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> jax.Array:
    r"""Sample ``input`` at the normalised locations in ``grid``: ``F.grid_sample``, torch's rules.

    A grid value :math:`g \in [-1, 1]` along an axis of input size :math:`L` is un-normalised to the
    pixel coordinate

    .. math::
        \text{align\_corners: } (g + 1)\,\tfrac{L - 1}{2} \qquad
        \text{otherwise: } (g + 1)\,\tfrac{L}{2} - \tfrac12

    then ``padding_mode`` maps it: ``'zeros'`` leaves it (samples outside read 0), ``'border'``
    clips it to :math:`[0, L-1]`, ``'reflection'`` reflects it about the borders (pixel centres
    with align_corners, pixel edges without) until inside, then clips. ``'bilinear'`` weighs the
    2 (4-D: 4, 5-D: 8) neighbours by their distances; ``'nearest'`` reads the pixel at the
    coordinate rounded half to even (``nearbyint``); ``'bicubic'`` (4-D only) is cubic convolution
    with :math:`A = -0.75` over 4x4 neighbours, each tap padded by ``padding_mode``.

    Args:
      input: ``(N, C, H, W)`` or ``(N, C, D, H, W)`` floating array.
      grid: ``(N, H_out, W_out, 2)`` or ``(N, D_out, H_out, W_out, 3)`` of the same dtype; the last
        axis is ``(x, y[, z])``: width first.
      mode: ``'bilinear'`` (default; trilinear for 5-D), ``'nearest'`` or ``'bicubic'`` (4-D).
      padding_mode: ``'zeros'`` (default), ``'border'`` or ``'reflection'``.
      align_corners: default None = False with torch's UserWarning.

    Returns:
      ``(N, C, H_out, W_out)`` or ``(N, C, D_out, H_out, W_out)`` in ``input``'s dtype.
      Gradients flow to ``input`` and ``grid`` as torch's backward computes them (``nearest``: 0
      for the grid; ``border``/``reflection``: 0 where the coordinate was clipped).

    Raises:
      ValueError: unknown mode or padding mode, ranks other than 4/5 or unequal, batch sizes that
        differ, ``grid.shape[-1]`` not the number of spatial dims, an empty spatial dim,
        ``bicubic`` with 5-D input.
      TypeError: non-floating or different dtypes, a non-bool ``align_corners``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.arange(4.0).reshape(1, 1, 2, 2)
      >>> g = jnp.array([[[[0.0, 0.0], [-1.0, -1.0]]]])
      >>> F.grid_sample(x, g, align_corners=True)
      Array([[[[1.5, 0. ]]]], dtype=float32)

    Differences from PyTorch:
      float32/float64 agree to rounding (nearest: the same pixels, bit-exact). float16/bfloat16
      are computed in float32 and rounded once; torch's CPU kernels round every intermediate
      (coordinates, weights, products) to the half type, so they differ from the exact result by
      more than jaxnn does and can even pick another pixel for ``nearest`` (tested: jaxnn's error
      against float32 never exceeds torch's own). Copying that op sequence would also copy a
      defect: torch's 4-D half kernel computes gather offsets in 16-bit integers, so beyond
      32767 elements per channel it reads wrong pixels (300x300 float16, nearest at (0.9, 0.9)
      with align_corners: 19.95 where the pixel is 85.48); jaxnn reads the right ones.
      NaN in ``grid`` (or an infinite coordinate that reflection turns into NaN): torch's 4-D and
      5-D kernels disagree (and its documentation says -1); jaxnn follows each kernel (4-D: the
      vectorised clamp sends NaN to 0; 5-D: ``std::min``/``std::max`` send it to ``size - 1``,
      and out-of-bounds corners are skipped, so ``zeros`` gives 0, not NaN). torch's backward
      at such points is not consistent with its forward; jaxnn's is the forward's vjp. torch
      raises RuntimeError for shape errors; jaxnn ValueError/TypeError, before tracing.

    References:
      Jaderberg et al., "Spatial Transformer Networks", 2015.
    """
    check_array(input, "input")
    check_array(grid, "grid")
    if mode not in GRID_SAMPLE_MODES:
        raise ValueError(f"`mode` must be one of {GRID_SAMPLE_MODES} for grid_sample, got {mode!r}.")
    if padding_mode not in GRID_SAMPLE_PADDING_MODES:
        raise ValueError(
            f"`padding_mode` must be one of {GRID_SAMPLE_PADDING_MODES} for grid_sample, got {padding_mode!r}."
        )
    align = _check_align_corners(align_corners)
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        want = "4-D input with a 4-D grid or 5-D input with a 5-D grid" if input.ndim not in (4, 5) else (
            f"a {input.ndim}-D grid for {input.ndim}-D input")
        raise ValueError(
            f"grid_sample needs {want}, got `input` of shape {shape_str(input.shape)} and `grid` of shape "
            f"{shape_str(grid.shape)}."
        )
    nd = input.ndim - 2
    if grid.shape[0] != input.shape[0]:
        raise ValueError(
            f"`grid` and `input` must have the same batch size, got `input` of shape {shape_str(input.shape)} "
            f"and `grid` of shape {shape_str(grid.shape)}."
        )
    if grid.shape[-1] != nd:
        raise ValueError(
            f"`grid.shape[-1]` must be {nd} (x, y{', z' if nd == 3 else ''}) for {input.ndim}-D input, got "
            f"`grid` of shape {shape_str(grid.shape)}."
        )
    if any(s == 0 for s in input.shape[2:]):
        raise ValueError(f"`input` must have non-empty spatial dimensions, got shape {shape_str(input.shape)}.")
    if mode == "bicubic" and nd == 3:
        raise ValueError("mode='bicubic' supports only 4-D input (torch's rule); use 'bilinear' for 5-D.")
    for name, a in (("input", input), ("grid", grid)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"`{name}` must have a floating dtype for grid_sample, got {a.dtype}.")
    if grid.dtype != input.dtype:
        raise TypeError(
            f"`grid` dtype ({grid.dtype}) must match `input` dtype ({input.dtype}); cast one of them, "
            "e.g. `grid.astype(input.dtype)`."
        )

    dtype = jax.dtypes.canonicalize_dtype(input.dtype)  # NumPy float64 without x64 -> float32, silently
    ct = _compute_dtype(dtype)
    n, c = input.shape[:2]
    sizes = tuple(int(s) for s in input.shape[2:])  # (H, W) or (D, H, W)
    out_shape = tuple(int(s) for s in grid.shape[1:-1])
    x = jnp.asarray(input).astype(ct).reshape(n, c, int(np.prod(sizes)))
    g = jnp.asarray(grid).astype(ct).reshape(n, int(np.prod(out_shape)), nd)
    coords = [g[..., k] for k in range(nd)]  # x (W), y (H)[, z (D)]
    axes = [_Axis(s, align, padding_mode, nd == 2, ct) for s in reversed(sizes)]  # W, H[, D]
    if mode == "nearest":
        src = [a.source(v) for a, v in zip(axes, coords, strict=True)]
        out = _nearest(x, src[::-1], sizes)
    elif nd == 2 and mode == "bilinear":
        out = _bilinear_2d(x, coords[0], coords[1], axes[0], axes[1])
    elif mode == "bicubic":
        out = _bicubic_2d(x, coords[0], coords[1], axes[0], axes[1])
    else:
        out = _trilinear_3d(x, coords, axes)
    return out.reshape(n, c, *out_shape).astype(dtype)


def _linspace(steps: int, align_corners: bool, ft: Any) -> np.ndarray:
    """torch's ``linspace_from_neg_one``: ``linspace(-1, 1)`` (from the start for the first half,
    from the end for the rest, each a fused multiply-add of the rounded step: one rounding, as
    torch's compiled kernel; float32 is evaluated exactly in float64 and rounded once), times
    ``(steps - 1) / steps`` (two roundings) without align_corners. float64 has no wider type, so
    its fused multiply-add is evaluated in exact rationals and rounded once."""
    if steps <= 1:
        return np.zeros((max(steps, 1),), ft)
    step = (ft(1) - ft(-1)) / ft(steps - 1)
    i = np.arange(steps)
    if ft is np.float64:
        q, half = Fraction(float(step)), steps // 2
        r = np.array([float(-1 + q * k) if k < half else float(1 - q * (steps - 1 - k)) for k in range(steps)], ft)
    else:
        wide = np.float64(step)
        r = np.where(i < steps // 2, -1.0 + wide * i, 1.0 - wide * (steps - 1 - i)).astype(ft)
    if not align_corners:
        r = ((r * ft(steps - 1)).astype(ft) / ft(steps)).astype(ft)
    return r


def affine_grid(theta: jax.Array, size: Sequence[int], align_corners: bool | None = None) -> jax.Array:
    r"""Sampling grid of the affine maps ``theta``: ``F.affine_grid``, for :func:`grid_sample`.

    For output pixel :math:`(h, w)` (and :math:`d`), with :math:`(x_w, y_h[, z_d])` the normalised
    pixel centres (``linspace(-1, 1, L)``, scaled by :math:`(L-1)/L` unless ``align_corners``;
    0 for a size-1 axis),

    .. math::
        \text{grid}[n, h, w] = \theta_n \, (x_w, y_h, 1)^T
        \qquad \text{(3-D: } \theta_n (x_w, y_h, z_d, 1)^T \text{)}

    Args:
      theta: ``(N, 2, 3)`` (2-D) or ``(N, 3, 4)`` (3-D) floating array.
      size: the target ``(N, C, H, W)`` or ``(N, C, D, H, W)`` (C is not used).
      align_corners: default None = False with torch's UserWarning.

    Returns:
      ``(N, H, W, 2)`` or ``(N, D, H, W, 3)`` in ``theta``'s dtype, last axis ``(x, y[, z])``.
      The gradient flows to ``theta``.

    Raises:
      ValueError: ``size`` of length other than 4/5, ``theta`` not of the matching shape or a batch
        other than ``size[0]``, a non-positive size (torch skips that check, with a warning, when
        ``align_corners`` and a spatial size is 1; so does jaxnn).
      TypeError: an integer ``theta``, non-int sizes, a non-bool ``align_corners``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.affine_grid(jnp.eye(2, 3)[None], (1, 1, 1, 2), align_corners=False)[0, 0]
      Array([[-0.5,  0. ],
             [ 0.5,  0. ]], dtype=float32)

    Differences from PyTorch:
      The base grid uses linspace's scalar formula (torch's vectorised linspace can differ in the
      last bit past the midpoint, depending on the CPU's vector width); the products are summed in
      a fixed order instead of by ``bmm``: float32 agrees to rounding. float16/bfloat16: computed in
      float32 and rounded once (torch rounds the base grid and the products to the half type).
      torch raises NotImplementedError for a ``size`` of bad length and RuntimeError for a batch
      mismatch; jaxnn ValueError.
    """
    check_array(theta, "theta")
    align = _check_align_corners(align_corners)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        raise TypeError(f"`theta` must have a floating point dtype, got {theta.dtype}.")
    if not isinstance(size, Sequence) or isinstance(size, str) or not all(is_int(s) for s in size):
        raise TypeError(f"`size` must be a sequence of ints (N, C, H, W) or (N, C, D, H, W), got {size!r}.")
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise ValueError(
            f"affine_grid supports only 4-D and 5-D sizes, for 2-D and 3-D affine transforms, got size {size}."
        )
    nd = len(size) - 2
    if theta.ndim != 3 or theta.shape[-2:] != (nd, nd + 1):
        raise ValueError(
            f"`theta` must be a batch of {nd}-D affine matrices of shape (N, {nd}, {nd + 1}) for size {size}, "
            f"got shape {shape_str(theta.shape)}."
        )
    spatial = size[2:]
    if align and min(spatial) == 1:
        warnings.warn(
            "Since version 1.3.0, affine_grid behavior has changed for unit-size grids when align_corners=True. "
            "This is not an intended use case of affine_grid. See the documentation of affine_grid for details.",
            UserWarning, stacklevel=2,
        )
    elif min(size) <= 0:
        raise ValueError(f"`size` must be positive (non-zero), got {size}.")
    if theta.shape[0] != size[0]:
        raise ValueError(f"`theta` has batch size {theta.shape[0]}, but `size[0]` is {size[0]}; they must match.")

    dtype = jax.dtypes.canonicalize_dtype(theta.dtype)  # NumPy float64 without x64 -> float32, silently
    ct = _compute_dtype(dtype)
    ft = np.dtype(ct).type
    # base coordinates (x, y[, z]) over the output grid, x varying fastest, in theta's dtype
    lins = [_linspace(s, align, ft) for s in reversed(spatial)]  # W, H[, D]
    lins = [np.asarray(v.astype(jnp.dtype(dtype)).astype(ct)) for v in lins]
    mesh = np.meshgrid(*reversed(lins), indexing="ij")  # each of shape spatial
    base = [jnp.asarray(m.reshape(-1)) for m in reversed(mesh)]  # x, y[, z]: (P,)
    t = jnp.asarray(theta).astype(ct)
    cols = []
    for j in range(nd):
        acc = base[0][None, :] * t[:, j, 0:1]
        for k in range(1, nd):
            acc = acc + base[k][None, :] * t[:, j, k : k + 1]
        cols.append(acc + t[:, j, nd : nd + 1])
    grid = jnp.stack(cols, axis=-1)  # (N, P, nd)
    return grid.reshape(size[0], *spatial, nd).astype(dtype)
