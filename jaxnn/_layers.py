"""What a torch layer is, independent of the Flax front end: one description per layer.

A description (a subclass of :class:`Layer`, a frozen dataclass) holds

- the layer's configuration, validated and canonicalised once at construction by the same helpers
  the :mod:`jaxnn.functional` op uses (one place per rule, one wording);
- its named variables (:meth:`Layer.variables`): each a :class:`Var` with a shape, an initialiser
  that reproduces torch's ``reset_parameters`` and a kind: ``"parameter"``, ``"buffer"``
  (persistent: in the state_dict, like ``running_mean``), ``"nonpersistent"`` (not in it) or
  ``"frozen"`` (a parameter with ``requires_grad=False``: in the state_dict, not trained);
- its apply function (:meth:`Layer.apply`), which calls :mod:`jaxnn.functional` and returns the
  output and the new values of any buffers it updates.

:mod:`jaxnn.nnx` and :mod:`jaxnn.linen` are thin generic adapters over these descriptions, so both
front ends create identical variables from the same key and compute with the same function.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp

from . import functional as F
from ._utils import canonical_dim, is_int, positive_tuple
from .functional._batchnorm import _batch_norm
from .functional._conv import conv_arguments
from .functional._dropout import check_dropout_p

Kind = Literal["parameter", "buffer", "nonpersistent", "frozen"]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
Approximate = Literal["none", "tanh"]
Values = Mapping[str, Any]

# --- initialisers: torch's reset_parameters ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Uniform:
    """``U(-bound, bound)``: torch's ``kaiming_uniform_(a=sqrt(5))`` weights and fan-in biases."""

    bound: float
    random: ClassVar[bool] = True

    def __call__(self, key: jax.Array | None, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return jax.random.uniform(_need_key(key), shape, dtype, -self.bound, self.bound)


@dataclasses.dataclass(frozen=True)
class Normal:
    """``N(0, std^2)`` (torch's ``nn.Embedding`` weight: ``normal_()``)."""

    std: float = 1.0
    zero_row: int | None = None  # nn.Embedding's padding_idx row, zeroed after the draw
    random: ClassVar[bool] = True

    def __call__(self, key: jax.Array | None, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        out = self.std * jax.random.normal(_need_key(key), shape, dtype)
        return out if self.zero_row is None else out.at[self.zero_row].set(0)


@dataclasses.dataclass(frozen=True)
class Constant:
    """A constant fill: ``ones_``, ``zeros_``, PReLU's ``init``, a zero counter."""

    value: float
    random: ClassVar[bool] = False

    def __call__(self, key: jax.Array | None, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return jnp.full(shape, self.value, dtype)


@dataclasses.dataclass(frozen=True, eq=False)
class Given:
    """A given initial value (``nn.Embedding(_weight=...)``, ``from_pretrained``), as it is."""

    value: Any
    random: ClassVar[bool] = False

    def __call__(self, key: jax.Array | None, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return jnp.asarray(self.value)


Init = Uniform | Normal | Constant | Given
ZEROS, ONES = Constant(0.0), Constant(1.0)


def _need_key(key: jax.Array | None) -> jax.Array:
    if key is None:
        raise TypeError("a random initialiser needs a PRNG key.")
    return key


@dataclasses.dataclass(frozen=True)
class Var:
    """One named variable of a layer. ``dtype=None``: the layer's parameter dtype."""

    shape: tuple[int, ...]
    init: Init
    kind: Kind = "parameter"
    dtype: Any = None


def counter_dtype() -> Any:
    """``num_batches_tracked``: int64 in torch; int32 here unless ``jax_enable_x64`` is on."""
    return jnp.int64 if jax.config.read("jax_enable_x64") else jnp.int32


# --- shared argument checks -------------------------------------------------------------------------


def param_dtype(dtype: Any) -> Any:
    """torch's ``dtype=`` constructor argument: the parameters' dtype; ``None`` is torch's default
    float32. (Flax's computation dtype is jaxnn's keyword-only ``compute_dtype``.)"""
    if dtype is None:
        return jnp.dtype(jnp.float32)
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"`dtype` must be a JAX/NumPy floating dtype such as jnp.bfloat16, got {dtype!r}."
        ) from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"`dtype` must be a floating dtype (parameters are real-valued), got {dt}.")
    return dt


def check_device(device: Any, owner: str) -> None:
    """torch's ``device=`` constructor argument: only ``None`` is accepted.

    JAX places arrays itself: build the module under ``with jax.default_device(d):``, or move its
    state afterwards with ``jax.device_put`` (or shard it); a torch device name means nothing here.
    """
    if device is not None:
        raise ValueError(
            f"{owner}: `device` must be None, got {device!r}. JAX places arrays itself: construct the "
            "module under `with jax.default_device(d):` or move its state with `jax.device_put`."
        )


def _count(value: Any, name: str, *, positive: bool) -> int:
    if not is_int(value) or value < (1 if positive else 0):
        raise ValueError(f"`{name}` must be a {'positive' if positive else 'non-negative'} int, got {value!r}.")
    return int(value)


def promote(dtype: Any, *arrays: Any) -> list[Any]:
    """Flax's dtype policy: cast to ``dtype``, or to the arrays' common dtype when ``None``."""
    present = [a for a in arrays if a is not None]
    target = dtype if dtype is not None else jnp.result_type(*present)
    return [None if a is None else jnp.asarray(a, target) for a in arrays]


def norm_operands(dtype: Any, input: Any, weight: Any, bias: Any) -> list[Any]:
    """:func:`promote` for GroupNorm/LayerNorm, except that float16/bfloat16 input with float32
    parameters (torch's default module with half input) goes to the function as it is: torch's
    mixed-precision kernel, output in the input's dtype."""
    half = jnp.result_type(input) in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
    params = [p for p in (weight, bias) if p is not None]
    if dtype is None and half and params and all(jnp.result_type(p) == jnp.float32 for p in params):
        return [input, weight, bias]
    return promote(dtype, input, weight, bias)


def validate_call(fn: Callable[..., Any], **kwargs: Any) -> None:
    """Run ``fn``'s own argument checks abstractly (nothing is computed or compiled), so that a bad
    constructor argument, e.g. ``approximate='fast'``, raises the op's error in the constructor."""
    jax.eval_shape(lambda x: fn(x, **kwargs), jax.ShapeDtypeStruct((2, 2), jnp.float32))


# --- the description --------------------------------------------------------------------------------


def _set(obj: Any, **values: Any) -> None:
    for k, v in values.items():
        object.__setattr__(obj, k, v)


@dataclasses.dataclass(frozen=True)
class Layer:
    """Base of the layer descriptions. Subclasses are frozen dataclasses whose ``__post_init__``
    validates and canonicalises the configuration (torch's constructor checks)."""

    # The front ends' train/eval switch for this layer (flax's names), or None if it has none.
    mode_attribute: ClassVar[str | None] = None
    # True if apply draws random numbers in training (the `dropout` stream).
    stochastic: ClassVar[bool] = False

    def variables(self) -> dict[str, Var | None]:
        """Torch's parameters and buffers by name, in torch's order; ``None`` where torch
        registers the name as ``None`` (``bias=False``)."""
        return {}

    def attributes(self) -> dict[str, Any]:
        """The torch attributes a module exposes (``conv.stride``, ``bn.momentum``, ...)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def dtype(self) -> Any:
        """The parameters' dtype: ``param_dtype`` (torch's ``dtype=``, canonicalised by the
        subclass) where the layer has one, else float32."""
        return getattr(self, "param_dtype", jnp.dtype(jnp.float32))

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The forward pass: ``(output, {buffer name: new value})``."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Conv(Layer):
    """``nn.Conv{n}d`` and ``nn.ConvTranspose{n}d``."""

    n: int
    transposed: bool
    in_channels: int
    out_channels: int
    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    bias: bool = True
    padding_mode: PaddingMode = "zeros"
    output_padding: Any = 0
    param_dtype: Any = None
    channels_last: bool = False
    compute_dtype: Any = None
    precision: Any = None

    def __post_init__(self) -> None:
        a = conv_arguments(self.n, self.stride, self.padding, self.dilation, self.groups, self.padding_mode,
                           self.output_padding, transposed=self.transposed)
        for name in ("in_channels", "out_channels"):
            _count(getattr(self, name), name, positive=True)
        if self.in_channels % a.groups:
            raise ValueError(f"`in_channels` (={self.in_channels}) must be divisible by `groups` (={a.groups}).")
        if self.out_channels % a.groups:
            raise ValueError(f"`out_channels` (={self.out_channels}) must be divisible by `groups` (={a.groups}).")
        kernel = positive_tuple(self.kernel_size, self.n, "kernel_size", "kernels need at least one element")
        _set(self, kernel_size=kernel, stride=a.stride, padding=a.padding, dilation=a.dilation, groups=a.groups,
             output_padding=a.output_padding, bias=bool(self.bias), param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        out = super().attributes()
        for k in ("n", "transposed", "param_dtype", "bias"):
            del out[k]
        return out

    def variables(self) -> dict[str, Var | None]:
        g, k = self.groups, tuple(self.kernel_size)
        if self.transposed:  # torch: fan_in from weight.shape[1] = out_channels / groups
            shape = (self.in_channels, self.out_channels // g) + k
        else:
            shape = (self.out_channels, self.in_channels // g) + k
        init = Uniform(1.0 / math.sqrt(shape[1] * math.prod(k)))
        return {"weight": Var(shape, init), "bias": Var((self.out_channels,), init) if self.bias else None}

    def output_padding_for(self, x: Any, output_size: Any) -> tuple[int, ...]:
        """torch's ``ConvTranspose._output_padding``: pick output_padding to reach ``output_size``."""
        if output_size is None:
            return self.output_padding
        sizes = list(output_size)
        if len(sizes) == x.ndim:  # a full shape was given: keep the spatial part
            sizes = sizes[1:-1] if self.channels_last else sizes[2:]
        elif len(sizes) == x.ndim - 1 and x.ndim == self.n + 1:
            sizes = sizes[:-1] if self.channels_last else sizes[1:]
        if len(sizes) != self.n:
            raise ValueError(
                f"`output_size` must have {self.n} spatial sizes (or the full shape), got {output_size!r}."
            )
        spatial = x.shape[-self.n - 1 : -1] if self.channels_last else x.shape[-self.n :]
        out = []
        for i, size in enumerate(sizes):
            s, d, k, p = self.stride[i], self.dilation[i], self.kernel_size[i], self.padding[i]
            lo = (spatial[i] - 1) * s - 2 * p + d * (k - 1) + 1
            if not lo <= size <= lo + s - 1:
                raise ValueError(
                    f"requested `output_size` {size} in dimension {i} is outside the reachable range "
                    f"[{lo}, {lo + s - 1}] for an input of size {spatial[i]}."
                )
            out.append(size - lo)
        return tuple(out)

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              output_size: Any = None) -> tuple[jax.Array, dict[str, jax.Array]]:
        x, w, b = promote(self.compute_dtype, input, v["weight"], v["bias"])
        if self.transposed:
            fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self.n - 1]
            out_pad: Any = self.output_padding_for(x, output_size)
            return fn(x, w, b, self.stride, self.padding, out_pad, self.groups, self.dilation,
                      channels_last=self.channels_last, precision=self.precision), {}
        fn = (F.conv1d, F.conv2d, F.conv3d)[self.n - 1]
        return fn(x, w, b, self.stride, self.padding, self.dilation, self.groups, padding_mode=self.padding_mode,
                  channels_last=self.channels_last, precision=self.precision), {}


@dataclasses.dataclass(frozen=True)
class Linear(Layer):
    """``nn.Linear``."""

    in_features: int
    out_features: int
    bias: bool = True
    param_dtype: Any = None
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        _count(self.in_features, "in_features", positive=False)
        _count(self.out_features, "out_features", positive=False)
        _set(self, bias=bool(self.bias), param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "compute_dtype": self.compute_dtype}

    def variables(self) -> dict[str, Var | None]:
        init = Uniform(1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0)
        return {"weight": Var((self.out_features, self.in_features), init),
                "bias": Var((self.out_features,), init) if self.bias else None}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        x, w, b = promote(self.compute_dtype, input, v["weight"], v["bias"])
        return F.linear(x, w, b), {}


def _affine(shape: tuple[int, ...], affine: bool, bias: bool) -> dict[str, Var | None]:
    return {"weight": Var(shape, ONES) if affine else None, "bias": Var(shape, ZEROS) if affine and bias else None}


@dataclasses.dataclass(frozen=True)
class GroupNorm(Layer):
    """``nn.GroupNorm``."""

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True
    bias: bool = True
    param_dtype: Any = None
    channels_last: bool = False
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        _count(self.num_groups, "num_groups", positive=True)
        if not is_int(self.num_channels) or self.num_channels % self.num_groups:
            raise ValueError(
                f"`num_channels` (={self.num_channels}) must be divisible by `num_groups` (={self.num_groups})."
            )
        if self.affine and self.num_channels < 0:  # torch: weight/bias cannot have a negative size
            raise ValueError(
                f"`num_channels` must be a non-negative int, got {self.num_channels} (the weight and bias have "
                "`num_channels` elements)."
            )
        _set(self, param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"num_groups": self.num_groups, "num_channels": self.num_channels, "eps": self.eps,
                "affine": self.affine, "channels_last": self.channels_last, "compute_dtype": self.compute_dtype}

    def variables(self) -> dict[str, Var | None]:
        return _affine((self.num_channels,), self.affine, self.bias)

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        x, w, b = norm_operands(self.compute_dtype, input, v["weight"], v["bias"])
        return F.group_norm(x, self.num_groups, w, b, self.eps, channels_last=self.channels_last), {}


def _module_normalized_shape(normalized_shape: Any, affine: bool) -> tuple[int, ...]:
    """LayerNorm/RMSNorm's ``normalized_shape`` as torch's constructors take it: an int or a tuple of
    ints, with no negative size when there are parameters of that shape."""
    shape = normalized_shape
    if is_int(shape):
        shape = (int(shape),)
    elif isinstance(shape, Sequence) and all(is_int(s) for s in shape):
        shape = tuple(int(s) for s in shape)
    else:
        raise TypeError(f"`normalized_shape` must be an int or a tuple of ints, got {shape!r}.")
    if affine and any(d < 0 for d in shape):  # torch: no negative parameter shape
        raise ValueError(
            f"`normalized_shape` must have non-negative sizes, got {normalized_shape!r} (the affine "
            "parameters have shape `normalized_shape`)."
        )
    return shape


@dataclasses.dataclass(frozen=True)
class LayerNorm(Layer):
    """``nn.LayerNorm``."""

    normalized_shape: Any
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    param_dtype: Any = None
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        shape = _module_normalized_shape(self.normalized_shape, self.elementwise_affine)
        _set(self, normalized_shape=shape, param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "compute_dtype": self.compute_dtype}

    def variables(self) -> dict[str, Var | None]:
        return _affine(self.normalized_shape, self.elementwise_affine, self.bias)

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        x, w, b = norm_operands(self.compute_dtype, input, v["weight"], v["bias"])
        return F.layer_norm(x, self.normalized_shape, w, b, self.eps), {}


@dataclasses.dataclass(frozen=True)
class PReLU(Layer):
    """``nn.PReLU``: a learnable ``weight`` of ``num_parameters`` slopes, filled with ``init``."""

    num_parameters: int = 1
    init: float = 0.25
    param_dtype: Any = None

    def __post_init__(self) -> None:
        _count(self.num_parameters, "num_parameters", positive=False)
        _set(self, param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"num_parameters": self.num_parameters, "init": self.init}

    def variables(self) -> dict[str, Var | None]:
        return {"weight": Var((self.num_parameters,), Constant(self.init))}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        x, w = promote(None, input, v["weight"])
        return F.prelu(x, w), {}


@dataclasses.dataclass(frozen=True)
class Activation(Layer):
    """A parameter-free ``nn`` activation: the function and the constructor arguments it takes
    (``inplace`` is kept as an attribute and not passed: JAX arrays are immutable)."""

    fn: Callable[..., jax.Array]
    config: tuple[tuple[str, Any], ...] = ()
    inplace: bool | None = None  # None: the torch class has no `inplace`

    def __post_init__(self) -> None:
        config = dict(self.config)
        if "dim" not in config:  # `dim` depends on the input's rank: torch checks it at the call
            validate_call(self.fn, **config)

    def attributes(self) -> dict[str, Any]:
        out = dict(self.config)
        if self.inplace is not None:
            out["inplace"] = self.inplace
        return out

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return self.fn(input, **dict(self.config)), {}


def hardtanh_bounds(
    min_val: float, max_val: float, min_value: float | None, max_value: float | None, *, warn: bool
) -> tuple[float, float]:
    """``nn.Hardtanh``'s bounds: the deprecated ``min_value``/``max_value`` win (with torch's
    FutureWarning), and ``max_val`` must be strictly greater than ``min_val``."""
    if min_value is not None:
        if warn:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`", FutureWarning,
                          stacklevel=3)
        min_val = min_value
    if max_value is not None:
        if warn:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`", FutureWarning,
                          stacklevel=3)
        max_val = max_value
    if max_val <= min_val:
        raise ValueError(f"`max_val` (={max_val}) must be greater than `min_val` (={min_val}).")
    return min_val, max_val


@dataclasses.dataclass(frozen=True)
class Identity(Layer):
    """``nn.Identity``."""

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return input, {}


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """``nn.Flatten(start_dim=1, end_dim=-1)``: dims are checked against the input at the call."""

    start_dim: int = 1
    end_dim: int = -1

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        s = canonical_dim(self.start_dim, input.ndim, "start_dim")
        e = canonical_dim(self.end_dim, input.ndim, "end_dim")
        if s > e:
            raise ValueError(
                f"`start_dim` (={self.start_dim}) cannot come after `end_dim` (={self.end_dim}) for an input "
                f"with {input.ndim} dimensions."
            )
        if input.ndim == 0:
            return jnp.reshape(input, (1,)), {}
        return jnp.reshape(input, input.shape[:s] + (math.prod(input.shape[s : e + 1]),) + input.shape[e + 1 :]), {}


@dataclasses.dataclass(frozen=True)
class Dropout(Layer):
    """``nn.Dropout``: identity in eval mode; draws from the ``dropout`` stream in training."""

    p: float = 0.5
    inplace: bool = False
    mode_attribute: ClassVar[str | None] = "deterministic"
    stochastic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _set(self, p=check_dropout_p(self.p))

    def needs_rng(self, training: bool) -> bool:
        return training and 0.0 < self.p < 1.0

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return F.dropout(input, self.p, training, self.inplace, rng=rng), {}


@dataclasses.dataclass(frozen=True)
class DropoutVariant(Layer):
    """``nn.Dropout1d/2d/3d``, ``nn.AlphaDropout``, ``nn.FeatureAlphaDropout``: ``fn`` is the
    :mod:`jaxnn.functional` op, called as torch's forward calls it (``fn(input, p, training,
    inplace)``); identity in eval mode; draws from the ``dropout`` stream in training."""

    fn: Callable[..., jax.Array]
    p: float = 0.5
    inplace: bool = False
    mode_attribute: ClassVar[str | None] = "deterministic"
    stochastic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _set(self, p=check_dropout_p(self.p))

    def attributes(self) -> dict[str, Any]:
        return {"p": self.p, "inplace": self.inplace}

    def needs_rng(self, training: bool) -> bool:
        return training and 0.0 < self.p < 1.0

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return self.fn(input, self.p, training, self.inplace, rng=rng), {}


@dataclasses.dataclass(frozen=True)
class Embedding(Layer):
    """``nn.Embedding``: ``weight`` ``(num_embeddings, embedding_dim)`` ~ N(0, 1) with the
    ``padding_idx`` row zeroed; ``freeze`` (torch's ``_freeze`` / ``from_pretrained(freeze=True)``)
    makes it a ``"frozen"`` variable. With ``max_norm`` apply returns the renormalised weight as an
    update, as torch's forward rescales the rows in place."""

    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None = None
    max_norm: float | None = None
    norm_type: float = 2.0
    scale_grad_by_freq: bool = False
    sparse: bool = False
    freeze: bool = False
    param_dtype: Any = None
    weight: Any = dataclasses.field(default=None, compare=False, repr=False)  # torch's `_weight`

    def __post_init__(self) -> None:
        from .functional._embedding import canonical_padding_idx

        _count(self.num_embeddings, "num_embeddings", positive=False)
        _count(self.embedding_dim, "embedding_dim", positive=False)
        if self.weight is not None:
            shape = tuple(getattr(self.weight, "shape", ()))
            if shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError(
                    f"Shape of weight does not match num_embeddings and embedding_dim: `_weight` has shape {shape}, "
                    f"expected {(self.num_embeddings, self.embedding_dim)}."
                )
        _set(self, padding_idx=canonical_padding_idx(self.padding_idx, self.num_embeddings),
             param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("num_embeddings", "embedding_dim", "padding_idx", "max_norm",
                                              "norm_type", "scale_grad_by_freq", "sparse")}

    def variables(self) -> dict[str, Var | None]:
        kind: Kind = "frozen" if self.freeze else "parameter"
        shape = (self.num_embeddings, self.embedding_dim)
        if self.weight is not None:  # torch keeps the given tensor, padding row included
            return {"weight": Var(shape, Given(self.weight), kind, jnp.result_type(self.weight))}
        return {"weight": Var(shape, Normal(1.0, self.padding_idx), kind)}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        w = v["weight"]
        out = F.embedding(input, w, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                          self.sparse)
        if self.max_norm is None:
            return out, {}
        return out, {"weight": jax.lax.stop_gradient(F.embedding_renorm(w, input, self.max_norm, self.norm_type))}


@dataclasses.dataclass(frozen=True)
class BatchNorm(Layer):
    """``nn.BatchNorm{n}d``: ``weight``/``bias`` (affine), buffers ``running_mean``,
    ``running_var``, ``num_batches_tracked`` (track_running_stats)."""

    n: int
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    param_dtype: Any = None
    bias: bool = True
    mode_attribute: ClassVar[str | None] = "use_running_average"

    def __post_init__(self) -> None:
        _count(self.num_features, "num_features", positive=False)
        _set(self, param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats}

    def variables(self) -> dict[str, Var | None]:
        c = (self.num_features,)
        out = _affine(c, self.affine, self.bias)
        stats = self.track_running_stats
        out["running_mean"] = Var(c, ZEROS, "buffer") if stats else None
        out["running_var"] = Var(c, ONES, "buffer") if stats else None
        out["num_batches_tracked"] = Var((), ZEROS, "buffer", counter_dtype()) if stats else None
        return out

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        want = {1: (2, 3), 2: (4,), 3: (5,)}[self.n]
        if input.ndim not in want:
            expected = " or ".join(f"{d}D" for d in want)
            raise ValueError(f"expected {expected} input (got {input.ndim}D input)")
        mean, var, count = v["running_mean"], v["running_var"], v["num_batches_tracked"]
        updates: dict[str, jax.Array] = {}
        momentum: Any = 0.0 if self.momentum is None else self.momentum
        if training and count is not None:
            count = count + 1
            updates["num_batches_tracked"] = count
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / count.astype(jnp.promote_types(input.dtype, jnp.float32))
        use_batch = training or mean is None  # torch: without running stats, batch statistics always
        out, new_mean, new_var = _batch_norm(input, mean, var, v["weight"], v["bias"], use_batch, momentum, self.eps)
        if training and mean is not None:
            updates["running_mean"], updates["running_var"] = new_mean, new_var
        return out, updates


@dataclasses.dataclass(frozen=True)
class MultiheadAttention(Layer):
    """``nn.MultiheadAttention``'s own parameters (``in_proj_weight``/``in_proj_bias``, or
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim``/``vdim`` differ from
    ``embed_dim``; ``bias_k``/``bias_v``) and the attention up to the output projection; the front
    ends hold ``out_proj`` (a Linear, :class:`AttentionOutProj`) and apply it to the result."""

    embed_dim: int
    num_heads: int
    dropout: float = 0.0
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    batch_first: bool = False
    param_dtype: Any = None
    mode_attribute: ClassVar[str | None] = "deterministic"
    stochastic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not is_int(self.embed_dim) or not is_int(self.num_heads) or self.embed_dim <= 0 or self.num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={self.embed_dim} and "
                f"num_heads={self.num_heads} instead"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(f"`embed_dim` (={self.embed_dim}) must be divisible by `num_heads` (={self.num_heads}).")
        kdim = self.embed_dim if self.kdim is None else _count(self.kdim, "kdim", positive=True)
        vdim = self.embed_dim if self.vdim is None else _count(self.vdim, "vdim", positive=True)
        _set(self, kdim=kdim, vdim=vdim, dropout=check_dropout_p(self.dropout), bias=bool(self.bias),
             param_dtype=param_dtype(self.param_dtype))

    @property
    def qkv_same_embed_dim(self) -> bool:
        return self.kdim == self.embed_dim and self.vdim == self.embed_dim

    def attributes(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "dropout": self.dropout,
                "kdim": self.kdim, "vdim": self.vdim, "batch_first": self.batch_first,
                "head_dim": self.embed_dim // self.num_heads, "add_zero_attn": self.add_zero_attn,
                "_qkv_same_embed_dim": self.qkv_same_embed_dim}

    def variables(self) -> dict[str, Var | None]:
        E = self.embed_dim

        def xavier(fan_out: int, fan_in: int) -> Var:  # xavier_uniform_: U(+-sqrt(6 / (fan_in + fan_out)))
            return Var((fan_out, fan_in), Uniform(math.sqrt(6.0 / (fan_in + fan_out))))

        out: dict[str, Var | None] = {}
        if self.qkv_same_embed_dim:
            out["in_proj_weight"] = xavier(3 * E, E)
        else:
            out.update(q_proj_weight=xavier(E, E), k_proj_weight=xavier(E, self.kdim),  # type: ignore[arg-type]
                       v_proj_weight=xavier(E, self.vdim))  # type: ignore[arg-type]
        out["in_proj_bias"] = Var((3 * E,), ZEROS) if self.bias else None
        # xavier_normal_ on (1, 1, E): fan_in = fan_out = E, std = sqrt(2 / (2E))
        out["bias_k"] = Var((1, 1, E), Normal(1.0 / math.sqrt(E))) if self.add_bias_kv else None
        out["bias_v"] = Var((1, 1, E), Normal(1.0 / math.sqrt(E))) if self.add_bias_kv else None
        return out

    def needs_rng(self, training: bool) -> bool:
        return training and 0.0 < self.dropout < 1.0

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[Any, dict[str, jax.Array]]:
        """``input`` is the query; ``kwargs``: ``key``, ``value`` and torch's forward arguments.
        Returns ``((output before out_proj, weights or None), {})``."""
        from .functional._attention import multi_head_attention

        query, key, value = input, kwargs["key"], kwargs["value"]
        if self.batch_first and query.ndim == 3:
            query, key, value = (jnp.swapaxes(x, 0, 1) for x in (query, key, value))
        E = self.embed_dim
        if self.qkv_same_embed_dim:
            w = v["in_proj_weight"]
            wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
        else:
            wq, wk, wv = v["q_proj_weight"], v["k_proj_weight"], v["v_proj_weight"]
        b = v["in_proj_bias"]
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        out, weights = multi_head_attention(
            query, key, value, self.num_heads, wq, wk, wv, bq, bk, bv, v["bias_k"], v["bias_v"], self.add_zero_attn,
            self.dropout if training else 0.0, kwargs.get("key_padding_mask"), kwargs.get("need_weights", True),
            kwargs.get("attn_mask"), kwargs.get("average_attn_weights", True), kwargs.get("is_causal", False), rng)
        if self.batch_first and query.ndim == 3:
            out = jnp.swapaxes(out, 0, 1)
        return (out, weights), {}


@dataclasses.dataclass(frozen=True)
class AttentionOutProj(Linear):
    """``nn.MultiheadAttention.out_proj``: a Linear whose bias torch's ``_reset_parameters`` zeroes."""

    def variables(self) -> dict[str, Var | None]:
        out = super().variables()
        if out["bias"] is not None:
            out["bias"] = Var((self.out_features,), ZEROS)
        return out


@dataclasses.dataclass(frozen=True)
class Upsample(Layer):
    """``nn.Upsample`` (and ``UpsamplingNearest2d`` / ``UpsamplingBilinear2d``): ``F.interpolate``
    with the stored configuration; torch's constructor stores ``scale_factor`` as a float (a
    tuple: floats; falsy: None) and checks the rest at the call."""

    size: Any = None
    scale_factor: Any = None
    mode: str = "nearest"
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None

    def __post_init__(self) -> None:
        s = self.scale_factor
        _set(self, scale_factor=tuple(float(f) for f in s) if isinstance(s, tuple) else float(s) if s else None)

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor), {}


@dataclasses.dataclass(frozen=True)
class PixelShuffle(Layer):
    """``nn.PixelShuffle`` (``unshuffle=False``) and ``nn.PixelUnshuffle``: the factor is checked
    at the call, as torch does."""

    factor: int
    unshuffle: bool = False

    def attributes(self) -> dict[str, Any]:
        return {("downscale_factor" if self.unshuffle else "upscale_factor"): self.factor}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        fn = F.pixel_unshuffle if self.unshuffle else F.pixel_shuffle
        return fn(input, self.factor), {}


@dataclasses.dataclass(frozen=True)
class Fold(Layer):
    """``nn.Fold`` (``output_size`` given) and ``nn.Unfold`` (``output_size=None``):
    ``F.fold`` / ``F.unfold`` with the stored arguments, no variables; torch checks them at the
    call, so does jaxnn (lists are stored as tuples)."""

    kernel_size: Any
    dilation: Any = 1
    padding: Any = 0
    stride: Any = 1
    output_size: Any = None

    def __post_init__(self) -> None:
        for name in ("kernel_size", "dilation", "padding", "stride", "output_size"):
            value = getattr(self, name)
            if isinstance(value, list):
                _set(self, **{name: tuple(value)})

    def attributes(self) -> dict[str, Any]:
        names = ("kernel_size", "dilation", "padding", "stride")
        if self.output_size is not None:
            names = ("output_size", *names)
        return {n: getattr(self, n) for n in names}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        if self.output_size is None:
            return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride), {}
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride), {}


@dataclasses.dataclass(frozen=True)
class Pool(Layer):
    """``nn.MaxPool{n}d``, ``nn.AvgPool{n}d``, ``nn.LPPool{n}d``, ``nn.AdaptiveAvgPool{n}d`` and
    ``nn.AdaptiveMaxPool{n}d``: ``jaxnn.functional.<kind>_pool{n}d`` with the stored arguments, no
    variables. ``config`` holds torch's constructor arguments in torch's order, stored as torch
    stores them (max/avg: ``stride=None`` as ``kernel_size``; AvgPool1d: 1-tuples); they are checked
    at the call, as torch does."""

    kind: Literal["max", "avg", "lp", "adaptive_avg", "adaptive_max"]
    n: int
    config: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        cfg = dict(self.config)
        if self.kind in ("max", "avg") and cfg["stride"] is None:  # LPPool keeps None
            cfg["stride"] = cfg["kernel_size"]
        if self.kind == "avg" and self.n == 1:  # nn.AvgPool1d stores _single(...) of these
            for k in ("kernel_size", "stride", "padding"):
                v = cfg[k]
                cfg[k] = tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else (v,)
        _set(self, config=tuple(cfg.items()))

    def attributes(self) -> dict[str, Any]:
        return dict(self.config)

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return getattr(F, f"{self.kind}_pool{self.n}d")(input, **dict(self.config)), {}


def _torch_ntuple(value: Any, n: int) -> Any:
    """torch's ``_single``/``_pair``/``_triple``: a sequence as a tuple, anything else repeated."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return (value,) * n


@dataclasses.dataclass(frozen=True)
class MaxUnpool(Layer):
    """``nn.MaxUnpool{n}d``: :func:`jaxnn.functional.max_unpool{n}d` with the stored arguments, no
    variables. Stored as torch stores them (tuples; ``stride=None`` as ``kernel_size``) and checked
    at the call, as torch does. Called with ``indices`` (and ``output_size``) as keywords."""

    n: int
    kernel_size: Any
    stride: Any = None
    padding: Any = 0

    def __post_init__(self) -> None:
        k = _torch_ntuple(self.kernel_size, self.n)
        s = _torch_ntuple(self.stride if self.stride is not None else self.kernel_size, self.n)
        _set(self, kernel_size=k, stride=s, padding=_torch_ntuple(self.padding, self.n))

    def attributes(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        fn = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[self.n - 1]
        return fn(input, kwargs["indices"], self.kernel_size, self.stride, self.padding,
                  kwargs.get("output_size")), {}


@dataclasses.dataclass(frozen=True)
class RMSNorm(Layer):
    """``nn.RMSNorm``: ``weight`` (ones, shape ``normalized_shape``) with ``elementwise_affine``."""

    normalized_shape: Any
    eps: float | None = None
    elementwise_affine: bool = True
    param_dtype: Any = None

    def __post_init__(self) -> None:
        shape = _module_normalized_shape(self.normalized_shape, self.elementwise_affine)
        _set(self, normalized_shape=shape, param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps,
                "elementwise_affine": self.elementwise_affine}

    def variables(self) -> dict[str, Var | None]:
        return {"weight": Var(self.normalized_shape, ONES) if self.elementwise_affine else None}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return F.rms_norm(input, self.normalized_shape, v["weight"], self.eps), {}


# --- instance/local-response norms, distances, padding, Unflatten, Bilinear (issue #12) -------------


@dataclasses.dataclass(frozen=True)
class InstanceNorm(BatchNorm):
    """``nn.InstanceNorm{n}d``: BatchNorm's variables, names and checks (``weight``/``bias`` with
    ``affine``, buffers ``running_mean``, ``running_var``, ``num_batches_tracked`` with
    ``track_running_stats``; the counter is never advanced, as torch's) and torch's defaults
    ``affine=False, track_running_stats=False``. Batch statistics in training mode, and in eval mode
    too unless ``track_running_stats`` (torch's ``self.training or not self.track_running_stats``)."""

    affine: bool = False
    track_running_stats: bool = False

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        from .functional._instance_norm import _instance_norm

        unbatched_ndim = self.n + 1
        if input.ndim not in (unbatched_ndim, unbatched_ndim + 1):
            raise ValueError(f"expected {unbatched_ndim}D or {unbatched_ndim + 1}D input (got {input.ndim}D input)")
        feature_dim = input.ndim - unbatched_ndim
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features ({self.num_features}), "
                    f"but got: {input.shape[feature_dim]}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. You can silence this warning by "
                "not passing in num_features, which is not used because affine=False",
                UserWarning, stacklevel=4,
            )
        x = input[None] if input.ndim == unbatched_ndim else input
        use_input_stats = training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        out, mean, var = _instance_norm(x, v["running_mean"], v["running_var"], v["weight"], v["bias"],
                                        use_input_stats, momentum, self.eps)
        updates: dict[str, jax.Array] = {}
        if use_input_stats and v["running_mean"] is not None:
            updates["running_mean"], updates["running_var"] = mean, var
        return (out[0] if input.ndim == unbatched_ndim else out), updates


@dataclasses.dataclass(frozen=True)
class LocalResponseNorm(Layer):
    """``nn.LocalResponseNorm(size, alpha, beta, k)``; checked at the call, as torch does."""

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k), {}


@dataclasses.dataclass(frozen=True)
class Softmax2d(Layer):
    """``nn.Softmax2d``: softmax over the channels of a 3-D or 4-D input (dim -3)."""

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D instead")
        return F.softmax(input, -3), {}


@dataclasses.dataclass(frozen=True)
class PairFunction(Layer):
    """``nn.CosineSimilarity`` / ``nn.PairwiseDistance``: a function of ``(x1, x2)`` with the stored
    arguments (``config``: the function's keyword arguments, ``names``: torch's attribute names)."""

    fn: Callable[..., jax.Array]
    config: tuple[tuple[str, Any], ...] = ()
    names: tuple[tuple[str, str], ...] = ()

    def attributes(self) -> dict[str, Any]:
        rename = dict(self.names)
        return {rename.get(k, k): val for k, val in self.config}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        return self.fn(input, kwargs["x2"], **dict(self.config)), {}


def pad_amounts(padding: Any, n: int) -> tuple[int, ...]:
    """torch's padding modules' ``_ntuple(2n)``: an int repeated ``2n`` times, a sequence as it is
    (its length and values are checked by :func:`jaxnn.functional.pad` at the call, as torch's)."""
    if is_int(padding):
        return (int(padding),) * (2 * n)
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        return tuple(padding)
    raise TypeError(f"`padding` must be an int or a tuple of ints, got {padding!r}.")


@dataclasses.dataclass(frozen=True)
class Pad(Layer):
    """``nn.ZeroPad{n}d``, ``ConstantPad{n}d``, ``ReflectionPad{n}d``, ``ReplicationPad{n}d``,
    ``CircularPad{n}d``: :func:`jaxnn.functional.pad` with the stored amounts."""

    n: int
    mode: Literal["constant", "reflect", "replicate", "circular"]
    padding: Any
    value: float | None = None

    def __post_init__(self) -> None:
        _set(self, padding=pad_amounts(self.padding, self.n))

    def attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {"padding": self.padding}
        if self.mode == "constant":
            out["value"] = self.value
        return out

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        if self.mode == "circular" and input.ndim not in (self.n + 1, self.n + 2):
            raise ValueError(f"expected {self.n + 1}D or {self.n + 2}D input (got {input.ndim}D input)")
        return F.pad(input, self.padding, self.mode, self.value if self.mode == "constant" else None), {}


@dataclasses.dataclass(frozen=True)
class Unflatten(Layer):
    """``nn.Unflatten(dim, unflattened_size)``: ``dim`` is an int (named tensors do not exist
    here); the sizes are a tuple or list of ints, one of them may be -1."""

    dim: int
    unflattened_size: Any

    def __post_init__(self) -> None:
        if not is_int(self.dim):
            raise TypeError(
                f"invalid type for `dim` {type(self.dim).__name__}: an int is required (torch's str `dim` is for "
                "named tensors, which JAX does not have)."
            )
        size = self.unflattened_size
        if not isinstance(size, list | tuple):
            raise TypeError(f"unflattened_size must be a tuple of ints, but found type {type(size).__name__}")
        for i, s in enumerate(size):
            if not is_int(s):
                raise TypeError(
                    f"unflattened_size must be tuple of ints, but found element of type {type(s).__name__} at pos {i}"
                )
        _set(self, dim=int(self.dim), unflattened_size=tuple(int(s) for s in size))

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        d = canonical_dim(self.dim, input.ndim)
        sizes = list(self.unflattened_size)
        if input.ndim == 0:
            raise ValueError("unflatten: `input` must have at least 1 dimension, got a 0-d array.")
        if not sizes:
            raise ValueError("unflatten: sizes must be non-empty")
        length = input.shape[d]
        unknown = [i for i, s in enumerate(sizes) if s == -1]
        if len(unknown) > 1 or any(s < -1 for s in sizes):
            raise ValueError(f"unflatten: `unflattened_size` {tuple(sizes)} may hold one -1 and non-negative sizes.")
        known = math.prod(s for s in sizes if s != -1)
        if unknown:
            if known == 0 or length % known:
                raise ValueError(
                    f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {self.dim} "
                    f"({length}) in the input tensor"
                )
            sizes[unknown[0]] = length // known
        elif known != length:
            raise ValueError(
                f"unflatten: Provided sizes {sizes} don't multiply up to the size of dim {self.dim} ({length}) in "
                "the input tensor"
            )
        return jnp.reshape(input, input.shape[:d] + tuple(sizes) + input.shape[d + 1 :]), {}


@dataclasses.dataclass(frozen=True)
class Bilinear(Layer):
    """``nn.Bilinear``: ``weight`` ``(out, in1, in2)`` and ``bias`` ``(out,)``, both
    ``U(-1/sqrt(in1_features), 1/sqrt(in1_features))``."""

    in1_features: int
    in2_features: int
    out_features: int
    bias: bool = True
    param_dtype: Any = None
    compute_dtype: Any = None

    def __post_init__(self) -> None:
        if not is_int(self.in1_features) or self.in1_features <= 0:  # torch's reset_parameters check
            raise ValueError(f"in1_features must be > 0, but got (in1_features={self.in1_features}) (the "
                             "initialisation bound is 1/sqrt(in1_features)).")
        for name in ("in2_features", "out_features"):
            _count(getattr(self, name), name, positive=False)
        _set(self, bias=bool(self.bias), param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        return {"in1_features": self.in1_features, "in2_features": self.in2_features,
                "out_features": self.out_features, "compute_dtype": self.compute_dtype}

    def variables(self) -> dict[str, Var | None]:
        init = Uniform(1.0 / math.sqrt(self.in1_features))
        return {"weight": Var((self.out_features, self.in1_features, self.in2_features), init),
                "bias": Var((self.out_features,), init) if self.bias else None}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        x1, x2, w, b = promote(self.compute_dtype, input, kwargs["input2"], v["weight"], v["bias"])
        return F.bilinear(x1, x2, w, b), {}


# --- losses (torch.nn's *Loss modules over jaxnn/functional/_loss.py) ---------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Loss(Layer):
    """A torch loss module: ``jaxnn.functional.<fn>(*inputs, **config, **buffers)``. ``config`` holds
    torch's module attributes (``reduction`` already resolved from the deprecated ``size_average`` /
    ``reduce``, as torch's ``_Loss.__init__`` does); ``buffers`` the constructor's tensors, registered
    as persistent buffers under torch's names (``weight``, ``pos_weight``; None: not in the state_dict)."""

    fn: str
    config: tuple[tuple[str, Any], ...] = ()
    buffers: tuple[tuple[str, Any], ...] = ()

    def attributes(self) -> dict[str, Any]:
        return dict(self.config)

    def variables(self) -> dict[str, Var | None]:
        out: dict[str, Var | None] = {}
        for name, value in self.buffers:
            if value is None:
                out[name] = None
                continue
            if not (hasattr(value, "shape") and hasattr(value, "dtype")):
                raise TypeError(f"`{name}` must be an array or None, got {type(value).__name__}.")
            arr = jnp.asarray(value)
            out[name] = Var(tuple(arr.shape), Given(arr), "buffer", arr.dtype)
        return out

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
        fn = getattr(F, self.fn)
        return fn(input, *kwargs["others"], **dict(self.config), **{n: v[n] for n, _ in self.buffers}), {}


def loss_layer(fn: str, size_average: Any = None, reduce: Any = None, reduction: str = "mean",
               buffers: tuple[tuple[str, Any], ...] = (), **config: Any) -> Loss:
    """Build a :class:`Loss`; the deprecated ``size_average`` / ``reduce`` set ``reduction`` with
    torch's legacy rule and warning."""
    from .functional._loss import legacy_reduction

    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    if fn == "multi_margin_loss":  # nn.MultiMarginLoss's own constructor checks
        if config["p"] != 1 and config["p"] != 2:
            raise ValueError(f"only p == 1 and p == 2 supported: `p` (={config['p']}) must be 1 or 2.")
        weight = dict(buffers)["weight"]
        if weight is not None and getattr(weight, "ndim", 1) != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {weight.ndim}D instead")
    return Loss(fn, (("reduction", reduction), *config.items()), buffers)


# --- recurrent layers (nn.RNN / nn.LSTM / nn.GRU and their cells over jaxnn/functional/_rnn.py) ------


def _type_check(value: Any, kind: type, name: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"`{name}` should be of type {kind.__name__}, got: {type(value).__name__}")


def _check_rnn_hidden(h: Any, expected: tuple[int, ...], name: str, dtype: Any) -> jax.Array:
    if not (hasattr(h, "shape") and hasattr(h, "dtype")):
        raise TypeError(f"`{name}` must be an array, got {type(h).__name__}.")
    if tuple(h.shape) != expected:
        raise ValueError(f"Expected `{name}` of shape {expected}, got {tuple(h.shape)}.")
    if h.dtype != dtype:
        raise TypeError(f"`{name}` dtype ({h.dtype}) must match `input` dtype ({dtype}).")
    return jnp.asarray(h)


def warn_rnn_dropout(layer: RNNBase, stacklevel: int = 3) -> None:
    """torch's constructor warning for ``dropout > 0`` with one layer (the front ends call it once,
    at construction: a linen module's clones inside ``init`` / ``apply`` do not warn again)."""
    if layer.dropout > 0 and layer.num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                      f"num_layers greater than 1, but got dropout={layer.dropout} and num_layers={layer.num_layers}",
                      stacklevel=stacklevel)


@dataclasses.dataclass(frozen=True)
class RNNBase(Layer):
    """``nn.RNN`` (``mode`` ``'RNN_TANH'`` / ``'RNN_RELU'``), ``nn.LSTM`` (``'LSTM'``, with
    ``proj_size``) and ``nn.GRU`` (``'GRU'``): torch's ``weight_ih_l{k}{_reverse}``,
    ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}``, all
    ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``; dropout between layers from the ``dropout``
    stream in training."""

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False
    proj_size: int = 0
    param_dtype: Any = None
    nonlinearity: str | None = None
    mode_attribute: ClassVar[str | None] = "deterministic"
    stochastic: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.mode == "RNN" and self.nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown `nonlinearity` {self.nonlinearity!r}. Select from 'tanh' or 'relu'.")
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d <= 1:
            raise ValueError(f"`dropout` should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {d!r}.")
        _type_check(self.bias, bool, "bias")
        _type_check(self.batch_first, bool, "batch_first")
        for name in ("input_size", "hidden_size"):
            _type_check(getattr(self, name), int, name)
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be greater than zero, got {getattr(self, name)}.")
        if not is_int(self.num_layers) or self.num_layers <= 0:
            raise ValueError(f"`num_layers` must be greater than zero, got {self.num_layers!r}.")
        if not is_int(self.proj_size) or self.proj_size < 0:
            raise ValueError(f"`proj_size` should be a positive integer or zero to disable projections, got "
                             f"{self.proj_size!r}.")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"`proj_size` (={self.proj_size}) has to be smaller than `hidden_size` "
                             f"(={self.hidden_size}).")
        if self.proj_size and self.mode != "LSTM":  # nn.RNN / nn.GRU take no proj_size
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        mode = self.mode
        if mode == "RNN":
            mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        if mode not in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU"):
            raise ValueError(f"Unrecognized RNN mode: {self.mode!r}")
        _set(self, mode=mode, dropout=float(d), bidirectional=bool(self.bidirectional), num_layers=int(self.num_layers),
             proj_size=int(self.proj_size), param_dtype=param_dtype(self.param_dtype))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        return self.proj_size or self.hidden_size

    def attributes(self) -> dict[str, Any]:
        out = super().attributes()
        del out["param_dtype"]
        if out["nonlinearity"] is None:
            del out["nonlinearity"]
        return out

    def names(self, layer: int, direction: int) -> dict[str, str]:
        s = f"l{layer}{'_reverse' if direction else ''}"
        return {"w_ih": f"weight_ih_{s}", "w_hh": f"weight_hh_{s}", "b_ih": f"bias_ih_{s}", "b_hh": f"bias_hh_{s}",
                "w_hr": f"weight_hr_{s}"}

    def variables(self) -> dict[str, Var | None]:
        gate = {"LSTM": 4, "GRU": 3}.get(self.mode, 1) * self.hidden_size
        init = Uniform(1.0 / math.sqrt(self.hidden_size))
        out: dict[str, Var | None] = {}
        for layer in range(self.num_layers):
            fan_in = self.input_size if layer == 0 else self.h_out * self.num_directions
            for d in range(self.num_directions):
                n = self.names(layer, d)
                out[n["w_ih"]] = Var((gate, fan_in), init)
                out[n["w_hh"]] = Var((gate, self.h_out), init)
                if self.bias:
                    out[n["b_ih"]] = Var((gate,), init)
                    out[n["b_hh"]] = Var((gate,), init)
                if self.proj_size:
                    out[n["w_hr"]] = Var((self.proj_size, self.hidden_size), init)
        return out

    def needs_rng(self, training: bool) -> bool:
        return training and 0.0 < self.dropout < 1.0 and self.num_layers > 1

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[Any, dict[str, jax.Array]]:
        """``kwargs``: ``hx`` (torch's) and ``lengths`` (jaxnn's). Returns ``((output, h_n), {})``
        (LSTM: ``((output, (h_n, c_n)), {})``)."""
        from .functional._rnn import rnn_forward

        hx, lengths = kwargs.get("hx"), kwargs.get("lengths")
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(self.mode, self.mode)
        if not (hasattr(input, "shape") and hasattr(input, "dtype")):
            raise TypeError(f"{name}: `input` must be an array, got {type(input).__name__}.")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected `input` to be 2D or 3D, got {input.ndim}D tensor instead.")
        w = v[self.names(0, 0)["w_ih"]]
        if input.dtype != w.dtype:
            raise ValueError(f"{name} `input` dtype ({input.dtype}) does not match weight dtype ({w.dtype}). "
                             f"Convert input: input.astype({w.dtype}), or build the module with dtype={input.dtype}.")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"`input.shape[-1]` must be equal to input_size. Expected {self.input_size}, got "
                             f"{input.shape[-1]}.")
        batched = input.ndim == 3
        x = jnp.asarray(input)
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = jnp.swapaxes(x, 0, 1)
        T, N = x.shape[0], x.shape[1]
        if T == 0:  # torch's _VF.rnn/lstm/gru check
            raise ValueError(f"{name}: Expected sequence length to be larger than 0 in RNN: `input` "
                             f"{tuple(input.shape)} has no time steps.")
        LD = self.num_layers * self.num_directions
        lstm = self.mode == "LSTM"
        if lstm and hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTM: `hx` must be a pair (h_0, c_0) of arrays or None, got {type(hx).__name__}.")
        parts = (list(hx) if lstm else [hx]) if hx is not None else []
        want = 3 if batched else 2
        for i, h in enumerate(parts):
            if getattr(h, "ndim", None) != want:
                label = f"hx[{i}]" if lstm else "hx"
                raise ValueError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} input, `{label}` should also "
                                 f"be {want}-D but got {getattr(h, 'ndim', type(h).__name__)}-D.")
        sizes = [self.h_out, self.hidden_size] if lstm else [self.h_out]
        if hx is None:
            states = [jnp.zeros((LD, N, s), x.dtype) for s in sizes]
        else:
            states = []
            for i, (h, s) in enumerate(zip(parts, sizes, strict=True)):
                label = f"hx[{i}]" if lstm else "hx"
                expected = (LD, N, s) if batched else (LD, s)
                h = _check_rnn_hidden(h, expected, label, x.dtype)
                states.append(h if batched else h[:, None, :])
        if lengths is not None:
            lengths = _check_lengths(lengths, batched, T, N)
        params = []
        for layer in range(self.num_layers):
            for d in range(self.num_directions):
                params.append({k: v.get(n) for k, n in self.names(layer, d).items()})
        out, h_n, c_n = rnn_forward(self.mode, x, states[0], states[1] if lstm else None, params, self.num_layers,
                                    self.bidirectional, self.dropout, training, lengths, rng)
        if not batched:
            out, h_n = out[:, 0], h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        elif self.batch_first:
            out = jnp.swapaxes(out, 0, 1)
        return (out, (h_n, c_n) if lstm else h_n), {}


def _check_lengths(lengths: Any, batched: bool, T: int, N: int) -> jax.Array:
    """jaxnn's ``lengths=``: ``(N,)`` integers in ``[1, T]`` (checked when concrete, as
    ``pack_padded_sequence`` checks them)."""
    if not batched:
        raise ValueError("`lengths` needs batched 3-D input (one length per sequence); unbatched input is one "
                         "sequence: slice it instead.")
    arr = jnp.asarray(lengths)
    if not jnp.issubdtype(arr.dtype, jnp.integer) or arr.shape != (N,):
        raise ValueError(f"`lengths` must be {N} integers (one per sequence), got shape {tuple(arr.shape)} "
                         f"dtype {arr.dtype}.")
    try:
        concrete = [int(n) for n in jax.device_get(arr)]
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return arr
    if any(n <= 0 for n in concrete):
        raise ValueError(f"Length of all samples has to be greater than 0, but `lengths` is {concrete}.")
    if any(n > T for n in concrete):
        raise ValueError(f"`lengths` (={concrete}) must not exceed the sequence length {T}.")
    return arr


@dataclasses.dataclass(frozen=True)
class RNNCellBase(Layer):
    """``nn.RNNCell`` (``mode`` ``'RNN'`` with ``nonlinearity``), ``nn.LSTMCell``, ``nn.GRUCell``:
    ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, all ``U(-1/sqrt(hidden_size),
    1/sqrt(hidden_size))``. One step of :class:`RNNBase`'s recurrence."""

    mode: str
    input_size: int
    hidden_size: int
    bias: bool = True
    nonlinearity: str | None = None
    param_dtype: Any = None

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size"):
            _count(getattr(self, name), name, positive=False)
        _set(self, bias=bool(self.bias), param_dtype=param_dtype(self.param_dtype))

    def attributes(self) -> dict[str, Any]:
        out = {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias}
        if self.nonlinearity is not None:
            out["nonlinearity"] = self.nonlinearity
        return out

    def variables(self) -> dict[str, Var | None]:
        gate = {"LSTM": 4, "GRU": 3}.get(self.mode, 1) * self.hidden_size
        init = Uniform(1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0)
        return {"weight_ih": Var((gate, self.input_size), init), "weight_hh": Var((gate, self.hidden_size), init),
                "bias_ih": Var((gate,), init) if self.bias else None,
                "bias_hh": Var((gate,), init) if self.bias else None}

    def apply(self, v: Values, input: Any, *, training: bool = True, rng: Any = None,
              **kwargs: Any) -> tuple[Any, dict[str, jax.Array]]:
        from .functional._rnn import _linear, rnn_cell_step

        hx = kwargs.get("hx")
        name = {"RNN": "RNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}[self.mode]
        if not (hasattr(input, "shape") and hasattr(input, "dtype")):
            raise TypeError(f"{name}: `input` must be an array, got {type(input).__name__}.")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected `input` to be 1D or 2D, got {input.ndim}D instead.")
        lstm = self.mode == "LSTM"
        if lstm and hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: `hx` must be a pair (h_0, c_0) of arrays or None, got {type(hx).__name__}.")
        parts = (list(hx) if lstm else [hx]) if hx is not None else []
        for i, h in enumerate(parts):
            label = f"hx[{i}]" if lstm else "hidden"
            if getattr(h, "ndim", None) not in (1, 2):
                raise ValueError(f"{name}: Expected `{label}` to be 1D or 2D, got {getattr(h, 'ndim', None)}D instead.")
        if self.mode == "RNN" and self.nonlinearity not in ("tanh", "relu"):  # torch checks at the call
            raise ValueError(f"{name}: Unknown `nonlinearity` {self.nonlinearity!r}: select 'tanh' or 'relu'.")
        w = v["weight_ih"]
        if input.dtype != w.dtype:
            raise ValueError(f"{name}: `input` dtype ({input.dtype}) does not match weight dtype ({w.dtype}).")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: `input` has inconsistent input_size: got {input.shape[-1]}, expected "
                             f"{self.input_size}.")
        batched = input.ndim == 2
        x = jnp.asarray(input) if batched else jnp.asarray(input)[None]
        N = x.shape[0]
        if hx is None:
            states = [jnp.zeros((N, self.hidden_size), x.dtype)] * (2 if lstm else 1)
        else:
            states = []
            for i, h in enumerate(parts):
                label = f"hx[{i}]" if lstm else "hx"
                expected = (N, self.hidden_size) if batched else (self.hidden_size,)
                h = _check_rnn_hidden(h, expected, label, x.dtype)
                states.append(h if batched else h[None])
        mode = self.mode if self.mode != "RNN" else ("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU")
        xw = _linear(x, w, v["bias_ih"])
        h, c = rnn_cell_step(mode, xw, states[0], states[1] if lstm else None, v["weight_hh"], v["bias_hh"], None)
        if not batched:
            h = h[0]
            c = None if c is None else c[0]
        return ((h, c) if lstm else h), {}
