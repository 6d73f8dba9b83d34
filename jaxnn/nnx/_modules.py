"""flax.nnx modules with torch.nn's constructor signatures, parameter names and layouts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _layers as L
from .. import functional as F


def _make_params(module: nnx.Module, specs: dict[str, L.ParamSpec], rngs: nnx.Rngs | None, param_dtype: Any) -> None:
    for name in ("weight", "bias"):
        spec = specs.get(name)
        if spec is None:
            setattr(module, name, None)
            continue
        if spec.init == "uniform":
            if rngs is None:
                raise TypeError(f"{type(module).__name__} needs `rngs` to initialise `{name}`.")
            key = rngs.params()
        else:
            key = None  # constant initialisers take no key
        setattr(module, name, nnx.Param(L.init_param(spec, key, param_dtype)))


def _value(p: Any) -> Any:
    return None if p is None else p[...]


class _Parametrized(nnx.Module):
    """Modules whose torch twin has optional ``weight`` and ``bias`` (set by ``_make_params``)."""

    weight: nnx.Param | None
    bias: nnx.Param | None


class _ConvNd(_Parametrized):
    _n = 0
    _transposed = False

    def _setup(self, cfg: L.ConvConfig, channels_last: bool, dtype: Any, param_dtype: Any,
               precision: Any, rngs: nnx.Rngs) -> None:
        self.config = cfg
        self.in_channels, self.out_channels = cfg.in_channels, cfg.out_channels
        self.kernel_size, self.stride, self.padding = cfg.kernel_size, cfg.stride, cfg.padding
        self.dilation, self.groups, self.padding_mode = cfg.dilation, cfg.groups, cfg.padding_mode
        self.output_padding = cfg.output_padding
        self.channels_last, self.dtype, self.precision = channels_last, dtype, precision
        _make_params(self, cfg.params(), rngs, param_dtype)


class _Conv(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        channels_last: bool = False,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        rngs: nnx.Rngs,
    ):
        cfg = L.conv_config(self._n, False, in_channels, out_channels, kernel_size, stride, padding,
                            dilation, groups, bias, padding_mode)
        self._setup(cfg, channels_last, dtype, param_dtype, precision, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return L.conv_apply(self.config, _value(self.weight), _value(self.bias), x, dtype=self.dtype,
                            channels_last=self.channels_last, precision=self.precision)


class _ConvTranspose(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        output_padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | Sequence[int] = 1,
        padding_mode: str = "zeros",
        *,
        channels_last: bool = False,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        rngs: nnx.Rngs,
    ):
        cfg = L.conv_config(self._n, True, in_channels, out_channels, kernel_size, stride, padding,
                            dilation, groups, bias, padding_mode, output_padding)
        self._setup(cfg, channels_last, dtype, param_dtype, precision, rngs)

    def __call__(self, x: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        return L.conv_apply(self.config, _value(self.weight), _value(self.bias), x, dtype=self.dtype,
                            channels_last=self.channels_last, precision=self.precision,
                            output_size=output_size)


_CONV_DOC = """``torch.nn.Conv{n}d`` as a flax.nnx module: parameters ``weight`` ``(out_channels,
    in_channels / groups, *kernel_size)`` and ``bias`` ``(out_channels,)``, initialised from torch's
    ``U(-sqrt(k), sqrt(k))``, ``k = groups / (in_channels * prod(kernel_size))``. Calls
    :func:`jaxnn.functional.conv{n}d`. Extra keyword arguments: ``channels_last``, ``dtype``
    (computation dtype, flax's convention), ``param_dtype``, ``precision``, ``rngs``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxnn.nnx import Conv{n}d
      >>> conv = Conv{n}d(4, 8, 3, padding=1, padding_mode="reflect", rngs=nnx.Rngs(0))
      >>> conv.weight.shape
      {wshape}
    """

_CONV_T_DOC = """``torch.nn.ConvTranspose{n}d`` as a flax.nnx module: ``weight`` ``(in_channels,
    out_channels / groups, *kernel_size)``; call with an optional ``output_size`` as torch's
    ``forward(input, output_size)``. Calls :func:`jaxnn.functional.conv_transpose{n}d`.
    """


class Conv1d(_Conv):
    _n = 1


class Conv2d(_Conv):
    _n = 2


class Conv3d(_Conv):
    _n = 3


class ConvTranspose1d(_ConvTranspose):
    _n = 1


class ConvTranspose2d(_ConvTranspose):
    _n = 2


class ConvTranspose3d(_ConvTranspose):
    _n = 3


for _c in (Conv1d, Conv2d, Conv3d):
    _c.__doc__ = _CONV_DOC.format(n=_c._n, wshape="(8, 4" + ", 3" * _c._n + ")")
for _c in (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d):
    _c.__doc__ = _CONV_T_DOC.format(n=_c._n)


class Linear(_Parametrized):
    """``torch.nn.Linear``: ``weight`` ``(out_features, in_features)`` (the transpose of flax's
    kernel), ``bias`` ``(out_features,)``, both ``U(-1/sqrt(in), 1/sqrt(in))``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        self.in_features, self.out_features, self.dtype = in_features, out_features, dtype
        _make_params(self, L.linear_params(in_features, out_features, bias), rngs, param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x, w, b = L.promote(self.dtype, x, _value(self.weight), _value(self.bias))
        return F.linear(x, w, b)


class GroupNorm(_Parametrized):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)``; channels at dim 1
    (or last with ``channels_last=True``). Flax's GroupNorm uses eps 1e-6 and ``scale``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 channels_last: bool = False, dtype: Any = None, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs | None = None):
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.channels_last, self.dtype = channels_last, dtype
        _make_params(self, L.group_norm_params(num_groups, num_channels, affine), rngs, param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x, w, b = L.promote(self.dtype, x, _value(self.weight), _value(self.bias))
        return F.group_norm(x, self.num_groups, w, b, self.eps, channels_last=self.channels_last)


class LayerNorm(_Parametrized):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)``."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, *, dtype: Any = None,
                 param_dtype: Any = jnp.float32, rngs: nnx.Rngs | None = None):
        self.normalized_shape = L.layer_norm_shape(normalized_shape)
        self.eps, self.elementwise_affine, self.dtype = eps, elementwise_affine, dtype
        _make_params(self, L.layer_norm_params(self.normalized_shape, elementwise_affine, bias), rngs, param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x, w, b = L.promote(self.dtype, x, _value(self.weight), _value(self.bias))
        return F.layer_norm(x, self.normalized_shape, w, b, self.eps)


class GEGLU(nnx.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)``: ``proj = Linear(dim_in, 2 * dim_out)``;
    ``h, gate = proj(x).chunk(2, -1)``; ``h * gelu(gate)`` (exact gelu unless ``approximate``)."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True, *, approximate: str = "none",
                 dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        L.validate_call(F.gelu, approximate=approximate)
        self.approximate = approximate
        self.proj = Linear(dim_in, 2 * dim_out, bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return F.geglu(self.proj(x), -1, self.approximate)


class PReLU(nnx.Module):
    """``torch.nn.PReLU(num_parameters=1, init=0.25)`` with its learnable ``weight``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, *, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs | None = None):
        self.num_parameters = num_parameters
        self.weight = nnx.Param(jnp.full((num_parameters,), init, param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        x, w = L.promote(None, x, self.weight[...])
        return F.prelu(x, w)


class _Activation(nnx.Module):
    _name = ""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.pop("rngs", None)
        self.config = tuple(L.bind_activation(self._name, args, kwargs).items())

    def __call__(self, x: jax.Array) -> jax.Array:
        return L.apply_activation(self._name, dict(self.config), x)


def _activation_class(name: str) -> type:
    spec = L.ACTIVATIONS[name]
    sig = ", ".join(f"{a}={d!r}" for a, d in spec.args)
    doc = (f"``torch.nn.{name}({sig})``: calls :func:`jaxnn.functional.{spec.fn.__name__}`"
           f"{' (inplace is accepted and ignored)' if any(a == 'inplace' for a, _ in spec.args) else ''}.")
    return type(name, (_Activation,), {"_name": name, "__doc__": doc, "__module__": __name__})


ReLU = _activation_class("ReLU")
ReLU6 = _activation_class("ReLU6")
LeakyReLU = _activation_class("LeakyReLU")
ELU = _activation_class("ELU")
SELU = _activation_class("SELU")
CELU = _activation_class("CELU")
GELU = _activation_class("GELU")
SiLU = _activation_class("SiLU")
Mish = _activation_class("Mish")
Sigmoid = _activation_class("Sigmoid")
Tanh = _activation_class("Tanh")
Hardtanh = _activation_class("Hardtanh")
Hardsigmoid = _activation_class("Hardsigmoid")
Hardswish = _activation_class("Hardswish")
Softplus = _activation_class("Softplus")
Softsign = _activation_class("Softsign")
LogSigmoid = _activation_class("LogSigmoid")
Tanhshrink = _activation_class("Tanhshrink")
Softshrink = _activation_class("Softshrink")
Hardshrink = _activation_class("Hardshrink")
Threshold = _activation_class("Threshold")
GLU = _activation_class("GLU")
Softmax = _activation_class("Softmax")
LogSoftmax = _activation_class("LogSoftmax")


class Identity(nnx.Module):
    """``torch.nn.Identity``: returns its input (any constructor arguments are ignored)."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __call__(self, x: jax.Array) -> jax.Array:
        return x


class Flatten(nnx.Module):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def __call__(self, x: jax.Array) -> jax.Array:
        s, e = self.start_dim % x.ndim, self.end_dim % x.ndim
        return jnp.reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1 :])


class ModuleList(nnx.List):
    """``torch.nn.ModuleList``: children are addressed by index, so state_dict keys read
    ``blocks.0.weight`` exactly as torch's."""


class Sequential(nnx.List):
    """``torch.nn.Sequential(*modules)``: calls its children in order; state_dict keys ``net.0.weight``
    as torch's (flax's nnx.Sequential nests them under ``layers``)."""

    def __init__(self, *modules: Any):
        super().__init__(modules)

    def __call__(self, x: Any) -> Any:
        for m in self:
            x = m(x)
        return x
