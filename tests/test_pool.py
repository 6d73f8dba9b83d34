"""Pooling against torch: outputs, indices and vjp gradients (jax.vjp vs torch autograd), ties and
NaN, half precision bit for bit, unbatched inputs, torch's error conditions."""

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import assert_close, check, randn, reduction_tol, round_to, to_numpy, to_torch

import jaxnn.functional as F

SPATIAL = {1: (9,), 2: (7, 8), 3: (5, 6, 4)}


def _input(rng, n, spatial=None, batched=True, dtype=np.float32, ties=False):
    shape = ((2, 3) if batched else (3,)) + (spatial or SPATIAL[n])
    if ties:  # few distinct values: many equal maxima in every window
        return rng.integers(-2, 3, shape).astype(dtype)
    return randn(rng, shape, dtype)


def _compare_indices(jfn, tfn, x):
    jo, ji = jfn(jnp.asarray(x))
    to, ti = tfn(to_torch(x))
    np.testing.assert_array_equal(np.asarray(jo, np.float32), to_numpy(to))
    np.testing.assert_array_equal(np.asarray(ji), ti.numpy())
    assert ji.dtype == jnp.int32  # torch: int64 (jaxnn: int64 under jax_enable_x64)


# --- max pooling ------------------------------------------------------------------------------------

# (n, spatial or None, batched, kwargs)
MAX_CASES = [
    (1, None, True, dict(kernel_size=3)),
    (1, None, False, dict(kernel_size=2, stride=1, padding=1)),
    (1, (10,), True, dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    (1, (8,), True, dict(kernel_size=4, stride=3, ceil_mode=True)),
    (2, None, True, dict(kernel_size=2)),
    (2, None, True, dict(kernel_size=3, stride=2, padding=1)),
    (2, None, False, dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
    (2, None, True, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, (6, 6), True, dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),  # last window dropped
    (2, None, True, dict(kernel_size=(3, 2), stride=(), dilation=(1, 3), ceil_mode=True)),
    (3, None, True, dict(kernel_size=2)),
    (3, None, False, dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True)),
    (3, None, True, dict(kernel_size=2, stride=1, padding=1, dilation=(1, 2, 1))),
]
_IDS = [f"{c[0]}d-{i}" for i, c in enumerate(MAX_CASES)]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n,spatial,batched,kw", MAX_CASES, ids=_IDS)
def test_max_pool_matches_torch(n, spatial, batched, kw, ties):
    x = _input(np.random.default_rng(0), n, spatial, batched, ties=ties)
    jf, tf = getattr(F, f"max_pool{n}d"), getattr(TF, f"max_pool{n}d")
    # values bit for bit; the gradient goes to torch's index (ties: the first maximum)
    check(lambda v: jf(v, **kw), lambda t: tf(t, **kw), [x], rtol=0, atol=0, exact=True,
          grad_rtol=1e-6, grad_atol=1e-6)
    _compare_indices(lambda v: jf(v, **kw, return_indices=True), lambda t: tf(t, **kw, return_indices=True), x)
    _compare_indices(lambda v: getattr(F, f"max_pool{n}d_with_indices")(v, **kw),
                     lambda t: getattr(TF, f"max_pool{n}d_with_indices")(t, **kw, return_indices=True), x)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_pool_nan_and_inf_as_torch(n):
    rng = np.random.default_rng(1)
    x = _input(rng, n, ties=True)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, flat.size // 6, replace=False)] = np.nan
    flat[rng.choice(flat.size, flat.size // 6, replace=False)] = -np.inf
    flat[:5] = np.nan  # a window with several NaNs: torch keeps the last one's index
    kw = dict(kernel_size=3, stride=1, padding=1)
    jf, tf = getattr(F, f"max_pool{n}d"), getattr(TF, f"max_pool{n}d")
    _compare_indices(lambda v: jf(v, **kw, return_indices=True), lambda t: tf(t, **kw, return_indices=True), x)
    check(lambda v: jf(v, **kw), lambda t: tf(t, **kw), [x], rtol=0, atol=0, exact=True,
          grad_rtol=1e-6, grad_atol=1e-6)
    # torch's value-only kernels (max_pool1d without grad uses another one) agree
    with torch.no_grad():
        np.testing.assert_array_equal(np.asarray(jf(x, **kw)), tf(to_torch(x), **kw).numpy())
    # all -inf window: -inf, index of the window's first tap
    y = np.full(x.shape, -np.inf, np.float32)
    _compare_indices(lambda v: jf(v, **kw, return_indices=True), lambda t: tf(t, **kw, return_indices=True), y)


def test_max_pool_window_outside_the_input_is_minus_inf_as_torch():
    """padding 1 and dilation 3 on a length-2 input: the only window's taps (-1, 2) miss the input."""
    x = np.array([[[1.0, 2.0]]], np.float32)
    t_out, t_idx = TF.max_pool1d_with_indices(torch.from_numpy(x), 2, 1, 1, 3)
    j_out, j_idx = F.max_pool1d_with_indices(x, 2, 1, 1, 3)
    np.testing.assert_array_equal(np.asarray(j_out), t_out.numpy())
    np.testing.assert_array_equal(np.asarray(j_idx), t_idx.numpy())
    assert np.isneginf(np.asarray(j_out)).all()


def test_max_pool_all_minus_inf_window_gradient_goes_to_its_first_tap_as_torch():
    """torch's scan starts at the window's first tap: an all -inf window sends its gradient there
    (the values and indices already matched; the gradient was lost)."""
    x = np.full((1, 2, 4, 4), -np.inf, np.float32)
    x[0, 1, 3, 3] = 1.0
    for jf, tf, args in [(F.max_pool2d, TF.max_pool2d, (2,)), (F.max_pool2d, TF.max_pool2d, (3, 1, 1)),
                         (F.adaptive_max_pool2d, TF.adaptive_max_pool2d, (3,)),
                         (F.adaptive_max_pool2d, TF.adaptive_max_pool2d, (1,)),
                         (F.max_pool1d, TF.max_pool1d, ((29,), 1, 14))]:  # 29 taps, stride 1: the scan
        xi = x.reshape(1, 2, 16) if jf is F.max_pool1d else x
        t = torch.tensor(xi, requires_grad=True)
        tf(t, *args).sum().backward()
        g = jax.grad(lambda v, jf=jf, args=args: jf(v, *args).sum())(jnp.asarray(xi))
        np.testing.assert_array_equal(np.asarray(g), t.grad.numpy())


@pytest.mark.parametrize("n", [1, 2, 3])
def test_large_windows_match_torch_and_compile_fast(rng, n):
    """More than 27 taps per window (patches within 8x the input) take the gathered path: same
    values, indices (first maximum, last NaN, all -inf) and gradient as torch. The unrolled scan
    took 41 s to compile the gradient of adaptive_max_pool2d(x, 1) on an 8 x 8 plane and over 9
    minutes on 16 x 16."""
    sz = {1: (40,), 2: (9, 9), 3: (6, 6, 6)}[n]
    x = rng.integers(-3, 4, (2, 2) + sz).astype(np.float32)
    x.reshape(-1)[rng.integers(0, x.size, 4)] = np.nan
    x[1, 1] = -np.inf
    tfa, jfa = getattr(TF, f"adaptive_max_pool{n}d"), getattr(F, f"adaptive_max_pool{n}d")
    tfm, jfm = getattr(TF, f"max_pool{n}d"), getattr(F, f"max_pool{n}d")
    kw = dict(kernel_size=30, stride=7, padding=15, dilation=1, ceil_mode=True) if n == 1 else \
        dict(kernel_size=6 if n == 2 else 4, stride=2, padding=3 if n == 2 else 2, dilation=2, ceil_mode=True)
    for jf, tf, args, kwargs in [(jfa, tfa, (1,), {}), (jfa, tfa, (2,), {}), (jfm, tfm, (), kw)]:
        t = torch.tensor(x, requires_grad=True)
        to, ti = tf(t, *args, return_indices=True, **kwargs)
        w = rng.standard_normal(tuple(to.shape)).astype(np.float32)
        (to * torch.from_numpy(w)).sum().backward()
        f = jax.jit(lambda v, jf=jf, args=args, kwargs=kwargs: jf(v, *args, return_indices=True, **kwargs))
        jo, ji = f(jnp.asarray(x))
        np.testing.assert_array_equal(np.asarray(jo), to.detach().numpy())
        np.testing.assert_array_equal(np.asarray(ji), ti.numpy())
        g = jax.jit(jax.grad(lambda v, f=f, w=w: (f(v)[0] * w).sum()))(jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(g), t.grad.numpy(), rtol=1e-6, atol=1e-6)
    big = jnp.zeros((2, 4, 16, 16), jnp.float32)
    assert "gather" in str(jax.make_jaxpr(lambda v: F.adaptive_max_pool2d(v, 1))(big))
    jax.jit(jax.grad(lambda v: F.adaptive_max_pool2d(v, 1).sum())).lower(big).compile()  # seconds, not minutes


# (n, spatial, kwargs): stride-1 (and other) windows taken one axis at a time, doubling along a line
SEPARABLE_CASES = [
    (2, (14, 13), dict(kernel_size=13, stride=1, padding=6)),  # SPP's 13 x 13 (YOLO)
    (2, (11, 9), dict(kernel_size=9, stride=1, padding=4)),
    (2, (9, 11), dict(kernel_size=(5, 3), stride=(1, 2), padding=(2, 0), dilation=(1, 2), ceil_mode=True)),
    (2, (12, 11), dict(kernel_size=(7, 4), stride=1, padding=(3, 2), dilation=(2, 1))),
    (1, (20,), dict(kernel_size=8, stride=1, padding=4, dilation=2)),
    (3, (6, 7, 8), dict(kernel_size=(3, 4, 5), stride=1, padding=(1, 2, 0), ceil_mode=True)),
]


@pytest.mark.parametrize("n,spatial,kw", SEPARABLE_CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(SEPARABLE_CASES)])
def test_large_stride1_windows_match_torch(rng, n, spatial, kw):
    """Windows cheaper per axis (SPP's 5/9/13 stride 1) pick torch's element: values, indices and
    gradient on integer-valued inputs (many ties: the first maximum in row-major order), with NaN
    (the last one wins) and -inf (an all -inf plane: the window's first in-input tap)."""
    x = rng.integers(-2, 3, (2, 3, *spatial)).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, flat.size // 20, replace=False)] = np.nan
    flat[rng.choice(flat.size, flat.size // 8, replace=False)] = -np.inf
    x[1, 2] = -np.inf
    x[0, 0] = 0.0  # a plane of zeros and sparse ones: every window ties
    x[0, 0].reshape(-1)[::7] = 1.0
    jf, tf = getattr(F, f"max_pool{n}d"), getattr(TF, f"max_pool{n}d")
    t = torch.tensor(x, requires_grad=True)
    to, ti = tf(t, **kw, return_indices=True)
    w = rng.standard_normal(tuple(to.shape)).astype(np.float32)
    (to * torch.from_numpy(w)).sum().backward()
    jo, ji = jax.jit(lambda v: jf(v, **kw, return_indices=True))(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(jo), to.detach().numpy())
    np.testing.assert_array_equal(np.asarray(ji), ti.numpy())
    # torch's bits: its backward adds the output gradients in order, so does the scatter-add here
    g = jax.jit(jax.grad(lambda v: (jf(v, **kw) * w).sum()))(jnp.asarray(x))
    assert t.grad is not None
    np.testing.assert_array_equal(np.asarray(g), t.grad.numpy())
    # forward mode: the tangent at the picked element
    tx = rng.standard_normal(x.shape).astype(np.float32)
    _, ty = jax.jvp(lambda v: jf(v, **kw), (jnp.asarray(x),), (jnp.asarray(tx),))
    expect = np.take_along_axis(tx.reshape(6, -1), ti.numpy().reshape(6, -1), axis=1).reshape(ty.shape)
    np.testing.assert_array_equal(np.asarray(ty), expect)


def test_spp_pool_gradient_stays_small():
    """max_pool2d(x, 13, 1, 6) (YOLO's SPP) was 169 taps: 48 s to compile its gradient on
    (1, 512, 20, 20). One axis at a time, doubling: a few dozen selects."""
    x = jnp.zeros((1, 4, 20, 20), jnp.float32)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda v: F.max_pool2d(v, 13, 1, 6).sum()))(x))
    assert jaxpr.count("select_n") < 40, jaxpr.count("select_n")


def test_separable_max_pool_batch_of_zero():
    """A batch of 0 (torch accepts it) through the separable path: its custom_jvp reshaped with -1,
    which cannot be inferred from 0 elements (ZeroDivisionError in grad and jvp)."""
    x = jnp.zeros((0, 2, 8), jnp.float32)
    assert F.max_pool1d(x, 4, 1, 1).shape == (0, 2, 7)
    assert jax.grad(lambda v: F.max_pool1d(v, 4, 1, 1).sum())(x).shape == (0, 2, 8)
    assert jax.jvp(lambda v: F.max_pool1d(v, 4, 1, 1), (x,), (x,))[1].shape == (0, 2, 7)


# --- average pooling --------------------------------------------------------------------------------

AVG_CASES = [
    (1, None, True, dict(kernel_size=3)),
    (1, None, False, dict(kernel_size=2, stride=1, padding=1, count_include_pad=False)),
    (1, (10,), True, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (1, (10,), True, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (2, None, True, dict(kernel_size=2)),
    (2, None, True, dict(kernel_size=3, stride=2, padding=1)),
    (2, None, True, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (2, None, False, dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), ceil_mode=True)),
    (2, (6, 6), True, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (2, None, True, dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    (2, None, True, dict(kernel_size=(3, 2), padding=(1, 1), ceil_mode=True, divisor_override=-3)),
    (3, None, True, dict(kernel_size=2)),
    (3, None, False, dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True)),
    (3, None, True, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False, ceil_mode=True)),
    (3, None, True, dict(kernel_size=2, divisor_override=3)),
]


@pytest.mark.parametrize("n,spatial,batched,kw", AVG_CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(AVG_CASES)])
def test_avg_pool_matches_torch(n, spatial, batched, kw):
    x = _input(np.random.default_rng(2), n, spatial, batched)
    jf, tf = getattr(F, f"avg_pool{n}d"), getattr(TF, f"avg_pool{n}d")
    k = math.prod(kw["kernel_size"]) if isinstance(kw["kernel_size"], tuple) else kw["kernel_size"] ** n
    tol = reduction_tol(k)
    check(lambda v: jf(v, **kw), lambda t: tf(t, **kw), [x], rtol=tol, atol=tol)


# --- adaptive pooling -------------------------------------------------------------------------------

ADAPTIVE_CASES = [
    (1, None, True, 4), (1, None, False, 9), (1, None, True, 13), (1, None, True, 1), (1, None, True, (2,)),
    (2, None, True, (3, 5)), (2, None, False, (None, 3)), (2, None, True, 1), (2, None, True, (10, 3)),
    (2, None, True, (7, None)), (2, (5, 5), True, (2, 4)),
    (3, None, True, (2, 3, 2)), (3, None, False, (None, 4, 3)), (3, None, True, 1), (3, None, True, (7, 1, 5)),
]
_AIDS = [f"{c[0]}d-{i}" for i, c in enumerate(ADAPTIVE_CASES)]


@pytest.mark.parametrize("n,spatial,batched,size", ADAPTIVE_CASES, ids=_AIDS)
def test_adaptive_avg_pool_matches_torch(n, spatial, batched, size):
    x = _input(np.random.default_rng(3), n, spatial, batched)
    jf, tf = getattr(F, f"adaptive_avg_pool{n}d"), getattr(TF, f"adaptive_avg_pool{n}d")
    tol = reduction_tol(math.prod(x.shape[-n:]))
    check(lambda v: jf(v, size), lambda t: tf(t, size), [x], rtol=tol, atol=tol)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n,spatial,batched,size", ADAPTIVE_CASES, ids=_AIDS)
def test_adaptive_max_pool_matches_torch(n, spatial, batched, size, ties):
    x = _input(np.random.default_rng(4), n, spatial, batched, ties=ties)
    jf, tf = getattr(F, f"adaptive_max_pool{n}d"), getattr(TF, f"adaptive_max_pool{n}d")
    check(lambda v: jf(v, size), lambda t: tf(t, size), [x], rtol=0, atol=0, exact=True,
          grad_rtol=1e-6, grad_atol=1e-6)
    _compare_indices(lambda v: jf(v, size, True), lambda t: tf(t, size, True), x)
    _compare_indices(lambda v: getattr(F, f"adaptive_max_pool{n}d_with_indices")(v, size),
                     lambda t: getattr(TF, f"adaptive_max_pool{n}d_with_indices")(t, size, True), x)


def test_adaptive_max_pool_nan_as_torch():
    x = _input(np.random.default_rng(5), 2, ties=True)
    x[0, 0, :3, :3] = np.nan
    x[1, 2, 4, 5] = np.nan
    _compare_indices(lambda v: F.adaptive_max_pool2d(v, (3, 4), True),
                     lambda t: TF.adaptive_max_pool2d(t, (3, 4), True), x)
    check(lambda v: F.adaptive_max_pool2d(v, (3, 4)), lambda t: TF.adaptive_max_pool2d(t, (3, 4)), [x],
          rtol=0, atol=0, exact=True, grad_rtol=1e-6, grad_atol=1e-6)


@pytest.mark.parametrize("name", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
def test_adaptive_zero_output_size_as_torch(name):
    x = np.ones((1, 2, 4, 5), np.float32)
    want = getattr(TF, name)(torch.from_numpy(x), (0, 3))
    got = getattr(F, name)(x, (0, 3))
    assert got.shape == tuple(want.shape) == (1, 2, 0, 3)


# --- power-average pooling --------------------------------------------------------------------------

LP_CASES = [
    (1, None, True, 2, dict(kernel_size=3)),
    (1, (10,), False, 1, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (1, None, True, 3, dict(kernel_size=2, stride=1)),
    (2, None, True, 2, dict(kernel_size=2)),
    (2, None, True, 1.5, dict(kernel_size=(2, 3), stride=(1, 2), ceil_mode=True)),
    (2, None, False, 4, dict(kernel_size=3, stride=2, ceil_mode=True)),
    (2, None, True, float("inf"), dict(kernel_size=2, stride=1)),
    (2, None, True, -float("inf"), dict(kernel_size=2)),
    (3, None, True, 2, dict(kernel_size=2)),
    (3, None, False, 3, dict(kernel_size=(2, 3, 2), stride=1, ceil_mode=True)),
]


@pytest.mark.parametrize("n,spatial,batched,p,kw", LP_CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(LP_CASES)])
def test_lp_pool_matches_torch(n, spatial, batched, p, kw):
    x = _input(np.random.default_rng(6), n, spatial, batched)
    if p not in (1, 3):  # a negative window sum with a non-integer root is NaN in both; keep gradients finite
        x = np.abs(x) + np.float32(0.1)
    jf, tf = getattr(F, f"lp_pool{n}d"), getattr(TF, f"lp_pool{n}d")
    k = math.prod(kw["kernel_size"]) if isinstance(kw["kernel_size"], tuple) else kw["kernel_size"] ** n
    tol = 4 * reduction_tol(k)
    check(lambda v: jf(v, p, **kw), lambda t: tf(t, p, **kw), [x], rtol=tol, atol=tol)


def test_lp_pool_nan_where_torch_gives_nan():
    x = _input(np.random.default_rng(7), 2)
    t = TF.lp_pool2d(to_torch(x), 3, 2)
    j = np.asarray(F.lp_pool2d(x, 3, 2))
    assert np.isnan(to_numpy(t)).any()
    np.testing.assert_array_equal(np.isnan(j), np.isnan(to_numpy(t)))
    # a window of zeros: output 0 and gradient 0 in torch's autograd (relu's backward is a select that
    # drops the root's infinite derivative) and here
    z = np.abs(x)
    z[0, 0, :2, :2] = 0
    check(lambda v: F.lp_pool2d(v, 2, 2), lambda t: TF.lp_pool2d(t, 2, 2), [z], rtol=1e-6, atol=1e-6)
    g = jax.grad(lambda v: F.lp_pool2d(v, 2, 2).sum())(jnp.asarray(z))
    assert np.isfinite(np.asarray(g)).all() and (np.asarray(g)[0, 0, :2, :2] == 0).all()


# --- half precision: bit for bit --------------------------------------------------------------------

HALF_CASES = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), 2),
    ("max_pool1d", dict(kernel_size=2, dilation=2), 1),
    ("max_pool2d", dict(kernel_size=9, stride=1, padding=4), 2),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), 1),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1), 2),
    ("avg_pool2d", dict(kernel_size=(2, 3), divisor_override=7), 2),
    ("adaptive_avg_pool1d", dict(output_size=4), 1),
    ("adaptive_avg_pool2d", dict(output_size=(3, 5)), 2),
    ("adaptive_avg_pool2d", dict(output_size=1), 2),
    ("adaptive_avg_pool3d", dict(output_size=(2, 4, 3)), 3),
    ("adaptive_avg_pool3d", dict(output_size=(5, 1, 3)), 3),
    ("adaptive_avg_pool3d", dict(output_size=1), 3),
    ("adaptive_max_pool2d", dict(output_size=(3, 5)), 2),
    ("lp_pool2d", dict(norm_type=2, kernel_size=2), 2),
    ("lp_pool1d", dict(norm_type=1, kernel_size=3), 1),
]


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("name,kw,n", HALF_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(HALF_CASES)])
def test_half_precision_bit_exact(name, kw, n, dtype):
    x = _input(np.random.default_rng(8), n, dtype=dtype)
    if name.startswith("lp"):
        x = np.abs(x)
    eps = float(ml_dtypes.finfo(dtype).eps)
    check(lambda v: getattr(F, name)(v, **kw), lambda t: getattr(TF, name)(t, **kw), [x], rtol=0, atol=0,
          exact=True, grad_rtol=2 * eps, grad_atol=2 * eps)


def test_half_avg_pool3d_like_the_2d_kernel():
    """torch's CPU avg_pool3d has no float16/bfloat16 kernel; jaxnn's is the 2-D kernel's rule:
    float32 sums (exact here), one division, one rounding."""
    with pytest.raises(RuntimeError, match="not implemented for 'Half'"):
        TF.avg_pool3d(torch.zeros(1, 1, 2, 2, 2, dtype=torch.float16), 2)
    x = _input(np.random.default_rng(12), 3, dtype=np.float16)
    got = np.asarray(F.avg_pool3d(x, 2, 1, 1, count_include_pad=False), np.float64)
    want = TF.avg_pool3d(to_torch(x.astype(np.float32)), 2, 1, 1, count_include_pad=False).numpy()
    np.testing.assert_array_equal(got, round_to(want, np.float16))


def test_half_avg_pool_is_float32_sum_rounded_once():
    """The reference independent of torch: float64 window sums (exact here), divided in float32 and
    rounded once to float16 / bfloat16."""
    for dtype in (np.float16, ml_dtypes.bfloat16):
        x = _input(np.random.default_rng(9), 2, dtype=dtype)
        sums = sum(x[..., i : i + 5, j : j + 6].astype(np.float64) for i in range(3) for j in range(3))
        want = round_to(sums.astype(np.float32) / np.float32(9), dtype)
        got = np.asarray(F.avg_pool2d(x, 3, 1), np.float64)
        np.testing.assert_array_equal(got, want)


# --- hypothesis: random valid configurations --------------------------------------------------------


@st.composite
def pool2d_configs(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ceil = draw(st.booleans())
    size = tuple(draw(st.integers(1, 10)) for i in range(2))
    return k, s, p, d, ceil, size, draw(st.booleans()), draw(st.integers(0, 2**16))


@settings(max_examples=25)
@given(pool2d_configs())
def test_max_and_avg_pool2d_hypothesis(config):
    k, s, p, d, ceil, size, cip, seed = config
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (2, 2, *size)).astype(np.float32)  # ties
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    try:
        want = TF.max_pool2d_with_indices(to_torch(x), **kw)
    except RuntimeError:
        with pytest.raises(ValueError, match="output size is too small"):
            F.max_pool2d(x, **kw)
        return
    _compare_indices(lambda v: F.max_pool2d_with_indices(v, **kw), lambda t: want, x)
    check(lambda v: F.max_pool2d(v, **kw), lambda t: TF.max_pool2d(t, **kw), [x], rtol=0, atol=0, exact=True,
          grad_rtol=1e-6, grad_atol=1e-6)
    akw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip)
    xa = randn(rng, (2, 2, *size))
    try:
        TF.avg_pool2d(to_torch(xa), **akw)
    except RuntimeError:
        with pytest.raises(ValueError, match="output size is too small"):
            F.avg_pool2d(xa, **akw)
        return
    tol = reduction_tol(k[0] * k[1])
    check(lambda v: F.avg_pool2d(v, **akw), lambda t: TF.avg_pool2d(t, **akw), [xa], rtol=tol, atol=tol)


@settings(max_examples=12)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**16))
def test_adaptive_pool2d_hypothesis(h, w, oh, ow, seed):
    x = np.random.default_rng(seed).integers(-3, 4, (2, h, w)).astype(np.float32)
    tol = reduction_tol(h * w)
    check(lambda v: F.adaptive_avg_pool2d(v, (oh, ow)), lambda t: TF.adaptive_avg_pool2d(t, (oh, ow)), [x],
          rtol=tol, atol=tol)
    _compare_indices(lambda v: F.adaptive_max_pool2d(v, (oh, ow), True),
                     lambda t: TF.adaptive_max_pool2d(t, (oh, ow), True), x)


# --- transformations --------------------------------------------------------------------------------


@pytest.mark.parametrize("fn,k", [
    (lambda v: F.max_pool2d(v, 3, 2, 1, ceil_mode=True), 0),
    (lambda v: F.max_pool2d(v, 2, return_indices=True)[1], 0),
    (lambda v: F.adaptive_max_pool2d(v, (3, 2)), 0),
    (lambda v: F.avg_pool2d(v, 3, 2, 1, count_include_pad=False), 9),
    (lambda v: F.adaptive_avg_pool2d(v, (3, 2)), 12),
    (lambda v: F.lp_pool2d(v, 2, 2), 4),
])
def test_vmap_over_unbatched_equals_batched(fn, k):
    """Max pooling: bit for bit; sums: within the reduction tolerance (XLA may order them differently
    in the two programs)."""
    x = np.abs(_input(np.random.default_rng(10), 2))  # (2, 3, 7, 8): vmap over (3, 7, 8) planes
    for got in (jax.vmap(fn)(x), jax.jit(fn)(x)):
        if k == 0:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(fn(x)))
        else:
            assert_close(got, fn(x), rtol=reduction_tol(k), atol=reduction_tol(k))


def test_indices_are_int64_under_x64():
    with jax.enable_x64(True):
        _, idx = F.max_pool2d(np.ones((1, 1, 4, 4)), 2, return_indices=True)
        assert idx.dtype == jnp.int64
        _, idx = F.adaptive_max_pool1d(np.ones((1, 4)), 2, True)
        assert idx.dtype == jnp.int64
        out = F.avg_pool1d(np.ones((1, 1, 4)), 2)
        assert out.dtype == jnp.float64


def test_docstring_facts():
    assert_close(F.avg_pool2d(np.arange(16.0, dtype=np.float32).reshape(1, 4, 4), 2),
                 TF.avg_pool2d(torch.arange(16.0).reshape(1, 4, 4), 2).numpy(), rtol=0, atol=0)


# --- errors: what torch rejects, jaxnn rejects with ValueError/TypeError ----------------------------

X1, X2, X3 = np.zeros((2, 3, 6), np.float32), np.zeros((1, 2, 5, 5), np.float32), np.zeros((1, 2, 4, 4, 4), np.float32)

ERRORS = [
    ("max_pool2d", X2, (0,), {}, ValueError, "`kernel_size` must be greater than zero"),
    ("max_pool2d", X2, (2, 0), {}, ValueError, "`stride` must be greater than zero"),
    ("max_pool2d", X2, (2, -1), {}, ValueError, "`stride` must be greater than zero"),
    ("max_pool2d", X2, (2, 1, -1), {}, ValueError, "`padding` must be non-negative"),
    ("max_pool2d", X2, (3, 1, 2), {}, ValueError, "at most half of `kernel_size`"),
    ("max_pool2d", X2, (2, 1, 2, 3), {}, ValueError, "at most half of `kernel_size`"),
    ("max_pool2d", X2, (2, 1, 0, 0), {}, ValueError, "`dilation` must be greater than zero"),
    ("max_pool2d", X2, (6,), {}, ValueError, "output size is too small"),
    ("max_pool2d", X2, (2,), dict(dilation=(5, 5)), ValueError, "output size is too small"),
    ("max_pool2d", np.zeros((5, 5), np.float32), (2,), {}, ValueError, "must be 3-D"),
    ("max_pool2d", np.zeros((1, 1, 1, 5, 5), np.float32), (2,), {}, ValueError, "must be 3-D"),
    ("max_pool2d", np.zeros((1, 0, 5, 5), np.float32), (2,), {}, ValueError, "non-zero sizes"),
    ("max_pool2d", np.zeros((0, 5, 5), np.float32), (2,), {}, ValueError, "non-zero sizes"),
    ("max_pool2d", X2, ((2, 2, 2),), {}, ValueError, "tuple of 2 ints"),
    ("max_pool2d", X2, (2.0,), {}, TypeError, "`kernel_size`"),
    ("max_pool1d", X1, (0,), {}, ValueError, "`kernel_size`"),
    ("max_pool1d", X1, (3, 1, 2), {}, ValueError, "at most half"),
    ("max_pool1d", X2, (2,), {}, ValueError, "must be 2-D"),
    ("max_pool1d", np.zeros(5, np.float32), (2,), {}, ValueError, "must be 2-D"),
    ("max_pool1d", X1, (7,), {}, ValueError, "output size is too small"),
    ("max_pool1d", X1, (7,), dict(return_indices=True), ValueError, "output size is too small"),
    ("max_pool1d", X1, (2, 1, 0, 0), {}, ValueError, "`dilation`"),
    ("max_pool1d", X1, (2, 1, -1), {}, ValueError, "`padding`"),
    ("max_pool1d", np.zeros((1, 2, 0), np.float32), (1,), {}, ValueError, "non-zero sizes"),
    ("max_pool3d", np.zeros((4, 4, 4), np.float32), (2,), {}, ValueError, "must be 4-D"),
    ("max_pool3d", X3, (2, 1, (0, 2, 0)), {}, ValueError, "at most half"),
    ("avg_pool2d", X2, (0,), {}, ValueError, "`kernel_size`"),
    ("avg_pool2d", X2, (2, 0), {}, ValueError, "`stride`"),
    ("avg_pool2d", X2, (2, 1, -1), {}, ValueError, "`padding`"),
    ("avg_pool2d", X2, (3, 1, 2), {}, ValueError, "at most half"),
    ("avg_pool2d", X2, (2,), dict(divisor_override=0), ValueError, "`divisor_override`"),
    ("avg_pool2d", X2, (6,), {}, ValueError, "output size is too small"),
    ("avg_pool2d", np.zeros((5, 5), np.float32), (2,), {}, ValueError, "must be 3-D"),
    ("avg_pool2d", np.zeros((1, 0, 5, 5), np.float32), (2,), {}, ValueError, "non-zero sizes"),
    ("avg_pool1d", X1, (0,), {}, ValueError, "`kernel_size`"),
    ("avg_pool1d", X1, (3, 1, 2), {}, ValueError, "at most half"),
    ("avg_pool1d", X2, (2,), {}, ValueError, "must be 2-D"),
    ("avg_pool1d", X1, (7,), {}, ValueError, "output size is too small"),
    ("avg_pool1d", X1, (2, 0), {}, ValueError, "`stride`"),
    ("avg_pool1d", X1, ((2, 2),), {}, ValueError, "tuple of 1 ints"),
    ("avg_pool3d", X3, (2,), dict(divisor_override=0), ValueError, "`divisor_override`"),
    ("avg_pool3d", X3, (2, 1, (0, 2, 0)), {}, ValueError, "at most half"),
    ("adaptive_avg_pool2d", X2, (-1,), {}, ValueError, ">= 0"),
    ("adaptive_avg_pool2d", np.zeros((1, 2, 0, 5), np.float32), (2,), {}, ValueError, "non-zero sizes"),
    ("adaptive_avg_pool2d", X2, ((2, 2, 2),), {}, ValueError, "tuple of 2 entries"),
    ("adaptive_avg_pool2d", np.zeros((5, 5), np.float32), (2,), {}, ValueError, "must be 3-D"),
    ("adaptive_avg_pool1d", X1, (None,), {}, TypeError, "`output_size`"),
    ("adaptive_avg_pool1d", X2, (2,), {}, ValueError, "must be 2-D"),
    ("adaptive_avg_pool1d", np.zeros((1, 2, 4), np.int64), (2,), {}, TypeError, "floating dtype"),
    ("adaptive_avg_pool2d", np.zeros((1, 2, 4, 4), np.int64), (2,), {}, TypeError, "floating dtype"),
    ("adaptive_max_pool2d", X2, (-1,), {}, ValueError, ">= 0"),
    ("adaptive_max_pool1d", X1, (None,), {}, TypeError, "`output_size`"),
    ("adaptive_max_pool1d", X2, (2,), {}, ValueError, "must be 2-D"),
    ("adaptive_max_pool2d", np.zeros((1, 2, 4, 4), np.int64), (2,), {}, TypeError, "floating dtype"),
    ("adaptive_max_pool3d", np.zeros((2, 4, 0, 4), np.float32), (2,), {}, ValueError, "non-zero sizes"),
    ("lp_pool2d", X2, (2, 0), {}, ValueError, "`kernel_size`"),
    ("lp_pool2d", X2, (0, 2), {}, ValueError, "`norm_type` must be non-zero"),
    ("lp_pool2d", X2, (2, 6), {}, ValueError, "output size is too small"),
    ("lp_pool2d", X2, (2, (2, 2, 2)), {}, ValueError, "`kernel_size`"),
    ("lp_pool1d", X1, (2, (2,)), {}, TypeError, "`kernel_size` must be an int"),
    ("lp_pool3d", X3, (2, (2, 2)), {}, ValueError, "`kernel_size`"),
]


@pytest.mark.parametrize("name,x,args,kw,exc,fragment", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_where_torch_errors(name, x, args, kw, exc, fragment):
    with pytest.raises((RuntimeError, TypeError, ValueError, IndexError, NotImplementedError, ZeroDivisionError)):
        getattr(TF, name)(torch.from_numpy(x), *args, **kw)
    with pytest.raises(exc, match=fragment):
        getattr(F, name)(x, *args, **kw)


@pytest.mark.parametrize("call", [
    lambda m, x: m.max_pool2d(x, 2, 1, 1),  # padding == kernel_size // 2 for an even kernel
    lambda m, x: m.avg_pool2d(x, 2, divisor_override=-2),
    lambda m, x: m.max_pool2d(x, 2, ()),
    lambda m, x: m.adaptive_avg_pool2d(x, (7, 9)),
    lambda m, x: m.adaptive_avg_pool2d(np.zeros((1, 0, 5, 5), np.float32) if m is F else torch.zeros(1, 0, 5, 5), 2),
    lambda m, x: m.lp_pool2d(x, -1, 2),
])
def test_accepted_where_torch_accepts(call):
    x = randn(np.random.default_rng(11), (1, 2, 5, 5))
    want = call(TF, to_torch(x))
    got = call(F, x)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(np.asarray(got), to_numpy(want), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,shape", [
    ("adaptive_max_pool1d", (0, 4)),  # torch's adaptive max pooling checks dims 1.. only: an
    ("adaptive_max_pool2d", (0, 4, 4)),  # unbatched input may have no channels
    ("adaptive_max_pool3d", (0, 4, 4, 4)),
    ("adaptive_avg_pool3d", (2, 0, 4, 4, 4)),  # torch's 3-D adaptive average pooling checks C too
    ("adaptive_avg_pool2d", (2, 0, 4, 4)),  # (its 1-D/2-D kernels check the spatial dims only)
    ("adaptive_avg_pool3d", (0, 4, 4, 4)),
])
def test_adaptive_empty_dims_as_torch(name, shape):
    x = np.zeros(shape, np.float32)
    try:
        want = getattr(TF, name)(torch.from_numpy(x), 2)
    except RuntimeError:
        with pytest.raises(ValueError, match="non-zero sizes"):
            getattr(F, name)(x, 2)
        return
    got = getattr(F, name)(x, 2)
    assert got.shape == tuple(want.shape)
    if name.startswith("adaptive_max"):
        out, idx = getattr(F, name)(x, 2, return_indices=True)
        assert out.shape == idx.shape == tuple(want.shape)


@pytest.mark.parametrize("norm_type", [math.inf, -math.inf])
@pytest.mark.parametrize("n", [1, 2])
def test_lp_pool_infinite_norm_gradient_at_zero_as_torch(n, norm_type):
    """norm_type=+-inf is max_pool of input.abs(): torch's abs gradient is sign(x), 0 at 0
    (jnp.abs's is 1 there)."""
    x = np.array([0.0, 0.0, -1.0, 0.0, 2.0, -2.0, -0.0, 3.0], np.float32).reshape((1, 1) + (8,) * (n == 1) +
                                                                                  (2, 4) * (n == 2))
    t = to_torch(x, requires_grad=True)
    tf, jf = getattr(TF, f"lp_pool{n}d"), getattr(F, f"lp_pool{n}d")
    want = tf(t, norm_type, 2)
    want.sum().backward()
    np.testing.assert_array_equal(np.asarray(jf(x, norm_type, 2)), to_numpy(want))
    g = jax.grad(lambda v: jf(v, norm_type, 2).sum())(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(g), to_numpy(t.grad))


# --- modules (the LAYERS rows of test_layers.py cover state_dict, train/eval and nnx == linen) --------


@pytest.mark.parametrize("name,args,shape", [
    ("MaxPool1d", (3, 2, 1, 1, True, True), (2, 3, 9)),
    ("MaxPool2d", (3, 2, 1), (2, 3, 7, 8)),
    ("MaxPool3d", ((2, 1, 2), None, 0, 1, True), (3, 4, 4, 4)),
    ("AdaptiveMaxPool1d", (4, True), (3, 9)),
    ("AdaptiveMaxPool2d", ((3, None), True), (2, 3, 7, 8)),
    ("AdaptiveMaxPool3d", (2, True), (2, 2, 5, 4, 3)),
])
def test_max_pool_modules_return_indices_like_torch(name, args, shape):
    import jaxnn.linen as jl
    import jaxnn.nnx as jn

    x = np.random.default_rng(13).integers(-2, 3, shape).astype(np.float32)
    t = getattr(torch.nn, name)(*args)
    want = t(to_torch(x))
    got_nnx = getattr(jn, name)(*args)(jnp.asarray(x))
    got_linen = getattr(jl, name)(*args).apply({}, jnp.asarray(x))
    for got in (got_nnx, got_linen):
        if isinstance(want, tuple):
            assert isinstance(got, tuple) and len(got) == 2
            np.testing.assert_array_equal(np.asarray(got[0]), to_numpy(want[0]))
            np.testing.assert_array_equal(np.asarray(got[1]), want[1].numpy())
        else:
            np.testing.assert_array_equal(np.asarray(got), to_numpy(want))


def test_pool_module_attributes_are_torchs():
    import jaxnn.nnx as jn

    for name, args in [("MaxPool2d", (3,)), ("AvgPool1d", (2,)), ("AvgPool3d", (2, 1)), ("LPPool2d", (2, 3)),
                       ("AdaptiveMaxPool2d", ((2, None),)), ("MaxPool1d", (3, None, 1, 2, False, True))]:
        t, m = getattr(torch.nn, name)(*args), getattr(jn, name)(*args)
        for attr in ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
                     "count_include_pad", "divisor_override", "norm_type", "output_size"):
            if hasattr(t, attr):
                want = getattr(t, attr)
                want = tuple(want) if isinstance(want, (list, tuple)) else want
                got = getattr(m, attr)
                assert (tuple(got) if isinstance(got, (list, tuple)) else got) == want, (name, attr)
