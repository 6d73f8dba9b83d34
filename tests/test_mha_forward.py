"""F.multi_head_attention_forward against torch's (outputs, weights, vjp gradients for every array
argument, masks, bias_k/v, add_zero_attn, separate projections, static k/v, unbatched), its errors,
and nn.MultiheadAttention in float16/bfloat16 against torch's CPU half op sequence."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f, assert_close

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

TF = torch.nn.functional
E, H, L, S, N = 8, 2, 3, 4, 2

# (id, options): options drive _inputs below.
CASES = [
    ("plain", {}),
    ("no-bias", {"no_in_bias": True, "no_out_bias": True}),
    ("bias-kv", {"bias_kv": True}),
    ("zero-attn", {"add_zero_attn": True}),
    ("bias-kv-zero-attn-masks", {"bias_kv": True, "add_zero_attn": True, "attn_mask": "bool2", "kpm": "bool"}),
    ("separate", {"separate": True}),
    ("separate-kdim-vdim", {"separate": True, "kdim": 5, "vdim": 3}),
    ("bool-mask-2d", {"attn_mask": "bool2"}),
    ("float-mask-3d", {"attn_mask": "float3"}),
    ("key-padding-float", {"kpm": "float"}),
    ("key-padding-bool-no-weights", {"kpm": "bool", "need_weights": False}),
    ("no-weights-mask", {"attn_mask": "float3", "need_weights": False}),
    ("per-head-weights", {"average_attn_weights": False, "attn_mask": "bool2"}),
    ("unbatched", {"unbatched": True, "kpm": "bool"}),
    ("unbatched-3d-mask", {"unbatched": True, "attn_mask": "float3"}),
    ("static-kv", {"static": True}),
    ("causal-hint", {"attn_mask": "causal", "is_causal": True, "need_weights": False}),
    ("causal-hint-with-weights", {"attn_mask": "causal", "is_causal": True}),
]


def _inputs(rng, o):
    kdim, vdim = o.get("kdim", E), o.get("vdim", E)
    n = 1 if o.get("unbatched") else N
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    a = {"query": r(L, n, E), "key": r(S, n, kdim), "value": r(S, n, vdim) if o.get("separate") else None}
    if a["value"] is None:
        a["value"] = r(S, n, kdim)
    a["in_proj_weight"] = None if o.get("separate") else r(3 * E, E) * 0.5
    a["in_proj_bias"] = None if o.get("no_in_bias") else r(3 * E)
    a["bias_k"] = r(1, 1, E) if o.get("bias_kv") else None
    a["bias_v"] = r(1, 1, E) if o.get("bias_kv") else None
    a["out_proj_weight"] = r(E, E) * 0.5
    a["out_proj_bias"] = None if o.get("no_out_bias") else r(E)
    if o.get("separate"):
        a["q_proj_weight"], a["k_proj_weight"], a["v_proj_weight"] = r(E, E), r(E, kdim), r(E, vdim)
    if o.get("static"):
        a["static_k"], a["static_v"] = r(n * H, S + 1, E // H), r(n * H, S + 1, E // H)
    src = S + 1 if o.get("static") else S
    mask = o.get("attn_mask")
    if mask == "bool2":
        m = rng.random((L, S)) < 0.3
        m[:, 0] = False  # every row keeps a key
        a["attn_mask"] = m
    elif mask == "float3":
        a["attn_mask"] = r(n * H, L, src)
    elif mask == "causal":
        a["attn_mask"] = ~np.tril(np.ones((L, S), bool))
    kpm = o.get("kpm")
    if kpm is not None:
        m = rng.random((n, src)) < 0.3
        m[:, 0] = False
        a["key_padding_mask"] = m if kpm == "bool" else np.where(m, -3.0, 0.5).astype(np.float32)
    if o.get("unbatched"):
        for k in ("query", "key", "value"):
            a[k] = a[k][:, 0]
        if "key_padding_mask" in a:
            a["key_padding_mask"] = a["key_padding_mask"][0]
    return a


DIFF = ("query", "key", "value", "in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj_weight",
        "out_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "static_k", "static_v")
POSITIONAL = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
              "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias")


def _call(fn, arrays, o, to):
    kw = {k: to(v) for k, v in arrays.items() if v is not None}
    full = {"embed_dim_to_check": E, "num_heads": H, "add_zero_attn": o.get("add_zero_attn", False),
            "dropout_p": 0.0, **{k: None for k in POSITIONAL if k in DIFF}, **kw}
    pos = [full.pop(k) for k in POSITIONAL]
    extra = {k: o[k] for k in ("need_weights", "average_attn_weights", "is_causal") if k in o}
    if o.get("separate"):
        extra["use_separate_proj_weight"] = True
    return fn(*pos, **full, **extra)


@pytest.mark.parametrize("case,o", CASES, ids=[c for c, _ in CASES])
def test_matches_torch_outputs_weights_and_gradients(rng, case, o):
    arrays = _inputs(rng, o)
    diff = [k for k in DIFF if arrays.get(k) is not None]
    masks = {k: v for k, v in arrays.items() if k not in diff}
    t_in = {k: torch.tensor(v, requires_grad=k in diff) for k, v in arrays.items() if v is not None}
    t_out, t_w = _call(TF.multi_head_attention_forward, {**{k: None for k in arrays}, **t_in}, o, lambda x: x)

    def ours(*xs):
        return _call(F.multi_head_attention_forward, {**masks, **dict(zip(diff, xs, strict=True))}, o, jnp.asarray)

    (out, w), vjp = jax.vjp(jax.jit(ours), *[jnp.asarray(arrays[k]) for k in diff])
    assert_close(out, t_out.detach().numpy(), rtol=1e-5, atol=1e-6, what="output")
    if t_w is None:
        assert w is None
    else:
        assert_close(w, t_w.detach().numpy(), rtol=1e-5, atol=1e-6, what="weights")
    cot = rng.standard_normal(out.shape).astype(np.float32)
    t_out.backward(torch.tensor(cot))
    grads = vjp((jnp.asarray(cot), None if w is None else jnp.zeros_like(w)))
    for k, g in zip(diff, grads, strict=True):  # None in torch: unused (key/value with static_k/static_v)
        tg = t_in[k].grad.numpy() if t_in[k].grad is not None else np.zeros(t_in[k].shape, np.float32)
        assert_close(g, tg, rtol=1e-4, atol=1e-5, what=f"gradient of {k}")


def test_dropout_on_the_weights_uses_rng_and_training(rng):
    o = {}
    a = _inputs(rng, o)
    args = [jnp.asarray(a[k]) if isinstance(a.get(k), np.ndarray) else a.get(k) for k in POSITIONAL[:3]]
    common = dict(embed_dim_to_check=E, num_heads=H, in_proj_weight=jnp.asarray(a["in_proj_weight"]),
                  in_proj_bias=None, bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.5,
                  out_proj_weight=jnp.eye(E), out_proj_bias=None)
    _, w = F.multi_head_attention_forward(*args, **common, average_attn_weights=False, rng=jax.random.key(0))
    _, w_eval = F.multi_head_attention_forward(*args, **common, training=False, average_attn_weights=False)
    w, w_eval = np.asarray(w), np.asarray(w_eval)
    kept = w != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(w[kept], 2 * w_eval[kept], rtol=1e-6)  # kept weights scaled by 1/(1-p)
    with pytest.raises(ValueError, match="PRNG key"):
        F.multi_head_attention_forward(*args, **common)


ERRORS = [
    ("embed-check", {"embed_dim_to_check": 6}, "was expecting embedding dimension of 6, but got 8"),
    ("heads", {"num_heads": 3}, "embed_dim 8 not divisible by num_heads 3"),
    ("kv-shape", {"value": np.ones((S + 1, N, E), np.float32)}, "does not match value shape"),
    ("no-in-proj", {"in_proj_weight": None}, "in_proj_weight"),
    ("lone-bias-k", {"bias_k": np.ones((1, 1, E), np.float32)}, "bias_k is set but bias_v is None"),
    ("separate-missing", {"use_separate_proj_weight": True}, "use_separate_proj_weight is True but"),
    ("mask-2d-shape", {"attn_mask": np.zeros((L, S + 1), bool)}, "The shape of the 2D attn_mask is"),
    ("mask-3d-shape", {"attn_mask": np.zeros((H, L, S), np.float32)}, "The shape of the 3D attn_mask is"),
    ("causal-no-mask", {"is_causal": True}, "Need attn_mask if specifying the is_causal hint"),
    ("kpm-shape", {"key_padding_mask": np.zeros((N, S + 1), bool)},
     "Expected key_padded_mask.shape\\[1\\] to be 4, but got 5"),
    ("kpm-shape-zero-attn", {"key_padding_mask": np.zeros((N + 1, S), bool), "add_zero_attn": True},
     "Expected key_padded_mask.shape\\[0\\] to be 2, but got 3"),
    ("kpm-shape-bias-kv", {"key_padding_mask": np.zeros((N, S - 1), bool), "bias_k": np.ones((1, 1, E), np.float32),
                           "bias_v": np.ones((1, 1, E), np.float32), "add_zero_attn": True},
     "Expected key_padded_mask.shape\\[1\\] to be 6, but got 5"),
    ("key-rank", {"key": np.ones((S, E), np.float32)}, "expected `key` and `value` to be 3-D"),
    ("static-size", {"static_k": np.ones((N * H + 1, S, E // H), np.float32)}, "static_k.size\\(0\\) of 4"),
    ("static-bias", {"static_k": np.ones((N * H, S, E // H), np.float32), "bias_k": np.ones((1, 1, E), np.float32),
                     "bias_v": np.ones((1, 1, E), np.float32)}, "bias cannot be added to static key"),
]


@pytest.mark.parametrize("case,change,fragment", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch(rng, case, change, fragment):
    base = {"query": np.ones((L, N, E), np.float32), "key": np.ones((S, N, E), np.float32),
            "value": np.ones((S, N, E), np.float32), "embed_dim_to_check": E, "num_heads": H,
            "in_proj_weight": np.ones((3 * E, E), np.float32), "in_proj_bias": None, "bias_k": None,
            "bias_v": None, "add_zero_attn": False, "dropout_p": 0.0,
            "out_proj_weight": np.ones((E, E), np.float32), "out_proj_bias": None, **change}

    def run(fn, to):
        kw = {k: to(v) if isinstance(v, np.ndarray) else v for k, v in base.items()}
        return fn(**kw)

    with pytest.raises((AssertionError, RuntimeError), match=fragment):
        run(TF.multi_head_attention_forward, torch.tensor)
    with pytest.raises(ValueError, match=fragment):
        run(F.multi_head_attention_forward, jnp.asarray)


def _mha_pair(training):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, H).train(training)
    jm = jn.MultiheadAttention(E, H, rngs=nnx.Rngs(0))
    jn.load_state_dict(jm, {k: v.numpy() for k, v in tm.state_dict().items()})
    jm.train() if training else jm.eval()
    return tm, jm


@pytest.mark.parametrize("training", [True, False])
def test_module_shape_errors_name_the_argument(training):
    """nn.MultiheadAttention's bad shapes that jaxnn used to let through to XLA (a broadcast error, a
    reshape TypeError, a ZeroDivisionError): torch raises, jaxnn raises a ValueError naming the
    argument and its shape; the neighbouring shapes torch accepts, jaxnn computes (same numbers)."""
    tm, jm = _mha_pair(training)
    rng = np.random.default_rng(7)
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    q, k = r(L, N, E), r(S, N, E)

    def both(args, kw, match):
        with pytest.raises((AssertionError, RuntimeError)):
            tm(*map(torch.tensor, args), **{a: torch.tensor(v) for a, v in kw.items()})
        with pytest.raises(ValueError, match=match):
            jm(*map(jnp.asarray, args), **{a: (jnp.asarray(v) if isinstance(v, np.ndarray) else v)
                                            for a, v in kw.items()})

    def same(args, kw):
        with torch.no_grad():
            t_out = tm(*map(torch.tensor, args), **{a: torch.tensor(v) for a, v in kw.items()})[0].numpy()
        j_out = jm(*map(jnp.asarray, args), **{a: (jnp.asarray(v) if isinstance(v, np.ndarray) else v)
                                               for a, v in kw.items()})[0]
        assert j_out.shape == t_out.shape
        assert_close(j_out, t_out, rtol=1e-5, atol=1e-6)

    # a 3-D key_padding_mask (e.g. (N, 1, S) or (N, L, S) meant as an attention mask)
    for shape in ((N, 1, S), (N, S, S)):
        both((q, k, k), {"key_padding_mask": np.zeros(shape, bool)},
             re.escape(f"expected `key_padding_mask` to be `None` or 2-D (N, S) = {(N, S)} (True = ignored key), "
                       f"but found a 3-D mask of shape {shape}"))
    # key/value of another batch size than query
    both((q, r(S, N + 1, E), r(S, N + 1, E)), {}, rf"`key` and `value` must have `query`'s batch size {N}, got {N + 1}")
    # empty batch / keys with a mask and need_weights=False: torch cannot reshape the empty mask
    for nb, s in ((0, S), (N, 0), (0, 0)):
        both((r(L, nb, E), r(s, nb, E), r(s, nb, E)), {"key_padding_mask": np.zeros((nb, s), bool),
                                                       "need_weights": False},
             rf"a mask \(`key_padding_mask` of shape \({nb}, {s}\)\) cannot be applied to an empty batch or key "
             rf"sequence \(N={nb}, S={s}\)")
    # what torch accepts: empty queries with the mask, empty inputs with weights or without a mask
    same((r(0, N, E), k, k), {"key_padding_mask": np.zeros((N, S), bool), "need_weights": False})
    same((r(L, 0, E), r(S, 0, E), r(S, 0, E)), {"key_padding_mask": np.zeros((0, S), bool)})
    same((r(L, 0, E), r(S, 0, E), r(S, 0, E)), {"need_weights": False})
    same((q, r(0, N, E), r(0, N, E)), {"need_weights": False})


def test_static_kv_allow_another_key_batch_like_torch(rng):
    """With static_k and static_v torch never reshapes `key`/`value`, so their batch size is not
    checked: jaxnn accepts the same call and gives torch's numbers."""
    o = {"static": True}
    a = _inputs(rng, o)
    a["key"] = a["value"] = rng.standard_normal((S, N + 1, E)).astype(np.float32)
    t_out, _ = _call(TF.multi_head_attention_forward, a, o, torch.tensor)
    j_out, _ = _call(F.multi_head_attention_forward, a, o, jnp.asarray)
    assert_close(j_out, t_out.numpy(), rtol=1e-5, atol=1e-6)
    a["static_v"] = None  # then torch reshapes `value`'s projection and fails
    with pytest.raises(RuntimeError):
        _call(TF.multi_head_attention_forward, a, o, torch.tensor)
    with pytest.raises(ValueError, match="`key` and `value` must have `query`'s batch size"):
        _call(F.multi_head_attention_forward, a, o, jnp.asarray)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), heads=st.sampled_from([1, 2, 4]), length=st.integers(1, 4),
       src=st.integers(1, 4), zero=st.booleans(), bias_kv=st.booleans())
def test_hypothesis_against_torch(seed, heads, length, src, zero, bias_kv):
    r = np.random.default_rng(seed)
    q, k, v = (r.standard_normal(s).astype(np.float32) for s in ((length, 2, E), (src, 2, E), (src, 2, E)))
    w_in, b_in, w_out = r.standard_normal((3 * E, E)), r.standard_normal(3 * E), r.standard_normal((E, E))
    bk, bv = r.standard_normal((1, 1, E)), r.standard_normal((1, 1, E))
    args = [q, k, v, E, heads, w_in.astype(np.float32), b_in.astype(np.float32),
            bk.astype(np.float32) if bias_kv else None, bv.astype(np.float32) if bias_kv else None, zero, 0.0,
            w_out.astype(np.float32), None]
    t_out, t_w = TF.multi_head_attention_forward(*[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    out, w = F.multi_head_attention_forward(*[jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args])
    assert_close(out, t_out.numpy(), rtol=1e-5, atol=1e-5)
    assert_close(w, t_w.numpy(), rtol=1e-5, atol=1e-6)


# --- nn.MultiheadAttention in float16 / bfloat16 --------------------------------------------------------


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_module_against_torch(rng, dtype, need_weights):
    """torch's CPU half MultiheadAttention in training mode (its python path, not the fused eval
    fast path) rounds to the half dtype after every op: the projections, q * scale, the scores
    (baddbmm), softmax, weights @ v, the output projection, as jaxnn does.

    need_weights=True: bit for bit. Each matmul multiplies half numbers, whose products are exact in
    float32, and sums at most E = 8 of them in float32 before the one rounding to half: the
    accumulation order (oneDNN's, XLA's) can only matter when the float32 sums straddle a half
    rounding boundary (odds ~2^-13 per element; these fixed inputs do not).

    need_weights=False: torch calls its CPU flash-attention kernel, which rounds the unnormalised
    probabilities exp(s - max) to half before multiplying by v (float32 accumulation) and divides
    by the float32 row sum at the end; jaxnn's scaled_dot_product_attention rounds once at the end.
    Each attention output then differs by at most ~1.5 eps * max|v| (a convex combination of v's
    rows), and the output projection adds up E of them: |diff| <= 2 eps * max_i sum_j |W_o[i, j]| *
    max|v| + eps * |out| (the last term for the final rounding)."""
    t = torch.nn.MultiheadAttention(E, H, bias=True, add_bias_kv=True).to(getattr(torch, dtype))
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, p.shape).astype(np.float32)).to(p.dtype))
    m = jn.MultiheadAttention(E, H, add_bias_kv=True, dtype=getattr(jnp, dtype), rngs=nnx.Rngs(0))
    lm = jl.MultiheadAttention(E, H, add_bias_kv=True, dtype=getattr(jnp, dtype))
    assert jn.load_state_dict(m, t.state_dict()) == jn.LoadResult([], [])
    x = jnp.asarray(rng.standard_normal((L, N, E)).astype(np.float32) * 2).astype(dtype)
    variables, _ = jl.load_state_dict(lm.init(jax.random.key(0), x, x, x), t.state_dict())
    xt = torch.tensor(as_f(x)).to(getattr(torch, dtype))
    t_out, t_w = t(xt, xt, xt, need_weights=need_weights)
    out, w = m(x, x, x, need_weights=need_weights)
    assert out.dtype == jnp.dtype(dtype) and t_out.dtype == getattr(torch, dtype)
    want = t_out.detach().float().numpy()
    if need_weights:
        np.testing.assert_array_equal(as_f(out), want)
        assert w.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(as_f(w), t_w.detach().float().numpy())
    else:
        assert w is None and t_w is None
        eps = float(jnp.finfo(dtype).eps)
        sd = {k: v.float().numpy() for k, v in t.state_dict().items()}
        v = as_f(x) @ sd["in_proj_weight"][2 * E :].T + sd["in_proj_bias"][2 * E :]
        v_max = max(np.abs(v).max(), np.abs(sd["bias_v"]).max())
        bound = 2 * eps * np.abs(sd["out_proj.weight"]).sum(1).max() * v_max + eps * np.abs(want)
        assert np.all(np.abs(as_f(out) - want) <= bound)
        assert np.mean(as_f(out) == want) > 0.2  # mostly the same numbers: the same op sequence up to there
    lout, lw = lm.apply(variables, x, x, x, need_weights=need_weights)
    np.testing.assert_array_equal(as_f(lout), as_f(out))  # nnx == linen, bit for bit
