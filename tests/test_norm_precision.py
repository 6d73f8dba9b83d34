"""group_norm / layer_norm statistics on adversarial data: at least as accurate as torch's.

jaxnn and torch (CPU) are both measured against a float64 evaluation of the same formula on the same
(already rounded) input. The data families are the ones that break one-pass and shifted-moment
formulas: an outlier at any position (the first element of a group included), large offsets, heavy
tails, constant rows, mixtures of scales, and half-precision inputs (statistics in float32).
"""

from functools import partial

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f, to_numpy, to_torch

import jaxnn.functional as F
from jaxnn.functional import _norm

DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def _ref_normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    x64 = as_f(x).astype(np.float64)
    mean = x64.mean(axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axes, keepdims=True)
    return (x64 - mean) / np.sqrt(var + eps)


def ref_layer_norm(x: np.ndarray, k: int, eps: float = 1e-5) -> np.ndarray:
    return _ref_normalize(x, tuple(range(x.ndim - k, x.ndim)), eps)


def ref_group_norm(x: np.ndarray, groups: int, eps: float = 1e-5) -> np.ndarray:
    n, c = x.shape[:2]
    g = x.reshape(n, groups, c // groups, -1)
    return _ref_normalize(g, (2, 3), eps).reshape(x.shape)


def ulp(dtype) -> float:
    return float(ml_dtypes.finfo(dtype).eps)


def assert_no_worse_than_torch(ours: np.ndarray, theirs: np.ndarray, ref: np.ndarray, dtype) -> None:
    """max |ours - ref| <= max |torch - ref|, up to one rounding of the output in ``dtype``.

    The slack is one unit in the last place of the largest output: two correctly computed results
    can round to neighbouring values of the output dtype.
    """
    err_ours = float(np.max(np.abs(as_f(ours).astype(np.float64) - ref), initial=0.0))
    err_torch = float(np.max(np.abs(as_f(theirs).astype(np.float64) - ref), initial=0.0))
    slack = ulp(dtype) * float(np.max(np.abs(ref), initial=1.0))
    assert err_ours <= err_torch + slack, f"jaxnn error {err_ours:.3g} > torch error {err_torch:.3g} (+{slack:.3g})"


def data(kind: str, shape: tuple[int, ...], seed: int, dtype) -> np.ndarray:
    """One adversarial family; ``kind`` names it."""
    r = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if kind == "normal":
        x = r.standard_normal(size)
    elif kind == "offset":  # |mean| >> std: E[x^2] - E[x]^2 loses everything
        x = r.standard_normal(size) * r.choice([1e-3, 1.0, 10.0]) + r.choice([1e4, -3e3, 2e5])
    elif kind == "outlier":  # a few huge values at random positions, and one at position 0
        x = r.uniform(-1, 1, size)
        k = int(r.integers(1, 4))
        pos = np.concatenate([[0], r.integers(0, size, k - 1)]) if r.random() < 0.5 else r.integers(0, size, k)
        x[pos] = r.choice([-1, 1], k) * r.choice([10.0, 300.0, 3000.0, 1e5], k)
    elif kind == "heavy":  # Cauchy-like tails
        x = r.standard_t(1.5, size)
    elif kind == "constant":
        x = np.full(size, r.choice([0.0, 1.0, -7.25, 1e4, 0.1]))
    elif kind == "scales":  # blocks of very different scales
        x = r.standard_normal(size) * np.repeat(10.0 ** r.integers(-3, 4, 8), -(-size // 8))[:size]
    else:
        raise AssertionError(kind)
    if dtype == np.float16:
        x = np.clip(x, -6e4, 6e4)
    return x.reshape(shape).astype(np.float32).astype(dtype)


_JITTED: dict = {}


def _jit(fn):
    """One compiled function per configuration (hypothesis repeats them)."""
    key = (fn.func, tuple(sorted(fn.keywords.items())))
    if key not in _JITTED:
        _JITTED[key] = jax.jit(fn)
    return _JITTED[key]


def _xla_group_norm(x, num_groups, channels_last):
    """jaxnn's XLA implementation of group_norm (GPU/TPU, exported programs): float32 on the CPU
    otherwise takes the kernel of jaxnn/_kernels."""
    return _norm._group_norm_xla(x, None, None, num_groups, 1e-5, channels_last)


KINDS = ["normal", "offset", "outlier", "heavy", "constant", "scales"]
LN_SHAPES = [((3, 7), 1), ((2, 64), 1), ((2, 768), 1), ((1, 4096), 1), ((2, 4, 6, 10), 2), ((2, 3, 32, 8), 3)]
GN_SHAPES = [((2, 6, 5), 3), ((2, 8, 8, 8), 4), ((1, 32, 16, 16), 8), ((1, 4, 32, 32), 1), ((2, 4, 3, 3, 3), 2)]


def test_issue_example_outlier_first():
    """x = [3000, linspace(-1, 1, 4095)]: the first sample is a bad shift; torch y[0] = 63.987335."""
    x = np.concatenate([[3000.0], np.linspace(-1, 1, 4095)]).astype(np.float32)[None]
    ref = ref_layer_norm(x, 1)
    ours = np.asarray(F.layer_norm(jnp.asarray(x), (4096,)))
    theirs = TF.layer_norm(torch.tensor(x), (4096,)).numpy()
    np.testing.assert_allclose(ours[0, :2], ref[0, :2], rtol=1e-6, atol=0)  # 63.987331, -0.0369600
    assert_no_worse_than_torch(ours, theirs, ref, np.float32)
    two_ulp = 2 * float(np.spacing(np.float32(np.abs(ref).max())))  # float32 spacing at 64: 3.8e-6
    assert np.abs(ours - ref).max() <= two_ulp
    # the same data as one group of a (1, 1, 64, 64) group_norm, and the outlier anywhere
    for shift in (0, 1, 2047, 4095):
        xs = np.roll(x, shift).reshape(1, 1, 64, 64)
        for gn in (F.group_norm, _xla_group_norm):
            ours = np.asarray(gn(jnp.asarray(xs), 1, channels_last=False))
            assert np.abs(ours - ref_group_norm(xs, 1)).max() <= two_ulp
            last = np.asarray(gn(jnp.asarray(np.moveaxis(xs, 1, -1)), 1, channels_last=True))
            assert np.abs(np.moveaxis(last, -1, 1) - ref_group_norm(xs, 1)).max() <= two_ulp


def test_ten_sigma_value_at_position_zero():
    r = np.random.default_rng(3)
    x = r.standard_normal((4, 1024)).astype(np.float32)
    x[:, 0] = 10.0
    ref = ref_layer_norm(x, 1)
    ours = np.asarray(F.layer_norm(jnp.asarray(x), 1024))
    theirs = TF.layer_norm(torch.tensor(x), (1024,)).numpy()
    assert_no_worse_than_torch(ours, theirs, ref, np.float32)


@settings(max_examples=150)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(LN_SHAPES),
    st.sampled_from(list(DTYPES)),
    st.integers(0, 2**31 - 1),
)
def test_layer_norm_at_least_as_accurate_as_torch(kind, shape_k, dtype_name, seed):
    shape, k = shape_k
    dtype = DTYPES[dtype_name]
    x = data(kind, shape, seed, dtype)
    norm_shape = shape[len(shape) - k :]
    ref = ref_layer_norm(x, k)
    theirs = to_numpy(TF.layer_norm(to_torch(x), norm_shape))
    fn = partial(F.layer_norm, normalized_shape=norm_shape)
    for ours in (fn(jnp.asarray(x)), _jit(fn)(jnp.asarray(x))):  # eager and compiled fusions differ
        assert ours.dtype == np.dtype(dtype)
        assert_no_worse_than_torch(np.asarray(ours), theirs, ref, dtype)


@settings(max_examples=150)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(GN_SHAPES),
    st.sampled_from(list(DTYPES)),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_group_norm_at_least_as_accurate_as_torch(kind, shape_g, dtype_name, channels_last, seed):
    shape, groups = shape_g
    dtype = DTYPES[dtype_name]
    x = data(kind, shape, seed, dtype)
    ref = ref_group_norm(x, groups)
    theirs = to_numpy(TF.group_norm(to_torch(x), groups))
    fn = partial(F.group_norm, num_groups=groups, channels_last=channels_last)
    xin = jnp.asarray(np.moveaxis(x, 1, -1) if channels_last else x)
    outs = [fn(xin), _jit(fn)(xin)]  # eager and compiled fusions differ
    if dtype == np.float32:  # float32 runs jaxnn's CPU kernel; its XLA implementation runs elsewhere
        outs.append(_jit(partial(_xla_group_norm, num_groups=groups, channels_last=channels_last))(xin))
    for out in outs:
        ours = np.moveaxis(np.asarray(out), -1, 1) if channels_last else np.asarray(out)
        assert ours.dtype == np.dtype(dtype)
        assert_no_worse_than_torch(ours, theirs, ref, dtype)


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
def test_constant_groups_normalise_to_zero(dtype):
    x = np.full((2, 4, 5, 5), 1e4 if dtype != np.float16 else 1e3, np.float32).astype(dtype)
    x[1] = np.asarray(0.1, dtype)
    np.testing.assert_array_equal(as_f(np.asarray(F.group_norm(jnp.asarray(x), 2))), 0.0)
    np.testing.assert_array_equal(as_f(np.asarray(F.layer_norm(jnp.asarray(x), (5, 5)))), 0.0)


def test_statistics_do_not_depend_on_where_the_outlier_sits():
    """Rolling a row moves its outlier; the normalised values move with it, to float32 rounding."""
    r = np.random.default_rng(0)
    x = r.standard_normal(2048).astype(np.float32)
    x[5] = 5e3
    base = np.asarray(F.layer_norm(jnp.asarray(x[None]), 2048))[0]
    for shift in (0, 1, 1000, 2042):
        rolled = np.asarray(F.layer_norm(jnp.asarray(np.roll(x, shift)[None]), 2048))[0]
        np.testing.assert_allclose(np.roll(base, shift), rolled, rtol=0, atol=4 * ulp(np.float32) * np.abs(base).max())


@pytest.mark.parametrize("compiled", [False, True])
def test_offset_rows_under_jit(compiled):
    """mean 1e4, std 1: the shift is rounded once for every fusion (FMA contraction under jit
    once made the correction term refer to a different shift: error 4.7e-4 vs 2e-7 eager)."""
    x = (np.random.default_rng(1).standard_normal((16, 17)) + 1e4).astype(np.float32)
    fn = partial(F.layer_norm, normalized_shape=(17,))
    ours = np.asarray((jax.jit(fn) if compiled else fn)(jnp.asarray(x)))
    assert np.abs(ours - ref_layer_norm(x, 1)).max() < 2e-6
    xg = (np.random.default_rng(2).standard_normal((2, 64, 9, 9)) + 1e4).astype(np.float32)
    for last in (False, True):
        g = partial(F.group_norm, num_groups=32, channels_last=last)
        xin = jnp.asarray(np.moveaxis(xg, 1, -1) if last else xg)
        out = np.asarray((jax.jit(g) if compiled else g)(xin))
        out = np.moveaxis(out, -1, 1) if last else out
        assert np.abs(out - ref_group_norm(xg, 32)).max() < 2e-6


def test_sum_of_squares_overflow_gives_zero_like_torch():
    """Finite inputs whose squares overflow float32: torch's output is 0 (rstd underflows), not nan."""
    x = np.array([1e20, 1.0, 2.0, 3.0] * 5, np.float32)[None]
    ours = np.asarray(F.layer_norm(jnp.asarray(x), (20,)))
    theirs = TF.layer_norm(torch.tensor(x), (20,)).numpy()
    assert np.isfinite(ours).all()
    np.testing.assert_array_equal(ours, theirs)


def test_empty_normalized_shape_and_groups():
    for shape, ns in (((3, 0), (0,)), ((0, 4), (4,)), ((2, 0, 3), (0, 3))):
        x = np.zeros(shape, np.float32)
        out = F.layer_norm(jnp.asarray(x), ns)
        assert out.shape == TF.layer_norm(torch.tensor(x), ns).shape


@pytest.mark.parametrize("kind", ["outlier", "offset", "heavy"])
def test_split_cascade_reductions(monkeypatch, kind):
    """Large partial sums are reduced as two two-output reductions (``_SPLIT_MIN``, vectorised by
    XLA's CPU backend) instead of one four-output one; forced here on small inputs: same accuracy,
    outputs and gradients within an ulp of the single-reduction path."""
    x = data(kind, (2, 8, 16, 16), 0, np.float32)
    x[0, 0, 0, 0] = 3000.0  # an outlier as a group's first element
    cot = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)

    def run():
        out = {}
        for last in (False, True):
            xin = jnp.asarray(np.moveaxis(x, 1, -1) if last else x)
            c = jnp.asarray(np.moveaxis(cot, 1, -1) if last else cot)
            y, vjp = jax.vjp(jax.jit(partial(_xla_group_norm, num_groups=4, channels_last=last)), xin)
            out[last] = (np.asarray(y), np.asarray(vjp(c)[0]))
        out["ln"] = np.asarray(jax.jit(partial(F.layer_norm, normalized_shape=(16, 16)))(jnp.asarray(x)))
        return out

    single = run()
    monkeypatch.setattr(_norm, "_SPLIT_MIN", 0)
    split = run()
    ref = ref_group_norm(x, 4)
    theirs = TF.group_norm(torch.tensor(x), 4).numpy()
    for last in (False, True):
        y = np.moveaxis(split[last][0], -1, 1) if last else split[last][0]
        assert_no_worse_than_torch(y, theirs, ref, np.float32)
        for a, b in zip(single[last], split[last], strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=ulp(np.float32) * np.abs(a).max())
    np.testing.assert_allclose(single["ln"], split["ln"], rtol=0, atol=ulp(np.float32) * np.abs(single["ln"]).max())
