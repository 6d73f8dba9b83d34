"""The activation family with torch.nn.functional's arguments, defaults, values and gradients.

Half-precision inputs are computed in float32 and rounded once, as torch's CPU and CUDA kernels do.
Gradients at kinks follow torch's autograd (custom_jvp where plain autodiff would differ).
torch's ``inplace=`` arguments are accepted and ignored: JAX arrays are immutable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import canonical_dim, check_array, check_float, check_same_dtype, shape_str, stat_dtype

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _apply(input: Any, f: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """Run ``f`` in float32 (at least) and return the input dtype."""
    check_float(input, "input")
    x = jnp.asarray(input)
    compute = stat_dtype(x.dtype)
    if compute == x.dtype:
        return f(x)
    return f(x.astype(compute)).astype(x.dtype)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _hardtanh(x: jax.Array, lo: float, hi: float) -> jax.Array:
    return jnp.minimum(jnp.maximum(x, lo), hi)


@_hardtanh.defjvp
def _hardtanh_jvp(lo, hi, primals, tangents):
    (x,), (dx,) = primals, tangents
    inside = (x > lo) & (x < hi)  # torch: zero gradient at and beyond both bounds
    return _hardtanh(x, lo, hi), jnp.where(inside, dx, jnp.zeros_like(dx))


@jax.custom_jvp
def _hardswish(x: jax.Array) -> jax.Array:
    return x * jnp.minimum(jnp.maximum(x + 3.0, 0.0), 6.0) / 6.0


@_hardswish.defjvp
def _hardswish_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    # torch: x/3 + 1/2 strictly inside (-3, 3); 0 at and below -3; 1 at and above 3.
    slope = jnp.where(x <= -3.0, 0.0, jnp.where(x < 3.0, x / 3.0 + 0.5, 1.0)).astype(x.dtype)
    return _hardswish(x), slope * dx


def relu(input: jax.Array, inplace: bool = False) -> jax.Array:
    r"""Rectified linear unit, :math:`\max(0, x)`; gradient 0 at 0, as torch.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.functional import relu
      >>> relu(jnp.array([-1.0, 0.0, 2.0]))
      Array([0., 0., 2.], dtype=float32)
    """
    check_array(input, "input")
    return jax.nn.relu(jnp.asarray(input))


def hardtanh(
    input: jax.Array, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> jax.Array:
    r"""Clamp to ``[min_val, max_val]``; gradient 1 strictly inside, 0 at and outside the bounds.

    Raises:
      ValueError: if ``min_val > max_val``.
    """
    if min_val > max_val:
        raise ValueError(f"`min_val` (={min_val}) cannot be greater than `max_val` (={max_val}).")
    return _apply(input, lambda x: _hardtanh(x, min_val, max_val))


def relu6(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`\min(\max(0, x), 6)`, torch's ``hardtanh(x, 0, 6)`` (gradient 0 at 0 and 6)."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input: jax.Array, negative_slope: float = 0.01, inplace: bool = False) -> jax.Array:
    r""":math:`x` if :math:`x > 0` else ``negative_slope`` :math:`\cdot x`; gradient at 0 is the slope."""
    return _apply(input, lambda x: jnp.where(x > 0, x, x * negative_slope))


def _elu(x: jax.Array, alpha: float, scale: float, input_scale: float) -> jax.Array:
    # The negative branch only sees non-positive values, so its gradient never meets inf * 0.
    safe = jnp.where(x > 0, jnp.zeros_like(x), x)  # not jnp.minimum: its gradient halves at 0
    neg = jnp.expm1(safe * input_scale) * (alpha * scale)
    return jnp.where(x > 0, x * scale, neg)


def elu(input: jax.Array, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    r""":math:`x` if :math:`x > 0` else :math:`\alpha (e^x - 1)`."""
    return _apply(input, lambda x: _elu(x, alpha, 1.0, 1.0))


def selu(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`\lambda \cdot \mathrm{elu}(x, \alpha)` with torch's :math:`\alpha \approx 1.6733`,
    :math:`\lambda \approx 1.0507`."""
    return _apply(input, lambda x: _elu(x, _SELU_ALPHA, _SELU_SCALE, 1.0))


def celu(input: jax.Array, alpha: float = 1.0, inplace: bool = False) -> jax.Array:
    r""":math:`\max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))`.

    Raises:
      ValueError: if ``alpha`` is 0.
    """
    if alpha == 0:
        raise ValueError("`alpha` of celu must not be 0 (it divides the input).")
    return _apply(input, lambda x: _elu(x, alpha, 1.0, 1.0 / alpha))


def gelu(input: jax.Array, approximate: str = "none") -> jax.Array:
    r"""Gaussian error linear unit, EXACT by default as in torch.

    .. math::
        \mathrm{gelu}(x) = x \Phi(x) = \tfrac{x}{2}\left(1 + \mathrm{erf}(x/\sqrt{2})\right)

    ``approximate='tanh'``: :math:`\tfrac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.functional import gelu
      >>> gelu(jnp.array([-1.0, 0.0, 1.0]))
      Array([-0.15865526,  0.        ,  0.8413447 ], dtype=float32)

    Differences from jax.nn / flax:
      ``jax.nn.gelu`` and flax default to the tanh approximation (``approximate=True``), which
      differs from torch's default by up to ~5e-4; enough to break a ported checkpoint.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}.")
    if approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        return _apply(input, lambda x: 0.5 * x * (1.0 + jnp.tanh(k * (x + 0.044715 * x * x * x))))
    return _apply(input, lambda x: x * 0.5 * (1.0 + lax.erf(x * (1.0 / math.sqrt(2.0)))))


def silu(input: jax.Array, inplace: bool = False) -> jax.Array:
    r"""Sigmoid linear unit (swish), :math:`x \sigma(x)`; stable for large :math:`|x|`."""
    return _apply(input, lambda x: x * jax.nn.sigmoid(x))


def mish(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`x \tanh(\mathrm{softplus}(x))` with an overflow-free softplus."""
    return _apply(input, lambda x: x * jnp.tanh(jnp.logaddexp(x, 0.0)))


def sigmoid(input: jax.Array) -> jax.Array:
    r"""Logistic function :math:`1 / (1 + e^{-x})`."""
    return _apply(input, jax.nn.sigmoid)


def tanh(input: jax.Array) -> jax.Array:
    r"""Hyperbolic tangent."""
    return _apply(input, jnp.tanh)


def hardsigmoid(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`\mathrm{relu6}(x + 3) / 6`; gradient 1/6 strictly inside (-3, 3), else 0."""
    return _apply(input, lambda x: _hardtanh(x + 3.0, 0.0, 6.0) / 6.0)


def hardswish(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`x \cdot \mathrm{relu6}(x + 3) / 6`; gradient as torch's (0 at -3, 1 at 3)."""
    return _apply(input, _hardswish)


def softplus(input: jax.Array, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:
    r""":math:`\tfrac{1}{\beta}\log(1 + e^{\beta x})`, and :math:`x` where :math:`\beta x` > ``threshold``.

    The exponential only sees values at or below the threshold, so large inputs neither overflow
    nor poison the gradient.
    """
    if beta == 0:
        raise ValueError("`beta` of softplus must not be 0.")

    def f(x: jax.Array) -> jax.Array:
        bx = x * beta
        linear = bx > threshold
        safe = jnp.where(linear, jnp.zeros_like(bx), bx)
        return jnp.where(linear, x, jnp.log1p(jnp.exp(safe)) / beta)

    return _apply(input, f)


def softsign(input: jax.Array) -> jax.Array:
    r""":math:`x / (1 + |x|)`."""
    return _apply(input, lambda x: x / (1.0 + jnp.abs(x)))


def logsigmoid(input: jax.Array) -> jax.Array:
    r""":math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`, finite for all finite ``x``."""
    return _apply(input, jax.nn.log_sigmoid)


def tanhshrink(input: jax.Array) -> jax.Array:
    r""":math:`x - \tanh(x)`."""
    return _apply(input, lambda x: x - jnp.tanh(x))


def softshrink(input: jax.Array, lambd: float = 0.5) -> jax.Array:
    r""":math:`x - \lambda` above ``lambd``, :math:`x + \lambda` below ``-lambd``, else 0.

    Raises:
      ValueError: if ``lambd`` < 0.
    """
    if lambd < 0:
        raise ValueError(f"`lambd` of softshrink must be greater or equal to 0, got {lambd}.")
    # |x| <= lambd -> 0, else x - sign(x) * lambd; NaN stays NaN, as in torch.
    return _apply(
        input, lambda x: jnp.where(jnp.abs(x) <= lambd, jnp.zeros_like(x), x - jnp.sign(x) * lambd)
    )


def hardshrink(input: jax.Array, lambd: float = 0.5) -> jax.Array:
    r""":math:`x` where :math:`|x| >` ``lambd`` (0 on the closed interval ``[-lambd, lambd]``)."""
    return _apply(input, lambda x: jnp.where((x >= -lambd) & (x <= lambd), jnp.zeros_like(x), x))


def threshold(input: jax.Array, threshold: float, value: float, inplace: bool = False) -> jax.Array:
    r""":math:`x` where :math:`x >` ``threshold``, else ``value`` (gradient 0 at the threshold).

    NaN inputs stay NaN (torch tests ``x <= threshold``).
    """
    thr = threshold
    return _apply(input, lambda x: jnp.where(x <= thr, jnp.asarray(value, x.dtype), x))


def prelu(input: jax.Array, weight: jax.Array) -> jax.Array:
    r""":math:`x` if :math:`x > 0` else ``weight`` :math:`\cdot x`, per channel (dimension 1).

    Args:
      input: ``(N, C, *)``, or any shape with a single-element ``weight``; a 1-D input has one
        channel.
      weight: ``(1,)`` (shared) or ``(C,)``; a 0-d weight acts as ``(1,)``.
    """
    check_float(input, "input")
    check_float(weight, "weight")
    check_same_dtype(input, weight, "weight")
    if input.ndim == 0:
        raise ValueError("`input` of prelu must have at least 1 dimension (zero-dim input is not allowed).")
    if weight.ndim > 1:
        raise ValueError(f"`weight` of prelu must be a scalar or 1D, got shape {shape_str(weight.shape)}.")
    channels = input.shape[1] if input.ndim >= 2 else 1
    size = weight.size
    if size not in (1, channels):
        raise ValueError(
            f"`weight` of prelu has {size} elements; it must have 1 or the input's channel size "
            f"({channels}, dimension 1)."
        )
    shape = [1] * input.ndim
    if size != 1:
        shape[1] = channels
    w = jnp.reshape(weight, shape if input.ndim else ())
    return _apply(input, lambda x: jnp.where(x > 0, x, x * w.astype(x.dtype)))


def _halves(input: Any, dim: int, fname: str) -> tuple[jax.Array, jax.Array]:
    check_float(input, "input")
    if input.ndim == 0:
        raise ValueError(f"{fname} does not support 0-d inputs: the halved dimension must be even.")
    axis = canonical_dim(dim, input.ndim)
    size = input.shape[axis]
    if size % 2:
        raise ValueError(
            f"{fname}: the halved dimension `dim`={dim} must have an even size, got {size} "
            f"(input shape {shape_str(input.shape)})."
        )
    x = jnp.asarray(input)
    half = size // 2
    return lax.slice_in_dim(x, 0, half, axis=axis), lax.slice_in_dim(x, half, size, axis=axis)


def _gated(input: Any, dim: int, fname: str, act: Callable[[jax.Array], jax.Array]) -> jax.Array:
    a, b = _halves(input, dim, fname)
    compute = stat_dtype(a.dtype)
    return (a.astype(compute) * act(b.astype(compute))).astype(a.dtype)


def glu(input: jax.Array, dim: int = -1) -> jax.Array:
    r"""Gated linear unit: ``a * sigmoid(b)`` with ``a, b`` the first and second halves along ``dim``."""
    return _gated(input, dim, "glu", jax.nn.sigmoid)


def geglu(input: jax.Array, dim: int = -1, approximate: str = "none") -> jax.Array:
    r"""GEGLU as diffusers writes it: ``h, gate = x.chunk(2, dim)``; ``h * gelu(gate)``.

    Exact gelu by default (the old Flax port of Stable Diffusion used the tanh form and drifted).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.functional import geglu
      >>> geglu(jnp.array([2.0, 1.0]))
      Array([1.6826894], dtype=float32)

    References:
      Shazeer, "GLU Variants Improve Transformer", 2020.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}.")
    return _gated(input, dim, "geglu", lambda g: gelu(g, approximate))


def swiglu(input: jax.Array, dim: int = -1) -> jax.Array:
    r"""SwiGLU: ``h, gate = x.chunk(2, dim)``; ``h * silu(gate)`` (same split as :func:`geglu`)."""
    return _gated(input, dim, "swiglu", lambda g: g * jax.nn.sigmoid(g))


def reglu(input: jax.Array, dim: int = -1) -> jax.Array:
    r"""ReGLU: ``h, gate = x.chunk(2, dim)``; ``h * relu(gate)`` (same split as :func:`geglu`)."""
    return _gated(input, dim, "reglu", jax.nn.relu)


def _softmax_dim(ndim: int, dim: int | None, fname: str) -> int:
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {fname} has been deprecated (as in torch). Pass `dim`.",
            UserWarning,
            stacklevel=3,
        )
        dim = 0 if ndim in (0, 1, 3) else 1
    return canonical_dim(dim, ndim)


def softmax(input: jax.Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``dim`` (max-shifted, so it never overflows).

    ``dtype`` casts the input first, as torch does. ``dim=None`` picks torch's legacy implicit
    dimension with a warning.
    """
    check_float(input, "input")
    x = jnp.asarray(input if dtype is None else jnp.asarray(input).astype(dtype))
    axis = _softmax_dim(x.ndim, dim, "softmax")
    if x.ndim == 0:
        return jnp.ones_like(x)
    return _apply(x, lambda v: jax.nn.softmax(v, axis=axis))


def log_softmax(input: jax.Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r""":math:`x_i - \log \sum_j e^{x_j}` along ``dim`` (max-shifted)."""
    check_float(input, "input")
    x = jnp.asarray(input if dtype is None else jnp.asarray(input).astype(dtype))
    axis = _softmax_dim(x.ndim, dim, "log_softmax")
    if x.ndim == 0:
        return jnp.zeros_like(x)
    return _apply(x, lambda v: jax.nn.log_softmax(v, axis=axis))


swish = silu
