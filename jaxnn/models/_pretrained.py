"""The base of ``jaxnn.models``: a model's configuration, ``from_config``, ``from_pretrained`` and
``save_pretrained`` over diffusers' / transformers' folder layout (``config.json`` beside the
weights that ``save_pretrained`` writes).

Loading goes through :func:`jaxnn.nnx.load_state_dict` (the ``safetensors`` library for
``.safetensors`` files, ``torch.load(weights_only=True)`` for ``.bin``; shards with an index;
``variant`` files), saving through :func:`jaxnn.nnx.save_state_dict`: the folder formats are
diffusers' and transformers', and no library reads them without torch models, hence this thin layer.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
from flax import nnx

from .._checkpoint import CheckpointNotFoundError, KeyMap, check_dtype, open_checkpoint
from ..nnx._state_dict import load_state_dict, save_state_dict, state_dict

# The diffusers release whose folders these models read and write (``_diffusers_version`` in a saved
# ``config.json``); the test extra pins the same.
DIFFUSERS_VERSION = "0.42.1"
TRANSFORMERS_VERSION = "5.24.0"


# jaxnn's, flax's and jax's package folders.
_INTERNAL_DIRS = tuple(os.path.dirname(os.path.abspath(f)) + os.sep for f in (
    os.path.dirname(os.path.abspath(__file__)), flax.__file__ or "", jax.__file__ or ""))


def _user_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel, for the function calling this one, of the first frame
    outside jaxnn, flax and jax: the user's line (nnx's module metaclass adds frames of its own
    between a constructor call and ``__init__``)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
        frame, level = frame.f_back, level + 1
    return level


#: The dtypes a model holds and computes in (``dtype`` of the constructors and ``from_pretrained``).
MODEL_DTYPES = ("float32", "bfloat16", "float16")


def check_model_dtype(name: str, dtype: Any) -> None:
    """A model's ``dtype``: None (float32), float32, bfloat16 or float16. The parameters' dtype is
    also the computation's, and float8 (or integer) types cannot be computed in: XLA, like torch,
    has no float8 convolution / normalisation path, and a float8 model would silently round every
    activation to 2-3 significant bits. ValueError naming the dtype otherwise."""
    if dtype is None:
        return
    try:
        d = jnp.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{name}: `dtype` (={dtype!r}) is not a dtype: {e}.") from e
    if d.name not in MODEL_DTYPES:
        hint = (" float8 can store weights but not run these models (torch cannot either); diffusers' "
                "enable_layerwise_casting (float8 storage, bfloat16 compute) is not implemented by jaxnn.models: "
                "load with dtype=jnp.bfloat16." if d.name.startswith("float8") else "")
        raise ValueError(f"{name}: `dtype` (={d.name}) must be None (float32), float32, bfloat16 or float16: the "
                         f"parameters' dtype is also the computation's.{hint}")


def _freeze(value: Any) -> Any:
    """JSON values made immutable and hashable: lists -> tuples, dicts -> Config."""
    if isinstance(value, Mapping):
        return Config(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """The inverse of :func:`_freeze`, for ``json.dump``."""
    if isinstance(value, Config):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class Config(Mapping[str, Any]):
    """A model's configuration: a read-only mapping with attribute access (``model.config.sample_size``),
    as diffusers' ``FrozenDict`` and transformers' ``PretrainedConfig``. Lists are held as tuples so
    that the configuration is hashable (it is static data of the module's graph under ``nnx.jit``);
    ``to_dict()`` gives the JSON form back."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None, /, **kwargs: Any):
        items = dict(data or {}, **kwargs)
        for k in items:
            if not isinstance(k, str):
                raise TypeError(f"Config keys must be strings, got {k!r}.")
        object.__setattr__(self, "_data", {k: _freeze(v) for k, v in items.items()})
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name in Config.__slots__ or name.startswith("__"):
            raise AttributeError(name)  # a slot not yet set, or a protocol probe: not an option
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"the configuration has no option {name!r}.") from None

    def __reduce__(self) -> tuple[Any, ...]:
        # copy.copy / copy.deepcopy / pickle (e.g. ``copy.deepcopy(model)`` for an EMA copy) rebuild
        # the Config from its items rather than through the read-only __setattr__.
        return (Config, (self._data,))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a model's Config is read-only: build a new model with from_config(dict(config, ...)).")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(tuple(sorted(self._data.items()))))
        return self._hash  # pyright: ignore[reportReturnType]

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists, nested dicts), as in ``config.json``."""
        return _thaw(self)


def _read_json(path: str, what: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"{what}: {path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{what}: {path!r} is not valid JSON: {e}.") from e
    if not isinstance(data, dict):
        raise ValueError(f"{what}: {path!r} holds a {type(data).__name__}, not a JSON object.")
    return data


def _local_folder(cls_name: str, path: str | os.PathLike, subfolder: str | None) -> str:
    """The folder to read: ``path[/subfolder]``; a path that does not exist (a hub id) is an error
    saying that jaxnn reads local folders only."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{cls_name}.from_pretrained: `pretrained_model_name_or_path` must be a folder path, "
                        f"got {type(path).__name__}.")
    p = os.fspath(path)
    if not os.path.exists(p):
        raise CheckpointNotFoundError(
            f"{cls_name}.from_pretrained: {p!r} is not a local folder. jaxnn.models reads local folders only "
            "(it never downloads): fetch a Hugging Face Hub repository first (e.g. huggingface_hub."
            "snapshot_download) and pass the folder it returns.")
    folder = os.path.join(p, subfolder) if subfolder else p
    if not os.path.isdir(folder):
        raise CheckpointNotFoundError(f"{cls_name}.from_pretrained: {folder!r} is not a folder"
                                      + (f" (subfolder={subfolder!r})." if subfolder else "."))
    return folder


def _fill_abstract(model: nnx.Module, build: Callable[[], nnx.Module]) -> None:
    """Make the variables that are not in the state_dict, still abstract after loading, concrete.
    Dropout RNG streams get keys ``fold_in(key(0), i)`` (the i-th stream in graph order) and count 0,
    as a model built with ``nnx.Rngs(0)`` would have distinct streams (``nnx.reseed`` picks others).
    Anything else (a non-persistent buffer) gets the constructor's value: the constructor runs under
    ``jax.jit`` returning only those variables, so XLA drops every parameter initialiser and no
    parameter is allocated twice (this re-traces the constructor, so it is done only when needed)."""
    flat = nnx.to_flat_state(nnx.state(model))
    abstract = set()
    i = 0
    for path, var in flat:
        value = var.get_value()
        if not isinstance(value, jax.ShapeDtypeStruct):
            continue
        if isinstance(var, nnx.RngKey):
            var.set_value(jax.random.fold_in(jax.random.key(0), i))
            i += 1
        elif isinstance(var, nnx.RngCount):
            var.set_value(jnp.zeros(value.shape, value.dtype))
        else:
            abstract.add(tuple(path))
    if not abstract:
        return

    def wanted(path: tuple[Any, ...], _: Any) -> bool:
        return tuple(path) in abstract

    nnx.update(model, jax.jit(lambda: nnx.state(build(), wanted))())


class PretrainedModel(nnx.Module):
    """Base of the ``jaxnn.models`` models: configuration handling and the diffusers / transformers
    folder format.

    A subclass sets ``weights_name`` (``"diffusion_pytorch_model.safetensors"`` for diffusers,
    ``"model.safetensors"`` for transformers), ``library`` and ``config_keys`` (every key it
    knows), implements the classmethod ``_check_config(config) -> dict`` (torch's defaults filled
    in; NotImplementedError naming an unsupported option and its value; ValueError for malformed
    values), and starts its ``__init__(self, config, *, dtype=None, rngs)`` with
    ``config = self._init_config(config, dtype)``. It may override ``_saved_config`` (extra keys
    written to ``config.json``) and ``_key_map`` (rewrite checkpoint keys before loading).
    """

    config_name: ClassVar[str] = "config.json"
    weights_name: ClassVar[str] = "model.safetensors"
    library: ClassVar[str] = "diffusers"
    #: The configuration keys the class knows: its options, and keys its library writes or accepts
    #: without using them. Any other key (not starting with ``_``) is ignored with a warning naming
    #: it, as diffusers' ``from_config`` does (transformers keeps such keys as unused attributes).
    config_keys: ClassVar[frozenset[str]] = frozenset()
    config: Config

    @classmethod
    def _known_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` without private keys (``_class_name``, ``_diffusers_version``, ...) and keys
        outside ``config_keys``; a ``UserWarning`` names the latter (so a misspelled option is seen,
        not silently replaced by its default)."""
        if not isinstance(config, Mapping):
            raise TypeError(f"{cls.__name__}: `config` must be a mapping (a dict as in config.json), "
                            f"got {type(config).__name__}; use {cls.__name__}.from_config(path) for a file.")
        public = {k: v for k, v in config.items() if not (isinstance(k, str) and k.startswith("_"))}
        unknown = sorted((k for k in public if k not in cls.config_keys), key=repr)
        if unknown:
            warnings.warn(f"{cls.__name__}: the configuration keys {unknown} are not options of {cls.__name__} "
                          "and are ignored (as diffusers does); check the spelling if one was meant as an option.",
                          UserWarning, stacklevel=_user_stacklevel())
        return {k: v for k, v in public.items() if k in cls.config_keys}

    @classmethod
    def _check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{cls.__name__} does not define _check_config.")

    def _init_config(self, config: Mapping[str, Any], dtype: Any = None) -> Config:
        check_model_dtype(type(self).__name__, dtype)
        checked = type(self)._check_config(type(self)._known_config(config))
        self.config = Config(checked)
        return self.config

    @classmethod
    def _key_map(cls, keys: list[str]) -> KeyMap | Callable[[str], str | None] | None:
        """Rewrite of checkpoint keys before matching (None: keys are used as they are)."""
        del keys
        return None

    def _saved_config(self) -> dict[str, Any]:
        """Keys ``save_pretrained`` writes to ``config.json`` besides the configuration."""
        if self.library == "diffusers":
            return {"_class_name": type(self).__name__, "_diffusers_version": DIFFUSERS_VERSION}
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | os.PathLike, *, dtype: Any = None,
                    rngs: nnx.Rngs | None = None):
        """A freshly initialised model (training mode, as torch's constructor) from a configuration:
        a dict as in ``config.json``, the path of such a file, or a folder holding ``config.json``.
        ``dtype`` is the parameters' (and the computation's) dtype, float32 by default; ``rngs``
        defaults to ``nnx.Rngs(0)``."""
        if isinstance(config, (str, os.PathLike)):
            p = os.fspath(config)
            config = _read_json(os.path.join(p, cls.config_name) if os.path.isdir(p) else p,
                                f"{cls.__name__}.from_config")
        return cls(config, dtype=dtype, rngs=nnx.Rngs(0) if rngs is None else rngs)  # pyright: ignore[reportCallIssue]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, subfolder: str | None = None,
                        variant: str | None = None, dtype: Any = None, sharding: Any = None):
        """Load a folder written by diffusers' / transformers' ``save_pretrained`` (or by this class's).

        Args:
          pretrained_model_name_or_path: a local folder (a pipeline folder with ``subfolder``, e.g.
            ``subfolder="unet"``). Nothing is downloaded: a hub id is an error.
          subfolder: the model's folder inside ``pretrained_model_name_or_path``.
          variant: load ``*.{variant}.safetensors`` (and its index), e.g. ``"fp16"``.
          dtype: the parameters' and computation's dtype. None: float32 (an fp16 variant is cast up,
            as torch's ``from_pretrained`` without ``torch_dtype``); ``jnp.bfloat16`` / ``jnp.float16``
            store and compute in that dtype (norm statistics and softmax in float32). Other dtypes
            (float8, float64, integers) are a ValueError: see :func:`check_model_dtype`.
          sharding: place each weight as it is read, as :func:`jaxnn.nnx.load_state_dict`'s
            ``sharding``: one ``jax.sharding.Sharding`` for all, a mapping from state_dict key
            (``"conv_in.weight"``; keys it lacks go to the default device, keys the model lacks
            are a ValueError) to sharding, or a callable ``key -> sharding`` (None for a key:
            the default device). The model is built abstractly, so each device reads only its own
            slices of a ``.safetensors`` file and no whole copy of a sharded weight is made (FSDP
            loading; ``examples/finetune_unet.py`` shards every large weight along its largest
            divisible axis). Variables not in the file (dropout RNG streams) are not sharded.

        Returns:
          The model in eval mode (dropout off), as diffusers' and transformers' ``from_pretrained``.

        Raises:
          CheckpointNotFoundError: the path, the subfolder or ``config.json`` missing.
          CheckpointError (ValueError): no weights in the folder (or not the ``variant``), weights
            that do not fit the configuration (missing, unexpected
            or mis-shaped keys: e.g. another model's weights), a bad file.
          NotImplementedError: a configuration option jaxnn does not implement.
          ValueError: ``dtype`` other than None, float32, bfloat16, float16; a ``sharding`` mapping
            with keys that are not the model's state_dict keys.
          TypeError: a ``sharding`` that is (or gives for a key) something other than a
            ``jax.sharding.Sharding`` or None.
        """
        folder = _local_folder(cls.__name__, pretrained_model_name_or_path, subfolder)
        config = _read_json(os.path.join(folder, cls.config_name), f"{cls.__name__}.from_pretrained")
        config = cls._known_config(config)  # unknown keys warned about once, here
        # the model's rule first: check_dtype alone would offer float8 (storable, not computable here)
        check_model_dtype(f"{cls.__name__}.from_pretrained", dtype)
        check_dtype(dtype)
        ck = open_checkpoint(folder, variant=variant)
        model = nnx.eval_shape(lambda: cls(config, dtype=dtype, rngs=nnx.Rngs(0)))  # pyright: ignore[reportCallIssue]
        if isinstance(sharding, Mapping):  # a misspelt key would silently leave its weight unsharded
            keys = state_dict(model)  # pyright: ignore[reportArgumentType]
            unknown = sorted((k for k in sharding if k not in keys), key=repr)
            if unknown:
                raise ValueError(f"{cls.__name__}.from_pretrained: `sharding` maps {unknown[:5]}"
                                 f"{' ...' if len(unknown) > 5 else ''} ({len(unknown)} key(s)), which are not "
                                 f"state_dict keys of the model (such as {next(iter(keys))!r}); the keys are "
                                 f"those of jaxnn.nnx.state_dict(model).")
        load_state_dict(model, ck, strict=True,  # pyright: ignore[reportArgumentType]
                         key_map=cls._key_map(list(ck.entries)), sharding=sharding)
        _fill_abstract(model, lambda: cls(config, dtype=dtype, rngs=nnx.Rngs(0)))  # pyright: ignore[reportCallIssue]
        model.eval()
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, variant: str | None = None,
                        max_shard_size: int | str | None = None) -> list[str]:
        """Write ``config.json`` and the weights (``.safetensors``; shards with an index when
        ``max_shard_size`` is exceeded; ``variant`` in the file names) as diffusers' / transformers'
        ``save_pretrained`` do, so that their ``from_pretrained`` loads the folder. Returns the paths
        written."""
        folder = os.fspath(save_directory)
        if os.path.isfile(folder):
            raise ValueError(f"save_pretrained: `save_directory` (={folder!r}) is a file, not a folder.")
        os.makedirs(folder, exist_ok=True)
        data = dict(self._saved_config(), **self.config.to_dict())
        config_path = os.path.join(folder, self.config_name)
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        return [config_path, *save_state_dict(self, folder, max_shard_size=max_shard_size, variant=variant,
                                              weights_name=self.weights_name)]
