"""scaled_dot_product_attention against torch: outputs and vjp gradients over a table of masks,
causal alignments, GQA and layouts; half precision against a float64 reference; error parity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import assert_close, to_numpy, to_torch

import jaxnn.functional as F

NEG_INF = -np.inf


def _bool(rng, shape, p=0.7):
    return rng.random(shape) < p


def _dead_rows(rng):  # rows 1 and 3 of every head attend to nothing
    m = _bool(rng, (2, 1, 4, 5))
    m[..., 1, :] = False
    m[..., 3, :] = False
    return m


def _float_mask(rng, shape, inf_rows=()):
    m = rng.standard_normal(shape).astype(np.float32)
    for r in inf_rows:
        m[..., r, :] = NEG_INF
    return m


# (id, query shape, key shape, value shape, mask maker or None, keyword arguments)
CASES = [
    ("plain-4d", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), None, {}),
    ("unbatched-2d", (4, 8), (6, 8), (6, 3), None, {}),
    ("unbatched-3d", (3, 4, 8), (3, 6, 8), (3, 6, 8), None, {}),
    ("batch-broadcast", (2, 1, 4, 8), (1, 3, 5, 8), (1, 3, 5, 6), None, {}),
    ("q3-k2", (2, 4, 8), (5, 8), (5, 6), None, {}),
    ("bool-full", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), lambda r: _bool(r, (2, 3, 4, 5)), {}),
    ("bool-2d-broadcast", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), lambda r: _bool(r, (4, 5)), {}),
    ("bool-key-padding", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), lambda r: _bool(r, (2, 1, 1, 5)), {}),
    ("bool-1d", (2, 4, 8), (2, 5, 8), (2, 5, 6), lambda r: _bool(r, (5,), 0.9), {}),
    ("bool-dead-rows", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), _dead_rows, {}),
    ("float-full", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), lambda r: _float_mask(r, (2, 3, 4, 5)), {}),
    ("float-broadcast", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), lambda r: _float_mask(r, (1, 3, 1, 5)), {}),
    ("float-inf-rows", (2, 4, 8), (2, 5, 8), (2, 5, 6), lambda r: _float_mask(r, (4, 5), inf_rows=(0, 2)), {}),
    ("causal-square", (2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 4), None, {"is_causal": True}),
    ("causal-L<S", (2, 3, 8), (2, 6, 8), (2, 6, 4), None, {"is_causal": True}),
    ("causal-L>S", (2, 6, 8), (2, 3, 8), (2, 3, 4), None, {"is_causal": True}),
    ("scale", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), None, {"scale": 0.37}),
    ("scale-negative", (2, 4, 8), (2, 5, 8), (2, 5, 6), None, {"scale": -1.3}),
    ("gqa", (2, 6, 4, 8), (2, 2, 5, 8), (2, 2, 5, 6), None, {"enable_gqa": True}),
    ("gqa-3d-kv-differ", (6, 4, 8), (2, 5, 8), (3, 5, 6), None, {"enable_gqa": True}),
    ("gqa-causal", (1, 4, 5, 8), (1, 1, 5, 8), (1, 1, 5, 8), None, {"enable_gqa": True, "is_causal": True}),
    ("gqa-same-heads", (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), None, {"enable_gqa": True}),
    ("empty-keys", (2, 3, 8), (2, 0, 8), (2, 0, 4), None, {}),
    ("empty-embedding", (2, 3, 0), (2, 4, 0), (2, 4, 5), None, {}),
    ("dropout-one", (2, 3, 8), (2, 4, 8), (2, 4, 5), None, {"dropout_p": 1.0}),
    ("dropout-negative", (2, 3, 8), (2, 4, 8), (2, 4, 5), None, {"dropout_p": -0.5}),
]


def _inputs(rng, qs, ks, vs, make_mask):
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in (qs, ks, vs))
    return q, k, v, (None if make_mask is None else make_mask(rng))


@pytest.mark.parametrize("qs,ks,vs,make_mask,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch_outputs_and_gradients(rng, qs, ks, vs, make_mask, kwargs):
    q, k, v, mask = _inputs(rng, qs, ks, vs, make_mask)
    tmask = None if mask is None else torch.from_numpy(mask)
    qt, kt, vt = (to_torch(a, requires_grad=True) for a in (q, k, v))
    want = TF.scaled_dot_product_attention(qt, kt, vt, tmask, **kwargs)

    def f(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, None if mask is None else jnp.asarray(mask), **kwargs)

    got, vjp = jax.vjp(jax.jit(f), *(jnp.asarray(a) for a in (q, k, v)))
    assert got.dtype == jnp.float32
    # each output sums S products of E-term dot products: float32 rounding, 1e-5 relative
    assert_close(got, to_numpy(want), rtol=1e-5, atol=1e-6)
    if mask is not None and mask.dtype == bool and not mask.all(axis=-1).all():
        dead = ~mask.any(axis=-1)
        if dead.any():  # rows that may attend to nothing are exactly 0, as torch's
            np.testing.assert_array_equal(np.asarray(got)[..., np.broadcast_to(dead, got.shape[:-1]), :], 0.0)
    cot = rng.standard_normal(got.shape).astype(np.float32)
    want.backward(torch.from_numpy(cot))
    grads = vjp(jnp.asarray(cot))
    for name, g, t in zip("qkv", grads, (qt, kt, vt), strict=True):
        tg = t.grad if t.grad is not None else torch.zeros_like(t)
        assert np.isfinite(np.asarray(g)).all(), name
        assert_close(g, to_numpy(tg), rtol=2e-5, atol=2e-6, what=f"d{name}")


def test_fully_masked_rows_are_zero_where_other_implementations_differ():
    q = k = v = jnp.asarray(np.random.default_rng(0).standard_normal((1, 3, 4)), jnp.float32)
    mask = jnp.asarray([[True, True, False], [False, False, False], [True, False, True]])
    want = TF.scaled_dot_product_attention(*(torch.tensor(np.asarray(a)) for a in (q, k, v)),
                                           torch.tensor(np.asarray(mask)))
    got = F.scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_array_equal(np.asarray(got)[0, 1], 0.0)
    np.testing.assert_array_equal(want.numpy()[0, 1], 0.0)
    s = jnp.where(mask, q @ k.swapaxes(-1, -2) / 2.0, -jnp.inf)
    assert np.isnan(np.asarray(jax.nn.softmax(s, -1) @ v)[0, 1]).all()  # a naive softmax: nan
    flax_layout = lambda a: a[:, :, None, :]  # noqa: E731 - (B, T, heads, H)
    jax_out = jax.nn.dot_product_attention(flax_layout(q), flax_layout(k), flax_layout(v), mask=mask[None, None])
    np.testing.assert_allclose(np.asarray(jax_out)[0, 1, 0], np.asarray(v).mean(axis=1)[0], rtol=1e-6)  # mean of v


def _reference64(q, k, v, mask, kwargs):
    """torch in float64 on the widened inputs: the exact answer the half-precision results round."""
    t64 = [torch.from_numpy(np.asarray(a, np.float64)).requires_grad_(True) for a in (q, k, v)]
    m = None if mask is None else torch.from_numpy(mask if mask.dtype == bool else mask.astype(np.float64))
    return t64, TF.scaled_dot_product_attention(*t64, m, **kwargs)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape,masked,kwargs", [
    ((2, 2, 16, 32), False, {}),  # 4-D: torch's fused CPU kernel
    ((2, 16, 32), True, {}),  # 3-D with a mask: torch's reference kernel
    ((2, 2, 16, 32), True, {"is_causal": False}),
    ((2, 2, 16, 32), False, {"is_causal": True}),
])
def test_half_precision_against_float64(rng, dtype, shape, masked, kwargs):
    jdt = jnp.dtype(dtype)
    eps = float(jnp.finfo(jdt).eps)
    q, k, v = (np.asarray(jnp.asarray(rng.standard_normal(shape) * 2, jdt)) for _ in range(3))
    mask = _bool(rng, shape[:-2] + (shape[-2], shape[-2])) if masked else None
    t64, ref = _reference64(q, k, v, mask, kwargs)
    ref_np = ref.detach().numpy()
    got, vjp = jax.vjp(lambda *a: F.scaled_dot_product_attention(*a, None if mask is None else jnp.asarray(mask),
                                                                  **kwargs), *(jnp.asarray(a) for a in (q, k, v)))
    assert got.dtype == jdt
    vmax = float(np.abs(np.asarray(v, np.float32)).max())
    # jaxnn computes in float32 and rounds once: half an ulp of the result, plus float32 slop
    assert_close(got, ref_np, rtol=eps / 2 * 1.01, atol=1e-5 * vmax, what="jaxnn vs float64")
    # torch's fused kernel also rounds the attention weights P to the input dtype before P @ V:
    # |sum_j (round(P_j) - P_j) v_j| <= eps/2 * max|v|, and the result is rounded: eps/2 * |out|
    tq, tk, tv = (to_torch(a) for a in (q, k, v))
    tm = None if mask is None else torch.from_numpy(mask)
    want = to_numpy(TF.scaled_dot_product_attention(tq, tk, tv, tm, **kwargs))
    assert_close(want, ref_np, rtol=eps / 2 * 1.01, atol=eps / 2 * vmax * 1.01, what="torch vs float64")
    assert_close(got, want, rtol=eps, atol=eps / 2 * vmax * 1.02 + 1e-5 * vmax, what="jaxnn vs torch")
    # gradients: float32 computation rounded once, against the float64 gradients
    cot = np.asarray(jnp.asarray(rng.standard_normal(got.shape), jdt))
    ref.backward(torch.from_numpy(cot.astype(np.float64)))
    for name, g, t in zip("qkv", vjp(jnp.asarray(cot)), t64, strict=True):
        assert g.dtype == jdt
        gref = t.grad.numpy()
        assert_close(g, gref, rtol=eps / 2 * 1.01, atol=1e-5 * float(np.abs(gref).max()), what=f"d{name}")


def test_float32_mask_with_half_query_is_added_in_float32(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((2, 4, 8)), jnp.bfloat16) for _ in range(3))
    mask = rng.standard_normal((4, 4)).astype(np.float32) * 3
    t = [to_torch(np.asarray(a)) for a in (q, k, v)]
    want = to_numpy(TF.scaled_dot_product_attention(*t, torch.from_numpy(mask)))
    got = F.scaled_dot_product_attention(q, k, v, jnp.asarray(mask))
    assert got.dtype == jnp.bfloat16
    eps = float(jnp.finfo(jnp.bfloat16).eps)
    assert_close(got, want, rtol=eps, atol=eps * float(np.abs(np.asarray(v, np.float32)).max()))


@settings(max_examples=8)
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    L=st.integers(1, 6), S=st.integers(1, 6), E=st.integers(1, 8), Ev=st.integers(1, 5),
    mask_kind=st.sampled_from([None, "bool", "float", "causal"]),
    scale=st.one_of(st.none(), st.floats(0.05, 2.0)),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes_match_torch(batch, L, S, E, Ev, mask_kind, scale, seed):
    r = np.random.default_rng(seed)
    b = tuple(batch)
    q, k, v = (r.standard_normal(b + s).astype(np.float32) for s in ((L, E), (S, E), (S, Ev)))
    mask = None
    if mask_kind == "bool":
        mask = r.random((L, S)) < 0.6
    elif mask_kind == "float":
        mask = r.standard_normal((L, S)).astype(np.float32)
    kwargs = {"is_causal": mask_kind == "causal", "scale": scale}
    want = TF.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)),
                                           None if mask is None else torch.from_numpy(mask), **kwargs)
    got = F.scaled_dot_product_attention(q, k, v, mask, **kwargs)
    assert_close(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_jit_and_vmap_over_unbatched_calls(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((3, 2, 4, 8)), jnp.float32) for _ in range(3))
    mask = jnp.asarray(_bool(rng, (4, 4)))
    f = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask)  # noqa: E731
    batched = f(q, k, v)
    assert_close(jax.vmap(f)(q, k, v), batched, rtol=1e-6, atol=1e-6)
    assert_close(jax.jit(jax.vmap(jax.vmap(f)))(q, k, v), batched, rtol=1e-6, atol=1e-6)
    g = jax.jit(F.scaled_dot_product_attention, static_argnames=("is_causal", "scale", "enable_gqa"))
    want = TF.scaled_dot_product_attention(*(torch.tensor(np.asarray(a)) for a in (q, k, v)), is_causal=True)
    assert_close(g(q, k, v, is_causal=True), want.numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_on_the_weights(rng):
    q, k, v = (jnp.asarray(rng.standard_normal((2, 64, 16)), jnp.float32) for _ in range(3))
    p = 0.25
    plain = F.scaled_dot_product_attention(q, k, jnp.eye(64, dtype=jnp.float32)[None].repeat(2, 0))
    dropped = F.scaled_dot_product_attention(q, k, jnp.eye(64, dtype=jnp.float32)[None].repeat(2, 0), dropout_p=p,
                                             rng=jax.random.key(0))
    # with value = identity the output is the (dropped) weights themselves
    kept = np.asarray(dropped) != 0
    assert abs(kept.mean() - (1 - p)) < 0.02
    np.testing.assert_allclose(np.asarray(dropped)[kept], (np.asarray(plain) * np.float32(1 / np.float32(0.75)))[kept],
                               rtol=1e-6)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=jax.random.key(1))
    np.testing.assert_array_equal(a, F.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=jax.random.key(1)))
    with pytest.raises(ValueError, match="needs a PRNG key"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=p)


def _r(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


ERRORS = [
    ("rank-1", (_r(4), _r(4), _r(4)), {}, ValueError, "at least 2 dimensional"),
    ("batch-mismatch", (_r(2, 3, 4), _r(3, 5, 4), _r(3, 5, 6)), {}, ValueError, "must broadcast"),
    ("E-mismatch", (_r(2, 3, 4), _r(2, 5, 3), _r(2, 5, 6)), {}, ValueError, "last dimension"),
    ("S-mismatch", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 6, 6)), {}, ValueError, "as many positions"),
    ("dtype-mismatch", (_r(2, 3, 4), _r(2, 5, 4).astype(ml_dtypes.bfloat16), _r(2, 5, 6)), {}, TypeError,
     "same dtype"),
    ("int-inputs", (np.ones((2, 3, 4), np.int32),) * 3, {}, TypeError, "floating dtype"),
    ("mask-int", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6), np.ones((3, 5), np.int32)), {}, TypeError,
     "attn_mask dtype"),
    ("mask-bf16-f32-query", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6), np.ones((3, 5), ml_dtypes.bfloat16)), {},
     TypeError, "attn_mask dtype"),
    ("mask-shape", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6), np.ones((4, 5), bool)), {}, ValueError, "must broadcast"),
    ("mask-enlarges", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6), np.ones((7, 2, 3, 5), bool)), {}, ValueError,
     "must broadcast"),
    ("causal-and-mask", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6), np.ones((3, 5), bool)), {"is_causal": True},
     ValueError, "Explicit attn_mask should not be set when is_causal=True"),
    ("gqa-no-divide", (_r(2, 6, 3, 4), _r(2, 4, 5, 4), _r(2, 4, 5, 6)), {"enable_gqa": True}, ValueError,
     "must divide the number of heads"),
    ("gqa-2d", (_r(3, 4), _r(5, 4), _r(5, 6)), {"enable_gqa": True}, ValueError, "heads dimension"),
    ("heads-without-gqa", (_r(2, 6, 3, 4), _r(2, 2, 5, 4), _r(2, 2, 5, 6)), {}, ValueError, "must broadcast"),
    ("dropout-above-one", (_r(2, 3, 4), _r(2, 5, 4), _r(2, 5, 6)), {"dropout_p": 1.5}, ValueError,
     "dropout probability has to be between 0 and 1"),
]


@pytest.mark.parametrize("args,kwargs,exc,fragment", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_match_torch(args, kwargs, exc, fragment):
    with pytest.raises((RuntimeError, IndexError)):
        TF.scaled_dot_product_attention(*(to_torch(a) if a.dtype != np.int32 else torch.from_numpy(a).long()
                                          for a in args), **kwargs)
    with pytest.raises(exc, match=fragment):
        F.scaled_dot_product_attention(*(jnp.asarray(a) for a in args), **kwargs)


def test_scale_and_enable_gqa_are_keyword_only_as_in_torch():
    q = _r(2, 3, 4)
    with pytest.raises(TypeError):
        TF.scaled_dot_product_attention(*(torch.from_numpy(q),) * 3, None, 0.0, False, 0.5)
    with pytest.raises(TypeError):
        F.scaled_dot_product_attention(q, q, q, None, 0.0, False, 0.5)  # type: ignore[misc]


# --- nn.MultiheadAttention ------------------------------------------------------------------------------

import flax.linen as nn  # noqa: E402
from flax import nnx  # noqa: E402

import jaxnn.linen as jl  # noqa: E402
import jaxnn.nnx as jn  # noqa: E402

# (id, constructor args, kwargs, (L, S, N) or (L, S) unbatched, forward keyword arguments as makers)
MHA_CASES = [
    ("self", (8, 2), {}, (5, 5, 3), {}),
    ("batch-first-no-bias", (8, 4), {"bias": False, "batch_first": True}, (4, 6, 2), {}),
    ("kdim-vdim", (8, 2), {"kdim": 5, "vdim": 3}, (4, 6, 2), {}),
    ("bias-kv-zero-attn", (8, 2), {"add_bias_kv": True, "add_zero_attn": True}, (4, 6, 2), {}),
    ("unbatched", (6, 3), {}, (4, 5), {}),
    ("kpm-bool", (8, 2), {}, (4, 6, 3), {"key_padding_mask": "kpm_bool"}),
    ("attn-bool-per-weights", (8, 2), {}, (4, 6, 3),
     {"attn_mask": "attn_bool", "average_attn_weights": False}),
    ("attn-float-3d-kpm-float", (8, 2), {"add_bias_kv": True}, (4, 6, 3),
     {"attn_mask": "attn_float3", "key_padding_mask": "kpm_float"}),
    ("no-weights-masks", (8, 2), {"add_zero_attn": True}, (4, 6, 3),
     {"need_weights": False, "attn_mask": "attn_bool", "key_padding_mask": "kpm_bool"}),
    ("causal-hint", (8, 2), {}, (5, 5, 2), {"need_weights": False, "attn_mask": "causal", "is_causal": True}),
    ("causal-with-weights", (8, 2), {"batch_first": True}, (5, 5, 2), {"attn_mask": "causal", "is_causal": True}),
]


def _mha_masks(r, L, S, N, H, name):
    if name == "kpm_bool":
        m = r.random((N, S)) < 0.3
        m[:, 0] = False  # every row keeps a key
        return m
    if name == "kpm_float":
        return r.standard_normal((N, S)).astype(np.float32)
    if name == "attn_bool":
        m = r.random((L, S)) < 0.3
        m[:, 0] = False
        return m
    if name == "attn_float3":
        return r.standard_normal((N * H, L, S)).astype(np.float32)
    if name == "causal":
        return ~np.tril(np.ones((L, S), bool))
    raise AssertionError(name)


@pytest.mark.parametrize("args,kwargs,dims,fwd", [c[1:] for c in MHA_CASES], ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_torch(rng, args, kwargs, dims, fwd):
    E, H = args
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(*args, **kwargs)
    with torch.no_grad():  # non-zero biases
        for p in t.parameters():
            p.add_(torch.rand_like(p) * 0.2 - 0.1)
    t.eval()
    sd = t.state_dict()
    m = jn.MultiheadAttention(*args, **kwargs, rngs=nnx.Rngs(0))
    assert list(jn.state_dict(m)) == list(sd) or set(jn.state_dict(m)) == set(sd)
    assert jn.load_state_dict(m, sd) == jn.LoadResult([], [])
    m.eval()
    L, S = dims[:2]
    batched = len(dims) == 3
    N = dims[2] if batched else 1
    kd, vd = kwargs.get("kdim", E), kwargs.get("vdim", E)

    def shape(n, d):
        if not batched:
            return (n, d)
        return (N, n, d) if kwargs.get("batch_first") else (n, N, d)

    q = rng.standard_normal(shape(L, E)).astype(np.float32)
    k = q if "self" in str(dims) else rng.standard_normal(shape(S, kd)).astype(np.float32)
    v = rng.standard_normal(shape(S, vd)).astype(np.float32)
    extra = {name: (_mha_masks(rng, L, S, N, H, val) if isinstance(val, str) else val) for name, val in fwd.items()}
    if not batched and "key_padding_mask" in extra:
        extra["key_padding_mask"] = extra["key_padding_mask"][0]
    qt, kt, vt = (to_torch(a, requires_grad=True) for a in (q, k, v))
    t_extra = {n: torch.from_numpy(x) if isinstance(x, np.ndarray) else x for n, x in extra.items()}
    t_out, t_w = t(qt, kt, vt, **t_extra)
    j_extra = {n: jnp.asarray(x) if isinstance(x, np.ndarray) else x for n, x in extra.items()}

    def f(q, k, v):
        return m(q, k, v, **j_extra)

    (out, w), vjp = jax.vjp(f, *(jnp.asarray(a) for a in (q, k, v)))
    assert_close(out, to_numpy(t_out), rtol=1e-5, atol=1e-5, what="output")
    if t_w is None:
        assert w is None
    else:
        assert_close(w, to_numpy(t_w), rtol=1e-5, atol=1e-6, what="weights")
    cot = rng.standard_normal(out.shape).astype(np.float32)
    t_out.backward(torch.from_numpy(cot))
    grads = vjp((jnp.asarray(cot), None if w is None else jnp.zeros_like(w)))
    for name, g, ti in zip("qkv", grads, (qt, kt, vt), strict=True):
        assert_close(g, to_numpy(ti.grad), rtol=2e-5, atol=2e-5, what=f"d{name}")
    if not kwargs.get("add_bias_kv") and fwd.get("need_weights", True) is not False:
        return  # linen (below) on the cases with bias_k/bias_v or without weights: it shares all the rest
    # linen: same variables from torch's state_dict, same numbers as nnx bit for bit
    lm = jl.MultiheadAttention(*args, **kwargs)
    variables = lm.init(jax.random.key(0), jnp.asarray(q), jnp.asarray(k), jnp.asarray(v))
    assert set(jl.state_dict(variables)) == set(sd)
    variables, result = jl.load_state_dict(variables, sd)
    assert result == jl.LoadResult([], [])
    l_out, l_w = lm.apply(variables, jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), deterministic=True, **j_extra)
    np.testing.assert_array_equal(l_out, out)
    if w is not None:
        np.testing.assert_array_equal(l_w, w)


@pytest.mark.parametrize("kwargs", [{}, {"kdim": 5, "vdim": 3, "add_bias_kv": True}, {"bias": False}])
def test_multihead_attention_parameters_and_init_are_torchs(kwargs):
    E, H = 64, 4
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(E, H, **kwargs)
    want = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    m = jn.MultiheadAttention(E, H, **kwargs, rngs=nnx.Rngs(0))
    lm = jl.MultiheadAttention(E, H, **kwargs)
    x = jnp.ones((2, 1, E))
    kv = (jnp.ones((3, 1, kwargs.get("kdim", E))), jnp.ones((3, 1, kwargs.get("vdim", E))))
    for got in (jn.state_dict(m), jl.state_dict(lm.init(jax.random.key(0), x, *kv))):
        assert set(got) == set(want)
        for name, w in want.items():
            g = np.asarray(got[name])
            assert g.shape == w.shape and g.dtype == w.dtype, name
            if name.endswith("bias") and "bias_" not in name:
                np.testing.assert_array_equal(g, 0.0)  # zero biases (in_proj_bias, out_proj.bias)
            elif name == "out_proj.weight":  # Linear's default: U(+-1/sqrt(E))
                assert np.abs(g).max() <= 1 / np.sqrt(E) and np.abs(w).max() <= 1 / np.sqrt(E)
                assert abs(g.std() - w.std()) < 0.15 * w.std()
            else:  # xavier uniform / normal: same spread as torch's draw
                assert abs(g.std() - w.std()) < 0.15 * w.std(), name
                if "proj_weight" in name:
                    bound = np.sqrt(6 / sum(w.shape))
                    assert np.abs(g).max() <= bound and np.abs(w).max() <= bound


def test_multihead_attention_dropout_and_train_eval(rng):
    m = jn.MultiheadAttention(8, 2, dropout=0.5, rngs=nnx.Rngs(0, dropout=1))
    x = jnp.asarray(rng.standard_normal((6, 2, 8)), jnp.float32)
    a, wa = m(x, x, x)
    b, _ = m(x, x, x)
    assert not np.array_equal(a, b) and np.any(np.asarray(wa) == 0) is not None
    m.eval()
    c, wc = m(x, x, x)
    np.testing.assert_allclose(np.asarray(wc).sum(-1), 1.0, rtol=1e-5)
    lm = jl.MultiheadAttention(8, 2, dropout=0.5)
    v = lm.init(jax.random.key(0), x, x, x)
    out1, _ = lm.apply(v, x, x, x, rngs={"dropout": jax.random.key(1)})
    out2, _ = lm.apply(v, x, x, x, deterministic=True)
    assert not np.array_equal(out1, out2)
    with pytest.raises(ValueError, match="`dropout` stream"):
        jn.MultiheadAttention(8, 2, dropout=0.5, rngs=nnx.Rngs(params=0))(x, x, x)


MHA_ERRORS = [
    (lambda: jn.MultiheadAttention(6, 4, rngs=nnx.Rngs(0)), lambda: torch.nn.MultiheadAttention(6, 4),
     "divisible by `num_heads`"),
    (lambda: jn.MultiheadAttention(0, 1, rngs=nnx.Rngs(0)), lambda: torch.nn.MultiheadAttention(0, 1),
     "must be greater than 0"),
    (lambda: jn.MultiheadAttention(4, 2, rngs=nnx.Rngs(0))(jnp.ones((3, 2, 4)), jnp.ones((3, 2, 4)),
                                                          jnp.ones((3, 2, 4)), attn_mask=jnp.ones((2, 3), bool)),
     lambda: torch.nn.MultiheadAttention(4, 2)(torch.ones(3, 2, 4), torch.ones(3, 2, 4), torch.ones(3, 2, 4),
                                               attn_mask=torch.ones(2, 3, dtype=torch.bool)),
     "shape of the 2D attn_mask"),
    (lambda: jn.MultiheadAttention(4, 2, rngs=nnx.Rngs(0))(jnp.ones((3, 2, 4)), jnp.ones((3, 2, 4)),
                                                          jnp.ones((3, 2, 4)), is_causal=True),
     lambda: torch.nn.MultiheadAttention(4, 2)(torch.ones(3, 2, 4), torch.ones(3, 2, 4), torch.ones(3, 2, 4),
                                               is_causal=True),
     "Need attn_mask if specifying the is_causal hint"),
    (lambda: jn.MultiheadAttention(4, 2, rngs=nnx.Rngs(0))(jnp.ones((3, 2, 4)), jnp.ones((3, 2, 4)),
                                                          jnp.ones((3, 2, 4)), key_padding_mask=jnp.ones((3, 2))),
     lambda: torch.nn.MultiheadAttention(4, 2)(torch.ones(3, 2, 4), torch.ones(3, 2, 4), torch.ones(3, 2, 4),
                                               key_padding_mask=torch.ones(3, 2)),
     "key_padding_mask shape"),
]


@pytest.mark.parametrize("ours,theirs,fragment", MHA_ERRORS)
def test_multihead_attention_errors_match_torch(ours, theirs, fragment):
    with pytest.raises((RuntimeError, AssertionError, ValueError)):
        theirs()
    with pytest.raises(ValueError, match=fragment):
        ours()


def test_multihead_attention_linen_is_a_linen_module():
    assert issubclass(jl.MultiheadAttention, nn.Module)
