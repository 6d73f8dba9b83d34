"""embedding, embedding_renorm and one_hot with torch.nn.functional's signatures and gradients."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import check_array, is_int, shape_str


class EmbeddingIndexError(IndexError, ValueError):
    """An index outside ``[0, num_embeddings)`` (torch's ``IndexError: index out of range in
    self``); also a ValueError, jaxnn's error type for bad arguments."""


_INDEX_DTYPES = (jnp.dtype(jnp.int32), jnp.dtype(jnp.int64))


def _is_concrete(x: Any) -> bool:
    """A value known now (not traced by jit/vmap/grad), whose indices can be checked."""
    try:
        np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return False
    return True


def _check_indices(input: Any, name: str) -> jax.Array:
    check_array(input, name)
    if jnp.result_type(input) not in _INDEX_DTYPES:
        raise TypeError(
            f"Expected `{name}` to have one of the following scalar types: int64 (Long), int32 (Int); but got "
            f"{jnp.result_type(input)} instead (as torch's embedding, which rejects other dtypes too)."
        )
    return jnp.asarray(input)


def _check_weight(weight: Any) -> jax.Array:
    check_array(weight, "weight")
    weight = jnp.asarray(weight)
    if weight.ndim != 2:
        raise ValueError(f"`weight` must be 2-D (num_embeddings, embedding_dim), got shape {shape_str(weight.shape)}.")
    return weight


def _check_in_range(indices: jax.Array, num: int, name: str) -> None:
    """torch's ``index out of range in self``, for concrete indices (outside ``jit``)."""
    if not _is_concrete(indices) or indices.size == 0:
        return
    values = np.asarray(indices)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num:
        bad = lo if lo < 0 else hi
        raise EmbeddingIndexError(
            f"index out of range in self: `{name}` holds {bad}, outside [0, {num}) (num_embeddings={num})."
        )


def canonical_padding_idx(padding_idx: Any, num_embeddings: int) -> int | None:
    """torch's rule: ``-num_embeddings <= padding_idx < num_embeddings``; negative counts from the end."""
    if padding_idx is None:
        return None
    if not is_int(padding_idx):
        raise TypeError(f"`padding_idx` must be an int or None, got {padding_idx!r}.")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"Padding_idx must be within num_embeddings: `padding_idx` (={padding_idx}) must be in "
            f"[{-num_embeddings}, {num_embeddings}) for num_embeddings={num_embeddings}."
        )
    return int(padding_idx) + num_embeddings if padding_idx < 0 else int(padding_idx)


def _row_norms(weight: jax.Array, norm_type: float) -> jax.Array:
    """torch's ``row.norm(norm_type)`` for every row, in float32 at least, rounded to the weight's
    dtype as torch's result is."""
    w = jnp.abs(weight.astype(jnp.promote_types(weight.dtype, jnp.float32)))
    p = float(norm_type)
    if p == math.inf:
        n = jnp.max(w, axis=1)
    elif p == -math.inf:
        n = jnp.min(w, axis=1)
    elif p == 0.0:
        n = jnp.sum((w != 0).astype(w.dtype), axis=1)
    elif p == 1.0:
        n = jnp.sum(w, axis=1)
    elif p == 2.0:
        n = jnp.sqrt(jnp.sum(w * w, axis=1))
    else:
        n = jnp.sum(w**p, axis=1) ** (1.0 / p)
    return n.astype(weight.dtype).astype(w.dtype)


def _renorm(weight: jax.Array, indices: jax.Array, max_norm: float, norm_type: float) -> jax.Array:
    num = weight.shape[0]
    flat = jnp.where(indices < 0, num, indices).reshape(-1)
    touched = jnp.zeros((num,), bool).at[flat].set(True, mode="drop")
    norms = _row_norms(weight, norm_type)
    too_long = touched & (norms > max_norm)
    scale = jnp.asarray(max_norm, norms.dtype) / (norms + jnp.asarray(1e-7, norms.dtype))
    scaled = (weight.astype(norms.dtype) * scale[:, None]).astype(weight.dtype)
    return jnp.where(too_long[:, None], scaled, weight)


def _check_renorm_weight(weight: jax.Array) -> None:
    """torch renormalises with ``norm()``, which rejects non-floating weights."""
    if not jnp.issubdtype(weight.dtype, jnp.floating):
        raise TypeError(
            f"norm(): input dtype should be either floating point or complex: `weight` of dtype {weight.dtype} "
            "cannot be renormalised with `max_norm` (as torch's embedding_renorm_)."
        )


def _check_max_norm(max_norm: Any, norm_type: Any) -> tuple[float, float]:
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.integer, np.floating)):
        raise TypeError(f"`max_norm` must be a float or None, got {max_norm!r}.")
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.integer, np.floating)):
        raise TypeError(f"`norm_type` must be a float, got {norm_type!r}.")
    return float(max_norm), float(norm_type)


def embedding_renorm(weight: jax.Array, input: jax.Array, max_norm: float, norm_type: float = 2.0) -> jax.Array:
    r"""The weight after torch's in-place ``embedding_renorm_``: every row that ``input`` looks up
    and whose ``norm_type``-norm exceeds ``max_norm`` is rescaled by
    :math:`\text{max\_norm} / (\lVert w_i \rVert + 10^{-7})`; other rows are unchanged.

    torch's ``F.embedding(..., max_norm=...)`` and ``nn.Embedding(max_norm=...)`` overwrite those
    rows of the weight in place (under ``no_grad``). JAX arrays are immutable: this function returns
    the new weight, :func:`embedding` returns the lookup from it, and the Embedding modules store it
    back into their ``weight`` after each call, as torch's module does.

    Args:
      weight: ``(num_embeddings, embedding_dim)``, floating.
      input: integer indices (int32/int64), any shape.
      max_norm: the largest row norm allowed.
      norm_type: the ``p`` of the p-norm (``inf``, ``-inf`` and ``0`` as torch's ``norm``).

    Returns:
      An array like ``weight``. The norm is computed in float32 (float64 for float64 weights) and
      rounded to the weight's dtype as torch's ``row.norm()`` result is; the scale is computed in that
      float type (torch: a double), so rescaled rows agree with torch's to ~1 ulp.

    Raises:
      EmbeddingIndexError (an IndexError and a ValueError): for concrete ``input`` with an index
      outside ``[0, num_embeddings)``. Under ``jit`` such indices touch no row.
      TypeError: a non-floating ``weight`` (torch's ``norm()`` rejects it).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> w = jnp.array([[3.0, 4.0], [0.3, 0.4]])
      >>> F.embedding_renorm(w, jnp.array([0, 1]), 1.0)
      Array([[0.6, 0.8],
             [0.3, 0.4]], dtype=float32)
    """
    weight = _check_weight(weight)
    indices = _check_indices(input, "input")
    max_norm, norm_type = _check_max_norm(max_norm, norm_type)
    _check_renorm_weight(weight)
    _check_in_range(indices, weight.shape[0], "input")
    return _renorm(weight, jax.lax.stop_gradient(indices), max_norm, norm_type)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _lookup(weight: jax.Array, indices: jax.Array, padding_idx: int, scale_grad_by_freq: bool,
            max_norm: float | None, norm_type: float) -> jax.Array:
    table = weight if max_norm is None else _renorm(weight, indices, max_norm, norm_type)
    num = weight.shape[0]
    safe = jnp.where(indices < 0, num, indices)  # negative: out of range, as torch
    return jnp.take(table, safe, axis=0, mode="fill")  # NaN rows (floating weights) for bad indices


def _lookup_fwd(weight: jax.Array, indices: jax.Array, padding_idx: int, scale_grad_by_freq: bool,
                max_norm: float | None, norm_type: float) -> tuple[jax.Array, tuple[Any, ...]]:
    out: jax.Array = _lookup(weight, indices, padding_idx, scale_grad_by_freq, max_norm, norm_type)  # type: ignore[assignment]
    return out, (indices, jnp.zeros((weight.shape[0], 0), weight.dtype))


def _lookup_bwd(padding_idx: int, scale_grad_by_freq: bool, max_norm: float | None, norm_type: float,
                res: tuple[Any, ...], g: jax.Array) -> tuple[jax.Array, None]:
    """torch's ``embedding_dense_backward``: ``grad_weight[k] += scale * grad[i]`` for every
    position ``i`` with index ``k != padding_idx``; ``scale = 1 / count(k)`` with
    ``scale_grad_by_freq``. float32/float64: a scatter-add in the weight's dtype; float16/bfloat16:
    torch's sequential half-precision additions (:func:`_half_accumulate`)."""
    indices, like = res
    num, dtype = like.shape[0], like.dtype
    acc = jnp.promote_types(dtype, jnp.float32)
    flat = jnp.where(indices < 0, num, indices).reshape(-1)
    rows = g.reshape(flat.shape[0], g.shape[-1]).astype(acc)
    if padding_idx >= 0:
        rows = jnp.where((flat == padding_idx)[:, None], jnp.zeros((), acc), rows)
    scale = None
    if scale_grad_by_freq:
        counts = jnp.zeros((num + 1,), acc).at[flat].add(1.0, mode="drop")
        scale = 1.0 / jnp.take(counts, flat, mode="clip")
    if acc != dtype:  # float16/bfloat16: torch's half grad * half(1 / count), then index_add_ in order
        if scale is not None:
            rows = (rows * scale.astype(dtype).astype(acc)[:, None]).astype(dtype).astype(acc)
        return _half_accumulate(flat, rows, num, dtype), None
    if scale is not None:
        rows = rows * scale[:, None]
    grad = jnp.zeros((num, g.shape[-1]), acc).at[flat].add(rows, mode="drop")
    return grad.astype(dtype), None


def _half_accumulate(flat: jax.Array, rows: jax.Array, num: int, dtype: Any) -> jax.Array:
    """torch's CPU ``embedding_dense_backward`` for float16/bfloat16 (``index_add_``): a
    half-precision ``grad_weight`` to which the rows (half values held in float32; with
    ``scale_grad_by_freq`` already ``half(grad * half(1 / count))``, measured) are added one at a
    time in input order, each addition rounded to the half dtype: bit for bit torch's. Padding
    rows are zero already; out-of-range positions (``flat == num``) are dropped."""
    f32 = rows.dtype

    def step(gw: jax.Array, item: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        k, row = item
        cur = lax.dynamic_index_in_dim(gw, jnp.minimum(k, num - 1), 0, keepdims=False).astype(f32)
        return gw.at[k].set((cur + row).astype(dtype), mode="drop"), None

    gw, _ = lax.scan(step, jnp.zeros((num, rows.shape[-1]), dtype), (flat, rows))
    return gw


_lookup.defvjp(_lookup_fwd, _lookup_bwd)


def embedding(
    input: jax.Array,
    weight: jax.Array,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    r"""``torch.nn.functional.embedding``: look up rows of ``weight``, :math:`y[\ldots] =
    w[\text{input}[\ldots]]`, with torch's gradient.

    Args:
      input: integer indices, int32 or int64 (torch: Long or Int; other dtypes are a TypeError),
        any shape ``(*)``.
      weight: ``(num_embeddings, embedding_dim)``.
      padding_idx: the row that gets no gradient (its gradient is 0); negative values count from
        the end (``-1`` is ``num_embeddings - 1``), as torch's. It must lie in
        ``[-num_embeddings, num_embeddings)``. The lookup itself returns the row as it is.
      max_norm: if given, rows looked up whose ``norm_type``-norm exceeds it are rescaled to
        ``max_norm`` before the lookup (see :func:`embedding_renorm`). torch also writes them back
        into ``weight`` in place; here ``weight`` is immutable: call :func:`embedding_renorm` for the
        new weight (the modules do).
      norm_type: the ``p`` of the norm for ``max_norm``.
      scale_grad_by_freq: divide each row's gradient by the number of times its index occurs in
        ``input``.
      sparse: accepted for torch compatibility; JAX gradients are dense either way (the same values
        torch's sparse gradient holds, as a dense array).

    Returns:
      ``(*, embedding_dim)`` in ``weight``'s dtype, bit for bit the rows torch returns.
      Gradient (a ``jax.custom_vjp``): torch's ``embedding_dense_backward``, the cotangents summed
      per index (float16/bfloat16: added one at a time in input order, each addition rounded to
      the weight's dtype, as torch's CPU kernel: bit for bit, repeated indices included; a
      sequential ``lax.scan`` over the positions). The rescaling by ``max_norm``
      is not differentiated (torch does it under ``no_grad``). ``input`` gets no gradient.

    Raises:
      EmbeddingIndexError (an IndexError, like torch's, and a ValueError): concrete ``input`` with
      an index outside ``[0, num_embeddings)``. Under ``jax.jit`` indices cannot be checked: an
      out-of-range (or negative) index returns a row of NaN (``jnp.take``'s fill for other dtypes:
      the minimum of a signed integer type, the maximum of an unsigned one, True for bool) and
      contributes no gradient.
      TypeError: non-integer ``input``; ``max_norm`` with a non-floating ``weight`` (torch's
      ``norm()`` error). ValueError: ``padding_idx`` out of range, ``weight`` not 2-D,
      ``scale_grad_by_freq`` with ``sparse`` (torch raises that in the backward pass).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> w = jnp.arange(6.0).reshape(3, 2)
      >>> F.embedding(jnp.array([[2, 0]]), w)
      Array([[[4., 5.],
              [0., 1.]]], dtype=float32)
      >>> jax.grad(lambda w: F.embedding(jnp.array([0, 0, 1]), w, padding_idx=1).sum())(w)
      Array([[2., 2.],
             [0., 0.],
             [0., 0.]], dtype=float32)

    Differences from PyTorch:
      ``max_norm`` does not modify ``weight`` in place (see above); ``sparse=True`` gives a dense
      gradient; out-of-range indices under ``jit`` give NaN rows instead of an error.
    """
    weight = _check_weight(weight)
    indices = _check_indices(input, "input")
    num = weight.shape[0]
    pad = canonical_padding_idx(padding_idx, num)
    mn, nt = (None, float(norm_type)) if max_norm is None else _check_max_norm(max_norm, norm_type)
    if mn is not None:
        _check_renorm_weight(weight)
    if scale_grad_by_freq and sparse:  # torch raises this in the backward
        raise ValueError(
            "embedding: scale_grad_by_freq not supported with sparse gradients: `scale_grad_by_freq=True` needs "
            "`sparse=False` (torch raises in the backward pass)."
        )
    _check_in_range(indices, num, "input")
    return _lookup(weight, indices, -1 if pad is None else pad, bool(scale_grad_by_freq), mn, nt)


def _one_hot_dtype() -> Any:
    return jnp.int64 if jax.config.read("jax_enable_x64") else jnp.int32


def one_hot(input: jax.Array, num_classes: int = -1) -> jax.Array:
    r"""``torch.nn.functional.one_hot``: :math:`y[\ldots, c] = 1` if ``input[...] == c`` else 0.

    Args:
      input: integer class indices of any shape ``(*)`` (torch requires int64; any JAX integer
        dtype is accepted here, since int32 is JAX's default integer). torch's docstring names it
        ``tensor``, but its argument parser accepts only ``input=`` as a keyword; so does jaxnn.
      num_classes: the number of classes; ``-1`` (torch's default) infers ``max(input) + 1``, which
        needs a concrete ``input``: under ``jit`` pass it explicitly.

    Returns:
      ``(*, num_classes)``, int64 with ``jax_enable_x64`` and int32 otherwise (torch: int64).

    Raises:
      TypeError: a non-integer (or boolean) ``input`` (torch: "one_hot is only applicable to index
      tensor of type LongTensor"). ValueError, as torch's errors: a negative class value; a value
      ``>= num_classes`` (also any ``num_classes`` below 1 for a non-empty tensor); an empty tensor
      with ``num_classes <= 0``; ``num_classes=-1`` under ``jit``. Under ``jit`` the values cannot be
      checked: a value outside ``[0, num_classes)`` gives a row of zeros.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.one_hot(jnp.array([0, 2]))
      Array([[1, 0, 0],
             [0, 0, 1]], dtype=int32)
    """
    check_array(input, "input")
    dt = jnp.result_type(input)
    if not jnp.issubdtype(dt, jnp.integer):
        raise TypeError(
            f"one_hot is only applicable to integer index tensors (torch: LongTensor), got `input` of dtype {dt}."
        )
    if not is_int(num_classes):
        raise TypeError(f"`num_classes` must be an int, got {num_classes!r}.")
    tensor = jnp.asarray(input)
    num_classes = int(num_classes)
    if tensor.size == 0:
        if num_classes <= 0:
            raise ValueError(
                f"Can not infer total number of classes from empty tensor: pass `num_classes` > 0 "
                f"(got {num_classes})."
            )
        return jnp.zeros(tensor.shape + (num_classes,), _one_hot_dtype())
    if _is_concrete(tensor):
        values = np.asarray(tensor)
        if values.min() < 0:
            raise ValueError(f"Class values must be non-negative: `input` holds {int(values.min())}.")
        if num_classes == -1:
            num_classes = int(values.max()) + 1
        elif num_classes <= values.max():
            raise ValueError(
                f"Class values must be smaller than num_classes: `input` holds {int(values.max())}, "
                f"`num_classes` is {num_classes}."
            )
    elif num_classes == -1:
        raise ValueError(
            "one_hot with `num_classes=-1` infers the class count from the values, which are not known under "
            "jit/vmap: pass `num_classes` explicitly."
        )
    elif num_classes <= 0:
        raise ValueError(
            f"Class values must be smaller than num_classes: `num_classes` is {num_classes}, and class values "
            "are non-negative."
        )
    classes = jnp.arange(num_classes, dtype=tensor.dtype).reshape((1,) * tensor.ndim + (num_classes,))
    return (tensor[..., None] == classes).astype(_one_hot_dtype())
