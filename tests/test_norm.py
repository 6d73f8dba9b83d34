"""group_norm, layer_norm and linear against torch: values, gradients, precision, errors."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f, check, randn, to_numpy, to_torch

import jaxnn.functional as F

# (shape, num_groups, affine, eps)
GN_CASES = [
    ((2, 6), 3, True, 1e-5),
    ((2, 6, 7), 2, True, 1e-5),
    ((3, 8, 5, 4), 4, True, 1e-6),
    ((3, 8, 5, 4), 1, False, 1e-5),
    ((3, 8, 5, 4), 8, True, 1e-3),
    ((2, 4, 3, 3, 3), 2, True, 1e-5),
    ((0, 4, 3), 2, True, 1e-5),
    ((1, 32, 16, 16), 32, True, 1e-5),
]


@pytest.mark.parametrize("shape,groups,affine,eps", GN_CASES)
def test_group_norm_matches_torch(rng, shape, groups, affine, eps):
    x = randn(rng, shape) * 3 + 1
    c = shape[1]
    inputs = [x] + ([randn(rng, (c,)), randn(rng, (c,))] if affine else [])
    check(
        lambda x, w=None, b=None: F.group_norm(x, groups, w, b, eps),
        lambda x, w=None, b=None: TF.group_norm(x, groups, w, b, eps),
        inputs,
        rtol=1e-5,
        atol=1e-5,
        grad=x.size > 0,
    )


@pytest.mark.parametrize("shape,groups,affine,eps", [c for c in GN_CASES if len(c[0]) > 2])
def test_group_norm_channels_last(rng, shape, groups, affine, eps):
    x = randn(rng, shape)
    w, b = randn(rng, (shape[1],)), randn(rng, (shape[1],))
    ref = F.group_norm(x, groups, w, b, eps)
    got = F.group_norm(jnp.moveaxis(x, 1, -1), groups, w, b, eps, channels_last=True)
    np.testing.assert_allclose(np.moveaxis(np.asarray(got), -1, 1), ref, rtol=1e-5, atol=1e-5)


@settings(max_examples=60)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 3),
    st.lists(st.integers(1, 6), min_size=0, max_size=3),
    st.booleans(),
)
def test_group_norm_hypothesis(n, groups, per_group, spatial, affine):
    if per_group * int(np.prod(spatial)) < 4:
        # Groups of 1-3 values: torch refuses a single one (test_errors), and for 2-3 the gradient
        # scales like 1/std, so float32 rounding differences are amplified without bound.
        return
    rng = np.random.default_rng(n * 100 + groups * 10 + per_group)
    c = groups * per_group
    x = randn(rng, (n, c, *spatial)) * 2 - 1
    inputs = [x] + ([randn(rng, (c,)), randn(rng, (c,))] if affine else [])
    check(
        lambda x, w=None, b=None: F.group_norm(x, groups, w, b),
        lambda x, w=None, b=None: TF.group_norm(x, groups, w, b),
        inputs,
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_group_norm_half_precision(rng, dtype):
    x = (randn(rng, (2, 8, 6, 6)) * 2 + 3).astype(dtype)
    w, b = randn(rng, (8,), dtype), randn(rng, (8,), dtype)
    got = F.group_norm(x, 4, w, b)
    assert got.dtype == dtype
    want = TF.group_norm(to_torch(x), 4, to_torch(w), to_torch(b))
    tol = 2e-2 if dtype == ml_dtypes.bfloat16 else 4e-3
    np.testing.assert_allclose(as_f(got), to_numpy(want), rtol=tol, atol=tol)


def _float64_group_norm(x, groups, eps=1e-5):
    n, c = x.shape[:2]
    g = x.astype(np.float64).reshape(n, groups, -1)
    y = (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps)
    return y.reshape(x.shape)


def test_group_norm_stress_large_mean(rng):
    """mean 1e4, std 1 in float32: no E[x^2]-E[x]^2 cancellation; no worse than torch."""
    x = (rng.standard_normal((2, 32, 16, 16)) + 1e4).astype(np.float32)
    ref = _float64_group_norm(x, 8)
    ours = np.asarray(F.group_norm(x, 8), np.float64)
    theirs = TF.group_norm(torch.tensor(x), 8).numpy().astype(np.float64)
    err_ours, err_torch = np.abs(ours - ref).max(), np.abs(theirs - ref).max()
    assert err_ours <= err_torch, (err_ours, err_torch)
    assert err_ours < 1e-3
    # The naive one-pass formula is what this guards against: it is badly off here.
    g = x.reshape(2, 8, -1)
    naive_var = (g * g).mean(-1) - g.mean(-1) ** 2
    assert np.abs(naive_var - g.astype(np.float64).var(-1)).max() > 0.1


def test_group_norm_float16_large_values(rng):
    x = (rng.standard_normal((2, 8, 16, 16)) * 300 + 3e4).astype(np.float16)
    got = np.asarray(F.group_norm(x, 4), np.float32)
    want = TF.group_norm(torch.tensor(x), 4).float().numpy()
    assert np.isfinite(want).all() and np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=5e-3, atol=5e-3)


def test_group_norm_sharded_batch_under_vmap(rng):
    x = randn(rng, (4, 6, 5))
    whole = F.group_norm(x, 3)
    mapped = jax.vmap(lambda xi: F.group_norm(xi[None], 3)[0])(x)
    np.testing.assert_allclose(mapped, whole, rtol=1e-6, atol=1e-6)


# --- layer_norm ------------------------------------------------------------------------------------

LN_CASES = [
    ((4, 10), 10, True),
    ((2, 3, 8), (8,), True),
    ((2, 3, 4, 5), (4, 5), True),
    ((2, 3, 4, 5), (3, 4, 5), False),
    ((7,), 7, True),
    ((0, 5), 5, True),
]


@pytest.mark.parametrize("shape,norm_shape,affine", LN_CASES)
def test_layer_norm_matches_torch(rng, shape, norm_shape, affine):
    x = randn(rng, shape) * 2 + 0.5
    ns = (norm_shape,) if isinstance(norm_shape, int) else norm_shape
    inputs = [x] + ([randn(rng, ns), randn(rng, ns)] if affine else [])
    check(
        lambda x, w=None, b=None: F.layer_norm(x, norm_shape, w, b),
        lambda x, w=None, b=None: TF.layer_norm(x, ns, w, b),
        inputs,
        rtol=1e-5,
        atol=1e-5,
        grad=x.size > 0,
    )


def test_layer_norm_half(rng):
    x = (randn(rng, (4, 16)) * 3).astype(ml_dtypes.bfloat16)
    got = F.layer_norm(x, 16)
    assert got.dtype == jnp.bfloat16
    want = TF.layer_norm(to_torch(x), (16,))
    np.testing.assert_allclose(as_f(got), to_numpy(want), rtol=2e-2, atol=2e-2)


# --- linear ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5), (0, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(rng, shape, bias):
    inputs = [randn(rng, shape), randn(rng, (4, 5))] + ([randn(rng, (4,))] if bias else [])
    check(F.linear, TF.linear, inputs, rtol=1e-5, atol=1e-5, grad=np.prod(shape) > 0)


def test_linear_1d_weight(rng):
    check(F.linear, TF.linear, [randn(rng, (3, 5)), randn(rng, (5,))], rtol=1e-5, atol=1e-5)


# --- errors ----------------------------------------------------------------------------------------

ERRORS = [
    (lambda: F.group_norm(jnp.ones((2, 6, 3)), 4), ValueError, "must divide the number of channels"),
    (lambda: F.group_norm(jnp.ones((6,)), 3), ValueError, "at least 2 dimensions"),
    (lambda: F.group_norm(jnp.ones((2, 6)), 0), ValueError, "`num_groups` must be a positive"),
    (lambda: F.group_norm(jnp.ones((2, 6)), 3, jnp.ones(5)), ValueError, "`weight` must have shape"),
    (lambda: F.group_norm(jnp.ones((2, 6)), 3, None, jnp.ones(7)), ValueError, "`bias` must have shape"),
    (lambda: F.group_norm(jnp.ones((2, 6), jnp.int32), 3), TypeError, "floating dtype"),
    (lambda: F.group_norm(jnp.ones((1, 2)), 2), ValueError, "more than 1 value per group"),
    (lambda: F.layer_norm(jnp.ones((2, 3)), 4), ValueError, "`normalized_shape`"),
    (lambda: F.layer_norm(jnp.ones((2, 3)), (2, 2, 3)), ValueError, "`normalized_shape`"),
    (lambda: F.layer_norm(jnp.ones((2, 3)), "3"), TypeError, "`normalized_shape` must be"),
    (lambda: F.layer_norm(jnp.ones((2, 3)), 3, jnp.ones(4)), ValueError, "`weight` must have shape"),
    (lambda: F.linear(jnp.ones((2, 3)), jnp.ones((4, 5))), ValueError, "in_features"),
    (lambda: F.linear(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.ones(5)), ValueError, "`bias`"),
    (lambda: F.linear(jnp.ones((2, 3)), jnp.ones((4, 3, 1))), ValueError, "1D or 2D"),
    (lambda: F.linear(jnp.ones((2, 3)), jnp.ones((4, 3), jnp.float16)), TypeError, "dtype"),
]


@pytest.mark.parametrize("call,exc,fragment", ERRORS)
def test_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


# --- half-precision input with float32 weight/bias: torch's mixed-precision CPU kernels -------------

_DT = {"float16": (np.float16, torch.float16), "bfloat16": (ml_dtypes.bfloat16, torch.bfloat16),
       "float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


def _check_rounded_once(got, ref, affine_scale, dtype):
    """``got`` (``dtype``) is ``ref`` (float64) rounded once, to nearest; only where ``ref`` lies within
    float32 error of a rounding midpoint may it be the other neighbour."""
    from torch_ref import round_to

    got = np.asarray(got).astype(np.float64)
    bad = got != round_to(ref, dtype)
    ulp = np.abs(np.asarray(np.nextafter(got.astype(dtype), np.array(np.inf, dtype)), np.float64) - got)
    slack = 64 * np.finfo(np.float32).eps * affine_scale
    assert (np.abs(got - ref)[bad] <= ulp[bad] / 2 + slack[bad]).all()
    assert bad.mean() < 0.01


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", ["group_norm", "layer_norm"])
def test_half_input_with_float32_params_like_torch(rng, dtype, op):
    ndt, tdt = _DT[dtype]
    x = (randn(rng, (4, 8, 6, 6)) * 2 + 3).astype(ndt)
    pshape = (8,) if op == "group_norm" else (6, 6)
    w, b = randn(rng, pshape), randn(rng, pshape)
    xt = torch.tensor(x.astype(np.float32)).to(tdt)
    if op == "group_norm":
        want = TF.group_norm(xt, 2, torch.tensor(w), torch.tensor(b))
        got = F.group_norm(jnp.asarray(x), 2, jnp.asarray(w), jnp.asarray(b))
        xd = x.astype(np.float64).reshape(4, 2, -1)
        y = ((xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
        wb, bb = w[None, :, None, None], b[None, :, None, None]
    else:
        want = TF.layer_norm(xt, (6, 6), torch.tensor(w), torch.tensor(b))
        got = F.layer_norm(jnp.asarray(x), (6, 6), jnp.asarray(w), jnp.asarray(b))
        xd = x.astype(np.float64).reshape(4, 8, -1)
        y = ((xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
        wb, bb = w, b
    assert want.dtype == tdt and got.dtype == jnp.dtype(ndt)  # the input's dtype, as torch
    ref = y * wb + bb  # statistics and affine in float32 (here float64), one rounding
    _check_rounded_once(got, ref, np.abs(y * wb) + np.abs(bb), ndt)
    eps = float(jnp.finfo(ndt).eps)
    np.testing.assert_allclose(as_f(got), as_f(to_numpy(want)), rtol=eps, atol=eps)
    # without bias, and with a bias alone
    for wt, bt in ((w, None), (None, b)):
        args = [None if a is None else torch.tensor(a) for a in (wt, bt)]
        jargs = [None if a is None else jnp.asarray(a) for a in (wt, bt)]
        want = TF.group_norm(xt, 2, *args) if op == "group_norm" else TF.layer_norm(xt, (6, 6), *args)
        got = F.group_norm(jnp.asarray(x), 2, *jargs) if op == "group_norm" else F.layer_norm(
            jnp.asarray(x), (6, 6), *jargs)
        assert got.dtype == jnp.dtype(ndt)
        np.testing.assert_allclose(as_f(got), as_f(to_numpy(want)), rtol=eps, atol=eps)


@pytest.mark.parametrize("op", ["group_norm", "layer_norm"])
def test_norm_parameter_dtypes_torch_accepts_and_rejects(op):
    # torch 2.13 CPU: weight and bias share one dtype, the input's or float32 for half input
    names = list(_DT)
    for xd in names:
        for wd in names:
            for bd in (wd, xd, None):
                x = torch.ones(2, 4, 3, dtype=_DT[xd][1])
                pshape = (4,) if op == "group_norm" else (3,)
                w = torch.ones(pshape, dtype=_DT[wd][1])
                bias = None if bd is None else torch.zeros(pshape, dtype=_DT[bd][1])
                try:
                    (TF.group_norm(x, 2, w, bias) if op == "group_norm" else TF.layer_norm(x, (3,), w, bias))
                    accepted = True
                except RuntimeError as e:
                    assert "mixed dtype" in str(e)
                    accepted = False
                # float64 as numpy arrays: the dtype check needs no x64
                jx = jnp.ones((2, 4, 3), _DT[xd][0]) if xd != "float64" else np.ones((2, 4, 3))
                jw = np.ones(pshape, _DT[wd][0])
                jb = None if bd is None else np.zeros(pshape, _DT[bd][0])
                def call(jx=jx, jw=jw, jb=jb):
                    return F.group_norm(jx, 2, jw, jb) if op == "group_norm" else F.layer_norm(jx, (3,), jw, jb)

                if accepted:
                    if "float64" not in (xd, wd, bd):
                        assert call().dtype == jnp.dtype(_DT[xd][0])
                else:
                    with pytest.raises(TypeError, match="dtype"):
                        call()
