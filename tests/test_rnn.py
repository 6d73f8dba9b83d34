"""nn.RNN / nn.LSTM / nn.GRU and their cells against torch: the same state_dict loaded strictly into
the jaxnn twin, outputs and final states and the gradients of every parameter, input and initial
state (jax.vjp of the linen apply against torch autograd), nnx == linen bit for bit, ``lengths=``
against packed sequences, dropout between layers, the scan's compiled size, torch's errors."""

from __future__ import annotations

import math
import warnings

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch_ref import adamw_losses, assert_close, reduction_tol

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn
from jaxnn import _layers as L

# torch falls back from oneDNN to its default kernel for LSTMs with projections, and says so
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN:UserWarning")

MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "LSTM_PROJ", "GRU"]
IN, HID, PROJ = 3, 5, 2

OUT_TOL = dict(rtol=1e-5, atol=1e-6)
GRAD_TOL = dict(rtol=1e-4, atol=1e-5)  # sums over T timesteps and the batch: see _grad_tol


def _grad_tol(T: int, N: int) -> dict:
    """Parameter gradients sum T * N outer products of gate derivatives: reduction_tol's growth."""
    r = max(1e-5, 8 * reduction_tol(T * N * HID))
    return dict(rtol=r, atol=r)


def _kind(mode: str) -> str:
    return {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "LSTM_PROJ": "LSTM", "GRU": "GRU"}[mode]


def _config(mode: str, num_layers: int, bidirectional: bool, batch_first: bool, bias: bool, dropout: float = 0.0):
    cfg = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, dropout=dropout, bidirectional=bidirectional)
    if mode.startswith("RNN"):
        cfg["nonlinearity"] = "tanh" if mode == "RNN_TANH" else "relu"
    if mode == "LSTM_PROJ":
        cfg["proj_size"] = PROJ
    return cfg


def _twins(mode, seed=0, **cfg):
    torch.manual_seed(seed)
    t = getattr(torch.nn, _kind(mode))(IN, HID, **cfg)
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    j = getattr(jn, _kind(mode))(IN, HID, **cfg, rngs=nnx.Rngs(0))
    jn.load_state_dict(j, sd)  # strict
    lm = getattr(jl, _kind(mode))(IN, HID, **cfg)
    return t, sd, j, lm


def _linen_params(lm, sd, x, hx):
    variables = lm.init(jax.random.key(1), jnp.asarray(x), hx, deterministic=True)
    variables, _ = jl.load_state_dict(variables, sd)  # strict
    return variables["params"]


def _flat_state(state, lstm):
    return list(state) if lstm else [state]


def _compare(mode, t, sd, j, lm, x, hx, *, lengths=None, T=None, seed=0, out_tol=OUT_TOL, grad_tol=None):
    """Outputs, final states and gradients (parameters, input, initial states) against torch."""
    lstm = _kind(mode) == "LSTM"
    batch_first = t.batch_first
    rng = np.random.default_rng(seed)
    t.zero_grad()
    # torch
    tx = torch.tensor(x, requires_grad=True)
    thx = None if hx is None else tuple(torch.tensor(h, requires_grad=True) for h in hx)
    t_hx = None if thx is None else (thx if lstm else thx[0])
    if lengths is None:
        t_out, t_state = t(tx, t_hx)
    else:
        packed = pack_padded_sequence(tx, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
        t_out, t_state = t(packed, t_hx)
        t_out, _ = pad_packed_sequence(t_out, batch_first=batch_first, total_length=x.shape[1 if batch_first else 0])
    t_states = _flat_state(t_state, lstm)
    cots = [rng.standard_normal(tuple(t_out.shape)).astype(np.float32)]
    cots += [rng.standard_normal(tuple(s.shape)).astype(np.float32) for s in t_states]
    loss = sum((o * torch.tensor(c)).sum() for o, c in zip([t_out, *t_states], cots, strict=True))
    loss.backward()
    t_params = dict(t.named_parameters())

    # jaxnn: linen (differentiated) and nnx (the same numbers, bit for bit)
    j_hx = None if hx is None else (tuple(jnp.asarray(h) for h in hx) if lstm else jnp.asarray(hx[0]))
    j_len = None if lengths is None else jnp.asarray(lengths)
    params = _linen_params(lm, sd, x, j_hx)
    assert list(params) == list(sd)  # torch's names in torch's order

    def run(params, x, hx):
        out, state = lm.apply({"params": params}, x, hx, lengths=j_len, deterministic=True)
        return [out, *_flat_state(state, lstm)]

    outs, vjp = jax.vjp(jax.jit(run), params, jnp.asarray(x), j_hx)  # jit: one compilation
    j.eval()
    n_out, n_state = j(jnp.asarray(x), j_hx, lengths=j_len)
    for a, b in zip(run(params, jnp.asarray(x), j_hx), [n_out, *_flat_state(n_state, lstm)], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # nnx == linen, the same program
    for a, b, what in zip(outs, [t_out, *t_states], ["output", "h_n", "c_n"], strict=False):
        assert_close(a, b.detach().numpy(), what=what, **out_tol)
    g_params, g_x, g_hx = vjp([jnp.asarray(c) for c in cots])
    gt = grad_tol or _grad_tol(x.shape[0] * x.shape[1] if x.ndim == 3 else x.shape[0], 1)
    for name, g in g_params.items():
        assert_close(g, t_params[name].grad.numpy(), what=f"grad {name}", **gt)
    assert_close(g_x, tx.grad.numpy(), what="grad input", **gt)
    if hx is not None:
        for i, (g, th) in enumerate(zip(_flat_state(g_hx, lstm), thx, strict=True)):
            assert_close(g, th.grad.numpy(), what=f"grad hx[{i}]", **gt)


def _inputs(mode, cfg, T, N, unbatched, with_hx, seed=0):
    rng = np.random.default_rng(seed)
    D = 2 if cfg["bidirectional"] else 1
    LD = cfg["num_layers"] * D
    h_out = PROJ if mode == "LSTM_PROJ" else HID
    if unbatched:
        x = rng.standard_normal((T, IN)).astype(np.float32)
    elif cfg["batch_first"]:
        x = rng.standard_normal((N, T, IN)).astype(np.float32)
    else:
        x = rng.standard_normal((T, N, IN)).astype(np.float32)
    hx = None
    if with_hx:
        lead = (LD,) if unbatched else (LD, N)
        hx = [rng.standard_normal(lead + (h_out,)).astype(np.float32)]
        if _kind(mode) == "LSTM":
            hx.append(rng.standard_normal(lead + (HID,)).astype(np.float32))
    return x, hx


# Every mode x num_layers x bidirectional, with the 16 combinations of the four switches
# (batch_first, bias, initial states given, unbatched) cycled through them: each switch pattern
# and each mode/depth/direction appears.
TABLE = []
for _i, (_mode, _layers, _bidir) in enumerate((m, n, b) for m in MODES for n in (1, 2) for b in (False, True)):
    for _j in (0, 1):
        _bits = (_i * 2 + _j) % 16
        TABLE.append((_mode, _layers, _bidir, bool(_bits & 1), bool(_bits & 2), bool(_bits & 4), bool(_bits & 8)))


@pytest.mark.parametrize("mode,num_layers,bidirectional,batch_first,bias,with_hx,unbatched", TABLE)
def test_rnn_matches_torch(mode, num_layers, bidirectional, batch_first, bias, with_hx, unbatched):
    cfg = _config(mode, num_layers, bidirectional, batch_first, bias)
    t, sd, j, lm = _twins(mode, **cfg)
    x, hx = _inputs(mode, cfg, T=4, N=3, unbatched=unbatched, with_hx=with_hx)
    _compare(mode, t, sd, j, lm, x, hx)


@settings(max_examples=12)
@given(mode=st.sampled_from(MODES), num_layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), bias=st.booleans(), with_hx=st.booleans(), T=st.integers(1, 6),
       N=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_rnn_matches_torch_hypothesis(mode, num_layers, bidirectional, batch_first, bias, with_hx, T, N, seed):
    cfg = _config(mode, num_layers, bidirectional, batch_first, bias)
    t, sd, j, lm = _twins(mode, seed=seed, **cfg)
    x, hx = _inputs(mode, cfg, T=T, N=N, unbatched=False, with_hx=with_hx, seed=seed)
    _compare(mode, t, sd, j, lm, x, hx, seed=seed)


@pytest.mark.parametrize("mode", ["LSTM", "LSTM_PROJ", "GRU", "RNN_TANH"])
def test_fifty_steps_within_1e5(mode):
    """Over 50 steps the recurrence stays within ~1e-5 relative of torch (errors do not blow up)."""
    cfg = _config(mode, 2, True, False, True)
    t, sd, j, lm = _twins(mode, **cfg)
    x, hx = _inputs(mode, cfg, T=50, N=2, unbatched=False, with_hx=True)
    _compare(mode, t, sd, j, lm, x, hx, out_tol=dict(rtol=1e-5, atol=2e-6), grad_tol=dict(rtol=1e-4, atol=1e-5))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_match_packed_sequences(mode, bidirectional, batch_first):
    """``lengths=`` gives pack_padded_sequence(enforce_sorted=False) + pad_packed_sequence's output
    (zeros past each length), final states at each sequence's own last element, and the reverse
    direction starting there; gradients included."""
    cfg = _config(mode, 2, bidirectional, batch_first, True)
    t, sd, j, lm = _twins(mode, **cfg)
    x, hx = _inputs(mode, cfg, T=6, N=4, unbatched=False, with_hx=True)
    lengths = [3, 6, 1, 4]  # unsorted, one full-length and a length-1 sequence
    _compare(mode, t, sd, j, lm, x, hx, lengths=lengths)
    x, _ = _inputs(mode, cfg, T=6, N=4, unbatched=False, with_hx=False, seed=1)
    _compare(mode, t, sd, j, lm, x, None, lengths=[2, 2, 5, 1], seed=1)


def test_lengths_under_jit_and_padding_ignored():
    """Traced lengths work under jit; values past a sequence's length do not matter."""
    m = jn.GRU(IN, HID, bidirectional=True, rngs=nnx.Rngs(0))
    m.eval()
    x = np.random.default_rng(0).standard_normal((5, 2, IN)).astype(np.float32)
    lengths = jnp.array([2, 5])
    out, h = nnx.jit(lambda m, x, n: m(x, lengths=n))(m, jnp.asarray(x), lengths)
    x2 = x.copy()
    x2[2:, 0] = 1e3
    out2, h2 = m(jnp.asarray(x2), lengths=lengths)
    np.testing.assert_allclose(np.asarray(out), np.asarray(out2), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(h), np.asarray(h2), rtol=1e-6, atol=1e-7)
    assert np.all(np.asarray(out)[2:, 0] == 0)


@pytest.mark.parametrize("mode", ["RNN_TANH", "LSTM_PROJ", "GRU"])
@pytest.mark.parametrize("pad", [np.nan, np.inf])
def test_lengths_nonfinite_padding_gradients_like_torch(mode, pad):
    """nan/inf past a sequence's length never reach the arithmetic (torch packs them away): outputs,
    states and every gradient as torch's, finite, and zero at the padding."""
    t, sd, j, lm = _twins(mode, **_config(mode, 2, True, False, True))
    x = np.random.default_rng(3).standard_normal((5, 3, IN)).astype(np.float32)
    x[2:, 1] = pad
    x[4:, 2] = pad
    _compare(mode, t, sd, j, lm, x, None, lengths=[5, 2, 4])
    lstm = _kind(mode) == "LSTM"

    def loss(x):
        out, state = j(x, lengths=jnp.array([5, 2, 4]))
        return jnp.sum(out) + jnp.sum(state[0] if lstm else state)

    g = jax.grad(loss)(jnp.asarray(x))
    assert bool(jnp.isfinite(g).all()) and not np.asarray(g)[2:, 1].any() and not np.asarray(g)[4:, 2].any()


# --- cells ------------------------------------------------------------------------------------------

CELLS = [("RNNCell", "tanh"), ("RNNCell", "relu"), ("LSTMCell", None), ("GRUCell", None)]


@pytest.mark.parametrize("cell,nonlinearity", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
@pytest.mark.parametrize("unbatched", [False, True])
def test_cells_match_torch(cell, nonlinearity, bias, with_hx, unbatched):
    kw = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
    torch.manual_seed(0)
    t = getattr(torch.nn, cell)(IN, HID, bias, **kw)
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    j = getattr(jn, cell)(IN, HID, bias, **kw, rngs=nnx.Rngs(0))
    jn.load_state_dict(j, sd)
    lm = getattr(jl, cell)(IN, HID, bias, **kw)
    lstm = cell == "LSTMCell"
    rng = np.random.default_rng(0)
    lead = () if unbatched else (3,)
    x = rng.standard_normal(lead + (IN,)).astype(np.float32)
    hx = [rng.standard_normal(lead + (HID,)).astype(np.float32) for _ in range(2 if lstm else 1)] if with_hx else None
    tx = torch.tensor(x, requires_grad=True)
    thx = None if hx is None else [torch.tensor(h, requires_grad=True) for h in hx]
    t_out = t(tx, None if thx is None else (tuple(thx) if lstm else thx[0]))
    t_outs = list(t_out) if lstm else [t_out]
    cots = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in t_outs]
    sum((o * torch.tensor(c)).sum() for o, c in zip(t_outs, cots, strict=True)).backward()

    j_hx = None if hx is None else (tuple(jnp.asarray(h) for h in hx) if lstm else jnp.asarray(hx[0]))
    variables, _ = jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(x), j_hx), sd)
    params = variables["params"]
    assert list(params) == list(sd)

    def run(params, x, hx):
        out = lm.apply({"params": params}, x, hx)
        return list(out) if lstm else [out]

    outs, vjp = jax.vjp(run, params, jnp.asarray(x), j_hx)
    n_out = j(jnp.asarray(x), j_hx)
    for a, b in zip(run(params, jnp.asarray(x), j_hx), list(n_out) if lstm else [n_out], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(outs, t_outs, strict=True):
        assert_close(a, b.detach().numpy(), **OUT_TOL)
    g_params, g_x, g_hx = vjp([jnp.asarray(c) for c in cots])
    for name, g in g_params.items():
        assert_close(g, dict(t.named_parameters())[name].grad.numpy(), what=f"grad {name}", **GRAD_TOL)
    assert_close(g_x, tx.grad.numpy(), what="grad input", **GRAD_TOL)
    if hx is not None:
        for g, th in zip(list(g_hx) if lstm else [g_hx], thx, strict=True):
            assert_close(g, th.grad.numpy(), what="grad hx", **GRAD_TOL)


def test_cell_scan_equals_layer():
    """An LSTMCell stepped over time gives nn.LSTM's one-layer output (the same recurrence)."""
    cell = jn.LSTMCell(IN, HID, rngs=nnx.Rngs(0))
    layer = jn.LSTM(IN, HID, rngs=nnx.Rngs(1))
    sd = {f"{k}_l0": v for k, v in jn.state_dict(cell).items()}
    jn.load_state_dict(layer, sd)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 2, IN)).astype(np.float32))
    hc = (jnp.zeros((2, HID)), jnp.zeros((2, HID)))
    outs = []
    for step in range(4):
        hc = cell(x[step], hc)
        outs.append(hc[0])
    out, (h, c) = layer(x)
    np.testing.assert_allclose(np.stack(outs), np.asarray(out), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(c[0]), np.asarray(hc[1]), rtol=1e-6, atol=1e-7)


# --- parameters, init, state_dict -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_parameters_names_shapes_and_init_like_torch(mode):
    cfg = _config(mode, 2, True, False, True)
    t = getattr(torch.nn, _kind(mode))(IN, HID, **cfg)
    j = getattr(jn, _kind(mode))(IN, HID, **cfg, rngs=nnx.Rngs(0))
    sd = jn.state_dict(j)
    assert list(sd) == list(t.state_dict())
    bound = 1.0 / math.sqrt(HID)
    for k, v in t.state_dict().items():
        assert sd[k].shape == tuple(v.shape) and sd[k].dtype == jnp.float32, k
        assert float(jnp.max(jnp.abs(sd[k]))) <= bound, k
    allv = np.concatenate([np.asarray(v).ravel() for v in sd.values()])
    # U(-b, b): mean 0, variance b^2 / 3 (a few hundred draws)
    assert abs(allv.mean()) < 0.15 * bound and abs(allv.var() / (bound**2 / 3) - 1) < 0.25
    lm = getattr(jl, _kind(mode))(IN, HID, **cfg)
    params = lm.init(jax.random.key(0), jnp.ones((2, 1, IN)))["params"]
    assert list(params) == list(t.state_dict())
    assert all(float(jnp.max(jnp.abs(v))) <= bound for v in params.values())
    assert j.hidden_size == HID and j.num_layers == 2 and j.bidirectional and j.mode == t.mode
    assert j.proj_size == t.proj_size and j.dropout == t.dropout


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_parameters_like_torch(cell):
    t = getattr(torch.nn, cell)(IN, HID, bias=False)
    j = getattr(jn, cell)(IN, HID, bias=False, rngs=nnx.Rngs(0))
    sd = jn.state_dict(j)
    assert list(sd) == list(t.state_dict()) and j.bias_ih is None
    for k, v in t.state_dict().items():
        assert sd[k].shape == tuple(v.shape)
        assert float(jnp.max(jnp.abs(sd[k]))) <= 1 / math.sqrt(HID)


def test_dtype_is_the_parameter_dtype():
    m = jn.GRU(IN, HID, dtype=jnp.float64 if jax.config.read("jax_enable_x64") else jnp.bfloat16, rngs=nnx.Rngs(0))
    assert m.weight_ih_l0[...].dtype == m._layer.dtype


# --- dropout between layers -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_dropout_is_identity_in_eval_and_torchs_p1_in_training(mode):
    cfg = _config(mode, 2, True, True, True, dropout=0.5)
    t, sd, j, lm = _twins(mode, **cfg)
    x, hx = _inputs(mode, cfg, T=4, N=2, unbatched=False, with_hx=False)
    t.eval()
    want, _ = t(torch.tensor(x))
    j.eval()
    assert_close(j(jnp.asarray(x))[0], want.detach().numpy(), **OUT_TOL)
    params = _linen_params(lm, sd, x, None)
    assert_close(lm.apply({"params": params}, jnp.asarray(x), deterministic=True)[0], want.detach().numpy(), **OUT_TOL)
    # p = 1 zeroes the first layer's output: deterministic, so torch's training output is the oracle
    cfg1 = dict(cfg, dropout=1.0)
    t1, sd1, j1, _ = _twins(mode, **cfg1)
    t1.train()
    want1, state1 = t1(torch.tensor(x))
    out1, s1 = j1(jnp.asarray(x))
    assert_close(out1, want1.detach().numpy(), **OUT_TOL)
    lstm = _kind(mode) == "LSTM"
    assert_close(_flat_state(s1, lstm)[0], _flat_state(state1, lstm)[0].detach().numpy(), **OUT_TOL)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_RELU"])
def test_dropout_in_training_is_jaxnn_dropout_between_layers(mode):
    """Training mode: layer 2 sees F.dropout(layer 1's output, p, rng=split(key, num_layers-1)[0]):
    the same mask the Dropout module would draw from that key."""
    p = 0.4
    cfg = _config(mode, 2, True, False, True, dropout=p)
    layer = L.RNNBase("RNN" if mode.startswith("RNN") else _kind(mode), IN, HID, **{
        k: v for k, v in cfg.items() if k != "nonlinearity"}, nonlinearity=cfg.get("nonlinearity"))
    j = getattr(jn, _kind(mode))(IN, HID, **cfg, rngs=nnx.Rngs(0))
    values = {k: v[...] for k, v in nnx.state(j, nnx.Param).items()}
    x = jnp.asarray(np.random.default_rng(0).standard_normal((5, 2, IN)).astype(np.float32))
    key = jax.random.key(7)
    (out, _), _ = layer.apply(values, x, training=True, rng=key)
    # by hand: layer 0 (both directions), dropout, layer 1
    one = dataclasses_replace(layer, num_layers=1)
    (h1, _), _ = one.apply({k: v for k, v in values.items() if "_l0" in k}, x, training=True, rng=None)
    dropped = F.dropout(h1, p, True, rng=jax.random.split(key, 1)[0])
    top = dataclasses_replace(layer, num_layers=1, input_size=2 * HID)
    (want, _), _ = top.apply({k.replace("_l1", "_l0"): v for k, v in values.items() if "_l1" in k}, dropped,
                             training=True)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(want))
    (eval_out, _), _ = layer.apply(values, x, training=False)
    assert not np.array_equal(np.asarray(out), np.asarray(eval_out))
    # fraction of layer-1 activations dropped is about p
    frac = float(jnp.mean((dropped == 0) & (h1 != 0)))
    assert abs(frac - p) < 0.2


def dataclasses_replace(layer, **changes):
    import dataclasses

    return dataclasses.replace(layer, **changes)


def test_dropout_stream_nnx_and_linen():
    m = jn.LSTM(IN, HID, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0))
    x = jnp.ones((4, 2, IN))
    a, _ = m(x)
    b, _ = m(x)
    assert not np.array_equal(np.asarray(a), np.asarray(b))  # the stream advances
    m.eval()
    c, _ = m(x)
    d, _ = m(x)
    np.testing.assert_array_equal(np.asarray(c), np.asarray(d))
    lm = jl.LSTM(IN, HID, num_layers=2, dropout=0.5)
    variables = lm.init(jax.random.key(0), x, deterministic=True)
    with pytest.raises(Exception, match="dropout"):
        lm.apply(variables, x)
    e, _ = lm.apply(variables, x, rngs={"dropout": jax.random.key(1)})
    f, _ = lm.apply(variables, x, rngs={"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(np.asarray(e), np.asarray(f))
    no_stream = jn.GRU(IN, HID, num_layers=2, dropout=0.5, rngs=nnx.Rngs(params=0))
    with pytest.raises(ValueError, match="dropout"):
        no_stream(x)


# --- compiled size --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_program_size_does_not_grow_with_length(mode):
    cfg = _config(mode, 2, True, False, True)
    lm = getattr(jl, _kind(mode))(IN, HID, **cfg)
    params = lm.init(jax.random.key(0), jnp.ones((2, 1, IN)))

    def eqns(jaxpr) -> int:  # every equation, those of the scan bodies included
        n = 0
        for e in jaxpr.eqns:
            n += 1
            for sub in jax.extend.core.jaxprs_in_params(e.params):
                n += eqns(sub)
        return n

    def count(T, lengths=None):
        closed = jax.make_jaxpr(lambda p, x: lm.apply(p, x, lengths=lengths, deterministic=True))(
            params, jnp.ones((T, 2, IN)))
        scans = sum(e.primitive.name == "scan" for e in closed.jaxpr.eqns)
        return len(closed.jaxpr.eqns), eqns(closed.jaxpr), scans

    short, long = count(5), count(50)
    assert short == long and short[2] == 4  # one scan per layer and direction
    assert count(5, jnp.array([5, 3])) == count(50, jnp.array([50, 3]))


# --- errors -----------------------------------------------------------------------------------------


def _both_raise(tfn, jfn, exc, match):
    with pytest.raises(Exception):  # noqa: B017 (torch raises ValueError/RuntimeError/TypeError)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tfn()
    with pytest.raises(exc, match=match):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jfn()


R = nnx.Rngs(0)

CONSTRUCTOR_ERRORS = [
    ("LSTM", dict(proj_size=5), ValueError, "proj_size.*smaller than `hidden_size`"),
    ("LSTM", dict(proj_size=7), ValueError, "proj_size"),
    ("LSTM", dict(proj_size=-1), ValueError, "proj_size"),
    ("GRU", dict(dropout=1.5), ValueError, "`dropout` should be a number in range"),
    ("GRU", dict(dropout=-0.1), ValueError, "`dropout`"),
    ("RNN", dict(dropout=True), ValueError, "`dropout`"),
    ("RNN", dict(nonlinearity="sigmoid"), ValueError, "nonlinearity"),
    ("LSTM", dict(num_layers=0), ValueError, "`num_layers`"),
    ("GRU", dict(bias=1), TypeError, "`bias`"),
    ("GRU", dict(batch_first=None), TypeError, "`batch_first`"),
]


@pytest.mark.parametrize("kind,kw,exc,match", CONSTRUCTOR_ERRORS)
def test_constructor_errors_like_torch(kind, kw, exc, match):
    _both_raise(lambda: getattr(torch.nn, kind)(IN, HID, **kw), lambda: getattr(jn, kind)(IN, HID, **kw, rngs=R),
                exc, match)
    with pytest.raises(exc, match=match):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(jl, kind)(IN, HID, **kw)


@pytest.mark.parametrize("size", [(0, 5), (3, 0), (3.0, 5), (3, 5.0)])
def test_size_errors_like_torch(size):
    _both_raise(lambda: torch.nn.LSTM(*size), lambda: jn.LSTM(*size, rngs=R), (ValueError, TypeError), "_size")


def test_rnn_takes_no_proj_size_like_torch():
    with pytest.raises(ValueError, match="proj_size"):
        torch.nn.GRU(IN, HID, proj_size=2)
    with pytest.raises(TypeError):
        jn.GRU(IN, HID, proj_size=2, rngs=R)  # not a parameter of jaxnn's GRU
    with pytest.raises(ValueError, match="only supported for LSTM"):
        L.RNNBase("GRU", IN, HID, proj_size=2)


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        torch.nn.LSTM(IN, HID, dropout=0.2)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        jn.LSTM(IN, HID, dropout=0.2, rngs=R)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        lm = jl.GRU(IN, HID, dropout=0.2)
    x = jnp.ones((2, 1, IN))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once, at construction: not again in init / apply
        lm.apply(lm.init(jax.random.key(0), x), x, rngs={"dropout": jax.random.key(1)})


def _call_errors():
    x3, x2 = np.zeros((4, 2, IN), np.float32), np.zeros((4, IN), np.float32)
    return [
        ("GRU", {}, np.zeros((1, 4, 2, IN), np.float32), None, ValueError, "2D or 3D"),
        ("GRU", {}, np.zeros((IN,), np.float32), None, ValueError, "2D or 3D"),
        ("GRU", {}, np.zeros((4, 2, IN + 1), np.float32), None, ValueError, "input_size"),
        ("GRU", {}, x3.astype(np.float64), None, ValueError, "dtype"),
        ("GRU", {}, x3, np.zeros((1, 3, HID), np.float32), ValueError, r"Expected `hx` of shape \(1, 2, 5\)"),
        ("GRU", {}, x3, np.zeros((1, 2, HID + 1), np.float32), ValueError, "hx"),
        ("GRU", dict(bidirectional=True), x3, np.zeros((1, 2, HID), np.float32), ValueError, "hx"),
        ("RNN", {}, x3, np.zeros((2, HID), np.float32), ValueError, "should also be 3-D"),
        ("RNN", {}, x2, np.zeros((1, 1, HID), np.float32), ValueError, "should also be 2-D"),
        ("LSTM", {}, x3, (np.zeros((1, 2, HID), np.float32), np.zeros((1, 2, HID + 1), np.float32)), ValueError,
         r"hx\[1\]"),
        ("LSTM", dict(proj_size=2), x3, (np.zeros((1, 2, HID), np.float32), np.zeros((1, 2, HID), np.float32)),
         ValueError, r"hx\[0\]` of shape \(1, 2, 2\)"),
        ("LSTM", {}, x3, (np.zeros((2, HID), np.float32), np.zeros((2, HID), np.float32)), ValueError,
         "should also be 3-D"),
        # no time steps: torch's "Expected sequence length to be larger than 0" (batched, batch_first, unbatched)
        ("GRU", {}, np.zeros((0, 2, IN), np.float32), None, ValueError, "sequence length to be larger than 0"),
        ("LSTM", dict(batch_first=True), np.zeros((2, 0, IN), np.float32), None, ValueError,
         "sequence length to be larger than 0"),
        ("RNN", {}, np.zeros((0, IN), np.float32), None, ValueError, "sequence length to be larger than 0"),
    ]


@pytest.mark.parametrize("kind,kw,x,hx,exc,match", _call_errors())
def test_call_errors_like_torch(kind, kw, x, hx, exc, match):
    t = getattr(torch.nn, kind)(IN, HID, **kw)
    j = getattr(jn, kind)(IN, HID, **kw, rngs=R)
    thx = None if hx is None else (tuple(torch.tensor(h) for h in hx) if isinstance(hx, tuple) else torch.tensor(hx))
    jhx = None if hx is None else (tuple(jnp.asarray(h) for h in hx) if isinstance(hx, tuple) else jnp.asarray(hx))
    if x.dtype == np.float64 and not jax.config.read("jax_enable_x64"):
        jx = jnp.asarray(x, jnp.float16)  # a dtype other than the weights'
    else:
        jx = jnp.asarray(x)
    _both_raise(lambda: t(torch.tensor(x), thx), lambda: j(jx, jhx), exc, match)


def test_lengths_errors_like_pack_padded_sequence():
    x = np.zeros((4, 2, IN), np.float32)
    j = jn.GRU(IN, HID, rngs=R)
    _both_raise(lambda: pack_padded_sequence(torch.tensor(x), torch.tensor([0, 2]), enforce_sorted=False),
                lambda: j(jnp.asarray(x), lengths=jnp.array([0, 2])), ValueError, "greater than 0")
    t = torch.nn.GRU(IN, HID)  # torch packs a too-long length and fails in the RNN
    _both_raise(lambda: t(pack_padded_sequence(torch.tensor(x), torch.tensor([5, 2]), enforce_sorted=False)),
                lambda: j(jnp.asarray(x), lengths=jnp.array([5, 2])), ValueError, "must not exceed")
    with pytest.raises(ValueError, match="one per sequence"):
        j(jnp.asarray(x), lengths=jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match="one per sequence"):
        j(jnp.asarray(x), lengths=jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="batched"):
        j(jnp.asarray(x[:, 0]), lengths=jnp.array([2]))


CELL_CALL_ERRORS = [
    ("GRUCell", {}, np.zeros((1, 2, IN), np.float32), None, "1D or 2D"),
    ("GRUCell", {}, np.zeros((2, IN), np.float32), np.zeros((1, 2, HID), np.float32), "1D or 2D"),
    ("RNNCell", {}, np.zeros((2, IN + 1), np.float32), None, "input_size"),
    ("RNNCell", {}, np.zeros((2, IN), np.float32), np.zeros((3, HID), np.float32), r"\(2, 5\)"),
    ("RNNCell", {}, np.zeros((2, IN), np.float32), np.zeros((2, HID + 1), np.float32), r"\(2, 5\)"),
    ("RNNCell", dict(nonlinearity="gelu"), np.zeros((2, IN), np.float32), None, "nonlinearity"),
    ("LSTMCell", {}, np.zeros((2, IN), np.float32), (np.zeros((2, HID), np.float32), np.zeros((2, 1, HID),
                                                                                             np.float32)), r"hx\[1\]"),
]


@pytest.mark.parametrize("kind,kw,x,hx,match", CELL_CALL_ERRORS)
def test_cell_call_errors_like_torch(kind, kw, x, hx, match):
    t = getattr(torch.nn, kind)(IN, HID, **kw)
    j = getattr(jn, kind)(IN, HID, **kw, rngs=R)  # torch checks nonlinearity at the call: so does jaxnn
    thx = None if hx is None else (tuple(torch.tensor(h) for h in hx) if isinstance(hx, tuple) else torch.tensor(hx))
    jhx = None if hx is None else (tuple(jnp.asarray(h) for h in hx) if isinstance(hx, tuple) else jnp.asarray(hx))
    _both_raise(lambda: t(torch.tensor(x), thx), lambda: j(jnp.asarray(x), jhx), ValueError, match)


# --- jit / vmap / grad ------------------------------------------------------------------------------


def test_jit_vmap_grad():
    lm = jl.LSTM(IN, HID, num_layers=2, bidirectional=True, proj_size=PROJ)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 3, IN)).astype(np.float32))
    params = lm.init(jax.random.key(0), x)

    def f(p, x):
        return lm.apply(p, x, deterministic=True)[0]

    eager = f(params, x)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(params, x)), np.asarray(eager), rtol=1e-6, atol=1e-7)
    # vmap over the batch of unbatched calls gives the batched result
    per = jax.vmap(lambda xi: f(params, xi), in_axes=1, out_axes=1)(x)
    np.testing.assert_allclose(np.asarray(per), np.asarray(eager), rtol=1e-6, atol=1e-7)
    g = jax.jit(jax.grad(lambda p: jnp.sum(f(p, x) ** 2)))(params)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(g))
    assert isinstance(lm, nn.Module)


# --- float16 / bfloat16 -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_bit_exact_with_torchs_op_sequence(mode, dtype):
    """Half precision: torch's native CPU kernels' op sequence (each op computed in float32 and
    rounded where torch stores it; the matmuls accumulate in float32 with the bias) bit for bit,
    outputs and final states, over 2 bidirectional layers. oneDNN's fused LSTM (torch's default for
    LSTMs without projection where the CPU has it) keeps its gates in float32 instead: the same
    numbers to half-precision rounding, checked with a tolerance. Gradients: within a few ulps."""
    tdt, jdt = {"float16": (torch.float16, jnp.float16), "bfloat16": (torch.bfloat16, jnp.bfloat16)}[dtype]
    cfg = _config(mode, 2, True, False, True)
    torch.manual_seed(0)
    t = getattr(torch.nn, _kind(mode))(IN, HID, **cfg).to(tdt)
    j = getattr(jn, _kind(mode))(IN, HID, **cfg, dtype=jdt, rngs=nnx.Rngs(0))
    jn.load_state_dict(j, t.state_dict())
    assert j.weight_ih_l0[...].dtype == jdt
    x = np.random.default_rng(0).standard_normal((6, 2, IN)).astype(np.float32)
    lstm = _kind(mode) == "LSTM"
    got_out, got_state = j(jnp.asarray(x).astype(jdt))
    assert got_out.dtype == jdt
    got = [got_out, *_flat_state(got_state, lstm)]
    enabled = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)  # torch.backends.mkldnn.flags warns about Intel GPUs' TF32
    try:
        want_out, want_state = t(torch.tensor(x).to(tdt))
    finally:
        torch._C._set_mkldnn_enabled(enabled)
    for a, b in zip(got, [want_out, *_flat_state(want_state, lstm)], strict=True):
        np.testing.assert_array_equal(np.asarray(a.astype(jnp.float32)), b.float().detach().numpy())
    eps = float(jnp.finfo(jdt).eps)
    tx = torch.tensor(x).to(tdt).requires_grad_(True)
    default_out, _ = t(tx)  # torch's default dispatch (oneDNN where available)
    assert_close(got_out, default_out.float().detach().numpy(), rtol=4 * eps, atol=4 * eps)
    cot = np.random.default_rng(1).standard_normal(tuple(default_out.shape)).astype(np.float32)
    (default_out.float() * torch.tensor(cot)).sum().backward()
    g = jax.grad(lambda x: jnp.sum(j(x)[0].astype(jnp.float32) * cot))(jnp.asarray(x).astype(jdt))
    assert g.dtype == jdt
    scale = float(np.abs(tx.grad.float().numpy()).max())
    assert_close(g, tx.grad.float().numpy(), rtol=16 * eps, atol=16 * eps * scale, what="grad input")


# --- training -------------------------------------------------------------------------------------


def test_training_follows_torchs_loss_curve():
    """A 2-layer bidirectional LSTM with a linear head, 20 AdamW steps: jaxnn.optim.adamw on the
    jaxnn twin follows torch.optim.AdamW's loss curve to rtol 1e-4."""
    torch.manual_seed(0)
    t = torch.nn.LSTM(IN, HID, num_layers=2, bidirectional=True)
    head = torch.nn.Linear(2 * HID, 1)
    sd = {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}  # torch's step writes in place
    hsd = {k: v.detach().numpy().copy() for k, v in head.state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4, IN)).astype(np.float32)
    y = rng.standard_normal((8, 4, 1)).astype(np.float32)
    opt = torch.optim.AdamW([*t.parameters(), *head.parameters()], lr=1e-2)
    want = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((head(t(torch.tensor(x))[0]) - torch.tensor(y)) ** 2).mean()
        loss.backward()
        opt.step()
        want.append(loss.item())

    lm = jl.LSTM(IN, HID, num_layers=2, bidirectional=True)
    params = {"lstm": {k: jnp.asarray(v) for k, v in sd.items()}, "head": {k: jnp.asarray(v) for k, v in hsd.items()}}

    def loss_fn(p):
        out, _ = lm.apply({"params": p["lstm"]}, jnp.asarray(x))
        pred = F.linear(out, p["head"]["weight"], p["head"]["bias"])
        return jnp.mean((pred - jnp.asarray(y)) ** 2)

    np.testing.assert_allclose(adamw_losses(loss_fn, params), want, rtol=1e-4)
    assert want[-1] < 0.9 * want[0]  # it trains


def test_hidden_state_type_and_dtype_errors_like_torch():
    x = np.zeros((4, 2, IN), np.float32)
    h = np.zeros((1, 2, HID), np.float32)
    t, j = torch.nn.LSTM(IN, HID), jn.LSTM(IN, HID, rngs=R)
    _both_raise(lambda: t(torch.tensor(x), torch.tensor(h)), lambda: j(jnp.asarray(x), jnp.asarray(h)), TypeError,
                r"pair \(h_0, c_0\)")
    tg, jg = torch.nn.GRU(IN, HID), jn.GRU(IN, HID, rngs=R)
    _both_raise(lambda: tg(torch.tensor(x), torch.tensor(h).half()),
                lambda: jg(jnp.asarray(x), jnp.asarray(h).astype(jnp.float16)), TypeError, "`hx` dtype")
    tc, jc = torch.nn.GRUCell(IN, HID), jn.GRUCell(IN, HID, rngs=R)
    _both_raise(lambda: tc(torch.tensor(x[0]).half()), lambda: jc(jnp.asarray(x[0]).astype(jnp.float16)), ValueError,
                "dtype")
