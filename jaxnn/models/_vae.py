"""diffusers' ``AutoencoderKL`` (the Stable Diffusion VAE) as a flax.nnx module.

Sources read: ``diffusers/models/autoencoders/autoencoder_kl.py`` (``AutoencoderKL``),
``diffusers/models/autoencoders/vae.py`` (``Encoder``, ``Decoder``, ``DiagonalGaussianDistribution``,
``DecoderOutput``), ``diffusers/models/unets/unet_2d_blocks.py`` (``UNetMidBlock2D``,
``DownEncoderBlock2D``, ``UpDecoderBlock2D``, ``get_down_block`` / ``get_up_block``), diffusers 0.42.1.
The attribute tree is diffusers', so ``jaxnn.nnx.state_dict(vae)`` has diffusers' keys
(``encoder.down_blocks.0.resnets.0.conv1.weight``, ``decoder.mid_block.attentions.0.to_q.weight``,
``quant_conv.weight``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from .. import nnx as jn
from ._blocks import _ACTIVATIONS, Attention, Downsample2D, ResnetBlock2D, Upsample2D
from ._pretrained import PretrainedModel

__all__ = ["AutoencoderKL", "AutoencoderKLOutput", "DecoderOutput", "DiagonalGaussianDistribution"]


def _clamp(x: jax.Array, lo: float, hi: float) -> jax.Array:
    """``torch.clamp(x, lo, hi)`` with torch's gradient: 1 on ``[lo, hi]`` (ends included), 0 outside;
    NaN passes through."""
    return jnp.where(x < lo, jnp.asarray(lo, x.dtype), jnp.where(x > hi, jnp.asarray(hi, x.dtype), x))


@jax.tree_util.register_pytree_node_class
class DiagonalGaussianDistribution:
    r"""diffusers' ``DiagonalGaussianDistribution``: the VAE posterior :math:`\mathcal N(\mu, \sigma^2)`
    per latent element, as a JAX pytree (it crosses ``jax.jit`` boundaries).

    ``parameters`` ``(B, 2 * latent_channels, h, w)`` is split along dim 1 into ``mean`` and
    ``logvar``; ``logvar`` is clamped to ``[-30, 20]``; ``std = exp(logvar / 2)``, ``var = exp(logvar)``
    (zeros when ``deterministic``). All in ``parameters``' dtype, as in diffusers.

    Attributes:
      parameters, mean, logvar, std, var: arrays; deterministic: a static bool.
    """

    def __init__(self, parameters: jax.Array, deterministic: bool = False):
        if parameters.ndim < 2 or parameters.shape[1] % 2:
            raise ValueError("DiagonalGaussianDistribution: `parameters` must have an even number of channels "
                             f"(dim 1: mean and log-variance), got shape {tuple(parameters.shape)}.")
        self.parameters = parameters
        self.mean, logvar = jnp.split(parameters, 2, axis=1)
        self.logvar = _clamp(logvar, -30.0, 20.0)
        self.deterministic = bool(deterministic)
        self.std = jnp.exp(0.5 * self.logvar)
        self.var = jnp.exp(self.logvar)
        if self.deterministic:
            self.var = self.std = jnp.zeros_like(self.mean)

    def tree_flatten(self):
        return (self.parameters, self.mean, self.logvar, self.std, self.var), self.deterministic

    @classmethod
    def tree_unflatten(cls, deterministic: bool, children: Sequence[Any]) -> DiagonalGaussianDistribution:
        obj = object.__new__(cls)
        obj.parameters, obj.mean, obj.logvar, obj.std, obj.var = children
        obj.deterministic = deterministic
        return obj

    def sample(self, rng: jax.Array | None) -> jax.Array:
        """``mean + std * eps`` with ``eps ~ N(0, 1)`` drawn from the JAX key ``rng`` in the
        parameters' dtype (diffusers draws from a torch ``generator``: same distribution, other
        numbers)."""
        if rng is None:
            raise ValueError("DiagonalGaussianDistribution.sample needs a PRNG key: pass `rng=jax.random.key(seed)`.")
        eps = jax.random.normal(rng, self.mean.shape, self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> jax.Array:
        """The mean (the distribution's mode)."""
        return self.mean

    def kl(self, other: DiagonalGaussianDistribution | None = None) -> jax.Array:
        r"""KL divergence to ``other`` (default: the standard normal), summed over dims 1, 2, 3:
        ``(B,)``; ``[0.0]`` (shape ``(1,)``, float32) when ``deterministic``, as diffusers."""
        if self.deterministic:
            return jnp.zeros((1,), jnp.float32)
        if other is None:
            terms = jnp.square(self.mean) + self.var - 1.0 - self.logvar
        else:
            terms = (jnp.square(self.mean - other.mean) / other.var + self.var / other.var - 1.0 - self.logvar
                     + other.logvar)
        return 0.5 * jnp.sum(terms, axis=(1, 2, 3))

    def nll(self, sample: jax.Array, dims: Sequence[int] = (1, 2, 3)) -> jax.Array:
        r"""Negative log-likelihood of ``sample``:
        :math:`\tfrac12 \sum (\log 2\pi + \log\sigma^2 + (x - \mu)^2 / \sigma^2)` over ``dims``."""
        if self.deterministic:
            return jnp.zeros((1,), jnp.float32)
        logtwopi = math.log(2.0 * math.pi)
        return 0.5 * jnp.sum(logtwopi + self.logvar + jnp.square(sample - self.mean) / self.var, axis=tuple(dims))

    def __repr__(self) -> str:
        return f"DiagonalGaussianDistribution(mean={self.mean.shape}, deterministic={self.deterministic})"


@struct.dataclass
class AutoencoderKLOutput:
    """diffusers' ``AutoencoderKLOutput``: ``latent_dist``, the posterior
    (:class:`DiagonalGaussianDistribution`). A pytree."""

    latent_dist: DiagonalGaussianDistribution


@struct.dataclass
class DecoderOutput:
    """diffusers' ``DecoderOutput``: ``sample`` ``(B, out_channels, H, W)`` (``commit_loss`` is
    always None here, as for AutoencoderKL). A pytree."""

    sample: jax.Array
    commit_loss: jax.Array | None = None


class UNetMidBlock2D(nnx.Module):
    """diffusers' ``UNetMidBlock2D`` in the configuration the VAE uses: ResnetBlock2D, then
    ``num_layers`` x (Attention with group norm and residual, ResnetBlock2D); ``resnet_time_scale_shift``
    ``"default"`` only."""

    def __init__(self, in_channels: int, temb_channels: int | None, dropout: float = 0.0, num_layers: int = 1,
                 resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default", resnet_act_fn: str = "swish",
                 resnet_groups: int | None = 32, attn_groups: int | None = None, resnet_pre_norm: bool = True,
                 add_attention: bool = True, attention_head_dim: int | None = 1, output_scale_factor: float = 1.0,
                 *, dtype: Any = None, rngs: nnx.Rngs):
        if resnet_time_scale_shift != "default":
            raise NotImplementedError(f"UNetMidBlock2D: `resnet_time_scale_shift`={resnet_time_scale_shift!r} is not "
                                      "supported by jaxnn.models (only 'default').")
        resnet_groups = resnet_groups if resnet_groups is not None else min(in_channels // 4, 32)
        self.add_attention = add_attention
        if attn_groups is None:
            attn_groups = resnet_groups
        if attention_head_dim is None:
            attention_head_dim = in_channels

        def resnet() -> ResnetBlock2D:
            return ResnetBlock2D(in_channels=in_channels, out_channels=in_channels, temb_channels=temb_channels,
                                 eps=resnet_eps, groups=resnet_groups, dropout=dropout,
                                 time_embedding_norm=resnet_time_scale_shift, non_linearity=resnet_act_fn,
                                 output_scale_factor=output_scale_factor, pre_norm=resnet_pre_norm, dtype=dtype,
                                 rngs=rngs)

        resnets = [resnet()]
        attentions: list[Attention | None] = []
        for _ in range(num_layers):
            attentions.append(
                Attention(in_channels, heads=in_channels // attention_head_dim, dim_head=attention_head_dim,
                          rescale_output_factor=output_scale_factor, eps=resnet_eps, norm_num_groups=attn_groups,
                          residual_connection=True, bias=True, upcast_softmax=True, _from_deprecated_attn_block=True,
                          dtype=dtype, rngs=rngs)
                if add_attention else None)
            resnets.append(resnet())
        self.attentions = jn.ModuleList(attentions)
        self.resnets = jn.ModuleList(resnets)

    def __call__(self, hidden_states: jax.Array, temb: jax.Array | None = None) -> jax.Array:
        hidden_states = self.resnets[0](hidden_states, temb)
        for attn, resnet in zip(self.attentions, self.resnets[1:], strict=True):
            if attn is not None:
                hidden_states = attn(hidden_states)
            hidden_states = resnet(hidden_states, temb)
        return hidden_states


class DownEncoderBlock2D(nnx.Module):
    """diffusers' ``DownEncoderBlock2D``: ``num_layers`` ResnetBlock2D (no time embedding), then a
    stride-2 ``Downsample2D`` (``name="op"``) unless ``add_downsample=False``."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, num_layers: int = 1,
                 resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default", resnet_act_fn: str = "swish",
                 resnet_groups: int = 32, resnet_pre_norm: bool = True, output_scale_factor: float = 1.0,
                 add_downsample: bool = True, downsample_padding: int = 1, *, dtype: Any = None, rngs: nnx.Rngs):
        self.resnets = jn.ModuleList([
            ResnetBlock2D(in_channels=in_channels if i == 0 else out_channels, out_channels=out_channels,
                          temb_channels=None, eps=resnet_eps, groups=resnet_groups, dropout=dropout,
                          time_embedding_norm=resnet_time_scale_shift, non_linearity=resnet_act_fn,
                          output_scale_factor=output_scale_factor, pre_norm=resnet_pre_norm, dtype=dtype, rngs=rngs)
            for i in range(num_layers)])
        self.downsamplers = (jn.ModuleList([Downsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                         padding=downsample_padding, name="op", dtype=dtype,
                                                         rngs=rngs)])
                             if add_downsample else None)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, None)
        for downsampler in self.downsamplers or ():
            hidden_states = downsampler(hidden_states)
        return hidden_states


class UpDecoderBlock2D(nnx.Module):
    """diffusers' ``UpDecoderBlock2D``: ``num_layers`` ResnetBlock2D, then nearest x2 + 3x3 conv
    (``Upsample2D(use_conv=True)``) unless ``add_upsample=False``."""

    def __init__(self, in_channels: int, out_channels: int, resolution_idx: int | None = None, dropout: float = 0.0,
                 num_layers: int = 1, resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default",
                 resnet_act_fn: str = "swish", resnet_groups: int = 32, resnet_pre_norm: bool = True,
                 output_scale_factor: float = 1.0, add_upsample: bool = True, temb_channels: int | None = None,
                 *, dtype: Any = None, rngs: nnx.Rngs):
        self.resnets = jn.ModuleList([
            ResnetBlock2D(in_channels=in_channels if i == 0 else out_channels, out_channels=out_channels,
                          temb_channels=temb_channels, eps=resnet_eps, groups=resnet_groups, dropout=dropout,
                          time_embedding_norm=resnet_time_scale_shift, non_linearity=resnet_act_fn,
                          output_scale_factor=output_scale_factor, pre_norm=resnet_pre_norm, dtype=dtype, rngs=rngs)
            for i in range(num_layers)])
        self.upsamplers = (jn.ModuleList([Upsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                     dtype=dtype, rngs=rngs)])
                           if add_upsample else None)
        self.resolution_idx = resolution_idx

    def __call__(self, hidden_states: jax.Array, temb: jax.Array | None = None) -> jax.Array:
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, temb)
        for upsampler in self.upsamplers or ():
            hidden_states = upsampler(hidden_states)
        return hidden_states


class Encoder(nnx.Module):
    """diffusers' VAE ``Encoder``: ``conv_in``, the down blocks (stride-2 downsampling after all but
    the last, padding 0 with the (0, 1, 0, 1) pad), the mid block, GroupNorm(eps=1e-6) + SiLU,
    ``conv_out`` to ``2 * out_channels`` (``double_z``) channels."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3,
                 down_block_types: Sequence[str] = ("DownEncoderBlock2D",), block_out_channels: Sequence[int] = (64,),
                 layers_per_block: int = 2, norm_num_groups: int = 32, act_fn: str = "silu", double_z: bool = True,
                 mid_block_add_attention: bool = True, *, dtype: Any = None, rngs: nnx.Rngs):
        self.layers_per_block = layers_per_block
        self.conv_in = jn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, stride=1, padding=1, dtype=dtype,
                                 rngs=rngs)
        blocks = []
        output_channel = block_out_channels[0]
        for i, _ in enumerate(down_block_types):
            input_channel = output_channel
            output_channel = block_out_channels[i]
            blocks.append(DownEncoderBlock2D(
                num_layers=layers_per_block, in_channels=input_channel, out_channels=output_channel,
                add_downsample=i != len(block_out_channels) - 1, resnet_eps=1e-6, downsample_padding=0,
                resnet_act_fn=act_fn, resnet_groups=norm_num_groups, dtype=dtype, rngs=rngs))
        self.down_blocks = jn.ModuleList(blocks)
        self.mid_block = UNetMidBlock2D(in_channels=block_out_channels[-1], resnet_eps=1e-6, resnet_act_fn=act_fn,
                                        output_scale_factor=1, resnet_time_scale_shift="default",
                                        attention_head_dim=block_out_channels[-1], resnet_groups=norm_num_groups,
                                        temb_channels=None, add_attention=mid_block_add_attention, dtype=dtype,
                                        rngs=rngs)
        self.conv_norm_out = jn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=1e-6, dtype=dtype)
        self.conv_act = jn.SiLU()
        self.conv_out = jn.Conv2d(block_out_channels[-1], 2 * out_channels if double_z else out_channels, 3, padding=1,
                                  dtype=dtype, rngs=rngs)

    def __call__(self, sample: jax.Array) -> jax.Array:
        sample = self.conv_in(sample)
        for down_block in self.down_blocks:
            sample = down_block(sample)
        sample = self.mid_block(sample)
        return self.conv_out(self.conv_act(self.conv_norm_out(sample)))


class Decoder(nnx.Module):
    """diffusers' VAE ``Decoder`` (``norm_type="group"``): ``conv_in``, the mid block, the up blocks
    (``layers_per_block + 1`` resnets each, upsampling after all but the last), GroupNorm(eps=1e-6) +
    SiLU, ``conv_out``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3,
                 up_block_types: Sequence[str] = ("UpDecoderBlock2D",), block_out_channels: Sequence[int] = (64,),
                 layers_per_block: int = 2, norm_num_groups: int = 32, act_fn: str = "silu", norm_type: str = "group",
                 mid_block_add_attention: bool = True, *, dtype: Any = None, rngs: nnx.Rngs):
        if norm_type != "group":
            raise NotImplementedError(f"Decoder: `norm_type`={norm_type!r} is not supported by jaxnn.models "
                                      "(only 'group').")
        self.layers_per_block = layers_per_block
        self.conv_in = jn.Conv2d(in_channels, block_out_channels[-1], kernel_size=3, stride=1, padding=1, dtype=dtype,
                                 rngs=rngs)
        self.mid_block = UNetMidBlock2D(in_channels=block_out_channels[-1], resnet_eps=1e-6, resnet_act_fn=act_fn,
                                        output_scale_factor=1, resnet_time_scale_shift="default",
                                        attention_head_dim=block_out_channels[-1], resnet_groups=norm_num_groups,
                                        temb_channels=None, add_attention=mid_block_add_attention, dtype=dtype,
                                        rngs=rngs)
        reversed_channels = list(reversed(block_out_channels))
        output_channel = reversed_channels[0]
        blocks = []
        for i, _ in enumerate(up_block_types):
            prev_output_channel = output_channel
            output_channel = reversed_channels[i]
            blocks.append(UpDecoderBlock2D(
                num_layers=layers_per_block + 1, in_channels=prev_output_channel, out_channels=output_channel,
                add_upsample=i != len(block_out_channels) - 1, resnet_eps=1e-6, resnet_act_fn=act_fn,
                resnet_groups=norm_num_groups, temb_channels=None, resnet_time_scale_shift="default", dtype=dtype,
                rngs=rngs))
        self.up_blocks = jn.ModuleList(blocks)
        self.conv_norm_out = jn.GroupNorm(norm_num_groups, block_out_channels[0], eps=1e-6, dtype=dtype)
        self.conv_act = jn.SiLU()
        self.conv_out = jn.Conv2d(block_out_channels[0], out_channels, 3, padding=1, dtype=dtype, rngs=rngs)

    def __call__(self, sample: jax.Array) -> jax.Array:
        sample = self.conv_in(sample)
        sample = self.mid_block(sample)
        for up_block in self.up_blocks:
            sample = up_block(sample)
        return self.conv_out(self.conv_act(self.conv_norm_out(sample)))


_DEFAULTS: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",),
    "up_block_types": ("UpDecoderBlock2D",),
    "block_out_channels": (64,),
    "layers_per_block": 1,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 32,
    "scaling_factor": 0.18215,
    "shift_factor": None,
    "latents_mean": None,
    "latents_std": None,
    "force_upcast": True,
    "use_quant_conv": True,
    "use_post_quant_conv": True,
    "mid_block_add_attention": True,
}


def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"AutoencoderKL: `{name}` must be a positive int, got {v!r}.")
    return v


def _optional_floats(name: str, v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, Sequence) and not isinstance(v, str) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return list(v)
    raise ValueError(f"AutoencoderKL: `{name}` must be None, a number or a list of numbers, got {v!r}.")


class AutoencoderKL(PretrainedModel):
    r"""diffusers' ``AutoencoderKL`` (the Stable Diffusion VAE) as a flax.nnx module, with
    diffusers' configuration, attribute tree (state_dict keys) and numbers.

    ``encode`` maps images ``(B, in_channels, H, W)`` to the posterior
    :class:`DiagonalGaussianDistribution` over latents ``(B, latent_channels, H / f, W / f)``,
    :math:`f = 2^{\mathrm{len(block\_out\_channels)} - 1}` (``quant_conv`` applied to the encoder's
    output when ``use_quant_conv``); ``decode`` maps latents back to images (``post_quant_conv``
    first when ``use_post_quant_conv``). The latents the diffusion model sees are
    ``scaling_factor * (z - shift_factor)``: as in diffusers, the model does not apply
    ``scaling_factor`` / ``shift_factor`` / ``latents_mean`` / ``latents_std`` itself (pipelines do);
    they are configuration only.

    Args:
      config: a mapping as in diffusers' ``config.json``: ``in_channels`` (3), ``out_channels`` (3),
        ``down_block_types`` (("DownEncoderBlock2D",)), ``up_block_types`` (("UpDecoderBlock2D",)),
        ``block_out_channels`` ((64,)), ``layers_per_block`` (1), ``act_fn`` ("silu"),
        ``latent_channels`` (4), ``norm_num_groups`` (32), ``sample_size`` (32), ``scaling_factor``
        (0.18215), ``shift_factor`` (None), ``latents_mean`` / ``latents_std`` (None), ``force_upcast``
        (True), ``use_quant_conv`` (True), ``use_post_quant_conv`` (True), ``mid_block_add_attention``
        (True); absent keys take these (diffusers') defaults, keys starting with ``_`` are ignored,
        other keys are ignored with a ``UserWarning`` naming them (as diffusers warns and ignores them).
      dtype: keyword-only; the parameters' and computation's dtype (None: float32). Inputs are cast
        to it.
      rngs: keyword-only; parameter initialisation (``from_config`` / the constructor; torch's
        initialisers, other numbers).

    Raises:
      NotImplementedError: block types other than ``DownEncoderBlock2D`` / ``UpDecoderBlock2D`` (the
        Stable Diffusion ones; diffusers' ``UNetRes`` prefix is accepted as in ``get_down_block``).
      ValueError: malformed configuration: list lengths that do not match
        ``block_out_channels``, ``norm_num_groups`` not dividing every block's channels, an unknown
        ``act_fn``, non-positive sizes; inputs of the wrong shape (see the methods).

    dtypes: float32 matches diffusers to float32 rounding. ``dtype=jnp.bfloat16`` / ``jnp.float16``
    keeps the parameters and activations in that dtype, with float32 GroupNorm statistics and
    attention softmax (jaxnn's group_norm and scaled_dot_product_attention). ``force_upcast`` is
    configuration only, as in diffusers' model: diffusers' *pipelines* move a VAE with
    ``force_upcast=True`` to float32 before decoding; with jaxnn, load such a VAE with
    ``dtype=None`` (float32) for the same behaviour.

    Differences from diffusers: no tiling or slicing (``enable_tiling`` / ``enable_slicing``):
    jaxnn always runs the whole batch at once; memory-bounded attention comes from
    :func:`jaxnn.functional.scaled_dot_product_attention`'s chunked path instead. No gradient
    checkpointing switch (use ``nnx.remat`` around calls). ``sample`` takes a JAX key (``rng``)
    instead of a torch ``generator``. Only ``norm_type="group"`` decoders (no spatial norm).

    Examples:
      >>> from flax import nnx
      >>> from jaxnn.models import AutoencoderKL
      >>> config = {"block_out_channels": [8, 16], "norm_num_groups": 4,
      ...           "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2}
      >>> vae = nnx.eval_shape(lambda: AutoencoderKL(config, rngs=nnx.Rngs(0)))  # or from_pretrained(folder)
      >>> vae.config.scaling_factor, vae.quant_conv.weight.shape
      (0.18215, (8, 8, 1, 1))

    Encode and decode (``x`` images ``(B, 3, H, W)``)::

      posterior = vae.encode(x).latent_dist              # DiagonalGaussianDistribution
      latents = posterior.sample(jax.random.key(0)) * vae.config.scaling_factor
      images = vae.decode(latents / vae.config.scaling_factor).sample
    """

    weights_name: ClassVar[str] = "diffusion_pytorch_model.safetensors"
    library: ClassVar[str] = "diffusers"
    config_keys: ClassVar[frozenset[str]] = frozenset(_DEFAULTS)

    @classmethod
    def _check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        c = dict(_DEFAULTS)
        c.update({k: v for k, v in config.items() if k in _DEFAULTS})
        for k in ("in_channels", "out_channels", "layers_per_block", "latent_channels", "norm_num_groups"):
            _positive_int(k, c[k])
        boc = c["block_out_channels"]
        if isinstance(boc, (str, bytes)) or not isinstance(boc, Sequence) or not boc:
            raise ValueError(f"AutoencoderKL: `block_out_channels` must be a non-empty list of ints, got {boc!r}.")
        c["block_out_channels"] = [_positive_int("block_out_channels", v) for v in boc]
        n = len(boc)
        for key, base in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
            types = c[key]
            if isinstance(types, (str, bytes)) or not isinstance(types, Sequence):
                raise ValueError(f"AutoencoderKL: `{key}` must be a list of block type names, got {types!r}.")
            if len(types) != n:
                raise ValueError(f"AutoencoderKL: `{key}` has {len(types)} entries, `block_out_channels` {n}: one "
                                 "block per entry of block_out_channels.")
            for t in types:
                if not isinstance(t, str):
                    raise ValueError(f"AutoencoderKL: `{key}` entries must be strings, got {t!r}.")
                if t.removeprefix("UNetRes") != base:
                    raise NotImplementedError(f"AutoencoderKL: {key} entry {t!r} is not supported by jaxnn.models "
                                              f"(only {base!r}, the Stable Diffusion VAE's).")
            c[key] = list(types)
        g = c["norm_num_groups"]
        for ch in c["block_out_channels"]:
            if ch % g:
                raise ValueError(f"AutoencoderKL: `norm_num_groups` (={g}) must divide every entry of "
                                 f"`block_out_channels` (={c['block_out_channels']}).")
        if not isinstance(c["act_fn"], str) or c["act_fn"].lower() not in _ACTIVATIONS:
            raise ValueError(f"AutoencoderKL: `act_fn` {c['act_fn']!r} is not one of {sorted(_ACTIVATIONS)}.")
        for k in ("force_upcast", "use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"):
            if not isinstance(c[k], bool):
                raise ValueError(f"AutoencoderKL: `{k}` must be a bool, got {c[k]!r}.")
        ss = c["sample_size"]
        if isinstance(ss, Sequence) and not isinstance(ss, str):
            c["sample_size"] = [_positive_int("sample_size", v) for v in ss]
        else:
            _positive_int("sample_size", ss)
        if isinstance(c["scaling_factor"], bool) or not isinstance(c["scaling_factor"], (int, float)):
            raise ValueError(f"AutoencoderKL: `scaling_factor` must be a number, got {c['scaling_factor']!r}.")
        for k in ("shift_factor", "latents_mean", "latents_std"):
            c[k] = _optional_floats(k, c[k])
        return c

    def __init__(self, config: Mapping[str, Any], *, dtype: Any = None, rngs: nnx.Rngs):
        config = self._init_config(config, dtype)
        self.dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        boc = tuple(config.block_out_channels)
        self.encoder = Encoder(in_channels=config.in_channels, out_channels=config.latent_channels,
                               down_block_types=config.down_block_types, block_out_channels=boc,
                               layers_per_block=config.layers_per_block, act_fn=config.act_fn,
                               norm_num_groups=config.norm_num_groups, double_z=True,
                               mid_block_add_attention=config.mid_block_add_attention, dtype=dtype, rngs=rngs)
        self.decoder = Decoder(in_channels=config.latent_channels, out_channels=config.out_channels,
                               up_block_types=config.up_block_types, block_out_channels=boc,
                               layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
                               act_fn=config.act_fn, mid_block_add_attention=config.mid_block_add_attention,
                               dtype=dtype, rngs=rngs)
        lc = config.latent_channels
        self.quant_conv = (jn.Conv2d(2 * lc, 2 * lc, 1, dtype=dtype, rngs=rngs) if config.use_quant_conv else None)
        self.post_quant_conv = (jn.Conv2d(lc, lc, 1, dtype=dtype, rngs=rngs) if config.use_post_quant_conv else None)

    def _check_input(self, x: jax.Array, channels: int, what: str, method: str) -> jax.Array:
        if not hasattr(x, "ndim") or x.ndim != 4 or x.shape[1] != channels:
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(f"AutoencoderKL.{method}: `{what}` must be (batch, {channels}, height, width) "
                             f"(NCHW, {channels} = config.{'in_channels' if what == 'x' else 'latent_channels'}), "
                             f"got {shape}.")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"AutoencoderKL.{method}: `{what}` must be a floating array, got {x.dtype}.")
        return jnp.asarray(x, self.dtype)

    def _encode(self, x: jax.Array) -> jax.Array:
        enc = self.encoder(x)
        if self.quant_conv is not None:
            enc = self.quant_conv(enc)
        return enc

    def _posterior(self, x: jax.Array) -> DiagonalGaussianDistribution:
        x = self._check_input(x, self.config.in_channels, "x", "encode")
        return DiagonalGaussianDistribution(self._encode(x))

    def _decode(self, z: jax.Array) -> jax.Array:
        z = self._check_input(z, self.config.latent_channels, "z", "decode")
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def encode(self, x: jax.Array, return_dict: bool = True
               ) -> AutoencoderKLOutput | tuple[DiagonalGaussianDistribution]:
        """Images ``(B, in_channels, H, W)`` (cast to the model's dtype) -> the posterior:
        ``AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution)``, or ``(latent_dist,)``
        with ``return_dict=False``. Any ``H, W`` (diffusers' padding makes odd sizes round up)."""
        posterior = self._posterior(x)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: jax.Array, return_dict: bool = True) -> DecoderOutput | tuple[jax.Array]:
        """Latents ``(B, latent_channels, h, w)`` (cast to the model's dtype) -> images
        ``(B, out_channels, h * f, w * f)``: ``DecoderOutput(sample=...)``, or ``(sample,)`` with
        ``return_dict=False``."""
        dec = self._decode(z)
        return DecoderOutput(sample=dec) if return_dict else (dec,)

    def __call__(self, sample: jax.Array, sample_posterior: bool = False, return_dict: bool = True,
                 rng: jax.Array | None = None) -> DecoderOutput | tuple[jax.Array]:
        """``decode(encode(sample).latent_dist.mode())`` (``.sample(rng)`` with ``sample_posterior``,
        which needs the JAX key ``rng``, diffusers' ``generator``)."""
        posterior = self._posterior(sample)
        if sample_posterior:
            if rng is None:
                raise ValueError("AutoencoderKL: `sample_posterior=True` needs a PRNG key: pass "
                                 "`rng=jax.random.key(seed)`.")
            z = posterior.sample(rng)
        else:
            z = posterior.mode()
        dec = self._decode(z)
        return DecoderOutput(sample=dec) if return_dict else (dec,)
