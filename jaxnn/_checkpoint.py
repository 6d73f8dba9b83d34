"""torch checkpoints without torch: a .safetensors reader/writer and value conversion.

Shared by :mod:`jaxnn.nnx` and :mod:`jaxnn.linen`. torch is imported only to read a ``.pt`` /
``.bin`` file or to convert a torch tensor that was passed in.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

_ST_TO_NP: dict[str, Any] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NP_TO_ST = {v: k for k, v in _ST_TO_NP.items()}
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class CheckpointError(ValueError):
    """A checkpoint file or state_dict that cannot be used as it is (the message says why)."""


def to_numpy(value: Any, key: str) -> np.ndarray:
    """Convert a numpy array, a JAX array or a torch tensor to a host numpy array."""
    if isinstance(value, np.ndarray):
        return value
    module = type(value).__module__
    if module.startswith("torch") and hasattr(value, "detach"):
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16: reinterpret the bits
            import torch

            return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return t.numpy()
    if hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(value)
    raise TypeError(
        f"state_dict value for key {key!r} must be an array or tensor, got {type(value).__name__}."
    )


def save_file(
    tensors: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``{name: array}`` to a ``.safetensors`` file that torch/safetensors can read.

    Args:
      tensors: flat mapping from dotted names to numpy/JAX arrays or torch tensors.
      path: destination file.
      metadata: optional ``{str: str}`` stored in the header's ``__metadata__``.
    """
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(to_numpy(tensors[name], name))
        if arr.dtype not in _NP_TO_ST:
            raise TypeError(f"cannot store {name!r} of dtype {arr.dtype} in a .safetensors file.")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _NP_TO_ST[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        if len(data) < 8:
            raise ValueError("file shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", data[:8])
        if n > len(data) - 8:
            raise ValueError(f"header length {n} exceeds the file size")
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _ST_TO_NP[info["dtype"]]
            start, end = info["data_offsets"]
            shape = tuple(info["shape"])
            if base + end > len(data) or end - start != int(np.prod(shape)) * dtype.itemsize:
                raise ValueError(f"tensor {name!r} has inconsistent offsets")
            buf = np.frombuffer(data, dtype=dtype.newbyteorder("<"), count=int(np.prod(shape)), offset=base + start)
            out[name] = buf.astype(dtype).reshape(shape)
        return out
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path!r} is not a valid .safetensors checkpoint: {e}") from e


def load_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a checkpoint file into ``{dotted name: numpy array}``.

    ``.safetensors`` files are read without torch. ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` files
    need torch and are opened with ``torch.load(weights_only=True)`` (no code execution); a
    wrapping ``{"state_dict": ...}`` is unwrapped.

    Raises:
      FileNotFoundError: the path does not exist.
      CheckpointError (a ValueError): the file is not a checkpoint jaxnn can read.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"checkpoint file {p!r} does not exist.")
    if p.endswith(".safetensors"):
        return _load_safetensors(p)
    if p.endswith(_TORCH_SUFFIXES):
        try:
            import torch
        except ImportError as e:  # pragma: no cover - torch is in the test extra
            raise ImportError(f"reading {p!r} needs torch; save it as .safetensors instead.") from e
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{p!r} is not a readable torch checkpoint: {e}") from e
        if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
            obj = obj["state_dict"]
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{p!r} holds a {type(obj).__name__}, not a state_dict mapping.")
        return {str(k): to_numpy(v, str(k)) for k, v in obj.items()}
    raise CheckpointError(
        f"cannot tell the format of {p!r}: expected a .safetensors file or a torch file "
        f"({', '.join(_TORCH_SUFFIXES)})."
    )


def as_state_dict(source: Any) -> dict[str, np.ndarray]:
    """A path, or a mapping of arrays/tensors, as ``{str: numpy array}``; all values checked first."""
    if isinstance(source, (str, os.PathLike)):
        return load_file(source)
    if not isinstance(source, Mapping):
        raise TypeError(
            f"state_dict must be a mapping of names to arrays or a checkpoint path, got {type(source).__name__}."
        )
    return {str(k): to_numpy(v, str(k)) for k, v in source.items()}


def optional_counters(norm_prefixes: Iterable[str], source: Any) -> set[str]:
    """The ``num_batches_tracked`` keys a state_dict may lack, as torch's
    ``_NormBase._load_from_state_dict`` allows: for every norm layer with running statistics (its
    dotted prefix, ``''`` for the root) unless ``source`` carries torch's ``_metadata`` saying the
    layer was saved at version 2 or later (a plain dict or a safetensors file has none). The
    counter then keeps its current value (0 for a fresh module), as in torch.
    """
    metadata = getattr(source, "_metadata", None)
    out = set()
    for prefix in norm_prefixes:
        version = None
        if isinstance(metadata, Mapping):
            version = (metadata.get(prefix) or {}).get("version")
        if version is None or version < 2:
            out.add(f"{prefix}.num_batches_tracked" if prefix else "num_batches_tracked")
    return out


class LoadResult(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` could not match (torch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def plan_load(
    expected: Mapping[str, tuple[tuple[int, ...], Any]],
    given: Mapping[str, np.ndarray],
    *,
    strict: bool,
    dtype: Any = None,
    optional: Iterable[str] = (),
) -> tuple[dict[str, np.ndarray], LoadResult]:
    """Match a flat state_dict against the model's ``{key: (shape, dtype)}`` before touching it.

    Keys in ``optional`` that ``given`` lacks are neither missing nor loaded: the variable keeps
    its value (torch's BatchNorm ``num_batches_tracked``, see :func:`optional_counters`).

    Every problem is collected and reported in one error (torch's format); nothing is loaded
    partially. Shape mismatches are errors even with ``strict=False``, as in torch. Values are cast
    to ``dtype`` if given (floating variables only: counters keep their integer dtype), else to the
    dtype the model's variable already has.
    """
    missing = sorted(set(expected) - set(given) - set(optional))
    unexpected = sorted(set(given) - set(expected))
    errors = []
    if strict and unexpected:
        errors.append("Unexpected key(s) in state_dict: " + ", ".join(repr(k) for k in unexpected) + ".")
    if strict and missing:
        errors.append("Missing key(s) in state_dict: " + ", ".join(repr(k) for k in missing) + ".")
    values = {}
    for key in sorted(set(expected) & set(given)):
        shape, target = expected[key]
        arr = given[key]
        if tuple(arr.shape) != tuple(shape):
            errors.append(
                f"size mismatch for {key!r}: copying a param with shape {tuple(arr.shape)} from "
                f"checkpoint, the shape in current model is {tuple(shape)}."
            )
            continue
        counter = np.issubdtype(np.dtype(target), np.integer) or np.dtype(target) == np.bool_
        cast = dtype if dtype is not None and not counter else target
        values[key] = np.asarray(arr).astype(cast, copy=False)
    if errors:
        raise CheckpointError("Error(s) in loading state_dict:\n\t" + "\n\t".join(errors))
    return values, LoadResult(missing, unexpected)
