"""flax.linen modules with torch.nn's constructor signatures and parameter names.

Fields are torch's constructor arguments in torch's order, ``device`` and ``dtype`` included
(``dtype`` is the parameters' dtype, as in torch; ``device`` must be None: JAX places arrays
itself). jaxnn's own fields come after them, keyword-only: ``compute_dtype`` (flax's computation
dtype), ``channels_last``, ``precision``. Modules are called with torch's forward arguments
(``input``, ...). linen's own ``parent`` and ``name`` are flax's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from .. import _layers as L
from .. import functional as F


def _params(module: nn.Module, specs: dict[str, L.ParamSpec], dtype: Any) -> tuple[Any, Any]:
    out = []
    for name in ("weight", "bias"):
        spec = specs.get(name)
        out.append(
            None if spec is None else module.param(name, lambda key, s=spec: L.init_param(s, key, dtype))
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
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    channels_last: bool = False
    compute_dtype: Any = None
    precision: Any = None
    _n: ClassVar[int] = 0

    def __post_init__(self) -> None:
        self._config()  # torch validates in the constructor
        L.check_device(self.device, type(self).__name__)
        L.param_dtype(self.dtype)
        super().__post_init__()

    def _config(self) -> L.ConvConfig:
        return L.conv_config(self._n, False, self.in_channels, self.out_channels, self.kernel_size,
                             self.stride, self.padding, self.dilation, self.groups, self.bias,
                             self.padding_mode)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        cfg = self._config()
        w, b = _params(self, cfg.params(), L.param_dtype(self.dtype))
        return L.conv_apply(cfg, w, b, input, dtype=self.compute_dtype, channels_last=self.channels_last,
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
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    channels_last: bool = False
    compute_dtype: Any = None
    precision: Any = None
    _n: ClassVar[int] = 0

    def __post_init__(self) -> None:
        self._config()
        L.check_device(self.device, type(self).__name__)
        L.param_dtype(self.dtype)
        super().__post_init__()

    def _config(self) -> L.ConvConfig:
        return L.conv_config(self._n, True, self.in_channels, self.out_channels, self.kernel_size,
                             self.stride, self.padding, self.dilation, self.groups, self.bias,
                             self.padding_mode, self.output_padding)

    @nn.compact
    def __call__(self, input: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        cfg = self._config()
        w, b = _params(self, cfg.params(), L.param_dtype(self.dtype))
        return L.conv_apply(cfg, w, b, input, dtype=self.compute_dtype, channels_last=self.channels_last,
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

    Differences from PyTorch:
      ``device`` must be None (JAX places arrays: use ``jax.default_device`` or ``jax.device_put``).
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
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)`` for
    flax.linen: ``weight`` ``(out_features, in_features)``; keyword-only ``compute_dtype``."""

    in_features: int
    out_features: int
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        L.linear_params(self.in_features, self.out_features, self.bias)
        L.check_device(self.device, "Linear")
        L.param_dtype(self.dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        specs = L.linear_params(self.in_features, self.out_features, self.bias)
        w, b = _params(self, specs, L.param_dtype(self.dtype))
        x, w, b = L.promote(self.compute_dtype, input, w, b)
        return F.linear(x, w, b)


class GroupNorm(nn.Module):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, device=None,
    dtype=None, *, bias=True)`` for flax.linen; keyword-only ``channels_last``, ``compute_dtype``."""

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    bias: bool = True
    channels_last: bool = False
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        L.group_norm_params(self.num_groups, self.num_channels, self.affine, self.bias)
        L.check_device(self.device, "GroupNorm")
        L.param_dtype(self.dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        specs = L.group_norm_params(self.num_groups, self.num_channels, self.affine, self.bias)
        w, b = _params(self, specs, L.param_dtype(self.dtype))
        x, w, b = L.promote(self.compute_dtype, input, w, b)
        return F.group_norm(x, self.num_groups, w, b, self.eps, channels_last=self.channels_last)


class LayerNorm(nn.Module):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
    device=None, dtype=None)`` for flax.linen; keyword-only ``compute_dtype``."""

    normalized_shape: int | Sequence[int]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        L.layer_norm_shape(self.normalized_shape)
        L.check_device(self.device, "LayerNorm")
        L.param_dtype(self.dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        shape = L.layer_norm_shape(self.normalized_shape)
        specs = L.layer_norm_params(shape, self.elementwise_affine, self.bias)
        w, b = _params(self, specs, L.param_dtype(self.dtype))
        x, w, b = L.promote(self.compute_dtype, input, w, b)
        return F.layer_norm(x, shape, w, b, self.eps)


class GEGLU(nn.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)``: a ``proj`` Linear to ``2 * dim_out``, then
    ``h * gelu(gate)``. Keyword-only: ``approximate``, ``dtype`` (the parameters'), ``compute_dtype``.

    Differences from diffusers: the call takes ``hidden_states`` only (diffusers' deprecated,
    ignored ``scale`` argument is not accepted).
    """

    dim_in: int
    dim_out: int
    bias: bool = True
    _: dataclasses.KW_ONLY
    approximate: str = "none"
    dtype: Any = None
    compute_dtype: Any = None

    @nn.compact
    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        proj = Linear(self.dim_in, 2 * self.dim_out, self.bias, dtype=self.dtype, compute_dtype=self.compute_dtype,
                      name="proj")
        return F.geglu(proj(hidden_states), -1, self.approximate)


class PReLU(nn.Module):
    """``torch.nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)`` with its learnable
    ``weight``.

    Differences from PyTorch: torch's ``init`` argument is called ``init_value`` here, because
    ``init`` is the name of linen's initialisation method. ``device`` must be None.
    """

    num_parameters: int = 1
    init_value: float = 0.25
    device: Any = None
    dtype: Any = None

    def __post_init__(self) -> None:
        L.check_device(self.device, "PReLU")
        L.param_dtype(self.dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        dtype = L.param_dtype(self.dtype)
        w = self.param("weight", lambda _: jnp.full((self.num_parameters,), self.init_value, dtype))
        x, w = L.promote(None, input, w)
        return F.prelu(x, w)


class _Activation(nn.Module):
    """torch's constructor arguments as fields and the call into the function named in
    ``jaxnn._layers.ACTIVATIONS``; ``inplace`` is accepted and ignored."""

    _name: ClassVar[str] = ""

    def _config(self) -> dict[str, Any]:
        return {a: getattr(self, a) for a in L.ACTIVATIONS[self._name].call_args}

    def __post_init__(self) -> None:
        L.check_activation(self._name, self._config())
        super().__post_init__()

    def __call__(self, input: jax.Array) -> jax.Array:
        return L.apply_activation(self._name, self._config(), input)


class ReLU(_Activation):
    """``torch.nn.ReLU(inplace=False)`` for flax.linen: :func:`jaxnn.functional.relu`."""

    inplace: bool = False
    _name: ClassVar[str] = "ReLU"


class ReLU6(_Activation):
    """``torch.nn.ReLU6(inplace=False)`` for flax.linen: :func:`jaxnn.functional.relu6`."""

    inplace: bool = False
    _name: ClassVar[str] = "ReLU6"


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)`` for flax.linen."""

    negative_slope: float = 0.01
    inplace: bool = False
    _name: ClassVar[str] = "LeakyReLU"


class ELU(_Activation):
    """``torch.nn.ELU(alpha=1.0, inplace=False)`` for flax.linen: :func:`jaxnn.functional.elu`."""

    alpha: float = 1.0
    inplace: bool = False
    _name: ClassVar[str] = "ELU"


class SELU(_Activation):
    """``torch.nn.SELU(inplace=False)`` for flax.linen: :func:`jaxnn.functional.selu`."""

    inplace: bool = False
    _name: ClassVar[str] = "SELU"


class CELU(_Activation):
    """``torch.nn.CELU(alpha=1.0, inplace=False)`` for flax.linen: :func:`jaxnn.functional.celu`."""

    alpha: float = 1.0
    inplace: bool = False
    _name: ClassVar[str] = "CELU"


class GELU(_Activation):
    """``torch.nn.GELU(approximate='none')`` for flax.linen: :func:`jaxnn.functional.gelu`."""

    approximate: str = "none"
    _name: ClassVar[str] = "GELU"


class SiLU(_Activation):
    """``torch.nn.SiLU(inplace=False)`` for flax.linen: :func:`jaxnn.functional.silu`."""

    inplace: bool = False
    _name: ClassVar[str] = "SiLU"


class Mish(_Activation):
    """``torch.nn.Mish(inplace=False)`` for flax.linen: :func:`jaxnn.functional.mish`."""

    inplace: bool = False
    _name: ClassVar[str] = "Mish"


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid()`` for flax.linen: :func:`jaxnn.functional.sigmoid`."""

    _name: ClassVar[str] = "Sigmoid"


class Tanh(_Activation):
    """``torch.nn.Tanh()`` for flax.linen: :func:`jaxnn.functional.tanh`."""

    _name: ClassVar[str] = "Tanh"


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
    max_value=None)`` for flax.linen; ``min_value``/``max_value`` are torch's deprecated spellings
    (FutureWarning); ``max_val`` must be greater than ``min_val``."""

    min_val: float = -1.0
    max_val: float = 1.0
    inplace: bool = False
    min_value: float | None = None
    max_value: float | None = None
    _name: ClassVar[str] = "Hardtanh"

    def _config(self) -> dict[str, Any]:
        lo, hi = L.hardtanh_bounds(self.min_val, self.max_val, self.min_value, self.max_value, warn=False)
        return {"min_val": lo, "max_val": hi}

    def __post_init__(self) -> None:
        L.hardtanh_bounds(self.min_val, self.max_val, self.min_value, self.max_value, warn=True)
        super().__post_init__()


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid(inplace=False)`` for flax.linen: :func:`jaxnn.functional.hardsigmoid`."""

    inplace: bool = False
    _name: ClassVar[str] = "Hardsigmoid"


class Hardswish(_Activation):
    """``torch.nn.Hardswish(inplace=False)`` for flax.linen: :func:`jaxnn.functional.hardswish`."""

    inplace: bool = False
    _name: ClassVar[str] = "Hardswish"


class Softplus(_Activation):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)`` for flax.linen: :func:`jaxnn.functional.softplus`."""

    beta: float = 1.0
    threshold: float = 20.0
    _name: ClassVar[str] = "Softplus"


class Softsign(_Activation):
    """``torch.nn.Softsign()`` for flax.linen: :func:`jaxnn.functional.softsign`."""

    _name: ClassVar[str] = "Softsign"


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid()`` for flax.linen: :func:`jaxnn.functional.logsigmoid`."""

    _name: ClassVar[str] = "LogSigmoid"


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink()`` for flax.linen: :func:`jaxnn.functional.tanhshrink`."""

    _name: ClassVar[str] = "Tanhshrink"


class Softshrink(_Activation):
    """``torch.nn.Softshrink(lambd=0.5)`` for flax.linen: :func:`jaxnn.functional.softshrink`."""

    lambd: float = 0.5
    _name: ClassVar[str] = "Softshrink"


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink(lambd=0.5)`` for flax.linen: :func:`jaxnn.functional.hardshrink`."""

    lambd: float = 0.5
    _name: ClassVar[str] = "Hardshrink"


class Threshold(_Activation):
    """``torch.nn.Threshold(threshold, value, inplace=False)`` for flax.linen."""

    threshold: float
    value: float
    inplace: bool = False
    _name: ClassVar[str] = "Threshold"


class GLU(_Activation):
    """``torch.nn.GLU(dim=-1)`` for flax.linen: :func:`jaxnn.functional.glu`."""

    dim: int = -1
    _name: ClassVar[str] = "GLU"


class Softmax(_Activation):
    """``torch.nn.Softmax(dim=None)`` for flax.linen (``dim=None`` warns, as torch)."""

    dim: int | None = None
    _name: ClassVar[str] = "Softmax"


class LogSoftmax(_Activation):
    """``torch.nn.LogSoftmax(dim=None)`` for flax.linen: :func:`jaxnn.functional.log_softmax`."""

    dim: int | None = None
    _name: ClassVar[str] = "LogSoftmax"
