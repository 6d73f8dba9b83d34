"""Scaled dot-product attention with torch.nn.functional's signature, layout and masking rules."""

from __future__ import annotations

import contextlib
import functools
import math
import typing
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import check_float, is_int, shape_str, stat_dtype
from . import _activation as _act
from . import _norm as _lin
from ._dropout import dropout, dropout_scale


def _sdpa_dropout_p(p: Any) -> float:
    """torch's rule for ``dropout_p`` of scaled_dot_product_attention: above 1 is an error; a
    negative value is accepted and means no dropout (torch applies dropout only for ``p > 0``)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"`dropout_p` must be a float, got {p!r}.")
    if p > 1.0 or p != p:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _broadcast(a: tuple[int, ...], b: tuple[int, ...], what: str) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(
            f"the batch dimensions of {what} must broadcast (as torch.matmul's do), got "
            f"{shape_str(a)} and {shape_str(b)}."
        ) from None


def _repeat_heads(x: jax.Array, heads: int, name: str) -> jax.Array:
    h = x.shape[-3]
    if h == 0 or heads % h:
        raise ValueError(
            f"Number of heads in key and value must divide the number of heads in query: `{name}` has {h} "
            f"heads (dimension -3), `query` has {heads}."
        )
    return x if h == heads else jnp.repeat(x, heads // h, axis=-3)  # repeat_interleave


def scaled_dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    attn_mask: jax.Array | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    *,
    scale: float | None = None,
    enable_gqa: bool = False,
    rng: jax.Array | None = None,
) -> jax.Array:
    r"""``torch.nn.functional.scaled_dot_product_attention``: softmax attention in torch's layout.

    .. math::

        \mathrm{out} = \mathrm{dropout}\big(\mathrm{softmax}(s \, Q K^T + M)\big) \, V

    with :math:`Q` = ``query``, :math:`K` = ``key``, :math:`V` = ``value``, :math:`s` = ``scale`` and
    :math:`M` the additive mask: ``attn_mask`` itself when it is a float array, ``0`` where a
    boolean ``attn_mask`` is True and :math:`-\infty` where it is False, or the causal mask.
    A query row whose scores are all :math:`-\infty` (it may attend to no key) gives exactly 0, as
    torch's safe softmax does, and gets zero gradients.

    This is the plain formula, computed in float32 for float16/bfloat16 inputs (scores, softmax
    statistics, dropout and the product with ``value``) and rounded once to the input dtype, as
    torch's reference ("math") kernel does.

    Large inputs take a memory-bounded ("chunked", flash-attention-2 style) path automatically:
    when the plain path's scores, broadcast batch :math:`\times L \times S` in the statistics
    dtype, would exceed ``CHUNK_MIN_SCORE_BYTES`` (8 MiB, the measured CPU crossover; e.g. 8 heads
    of 512 x 512 float32 scores; on a GPU ``CHUNK_MIN_SCORE_BYTES_GPU``, 1 GiB, where the plain
    path measured faster at every size), ``S > CHUNK_BLOCK_K`` (512; fewer keys keep the plain scores at
    ``L x block`` already, e.g. cross-attention over 77 text tokens) and ``dropout_p <= 0``.
    Query blocks of ``CHUNK_BLOCK_Q`` rows are processed one after another (``lax.map``), each
    scanning key blocks of ``CHUNK_BLOCK_K`` with an online softmax (running maximum, sum and
    output, rescaled per block); block sizes need not divide ``L`` or ``S``. The masks (boolean,
    additive, causal, fully masked rows = 0) are applied per block with the plain path's
    operations, so peak memory grows with
    ``batch x CHUNK_BLOCK_Q x CHUNK_BLOCK_K`` plus the inputs, not with ``L x S``. Its gradient
    is a custom VJP that stores only the output and each row's log-sum-exp and recomputes the
    probabilities block by block (one pass over query blocks for ``query`` and a float mask, one
    over key blocks for ``key`` and ``value``). The two paths compute the same float32 (float64
    for float64 inputs) quantities, summed in a different order: results and gradients agree to
    float32 rounding (about 1e-6 relative of the summed terms); half-precision results are both
    rounded once from float32, so they agree exactly or differ by one unit in the last place where
    the float32 values straddle a rounding boundary (more only where a sum cancels far below its
    terms, as gradients can: then by the float32 rounding of the terms). With ``dropout_p > 0``
    the plain path is always used (its dropout mask is drawn for the whole score array at once),
    as with a traced ``scale``. The chunked path's derivative is reverse-mode only (a
    ``jax.custom_vjp``): ``jax.jvp``/``jax.jacfwd`` through it raise JAX's custom_vjp error.

    On a GPU, float16/bfloat16 inputs of shape ``(N, heads, L, E)`` (one batch and head count
    for all three, ``E == Ev`` a multiple of 8 up to 128) with no ``attn_mask``, no dropout and
    ``is_causal`` only for ``L == S`` take the backend XLA offers there: cuDNN's fused flash
    attention through ``jax.nn.dot_product_attention(implementation="cudnn")`` (forward and
    gradient), in the ``(N, L, heads, E)`` layout it takes. Like torch's own fused CUDA kernels it
    rounds the attention weights to the half type before the product with ``value``, so its
    results differ from the plain path's by up to about one eps of ``max |value|`` (measured on
    an H200 at 4096-16384 tokens: 0.01 bfloat16 eps against the float32 result; the gradient test
    in tests/test_attention_chunked.py runs where a GPU is, e.g. benchmarks/gpu_check.sh). Where
    jax refuses the inputs (an older cuDNN or GPU) the plain/chunked path is taken; float32 never
    takes it.

    Args:
      query: ``(..., L, E)``; the leading dims are usually ``(N, heads)``.
      key: ``(..., S, E)``.
      value: ``(..., S, Ev)``. The leading dims of the three broadcast as torch.matmul's do.
      attn_mask: optional, broadcastable to the scores ``(..., L, S)`` (it may not enlarge them):
        boolean, True = may attend (the opposite of ``nn.MultiheadAttention``'s boolean masks), or
        float (float32 or ``query``'s dtype), added to the scores.
      dropout_p: dropout probability on the attention weights (applied whenever ``> 0``: torch's
        function has no ``training`` switch); kept weights are scaled by :math:`1/(1 - p)`.
      is_causal: mask with ``ones(L, S).tril()``: query ``i`` sees keys ``0..i``, aligned top-left
        when ``L != S``. An error together with ``attn_mask``.
      scale: keyword-only, as in torch; default :math:`1/\sqrt{E}`.
      enable_gqa: keyword-only; repeat the key/value heads (dim -3) to ``query``'s head count,
        each head repeated consecutively (``repeat_interleave``).
      rng: keyword-only JAX PRNG key for the dropout mask; required when ``0 < dropout_p < 1``.

    Returns:
      ``(..., L, Ev)`` in the inputs' dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> q = k = v = jnp.ones((2, 4, 3, 8))  # (N, heads, L, E)
      >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
      (2, 4, 3, 8)
      >>> mask = jnp.array([[True, False], [False, False]])  # the second query attends to nothing
      >>> F.scaled_dot_product_attention(jnp.ones((2, 1)), jnp.ones((2, 1)), jnp.ones((2, 1)), mask)
      Array([[1.],
             [0.]], dtype=float32)

    Differences from PyTorch:
      The dropout mask comes from ``rng`` (JAX's explicit randomness), not torch's global generator.
      torch's fused CPU/GPU kernels (used for some 4-D inputs) round the attention weights to
      float16/bfloat16 before multiplying by ``value``; jaxnn keeps them in float32, as torch's
      reference kernel does, so half-precision results can differ from the fused kernels by about
      one unit in the last place (of ``max |value|``). ``jax.nn.dot_product_attention`` differs in
      layout ``(B, T, heads, H)`` and gives the mean of ``value`` for a fully masked row.
    """
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_float(x, name)
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ValueError(
            "Expected query, key, and value to all be at least 2 dimensional, but got query.dim: "
            f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead."
        )
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(
            "Expected query, key, and value to have the same dtype, but got query.dtype: "
            f"{query.dtype} key.dtype: {key.dtype} and value.dtype: {value.dtype} instead."
        )
    p = _sdpa_dropout_p(dropout_p)
    dtype = query.dtype
    L, E = query.shape[-2:]
    S = key.shape[-2]
    if key.shape[-1] != E:
        raise ValueError(
            f"`key`'s last dimension ({key.shape[-1]}) must equal `query`'s ({E}); shapes "
            f"{shape_str(query.shape)} and {shape_str(key.shape)}."
        )
    if value.shape[-2] != S:
        raise ValueError(
            f"`value` must have as many positions (dimension -2) as `key` ({S}), got shape "
            f"{shape_str(value.shape)}."
        )
    if enable_gqa:
        if min(query.ndim, key.ndim, value.ndim) < 3:
            raise ValueError("`enable_gqa=True` needs a heads dimension (-3) in query, key and value.")
        key = _repeat_heads(key, query.shape[-3], "key")
        value = _repeat_heads(value, query.shape[-3], "value")
    scores_batch = _broadcast(query.shape[:-2], key.shape[:-2], "query and key")
    out_batch = _broadcast(scores_batch, value.shape[:-2], "the scores and value")
    scores_shape = scores_batch + (L, S)
    if attn_mask is not None:
        check_array_mask(attn_mask, dtype)
        if is_causal:
            raise ValueError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
        if attn_mask.ndim > len(scores_shape) or _try_broadcast(attn_mask.shape, scores_shape) != scores_shape:
            raise ValueError(
                f"`attn_mask` of shape {shape_str(attn_mask.shape)} must broadcast to the scores' shape "
                f"{shape_str(scores_shape)} (..., L, S)."
            )
    acc = stat_dtype(dtype)
    if _use_fused(query, key, value, attn_mask, p, is_causal, scale):
        out = _fused_sdpa(query, key, value, is_causal, scale)
        if out is not None:
            return out
    if _use_chunked(p, L, S, E, scale, scores_batch, acc, query, key, value):
        return _chunked_sdpa(query, key, value, attn_mask, is_causal, scale, out_batch, acc).astype(dtype)
    q = jnp.broadcast_to(jnp.asarray(query, acc), scores_batch + (L, E))
    k = jnp.broadcast_to(jnp.asarray(key, acc), scores_batch + (S, E))
    if E == 0:  # an empty dot product: zero scores (torch scales q and k, never 0 * inf)
        s = jnp.zeros(scores_shape, acc)
    else:
        s = jnp.einsum("...le,...se->...ls", q, k) * jnp.asarray(
            1.0 / math.sqrt(E) if scale is None else scale, acc)
    if is_causal:
        attn_mask = jnp.tril(jnp.ones((L, S), bool))
    if attn_mask is not None:
        if attn_mask.dtype == jnp.bool_:
            add = jnp.where(attn_mask, jnp.zeros((), acc), jnp.asarray(-jnp.inf, acc))
        else:
            add = jnp.asarray(attn_mask).astype(jnp.promote_types(acc, attn_mask.dtype))
        s = s + jnp.broadcast_to(add, scores_shape)
    weights = _safe_softmax(s)
    if p > 0.0:
        if p >= 1.0:
            weights = weights * jnp.zeros((), weights.dtype)
        else:
            if rng is None:
                raise ValueError(
                    "scaled_dot_product_attention with 0 < dropout_p < 1 needs a PRNG key: pass "
                    "`rng=jax.random.key(seed)` (or dropout_p=0.0 for inference)."
                )
            keep = jax.random.bernoulli(rng, 1.0 - p, weights.shape)
            weights = jnp.where(keep, weights * dropout_scale(p, weights.dtype), jnp.zeros((), weights.dtype))
    weights = jnp.broadcast_to(weights, out_batch + (L, S))
    v = jnp.broadcast_to(jnp.asarray(value, weights.dtype), out_batch + value.shape[-2:])
    return jnp.einsum("...ls,...sd->...ld", weights, v).astype(dtype)


# ---------------------------------------------------------------------------------------------
# The chunked ("flash") path: online softmax over key blocks, query blocks one at a time.
# ---------------------------------------------------------------------------------------------

#: Query and key block sizes of the chunked path (rows of Q and of K per step).
CHUNK_BLOCK_Q = 512
CHUNK_BLOCK_K = 512
#: The chunked path is taken when the plain path's score array (broadcast batch x L x S in the
#: statistics dtype) would exceed this many bytes. Measured on the 2-core CPU, float32, E = 64,
#: forward / gradient: (4, 8, 128, 128) scores (2 MiB) plain 2.4 / 6.2 ms, chunked 2.7 / 17 ms;
#: (4, 8, 256, 256) (8 MiB) plain 19 / 71 ms, chunked 16 / 45 ms; (1, 8, 2048, 2048) (128 MiB)
#: plain 668 / 2135 ms, chunked 264 / 1407 ms. The crossover lies between 2 and 8 MiB.
CHUNK_MIN_SCORE_BYTES = 8 * 2**20
#: On a GPU the threshold is 1 GiB of scores: measured on one H200 (float32, head dim 64, 8 heads,
#: forward), the plain path is 2.0x / 1.5x / 2.3x faster than the chunked one at 512 MiB / 1 GiB /
#: 8 GiB of scores ((1|2, 8, 4096, 64), (1, 8, 16384, 64): plain 1.2 / 2.1 / 14.6 ms, chunked 2.4 /
#: 3.2 / 33.3 ms; torch's CUDA SDPA 1.3 / 2.2 / 16.1 ms), so only memory bounds it there.
CHUNK_MIN_SCORE_BYTES_GPU = 2**30

_PATH: dict[str, Any] = {"path": None, "block_q": None, "block_k": None}


@contextlib.contextmanager
def _sdpa_path(path: str | None, *, block_q: int | None = None, block_k: int | None = None) -> Iterator[None]:
    """Private, for tests and benchmarks: force ``scaled_dot_product_attention``'s ``"plain"`` or
    ``"chunked"`` path, or ``"fused"`` (the GPU cuDNN path where its conditions hold, else the
    plain path), ``None``: the automatic choice, and the chunked path's block sizes, for the
    calls TRACED inside the ``with`` block. jit caches on the function object: a function
    already traced keeps the path it was traced with, so trace a fresh function inside the block.
    ``dropout_p > 0``, a traced ``scale`` and empty ``L``/``S``/``E`` take the plain path anyway."""
    if path not in (None, "plain", "chunked", "fused"):
        raise ValueError(f"`path` must be None, 'plain', 'chunked' or 'fused', got {path!r}.")
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if b is not None and (not is_int(b) or b < 1):
            raise ValueError(f"`{name}` must be a positive int, got {b!r}.")
    old = dict(_PATH)
    _PATH.update(path=path, block_q=block_q, block_k=block_k)
    try:
        yield
    finally:
        _PATH.update(old)


#: Largest head dim sent to cuDNN's flash attention (multiples of 8; jax allows 128 before Hopper,
#: 256 on Hopper: 128 keeps one rule for every GPU).
FUSED_MAX_HEAD_DIM = 128


def _on_gpu(*xs: Any) -> bool:
    """Whether the arrays live on a GPU: a concrete array's own devices, a traced one's JAX
    default backend (where ``jit`` places computations unless told otherwise)."""
    if not xs:
        return jax.default_backend() == "gpu"
    for x in xs:
        try:
            devices = x.devices()
        except (jax.errors.ConcretizationTypeError, AttributeError):  # traced (or not a jax.Array)
            return jax.default_backend() == "gpu"
        if any(d.platform != "gpu" for d in devices):
            return False
    return True


def _use_fused(query: Any, key: Any, value: Any, attn_mask: Any, p: float, is_causal: bool, scale: Any) -> bool:
    """The GPU fused path (``jax.nn.dot_product_attention(implementation="cudnn")``) is taken for
    float16/bfloat16 4-D ``(N, heads, L, E)`` inputs of one batch and head count, no ``attn_mask``,
    no dropout, ``is_causal`` only with ``L == S`` (cuDNN's causal mask is the top-left one only
    then), head dim a multiple of 8 up to 128 (``E == Ev``) and a static ``scale``: there cuDNN's
    numbers agree with the plain path's to half-precision rounding (measured on an H200);
    everything else keeps the plain or chunked path."""
    if _PATH["path"] in ("plain", "chunked"):  # forced "fused" still needs everything below
        return False
    if p > 0.0 or attn_mask is not None or query.dtype not in (jnp.float16, jnp.bfloat16):
        return False
    if not query.ndim == key.ndim == value.ndim == 4 or not query.shape[:2] == key.shape[:2] == value.shape[:2]:
        return False
    L, E = query.shape[-2:]
    S, Ev = value.shape[-2:]
    if E != Ev or E % 8 or not 0 < E <= FUSED_MAX_HEAD_DIM or min(L, S) == 0 or (is_causal and L != S):
        return False
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float, np.number))):
        return False
    return _on_gpu(query, key, value)


def _fused_sdpa(query: jax.Array, key: jax.Array, value: jax.Array, is_causal: bool, scale: Any) -> jax.Array | None:
    """cuDNN's flash attention through ``jax.nn.dot_product_attention`` (layout ``(N, L, heads,
    E)``), or None where jax refuses these inputs at trace time (an older cuDNN, an unsupported
    GPU): the caller then takes the plain or chunked path."""
    try:
        out = jax.nn.dot_product_attention(
            query.swapaxes(1, 2), key.swapaxes(1, 2), value.swapaxes(1, 2), is_causal=is_causal,
            scale=None if scale is None else float(scale), implementation="cudnn")
    except Exception:  # jax raises RuntimeError/ValueError/NotImplementedError for unsupported set-ups
        return None
    return out.swapaxes(1, 2)


def _use_chunked(p: float, L: int, S: int, E: int, scale: Any, scores_batch: tuple[int, ...], acc: Any,
                 *arrays: Any) -> bool:
    if p > 0.0 or min(L, S, E) == 0:  # dropout: the plain path's mask stream; empty: nothing to chunk
        return False
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float, np.number))):
        return False  # a traced scale: the chunked path's block geometry is static
    if _PATH["path"] is not None:
        return _PATH["path"] == "chunked"
    # with S <= CHUNK_BLOCK_K the plain scores are already L x block (and its gradient is faster:
    # (2, 8, 4096, 40) x 77 keys, plain 134 ms, chunked 186 ms)
    if S <= CHUNK_BLOCK_K:
        return False
    limit = CHUNK_MIN_SCORE_BYTES_GPU if _on_gpu(*arrays) else CHUNK_MIN_SCORE_BYTES
    return math.prod(scores_batch) * L * S * jnp.dtype(acc).itemsize > limit


def _lead(x: jax.Array, nb: int) -> jax.Array:
    """``x`` (a 2-D (rows, cols) index pattern) with ``nb`` leading unit dims (strict rank promotion)."""
    return x.reshape((1,) * nb + x.shape)


def _split_blocks(x: jax.Array, axis: int, b: int, n: int, fill: float = 0.0) -> jax.Array:
    """Pad ``axis`` to ``n * b`` (with ``fill``) and split it into ``n`` blocks of ``b``, the block
    index first."""
    pad = n * b - x.shape[axis]
    if pad:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, pad)
        x = jnp.pad(x, widths, constant_values=jnp.asarray(fill, x.dtype))
    x = x.reshape(x.shape[:axis] + (n, b) + x.shape[axis + 1:])
    return jnp.moveaxis(x, axis, 0)


def _join_blocks(x: jax.Array, axis: int, size: int) -> jax.Array:
    """Inverse of :func:`_split_blocks`: ``x`` is ``(n, ..., b, ...)`` with ``b`` at ``axis``
    (negative, counted from the end), joined into ``size`` (padding cropped)."""
    axis = x.ndim - 1 + axis
    x = jnp.moveaxis(x, 0, axis)
    x = x.reshape(x.shape[:axis] + (x.shape[axis] * x.shape[axis + 1],) + x.shape[axis + 2:])
    return lax.slice_in_dim(x, 0, size, axis=axis)


def _sum_to(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    axes = tuple(a for a, (n, m) in enumerate(zip(x.shape, shape, strict=True)) if m == 1 and n != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


class _Geometry(NamedTuple):
    causal: bool
    scale: float
    L: int
    S: int
    bq: int
    bk: int


def _block_scores(g: _Geometry, qi: jax.Array, kj: jax.Array, mi: jax.Array | None, i: Any, j: Any) -> jax.Array:
    """The plain path's masked scores for query block ``i`` and key block ``j``, in the same
    operations and order (product, scale, mask added); padded keys are -inf."""
    acc = qi.dtype
    nb = qi.ndim - 2
    s = jnp.einsum("...qe,...ke->...qk", qi, kj) * jnp.asarray(g.scale, acc)
    if mi is not None:
        mblk = mi if mi.shape[-1] == 1 else lax.dynamic_slice_in_dim(mi, j * g.bk, g.bk, axis=-1)
        if mblk.dtype == jnp.bool_:
            s = s + jnp.where(mblk, jnp.zeros((), acc), jnp.asarray(-jnp.inf, acc))
        else:
            s = s + mblk.astype(jnp.promote_types(acc, mblk.dtype))
    kidx = j * g.bk + lax.broadcasted_iota(jnp.int32, (1, g.bk), 1)
    if g.causal:
        qidx = i * g.bq + lax.broadcasted_iota(jnp.int32, (g.bq, 1), 0)
        s = s + _lead(jnp.where(kidx <= qidx, jnp.zeros((), acc), jnp.asarray(-jnp.inf, acc)), nb)
    if g.S % g.bk:
        s = jnp.where(_lead(kidx < g.S, nb), s, jnp.asarray(-jnp.inf, s.dtype))
    return s


def _mask_rows(mask: jax.Array | None, g: _Geometry, nq: int, nk: int) -> jax.Array | None:
    """The mask as ``(nq, ..., bq or 1, Sp or 1)`` row blocks (padded: False / 0)."""
    if mask is None:
        return None
    if mask.shape[-1] != 1:
        mask = jnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, nk * g.bk - g.S)])
    if mask.shape[-2] == 1:
        return jnp.broadcast_to(mask[None], (nq,) + mask.shape)
    return _split_blocks(mask, mask.ndim - 2, g.bq, nq)


def _flash_forward(g: _Geometry, q, k, v, mask):
    nq, nk = -(-g.L // g.bq), -(-g.S // g.bk)
    qb = _split_blocks(q, q.ndim - 2, g.bq, nq)
    kb = _split_blocks(k, k.ndim - 2, g.bk, nk)
    vb = _split_blocks(v, v.ndim - 2, g.bk, nk)
    mrows = _mask_rows(mask, g, nq, nk)
    acc = q.dtype
    batch = q.shape[:-2]

    def query_block(args):
        qi, mi, i = args

        def step(carry, xs):
            m, l, o = carry
            kj, vj, j = xs
            s = _block_scores(g, qi, kj, mi, i, j)
            m_new = jnp.maximum(m, jnp.max(s, axis=-1))
            m_safe = jnp.where(jnp.isfinite(m_new), m_new, jnp.zeros((), acc))
            p = jnp.exp(s - m_safe[..., None])
            corr = jnp.exp(m - m_safe)
            l = l * corr + jnp.sum(p, axis=-1)
            o = o * corr[..., None] + jnp.einsum("...qk,...kd->...qd", p, vj)
            return (m_new, l, o), None

        init = (jnp.full(batch + (g.bq,), -jnp.inf, acc), jnp.zeros(batch + (g.bq,), acc),
                jnp.zeros(batch + (g.bq, v.shape[-1]), acc))
        (m, l, o), _ = lax.scan(step, init, (kb, vb, jnp.arange(nk)))
        dead = l == 0  # every score -inf: torch's safe softmax gives 0
        out = jnp.where(dead[..., None], jnp.zeros((), acc), o / jnp.where(dead, jnp.ones((), acc), l)[..., None])
        m_safe = jnp.where(jnp.isfinite(m), m, jnp.zeros((), acc))
        lse = jnp.where(dead, jnp.asarray(jnp.inf, acc), m_safe + jnp.log(jnp.where(dead, jnp.ones((), acc), l)))
        return out, lse

    xs = (qb, mrows, jnp.arange(nq))
    out, lse = lax.map(query_block, xs)
    return _join_blocks(out, -2, g.L), _join_blocks(lse, -1, g.L)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _flash(g: _Geometry, q, k, v, mask):
    return _flash_forward(g, q, k, v, mask)[0]


def _flash_fwd(g: _Geometry, q, k, v, mask):
    out, lse = _flash_forward(g, q, k, v, mask)
    return out, (q, k, v, mask, out, lse)


def _flash_bwd(g: _Geometry, res, dout):
    """Flash-attention-2's backward: recompute each block's probabilities from the stored
    log-sum-exp, ``dS = P * (dP - rowsum(dO * O))``; one pass over query blocks for ``dq`` (and a
    float mask's gradient), one over key blocks for ``dk``, ``dv``."""
    q, k, v, mask, out, lse = res
    acc = q.dtype
    nq, nk = -(-g.L // g.bq), -(-g.S // g.bk)
    delta = jnp.sum(dout * out, axis=-1)
    qb = _split_blocks(q, q.ndim - 2, g.bq, nq)
    gb = _split_blocks(dout, dout.ndim - 2, g.bq, nq)
    # padded query rows get lse = +inf, so P = 0 there: their scores are not bounded by any lse (a
    # row-broadcast float mask of 100 gave exp(100) = inf, then inf * 0 = nan in dk, dv, dmask)
    lb = _split_blocks(lse, lse.ndim - 1, g.bq, nq, fill=jnp.inf)
    db = _split_blocks(delta, delta.ndim - 1, g.bq, nq)
    kb = _split_blocks(k, k.ndim - 2, g.bk, nk)
    vb = _split_blocks(v, v.ndim - 2, g.bk, nk)
    mrows = _mask_rows(mask, g, nq, nk)
    float_mask = mask is not None and mask.dtype != jnp.bool_
    sc = jnp.asarray(g.scale, acc)

    def probs(qi, gi, li, di, mi, i, kj, vj, j):
        s = _block_scores(g, qi, kj, mi, i, j)
        p = jnp.exp(s - li[..., None]).astype(acc)  # a dead row has lse = +inf: P = 0
        dp = jnp.einsum("...qd,...kd->...qk", gi, vj)
        return p, p * (dp - di[..., None])

    def dq_block(args):
        qi, gi, li, di, mi, i = args

        def step(dq, xs):
            kj, vj, j = xs
            _, ds = probs(qi, gi, li, di, mi, i, kj, vj, j)
            dq = dq + jnp.einsum("...qk,...ke->...qe", ds * sc, kj)
            if not float_mask:
                return dq, None
            mshape = mi.shape[:-2] + (mi.shape[-2], g.bk if mi.shape[-1] != 1 else 1)
            return dq, _sum_to(ds, mshape).astype(mi.dtype)

        dq, dm = lax.scan(step, jnp.zeros_like(qi), (kb, vb, jnp.arange(nk)))
        if dm is not None:
            dm = jnp.sum(dm, axis=0) if mi.shape[-1] == 1 else _join_blocks(dm, -1, mi.shape[-1])
        return dq, dm

    dqb, dmb = lax.map(dq_block, (qb, gb, lb, db, mrows, jnp.arange(nq)))
    dq = _join_blocks(dqb, -2, g.L)

    def dkv_block(args):
        kj, vj, j = args

        def step(carry, xs):
            dk, dv = carry
            qi, gi, li, di, mi, i = xs
            p, ds = probs(qi, gi, li, di, mi, i, kj, vj, j)
            dv = dv + jnp.einsum("...qk,...qd->...kd", p, gi)
            dk = dk + jnp.einsum("...qk,...qe->...ke", ds * sc, qi)
            return (dk, dv), None

        (dk, dv), _ = lax.scan(step, (jnp.zeros_like(kj), jnp.zeros_like(vj)),
                               (qb, gb, lb, db, mrows, jnp.arange(nq)))
        return dk, dv

    dkb, dvb = lax.map(dkv_block, (kb, vb, jnp.arange(nk)))
    dk = _join_blocks(dkb, -2, g.S)
    dv = _join_blocks(dvb, -2, g.S)
    if mask is None:
        dmask = None
    elif not float_mask:
        dmask = np.zeros(mask.shape, jax.dtypes.float0)
    else:
        dmb = typing.cast(jax.Array, dmb)
        dmask = jnp.sum(dmb, axis=0) if mask.shape[-2] == 1 else _join_blocks(dmb, -2, g.L)
        dmask = lax.slice_in_dim(dmask, 0, mask.shape[-1], axis=-1).astype(mask.dtype)
    return dq, dk, dv, dmask


_flash.defvjp(_flash_fwd, _flash_bwd)


def _chunked_sdpa(query, key, value, attn_mask, is_causal, scale, out_batch, acc) -> jax.Array:
    """The chunked path: ``query``/``key``/``value`` broadcast to the output's batch dims (linear
    in L and S), the mask kept in its own (broadcastable) shape and sliced per block."""
    L, E = query.shape[-2:]
    S = key.shape[-2]
    nb = len(out_batch)
    q = jnp.broadcast_to(jnp.asarray(query, acc), out_batch + (L, E))
    k = jnp.broadcast_to(jnp.asarray(key, acc), out_batch + (S, E))
    v = jnp.broadcast_to(jnp.asarray(value, acc), out_batch + value.shape[-2:])
    mask = None
    if attn_mask is not None:
        mask = jnp.asarray(attn_mask)
        mask = mask.reshape((1,) * (nb + 2 - mask.ndim) + mask.shape)
    bq = min(_PATH["block_q"] or CHUNK_BLOCK_Q, L)
    bk = min(_PATH["block_k"] or CHUNK_BLOCK_K, S)
    g = _Geometry(bool(is_causal), float(1.0 / math.sqrt(E) if scale is None else scale), L, S, bq, bk)
    return _flash(g, q, k, v, mask)


def _try_broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def check_array_mask(mask: Any, dtype: Any) -> None:
    """torch's rule: a boolean mask, or a float one (float32 or the query's dtype)."""
    if not (hasattr(mask, "shape") and hasattr(mask, "dtype")):
        raise TypeError(f"`attn_mask` must be an array, got {type(mask).__name__}.")
    if mask.dtype not in (jnp.dtype(jnp.bool_), jnp.dtype(jnp.float32), jnp.dtype(dtype)):
        raise TypeError(
            "Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: "
            f"{mask.dtype} and query.dtype: {jnp.dtype(dtype)} instead."
        )


def _safe_softmax(s: jax.Array) -> jax.Array:
    """Softmax over the last axis; a row of all :math:`-\\infty` gives 0 (torch's ``_safe_softmax``)."""
    m = jnp.max(s, axis=-1, keepdims=True, initial=-jnp.inf)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros((), s.dtype)))
    e = jnp.exp(s - m)
    d = jnp.sum(e, axis=-1, keepdims=True)
    dead = jnp.all(s == -jnp.inf, axis=-1, keepdims=True)
    return jnp.where(dead, jnp.zeros((), s.dtype), e / jnp.where(dead, jnp.ones((), s.dtype), d))


def _canonical_mask(mask: Any, name: str, dtype: Any) -> jax.Array | None:
    """torch's ``_canonical_mask`` for nn.MultiheadAttention: a boolean mask (True = masked out)
    becomes ``-inf``/``0`` in ``dtype``; a float mask is added as it is."""
    if mask is None:
        return None
    if not (hasattr(mask, "shape") and hasattr(mask, "dtype")):
        raise TypeError(f"`{name}` must be an array, got {type(mask).__name__}.")
    if mask.dtype == jnp.bool_:
        return jnp.where(mask, jnp.asarray(-jnp.inf, dtype), jnp.zeros((), dtype))
    if not jnp.issubdtype(mask.dtype, jnp.floating):
        raise TypeError(f"only bool and floating types of {name} are supported, got {mask.dtype}.")
    return jnp.asarray(mask).astype(dtype)


def _pad_last(x: jax.Array | None) -> jax.Array | None:
    return None if x is None else jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, 1)])


def multi_head_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    num_heads: int,
    q_proj_weight: jax.Array,
    k_proj_weight: jax.Array,
    v_proj_weight: jax.Array,
    q_proj_bias: jax.Array | None,
    k_proj_bias: jax.Array | None,
    v_proj_bias: jax.Array | None,
    bias_k: jax.Array | None,
    bias_v: jax.Array | None,
    add_zero_attn: bool,
    dropout_p: float,
    key_padding_mask: jax.Array | None,
    need_weights: bool,
    attn_mask: jax.Array | None,
    average_attn_weights: bool,
    is_causal: bool,
    rng: jax.Array | None,
    static_k: jax.Array | None = None,
    static_v: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array | None]:
    """``torch.nn.functional.multi_head_attention_forward`` up to, not including, the output
    projection (the caller applies ``out_proj``, a Linear). Layout ``(L, N, E)`` or unbatched
    ``(L, E)``; masks as torch's: boolean True = masked out, or float added to the scores.

    Returns the attention output before ``out_proj`` (the input's layout) and the weights
    ``(N, L, S)`` (averaged over heads) or ``(N, heads, L, S)``, or None without ``need_weights``.
    """
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(
            "query, key and value must all be batched 3-D (L, N, E) or all unbatched 2-D (L, E), got shapes "
            f"{shape_str(query.shape)}, {shape_str(key.shape)}, {shape_str(value.shape)}."
        )
    batched = query.ndim == 3
    if not batched:
        query, key, value = query[:, None], key[:, None], value[:, None]
        if key_padding_mask is not None:
            if key_padding_mask.ndim != 1:
                raise ValueError(f"For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or "
                                 f"1-D but found {key_padding_mask.ndim}-D.")
            key_padding_mask = key_padding_mask[None]
    L, N, E = query.shape
    S = key.shape[0]
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(f"key shape {shape_str(key.shape)} does not match value shape {shape_str(value.shape)}.")
    if (static_k is None or static_v is None) and key.shape[1] != N:  # torch's k.view(S, N * heads, hd) fails
        raise ValueError(
            f"`key` and `value` must have `query`'s batch size {N}, got {key.shape[1]} (shapes in the (L, N, E) "
            f"layout: query {shape_str(query.shape)}, key {shape_str(key.shape)}, value {shape_str(value.shape)}).")
    mask_shapes = ", ".join(f"`{n}` of shape {tuple(m.shape)}" for n, m in (
        ("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)) if m is not None and hasattr(m, "shape"))
    if E % num_heads:
        raise ValueError(f"`embed_dim` (={E}) must be divisible by `num_heads` (={num_heads}).")
    H, hd = num_heads, E // num_heads
    dtype = query.dtype
    if is_causal and attn_mask is None:
        raise ValueError(
            "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
            "`generate_square_subsequent_mask` to create this mask."
        )
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", dtype)
    attn_mask = _canonical_mask(attn_mask, "attn_mask", dtype)
    use_causal = is_causal and key_padding_mask is None and not need_weights
    if use_causal:
        attn_mask = None  # torch passes is_causal to scaled_dot_product_attention instead of the mask
    S_kv = S if static_k is None else static_k.shape[1]  # torch checks the mask against the keys it attends to
    if key_padding_mask is not None:  # torch checks after padding for bias_k/bias_v and add_zero_attn
        pad = int(bias_k is not None and bias_v is not None) + int(bool(add_zero_attn))
        if key_padding_mask.ndim != 2:
            raise ValueError(
                f"For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D (N, S) = {(N, S_kv)} "
                f"(True = ignored key), but found a {key_padding_mask.ndim}-D mask of shape "
                f"{tuple(key_padding_mask.shape)}.")
        if key_padding_mask.shape[0] != N:
            raise ValueError(
                f"Expected key_padded_mask.shape[0] to be {N}, but got {key_padding_mask.shape[0]} (the "
                f"key_padding_mask shape must be (N, S) = {(N, S_kv)}, got {tuple(key_padding_mask.shape)})."
            )
        if key_padding_mask.shape[1] != S_kv:
            raise ValueError(
                f"Expected key_padded_mask.shape[1] to be {S_kv + pad}, but got {key_padding_mask.shape[1] + pad} "
                f"(the key_padding_mask shape must be (N, S) = {(N, S_kv)}, got {tuple(key_padding_mask.shape)})."
            )
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if attn_mask.shape != (L, S):
                raise ValueError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be {(L, S)}.")
            attn_mask = attn_mask[None]
        elif attn_mask.ndim == 3:
            if attn_mask.shape != (N * H, L, S):
                raise ValueError(
                    f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be {(N * H, L, S)}.")
        else:
            raise ValueError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    q = _lin.linear(query, q_proj_weight, q_proj_bias)
    k = _lin.linear(key, k_proj_weight, k_proj_bias)
    v = _lin.linear(value, v_proj_weight, v_proj_bias)
    if bias_k is not None and bias_v is not None:
        k = jnp.concatenate([k, jnp.broadcast_to(bias_k.astype(k.dtype), (1, N, E))], axis=0)
        v = jnp.concatenate([v, jnp.broadcast_to(bias_v.astype(v.dtype), (1, N, E))], axis=0)
        attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
    q = q.reshape(L, N * H, hd).transpose(1, 0, 2)
    k = k.reshape(k.shape[0], N * H, hd).transpose(1, 0, 2) if static_k is None else jnp.asarray(static_k)
    v = v.reshape(v.shape[0], N * H, hd).transpose(1, 0, 2) if static_v is None else jnp.asarray(static_v)
    if add_zero_attn:
        k = jnp.concatenate([k, jnp.zeros((N * H, 1, hd), k.dtype)], axis=1)
        v = jnp.concatenate([v, jnp.zeros((N * H, 1, hd), v.dtype)], axis=1)
        attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
    S2 = k.shape[1]
    if key_padding_mask is not None:
        kpm = jnp.broadcast_to(key_padding_mask[:, None, None, :], (N, H, 1, S2)).reshape(N * H, 1, S2)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if need_weights:
        scores = jnp.einsum("bld,bsd->bls", q * jnp.asarray(math.sqrt(1.0 / hd), dtype), k)
        if attn_mask is not None:
            scores = jnp.broadcast_to(attn_mask, scores.shape) + scores
        weights = _act.softmax(scores, -1)  # torch's plain softmax here: a fully masked row is nan
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p, rng=rng)
        out = jnp.einsum("bls,bsd->bld", weights, v).transpose(1, 0, 2).reshape(L, N, E)
        w: jax.Array | None = weights.reshape(N, H, L, S2)
        if average_attn_weights:
            w = jnp.mean(w, axis=1)
    else:
        if attn_mask is not None and attn_mask.shape[0] != 1 and N * H * S2 == 0:
            # torch's attn_mask.view(N, heads, -1, S) of a mask with no elements is ambiguous: it raises
            raise ValueError(
                f"with need_weights=False, a mask ({mask_shapes}) cannot be applied to an empty batch or key "
                f"sequence (N={N}, S={S2}): torch cannot reshape it and raises too. Skip the call for empty "
                "inputs, or pass need_weights=True.")
        if attn_mask is not None:
            attn_mask = attn_mask[None] if attn_mask.shape[0] == 1 else attn_mask.reshape(N, H, -1, S2)
        out = scaled_dot_product_attention(q.reshape(N, H, L, hd), k.reshape(N, H, S2, hd), v.reshape(N, H, S2, hd),
                                           attn_mask, dropout_p, use_causal, rng=rng)
        out = out.transpose(2, 0, 1, 3).reshape(L, N, E)
        w = None
    if not batched:
        out = out[:, 0]
        w = None if w is None else w[0]
    return out, w


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def multi_head_attention_forward(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: jax.Array | None,
    in_proj_bias: jax.Array | None,
    bias_k: jax.Array | None,
    bias_v: jax.Array | None,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: jax.Array,
    out_proj_bias: jax.Array | None,
    training: bool = True,
    key_padding_mask: jax.Array | None = None,
    need_weights: bool = True,
    attn_mask: jax.Array | None = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: jax.Array | None = None,
    k_proj_weight: jax.Array | None = None,
    v_proj_weight: jax.Array | None = None,
    static_k: jax.Array | None = None,
    static_v: jax.Array | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
    *,
    rng: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array | None]:
    r"""``torch.nn.functional.multi_head_attention_forward``: the forward pass of
    ``nn.MultiheadAttention`` (which :class:`jaxnn.nnx.MultiheadAttention` and
    :class:`jaxnn.linen.MultiheadAttention` compute with the same code).

    .. math::
        \mathrm{out} = \mathrm{concat}_h\big(\mathrm{softmax}(Q_h K_h^T / \sqrt{d} + M)\, V_h\big)
        W_o^T + b_o, \quad Q = q W_q^T + b_q,\ K = k W_k^T + b_k,\ V = v W_v^T + b_v

    with :math:`d = E / \text{num\_heads}`, the input projections taken from ``in_proj_weight``
    (rows ``[0, E)``, ``[E, 2E)``, ``[2E, 3E)``) or, with ``use_separate_proj_weight``, from
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``; ``in_proj_bias`` split in three alike.

    Args:
      query: ``(L, N, E)`` or unbatched ``(L, E)`` (sequence first, torch's layout).
      key, value: ``(S, N, kdim)``, ``(S, N, vdim)`` (or 2-D); without separate projection weights
        they must have the same shape.
      embed_dim_to_check: must equal ``E`` (query's last dim).
      num_heads: heads; ``E`` must be divisible by it.
      in_proj_weight, in_proj_bias: ``(3E, E)`` and ``(3E,)`` (or None).
      bias_k, bias_v: ``(1, 1, E)`` rows appended to the keys and values (both or neither).
      add_zero_attn: append a zero key and value (after ``bias_k``/``bias_v``).
      dropout_p: dropout on the attention weights, applied when ``training``.
      out_proj_weight, out_proj_bias: ``(E, E)`` and ``(E,)`` (or None).
      training: apply dropout (torch's default True).
      key_padding_mask: ``(N, S)`` (``(S,)`` unbatched), boolean True = ignored key, or float added.
      need_weights: return the attention weights.
      attn_mask: ``(L, S)`` or ``(N * num_heads, L, S)``, boolean True = masked out (the opposite of
        :func:`scaled_dot_product_attention`'s), or float added to the scores.
      use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight: as torch's.
      static_k, static_v: ``(N * num_heads, S', E / num_heads)`` projected keys/values used
        instead of projecting ``key``/``value``.
      average_attn_weights: average the returned weights over heads.
      is_causal: torch's hint; needs ``attn_mask``; used (instead of the mask) only without
        ``key_padding_mask`` and with ``need_weights=False``, as torch.
      rng: keyword-only PRNG key for the dropout; required when ``training`` and
        ``0 < dropout_p < 1``.

    Returns:
      ``(output, weights)``: output ``(L, N, E)`` (``(L, E)`` unbatched); weights ``(N, L, S)``
      averaged over heads, ``(N, num_heads, L, S)`` with ``average_attn_weights=False`` (without the
      batch dim unbatched), or None with ``need_weights=False``. A query row whose keys are all
      masked gives nan with ``need_weights=True`` (torch's plain softmax) and 0 without (torch's
      scaled_dot_product_attention).

    Raises:
      ValueError where torch raises AssertionError/RuntimeError: ranks, ``embed_dim_to_check``,
      divisibility, key/value shapes, missing projection weights, a lone ``bias_k``/``bias_v``,
      bias with ``static_k``/``static_v``, static shapes, mask shapes (a 3-D ``key_padding_mask``
      for a batched query), ``key``/``value`` of another batch size than ``query`` (unless both
      ``static_k`` and ``static_v`` replace them), ``is_causal`` without a mask, and a mask with an
      empty batch or key sequence when ``need_weights=False`` (torch cannot reshape it either).
      TypeError: masks of other dtypes than bool/floating.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> E, H = 4, 2
      >>> x = jnp.ones((3, 2, E))
      >>> out, w = F.multi_head_attention_forward(x, x, x, E, H, jnp.ones((3 * E, E)), None, None, None,
      ...                                         False, 0.0, jnp.eye(E), None)
      >>> out.shape, w.shape
      ((3, 2, 4), (2, 3, 3))

    Differences from PyTorch:
      dropout draws from ``rng`` instead of torch's generator; torch's fast paths (the fused
      ``_native_multi_head_attention`` of nn.MultiheadAttention in eval mode) compute the same
      values to float rounding.
    """
    for name, x in (("query", query), ("key", key), ("value", value)):
        if not _is_array(x):
            raise TypeError(f"`{name}` must be an array, got {type(x).__name__}.")
    if query.ndim == 3 and (key.ndim != 3 or value.ndim != 3):
        raise ValueError(
            "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
            f"{key.ndim}-D and {value.ndim}-D tensors respectively"
        )
    if query.ndim == 2 and (key.ndim != 2 or value.ndim != 2):
        raise ValueError(
            "For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
            f"{key.ndim}-D and {value.ndim}-D tensors respectively"
        )
    if query.ndim not in (2, 3):
        raise ValueError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query tensor")
    E = query.shape[-1]
    if E != embed_dim_to_check:
        raise ValueError(
            f"was expecting embedding dimension of {embed_dim_to_check}, but got {E} "
            "(`embed_dim_to_check` must equal query's last dim)."
        )
    if not is_int(num_heads) or num_heads <= 0 or E % num_heads:
        raise ValueError(f"embed_dim {E} not divisible by num_heads {num_heads}")
    hd = E // num_heads
    if use_separate_proj_weight:
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"key's sequence and batch dims {tuple(key.shape[:-1])} do not match value's "
                f"{tuple(value.shape[:-1])}"
            )
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            name = next(n for n, w in (("q_proj_weight", q_proj_weight), ("k_proj_weight", k_proj_weight),
                                       ("v_proj_weight", v_proj_weight)) if w is None)
            raise ValueError(f"use_separate_proj_weight is True but `{name}` is None")
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        if key.shape != value.shape:
            raise ValueError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
        if in_proj_weight is None:
            raise ValueError("use_separate_proj_weight is False but `in_proj_weight` is None")
        wq, wk, wv = in_proj_weight[:E], in_proj_weight[E : 2 * E], in_proj_weight[2 * E :]
    if in_proj_bias is None:
        bq = bk = bv = None
    else:
        bq, bk, bv = in_proj_bias[:E], in_proj_bias[E : 2 * E], in_proj_bias[2 * E :]
    if (bias_k is None) != (bias_v is None):
        which = "bias_k" if bias_v is None else "bias_v"
        other = "bias_v" if which == "bias_k" else "bias_k"
        raise ValueError(f"{which} is set but {other} is None: pass both or neither.")
    if bias_k is not None and (static_k is not None or static_v is not None):
        raise ValueError(f"bias cannot be added to static {'key' if static_k is not None else 'value'}.")
    N = query.shape[1] if query.ndim == 3 else 1
    for name, st in (("static_k", static_k), ("static_v", static_v)):
        if st is None:
            continue
        if not _is_array(st) or st.ndim != 3:
            raise ValueError(f"`{name}` must be a 3-D array (N * num_heads, S, head_dim).")
        if st.shape[0] != N * num_heads:
            raise ValueError(f"expecting {name}.size(0) of {N * num_heads}, but got {st.shape[0]}")
        if st.shape[2] != hd:
            raise ValueError(f"expecting {name}.size(2) of {hd}, but got {st.shape[2]}")
    out, weights = multi_head_attention(
        query, key, value, num_heads, wq, wk, wv, bq, bk, bv, bias_k, bias_v, bool(add_zero_attn),
        float(dropout_p) if training else 0.0, key_padding_mask, need_weights, attn_mask, average_attn_weights,
        is_causal, rng, static_k, static_v)
    return _lin.linear(out, out_proj_weight, out_proj_bias), weights
