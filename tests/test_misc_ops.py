"""normalize, cosine_similarity, pairwise_distance, softmin, bilinear and the modules over them
(CosineSimilarity, PairwiseDistance, Softmin, Softmax2d, Bilinear), the padding modules and
Unflatten against torch: outputs and vjp gradients, eps-clamped points, half precision, errors."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import assert_close, check, reduction_tol

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

HALF = [(jnp.float16, torch.float16), (jnp.bfloat16, torch.bfloat16)]
INF = math.inf


def _rand(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _half_pair(x, dt):
    jdt, tdt = dt
    xj = jnp.asarray(x).astype(jdt)
    return xj, torch.tensor(np.asarray(xj.astype(jnp.float32))).to(tdt)


def _torch_error(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the oracle's exception, whatever its type
        return type(e), str(e)
    return None


# --- normalize ----------------------------------------------------------------------------------------

P_VALUES = [2.0, 1.0, 3.0, 0.5, 1.5, INF, -INF, 0.0, -1.0]


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("shape,dim", [((3, 5), 1), ((2, 4, 3), -1), ((2, 3, 4), 0), ((2, 3, 4), (1, 2))])
def test_normalize_matches_torch(rng, p, shape, dim):
    x = _rand(rng, shape, 2.0)
    x[0, ...] = 0.0  # a zero vector along every dim: the eps clamp and the zero-norm gradient
    k = int(np.prod([shape[d] for d in (dim if isinstance(dim, tuple) else (dim,))]))
    tol = 4 * reduction_tol(k)
    check(lambda x: F.normalize(x, p, dim), lambda x: TF.normalize(x, p, dim), [x],
          rtol=tol, atol=tol, grad_rtol=8 * tol, grad_atol=8 * tol)


@pytest.mark.parametrize("eps", [1e-12, 0.5, 2.0])
def test_normalize_gradient_at_eps_clamped_points(rng, eps):
    # rows whose norm is below eps (and one exactly at it): torch's clamp_min passes the gradient
    # where norm >= eps only
    x = _rand(rng, (4, 3)) * 0.1
    x[1] = 0.0
    x[2] = np.float32(eps) / np.sqrt(np.float32(3.0))
    check(lambda x: F.normalize(x, eps=eps), lambda x: TF.normalize(x, eps=eps), [x],
          rtol=2e-6, atol=2e-6, grad_rtol=1e-5, grad_atol=1e-5)


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("p", [2.0, 1.0, INF, 3.0])
def test_normalize_half_is_bit_exact(rng, dt, p):
    x = _rand(rng, (6, 16), 3.0)
    x[0] = 0.0  # float16: eps=1e-12 is 0 in float16, so torch returns nan here; so does jaxnn
    xj, xt = _half_pair(x, dt)
    want = TF.normalize(xt, p, 1).float().numpy()
    got = F.normalize(xj, p, 1)
    assert got.dtype == dt[0]
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want)


def test_normalize_edge_cases_like_torch(rng):
    assert_close(F.normalize(jnp.float32(-3.0), dim=0), TF.normalize(torch.tensor(-3.0), dim=0).numpy(), rtol=0,
                 atol=0)
    e = np.zeros((0, 3), np.float32)
    assert F.normalize(jnp.asarray(e)).shape == tuple(TF.normalize(torch.tensor(e)).shape)
    for dim in (2, -3):
        want = _torch_error(lambda dim=dim: TF.normalize(torch.ones(2, 3), dim=dim))
        assert want is not None
        with pytest.raises(ValueError, match="`dim`"):
            F.normalize(jnp.ones((2, 3)), dim=dim)
    x = _rand(rng, (2, 3, 4))
    for dim in (1, (1, 2)):
        assert_close(F.normalize(jnp.asarray(x), "fro", dim), TF.normalize(torch.tensor(x), "fro", dim).numpy(),
                     rtol=1e-6, atol=1e-7)  # type: ignore[arg-type]
    assert _torch_error(lambda: TF.normalize(torch.ones(2, 3), "abc")) is not None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`p`='abc' is not supported"):
        F.normalize(jnp.ones((2, 3)), "abc")
    with pytest.raises(ValueError, match="`out` must be None"):
        F.normalize(jnp.ones((2, 3)), out=jnp.ones((2, 3)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating dtype"):
        F.normalize(jnp.ones((2, 3), jnp.int32))
    assert _torch_error(lambda: TF.normalize(torch.ones(2, 3, dtype=torch.int32))) is not None


@settings(max_examples=20)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), p=st.sampled_from(P_VALUES),
       seed=st.integers(0, 2**16), data=st.data())
def test_normalize_random_configurations(shape, p, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = _rand(np.random.default_rng(seed), shape, 2.0)
    tol = 4 * reduction_tol(shape[dim])
    assert_close(jax.jit(lambda v: F.normalize(v, p, dim))(jnp.asarray(x)),
                 TF.normalize(torch.tensor(x), p, dim).numpy(), rtol=tol, atol=tol)


# --- cosine_similarity --------------------------------------------------------------------------------

COS_CASES = [
    ((4, 6), (4, 6), 1),
    ((2, 5, 3), (2, 5, 3), -1),
    ((3, 1, 4), (1, 5, 4), 2),  # broadcasting
    ((4,), (3, 4), 1),
    ((6,), (6,), 0),
    ((), (), 0),
]


@pytest.mark.parametrize("s1,s2,dim", COS_CASES)
def test_cosine_similarity_matches_torch(rng, s1, s2, dim):
    a, b = _rand(rng, s1, 2.0), _rand(rng, s2, 2.0)
    tol = 4 * reduction_tol(max(s1 + s2 + (1,)))
    check(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(a, b, dim), [a, b],
          rtol=tol, atol=tol, grad_rtol=8 * tol, grad_atol=8 * tol)


@pytest.mark.parametrize("eps", [1e-8, 0.5, 3.0])
def test_cosine_similarity_gradient_at_eps_clamped_points(rng, eps):
    # torch 2.13 clamps each norm in place under NoGradGuard: the clamp is invisible to autograd,
    # so below eps the norm's own gradient still flows (and a zero vector's is 0)
    a, b = _rand(rng, (5, 3)) * 0.2, _rand(rng, (5, 3))
    a[0] = 0.0
    b[1] = 0.0
    a[2] = np.float32(eps) / np.sqrt(np.float32(3.0))
    check(lambda a, b: F.cosine_similarity(a, b, 1, eps), lambda a, b: TF.cosine_similarity(a, b, 1, eps), [a, b],
          rtol=2e-6, atol=2e-6, grad_rtol=2e-5, grad_atol=2e-5)


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_cosine_similarity_half_is_bit_exact(rng, dt):
    a, b = _rand(rng, (8, 12), 2.0), _rand(rng, (8, 12), 2.0)
    a[0] = 0.0  # float16: eps 1e-8 is 0 there, so 0/0 = nan, as torch
    aj, at = _half_pair(a, dt)
    bj, bt = _half_pair(b, dt)
    want = TF.cosine_similarity(at, bt).float().numpy()
    got = F.cosine_similarity(aj, bj)
    assert got.dtype == dt[0]
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want)


@settings(max_examples=20)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16),
       eps=st.sampled_from([1e-8, 0.3]), data=st.data())
def test_cosine_similarity_random_configurations(shape, seed, eps, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    ones = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    other = [1 if o else s for o, s in zip(ones, shape, strict=True)]  # broadcast some dims
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, shape), _rand(rng, other)
    tol = 4 * reduction_tol(shape[dim])
    assert_close(jax.jit(lambda a, b: F.cosine_similarity(a, b, dim, eps))(a, b),
                 TF.cosine_similarity(torch.tensor(a), torch.tensor(b), dim, eps).numpy(), rtol=tol, atol=tol)


def test_cosine_similarity_type_promotion_and_errors(rng):
    a = _rand(rng, (3, 4))
    want = TF.cosine_similarity(torch.tensor(a), torch.tensor(a).double())
    got = F.cosine_similarity(jnp.asarray(a), np.asarray(a, np.float64))
    assert got.dtype == jnp.float32 or jax.config.read("jax_enable_x64")  # JAX: float64 needs x64
    assert_close(got, want.float().numpy(), rtol=1e-6, atol=1e-6)
    assert _torch_error(lambda: TF.cosine_similarity(torch.ones(2, 3), torch.ones(4, 3))) is not None
    with pytest.raises(ValueError, match="broadcastable"):
        F.cosine_similarity(jnp.ones((2, 3)), jnp.ones((4, 3)))
    assert _torch_error(lambda: TF.cosine_similarity(torch.ones(2, 3), torch.ones(2, 3), dim=2)) is not None
    with pytest.raises(ValueError, match="`dim` \\(=2\\) is out of range"):
        F.cosine_similarity(jnp.ones((2, 3)), jnp.ones((2, 3)), dim=2)
    assert _torch_error(lambda: TF.cosine_similarity(torch.ones(2, dtype=torch.int64),
                                                     torch.ones(2, dtype=torch.int64), 0)) is not None
    with pytest.raises(TypeError, match="floating common dtype"):
        F.cosine_similarity(jnp.ones(2, jnp.int32), jnp.ones(2, jnp.int32), 0)


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_cosine_similarity_half_next_to_float32_like_torch(rng, dt):
    # regression: jaxnn cast the half input to float32 before normalising it; torch normalises each
    # floating input in its own dtype (the product promotes): ~3e-4 apart for float16
    a, b = _rand(rng, (4, 5)), _rand(rng, (4, 5))
    ta = torch.tensor(a).to(dt[1])
    tb = torch.tensor(b, requires_grad=True)
    want = TF.cosine_similarity(ta, tb)
    got = F.cosine_similarity(jnp.asarray(a).astype(dt[0]), jnp.asarray(b))
    assert got.dtype == jnp.float32 and want.dtype == torch.float32
    assert_close(got, want.detach().numpy(), rtol=1e-6, atol=1e-7)
    want.sum().backward()
    g = jax.grad(lambda y: F.cosine_similarity(jnp.asarray(a).astype(dt[0]), y).sum())(jnp.asarray(b))
    assert_close(g, tb.grad.numpy(), rtol=1e-5, atol=1e-6)
    # an integer input is cast to the common dtype first, as torch's
    ones = np.ones((4, 5), np.int32)
    want = TF.cosine_similarity(torch.tensor(ones), torch.tensor(a).to(dt[1])).float().numpy()
    got = F.cosine_similarity(jnp.asarray(ones), jnp.asarray(a).astype(dt[0]))
    assert got.dtype == dt[0]
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want)


# --- pairwise_distance --------------------------------------------------------------------------------

PD_CASES = [
    ((4, 6), (4, 6), 2.0, False),
    ((4, 6), (6,), 1.0, True),
    ((6,), (3, 6), 3.0, False),
    ((2, 3, 5), (3, 5), INF, False),
    ((5,), (5,), 0.5, True),
    ((), (), 2.0, False),
    ((4, 3), (4, 3), -1.0, False),
    ((4, 3), (4, 3), 0.0, False),
]


@pytest.mark.parametrize("s1,s2,p,keepdim", PD_CASES)
def test_pairwise_distance_matches_torch(rng, s1, s2, p, keepdim):
    a, b = _rand(rng, s1, 2.0), _rand(rng, s2, 2.0)
    tol = 4 * reduction_tol(max(s1 + s2 + (1,)))
    check(lambda a, b: F.pairwise_distance(a, b, p, 1e-6, keepdim),
          lambda a, b: TF.pairwise_distance(a, b, p, 1e-6, keepdim), [a, b],
          rtol=tol, atol=tol, grad_rtol=8 * tol, grad_atol=8 * tol)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, INF])
@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_pairwise_distance_gradient_at_zero_difference(rng, p, eps):
    a = _rand(rng, (3, 4))
    b = a.copy()
    b[1] += 1.0
    check(lambda a, b: F.pairwise_distance(a, b, p, eps), lambda a, b: TF.pairwise_distance(a, b, p, eps), [a, b],
          rtol=2e-6, atol=2e-6, grad_rtol=1e-5, grad_atol=1e-5)


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("p", [2.0, 1.0, INF])
def test_pairwise_distance_half_is_bit_exact(rng, dt, p):
    aj, at = _half_pair(_rand(rng, (8, 10), 2.0), dt)
    bj, bt = _half_pair(_rand(rng, (8, 10), 2.0), dt)
    want = TF.pairwise_distance(at, bt, p).float().numpy()
    got = F.pairwise_distance(aj, bj, p)
    assert got.dtype == dt[0]
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want)


@settings(max_examples=20)
@given(n=st.integers(1, 4), d=st.integers(1, 6), p=st.sampled_from([2.0, 1.0, 3.0, INF, 0.7]),
       keepdim=st.booleans(), seed=st.integers(0, 2**16))
def test_pairwise_distance_random_configurations(n, d, p, keepdim, seed):
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, (n, d)), _rand(rng, (n, d))
    tol = 4 * reduction_tol(d)
    assert_close(jax.jit(lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim))(a, b),
                 TF.pairwise_distance(torch.tensor(a), torch.tensor(b), p, keepdim=keepdim).numpy(),
                 rtol=tol, atol=tol)


def test_pairwise_distance_errors_like_torch():
    assert _torch_error(lambda: TF.pairwise_distance(torch.ones(2, 3), torch.ones(4, 3))) is not None
    with pytest.raises(ValueError, match="broadcastable"):
        F.pairwise_distance(jnp.ones((2, 3)), jnp.ones((4, 3)))
    with pytest.raises(TypeError, match="`p` must be a number"):
        F.pairwise_distance(jnp.ones(3), jnp.ones(3), p="fro")  # type: ignore[arg-type]


# --- softmin ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,dim", [((3, 5), 1), ((2, 3, 4), 0), ((2, 3, 4), -1), ((4,), 0)])
def test_softmin_matches_torch(rng, shape, dim):
    x = _rand(rng, shape, 3.0)
    check(lambda x: F.softmin(x, dim), lambda x: TF.softmin(x, dim), [x], rtol=2e-6, atol=1e-7,
          grad_rtol=1e-5, grad_atol=1e-6)


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_softmin_half_and_dtype(rng, dt):
    xj, xt = _half_pair(_rand(rng, (4, 9), 3.0), dt)
    np.testing.assert_array_equal(np.asarray(F.softmin(xj, -1).astype(jnp.float32)),
                                  TF.softmin(xt, -1).float().numpy())
    got = F.softmin(xj, -1, dtype=jnp.float32)
    assert got.dtype == jnp.float32
    assert_close(got, TF.softmin(xt, -1, dtype=torch.float32).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("np_dt, t_dt", [(np.int32, torch.int32), (np.int64, torch.int64), (np.uint8, torch.uint8)])
def test_softmin_integer_input_with_dtype_like_torch(np_dt, t_dt):
    # regression: torch accepts integer input when `dtype` is floating (negated in the input dtype:
    # uint8 wraps); jaxnn rejected it
    v = np.array([[1, 2, 5], [0, 3, 3]], np_dt)
    want = TF.softmin(torch.tensor(v, dtype=t_dt), 1, dtype=torch.float32).numpy()
    assert_close(F.softmin(jnp.asarray(v), 1, dtype=jnp.float32), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(RuntimeError):
        TF.softmin(torch.tensor(v, dtype=t_dt), 1, dtype=t_dt)
    with pytest.raises(TypeError, match="`dtype` must be a floating dtype"):
        F.softmin(jnp.asarray(v), 1, dtype=jnp.int32)
    with pytest.raises(TypeError, match="`input` must have a floating dtype"):
        F.softmin(jnp.asarray(v), 1)
    with pytest.raises(RuntimeError, match="bool"):
        TF.softmin(torch.tensor([True, False]), 0, dtype=torch.float32)
    with pytest.raises(TypeError, match="bool"):
        F.softmin(jnp.asarray([True, False]), 0, dtype=jnp.float32)


def test_softmin_implicit_dim_warns_like_torch(rng):
    x = _rand(rng, (2, 3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        want = TF.softmin(torch.tensor(x))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        got = F.softmin(jnp.asarray(x))
    assert_close(got, want.numpy(), rtol=2e-6, atol=1e-7)


# --- bilinear -----------------------------------------------------------------------------------------

BIL_CASES = [((4,), 3, 5, 2, True), ((2, 3), 4, 2, 3, False), ((), 3, 4, 5, True), ((5,), 1, 1, 1, True)]


@pytest.mark.parametrize("lead,i1,i2,o,bias", BIL_CASES)
def test_bilinear_matches_torch(rng, lead, i1, i2, o, bias):
    a, b = _rand(rng, (*lead, i1)), _rand(rng, (*lead, i2))
    w = _rand(rng, (o, i1, i2))
    args = [a, b, w] + ([_rand(rng, (o,))] if bias else [])
    tol = 4 * reduction_tol(i1 * i2)
    check(F.bilinear, TF.bilinear, args, rtol=tol, atol=tol, grad_rtol=4 * tol, grad_atol=4 * tol)


@pytest.mark.parametrize("dt", HALF, ids=["float16", "bfloat16"])
def test_bilinear_half_is_bit_exact(rng, dt):
    # torch's _trilinear: input1 with weight first (stored in the half dtype), then input2
    args = [_rand(rng, (6, 5)), _rand(rng, (6, 4)), _rand(rng, (3, 5, 4)), _rand(rng, (3,))]
    pairs = [_half_pair(a, dt) for a in args]
    want = TF.bilinear(*(t for _, t in pairs)).float().numpy()
    got = F.bilinear(*(j for j, _ in pairs))
    assert got.dtype == dt[0]
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), want)


BIL_ERRORS = [
    ((2, 3), (2, 3, 4), (5, 3, 4), None, "input dimensions do not match"),
    ((2, 3), (3, 4), (5, 3, 4), None, "input batch dimensions do not match"),
    ((2, 2), (2, 4), (5, 3, 4), None, "input1 size does not match weight size"),
    ((2, 3), (2, 5), (5, 3, 4), None, "input2 size does not match weight size"),
    ((2, 3), (2, 4), (5, 3, 4), (4,), "`bias` must have shape \\(5,\\)"),
    ((2, 3), (2, 4), (5, 12), None, "`weight` must be 3-D"),
]


@pytest.mark.parametrize("s1,s2,sw,sb,fragment", BIL_ERRORS)
def test_bilinear_errors_like_torch(s1, s2, sw, sb, fragment):
    targs = [torch.ones(s1), torch.ones(s2), torch.ones(sw), None if sb is None else torch.ones(sb)]
    assert _torch_error(lambda: TF.bilinear(*targs)) is not None
    with pytest.raises(ValueError, match=fragment):
        F.bilinear(jnp.ones(s1), jnp.ones(s2), jnp.ones(sw), None if sb is None else jnp.ones(sb))


def test_bilinear_dtype_mismatch_like_torch():
    assert _torch_error(lambda: TF.bilinear(torch.ones(2, 3), torch.ones(2, 4).double(), torch.ones(5, 3, 4))) \
        is not None
    with pytest.raises(TypeError, match="`input2` dtype"):
        F.bilinear(jnp.ones((2, 3)), jnp.ones((2, 4), jnp.float16), jnp.ones((5, 3, 4)))


# --- modules ------------------------------------------------------------------------------------------

TWO_INPUT = [
    # (torch.nn name, constructor args, shapes of the two inputs)
    ("CosineSimilarity", (), ((3, 5), (3, 5))),
    ("CosineSimilarity", (-1, 0.5), ((2, 3, 4), (4,))),
    ("PairwiseDistance", (), ((4, 6), (4, 6))),
    ("PairwiseDistance", (1.0, 0.0, True), ((6,), (3, 6))),
    ("Bilinear", (3, 4, 5), ((2, 3), (2, 4))),
    ("Bilinear", (3, 2, 4, False), ((3,), (2,))),
]


@pytest.mark.parametrize("name,args,shapes", TWO_INPUT)
def test_two_input_modules_match_torch_and_load_its_state_dict(rng, name, args, shapes):
    torch.manual_seed(0)
    t = getattr(torch.nn, name)(*args)
    m = getattr(jn, name)(*args, rngs=nnx.Rngs(0))
    lm = getattr(jl, name)(*args)
    a, b = _rand(rng, shapes[0]), _rand(rng, shapes[1])
    sd = t.state_dict()
    assert jn.load_state_dict(m, sd) == jn.LoadResult([], [])
    variables, result = jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(a), jnp.asarray(b)), sd)
    assert result == jl.LoadResult([], [])
    assert set(jn.state_dict(m)) == set(sd) == set(jl.state_dict(variables))
    for k, v in sd.items():
        assert tuple(jn.state_dict(m)[k].shape) == tuple(v.shape)
    want = t(torch.tensor(a), torch.tensor(b)).detach().numpy()
    got = m(jnp.asarray(a), jnp.asarray(b))
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lm.apply(variables, jnp.asarray(a), jnp.asarray(b)), got)  # nnx == linen


def test_two_input_module_attributes_are_torchs():
    t, m = torch.nn.PairwiseDistance(3.0, 1e-3, True), jn.PairwiseDistance(3.0, 1e-3, True)
    assert (m.norm, m.eps, m.keepdim) == (t.norm, t.eps, t.keepdim)
    t2, m2 = torch.nn.CosineSimilarity(0, 1e-4), jn.CosineSimilarity(0, 1e-4)
    assert (m2.dim, m2.eps) == (t2.dim, t2.eps)
    b = jn.Bilinear(2, 3, 4, rngs=nnx.Rngs(0))
    tb = torch.nn.Bilinear(2, 3, 4)
    assert (b.in1_features, b.in2_features, b.out_features) == (tb.in1_features, tb.in2_features, tb.out_features)


def test_bilinear_init_is_torchs_distribution():
    # U(-1/sqrt(in1), 1/sqrt(in1)) for weight and bias, whatever in2 is
    m = jn.Bilinear(4, 50, 30, rngs=nnx.Rngs(0))
    bound = 1 / math.sqrt(4)
    w = np.asarray(m.weight[...])
    assert w.shape == (30, 4, 50) and np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02
    assert np.abs(np.asarray(m.bias[...])).max() <= bound  # type: ignore[index]
    torch.manual_seed(0)
    tw = torch.nn.Bilinear(4, 50, 30).weight.detach().numpy()
    assert abs(tw.std() - bound / math.sqrt(3)) < 0.02 and np.abs(tw).max() <= bound
    lv = jl.Bilinear(4, 50, 30, False).init(jax.random.key(0), jnp.ones((1, 4)), jnp.ones((1, 50)))
    assert set(lv["params"]) == {"weight"}
    with pytest.raises(ValueError, match=re.escape("in1_features must be > 0, but got (in1_features=0)")):
        torch.nn.Bilinear(0, 2, 3)
    with pytest.raises(ValueError, match=re.escape("in1_features must be > 0, but got (in1_features=0)")):
        jn.Bilinear(0, 2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        jl.Bilinear(0, 2, 3)
    torch.nn.Bilinear(2, 0, 3)  # an empty second input is accepted at construction, as in torch
    assert jn.Bilinear(2, 0, 3, rngs=nnx.Rngs(0)).weight[...].shape == (3, 2, 0)


def test_softmin_and_softmax2d_modules(rng):
    x = _rand(rng, (2, 3, 4, 5))
    assert_close(jn.Softmin(1)(jnp.asarray(x)), torch.nn.Softmin(1)(torch.tensor(x)).numpy(), rtol=2e-6, atol=1e-7)
    assert_close(jn.Softmax2d()(jnp.asarray(x)), torch.nn.Softmax2d()(torch.tensor(x)).numpy(), rtol=2e-6,
                 atol=1e-7)
    for bad in ((2, 3), (1, 2, 3, 4, 5)):
        want = _torch_error(lambda bad=bad: torch.nn.Softmax2d()(torch.ones(bad)))
        assert want is not None and want[0] is ValueError
        with pytest.raises(ValueError, match=re.escape(want[1])):
            jn.Softmax2d()(jnp.ones(bad))
        with pytest.raises(ValueError, match=re.escape(want[1])):
            jl.Softmax2d().apply({}, jnp.ones(bad))


PAD_ERRORS = [
    # (name, args, bad input shape)
    ("CircularPad1d", (1,), (2, 3, 4, 5)),
    ("CircularPad2d", (1,), (4, 5)),
    ("CircularPad3d", (1,), (2, 3)),
    ("ReflectionPad1d", (4,), (2, 3, 4)),  # amount >= size
    ("ReflectionPad2d", (1,), (4,)),
    ("ReplicationPad3d", (1,), (3, 4)),
    ("ZeroPad2d", ((1, 2, 3),), (2, 4, 4)),  # odd length: torch takes the tuple and fails at the call
]


@pytest.mark.parametrize("name,args,shape", PAD_ERRORS)
def test_padding_module_errors_like_torch(name, args, shape):
    assert _torch_error(lambda: getattr(torch.nn, name)(*args)(torch.ones(shape))) is not None
    with pytest.raises(ValueError):
        getattr(jn, name)(*args)(jnp.ones(shape))
    with pytest.raises(ValueError):
        getattr(jl, name)(*args).apply({}, jnp.ones(shape))


def test_padding_modules_take_torchs_padding_argument(rng):
    x = _rand(rng, (2, 3, 4, 5))
    for name, args in (("ZeroPad2d", ((1, 2),)), ("ConstantPad3d", ((1, 0), 2.0)), ("ReflectionPad2d", ([1, 0, 2, 1],)),
                       ("ZeroPad1d", (3,)), ("ReplicationPad2d", ((0, 2, 1, 0),))):
        t, m = getattr(torch.nn, name)(*args), getattr(jn, name)(*args)
        assert m.padding == t.padding
        if hasattr(t, "value"):
            assert m.value == t.value
        np.testing.assert_array_equal(m(jnp.asarray(x)), t(torch.tensor(x)).numpy())
        np.testing.assert_array_equal(getattr(jl, name)(*args).apply({}, jnp.asarray(x)), t(torch.tensor(x)).numpy())
    assert jn.ZeroPad3d(2).padding == torch.nn.ZeroPad3d(2).padding == (2,) * 6
    assert jn.ZeroPad1d(1).value == torch.nn.ZeroPad1d(1).value == 0.0
    with pytest.raises(TypeError, match="`padding` must be an int or a tuple"):
        jn.ZeroPad2d("1")  # type: ignore[arg-type]
    # gradients flow through the padding (F.pad), as in torch
    g = jax.grad(lambda v: jnp.sum(jn.ReflectionPad1d(2)(v) ** 2))(jnp.asarray(x[0]))
    xt = torch.tensor(x[0], requires_grad=True)
    (torch.nn.ReflectionPad1d(2)(xt) ** 2).sum().backward()
    assert_close(g, xt.grad.numpy(), rtol=1e-6, atol=1e-6)  # type: ignore[union-attr]


UNFLATTEN_ERRORS = [
    ((1, (2, 4)), (2, 6), ValueError, "don't multiply up to the size of dim 1"),
    ((1, (4, -1)), (2, 6), ValueError, "don't multiply up to the size of dim 1"),
    ((1, (-1, -1)), (2, 6), ValueError, "one -1"),
    ((2, (2, 3)), (2, 6), ValueError, "`dim` \\(=2\\) is out of range"),
]


@pytest.mark.parametrize("args,shape,exc,fragment", UNFLATTEN_ERRORS)
def test_unflatten_errors_like_torch(args, shape, exc, fragment):
    assert _torch_error(lambda: torch.nn.Unflatten(*args)(torch.ones(shape))) is not None
    with pytest.raises(exc, match=fragment):
        jn.Unflatten(*args)(jnp.ones(shape))
    with pytest.raises(exc, match=fragment):
        jl.Unflatten(*args).apply({}, jnp.ones(shape))


def test_unflatten_constructor_checks_like_torch():
    for bad in (3, (2, 1.5)):
        want = _torch_error(lambda bad=bad: torch.nn.Unflatten(1, bad))
        assert want is not None and want[0] is TypeError
        with pytest.raises(TypeError, match=re.escape(want[1])):
            jn.Unflatten(1, bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=re.escape(want[1])):
            jl.Unflatten(1, bad)  # type: ignore[arg-type]
    x = np.arange(24.0, dtype=np.float32).reshape(2, 12)
    for args in ((1, [3, 4]), (-1, (2, -1, 3)), (0, (1, 2))):
        np.testing.assert_array_equal(jn.Unflatten(*args)(jnp.asarray(x)),
                                      torch.nn.Unflatten(*args)(torch.tensor(x)).numpy())
