"""Sliding-block (im2col / col2im) rearrangements: ``unfold`` and ``fold``.

Both are built from ``kh * kw`` strided slices of a zero-padded array, one per kernel tap, never a
loop over output positions: ``unfold`` reads tap ``(i, j)`` as the slice
``x_pad[..., i*dh : ... : sh, j*dw : ... : sw]`` and stacks the taps; ``fold`` places each tap's
blocks back with a strided slice update and adds the taps in torch's order (kernel row, then
column), so float sums, float16/bfloat16 included, are bit-exact with torch's ``col2im``. The two
are each other's adjoints, and each one's gradient is the other one (``jax.custom_vjp``), as
torch's autograd formulas say, so gradients follow torch's summation order too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_array, is_int, shape_str

_Pair = tuple[int, int]


def _pair(value: Any, name: str) -> _Pair:
    """torch's ``_pair``: an int is repeated; a sequence (a 1-D NumPy array too) must have exactly
    two ints."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if not all(is_int(v) for v in items):
            raise TypeError(f"`{name}` must be an int or a tuple of 2 ints, got {value!r}.")
        if len(items) != 2:
            raise ValueError(
                f"`{name}` must be an int or a tuple of 2 ints (height, width), got {value!r} of length "
                f"{len(items)}."
            )
        return (int(items[0]), int(items[1]))
    raise TypeError(f"`{name}` must be an int or a tuple of 2 ints, got {value!r}.")


def _check_config(kernel_size: Any, dilation: Any, padding: Any, stride: Any) -> tuple[_Pair, _Pair, _Pair, _Pair]:
    k = _pair(kernel_size, "kernel_size")
    d = _pair(dilation, "dilation")
    p = _pair(padding, "padding")
    s = _pair(stride, "stride")
    if min(k) <= 0:
        raise ValueError(f"`kernel_size` must be greater than zero, got {k}.")
    if min(d) <= 0:
        raise ValueError(f"`dilation` must be greater than zero, got {d}.")
    if min(p) < 0:
        raise ValueError(f"`padding` must be non-negative, got {p}.")
    if min(s) <= 0:
        raise ValueError(f"`stride` must be greater than zero, got {s}.")
    return k, d, p, s


def _blocks(size: _Pair, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> _Pair:
    """Number of sliding blocks per spatial dim: ``floor((L + 2p - d(k-1) - 1) / s) + 1`` (torch's
    ``div_rtn``: rounded toward minus infinity, so a kernel wider than the padded input gives <= 0)."""
    out = []
    for n, kk, dd, pp, ss in zip(size, k, d, p, s, strict=True):
        out.append((n + 2 * pp - (dd * (kk - 1) + 1)) // ss + 1)
    return (out[0], out[1])


def _check_float(x: Any, name: str, what: str) -> None:
    """torch's im2col/col2im kernels take floating, complex and bool tensors, no integer ones."""
    if not (jnp.issubdtype(x.dtype, jnp.inexact) or x.dtype == jnp.bool_):
        raise TypeError(
            f"`{name}` must have a floating (or complex, or bool) dtype for {what} (torch has no integer "
            f"kernel), got {x.dtype}."
        )


def _tap_slices(i: int, j: int, blocks: _Pair, d: _Pair, s: _Pair) -> tuple[slice, slice]:
    hi, wi = i * d[0], j * d[1]
    return (slice(hi, hi + (blocks[0] - 1) * s[0] + 1, s[0]), slice(wi, wi + (blocks[1] - 1) * s[1] + 1, s[1]))


def _im2col(x: jax.Array, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> jax.Array:
    """(N, C, H, W) -> (N, C*kh*kw, L), exact (slices only)."""
    n, c, h, w = x.shape
    blocks = _blocks((h, w), k, d, p, s)
    xp = jnp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))) if max(p) else x
    taps = [xp[:, :, hs, ws] for i in range(k[0]) for j in range(k[1]) for hs, ws in [_tap_slices(i, j, blocks, d, s)]]
    cols = jnp.stack(taps, axis=2)  # (N, C, kh*kw, bh, bw)
    return cols.reshape(n, c * k[0] * k[1], blocks[0] * blocks[1])


def _col2im(cols: jax.Array, size: _Pair, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> jax.Array:
    """(N, C*kh*kw, L) -> (N, C, H, W): each tap's blocks added in kernel order, as torch's col2im."""
    n = cols.shape[0]
    c = cols.shape[1] // (k[0] * k[1])
    blocks = _blocks(size, k, d, p, s)
    cols = cols.reshape(n, c, k[0] * k[1], blocks[0], blocks[1])
    hp, wp = size[0] + 2 * p[0], size[1] + 2 * p[1]
    out = jnp.zeros((n, c, hp, wp), cols.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            hs, ws = _tap_slices(i, j, blocks, d, s)
            tap = cols[:, :, i * k[1] + j]
            # bool: torch's sum of bools is their or (XLA has no bool add)
            out = out.at[:, :, hs, ws].max(tap) if out.dtype == jnp.bool_ else out.at[:, :, hs, ws].add(tap)
    return out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]]


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _unfold(x: jax.Array, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> jax.Array:
    return _im2col(x, k, d, p, s)


def _unfold_fwd(x: jax.Array, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> tuple[jax.Array, tuple[int, int]]:
    return _im2col(x, k, d, p, s), (x.shape[2], x.shape[3])


def _unfold_bwd(k: _Pair, d: _Pair, p: _Pair, s: _Pair, size: tuple[int, int], g: jax.Array) -> tuple[jax.Array]:
    return (_col2im(g, size, k, d, p, s),)


_unfold.defvjp(_unfold_fwd, _unfold_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4, 5))
def _fold(cols: jax.Array, size: _Pair, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> jax.Array:
    return _col2im(cols, size, k, d, p, s)


def _fold_fwd(cols: jax.Array, size: _Pair, k: _Pair, d: _Pair, p: _Pair, s: _Pair) -> tuple[jax.Array, None]:
    return _col2im(cols, size, k, d, p, s), None


def _fold_bwd(size: _Pair, k: _Pair, d: _Pair, p: _Pair, s: _Pair, _: None, g: jax.Array) -> tuple[jax.Array]:
    return (_im2col(g, k, d, p, s),)


_fold.defvjp(_fold_fwd, _fold_bwd)


def unfold(
    input: jax.Array,
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> jax.Array:
    r"""Extract sliding local blocks (im2col): ``F.unfold``, bit-exact.

    For kernel tap :math:`(i, j)` and block :math:`(b_h, b_w)`,

    .. math::
        \text{out}[n, c\,k_h k_w + i\,k_w + j,\; b_h L_w + b_w]
        = x_{pad}[n, c,\; b_h s_h + i\,d_h,\; b_w s_w + j\,d_w]

    with :math:`x_{pad}` zero-padded by ``padding`` on both sides and
    :math:`L_h = \lfloor (H + 2p_h - d_h(k_h-1) - 1)/s_h \rfloor + 1` (same for :math:`L_w`).

    Args:
      input: ``(N, C, H, W)`` or unbatched ``(C, H, W)`` floating array (complex and bool too, as
        torch's kernel).
      kernel_size: int or ``(kh, kw)``, > 0.
      dilation: int or pair, > 0.
      padding: int or pair of zero padding amounts, >= 0.
      stride: int or pair, > 0.

    Returns:
      ``(N, C*kh*kw, L_h*L_w)`` (or ``(C*kh*kw, L)``) in ``input``'s dtype. Its gradient is
      :func:`fold` of the cotangent, as torch's.

    Raises:
      ValueError: non-positive kernel size, stride or dilation, negative padding, a pair of the
        wrong length, an input that is not 3-D/4-D or has an empty non-batch dimension, or no
        complete block.
      TypeError: non-int sizes, or an integer ``input`` (torch has no integer kernel; bool is
        accepted).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.unfold(jnp.arange(9.0).reshape(1, 1, 3, 3), 2)[0]
      Array([[0., 1., 3., 4.],
             [1., 2., 4., 5.],
             [3., 4., 6., 7.],
             [4., 5., 7., 8.]], dtype=float32)

    Differences from PyTorch:
      None in results (slices: bit-exact). torch raises RuntimeError/IndexError for bad arguments
      (a 2-D input gives torch's IndexError); jaxnn ValueError/TypeError, before tracing. Complex
      gradients follow JAX's convention (the conjugate of torch's ``.grad``), as everywhere in JAX.
    """
    check_array(input, "input")
    k, d, p, s = _check_config(kernel_size, dilation, padding, stride)
    if input.ndim not in (3, 4) or any(v == 0 for v in input.shape[input.ndim - 3 :]):
        raise ValueError(
            "`input` of unfold must be 3-D (C, H, W) or 4-D (N, C, H, W) (batch size may be 0, the other "
            f"dimensions non-zero), got shape {shape_str(input.shape)}."
        )
    _check_float(input, "input", "unfold")
    blocks = _blocks(tuple(input.shape[-2:]), k, d, p, s)  # type: ignore[arg-type]
    if min(blocks) < 1:
        raise ValueError(
            f"unfold: given `input` with spatial size {tuple(input.shape[-2:])}, kernel_size={k}, dilation={d}, "
            f"padding={p}, the array of sliding blocks has shape {blocks}; each must be at least 1 (use a "
            "smaller kernel or dilation, or more padding)."
        )
    x = jnp.asarray(input)
    out = cast(jax.Array, _unfold(x[None] if x.ndim == 3 else x, k, d, p, s))
    return out[0] if x.ndim == 3 else out


def fold(
    input: jax.Array,
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
) -> jax.Array:
    r"""Combine sliding local blocks into an array, summing overlaps (col2im): ``F.fold``.

    The adjoint of :func:`unfold`: every column entry
    ``input[n, c*kh*kw + i*kw + j, b_h*L_w + b_w]`` is added to
    ``out[n, c, b_h*s_h + i*d_h - p_h, b_w*s_w + j*d_w - p_w]`` (entries landing in the padding are
    dropped). Overlapping taps are added in kernel order (row ``i``, then column ``j``), torch's
    order, so the result is bit-exact, float16/bfloat16 included.

    Args:
      input: ``(N, C*kh*kw, L)`` or unbatched ``(C*kh*kw, L)`` floating array (complex and bool
        too; overlapping bools are or-ed, as torch's sum of bools), with
        ``L = L_h * L_w`` the number of blocks that fit in ``output_size`` (see :func:`unfold`).
      output_size: int or ``(H, W)``.
      kernel_size, dilation, padding, stride: as in :func:`unfold`.

    Returns:
      ``(N, C, H, W)`` (or ``(C, H, W)``) in ``input``'s dtype. Its gradient is :func:`unfold` of
      the cotangent, as torch's.

    Raises:
      ValueError: bad sizes (as :func:`unfold`), ``input.shape[-2]`` not divisible by
        ``kh*kw``, ``input.shape[-1]`` not the number of blocks, a rank other than 2/3.
      TypeError: non-int sizes or an integer ``input``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.fold(jnp.ones((1, 4, 4)), (3, 3), 2)[0, 0]
      Array([[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]], dtype=float32)

    Differences from PyTorch:
      None in results. torch raises RuntimeError for bad arguments; jaxnn ValueError/TypeError.
      Complex gradients follow JAX's convention (the conjugate of torch's ``.grad``).
    """
    check_array(input, "input")
    size = _pair(output_size, "output_size")
    k, d, p, s = _check_config(kernel_size, dilation, padding, stride)
    if min(size) <= 0:
        raise ValueError(f"`output_size` must be greater than zero, got {size}.")
    if input.ndim not in (2, 3) or any(v == 0 for v in input.shape[input.ndim - 2 :]):
        raise ValueError(
            "`input` of fold must be 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L) (batch size may be 0, the "
            f"other dimensions non-zero), got shape {shape_str(input.shape)}."
        )
    _check_float(input, "input", "fold")
    planes, length = input.shape[-2], input.shape[-1]
    if planes % (k[0] * k[1]):
        raise ValueError(
            f"fold: `input.shape[-2]` (={planes}) must be divisible by the product of `kernel_size` {k} "
            f"(={k[0] * k[1]})."
        )
    blocks = _blocks(size, k, d, p, s)
    if blocks[0] * blocks[1] != length or min(blocks) < 1:
        raise ValueError(
            f"fold: given output_size={size}, kernel_size={k}, dilation={d}, padding={p}, stride={s}, "
            f"`input.shape[-1]` (={length}) must equal the number of sliding blocks "
            f"{blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]} (which must be positive)."
        )
    x = jnp.asarray(input)
    out = cast(jax.Array, _fold(x[None] if x.ndim == 2 else x, size, k, d, p, s))
    return out[0] if x.ndim == 2 else out
