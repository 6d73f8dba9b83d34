"""The activation family with torch.nn.functional's arguments, defaults, values and gradients.

float16 and bfloat16 round where torch's CPU op sequence rounds:

* What torch computes in ONE fused kernel (gelu, silu, mish, softplus, elu, sigmoid, tanh, glu,
  softmax, log_softmax, ...) jaxnn computes in float32 and rounds once to the input dtype: the
  correctly rounded value, up to float32's own accuracy (an exact value within a few float32 ulps
  of a tie between two half-precision neighbours can round either way, in torch as in jaxnn).
  Where torch's CPU kernel is less accurate than that, the function's docstring says how.
* What torch writes as a SEQUENCE of ops (``F.softsign``, ``F.tanhshrink``, and the GLU variants
  geglu/swiglu/reglu as diffusers and transformers write them, ``h * F.gelu(gate)``) rounds after
  every op, at the same boundaries as torch: the results are torch's, bit for bit.
* Gradients follow the same rule: one rounding per torch backward kernel, reading what torch's
  kernel reads (sigmoid's, tanh's, glu's and softmax's backward read the rounded forward output),
  and one rounding per op of a composite's backward. Gradients at kinks follow torch's autograd
  (custom_jvp where plain autodiff would differ).

Limits of the rule: XLA flushes float32 subnormals to zero (CPU and GPU), and bfloat16 shares
float32's exponent range, so bfloat16 values below ~1.2e-38 are 0 here where torch keeps a
subnormal. The float16 intermediate roundings are float32 -> float16 -> float32 conversions,
which (from XLA's source; not measured) its GPU compiler folds away unless
``XLA_FLAGS=--xla_allow_excess_precision=false``; on CPU they are kept. bfloat16 roundings use
``lax.reduce_precision``, which every backend keeps.

At +-inf the functions return their limits (gelu(-inf) = 0, silu(-inf) = 0, softsign(inf) = 1),
also where torch's formula gives ``inf * 0 = nan``. torch's ``inplace=`` arguments are accepted
and ignored: JAX arrays are immutable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._utils import canonical_dim, check_array, check_float, check_same_dtype, shape_str, stat_dtype

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = 1.0 / math.sqrt(2.0)
_GELU_BETA = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


def _apply(input: Any, f: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """Run ``f`` in float32 (at least) and return the input dtype: one rounding, torch's fused kernel."""
    check_float(input, "input")
    x = jnp.asarray(input)
    compute = stat_dtype(x.dtype)
    if compute == x.dtype:
        return f(x)
    return f(x.astype(compute)).astype(x.dtype)


def _apply_rounding(input: Any, f: Callable[[jax.Array, Any], jax.Array]) -> jax.Array:
    """:func:`_apply` for ``f(x, dtype)``, which rounds intermediate results to the input ``dtype``."""
    check_float(input, "input")
    dtype = jnp.asarray(input).dtype
    return _apply(input, lambda x: f(x, dtype))


def _round(x: jax.Array, dtype: Any) -> jax.Array:
    """``x`` rounded to ``dtype`` and kept in ``x``'s dtype: where torch stores an op's result.

    bfloat16: ``lax.reduce_precision``, the same bits as a float32 -> bfloat16 -> float32
    conversion pair, which XLA's GPU compiler would fold away (SimplifyFPConversions). float16:
    the conversion pair, since reduce_precision flushes float16's subnormals. JAX differentiates
    both as linear maps, so in a tangent the rounding transposes to a rounding of the cotangent:
    :func:`_rounded_slope` uses that for torch's backward roundings.
    """
    dtype = jnp.dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype == jnp.bfloat16:
        return lax.reduce_precision(x, exponent_bits=8, mantissa_bits=7)
    return x.astype(dtype).astype(x.dtype)


def _rounded_slope(slope: jax.Array, dx: jax.Array, dtype: Any) -> jax.Array:
    """The tangent ``slope * dx`` of a fused kernel whose backward, ``slope * grad``, torch rounds
    to ``dtype``. The rounding is written on ``dx``: transposition (the vjp) reverses the order, so
    the gradient is ``round(slope * grad)``, as torch's, also inside a composite."""
    return slope * _round(dx, dtype)


def _zero_at_neg_inf(x: jax.Array, y: jax.Array) -> jax.Array:
    """``y = x * g(x)`` with ``g(-inf) = 0``: the limit at ``x = -inf`` is 0, not ``-inf * 0 = nan``."""
    return jnp.where(x == -jnp.inf, jnp.zeros_like(y), y)


def _scalar_in(value: float, dtype: Any) -> float:
    """A Python number as torch's kernels see it in ``dtype`` (``Scalar.to<scalar_t>()``: through
    float32 for the half types)."""
    dtype = jnp.dtype(dtype)
    if dtype.itemsize < 4:
        return float(np.float32(value).astype(dtype))
    return float(np.asarray(value, dtype))


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
    return _zero_at_neg_inf(x, x * jnp.minimum(jnp.maximum(x + 3.0, 0.0), 6.0) / 6.0)


@_hardswish.defjvp
def _hardswish_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    # torch: x/3 + 1/2 strictly inside (-3, 3); 0 at and below -3; 1 at and above 3. Written as
    # (x + 1.5) / 3, exactly 0 at x = -1.5 also where XLA divides by multiplying with 1/3.
    slope = jnp.where(x <= -3.0, 0.0, jnp.where(x < 3.0, (x + 1.5) / 3.0, 1.0)).astype(x.dtype)
    return _hardswish(x), slope * dx


def _gelu_erf(x: jax.Array, dtype: Any) -> jax.Array:
    """Exact gelu of ``x`` (already in the compute dtype) for an input of ``dtype``.

    float16/bfloat16: ``x * erfc(-x / sqrt(2)) / 2``, correctly rounded after the one rounding to
    the half dtype (torch's ``1 + erf(x / sqrt(2))`` cancels in float32 for x < 0, which the half
    result shows). float32/float64: torch's own formula, ``x / 2 * (1 + erf(x / sqrt(2)))``: the
    cancellation costs ~1e-7 absolute, as in torch, and XLA's CPU erfc takes 2.6x erf's time
    (gelu of (4, 320, 64, 64): 3.1 vs 1.2 ms, measured).
    """
    if jnp.dtype(dtype).itemsize < 4:
        return _zero_at_neg_inf(x, x * (0.5 * lax.erfc(x * -_SQRT1_2)))
    return _zero_at_neg_inf(x, x * 0.5 * (1.0 + lax.erf(x * _SQRT1_2)))


def _gelu_tanh(x: jax.Array) -> jax.Array:
    # (1 + tanh(u)) / 2 = sigmoid(2u): no cancellation for x < 0.
    inner = x + _GELU_KAPPA * (x * x * x)
    return _zero_at_neg_inf(x, x * lax.logistic((2.0 * _GELU_BETA) * inner))


def _silu(x: jax.Array) -> jax.Array:
    return _zero_at_neg_inf(x, x * lax.logistic(x))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _sigmoid(x: jax.Array, dtype: Any) -> jax.Array:
    return _round(lax.logistic(x), dtype)


@_sigmoid.defjvp
def _sigmoid_jvp(dtype, primals, tangents):
    (x,), (dx,) = primals, tangents
    y = _sigmoid(x, dtype)  # torch's sigmoid_backward reads the stored (rounded) output
    return y, _rounded_slope((1.0 - y) * y, dx, dtype)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _tanh(x: jax.Array, dtype: Any) -> jax.Array:
    return _round(jnp.tanh(x), dtype)


@_tanh.defjvp
def _tanh_jvp(dtype, primals, tangents):
    (x,), (dx,) = primals, tangents
    y = _tanh(x, dtype)  # torch's tanh_backward reads the stored (rounded) output
    return y, _rounded_slope(1.0 - y * y, dx, dtype)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _logsigmoid(x: jax.Array, dtype: Any) -> jax.Array:
    return jax.nn.log_sigmoid(x)


@_logsigmoid.defjvp
def _logsigmoid_jvp(dtype, primals, tangents):
    (x,), (dx,) = primals, tangents
    # torch's backward reads the buffer exp(-|x|) its forward stored in the input's dtype.
    b = _round(jnp.exp(-jnp.abs(x)), dtype)
    q = b / (1.0 + b)
    return _logsigmoid(x, dtype), _rounded_slope(jnp.where(x < 0, 1.0 - q, q), dx, dtype)


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _div(x: jax.Array, d: jax.Array, dtype: Any) -> jax.Array:
    return x / d


@_div.defjvp
def _div_jvp(dtype, primals, tangents):
    (x, d), (dx, dd) = primals, tangents
    # torch's div backward, each op rounding to the dtype: grad / d for x, -grad * ((x / d) / d) for d.
    q2 = _round(_round(x / d, dtype) / d, dtype)
    return x / d, _round(dx, dtype) / d - q2 * _round(dd, dtype)


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _softshrink(x: jax.Array, lambd: float, lambd_grad: float) -> jax.Array:
    # |x| <= lambd -> 0, else x - sign(x) * lambd; NaN stays NaN, as in torch.
    return jnp.where(jnp.abs(x) <= lambd, jnp.zeros_like(x), x - jnp.sign(x) * lambd)


@_softshrink.defjvp
def _softshrink_jvp(lambd, lambd_grad, primals, tangents):
    (x,), (dx,) = primals, tangents
    # torch's backward compares with lambd in the input's dtype, its forward in float32.
    zero = (x >= -lambd_grad) & (x <= lambd_grad)
    return _softshrink(x, lambd, lambd_grad), jnp.where(zero, jnp.zeros_like(dx), dx)


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


@jax.custom_jvp
def _expm1(x: jax.Array) -> jax.Array:
    return jnp.expm1(x)


@_expm1.defjvp
def _expm1_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    # exp(x), as torch's elu_backward; jnp.expm1's own rule, expm1(x) + 1, cancels for x << 0.
    return _expm1(x), jnp.exp(x) * dx


def _elu(x: jax.Array, alpha: float, scale: float, input_scale: float) -> jax.Array:
    # The negative branch only sees non-positive values, so its gradient never meets inf * 0.
    safe = jnp.where(x > 0, jnp.zeros_like(x), x)  # not jnp.minimum: its gradient halves at 0
    neg = _expm1(safe * input_scale) * (alpha * scale)
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


def gelu(input: jax.Array, *, approximate: Literal["none", "tanh"] = "none") -> jax.Array:
    r"""Gaussian error linear unit, EXACT by default as in torch.

    .. math::
        \mathrm{gelu}(x) = x \Phi(x) = \tfrac{x}{2}\left(1 + \mathrm{erf}(x/\sqrt{2})\right)
        = \tfrac{x}{2}\,\mathrm{erfc}(-x/\sqrt{2})

    ``approximate='tanh'``: :math:`\tfrac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`, computed
    as :math:`x\,\sigma(2\sqrt{2/\pi}(x + 0.044715 x^3))`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.functional import gelu
      >>> gelu(jnp.array([-1.0, 0.0, 1.0]))
      Array([-0.15865526,  0.        ,  0.8413447 ], dtype=float32)

    Differences from PyTorch:
      torch's CPU kernel computes :math:`\tfrac{x}{2}(1 + \mathrm{erf}(x/\sqrt{2}))` (and
      :math:`1 + \tanh` for ``'tanh'``) in float32; for :math:`x \lesssim -2` the sum cancels
      (float32 gelu(-3.0) is -0.00405023 in torch, -0.0040497 exactly), so torch's
      float16/bfloat16 results in the negative tail are often units in the last place off
      (bfloat16 gelu(-3.828125) is -0.0002460479736328125 in torch, -0.000247955322265625
      correctly rounded: exact -0.00024715) and are 0 below about -5.5. jaxnn writes the same
      function with erfc for float16/bfloat16 inputs (sigmoid for ``'tanh'``), which does not
      cancel, so half results are correctly rounded. float32/float64 inputs use torch's erf
      formula (torch's numbers; erfc costs XLA's CPU backend 2.6x erf's time). torch's vectorised
      kernel also returns nan for +inf in some vector lanes, and for -inf; jaxnn returns the
      limits +inf and 0.

    Differences from jax.nn / flax:
      ``jax.nn.gelu`` and flax default to the tanh approximation (``approximate=True``), which
      differs from torch's default by up to ~5e-4; enough to break a ported checkpoint.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}.")
    if approximate == "tanh":
        return _apply(input, _gelu_tanh)
    return _apply_rounding(input, _gelu_erf)


def silu(input: jax.Array, inplace: bool = False) -> jax.Array:
    r"""Sigmoid linear unit (swish), :math:`x \sigma(x)`; stable for large :math:`|x|`, 0 at -inf."""
    return _apply(input, _silu)


def mish(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`x \tanh(\mathrm{softplus}(x))` with an overflow-free softplus; 0 at -inf."""
    return _apply(input, lambda x: _zero_at_neg_inf(x, x * jnp.tanh(jnp.logaddexp(x, 0.0))))


def sigmoid(input: jax.Array) -> jax.Array:
    r"""Logistic function :math:`1 / (1 + e^{-x})`.

    Differences from PyTorch:
      The gradient is :math:`g\,(1 - y)\,y` from the rounded output :math:`y`, as torch's,
      rounded once. torch's float16 backward kernel rounds :math:`1 - y` and :math:`g(1 - y)` to
      float16 as well (its bfloat16 kernel does not), so its float16 gradients can be one unit in
      the last place from jaxnn's correctly rounded ones.
    """
    return _apply_rounding(input, _sigmoid)


def tanh(input: jax.Array) -> jax.Array:
    r"""Hyperbolic tangent; the gradient :math:`g\,(1 - y^2)` reads the rounded output, as torch's."""
    return _apply_rounding(input, _tanh)


def hardsigmoid(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`\mathrm{relu6}(x + 3) / 6`; gradient 1/6 strictly inside (-3, 3), else 0."""
    return _apply(input, lambda x: _hardtanh(x + 3.0, 0.0, 6.0) / 6.0)


def hardswish(input: jax.Array, inplace: bool = False) -> jax.Array:
    r""":math:`x \cdot \mathrm{relu6}(x + 3) / 6`; gradient as torch's (0 at -3, 1 at 3); 0 at -inf."""
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
    r""":math:`x / (1 + |x|)`, rounded where torch's ``input / (input.abs() + 1)`` rounds.

    torch writes softsign as two ops: in float16/bfloat16 :math:`|x| + 1` is rounded before the
    division, and so is each op of the division's backward; jaxnn rounds at the same places, so
    values and gradients are torch's bit for bit. At :math:`\pm\infty` it returns the limit
    :math:`\pm 1` (torch's formula gives ``inf / inf = nan``).
    """

    def f(x: jax.Array, dtype: Any) -> jax.Array:
        d = _round(jnp.abs(x) + 1.0, dtype)
        return jnp.where(jnp.isinf(x), jnp.sign(x), _div(x, d, dtype))

    return _apply_rounding(input, f)


def logsigmoid(input: jax.Array) -> jax.Array:
    r""":math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`, finite for all finite ``x``.

    The gradient reads :math:`e^{-|x|}` rounded to the input dtype, the buffer torch's forward
    stores for its backward.
    """
    return _apply_rounding(input, _logsigmoid)


def tanhshrink(input: jax.Array) -> jax.Array:
    r""":math:`x - \tanh(x)`, rounded where torch's ``input - input.tanh()`` rounds.

    In float16/bfloat16 torch rounds :math:`\tanh(x)` before the subtraction (and its backward
    before adding the two gradient paths); jaxnn does the same, so results are torch's bit for bit.
    """
    return _apply_rounding(input, lambda x, dtype: x - _tanh(x, dtype))


def softshrink(input: jax.Array, lambd: float = 0.5) -> jax.Array:
    r""":math:`x - \lambda` above ``lambd``, :math:`x + \lambda` below ``-lambd``, else 0.

    As torch, the value compares with ``lambd`` in float32 and the gradient with ``lambd`` rounded
    to the input dtype (they differ for a half-precision input equal to that rounded ``lambd``).

    Raises:
      ValueError: if ``lambd`` < 0.
    """
    if lambd < 0:
        raise ValueError(f"`lambd` of softshrink must be greater or equal to 0, got {lambd}.")
    check_float(input, "input")
    lambd_grad = _scalar_in(lambd, jnp.asarray(input).dtype)
    return _apply(input, lambda x: _softshrink(x, lambd, lambd_grad))


def hardshrink(input: jax.Array, lambd: float = 0.5) -> jax.Array:
    r""":math:`x` where :math:`|x| >` ``lambd`` (0 on the closed interval ``[-lambd, lambd]``).

    ``lambd`` is rounded to the input dtype first, as torch does.
    """
    check_float(input, "input")
    x = jnp.asarray(input)
    lam = _scalar_in(lambd, x.dtype)
    return jnp.where((x >= -lam) & (x <= lam), jnp.zeros_like(x), x)


def threshold(input: jax.Array, threshold: float, value: float, inplace: bool = False) -> jax.Array:
    r""":math:`x` where :math:`x >` ``threshold``, else ``value`` (gradient 0 at the threshold).

    NaN inputs stay NaN (torch tests ``x <= threshold``).
    """
    thr = threshold
    return _apply(input, lambda x: jnp.where(x <= thr, jnp.asarray(value, x.dtype), x))


def prelu(input: jax.Array, weight: jax.Array) -> jax.Array:
    r""":math:`x` if :math:`x > 0` else ``weight`` :math:`\cdot x`, per channel (dimension 1).

    Args:
      input: ``(N, C, *)``, or any shape (0-d included, as torch) with a single-element
        ``weight``; a 0-d or 1-D input has one channel.
      weight: ``(1,)`` (shared) or ``(C,)``; a 0-d weight acts as ``(1,)``.
    """
    check_float(input, "input")
    check_float(weight, "weight")
    check_same_dtype(input, weight, "weight")
    if weight.ndim > 1:
        raise ValueError(f"`weight` of prelu must be a scalar or 1D, got shape {shape_str(weight.shape)}.")
    channels = input.shape[1] if input.ndim >= 2 else 1
    size = weight.size
    if input.ndim == 0 and size != 1:
        raise ValueError(f"a 0-d `input` of prelu needs a single-element `weight`, got {size} elements.")
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
    """torch's op sequence ``h * act(gate)``: ``act`` (one fused kernel) rounds to the input dtype,
    then the product, exact in float32 for half inputs, rounds once; autodiff then rounds the
    backward's products ``grad * act(gate)``, ``grad * h`` and ``act``'s backward as torch's do."""
    h, gate = _halves(input, dim, fname)
    dtype = h.dtype
    compute = stat_dtype(dtype)
    return (h.astype(compute) * _round(act(gate.astype(compute)), dtype)).astype(dtype)


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _glu(a: jax.Array, b: jax.Array, dtype: Any) -> jax.Array:
    return a * lax.logistic(b)


@_glu.defjvp
def _glu_jvp(dtype, primals, tangents):
    (a, b), (da, db) = primals, tangents
    # torch's glu_backward stores sigmoid(b) in the input dtype first: grad_a = sigmoid(b) * grad,
    # grad_b = (1 - sigmoid(b)) * sigmoid(b) * a * grad, each rounded once.
    s = _round(lax.logistic(b), dtype)
    tangent = _rounded_slope(s, da, dtype) + _rounded_slope(a * (1.0 - s) * s, db, dtype)
    return _glu(a, b, dtype), tangent


def glu(input: jax.Array, dim: int = -1) -> jax.Array:
    r"""Gated linear unit: ``a * sigmoid(b)`` with ``a, b`` the first and second halves along ``dim``.

    One fused kernel in torch: the value is rounded once; the gradient reads ``sigmoid(b)``
    rounded to the input dtype, as torch's backward does.
    """
    a, b = _halves(input, dim, "glu")
    compute = stat_dtype(a.dtype)
    return _glu(a.astype(compute), b.astype(compute), a.dtype).astype(a.dtype)


def geglu(input: jax.Array, dim: int = -1, approximate: Literal["none", "tanh"] = "none") -> jax.Array:
    r"""GEGLU as diffusers writes it: ``h, gate = x.chunk(2, dim)``; ``h * gelu(gate)``.

    Exact gelu by default (the old Flax port of Stable Diffusion used the tanh form and drifted).
    In float16/bfloat16, ``gelu(gate)`` is rounded to the input dtype before the product, as
    torch's two ops round: in bfloat16, ``[h, gate] = [1.5, 1.0]`` gives 1.2578125 (gelu(1.0)
    rounds to 0.83984375 first), not the once-rounded 1.265625. Gradients round where torch's
    backward ops round. Where torch's own gelu kernel is off (see :func:`gelu`), so is torch's GEGLU.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.functional import geglu
      >>> geglu(jnp.array([2.0, 1.0]))
      Array([1.6826894], dtype=float32)
      >>> geglu(jnp.array([1.5, 1.0], jnp.bfloat16))
      Array([1.25781], dtype=bfloat16)

    References:
      Shazeer, "GLU Variants Improve Transformer", 2020.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"`approximate` must be 'none' or 'tanh', got {approximate!r}.")
    check_float(input, "input")
    dtype = jnp.asarray(input).dtype
    return _gated(input, dim, "geglu", _gelu_tanh if approximate == "tanh" else lambda g: _gelu_erf(g, dtype))


def swiglu(input: jax.Array, dim: int = -1) -> jax.Array:
    r"""SwiGLU: ``h, gate = x.chunk(2, dim)``; ``h * silu(gate)`` (same split and rounding as :func:`geglu`)."""
    return _gated(input, dim, "swiglu", _silu)


def reglu(input: jax.Array, dim: int = -1) -> jax.Array:
    r"""ReGLU: ``h, gate = x.chunk(2, dim)``; ``h * relu(gate)`` (same split and rounding as :func:`geglu`)."""
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


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _softmax(x: jax.Array, axis: int, dtype: Any) -> jax.Array:
    e = jnp.exp(x - lax.stop_gradient(jnp.max(x, axis, keepdims=True, initial=-jnp.inf)))
    return e / jnp.sum(e, axis, keepdims=True)


@_softmax.defjvp
def _softmax_jvp(axis, dtype, primals, tangents):
    (x,), (dx,) = primals, tangents
    y = _softmax(x, axis, dtype)
    # torch's backward reads the stored (rounded) output: y * (grad - sum(grad * y)), rounded once.
    # The map is symmetric, so the tangent has the same form.
    yr, t = _round(y, dtype), _round(dx, dtype)
    return y, yr * (t - jnp.sum(yr * t, axis, keepdims=True))


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _log_softmax(x: jax.Array, axis: int, dtype: Any) -> jax.Array:
    s = x - lax.stop_gradient(jnp.max(x, axis, keepdims=True, initial=-jnp.inf))
    if x.dtype == jnp.dtype(dtype):  # float32/float64: torch's formula
        return s - jnp.log(jnp.sum(jnp.exp(s), axis, keepdims=True))
    # Half precision, computed in float32: log(sum(exp(s))) as log1p(the sum less one maximum's
    # exact 1), so that a row dominated by one entry keeps the small offset the half result shows,
    # e.g. log(1 + 3.6e-6), which float32's 1 + 3.6e-6 keeps to 2% only. (A second row sum: on
    # CPU about 4x the time of the float32 formula.)
    top = s == 0
    rest = jnp.sum(jnp.where(top, jnp.zeros_like(s), jnp.exp(s)), axis, keepdims=True)
    rest = rest + (jnp.sum(top, axis, keepdims=True) - 1).astype(s.dtype)
    return s - jnp.log1p(rest)


@_log_softmax.defjvp
def _log_softmax_jvp(axis, dtype, primals, tangents):
    (x,), (dx,) = primals, tangents
    y = _log_softmax(x, axis, dtype)
    # torch's backward: grad - exp(y) * sum(grad) with the stored (rounded) y, rounded once; the
    # tangent is the transposed map, t - sum(exp(y) * t).
    p, t = jnp.exp(_round(y, dtype)), _round(dx, dtype)
    return y, t - jnp.sum(p * t, axis, keepdims=True)


def softmax(input: jax.Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``dim`` (max-shifted, so it never overflows).

    ``dtype`` casts the input first, as torch does. ``dim=None`` picks torch's legacy implicit
    dimension with a warning. Computed in float32 and rounded once; the gradient reads the rounded
    output, as torch's backward does.

    Differences from PyTorch:
      Along the last dimension torch's CPU kernel is correctly rounded too. Along another
      dimension it stores the exponentials in float16/bfloat16 before summing and dividing, and
      about one in six of its half-precision results is one unit in the last place off the
      correctly rounded value jaxnn returns (measured with torch 2.13, all CPU capabilities).
    """
    check_float(input, "input")
    x = jnp.asarray(input if dtype is None else jnp.asarray(input).astype(dtype))
    axis = _softmax_dim(x.ndim, dim, "softmax")
    if x.ndim == 0:
        return jnp.ones_like(x)
    return _apply(x, lambda v: _softmax(v, axis, x.dtype))


def log_softmax(input: jax.Array, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> jax.Array:
    r""":math:`x_i - \log \sum_j e^{x_j}` along ``dim`` (max-shifted), correctly rounded in float16/bfloat16.

    The gradient reads the rounded output, as torch's backward does.

    Differences from PyTorch:
      torch's CPU kernel along the last dimension stores the float32 sum of exponentials in the
      half dtype, then its log, and returns :math:`(x - \max) - \log` rounded: about one in five
      of its float16/bfloat16 results differs from the correctly rounded value jaxnn returns, and
      results near 0 lose all their bits: bfloat16 ``log_softmax([10.0, -2.53125])`` is
      ``[0.0, -12.5]`` in torch and ``[-3.6e-06, -12.5625]`` correctly rounded (the sum
      1 + 3.6e-6 rounds to 1). Along other dimensions torch rounds correctly.
    """
    check_float(input, "input")
    x = jnp.asarray(input if dtype is None else jnp.asarray(input).astype(dtype))
    axis = _softmax_dim(x.ndim, dim, "log_softmax")
    if x.ndim == 0:
        return jnp.zeros_like(x)
    return _apply(x, lambda v: _log_softmax(v, axis, x.dtype))


swish = silu
