"""Dropout with torch.nn.functional's signature; the randomness is an explicit JAX PRNG key."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_float


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
