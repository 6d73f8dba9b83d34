"""nn.TransformerEncoderLayer / DecoderLayer / Encoder / Decoder / Transformer twins against torch.

Every comparison loads torch's state_dict strictly into the jaxnn twin (nnx and linen), then
compares outputs and the gradients of the input and of every parameter (train mode, dropout 0),
and the eval-mode output under ``torch.no_grad()``, where torch takes its fused fast path and, in
TransformerEncoder, its nested-tensor path.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import adamw_losses, assert_close

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

E, H, FF = 8, 2, 16
OUT_TOL = {"rtol": 1e-5, "atol": 1e-5}
GRAD_TOL = {"rtol": 1e-4, "atol": 2e-5}
ACTS = {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"), "silu": (F.silu, TF.silu)}

pytestmark = pytest.mark.xdist_group("transformer")


def _quiet(fn, *args, **kwargs):
    """Call torch without its construction/prototype warnings (jaxnn's are tested on their own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _sd(t: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in t.state_dict().items()}


def _t(a, grad: bool = False):
    if a is None or isinstance(a, bool):
        return a
    t = torch.from_numpy(np.array(a))
    return t.requires_grad_(True) if grad else t


def _j(a):
    return a if a is None or isinstance(a, bool) else jnp.asarray(a)


class Twin:
    """A torch module and its jaxnn twin (nnx module, or linen module + variables), loaded strictly."""

    def __init__(self, front: str, t: torch.nn.Module, j, *init_args):
        self.front, self.t = front, t
        sd = _sd(t)
        if front == "nnx":
            jn.load_state_dict(j, sd)  # strict
            self.j = j
        else:
            variables = j.init(jax.random.key(0), *[_j(a) for a in init_args], deterministic=True)
            assert sorted(jl.state_dict(variables)) == sorted(sd)
            self.variables, _ = jl.load_state_dict(variables, sd)  # strict
            self.j = j

    def eval(self) -> None:
        self.t.eval()
        if self.front == "nnx":
            self.j.eval()

    def train(self) -> None:
        self.t.train()
        if self.front == "nnx":
            self.j.train()

    def jax_call(self, *args, training: bool = True, **kwargs):
        if self.front == "nnx":
            return self.j(*args, **kwargs)
        return self.j.apply(self.variables, *args, **kwargs, deterministic=not training)


def _compare_train(tw: Twin, args, kwargs, grad_args=(0,), seed=0):
    """Training-mode output and gradients (of ``args[i]`` for i in grad_args and all parameters)."""
    tw.train()
    targs = [_t(a, grad=i in grad_args) for i, a in enumerate(args)]
    tout = _quiet(tw.t, *targs, **{k: _t(v) for k, v in kwargs.items()})
    cot = np.random.default_rng(seed).standard_normal(tuple(tout.shape)).astype(np.float32)
    tout.backward(torch.from_numpy(cot))
    jargs = [jnp.asarray(a) for a in args]

    if tw.front == "nnx":
        def fn(*xs):
            full = list(jargs)
            for i, x in zip(grad_args, xs, strict=True):
                full[i] = x
            return full

        graphdef, params, rest = nnx.split(tw.j, nnx.Param, ...)

        def f(params, *xs):
            return nnx.merge(graphdef, params, rest)(*fn(*xs), **{k: _j(v) for k, v in kwargs.items()})

        out, vjp = jax.vjp(f, params, *[jargs[i] for i in grad_args])
        g = vjp(jnp.asarray(cot))
        pgrads = jn.state_dict(nnx.merge(graphdef, g[0], rest))
    else:
        def f(p, *xs):
            full = list(jargs)
            for i, x in zip(grad_args, xs, strict=True):
                full[i] = x
            return tw.j.apply({"params": p}, *full, **{k: _j(v) for k, v in kwargs.items()}, deterministic=False)

        out, vjp = jax.vjp(f, tw.variables["params"], *[jargs[i] for i in grad_args])
        g = vjp(jnp.asarray(cot))
        pgrads = jl.state_dict({"params": g[0]})
    assert_close(out, tout.detach().numpy(), **OUT_TOL)
    for n, i in enumerate(grad_args):
        assert_close(g[1 + n], targs[i].grad.numpy(), **GRAD_TOL, what=f"gradient of input {i}")
    tgrads = {k: p.grad for k, p in tw.t.named_parameters()}
    assert set(pgrads) == set(tgrads)
    for k, tg in tgrads.items():
        assert_close(pgrads[k], tg.numpy() if tg is not None else np.zeros_like(pgrads[k]), **GRAD_TOL,
                     what=f"gradient of {k}")
    tw.t.zero_grad()


def _compare_eval(tw: Twin, args, kwargs, *, fast_matters: bool | None = None):
    """Eval-mode output against torch's under no_grad (the fast path); ``fast_matters``: assert that
    torch's no_grad result does (True) or does not (False) differ from its autograd one."""
    tw.eval()
    targs = [_t(a) for a in args]
    tk = {k: _t(v) for k, v in kwargs.items()}
    with torch.no_grad():
        want = _quiet(tw.t, *targs, **tk).numpy()
    got = np.asarray(tw.jax_call(*[jnp.asarray(a) for a in args], training=False,
                                 **{k: _j(v) for k, v in kwargs.items()}))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert_close(np.nan_to_num(got), np.nan_to_num(want), **OUT_TOL)
    if fast_matters is not None:
        first = next(tw.t.parameters())
        first.requires_grad_(True)
        slow = _quiet(tw.t, *targs, **tk).detach().numpy()
        differs = not np.allclose(np.nan_to_num(slow, nan=1e9), np.nan_to_num(want, nan=1e9), rtol=0, atol=5e-6)
        assert differs == fast_matters
    tw.train()


# --- builders ---------------------------------------------------------------------------------------


def _enc_layer(front, bf=True, nf=False, act="relu", bias=True, dropout=0.0, seed=0):
    ja, ta = ACTS[act]
    torch.manual_seed(seed)
    t = torch.nn.TransformerEncoderLayer(E, H, FF, dropout, ta, batch_first=bf, norm_first=nf, bias=bias)
    if front == "nnx":
        j = jn.TransformerEncoderLayer(E, H, FF, dropout, ja, batch_first=bf, norm_first=nf, bias=bias,
                                       rngs=nnx.Rngs(seed))
    else:
        j = jl.TransformerEncoderLayer(E, H, FF, dropout, ja, batch_first=bf, norm_first=nf, bias=bias)
    return t, j


def _dec_layer(front, bf=True, nf=False, act="relu", bias=True, dropout=0.0, seed=0):
    ja, ta = ACTS[act]
    torch.manual_seed(seed)
    t = torch.nn.TransformerDecoderLayer(E, H, FF, dropout, ta, batch_first=bf, norm_first=nf, bias=bias)
    if front == "nnx":
        j = jn.TransformerDecoderLayer(E, H, FF, dropout, ja, batch_first=bf, norm_first=nf, bias=bias,
                                       rngs=nnx.Rngs(seed))
    else:
        j = jl.TransformerDecoderLayer(E, H, FF, dropout, ja, batch_first=bf, norm_first=nf, bias=bias)
    return t, j


def _x(rng, N, S, bf, unbatched=False):
    if unbatched:
        return rng.standard_normal((S, E)).astype(np.float32)
    return rng.standard_normal((N, S, E) if bf else (S, N, E)).astype(np.float32)


def _kpm(N, S, pads):
    m = np.zeros((N, S), bool)
    for i, p in enumerate(pads):
        if p:
            m[i, S - p:] = True
    return m


# --- encoder layer ----------------------------------------------------------------------------------


def _encoder_mask_cases(rng, N, S):
    causal = np.triu(np.full((S, S), -np.inf, np.float32), 1)
    return [
        {},
        {"src_key_padding_mask": _kpm(N, S, [0, 2, 1]), "src_mask": rng.random((S, S)) > 0.8},
        {"src_mask": causal, "is_causal": True},
        {"src_mask": rng.standard_normal((N * H, S, S)).astype(np.float32)},
    ]


NO_BIAS = {(False, False, "gelu"), (False, True, "silu"), (True, False, "relu"), (True, True, "gelu")}


@pytest.mark.parametrize("act", ["relu", "gelu", "silu"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(batch_first, norm_first, act):
    bias = (batch_first, norm_first, act) not in NO_BIAS
    rng = np.random.default_rng(0)
    N, S = 3, 5
    t, j = _enc_layer("nnx", batch_first, norm_first, act, bias)
    tw = Twin("nnx", t, j)
    x = _x(rng, N, S, batch_first)
    for kw in _encoder_mask_cases(rng, N, S):
        _compare_train(tw, [x], kw)
        _compare_eval(tw, [x], kw)


@settings(max_examples=10)
@given(bf=st.booleans(), nf=st.booleans(), act=st.sampled_from(["relu", "gelu"]), bias=st.booleans(),
       pads=st.lists(st.integers(0, 5), min_size=3, max_size=3), mask=st.sampled_from(["none", "bool", "float", "3d"]),
       seed=st.integers(0, 2**16))
def test_encoder_layer_matches_torch_hypothesis(bf, nf, act, bias, pads, mask, seed):
    """Random configurations and masks: training-mode output and gradients, eval output (fast path)."""
    rng = np.random.default_rng(seed)
    N, S = 3, 5
    t, j = _enc_layer("nnx", bf, nf, act, bias, seed=seed % 7)
    tw = Twin("nnx", t, j)
    x = _x(rng, N, S, bf)
    kw = {"src_key_padding_mask": _kpm(N, S, [min(p, S - 1) for p in pads])}
    if mask == "bool":
        kw["src_mask"] = rng.random((S, S)) > 0.7
    elif mask == "float":
        kw = {"src_mask": (rng.standard_normal((S, S)) * (rng.random((S, S)) > 0.5)).astype(np.float32)}
    elif mask == "3d":
        kw = {"src_mask": rng.standard_normal((N * H, S, S)).astype(np.float32)}
    _compare_train(tw, [x], kw)
    _compare_eval(tw, [x], kw)


@pytest.mark.parametrize("case", [(False, False, "relu", True), (True, True, "gelu", True),
                                  (True, False, "silu", False), (False, True, "relu", False)])
def test_encoder_layer_linen_matches_torch(case):
    bf, nf, act, bias = case
    rng = np.random.default_rng(1)
    N, S = 3, 5
    x = _x(rng, N, S, bf)
    t, j = _enc_layer("linen", bf, nf, act, bias)
    tw = Twin("linen", t, j, x)
    for kw in _encoder_mask_cases(rng, N, S)[:2]:
        _compare_train(tw, [x], kw)
        _compare_eval(tw, [x], kw)


def test_encoder_layer_unbatched_matches_torch():
    rng = np.random.default_rng(2)
    S = 5
    for front in ("nnx", "linen"):
        x = _x(rng, 1, S, True, unbatched=True)
        t, j = _enc_layer(front, True, False)
        tw = Twin(front, t, j, x)
        kw = {"src_key_padding_mask": np.array([False, False, False, True, True])}
        _compare_train(tw, [x], kw)
        _compare_eval(tw, [x], kw)


@pytest.mark.parametrize("front", ["nnx", "linen"])
def test_encoder_layer_fast_path_quirks(front):
    """torch's eval fast path under no_grad: float masks are booleans (non-zero = masked), a query
    with every key masked is nan, is_causal without a mask is ignored, the GELU module computes the
    exact gelu. jaxnn's eval mode returns the same, and each case is one where torch's no_grad
    result differs from its autograd one (so the test sees the fast path)."""
    rng = np.random.default_rng(3)
    N, S = 3, 5
    x = _x(rng, N, S, True)
    t, j = _enc_layer(front, True, False)
    tw = Twin(front, t, j, x)
    half = np.zeros((S, S), np.float32)
    half[0, 1] = half[2, 3] = 0.5
    _compare_eval(tw, [x], {"src_mask": half}, fast_matters=True)
    _compare_eval(tw, [x], {"src_key_padding_mask": _kpm(N, S, [S, 1, 0])}, fast_matters=True)
    both = {"src_mask": half, "src_key_padding_mask": np.where(_kpm(N, S, [0, 1, 0]), -1.0, 0.0).astype(np.float32)}
    _compare_eval(tw, [x], both, fast_matters=True)
    _compare_eval(tw, [x], {"src_key_padding_mask": _kpm(N, S, [0, 2, 0])}, fast_matters=False)
    # is_causal=True without a mask: torch's fast path ignores it; its regular path refuses it
    tw.eval()
    with torch.no_grad():
        want = tw.t(_t(x), is_causal=True).numpy()
    assert_close(tw.jax_call(jnp.asarray(x), is_causal=True, training=False), want, **OUT_TOL)
    tw.train()
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        tw.t(_t(x), is_causal=True)
    with pytest.raises(ValueError, match="Need attn_mask"):
        tw.jax_call(jnp.asarray(x), is_causal=True)


def test_encoder_layer_gelu_module_takes_exact_gelu_in_fast_path():
    """torch reads any nn.GELU instance as 'gelu' for the fast path (exact), even approximate='tanh'."""
    rng = np.random.default_rng(4)
    x = _x(rng, 3, 5, True)
    torch.manual_seed(0)
    t = torch.nn.TransformerEncoderLayer(E, H, FF, 0.0, torch.nn.GELU("tanh"), batch_first=True)
    j = jn.TransformerEncoderLayer(E, H, FF, 0.0, jn.GELU("tanh"), batch_first=True, rngs=nnx.Rngs(0))
    tw = Twin("nnx", t, j)
    _compare_train(tw, [x], {})
    _compare_eval(tw, [x], {}, fast_matters=True)


# --- decoder layer ----------------------------------------------------------------------------------


def _decoder_mask_cases(rng, N, T, S):
    tmask = np.triu(np.full((T, T), -np.inf, np.float32), 1)
    return [
        {},
        {"tgt_mask": tmask, "tgt_is_causal": True, "memory_key_padding_mask": _kpm(N, S, [0, 2, 1])},
        {"tgt_mask": rng.random((T, T)) > 0.7, "tgt_key_padding_mask": _kpm(N, T, [1, 0, 0]),
         "memory_mask": rng.standard_normal((N * H, T, S)).astype(np.float32)},
        {"tgt_key_padding_mask": _kpm(N, T, [T, 0, 1])},  # a fully masked query row
    ]


@pytest.mark.parametrize("front", ["nnx", "linen"])
@pytest.mark.parametrize("case", [(False, False, "relu", True), (True, False, "gelu", True), (True, True, "relu", True),
                                  (False, True, "silu", False), (True, False, "relu", False)])
def test_decoder_layer_matches_torch(front, case):
    bf, nf, act, bias = case
    rng = np.random.default_rng(5)
    N, T, S = 3, 4, 5
    tgt, mem = _x(rng, N, T, bf), _x(rng, N, S, bf)
    t, j = _dec_layer(front, bf, nf, act, bias)
    tw = Twin(front, t, j, tgt, mem)
    for n, kw in enumerate(_decoder_mask_cases(rng, N, T, S)):
        if n < 3:  # a fully masked row has no gradient to compare (torch's regular path: 0)
            _compare_train(tw, [tgt, mem], kw, grad_args=(0, 1))
        _compare_eval(tw, [tgt, mem], kw)


def test_decoder_layer_unbatched_and_fast_path_nan():
    rng = np.random.default_rng(6)
    T, S = 4, 5
    tgt, mem = _x(rng, 1, T, True, unbatched=True), _x(rng, 1, S, True, unbatched=True)
    t, j = _dec_layer("nnx", True, False)
    tw = Twin("nnx", t, j)
    kw = {"tgt_mask": np.triu(np.ones((T, T), bool), 1), "memory_key_padding_mask": np.arange(S) > 3}
    _compare_train(tw, [tgt, mem], kw, grad_args=(0, 1))
    _compare_eval(tw, [tgt, mem], kw)
    N = 3
    tgt, mem = _x(rng, N, T, True), _x(rng, N, S, True)
    _compare_eval(tw, [tgt, mem], {"tgt_key_padding_mask": _kpm(N, T, [T, 0, 1])}, fast_matters=True)
    # float masks keep nn.MultiheadAttention off its fast path: no nan then
    _compare_eval(tw, [tgt, mem], {"tgt_key_padding_mask": np.where(_kpm(N, T, [T, 0, 1]), -np.inf, 0).astype(
        np.float32)}, fast_matters=False)


# --- stacks -----------------------------------------------------------------------------------------


def _encoder(front, nf=False, bf=True, num_layers=2, norm=True, mask_check=True, nested=True):
    t_layer, j_layer = _enc_layer(front, bf, nf)
    tnorm = torch.nn.LayerNorm(E) if norm else None
    if tnorm is not None:
        with torch.no_grad():
            tnorm.weight.uniform_(0.5, 1.5)
            tnorm.bias.uniform_(-0.5, 0.5)
    t = _quiet(torch.nn.TransformerEncoder, t_layer, num_layers, tnorm, enable_nested_tensor=nested,
               mask_check=mask_check)
    with torch.no_grad():  # distinct layers, as after training
        for p in t.layers[1].parameters():
            p.add_(0.1 * torch.randn_like(p))
    mod = jn if front == "nnx" else jl
    jnorm = mod.LayerNorm(E) if norm else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        j = mod.TransformerEncoder(j_layer, num_layers, jnorm, enable_nested_tensor=nested, mask_check=mask_check)
    return t, j


@pytest.mark.parametrize("front", ["nnx", "linen"])
def test_encoder_matches_torch_with_nested_tensor_path(front):
    rng = np.random.default_rng(7)
    N, S = 3, 5
    x = _x(rng, N, S, True)
    t, j = _encoder(front)
    tw = Twin(front, t, j, x)
    kpm = _kpm(N, S, [0, 2, S])
    _compare_train(tw, [x], {"src_key_padding_mask": kpm})
    _compare_eval(tw, [x], {}, fast_matters=False)
    # nested path: padded positions are 0 before the final norm, so norm.bias there
    _compare_eval(tw, [x], {"src_key_padding_mask": kpm}, fast_matters=True)
    tw.eval()
    out = np.asarray(tw.jax_call(jnp.asarray(x), src_key_padding_mask=jnp.asarray(kpm), training=False))
    np.testing.assert_allclose(out[kpm], np.broadcast_to(tw.t.norm.bias.detach().numpy(), out[kpm].shape), atol=1e-6)
    # not left-aligned: torch's mask check sends it down the regular path
    _compare_eval(tw, [x], {"src_key_padding_mask": kpm[:, ::-1].copy()})
    # under jit the mask is traced: the alignment is decided on device
    tw.eval()
    if front == "nnx":
        fn = nnx.jit(lambda m, x, k: m(x, src_key_padding_mask=k))
        got = fn(tw.j, jnp.asarray(x), jnp.asarray(kpm[:, ::-1].copy()))
        got_aligned = fn(tw.j, jnp.asarray(x), jnp.asarray(kpm))
    else:
        fn = jax.jit(lambda v, x, k: tw.j.apply(v, x, src_key_padding_mask=k, deterministic=True))
        got = fn(tw.variables, jnp.asarray(x), jnp.asarray(kpm[:, ::-1].copy()))
        got_aligned = fn(tw.variables, jnp.asarray(x), jnp.asarray(kpm))
    with torch.no_grad():
        want = _quiet(tw.t, _t(x), src_key_padding_mask=_t(kpm[:, ::-1].copy())).numpy()
        want_aligned = _quiet(tw.t, _t(x), src_key_padding_mask=_t(kpm)).numpy()
    for g, w in ((got, want), (got_aligned, want_aligned)):
        np.testing.assert_array_equal(np.isnan(np.asarray(g)), np.isnan(w))
        assert_close(np.nan_to_num(np.asarray(g)), np.nan_to_num(w), **OUT_TOL)


def test_encoder_nested_path_without_mask_check_and_with_masks():
    rng = np.random.default_rng(8)
    N, S = 3, 5
    x = _x(rng, N, S, True)
    t, j = _encoder("nnx", mask_check=False)
    tw = Twin("nnx", t, j)
    kpm = np.array([[False, True, False, True, False], [False, False, False, False, True], [True] + [False] * 4])
    _compare_eval(tw, [x], {"src_key_padding_mask": kpm})  # torch takes each row's first count(valid) tokens
    _compare_eval(tw, [x], {"src_key_padding_mask": _kpm(N, S, [1, 2, 0]), "mask": rng.random((S, S)) > 0.8})
    t, j = _encoder("nnx", nested=False)  # enable_nested_tensor=False: padded positions computed
    tw = Twin("nnx", t, j)
    _compare_eval(tw, [x], {"src_key_padding_mask": _kpm(N, S, [1, 2, 0])})


@pytest.mark.parametrize("mask_check", [True, False])
def test_encoder_nested_path_fully_padded_sequence_has_finite_gradients(mask_check):
    """A fully padded sequence on the nested path: torch's output there is finite (0, then norm), and
    so must be every gradient (its all-masked attention rows must not leak nan into the backward pass)."""
    rng = np.random.default_rng(9)
    N, S = 3, 5
    x = _x(rng, N, S, True)
    t, j = _encoder("nnx", mask_check=mask_check)
    tw = Twin("nnx", t, j)
    kpm = _kpm(N, S, [0, 2, S])
    _compare_eval(tw, [x], {"src_key_padding_mask": kpm})
    tw.eval()
    graphdef, params, rest = nnx.split(tw.j, nnx.Param, ...)

    def loss(p, xs):
        return nnx.merge(graphdef, p, rest)(xs, src_key_padding_mask=jnp.asarray(kpm)).sum()

    g_params, g_x = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(x))
    for k, v in jn.state_dict(nnx.merge(graphdef, g_params, rest)).items():
        assert np.isfinite(np.asarray(v)).all(), k
    assert np.isfinite(np.asarray(g_x)).all()
    np.testing.assert_array_equal(np.asarray(g_x)[kpm], 0.0)  # padded positions are replaced by 0


@pytest.mark.parametrize("front", ["nnx", "linen"])
@pytest.mark.parametrize("bf,nf", [(False, False), (True, True)])
def test_transformer_matches_torch(front, bf, nf):
    rng = np.random.default_rng(9)
    N, S, T = 3, 5, 4
    torch.manual_seed(0)
    t = _quiet(torch.nn.Transformer, E, H, 2, 2, FF, 0.0, batch_first=bf, norm_first=nf)
    if front == "nnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            j = jn.Transformer(E, H, 2, 2, FF, 0.0, batch_first=bf, norm_first=nf, rngs=nnx.Rngs(0))
    else:
        j = _quiet(jl.Transformer, E, H, 2, 2, FF, 0.0, batch_first=bf, norm_first=nf, parent=None)
    src, tgt = _x(rng, N, S, bf), _x(rng, N, T, bf)
    tw = Twin(front, t, j, src, tgt)
    kw = {"tgt_mask": np.asarray(jn.Transformer.generate_square_subsequent_mask(T)),
          "src_key_padding_mask": _kpm(N, S, [0, 2, 1]), "memory_key_padding_mask": _kpm(N, S, [0, 2, 1])}
    _compare_train(tw, [src, tgt], kw, grad_args=(0, 1))
    _compare_eval(tw, [src, tgt], kw)
    _compare_eval(tw, [src, tgt], {})


def test_transformer_unbatched_and_custom_parts():
    rng = np.random.default_rng(10)
    S, T = 5, 4
    src, tgt = _x(rng, 1, S, False, unbatched=True), _x(rng, 1, T, False, unbatched=True)
    torch.manual_seed(0)
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, FF, 0.0), 1, enable_nested_tensor=False)
    t = _quiet(torch.nn.Transformer, E, H, dim_feedforward=FF, dropout=0.0, num_decoder_layers=1, custom_encoder=tenc)
    jenc = jn.TransformerEncoder(jn.TransformerEncoderLayer(E, H, FF, 0.0, rngs=nnx.Rngs(0)), 1,
                                 enable_nested_tensor=False)
    j = jn.Transformer(E, H, dim_feedforward=FF, dropout=0.0, num_decoder_layers=1, custom_encoder=jenc,
                       rngs=nnx.Rngs(0))
    tw = Twin("nnx", t, j)
    _compare_train(tw, [src, tgt], {"tgt_is_causal": False}, grad_args=(0, 1))
    _compare_eval(tw, [src, tgt], {})
    lenc = jl.TransformerEncoder(jl.TransformerEncoderLayer(E, H, FF, 0.0), 1, enable_nested_tensor=False)
    lj = _quiet(jl.Transformer, E, H, dim_feedforward=FF, dropout=0.0, num_decoder_layers=1, custom_encoder=lenc,
                parent=None)
    tw = Twin("linen", t, lj, src, tgt)
    _compare_train(tw, [src, tgt], {}, grad_args=(0, 1))


# --- initialisation, state_dict names, dropout -------------------------------------------------------


@pytest.mark.parametrize("front", ["nnx", "linen"])
def test_names_and_initialisation_like_torch(front):
    x = jnp.ones((2, 3, E))
    torch.manual_seed(0)
    t = _quiet(torch.nn.Transformer, E, H, 2, 3, FF, batch_first=True)
    if front == "nnx":
        layer = jn.TransformerEncoderLayer(E, H, FF, rngs=nnx.Rngs(0))
        enc = jn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        sd = jn.state_dict(enc)
        model = jn.Transformer(E, H, 2, 3, FF, batch_first=True, rngs=nnx.Rngs(1))
        msd = jn.state_dict(model)
    else:
        enc = jl.TransformerEncoder(jl.TransformerEncoderLayer(E, H, FF), 3, enable_nested_tensor=False)
        sd = jl.state_dict(enc.init(jax.random.key(0), x, deterministic=True))
        model = jl.Transformer(E, H, 2, 3, FF, batch_first=True)
        msd = jl.state_dict(model.init(jax.random.key(1), x, x, deterministic=True))
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, FF), 3, enable_nested_tensor=False)
    assert sorted(sd) == sorted(tenc.state_dict())
    assert sorted(msd) == sorted(t.state_dict())
    for k, v in sd.items():  # torch's deep copies: every layer starts with the same values
        assert v.shape == tuple(tenc.state_dict()[k].shape)
        np.testing.assert_array_equal(v, sd["layers.0." + k.split(".", 2)[2]])
    np.testing.assert_array_equal(sd["layers.0.self_attn.in_proj_bias"], 0)
    np.testing.assert_array_equal(sd["layers.0.norm1.weight"], 1)
    assert np.abs(sd["layers.0.linear1.weight"]).max() <= 1 / np.sqrt(E)
    assert np.abs(sd["layers.0.self_attn.in_proj_weight"]).max() <= np.sqrt(6 / (4 * E))
    # nn.Transformer: xavier_uniform on every >1-D parameter, drawn anew; 1-D ones as built
    bound = {k: np.sqrt(6 / sum(v.shape)) for k, v in msd.items() if v.ndim > 1}
    for k, b in bound.items():
        assert np.abs(msd[k]).max() <= b and np.abs(msd[k]).max() > 0.5 * b, k
    a, b = msd["encoder.layers.0.linear1.weight"], msd["encoder.layers.1.linear1.weight"]
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(msd["decoder.layers.0.linear1.bias"], msd["decoder.layers.2.linear1.bias"])


def test_dropout_is_random_per_key_deterministic_and_p_sized():
    """Train mode with dropout > 0: the same key gives the same output, another key another; the
    last dropout zeroes a fraction p of the feed-forward output (seen where the output equals the
    residual, with the attention block silenced)."""
    p, N, S = 0.3, 3, 5
    x = jnp.asarray(np.random.default_rng(11).standard_normal((N, S, E)).astype(np.float32))
    outs = []
    for seed in (0, 0, 1):
        m = jn.TransformerEncoderLayer(E, H, FF, p, norm_first=True, batch_first=True, rngs=nnx.Rngs(0, dropout=seed))
        m.self_attn.out_proj.weight.set_value(jnp.zeros((E, E)))
        m.self_attn.out_proj.bias.set_value(jnp.zeros(E))
        draws = [np.asarray(m(x)) for _ in range(20)]  # 2400 elements; the stream advances
        outs.append(draws[0])
        fraction = float(np.mean(np.stack(draws) == np.asarray(x)))
        assert abs(fraction - p) < 0.03, fraction
        m.eval()
        assert not np.any(np.asarray(m(x)) == np.asarray(x))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    # the encoder's copies draw different masks (their dropout streams are re-keyed)
    layer = jn.TransformerEncoderLayer(E, H, FF, 0.5, batch_first=True, rngs=nnx.Rngs(0))
    enc = jn.TransformerEncoder(layer, 2)
    a = np.asarray(enc.layers[0].dropout(jnp.ones(64)))
    b = np.asarray(enc.layers[1].dropout(jnp.ones(64)))
    assert not np.array_equal(a, b)
    # linen: make_rng("dropout")
    lm = jl.TransformerEncoderLayer(E, H, FF, p, batch_first=True)
    v = lm.init(jax.random.key(0), x, deterministic=True)
    r = [np.asarray(lm.apply(v, x, rngs={"dropout": jax.random.key(s)})) for s in (0, 0, 1)]
    np.testing.assert_array_equal(r[0], r[1])
    assert not np.array_equal(r[0], r[2])
    np.testing.assert_array_equal(lm.apply(v, x, deterministic=True), lm.apply(v, x, deterministic=True))
    with pytest.raises(Exception, match="dropout"):
        lm.apply(v, x)


# --- precision, training --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_eval_within_torchs_own_error(dtype):
    rng = np.random.default_rng(12)
    N, S = 3, 5
    x = _x(rng, N, S, True)
    torch.manual_seed(0)
    t = torch.nn.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True).eval()
    tdt = getattr(torch, dtype)
    th = torch.nn.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True).eval()
    th.load_state_dict(t.state_dict())
    th = th.to(tdt)
    kpm = _kpm(N, S, [0, 2, 1])
    with torch.no_grad():
        ref = t(_t(x), src_key_padding_mask=_t(kpm)).numpy()
        th_out = th(_t(x).to(tdt), src_key_padding_mask=_t(kpm)).float().numpy()
    jdt = jnp.float16 if dtype == "float16" else jnp.bfloat16
    j = jn.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True, dtype=jdt, rngs=nnx.Rngs(0))
    jn.load_state_dict(j, _sd(t))
    j.eval()
    got = j(jnp.asarray(x).astype(jdt), src_key_padding_mask=jnp.asarray(kpm))
    assert got.dtype == jdt
    torch_err = np.abs(th_out - ref).max()
    ours = np.abs(np.asarray(got).astype(np.float32) - ref).max()
    assert ours <= 2 * torch_err + float(ml_dtypes.finfo(jdt).eps), (
        ours, torch_err)


def test_training_follows_torchs_loss_curve():
    """A 2-layer TransformerEncoder with a linear head, 20 AdamW steps (dropout 0): jaxnn.optim.adamw
    on the linen twin follows torch.optim.AdamW's loss curve to rtol 1e-4."""
    torch.manual_seed(0)
    t = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True), 2,
                                    enable_nested_tensor=False)
    with torch.no_grad():
        for p in t.layers[1].parameters():
            p.add_(0.1 * torch.randn_like(p))
    head = torch.nn.Linear(E, 1)
    sd, hsd = _sd(t), _sd(head)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 5, E)).astype(np.float32)
    y = rng.standard_normal((3, 5, 1)).astype(np.float32)
    kpm = _kpm(3, 5, [0, 1, 2])
    opt = torch.optim.AdamW([*t.parameters(), *head.parameters()], lr=1e-2)
    want = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((head(t(_t(x), src_key_padding_mask=_t(kpm))) - _t(y)) ** 2).mean()
        loss.backward()
        opt.step()
        want.append(loss.item())

    lm = jl.TransformerEncoder(jl.TransformerEncoderLayer(E, H, FF, 0.0, batch_first=True), 2,
                               enable_nested_tensor=False)
    params = {"enc": jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(x), deterministic=True), sd)[0][
        "params"], "head": {k: jnp.asarray(v) for k, v in hsd.items()}}

    def loss_fn(p):
        out = lm.apply({"params": p["enc"]}, jnp.asarray(x), src_key_padding_mask=jnp.asarray(kpm),
                       deterministic=False)
        return jnp.mean((F.linear(out, p["head"]["weight"], p["head"]["bias"]) - jnp.asarray(y)) ** 2)

    np.testing.assert_allclose(adamw_losses(loss_fn, params), want, rtol=1e-4)
    assert want[-1] < 0.8 * want[0]  # it trains


# --- errors, warnings, helpers --------------------------------------------------------------------------


def _both_raise(tfn, jfn, exc, match):
    with pytest.raises(Exception):  # noqa: B017 - torch's type varies (AssertionError/RuntimeError)
        _quiet(tfn)
    with pytest.raises(exc, match=match):
        jfn()


@pytest.mark.parametrize("front", ["nnx", "linen"])
def test_constructor_errors_like_torch(front):
    def build(*args, **kw):
        if front == "nnx":
            return jn.TransformerEncoderLayer(*args, **kw, rngs=nnx.Rngs(0))
        return jl.TransformerEncoderLayer(*args, **kw, parent=None)

    T = torch.nn.TransformerEncoderLayer
    _both_raise(lambda: T(10, 3), lambda: build(10, 3), ValueError, "divisible by `nhead`")
    _both_raise(lambda: T(8, 2, activation="tanh"), lambda: build(8, 2, activation="tanh"), ValueError,
                "'relu' or 'gelu'")
    _both_raise(lambda: T(8, 2, dropout=1.5), lambda: build(8, 2, dropout=1.5), ValueError, "dropout")
    _both_raise(lambda: T(8, 0), lambda: build(8, 0), ValueError, "nhead")
    with pytest.raises(TypeError, match="activation"):
        build(8, 2, activation=3)
    with pytest.raises(ValueError, match="device"):
        build(8, 2, device="cpu")
    with pytest.raises(ValueError, match="num_layers"):
        (jn if front == "nnx" else jl).TransformerEncoder(jn.TransformerEncoderLayer(8, 2, rngs=nnx.Rngs(0)), -1,
                                                          enable_nested_tensor=False)


def test_call_errors_like_torch():
    rng = np.random.default_rng(14)
    N, S = 3, 5
    x = _x(rng, N, S, True)
    t, j = _enc_layer("nnx", True, False)
    cases = [
        ({"src_mask": np.zeros((S, S), np.int32)}, TypeError, "only bool and floating"),
        ({"src_mask": np.zeros((S + 1, S), np.float32)}, ValueError, "2D attn_mask"),
        ({"src_mask": np.zeros((3, S, S), np.float32)}, ValueError, "3D attn_mask"),
        ({"src_key_padding_mask": np.zeros((N + 1, S), bool)}, ValueError, "key_padd"),
    ]
    for training in (True, False):
        t.train(training)
        j.train() if training else j.eval()
        for kw, exc, match in cases:
            if not training and exc is TypeError:
                continue
            _both_raise(lambda kw=kw: t(_t(x), **{k: _t(v) for k, v in kw.items()}),
                        lambda kw=kw: j(jnp.asarray(x), **{k: jnp.asarray(v) for k, v in kw.items()}), exc, match)
    tm = _quiet(torch.nn.Transformer, E, H, 1, 1, FF, batch_first=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jm = jn.Transformer(E, H, 1, 1, FF, batch_first=True, rngs=nnx.Rngs(0))
    for src, tgt, match in (((2, 3, E), (3, 3, E), "batch number"), ((2, 3, E), (2, 3, E + 2), "d_model")):
        _both_raise(lambda s=src, g=tgt: tm(torch.zeros(s), torch.zeros(g)),
                    lambda s=src, g=tgt: jm(jnp.zeros(s), jnp.zeros(g)), ValueError, match)
    # torch builds an encoder of 0 layers and fails when it is called
    t0 = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, FF), 0, enable_nested_tensor=False)
    j0 = jn.TransformerEncoder(jn.TransformerEncoderLayer(E, H, FF, rngs=nnx.Rngs(0)), 0, enable_nested_tensor=False)
    _both_raise(lambda: t0(torch.zeros(S, N, E)), lambda: j0(jnp.zeros((S, N, E))), ValueError, "num_layers=0")


@pytest.mark.parametrize("bf", [False, True])
def test_decoder_batch_mismatch_names_tgt_and_memory(bf):
    """tgt and memory of different batch sizes: torch fails reshaping memory's keys in the
    cross-attention (RuntimeError); jaxnn raises a ValueError naming both shapes (it was a reshape
    TypeError from inside XLA), in training and eval mode, for the layer and the stack."""
    t, j = _dec_layer("nnx", bf)
    td, jd = _quiet(torch.nn.TransformerDecoder, t, 1), jn.TransformerDecoder(j, 1)
    rng = np.random.default_rng(16)
    tgt, mem = _x(rng, 2, 3, bf), _x(rng, 3, 4, bf)
    match = re.escape(f"`memory` {tuple(mem.shape)} must have `tgt`'s batch size: `tgt` {tuple(tgt.shape)}")
    for tmod, jmod in ((t, j), (td, jd)):
        for training in (True, False):
            tmod.train(training)
            jmod.train() if training else jmod.eval()
            _both_raise(lambda tmod=tmod: tmod(_t(tgt), _t(mem)),
                        lambda jmod=jmod: jmod(jnp.asarray(tgt), jnp.asarray(mem)), ValueError, match)
    # the same batch works (memory length may differ)
    jd.eval()
    assert jd(jnp.asarray(tgt), jnp.asarray(_x(rng, 2, 4, bf))).shape == tgt.shape


def test_mask_type_mismatch_warns_like_torch():
    rng = np.random.default_rng(15)
    N, S = 3, 5
    x = _x(rng, N, S, False)
    t, j = _enc_layer("nnx", False, False)
    kw = {"src_mask": np.zeros((S, S), np.float32), "src_key_padding_mask": _kpm(N, S, [1, 0, 0])}
    with pytest.warns(UserWarning, match="mismatched src_key_padding_mask and src_mask"):
        t(_t(x), **{k: _t(v) for k, v in kw.items()})
    with pytest.warns(UserWarning, match="mismatched src_key_padding_mask and src_mask"):
        j(jnp.asarray(x), **{k: jnp.asarray(v) for k, v in kw.items()})
    td, jd = _dec_layer("nnx", False, False)
    mem = _x(rng, N, 5, False)
    kw = {"memory_mask": np.zeros((S, 5), np.float32), "memory_key_padding_mask": _kpm(N, 5, [1, 0, 0])}
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        td(_t(x), _t(mem), **{k: _t(v) for k, v in kw.items()})
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        jd(jnp.asarray(x), jnp.asarray(mem), **{k: jnp.asarray(v) for k, v in kw.items()})


def test_nested_tensor_warning_like_torch():
    for bf, nf, nested in ((False, False, True), (True, True, True), (True, False, True), (False, False, False)):
        tl = torch.nn.TransformerEncoderLayer(E, H, FF, batch_first=bf, norm_first=nf)
        jlayer = jn.TransformerEncoderLayer(E, H, FF, batch_first=bf, norm_first=nf, rngs=nnx.Rngs(0))
        llayer = jl.TransformerEncoderLayer(E, H, FF, batch_first=bf, norm_first=nf)
        with warnings.catch_warnings(record=True) as tw:
            warnings.simplefilter("always")
            te = torch.nn.TransformerEncoder(tl, 2, enable_nested_tensor=nested)
        for build in (lambda a=jlayer, n=nested: jn.TransformerEncoder(a, 2, enable_nested_tensor=n),
                      lambda a=llayer, n=nested: jl.TransformerEncoder(a, 2, enable_nested_tensor=n)):
            with warnings.catch_warnings(record=True) as jw:
                warnings.simplefilter("always")
                je = build()
            assert [str(w.message) for w in jw] == [str(w.message) for w in tw]
            assert je.use_nested_tensor == te.use_nested_tensor
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        torch.nn.Transformer(E, H, 1, 1, FF)
    for build in (lambda: jn.Transformer(E, H, 1, 1, FF, rngs=nnx.Rngs(0)), lambda: jl.Transformer(E, H, 1, 1, FF)):
        with warnings.catch_warnings(record=True) as jw:
            warnings.simplefilter("always")
            build()
        assert [str(w.message) for w in jw] == [str(w.message) for w in tw] and len(tw) == 1


def test_generate_square_subsequent_mask_like_torch():
    for sz in (0, 1, 5):
        np.testing.assert_array_equal(jn.Transformer.generate_square_subsequent_mask(sz),
                                      torch.nn.Transformer.generate_square_subsequent_mask(sz).numpy())
    got = jl.Transformer.generate_square_subsequent_mask(3, dtype=jnp.bfloat16)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got, np.float32),
                                  torch.nn.Transformer.generate_square_subsequent_mask(3).numpy())


def test_generate_square_subsequent_mask_bool_and_integer_dtypes_like_torch():
    want = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.bool).numpy()
    got = jn.Transformer.generate_square_subsequent_mask(4, dtype=jnp.bool_)
    assert got.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(got), want)
    with pytest.raises(RuntimeError):  # -inf has no integer value
        torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.int64)
    for dtype in (jnp.int32, jnp.uint8):
        with pytest.raises(TypeError, match="dtype"):
            jn.Transformer.generate_square_subsequent_mask(3, dtype=dtype)
