"""flax.linen transformer layers with torch.nn's constructor fields and forward arguments:
``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder``,
``TransformerDecoder``, ``Transformer``. The same forward code as :mod:`jaxnn.nnx`'s (see
:mod:`jaxnn.nnx._transformer` for the formulas, shapes and torch's eval-mode fast path); parameters
are in ``params`` under torch's names (``self_attn.in_proj_weight``, ``linear1.weight``,
``layers.0.norm2.bias``, ``encoder.norm.weight``, ...).

Train/eval: ``deterministic`` (a keyword-only field or call argument, the call wins; None means
training, torch's default); dropout draws ``make_rng("dropout")``.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> import jaxnn.linen as jl
  >>> layer = jl.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
  >>> encoder = jl.TransformerEncoder(layer, 2)
  >>> x = jnp.ones((3, 5, 8))
  >>> variables = encoder.init(jax.random.key(0), x)
  >>> encoder.apply(variables, x, deterministic=True).shape
  (3, 5, 8)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
from flax.core.scope import Scope

from .. import _layers as L
from .. import functional as F
from ..functional._dropout import check_dropout_p
from ..nnx import _transformer as T
from ._modules import Dropout, LayerNorm, Linear, MultiheadAttention


def _training(call: bool | None, field: bool | None) -> bool:
    return not (call if call is not None else field if field is not None else False)


def _user_built(module: nn.Module) -> bool:
    """True when the user constructs the module (not flax's clones inside init/apply, nor a parent's setup)."""
    return not isinstance(module.parent, (Scope, nn.Module))


def _mha_call(mha: MultiheadAttention, deterministic: bool) -> Callable[..., jax.Array]:
    def call(q: jax.Array, k: jax.Array, v: jax.Array, attn_mask: Any, kpm: Any, is_causal: bool) -> jax.Array:
        return mha(q, k, v, key_padding_mask=kpm, need_weights=False, attn_mask=attn_mask, is_causal=is_causal,
                   deterministic=deterministic)[0]

    return call


def _drop(d: Dropout, deterministic: bool) -> Callable[[jax.Array], jax.Array]:
    return lambda x: d(x, deterministic=deterministic)


class _LayerBase(nn.Module):
    d_model: int
    nhead: int
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: T.Activation = F.relu
    layer_norm_eps: float = 1e-5
    batch_first: bool = False
    norm_first: bool = False
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        L.check_device(self.device, type(self).__name__)
        T.check_transformer_args(self.d_model, self.nhead, self.dim_feedforward)
        T.resolve_activation(self.activation)
        check_dropout_p(self.dropout)
        super().__post_init__()

    def _common(self) -> None:
        E, b, dt = self.d_model, self.bias, self.dtype
        self.self_attn = MultiheadAttention(E, self.nhead, self.dropout, b, batch_first=self.batch_first, dtype=dt)
        self.linear1 = Linear(E, self.dim_feedforward, b, dtype=dt)
        self.ff_dropout = Dropout(self.dropout)  # torch's `dropout` (no variables; the field has the name)
        self.linear2 = Linear(self.dim_feedforward, E, b, dtype=dt)
        self.norm1 = LayerNorm(E, self.layer_norm_eps, bias=b, dtype=dt)
        self.norm2 = LayerNorm(E, self.layer_norm_eps, bias=b, dtype=dt)
        self.dropout1 = Dropout(self.dropout)
        self.dropout2 = Dropout(self.dropout)

    def _parts(self, det: bool, **extra: Any) -> T.Parts:
        act, code = T.resolve_activation(self.activation)
        return T.Parts(_mha_call(self.self_attn, det), self.linear1, _drop(self.ff_dropout, det), self.linear2,
                       self.norm1, self.norm2, _drop(self.dropout1, det), _drop(self.dropout2, det), act, code,
                       self.nhead, self.batch_first, self.norm_first, self.bias, L.param_dtype(self.dtype), **extra)


class TransformerEncoderLayer(_LayerBase):
    """``torch.nn.TransformerEncoderLayer`` for flax.linen: fields are torch's arguments in torch's
    order, then keyword-only ``deterministic``. Called as ``(src, src_mask=None,
    src_key_padding_mask=None, is_causal=False, *, deterministic=None)``. As
    :class:`jaxnn.nnx.TransformerEncoderLayer` (formula, shapes, eval-mode fast path), with the key
    going to ``init``; params ``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> layer = jl.TransformerEncoderLayer(8, 2, 16, batch_first=True)
      >>> x = jnp.ones((3, 5, 8))
      >>> variables = layer.init(jax.random.key(0), x, deterministic=True)
      >>> sorted(variables["params"])
      ['linear1', 'linear2', 'norm1', 'norm2', 'self_attn']
      >>> layer.apply(variables, x, rngs={"dropout": jax.random.key(1)}).shape
      (3, 5, 8)
    """

    def setup(self) -> None:
        self._common()

    def __call__(self, src: jax.Array, src_mask: jax.Array | None = None,
                 src_key_padding_mask: jax.Array | None = None, is_causal: bool = False, *,
                 deterministic: bool | None = None) -> jax.Array:
        training = _training(deterministic, self.deterministic)
        return T.encoder_layer_forward(self._parts(not training), src, src_mask, src_key_padding_mask, is_causal,
                                       training)


class TransformerDecoderLayer(_LayerBase):
    """``torch.nn.TransformerDecoderLayer`` for flax.linen: fields are torch's arguments in torch's
    order, then keyword-only ``deterministic``. Called as ``(tgt, memory, tgt_mask=None,
    memory_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=False,
    memory_is_causal=False, *, deterministic=None)``. As :class:`jaxnn.nnx.TransformerDecoderLayer`;
    params ``self_attn``, ``multihead_attn``, ``linear1``, ``linear2``, ``norm1``..``norm3``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> layer = jl.TransformerDecoderLayer(8, 2, 16, batch_first=True)
      >>> tgt, memory = jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8))
      >>> variables = layer.init(jax.random.key(0), tgt, memory, deterministic=True)
      >>> layer.apply(variables, tgt, memory, deterministic=True).shape
      (3, 5, 8)
    """

    def setup(self) -> None:
        self._common()
        self.multihead_attn = MultiheadAttention(self.d_model, self.nhead, self.dropout, self.bias,
                                                 batch_first=self.batch_first, dtype=self.dtype)
        self.norm3 = LayerNorm(self.d_model, self.layer_norm_eps, bias=self.bias, dtype=self.dtype)
        self.dropout3 = Dropout(self.dropout)

    def __call__(self, tgt: jax.Array, memory: jax.Array, tgt_mask: jax.Array | None = None,
                 memory_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
                 memory_key_padding_mask: jax.Array | None = None, tgt_is_causal: bool = False,
                 memory_is_causal: bool = False, *, deterministic: bool | None = None) -> jax.Array:
        training = _training(deterministic, self.deterministic)
        det = not training
        parts = self._parts(det, multihead_attn=_mha_call(self.multihead_attn, det), norm3=self.norm3,
                            dropout3=_drop(self.dropout3, det))
        return T.decoder_layer_forward(parts, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                                       memory_key_padding_mask, tgt_is_causal, memory_is_causal, training)


def _ours(module: Any) -> bool:
    return isinstance(module, (TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
                               TransformerDecoder))


def _call(module: Any, det: bool | None, *args: Any, **kwargs: Any) -> Any:
    """Call a child, passing ``deterministic`` on to jaxnn's transformer modules (a custom module is
    called with torch's arguments only)."""
    return module(*args, **kwargs, deterministic=det) if _ours(module) else module(*args, **kwargs)


def _replicate_init(module: nn.Module, count: int) -> None:
    """torch's deep copies: during ``init``, every copy gets the first one's parameter values."""
    if count < 2 or not module.is_initializing() or not module.has_variable("params", "layers"):
        return
    tree = module.get_variable("params", "layers")
    module.put_variable("params", "layers", {str(i): tree["0"] for i in range(count)})


class _Stack(nn.Module):
    """The ``layers`` of an encoder/decoder: copies of one layer, named ``0``, ``1``, ... as torch's ModuleList."""

    layer: nn.Module
    num_layers: int

    def setup(self) -> None:
        self._children = [self.layer.clone(parent=self, name=str(i)) for i in range(self.num_layers)]

    def __getitem__(self, index: int) -> nn.Module:
        return self._children[index]

    def __len__(self) -> int:
        return self.num_layers


class TransformerEncoder(nn.Module):
    """``torch.nn.TransformerEncoder`` for flax.linen: fields ``(encoder_layer, num_layers,
    norm=None, enable_nested_tensor=True, mask_check=True)`` as torch's, then keyword-only
    ``deterministic``. Called as ``(src, mask=None, src_key_padding_mask=None, is_causal=None, *,
    deterministic=None)``. As :class:`jaxnn.nnx.TransformerEncoder`: ``init`` gives every copy the
    first copy's initial values (torch's deep copies); params ``layers.0...``, ``norm``. torch's
    ``enable_nested_tensor`` warning is given when the module is built outside a linen module (not
    again in the clones flax makes in ``init`` / ``apply``, nor inside a parent's ``setup``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> enc = jl.TransformerEncoder(jl.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
      ...                             norm=jl.LayerNorm(8))
      >>> x = jnp.ones((3, 5, 8))
      >>> v = enc.init(jax.random.key(0), x, deterministic=True)
      >>> layers = v["params"]["layers"]
      >>> bool((layers["0"]["linear1"]["weight"] == layers["1"]["linear1"]["weight"]).all())
      True
      >>> sorted(jl.state_dict(v))[-2:]
      ['norm.bias', 'norm.weight']
    """

    encoder_layer: nn.Module
    num_layers: int
    norm: nn.Module | None = None
    enable_nested_tensor: bool = True
    mask_check: bool = True
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        T.check_num_layers(self.num_layers)
        super().__post_init__()
        if _user_built(self):
            T.warn_nested(self.enable_nested_tensor, self.encoder_layer, stacklevel=5)

    @property
    def use_nested_tensor(self) -> bool:
        """torch's ``use_nested_tensor``: ``enable_nested_tensor`` and a layer that allows it."""
        return bool(self.enable_nested_tensor) and not T.nested_tensor_reason(self.encoder_layer)

    def setup(self) -> None:
        self.layers = _Stack(self.encoder_layer, self.num_layers)

    def __call__(self, src: jax.Array, mask: jax.Array | None = None,
                 src_key_padding_mask: jax.Array | None = None, is_causal: bool | None = None, *,
                 deterministic: bool | None = None) -> jax.Array:
        det = deterministic if deterministic is not None else self.deterministic
        training = _training(det, getattr(self.encoder_layer, "deterministic", None))

        def call(m: Any) -> Callable[..., jax.Array]:
            return lambda x, msk, kpm, causal: _call(m, det, x, src_mask=msk, is_causal=causal,
                                                     src_key_padding_mask=kpm)

        layers = [call(self.layers[i]) for i in range(self.num_layers)]
        out = T.encoder_forward(layers, self.norm, self.use_nested_tensor, self.mask_check, training, src, mask,
                                src_key_padding_mask, is_causal)
        _replicate_init(self, self.num_layers)
        return out


class TransformerDecoder(nn.Module):
    """``torch.nn.TransformerDecoder`` for flax.linen: fields ``(decoder_layer, num_layers,
    norm=None)``, then keyword-only ``deterministic``. Called as ``(tgt, memory, tgt_mask=None,
    memory_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None,
    memory_is_causal=False, *, deterministic=None)``. As :class:`jaxnn.nnx.TransformerDecoder`
    (copies with the same initial values).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> dec = jl.TransformerDecoder(jl.TransformerDecoderLayer(8, 2, 16, batch_first=True), 2)
      >>> tgt, memory = jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8))
      >>> v = dec.init(jax.random.key(0), tgt, memory, deterministic=True)
      >>> dec.apply(v, tgt, memory, deterministic=True).shape
      (3, 5, 8)
    """

    decoder_layer: nn.Module
    num_layers: int
    norm: nn.Module | None = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        T.check_num_layers(self.num_layers)
        super().__post_init__()

    def setup(self) -> None:
        self.layers = _Stack(self.decoder_layer, self.num_layers)

    def __call__(self, tgt: jax.Array, memory: jax.Array, tgt_mask: jax.Array | None = None,
                 memory_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
                 memory_key_padding_mask: jax.Array | None = None, tgt_is_causal: bool | None = None,
                 memory_is_causal: bool = False, *, deterministic: bool | None = None) -> jax.Array:
        det = deterministic if deterministic is not None else self.deterministic

        def call(m: Any) -> Callable[..., jax.Array]:
            return lambda x, mem, tm, mm, tk, mk, tc, mc: _call(m, det, x, mem, tgt_mask=tm, memory_mask=mm,
                                                                tgt_key_padding_mask=tk,
                                                                memory_key_padding_mask=mk, tgt_is_causal=tc,
                                                                memory_is_causal=mc)

        layers = [call(self.layers[i]) for i in range(self.num_layers)]
        out = T.decoder_forward(layers, self.norm, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                                memory_key_padding_mask, tgt_is_causal, memory_is_causal)
        _replicate_init(self, self.num_layers)
        return out


class Transformer(nn.Module):
    """``torch.nn.Transformer`` for flax.linen: fields are torch's arguments in torch's order
    (``custom_encoder`` / ``custom_decoder`` are linen modules or None), then keyword-only
    ``deterministic``. Called with torch's forward arguments plus keyword-only ``deterministic``.
    As :class:`jaxnn.nnx.Transformer`: ``init`` redraws every parameter with more than one
    dimension with ``xavier_uniform`` (torch's ``_reset_parameters``); params ``encoder``,
    ``decoder``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import jaxnn.linen as jl
      >>> model = jl.Transformer(8, 2, 1, 1, 16, batch_first=True)
      >>> src, tgt = jnp.ones((3, 5, 8)), jnp.ones((3, 5, 8))
      >>> v = model.init(jax.random.key(0), src, tgt, deterministic=True)
      >>> model.apply(v, src, tgt, deterministic=True).shape
      (3, 5, 8)
    """

    d_model: int = 512
    nhead: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: T.Activation = F.relu
    custom_encoder: Any | None = None
    custom_decoder: Any | None = None
    layer_norm_eps: float = 1e-5
    batch_first: bool = False
    norm_first: bool = False
    bias: bool = True
    device: Any = None
    dtype: Any = None
    _: dataclasses.KW_ONLY
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        L.check_device(self.device, type(self).__name__)
        T.check_transformer_args(self.d_model, self.nhead, self.dim_feedforward)
        T.resolve_activation(self.activation)
        check_dropout_p(self.dropout)
        T.check_num_layers(self.num_encoder_layers)
        T.check_num_layers(self.num_decoder_layers)
        super().__post_init__()
        if _user_built(self) and self.custom_encoder is None:
            T.warn_nested(True, self._encoder_layer(), stacklevel=5)

    def _encoder_layer(self) -> TransformerEncoderLayer:
        return TransformerEncoderLayer(self.d_model, self.nhead, self.dim_feedforward, self.dropout, self.activation,
                                       self.layer_norm_eps, self.batch_first, self.norm_first, self.bias,
                                       dtype=self.dtype, parent=None)

    def setup(self) -> None:
        if self.custom_encoder is not None:
            # a fresh copy, named `encoder` as in torch (the field itself is adopted as `custom_encoder`)
            self.encoder = self.custom_encoder.clone(parent=None, name=None, _deep_clone=True)
        else:
            norm = LayerNorm(self.d_model, self.layer_norm_eps, bias=self.bias, dtype=self.dtype, parent=None)
            self.encoder = TransformerEncoder(self._encoder_layer(), self.num_encoder_layers, norm)
        if self.custom_decoder is not None:
            self.decoder = self.custom_decoder.clone(parent=None, name=None, _deep_clone=True)
        else:
            layer = TransformerDecoderLayer(self.d_model, self.nhead, self.dim_feedforward, self.dropout,
                                            self.activation, self.layer_norm_eps, self.batch_first, self.norm_first,
                                            self.bias, dtype=self.dtype, parent=None)
            norm = LayerNorm(self.d_model, self.layer_norm_eps, bias=self.bias, dtype=self.dtype, parent=None)
            self.decoder = TransformerDecoder(layer, self.num_decoder_layers, norm)

    generate_square_subsequent_mask = staticmethod(T.generate_square_subsequent_mask)

    def __call__(self, src: jax.Array, tgt: jax.Array, src_mask: jax.Array | None = None,
                 tgt_mask: jax.Array | None = None, memory_mask: jax.Array | None = None,
                 src_key_padding_mask: jax.Array | None = None, tgt_key_padding_mask: jax.Array | None = None,
                 memory_key_padding_mask: jax.Array | None = None, src_is_causal: bool | None = None,
                 tgt_is_causal: bool | None = None, memory_is_causal: bool = False, *,
                 deterministic: bool | None = None) -> jax.Array:
        T.check_transformer_inputs(src, tgt, self.d_model, self.batch_first)
        det = deterministic if deterministic is not None else self.deterministic
        memory = _call(self.encoder, det, src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                       is_causal=src_is_causal)
        out = _call(self.decoder, det, tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                    tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                    tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.is_initializing():  # torch's _reset_parameters: xavier_uniform on every >1-D parameter
            key = self.make_rng("params")
            for name in ("encoder", "decoder"):
                if self.has_variable("params", name):
                    tree = self.get_variable("params", name)
                    leaves, treedef = jax.tree_util.tree_flatten(tree)
                    keys = jax.random.split(jax.random.fold_in(key, name == "decoder"), max(len(leaves), 1))
                    leaves = [T.xavier_uniform(k, x.shape, x.dtype) if x.ndim > 1 else x
                              for k, x in zip(keys, leaves, strict=False)]
                    self.put_variable("params", name, jax.tree_util.tree_unflatten(treedef, leaves))
        return out

