"""flax.linen modules with torch.nn's constructor signatures, parameter names and layouts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from .. import _layers as L
from .. import functional as F


def _params(module: nn.Module, specs: dict[str, L.ParamSpec], param_dtype: Any) -> tuple[Any, Any]:
    out = []
    for name in ("weight", "bias"):
        spec = specs.get(name)
        out.append(
            None if spec is None else module.param(name, lambda key, s=spec: L.init_param(s, key, param_dtype))
        )
    return out[0], out[1]


class _Conv(nn.Module):
    in_channels: int
    out_channels: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: int | Sequence[int] | str = 0
    dilation: int | Sequence[int] = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    channels_last: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    _n: ClassVar[int] = 0

    def __post_init__(self) -> None:
        self._config()  # torch validates in the constructor
        super().__post_init__()

    def _config(self) -> L.ConvConfig:
        return L.conv_config(self._n, False, self.in_channels, self.out_channels, self.kernel_size,
                             self.stride, self.padding, self.dilation, self.groups, self.bias,
                             self.padding_mode)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self._config()
        w, b = _params(self, cfg.params(), self.param_dtype)
        return L.conv_apply(cfg, w, b, x, dtype=self.dtype, channels_last=self.channels_last,
                            precision=self.precision)


class _ConvTranspose(nn.Module):
    in_channels: int
    out_channels: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: int | Sequence[int] = 0
    output_padding: int | Sequence[int] = 0
    groups: int = 1
    bias: bool = True
    dilation: int | Sequence[int] = 1
    padding_mode: str = "zeros"
    channels_last: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    _n: ClassVar[int] = 0

    def __post_init__(self) -> None:
        self._config()
        super().__post_init__()

    def _config(self) -> L.ConvConfig:
        return L.conv_config(self._n, True, self.in_channels, self.out_channels, self.kernel_size,
                             self.stride, self.padding, self.dilation, self.groups, self.bias,
                             self.padding_mode, self.output_padding)

    @nn.compact
    def __call__(self, x: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        cfg = self._config()
        w, b = _params(self, cfg.params(), self.param_dtype)
        return L.conv_apply(cfg, w, b, x, dtype=self.dtype, channels_last=self.channels_last,
                            precision=self.precision, output_size=output_size)


class Conv1d(_Conv):
    """``torch.nn.Conv1d`` for flax.linen (params ``weight``, ``bias`` in torch's layout)."""

    _n: ClassVar[int] = 1


class Conv2d(_Conv):
    """``torch.nn.Conv2d`` for flax.linen (params ``weight``, ``bias`` in torch's layout).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnn.linen import Conv2d
      >>> params = Conv2d(3, 8, 3, padding=1).init(jax.random.key(0), jnp.ones((1, 3, 8, 8)))
      >>> params["params"]["weight"].shape
      (8, 3, 3, 3)
    """

    _n: ClassVar[int] = 2


class Conv3d(_Conv):
    """``torch.nn.Conv3d`` for flax.linen (params ``weight``, ``bias`` in torch's layout)."""

    _n: ClassVar[int] = 3


class ConvTranspose1d(_ConvTranspose):
    """``torch.nn.ConvTranspose1d`` for flax.linen; weight ``(in, out / groups, k)``."""

    _n: ClassVar[int] = 1


class ConvTranspose2d(_ConvTranspose):
    """``torch.nn.ConvTranspose2d`` for flax.linen; weight ``(in, out / groups, kH, kW)``."""

    _n: ClassVar[int] = 2


class ConvTranspose3d(_ConvTranspose):
    """``torch.nn.ConvTranspose3d`` for flax.linen; weight ``(in, out / groups, kD, kH, kW)``."""

    _n: ClassVar[int] = 3


class Linear(nn.Module):
    """``torch.nn.Linear`` for flax.linen: ``weight`` ``(out_features, in_features)``."""

    in_features: int
    out_features: int
    bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w, b = _params(self, L.linear_params(self.in_features, self.out_features, self.bias), self.param_dtype)
        x, w, b = L.promote(self.dtype, x, w, b)
        return F.linear(x, w, b)


class GroupNorm(nn.Module):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`` for flax.linen."""

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True
    channels_last: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        L.group_norm_params(self.num_groups, self.num_channels, self.affine)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        specs = L.group_norm_params(self.num_groups, self.num_channels, self.affine)
        w, b = _params(self, specs, self.param_dtype)
        x, w, b = L.promote(self.dtype, x, w, b)
        return F.group_norm(x, self.num_groups, w, b, self.eps, channels_last=self.channels_last)


class LayerNorm(nn.Module):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)``."""

    normalized_shape: int | Sequence[int]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = L.layer_norm_shape(self.normalized_shape)
        w, b = _params(self, L.layer_norm_params(shape, self.elementwise_affine, self.bias), self.param_dtype)
        x, w, b = L.promote(self.dtype, x, w, b)
        return F.layer_norm(x, shape, w, b, self.eps)


class GEGLU(nn.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)``: a ``proj`` Linear to ``2 * dim_out``, then
    ``h * gelu(gate)``."""

    dim_in: int
    dim_out: int
    bias: bool = True
    approximate: str = "none"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = Linear(self.dim_in, 2 * self.dim_out, self.bias, self.dtype, self.param_dtype, name="proj")(x)
        return F.geglu(h, -1, self.approximate)


class PReLU(nn.Module):
    """``torch.nn.PReLU(num_parameters=1, init=0.25)`` with its learnable ``weight``.

    Differences from PyTorch: torch's ``init`` argument is called ``init_value`` here, because
    ``init`` is the name of linen's initialisation method.
    """

    num_parameters: int = 1
    init_value: float = 0.25
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("weight", lambda _: jnp.full((self.num_parameters,), self.init_value, self.param_dtype))
        x, w = L.promote(None, x, w)
        return F.prelu(x, w)


def _activation_class(name: str) -> type:
    spec = L.ACTIVATIONS[name]
    annotations = {a: Any for a, _ in spec.args}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__module__": __name__}
    namespace.update(dict(spec.args))

    def __post_init__(self) -> None:
        L.bind_activation(name, (), {a: getattr(self, a) for a, _ in spec.args})
        nn.Module.__post_init__(self)

    def __call__(self, x: jax.Array) -> jax.Array:
        return L.apply_activation(name, {a: getattr(self, a) for a, _ in spec.args}, x)

    namespace["__post_init__"] = __post_init__
    namespace["__call__"] = __call__
    sig = ", ".join(f"{a}={d!r}" for a, d in spec.args)
    fn_name = spec.fn.__name__
    namespace["__doc__"] = f"``torch.nn.{name}({sig})`` for flax.linen: calls :func:`jaxnn.functional.{fn_name}`."
    return type(name, (nn.Module,), namespace)


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
