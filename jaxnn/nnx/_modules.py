"""flax.nnx modules with torch.nn's constructor signatures, parameter names and layouts.

Each class is a short shell over a layer description in :mod:`jaxnn._layers` (validated
configuration, named variables with kind and initialiser, apply). Constructors take torch's
arguments in torch's order, ``device`` and ``dtype`` included (``dtype`` is the parameters' dtype, as
in torch; ``device`` must be None: JAX places arrays itself). jaxnn's own arguments come after
them, keyword-only: ``rngs``, ``compute_dtype`` (flax's computation dtype), ``channels_last``,
``precision``. Modules are called with torch's forward arguments (``input``, ...). Layers without
random initialisers take ``rngs`` too and ignore it, so that every layer can be built the same way.

Variables: parameters are ``nnx.Param``; persistent buffers (``running_mean``, ...) are
``nnx.BatchStat``; non-persistent buffers are :class:`Buffer`. A fresh module is in training mode,
as in torch: switch with flax's ``model.eval()`` / ``model.train()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
from flax import nnx

from .. import _layers as L
from .. import functional as F


class Buffer(nnx.Variable):
    """A non-persistent buffer (torch's ``register_buffer(..., persistent=False)``): module state
    that is neither a parameter nor in the state_dict."""


class FrozenParam(nnx.BatchStat):
    """A parameter torch does not train (``requires_grad=False``: ``nn.Embedding(_freeze=True)``,
    ``Embedding.from_pretrained(freeze=True)``): in the state_dict under its torch name, but not an
    ``nnx.Param``, so ``nnx.grad`` and ``nnx.Optimizer(..., wrt=nnx.Param)`` leave it alone. (A
    subclass of ``nnx.BatchStat``, the state_dict's non-parameter kind.)"""


_KINDS: dict[str, type[nnx.Variable]] = {"parameter": nnx.Param, "buffer": nnx.BatchStat, "nonpersistent": Buffer,
                                         "frozen": FrozenParam}


class _Layer(nnx.Module):
    """The generic nnx shell: creates a description's variables under their torch names, exposes
    its torch attributes read-only, keeps the train/eval switch and the ``dropout`` stream."""

    _layer: L.Layer

    def _build(self, layer: L.Layer, rngs: nnx.Rngs | None, device: Any = None) -> None:
        L.check_device(device, type(self).__name__)
        object.__setattr__(self, "_attributes", frozenset(layer.attributes()))
        self._layer = layer
        for name, var in layer.variables().items():
            if var is None:
                setattr(self, name, None)
                continue
            key = None
            if var.init.random:
                if rngs is None:
                    raise TypeError(f"{type(self).__name__} needs `rngs` to initialise `{name}`.")
                key = rngs.params()
            setattr(self, name, _KINDS[var.kind](var.init(key, var.shape, var.dtype or layer.dtype)))
        # torch's default: training mode. Layers without a switch of their own keep flax's
        # `deterministic` too, only so that `model.eval()` / `model.train()` reach `.training`.
        setattr(self, layer.mode_attribute or "deterministic", False)
        if layer.stochastic:  # the `dropout` stream (or the default one); checked when a draw is needed
            stream = None
            if rngs is not None:
                try:
                    stream = rngs["dropout"].fork()
                except KeyError:  # e.g. nnx.Rngs(params=0): fine for inference-only ports
                    stream = None
            self.rngs = stream if stream is not None else nnx.data(None)

    def __getattr__(self, name: str) -> Any:
        layer = self.__dict__.get("_layer")
        if layer is not None and name in self.__dict__.get("_attributes", ()):
            return layer.attributes()[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("_attributes", ()):
            raise AttributeError(
                f"`{name}` of {type(self).__name__} is fixed at construction (it was validated with the "
                "rest of the configuration); build a new module instead."
            )
        super().__setattr__(name, value)

    @property
    def training(self) -> bool:
        """torch's ``module.training``: True from construction and after ``model.train()``, False
        after ``model.eval()`` (flax's switches, ``deterministic`` / ``use_running_average``)."""
        return not getattr(self, self._layer.mode_attribute or "deterministic")

    def _forward(self, input: Any, **kwargs: Any) -> Any:
        layer = self._layer
        values = {}
        for name in layer.variables():
            v = getattr(self, name)
            values[name] = None if v is None else v[...]
        training = self.training
        rng = None
        if layer.stochastic and training and layer.needs_rng(training):  # type: ignore[attr-defined]
            if self.rngs is None:
                raise ValueError(
                    f"{type(self).__name__} in training mode draws from the `dropout` stream, and it was built "
                    "without one (no `rngs`, or an nnx.Rngs with neither a `dropout` nor a `default` stream): "
                    "build it with `rngs=nnx.Rngs(0)` (or `nnx.Rngs(params=..., dropout=...)`), or call "
                    "`model.eval()`."
                )
            rng = self.rngs()
        out, updates = layer.apply(values, input, training=training, rng=rng, **kwargs)
        for name, value in updates.items():
            getattr(self, name).set_value(value)
        return out


_CONV_DOC = """``torch.nn.Conv{n}d`` as a flax.nnx module.

    Calls :func:`jaxnn.functional.conv{n}d`; ``padding_mode`` other than ``'zeros'`` pads with
    :func:`jaxnn.functional.pad` first, as torch does.

    Args:
      in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode: torch's, in torch's order (``padding`` may be ``'same'`` or ``'valid'``).
      device: must be None (JAX places arrays: ``jax.default_device`` or ``jax.device_put``).
      dtype: the parameters' dtype (float32 by default).
      channels_last: keyword-only; take and return channels-last arrays.
      compute_dtype: keyword-only; flax's computation dtype.
      precision: keyword-only; passed to ``lax.conv_general_dilated``.
      rngs: keyword-only; ``rngs.params()`` initialises the parameters.

    Shape:
      input ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``; output ``(N, C_out, *spatial_out)``.

    Attributes:
      weight: ``nnx.Param`` ``(out_channels, in_channels / groups, *kernel_size)``,
        ``U(-sqrt(k), sqrt(k))`` with ``k = groups / (in_channels * prod(kernel_size))``.
      bias: ``nnx.Param`` ``(out_channels,)`` from the same distribution, or None.

    Examples:
      >>> from flax import nnx
      >>> from jaxnn.nnx import Conv{n}d
      >>> conv = Conv{n}d(4, 8, 3, padding=1, padding_mode="reflect", rngs=nnx.Rngs(0))
      >>> conv.weight.shape
      {wshape}
    """

_CONV_T_DOC = """``torch.nn.ConvTranspose{n}d`` as a flax.nnx module.

    Calls :func:`jaxnn.functional.conv_transpose{n}d`; call with an optional ``output_size`` as
    torch's ``forward(input, output_size)`` (it picks ``output_padding`` to reach that size).

    Args:
      in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
        dilation, padding_mode: torch's, in torch's order (``padding_mode`` must be ``'zeros'``).
      device, dtype, channels_last, compute_dtype, precision, rngs: as :class:`Conv{n}d`'s.

    Shape:
      input ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``; output ``(N, C_out, *spatial_out)``,
      ``(in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1`` per dim.

    Attributes:
      weight: ``nnx.Param`` ``(in_channels, out_channels / groups, *kernel_size)``,
        ``U(-sqrt(k), sqrt(k))`` with ``k = groups / (out_channels * prod(kernel_size))``.
      bias: ``nnx.Param`` ``(out_channels,)`` from the same distribution, or None.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxnn.nnx import ConvTranspose{n}d
      >>> up = ConvTranspose{n}d(4, 2, 2, stride=2, rngs=nnx.Rngs(0))
      >>> up(jnp.ones((1, 4{ins}))).shape
      (1, 2{outs})
    """


class _Conv(_Layer):
    _n = 0

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
        padding_mode: L.PaddingMode = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        channels_last: bool = False,
        compute_dtype: Any = None,
        precision: Any = None,
        rngs: nnx.Rngs,
    ):
        self._build(L.Conv(self._n, False, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                           bias, padding_mode, 0, dtype, channels_last, compute_dtype, precision), rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _ConvTranspose(_Layer):
    _n = 0

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
        padding_mode: L.PaddingMode = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        channels_last: bool = False,
        compute_dtype: Any = None,
        precision: Any = None,
        rngs: nnx.Rngs,
    ):
        self._build(L.Conv(self._n, True, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                           bias, padding_mode, output_padding, dtype, channels_last, compute_dtype, precision),
                    rngs, device)

    def __call__(self, input: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        return self._forward(input, output_size=output_size)


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
    _c.__doc__ = _CONV_T_DOC.format(n=_c._n, ins=", 3" * _c._n, outs=", 6" * _c._n)


class Linear(_Layer):
    """``torch.nn.Linear(in_features, out_features, bias=True, device=None, dtype=None)``.

    Args:
      in_features, out_features, bias: torch's. ``device`` must be None; ``dtype``: the
        parameters' dtype. Keyword-only: ``compute_dtype`` (flax's computation dtype), ``rngs``.

    Shape:
      input ``(*, in_features)``, output ``(*, out_features)``.

    Attributes:
      weight: ``(out_features, in_features)`` (the transpose of flax's kernel),
        ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.
      bias: ``(out_features,)``, same distribution, or None.

    Examples:
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> jn.Linear(3, 4, rngs=nnx.Rngs(0)).weight.shape
      (4, 3)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, compute_dtype: Any = None, rngs: nnx.Rngs):
        self._build(L.Linear(in_features, out_features, bias, dtype, compute_dtype), rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class GroupNorm(_Layer):
    """``torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True, device=None,
    dtype=None, *, bias=True)``: :func:`jaxnn.functional.group_norm`.

    Normalises each of ``num_groups`` groups of channels over its channels and spatial dims.

    Args:
      num_groups, num_channels, eps, affine, device, dtype: torch's, in torch's order
        (``num_channels`` must be divisible by ``num_groups``).
      bias: keyword-only, as torch's; False drops the bias and keeps the weight.
      channels_last: keyword-only; channels on the last dim instead of dim 1.
      compute_dtype: keyword-only; flax's computation dtype.
      rngs: keyword-only, not needed (the initialisers are constants).

    Shape:
      input ``(N, C, *)``; output the same shape.

    Attributes:
      weight: ``nnx.Param`` ``(num_channels,)`` ones, or None (``affine=False``).
      bias: ``nnx.Param`` ``(num_channels,)`` zeros, or None.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> gn = jn.GroupNorm(2, 4)
      >>> gn(jnp.arange(8.0).reshape(1, 4, 2)).shape
      (1, 4, 2)

    Differences from Flax: flax's GroupNorm uses eps 1e-6, ``scale`` and channels last.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True, channels_last: bool = False,
                 compute_dtype: Any = None, rngs: nnx.Rngs | None = None):
        self._build(L.GroupNorm(num_groups, num_channels, eps, affine, bias, dtype, channels_last, compute_dtype),
                    rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class LayerNorm(_Layer):
    """``torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
    device=None, dtype=None)``: :func:`jaxnn.functional.layer_norm`.

    Normalises over the last ``len(normalized_shape)`` dims (biased variance).

    Args:
      normalized_shape, eps, elementwise_affine, bias, device, dtype: torch's, in torch's order.
      compute_dtype: keyword-only; flax's computation dtype.
      rngs: keyword-only, not needed (the initialisers are constants).

    Shape:
      input ``(*, *normalized_shape)``; output the same shape.

    Attributes:
      weight: ``nnx.Param`` of shape ``normalized_shape``, ones, or None (``elementwise_affine=False``).
      bias: ``nnx.Param`` of shape ``normalized_shape``, zeros, or None.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.LayerNorm(2)(jnp.array([[1.0, 3.0]]))
      Array([[-0.99999..., 0.99999...]], dtype=float32)

    Differences from Flax: flax's LayerNorm uses eps 1e-6 and calls the weight ``scale``.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None, dtype: Any = None, *,
                 compute_dtype: Any = None, rngs: nnx.Rngs | None = None):
        self._build(L.LayerNorm(normalized_shape, eps, elementwise_affine, bias, dtype, compute_dtype), rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _BatchNorm(_Layer):
    _n = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: Any = None, *, bias: bool = True,
                 rngs: nnx.Rngs | None = None):
        self._build(L.BatchNorm(self._n, num_features, eps, momentum, affine, track_running_stats, dtype, bias),
                    rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


_BN_DOC = """``torch.nn.BatchNorm{n}d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, device=None, dtype=None, *, bias=True)``:
    :func:`jaxnn.functional.batch_norm`.

    In training mode (a fresh module; ``model.train()``) it normalises with the batch statistics
    (biased variance) and updates the running ones (unbiased variance, weight ``momentum``; with
    ``momentum=None`` a cumulative average over ``num_batches_tracked``). In eval mode
    (``model.eval()``) it normalises with the running statistics. Without running statistics
    (``track_running_stats=False``) it always uses the batch's.

    Args:
      num_features, eps, momentum, affine, track_running_stats, device, dtype: torch's, in
        torch's order.
      bias: keyword-only; False drops the bias and keeps the weight.
      rngs: keyword-only, not needed (the initialisers are constants).

    Shape:
      input {shape}; output the same.

    Attributes:
      weight, bias: ``nnx.Param`` ``(num_features,)`` ones / zeros, or None (``affine=False``).
      running_mean, running_var: ``nnx.BatchStat`` ``(num_features,)`` zeros / ones, or None.
      num_batches_tracked: ``nnx.BatchStat`` scalar integer counter, 0, or None.
      use_running_average: flax's train/eval switch (False in training mode).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> bn = jn.BatchNorm{n}d(3)
      >>> y = bn(jnp.arange({size}.0).reshape({example}))
      >>> int(bn.num_batches_tracked[...]), bn.training
      (1, True)
      >>> bn.eval(); bn.training
      False

    Differences from PyTorch:
      ``num_batches_tracked`` is int32 unless ``jax_enable_x64`` is on (torch: int64); loading a
      torch checkpoint casts it. ``device`` must be None.
    """


class BatchNorm1d(_BatchNorm):
    _n = 1


class BatchNorm2d(_BatchNorm):
    _n = 2


class BatchNorm3d(_BatchNorm):
    _n = 3


for _c, _shape, _ex in ((BatchNorm1d, "``(N, C)`` or ``(N, C, L)``", "2, 3"),
                        (BatchNorm2d, "``(N, C, H, W)``", "2, 3, 1, 1"),
                        (BatchNorm3d, "``(N, C, D, H, W)``", "2, 3, 1, 1, 1")):
    _c.__doc__ = _BN_DOC.format(n=_c._n, shape=_shape, size=6, example=_ex)


class Dropout(_Layer):
    """``torch.nn.Dropout(p=0.5, inplace=False)``: :func:`jaxnn.functional.dropout`.

    In training mode (a fresh module; ``model.train()``) zeroes each element with probability
    ``p`` and scales the rest by ``1 / (1 - p)``, drawing the mask from the ``dropout`` stream of
    ``rngs`` (falling back to its default stream); in eval mode (``model.eval()``) it is the
    identity and needs no ``rngs``.

    Args:
      p: probability of zeroing an element, in ``[0, 1]``.
      inplace: accepted and ignored (JAX arrays are immutable).
      rngs: keyword-only; draws the masks (its ``dropout`` stream, else its default one).

    Shape:
      any; the same shape out.

    Attributes:
      deterministic: flax's train/eval switch (False in training mode).

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> drop = jn.Dropout(0.5, rngs=nnx.Rngs(dropout=0))
      >>> sorted(set(drop(jnp.ones(8)).tolist())) in ([0.0, 2.0], [2.0], [0.0])
      True
      >>> drop.eval()
      >>> drop(jnp.ones(2))
      Array([1., 1.], dtype=float32)

    Differences from PyTorch:
      the masks come from JAX keys, not torch's generator: the same distribution, but not the
      positions torch would zero for any seed.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._build(L.Dropout(p, inplace), rngs)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


_DROPOUT_VARIANT_DOC = """``torch.nn.{name}(p=0.5, inplace=False)``: :func:`jaxnn.functional.{fn}`.

    {what} In training mode (a fresh module; ``model.train()``) the mask is drawn from the
    ``dropout`` stream of ``rngs`` (else its default stream); in eval mode (``model.eval()``) it is
    the identity and needs no ``rngs``.

    Args:
      p: probability of dropping {unit}, in ``[0, 1]``.
      inplace: accepted and ignored (JAX arrays are immutable).
      rngs: keyword-only; draws the masks (its ``dropout`` stream, else its default one).

    Shape:
      {shape}; the same shape out.

    Attributes:
      deterministic: flax's train/eval switch (False in training mode).

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> drop = jn.{name}(0.5, rngs=nnx.Rngs(dropout=0))
      >>> drop({example}).shape
      {example_shape}
      >>> drop.eval()
      >>> bool((drop({example}) == 1).all())
      True

    Differences from PyTorch:
      the masks come from JAX keys, not torch's generator: the same distribution, other positions.
    """


class _DropoutVariant(_Layer):
    _fn: Any = None

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._build(L.DropoutVariant(type(self)._fn, p, inplace), rngs)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Dropout1d(_DropoutVariant):
    _fn = staticmethod(F.dropout1d)


class Dropout2d(_DropoutVariant):
    _fn = staticmethod(F.dropout2d)


class Dropout3d(_DropoutVariant):
    _fn = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutVariant):
    _fn = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_DropoutVariant):
    _fn = staticmethod(F.feature_alpha_dropout)


_DROPOUT_VARIANTS = {
    Dropout1d: ("dropout1d", "Zeroes whole channels of ``(N, C, L)`` / ``(C, L)`` input and scales the rest by "
                "``1 / (1 - p)``.", "a channel", "``(N, C, L)`` or ``(C, L)``", "jnp.ones((2, 3, 4))", "(2, 3, 4)"),
    Dropout2d: ("dropout2d", "Zeroes whole channels of ``(N, C, H, W)`` input and scales the rest by "
                "``1 / (1 - p)`` (3-D input: torch's warning and channel-wise 1-D behaviour).", "a channel",
                "``(N, C, H, W)``", "jnp.ones((2, 3, 2, 2))", "(2, 3, 2, 2)"),
    Dropout3d: ("dropout3d", "Zeroes whole channels of ``(N, C, D, H, W)`` / ``(C, D, H, W)`` input and scales "
                "the rest by ``1 / (1 - p)``.", "a channel", "``(N, C, D, H, W)`` or ``(C, D, H, W)``",
                "jnp.ones((2, 2, 2, 2))", "(2, 2, 2, 2)"),
    AlphaDropout: ("alpha_dropout", "Alpha dropout for SELU networks: keeps zero mean and unit variance "
                   "(dropped elements take SELU's transformed saturation value).", "an element", "any",
                   "jnp.ones((2, 3))", "(2, 3)"),
    FeatureAlphaDropout: ("feature_alpha_dropout", "Alpha dropout of whole channels (mask ``(N, C, 1, ...)``).",
                          "a channel", "``(N, C, *)``", "jnp.ones((2, 3, 2))", "(2, 3, 2)"),
}
for _c, (_fn, _what, _unit, _shape, _ex, _exs) in _DROPOUT_VARIANTS.items():
    _c.__doc__ = _DROPOUT_VARIANT_DOC.format(name=_c.__name__, fn=_fn, what=_what, unit=_unit, shape=_shape,
                                             example=_ex, example_shape=_exs)


class Embedding(_Layer):
    """``torch.nn.Embedding`` as a flax.nnx module: :func:`jaxnn.functional.embedding`.

    Args:
      num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse:
        torch's, in torch's order (``padding_idx`` may be negative: it is stored as
        ``num_embeddings + padding_idx``; ``sparse`` is accepted, gradients are dense).
      _weight: an initial weight ``(num_embeddings, embedding_dim)`` used as it is (its dtype kept;
        the padding row is not zeroed, as in torch); no ``rngs`` needed then.
      _freeze: if True, ``weight`` is a :class:`FrozenParam` (torch's ``requires_grad=False``).
      device: must be None. dtype: the weight's dtype (float32 by default).
      rngs: keyword-only; ``rngs.params()`` draws the weight.

    Shape:
      input: integer indices (int32/int64) of any shape ``(*)``; output ``(*, embedding_dim)``.

    Attributes:
      weight: ``nnx.Param`` (or :class:`FrozenParam`) ``(num_embeddings, embedding_dim)``,
        ``N(0, 1)`` with the ``padding_idx`` row zero.

    With ``max_norm``, each call rescales the looked-up rows whose norm exceeds it
    (:func:`jaxnn.functional.embedding_renorm`) and stores the new weight back into ``weight``, as
    torch's forward does in place (also in eval mode, as torch).

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> emb = jn.Embedding(10, 3, padding_idx=0, rngs=nnx.Rngs(0))
      >>> emb(jnp.array([[0, 4]])).shape
      (1, 2, 3)
      >>> float(abs(emb.weight[0]).sum())
      0.0
      >>> frozen = jn.Embedding.from_pretrained(jnp.ones((4, 2)))
      >>> type(frozen.weight).__name__
      'FrozenParam'

    Differences from PyTorch: out-of-range indices raise (EmbeddingIndexError, an IndexError and a
    ValueError) for concrete input; under ``jit`` they give NaN rows (see the function).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False, device: Any = None,
                 dtype: Any = None, *, rngs: nnx.Rngs | None = None):
        self._build(L.Embedding(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, scale_grad_by_freq,
                                sparse, bool(_freeze), dtype, _weight), rngs, device)

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """torch's ``Embedding.from_pretrained``: an Embedding whose weight is ``embeddings``
        (2-D), frozen (a :class:`FrozenParam`) unless ``freeze=False``."""
        if getattr(embeddings, "ndim", None) != 2:
            raise ValueError(
                "Embeddings parameter is expected to be 2-dimensional: `embeddings` has shape "
                f"{tuple(getattr(embeddings, 'shape', ()))}."
            )
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class GEGLU(nnx.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)``: ``proj = Linear(dim_in, 2 * dim_out)``;
    ``h, gate = proj(hidden_states).chunk(2, -1)``; ``h * gelu(gate)`` (exact gelu unless
    ``approximate``).

    Args:
      dim_in, dim_out, bias: diffusers'.
      approximate: keyword-only; ``'none'`` (erf gelu) or ``'tanh'``.
      dtype: keyword-only; the parameters' dtype.
      compute_dtype: keyword-only; flax's computation dtype.
      rngs: keyword-only; ``rngs.params()`` initialises ``proj``.

    Shape:
      input ``(*, dim_in)``; output ``(*, dim_out)``.

    Attributes:
      proj: a :class:`Linear` ``(dim_in, 2 * dim_out)``, so state_dict keys ``proj.weight``
        ``(2 * dim_out, dim_in)`` and ``proj.bias`` as diffusers'.
      act: the :class:`GELU`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> jn.GEGLU(4, 3, rngs=nnx.Rngs(0))(jnp.ones((2, 4))).shape
      (2, 3)

    Differences from diffusers: the call takes ``hidden_states`` only (diffusers' deprecated,
    ignored ``scale`` argument is not accepted).
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True, *, approximate: L.Approximate = "none",
                 dtype: Any = None, compute_dtype: Any = None, rngs: nnx.Rngs):
        self.act = GELU(approximate)
        self.proj = Linear(dim_in, 2 * dim_out, bias, dtype=dtype, compute_dtype=compute_dtype, rngs=rngs)

    @property
    def approximate(self) -> L.Approximate:
        return self.act.approximate

    @property
    def training(self) -> bool:
        """torch's ``module.training`` (follows ``model.train()`` / ``model.eval()``)."""
        return self.proj.training

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return F.geglu(self.proj(hidden_states), -1, self.approximate)


class PReLU(_Layer):
    """``torch.nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)``:
    :func:`jaxnn.functional.prelu`, ``max(0, x) + weight * min(0, x)``.

    Args:
      num_parameters: 1 (one slope) or the number of channels (dim 1 of the input).
      init: the slopes' initial value.
      device, dtype: torch's (``device`` must be None; ``dtype`` is the weight's).
      rngs: keyword-only, not needed (the initialiser is a constant).

    Shape:
      input ``(N, C, *)``, or any shape with one slope; output the same shape.

    Attributes:
      weight: ``nnx.Param`` ``(num_parameters,)`` filled with ``init``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.PReLU()(jnp.array([-2.0, 3.0]))
      Array([-0.5,  3. ], dtype=float32)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None, *,
                 rngs: nnx.Rngs | None = None):
        self._build(L.PReLU(num_parameters, init, dtype), rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _Activation(_Layer):
    """An activation: torch's constructor arguments as read-only attributes and the call into its
    function. ``inplace`` is accepted and ignored; so is ``rngs``, so that every layer can be built
    the same way."""

    def _act(self, fn: Any, inplace: bool | None = None, **config: Any) -> None:
        self._build(L.Activation(fn, tuple(config.items()), inplace), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class ReLU(_Activation):
    """``torch.nn.ReLU(inplace=False)``: :func:`jaxnn.functional.relu`, ``max(0, x)``.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape:
      any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.ReLU()(jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.relu, inplace)


class ReLU6(_Activation):
    """``torch.nn.ReLU6(inplace=False)``: :func:`jaxnn.functional.relu6`, ``min(max(0, x), 6)``.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.relu6, inplace)


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)``: :func:`jaxnn.functional.leaky_relu`.

    Args:
      negative_slope: the slope for ``x < 0``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.leaky_relu, inplace, negative_slope=negative_slope)


class ELU(_Activation):
    """``torch.nn.ELU(alpha=1.0, inplace=False)``: :func:`jaxnn.functional.elu`.

    Args:
      alpha: ``alpha * (exp(x) - 1)`` for ``x <= 0``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.elu, inplace, alpha=alpha)


class SELU(_Activation):
    """``torch.nn.SELU(inplace=False)``: :func:`jaxnn.functional.selu` (torch's fixed alpha and scale).

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.selu, inplace)


class CELU(_Activation):
    """``torch.nn.CELU(alpha=1.0, inplace=False)``: :func:`jaxnn.functional.celu`.

    Args:
      alpha: ``alpha * (exp(x / alpha) - 1)`` for ``x <= 0``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.celu, inplace, alpha=alpha)


class GELU(_Activation):
    """``torch.nn.GELU(approximate='none')``: :func:`jaxnn.functional.gelu`.

    Args:
      approximate: ``'none'`` (exact, with erf; the default) or ``'tanh'``.

    Shape:
      any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.GELU(approximate="tanh")(jnp.array([0.0, 1.0]))
      Array([0.     , 0.841192], dtype=float32)

    Differences from Flax: ``flax.nnx.gelu`` and ``jax.nn.gelu`` default to the tanh approximation.
    """

    def __init__(self, approximate: L.Approximate = "none", *, rngs: nnx.Rngs | None = None):
        self._act(F.gelu, approximate=approximate)


class SiLU(_Activation):
    """``torch.nn.SiLU(inplace=False)``: :func:`jaxnn.functional.silu`, ``x * sigmoid(x)``.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.silu, inplace)


class Mish(_Activation):
    """``torch.nn.Mish(inplace=False)``: :func:`jaxnn.functional.mish`, ``x * tanh(softplus(x))``.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.mish, inplace)


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid()``: :func:`jaxnn.functional.sigmoid`. Shape: any; the same shape out."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.sigmoid)


class Tanh(_Activation):
    """``torch.nn.Tanh()``: :func:`jaxnn.functional.tanh`. Shape: any; the same shape out."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.tanh)


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
    max_value=None)``: :func:`jaxnn.functional.hardtanh`, ``x`` clipped to ``[min_val, max_val]``.

    Args:
      min_val, max_val: the bounds; ``max_val`` must be greater than ``min_val``.
      inplace: accepted and ignored (JAX arrays are immutable).
      min_value, max_value: torch's deprecated spellings of the bounds (FutureWarning).

    Shape:
      any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Hardtanh(0.0, 2.0)(jnp.array([-1.0, 1.0, 3.0]))
      Array([0., 1., 2.], dtype=float32)
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None, *,
                 rngs: nnx.Rngs | None = None):
        min_val, max_val = L.hardtanh_bounds(min_val, max_val, min_value, max_value, warn=True)
        self._act(F.hardtanh, inplace, min_val=min_val, max_val=max_val)


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid(inplace=False)``: :func:`jaxnn.functional.hardsigmoid`, ``relu6(x + 3) / 6``.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.hardsigmoid, inplace)


class Hardswish(_Activation):
    """``torch.nn.Hardswish(inplace=False)``: :func:`jaxnn.functional.hardswish`, ``x * relu6(x + 3) / 6``.

    Args:
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.hardswish, inplace)


class Softplus(_Activation):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)``: :func:`jaxnn.functional.softplus`.

    Args:
      beta: ``log(1 + exp(beta * x)) / beta``.
      threshold: above it (for ``beta * x``) the output is ``x``, as torch's.

    Shape: any; the same shape out.
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *, rngs: nnx.Rngs | None = None):
        self._act(F.softplus, beta=beta, threshold=threshold)


class Softsign(_Activation):
    """``torch.nn.Softsign()``: :func:`jaxnn.functional.softsign`, ``x / (1 + |x|)``. Shape: any; the same shape out."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.softsign)


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid()``: :func:`jaxnn.functional.logsigmoid`. Shape: any; the same shape out."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.logsigmoid)


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink()``: :func:`jaxnn.functional.tanhshrink`, ``x - tanh(x)``.

    Shape: any; the same shape out.
    """

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.tanhshrink)


class Softshrink(_Activation):
    """``torch.nn.Softshrink(lambd=0.5)``: :func:`jaxnn.functional.softshrink`.

    Args:
      lambd: ``x`` in ``[-lambd, lambd]`` goes to 0, the rest moves ``lambd`` towards 0.

    Shape: any; the same shape out.
    """

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self._act(F.softshrink, lambd=lambd)


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink(lambd=0.5)``: :func:`jaxnn.functional.hardshrink`.

    Args:
      lambd: ``x`` in ``[-lambd, lambd]`` goes to 0, the rest is kept.

    Shape: any; the same shape out.
    """

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self._act(F.hardshrink, lambd=lambd)


class Threshold(_Activation):
    """``torch.nn.Threshold(threshold, value, inplace=False)``: :func:`jaxnn.functional.threshold`.

    Args:
      threshold, value: ``x`` where ``x > threshold``, else ``value``.
      inplace: accepted and ignored (JAX arrays are immutable).

    Shape: any; the same shape out.
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.threshold, inplace, threshold=threshold, value=value)


class GLU(_Activation):
    """``torch.nn.GLU(dim=-1)``: :func:`jaxnn.functional.glu`, ``a * sigmoid(b)`` for the halves of ``dim``.

    Args:
      dim: the dim to split in halves (its size must be even).

    Shape:
      input ``(*1, 2 * M, *2)``; output ``(*1, M, *2)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.GLU()(jnp.ones((3, 4))).shape
      (3, 2)
    """

    def __init__(self, dim: int = -1, *, rngs: nnx.Rngs | None = None):
        self._act(F.glu, dim=dim)


class Softmax(_Activation):
    """``torch.nn.Softmax(dim=None)``: :func:`jaxnn.functional.softmax`.

    Args:
      dim: the dim to normalise. ``None`` warns and picks torch's legacy dim (0 for 0-, 1- and
        3-dimensional inputs, else 1), as torch.

    Shape:
      any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Softmax(dim=-1)(jnp.zeros((1, 4)))
      Array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._act(F.softmax, dim=dim)


class LogSoftmax(_Activation):
    """``torch.nn.LogSoftmax(dim=None)``: :func:`jaxnn.functional.log_softmax`.

    Args:
      dim: the dim to normalise (``None``: torch's legacy choice, with its warning).

    Shape: any; the same shape out.
    """

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._act(F.log_softmax, dim=dim)


class Identity(_Layer):
    """``torch.nn.Identity(*args, **kwargs)``: returns its input.

    Args:
      args, kwargs: accepted and ignored, as torch's.

    Shape: any; the same array out.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self._build(L.Identity(), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Flatten(_Layer):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``: merges dims ``start_dim`` to ``end_dim``.

    Args:
      start_dim, end_dim: the first and last dims to merge (negative counts from the end). They are
        checked against the input at the call, as torch does (``Flatten(2, 1)`` fails on any input).

    Shape:
      input ``(*1, S_start, ..., S_end, *2)``; output ``(*1, S_start * ... * S_end, *2)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Flatten()(jnp.ones((2, 3, 4))).shape
      (2, 12)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self._build(L.Flatten(start_dim, end_dim), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


def _children_training(children: Iterable[Any]) -> bool:
    """A container's ``training``: False once ``model.eval()`` has switched its children."""
    return all(getattr(m, "training", True) for m in children)


class ModuleList(nnx.List):
    """``torch.nn.ModuleList(modules=None)``: children addressed by index, so state_dict keys
    read ``blocks.0.weight`` exactly as torch's.

    Args:
      modules: the children (any iterable of modules), or None for an empty list.

    Examples:
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> blocks = jn.ModuleList([jn.Linear(2, 2, rngs=nnx.Rngs(0)), jn.ReLU()])
      >>> len(blocks), blocks[0].weight.shape
      (2, (2, 2))
    """

    def __init__(self, modules: Iterable[Any] | None = None):
        super().__init__(modules)

    @property
    def training(self) -> bool:
        """torch's ``module.training``: False after ``model.eval()``, True after ``model.train()``."""
        return _children_training(self)


class Sequential(nnx.List):
    """``torch.nn.Sequential(*args)``: calls its children in order; state_dict keys ``net.0.weight``
    as torch's (flax's nnx.Sequential nests them under ``layers``).

    Args:
      args: the children, modules or plain callables (``jaxnn.functional.relu``), in order.

    Shape:
      the first child's input; the last child's output.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> net = jn.Sequential(jn.Linear(3, 4, rngs=nnx.Rngs(0)), jn.ReLU(), jn.Linear(4, 1, rngs=nnx.Rngs(1)))
      >>> net(jnp.ones((2, 3))).shape
      (2, 1)
      >>> sorted(jn.state_dict(net))
      ['0.bias', '0.weight', '2.bias', '2.weight']

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

    @property
    def training(self) -> bool:
        """torch's ``module.training``: False after ``model.eval()``, True after ``model.train()``."""
        return _children_training(self)

    def __call__(self, input: Any) -> Any:
        for m in self:
            input = m(input)
        return input


class MultiheadAttention(_Layer):
    """``torch.nn.MultiheadAttention`` as a flax.nnx module.

    Args:
      embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn, kdim, vdim, batch_first:
        torch's, in torch's order. ``device`` must be None; ``dtype``: the parameters' dtype.
      rngs: keyword-only; ``rngs.params()`` initialises the parameters, the ``dropout`` stream
        (if any) draws the attention dropout in training mode.

    Shape:
      query ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``; key
      ``(S, N, kdim)``, value ``(S, N, vdim)``. Returns ``(output, weights)``: output like query;
      weights ``(N, L, S)`` averaged over heads, ``(N, num_heads, L, S)`` with
      ``average_attn_weights=False``, or None with ``need_weights=False``.

    Attributes:
      in_proj_weight: ``(3E, E)``, xavier uniform (or ``q_proj_weight`` ``(E, E)``,
        ``k_proj_weight`` ``(E, kdim)``, ``v_proj_weight`` ``(E, vdim)`` when kdim/vdim differ).
      in_proj_bias: ``(3E,)`` zeros, or None. bias_k, bias_v: ``(1, 1, E)`` xavier normal with
        ``add_bias_kv``. out_proj: a :class:`Linear` ``(E, E)`` with a zero bias.

    Masks are torch's: ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or
    ``(N * num_heads, L, S)``, boolean with True = masked out (the opposite of
    :func:`jaxnn.functional.scaled_dot_product_attention`'s), or float, added to the scores.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> mha = jn.MultiheadAttention(8, 2, batch_first=True, rngs=nnx.Rngs(0))
      >>> x = jnp.ones((3, 5, 8))
      >>> out, weights = mha(x, x, x)
      >>> out.shape, weights.shape
      ((3, 5, 8), (3, 5, 5))

    Differences from PyTorch: the dropout mask comes from the ``dropout`` stream. torch's eval-mode
    fast path (``torch._native_multi_head_attention``) computes the same values to float rounding.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: Any = None, dtype: Any = None, *,
                 rngs: nnx.Rngs):
        layer = L.MultiheadAttention(embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn, kdim, vdim,
                                     batch_first, dtype)
        self._build(layer, rngs, device)
        self.out_proj = _AttentionOutProj(L.AttentionOutProj(embed_dim, embed_dim, bias, dtype), rngs)

    def __call__(self, query: jax.Array, key: jax.Array, value: jax.Array,
                 key_padding_mask: jax.Array | None = None, need_weights: bool = True,
                 attn_mask: jax.Array | None = None, average_attn_weights: bool = True,
                 is_causal: bool = False) -> tuple[jax.Array, jax.Array | None]:
        out, weights = self._forward(query, key=key, value=value, key_padding_mask=key_padding_mask,
                                     need_weights=need_weights, attn_mask=attn_mask,
                                     average_attn_weights=average_attn_weights, is_causal=is_causal)
        return self.out_proj(out), weights


class _AttentionOutProj(_Layer):
    """``MultiheadAttention.out_proj``: a Linear (``weight``, ``bias``) with torch's zero bias."""

    def __init__(self, layer: L.Layer, rngs: nnx.Rngs):
        self._build(layer, rngs)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Upsample(_Layer):
    """``torch.nn.Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None,
    recompute_scale_factor=None)``: :func:`jaxnn.functional.interpolate` with these arguments.

    Args:
      size, scale_factor, mode, align_corners, recompute_scale_factor: torch's, in torch's order
        (``scale_factor`` is stored as a float or a tuple of floats, as torch stores it); checked
        against the input at the call, as torch does.
      rngs: keyword-only, not needed (no variables).

    Shape:
      input ``(N, C, *spatial)`` with 1 to 3 spatial dims; output ``(N, C, *spatial_out)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Upsample(scale_factor=2)(jnp.array([[[1.0, 2.0]]]))
      Array([[[1., 1., 2., 2.]]], dtype=float32)
    """

    def __init__(self, size: int | Sequence[int] | None = None, scale_factor: float | Sequence[float] | None = None,
                 mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None, *, rngs: nnx.Rngs | None = None):
        self._build(L.Upsample(size, scale_factor, mode, align_corners, recompute_scale_factor), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d(size=None, scale_factor=None)``: :class:`Upsample` with
    ``mode='nearest'``, for ``(N, C, H, W)`` input.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.UpsamplingNearest2d(scale_factor=2)(jnp.ones((1, 1, 2, 3))).shape
      (1, 1, 4, 6)
    """

    def __init__(self, size: int | Sequence[int] | None = None, scale_factor: float | Sequence[float] | None = None,
                 *, rngs: nnx.Rngs | None = None):
        self._build(L.Upsample(size, scale_factor, "nearest"), None)


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d(size=None, scale_factor=None)``: :class:`Upsample` with
    ``mode='bilinear'`` and ``align_corners=True``, for ``(N, C, H, W)`` input.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.UpsamplingBilinear2d(size=(1, 3))(jnp.array([[[[0.0, 2.0]]]]))
      Array([[[[0., 1., 2.]]]], dtype=float32)
    """

    def __init__(self, size: int | Sequence[int] | None = None, scale_factor: float | Sequence[float] | None = None,
                 *, rngs: nnx.Rngs | None = None):
        self._build(L.Upsample(size, scale_factor, "bilinear", True), None)


class PixelShuffle(_Layer):
    """``torch.nn.PixelShuffle(upscale_factor)``: :func:`jaxnn.functional.pixel_shuffle`.

    Args:
      upscale_factor: ``r``; checked at the call, as torch does.
      rngs: keyword-only, not needed (no variables).

    Shape:
      input ``(*, C r^2, H, W)``; output ``(*, C, H r, W r)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.PixelShuffle(2)(jnp.ones((1, 8, 3, 3))).shape
      (1, 2, 6, 6)
    """

    def __init__(self, upscale_factor: int, *, rngs: nnx.Rngs | None = None):
        self._build(L.PixelShuffle(upscale_factor), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class PixelUnshuffle(_Layer):
    """``torch.nn.PixelUnshuffle(downscale_factor)``: :func:`jaxnn.functional.pixel_unshuffle`.

    Args:
      downscale_factor: ``r``; checked at the call, as torch does.
      rngs: keyword-only, not needed (no variables).

    Shape:
      input ``(*, C, H r, W r)``; output ``(*, C r^2, H, W)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.PixelUnshuffle(2)(jnp.ones((1, 2, 6, 6))).shape
      (1, 8, 3, 3)
    """

    def __init__(self, downscale_factor: int, *, rngs: nnx.Rngs | None = None):
        self._build(L.PixelShuffle(downscale_factor, True), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Unfold(_Layer):
    """``torch.nn.Unfold(kernel_size, dilation=1, padding=0, stride=1)``: :func:`jaxnn.functional.unfold`
    (im2col); no variables, arguments checked at the call as torch does.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output ``(N, C*kh*kw, L)`` or ``(C*kh*kw, L)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Unfold(2, stride=2)(jnp.ones((1, 3, 4, 4))).shape
      (1, 12, 4)
    """

    def __init__(self, kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1,
                 padding: int | Sequence[int] = 0, stride: int | Sequence[int] = 1, *,
                 rngs: nnx.Rngs | None = None):
        self._build(L.Fold(kernel_size, dilation, padding, stride), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Fold(_Layer):
    """``torch.nn.Fold(output_size, kernel_size, dilation=1, padding=0, stride=1)``:
    :func:`jaxnn.functional.fold` (col2im, overlaps summed); no variables.

    Shape:
      input ``(N, C*kh*kw, L)`` or ``(C*kh*kw, L)``; output ``(N, C, *output_size)`` or
      ``(C, *output_size)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Fold((4, 4), 2, stride=2)(jnp.ones((1, 12, 4))).shape
      (1, 3, 4, 4)
    """

    def __init__(self, output_size: int | Sequence[int], kernel_size: int | Sequence[int],
                 dilation: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 stride: int | Sequence[int] = 1, *, rngs: nnx.Rngs | None = None):
        self._build(L.Fold(kernel_size, dilation, padding, stride, output_size), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class RMSNorm(_Layer):
    """``torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True, device=None,
    dtype=None)``: :func:`jaxnn.functional.rms_norm`.

    Normalises by the root mean square over the last ``len(normalized_shape)`` dims.

    Args:
      normalized_shape, eps, elementwise_affine, device, dtype: torch's, in torch's order
        (``eps=None``: the machine epsilon of the computation dtype, as torch).
      rngs: keyword-only, not needed (the initialiser is a constant).

    Shape:
      input ``(*, *normalized_shape)``; output the same shape and dtype.

    Attributes:
      weight: ``nnx.Param`` of shape ``normalized_shape``, ones, or None (``elementwise_affine=False``).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.RMSNorm(2)(jnp.array([[3.0, 4.0]]))
      Array([[0.848528..., 1.131370...]], dtype=float32)

    Differences from Flax: flax's RMSNorm uses eps 1e-6 and calls the weight ``scale``.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True, device: Any = None, dtype: Any = None, *,
                 rngs: nnx.Rngs | None = None):
        self._build(L.RMSNorm(normalized_shape, eps, elementwise_affine, dtype), rngs, device)

    def __call__(self, x: jax.Array) -> jax.Array:  # torch's RMSNorm.forward(x)
        return self._forward(x)


# --- instance/local-response norms, distances, padding, Unflatten, Bilinear (issue #12) -------------


class _InstanceNorm(_Layer):
    _n = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device: Any = None, dtype: Any = None, *, bias: bool = True,
                 rngs: nnx.Rngs | None = None):
        self._build(L.InstanceNorm(self._n, num_features, eps, momentum, affine, track_running_stats, dtype, bias),
                    rngs, device)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


_IN_DOC = """``torch.nn.InstanceNorm{n}d(num_features, eps=1e-5, momentum=0.1, affine=False,
    track_running_stats=False, device=None, dtype=None, *, bias=True)``:
    :func:`jaxnn.functional.instance_norm`.

    Normalises each (sample, channel) over its spatial positions (biased variance). With
    ``track_running_stats`` it also keeps running statistics (unbiased per-instance variance,
    averaged over the batch, weight ``momentum``; ``momentum=None`` means 0 here, as in torch), and
    eval mode (``model.eval()``) normalises with them; without, eval mode uses the instance
    statistics too (torch's ``self.training or not self.track_running_stats``).

    Args:
      num_features, eps, momentum, affine, track_running_stats, device, dtype: torch's, in
        torch's order.
      bias: keyword-only; False drops the bias and keeps the weight.
      rngs: keyword-only, not needed (the initialisers are constants).

    Shape:
      input {shape} (the unbatched form without ``N``); output the same. A channel count other
      than ``num_features`` is an error with ``affine=True`` and a UserWarning without, as torch.

    Attributes:
      weight, bias: ``nnx.Param`` ``(num_features,)`` ones / zeros, or None (``affine=False``).
      running_mean, running_var, num_batches_tracked: ``nnx.BatchStat`` zeros / ones / 0, or None
        (``track_running_stats=False``); the counter is never advanced, as torch's.
      use_running_average: flax's train/eval switch (False in training mode).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> norm = jn.InstanceNorm{n}d(2, track_running_stats=True)
      >>> norm(jnp.arange(16.0).reshape({example})).shape
      ({example})
      >>> norm.running_mean[...]
      Array([0.3..., 1.1...], dtype=float32)

    Differences from PyTorch:
      ``device`` must be None. torch's pre-0.4 checkpoints with running statistics for a module
      without ``track_running_stats`` are refused as unexpected keys.
    """


class InstanceNorm1d(_InstanceNorm):
    _n = 1


class InstanceNorm2d(_InstanceNorm):
    _n = 2


class InstanceNorm3d(_InstanceNorm):
    _n = 3


for _c, _shape, _ex in ((InstanceNorm1d, "``(N, C, L)`` or ``(C, L)``", "1, 2, 8"),
                        (InstanceNorm2d, "``(N, C, H, W)`` or ``(C, H, W)``", "1, 2, 2, 4"),
                        (InstanceNorm3d, "``(N, C, D, H, W)`` or ``(C, D, H, W)``", "1, 2, 2, 2, 2")):
    _c.__doc__ = _IN_DOC.format(n=_c._n, shape=_shape, example=_ex)


class LocalResponseNorm(_Layer):
    """``torch.nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)``:
    :func:`jaxnn.functional.local_response_norm` across channels.

    Args:
      size, alpha, beta, k: torch's; checked at the call, as torch does.
      rngs: keyword-only, not needed (no variables).

    Shape:
      input ``(N, C, *)`` with at least 3 dimensions; output the same.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.LocalResponseNorm(2)(jnp.ones((1, 3, 4))).shape
      (1, 3, 4)
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *,
                 rngs: nnx.Rngs | None = None):
        self._build(L.LocalResponseNorm(size, alpha, beta, k), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Softmin(_Activation):
    """``torch.nn.Softmin(dim=None)``: :func:`jaxnn.functional.softmin`.

    Args:
      dim: the dim to normalise (``None``: torch's legacy choice, with its warning).

    Shape: any; the same shape out.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Softmin(dim=-1)(jnp.zeros((1, 2)))
      Array([[0.5, 0.5]], dtype=float32)
    """

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._act(F.softmin, dim=dim)


class Softmax2d(_Layer):
    """``torch.nn.Softmax2d()``: softmax over the channels (dim -3) of a 3-D or 4-D input.

    Args:
      rngs: keyword-only, not needed (no variables).

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same (anything else: ValueError, as torch).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Softmax2d()(jnp.zeros((2, 1, 1)))[:, 0, 0]
      Array([0.5, 0.5], dtype=float32)
    """

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._build(L.Softmax2d(), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class CosineSimilarity(_Layer):
    """``torch.nn.CosineSimilarity(dim=1, eps=1e-8)``: :func:`jaxnn.functional.cosine_similarity`.

    Args:
      dim, eps: torch's (``dim`` is checked at the call).
      rngs: keyword-only, not needed (no variables).

    Shape:
      ``x1``, ``x2`` broadcastable; output their broadcast shape without ``dim``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.CosineSimilarity()(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 2.0]]))
      Array([0.], dtype=float32)
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8, *, rngs: nnx.Rngs | None = None):
        self._build(L.PairFunction(F.cosine_similarity, (("dim", dim), ("eps", eps))), None)

    def __call__(self, x1: jax.Array, x2: jax.Array) -> jax.Array:
        return self._forward(x1, x2=x2)


class PairwiseDistance(_Layer):
    """``torch.nn.PairwiseDistance(p=2.0, eps=1e-6, keepdim=False)``:
    :func:`jaxnn.functional.pairwise_distance`.

    Args:
      p, eps, keepdim: torch's (torch stores ``p`` as the attribute ``norm``; so does this).
      rngs: keyword-only, not needed (no variables).

    Shape:
      ``x1``, ``x2`` broadcastable ``(N, D)`` or ``(D,)``; output ``(N,)`` (``(N, 1)`` with keepdim).

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.PairwiseDistance(eps=0.0)(jnp.array([[3.0, 4.0]]), jnp.zeros((1, 2)))
      Array([5.], dtype=float32)
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False, *, rngs: nnx.Rngs | None = None):
        self._build(L.PairFunction(F.pairwise_distance, (("p", p), ("eps", eps), ("keepdim", keepdim)),
                                   (("p", "norm"),)), None)

    def __call__(self, x1: jax.Array, x2: jax.Array) -> jax.Array:
        return self._forward(x1, x2=x2)


_PAD_DOC = """``torch.nn.{name}{n}d({args})``: :func:`jaxnn.functional.pad` with ``mode='{mode}'``.

    Args:
      padding: an int (the same amount on all {k} sides) or a tuple of amounts in ``F.pad``'s
        order, last dimension first: ``{order}``. As torch, a tuple is taken as it is and
        checked at the call (a shorter one pads fewer dimensions).{value}
      rngs: keyword-only, not needed (no variables).

    Shape:
      input {shape}; the padded dimensions grow by their two amounts.{extra}

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.{name}{n}d({example})(jnp.ones({ins})).shape
      {outs}
    """


class _Pad(_Layer):
    _n = 0
    _mode = "constant"

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _ConstantPad(_Pad):
    def __init__(self, padding: int | Sequence[int], value: float, *, rngs: nnx.Rngs | None = None):
        self._build(L.Pad(self._n, "constant", padding, value), None)


class _ZeroPad(_Pad):
    def __init__(self, padding: int | Sequence[int], *, rngs: nnx.Rngs | None = None):
        self._build(L.Pad(self._n, "constant", padding, 0.0), None)


class _ModePad(_Pad):
    def __init__(self, padding: int | Sequence[int], *, rngs: nnx.Rngs | None = None):
        self._build(L.Pad(self._n, self._mode, padding), None)  # type: ignore[arg-type]


class ZeroPad1d(_ZeroPad):
    _n = 1


class ZeroPad2d(_ZeroPad):
    _n = 2


class ZeroPad3d(_ZeroPad):
    _n = 3


class ConstantPad1d(_ConstantPad):
    _n = 1


class ConstantPad2d(_ConstantPad):
    _n = 2


class ConstantPad3d(_ConstantPad):
    _n = 3


class ReflectionPad1d(_ModePad):
    _n, _mode = 1, "reflect"


class ReflectionPad2d(_ModePad):
    _n, _mode = 2, "reflect"


class ReflectionPad3d(_ModePad):
    _n, _mode = 3, "reflect"


class ReplicationPad1d(_ModePad):
    _n, _mode = 1, "replicate"


class ReplicationPad2d(_ModePad):
    _n, _mode = 2, "replicate"


class ReplicationPad3d(_ModePad):
    _n, _mode = 3, "replicate"


class CircularPad1d(_ModePad):
    _n, _mode = 1, "circular"


class CircularPad2d(_ModePad):
    _n, _mode = 2, "circular"


class CircularPad3d(_ModePad):
    _n, _mode = 3, "circular"


def pad_doc(name: str, n: int, mode: str, linen: bool = False) -> str:
    """The padding modules' docstring (shared with :mod:`jaxnn.linen`)."""
    order = ("(left, right)", "(left, right, top, bottom)",
             "(left, right, top, bottom, front, back)")[n - 1]
    shape = ("``(N, C, W)`` or ``(C, W)``", "``(N, C, H, W)`` or ``(C, H, W)``",
             "``(N, C, D, H, W)`` or ``(C, D, H, W)``")[n - 1] if mode != "constant" else "any, at least " \
        f"{n}-D"
    ins = (1, 2) + (3,) * n
    outs = (1, 2) + (5,) * n
    value = "\n      value: the fill value." if name == "ConstantPad" else ""
    args = "padding, value" if name == "ConstantPad" else "padding"
    example = "1, 0.5" if name == "ConstantPad" else "1"
    extra = ("\n      Other ranks: ValueError (torch's ``expected 3D or 4D input``-style check)."
             if mode == "circular" else "")
    doc = _PAD_DOC.format(name=name, n=n, args=args, mode=mode, k=2 * n, order=order, value=value, shape=shape,
                          extra=extra, example=example, ins=ins, outs=outs)
    if linen:
        doc = doc.replace("      rngs: keyword-only, not needed (no variables).\n", "").replace(
            "import jaxnn.nnx as jn", "import jaxnn.linen as jl").replace(
            f"jn.{name}{n}d({example})(jnp.ones({ins}))", f"jl.{name}{n}d({example}).apply({{}}, jnp.ones({ins}))")
    return doc


for _c, _name in ((ZeroPad1d, "ZeroPad"), (ZeroPad2d, "ZeroPad"), (ZeroPad3d, "ZeroPad"),
                  (ConstantPad1d, "ConstantPad"), (ConstantPad2d, "ConstantPad"), (ConstantPad3d, "ConstantPad"),
                  (ReflectionPad1d, "ReflectionPad"), (ReflectionPad2d, "ReflectionPad"),
                  (ReflectionPad3d, "ReflectionPad"), (ReplicationPad1d, "ReplicationPad"),
                  (ReplicationPad2d, "ReplicationPad"), (ReplicationPad3d, "ReplicationPad"),
                  (CircularPad1d, "CircularPad"), (CircularPad2d, "CircularPad"), (CircularPad3d, "CircularPad")):
    _c.__doc__ = pad_doc(_name, _c._n, _c._mode)


class Unflatten(_Layer):
    """``torch.nn.Unflatten(dim, unflattened_size)``: splits dimension ``dim`` into ``unflattened_size``.

    Args:
      dim: an int (negative counts from the end), checked at the call.
      unflattened_size: a tuple or list of ints whose product is the size of ``dim``; one may be
        -1 (inferred).
      rngs: keyword-only, not needed (no variables).

    Shape:
      input ``(*1, S_dim, *2)``; output ``(*1, *unflattened_size, *2)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.Unflatten(1, (2, -1))(jnp.ones((3, 8))).shape
      (3, 2, 4)

    Differences from PyTorch: ``dim`` as a name (named tensors) is not supported.
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int], *, rngs: nnx.Rngs | None = None):
        self._build(L.Unflatten(dim, unflattened_size), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Bilinear(_Layer):
    """``torch.nn.Bilinear(in1_features, in2_features, out_features, bias=True, device=None,
    dtype=None)``: :func:`jaxnn.functional.bilinear`, :math:`y = x_1^T A x_2 + b`.

    Args:
      in1_features, in2_features, out_features, bias: torch's. ``device`` must be None;
        ``dtype``: the parameters' dtype. Keyword-only: ``compute_dtype``, ``rngs``.

    Shape:
      input1 ``(*, in1_features)``, input2 ``(*, in2_features)`` (same ``*``); output
      ``(*, out_features)``.

    Attributes:
      weight: ``(out_features, in1_features, in2_features)``,
        ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))``.
      bias: ``(out_features,)``, same distribution, or None.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> jn.Bilinear(3, 4, 5, rngs=nnx.Rngs(0))(jnp.ones((2, 3)), jnp.ones((2, 4))).shape
      (2, 5)
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None, *, compute_dtype: Any = None, rngs: nnx.Rngs):
        self._build(L.Bilinear(in1_features, in2_features, out_features, bias, dtype, compute_dtype), rngs, device)

    def __call__(self, input1: jax.Array, input2: jax.Array) -> jax.Array:
        return self._forward(input1, input2=input2)


# --- pooling ---------------------------------------------------------------------------------------


class _MaxPool(_Layer):
    _N = 0

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, return_indices: bool = False,
                 ceil_mode: bool = False, *, rngs: nnx.Rngs | None = None):
        self._build(L.Pool("max", self._N, (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                                             ("dilation", dilation), ("return_indices", return_indices),
                                             ("ceil_mode", ceil_mode))), None)

    def __call__(self, input: jax.Array) -> Any:
        return self._forward(input)


class _AvgPool1d(_Layer):
    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 *, rngs: nnx.Rngs | None = None):
        self._build(L.Pool("avg", 1, (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                                      ("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad))), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _AvgPool(_Layer):
    _N = 0

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._build(L.Pool("avg", self._N, (("kernel_size", kernel_size), ("stride", stride), ("padding", padding),
                                             ("ceil_mode", ceil_mode), ("count_include_pad", count_include_pad),
                                             ("divisor_override", divisor_override))), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _LPPool(_Layer):
    _N = 0

    def __init__(self, norm_type: float, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 ceil_mode: bool = False, *, rngs: nnx.Rngs | None = None):
        self._build(L.Pool("lp", self._N, (("norm_type", norm_type), ("kernel_size", kernel_size), ("stride", stride),
                                            ("ceil_mode", ceil_mode))), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _AdaptiveAvgPool(_Layer):
    _N = 0

    def __init__(self, output_size: int | None | Sequence[int | None], *, rngs: nnx.Rngs | None = None):
        self._build(L.Pool("adaptive_avg", self._N, (("output_size", output_size),)), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class _AdaptiveMaxPool(_Layer):
    _N = 0

    def __init__(self, output_size: int | None | Sequence[int | None], return_indices: bool = False,
                 *, rngs: nnx.Rngs | None = None):
        self._build(L.Pool("adaptive_max", self._N, (("output_size", output_size),
                                                      ("return_indices", return_indices))), None)

    def __call__(self, input: jax.Array) -> Any:
        return self._forward(input)


class MaxPool1d(_MaxPool):
    """``torch.nn.MaxPool1d``: :func:`jaxnn.functional.max_pool1d` with the stored arguments; no
    variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      kernel_size, stride, padding, dilation, return_indices, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.MaxPool1d(2)(jnp.ones((1, 2, 4))).shape
      (1, 2, 2)
    """

    _N = 1


class MaxPool2d(_MaxPool):
    """``torch.nn.MaxPool2d``: :func:`jaxnn.functional.max_pool2d` with the stored arguments; no
    variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      kernel_size, stride, padding, dilation, return_indices, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.MaxPool2d(2)(jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 2, 2)
    """

    _N = 2


class MaxPool3d(_MaxPool):
    """``torch.nn.MaxPool3d``: :func:`jaxnn.functional.max_pool3d` with the stored arguments; no
    variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      kernel_size, stride, padding, dilation, return_indices, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.MaxPool3d(2)(jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 2, 2, 2)
    """

    _N = 3


class AvgPool1d(_AvgPool1d):
    """``torch.nn.AvgPool1d``: :func:`jaxnn.functional.avg_pool1d` with the stored arguments; no
    variables.

    Args:
      kernel_size, stride, padding, ceil_mode, count_include_pad: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AvgPool1d(3, 2, 1)(jnp.ones((1, 2, 4))).shape
      (1, 2, 2)
    """


class AvgPool2d(_AvgPool):
    """``torch.nn.AvgPool2d``: :func:`jaxnn.functional.avg_pool2d` with the stored arguments; no
    variables.

    Args:
      kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AvgPool2d(3, 2, 1)(jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 2, 2)
    """

    _N = 2


class AvgPool3d(_AvgPool):
    """``torch.nn.AvgPool3d``: :func:`jaxnn.functional.avg_pool3d` with the stored arguments; no
    variables.

    Args:
      kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AvgPool3d(3, 2, 1)(jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 2, 2, 2)
    """

    _N = 3


class LPPool1d(_LPPool):
    """``torch.nn.LPPool1d``: :func:`jaxnn.functional.lp_pool1d` with the stored arguments; no
    variables.

    Args:
      norm_type, kernel_size, stride, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.LPPool1d(2, 2)(jnp.ones((1, 2, 4))).shape
      (1, 2, 2)
    """

    _N = 1


class LPPool2d(_LPPool):
    """``torch.nn.LPPool2d``: :func:`jaxnn.functional.lp_pool2d` with the stored arguments; no
    variables.

    Args:
      norm_type, kernel_size, stride, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.LPPool2d(2, 2)(jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 2, 2)
    """

    _N = 2


class LPPool3d(_LPPool):
    """``torch.nn.LPPool3d``: :func:`jaxnn.functional.lp_pool3d` with the stored arguments; no
    variables.

    Args:
      norm_type, kernel_size, stride, ceil_mode: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.LPPool3d(2, 2)(jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 2, 2, 2)
    """

    _N = 3


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    """``torch.nn.AdaptiveAvgPool1d``: :func:`jaxnn.functional.adaptive_avg_pool1d` with the stored arguments; no
    variables.

    Args:
      output_size: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AdaptiveAvgPool1d(3)(jnp.ones((1, 2, 4))).shape
      (1, 2, 3)
    """

    _N = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    """``torch.nn.AdaptiveAvgPool2d``: :func:`jaxnn.functional.adaptive_avg_pool2d` with the stored arguments; no
    variables.

    Args:
      output_size: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AdaptiveAvgPool2d(3)(jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 3, 3)
    """

    _N = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    """``torch.nn.AdaptiveAvgPool3d``: :func:`jaxnn.functional.adaptive_avg_pool3d` with the stored arguments; no
    variables.

    Args:
      output_size: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AdaptiveAvgPool3d(3)(jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 3, 3, 3)
    """

    _N = 3


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool1d``: :func:`jaxnn.functional.adaptive_max_pool1d` with the stored arguments; no
    variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      output_size, return_indices: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, L)`` or ``(C, L)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AdaptiveMaxPool1d(3)(jnp.ones((1, 2, 4))).shape
      (1, 2, 3)
    """

    _N = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool2d``: :func:`jaxnn.functional.adaptive_max_pool2d` with the stored arguments; no
    variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      output_size, return_indices: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, H, W)`` or ``(C, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AdaptiveMaxPool2d(3)(jnp.ones((1, 2, 4, 4))).shape
      (1, 2, 3, 3)
    """

    _N = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    """``torch.nn.AdaptiveMaxPool3d``: :func:`jaxnn.functional.adaptive_max_pool3d` with the stored arguments; no
    variables. With ``return_indices=True`` it returns
    ``(output, indices)``.

    Args:
      output_size, return_indices: torch's
        arguments and defaults, checked at the call, as torch does. ``rngs``: keyword-only, not needed.

    Shape:
      input ``(N, C, D, H, W)`` or ``(C, D, H, W)``; output the same layout with the pooled spatial sizes.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> jn.AdaptiveMaxPool3d(3)(jnp.ones((1, 2, 4, 4, 4))).shape
      (1, 2, 3, 3, 3)
    """

    _N = 3


class _MaxUnpool(_Layer):
    _N = 0

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, *, rngs: nnx.Rngs | None = None):
        self._build(L.MaxUnpool(self._N, kernel_size, stride, padding), None)

    def __call__(self, input: jax.Array, indices: jax.Array, output_size: Sequence[int] | None = None) -> jax.Array:
        return self._forward(input, indices=indices, output_size=output_size)


_UNPOOL_DOC = """``torch.nn.MaxUnpool{n}d``: :func:`jaxnn.functional.max_unpool{n}d` with the stored
    arguments; no variables. Called as torch's, ``m(input, indices, output_size=None)``.

    Args:
      kernel_size, stride, padding: torch's arguments and defaults, stored as torch stores them
        (tuples of {n}; ``stride=None`` as ``kernel_size``) and checked at the call, as torch does.
      rngs: keyword-only, not needed (no variables).

    Shape:
      input and indices ``{shape}`` or ``{unbatched}`` (``indices`` as ``MaxPool{n}d(...,
      return_indices=True)`` returns them, int32 or int64); output the same layout with
      :math:`(L_{{in}} - 1) s - 2p + k` per spatial dimension, or ``output_size``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.nnx as jn
      >>> y, i = jn.MaxPool{n}d(2, return_indices=True)(jnp.ones({example}))
      >>> jn.MaxUnpool{n}d(2)(y, i).shape
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
