"""jaxnn.models._blocks against diffusers' torch blocks: Attention, ResnetBlock2D, Downsample2D,
Upsample2D. Same random weights (every parameter randomised), same inputs: outputs, gradients
w.r.t. every parameter and input (float32), state_dict keys, bfloat16, errors."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention as TAttention
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from diffusers.models.downsampling import Downsample2D as TDownsample2D
from diffusers.models.resnet import ResnetBlock2D as TResnetBlock2D
from diffusers.models.upsampling import Upsample2D as TUpsample2D
from flax import nnx
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import jaxnn.nnx as jn
from jaxnn.models._blocks import Attention, Downsample2D, ResnetBlock2D, Upsample2D, get_activation

pytestmark = pytest.mark.xdist_group("models_blocks")


# ------------------------------------------------------------------------------------------------
# helpers (also used by test_models_vae.py)
# ------------------------------------------------------------------------------------------------


def rel_l2(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def randomise(tm: torch.nn.Module, seed: int = 0, std: float = 0.3) -> None:
    """Fill every parameter with N(0, std) (norm weights around 1) so nothing passes vacuously."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in tm.named_parameters():
            v = torch.randn(p.shape, generator=g) * std
            if "norm" in name and name.endswith("weight"):
                v = v + 1.0
            p.copy_(v)


def port(tm: torch.nn.Module, jm: nnx.Module) -> None:
    """Load torch's state_dict into the jaxnn module (strict), both in eval mode; keys must agree."""
    sd = {k: v.detach().float().numpy() for k, v in tm.state_dict().items()}
    assert sorted(jn.state_dict(jm)) == sorted(sd)
    jn.load_state_dict(jm, sd)
    tm.eval()
    jm.eval()


def torch_grads(tm: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: (p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape), np.float32))
            for k, p in tm.named_parameters(remove_duplicate=False)}


def param_fn(jm: nnx.Module, call):
    """(params, fn): ``fn(params, *args) = call(module_with(params), *args)`` for jax.jit / jax.vjp."""
    graphdef, params, rest = nnx.split(jm, nnx.Param, ...)

    def fn(p, *args):
        return call(nnx.merge(graphdef, p, rest), *args)

    return params, fn


def flat_grads(g) -> dict[str, np.ndarray]:
    return {".".join(map(str, path)): np.asarray(v.get_value() if hasattr(v, "get_value") else v)
            for path, v in nnx.to_flat_state(g)}


def compare(tm, jm, call_t, call_j, inputs, *, grad=True, eager=False, rtol=1e-5, grad_rtol=1e-5, seed=0):
    """Run torch ``call_t(tm, *tensors)`` and jaxnn ``call_j(jm, *arrays)`` on the same float32
    ``inputs``; compare the outputs (relative L2 and elementwise) under jit (and eagerly with
    ``eager``), and the vjp of a random cotangent w.r.t. every parameter and input against torch
    autograd (one jitted function computes both, one compilation)."""
    t_in = [torch.tensor(a, requires_grad=grad) for a in inputs]
    t_out = call_t(tm, *t_in)
    expect = t_out.detach().numpy()
    params, fn = param_fn(jm, call_j)
    j_in = [jnp.asarray(a) for a in inputs]
    cot = np.random.default_rng(seed).standard_normal(expect.shape).astype(np.float32)

    def fwd_bwd(p, xs, c):
        out, pull = jax.vjp(fn, p, *xs)
        return out, pull(c)

    if grad:
        jitted, (gp, *gx) = jax.jit(fwd_bwd)(params, j_in, jnp.asarray(cot))
    else:
        jitted = jax.jit(fn)(params, *j_in)
    outs = [("jit", jitted)] + ([("eager", fn(params, *j_in))] if eager else [])
    for what, out in outs:
        assert out.dtype == jnp.float32 and out.shape == expect.shape, (what, out.dtype, out.shape, expect.shape)
        assert rel_l2(out, expect) < rtol, (what, rel_l2(out, expect))
        np.testing.assert_allclose(np.asarray(out), expect, rtol=rtol * 10, atol=rtol * np.abs(expect).max() * 10,
                                   err_msg=what)
    if not grad:
        return
    t_out.backward(torch.tensor(cot))
    tg = torch_grads(tm)
    jg = flat_grads(gp)
    assert jg and set(jg) <= set(tg), sorted(set(jg) - set(tg))
    assert len(jg) == len({id(p) for p in tm.parameters()})
    # relative L2 per parameter; a gradient that is exactly zero in exact arithmetic (a key bias
    # under softmax) is float32 noise on both sides: judged against the largest gradient instead
    scale = max(float(np.abs(g).max()) for g in tg.values())
    for k, v in jg.items():
        err = float(np.linalg.norm(np.asarray(v, np.float64) - tg[k]))
        assert err <= grad_rtol * (float(np.linalg.norm(tg[k])) + 0.1 * scale * np.sqrt(v.size)), (k, rel_l2(v, tg[k]))
    for i, (g, t) in enumerate(zip(gx, t_in, strict=True)):
        assert rel_l2(g, t.grad.numpy()) < grad_rtol, (f"input {i}", rel_l2(g, t.grad.numpy()))


def bf16_check(tm, jm_half, call_t, call_j, inputs, factor=3.0, dtype=jnp.bfloat16):
    """jaxnn in ``dtype`` (bfloat16 / float16) vs torch float32 is within ``factor`` of torch in
    ``dtype`` vs torch float32."""
    tdtype = {jnp.dtype(jnp.bfloat16): torch.bfloat16, jnp.dtype(jnp.float16): torch.float16}[jnp.dtype(dtype)]
    t_in = [torch.tensor(a) for a in inputs]
    with torch.no_grad():
        ref = call_t(tm, *t_in).numpy()
        t16 = call_t(copy.deepcopy(tm).to(tdtype), *[t.to(tdtype) for t in t_in]).float().numpy()
    sd = {k: v.detach().float().numpy() for k, v in tm.state_dict().items()}
    jn.load_state_dict(jm_half, sd)
    jm_half.eval()
    params, fn = param_fn(jm_half, call_j)
    out = jax.jit(fn)(params, *[jnp.asarray(a, dtype) for a in inputs])
    assert out.dtype == dtype
    for v in jn.state_dict(jm_half).values():
        assert v.dtype == dtype
    err_j, err_t = rel_l2(np.asarray(out, np.float32), ref), rel_l2(t16, ref)
    assert err_j <= factor * err_t + 1e-3, (err_j, err_t)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Attention
# ------------------------------------------------------------------------------------------------

B = 2

ATTENTION_CASES = [
    # (diffusers kwargs, hidden shape, encoder (S, dim) or None, mask kind)
    (dict(query_dim=16, heads=2, dim_head=8), (B, 5, 16), None, None),
    (dict(query_dim=16, heads=2, dim_head=8, bias=True, cross_attention_dim=12), (B, 5, 16), (7, 12), None),
    (dict(query_dim=16, heads=2, dim_head=8, cross_attention_dim=12), (B, 5, 16), (7, 12), "float_b_s"),
    (dict(query_dim=16, heads=2, dim_head=8, cross_attention_dim=12), (B, 5, 16), (7, 12), "bool_b1s"),
    (dict(query_dim=16, heads=2, dim_head=8), (B, 5, 16), None, "float_bh_l_s"),
    # the VAE's mid-block attention: image input, group norm, residual, rescale, one head
    (dict(query_dim=16, heads=1, dim_head=16, rescale_output_factor=2.0, eps=1e-6, norm_num_groups=4,
          bias=True, upcast_softmax=True, residual_connection=True, _from_deprecated_attn_block=True),
     (B, 16, 3, 4), None, None),
    (dict(query_dim=16, heads=4, dim_head=4, norm_num_groups=2, residual_connection=True, upcast_attention=True,
          cross_attention_dim=10),
     (B, 16, 2, 3), (6, 10), None),
    (dict(query_dim=16, dim_head=8, out_dim=32, scale_qk=False, out_bias=False), (B, 5, 16), None, None),
    (dict(query_dim=16, heads=2, dim_head=8, cross_attention_dim=12, cross_attention_norm="layer_norm"),
     (B, 5, 16), (7, 12), None),
    (dict(query_dim=16, heads=2, dim_head=8, cross_attention_dim=12, cross_attention_norm="group_norm",
          cross_attention_norm_num_groups=4, dropout=0.3), (B, 5, 16), (7, 12), None),
]


def _mask(kind, L, S, heads):
    rng = np.random.default_rng(3)
    if kind == "float_b_s":
        return np.where(rng.random((B, S)) < 0.3, -10000.0, 0.0).astype(np.float32)
    if kind == "bool_b1s":
        m = rng.random((B, 1, S)) < 0.7
        m[:, :, 0] = True
        return m
    if kind == "float_bh_l_s":
        return (rng.standard_normal((B * heads, L, S)) * 2).astype(np.float32)
    return None


def _attention_calls(mask):
    def call_t(m, x, *e):
        return m(x, encoder_hidden_states=e[0] if e else None,
                 attention_mask=None if mask is None else torch.tensor(mask))

    def call_j(m, x, *e):
        return m(x, encoder_hidden_states=e[0] if e else None,
                 attention_mask=None if mask is None else jnp.asarray(mask))

    return call_t, call_j


@pytest.mark.parametrize("kwargs,shape,enc,mask_kind", ATTENTION_CASES)
def test_attention_matches_diffusers(kwargs, shape, enc, mask_kind):
    torch.manual_seed(0)
    tm = TAttention(**kwargs)
    jm = Attention(**kwargs, rngs=nnx.Rngs(0))
    randomise(tm)
    port(tm, jm)
    assert jm.heads == tm.heads and jm.scale == tm.scale and jm.inner_dim == tm.inner_dim
    L = shape[1] if len(shape) == 3 else shape[2] * shape[3]
    S = enc[0] if enc else L
    mask = _mask(mask_kind, L, S, tm.heads)
    inputs = [rand(shape, 1)] + ([rand((B, *enc), 2)] if enc else [])
    compare(tm, jm, *_attention_calls(mask), inputs)


@pytest.mark.parametrize("case,dtype", [(0, jnp.bfloat16), (5, jnp.bfloat16), (5, jnp.float16)])
def test_attention_half_precision(case, dtype):
    kwargs, shape, enc, _ = ATTENTION_CASES[case]
    torch.manual_seed(0)
    tm = TAttention(**kwargs)
    randomise(tm)
    tm.eval()
    jm = Attention(**kwargs, dtype=dtype, rngs=nnx.Rngs(0))
    bf16_check(tm, jm, *_attention_calls(None), [rand(shape, 1)], dtype=dtype)


def test_attention_upcast_bfloat16():
    """diffusers' ``upcast_attention`` / ``upcast_softmax`` (honoured by its ``AttnProcessor``; its
    default ``AttnProcessor2_0`` leaves precision to torch's SDPA): the scores ``q k^T`` of the
    bfloat16 q/k and their softmax in float32. jaxnn's bfloat16 attention always does that (and keeps
    the probabilities in float32 for the product with v), so with large scores its error against a
    float64 reference is within torch's bfloat16 error with either processor."""
    kw = dict(query_dim=32, heads=2, dim_head=16, cross_attention_dim=12)
    x, e = rand((2, 64, 32), 1) * 6, rand((2, 7, 12), 2) * 6  # scores of a few hundred
    errs = {}
    for upcast in (True, False):
        r = np.random.default_rng(1)  # the same weights for both settings
        tm = TAttention(**kw, upcast_attention=upcast, upcast_softmax=upcast).eval()
        with torch.no_grad():
            for p in tm.parameters():
                p.copy_(torch.tensor(r.standard_normal(tuple(p.shape)) * 0.5, dtype=torch.float32))
            ref = copy.deepcopy(tm).double()(torch.tensor(x).double(), torch.tensor(e).double()).numpy()
            for name, processor in (("AttnProcessor", AttnProcessor()), ("AttnProcessor2_0", AttnProcessor2_0())):
                tb = copy.deepcopy(tm).bfloat16()
                tb.set_processor(processor)
                errs[upcast, name] = rel_l2(tb(torch.tensor(x).bfloat16(), torch.tensor(e).bfloat16()).float().numpy(),
                                            ref)
            assert rel_l2(tm(torch.tensor(x), torch.tensor(e)).numpy(), ref) < 1e-5
        jm = Attention(**kw, upcast_attention=upcast, upcast_softmax=upcast, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
        jn.load_state_dict(jm, {k: v.numpy() for k, v in tm.state_dict().items()})
        jm.eval()
        out = jax.jit(lambda x, e, jm=jm: jm(x, e))(jnp.asarray(x, jnp.bfloat16), jnp.asarray(e, jnp.bfloat16))
        assert out.dtype == jnp.bfloat16
        errs[upcast, "jaxnn"] = rel_l2(np.asarray(out, np.float32), ref)
    # float32 scores and softmax either way: the setting changes nothing in jaxnn
    assert errs[True, "jaxnn"] == errs[False, "jaxnn"]
    for processor in ("AttnProcessor", "AttnProcessor2_0"):  # diffusers' upcast path and its default
        assert 0 < errs[True, processor] < 0.1, errs
        assert errs[True, "jaxnn"] <= 1.05 * errs[True, processor], errs


@hsettings(max_examples=4)
@given(heads=st.integers(1, 3), dim_head=st.sampled_from([2, 4, 8]), L=st.integers(1, 6),
       S=st.one_of(st.none(), st.integers(1, 5)), bias=st.booleans(), residual=st.booleans())
def test_attention_random_configs(heads, dim_head, L, S, bias, residual):
    q = heads * dim_head
    kwargs = dict(query_dim=q, heads=heads, dim_head=dim_head, bias=bias, residual_connection=residual,
                  cross_attention_dim=None if S is None else 6)
    torch.manual_seed(0)
    tm = TAttention(**kwargs)
    jm = Attention(**kwargs, rngs=nnx.Rngs(0))
    randomise(tm)
    port(tm, jm)
    inputs = [rand((B, L, q), 1)] + ([] if S is None else [rand((B, S, 6), 2)])
    compare(tm, jm, *_attention_calls(None), inputs, grad=False)


def test_attention_dropout_train_mode():
    kwargs = dict(query_dim=8, heads=2, dim_head=4, dropout=0.5)
    jm = Attention(**kwargs, rngs=nnx.Rngs(0))
    x = jnp.asarray(rand((B, 5, 8)))
    train = jm(x)
    assert bool(jnp.any(train == 0.0))  # dropout acts on to_out.1 in training mode
    jm.eval()
    ev = jm(x)
    assert not bool(jnp.any(ev == 0.0))
    np.testing.assert_array_equal(np.asarray(jm(x)), np.asarray(ev))


def test_attention_errors():
    with pytest.raises(ValueError, match="only_cross_attention"):
        TAttention(8, only_cross_attention=True)
    with pytest.raises(ValueError, match="only_cross_attention"):
        Attention(8, only_cross_attention=True, rngs=nnx.Rngs(0))
    with pytest.raises(NotImplementedError, match="kv_heads"):
        Attention(8, kv_heads=2, rngs=nnx.Rngs(0))
    with pytest.raises(NotImplementedError, match="qk_norm"):
        Attention(8, qk_norm="layer_norm", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="cross_attention_norm"):
        TAttention(8, cross_attention_norm="batch_norm")
    with pytest.raises(ValueError, match="cross_attention_norm"):
        Attention(8, cross_attention_norm="batch_norm", rngs=nnx.Rngs(0))
    tm = TAttention(8, heads=2, dim_head=4)
    jm = Attention(8, heads=2, dim_head=4, rngs=nnx.Rngs(0))
    x = rand((B, 5, 8))
    bad_mask = np.zeros((B, 4), np.float32)  # last dim must be the key length 5
    with pytest.raises(RuntimeError):
        tm(torch.tensor(x), attention_mask=torch.tensor(bad_mask))
    with pytest.raises(ValueError, match="key length 5"):
        jm(jnp.asarray(x), attention_mask=jnp.asarray(bad_mask))
    with pytest.raises(ValueError, match="query_dim=8"):
        jm(jnp.zeros((B, 5, 7)))
    with pytest.raises(ValueError, match="cross_attention_dim=8"):
        jm(jnp.asarray(x), encoder_hidden_states=jnp.zeros((B, 3, 6)))


# ------------------------------------------------------------------------------------------------
# ResnetBlock2D
# ------------------------------------------------------------------------------------------------

RESNET_CASES = [
    # (diffusers kwargs, in (C, H, W), with temb)
    (dict(in_channels=8, out_channels=16, temb_channels=12, groups=4), (8, 6, 6), True),
    (dict(in_channels=8, temb_channels=12, groups=4, groups_out=2, time_embedding_norm="scale_shift",
          output_scale_factor=2.0, non_linearity="mish", eps=1e-5), (8, 5, 4), True),
    (dict(in_channels=8, out_channels=4, temb_channels=None, groups=2, non_linearity="gelu", dropout=0.2),
     (8, 4, 4), False),
    (dict(in_channels=4, out_channels=8, temb_channels=6, groups=2, up=True, non_linearity="relu", skip_time_act=True),
     (4, 3, 3), True),
    (dict(in_channels=4, temb_channels=6, groups=2, down=True, use_in_shortcut=True, conv_shortcut_bias=False),
     (4, 6, 5), True),
    (dict(in_channels=4, temb_channels=6, groups=2, down=True, kernel="sde_vp", conv_2d_out_channels=6,
          non_linearity="SiLU"), (4, 4, 4), True),
    (dict(in_channels=4, temb_channels=None, groups=2, up=True, kernel="sde_vp"), (4, 3, 2), False),
]


def _resnet_calls(with_temb):
    if with_temb:
        return (lambda m, x, t: m(x, t)), (lambda m, x, t: m(x, t))
    return (lambda m, x: m(x, None)), (lambda m, x: m(x, None))


@pytest.mark.parametrize("kwargs,shape,with_temb", RESNET_CASES)
def test_resnet_block_matches_diffusers(kwargs, shape, with_temb):
    torch.manual_seed(0)
    tm = TResnetBlock2D(**kwargs)
    jm = ResnetBlock2D(**kwargs, rngs=nnx.Rngs(0))
    randomise(tm)
    port(tm, jm)
    inputs = [rand((B, *shape), 1)] + ([rand((B, kwargs["temb_channels"]), 2)] if with_temb else [])
    compare(tm, jm, *_resnet_calls(with_temb), inputs)


@pytest.mark.parametrize("case,dtype", [(0, jnp.bfloat16), (1, jnp.bfloat16), (0, jnp.float16)])
def test_resnet_block_half_precision(case, dtype):
    kwargs, shape, with_temb = RESNET_CASES[case]
    torch.manual_seed(0)
    tm = TResnetBlock2D(**kwargs)
    randomise(tm)
    tm.eval()
    jm = ResnetBlock2D(**kwargs, dtype=dtype, rngs=nnx.Rngs(0))
    inputs = [rand((B, *shape), 1)] + ([rand((B, kwargs["temb_channels"]), 2)] if with_temb else [])
    bf16_check(tm, jm, *_resnet_calls(with_temb), inputs, dtype=dtype)


def test_resnet_block_errors():
    for bad in ("ada_group", "foo"):
        with pytest.raises(ValueError, match=bad):
            TResnetBlock2D(in_channels=4, groups=2, time_embedding_norm=bad)
        with pytest.raises(ValueError, match=bad):
            ResnetBlock2D(in_channels=4, groups=2, time_embedding_norm=bad, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="not found"):
        TResnetBlock2D(in_channels=4, groups=2, non_linearity="tanh")
    with pytest.raises(ValueError, match="not found"):
        ResnetBlock2D(in_channels=4, groups=2, non_linearity="tanh", rngs=nnx.Rngs(0))
    with pytest.raises(NotImplementedError, match="kernel"):
        ResnetBlock2D(in_channels=4, groups=2, up=True, kernel="fir", rngs=nnx.Rngs(0))
    x = rand((B, 4, 4, 4))
    # scale_shift without an embedding
    tm = TResnetBlock2D(in_channels=4, groups=2, temb_channels=None, time_embedding_norm="scale_shift")
    jm = ResnetBlock2D(in_channels=4, groups=2, temb_channels=None, time_embedding_norm="scale_shift",
                       rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="temb"):
        tm(torch.tensor(x), None)
    with pytest.raises(ValueError, match="temb"):
        jm(jnp.asarray(x), None)
    # a block with time_emb_proj called without temb: torch fails inside the activation
    tm = TResnetBlock2D(in_channels=4, groups=2, temb_channels=6)
    jm = ResnetBlock2D(in_channels=4, groups=2, temb_channels=6, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError):
        tm(torch.tensor(x), None)
    with pytest.raises(ValueError, match="temb_channels=6"):
        jm(jnp.asarray(x), None)
    with pytest.raises(ValueError, match="channels=4"):
        jm(jnp.zeros((B, 3, 4, 4)), jnp.zeros((B, 6)))
    with pytest.raises(ValueError, match="temb"):
        jm(jnp.asarray(x), jnp.zeros((B + 1, 6)))


def test_get_activation():
    for name, cls in (("swish", jn.SiLU), ("SiLU", jn.SiLU), ("mish", jn.Mish), ("gelu", jn.GELU), ("relu", jn.ReLU)):
        assert isinstance(get_activation(name), cls)
    with pytest.raises(ValueError, match="not found"):
        get_activation("tanh")


# ------------------------------------------------------------------------------------------------
# Downsample2D / Upsample2D
# ------------------------------------------------------------------------------------------------

DOWN_CASES = [
    (dict(channels=4, use_conv=True), (4, 6, 6)),  # name="conv": Conv2d_0 and conv, one layer
    (dict(channels=4, use_conv=True, out_channels=6, padding=0, name="op"), (4, 7, 6)),  # pad (0, 1, 0, 1)
    (dict(channels=4, use_conv=True, padding=0, name="Conv2d_0", bias=False, kernel_size=2), (4, 5, 5)),
    (dict(channels=4, use_conv=False), (4, 6, 5)),
    (dict(channels=4, use_conv=True, norm_type="ln_norm", eps=1e-5, elementwise_affine=True), (4, 4, 4)),
]

UP_CASES = [
    (dict(channels=4, use_conv=True), (4, 3, 3), None),
    (dict(channels=4, use_conv=True, out_channels=6, name="Conv2d_0"), (4, 3, 2), None),
    (dict(channels=4, use_conv=False), (4, 3, 3), None),
    (dict(channels=4, use_conv_transpose=True, out_channels=2), (4, 3, 3), None),
    (dict(channels=4, use_conv=True, kernel_size=1, padding=0), (4, 3, 4), (7, 9)),
    (dict(channels=4, use_conv=True, interpolate=False, bias=False), (4, 3, 3), None),
    (dict(channels=4, use_conv=True, norm_type="ln_norm", eps=1e-6, elementwise_affine=False), (4, 2, 3), None),
]


@pytest.mark.parametrize("kwargs,shape", DOWN_CASES)
def test_downsample_matches_diffusers(kwargs, shape):
    torch.manual_seed(0)
    tm = TDownsample2D(**kwargs)
    jm = Downsample2D(**kwargs, rngs=nnx.Rngs(0))
    randomise(tm)
    port(tm, jm)
    call = lambda m, x: m(x)  # noqa: E731
    compare(tm, jm, call, call, [rand((B, *shape), 1)], grad=kwargs["use_conv"])


@pytest.mark.parametrize("kwargs,shape,output_size", UP_CASES)
def test_upsample_matches_diffusers(kwargs, shape, output_size):
    torch.manual_seed(0)
    tm = TUpsample2D(**kwargs)
    jm = Upsample2D(**kwargs, rngs=nnx.Rngs(0))
    randomise(tm)
    port(tm, jm)
    call = lambda m, x: m(x, output_size=output_size)  # noqa: E731
    compare(tm, jm, call, call, [rand((B, *shape), 1)], grad=kwargs.get("use_conv", False)
            or kwargs.get("use_conv_transpose", False))


def test_resampling_bfloat16():
    for tcls, jcls, kwargs in ((TDownsample2D, Downsample2D, DOWN_CASES[0][0]), (TUpsample2D, Upsample2D,
                                                                               UP_CASES[0][0])):
        torch.manual_seed(0)
        tm = tcls(**kwargs)
        randomise(tm)
        tm.eval()
        jm = jcls(**kwargs, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
        call = lambda m, x: m(x)  # noqa: E731
        bf16_check(tm, jm, call, call, [rand((B, 4, 6, 6), 1)])


def test_downsample_aliases_load_from_either_name():
    """diffusers' Downsample2D(name="conv") holds one conv under two names; a checkpoint with only
    `conv.*` (what diffusers' save_pretrained writes after deduplication) loads."""
    torch.manual_seed(0)
    tm = TDownsample2D(4, use_conv=True)
    randomise(tm)
    jm = Downsample2D(4, use_conv=True, rngs=nnx.Rngs(0))
    sd = {k: v.numpy() for k, v in tm.state_dict().items() if k.startswith("conv.")}
    jn.load_state_dict(jm, sd)
    assert jm.Conv2d_0 is jm.conv
    np.testing.assert_array_equal(np.asarray(jm.Conv2d_0.weight[...]), sd["conv.weight"])


def test_resampling_errors():
    with pytest.raises(AssertionError):
        TDownsample2D(4, use_conv=False, out_channels=6)
    with pytest.raises(ValueError, match="out_channels"):
        Downsample2D(4, use_conv=False, out_channels=6, rngs=nnx.Rngs(0))
    for tcls, jcls in ((TDownsample2D, Downsample2D), (TUpsample2D, Upsample2D)):
        with pytest.raises(AssertionError):
            tcls(4)(torch.zeros(1, 3, 4, 4))
        with pytest.raises(ValueError, match="channels=4"):
            jcls(4, rngs=nnx.Rngs(0))(jnp.zeros((1, 3, 4, 4)))
        with pytest.raises(ValueError, match="norm_type"):
            tcls(4, norm_type="batch")
        with pytest.raises(ValueError, match="norm_type"):
            jcls(4, norm_type="batch", rngs=nnx.Rngs(0))
        with pytest.raises(NotImplementedError, match="rms_norm"):
            jcls(4, norm_type="rms_norm", eps=1e-5, elementwise_affine=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="use_conv_transpose"):
        Upsample2D(4, use_conv_transpose=True, name="Conv2d_0", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("ours,theirs", [(Attention, TAttention), (ResnetBlock2D, TResnetBlock2D),
                                         (Downsample2D, TDownsample2D), (Upsample2D, TUpsample2D)])
def test_constructor_signatures_are_diffusers(ours, theirs):
    """diffusers' keywords, kinds and defaults, then keyword-only dtype=None and rngs."""
    import inspect

    mine = dict(inspect.signature(ours.__init__).parameters)
    assert mine.pop("dtype").default is None and mine.pop("rngs").kind is inspect.Parameter.KEYWORD_ONLY
    ref = inspect.signature(theirs.__init__).parameters
    assert list(mine) == list(ref)
    for name, p in ref.items():
        assert (mine[name].kind, mine[name].default) == (p.kind, p.default), name
