"""flax.nnx recurrent layers with torch.nn's constructor and forward signatures: ``RNN``, ``LSTM``,
``GRU``, ``RNNCell``, ``LSTMCell``, ``GRUCell``. Thin shells over :class:`jaxnn._layers.RNNBase` /
:class:`jaxnn._layers.RNNCellBase`; parameters are ``nnx.Param`` under torch's names
(``weight_ih_l0``, ``weight_hh_l0_reverse``, ``bias_ih_l1``, ``weight_hr_l0``, ...), so
``jaxnn.nnx.load_state_dict`` takes a torch state_dict as it is.

Examples:
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> import jaxnn.nnx as jn
  >>> lstm = jn.LSTM(4, 8, num_layers=2, bidirectional=True, proj_size=3, rngs=nnx.Rngs(0))
  >>> out, (h_n, c_n) = lstm(jnp.ones((5, 2, 4)))  # (L, N, H_in)
  >>> out.shape, h_n.shape, c_n.shape
  ((5, 2, 6), (4, 2, 3), (4, 2, 8))
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from .. import _layers as L
from ._modules import _Layer

_RNN_DOC = """

    The recurrence runs as one ``lax.scan`` per layer and direction (a sequence compiles once,
    whatever its length), after one matmul for the input projection of all timesteps, as torch's
    CPU kernel and cuDNN do.

    Args:
      input_size, hidden_size, num_layers, {extra}bias, batch_first, dropout, bidirectional:
        torch's, in torch's order, with torch's checks. ``dropout`` acts on every layer's output
        but the last, in training mode (with a warning when ``num_layers == 1``, as torch's).
      device: must be None. dtype: the parameters' dtype (float32 by default).
      rngs: keyword-only; ``rngs.params()`` initialises the parameters, the ``dropout`` stream
        draws the inter-layer dropout in training mode (needed only when ``dropout > 0`` and
        ``num_layers > 1``).

    Call: ``(input, hx=None, *, lengths=None)``.
      input: ``(L, N, H_in)``, ``(N, L, H_in)`` with ``batch_first``, or unbatched ``(L, H_in)``;
        its dtype must be the parameters'.
      hx: {hx}
      lengths: keyword-only jaxnn extension standing in for torch's ``PackedSequence``: ``(N,)``
        integers in ``[1, L]``. The result equals torch's on
        ``pack_padded_sequence(input, lengths, enforce_sorted=False)`` followed by
        ``pad_packed_sequence(output, total_length=L)``: outputs past each length are zeros, each
        sequence's final state is taken at its own last element, and the reverse direction starts
        there. Checked against ``L`` when concrete (not under ``jit``).

    Returns:
      {returns} ``D = 2`` if bidirectional else 1; ``H_out = {hout}``.

    Attributes:
      weight_ih_l{{k}}: ``({gates}*hidden_size, input_size)`` for ``k = 0``, ``({gates}*hidden_size,
        D * H_out)`` after; weight_hh_l{{k}}: ``({gates}*hidden_size, H_out)``; bias_ih_l{{k}},
        bias_hh_l{{k}}: ``({gates}*hidden_size,)`` (absent with ``bias=False``){proj}; the reverse
        direction's with the suffix ``_reverse``. All ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``,
        torch's ``reset_parameters``.

    Dtypes: the input's dtype must be the parameters' (torch's rule). float16/bfloat16 compute each op
    in float32 and round where torch's native CPU kernels store a result (matmuls accumulate in
    float32 with the bias, rounded once): bit for bit those kernels' results. oneDNN's fused LSTM,
    torch's default on CPUs that have it, keeps bfloat16 gates in float32: the same to rounding.

    Differences from PyTorch: ``PackedSequence`` input is replaced by ``lengths=`` (the padded
    output keeps the input's length ``L``, i.e. ``pad_packed_sequence(..., total_length=L)``); the
    dropout mask comes from the ``dropout`` stream, not torch's global RNG; errors are ValueError /
    TypeError where torch raises RuntimeError.
    """

_H = ("``(D * num_layers, N, H_out)`` or unbatched ``(D * num_layers, H_out)``; zeros when None.")
_H_LSTM = ("a pair ``(h_0, c_0)``: ``h_0`` ``(D * num_layers, N, H_out)``, ``c_0`` ``(D * num_layers, N, "
           "hidden_size)`` (unbatched: without ``N``); zeros when None.")


class RNN(_Layer):
    """``torch.nn.RNN`` (Elman, tanh or ReLU) as a flax.nnx module:
    :math:`h_t = \\tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})` per layer."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None, *, rngs: nnx.Rngs):
        layer = L.RNNBase("RNN", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                              0, dtype, nonlinearity)
        self._build(layer, rngs, device)
        L.warn_rnn_dropout(layer)

    def __call__(self, input: jax.Array, hx: jax.Array | None = None, *,
                 lengths: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        return self._forward(input, hx=hx, lengths=lengths)


class LSTM(_Layer):
    """``torch.nn.LSTM`` as a flax.nnx module: gates ``i, f, g, o`` in torch's order,
    :math:`c_t = f \\odot c_{t-1} + i \\odot g`, :math:`h_t = o \\odot \\tanh(c_t)` (times
    :math:`W_{hr}^T` with ``proj_size > 0``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None, *, rngs: nnx.Rngs):
        layer = L.RNNBase("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                              proj_size, dtype)
        self._build(layer, rngs, device)
        L.warn_rnn_dropout(layer)

    def __call__(self, input: jax.Array, hx: tuple[jax.Array, jax.Array] | None = None, *,
                 lengths: jax.Array | None = None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        return self._forward(input, hx=hx, lengths=lengths)


class GRU(_Layer):
    """``torch.nn.GRU`` as a flax.nnx module: gates ``r, z, n`` in torch's order,
    :math:`n_t = \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn}))`,
    :math:`h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None, *, rngs: nnx.Rngs):
        layer = L.RNNBase("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                              0, dtype)
        self._build(layer, rngs, device)
        L.warn_rnn_dropout(layer)

    def __call__(self, input: jax.Array, hx: jax.Array | None = None, *,
                 lengths: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        return self._forward(input, hx=hx, lengths=lengths)


RNN.__doc__ = (RNN.__doc__ or "") + _RNN_DOC.format(
    extra="nonlinearity (``'tanh'`` or ``'relu'``), ", hx=_H, hout="hidden_size", gates="", proj="",
    returns="``(output, h_n)``: output ``(L, N, D * H_out)`` (batch_first: ``(N, L, D * H_out)``; unbatched "
    "``(L, D * H_out)``), h_n like ``hx``.")
LSTM.__doc__ = (LSTM.__doc__ or "") + _RNN_DOC.format(
    extra="", hx=_H_LSTM, hout="proj_size if proj_size > 0 else hidden_size", gates="4",
    proj="; weight_hr_l{k}: ``(proj_size, hidden_size)`` with ``proj_size > 0`` (``proj_size`` after "
    "``bidirectional``, as torch's; must be smaller than ``hidden_size``)",
    returns="``(output, (h_n, c_n))``: output ``(L, N, D * H_out)`` (batch_first: ``(N, L, D * H_out)``; "
    "unbatched ``(L, D * H_out)``), h_n ``(D * num_layers, N, H_out)``, c_n ``(D * num_layers, N, hidden_size)``.")
GRU.__doc__ = (GRU.__doc__ or "") + _RNN_DOC.format(
    extra="", hx=_H, hout="hidden_size", gates="3", proj="",
    returns="``(output, h_n)``: output ``(L, N, D * H_out)`` (batch_first: ``(N, L, D * H_out)``; unbatched "
    "``(L, D * H_out)``), h_n like ``hx``.")

_CELL_DOC = """

    One step of :class:`{seq}`'s recurrence (same gate order and formula).

    Args:
      input_size, hidden_size, bias{extra}: torch's, in torch's order. device: must be None.
      dtype: the parameters' dtype. rngs: keyword-only; ``rngs.params()`` initialises them.

    Call: ``(input, hx=None)``: input ``(N, input_size)`` or unbatched ``(input_size,)``; hx
      {hx}; zeros when None.

    Returns:
      {returns}

    Attributes:
      weight_ih ``({g}hidden_size, input_size)``, weight_hh ``({g}hidden_size, hidden_size)``,
      bias_ih, bias_hh ``({g}hidden_size,)`` (None with ``bias=False``), all
      ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.

    Differences from PyTorch: errors are ValueError / TypeError where torch raises RuntimeError.
    """


class RNNCell(_Layer):
    """``torch.nn.RNNCell`` as a flax.nnx module: :math:`h' = \\tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})`."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Any = None, dtype: Any = None, *, rngs: nnx.Rngs):
        self._build(L.RNNCellBase("RNN", input_size, hidden_size, bias, nonlinearity, dtype), rngs, device)

    def __call__(self, input: jax.Array, hx: jax.Array | None = None) -> jax.Array:
        return self._forward(input, hx=hx)


class LSTMCell(_Layer):
    """``torch.nn.LSTMCell`` as a flax.nnx module (gates ``i, f, g, o``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None,
                 *, rngs: nnx.Rngs):
        self._build(L.RNNCellBase("LSTM", input_size, hidden_size, bias, None, dtype), rngs, device)

    def __call__(self, input: jax.Array,
                 hx: tuple[jax.Array, jax.Array] | None = None) -> tuple[jax.Array, jax.Array]:
        return self._forward(input, hx=hx)


class GRUCell(_Layer):
    """``torch.nn.GRUCell`` as a flax.nnx module (gates ``r, z, n``, torch's placement of ``b_hn``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None, dtype: Any = None,
                 *, rngs: nnx.Rngs):
        self._build(L.RNNCellBase("GRU", input_size, hidden_size, bias, None, dtype), rngs, device)

    def __call__(self, input: jax.Array, hx: jax.Array | None = None) -> jax.Array:
        return self._forward(input, hx=hx)


RNNCell.__doc__ = (RNNCell.__doc__ or "") + _CELL_DOC.format(
    seq="RNN", extra=", nonlinearity (``'tanh'`` or ``'relu'``; checked at the call, as torch's)", g="",
    hx="``(N, hidden_size)`` / ``(hidden_size,)``", returns="``h'`` like ``hx``.")
LSTMCell.__doc__ = (LSTMCell.__doc__ or "") + _CELL_DOC.format(
    seq="LSTM", extra="", g="4*", hx="a pair ``(h, c)``, each ``(N, hidden_size)`` / ``(hidden_size,)``",
    returns="``(h', c')``.")
GRUCell.__doc__ = (GRUCell.__doc__ or "") + _CELL_DOC.format(
    seq="GRU", extra="", g="3*", hx="``(N, hidden_size)`` / ``(hidden_size,)``", returns="``h'`` like ``hx``.")
