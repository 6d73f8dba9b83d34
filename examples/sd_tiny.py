"""A tiny Stable Diffusion (or SDXL) pipeline built offline with diffusers and transformers.

``build_tiny_pipeline(folder)`` makes a diffusers ``StableDiffusionPipeline`` (``xl=True``: a
``StableDiffusionXLPipeline``) whose every part is small and random: a 2-level UNet on 16x16
latents, a 2-level VAE (32x32 images), 2-layer CLIP text encoders, a CLIP tokenizer over a
vocabulary of a few hundred tokens that this module writes itself (printable ASCII characters and a
few whole words), and a DDIM scheduler with Stable Diffusion's noise schedule. Nothing is downloaded.
The pipeline is saved with diffusers' ``save_pretrained`` (the folder layout of a real Stable
Diffusion checkpoint: ``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/``, and ``text_encoder_2/`` + ``tokenizer_2/`` for XL) and returned, so a caller can run
diffusers and ``jaxnn.models.StableDiffusionPipeline.from_pretrained(folder)`` side by side.

The images are noise-like (the weights are random) but every number is defined, so the two
libraries can be compared exactly. Used by the pipeline tests, ``make sd-demo`` and the notebook.

    python examples/sd_tiny.py OUT_FOLDER [--xl] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

#: Words that get their own tokens (every other printable ASCII word is spelt out character by character).
WORDS = ("a", "an", "the", "of", "in", "on", "with", "photo", "painting", "cat", "dog", "horse", "astronaut",
         "riding", "red", "blue", "green", "sky", "space", "city", "blurry", "low", "quality", "ugly")
#: The tokenizers' context length (CLIP's is 77); also the text encoders' ``max_position_embeddings``.
MAX_LENGTH = 16
#: Pixels per side of the default image, and latents per side (the VAE halves the resolution).
IMAGE_SIZE = 32
LATENT_SIZE = 16


def tiny_vocab(words: tuple[str, ...] = WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP BPE vocabulary and its merges.

    Tokens: each printable ASCII character (byte 33..126; CLIP's byte-level alphabet maps these to
    themselves) alone and as a word ending (``"a</w>"``), the merged prefixes of each word in
    ``words`` (merged left to right: ``("p", "h")``, ``("ph", "o")``, ..., ``("phot", "o</w>")``), then
    ``<|startoftext|>`` and ``<|endoftext|>`` last, so that the end-of-text token has the largest id.
    Other characters become ``<|endoftext|>`` (CLIP's unknown token).

    Returns:
      ``(vocab, merges)``: token -> id, and the merge rules ``(left, right)`` in priority order (the
      lines of ``merges.txt``).
    """
    chars = [chr(b) for b in range(33, 127)]
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            rule = (left, right)
            left = left + right
            if rule not in merges:
                merges.append(rule)
            if left not in tokens:
                tokens.append(left)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def tiny_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """transformers' ``CLIPTokenizer`` over :func:`tiny_vocab` with context length ``MAX_LENGTH``
    (SDXL's second tokenizer pads with ``"!"``: pass ``pad_token="!"``)."""
    vocab, merges = tiny_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token=pad_token, model_max_length=MAX_LENGTH)


def _text_config(vocab_size: int, hidden_act: str, projection_dim: int | None = None) -> CLIPTextConfig:
    kw: dict[str, Any] = {} if projection_dim is None else dict(projection_dim=projection_dim)
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=MAX_LENGTH, hidden_act=hidden_act,
                          bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1, **kw)


def _randomise(model: torch.nn.Module, generator: torch.Generator, std: float = 0.1) -> None:
    """Every parameter random (diffusers and transformers zero some at init, which would hide
    errors): ``N(0, std^2)``, around 1 for normalisation weights."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator) * std
            p.copy_(1 + noise if ("norm" in name and name.endswith("weight")) else noise)


def tiny_scheduler() -> DDIMScheduler:
    """DDIM with Stable Diffusion's schedule (scaled_linear 0.00085..0.012, ``steps_offset=1``,
    ``clip_sample=False``, ``set_alpha_to_one=False``)."""
    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def build_tiny_pipeline(folder: str | os.PathLike, xl: bool = False, seed: int = 0):
    """Build a tiny random Stable Diffusion pipeline with diffusers, save it to ``folder`` and return it.

    Args:
      folder: where diffusers' ``save_pretrained`` writes the pipeline (created if needed).
      xl: build a ``StableDiffusionXLPipeline`` (two text encoders, the second with a projection and
        a tokenizer padding with ``"!"``; a UNet with SDXL's ``text_time`` micro-conditioning and
        linear projections; ``force_zeros_for_empty_prompt=True``; VAE ``scaling_factor=0.13025``)
        instead of a ``StableDiffusionPipeline``.
      seed: the seed of every random weight (torch's generator): the same seed gives the same folder.

    Returns:
      The diffusers pipeline (float32, CPU, eval mode, progress bar disabled), equal to what
      ``DiffusionPipeline.from_pretrained(folder)`` loads.
    """
    g = torch.Generator().manual_seed(seed)
    tokenizer = tiny_tokenizer()
    vocab_size = len(tokenizer)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=8, sample_size=IMAGE_SIZE,
                        scaling_factor=0.13025 if xl else 0.18215)
    if xl:
        text_encoder = CLIPTextModel(_text_config(vocab_size, "quick_gelu"))
        text_encoder_2 = CLIPTextModelWithProjection(_text_config(vocab_size, "gelu", projection_dim=32))
        unet = UNet2DConditionModel(
            sample_size=LATENT_SIZE, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            norm_num_groups=8, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
            use_linear_projection=True, transformer_layers_per_block=(1, 2), cross_attention_dim=64,
            addition_embed_type="text_time", addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + 32)
        parts = [vae, text_encoder, text_encoder_2, unet]
    else:
        text_encoder = CLIPTextModel(_text_config(vocab_size, "quick_gelu"))
        text_encoder_2 = None
        unet = UNet2DConditionModel(
            sample_size=LATENT_SIZE, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            norm_num_groups=8, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2, cross_attention_dim=32)
        parts = [vae, text_encoder, unet]
    for part in parts:
        _randomise(part, g)
        part.eval()
    if xl:
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                         tokenizer=tokenizer, tokenizer_2=tiny_tokenizer(pad_token="!"), unet=unet,
                                         scheduler=tiny_scheduler(), force_zeros_for_empty_prompt=True,
                                         add_watermarker=False)
    else:
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=tiny_scheduler(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(os.fspath(folder))
    return pipe


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="output folder")
    parser.add_argument("--xl", action="store_true", help="build a StableDiffusionXLPipeline")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build_tiny_pipeline(args.folder, xl=args.xl, seed=args.seed)
    print(f"wrote a tiny {'SDXL' if args.xl else 'Stable Diffusion'} pipeline to {args.folder}")
    return args.folder


if __name__ == "__main__":
    main()
