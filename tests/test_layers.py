"""The layer registry against torch: every layer, several argument sets, nnx == linen == functional,
torch's state_dict (parameters and buffers) loads strictly, outputs match in train and eval mode.
BatchNorm and Dropout, the first layers with buffers, train/eval and randomness, in depth."""

from __future__ import annotations

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
    ("Flatten", (), {}, (2, 3, 4)),
    ("Flatten", (0, 1), {}, (2, 3, 4)),
    ("Identity", (), {}, (2, 3)),
    ("GELU", ("tanh",), {}, (2, 3)),
    ("Softmax", (1,), {}, (2, 3)),
]
IDS = [f"{n}-{i}" for i, (n, *_) in enumerate(LAYERS)]
RANDOM_IN_TRAINING = {"Dropout"}


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
    x = jnp.ones(shape)
    for got in (jn.state_dict(m), jl.state_dict(lm.init(jax.random.key(0), x))):
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
    variables, result = jl.load_state_dict(lm.init(jax.random.key(0), jnp.ones(shape)), sd)
    assert result == jl.LoadResult([], [])
    for step in range(2):
        x = rng.standard_normal(shape).astype(np.float32)
        for training in (True, False):
            t.train(training)
            m.train() if training else m.eval()
            want = t(torch.tensor(x)).detach().numpy()
            got = m(jnp.asarray(x))
            out, updates = lm.apply(variables, jnp.asarray(x), mutable=["batch_stats"],
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
    if isinstance(lm, jl.Dropout):
        return {"deterministic": not training}
    if isinstance(lm, jl.BatchNorm1d | jl.BatchNorm2d | jl.BatchNorm3d):
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
