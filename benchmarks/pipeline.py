"""Stable Diffusion end to end (issue 16): denoising steps, time to first image and a fine-tuning
step, jaxnn (jit) next to diffusers / torch (eager) on the same weights and inputs.

``python -m benchmarks pipeline [--quick]``; what each table measures is in ``bench_pipeline``'s
docstring.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from ._timing import peak_rss_mb, spread, stats_ms_interleaved, table
from .models import SD15_UNET, _dev, _mid_unet, _sync, _torch_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The noise schedule of SD 1.5's scheduler_config.json (with diffusers' pipeline correction
# steps_offset=1).
SD15_SCHEDULER: dict[str, Any] = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                  "beta_schedule": "scaled_linear", "steps_offset": 1}
# DPM-Solver++ (2M): the sampler of most SD 1.5 / SDXL fine-tunes.
SCHEDULER = "DPMSolverMultistepScheduler"
GUIDANCE = 7.5


def _schedulers(config: dict[str, Any]) -> tuple[Any, Any]:
    """(jaxnn scheduler, diffusers scheduler) of class ``SCHEDULER`` from the same configuration.
    Keys that the class does not have (a PNDM or DDIM folder's ``skip_prk_steps``, ``clip_sample``)
    are ignored by both, as diffusers' ``from_config`` does; jaxnn's warning about them is silenced."""
    import diffusers

    import jaxnn.models as jm

    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = getattr(jm, SCHEDULER).from_config(config)
    return ours, getattr(diffusers, SCHEDULER).from_config(config)


def _per_step(t: tuple[float, float, float], k: int) -> tuple[float, float, float]:
    return (t[0] / k, t[1] / k, t[2] / k)


def _denoise_rows(label: str, tm: Any, jm: Any, sched_config: dict[str, Any], latents: np.ndarray, ctx: np.ndarray,
                  total: int, k: int, reps: int) -> list[Any]:
    """One table row: the first ``k`` steps of a ``total``-step schedule with classifier-free
    guidance, as diffusers' pipeline loop does them (UNet on the doubled batch, guidance, the
    scheduler's step), jaxnn with one jitted step function; the first step (jaxnn: trace + compile
    + run) timed before the round-robin."""
    dev = _dev()
    j_sched, t_sched = _schedulers(sched_config)
    tl, tc = torch.tensor(latents, device=dev), torch.tensor(ctx, device=dev)
    jl, jc = jnp.asarray(latents), jnp.asarray(ctx)
    tm = tm.to(dev).eval()
    graph, state = nnx.split(jm)

    def step(state: Any, s: Any, x: Any, i: Any, c: Any) -> tuple[Any, Any]:
        t = s.timesteps[i]
        inp = j_sched.scale_model_input(s, jnp.concatenate([x, x]), t)
        eps = nnx.merge(graph, state)(inp, t, c).sample
        uncond, cond = jnp.split(eps, 2)
        return j_sched.step(s, uncond + GUIDANCE * (cond - uncond), t, x, return_dict=False)

    last: dict[str, np.ndarray] = {}  # each side's latest result, compared at the end

    def set_timesteps() -> Any:
        # Given the sample's shape, DPM-Solver allocates its history up front: the state keeps one
        # structure and the step one compiled program (else a second compile after the first step).
        return j_sched.set_timesteps(total, shape=latents.shape)

    def jax_loop(fn: Any, steps: int) -> None:
        s = set_timesteps()
        x = jl * s.init_noise_sigma
        for i in range(steps):
            x, s = fn(state, s, x, i, jc)
        last["jaxnn"] = np.asarray(jax.block_until_ready(x))

    def torch_loop(steps: int) -> None:
        t_sched.set_timesteps(total, device=dev)
        x = tl * t_sched.init_noise_sigma
        with torch.no_grad():
            for t in t_sched.timesteps[:steps]:
                inp = t_sched.scale_model_input(torch.cat([x, x]), t)
                eps = tm(inp, t, encoder_hidden_states=tc, return_dict=False)[0]
                uncond, cond = eps.chunk(2)
                x = t_sched.step(uncond + GUIDANCE * (cond - uncond), t, x, return_dict=False)[0]
        _sync()
        last["torch"] = x.cpu().numpy()

    start = time.perf_counter()
    compiled = jax.jit(step).lower(state, set_timesteps(), jl, 0, jc).compile()
    compile_s = time.perf_counter() - start
    jax_loop(compiled, 1)
    jax_first = time.perf_counter() - start
    start = time.perf_counter()
    torch_loop(1)
    torch_first = time.perf_counter() - start
    t = stats_ms_interleaved({"jaxnn": lambda: jax_loop(compiled, k), "torch": lambda: torch_loop(k)},
                             repeats=reps, warmup=0)
    err = float(np.max(np.abs(last["jaxnn"] - last["torch"])) / max(float(np.max(np.abs(last["torch"]))), 1e-30))
    tj, tt = _per_step(t["jaxnn"], k), _per_step(t["torch"], k)
    return [label, f"{SCHEDULER} ({k} of {total} steps)", spread(tj), spread(tt), f"{tj[1] / tt[1]:.2f}",
            f"{jax_first:.2f} ({compile_s:.2f})", f"{torch_first:.2f}", f"{err:.1e}"]


def _sd15_row(quick: bool) -> list[Any]:
    """The SD 1.5-size UNet (batch 2 after CFG doubling, 64x64 latents, 77 tokens of width 768),
    random weights from diffusers' initialisation saved and loaded by jaxnn."""
    from jaxnn.models import UNet2DConditionModel

    config, size, tokens = (_mid_unet(2, 32), 8, 8) if quick else (SD15_UNET, 64, 77)
    with tempfile.TemporaryDirectory() as folder:
        tm = _torch_unet(config, folder)
        jm = UNet2DConditionModel.from_pretrained(folder)
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((1, 4, size, size)).astype(np.float32)
    ctx = rng.standard_normal((2, tokens, config["cross_attention_dim"])).astype(np.float32)
    label = ("UNet 2 levels (32, 64), 8x8, 8 tokens" if quick else "UNet SD 1.5 (320..1280), 64x64, 77 tokens")
    # One step per sample (a forward is ~15 s on a 2-core CPU), 3 samples a side.
    return _denoise_rows(label, tm, jm, SD15_SCHEDULER, latents, ctx, 25 if not quick else 3,
                         1, 3 if not quick else 2)


def _tiny_pipeline(folder: str) -> Any:
    """examples/sd_tiny.py's ``build_tiny_pipeline`` (imported from the examples folder)."""
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        return importlib.import_module("sd_tiny").build_tiny_pipeline
    finally:
        sys.path.remove(os.path.join(ROOT, "examples"))


def _tiny_rows(quick: bool) -> tuple[list[Any], list[Any]]:
    """(the denoising-step row, the time-to-first-image row) of the tiny pipeline of
    examples/sd_tiny.py: jaxnn.models.StableDiffusionPipeline next to diffusers' on the same
    folder, prompt, negative prompt and initial latents."""
    import diffusers

    from jaxnn.models import StableDiffusionPipeline

    dev = _dev()
    total = 25 if not quick else 3
    with tempfile.TemporaryDirectory() as folder:
        _tiny_pipeline(folder)(folder)
        start = time.perf_counter()
        theirs = diffusers.StableDiffusionPipeline.from_pretrained(folder, safety_checker=None,
                                                                   requires_safety_checker=False)
        sched_config = dict(theirs.scheduler.config)  # with diffusers' load-time corrections
        j_sched, t_sched = _schedulers(sched_config)
        theirs.scheduler = t_sched
        theirs = theirs.to(dev)
        theirs.set_progress_bar_config(disable=True)
        torch_load = time.perf_counter() - start
        jax.clear_caches()  # jaxnn's first call below compiles from nothing
        start = time.perf_counter()
        ours = StableDiffusionPipeline.from_pretrained(folder, dtype=jnp.float32, scheduler=j_sched)
        ours.set_progress_bar_config(disable=True)
        jax_load = time.perf_counter() - start
    unet_cfg = theirs.unet.config
    vae_scale = 2 ** (len(theirs.vae.config.block_out_channels) - 1)
    side = unet_cfg.sample_size * vae_scale
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((1, unet_cfg.in_channels, unet_cfg.sample_size,
                                   unet_cfg.sample_size)).astype(np.float32)
    call = dict(prompt="a photograph of an astronaut riding a horse", negative_prompt="blurry",
                num_inference_steps=total, guidance_scale=GUIDANCE, height=side, width=side, output_type="np")

    def run_ours() -> np.ndarray:
        return np.asarray(ours(latents=jnp.asarray(latents), **call).images)

    def run_theirs() -> np.ndarray:
        with torch.no_grad():
            images = theirs(latents=torch.tensor(latents, device=dev), **call).images
        _sync()
        return np.asarray(images)

    start = time.perf_counter()
    image_ours = run_ours()
    jax_first = time.perf_counter() - start
    start = time.perf_counter()
    image_theirs = run_theirs()
    torch_first = time.perf_counter() - start
    t = stats_ms_interleaved({"jaxnn": run_ours, "torch": run_theirs}, repeats=5 if not quick else 2, warmup=0)
    diff = float(np.max(np.abs(image_ours - image_theirs)))
    label = f"tiny pipeline (examples/sd_tiny.py), {side}x{side} pixels, {total} {SCHEDULER} steps, CFG"
    image_row = [label, f"{jax_load:.2f}", f"{jax_first:.2f}", spread(t["jaxnn"]), f"{torch_load:.2f}",
                 f"{torch_first:.2f}", spread(t["torch"]), f"{t['jaxnn'][1] / t['torch'][1]:.2f}", f"{diff:.1e}"]

    tokens = theirs.tokenizer.model_max_length
    ctx = rng.standard_normal((2, tokens, unet_cfg.cross_attention_dim)).astype(np.float32)
    step_row = _denoise_rows(f"tiny pipeline's UNet, {unet_cfg.sample_size}x{unet_cfg.sample_size}, {tokens} "
                             "tokens", theirs.unet, ours.unet, sched_config, latents, ctx, total, total,
                             7 if not quick else 2)
    return step_row, image_row


def _finetune_row(quick: bool) -> list[Any]:
    """One fine-tuning step of a mid-size UNet: DDPM noise at fixed timesteps, the epsilon MSE,
    backward, clip_grad_norm(1.0), AdamW(1e-4): jaxnn as one jitted step with the parameters and
    optimizer state donated; torch as diffusers' UNet, ``clip_grad_norm_`` and
    ``torch.optim.AdamW`` (its default implementation: a for-loop on CPU, foreach on CUDA)."""
    import diffusers
    import optax

    from jaxnn import optim
    from jaxnn.models import DDPMScheduler, UNet2DConditionModel

    dev = _dev()
    config, size, tokens = (_mid_unet(2, 32), 8, 8) if quick else (_mid_unet(3), 32, 77)
    with tempfile.TemporaryDirectory() as folder:
        tm = _torch_unet(config, folder)
        jm = UNet2DConditionModel.from_pretrained(folder)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 4, size, size)).astype(np.float32)
    noise = rng.standard_normal((2, 4, size, size)).astype(np.float32)
    ctx = rng.standard_normal((2, tokens, config["cross_attention_dim"])).astype(np.float32)
    steps = rng.integers(0, 1000, 2)

    # jaxnn: one jitted step, parameters and optimizer state donated (updated in place).
    j_sched = DDPMScheduler.from_config(SD15_SCHEDULER)
    graph, params, rest = nnx.split(jm, nnx.Param, ...)
    tx = optax.chain(optim.clip_grad_norm(1.0), optim.adamw(1e-4))
    jargs = tuple(jnp.asarray(a) for a in (x0, noise, steps, ctx))

    def train_step(params: Any, opt_state: Any, x0: Any, noise: Any, t: Any, c: Any) -> tuple[Any, Any, Any]:
        def loss_fn(params: Any) -> Any:
            pred = nnx.merge(graph, params, rest)(j_sched.add_noise(x0, noise, t), t, c).sample
            return jnp.mean((pred - noise) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    box = [params, tx.init(params)]
    start = time.perf_counter()
    compiled = jax.jit(train_step, donate_argnums=(0, 1)).lower(box[0], box[1], *jargs).compile()
    compile_s = time.perf_counter() - start
    xla_temp = compiled.memory_analysis().temp_size_in_bytes / 2**20

    losses: dict[str, list[float]] = {"jaxnn": [], "torch": []}

    def ours() -> None:
        box[0], box[1], loss = jax.block_until_ready(compiled(box[0], box[1], *jargs))
        losses["jaxnn"].append(float(loss))

    # torch: diffusers' UNet in train mode, the same data, timesteps and schedule.
    t_sched = diffusers.DDPMScheduler.from_config(SD15_SCHEDULER)
    tm = tm.to(dev).train()
    opt = torch.optim.AdamW(tm.parameters(), lr=1e-4)
    tx0, tnoise, tctx = (torch.tensor(a, device=dev) for a in (x0, noise, ctx))
    tt = torch.tensor(steps, device=dev)

    def theirs() -> None:
        opt.zero_grad(set_to_none=True)
        pred = tm(t_sched.add_noise(tx0, tnoise, tt), tt, encoder_hidden_states=tctx, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred, tnoise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        opt.step()
        _sync()
        losses["torch"].append(loss.item())

    ours()
    theirs()
    reps = 5 if not quick else 2
    t = stats_ms_interleaved({"jaxnn": ours, "torch": theirs}, repeats=reps, warmup=1)
    platform = jax.devices()[0].platform
    mem_ours = (f"{peak_rss_mb(ours):.0f} (XLA temp {xla_temp:.0f})" if platform == "cpu"
                else f"XLA temp {xla_temp:.0f} ({platform})")
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        theirs()
        mem_theirs = f"{(torch.cuda.max_memory_allocated() - before) / 2**20:.0f} (CUDA allocator)"
    else:
        mem_theirs = f"{peak_rss_mb(theirs):.0f}"
    # Both sides took the same steps on the same data: their losses agree at the first and the last.
    loss_err = [abs(a - b) / abs(b) for a, b in ((losses["jaxnn"][i], losses["torch"][i]) for i in (0, -1))]
    n_params = sum(v.size for v in jax.tree.leaves(box[0]))
    label = (f"UNet {len(config['block_out_channels'])} levels {tuple(config['block_out_channels'])}, "
             f"{n_params / 1e6:.1f}M params, batch 2, {size}x{size}, {tokens} tokens")
    return [label, spread(t["jaxnn"]), spread(t["torch"]), f"{t['jaxnn'][1] / t['torch'][1]:.2f}",
            f"{compile_s:.1f}", mem_ours, mem_theirs,
            f"{loss_err[0]:.1e} / {loss_err[1]:.1e} ({len(losses['torch'])})"]


def bench_pipeline(quick: bool) -> str:
    """Stable Diffusion end to end, jaxnn next to diffusers / torch in one process (float32).

    Denoising steps: the loop of diffusers' ``StableDiffusionPipeline`` (UNet on the CFG-doubled
    batch of 2, guidance 7.5, ``DPMSolverMultistepScheduler``'s step: DPM-Solver++ 2M, SD 1.5's noise
    schedule or the tiny pipeline's) with the same weights, latents and text context;
    jaxnn runs one jitted step function (compiled once, called per step), diffusers runs eagerly.
    Each sample is a loop from ``set_timesteps`` over the first k steps, timed round-robin
    (min/median/max, divided by k): the tiny pipeline's UNet over all 25 steps (7 samples), the
    SD 1.5-size UNet (64x64 latents, 77 tokens) over 1 step (3 samples: a forward is ~15 s on a
    2-core CPU). "first step" is the first loop of 1 step: jaxnn's includes tracing and compiling
    (in brackets), diffusers' is its first eager call; an n-step image of the SD 1.5-size UNet
    costs about first step + (n - 1) x ms/step (plus the text encoder and VAE, not timed there).
    "max rel diff" compares the two loops' final latents (max |difference| / max |diffusers|).

    Time to first image: the tiny pipeline of examples/sd_tiny.py loaded by
    ``jaxnn.models.StableDiffusionPipeline`` and diffusers' (load: ``from_pretrained``), then the
    first call (jaxnn: from cleared JAX caches, so tracing and compiling the text encoder, the
    denoising step and the VAE decoder are in it), then steady-state calls round-robin (5 samples),
    prompt and negative prompt, 25 steps, ``output_type="np"``; "max |image diff|" between the two
    first images (pixels in [0, 1]).

    Fine-tuning step: a 3-level mid-size UNet, batch 2, 32x32 latents, 77 tokens: DDPM noise,
    epsilon MSE, backward, ``clip_grad_norm(1.0)``, AdamW: jaxnn one jitted step with donated
    parameters and optimizer state, torch diffusers' UNet with ``torch.optim.AdamW`` (5 samples
    round-robin after one warm-up step). Memory: the peak resident memory one step adds (Linux
    VmHWM, as the attention benchmark), with the temporary buffers of XLA's compiled step
    (``memory_analysis``); on a GPU jaxnn's XLA temporaries alone and torch's CUDA allocator peak.
    "loss rel diff": jaxnn's loss against torch's at the first and the last step (the same steps on
    each side: the parity of the whole training loop, not only of one step).

    On a GPU (``benchmarks/gpu_check.sh``) both sides run there in float32, each at its library's
    default matmul/convolution precision (torch: TF32 convolutions; XLA: its default precision).

    ``quick`` shrinks every size (2-level UNets at 8x8, 3 steps, 2 samples): a smoke test of the
    same code, not a measurement.
    """
    import diffusers
    import transformers

    # Their loading and saving progress bars and notes (no `accelerate`) would fill the output.
    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    step_row, image_row = _tiny_rows(quick)
    step_rows = [step_row, _sd15_row(quick)]
    out = table("denoising step with classifier-free guidance (float32; ms per step, median (min-max))",
                ["model", "scheduler", "jaxnn ms/step", "diffusers ms/step", "jaxnn/diffusers",
                 "jaxnn first step s (compile s)", "diffusers first step s", "max rel diff"], step_rows)
    out += "\n" + table("time to first image (float32; s, steady-state ms median (min-max))",
                        ["pipeline", "jaxnn load s", "jaxnn first call s (compile + run)", "jaxnn steady ms",
                         "diffusers load s", "diffusers first call s", "diffusers steady ms",
                         "jaxnn/diffusers steady", "max |image diff|"], [image_row])
    out += "\n" + table("fine-tuning step: forward + backward + clip_grad_norm + AdamW (float32; median (min-max) ms)",
                        ["model", "jaxnn ms", "torch ms", "jaxnn/torch", "jaxnn compile s",
                         "jaxnn peak MiB", "torch peak MiB",
                         "loss rel diff first / last (steps)"], [_finetune_row(quick)])
    return out

