"""The Stable Diffusion UNet's blocks from ``diffusers/models/unets/unet_2d_blocks.py``:
``CrossAttnDownBlock2D``, ``DownBlock2D``, ``UNetMidBlock2DCrossAttn``, ``CrossAttnUpBlock2D`` and
``UpBlock2D``, built from :mod:`jaxnn.models._blocks` (``ResnetBlock2D``, ``Downsample2D``,
``Upsample2D``) and :class:`~jaxnn.models._transformer_2d.Transformer2DModel`, with diffusers'
attribute names (``resnets``, ``attentions``, ``downsamplers``, ``upsamplers``) and constructor
keywords. Down blocks return ``(hidden_states, output_states)`` (the skip connections); up blocks
take those back in ``res_hidden_states_tuple`` and concatenate them on the channel axis.

Options these blocks do not implement (``dual_cross_attention=True``, ``attention_type`` other than
``"default"``, ``resnet_pre_norm=False``) raise NotImplementedError at construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from .. import nnx as jn
from ._blocks import Downsample2D, ResnetBlock2D, Upsample2D
from ._transformer_2d import Transformer2DModel

__all__ = ["CrossAttnDownBlock2D", "CrossAttnUpBlock2D", "DownBlock2D", "UNetMidBlock2DCrossAttn", "UpBlock2D"]


def _check_common(owner: str, dual_cross_attention: bool, attention_type: str, resnet_pre_norm: bool) -> None:
    if dual_cross_attention:
        raise NotImplementedError(f"{owner}: dual_cross_attention=True (DualTransformer2DModel) is not supported by "
                                  "jaxnn (supported: False).")
    if attention_type != "default":
        raise NotImplementedError(f"{owner}: attention_type={attention_type!r} is not supported by jaxnn "
                                  "(supported: 'default').")
    if not resnet_pre_norm:
        raise NotImplementedError(f"{owner}: resnet_pre_norm=False is not supported by jaxnn (diffusers' "
                                  "ResnetBlock2D always pre-norms).")


def _per_layer(owner: str, value: int | Sequence[int], num_layers: int) -> list[int]:
    """``transformer_layers_per_block`` as one count per layer (an int is repeated, as diffusers does)."""
    if isinstance(value, int):
        return [value] * num_layers
    value = list(value)
    if len(value) < num_layers:
        raise ValueError(f"{owner}: `transformer_layers_per_block` (={value}) has fewer entries than `num_layers` "
                         f"(={num_layers}).")
    return value


def _resnet(in_channels: int, out_channels: int, temb_channels: int, eps: float, groups: int, dropout: float,
            time_scale_shift: str, act_fn: str, output_scale_factor: float, dtype: Any, rngs: nnx.Rngs,
            groups_out: int | None = None) -> ResnetBlock2D:
    return ResnetBlock2D(in_channels=in_channels, out_channels=out_channels, temb_channels=temb_channels, eps=eps,
                         groups=groups, groups_out=groups_out, dropout=dropout, time_embedding_norm=time_scale_shift,
                         non_linearity=act_fn, output_scale_factor=output_scale_factor, pre_norm=True, dtype=dtype,
                         rngs=rngs)


def _transformer(num_attention_heads: int, channels: int, num_layers: int, cross_attention_dim: int,
                 norm_num_groups: int, use_linear_projection: bool, only_cross_attention: bool,
                 upcast_attention: bool, dtype: Any, rngs: nnx.Rngs) -> Transformer2DModel:
    return Transformer2DModel(num_attention_heads, channels // num_attention_heads, in_channels=channels,
                              num_layers=num_layers, cross_attention_dim=cross_attention_dim,
                              norm_num_groups=norm_num_groups, use_linear_projection=use_linear_projection,
                              only_cross_attention=only_cross_attention, upcast_attention=upcast_attention,
                              dtype=dtype, rngs=rngs)


def _attend(attn: Transformer2DModel, hidden_states: jax.Array, encoder_hidden_states: jax.Array | None,
            attention_mask: jax.Array | None, encoder_attention_mask: jax.Array | None) -> jax.Array:
    out = attn(hidden_states, encoder_hidden_states=encoder_hidden_states, attention_mask=attention_mask,
               encoder_attention_mask=encoder_attention_mask, return_dict=False)
    return out[0]


class CrossAttnDownBlock2D(nnx.Module):
    """diffusers' ``CrossAttnDownBlock2D``: ``num_layers`` x (ResnetBlock2D, Transformer2DModel),
    then an optional stride-2 ``Downsample2D`` (``downsamplers.0``, padding ``downsample_padding``).

    Args:
      in_channels, out_channels, temb_channels, dropout, num_layers, transformer_layers_per_block,
        resnet_eps, resnet_time_scale_shift, resnet_act_fn, resnet_groups, resnet_pre_norm,
        num_attention_heads, cross_attention_dim, output_scale_factor, downsample_padding,
        add_downsample, dual_cross_attention, use_linear_projection, only_cross_attention,
        upcast_attention, attention_type: diffusers'.
      dtype, rngs: keyword-only.

    Call:
      ``(hidden_states (N, in_channels, H, W), temb (N, temb_channels), encoder_hidden_states,
      attention_mask, encoder_attention_mask, additional_residuals)`` -> ``(hidden_states,
      output_states)``, ``output_states`` one tensor per layer (plus the downsampled one).
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, dropout: float = 0.0,
                 num_layers: int = 1, transformer_layers_per_block: int | Sequence[int] = 1,
                 resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default", resnet_act_fn: str = "swish",
                 resnet_groups: int = 32, resnet_pre_norm: bool = True, num_attention_heads: int = 1,
                 cross_attention_dim: int = 1280, output_scale_factor: float = 1.0, downsample_padding: int = 1,
                 add_downsample: bool = True, dual_cross_attention: bool = False, use_linear_projection: bool = False,
                 only_cross_attention: bool = False, upcast_attention: bool = False, attention_type: str = "default",
                 *, dtype: Any = None, rngs: nnx.Rngs):
        owner = "CrossAttnDownBlock2D"
        _check_common(owner, dual_cross_attention, attention_type, resnet_pre_norm)
        layers = _per_layer(owner, transformer_layers_per_block, num_layers)
        self.has_cross_attention = True
        self.num_attention_heads = num_attention_heads
        resnets, attentions = [], []
        for i in range(num_layers):
            resnets.append(_resnet(in_channels if i == 0 else out_channels, out_channels, temb_channels, resnet_eps,
                                   resnet_groups, dropout, resnet_time_scale_shift, resnet_act_fn,
                                   output_scale_factor, dtype, rngs))
            attentions.append(_transformer(num_attention_heads, out_channels, layers[i], cross_attention_dim,
                                           resnet_groups, use_linear_projection, only_cross_attention,
                                           upcast_attention, dtype, rngs))
        self.attentions = jn.ModuleList(attentions)
        self.resnets = jn.ModuleList(resnets)
        self.downsamplers = (jn.ModuleList([Downsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                         padding=downsample_padding, name="op", dtype=dtype,
                                                         rngs=rngs)])
                             if add_downsample else None)

    def __call__(self, hidden_states: jax.Array, temb: jax.Array | None = None,
                 encoder_hidden_states: jax.Array | None = None, attention_mask: jax.Array | None = None,
                 encoder_attention_mask: jax.Array | None = None,
                 additional_residuals: jax.Array | None = None) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        output_states: tuple[jax.Array, ...] = ()
        n = len(self.resnets)
        for i, (resnet, attn) in enumerate(zip(self.resnets, self.attentions, strict=True)):
            hidden_states = resnet(hidden_states, temb)
            hidden_states = _attend(attn, hidden_states, encoder_hidden_states, attention_mask,
                                    encoder_attention_mask)
            if i == n - 1 and additional_residuals is not None:
                hidden_states = hidden_states + additional_residuals
            output_states = output_states + (hidden_states,)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                hidden_states = downsampler(hidden_states)
            output_states = output_states + (hidden_states,)
        return hidden_states, output_states


class DownBlock2D(nnx.Module):
    """diffusers' ``DownBlock2D``: ``num_layers`` ResnetBlock2D, then an optional ``Downsample2D``.

    Args: diffusers' (as :class:`CrossAttnDownBlock2D` without the attention ones); dtype, rngs.

    Call: ``(hidden_states, temb)`` -> ``(hidden_states, output_states)``.
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, dropout: float = 0.0,
                 num_layers: int = 1, resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default",
                 resnet_act_fn: str = "swish", resnet_groups: int = 32, resnet_pre_norm: bool = True,
                 output_scale_factor: float = 1.0, add_downsample: bool = True, downsample_padding: int = 1, *,
                 dtype: Any = None, rngs: nnx.Rngs):
        _check_common("DownBlock2D", False, "default", resnet_pre_norm)
        self.has_cross_attention = False
        self.resnets = jn.ModuleList([
            _resnet(in_channels if i == 0 else out_channels, out_channels, temb_channels, resnet_eps, resnet_groups,
                    dropout, resnet_time_scale_shift, resnet_act_fn, output_scale_factor, dtype, rngs)
            for i in range(num_layers)])
        self.downsamplers = (jn.ModuleList([Downsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                         padding=downsample_padding, name="op", dtype=dtype,
                                                         rngs=rngs)])
                             if add_downsample else None)

    def __call__(self, hidden_states: jax.Array,
                 temb: jax.Array | None = None) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        output_states: tuple[jax.Array, ...] = ()
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states, temb)
            output_states = output_states + (hidden_states,)
        if self.downsamplers is not None:
            for downsampler in self.downsamplers:
                hidden_states = downsampler(hidden_states)
            output_states = output_states + (hidden_states,)
        return hidden_states, output_states


class UNetMidBlock2DCrossAttn(nnx.Module):
    """diffusers' ``UNetMidBlock2DCrossAttn``: ResnetBlock2D, then ``num_layers`` x
    (Transformer2DModel, ResnetBlock2D), all at ``in_channels`` (or ``out_channels``).

    Args:
      in_channels, temb_channels, out_channels, dropout, num_layers, transformer_layers_per_block,
        resnet_eps, resnet_time_scale_shift, resnet_act_fn, resnet_groups, resnet_groups_out,
        resnet_pre_norm, num_attention_heads, output_scale_factor, cross_attention_dim,
        dual_cross_attention, use_linear_projection, upcast_attention, attention_type: diffusers'.
      dtype, rngs: keyword-only.

    Call: ``(hidden_states, temb, encoder_hidden_states, attention_mask, encoder_attention_mask)`` -> hidden_states.
    """

    def __init__(self, in_channels: int, temb_channels: int, out_channels: int | None = None, dropout: float = 0.0,
                 num_layers: int = 1, transformer_layers_per_block: int | Sequence[int] = 1,
                 resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default", resnet_act_fn: str = "swish",
                 resnet_groups: int | None = 32, resnet_groups_out: int | None = None, resnet_pre_norm: bool = True,
                 num_attention_heads: int = 1, output_scale_factor: float = 1.0, cross_attention_dim: int = 1280,
                 dual_cross_attention: bool = False, use_linear_projection: bool = False,
                 upcast_attention: bool = False, attention_type: str = "default", *, dtype: Any = None,
                 rngs: nnx.Rngs):
        owner = "UNetMidBlock2DCrossAttn"
        _check_common(owner, dual_cross_attention, attention_type, resnet_pre_norm)
        out_channels = out_channels or in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.has_cross_attention = True
        self.num_attention_heads = num_attention_heads
        groups = resnet_groups if resnet_groups is not None else min(in_channels // 4, 32)
        groups_out = resnet_groups_out or groups
        layers = _per_layer(owner, transformer_layers_per_block, num_layers)
        resnets = [_resnet(in_channels, out_channels, temb_channels, resnet_eps, groups, dropout,
                           resnet_time_scale_shift, resnet_act_fn, output_scale_factor, dtype, rngs,
                           groups_out=groups_out)]
        attentions = []
        for i in range(num_layers):
            attentions.append(_transformer(num_attention_heads, out_channels, layers[i], cross_attention_dim,
                                           groups_out, use_linear_projection, False, upcast_attention, dtype, rngs))
            resnets.append(_resnet(out_channels, out_channels, temb_channels, resnet_eps, groups_out, dropout,
                                   resnet_time_scale_shift, resnet_act_fn, output_scale_factor, dtype, rngs))
        self.attentions = jn.ModuleList(attentions)
        self.resnets = jn.ModuleList(resnets)

    def __call__(self, hidden_states: jax.Array, temb: jax.Array | None = None,
                 encoder_hidden_states: jax.Array | None = None, attention_mask: jax.Array | None = None,
                 encoder_attention_mask: jax.Array | None = None) -> jax.Array:
        hidden_states = self.resnets[0](hidden_states, temb)
        for attn, resnet in zip(self.attentions, list(self.resnets)[1:], strict=True):
            hidden_states = _attend(attn, hidden_states, encoder_hidden_states, attention_mask,
                                    encoder_attention_mask)
            hidden_states = resnet(hidden_states, temb)
        return hidden_states


def _pop_skip(owner: str, hidden_states: jax.Array, res: tuple[jax.Array, ...]) -> tuple[jax.Array, tuple]:
    """The last skip connection concatenated to ``hidden_states`` on the channel axis (torch.cat dim=1)."""
    if not res:
        raise ValueError(f"{owner}: `res_hidden_states_tuple` has fewer tensors than the block has resnets.")
    skip, res = res[-1], res[:-1]
    if skip.shape[0] != hidden_states.shape[0] or skip.shape[2:] != hidden_states.shape[2:]:
        raise ValueError(f"{owner}: a skip connection of shape {tuple(skip.shape)} does not fit hidden states of shape "
                         f"{tuple(hidden_states.shape)} (batch and spatial sizes must agree).")
    dtype = jnp.promote_types(hidden_states.dtype, skip.dtype)
    return jnp.concatenate([hidden_states.astype(dtype), skip.astype(dtype)], axis=1), res


class CrossAttnUpBlock2D(nnx.Module):
    """diffusers' ``CrossAttnUpBlock2D``: ``num_layers`` x (concatenate the last skip connection,
    ResnetBlock2D, Transformer2DModel), then an optional ``Upsample2D`` (``upsamplers.0``; nearest
    x2, or to ``upsample_size`` when the UNet forwards it for odd sizes).

    Args:
      in_channels, out_channels, prev_output_channel, temb_channels, resolution_idx, dropout,
        num_layers, transformer_layers_per_block, resnet_eps, resnet_time_scale_shift, resnet_act_fn,
        resnet_groups, resnet_pre_norm, num_attention_heads, cross_attention_dim,
        output_scale_factor, add_upsample, dual_cross_attention, use_linear_projection,
        only_cross_attention, upcast_attention, attention_type: diffusers'.
      dtype, rngs: keyword-only.

    Call: ``(hidden_states, res_hidden_states_tuple, temb, encoder_hidden_states, upsample_size,
    attention_mask, encoder_attention_mask)`` -> hidden_states.
    """

    def __init__(self, in_channels: int, out_channels: int, prev_output_channel: int, temb_channels: int,
                 resolution_idx: int | None = None, dropout: float = 0.0, num_layers: int = 1,
                 transformer_layers_per_block: int | Sequence[int] = 1, resnet_eps: float = 1e-6,
                 resnet_time_scale_shift: str = "default", resnet_act_fn: str = "swish", resnet_groups: int = 32,
                 resnet_pre_norm: bool = True, num_attention_heads: int = 1, cross_attention_dim: int = 1280,
                 output_scale_factor: float = 1.0, add_upsample: bool = True, dual_cross_attention: bool = False,
                 use_linear_projection: bool = False, only_cross_attention: bool = False,
                 upcast_attention: bool = False, attention_type: str = "default", *, dtype: Any = None,
                 rngs: nnx.Rngs):
        owner = "CrossAttnUpBlock2D"
        _check_common(owner, dual_cross_attention, attention_type, resnet_pre_norm)
        layers = _per_layer(owner, transformer_layers_per_block, num_layers)
        self.has_cross_attention = True
        self.num_attention_heads = num_attention_heads
        self.resolution_idx = resolution_idx
        resnets, attentions = [], []
        for i in range(num_layers):
            res_skip_channels = in_channels if i == num_layers - 1 else out_channels
            resnet_in_channels = prev_output_channel if i == 0 else out_channels
            resnets.append(_resnet(resnet_in_channels + res_skip_channels, out_channels, temb_channels, resnet_eps,
                                   resnet_groups, dropout, resnet_time_scale_shift, resnet_act_fn,
                                   output_scale_factor, dtype, rngs))
            attentions.append(_transformer(num_attention_heads, out_channels, layers[i], cross_attention_dim,
                                           resnet_groups, use_linear_projection, only_cross_attention,
                                           upcast_attention, dtype, rngs))
        self.attentions = jn.ModuleList(attentions)
        self.resnets = jn.ModuleList(resnets)
        self.upsamplers = (jn.ModuleList([Upsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                     dtype=dtype, rngs=rngs)])
                           if add_upsample else None)

    def __call__(self, hidden_states: jax.Array, res_hidden_states_tuple: tuple[jax.Array, ...],
                 temb: jax.Array | None = None, encoder_hidden_states: jax.Array | None = None,
                 upsample_size: tuple[int, int] | None = None, attention_mask: jax.Array | None = None,
                 encoder_attention_mask: jax.Array | None = None) -> jax.Array:
        res = tuple(res_hidden_states_tuple)
        for resnet, attn in zip(self.resnets, self.attentions, strict=True):
            hidden_states, res = _pop_skip("CrossAttnUpBlock2D", hidden_states, res)
            hidden_states = resnet(hidden_states, temb)
            hidden_states = _attend(attn, hidden_states, encoder_hidden_states, attention_mask,
                                    encoder_attention_mask)
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                hidden_states = upsampler(hidden_states, upsample_size)
        return hidden_states


class UpBlock2D(nnx.Module):
    """diffusers' ``UpBlock2D``: ``num_layers`` x (concatenate the last skip connection,
    ResnetBlock2D), then an optional ``Upsample2D``.

    Args: diffusers' (as :class:`CrossAttnUpBlock2D` without the attention ones); dtype, rngs.

    Call: ``(hidden_states, res_hidden_states_tuple, temb, upsample_size)`` -> hidden_states.
    """

    def __init__(self, in_channels: int, prev_output_channel: int, out_channels: int, temb_channels: int,
                 resolution_idx: int | None = None, dropout: float = 0.0, num_layers: int = 1,
                 resnet_eps: float = 1e-6, resnet_time_scale_shift: str = "default", resnet_act_fn: str = "swish",
                 resnet_groups: int = 32, resnet_pre_norm: bool = True, output_scale_factor: float = 1.0,
                 add_upsample: bool = True, *, dtype: Any = None, rngs: nnx.Rngs):
        _check_common("UpBlock2D", False, "default", resnet_pre_norm)
        self.has_cross_attention = False
        self.resolution_idx = resolution_idx
        resnets = []
        for i in range(num_layers):
            res_skip_channels = in_channels if i == num_layers - 1 else out_channels
            resnet_in_channels = prev_output_channel if i == 0 else out_channels
            resnets.append(_resnet(resnet_in_channels + res_skip_channels, out_channels, temb_channels, resnet_eps,
                                   resnet_groups, dropout, resnet_time_scale_shift, resnet_act_fn,
                                   output_scale_factor, dtype, rngs))
        self.resnets = jn.ModuleList(resnets)
        self.upsamplers = (jn.ModuleList([Upsample2D(out_channels, use_conv=True, out_channels=out_channels,
                                                     dtype=dtype, rngs=rngs)])
                           if add_upsample else None)

    def __call__(self, hidden_states: jax.Array, res_hidden_states_tuple: tuple[jax.Array, ...],
                 temb: jax.Array | None = None, upsample_size: tuple[int, int] | None = None) -> jax.Array:
        res = tuple(res_hidden_states_tuple)
        for resnet in self.resnets:
            hidden_states, res = _pop_skip("UpBlock2D", hidden_states, res)
            hidden_states = resnet(hidden_states, temb)
        if self.upsamplers is not None:
            for upsampler in self.upsamplers:
                hidden_states = upsampler(hidden_states, upsample_size)
        return hidden_states
