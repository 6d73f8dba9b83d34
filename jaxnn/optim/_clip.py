"""Gradient clipping as optax transforms that follow ``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_`` number for number, in every dtype.

torch computes each gradient's norm in that gradient's dtype, the total norm in the promoted dtype
of all gradients and the clip coefficient in the total norm's dtype. With bfloat16 or float16
gradients those roundings change the clipped values: a float32 computation gives other numbers.

What torch does, step by step (torch 2.13, CPU; ``foreach=True`` and ``False`` give the same
numbers, the CPU foreach norm calls ``linalg.vector_norm`` per tensor):

1. ``n_i = linalg.vector_norm(g_i, p)`` in ``g_i``'s dtype: ``|g|^p`` accumulated in float32
   (float64 for float64 gradients), the root taken in that precision, the result rounded to
   ``g_i``'s dtype.
2. ``N = linalg.vector_norm(stack(n_1, ..., n_k), p)``: ``stack`` promotes (bfloat16 with float16 or
   float32 gives float32, anything with float64 gives float64); the same kernel as step 1.
3. ``c = (N + 1e-6).reciprocal() * max_norm`` (that is how ``Tensor.__rtruediv__`` divides), each
   step rounded to ``N``'s dtype: the 1e-6 is first rounded to that dtype, ``max_norm`` to float32
   (float64 for float64), then ``c = min(c, 1)``.
4. ``g_i *= c``, computed in float32 (float64 for float64) and rounded to ``g_i``'s dtype.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._utils import stat_dtype

_EPS = 1e-6  # torch: clip_coef = max_norm / (total_norm + 1e-6)
_FLIPS = "flip the sign of the gradients"


class ClipGradNormState(NamedTuple):
    """State of :func:`clip_grad_norm`.

    Attributes:
      total_norm: the total norm of the gradients of the last update, i.e. the value that
        ``torch.nn.utils.clip_grad_norm_`` returns, in its dtype (the promoted dtype of the
        gradients, float32 when there are none; fixed by ``init`` from the parameters). Zero before
        the first update. Read it from a chained optimizer state with :func:`total_grad_norm`.
    """

    total_norm: chex.Array


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_norm_type(norm_type: Any) -> float:
    try:
        p = float(norm_type)
    except (TypeError, ValueError) as e:  # includes a traced value (jax's ConcretizationTypeError)
        raise TypeError(
            f"`norm_type` must be a Python number or 'inf', got {norm_type!r}; it shapes the "
            "computation, so with `optax.inject_hyperparams` pass `static_args=('norm_type',)`."
        ) from e
    if math.isnan(p):
        raise ValueError("`norm_type` must be a number or +-inf, got nan.")
    return p


def _check_nonnegative(value: Any, name: str, torch_does: str) -> None:
    if _is_number(value) and not value >= 0:
        raise ValueError(f"`{name}` must be >= 0, got {value} (torch would {torch_does}; jaxnn refuses it).")


def _real_dtype(dtype: Any) -> np.dtype:
    return jnp.finfo(dtype).dtype  # complex64 -> float32; real dtypes unchanged


def _grad_leaves(tree: Any, p: float) -> list[jax.Array]:
    """The gradient leaves, checked as torch checks them before computing norms."""
    leaves = []
    for path, g in jax.tree_util.tree_leaves_with_path(tree):
        g = jnp.asarray(g)
        where = jax.tree_util.keystr(path) or "the gradient"
        if not jnp.issubdtype(g.dtype, jnp.inexact):
            raise TypeError(
                f"Gradient clipping needs floating-point gradients, got {g.dtype} at {where}; leave "
                "such leaves out of the optimized parameters (or wrap the transform in `optax.masked`)."
            )
        if g.size == 0 and (p < 0 or p == math.inf):
            raise ValueError(
                f"The {p} norm of the zero-size gradient at {where} is undefined (the operation has no "
                "identity); torch raises here too. Use a non-negative finite `norm_type` or drop the "
                "empty leaf."
            )
        leaves.append(g)
    return leaves


def _total_norm_dtype(dtypes: list[Any]) -> np.dtype:
    """torch.stack's promotion of the per-gradient norms (float32 for no gradients)."""
    if not dtypes:
        return np.dtype(jnp.float32)
    return functools.reduce(jnp.promote_types, [_real_dtype(d) for d in dtypes])


def _vector_norm(x: jax.Array, p: float) -> jax.Array:
    """``torch.linalg.vector_norm(x, p)`` as torch's CPU kernel computes it.

    ``|x|^p`` is accumulated in float32 (float64 for float64 input), the root is taken in that
    precision with ``1/p`` rounded to it, and the result is rounded to ``x``'s (real) dtype.
    """
    out_dtype = _real_dtype(x.dtype)
    acc = stat_dtype(out_dtype)
    a = jnp.abs(x).astype(acc)
    if p == math.inf:
        r = jnp.max(a)
    elif p == -math.inf:
        r = jnp.min(a)
    elif p == 0:
        r = jnp.sum((x != 0).astype(acc))
    elif p == 1:
        r = jnp.sum(a)
    elif p == 2:
        r = jnp.sqrt(jnp.sum(a * a))
    elif p == 0.5:  # powf(a, 0.5) is the correctly rounded sqrt; the root is powf(s, 2) = s * s
        s = jnp.sum(jnp.sqrt(a))
        r = s * s
    else:
        p_acc = np.asarray(p, acc)
        s = jnp.sum(jnp.power(a, p_acc))
        r = jnp.power(s, np.asarray(1, acc) / p_acc)
    return r.astype(out_dtype)


def _raise_if_nonfinite(total: jax.Array, p: float) -> None:
    try:
        finite = bool(jnp.isfinite(total))
    except jax.errors.ConcretizationTypeError:  # traced (jit, vmap, scan, ...): nothing to raise
        return
    if not finite:
        raise RuntimeError(
            f"The total norm of order {p} for gradients is non-finite ({total}), so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`."
        )


def _total_norm(leaves: list[jax.Array], p: float) -> jax.Array:
    dtype = _total_norm_dtype([g.dtype for g in leaves])
    if not leaves:
        return jnp.zeros([], dtype)
    norms = jnp.stack([_vector_norm(g, p).astype(dtype) for g in leaves])
    return _vector_norm(norms, p)


def get_total_norm(tensors: Any, norm_type: float = 2.0, *, error_if_nonfinite: bool = False) -> jax.Array:
    r"""``torch.nn.utils.get_total_norm``: the ``norm_type``-norm of all arrays of a pytree together.

    .. math::
        N = \left\| \left(\|g_1\|_p, \dots, \|g_k\|_p\right) \right\|_p

    with each :math:`\|g_i\|_p` rounded to :math:`g_i`'s dtype and :math:`N` computed in their
    promoted dtype, as torch does (see :func:`clip_grad_norm`).

    Args:
      tensors: a pytree of floating-point (or complex) arrays.
      norm_type: ``p``: any real number or ``inf`` / ``-inf`` (``0`` counts the non-zero entries).
      error_if_nonfinite: raise ``RuntimeError`` if the norm is ``nan`` or ``inf``; only possible
        on concrete values (see :func:`clip_grad_norm` for what happens under ``jit``).

    Returns:
      A scalar in the promoted dtype of the leaves (float32 for an empty pytree, where it is 0).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> optim.get_total_norm({"a": jnp.array([3.0, 4.0]), "b": jnp.array([12.0])})
      Array(13., dtype=float32)
    """
    p = _check_norm_type(norm_type)
    total = _total_norm(_grad_leaves(tensors, p), p)
    if error_if_nonfinite:
        _raise_if_nonfinite(total, p)
    return total


def _as_acc(value: Any, acc: Any) -> jax.Array:
    """A Python number rounded to ``acc`` the way torch converts a Scalar (double -> acc)."""
    if _is_number(value):
        return jnp.asarray(np.asarray(value, np.float64).astype(acc))
    return jnp.asarray(value).astype(acc)


def _clip_coef(total: jax.Array, max_norm: Any) -> jax.Array:
    """``clamp((total + 1e-6).reciprocal() * max_norm, max=1)``, each step rounded to total's dtype."""
    dtype = total.dtype
    acc = stat_dtype(dtype)
    # torch casts the Python 1e-6 to the norm's dtype (through float32 for the 16-bit types) before
    # adding; the product with max_norm instead takes max_norm in float32 (float64 for float64).
    eps = np.asarray(_EPS, np.float64).astype(acc if acc == np.float64 else np.float32).astype(dtype)
    denom = (total.astype(acc) + jnp.asarray(eps).astype(acc)).astype(dtype)
    recip = (1 / denom.astype(acc)).astype(dtype)
    coef = (recip.astype(acc) * _as_acc(max_norm, acc)).astype(dtype)
    return jnp.minimum(coef, jnp.ones([], dtype))


def _scale(g: jax.Array, coef: jax.Array) -> jax.Array:
    """``g.mul_(coef)``: in float32 (float64 for float64), rounded to ``g``'s dtype."""
    if jnp.issubdtype(g.dtype, jnp.complexfloating):
        return g * coef.astype(g.dtype)
    acc = stat_dtype(g.dtype)
    return (g.astype(acc) * coef.astype(acc)).astype(g.dtype)


def clip_grads_with_norm(grads: Any, max_norm: float, total_norm: jax.Array) -> Any:
    r"""``torch.nn.utils.clip_grads_with_norm_``, functional: scale ``grads`` given their total norm.

    .. math::
        g_i \leftarrow g_i \cdot \min\left(1, \frac{\text{max\_norm}}{\text{total\_norm} + 10^{-6}}\right)

    with the coefficient computed in ``total_norm``'s dtype and each product in float32 (float64
    for float64) rounded to the gradient's dtype, as torch does.

    Args:
      grads: a pytree of floating-point arrays.
      max_norm: the largest total norm kept, >= 0 (a Python number or a scalar array).
      total_norm: a scalar, e.g. from :func:`get_total_norm`.

    Returns:
      The scaled pytree (same structure and dtypes).
    """
    _check_nonnegative(max_norm, "max_norm", _FLIPS)
    coef = _clip_coef(jnp.asarray(total_norm), max_norm)
    return jax.tree.map(lambda g: _scale(jnp.asarray(g), coef), grads)


def clip_grad_norm(
    max_norm: float, norm_type: float = 2.0, *, error_if_nonfinite: bool = False
) -> optax.GradientTransformation:
    r"""``torch.nn.utils.clip_grad_norm_`` as an optax transform; chain it before the optimizer.

    .. math::
        n_i = \|g_i\|_p, \quad N = \|(n_1, \dots, n_k)\|_p, \quad
        g_i \leftarrow g_i \cdot \min\left(1, \frac{\text{max\_norm}}{N + 10^{-6}}\right)

    with :math:`p` = ``norm_type`` (:math:`\|g\|_\infty = \max |g|`). Every step runs in torch's
    dtype: :math:`n_i` in :math:`g_i`'s dtype (accumulated in float32, or float64 for float64),
    :math:`N` and the coefficient in the promoted dtype of the gradients (bfloat16 with float16 or
    float32 gives float32), the coefficient as ``(N + 1e-6).reciprocal() * max_norm`` rounded at
    each step, the product in float32 rounded to :math:`g_i`'s dtype. For example one bfloat16
    gradient ``[0.0123291015625, -0.045654296875, 0.0791015625]`` with ``max_norm=0.01`` has
    ``N = 0.09228515625`` and becomes ``[0.0013275146484375, -0.004913330078125,
    0.008544921875]``, as in torch (a float32 computation gives ``[0.00133514404296875, ...]``).
    The sums inside a norm are in XLA's order; torch's order depends on the CPU's vector width, so
    float32 norms of long gradients agree with torch to rounding (a few ulps), not bit for bit.

    Args:
      max_norm: the largest total norm kept, >= 0 (a Python number, or an array under
        ``optax.inject_hyperparams``).
      norm_type: ``p``: a Python number, ``inf`` or ``-inf`` (torch accepts any real ``p``, so
        does jaxnn; ``0`` counts non-zero entries). Static: with ``optax.inject_hyperparams`` pass
        ``static_args=("norm_type", "error_if_nonfinite")``.
      error_if_nonfinite: raise ``RuntimeError`` (torch's message) when :math:`N` is ``nan`` or
        ``inf``. That needs concrete values: it works when ``update`` runs eagerly (outside
        ``jax.jit``). Under ``jit`` (and other JAX transformations: ``vmap``, ``scan``,
        ``nnx.jit``) nothing can be raised: the update proceeds as with
        ``error_if_nonfinite=False`` (an infinite norm gives the coefficient 0, so finite entries
        become 0 and infinite ones nan; a nan norm makes every entry nan) and
        ``state.total_norm`` holds the non-finite norm. Check ``jnp.isfinite`` of
        :func:`total_grad_norm` after the step, or wrap the optimizer in
        ``optax.apply_if_finite`` to skip such steps (a skipped step keeps the inner state, so
        the norm read then is the previous step's; ``notfinite_count`` tells).

    Returns:
      An ``optax.GradientTransformation`` whose state is :class:`ClipGradNormState`;
      ``state.total_norm`` is the value torch's ``clip_grad_norm_`` returns, readable after each
      update without another pass over the gradients (:func:`total_grad_norm` finds it in a
      chained state or an ``nnx.Optimizer``).

    Raises:
      ValueError: ``max_norm < 0``, ``norm_type`` nan, or an ``inf`` / negative ``norm_type``
        with a zero-size gradient (torch raises there too).
      TypeError: a non-floating gradient leaf, or a traced ``norm_type``.
      RuntimeError: a non-finite total norm with ``error_if_nonfinite=True``, outside ``jit``.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jaxnn import optim
      >>> tx = optax.chain(optim.clip_grad_norm(1.0), optim.adamw(1e-3))
      >>> params = {"w": jnp.zeros(3)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0, 0.0])}, state, params)
      >>> optim.total_grad_norm(state)  # what torch's clip_grad_norm_ returns
      Array(5., dtype=float32)
      >>> clip = optim.clip_grad_norm(0.01)
      >>> g = jnp.array([0.0123291015625, -0.045654296875, 0.0791015625], jnp.bfloat16)
      >>> clipped, clip_state = clip.update(g, clip.init(g))
      >>> clip_state.total_norm.dtype, float(clip_state.total_norm)
      (dtype(bfloat16), 0.09228515625)
      >>> clipped.astype(jnp.float32).tolist()  # torch's values; float32 maths gives 0.00133514...
      [0.0013275146484375, -0.004913330078125, 0.008544921875]

    Differences from optax:
      ``optax.clip_by_global_norm`` scales by ``g / N * max_norm`` (no 1e-6), squares and sums
      in the gradients' own dtype with no per-gradient norms (none of torch's roundings),
      supports only the 2-norm and does not keep the norm.

    Differences from PyTorch:
      Functional: ``update`` returns the clipped updates instead of modifying ``.grad`` in place,
      and the total norm is in the state instead of being returned. No ``foreach`` argument (it
      does not change torch's numbers). A negative ``max_norm`` (which makes torch flip the
      gradients' sign) and a nan ``norm_type`` are refused. Gradients whose dtype differs from
      the parameters' are clipped in their own dtype; ``state.total_norm`` keeps the dtype chosen
      at ``init`` from the parameters.
    """
    _check_nonnegative(max_norm, "max_norm", _FLIPS)
    p = _check_norm_type(norm_type)

    def init_fn(params: Any) -> ClipGradNormState:
        dtypes = [jnp.result_type(x) for x in jax.tree.leaves(params)]
        dtypes = [d for d in dtypes if jnp.issubdtype(d, jnp.inexact)]
        return ClipGradNormState(jnp.zeros([], _total_norm_dtype(dtypes)))

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        leaves = _grad_leaves(updates, p)
        total = _total_norm(leaves, p)
        if error_if_nonfinite:
            _raise_if_nonfinite(total, p)
        if leaves:
            coef = _clip_coef(total, max_norm)
            updates = jax.tree.map(lambda g: _scale(jnp.asarray(g), coef), updates)
        return updates, ClipGradNormState(total.astype(jnp.result_type(state.total_norm)))

    return optax.GradientTransformation(init_fn, update_fn)


def clip_grad_value(clip_value: float) -> optax.GradientTransformation:
    r"""``torch.nn.utils.clip_grad_value_`` as an optax transform; chain it before the optimizer.

    .. math::
        g \leftarrow \min(\max(g, -v), v), \quad v = \text{clip\_value}

    elementwise, with :math:`v` rounded to each gradient's dtype first (through float32 for
    bfloat16 and float16, as torch converts the Python number). ``nan`` entries stay ``nan``.

    Args:
      clip_value: ``v >= 0`` (a Python number, or an array under ``optax.inject_hyperparams``).

    Returns:
      An ``optax.GradientTransformation`` with ``optax.EmptyState``.

    Raises:
      ValueError: ``clip_value < 0`` (torch then sets every entry to ``clip_value``).
      TypeError: a non-floating gradient leaf.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn import optim
      >>> clip = optim.clip_grad_value(0.5)
      >>> g = {"w": jnp.array([-2.0, 0.25, 3.0])}
      >>> clip.update(g, clip.init(g))[0]["w"]
      Array([-0.5 ,  0.25,  0.5 ], dtype=float32)

    Differences from optax:
      ``optax.clip(max_delta)`` computes the same clamp; this is its torch-named counterpart, with
      torch's rounding of the bound and checks.
    """
    _check_nonnegative(clip_value, "clip_value", "set every entry to `clip_value`")

    def bound(dtype: Any) -> jax.Array:
        if _is_number(clip_value):
            via = np.float64 if dtype == np.float64 else np.float32
            return jnp.asarray(np.asarray(clip_value, np.float64).astype(via).astype(dtype))
        return jnp.asarray(clip_value).astype(dtype)

    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        _grad_leaves(updates, 2.0)

        def clamp(g):
            g = jnp.asarray(g)
            v = bound(g.dtype)
            return jnp.minimum(jnp.maximum(g, -v), v)

        return jax.tree.map(clamp, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def total_grad_norm(opt_state: Any) -> jax.Array:
    """The total norm that :func:`clip_grad_norm` recorded at the last update.

    That is the value ``torch.nn.utils.clip_grad_norm_`` returns (people log it every step), read
    from the optimizer state without another pass over the gradients.

    Args:
      opt_state: an optax state containing one :class:`ClipGradNormState` at any depth (a chain,
        ``inject_hyperparams``, ``MultiSteps``, ``apply_if_finite``, ...), or an ``nnx.Optimizer``.

    Returns:
      The scalar ``total_norm`` (0 before the first update).

    Raises:
      ValueError: if ``opt_state`` holds no :class:`ClipGradNormState`, or more than one (then
        pick one with ``optax.tree_utils.tree_get_all_with_path(opt_state, "total_norm")``).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from jaxnn import optim
      >>> tx = optax.chain(optim.clip_grad_norm(1.0), optim.adam(1e-3))
      >>> params = {"w": jnp.zeros(2)}
      >>> _, state = tx.update({"w": jnp.array([6.0, 8.0])}, tx.init(params), params)
      >>> optim.total_grad_norm(state)
      Array(10., dtype=float32)
    """
    state = opt_state
    if not isinstance(state, tuple) and hasattr(state, "opt_state"):  # nnx.Optimizer
        state = state.opt_state
    is_clip = lambda x: isinstance(x, ClipGradNormState)
    found = [s for s in jax.tree.leaves(state, is_leaf=is_clip) if is_clip(s)]
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        hint = (
            "chain `jaxnn.optim.clip_grad_norm(...)` into the optimizer"
            if not found
            else "pick one with `optax.tree_utils.tree_get_all_with_path(opt_state, 'total_norm')`"
        )
        raise ValueError(f"`opt_state` holds {what} clip_grad_norm states (expected one): {hint}.")
    value = found[0].total_norm
    if hasattr(value, "get_value"):  # nnx.Optimizer keeps its state arrays in variables
        value = value.get_value()
    return value
