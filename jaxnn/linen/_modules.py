"""flax.linen modules with torch.nn's constructor signatures and parameter names.

Each class is a short shell over a layer description in :mod:`jaxnn._layers`. Fields are torch's
constructor arguments in torch's order, ``device`` and ``dtype`` included (``dtype`` is the
parameters' dtype, as in torch; ``device`` must be None: JAX places arrays itself). jaxnn's own
fields come after them, keyword-only: ``compute_dtype`` (flax's computation dtype),
``channels_last``, ``precision``, and flax's train/eval switches. Modules are called with torch's
forward arguments (``input``, ...). linen's own ``parent`` and ``name`` are flax's.

Variables: parameters in the ``params`` collection, persistent buffers (``running_mean``, ...) in
``batch_stats`` (pass ``mutable=["batch_stats"]`` to ``apply`` in training mode, as with flax's
BatchNorm), non-persistent buffers in ``buffers``. Train/eval follows flax's Dropout/BatchNorm:
``deterministic`` / ``use_running_average`` as a field or a call argument (the call wins); when
neither is given the module is in training mode, torch's default. Dropout draws from
``make_rng("dropout")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax

from .. import _layers as L
from .. import functional as F

_COLLECTIONS = {"buffer": "batch_stats", "nonpersistent": "buffers"}


class _Layer(nn.Module):
    """The generic linen shell: ``_layer()`` builds the description from the fields (validated in
    ``__post_init__``, as torch validates in its constructor); ``_forward`` creates the variables
    under their torch names, calls the description and writes back updated buffers."""

    def _layer(self) -> L.Layer:
        raise NotImplementedError

    def __post_init__(self) -> None:
        L.check_device(getattr(self, "device", None), type(self).__name__)
        self._layer()
        super().__post_init__()

    def _forward(self, input: Any, *, mode: bool | None = None, **kwargs: Any) -> Any:
        layer = self._layer()
        values: dict[str, Any] = {}
        cells: dict[str, Any] = {}
        for name, var in layer.variables().items():
            if var is None:
                values[name] = None
                continue
            dtype = var.dtype or layer.dtype

            def init(key: Any = None, v: L.Var = var, dtype: Any = dtype) -> jax.Array:
                if v.init.random and key is None:
                    key = self.make_rng("params")
                return v.init(key, v.shape, dtype)

            if var.kind == "parameter":
                values[name] = self.param(name, init)
            else:
                cells[name] = self.variable(_COLLECTIONS[var.kind], name, init)
                values[name] = cells[name].value
        field = getattr(self, layer.mode_attribute) if layer.mode_attribute else None
        training = not (mode if mode is not None else field if field is not None else False)
        needs_rng = layer.stochastic and layer.needs_rng(training)  # type: ignore[attr-defined]
        rng = self.make_rng("dropout") if needs_rng else None
        out, updates = layer.apply(values, input, training=training, rng=rng, **kwargs)
        if not self.is_initializing():  # as flax's BatchNorm: init does not count as a step
            for name, value in updates.items():
                cells[name].value = value
        return out


class _Conv(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: int | Sequence[int] | str = 0
    dilation: int | Sequence[int] = 1
    groups: int = 1
    bias: bool = True
    padding_mode: L.PaddingMode = "zeros"
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    channels_last: bool = False
    compute_dtype: Any = None
    precision: Any = None
    _n: ClassVar[int] = 0

    def _layer(self) -> L.Layer:
        return L.Conv(self._n, False, self.in_channels, self.out_channels, self.kernel_size, self.stride,
                      self.padding, self.dilation, self.groups, self.bias, self.padding_mode, 0, self.dtype,
                      self.channels_last, self.compute_dtype, self.precision)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _ConvTranspose(_Layer):
    in_channels: int
    out_channels: int
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] = 1
    padding: int | Sequence[int] = 0
    output_padding: int | Sequence[int] = 0
    groups: int = 1
    bias: bool = True
    dilation: int | Sequence[int] = 1
    padding_mode: L.PaddingMode = "zeros"
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    channels_last: bool = False
    compute_dtype: Any = None
    precision: Any = None
    _n: ClassVar[int] = 0

    def _layer(self) -> L.Layer:
        return L.Conv(self._n, True, self.in_channels, self.out_channels, self.kernel_size, self.stride,
                      self.padding, self.dilation, self.groups, self.bias, self.padding_mode, self.output_padding,
                      self.dtype, self.channels_last, self.compute_dtype, self.precision)

    @nn.compact
    def __call__(self, input: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        return self._forward(input, output_size=output_size)


class Conv1d(_Conv):
    _n: ClassVar[int] = 1


class Conv2d(_Conv):
    _n: ClassVar[int] = 2


class Conv3d(_Conv):
    _n: ClassVar[int] = 3


class ConvTranspose1d(_ConvTranspose):
    _n: ClassVar[int] = 1


class ConvTranspose2d(_ConvTranspose):
    _n: ClassVar[int] = 2


class ConvTranspose3d(_ConvTranspose):
    _n: ClassVar[int] = 3


_CONV_DOC = """``torch.nn.{name}`` for flax.linen: :func:`jaxnn.functional.{fn}`.

    Args:
      fields: :class:`jaxnn.nnx.{name}`'s arguments in the same order, ``device`` (None) and
        ``dtype`` (the params') included; keyword-only ``channels_last``, ``compute_dtype``,
        ``precision``. No ``rngs``: ``init`` takes the key.

    Shape:
      as :class:`jaxnn.nnx.{name}`'s: ``(N, C_in, *spatial)`` in, ``(N, C_out, *spatial_out)`` out.

    Attributes:
      params: ``weight`` {weight} and ``bias`` ``(out_channels,)`` (absent with ``bias=False``),
        initialised as torch's ``reset_parameters`` (see :class:`jaxnn.nnx.{name}`).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxnn.linen import {name}
      >>> conv = {name}(3, 8, 2{extra})
      >>> x = jnp.ones((1, 3{size}))
      >>> variables = conv.init(jax.random.key(0), x)
      >>> variables["params"]["weight"].shape
      {wshape}
      >>> conv.apply(variables, x).shape
      (1, 8{oshape})
    """

for _c in (Conv1d, Conv2d, Conv3d):
    _c.__doc__ = _CONV_DOC.format(name=_c.__name__, fn=f"conv{_c._n}d", extra=", padding=1",
                                  weight="``(out_channels, in_channels / groups, *kernel_size)``",
                                  size=", 4" * _c._n, wshape="(8, 3" + ", 2" * _c._n + ")", oshape=", 5" * _c._n)
for _c in (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d):
    _c.__doc__ = _CONV_DOC.format(name=_c.__name__, fn=f"conv_transpose{_c._n}d", extra=", stride=2",
                                  weight="``(in_channels, out_channels / groups, *kernel_size)``",
                                  size=", 4" * _c._n, wshape="(3, 8" + ", 2" * _c._n + ")", oshape=", 8" * _c._n)


class Linear(_Layer):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)`` for
    flax.linen: :func:`jaxnn.functional.linear`.

    Args:
      in_features, out_features, bias, device, dtype: fields, torch's arguments in torch's order;
        keyword-only ``compute_dtype``. As :class:`jaxnn.nnx.Linear`'s, with the key going to ``init``.

    Shape:
      input ``(*, in_features)``, output ``(*, out_features)``.

    Attributes:
      params: ``weight`` ``(out_features, in_features)`` (flax's Dense kernel transposed) and ``bias``
        ``(out_features,)``, both ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> x = jnp.ones((2, 3))
      >>> variables = jl.Linear(3, 4).init(jax.random.key(0), x)
      >>> jl.Linear(3, 4).apply(variables, x).shape
      (2, 4)
    """

    in_features: int
    out_features: int
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    compute_dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.Linear(self.in_features, self.out_features, self.bias, self.dtype, self.compute_dtype)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class GroupNorm(_Layer):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, device=None,
    dtype=None, *, bias=True)`` for flax.linen: :func:`jaxnn.functional.group_norm`.

    Args:
      fields: :class:`jaxnn.nnx.GroupNorm`'s arguments without ``rngs``: torch's, then keyword-only
        ``bias``, ``channels_last``, ``compute_dtype``.

    Shape:
      input ``(N, C, *)`` (channels last with ``channels_last=True``); output the same shape.

    Attributes:
      params: ``weight`` ``(num_channels,)`` ones, ``bias`` zeros; absent with ``affine=False``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> x = jnp.arange(8.0).reshape(1, 4, 2)
      >>> gn = jl.GroupNorm(2, 4)
      >>> gn.apply(gn.init(jax.random.key(0), x), x).shape
      (1, 4, 2)
    """

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

    def _layer(self) -> L.Layer:
        return L.GroupNorm(self.num_groups, self.num_channels, self.eps, self.affine, self.bias, self.dtype,
                           self.channels_last, self.compute_dtype)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class LayerNorm(_Layer):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
    device=None, dtype=None)`` for flax.linen: :func:`jaxnn.functional.layer_norm`.

    Args:
      fields: torch's arguments in torch's order, then keyword-only ``compute_dtype``.

    Shape:
      input ``(*, *normalized_shape)``; output the same shape.

    Attributes:
      params: ``weight`` ones and ``bias`` zeros of shape ``normalized_shape``; absent with
        ``elementwise_affine=False`` (``bias`` also with ``bias=False``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> x = jnp.array([[1.0, 3.0]])
      >>> ln = jl.LayerNorm(2)
      >>> ln.apply(ln.init(jax.random.key(0), x), x)
      Array([[-0.99999..., 0.99999...]], dtype=float32)

    Differences from Flax: flax's LayerNorm uses eps 1e-6 and calls the weight ``scale``.
    """

    normalized_shape: int | Sequence[int]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    compute_dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.LayerNorm(self.normalized_shape, self.eps, self.elementwise_affine, self.bias, self.dtype,
                           self.compute_dtype)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _BatchNorm(_Layer):
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    bias: bool = True
    use_running_average: bool | None = None
    _n: ClassVar[int] = 0

    def _layer(self) -> L.Layer:
        return L.BatchNorm(self._n, self.num_features, self.eps, self.momentum, self.affine,
                           self.track_running_stats, self.dtype, self.bias)

    @nn.compact
    def __call__(self, input: jax.Array, *, use_running_average: bool | None = None) -> jax.Array:
        return self._forward(input, mode=use_running_average)


_BN_DOC = """``torch.nn.BatchNorm{n}d`` for flax.linen: params ``weight``, ``bias``; ``batch_stats``
    ``running_mean``, ``running_var``, ``num_batches_tracked``.

    Training mode (torch's default; ``use_running_average=False`` or unset) normalises with the
    batch statistics and updates the running ones: call ``apply(..., mutable=["batch_stats"])``.
    ``use_running_average=True`` (field or call argument, as in flax's BatchNorm) is eval mode.

    Args:
      fields: torch's arguments in torch's order (as :class:`jaxnn.nnx.BatchNorm{n}d`'s), then
        keyword-only ``bias`` and ``use_running_average`` (None: training mode).

    Shape:
      input {shape}; output the same shape.

    Attributes:
      params: ``weight`` ones, ``bias`` zeros, ``(num_features,)``; absent with ``affine=False``.
      batch_stats: ``running_mean`` zeros, ``running_var`` ones, ``num_batches_tracked`` 0;
        absent with ``track_running_stats=False``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> bn = jl.BatchNorm{n}d(3)
      >>> x = jnp.arange(6.0).reshape({example})
      >>> variables = bn.init(jax.random.key(0), x)
      >>> y, updates = bn.apply(variables, x, mutable=["batch_stats"])
      >>> int(updates["batch_stats"]["num_batches_tracked"])
      1
      >>> y_eval = bn.apply(variables, x, use_running_average=True)

    Differences from PyTorch:
      ``num_batches_tracked`` is int32 unless ``jax_enable_x64`` is on (torch: int64).
      ``init`` leaves ``batch_stats`` at their initial values (as flax's BatchNorm).
    """


class BatchNorm1d(_BatchNorm):
    _n: ClassVar[int] = 1


class BatchNorm2d(_BatchNorm):
    _n: ClassVar[int] = 2


class BatchNorm3d(_BatchNorm):
    _n: ClassVar[int] = 3


for _c, _shape, _ex in ((BatchNorm1d, "``(N, C)`` or ``(N, C, L)``", "2, 3"),
                        (BatchNorm2d, "``(N, C, H, W)``", "2, 3, 1, 1"),
                        (BatchNorm3d, "``(N, C, D, H, W)``", "2, 3, 1, 1, 1")):
    _c.__doc__ = _BN_DOC.format(n=_c._n, shape=_shape, example=_ex)


class Dropout(_Layer):
    """``torch.nn.Dropout(p=0.5, inplace=False)`` for flax.linen: :func:`jaxnn.functional.dropout`.

    Training mode (torch's default; ``deterministic=False`` or unset) draws the mask from
    ``make_rng("dropout")``: ``apply(..., rngs={"dropout": key})``. ``deterministic=True`` (field
    or call argument, as in flax's Dropout) is the identity.

    Args:
      p: probability of zeroing an element, in ``[0, 1]``; the rest are scaled by ``1 / (1 - p)``.
      inplace: accepted and ignored (JAX arrays are immutable).
      deterministic: keyword-only; True is eval mode (None: training mode).

    Shape:
      any; the same shape out. No variables.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> y = jl.Dropout(0.5).apply({}, jnp.ones(4), rngs={"dropout": jax.random.key(0)})
      >>> jl.Dropout(0.5).apply({}, jnp.ones(2), deterministic=True)
      Array([1., 1.], dtype=float32)

    Differences from PyTorch: masks come from the ``dropout`` key, not torch's generator (as
    :class:`jaxnn.nnx.Dropout`).
    """

    p: float = 0.5
    inplace: bool = False
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def _layer(self) -> L.Layer:
        return L.Dropout(self.p, self.inplace)

    def __call__(self, input: jax.Array, *, deterministic: bool | None = None) -> jax.Array:
        return self._forward(input, mode=deterministic)


class GEGLU(nn.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)`` for flax.linen: a ``proj`` Linear to
    ``2 * dim_out``, then ``h * gelu(gate)``.

    Args:
      dim_in, dim_out, bias: diffusers'; keyword-only ``approximate`` (``'none'`` or ``'tanh'``),
        ``dtype`` (the params'), ``compute_dtype``, as :class:`jaxnn.nnx.GEGLU`'s.

    Shape:
      input ``(*, dim_in)``; output ``(*, dim_out)``.

    Attributes:
      params: ``proj`` with ``weight`` ``(2 * dim_out, dim_in)`` and ``bias`` ``(2 * dim_out,)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> x = jnp.ones((2, 4))
      >>> geglu = jl.GEGLU(4, 3)
      >>> geglu.apply(geglu.init(jax.random.key(0), x), x).shape
      (2, 3)

    Differences from diffusers: the call takes ``hidden_states`` only (diffusers' deprecated,
    ignored ``scale`` argument is not accepted).
    """

    dim_in: int
    dim_out: int
    bias: bool = True
    _: dataclasses.KW_ONLY
    approximate: L.Approximate = "none"
    dtype: Any = None
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        L.Activation(F.gelu, (("approximate", self.approximate),))
        L.Linear(self.dim_in, 2 * self.dim_out, self.bias, self.dtype)
        super().__post_init__()

    @nn.compact
    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        proj = Linear(self.dim_in, 2 * self.dim_out, self.bias, dtype=self.dtype, compute_dtype=self.compute_dtype,
                      name="proj")
        return F.geglu(proj(hidden_states), -1, self.approximate)


class PReLU(_Layer):
    """``torch.nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)`` for flax.linen:
    :func:`jaxnn.functional.prelu` with a learnable ``weight``.

    Args:
      num_parameters: 1 or the number of channels (dim 1 of the input).
      init_value: torch's ``init``, the slopes' initial value.
      device, dtype: torch's (``device`` must be None; ``dtype`` is the weight's).

    Shape:
      input ``(N, C, *)``, or any shape with one slope; output the same shape.

    Attributes:
      params: ``weight`` ``(num_parameters,)`` filled with ``init_value``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> x = jnp.array([-2.0, 3.0])
      >>> prelu = jl.PReLU(init_value=0.1)
      >>> prelu.apply(prelu.init(jax.random.key(0), x), x)
      Array([-0.2,  3. ], dtype=float32)

    Differences from PyTorch: torch's ``init`` argument is called ``init_value`` here, because
    ``init`` is the name of linen's initialisation method.
    """

    num_parameters: int = 1
    init_value: float = 0.25
    device: Any = None
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.PReLU(self.num_parameters, self.init_value, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _Activation(_Layer):
    """An activation: torch's constructor arguments as fields (``_args`` of them are passed to the
    function ``jaxnn.functional.<_op>``; ``inplace`` is kept and ignored)."""

    _op: ClassVar[str] = ""
    _args: ClassVar[tuple[str, ...]] = ()

    def _layer(self) -> L.Layer:
        config = tuple((a, getattr(self, a)) for a in self._args)
        return L.Activation(getattr(F, self._op), config, getattr(self, "inplace", None))

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class ReLU(_Activation):
    """``torch.nn.ReLU(inplace=False)`` for flax.linen: :func:`jaxnn.functional.relu`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.ReLU().apply({}, jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """

    inplace: bool = False
    _op: ClassVar[str] = "relu"


class ReLU6(_Activation):
    """``torch.nn.ReLU6(inplace=False)`` for flax.linen: :func:`jaxnn.functional.relu6`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    inplace: bool = False
    _op: ClassVar[str] = "relu6"


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)`` for flax.linen:
    :func:`jaxnn.functional.leaky_relu`; no variables.

    Args:
      negative_slope: the slope for ``x < 0``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    negative_slope: float = 0.01
    inplace: bool = False
    _op: ClassVar[str] = "leaky_relu"
    _args: ClassVar[tuple[str, ...]] = ("negative_slope",)


class ELU(_Activation):
    """``torch.nn.ELU(alpha=1.0, inplace=False)`` for flax.linen: :func:`jaxnn.functional.elu`; no variables.

    Args:
      alpha: ``alpha * (exp(x) - 1)`` for ``x <= 0``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    alpha: float = 1.0
    inplace: bool = False
    _op: ClassVar[str] = "elu"
    _args: ClassVar[tuple[str, ...]] = ("alpha",)


class SELU(_Activation):
    """``torch.nn.SELU(inplace=False)`` for flax.linen: :func:`jaxnn.functional.selu`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    inplace: bool = False
    _op: ClassVar[str] = "selu"


class CELU(_Activation):
    """``torch.nn.CELU(alpha=1.0, inplace=False)`` for flax.linen: :func:`jaxnn.functional.celu`; no variables.

    Args:
      alpha: ``alpha * (exp(x / alpha) - 1)`` for ``x <= 0``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    alpha: float = 1.0
    inplace: bool = False
    _op: ClassVar[str] = "celu"
    _args: ClassVar[tuple[str, ...]] = ("alpha",)


class GELU(_Activation):
    """``torch.nn.GELU(approximate='none')`` for flax.linen: :func:`jaxnn.functional.gelu`; no variables.

    Args:
      approximate: ``'none'`` (exact, with erf; the default) or ``'tanh'``.

    Shape: any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.GELU().apply({}, jnp.array([0.0, 1.0]))
      Array([0.     , 0.841344...], dtype=float32)

    Differences from Flax: ``flax.linen.gelu`` defaults to the tanh approximation.
    """

    approximate: L.Approximate = "none"
    _op: ClassVar[str] = "gelu"
    _args: ClassVar[tuple[str, ...]] = ("approximate",)


class SiLU(_Activation):
    """``torch.nn.SiLU(inplace=False)`` for flax.linen: :func:`jaxnn.functional.silu`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    inplace: bool = False
    _op: ClassVar[str] = "silu"


class Mish(_Activation):
    """``torch.nn.Mish(inplace=False)`` for flax.linen: :func:`jaxnn.functional.mish`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    inplace: bool = False
    _op: ClassVar[str] = "mish"


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid()`` for flax.linen: :func:`jaxnn.functional.sigmoid`; no variables.

    Shape: any; the same shape out.
    """

    _op: ClassVar[str] = "sigmoid"


class Tanh(_Activation):
    """``torch.nn.Tanh()`` for flax.linen: :func:`jaxnn.functional.tanh`; no variables.

    Shape: any; the same shape out.
    """

    _op: ClassVar[str] = "tanh"


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
    max_value=None)`` for flax.linen: :func:`jaxnn.functional.hardtanh`; no variables.

    Args:
      min_val, max_val: the bounds; ``max_val`` must be greater than ``min_val``.
      inplace: accepted and ignored (JAX arrays are immutable).
      min_value, max_value: torch's deprecated spellings of the bounds (FutureWarning).

    Shape: any; the same shape out.
    """

    min_val: float = -1.0
    max_val: float = 1.0
    inplace: bool = False
    min_value: float | None = None
    max_value: float | None = None

    def _layer(self) -> L.Layer:
        lo, hi = L.hardtanh_bounds(self.min_val, self.max_val, self.min_value, self.max_value, warn=False)
        return L.Activation(F.hardtanh, (("min_val", lo), ("max_val", hi)), self.inplace)

    def __post_init__(self) -> None:
        L.hardtanh_bounds(self.min_val, self.max_val, self.min_value, self.max_value, warn=True)
        super().__post_init__()


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid(inplace=False)`` for flax.linen: :func:`jaxnn.functional.hardsigmoid`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    inplace: bool = False
    _op: ClassVar[str] = "hardsigmoid"


class Hardswish(_Activation):
    """``torch.nn.Hardswish(inplace=False)`` for flax.linen: :func:`jaxnn.functional.hardswish`; no variables.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    inplace: bool = False
    _op: ClassVar[str] = "hardswish"


class Softplus(_Activation):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)`` for flax.linen: :func:`jaxnn.functional.softplus`; no variables.

    Args:
      beta, threshold: ``log(1 + exp(beta * x)) / beta``, ``x`` where ``beta * x > threshold``.

    Shape: any; the same shape out.
    """

    beta: float = 1.0
    threshold: float = 20.0
    _op: ClassVar[str] = "softplus"
    _args: ClassVar[tuple[str, ...]] = ("beta", "threshold")


class Softsign(_Activation):
    """``torch.nn.Softsign()`` for flax.linen: :func:`jaxnn.functional.softsign`; no variables.

    Shape: any; the same shape out.
    """

    _op: ClassVar[str] = "softsign"


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid()`` for flax.linen: :func:`jaxnn.functional.logsigmoid`; no variables.

    Shape: any; the same shape out.
    """

    _op: ClassVar[str] = "logsigmoid"


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink()`` for flax.linen: :func:`jaxnn.functional.tanhshrink`; no variables.

    Shape: any; the same shape out.
    """

    _op: ClassVar[str] = "tanhshrink"


class Softshrink(_Activation):
    """``torch.nn.Softshrink(lambd=0.5)`` for flax.linen: :func:`jaxnn.functional.softshrink`; no variables.

    Args:
      lambd: the half-width of the band sent to 0.

    Shape: any; the same shape out.
    """

    lambd: float = 0.5
    _op: ClassVar[str] = "softshrink"
    _args: ClassVar[tuple[str, ...]] = ("lambd",)


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink(lambd=0.5)`` for flax.linen: :func:`jaxnn.functional.hardshrink`; no variables.

    Args:
      lambd: the half-width of the band sent to 0.

    Shape: any; the same shape out.
    """

    lambd: float = 0.5
    _op: ClassVar[str] = "hardshrink"
    _args: ClassVar[tuple[str, ...]] = ("lambd",)


class Threshold(_Activation):
    """``torch.nn.Threshold(threshold, value, inplace=False)`` for flax.linen:
    :func:`jaxnn.functional.threshold`; no variables.

    Args:
      threshold, value: ``x`` where ``x > threshold``, else ``value``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    threshold: float
    value: float
    inplace: bool = False
    _op: ClassVar[str] = "threshold"
    _args: ClassVar[tuple[str, ...]] = ("threshold", "value")


class GLU(_Activation):
    """``torch.nn.GLU(dim=-1)`` for flax.linen: :func:`jaxnn.functional.glu`; no variables.

    Args:
      dim: the dim to split in halves (even size).

    Shape:
      input ``(*1, 2 * M, *2)``; output ``(*1, M, *2)``.
    """

    dim: int = -1
    _op: ClassVar[str] = "glu"
    _args: ClassVar[tuple[str, ...]] = ("dim",)


class Softmax(_Activation):
    """``torch.nn.Softmax(dim=None)`` for flax.linen: :func:`jaxnn.functional.softmax`; no variables.

    Args:
      dim: the dim to normalise (``None`` warns, as torch).

    Shape: any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Softmax(dim=-1).apply({}, jnp.zeros((1, 2)))
      Array([[0.5, 0.5]], dtype=float32)
    """

    dim: int | None = None
    _op: ClassVar[str] = "softmax"
    _args: ClassVar[tuple[str, ...]] = ("dim",)


class LogSoftmax(_Activation):
    """``torch.nn.LogSoftmax(dim=None)`` for flax.linen: :func:`jaxnn.functional.log_softmax`; no variables.

    Args:
      dim: the dim to normalise (``None`` warns, as torch).

    Shape: any; the same shape out.
    """

    dim: int | None = None
    _op: ClassVar[str] = "log_softmax"
    _args: ClassVar[tuple[str, ...]] = ("dim",)


class Identity(_Layer):
    """``torch.nn.Identity`` for flax.linen: returns its input. No fields, no variables.

    Shape: any; the same array out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Identity().apply({}, jnp.ones(2))
      Array([1., 1.], dtype=float32)

    Differences from PyTorch: torch's Identity accepts and ignores any constructor arguments; a
    linen module's constructor takes its fields only, and Identity has none.
    """

    def _layer(self) -> L.Layer:
        return L.Identity()

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Flatten(_Layer):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)`` for flax.linen; no variables.

    Args:
      start_dim, end_dim: fields; checked against the input at the call, as torch does.

    Shape:
      input ``(*1, S_start, ..., S_end, *2)``; output ``(*1, S_start * ... * S_end, *2)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Flatten(0).apply({}, jnp.ones((2, 3))).shape
      (6,)
    """

    start_dim: int = 1
    end_dim: int = -1

    def _layer(self) -> L.Layer:
        return L.Flatten(self.start_dim, self.end_dim)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class ModuleList(nn.Module):
    """``torch.nn.ModuleList(modules=None)`` for flax.linen: its children are named ``0``, ``1``, ...,
    so their variables' keys read ``blocks.0.weight`` as torch's. Index it (``self.blocks[0](x)``)
    or iterate over it from the parent's methods.

    Args:
      modules: the children, as a sequence field (modules or plain callables), or None.

    Examples:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> import jaxnn.linen as jl
      >>> class Net(nn.Module):
      ...     def setup(self):
      ...         self.blocks = jl.ModuleList([jl.Linear(2, 2), jl.Linear(2, 2)])
      ...     def __call__(self, x):
      ...         for block in self.blocks:
      ...             x = block(x)
      ...         return x
      >>> sorted(jl.state_dict(Net().init(jax.random.key(0), jnp.ones((1, 2)))))
      ['blocks.0.bias', 'blocks.0.weight', 'blocks.1.bias', 'blocks.1.weight']
    """

    modules: Sequence[nn.Module] | None = None

    def setup(self) -> None:
        # modules are named by their index; plain callables (``F.silu``) are kept as they are and
        # keep their index, so the keys match jaxnn.nnx.Sequential's
        self._children = [m.clone(parent=self, name=str(i)) if isinstance(m, nn.Module) else m
                          for i, m in enumerate(self.modules or ())]

    def __getitem__(self, index: int) -> nn.Module:
        return self._children[index]

    def __len__(self) -> int:
        return len(self.modules or ())

    def __iter__(self) -> Any:
        return iter(self._children)


class Sequential(ModuleList):
    """``torch.nn.Sequential`` for flax.linen: calls its children in order; keys ``net.0.weight``
    as torch's.

    Args:
      modules: the children, one sequence field; modules or plain callables, ``Sequential([Linear(2, 2),
        F.silu])``, as in flax's ``nn.Sequential`` and :class:`jaxnn.nnx.Sequential` (no variables,
        but they keep their index).

    Shape:
      the first child's input; the last child's output.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> import jaxnn.linen as jl
      >>> net = jl.Sequential([jl.Linear(3, 4), F.relu, jl.Linear(4, 1)])
      >>> variables = net.init(jax.random.key(0), jnp.ones((2, 3)))
      >>> sorted(jl.state_dict(variables))
      ['0.bias', '0.weight', '2.bias', '2.weight']
      >>> net.apply(variables, jnp.ones((2, 3))).shape
      (2, 1)

    Differences from PyTorch: the children are one sequence, ``Sequential([a, b])`` (a linen
    module's constructor takes fields, so torch's ``Sequential(a, b)`` cannot be spelled).
    """

    modules: Sequence[Callable[..., Any]] | None = None

    def __call__(self, input: Any) -> Any:
        for m in self:
            input = m(input)
        return input


class _AttentionOutProj(_Layer):
    """``MultiheadAttention.out_proj``: a Linear (``weight``, ``bias``) with torch's zero bias."""

    in_features: int
    out_features: int
    bias: bool = True
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.AttentionOutProj(self.in_features, self.out_features, self.bias, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class MultiheadAttention(_Layer):
    """``torch.nn.MultiheadAttention`` for flax.linen: params ``in_proj_weight``, ``in_proj_bias``
    (or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``), ``bias_k``/``bias_v``, and
    ``out_proj`` with ``weight``/``bias``, in torch's layouts and with torch's initialisation.

    Fields are torch's arguments in torch's order (as :class:`jaxnn.nnx.MultiheadAttention`'s), then
    keyword-only ``deterministic`` (flax's switch; None: training mode). Called with torch's forward
    arguments; returns ``(output, weights or None)``. Dropout draws ``make_rng("dropout")``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> mha = jl.MultiheadAttention(8, 2)
      >>> x = jnp.ones((5, 3, 8))  # (L, N, E)
      >>> variables = mha.init(jax.random.key(0), x, x, x)
      >>> out, weights = mha.apply(variables, x, x, x)
      >>> out.shape, weights.shape
      ((5, 3, 8), (3, 5, 5))
    """

    embed_dim: int
    num_heads: int
    dropout: float = 0.0
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    batch_first: bool = False
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def _layer(self) -> L.Layer:
        return L.MultiheadAttention(self.embed_dim, self.num_heads, self.dropout, self.bias, self.add_bias_kv,
                                    self.add_zero_attn, self.kdim, self.vdim, self.batch_first, self.dtype)

    @nn.compact
    def __call__(self, query: jax.Array, key: jax.Array, value: jax.Array,
                 key_padding_mask: jax.Array | None = None, need_weights: bool = True,
                 attn_mask: jax.Array | None = None, average_attn_weights: bool = True,
                 is_causal: bool = False, *, deterministic: bool | None = None) -> tuple[jax.Array, jax.Array | None]:
        out, weights = self._forward(query, mode=deterministic, key=key, value=value,
                                     key_padding_mask=key_padding_mask, need_weights=need_weights,
                                     attn_mask=attn_mask, average_attn_weights=average_attn_weights,
                                     is_causal=is_causal)
        out_proj = _AttentionOutProj(self.embed_dim, self.embed_dim, self.bias, self.dtype, name="out_proj")
        return out_proj(out), weights


class Upsample(_Layer):
    """``torch.nn.Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None,
    recompute_scale_factor=None)`` for flax.linen: :func:`jaxnn.functional.interpolate`; no variables.

    Args:
      fields: torch's arguments in torch's order; checked against the input at the call.

    Shape:
      input ``(N, C, *spatial)`` with 1 to 3 spatial dims; output ``(N, C, *spatial_out)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Upsample(scale_factor=2).apply({}, jnp.array([[[1.0, 2.0]]]))
      Array([[[1., 1., 2., 2.]]], dtype=float32)
    """

    size: int | Sequence[int] | None = None
    scale_factor: float | Sequence[float] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None

    def _layer(self) -> L.Layer:
        return L.Upsample(self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class UpsamplingNearest2d(_Layer):
    """``torch.nn.UpsamplingNearest2d(size=None, scale_factor=None)`` for flax.linen:
    :class:`Upsample` with ``mode='nearest'``; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.UpsamplingNearest2d(scale_factor=2).apply({}, jnp.ones((1, 1, 2, 3))).shape
      (1, 1, 4, 6)
    """

    size: int | Sequence[int] | None = None
    scale_factor: float | Sequence[float] | None = None

    def _layer(self) -> L.Layer:
        return L.Upsample(self.size, self.scale_factor, "nearest")

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class UpsamplingBilinear2d(_Layer):
    """``torch.nn.UpsamplingBilinear2d(size=None, scale_factor=None)`` for flax.linen:
    :class:`Upsample` with ``mode='bilinear'``, ``align_corners=True``; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.UpsamplingBilinear2d(size=(1, 3)).apply({}, jnp.array([[[[0.0, 2.0]]]]))
      Array([[[[0., 1., 2.]]]], dtype=float32)
    """

    size: int | Sequence[int] | None = None
    scale_factor: float | Sequence[float] | None = None

    def _layer(self) -> L.Layer:
        return L.Upsample(self.size, self.scale_factor, "bilinear", True)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class PixelShuffle(_Layer):
    """``torch.nn.PixelShuffle(upscale_factor)`` for flax.linen: :func:`jaxnn.functional.pixel_shuffle`;
    no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.PixelShuffle(2).apply({}, jnp.ones((1, 8, 3, 3))).shape
      (1, 2, 6, 6)
    """

    upscale_factor: int

    def _layer(self) -> L.Layer:
        return L.PixelShuffle(self.upscale_factor)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class PixelUnshuffle(_Layer):
    """``torch.nn.PixelUnshuffle(downscale_factor)`` for flax.linen:
    :func:`jaxnn.functional.pixel_unshuffle`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.PixelUnshuffle(2).apply({}, jnp.ones((1, 2, 6, 6))).shape
      (1, 8, 3, 3)
    """

    downscale_factor: int

    def _layer(self) -> L.Layer:
        return L.PixelShuffle(self.downscale_factor, True)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class RMSNorm(_Layer):
    """``torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True, device=None,
    dtype=None)`` for flax.linen: :func:`jaxnn.functional.rms_norm`.

    Args:
      fields: torch's arguments in torch's order (``eps=None``: torch's machine-epsilon rule).

    Shape:
      input ``(*, *normalized_shape)``; output the same shape and dtype.

    Attributes:
      params: ``weight`` ones of shape ``normalized_shape``; absent with ``elementwise_affine=False``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> x = jnp.array([[3.0, 4.0]])
      >>> norm = jl.RMSNorm(2)
      >>> norm.apply(norm.init(jax.random.key(0), x), x)
      Array([[0.848528..., 1.131370...]], dtype=float32)

    Differences from Flax: flax's RMSNorm uses eps 1e-6 and calls the weight ``scale``.
    """

    normalized_shape: int | Sequence[int]
    eps: float | None = None
    elementwise_affine: bool = True
    device: Any = None
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.RMSNorm(self.normalized_shape, self.eps, self.elementwise_affine, self.dtype)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # torch's RMSNorm.forward(x)
        return self._forward(x)
