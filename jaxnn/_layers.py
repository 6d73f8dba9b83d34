"""What a torch layer is, independent of the Flax front end: validated configuration, parameter
shapes and torch's default initialisation, and the call into :mod:`jaxnn.functional`.

:mod:`jaxnn.nnx` and :mod:`jaxnn.linen` are thin wrappers around these specs, so both front ends
create identical parameters from the same key and compute with the same function.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import functional as F
from ._utils import is_int, ntuple, positive_tuple


def uniform(key: jax.Array, shape: Sequence[int], bound: float, dtype: Any) -> jax.Array:
    """torch's ``U(-bound, bound)`` initialisation (``kaiming_uniform_(a=sqrt(5))`` for weights)."""
    return jax.random.uniform(key, tuple(shape), dtype, -bound, bound)


def promote(dtype: Any, *arrays: Any) -> list[Any]:
    """Flax's dtype policy: cast to ``dtype``, or to the arrays' common dtype when ``None``."""
    present = [a for a in arrays if a is not None]
    target = dtype if dtype is not None else jnp.result_type(*present)
    return [None if a is None else jnp.asarray(a, target) for a in arrays]


def param_dtype(dtype: Any) -> Any:
    """torch's ``dtype=`` constructor argument: the parameters' dtype; ``None`` is torch's default
    float32. (Flax's computation dtype is jaxnn's keyword-only ``compute_dtype``.)"""
    if dtype is None:
        return jnp.float32
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"`dtype` must be a JAX/NumPy floating dtype such as jnp.bfloat16, got {dtype!r}."
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"`dtype` must be a floating dtype (parameters are real-valued), got {dt}.")
    return dt


def check_device(device: Any, owner: str) -> None:
    """torch's ``device=`` constructor argument: only ``None`` is accepted.

    JAX places arrays itself: build the module under ``with jax.default_device(d):``, or move its
    state afterwards with ``jax.device_put`` (or shard it); a torch device name means nothing here.
    """
    if device is not None:
        raise ValueError(
            f"{owner}: `device` must be None, got {device!r}. JAX places arrays itself: construct the "
            "module under `with jax.default_device(d):` or move its state with `jax.device_put`."
        )


class ParamSpec(NamedTuple):
    shape: tuple[int, ...]
    init: str  # "uniform", "ones", "zeros" or "constant"
    value: float  # the uniform bound, or the constant


def init_param(spec: ParamSpec, key: jax.Array | None, dtype: Any) -> jax.Array:
    if spec.init == "uniform":
        if key is None:
            raise TypeError("a uniform initialiser needs a PRNG key.")
        return uniform(key, spec.shape, spec.value, dtype)
    return jnp.full(spec.shape, spec.value, dtype)


class ConvConfig(NamedTuple):
    n: int
    transposed: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Any
    dilation: tuple[int, ...]
    groups: int
    bias: bool
    padding_mode: str
    output_padding: tuple[int, ...]

    def params(self) -> dict[str, ParamSpec]:
        g, k = self.groups, self.kernel_size
        if self.transposed:  # torch: fan_in from weight.shape[1] = out_channels / groups
            shape = (self.in_channels, self.out_channels // g) + k
        else:
            shape = (self.out_channels, self.in_channels // g) + k
        bound = 1.0 / math.sqrt(shape[1] * math.prod(k))
        out = {"weight": ParamSpec(shape, "uniform", bound)}
        if self.bias:
            out["bias"] = ParamSpec((self.out_channels,), "uniform", bound)
        return out


def conv_config(
    n: int,
    transposed: bool,
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    bias: bool,
    padding_mode: str,
    output_padding: Any = 0,
) -> ConvConfig:
    """Validate an ``nn.Conv{n}d`` / ``nn.ConvTranspose{n}d`` constructor call as torch does."""
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not is_int(v) or v <= 0:
            raise ValueError(f"`{name}` must be a positive int, got {v!r}.")
    if in_channels % groups:
        raise ValueError(f"`in_channels` (={in_channels}) must be divisible by `groups` (={groups}).")
    if out_channels % groups:
        raise ValueError(f"`out_channels` (={out_channels}) must be divisible by `groups` (={groups}).")
    kernel = positive_tuple(kernel_size, n, "kernel_size", "kernels need at least one element")
    stride_t = positive_tuple(stride, n, "stride", "non-positive stride is not supported")
    dilation_t = positive_tuple(dilation, n, "dilation", "dilation should be greater than zero")
    modes = ("zeros", "reflect", "replicate", "circular")
    if padding_mode not in modes:
        raise ValueError(f"`padding_mode` must be one of {modes}, got {padding_mode!r}.")
    if transposed:
        if padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' `padding_mode` is supported for ConvTranspose{n}d, got {padding_mode!r}.")
        if isinstance(padding, str):
            raise TypeError(f"ConvTranspose{n}d: `padding` must be an int or a tuple, got {padding!r}.")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"`padding` must be an int, a tuple, 'valid' or 'same'; got {padding!r}.")
        if padding == "same" and any(s != 1 for s in stride_t):
            raise ValueError("padding='same' is not supported for strided convolutions.")
        pad: Any = padding
    else:
        pad = ntuple(padding, n, "padding")
        if any(p < 0 for p in pad):
            raise ValueError(f"`padding` must be non-negative, got {padding!r}.")
    out_pad = ntuple(output_padding, n, "output_padding")
    return ConvConfig(
        n, transposed, int(in_channels), int(out_channels), kernel, stride_t, pad, dilation_t,
        int(groups), bool(bias), padding_mode, out_pad,
    )


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def transposed_output_padding(cfg: ConvConfig, x: Any, output_size: Any, channels_last: bool) -> tuple[int, ...]:
    """torch's ``ConvTranspose._output_padding``: pick output_padding to reach ``output_size``."""
    if output_size is None:
        return cfg.output_padding
    sizes = list(output_size)
    if len(sizes) == x.ndim:  # a full shape was given: keep the spatial part
        sizes = sizes[1:-1] if channels_last else sizes[2:]
    elif len(sizes) == x.ndim - 1 and x.ndim == cfg.n + 1:
        sizes = sizes[:-1] if channels_last else sizes[1:]
    if len(sizes) != cfg.n:
        raise ValueError(f"`output_size` must have {cfg.n} spatial sizes (or the full shape), got {output_size!r}.")
    spatial = x.shape[-cfg.n - 1 : -1] if channels_last else x.shape[-cfg.n :]
    out = []
    for i, size in enumerate(sizes):
        s, d, k = cfg.stride[i], cfg.dilation[i], cfg.kernel_size[i]
        p = cfg.padding[i]
        lo = (spatial[i] - 1) * s - 2 * p + d * (k - 1) + 1
        if not lo <= size <= lo + s - 1:
            raise ValueError(
                f"requested `output_size` {size} in dimension {i} is outside the reachable range "
                f"[{lo}, {lo + s - 1}] for an input of size {spatial[i]}."
            )
        out.append(size - lo)
    return tuple(out)


def conv_apply(
    cfg: ConvConfig,
    weight: Any,
    bias: Any,
    x: Any,
    *,
    dtype: Any,
    channels_last: bool,
    precision: Any,
    output_size: Any = None,
) -> jax.Array:
    x, weight, bias = promote(dtype, x, weight, bias)
    if cfg.transposed:
        out_pad = transposed_output_padding(cfg, x, output_size, channels_last)
        return _CONV_T[cfg.n](
            x, weight, bias, cfg.stride, cfg.padding, out_pad, cfg.groups, cfg.dilation,
            channels_last=channels_last, precision=precision,
        )
    return _CONV[cfg.n](
        x, weight, bias, cfg.stride, cfg.padding, cfg.dilation, cfg.groups,
        padding_mode=cfg.padding_mode, channels_last=channels_last, precision=precision,
    )


def linear_params(in_features: int, out_features: int, bias: bool) -> dict[str, ParamSpec]:
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if not is_int(v) or v < 0:
            raise ValueError(f"`{name}` must be a non-negative int, got {v!r}.")
    bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
    out = {"weight": ParamSpec((out_features, in_features), "uniform", bound)}
    if bias:
        out["bias"] = ParamSpec((out_features,), "uniform", bound)
    return out


def group_norm_params(num_groups: int, num_channels: int, affine: bool, bias: bool = True) -> dict[str, ParamSpec]:
    if not is_int(num_groups) or num_groups <= 0:
        raise ValueError(f"`num_groups` must be a positive int, got {num_groups!r}.")
    if not is_int(num_channels) or num_channels % num_groups:
        raise ValueError(f"`num_channels` (={num_channels}) must be divisible by `num_groups` (={num_groups}).")
    if not affine:
        return {}
    out = {"weight": ParamSpec((num_channels,), "ones", 1.0)}
    if bias:
        out["bias"] = ParamSpec((num_channels,), "zeros", 0.0)
    return out


def layer_norm_shape(normalized_shape: Any) -> tuple[int, ...]:
    if is_int(normalized_shape):
        return (int(normalized_shape),)
    if isinstance(normalized_shape, Sequence) and all(is_int(s) for s in normalized_shape):
        return tuple(int(s) for s in normalized_shape)
    raise TypeError(f"`normalized_shape` must be an int or a tuple of ints, got {normalized_shape!r}.")


def layer_norm_params(shape: tuple[int, ...], elementwise_affine: bool, bias: bool) -> dict[str, ParamSpec]:
    if not elementwise_affine:
        return {}
    out = {"weight": ParamSpec(shape, "ones", 1.0)}
    if bias:
        out["bias"] = ParamSpec(shape, "zeros", 0.0)
    return out


class ActivationSpec(NamedTuple):
    fn: Callable[..., jax.Array]
    call_args: tuple[str, ...]  # the constructor arguments passed on to ``fn`` (``inplace`` is not)


# torch.nn activation classes: name -> (function, the constructor arguments the function takes).
# The constructors themselves, with torch's signatures, are written out in jaxnn.nnx / jaxnn.linen.
ACTIVATIONS: dict[str, ActivationSpec] = {
    "ReLU": ActivationSpec(F.relu, ()),
    "ReLU6": ActivationSpec(F.relu6, ()),
    "LeakyReLU": ActivationSpec(F.leaky_relu, ("negative_slope",)),
    "ELU": ActivationSpec(F.elu, ("alpha",)),
    "SELU": ActivationSpec(F.selu, ()),
    "CELU": ActivationSpec(F.celu, ("alpha",)),
    "GELU": ActivationSpec(F.gelu, ("approximate",)),
    "SiLU": ActivationSpec(F.silu, ()),
    "Mish": ActivationSpec(F.mish, ()),
    "Sigmoid": ActivationSpec(F.sigmoid, ()),
    "Tanh": ActivationSpec(F.tanh, ()),
    "Hardtanh": ActivationSpec(F.hardtanh, ("min_val", "max_val")),
    "Hardsigmoid": ActivationSpec(F.hardsigmoid, ()),
    "Hardswish": ActivationSpec(F.hardswish, ()),
    "Softplus": ActivationSpec(F.softplus, ("beta", "threshold")),
    "Softsign": ActivationSpec(F.softsign, ()),
    "LogSigmoid": ActivationSpec(F.logsigmoid, ()),
    "Tanhshrink": ActivationSpec(F.tanhshrink, ()),
    "Softshrink": ActivationSpec(F.softshrink, ("lambd",)),
    "Hardshrink": ActivationSpec(F.hardshrink, ("lambd",)),
    "Threshold": ActivationSpec(F.threshold, ("threshold", "value")),
    "GLU": ActivationSpec(F.glu, ("dim",)),
    "Softmax": ActivationSpec(F.softmax, ("dim",)),
    "LogSoftmax": ActivationSpec(F.log_softmax, ("dim",)),
}


def check_activation(name: str, config: dict[str, Any]) -> None:
    """Validate an activation's constructor arguments eagerly (``GELU('fast')`` fails at once).

    ``dim`` is left to the call, as torch does: whether it is valid depends on the input's rank.
    """
    if "dim" in config:  # GLU, Softmax, LogSoftmax: `dim` is their only argument
        return
    validate_call(ACTIVATIONS[name].fn, **config)


def hardtanh_bounds(
    min_val: float, max_val: float, min_value: float | None, max_value: float | None, *, warn: bool
) -> tuple[float, float]:
    """``nn.Hardtanh``'s bounds: the deprecated ``min_value``/``max_value`` win (with torch's
    FutureWarning), and ``max_val`` must be strictly greater than ``min_val``."""
    if min_value is not None:
        if warn:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning,
                          stacklevel=3)
        min_val = min_value
    if max_value is not None:
        if warn:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning,
                          stacklevel=3)
        max_val = max_value
    if max_val <= min_val:
        raise ValueError(f"`max_val` (={max_val}) must be greater than `min_val` (={min_val}).")
    return min_val, max_val


def validate_call(fn: Callable[..., Any], **kwargs: Any) -> None:
    """Trace ``fn(x, **kwargs)`` abstractly (nothing is computed or compiled), so that a bad
    constructor argument, e.g. ``approximate='fast'``, raises jaxnn's error in the constructor."""
    jax.eval_shape(lambda x: fn(x, **kwargs), jax.ShapeDtypeStruct((2, 2, 2, 2), jnp.float32))


def apply_activation(name: str, config: dict[str, Any], x: Any) -> jax.Array:
    return ACTIVATIONS[name].fn(x, **config)
