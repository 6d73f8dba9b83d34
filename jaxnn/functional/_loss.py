"""Loss functions with torch.nn.functional's signatures, defaults, shapes, errors and formulas.

Each formula follows torch 2.13's own op sequence (``torch/nn/functional.py`` and ATen's
``Loss.cpp`` / ``LossNLL.cpp``), so the special cases come out the same: the weighted mean of
``nll_loss``/``cross_entropy`` divides by the sum of the selected weights, an all-ignored batch gives
``nan``, ``binary_cross_entropy`` clamps its logs at -100 and has torch's clamped gradient,
``binary_cross_entropy_with_logits`` uses the log-sigmoid form that is finite for any finite logit.

Dtypes: float16/bfloat16 inputs are computed in float32 and rounded to the input's dtype where
torch's ops round (a mean: the float32 sum is rounded, then divided and rounded again, as torch's CPU
``mean`` does). Unreduced results are bit-exact with torch's for mse_loss, l1_loss, soft_margin_loss,
binary_cross_entropy(_with_logits), poisson_nll_loss, gaussian_nll_loss, hinge_embedding_loss,
margin_ranking_loss and nll_loss (tested); smooth_l1_loss/huber_loss (torch's float16 and bfloat16
kernels round differently, a vectorisation choice not copied), kl_div, cross_entropy,
multilabel_soft_margin_loss, cosine_embedding_loss and triplet_margin_loss agree to a few units in
the last place of the half dtype, as do reductions (their float32 summation order differs).

Reductions: ``reduction`` is ``'mean'`` (default), ``'sum'`` or ``'none'``. The deprecated
``size_average`` and ``reduce`` arguments are accepted where torch's signature has them and, when
either is given, override ``reduction`` with torch's legacy rule (``_Reduction.legacy_get_string``),
warning as torch does.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._utils import check_array, check_float, shape_str, stat_dtype

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
_REDUCTIONS = ("none", "mean", "sum")


class TargetOutOfBoundsError(ValueError, IndexError):
    """A class index outside ``[0, C)`` (and not ``ignore_index``): torch raises IndexError."""


# --- shared helpers ----------------------------------------------------------------------------------


def legacy_reduction(size_average: bool | None, reduce: bool | None, emit_warning: bool = True) -> str:
    """torch's ``_Reduction.legacy_get_string``: None counts as True; ``reduce=False`` wins."""
    if size_average is None:
        size_average = True
    if reduce is None:
        reduce = True
    ret = "mean" if (size_average and reduce) else "sum" if reduce else "none"
    if emit_warning:
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
            UserWarning,
            stacklevel=3,
        )
    return ret


def _reduction(reduction: Any, size_average: Any = None, reduce: Any = None, allowed=_REDUCTIONS) -> str:
    if size_average is not None or reduce is not None:
        return legacy_reduction(size_average, reduce)
    if reduction not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{reduction} is not a valid value for reduction: `reduction` must be one of {choices}.")
    return reduction


def _is_concrete(*arrays: Any) -> bool:
    """True when every array has values now (not traced under jit/vmap/grad): the range checks run."""
    for a in arrays:
        if a is None:
            continue
        try:
            np.asarray(a)
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            return False
    return True


def _float_dtype(*arrays: Any) -> Any:
    return jnp.result_type(*[a for a in arrays if a is not None])


def _broadcast_shape(names: tuple[str, ...], *arrays: Any) -> tuple[int, ...]:
    shapes = [tuple(np.shape(a)) for a in arrays]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        shown = ", ".join(f"`{n}` {shape_str(s)}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(f"the shapes of {shown} do not broadcast against each other (torch's broadcasting rule).") \
            from None


def _bc(shape: tuple[int, ...], *arrays: Any) -> list[Any]:
    """Broadcast explicitly (jaxnn runs with ``jax_numpy_rank_promotion='raise'`` in its tests)."""
    return [None if a is None else jnp.broadcast_to(a, shape) for a in arrays]


def _size_warning(input: Any, target: Any) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({shape_str(target.shape)}) that is different to the input size "
            f"({shape_str(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )


def _reduce(loss: jax.Array, reduction: str, dtype: Any) -> jax.Array:
    """torch's ``apply_loss_reduction`` on a loss computed in the op-math dtype, rounded to ``dtype``."""
    if reduction == "none":
        return loss.astype(dtype)
    total = jnp.sum(loss)
    if reduction == "sum":
        return total.astype(dtype)
    if jnp.dtype(dtype) in _HALF:  # torch's CPU mean: sum (float32 accumulation) rounded, then divided
        total = total.astype(dtype).astype(loss.dtype)
    return (total / loss.size).astype(dtype) if loss.size else jnp.full((), jnp.nan, dtype)


def _rounder(dtype: Any) -> Any:
    """Round a float32 intermediate to ``dtype`` where torch's op rounds it (float16/bfloat16 only):
    the half-precision results of the losses whose torch ops round each step are then bit-exact."""
    if jnp.dtype(dtype) not in _HALF:
        return lambda a: a
    return lambda a: a.astype(dtype).astype(jnp.float32)


@jax.custom_jvp
def _abs(z: jax.Array) -> jax.Array:
    """``z.abs()`` with torch's gradient ``sign(z)``: 0 at ``z == 0`` (``jnp.abs``'s is 1 there)."""
    return jnp.abs(z)


@_abs.defjvp
def _abs_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return jnp.abs(z), jnp.sign(z) * dz


def _clamp_min0(z: jax.Array) -> jax.Array:
    """``z.clamp_min(0)`` with torch's gradient (1 where ``z >= 0``) and nan kept."""
    return jnp.where(z < 0, jnp.zeros((), z.dtype), z)


def _pointwise_args(input: Any, target: Any, weight: Any = None, integer_target: bool = True,
                    integer_input: bool = False) -> tuple[jax.Array, jax.Array, Any, Any]:
    """Floating ``input``; ``target`` floating, or integer where torch promotes it (mse_loss, ...).
    ``integer_input``: an integer ``input`` with a floating ``target`` is promoted too, as torch's
    mse_loss / l1_loss / smooth_l1_loss / poisson_nll_loss do (two integer arrays: TypeError)."""
    check_array(input, "input")
    if not (integer_input and jnp.issubdtype(input.dtype, jnp.integer) and hasattr(target, "dtype")
            and jnp.issubdtype(target.dtype, jnp.floating)):
        check_float(input, "input")
    if integer_target:
        check_array(target, "target")
        if not (jnp.issubdtype(target.dtype, jnp.floating) or jnp.issubdtype(target.dtype, jnp.integer)):
            raise TypeError(f"`target` must have a floating or integer dtype, got {target.dtype}.")
    else:
        check_float(target, "target")
    if weight is not None:
        check_float(weight, "weight")
    dtype = _float_dtype(input, target, weight)
    ct = stat_dtype(dtype)
    shape = _broadcast_shape(("input", "target"), input, target)
    x, t = _bc(shape, jnp.asarray(input, ct), jnp.asarray(target, ct))
    return x, t, dtype, ct


def _weighted(loss: jax.Array, input: Any, weight: Any, reduction: str, dtype: Any, ct: Any,
              mean_by_weight: bool) -> jax.Array:
    """The ``weight=`` branch of torch's mse_loss / l1_loss / huber_loss (``torch/nn/functional.py``)."""
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(
            f"Weights and input must have the same size: `weight` {shape_str(weight.shape)} vs `input` "
            f"{shape_str(input.shape)}."
        )
    loss = _rounder(dtype)(loss * jnp.broadcast_to(jnp.asarray(weight, ct), loss.shape))
    if reduction == "mean" and mean_by_weight:
        return (jnp.sum(loss) / jnp.sum(jnp.asarray(weight, ct))).astype(dtype)
    return _reduce(loss, reduction, dtype)


# --- regression losses --------------------------------------------------------------------------------


def mse_loss(
    input: jax.Array,
    target: jax.Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: jax.Array | None = None,
) -> jax.Array:
    r"""``torch.nn.functional.mse_loss``: squared error :math:`\ell = (x - y)^2`, reduced.

    .. math::
        \ell_i = w_i (x_i - y_i)^2,\qquad \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_i}
        \ (\text{or } \tfrac{1}{n}\textstyle\sum_i \ell_i \text{ without weight})

    Args:
      input, target: arrays that broadcast (torch warns when their shapes differ; so does jaxnn),
        floating, or integer where the other is floating (promoted, as torch's).
      size_average, reduce: deprecated; either one overrides ``reduction`` (torch's legacy rule).
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
      weight: optional per-element weights of exactly ``input``'s shape; ``'mean'`` then divides by
        ``weight.sum()`` (torch 2.13's rule).

    Returns:
      A scalar, or the broadcast shape with ``reduction='none'``; the inputs' promoted dtype.

    Raises:
      ValueError: shapes that do not broadcast, a ``weight`` not of ``input``'s shape, an invalid
        ``reduction``. TypeError: two non-floating arrays.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]))
      Array(2.5, dtype=float32)

    Differences from PyTorch: float16/bfloat16 are computed in float32 and rounded once (see the
    module docstring).
    """
    reduction = _reduction(reduction, size_average, reduce)
    x, t, dtype, ct = _pointwise_args(input, target, weight, integer_input=True)
    _size_warning(input, target)
    r = _rounder(dtype)
    d = r(x - t)
    loss = r(d * d)
    if weight is not None:
        return _weighted(loss, input, weight, reduction, dtype, ct, mean_by_weight=True)
    return _reduce(loss, reduction, dtype)


def l1_loss(
    input: jax.Array,
    target: jax.Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: jax.Array | None = None,
) -> jax.Array:
    r"""``torch.nn.functional.l1_loss``: absolute error :math:`\ell_i = w_i |x_i - y_i|`, reduced.

    Args:
      input, target: arrays that broadcast (a UserWarning when the shapes differ, as torch); as
        :func:`mse_loss`, an integer ``input`` or ``target`` is promoted when the other is floating.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
      weight: optional, exactly ``input``'s shape; ``'mean'`` divides by ``weight.sum()``.

    Returns:
      A scalar or the broadcast shape (``'none'``). The gradient at ``x == y`` is 0, as torch's ``sign``.

    Raises:
      ValueError / TypeError: as :func:`mse_loss`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.l1_loss(jnp.array([1.0, -2.0]), jnp.zeros(2), reduction="sum")
      Array(3., dtype=float32)
    """
    reduction = _reduction(reduction, size_average, reduce)
    x, t, dtype, ct = _pointwise_args(input, target, weight, integer_input=True)
    _size_warning(input, target)
    loss = _abs(x - t)
    if weight is not None:
        return _weighted(loss, input, weight, reduction, dtype, ct, mean_by_weight=True)
    return _reduce(loss, reduction, dtype)


def smooth_l1_loss(
    input: jax.Array,
    target: jax.Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> jax.Array:
    r"""``torch.nn.functional.smooth_l1_loss``: quadratic below ``beta``, linear above.

    .. math::
        \ell_i = \begin{cases} 0.5 (x_i - y_i)^2 / \beta & |x_i - y_i| < \beta \\
        |x_i - y_i| - 0.5 \beta & \text{otherwise} \end{cases}

    ``beta = 0`` is :func:`l1_loss`, as in torch.

    Args:
      input, target: arrays that broadcast; an integer ``input`` or ``target`` is promoted when the
        other is floating (torch's type promotion).
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
      beta: the threshold, ``>= 0``.

    Raises:
      ValueError: negative ``beta``; as :func:`mse_loss` otherwise.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none")
      Array([0.125, 2.5  ], dtype=float32)
    """
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta: `beta` (={beta}) must be >= 0.")
    reduction = _reduction(reduction, size_average, reduce)
    x, t, dtype, ct = _pointwise_args(input, target, integer_input=True)
    _size_warning(input, target)
    d = x - t
    z = _abs(d)
    if beta == 0.0:
        return _reduce(z, reduction, dtype)
    b = jnp.asarray(beta, ct)
    loss = jnp.where(z < b, 0.5 * d * d / b, z - 0.5 * b)
    return _reduce(loss, reduction, dtype)


def huber_loss(
    input: jax.Array,
    target: jax.Array,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: jax.Array | None = None,
) -> jax.Array:
    r"""``torch.nn.functional.huber_loss``: quadratic below ``delta``, ``delta``-scaled linear above.

    .. math::
        \ell_i = w_i \begin{cases} 0.5 (x_i - y_i)^2 & |x_i - y_i| < \delta \\
        \delta (|x_i - y_i| - 0.5 \delta) & \text{otherwise} \end{cases}

    Args:
      input, target: floating arrays that broadcast.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
      delta: the threshold, ``> 0``.
      weight: optional, exactly ``input``'s shape; ``'mean'`` is the plain mean of the weighted
        losses (torch 2.13's rule for huber_loss, unlike mse_loss/l1_loss).

    Raises:
      ValueError: ``delta <= 0``; as :func:`mse_loss` otherwise.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.huber_loss(jnp.array([0.5, 3.0]), jnp.zeros(2), reduction="none", delta=2.0)
      Array([0.125, 4.   ], dtype=float32)
    """
    if delta <= 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta: `delta` (={delta}) must be > 0.")
    x, t, dtype, ct = _pointwise_args(input, target, weight)
    _size_warning(input, target)
    reduction = _reduction(reduction)
    d = x - t
    z = jnp.abs(d)
    dl = jnp.asarray(delta, ct)
    loss = jnp.where(z < dl, 0.5 * d * d, dl * (z - 0.5 * dl))
    if weight is not None:
        return _weighted(loss, input, weight, reduction, dtype, ct, mean_by_weight=False)
    return _reduce(loss, reduction, dtype)


# --- classification: nll_loss, cross_entropy -----------------------------------------------------------


def _check_class_target(input: Any, target: Any, weight: Any, ignore_index: Any) -> None:
    """torch's ``nll_loss_nd`` / ``nll_loss`` / ``nll_loss2d`` shape rules, in torch's order."""
    check_array(target, "target")
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim}): `input` must be (C,) or (N, C, ...).")
    if input.ndim != 1:
        if target.ndim == 0 or input.shape[0] != target.shape[0]:
            got = "a 0-d target" if target.ndim == 0 else f"target batch_size ({target.shape[0]})"
            raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match {got}: `input` "
                             f"{shape_str(input.shape)}, `target` {shape_str(target.shape)}.")
    if jnp.dtype(target.dtype) == jnp.bool_ or not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(
            f"expected target dtype to be Long or Byte, but got {target.dtype}: class-index `target` must have an "
            "integer dtype (class probabilities need `target` of `input`'s shape)."
        )
    if input.ndim <= 2:
        if target.ndim > 1:
            raise ValueError(f"0D or 1D target tensor expected, multi-target not supported: `target` "
                             f"{shape_str(target.shape)} for `input` {shape_str(input.shape)}.")
        if input.ndim == 1 and target.ndim == 1 and target.shape[0] != 1:
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}.")
    elif input.ndim == 4 and target.ndim != 3:
        raise ValueError("only batches of spatial targets supported (3D tensors) but got targets of dimension: "
                         f"{target.ndim}.")
    elif tuple(target.shape[1:]) != tuple(input.shape[2:]):
        want = (input.shape[0],) + tuple(input.shape[2:])
        raise ValueError(f"Expected target size {shape_str(want)}, got {shape_str(target.shape)}.")
    c = input.shape[0 if input.ndim == 1 else 1]
    if weight is not None:
        check_array(weight, "weight")
        if weight.ndim != 1 or weight.size != c:
            raise ValueError(f"weight tensor should be defined either for all {c} classes or no classes but got "
                             f"weight tensor of shape: {shape_str(weight.shape)}.")
        if weight.dtype != input.dtype:
            raise TypeError(f"`weight` dtype ({weight.dtype}) must match `input` dtype ({input.dtype}) (torch: "
                            f"expected scalar type {input.dtype} but found {weight.dtype}).")
    if not isinstance(ignore_index, (int, np.integer)) or isinstance(ignore_index, bool):
        raise TypeError(f"`ignore_index` must be an int, got {ignore_index!r}.")
    if _is_concrete(target):
        t = np.asarray(target).astype(np.int64)
        bad = (t != ignore_index) & ((t < 0) | (t >= c))
        if bad.any():
            raise TargetOutOfBoundsError(
                f"Target {int(t[bad].flat[0])} is out of bounds: class indices in `target` must be in [0, {c}) "
                f"or equal `ignore_index` (={ignore_index})."
            )


def _nll(logp: jax.Array, target: jax.Array, weight: Any, ignore_index: int, cdim: int) -> tuple[jax.Array, ...]:
    """Per-element ``-w[t] * logp[t]`` (0 where ignored) and the selected weights ``w[t]`` (0 where
    ignored), both of the target's shape. Out-of-range classes (possible only under jit) give nan."""
    c = logp.shape[cdim]
    t = jnp.asarray(target).astype(jnp.int32)
    ignored = t == ignore_index
    oob = ~ignored & ((t < 0) | (t >= c))
    safe = jnp.where(ignored | oob, 0, t)
    picked = jnp.squeeze(jnp.take_along_axis(logp, jnp.expand_dims(safe, cdim), axis=cdim), cdim)
    w = jnp.ones((), logp.dtype) if weight is None else jnp.asarray(weight, logp.dtype)[safe]
    w = jnp.where(ignored, jnp.zeros((), logp.dtype), jnp.where(oob, jnp.nan, w))
    loss = jnp.where(ignored, jnp.zeros((), logp.dtype), -picked * w)
    return loss, w


def _nll_reduce(loss: jax.Array, w: jax.Array, reduction: str, dtype: Any) -> jax.Array:
    if reduction == "none":
        return loss.astype(dtype)
    if reduction == "sum":
        return jnp.sum(loss).astype(dtype)
    return (jnp.sum(loss) / jnp.sum(jnp.broadcast_to(w, loss.shape))).astype(dtype)


def _unbatched_1d_target(input: Any, target: Any) -> Any:
    """1-D input with a 1-element 1-D target: torch treats the input as one row."""
    return input.ndim == 1 and target.ndim == 1


def nll_loss(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.nll_loss``: negative log likelihood of class indices.

    .. math::
        \ell_n = -w_{y_n} x_{n, y_n} \ (0 \text{ if } y_n = \text{ignore\_index}),\qquad
        \text{mean} = \frac{\sum_n \ell_n}{\sum_{n: y_n \ne \text{ignore\_index}} w_{y_n}}

    Args:
      input: log-probabilities ``(N, C)``, ``(N, C, d1, ..., dK)`` or unbatched ``(C,)``.
      target: integer class indices ``(N,)``, ``(N, d1, ..., dK)`` or ``()``, each in ``[0, C)`` or
        equal to ``ignore_index``.
      weight: optional ``(C,)`` per-class weights, ``input``'s dtype.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      ignore_index: targets equal to it contribute 0 and are left out of the mean's denominator.
      reduction: ``'mean'`` (weighted: divides by the sum of the selected weights; all targets
        ignored gives nan, as torch) | ``'sum'`` | ``'none'`` (target's shape).

    Raises:
      ValueError: torch's shape errors (batch size, target rank/size, weight size), a class index out
        of range (a :class:`TargetOutOfBoundsError`, also an IndexError as torch's), an invalid
        ``reduction``. TypeError: non-integer target, non-floating input, weight of another dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.nll_loss(jnp.log(jnp.array([[0.5, 0.5], [0.25, 0.75]])), jnp.array([0, 1]))
      Array(0.49041462, dtype=float32)

    Differences from PyTorch: any integer dtype is accepted for ``target`` (torch: int64 or uint8;
    JAX's default integer is int32). The range of class indices is checked when ``target`` is a
    concrete array; under ``jit`` an out-of-range index cannot raise and gives nan instead.
    """
    reduction = _reduction(reduction, size_average, reduce)
    check_float(input, "input")
    _check_class_target(input, target, weight, ignore_index)
    dtype = input.dtype
    x = jnp.asarray(input, stat_dtype(dtype))
    if _unbatched_1d_target(input, target):
        x = x[None]
    cdim = 0 if x.ndim == 1 else 1
    loss, w = _nll(x, target, weight, ignore_index, cdim)
    if _unbatched_1d_target(input, target) and reduction == "none":
        loss = loss[0]  # torch returns a 0-d loss for (C,) input with a (1,) target
    return _nll_reduce(loss, w, reduction, dtype)


def cross_entropy(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> jax.Array:
    r"""``torch.nn.functional.cross_entropy``: ``log_softmax`` over the class dim, then NLL.

    Class indices (``target`` integer, shape of ``input`` without the class dim), with
    :math:`\epsilon` = ``label_smoothing`` and :math:`p = \log\mathrm{softmax}(x)`:

    .. math::
        \ell = (1 - \epsilon)\,\mathrm{nll}(p, y, w) + \frac{\epsilon}{C}\,\mathrm{red}\Big(
        -\sum_c w_c p_{n,c}\Big)

    where the smoothing term is 0 at ignored targets and its ``'mean'`` divides by the sum of the
    selected weights :math:`\sum_n w_{y_n}` (by the number of non-ignored targets without weight).

    Class probabilities (``target`` floating, ``input``'s shape; smoothing
    :math:`y \leftarrow (1-\epsilon) y + \epsilon / C`):

    .. math::
        \ell_n = -\sum_c w_c\, y_{n,c}\, p_{n,c},\qquad \text{mean} = \frac{\sum \ell_n}{\text{numel}/C}

    Args:
      input: logits ``(N, C)``, ``(N, C, d1, ..., dK)`` or unbatched ``(C,)``.
      target: integer class indices ``(N,)`` / ``(N, d1, ..., dK)`` / ``()``, or class
        probabilities of ``input``'s shape.
      weight: optional ``(C,)`` per-class weights, ``input``'s dtype.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      ignore_index: class-index mode only (with probabilities it must stay negative, as in torch).
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``; all targets ignored gives nan for ``'mean'``.
      label_smoothing: in ``[0, 1]`` (torch treats negative values as 0).

    Raises:
      ValueError: torch's shape errors, ``label_smoothing > 1``, ``ignore_index >= 0`` with
        probabilities, an out-of-range class index (concrete ``target``), an invalid ``reduction``.
      TypeError: integer probabilities, floating class indices, non-floating input.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
      >>> F.cross_entropy(logits, jnp.array([0, 1]), label_smoothing=0.1)
      Array(0.47731203, dtype=float32)

    Differences from PyTorch: as :func:`nll_loss` (integer target dtypes, nan for an out-of-range
    index under jit); float16/bfloat16 computed in float32 and rounded once.
    """
    reduction = _reduction(reduction, size_average, reduce)
    check_float(input, "input")
    check_array(target, "target")
    dtype = input.dtype
    ct = stat_dtype(dtype)
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim}): `input` must be (C,) or (N, C, ...).")
    cdim = 0 if input.ndim == 1 else 1
    c = input.shape[cdim]
    ls = float(label_smoothing)
    if tuple(input.shape) == tuple(target.shape):
        if not jnp.issubdtype(target.dtype, jnp.floating):
            raise TypeError(f"Expected floating point type for target with class probabilities, got {target.dtype}: "
                            "`target` of `input`'s shape holds class probabilities.")
        if ignore_index >= 0:
            raise ValueError(f"ignore_index is not supported for floating point target: `ignore_index` "
                             f"(={ignore_index}) must be negative with class probabilities.")
        if weight is not None:
            check_array(weight, "weight")
            if weight.ndim != 1 or weight.size != c:
                raise ValueError(f"cross_entropy: weight tensor should be defined either for all {c} classes or no "
                                 f"classes but got weight tensor of shape: {shape_str(weight.shape)}.")
        if ls > 1.0:
            raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        logp = jax.nn.log_softmax(jnp.asarray(input, ct), axis=cdim)
        y = jnp.asarray(target, ct)
        if ls > 0.0:
            y = y * (1 - ls) + ls / c
        prod = logp * y
        if weight is not None:
            shape = [1] * input.ndim
            shape[cdim] = c
            prod = prod * jnp.reshape(jnp.asarray(weight, ct), shape)
        if reduction == "none":
            return (-jnp.sum(prod, axis=cdim)).astype(dtype)
        total = -jnp.sum(prod)
        if reduction == "sum":
            return total.astype(dtype)
        if input.size == 0:
            return jnp.full((), jnp.nan, dtype)
        return (total / (input.size // c)).astype(dtype)
    if ls > 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    _check_class_target(input, target, weight, ignore_index)
    if ls > 0.0 and _unbatched_1d_target(input, target):
        raise ValueError("label_smoothing needs an unbatched `input` (C,) with a 0-d `target`, not a 1D target of "
                         "size 1 (torch fails there with a shape mismatch).")
    x = jnp.asarray(input, ct)
    if _unbatched_1d_target(input, target):
        x, cdim = x[None], 1
    logp = _rounder(dtype)(jax.nn.log_softmax(x, axis=cdim))  # torch's log_softmax output, in `dtype`
    loss, w = _nll(logp, target, weight, ignore_index, cdim)
    if _unbatched_1d_target(input, target) and reduction == "none":
        loss, w = loss[0], w[0]  # torch: a 0-d loss
    nll = _nll_reduce(loss, w, reduction, ct)
    if ls <= 0.0:
        return nll.astype(dtype)
    if weight is None:
        smooth = -jnp.sum(logp, axis=cdim)
    else:
        shape = [1] * logp.ndim
        shape[cdim] = c
        smooth = -jnp.sum(logp * jnp.reshape(jnp.asarray(weight, ct), shape), axis=cdim)
    ignored = jnp.asarray(target) == ignore_index
    smooth = jnp.where(ignored, jnp.zeros((), ct), smooth)
    if reduction == "none":
        ret = smooth
    elif reduction == "sum":
        ret = jnp.sum(smooth)
    else:
        denom = jnp.sum(jnp.broadcast_to(w, smooth.shape)) if weight is not None else jnp.sum(~ignored)
        ret = jnp.sum(smooth) / denom.astype(ct)
    return ((1 - ls) * nll + ret * (ls / c)).astype(dtype)


# --- binary cross entropy ------------------------------------------------------------------------------


def _bce_elementwise(x: jax.Array, t: jax.Array, dtype: Any) -> jax.Array:
    return _bce_custom(x, t, jnp.dtype(dtype) == jnp.float16, jnp.dtype(dtype) == jnp.bfloat16)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _bce_custom(x: jax.Array, t: jax.Array, f16: bool, bf16: bool) -> jax.Array:
    r = _rounder(jnp.float16 if f16 else jnp.bfloat16 if bf16 else jnp.float32)
    return r(r(r(t - 1) * r(jnp.maximum(jnp.log1p(-x), -100.0))) - r(t * r(jnp.maximum(jnp.log(x), -100.0))))


@_bce_custom.defjvp
def _bce_jvp(f16, bf16, primals, tangents):
    # torch's binary_cross_entropy_backward: (x - t) / max((1 - x) x, 1e-12); target: -logit(x)
    x, t = primals
    dx, dt = tangents
    out = _bce_custom(x, t, f16, bf16)
    gx = (x - t) / jnp.maximum((1 - x) * x, jnp.asarray(1e-12, x.dtype))
    gt = -jnp.log(x / (1 - x))
    return out, gx * dx + gt * dt


def binary_cross_entropy(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.binary_cross_entropy`` on probabilities, with torch's clamped logs.

    .. math::
        \ell_i = -w_i \big[y_i \max(\log x_i, -100) + (1 - y_i) \max(\log(1 - x_i), -100)\big]

    The gradient is torch's: :math:`w (x - y) / \max((1 - x) x, 10^{-12})` for ``input`` and
    :math:`-w\,\mathrm{logit}(x)` for ``target``.

    Args:
      input: probabilities in ``[0, 1]``, any shape.
      target: same shape as ``input``, values in ``[0, 1]``.
      weight: optional, broadcast to ``input``'s shape (the result must keep that shape).
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Raises:
      ValueError: ``target``'s shape differs from ``input``'s, ``weight`` does not broadcast to it,
        values outside ``[0, 1]`` (checked on concrete arrays), an invalid ``reduction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.binary_cross_entropy(jnp.array([0.0, 0.5]), jnp.array([1.0, 1.0]), reduction="none")
      Array([100.       ,   0.6931472], dtype=float32)

    Differences from PyTorch: the ``[0, 1]`` range check needs concrete values; under ``jit`` it is
    skipped (values outside give nan, or the clamped -100 terms).
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    else:
        reduction = _reduction(reduction)
    check_float(input, "input")
    check_float(target, "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({shape_str(target.shape)}) that is different to the input size "
            f"({shape_str(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    if weight is not None:
        check_float(weight, "weight")
        if _broadcast_shape(("target", "weight"), target, weight) != tuple(input.shape):
            raise ValueError(f"`weight` {shape_str(weight.shape)} must broadcast to `input`'s shape "
                             f"{shape_str(input.shape)}.")
    if _is_concrete(input, target):
        for name, a in (("input", input), ("target", target)):
            v = np.asarray(a, np.float32)
            if not np.all((v >= 0) & (v <= 1)):
                raise ValueError(f"all elements of {name} should be between 0 and 1: `{name}` has values outside "
                                 "[0, 1] (or nan).")
    dtype = _float_dtype(input, target, weight)
    ct = stat_dtype(dtype)
    loss = _bce_elementwise(jnp.asarray(input, ct), jnp.asarray(target, ct), dtype)
    if weight is not None:
        loss = _rounder(dtype)(loss * jnp.broadcast_to(jnp.asarray(weight, ct), loss.shape))
    return _reduce(loss, reduction, dtype)


def binary_cross_entropy_with_logits(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: jax.Array | None = None,
) -> jax.Array:
    r"""``torch.nn.functional.binary_cross_entropy_with_logits``: sigmoid + BCE in torch's stable form.

    .. math::
        \ell_i = w_i \big[(1 - y_i) x_i - (1 + (p_i - 1) y_i) \log\sigma(x_i)\big]

    with :math:`p` = ``pos_weight`` (1 without it) and :math:`\log\sigma(x) = -\mathrm{softplus}(-x)`,
    finite for every finite logit (``+-1e4`` included).

    Args:
      input: logits, any shape.
      target: same shape as ``input``.
      weight: optional, broadcasts to ``input``'s shape.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.
      pos_weight: optional weight of the positive class, broadcast along the last dims (e.g.
        ``(C,)`` for ``(N, C)``).

    Raises:
      ValueError: ``target``'s shape differs from ``input``'s; ``weight``/``pos_weight`` that do not
        broadcast to ``input``'s shape; an invalid ``reduction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.binary_cross_entropy_with_logits(jnp.array([1e4, -1e4]), jnp.array([0.0, 1.0]), reduction="none")
      Array([10000., 10000.], dtype=float32)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    else:
        reduction = _reduction(reduction)
    check_float(input, "input")
    check_float(target, "target")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({shape_str(target.shape)}) must be the same as input size "
                         f"({shape_str(input.shape)}).")
    for name, w in (("pos_weight", pos_weight), ("weight", weight)):
        if w is not None:
            check_float(w, name)
            if _broadcast_shape(("input", name), input, w) != tuple(input.shape):
                raise ValueError(f"`{name}` {shape_str(w.shape)} must broadcast to `input`'s shape "
                                 f"{shape_str(input.shape)}.")
    dtype = _float_dtype(input, target, weight, pos_weight)
    ct = stat_dtype(dtype)
    x, t = jnp.asarray(input, ct), jnp.asarray(target, ct)
    r = _rounder(dtype)
    log_sig = r(jax.nn.log_sigmoid(x))
    if pos_weight is not None:
        log_sig = r(log_sig * r(r(r(jnp.broadcast_to(jnp.asarray(pos_weight, ct), x.shape) - 1) * t) + 1))
    loss = r(r(r(1 - t) * x) - log_sig)
    if weight is not None:
        loss = r(loss * jnp.broadcast_to(jnp.asarray(weight, ct), loss.shape))
    return _reduce(loss, reduction, dtype)


# --- distribution losses -------------------------------------------------------------------------------


def kl_div(
    input: jax.Array,
    target: jax.Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> jax.Array:
    r"""``torch.nn.functional.kl_div``: pointwise KL divergence with ``input`` in log space.

    .. math::
        \ell_i = \begin{cases} e^{y_i} (y_i - x_i) & \text{log\_target} \\
        y_i \log y_i - y_i x_i \ (0 \log 0 = 0) & \text{otherwise} \end{cases}

    Args:
      input: log-probabilities, any shape.
      target: probabilities (or log-probabilities with ``log_target``), broadcasting with ``input``.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` (over all elements; torch warns that it is not the true KL divergence,
        and so does jaxnn) | ``'batchmean'`` (sum / ``input.shape[0]``) | ``'sum'`` | ``'none'``.
      log_target: whether ``target`` is in log space.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> p = jnp.array([[0.25, 0.75]])
      >>> F.kl_div(jnp.log(jnp.array([[0.5, 0.5]])), p, reduction="batchmean")
      Array(0.13081202, dtype=float32)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support size."
                "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                UserWarning,
                stacklevel=2,
            )
        reduction = _reduction(reduction, allowed=("none", "batchmean", "mean", "sum"))
    x, t, dtype, ct = _pointwise_args(input, target, integer_target=False)  # torch: no integral inputs
    if log_target:
        loss = jnp.exp(t) * (t - x)
    else:
        loss = jax.scipy.special.xlogy(t, t) - t * x
    if reduction == "batchmean":
        total = _reduce(loss, "sum", dtype)
        if input.ndim == 0:
            return total
        return (total.astype(ct) / input.shape[0]).astype(dtype)
    return _reduce(loss, reduction, dtype)


def poisson_nll_loss(
    input: jax.Array,
    target: jax.Array,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.poisson_nll_loss``: Poisson negative log likelihood.

    .. math::
        \ell_i = \begin{cases} e^{x_i} - y_i x_i & \text{log\_input} \\
        x_i - y_i \log(x_i + \text{eps}) & \text{otherwise} \end{cases}
        \; + \; [\text{full}]\,[y_i > 1]\,\big(y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i)\big)

    Args:
      input: the expectation (its log with ``log_input``), any shape; an integer ``input`` is taken
        as float32, as torch's ``exp`` / ``log`` of an integer tensor.
      target: samples, broadcasting with ``input``.
      log_input: see the formula. full: add the Stirling term where ``target > 1``.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      eps: added inside the log when ``log_input=False``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.poisson_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 3.0]), full=True, reduction="none")
      Array([1.       , 1.4823633], dtype=float32)

    The gradient with respect to ``target`` is torch's, nan at ``target == 0`` with ``full=True``
    included (the masked Stirling term's infinite derivative times 0).
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    reduction = _reduction(reduction)
    if hasattr(input, "dtype") and jnp.issubdtype(input.dtype, jnp.integer):
        input = jnp.asarray(input, jnp.float32)  # torch: exp/log of an integer tensor are float32
    x, t, dtype, ct = _pointwise_args(input, target)
    r = _rounder(dtype)
    if log_input:
        loss = r(r(jnp.exp(x)) - r(t * x))
    else:
        loss = r(x - r(t * r(jnp.log(r(x + jnp.asarray(eps, ct))))))
    if full:
        # torch's masked_fill: the masked entries' derivative is 0 * d(stirling), nan at target == 0
        two_pi = jnp.asarray(2 * math.pi, ct)
        stirling = r(r(r(t * r(jnp.log(t))) - t) + r(0.5 * r(jnp.log(r(two_pi * t)))))
        loss = r(loss + jnp.where(t <= 1, jnp.zeros((), ct), stirling))
    return _reduce(loss, reduction, dtype)


def gaussian_nll_loss(
    input: jax.Array,
    target: jax.Array,
    var: jax.Array | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.gaussian_nll_loss``: Gaussian negative log likelihood.

    .. math::
        \ell_i = \tfrac12\big(\log \max(v_i, \text{eps}) + (x_i - y_i)^2 / \max(v_i, \text{eps})\big)
        \; + \; [\text{full}]\,\tfrac12 \log 2\pi

    The clamp of ``var`` is outside autograd in torch (``no_grad`` in-place): the gradient with
    respect to ``var`` is the derivative at the clamped value, passed through unchanged.

    Args:
      input: the expectation, any shape.
      target: samples, broadcasting with ``input``.
      var: positive variances: ``input``'s shape (heteroscedastic), ``input``'s shape without the
        last dim or with one dim of size 1 (homoscedastic), or a Python float.
      full: add the constant. eps: the clamp of ``var``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Raises:
      ValueError: a negative ``var`` (checked on concrete values), a ``var`` of another size,
        an invalid ``reduction``. TypeError: ``var`` neither an array nor a float.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.gaussian_nll_loss(jnp.zeros(2), jnp.array([1.0, 3.0]), jnp.ones(2))
      Array(2.5, dtype=float32)

    Differences from PyTorch: under ``jit`` the check for negative ``var`` entries is skipped (they
    are clamped to ``eps``).
    """
    check_float(input, "input")
    check_float(target, "target")
    if isinstance(var, float):
        if var < 0:
            raise ValueError(f"var has negative entry/entries: `var` (={var}) must be >= 0.")
        v = jnp.full(input.shape, var, input.dtype)
    else:
        if not (hasattr(var, "shape") and hasattr(var, "dtype")):
            raise TypeError(f"`var` must be an array or a Python float, got {type(var).__name__}.")
        check_float(var, "var")
        if _is_concrete(var) and bool(np.any(np.asarray(var, np.float32) < 0)):
            raise ValueError("var has negative entry/entries: `var` must be >= 0.")
        v = jnp.asarray(var)
    if tuple(v.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(v.shape):
            v = jnp.expand_dims(v, -1)
        elif not (input.ndim == v.ndim and sum(b for a, b in zip(input.shape, v.shape, strict=True) if a != b) == 1):
            raise ValueError(f"var is of incorrect size: `var` {shape_str(v.shape)} for `input` "
                             f"{shape_str(input.shape)}.")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not valid: `reduction` must be 'none', 'mean' or 'sum'.")
    shape = _broadcast_shape(("input", "target", "var"), input, target, v)
    dtype = _float_dtype(input, target, v)
    ct = stat_dtype(dtype)
    x, t, v = _bc(shape, jnp.asarray(input, ct), jnp.asarray(target, ct), jnp.asarray(v, ct))
    r = _rounder(dtype)
    v = v + jax.lax.stop_gradient(r(jnp.maximum(v, jnp.asarray(eps, ct))) - v)
    d = r(x - t)
    loss = r(0.5 * r(r(jnp.log(v)) + r(r(d * d) / v)))
    if full:
        loss = r(loss + r(jnp.asarray(0.5 * math.log(2 * math.pi), ct)))  # torch: the constant in `dtype`
    return _reduce(loss, reduction, dtype)


# --- margin / embedding losses -------------------------------------------------------------------------


def cosine_embedding_loss(
    input1: jax.Array,
    input2: jax.Array,
    target: jax.Array,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.cosine_embedding_loss``.

    .. math::
        \cos_n = \frac{\sum_d a_{nd} b_{nd}}{\sqrt{(\sum_d a_{nd}^2 + 10^{-12})(\sum_d b_{nd}^2 + 10^{-12})}},
        \quad \ell_n = \begin{cases} 1 - \cos_n & y_n = 1 \\ \max(0, \cos_n - \text{margin}) & y_n = -1
        \\ 0 & \text{otherwise} \end{cases}

    Args:
      input1, input2: ``(N, D)`` (or unbatched ``(D,)``), broadcasting with each other.
      target: ``(N,)`` (or ``()``) of 1 / -1.
      margin: see the formula.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Raises:
      ValueError: a target of rank > 1, inputs of the wrong rank for the target, shapes that do not
        broadcast, an invalid ``reduction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> a = jnp.array([[1.0, 0.0], [1.0, 1.0]])
      >>> F.cosine_embedding_loss(a, jnp.array([[0.0, 1.0], [1.0, 1.0]]), jnp.array([1, -1]), reduction="none")
      Array([1., 1.], dtype=float32)
    """
    reduction = _reduction(reduction, size_average, reduce)
    check_float(input1, "input1")
    check_float(input2, "input2")
    check_array(target, "target")
    if target.ndim > 1:
        raise ValueError("0D or 1D target tensor expected, multi-target not supported: `target` "
                         f"{shape_str(target.shape)}.")
    want = 2 if target.ndim == 1 else 1
    if input1.ndim != want or input2.ndim != want:
        raise ValueError(f"{target.ndim}D target tensor expects {want}D input tensors, but found inputs with sizes "
                         f"{shape_str(input1.shape)} and {shape_str(input2.shape)}.")
    shape = _broadcast_shape(("input1", "input2"), input1, input2)
    _broadcast_shape(("target", "input1 * input2 without its last dim"), target, np.empty(shape[:-1]))
    dtype = _float_dtype(input1, input2)
    ct = stat_dtype(dtype)
    a, b = _bc(shape, jnp.asarray(input1, ct), jnp.asarray(input2, ct))
    dim = target.ndim
    eps = jnp.asarray(1e-12, ct)
    prod = jnp.sum(a * b, axis=dim)
    m1 = jnp.sum(a * a, axis=dim) + eps
    m2 = jnp.sum(b * b, axis=dim) + eps
    cos = prod / jnp.sqrt(m1 * m2)
    zero = jnp.zeros((), ct)
    pos = 1 - cos
    neg = _clamp_min0(cos - jnp.asarray(margin, ct))
    y = jnp.broadcast_to(target, cos.shape)
    loss = jnp.where(y == 1, pos, zero) + jnp.where(y == -1, neg, zero)
    return _reduce(loss, reduction, dtype)


def margin_ranking_loss(
    input1: jax.Array,
    input2: jax.Array,
    target: jax.Array,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.margin_ranking_loss``: :math:`\ell = \max(0, -y (x_1 - x_2) + \text{margin})`.

    Args:
      input1, input2, target: arrays of the same rank that broadcast; ``target`` of 1 / -1.
      margin: see the formula.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Raises:
      ValueError: different ranks (torch's message), shapes that do not broadcast, an invalid
        ``reduction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.margin_ranking_loss(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), 0.5)
      Array(0.75, dtype=float32)
    """
    reduction = _reduction(reduction, size_average, reduce)
    check_float(input1, "input1")
    check_float(input2, "input2")
    check_array(target, "target")
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise ValueError(
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {shape_str(input1.shape)}, input2: {shape_str(input2.shape)}, target: {shape_str(target.shape)}"
        )
    shape = _broadcast_shape(("input1", "input2", "target"), input1, input2, target)
    dtype = _float_dtype(input1, input2, target if jnp.issubdtype(target.dtype, jnp.floating) else None)
    ct = stat_dtype(dtype)
    a, b, y = _bc(shape, jnp.asarray(input1, ct), jnp.asarray(input2, ct), jnp.asarray(target, ct))
    loss = _clamp_min0(-y * (a - b) + jnp.asarray(margin, ct))
    return _reduce(loss, reduction, dtype)


def hinge_embedding_loss(
    input: jax.Array,
    target: jax.Array,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.hinge_embedding_loss``.

    .. math::
        \ell_i = [y_i \ne 1] \max(0, \text{margin} - x_i) + [y_i \ne -1]\, x_i

    (torch's formula: a target other than 1 and -1 counts in both terms.)

    Args:
      input: any shape. target: broadcasting with ``input``, values 1 / -1.
      margin: see the formula.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.hinge_embedding_loss(jnp.array([0.3, 2.0]), jnp.array([-1.0, 1.0]), reduction="none")
      Array([0.7, 2. ], dtype=float32)
    """
    reduction = _reduction(reduction, size_average, reduce)
    check_float(input, "input")
    check_array(target, "target")
    shape = _broadcast_shape(("input", "target"), input, target)
    dtype = input.dtype
    ct = stat_dtype(dtype)
    x, target = _bc(shape, jnp.asarray(input, ct), jnp.asarray(target))
    zero = jnp.zeros((), ct)
    loss = jnp.where(target != 1, _clamp_min0(jnp.asarray(margin, ct) - x), zero) + jnp.where(target != -1, x, zero)
    return _reduce(loss, reduction, dtype)


def soft_margin_loss(
    input: jax.Array,
    target: jax.Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.soft_margin_loss``: :math:`\ell_i = \log(1 + e^{-y_i x_i})`.

    Computed as torch does, ``log1p(exp(-y x))``: ``inf`` once ``-y x`` exceeds the dtype's ``exp``
    range (``-y x > 88.7`` in float32), as torch's.

    Args:
      input: any shape. target: values 1 / -1, broadcasting to ``input``'s shape (a larger broadcast
        shape is an error, as torch's).
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.soft_margin_loss(jnp.array([0.0, 2.0]), jnp.array([1.0, -1.0]), reduction="none")
      Array([0.6931472, 2.126928 ], dtype=float32)
    """
    reduction = _reduction(reduction, size_average, reduce)
    x, t, dtype, ct = _pointwise_args(input, target)
    if tuple(x.shape) != tuple(input.shape):  # torch writes into a tensor of input's shape
        raise ValueError(f"output with shape {shape_str(input.shape)} doesn't match the broadcast shape "
                         f"{shape_str(x.shape)}: `target` may broadcast to `input`'s shape, not beyond it.")
    r = _rounder(dtype)
    return _reduce(r(jnp.log1p(r(jnp.exp(r(-x * t))))), reduction, dtype)


def multilabel_soft_margin_loss(
    input: jax.Array,
    target: jax.Array,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.multilabel_soft_margin_loss``: per-class logistic loss, averaged over
    the last (class) dim.

    .. math::
        \ell_n = -\frac{1}{C}\sum_c w_c\big[y_{nc} \log\sigma(x_{nc}) + (1 - y_{nc}) \log\sigma(-x_{nc})\big]

    Args:
      input: ``(..., C)``. target: broadcasting with ``input`` (0/1 labels).
      weight: optional, broadcasting with ``input`` (e.g. ``(C,)``).
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (shape ``input.shape[:-1]``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.multilabel_soft_margin_loss(jnp.array([[0.0, 2.0]]), jnp.array([[1.0, 0.0]]))
      Array(1.4100376, dtype=float32)
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    x, t, dtype, ct = _pointwise_args(input, target, weight)
    r = _rounder(dtype)
    loss = -r(r(t * r(jax.nn.log_sigmoid(x))) + r(r(1 - t) * r(jax.nn.log_sigmoid(-x))))
    if weight is not None:
        loss = r(loss * jnp.broadcast_to(jnp.asarray(weight, ct), _broadcast_shape(("loss", "weight"), loss, weight)))
    if input.ndim == 0:
        raise ValueError("`input` must have at least 1 dimension (the classes) for multilabel_soft_margin_loss.")
    loss = r(r(jnp.sum(loss, axis=input.ndim - 1)) / input.shape[-1])
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not valid: `reduction` must be 'none', 'mean' or 'sum'.")
    return _reduce(loss, reduction, dtype)


def _pairwise_distance(x1: jax.Array, x2: jax.Array, p: float, eps: float) -> jax.Array:
    """``torch.pairwise_distance``: ``norm(x1 - x2 + eps, p, dim=-1)``, with torch's ``norm`` gradient:
    ``sign(d)`` (0 at ``d == 0``) and 0 at a zero norm, where plain autodiff gives 1 or nan (``eps=0``)."""
    d = x1 - x2 + jnp.asarray(eps, x1.dtype)
    a = _abs(d)
    zero, one = jnp.zeros((), d.dtype), jnp.ones((), d.dtype)
    if p == 2:
        s = jnp.sum(d * d, axis=-1)
        return jnp.where(s == 0, zero, jnp.sqrt(jnp.where(s == 0, one, s)))
    if p == 1:
        return jnp.sum(a, axis=-1)
    if p == math.inf:
        return jnp.max(a, axis=-1)
    if p == -math.inf:
        return jnp.min(a, axis=-1)
    if p == 0:
        return jnp.sum(jax.lax.stop_gradient((a != 0).astype(d.dtype)), axis=-1)
    if p < 0:
        return jnp.sum(a**p, axis=-1) ** (1.0 / p)
    s = jnp.sum(jnp.where(a == 0, zero, jnp.where(a == 0, one, a) ** p), axis=-1)
    return jnp.where(s == 0, zero, jnp.where(s == 0, one, s) ** (1.0 / p))


def triplet_margin_loss(
    anchor: jax.Array,
    positive: jax.Array,
    negative: jax.Array,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.triplet_margin_loss``.

    .. math::
        \ell_n = \max(0,\ \text{margin} + d(a_n, p_n) - d(a_n, n_n)),\qquad
        d(u, v) = \lVert u - v + \text{eps} \rVert_p

    With ``swap``, :math:`d(a_n, n_n)` is replaced by :math:`\min(d(a_n, n_n), d(p_n, n_n))`.

    Args:
      anchor, positive, negative: ``(N, D)`` or unbatched ``(D,)``, the same rank, broadcasting.
      margin: ``> 0``. p: the norm's order (``inf`` and 0 included, as torch's ``norm``).
      eps: added to the difference (torch's ``pairwise_distance``). swap: the distance swap.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'``.

    Raises:
      ValueError: ``margin <= 0``, different ranks, shapes that do not broadcast, an invalid
        ``reduction``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.triplet_margin_loss(jnp.zeros((1, 2)), jnp.ones((1, 2)), -jnp.ones((1, 2)), p=1, eps=0.0)
      Array(1., dtype=float32)
    """
    reduction = _reduction(reduction, size_average, reduce)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}: `margin` must be > 0.")
    for name, a in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        check_float(a, name)
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ValueError(
            "The anchor, positive, and negative tensors are expected to have the same number of dimensions, but "
            f"got: anchor {anchor.ndim}D, positive {positive.ndim}D, and negative {negative.ndim}D inputs"
        )
    if anchor.ndim == 0:
        raise ValueError("`anchor`, `positive` and `negative` must have at least 1 dimension (the features).")
    shape = _broadcast_shape(("anchor", "positive", "negative"), anchor, positive, negative)
    dtype = _float_dtype(anchor, positive, negative)
    ct = stat_dtype(dtype)
    a, pos, neg = _bc(shape, *(jnp.asarray(v, ct) for v in (anchor, positive, negative)))
    p = float(p)
    d_pos = _pairwise_distance(a, pos, p, eps)
    d_neg = _pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = jnp.minimum(d_neg, _pairwise_distance(pos, neg, p, eps))
    loss = _clamp_min0(jnp.asarray(margin, ct) + d_pos - d_neg)
    return _reduce(loss, reduction, dtype)


def multi_margin_loss(
    input: jax.Array,
    target: jax.Array,
    p: int = 1,
    margin: float = 1.0,
    weight: jax.Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    r"""``torch.nn.functional.multi_margin_loss``: multi-class hinge loss on class indices.

    .. math::
        \ell_n = \frac{1}{C} \sum_{i \ne y_n} w_{y_n} \max(0,\ \text{margin} - x_{n, y_n} + x_{n, i})^p

    Args:
      input: ``(N, C)`` or unbatched ``(C,)`` scores.
      target: integer class indices ``(N,)`` (or ``()`` / ``(1,)`` for unbatched input).
      p: 1 or 2.
      margin: see the formula.
      weight: optional ``(C,)`` per-class weights.
      size_average, reduce: deprecated; either one overrides ``reduction``.
      reduction: ``'mean'`` | ``'sum'`` | ``'none'`` (``target``'s shape).

    Raises:
      ValueError: ``p`` other than 1 or 2, a ``weight`` that is not 1-D or not of size C, an input
        that is not a non-empty vector or matrix, a target of the wrong size, a class index out of
        range (concrete ``target``; a :class:`TargetOutOfBoundsError`), an invalid ``reduction``.
      TypeError: non-integer ``target``, non-floating ``input``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> F.multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))
      Array(0.325, dtype=float32)

    Differences from PyTorch: float16/bfloat16 inputs are computed (in float32, rounded once);
    torch's CPU kernel has no half-precision version. An empty batch gives nan for ``'mean'``
    (torch's CPU kernel returns an uninitialised value). Any integer dtype for ``target``; under
    ``jit`` an out-of-range index gives nan.
    """
    reduction = _reduction(reduction, size_average, reduce)
    check_float(input, "input")
    check_array(target, "target")
    if p != 1 and p != 2:
        raise ValueError(f"only p == 1 and p == 2 supported: `p` (={p}) must be 1 or 2.")
    if weight is not None:
        check_float(weight, "weight")
        if weight.ndim != 1:
            raise ValueError(f"weight must be one-dimensional: `weight` {shape_str(weight.shape)}.")
    x = jnp.reshape(input, (1,)) if input.ndim == 0 else input
    if x.ndim > 2 or x.shape[-1] == 0:
        raise ValueError("Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                         f"{shape_str(input.shape)}.")
    nframe, dim = (1 if x.ndim == 1 else x.shape[0]), x.shape[-1]
    if target.ndim > 1 or target.size != nframe:
        raise ValueError("multi_margin_loss: target tensor should be 1-D with size equal to the number of input "
                         f"samples (batch size). Expected target size ({nframe},), but got {shape_str(target.shape)}.")
    if weight is not None and weight.size != dim:
        raise ValueError(f"inconsistent weight size, expected {dim} but got {shape_str(weight.shape)}.")
    if jnp.dtype(target.dtype) == jnp.bool_ or not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"expected target dtype to be Long, but got {target.dtype}: `target` holds class indices.")
    if _is_concrete(target):
        t_np = np.asarray(target).astype(np.int64)
        if ((t_np < 0) | (t_np >= dim)).any():
            raise TargetOutOfBoundsError(f"target out of range: class indices in `target` must be in [0, {dim}).")
    dtype = input.dtype
    ct = stat_dtype(dtype)
    x2 = jnp.reshape(jnp.asarray(x, ct), (nframe, dim))
    t = jnp.reshape(jnp.asarray(target).astype(jnp.int32), (nframe,))
    oob = (t < 0) | (t >= dim)
    safe = jnp.where(oob, 0, t)
    xt = jnp.take_along_axis(x2, safe[:, None], axis=1)
    z = jnp.asarray(margin, ct) - xt + x2
    h = jnp.where(z > 0, z if p == 1 else z * z, jnp.zeros((), ct))
    h = jnp.where(jnp.arange(dim)[None, :] == safe[:, None], jnp.zeros((), ct), h)
    if weight is not None:
        h = h * jnp.asarray(weight, ct)[safe][:, None]
    loss = jnp.sum(h, axis=1) / dim
    loss = jnp.where(oob, jnp.nan, loss)
    return _reduce(jnp.reshape(loss, target.shape), reduction, dtype)
