"""normalize, cosine_similarity, pairwise_distance, softmin and bilinear with torch's semantics.

The norms are torch's ``linalg.vector_norm``: the sum of squares of ``p=2`` is error-compensated
(:func:`jaxnn.functional._norm._moments`, so it does not depend on the reduction order) and the
gradient is torch's ``norm_backward`` (0 where the norm is 0, split between tied maxima for
``p=inf``). Half-precision inputs are computed in float32 and rounded to the input dtype where torch
stores an intermediate tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import canonical_dim, check_array, check_float, shape_str, stat_dtype
from ._activation import _round, _softmax_dim, softmax
from ._norm import _moments


def _check_p(p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"`p` must be a number (the order of the norm), got {p!r}.")
    return float(p)


def _sum_squares(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """``sum(x * x)`` over ``axes`` (kept), error-compensated: independent of the summation order."""
    rest = tuple(a for a in range(x.ndim) if a not in axes)
    xt = jnp.transpose(x, rest + axes)
    m = math.prod(x.shape[a] for a in axes)
    r = math.prod(x.shape[a] for a in rest)
    if x.size == 0:
        return jnp.sum(x * x, axes, keepdims=True)
    _, s2 = _moments(xt.reshape((r, m)), "rows")
    out_shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))
    return s2.reshape(out_shape)


def _norm_value(x: jax.Array, p: float, axes: tuple[int, ...]) -> jax.Array:
    a = jnp.abs(x)
    if p == 2.0:
        return jnp.sqrt(_sum_squares(x, axes))
    if p == 1.0:
        return jnp.sum(a, axes, keepdims=True)
    if p == math.inf:
        return jnp.max(a, axes, keepdims=True, initial=0.0)
    if p == -math.inf:
        return jnp.min(a, axes, keepdims=True, initial=math.inf)
    if p == 0.0:
        return jnp.sum((x != 0).astype(x.dtype), axes, keepdims=True)
    return jnp.sum(a**p, axes, keepdims=True) ** (1.0 / p)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _vector_norm(x: jax.Array, p: float, axes: tuple[int, ...]) -> jax.Array:
    """torch's ``linalg.vector_norm(x, p, axes, keepdim=True)`` with torch's backward."""
    return _norm_value(x, p, axes)


def _vector_norm_fwd(x, p, axes):
    n = _norm_value(x, p, axes)
    return n, (x, n)


def _vector_norm_bwd(p, axes, res, g):
    """torch's ``norm_backward`` (torch/csrc/autograd/FunctionsManual.cpp), branch for branch."""
    x, n = res
    zero = jnp.zeros_like(x)
    if p == 0.0:
        return (zero,)
    if p == 1.0:
        return (jnp.sign(x) * g,)
    if p == 2.0:
        return (g * jnp.where(n == 0, zero, x / n),)
    a = jnp.abs(x)
    if math.isinf(p):
        mask = ((a == n) | jnp.isnan(a)).astype(x.dtype)
        return (jnp.sign(x) * ((g / jnp.sum(mask, axes, keepdims=True)) * mask),)
    if p < 1.0:
        scaled = jnp.sign(x) * jnp.where(x == 0, zero, a ** (p - 1))
        return (scaled * g * n ** (1 - p),)
    scaled = jnp.sign(x) * a ** (p - 1) if p < 2.0 else x * a ** (p - 2)
    scale_v = g / n ** (p - 1)
    return (scaled * jnp.where(n == 0, jnp.zeros_like(scale_v), scale_v),)


_vector_norm.defvjp(_vector_norm_fwd, _vector_norm_bwd)


@jax.custom_jvp
def _clamp_min_keep_grad(n: jax.Array, eps: jax.Array) -> jax.Array:
    """``max(n, eps)`` whose derivative is that of ``n`` everywhere: torch's ``clamp_min_`` under
    ``NoGradGuard`` in cosine_similarity, an in-place edit that autograd does not see."""
    return jnp.where(n < eps, eps, n)


@_clamp_min_keep_grad.defjvp
def _clamp_min_keep_grad_jvp(primals, tangents):
    n, eps = primals
    return _clamp_min_keep_grad(n, eps), tangents[0]


def _eps_in(eps: Any, dtype: Any, name: str = "eps") -> jax.Array:
    """torch's clamp_min scalar: converted to the tensor's dtype (1e-8 is 0 in float16)."""
    if isinstance(eps, bool) or not isinstance(eps, int | float):
        raise TypeError(f"`{name}` must be a float, got {eps!r}.")
    return jnp.asarray(eps, dtype)


def _dims(dim: Any, ndim: int) -> tuple[int, ...]:
    if isinstance(dim, Sequence) and not isinstance(dim, str):
        axes = tuple(canonical_dim(d, ndim) for d in dim)
        if len(set(axes)) != len(axes):
            raise ValueError(f"`dim` {tuple(dim)!r} names a dimension more than once.")
        return tuple(sorted(axes))
    return (canonical_dim(dim, ndim),)


def normalize(
    input: jax.Array, p: float | str = 2.0, dim: int | Sequence[int] = 1, eps: float = 1e-12, out: None = None
) -> jax.Array:
    r""":math:`L_p` normalisation along ``dim``, ``torch.nn.functional.normalize``.

    .. math::
        y = \frac{x}{\max(\lVert x \rVert_p, \epsilon)}

    with the norm over ``dim`` (torch's ``input.norm(p, dim, keepdim=True).clamp_min(eps)``).

    Args:
      input: any shape, floating dtype.
      p: the norm's order (any float: ``inf``, ``-inf``, 0 counts non-zeros, negative values
        allowed, as torch's ``vector_norm``), or ``'fro'`` (the 2-norm, as torch's ``norm``).
      dim: an int or a tuple of ints.
      eps: the smallest denominator. It is converted to ``input``'s dtype first, as torch's
        ``clamp_min`` does: in float16 the default 1e-12 is 0, so a zero vector gives nan there,
        as in torch.
      out: must be None (JAX arrays are immutable); here for torch's signature.

    Returns:
      Same shape and dtype as ``input``. float16/bfloat16: the norm in float32 rounded to the dtype,
      then the division rounded, as torch's two ops.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.normalize(jnp.array([[3.0, 4.0]]))
      Array([[0.6, 0.8]], dtype=float32)

    Differences from PyTorch:
      ``out`` must be None; ``p='nuc'`` (a matrix norm over two dims) is not implemented. The
      gradient is torch's: where the norm is below ``eps`` only the
      division carries one (clamp_min's gradient is 0 there); a zero norm contributes 0.
    """
    if out is not None:
        raise ValueError("`out` must be None: JAX arrays are immutable; use the returned array.")
    check_float(input, "input")
    if p == "fro":  # torch.norm's 'fro' over one or two dims is the vector 2-norm
        p = 2.0
    elif isinstance(p, str):
        raise ValueError(
            f"`p`={p!r} is not supported: use a number or 'fro' (torch's 'nuc', the nuclear norm of "
            "matrices, is not implemented in jaxnn)."
        )
    pf = _check_p(p)
    x = jnp.asarray(input)
    dtype = x.dtype
    e = _eps_in(eps, dtype)
    scalar = x.ndim == 0
    if scalar:
        axes = _dims(dim, 0) and (0,)
        x = x.reshape((1,))
    else:
        axes = _dims(dim, x.ndim)
    xc = x.astype(stat_dtype(dtype))
    n = _round(_vector_norm(xc, pf, axes), dtype)
    denom = jnp.where(n >= e, n, e.astype(n.dtype))  # clamp_min: gradient where n >= eps, as torch
    y = (xc / denom).astype(dtype)
    return y.reshape(()) if scalar else y


def _broadcast_pair(x1: Any, x2: Any) -> tuple[jax.Array, jax.Array]:
    check_array(x1, "x1")
    check_array(x2, "x2")
    dtype = jnp.result_type(x1, x2)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`x1` and `x2` must have a floating common dtype, got {x1.dtype} and {x2.dtype}.")
    try:
        shape = jnp.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(
            f"`x1` of shape {shape_str(x1.shape)} and `x2` of shape {shape_str(x2.shape)} must be "
            "broadcastable to a common shape."
        ) from None
    a = jnp.broadcast_to(jnp.asarray(x1).astype(dtype), shape)
    b = jnp.broadcast_to(jnp.asarray(x2).astype(dtype), shape)
    return a, b


def cosine_similarity(x1: jax.Array, x2: jax.Array, dim: int = 1, eps: float = 1e-8) -> jax.Array:
    r"""Cosine similarity along ``dim``, ``torch.nn.functional.cosine_similarity`` (torch 2.13).

    .. math::
        \text{out} = \sum_{\text{dim}} \frac{x_1}{\max(\lVert x_1 \rVert_2, \epsilon)}
        \cdot \frac{x_2}{\max(\lVert x_2 \rVert_2, \epsilon)}

    Each vector is divided by its own clamped norm before the product (torch's ATen formula since
    1.12; older releases clamped the product of the norms).

    Args:
      x1, x2: broadcastable arrays; the common dtype must be floating (type promotion as torch's).
        As torch's, an integer input is cast to the common dtype, while a floating one is
        normalised in its own dtype before the product promotes (float16 with float32: the
        float16 unit vector times the float32 one).
      dim: the dimension of the broadcast shape to reduce (removed from the output).
      eps: the smallest norm, converted to the common dtype (0 in float16 for the default 1e-8:
        zero vectors give nan there, as in torch).

    Returns:
      The broadcast shape without ``dim``, in the common dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.cosine_similarity(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
      Array([0.707106...], dtype=float32)

    Differences from PyTorch:
      None in results. As torch's, the clamp is invisible to the gradient (torch clamps the norms
      in place under ``NoGradGuard``): at a norm below ``eps`` the norm's own gradient still flows.
    """
    a, b = _broadcast_pair(x1, x2)
    dtype = a.dtype
    _eps_in(eps, dtype)
    # torch casts only integer inputs to the common dtype: a floating input is normalised in its
    # own dtype (float16 next to float32: the float16 unit vector), then the product promotes
    own = [jnp.result_type(x) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else dtype for x in (x1, x2)]
    scalar = a.ndim == 0
    axis = canonical_dim(dim, a.ndim)
    if scalar:
        a, b = a.reshape((1,)), b.reshape((1,))
    acc = stat_dtype(dtype)

    def unit(v: jax.Array, vdt: Any) -> jax.Array:
        vacc = stat_dtype(vdt)
        vc = v.astype(vacc)
        n = _clamp_min_keep_grad(_round(_vector_norm(vc, 2.0, (axis,)), vdt), _eps_in(eps, vdt).astype(vacc))
        return _round(vc / n, vdt).astype(acc)

    prod = _round(unit(a, own[0]) * unit(b, own[1]), dtype)
    out = jnp.sum(prod, axis).astype(dtype)
    return out.reshape(()) if scalar else out


def pairwise_distance(
    x1: jax.Array, x2: jax.Array, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> jax.Array:
    r""":math:`\lVert x_1 - x_2 + \epsilon \rVert_p` over the last dimension, ``F.pairwise_distance``.

    Args:
      x1, x2: broadcastable arrays (``(N, D)``, ``(D,)``, or any rank); the common dtype must be
        floating. The norm is over the last dimension of the broadcast shape.
      p: the norm's order (any float, as torch's ``norm``).
      eps: added to every difference (torch's ``x1 - x2 + eps``), so equal inputs are
        ``eps * D**(1/p)`` apart and the gradient there is finite.
      keepdim: keep the reduced dimension with size 1.

    Returns:
      The broadcast shape without (or with size 1 at, ``keepdim``) its last dimension.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.pairwise_distance(jnp.array([[3.0, 4.0]]), jnp.zeros((1, 2)), eps=0.0)
      Array([5.], dtype=float32)

    Differences from PyTorch:
      None in results; gradient as torch's ``norm`` backward (0 where the distance is 0).
    """
    pf = _check_p(p)
    a, b = _broadcast_pair(x1, x2)
    dtype = a.dtype
    if isinstance(eps, bool) or not isinstance(eps, int | float):
        raise TypeError(f"`eps` must be a float, got {eps!r}.")
    acc = stat_dtype(dtype)
    d = _round(_round(a.astype(acc) - b.astype(acc), dtype) + jnp.asarray(eps, acc), dtype)
    scalar = d.ndim == 0
    if scalar:
        d = d.reshape((1,))
    n: jax.Array = jnp.asarray(_vector_norm(d, pf, (d.ndim - 1,))).astype(dtype)
    if scalar:
        return n.reshape(())
    return n if keepdim else jnp.squeeze(n, -1)


def softmin(input: jax.Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r"""Softmin along ``dim``, ``torch.nn.functional.softmin``: :math:`e^{-x_i} / \sum_j e^{-x_j}`.

    torch's ``(-input).softmax(dim, dtype=dtype)``: :func:`softmax` of the negated input (negation
    is exact), so it shares softmax's rounding and gradient.

    Args:
      input: any shape, floating dtype.
      dim: the dimension to normalise; None warns and picks torch's legacy choice (0 for 0-, 1-
        and 3-dimensional inputs, else 1).
      _stacklevel: accepted for torch's signature.
      dtype: a floating dtype; ``-input`` is cast to it first (so integer ``input`` is accepted
        with ``dtype``, negated in its own dtype as torch's: unsigned integers wrap).

    Returns:
      Same shape; ``dtype`` or ``input``'s dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.softmin(jnp.array([0.0, 0.0]), dim=0)
      Array([0.5, 0.5], dtype=float32)
    """
    if dtype is None:
        check_float(input, "input")
        x = jnp.asarray(input)
        axis = _softmax_dim(x.ndim, dim, "softmin")
        return softmax(-x, axis)
    # torch negates in the input's dtype (integers too: unsigned ones wrap), then casts to `dtype`
    check_array(input, "input")
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise TypeError(f"softmin: `dtype` must be a floating dtype, got {jnp.dtype(dtype)}.")
    if jnp.result_type(input) == jnp.dtype(bool):
        raise TypeError("softmin: negation of a bool `input` is not supported (torch's `-` rejects bool tensors).")
    neg = -jnp.asarray(input)
    axis = _softmax_dim(neg.ndim, dim, "softmin")
    return softmax(neg.astype(dtype), axis)


def bilinear(input1: jax.Array, input2: jax.Array, weight: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    r"""Bilinear map :math:`y_k = x_1^T A_k x_2 + b_k`, ``torch.nn.functional.bilinear``.

    Computed as torch's ``_trilinear``: first ``input1`` with ``weight`` over ``in1_features``,
    then that with ``input2`` over ``in2_features`` (float32 accumulation; half-precision
    intermediate results rounded to the input dtype, as torch stores them), then ``+ bias``.

    Args:
      input1: ``(*, in1_features)``.
      input2: ``(*, in2_features)`` with the same leading dimensions (no broadcasting, as torch).
      weight: ``(out_features, in1_features, in2_features)``.
      bias: optional ``(out_features,)``.

    Returns:
      ``(*, out_features)``, dtype of the inputs (all four must share it, as torch requires).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.bilinear(jnp.ones((2, 3)), jnp.ones((2, 4)), jnp.ones((5, 3, 4))).shape
      (2, 5)
    """
    for name, v in (("input1", input1), ("input2", input2), ("weight", weight)):
        check_float(v, name)
    if bias is not None:
        check_float(bias, "bias")
    for name, v in (("input2", input2), ("weight", weight), ("bias", bias)):
        if v is not None and v.dtype != input1.dtype:
            raise TypeError(f"`{name}` dtype ({v.dtype}) must match `input1` dtype ({input1.dtype}) (torch's rule).")
    if input1.ndim != input2.ndim:
        raise ValueError(f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}.")
    if input1.ndim < 1:
        raise ValueError("bilinear(): `input1` and `input2` must have at least 1 dimension, got 0-d arrays.")
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ValueError(
            f"bilinear(): input batch dimensions do not match: got {shape_str(input1.shape)} and "
            f"{shape_str(input2.shape)} (torch does not broadcast them)."
        )
    if weight.ndim != 3:
        raise ValueError(
            f"bilinear(): `weight` must be 3-D (out_features, in1_features, in2_features), got shape "
            f"{shape_str(weight.shape)}."
        )
    if input1.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but expected "
            f"{weight.shape[1]}."
        )
    if input2.shape[-1] != weight.shape[2]:
        raise ValueError(
            f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but expected "
            f"{weight.shape[2]}."
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]):
        raise ValueError(
            f"bilinear(): `bias` must have shape ({weight.shape[0]},) (out_features), got {shape_str(bias.shape)}."
        )
    dtype = input1.dtype
    acc = stat_dtype(dtype)
    pref = None if acc == dtype else acc
    lead = tuple(input1.shape[:-1])
    rows = math.prod(lead)
    x1 = jnp.reshape(input1, (rows, input1.shape[-1]))
    x2 = jnp.reshape(input2, (rows, input2.shape[-1]))
    w = jnp.asarray(weight)
    # (B, i) x (o, i, j) -> (B, o, j), stored in the input dtype as torch's bmm
    t = lax.dot_general(x1, w, (((1,), (1,)), ((), ())), preferred_element_type=pref).astype(dtype)
    # (B, o, j) x (B, j) -> (B, o)
    y = lax.dot_general(t, x2, (((2,), (1,)), ((0,), (0,))), preferred_element_type=pref).astype(dtype)
    if bias is not None:
        y = (y.astype(acc) + jnp.reshape(bias, (1, -1)).astype(acc)).astype(dtype)
    return jnp.reshape(y, lead + (weight.shape[0],))

