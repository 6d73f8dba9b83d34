"""torch checkpoints without torch: safetensors files, shards, indexes, variants, aliases, key maps.

Shared by :mod:`jaxnn.nnx` and :mod:`jaxnn.linen`. ``.safetensors`` files are read and written with
the ``safetensors`` library (its numpy interface, lazily through ``safe_open``), except reading
tensors of the float8 dtypes, which that interface cannot return (it looks them up as
``numpy.float8_*``, which numpy does not have; writing ``ml_dtypes`` float8 arrays works): those
are read through a memory map of the byte range that jaxnn's header check validated. torch is
imported only to read a ``.pt`` / ``.bin`` file (``torch.load(weights_only=True)``) or to convert
a torch tensor that was passed in.

A checkpoint is opened as a :class:`Checkpoint`: every file's header is read and checked first
(offsets in range, neither overlapping nor leaving gaps, known dtypes, every shard an index names
present), so a bad file is one :class:`CheckpointError` naming it, raised before any value is
loaded. Values are read one tensor (or one device's slice of it) at a time.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
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
# dtypes the safetensors library's numpy interface cannot read (see the module docstring)
_OWN_CODE_DTYPES = frozenset({"F8_E4M3", "F8_E5M2"})
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_SHARD_RE = re.compile(r"-\d{5}-of-\d{5}\.(safetensors|bin)$")
_SIZE_UNITS = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3, "TIB": 2**40, "GIB": 2**30, "MIB": 2**20,
               "KIB": 2**10, "B": 1}

KeyMap = Callable[[str], "str | None"] | Mapping[str, str]


class CheckpointError(ValueError):
    """A checkpoint file or state_dict that cannot be used as it is (the message says why)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist: a :class:`CheckpointError` and a ``FileNotFoundError``."""


def to_numpy(value: Any, key: str) -> np.ndarray:
    """Convert a numpy array, a JAX array or a torch tensor to a host numpy array."""
    if isinstance(value, np.ndarray):
        return value
    module = type(value).__module__
    if module.startswith("torch") and hasattr(value, "detach"):
        t = value.detach().cpu()
        name = str(t.dtype).removeprefix("torch.")
        special = {"bfloat16": ml_dtypes.bfloat16, "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
                   "float8_e5m2": ml_dtypes.float8_e5m2}
        if name in special:  # numpy has none of these: reinterpret the bits
            import torch

            bits = torch.int16 if name == "bfloat16" else torch.uint8
            return t.contiguous().view(bits).numpy().view(special[name])
        return t.numpy()
    if hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(value)
    raise TypeError(
        f"state_dict value for key {key!r} must be an array or tensor, got {type(value).__name__}."
    )


# --- reading ------------------------------------------------------------------------------------


class _Entry:
    """One tensor of a checkpoint: where it lives, its shape and dtype, how to read it (or a slice)."""

    origin: str  # the file (or "state_dict") it comes from, for messages
    shape: tuple[int, ...]
    dtype: np.dtype

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        raise NotImplementedError


class _ArrayEntry(_Entry):
    def __init__(self, array: np.ndarray, origin: str):
        self.array, self.origin = array, origin
        self.shape, self.dtype = tuple(array.shape), array.dtype

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        return np.asarray(self.array if index is None else self.array[index])


class _ObjectEntry(_Entry):
    """A state_dict value that is not a tensor (``torch.load`` allows ints, floats, strings, ...):
    an unexpected key when nothing matches it, an error when a variable does (as in torch)."""

    def __init__(self, value: Any, origin: str):
        self.value, self.origin = value, origin
        self.shape, self.dtype = (), np.dtype(object)

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        raise TypeError(f"a {type(self.value).__name__} from {self.origin!r} is not a tensor.")


def _entry(value: Any, key: str, origin: str) -> _Entry:
    try:
        return _ArrayEntry(to_numpy(value, key), origin)
    except TypeError:
        return _ObjectEntry(value, origin)


class _SafetensorsEntry(_Entry):
    def __init__(self, file: _SafetensorsFile, name: str, dtype: str, shape: tuple[int, ...], start: int):
        self.file, self.name, self.st_dtype, self.shape, self.start = file, name, dtype, shape, start
        self.origin, self.dtype = file.path, _ST_TO_NP[dtype]

    def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
        if self.st_dtype in _OWN_CODE_DTYPES:  # the library's numpy interface cannot read these
            count = int(np.prod(self.shape))
            mm = np.memmap(self.file.path, dtype=np.uint8, mode="r", offset=self.file.base + self.start,
                           shape=(count * self.dtype.itemsize,))
            view = mm.view(self.dtype).reshape(self.shape)
            return np.array(view if index is None else view[index])
        handle = self.file.handle()
        try:
            if index is None or all(s == slice(None) for s in index):
                return np.asarray(handle.get_tensor(self.name))
            return np.asarray(handle.get_slice(self.name)[index])
        except Exception as e:  # SafetensorError: I/O or a file changed since it was opened
            raise CheckpointError(f"cannot read {self.name!r} from {self.file.path!r}: {e}") from e


class _SafetensorsFile:
    """A validated ``.safetensors`` file: its entries, its metadata, a lazily opened ``safe_open``."""

    def __init__(self, path: str):
        self.path = path
        self._handle = None
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise ValueError("file shorter than the 8-byte header length")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8:
                    raise ValueError(f"header length {n} exceeds the file size ({size} bytes): truncated file")
                header = json.loads(f.read(n).decode("utf-8"))
            if not isinstance(header, dict):
                raise ValueError("header is not a JSON object")
            self.base = 8 + n
            meta = header.pop("__metadata__", None) or {}
            if not isinstance(meta, dict):
                raise ValueError("__metadata__ is not a JSON object")
            self.metadata: dict[str, str] = meta
            self.entries: dict[str, _SafetensorsEntry] = {}
            spans = []
            for name, info in header.items():
                st_dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
                if st_dtype not in _ST_TO_NP:
                    raise ValueError(f"tensor {name!r} has dtype {st_dtype!r}, which jaxnn cannot load "
                                     f"(known: {', '.join(_ST_TO_NP)})")
                if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
                    raise ValueError(f"tensor {name!r} has an invalid shape {shape!r}")
                if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
                    raise ValueError(f"tensor {name!r} has invalid data offsets {offsets!r}")
                start, end = offsets
                nbytes = int(np.prod(shape, dtype=np.int64)) * _ST_TO_NP[st_dtype].itemsize
                if not 0 <= start <= end or self.base + end > size:
                    raise ValueError(f"tensor {name!r} has data offsets {offsets} out of range "
                                     f"(data section is {size - self.base} bytes): truncated or corrupt file")
                if end - start != nbytes:
                    raise ValueError(f"tensor {name!r} has data offsets {offsets} ({end - start} bytes) but "
                                     f"shape {shape} of {st_dtype} needs {nbytes} bytes")
                spans.append((start, end, name))
                self.entries[name] = _SafetensorsEntry(self, name, st_dtype, tuple(shape), start)
            spans.sort()
            for (_, e0, n0), (s1, _, n1) in zip(spans, spans[1:], strict=False):
                if s1 < e0:
                    raise ValueError(f"tensors {n0!r} and {n1!r} have overlapping data offsets")
                if s1 > e0:  # the library refuses gaps too (only float8 tensors would get past it)
                    raise ValueError(f"{s1 - e0} bytes between tensors {n0!r} and {n1!r} belong to no tensor")
            covered = spans[-1][1] if spans else 0
            if (spans and spans[0][0] != 0) or covered != size - self.base:
                raise ValueError(f"the tensors cover bytes {spans[0][0] if spans else 0}..{covered} of a data "
                                 f"section of {size - self.base} bytes: corrupt file")
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path!r} is not a valid .safetensors checkpoint: {e}") from e

    def handle(self) -> Any:
        if self._handle is None:
            from safetensors import safe_open

            try:
                self._handle = safe_open(self.path, framework="numpy")
            except Exception as e:  # SafetensorError
                raise CheckpointError(f"{self.path!r} is not a valid .safetensors checkpoint: {e}") from e
        return self._handle


def _aliases_by_identity(items: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Keys whose values are one tensor: torch tensors viewing the same storage bytes the same way
    (``state_dict`` of tied or twice-registered parameters, ``torch.load`` keeps that sharing), or
    the same Python object (numpy/JAX arrays)."""
    groups: dict[Any, list[str]] = {}
    for key, v in items.items():
        if type(v).__module__.startswith("torch") and hasattr(v, "untyped_storage"):
            ident: Any = ("torch", v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape),
                          tuple(v.stride()), str(v.dtype))
            if v.untyped_storage().nbytes() == 0:
                ident = ("obj", id(v))
        elif isinstance(v, np.ndarray) or hasattr(v, "__array__") and hasattr(v, "shape"):
            ident = ("obj", id(v))
        else:  # not a tensor (ints are cached objects: two 0s are not one tensor)
            continue
        groups.setdefault(ident, []).append(key)
    return [tuple(g) for g in groups.values() if len(g) > 1]


class Checkpoint:
    """A checkpoint opened for loading: ``{key: entry}`` read lazily, plus alias groups.

    Build it with :func:`open_checkpoint`. ``files`` lists the files it reads, ``aliases`` the
    groups of keys that are one tensor.
    """

    def __init__(self, entries: dict[str, _Entry], aliases: Iterable[tuple[str, ...]], files: Sequence[str],
                 torch_metadata: Any = None):
        self.entries = entries
        self.aliases = [tuple(g) for g in aliases]
        self.files = list(files)
        self.torch_metadata = torch_metadata

    def alias_map(self) -> dict[str, tuple[str, ...]]:
        return {k: g for g in self.aliases for k in g}

    def mapped(self, key_map: KeyMap | None) -> Checkpoint:
        """The same checkpoint with every key rewritten by ``key_map`` (see :func:`apply_key_map`)."""
        if key_map is None:
            return self
        fn = as_key_function(key_map)
        entries: dict[str, _Entry] = {}
        sources: dict[str, str] = {}
        amap = self.alias_map()
        renamed: dict[str, str] = {}
        for key, entry in self.entries.items():
            new = fn(key)
            if new is None:
                continue
            if not isinstance(new, str):
                raise TypeError(f"`key_map` must return a str or None, got {type(new).__name__} for {key!r}.")
            if new in entries and key not in amap.get(sources[new], ()):
                raise CheckpointError(
                    f"`key_map` maps both {sources[new]!r} and {key!r} of {entry.origin!r} to {new!r}.")
            renamed[key] = new
            if new not in entries:
                entries[new], sources[new] = entry, key
        aliases = []
        for group in self.aliases:
            names = tuple(dict.fromkeys(renamed[k] for k in group if k in renamed))
            if len(names) > 1:
                aliases.append(names)
        metadata = self.torch_metadata
        if isinstance(metadata, Mapping):  # torch's per-module versions, keyed by module prefix
            metadata = {}
            for prefix, value in self.torch_metadata.items():
                new = fn(f"{prefix}.__module__" if prefix else "__module__")
                if isinstance(new, str) and new.endswith("__module__"):
                    metadata[new[: -len("__module__")].rstrip(".")] = value
        return Checkpoint(entries, aliases, self.files, metadata)


def as_key_function(key_map: KeyMap) -> Callable[[str], str | None]:
    """``key_map`` as a function: a callable is used as it is (None drops the key); a mapping
    ``{regex: replacement}`` is applied in order with :func:`re.sub` (``{r"^module\\.": ""}``)."""
    if callable(key_map):
        return key_map
    if not isinstance(key_map, Mapping):
        raise TypeError(f"`key_map` must be a callable or a mapping of regex rewrites, got {type(key_map).__name__}.")
    rules = []
    for pattern, repl in key_map.items():
        try:
            rules.append((re.compile(pattern), repl))
        except re.error as e:
            raise ValueError(f"`key_map` pattern {pattern!r} is not a valid regular expression: {e}.") from e

    def fn(key: str) -> str:
        for rx, repl in rules:
            key = rx.sub(repl, key)
        return key

    return fn


def _open_torch_file(path: str) -> Checkpoint:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is in the test extra
        raise ImportError(f"reading {path!r} needs torch; save it as .safetensors instead.") from e
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # legacy (non-zip) files cannot be memory-mapped
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path!r} is not a readable torch checkpoint: {e}") from e
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path!r} holds a {type(obj).__name__}, not a state_dict mapping.")
    items = {str(k): v for k, v in obj.items()}
    entries: dict[str, _Entry] = {k: _entry(v, k, path) for k, v in items.items()}
    return Checkpoint(entries, _aliases_by_identity(items), [path], getattr(obj, "_metadata", None))


def _open_index(path: str) -> Checkpoint:
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        weight_map = index["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ValueError("`weight_map` is not a mapping of keys to shard file names")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path!r} is not a valid checkpoint index: {e}") from e
    folder = os.path.dirname(path)
    shards: dict[str, Checkpoint] = {}
    for shard in dict.fromkeys(weight_map.values()):
        shard_path = os.path.join(folder, shard)
        if not os.path.isfile(shard_path):
            raise CheckpointNotFoundError(
                f"index {path!r} names shard {shard!r}, which does not exist ({shard_path!r}).")
        shards[shard] = _open_file(shard_path)
    entries: dict[str, _Entry] = {}
    aliases: list[tuple[str, ...]] = []
    for key, shard in weight_map.items():
        if key not in shards[shard].entries:
            raise CheckpointError(f"index {path!r} puts {key!r} in shard {shard!r}, which does not hold it.")
        entries[key] = shards[shard].entries[key]
    for ck in shards.values():
        aliases += [g for g in ck.aliases if all(k in entries for k in g)]
    return Checkpoint(entries, aliases, [path, *(c.files[0] for c in shards.values())])


def _open_file(path: str) -> Checkpoint:
    if path.endswith(".index.json") or re.search(r"\.index\.[^.]+\.json$", path):
        return _open_index(path)
    if path.endswith(".safetensors"):
        f = _SafetensorsFile(path)
        return Checkpoint(dict(f.entries), [], [path])
    if path.endswith(_TORCH_SUFFIXES):
        return _open_torch_file(path)
    raise CheckpointError(
        f"cannot tell the format of {path!r}: expected a .safetensors file, a torch file "
        f"({', '.join(_TORCH_SUFFIXES)}) or an index (*.index.json)."
    )


_WEIGHT_EXTS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_INDEX_EXTS = (".safetensors.index.json", ".bin.index.json")


def find_in_folder(folder: str, variant: str | None = None) -> str:
    """The checkpoint file (or index) a folder holds, as ``from_pretrained`` picks it.

    Indexes (``*.safetensors.index.json`` before ``*.bin.index.json``) come before single files
    (``.safetensors`` before ``.bin`` / ``.pt`` / ``.pth`` / ``.ckpt``). With ``variant="fp16"``
    only the variant's files count: ``model.fp16.safetensors``, the index
    ``model.safetensors.index.fp16.json`` that transformers' and diffusers' ``_add_variant`` name
    (or older diffusers' ``model.fp16.safetensors.index.json``) and its shards. Without it,
    ``<stem>.<variant>.<ext>`` files sitting beside a plain ``<stem>.<ext>`` (or its index) are
    ignored, so the plain checkpoint is the one loaded.
    """
    names = sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))

    def has_plain(stem: str) -> bool:
        return any(n in (stem + e for e in _WEIGHT_EXTS + _INDEX_EXTS) or n.startswith(stem + "-") for n in names)

    def split(n: str) -> tuple[str, str] | None:  # (stem, ext) of a weight or index file
        for e in _INDEX_EXTS + _WEIGHT_EXTS:
            if n.endswith(e) and not _SHARD_RE.search(n):
                return n[: -len(e)], e
        return None

    index: list[str] = []
    files: list[str] = []
    for n in names:
        parts = split(n)
        if variant is None:
            if parts is None:
                continue
            stem, ext = parts
            if "." in stem and has_plain(stem.rsplit(".", 1)[0]):
                continue  # <stem>.<variant>.<ext> beside the plain files
        else:
            m = re.fullmatch(r"(.+)\.(safetensors|bin)\.index\." + re.escape(variant) + r"\.json", n)
            if m:
                index.append(n)
                continue
            if parts is None or not parts[0].endswith("." + variant):
                continue
            ext = parts[1]
        (index if ext in _INDEX_EXTS else files).append(n)
    label = "" if variant is None else f" for variant {variant!r}"
    for group in (
        [n for n in index if ".safetensors." in n], [n for n in index if ".bin." in n],
        [n for n in files if n.endswith(".safetensors")], [n for n in files if not n.endswith(".safetensors")],
    ):
        if len(group) == 1:
            return os.path.join(folder, group[0])
        if len(group) > 1:
            raise CheckpointError(f"folder {folder!r} holds several checkpoints{label}: {', '.join(group)}; "
                                  "pass the file (or index) to load.")
    raise CheckpointError(f"folder {folder!r} holds no checkpoint{label} (.safetensors, .bin, .pt, .pth, .ckpt "
                          f"or an index of them); it has: {', '.join(names) or 'nothing'}.")


def open_checkpoint(source: Any, *, variant: str | None = None) -> Checkpoint:
    """A mapping of arrays/tensors, a file, an index file or a folder holding one of those, opened
    and checked (every file's header, every shard) without reading any tensor."""
    if isinstance(source, Checkpoint):
        return source
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        if os.path.isdir(p):
            p = find_in_folder(p, variant)
        elif variant is not None:
            raise ValueError(f"`variant` (={variant!r}) picks files in a folder; {p!r} is not a folder.")
        if not os.path.isfile(p):
            raise CheckpointNotFoundError(f"checkpoint file {p!r} does not exist.")
        return _open_file(p)
    if not isinstance(source, Mapping):
        raise TypeError(
            "state_dict must be a mapping of names to arrays, or the path of a checkpoint file, index or "
            f"folder, got {type(source).__name__}."
        )
    items = {str(k): v for k, v in source.items()}
    entries: dict[str, _Entry] = {k: _entry(v, k, "state_dict") for k, v in items.items()}
    return Checkpoint(entries, _aliases_by_identity(items), [], getattr(source, "_metadata", None))


def load_file(path: str | os.PathLike, *, variant: str | None = None) -> dict[str, np.ndarray]:
    """Read a checkpoint into ``{dotted name: numpy array}``.

    ``path`` is a ``.safetensors`` file (read with the safetensors library, without torch), a
    ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` file (``torch.load(weights_only=True)``; a wrapping
    ``{"state_dict": ...}`` is unwrapped), an index ``*.index.json`` of shards, or a folder holding
    one of those (``variant`` picks ``*.{variant}.safetensors`` files there). Entries that are not
    tensors (a ``.pt`` file may hold ints or strings beside them) are left out.

    Raises:
      CheckpointError (a ValueError): the file is not a checkpoint jaxnn can read (named); a path
        or shard that does not exist raises it as ``CheckpointNotFoundError``, also a
        ``FileNotFoundError``.
    """
    ck = open_checkpoint(path, variant=variant)
    return {k: e.read() for k, e in ck.entries.items() if not isinstance(e, _ObjectEntry)}


def optional_counters(norm_prefixes: Iterable[str], source: Any) -> set[str]:
    """The ``num_batches_tracked`` keys a state_dict may lack, as torch's
    ``_NormBase._load_from_state_dict`` allows: for every norm layer with running statistics (its
    dotted prefix, ``''`` for the root) unless ``source`` carries torch's ``_metadata`` saying the
    layer was saved at version 2 or later (a plain dict or a safetensors file has none). The
    counter then keeps its current value (0 for a fresh module), as in torch.
    """
    metadata = source.torch_metadata if isinstance(source, Checkpoint) else getattr(source, "_metadata", None)
    out = set()
    for prefix in norm_prefixes:
        version = None
        if isinstance(metadata, Mapping):
            version = (metadata.get(prefix) or {}).get("version")
        if version is None or version < 2:
            out.add(f"{prefix}.num_batches_tracked" if prefix else "num_batches_tracked")
    return out


# --- matching -----------------------------------------------------------------------------------


class LoadResult(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` could not match (torch's ``_IncompatibleKeys``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Target(NamedTuple):
    """One variable of the model: its state_dict names (several when tied), shape and dtype."""

    names: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: Any


def _is_floating(dtype: np.dtype) -> bool:
    # ml_dtypes' bfloat16 and float8 types are not numpy floating subtypes
    return np.issubdtype(dtype, np.inexact) or dtype in (_ST_TO_NP["BF16"], _ST_TO_NP["F8_E4M3"], _ST_TO_NP["F8_E5M2"])


def _suggest(key: str, candidates: Sequence[str]) -> str:
    near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"{key!r} (did you mean {near[0]!r}?)" if near else repr(key)


def _cast_dtype(target: Any, dtype: Any) -> np.dtype:
    target = np.dtype(target)
    counter = np.issubdtype(target, np.integer) or target == np.bool_
    return target if dtype is None or counter else np.dtype(dtype)


def check_dtype(dtype: Any) -> None:
    """``load_state_dict``'s ``dtype``: None or a real floating dtype jaxnn can hold. An integer
    or boolean one would truncate every weight silently, so it is an error."""
    if dtype is None:
        return
    try:
        want = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"`dtype` (={dtype!r}) is not a dtype: {e}.") from e
    if not _is_floating(want) or np.issubdtype(want, np.complexfloating) or want not in _NP_TO_ST:
        raise ValueError(f"`dtype` (={dtype!r}) must be a real floating dtype (float32, bfloat16, float16, "
                         "float8_e4m3fn, ...): it is what floating values are cast to; integer and boolean "
                         "buffers always keep their own dtype.")


def _cast(host: np.ndarray, cast: np.dtype) -> np.ndarray:
    """``host.astype(cast)`` as torch's ``copy_`` converts: into float8_e4m3fn, which has no
    infinity, torch saturates finite overflow and +-inf to +-448 (c10's
    ``fp8e4m3fn_from_fp32_value``) where ml_dtypes gives NaN; clipping first gives torch's bits
    (every value in (448, 480) rounds to 448 either way; NaN stays NaN)."""
    if cast == _ST_TO_NP["F8_E4M3"] and host.dtype != cast and host.dtype != np.bool_:
        host = np.clip(host, -448, 448)
    return host.astype(cast, copy=False)


def plan_load(
    targets: Sequence[Target],
    ck: Checkpoint,
    *,
    strict: bool,
    dtype: Any = None,
    optional: Iterable[str] = (),
) -> tuple[dict[int, _Entry], LoadResult]:
    """Match a checkpoint against the model's variables before reading or touching anything.

    A variable with several names (tied in the model) is satisfied by any one of them; a
    checkpoint key that is one tensor with a matched key (an alias in the checkpoint) is not
    unexpected. Keys in ``optional`` that the checkpoint lacks are neither missing nor loaded
    (torch's BatchNorm ``num_batches_tracked``, see :func:`optional_counters`).

    Every problem is collected and reported in one error (torch's format, with the nearest name
    suggested); nothing is loaded partially. Shape mismatches are errors even with ``strict=False``,
    as in torch; so is a floating value for an integer or boolean variable.

    Returns ``({index into targets: entry to read}, LoadResult)``.
    """
    check_dtype(dtype)
    optional = set(optional)
    amap = ck.alias_map()
    consumed: set[str] = set()
    chosen: dict[int, _Entry] = {}
    missing: list[str] = []
    errors: list[str] = []
    for i, t in enumerate(targets):
        present = [n for n in t.names if n in ck.entries]
        if not present:
            if not all(n in optional for n in t.names):
                missing.append(t.names[0])
            continue
        first = present[0]
        for n in present:
            consumed.update(amap.get(n, (n,)))
        entry = ck.entries[first]
        objects = [n for n in present if isinstance(ck.entries[n], _ObjectEntry)]
        if objects:  # torch: "expected torch.Tensor or Tensor-like object from checkpoint"
            errors += [f"While copying the parameter named {n!r}, expected an array or tensor from the checkpoint "
                       f"but received {type(ck.entries[n].value).__name__}"  # type: ignore[attr-defined]
                       + ("" if ck.entries[n].origin == "state_dict" else f" (in {ck.entries[n].origin!r})") + "."
                       for n in objects]
            continue
        for other in present[1:]:
            if other in amap.get(first, ()) or ck.entries[other] is entry:
                continue
            a, b = entry.read(), ck.entries[other].read()
            if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b, equal_nan=True):
                errors.append(f"{first!r} and {other!r} are one tensor in the model but differ in the checkpoint.")
        if tuple(entry.shape) != tuple(t.shape):
            where = "" if entry.origin == "state_dict" else f" (in {entry.origin!r})"
            errors.append(
                f"size mismatch for {first!r}: copying a param with shape {tuple(entry.shape)} from "
                f"checkpoint{where}, the shape in current model is {tuple(t.shape)}."
            )
            continue
        target = np.dtype(t.dtype)
        if _is_floating(entry.dtype) and (np.issubdtype(target, np.integer) or target == np.bool_):
            where = "" if entry.origin == "state_dict" else f" in {entry.origin!r}"
            errors.append(f"dtype mismatch for {first!r}: the checkpoint{where} holds {entry.dtype}, the model's "
                          f"variable is {target} and cannot take floating values.")
            continue
        if entry.dtype not in _NP_TO_ST:
            errors.append(f"{first!r} has dtype {entry.dtype}, which jaxnn cannot load.")
            continue
        chosen[i] = entry
    unexpected = sorted(set(ck.entries) - consumed)
    missing.sort()
    if strict and unexpected:
        errors.append("Unexpected key(s) in state_dict: "
                      + ", ".join(_suggest(k, missing) for k in unexpected) + ".")
        nested = [k for k in unexpected if isinstance(ck.entries[k], _ObjectEntry)
                  and isinstance(ck.entries[k].value, Mapping)]  # type: ignore[attr-defined]
        if nested:  # {"model": state_dict, "optimizer": ...}: only "state_dict" is unwrapped
            errors.append(f"{', '.join(repr(k) for k in nested)} hold{'s' if len(nested) == 1 else ''} a nested "
                          f"mapping: pass that state_dict itself (e.g. torch.load(path, weights_only=True)"
                          f"[{nested[0]!r}]).")
    if strict and missing:
        errors.append("Missing key(s) in state_dict: " + ", ".join(_suggest(k, unexpected) for k in missing) + ".")
    if errors:
        files = f" from {', '.join(repr(f) for f in ck.files[:3])}{' ...' if len(ck.files) > 3 else ''}"
        raise CheckpointError(f"Error(s) in loading state_dict{files if ck.files else ''}:\n\t" + "\n\t".join(errors))
    return chosen, LoadResult(missing, unexpected)


def read_value(entry: _Entry, target: Target, dtype: Any = None, sharding: Any = None) -> Any:
    """One variable's value as a JAX array of the model's dtype (or ``dtype``): the whole tensor
    on the default device, or with ``sharding`` each device's slice read on its own from the file
    and copied to its device before the next one is read, so the host holds one slice at a time
    (``jax.make_array_from_callback`` would gather every device's slice on the host first)."""
    import jax
    import jax.numpy as jnp

    cast = _cast_dtype(target.dtype, dtype)
    if sharding is None:
        return jnp.asarray(_cast(entry.read(), cast))
    shape = tuple(target.shape)
    pieces = []
    for device, index in sharding.addressable_devices_indices_map(shape).items():
        host = _cast(entry.read(tuple(index)), cast)
        # wait for the copy: the transfer is asynchronous and keeps `host` alive until it is done
        piece = jax.device_put(host, device).block_until_ready()
        if device.platform == "cpu" and piece.unsafe_buffer_pointer() == host.ctypes.data:
            # XLA:CPU adopted the (suitably aligned) host buffer instead of copying it, which would
            # keep every slice's host buffer, and whatever it views, alive: take a device copy
            piece = jax.device_put(piece, device, may_alias=False).block_until_ready()
        pieces.append(piece)
        del host, piece
    return jax.make_array_from_single_device_arrays(shape, sharding, pieces)


def resolve_sharding(sharding: Any, key: str, current: Any = None) -> Any:
    """``sharding`` for one key: one Sharding for all, a mapping from key, or a callable of the key.
    Without one (None, a key the mapping lacks or maps to None, a callable's None), a variable
    that already lives on several devices (``current``, its value) keeps its sharding; anything
    else goes to the default device."""
    import jax

    if isinstance(sharding, Mapping):
        chosen = sharding.get(key)
    elif callable(sharding) and not isinstance(sharding, jax.sharding.Sharding):
        chosen = sharding(key)
    elif sharding is None or isinstance(sharding, jax.sharding.Sharding):
        chosen = sharding
    else:
        raise TypeError("`sharding` must be a jax.sharding.Sharding, a mapping from key to sharding or a callable "
                        f"of the key, got {type(sharding).__name__}.")
    if chosen is None:  # no sharding given for this key (a mapping without it, a callable's None)
        if isinstance(current, jax.Array) and len(current.sharding.device_set) > 1:
            return current.sharding
        return None
    if not isinstance(chosen, jax.sharding.Sharding):
        raise TypeError(f"`sharding` gave {type(chosen).__name__} for {key!r}; expected a jax.sharding.Sharding "
                        "(e.g. NamedSharding(mesh, PartitionSpec(...))) or None.")
    return chosen


# --- writing ------------------------------------------------------------------------------------


def _host(name: str, value: Any) -> np.ndarray:
    arr = to_numpy(value, name)
    arr = arr if arr.flags.c_contiguous else arr.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
    if arr.dtype not in _NP_TO_ST:
        raise TypeError(f"cannot store {name!r} of dtype {arr.dtype} in a .safetensors file.")
    return arr


def _nbytes(name: str, value: Any) -> int:
    """The stored size of a tensor, checked storable, without copying a device array to the host."""
    if isinstance(value, np.ndarray) or type(value).__module__.startswith("torch") or not (
            hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype")):
        return _host(name, value).nbytes  # host memory already (or not an array: raises TypeError)
    dtype = np.dtype(value.dtype)
    if dtype not in _NP_TO_ST:
        raise TypeError(f"cannot store {name!r} of dtype {dtype} in a .safetensors file.")
    return int(np.prod(np.shape(value), dtype=np.int64)) * dtype.itemsize


def _prepare(tensors: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {str(name): _host(str(name), value) for name, value in tensors.items()}


def _metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    out = {"format": "pt"}  # transformers refuses safetensors files without it
    out.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return out


def _write(tensors: dict[str, np.ndarray], path: str, metadata: dict[str, str]) -> None:
    import safetensors.numpy

    safetensors.numpy.save_file(tensors, path, metadata=metadata)


def save_file(
    tensors: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``{name: array}`` to one ``.safetensors`` file that torch/safetensors can read.

    Args:
      tensors: flat mapping from dotted names to numpy/JAX arrays or torch tensors.
      path: destination file.
      metadata: optional ``{str: str}`` for the header's ``__metadata__``, merged over
        ``{"format": "pt"}`` (which transformers requires).
    """
    _write(_prepare(tensors), os.fspath(path), _metadata(metadata))


def parse_size(size: int | str) -> int:
    """``max_shard_size`` in bytes: an int, or a string such as ``"5GB"``, ``"200MB"``, ``"64KiB"``
    (decimal units as huggingface_hub: 1GB = 10**9 bytes; binary ones with ``iB``)."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    elif isinstance(size, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)\s*", size, flags=re.IGNORECASE)
        if not m:
            raise ValueError(f"`max_shard_size` (={size!r}) must be an int or a size such as '5GB' or '200MB'.")
        value = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])
    else:
        raise TypeError(f"`max_shard_size` must be an int or a str, got {type(size).__name__}.")
    if value <= 0:
        raise ValueError(f"`max_shard_size` (={size!r}) must be positive.")
    return value


def add_variant(name: str, variant: str | None) -> str:
    """transformers'/diffusers' ``_add_variant``: the variant goes before the last extension."""
    if variant is None:
        return name
    stem, ext = name.rsplit(".", 1)
    return f"{stem}.{variant}.{ext}"


def save_checkpoint(
    tensors: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, str] | None = None,
    max_shard_size: int | str | None = None,
    variant: str | None = None,
    weights_name: str = "model.safetensors",
) -> list[str]:
    """Write tensors as ``save_pretrained`` does; returns the files written.

    A ``path`` ending in ``.safetensors`` is one file. Any other path is a folder (created) that
    gets ``weights_name`` (with ``variant``: ``model.fp16.safetensors``), or, when the tensors exceed
    ``max_shard_size``, shards ``model-00001-of-0000N.safetensors`` (``model.fp16-00001-of-...``)
    and the index ``model.safetensors.index.json`` (``model.safetensors.index.fp16.json``) with
    ``{"metadata": {"total_size": bytes}, "weight_map": {key: shard}}``. Shards are filled in key
    order, a new one started when the next tensor would overflow (a tensor larger than the limit
    gets a shard of its own), as huggingface_hub's ``split_state_dict_into_shards``. What an earlier
    save of the same ``weights_name`` and ``variant`` left in the folder (other shards, the index,
    the single file) is removed, so the folder holds one checkpoint of that name; other files stay.
    """
    # device arrays come to the host one shard at a time, never the whole model at once
    sizes = {str(k): _nbytes(str(k), v) for k, v in tensors.items()}
    values = {str(k): v for k, v in tensors.items()}
    meta = _metadata(metadata)
    p = os.fspath(path)
    if p.endswith(".safetensors"):
        if max_shard_size is not None or variant is not None:
            raise ValueError(f"`max_shard_size` and `variant` name files in a folder; {p!r} is one file. "
                             "Pass a folder instead.")
        _write(_prepare(values), p, meta)
        return [p]
    if not weights_name.endswith(".safetensors"):
        raise ValueError(f"`weights_name` (={weights_name!r}) must end in '.safetensors'.")
    os.makedirs(p, exist_ok=True)
    limit = parse_size(max_shard_size) if max_shard_size is not None else None
    shards: list[list[str]] = []  # huggingface_hub's split_state_dict_into_shards, step for step
    current: list[str] = []
    size = 0
    for name in sorted(sizes):
        nbytes = sizes[name]
        if limit is not None and nbytes > limit:
            shards.append([name])  # a shard of its own; the open shard stays open
            continue
        if limit is not None and size + nbytes > limit:
            shards.append(current)
            current, size = [], 0
        current.append(name)
        size += nbytes
    if current or not shards:
        shards.append(current)
    base = add_variant(weights_name, variant)
    index_name = add_variant(weights_name + ".index.json", variant)
    if len(shards) == 1:
        out = os.path.join(p, base)
        _write(_prepare(values), out, meta)
        _remove_stale(p, base, index_name, keep={base})
        return [out]
    stem = base[: -len(".safetensors")]
    written, weight_map = [], {}
    for i, names in enumerate(shards, 1):
        fname = f"{stem}-{i:05d}-of-{len(shards):05d}.safetensors"
        _write(_prepare({n: values[n] for n in names}), os.path.join(p, fname), meta)
        written.append(os.path.join(p, fname))
        weight_map.update(dict.fromkeys(names, fname))
    index_path = os.path.join(p, index_name)
    with open(index_path, "w", encoding="utf-8") as f:
        json.dump({"metadata": {"total_size": sum(sizes.values())},
                   "weight_map": dict(sorted(weight_map.items()))}, f, indent=2, sort_keys=True)
        f.write("\n")
    _remove_stale(p, base, index_name, keep={*(os.path.basename(w) for w in written), index_name})
    return [*written, index_path]


def _remove_stale(folder: str, base: str, index_name: str, keep: set[str]) -> None:
    """Remove what an earlier save of the same name and variant left in ``folder`` (its single file,
    index or other shards), as ``save_pretrained`` cleans its shards: a stale index would otherwise
    be loaded instead of a new single file (indexes come first), and a stale single file by
    transformers instead of new shards."""
    shard = re.compile(re.escape(base[: -len(".safetensors")]) + r"-\d{5}-of-\d{5}\.safetensors")
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name not in keep and (name in (base, index_name) or shard.fullmatch(name)) and os.path.isfile(path):
            os.remove(path)
