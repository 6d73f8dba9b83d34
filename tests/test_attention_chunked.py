"""scaled_dot_product_attention's chunked (memory-bounded, flash-attention-2 style) path: against torch
and against the plain path, outputs and vjp gradients (query, key, value and float masks), over block
sizes that do and don't divide L and S; half precision within one ulp of the plain path; the automatic
choice; the compiled program's temporary memory growing with L x block, not L x S."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from test_attention import ERRORS
from torch_ref import assert_close, reduction_tol, to_numpy, to_torch

import jaxnn.functional as F
from jaxnn.functional import _attention as A
from jaxnn.functional._attention import _sdpa_path

NEG_INF = -np.inf


def _bool(rng, shape, p=0.7):
    return rng.random(shape) < p


def _dead_rows(shape, rows):
    def make(rng):
        m = _bool(rng, shape)
        m[..., list(rows), :] = False
        return m
    return make


def _float(shape, inf_rows=()):
    def make(rng):
        m = rng.standard_normal(shape).astype(np.float32)
        for r in inf_rows:
            m[..., r, :] = NEG_INF
        return m
    return make


# (id, query shape, key shape, value shape, mask maker or None, keyword arguments, (block_q, block_k))
CASES = [
    ("divides", (2, 3, 8, 8), (2, 3, 8, 8), (2, 3, 8, 6), None, {}, (4, 4)),
    ("no-divide", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), None, {}, (3, 4)),
    ("blocks-of-one", (2, 5, 4), (2, 6, 4), (2, 6, 3), None, {}, (1, 1)),
    ("blocks-larger", (2, 5, 4), (2, 6, 4), (2, 6, 3), None, {}, (64, 64)),
    ("unbatched-2d", (7, 8), (9, 8), (9, 5), None, {}, (3, 2)),
    ("unbatched-3d", (3, 7, 8), (3, 9, 8), (3, 9, 8), None, {}, (4, 4)),
    ("batch-broadcast", (2, 1, 7, 8), (1, 3, 9, 8), (1, 3, 9, 6), None, {}, (3, 4)),
    ("value-batch-broadcast", (2, 1, 7, 8), (2, 1, 9, 8), (1, 3, 9, 6), None, {}, (3, 4)),
    ("q3-k2", (2, 7, 8), (9, 8), (9, 6), None, {}, (2, 5)),
    ("causal-square", (2, 2, 9, 8), (2, 2, 9, 8), (2, 2, 9, 4), None, {"is_causal": True}, (4, 3)),
    ("causal-L<S", (2, 5, 8), (2, 11, 8), (2, 11, 4), None, {"is_causal": True}, (2, 4)),
    ("causal-L>S", (2, 11, 8), (2, 5, 8), (2, 5, 4), None, {"is_causal": True}, (4, 2)),
    ("bool-full", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), lambda r: _bool(r, (2, 3, 7, 9)), {}, (3, 4)),
    ("bool-2d-broadcast", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), lambda r: _bool(r, (7, 9)), {}, (3, 4)),
    ("bool-key-padding", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), lambda r: _bool(r, (2, 1, 1, 9)), {}, (3, 4)),
    ("bool-1d", (2, 7, 8), (2, 9, 8), (2, 9, 6), lambda r: _bool(r, (9,), 0.8), {}, (4, 2)),
    ("bool-query-column", (2, 7, 8), (2, 9, 8), (2, 9, 6), lambda r: _bool(r, (7, 1), 0.6), {}, (3, 4)),
    ("bool-dead-rows", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), _dead_rows((2, 1, 7, 9), (1, 3, 6)), {}, (3, 4)),
    ("bool-dead-everything", (2, 7, 8), (2, 9, 8), (2, 9, 6), lambda r: np.zeros((7, 9), bool), {}, (3, 4)),
    ("float-full", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), _float((2, 3, 7, 9)), {}, (3, 4)),
    ("float-broadcast", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), _float((1, 3, 1, 9)), {}, (3, 4)),
    ("float-query-column", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), _float((2, 1, 7, 1)), {}, (3, 4)),
    ("float-inf-rows", (2, 7, 8), (2, 9, 8), (2, 9, 6), _float((7, 9), inf_rows=(0, 4)), {}, (3, 4)),
    ("scale", (2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 6), None, {"scale": 0.37}, (3, 4)),
    ("scale-negative", (2, 7, 8), (2, 9, 8), (2, 9, 6), None, {"scale": -1.3}, (3, 4)),
    ("gqa", (2, 6, 7, 8), (2, 2, 9, 8), (2, 2, 9, 6), None, {"enable_gqa": True}, (3, 4)),
    ("gqa-causal", (1, 4, 9, 8), (1, 1, 9, 8), (1, 1, 9, 8), None, {"enable_gqa": True, "is_causal": True}, (4, 4)),
    ("gqa-float-mask", (1, 4, 7, 8), (1, 2, 9, 8), (1, 2, 9, 5), _float((4, 1, 9)), {"enable_gqa": True}, (2, 3)),
    ("dropout-negative", (2, 7, 8), (2, 9, 8), (2, 9, 5), None, {"dropout_p": -0.5}, (3, 4)),
]


def _run(path, blocks, q, k, v, mask, kwargs, cot):
    """Output and gradients of the forced ``path`` (traced inside the `with`)."""
    float_mask = mask is not None and mask.dtype != bool
    args = [jnp.asarray(a) for a in (q, k, v)] + ([jnp.asarray(mask)] if float_mask else [])
    with _sdpa_path(path, block_q=blocks[0], block_k=blocks[1]):
        def f(*a):
            m = a[3] if float_mask else (None if mask is None else jnp.asarray(mask))
            return F.scaled_dot_product_attention(a[0], a[1], a[2], m, **kwargs)

        def both(args, ct):
            out, vjp = jax.vjp(f, *args)
            return out, vjp(ct)

        out, grads = jax.jit(both)(args, jnp.asarray(cot))
    return out, grads


def _torch(q, k, v, mask, kwargs, cot):
    float_mask = mask is not None and mask.dtype != bool
    ts = [to_torch(a, requires_grad=True) for a in (q, k, v)]
    tm = None if mask is None else (to_torch(mask, requires_grad=True) if float_mask else torch.from_numpy(mask))
    out = TF.scaled_dot_product_attention(*ts, tm, **kwargs)
    out.backward(torch.from_numpy(cot))
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in ts]
    if float_mask:
        assert tm is not None
        grads.append(tm.grad if tm.grad is not None else torch.zeros_like(tm))
    return to_numpy(out), [to_numpy(g) for g in grads]


def _uses_scan(fn, *args) -> bool:
    return "scan" in str(jax.make_jaxpr(fn)(*args))


def _compare_all(q, k, v, mask, kwargs, blocks, cot):
    want, twant = _torch(q, k, v, mask, kwargs, cot)
    got, grads = _run("chunked", blocks, q, k, v, mask, kwargs, cot)
    plain, pgrads = _run("plain", blocks, q, k, v, mask, kwargs, cot)
    assert got.dtype == jnp.float32 and got.shape == want.shape
    S, E = k.shape[-2], q.shape[-1]
    # against torch: the tolerance of the plain path's own torch test
    assert_close(got, want, rtol=1e-5, atol=1e-6, what="chunked vs torch")
    # against the plain formula: float32 rounding of sums of S (output) and S * E (scores) terms
    tol = reduction_tol(S * E)
    vmax = float(np.abs(v).max()) if v.size else 1.0
    assert_close(got, plain, rtol=tol, atol=tol * vmax, what="chunked vs plain")
    names = ["dq", "dk", "dv", "dmask"][:len(twant)]
    assert len(grads) == len(pgrads) == len(twant)
    for name, g, pg, tg in zip(names, grads, pgrads, twant, strict=True):
        assert g.shape == pg.shape == tg.shape, name
        assert np.isfinite(np.asarray(g)).all(), name
        assert_close(g, tg, rtol=2e-5, atol=2e-6, what=f"{name} chunked vs torch")
        gmax = float(np.abs(np.asarray(pg)).max()) if pg.size else 1.0
        assert_close(g, pg, rtol=tol, atol=tol * max(gmax, 1.0), what=f"{name} chunked vs plain")
    return got, grads


@pytest.mark.parametrize("qs,ks,vs,make_mask,kwargs,blocks", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_chunked_matches_torch_and_plain(rng, qs, ks, vs, make_mask, kwargs, blocks):
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in (qs, ks, vs))
    mask = None if make_mask is None else make_mask(rng)
    heads = (lambda s: s[:-3] + (qs[-3],)) if kwargs.get("enable_gqa") else (lambda s: s)
    out_shape = np.broadcast_shapes(qs[:-2], heads(ks)[:-2], heads(vs)[:-2]) + (qs[-2], vs[-1])
    cot = rng.standard_normal(out_shape).astype(np.float32)
    got, grads = _compare_all(q, k, v, mask, kwargs, blocks, cot)
    if mask is not None:  # rows that may attend to nothing: exactly 0, with exactly zero gradients
        allowed = mask if mask.dtype == bool else np.isfinite(mask)
        dead = ~np.broadcast_to(allowed, out_shape[:-1] + (ks[-2],)).any(axis=-1)
        if dead.any():
            np.testing.assert_array_equal(np.asarray(got)[dead], 0.0)
            dq = np.broadcast_to(np.asarray(grads[0]), out_shape[:-1] + (qs[-1],))
            if qs[:-2] == out_shape[:-2]:
                np.testing.assert_array_equal(dq[dead], 0.0)


def test_chunked_path_is_really_taken_when_forced():
    q = jnp.ones((2, 5, 4))
    with _sdpa_path("chunked", block_q=2, block_k=2):
        assert _uses_scan(lambda q: F.scaled_dot_product_attention(q, q, q), q)
    with _sdpa_path("plain"):
        assert not _uses_scan(lambda q: F.scaled_dot_product_attention(q, q, q), q)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape,mask_kind,kwargs,blocks", [
    ((2, 2, 19, 32), None, {}, (8, 5)),
    ((2, 19, 32), "bool", {}, (4, 8)),
    ((2, 19, 32), "float", {}, (5, 4)),
    ((2, 2, 19, 32), None, {"is_causal": True}, (8, 8)),
])
def test_half_precision_within_one_ulp_of_plain(rng, dtype, shape, mask_kind, kwargs, blocks):
    """Both paths compute in float32 and round once: equal, or one ulp apart where the two float32
    values straddle a rounding boundary, plus the float32 rounding of the summed terms where a sum
    cancels (gradients); the output within half an ulp (plus float32 slop) of float64."""
    jdt = jnp.dtype(dtype)
    eps = float(jnp.finfo(jdt).eps)
    q, k, v = (np.asarray(jnp.asarray(rng.standard_normal(shape) * 2, jdt)) for _ in range(3))
    L = shape[-2]
    mask = None
    if mask_kind == "bool":
        mask = _bool(rng, (L, L))
        mask[3] = False
    elif mask_kind == "float":
        mask = np.asarray(jnp.asarray(rng.standard_normal((L, L)), jdt))
    cot = np.asarray(jnp.asarray(rng.standard_normal(shape[:-1] + (shape[-1],)), jdt))
    got, grads = _run("chunked", blocks, q, k, v, mask, kwargs, cot)
    plain, pgrads = _run("plain", blocks, q, k, v, mask, kwargs, cot)
    assert got.dtype == jdt
    for name, a, b in zip(["out", "dq", "dk", "dv", "dmask"], [got, *grads], [plain, *pgrads], strict=False):
        assert a.dtype == b.dtype == jdt, name
        a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
        mag = np.maximum(np.abs(a32), np.abs(b32))
        ulp = np.exp2(np.floor(np.log2(np.maximum(mag, float(jnp.finfo(jdt).smallest_normal))))) * eps
        slop = reduction_tol(L * shape[-1]) * float(mag.max())  # float32 rounding of the terms
        assert (np.abs(a32 - b32) <= ulp + slop).all(), (name, np.abs(a32 - b32).max())
        frac_one_ulp = float(np.mean(a32 != b32))
        assert frac_one_ulp < 0.1, (name, frac_one_ulp)  # most elements round identically
    t64 = [torch.from_numpy(np.asarray(a, np.float64)) for a in (q, k, v)]
    m64 = None if mask is None else torch.from_numpy(mask if mask.dtype == bool else np.asarray(mask, np.float64))
    ref = TF.scaled_dot_product_attention(*t64, m64, **kwargs).numpy()
    vmax = float(np.abs(np.asarray(v, np.float32)).max())
    assert_close(got, ref, rtol=eps / 2 * 1.01, atol=1e-5 * vmax, what="chunked vs float64")


@settings(max_examples=15)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    L=st.integers(1, 9), S=st.integers(1, 9), E=st.integers(1, 6), Ev=st.integers(1, 5),
    bq=st.integers(1, 10), bk=st.integers(1, 10),
    mask_kind=st.sampled_from([None, "bool", "float", "causal", "key-padding"]),
    scale=st.one_of(st.none(), st.floats(0.05, 2.0)),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_chunked_matches_torch_and_plain(batch, L, S, E, Ev, bq, bk, mask_kind, scale, seed):
    r = np.random.default_rng(seed)
    b = tuple(batch)
    q, k, v = (r.standard_normal(b + s).astype(np.float32) for s in ((L, E), (S, E), (S, Ev)))
    mask = None
    if mask_kind == "bool":
        mask = r.random((L, S)) < 0.6
    elif mask_kind == "float":
        mask = r.standard_normal((L, S)).astype(np.float32)
    elif mask_kind == "key-padding":  # (1, S): torch rejects a 1-D mask with 4-D inputs
        mask = r.random((1, S)) < 0.7
    kwargs = {"is_causal": mask_kind == "causal", "scale": scale}
    cot = r.standard_normal(b + (L, Ev)).astype(np.float32)
    _compare_all(q, k, v, mask, kwargs, (bq, bk), cot)


def test_vmap_and_jit_over_unbatched_chunked_calls(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((3, 2, 7, 8)), jnp.float32) for _ in range(3))
    mask = jnp.asarray(_bool(rng, (7, 7)))
    with _sdpa_path("chunked", block_q=3, block_k=2):
        f = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask)  # noqa: E731
        batched = jax.jit(f)(q, k, v)
        per_call = jax.jit(jax.vmap(jax.vmap(f)))(q, k, v)
        g_batched = jax.grad(lambda q: jnp.sum(f(q, k, v) ** 2))(q)
        g_vmapped = jax.vmap(jax.vmap(jax.grad(lambda q, k, v: jnp.sum(f(q, k, v) ** 2))))(q, k, v)
    with _sdpa_path("plain"):
        plain = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask))(q, k, v)
    tol = reduction_tol(7 * 8)
    assert_close(per_call, batched, rtol=tol, atol=tol)
    assert_close(batched, plain, rtol=tol, atol=tol)
    assert_close(g_vmapped, g_batched, rtol=tol, atol=tol)


def test_dropout_uses_the_plain_path(rng):
    """The plain path draws one dropout mask for the whole score array: with dropout_p > 0 the
    chunked path is not taken even when forced, so the random stream is the same."""
    q, k, v = (jnp.asarray(rng.standard_normal((2, 9, 4)), jnp.float32) for _ in range(3))
    key = jax.random.key(3)
    with _sdpa_path("chunked", block_q=2, block_k=2):
        fc = lambda q: F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, rng=key)  # noqa: E731
        assert not _uses_scan(fc, q)
        chunked = fc(q)
    with _sdpa_path("plain"):
        plain = F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, rng=key)
    np.testing.assert_array_equal(chunked, plain)


def test_traced_scale_uses_the_plain_path(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((2, 9, 4)), jnp.float32) for _ in range(3))
    with _sdpa_path("chunked", block_q=2, block_k=2):
        f = lambda q, s: F.scaled_dot_product_attention(q, k, v, scale=s)  # noqa: E731
        assert not _uses_scan(f, q, jnp.float32(0.4))
        assert _uses_scan(lambda q: F.scaled_dot_product_attention(q, k, v, scale=np.float32(0.4)), q)
        got = jax.jit(f)(q, jnp.float32(0.4))
    want = TF.scaled_dot_product_attention(*(torch.from_numpy(np.array(a)) for a in (q, k, v)), scale=0.4)
    assert_close(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_automatic_choice_threshold():
    """Chunked exactly when the plain scores (batch x L x S, float32) exceed CHUNK_MIN_SCORE_BYTES
    and there is more than one key block."""
    limit = A.CHUNK_MIN_SCORE_BYTES
    assert limit == 8 * 2**20
    L = 512  # 8 heads x 512 x 512 float32 scores = 8 MiB: the plain path; one more key: chunked
    spec = lambda *s: jax.ShapeDtypeStruct(s, jnp.float32)  # noqa: E731
    f = lambda q, k, v: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
    assert 8 * L * L * 4 == limit
    assert not _uses_scan(f, spec(8, L, 16), spec(8, L, 16), spec(8, L, 16))
    assert _uses_scan(f, spec(8, L, 16), spec(8, L + 1, 16), spec(8, L + 1, 16))
    # the broadcast batch counts; half precision counts its float32 statistics
    assert _uses_scan(f, spec(2, 4, L, 16), spec(1, 4, L + 1, 16), spec(1, 4, L + 1, 16))
    assert not _uses_scan(f, spec(1, 4, L, 16), spec(1, 4, L + 1, 16), spec(1, 4, L + 1, 16))
    # at most CHUNK_BLOCK_K keys: the plain scores are L x block already (cross-attention)
    assert A.CHUNK_BLOCK_K == L
    assert not _uses_scan(f, spec(8, 8 * L, 16), spec(8, L, 16), spec(8, L, 16))
    assert _uses_scan(f, spec(8, 8 * L, 16), spec(8, L + 1, 16), spec(8, L + 1, 16))
    h = lambda *s: jax.ShapeDtypeStruct(s, jnp.bfloat16)  # noqa: E731
    assert _uses_scan(f, h(8, L, 16), h(8, L + 1, 16), h(8, L + 1, 16))
    assert not _uses_scan(f, h(4, L, 16), h(4, 2 * L, 16), h(4, 2 * L, 16))  # exactly 8 MiB in float32


def test_automatic_choice_gives_the_forced_chunked_numbers(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((8, 520, 4)), jnp.float32) for _ in range(3))
    auto = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))(q, k, v)
    with _sdpa_path("chunked"):
        forced = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))(q, k, v)
    np.testing.assert_array_equal(auto, forced)
    want = TF.scaled_dot_product_attention(*(torch.from_numpy(np.array(a)) for a in (q, k, v)), is_causal=True)
    assert_close(auto, want.numpy(), rtol=1e-5, atol=1e-6)


def _temp_bytes(path, fn, *specs):
    with _sdpa_path(path):
        fresh = lambda *a: fn(*a)  # noqa: E731 - a new function: jit's cache keeps the path of a traced one
        return jax.jit(fresh).lower(*specs).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("kind", ["forward", "gradient"])
def test_chunked_temporary_memory_grows_with_L_times_block(kind):
    """Compiled (not run) at (1, 8, L, 64) float32, causal: the chunked program's temporaries stay
    below a bound linear in L (a few B x block_q x block_k score blocks plus copies of the B x L x E
    inputs/outputs), while the plain program's grow with L x S."""
    B, E = 8, 64
    bq, bk = A.CHUNK_BLOCK_Q, A.CHUNK_BLOCK_K

    def fn(q, k, v):
        if kind == "forward":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return jax.grad(lambda q, k, v: jnp.sum(F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                        argnums=(0, 1, 2))(q, k, v)

    temps = {}
    for L in (2048, 4096):
        spec = jax.ShapeDtypeStruct((1, B, L, E), jnp.float32)
        temps[L] = _temp_bytes("chunked", fn, spec, spec, spec), _temp_bytes("plain", fn, spec, spec, spec)
    for L, (chunked, plain) in temps.items():
        bound = 4 * B * bq * bk * 4 + 10 * B * L * E * 4  # linear in L
        assert chunked < bound, (L, chunked, bound)
        assert plain > B * L * L * 4  # the plain program holds the L x S scores
    # doubling L: the chunked temporaries grow by at most the linear part, the plain ones ~4x
    assert temps[4096][0] - temps[2048][0] <= 10 * B * 2048 * E * 4
    assert temps[4096][1] > 3.5 * temps[2048][1]


def test_sdpa_path_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`path` must be None, 'plain', 'chunked' or 'fused'"):
        with _sdpa_path("flash"):
            pass
    with pytest.raises(ValueError, match="`block_q` must be a positive int"):
        with _sdpa_path("chunked", block_q=0):
            pass
    with pytest.raises(ValueError, match="`block_k` must be a positive int"):
        with _sdpa_path("chunked", block_k=2.5):  # type: ignore[arg-type]
            pass
    assert A._PATH == {"path": None, "block_q": None, "block_k": None}


@pytest.mark.parametrize("args,kwargs,exc,fragment", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_match_torch_on_the_chunked_path(args, kwargs, exc, fragment):
    with pytest.raises((RuntimeError, IndexError)):
        TF.scaled_dot_product_attention(*(to_torch(a) if a.dtype != np.int32 else torch.from_numpy(a).long()
                                          for a in args), **kwargs)
    with _sdpa_path("chunked", block_q=2, block_k=2), pytest.raises(exc, match=fragment):
        F.scaled_dot_product_attention(*(jnp.asarray(a) for a in args), **kwargs)


def test_float32_mask_with_bfloat16_query_on_the_chunked_path(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((2, 9, 8)), jnp.bfloat16) for _ in range(3))
    mask = rng.standard_normal((9, 9)).astype(np.float32) * 3
    t = [to_torch(np.asarray(a)) for a in (q, k, v)]
    want = to_numpy(TF.scaled_dot_product_attention(*t, torch.from_numpy(mask)))
    with _sdpa_path("chunked", block_q=4, block_k=4):
        got = F.scaled_dot_product_attention(q, k, v, jnp.asarray(mask))
    assert got.dtype == jnp.bfloat16
    eps = float(jnp.finfo(jnp.bfloat16).eps)
    assert_close(got, want, rtol=eps, atol=eps * float(np.abs(np.asarray(v, np.float32)).max()))


@pytest.mark.parametrize("mask_shape", [(9,), (1, 9), (2, 1, 9), (2, 1, 1)])
def test_row_broadcast_float_mask_with_large_values_gives_finite_gradients(rng, mask_shape):
    """A float mask broadcast over the query rows reaches the padded rows of the last query block
    (L = 7, block 3); their log-sum-exp was padded with 0, so exp(mask + 0 - 0) overflowed for a
    mask of 100 and inf * 0 made dk, dv and the mask's gradient nan."""
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((2, 7, 8), (2, 9, 8), (2, 9, 5)))
    mask = (rng.standard_normal(mask_shape) + 100).astype(np.float32)
    cot = rng.standard_normal((2, 7, 5)).astype(np.float32)
    want, twant = _torch(q, k, v, mask, {}, cot)
    got, grads = _run("chunked", (3, 4), q, k, v, mask, {}, cot)
    assert_close(got, want, rtol=1e-5, atol=1e-5, what="output")
    for name, g, tg in zip(["dq", "dk", "dv", "dmask"], grads, twant, strict=True):
        assert np.isfinite(np.asarray(g)).all(), name
        # scores near 100 keep float32's absolute ulp there (8e-6): probabilities to ~1e-5
        assert_close(g, tg, rtol=1e-4, atol=2e-5, what=name)


# ---------------------------------------------------------------------------------------------
# The GPU fused path (jax.nn.dot_product_attention with cuDNN): when it is chosen (on any
# platform, with the platform check patched), and on a GPU its numbers against the plain path.
# ---------------------------------------------------------------------------------------------

def _h(shape, dtype=jnp.bfloat16):
    return jax.ShapeDtypeStruct(shape, dtype)


@pytest.mark.parametrize("q,k,v,mask,p,causal,scale,want", [
    (_h((2, 8, 64, 64)), _h((2, 8, 96, 64)), _h((2, 8, 96, 64)), None, 0.0, False, None, True),
    (_h((2, 8, 64, 40), jnp.float16), _h((2, 8, 64, 40), jnp.float16), _h((2, 8, 64, 40), jnp.float16),
     None, 0.0, True, 0.5, True),
    (_h((2, 8, 64, 64), jnp.float32), _h((2, 8, 64, 64), jnp.float32), _h((2, 8, 64, 64), jnp.float32),
     None, 0.0, False, None, False),                                                     # float32
    (_h((2, 8, 64, 64)), _h((2, 8, 64, 64)), _h((2, 8, 64, 64)), _h((64, 64), jnp.bool_), 0.0, False, None,
     False),                                                                             # a mask
    (_h((2, 8, 64, 64)), _h((2, 8, 64, 64)), _h((2, 8, 64, 64)), None, 0.1, False, None, False),  # dropout
    (_h((2, 8, 64, 64)), _h((2, 8, 96, 64)), _h((2, 8, 96, 64)), None, 0.0, True, None, False),   # causal, L != S
    (_h((8, 64, 64)), _h((8, 64, 64)), _h((8, 64, 64)), None, 0.0, False, None, False),            # 3-D
    (_h((2, 8, 64, 64)), _h((1, 8, 64, 64)), _h((1, 8, 64, 64)), None, 0.0, False, None, False),   # broadcast
    (_h((2, 8, 64, 36)), _h((2, 8, 64, 36)), _h((2, 8, 64, 36)), None, 0.0, False, None, False),   # E % 8
    (_h((2, 8, 64, 256)), _h((2, 8, 64, 256)), _h((2, 8, 64, 256)), None, 0.0, False, None, False),  # E > 128
    (_h((2, 8, 64, 64)), _h((2, 8, 64, 64)), _h((2, 8, 64, 32)), None, 0.0, False, None, False),   # Ev != E
])
def test_fused_path_choice(monkeypatch, q, k, v, mask, p, causal, scale, want):
    monkeypatch.setattr(A, "_on_gpu", lambda *xs: True)
    assert A._use_fused(q, k, v, mask, p, causal, scale) is want
    with _sdpa_path("plain"):
        assert not A._use_fused(q, k, v, mask, p, causal, scale)
    monkeypatch.setattr(A, "_on_gpu", lambda *xs: False)
    assert not A._use_fused(q, k, v, mask, p, causal, scale)


def test_fused_path_not_taken_off_gpu():
    q = jnp.ones((1, 2, 16, 64), jnp.bfloat16)
    assert A._on_gpu(q) is (jax.default_backend() == "gpu")
    hlo = jax.jit(F.scaled_dot_product_attention).lower(q, q, q).as_text().lower()
    assert ("cudnn" in hlo) is (jax.default_backend() == "gpu")


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN's fused attention exists on GPUs only "
                    "(benchmarks/gpu_check.sh runs this file on one)")
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("L,S,E,causal", [(256, 384, 64, False), (512, 512, 40, True), (77, 77, 128, False)])
def test_fused_gpu_path_agrees_with_the_plain_path(rng, dtype, L, S, E, causal):
    q, k, v = (jnp.asarray(rng.standard_normal((2, 4, n, E)), dtype) for n in (L, S, S))
    ct = jnp.asarray(rng.standard_normal((2, 4, L, E)), jnp.float32)

    def loss(q, k, v):
        return jnp.sum(F.scaled_dot_product_attention(q, k, v, is_causal=causal).astype(jnp.float32) * ct)

    assert "cudnn" in jax.jit(loss).lower(q, k, v).as_text().lower()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    grads = jax.grad(loss, argnums=(0, 1, 2))(q, k, v)
    f32 = [a.astype(jnp.float32) for a in (q, k, v)]
    with _sdpa_path("plain"):
        ref = F.scaled_dot_product_attention(*f32, is_causal=causal)
        ref_grads = jax.grad(loss, argnums=(0, 1, 2))(*f32)
    eps = float(jnp.finfo(dtype).eps)
    # cuDNN rounds the attention weights to the half type before the product with value (as
    # torch's own fused CUDA kernels do): at most ~1 eps of max|value| more than the plain path's
    # single rounding of the float32 result.
    err = float(jnp.max(jnp.abs(out.astype(jnp.float32) - ref))) / float(jnp.max(jnp.abs(f32[2])))
    assert err <= 2 * eps, (err / eps)
    for name, g, r in zip("qkv", grads, ref_grads, strict=True):
        gerr = float(jnp.max(jnp.abs(g.astype(jnp.float32) - r))) / float(jnp.max(jnp.abs(r)))
        assert gerr <= 8 * eps, (name, gerr / eps)


@pytest.mark.parametrize("on_gpu", [False, True])
def test_chunked_threshold_per_platform(monkeypatch, on_gpu):
    monkeypatch.setattr(A, "_on_gpu", lambda *xs: on_gpu)
    limit = A.CHUNK_MIN_SCORE_BYTES_GPU if on_gpu else A.CHUNK_MIN_SCORE_BYTES
    n = limit // (4 * 1024 * 1024)  # batch of 1024 x 1024 float32 score matrices at the limit
    assert not A._use_chunked(0.0, 1024, 1024, 64, None, (n,), jnp.float32)
    assert A._use_chunked(0.0, 1024, 1024, 64, None, (n + 1,), jnp.float32)
    assert not A._use_chunked(0.0, 1024, A.CHUNK_BLOCK_K, 64, None, (10 * n,), jnp.float32)
