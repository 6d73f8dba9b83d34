"""Stable Diffusion in diffusers and in jaxnn, side by side, on a fresh machine (``make sd-demo``).

1. Builds a tiny random Stable Diffusion pipeline offline with diffusers and transformers
   (``examples/sd_tiny.py``: a 2-level UNet on 16x16 latents, a 2-level VAE giving 32x32 images, a
   2-layer CLIP text encoder and a CLIP tokenizer over a vocabulary it writes itself) and saves it
   with ``save_pretrained`` into ``OUT/pipeline`` (the layout of a real Stable Diffusion folder).
2. Loads that folder twice: diffusers' ``StableDiffusionPipeline`` (torch, CPU, float32) and
   ``jaxnn.models.StableDiffusionPipeline`` (JAX, float32), both with ``DPMSolverMultistepScheduler``
   built from the folder's scheduler config (diffusers' ``from_config(pipe.scheduler.config)``).
3. Runs both on the same prompt, negative prompt and initial latents (drawn once with NumPy from
   ``--seed``, NCHW, given to both as ``latents=``) for ``--steps`` DPM-Solver++ steps with
   classifier-free guidance (``--guidance-scale``).
4. Times the denoising steps of each: ``(time of a call with output_type="latent" - time of
   encode_prompt) / steps``, the best of ``--repeats`` calls. jaxnn's steps are timed after
   compilation; its first call (tracing and compiling the text encoder, the denoising step and the
   VAE decoder, then running) is reported separately.
5. Writes ``OUT/sd_demo.png``: diffusers' image, jaxnn's image and the absolute difference (largest
   over the RGB channels) as a heat map with its maximum in the title; prints the numbers.

The weights are random, so the images are coloured noise; what matters is that both libraries make
the same one. ``python -m jaxnn.models.generate --model OUT/pipeline --prompt "..." --out x.png``
runs jaxnn alone on that folder, or on any local SD 1.x / 2.x / SDXL folder.

    python examples/sd_demo.py [--out out/sd-demo] [--steps 25] [--guidance-scale 7.5]
        [--prompt "..."] [--negative-prompt "..."] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import diffusers
import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sd_tiny import LATENT_SIZE, build_tiny_pipeline  # noqa: E402

import jaxnn.models as jm  # noqa: E402


def _best_time(fn: Any, repeats: int) -> float:
    """The smallest wall time of ``repeats`` calls of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _plot(want: np.ndarray, got: np.ndarray, diff: np.ndarray, title: str, path: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), layout="constrained")
    axes[0].imshow(want, interpolation="nearest")
    axes[0].set_title("diffusers (torch)")
    axes[1].imshow(got, interpolation="nearest")
    axes[1].set_title("jaxnn (JAX)")
    heat = axes[2].imshow(diff, cmap="magma", interpolation="nearest")
    axes[2].set_title(f"|difference|, max {diff.max():.2e}")
    fig.colorbar(heat, ax=axes[2], shrink=0.85, format="%.1e")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the demo with the command line ``argv`` (default ``sys.argv[1:]``).

    Returns:
      A dict of the measured numbers: ``max_abs_diff`` (images in [0, 1], largest over every pixel
      and channel), ``max_abs_diff_latents`` and ``max_rel_diff_latents`` (final latents; relative to
      the largest latent), ``diffusers_step_s``, ``jaxnn_step_s`` (seconds per denoising step),
      ``jaxnn_first_call_s`` (the first jaxnn call, compilation included), ``diffusers_first_call_s``,
      ``steps``, ``png`` (the file written), ``pipeline`` (the saved folder) and ``images``
      (diffusers' and jaxnn's images, each ``(height, width, 3)`` float32 in [0, 1]).
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/sd-demo", help="output folder (the pipeline and the PNG)")
    p.add_argument("--steps", type=int, default=25, help="DPM-Solver steps (default 25)")
    p.add_argument("--guidance-scale", type=float, default=7.5, help="classifier-free guidance (default 7.5)")
    p.add_argument("--prompt", default="a photo of an astronaut riding a horse in space")
    p.add_argument("--negative-prompt", default="blurry low quality")
    p.add_argument("--seed", type=int, default=0, help="the weights' and the initial latents' seed")
    p.add_argument("--repeats", type=int, default=3, help="timed calls of each library (the best is kept)")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps must be a positive int, got {args.steps}")
    if args.repeats < 1:
        p.error(f"--repeats must be a positive int, got {args.repeats}")

    out = Path(args.out)
    folder = out / "pipeline"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    build_tiny_pipeline(folder, seed=args.seed)
    print(f"built a tiny random Stable Diffusion pipeline with diffusers in {time.perf_counter() - start:.1f} s "
          f"and saved it to {folder}")

    # both libraries read the same folder; the same scheduler in both: DPM-Solver++ (2nd order) from the
    # folder's scheduler config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DDIM-only options in the config (clip_sample, ...), ignored by both
        ref = diffusers.StableDiffusionPipeline.from_pretrained(folder)
        ref.scheduler = diffusers.DPMSolverMultistepScheduler.from_config(ref.scheduler.config)
        scheduler = jm.DPMSolverMultistepScheduler.from_pretrained(folder, subfolder="scheduler")
    pipe = jm.StableDiffusionPipeline.from_pretrained(folder, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    ref.set_progress_bar_config(disable=True)

    latents = np.random.default_rng(args.seed).standard_normal((1, 4, LATENT_SIZE, LATENT_SIZE), dtype=np.float32)
    kw = dict(prompt=args.prompt, negative_prompt=args.negative_prompt, num_inference_steps=args.steps,
              guidance_scale=args.guidance_scale)

    def run_ref(output_type: str) -> np.ndarray:
        with torch.no_grad():
            images = ref(**kw, latents=torch.from_numpy(latents.copy()), output_type=output_type).images
        return images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)

    def run_jaxnn(output_type: str) -> np.ndarray:
        images = pipe(**kw, latents=latents, output_type=output_type).images
        return np.asarray(jax.block_until_ready(images))

    start = time.perf_counter()
    want = run_ref("np")[0]
    ref_first = time.perf_counter() - start
    start = time.perf_counter()
    got = run_jaxnn("np")[0]  # traces and compiles the text encoder, the step and the decoder
    jax_first = time.perf_counter() - start
    want_lat, got_lat = run_ref("latent"), run_jaxnn("latent")

    guided = args.guidance_scale > 1

    def encode_ref() -> None:
        with torch.no_grad():
            ref.encode_prompt(args.prompt, "cpu", 1, guided, args.negative_prompt)

    def encode_jaxnn() -> None:
        jax.block_until_ready(pipe.encode_prompt(args.prompt, 1, guided, args.negative_prompt))

    ref_step = (_best_time(lambda: run_ref("latent"), args.repeats) - _best_time(encode_ref, args.repeats)) / args.steps
    jax_step = (_best_time(lambda: run_jaxnn("latent"), args.repeats)
                - _best_time(encode_jaxnn, args.repeats)) / args.steps

    diff = np.abs(got - want)
    max_diff = float(diff.max())
    lat_abs = float(np.abs(got_lat - want_lat).max())
    lat_rel = lat_abs / float(np.abs(want_lat).max())
    png = os.fspath(out / "sd_demo.png")
    title = (f"{args.steps} DPM-Solver++ steps, guidance {args.guidance_scale:g}, float32, same prompt and "
             f"initial latents\ndiffusers {ref_step * 1e3:.1f} ms/step (torch CPU), jaxnn "
             f"{jax_step * 1e3:.1f} ms/step after compilation (first call {jax_first:.1f} s)")
    _plot(want, got, diff.max(axis=-1), title, png)

    print(f"prompt {args.prompt!r}, negative prompt {args.negative_prompt!r}, {args.steps} DPM-Solver++ steps, "
          f"guidance scale {args.guidance_scale:g}, image {want.shape[1]}x{want.shape[0]}")
    print(f"diffusers {diffusers.__version__} (torch {torch.__version__}, CPU, {torch.get_num_threads()} threads): "
          f"{ref_step * 1e3:.2f} ms per step (first call, image included: {ref_first:.2f} s)")
    print(f"jaxnn (JAX {jax.__version__}, {jax.default_backend()}): {jax_step * 1e3:.2f} ms per step after "
          f"compilation; the first call took {jax_first:.2f} s (tracing and compiling the text encoder, the "
          "denoising step and the VAE decoder, then running)")
    print(f"max |image difference| = {max_diff:.3e} (pixels in [0, 1]); final latents: max |difference| = "
          f"{lat_abs:.3e} ({lat_rel:.2e} of the largest latent)")
    print(f"wrote {png}")
    return dict(max_abs_diff=max_diff, max_abs_diff_latents=lat_abs, max_rel_diff_latents=lat_rel,
                diffusers_step_s=ref_step, jaxnn_step_s=jax_step, jaxnn_first_call_s=jax_first,
                diffusers_first_call_s=ref_first, steps=args.steps, png=png, pipeline=os.fspath(folder),
                images=(want, got))


if __name__ == "__main__":
    import transformers

    for lib in (diffusers, transformers):  # no loading/saving progress bars and notices in the demo's output
        lib.utils.logging.set_verbosity_error()
        lib.utils.logging.disable_progress_bar()
    main()
