"""unfold / fold (im2col / col2im) against torch: bit-exact outputs and gradients, half types,
unbatched inputs, random configurations, torch's error conditions."""

import functools

import jax
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import check, randn

import jaxnn.functional as F

# (input shape, kernel_size, dilation, padding, stride)
UNFOLD_CASES = [
    ((2, 3, 5, 6), 2, 1, 0, 1),
    ((2, 3, 7, 8), (2, 3), (2, 1), (1, 2), (2, 3)),
    ((1, 2, 6, 6), 3, 2, 2, 1),
    ((2, 1, 5, 9), (1, 4), 1, (0, 1), (1, 2)),
    ((3, 4, 4), 2, 1, 1, 2),  # unbatched (C, H, W)
    ((2, 2, 3, 3), 3, 1, 0, 1),  # one block
    ((0, 2, 4, 4), 2, 1, 0, 1),  # empty batch
    ((1, 2, 5, 5), [2, 2], [1, 2], [1, 0], [3, 1]),  # lists, as torch accepts
]


def _kw(k, d, p, s):
    return dict(kernel_size=k, dilation=d, padding=p, stride=s)


@pytest.mark.parametrize("shape,k,d,p,s", UNFOLD_CASES)
def test_unfold_matches_torch(shape, k, d, p, s):
    kw = _kw(k, d, p, s)
    x = randn(np.random.default_rng(0), shape)
    check(lambda v: F.unfold(v, **kw), lambda t: TF.unfold(t, **kw), [x], rtol=0, atol=0, exact=True)


@pytest.mark.parametrize("shape,k,d,p,s", UNFOLD_CASES)
def test_fold_matches_torch(shape, k, d, p, s):
    kw = _kw(k, d, p, s)
    size = shape[-2:]
    cols_shape = tuple(TF.unfold(torch.zeros(shape), **kw).shape)
    cols = randn(np.random.default_rng(1), cols_shape)
    # overlapping blocks are summed in torch's order: bit-exact
    check(lambda v: F.fold(v, size, **kw), lambda t: TF.fold(t, size, **kw), [cols], rtol=0, atol=0, exact=True)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("shape,k,d,p,s", [UNFOLD_CASES[1], UNFOLD_CASES[2], UNFOLD_CASES[4]])
def test_half_dtypes_bit_exact(dtype, shape, k, d, p, s):
    kw = _kw(k, d, p, s)
    x = randn(np.random.default_rng(2), shape, dtype)
    check(lambda v: F.unfold(v, **kw), lambda t: TF.unfold(t, **kw), [x], rtol=0, atol=0, exact=True)
    cols = np.asarray(F.unfold(x, **kw)) * dtype(1.5)  # overlapping sums round in the half type
    check(lambda v: F.fold(v, shape[-2:], **kw), lambda t: TF.fold(t, shape[-2:], **kw), [cols],
          rtol=0, atol=0, exact=True)


def test_float64_and_fold_of_unfold_counts_overlaps():
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 7))
    kw = _kw((3, 2), 1, 1, (2, 1))
    with torch.no_grad():
        want = TF.fold(TF.unfold(torch.from_numpy(x), **kw), (6, 7), **kw).numpy()
    with jax.enable_x64(True):
        got = np.asarray(F.fold(F.unfold(x, **kw), (6, 7), **kw))
        assert got.dtype == np.float64
        ones = np.asarray(F.fold(F.unfold(np.ones_like(x), **kw), (6, 7), **kw))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, x * ones, rtol=1e-12)  # torch's documented identity


@functools.cache
def _jitted():
    """One compiled program per configuration (eager ops would compile each primitive)."""
    static = ("kernel_size", "dilation", "padding", "stride")
    return jax.jit(F.unfold, static_argnames=static), jax.jit(F.fold, static_argnames=("output_size", *static))


@settings(max_examples=15)
@given(
    n=st.integers(0, 2), c=st.integers(1, 3), h=st.integers(1, 7), w=st.integers(1, 7),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    p=st.tuples(st.integers(0, 2), st.integers(0, 2)), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    batched=st.booleans(),
)
def test_random_configurations_match_torch(n, c, h, w, k, d, p, s, batched):
    kw = _kw(k, d, p, s)
    unfold, fold = _jitted()
    shape = (n, c, h, w) if batched else (c, h, w)
    x = randn(np.random.default_rng(h * 7 + w), shape)
    try:
        cols_t = TF.unfold(torch.from_numpy(x), **kw)
    except RuntimeError:
        with pytest.raises(ValueError, match="sliding blocks"):
            F.unfold(x, **kw)
        return
    np.testing.assert_array_equal(np.asarray(unfold(x, **kw)), cols_t.numpy())
    cols = randn(np.random.default_rng(5), tuple(cols_t.shape))
    np.testing.assert_array_equal(np.asarray(fold(cols, (h, w), **kw)),
                                  TF.fold(torch.from_numpy(cols), (h, w), **kw).numpy())


X = np.zeros((2, 3, 5, 6), np.float32)
UNFOLD_ERRORS = [
    (X, dict(kernel_size=(2,)), ValueError, "`kernel_size`"),
    (X, dict(kernel_size=(2, 3, 4)), ValueError, "`kernel_size`"),
    (X, dict(kernel_size=0), ValueError, "`kernel_size` must be greater than zero"),
    (X, dict(kernel_size=2, dilation=0), ValueError, "`dilation`"),
    (X, dict(kernel_size=2, padding=-1), ValueError, "`padding` must be non-negative"),
    (X, dict(kernel_size=2, stride=0), ValueError, "`stride`"),
    (X, dict(kernel_size=7), ValueError, "sliding blocks"),
    (X, dict(kernel_size=2.0), TypeError, "`kernel_size`"),
    (np.zeros((3, 5), np.float32), dict(kernel_size=2), ValueError, "3-D"),
    (np.zeros((1, 2, 3, 5, 5), np.float32), dict(kernel_size=2), ValueError, "3-D"),
    (np.zeros((1, 0, 5, 5), np.float32), dict(kernel_size=2), ValueError, "non-zero"),
    (np.zeros((2, 3, 5, 6), np.int32), dict(kernel_size=2), TypeError, "floating"),
]


@pytest.mark.parametrize("x,kw,exc,fragment", UNFOLD_ERRORS)
def test_unfold_errors_where_torch_errors(x, kw, exc, fragment):
    with pytest.raises((RuntimeError, TypeError, IndexError, NotImplementedError)):
        TF.unfold(torch.from_numpy(x), **kw)
    with pytest.raises(exc, match=fragment):
        F.unfold(x, **kw)


C = np.zeros((2, 12, 12), np.float32)
FOLD_ERRORS = [
    (C, ((5, 6), 2), ValueError, "number of sliding blocks"),
    (np.zeros((2, 13, 12), np.float32), ((4, 5), 2), ValueError, "divisible"),
    (np.zeros((2, 12, 12, 1), np.float32), ((4, 5), 2), ValueError, "2-D"),
    (np.zeros((2, 0, 12), np.float32), ((4, 5), 2), ValueError, "non-zero"),
    (C, ((0, 5), 2), ValueError, "`output_size`"),
    (np.zeros((2, 12, 1), np.float32), ((1, 1), 2), ValueError, "sliding blocks"),
    (C, ((4, 5), 2, 1, -1), ValueError, "`padding`"),
    (C, ((4, 5), (2, 2, 2)), ValueError, "`kernel_size`"),
    (C, ((4, 5, 6), 2), ValueError, "`output_size`"),
    (np.zeros((2, 12, 12), np.int64), ((4, 5), 2), TypeError, "floating"),
]


@pytest.mark.parametrize("x,args,exc,fragment", FOLD_ERRORS)
def test_fold_errors_where_torch_errors(x, args, exc, fragment):
    with pytest.raises((RuntimeError, TypeError, NotImplementedError)):
        TF.fold(torch.from_numpy(x), *args)
    with pytest.raises(exc, match=fragment):
        F.fold(x, *args)


@pytest.mark.parametrize("kind", ["bool", "complex64"])
def test_bool_and_complex_inputs_as_torch(kind):
    """torch's im2col/col2im kernels take bool and complex tensors (overlapping bools are or-ed);
    jaxnn raised TypeError for them (regression)."""
    rng = np.random.default_rng(21)

    def sample(shape):
        if kind == "bool":
            return rng.random(shape) < 0.3
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)

    kw = _kw((2, 3), (1, 2), (1, 0), (1, 1))
    x = sample((2, 2, 4, 7))
    out, want = np.asarray(F.unfold(x, **kw)), TF.unfold(torch.from_numpy(x), **kw).numpy()
    assert out.dtype == want.dtype
    np.testing.assert_array_equal(out, want)
    cols = sample(tuple(want.shape))  # overlapping blocks: several taps land on one pixel
    out, want = np.asarray(F.fold(cols, (4, 7), **kw)), TF.fold(torch.from_numpy(cols), (4, 7), **kw).numpy()
    assert out.dtype == want.dtype
    np.testing.assert_array_equal(out, want)


def test_numpy_array_sizes_as_torch():
    """torch takes a 1-D NumPy array for ``output_size`` / ``kernel_size`` (regression: TypeError)."""
    cols = randn(np.random.default_rng(22), (1, 8, 6))
    want = TF.fold(torch.from_numpy(cols), np.array([3, 4]), np.array([2, 2])).numpy()
    np.testing.assert_array_equal(np.asarray(F.fold(cols, np.array([3, 4]), np.array([2, 2]))), want)
