"""diffusers' ``UNet2DConditionModel`` (``diffusers/models/unets/unet_2d_condition.py``) as a
flax.nnx module built from jaxnn's layers: Stable Diffusion 1.x / 2.x / XL (base and refiner) UNets
load from the folders diffusers writes, with diffusers' state_dict keys and numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx, struct

from .. import nnx as jn
from ._blocks import get_activation
from ._embeddings import TimestepEmbedding, Timesteps
from ._pretrained import PretrainedModel
from ._unet_blocks import CrossAttnDownBlock2D, CrossAttnUpBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D

__all__ = ["UNet2DConditionModel", "UNet2DConditionOutput"]

# diffusers 0.42's UNet2DConditionModel.__init__ defaults, in its order.
_DEFAULTS: dict[str, Any] = {
    "sample_size": None,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "dropout": 0.0,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 1280,
    "transformer_layers_per_block": 1,
    "reverse_transformer_layers_per_block": None,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "attention_head_dim": 8,
    "num_attention_heads": None,
    "dual_cross_attention": False,
    "use_linear_projection": False,
    "class_embed_type": None,
    "addition_embed_type": None,
    "addition_time_embed_dim": None,
    "num_class_embeds": None,
    "upcast_attention": False,
    "resnet_time_scale_shift": "default",
    "resnet_skip_time_act": False,
    "resnet_out_scale_factor": 1.0,
    "time_embedding_type": "positional",
    "time_embedding_dim": None,
    "time_embedding_act_fn": None,
    "timestep_post_act": None,
    "time_cond_proj_dim": None,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "projection_class_embeddings_input_dim": None,
    "attention_type": "default",
    "class_embeddings_concat": False,
    "mid_block_only_cross_attention": None,
    "cross_attention_norm": None,
    "addition_embed_type_num_heads": 64,
}

_DOWN = {"CrossAttnDownBlock2D", "DownBlock2D"}
_UP = {"CrossAttnUpBlock2D", "UpBlock2D"}
_CLASS_EMBED = (None, "timestep", "identity", "projection", "simple_projection")


@struct.dataclass
class UNet2DConditionOutput:
    """diffusers' ``UNet2DConditionOutput``: ``sample`` ``(batch, out_channels, height, width)``. A
    pytree (a flax struct dataclass), so a jitted call can return it; ``output[0]`` and
    ``output["sample"]`` are ``sample`` as with diffusers' ``BaseOutput``."""

    sample: jax.Array

    def __getitem__(self, index: int | slice | str) -> Any:
        if isinstance(index, str):  # diffusers' BaseOutput: out["sample"]
            if index != "sample":
                raise KeyError(index)
            return self.sample
        return (self.sample,)[index]


def _unsupported(option: str, value: Any, supported: str) -> NotImplementedError:
    return NotImplementedError(f"UNet2DConditionModel: {option}={value!r} is not supported by jaxnn "
                               f"(supported: {supported}).")


def _block_name(name: Any) -> Any:
    # diffusers' get_down_block / get_up_block strip a leading "UNetRes".
    return name[7:] if isinstance(name, str) and name.startswith("UNetRes") else name


def _is_seq(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _int_or_list(config: dict[str, Any], key: str, n: int, *, allow_none: bool = False) -> None:
    v = config[key]
    items = v if _is_seq(v) else [v]
    for item in items:
        if item is None and allow_none:
            continue
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ValueError(f"UNet2DConditionModel: `{key}` must be a positive int or a list of them, got {v!r}.")
    if _is_seq(v) and len(v) != n:
        raise ValueError(f"UNet2DConditionModel: must provide the same number of `{key}` as `down_block_types`: "
                         f"`{key}`={list(v)}, `down_block_types` has {n}.")


class UNet2DConditionModel(PretrainedModel):
    r"""diffusers' ``UNet2DConditionModel``: the conditional UNet of Stable Diffusion, as a
    flax.nnx module with diffusers' attribute tree and state_dict keys (``conv_in``,
    ``time_embedding.linear_1``, ``down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k``,
    ``down_blocks.0.downsamplers.0.conv``, ``mid_block``, ``up_blocks``, ``conv_norm_out``,
    ``conv_out``, ...).

    .. math::
        \epsilon = \mathrm{conv\_out}(\phi(\mathrm{norm}(\mathrm{up}(\mathrm{mid}(\mathrm{down}(
        \mathrm{conv\_in}(x), e, c), e, c), \text{skips}, e, c))))

    with ``e`` the time embedding (plus class / SDXL ``text_time`` embeddings) and ``c`` the
    ``encoder_hidden_states`` the transformers cross-attend to.

    Build it with ``UNet2DConditionModel(config, dtype=None, rngs=...)`` / ``from_config`` (a dict as
    in diffusers' ``config.json``, diffusers' defaults filled in) or load a diffusers folder with
    ``from_pretrained(path, subfolder="unet", variant=None, dtype=None)``; ``save_pretrained``
    writes a folder diffusers loads.

    Supported configuration (everything the released SD 1.x, 2.x, SDXL base and refiner configs use):
    ``down_block_types`` of ``CrossAttnDownBlock2D`` / ``DownBlock2D``, ``up_block_types`` of
    ``CrossAttnUpBlock2D`` / ``UpBlock2D``, ``mid_block_type`` ``"UNetMidBlock2DCrossAttn"`` or None;
    ``attention_head_dim`` (int or per-block list; as in diffusers it is the NUMBER of heads, and
    ``num_attention_heads`` must be None, which diffusers 0.42 enforces with a ValueError);
    ``use_linear_projection``, ``upcast_attention``, ``only_cross_attention`` (bool or list),
    ``transformer_layers_per_block`` (int, per-block list, or per-layer lists with
    ``reverse_transformer_layers_per_block``), ``cross_attention_dim`` (int or list),
    ``layers_per_block`` (int or list), ``addition_embed_type`` None / ``"text_time"``,
    ``class_embed_type`` None / ``"timestep"`` / ``"identity"`` / ``"projection"`` /
    ``"simple_projection"`` (and ``num_class_embeds``: an Embedding), ``class_embeddings_concat``,
    ``encoder_hid_dim`` (``"text_proj"``), ``resnet_time_scale_shift`` ``"default"`` /
    ``"scale_shift"``, ``time_embedding_type="positional"``, ``time_embedding_dim``,
    ``time_embedding_act_fn``, ``timestep_post_act``, ``time_cond_proj_dim``, ``conv_in_kernel``,
    ``conv_out_kernel``, ``center_input_sample``, ``downsample_padding``, ``mid_block_scale_factor``,
    ``dropout``, ``act_fn``, ``norm_num_groups``, ``norm_eps``, ``flip_sin_to_cos``, ``freq_shift``.
    ``resnet_skip_time_act``, ``resnet_out_scale_factor``, ``cross_attention_norm``,
    ``mid_block_only_cross_attention`` and ``addition_embed_type_num_heads`` are accepted with any
    value: diffusers does not use them with these block types either. Any other value (other block
    types, ``time_embedding_type="fourier"``, ``addition_embed_type`` other than ``"text_time"``,
    ``dual_cross_attention=True``, ``attention_type`` other than ``"default"``, ...) raises
    NotImplementedError naming the option at construction; malformed values (list lengths that do
    not match the blocks) raise ValueError as diffusers does.

    Args:
      config: a mapping as diffusers' ``config.json`` (keys starting with ``_`` are ignored; keys that
        are not options of the class are ignored with a ``UserWarning`` naming them, as diffusers'
        ``from_config`` warns and ignores them).
      dtype: keyword-only; the parameters' and computation's dtype (float32 by default;
        ``jnp.bfloat16`` / ``jnp.float16``: GroupNorm/LayerNorm statistics and, with
        ``upcast_attention``, the attention scores in float32, as diffusers).
      rngs: keyword-only; initialises the parameters (and draws dropout masks in training mode).

    Call:
      ``model(sample, timestep, encoder_hidden_states, class_labels=None, timestep_cond=None,
      attention_mask=None, cross_attention_kwargs=None, added_cond_kwargs=None,
      down_block_additional_residuals=None, mid_block_additional_residual=None,
      encoder_attention_mask=None, return_dict=True)``:

      - ``sample``: ``(batch, in_channels, height, width)`` (NCHW as torch); any height/width (sizes
        that are not multiples of ``2 ** num_upsamplers`` forward the skip connections' sizes to
        the upsamplers, as diffusers does). Cast to the model's dtype.
      - ``timestep``: a Python int/float, a 0-d array, or a ``(1,)`` / ``(batch,)`` array, int or
        float; broadcast to the batch.
      - ``encoder_hidden_states``: ``(batch, seq, cross_attention_dim)`` (``encoder_hid_dim`` wide
        with ``encoder_hid_dim``).
      - ``class_labels``: needed with a class embedding: ``(batch,)`` timesteps (``"timestep"``),
        ``(batch,)`` ints (``num_class_embeds``), ``(batch, projection_class_embeddings_input_dim)``
        (``"projection"``), ``(batch, time_embed_dim)`` (``"identity"``).
      - ``timestep_cond``: ``(batch, time_cond_proj_dim)`` with ``time_cond_proj_dim``.
      - ``attention_mask`` / ``encoder_attention_mask``: ``(batch, tokens)`` keep-masks (1/True = keep),
        turned into ``(1 - mask) * -10000`` biases as diffusers; ``attention_mask`` goes to every
        transformer block's ``attn1`` (the self-attention, so ``tokens`` must be that resolution's
        ``height * width``; with ``only_cross_attention`` it attends to ``encoder_hidden_states``, so
        ``tokens`` is their length), ``encoder_attention_mask`` to the ``attn2`` cross-attentions.
        A mask whose length is not the key length raises ValueError.
      - ``cross_attention_kwargs``: None or ``{"scale": s}``; diffusers applies ``scale`` only to PEFT
        LoRA layers, which jaxnn does not have, so it has no effect here either. Other keys (attention
        processor arguments) raise NotImplementedError.
      - ``added_cond_kwargs``: with ``addition_embed_type="text_time"`` (SDXL):
        ``{"text_embeds": (batch, D), "time_ids": (batch, k)}`` (or both with a batch of 1, broadcast
        over the batch as diffusers does).
      - ``down_block_additional_residuals`` (one per skip connection, shapes as those) and
        ``mid_block_additional_residual``: ControlNet residuals, both or neither.

    Returns:
      :class:`UNet2DConditionOutput` (``sample``: ``(batch, out_channels, height, width)``), or
      ``(sample,)`` with ``return_dict=False``.

    Raises:
      ValueError: wrong sample rank/channels, timestep shape, ``encoder_hidden_states`` rank, batch
        or width, missing ``class_labels`` / ``added_cond_kwargs`` entries, residual counts or shapes.
      TypeError: a ``timestep`` that is None or a string.
      NotImplementedError: unsupported configuration values (at construction); ControlNet-style
        ``down_block_additional_residuals`` without ``mid_block_additional_residual`` (diffusers'
        deprecated T2I-adapter path); ``cross_attention_kwargs`` keys other than ``scale``.

    Differences from diffusers: no attention processors, LoRA/PEFT adapters, FreeU, gradient
    checkpointing flags, GLIGEN or T2I-adapter (``down_intrablock_additional_residuals``) inputs;
    ``mid_block_additional_residual`` without ``down_block_additional_residuals`` is an error
    (diffusers silently ignores it). Inputs are cast to the model's dtype (torch would raise on a
    dtype mismatch).

    Examples:
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> from jaxnn.models import UNet2DConditionModel
      >>> config = dict(block_out_channels=(32, 64), norm_num_groups=8, layers_per_block=1,
      ...               down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
      ...               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16)
      >>> unet = nnx.eval_shape(lambda: UNet2DConditionModel(config, rngs=nnx.Rngs(0)))  # shapes only
      >>> jn.state_dict(unet)["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"].shape
      (32, 16)

      A Stable Diffusion pipeline folder: ``UNet2DConditionModel.from_pretrained(folder,
      subfolder="unet")``; then ``unet(latents, t, text_embeddings).sample`` (jit it with
      ``nnx.jit``).
    """

    weights_name: ClassVar[str] = "diffusion_pytorch_model.safetensors"
    library: ClassVar[str] = "diffusers"
    config_keys: ClassVar[frozenset[str]] = frozenset(_DEFAULTS)

    @classmethod
    def _check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        c = dict(_DEFAULTS)
        c.update({k: v for k, v in config.items() if k in _DEFAULTS})
        down, up = c["down_block_types"], c["up_block_types"]
        if not _is_seq(down) or not _is_seq(up) or not down:
            raise ValueError(f"UNet2DConditionModel: `down_block_types` and `up_block_types` must be non-empty lists, "
                             f"got {down!r} and {up!r}.")
        for name in down:
            if _block_name(name) not in _DOWN:
                raise _unsupported("down_block_types", name, ", ".join(map(repr, sorted(_DOWN))))
        for name in up:
            if _block_name(name) not in _UP:
                raise _unsupported("up_block_types", name, ", ".join(map(repr, sorted(_UP))))
        if c["mid_block_type"] not in ("UNetMidBlock2DCrossAttn", None):
            raise _unsupported("mid_block_type", c["mid_block_type"], "'UNetMidBlock2DCrossAttn', None")
        n = len(down)
        # diffusers' own checks (ValueError), in its order.
        if len(down) != len(up):
            raise ValueError(f"UNet2DConditionModel: must provide the same number of `down_block_types` as "
                             f"`up_block_types`: {list(down)} vs {list(up)}.")
        boc = c["block_out_channels"]
        if not _is_seq(boc) or len(boc) != n:
            raise ValueError(f"UNet2DConditionModel: must provide the same number of `block_out_channels` as "
                             f"`down_block_types`: {boc!r} vs {list(down)}.")
        _int_or_list(c, "block_out_channels", n)
        oca = c["only_cross_attention"]
        if not isinstance(oca, bool) and not (_is_seq(oca) and len(oca) == n and all(isinstance(v, bool) for v in oca)):
            raise ValueError(f"UNet2DConditionModel: `only_cross_attention` must be a bool or one bool per down block, "
                             f"got {oca!r}.")
        if c["num_attention_heads"] is not None:
            raise ValueError("UNet2DConditionModel: `num_attention_heads` must be None: diffusers 0.42 rejects it "
                             "(the number of heads is given by `attention_head_dim`, see "
                             "https://github.com/huggingface/diffusers/issues/2011).")
        _int_or_list(c, "attention_head_dim", n)
        _int_or_list(c, "cross_attention_dim", n, allow_none=True)
        _int_or_list(c, "layers_per_block", n)
        tl, rtl = c["transformer_layers_per_block"], c["reverse_transformer_layers_per_block"]
        if _is_seq(tl):
            if len(tl) != n:
                raise ValueError("UNet2DConditionModel: must provide the same number of "
                                 f"`transformer_layers_per_block` as `down_block_types`: {tl!r} vs {list(down)}.")
            if rtl is None and any(_is_seq(v) for v in tl):
                raise ValueError("UNet2DConditionModel: must provide `reverse_transformer_layers_per_block` if using "
                                 "asymmetrical UNet (per-layer lists in `transformer_layers_per_block`).")
        if rtl is not None and (not _is_seq(rtl) or len(rtl) != n):
            raise ValueError(f"UNet2DConditionModel: `reverse_transformer_layers_per_block` must have one entry per up "
                             f"block, got {rtl!r}.")
        # jaxnn's supported set.
        if c["time_embedding_type"] != "positional":
            raise _unsupported("time_embedding_type", c["time_embedding_type"], "'positional'")
        if c["addition_embed_type"] not in (None, "text_time"):
            raise _unsupported("addition_embed_type", c["addition_embed_type"], "None, 'text_time'")
        if c["class_embed_type"] not in _CLASS_EMBED:
            raise _unsupported("class_embed_type", c["class_embed_type"], ", ".join(map(repr, _CLASS_EMBED)))
        if c["encoder_hid_dim_type"] is None and c["encoder_hid_dim"] is not None:
            c["encoder_hid_dim_type"] = "text_proj"  # diffusers registers this default in the config
        if c["encoder_hid_dim_type"] not in (None, "text_proj"):
            raise _unsupported("encoder_hid_dim_type", c["encoder_hid_dim_type"], "None, 'text_proj'")
        if c["encoder_hid_dim_type"] is not None and c["encoder_hid_dim"] is None:
            raise ValueError(f"UNet2DConditionModel: `encoder_hid_dim` has to be defined when `encoder_hid_dim_type` "
                             f"is set to {c['encoder_hid_dim_type']!r}.")
        if c["encoder_hid_dim_type"] == "text_proj" and _is_seq(c["cross_attention_dim"]):
            raise ValueError("UNet2DConditionModel: `encoder_hid_dim` projects to one `cross_attention_dim`, so that "
                             f"must be an int, got {c['cross_attention_dim']!r}.")
        if c["attention_type"] != "default":
            raise _unsupported("attention_type", c["attention_type"], "'default'")
        if c["dual_cross_attention"]:
            raise _unsupported("dual_cross_attention", c["dual_cross_attention"], "False")
        if c["norm_num_groups"] is None:
            raise _unsupported("norm_num_groups", None, "an int (diffusers' resnets need one too)")
        if c["resnet_time_scale_shift"] not in ("default", "scale_shift"):
            raise _unsupported("resnet_time_scale_shift", c["resnet_time_scale_shift"], "'default', 'scale_shift'")
        for key in ("act_fn", "time_embedding_act_fn", "timestep_post_act"):
            if c[key] is not None or key == "act_fn":
                get_activation(c[key])  # ValueError for an unknown name, as diffusers
        if c["class_embed_type"] in ("projection", "simple_projection") and \
                c["projection_class_embeddings_input_dim"] is None:
            raise ValueError(f"UNet2DConditionModel: `class_embed_type`: {c['class_embed_type']!r} requires "
                             "`projection_class_embeddings_input_dim` be set.")
        if c["addition_embed_type"] == "text_time" and (c["addition_time_embed_dim"] is None
                                                        or c["projection_class_embeddings_input_dim"] is None):
            raise ValueError("UNet2DConditionModel: `addition_embed_type`: 'text_time' requires "
                             "`addition_time_embed_dim` and `projection_class_embeddings_input_dim`.")
        cad = c["cross_attention_dim"]
        for i, name in enumerate(down):
            dim = cad[i] if _is_seq(cad) else cad
            if _block_name(name).startswith("CrossAttn") and dim is None:
                raise ValueError(f"UNet2DConditionModel: cross_attention_dim must be specified for {name}.")
        return c

    def __init__(self, config: Mapping[str, Any], *, dtype: Any = None, rngs: nnx.Rngs):
        c = self._init_config(config, dtype)
        self.dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        down_types = [_block_name(t) for t in c.down_block_types]
        up_types = [_block_name(t) for t in c.up_block_types]
        n = len(down_types)
        boc = list(c.block_out_channels)
        # input
        self.conv_in = jn.Conv2d(c.in_channels, boc[0], kernel_size=c.conv_in_kernel,
                                 padding=(c.conv_in_kernel - 1) // 2, dtype=dtype, rngs=rngs)
        # time
        time_embed_dim = c.time_embedding_dim or boc[0] * 4
        timestep_input_dim = boc[0]
        self.time_proj = Timesteps(boc[0], c.flip_sin_to_cos, c.freq_shift)
        self.time_embedding = TimestepEmbedding(timestep_input_dim, time_embed_dim, act_fn=c.act_fn,
                                                post_act_fn=c.timestep_post_act, cond_proj_dim=c.time_cond_proj_dim,
                                                dtype=dtype, rngs=rngs)
        cad = c.cross_attention_dim
        self.encoder_hid_proj = (jn.Linear(c.encoder_hid_dim, cad, dtype=dtype, rngs=rngs)
                                 if c.encoder_hid_dim_type == "text_proj" else None)
        # class embedding
        cet = c.class_embed_type
        if cet is None and c.num_class_embeds is not None:
            self.class_embedding: Any = jn.Embedding(c.num_class_embeds, time_embed_dim, dtype=dtype, rngs=rngs)
        elif cet == "timestep":
            self.class_embedding = TimestepEmbedding(timestep_input_dim, time_embed_dim, act_fn=c.act_fn, dtype=dtype,
                                                     rngs=rngs)
        elif cet == "identity":
            self.class_embedding = jn.Identity()
        elif cet == "projection":
            self.class_embedding = TimestepEmbedding(c.projection_class_embeddings_input_dim, time_embed_dim,
                                                     dtype=dtype, rngs=rngs)
        elif cet == "simple_projection":
            self.class_embedding = jn.Linear(c.projection_class_embeddings_input_dim, time_embed_dim, dtype=dtype,
                                             rngs=rngs)
        else:
            self.class_embedding = None
        if c.addition_embed_type == "text_time":
            self.add_time_proj = Timesteps(c.addition_time_embed_dim, c.flip_sin_to_cos, c.freq_shift)
            self.add_embedding = TimestepEmbedding(c.projection_class_embeddings_input_dim, time_embed_dim,
                                                   dtype=dtype, rngs=rngs)
        self.time_embed_act = get_activation(c.time_embedding_act_fn) if c.time_embedding_act_fn else None

        oca = c.only_cross_attention
        only_cross = [oca] * n if isinstance(oca, bool) else list(oca)
        heads = list(c.attention_head_dim) if _is_seq(c.attention_head_dim) else [c.attention_head_dim] * n
        cross_dims = list(cad) if _is_seq(cad) else [cad] * n
        layers = list(c.layers_per_block) if _is_seq(c.layers_per_block) else [c.layers_per_block] * n
        tl = c.transformer_layers_per_block
        t_layers = list(tl) if _is_seq(tl) else [tl] * n
        blocks_temb = time_embed_dim * 2 if c.class_embeddings_concat else time_embed_dim
        common = dict(temb_channels=blocks_temb, resnet_eps=c.norm_eps, resnet_act_fn=c.act_fn,
                      resnet_groups=c.norm_num_groups, dropout=c.dropout,
                      resnet_time_scale_shift=c.resnet_time_scale_shift, dtype=dtype, rngs=rngs)
        attn = dict(use_linear_projection=c.use_linear_projection, upcast_attention=c.upcast_attention)
        # down
        down_blocks = []
        out_ch = boc[0]
        for i, kind in enumerate(down_types):
            in_ch, out_ch = out_ch, boc[i]
            kw = dict(common, num_layers=layers[i], in_channels=in_ch, out_channels=out_ch,
                      add_downsample=i != n - 1, downsample_padding=c.downsample_padding)
            if kind == "CrossAttnDownBlock2D":
                down_blocks.append(CrossAttnDownBlock2D(**kw, **attn, transformer_layers_per_block=t_layers[i],
                                                        num_attention_heads=heads[i],
                                                        cross_attention_dim=cross_dims[i],
                                                        only_cross_attention=only_cross[i]))
            else:
                down_blocks.append(DownBlock2D(**kw))
        self.down_blocks = jn.ModuleList(down_blocks)
        # mid
        if c.mid_block_type == "UNetMidBlock2DCrossAttn":
            self.mid_block: Any = UNetMidBlock2DCrossAttn(
                **common, **attn, in_channels=boc[-1], output_scale_factor=c.mid_block_scale_factor,
                transformer_layers_per_block=t_layers[-1], num_attention_heads=heads[-1],
                cross_attention_dim=cross_dims[-1])
        else:
            self.mid_block = None
        # up
        self.num_upsamplers = 0
        rboc, rheads, rlayers = boc[::-1], heads[::-1], layers[::-1]
        rcross, ronly = cross_dims[::-1], only_cross[::-1]
        rtl = c.reverse_transformer_layers_per_block
        rt_layers = list(rtl) if rtl is not None else t_layers[::-1]
        up_blocks = []
        out_ch = rboc[0]
        for i, kind in enumerate(up_types):
            is_final = i == n - 1
            prev_out, out_ch = out_ch, rboc[i]
            in_ch = rboc[min(i + 1, n - 1)]
            if not is_final:
                self.num_upsamplers += 1
            kw = dict(common, num_layers=rlayers[i] + 1, in_channels=in_ch, out_channels=out_ch,
                      prev_output_channel=prev_out, add_upsample=not is_final, resolution_idx=i)
            if kind == "CrossAttnUpBlock2D":
                up_blocks.append(CrossAttnUpBlock2D(**kw, **attn, transformer_layers_per_block=rt_layers[i],
                                                    num_attention_heads=rheads[i], cross_attention_dim=rcross[i],
                                                    only_cross_attention=ronly[i]))
            else:
                up_blocks.append(UpBlock2D(**kw))
        self.up_blocks = jn.ModuleList(up_blocks)
        # out
        self.conv_norm_out = jn.GroupNorm(c.norm_num_groups, boc[0], eps=c.norm_eps, dtype=dtype)
        self.conv_act = get_activation(c.act_fn)
        self.conv_out = jn.Conv2d(boc[0], c.out_channels, kernel_size=c.conv_out_kernel,
                                  padding=(c.conv_out_kernel - 1) // 2, dtype=dtype, rngs=rngs)
        # encoder_hidden_states widths the cross-attention blocks expect (for input checks)
        widths = {cross_dims[i] for i, k in enumerate(down_types) if k == "CrossAttnDownBlock2D"}
        widths |= {rcross[i] for i, k in enumerate(up_types) if k == "CrossAttnUpBlock2D"}
        if self.mid_block is not None:
            widths.add(cross_dims[-1])
        self._cross_widths = tuple(sorted(widths))

    # --- forward pieces, as diffusers' methods ------------------------------------------------------

    def _time_embed(self, sample: jax.Array, timestep: Any) -> jax.Array:
        batch = sample.shape[0]
        if timestep is None or isinstance(timestep, (str, bytes)):
            raise TypeError(f"UNet2DConditionModel: `timestep` must be a number or an array, got {timestep!r}.")
        t = jnp.asarray([timestep]) if isinstance(timestep, (int, float)) else jnp.asarray(timestep)
        if t.ndim == 0:
            t = t[None]
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise ValueError("UNet2DConditionModel: `timestep` must be a number, a 0-d array or a 1-D array of "
                             f"length 1 or batch (={batch}), got shape {tuple(t.shape)}.")
        t = jnp.broadcast_to(t, (batch,))
        return self.time_proj(t).astype(sample.dtype)

    def _class_embed(self, sample: jax.Array, class_labels: jax.Array | None) -> jax.Array | None:
        if self.class_embedding is None:
            return None
        if class_labels is None:
            raise ValueError("UNet2DConditionModel: `class_labels` should be provided when the model has a class "
                             f"embedding (class_embed_type={self.config.class_embed_type!r}, "
                             f"num_class_embeds={self.config.num_class_embeds!r}).")
        class_labels = jnp.asarray(class_labels)
        if self.config.class_embed_type == "timestep":
            class_labels = self.time_proj(class_labels).astype(sample.dtype)
        elif self.config.class_embed_type is not None:
            class_labels = class_labels.astype(sample.dtype)
        return self.class_embedding(class_labels).astype(sample.dtype)

    def _aug_embed(self, emb: jax.Array, added_cond_kwargs: Mapping[str, Any] | None) -> jax.Array | None:
        if self.config.addition_embed_type != "text_time":
            return None
        added = added_cond_kwargs or {}
        for key in ("text_embeds", "time_ids"):
            if key not in added:
                raise ValueError(f"UNet2DConditionModel has the config param `addition_embed_type` set to 'text_time' "
                                 f"which requires the keyword argument `{key}` to be passed in `added_cond_kwargs`.")
        text_embeds = jnp.asarray(added["text_embeds"])
        time_ids = jnp.asarray(added["time_ids"])
        time_embeds = self.add_time_proj(time_ids.reshape(-1))
        if text_embeds.ndim != 2 or text_embeds.shape[0] not in (1, emb.shape[0]):
            # a batch of 1 broadcasts over the batch (diffusers adds the embeddings with broadcasting)
            raise ValueError(f"UNet2DConditionModel: `added_cond_kwargs['text_embeds']` must be (batch={emb.shape[0]}, "
                             f"D) or (1, D), got shape {tuple(text_embeds.shape)}.")
        time_embeds = time_embeds.reshape(text_embeds.shape[0], -1)
        expected = self.config.projection_class_embeddings_input_dim
        if text_embeds.shape[1] + time_embeds.shape[1] != expected:
            raise ValueError(f"UNet2DConditionModel: `text_embeds` {tuple(text_embeds.shape)} and the time_ids' "
                             f"embedding {tuple(time_embeds.shape)} must concatenate to (batch, "
                             f"projection_class_embeddings_input_dim={expected}).")
        dtype = jnp.promote_types(text_embeds.dtype, time_embeds.dtype)
        add_embeds = jnp.concatenate([text_embeds.astype(dtype), time_embeds.astype(dtype)], axis=-1)
        return self.add_embedding(add_embeds.astype(emb.dtype))

    def _check_inputs(self, sample: jax.Array, encoder_hidden_states: jax.Array) -> None:
        c = self.config
        if sample.ndim != 4 or sample.shape[1] != c.in_channels:
            raise ValueError(f"UNet2DConditionModel: `sample` must be (batch, in_channels={c.in_channels}, height, "
                             f"width), got shape {tuple(sample.shape)}.")
        if not self._cross_widths:
            return
        width = c.encoder_hid_dim if c.encoder_hid_dim_type == "text_proj" else None
        widths = (width,) if width is not None else self._cross_widths
        if encoder_hidden_states is None or jnp.ndim(encoder_hidden_states) != 3:
            got = None if encoder_hidden_states is None else jnp.shape(encoder_hidden_states)
            raise ValueError("UNet2DConditionModel: `encoder_hidden_states` must be (batch, sequence, "
                             f"{widths[0]}), got shape {got}.")
        shape = jnp.shape(encoder_hidden_states)
        if shape[0] != sample.shape[0]:
            raise ValueError(f"UNet2DConditionModel: `encoder_hidden_states` has batch {shape[0]}, `sample` has batch "
                             f"{sample.shape[0]}.")
        if len(widths) != 1 or shape[2] != widths[0]:
            want = widths[0] if len(widths) == 1 else widths
            raise ValueError(f"UNet2DConditionModel: `encoder_hidden_states` must be {want} wide (the "
                             f"cross-attention dimension), got shape {tuple(shape)}.")

    def __call__(self, sample: jax.Array, timestep: jax.Array | float | int, encoder_hidden_states: jax.Array,
                 class_labels: jax.Array | None = None, timestep_cond: jax.Array | None = None,
                 attention_mask: jax.Array | None = None, cross_attention_kwargs: Mapping[str, Any] | None = None,
                 added_cond_kwargs: Mapping[str, Any] | None = None,
                 down_block_additional_residuals: Sequence[jax.Array] | None = None,
                 mid_block_additional_residual: jax.Array | None = None,
                 encoder_attention_mask: jax.Array | None = None,
                 return_dict: bool = True) -> UNet2DConditionOutput | tuple[jax.Array]:
        c = self.config
        sample = jnp.asarray(sample)
        self._check_inputs(sample, encoder_hidden_states)
        if cross_attention_kwargs is not None:
            if not isinstance(cross_attention_kwargs, Mapping):
                raise TypeError("UNet2DConditionModel: `cross_attention_kwargs` must be None or a dict, got "
                                f"{type(cross_attention_kwargs).__name__}.")
            extra = sorted(set(cross_attention_kwargs) - {"scale"})
            if extra:
                raise NotImplementedError(f"UNet2DConditionModel: cross_attention_kwargs keys {extra} are not "
                                          "supported by jaxnn (no attention processors; only `scale`, which like "
                                          "diffusers without PEFT LoRA layers has no effect).")
        is_controlnet = down_block_additional_residuals is not None and mid_block_additional_residual is not None
        if down_block_additional_residuals is not None and mid_block_additional_residual is None:
            raise NotImplementedError("UNet2DConditionModel: `down_block_additional_residuals` without "
                                      "`mid_block_additional_residual` is diffusers' deprecated T2I-adapter path, "
                                      "which jaxnn does not implement: pass both (ControlNet).")
        if mid_block_additional_residual is not None and down_block_additional_residuals is None:
            raise ValueError("UNet2DConditionModel: `mid_block_additional_residual` needs "
                             "`down_block_additional_residuals` too (ControlNet passes both; diffusers would "
                             "ignore it).")
        dtype = self.dtype
        sample = sample.astype(dtype)
        if encoder_hidden_states is not None:
            encoder_hidden_states = jnp.asarray(encoder_hidden_states).astype(dtype)

        default_overall_up_factor = 2 ** self.num_upsamplers
        forward_upsample_size = any(d % default_overall_up_factor != 0 for d in sample.shape[-2:])
        upsample_size = None
        if attention_mask is not None:
            attention_mask = ((1 - jnp.asarray(attention_mask).astype(dtype)) * jnp.asarray(-10000.0, dtype))[:, None]
        if encoder_attention_mask is not None:
            encoder_attention_mask = ((1 - jnp.asarray(encoder_attention_mask).astype(dtype))
                                      * jnp.asarray(-10000.0, dtype))[:, None]
        if c.center_input_sample:
            sample = 2 * sample - 1.0

        t_emb = self._time_embed(sample, timestep)
        emb = self.time_embedding(t_emb, None if timestep_cond is None else jnp.asarray(timestep_cond).astype(dtype))
        class_emb = self._class_embed(sample, class_labels)
        if class_emb is not None:
            emb = jnp.concatenate([emb, class_emb], axis=-1) if c.class_embeddings_concat else emb + class_emb
        aug_emb = self._aug_embed(emb, added_cond_kwargs)
        if aug_emb is not None:
            emb = emb + aug_emb
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        if self.encoder_hid_proj is not None:
            encoder_hidden_states = self.encoder_hid_proj(encoder_hidden_states)

        sample = self.conv_in(sample)
        masks = dict(attention_mask=attention_mask, encoder_attention_mask=encoder_attention_mask)
        down_block_res_samples: tuple[jax.Array, ...] = (sample,)
        for block in self.down_blocks:
            if block.has_cross_attention:
                sample, res = block(sample, emb, encoder_hidden_states=encoder_hidden_states, **masks)
            else:
                sample, res = block(sample, emb)
            down_block_res_samples += res

        if is_controlnet:
            residuals = tuple(down_block_additional_residuals or ())
            if len(residuals) != len(down_block_res_samples):
                raise ValueError("UNet2DConditionModel: `down_block_additional_residuals` must hold one tensor per "
                                 f"skip connection ({len(down_block_res_samples)}), got {len(residuals)}.")
            new = []
            for i, (r, extra_r) in enumerate(zip(down_block_res_samples, residuals, strict=True)):
                if jnp.shape(extra_r) != r.shape:
                    raise ValueError(f"UNet2DConditionModel: `down_block_additional_residuals[{i}]` has shape "
                                     f"{jnp.shape(extra_r)}, the skip connection has {r.shape}.")
                new.append(r + jnp.asarray(extra_r).astype(dtype))
            down_block_res_samples = tuple(new)

        if self.mid_block is not None:
            sample = self.mid_block(sample, emb, encoder_hidden_states=encoder_hidden_states, **masks)
        if is_controlnet and mid_block_additional_residual is not None:
            mid_res = jnp.asarray(mid_block_additional_residual)
            if mid_res.shape != sample.shape:
                raise ValueError(f"UNet2DConditionModel: `mid_block_additional_residual` has shape {mid_res.shape}, "
                                 f"the mid block's output has {sample.shape}.")
            sample = sample + mid_res.astype(dtype)

        for i, block in enumerate(self.up_blocks):
            is_final_block = i == len(self.up_blocks) - 1
            k = len(block.resnets)
            res_samples = down_block_res_samples[-k:]
            down_block_res_samples = down_block_res_samples[:-k]
            if not is_final_block and forward_upsample_size:
                upsample_size = tuple(down_block_res_samples[-1].shape[2:])
            if block.has_cross_attention:
                sample = block(sample, res_samples, emb, encoder_hidden_states=encoder_hidden_states,
                               upsample_size=upsample_size, **masks)
            else:
                sample = block(sample, res_samples, emb, upsample_size=upsample_size)

        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        sample = self.conv_out(sample)
        if not return_dict:
            return (sample,)
        return UNet2DConditionOutput(sample=sample)
