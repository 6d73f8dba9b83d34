"""Text-to-image pipelines: diffusers' ``StableDiffusionPipeline`` and ``StableDiffusionXLPipeline``
over jaxnn's models and schedulers, with one compiled denoising step.

A pipeline reads a diffusers pipeline folder (``model_index.json`` and one subfolder per component),
encodes the prompts with the CLIP text encoders (tokenised by transformers' ``CLIPTokenizer``), runs
the sampling loop and decodes the latents with the VAE, computing what diffusers computes in the same
order. The loop body (the UNet on the classifier-free-guidance batch, the guidance, the scheduler
step) is ONE jitted function of ``(unet state, scheduler state, latents, step index, conditioning)``:
it is traced and compiled once per shape and reused for every step and for every later call with the
same shapes (the scheduler's state carries the timesteps and its history, see
:mod:`jaxnn.models._scheduling`). Text encoding and VAE decoding are jitted the same way. The
modules' parameters are passed to the compiled functions as arguments (``nnx.split``), never closed
over, so a pipeline whose weights change (fine-tuning) runs the same compiled program.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._checkpoint import CheckpointNotFoundError, check_dtype
from ._clip import CLIPTextModel, CLIPTextModelWithProjection
from ._pretrained import Config, _local_folder, _read_json
from ._scheduling import Scheduler
from ._unet import UNet2DConditionModel
from ._vae import AutoencoderKL

Array = jax.Array

_OUTPUT_TYPES = ("pil", "np", "latent")


@dataclasses.dataclass
class StableDiffusionPipelineOutput:
    """diffusers' ``StableDiffusionPipelineOutput``.

    Attributes:
      images: a list of PIL images (``output_type="pil"``); a float32 NumPy array ``(batch, height,
        width, 3)`` in [0, 1] (``"np"``); the final latents ``(batch, 4, height / f, width / f)`` as a
        JAX array (``"latent"``; not divided by the VAE's ``scaling_factor``).
      nsfw_content_detected: always None (jaxnn runs no safety checker).
    """

    images: Any
    nsfw_content_detected: list[bool] | None = None


@dataclasses.dataclass
class StableDiffusionXLPipelineOutput:
    """diffusers' ``StableDiffusionXLPipelineOutput``: ``images`` as in
    :class:`StableDiffusionPipelineOutput`."""

    images: Any


# ------------------------------------------------------------------------------- small helpers
def _default_dtype() -> Any:
    """float32 on CPU, bfloat16 on accelerators (GPU/TPU), the issue's default."""
    return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16


def _rng_key(rng: Any, name: str) -> Array | None:
    """``rng``: None, an int seed, or a JAX key (typed, or the legacy uint32[2])."""
    if rng is None:
        return None
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return jax.random.key(int(rng))
    if isinstance(rng, jax.Array):
        if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key) and rng.shape == ():
            return rng
        if rng.dtype == jnp.uint32 and rng.shape == (2,):
            return jax.random.wrap_key_data(rng)
    raise TypeError(f"{name}: `rng` must be None, an int seed or a jax.random key, got {rng!r}.")


def _prompt_list(value: Any, name: str, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        if not value:
            raise ValueError(f"{name}: `{what}` is an empty list.")
        return list(value)
    raise TypeError(f"{name}: `{what}` must be a str or a list of str, got {value!r}.")


def _positive_int(value: Any, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: `{what}` must be a positive int, got {value!r}.")
    return int(value)


def _check_size(height: Any, width: Any, name: str) -> tuple[int, int]:
    for what, v in (("height", height), ("width", width)):
        integral = isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer())
        if isinstance(v, bool) or not integral or v <= 0:  # diffusers takes 512.0 too (int(height) // f)
            raise ValueError(f"{name}: `{what}` must be a positive int, got {v!r}.")
    if height % 8 != 0 or width % 8 != 0:
        raise ValueError(f"{name}: `height` and `width` have to be divisible by 8 but are {height} and {width}.")
    return int(height), int(width)


def _rescale_noise_cfg(noise_cfg: Array, noise_pred_text: Array, guidance_rescale: Array) -> Array:
    """diffusers' ``rescale_noise_cfg`` (Lin et al. 2023, section 3.4): mix the guided prediction
    with itself rescaled to the text prediction's standard deviation (unbiased, per sample)."""
    axes = tuple(range(1, noise_cfg.ndim))
    std_text = jnp.std(noise_pred_text, axis=axes, keepdims=True, ddof=1)
    std_cfg = jnp.std(noise_cfg, axis=axes, keepdims=True, ddof=1)
    rescaled = noise_cfg * (std_text / std_cfg)
    return guidance_rescale * rescaled + (1 - guidance_rescale) * noise_cfg


def _to_pil(images: np.ndarray) -> list[Any]:
    """diffusers' ``VaeImageProcessor.numpy_to_pil``: ``(images * 255).round().astype(uint8)``."""
    from PIL import Image

    return [Image.fromarray(im) for im in (images * 255).round().astype("uint8")]


def _param_dtype(module: nnx.Module) -> Any:
    """The dtype of a model's parameters (the dtype its outputs have)."""
    return jax.tree.leaves(nnx.state(module, nnx.Param))[0].dtype


def _scheduler_class(name: str) -> type[Scheduler]:
    """The jaxnn scheduler class named as diffusers names it in ``model_index.json``."""
    import jaxnn.models as models

    from . import _scheduling

    cls = getattr(models, name, None) or getattr(_scheduling, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        available = sorted(n for n in dir(models) if isinstance(getattr(models, n), type)
                           and issubclass(getattr(models, n), Scheduler) and getattr(models, n) is not Scheduler)
        raise NotImplementedError(f"the scheduler class {name!r} of this pipeline is not implemented by jaxnn "
                                  f"(available: {', '.join(available) or 'DDIMScheduler'}); pass "
                                  "`scheduler=` a jaxnn scheduler, e.g. DDIMScheduler.from_pretrained(path, "
                                  "subfolder='scheduler').")
    return cls


#: How many times each compiled function of the pipelines was traced (for tests and diagnostics):
#: ``"denoise"`` once per (UNet graph, scheduler class and config, guidance on/off, eta, shapes,
#: step count).
TRACES: Counter = Counter()


class _Compiled:
    """``make(*static)`` jitted once per static key and cached (at most ``size`` entries, least
    recently used dropped). The keys hold the modules' graphs (``nnx.split``'s hashable GraphDef)
    and the scheduler's class and configuration, never arrays or module objects, so pipelines loaded
    again from the same folder (or built from the same parts) reuse the compiled programs."""

    def __init__(self, name: str, make: Callable[..., Callable[..., Any]], size: int = 16):
        self._name, self._make, self._size = name, make, size
        self._cache: OrderedDict[Any, Callable[..., Any]] = OrderedDict()

    def get(self, *static: Any) -> Callable[..., Any]:
        fn = self._cache.get(static)
        if fn is None:
            inner, name = self._make(*static), self._name

            def counted(*args: Any) -> Any:
                TRACES[name] += 1  # runs only while tracing
                return inner(*args)

            fn = self._cache[static] = jax.jit(counted)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(static)
        return fn


def _make_text_fn(graphdef: Any, hidden_index: int | None, final_norm: bool) -> Callable[..., Any]:
    """``(state, ids, mask) -> (hidden, pooled)``: the last hidden state (``hidden_index`` None) or
    ``hidden_states[hidden_index]`` (optionally through ``final_layer_norm``: SD's ``clip_skip``);
    ``pooled``: ``text_embeds`` of a projection model, else ``pooler_output``."""

    def fn(state: Any, ids: Array, mask: Array | None) -> tuple[Array, Array]:
        model = nnx.merge(graphdef, state)
        out = model(ids, attention_mask=mask, output_hidden_states=hidden_index is not None)
        if hidden_index is None:
            hidden = out.last_hidden_state
        else:
            hidden = out.hidden_states[hidden_index]
            if final_norm:
                text_model = model.text_model if isinstance(model, CLIPTextModelWithProjection) else model
                hidden = text_model.final_layer_norm(hidden)
        pooled = out.text_embeds if isinstance(model, CLIPTextModelWithProjection) else out.pooler_output
        return hidden, pooled

    return fn


def _make_step_fn(graphdef: Any, scheduler_cls: type[Scheduler], scheduler_config: Config, cfg: bool,
                  step_kwargs: tuple[tuple[str, Any], ...]) -> Callable[..., Any]:
    """One denoising step ``(unet_state, sched_state, latents, i, context, added, guidance_scale,
    guidance_rescale, rng) -> (latents, sched_state)`` at ``t = sched_state.timesteps[i]``: the UNet
    on ``cat([latents, latents])`` (with guidance), ``uncond + w (text - uncond)``, rescaled where
    ``guidance_rescale > 0`` (selected, so 0 leaves it bit for bit and the value is traced), then
    ``scheduler.step`` with the key ``fold_in(rng, i)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the config was validated when the pipeline's scheduler was built
        scheduler: Any = scheduler_cls.from_config(scheduler_config)

    def fn(unet_state: Any, sched_state: Any, latents: Array, i: Array, context: Array,
           added: dict[str, Array] | None, guidance_scale: Array, guidance_rescale: Array,
           rng: Array | None) -> tuple[Array, Any]:
        unet = nnx.merge(graphdef, unet_state)
        t = sched_state.timesteps[i]
        x = jnp.concatenate([latents, latents]) if cfg else latents
        x = scheduler.scale_model_input(sched_state, x, t)
        noise_pred = unet(x, t, context, added_cond_kwargs=added).sample.astype(latents.dtype)
        if cfg:
            uncond, text = jnp.split(noise_pred, 2)
            noise_pred = uncond + guidance_scale * (text - uncond)
            noise_pred = jnp.where(guidance_rescale > 0, _rescale_noise_cfg(noise_pred, text, guidance_rescale),
                                   noise_pred)
        key = None if rng is None else jax.random.fold_in(rng, i)
        out = scheduler.step(sched_state, noise_pred, t, latents, rng=key, return_dict=False, **dict(step_kwargs))
        return out[0].astype(latents.dtype), out[1]

    return fn


def _make_decode_fn(graphdef: Any, unscale: Callable[[Any, Array], Array]) -> Callable[..., Any]:
    """``(vae_state, latents) -> images``: ``unscale(vae, latents)``, decode, then diffusers'
    ``VaeImageProcessor`` postprocessing (``(x * 0.5 + 0.5).clamp(0, 1)``, NCHW -> NHWC) in float32."""

    def fn(state: Any, latents: Array) -> Array:
        vae = nnx.merge(graphdef, state)
        image = vae.decode(unscale(vae, latents)).sample.astype(jnp.float32)
        return jnp.clip(image * 0.5 + 0.5, 0, 1).transpose(0, 2, 3, 1)

    return fn


_TEXT = _Compiled("text_encoder", _make_text_fn)
_STEP = _Compiled("denoise", _make_step_fn)
_DECODE = _Compiled("vae_decode", _make_decode_fn)


# ----------------------------------------------------------------------------------- the base
class _Pipeline:
    """What both pipelines share: loading, the compiled text encoder / denoising step / VAE decode,
    the sampling loop and the output."""

    _class_name: ClassVar[str]
    _config_defaults: ClassVar[dict[str, Any]] = {}
    _components: ClassVar[tuple[str, ...]]
    config: Config

    def _setup(self, config: Mapping[str, Any] | None) -> None:
        self.config = Config(dict(self._config_defaults, **{k: v for k, v in (config or {}).items()
                                                            if k in self._config_defaults}))
        self._progress_bar_config: dict[str, Any] = {}

    # ---------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, dtype: Any = None,
                        scheduler: Scheduler | None = None, variant: str | None = None):
        """Load a diffusers pipeline folder (what diffusers' ``save_pretrained`` writes, or a
        downloaded Stable Diffusion repository).

        Args:
          pretrained_model_name_or_path: a local folder holding ``model_index.json``. Nothing is
            downloaded.
          dtype: the models' dtype. None: float32 when JAX's default backend is the CPU, bfloat16 on
            GPU/TPU. With float16 a VAE whose config has ``force_upcast`` is kept in float32 (diffusers
            upcasts it for decoding).
          scheduler: a jaxnn scheduler replacing the folder's (diffusers' ``scheduler=`` override, e.g.
            ``DPMSolverMultistepScheduler.from_pretrained(path, subfolder="scheduler")``).
          variant: load the ``*.{variant}.safetensors`` weights (e.g. ``"fp16"``).

        Raises:
          CheckpointNotFoundError: no such folder, no ``model_index.json``, a component missing.
          NotImplementedError: a component class jaxnn does not implement (the scheduler class named
            in ``model_index.json`` included: pass ``scheduler=`` then).
          TypeError: ``scheduler`` not a jaxnn scheduler.
        """
        name = f"{cls.__name__}.from_pretrained"
        folder = _local_folder(cls.__name__, pretrained_model_name_or_path, None)
        index = _read_json(os.path.join(folder, "model_index.json"), name)
        other = {"StableDiffusionPipeline": "StableDiffusionXLPipeline",
                 "StableDiffusionXLPipeline": "StableDiffusionPipeline"}[cls._class_name]
        if index.get("_class_name") == other:
            raise ValueError(f"{name}: {folder!r} holds a {other} (model_index.json's _class_name): load it with "
                             f"jaxnn.models.{other}.from_pretrained.")
        check_dtype(dtype)
        dtype = _default_dtype() if dtype is None else dtype
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            raise TypeError(f"{name}: `scheduler` must be a jaxnn scheduler (e.g. jaxnn.models.DDIMScheduler), "
                            f"got {type(scheduler).__name__}.")
        parts: dict[str, Any] = {}
        for component in sorted(cls._components, key=lambda c: c != "scheduler"):  # cheap checks first
            entry = index.get(component)
            if entry is None or not isinstance(entry, (list, tuple)) or len(entry) != 2 or entry[1] is None:
                if component in ("text_encoder", "tokenizer") and cls is StableDiffusionXLPipeline:
                    parts[component] = None  # diffusers' optional first encoder of SDXL (the refiner has none)
                    continue
                if component == "scheduler" and scheduler is not None:
                    continue
                raise CheckpointNotFoundError(f"{name}: {folder!r}'s model_index.json names no {component!r}.")
            parts[component] = cls._load_component(folder, component, entry[1], dtype, variant, scheduler)
        config = {k: index[k] for k in cls._config_defaults if k in index}
        return cls(**parts, config=config)  # pyright: ignore[reportCallIssue]

    @staticmethod
    def _load_component(folder: str, component: str, class_name: str, dtype: Any, variant: str | None,
                        scheduler: Scheduler | None) -> Any:
        models = {"UNet2DConditionModel": UNet2DConditionModel, "AutoencoderKL": AutoencoderKL,
                  "CLIPTextModel": CLIPTextModel, "CLIPTextModelWithProjection": CLIPTextModelWithProjection}
        if component == "scheduler":
            if scheduler is not None:
                return scheduler
            return _scheduler_class(class_name).from_pretrained(folder, subfolder="scheduler")
        if component.startswith("tokenizer"):
            if class_name not in ("CLIPTokenizer", "CLIPTokenizerFast"):
                raise NotImplementedError(f"{component}: the tokenizer class {class_name!r} is not supported "
                                          "(jaxnn's pipelines use transformers' CLIPTokenizer).")
            from transformers import CLIPTokenizer

            path = os.path.join(folder, component)
            if not os.path.isdir(path):
                raise CheckpointNotFoundError(f"{component}: {path!r} is not a folder.")
            return CLIPTokenizer.from_pretrained(path)
        cls = models.get(class_name)
        if cls is None:
            raise NotImplementedError(f"{component}: the model class {class_name!r} is not implemented by jaxnn "
                                      f"(available: {', '.join(models)}).")
        if component == "vae" and np.dtype(dtype) == np.float16:
            cfg = _read_json(os.path.join(folder, "vae", "config.json"), "AutoencoderKL")
            if cfg.get("force_upcast", True):
                dtype = jnp.float32  # diffusers decodes such a VAE in float32 (it overflows in float16)
        return cls.from_pretrained(folder, subfolder=component, variant=variant, dtype=dtype)

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options of the tqdm progress bar over the denoising steps, as diffusers'
        (``set_progress_bar_config(disable=True)`` turns it off)."""
        self._progress_bar_config = dict(kwargs)

    @property
    def vae_scale_factor(self) -> int:
        """``2 ** (len(vae.config.block_out_channels) - 1)`` (8 for Stable Diffusion's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)  # pyright: ignore[reportAttributeAccessIssue]

    @staticmethod
    def _unscale(vae: Any, latents: Array) -> Array:
        """diffusers' StableDiffusionPipeline: ``latents / vae.config.scaling_factor``."""
        return latents / vae.config.scaling_factor

    def _encode(self, encoder: Any, ids: np.ndarray, mask: np.ndarray | None, hidden_index: int | None,
                final_norm: bool = False) -> tuple[Array, Array]:
        graphdef, state = nnx.split(encoder)
        fn = _TEXT.get(graphdef, hidden_index, final_norm and hidden_index is not None)
        return fn(state, jnp.asarray(ids), None if mask is None else jnp.asarray(mask))

    @staticmethod
    def _tokenize(tokenizer: Any, prompts: list[str], max_length: int) -> Any:
        return tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="np")

    # --------------------------------------------------------------------------- the loop
    def _prepare_latents(self, name: str, shape: tuple[int, ...], latents: Any, key: Array | None) -> Array:
        """The initial latents (float32): ``latents``, checked, or drawn from ``key``."""
        if latents is None:
            if key is None:
                raise ValueError(f"{name}: pass `rng` (an int seed or a jax.random key) to draw the initial "
                                 "latents, or `latents`.")
            latents = jax.random.normal(key, shape, jnp.float32)
        else:
            latents = jnp.asarray(latents, jnp.float32)
            if latents.shape != shape:
                raise ValueError(f"{name}: `latents` must have shape {shape} (batch * num_images_per_prompt, "
                                 f"unet.config.in_channels, height // {self.vae_scale_factor}, width // "
                                 f"{self.vae_scale_factor}), got {latents.shape}.")
        return latents

    def _denoise(self, latents: Array, num_inference_steps: int, context: Array, added: dict[str, Array] | None,
                 cfg: bool, guidance_scale: float, guidance_rescale: float, eta: float,
                 step_key: Array | None) -> Array:
        from tqdm.auto import tqdm

        scheduler: Any = self.scheduler  # pyright: ignore[reportAttributeAccessIssue]
        accepts = inspect.signature(scheduler.set_timesteps).parameters
        if "shape" in accepts or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepts.values()):
            # multistep schedulers allocate their history in the state (one compiled step for all steps)
            state = scheduler.set_timesteps(num_inference_steps, shape=latents.shape, dtype=latents.dtype)
        else:
            state = scheduler.set_timesteps(num_inference_steps)
        latents = latents * jnp.asarray(state.init_noise_sigma, jnp.float32)  # diffusers' prepare_latents
        params = inspect.signature(scheduler.step).parameters
        step_kwargs = (("eta", float(eta)),) if "eta" in params else ()
        if eta and "eta" not in params:
            raise ValueError(f"{type(self).__name__}: `eta` (={eta!r}) is an option of DDIM-like schedulers only; "
                             f"{type(scheduler).__name__}.step has none.")
        graphdef, unet_state = nnx.split(self.unet)  # pyright: ignore[reportAttributeAccessIssue]
        step = _STEP.get(graphdef, type(scheduler), scheduler.config, cfg, step_kwargs)
        g, gr = jnp.float32(guidance_scale), jnp.float32(guidance_rescale)
        n = int(state.timesteps.shape[0])
        with tqdm(total=n, **self._progress_bar_config) as bar:
            for i in range(n):
                latents, state = step(unet_state, state, latents, jnp.int32(i), context, added, g, gr, step_key)
                bar.update()
        return latents

    def _finish(self, latents: Array, output_type: str) -> Any:
        if output_type == "latent":
            return latents
        graphdef, state = nnx.split(self.vae)  # pyright: ignore[reportAttributeAccessIssue]
        images = np.asarray(_DECODE.get(graphdef, type(self)._unscale)(state, latents))
        return images if output_type == "np" else _to_pil(images)

    def _check_common(self, name: str, num_inference_steps: Any, guidance_scale: Any, guidance_rescale: Any,
                      num_images_per_prompt: Any, output_type: Any) -> None:
        _positive_int(num_inference_steps, name, "num_inference_steps")
        _positive_int(num_images_per_prompt, name, "num_images_per_prompt")
        for what, v in (("guidance_scale", guidance_scale), ("guidance_rescale", guidance_rescale)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise TypeError(f"{name}: `{what}` must be a number, got {v!r}.")
        if output_type not in _OUTPUT_TYPES:
            raise ValueError(f"{name}: `output_type` must be one of {', '.join(map(repr, _OUTPUT_TYPES))}, "
                             f"got {output_type!r}.")

    def _do_cfg(self, guidance_scale: float) -> bool:
        """diffusers' ``do_classifier_free_guidance``: ``guidance_scale > 1`` and a UNet without a
        guidance embedding (``time_cond_proj_dim`` None)."""
        return guidance_scale > 1 and self.unet.config.get("time_cond_proj_dim") is None  # pyright: ignore[reportAttributeAccessIssue]

    @staticmethod
    def _embeds(value: Any, name: str, what: str, ndim: int) -> Array | None:
        if value is None:
            return None
        arr = jnp.asarray(value)
        if arr.ndim != ndim:
            raise ValueError(f"{name}: `{what}` must have {ndim} dimensions, got shape {arr.shape}.")
        return arr


def _negatives(name: str, prompt: Any, negative_prompt: Any, batch_size: int) -> list[str]:
    """diffusers' StableDiffusionPipeline rule for the unconditional prompts."""
    if negative_prompt is None:
        return [""] * batch_size
    if prompt is not None and type(prompt) is not type(negative_prompt):
        raise TypeError(f"{name}: `negative_prompt` should be the same type as `prompt`, but got "
                        f"{type(negative_prompt).__name__} != {type(prompt).__name__}.")
    neg = _prompt_list(negative_prompt, name, "negative_prompt")
    assert neg is not None
    if isinstance(negative_prompt, str):
        if batch_size != 1:  # only with `prompt_embeds` (a list `prompt` and a str raise above); diffusers fails too
            raise ValueError(f"{name}: `negative_prompt` is one str, but `prompt_embeds` has batch size {batch_size}: "
                             f"pass a list of {batch_size} negative prompts (one per prompt).")
        return neg
    if len(neg) != batch_size:
        raise ValueError(f"{name}: `negative_prompt` has batch size {len(neg)}, but `prompt` has batch size "
                         f"{batch_size}: pass one negative prompt per prompt.")
    return neg


# ------------------------------------------------------------------------------ SD 1.x / 2.x
class StableDiffusionPipeline(_Pipeline):
    r"""diffusers' ``StableDiffusionPipeline`` (text to image with Stable Diffusion 1.x / 2.x) in JAX.

    .. math::
        c = \mathrm{CLIP}(\text{prompt}),\quad
        \hat\epsilon = \epsilon(x_t, t, c_\varnothing)
            + w\,(\epsilon(x_t, t, c) - \epsilon(x_t, t, c_\varnothing)),\quad
        x_{t-1} = \mathrm{step}(\hat\epsilon, t, x_t),\quad
        \text{image} = \mathrm{clamp}(D(x_0 / s) / 2 + 1/2, 0, 1)

    with ``w = guidance_scale`` (classifier-free guidance, Ho & Salimans 2022, when ``w > 1``;
    ``c_\varnothing`` the negative prompt's embedding, the empty prompt's by default), ``s`` the
    VAE's ``scaling_factor`` and ``D`` its decoder (Rombach et al., "High-Resolution Image Synthesis
    with Latent Diffusion Models", 2022).

    Build it with ``StableDiffusionPipeline.from_pretrained(folder)`` (a diffusers pipeline folder:
    ``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``) or
    from parts (jaxnn models, transformers' ``CLIPTokenizer``, a jaxnn scheduler). As diffusers does,
    a scheduler config with ``steps_offset != 1`` or ``clip_sample=True`` is corrected (with a
    FutureWarning).

    Example (with a local Stable Diffusion folder; ``examples/sd_tiny.py`` builds a tiny one)::

        pipe = StableDiffusionPipeline.from_pretrained("sd-v1-5/")
        image = pipe("a photo of an astronaut riding a horse", rng=0).images[0]

    Differences from diffusers:
      - No safety checker (``nsfw_content_detected`` is None), no ``callback_on_step_end``, IP-adapter,
        LoRA, ``timesteps=``/``sigmas=`` overrides or ``output_type="pt"``.
      - Randomness is JAX's: ``rng`` (an int seed or a key) draws the initial latents and the
        schedulers' noise (``jax.random.fold_in(key, i)`` at step ``i``); torch's generator cannot be
        reproduced, so pass ``latents`` for diffusers' exact numbers.
      - The latents and the guidance/scheduler arithmetic stay float32 when the models are bfloat16 /
        float16 (diffusers keeps them in the pipeline's dtype); postprocessing is float32.
      - Type errors of ``prompt`` / ``negative_prompt`` raise TypeError (diffusers: ValueError for
        ``prompt``).
      - ``clip_skip`` works with transformers 5 (diffusers 0.42 reads ``text_encoder.text_model``,
        which transformers 5's ``CLIPTextModel`` no longer has).
      - The denoising step is compiled per shape and per ``num_inference_steps`` (the scheduler
        state's static step count); changing prompts, seeds, guidance or weights does not recompile.
    """

    _class_name = "StableDiffusionPipeline"
    _config_defaults: ClassVar[dict[str, Any]] = {"requires_safety_checker": False}
    _components = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")

    def __init__(self, vae: AutoencoderKL, text_encoder: CLIPTextModel, tokenizer: Any,
                 unet: UNet2DConditionModel, scheduler: Scheduler, *, config: Mapping[str, Any] | None = None):
        if not isinstance(scheduler, Scheduler):
            raise TypeError(f"StableDiffusionPipeline: `scheduler` must be a jaxnn scheduler, got "
                            f"{type(scheduler).__name__}.")
        self.vae, self.text_encoder, self.tokenizer, self.unet = vae, text_encoder, tokenizer, unet
        self.scheduler = _corrected_scheduler(scheduler)
        self._setup(config)

    def encode_prompt(self, prompt: str | list[str] | None, num_images_per_prompt: int = 1,
                      do_classifier_free_guidance: bool = True, negative_prompt: str | list[str] | None = None,
                      prompt_embeds: Any = None, negative_prompt_embeds: Any = None,
                      clip_skip: int | None = None) -> tuple[Array, Array | None]:
        """diffusers' ``encode_prompt``: ``(prompt_embeds, negative_prompt_embeds)``, each
        ``(batch * num_images_per_prompt, seq, hidden)`` (the second None without guidance).
        ``clip_skip`` = k takes the hidden state k layers before the last, through the final layer
        norm."""
        name = "StableDiffusionPipeline"
        prompts = _prompt_list(prompt, name, "prompt")
        batch_size = len(prompts) if prompts is not None else int(jnp.shape(prompt_embeds)[0])
        tok = self.tokenizer
        use_mask = bool(self.text_encoder.config.get("use_attention_mask", False))
        hidden_index = None if clip_skip is None else -(clip_skip + 1)
        if prompt_embeds is None:
            assert prompts is not None
            inputs = self._tokenize(tok, prompts, tok.model_max_length)
            prompt_embeds, _ = self._encode(self.text_encoder, inputs["input_ids"],
                                            inputs["attention_mask"] if use_mask else None, hidden_index, True)
        prompt_embeds = jnp.asarray(prompt_embeds).astype(_param_dtype(self.text_encoder))
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            uncond = _negatives(name, prompt, negative_prompt, batch_size)
            inputs = self._tokenize(tok, uncond, prompt_embeds.shape[1])
            negative_prompt_embeds, _ = self._encode(self.text_encoder, inputs["input_ids"],
                                                     inputs["attention_mask"] if use_mask else None, None)
        prompt_embeds = jnp.repeat(prompt_embeds, num_images_per_prompt, axis=0)
        if do_classifier_free_guidance:
            negative_prompt_embeds = jnp.asarray(negative_prompt_embeds).astype(prompt_embeds.dtype)
            negative_prompt_embeds = jnp.repeat(negative_prompt_embeds, num_images_per_prompt, axis=0)
        return prompt_embeds, negative_prompt_embeds

    def __call__(self, prompt: str | list[str] | None = None, height: int | None = None, width: int | None = None,
                 num_inference_steps: int = 50, guidance_scale: float = 7.5,
                 negative_prompt: str | list[str] | None = None, num_images_per_prompt: int = 1, eta: float = 0.0,
                 rng: Any = None, latents: Any = None, prompt_embeds: Any = None,
                 negative_prompt_embeds: Any = None, output_type: str = "pil", return_dict: bool = True,
                 guidance_rescale: float = 0.0, clip_skip: int | None = None):
        """Generate images from ``prompt``, as diffusers' ``StableDiffusionPipeline.__call__``.

        Args:
          prompt: a str or a list of str (or None with ``prompt_embeds``).
          height, width: pixels, multiples of 8; default ``unet.config.sample_size * vae_scale_factor``.
          num_inference_steps: scheduler steps (``len(scheduler.set_timesteps(n).timesteps)`` UNet calls).
          guidance_scale: classifier-free guidance weight ``w``; guidance is on when ``w > 1``.
          negative_prompt: str or list (one per prompt, same type as ``prompt``); default the empty prompt.
          num_images_per_prompt: images per prompt (each prompt's images are consecutive).
          eta: DDIM's eta (noise from ``rng`` when > 0).
          rng: an int seed or a ``jax.random`` key: the initial latents and the schedulers' noise.
          latents: initial latents ``(batch * num_images_per_prompt, 4, height // f, width // f)`` (NCHW,
            as diffusers), multiplied by the scheduler's ``init_noise_sigma``; then ``rng`` is not needed
            (except by ancestral schedulers).
          prompt_embeds, negative_prompt_embeds: precomputed text embeddings ``(batch, seq, hidden)``.
          output_type: ``"pil"`` (list of PIL images), ``"np"`` (float32 ``(batch, height, width, 3)``
            in [0, 1]) or ``"latent"`` (the final latents, a JAX array).
          return_dict: False returns ``(images, None)``.
          guidance_rescale: diffusers' ``guidance_rescale`` (Lin et al. 2023, section 3.4), with guidance.
          clip_skip: use the text encoder's hidden state ``clip_skip`` layers before the last.

        Returns:
          :class:`StableDiffusionPipelineOutput`.

        Raises:
          ValueError: ``height``/``width`` not multiples of 8, a negative prompt list of another length,
            both or neither of ``prompt`` and ``prompt_embeds``, mis-shaped ``latents``, no ``rng``
            and no ``latents``, a bad ``output_type`` or step count.
          TypeError: ``prompt``/``negative_prompt`` of mismatched or wrong types, a bad ``rng``.
        """
        name = "StableDiffusionPipeline"
        self._check_common(name, num_inference_steps, guidance_scale, guidance_rescale, num_images_per_prompt,
                           output_type)
        f = self.vae_scale_factor
        height = height or self.unet.config.sample_size * f
        width = width or self.unet.config.sample_size * f
        height, width = _check_size(height, width, name)
        _check_prompt_args(name, prompt, prompt_embeds, negative_prompt, negative_prompt_embeds)
        prompt_embeds = self._embeds(prompt_embeds, name, "prompt_embeds", 3)
        negative_prompt_embeds = self._embeds(negative_prompt_embeds, name, "negative_prompt_embeds", 3)
        key = _rng_key(rng, name)
        latent_key, step_key = (None, None) if key is None else tuple(jax.random.split(key))
        cfg = self._do_cfg(guidance_scale)
        embeds, negative = self.encode_prompt(prompt, num_images_per_prompt, cfg, negative_prompt, prompt_embeds,
                                              negative_prompt_embeds, clip_skip)
        if cfg:
            assert negative is not None
            embeds = jnp.concatenate([negative, embeds])
        batch = embeds.shape[0] // (2 if cfg else 1)
        shape = (batch, self.unet.config.in_channels, height // f, width // f)
        latents = self._prepare_latents(name, shape, latents, latent_key)
        latents = self._denoise(latents, num_inference_steps, embeds, None, cfg, float(guidance_scale),
                                float(guidance_rescale), eta, step_key)
        images = self._finish(latents, output_type)
        return StableDiffusionPipelineOutput(images=images) if return_dict else (images, None)


def _check_prompt_args(name: str, prompt: Any, prompt_embeds: Any, negative_prompt: Any,
                       negative_prompt_embeds: Any) -> None:
    if prompt is not None and prompt_embeds is not None:
        raise ValueError(f"{name}: pass either `prompt` or `prompt_embeds`, not both.")
    if prompt is None and prompt_embeds is None:
        raise ValueError(f"{name}: pass `prompt` or `prompt_embeds`.")
    if negative_prompt is not None and negative_prompt_embeds is not None:
        raise ValueError(f"{name}: pass either `negative_prompt` or `negative_prompt_embeds`, not both.")
    if prompt_embeds is not None and negative_prompt_embeds is not None:
        if jnp.shape(prompt_embeds) != jnp.shape(negative_prompt_embeds):
            raise ValueError(f"{name}: `prompt_embeds` and `negative_prompt_embeds` must have the same shape, got "
                             f"{jnp.shape(prompt_embeds)} and {jnp.shape(negative_prompt_embeds)}.")


def _corrected_scheduler(scheduler: Scheduler) -> Scheduler:
    """diffusers' StableDiffusionPipeline corrections of outdated scheduler configs: ``steps_offset``
    set to 1 and ``clip_sample`` to False, each with a FutureWarning."""
    changes: dict[str, Any] = {}
    cfg = scheduler.config
    if cfg.get("steps_offset", 1) != 1:
        warnings.warn(f"The configuration of the scheduler {type(scheduler).__name__} is outdated: `steps_offset` "
                      f"should be 1 instead of {cfg['steps_offset']}; it is set to 1 (as diffusers' "
                      "StableDiffusionPipeline does).", FutureWarning, stacklevel=4)
        changes["steps_offset"] = 1
    if cfg.get("clip_sample", False) is True:
        warnings.warn(f"The configuration of the scheduler {type(scheduler).__name__} sets `clip_sample=True`, "
                      "wrong for latent diffusion; it is set to False (as diffusers' StableDiffusionPipeline "
                      "does).", FutureWarning, stacklevel=4)
        changes["clip_sample"] = False
    return type(scheduler).from_config(dict(cfg, **changes)) if changes else scheduler


# ------------------------------------------------------------------------------------- SDXL
class StableDiffusionXLPipeline(_Pipeline):
    r"""diffusers' ``StableDiffusionXLPipeline`` (Podell et al., "SDXL: Improving Latent Diffusion
    Models for High-Resolution Image Synthesis", 2023) in JAX.

    As :class:`StableDiffusionPipeline`, with two text encoders: the prompt's context is the
    concatenation (last axis) of both encoders' penultimate hidden states (``prompt`` for
    ``text_encoder``, ``prompt_2`` (default ``prompt``) for ``text_encoder_2``), and the UNet gets
    SDXL's micro-conditioning ``added_cond_kwargs = {"text_embeds": pooled, "time_ids":
    original_size + crops_coords_top_left + target_size}`` with ``pooled`` the projected pooled
    output of ``text_encoder_2``. Without a negative prompt and with ``force_zeros_for_empty_prompt``
    (the pipeline config; True for SDXL base) the unconditional embeddings are zeros. The latents are
    decoded as ``latents * latents_std / scaling_factor + latents_mean`` when the VAE config has
    ``latents_mean`` and ``latents_std``, else ``latents / scaling_factor``.

    Differences from diffusers: those of :class:`StableDiffusionPipeline`; no invisible watermark;
    no ``denoising_end``. As in diffusers, with ``negative_original_size`` etc. the guided batch's
    ``time_ids`` rows alternate negative / positive (diffusers tiles ``cat([neg, pos])``), kept for
    identical numbers.
    """

    _class_name = "StableDiffusionXLPipeline"
    _config_defaults: ClassVar[dict[str, Any]] = {"force_zeros_for_empty_prompt": True}
    _components = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")

    def __init__(self, vae: AutoencoderKL, text_encoder: CLIPTextModel | None,
                 text_encoder_2: CLIPTextModelWithProjection, tokenizer: Any, tokenizer_2: Any,
                 unet: UNet2DConditionModel, scheduler: Scheduler, *, config: Mapping[str, Any] | None = None):
        if not isinstance(scheduler, Scheduler):
            raise TypeError(f"StableDiffusionXLPipeline: `scheduler` must be a jaxnn scheduler, got "
                            f"{type(scheduler).__name__}.")
        self.vae, self.text_encoder, self.text_encoder_2 = vae, text_encoder, text_encoder_2
        self.tokenizer, self.tokenizer_2, self.unet, self.scheduler = tokenizer, tokenizer_2, unet, scheduler
        self._setup(config)

    @property
    def default_sample_size(self) -> int:
        return int(self.unet.config.sample_size)

    @staticmethod
    def _unscale(vae: Any, latents: Array) -> Array:
        """diffusers' StableDiffusionXLPipeline: ``latents * latents_std / scaling_factor +
        latents_mean`` when the VAE config has both, else ``latents / scaling_factor``."""
        c = vae.config
        mean, std = c.get("latents_mean"), c.get("latents_std")
        if mean is not None and std is not None:
            m = jnp.asarray(mean, latents.dtype).reshape(1, -1, 1, 1)
            s = jnp.asarray(std, latents.dtype).reshape(1, -1, 1, 1)
            return latents * s / c.scaling_factor + m
        return latents / c.scaling_factor

    def encode_prompt(self, prompt: str | list[str] | None, prompt_2: str | list[str] | None = None,
                      num_images_per_prompt: int = 1, do_classifier_free_guidance: bool = True,
                      negative_prompt: str | list[str] | None = None,
                      negative_prompt_2: str | list[str] | None = None, prompt_embeds: Any = None,
                      negative_prompt_embeds: Any = None, pooled_prompt_embeds: Any = None,
                      negative_pooled_prompt_embeds: Any = None, clip_skip: int | None = None):
        """diffusers' SDXL ``encode_prompt``: ``(prompt_embeds, negative_prompt_embeds,
        pooled_prompt_embeds, negative_pooled_prompt_embeds)`` repeated ``num_images_per_prompt``
        times (negatives None without guidance)."""
        name = "StableDiffusionXLPipeline"
        prompts = _prompt_list(prompt, name, "prompt")
        batch_size = len(prompts) if prompts is not None else int(jnp.shape(prompt_embeds)[0])
        tokenizers = [self.tokenizer, self.tokenizer_2] if self.tokenizer is not None else [self.tokenizer_2]
        encoders = ([self.text_encoder, self.text_encoder_2] if self.text_encoder is not None
                    else [self.text_encoder_2])
        hidden_index = -2 if clip_skip is None else -(clip_skip + 2)
        if prompt_embeds is None:
            assert prompts is not None
            prompts_2 = _prompt_list(prompt_2, name, "prompt_2") or prompts
            embeds = []
            for texts, tok, enc in zip([prompts, prompts_2], tokenizers, encoders, strict=False):
                inputs = self._tokenize(tok, texts, tok.model_max_length)
                hidden, pooled = self._encode(enc, inputs["input_ids"], None, hidden_index)
                if pooled_prompt_embeds is None and isinstance(enc, CLIPTextModelWithProjection):
                    pooled_prompt_embeds = pooled
                embeds.append(hidden)
            prompt_embeds = jnp.concatenate(embeds, axis=-1)
        elif pooled_prompt_embeds is None:
            raise ValueError(f"{name}: with `prompt_embeds`, pass `pooled_prompt_embeds` too (the pooled output "
                             "of text_encoder_2).")
        zero_out = negative_prompt is None and bool(self.config.force_zeros_for_empty_prompt)
        if do_classifier_free_guidance and negative_prompt_embeds is None and zero_out:
            negative_prompt_embeds = jnp.zeros_like(prompt_embeds)
            negative_pooled_prompt_embeds = jnp.zeros_like(jnp.asarray(pooled_prompt_embeds))
        elif do_classifier_free_guidance and negative_prompt_embeds is None:
            neg = negative_prompt or ""
            neg_2 = negative_prompt_2 or neg
            neg_list = _prompt_list(neg, name, "negative_prompt")
            neg_2_list = _prompt_list(neg_2, name, "negative_prompt_2")
            assert neg_list is not None and neg_2_list is not None
            if isinstance(neg, str):
                neg_list = neg_list * batch_size
            if isinstance(neg_2, str):
                neg_2_list = neg_2_list * batch_size
            for what, lst in (("negative_prompt", neg_list), ("negative_prompt_2", neg_2_list)):
                if len(lst) != batch_size:
                    raise ValueError(f"{name}: `{what}` has batch size {len(lst)}, but `prompt` has batch size "
                                     f"{batch_size}: pass one negative prompt per prompt.")
            embeds = []
            for texts, tok, enc in zip([neg_list, neg_2_list], tokenizers, encoders, strict=False):
                inputs = self._tokenize(tok, texts, prompt_embeds.shape[1])
                hidden, pooled = self._encode(enc, inputs["input_ids"], None, -2)
                if negative_pooled_prompt_embeds is None and isinstance(enc, CLIPTextModelWithProjection):
                    negative_pooled_prompt_embeds = pooled
                embeds.append(hidden)
            negative_prompt_embeds = jnp.concatenate(embeds, axis=-1)
        dtype = _param_dtype(self.text_encoder_2 if self.text_encoder_2 is not None else self.unet)
        n = num_images_per_prompt
        prompt_embeds = jnp.repeat(jnp.asarray(prompt_embeds).astype(dtype), n, axis=0)
        pooled_prompt_embeds = jnp.repeat(jnp.asarray(pooled_prompt_embeds), n, axis=0)
        if do_classifier_free_guidance:
            if negative_pooled_prompt_embeds is None:
                raise ValueError(f"{name}: with `negative_prompt_embeds`, pass `negative_pooled_prompt_embeds` too.")
            negative_prompt_embeds = jnp.repeat(jnp.asarray(negative_prompt_embeds).astype(dtype), n, axis=0)
            negative_pooled_prompt_embeds = jnp.repeat(jnp.asarray(negative_pooled_prompt_embeds), n, axis=0)
        return prompt_embeds, negative_prompt_embeds, pooled_prompt_embeds, negative_pooled_prompt_embeds

    def _add_time_ids(self, original_size: Sequence[int], crops_coords_top_left: Sequence[int],
                      target_size: Sequence[int], projection_dim: int) -> np.ndarray:
        ids = [*original_size, *crops_coords_top_left, *target_size]
        c = self.unet.config
        passed = c.addition_time_embed_dim * len(ids) + projection_dim
        expected = c.projection_class_embeddings_input_dim
        if expected != passed:
            raise ValueError(f"StableDiffusionXLPipeline: the UNet expects an added time embedding vector of length "
                             f"{expected}, but a vector of {passed} was created (addition_time_embed_dim="
                             f"{c.addition_time_embed_dim} x {len(ids)} time ids + text_encoder_2's projection_dim="
                             f"{projection_dim}): the model has an incorrect config.")
        return np.asarray([ids], np.float32)

    def __call__(self, prompt: str | list[str] | None = None, prompt_2: str | list[str] | None = None,
                 height: int | None = None, width: int | None = None, num_inference_steps: int = 50,
                 guidance_scale: float = 5.0, negative_prompt: str | list[str] | None = None,
                 negative_prompt_2: str | list[str] | None = None, num_images_per_prompt: int = 1,
                 eta: float = 0.0, rng: Any = None, latents: Any = None, prompt_embeds: Any = None,
                 negative_prompt_embeds: Any = None, pooled_prompt_embeds: Any = None,
                 negative_pooled_prompt_embeds: Any = None, output_type: str = "pil", return_dict: bool = True,
                 guidance_rescale: float = 0.0, original_size: tuple[int, int] | None = None,
                 crops_coords_top_left: tuple[int, int] = (0, 0), target_size: tuple[int, int] | None = None,
                 negative_original_size: tuple[int, int] | None = None,
                 negative_crops_coords_top_left: tuple[int, int] = (0, 0),
                 negative_target_size: tuple[int, int] | None = None, clip_skip: int | None = None):
        """Generate images, as diffusers' ``StableDiffusionXLPipeline.__call__``.

        Args: as :meth:`StableDiffusionPipeline.__call__`, plus
          prompt_2, negative_prompt_2: the texts for ``text_encoder_2`` (default: ``prompt`` /
            ``negative_prompt``).
          pooled_prompt_embeds, negative_pooled_prompt_embeds: ``(batch, projection_dim)`` with the
            precomputed embeddings.
          original_size, target_size: ``(height, width)`` micro-conditioning (default ``(height,
            width)``); crops_coords_top_left: ``(top, left)``, default ``(0, 0)``.
          negative_original_size, negative_crops_coords_top_left, negative_target_size: the
            unconditional batch's (used when both sizes are given).
          Defaults differ from SD's: ``guidance_scale=5.0``; height/width ``unet.config.sample_size * f``.

        Returns:
          :class:`StableDiffusionXLPipelineOutput` (``(images,)`` with ``return_dict=False``).

        Raises:
          As :meth:`StableDiffusionPipeline.__call__`; ValueError when the UNet's
          ``projection_class_embeddings_input_dim`` does not fit the time ids and the projection.
        """
        name = "StableDiffusionXLPipeline"
        self._check_common(name, num_inference_steps, guidance_scale, guidance_rescale, num_images_per_prompt,
                           output_type)
        f = self.vae_scale_factor
        height = height or self.default_sample_size * f
        width = width or self.default_sample_size * f
        height, width = _check_size(height, width, name)
        sizes = {}
        for what, v, default in (("original_size", original_size, (height, width)),
                                 ("crops_coords_top_left", crops_coords_top_left, (0, 0)),
                                 ("target_size", target_size, (height, width)),
                                 ("negative_original_size", negative_original_size, None),
                                 ("negative_crops_coords_top_left", negative_crops_coords_top_left, (0, 0)),
                                 ("negative_target_size", negative_target_size, None)):
            v = default if v is None else v
            if v is not None and (not isinstance(v, (tuple, list)) or len(v) != 2
                                  or not all(isinstance(x, (int, float, np.integer, np.floating)) for x in v)):
                raise ValueError(f"{name}: `{what}` must be a pair of numbers ((height, width) or (top, left)), "
                                 f"got {v!r}.")
            sizes[what] = None if v is None else tuple(v)
        _check_prompt_args(name, prompt, prompt_embeds, negative_prompt, negative_prompt_embeds)
        prompt_embeds = self._embeds(prompt_embeds, name, "prompt_embeds", 3)
        negative_prompt_embeds = self._embeds(negative_prompt_embeds, name, "negative_prompt_embeds", 3)
        pooled_prompt_embeds = self._embeds(pooled_prompt_embeds, name, "pooled_prompt_embeds", 2)
        negative_pooled_prompt_embeds = self._embeds(negative_pooled_prompt_embeds, name,
                                                     "negative_pooled_prompt_embeds", 2)
        key = _rng_key(rng, name)
        latent_key, step_key = (None, None) if key is None else tuple(jax.random.split(key))
        cfg = self._do_cfg(guidance_scale)
        embeds, negative, pooled, negative_pooled = self.encode_prompt(
            prompt, prompt_2, num_images_per_prompt, cfg, negative_prompt, negative_prompt_2, prompt_embeds,
            negative_prompt_embeds, pooled_prompt_embeds, negative_pooled_prompt_embeds, clip_skip)
        projection_dim = (int(self.text_encoder_2.config.projection_dim) if self.text_encoder_2 is not None
                          else int(pooled.shape[-1]))
        time_ids = self._add_time_ids(sizes["original_size"], sizes["crops_coords_top_left"], sizes["target_size"],
                                      projection_dim)
        if sizes["negative_original_size"] is not None and sizes["negative_target_size"] is not None:
            negative_time_ids = self._add_time_ids(sizes["negative_original_size"],
                                                   sizes["negative_crops_coords_top_left"],
                                                   sizes["negative_target_size"], projection_dim)
        else:
            negative_time_ids = time_ids
        batch = embeds.shape[0]
        if cfg:
            assert negative is not None and negative_pooled is not None
            embeds = jnp.concatenate([negative, embeds])
            pooled = jnp.concatenate([negative_pooled, pooled])
            time_ids = np.concatenate([negative_time_ids, time_ids])
        added = {"text_embeds": pooled.astype(embeds.dtype),
                 "time_ids": jnp.asarray(np.tile(time_ids, (batch, 1))).astype(embeds.dtype)}
        shape = (batch, self.unet.config.in_channels, height // f, width // f)
        latents = self._prepare_latents(name, shape, latents, latent_key)
        latents = self._denoise(latents, num_inference_steps, embeds, added, cfg, float(guidance_scale),
                                float(guidance_rescale), eta, step_key)
        images = self._finish(latents, output_type)
        return StableDiffusionXLPipelineOutput(images=images) if return_dict else (images,)


def _read_index(path: str | os.PathLike) -> dict[str, Any]:
    """``model_index.json`` of a pipeline folder (for :mod:`jaxnn.models.generate`)."""
    p = os.path.join(os.fspath(path), "model_index.json")
    if not os.path.isfile(p):
        raise CheckpointNotFoundError(f"{os.fspath(path)!r} holds no model_index.json (not a diffusers pipeline "
                                      "folder).")
    with open(p, encoding="utf-8") as fh:
        return json.load(fh)
