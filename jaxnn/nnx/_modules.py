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


_KINDS: dict[str, type[nnx.Variable]] = {"parameter": nnx.Param, "buffer": nnx.BatchStat, "nonpersistent": Buffer}


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
