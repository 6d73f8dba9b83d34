"""Scaled dot-product attention with torch.nn.functional's signature, layout and masking rules."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import check_float, shape_str, stat_dtype
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
    if key_padding_mask is not None and key_padding_mask.shape != (N, S):
        raise ValueError(f"expecting key_padding_mask shape of {(N, S)}, but got {tuple(key_padding_mask.shape)}")
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
    k = k.reshape(k.shape[0], N * H, hd).transpose(1, 0, 2)
    v = v.reshape(v.shape[0], N * H, hd).transpose(1, 0, 2)
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
        if attn_mask is not None:
            attn_mask = attn_mask[None] if attn_mask.shape[0] == 1 else attn_mask.reshape(N, H, L, S2)
        out = scaled_dot_product_attention(q.reshape(N, H, L, hd), k.reshape(N, H, S2, hd), v.reshape(N, H, S2, hd),
                                           attn_mask, dropout_p, use_causal, rng=rng)
        out = out.transpose(2, 0, 1, 3).reshape(L, N, E)
        w = None
    if not batched:
        out = out[:, 0]
        w = None if w is None else w[0]
    return out, w
