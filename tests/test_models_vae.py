"""jaxnn.models.AutoencoderKL against diffusers' AutoencoderKL: tiny VAEs with every parameter
randomised, saved by diffusers (safetensors, .bin, fp16 variant, shards) and loaded with
from_pretrained; encode / decode / forward outputs (eager and jit), gradients w.r.t. every
parameter, the posterior's methods, bfloat16, save_pretrained back into diffusers, errors."""

from __future__ import annotations

import copy
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL as TAutoencoderKL
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution as TDiagonalGaussian
from flax import nnx
from test_models_blocks import flat_grads, param_fn, randomise, rel_l2, torch_grads

import jaxnn.nnx as jn
from jaxnn._checkpoint import CheckpointNotFoundError
from jaxnn.models import AutoencoderKL, AutoencoderKLOutput, DecoderOutput, DiagonalGaussianDistribution

pytestmark = pytest.mark.xdist_group("models_vae")

CONFIG_A = dict(block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D"] * 2,
                up_block_types=["UpDecoderBlock2D"] * 2, norm_num_groups=4, layers_per_block=1)
# no quant convs, no mid attention, two layers, mish, 1 -> 2 channels, 3 blocks, UNetRes prefix
CONFIG_B = dict(block_out_channels=[8, 8, 16], down_block_types=["UNetResDownEncoderBlock2D"] * 3,
                up_block_types=["UpDecoderBlock2D"] * 3, norm_num_groups=2, layers_per_block=2, act_fn="mish",
                in_channels=1, out_channels=2, latent_channels=2, use_quant_conv=False, use_post_quant_conv=False,
                mid_block_add_attention=False)
X = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)


def _torch_vae(config, seed=0):
    torch.manual_seed(seed)
    tm = TAutoencoderKL(**config)
    randomise(tm, seed, std=0.2)
    return tm.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The torch VAE (config A), its folders (safetensors, .bin, fp16 variant, shards), the jaxnn
    model loaded from the safetensors folder, torch's reference outputs."""
    tm = _torch_vae(CONFIG_A)
    root = tmp_path_factory.mktemp("vae")
    dirs = {k: str(root / k) for k in ("st", "bin", "fp16", "shards")}
    tm.save_pretrained(dirs["st"])
    tm.save_pretrained(dirs["bin"], safe_serialization=False)
    tm.save_pretrained(dirs["shards"], max_shard_size="40KB")
    tm16 = _torch_vae(CONFIG_A).half()
    tm16.save_pretrained(dirs["fp16"], variant="fp16")
    assert len([f for f in os.listdir(dirs["shards"]) if f.endswith(".safetensors")]) > 1
    jm = AutoencoderKL.from_pretrained(dirs["st"])
    with torch.no_grad():
        post = tm.encode(torch.tensor(X)).latent_dist
        ref = dict(parameters=post.parameters.numpy(), mean=post.mean.numpy(), logvar=post.logvar.numpy(),
                   std=post.std.numpy(), var=post.var.numpy(), sample=tm(torch.tensor(X)).sample.numpy())
        ref["decoded"] = tm.decode(post.mean).sample.numpy()
    x, z = jnp.asarray(X), jnp.asarray(ref["mean"])
    # eager (op by op) and under one nnx.jit (one compilation for the three calls)
    eager = (jm.encode(x), jm.decode(z), jm(x), jm.encode(x, return_dict=False), jm.decode(z, return_dict=False),
             jm(x, return_dict=False))
    jitted = nnx.jit(lambda m, x, z: (m.encode(x), m.decode(z), m(x), m.encode(x, return_dict=False),
                                      m.decode(z, return_dict=False), m(x, return_dict=False)))(jm, x, z)
    return dict(tm=tm, jm=jm, dirs=dirs, ref=ref, eager=eager, jitted=jitted)


def test_state_dict_keys_and_config(tiny):
    tm, jm = tiny["tm"], tiny["jm"]
    assert sorted(jn.state_dict(jm)) == sorted(tm.state_dict())
    for k, v in tm.config.items():
        if not k.startswith("_"):
            assert jm.config[k] == (tuple(v) if isinstance(v, list) else v), k
    assert jm.config.scaling_factor == 0.18215 and jm.config.shift_factor is None
    assert not jm.encoder.down_blocks[0].resnets[0].dropout.training  # from_pretrained: eval mode


@pytest.mark.parametrize("mode", ["eager", "jitted"])
def test_encode_matches_diffusers(tiny, mode):
    ref = tiny["ref"]
    out, tup = tiny[mode][0], tiny[mode][3]
    assert isinstance(out, AutoencoderKLOutput) and isinstance(out.latent_dist, DiagonalGaussianDistribution)
    d = out.latent_dist
    for name in ("parameters", "mean", "logvar", "std", "var"):
        assert rel_l2(getattr(d, name), ref[name]) < 1e-5, name
    np.testing.assert_array_equal(np.asarray(d.mode()), np.asarray(d.mean))
    assert isinstance(tup, tuple) and len(tup) == 1
    np.testing.assert_array_equal(np.asarray(tup[0].mean), np.asarray(d.mean))


@pytest.mark.parametrize("mode", ["eager", "jitted"])
def test_decode_and_forward_match_diffusers(tiny, mode):
    ref = tiny["ref"]
    dec, out, (dec_t,), (out_t,) = (tiny[mode][i] for i in (1, 2, 4, 5))
    assert isinstance(dec, DecoderOutput) and dec.commit_loss is None
    assert isinstance(out, DecoderOutput) and out.sample.shape == (2, 3, 16, 16) and out.sample.dtype == jnp.float32
    assert rel_l2(dec.sample, ref["decoded"]) < 1e-5
    assert rel_l2(out.sample, ref["sample"]) < 1e-5
    np.testing.assert_array_equal(np.asarray(dec_t), np.asarray(dec.sample))
    np.testing.assert_array_equal(np.asarray(out_t), np.asarray(out.sample))


def test_gradients_match_diffusers(tiny):
    """A scalar loss through encode -> mode -> decode: gradients w.r.t. every parameter and the input."""
    tm, jm = tiny["tm"], tiny["jm"]
    cot = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    tm.zero_grad()
    x_t = torch.tensor(X, requires_grad=True)
    (tm(x_t).sample * torch.tensor(cot)).sum().backward()
    tg = torch_grads(tm)
    params, fn = param_fn(jm, lambda m, x: m.decode(m.encode(x).latent_dist.mode()).sample)
    loss = lambda p, x: jnp.sum(fn(p, x) * cot)  # noqa: E731
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(X))
    jg = flat_grads(gp)
    assert set(jg) == {k for k, _ in tm.named_parameters()}
    # relative L2 per parameter; the attention key biases have an exactly-zero gradient (softmax is
    # shift invariant): float32 noise on both sides, judged against the largest gradient instead
    scale = max(float(np.abs(g).max()) for g in tg.values())
    for k, v in jg.items():
        err = float(np.linalg.norm(np.asarray(v, np.float64) - tg[k]))
        if k.endswith("to_k.bias"):
            assert err <= 1e-5 * scale * np.sqrt(v.size), (k, err, scale)
        else:
            assert err <= 1e-4 * float(np.linalg.norm(tg[k])), (k, rel_l2(v, tg[k]))
    assert rel_l2(gx, x_t.grad.numpy()) < 1e-4
    tm.zero_grad()


def test_posterior_methods_match_diffusers(tiny):
    ref = tiny["ref"]
    params = ref["parameters"].copy()
    params[:, 4:, 0, 0] = 40.0  # logvar above the clamp
    params[:, 4:, 1, 1] = -50.0  # and below
    other_p = np.random.default_rng(2).standard_normal(params.shape).astype(np.float32)
    t, t_other = TDiagonalGaussian(torch.tensor(params)), TDiagonalGaussian(torch.tensor(other_p))
    j, j_other = DiagonalGaussianDistribution(jnp.asarray(params)), DiagonalGaussianDistribution(jnp.asarray(other_p))
    for name in ("mean", "logvar", "std", "var"):
        np.testing.assert_allclose(np.asarray(getattr(j, name)), getattr(t, name).numpy(), rtol=1e-6, atol=0)
    x = np.random.default_rng(3).standard_normal(j.mean.shape).astype(np.float32)
    np.testing.assert_allclose(np.asarray(j.kl()), t.kl().numpy(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(j.kl(j_other)), t.kl(t_other).numpy(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(j.nll(jnp.asarray(x))), t.nll(torch.tensor(x)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(j.nll(jnp.asarray(x), dims=(1, 2))),
                               t.nll(torch.tensor(x), dims=[1, 2]).numpy(), rtol=1e-5)
    # the clamp's gradient is torch's (1 inside [-30, 20] with the ends, 0 outside)
    pj = jnp.asarray(params)
    g = jax.grad(lambda p: jnp.sum(DiagonalGaussianDistribution(p).logvar))(pj)
    pt = torch.tensor(params, requires_grad=True)
    TDiagonalGaussian(pt).logvar.sum().backward()
    np.testing.assert_array_equal(np.asarray(g), pt.grad.numpy())
    # deterministic: zero std/var, kl and nll [0.]
    jd, td = DiagonalGaussianDistribution(pj, deterministic=True), TDiagonalGaussian(torch.tensor(params), True)
    assert float(jnp.abs(jd.std).max()) == 0.0 and float(jnp.abs(jd.var).max()) == 0.0
    for jv, tv in ((jd.kl(), td.kl()), (jd.nll(jnp.asarray(x)), td.nll(torch.tensor(x)))):
        assert jv.shape == tuple(tv.shape) and jv.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(jv), tv.numpy())
    # a pytree: through jit and back, deterministic kept
    back = jax.jit(lambda d: d)(jd)
    assert back.deterministic and isinstance(back, DiagonalGaussianDistribution)


def test_sample_posterior(tiny):
    jm, ref = tiny["jm"], tiny["ref"]
    key = jax.random.key(0)
    post = jm.encode(jnp.asarray(X)).latent_dist
    eps = jax.random.normal(key, post.mean.shape, jnp.float32)
    want = ref["mean"] + ref["std"] * np.asarray(eps)
    # mean + std * eps cancels to ~0 in places: compare as the models' outputs are (relative L2 error),
    # and elementwise against the scale of the result, not against each (possibly ~0) element
    assert rel_l2(post.sample(key), want) < 1e-5
    np.testing.assert_allclose(np.asarray(post.sample(key)), want, rtol=0, atol=1e-5 * float(np.abs(want).max()))
    out = jm(jnp.asarray(X), sample_posterior=True, rng=key)
    with torch.no_grad():
        expect = tiny["tm"].decode(torch.tensor(ref["mean"] + ref["std"] * np.asarray(eps))).sample.numpy()
    assert rel_l2(out.sample, expect) < 1e-5
    draws = np.asarray(post.sample(jax.random.key(1)))
    assert not np.allclose(draws, np.asarray(post.sample(jax.random.key(2))))
    with pytest.raises(ValueError, match="rng"):
        jm(jnp.asarray(X), sample_posterior=True)


def test_bfloat16(tiny):
    tm = tiny["tm"]
    jm = AutoencoderKL.from_pretrained(tiny["dirs"]["st"], dtype=jnp.bfloat16)
    assert all(v.dtype == jnp.bfloat16 for v in jn.state_dict(jm).values())
    out, out_f32_in = nnx.jit(lambda m, a, b: (m(a).sample, m(b).sample))(jm, jnp.asarray(X, jnp.bfloat16),
                                                                           jnp.asarray(X))
    assert out.dtype == jnp.bfloat16
    with torch.no_grad():
        t16 = copy.deepcopy(tm).to(torch.bfloat16)(torch.tensor(X).to(torch.bfloat16)).sample.float().numpy()
    ref = tiny["ref"]["sample"]
    err_j, err_t = rel_l2(np.asarray(out, np.float32), ref), rel_l2(t16, ref)
    assert err_j <= 3 * err_t + 1e-3, (err_j, err_t)
    # float32 input is cast to the model's dtype
    assert out_f32_in.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(out_f32_in, np.float32), np.asarray(out, np.float32))


def test_from_pretrained_formats(tiny):
    """.bin and shards hold the same float32 weights; the fp16 variant loads cast up to float32."""
    ref = jn.state_dict(tiny["jm"])
    for kind in ("bin", "shards"):
        m = AutoencoderKL.from_pretrained(tiny["dirs"][kind])
        sd = jn.state_dict(m)
        assert sorted(sd) == sorted(ref)
        for k in ref:
            np.testing.assert_array_equal(np.asarray(sd[k]), np.asarray(ref[k]), err_msg=f"{kind} {k}")
    m16 = AutoencoderKL.from_pretrained(tiny["dirs"]["fp16"], variant="fp16")
    tm16 = _torch_vae(CONFIG_A).half()
    for k, v in jn.state_dict(m16).items():
        assert v.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(v), tm16.state_dict()[k].float().numpy(), err_msg=k)
    with pytest.raises(jn.CheckpointError, match="fp16"):
        AutoencoderKL.from_pretrained(tiny["dirs"]["st"], variant="fp16")


def test_save_pretrained_round_trip_into_diffusers(tiny, tmp_path):
    jm, ref = tiny["jm"], tiny["ref"]
    jm.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["_class_name"] == "AutoencoderKL" and cfg["block_out_channels"] == [8, 16]
    back = TAutoencoderKL.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        np.testing.assert_array_equal(back(torch.tensor(X)).sample.numpy(), tiny["tm"](torch.tensor(X)).sample.numpy())
    again = AutoencoderKL.from_pretrained(tmp_path)
    assert rel_l2(again(jnp.asarray(X)).sample, ref["sample"]) < 1e-5


def test_other_configuration_matches_diffusers(tmp_path):
    tm = _torch_vae(CONFIG_B, seed=1)
    tm.save_pretrained(tmp_path)
    jm = AutoencoderKL.from_pretrained(tmp_path)
    assert jm.quant_conv is None and jm.post_quant_conv is None
    assert sorted(jn.state_dict(jm)) == sorted(tm.state_dict())
    x = np.random.default_rng(4).standard_normal((1, 1, 12, 12)).astype(np.float32)  # 12 -> 6 -> 3 latents
    with torch.no_grad():
        t_post = tm.encode(torch.tensor(x)).latent_dist
        t_out = tm(torch.tensor(x)).sample.numpy()
    x_odd = np.random.default_rng(5).standard_normal((1, 1, 7, 9)).astype(np.float32)  # odd sizes, padding (0, 1)
    with torch.no_grad():
        t_mean_odd = tm.encode(torch.tensor(x_odd)).latent_dist.mean.numpy()
    out = nnx.jit(lambda m, x, xo: (m.encode(x).latent_dist.mean, m(x).sample, m.encode(xo).latent_dist.mean))(
        jm, jnp.asarray(x), jnp.asarray(x_odd))
    assert out[0].shape == (1, 2, 3, 3)
    assert rel_l2(out[0], t_post.mean.numpy()) < 1e-5
    assert rel_l2(out[1], t_out) < 1e-5
    assert out[2].shape == t_mean_odd.shape == (1, 2, 1, 2)
    assert rel_l2(out[2], t_mean_odd) < 1e-5


def test_from_config_defaults():
    config = {"block_out_channels": [4], "norm_num_groups": 2, "_class_name": "AutoencoderKL"}
    m = nnx.eval_shape(lambda: AutoencoderKL(config, rngs=nnx.Rngs(0)))  # shapes only: no initialisation cost
    t = TAutoencoderKL(block_out_channels=[4], norm_num_groups=2)
    assert sorted(jn.state_dict(m)) == sorted(t.state_dict())
    for k, v in jn.state_dict(m).items():
        assert v.shape == tuple(t.state_dict()[k].shape), k
    assert m.config.layers_per_block == 1 and m.config.force_upcast is True and m.config.sample_size == 32
    assert "_class_name" not in m.config
    assert m.encoder.down_blocks[0].resnets[0].dropout.training  # a fresh model trains, as torch's
    with pytest.raises(TypeError, match="mapping"):
        AutoencoderKL("config.json", rngs=nnx.Rngs(0))  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize("change,error,match", [
    (dict(down_block_types=["DownBlock2D", "DownEncoderBlock2D"]), NotImplementedError, "DownBlock2D"),
    (dict(up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"]), NotImplementedError, "AttnUpDecoderBlock2D"),
    (dict(down_block_types=["DownEncoderBlock2D"]), ValueError, "down_block_types"),
    (dict(norm_num_groups=3), ValueError, "norm_num_groups"),
    (dict(act_fn="tanh"), ValueError, "act_fn"),
    (dict(layers_per_block=0), ValueError, "layers_per_block"),
    (dict(use_quant_conv="yes"), ValueError, "use_quant_conv"),
])
def test_config_errors(change, error, match):
    with pytest.raises(error, match=match):
        AutoencoderKL.from_config(dict(CONFIG_A, **change))


def test_unknown_config_keys_warned_and_ignored():
    """A misspelled key is ignored with a warning naming it, and the option keeps its default, as
    diffusers' from_config does (it logs the same and ignores the key)."""
    cfg = dict(CONFIG_A, latent_chanels=2, _class_name="AutoencoderKL")
    with pytest.warns(UserWarning, match=r"AutoencoderKL: the configuration keys \['latent_chanels'\]"):
        m = nnx.eval_shape(lambda: AutoencoderKL(cfg, rngs=nnx.Rngs(0)))
    with torch.device("meta"):
        t = TAutoencoderKL.from_config(cfg)
    assert m.config.latent_channels == t.config.latent_channels == 4 and "latent_chanels" not in m.config
    assert {k: v.shape for k, v in jn.state_dict(m).items()} == {k: tuple(v.shape) for k, v in t.state_dict().items()}


def test_input_and_checkpoint_errors(tiny, tmp_path):
    jm = tiny["jm"]
    with pytest.raises(ValueError, match=r"latent_channels"):
        jm.decode(jnp.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"\(batch, 4, height, width\)"):
        jm.decode(jnp.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="in_channels"):
        jm.encode(jnp.zeros((1, 4, 8, 8)))
    with pytest.raises(TypeError, match="floating"):
        jm.encode(jnp.zeros((1, 3, 8, 8), jnp.int32))
    # a folder with the config and no weights
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(json.dumps(CONFIG_A))
    with pytest.raises(jn.CheckpointError, match="holds no checkpoint"):
        AutoencoderKL.from_pretrained(tmp_path / "empty")
    # another model's weights under this config
    other = tmp_path / "other"
    _torch_vae(CONFIG_B).save_pretrained(other)
    (other / "config.json").write_text(json.dumps(CONFIG_A))
    with pytest.raises(jn.CheckpointError):
        AutoencoderKL.from_pretrained(other)
    with pytest.raises(CheckpointNotFoundError, match="local folder"):
        AutoencoderKL.from_pretrained("stabilityai/sd-vae-ft-mse")


def test_empty_batch_errors_like_diffusers(tiny):
    """diffusers' mid-block attention cannot reshape an empty batch (view(0, -1, ...)): it raises, and
    jaxnn raises a clear ValueError (it used to be a bare ZeroDivisionError from jnp.reshape)."""
    tm, jm = tiny["tm"], tiny["jm"]
    with torch.no_grad(), pytest.raises(RuntimeError, match="0 elements"):
        tm.encode(torch.zeros(0, 3, 8, 8))
    with pytest.raises(ValueError, match=r"Attention: empty inputs .*\(0, 16, 4, 4\)"):
        jm.encode(jnp.zeros((0, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"Attention: empty inputs"):
        jm.decode(jnp.zeros((0, 4, 2, 2)))
