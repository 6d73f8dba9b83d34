"""examples/finetune_unet.py against diffusers + torch: the same fine-tuning steps (DDPM noise,
epsilon / v-prediction MSE, torch.optim.AdamW, clip_grad_norm_, diffusers' EMAModel) on the same
weights, data, noise and timesteps; the FSDP-sharded step on 8 simulated CPU devices (conftest sets
--xla_force_host_platform_device_count=8 before JAX starts) against the single-device one; the
saved folders loaded by diffusers; ``from_pretrained(sharding=...)``.

A tiny UNet with every parameter randomised (diffusers zero-initialises conv_out, which would leave
most gradients zero at the first step). Three compilations of the train step in all: epsilon on one
device, v-prediction on one device (through ``main``), epsilon on 8 devices (through ``main``).
"""

import importlib
import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from diffusers import DDPMScheduler as TorchDDPM
from diffusers import UNet2DConditionModel as TorchUNet
from diffusers.training_utils import EMAModel
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from torch_ref import to_torch

import jaxnn.nnx as jn
from jaxnn import optim
from jaxnn.models import UNet2DConditionModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
ft = importlib.import_module("finetune_unet")

pytestmark = pytest.mark.xdist_group("finetune")

CFG = dict(block_out_channels=(32, 64), norm_num_groups=8, layers_per_block=1, cross_attention_dim=32,
           attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
           up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), sample_size=8)
# one level (half the compile time) for the v-prediction run through main()
CFG1 = dict(CFG, block_out_channels=(32,), down_block_types=("CrossAttnDownBlock2D",),
            up_block_types=("CrossAttnUpBlock2D",))
# one run's settings, shared by the torch run, the single-device run and the 8-device run
STEPS, BATCH, EXAMPLES, SEQ, LR, WD, MAX_NORM, EMA_DECAY = 5, 8, 16, 6, 1e-4, 1e-2, 2.0, 0.3
ARGV = ["--steps", str(STEPS), "--batch-size", str(BATCH), "--num-examples", str(EXAMPLES), "--seq-len", str(SEQ),
        "--lr", str(LR), "--weight-decay", str(WD), "--max-grad-norm", str(MAX_NORM), "--ema-decay", str(EMA_DECAY)]


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def randomised_unet(seed, cfg=CFG):
    model = TorchUNet(**cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.15
            p.copy_(1 + noise if ("norm" in name and name.endswith("weight")) else noise)
    return model


def torch_finetune(folder, subfolder, scheduler, batches, *, lr, weight_decay, max_grad_norm, ema_kwargs):
    """diffusers' train_text_to_image.py loop: the reference."""
    unet = TorchUNet.from_pretrained(folder, subfolder=subfolder)
    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=weight_decay)
    ema = EMAModel(unet.parameters(), **ema_kwargs)
    losses, norms = [], []
    for b in batches:
        latents, noise = to_torch(b["latents"]), to_torch(b["noise"])
        t = torch.from_numpy(b["timesteps"].astype(np.int64))
        noisy = scheduler.add_noise(latents, noise, t)
        pred = unet(noisy, t, to_torch(b["encoder_hidden_states"])).sample
        target = noise if scheduler.config.prediction_type == "epsilon" else scheduler.get_velocity(latents, noise, t)
        loss = TF.mse_loss(pred.float(), target.float(), reduction="mean")
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(unet.parameters(), max_grad_norm)))
        opt.step()
        opt.zero_grad()
        ema.step(unet.parameters())
        losses.append(float(loss.detach()))
    names = [n for n, _ in unet.named_parameters()]
    params = {n: p.detach().numpy().copy() for n, p in unet.named_parameters()}
    shadow = {n: s.numpy().copy() for n, s in zip(names, ema.shadow_params, strict=True)}
    return losses, norms, params, shadow


def param_dict(result, ema=False):
    return {k: np.asarray(v) for k, v in jn.state_dict(result.model(ema=ema)).items()}


def assert_params_close(got, ref, initial, tol):
    """Every parameter within ``tol`` relative L2 of torch's, and the change made by training too
    (the parameters move by ~lr per step: a step that did nothing would fail)."""
    worst, worst_update = 0.0, 0.0
    for name, value in ref.items():
        worst = max(worst, rel(got[name], value))
        worst_update = max(worst_update, rel(got[name] - initial[name], value - initial[name]))
    assert worst < tol, worst
    assert worst_update < 100 * tol, worst_update  # Adam's sign(g) steps amplify rounding
    return worst, worst_update


# --- the 5-step parity run (epsilon, default DDPMScheduler) ----------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unet")
    tm = randomised_unet(0)
    tm.save_pretrained(folder)
    initial = {k: v.numpy().copy() for k, v in tm.state_dict().items()}
    model = UNet2DConditionModel.from_pretrained(folder)
    data = ft.synthetic_dataset(model.config, EXAMPLES, SEQ, seed=0)  # main's data for --seed 0
    batch_list = list(ft.batches(data, STEPS, BATCH, 1000, seed=1))
    scheduler = ft.load_noise_scheduler(str(folder), None, None)
    loaded = jn.state_dict(model)["conv_in.weight"]
    result = ft.train(model, scheduler, batch_list, lr=LR, weight_decay=WD, max_grad_norm=MAX_NORM,
                      ema=ft.EMAConfig(decay=EMA_DECAY))
    ref = torch_finetune(folder, None, TorchDDPM(), batch_list, lr=LR, weight_decay=WD, max_grad_norm=MAX_NORM,
                         ema_kwargs=dict(decay=EMA_DECAY))
    return dict(folder=folder, initial=initial, result=result, ref=ref, batches=batch_list, loaded=loaded)


def test_five_steps_equal_torch(run):
    result, (losses, norms, params, shadow) = run["result"], run["ref"]
    assert len(result.losses) == STEPS and result.optimization_step == STEPS
    assert run["loaded"].is_deleted()  # the weights were donated to the jitted step (updated in place)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-4)
    np.testing.assert_allclose(result.grad_norms, norms, rtol=1e-4)
    assert max(norms) > MAX_NORM  # clipping acts
    assert_params_close(param_dict(result), params, run["initial"], 1e-4)
    assert_params_close(param_dict(result, ema=True), shadow, run["initial"], 1e-4)
    # the EMA is neither the weights nor the initial weights
    name = "conv_in.weight"
    assert rel(shadow[name], params[name]) > 1e-4 and rel(shadow[name], run["initial"][name]) > 1e-4


# --- sharded: FSDP over 8 simulated devices ---------------------------------------------------------------


def test_fsdp_spec():
    assert ft.fsdp_spec((64, 128, 3, 3), 8) == P(None, "data")
    assert ft.fsdp_spec((64, 64, 3, 3), 8) == P("data")  # ties: the first axis
    assert ft.fsdp_spec((320, 12, 3, 3), 8) == P("data")
    assert ft.fsdp_spec((12, 36), 8) == P()  # no axis divisible by 8
    assert ft.fsdp_spec((64,), 8) == P()  # under min_size
    assert ft.fsdp_spec((64,), 8, min_size=64) == P("data")
    assert ft.fsdp_spec((64, 64), 1) == P()


def test_from_pretrained_sharding(run):
    """Weights read straight into a sharding (a mapping per key, one sharding for all), same values."""
    mesh = ft.make_mesh(8)
    plain = jn.state_dict(UNet2DConditionModel.from_pretrained(run["folder"]))
    model = ft.load_unet(str(run["folder"]), None, ft.make_mesh(8))
    sd = jn.state_dict(model)
    assert sd.keys() == plain.keys()
    split = 0
    for k, v in sd.items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(plain[k]), err_msg=k)
        want = ft.fsdp_spec(v.shape, 8)
        assert v.sharding.is_equivalent_to(NamedSharding(mesh, want), v.ndim), k
        if want != P():
            split += 1
            assert v.addressable_shards[0].data.size == v.size // 8 and not v.sharding.is_fully_replicated, k
    assert split >= 20
    replicated = NamedSharding(mesh, P())
    one = UNet2DConditionModel.from_pretrained(run["folder"], sharding=replicated)
    w = jn.state_dict(one)["conv_in.weight"]
    assert w.sharding == replicated and len(w.sharding.device_set) == 8
    with pytest.raises(TypeError, match="sharding"):
        UNet2DConditionModel.from_pretrained(run["folder"], sharding="data")
    with pytest.raises(TypeError, match="sharding"):
        UNet2DConditionModel.from_pretrained(run["folder"], sharding={"conv_in.weight": P("data")})


def test_sharded_steps_equal_single_device(run, tmp_path, capsys):
    result = ft.main(["--model", str(run["folder"]), *ARGV, "--devices", "8", "--out", str(tmp_path)])
    assert "8 devices (FSDP)" in capsys.readouterr().out
    single = run["result"]
    np.testing.assert_allclose(result.losses, single.losses, rtol=1e-5)
    np.testing.assert_allclose(result.grad_norms, single.grad_norms, rtol=1e-5)
    for ema in (False, True):  # and the updates within 1e-3
        assert_params_close(param_dict(result, ema), param_dict(single, ema), run["initial"], 1e-5)
    # really distributed: every large weight, its AdamW moments and its EMA copy split in 8
    def is_adam(s):
        return isinstance(s, optim.ScaleByTorchAdamState)

    adam = next(s for s in jax.tree.leaves(result.opt_state, is_leaf=is_adam) if is_adam(s))
    split = 0
    for tree in (result.params, adam.mu, adam.nu, result.ema):
        for v in jax.tree.leaves(tree):
            assert len(v.sharding.device_set) == 8
            if ft.fsdp_spec(v.shape, 8) != P():
                split += 1
                assert not v.sharding.is_fully_replicated
                assert v.addressable_shards[0].data.size == v.size // 8
    assert split >= 4 * 20
    # the sharded result saves as one diffusers folder
    back = TorchUNet.from_pretrained(tmp_path / "unet")
    got = param_dict(result)
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), got[k], err_msg=k)


# --- v-prediction through main(), a pipeline folder, the saved folders ------------------------------------


def test_main_v_prediction_saves_folders_diffusers_loads(tmp_path, capsys):
    pipe = tmp_path / "pipe"
    randomised_unet(1, CFG1).save_pretrained(pipe / "unet")
    sched = TorchDDPM(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="v_prediction")
    sched.save_pretrained(pipe / "scheduler")
    initial = {k: v.numpy().copy() for k, v in TorchUNet.from_pretrained(pipe / "unet").state_dict().items()}
    steps = 3
    argv = ["--model", str(pipe), "--steps", str(steps), "--batch-size", "4", "--num-examples", "6", "--seq-len", "5",
            "--lr", "1e-4", "--max-grad-norm", "1e6", "--ema-warmup", "--ema-power", "0.75", "--ema-inv-gamma", "0.5",
            "--ema-update-after-step", "1", "--seed", "3", "--out", str(tmp_path / "out")]
    result = ft.main(argv)
    assert "prediction_type=v_prediction" in capsys.readouterr().out
    data = ft.synthetic_dataset(dict(CFG1, in_channels=4), 6, 5, seed=3)
    batch_list = list(ft.batches(data, steps, 4, 1000, seed=4))
    ema_kwargs = dict(decay=0.9999, use_ema_warmup=True, power=0.75, inv_gamma=0.5, update_after_step=1)
    losses, norms, params, shadow = torch_finetune(pipe, "unet", sched, batch_list, lr=1e-4, weight_decay=1e-2,
                                                   max_grad_norm=1e6, ema_kwargs=ema_kwargs)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-4)
    np.testing.assert_allclose(result.grad_norms, norms, rtol=1e-4)
    assert_params_close(param_dict(result), params, initial, 1e-4)
    assert_params_close(param_dict(result, ema=True), shadow, initial, 1e-4)
    # diffusers loads both folders; EMAModel resumes with our optimisation step and options
    out = tmp_path / "out"
    got = param_dict(result)
    for k, v in TorchUNet.from_pretrained(out / "unet").state_dict().items():
        np.testing.assert_array_equal(v.numpy(), got[k], err_msg=k)
    with pytest.warns(FutureWarning, match="pretrained model name or path to `from_config`"):  # diffusers' own
        ema = EMAModel.from_pretrained(out / "unet_ema", TorchUNet)
    assert (ema.optimization_step, ema.use_ema_warmup, ema.power, ema.inv_gamma, ema.update_after_step) == (
        steps, True, 0.75, 0.5, 1)
    got = param_dict(result, ema=True)
    names = [n for n, _ in TorchUNet.from_pretrained(out / "unet").named_parameters()]
    for n, s in zip(names, ema.shadow_params, strict=True):
        np.testing.assert_array_equal(s.numpy(), got[n], err_msg=n)
    with open(out / "unet_ema" / "config.json") as f:
        assert json.load(f)["optimization_step"] == steps


# --- EMA decay rule, errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"decay": 0.5}, {"update_after_step": 3}, {"min_decay": 0.4},
                                    {"use_ema_warmup": True}, {"use_ema_warmup": True, "inv_gamma": 2.0, "power": 0.75,
                                                               "decay": 0.95, "update_after_step": 2}])
def test_ema_decay_is_diffusers(kwargs):
    ours = ft.EMAConfig(**kwargs)
    theirs = EMAModel([torch.zeros(1)], **kwargs)
    for k in range(0, 60):
        assert ours.get_decay(k) == theirs.get_decay(k), k


@pytest.mark.parametrize("kwargs, match", [
    ({"decay": 1.5}, "`decay` \\(=1.5\\)"), ({"min_decay": -0.1}, "`min_decay`"),
    ({"update_after_step": -1}, "`update_after_step` \\(=-1\\)"), ({"inv_gamma": 0}, "`inv_gamma`"),
    ({"power": "2/3"}, "`power`")])
def test_ema_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ft.EMAConfig(**kwargs)


def test_input_errors(run, tmp_path):
    folder = str(run["folder"])
    data = ft.synthetic_dataset(dict(CFG, in_channels=4), 4, 3, seed=0)
    with pytest.raises(ValueError, match="`batch_size` \\(=5\\)"):
        next(ft.batches(data, 1, 5, 1000, seed=0))
    with pytest.raises(ValueError, match="`devices` \\(=16\\)"):
        ft.main(["--model", folder, "--devices", "16"])
    with pytest.raises(ValueError, match="`batch-size` \\(=4\\) must be divisible by `devices` \\(=8\\)"):
        ft.main(["--model", folder, "--devices", "8", "--batch-size", "4"])
    with pytest.raises(ValueError, match="`steps` \\(=0\\)"):
        ft.main(["--model", folder, "--steps", "0"])
    sched_dir = tmp_path / "pipe" / "scheduler"
    TorchDDPM(prediction_type="sample").save_pretrained(sched_dir)
    with pytest.raises(NotImplementedError, match="prediction_type='sample'"):
        ft.load_noise_scheduler(str(tmp_path / "pipe"), "unet", None)
    with pytest.raises(NotImplementedError, match="addition_embed_type='text_time'"):
        ft.conditioning_dim(dict(CFG, addition_embed_type="text_time"))
    with pytest.raises(NotImplementedError, match="cross_attention_dim=\\(16, 24\\)"):
        ft.conditioning_dim(dict(CFG, cross_attention_dim=(16, 24)))
    assert ft.conditioning_dim(dict(CFG, encoder_hid_dim=12)) == 12
    np.savez(tmp_path / "bad.npz", latents=np.zeros((2, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="lacks the arrays \\['encoder_hidden_states'\\]"):
        ft.load_dataset(str(tmp_path / "bad.npz"), dict(CFG, in_channels=4))
    np.savez(tmp_path / "bad2.npz", latents=np.zeros((2, 3, 8, 8), np.float32),
             encoder_hidden_states=np.zeros((2, 5, 32), np.float32))
    with pytest.raises(ValueError, match="latents of shape \\(2, 3, 8, 8\\)"):
        ft.load_dataset(str(tmp_path / "bad2.npz"), dict(CFG, in_channels=4))


def test_npz_data(run, tmp_path):
    """--data: the arrays are read as given (the synthetic set saved and read back gives its batches)."""
    data = ft.synthetic_dataset(dict(CFG, in_channels=4), 8, 3, seed=5)
    np.savez(tmp_path / "d.npz", **data)
    back = ft.load_dataset(str(tmp_path / "d.npz"), dict(CFG, in_channels=4))
    for k in data:
        np.testing.assert_array_equal(back[k], data[k])
    b = next(ft.batches(back, 1, 8, 1000, seed=0))  # the whole set: every example once, in order
    np.testing.assert_array_equal(b["latents"], data["latents"])
    assert b["timesteps"].dtype == np.int32 and b["noise"].shape == (8, 4, 8, 8)


def test_dropout_is_on_while_training_with_new_masks_each_step(tmp_path):
    """diffusers' script trains in training mode (``unet.train()``) while from_pretrained gives eval
    mode: with ``dropout > 0`` every step draws new masks, so the same batch with lr 0 gives a
    different loss at every step (it gave the dropout-free loss three times before)."""
    randomised_unet(2, dict(CFG1, dropout=0.5)).save_pretrained(tmp_path)
    model = UNet2DConditionModel.from_pretrained(tmp_path)
    batch = next(ft.batches(ft.synthetic_dataset(model.config, 4, 3, seed=0), 1, 4, 1000, seed=1))
    result = ft.train(model, ft.load_noise_scheduler(str(tmp_path), None, None), [batch] * 3, lr=0.0,
                      weight_decay=0.0, max_grad_norm=None)
    assert len(set(result.losses)) == 3, result.losses
    assert not result.model().conv_in.training  # the trained model comes back in eval mode


def test_random_data_needs_a_sample_size():
    """diffusers' UNet config default is sample_size=None: a clear error naming it (was a TypeError
    unpacking None)."""
    with pytest.raises(ValueError, match=r"`sample_size` \(=None\).*--data"):
        ft.synthetic_dataset(dict(CFG, in_channels=4, sample_size=None), 2, 3, seed=0)


def test_fsdp_loading_warns_once_about_unknown_config_keys(run, tmp_path):
    """A folder with keys the UNet does not know (an EMA folder's EMAModel keys) warns once, not
    once for the shapes and again for the weights."""
    folder = tmp_path / "ema"
    UNet2DConditionModel.from_pretrained(run["folder"]).save_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(cfg, optimization_step=3, decay=0.9)))
    with pytest.warns(UserWarning, match=r"\['decay', 'optimization_step'\]") as rec:
        ft.load_unet(str(folder), None, ft.make_mesh(2))
    assert len(rec) == 1, [str(w.message) for w in rec]


def test_options_are_not_abbreviated(capsys):
    """`--devices` is read from sys.argv before JAX starts (the simulated CPU devices); argparse's
    abbreviation `--dev 8` would get past that and fail in make_mesh, so abbreviations are errors."""
    with pytest.raises(SystemExit):
        ft.main(["--model", "unused", "--dev", "2", "--steps", "0"])
    assert "unrecognized arguments: --dev 2" in capsys.readouterr().err
