"""Dropout with torch.nn.functional's signature; the randomness is an explicit JAX PRNG key."""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_float
from ._activation import _round


def check_dropout_p(p: Any) -> float:
    """torch's rule for a dropout probability (``F.dropout`` and ``nn.Dropout`` alike)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def dropout(
    input: jax.Array,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    rng: jax.Array | None = None,
) -> jax.Array:
    r"""``torch.nn.functional.dropout``: zero each element with probability ``p`` and scale the
    kept ones by :math:`1 / (1 - p)`.

    Args:
      input: any shape, floating dtype.
      p: probability of an element being zeroed, in ``[0, 1]``.
      training: apply dropout if True (torch's default); return ``input`` unchanged if False.
      inplace: accepted for torch compatibility and ignored (JAX arrays are immutable).
      rng: keyword-only JAX PRNG key (``jax.random.key(...)``) the mask is drawn from. Required
        when ``training`` and ``0 < p < 1``.

    Returns:
      An array like ``input``. Kept values are exactly torch's ``input * (1 / (1 - p))``: the factor
      is computed in float32 (float64 for float64 input) and rounded to ``input``'s dtype, then
      multiplied, as torch's CPU kernel does; ``p = 1`` gives ``input * 0``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> y = F.dropout(jnp.ones(6), 0.5, rng=jax.random.key(0))
      >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0], [0.0])
      True
      >>> F.dropout(jnp.ones(3), 0.5, training=False)
      Array([1., 1., 1.], dtype=float32)

    Differences from PyTorch:
      The mask comes from ``rng`` (JAX's explicit randomness), not a global generator, so the
      masks differ from torch's for the same seed; their distribution is the same.
    """
    p = check_dropout_p(p)
    check_float(input, "input")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * jnp.zeros((), input.dtype)
    if rng is None:
        raise ValueError(
            "dropout with training=True and 0 < p < 1 needs a PRNG key: pass `rng=jax.random.key(seed)` "
            "(modules draw it from their `dropout` stream)."
        )
    keep = jax.random.bernoulli(rng, 1.0 - p, jnp.shape(input))
    return jnp.where(keep, input * dropout_scale(p, input.dtype), jnp.zeros((), input.dtype))


def dropout_scale(p: float, dtype: Any) -> np.ndarray:
    """torch's CPU factor ``noise.div_(1 - p)``: ``1 / (1 - p)`` with ``1 - p`` (a double) rounded to
    the op-math dtype (float32 for float16/bfloat16, else ``dtype``), divided there and rounded to
    ``dtype``. The kept values are then ``input * factor``, rounded once more (the product of two
    half-precision numbers is exact in float32, so ``input * factor`` in ``dtype`` is that rounding)."""
    dtype = np.dtype(dtype)
    opmath = np.dtype(np.float32) if dtype.itemsize < 4 else dtype
    return np.asarray(opmath.type(1.0) / opmath.type(1.0 - p), opmath).astype(dtype)


# --- channel-wise and alpha dropout: torch's ATen ``_dropout_impl`` ---------------------------------

# SELU's negative saturation value, -lambda * alpha (ATen's ``alpha`` in Dropout.cpp).
_SELU_SATURATION = 1.7580993408473766


def _dropout_impl(x: jax.Array, p: float, training: bool, rng: Any, *, feature: bool, alpha: bool,
                  name: str) -> jax.Array:
    """ATen's ``_dropout_impl<feature_dropout, alpha_dropout>`` (aten/src/ATen/native/Dropout.cpp):
    identity when not training, ``p == 0`` or the input is empty; ``input * 0`` for ``p == 1``;
    otherwise a Bernoulli(1 - p) ``noise`` in the input's dtype (shape ``(N, C, 1, ...)`` for the
    feature variants) and

    - dropout: ``input * (noise / (1 - p))``;
    - alpha: ``a = 1 / sqrt((alpha^2 p + 1)(1 - p))``, ``b = (noise - 1) * (alpha a) + alpha a p``,
      ``input * (noise * a) + b``,

    each step rounded to the input's dtype as torch's in-place tensor ops round."""
    if not training or p == 0.0 or x.size == 0:
        return x
    if p == 1.0:
        return x * jnp.zeros((), x.dtype)
    if feature and x.ndim < 2:
        raise ValueError(
            f"{name}: feature dropout requires at least 2 dimensions in the input, got a {x.ndim}-D `input` of "
            f"shape {tuple(x.shape)}."
        )
    if rng is None:
        raise ValueError(
            f"{name} with training=True and 0 < p < 1 needs a PRNG key: pass `rng=jax.random.key(seed)` "
            "(modules draw it from their `dropout` stream)."
        )
    shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2) if feature else x.shape
    keep = jax.random.bernoulli(rng, 1.0 - p, shape)
    zero = jnp.zeros((), x.dtype)
    if not alpha:
        return x * jnp.where(keep, jnp.asarray(dropout_scale(p, x.dtype)), zero)
    dt = np.dtype(x.dtype)
    opmath = np.dtype(np.float32) if dt.itemsize < 4 else dt
    a = 1.0 / math.sqrt((_SELU_SATURATION * _SELU_SATURATION * p + 1.0) * (1.0 - p))
    alpha_a, shift = opmath.type(_SELU_SATURATION * a), opmath.type(_SELU_SATURATION * a * p)
    # b = noise.add(-1).mul_(alpha * a).add_(alpha * a * p): noise - 1 is 0 or -1 (exact); each step
    # rounded to the input's dtype. torch's CPU add_ of a Python scalar to a float16/bfloat16 tensor
    # first rounds the scalar to that dtype (measured: -0.287109375, not -0.28637695, for p=0.9).
    shift_dt = opmath.type(np.asarray(shift, opmath).astype(dt))
    b_kept = np.asarray(shift_dt, opmath).astype(dt)
    b_dropped = np.asarray(opmath.type(np.asarray(-alpha_a, opmath).astype(dt)) + shift_dt, opmath).astype(dt)
    noise = jnp.where(keep, jnp.asarray(np.asarray(opmath.type(a), opmath).astype(dt)), zero)
    b = jnp.where(keep, jnp.asarray(b_kept), jnp.asarray(b_dropped))
    if dt.itemsize < 4:  # torch's two half-precision kernels: round the product, then the sum
        f32 = jnp.float32
        return (_round(x.astype(f32) * noise.astype(f32), dt) + b.astype(f32)).astype(dt)
    return x * noise + b


def _checked(input: Any, p: Any, name: str) -> float:
    p = check_dropout_p(p)
    check_float(input, "input")
    return p


_ND_DOC = """

    Args:
      input: {shapes}; floating dtype.
      p: probability of a channel being zeroed, in ``[0, 1]``.
      training: apply dropout if True (torch's default); return ``input`` unchanged if False.
      inplace: accepted for torch compatibility and ignored (JAX arrays are immutable).
      rng: keyword-only JAX PRNG key the channel mask is drawn from; required when ``training``
        and ``0 < p < 1``.

    Returns:
      An array like ``input``: ``input[n, c]`` is either all zeros or ``input[n, c] * (1 / (1 - p))``
      (the factor rounded as :func:`dropout`'s, torch's ``noise.div_(1 - p)``); ``p = 1`` gives
      ``input * 0``.
{extra}
    Differences from PyTorch:
      the mask comes from ``rng``, not torch's global generator: the same distribution, other
      channels. An input with fewer than 2 dimensions (after torch's unbatched handling) raises
      ValueError where torch raises RuntimeError ("Feature dropout requires at least 2 dimensions").
    """


def dropout1d(input: jax.Array, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              rng: jax.Array | None = None) -> jax.Array:
    p = _checked(input, p, "dropout1d")
    if input.ndim not in (2, 3):
        raise ValueError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that dropout1d exists "
            "to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, and an "
            "optional batch dimension (i.e. 2D or 3D inputs)."
        )
    if input.ndim == 2:
        return _dropout_impl(input[None], p, training, rng, feature=True, alpha=False, name="dropout1d")[0]
    return _dropout_impl(input, p, training, rng, feature=True, alpha=False, name="dropout1d")


def dropout2d(input: jax.Array, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              rng: jax.Array | None = None) -> jax.Array:
    p = _checked(input, p, "dropout2d")
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout2d exists to provide channel-wise dropout on inputs with 2 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            UserWarning, stacklevel=2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d "
            "instead.", UserWarning, stacklevel=2)
    return _dropout_impl(input, p, training, rng, feature=True, alpha=False, name="dropout2d")


def dropout3d(input: jax.Array, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              rng: jax.Array | None = None) -> jax.Array:
    p = _checked(input, p, "dropout3d")
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout3d exists to provide channel-wise dropout on inputs with 3 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            UserWarning, stacklevel=2)
    if input.ndim != 5:
        return _dropout_impl(input[None], p, training, rng, feature=True, alpha=False, name="dropout3d")[0]
    return _dropout_impl(input, p, training, rng, feature=True, alpha=False, name="dropout3d")


dropout1d.__doc__ = r"""``torch.nn.functional.dropout1d``: zero whole channels (1-D feature maps) with
    probability ``p``, scale the kept ones by :math:`1 / (1 - p)`.

    The mask has shape ``(N, C, 1)``: :math:`y_{n,c,l} = x_{n,c,l} \, m_{n,c} / (1 - p)`,
    :math:`m_{n,c} \sim \mathrm{Bernoulli}(1 - p)`. Any other rank than 2 or 3 raises ValueError
    (torch: RuntimeError, same message).""" + _ND_DOC.format(
    shapes="``(N, C, L)`` or unbatched ``(C, L)``", extra="""
    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> y = F.dropout1d(jnp.ones((2, 3, 4)), 0.5, rng=jax.random.key(0))
      >>> bool(jnp.all((y == y[..., :1]) & ((y == 0) | (y == 2))))
      True
""")
dropout2d.__doc__ = r"""``torch.nn.functional.dropout2d``: zero whole channels (2-D feature maps) with
    probability ``p``, scale the kept ones by :math:`1 / (1 - p)`.

    The mask has shape ``(N, C, 1, ...)`` over the input's first two dims, exactly as torch 2.13:
    a 4-D input is ``(N, C, H, W)``; a 3-D input warns and is read as ``(N, C, L)`` (channel-wise
    1-D dropout, NOT unbatched ``(C, H, W)``: torch's historical behaviour, pytorch#77081); other
    ranks warn (deprecated in torch) and are still treated as ``(N, C, ...)``.""" + _ND_DOC.format(
    shapes="``(N, C, H, W)`` (``(N, C, L)`` with a warning)", extra="""
    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.dropout2d(jnp.ones((1, 2, 3, 3)), 0.5, training=False).shape
      (1, 2, 3, 3)
""")
dropout3d.__doc__ = r"""``torch.nn.functional.dropout3d``: zero whole channels (3-D feature maps) with
    probability ``p``, scale the kept ones by :math:`1 / (1 - p)`.

    The mask has shape ``(N, C, 1, 1, 1)``. A 4-D input is unbatched ``(C, D, H, W)``; other ranks
    than 4 and 5 warn (deprecated in torch) and, like a 4-D input, get a leading batch dim of 1
    before channel-wise dropout over their first two dims, as torch 2.13 does.""" + _ND_DOC.format(
    shapes="``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``", extra="""
    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.dropout3d(jnp.ones((2, 2, 2, 2)), 1.0).sum()
      Array(0., dtype=float32)
""")


_ALPHA_DOC = r"""

    With :math:`\alpha' = 1.7580993408473766` (SELU's :math:`\lambda\alpha`) and
    :math:`a = 1 / \sqrt{(\alpha'^2 p + 1)(1 - p)}`, a kept {unit} becomes :math:`a x + \alpha' a p`
    and a dropped one :math:`\alpha' a p - \alpha' a` (the transformed SELU saturation
    :math:`-\alpha'`), which keeps zero mean and unit variance (Klambauer et al., 2017). The
    constants and the rounding of each step are ATen's (``_dropout_impl`` in Dropout.cpp):
    ``noise * a``, ``(noise - 1) * (alpha' a) + alpha' a p`` and ``input * noise + b``, each
    rounded to the input's dtype (float16/bfloat16: computed in float32, rounded).

    Args:
      input: {shapes}; floating dtype.
      p: probability of a {unit} being dropped, in ``[0, 1]``.
      training: apply alpha dropout if True. torch's default here is **False**.
      inplace: accepted for torch compatibility and ignored (JAX arrays are immutable).
      rng: keyword-only JAX PRNG key for the mask; required when ``training`` and ``0 < p < 1``.

    Returns:
      An array like ``input``. ``p = 1`` gives ``input * 0`` (zeros, not the saturation value),
      as torch's.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> y = F.{name}(jnp.zeros((2, 3, 4)), 0.2, True, rng=jax.random.key(0))
      >>> len(set(y.ravel().tolist())) <= 2
      True

    Differences from PyTorch:
      the mask comes from ``rng``, not torch's global generator. For float16/bfloat16 the
      results are torch's bit for bit (torch first rounds the Python scalar ``alpha' a p`` to the
      input's dtype, and so does jaxnn). For float32/float64 XLA may fuse ``input * noise + b``
      into one multiply-add (one rounding where torch rounds twice): up to 1 ulp of difference.{extra}

    References:
      Klambauer et al., Self-Normalizing Neural Networks, NeurIPS 2017.
    """


def alpha_dropout(input: jax.Array, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                  rng: jax.Array | None = None) -> jax.Array:
    p = _checked(input, p, "alpha_dropout")
    return _dropout_impl(input, p, training, rng, feature=False, alpha=True, name="alpha_dropout")


def feature_alpha_dropout(input: jax.Array, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                          rng: jax.Array | None = None) -> jax.Array:
    p = _checked(input, p, "feature_alpha_dropout")
    return _dropout_impl(input, p, training, rng, feature=True, alpha=True, name="feature_alpha_dropout")


alpha_dropout.__doc__ = (
    "``torch.nn.functional.alpha_dropout``: dropout for SELU networks, element by element."
    + _ALPHA_DOC.replace("{unit}", "element").replace("{shapes}", "any shape").replace("{name}", "alpha_dropout")
    .replace("{extra}", "")
)
feature_alpha_dropout.__doc__ = (
    "``torch.nn.functional.feature_alpha_dropout``: alpha dropout of whole channels (mask ``(N, C, 1, ...)``)."
    + _ALPHA_DOC.replace("{unit}", "channel").replace("{shapes}", "``(N, C, *)``, at least 2-D")
    .replace("{name}", "feature_alpha_dropout")
    .replace("{extra}", " An input with fewer than 2 dimensions raises ValueError (torch: RuntimeError).")
)
