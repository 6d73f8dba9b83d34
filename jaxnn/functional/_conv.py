"""Convolutions with torch.nn.functional's signatures, layouts and error conditions."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal, NamedTuple, cast

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from .._utils import (
    check_float,
    check_same_dtype,
    is_int,
    ntuple,
    positive_tuple,
    shape_str,
    stat_dtype,
)
from ._pad import PAD_MODES, check_pad_amounts, pad_axes

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}
PADDING_MODES = ("zeros",) + PAD_MODES[1:]


def _dimension_numbers(n: int, channels_last: bool) -> tuple[str, str, str]:
    sp = _SPATIAL[n]
    io = f"N{sp}C" if channels_last else f"NC{sp}"
    return io, f"OI{sp}", io


def _prepare_input(input: Any, n: int, fname: str) -> tuple[jax.Array, bool]:
    """Check rank; returns the batched input and whether the caller passed a batch."""
    check_float(input, "input")
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(
            f"{fname}: `input` must be {n + 1}D (unbatched) or {n + 2}D (batched), got shape "
            f"{shape_str(input.shape)}."
        )
    batched = input.ndim == n + 2
    x = jnp.asarray(input)
    return (x if batched else x[None]), batched


def _check_groups(groups: Any) -> int:
    if not is_int(groups):
        raise TypeError(f"`groups` must be an int, got {groups!r}.")
    if groups <= 0:
        raise ValueError(f"`groups` must be positive (non-positive groups is not supported), got {groups}.")
    return int(groups)


def _check_weight(weight: Any, input: Any, n: int, fname: str) -> None:
    check_float(weight, "weight")
    check_same_dtype(input, weight, "weight")
    if weight.ndim != n + 2:
        raise ValueError(
            f"{fname}: `weight` must be {n + 2}D, got shape {shape_str(weight.shape)} "
            f"(input and weight ranks must match)."
        )


def _check_bias(bias: Any, input: Any, channels: int) -> None:
    if bias is None:
        return
    check_float(bias, "bias")
    check_same_dtype(input, bias, "bias")
    if tuple(bias.shape) != (channels,):
        raise ValueError(f"`bias` must have shape ({channels},), got {shape_str(bias.shape)}.")


class ConvArgs(NamedTuple):
    """Validated, canonical convolution arguments (every rule stated once, here)."""

    stride: tuple[int, ...]
    padding: tuple[int, ...] | str  # per-dimension amounts, or 'same' / 'valid'
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    output_padding: tuple[int, ...]


def conv_arguments(
    n: int,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str = "zeros",
    output_padding: Any = 0,
    *,
    transposed: bool = False,
) -> ConvArgs:
    """Check and canonicalise the arguments shared by ``conv{n}d``, ``conv_transpose{n}d`` and the
    ``nn.Conv{n}d`` / ``nn.ConvTranspose{n}d`` constructors (which validate them eagerly)."""
    stride_t = positive_tuple(stride, n, "stride", "non-positive stride is not supported")
    dilation_t = positive_tuple(dilation, n, "dilation", "dilation should be greater than zero")
    groups = _check_groups(groups)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"`padding_mode` must be one of {PADDING_MODES}, got {padding_mode!r}.")
    if transposed and padding_mode != "zeros":
        raise ValueError(f"Only 'zeros' `padding_mode` is supported for ConvTranspose{n}d, got {padding_mode!r}.")
    pad: tuple[int, ...] | str
    if isinstance(padding, str):
        if transposed:
            raise TypeError(f"conv_transpose{n}d: `padding` must be an int or a tuple of ints, got {padding!r}.")
        if padding not in ("same", "valid"):
            raise ValueError(f"`padding` must be an int, a tuple, 'valid' or 'same'; got {padding!r}.")
        if padding == "same" and any(s != 1 for s in stride_t):
            raise ValueError(
                f"padding='same' is not supported for strided convolutions (`stride`={stride_t})."
            )
        pad = padding
    else:
        pad = ntuple(padding, n, "padding")
        if any(p < 0 for p in pad):
            raise ValueError(f"`padding` must be non-negative (negative padding is not supported), got {padding!r}.")
    out_pad = ntuple(output_padding, n, "output_padding")
    return ConvArgs(stride_t, pad, dilation_t, groups, padding_mode, out_pad)


def _conv_padding(padding: tuple[int, ...] | str, kernel: tuple[int, ...], dilation: tuple[int, ...]
                  ) -> list[tuple[int, int]]:
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [(t // 2, t - t // 2) for t in total]  # the extra unit goes at the end
    return [(int(p), int(p)) for p in padding]


def _add_bias(out: jax.Array, bias: Any, channel_axis: int) -> jax.Array:
    if bias is None:
        return out
    shape = [1] * out.ndim
    shape[channel_axis] = bias.shape[0]
    return out + jnp.reshape(bias, shape).astype(out.dtype)


def _finish(out: jax.Array, bias: Any, channel_axis: int, dtype: Any, batched: bool) -> jax.Array:
    # Bias is added in the accumulation dtype, then rounded once, as torch's kernels do.
    out = _add_bias(out, bias, channel_axis).astype(dtype)
    return out if batched else out[0]


def _accumulation_dtype(dtype: Any) -> Any:
    """float32 accumulation for float16/bfloat16 inputs; ``None`` (= the input dtype) otherwise."""
    acc = stat_dtype(dtype)
    return None if acc == dtype else acc


def _padded_conv2d(x: jax.Array, w: jax.Array, pads: list[tuple[int, int]], dilation: tuple[int, ...],
                   dn: tuple[str, str, str], groups: int, precision: Any, acc: Any) -> jax.Array:
    return lax.conv_general_dilated(
        x, w, window_strides=(1, 1), padding=pads, rhs_dilation=dilation, dimension_numbers=dn,
        feature_group_count=groups, precision=precision, preferred_element_type=acc,
    )


def _spatial_crop(out: jax.Array, dn: tuple[str, str, str], pads: list[tuple[int, int]]) -> jax.Array:
    """Drop ``lo`` leading and ``hi`` trailing elements of each spatial axis (layout ``dn[2]``)."""
    for axis, (lo, hi) in zip((i for i, c in enumerate(dn[2]) if c not in "NC"), pads, strict=True):
        out = lax.slice_in_dim(out, lo, out.shape[axis] - hi, axis=axis)
    return out


@partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2, 3, 4))
def _valid_conv2d_cpu(dilation: tuple[int, ...], dn: tuple[str, str, str], groups: int, precision: Any,
                      acc: Any, x: jax.Array, w: jax.Array) -> jax.Array:
    """Stride-1 unpadded ("VALID") 2-D convolution, computed on XLA CPU's fast padded path.

    Forward: pad the first spatial axis by one zero row and drop the one output row it adds (that
    row is the only one reading the zero); identical values. The JVP (and so, transposed, the
    gradient) computes the input's tangent with a "same"-padded convolution cropped to the valid
    outputs: its transpose, the input gradient, is then a convolution whose output is no larger
    than its input, which XLA hands to YNNPACK. Autodiff of the forward form instead gives a
    gradient convolution with output larger than input (padding k-1 and one more row), which XLA
    CPU runs on its slower generic kernel (issue 18).
    """
    out = _padded_conv2d(x, w, [(1, 0), (0, 0)], dilation, dn, groups, precision, acc)
    return _spatial_crop(out, dn, [(1, 0), (0, 0)])


def _valid_conv2d_cpu_jvp(dilation: tuple[int, ...], dn: tuple[str, str, str], groups: int, precision: Any,
                          acc: Any, primals: tuple[jax.Array, jax.Array], tangents: tuple[Any, Any]
                          ) -> tuple[jax.Array, jax.Array]:
    x, w = primals
    tx, tw = tangents  # SymbolicZero where an argument is not differentiated: skip its conv
    out = _valid_conv2d_cpu(dilation, dn, groups, precision, acc, x, w)
    terms = []
    if not isinstance(tx, SymbolicZero):
        kernel = [w.shape[dn[1].index(c)] for c in dn[1] if c not in "OI"]
        same = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation, strict=True)]
        terms.append(_spatial_crop(_padded_conv2d(tx, w, same, dilation, dn, groups, precision, acc), dn, same))
    if not isinstance(tw, SymbolicZero):
        terms.append(_valid_conv2d_cpu(dilation, dn, groups, precision, acc, x, tw))
    t_out = terms[0] + terms[1] if len(terms) == 2 else terms[0] if terms else jnp.zeros_like(out)
    return out, t_out


_valid_conv2d_cpu.defjvp(_valid_conv2d_cpu_jvp, symbolic_zeros=True)


def _conv(
    n: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
    channels_last: bool,
    precision: Any,
) -> jax.Array:
    fname = f"conv{n}d"
    x, batched = _prepare_input(input, n, fname)
    _check_weight(weight, input, n, fname)
    args = conv_arguments(n, stride, padding, dilation, groups, padding_mode)
    stride_t, dilation_t, groups = args.stride, args.dilation, args.groups
    c_out, c_in_g = weight.shape[0], weight.shape[1]
    kernel = tuple(int(k) for k in weight.shape[2:])
    if c_out < groups:  # torch refuses 0 output channels (an empty output) too
        raise ValueError(
            f"{fname}: `weight` of shape {shape_str(weight.shape)} must have at least `groups` (={groups}) "
            f"output channels (dimension 0)."
        )
    if c_out % groups:
        raise ValueError(
            f"`weight` of shape {shape_str(weight.shape)} has {c_out} output channels, which is "
            f"not divisible by `groups` (={groups})."
        )
    channel_axis = x.ndim - 1 if channels_last else 1
    spatial_axes = tuple(range(1, n + 1)) if channels_last else tuple(range(2, n + 2))
    c_in = x.shape[channel_axis]
    if c_in != c_in_g * groups:
        raise ValueError(
            f"`input` has {c_in} channels, but `weight` of shape {shape_str(weight.shape)} with "
            f"`groups`={groups} expects {c_in_g * groups} (weight.shape[1] * groups)."
        )
    _check_bias(bias, input, c_out)
    pads = _conv_padding(args.padding, kernel, dilation_t)
    sizes = [x.shape[a] for a in spatial_axes]
    for size, (lo, hi), k, d in zip(sizes, pads, kernel, dilation_t, strict=True):
        if size + lo + hi < d * (k - 1) + 1:
            raise ValueError(
                f"{fname}: padded input size {size + lo + hi} (input {size}, `padding` {lo}+{hi}) "
                f"is smaller than the dilated kernel size {d * (k - 1) + 1} (kernel {k}, "
                f"`dilation` {d}); the output would be empty."
            )
    if padding_mode != "zeros":
        check_pad_amounts(padding_mode, sizes, pads, name="padding")
        x = pad_axes(x, spatial_axes, pads, padding_mode)
        pads = [(0, 0)] * n
    # XLA's CPU backend runs an unpadded ("VALID") stride-1 2-D convolution with a kernel larger
    # than 1x1 2.5-3x slower than the same convolution with any zero padding (measured: (4, 128,
    # 64, 64) 3x3, 330 ms VALID vs 125 ms padded; 1-D, 3-D, 1x1 and strided ones are not affected;
    # BENCHMARKS.md, issue 18). Every pre-padded padding_mode conv and every padding=0 conv is such a
    # convolution: _valid_conv2d_cpu computes it on the fast path.
    if (n == 2 and all(p == (0, 0) for p in pads) and all(s == 1 for s in stride_t)
            and any(k > 1 for k in kernel) and jax.default_backend() == "cpu"):
        out = _valid_conv2d_cpu(dilation_t, _dimension_numbers(n, channels_last), groups, precision,
                                _accumulation_dtype(x.dtype), x, jnp.asarray(weight))
        return _finish(out, bias, channel_axis, x.dtype, batched)
    out = lax.conv_general_dilated(
        x,
        jnp.asarray(weight),
        window_strides=stride_t,
        padding=pads,
        rhs_dilation=dilation_t,
        dimension_numbers=_dimension_numbers(n, channels_last),
        feature_group_count=groups,
        precision=precision,
        preferred_element_type=_accumulation_dtype(x.dtype),
    )
    return _finish(out, bias, channel_axis, x.dtype, batched)


def _conv_transpose(
    n: int,
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
    channels_last: bool,
    precision: Any,
) -> jax.Array:
    fname = f"conv_transpose{n}d"
    x, batched = _prepare_input(input, n, fname)
    _check_weight(weight, input, n, fname)
    args = conv_arguments(n, stride, padding, dilation, groups, output_padding=output_padding, transposed=True)
    stride_t, dilation_t, groups, out_pad = args.stride, args.dilation, args.groups, args.output_padding
    pad_t = cast("tuple[int, ...]", args.padding)  # conv_arguments refuses strings when transposed
    if weight.shape[0] < groups or 0 in weight.shape[1:2]:  # torch refuses an empty weight here
        raise ValueError(
            f"{fname}: `weight` of shape {shape_str(weight.shape)} must have at least `groups` (={groups}) "
            f"input channels (dimension 0) and at least one output channel per group (dimension 1)."
        )
    if any(p < 0 for p in out_pad):
        raise ValueError(f"`output_padding` must be non-negative, got {output_padding!r}.")
    for op, s, d in zip(out_pad, stride_t, dilation_t, strict=True):
        if op >= s and op >= d:
            raise ValueError(
                f"`output_padding` (={output_padding!r}) must be smaller than either `stride` "
                f"(={stride_t}) or `dilation` (={dilation_t}) in every dimension."
            )
    c_in, c_out_g = weight.shape[0], weight.shape[1]
    kernel = tuple(int(k) for k in weight.shape[2:])
    channel_axis = x.ndim - 1 if channels_last else 1
    spatial_axes = tuple(range(1, n + 1)) if channels_last else tuple(range(2, n + 2))
    if c_in % groups:
        raise ValueError(
            f"`weight` of shape {shape_str(weight.shape)} has {c_in} input channels (dim 0), "
            f"which is not divisible by `groups` (={groups})."
        )
    if x.shape[channel_axis] != c_in:
        raise ValueError(
            f"`input` has {x.shape[channel_axis]} channels, but the transposed-convolution "
            f"`weight` of shape {shape_str(weight.shape)} expects {c_in} (weight.shape[0])."
        )
    c_out = c_out_g * groups
    _check_bias(bias, input, c_out)
    pads = []
    for axis, k, s, d, p, op in zip(spatial_axes, kernel, stride_t, dilation_t, pad_t, out_pad, strict=True):
        size = x.shape[axis]
        out_size = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        if out_size <= 0:
            raise ValueError(
                f"{fname}: input size {size} with kernel {k}, `stride` {s}, `padding` {p}, "
                f"`dilation` {d}, `output_padding` {op} gives output size {out_size}; it must be positive."
            )
        pads.append((d * (k - 1) - p, d * (k - 1) - p + op))
    # (C_in, C_out/g, *k) -> (C_out, C_in/g, *k) per group, spatially flipped: the transposed
    # convolution becomes a dilated-input ordinary convolution with feature groups.
    c_in_g = c_in // groups
    w = jnp.reshape(jnp.asarray(weight), (groups, c_in_g, c_out_g) + kernel)
    w = jnp.swapaxes(w, 1, 2).reshape((c_out, c_in_g) + kernel)
    w = lax.rev(w, tuple(range(2, n + 2)))
    out = lax.conv_general_dilated(
        x,
        w,
        window_strides=(1,) * n,
        padding=pads,
        lhs_dilation=stride_t,
        rhs_dilation=dilation_t,
        dimension_numbers=_dimension_numbers(n, channels_last),
        feature_group_count=groups,
        precision=precision,
        preferred_element_type=_accumulation_dtype(x.dtype),
    )
    return _finish(out, bias, channel_axis, x.dtype, batched)


_CONV_DOC = r"""{n}D convolution (cross-correlation), ``torch.nn.functional.conv{n}d``.

    .. math::
        \text{{out}}(N_i, C_{{out_j}}) = \text{{bias}}(C_{{out_j}}) +
        \sum_{{k=0}}^{{C_{{in}}/\text{{groups}}-1}} \text{{weight}}(C_{{out_j}}, k) \star
        \text{{input}}(N_i, g(j) \cdot C_{{in}}/\text{{groups}} + k)

    with output size per spatial dimension
    :math:`\lfloor (L + p_{{lo}} + p_{{hi}} - d(k-1) - 1) / s \rfloor + 1`.

    Args:
      input: ``(N, C_in, {sp})`` or unbatched ``(C_in, {sp})``; with ``channels_last=True``
        ``(N, {sp}, C_in)`` or ``({sp}, C_in)``.
      weight: ``(C_out, C_in / groups, {k})``, torch's layout, also when ``channels_last``.
      bias: optional ``(C_out,)``.
      stride: int or tuple of {n} positive ints.
      padding: int or tuple of {n} non-negative ints (both sides), ``'valid'`` (no padding) or
        ``'same'`` (total ``d(k-1)`` per dimension, the odd unit on the end side; stride must be 1).
      dilation: int or tuple of {n} positive ints.
      groups: positive int dividing ``C_in`` and ``C_out``.
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``: how the
        ``padding`` amounts are filled (what ``nn.Conv{n}d(padding_mode=...)`` does).
      channels_last: take and return channels-last arrays (XLA's preferred layout on CPU).
      precision: passed to ``lax.conv_general_dilated`` (e.g. ``'highest'`` to avoid TF32/bf16
        passes on GPU/TPU).

    Returns:
      ``(N, C_out, {sp_out})`` (or unbatched / channels-last like ``input``), dtype of ``input``.
      float16/bfloat16 inputs accumulate in float32 and are rounded once after the bias.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.ones((2, 4) + (5,) * {n})
      >>> w = jnp.ones((6, 2) + (3,) * {n})
      >>> F.conv{n}d(x, w, groups=2, padding="same").shape
      {example_shape}

    Differences from PyTorch:
      ``padding_mode`` and ``channels_last`` are jaxnn extensions (torch keeps padding_mode on
      ``nn.Conv{n}d``). torch raises RuntimeError where jaxnn raises ValueError/TypeError. Mixed
      input/weight dtypes are refused, as torch refuses them.
    """

_CONV_T_DOC = r"""{n}D transposed convolution, ``torch.nn.functional.conv_transpose{n}d``.

    The gradient of ``conv{n}d`` with respect to its input. Output size per spatial dimension:
    :math:`(L - 1)s - 2p + d(k - 1) + \text{{output\_padding}} + 1`.

    Args:
      input: ``(N, C_in, {sp})`` or unbatched ``(C_in, {sp})`` (channels last with
        ``channels_last=True``).
      weight: ``(C_in, C_out / groups, {k})``, torch's transposed layout.
      bias: optional ``(C_out,)``.
      stride, padding, output_padding, dilation: ints or tuples of {n}; ``output_padding`` must be
        smaller than ``stride`` or ``dilation`` in each dimension. Note torch's argument order:
        ``groups`` comes BEFORE ``dilation``.
      groups: positive int dividing ``C_in``.

    Returns:
      ``(N, C_out, {sp_out})``, dtype of ``input``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import jaxnn.functional as F
      >>> x = jnp.ones((1, 4) + (3,) * {n})
      >>> w = jnp.ones((4, 3) + (2,) * {n})
      >>> F.conv_transpose{n}d(x, w, stride=2, groups=2).shape
      {example_t_shape}

    Differences from PyTorch:
      None in results. Built on ``lax.conv_general_dilated`` with an input dilation and a flipped,
      regrouped kernel, so grouped cases with ``C_in / groups > 1`` are exact (lax.conv_transpose
      and flax.linen.ConvTranspose have no groups).
    """


def _docs(n: int) -> dict[str, str]:
    sp = {1: "L", 2: "H, W", 3: "D, H, W"}[n]
    k = {1: "kL", 2: "kH, kW", 3: "kD, kH, kW"}[n]
    return dict(
        n=str(n),
        sp=sp,
        k=k,
        sp_out=", ".join(s + "_out" for s in sp.split(", ")),
        example_shape="(2, 6" + ", 5" * n + ")",
        example_t_shape="(1, 6" + ", 6" * n + ")",
    )


def conv1d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | Literal["valid", "same"] = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
    *,
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
    channels_last: bool = False,
    precision: Any = None,
) -> jax.Array:
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, padding_mode, channels_last, precision)


def conv2d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | Literal["valid", "same"] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    *,
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
    channels_last: bool = False,
    precision: Any = None,
) -> jax.Array:
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, padding_mode, channels_last, precision)


def conv3d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] | Literal["valid", "same"] = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
    *,
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
    channels_last: bool = False,
    precision: Any = None,
) -> jax.Array:
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, padding_mode, channels_last, precision)


def conv_transpose1d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
    *,
    channels_last: bool = False,
    precision: Any = None,
) -> jax.Array:
    return _conv_transpose(
        1, input, weight, bias, stride, padding, output_padding, groups, dilation, channels_last, precision
    )


def conv_transpose2d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    channels_last: bool = False,
    precision: Any = None,
) -> jax.Array:
    return _conv_transpose(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation, channels_last, precision
    )


def conv_transpose3d(
    input: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
    *,
    channels_last: bool = False,
    precision: Any = None,
) -> jax.Array:
    return _conv_transpose(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation, channels_last, precision
    )


for _n, _f in ((1, conv1d), (2, conv2d), (3, conv3d)):
    _f.__doc__ = _CONV_DOC.format(**_docs(_n))
for _n, _f in ((1, conv_transpose1d), (2, conv_transpose2d), (3, conv_transpose3d)):
    _f.__doc__ = _CONV_T_DOC.format(**_docs(_n))
del _n, _f
