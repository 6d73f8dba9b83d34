"""``pad``: torch.nn.functional.pad, bit-exact, plus the per-axis padding engine conv shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import check_array, is_int, shape_str

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def check_pad_amounts(
    mode: str,
    sizes: Sequence[int],
    pads: Sequence[tuple[int, int]],
    name: str = "pad",
    empty: bool = False,
) -> None:
    """Validate per-axis ``(lo, hi)`` amounts for ``mode`` against the axis ``sizes``, as torch does.

    Shared by :func:`pad` and by convolutions with a non-zero ``padding_mode``. ``empty``: the
    whole input has no elements, so nothing is copied and circular wrapping cannot alias.
    """
    for size, (lo, hi) in zip(sizes, pads, strict=True):
        out = size + lo + hi
        if mode == "constant":
            kept = size - max(-lo, 0) - max(-hi, 0)  # torch crops before it pads
            if kept < 0:
                raise ValueError(
                    f"`{name}` amounts ({lo}, {hi}) crop {max(-lo, 0) + max(-hi, 0)} elements from "
                    f"a dimension of size {size}; a negative output size."
                )
            if out < 0:
                raise ValueError(
                    f"`{name}` amounts ({lo}, {hi}) on a dimension of size {size} give a negative "
                    f"output size {out}."
                )
            continue
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                f"`{name}` amounts ({lo}, {hi}) with mode='reflect' must be smaller than the "
                f"padded dimension's size ({size})."
            )
        if mode == "circular":
            if lo > size or hi > size:
                raise ValueError(
                    f"`{name}` amounts ({lo}, {hi}) with mode='circular' must not exceed the "
                    f"padded dimension's size ({size}): that would wrap around more than once."
                )
            # torch crops negative amounts first, then wraps what is left.
            kept = size - max(-lo, 0) - max(-hi, 0)
            if not empty and (lo > kept or hi > kept):
                raise ValueError(
                    f"`{name}` amounts ({lo}, {hi}) with mode='circular' wrap around more than "
                    f"once after cropping (only {kept} of {size} elements remain)."
                )
            if out < 0:
                raise ValueError(
                    f"`{name}` amounts ({lo}, {hi}) on a dimension of size {size} give a negative "
                    f"output size {out}."
                )
            continue
        if out < 1:
            raise ValueError(
                f"`{name}` amounts ({lo}, {hi}) with mode={mode!r} leave a dimension of size "
                f"{size} with output size {out}; the output must be at least 1."
            )


def _slice_axis(x: jax.Array, axis: int, start: int, stop: int) -> jax.Array:
    return lax.slice_in_dim(x, start, stop, axis=axis)


def _crop(x: jax.Array, axis: int, lo: int, hi: int) -> jax.Array:
    """Remove ``max(-lo, 0)`` leading and ``max(-hi, 0)`` trailing elements along ``axis``."""
    cut_lo, cut_hi = max(-lo, 0), max(-hi, 0)
    if cut_lo == 0 and cut_hi == 0:
        return x
    return _slice_axis(x, axis, cut_lo, x.shape[axis] - cut_hi)


def _extend(x: jax.Array, axis: int, lo: int, hi: int, mode: str) -> jax.Array:
    """Add ``max(lo, 0)`` / ``max(hi, 0)`` elements along ``axis`` by reflection, edge or wrap."""
    lo, hi = max(lo, 0), max(hi, 0)
    if lo == 0 and hi == 0:
        return x
    n = x.shape[axis]
    parts = []
    if lo:
        if mode == "reflect":  # x[lo], ..., x[1]
            parts.append(lax.rev(_slice_axis(x, axis, 1, lo + 1), (axis,)))
        elif mode == "replicate":
            parts.append(jnp.repeat(_slice_axis(x, axis, 0, 1), lo, axis=axis))
        else:  # circular
            parts.append(_slice_axis(x, axis, n - lo, n))
    parts.append(x)
    if hi:
        if mode == "reflect":  # x[n-2], ..., x[n-1-hi]
            parts.append(lax.rev(_slice_axis(x, axis, n - 1 - hi, n - 1), (axis,)))
        elif mode == "replicate":
            parts.append(jnp.repeat(_slice_axis(x, axis, n - 1, n), hi, axis=axis))
        else:
            parts.append(_slice_axis(x, axis, 0, hi))
    return lax.concatenate(parts, axis)


def pad_axes(
    x: jax.Array,
    axes: Sequence[int],
    pads: Sequence[tuple[int, int]],
    mode: str = "constant",
    value: Any = 0.0,
) -> jax.Array:
    """Pad (or crop, for negative amounts) ``x`` along ``axes`` by ``pads``; amounts pre-validated.

    reflect and replicate extend by the positive amounts and then crop the negative ones; circular
    crops first and wraps what is left. Both orders are torch's, and they differ.
    """
    if mode == "constant":
        config = [(0, 0, 0)] * x.ndim
        for axis, (lo, hi) in zip(axes, pads, strict=True):
            config[axis] = (lo, hi, 0)
        return lax.pad(x, jnp.asarray(value, dtype=x.dtype), config)
    if mode == "circular":
        if x.size == 0:  # nothing to wrap: only the shape changes
            shape = list(x.shape)
            for axis, (lo, hi) in zip(axes, pads, strict=True):
                shape[axis] += lo + hi
            return jnp.zeros(shape, x.dtype)
        for axis, (lo, hi) in zip(axes, pads, strict=True):
            x = _crop(x, axis, lo, hi)
        for axis, (lo, hi) in zip(axes, pads, strict=True):
            x = _extend(x, axis, lo, hi, mode)
        return x
    for axis, (lo, hi) in zip(axes, pads, strict=True):
        x = _extend(x, axis, lo, hi, mode)
    for axis, (lo, hi) in zip(axes, pads, strict=True):
        x = _crop(x, axis, lo, hi)
    return x


def pad(
    input: jax.Array,
    pad: Sequence[int],
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant",
    value: float | None = None,
) -> jax.Array:
    r"""Pad (or, with negative amounts, crop) the last dimensions of ``input``: ``F.pad``.

    ``pad`` lists ``(left, right)`` pairs starting from the LAST dimension:
    ``(1, 1, 2, 0)`` pads the last dimension by 1 on each side and the one before it by 2 at the
    front. The output size of a padded dimension is :math:`L + left + right`.

    Args:
      input: array of any shape (``constant``); for ``reflect``, ``replicate`` and ``circular``
        a 2D/3D input with 2 amounts, 3D/4D with 4, or 4D/5D with 6 (the leading one or two
        dimensions are batch and channel).
      pad: tuple of ints of even length, at most ``2 * input.ndim``. Negative amounts crop.
      mode: ``'constant'``, ``'reflect'`` (mirror without repeating the edge), ``'replicate'``
        (repeat the edge) or ``'circular'`` (wrap around).
      value: fill value for ``'constant'`` (default 0). Other modes accept only ``None`` or 0.

    Returns:
      The padded array, same dtype as ``input``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.pad(jnp.arange(4.0).reshape(1, 4), (2, 1), mode="reflect")
      Array([[2., 1., 0., 1., 2., 3., 2.]], dtype=float32)
      >>> F.pad(jnp.arange(4.0), (-1, 1), value=9.0)
      Array([1., 2., 3., 9.], dtype=float32)

    Differences from PyTorch:
      None in results (bit-exact). torch raises NotImplementedError for an unknown mode or an
      unsupported rank; jaxnn raises ValueError. A circular pad that, after negative amounts crop
      the dimension, would wrap around more than once is rejected (torch fails with an aliasing
      error or reads uninitialised memory there).

    Differences from jnp.pad:
      Amounts start from the last dimension, may be negative, and reflect/circular amounts are
      checked against the dimension size instead of wrapping repeatedly.
    """
    check_array(input, "input")
    if isinstance(pad, str) or not isinstance(pad, Sequence):
        raise TypeError(f"`pad` must be a tuple of ints, got {pad!r}.")
    amounts = tuple(pad)
    if not all(is_int(p) for p in amounts):
        raise TypeError(f"`pad` must be a tuple of ints, got {pad!r}.")
    if len(amounts) % 2:
        raise ValueError(f"`pad` length must be divisible by 2, got {pad!r} of length {len(amounts)}.")
    k = len(amounts) // 2
    ndim = input.ndim
    if k > ndim:
        raise ValueError(
            f"`pad` has {len(amounts)} amounts for {k} dimensions, but `input` has only {ndim} "
            f"dimensions (shape {shape_str(input.shape)})."
        )
    if mode not in PAD_MODES:
        raise ValueError(f"`mode` must be one of {PAD_MODES}, got {mode!r}.")
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"`value` (={value!r}) is only allowed with mode='constant', got {mode!r}.")
        if k not in (1, 2, 3) or ndim not in (k + 1, k + 2):
            raise ValueError(
                f"mode={mode!r} with {len(amounts)} `pad` amounts needs a {k + 1}D or {k + 2}D "
                f"input, got shape {shape_str(input.shape)}. Supported: 2 amounts for 2D/3D, "
                "4 for 3D/4D, 6 for 4D/5D inputs."
            )
        # reflect/replicate: a zero-sized batch is fine, any other empty dimension is not.
        lead = 1 if ndim == k + 2 else 0
        if mode != "circular" and any(s == 0 for s in input.shape[lead:]):
            raise ValueError(
                f"mode={mode!r} needs non-empty dimensions (except a batch dimension), got "
                f"`input` of shape {shape_str(input.shape)}."
            )
    axes = tuple(range(ndim - 1, ndim - 1 - k, -1))
    pairs = tuple((amounts[2 * i], amounts[2 * i + 1]) for i in range(k))
    check_pad_amounts(mode, [input.shape[a] for a in axes], pairs, empty=input.size == 0)
    fill = 0 if value is None else value
    return pad_axes(jnp.asarray(input), axes, pairs, mode, fill)
