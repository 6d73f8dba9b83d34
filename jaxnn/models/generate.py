"""Text to image from the command line with a local Stable Diffusion folder (SD 1.x / 2.x / SDXL).

    python -m jaxnn.models.generate --model PATH --prompt "an astronaut riding a horse" --out out.png
        [--negative-prompt "blurry"] [--steps 30] [--guidance-scale 7.5] [--height 512 --width 512]
        [--seed 0] [--scheduler DPMSolverMultistepScheduler] [--dtype bfloat16] [--num-images 1]

``PATH`` is a diffusers pipeline folder (``model_index.json``; what ``save_pretrained`` writes or a
downloaded repository). The pipeline class follows ``model_index.json``'s ``_class_name``
(``StableDiffusionXLPipeline`` -> :class:`jaxnn.models.StableDiffusionXLPipeline`, anything else
-> :class:`jaxnn.models.StableDiffusionPipeline`). ``--scheduler`` swaps the folder's scheduler for
the jaxnn scheduler of that name, built from the folder's scheduler config (as diffusers'
``Cls.from_config(pipe.scheduler.config)``). With ``--num-images`` above 1 the images are written
side by side into one PNG. The seed draws the initial latents with ``jax.random`` (diffusers draws
them with torch, so the same seed gives another image there).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxnn.models.generate",
                                description="Generate an image with a local Stable Diffusion folder (jaxnn).")
    p.add_argument("--model", required=True, help="a diffusers pipeline folder (with model_index.json)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--steps", type=int, default=30, help="num_inference_steps (default 30)")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="classifier-free guidance weight (default: 7.5 for SD, 5.0 for SDXL)")
    p.add_argument("--height", type=int, default=None, help="pixels, a multiple of 8 (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="pixels, a multiple of 8 (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=1, help="num_images_per_prompt")
    p.add_argument("--scheduler", default=None,
                   help="a jaxnn scheduler class name (e.g. DPMSolverMultistepScheduler); default: the folder's")
    p.add_argument("--dtype", choices=sorted(_DTYPES), default=None,
                   help="the models' dtype (default: float32 on CPU, bfloat16 on GPU/TPU)")
    p.add_argument("--out", required=True, help="the PNG file to write")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> str:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the path written."""
    parser = _parser()
    args = parser.parse_args(argv)
    from PIL import Image

    ext = os.path.splitext(os.fspath(args.out))[1].lower()
    if ext and ext not in Image.registered_extensions():
        parser.error(f"--out {args.out!r}: unknown image file extension {ext!r} (use .png)")

    from ._pipeline import StableDiffusionPipeline, StableDiffusionXLPipeline, _read_index, _scheduler_class

    index = _read_index(args.model)
    xl = index.get("_class_name") == "StableDiffusionXLPipeline"
    cls = StableDiffusionXLPipeline if xl else StableDiffusionPipeline
    scheduler = None
    if args.scheduler is not None:
        sched_cls = _scheduler_class(args.scheduler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # options of the folder's scheduler class that this one lacks
            scheduler = sched_cls.from_pretrained(args.model, subfolder="scheduler")
    start = time.perf_counter()
    pipe: Any = cls.from_pretrained(args.model, dtype=None if args.dtype is None else _DTYPES[args.dtype],
                                    scheduler=scheduler)
    loaded = time.perf_counter()
    if args.no_progress:
        pipe.set_progress_bar_config(disable=True)
    kwargs: dict[str, Any] = dict(prompt=args.prompt, negative_prompt=args.negative_prompt,
                                  num_inference_steps=args.steps, height=args.height, width=args.width,
                                  num_images_per_prompt=args.num_images, rng=args.seed, output_type="np")
    if args.guidance_scale is not None:
        kwargs["guidance_scale"] = args.guidance_scale
    images = pipe(**kwargs).images
    done = time.perf_counter()
    row = np.concatenate(list(images), axis=1)  # side by side
    out = os.fspath(args.out)
    folder = os.path.dirname(out)
    if folder:
        os.makedirs(folder, exist_ok=True)
    Image.fromarray((row * 255).round().astype("uint8")).save(out, format=None if ext else "PNG")
    print(f"{type(pipe).__name__} ({type(pipe.scheduler).__name__}, {args.steps} steps): loaded in "
          f"{loaded - start:.1f} s, generated in {done - loaded:.1f} s (compilation included); wrote {out}")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
