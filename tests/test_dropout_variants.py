"""dropout1d/2d/3d, alpha_dropout, feature_alpha_dropout and their modules against torch.

The masks come from different generators, so values are compared element by element against the
two outcomes torch's own op sequence gives (kept / dropped), computed by torch; rates, channel
constancy, moments and gradients (mask * scale) by statistics and identities."""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

TF = torch.nn.functional
ALPHA = 1.7580993408473766
FEATURE = {"dropout1d": True, "dropout2d": True, "dropout3d": True, "alpha_dropout": False,
           "feature_alpha_dropout": True}
SHAPES = {"dropout1d": (40, 30, 3), "dropout2d": (40, 30, 2, 2), "dropout3d": (30, 30, 2, 1, 2),
          "alpha_dropout": (60, 50), "feature_alpha_dropout": (40, 30, 3)}
NAMES = sorted(FEATURE)
DTYPES = ["float32", "float16", "bfloat16"]


def _torch_candidates(name, x_t, p):
    """torch's two possible outcomes per element (kept, dropped), by torch's op sequence
    (ATen _dropout_impl) with a constant noise of 1 or 0."""
    out = []
    for bit in (1.0, 0.0):
        noise = torch.full_like(x_t, bit)
        if "alpha" in name:
            a = 1.0 / np.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))
            b = noise.add(-1).mul_(ALPHA * a).add_(ALPHA * a * p)
            out.append((x_t * noise.mul_(a)).add_(b))
        else:
            out.append(x_t * noise.div_(1 - p))
    return [o.float().numpy() for o in out]


def _same(y, want, name, dtype):
    """Elementwise agreement with one of torch's outcomes: bit for bit, except float32 alpha
    dropout, where XLA may contract ``input * noise + b`` into one fused multiply-add (one rounding
    instead of torch's two): 1 ulp of the result, or of b where the sum cancels."""
    if "alpha" in name and dtype == "float32":
        return np.isclose(y, want, rtol=2.4e-7, atol=1e-6)
    return y == want


def _jcall(name, x, p, key, training=True):
    return getattr(F, name)(x, p, training, rng=key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("name", NAMES)
def test_values_are_torchs_two_outcomes_bit_exact(rng, name, p, dtype):
    x = rng.standard_normal(SHAPES[name]).astype(np.float32) * 2
    xj = jnp.asarray(x).astype(dtype)
    x_t = torch.tensor(as_f(xj)).to(getattr(torch, dtype))
    kept, dropped = _torch_candidates(name, x_t, p)
    torch.manual_seed(0)
    t = getattr(TF, name)(x_t, p, True).float().numpy()
    assert np.all((t == kept) | (t == dropped))  # the candidates are torch's: validates them
    y = jax.jit(lambda v: _jcall(name, v, p, jax.random.key(1)))(xj)
    assert y.dtype == jnp.dtype(dtype)
    y = as_f(y)
    is_kept, is_dropped = _same(y, kept, name, dtype), _same(y, dropped, name, dtype)
    assert np.all(is_kept | is_dropped)
    # the rates: torch's and jaxnn's keep fractions agree with 1 - p (per unit)
    unit = (slice(None), slice(None)) + (0,) * (len(x.shape) - 2) if FEATURE[name] else Ellipsis
    frac_j, frac_t = is_kept[unit].mean(), (t == kept)[unit].mean()
    n = is_kept[unit].size
    tol = 5 * np.sqrt(p * (1 - p) / n)
    assert abs(frac_j - (1 - p)) < tol and abs(frac_t - (1 - p)) < tol


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"])
def test_masks_are_channel_wise(rng, name):
    x = rng.standard_normal(SHAPES[name]).astype(np.float32) + 5  # no zeros
    y = np.asarray(_jcall(name, jnp.asarray(x), 0.5, jax.random.key(0)))
    kept = _same(y, _torch_candidates(name, torch.tensor(x), 0.5)[0], name, "float32")
    flat = kept.reshape(kept.shape[0], kept.shape[1], -1)
    assert np.all(flat == flat[..., :1])  # one decision per (n, c)
    assert 0 < flat[..., 0].mean() < 1


@pytest.mark.parametrize("name", ["alpha_dropout", "feature_alpha_dropout"])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_keeps_selu_mean_and_variance(name, p):
    x = jax.random.normal(jax.random.key(3), (400, 500))
    y = _jcall(name, x, p, jax.random.key(4))
    assert abs(float(y.mean())) < 0.03 and abs(float(y.var()) - 1) < 0.05
    torch.manual_seed(0)
    t = getattr(TF, name)(torch.tensor(np.asarray(x)), p, True)
    assert abs(float(t.mean())) < 0.03 and abs(float(t.var()) - 1) < 0.05


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d"])
def test_dropout_mean_is_preserved(name):
    shape = (200, 100) + SHAPES[name][2:]
    x = jnp.ones(shape)
    assert abs(float(_jcall(name, x, 0.3, jax.random.key(5)).mean()) - 1) < 0.03


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_is_mask_times_scale(rng, name, dtype):
    x = jnp.asarray(rng.standard_normal(SHAPES[name]).astype(np.float32)).astype(dtype)
    key = jax.random.key(2)
    f = lambda v: _jcall(name, v, 0.4, key)  # noqa: E731
    y, vjp = jax.vjp(f, x)
    cot = jnp.asarray(rng.standard_normal(y.shape).astype(np.float32)).astype(dtype)
    (g,) = vjp(cot)
    kept = _same(as_f(y), _torch_candidates(name, torch.tensor(as_f(x)).to(getattr(torch, dtype)), 0.4)[0], name,
                 dtype)
    # torch's backward: grad * noise (rounded once), the same noise it multiplied the input by
    x_t = torch.tensor(as_f(x)).to(getattr(torch, dtype)).requires_grad_(True)
    noise_kept = _torch_candidates(name, torch.ones((), dtype=getattr(torch, dtype)), 0.4)[0]
    if "alpha" in name:
        a = 1.0 / np.sqrt((ALPHA * ALPHA * 0.4 + 1) * 0.6)
        noise_kept = torch.ones((), dtype=getattr(torch, dtype)).mul_(a).float().numpy()
    noise = torch.tensor(np.where(kept, noise_kept, 0).astype(np.float32)).to(getattr(torch, dtype))
    (x_t * noise).backward(torch.tensor(as_f(cot)).to(getattr(torch, dtype)))
    np.testing.assert_array_equal(as_f(g), x_t.grad.float().numpy())


@pytest.mark.parametrize("name", NAMES)
def test_eval_p0_p1_and_empty_like_torch(name):
    x = np.asarray([[1.0, np.nan, np.inf, -3.0], [0.5, -0.0, 2.0, 7.0]], np.float32).reshape(
        (2, 4) + (1,) * (len(SHAPES[name]) - 2))
    xj, xt = jnp.asarray(x), torch.tensor(x)
    for p in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(getattr(F, name)(xj, p, False), getattr(TF, name)(xt, p, False).numpy())
    for p in (0.0, 1.0):  # deterministic in training: p=0 identity, p=1 input * 0 (nan stays nan)
        np.testing.assert_array_equal(getattr(F, name)(xj, p, True), getattr(TF, name)(xt, p, True).numpy())
    empty = np.zeros((0,) + x.shape[1:], np.float32)
    assert getattr(F, name)(jnp.asarray(empty), 0.5, True).shape == getattr(TF, name)(
        torch.tensor(empty), 0.5, True).shape


def test_training_defaults_are_torchs():
    x = jnp.ones((2, 3, 4))
    # alpha variants default to training=False (identity), the others to True
    np.testing.assert_array_equal(F.alpha_dropout(x), x)
    np.testing.assert_array_equal(F.feature_alpha_dropout(x), x)
    np.testing.assert_array_equal(TF.alpha_dropout(torch.ones(2, 3, 4)).numpy(), x)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        F.dropout1d(x)


# --- ranks, warnings and errors ----------------------------------------------------------------------


def _verdict(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001
            return ("error", str(e), [str(x.message) for x in w])
    return ("ok", tuple(out.shape), [str(x.message) for x in w])


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout",
                                  "alpha_dropout"])
@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4, 5, 6])
def test_ranks_warnings_and_errors_follow_torch(name, ndim):
    shape = (2, 3, 2, 1, 2, 1)[:ndim]
    want = _verdict(lambda: getattr(TF, name)(torch.ones(shape), 0.5, True))
    got = _verdict(lambda: getattr(F, name)(jnp.ones(shape), 0.5, True, rng=jax.random.key(0)))
    assert got[0] == want[0], (want, got)
    assert got[2] == want[2]  # the same warnings, word for word
    if want[0] == "ok":
        assert got[1] == want[1]
    else:
        key = "Expected 2D or 3D input" if "Expected 2D or 3D" in want[1] else "at least 2 dimensions"
        assert key.lower() in want[1].lower() and key.lower() in got[1].lower()


def test_rank_error_types():
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        TF.dropout1d(torch.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match=re.escape("dropout1d: Expected 2D or 3D input, but received a 4D input")):
        F.dropout1d(jnp.ones((2, 3, 4, 5)), rng=jax.random.key(0))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        TF.feature_alpha_dropout(torch.ones(3), 0.5, True)
    with pytest.raises(ValueError, match="feature_alpha_dropout: feature dropout requires at least 2 dimensions"):
        F.feature_alpha_dropout(jnp.ones(3), 0.5, True, rng=jax.random.key(0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5", None])
def test_bad_p_and_dtype(name, p):
    x = jnp.ones(SHAPES[name][:2] + (2,) * (len(SHAPES[name]) - 2))
    try:
        getattr(TF, name)(torch.ones(x.shape), p, True)
        torch_raises = False
    except (ValueError, TypeError):
        torch_raises = True
    if p is True:  # torch: bool is an int, and 1 is a valid p; jaxnn rejects bool (as F.dropout does)
        assert not torch_raises
    else:
        assert torch_raises
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        getattr(F, name)(x, p, True, rng=jax.random.key(0))
    with pytest.raises(TypeError, match="`input`"):
        getattr(F, name)(jnp.ones(x.shape, jnp.int32), 0.5, True, rng=jax.random.key(0))


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(NAMES), p=st.floats(0.05, 0.95), seed=st.integers(0, 2**16))
def test_hypothesis_outcomes_and_jit(name, p, seed):
    x = np.random.default_rng(seed).standard_normal(SHAPES[name][:2] + (2,) * (len(SHAPES[name]) - 2))
    x = x.astype(np.float32)
    kept, dropped = _torch_candidates(name, torch.tensor(x), p)
    key = jax.random.key(seed)
    y = np.asarray(_jcall(name, jnp.asarray(x), p, key))
    yj = np.asarray(jax.jit(lambda v: _jcall(name, v, p, key))(jnp.asarray(x)))
    np.testing.assert_array_equal(_same(yj, kept, name, "float32"), _same(y, kept, name, "float32"))  # same mask
    assert np.all(_same(y, kept, name, "float32") | _same(y, dropped, name, "float32"))
    ys = jax.vmap(lambda v: _jcall(name, v, p, key))(jnp.stack([jnp.asarray(x)] * 2))
    assert ys.shape == (2,) + x.shape


# --- modules -------------------------------------------------------------------------------------------

MODULES = {"Dropout1d": "dropout1d", "Dropout2d": "dropout2d", "Dropout3d": "dropout3d",
           "AlphaDropout": "alpha_dropout", "FeatureAlphaDropout": "feature_alpha_dropout"}


@pytest.mark.parametrize("cls", sorted(MODULES))
def test_modules_train_eval_and_functional_parity(rng, cls):
    name = MODULES[cls]
    x = jnp.asarray(rng.standard_normal(SHAPES[name]).astype(np.float32))
    t = getattr(torch.nn, cls)(0.3)
    m = getattr(jn, cls)(0.3, rngs=nnx.Rngs(dropout=7))
    assert m.p == t.p == 0.3 and m.inplace is t.inplace is False
    assert m.training and t.training
    expected_key = nnx.Rngs(dropout=7)["dropout"].fork()()
    y = m(x)
    np.testing.assert_array_equal(y, getattr(F, name)(x, 0.3, True, rng=expected_key))  # module == function
    kept, dropped = _torch_candidates(name, torch.tensor(np.asarray(x)), 0.3)
    assert np.all(_same(np.asarray(y), kept, name, "float32") | _same(np.asarray(y), dropped, name, "float32"))
    assert not np.array_equal(m(x), y)  # the stream advances
    m.eval()
    t.eval()
    np.testing.assert_array_equal(m(x), t(torch.tensor(np.asarray(x))).numpy())
    assert jn.state_dict(m) == {} and t.state_dict() == {}
    lm = getattr(jl, cls)(0.3)
    a = lm.apply({}, x, rngs={"dropout": jax.random.key(0)})
    np.testing.assert_array_equal(a, lm.apply({}, x, rngs={"dropout": jax.random.key(0)}))
    assert np.all(_same(np.asarray(a), kept, name, "float32") | _same(np.asarray(a), dropped, name, "float32"))
    np.testing.assert_array_equal(lm.apply({}, x, deterministic=True), x)
    np.testing.assert_array_equal(getattr(jl, cls)(0.3, deterministic=True).apply({}, x), x)
    with pytest.raises(Exception, match="dropout"):
        lm.apply({}, x)
    with pytest.raises(ValueError, match="`dropout` stream"):
        getattr(jn, cls)(0.3)(x)
    for p in (-0.5, 2.0):
        with pytest.raises(ValueError, match="dropout probability"):
            getattr(torch.nn, cls)(p)
        with pytest.raises(ValueError, match="dropout probability"):
            getattr(jn, cls)(p)
        with pytest.raises(ValueError, match="dropout probability"):
            getattr(jl, cls)(p)


def test_dropout2d_module_warns_like_torch_on_3d_input():
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        torch.nn.Dropout2d(0.5)(torch.ones(2, 3, 4))
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        jn.Dropout2d(0.5, rngs=nnx.Rngs(0))(jnp.ones((2, 3, 4)))
