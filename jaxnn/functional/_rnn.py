"""Recurrent layers (``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and their cells) as pure functions.

torch has no public functional RNN (``torch._VF.lstm`` is internal), so these helpers are private:
:mod:`jaxnn._layers` (``RNNBase``, ``RNNCellBase``) validates the configuration and calls them.

The recurrences are torch's CPU kernels' (aten/src/ATen/native/RNN.cpp), gates in torch's order:

- RNN: :math:`h' = \\tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})` (or ReLU);
- LSTM, gates ``i, f, g, o``: :math:`c' = f \\odot c + i \\odot g`, :math:`h' = o \\odot \\tanh(c')`,
  then :math:`h' W_{hr}^T` with ``proj_size > 0``;
- GRU, gates ``r, z, n``: :math:`n = \\tanh(W_{in} x + b_{in} + r \\odot (W_{hn} h + b_{hn}))`,
  :math:`h' = (h - n) \\odot z + n` (torch's order of operations for :math:`(1 - z) n + z h`).

The input projection :math:`x W_{ih}^T + b_{ih}` of all timesteps is one matmul before the time
loop (as torch's CPU path and cuDNN do); the loop is one ``lax.scan`` per layer and direction, so a
sequence compiles once whatever its length. ``lengths`` (per-sequence lengths, jaxnn's stand-in for
a ``PackedSequence``) masks the recurrence: a sequence's state stops changing after its last element,
its outputs there are zeros (``pad_packed_sequence``'s padding) and the reverse direction starts at
its own last element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .._utils import stat_dtype
from ._dropout import dropout as _dropout

Params = Mapping[str, Any]


def _linear(x: jax.Array, w: jax.Array, b: jax.Array | None) -> jax.Array:
    """``x @ w.T + b`` as torch's ``at::linear`` (``addmm``): for half inputs the product is
    accumulated in float32, the bias added there, and the sum rounded once."""
    acc = stat_dtype(x.dtype)
    y = lax.dot_general(x, w, (((x.ndim - 1,), (1,)), ((), ())),
                        preferred_element_type=None if acc == x.dtype else acc,
                        precision=lax.Precision.HIGHEST)
    if b is not None:
        y = y + jnp.reshape(b, (1,) * (y.ndim - 1) + b.shape).astype(y.dtype)
    return y.astype(x.dtype)


def rnn_cell_step(mode: str, xw: jax.Array, h: jax.Array, c: jax.Array | None, w_hh: jax.Array,
                  b_hh: jax.Array | None, w_hr: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
    """One step from the precomputed input projection ``xw`` (``x W_ih^T + b_ih``), ``(N, G)``.
    Returns ``(h', c')`` (``c'`` None except for LSTM).

    float16/bfloat16: each op is computed in float32 and rounded to the input dtype where torch's
    kernels store a result (the matmuls accumulate in float32 with the bias and round once);
    bfloat16 roundings use ``lax.reduce_precision`` so that XLA keeps them."""
    from ._activation import _round

    dtype = xw.dtype
    acc = stat_dtype(dtype)

    def rd(v: jax.Array) -> jax.Array:
        return _round(v, dtype)

    hw = _linear(h, w_hh, b_hh).astype(acc)
    xw, h = xw.astype(acc), h.astype(acc)
    if mode == "LSTM":
        assert c is not None
        gates = rd(hw + xw)
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        i, f, g, o = rd(jax.nn.sigmoid(i)), rd(jax.nn.sigmoid(f)), rd(jnp.tanh(g)), rd(jax.nn.sigmoid(o))
        c_new = rd(rd(f * c.astype(acc)) + rd(i * g))
        h_new = rd(o * rd(jnp.tanh(c_new))).astype(dtype)
        if w_hr is not None:
            h_new = _linear(h_new, w_hr, None)
        return h_new, c_new.astype(dtype)
    if mode == "GRU":
        xr, xz, xn = jnp.split(xw, 3, axis=-1)
        hr, hz, hn = jnp.split(hw, 3, axis=-1)
        r = rd(jax.nn.sigmoid(rd(hr + xr)))
        z = rd(jax.nn.sigmoid(rd(hz + xz)))
        n = rd(jnp.tanh(rd(xn + rd(hn * r))))
        return rd(rd(rd(h - n) * z) + n).astype(dtype), None
    pre = rd(hw + xw)
    return (jnp.tanh(pre) if mode == "RNN_TANH" else jax.nn.relu(pre)).astype(dtype), None


def _direction(mode: str, xw: jax.Array, h0: jax.Array, c0: jax.Array | None, p: Params, mask: jax.Array | None,
               reverse: bool) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """One layer, one direction over time-major ``xw`` ``(T, N, G)``: ``(outputs, h_T, c_T)``."""

    def step(carry, xs):
        h, c = carry
        x_t, m_t = xs
        h_new, c_new = rnn_cell_step(mode, x_t, h, c, p["w_hh"], p["b_hh"], p["w_hr"])
        if m_t is not None:  # past a sequence's length: state unchanged, output zero
            h_new = jnp.where(m_t, h_new, h)
            if c is not None and c_new is not None:
                c_new = jnp.where(m_t, c_new, c)
            out = jnp.where(m_t, h_new, jnp.zeros_like(h_new))
        else:
            out = h_new
        return (h_new, c_new), out

    (h_t, c_t), outs = lax.scan(step, (h0, c0), (xw, mask), reverse=reverse)
    return outs, h_t, c_t


def rnn_forward(mode: str, input: jax.Array, h0: jax.Array, c0: jax.Array | None, params: Sequence[Params],
                num_layers: int, bidirectional: bool, dropout: float, training: bool,
                lengths: jax.Array | None, rng: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """The stacked recurrence on time-major ``input`` ``(T, N, input_size)``.

    ``h0`` ``(num_layers * D, N, H_out)``, ``c0`` ``(num_layers * D, N, hidden_size)`` (LSTM) or
    None; ``params[l * D + d]`` has ``w_ih``, ``w_hh``, ``b_ih``, ``b_hh``, ``w_hr`` (None where
    absent). Dropout with probability ``dropout`` (``rng`` split once per layer) acts on every layer's
    output but the last, in training. Returns ``(output (T, N, D * H_out), h_n, c_n)``.
    """
    T = input.shape[0]
    D = 2 if bidirectional else 1
    mask = None
    if lengths is not None:
        mask = (jnp.arange(T)[:, None] < jnp.asarray(lengths)[None, :])[:, :, None]
    keys = jax.random.split(rng, num_layers - 1) if rng is not None and num_layers > 1 else None
    x = input
    if mask is not None:  # padding never reaches the arithmetic: nan/inf there cannot poison the gradients
        x = jnp.where(mask, x, jnp.zeros((), x.dtype))
    h_n: list[jax.Array] = []
    c_n: list[jax.Array] = []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            p = params[k]
            xw = _linear(x, p["w_ih"], p["b_ih"])
            out, h_t, c_t = _direction(mode, xw, h0[k], None if c0 is None else c0[k], p, mask, reverse=d == 1)
            outs.append(out)
            h_n.append(h_t)
            if c_t is not None:
                c_n.append(c_t)
        x = outs[0] if D == 1 else jnp.concatenate(outs, axis=-1)
        if layer < num_layers - 1 and training and dropout > 0.0:
            x = _dropout(x, dropout, True, rng=None if keys is None else keys[layer])
    return x, jnp.stack(h_n), (jnp.stack(c_n) if c0 is not None else None)
