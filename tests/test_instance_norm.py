"""instance_norm / InstanceNorm{1,2,3}d and local_response_norm / LocalResponseNorm against torch:
outputs and vjp gradients, running statistics, half precision, unbatched inputs, errors."""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import assert_close, check, reduction_tol, to_torch

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

HALF = [(jnp.float16, torch.float16), (jnp.bfloat16, torch.bfloat16)]


def _rand(rng, shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def _torch_error(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the oracle's exception, whatever its type
        return type(e), str(e)
    return None


# --- instance_norm: outputs and gradients -------------------------------------------------------------

SHAPES = [(2, 3, 7), (1, 4, 5, 6), (2, 2, 3, 4, 2), (3, 2, 33)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_instance_norm_matches_torch(rng, shape, affine, eps):
    x = _rand(rng, shape, 2.0, 0.5)
    k = int(np.prod(shape[2:]))
    tol = reduction_tol(k)
    if affine:
        c = shape[1]
        w, b = _rand(rng, (c,)), _rand(rng, (c,))
        check(lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=eps),
              lambda x, w, b: TF.instance_norm(x, weight=w, bias=b, eps=eps), [x, w, b],
              rtol=tol, atol=tol * 4, grad_rtol=tol * 8, grad_atol=tol * 8)
    else:
        check(lambda x: F.instance_norm(x, eps=eps), lambda x: TF.instance_norm(x, eps=eps), [x],
              rtol=tol, atol=tol * 4, grad_rtol=tol * 8, grad_atol=tol * 8)


def test_instance_norm_keeps_precision_far_from_zero(rng):
    # mean 1e4, std 1: the shifted, compensated moments (group_norm's) keep float32 precision
    x = _rand(rng, (2, 3, 64), 1.0, 1e4)
    got = np.asarray(F.instance_norm(jnp.asarray(x)), np.float64)
    x64 = x.astype(np.float64)
    mean = x64.mean(2, keepdims=True)
    ref = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(2, keepdims=True) + 1e-5)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-3)  # the input itself is rounded to 1e4 * 2^-24
    assert_close(got, TF.instance_norm(torch.tensor(x)).numpy(), rtol=0, atol=2e-3)


@pytest.mark.parametrize("shape", [(2, 3, 8), (3, 2, 4, 5)])
@pytest.mark.parametrize("momentum", [0.1, 0.7, 0.0])
def test_running_stats_match_torchs_in_place_update(rng, shape, momentum):
    x = _rand(rng, shape, 3.0, 1.0)
    c = shape[1]
    rm, rv = _rand(rng, (c,)), (np.abs(_rand(rng, (c,))) + 0.5).astype(np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    want = TF.instance_norm(torch.tensor(x), trm, trv, momentum=momentum)
    got = F.instance_norm(jnp.asarray(x), rm, rv, momentum=momentum)
    assert_close(got, want.numpy(), rtol=1e-5, atol=1e-5)
    new_m, new_v = F.instance_norm_running_stats(jnp.asarray(x), rm, rv, momentum)
    assert_close(new_m, trm.numpy(), rtol=2e-6, atol=1e-6, what="running_mean")
    assert_close(new_v, trv.numpy(), rtol=2e-6, atol=1e-6, what="running_var (unbiased, averaged over N)")
    # a traced momentum works too (modules pass one)
    jm, jv = jax.jit(F.instance_norm_running_stats)(jnp.asarray(x), rm, rv, jnp.float32(momentum))
    assert_close(jv, trv.numpy(), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("affine", [False, True])
def test_use_input_stats_false_uses_running_statistics(rng, affine):
    x = _rand(rng, (2, 3, 5, 4))
    rm, rv = _rand(rng, (3,)), (np.abs(_rand(rng, (3,))) + 0.5).astype(np.float32)
    params = [_rand(rng, (3,)), _rand(rng, (3,))] if affine else []

    def jf(x, *p):
        return F.instance_norm(x, rm, rv, *p, use_input_stats=False)

    def tf(x, *p):
        return TF.instance_norm(x, torch.tensor(rm), torch.tensor(rv), *p, use_input_stats=False)

    check(jf, tf, [x, *params], rtol=2e-6, atol=2e-6, grad_rtol=1e-5, grad_atol=1e-5)
    # no spatial-size rule without input statistics, as torch: one position per (n, c) is fine
    one = _rand(rng, (2, 3, 1))
    assert_close(F.instance_norm(jnp.asarray(one), rm, rv, use_input_stats=False),
                 TF.instance_norm(torch.tensor(one), torch.tensor(rm), torch.tensor(rv),
                                  use_input_stats=False).numpy(), rtol=2e-6, atol=2e-6)


@settings(max_examples=20)
@given(n=st.integers(1, 3), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       seed=st.integers(0, 2**16), affine=st.booleans())
def test_instance_norm_random_configurations(n, c, spatial, seed, affine):
    if int(np.prod(spatial)) == 1:
        spatial = [*spatial[:-1], 2]
    rng = np.random.default_rng(seed)
    x = _rand(rng, (n, c, *spatial), 2.0, 1.0)
    tol = reduction_tol(int(np.prod(spatial)))
    w, b = (_rand(rng, (c,)), _rand(rng, (c,))) if affine else (None, None)
    want = TF.instance_norm(torch.tensor(x), None, None, None if w is None else torch.tensor(w),
                            None if b is None else torch.tensor(b)).numpy()
    ref = TF.instance_norm(torch.tensor(x, dtype=torch.float64), None, None,
                           None if w is None else torch.tensor(w, dtype=torch.float64),
                           None if b is None else torch.tensor(b, dtype=torch.float64)).numpy()
    got = np.asarray(jax.jit(F.instance_norm)(jnp.asarray(x), None, None, w, b))
    # torch's scalar kernel (ATEN_CPU_CAPABILITY=default) is off by ~1e-5 on two-element instances
    # (-0.9708557 / 0.97084045 for float64's +-0.970845): where torch is within float32 rounding of
    # float64 jaxnn must agree with it; in any case jaxnn must be as close to float64 as torch is,
    # plus float32 rounding, whichever torch kernel ran.
    if np.allclose(want, ref, rtol=tol, atol=8 * tol):
        assert_close(got, want, rtol=tol, atol=8 * tol)
    err, torch_err = np.abs(got - ref), np.abs(want - ref)
    assert np.all(err <= torch_err + tol * np.abs(ref) + 8 * tol), (np.max(err), np.max(torch_err))


# --- half precision -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 5, 12), (3, 4, 50), (2, 3, 7, 9)])
@pytest.mark.parametrize("params", ["none", "float32", "half"])
@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_instance_norm_half_precision_follows_torchs_kernel(rng, shape, params, dt):
    jdt, tdt = dt
    x = jnp.asarray(_rand(rng, shape, 3.0, 1.0)).astype(jdt)
    xt = torch.tensor(np.asarray(x.astype(jnp.float32))).to(tdt)
    c = shape[1]
    if params == "none":
        w = b = None
    else:
        w, b = jnp.asarray(_rand(rng, (c,))), jnp.asarray(_rand(rng, (c,)))
        if params == "half":
            w, b = w.astype(jdt), b.astype(jdt)
    tw = None if w is None else torch.tensor(np.asarray(w.astype(jnp.float32))).to(
        torch.float32 if params == "float32" else tdt)
    tb = None if b is None else torch.tensor(np.asarray(b.astype(jnp.float32))).to(tw.dtype)  # type: ignore[union-attr]
    want = TF.instance_norm(xt, weight=tw, bias=tb).float().numpy()
    got = F.instance_norm(x, weight=w, bias=b)
    assert got.dtype == jdt
    got = np.asarray(got.astype(jnp.float32))
    if params == "float32" or jdt == jnp.float16:
        # mixed kernel: float32 statistics, one rounding; float16 without float32 parameters: the
        # mean and 1/std stored in float16 first (torch's saved statistics), reproduced exactly
        np.testing.assert_array_equal(got, want)
    else:
        # bfloat16 without float32 parameters: torch also stores the sum of squared deviations in
        # bfloat16, summed in float32 vector lanes whose order decides the rounding of a few rows'
        # 1/std: within two bfloat16 units of the terms before the sum with bias, most elements exact
        bias_shape = (1, c) + (1,) * (len(shape) - 2)
        bias_abs = 0.0 if b is None else np.abs(np.asarray(b.astype(jnp.float32))).reshape(bias_shape)
        terms = np.abs(want) + bias_abs
        assert (np.abs(got - want) <= 2 * 2.0**-7 * terms).all()
        assert (got == want).mean() > 0.6


def test_instance_norm_half_with_float32_running_statistics(rng):
    # float32 running statistics alone do not make torch's kernel mixed: the output is the one
    # without them (half saved statistics), and the statistics are updated in float32
    x = jnp.asarray(_rand(rng, (2, 3, 10), 2.0, 1.0)).astype(jnp.float16)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    want = TF.instance_norm(torch.tensor(np.asarray(x.astype(jnp.float32))).half(), trm, trv).float().numpy()
    np.testing.assert_array_equal(np.asarray(F.instance_norm(x, rm, rv).astype(jnp.float32)), want)
    m, v = F.instance_norm_running_stats(x, rm, rv)
    assert m.dtype == jnp.float32
    # torch updates float16 copies of the statistics and averages them in float16: the results are
    # float16 values; its float16 mean is a vectorised half-precision sum, so one unit in the last
    # place of float16 either way
    for got, want in ((m, trm.numpy()), (v, trv.numpy())):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(got).astype(np.float16).astype(np.float32))
        assert_close(got, want, rtol=2.0**-10, atol=0)
    # with float32 weights torch's kernel is float32 throughout (pass them to select it)
    w = np.ones(3, np.float32)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    TF.instance_norm(torch.tensor(np.asarray(x.astype(jnp.float32))).half(), trm, trv, torch.tensor(w))
    m, v = F.instance_norm_running_stats(x, rm, rv, weight=w)
    assert_close(m, trm.numpy(), rtol=1e-6, atol=1e-7)
    assert_close(v, trv.numpy(), rtol=1e-6, atol=1e-7)


# --- errors -------------------------------------------------------------------------------------------

X = np.ones((2, 3, 4), np.float32)
Z3, O3 = np.zeros(3, np.float32), np.ones(3, np.float32)
IN_ERRORS = [
    # (jaxnn kwargs, torch kwargs (None: same), exception, fragment)
    ({"input": X[:, :, :1]}, None, ValueError, "Expected more than 1 spatial element when training"),
    ({"input": X[0]}, None, ValueError, "Expected more than 1 spatial element"),
    ({"input": X, "use_input_stats": False}, None, ValueError,
     "Expected running_mean and running_var to be defined when use_input_stats is false"),
    ({"input": X, "running_mean": Z3}, None, ValueError, "must either both be None or neither be None"),
    ({"input": X, "running_mean": np.zeros(4, np.float32), "running_var": np.ones(4, np.float32)}, None,
     ValueError, "`running_mean` must have shape \\(3,\\)"),
    ({"input": X, "weight": np.ones(4, np.float32)}, None, ValueError, "`weight` must have shape \\(3,\\)"),
    ({"input": X, "weight": np.ones((1, 3), np.float32)}, None, ValueError, "`weight` must have shape \\(3,\\)"),
    ({"input": X, "momentum": None}, None, TypeError, "`momentum` must be a float, not None"),
    ({"input": X, "weight": np.ones(3, np.float16)}, None, TypeError, "`weight` dtype \\(float16\\) must match"),
]


@pytest.mark.parametrize("kwargs,tkwargs,exc,fragment", IN_ERRORS)
def test_instance_norm_errors_where_torch_raises(kwargs, tkwargs, exc, fragment):
    tk = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in (tkwargs or kwargs).items()}
    assert _torch_error(lambda: TF.instance_norm(**tk)) is not None
    jk = {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    with pytest.raises(exc, match=fragment):
        F.instance_norm(**jk)


def test_instance_norm_accepts_what_torch_accepts(rng):
    x = _rand(rng, (2, 3, 4))
    for kw in ({"eps": -1e-6}, {"eps": 0.0}):  # torch's instance_norm does not check eps
        assert_close(F.instance_norm(jnp.asarray(x), **kw), TF.instance_norm(torch.tensor(x), **kw).numpy(),
                     rtol=1e-4, atol=1e-4)
    for empty in (np.zeros((0, 3, 4), np.float32), np.zeros((2, 3, 0), np.float32)):
        assert F.instance_norm(jnp.asarray(empty)).shape == tuple(TF.instance_norm(torch.tensor(empty)).shape)


# --- modules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,shape", [(1, (3, 7)), (2, (3, 4, 5)), (3, (3, 2, 3, 4))])
def test_instance_norm_modules_unbatched_input(rng, n, shape):
    x = _rand(rng, shape, 2.0, 1.0)
    t = getattr(torch.nn, f"InstanceNorm{n}d")(3, affine=True, track_running_stats=True)
    with torch.no_grad():
        t.weight.uniform_(-1, 1)
        t.bias.uniform_(-1, 1)
    m = getattr(jn, f"InstanceNorm{n}d")(3, affine=True, track_running_stats=True)
    jn.load_state_dict(m, t.state_dict())
    want = t(torch.tensor(x)).detach().numpy()
    assert_close(m(jnp.asarray(x)), want, rtol=1e-5, atol=1e-5)
    for k, v in t.state_dict().items():
        assert_close(jn.state_dict(m)[k], v.numpy(), rtol=2e-6, atol=1e-7, what=k)
    assert int(m.num_batches_tracked[...]) == int(t.num_batches_tracked) == 0  # never advanced
    t.eval()
    m.eval()
    assert_close(m(jnp.asarray(x)), t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_instance_norm_eval_mode_without_running_stats_uses_instance_statistics(rng):
    x = _rand(rng, (2, 3, 6), 2.0, 3.0)
    t = torch.nn.InstanceNorm1d(3).eval()
    m = jn.InstanceNorm1d(3)
    m.eval()
    want = t(torch.tensor(x)).numpy()
    assert_close(m(jnp.asarray(x)), want, rtol=1e-5, atol=1e-5)
    lm = jl.InstanceNorm1d(3)
    assert_close(lm.apply({}, jnp.asarray(x), use_running_average=True), want, rtol=1e-5, atol=1e-5)
    # with running statistics, eval mode uses them (fresh: mean 0, var 1 -> x / sqrt(1 + eps))
    m2 = jn.InstanceNorm1d(3, track_running_stats=True)
    m2.eval()
    t2 = torch.nn.InstanceNorm1d(3, track_running_stats=True).eval()
    assert_close(m2(jnp.asarray(x)), t2(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-6)


def test_instance_norm_module_channel_mismatch_like_torch(rng):
    x = _rand(rng, (2, 4, 5))
    with pytest.raises(ValueError, match=re.escape("expected input's size at dim=1 to match num_features (3)")):
        torch.nn.InstanceNorm1d(3, affine=True)(torch.tensor(x))
    for m in (jn.InstanceNorm1d(3, affine=True),):
        with pytest.raises(ValueError, match=re.escape("expected input's size at dim=1 to match num_features (3)")):
            m(jnp.asarray(x))
    with pytest.warns(UserWarning, match="does not match num_features") as record:
        want = torch.nn.InstanceNorm1d(3)(torch.tensor(x)).numpy()
    torch_message = str(record[0].message)
    with pytest.warns(UserWarning, match=re.escape(torch_message)):
        got = jn.InstanceNorm1d(3)(jnp.asarray(x))
    assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n,bad", [(1, (2, 3, 4, 5)), (2, (3, 4)), (3, (1, 2, 3, 4, 5, 6))])
def test_instance_norm_module_rank_errors_like_torch(n, bad):
    want = _torch_error(lambda: getattr(torch.nn, f"InstanceNorm{n}d")(2)(torch.ones(bad)))
    assert want is not None and want[0] is ValueError
    with pytest.raises(ValueError, match=re.escape(want[1])):
        getattr(jn, f"InstanceNorm{n}d")(2)(jnp.ones(bad))
    lm = getattr(jl, f"InstanceNorm{n}d")(2)
    with pytest.raises(ValueError, match=re.escape(want[1])):
        lm.init(jax.random.key(0), jnp.ones(bad))


def test_instance_norm_module_momentum_none_is_zero_like_torch(rng):
    x = _rand(rng, (2, 3, 6))
    t = torch.nn.InstanceNorm1d(3, momentum=None, track_running_stats=True)  # type: ignore[arg-type]
    m = jn.InstanceNorm1d(3, momentum=None, track_running_stats=True)  # type: ignore[arg-type]
    t(torch.tensor(x))
    m(jnp.asarray(x))
    np.testing.assert_array_equal(m.running_mean[...], t.running_mean.numpy())
    np.testing.assert_array_equal(m.running_var[...], t.running_var.numpy())
    assert m.momentum is None and m.training


def test_linen_instance_norm_updates_batch_stats_in_training(rng):
    x = jnp.asarray(_rand(rng, (2, 3, 6)))
    lm = jl.InstanceNorm1d(3, track_running_stats=True)
    v = lm.init(jax.random.key(0), x)
    np.testing.assert_array_equal(v["batch_stats"]["running_mean"], np.zeros(3))  # init does not count
    _, upd = lm.apply(v, x, mutable=["batch_stats"])
    m, var = F.instance_norm_running_stats(x, jnp.zeros(3), jnp.ones(3))
    np.testing.assert_array_equal(upd["batch_stats"]["running_mean"], m)
    np.testing.assert_array_equal(upd["batch_stats"]["running_var"], var)
    with pytest.raises(Exception, match="batch_stats"):
        lm.apply(v, x)


# --- local_response_norm ------------------------------------------------------------------------------

LRN_CASES = [
    # (shape, size, alpha, beta, k)
    ((2, 5, 4), 3, 1e-4, 0.75, 1.0),
    ((2, 5, 4), 2, 0.5, 0.75, 2.0),
    ((1, 6, 3, 4), 4, 0.3, 0.5, 1.0),
    ((2, 4, 2, 3, 2), 5, 0.2, 2.0, 1.5),
    ((2, 3, 7), 1, 0.4, 1.3, 1.0),
    ((1, 3, 5), 7, 0.1, -1.0, 3.0),
]


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES)
def test_local_response_norm_matches_torch(rng, shape, size, alpha, beta, k):
    x = _rand(rng, shape, 2.0)
    tol = reduction_tol(size)
    check(lambda x: F.local_response_norm(x, size, alpha, beta, k),
          lambda x: TF.local_response_norm(x, size, alpha, beta, k), [x],
          rtol=2 * tol, atol=2 * tol, grad_rtol=8 * tol, grad_atol=8 * tol)


@pytest.mark.parametrize("beta", [0.75, 2.0, 0.5, 1.3, -1.0, 3.0, -2.0])
@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_local_response_norm_half_is_bit_exact(rng, beta, dt):
    # torch's op sequence, each result stored in the half dtype: square, pool (float32 sum in
    # window order, / size), * alpha, + k, ** beta (the exponent converted to the dtype), divide
    jdt, tdt = dt
    x = jnp.asarray(_rand(rng, (3, 6, 20), 3.0)).astype(jdt)
    xt = torch.tensor(np.asarray(x.astype(jnp.float32))).to(tdt)
    for size in (2, 3, 5):
        want = TF.local_response_norm(xt, size, 0.3, beta, 1.0).float().numpy()
        got = F.local_response_norm(x, size, 0.3, beta, 1.0)
        assert got.dtype == jdt
        np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want, err_msg=f"size={size}")


def test_local_response_norm_half_4d_where_torch_has_no_kernel(rng):
    # torch's avg_pool3d has no bfloat16 CPU kernel, so 4-D+ bfloat16 input raises there; jaxnn
    # computes it, equal to torch's 3-D path on the same channels (the window only spans channels)
    x = jnp.asarray(_rand(rng, (2, 5, 3, 4), 2.0)).astype(jnp.bfloat16)
    xt = torch.tensor(np.asarray(x.astype(jnp.float32))).bfloat16()
    with pytest.raises(NotImplementedError):
        TF.local_response_norm(xt, 3)
    want = TF.local_response_norm(xt.reshape(2, 5, 12), 3, 0.2, 0.75, 1.0).reshape(2, 5, 3, 4).float().numpy()
    got = F.local_response_norm(x, 3, 0.2, 0.75, 1.0)
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want)


def test_local_response_norm_errors_and_empty_like_torch():
    for shape in ((3, 4), (4,)):
        want = _torch_error(lambda shape=shape: TF.local_response_norm(torch.ones(shape), 2))
        assert want is not None and want[0] is ValueError
        with pytest.raises(ValueError, match="Expected 3D or higher dimensionality input"):
            F.local_response_norm(jnp.ones(shape), 2)
    assert _torch_error(lambda: TF.local_response_norm(torch.ones(2, 3, 4), 0)) is not None
    with pytest.raises(ValueError, match="`size` must be a positive int"):
        F.local_response_norm(jnp.ones((2, 3, 4)), 0)
    with pytest.raises(TypeError, match="floating dtype"):
        F.local_response_norm(jnp.ones((2, 3, 4), jnp.int32), 2)
    e = np.zeros((0, 3, 4), np.float32)
    assert F.local_response_norm(jnp.asarray(e), 2).shape == tuple(TF.local_response_norm(torch.tensor(e), 2).shape)


@settings(max_examples=20)
@given(shape=st.lists(st.integers(1, 5), min_size=3, max_size=5), size=st.integers(1, 6),
       beta=st.sampled_from([0.75, 0.5, 2.0, 1.1]), seed=st.integers(0, 2**16))
def test_local_response_norm_random_configurations(shape, size, beta, seed):
    x = _rand(np.random.default_rng(seed), shape, 2.0)
    want = TF.local_response_norm(torch.tensor(x), size, 0.2, beta, 1.0).numpy()
    got = jax.jit(lambda v: F.local_response_norm(v, size, 0.2, beta, 1.0))(jnp.asarray(x))
    tol = reduction_tol(size)
    assert_close(got, want, rtol=2 * tol, atol=2 * tol)


def test_local_response_norm_module(rng):
    x = _rand(rng, (2, 6, 3, 3))
    t = torch.nn.LocalResponseNorm(3, 0.2, 0.6, 1.5)
    m = jn.LocalResponseNorm(3, 0.2, 0.6, 1.5)
    assert (m.size, m.alpha, m.beta, m.k) == (t.size, t.alpha, t.beta, t.k)
    assert_close(m(jnp.asarray(x)), t(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(jl.LocalResponseNorm(3, 0.2, 0.6, 1.5).apply({}, jnp.asarray(x)), m(jnp.asarray(x)))
    assert jn.state_dict(m) == {} and t.state_dict() == {}


def test_modules_do_not_warn_for_matching_input(rng):
    x = jnp.asarray(_rand(rng, (2, 3, 5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jn.InstanceNorm1d(3)(x)
        jn.LocalResponseNorm(2)(x)


def test_to_torch_roundtrip_of_bfloat16_inputs_is_exact(rng):
    # the half tests above feed torch the same bits as jaxnn
    x = _rand(rng, (4, 5)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(to_torch(x).float().numpy(), x.astype(np.float32))


@pytest.mark.parametrize("track", [True, False])
def test_state_dict_without_num_batches_tracked_loads_like_torch(rng, track):
    # regression: torch (and jaxnn.linen) load an InstanceNorm checkpoint without
    # num_batches_tracked (older checkpoints); jaxnn.nnx refused it as a missing key
    mean, var = _rand(rng, (3,)), np.abs(_rand(rng, (3,))) + 0.5
    sd = {"running_mean": mean, "running_var": var}
    t = torch.nn.InstanceNorm1d(3, track_running_stats=True)
    assert not t.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}).missing_keys
    m = jn.InstanceNorm1d(3, track_running_stats=True)
    assert not jn.load_state_dict(m, sd).missing_keys
    np.testing.assert_array_equal(m.running_mean[...], mean)
    np.testing.assert_array_equal(m.running_var[...], var)
    assert int(m.num_batches_tracked[...]) == int(t.num_batches_tracked) == 0
    lm = jl.InstanceNorm1d(3, track_running_stats=True)
    x = jnp.asarray(_rand(rng, (2, 3, 4)))
    variables, result = jl.load_state_dict(lm.init(jax.random.key(0), x), sd)
    assert not result.missing_keys
    np.testing.assert_array_equal(variables["batch_stats"]["running_var"], var)
    # the other buffers stay required, in nnx as in torch
    t2 = torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=track)
    with pytest.raises(RuntimeError, match="Missing key"):
        t2.load_state_dict({"weight": torch.ones(3)})
    with pytest.raises(Exception, match="Missing key"):
        jn.load_state_dict(jn.InstanceNorm1d(3, affine=True, track_running_stats=track),
                           {"weight": np.ones(3, np.float32)})


@pytest.mark.parametrize("shape", [(0, 3, 4), (0, 3, 0), (2, 3, 0)])
def test_running_stats_of_an_empty_batch_like_torch(shape):
    # regression: torch's average over N = 0 updated copies is NaN; jaxnn kept the old statistics
    mean, var = torch.zeros(3), torch.ones(3)
    out = TF.instance_norm(torch.zeros(shape), mean, var)
    got_mean, got_var = F.instance_norm_running_stats(jnp.zeros(shape), jnp.zeros(3), jnp.ones(3))
    np.testing.assert_array_equal(got_mean, mean.numpy())
    np.testing.assert_array_equal(got_var, var.numpy())
    assert F.instance_norm(jnp.zeros(shape), jnp.zeros(3), jnp.ones(3)).shape == tuple(out.shape)
    t = torch.nn.InstanceNorm1d(3, track_running_stats=True)
    t(torch.zeros(shape))
    m = jn.InstanceNorm1d(3, track_running_stats=True)
    m(jnp.zeros(shape))
    np.testing.assert_array_equal(m.running_mean[...], t.running_mean.numpy())
    np.testing.assert_array_equal(m.running_var[...], t.running_var.numpy())
