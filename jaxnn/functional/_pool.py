"""Pooling: ``avg_pool``, ``max_pool``, ``adaptive_avg_pool``, ``adaptive_max_pool`` and ``lp_pool``
in 1, 2 and 3 spatial dimensions, with torch's output sizes, windows, indices and errors.

Every window is known from the static shapes alone, so the index tables are built here in NumPy and
the array work is slices, gathers and ``lax.reduce_window``:

- average pooling sums with ``lax.reduce_window`` over a zero-padded input in the accumulation type
  torch's CPU kernels use (float32 for float16/bfloat16/float32, float64 for float64) and divides by
  torch's per-window divisor, rounding to the input's dtype once;
- max pooling scans the window's taps in torch's order (row-major over the kernel) keeping the
  first maximum, with NaN winning (``val > max or isnan(val)``), which gives torch's flat per-plane
  index; the output is then gathered at that index, so the gradient goes where torch sends it.
  Windows of more than ``_SCAN_MAX_TAPS`` taps (global pooling) gather their taps into one axis
  and pick the same tap there (an unrolled scan compiles too slowly). Where it reads fewer taps
  (stride-1 windows such as SPP's 5/9/13), ``max_pool`` scans one axis at a time (the same pick),
  doubling the window along a line, and its gradient is torch's scatter-add at the index.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import check_array, is_int, shape_str

# (taps, valid): the input position of each tap j of each output o along one axis, shape (out, K),
# and whether it lies inside the input.
_Taps = tuple[np.ndarray, np.ndarray]


def _index_dtype() -> Any:
    """torch's indices are int64; int32 here unless ``jax_enable_x64`` is on."""
    return jnp.int64 if jax.config.read("jax_enable_x64") else jnp.int32


def _opmath(dtype: Any) -> Any:
    return jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32


# --- argument checks --------------------------------------------------------------------------------


def _ints(value: Any, n: int, name: str, fn: str) -> tuple[int, ...]:
    """An int or a sequence of 1 or ``n`` ints (torch's IntArrayRef expansion)."""
    if is_int(value):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str) and all(is_int(v) for v in value):
        items = tuple(int(v) for v in value)
        if len(items) == 1:
            return items * n
        if len(items) == n:
            return items
        raise ValueError(
            f"{fn}: `{name}` must be a single int or a tuple of {n} ints, got {value!r} of length {len(items)}."
        )
    raise TypeError(f"{fn}: `{name}` must be an int or a tuple of {n} ints, got {value!r}.")


def _check_floating(input: Any, fn: str) -> None:
    check_array(input, "input")
    if not jnp.issubdtype(input.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: `input` must have a floating dtype, got {input.dtype} (torch's CPU max_pool2d/3d "
            "and avg_pool also take integer tensors; cast to a float dtype)."
        )


def _check_rank(input: Any, n: int, fn: str, *, nonempty_from: int | None = None) -> None:
    """``(C, *spatial)`` or ``(N, C, *spatial)``; every non-batch dim non-empty (``nonempty_from``:
    the first dim that must be non-empty, whatever the layout: torch's 1-D/2-D adaptive average
    pooling checks only the spatial dims, its adaptive max pooling and 3-D adaptive average
    pooling every dim from 1, so an unbatched ``(0, *spatial)`` is accepted)."""
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(
            f"{fn}: `input` must be {n + 1}-D (C, *spatial) or {n + 2}-D (N, C, *spatial) with {n} spatial "
            f"dimension{'s' if n > 1 else ''}, got shape {shape_str(input.shape)}."
        )
    start = 1 if input.ndim == n + 2 else 0
    if nonempty_from is not None:
        start = nonempty_from
    if any(s == 0 for s in input.shape[start:]):
        raise ValueError(
            f"{fn}: `input` must have non-zero sizes in its non-batch dimensions (a batch of 0 is "
            f"allowed), got shape {shape_str(input.shape)}."
        )


def _pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """aten's ``pooling_output_shape``: with ``ceil_mode`` the last window must start inside the
    input or the left padding."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _window_args(
    input: Any, n: int, fn: str, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any
) -> tuple[tuple[int, ...], ...]:
    k = _ints(kernel_size, n, "kernel_size", fn)
    if stride is None or (isinstance(stride, Sequence) and not isinstance(stride, str) and len(stride) == 0):
        s = k
    else:
        s = _ints(stride, n, "stride", fn)
    p = _ints(padding, n, "padding", fn)
    d = _ints(dilation, n, "dilation", fn)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{fn}: `ceil_mode` must be a bool, got {ceil_mode!r}.")
    if any(v <= 0 for v in k):
        raise ValueError(f"{fn}: `kernel_size` must be greater than zero, got {kernel_size!r}.")
    if any(v <= 0 for v in s):
        raise ValueError(f"{fn}: `stride` must be greater than zero, got {stride!r}.")
    if any(v <= 0 for v in d):
        raise ValueError(f"{fn}: `dilation` must be greater than zero, got {dilation!r}.")
    if any(v < 0 for v in p):
        raise ValueError(f"{fn}: `padding` must be non-negative, got {padding!r}.")
    if any(pv > kv // 2 for pv, kv in zip(p, k, strict=True)):
        raise ValueError(
            f"{fn}: `padding` (={padding!r}) must be at most half of `kernel_size` (={kernel_size!r}) "
            "in every dimension (torch's rule: padding <= kernel_size // 2)."
        )
    spatial = tuple(int(v) for v in input.shape[input.ndim - n :])
    out = tuple(_pool_out_size(*a, bool(ceil_mode)) for a in zip(spatial, k, s, p, d, strict=True))
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{fn}: the output size is too small: input spatial size {list(spatial)} with kernel_size={k}, "
            f"stride={s}, padding={p}, dilation={d}, ceil_mode={bool(ceil_mode)} gives {list(out)}."
        )
    return k, s, p, d, spatial, out


def _adaptive_size(input: Any, output_size: Any, n: int, fn: str, allow_none: bool) -> tuple[int, ...]:
    spatial = tuple(int(v) for v in input.shape[input.ndim - n :])
    if is_int(output_size):
        sizes: tuple[Any, ...] = (int(output_size),) * n
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str):
        sizes = tuple(output_size)
        if len(sizes) != n:
            raise ValueError(
                f"{fn}: `output_size` must be an int or a tuple of {n} entries, got {output_size!r}."
            )
    else:
        raise TypeError(f"{fn}: `output_size` must be an int or a tuple of {n} ints, got {output_size!r}.")
    out = []
    for v, s in zip(sizes, spatial, strict=True):
        if v is None and allow_none:
            out.append(s)
        elif v is not None and is_int(v):
            out.append(int(v))
        else:
            what = "ints or None" if allow_none else "ints"
            raise TypeError(f"{fn}: `output_size` entries must be {what}, got {output_size!r}.")
    if any(o < 0 for o in out):
        raise ValueError(f"{fn}: `output_size` entries must be >= 0, got {output_size!r}.")
    return tuple(out)


# --- shared machinery ------------------------------------------------------------------------------


def _as_batch(input: Any, n: int) -> tuple[jax.Array, tuple[int, ...]]:
    """Flatten the leading (N, C) or (C,) dims into one: ``(B, *spatial)``."""
    x = jnp.asarray(input)
    lead = x.shape[: x.ndim - n]
    return x.reshape((math.prod(lead), *x.shape[x.ndim - n :])), lead


def _strided_taps(size: int, out: int, k: int, s: int, p: int, d: int) -> _Taps:
    pos = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return pos, (pos >= 0) & (pos < size)


def _adaptive_taps(size: int, out: int) -> _Taps:
    """torch's adaptive windows: ``[floor(o*size/out), ceil((o+1)*size/out))``."""
    o = np.arange(out)
    start = (o * size) // out
    end = -((-(o + 1) * size) // out)
    k = int(np.max(end - start)) if out else 1
    pos = start[:, None] + np.arange(k)[None, :]
    return pos, pos < end[:, None]


def _outer(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Broadcast per-axis 1-D arrays to the output grid (axis a along dim a)."""
    n = len(arrays)
    return [a.reshape([-1 if i == j else 1 for j in range(n)]) for i, a in enumerate(arrays)]


def _taps_along(v: jax.Array, positions: np.ndarray, axis: int) -> jax.Array:
    """``v`` at the (in-range) ``positions`` along ``axis``: a strided slice when they are evenly
    spaced and increasing, else a gather."""
    steps = np.diff(positions)
    if positions.size and (positions.size == 1 or (steps[0] > 0 and np.all(steps == steps[0]))):
        step = int(steps[0]) if positions.size > 1 else 1
        start = int(positions[0])
        return lax.slice_in_dim(v, start, start + step * (positions.size - 1) + 1, step, axis)
    return jnp.take(v, jnp.asarray(positions, jnp.int32), axis=axis)


#: Windows with more taps than this are reduced over gathered patches (:func:`_max_over_patches`)
#: instead of the unrolled scan, whose chain of selects (and its transpose) XLA compiles in time
#: growing faster than the tap count: ``adaptive_max_pool2d(x, 1)`` on 8 x 8 / 16 x 16 planes took
#: 41 s / over 9 min to compile its gradient. Only where the patches stay within 8 times the input
#: (adaptive windows, strides near the kernel size): a large stride-1 kernel still takes the scan.
_SCAN_MAX_TAPS = 27


def _max_over_patches(x: jax.Array, taps: Sequence[_Taps], spatial: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """:func:`_max_with_indices` for large windows: gather every window's taps into a trailing axis
    (row-major tap order) and pick torch's tap there: the last NaN if the window has one, else the
    first maximum (the first in-input tap for an all ``-inf`` window). The value is gathered at that
    tap, so the gradient goes there only."""
    n = len(spatial)
    out_shape = tuple(t[0].shape[0] for t in taps)
    ks = tuple(t[0].shape[1] for t in taps)
    plane_strides = [math.prod(spatial[a + 1 :]) for a in range(n)]
    v = x
    for a, ((pos, _), size) in enumerate(zip(taps, spatial, strict=True)):  # axis 1 + 2a: (out_a, K_a)
        flat_pos = np.clip(pos, 0, size - 1).reshape(-1)
        v = jnp.take(v, jnp.asarray(flat_pos, jnp.int32), axis=1 + 2 * a)
        v = v.reshape(v.shape[: 1 + 2 * a] + pos.shape + v.shape[2 + 2 * a :])
    v = v.transpose((0, *range(1, 2 * n, 2), *range(2, 2 * n + 1, 2))).reshape((x.shape[0], *out_shape, -1))
    # static per-window tables, (*out, K_total): in-input, flat per-plane index
    grid = np.ix_(*[np.arange(o) for o in out_shape], *[np.arange(k) for k in ks])
    o_idx, k_idx = grid[:n], grid[n:]
    valid = np.ones(out_shape + ks, bool)
    flat = np.zeros(out_shape + ks, np.int64)
    for a, (pos, ok) in enumerate(taps):
        valid = valid & ok[o_idx[a], k_idx[a]]
        flat = flat + pos[o_idx[a], k_idx[a]] * plane_strides[a]
    valid = valid.reshape(out_shape + (-1,))
    flat = flat.reshape(out_shape + (-1,))
    none: np.ndarray = ~np.any(valid, axis=-1)  # no tap in the input: -inf at the first non-negative tap
    first = []
    for pos, _ in taps:
        first.append(pos[np.arange(pos.shape[0]), np.argmax(pos >= 0, axis=1)])
    init = np.broadcast_to(sum(g * st for g, st in zip(_outer(first), plane_strides, strict=True)), out_shape)
    valid_j = jnp.asarray(valid[None])
    nan = jnp.isnan(v) & valid_j
    vm = jnp.where(valid_j & ~nan, v, jnp.asarray(-jnp.inf, v.dtype))
    top = jnp.max(vm, axis=-1, keepdims=True)
    first_max = jnp.argmax(valid_j & (vm == top), axis=-1)
    last_nan = valid.shape[-1] - 1 - jnp.argmax(nan[..., ::-1], axis=-1)
    j = jnp.where(jnp.any(nan, axis=-1), last_nan, first_max)
    values = jnp.take_along_axis(v, j[..., None], axis=-1)[..., 0]
    idx_dtype = _index_dtype()
    index = jnp.take_along_axis(jnp.broadcast_to(jnp.asarray(flat[None], idx_dtype), v.shape), j[..., None],
                                axis=-1)[..., 0]
    if none.any():
        values = jnp.where(jnp.asarray(none[None]), jnp.asarray(-jnp.inf, v.dtype), values)
        index = jnp.where(jnp.asarray(none[None]), jnp.asarray(init[None], idx_dtype), index)
    return values, index


def _max_with_indices(x: jax.Array, taps: Sequence[_Taps], spatial: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """torch's CPU max-pool scan over ``x`` of shape ``(B, *spatial)``: for each window, in row-major
    order of its taps, ``if val > max or isnan(val): max, index = val, flat(tap)``, starting from
    ``-inf`` and the window's first in-range tap. Returns the values (the gradient of each goes to
    the tap at its index only) and the flat per-plane indices."""
    n_taps = math.prod(t[0].shape[1] for t in taps)
    n_out = math.prod(t[0].shape[0] for t in taps)
    # the patches hold n_out * n_taps elements per plane: only where that stays near the input's size
    # (adaptive and other little-overlapping windows); a large stride-1 kernel keeps the scan
    if n_taps > _SCAN_MAX_TAPS and n_out * n_taps <= 8 * max(math.prod(spatial), 1):
        return _max_over_patches(x, taps, spatial)
    n = len(spatial)
    out_shape = tuple(t[0].shape[0] for t in taps)
    plane_strides = [math.prod(spatial[a + 1 :]) for a in range(n)]
    # the initial index: torch starts each window at its first non-negative tap
    first = []
    for pos, _ in taps:
        j = np.argmax(pos >= 0, axis=1)
        first.append(pos[np.arange(pos.shape[0]), j])
    init = sum(g * st for g, st in zip(_outer(first), plane_strides, strict=True))
    idx_dtype = _index_dtype()
    best = jnp.full((x.shape[0], *out_shape), -jnp.inf, x.dtype)
    index = jnp.broadcast_to(jnp.asarray(np.broadcast_to(init, out_shape)[None], idx_dtype), best.shape)
    # Taps are read from a copy padded far enough that every tap position is in range (the padding
    # value is never taken: out-of-input taps are masked), as strided slices where the positions are
    # evenly spaced (every strided window), gathers otherwise (adaptive windows). Gathers with the
    # fixed positions of strided windows made XLA CPU materialise transposed copies (1.3 s instead
    # of 0.05 s on (32, 64, 112, 112), kernel 3, stride 2, both outputs).
    pads = [(max(0, -int(pos.min())), max(0, int(pos.max()) - size + 1)) for (pos, _), size in zip(taps, spatial,
                                                                                                      strict=True)]
    xp = x
    if any(lo or hi for lo, hi in pads):
        xp = lax.pad(x, jnp.asarray(-jnp.inf, x.dtype), [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads])
    # each window's first in-input tap (per axis) is taken whatever its value, as torch's scan starts
    # from it: an all -inf window then sends its gradient to that tap, as torch's does
    first_tap = [np.argmax(valid, axis=1) for _, valid in taps]
    for js in itertools.product(*(range(t[0].shape[1]) for t in taps)):
        cols = [t[0][:, j] for t, j in zip(taps, js, strict=True)]
        valid = np.ones(out_shape, bool)
        for m in _outer([t[1][:, j] for t, j in zip(taps, js, strict=True)]):
            valid = valid & m
        if not valid.any():
            continue
        first = valid.copy()
        for m in _outer([ft == j for ft, j in zip(first_tap, js, strict=True)]):
            first = first & m
        v = xp
        for a, col in enumerate(cols):
            v = _taps_along(v, col + pads[a][0], 1 + a)
        take = (v > best) | jnp.isnan(v)
        if first.any():
            take = take | jnp.asarray(first[None])
        if not valid.all():
            take = take & jnp.asarray(valid[None])
        flat = sum(g * st for g, st in zip(_outer(cols), plane_strides, strict=True))
        best = jnp.where(take, v, best)
        index = jnp.where(take, jnp.asarray(np.broadcast_to(flat, out_shape)[None], idx_dtype), index)
    # The values are the scan's own maxima: the chain of selects sends each output's gradient to the
    # tap it took last, which is the index returned. A window with no tap in the input keeps -inf
    # (and its gradient goes nowhere).
    values = best
    return values, index


# --- separable max pooling -------------------------------------------------------------------------


def _axis_cost(pos: np.ndarray, size: int) -> tuple[int, bool]:
    """The work of one 1-D pass per line (taps read), and whether it doubles: a stride-1 window of
    ``K >= 4`` taps is built from windows of 2, 4, ... taps over the whole padded line
    (``floor(log2 K)`` combines of about ``L`` elements, plus one of ``out``) instead of ``K`` taps
    per output."""
    out, k = pos.shape
    length = max(int(pos.max()) + 1, size) - min(0, int(pos.min()))
    scan = k * out
    if k >= 4 and (out == 1 or pos[1, 0] - pos[0, 0] == 1):
        doubled = int(math.log2(k)) * length + out
        if doubled < scan:
            return doubled, True
    return scan, False


def _separable_cost(taps: Sequence[_Taps], spatial: Sequence[int]) -> int:
    """The work of :func:`_max_separable` (last axis first), in taps read; the direct scan reads
    ``prod(K) * prod(out)``."""
    n = len(spatial)
    out = [t[0].shape[0] for t in taps]
    total = 0
    for a in reversed(range(n)):
        cost, _ = _axis_cost(taps[a][0], spatial[a])
        total += cost * math.prod(spatial[:a]) * math.prod(out[a + 1 :])
    return total


def _axis_max(v: jax.Array, idx: jax.Array | None, pos: np.ndarray, valid: np.ndarray, size: int,
              axis: int) -> tuple[jax.Array, jax.Array | None]:
    """torch's 1-D max scan along ``axis`` of ``v`` (windows ``pos``/``valid`` of shape (out, K),
    evenly spaced increasing columns): in tap order ``if val > max or isnan(val)`` take it, the
    window's first in-input tap taken whatever its value. ``idx`` (flat input indices, same shape
    as ``v`` or a batch of 1) follows the taken taps. Taps in the padding are ``-inf`` and never
    taken, except in a window with no tap in the input (the caller fixes those)."""
    out, k = pos.shape
    lo, hi = max(0, -int(pos.min())), max(0, int(pos.max()) - size + 1)
    cfg = [(0, 0, 0)] * v.ndim
    cfg[axis] = (lo, hi, 0)
    if lo or hi:
        v = lax.pad(v, jnp.asarray(-jnp.inf, v.dtype), cfg)
        idx = None if idx is None else lax.pad(idx, jnp.zeros((), idx.dtype), cfg)
    q = pos + lo
    shape = [-1 if i == axis else 1 for i in range(v.ndim)]

    def pick(left, right, lidx, ridx, force):
        """``right`` where it wins torch's scan against ``left`` (or where ``force``)."""
        take = (right > left) | jnp.isnan(right)
        if force.any():
            take = take | jnp.asarray(force.reshape(shape))
        best = jnp.where(take, right, left)
        return best, None if lidx is None or ridx is None else jnp.where(take, ridx, lidx)

    _, doubled = _axis_cost(pos, size)
    if doubled:  # windows of w taps at every start i of the padded line, w = 1, 2, 4, ...
        d = int(pos[0, 1] - pos[0, 0])
        pad = np.ones(v.shape[axis], bool)  # the window at each start lies wholly in the padding
        pad[lo : lo + size] = False
        m, mi, w = v, idx, 1
        while 2 * w <= k:
            n_new = m.shape[axis] - w * d
            sl = [lax.slice_in_dim(a, 0, n_new, 1, axis) if a is not None else None for a in (m, mi)]
            sr = [lax.slice_in_dim(a, w * d, w * d + n_new, 1, axis) if a is not None else None for a in (m, mi)]
            m, mi = pick(sl[0], sr[0], sl[1], sr[1], pad[:n_new])
            pad = pad[:n_new] & pad[w * d : w * d + n_new]
            w *= 2
        starts = q[:, 0]
        best = _taps_along(m, starts, axis)
        bidx = None if mi is None else _taps_along(mi, starts, axis)
        if w < k:  # the two overlapping windows of w taps that cover the K taps
            r = starts + (k - w) * d
            best, bidx = pick(best, _taps_along(m, r, axis), bidx,
                              None if mi is None else _taps_along(mi, r, axis), pad[starts])
        return best, bidx
    first = np.where(valid.any(axis=1), np.argmax(valid, axis=1), -1)
    # the first tap is taken: it is the window's first in-input tap, or -inf padding
    best = _taps_along(v, q[:, 0], axis)
    bidx = None if idx is None else _taps_along(idx, q[:, 0], axis)
    for j in range(1, k):
        tidx = None if idx is None else _taps_along(idx, q[:, j], axis)
        best, bidx = pick(best, _taps_along(v, q[:, j], axis), bidx, tidx, first == j)
    return best, bidx


def _max_separable(x: jax.Array, taps: Sequence[_Taps], spatial: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """:func:`_max_with_indices` one axis at a time (the last first), for windows that are products
    of per-axis tap lists (every strided window): torch's pick in a window (the last NaN, else the
    first maximum in row-major order) is the pick along the first axis among the picks of the
    lines along the others, because a line holds a NaN exactly when its pick is NaN and the first
    maximal line holds the first maximum. Returns the values and the flat per-plane indices
    (:func:`_max_separable_exact` defines the gradient at those). ``sum(K)`` taps instead of
    ``prod(K)``, fewer with doubling (:func:`_axis_cost`)."""
    n = len(spatial)
    idx_dtype = _index_dtype()
    idx: jax.Array | None = jnp.arange(math.prod(spatial), dtype=idx_dtype).reshape((1, *spatial))
    v = x
    for a in reversed(range(n)):
        v, idx = _axis_max(v, idx, taps[a][0], taps[a][1], spatial[a], 1 + a)
    idx = jnp.broadcast_to(jnp.asarray(idx), v.shape)  # (1, ...) where no axis picked (every K = 1)
    # windows with no tap in the input: -inf (already) and torch's index of the first non-negative tap
    out_shape = tuple(t[0].shape[0] for t in taps)
    none = np.zeros(out_shape, bool)
    for m in _outer([np.asarray(~ok.any(axis=1)) for _, ok in taps]):
        none = none | m
    if none.any():
        plane_strides = [math.prod(spatial[a + 1 :]) for a in range(n)]
        first = [pos[np.arange(pos.shape[0]), np.argmax(pos >= 0, axis=1)] for pos, _ in taps]
        init = np.broadcast_to(sum(g * st for g, st in zip(_outer(first), plane_strides, strict=True)), out_shape)
        idx = jnp.where(jnp.asarray(none[None]), jnp.asarray(init[None], idx_dtype), idx)
    return v, idx


def _max_separable_exact(x: jax.Array, taps: Sequence[_Taps], spatial: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """:func:`_max_separable` with torch's gradient bits: torch's backward accumulates
    ``grad[index[o]] += grad_out[o]`` over the outputs in row-major order, each addition rounded in
    the input's dtype (float16/bfloat16 too). The selects' transpose would group the terms per axis
    (other roundings: 1-2 float16 ulps), so the derivative is defined (``custom_jvp``) as the
    gather of the tangent at the index, whose transpose is that scatter-add (XLA's CPU scatter
    adds its updates in order: torch's bits). Windows with no tap in the input get no gradient."""
    none = np.zeros(tuple(t[0].shape[0] for t in taps), bool)
    for m in _outer([np.asarray(~ok.any(axis=1)) for _, ok in taps]):
        none = none | m

    @jax.custom_jvp
    def pool(v: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _max_separable(v, taps, spatial)

    @pool.defjvp
    def pool_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[Any, Any]:
        values, index = pool(primals[0])
        b = index.shape[0]
        rows = jnp.arange(b, dtype=index.dtype)[:, None]
        # explicit sizes, not -1: a batch of 0 (allowed, as in torch) cannot infer them
        plane, n_out = math.prod(primals[0].shape[1:]), math.prod(index.shape[1:])
        at = index
        if none.any():  # torch's index of a window with no input tap can lie outside the plane
            at = jnp.where(jnp.asarray(none[None]), jnp.zeros((), index.dtype), index)
        t = tangents[0].reshape(b, plane).at[rows, at.reshape(b, n_out)].get(mode="promise_in_bounds")
        t = t.reshape(values.shape)
        if none.any():
            t = jnp.where(jnp.asarray(none[None]), jnp.zeros((), t.dtype), t)
        return (values, index), (t, np.zeros(index.shape, jax.dtypes.float0))

    return pool(x)


def _divide(a: jax.Array, divisor: Any) -> jax.Array:
    """``a / divisor``, correctly rounded. XLA's CPU backend turns a division by a constant or a
    broadcast value into a multiplication by its reciprocal (an ulp off about half the time), so the
    divisor is materialised at full shape behind an optimisation barrier."""
    d = jnp.broadcast_to(jnp.asarray(divisor, a.dtype), a.shape)
    return a / lax.optimization_barrier(d)


def _finish(y: jax.Array, lead: tuple[int, ...]) -> jax.Array:
    return y.reshape((*lead, *y.shape[1:]))


# --- max pooling ------------------------------------------------------------------------------------


def _max_pool(
    n: int, input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any,
    return_indices: Any,
) -> Any:
    fn = f"max_pool{n}d"
    _check_floating(input, fn)
    _check_rank(input, n, fn)
    k, s, p, d, spatial, out = _window_args(input, n, fn, kernel_size, stride, padding, dilation, ceil_mode)
    x, lead = _as_batch(input, n)
    taps = [_strided_taps(*a) for a in zip(spatial, out, k, s, p, d, strict=True)]
    if _separable_cost(taps, spatial) < math.prod(k) * math.prod(out):
        values, index = _max_separable_exact(x, taps, spatial)
    else:
        values, index = _max_with_indices(x, taps, spatial)
    if return_indices:
        return _finish(values, lead), _finish(index, lead)
    return _finish(values, lead)


_MAX_DOC = r"""{n}-D max pooling: ``F.max_pool{n}d``, torch's windows, indices and gradient.

    Output element :math:`o` is the maximum of ``input`` over the taps
    :math:`o \cdot s - p + j \cdot d`, :math:`j = 0, \dots, k-1` (per spatial dimension; taps in
    the zero padding are skipped). Output size per dimension:

    .. math::
        L_{{out}} = \left\lfloor \frac{{L + 2p - d(k-1) - 1 (+\, s-1 \text{{ if ceil\_mode}})}}{{s}}
        \right\rfloor + 1,

    minus one with ``ceil_mode`` when the last window would start in the right padding.

    Args:
      input: ``{shape}`` or unbatched ``{unbatched}``, floating dtype.
      kernel_size: window size :math:`k`: an int or one int per spatial dimension.
      stride: :math:`s`; ``None`` (default) or ``()`` means ``kernel_size``.
      padding: implicit :math:`-\infty` padding :math:`p` on both sides, at most ``kernel_size // 2``.
      dilation: spacing :math:`d` between taps.
      ceil_mode: round the output size up instead of down.
      return_indices: also return the flat per-plane index of each maximum
        (``{flat}``), as torch does.

    Returns:
      The pooled array in ``input``'s dtype; with ``return_indices`` a tuple ``(output, indices)``.
      Ties keep the FIRST maximum in the window's row-major scan; a NaN wins over any number (the
      last NaN in the window), as in torch's CPU kernel. The gradient goes to that index only.

    Raises:
      ValueError: non-positive ``kernel_size``/``stride``/``dilation``, negative ``padding`` or
        ``padding > kernel_size // 2``, an output size below 1, a wrong rank or an empty non-batch
        dimension. TypeError: non-int arguments or a non-floating ``input``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> {example}

    Differences from PyTorch:
      Indices are int32 unless ``jax_enable_x64`` is on (torch: int64). Integer inputs, which
      torch's CPU ``max_pool2d``/``max_pool3d`` accept, raise TypeError. torch raises RuntimeError
      for bad arguments; jaxnn raises ValueError/TypeError.

    Differences from Flax:
      ``flax.linen.max_pool`` is channels-last, pads with ``-inf`` only by explicit pairs, has no
      dilation, ceil_mode or indices, and its gradient's tie-breaking is XLA's.

    Source:
      torch 2.13, ``aten/src/ATen/native/Pool.h`` (output size, checks) and
      ``aten/src/ATen/native/cpu/MaxPoolKernel.cpp`` (scan order, NaN rule, indices).
"""


def max_pool1d(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


max_pool1d.__doc__ = _MAX_DOC.format(
    n=1, shape="(N, C, L)", unbatched="(C, L)", flat="l",
    example="F.max_pool1d(jnp.array([[[1.0, 3.0, 2.0, 0.0]]]), 2)\n      Array([[[3., 2.]]], dtype=float32)",
)
max_pool2d.__doc__ = _MAX_DOC.format(
    n=2, shape="(N, C, H, W)", unbatched="(C, H, W)", flat="h * W + w",
    example="F.max_pool2d(jnp.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)[1]\n"
    "      Array([[[[ 5,  7],\n               [13, 15]]]], dtype=int32)",
)
max_pool3d.__doc__ = _MAX_DOC.format(
    n=3, shape="(N, C, D, H, W)", unbatched="(C, D, H, W)", flat="(d * H + h) * W + w",
    example="F.max_pool3d(jnp.arange(8.0).reshape(1, 2, 2, 2), 2).ravel()\n      Array([7.], dtype=float32)",
)


def max_pool1d_with_indices(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``F.max_pool1d_with_indices``: :func:`max_pool1d` returning ``(output, indices)`` whatever
    ``return_indices`` says, as torch's does.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.max_pool1d_with_indices(jnp.array([[1.0, 3.0, 2.0, 0.0]]), 2)[1]
      Array([[1, 2]], dtype=int32)
    """
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``F.max_pool2d_with_indices``: :func:`max_pool2d` returning ``(output, indices)`` whatever
    ``return_indices`` says, as torch's does.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.max_pool2d_with_indices(jnp.arange(4.0).reshape(1, 2, 2), 2)[1]
      Array([[[3]]], dtype=int32)
    """
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``F.max_pool3d_with_indices``: :func:`max_pool3d` returning ``(output, indices)`` whatever
    ``return_indices`` says, as torch's does.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.max_pool3d_with_indices(jnp.arange(8.0).reshape(1, 2, 2, 2), 2)[1]
      Array([[[[7]]]], dtype=int32)
    """
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, True)


# --- average pooling --------------------------------------------------------------------------------


def _avg_pool(
    n: int, input: Any, kernel_size: Any, stride: Any, padding: Any, ceil_mode: Any, count_include_pad: Any,
    divisor_override: Any,
) -> jax.Array:
    fn = f"avg_pool{n}d"
    _check_floating(input, fn)
    _check_rank(input, n, fn)
    k, s, p, _, spatial, out = _window_args(input, n, fn, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if not is_int(divisor_override):
            raise TypeError(f"{fn}: `divisor_override` must be an int or None, got {divisor_override!r}.")
        if divisor_override == 0:
            raise ValueError(f"{fn}: `divisor_override` must not be zero, got {divisor_override!r}.")
    x, lead = _as_batch(input, n)
    dtype = x.dtype
    acc = _opmath(dtype)
    # per axis: the window [start, end) clipped to the padded input, and to the input itself
    sizes, counts, empty = [], [], np.zeros(out, bool)
    for size, o, kk, ss, pp in zip(spatial, out, k, s, p, strict=True):
        start = np.arange(o) * ss - pp
        end = np.minimum(start + kk, size + pp)
        sizes.append(end - start)
        lo, hi = np.maximum(start, 0), np.minimum(end, size)
        counts.append(hi - lo)
    for c in _outer(counts):
        empty |= np.broadcast_to(c <= 0, out)
    if divisor_override is not None:
        divisor = np.full(out, int(divisor_override), np.int64)
    else:
        parts = _outer(sizes if count_include_pad else counts)
        divisor = np.broadcast_to(math.prod(parts), out).astype(np.int64)
    # zero padding p on the left and up to the last window on the right (negative: crop)
    high = [(o - 1) * ss + kk - size - pp for size, o, kk, ss, pp in zip(spatial, out, k, s, p, strict=True)]
    zero = np.zeros((), acc)  # a concrete init value: lax.reduce_window is then the differentiable sum
    xa = lax.pad(x.astype(acc), zero, [(0, 0, 0)] + [(pp, h, 0) for pp, h in zip(p, high, strict=True)])
    sums = lax.reduce_window(xa, zero, lax.add, (1, *k), (1, *s), "VALID")
    y = _divide(sums, np.where(divisor == 0, 1, divisor).astype(acc)[None])
    if empty.any():
        y = jnp.where(jnp.asarray(empty[None]), jnp.zeros((), acc), y)
    return _finish(y.astype(dtype), lead)


_AVG_DOC = r"""{n}-D average pooling: ``F.avg_pool{n}d``, torch's windows and divisors.

    .. math::
        \text{{out}}[o] = \frac{{1}}{{\text{{divisor}}(o)}} \sum_{{j}} \text{{input}}[o \cdot s - p + j]

    over the window's taps inside the input (zero padding contributes 0). The divisor is
    ``divisor_override`` if given{override_note}, else the window size clipped to the padded input
    (``count_include_pad=True``) or the number of taps inside the input (``False``). Output size as
    :func:`max_pool{n}d` with dilation 1.

    Args:
      input: ``{shape}`` or unbatched ``{unbatched}``, floating dtype.
      kernel_size: an int or one int per spatial dimension.
      stride: ``None`` (default) means ``kernel_size``.
      padding: implicit zero padding on both sides, at most ``kernel_size // 2``.
      ceil_mode: round the output size up; the last window must start inside the input or the left
        padding, and its divisor counts only the part inside the padded input.
      count_include_pad: count the zero padding in the divisor.{override_arg}

    Returns:
      Array of ``input``'s dtype. The sums are accumulated in float32 for float16/bfloat16/float32
      (float64 for float64), divided there and rounded once, as torch's CPU kernel does.

    Raises:
      ValueError: non-positive ``kernel_size``/``stride``, negative ``padding`` or
        ``padding > kernel_size // 2``, an output size below 1, ``divisor_override == 0``, a wrong
        rank or an empty non-batch dimension. TypeError: non-int arguments or a non-floating input.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> {example}

    Differences from PyTorch:
      Integer inputs (torch's CPU kernel takes int64) raise TypeError; torch's RuntimeErrors are
      ValueError/TypeError here. Float32 sums are added in XLA's order (a few ulps from torch's).
      torch's CPU ``avg_pool3d`` (and so ``lp_pool3d``) rejects float16/bfloat16; jaxnn computes
      them as the 1-D/2-D kernels do (float32 sum, one rounding).

    Differences from Flax:
      ``flax.linen.avg_pool`` is channels-last and counts the padding unless
      ``count_include_pad=False``; it has no ``ceil_mode`` or ``divisor_override``.

    Source:
      torch 2.13, ``aten/src/ATen/native/Pool.h`` and ``aten/src/ATen/native/cpu/AvgPoolKernel.cpp``
      (divisor, float32 accumulation for float16/bfloat16).
"""


def avg_pool1d(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> jax.Array:
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> jax.Array:
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


_OVERRIDE_ARG = "\n      divisor_override: a non-zero int used as the divisor of every window."
avg_pool1d.__doc__ = _AVG_DOC.format(
    n=1, shape="(N, C, L)", unbatched="(C, L)", override_note=" (2-D and 3-D only)", override_arg="",
    example="F.avg_pool1d(jnp.array([[[1.0, 3.0, 2.0]]]), 2, 1, 1, count_include_pad=False)\n"
    "      Array([[[1. , 2. , 2.5, 2. ]]], dtype=float32)",
)
avg_pool2d.__doc__ = _AVG_DOC.format(
    n=2, shape="(N, C, H, W)", unbatched="(C, H, W)", override_note="", override_arg=_OVERRIDE_ARG,
    example="F.avg_pool2d(jnp.arange(16.0).reshape(1, 4, 4), 2)\n"
    "      Array([[[ 2.5,  4.5],\n              [10.5, 12.5]]], dtype=float32)",
)
avg_pool3d.__doc__ = _AVG_DOC.format(
    n=3, shape="(N, C, D, H, W)", unbatched="(C, D, H, W)", override_note="", override_arg=_OVERRIDE_ARG,
    example="F.avg_pool3d(jnp.arange(8.0).reshape(1, 2, 2, 2), 2, divisor_override=2).ravel()\n"
    "      Array([14.], dtype=float32)",
)


# --- adaptive pooling -------------------------------------------------------------------------------


def _adaptive_avg_pool(n: int, input: Any, output_size: Any) -> jax.Array:
    fn = f"adaptive_avg_pool{n}d"
    _check_floating(input, fn)
    _check_rank(input, n, fn, nonempty_from=1 if n == 3 else input.ndim - n)
    out = _adaptive_size(input, output_size, n, fn, allow_none=n > 1)
    x, lead = _as_batch(input, n)
    dtype = x.dtype
    acc = _opmath(dtype)
    spatial = x.shape[1:]
    if 0 in out:
        return jnp.zeros((*lead, *out), dtype)
    xa = x.astype(acc)
    if all(o == 1 for o in out):  # torch takes input.mean(spatial dims): one division
        y = _divide(jnp.sum(xa, axis=tuple(range(1, n + 1)), keepdims=True), math.prod(spatial))
        return _finish(y.astype(dtype), lead)
    if n == 3 and jnp.dtype(dtype).itemsize == 2:
        return _finish(_adaptive_avg_pool3d_half(x, out), lead)
    counts = []
    for a in range(n):
        pos, valid = _adaptive_taps(spatial[a], out[a])
        total = None
        for j in range(pos.shape[1]):
            term = jnp.take(xa, jnp.asarray(np.minimum(pos[:, j], spatial[a] - 1), jnp.int32), axis=1 + a)
            if not valid[:, j].all():
                mask = valid[:, j].reshape([-1 if i == 1 + a else 1 for i in range(n + 1)])
                term = jnp.where(jnp.asarray(mask), term, jnp.zeros((), acc))
            total = term if total is None else total + term
        xa = jnp.asarray(total)
        counts.append(valid.sum(axis=1))
    # torch's kernel divides by each window extent in turn: sum / kd / kh / kw
    for a in range(n):
        xa = _divide(xa, counts[a].reshape([-1 if i == 1 + a else 1 for i in range(n + 1)]).astype(acc))
    return _finish(xa.astype(dtype), lead)


def _adaptive_avg_pool3d_half(x: jax.Array, out: tuple[int, ...]) -> jax.Array:
    """torch's CPU ``adaptive_avg_pool3d`` kernel for float16/bfloat16 accumulates in the input's
    dtype: ``sum += x`` over the window in (d, h, w) order, each addition rounded, then
    ``sum / kd / kh / kw``, each division rounded. Reproduced step by step (in float32, rounded)."""
    dtype, f32 = x.dtype, jnp.float32
    spatial = x.shape[1:]
    taps = [_adaptive_taps(size, o) for size, o in zip(spatial, out, strict=True)]
    total = jnp.zeros((x.shape[0], *out), dtype)
    for js in itertools.product(*(range(t[0].shape[1]) for t in taps)):
        valid = np.ones(out, bool)
        for m in _outer([t[1][:, j] for t, j in zip(taps, js, strict=True)]):
            valid = valid & m
        if not valid.any():
            continue
        v = x
        for a, (t, j) in enumerate(zip(taps, js, strict=True)):
            v = jnp.take(v, jnp.asarray(np.minimum(t[0][:, j], spatial[a] - 1), jnp.int32), axis=1 + a)
        if not valid.all():
            v = jnp.where(jnp.asarray(valid[None]), v, jnp.zeros((), dtype))
        total = (total.astype(f32) + v.astype(f32)).astype(dtype)
    for a, t in enumerate(taps):
        count = t[1].sum(axis=1).reshape([-1 if i == 1 + a else 1 for i in range(4)]).astype(np.float32)
        total = _divide(total.astype(f32), count).astype(dtype)
    return total


def _adaptive_max_pool(n: int, input: Any, output_size: Any, return_indices: Any) -> Any:
    fn = f"adaptive_max_pool{n}d"
    _check_floating(input, fn)
    _check_rank(input, n, fn, nonempty_from=1)
    out = _adaptive_size(input, output_size, n, fn, allow_none=n > 1)
    x, lead = _as_batch(input, n)
    if 0 in out:
        y = jnp.zeros((*lead, *out), x.dtype)
        return (y, jnp.zeros(y.shape, _index_dtype())) if return_indices else y
    taps = [_adaptive_taps(size, o) for size, o in zip(x.shape[1:], out, strict=True)]
    values, index = _max_with_indices(x, taps, x.shape[1:])
    if return_indices:
        return _finish(values, lead), _finish(index, lead)
    return _finish(values, lead)


_ADAPTIVE_DOC = r"""{n}-D adaptive {kind} pooling: ``F.adaptive_{kind}_pool{n}d``, torch's windows.

    Along each spatial dimension of input size :math:`L` and output size :math:`O`, output
    :math:`i` {what} the input over

    .. math::
        \left[\left\lfloor \frac{{iL}}{{O}} \right\rfloor,\ \left\lceil \frac{{(i+1)L}}{{O}} \right\rceil\right).

    Args:
      input: ``{shape}`` or unbatched ``{unbatched}``, floating dtype; spatial sizes > 0.
      output_size: an int or one {entry} per spatial dimension, each >= 0{none}.{ri}

    Returns:
      {returns}

    Raises:
      ValueError: a wrong rank, an empty spatial dimension, a negative or mis-sized
        ``output_size``. TypeError: a non-int ``output_size`` entry or a non-floating input.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> {example}

    Differences from PyTorch:
      {diff}torch raises RuntimeError where jaxnn raises ValueError.{extra}

    Source:
      torch 2.13, ``aten/src/ATen/native/AdaptivePooling.h`` (windows) and
      ``aten/src/ATen/native/cpu/Adaptive{Kind}PoolKernel.cpp``.
"""

_AVG_RETURNS = (
    "Array of ``input``'s dtype: the window sum accumulated in float32 (float64 for float64) and\n"
    "      divided by each window extent in turn (``sum / kd / kh / kw``), as torch's CPU kernel; an\n"
    "      all-ones ``output_size`` is torch's ``mean`` over the spatial dims (one division)."
)
_MAX_RETURNS = (
    "Array of ``input``'s dtype; with ``return_indices`` a tuple ``(output, indices)`` of flat\n"
    "      per-plane indices. First maximum in row-major order; NaN wins, as in torch. The gradient\n"
    "      goes to that index only."
)
_RI = "\n      return_indices: also return the indices of the maxima."


def adaptive_avg_pool1d(input: jax.Array, output_size: int | Sequence[int]) -> jax.Array:
    return _adaptive_avg_pool(1, input, output_size)


def adaptive_avg_pool2d(input: jax.Array, output_size: int | None | Sequence[int | None]) -> jax.Array:
    return _adaptive_avg_pool(2, input, output_size)


def adaptive_avg_pool3d(input: jax.Array, output_size: int | None | Sequence[int | None]) -> jax.Array:
    return _adaptive_avg_pool(3, input, output_size)


def adaptive_max_pool1d(input: jax.Array, output_size: int | Sequence[int], return_indices: bool = False) -> Any:
    return _adaptive_max_pool(1, input, output_size, return_indices)


def adaptive_max_pool2d(
    input: jax.Array, output_size: int | None | Sequence[int | None], return_indices: bool = False
) -> Any:
    return _adaptive_max_pool(2, input, output_size, return_indices)


def adaptive_max_pool3d(
    input: jax.Array, output_size: int | None | Sequence[int | None], return_indices: bool = False
) -> Any:
    return _adaptive_max_pool(3, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(
    input: jax.Array, output_size: int | Sequence[int], return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``F.adaptive_max_pool1d_with_indices``: :func:`adaptive_max_pool1d` returning
    ``(output, indices)`` whatever ``return_indices`` says.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.adaptive_max_pool1d_with_indices(jnp.array([[1.0, 3.0, 2.0]]), 2)[1]
      Array([[1, 1]], dtype=int32)
    """
    return _adaptive_max_pool(1, input, output_size, True)


def adaptive_max_pool2d_with_indices(
    input: jax.Array, output_size: int | None | Sequence[int | None], return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``F.adaptive_max_pool2d_with_indices``: :func:`adaptive_max_pool2d` returning
    ``(output, indices)`` whatever ``return_indices`` says.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.adaptive_max_pool2d_with_indices(jnp.arange(4.0).reshape(1, 2, 2), 1)[1]
      Array([[[3]]], dtype=int32)
    """
    return _adaptive_max_pool(2, input, output_size, True)


def adaptive_max_pool3d_with_indices(
    input: jax.Array, output_size: int | None | Sequence[int | None], return_indices: bool = False
) -> tuple[jax.Array, jax.Array]:
    """``F.adaptive_max_pool3d_with_indices``: :func:`adaptive_max_pool3d` returning
    ``(output, indices)`` whatever ``return_indices`` says.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.adaptive_max_pool3d_with_indices(jnp.arange(8.0).reshape(1, 2, 2, 2), 1)[1]
      Array([[[[7]]]], dtype=int32)
    """
    return _adaptive_max_pool(3, input, output_size, True)


_SHAPES = {1: ("(N, C, L)", "(C, L)"), 2: ("(N, C, H, W)", "(C, H, W)"), 3: ("(N, C, D, H, W)", "(C, D, H, W)")}
for _n, _f, _ex in [
    (1, adaptive_avg_pool1d, "F.adaptive_avg_pool1d(jnp.array([[1.0, 2.0, 4.0]]), 2)\n"
     "      Array([[1.5, 3. ]], dtype=float32)"),
    (2, adaptive_avg_pool2d, "F.adaptive_avg_pool2d(jnp.ones((1, 3, 5, 7)), (2, None)).shape\n      (1, 3, 2, 7)"),
    (3, adaptive_avg_pool3d, "F.adaptive_avg_pool3d(jnp.ones((3, 4, 5, 6)), 2).shape\n      (3, 2, 2, 2)"),
]:
    _f.__doc__ = _ADAPTIVE_DOC.format(
        n=_n, kind="avg", Kind="Avg", what="averages", shape=_SHAPES[_n][0], unbatched=_SHAPES[_n][1],
        entry="int" if _n == 1 else "int or None", none="" if _n == 1 else " (None: keep the input size)",
        ri="", returns=_AVG_RETURNS, example=_ex,
        diff="Float32 sums are added in XLA's order (a few ulps from torch's). ",
        extra="" if _n < 3 else (
            "\n      float16/bfloat16: torch's 3-D kernel accumulates in the input's dtype (each addition\n"
            "      rounded, in (d, h, w) order, then each division rounded); jaxnn does the same, bit for bit."
        ),
    )
for _n, _f, _ex in [
    (1, adaptive_max_pool1d, "F.adaptive_max_pool1d(jnp.array([[1.0, 3.0, 2.0]]), 2)\n"
     "      Array([[3., 3.]], dtype=float32)"),
    (2, adaptive_max_pool2d, "F.adaptive_max_pool2d(jnp.ones((1, 3, 5, 7)), (2, None)).shape\n      (1, 3, 2, 7)"),
    (3, adaptive_max_pool3d, "F.adaptive_max_pool3d(jnp.ones((3, 4, 5, 6)), 2).shape\n      (3, 2, 2, 2)"),
]:
    _f.__doc__ = _ADAPTIVE_DOC.format(
        n=_n, kind="max", Kind="Max", what="is the maximum of", shape=_SHAPES[_n][0], unbatched=_SHAPES[_n][1],
        entry="int" if _n == 1 else "int or None", none="" if _n == 1 else " (None: keep the input size)",
        ri=_RI, returns=_MAX_RETURNS, example=_ex,
        diff="Indices are int32 unless ``jax_enable_x64`` is on (torch: int64). ", extra="",
    )


# --- power-average pooling --------------------------------------------------------------------------


def _pow_scalar(x: jax.Array, e: float) -> jax.Array:
    """torch's ``Tensor.pow(scalar)`` on CPU: exact special cases for 2, 3, 0.5, -0.5, -1, -2,
    ``std::pow`` otherwise; float16/bfloat16 computed in float32 and rounded once."""
    dtype = x.dtype
    xf = x.astype(_opmath(dtype))
    if e == 1:
        y = xf
    elif e == 2:
        y = xf * xf
    elif e == 3:
        y = xf * xf * xf
    elif e == 0.5:
        y = jnp.sqrt(xf)
    elif e == -0.5:
        y = lax.rsqrt(xf)
    elif e == -1:
        y = 1 / xf
    elif e == -2:
        y = 1 / (xf * xf)
    elif e == 0:
        y = jnp.ones_like(xf)
    else:
        y = jnp.power(xf, jnp.asarray(e, xf.dtype))
    return y.astype(dtype)


def _lp_pool(n: int, input: Any, norm_type: Any, kernel_size: Any, stride: Any, ceil_mode: Any) -> jax.Array:
    fn = f"lp_pool{n}d"
    _check_floating(input, fn)
    if not isinstance(norm_type, numbers.Real) or isinstance(norm_type, bool):
        raise TypeError(f"{fn}: `norm_type` must be a number, got {norm_type!r}.")
    p = float(norm_type)
    if n > 1 and not is_int(kernel_size):
        if not (isinstance(kernel_size, Sequence) and len(kernel_size) == n):
            raise ValueError(f"{fn}: `kernel_size` must be an int or a tuple of {n} ints, got {kernel_size!r}.")
    k = _ints(kernel_size, n, "kernel_size", fn)
    if math.isinf(p):
        x = jnp.asarray(input)
        x = x * jnp.sign(x)  # |x| with torch's abs gradient, sign(x): 0 at 0 (jnp.abs': 1)
        if p > 0:
            return _max_pool(n, x, kernel_size, stride, 0, 1, ceil_mode, False)
        return -_max_pool(n, -x, kernel_size, stride, 0, 1, ceil_mode, False)
    if n == 1 and not is_int(kernel_size):
        raise TypeError(f"{fn}: `kernel_size` must be an int (torch multiplies by it), got {kernel_size!r}.")
    if p == 0:
        raise ValueError(f"{fn}: `norm_type` must be non-zero (torch divides by it), got {norm_type!r}.")
    x = jnp.asarray(input)
    out = _avg_pool(n, _pow_scalar(x, p), kernel_size, stride, 0, ceil_mode, True, None)
    out = jnp.sign(out) * jax.nn.relu(jnp.abs(out))
    dtype = out.dtype
    out = (out.astype(_opmath(dtype)) * math.prod(k)).astype(dtype)
    return _pow_scalar(out, 1.0 / p)


_LP_DOC = r"""{n}-D power-average pooling: ``F.lp_pool{n}d``, torch's formula.

    .. math::
        \text{{out}} = \left(\operatorname{{sign}}(a)\,\operatorname{{relu}}(|a|) \cdot \prod k\right)^{{1/p}},
        \qquad a = \text{{avg\_pool}}(\text{{input}}^p, k, s, 0, \text{{ceil\_mode}}),

    i.e. :math:`(\sum_{{window}} x^p)^{{1/p}}` where the sum is positive; ``norm_type`` of
    :math:`\pm\infty` is ``±max_pool(±|input|)``.

    Args:
      input: ``{shape}`` or unbatched ``{unbatched}``, floating dtype.
      norm_type: the power :math:`p` (non-zero; ``inf``/``-inf`` allowed).
      kernel_size: {kernel}.
      stride: ``None`` (default) means ``kernel_size``.
      ceil_mode: round the output size up, as in :func:`avg_pool{n}d`.

    Returns:
      Array of ``input``'s dtype. Each of torch's steps is rounded to the input's dtype as torch
      does (``pow``, the average, the product, the root): ``x.pow(p)`` is exact ``x*x`` for
      ``p=2`` and the root of ``p=2`` is ``sqrt``, as torch's special cases. A negative
      window sum with a non-integer :math:`1/p` gives NaN, as in torch.

    Raises:
      ValueError: ``norm_type == 0`` and :func:`avg_pool{n}d`'s conditions.
      TypeError: {kernel_err}a non-floating input.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> {example}

    Differences from PyTorch:
      torch raises ZeroDivisionError for ``norm_type=0``{kernel_diff}; jaxnn raises ValueError.
      Where a window's power sum is 0 the gradient is 0, as torch's autograd gives (its relu
      backward is a select, which drops the root's infinite derivative).

    Source:
      torch 2.13, ``torch/nn/functional.py`` (``lp_pool{n}d``).
"""


def lp_pool1d(
    input: jax.Array, norm_type: float, kernel_size: int, stride: int | Sequence[int] | None = None,
    ceil_mode: bool = False,
) -> jax.Array:
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(
    input: jax.Array, norm_type: float, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
    ceil_mode: bool = False,
) -> jax.Array:
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(
    input: jax.Array, norm_type: float, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
    ceil_mode: bool = False,
) -> jax.Array:
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode)


lp_pool1d.__doc__ = _LP_DOC.format(
    n=1, shape="(N, C, L)", unbatched="(C, L)", kernel="an int (torch multiplies by it: no tuple)",
    kernel_err="a tuple ``kernel_size``, ", kernel_diff=" and TypeError for a tuple ``kernel_size``",
    example="F.lp_pool1d(jnp.array([[3.0, 4.0, 1.0]]), 2, 2)\n      Array([[5.]], dtype=float32)",
)
lp_pool2d.__doc__ = _LP_DOC.format(
    n=2, shape="(N, C, H, W)", unbatched="(C, H, W)", kernel="an int or a tuple of 2 ints", kernel_err="",
    kernel_diff="",
    example="F.lp_pool2d(jnp.ones((1, 4, 4)), 1, 2)\n      Array([[[4., 4.],\n              [4., 4.]]], dtype=float32)",
)
lp_pool3d.__doc__ = _LP_DOC.format(
    n=3, shape="(N, C, D, H, W)", unbatched="(C, D, H, W)", kernel="an int or a tuple of 3 ints", kernel_err="",
    kernel_diff="",
    example="F.lp_pool3d(jnp.ones((1, 2, 2, 2)), 2, 2).ravel()\n      Array([2.828427], dtype=float32)",
)
