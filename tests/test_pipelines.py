"""jaxnn.models.StableDiffusionPipeline / StableDiffusionXLPipeline against diffusers' pipelines.

Tiny random pipelines built once per module with examples/sd_tiny.py (diffusers + transformers,
saved with save_pretrained) run in diffusers (torch, float32) and in jaxnn from the same folder, on
the same prompts and initial latents, with classifier-free guidance, negative prompts and two
images per prompt, for every scheduler jaxnn has. Ancestral schedulers draw their noise with
jax.random in jaxnn; diffusers' draws are replaced by the same arrays (its ``randn_tensor``
patched), so the runs are comparable number for number. Also: the denoising step compiles once per
run and a second call compiles nothing; output types; input errors; the generate command.
"""

import json
import os
import sys
import warnings
from pathlib import Path

import diffusers
import jax
import numpy as np
import pytest
import torch
from PIL import Image

import jaxnn.models as jm
from jaxnn.models import _pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from sd_tiny import build_tiny_pipeline  # noqa: E402

pytestmark = [
    pytest.mark.xdist_group("pipelines"),
    # diffusers' Euler schedulers call np.array on a torch tensor with NumPy 2's copy keyword
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

STEPS = 4
PROMPT = "a photo of a cat"
NEGATIVE = "blurry low quality"
SCHEDULERS = ["DDIMScheduler", "DDPMScheduler", "PNDMScheduler", "EulerDiscreteScheduler",
              "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"]
# diffusers modules whose randn_tensor draws the sampler's noise
NOISY = {"DDPMScheduler": "scheduling_ddpm", "EulerAncestralDiscreteScheduler": "scheduling_euler_ancestral_discrete",
         "DDIMScheduler": "scheduling_ddim"}  # DDIM: with eta > 0
IMAGE_ATOL = 1e-3  # the tolerance on images in [0, 1]
LATENT_RTOL = 1e-4  # relative (to the largest entry) on the final latents after a whole run


def _schedulers(name, config):
    """diffusers' scheduler ``name`` from ``config`` and the jaxnn one from ITS config (diffusers
    fills the options that ``config`` got by default with the new class's defaults)."""
    ref = getattr(diffusers, name).from_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # options of another scheduler class (diffusers ignores them too)
        return ref, getattr(jm, name).from_config(dict(ref.config))


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd_tiny")
    ref = build_tiny_pipeline(folder)
    pipe = jm.StableDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    # the scheduler config as saved (diffusers' in-memory config also remembers which options were defaults)
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return dict(folder=folder, ref=ref, pipe=pipe, ref_config=config)


@pytest.fixture(scope="module")
def xl(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdxl_tiny")
    ref = build_tiny_pipeline(folder, xl=True)
    pipe = jm.StableDiffusionXLPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return dict(folder=folder, ref=ref, pipe=pipe)


def _latents(batch, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 4, 16, 16), dtype=np.float32)


def _patched_noise(monkeypatch, scheduler_name, seed, shape):
    """diffusers' sampler noise replaced by what the jaxnn pipeline draws with ``rng=seed``: step
    ``i`` uses ``normal(fold_in(split(key(seed))[1], i))`` (DDPM draws none at t == 0, the last step)."""
    module = NOISY.get(scheduler_name)
    if module is None:
        return
    step_key = jax.random.split(jax.random.key(seed))[1]
    calls = []

    def randn_tensor(shape_, generator=None, device=None, dtype=None, layout=None):
        assert tuple(shape_) == shape
        z = np.asarray(jax.random.normal(jax.random.fold_in(step_key, len(calls)), shape, np.float32))
        calls.append(1)
        return torch.from_numpy(z.copy()).to(dtype or torch.float32)

    monkeypatch.setattr(getattr(diffusers.schedulers, module), "randn_tensor", randn_tensor)


def _run_both(ref, pipe, monkeypatch, scheduler_name, kw, batch):
    """diffusers' and jaxnn's images ("np") and final latents from the same initial latents."""
    lat = _latents(batch)
    _patched_noise(monkeypatch, scheduler_name, 7, lat.shape)
    final = {}

    def keep_latents(_pipe, _i, _t, tensors):
        final["latents"] = tensors["latents"].numpy().copy()  # after the step: the last call's are the final ones
        return {}

    with torch.no_grad():
        want_img = ref(**kw, latents=torch.from_numpy(lat.copy()), output_type="np",
                       callback_on_step_end=keep_latents, callback_on_step_end_tensor_inputs=["latents"]).images
    want_lat = final["latents"]
    got_img = pipe(**kw, latents=lat, rng=7, output_type="np").images
    got_lat = np.asarray(pipe(**kw, latents=lat, rng=7, output_type="latent").images)
    return got_img, want_img, got_lat, want_lat


def _check(got_img, want_img, got_lat, want_lat):
    assert got_img.shape == want_img.shape and got_img.dtype == np.float32
    lat_err = np.abs(got_lat - want_lat).max() / np.abs(want_lat).max()
    assert lat_err < LATENT_RTOL, f"latents: max error {lat_err:.2e} of the largest entry"
    np.testing.assert_allclose(got_img, want_img, rtol=0, atol=IMAGE_ATOL)
    assert 0.02 < (got_img > 0.5).mean() < 0.98  # the images are not saturated (the comparison means something)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_sd_matches_diffusers(sd, monkeypatch, name):
    ref = sd["ref"]
    config = dict(sd["ref_config"], skip_prk_steps=True) if name == "PNDMScheduler" else sd["ref_config"]  # SD 1.x's
    ref.scheduler, scheduler = _schedulers(name, config)
    p = sd["pipe"]
    pipe = jm.StableDiffusionPipeline(p.vae, p.text_encoder, p.tokenizer, p.unet, scheduler)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=7.5,
              num_images_per_prompt=2)
    _check(*_run_both(ref, pipe, monkeypatch, name, kw, 2))


def test_sd_prompt_list_and_guidance_rescale(sd, monkeypatch):
    ref, pipe = sd["ref"], sd["pipe"]
    ref.scheduler = diffusers.DDIMScheduler.from_config(sd["ref_config"])
    kw = dict(prompt=["a red cat", "a photo of the sky"], negative_prompt=["ugly", "blurry"],
              num_inference_steps=STEPS, guidance_scale=6.0, guidance_rescale=0.7)
    _check(*_run_both(ref, pipe, monkeypatch, "DDIMScheduler", kw, 2))


def test_sdxl_matches_diffusers(xl, monkeypatch):
    name = "EulerDiscreteScheduler"  # SDXL's default (DDIM, the folder's, and the others are covered with SD)
    ref = xl["ref"]
    ref.scheduler, scheduler = _schedulers(name, ref.scheduler.config)
    p = xl["pipe"]
    pipe = jm.StableDiffusionXLPipeline(p.vae, p.text_encoder, p.text_encoder_2, p.tokenizer, p.tokenizer_2, p.unet,
                                        scheduler)
    pipe.set_progress_bar_config(disable=True)
    # negative prompts for both encoders and SDXL's micro-conditioning (negative sizes included)
    kw = dict(prompt=PROMPT, prompt_2="a painting of a dog", negative_prompt=NEGATIVE, negative_prompt_2="ugly",
              num_inference_steps=STEPS, guidance_scale=5.0, num_images_per_prompt=2, original_size=(64, 48),
              crops_coords_top_left=(4, 2), target_size=(32, 32), negative_original_size=(16, 16),
              negative_target_size=(24, 40), clip_skip=1)
    _check(*_run_both(ref, pipe, monkeypatch, name, kw, 2))
    # no negative prompt: force_zeros_for_empty_prompt gives zero unconditional embeddings
    kw = dict(prompt=PROMPT, num_inference_steps=STEPS, guidance_scale=5.0, num_images_per_prompt=2)
    got_img, *rest = _run_both(ref, pipe, monkeypatch, name, kw, 2)
    _check(got_img, *rest)
    # precomputed embeddings (pooled ones included) give the same images
    embeds, negative, pooled, negative_pooled = pipe.encode_prompt(PROMPT, num_images_per_prompt=1)
    assert embeds.shape == (1, 16, 64) and pooled.shape == (1, 32) and not np.any(np.asarray(negative))
    same = pipe(prompt_embeds=embeds, negative_prompt_embeds=negative, pooled_prompt_embeds=pooled,
                negative_pooled_prompt_embeds=negative_pooled, num_inference_steps=STEPS, guidance_scale=5.0,
                num_images_per_prompt=2, latents=_latents(2), rng=7, output_type="np").images
    np.testing.assert_array_equal(same, got_img)
    with pytest.raises(ValueError, match=r"with `prompt_embeds`, pass `pooled_prompt_embeds` too"):
        pipe(prompt_embeds=embeds, num_inference_steps=STEPS, rng=0)


def test_step_compiles_once_and_second_call_compiles_nothing(sd, monkeypatch):
    """A whole run traces the denoising step once; later calls with the same shapes compile
    nothing. The run (latents drawn from ``rng``, DDIM with eta > 0 and its noise from ``rng``) also
    equals diffusers' given the same latents and noise."""
    pipe, ref = sd["pipe"], sd["ref"]
    kw = dict(prompt="a dog in space", negative_prompt="ugly", num_inference_steps=5, guidance_scale=7.5, eta=0.3)
    before = _pipeline.TRACES["denoise"]
    first = pipe(**kw, rng=1, output_type="np").images  # 5 steps: a step count no other test uses
    assert _pipeline.TRACES["denoise"] == before + 1
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = pipe(**kw, rng=jax.random.key(1), output_type="np").images  # an int seed is jax.random.key(seed)
        third = pipe(**kw, rng=2, output_type="np").images
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == [], f"{len(compiles)} compilations in later calls with the same shapes"
    assert _pipeline.TRACES["denoise"] == before + 1
    np.testing.assert_array_equal(first, second)
    assert np.abs(first - third).max() > 0.01  # another seed, other initial latents and noise

    latent_key, _ = jax.random.split(jax.random.key(1))
    latents = np.array(jax.random.normal(latent_key, (1, 4, 16, 16), np.float32))
    ref.scheduler = diffusers.DDIMScheduler.from_config(sd["ref_config"])
    _patched_noise(monkeypatch, "DDIMScheduler", 1, latents.shape)
    with torch.no_grad():
        want = ref(**kw, latents=torch.from_numpy(latents), output_type="np").images
    np.testing.assert_allclose(first, want, rtol=0, atol=IMAGE_ATOL)


def test_output_types(sd):
    pipe = sd["pipe"]
    kw = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, num_images_per_prompt=2,
              latents=_latents(2), rng=0)
    out = pipe(**kw)  # default "pil"
    assert isinstance(out, jm.StableDiffusionPipelineOutput) and out.nsfw_content_detected is None
    assert len(out.images) == 2 and all(isinstance(im, Image.Image) and im.size == (32, 32) for im in out.images)
    arr = pipe(**kw, output_type="np").images
    assert arr.shape == (2, 32, 32, 3) and arr.min() >= 0 and arr.max() <= 1
    np.testing.assert_array_equal(np.asarray(out.images[1]), (arr[1] * 255).round().astype(np.uint8))
    lat = pipe(**kw, output_type="latent").images
    assert isinstance(lat, jax.Array) and lat.shape == (2, 4, 16, 16)
    images, nsfw = pipe(**kw, output_type="np", return_dict=False)
    np.testing.assert_array_equal(images, arr)
    assert nsfw is None
    # precomputed embeddings (one per prompt) give the same images
    embeds, negative = pipe.encode_prompt(PROMPT, 1, True, NEGATIVE)
    assert embeds.shape == negative.shape == (1, 16, 32)
    kw.update(prompt=None, negative_prompt=None, prompt_embeds=embeds, negative_prompt_embeds=negative)
    np.testing.assert_array_equal(pipe(**kw, output_type="np").images, arr)


def test_sd_clip_skip(sd):
    # diffusers' own clip_skip path reads text_encoder.text_model, which transformers 5's CLIPTextModel
    # no longer has, so the reference is its formula: final_layer_norm(hidden_states[-(clip_skip + 1)])
    te, pipe = sd["ref"].text_encoder, sd["pipe"]
    ids = sd["ref"].tokenizer(["a red cat", "the sky"], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        want = te.final_layer_norm(te(ids.input_ids, output_hidden_states=True).hidden_states[-2]).numpy()
    got, _ = pipe.encode_prompt(["a red cat", "the sky"], 1, False, clip_skip=1)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_float16_keeps_a_force_upcast_vae_in_float32(sd):
    # diffusers decodes such a VAE in float32 (it overflows in float16); jaxnn loads it in float32
    vae = jm.StableDiffusionPipeline._load_component(str(sd["folder"]), "vae", "AutoencoderKL", np.float16, None,
                                                     None)
    assert vae.config.force_upcast and vae.dtype == np.float32
    unet = jm.StableDiffusionPipeline._load_component(str(sd["folder"]), "unet", "UNet2DConditionModel",
                                                      np.float16, None, None)
    assert unet.dtype == np.float16


def test_errors(sd, xl, tmp_path):
    pipe = sd["pipe"]
    # diffusers takes integral float sizes (int(height) // vae_scale_factor)
    assert pipe(PROMPT, height=32.0, width=np.float32(32), num_inference_steps=2, rng=0,
                output_type="latent").images.shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match=r"`height` must be a positive int, got 32.5"):
        pipe(PROMPT, height=32.5, width=32, num_inference_steps=2, rng=0)
    with pytest.raises(ValueError, match=r"divisible by 8 but are 36 and 32"):
        pipe(PROMPT, height=36, width=32, num_inference_steps=2, rng=0)
    with pytest.raises(ValueError, match=r"`negative_prompt` has batch size 1, but `prompt` has batch size 2"):
        pipe(["a cat", "a dog"], negative_prompt=["ugly"], num_inference_steps=2, rng=0)
    with pytest.raises(TypeError, match=r"`negative_prompt` should be the same type as `prompt`"):
        pipe(["a cat", "a dog"], negative_prompt="ugly", num_inference_steps=2, rng=0)
    with pytest.raises(ValueError, match=r"`negative_prompt` has batch size 3"):
        xl["pipe"](["a cat", "a dog"], negative_prompt=["a", "b", "c"], num_inference_steps=2, rng=0)
    with pytest.raises(ValueError, match=r"`latents` must have shape \(1, 4, 16, 16\)"):
        pipe(PROMPT, num_inference_steps=2, latents=np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"pass `rng`"):
        pipe(PROMPT, num_inference_steps=2)
    with pytest.raises(TypeError, match=r"`rng` must be None, an int seed or a jax.random key, got 'seed'"):
        pipe(PROMPT, num_inference_steps=2, rng="seed")
    with pytest.raises(ValueError, match=r"`output_type` must be one of 'pil', 'np', 'latent', got 'pt'"):
        pipe(PROMPT, num_inference_steps=2, rng=0, output_type="pt")
    with pytest.raises(ValueError, match=r"`num_inference_steps` must be a positive int, got 0"):
        pipe(PROMPT, num_inference_steps=0, rng=0)
    # a str negative prompt with batched prompt_embeds (diffusers fails in torch.cat): a clear error
    with pytest.raises(ValueError, match=r"`negative_prompt` is one str, but `prompt_embeds` has batch size 2"):
        pipe(prompt_embeds=np.zeros((2, 16, 32), np.float32), negative_prompt="ugly", num_inference_steps=2, rng=0)
    with pytest.raises(ValueError, match=r"pass either `prompt` or `prompt_embeds`"):
        pipe(PROMPT, prompt_embeds=np.zeros((1, 16, 32), np.float32), num_inference_steps=2, rng=0)
    with pytest.raises(TypeError, match=r"`prompt` must be a str or a list of str, got 3"):
        pipe(3, num_inference_steps=2, rng=0)
    # a scheduler class jaxnn lacks, named in model_index.json: NotImplementedError naming it
    bad = tmp_path / "bad"
    bad.mkdir()
    for sub in os.listdir(sd["folder"]):
        if sub != "model_index.json":
            os.symlink(sd["folder"] / sub, bad / sub)
    index = json.loads((sd["folder"] / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "LMSDiscreteScheduler"]
    (bad / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(NotImplementedError, match=r"'LMSDiscreteScheduler'.*not implemented by jaxnn"):
        jm.StableDiffusionPipeline.from_pretrained(bad)
    with pytest.raises(ValueError, match=r"holds a StableDiffusionXLPipeline .*XLPipeline.from_pretrained"):
        jm.StableDiffusionPipeline.from_pretrained(xl["folder"])
    with pytest.raises(TypeError, match=r"`scheduler` must be a jaxnn scheduler"):
        jm.StableDiffusionPipeline.from_pretrained(sd["folder"], scheduler=sd["ref"].scheduler)


def test_outdated_scheduler_config_is_corrected(sd):
    p = sd["pipe"]
    old = jm.DDIMScheduler(beta_schedule="scaled_linear", steps_offset=0, clip_sample=True)
    with pytest.warns(FutureWarning) as record:
        pipe = jm.StableDiffusionPipeline(p.vae, p.text_encoder, p.tokenizer, p.unet, old)
    messages = " ".join(str(r.message) for r in record)
    assert "`steps_offset`" in messages and "`clip_sample=True`" in messages
    assert pipe.scheduler.config.steps_offset == 1 and pipe.scheduler.config.clip_sample is False
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"


def test_generate_writes_png(sd, tmp_path, capsys):
    from jaxnn.models.generate import main

    out = main(["--model", str(sd["folder"]), "--prompt", "a photo of a dog", "--negative-prompt", "blurry",
                "--steps", str(STEPS), "--seed", "3", "--scheduler", "EulerDiscreteScheduler", "--num-images", "2",
                "--out", str(tmp_path / "img" / "dog.png"), "--no-progress"])
    with Image.open(out) as im:
        assert im.size == (64, 32) and im.mode == "RGB"
        pixels = np.asarray(im)
    assert pixels.std() > 5
    assert f"StableDiffusionPipeline (EulerDiscreteScheduler, {STEPS} steps)" in capsys.readouterr().out


def test_generate_out_without_extension_writes_png(sd, tmp_path):
    from jaxnn.models.generate import main

    base = ["--model", str(sd["folder"]), "--prompt", "a cat", "--steps", "1", "--no-progress"]
    with pytest.raises(SystemExit):  # an unknown extension fails before loading anything
        main([*base, "--out", str(tmp_path / "cat.xyz")])
    out = main([*base, "--out", str(tmp_path / "cat")])
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (32, 32)
