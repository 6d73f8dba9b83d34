"""Max unpooling: ``max_unpool1d``, ``max_unpool2d``, ``max_unpool3d``, torch's partial inverse of
max pooling.

Each input value is written to the flat per-plane position its index names, in an output of
zeros. torch's CPU kernel writes the input in order, so when two inputs of one plane name the same
position the LAST one stays. Here that order is made explicit instead of left to XLA's scatter
(whose order for duplicate indices is unspecified): a scatter-max of each input's flat position
finds, for every output position, the last input that writes it, and the output gathers that
input. No arithmetic touches the values, so every dtype (float16/bfloat16 included) is bit-exact.

The gradient is torch's (``max_pool_double_backward``): each input receives the output gradient at
its index, a gather, also when a later duplicate overwrote its value in the forward pass (then
the gradient is not the forward pass's derivative; torch defines it so). A ``jax.custom_vjp``
pins it; forward-mode differentiation (``jax.jvp``) is therefore not available.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_array, is_int, shape_str

_INDEX_DTYPES = (jnp.dtype(jnp.int32), jnp.dtype(jnp.int64))
_INT32_MAX = int(np.iinfo(np.int32).max)


# --- arguments ------------------------------------------------------------------------------------


def _exact_ints(value: Any, n: int, name: str, fn: str) -> tuple[int, ...]:
    """torch's ``_single``/``_pair``/``_triple`` followed by its per-dimension use: an int is
    repeated, a sequence must have exactly ``n`` ints (torch fails on other lengths)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if is_int(value):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if not all(is_int(v) for v in items):
            raise TypeError(f"{fn}: `{name}` must be an int or a tuple of {n} ints, got {value!r}.")
        if len(items) != n:
            raise ValueError(
                f"{fn}: `{name}` must be an int or a tuple of exactly {n} int{'s' if n > 1 else ''} (one per "
                f"spatial dimension), got {value!r} of length {len(items)}."
            )
        return tuple(int(v) for v in items)
    raise TypeError(f"{fn}: `{name}` must be an int or a tuple of {n} ints, got {value!r}.")


def _window(n: int, fn: str, kernel_size: Any, stride: Any, padding: Any) -> tuple[tuple[int, ...], ...]:
    k = _exact_ints(kernel_size, n, "kernel_size", fn)
    s = k if stride is None else _exact_ints(stride, n, "stride", fn)
    p = _exact_ints(padding, n, "padding", fn)
    if any(v <= 0 for v in k):
        raise ValueError(f"{fn}: `kernel_size` must be greater than zero, got {kernel_size!r}.")
    if any(v <= 0 for v in s):
        raise ValueError(f"{fn}: `stride` must be greater than zero, got {stride!r}.")
    if any(v < 0 for v in p):
        raise ValueError(f"{fn}: `padding` must be non-negative, got {padding!r}.")
    if any(pv > kv // 2 for pv, kv in zip(p, k, strict=True)):
        raise ValueError(
            f"{fn}: `padding` (={padding!r}) must be at most half of `kernel_size` (={kernel_size!r}) in every "
            "dimension (max pooling's rule: padding <= kernel_size // 2)."
        )
    return k, s, p


def _output_size(
    n: int, fn: str, spatial: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int], output_size: Any
) -> tuple[int, ...]:
    """torch's ``_unpool_output_size``: ``(L - 1) * s - 2p + k`` per dimension, or ``output_size``
    (the spatial sizes, or the full shape whose first two entries are ignored) within
    ``(default - s, default + s)``."""
    default = [(size - 1) * sv + kv - 2 * pv for size, kv, sv, pv in zip(spatial, k, s, p, strict=True)]
    if output_size is None:
        return tuple(default)
    if not isinstance(output_size, Sequence) or isinstance(output_size, str):
        raise TypeError(
            f"{fn}: `output_size` must be a sequence of {n} ints (or the full shape, {n + 2} ints), got "
            f"{output_size!r}."
        )
    sizes = list(output_size)
    if len(sizes) == n + 2:
        sizes = sizes[2:]
    if len(sizes) != n:
        raise ValueError(
            f"{fn}: `output_size` must have {n} (spatial) or {n + 2} (full shape) entries, got {output_size!r} of "
            f"length {len(sizes)}."
        )
    if not all(is_int(v) for v in sizes):
        raise TypeError(f"{fn}: `output_size` entries must be ints, got {output_size!r}.")
    for d, (v, dv, sv) in enumerate(zip(sizes, default, s, strict=True)):
        if not dv - sv < v < dv + sv:
            raise ValueError(
                f"{fn}: invalid `output_size` {output_size!r}: dimension {d} (={v}) must be strictly between "
                f"{dv - sv} and {dv + sv} (the default size {dv} plus or minus the stride {sv})."
            )
        if v < 0:
            raise ValueError(
                f"{fn}: `output_size` must contain non-negative spatial sizes, got {output_size!r} "
                f"(dimension {d} is {v})."
            )
    return tuple(int(v) for v in sizes)


def _is_concrete(x: Any) -> bool:
    """A value known now (not traced by jit/vmap/grad), whose indices can be checked."""
    try:
        np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return True


def _check_index_values(indices: Any, plane: int, out: Sequence[int], fn: str) -> None:
    """torch's ``Found an invalid max index``, for concrete indices (outside ``jit``)."""
    if not _is_concrete(indices):
        return
    values = np.asarray(indices).reshape(-1)
    bad = np.flatnonzero((values < 0) | (values >= plane))
    if bad.size:
        first = int(bad[0])
        where = np.unravel_index(first, np.shape(indices))
        raise ValueError(
            f"{fn}: found an invalid max index {int(values[first])} in `indices` at position "
            f"{tuple(int(i) for i in where)}: indices must lie in [0, {plane}), the flat positions of an output "
            f"plane of size {'x'.join(str(o) for o in out)}."
        )


# --- the scatter and its gradient --------------------------------------------------------------------


def _flat_targets(idx: jax.Array, plane: int, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """Flat output positions ``row * plane + idx`` of ``idx`` ``(B, M)``, and which are valid."""
    rows = jnp.arange(idx.shape[0], dtype=dtype)[:, None]
    valid = (idx >= 0) & (idx < plane)
    return rows * plane + jnp.clip(idx, 0, plane - 1).astype(dtype), valid


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _unpool(x: jax.Array, idx: jax.Array, plane: int, dtype: Any) -> jax.Array:
    """``x``, ``idx`` ``(B, M)`` -> ``(B, plane)``: zeros, then ``out[b, idx[b, i]] = x[b, i]`` for
    ``i`` in order (the last write stays); out-of-range indices are dropped."""
    b, m = x.shape
    target, valid = _flat_targets(idx, plane, dtype)
    dump = b * plane  # one extra slot that takes the invalid indices' writes
    target = jnp.where(valid, target, dump).reshape(-1)
    position = jnp.arange(b * m, dtype=dtype)
    last = jnp.full((dump + 1,), -1, dtype).at[target].max(position)[:dump]  # the last writer of each position
    values = jnp.take(x.reshape(-1), jnp.clip(last, 0, max(b * m - 1, 0)), axis=0)
    return jnp.where(last >= 0, values, jnp.zeros((), x.dtype)).reshape(b, plane)


def _unpool_fwd(x: jax.Array, idx: jax.Array, plane: int, dtype: Any) -> tuple[jax.Array, jax.Array]:
    return _unpool(x, idx, plane, dtype), idx


def _unpool_bwd(plane: int, dtype: Any, idx: jax.Array, g: jax.Array) -> tuple[jax.Array, None]:
    # torch's max_pool_double_backward: every input takes the output gradient at its index
    target, valid = _flat_targets(idx, plane, dtype)
    gx = jnp.take(g.reshape(-1), target.reshape(-1), axis=0).reshape(idx.shape)
    return jnp.where(valid, gx, jnp.zeros((), g.dtype)), None


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


# --- the functions --------------------------------------------------------------------------------


def _max_unpool(n: int, input: Any, indices: Any, kernel_size: Any, stride: Any, padding: Any,
                output_size: Any) -> jax.Array:
    fn = f"max_unpool{n}d"
    check_array(input, "input")
    check_array(indices, "indices")
    if not jnp.issubdtype(input.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: `input` must have a floating dtype (float16, bfloat16, float32, float64), got {input.dtype}."
        )
    if jnp.dtype(indices.dtype) not in _INDEX_DTYPES:
        raise TypeError(
            f"{fn}: `indices` must be int64 (torch's index type) or int32 (what jaxnn's max pooling returns without "
            f"jax_enable_x64), got {indices.dtype}."
        )
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(
            f"{fn}: `input` must be {n + 1}-D (C, *spatial) or {n + 2}-D (N, C, *spatial) with {n} spatial "
            f"dimension{'s' if n > 1 else ''}, got shape {shape_str(input.shape)}."
        )
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"{fn}: `indices` must have the shape of `input` {shape_str(input.shape)}, got shape "
            f"{shape_str(indices.shape)}."
        )
    if any(v == 0 for v in input.shape[1:]):
        raise ValueError(
            f"{fn}: `input` must have non-zero sizes in every dimension after the first, got shape "
            f"{shape_str(input.shape)}."
        )
    k, s, p = _window(n, fn, kernel_size, stride, padding)
    spatial = tuple(int(v) for v in input.shape[input.ndim - n :])
    out = _output_size(n, fn, spatial, k, s, p, output_size)
    lead = tuple(int(v) for v in input.shape[: input.ndim - n])
    planes, plane, m = math.prod(lead), math.prod(out), math.prod(spatial)
    if planes * plane == 0:  # nothing to write (torch does not look at the indices then)
        return jnp.zeros((*lead, *out), input.dtype)
    _check_index_values(indices, plane, out, fn)
    size = max(planes * plane + 1, planes * m)
    if size <= _INT32_MAX:
        dtype: Any = jnp.int32
    elif jax.config.read("jax_enable_x64"):
        dtype = jnp.int64
    else:
        raise ValueError(
            f"{fn}: {size} flat positions do not fit in int32; enable jax_enable_x64 for arrays this large."
        )
    x = jnp.asarray(input).reshape(planes, m)
    idx = jnp.asarray(indices).reshape(planes, m)
    return jnp.reshape(_unpool(x, idx, plane, dtype), (*lead, *out))


_DOC = r"""{n}-D max unpooling: ``F.max_unpool{n}d``, a partial inverse of :func:`max_pool{n}d`.

    Every input value goes to the flat per-plane position its index names (``{flat}`` in the
    output plane, as :func:`max_pool{n}d` with ``return_indices=True`` returns them); every other
    output element is zero. Output size per spatial dimension, unless ``output_size`` is given:

    .. math::
        L_{{out}} = (L_{{in}} - 1) \cdot s - 2p + k.

    Args:
      input: ``{shape}`` or unbatched ``{unbatched}``, floating dtype.
      indices: the shape of ``input``; int64 (torch's type) or int32 (jaxnn's pooling indices
        without ``jax_enable_x64``). Each in ``[0, prod(output spatial sizes))``.
      kernel_size: :math:`k`, an int or a tuple of {n} ints.
      stride: :math:`s`, an int or a tuple of {n} ints; ``None`` (default) means ``kernel_size``.
      padding: :math:`p`, an int or a tuple of {n} ints, at most ``kernel_size // 2``.
      output_size: the spatial output sizes ({n} ints), or the full shape ({n2} ints, of which the
        first two are ignored, as torch ignores them); each strictly between
        :math:`L_{{out}} - s` and :math:`L_{{out}} + s`. ``None`` (default): :math:`L_{{out}}`.

    Returns:
      ``{out_shape}`` (unbatched: ``{out_unbatched}``), ``input``'s dtype; bit-exact with torch.
      Where several inputs of a plane name one position, the last one (in row-major order of
      ``input``) stays, as torch's CPU kernel writes them in order (torch calls the case
      nondeterministic: its threads may split a plane). The gradient w.r.t. ``input`` is torch's:
      each input receives the output gradient at its index (duplicates included). ``indices`` get
      no gradient.

    Raises:
      ValueError: ``input`` not {n1}-D or {n2}-D, an empty dimension after the first, ``indices``
        of another shape, non-positive ``kernel_size``/``stride``, negative ``padding`` or
        ``padding > kernel_size // 2``, a tuple argument without exactly {n} entries,
        ``output_size`` of the wrong length, out of range or negative, and (concrete
        ``indices`` only) an index outside ``[0, prod(output spatial sizes))``.
      TypeError: non-floating ``input``, ``indices`` neither int32 nor int64, non-int arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> {example}

    Differences from PyTorch:
      Out-of-range index values raise ValueError (torch: RuntimeError) only when ``indices`` are
      concrete; under ``jit``/``vmap`` they cannot be checked: their values are dropped (the output
      stays zero there) and their gradient is zero. int32 ``indices`` are accepted (torch: int64
      only). With an empty output (an output size of 0) the gradient is zero; torch 2.13's
      backward fails there (its gather reads the empty output). torch 2.13 does not check
      ``kernel_size``, ``stride`` (1-D, 2-D) and ``padding`` beyond using them in the output size
      (``kernel_size=0`` gives an empty output, ``padding=-1`` a larger one); jaxnn rejects
      non-positive ``kernel_size``/``stride``, negative ``padding`` and ``padding > kernel_size //
      2`` with ValueError, as the newer ``MaxUnpooling.cpp`` on torch's main branch does.
      Forward-mode differentiation (``jax.jvp``) is not available (the gradient is pinned with
      ``jax.custom_vjp``).

    Source:
      torch 2.13, ``torch/nn/functional.py`` (``max_unpool{n}d``, ``_unpool_output_size``),
      ``aten/src/ATen/native/MaxUnpooling.cpp`` (checks) and
      ``aten/src/ATen/native/cpu/MaxUnpoolKernel.cpp`` (the in-order writes); the gradient from
      ``tools/autograd/derivatives.yaml`` (``max_pool_double_backward``).
"""


def max_unpool1d(
    input: jax.Array,
    indices: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
) -> jax.Array:
    return _max_unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(
    input: jax.Array,
    indices: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
) -> jax.Array:
    return _max_unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(
    input: jax.Array,
    indices: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
) -> jax.Array:
    return _max_unpool(3, input, indices, kernel_size, stride, padding, output_size)


max_unpool1d.__doc__ = _DOC.format(
    n=1, n1=2, n2=3, shape="(N, C, L_in)", unbatched="(C, L_in)", flat="l", out_shape="(N, C, L_out)",
    out_unbatched="(C, L_out)",
    example="F.max_unpool1d(jnp.array([[[3.0, 2.0]]]), jnp.array([[[1, 2]]]), 2)\n"
    "      Array([[[0., 3., 2., 0.]]], dtype=float32)",
)
max_unpool2d.__doc__ = _DOC.format(
    n=2, n1=3, n2=4, shape="(N, C, H_in, W_in)", unbatched="(C, H_in, W_in)", flat="h * W_out + w",
    out_shape="(N, C, H_out, W_out)", out_unbatched="(C, H_out, W_out)",
    example="y, i = F.max_pool2d(jnp.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)\n"
    "      >>> F.max_unpool2d(y, i, 2)\n"
    "      Array([[[[ 0.,  0.,  0.,  0.],\n"
    "               [ 0.,  5.,  0.,  7.],\n"
    "               [ 0.,  0.,  0.,  0.],\n"
    "               [ 0., 13.,  0., 15.]]]], dtype=float32)",
)
max_unpool3d.__doc__ = _DOC.format(
    n=3, n1=4, n2=5, shape="(N, C, D_in, H_in, W_in)", unbatched="(C, D_in, H_in, W_in)",
    flat="(d * H_out + h) * W_out + w", out_shape="(N, C, D_out, H_out, W_out)",
    out_unbatched="(C, D_out, H_out, W_out)",
    example="F.max_unpool3d(jnp.ones((1, 1, 1, 1)), jnp.array([[[[7]]]]), 2).ravel()\n"
    "      Array([0., 0., 0., 0., 0., 0., 0., 1.], dtype=float32)",
)
