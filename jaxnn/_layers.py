"""What a torch layer is, independent of the Flax front end: one description per layer.

A description (a subclass of :class:`Layer`, a frozen dataclass) holds

- the layer's configuration, validated and canonicalised once at construction by the same helpers
  the :mod:`jaxnn.functional` op uses (one place per rule, one wording);
- its named variables (:meth:`Layer.variables`): each a :class:`Var` with a shape, an initialiser
  that reproduces torch's ``reset_parameters`` and a kind: ``"parameter"``, ``"buffer"``
  (persistent: in the state_dict, like ``running_mean``) or ``"nonpersistent"`` (not in it);
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

Kind = Literal["parameter", "buffer", "nonpersistent"]
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
    random: ClassVar[bool] = True

    def __call__(self, key: jax.Array | None, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return self.std * jax.random.normal(_need_key(key), shape, dtype)


@dataclasses.dataclass(frozen=True)
class Constant:
    """A constant fill: ``ones_``, ``zeros_``, PReLU's ``init``, a zero counter."""

    value: float
    random: ClassVar[bool] = False

    def __call__(self, key: jax.Array | None, shape: tuple[int, ...], dtype: Any) -> jax.Array:
        return jnp.full(shape, self.value, dtype)


Init = Uniform | Normal | Constant
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
