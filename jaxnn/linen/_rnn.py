"""flax.linen recurrent layers with torch.nn's constructor fields and forward arguments: ``RNN``,
``LSTM``, ``GRU``, ``RNNCell``, ``LSTMCell``, ``GRUCell``. Thin shells over
:class:`jaxnn._layers.RNNBase` / :class:`jaxnn._layers.RNNCellBase`, the same descriptions as
:mod:`jaxnn.nnx`'s (see those classes for the formulas, shapes and ``lengths=``); parameters are in
``params`` under torch's names. Train/eval: ``deterministic`` (field or call argument; None means
training, torch's default); the inter-layer dropout draws ``make_rng("dropout")``.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> import jaxnn.linen as jl
  >>> gru = jl.GRU(4, 8, num_layers=2, batch_first=True)
  >>> x = jnp.ones((2, 5, 4))  # (N, L, H_in)
  >>> variables = gru.init(jax.random.key(0), x)
  >>> out, h_n = gru.apply(variables, x)
  >>> out.shape, h_n.shape
  ((2, 5, 8), (2, 2, 8))
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
from flax.core.scope import Scope

from .. import _layers as L
from ._modules import _Layer


class _RNNBase(_Layer):
    """Warns as torch's constructor does (``dropout`` with one layer) when the user builds the
    module, not again in the clones flax makes inside ``init`` / ``apply``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.parent, Scope):
            layer = self._layer()
            assert isinstance(layer, L.RNNBase)
            L.warn_rnn_dropout(layer, stacklevel=4)


class RNN(_RNNBase):
    """``torch.nn.RNN`` for flax.linen: fields are torch's arguments in torch's order, then
    keyword-only ``deterministic``. Called as ``(input, hx=None, *, lengths=None,
    deterministic=None)``; returns ``(output, h_n)``. As :class:`jaxnn.nnx.RNN`, with the key going
    to ``init``."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    nonlinearity: str = "tanh"
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def _layer(self) -> L.Layer:
        return L.RNNBase("RNN", self.input_size, self.hidden_size, self.num_layers, self.bias, self.batch_first,
                         self.dropout, self.bidirectional, 0, self.dtype, self.nonlinearity)

    @nn.compact
    def __call__(self, input: jax.Array, hx: jax.Array | None = None, *, lengths: jax.Array | None = None,
                 deterministic: bool | None = None) -> tuple[jax.Array, jax.Array]:
        return self._forward(input, mode=deterministic, hx=hx, lengths=lengths)


class LSTM(_RNNBase):
    """``torch.nn.LSTM`` for flax.linen (``proj_size`` included): fields are torch's arguments in
    torch's order, then keyword-only ``deterministic``. Called as ``(input, hx=None, *,
    lengths=None, deterministic=None)``; returns ``(output, (h_n, c_n))``. As
    :class:`jaxnn.nnx.LSTM`, with the key going to ``init``."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def _layer(self) -> L.Layer:
        return L.RNNBase("LSTM", self.input_size, self.hidden_size, self.num_layers, self.bias, self.batch_first,
                         self.dropout, self.bidirectional, self.proj_size, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array, hx: tuple[jax.Array, jax.Array] | None = None, *,
                 lengths: jax.Array | None = None,
                 deterministic: bool | None = None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        return self._forward(input, mode=deterministic, hx=hx, lengths=lengths)


class GRU(_RNNBase):
    """``torch.nn.GRU`` for flax.linen: fields are torch's arguments in torch's order, then
    keyword-only ``deterministic``. Called as ``(input, hx=None, *, lengths=None,
    deterministic=None)``; returns ``(output, h_n)``. As :class:`jaxnn.nnx.GRU`, with the key going
    to ``init``."""

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def _layer(self) -> L.Layer:
        return L.RNNBase("GRU", self.input_size, self.hidden_size, self.num_layers, self.bias, self.batch_first,
                         self.dropout, self.bidirectional, 0, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array, hx: jax.Array | None = None, *, lengths: jax.Array | None = None,
                 deterministic: bool | None = None) -> tuple[jax.Array, jax.Array]:
        return self._forward(input, mode=deterministic, hx=hx, lengths=lengths)


class RNNCell(_Layer):
    """``torch.nn.RNNCell`` for flax.linen: fields are torch's arguments in torch's order; called as
    ``(input, hx=None)``, returns ``h'``. As :class:`jaxnn.nnx.RNNCell`."""

    input_size: int
    hidden_size: int
    bias: bool = True
    nonlinearity: str = "tanh"
    device: Any = None
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.RNNCellBase("RNN", self.input_size, self.hidden_size, self.bias, self.nonlinearity, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array, hx: jax.Array | None = None) -> jax.Array:
        return self._forward(input, hx=hx)


class LSTMCell(_Layer):
    """``torch.nn.LSTMCell`` for flax.linen: fields are torch's arguments in torch's order; called
    as ``(input, hx=None)`` with ``hx = (h, c)``, returns ``(h', c')``. As :class:`jaxnn.nnx.LSTMCell`."""

    input_size: int
    hidden_size: int
    bias: bool = True
    device: Any = None
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.RNNCellBase("LSTM", self.input_size, self.hidden_size, self.bias, None, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array,
                 hx: tuple[jax.Array, jax.Array] | None = None) -> tuple[jax.Array, jax.Array]:
        return self._forward(input, hx=hx)


class GRUCell(_Layer):
    """``torch.nn.GRUCell`` for flax.linen: fields are torch's arguments in torch's order; called as
    ``(input, hx=None)``, returns ``h'``. As :class:`jaxnn.nnx.GRUCell`."""

    input_size: int
    hidden_size: int
    bias: bool = True
    device: Any = None
    dtype: Any = None

    def _layer(self) -> L.Layer:
        return L.RNNCellBase("GRU", self.input_size, self.hidden_size, self.bias, None, self.dtype)

    @nn.compact
    def __call__(self, input: jax.Array, hx: jax.Array | None = None) -> jax.Array:
        return self._forward(input, hx=hx)
