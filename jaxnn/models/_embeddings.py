"""diffusers' timestep embeddings (``diffusers/models/embeddings.py``), built from
jaxnn's layers.

``get_timestep_embedding`` / ``Timesteps`` compute the sinusoidal embedding in float32 exactly as
diffusers does (each step in torch's order and dtype); ``TimestepEmbedding`` is the two-Linear MLP
with diffusers' parameter names (``linear_1``, ``linear_2``, ``cond_proj``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import nnx as jn
from ._blocks import get_activation

__all__ = ["TimestepEmbedding", "Timesteps", "get_timestep_embedding"]


def get_timestep_embedding(timesteps: jax.Array, embedding_dim: int, flip_sin_to_cos: bool = False,
                           downscale_freq_shift: float = 1, scale: float = 1, max_period: int = 10000) -> jax.Array:
    r"""diffusers' sinusoidal timestep embedding (DDPM), in float32 as diffusers computes it.

    .. math::
        f_i = \exp\!\Big(\frac{-\log(\text{max\_period})\, i}{\text{half} - \text{downscale\_freq\_shift}}\Big),
        \quad e = [\sin(\text{scale}\, t f), \cos(\text{scale}\, t f)]

    with ``half = embedding_dim // 2`` and ``i = 0 .. half - 1``; ``flip_sin_to_cos`` puts the cosines
    first; an odd ``embedding_dim`` gets one zero column at the end.

    Args:
      timesteps: ``(N,)``, one (possibly fractional) timestep per batch element, any real dtype
        (cast to float32 as diffusers' ``.float()``).
      embedding_dim: the output width.
      flip_sin_to_cos, downscale_freq_shift, scale, max_period: diffusers'.

    Returns:
      ``(N, embedding_dim)`` float32.

    Raises:
      ValueError: ``timesteps`` not 1-D (diffusers asserts it).
    """
    timesteps = jnp.asarray(timesteps)
    if timesteps.ndim != 1:
        raise ValueError(f"get_timestep_embedding: `timesteps` must be a 1-D array (one per batch element), got shape "
                         f"{tuple(timesteps.shape)}.")
    half = embedding_dim // 2
    # The frequencies are constants: computed here in numpy float32 with torch's steps (a Python float
    # times a float32 tensor is computed in float32, the scalar rounded first; an IEEE division, which
    # XLA would turn into a multiplication by the reciprocal) and a correctly rounded exp.
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.float32(-math.log(max_period)) * np.arange(half, dtype=np.float32)
        exponent = exponent / np.float32(half - downscale_freq_shift)
    freqs = np.exp(exponent.astype(np.float64)).astype(np.float32)
    emb = timesteps[:, None].astype(jnp.float32) * jnp.asarray(freqs)[None, :]
    emb = jnp.float32(scale) * emb
    emb = jnp.concatenate([jnp.sin(emb), jnp.cos(emb)], axis=-1)
    if flip_sin_to_cos:
        emb = jnp.concatenate([emb[:, half:], emb[:, :half]], axis=-1)
    if embedding_dim % 2 == 1:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


class Timesteps(nnx.Module):
    """diffusers' ``Timesteps(num_channels, flip_sin_to_cos, downscale_freq_shift, scale=1)``: no
    parameters; calls :func:`get_timestep_embedding`. Input ``(N,)``, output ``(N, num_channels)``
    float32."""

    def __init__(self, num_channels: int, flip_sin_to_cos: bool, downscale_freq_shift: float, scale: float = 1):
        self.num_channels = num_channels
        self.flip_sin_to_cos = flip_sin_to_cos
        self.downscale_freq_shift = downscale_freq_shift
        self.scale = scale

    def __call__(self, timesteps: jax.Array) -> jax.Array:
        return get_timestep_embedding(timesteps, self.num_channels, flip_sin_to_cos=self.flip_sin_to_cos,
                                      downscale_freq_shift=self.downscale_freq_shift, scale=self.scale)


class TimestepEmbedding(nnx.Module):
    """diffusers' ``TimestepEmbedding(in_channels, time_embed_dim, act_fn="silu", out_dim=None,
    post_act_fn=None, cond_proj_dim=None, sample_proj_bias=True)``.

    ``sample (+ cond_proj(condition)) -> linear_1 -> act -> linear_2 (-> post_act)``.

    Args:
      in_channels, time_embed_dim, act_fn, out_dim, post_act_fn, cond_proj_dim, sample_proj_bias:
        diffusers'. ``act_fn`` / ``post_act_fn``: diffusers' activation names (``act_fn=None``: none).
      dtype: keyword-only; the parameters' dtype (float32 by default).
      rngs: keyword-only; initialises the Linear layers.

    Shape:
      ``sample (N, in_channels)``, ``condition (N, cond_proj_dim)``; output ``(N, out_dim or time_embed_dim)``.

    Attributes:
      linear_1, linear_2: :class:`jaxnn.nnx.Linear`; cond_proj: a bias-free Linear or None;
      act, post_act: activation modules or None.
    """

    def __init__(self, in_channels: int, time_embed_dim: int, act_fn: str | None = "silu", out_dim: int | None = None,
                 post_act_fn: str | None = None, cond_proj_dim: int | None = None, sample_proj_bias: bool = True, *,
                 dtype: Any = None, rngs: nnx.Rngs):
        self.linear_1 = jn.Linear(in_channels, time_embed_dim, sample_proj_bias, dtype=dtype, rngs=rngs)
        self.cond_proj = (jn.Linear(cond_proj_dim, in_channels, bias=False, dtype=dtype, rngs=rngs)
                          if cond_proj_dim is not None else None)
        self.act = get_activation(act_fn) if act_fn is not None else None
        self.linear_2 = jn.Linear(time_embed_dim, out_dim if out_dim is not None else time_embed_dim,
                                  sample_proj_bias, dtype=dtype, rngs=rngs)
        self.post_act = get_activation(post_act_fn) if post_act_fn is not None else None

    def __call__(self, sample: jax.Array, condition: jax.Array | None = None) -> jax.Array:
        if condition is not None:
            if self.cond_proj is None:
                raise ValueError("TimestepEmbedding: a `condition` (the UNet's `timestep_cond`) was given, but this "
                                 "embedding has no `cond_proj` (the configuration's `time_cond_proj_dim` is None).")
            sample = sample + self.cond_proj(condition)
        sample = self.linear_1(sample)
        if self.act is not None:
            sample = self.act(sample)
        sample = self.linear_2(sample)
        if self.post_act is not None:
            sample = self.post_act(sample)
        return sample
