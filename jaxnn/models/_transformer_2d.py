"""diffusers' spatial transformer as used by Stable Diffusion's UNet: the feed-forward activations
(``diffusers/models/activations.py``: ``GELU``, ``GEGLU``, ``ApproximateGELU``), ``FeedForward`` and
``BasicTransformerBlock`` (``diffusers/models/attention.py``), and ``Transformer2DModel``
(``diffusers/models/transformers/transformer_2d.py``, continuous input only), built from jaxnn's
layers with diffusers' attribute names, so that state_dict keys are diffusers' (``norm1``,
``attn1.to_q.weight``, ``ff.net.0.proj.weight``, ``ff.net.2.weight``, ``proj_in``, ...).

Only the options Stable Diffusion 1.x / 2.x / XL use are implemented (``norm_type="layer_norm"``,
``attention_type="default"``, no positional embeddings, continuous ``(N, C, H, W)`` input); any
other value raises NotImplementedError naming the option at construction.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx, struct

from .. import functional as F
from .. import nnx as jn
from ._blocks import Attention

__all__ = ["GELU", "GEGLU", "ApproximateGELU", "BasicTransformerBlock", "FeedForward", "Transformer2DModel",
           "Transformer2DModelOutput"]

GEGLU = jn.GEGLU  # diffusers' GEGLU(dim_in, dim_out, bias=True): proj, then h * gelu(gate)


def _unsupported(owner: str, option: str, value: Any, supported: str) -> NotImplementedError:
    return NotImplementedError(f"{owner}: {option}={value!r} is not supported by jaxnn (supported: {supported}).")


class GELU(nnx.Module):
    """diffusers' ``GELU(dim_in, dim_out, approximate="none", bias=True)``: ``gelu(proj(x))``.

    Args:
      dim_in, dim_out, approximate, bias: diffusers' (``approximate`` ``"none"`` or ``"tanh"``).
      dtype, rngs: keyword-only; the parameters' dtype and initialiser.

    Shape: ``(*, dim_in) -> (*, dim_out)``. Attribute ``proj``: a :class:`jaxnn.nnx.Linear`.
    """

    def __init__(self, dim_in: int, dim_out: int, approximate: str = "none", bias: bool = True, *,
                 dtype: Any = None, rngs: nnx.Rngs):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: `approximate` must be 'none' or 'tanh', got {approximate!r}.")
        self.proj = jn.Linear(dim_in, dim_out, bias, dtype=dtype, rngs=rngs)
        self.approximate = approximate

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return F.gelu(self.proj(hidden_states), approximate=self.approximate)  # pyright: ignore[reportArgumentType]


class ApproximateGELU(nnx.Module):
    """diffusers' ``ApproximateGELU(dim_in, dim_out, bias=True)``: ``x * sigmoid(1.702 x)`` with
    ``x = proj(input)``. Shape ``(*, dim_in) -> (*, dim_out)``."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True, *, dtype: Any = None, rngs: nnx.Rngs):
        self.proj = jn.Linear(dim_in, dim_out, bias, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.proj(x)
        return x * jax.nn.sigmoid(jnp.asarray(1.702, x.dtype) * x)


_FF_ACTIVATIONS = ("gelu", "gelu-approximate", "geglu", "geglu-approximate")


class FeedForward(nnx.Module):
    """diffusers' ``FeedForward(dim, dim_out=None, mult=4, dropout=0.0, activation_fn="geglu",
    final_dropout=False, inner_dim=None, bias=True)``.

    ``net = [activation-with-projection, Dropout(dropout), Linear(inner_dim, dim_out)(, Dropout)]``
    with ``inner_dim = int(dim * mult)`` unless given, so state_dict keys ``net.0.proj.*`` and
    ``net.2.*`` as diffusers'.

    Args:
      dim, dim_out, mult, dropout, activation_fn, final_dropout, inner_dim, bias: diffusers'.
        ``activation_fn``: ``"geglu"`` (Stable Diffusion), ``"gelu"``, ``"gelu-approximate"``,
        ``"geglu-approximate"``.
      dtype, rngs: keyword-only; the parameters' dtype and initialiser (``rngs`` also feeds the
        dropout layers in training mode).

    Shape: ``(*, dim) -> (*, dim_out or dim)``.

    Raises:
      NotImplementedError: another ``activation_fn`` (``"swiglu"``, ``"linear-silu"``).
    """

    def __init__(self, dim: int, dim_out: int | None = None, mult: int = 4, dropout: float = 0.0,
                 activation_fn: str = "geglu", final_dropout: bool = False, inner_dim: int | None = None,
                 bias: bool = True, *, dtype: Any = None, rngs: nnx.Rngs):
        if inner_dim is None:
            inner_dim = int(dim * mult)
        dim_out = dim_out if dim_out is not None else dim
        if activation_fn == "gelu":
            act: Any = GELU(dim, inner_dim, bias=bias, dtype=dtype, rngs=rngs)
        elif activation_fn == "gelu-approximate":
            act = GELU(dim, inner_dim, approximate="tanh", bias=bias, dtype=dtype, rngs=rngs)
        elif activation_fn == "geglu":
            act = jn.GEGLU(dim, inner_dim, bias=bias, dtype=dtype, rngs=rngs)
        elif activation_fn == "geglu-approximate":
            act = ApproximateGELU(dim, inner_dim, bias=bias, dtype=dtype, rngs=rngs)
        else:
            raise _unsupported("FeedForward", "activation_fn", activation_fn, ", ".join(map(repr, _FF_ACTIVATIONS)))
        layers = [act, jn.Dropout(dropout, rngs=rngs), jn.Linear(inner_dim, dim_out, bias, dtype=dtype, rngs=rngs)]
        if final_dropout:
            layers.append(jn.Dropout(dropout, rngs=rngs))
        self.net = jn.ModuleList(layers)

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        for module in self.net:
            hidden_states = module(hidden_states)
        return hidden_states


class BasicTransformerBlock(nnx.Module):
    """diffusers' ``BasicTransformerBlock`` with ``norm_type="layer_norm"``: self-attention,
    cross-attention and feed-forward, each pre-normed with a LayerNorm and added to the residual.

    ``h = attn1(norm1(x)) + x``; ``h = attn2(norm2(h), encoder_hidden_states) + h`` (when
    ``cross_attention_dim`` or ``double_self_attention`` is set); ``out = ff(norm3(h)) + h``. With
    ``only_cross_attention`` ``attn1`` attends to ``encoder_hidden_states`` too; with
    ``double_self_attention`` ``attn2`` is a second self-attention.

    Args:
      dim, num_attention_heads, attention_head_dim, dropout, cross_attention_dim, activation_fn,
        attention_bias, only_cross_attention, double_self_attention, upcast_attention,
        norm_elementwise_affine, norm_eps, final_dropout, ff_inner_dim, ff_bias, attention_out_bias:
        diffusers'.
      num_embeds_ada_norm, norm_type, attention_type, positional_embeddings,
        num_positional_embeddings: only diffusers' defaults (None, ``"layer_norm"``, ``"default"``,
        None, None) are implemented.
      dtype, rngs: keyword-only.

    Shape:
      ``hidden_states (N, L, dim)``, ``encoder_hidden_states (N, S, cross_attention_dim)``; output
      ``(N, L, dim)``. ``attention_mask`` goes to ``attn1``, ``encoder_attention_mask`` to ``attn2``
      (as diffusers: masks or additive biases, prepared by :class:`Attention`).
    """

    def __init__(self, dim: int, num_attention_heads: int, attention_head_dim: int, dropout: float = 0.0,
                 cross_attention_dim: int | None = None, activation_fn: str = "geglu",
                 num_embeds_ada_norm: int | None = None, attention_bias: bool = False,
                 only_cross_attention: bool = False, double_self_attention: bool = False,
                 upcast_attention: bool = False, norm_elementwise_affine: bool = True, norm_type: str = "layer_norm",
                 norm_eps: float = 1e-5, final_dropout: bool = False, attention_type: str = "default",
                 positional_embeddings: str | None = None, num_positional_embeddings: int | None = None,
                 ff_inner_dim: int | None = None, ff_bias: bool = True, attention_out_bias: bool = True, *,
                 dtype: Any = None, rngs: nnx.Rngs):
        owner = "BasicTransformerBlock"
        if norm_type != "layer_norm":
            raise _unsupported(owner, "norm_type", norm_type, "'layer_norm'")
        if num_embeds_ada_norm is not None:
            raise _unsupported(owner, "num_embeds_ada_norm", num_embeds_ada_norm, "None")
        if attention_type != "default":
            raise _unsupported(owner, "attention_type", attention_type, "'default'")
        if positional_embeddings is not None or num_positional_embeddings is not None:
            raise _unsupported(owner, "positional_embeddings", positional_embeddings, "None")
        self.dim = dim
        self.only_cross_attention = only_cross_attention
        self.double_self_attention = double_self_attention
        self.norm_type = norm_type
        self.norm1 = jn.LayerNorm(dim, norm_eps, norm_elementwise_affine, dtype=dtype)
        self.attn1 = Attention(query_dim=dim, heads=num_attention_heads, dim_head=attention_head_dim, dropout=dropout,
                               bias=attention_bias,
                               cross_attention_dim=cross_attention_dim if only_cross_attention else None,
                               upcast_attention=upcast_attention, out_bias=attention_out_bias, dtype=dtype, rngs=rngs)
        if cross_attention_dim is not None or double_self_attention:
            self.norm2 = jn.LayerNorm(dim, norm_eps, norm_elementwise_affine, dtype=dtype)
            self.attn2 = Attention(query_dim=dim,
                                   cross_attention_dim=cross_attention_dim if not double_self_attention else None,
                                   heads=num_attention_heads, dim_head=attention_head_dim, dropout=dropout,
                                   bias=attention_bias, upcast_attention=upcast_attention,
                                   out_bias=attention_out_bias, dtype=dtype, rngs=rngs)
        else:
            self.norm2 = None
            self.attn2 = None
        self.norm3 = jn.LayerNorm(dim, norm_eps, norm_elementwise_affine, dtype=dtype)
        self.ff = FeedForward(dim, dropout=dropout, activation_fn=activation_fn, final_dropout=final_dropout,
                              inner_dim=ff_inner_dim, bias=ff_bias, dtype=dtype, rngs=rngs)

    def __call__(self, hidden_states: jax.Array, attention_mask: jax.Array | None = None,
                 encoder_hidden_states: jax.Array | None = None,
                 encoder_attention_mask: jax.Array | None = None) -> jax.Array:
        norm_hidden_states = self.norm1(hidden_states)
        attn_output = self.attn1(norm_hidden_states,
                                 encoder_hidden_states=encoder_hidden_states if self.only_cross_attention else None,
                                 attention_mask=attention_mask)
        hidden_states = attn_output + hidden_states
        if self.attn2 is not None and self.norm2 is not None:
            norm_hidden_states = self.norm2(hidden_states)
            attn_output = self.attn2(norm_hidden_states, encoder_hidden_states=encoder_hidden_states,
                                     attention_mask=encoder_attention_mask)
            hidden_states = attn_output + hidden_states
        norm_hidden_states = self.norm3(hidden_states)
        return self.ff(norm_hidden_states) + hidden_states


@struct.dataclass
class Transformer2DModelOutput:
    """diffusers' ``Transformer2DModelOutput``: ``sample`` ``(N, C, H, W)`` (a pytree)."""

    sample: jax.Array

    def __getitem__(self, index: int) -> jax.Array:
        return (self.sample,)[index]


def _mask_to_bias(mask: jax.Array | None, dtype: Any) -> jax.Array | None:
    """diffusers' conversion of a ``(batch, key_tokens)`` keep-mask (1 / True = keep) to an additive
    bias ``(batch, 1, key_tokens)`` of ``(1 - mask) * -10000``; other ranks pass through (already biases)."""
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.ndim != 2:
        return mask
    return ((1 - mask.astype(dtype)) * jnp.asarray(-10000.0, dtype))[:, None, :]


class Transformer2DModel(nnx.Module):
    """diffusers' ``Transformer2DModel`` for continuous ``(N, C, H, W)`` input (the UNet's spatial
    transformer).

    ``x = proj_in(norm(input))`` (GroupNorm with eps 1e-6, then a 1x1 Conv2d, or a Linear after
    flattening to ``(N, H*W, C)`` when ``use_linear_projection``); ``num_layers``
    :class:`BasicTransformerBlock` s in ``transformer_blocks``; ``proj_out`` back and the input added.

    Args:
      num_attention_heads, attention_head_dim, in_channels, out_channels, num_layers, dropout,
        norm_num_groups, cross_attention_dim, attention_bias, activation_fn, use_linear_projection,
        only_cross_attention, double_self_attention, upcast_attention, norm_elementwise_affine,
        norm_eps: diffusers'.
      sample_size: informational (unused for continuous input, as in diffusers).
      num_vector_embeds, patch_size, num_embeds_ada_norm, norm_type, attention_type: only diffusers'
        defaults (None, None, None, ``"layer_norm"``, ``"default"``) are implemented.
      dtype, rngs: keyword-only.

    Shape:
      ``hidden_states (N, in_channels, H, W)``; ``encoder_hidden_states (N, S, cross_attention_dim)``;
      masks ``(N, S)`` keep-masks (converted to ``(1 - mask) * -10000`` biases as diffusers) or
      ``(N, 1, S)`` biases; output ``(N, out_channels, H, W)``.

    Returns:
      :class:`Transformer2DModelOutput` (``sample``), or ``(sample,)`` with ``return_dict=False``.
    """

    def __init__(self, num_attention_heads: int = 16, attention_head_dim: int = 88, in_channels: int | None = None,
                 out_channels: int | None = None, num_layers: int = 1, dropout: float = 0.0,
                 norm_num_groups: int = 32, cross_attention_dim: int | None = None, attention_bias: bool = False,
                 sample_size: int | None = None, num_vector_embeds: int | None = None, patch_size: int | None = None,
                 activation_fn: str = "geglu", num_embeds_ada_norm: int | None = None,
                 use_linear_projection: bool = False, only_cross_attention: bool = False,
                 double_self_attention: bool = False, upcast_attention: bool = False, norm_type: str = "layer_norm",
                 norm_elementwise_affine: bool = True, norm_eps: float = 1e-5, attention_type: str = "default", *,
                 dtype: Any = None, rngs: nnx.Rngs):
        owner = "Transformer2DModel"
        if in_channels is None:
            raise _unsupported(owner, "in_channels", in_channels, "an int (continuous input)")
        if num_vector_embeds is not None:
            raise _unsupported(owner, "num_vector_embeds", num_vector_embeds, "None")
        if patch_size is not None:
            raise _unsupported(owner, "patch_size", patch_size, "None")
        del sample_size
        self.num_attention_heads = num_attention_heads
        self.attention_head_dim = attention_head_dim
        self.inner_dim = inner_dim = num_attention_heads * attention_head_dim
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.use_linear_projection = use_linear_projection
        if use_linear_projection and self.out_channels != inner_dim:
            raise ValueError(f"Transformer2DModel: with `use_linear_projection` the output channels "
                             f"(={self.out_channels}) must equal num_attention_heads * attention_head_dim "
                             f"(={inner_dim}), as diffusers' reshape requires.")
        self.norm = jn.GroupNorm(norm_num_groups, in_channels, eps=1e-6, affine=True, dtype=dtype)
        if use_linear_projection:
            self.proj_in: Any = jn.Linear(in_channels, inner_dim, dtype=dtype, rngs=rngs)
        else:
            self.proj_in = jn.Conv2d(in_channels, inner_dim, kernel_size=1, stride=1, padding=0, dtype=dtype, rngs=rngs)
        self.transformer_blocks = jn.ModuleList([
            BasicTransformerBlock(inner_dim, num_attention_heads, attention_head_dim, dropout=dropout,
                                  cross_attention_dim=cross_attention_dim, activation_fn=activation_fn,
                                  num_embeds_ada_norm=num_embeds_ada_norm, attention_bias=attention_bias,
                                  only_cross_attention=only_cross_attention,
                                  double_self_attention=double_self_attention, upcast_attention=upcast_attention,
                                  norm_type=norm_type, norm_elementwise_affine=norm_elementwise_affine,
                                  norm_eps=norm_eps, attention_type=attention_type, dtype=dtype, rngs=rngs)
            for _ in range(num_layers)])
        if use_linear_projection:
            self.proj_out: Any = jn.Linear(inner_dim, self.out_channels, dtype=dtype, rngs=rngs)
        else:
            self.proj_out = jn.Conv2d(inner_dim, self.out_channels, kernel_size=1, stride=1, padding=0, dtype=dtype,
                                      rngs=rngs)

    def __call__(self, hidden_states: jax.Array, encoder_hidden_states: jax.Array | None = None,
                 attention_mask: jax.Array | None = None, encoder_attention_mask: jax.Array | None = None,
                 return_dict: bool = True) -> Transformer2DModelOutput | tuple[jax.Array]:
        if hidden_states.ndim != 4 or hidden_states.shape[1] != self.in_channels:
            raise ValueError(f"Transformer2DModel: `hidden_states` must be (N, {self.in_channels}, H, W), got shape "
                             f"{tuple(hidden_states.shape)}.")
        attention_mask = _mask_to_bias(attention_mask, hidden_states.dtype)
        encoder_attention_mask = _mask_to_bias(encoder_attention_mask, hidden_states.dtype)
        batch, _, height, width = hidden_states.shape
        residual = hidden_states
        hidden_states = self.norm(hidden_states)
        inner_dim = self.inner_dim
        if not self.use_linear_projection:
            hidden_states = self.proj_in(hidden_states)
            hidden_states = hidden_states.transpose(0, 2, 3, 1).reshape(batch, height * width, inner_dim)
        else:
            hidden_states = hidden_states.transpose(0, 2, 3, 1).reshape(batch, height * width, self.in_channels)
            hidden_states = self.proj_in(hidden_states)
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, attention_mask=attention_mask,
                                  encoder_hidden_states=encoder_hidden_states,
                                  encoder_attention_mask=encoder_attention_mask)
        if not self.use_linear_projection:
            hidden_states = hidden_states.reshape(batch, height, width, inner_dim).transpose(0, 3, 1, 2)
            hidden_states = self.proj_out(hidden_states)
        else:
            hidden_states = self.proj_out(hidden_states)
            hidden_states = hidden_states.reshape(batch, height, width, inner_dim).transpose(0, 3, 1, 2)
        output = hidden_states + residual
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
