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

            if var.kind in ("parameter", "frozen"):  # linen has no requires_grad: mask frozen ones in optax
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
                if name in cells:
                    cells[name].value = value
                elif self.is_mutable_collection("params"):  # a parameter updated in place (Embedding's max_norm)
                    self.put_variable("params", name, value)
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


_DROPOUT_VARIANT_DOC = """``torch.nn.{name}(p=0.5, inplace=False)`` for flax.linen: :func:`jaxnn.functional.{fn}`.

    Training mode (torch's default; ``deterministic=False`` or unset) draws the mask from
    ``make_rng("dropout")``: ``apply(..., rngs={{"dropout": key}})``. ``deterministic=True`` (field
    or call argument, as in flax's Dropout) is the identity. As :class:`jaxnn.nnx.{name}`.

    Args:
      p: probability of dropping {unit}, in ``[0, 1]``.
      inplace: accepted and ignored (JAX arrays are immutable).
      deterministic: keyword-only; True is eval mode (None: training mode).

    Shape:
      {shape}; the same shape out. No variables.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.{name}(0.5).apply({{}}, {example}, rngs={{"dropout": jax.random.key(0)}}).shape
      {example_shape}

    Differences from PyTorch: masks come from the ``dropout`` key, not torch's generator.
    """


class _DropoutVariant(_Layer):
    p: float = 0.5
    inplace: bool = False
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None
    _fn: ClassVar[Any] = None

    def _layer(self) -> L.Layer:
        return L.DropoutVariant(type(self)._fn, self.p, self.inplace)

    def __call__(self, input: jax.Array, *, deterministic: bool | None = None) -> jax.Array:
        return self._forward(input, mode=deterministic)


class Dropout1d(_DropoutVariant):
    _fn: ClassVar[Any] = staticmethod(F.dropout1d)


class Dropout2d(_DropoutVariant):
    _fn: ClassVar[Any] = staticmethod(F.dropout2d)


class Dropout3d(_DropoutVariant):
    _fn: ClassVar[Any] = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutVariant):
    _fn: ClassVar[Any] = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_DropoutVariant):
    _fn: ClassVar[Any] = staticmethod(F.feature_alpha_dropout)


for _c, (_fn, _unit, _shape, _ex, _exs) in {
    Dropout1d: ("dropout1d", "a channel", "``(N, C, L)`` or ``(C, L)``", "jnp.ones((2, 3, 4))", "(2, 3, 4)"),
    Dropout2d: ("dropout2d", "a channel", "``(N, C, H, W)``", "jnp.ones((2, 3, 2, 2))", "(2, 3, 2, 2)"),
    Dropout3d: ("dropout3d", "a channel", "``(N, C, D, H, W)`` or ``(C, D, H, W)``", "jnp.ones((2, 2, 2, 2))",
                "(2, 2, 2, 2)"),
    AlphaDropout: ("alpha_dropout", "an element", "any", "jnp.ones((2, 3))", "(2, 3)"),
    FeatureAlphaDropout: ("feature_alpha_dropout", "a channel", "``(N, C, *)``", "jnp.ones((2, 3, 2))", "(2, 3, 2)"),
}.items():
    _c.__doc__ = _DROPOUT_VARIANT_DOC.format(name=_c.__name__, fn=_fn, unit=_unit, shape=_shape, example=_ex,
                                             example_shape=_exs)


class Embedding(_Layer):
    """``torch.nn.Embedding`` for flax.linen: :func:`jaxnn.functional.embedding`; ``weight`` in
    ``params``.

    Args:
      fields: torch's constructor arguments in torch's order, as :class:`jaxnn.nnx.Embedding`'s
        (``_weight``: an initial weight used as it is; ``_freeze``: see below).

    Shape:
      input: integer indices (int32/int64) ``(*)``; output ``(*, embedding_dim)``.

    linen has no per-variable ``requires_grad``: a frozen weight (``_freeze=True``,
    ``from_pretrained``) is in ``params`` like any other, and is kept fixed by masking it in the
    optimizer (``optax.masked`` / ``optax.set_to_zero``). With ``max_norm`` the output uses the
    renormalised rows (torch's); the renormalised weight is written back into ``params`` when
    ``apply`` is given ``mutable=["params"]`` (torch's in-place update), and is otherwise not kept.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> emb = jl.Embedding(10, 3)
      >>> variables = emb.init(jax.random.key(0), jnp.array([1, 2]))
      >>> emb.apply(variables, jnp.array([[1, 2]])).shape
      (1, 2, 3)
    """

    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None = None
    max_norm: float | None = None
    norm_type: float = 2.0
    scale_grad_by_freq: bool = False
    sparse: bool = False
    _weight: Any = None
    _freeze: bool = False
    device: Any = None
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.Embedding(self.num_embeddings, self.embedding_dim, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse, bool(self._freeze), self.dtype, self._weight)

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """torch's ``Embedding.from_pretrained``: an Embedding whose initial weight is ``embeddings``."""
        if getattr(embeddings, "ndim", None) != 2:
            raise ValueError(
                "Embeddings parameter is expected to be 2-dimensional: `embeddings` has shape "
                f"{tuple(getattr(embeddings, 'shape', ()))}."
            )
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, embeddings, freeze)

    @nn.compact
    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


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


class Unfold(_Layer):
    """``torch.nn.Unfold(kernel_size, dilation=1, padding=0, stride=1)`` for flax.linen:
    :func:`jaxnn.functional.unfold`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Unfold(2, stride=2).apply({}, jnp.ones((1, 3, 4, 4))).shape
      (1, 12, 4)
    """

    kernel_size: int | Sequence[int]
    dilation: int | Sequence[int] = 1
    padding: int | Sequence[int] = 0
    stride: int | Sequence[int] = 1

    def _layer(self) -> L.Layer:
        return L.Fold(self.kernel_size, self.dilation, self.padding, self.stride)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Fold(_Layer):
    """``torch.nn.Fold(output_size, kernel_size, dilation=1, padding=0, stride=1)`` for flax.linen:
    :func:`jaxnn.functional.fold`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Fold((4, 4), 2, stride=2).apply({}, jnp.ones((1, 12, 4))).shape
      (1, 3, 4, 4)
    """

    output_size: int | Sequence[int]
    kernel_size: int | Sequence[int]
    dilation: int | Sequence[int] = 1
    padding: int | Sequence[int] = 0
    stride: int | Sequence[int] = 1

    def _layer(self) -> L.Layer:
        return L.Fold(self.kernel_size, self.dilation, self.padding, self.stride, self.output_size)

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


# --- instance/local-response norms, distances, padding, Unflatten, Bilinear (issue #12) -------------


class _InstanceNorm(_Layer):
    num_features: int
    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = False
    track_running_stats: bool = False
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    bias: bool = True
    use_running_average: bool | None = None
    _n: ClassVar[int] = 0

    def _layer(self) -> L.Layer:
        return L.InstanceNorm(self._n, self.num_features, self.eps, self.momentum, self.affine,
                              self.track_running_stats, self.dtype, self.bias)

    @nn.compact
    def __call__(self, input: jax.Array, *, use_running_average: bool | None = None) -> jax.Array:
        return self._forward(input, mode=use_running_average)


_IN_DOC = """``torch.nn.InstanceNorm{n}d`` for flax.linen: :func:`jaxnn.functional.instance_norm`; params
    ``weight``, ``bias`` (affine); ``batch_stats`` ``running_mean``, ``running_var``,
    ``num_batches_tracked`` (track_running_stats).

    Training mode (torch's default; ``use_running_average=False`` or unset) normalises each
    (sample, channel) with its own statistics and, with ``track_running_stats``, updates the running
    ones: call ``apply(..., mutable=["batch_stats"])``. ``use_running_average=True`` (field or call
    argument) is eval mode: the running statistics with ``track_running_stats``, the instance
    statistics without (torch's rule).

    Args:
      fields: torch's arguments in torch's order (as :class:`jaxnn.nnx.InstanceNorm{n}d`'s), then
        keyword-only ``bias`` and ``use_running_average`` (None: training mode).

    Shape:
      input {shape}; output the same shape.

    Attributes:
      params: ``weight`` ones, ``bias`` zeros, ``(num_features,)``; absent without ``affine``.
      batch_stats: ``running_mean`` zeros, ``running_var`` ones, ``num_batches_tracked`` 0 (never
        advanced, as torch's); absent without ``track_running_stats``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> norm = jl.InstanceNorm{n}d(2)
      >>> x = jnp.arange(16.0).reshape({example})
      >>> norm.apply(norm.init(jax.random.key(0), x), x).shape
      ({example})
    """


class InstanceNorm1d(_InstanceNorm):
    _n: ClassVar[int] = 1


class InstanceNorm2d(_InstanceNorm):
    _n: ClassVar[int] = 2


class InstanceNorm3d(_InstanceNorm):
    _n: ClassVar[int] = 3


for _c, _shape, _ex in ((InstanceNorm1d, "``(N, C, L)`` or ``(C, L)``", "1, 2, 8"),
                        (InstanceNorm2d, "``(N, C, H, W)`` or ``(C, H, W)``", "1, 2, 2, 4"),
                        (InstanceNorm3d, "``(N, C, D, H, W)`` or ``(C, D, H, W)``", "1, 2, 2, 2, 2")):
    _c.__doc__ = _IN_DOC.format(n=_c._n, shape=_shape, example=_ex)


class LocalResponseNorm(_Layer):
    """``torch.nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)`` for flax.linen:
    :func:`jaxnn.functional.local_response_norm`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.LocalResponseNorm(2).apply({}, jnp.ones((1, 3, 4))).shape
      (1, 3, 4)
    """

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def _layer(self) -> L.Layer:
        return L.LocalResponseNorm(self.size, self.alpha, self.beta, self.k)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Softmin(_Activation):
    """``torch.nn.Softmin(dim=None)`` for flax.linen: :func:`jaxnn.functional.softmin`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Softmin(dim=-1).apply({}, jnp.zeros((1, 2)))
      Array([[0.5, 0.5]], dtype=float32)
    """

    dim: int | None = None
    _op: ClassVar[str] = "softmin"
    _args: ClassVar[tuple[str, ...]] = ("dim",)


class Softmax2d(_Layer):
    """``torch.nn.Softmax2d`` for flax.linen: softmax over dim -3 of a 3-D or 4-D input; no fields.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Softmax2d().apply({}, jnp.zeros((2, 1, 1)))[:, 0, 0]
      Array([0.5, 0.5], dtype=float32)
    """

    def _layer(self) -> L.Layer:
        return L.Softmax2d()

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class CosineSimilarity(_Layer):
    """``torch.nn.CosineSimilarity(dim=1, eps=1e-8)`` for flax.linen:
    :func:`jaxnn.functional.cosine_similarity`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.CosineSimilarity().apply({}, jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]]))
      Array([0.], dtype=float32)
    """

    dim: int = 1
    eps: float = 1e-8

    def _layer(self) -> L.Layer:
        return L.PairFunction(F.cosine_similarity, (("dim", self.dim), ("eps", self.eps)))

    def __call__(self, x1: jax.Array, x2: jax.Array) -> jax.Array:
        return self._forward(x1, x2=x2)


class PairwiseDistance(_Layer):
    """``torch.nn.PairwiseDistance(p=2.0, eps=1e-6, keepdim=False)`` for flax.linen:
    :func:`jaxnn.functional.pairwise_distance`; no variables.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.PairwiseDistance(eps=0.0).apply({}, jnp.array([[3.0, 4.0]]), jnp.zeros((1, 2)))
      Array([5.], dtype=float32)
    """

    p: float = 2.0
    eps: float = 1e-6
    keepdim: bool = False

    def _layer(self) -> L.Layer:
        return L.PairFunction(F.pairwise_distance, (("p", self.p), ("eps", self.eps), ("keepdim", self.keepdim)),
                              (("p", "norm"),))

    def __call__(self, x1: jax.Array, x2: jax.Array) -> jax.Array:
        return self._forward(x1, x2=x2)


class _Pad(_Layer):
    padding: int | Sequence[int]
    _n: ClassVar[int] = 0
    _mode: ClassVar[str] = "constant"

    def _layer(self) -> L.Layer:
        value = getattr(self, "value", 0.0) if self._mode == "constant" else None
        return L.Pad(self._n, self._mode, self.padding, value)  # type: ignore[arg-type]

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _ConstantPad(_Pad):
    value: float = dataclasses.field(kw_only=False)  # required, after `padding`, as torch's


class ZeroPad1d(_Pad):
    _n: ClassVar[int] = 1


class ZeroPad2d(_Pad):
    _n: ClassVar[int] = 2


class ZeroPad3d(_Pad):
    _n: ClassVar[int] = 3


class ConstantPad1d(_ConstantPad):
    _n: ClassVar[int] = 1


class ConstantPad2d(_ConstantPad):
    _n: ClassVar[int] = 2


class ConstantPad3d(_ConstantPad):
    _n: ClassVar[int] = 3


class ReflectionPad1d(_Pad):
    _n: ClassVar[int] = 1
    _mode: ClassVar[str] = "reflect"


class ReflectionPad2d(_Pad):
    _n: ClassVar[int] = 2
    _mode: ClassVar[str] = "reflect"


class ReflectionPad3d(_Pad):
    _n: ClassVar[int] = 3
    _mode: ClassVar[str] = "reflect"


class ReplicationPad1d(_Pad):
    _n: ClassVar[int] = 1
    _mode: ClassVar[str] = "replicate"


class ReplicationPad2d(_Pad):
    _n: ClassVar[int] = 2
    _mode: ClassVar[str] = "replicate"


class ReplicationPad3d(_Pad):
    _n: ClassVar[int] = 3
    _mode: ClassVar[str] = "replicate"


class CircularPad1d(_Pad):
    _n: ClassVar[int] = 1
    _mode: ClassVar[str] = "circular"


class CircularPad2d(_Pad):
    _n: ClassVar[int] = 2
    _mode: ClassVar[str] = "circular"


class CircularPad3d(_Pad):
    _n: ClassVar[int] = 3
    _mode: ClassVar[str] = "circular"


def _pad_docs() -> None:
    from ..nnx._modules import pad_doc

    for cls in (ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ReflectionPad1d,
                ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d,
                CircularPad1d, CircularPad2d, CircularPad3d):
        cls.__doc__ = pad_doc(cls.__name__[:-2], cls._n, cls._mode, linen=True)


_pad_docs()


class Unflatten(_Layer):
    """``torch.nn.Unflatten(dim, unflattened_size)`` for flax.linen; no variables.

    Args:
      dim, unflattened_size: fields (an int; a tuple or list of ints, one may be -1).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.Unflatten(1, (2, -1)).apply({}, jnp.ones((3, 8))).shape
      (3, 2, 4)
    """

    dim: int
    unflattened_size: Sequence[int]

    def _layer(self) -> L.Layer:
        return L.Unflatten(self.dim, self.unflattened_size)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Bilinear(_Layer):
    """``torch.nn.Bilinear(in1_features, in2_features, out_features, bias=True, device=None,
    dtype=None)`` for flax.linen: :func:`jaxnn.functional.bilinear`.

    Args:
      in1_features, in2_features, out_features, bias, device, dtype: fields, torch's arguments
        in torch's order; keyword-only ``compute_dtype``.

    Attributes:
      params: ``weight`` ``(out_features, in1_features, in2_features)`` and ``bias``
        ``(out_features,)``, both ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> a, b = jnp.ones((2, 3)), jnp.ones((2, 4))
      >>> m = jl.Bilinear(3, 4, 5)
      >>> m.apply(m.init(jax.random.key(0), a, b), a, b).shape
      (2, 5)
    """

    in1_features: int
    in2_features: int
    out_features: int
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    compute_dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.Bilinear(self.in1_features, self.in2_features, self.out_features, self.bias, self.dtype,
                          self.compute_dtype)

    @nn.compact
    def __call__(self, input1: jax.Array, input2: jax.Array) -> jax.Array:
        return self._forward(input1, input2=input2)


# --- pooling ---------------------------------------------------------------------------------------


class _MaxPool(_Layer):
    _N = 0
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] | None = None
    padding: int | Sequence[int] = 0
    dilation: int | Sequence[int] = 1
    return_indices: bool = False
    ceil_mode: bool = False

    def _layer(self) -> L.Layer:
        return L.Pool("max", self._N, (("kernel_size", self.kernel_size), ("stride", self.stride),
                                        ("padding", self.padding), ("dilation", self.dilation),
                                        ("return_indices", self.return_indices), ("ceil_mode", self.ceil_mode)))

    def __call__(self, input: jax.Array) -> Any:
        return self._forward(input)


class _AvgPool1d(_Layer):
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] | None = None
    padding: int | Sequence[int] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True

    def _layer(self) -> L.Layer:
        return L.Pool("avg", 1, (("kernel_size", self.kernel_size), ("stride", self.stride), ("padding", self.padding),
                                 ("ceil_mode", self.ceil_mode), ("count_include_pad", self.count_include_pad)))

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _AvgPool(_Layer):
    _N = 0
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] | None = None
    padding: int | Sequence[int] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    def _layer(self) -> L.Layer:
        return L.Pool("avg", self._N, (("kernel_size", self.kernel_size), ("stride", self.stride),
                                        ("padding", self.padding), ("ceil_mode", self.ceil_mode),
                                        ("count_include_pad", self.count_include_pad),
                                        ("divisor_override", self.divisor_override)))

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _LPPool(_Layer):
    _N = 0
    norm_type: float
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] | None = None
    ceil_mode: bool = False

    def _layer(self) -> L.Layer:
        return L.Pool("lp", self._N, (("norm_type", self.norm_type), ("kernel_size", self.kernel_size),
                                       ("stride", self.stride), ("ceil_mode", self.ceil_mode)))

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _AdaptiveAvgPool(_Layer):
    _N = 0
    output_size: int | None | Sequence[int | None]

    def _layer(self) -> L.Layer:
        return L.Pool("adaptive_avg", self._N, (("output_size", self.output_size),))

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _AdaptiveMaxPool(_Layer):
    _N = 0
    output_size: int | None | Sequence[int | None]
    return_indices: bool = False

    def _layer(self) -> L.Layer:
        return L.Pool("adaptive_max", self._N, (("output_size", self.output_size),
                                                 ("return_indices", self.return_indices)))

    def __call__(self, input: jax.Array) -> Any:
        return self._forward(input)


class MaxPool1d(_MaxPool):
    """``torch.nn.MaxPool1d`` for flax.linen: :func:`jaxnn.functional.max_pool1d` with the stored
    fields; no variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      kernel_size, stride, padding, dilation, return_indices, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.MaxPool1d(2).apply({}, jnp.ones((1, 2, 4))).shape
      (1, 2, 2)
    """

    _N = 1


class MaxPool2d(_MaxPool):
    """``torch.nn.MaxPool2d`` for flax.linen: :func:`jaxnn.functional.max_pool2d` with the stored
    fields; no variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      kernel_size, stride, padding, dilation, return_indices, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.MaxPool2d(2).apply({}, jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 2, 2)
    """

    _N = 2


class MaxPool3d(_MaxPool):
    """``torch.nn.MaxPool3d`` for flax.linen: :func:`jaxnn.functional.max_pool3d` with the stored
    fields; no variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      kernel_size, stride, padding, dilation, return_indices, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.MaxPool3d(2).apply({}, jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 2, 2, 2)
    """

    _N = 3


class AvgPool1d(_AvgPool1d):
    """``torch.nn.AvgPool1d`` for flax.linen: :func:`jaxnn.functional.avg_pool1d` with the stored
    fields; no variables.

    Args:
      kernel_size, stride, padding, ceil_mode, count_include_pad: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AvgPool1d(3, 2, 1).apply({}, jnp.ones((1, 2, 4))).shape
      (1, 2, 2)
    """


class AvgPool2d(_AvgPool):
    """``torch.nn.AvgPool2d`` for flax.linen: :func:`jaxnn.functional.avg_pool2d` with the stored
    fields; no variables.

    Args:
      kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AvgPool2d(3, 2, 1).apply({}, jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 2, 2)
    """

    _N = 2


class AvgPool3d(_AvgPool):
    """``torch.nn.AvgPool3d`` for flax.linen: :func:`jaxnn.functional.avg_pool3d` with the stored
    fields; no variables.

    Args:
      kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AvgPool3d(3, 2, 1).apply({}, jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 2, 2, 2)
    """

    _N = 3


class LPPool1d(_LPPool):
    """``torch.nn.LPPool1d`` for flax.linen: :func:`jaxnn.functional.lp_pool1d` with the stored
    fields; no variables.

    Args:
      norm_type, kernel_size, stride, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.LPPool1d(2, 2).apply({}, jnp.ones((1, 2, 4))).shape
      (1, 2, 2)
    """

    _N = 1


class LPPool2d(_LPPool):
    """``torch.nn.LPPool2d`` for flax.linen: :func:`jaxnn.functional.lp_pool2d` with the stored
    fields; no variables.

    Args:
      norm_type, kernel_size, stride, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.LPPool2d(2, 2).apply({}, jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 2, 2)
    """

    _N = 2


class LPPool3d(_LPPool):
    """``torch.nn.LPPool3d`` for flax.linen: :func:`jaxnn.functional.lp_pool3d` with the stored
    fields; no variables.

    Args:
      norm_type, kernel_size, stride, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.LPPool3d(2, 2).apply({}, jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 2, 2, 2)
    """

    _N = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    """``torch.nn.AdaptiveAvgPool1d`` for flax.linen: :func:`jaxnn.functional.adaptive_avg_pool1d` with the stored
    fields; no variables.

    Args:
      output_size: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AdaptiveAvgPool1d(3).apply({}, jnp.ones((1, 2, 4))).shape
      (1, 2, 3)
    """

    _N = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    """``torch.nn.AdaptiveAvgPool2d`` for flax.linen: :func:`jaxnn.functional.adaptive_avg_pool2d` with the stored
    fields; no variables.

    Args:
      output_size: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AdaptiveAvgPool2d(3).apply({}, jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 3, 3)
    """

    _N = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    """``torch.nn.AdaptiveAvgPool3d`` for flax.linen: :func:`jaxnn.functional.adaptive_avg_pool3d` with the stored
    fields; no variables.

    Args:
      output_size: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AdaptiveAvgPool3d(3).apply({}, jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 3, 3, 3)
    """

    _N = 3


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool1d`` for flax.linen: :func:`jaxnn.functional.adaptive_max_pool1d` with the stored
    fields; no variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      output_size, return_indices: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AdaptiveMaxPool1d(3).apply({}, jnp.ones((1, 2, 4))).shape
      (1, 2, 3)
    """

    _N = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool2d`` for flax.linen: :func:`jaxnn.functional.adaptive_max_pool2d` with the stored
    fields; no variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      output_size, return_indices: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AdaptiveMaxPool2d(3).apply({}, jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 3, 3)
    """

    _N = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool3d`` for flax.linen: :func:`jaxnn.functional.adaptive_max_pool3d` with the stored
    fields; no variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      output_size, return_indices: torch's
        arguments and defaults, checked at the call, as torch does.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> jl.AdaptiveMaxPool3d(3).apply({}, jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 3, 3, 3)
    """

    _N = 3


class _MaxUnpool(_Layer):
    _N = 0
    kernel_size: int | Sequence[int]
    stride: int | Sequence[int] | None = None
    padding: int | Sequence[int] = 0

    def _layer(self) -> L.Layer:
        return L.MaxUnpool(self._N, self.kernel_size, self.stride, self.padding)

    def __call__(self, input: jax.Array, indices: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        return self._forward(input, indices=indices, output_size=output_size)


_UNPOOL_DOC = """``torch.nn.MaxUnpool{n}d`` for flax.linen: :func:`jaxnn.functional.max_unpool{n}d` with
    the stored fields; no variables. Called as torch's, ``m.apply({{}}, input, indices, output_size=None)``.

    Args:
      kernel_size, stride, padding: torch's arguments and defaults (``stride=None``:
        ``kernel_size``), checked at the call, as torch does.

    Shape:
      input and indices ``{shape}`` or ``{unbatched}`` (``indices`` as ``MaxPool{n}d(...,
      return_indices=True)`` returns them, int32 or int64); output the same layout with
      :math:`(L_{{in}} - 1) s - 2p + k` per spatial dimension, or ``output_size``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> y, i = jl.MaxPool{n}d(2, return_indices=True).apply({{}}, jnp.ones({example}))
      >>> jl.MaxUnpool{n}d(2).apply({{}}, y, i).shape
      {example}
    """


class MaxUnpool1d(_MaxUnpool):
    __doc__ = _UNPOOL_DOC.format(n=1, shape="(N, C, L)", unbatched="(C, L)", example="(1, 2, 4)")
    _N = 1


class MaxUnpool2d(_MaxUnpool):
    __doc__ = _UNPOOL_DOC.format(n=2, shape="(N, C, H, W)", unbatched="(C, H, W)", example="(1, 2, 4, 4)")
    _N = 2


class MaxUnpool3d(_MaxUnpool):
    __doc__ = _UNPOOL_DOC.format(n=3, shape="(N, C, D, H, W)", unbatched="(C, D, H, W)", example="(1, 2, 4, 4, 4)")
    _N = 3
