"""diffusers' building blocks as flax.nnx modules: ``Attention``, ``ResnetBlock2D``, ``Downsample2D``,
``Upsample2D``, with diffusers' constructor keywords, attribute names (so state_dict keys match
diffusers' without renaming) and numbers.

Sources read: ``diffusers/models/attention_processor.py`` (``Attention``, ``AttnProcessor2_0``,
``Attention.prepare_attention_mask``), ``diffusers/models/resnet.py`` (``ResnetBlock2D``),
``diffusers/models/downsampling.py`` / ``upsampling.py`` (``Downsample2D`` / ``Upsample2D``),
``diffusers/models/activations.py`` (``get_activation``), diffusers 0.42.1.

Every block is built from :mod:`jaxnn.nnx` layers and :mod:`jaxnn.functional` ops only. Each
constructor takes diffusers' arguments (same keywords, same defaults) plus keyword-only ``dtype``
(the parameters' and computation's dtype; None = float32) and ``rngs`` (parameter initialisation,
and the ``dropout`` stream for dropout in training mode). As torch modules, a fresh block is in
training mode (dropout active when ``p > 0``); ``block.eval()`` switches it off.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from .. import functional as F
from .. import nnx as jn

__all__ = ["Attention", "Downsample2D", "ResnetBlock2D", "Upsample2D", "get_activation"]

_ACTIVATIONS = {"swish": jn.SiLU, "silu": jn.SiLU, "mish": jn.Mish, "gelu": jn.GELU, "relu": jn.ReLU}


def get_activation(act_fn: str) -> nnx.Module:
    """diffusers' ``get_activation(act_fn)``: the activation module named (case-insensitive)
    ``"swish"``/``"silu"`` (:class:`jaxnn.nnx.SiLU`), ``"mish"``, ``"gelu"`` (exact erf gelu, torch's
    ``nn.GELU()``) or ``"relu"``. Anything else is a ValueError, as in diffusers."""
    if not isinstance(act_fn, str) or act_fn.lower() not in _ACTIVATIONS:
        raise ValueError(f"activation function {act_fn!r} not found in ACT2FN mapping {list(_ACTIVATIONS)}.")
    return _ACTIVATIONS[act_fn.lower()]()


def _unsupported(cls: str, name: str, value: Any, supported: str) -> NotImplementedError:
    return NotImplementedError(f"{cls}: `{name}`={value!r} is not supported by jaxnn.models ({supported}).")


def _check_channels(cls: str, x: jax.Array, channels: int, what: str = "hidden_states") -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{cls}: `{what}` must be (batch, channels={channels}, height, width), "
                         f"got shape {tuple(x.shape)}.")


class Attention(nnx.Module):
    r"""diffusers' ``Attention`` with its default processor ``AttnProcessor2_0`` (scaled dot-product
    attention), as a flax.nnx module.

    .. math::

        \mathrm{out} = \big(\mathrm{to\_out}(\mathrm{softmax}(s\, Q K^T + M) V)
        \;[+\ \mathrm{hidden\_states}]\big) / \mathrm{rescale\_output\_factor}

    with :math:`Q` = ``to_q(group_norm(hidden_states))``, :math:`K, V` = ``to_k``/``to_v`` of
    ``encoder_hidden_states`` (``norm_cross`` applied first if configured; ``hidden_states`` when
    None), split into ``heads`` heads of ``dim_head`` channels, :math:`s = 1/\sqrt{\mathrm{dim\_head}}`
    (1 with ``scale_qk=False``) and :math:`M` the prepared ``attention_mask``. The attention itself is
    :func:`jaxnn.functional.scaled_dot_product_attention`.

    Args:
      query_dim, cross_attention_dim, heads, dim_head, dropout, bias, upcast_attention,
        upcast_softmax, cross_attention_norm (None, ``"layer_norm"`` or ``"group_norm"``),
        cross_attention_norm_num_groups, norm_num_groups, out_bias, scale_qk, eps,
        rescale_output_factor, residual_connection, out_dim, is_causal (ignored, as
        ``AttnProcessor2_0`` ignores it), elementwise_affine (only used with ``qk_norm``):
        diffusers' keywords and defaults.
      kv_heads, qk_norm, added_kv_proj_dim, added_proj_bias, only_cross_attention, spatial_norm_dim,
        processor, out_context_dim, context_pre_only, pre_only: accepted with their defaults only
        (other values: NotImplementedError; ``only_cross_attention=True`` without
        ``added_kv_proj_dim`` is diffusers' ValueError). ``_from_deprecated_attn_block`` is accepted
        and has no effect (diffusers uses it to rename pre-2023 checkpoint keys; jaxnn loads the
        current names).
      dtype: keyword-only; the parameters' dtype (None: float32).
      rngs: keyword-only; initialises the parameters, and its ``dropout`` stream drives ``to_out.1``.

    Call:
      ``attn(hidden_states, encoder_hidden_states=None, attention_mask=None)``.
      ``hidden_states`` is ``(B, L, query_dim)`` or an image ``(B, query_dim, H, W)`` (flattened to
      ``L = H * W`` tokens and reshaped back, as diffusers does); ``encoder_hidden_states``
      ``(B, S, cross_attention_dim)``. ``attention_mask`` is boolean (True = attend) or additive
      float, of shape ``(B, S)``, ``(B, 1 or L, S)`` or ``(B * heads, 1 or L, S)``: prepared as
      diffusers' ``prepare_attention_mask`` does (repeated per head when its first dimension is below
      ``B * heads``, then viewed as ``(B, heads, -1, S)``).

    Returns:
      the same layout as ``hidden_states``, ``out_dim`` (default ``query_dim``) channels.

    Raises:
      NotImplementedError: an unsupported option (above). ValueError: malformed inputs (rank,
      channels, a mask whose last dimension is not the key length: diffusers pads such a mask
      to a length SDPA then rejects; ``encoder_hidden_states`` with another batch size than
      ``hidden_states``, which diffusers' reshapes can silently fold into the sequence; an empty
      batch or sequence, which diffusers' reshapes reject).

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxnn.models._blocks import Attention
      >>> attn = Attention(16, cross_attention_dim=8, heads=2, dim_head=8, rngs=nnx.Rngs(0))
      >>> attn(jnp.ones((1, 5, 16)), encoder_hidden_states=jnp.ones((1, 3, 8))).shape
      (1, 5, 16)

    Differences from diffusers: ``upcast_attention`` / ``upcast_softmax`` are stored but have no
    effect, as in ``AttnProcessor2_0``: the scores and softmax are always computed in float32 for
    float16/bfloat16 inputs (torch's reference SDPA kernel does the same; its fused CPU kernels
    round the weights to half precision first). That is the upcast semantics of diffusers'
    ``AttnProcessor`` (``q.float() @ k.float()^T``, float32 softmax), except that the probabilities
    stay float32 for the product with ``value`` (``AttnProcessor`` rounds them to the input dtype
    first); the bfloat16 error is within torch's with either processor (tested). With
    ``scale_qk=False`` diffusers switches to the older ``AttnProcessor`` (``baddbmm`` + softmax);
    jaxnn computes the same formula with ``scale=1``, in float32 for half-precision inputs.
    """

    def __init__(
        self,
        query_dim: int,
        cross_attention_dim: int | None = None,
        heads: int = 8,
        kv_heads: int | None = None,
        dim_head: int = 64,
        dropout: float = 0.0,
        bias: bool = False,
        upcast_attention: bool = False,
        upcast_softmax: bool = False,
        cross_attention_norm: str | None = None,
        cross_attention_norm_num_groups: int = 32,
        qk_norm: str | None = None,
        added_kv_proj_dim: int | None = None,
        added_proj_bias: bool | None = True,
        norm_num_groups: int | None = None,
        spatial_norm_dim: int | None = None,
        out_bias: bool = True,
        scale_qk: bool = True,
        only_cross_attention: bool = False,
        eps: float = 1e-5,
        rescale_output_factor: float = 1.0,
        residual_connection: bool = False,
        _from_deprecated_attn_block: bool = False,
        processor: Any = None,
        out_dim: int | None = None,
        out_context_dim: int | None = None,
        context_pre_only: bool | None = None,
        pre_only: bool = False,
        elementwise_affine: bool = True,
        is_causal: bool = False,
        *,
        dtype: Any = None,
        rngs: nnx.Rngs,
    ):
        name = "Attention"
        if added_kv_proj_dim is None and only_cross_attention:
            raise ValueError("Attention: `only_cross_attention` can only be set to True if `added_kv_proj_dim` is "
                             "not None. Make sure to set either `only_cross_attention=False` or define "
                             "`added_kv_proj_dim`.")
        for opt, value, default in (("kv_heads", kv_heads, None), ("qk_norm", qk_norm, None),
                                    ("added_kv_proj_dim", added_kv_proj_dim, None),
                                    ("spatial_norm_dim", spatial_norm_dim, None), ("processor", processor, None),
                                    ("out_context_dim", out_context_dim, None),
                                    ("context_pre_only", context_pre_only, None), ("pre_only", pre_only, False)):
            if value != default:
                raise _unsupported(name, opt, value, f"only {default!r}: the Stable Diffusion attention")
        if cross_attention_norm not in (None, "layer_norm", "group_norm"):
            raise ValueError(f"Attention: unknown `cross_attention_norm` {cross_attention_norm!r}. Should be None, "
                             "'layer_norm' or 'group_norm'.")
        if out_dim is not None and (out_dim <= 0 or out_dim % dim_head):
            raise ValueError(f"Attention: `out_dim` (={out_dim}) must be a positive multiple of `dim_head` "
                             f"(={dim_head}).")
        self.inner_dim = out_dim if out_dim is not None else dim_head * heads
        self.query_dim = query_dim
        self.use_bias = bias
        self.is_cross_attention = cross_attention_dim is not None
        self.cross_attention_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.upcast_attention = upcast_attention
        self.upcast_softmax = upcast_softmax
        self.rescale_output_factor = rescale_output_factor
        self.residual_connection = residual_connection
        self.dropout = dropout
        self.out_dim = out_dim if out_dim is not None else query_dim
        self.is_causal = is_causal
        self.scale_qk = scale_qk
        self.scale = dim_head**-0.5 if scale_qk else 1.0
        self.heads = out_dim // dim_head if out_dim is not None else heads
        self.only_cross_attention = only_cross_attention
        if norm_num_groups is not None:
            self.group_norm = jn.GroupNorm(norm_num_groups, query_dim, eps=eps, affine=True, dtype=dtype)
        else:
            self.group_norm = None
        self.spatial_norm = None
        self.norm_q = self.norm_k = None
        if cross_attention_norm == "layer_norm":
            self.norm_cross = jn.LayerNorm(self.cross_attention_dim, dtype=dtype)
        elif cross_attention_norm == "group_norm":
            self.norm_cross = jn.GroupNorm(cross_attention_norm_num_groups, self.cross_attention_dim, eps=1e-5,
                                           affine=True, dtype=dtype)
        else:
            self.norm_cross = None
        self.to_q = jn.Linear(query_dim, self.inner_dim, bias=bias, dtype=dtype, rngs=rngs)
        self.to_k = jn.Linear(self.cross_attention_dim, self.inner_dim, bias=bias, dtype=dtype, rngs=rngs)
        self.to_v = jn.Linear(self.cross_attention_dim, self.inner_dim, bias=bias, dtype=dtype, rngs=rngs)
        self.add_q_proj = self.add_k_proj = self.add_v_proj = None
        self.to_out = jn.ModuleList([jn.Linear(self.inner_dim, self.out_dim, bias=out_bias, dtype=dtype, rngs=rngs),
                                     jn.Dropout(dropout, rngs=rngs)])
        self.to_add_out = None
        self.norm_added_q = self.norm_added_k = None

    def prepare_attention_mask(self, attention_mask: jax.Array | None, target_length: int, batch_size: int,
                               out_dim: int = 3) -> jax.Array | None:
        """diffusers' ``Attention.prepare_attention_mask``: repeat a mask with fewer than
        ``batch_size * heads`` rows per head (``out_dim=3``), or add and repeat a heads dimension
        (``out_dim=4``). A mask whose last dimension is not ``target_length`` is a ValueError (diffusers
        pads it by ``target_length``, which no attention then accepts)."""
        if attention_mask is None:
            return None
        return self._prepare_mask(attention_mask, target_length, batch_size, out_dim)

    def _prepare_mask(self, attention_mask: jax.Array, target_length: int, batch_size: int,
                      out_dim: int = 3) -> jax.Array:
        if attention_mask.ndim < 2 or attention_mask.shape[-1] != target_length:
            raise ValueError(f"Attention: `attention_mask` must end in the key length {target_length} (shape "
                             f"(batch, [query length,] {target_length})), got shape {tuple(attention_mask.shape)}.")
        if out_dim == 3:
            if attention_mask.shape[0] < batch_size * self.heads:
                attention_mask = jnp.repeat(attention_mask, self.heads, axis=0)
        elif out_dim == 4:
            attention_mask = jnp.repeat(attention_mask[:, None], self.heads, axis=1)
        else:
            raise ValueError(f"Attention.prepare_attention_mask: `out_dim` must be 3 or 4, got {out_dim!r}.")
        return attention_mask

    def norm_encoder_hidden_states(self, encoder_hidden_states: jax.Array) -> jax.Array:
        """diffusers' ``norm_encoder_hidden_states``: ``norm_cross`` over the channels (last dim)."""
        if self.norm_cross is None:
            raise ValueError("Attention.norm_encoder_hidden_states needs `cross_attention_norm` to be set.")
        if isinstance(self.norm_cross, jn.LayerNorm):
            return self.norm_cross(encoder_hidden_states)
        return jnp.swapaxes(self.norm_cross(jnp.swapaxes(encoder_hidden_states, 1, 2)), 1, 2)

    def __call__(self, hidden_states: jax.Array, encoder_hidden_states: jax.Array | None = None,
                 attention_mask: jax.Array | None = None) -> jax.Array:
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            if channel != self.query_dim:
                raise ValueError(f"Attention: `hidden_states` of shape {tuple(hidden_states.shape)} must have "
                                 f"query_dim={self.query_dim} channels (dim 1).")
            hidden_states = jnp.swapaxes(hidden_states.reshape(batch_size, channel, height * width), 1, 2)
        elif input_ndim != 3 or hidden_states.shape[-1] != self.query_dim:
            raise ValueError(f"Attention: `hidden_states` must be (batch, tokens, query_dim={self.query_dim}) or "
                             f"(batch, query_dim, height, width), got shape {tuple(hidden_states.shape)}.")
        if encoder_hidden_states is not None:
            if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[-1] != self.cross_attention_dim:
                raise ValueError(f"Attention: `encoder_hidden_states` must be (batch, tokens, cross_attention_dim="
                                 f"{self.cross_attention_dim}), got shape {tuple(encoder_hidden_states.shape)}.")
            if encoder_hidden_states.shape[0] != hidden_states.shape[0]:
                raise ValueError(f"Attention: `encoder_hidden_states` has batch {encoder_hidden_states.shape[0]}, "
                                 f"`hidden_states` {hidden_states.shape[0]}.")
        batch_size, sequence_length = (hidden_states if encoder_hidden_states is None
                                       else encoder_hidden_states).shape[:2]
        if batch_size == 0 or hidden_states.shape[1] == 0 or sequence_length == 0:
            # diffusers' `view(batch, -1, heads, head_dim)` cannot infer -1 from 0 elements: it raises
            raise ValueError(f"Attention: empty inputs are not supported (as in diffusers): `hidden_states` of shape "
                             f"{tuple(residual.shape)}, key length {sequence_length}.")
        if attention_mask is not None:
            attention_mask = self._prepare_mask(attention_mask, sequence_length, batch_size)
            rows = attention_mask.size // (batch_size * self.heads * sequence_length) if attention_mask.size else 0
            if rows * batch_size * self.heads * sequence_length != attention_mask.size or rows == 0:
                raise ValueError(f"Attention: the prepared `attention_mask` of shape {tuple(attention_mask.shape)} "
                                 f"cannot be viewed as (batch={batch_size}, heads={self.heads}, -1, "
                                 f"{sequence_length}).")
            attention_mask = attention_mask.reshape(batch_size, self.heads, rows, sequence_length)
        if self.group_norm is not None:
            hidden_states = jnp.swapaxes(self.group_norm(jnp.swapaxes(hidden_states, 1, 2)), 1, 2)
        query = self.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif self.norm_cross is not None:
            encoder_hidden_states = self.norm_encoder_hidden_states(encoder_hidden_states)
        key = self.to_k(encoder_hidden_states)
        value = self.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // self.heads

        def split(x: jax.Array) -> jax.Array:
            return jnp.swapaxes(x.reshape(batch_size, -1, self.heads, head_dim), 1, 2)

        out = F.scaled_dot_product_attention(split(query), split(key), split(value), attn_mask=attention_mask,
                                             scale=None if self.scale_qk else self.scale)
        out = jnp.swapaxes(out, 1, 2).reshape(batch_size, -1, self.heads * head_dim).astype(query.dtype)
        out = self.to_out[1](self.to_out[0](out))
        if input_ndim == 4:
            out = jnp.swapaxes(out, -1, -2).reshape(batch_size, channel, height, width)  # pyright: ignore[reportPossiblyUnboundVariable]
        if self.residual_connection:
            out = out + residual
        return out / jnp.asarray(self.rescale_output_factor, out.dtype)


class Downsample2D(nnx.Module):
    """diffusers' ``Downsample2D``: a stride-2 ``Conv2d`` (``use_conv``) or a 2x2 average pool.

    Args:
      channels, use_conv, out_channels, padding, name, kernel_size, bias: diffusers' keywords and
        defaults. ``padding=0`` with ``use_conv`` pads the input by (0, 1, 0, 1) (right and bottom)
        first, as diffusers does. The layer is stored as diffusers stores it: ``name="conv"`` (the
        default) under both ``Conv2d_0`` and ``conv`` (one layer, two state_dict names, as in torch;
        loading is satisfied by either), any other name under ``conv`` only.
      norm_type: None or ``"ln_norm"`` (a LayerNorm over the channels with ``eps`` and
        ``elementwise_affine``); ``"rms_norm"``: NotImplementedError.
      dtype, rngs: keyword-only; the parameters' dtype and initialisation.

    Shape:
      ``(B, channels, H, W)`` -> ``(B, out_channels, H_out, W_out)``.
    """

    def __init__(self, channels: int, use_conv: bool = False, out_channels: int | None = None, padding: int = 1,
                 name: str = "conv", kernel_size: int = 3, norm_type: str | None = None, eps: float | None = None,
                 elementwise_affine: bool | None = None, bias: bool = True, *, dtype: Any = None,
                 rngs: nnx.Rngs):
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.padding = padding
        self.name = name
        stride = 2
        self.norm = _channel_norm("Downsample2D", norm_type, channels, eps, elementwise_affine, dtype)
        if use_conv:
            conv = jn.Conv2d(self.channels, self.out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                             bias=bias, dtype=dtype, rngs=rngs)
        else:
            if self.channels != self.out_channels:
                raise ValueError(f"Downsample2D: without `use_conv`, `out_channels` (={out_channels}) must equal "
                                 f"`channels` (={channels}).")
            conv = jn.AvgPool2d(kernel_size=stride, stride=stride)
        if name == "conv":
            self.Conv2d_0 = conv
        self.conv = conv

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        _check_channels("Downsample2D", hidden_states, self.channels)
        if self.norm is not None:
            hidden_states = jnp.transpose(self.norm(jnp.transpose(hidden_states, (0, 2, 3, 1))), (0, 3, 1, 2))
        if self.use_conv and self.padding == 0:
            hidden_states = F.pad(hidden_states, (0, 1, 0, 1), mode="constant", value=0)
        return self.conv(hidden_states)


def _channel_norm(cls: str, norm_type: str | None, channels: int, eps: float | None,
                  elementwise_affine: bool | None, dtype: Any) -> nnx.Module | None:
    if norm_type is None:
        return None
    if norm_type == "ln_norm":
        if eps is None or elementwise_affine is None:
            raise ValueError(f"{cls}: `norm_type='ln_norm'` needs `eps` and `elementwise_affine` (torch's "
                             f"nn.LayerNorm rejects None), got eps={eps!r}, elementwise_affine={elementwise_affine!r}.")
        return jn.LayerNorm(channels, eps, elementwise_affine, dtype=dtype)
    if norm_type == "rms_norm":
        raise _unsupported(cls, "norm_type", norm_type, "None or 'ln_norm'")
    raise ValueError(f"{cls}: unknown `norm_type` {norm_type!r}.")


class Upsample2D(nnx.Module):
    """diffusers' ``Upsample2D``: nearest-neighbour upsampling by 2 (or to ``output_size``) followed
    by an optional 3x3 ``Conv2d`` (``use_conv``), or a stride-2 ``ConvTranspose2d``
    (``use_conv_transpose``).

    Args:
      channels, use_conv, use_conv_transpose, out_channels, name, kernel_size, padding, bias,
        interpolate: diffusers' keywords and defaults. The layer is ``conv`` for ``name="conv"`` (the
        default), ``Conv2d_0`` otherwise, as in diffusers.
      norm_type, eps, elementwise_affine: as :class:`Downsample2D`'s.
      dtype, rngs: keyword-only; the parameters' dtype and initialisation.

    Call:
      ``up(hidden_states, output_size=None)``: ``(B, channels, H, W)`` -> ``(B, out_channels, 2H, 2W)``
      (``output_size`` = ``(H_out, W_out)`` instead of doubling).

    Raises:
      ValueError: ``use_conv_transpose`` with a name other than ``"conv"`` (diffusers then fails at
      the call: it looks for ``self.conv``); a wrong channel count.

    Differences from diffusers: diffusers casts bfloat16 to float32 around the interpolation only
    for torch < 2.1; nearest-neighbour sampling copies values, so no cast is needed (the results are
    identical).
    """

    def __init__(self, channels: int, use_conv: bool = False, use_conv_transpose: bool = False,
                 out_channels: int | None = None, name: str = "conv", kernel_size: int | None = None,
                 padding: int = 1, norm_type: str | None = None, eps: float | None = None,
                 elementwise_affine: bool | None = None, bias: bool = True, interpolate: bool = True, *,
                 dtype: Any = None, rngs: nnx.Rngs):
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.use_conv_transpose = use_conv_transpose
        self.name = name
        self.interpolate = interpolate
        self.norm = _channel_norm("Upsample2D", norm_type, channels, eps, elementwise_affine, dtype)
        conv: nnx.Module | None = None
        if use_conv_transpose:
            if name != "conv":
                raise ValueError(f"Upsample2D: `use_conv_transpose=True` needs name='conv' (got {name!r}): diffusers "
                                 "stores the layer as `Conv2d_0` then and its forward fails looking for `conv`.")
            conv = jn.ConvTranspose2d(channels, self.out_channels,
                                      kernel_size=4 if kernel_size is None else kernel_size, stride=2,
                                      padding=padding, bias=bias, dtype=dtype, rngs=rngs)
        elif use_conv:
            conv = jn.Conv2d(self.channels, self.out_channels, kernel_size=3 if kernel_size is None else kernel_size,
                             padding=padding, bias=bias, dtype=dtype, rngs=rngs)
        if name == "conv":
            self.conv = conv
        else:
            self.Conv2d_0 = conv

    def __call__(self, hidden_states: jax.Array, output_size: tuple[int, int] | None = None) -> jax.Array:
        _check_channels("Upsample2D", hidden_states, self.channels)
        if self.norm is not None:
            hidden_states = jnp.transpose(self.norm(jnp.transpose(hidden_states, (0, 2, 3, 1))), (0, 3, 1, 2))
        if self.use_conv_transpose:
            return self.conv(hidden_states)  # pyright: ignore[reportOptionalCall]
        if self.interpolate:
            if output_size is None:
                hidden_states = F.interpolate(hidden_states, scale_factor=2.0, mode="nearest")
            else:
                hidden_states = F.interpolate(hidden_states, size=tuple(output_size), mode="nearest")
        if self.use_conv:
            conv = self.conv if self.name == "conv" else self.Conv2d_0
            hidden_states = conv(hidden_states)  # pyright: ignore[reportOptionalCall]
        return hidden_states


def _sde_vp_up(x: jax.Array) -> jax.Array:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _sde_vp_down(x: jax.Array) -> jax.Array:
    return F.avg_pool2d(x, kernel_size=2, stride=2)


class ResnetBlock2D(nnx.Module):
    r"""diffusers' ``ResnetBlock2D``, as a flax.nnx module.

    .. math::

        h = \mathrm{conv1}(\phi(\mathrm{norm1}(x))),\quad
        h = \mathrm{norm2}(h + \mathrm{time\_emb\_proj}(\phi(t)))\ \text{("default")}
        \ \text{or}\ \mathrm{norm2}(h)(1 + t_s) + t_b\ \text{("scale\_shift")},

        \mathrm{out} = (\mathrm{shortcut}(x) + \mathrm{conv2}(\mathrm{dropout}(\phi(h))))
        / \mathrm{output\_scale\_factor}

    with :math:`\phi` the ``non_linearity`` (diffusers' ``get_activation``: swish/silu, mish, gelu,
    relu; not applied to the embedding with ``skip_time_act``), ``shortcut`` the 1x1
    ``conv_shortcut`` when ``use_in_shortcut`` (default: input and output channel counts differ),
    the identity otherwise. ``up`` / ``down`` resample both branches after ``norm1`` and the
    activation (:class:`Upsample2D` / :class:`Downsample2D` without convolution, or with
    ``kernel="sde_vp"`` nearest x2 / 2x2 average pooling).

    Args:
      in_channels, out_channels, conv_shortcut, dropout, temb_channels, groups, groups_out, pre_norm,
        eps, non_linearity, skip_time_act, time_embedding_norm (``"default"`` or ``"scale_shift"``),
        kernel (None or ``"sde_vp"``; ``"fir"``: NotImplementedError), output_scale_factor,
        use_in_shortcut, up, down, conv_shortcut_bias, conv_2d_out_channels: diffusers' keywords
        (all keyword-only, as in diffusers) and defaults.
      dtype, rngs: keyword-only; the parameters' dtype, initialisation and ``dropout`` stream.

    Call:
      ``block(input_tensor, temb)``: ``input_tensor`` ``(B, in_channels, H, W)``, ``temb``
      ``(B, temb_channels)``, or None for a block built with ``temb_channels=None`` (then nothing is
      added, and ``"scale_shift"`` is an error, as in diffusers).

    Returns:
      ``(B, conv_2d_out_channels, H', W')``.

    Raises:
      ValueError: diffusers' conditions (unknown ``time_embedding_norm`` or activation,
      ``"scale_shift"`` without ``temb``), shapes that do not fit.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jaxnn.models._blocks import ResnetBlock2D
      >>> block = ResnetBlock2D(in_channels=4, out_channels=8, temb_channels=6, groups=2, rngs=nnx.Rngs(0))
      >>> block(jnp.ones((1, 4, 3, 3)), jnp.ones((1, 6))).shape
      (1, 8, 3, 3)
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int | None = None,
        conv_shortcut: bool = False,
        dropout: float = 0.0,
        temb_channels: int | None = 512,
        groups: int = 32,
        groups_out: int | None = None,
        pre_norm: bool = True,
        eps: float = 1e-6,
        non_linearity: str = "swish",
        skip_time_act: bool = False,
        time_embedding_norm: str = "default",
        kernel: Any = None,
        output_scale_factor: float = 1.0,
        use_in_shortcut: bool | None = None,
        up: bool = False,
        down: bool = False,
        conv_shortcut_bias: bool = True,
        conv_2d_out_channels: int | None = None,
        dtype: Any = None,
        rngs: nnx.Rngs,
    ):
        name = "ResnetBlock2D"
        if time_embedding_norm in ("ada_group", "spatial"):
            raise ValueError(f"This class cannot be used with `time_embedding_norm=={time_embedding_norm}`, please use "
                             "`ResnetBlockCondNorm2D` instead (not in jaxnn.models).")
        if time_embedding_norm not in ("default", "scale_shift"):
            raise ValueError(f"ResnetBlock2D: unknown `time_embedding_norm` {time_embedding_norm!r} (expected "
                             "'default' or 'scale_shift').")
        if (up or down) and kernel == "fir":
            raise _unsupported(name, "kernel", kernel, "None or 'sde_vp'")
        self.pre_norm = True
        self.in_channels = in_channels
        out_channels = in_channels if out_channels is None else out_channels
        self.out_channels = out_channels
        self.use_conv_shortcut = conv_shortcut
        self.up = up
        self.down = down
        self.output_scale_factor = output_scale_factor
        self.time_embedding_norm = time_embedding_norm
        self.skip_time_act = skip_time_act
        if groups_out is None:
            groups_out = groups
        self.norm1 = jn.GroupNorm(groups, in_channels, eps=eps, affine=True, dtype=dtype)
        self.conv1 = jn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, dtype=dtype, rngs=rngs)
        if temb_channels is not None:
            factor = 1 if time_embedding_norm == "default" else 2
            self.time_emb_proj = jn.Linear(temb_channels, factor * out_channels, dtype=dtype, rngs=rngs)
        else:
            self.time_emb_proj = None
        self.norm2 = jn.GroupNorm(groups_out, out_channels, eps=eps, affine=True, dtype=dtype)
        self.dropout = jn.Dropout(dropout, rngs=rngs)
        conv_2d_out_channels = conv_2d_out_channels or out_channels
        self.conv2 = jn.Conv2d(out_channels, conv_2d_out_channels, kernel_size=3, stride=1, padding=1, dtype=dtype,
                               rngs=rngs)
        self.nonlinearity = get_activation(non_linearity)
        upsample: Any = None
        downsample: Any = None
        if up:
            upsample = (nnx.static(_sde_vp_up) if kernel == "sde_vp"
                        else Upsample2D(in_channels, use_conv=False, dtype=dtype, rngs=rngs))
        elif down:
            downsample = (nnx.static(_sde_vp_down) if kernel == "sde_vp"
                          else Downsample2D(in_channels, use_conv=False, padding=1, name="op", dtype=dtype, rngs=rngs))
        self.upsample = upsample
        self.downsample = downsample
        self.use_in_shortcut = in_channels != conv_2d_out_channels if use_in_shortcut is None else use_in_shortcut
        self.conv_shortcut = (jn.Conv2d(in_channels, conv_2d_out_channels, kernel_size=1, stride=1, padding=0,
                                        bias=conv_shortcut_bias, dtype=dtype, rngs=rngs)
                              if self.use_in_shortcut else None)

    def __call__(self, input_tensor: jax.Array, temb: jax.Array | None) -> jax.Array:
        _check_channels("ResnetBlock2D", input_tensor, self.in_channels, "input_tensor")
        if self.time_emb_proj is not None and temb is None:
            raise ValueError("ResnetBlock2D: `temb` is None but the block has a `time_emb_proj` (temb_channels="
                             f"{self.time_emb_proj.in_features}): pass the (batch, temb_channels) embedding, or build "
                             "the block with temb_channels=None.")
        hidden_states = self.nonlinearity(self.norm1(input_tensor))
        if self.upsample is not None:
            input_tensor = self.upsample(input_tensor)
            hidden_states = self.upsample(hidden_states)
        elif self.downsample is not None:
            input_tensor = self.downsample(input_tensor)
            hidden_states = self.downsample(hidden_states)
        hidden_states = self.conv1(hidden_states)
        if self.time_emb_proj is not None and temb is not None:
            if temb.ndim != 2 or temb.shape[0] != hidden_states.shape[0]:
                raise ValueError(f"ResnetBlock2D: `temb` must be (batch={hidden_states.shape[0]}, temb_channels), "
                                 f"got shape {tuple(temb.shape)}.")
            t: jax.Array = temb if self.skip_time_act else self.nonlinearity(temb)
            temb = self.time_emb_proj(t)[:, :, None, None]
        if self.time_embedding_norm == "default":
            if temb is not None:
                hidden_states = hidden_states + jnp.broadcast_to(temb, hidden_states.shape)
            hidden_states = self.norm2(hidden_states)
        else:
            if temb is None:
                raise ValueError(" `temb` should not be None when `time_embedding_norm` is scale_shift")
            if temb.ndim != 4 or temb.shape[1] % 2:
                raise ValueError(f"ResnetBlock2D: the scale_shift embedding must split into two halves along dim 1, "
                                 f"got shape {tuple(temb.shape)}.")
            time_scale, time_shift = jnp.split(temb, 2, axis=1)
            hidden_states = self.norm2(hidden_states)
            hidden_states = hidden_states * (1 + time_scale) + time_shift
        hidden_states = self.nonlinearity(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.conv2(hidden_states)
        if self.conv_shortcut is not None:
            input_tensor = self.conv_shortcut(input_tensor)
        return (input_tensor + hidden_states) / jnp.asarray(self.output_scale_factor, hidden_states.dtype)
