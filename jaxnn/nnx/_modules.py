"""flax.nnx modules with torch.nn's constructor signatures, parameter names and layouts.

Constructors take torch's arguments in torch's order, ``device`` and ``dtype`` included (``dtype`` is
the parameters' dtype, as in torch; ``device`` must be None: JAX places arrays itself). jaxnn's own
arguments come after them, keyword-only: ``rngs``, ``compute_dtype`` (flax's computation dtype),
``channels_last``, ``precision``. Modules are called with torch's forward arguments (``input``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _layers as L
from .. import functional as F


def _make_params(module: nnx.Module, specs: dict[str, L.ParamSpec], rngs: nnx.Rngs | None, dtype: Any) -> None:
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
        setattr(module, name, nnx.Param(L.init_param(spec, key, dtype)))


def _value(p: Any) -> Any:
    return None if p is None else p[...]


class _Parametrized(nnx.Module):
    """Modules whose torch twin has optional ``weight`` and ``bias`` (set by ``_make_params``)."""

    weight: nnx.Param | None
    bias: nnx.Param | None


class _ConvNd(_Parametrized):
    _n = 0
    _transposed = False

    def _setup(self, cfg: L.ConvConfig, device: Any, dtype: Any, channels_last: bool, compute_dtype: Any,
               precision: Any, rngs: nnx.Rngs) -> None:
        L.check_device(device, type(self).__name__)
        dtype = L.param_dtype(dtype)
        self.config = cfg
        self.in_channels, self.out_channels = cfg.in_channels, cfg.out_channels
        self.kernel_size, self.stride, self.padding = cfg.kernel_size, cfg.stride, cfg.padding
        self.dilation, self.groups, self.padding_mode = cfg.dilation, cfg.groups, cfg.padding_mode
        self.output_padding = cfg.output_padding
        self.channels_last, self.compute_dtype, self.precision = channels_last, compute_dtype, precision
        _make_params(self, cfg.params(), rngs, dtype)


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
        device: Any = None,
        dtype: Any = None,
        *,
        channels_last: bool = False,
        compute_dtype: Any = None,
        precision: Any = None,
        rngs: nnx.Rngs,
    ):
        cfg = L.conv_config(self._n, False, in_channels, out_channels, kernel_size, stride, padding,
                            dilation, groups, bias, padding_mode)
        self._setup(cfg, device, dtype, channels_last, compute_dtype, precision, rngs)

    def __call__(self, input: jax.Array) -> jax.Array:
        return L.conv_apply(self.config, _value(self.weight), _value(self.bias), input, dtype=self.compute_dtype,
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
        device: Any = None,
        dtype: Any = None,
        *,
        channels_last: bool = False,
        compute_dtype: Any = None,
        precision: Any = None,
        rngs: nnx.Rngs,
    ):
        cfg = L.conv_config(self._n, True, in_channels, out_channels, kernel_size, stride, padding,
                            dilation, groups, bias, padding_mode, output_padding)
        self._setup(cfg, device, dtype, channels_last, compute_dtype, precision, rngs)

    def __call__(self, input: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        return L.conv_apply(self.config, _value(self.weight), _value(self.bias), input, dtype=self.compute_dtype,
                            channels_last=self.channels_last, precision=self.precision,
                            output_size=output_size)


_CONV_DOC = """``torch.nn.Conv{n}d`` as a flax.nnx module: parameters ``weight`` ``(out_channels,
    in_channels / groups, *kernel_size)`` and ``bias`` ``(out_channels,)``, initialised from torch's
    ``U(-sqrt(k), sqrt(k))``, ``k = groups / (in_channels * prod(kernel_size))``. Calls
    :func:`jaxnn.functional.conv{n}d`. torch's arguments in torch's order (``dtype``: the parameters'
    dtype, float32 by default); then, keyword-only: ``channels_last``, ``compute_dtype`` (flax's
    computation dtype), ``precision``, ``rngs``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxnn.nnx import Conv{n}d
      >>> conv = Conv{n}d(4, 8, 3, padding=1, padding_mode="reflect", rngs=nnx.Rngs(0))
      >>> conv.weight.shape
      {wshape}

    Differences from PyTorch:
      ``device`` must be None (JAX places arrays: use ``jax.default_device`` or ``jax.device_put``).
    """

_CONV_T_DOC = """``torch.nn.ConvTranspose{n}d`` as a flax.nnx module: ``weight`` ``(in_channels,
    out_channels / groups, *kernel_size)``; call with an optional ``output_size`` as torch's
    ``forward(input, output_size)``. Calls :func:`jaxnn.functional.conv_transpose{n}d`. Arguments
    as :class:`Conv{n}d`'s (``device`` must be None).
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
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)``:
    ``weight`` ``(out_features, in_features)`` (the transpose of flax's kernel), ``bias``
    ``(out_features,)``, both ``U(-1/sqrt(in), 1/sqrt(in))`` in ``dtype`` (float32 by default).
    Keyword-only: ``compute_dtype`` (flax's computation dtype), ``rngs``. ``device`` must be None.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, compute_dtype: Any = None, rngs: nnx.Rngs):
        L.check_device(device, "Linear")
        self.in_features, self.out_features, self.compute_dtype = in_features, out_features, compute_dtype
        _make_params(self, L.linear_params(in_features, out_features, bias), rngs, L.param_dtype(dtype))

    def __call__(self, input: jax.Array) -> jax.Array:
        x, w, b = L.promote(self.compute_dtype, input, _value(self.weight), _value(self.bias))
        return F.linear(x, w, b)


class GroupNorm(_Parametrized):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, device=None,
    dtype=None, *, bias=True)``; channels at dim 1 (or last with ``channels_last=True``). Flax's
    GroupNorm uses eps 1e-6 and ``scale``. Keyword-only extras: ``channels_last``,
    ``compute_dtype``, ``rngs`` (not needed: the initialisers are constants). ``device`` must be None.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True, channels_last: bool = False,
                 compute_dtype: Any = None, rngs: nnx.Rngs | None = None):
        L.check_device(device, "GroupNorm")
        specs = L.group_norm_params(num_groups, num_channels, affine, bias)
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.channels_last, self.compute_dtype = channels_last, compute_dtype
        _make_params(self, specs, rngs, L.param_dtype(dtype))

    def __call__(self, input: jax.Array) -> jax.Array:
        x, w, b = L.promote(self.compute_dtype, input, _value(self.weight), _value(self.bias))
        return F.group_norm(x, self.num_groups, w, b, self.eps, channels_last=self.channels_last)


class LayerNorm(_Parametrized):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
    device=None, dtype=None)``. Keyword-only extras: ``compute_dtype``, ``rngs`` (not needed).
    ``device`` must be None."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None, dtype: Any = None, *,
                 compute_dtype: Any = None, rngs: nnx.Rngs | None = None):
        L.check_device(device, "LayerNorm")
        self.normalized_shape = L.layer_norm_shape(normalized_shape)
        self.eps, self.elementwise_affine, self.compute_dtype = eps, elementwise_affine, compute_dtype
        specs = L.layer_norm_params(self.normalized_shape, elementwise_affine, bias)
        _make_params(self, specs, rngs, L.param_dtype(dtype))

    def __call__(self, input: jax.Array) -> jax.Array:
        x, w, b = L.promote(self.compute_dtype, input, _value(self.weight), _value(self.bias))
        return F.layer_norm(x, self.normalized_shape, w, b, self.eps)


class GEGLU(nnx.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)``: ``proj = Linear(dim_in, 2 * dim_out)``;
    ``h, gate = proj(hidden_states).chunk(2, -1)``; ``h * gelu(gate)`` (exact gelu unless
    ``approximate``). Keyword-only extras: ``approximate``, ``dtype`` (the parameters'),
    ``compute_dtype``, ``rngs``.

    Differences from diffusers: the call takes ``hidden_states`` only (diffusers' deprecated,
    ignored ``scale`` argument is not accepted).
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True, *, approximate: str = "none",
                 dtype: Any = None, compute_dtype: Any = None, rngs: nnx.Rngs):
        L.validate_call(F.gelu, approximate=approximate)
        self.approximate = approximate
        self.proj = Linear(dim_in, 2 * dim_out, bias, dtype=dtype, compute_dtype=compute_dtype, rngs=rngs)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return F.geglu(self.proj(hidden_states), -1, self.approximate)


class PReLU(nnx.Module):
    """``torch.nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)`` with its learnable
    ``weight`` ``(num_parameters,)``. ``device`` must be None."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None, *,
                 rngs: nnx.Rngs | None = None):
        L.check_device(device, "PReLU")
        self.num_parameters, self.init = num_parameters, init
        self.weight = nnx.Param(jnp.full((num_parameters,), init, L.param_dtype(dtype)))

    def __call__(self, input: jax.Array) -> jax.Array:
        x, w = L.promote(None, input, self.weight[...])
        return F.prelu(x, w)


class _Activation(nnx.Module):
    """torch's constructor arguments as attributes (as torch keeps them) and the call into the
    function named in ``jaxnn._layers.ACTIVATIONS``. ``inplace`` is accepted and ignored; so is
    ``rngs``, so that every layer can be built the same way."""

    _name: ClassVar[str] = ""

    def _configure(self, **config: Any) -> None:
        for k, v in config.items():
            setattr(self, k, v)
        L.check_activation(self._name, self._config())

    def _config(self) -> dict[str, Any]:
        return {a: getattr(self, a) for a in L.ACTIVATIONS[self._name].call_args}

    def __call__(self, input: jax.Array) -> jax.Array:
        return L.apply_activation(self._name, self._config(), input)


class ReLU(_Activation):
    """``torch.nn.ReLU(inplace=False)``: :func:`jaxnn.functional.relu`."""

    _name = "ReLU"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class ReLU6(_Activation):
    """``torch.nn.ReLU6(inplace=False)``: :func:`jaxnn.functional.relu6`."""

    _name = "ReLU6"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)``: :func:`jaxnn.functional.leaky_relu`."""

    _name = "LeakyReLU"

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(negative_slope=negative_slope, inplace=inplace)


class ELU(_Activation):
    """``torch.nn.ELU(alpha=1.0, inplace=False)``: :func:`jaxnn.functional.elu`."""

    _name = "ELU"

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(alpha=alpha, inplace=inplace)


class SELU(_Activation):
    """``torch.nn.SELU(inplace=False)``: :func:`jaxnn.functional.selu`."""

    _name = "SELU"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class CELU(_Activation):
    """``torch.nn.CELU(alpha=1.0, inplace=False)``: :func:`jaxnn.functional.celu`."""

    _name = "CELU"

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(alpha=alpha, inplace=inplace)


class GELU(_Activation):
    """``torch.nn.GELU(approximate='none')``: :func:`jaxnn.functional.gelu` (exact by default)."""

    _name = "GELU"

    def __init__(self, approximate: str = "none", *, rngs: nnx.Rngs | None = None):
        self._configure(approximate=approximate)


class SiLU(_Activation):
    """``torch.nn.SiLU(inplace=False)``: :func:`jaxnn.functional.silu`."""

    _name = "SiLU"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class Mish(_Activation):
    """``torch.nn.Mish(inplace=False)``: :func:`jaxnn.functional.mish`."""

    _name = "Mish"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid()``: :func:`jaxnn.functional.sigmoid`."""

    _name = "Sigmoid"

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._configure()


class Tanh(_Activation):
    """``torch.nn.Tanh()``: :func:`jaxnn.functional.tanh`."""

    _name = "Tanh"

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._configure()


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
    max_value=None)``: :func:`jaxnn.functional.hardtanh`. ``min_value``/``max_value`` are torch's
    deprecated spellings (FutureWarning); ``max_val`` must be greater than ``min_val``."""

    _name = "Hardtanh"

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None, *,
                 rngs: nnx.Rngs | None = None):
        min_val, max_val = L.hardtanh_bounds(min_val, max_val, min_value, max_value, warn=True)
        self._configure(min_val=min_val, max_val=max_val, inplace=inplace)


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid(inplace=False)``: :func:`jaxnn.functional.hardsigmoid`."""

    _name = "Hardsigmoid"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class Hardswish(_Activation):
    """``torch.nn.Hardswish(inplace=False)``: :func:`jaxnn.functional.hardswish`."""

    _name = "Hardswish"

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(inplace=inplace)


class Softplus(_Activation):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)``: :func:`jaxnn.functional.softplus`."""

    _name = "Softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *, rngs: nnx.Rngs | None = None):
        self._configure(beta=beta, threshold=threshold)


class Softsign(_Activation):
    """``torch.nn.Softsign()``: :func:`jaxnn.functional.softsign`."""

    _name = "Softsign"

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._configure()


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid()``: :func:`jaxnn.functional.logsigmoid`."""

    _name = "LogSigmoid"

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._configure()


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink()``: :func:`jaxnn.functional.tanhshrink`."""

    _name = "Tanhshrink"

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._configure()


class Softshrink(_Activation):
    """``torch.nn.Softshrink(lambd=0.5)``: :func:`jaxnn.functional.softshrink`."""

    _name = "Softshrink"

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self._configure(lambd=lambd)


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink(lambd=0.5)``: :func:`jaxnn.functional.hardshrink`."""

    _name = "Hardshrink"

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self._configure(lambd=lambd)


class Threshold(_Activation):
    """``torch.nn.Threshold(threshold, value, inplace=False)``: :func:`jaxnn.functional.threshold`."""

    _name = "Threshold"

    def __init__(self, threshold: float, value: float, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._configure(threshold=threshold, value=value, inplace=inplace)


class GLU(_Activation):
    """``torch.nn.GLU(dim=-1)``: :func:`jaxnn.functional.glu`."""

    _name = "GLU"

    def __init__(self, dim: int = -1, *, rngs: nnx.Rngs | None = None):
        self._configure(dim=dim)


class Softmax(_Activation):
    """``torch.nn.Softmax(dim=None)``: :func:`jaxnn.functional.softmax` (``dim=None`` warns, as torch)."""

    _name = "Softmax"

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._configure(dim=dim)


class LogSoftmax(_Activation):
    """``torch.nn.LogSoftmax(dim=None)``: :func:`jaxnn.functional.log_softmax`."""

    _name = "LogSoftmax"

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._configure(dim=dim)


class Identity(nnx.Module):
    """``torch.nn.Identity``: returns its input (any constructor arguments are ignored)."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __call__(self, input: jax.Array) -> jax.Array:
        return input


class Flatten(nnx.Module):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def __call__(self, input: jax.Array) -> jax.Array:
        s, e = self.start_dim % input.ndim, self.end_dim % input.ndim
        return jnp.reshape(input, input.shape[:s] + (-1,) + input.shape[e + 1 :])


class ModuleList(nnx.List):
    """``torch.nn.ModuleList(modules=None)``: children are addressed by index, so state_dict keys
    read ``blocks.0.weight`` exactly as torch's."""

    def __init__(self, modules: Iterable[Any] | None = None):
        super().__init__(modules)


class Sequential(nnx.List):
    """``torch.nn.Sequential(*args)``: calls its children in order; state_dict keys ``net.0.weight``
    as torch's (flax's nnx.Sequential nests them under ``layers``).

    Differences from PyTorch: children are indexed; torch's single-``OrderedDict`` form (named
    children) is not supported.
    """

    def __init__(self, *args: Any):
        if len(args) == 1 and isinstance(args[0], Mapping):
            raise TypeError(
                "jaxnn.nnx.Sequential takes its children positionally (state_dict keys `0`, `1`, ...); "
                "torch's OrderedDict form with named children is not supported: use an nnx.Module with "
                "attributes of those names."
            )
        super().__init__(args)

    def __call__(self, input: Any) -> Any:
        for m in self:
            input = m(input)
        return input
