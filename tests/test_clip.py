"""jaxnn.optim's gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_.

How the comparison stays exact without depending on torch's CPU kernels:

torch sums ``|g|^p`` of each gradient in float32 (float64 for float64) in an order that depends on
the CPU's vector width (AVX2 vs AVX-512 lanes for the 2-norm of float32/bfloat16; a sequential loop
otherwise), and jaxnn sums in XLA's order. Everything else (each rounding to the gradient's dtype,
the total norm's dtype, ``(N + 1e-6).reciprocal() * max_norm`` in that dtype, the final products)
is deterministic. So the tests compare both torch and jaxnn against a float64 reference that
follows torch's pipeline and rounds where torch rounds, and that carries the only unknown, the
accumulation error of each sum (at most ``(n + 3)`` units of float32 roundoff for ``n`` positive
terms in any order, plus one ulp for XLA's ``pow``), as an interval to the end: every output must
lie between the reference's two ends. Where both ends agree (the common case for bfloat16/float16
results, and always for the dyadic examples, whose sums are exact in float32) that is bit-exact
equality; for float32 sums of many terms it is a tolerance scaled with the reduction size.
"""

import functools
import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import to_numpy, to_torch

from jaxnn import optim

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
INF = math.inf
TORCH_DTYPE = {F32: torch.float32, F64: torch.float64, F16: torch.float16, BF16: torch.bfloat16}
NP_DTYPE = {v: k for k, v in TORCH_DTYPE.items()}


# --- the float64 reference, rounded where torch rounds -------------------------------------------


def _acc(dtype):
    return F64 if dtype == F64 else F32


def _cast(x, dtype):
    """Round float64 values to ``dtype`` in one step (numpy / ml_dtypes round to nearest even)."""
    return np.asarray(x, F64).astype(dtype)


def _down(x, acc):
    """The largest ``acc`` value <= x."""
    v = np.asarray(x, F64).astype(acc)
    return np.nextafter(v, acc.type(-INF)) if v > x else v


def _up(x, acc):
    v = np.asarray(x, F64).astype(acc)
    return np.nextafter(v, acc.type(INF)) if v < x else v


def _sum_is_exact(terms, s, acc):
    """Whether every partial sum of ``terms`` (in any order) is representable in ``acc``: all terms
    are multiples of a common power of two q and the sum is below 2**mantissa_bits * q."""
    nz = [float(t) for t in np.ravel(terms) if t != 0]
    if not nz:
        return True
    lowest = []
    for t in nz:
        mant, exp = math.frexp(t)
        m = int(mant * 2**53)
        lowest.append(exp - 53 + ((m & -m).bit_length() - 1))  # exponent of the lowest set bit
    return s < 2.0 ** (min(lowest) + np.finfo(acc).nmant + 1)


def ref_vector_norm(x, p):
    """``torch.linalg.vector_norm(x, p)`` on CPU as an interval ``(lo, hi)`` of values of x.dtype.

    torch: ``acc += |x|^p`` in float32 (float64 for float64), ``root = acc^(1/p)`` in that
    precision (``sqrt`` for p = 2), rounded to x's dtype. The order of the sum is the unknown.
    """
    dtype, acc = x.dtype, _acc(x.dtype)
    a = np.abs(x.astype(F64)).ravel()
    if np.isnan(a).any():
        return math.nan, math.nan
    if p in (INF, -INF):
        v = float(a.max() if p == INF else a.min())
        return v, v
    if p == 0:
        v = float(np.count_nonzero(a))
        return v, v
    p_acc = acc.type(p)
    with np.errstate(divide="ignore", over="ignore"):
        if p == 1:
            terms = a
        elif p == 2:
            terms = _cast(a * a, acc)  # exact product, rounded once: torch's float32 x * x
        elif p == 0.5:
            terms = np.sqrt(a.astype(acc))
        else:
            terms = _cast(np.power(a, float(p_acc)), acc)
        terms = terms.astype(acc)
        s = math.fsum(terms.astype(F64))
        if terms.size <= 2:  # one rounding, the same in either order
            ends = [terms.sum(dtype=acc)] * 2
        elif not math.isfinite(s) or _sum_is_exact(terms, s, acc):
            ends = [_cast(s, acc)] * 2
        else:  # recursive, pairwise or lane-wise summation: at most (n - 1) roundings of <= u * s
            err = (a.size + 3) * (2.0**-53 if acc == F64 else 2.0**-24) * s
            ends = [_down(s - err, acc), _up(s + err, acc)]

        def root(v):
            if p == 1:
                return [v]
            if p == 2:
                return [np.sqrt(v)]
            if p == 0.5:
                return [v * v]
            r = _cast(np.power(float(v), float(acc.type(1) / p_acc)), acc)
            return [np.nextafter(r, acc.type(-INF)), np.nextafter(r, acc.type(INF))]  # XLA's pow: 1 ulp

        outs = [float(r.astype(dtype)) for v in ends for r in root(v)]
    return min(outs), max(outs)


def torch_promote(dtypes):
    return NP_DTYPE[functools.reduce(torch.promote_types, [TORCH_DTYPE[d] for d in dtypes])]


def ref_coef(total, t_dtype, max_norm):
    """``clamp((total + 1e-6).reciprocal() * max_norm, max=1)``, every step rounded to t_dtype."""
    acc = _acc(t_dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        eps = _cast(_cast(1e-6, acc), t_dtype)  # the Python 1e-6 becomes a t_dtype tensor first
        d = _cast(acc.type(total) + acc.type(eps), t_dtype)
        r = _cast(acc.type(1) / acc.type(d), t_dtype)
        c = _cast(acc.type(r) * _cast(max_norm, acc), t_dtype)  # max_norm as a float32 scalar
    return math.nan if np.isnan(c) else float(min(c, t_dtype.type(1)))


def ref_clip(grads, max_norm, p):
    """Interval reference for clip_grad_norm_: ((total_lo, total_hi), T, [(lo_i, hi_i) arrays])."""
    if not grads:
        return (0.0, 0.0), F32, []
    t_dtype = torch_promote([g.dtype for g in grads])
    norms = [ref_vector_norm(g, p) for g in grads]
    total_lo = ref_vector_norm(np.array([n[0] for n in norms], t_dtype), p)[0]
    total_hi = ref_vector_norm(np.array([n[1] for n in norms], t_dtype), p)[1]
    coefs = [ref_coef(total_lo, t_dtype, max_norm), ref_coef(total_hi, t_dtype, max_norm)]
    out = []
    for g in grads:
        acc = _acc(g.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            cands = [_cast(g.astype(acc) * _cast(c, acc), g.dtype).astype(F64) for c in coefs]
        out.append((np.minimum(*cands), np.maximum(*cands)))
    return (total_lo, total_hi), t_dtype, out


def assert_between(actual, lo, hi, what):
    actual = np.asarray(actual).astype(F64)
    lo, hi = np.broadcast_to(np.asarray(lo, F64), actual.shape), np.broadcast_to(np.asarray(hi, F64), actual.shape)
    nan = np.isnan(lo) | np.isnan(hi)
    np.testing.assert_array_equal(np.isnan(actual), nan, err_msg=f"{what}: nan positions")
    ok = nan | ((lo <= actual) & (actual <= hi))
    assert ok.all(), f"{what}: {actual[~ok]} outside [{lo[~ok]}, {hi[~ok]}]"


# --- runners ---------------------------------------------------------------------------------------


def run_torch(grads, max_norm, p, foreach=None, error_if_nonfinite=False):
    params = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=TORCH_DTYPE[g.dtype], requires_grad=True)
        t.grad = to_torch(g)
        params.append(t)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, p, error_if_nonfinite, foreach)
    out = [to_numpy(t.grad).astype(g.dtype) for t, g in zip(params, grads, strict=True)]
    return NP_DTYPE[total.dtype], float(total), out


def run_jax(grads, max_norm, p, jit=True):
    tx = optim.clip_grad_norm(max_norm, p)
    g = [jnp.asarray(a) for a in grads]  # a list keeps torch's parameter order
    state = tx.init(g)
    out, state = (jax.jit(tx.update) if jit else tx.update)(g, state)
    assert [o.dtype for o in out] == [a.dtype for a in grads]
    total = state.total_norm
    return np.dtype(total.dtype), float(total), [np.asarray(o) for o in out]


def check_against_reference(grads, max_norm, p, exact=False):
    """torch (foreach and not) and jaxnn inside the reference interval; ``exact``: a point."""
    (t_lo, t_hi), t_dtype, ref = ref_clip(grads, max_norm, p)
    if exact:
        assert t_lo == t_hi or (math.isnan(t_lo) and math.isnan(t_hi)), (t_lo, t_hi)
        for lo, hi in ref:
            np.testing.assert_array_equal(lo, hi)
    results = {
        "torch foreach": run_torch(grads, max_norm, p, foreach=True),
        "torch loop": run_torch(grads, max_norm, p, foreach=False),
        "jaxnn": run_jax(grads, max_norm, p),
    }
    for name, (dtype, total, out) in results.items():
        assert dtype == t_dtype, (name, dtype, t_dtype)
        assert_between(total, t_lo, t_hi, f"{name} total norm")
        for i, (o, (lo, hi)) in enumerate(zip(out, ref, strict=True)):
            assert_between(o, lo, hi, f"{name} gradient {i}")
    # on CPU torch's foreach and per-tensor paths are the same kernels: identical numbers
    ta, tb = results["torch foreach"], results["torch loop"]
    assert ta[1] == tb[1] or (math.isnan(ta[1]) and math.isnan(tb[1]))
    for a, b in zip(ta[2], tb[2], strict=True):
        np.testing.assert_array_equal(a, b)
    if exact:
        _, j_total, j_out = results["jaxnn"]
        _, t_total, t_out = results["torch foreach"]
        np.testing.assert_array_equal(j_total, t_total)
        for a, b in zip(j_out, t_out, strict=True):
            np.testing.assert_array_equal(a.astype(F64), b.astype(F64))
    return results


# --- the issue's example and dyadic examples: bit-exact ------------------------------------------

ISSUE = [0.0123291015625, -0.045654296875, 0.0791015625]


def test_issue_example_bfloat16_bit_exact():
    g = np.array(ISSUE, BF16)
    results = check_against_reference([g], 0.01, 2.0, exact=True)
    expected = [0.0013275146484375, -0.004913330078125, 0.008544921875]
    for name, (dtype, total, (out,)) in results.items():
        assert dtype == BF16 and total == 0.09228515625, name
        assert out.astype(F64).tolist() == expected, name
    # computing in float32 gives other numbers (what jaxnn did before)
    f32 = np.asarray(optax.clip_by_global_norm(0.01).update(jnp.asarray(g, jnp.float32), None)[0])
    assert f32.astype(BF16).astype(F64).tolist() != expected


# Values with few significant bits: every sum below is exact in float32 whatever the order, so the
# reference interval is a single point and the comparison is bit for bit, on any CPU.
_D = np.array([0.0123291015625, -0.045654296875, 0.0791015625, 0.03125, -0.0625, 0.0], F64)
_SMALL = np.array([3, -5, 6, 1, -2, 0], F64) / 64  # 3 significant bits: cubes and sums stay exact
_SQUARES = np.array([9, 25, 1, 4, 16], F64) / 256  # |g|^0.5 exact

EXACT_CASES = [
    # (name, [(values, dtype), ...], max_norm, norm_type)
    ("bf16 p2 clip", [(_D, BF16)], 0.01, 2.0),
    ("f16 p2 clip", [(_D, F16)], 0.01, 2.0),
    ("f32 p2 clip", [(_D, F32)], 0.01, 2.0),
    ("bf16 p2 no clip", [(_D, BF16)], 5.0, 2.0),
    ("f16 p2 max_norm 0.3", [(_D, F16)], 0.3, 2.0),
    ("bf16 p1", [(_D, BF16)], 0.25, 1.0),
    ("f16 p1", [(_D, F16)], 0.25, 1.0),
    ("f32 p1", [(_D, F32)], 0.25, 1.0),
    ("bf16 inf", [(_D, BF16)], 0.1, INF),
    ("f16 inf", [(_D, F16)], 0.1, INF),
    ("f32 inf", [(_D, F32)], 0.1, INF),
    ("bf16 p3", [(_SMALL, BF16)], 0.05, 3.0),
    ("f16 p3", [(_SMALL, F16)], 0.05, 3.0),
    ("bf16 p0.5", [(_SQUARES, BF16)], 0.3, 0.5),
    ("f16 p0.5", [(_SQUARES, F16)], 0.3, 0.5),
    ("two bf16", [(_D, BF16), (_SMALL, BF16)], 0.02, 2.0),
    ("mixed f32 bf16", [(_D, F32), (_D[:4], BF16)], 0.01, 2.0),
    ("mixed bf16 f32", [(_D[:4], BF16), (_D, F32)], 0.01, 2.0),
    ("mixed bf16 f16 -> f32", [(_D, BF16), (_SMALL, F16)], 0.01, 2.0),
    ("mixed f16 f32 inf", [(_D, F16), (_SMALL, F32)], 0.01, INF),
    ("mixed bf16 f16 p1", [(_D, BF16), (_SMALL, F16)], 0.05, 1.0),
    ("0-d and 2-d", [(np.array(-0.5), BF16), (_D.reshape(2, 3), BF16)], 0.1, 2.0),
    # tiny norms, where torch's rounding of the 1e-6 to the norm's dtype decides: in bfloat16 the
    # coefficient is 1 (no clipping; 0.99609375 with a float32 1e-6), in float16 0.0081787109375
    ("bf16 eps rounded", [(np.array([2.1100277081131935e-09, 0.0]), BF16)], 1e-6, 2.0),
    ("f16 eps rounded", [(np.array([0.00012123584747314453, 0.0]), F16)], 1e-6, 2.0),
]


@pytest.mark.parametrize("name,spec,max_norm,p", EXACT_CASES, ids=[c[0] for c in EXACT_CASES])
def test_bit_exact_dyadic(name, spec, max_norm, p):
    grads = [np.asarray(v, F64).astype(d) for v, d in spec]
    check_against_reference(grads, max_norm, p, exact=True)


def test_dtype_pipeline_differs_between_dtypes():
    """The same values give different clipped numbers per dtype, each matching torch's."""
    outs = {}
    for d in (BF16, F16, F32):
        _, total, (out,) = run_jax([np.asarray(_D, d)], 0.01, 2.0)
        _, t_total, (t_out,) = run_torch([np.asarray(_D, d)], 0.01, 2.0)
        assert total == t_total
        np.testing.assert_array_equal(out.astype(F64), t_out.astype(F64))
        outs[d] = out.astype(F64)
    assert not np.array_equal(outs[BF16], outs[F32]) and not np.array_equal(outs[F16], outs[F32])


# --- random gradients: parameter table -------------------------------------------------------------

SHAPES = [(3,), (4, 5), (2, 3, 4), (), (257,)]


def _random_grads(seed, dtypes, shapes=SHAPES, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(F32).astype(d) for s, d in zip(shapes, dtypes, strict=True)]


def _max_norms(grads, p):
    """One max_norm that clips (a tenth of the total) and one that does not (ten times)."""
    total = float(torch.nn.utils.get_total_norm([to_torch(g).double() for g in grads], p))
    return [0.1 * total, 10.0 * total]


@pytest.mark.parametrize("p", [2.0, 1.0, INF, 0.5, 3.0], ids=lambda p: f"p{p}")
@pytest.mark.parametrize("dtype", [F32, F16, BF16], ids=str)
@pytest.mark.parametrize("clips", [True, False], ids=["clips", "no-clip"])
def test_random_matches_torch(dtype, p, clips):
    grads = _random_grads(7, [dtype] * len(SHAPES))
    max_norm = _max_norms(grads, p)[0 if clips else 1]
    check_against_reference(grads, max_norm, p)
    if dtype != F32:  # rounding to 16 bits hides the order of the float32 sums: bit for bit here
        (lo, hi), _, ref = ref_clip(grads, max_norm, p)
        assert lo == hi and all(np.array_equal(a, b) for a, b in ref)


@pytest.mark.parametrize("p", [2.0, 1.0, INF, 3.0], ids=lambda p: f"p{p}")
@pytest.mark.parametrize(
    "dtypes",
    [(F32, BF16, F16, BF16, F32), (BF16, F16, BF16, F16, BF16), (F16, F16, F16, F16, F32)],
    ids=["f32+bf16+f16", "bf16+f16", "f16+f32"],
)
def test_mixed_dtypes_match_torch(dtypes, p):
    """torch stacks the per-tensor norms with type promotion: bf16 with f16 gives a float32 total."""
    grads = _random_grads(3, list(dtypes))
    for max_norm in _max_norms(grads, p):
        check_against_reference(grads, max_norm, p)


@pytest.mark.parametrize("p", [0.0, -1.0, -INF, 1.5], ids=lambda p: f"p{p}")
def test_unusual_norm_types_match_torch(p):
    """torch accepts any real norm_type (0 counts non-zero entries; negative ones rarely clip)."""
    grads = [np.array([3.0, 0.0, -4.0], F32), np.array([1.0, 2.0], BF16), np.array([0.5, -1.5], F16)]
    for max_norm in (0.5, 100.0):
        check_against_reference(grads, max_norm, p)


def test_float64_with_x64():
    with jax.enable_x64(True):
        for p in (2.0, 1.0, INF, 3.0):
            grads = _random_grads(5, [F64] * len(SHAPES))
            for max_norm in _max_norms(grads, p):
                check_against_reference(grads, max_norm, p)
            mixed = _random_grads(6, [F64, F32, BF16, F16, F32])  # float64 total, float32 products
            for max_norm in _max_norms(mixed, p):
                check_against_reference(mixed, max_norm, p)
        check_against_reference([np.asarray(_D, F64), np.asarray(_D, BF16)], 0.01, 2.0, exact=True)


@settings(max_examples=40)
@given(
    data=st.data(),
    n=st.integers(1, 4),
    p=st.sampled_from([2.0, 1.0, INF, 0.5, 3.0, 1.5]),
    log_scale=st.integers(-12, 6),
    ratio=st.sampled_from([0.01, 0.5, 0.99, 2.0]),
)
def test_hypothesis_matches_torch(data, n, p, log_scale, ratio):
    dtypes = [data.draw(st.sampled_from([F32, F16, BF16])) for _ in range(n)]
    shapes = [tuple(data.draw(st.lists(st.integers(1, 6), max_size=3))) for _ in range(n)]
    grads = _random_grads(data.draw(st.integers(0, 2**16)), dtypes, shapes, scale=2.0**log_scale)
    if any(not np.isfinite(g.astype(F64)).all() for g in grads):
        return
    total = float(torch.nn.utils.get_total_norm([to_torch(g).double() for g in grads], p))
    check_against_reference(grads, ratio * total, p)


# --- edge cases ------------------------------------------------------------------------------------


def test_empty_and_zero_size():
    tx = optim.clip_grad_norm(1.0)
    for tree in ({}, [], {"a": None}):
        out, state = jax.jit(tx.update)(tree, tx.init(tree))
        assert out == tree
        assert state.total_norm.dtype == jnp.float32 and float(state.total_norm) == 0.0
    assert float(torch.nn.utils.clip_grad_norm_([], 1.0)) == 0.0
    # a zero-size gradient has norm 0 for p >= 0 (torch too)
    grads = [np.zeros((0, 3), F32), np.array([3.0, 4.0], F32)]
    check_against_reference(grads, 1.0, 2.0, exact=True)
    check_against_reference(grads, 1.0, 0.0, exact=True)


def test_zero_gradients_and_tiny_norms():
    """A zero norm: 1 / (0 + 1e-6) overflows float16 to inf; the coefficient clamps to 1."""
    for d in (F32, F16, BF16):
        check_against_reference([np.zeros(3, d)], 1.0, 2.0, exact=True)
        check_against_reference([np.array([1e-5, 0.0], d)], 1.0, 2.0)
        check_against_reference([np.array([3e-3, 4e-3], d)], 1e5, 2.0)


def test_nonfinite_gradients_match_torch_without_error():
    """inf: the coefficient is 0, finite entries become 0, infinite ones nan; nan: all nan."""
    for d in (F32, F16, BF16):
        for bad in (INF, -INF, math.nan):
            grads = [np.array([1.0, bad], d), np.array([2.0], d)]
            for p in (2.0, 1.0, INF):
                t_dtype, t_total, t_out = run_torch(grads, 1.0, p)
                j_dtype, j_total, j_out = run_jax(grads, 1.0, p)
                np.testing.assert_array_equal(j_total, t_total)
                for a, b in zip(j_out, t_out, strict=True):
                    np.testing.assert_array_equal(a.astype(F64), b.astype(F64))


def test_complex_gradients():
    a = np.array([3 + 4j, 1j], np.complex64)
    b = np.array([1.0, 2.0], F32)
    ta = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    tb = torch.zeros(2, requires_grad=True)
    ta.grad, tb.grad = torch.tensor(a), torch.tensor(b)
    t_total = torch.nn.utils.clip_grad_norm_([ta, tb], 1.0)
    tx = optim.clip_grad_norm(1.0)
    out, state = tx.update([jnp.asarray(a), jnp.asarray(b)], tx.init([a, b]))
    assert state.total_norm.dtype == jnp.float32 and out[0].dtype == jnp.complex64
    np.testing.assert_allclose(float(state.total_norm), float(t_total), rtol=1e-6)
    np.testing.assert_allclose(out[0], ta.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(out[1], tb.grad.numpy(), rtol=1e-6)


def test_single_step_values():
    g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([[12.0]])}
    tx = optim.clip_grad_norm(1.0)
    clipped, state = tx.update(g, tx.init(g))
    ta, tb = torch.tensor([3.0, 4.0], requires_grad=True), torch.tensor([[12.0]], requires_grad=True)
    ta.grad, tb.grad = torch.tensor([3.0, 4.0]), torch.tensor([[12.0]])
    total = torch.nn.utils.clip_grad_norm_([ta, tb], 1.0)
    assert float(state.total_norm) == float(total) == 13.0
    np.testing.assert_array_equal(clipped["a"], ta.grad.numpy())
    np.testing.assert_array_equal(clipped["b"], tb.grad.numpy())


def test_functional_get_total_norm_and_clip_grads_with_norm():
    grads = _random_grads(11, [BF16, F32, F16, BF16, F32])
    t_grads = [to_torch(g) for g in grads]
    for p in (2.0, INF, 1.0):
        t_total = torch.nn.utils.get_total_norm(t_grads, p)
        j_total = optim.get_total_norm([jnp.asarray(g) for g in grads], p)
        assert NP_DTYPE[t_total.dtype] == np.dtype(j_total.dtype) == F32
        (lo, hi), _, _ = ref_clip(grads, 1.0, p)
        assert_between(float(j_total), lo, hi, "get_total_norm")
        # clip with torch's own total: then everything downstream is deterministic
        params = [torch.zeros_like(t, requires_grad=True) for t in t_grads]
        for q, t in zip(params, t_grads, strict=True):
            q.grad = t.clone()
        torch.nn.utils.clip_grads_with_norm_(params, 0.1, t_total)
        out = optim.clip_grads_with_norm([jnp.asarray(g) for g in grads], 0.1, jnp.asarray(float(t_total)))
        for o, q in zip(out, params, strict=True):
            np.testing.assert_array_equal(np.asarray(o).astype(F64), to_numpy(q.grad).astype(F64))


# --- error_if_nonfinite ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [INF, math.nan], ids=["inf", "nan"])
@pytest.mark.parametrize("p", [2.0, 1.0, INF], ids=lambda p: f"p{p}")
def test_error_if_nonfinite_raises_outside_jit(bad, p):
    grads = [np.array([1.0, bad], F32), np.array([2.0], BF16)]
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        run_torch(grads, 1.0, p, error_if_nonfinite=True)
    tx = optim.clip_grad_norm(1.0, p, error_if_nonfinite=True)
    g = [jnp.asarray(a) for a in grads]
    with pytest.raises(RuntimeError, match=f"total norm of order {p} for gradients is non-finite"):
        tx.update(g, tx.init(g))
    with pytest.raises(RuntimeError, match="`error_if_nonfinite=False`"):
        optim.get_total_norm(g, p, error_if_nonfinite=True)
    # finite gradients: no error, the same numbers as without the switch
    ok = [jnp.array([1.0, 2.0]), jnp.array([2.0], jnp.bfloat16)]
    a, sa = tx.update(ok, tx.init(ok))
    b, sb = optim.clip_grad_norm(1.0, p).update(ok, tx.init(ok))
    assert float(sa.total_norm) == float(sb.total_norm)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bad", [INF, math.nan], ids=["inf", "nan"])
def test_error_if_nonfinite_under_jit_reports_the_norm(bad):
    """Under jit nothing can be raised: the update is torch's error_if_nonfinite=False one and
    the state keeps the non-finite norm for the caller to check."""
    grads = [np.array([1.0, bad], F32), np.array([2.0], F32)]
    tx = optim.clip_grad_norm(1.0, error_if_nonfinite=True)
    g = [jnp.asarray(a) for a in grads]
    out, state = jax.jit(tx.update)(g, tx.init(g))
    _, t_total, t_out = run_torch(grads, 1.0, 2.0)
    assert not np.isfinite(float(state.total_norm))
    np.testing.assert_array_equal(float(state.total_norm), t_total)
    for a, b in zip(out, t_out, strict=True):
        np.testing.assert_array_equal(a, b)
    # in a jitted training step the norm is still readable, and apply_if_finite skips the step
    safe = optax.apply_if_finite(optax.chain(tx, optim.adamw(1e-2)), max_consecutive_errors=5)
    params = [jnp.ones(2), jnp.ones(1)]
    s = safe.init(params)
    updates, s = jax.jit(safe.update)(g, s, params)
    assert float(optim.total_grad_norm(s)) == 0.0  # a skipped step keeps the previous inner state
    assert int(s.notfinite_count) == 1 and all(float(jnp.abs(u).max()) == 0 for u in updates)


# --- inside optimizers ---------------------------------------------------------------------------


def test_total_norm_readout_in_chain_matches_torch():
    """Chained before adamw under jit: the state's total norm equals torch's return value at every
    step (gradients with few significant bits, so bit-exact), and the trajectories agree."""
    rng = np.random.default_rng(2)
    init = {"w": rng.standard_normal((4, 3)).astype(F32), "b": rng.standard_normal(3).astype(F32)}
    # quarters in [-2, 2]: every sum of squares is exact in float32, so torch's order cannot matter
    steps = [{k: (rng.integers(-8, 9, v.shape) / 4).astype(F32) for k, v in init.items()} for _ in range(10)]
    tx = optax.chain(optim.clip_grad_norm(1.5), optim.adamw(1e-2))
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    tparams = [torch.tensor(init[k], requires_grad=True) for k in ("b", "w")]  # jax's leaf order
    topt = torch.optim.AdamW(tparams, lr=1e-2)
    for grads in steps:
        params, state = step(params, state, grads)
        for t, k in zip(tparams, ("b", "w"), strict=True):
            t.grad = torch.tensor(grads[k])
        t_total = torch.nn.utils.clip_grad_norm_(tparams, 1.5)
        topt.step()
        total = optim.total_grad_norm(state)
        assert total.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(total), t_total.numpy())
        assert float(total) == float(optax.tree_utils.tree_get(state, "total_norm"))
        for t, k in zip(tparams, ("b", "w"), strict=True):
            np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=2e-6, atol=1e-7)


def test_nnx_optimizer_and_readout():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.chain(optim.clip_grad_norm(0.1), optim.adamw(1e-2)), wrt=nnx.Param)
    x = jnp.ones((4, 3))

    @nnx.jit
    def train_step(model, opt):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
        opt.update(model, grads)
        return loss, optim.get_total_norm(grads)

    for _ in range(3):
        _, norm = train_step(model, opt)
        assert float(norm) > 0
        np.testing.assert_allclose(optim.total_grad_norm(opt), norm, rtol=1e-6)
    np.testing.assert_allclose(optim.total_grad_norm(opt.opt_state), norm, rtol=1e-6)


def test_readout_through_wrappers_and_inject_hyperparams():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.array([3.0, 4.0, 12.0])}
    wrapped = [
        optax.MultiSteps(optax.chain(optim.clip_grad_norm(1.0), optim.adam(1e-2)), every_k_schedule=1),
        optax.inject_hyperparams(optim.clip_grad_norm, static_args=("norm_type",))(max_norm=1.0, norm_type=2.0),
    ]
    for tx in wrapped:
        state = tx.init(params)
        assert float(optim.total_grad_norm(state)) == 0.0
        _, state = jax.jit(tx.update)(grads, state, params)
        assert float(optim.total_grad_norm(state)) == 13.0
    # max_norm changed at run time
    tx = wrapped[1]
    state = tx.init(params)
    state.hyperparams["max_norm"] = jnp.asarray(6.5)
    out, _ = jax.jit(tx.update)(grads, state, params)
    ref, _ = optim.clip_grad_norm(6.5).update(grads, optim.clip_grad_norm(6.5).init(params))
    np.testing.assert_array_equal(out["w"], ref["w"])


def test_state_is_a_namedtuple_pytree_with_torch_dtype():
    for leaves, dtype in [([jnp.ones(2)], jnp.float32), ([jnp.ones(2, jnp.bfloat16)], jnp.bfloat16),
                          ([jnp.ones(2, jnp.bfloat16), jnp.ones(1, jnp.float16)], jnp.float32)]:
        state = optim.clip_grad_norm(1.0).init(leaves)
        assert isinstance(state, optim.ClipGradNormState) and state._fields == ("total_norm",)
        assert state.total_norm.dtype == dtype and state.total_norm.shape == ()
        _, new = jax.jit(optim.clip_grad_norm(1.0).update)(leaves, state)
        assert jax.tree.structure(new) == jax.tree.structure(state) and new.total_norm.dtype == dtype


# --- clip_grad_value ------------------------------------------------------------------------------


@pytest.mark.parametrize("clip_value", [0.1, 0.5, 3.0, 0.0, 1e-3])
def test_clip_grad_value_matches_torch(clip_value):
    rng = np.random.default_rng(4)
    grads = [(rng.standard_normal((5, 4)) * 2).astype(F32).astype(d) for d in (F32, F16, BF16)]
    grads.append(np.array([INF, -INF, math.nan, 0.1, -0.1], BF16))
    tx = optim.clip_grad_value(clip_value)
    out, _ = jax.jit(tx.update)([jnp.asarray(g) for g in grads], tx.init(grads))
    for foreach in (True, False):
        params = []
        for g in grads:
            t = torch.zeros(g.shape, dtype=TORCH_DTYPE[g.dtype], requires_grad=True)
            t.grad = to_torch(g)
            params.append(t)
        torch.nn.utils.clip_grad_value_(params, clip_value, foreach=foreach)
        for o, t, g in zip(out, params, grads, strict=True):
            assert o.dtype == g.dtype
            np.testing.assert_array_equal(np.asarray(o).astype(F64), to_numpy(t.grad).astype(F64))


def test_clip_grad_value_bound_is_rounded_like_torch():
    """torch converts the Python bound to the gradient's dtype through float32."""
    g = np.array([1.0, -1.0], BF16)
    tx = optim.clip_grad_value(0.1)
    out, _ = tx.update(jnp.asarray(g), tx.init(g))
    v = float(np.float32(0.1).astype(BF16))
    assert np.asarray(out).astype(F64).tolist() == [v, -v]


def test_clip_grad_value_in_chain_and_float64():
    tx = optax.chain(optim.clip_grad_value(0.5), optim.adam(1e-1))
    params = {"w": jnp.zeros(3)}
    updates, _ = jax.jit(tx.update)({"w": jnp.array([-2.0, 0.2, 9.0])}, tx.init(params), params)
    assert updates["w"].shape == (3,)
    with jax.enable_x64(True):
        g = np.array([0.3, -2.0, 1e-300], F64)
        out, _ = optim.clip_grad_value(0.2).update(jnp.asarray(g), optax.EmptyState())
        t = torch.tensor(g)
        np.testing.assert_array_equal(np.asarray(out), t.clamp(-0.2, 0.2).numpy())


# --- errors ------------------------------------------------------------------------------------------

ERRORS = [
    (lambda: optim.clip_grad_norm(-1.0), ValueError, "`max_norm` must be >= 0"),
    (lambda: optim.clip_grad_norm(float("nan")), ValueError, "`max_norm` must be >= 0"),
    (lambda: optim.clip_grad_norm(1.0, float("nan")), ValueError, "`norm_type` must be a number"),
    (lambda: optim.clip_grad_norm(1.0, "two"), TypeError, "`norm_type` must be a Python number"),
    (lambda: optim.clip_grad_value(-0.1), ValueError, "`clip_value` must be >= 0"),
    (lambda: optim.clip_grads_with_norm([jnp.ones(2)], -1.0, jnp.ones(())), ValueError, "`max_norm`"),
    (lambda: optim.get_total_norm([jnp.ones(2, jnp.int32)]), TypeError, "floating-point gradients"),
    (lambda: optim.clip_grad_value(1.0).update({"i": jnp.ones(2, jnp.int32)}, optax.EmptyState()), TypeError,
     r"int32 at \['i'\]"),
    (lambda: optim.get_total_norm([jnp.zeros((0,))], INF), ValueError, "zero-size gradient"),
    (lambda: optim.get_total_norm([jnp.zeros((2, 0))], -1.0), ValueError, "zero-size gradient"),
    (lambda: optim.total_grad_norm(optim.adam().init({"w": jnp.ones(1)})), ValueError, "holds no clip_grad_norm"),
    (lambda: optim.total_grad_norm(optax.chain(optim.clip_grad_norm(1.0), optim.clip_grad_norm(2.0)).init([1.0])),
     ValueError, "holds 2 clip_grad_norm states"),
]


@pytest.mark.parametrize("call,exc,fragment", ERRORS)
def test_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_torch_rejects_what_jaxnn_rejects_for_zero_size():
    t = torch.zeros(0, requires_grad=True)
    t.grad = torch.zeros(0)
    for p in (INF, -1.0):
        with pytest.raises(RuntimeError, match="empty tensor"):
            torch.nn.utils.clip_grad_norm_([t], 1.0, p)
