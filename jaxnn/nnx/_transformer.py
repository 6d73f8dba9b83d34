"""flax.nnx transformer layers with torch.nn's constructor and forward signatures:
``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder``,
``TransformerDecoder``, ``Transformer``.

They are built from jaxnn's :class:`~jaxnn.nnx.MultiheadAttention`, :class:`~jaxnn.nnx.Linear`,
:class:`~jaxnn.nnx.LayerNorm` and :class:`~jaxnn.nnx.Dropout` under torch's attribute names
(``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm1``..``norm3``, ``dropout``,
``dropout1``..``dropout3``, ``layers.0``, ``encoder.norm``, ...), so ``jaxnn.nnx.load_state_dict``
takes a torch state_dict as it is. The forward logic (shared with :mod:`jaxnn.linen`) is in the
private functions below.

Eval mode reproduces what torch returns in eval mode under ``torch.no_grad()`` /
``torch.inference_mode()``, where torch takes its fused "fast path"
(``torch._transformer_encoder_layer_fwd``, ``torch._native_multi_head_attention``) and, in
``TransformerEncoder``, its nested-tensor path. Those paths compute the same values as the regular
one to float rounding, except for four things that jaxnn reproduces:

- float masks are read as booleans: any non-zero entry (of the float mask, or of the sum of
  ``src_mask`` and ``src_key_padding_mask``) masks the key out, whatever its value;
- a query whose keys are all masked gives nan (the regular path gives the output bias);
- ``is_causal`` is ignored (only the mask counts; without a mask, nothing is masked);
- ``TransformerEncoder`` with ``src_key_padding_mask`` (nested tensors) returns 0 at the padded
  positions, before its final ``norm``.

Examples:
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> import jaxnn.nnx as jn
  >>> layer = jn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
  ...                                    rngs=nnx.Rngs(0))
  >>> encoder = jn.TransformerEncoder(layer, num_layers=2)
  >>> encoder(jnp.ones((3, 5, 8))).shape  # (N, S, E)
  (3, 5, 8)
"""

from __future__ import annotations

import dataclasses
import math
import typing
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from .. import _layers as L
from .. import functional as F
from .._utils import is_int
from ._modules import GELU, Dropout, LayerNorm, Linear, ModuleList, MultiheadAttention, ReLU

Activation = str | Callable[[jax.Array], jax.Array]

# --- shared with jaxnn.linen._transformer -----------------------------------------------------------


def resolve_activation(activation: Any) -> tuple[Callable[[jax.Array], jax.Array], int]:
    """torch's ``activation`` argument: ``'relu'``/``'gelu'`` or a unary callable, and torch's
    ``activation_relu_or_gelu`` code (1 relu, 2 gelu, 0 other) that selects the fast path."""
    from ..linen import _modules as _lm

    if isinstance(activation, str):
        if activation == "relu":
            return F.relu, 1
        if activation == "gelu":
            return F.gelu, 2
        raise ValueError(f"`activation` should be 'relu' or 'gelu' (or a unary callable), got {activation!r}.")
    if not callable(activation):
        raise TypeError(f"`activation` must be 'relu', 'gelu' or a unary callable, got {type(activation).__name__}.")
    fn = typing.cast(Callable[[jax.Array], jax.Array], activation)
    if activation is F.relu or isinstance(activation, (ReLU, _lm.ReLU)):
        return fn, 1
    if activation is F.gelu or isinstance(activation, (GELU, _lm.GELU)):
        return fn, 2
    return fn, 0


def check_transformer_args(d_model: Any, nhead: Any, dim_feedforward: Any) -> None:
    """torch's constructor conditions, named by the transformer's argument names."""
    for name, value in (("d_model", d_model), ("nhead", nhead)):
        if not is_int(value) or value <= 0:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    if d_model % nhead:
        raise ValueError(f"`d_model` (={d_model}) must be divisible by `nhead` (={nhead}).")
    if not is_int(dim_feedforward) or dim_feedforward < 0:
        raise ValueError(f"`dim_feedforward` must be a non-negative int, got {dim_feedforward!r}.")


def check_num_layers(num_layers: Any) -> int:
    if not is_int(num_layers) or num_layers < 0:
        raise ValueError(f"`num_layers` must be a non-negative int, got {num_layers!r}.")
    return int(num_layers)


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def canonical_mask(mask: Any, name: str, other: Any, other_name: str, dtype: Any,
                   check_other: bool = True) -> jax.Array | None:
    """torch's ``F._canonical_mask``: a boolean mask (True = masked out) becomes ``-inf``/``0`` in
    ``dtype``; a float mask is kept as it is; with a mask ``other`` of another dtype, torch's
    deprecation warning."""
    if mask is None:
        return None
    if not _is_array(mask):
        raise TypeError(f"`{name}` must be an array, got {type(mask).__name__}.")
    mask = jnp.asarray(mask)
    is_bool = mask.dtype == jnp.bool_
    if not is_bool and not jnp.issubdtype(mask.dtype, jnp.floating):
        raise TypeError(f"only bool and floating types of `{name}` are supported, got {mask.dtype}.")
    if check_other and other is not None and jnp.asarray(other).dtype != mask.dtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same type for both "
                      "instead.", UserWarning, stacklevel=4)
    if is_bool:
        return jnp.where(mask, jnp.asarray(-jnp.inf, dtype), jnp.zeros((), dtype))
    return mask


def _is_float_mask(mask: Any) -> bool:
    return mask is not None and _is_array(mask) and jnp.issubdtype(jnp.asarray(mask).dtype, jnp.floating)


def _fast_masks(attn_mask: jax.Array | None, kpm: jax.Array | None, N: int, H: int, L: int, S: int,
                dtype: Any) -> tuple[jax.Array | None, jax.Array | None]:
    """torch's fast-path masking (``merge_masks`` then ``_masked_softmax``): the masks are summed,
    and every non-zero entry of the sum masks the key out. Returns that mask as an additive
    ``(N * H, L, S)`` float mask and the ``(N, L)`` queries with all keys masked in some head
    (which the fast path turns into nan)."""
    merged = None
    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if attn_mask.shape != (L, S):
                raise ValueError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be {(L, S)}.")
            merged = attn_mask[None, None]
        elif attn_mask.ndim == 3:
            if attn_mask.shape != (N * H, L, S):
                raise ValueError(
                    f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be {(N * H, L, S)}.")
            merged = attn_mask.reshape(N, H, L, S)
        else:
            raise ValueError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if kpm is not None:
        if kpm.shape != (N, S):
            raise ValueError(f"the key_padding_mask shape must be (N, S) = {(N, S)}, got {tuple(kpm.shape)}.")
        k = kpm[:, None, None, :]
        merged = k if merged is None else merged + k
    if merged is None:
        return None, None
    masked = jnp.broadcast_to(merged != 0, (N, H, L, S))
    additive = jnp.where(masked, jnp.asarray(-jnp.inf, dtype), jnp.zeros((), dtype)).reshape(N * H, L, S)
    return additive, jnp.any(jnp.all(masked, axis=-1), axis=1)


def _nan_rows(x: jax.Array, dead: jax.Array | None, batch_first: bool) -> jax.Array:
    if dead is None:
        return x
    if not batch_first:
        dead = dead.T
    return jnp.where(dead[..., None], jnp.asarray(jnp.nan, x.dtype), x)


@dataclasses.dataclass(frozen=True)
class Parts:
    """One layer's blocks as callables (the nnx and linen front ends build it): ``self_attn`` and
    ``multihead_attn`` are ``(query, key, value, attn_mask, key_padding_mask, is_causal) ->
    output`` with ``need_weights=False``; the others take and return an array."""

    self_attn: Callable[..., jax.Array]
    linear1: Callable[[jax.Array], jax.Array]
    dropout: Callable[[jax.Array], jax.Array]
    linear2: Callable[[jax.Array], jax.Array]
    norm1: Callable[[jax.Array], jax.Array]
    norm2: Callable[[jax.Array], jax.Array]
    dropout1: Callable[[jax.Array], jax.Array]
    dropout2: Callable[[jax.Array], jax.Array]
    activation: Callable[[jax.Array], jax.Array]
    act_code: int
    nhead: int
    batch_first: bool
    norm_first: bool
    bias: bool
    param_dtype: Any
    multihead_attn: Callable[..., jax.Array] | None = None
    norm3: Callable[[jax.Array], jax.Array] | None = None
    dropout3: Callable[[jax.Array], jax.Array] | None = None


def _ff_block(p: Parts, x: jax.Array, activation: Callable[[jax.Array], jax.Array],
              last_dropout: Callable[[jax.Array], jax.Array]) -> jax.Array:
    return last_dropout(p.linear2(p.dropout(activation(p.linear1(x)))))


def encoder_layer_forward(p: Parts, src: Any, src_mask: Any, src_key_padding_mask: Any, is_causal: bool,
                          training: bool) -> jax.Array:
    """torch's ``TransformerEncoderLayer.forward``, its eval-mode fast path included."""
    if not _is_array(src):
        raise TypeError(f"`src` must be an array, got {type(src).__name__}.")
    if src.ndim not in (2, 3):
        raise ValueError(f"`src` must be (S, E), (S, N, E) or (N, S, E), got shape {tuple(src.shape)}.")
    kpm = canonical_mask(src_key_padding_mask, "src_key_padding_mask", src_mask, "src_mask", src.dtype)
    mask = canonical_mask(src_mask, "src_mask", None, "", src.dtype, check_other=False)
    activation = p.activation
    dead = None
    fast = (not training and src.ndim == 3 and p.batch_first and p.bias and p.act_code != 0
            and p.nhead % 2 == 0)
    if fast:  # torch._transformer_encoder_layer_fwd
        activation = F.relu if p.act_code == 1 else F.gelu
        N, S = src.shape[0], src.shape[1]
        mask, dead = _fast_masks(mask, kpm, N, p.nhead, S, S, src.dtype)
        kpm, is_causal = None, False
    elif (not training and src.ndim == 3 and p.batch_first and p.bias and p.nhead % 2 == 0 and mask is None
          and kpm is None):
        is_causal = False  # nn.MultiheadAttention's own fast path (no mask) ignores the hint too

    def sa_block(x: jax.Array) -> jax.Array:
        out = p.self_attn(x, x, x, mask, kpm, is_causal)
        return p.dropout1(_nan_rows(out, dead, p.batch_first))

    x = src
    if p.norm_first:
        x = x + sa_block(p.norm1(x))
        x = x + _ff_block(p, p.norm2(x), activation, p.dropout2)
    else:
        x = p.norm1(x + sa_block(x))
        x = p.norm2(x + _ff_block(p, x, activation, p.dropout2))
    return x


def _warn_mismatch(mask: Any, other: Any) -> None:
    if mask is not None and other is not None and _is_array(mask) and _is_array(other) \
            and jnp.asarray(mask).dtype != jnp.asarray(other).dtype:
        warnings.warn("Support for mismatched key_padding_mask and attn_mask is deprecated. Use same type for both "
                      "instead.", UserWarning, stacklevel=4)


def decoder_layer_forward(p: Parts, tgt: Any, memory: Any, tgt_mask: Any, memory_mask: Any, tgt_key_padding_mask: Any,
                          memory_key_padding_mask: Any, tgt_is_causal: bool, memory_is_causal: bool,
                          training: bool) -> jax.Array:
    """torch's ``TransformerDecoderLayer.forward``; in eval mode its self-attention takes
    ``nn.MultiheadAttention``'s fast path when torch's does (batched, ``batch_first``, even
    ``nhead``, ``bias``, no float mask)."""
    assert p.multihead_attn is not None and p.norm3 is not None and p.dropout3 is not None
    for name, value in (("tgt", tgt), ("memory", memory)):
        if not _is_array(value):
            raise TypeError(f"`{name}` must be an array, got {type(value).__name__}.")
    if tgt.ndim == 3 and memory.ndim == 3 and tgt.shape[1 - p.batch_first] != memory.shape[1 - p.batch_first]:
        raise ValueError(  # torch's cross-attention fails reshaping memory's keys (RuntimeError)
            f"`memory` {tuple(memory.shape)} must have `tgt`'s batch size: `tgt` {tuple(tgt.shape)} "
            f"(batch dim {1 - p.batch_first} with batch_first={p.batch_first}).")
    _warn_mismatch(tgt_key_padding_mask, tgt_mask)
    _warn_mismatch(memory_key_padding_mask, memory_mask)
    sa_mask, sa_kpm, sa_causal, dead = tgt_mask, tgt_key_padding_mask, tgt_is_causal, None
    fast = (not training and tgt.ndim == 3 and p.batch_first and p.bias and p.nhead % 2 == 0
            and not _is_float_mask(tgt_mask) and not _is_float_mask(tgt_key_padding_mask)
            and jnp.dtype(tgt.dtype) == jnp.dtype(p.param_dtype))
    if fast:  # torch._native_multi_head_attention
        kpm = canonical_mask(tgt_key_padding_mask, "key_padding_mask", None, "", tgt.dtype, check_other=False)
        mask = canonical_mask(tgt_mask, "attn_mask", None, "", tgt.dtype, check_other=False)
        N, T = tgt.shape[0], tgt.shape[1]
        sa_mask, dead = _fast_masks(mask, kpm, N, p.nhead, T, T, tgt.dtype)
        sa_kpm, sa_causal = None, False

    def sa_block(x: jax.Array) -> jax.Array:
        return p.dropout1(_nan_rows(p.self_attn(x, x, x, sa_mask, sa_kpm, sa_causal), dead, p.batch_first))

    def mha_block(x: jax.Array) -> jax.Array:
        assert p.multihead_attn is not None and p.dropout2 is not None
        return p.dropout2(p.multihead_attn(x, memory, memory, memory_mask, memory_key_padding_mask,
                                           memory_is_causal))

    x = tgt
    if p.norm_first:
        x = x + sa_block(p.norm1(x))
        x = x + mha_block(p.norm2(x))
        x = x + _ff_block(p, p.norm3(x), p.activation, p.dropout3)
    else:
        x = p.norm1(x + sa_block(x))
        x = p.norm2(x + mha_block(x))
        x = p.norm3(x + _ff_block(p, x, p.activation, p.dropout3))
    return x


def nested_tensor_reason(layer: Any) -> str:
    """Why torch's ``TransformerEncoder.__init__`` turns ``use_nested_tensor`` off ('' if it does not)."""
    enc = "encoder_layer"
    if not isinstance(layer, _ENCODER_LAYER_TYPES()):
        return f"{enc} was not TransformerEncoderLayer"
    if layer.norm_first:
        return f"{enc}.norm_first was True"
    if not layer.batch_first:
        return f"{enc}.self_attn.batch_first was not True(use batch_first for better inference performance)"
    if not layer.bias:
        return f"{enc}.self_attn was passed bias=False"
    if not resolve_activation(layer.activation)[1]:
        return f"{enc}.activation_relu_or_gelu was not True"
    if layer.nhead % 2 == 1:
        return f"{enc}.self_attn.num_heads is odd"
    return ""


def _ENCODER_LAYER_TYPES() -> tuple[type, ...]:
    from ..linen._transformer import TransformerEncoderLayer as LinenEncoderLayer

    return (TransformerEncoderLayer, LinenEncoderLayer)


def warn_nested(enable_nested_tensor: bool, layer: Any, stacklevel: int = 3) -> bool:
    """torch's ``use_nested_tensor``, with its warning when ``enable_nested_tensor`` cannot be honoured."""
    reason = nested_tensor_reason(layer)
    if enable_nested_tensor and reason:
        warnings.warn(f"enable_nested_tensor is True, but self.use_nested_tensor is False because {reason}",
                      UserWarning, stacklevel=stacklevel)
    return bool(enable_nested_tensor) and not reason


def encoder_forward(layers: list[Callable[..., jax.Array]], norm: Callable[[jax.Array], jax.Array] | None,
                    use_nested_tensor: bool, mask_check: bool, first_training: bool, src: Any, mask: Any,
                    src_key_padding_mask: Any, is_causal: bool | None) -> jax.Array:
    """torch's ``TransformerEncoder.forward``: ``layers`` are called as
    ``layer(output, src_mask, src_key_padding_mask, is_causal)``.

    The nested-tensor path (eval, batched, a key padding mask, no ``mask``, left-aligned padding
    when ``mask_check``) is computed as the layers with the key padding mask, then zeros at the
    padded positions: the valid positions are the same numbers as torch's per-sequence
    computation, since they attend only to valid keys. Without ``mask_check`` torch takes each
    sequence's first ``count(valid)`` positions as its tokens, as here.
    """
    if not _is_array(src):
        raise TypeError(f"`src` must be an array, got {type(src).__name__}.")
    kpm = canonical_mask(src_key_padding_mask, "src_key_padding_mask", mask, "mask", src.dtype)
    mask = canonical_mask(mask, "mask", None, "", src.dtype, check_other=False)
    if not layers:
        raise ValueError("a TransformerEncoder with `num_layers=0` cannot be called (torch raises IndexError).")
    nested = use_nested_tensor and not first_training and src.ndim == 3 and kpm is not None and mask is None
    padded = layer_kpm = None
    if nested:
        assert kpm is not None
        if kpm.ndim != 2:
            raise ValueError(
                f"`src_key_padding_mask` must be (N, S) for a batched `src`, got shape {tuple(kpm.shape)}.")
        pad = kpm != 0
        if mask_check:  # left-aligned: no valid position after a padded one in any sequence
            aligned = jnp.all(jnp.logical_or(pad[:, 1:], ~pad[:, :-1])) if pad.shape[1] > 1 else jnp.bool_(True)
            padded = jnp.logical_and(pad, aligned)
        else:  # torch takes the first count(valid) positions of each sequence
            lengths = jnp.sum(~pad, axis=1)
            padded = jnp.arange(pad.shape[1])[None, :] >= lengths[:, None]
            layer_kpm = jnp.where(padded, jnp.asarray(-jnp.inf, src.dtype), jnp.zeros((), src.dtype))
        # A fully padded sequence (torch: an empty one, output 0) is computed with its keys unmasked:
        # all-masked rows would be nan (the fast path's) and leak nan into every gradient.
        empty = jnp.all(padded, axis=1, keepdims=True)
        base = kpm if layer_kpm is None else layer_kpm
        layer_kpm = jnp.where(empty, jnp.zeros((), base.dtype), base)
    causal = bool(is_causal) if is_causal is not None else False
    output = src
    for layer in layers:
        output = layer(output, mask, kpm if layer_kpm is None else layer_kpm, causal)
    if padded is not None:  # (N, S): the nested path needs batch_first (`use_nested_tensor` checks it)
        output = jnp.where(padded[..., None], jnp.zeros((), output.dtype), output)
    if norm is not None:
        output = norm(output)
    return output


def decoder_forward(layers: list[Callable[..., jax.Array]], norm: Callable[[jax.Array], jax.Array] | None,
                    tgt: Any, memory: Any, tgt_mask: Any, memory_mask: Any, tgt_key_padding_mask: Any,
                    memory_key_padding_mask: Any, tgt_is_causal: bool | None, memory_is_causal: bool) -> jax.Array:
    """torch's ``TransformerDecoder.forward``: ``layers`` are called with the decoder layer's arguments."""
    if not layers:
        raise ValueError("a TransformerDecoder with `num_layers=0` cannot be called (torch raises IndexError).")
    causal = bool(tgt_is_causal) if tgt_is_causal is not None else False
    output = tgt
    for layer in layers:
        output = layer(output, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, causal,
                       memory_is_causal)
    if norm is not None:
        output = norm(output)
    return output


def check_transformer_inputs(src: Any, tgt: Any, d_model: int, batch_first: bool) -> None:
    """torch's ``Transformer.forward`` checks: the same batch size, features of size ``d_model``."""
    for name, value in (("src", src), ("tgt", tgt)):
        if not _is_array(value):
            raise TypeError(f"`{name}` must be an array, got {type(value).__name__}.")
    if src.ndim == 3:
        axis = 0 if batch_first else 1
        if tgt.ndim < 2 or tgt.shape[axis] != src.shape[axis]:
            raise ValueError(f"the batch number of src and tgt must be equal: `src` {tuple(src.shape)}, `tgt` "
                             f"{tuple(tgt.shape)} (batch_first={batch_first}).")
    if src.shape[-1] != d_model or tgt.shape[-1] != d_model:
        raise ValueError(f"the feature number of src and tgt must be equal to d_model (={d_model}), got `src` "
                         f"{tuple(src.shape)} and `tgt` {tuple(tgt.shape)}.")


def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> jax.Array:
    """torch's ``Transformer.generate_square_subsequent_mask``: ``(sz, sz)``, ``-inf`` above the
    diagonal, 0 elsewhere, float32 by default (a bool ``dtype``: True above the diagonal; an integer
    one raises TypeError, as torch raises)."""
    L.check_device(device, "generate_square_subsequent_mask")
    if not is_int(sz) or sz < 0:
        raise ValueError(f"`sz` must be a non-negative int, got {sz!r}.")
    dt = jnp.float32 if dtype is None else dtype
    if jnp.issubdtype(dt, jnp.integer):  # torch: "value cannot be converted to type int64_t without overflow"
        raise TypeError(f"`dtype` must be a floating or bool dtype (-inf has no integer value), got "
                        f"{jnp.dtype(dt).name}.")
    return jnp.triu(jnp.full((sz, sz), -jnp.inf, dt), 1)


def xavier_uniform(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """torch's ``xavier_uniform_`` (gain 1): ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``."""
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


# --- nnx modules ------------------------------------------------------------------------------------


def _mha_call(mha: MultiheadAttention) -> Callable[..., jax.Array]:
    def call(q: jax.Array, k: jax.Array, v: jax.Array, attn_mask: Any, kpm: Any, is_causal: bool) -> jax.Array:
        return mha(q, k, v, key_padding_mask=kpm, need_weights=False, attn_mask=attn_mask, is_causal=is_causal)[0]

    return call


def _clone(module: nnx.Module, index: int) -> nnx.Module:
    """torch's ``copy.deepcopy`` of a layer: the same parameter values; the copies' dropout streams
    are re-keyed by index (``fold_in``), so that the layers draw different masks as torch's do from
    its global generator."""
    copy = nnx.clone(module)
    for _, node in nnx.iter_graph(copy):
        if isinstance(node, nnx.RngStream):
            node.key.set_value(jax.random.fold_in(node.key.get_value(), index))
    return copy


_LAYER_ARGS = """
    Args:
      d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first, norm_first,
        bias: torch's, in torch's order. ``activation`` is ``'relu'``, ``'gelu'`` or a unary callable
        (``jaxnn.functional.relu`` by default, torch's ``F.relu``); ``bias=False`` drops the biases of
        the attention, the linear layers and the layer norms.
      device: must be None. dtype: the parameters' dtype (float32 by default).
      rngs: keyword-only; ``rngs.params()`` initialises the parameters; the ``dropout`` stream (or the
        default one) draws the dropout masks in training mode (needed only when ``dropout > 0``).
"""

_EVAL_NOTE = """
    Train/eval: a fresh module is in training mode (torch's default); ``model.eval()`` switches.
    Eval mode computes what torch computes in eval mode under ``torch.no_grad()``, its fast path
    included (see :mod:`jaxnn.nnx._transformer`): {fast}

    Differences from PyTorch: the dropout masks come from the ``dropout`` stream, not torch's
    generator. torch in eval mode WITH autograd on (a parameter requiring grad) takes the regular
    path, which differs from the fast path in the cases above; jaxnn follows ``no_grad``. Errors are
    ValueError/TypeError where torch raises AssertionError/RuntimeError. float16/bfloat16: the
    attention is :func:`jaxnn.functional.scaled_dot_product_attention`'s (weights times ``value``
    in float32, as torch's reference kernel), while torch's fused CPU attention kernels (taken in
    training and in eval mode alike) round the weights first, so outputs can differ from torch's by
    about one unit in the last place.
"""


class TransformerEncoderLayer(nnx.Module):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = F.relu, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: Any = None, dtype: Any = None, *,
                 rngs: nnx.Rngs):
        L.check_device(device, type(self).__name__)
        check_transformer_args(d_model, nhead, dim_feedforward)
        act, code = resolve_activation(activation)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype, rngs=rngs)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rngs=rngs)
        self.dropout = Dropout(dropout, rngs=rngs)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rngs=rngs)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, rngs=rngs)
        self.dropout2 = Dropout(dropout, rngs=rngs)
        self.activation_relu_or_gelu = code
        self.activation = act
        self.d_model, self.nhead, self.batch_first, self.bias = d_model, nhead, bool(batch_first), bool(bias)

    @property
    def training(self) -> bool:
        """torch's ``module.training`` (flax's ``model.train()`` / ``model.eval()`` switch it)."""
        return self.self_attn.training

    def _parts(self) -> Parts:
        return Parts(_mha_call(self.self_attn), self.linear1, self.dropout, self.linear2, self.norm1, self.norm2,
                     self.dropout1, self.dropout2, self.activation, self.activation_relu_or_gelu, self.nhead,
                     self.batch_first, self.norm_first, self.bias, self.linear1._layer.dtype)

    def __call__(self, src: jax.Array, src_mask: jax.Array | None = None,
                 src_key_padding_mask: jax.Array | None = None, is_causal: bool = False) -> jax.Array:
        return encoder_layer_forward(self._parts(), src, src_mask, src_key_padding_mask, is_causal, self.training)


TransformerEncoderLayer.__doc__ = (
    """``torch.nn.TransformerEncoderLayer``: self-attention and a feed-forward block, each with a
    residual connection and a layer norm (after it, or before it with ``norm_first``).

    .. math::
        x \\leftarrow \\mathrm{norm1}(x + \\mathrm{SA}(x)),\\quad
        x \\leftarrow \\mathrm{norm2}(x + W_2\\, \\mathrm{drop}(\\mathrm{act}(W_1 x + b_1)) + b_2)

    (``norm_first``: :math:`x \\leftarrow x + \\mathrm{SA}(\\mathrm{norm1}(x))`, then
    :math:`x \\leftarrow x + \\mathrm{FF}(\\mathrm{norm2}(x))`), with dropout after each block.
    """ + _LAYER_ARGS + """
    Call: ``(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``.
      src: ``(S, N, E)``, ``(N, S, E)`` with ``batch_first``, or unbatched ``(S, E)``.
      src_mask: ``(S, S)`` or ``(N * nhead, S, S)``; src_key_padding_mask: ``(N, S)`` (``(S,)``
        unbatched). Boolean masks: True = masked out; float masks are added to the scores (a
        boolean and a float mask together: torch's deprecation warning). is_causal: torch's hint
        that ``src_mask`` is causal (it needs ``src_mask``).

    Returns:
      the output, the shape of ``src``.

    Attributes:
      self_attn (:class:`MultiheadAttention`), linear1 ``(dim_feedforward, d_model)``, linear2
      ``(d_model, dim_feedforward)``, norm1, norm2 (:class:`LayerNorm`), dropout, dropout1, dropout2:
      torch's names, initialised as torch's.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> layer = jn.TransformerEncoderLayer(8, 2, 16, batch_first=True, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((3, 5, 8))).shape
      (3, 5, 8)
      >>> sorted(jn.state_dict(layer))[:3]
      ['linear1.bias', 'linear1.weight', 'linear2.bias']
    """ + _EVAL_NOTE.format(fast="batched ``batch_first`` input, ``bias``, a relu/gelu activation and an even "
                            "``nhead``. As torch's rule, relu/gelu means ``'relu'``/``'gelu'``, "
                            "``jaxnn.functional.relu``/``gelu`` or a ``ReLU``/``GELU`` module (the path then "
                            "applies exact relu/gelu, even for ``GELU(approximate='tanh')``); any other "
                            "callable (``jax.nn.relu``, a lambda) takes the regular path."))


class TransformerDecoderLayer(nnx.Module):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = F.relu, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: Any = None, dtype: Any = None, *,
                 rngs: nnx.Rngs):
        L.check_device(device, type(self).__name__)
        check_transformer_args(d_model, nhead, dim_feedforward)
        act, code = resolve_activation(activation)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype, rngs=rngs)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 dtype=dtype, rngs=rngs)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rngs=rngs)
        self.dropout = Dropout(dropout, rngs=rngs)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rngs=rngs)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, rngs=rngs)
        self.dropout2 = Dropout(dropout, rngs=rngs)
        self.dropout3 = Dropout(dropout, rngs=rngs)
        self.activation = act
        self._act_code = code
        self.d_model, self.nhead, self.batch_first, self.bias = d_model, nhead, bool(batch_first), bool(bias)

    @property
    def training(self) -> bool:
        """torch's ``module.training`` (flax's ``model.train()`` / ``model.eval()`` switch it)."""
        return self.self_attn.training

    def _parts(self) -> Parts:
        return Parts(_mha_call(self.self_attn), self.linear1, self.dropout, self.linear2, self.norm1, self.norm2,
                     self.dropout1, self.dropout2, self.activation, self._act_code, self.nhead, self.batch_first,
                     self.norm_first, self.bias, self.linear1._layer.dtype, _mha_call(self.multihead_attn),
                     self.norm3, self.dropout3)

    def __call__(self, tgt: jax.Array, memory: jax.Array, tgt_mask: jax.Array | None = None,
                 memory_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
                 memory_key_padding_mask: jax.Array | None = None, tgt_is_causal: bool = False,
                 memory_is_causal: bool = False) -> jax.Array:
        return decoder_layer_forward(self._parts(), tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                                     memory_key_padding_mask, tgt_is_causal, memory_is_causal, self.training)


TransformerDecoderLayer.__doc__ = (
    """``torch.nn.TransformerDecoderLayer``: self-attention, cross-attention over ``memory`` and a
    feed-forward block, each with a residual connection and a layer norm (after it, or before it
    with ``norm_first``).

    .. math::
        x \\leftarrow \\mathrm{norm1}(x + \\mathrm{SA}(x)),\\quad
        x \\leftarrow \\mathrm{norm2}(x + \\mathrm{MHA}(x, m)),\\quad
        x \\leftarrow \\mathrm{norm3}(x + \\mathrm{FF}(x))
    """ + _LAYER_ARGS + """
    Call: ``(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``.
      tgt: ``(T, N, E)`` (``(N, T, E)`` with ``batch_first``, ``(T, E)`` unbatched); memory:
      ``(S, N, E)`` alike. tgt_mask ``(T, T)`` or ``(N * nhead, T, T)``; memory_mask ``(T, S)`` or
      ``(N * nhead, T, S)``; key padding masks ``(N, T)`` / ``(N, S)``. Masks as
      :class:`TransformerEncoderLayer`'s.

    Returns:
      the output, the shape of ``tgt``.

    Attributes:
      self_attn, multihead_attn (:class:`MultiheadAttention`), linear1, linear2, norm1, norm2,
      norm3, dropout, dropout1, dropout2, dropout3: torch's names.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> layer = jn.TransformerDecoderLayer(8, 2, 16, batch_first=True, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8))).shape
      (3, 5, 8)
    """ + _EVAL_NOTE.format(fast="the self-attention's (batched ``batch_first`` input, ``bias``, an even "
                            "``nhead``, no float ``tgt`` mask)."))


class TransformerEncoder(nnx.Module):
    """``torch.nn.TransformerEncoder``: ``num_layers`` copies of ``encoder_layer`` applied in turn,
    then ``norm`` (if any).

    As torch's, the copies start with the SAME parameter values (torch deep-copies the layer;
    re-initialise them yourself if you want otherwise); their dropout streams are re-keyed per copy.

    Args:
      encoder_layer: the layer to copy (a :class:`TransformerEncoderLayer`, or any nnx module called
        as ``layer(src, src_mask=..., is_causal=..., src_key_padding_mask=...)``).
      num_layers: the number of copies (a non-negative int; torch accepts 0, and so does jaxnn, but
        such an encoder cannot be called).
      norm: a module applied to the output (``encoder.norm``), or None.
      enable_nested_tensor: torch's switch for its nested-tensor path (eval mode with a key padding
        mask: outputs 0 at the padded positions, before ``norm``). When the layer does not allow it
        (not a TransformerEncoderLayer, ``norm_first``, not ``batch_first``, ``bias=False``, another
        activation, odd ``nhead``), torch's warning, and ``use_nested_tensor`` is False.
      mask_check: check that the padding is left-aligned before taking the nested path (torch's);
        without it, each sequence is taken to be its first ``count(not padded)`` positions.

    Call: ``(src, mask=None, src_key_padding_mask=None, is_causal=None)``, shapes as
      :class:`TransformerEncoderLayer`'s. ``is_causal=None``: torch detects a causal ``mask`` only
      to pick a kernel; here the mask is applied as given (the same numbers).

    Returns:
      the output, the shape of ``src``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> layer = jn.TransformerEncoderLayer(8, 2, 16, batch_first=True, rngs=nnx.Rngs(0))
      >>> enc = jn.TransformerEncoder(layer, 2, norm=jn.LayerNorm(8))
      >>> sorted(k for k in jn.state_dict(enc) if k.endswith("in_proj_weight"))
      ['layers.0.self_attn.in_proj_weight', 'layers.1.self_attn.in_proj_weight']
      >>> enc.eval()
      >>> x = jnp.ones((3, 5, 8))
      >>> pad = jnp.arange(5)[None, :] >= jnp.array([[4], [5], [3]])  # (N, S): True = padding
      >>> bool((enc.layers[1](x)[0, 4] != 0).any()), bool((enc(x, src_key_padding_mask=pad)[0, 4] == 0).all())
      (True, True)

    Differences from PyTorch: the eval-mode numbers are torch's under ``torch.no_grad()`` (see
    :class:`TransformerEncoderLayer`); the nested path applies with autograd on, too.
    """

    def __init__(self, encoder_layer: nnx.Module, num_layers: int, norm: nnx.Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        n = check_num_layers(num_layers)
        self.layers = ModuleList([_clone(encoder_layer, i) for i in range(n)])
        self.num_layers = n
        self.norm = norm
        self.enable_nested_tensor = bool(enable_nested_tensor)
        self.use_nested_tensor = warn_nested(enable_nested_tensor, encoder_layer, stacklevel=6)
        self.mask_check = bool(mask_check)

    @property
    def training(self) -> bool:
        """torch's ``module.training`` of the first layer (which decides the nested path)."""
        return bool(getattr(self.layers[0], "training", True)) if len(self.layers) else True

    def __call__(self, src: jax.Array, mask: jax.Array | None = None,
                 src_key_padding_mask: jax.Array | None = None, is_causal: bool | None = None) -> jax.Array:
        def call(m: Any) -> Callable[..., jax.Array]:
            return lambda x, msk, kpm, causal: m(x, src_mask=msk, is_causal=causal, src_key_padding_mask=kpm)

        return encoder_forward([call(m) for m in self.layers], self.norm, self.use_nested_tensor, self.mask_check,
                               self.training, src, mask, src_key_padding_mask, is_causal)


class TransformerDecoder(nnx.Module):
    """``torch.nn.TransformerDecoder``: ``num_layers`` copies of ``decoder_layer`` applied in turn
    (each attending to ``memory``), then ``norm`` (if any). The copies start with the same
    parameter values, as torch's deep copies.

    Args:
      decoder_layer: the layer to copy (a :class:`TransformerDecoderLayer` or a module with its call).
      num_layers: the number of copies. norm: a module applied to the output, or None.

    Call: ``(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
      memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False)``, as
      :class:`TransformerDecoderLayer`'s (``tgt_is_causal=None``: the mask is applied as given).

    Returns:
      the output, the shape of ``tgt``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> dec = jn.TransformerDecoder(jn.TransformerDecoderLayer(8, 2, 16, batch_first=True, rngs=nnx.Rngs(0)), 2)
      >>> tgt, memory = jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8))
      >>> mask = jn.Transformer.generate_square_subsequent_mask(5)
      >>> dec(tgt, memory, tgt_mask=mask).shape
      (3, 5, 8)
    """

    def __init__(self, decoder_layer: nnx.Module, num_layers: int, norm: nnx.Module | None = None):
        n = check_num_layers(num_layers)
        self.layers = ModuleList([_clone(decoder_layer, i) for i in range(n)])
        self.num_layers = n
        self.norm = norm

    def __call__(self, tgt: jax.Array, memory: jax.Array, tgt_mask: jax.Array | None = None,
                 memory_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
                 memory_key_padding_mask: jax.Array | None = None, tgt_is_causal: bool | None = None,
                 memory_is_causal: bool = False) -> jax.Array:
        def call(m: Any) -> Callable[..., jax.Array]:
            return lambda x, mem, tm, mm, tk, mk, tc, mc: m(x, mem, tgt_mask=tm, memory_mask=mm,
                                                           tgt_key_padding_mask=tk, memory_key_padding_mask=mk,
                                                           tgt_is_causal=tc, memory_is_causal=mc)

        return decoder_forward([call(m) for m in self.layers], self.norm, tgt, memory, tgt_mask, memory_mask,
                               tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal, memory_is_causal)


class Transformer(nnx.Module):
    """``torch.nn.Transformer``: a :class:`TransformerEncoder` (``num_encoder_layers`` layers and a
    final LayerNorm) and a :class:`TransformerDecoder` (``num_decoder_layers`` layers and a final
    LayerNorm), or the given ``custom_encoder`` / ``custom_decoder``.

    Initialisation as torch's ``_reset_parameters``: after building, every parameter with more than
    one dimension (custom encoder/decoder included) is redrawn with ``xavier_uniform``; biases and
    norms keep the layers' initial values (the same in every copy).

    Args:
      d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout, activation,
        custom_encoder, custom_decoder, layer_norm_eps, batch_first, norm_first, bias: torch's, in
        torch's order (see :class:`TransformerEncoderLayer`). Like torch's, the default encoder warns
        that ``enable_nested_tensor`` is off unless ``batch_first`` (and the rest of its conditions).
      device: must be None. dtype: the parameters' dtype.
      rngs: keyword-only: ``params`` initialise, ``dropout`` draws the masks in training mode.

    Call: ``(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
      tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None,
      tgt_is_causal=None, memory_is_causal=False)``: src ``(S, N, E)``, tgt ``(T, N, E)`` (batch
      first with ``batch_first``; unbatched without ``N``). The encoder's output is the decoder's
      ``memory``.

    Returns:
      ``(T, N, E)`` (the shape of ``tgt``).

    Raises:
      ValueError: the batch sizes of ``src`` and ``tgt`` differ, or their features are not ``d_model``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> import jaxnn.nnx as jn
      >>> model = jn.Transformer(8, 2, 1, 1, 16, batch_first=True, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8))).shape
      (3, 5, 8)

    Differences from PyTorch: as :class:`TransformerEncoderLayer`'s.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1, activation: Activation = F.relu,
                 custom_encoder: Any | None = None, custom_decoder: Any | None = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, rngs: nnx.Rngs):
        L.check_device(device, type(self).__name__)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                            batch_first, norm_first, bias, dtype=dtype, rngs=rngs)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
            self.encoder = _encoder_from(layer, num_encoder_layers, norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            dlayer = TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                                             batch_first, norm_first, bias, dtype=dtype, rngs=rngs)
            dnorm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
            self.decoder = TransformerDecoder(dlayer, num_decoder_layers, dnorm)
        for _, node in nnx.iter_graph(self):  # torch's _reset_parameters
            if isinstance(node, nnx.Param) and node.get_value().ndim > 1:
                value = node.get_value()
                node.set_value(xavier_uniform(rngs.params(), value.shape, value.dtype))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, bool(batch_first)

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)

    def __call__(self, src: jax.Array, tgt: jax.Array, src_mask: jax.Array | None = None,
                 tgt_mask: jax.Array | None = None, memory_mask: jax.Array | None = None,
                 src_key_padding_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
                 memory_key_padding_mask: jax.Array | None = None, src_is_causal: bool | None = None,
                 tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> jax.Array:
        check_transformer_inputs(src, tgt, self.d_model, self.batch_first)
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)


def _encoder_from(layer: TransformerEncoderLayer, num_layers: int, norm: LayerNorm) -> TransformerEncoder:
    """The default encoder of ``Transformer``, warning (as torch's) from the caller's frame."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder = TransformerEncoder(layer, num_layers, norm)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=6)
    return encoder
