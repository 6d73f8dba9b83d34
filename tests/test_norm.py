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
