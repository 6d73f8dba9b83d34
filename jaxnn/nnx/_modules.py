"""flax.nnx modules with torch.nn's constructor signatures, parameter names and layouts.

Each class is a short shell over a layer description in :mod:`jaxnn._layers` (validated
configuration, named variables with kind and initialiser, apply). Constructors take torch's
arguments in torch's order, ``device`` and ``dtype`` included (``dtype`` is the parameters' dtype, as
in torch; ``device`` must be None: JAX places arrays itself). jaxnn's own arguments come after
them, keyword-only: ``rngs``, ``compute_dtype`` (flax's computation dtype), ``channels_last``,
``precision``. Modules are called with torch's forward arguments (``input``, ...).

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
    torch's ``forward(input, output_size)``. Arguments as :class:`Conv{n}d`'s, in torch's order
    (``output_padding`` after ``padding``, ``groups`` before ``dilation``).

    Attributes:
      weight: ``nnx.Param`` ``(in_channels, out_channels / groups, *kernel_size)``.
      bias: ``nnx.Param`` ``(out_channels,)`` or None.
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
    _c.__doc__ = _CONV_T_DOC.format(n=_c._n)


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

    Channels at dim 1 (or last with ``channels_last=True``). Keyword-only extras:
    ``channels_last``, ``compute_dtype``, ``rngs`` (not needed: the initialisers are constants).

    Attributes:
      weight: ``(num_channels,)`` ones, or None (``affine=False``).
      bias: ``(num_channels,)`` zeros, or None.

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
    device=None, dtype=None)``: :func:`jaxnn.functional.layer_norm`. Keyword-only extras:
    ``compute_dtype``, ``rngs`` (not needed)."""

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

    Shape:
      input {shape}; output the same.

    Attributes:
      weight, bias: ``nnx.Param`` ``(num_features,)`` ones / zeros, or None (``affine=False``).
      running_mean, running_var: ``nnx.BatchStat`` ``(num_features,)`` zeros / ones, or None.
      num_batches_tracked: ``nnx.BatchStat`` scalar counter, or None.
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
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._build(L.Dropout(p, inplace), rngs)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class GEGLU(nnx.Module):
    """diffusers' ``GEGLU(dim_in, dim_out, bias=True)``: ``proj = Linear(dim_in, 2 * dim_out)``;
    ``h, gate = proj(hidden_states).chunk(2, -1)``; ``h * gelu(gate)`` (exact gelu unless
    ``approximate``). Keyword-only extras: ``approximate``, ``dtype`` (the parameters'),
    ``compute_dtype``, ``rngs``.

    Differences from diffusers: the call takes ``hidden_states`` only (diffusers' deprecated,
    ignored ``scale`` argument is not accepted).
    """

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True, *, approximate: L.Approximate = "none",
                 dtype: Any = None, compute_dtype: Any = None, rngs: nnx.Rngs):
        self.act = GELU(approximate)
        self.proj = Linear(dim_in, 2 * dim_out, bias, dtype=dtype, compute_dtype=compute_dtype, rngs=rngs)

    @property
    def approximate(self) -> str:
        return self.act.approximate

    @property
    def training(self) -> bool:
        """torch's ``module.training`` (follows ``model.train()`` / ``model.eval()``)."""
        return self.proj.training

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return F.geglu(self.proj(hidden_states), -1, self.approximate)


class PReLU(_Layer):
    """``torch.nn.PReLU(num_parameters=1, init=0.25, device=None, dtype=None)``:
    :func:`jaxnn.functional.prelu` with a learnable ``weight`` ``(num_parameters,)`` filled with
    ``init``. ``device`` must be None."""

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
    """``torch.nn.ReLU(inplace=False)``: :func:`jaxnn.functional.relu`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.relu, inplace)


class ReLU6(_Activation):
    """``torch.nn.ReLU6(inplace=False)``: :func:`jaxnn.functional.relu6`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.relu6, inplace)


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU(negative_slope=0.01, inplace=False)``: :func:`jaxnn.functional.leaky_relu`."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.leaky_relu, inplace, negative_slope=negative_slope)


class ELU(_Activation):
    """``torch.nn.ELU(alpha=1.0, inplace=False)``: :func:`jaxnn.functional.elu`."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.elu, inplace, alpha=alpha)


class SELU(_Activation):
    """``torch.nn.SELU(inplace=False)``: :func:`jaxnn.functional.selu`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.selu, inplace)


class CELU(_Activation):
    """``torch.nn.CELU(alpha=1.0, inplace=False)``: :func:`jaxnn.functional.celu`."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.celu, inplace, alpha=alpha)


class GELU(_Activation):
    """``torch.nn.GELU(approximate='none')``: :func:`jaxnn.functional.gelu` (exact by default)."""

    def __init__(self, approximate: L.Approximate = "none", *, rngs: nnx.Rngs | None = None):
        self._act(F.gelu, approximate=approximate)


class SiLU(_Activation):
    """``torch.nn.SiLU(inplace=False)``: :func:`jaxnn.functional.silu`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.silu, inplace)


class Mish(_Activation):
    """``torch.nn.Mish(inplace=False)``: :func:`jaxnn.functional.mish`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.mish, inplace)


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid()``: :func:`jaxnn.functional.sigmoid`."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.sigmoid)


class Tanh(_Activation):
    """``torch.nn.Tanh()``: :func:`jaxnn.functional.tanh`."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.tanh)


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh(min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
    max_value=None)``: :func:`jaxnn.functional.hardtanh`. ``min_value``/``max_value`` are torch's
    deprecated spellings (FutureWarning); ``max_val`` must be greater than ``min_val``."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None, *,
                 rngs: nnx.Rngs | None = None):
        min_val, max_val = L.hardtanh_bounds(min_val, max_val, min_value, max_value, warn=True)
        self._act(F.hardtanh, inplace, min_val=min_val, max_val=max_val)


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid(inplace=False)``: :func:`jaxnn.functional.hardsigmoid`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.hardsigmoid, inplace)


class Hardswish(_Activation):
    """``torch.nn.Hardswish(inplace=False)``: :func:`jaxnn.functional.hardswish`."""

    def __init__(self, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.hardswish, inplace)


class Softplus(_Activation):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)``: :func:`jaxnn.functional.softplus`."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0, *, rngs: nnx.Rngs | None = None):
        self._act(F.softplus, beta=beta, threshold=threshold)


class Softsign(_Activation):
    """``torch.nn.Softsign()``: :func:`jaxnn.functional.softsign`."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.softsign)


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid()``: :func:`jaxnn.functional.logsigmoid`."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.logsigmoid)


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink()``: :func:`jaxnn.functional.tanhshrink`."""

    def __init__(self, *, rngs: nnx.Rngs | None = None):
        self._act(F.tanhshrink)


class Softshrink(_Activation):
    """``torch.nn.Softshrink(lambd=0.5)``: :func:`jaxnn.functional.softshrink`."""

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self._act(F.softshrink, lambd=lambd)


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink(lambd=0.5)``: :func:`jaxnn.functional.hardshrink`."""

    def __init__(self, lambd: float = 0.5, *, rngs: nnx.Rngs | None = None):
        self._act(F.hardshrink, lambd=lambd)


class Threshold(_Activation):
    """``torch.nn.Threshold(threshold, value, inplace=False)``: :func:`jaxnn.functional.threshold`."""

    def __init__(self, threshold: float, value: float, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        self._act(F.threshold, inplace, threshold=threshold, value=value)


class GLU(_Activation):
    """``torch.nn.GLU(dim=-1)``: :func:`jaxnn.functional.glu`."""

    def __init__(self, dim: int = -1, *, rngs: nnx.Rngs | None = None):
        self._act(F.glu, dim=dim)


class Softmax(_Activation):
    """``torch.nn.Softmax(dim=None)``: :func:`jaxnn.functional.softmax` (``dim=None`` warns, as torch)."""

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._act(F.softmax, dim=dim)


class LogSoftmax(_Activation):
    """``torch.nn.LogSoftmax(dim=None)``: :func:`jaxnn.functional.log_softmax`."""

    def __init__(self, dim: int | None = None, *, rngs: nnx.Rngs | None = None):
        self._act(F.log_softmax, dim=dim)


class Identity(_Layer):
    """``torch.nn.Identity``: returns its input (any constructor arguments are ignored, as torch's)."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._build(L.Identity(), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


class Flatten(_Layer):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)``: the dims are checked against the input at the
    call, as torch does (``Flatten(2, 1)`` fails on any input)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        self._build(L.Flatten(start_dim, end_dim), None)

    def __call__(self, input: jax.Array) -> jax.Array:
        return self._forward(input)


def _children_training(children: Iterable[Any]) -> bool:
    """A container's ``training``: False once ``model.eval()`` has switched its children."""
    return all(getattr(m, "training", True) for m in children)


class ModuleList(nnx.List):
    """``torch.nn.ModuleList(modules=None)``: children are addressed by index, so state_dict keys
    read ``blocks.0.weight`` exactly as torch's."""

    def __init__(self, modules: Iterable[Any] | None = None):
        super().__init__(modules)

    @property
    def training(self) -> bool:
        """torch's ``module.training``: False after ``model.eval()``, True after ``model.train()``."""
        return _children_training(self)


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

    @property
    def training(self) -> bool:
        """torch's ``module.training``: False after ``model.eval()``, True after ``model.train()``."""
        return _children_training(self)

    def __call__(self, input: Any) -> Any:
        for m in self:
            input = m(input)
        return input
