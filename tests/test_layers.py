"""The layer registry against torch: every layer, several argument sets, nnx == linen == functional,
torch's state_dict (parameters and buffers) loads strictly, outputs match in train and eval mode.
BatchNorm and Dropout, the first layers with buffers, train/eval and randomness, in depth."""

from __future__ import annotations

import re
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from torch_ref import assert_close

import jaxnn
import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

# (torch.nn class name, positional args, keyword args, input shape). One registry: the tests below
# run every row through torch, jaxnn.nnx and jaxnn.linen.
LAYERS = [
    ("Conv1d", (4, 6, 3, 2, 1, 1, 2), {"padding_mode": "circular"}, (2, 4, 9)),
    ("Conv2d", (3, 4, (3, 2)), {"padding": "same", "dilation": 2}, (2, 3, 7, 6)),
    ("Conv3d", (2, 4, 3), {"padding": 1, "bias": False, "padding_mode": "replicate"}, (1, 2, 4, 5, 3)),
    ("ConvTranspose1d", (4, 6, 3, 2, 1, 1, 2), {}, (2, 4, 5)),
    ("ConvTranspose2d", (4, 2, 4, 2, 1), {}, (1, 4, 5, 5)),
    ("Linear", (5, 3), {}, (4, 5)),
    ("Linear", (5, 3, False), {}, (5,)),
    ("GroupNorm", (2, 6), {"eps": 1e-6}, (2, 6, 4)),
    ("GroupNorm", (3, 6, 1e-5, False), {}, (2, 6, 4)),
    ("LayerNorm", ((3, 4),), {"bias": False}, (2, 3, 4)),
    ("PReLU", (3, 0.1), {}, (2, 3, 4)),
    ("BatchNorm1d", (3,), {}, (4, 3)),
    ("BatchNorm1d", (3, 1e-3, None), {}, (4, 3, 5)),
    ("BatchNorm2d", (3,), {"affine": False}, (2, 3, 4, 4)),
    ("BatchNorm2d", (3,), {"track_running_stats": False}, (2, 3, 4, 4)),
    ("BatchNorm2d", (3,), {"bias": False}, (2, 3, 2, 2)),
    ("BatchNorm3d", (2, 1e-5, 0.3), {}, (2, 2, 3, 2, 2)),
    ("Dropout", (0.3,), {}, (4, 6)),
    ("Dropout", (0.0,), {}, (4, 6)),
    ("Dropout1d", (0.3,), {}, (4, 6, 5)),
    ("Dropout2d", (0.5,), {}, (2, 3, 4, 4)),
    ("Dropout2d", (0.0,), {}, (2, 3, 4, 4)),
    ("Dropout3d", (0.2,), {}, (3, 2, 2, 2)),
    ("AlphaDropout", (0.2,), {}, (4, 6)),
    ("FeatureAlphaDropout", (0.4,), {}, (2, 3, 4)),
    ("Embedding", (10, 3), {"padding_idx": 2}, (2, 5)),
    ("Embedding", (6, 4, -1), {"scale_grad_by_freq": True}, (7,)),
    ("Flatten", (), {}, (2, 3, 4)),
    ("Flatten", (0, 1), {}, (2, 3, 4)),
    ("Identity", (), {}, (2, 3)),
    ("GELU", ("tanh",), {}, (2, 3)),
    ("Softmax", (1,), {}, (2, 3)),
    ("Upsample", (None, 2.5, "bilinear"), {}, (1, 2, 4, 5)),
    ("Upsample", ((6, 7),), {"mode": "bicubic", "align_corners": True}, (1, 2, 4, 5)),
    ("Upsample", (None, (2, 1.5, 2)), {"mode": "trilinear", "recompute_scale_factor": True}, (1, 2, 3, 4, 2)),
    ("UpsamplingNearest2d", (None, 2), {}, (2, 3, 3, 4)),
    ("UpsamplingBilinear2d", ((5, 7),), {}, (2, 3, 3, 4)),
    ("PixelShuffle", (2,), {}, (2, 8, 3, 3)),
    ("PixelUnshuffle", (2,), {}, (1, 2, 4, 6)),
    ("Unfold", ((2, 3),), {"dilation": (1, 2), "padding": 1, "stride": 2}, (2, 3, 5, 7)),
    ("Unfold", (2,), {}, (3, 4, 4)),
    ("Fold", ((4, 5), 2), {"stride": 1}, (2, 12, 12)),
    ("Fold", ((5, 6), (2, 2), 1, (1, 0), (2, 1)), {}, (8, 15)),
    ("MaxPool1d", (3, 2, 1), {"ceil_mode": True}, (2, 3, 9)),
    ("MaxPool2d", ((3, 2),), {"dilation": (1, 2), "padding": 1}, (2, 3, 7, 8)),
    ("MaxPool3d", (2,), {"stride": 1}, (3, 4, 4, 4)),
    ("AvgPool1d", (3, 2, 1), {"count_include_pad": False}, (3, 9)),
    ("AvgPool2d", (3, 2, 1, True), {"divisor_override": 4}, (2, 3, 7, 8)),
    ("AvgPool3d", (2,), {}, (1, 2, 4, 4, 4)),
    ("LPPool1d", (2, 3), {}, (2, 3, 9)),
    ("LPPool2d", (1, (2, 3), 1, True), {}, (2, 3, 7, 8)),
    ("LPPool3d", (2, 2), {}, (1, 2, 4, 4, 4)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 8)),
    ("AdaptiveAvgPool3d", (2,), {}, (2, 4, 5, 3)),
    ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 9)),
    ("AdaptiveMaxPool2d", ((None, 3),), {}, (2, 3, 7, 8)),
    ("AdaptiveMaxPool3d", ((2, 1, 3),), {}, (1, 2, 4, 5, 3)),
    ("MaxUnpool1d", (3, 2, 1), {}, (2, 3, 5)),  # called with indices too: _more_inputs
    ("MaxUnpool2d", ((3, 2),), {"stride": 2, "padding": (1, 0)}, (2, 3, 3, 4)),
    ("MaxUnpool3d", (2,), {}, (2, 2, 2, 2)),
    ("RMSNorm", ((3, 4),), {}, (2, 3, 4)),
    ("RMSNorm", (4, 1e-5, False), {}, (3, 4)),
    ("InstanceNorm1d", (3,), {}, (2, 3, 6)),
    ("InstanceNorm1d", (3,), {"affine": True, "track_running_stats": True}, (3, 5)),
    ("InstanceNorm2d", (3, 1e-3, 0.3, True, True), {}, (2, 3, 4, 4)),
    ("InstanceNorm2d", (3,), {"track_running_stats": True, "momentum": None}, (2, 3, 3, 3)),
    ("InstanceNorm3d", (2,), {"affine": True, "bias": False}, (2, 2, 3, 2, 2)),
    ("LocalResponseNorm", (3,), {}, (2, 5, 4)),
    ("LocalResponseNorm", (2, 0.3, 0.5, 2.0), {}, (2, 4, 3, 3)),
    ("Softmin", (1,), {}, (2, 3)),
    ("Softmax2d", (), {}, (2, 3, 4, 4)),
    ("Softmax2d", (), {}, (3, 2, 4)),
    ("ZeroPad1d", (2,), {}, (2, 3, 4)),
    ("ZeroPad2d", ((1, 0, 2, 1),), {}, (2, 3, 4, 4)),
    ("ZeroPad3d", (1,), {}, (1, 2, 2, 2, 2)),
    ("ConstantPad1d", ((1, -1), 2.5), {}, (2, 3)),
    ("ConstantPad2d", (2, -1.0), {}, (1, 3, 3)),
    ("ConstantPad3d", ((1, 0, 0, 1, 2, 0), 0.5), {}, (1, 2, 2, 2, 2)),
    ("ReflectionPad1d", (2,), {}, (2, 3, 5)),
    ("ReflectionPad2d", ((1, 2, 0, 1),), {}, (3, 4, 4)),
    ("ReflectionPad3d", (1,), {}, (1, 1, 3, 3, 3)),
    ("ReplicationPad1d", ((3, 1),), {}, (3, 4)),
    ("ReplicationPad2d", (2,), {}, (1, 2, 3, 3)),
    ("ReplicationPad3d", ((1, 0, 1, 0, 0, 2),), {}, (1, 2, 2, 2, 2)),
    ("CircularPad1d", (1,), {}, (2, 3, 4)),
    ("CircularPad2d", ((1, 2, 0, 1),), {}, (2, 3, 3)),
    ("CircularPad3d", (1,), {}, (1, 1, 2, 3, 3)),
    ("Unflatten", (1, (2, 3)), {}, (2, 6, 4)),
    ("Unflatten", (-1, [2, -1]), {}, (3, 8)),
    ("RNNCell", (3, 5, True, "relu"), {}, (4, 3)),  # RNN/LSTM/GRU/LSTMCell return tuples: tests/test_rnn.py
    ("GRUCell", (3, 5), {"bias": False}, (3,)),
]
IDS = [f"{n}-{i}" for i, (n, *_) in enumerate(LAYERS)]
RANDOM_IN_TRAINING = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
INTEGER_INPUT = {"Embedding"}  # indices in [0, args[0])


def _input(name, args, shape, rng=None):
    """A layer's input: indices for Embedding (ones when no rng), float32 otherwise."""
    if name in INTEGER_INPUT:
        return np.ones(shape, np.int32) if rng is None else rng.integers(0, args[0], shape).astype(np.int32)
    return np.ones(shape, np.float32) if rng is None else rng.standard_normal(shape).astype(np.float32)


def _more_inputs(name, args, kwargs, shape):
    """Inputs after the first: MaxUnpool's indices, from torch's max pooling (the layer's own window)
    of a fixed input whose pooled shape is ``shape`` (int64, as torch's); none for other layers."""
    if not name.startswith("MaxUnpool"):
        return ()
    n, t = int(name[-2]), getattr(torch.nn, name)(*args, **kwargs)
    pre = [(o - 1) * s + k - 2 * p for o, k, s, p in zip(shape[-n:], t.kernel_size, t.stride, t.padding, strict=True)]
    x = torch.tensor(np.random.default_rng(7).standard_normal((*shape[:-n], *pre)), dtype=torch.float32)
    _, indices = getattr(torch.nn.functional, f"max_pool{n}d")(x, t.kernel_size, t.stride, t.padding,
                                                                return_indices=True)
    assert tuple(indices.shape) == tuple(shape)
    return (indices.numpy(),)


def _linen_kwargs(name, kwargs):
    return {("init_value" if k == "init" else k): v for k, v in kwargs.items()}


def _build(name, args, kwargs):
    torch.manual_seed(0)
    t = getattr(torch.nn, name)(*args, **kwargs)
    m = getattr(jn, name)(*args, **kwargs, **({"rngs": nnx.Rngs(0)} if name not in ("Flatten", "Identity") else {}))
    lm = getattr(jl, name)(*args, **_linen_kwargs(name, kwargs))
    return t, m, lm


def _sd(t):
    return {k: v.detach().numpy() for k, v in t.state_dict().items()}


@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS, ids=IDS)
def test_state_dict_matches_torch(name, args, kwargs, shape):
    t, m, lm = _build(name, args, kwargs)
    want = _sd(t)
    x = jnp.asarray(_input(name, args, shape))
    more = [jnp.asarray(a, jnp.int32) for a in _more_inputs(name, args, kwargs, shape)]
    for got in (jn.state_dict(m), jl.state_dict(lm.init(jax.random.key(0), x, *more))):
        assert set(got) == set(want)
        for k, v in want.items():
            assert tuple(got[k].shape) == v.shape, k
            expected = np.dtype(np.int32) if k.endswith("num_batches_tracked") else v.dtype  # int64 with x64
            assert np.dtype(got[k].dtype) == expected, k


@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS, ids=IDS)
def test_torch_state_dict_loads_and_outputs_match_in_train_and_eval(rng, name, args, kwargs, shape):
    t, m, lm = _build(name, args, kwargs)
    with torch.no_grad():  # non-trivial parameters and statistics
        for p in t.parameters():
            p.uniform_(-1.0, 1.0)
        for b in t.buffers():
            if b.is_floating_point():
                b.uniform_(0.5, 1.5)
    sd = t.state_dict()
    assert jn.load_state_dict(m, sd) == jn.LoadResult([], [])
    more = _more_inputs(name, args, kwargs, shape)
    j_more = [jnp.asarray(a, jnp.int32) for a in more]  # jaxnn's pooling indices are int32 without x64
    variables, result = jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(_input(name, args, shape)),
                                                   *j_more), sd)
    assert result == jl.LoadResult([], [])
    for step in range(2):
        x = _input(name, args, shape, rng)
        for training in (True, False):
            t.train(training)
            m.train() if training else m.eval()
            want = t(torch.tensor(x), *[torch.tensor(a) for a in more]).detach().numpy()
            got = m(jnp.asarray(x), *j_more)
            out, updates = lm.apply(variables, jnp.asarray(x), *j_more, mutable=["batch_stats"],
                                    rngs={"dropout": jax.random.key(step)}, **_linen_mode(lm, training))
            variables = {**variables, **updates}
            if training and name in RANDOM_IN_TRAINING and args[0] > 0:
                continue  # different random streams: the distribution is tested below
            assert_close(got, want, rtol=2e-5, atol=2e-5, what=f"{name} step {step} training={training}")
            np.testing.assert_array_equal(out, got)  # nnx == linen, bit for bit
        for k, v in _sd(t).items():  # running statistics after each step: torch's to float32 rounding
            assert_close(jn.state_dict(m)[k], v, rtol=2e-6, atol=1e-7, what=k)
            np.testing.assert_array_equal(jl.state_dict(variables)[k], jn.state_dict(m)[k])


def _linen_mode(lm, training):
    if isinstance(lm, jl.Dropout | jl.Dropout1d | jl.Dropout2d | jl.Dropout3d | jl.AlphaDropout
                  | jl.FeatureAlphaDropout):
        return {"deterministic": not training}
    if isinstance(lm, jl.BatchNorm1d | jl.BatchNorm2d | jl.BatchNorm3d | jl.InstanceNorm1d | jl.InstanceNorm2d
                  | jl.InstanceNorm3d):
        return {"use_running_average": not training}
    return {}


# --- BatchNorm ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize("shape", [(8, 4), (3, 4, 5), (2, 4, 3, 3)])
def test_batch_norm_several_steps_match_torch(rng, momentum, shape):
    n = {2: 1, 3: 1, 4: 2}[len(shape)]
    t = getattr(torch.nn, f"BatchNorm{n}d")(4, momentum=momentum)
    m = getattr(jn, f"BatchNorm{n}d")(4, momentum=momentum)
    jn.load_state_dict(m, t.state_dict())
    step = nnx.jit(lambda model, x: model(x))
    for i in range(5):
        x = (rng.standard_normal(shape) * (i + 1) + i).astype(np.float32)
        assert_close(step(m, jnp.asarray(x)), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=2e-5)
    for k, v in _sd(t).items():
        assert_close(jn.state_dict(m)[k], v, rtol=2e-6, atol=1e-6, what=k)
    assert int(m.num_batches_tracked[...]) == 5
    m.eval()
    t.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    assert_close(m(jnp.asarray(x)), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert int(m.num_batches_tracked[...]) == 5  # eval does not count


def test_batch_norm_functional_matches_torch(rng):
    x = rng.standard_normal((6, 3, 4)).astype(np.float32) * 3 + 1
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    want = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), True, 0.2)
    got = F.batch_norm(jnp.asarray(x), rm, rv, w, b, True, 0.2)
    assert_close(got, want.numpy(), rtol=1e-5, atol=1e-5)
    new_m, new_v = F.batch_norm_running_stats(jnp.asarray(x), rm, rv, 0.2)
    assert_close(new_m, trm.numpy(), rtol=1e-6, atol=1e-7)
    assert_close(new_v, trv.numpy(), rtol=1e-6, atol=1e-7)  # unbiased variance, as torch
    want = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, training=False)
    assert_close(F.batch_norm(jnp.asarray(x), new_m, new_v), want.numpy(), rtol=1e-5, atol=1e-5)
    grad = jax.grad(lambda x: jnp.sum(F.batch_norm(x, None, None, training=True) ** 3))(jnp.asarray(x))
    assert np.isfinite(np.asarray(grad)).all()


BN_ERRORS = [
    (lambda: F.batch_norm(jnp.ones((1, 3)), None, None, training=True), "more than 1 value per channel"),
    (lambda: F.batch_norm(jnp.ones((2, 3)), None, None), "evaluation mode"),
    (lambda: F.batch_norm(jnp.ones((2, 3)), jnp.zeros(4), jnp.ones(4), training=True),
     "`running_mean` should contain 3"),
    (lambda: jn.BatchNorm2d(3)(jnp.ones((2, 3, 4))), "expected 4D input \\(got 3D input\\)"),
    (lambda: jn.BatchNorm1d(3)(jnp.ones((2, 3, 4, 4))), "expected 2D or 3D input"),
    (lambda: jn.BatchNorm1d(-1), "`num_features` must be a non-negative int"),
    (lambda: jl.BatchNorm1d(-1), "`num_features` must be a non-negative int"),
]


@pytest.mark.parametrize("call,fragment", BN_ERRORS)
def test_batch_norm_errors(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_batch_stats_are_not_params():
    m = jn.Sequential(jn.Linear(2, 3, rngs=nnx.Rngs(0)), jn.BatchNorm1d(3))
    params = nnx.state(m, nnx.Param)
    assert sorted(".".join(map(str, p)) for p, _ in nnx.to_flat_state(params)) == [
        "0.bias", "0.weight", "1.bias", "1.weight"]
    stats = nnx.state(m, nnx.BatchStat)
    assert len(nnx.to_flat_state(stats)) == 3


def test_linen_batch_norm_needs_mutable_batch_stats_in_training():
    bn = jl.BatchNorm1d(3)
    v = bn.init(jax.random.key(0), jnp.ones((4, 3)))
    with pytest.raises(Exception, match="batch_stats"):
        bn.apply(v, jnp.ones((4, 3)))
    bn.apply(v, jnp.ones((4, 3)), use_running_average=True)  # eval: nothing to update
    jl.BatchNorm1d(3, use_running_average=True).apply(v, jnp.ones((4, 3)))


# --- Dropout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_values_and_rate_match_torch(rng, p):
    x = rng.standard_normal((200, 50)).astype(np.float32)
    torch.manual_seed(0)
    t = torch.nn.functional.dropout(torch.tensor(x), p).numpy()
    y = np.asarray(F.dropout(jnp.asarray(x), p, rng=jax.random.key(0)))
    kept_t, kept_j = t != 0, y != 0
    np.testing.assert_array_equal(t[kept_t], (x * np.float32(1 / np.float32(1 - p)))[kept_t])  # torch's scaling
    np.testing.assert_array_equal(y[kept_j], (x * (np.float32(1) / np.float32(1 - p)))[kept_j])
    assert abs(kept_j.mean() - (1 - p)) < 0.02 and abs(kept_t.mean() - kept_j.mean()) < 0.03


def test_dropout_edge_cases_like_torch():
    x = jnp.asarray([1.0, np.nan, np.inf, -3.0])
    want = torch.nn.functional.dropout(torch.tensor(np.asarray(x)), 1.0).numpy()
    np.testing.assert_array_equal(F.dropout(x, 1.0), want)
    np.testing.assert_array_equal(F.dropout(x, 0.0), x)
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False), x)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            F.dropout(x, p, rng=jax.random.key(0))
        with pytest.raises(ValueError, match="dropout probability"):
            jn.Dropout(p)
        with pytest.raises(ValueError, match="dropout probability"):
            jl.Dropout(p)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        F.dropout(x, 0.5)


def test_nnx_dropout_stream_train_eval():
    d = jn.Dropout(0.5, rngs=nnx.Rngs(dropout=1))
    assert d.training and not d.deterministic
    a, b = d(jnp.ones(64)), d(jnp.ones(64))
    assert not np.array_equal(a, b)  # the stream advances
    d2 = jn.Dropout(0.5, rngs=nnx.Rngs(dropout=1))
    np.testing.assert_array_equal(d2(jnp.ones(64)), a)  # and is reproducible
    d.eval()
    np.testing.assert_array_equal(d(jnp.ones(3)), 1.0)
    with pytest.raises(ValueError, match="`dropout` stream"):
        jn.Dropout(0.5)(jnp.ones(3))
    jn.Dropout(0.5).eval()  # no rngs needed in eval mode
    assert jn.state_dict(d) == {}


def test_linen_dropout_make_rng():
    d = jl.Dropout(0.5)
    a = d.apply({}, jnp.ones(64), rngs={"dropout": jax.random.key(0)})
    b = d.apply({}, jnp.ones(64), rngs={"dropout": jax.random.key(0)})
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(np.asarray(a)).tolist()) <= {0.0, 2.0}
    with pytest.raises(Exception, match="dropout"):
        d.apply({}, jnp.ones(4))


# --- the faults the layer description fixes ----------------------------------------------------------


def test_torch_valid_constructors_are_valid():
    for make in (jn.Softmax, jl.Softmax, jn.LogSoftmax, jl.LogSoftmax, jn.GLU, jl.GLU):
        make(4)
    assert jn.Softmax(dim=4)(jnp.ones((1, 1, 1, 1, 3))).shape == (1, 1, 1, 1, 3)
    jn.BatchNorm1d(0)
    torch.nn.BatchNorm1d(0)


def test_flatten_checks_dims_like_torch():
    with pytest.raises(RuntimeError):
        torch.nn.Flatten(2, 1)(torch.ones(2, 3, 4, 5))
    for m in (jn.Flatten(2, 1), ):
        with pytest.raises(ValueError, match="`start_dim` \\(=2\\) cannot come after `end_dim` \\(=1\\)"):
            m(jnp.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="cannot come after"):
        jl.Flatten(2, 1).apply({}, jnp.ones((2, 3, 4, 5)))
    assert jn.Flatten(1, -2)(jnp.ones((2, 3, 4, 5))).shape == torch.nn.Flatten(1, -2)(torch.ones(2, 3, 4, 5)).shape


def test_linen_rejects_what_nnx_rejects():
    with pytest.raises(ValueError, match="`in_features` must be a non-negative int"):
        jl.Linear(-1, 4)
    with pytest.raises(ValueError, match="`approximate`"):
        jl.GEGLU(4, 4, approximate="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`approximate`"):
        jn.GEGLU(4, 4, approximate="fast", rngs=nnx.Rngs(0))  # type: ignore[arg-type]


def test_configuration_is_read_only_on_nnx_modules():
    conv = jn.Conv2d(3, 4, 3, rngs=nnx.Rngs(0))
    assert conv.padding == (0, 0) and conv.stride == (1, 1) and conv.padding_mode == "zeros"
    with pytest.raises(AttributeError, match="`padding` of Conv2d is fixed at construction"):
        conv.padding = (1, 1)
    bn = jn.BatchNorm2d(3, momentum=None)
    assert bn.momentum is None and bn.num_features == 3


def test_checkpoint_api_is_the_same_in_both_front_ends():
    names = {"state_dict", "load_state_dict", "save_state_dict", "LoadResult", "CheckpointError"}
    assert names <= set(jn.__all__) and names <= set(jl.__all__)
    assert jn.CheckpointError is jl.CheckpointError is jaxnn.CheckpointError
    assert jn.LoadResult is jl.LoadResult


def test_linen_sequential_and_module_list_keys_are_torchs(rng):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.SiLU(), torch.nn.Linear(4, 2))
    lm = jl.Sequential([jl.Linear(3, 4), jl.BatchNorm1d(4), jl.SiLU(), jl.Linear(4, 2)])
    x = rng.standard_normal((5, 3)).astype(np.float32)
    variables, result = jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(x)), tm.state_dict())
    assert result == jl.LoadResult([], [])
    out, _ = lm.apply(variables, jnp.asarray(x), mutable=["batch_stats"])
    assert_close(out, tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


class _TorchEmbed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear_1 = torch.nn.Linear(2, 3)


class _LinenEmbed(nn.Module):
    @nn.compact
    def __call__(self, x):
        return jl.Linear(2, 3, name="linear_1")(x)


def test_linen_keys_ending_in_digits_are_not_list_indices():
    variables, result = jl.load_state_dict(_LinenEmbed().init(jax.random.key(0), jnp.ones((1, 2))),
                                           _TorchEmbed().state_dict())
    assert result == jl.LoadResult([], [])
    assert sorted(jl.state_dict(variables)) == ["linear_1.bias", "linear_1.weight"]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_dropout_kept_values_are_bit_equal_to_torchs(rng, dtype):
    # torch's CPU dropout: noise = bernoulli(1 - p).div_(1 - p) in the input's dtype (the factor
    # 1 / float32(1 - p) rounded to float16/bfloat16), then input * noise. Each column holds one
    # positive value repeated, so its kept value is the column's maximum.
    jdt, tdt = jnp.dtype(dtype), getattr(torch, dtype)
    values = jnp.asarray(rng.uniform(0.1, 10.0, 128).astype(np.float32)).astype(jdt)
    x = jnp.tile(values, (600, 1))
    xt = torch.tensor(np.asarray(x.astype(jnp.float32))).to(tdt)
    torch.manual_seed(0)
    differing = []
    for i, p in enumerate(np.round(np.arange(0.01, 1.0, 0.01), 2).tolist()):
        want = torch.nn.functional.dropout(xt, p).float().numpy().max(0)
        got = np.asarray(F.dropout(x, p, rng=jax.random.key(i)).astype(jnp.float32)).max(0)
        both = (want != 0) & (got != 0)
        assert both.sum() > 100
        if not np.array_equal(got[both], want[both]):
            differing.append(p)
    assert differing == []
    # the reviewer's case: float16 p=0.03, x=1.7 -> 1.7529297 (rounding 1 - p to float16 first gave 1.7519531)
    y = F.dropout(jnp.full(64, 1.7, jnp.float16), 0.03, rng=jax.random.key(0))
    assert set(np.unique(np.asarray(y, np.float32)).tolist()) <= {0.0, float(np.float16(1.7529297))}


# --- BatchNorm: torch's eps rule, partial statistics, empty batches, momentum=None, (1, C) weights -----


def _torch_error(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the oracle's exception, whatever its type
        return type(e), str(e)
    return None


@pytest.mark.parametrize("eps", [-1.0, -1e-7, 0.0, 1e-5])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("stats", [True, False])
def test_batch_norm_eps_rule_matches_torch(rng, eps, training, stats):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    t = torch.nn.BatchNorm2d(3, eps=eps, track_running_stats=stats)
    t.train(training)
    want = _torch_error(lambda: t(torch.tensor(x)))
    tf = _torch_error(lambda: torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True, eps=eps))
    m = jn.BatchNorm2d(3, eps=eps, track_running_stats=stats)  # torch's constructors accept any eps
    m.train() if training else m.eval()
    lm = jl.BatchNorm2d(3, eps=eps, track_running_stats=stats)
    variables = jl.BatchNorm2d(3, track_running_stats=stats).init(jax.random.key(0), jnp.asarray(x))
    calls = (lambda: m(jnp.asarray(x)),
             lambda: lm.apply(variables, jnp.asarray(x), use_running_average=not training, mutable=["batch_stats"])[0])
    for call in calls:
        if want is None:
            assert_close(call(), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
        else:
            assert want[0] is ValueError
            with pytest.raises(ValueError, match=re.escape(want[1])):
                call()
    # the functional form in training, with no running statistics
    if tf is None:
        F.batch_norm(jnp.asarray(x), None, None, training=True, eps=eps)
    else:
        with pytest.raises(ValueError, match="batch_norm eps must be positive during training"):
            F.batch_norm(jnp.asarray(x), None, None, training=True, eps=eps)
    z, o = np.zeros(3, np.float32), np.ones(3, np.float32)
    te = _torch_error(lambda: torch.nn.functional.batch_norm(torch.tensor(x), torch.tensor(z), torch.tensor(o),
                                                             eps=eps))
    if te is None:
        assert_close(F.batch_norm(jnp.asarray(x), z, o, eps=eps),
                     torch.nn.functional.batch_norm(torch.tensor(x), torch.tensor(z), torch.tensor(o),
                                                    eps=eps).numpy(), rtol=1e-6, atol=1e-6)
    else:
        with pytest.raises(ValueError, match="batch_norm eps must be non-negative"):
            F.batch_norm(jnp.asarray(x), z, o, eps=eps)


def test_batch_norm_functional_edge_cases_match_torch(rng):
    TF = torch.nn.functional
    x = rng.standard_normal((4, 3, 2)).astype(np.float32)
    z, o = np.zeros(3, np.float32), np.ones(3, np.float32)
    # one of the two running statistics in training: torch's ValueError
    for rm, rv in ((z, None), (None, o)):
        targs = [None if a is None else torch.tensor(a) for a in (rm, rv)]
        want = _torch_error(lambda targs=targs: TF.batch_norm(torch.tensor(x), *targs, training=True))
        assert want is not None and want[0] is ValueError and "both be None or neither" in want[1]
        with pytest.raises(ValueError, match="both be None or neither be None"):
            F.batch_norm(jnp.asarray(x), rm, rv, training=True)
    # momentum=None in the functional call: torch's TypeError
    assert _torch_error(lambda: TF.batch_norm(torch.tensor(x), torch.tensor(z), torch.tensor(o),
                                              momentum=None))[0] is TypeError
    with pytest.raises(TypeError, match="`momentum` must be a float, not None"):
        F.batch_norm(jnp.asarray(x), z, o, momentum=None)  # type: ignore[arg-type]
    # weight/bias with C elements in another shape: torch accepts (1, C) and (C, 1)
    w, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    for shape in ((1, 3), (3, 1)):
        for training in (True, False):
            want = TF.batch_norm(torch.tensor(x), torch.tensor(z), torch.tensor(o), torch.tensor(w.reshape(shape)),
                                 torch.tensor(b.reshape(shape)), training)
            got = F.batch_norm(jnp.asarray(x), z, o, w.reshape(shape), b.reshape(shape), training)
            assert_close(got, want.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`weight` should contain 3 elements"):
        F.batch_norm(jnp.asarray(x), z, o, np.ones(2, np.float32))
    # an empty batch in training: torch returns the empty output, running statistics untouched
    for empty in (x[:0], np.zeros((2, 3, 0), np.float32)):
        rm, rv = torch.zeros(3), torch.full((3,), 2.0)
        want = TF.batch_norm(torch.tensor(empty), rm, rv, training=True)
        got = F.batch_norm(jnp.asarray(empty), None, None, training=True)
        assert got.shape == tuple(want.shape)
        new_m, new_v = F.batch_norm_running_stats(jnp.asarray(empty), jnp.zeros(3), jnp.full(3, 2.0))
        np.testing.assert_array_equal(new_m, rm.numpy())
        np.testing.assert_array_equal(new_v, rv.numpy())
    for momentum in (0.1, None):  # modules: the counter still counts, as torch's
        t, m = torch.nn.BatchNorm1d(3, momentum=momentum), jn.BatchNorm1d(3, momentum=momentum)
        lm = jl.BatchNorm1d(3, momentum=momentum)
        assert m(jnp.zeros((0, 3))).shape == tuple(t(torch.zeros(0, 3)).shape) == (0, 3)
        v = lm.init(jax.random.key(0), jnp.zeros((0, 3)))
        _, upd = lm.apply(v, jnp.zeros((0, 3)), mutable=["batch_stats"])
        for got in (jn.state_dict(m), jl.state_dict({**v, **upd})):
            for k, want in _sd(t).items():
                np.testing.assert_array_equal(np.asarray(got[k]), want, err_msg=k)


def test_state_dict_without_num_batches_tracked_loads_strictly_as_in_torch(tmp_path):
    # torch's _NormBase._load_from_state_dict: without `_metadata` saying version 2 (a plain dict, a
    # safetensors file) a missing counter is no error and keeps the module's value (0 when fresh).
    import safetensors.numpy

    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    for _ in range(3):
        tnet(torch.randn(5, 3))
    full = tnet.state_dict()
    plain = {k: v.numpy() for k, v in full.items() if not k.endswith("num_batches_tracked")}
    safetensors.numpy.save_file(plain, str(tmp_path / "old.safetensors"))
    for source in (plain, str(tmp_path / "old.safetensors")):
        fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        tsrc = {k: torch.tensor(v) for k, v in plain.items()}
        assert tuple(fresh.load_state_dict(tsrc)) == ([], [])
        m = jn.Sequential(jn.Linear(3, 4, rngs=nnx.Rngs(0)), jn.BatchNorm1d(4))
        assert jn.load_state_dict(m, source) == jn.LoadResult([], [])
        lm = jl.Sequential([jl.Linear(3, 4), jl.BatchNorm1d(4)])
        variables, result = jl.load_state_dict(lm.init(jax.random.key(0), jnp.ones((2, 3))), source)
        assert result == jl.LoadResult([], [])
        for got in (jn.state_dict(m), jl.state_dict(variables)):
            for k, v in fresh.state_dict().items():
                np.testing.assert_array_equal(np.asarray(got[k]), v.numpy(), err_msg=k)
        assert int(jn.state_dict(m)["1.num_batches_tracked"]) == 0
    # a trained module keeps its counter, as torch's does
    m(jnp.ones((2, 3)))
    m(jnp.ones((2, 3)))
    tnet2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    tnet2(torch.randn(2, 3))
    tnet2(torch.randn(2, 3))
    tnet2.load_state_dict({k: torch.tensor(v) for k, v in plain.items()})
    jn.load_state_dict(m, plain)
    assert int(m[1].num_batches_tracked[...]) == int(tnet2[1].num_batches_tracked) == 2
    # torch's own state_dict (its `_metadata` says version 2) with the key removed is strict about it
    del full["1.num_batches_tracked"]
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).load_state_dict(full)
    with pytest.raises(jaxnn.CheckpointError, match="Missing key.*1.num_batches_tracked"):
        jn.load_state_dict(m, full)
    with pytest.raises(jaxnn.CheckpointError, match="Missing key.*1.num_batches_tracked"):
        jl.load_state_dict(lm.init(jax.random.key(0), jnp.ones((2, 3))), full)
    # running statistics themselves stay required
    with pytest.raises(jaxnn.CheckpointError, match="Missing key.*1.running_var"):
        jn.load_state_dict(m, {k: v for k, v in plain.items() if k != "1.running_var"})


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name,args,shape", [("GroupNorm", (2, 4), (2, 4, 3, 3)),
                                             ("LayerNorm", ((3, 3),), (2, 4, 3, 3)),
                                             ("BatchNorm2d", (4,), (2, 4, 3, 3))])
def test_norm_modules_with_float32_parameters_keep_half_input_dtype(rng, dtype, name, args, shape):
    # torch: a default (float32) norm layer applied to float16/bfloat16 input returns the input's dtype
    t = getattr(torch.nn, name)(*args)
    with torch.no_grad():
        for p in t.parameters():
            p.uniform_(-1.0, 1.0)
    m = getattr(jn, name)(*args)
    lm = getattr(jl, name)(*args)
    jn.load_state_dict(m, t.state_dict())
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    xj = jnp.asarray(x).astype(dtype)
    want = t(torch.tensor(np.asarray(xj.astype(jnp.float32))).to(getattr(torch, dtype)))
    assert want.dtype == getattr(torch, dtype)
    got = m(xj)
    assert got.dtype == jnp.dtype(dtype)
    variables, _ = jl.load_state_dict(lm.init(jax.random.key(0), xj), t.state_dict())
    out, _ = lm.apply(variables, xj, mutable=["batch_stats"])
    np.testing.assert_array_equal(out, got)  # nnx == linen
    if name != "BatchNorm2d":  # the module is its function with the float32 parameters, bit for bit
        sd = jn.state_dict(m)
        ref = (F.group_norm(xj, 2, sd["weight"], sd["bias"]) if name == "GroupNorm"
               else F.layer_norm(xj, (3, 3), sd["weight"], sd["bias"]))
        np.testing.assert_array_equal(got, ref)
    eps = float(jnp.finfo(dtype).eps)
    assert_close(got, want.detach().float().numpy(), rtol=2 * eps, atol=2 * eps, what=name)


NEGATIVE_SIZES = [
    ("GroupNorm", (2, -4), {}, "`num_channels` must be a non-negative int, got -4"),
    ("LayerNorm", (-1,), {}, "`normalized_shape` must have non-negative sizes, got -1"),
    ("LayerNorm", ((4, -2),), {}, "`normalized_shape` must have non-negative sizes, got \\(4, -2\\)"),
]


@pytest.mark.parametrize("name,args,kwargs,fragment", NEGATIVE_SIZES)
def test_negative_norm_sizes_fail_at_construction_as_in_torch(name, args, kwargs, fragment):
    with pytest.raises(RuntimeError, match="negative dimension"):
        getattr(torch.nn, name)(*args, **kwargs)
    with pytest.raises(ValueError, match=fragment):
        getattr(jn, name)(*args, **kwargs)
    with pytest.raises(ValueError, match=fragment):
        getattr(jl, name)(*args, **kwargs)
    # without parameters torch creates nothing and accepts the size; so does jaxnn
    no_params = {"affine": False} if name == "GroupNorm" else {"elementwise_affine": False}
    getattr(torch.nn, name)(*args, **no_params)
    getattr(jn, name)(*args, **no_params)
    getattr(jl, name)(*args, **no_params)


def test_nnx_dropout_without_a_dropout_stream_builds_and_fails_only_when_drawing():
    x = jnp.ones((4, 5))
    d = jn.Dropout(0.1, rngs=nnx.Rngs(params=0))  # an inference-only port: no `dropout` stream
    with pytest.raises(ValueError, match="neither a `dropout` nor a `default` stream.*nnx.Rngs"):
        d(x)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    for p in (0.0, 1.0):  # no draw needed in training either
        np.testing.assert_array_equal(jn.Dropout(p, rngs=nnx.Rngs(params=0))(x),
                                      torch.nn.functional.dropout(torch.ones(4, 5), p).numpy())
    net = jn.Sequential(jn.Linear(5, 5, rngs=nnx.Rngs(params=0)), jn.Dropout(0.5, rngs=nnx.Rngs(params=0)))
    net.eval()
    assert net(x).shape == (4, 5)


class _Sowing(nnx.Module):
    def __init__(self):
        self.linear = jn.Linear(3, 4, rngs=nnx.Rngs(0))
        self.bn = jn.BatchNorm1d(4)
        self.cache = nnx.Cache(jnp.zeros(2))
        self.other = nnx.Variable(jnp.ones(2))
        self.drop = jn.Dropout(0.5, rngs=nnx.Rngs(0))

    def __call__(self, x):
        h = self.linear(x)
        self.sow(nnx.Intermediate, "hidden", h)
        return self.drop(self.bn(h))


class _TorchSowing(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)
        self.bn = torch.nn.BatchNorm1d(4)
        self.drop = torch.nn.Dropout(0.5)


def test_nnx_state_dict_holds_only_parameters_and_persistent_buffers():
    m = _Sowing()
    with warnings.catch_warnings():  # flax deprecates sow() outside nnx.capture; it still stores the value
        warnings.simplefilter("ignore", DeprecationWarning)
        m(jnp.ones((2, 3)))
    m.extra = nnx.Intermediate(jnp.ones(3))
    assert any(isinstance(v, nnx.Intermediate) for _, v in nnx.iter_graph(m))
    want = _TorchSowing().state_dict()
    sd = jn.state_dict(m)
    assert set(sd) == set(want)
    assert jn.load_state_dict(m, want) == jn.LoadResult([], [])


def test_linen_sequential_accepts_plain_callables_like_nnx_and_flax(rng):
    x = jnp.asarray(rng.standard_normal((3, 2)).astype(np.float32))
    lm = jl.Sequential([jl.Linear(2, 2), F.silu, jl.Linear(2, 3)])
    variables = lm.init(jax.random.key(0), x)
    m = jn.Sequential(jn.Linear(2, 2, rngs=nnx.Rngs(0)), F.silu, jn.Linear(2, 3, rngs=nnx.Rngs(1)))
    assert sorted(jl.state_dict(variables)) == sorted(jn.state_dict(m)) == ["0.bias", "0.weight", "2.bias",
                                                                          "2.weight"]
    variables, result = jl.load_state_dict(variables, jn.state_dict(m))
    assert result == jl.LoadResult([], [])
    np.testing.assert_array_equal(lm.apply(variables, x), m(x))
    flax_seq = nn.Sequential([nn.Dense(2), F.silu])  # flax's own Sequential takes callables too
    flax_seq.init(jax.random.key(0), x)


def test_nnx_training_flag_follows_eval_and_train_on_every_layer():
    r = nnx.Rngs(0)
    tnet = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.GELU(), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.1),
                               torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Identity()]))
    net = jn.Sequential(jn.Linear(2, 4, rngs=r), jn.GELU(), jn.BatchNorm1d(4), jn.Dropout(0.1, rngs=r),
                        jn.ModuleList([jn.Linear(4, 4, rngs=r), jn.Identity()]), jn.GEGLU(4, 2, rngs=r),
                        jn.Conv1d(1, 1, 1, rngs=r), jn.GroupNorm(1, 4), jn.LayerNorm(4), jn.PReLU(), jn.Flatten())
    modules = [m for _, m in nnx.iter_modules(net)]
    assert all(m.training for m in modules) and all(m.training for m in tnet.modules())
    tnet.eval()
    net.eval()
    assert not any(m.training for m in tnet.modules())
    assert [m.training for m in modules] == [False] * len(modules)
    net.train()
    assert all(m.training for m in modules)
