"""jaxnn.models.UNet2DConditionModel against diffusers' UNet2DConditionModel (torch, CPU).

Tiny UNets with every parameter randomised in torch, saved with diffusers' ``save_pretrained`` and
loaded with ``jaxnn.models.UNet2DConditionModel.from_pretrained``. Each configuration is compiled
once (a module-scoped jitted function) and reused: an SD 1.x-like UNet (outputs with and without
jit, gradients w.r.t. every parameter, bfloat16), an SD 2.x-like one (linear projections,
per-block head counts, upcast attention, only-cross-attention, a timestep class embedding
concatenated to the time embedding, scale-shift resnets, no mid block, an odd latent size,
ControlNet residuals; bfloat16 against both diffusers attention processors) and an SDXL-like one
(text_time embeddings, 2 transformer layers, a plain first down block, a class Embedding, a
timestep condition, encoder_hid_proj); all three with the gradient of every parameter.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel as TorchUNet
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from flax import nnx

import jaxnn.nnx as jn
from jaxnn.models import UNet2DConditionModel
from jaxnn.models._embeddings import get_timestep_embedding

pytestmark = pytest.mark.xdist_group("models_unet")

SD1 = dict(block_out_channels=(32, 64), norm_num_groups=8, layers_per_block=1, cross_attention_dim=16,
           attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
           up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), sample_size=8)
SD2 = dict(block_out_channels=(32, 64), norm_num_groups=8, layers_per_block=(1, 2), cross_attention_dim=(24, 24),
           attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True,
           only_cross_attention=(True, False), down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
           up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), mid_block_type=None,
           class_embed_type="timestep", resnet_time_scale_shift="scale_shift", center_input_sample=True,
           flip_sin_to_cos=False, freq_shift=1, act_fn="mish", time_embedding_act_fn="silu")
SDXL = dict(block_out_channels=(32, 64), norm_num_groups=8, layers_per_block=1, cross_attention_dim=16,
            encoder_hid_dim=12, attention_head_dim=(2, 4), use_linear_projection=True,
            transformer_layers_per_block=(1, 2), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), addition_embed_type="text_time",
            addition_time_embed_dim=4, projection_class_embeddings_input_dim=8 + 6 * 4, num_class_embeds=3,
            time_cond_proj_dim=6, mid_block_scale_factor=0.5, conv_in_kernel=1,
            conv_out_kernel=1)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def randomise(model, seed):
    """Every parameter random (diffusers zero-initialises conv_out and the attention outputs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.15
            p.copy_(1 + noise if ("norm" in name and name.endswith("weight")) else noise)
    return model


def torch_unet(cfg, seed):
    return randomise(TorchUNet(**cfg), seed).eval()


def rng(seed):
    return np.random.default_rng(seed)


def jit_forward(model):
    """A jitted ``(params, kwargs) -> sample`` over the model's graph, compiled once per input structure."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def f(state, kwargs):
        return nnx.merge(graphdef, state)(**kwargs).sample

    return lambda **kw: np.asarray(f(state, kw))


def to_t(tree):
    return {k: (torch.tensor(np.asarray(v)) if isinstance(v, np.ndarray) else
                {kk: torch.tensor(vv) for kk, vv in v.items()} if isinstance(v, dict) else
                tuple(torch.tensor(x) for x in v) if isinstance(v, tuple) else v)
            for k, v in tree.items()}


def to_j(tree):
    return {k: (jnp.asarray(v) if isinstance(v, np.ndarray) else
                {kk: jnp.asarray(vv) for kk, vv in v.items()} if isinstance(v, dict) else
                tuple(jnp.asarray(x) for x in v) if isinstance(v, tuple) else v)
            for k, v in tree.items()}


# --- fixtures: one torch model, one folder, one loaded jaxnn model per configuration ---------------


@pytest.fixture(scope="module")
def sd1(tmp_path_factory):
    tm = torch_unet(SD1, 0)
    folder = tmp_path_factory.mktemp("sd1")
    tm.save_pretrained(folder)
    model = UNet2DConditionModel.from_pretrained(folder)
    r = rng(0)
    mask = np.ones((2, 5), np.float32)
    mask[1, 3:] = 0
    inputs = dict(sample=r.standard_normal((2, 4, 8, 8), np.float32), timestep=np.array([10, 500]),
                  encoder_hidden_states=r.standard_normal((2, 5, 16), np.float32), encoder_attention_mask=mask)
    with torch.no_grad():
        ref = tm(**to_t(inputs)).sample.numpy()
    return dict(torch=tm, folder=folder, model=model, inputs=inputs, ref=ref)


def test_state_dict_keys_and_values(sd1):
    tsd = sd1["torch"].state_dict()
    jsd = jn.state_dict(sd1["model"])
    assert sorted(jsd) == sorted(tsd)
    for k, v in tsd.items():
        np.testing.assert_array_equal(np.asarray(jsd[k]), v.numpy(), err_msg=k)


def check_forward_and_grads(tm, model, inputs, ref, seed=5):
    """One compiled value_and_grad gives the jitted forward output (within 1e-5 of ``ref``) and
    d(loss)/d(every parameter) (within 1e-4 of torch autograd), loss = sum(w * sample)."""
    w = rng(seed).standard_normal(ref.shape).astype(np.float32)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, kw):
        out = nnx.merge(graphdef, params, rest)(**kw).sample
        return jnp.sum(out * jnp.asarray(w)), out

    (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, to_j(inputs))
    assert rel(out, ref) < 1e-5
    tm.zero_grad()
    (tm(**to_t(inputs)).sample * torch.tensor(w)).sum().backward()
    gsd = jn.state_dict(nnx.merge(graphdef, grads, rest))
    names = dict(tm.named_parameters())
    assert set(names) <= set(gsd)
    for name, p in names.items():
        assert p.grad is not None and rel(gsd[name], p.grad.numpy()) < 1e-4, name


def test_sd1_forward_jit_and_grads(sd1):
    """One compiled value_and_grad gives the jitted forward output and d(loss)/d(every parameter)."""
    check_forward_and_grads(sd1["torch"], sd1["model"], sd1["inputs"], sd1["ref"])


def test_sd1_eager(sd1):
    # {"scale": s} only scales PEFT LoRA layers in diffusers: no effect without them, as here
    out = sd1["model"](**to_j(sd1["inputs"]), cross_attention_kwargs={"scale": 0.7}, return_dict=False)
    assert isinstance(out, tuple) and len(out) == 1
    assert rel(out[0], sd1["ref"]) < 1e-5
    out = sd1["model"](**to_j(sd1["inputs"]))
    assert out[0] is out["sample"] is out.sample  # diffusers' BaseOutput indexing


@pytest.mark.parametrize("form", ["int", "float", "0d-int", "0d-float", "1-elem", "per-batch-float"])
def test_timestep_forms(sd1, form):
    """Every accepted timestep form embeds as diffusers' get_time_embed does (broadcast to the batch)."""
    tm, model = sd1["torch"], sd1["model"]
    sample = np.zeros((3, 4, 8, 8), np.float32)
    t_torch, t_jax = {
        "int": (7, 7), "float": (7.5, 7.5),
        "0d-int": (torch.tensor(321), jnp.asarray(321)), "0d-float": (torch.tensor(3.25), jnp.asarray(3.25)),
        "1-elem": (torch.tensor([999]), jnp.asarray([999])),
        "per-batch-float": (torch.tensor([1.5, 20.0, 999.0]), jnp.asarray([1.5, 20.0, 999.0])),
    }[form]
    ref = tm.get_time_embed(torch.tensor(sample), t_torch).numpy()
    out = model._time_embed(jnp.asarray(sample), t_jax)
    assert out.shape == ref.shape == (3, 32)
    assert rel(out, ref) < 1e-6


def test_bfloat16(sd1):
    """bfloat16 parameters and computation: error vs torch float32 within a small factor of torch's own
    bfloat16 error."""
    model = UNet2DConditionModel.from_pretrained(sd1["folder"], dtype=jnp.bfloat16)
    assert all(v.dtype == jnp.bfloat16 for v in jn.state_dict(model).values())
    inputs = sd1["inputs"]
    out = jit_forward(model)(**to_j(inputs))
    assert out.dtype == jnp.bfloat16
    tb = TorchUNet.from_pretrained(sd1["folder"], torch_dtype=torch.bfloat16).eval()
    tin = to_t(inputs)
    with torch.no_grad():
        tref = tb(tin["sample"].bfloat16(), tin["timestep"], tin["encoder_hidden_states"].bfloat16(),
                  encoder_attention_mask=tin["encoder_attention_mask"]).sample.float().numpy()
    torch_err, jax_err = rel(tref, sd1["ref"]), rel(out.astype(np.float32), sd1["ref"])
    assert 0 < torch_err < 0.05
    assert jax_err < 3 * torch_err


def test_save_pretrained_round_trip(sd1, tmp_path):
    sd1["model"].save_pretrained(tmp_path)
    with open(tmp_path / "config.json") as f:
        cfg = json.load(f)
    assert cfg["_class_name"] == "UNet2DConditionModel"
    back = TorchUNet.from_pretrained(tmp_path).eval()
    def plain(config):
        return json.loads(json.dumps({k: v for k, v in config.items() if not k.startswith("_")}))

    assert plain(back.config) == plain(sd1["torch"].config)
    ref = sd1["torch"].state_dict()
    for k, v in back.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=0, atol=0, msg=k)
    with torch.no_grad():
        out = back(**to_t(sd1["inputs"])).sample.numpy()
    np.testing.assert_array_equal(out, sd1["ref"])


@pytest.mark.parametrize("how", ["fp16-variant", "sharded", "bin"])
def test_from_pretrained_formats(sd1, tmp_path, how):
    tm = sd1["torch"]
    if how == "fp16-variant":
        half = TorchUNet.from_config(tm.config)
        half.load_state_dict(tm.state_dict())
        half.half().save_pretrained(tmp_path, variant="fp16")
        assert any(".fp16." in f for f in os.listdir(tmp_path))
        model = UNet2DConditionModel.from_pretrained(tmp_path, variant="fp16")
        expected = {k: v.half().float().numpy() for k, v in tm.state_dict().items()}
    else:
        kw = dict(max_shard_size="20KB") if how == "sharded" else dict(safe_serialization=False)
        tm.save_pretrained(tmp_path, **kw)
        if how == "sharded":
            assert any(f.endswith(".index.json") for f in os.listdir(tmp_path))
        model = UNet2DConditionModel.from_pretrained(tmp_path)
        expected = {k: v.numpy() for k, v in tm.state_dict().items()}
    got = jn.state_dict(model)
    assert sorted(got) == sorted(expected)
    for k, v in expected.items():
        assert got[k].dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(got[k]), v, err_msg=k)


# --- SD 2.x-like: linear projections, head lists, upcast, odd latent, ControlNet residuals --------


def test_sd2_like_odd_latent_controlnet(tmp_path):
    tm = torch_unet(SD2, 1)
    tm.save_pretrained(tmp_path)
    model = UNet2DConditionModel.from_pretrained(tmp_path)
    r = rng(1)
    sample = r.standard_normal((2, 4, 9, 9), np.float32)  # 9 -> 5: the upsampler is told 9
    # skip connections: conv_in, 1 resnet + downsample, 2 resnets (final block)
    shapes = [(2, 32, 9, 9), (2, 32, 9, 9), (2, 32, 5, 5), (2, 64, 5, 5), (2, 64, 5, 5)]
    inputs = dict(sample=sample, timestep=np.array([3.0, 700.0], np.float32),
                  encoder_hidden_states=r.standard_normal((2, 4, 24), np.float32),
                  class_labels=np.array([10, 250]),
                  down_block_additional_residuals=tuple(r.standard_normal(s, np.float32) for s in shapes),
                  mid_block_additional_residual=r.standard_normal((2, 64, 5, 5), np.float32))
    with torch.no_grad():
        ref = tm(**to_t(inputs)).sample.numpy()
    assert ref.shape == (2, 4, 9, 9)
    check_forward_and_grads(tm, model, inputs, ref)  # jitted output and every parameter's gradient
    # bfloat16 with upcast_attention=True: diffusers' AttnProcessor computes the attention scores and
    # softmax in float32 from the bfloat16 q/k (its default AttnProcessor2_0 leaves that to torch's
    # SDPA kernel); jaxnn always does (scaled_dot_product_attention upcasts half-precision inputs). The
    # error vs torch float32 stays within torch's own bfloat16 errors, with either processor.
    half = UNet2DConditionModel.from_pretrained(tmp_path, dtype=jnp.bfloat16)
    assert half.down_blocks[0].attentions[0].transformer_blocks[0].attn1.upcast_attention
    out16 = jit_forward(half)(**to_j(inputs))  # float32 inputs are cast to the model's dtype
    assert out16.dtype == jnp.bfloat16
    errs = {}
    for name, processor in (("AttnProcessor", AttnProcessor()), ("AttnProcessor2_0", AttnProcessor2_0())):
        tb = TorchUNet.from_pretrained(tmp_path, torch_dtype=torch.bfloat16).eval()
        tb.set_attn_processor(processor)
        tin = {k: (v.bfloat16() if isinstance(v, torch.Tensor) and v.is_floating_point() and k != "timestep" else
                   tuple(x.bfloat16() for x in v) if isinstance(v, tuple) else v) for k, v in to_t(inputs).items()}
        with torch.no_grad():
            errs[name] = rel(tb(**tin).sample.float().numpy(), ref)
    jax_err = rel(out16.astype(np.float32), ref)
    assert 0 < min(errs.values()) < 0.05 and jax_err < 1.5 * min(errs.values()), (jax_err, errs)


# --- SDXL-like: text_time, 2 transformer layers, plain first block, concat class embeddings -------


def test_sdxl_like(tmp_path):
    tm = torch_unet(SDXL, 2)
    tm.save_pretrained(tmp_path)
    model = UNet2DConditionModel.from_pretrained(tmp_path)
    assert len(model.down_blocks[1].attentions[0].transformer_blocks) == 2
    r = rng(2)
    inputs = dict(sample=r.standard_normal((2, 4, 8, 8), np.float32), timestep=np.array(400),
                  encoder_hidden_states=r.standard_normal((2, 6, 12), np.float32), class_labels=np.array([0, 2]),
                  timestep_cond=r.standard_normal((2, 6), np.float32),
                  added_cond_kwargs=dict(text_embeds=r.standard_normal((2, 8), np.float32),
                                         time_ids=np.array([[64, 64, 0, 0, 64, 64], [32, 48, 4, 2, 64, 64]],
                                                           np.float32)))
    with torch.no_grad():
        ref = tm(**to_t(inputs)).sample.numpy()
    check_forward_and_grads(tm, model, inputs, ref)  # jitted output and every parameter's gradient
    # text_embeds / time_ids with a batch of 1 broadcast over the batch, as diffusers adds them
    emb = r.standard_normal((2, 128), np.float32)
    added: dict[str, np.ndarray] = inputs["added_cond_kwargs"]  # pyright: ignore[reportAssignmentType]
    one = {k: v[:1] for k, v in added.items()}
    with torch.no_grad():
        ref_aug = tm.get_aug_embed(torch.tensor(emb), torch.zeros(1), {k: torch.tensor(v) for k, v in one.items()})
    aug = model._aug_embed(jnp.asarray(emb), {k: jnp.asarray(v) for k, v in one.items()})
    assert aug is not None and ref_aug is not None
    assert aug.shape == ref_aug.shape == (1, 128) and rel(aug, ref_aug.numpy()) < 1e-6


# --- pieces --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim,flip,shift,scale,max_period", [
    (32, True, 0, 1, 10000), (33, False, 1, 1, 10000), (8, True, 1, 2.5, 100), (7, False, 0.5, 1, 10000),
    (320, True, 0, 1, 10000)])
def test_get_timestep_embedding(dim, flip, shift, scale, max_period):
    from diffusers.models.embeddings import get_timestep_embedding as ref_fn

    t = np.array([0, 1, 17, 250.5, 999], np.float32)
    ref = ref_fn(torch.tensor(t), dim, flip, shift, scale, max_period).numpy()
    out = get_timestep_embedding(jnp.asarray(t), dim, flip, shift, scale, max_period)
    assert out.dtype == jnp.float32 and out.shape == ref.shape
    # torch's vectorised exp is within 1 ulp, not correctly rounded (jaxnn's is): one ulp of a frequency
    # moves sin/cos by up to |t * scale| ulps, so the bound grows with the argument.
    bound = 4e-7 + 2 * np.finfo(np.float32).eps * np.abs(t * scale)[:, None]
    assert np.all(np.abs(np.asarray(out) - ref) <= bound)


@pytest.mark.parametrize("extra", [
    dict(class_embed_type="projection", projection_class_embeddings_input_dim=5),
    dict(class_embed_type="simple_projection", projection_class_embeddings_input_dim=5),
    dict(class_embed_type="identity"),
    dict(num_class_embeds=4),
    dict(mid_block_type=None, timestep_post_act="gelu", transformer_layers_per_block=((1,), (2,)),
         reverse_transformer_layers_per_block=((2, 1), (1, 1))),
])
def test_config_variants_keys_and_class_embedding(extra):
    """Parameter names/shapes for the remaining embedding options, and the class embedding numbers."""
    cfg = dict(SD1, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
               up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), **extra)
    tm = torch_unet(cfg, 3)
    model = nnx.eval_shape(lambda: UNet2DConditionModel(cfg, rngs=nnx.Rngs(0)))
    tsd = tm.state_dict()
    jsd = jn.state_dict(model)
    assert {k: tuple(v.shape) for k, v in jsd.items()} == {k: tuple(v.shape) for k, v in tsd.items()}
    jn.load_state_dict(model, {k: v.numpy() for k, v in tsd.items()})
    labels = {"projection": np.ones((2, 5), np.float32), "simple_projection": np.ones((2, 5), np.float32),
              "identity": rng(4).standard_normal((2, 128), np.float32)}.get(extra.get("class_embed_type"))
    if labels is None and "num_class_embeds" in extra:
        labels = np.array([3, 1])
    sample = np.zeros((2, 4, 8, 8), np.float32)
    if labels is not None:
        ref = tm.get_class_embed(torch.tensor(sample), torch.tensor(labels)).detach().numpy()
        out = model._class_embed(jnp.asarray(sample), jnp.asarray(labels))
        assert rel(out, ref) < 1e-6
    else:
        assert model.mid_block is None and model.class_embedding is None


def test_released_sd21_config_keys():
    """The Stable Diffusion 2.1 UNet configuration as released (diffusers' config.json): the same
    parameter names and shapes as diffusers' model (built on torch's meta device: no memory)."""
    cross, plain = "CrossAttnDownBlock2D", "DownBlock2D"
    config = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.10.0.dev0", "act_fn": "silu",
              "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
              "center_input_sample": False, "cross_attention_dim": 1024, "down_block_types": [cross] * 3 + [plain],
              "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
              "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
              "norm_num_groups": 32, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
              "sample_size": 96, "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
              "use_linear_projection": True, "upcast_attention": True}
    with torch.device("meta"):
        tm = TorchUNet.from_config(config)
    model = nnx.eval_shape(lambda: UNet2DConditionModel(config, rngs=nnx.Rngs(0)))
    assert {k: tuple(v.shape) for k, v in jn.state_dict(model).items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}


@pytest.mark.parametrize("activation_fn", ["geglu", "gelu", "gelu-approximate", "geglu-approximate"])
def test_feed_forward(activation_fn):
    from diffusers.models.attention import FeedForward as TorchFF

    from jaxnn.models._transformer_2d import FeedForward

    tm = randomise(TorchFF(8, dim_out=6, mult=2, activation_fn=activation_fn, final_dropout=True), 11).eval()
    model = FeedForward(8, dim_out=6, mult=2, activation_fn=activation_fn, final_dropout=True, rngs=nnx.Rngs(0))
    assert sorted(jn.state_dict(model)) == sorted(tm.state_dict())
    jn.load_state_dict(model, {k: v.numpy() for k, v in tm.state_dict().items()})
    x = rng(11).standard_normal((2, 3, 8), np.float32)
    with torch.no_grad():
        ref = tm(torch.tensor(x)).numpy()
    assert rel(model(jnp.asarray(x)), ref) < 1e-6


@pytest.mark.parametrize("kw", [
    dict(double_self_attention=True, attention_bias=True),
    dict(cross_attention_dim=5, only_cross_attention=True, norm_elementwise_affine=False),
    dict(cross_attention_dim=5, upcast_attention=True, ff_inner_dim=12, ff_bias=False, attention_out_bias=False),
    dict(),  # no cross-attention: no norm2 / attn2
])
def test_basic_transformer_block(kw):
    from diffusers.models.attention import BasicTransformerBlock as TorchBlock

    from jaxnn.models._transformer_2d import BasicTransformerBlock

    tm = randomise(TorchBlock(8, 2, 4, **kw), 12).eval()
    model = BasicTransformerBlock(8, 2, 4, **kw, rngs=nnx.Rngs(0))
    assert sorted(jn.state_dict(model)) == sorted(tm.state_dict())
    jn.load_state_dict(model, {k: v.numpy() for k, v in tm.state_dict().items()})
    model.eval()
    r = rng(12)
    x = r.standard_normal((2, 6, 8), np.float32)
    enc = r.standard_normal((2, 3, 5), np.float32) if kw.get("cross_attention_dim") else None
    with torch.no_grad():
        ref = tm(torch.tensor(x), encoder_hidden_states=None if enc is None else torch.tensor(enc)).numpy()
    out = model(jnp.asarray(x), encoder_hidden_states=None if enc is None else jnp.asarray(enc))
    assert rel(out, ref) < 1e-5


def test_transformer_2d_unsupported():
    from jaxnn.models._transformer_2d import BasicTransformerBlock, FeedForward, Transformer2DModel

    with pytest.raises(NotImplementedError, match="activation_fn='swiglu'"):
        FeedForward(8, activation_fn="swiglu", rngs=nnx.Rngs(0))
    with pytest.raises(NotImplementedError, match="norm_type='ada_norm_zero'"):
        BasicTransformerBlock(8, 2, 4, norm_type="ada_norm_zero", rngs=nnx.Rngs(0))
    with pytest.raises(NotImplementedError, match="patch_size=2"):
        Transformer2DModel(2, 4, in_channels=8, patch_size=2, norm_num_groups=2, rngs=nnx.Rngs(0))


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("option,value", [
    ("down_block_types", ("SimpleCrossAttnDownBlock2D", "DownBlock2D")),
    ("mid_block_type", "UNetMidBlock2DSimpleCrossAttn"),
    ("time_embedding_type", "fourier"),
    ("addition_embed_type", "text"),
    ("dual_cross_attention", True),
    ("attention_type", "gated"),
    ("encoder_hid_dim_type", "image_proj"),
])
def test_unsupported_option(option, value):
    cfg = dict(SD1, **{option: value})
    if option == "encoder_hid_dim_type":
        cfg["encoder_hid_dim"] = 8
    with pytest.raises(NotImplementedError, match=option):
        UNet2DConditionModel(cfg, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("cfg,match", [
    (dict(block_out_channels=(32, 64, 64)), "block_out_channels"),
    (dict(attention_head_dim=(2, 2, 2)), "attention_head_dim"),
    (dict(num_attention_heads=2), "num_attention_heads"),
    (dict(only_cross_attention=(True,)), "only_cross_attention"),
    (dict(transformer_layers_per_block=((1, 1), 1)), "reverse_transformer_layers_per_block"),
    (dict(class_embed_type="projection"), "projection_class_embeddings_input_dim"),
    (dict(act_fn="tanh"), "tanh"),
    (dict(encoder_hid_dim=8, cross_attention_dim=(16, 16)), "encoder_hid_dim"),
])
def test_malformed_config(cfg, match):
    with pytest.raises(ValueError, match=match):
        UNet2DConditionModel(dict(SD1, **cfg), rngs=nnx.Rngs(0))


def test_unknown_config_keys_warned_and_ignored():
    """A key that is not an option (here a misspelling) is ignored with a warning naming it, the option
    keeping its default, as diffusers' from_config does (it logs and ignores the key)."""
    cfg = dict(SD1, use_linear_projections=True, _class_name="UNet2DConditionModel", _diffusers_version="0.42.1")
    with pytest.warns(UserWarning, match=r"UNet2DConditionModel: the configuration keys \['use_linear_projections'\]"):
        model = nnx.eval_shape(lambda: UNet2DConditionModel(cfg, rngs=nnx.Rngs(0)))
    with torch.device("meta"):
        tm = TorchUNet.from_config(cfg)
    assert model.config.use_linear_projection is tm.config.use_linear_projection is False
    assert "use_linear_projections" not in model.config
    assert {k: tuple(v.shape) for k, v in jn.state_dict(model).items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}  # 1x1 conv proj_in, not Linear


def test_load_errors(sd1, tmp_path):
    from jaxnn._checkpoint import CheckpointError, CheckpointNotFoundError

    (tmp_path / "empty").mkdir()
    with open(tmp_path / "empty" / "config.json", "w") as f:
        json.dump(dict(SD1), f)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        UNet2DConditionModel.from_pretrained(tmp_path / "empty")
    # another model's weights (a VAE's) under a UNet config; a UNet of another width (shape mismatch)
    from diffusers import AutoencoderKL

    AutoencoderKL(block_out_channels=(8,), norm_num_groups=8, latent_channels=2).save_pretrained(tmp_path / "vae")
    torch_unet(dict(SD1, block_out_channels=(16, 32)), 9).save_pretrained(tmp_path / "narrow")
    for name in ("vae", "narrow"):
        with open(tmp_path / name / "config.json", "w") as f:
            json.dump(dict(SD1), f)
        with pytest.raises(CheckpointError, match="conv_in|down_blocks"):
            UNet2DConditionModel.from_pretrained(tmp_path / name)
    with pytest.raises(CheckpointNotFoundError, match="local"):
        UNet2DConditionModel.from_pretrained("runwayml/stable-diffusion-v1-5", subfolder="unet")


def test_input_errors(sd1):
    model, inputs = sd1["model"], to_j(sd1["inputs"])
    bad = [
        (dict(sample=jnp.zeros((2, 3, 8, 8))), "in_channels=4"),
        (dict(sample=jnp.zeros((4, 8, 8))), "sample"),
        (dict(encoder_hidden_states=jnp.zeros((2, 5, 12))), "16"),
        (dict(encoder_hidden_states=jnp.zeros((5, 16))), "encoder_hidden_states"),
        (dict(encoder_hidden_states=jnp.zeros((3, 5, 16))), "batch"),
        (dict(timestep=jnp.zeros((3,))), "timestep"),
    ]
    for change, match in bad:
        with pytest.raises(ValueError, match=match):
            model(**dict(inputs, **change))
    for t in (None, "5"):
        with pytest.raises(TypeError, match="`timestep`"):
            model(**dict(inputs, timestep=t))
    with pytest.raises(NotImplementedError, match="processor"):
        model(**inputs, cross_attention_kwargs={"gligen": {}})
    with pytest.raises(NotImplementedError, match="T2I"):
        model(**inputs, down_block_additional_residuals=(inputs["sample"],))
    with pytest.raises(ValueError, match="mid_block_additional_residual"):
        model(**inputs, mid_block_additional_residual=jnp.zeros((2, 64, 4, 4)))
