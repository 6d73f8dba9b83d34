"""Batch normalisation with torch.nn.functional's signature, and the running statistics that torch
updates in place returned as values."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from .._utils import check_real_float, shape_str, stat_dtype


def _check_eps(eps: Any, training: bool) -> None:
    """torch's ``F.batch_norm`` rule (checked in Python, so a traced ``eps`` is not checked)."""
    try:
        eps = float(eps)
    except jax.errors.ConcretizationTypeError:
        return
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")


def _check(input: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any, training: bool,
           eps: Any) -> int:
    check_real_float(input, "input")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: `input` must be at least 2D (N, C, *), got shape {shape_str(input.shape)}.")
    c = input.shape[1]
    if training and input.shape[0] * math.prod(input.shape[2:]) == 1:  # torch's _verify_batch_size
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {shape_str(input.shape)}."
        )
    _check_eps(eps, training)
    if training and (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None (torch's "
                         f"rule), got `running_mean`={_given(running_mean)}, `running_var`={_given(running_var)}.")
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        if not training and v is None:
            raise ValueError(f"`{name}` must be given in evaluation mode (training=False).")
        if v is not None and tuple(v.shape) != (c,):
            raise ValueError(f"`{name}` should contain {c} elements (the channels of `input`), got shape "
                             f"{shape_str(v.shape)}.")
    for name, v in (("weight", weight), ("bias", bias)):  # torch checks the element count only
        if v is not None and math.prod(v.shape) != c:
            raise ValueError(f"`{name}` should contain {c} elements (the channels of `input`), got shape "
                             f"{shape_str(v.shape)}.")
    return c


def _given(v: Any) -> str:
    return "None" if v is None else f"an array of shape {shape_str(v.shape)}"


def _batch_norm(
    input: Any, running_mean: Any, running_var: Any, weight: Any, bias: Any, training: bool, momentum: Any,
    eps: float,
) -> tuple[jax.Array, Any, Any]:
    """The output and the updated running statistics (unchanged when not training or absent)."""
    c = _check(input, running_mean, running_var, weight, bias, training, eps)
    if input.size == 0:  # torch returns the empty output and leaves the running statistics alone
        return jnp.asarray(input), running_mean, running_var
    acc = stat_dtype(input.dtype)
    x = jnp.asarray(input).astype(acc)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - jnp.reshape(mean, shape)), axis=axes)  # biased: to normalise
        if running_mean is not None and running_var is not None:
            n = x.size // c
            m = jnp.asarray(momentum, acc)
            new_mean = (1 - m) * running_mean.astype(acc) + m * mean
            new_var = (1 - m) * running_var.astype(acc) + m * (var * (n / (n - 1)))  # unbiased
            running_mean = new_mean.astype(running_mean.dtype)
            running_var = new_var.astype(running_var.dtype)
    else:
        mean, var = running_mean.astype(acc), running_var.astype(acc)
    # torch's CPU kernel: out = x * alpha + beta, alpha = weight / sqrt(var + eps), beta = bias - mean * alpha
    alpha = jax.lax.rsqrt(var + jnp.asarray(eps, acc))
    if weight is not None:
        alpha = alpha * jnp.reshape(weight, (c,)).astype(acc)
    beta = -mean * alpha
    if bias is not None:
        beta = beta + jnp.reshape(bias, (c,)).astype(acc)
    out = x * jnp.reshape(alpha, shape) + jnp.reshape(beta, shape)
    return out.astype(input.dtype), running_mean, running_var


def batch_norm(
    input: jax.Array,
    running_mean: jax.Array | None,
    running_var: jax.Array | None,
    weight: jax.Array | None = None,
    bias: jax.Array | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> jax.Array:
    r"""``torch.nn.functional.batch_norm`` over the channel dimension 1 of ``(N, C, *)``.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \text{eps}}} \cdot \text{weight} + \text{bias}

    With ``training=True`` the statistics are the batch's (mean and BIASED variance over ``N`` and
    every spatial position); with ``training=False`` they are ``running_mean`` and ``running_var``.

    Args:
      input: ``(N, C, *)``.
      running_mean, running_var: ``(C,)``, or both None (None needs ``training=True``).
      weight, bias: optional affine parameters with ``C`` elements (``(C,)``; torch accepts any
        shape with ``C`` elements, e.g. ``(1, C)``, and so does this).
      training: use the batch statistics.
      momentum: weight of the new batch statistics in the running average (used only by
        :func:`batch_norm_running_stats`; here for torch's signature). A float: None is a
        TypeError, as in torch.
      eps: added to the variance; must be positive in training and non-negative in evaluation
        (torch's ValueErrors).

    Returns:
      The normalised array, dtype of ``input`` (statistics in float32 at least). An empty
      ``input`` (e.g. ``N = 0``) gives an empty output, as in torch.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.arange(8.0).reshape(4, 2)
      >>> F.batch_norm(x, None, None, training=True)[:, 0]
      Array([-1.3416..., -0.4472...,  0.4472...,  1.3416...], dtype=float32)

    Differences from PyTorch:
      torch also updates ``running_mean`` / ``running_var`` IN PLACE when ``training=True``. JAX
      arrays are immutable: get the updated statistics from :func:`batch_norm_running_stats`
      (modules do this for you). Errors are ValueError where torch raises RuntimeError.
    """
    if momentum is None:
        raise TypeError(
            "batch_norm(): `momentum` must be a float, not None (torch's rule; the cumulative average of "
            "`momentum=None` modules is `batch_norm_running_stats(..., momentum=1 / num_batches_tracked)`)."
        )
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)[0]


def batch_norm_running_stats(
    input: jax.Array,
    running_mean: jax.Array,
    running_var: jax.Array,
    momentum: float | jax.Array = 0.1,
) -> tuple[jax.Array, jax.Array]:
    r"""The running statistics torch's ``batch_norm(..., training=True)`` writes in place.

    .. math::
        \text{running\_mean} \leftarrow (1 - m)\,\text{running\_mean} + m\,\mathrm{E}[x], \quad
        \text{running\_var} \leftarrow (1 - m)\,\text{running\_var} + m\,\frac{n}{n - 1}\mathrm{Var}[x]

    with the UNBIASED batch variance (``n`` values per channel), although the output is normalised
    with the biased one.

    Args:
      input: ``(N, C, *)``.
      running_mean, running_var: ``(C,)``.
      momentum: ``m``, a float or a scalar array. For torch's ``momentum=None`` (a cumulative
        average) pass ``1 / num_batches_tracked`` after incrementing it.

    Returns:
      ``(new_running_mean, new_running_var)`` in the dtypes of the given ones.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.arange(8.0).reshape(4, 2)
      >>> F.batch_norm_running_stats(x, jnp.zeros(2), jnp.ones(2))
      (Array([0.3, 0.4], dtype=float32), Array([1.5666..., 1.5666...], dtype=float32))
    """
    # eps does not enter the running statistics; torch's positive default keeps its check quiet
    _, mean, var = _batch_norm(input, running_mean, running_var, None, None, True, momentum, 1e-5)
    return mean, var
