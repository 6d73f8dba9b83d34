"""Argument normalisation and validation shared by every jaxnn function.

Everything here runs in Python, before tracing, on static configuration values: a bad argument is
reported by jaxnn with the argument's name and value, never by XLA.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers (bools excluded, as torch excludes them from sizes)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def ntuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """Expand an int or a length-``n`` sequence of ints into a tuple of ``n`` ints.

    Raises:
      TypeError: if ``value`` is neither an int nor a sequence of ints.
      ValueError: if a sequence has the wrong length.
    """
    if is_int(value):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if not all(is_int(v) for v in items):
            raise TypeError(f"`{name}` must be an int or a tuple of {n} ints, got {value!r}.")
        if len(items) == 1:
            return (int(items[0]),) * n
        if len(items) != n:
            raise ValueError(
                f"`{name}` must be an int or a tuple of {n} ints (one per spatial dimension), "
                f"got {value!r} of length {len(items)}."
            )
        return tuple(int(v) for v in items)
    raise TypeError(f"`{name}` must be an int or a tuple of {n} ints, got {value!r}.")


def positive_tuple(value: Any, n: int, name: str, what: str) -> tuple[int, ...]:
    """``ntuple`` that also requires every entry to be > 0 (stride, dilation, kernel size)."""
    out = ntuple(value, n, name)
    if any(v <= 0 for v in out):
        raise ValueError(f"`{name}` must be positive ({what}), got {value!r}.")
    return out


def check_array(x: Any, name: str) -> None:
    """Require a JAX/NumPy array (or anything with ``shape`` and ``dtype``)."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}.")


def check_float(x: Any, name: str) -> None:
    """Require an inexact (floating or complex) array, as torch's float kernels do."""
    check_array(x, name)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"`{name}` must have a floating dtype, got {x.dtype}.")


def check_real_float(x: Any, name: str) -> None:
    """Require a real floating array: torch's normalisation kernels have no complex version
    (NotImplementedError there; a TypeError here)."""
    check_float(x, name)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"`{name}` must have a real floating dtype, got {x.dtype} (torch has no complex kernel).")


def check_same_dtype(x: Any, other: Any, name: str, ref: str = "input") -> None:
    """torch refuses mixed dtypes between input and parameters; so does jaxnn (no silent upcast)."""
    if other is not None and other.dtype != x.dtype:
        raise TypeError(
            f"`{name}` dtype ({other.dtype}) must match `{ref}` dtype ({x.dtype}); "
            f"cast one of them, e.g. `{name}.astype({ref}.dtype)`."
        )


def check_norm_param_dtype(x: Any, weight: Any, bias: Any) -> None:
    """torch's CPU norms (group_norm, layer_norm): ``weight`` and ``bias`` share one dtype, the
    input's or, for float16/bfloat16 input, float32 (the mixed-precision kernel: statistics and
    affine in float32, output in the input's dtype). Everything else is torch's "mixed dtype" error."""
    half = x.dtype in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.dtype != x.dtype and not (half and p.dtype == jnp.float32):
            also = " or be float32 (torch's mixed-precision norm)" if half else ""
            raise TypeError(
                f"`{name}` dtype ({p.dtype}) must match `input` dtype ({x.dtype}){also}; "
                f"cast one of them, e.g. `{name}.astype(input.dtype)`."
            )
    if weight is not None and bias is not None and weight.dtype != bias.dtype:
        raise TypeError(f"`bias` dtype ({bias.dtype}) must match `weight` dtype ({weight.dtype}) (torch's rule).")


def stat_dtype(dtype: Any) -> Any:
    """The dtype statistics and accumulations are computed in: float32 at least."""
    return jnp.promote_types(dtype, jnp.float32)


def canonical_dim(dim: Any, ndim: int, name: str = "dim") -> int:
    """torch's dimension wrapping: -ndim <= dim < ndim (0-d tensors accept -1 and 0)."""
    if not is_int(dim):
        raise TypeError(f"`{name}` must be an int, got {dim!r}.")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(
            f"`{name}` (={dim}) is out of range for an input with {ndim} dimensions "
            f"(expected {-n} <= {name} < {n})."
        )
    return int(dim) % n


def shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"

