"""Max unpooling against torch: max_pool -> max_unpool round trips (outputs bit for bit, vjp gradients
against torch autograd), repeated indices (the last write wins; every repeat takes the gradient at
its index), float16/bfloat16/float64, unbatched inputs, ``output_size`` forms, torch's error
conditions, the documented differences, and the MaxUnpool layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch_ref import as_f, outcome, randn, to_numpy, to_torch

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}
T_UNPOOL = {1: TF.max_unpool1d, 2: TF.max_unpool2d, 3: TF.max_unpool3d}
POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
T_POOL = {1: TF.max_pool1d, 2: TF.max_pool2d, 3: TF.max_pool3d}


def _unpool_kwargs(kw):
    """max_pool's window arguments that max_unpool takes too."""
    return {k: kw[k] for k in ("kernel_size", "stride", "padding") if k in kw}


def _compare(n, y, idx_j, idx_t, ukw, seed=0):
    """jaxnn's unpooling of (y, idx_j) against torch's of (y, idx_t): the verdict, the output bit for
    bit and the gradient w.r.t. y (one random cotangent) bit for bit (it is a gather)."""
    ty = to_torch(y, requires_grad=True)
    kind, t_out = outcome(lambda: T_UNPOOL[n](ty, idx_t, **ukw))
    if kind == "error":
        with pytest.raises((ValueError, TypeError)):
            UNPOOL[n](jnp.asarray(y), idx_j, **ukw)
        return False
    f = jax.jit(lambda v: UNPOOL[n](v, idx_j, **ukw))
    out, vjp = jax.vjp(f, jnp.asarray(y))
    assert out.dtype == jnp.asarray(y).dtype and out.shape == tuple(t_out.shape)
    np.testing.assert_array_equal(as_f(out), to_numpy(t_out))
    cot = randn(np.random.default_rng(seed), out.shape, np.asarray(y).dtype)
    grad = as_f(vjp(jnp.asarray(cot))[0])
    if outcome(lambda: t_out.backward(to_torch(cot)))[0] == "error":
        # torch 2.13's backward gathers from an empty output and fails; jaxnn's gradient is zero
        assert out.size == 0 and np.asarray(y).size > 0 and not grad.any()
        return True
    np.testing.assert_array_equal(grad, to_numpy(ty.grad))
    return True


def _round_trip(n, x, kw, output_size, seed=0):
    """max_pool (return_indices) then max_unpool, jaxnn's chain against torch's; jaxnn's own pooling
    indices (int32, or int64 under x64) are the ones unpooled."""
    tx = to_torch(x)
    t_y, t_idx = T_POOL[n](tx, **kw, return_indices=True)
    j_y, j_idx = POOL[n](jnp.asarray(x), **kw, return_indices=True)
    np.testing.assert_array_equal(np.asarray(j_idx), t_idx.numpy())
    np.testing.assert_array_equal(as_f(j_y), to_numpy(t_y))
    return _compare(n, np.asarray(j_y), j_idx, t_idx, {**_unpool_kwargs(kw), "output_size": output_size}, seed)


# --- round trips: tables ----------------------------------------------------------------------------

# (n, input shape, max_pool kwargs, output_size: "input" = the pooled input's spatial size, or None)
ROUND_TRIPS = [
    (1, (2, 3, 8), dict(kernel_size=2), None),
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1), "input"),
    (1, (3, 10), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True), "input"),
    (1, (2, 2, 8), dict(kernel_size=4, stride=3, ceil_mode=True), "input"),
    (2, (2, 3, 6, 8), dict(kernel_size=2), None),
    (2, (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1), "input"),
    (2, (3, 7, 8), dict(kernel_size=(2, 3), stride=(1, 3), padding=(1, 0), dilation=(1, 2)), "input"),
    (2, (2, 2, 6, 6), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), "input"),
    (2, (1, 2, 5, 7), dict(kernel_size=(3, 2), stride=(2, 3), ceil_mode=True), "input"),
    (2, (2, 3, 4, 4), dict(kernel_size=3, stride=1, padding=1), None),  # overlapping windows: repeats
    (3, (1, 2, 4, 4, 4), dict(kernel_size=2), None),
    (3, (2, 5, 4, 6), dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True), "input"),
    (3, (1, 2, 5, 5, 3), dict(kernel_size=2, stride=(1, 2, 1), padding=1, dilation=(1, 2, 1)), "input"),
]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n,shape,kw,osize", ROUND_TRIPS, ids=[f"{c[0]}d-{i}" for i, c in enumerate(ROUND_TRIPS)])
def test_round_trip_matches_torch(rng, n, shape, kw, osize, ties):
    x = rng.integers(-2, 3, shape).astype(np.float32) if ties else randn(rng, shape)
    output_size = shape[-n:] if osize == "input" else None
    assert _round_trip(n, x, kw, output_size)


def test_round_trip_with_the_default_size_where_the_input_was_larger(rng):
    """A pooled input bigger than the default unpooled size: torch's indices fall outside the
    output plane; both refuse (torch: RuntimeError, jaxnn: ValueError naming the index)."""
    x = randn(rng, (1, 2, 7))
    kw = dict(kernel_size=2, stride=2, padding=1)  # default size (4 - 1) * 2 + 2 - 2 = 6 < 7
    t_y, t_idx = TF.max_pool1d(to_torch(x), **kw, return_indices=True)
    with pytest.raises(RuntimeError, match="invalid max index"):
        TF.max_unpool1d(t_y, t_idx, 2, 2, 1)
    j_y, j_idx = F.max_pool1d(jnp.asarray(x), **kw, return_indices=True)
    with pytest.raises(ValueError, match="invalid max index 6 in `indices`"):
        F.max_unpool1d(j_y, j_idx, 2, 2, 1)
    assert _round_trip(1, x, kw, (7,))


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_half_precision_bit_exact(rng, n, dtype):
    shape = {1: (2, 3, 9), 2: (2, 3, 5, 6), 3: (1, 2, 4, 5, 4)}[n]
    x = (randn(rng, shape) * 100).astype(dtype)
    assert _round_trip(n, x, dict(kernel_size=3, stride=2, padding=1), shape[-n:])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_float64_and_int64_indices_with_x64(rng, n):
    shape = {1: (2, 3, 9), 2: (2, 3, 5, 6), 3: (1, 2, 4, 5, 4)}[n]
    x = randn(rng, shape, np.float64)
    with jax.enable_x64(True):
        _, j_idx = POOL[n](jnp.asarray(x), 2, return_indices=True)
        assert j_idx.dtype == jnp.int64
        assert _round_trip(n, x, dict(kernel_size=2), shape[-n:])


# --- repeated indices, arbitrary indices -------------------------------------------------------------


def test_repeated_indices_last_write_wins_and_every_repeat_gets_the_gradient():
    y = np.array([[[1.0, 2.0, 3.0, 4.0]], [[5.0, 6.0, 7.0, 8.0]]], np.float32)  # (2, 1, 4)
    idx = np.array([[[0, 0, 3, 0]], [[2, 1, 2, 2]]])
    assert _compare(1, y, jnp.asarray(idx, jnp.int32), torch.tensor(idx), dict(kernel_size=1))
    out = F.max_unpool1d(jnp.asarray(y), jnp.asarray(idx, jnp.int32), 1)
    np.testing.assert_array_equal(out, [[[4.0, 0.0, 0.0, 3.0]], [[0.0, 6.0, 8.0, 0.0]]])
    cot = jnp.arange(1.0, 5.0).reshape(1, 1, 4)
    g = jax.grad(lambda v: jnp.sum(F.max_unpool1d(v, jnp.asarray(idx, jnp.int32), 1) * cot))(jnp.asarray(y))
    np.testing.assert_array_equal(g, [[[1.0, 1.0, 4.0, 1.0]], [[3.0, 2.0, 3.0, 3.0]]])


@st.composite
def arbitrary_cases(draw):
    n = draw(st.integers(1, 3))
    batched = draw(st.booleans())
    k = tuple(draw(st.integers(1, 3)) for _ in range(n))
    s = tuple(draw(st.integers(1, 3)) for _ in range(n))
    p = tuple(draw(st.integers(0, kv // 2)) for kv in k)
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(n))
    return n, batched, k, s, p, spatial, draw(st.integers(0, 2**16))


@pytest.mark.xdist_group("unpool")
@settings(max_examples=15)
@given(arbitrary_cases())
def test_arbitrary_indices_hypothesis(case):
    """Random in-range indices, repeats included (not from a pooling): torch's order of writes."""
    n, batched, k, s, p, spatial, seed = case
    rng = np.random.default_rng(seed)
    shape = ((2, 2) if batched else (3,)) + spatial
    plane = int(np.prod([(L - 1) * sv + kv - 2 * pv for L, kv, sv, pv in zip(spatial, k, s, p, strict=True)]))
    y = randn(rng, shape)
    idx = rng.integers(0, max(plane, 1), shape)
    ok = _compare(n, y, jnp.asarray(idx, jnp.int32), torch.tensor(idx), dict(kernel_size=k, stride=s, padding=p), seed)
    event("unpooled" if ok else "refused by both")


@st.composite
def round_trip_cases(draw):
    n = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(n))
    s = tuple(draw(st.integers(1, 3)) for _ in range(n))
    p = tuple(draw(st.integers(0, kv // 2)) for kv in k)
    d = tuple(draw(st.integers(1, 2)) for _ in range(n))
    lo = [max(1, dv * (kv - 1) + 1 - 2 * pv) for kv, pv, dv in zip(k, p, d, strict=True)]  # at least one window
    spatial = tuple(draw(st.integers(v, v + (4 if n < 3 else 2))) for v in lo)
    return n, k, s, p, d, draw(st.booleans()), spatial, draw(st.booleans()), draw(st.integers(0, 2**16))


@pytest.mark.xdist_group("unpool")
@settings(max_examples=15)
@given(round_trip_cases())
def test_round_trip_hypothesis(case):
    n, k, s, p, d, ceil, spatial, to_input_size, seed = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (2, 2, *spatial)).astype(np.float32)  # ties
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    if outcome(lambda: T_POOL[n](to_torch(x), **kw))[0] == "error":
        event("no pooling")
        return  # no pooling (output too small): test_pool's business
    ok = _round_trip(n, x, kw, spatial if to_input_size else None, seed)
    event("unpooled" if ok else "refused by both (indices or output_size out of range)")


# --- shapes: unbatched, empty batch, output_size forms -------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_unbatched_and_empty_batch_like_torch(rng, n):
    spatial = (2,) * n
    y = randn(rng, (3, *spatial))
    idx = rng.integers(0, 4**n, y.shape)
    assert _compare(n, y, jnp.asarray(idx, jnp.int32), torch.tensor(idx), dict(kernel_size=2))
    empty = np.zeros((0, 3, *spatial), np.float32)
    assert _compare(n, empty, jnp.zeros(empty.shape, jnp.int32), torch.zeros(empty.shape, dtype=torch.long),
                    dict(kernel_size=2))
    # unbatched with no channels: torch checks only the dimensions after the first
    none = np.zeros((0, *spatial), np.float32)
    assert _compare(n, none, jnp.zeros(none.shape, jnp.int32), torch.zeros(none.shape, dtype=torch.long),
                    dict(kernel_size=2))


OUTPUT_SIZES = [
    (2, (5, 7)), (2, [3, 5]), (2, (2, 3, 5, 7)), (2, (9, 9, 4, 6)), (2, np.array([5, 6])), (2, torch.Size([4, 6])),
    (2, (6, 6)), (2, (2, 6)), (2, (4, 7, 1)), (2, (4,)), (2, 5), (2, (4.0, 6.0)), (2, "46"),
    (1, (7,)), (1, [3]), (1, (2, 3, 7)), (1, (2, 3)), (1, (8,)), (1, 7),
    (3, (2, 5, 6)), (3, (1, 1, 3, 5, 7)), (3, (4, 4, 4, 4)), (3, (3, 4, 8)),
]


@pytest.mark.parametrize("n,output_size", OUTPUT_SIZES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(OUTPUT_SIZES)])
def test_output_size_forms_and_range_like_torch(rng, n, output_size):
    """Spatial sizes or the full shape (first two ignored), each strictly within default +- stride;
    the same verdict as torch's (ValueError for lengths and ranges, TypeError for non-int entries)."""
    spatial = {1: (3,), 2: (2, 3), 3: (1, 2, 3)}[n]  # default output with kernel 2: 2x each
    y = randn(rng, (2, 3, *spatial))
    idx = np.zeros(y.shape, np.int64)
    kind, want = outcome(lambda: T_UNPOOL[n](to_torch(y), torch.tensor(idx), 2, output_size=output_size))
    if kind == "error":
        exc = TypeError if isinstance(want, TypeError) else ValueError
        with pytest.raises(exc, match="`output_size`"):
            UNPOOL[n](jnp.asarray(y), jnp.asarray(idx, jnp.int32), 2, output_size=output_size)
        return
    got = UNPOOL[n](jnp.asarray(y), jnp.asarray(idx, jnp.int32), 2, output_size=output_size)
    np.testing.assert_array_equal(got, to_numpy(want))


def test_negative_and_zero_output_sizes_like_torch(rng):
    """A default of 0 (one input, kernel 2, padding 1): sizes down to -1 are in range; torch refuses
    the negative ones and returns an empty output for 0, without looking at the indices."""
    y = randn(rng, (1, 2, 1))
    idx = np.full(y.shape, 5)
    want = TF.max_unpool1d(to_torch(y), torch.tensor(idx), 2, padding=1)
    got = F.max_unpool1d(jnp.asarray(y), jnp.asarray(idx, jnp.int32), 2, padding=1)
    assert got.shape == tuple(want.shape) == (1, 2, 0)
    with pytest.raises(ValueError, match="non-negative"):
        TF.max_unpool1d(to_torch(y), torch.tensor(idx), 2, padding=1, output_size=(-1,))
    with pytest.raises(ValueError, match="`output_size` must contain non-negative spatial sizes"):
        F.max_unpool1d(jnp.asarray(y), jnp.asarray(idx, jnp.int32), 2, padding=1, output_size=(-1,))


# --- errors -------------------------------------------------------------------------------------------

_Y2, _I2 = np.ones((1, 2, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.int64)

# (n, input, indices, kwargs, jaxnn's exception, message fragment): torch raises for each
ERRORS = [
    (2, _Y2, _I2[..., :1], {}, ValueError, "`indices` must have the shape of `input`"),
    (2, _Y2[0, 0], _I2[0, 0], {}, ValueError, "`input` must be 3-D"),
    (2, _Y2[None], _I2[None], {}, ValueError, "`input` must be 3-D .* or 4-D"),
    (1, _Y2[0, 0, 0], _I2[0, 0, 0], {}, ValueError, "`input` must be 2-D"),
    (3, _Y2[0], _I2[0], {}, ValueError, "`input` must be 4-D"),
    (2, _Y2.astype(np.int32), _I2, {}, TypeError, "`input` must have a floating dtype"),
    (2, _Y2, _I2.astype(np.float32), {}, TypeError, "`indices` must be int64"),
    (2, _Y2, _I2.astype(np.int16), {}, TypeError, "`indices` must be int64"),
    (2, _Y2, _I2 + 16, {}, ValueError, "invalid max index 16 in `indices` at position \\(0, 0, 0, 0\\)"),
    (2, _Y2, _I2 - 1, {}, ValueError, "invalid max index -1"),
    (2, _Y2, np.where(np.arange(8).reshape(_I2.shape) == 5, 99, _I2), {}, ValueError,
     "invalid max index 99 in `indices` at position \\(0, 1, 0, 1\\)"),
    (2, _Y2[:, :0], _I2[:, :0], {}, ValueError, "non-zero sizes"),
    (2, _Y2[:, :, :0], _I2[:, :, :0], {}, ValueError, "non-zero sizes"),
    (3, _Y2[None], _I2[None], {"stride": 0}, ValueError, "`stride` must be greater than zero"),
    (3, _Y2[None], _I2[None], {"stride": (1, 1, -1)}, ValueError, "`stride` must be greater than zero"),
    (2, _Y2, _I2, {"kernel_size": (2, 2, 2)}, ValueError, "`kernel_size` must be an int or a tuple of exactly 2"),
    (2, _Y2, _I2, {"kernel_size": (2,)}, ValueError, "`kernel_size` must be an int or a tuple of exactly 2"),
    (2, _Y2, _I2, {"stride": (2,)}, ValueError, "`stride` must be an int or a tuple of exactly 2"),
    (2, _Y2, _I2, {"stride": ()}, ValueError, "`stride` must be an int or a tuple of exactly 2"),
    (2, _Y2, _I2, {"padding": (0,)}, ValueError, "`padding` must be an int or a tuple of exactly 2"),
    (2, _Y2, _I2, {"kernel_size": 2.0}, TypeError, "`kernel_size` must be an int"),
    (2, _Y2, _I2, {"output_size": (9, 9)}, ValueError, "dimension 0 \\(=9\\) must be strictly between 2 and 6"),
    (2, _Y2, _I2, {"output_size": (4, 4, 4)}, ValueError, "`output_size` must have 2 \\(spatial\\) or 4"),
    (2, _Y2, _I2, {"output_size": 4}, TypeError, "`output_size` must be a sequence"),
]


@pytest.mark.parametrize("n,y,idx,kw,exc,fragment", ERRORS, ids=[f"{c[0]}d-{i}" for i, c in enumerate(ERRORS)])
def test_errors_where_torch_raises(n, y, idx, kw, exc, fragment):
    kw = {"kernel_size": 2, **kw}
    t_idx = torch.tensor(idx) if idx.dtype != np.int16 else torch.tensor(idx.astype(np.int32)).short()
    with pytest.raises(Exception):  # noqa: B017 - torch's RuntimeError/ValueError/TypeError/IndexError
        T_UNPOOL[n](to_torch(y), t_idx, **kw)
    j_idx = jnp.asarray(idx, jnp.int32) if idx.dtype == np.int64 else jnp.asarray(idx)
    with pytest.raises(exc, match=fragment):
        UNPOOL[n](jnp.asarray(y), j_idx, **kw)


# torch 2.13 computes these (it uses kernel_size/stride/padding only for the output size); jaxnn
# refuses them, as torch's main branch does (documented in the docstrings)
REFUSED = [
    (2, {"kernel_size": 0}, "`kernel_size` must be greater than zero"),
    (2, {"stride": 0}, "`stride` must be greater than zero"),
    (1, {"stride": -1}, "`stride` must be greater than zero"),
    (2, {"padding": -1}, "`padding` must be non-negative"),
    (2, {"kernel_size": 1, "padding": 1}, "`padding` \\(=1\\) must be at most half of `kernel_size`"),
]


@pytest.mark.parametrize("n,kw,fragment", REFUSED)
def test_torch_accepts_but_jaxnn_refuses_nonsense_windows(n, kw, fragment):
    y, idx = np.ones((1, 1) + (2,) * n, np.float32), np.zeros((1, 1) + (2,) * n, np.int64)
    kw = {"kernel_size": 2, **kw}
    T_UNPOOL[n](to_torch(y), torch.tensor(idx), **kw)  # torch 2.13: no error (a stale entry fails here)
    with pytest.raises(ValueError, match=fragment):
        UNPOOL[n](jnp.asarray(y), jnp.asarray(idx, jnp.int32), **kw)


def test_out_of_range_indices_under_jit_are_dropped_with_zero_gradient():
    y = jnp.asarray([[[1.0, 2.0, 3.0]]])
    idx = jnp.asarray([[[6, 1, -1]]], jnp.int32)
    f = jax.jit(lambda v, i: F.max_unpool1d(v, i, 2))  # traced indices: no value check
    out, vjp = jax.vjp(lambda v: f(v, idx), y)
    np.testing.assert_array_equal(out, [[[0.0, 2.0, 0.0, 0.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(vjp(jnp.arange(1.0, 7.0).reshape(1, 1, 6))[0], [[[0.0, 2.0, 0.0]]])


def test_vmap_over_indices_equals_a_loop(rng):
    ys = jnp.asarray(randn(rng, (3, 2, 3, 3)))
    idx = jnp.asarray(rng.integers(0, 36, (3, 2, 3, 3)), jnp.int32)  # repeats within planes
    f = lambda v, i: F.max_unpool2d(v, i, 2, output_size=(6, 6))  # noqa: E731
    cot = jnp.asarray(randn(rng, (2, 6, 6)))
    grad = jax.jit(jax.grad(lambda v, i: jnp.sum(f(v, i) * cot)))
    np.testing.assert_array_equal(jax.vmap(f)(ys, idx), jnp.stack([jax.jit(f)(a, b) for a, b in zip(ys, idx,
                                                                                                  strict=True)]))
    np.testing.assert_array_equal(jax.vmap(grad)(ys, idx), jnp.stack([grad(a, b) for a, b in zip(ys, idx,
                                                                                                   strict=True)]))


# --- layers -------------------------------------------------------------------------------------------

LAYER_CASES = [
    (1, (3,), {}, (2, 3, 9), None),
    (2, ((3, 2),), {"stride": (2, 1), "padding": (1, 0)}, (3, 7, 6), "input"),
    (3, (2, 1), {}, (1, 2, 4, 4, 4), None),
]


@pytest.mark.parametrize("n,args,kwargs,shape,osize", LAYER_CASES)
def test_layers_match_torch(rng, n, args, kwargs, shape, osize):
    t = getattr(torch.nn, f"MaxUnpool{n}d")(*args, **kwargs)
    m = getattr(jn, f"MaxUnpool{n}d")(*args, **kwargs, rngs=nnx.Rngs(0))
    lm = getattr(jl, f"MaxUnpool{n}d")(*args, **kwargs)
    for attr in ("kernel_size", "stride", "padding"):
        assert getattr(m, attr) == getattr(t, attr), attr
    x = randn(rng, shape)
    t_y, t_idx = T_POOL[n](to_torch(x), t.kernel_size, t.stride, t.padding, return_indices=True)
    j_y, j_idx = POOL[n](jnp.asarray(x), t.kernel_size, t.stride, t.padding, return_indices=True)
    output_size = shape[-n:] if osize == "input" else None
    want = to_numpy(t(t_y, t_idx, output_size))
    got = m(j_y, j_idx, output_size)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(lm.apply({}, j_y, j_idx, output_size), got)
    np.testing.assert_array_equal(m(j_y, indices=j_idx, output_size=output_size), got)
    assert jn.state_dict(m) == {} and lm.init(jax.random.key(0), j_y, j_idx, output_size) == {}
    with pytest.raises(ValueError, match="`indices` must have the shape"):
        m(j_y, j_idx[..., :1])
