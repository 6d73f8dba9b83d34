"""CLIP's text encoder (transformers' ``CLIPTextModel`` and ``CLIPTextModelWithProjection``) as
flax.nnx modules built from jaxnn's layers, with transformers 5.24's attribute tree, so that
``jaxnn.nnx.state_dict(model)`` has the torch model's keys.

Source: ``transformers/models/clip/modeling_clip.py`` (5.24.0): ``CLIPTextEmbeddings``,
``CLIPAttention`` (the default ``sdpa`` attention), ``CLIPMLP``, ``CLIPEncoderLayer``,
``CLIPEncoder``, ``CLIPTextModel``, ``CLIPTextModelWithProjection``; the causal and padding masks
of ``masking_utils.create_causal_mask``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from .. import functional as F
from .. import nnx as jn
from .._checkpoint import CheckpointError
from ._pretrained import TRANSFORMERS_VERSION, PretrainedModel, _user_stacklevel

__all__ = [
    "BaseModelOutputWithPooling",
    "CLIPTextModel",
    "CLIPTextModelOutput",
    "CLIPTextModelWithProjection",
]

_ACTIVATIONS = ("quick_gelu", "gelu", "gelu_new")

#: CLIPTextConfig's fields and transformers 5.24's defaults.
_DEFAULTS: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "projection_dim": 512,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "attention_dropout": 0.0,
    "initializer_range": 0.02,
    "initializer_factor": 1.0,
    "pad_token_id": 1,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
}

#: Keys of transformers' ``PretrainedConfig`` (5.24 and the 4.x releases whose folders SD ships) and
#: its generation defaults, which a text-encoder ``config.json`` may hold and CLIP's code never reads
#: (plus 4.x's unused ``dropout``): accepted without a warning and dropped.
_TRANSFORMERS_KEYS = frozenset({
    "model_type", "transformers_version", "architectures", "dtype", "torch_dtype", "name_or_path",
    "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "add_cross_attention",
    "cross_attention_hidden_size", "tie_encoder_decoder", "tie_word_embeddings", "id2label", "label2id",
    "num_labels", "problem_type", "finetuning_task", "tokenizer_class", "prefix", "sep_token_id",
    "decoder_start_token_id", "task_specific_params", "torchscript", "use_bfloat16", "tf_legacy_loss",
    "pruned_heads", "gradient_checkpointing", "attn_implementation", "experts_implementation", "dropout",
    # generation defaults (transformers pops them from the config)
    "assistant_confidence_threshold", "assistant_lookbehind", "bad_words_ids", "begin_suppress_tokens",
    "diversity_penalty", "do_sample", "early_stopping", "encoder_no_repeat_ngram_size",
    "encoder_repetition_penalty", "epsilon_cutoff", "eta_cutoff", "exponential_decay_length_penalty",
    "forced_bos_token_id", "forced_eos_token_id", "length_penalty", "max_length", "min_length",
    "no_repeat_ngram_size", "num_assistant_tokens", "num_assistant_tokens_schedule", "num_beam_groups",
    "num_beams", "num_return_sequences", "output_scores", "remove_invalid_values", "repetition_penalty",
    "return_dict_in_generate", "suppress_tokens", "target_lookbehind", "temperature", "top_k", "top_p",
    "typical_p", "use_cache",
})

#: Every key the CLIP text models know: CLIPTextConfig's fields, the call defaults read from the
#: config, the keys checked for a wrong kind of config, and transformers' generic keys above.
_CONFIG_KEYS = frozenset(_DEFAULTS) | _TRANSFORMERS_KEYS | {
    "output_hidden_states", "return_dict", "output_attentions", "is_causal", "text_config", "vision_config"}


def _output_item(output: Any, key: int | slice | str) -> Any:
    """transformers' ``ModelOutput.__getitem__``: an int or slice indexes ``to_tuple()`` (the fields
    that are not None, so ``out[0]`` is the first field), a string names a field that is not None
    (KeyError otherwise)."""
    if isinstance(key, str):
        value = getattr(output, key, None) if key in type(output).__dataclass_fields__ else None
        if value is None:
            raise KeyError(key)
        return value
    return output.to_tuple()[key]


@struct.dataclass
class BaseModelOutputWithPooling:
    """transformers' ``BaseModelOutputWithPooling`` as a pytree (``attentions`` is not computed).

    Attributes:
      last_hidden_state: ``(batch, seq, hidden_size)``, after ``final_layer_norm``.
      pooler_output: ``(batch, hidden_size)``: ``last_hidden_state`` at each sequence's EOS token.
      hidden_states: None, or (with ``output_hidden_states``) a tuple of ``num_hidden_layers + 1``
        arrays ``(batch, seq, hidden_size)``: the embeddings, then each encoder layer's output (the
        last one before ``final_layer_norm``), as transformers returns them.
    """

    last_hidden_state: jax.Array
    pooler_output: jax.Array
    hidden_states: tuple[jax.Array, ...] | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not None, in order (transformers' ``ModelOutput.to_tuple``)."""
        return tuple(v for v in (self.last_hidden_state, self.pooler_output, self.hidden_states) if v is not None)

    def __getitem__(self, key: int | slice | str) -> Any:
        """``out[0]`` / ``out["field"]`` as transformers' ``ModelOutput`` (see :meth:`to_tuple`)."""
        return _output_item(self, key)


@struct.dataclass
class CLIPTextModelOutput:
    """transformers' ``CLIPTextModelOutput`` as a pytree (``attentions`` is not computed).

    Attributes:
      text_embeds: ``(batch, projection_dim)``: ``text_projection(pooler_output)``.
      last_hidden_state: ``(batch, seq, hidden_size)``.
      hidden_states: None, or the tuple described in :class:`BaseModelOutputWithPooling`.
    """

    text_embeds: jax.Array
    last_hidden_state: jax.Array
    hidden_states: tuple[jax.Array, ...] | None = None

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not None, in order (transformers' ``ModelOutput.to_tuple``)."""
        return tuple(v for v in (self.text_embeds, self.last_hidden_state, self.hidden_states) if v is not None)

    def __getitem__(self, key: int | slice | str) -> Any:
        """``out[0]`` / ``out["field"]`` as transformers' ``ModelOutput`` (see :meth:`to_tuple`)."""
        return _output_item(self, key)


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_text_config(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """CLIPTextConfig's fields with transformers' defaults filled in, validated."""
    if "text_config" in config or "vision_config" in config or config.get("model_type") == "clip":
        raise ValueError(
            f"{name}: this config.json is a full CLIPConfig (with `text_config`/`vision_config`), not a "
            "CLIPTextConfig; jaxnn.models reads text-encoder folders (model_type 'clip_text_model', e.g. "
            "Stable Diffusion's text_encoder/). Pass the nested `text_config` dict to from_config and load "
            "the `text_model.*` weights with jaxnn.nnx.load_state_dict instead.")
    model_type = config.get("model_type", "clip_text_model")
    if model_type != "clip_text_model":
        raise ValueError(f"{name}: `model_type` (={model_type!r}) must be 'clip_text_model'.")
    out = dict(_DEFAULTS)
    for key, value in config.items():
        if key in _DEFAULTS:
            out[key] = value
        elif key in ("output_hidden_states", "return_dict"):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: `{key}` (={value!r}) must be a bool.")
            out[key] = value
        elif key == "output_attentions":
            if value:
                raise NotImplementedError(f"{name}: output_attentions={value!r} is not supported (jaxnn's "
                                          "attention does not return its weights).")
        elif key == "is_causal":
            if value is not True:
                raise NotImplementedError(f"{name}: is_causal={value!r} is not supported (CLIP's text encoder "
                                          "is causal).")
        # transformers' generic keys (architectures, model_type, transformers_version, torch_dtype, 4.x's
        # unused `dropout`, generation defaults, ...): attributes CLIP's code never reads; dropped. Keys
        # outside _CONFIG_KEYS never get here (PretrainedModel warns about them and drops them).
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads", "max_position_embeddings"):
        if not _is_int(out[key]) or out[key] < 1:
            raise ValueError(f"{name}: `{key}` (={out[key]!r}) must be a positive int.")
    if not _is_int(out["num_hidden_layers"]) or out["num_hidden_layers"] < 0:
        raise ValueError(f"{name}: `num_hidden_layers` (={out['num_hidden_layers']!r}) must be an int >= 0.")
    if out["projection_dim"] is not None and (not _is_int(out["projection_dim"]) or out["projection_dim"] < 1):
        raise ValueError(f"{name}: `projection_dim` (={out['projection_dim']!r}) must be a positive int.")
    if out["hidden_size"] % out["num_attention_heads"]:
        raise ValueError(f"{name}: `hidden_size` (={out['hidden_size']}) must be a multiple of "
                         f"`num_attention_heads` (={out['num_attention_heads']}).")
    if out["hidden_act"] not in _ACTIVATIONS:
        raise NotImplementedError(f"{name}: hidden_act={out['hidden_act']!r} is not supported; jaxnn implements "
                                  f"{', '.join(map(repr, _ACTIVATIONS))}.")
    if out["layer_norm_eps"] is None:
        out["layer_norm_eps"] = 1e-5  # transformers' LayerNorm would fail on None; the field's default
    for key in ("layer_norm_eps", "initializer_range"):
        if not _is_real(out[key]) or out[key] < 0:
            raise ValueError(f"{name}: `{key}` (={out[key]!r}) must be a non-negative number.")
    if out["initializer_factor"] is None:
        out["initializer_factor"] = 1.0
    if not _is_real(out["initializer_factor"]):
        raise ValueError(f"{name}: `initializer_factor` (={out['initializer_factor']!r}) must be a number.")
    p = out["attention_dropout"] if out["attention_dropout"] is not None else 0.0
    if not _is_real(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: `attention_dropout` (={p!r}) must be a probability in [0, 1].")
    out["attention_dropout"] = p
    if not _is_int(out["eos_token_id"]):
        raise NotImplementedError(f"{name}: eos_token_id={out['eos_token_id']!r} is not supported: the pooled "
                                  "output needs one int token id.")
    for key in ("pad_token_id", "bos_token_id"):
        if out[key] is not None and not _is_int(out[key]):
            raise ValueError(f"{name}: `{key}` (={out[key]!r}) must be an int or None.")
    return out


def _normal_(var: nnx.Variable, rngs: nnx.Rngs, std: float) -> None:
    """transformers' ``init.normal_(weight, std=std)`` (a different draw, the same distribution)."""
    var.set_value(jax.random.normal(rngs.params(), var.shape, var.dtype) * jnp.asarray(std, var.dtype))


# ---------------------------------------------------------------------------------------------
# Layers (transformers' classes of the same names)
# ---------------------------------------------------------------------------------------------

class CLIPTextEmbeddings(nnx.Module):
    """transformers' ``CLIPTextEmbeddings``: ``token_embedding(input_ids) + position_embedding(position_ids)``."""

    def __init__(self, config: Mapping[str, Any], *, dtype: Any, rngs: nnx.Rngs):
        h = config["hidden_size"]
        self.token_embedding = jn.Embedding(config["vocab_size"], h, dtype=dtype, rngs=rngs)
        self.position_embedding = jn.Embedding(config["max_position_embeddings"], h, dtype=dtype, rngs=rngs)
        std = 0.02 * config["initializer_factor"]
        _normal_(self.token_embedding.weight, rngs, std)
        _normal_(self.position_embedding.weight, rngs, std)

    def __call__(self, input_ids: jax.Array, position_ids: jax.Array | None = None) -> jax.Array:
        n, seq = input_ids.shape
        if position_ids is None:
            position_ids = jnp.arange(seq, dtype=jnp.int32)
        tokens = self.token_embedding(input_ids)
        positions = self.position_embedding(position_ids)
        return tokens + jnp.broadcast_to(positions, tokens.shape)


class CLIPAttention(nnx.Module):
    """transformers' ``CLIPAttention`` (the ``sdpa`` implementation, transformers' default):
    ``out_proj(sdpa(q_proj(x), k_proj(x), v_proj(x), mask, scale=head_dim**-0.5))`` over
    ``num_attention_heads`` heads, with ``attention_dropout`` on the weights in training mode."""

    def __init__(self, config: Mapping[str, Any], *, dtype: Any, rngs: nnx.Rngs):
        self.embed_dim = h = config["hidden_size"]
        self.num_heads = config["num_attention_heads"]
        self.head_dim = h // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.dropout = float(config["attention_dropout"])
        self.k_proj = jn.Linear(h, h, dtype=dtype, rngs=rngs)
        self.v_proj = jn.Linear(h, h, dtype=dtype, rngs=rngs)
        self.q_proj = jn.Linear(h, h, dtype=dtype, rngs=rngs)
        self.out_proj = jn.Linear(h, h, dtype=dtype, rngs=rngs)
        factor = config["initializer_factor"]
        in_std = h ** -0.5 * (2 * config["num_hidden_layers"]) ** -0.5 * factor  # layers exist: >= 1
        for lin, std in ((self.q_proj, in_std), (self.k_proj, in_std), (self.v_proj, in_std),
                         (self.out_proj, h ** -0.5 * factor)):
            _normal_(lin.weight, rngs, std)
            lin.bias.set_value(jnp.zeros_like(lin.bias.get_value()))
        self.deterministic = False  # torch's default: training mode; model.eval() sets it
        stream = None
        if self.dropout > 0.0:
            try:
                stream = rngs["dropout"].fork()
            except KeyError:
                stream = None
        self.rngs = stream if stream is not None else nnx.data(None)

    @property
    def training(self) -> bool:
        """torch's ``module.training``."""
        return not self.deterministic

    def __call__(self, hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
        n, seq, _ = hidden_states.shape

        def heads(x: jax.Array) -> jax.Array:
            return x.reshape(n, seq, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

        q = heads(self.q_proj(hidden_states))
        k = heads(self.k_proj(hidden_states))
        v = heads(self.v_proj(hidden_states))
        p = self.dropout if self.training else 0.0
        rng = None
        if 0.0 < p < 1.0:
            if self.rngs is None:
                raise ValueError(
                    "CLIPAttention in training mode with attention_dropout > 0 draws from the `dropout` stream, "
                    "and the model was built without one: build it with `rngs=nnx.Rngs(0)` (or "
                    "`nnx.Rngs(params=..., dropout=...)`), or call `model.eval()`.")
            rng = self.rngs()
        out = F.scaled_dot_product_attention(q, k, v, attention_mask, dropout_p=p, scale=self.scale, rng=rng)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(n, seq, self.embed_dim))


def _activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name == "quick_gelu":  # transformers' QuickGELUActivation
        return lambda x: x * F.sigmoid(x * jnp.asarray(1.702, x.dtype))
    if name == "gelu":  # GELUActivation: torch's exact gelu
        return F.gelu

    def gelu_new(x: jax.Array) -> jax.Array:  # NewGELUActivation, in its op order
        c = jnp.asarray(math.sqrt(2.0 / math.pi), x.dtype)
        inner = c * (x + jnp.asarray(0.044715, x.dtype) * (x * x * x))
        return jnp.asarray(0.5, x.dtype) * x * (jnp.asarray(1.0, x.dtype) + jnp.tanh(inner))

    return gelu_new


class CLIPMLP(nnx.Module):
    """transformers' ``CLIPMLP``: ``fc2(act(fc1(x)))``."""

    def __init__(self, config: Mapping[str, Any], *, dtype: Any, rngs: nnx.Rngs):
        h, inter = config["hidden_size"], config["intermediate_size"]
        self.hidden_act = config["hidden_act"]
        self.fc1 = jn.Linear(h, inter, dtype=dtype, rngs=rngs)
        self.fc2 = jn.Linear(inter, h, dtype=dtype, rngs=rngs)
        factor, layers = config["initializer_factor"], config["num_hidden_layers"]
        _normal_(self.fc1.weight, rngs, (2 * h) ** -0.5 * factor)
        _normal_(self.fc2.weight, rngs, h ** -0.5 * (2 * layers) ** -0.5 * factor)
        for lin in (self.fc1, self.fc2):
            lin.bias.set_value(jnp.zeros_like(lin.bias.get_value()))

    def __call__(self, hidden_states: jax.Array) -> jax.Array:
        return self.fc2(_activation(self.hidden_act)(self.fc1(hidden_states)))


class CLIPEncoderLayer(nnx.Module):
    """transformers' ``CLIPEncoderLayer``: pre-norm attention and MLP blocks with residuals."""

    def __init__(self, config: Mapping[str, Any], *, dtype: Any, rngs: nnx.Rngs):
        h, eps = config["hidden_size"], config["layer_norm_eps"]
        self.self_attn = CLIPAttention(config, dtype=dtype, rngs=rngs)
        self.layer_norm1 = jn.LayerNorm(h, eps=eps, dtype=dtype)
        self.mlp = CLIPMLP(config, dtype=dtype, rngs=rngs)
        self.layer_norm2 = jn.LayerNorm(h, eps=eps, dtype=dtype)

    def __call__(self, hidden_states: jax.Array, attention_mask: jax.Array) -> jax.Array:
        hidden_states = hidden_states + self.self_attn(self.layer_norm1(hidden_states), attention_mask)
        return hidden_states + self.mlp(self.layer_norm2(hidden_states))


class CLIPEncoder(nnx.Module):
    """transformers' ``CLIPEncoder``: ``layers`` (a ModuleList of :class:`CLIPEncoderLayer`)."""

    def __init__(self, config: Mapping[str, Any], *, dtype: Any, rngs: nnx.Rngs):
        self.layers = jn.ModuleList([CLIPEncoderLayer(config, dtype=dtype, rngs=rngs)
                                     for _ in range(config["num_hidden_layers"])])

    def __call__(self, inputs_embeds: jax.Array, attention_mask: jax.Array) -> list[jax.Array]:
        """Every layer's input and the last output: ``num_hidden_layers + 1`` arrays."""
        states = [inputs_embeds]
        for layer in self.layers:
            states.append(layer(states[-1], attention_mask))
        return states


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def _dtype_name(var: nnx.Variable) -> str:
    return np.dtype(var.dtype).name


class _CLIPTextBase(PretrainedModel):
    weights_name = "model.safetensors"
    library = "transformers"
    config_keys = _CONFIG_KEYS

    @classmethod
    def _check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return _check_text_config(cls.__name__, config)


def _check_inputs(name: str, config: Mapping[str, Any], input_ids: Any, attention_mask: Any,
                  position_ids: Any) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """Validate the call's arrays before tracing; ``input_ids`` flattened to ``(batch, seq)`` as
    transformers' ``input_ids.view(-1, seq)``."""
    if input_ids is None:
        raise ValueError(f"{name}: you have to specify `input_ids`.")
    for arg, value in (("input_ids", input_ids), ("attention_mask", attention_mask), ("position_ids", position_ids)):
        if value is not None and not (hasattr(value, "shape") and hasattr(value, "dtype")):
            raise TypeError(f"{name}: `{arg}` must be an array, got {type(value).__name__}.")
    if not jnp.issubdtype(input_ids.dtype, jnp.integer):
        raise TypeError(f"{name}: `input_ids` must hold integer token ids, got dtype {input_ids.dtype}.")
    if input_ids.ndim < 1 or 0 in input_ids.shape:
        raise ValueError(f"{name}: `input_ids` must be a non-empty (..., seq) array, got shape "
                         f"{tuple(input_ids.shape)}.")
    seq = input_ids.shape[-1]
    if seq > config["max_position_embeddings"]:
        raise ValueError(f"{name}: sequence length must be less than max_position_embeddings (got `sequence "
                         f"length`: {seq} and max_position_embeddings: {config['max_position_embeddings']}).")
    ids = jnp.asarray(input_ids).reshape(-1, seq)
    n = ids.shape[0]
    mask = None
    if attention_mask is not None:
        if tuple(attention_mask.shape) != (n, seq):
            raise ValueError(f"{name}: `attention_mask` must have shape (batch, seq) = {(n, seq)} (1 = attend, "
                             f"0 = padding), got {tuple(attention_mask.shape)}.")
        mask = jnp.asarray(attention_mask) != 0
    pos = None
    if position_ids is not None:
        if not jnp.issubdtype(position_ids.dtype, jnp.integer):
            raise TypeError(f"{name}: `position_ids` must be integers, got dtype {position_ids.dtype}.")
        try:
            ok = jnp.broadcast_shapes(tuple(position_ids.shape), (n, seq)) == (n, seq)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{name}: `position_ids` of shape {tuple(position_ids.shape)} must broadcast to "
                             f"(batch, seq) = {(n, seq)}.")
        pos = jnp.asarray(position_ids)
    return ids, mask, pos


class CLIPTextModel(_CLIPTextBase):
    """transformers' ``CLIPTextModel`` (5.24): CLIP's causal text transformer, without projection.

    Attributes (torch's names, so state_dict keys match transformers 5.24's
    ``embeddings.token_embedding.weight``, ``encoder.layers.0.self_attn.q_proj.weight``, ...,
    ``final_layer_norm.bias``): ``embeddings`` (:class:`CLIPTextEmbeddings`), ``encoder``
    (:class:`CLIPEncoder`), ``final_layer_norm``.

    .. math::

        h_0 = E_{tok}[\\mathrm{ids}] + E_{pos}[\\mathrm{position\\_ids}], \\quad
        h_{l+1} = h'_l + \\mathrm{MLP}(\\mathrm{LN}_2(h'_l)), \\;
        h'_l = h_l + \\mathrm{Attn}(\\mathrm{LN}_1(h_l)),

    ``last_hidden_state = final_layer_norm(h_L)``, ``pooler_output = last_hidden_state[b, eos_b]``.

    Args:
      config: a ``CLIPTextConfig`` as a dict (the ``config.json`` transformers writes): vocab_size,
        hidden_size, intermediate_size, projection_dim, num_hidden_layers, num_attention_heads,
        max_position_embeddings, hidden_act ('quick_gelu', 'gelu', 'gelu_new'), layer_norm_eps,
        attention_dropout, initializer_range, initializer_factor, pad/bos/eos_token_id; missing keys
        take transformers' defaults. Keys that are neither CLIPTextConfig's nor transformers' generic
        ones (``architectures``, ``torch_dtype``, generation defaults, ...) are ignored with a
        ``UserWarning`` naming them (transformers keeps them as unused attributes).
      dtype: keyword-only; parameters' and computation's dtype (None: float32). In float16/bfloat16
        the layer norms' statistics and the attention softmax are computed in float32.
      rngs: keyword-only; ``params`` initialises the weights with transformers' distributions
        (normal, std from initializer_factor and the sizes, zero biases), the ``dropout`` stream
        draws the attention dropout in training mode.

    A fresh model is in training mode (torch's default); ``from_pretrained`` returns it in eval
    mode, as transformers does. ``model.train()`` / ``model.eval()`` switch ``attention_dropout``.
    ``CLIPTextModel.from_pretrained`` also loads a ``CLIPTextModelWithProjection`` folder (SDXL's
    ``text_encoder_2``), ignoring its ``text_projection.weight`` with a ``UserWarning``, as
    transformers does; ``CLIPTextModelWithProjection.from_pretrained`` on a plain ``CLIPTextModel``
    folder is a CheckpointError (no projection to load; transformers would initialise it randomly).

    Raises:
      NotImplementedError: a hidden_act other than those above, a non-int eos_token_id,
        output_attentions or is_causal=False in the config.
      ValueError: malformed sizes (hidden_size not a multiple of num_attention_heads, ...); a full
        ``CLIPConfig`` (nested ``text_config``).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.models import CLIPTextModel
      >>> cfg = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
      ...            num_attention_heads=2, max_position_embeddings=8, eos_token_id=3)
      >>> model = CLIPTextModel.from_config(cfg)
      >>> model.eval()  # dropout off, as from_pretrained returns it
      >>> out = model(jnp.array([[0, 5, 7, 3, 1, 1]]))
      >>> out.last_hidden_state.shape, out.pooler_output.shape
      ((1, 6, 16), (1, 16))

    Differences from transformers:
      ``attention_mask`` must be a 2-D ``(batch, seq)`` padding mask (transformers also takes 4-D
      masks as they are, and silently ignores an all-ones mask of another shape); there is no
      ``inputs_embeds``, ``output_attentions`` or attention implementation switch (the math is
      transformers' default ``sdpa`` path, so a query that may attend to no key, e.g. the first
      position under left padding, gives a zero attention output as torch's SDPA does). The dropout
      mask comes from the ``dropout`` stream. An out-of-range token id raises
      ``EmbeddingIndexError`` for concrete inputs and gives NaN under ``jax.jit``.
      ``from_pretrained(dtype=None)`` gives float32 (transformers 5 keeps the saved dtype).
    """

    def __init__(self, config: Mapping[str, Any], *, dtype: Any = None, rngs: nnx.Rngs):
        config = self._init_config(config, dtype)
        self.embeddings = CLIPTextEmbeddings(config, dtype=dtype, rngs=rngs)
        self.encoder = CLIPEncoder(config, dtype=dtype, rngs=rngs)
        self.final_layer_norm = jn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, dtype=dtype)
        self.eos_token_id = config.eos_token_id

    @classmethod
    def _key_map(cls, keys: list[str]) -> Callable[[str], str | None]:
        """transformers 4.x's ``text_model.`` prefix removed (5.x's ``PrefixChange``), and the
        ``position_ids`` buffer that transformers < 4.31 saved dropped. A
        ``CLIPTextModelWithProjection`` checkpoint loads too: its ``text_projection.*`` weights are
        dropped with a ``UserWarning`` naming them, as transformers drops (and logs) them."""
        unused = sorted(k for k in keys if k.startswith("text_projection."))
        if unused:
            warnings.warn(f"{cls.__name__}.from_pretrained: the checkpoint's {unused} (a "
                          "CLIPTextModelWithProjection's projection) are not used by CLIPTextModel and are "
                          "ignored, as transformers does.", UserWarning, stacklevel=_user_stacklevel())

        def fn(key: str) -> str | None:
            if key.startswith("text_projection."):
                return None
            key = key.removeprefix("text_model.")
            return None if key == "embeddings.position_ids" else key

        return fn

    def _saved_config(self) -> dict[str, Any]:
        return {"architectures": [type(self).__name__], "model_type": "clip_text_model",
                "transformers_version": TRANSFORMERS_VERSION, "dtype": _dtype_name(self.final_layer_norm.weight)}

    def _pooled(self, ids: jax.Array, last: jax.Array) -> jax.Array:
        ids32 = ids.astype(jnp.int32)  # transformers' `input_ids.to(torch.int)`
        if self.eos_token_id == 2:
            # transformers' legacy rule for configs from before its PR #24773 (Stable Diffusion's
            # text encoders): the EOS token is taken to be the largest id of each sequence.
            idx = jnp.argmax(ids32, axis=-1)
        else:  # the first EOS token of each sequence (position 0 where there is none)
            idx = jnp.argmax((ids32 == self.eos_token_id).astype(jnp.int32), axis=-1)
        return last[jnp.arange(last.shape[0]), idx]

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None,
                 position_ids: jax.Array | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None) -> BaseModelOutputWithPooling | tuple[Any, ...]:
        """Encode token ids.

        Args:
          input_ids: integer ``(..., seq)`` (leading dims flattened: ``(batch, seq)`` as
            transformers' ``view(-1, seq)``), ``seq <= max_position_embeddings``.
          attention_mask: optional ``(batch, seq)``; nonzero = a real token, 0 = padding (keys
            never attended to), combined with the causal mask.
          position_ids: optional integers broadcastable to ``(batch, seq)``; default ``arange(seq)``.
          output_hidden_states: also return ``hidden_states`` (None: the config's value, False).
          return_dict: False returns ``to_tuple()`` of the output (None: the config's value, True).

        Returns:
          :class:`BaseModelOutputWithPooling` (``last_hidden_state (batch, seq, hidden_size)``,
          ``pooler_output (batch, hidden_size)``: the state at each sequence's first
          ``eos_token_id`` (position 0 if absent), or at its largest token id when
          ``eos_token_id == 2`` (transformers' legacy rule), ``hidden_states``), in the
          parameters' dtype.

        Raises:
          TypeError: non-integer ``input_ids`` / ``position_ids``, non-array inputs.
          ValueError: an empty ``input_ids``, ``seq > max_position_embeddings``, a mis-shaped
            ``attention_mask`` or ``position_ids``.
        """
        ids, mask, pos = _check_inputs(type(self).__name__, self.config, input_ids, attention_mask, position_ids)
        if output_hidden_states is None:
            output_hidden_states = self.config.get("output_hidden_states", False)
        if return_dict is None:
            return_dict = self.config.get("return_dict", True)
        n, seq = ids.shape
        hidden = self.embeddings(ids, pos)
        attn = jnp.tril(jnp.ones((seq, seq), bool))[None, None]  # (1, 1, seq, seq): query i sees keys <= i
        if mask is not None:
            attn = attn & mask[:, None, None, :]
        states = self.encoder(hidden, attn)
        last = self.final_layer_norm(states[-1])
        out = BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=self._pooled(ids, last),
                                         hidden_states=tuple(states) if output_hidden_states else None)
        return out if return_dict else out.to_tuple()


class CLIPTextModelWithProjection(_CLIPTextBase):
    """transformers' ``CLIPTextModelWithProjection``: :class:`CLIPTextModel` (``text_model``) and a
    bias-free ``text_projection`` (``hidden_size -> projection_dim``) of the pooled output;
    Stable Diffusion XL's ``text_encoder_2`` (``hidden_act='gelu'``).

    State dict keys: ``text_model.embeddings.token_embedding.weight``, ...,
    ``text_projection.weight`` (the same in transformers 4.x and 5.x). Args, modes, errors and
    differences from transformers as in :class:`CLIPTextModel`; ``projection_dim`` must be an int.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxnn.models import CLIPTextModelWithProjection
      >>> cfg = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
      ...            num_attention_heads=2, max_position_embeddings=8, projection_dim=4, hidden_act="gelu")
      >>> model = CLIPTextModelWithProjection.from_config(cfg)
      >>> model(jnp.array([[0, 5, 63, 1]])).text_embeds.shape
      (1, 4)
    """

    def __init__(self, config: Mapping[str, Any], *, dtype: Any = None, rngs: nnx.Rngs):
        config = self._init_config(config, dtype)
        if config.projection_dim is None:
            raise ValueError("CLIPTextModelWithProjection: `projection_dim` must be a positive int, got None.")
        self.text_model = CLIPTextModel(config, dtype=dtype, rngs=rngs)
        self.text_projection = jn.Linear(config.hidden_size, config.projection_dim, bias=False, dtype=dtype,
                                         rngs=rngs)
        _normal_(self.text_projection.weight, rngs, config.hidden_size ** -0.5 * config.initializer_factor)

    @classmethod
    def _key_map(cls, keys: list[str]) -> Callable[[str], str | None]:
        """The ``position_ids`` buffer that transformers < 4.31 saved dropped. A checkpoint without
        ``text_projection.weight`` (a plain ``CLIPTextModel``'s) is a CheckpointError saying so:
        transformers would initialise the projection randomly (with a warning); jaxnn loads
        strictly."""
        if keys and not any(k.startswith("text_projection.") for k in keys):
            raise CheckpointError(f"{cls.__name__}.from_pretrained: the checkpoint has no `text_projection.weight`: "
                                  "it is a CLIPTextModel's (no projection). Load it with CLIPTextModel, or use a "
                                  "CLIPTextModelWithProjection folder (e.g. SDXL's text_encoder_2).")
        return lambda key: None if key == "text_model.embeddings.position_ids" else key

    def _saved_config(self) -> dict[str, Any]:
        return {"architectures": [type(self).__name__], "model_type": "clip_text_model",
                "transformers_version": TRANSFORMERS_VERSION, "dtype": _dtype_name(self.text_projection.weight)}

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None,
                 position_ids: jax.Array | None = None, output_hidden_states: bool | None = None,
                 return_dict: bool | None = None) -> CLIPTextModelOutput | tuple[Any, ...]:
        """Encode token ids and project the pooled output.

        Args: as :meth:`CLIPTextModel.__call__`.

        Returns:
          :class:`CLIPTextModelOutput` (``text_embeds (batch, projection_dim)``,
          ``last_hidden_state``, ``hidden_states``), or its ``to_tuple()`` with ``return_dict=False``.
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.get("output_hidden_states", False)
        if return_dict is None:
            return_dict = self.config.get("return_dict", True)
        text = self.text_model(input_ids, attention_mask, position_ids, output_hidden_states=output_hidden_states,
                               return_dict=True)
        text = cast(BaseModelOutputWithPooling, text)
        out = CLIPTextModelOutput(text_embeds=self.text_projection(text.pooler_output),
                                  last_hidden_state=text.last_hidden_state, hidden_states=text.hidden_states)
        return out if return_dict else out.to_tuple()
