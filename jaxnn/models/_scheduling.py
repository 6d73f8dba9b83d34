"""The base of jaxnn's diffusion schedulers: diffusers' scheduler configurations, noise tables and
the functional state that makes a sampling step jit-safe.

diffusers' schedulers are stateful torch objects (``set_timesteps`` stores the timesteps, ``step``
advances a hidden step counter). Here a scheduler holds only its configuration and the float32
tables computed from it (``betas``, ``alphas``, ``alphas_cumprod``, NumPy arrays computed with
torch's float32 op sequence so that they equal diffusers' bit for bit or to one ulp);
``set_timesteps`` returns a *state* (a pytree of arrays: the timesteps, sigmas, step index, the
multistep history), and ``step`` takes that state and returns the next one with the sample. The
sampling loop is then one jitted function, compiled once and reused for every step, as the removed
Flax schedulers of diffusers (``FlaxDDIMScheduler``) did.

Configurations are diffusers' (``scheduler_config.json``, ``Scheduler.from_pretrained(path,
subfolder="scheduler")``): every option of the diffusers class is accepted with its default; an
option whose value jaxnn does not implement raises NotImplementedError naming it; keys that the class
does not know (e.g. ``skip_prk_steps`` when a PNDM config builds a DPM-Solver, as pipelines swap
schedulers with ``from_config(scheduler.config)``) are ignored with a warning, as diffusers does.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from .._checkpoint import CheckpointNotFoundError
from ._pretrained import DIFFUSERS_VERSION, Config, _local_folder, _read_json

Array = jax.Array


@struct.dataclass
class SchedulerOutput:
    """What ``step`` returns: diffusers' ``prev_sample`` (x_{t-1}) and, where the diffusers
    scheduler gives it, ``pred_original_sample`` (the predicted x_0; None otherwise), plus the
    scheduler ``state`` for the next step. ``return_dict=False`` gives ``(prev_sample, state)``."""

    prev_sample: Array
    state: Any
    pred_original_sample: Array | None = None


def _linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)``, correctly rounded: computed in
    float64 and rounded once. torch's CPU kernel builds the values in float32 from a float32 step, in
    vector-width blocks, so its values differ from these by at most one ulp in places that depend
    on the CPU's instruction set (AVX2 vs AVX-512); jaxnn takes the mathematically right value."""
    return np.linspace(start, end, steps, dtype=np.float64).astype(np.float32)


def _cumprod_f32(values: np.ndarray) -> np.ndarray:
    """``torch.cumprod`` of a float32 vector on CPU: torch accumulates in float64 (``acc_type`` of
    float on CPU) and rounds each partial product to float32; NumPy's float32 cumprod would round
    at every step (up to ~1e-6 relative apart after 1000 steps)."""
    return np.cumprod(values.astype(np.float64)).astype(np.float32)


def betas_for_alpha_bar(num_diffusion_timesteps: int, max_beta: float = 0.999,
                        alpha_transform_type: str = "cosine") -> np.ndarray:
    """diffusers' ``betas_for_alpha_bar`` (the ``squaredcos_cap_v2`` schedule of Nichol & Dhariwal,
    "Improved DDPM", 2021): ``beta_i = min(1 - abar((i+1)/N) / abar(i/N), max_beta)`` in Python
    floats, then float32."""
    if alpha_transform_type == "cosine":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    elif alpha_transform_type == "exp":
        def alpha_bar(t: float) -> float:
            return math.exp(t * -12.0)
    elif alpha_transform_type == "laplace":
        def alpha_bar(t: float) -> float:
            lmb = -0.5 * math.copysign(1, 0.5 - t) * math.log(1 - 2 * math.fabs(0.5 - t) + 1e-6)
            snr = math.exp(lmb)
            return math.sqrt(snr / (1 + snr))
    else:
        raise ValueError(f"betas_for_alpha_bar: unsupported alpha_transform_type={alpha_transform_type!r}.")
    n = num_diffusion_timesteps
    return np.array([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)],
                    dtype=np.float32)


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """diffusers' ``rescale_zero_terminal_snr`` (Lin et al., "Common Diffusion Noise Schedules and
    Sample Steps are Flawed", 2023, Algorithm 1), in float32."""
    alphas = np.float32(1.0) - betas
    abar_sqrt = np.sqrt(_cumprod_f32(alphas))
    a0, at = abar_sqrt[0].copy(), abar_sqrt[-1].copy()
    abar_sqrt = abar_sqrt - at
    abar_sqrt = abar_sqrt * (a0 / (a0 - at))
    abar = abar_sqrt ** 2
    alphas = np.concatenate([abar[:1], abar[1:] / abar[:-1]])
    return (np.float32(1.0) - alphas).astype(np.float32)


def _expand(values: Array, ndim: int) -> Array:
    """Per-batch values (B,) or a scalar broadcast against a (B, ...) sample, as diffusers'
    ``flatten`` + ``unsqueeze(-1)`` loop."""
    values = jnp.ravel(values)
    return values.reshape(values.shape + (1,) * (ndim - 1))


def _all_scheduler_options() -> set[str]:
    """Every option of every jaxnn scheduler class (the subclasses of :class:`Scheduler`)."""
    seen, todo = set(), list(Scheduler.__subclasses__())
    while todo:
        cls = todo.pop()
        seen.update(cls._defaults)
        todo.extend(cls.__subclasses__())
    return seen


class Scheduler:
    """Base of the schedulers: the configuration (diffusers' options and defaults), ``from_config``,
    ``from_pretrained``, ``save_pretrained`` and the noise tables of the DDPM family.

    A subclass sets ``_defaults`` (the diffusers ``__init__`` defaults, in order), ``_supported``
    (option -> the values jaxnn implements; any other value raises NotImplementedError),
    ``order`` and implements ``set_timesteps``, ``scale_model_input`` and ``step``.

    Construct as diffusers does: ``DDIMScheduler(beta_schedule="scaled_linear", ...)``,
    ``DDIMScheduler.from_config(other.config)`` or ``from_pretrained(folder, subfolder="scheduler")``.
    """

    config_name: ClassVar[str] = "scheduler_config.json"
    _defaults: ClassVar[dict[str, Any]] = {}
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = {}
    order: ClassVar[int] = 1
    #: Sigma-based schedulers (Euler, DPM-Solver): under ``rescale_betas_zero_snr`` the final
    #: ``alphas_cumprod`` is 2**-24 instead of 0, as diffusers sets it.
    _zero_snr_floor: ClassVar[bool] = False
    config: Config

    def __init__(self, **config: Any):
        name = type(self).__name__
        unknown = sorted(k for k in config if k not in self._defaults and not k.startswith("_"))
        # Options of the other schedulers pass silently (a pipeline's scheduler config is another
        # class's as a rule: SD 1.5's PNDM config builds DDPM for training), as diffusers drops the
        # original class's keys; a key no scheduler knows (a misspelling) is warned about.
        strange = [k for k in unknown if k not in _all_scheduler_options()]
        if strange:
            warnings.warn(f"{name}: the configuration options {strange} are not options of {name} or of another "
                          "jaxnn scheduler and are ignored (kept in its config, as diffusers does).", stacklevel=3)

        def plain(v: Any) -> Any:  # arrays (``trained_betas``) as lists: the config is JSON, as diffusers writes it
            return v.tolist() if isinstance(v, (np.ndarray, jax.Array)) else v

        values = dict(self._defaults)
        values.update({k: plain(v) for k, v in config.items() if k in self._defaults})
        for option, allowed in self._supported.items():
            if values[option] not in allowed:
                raise NotImplementedError(f"{name}: {option}={values[option]!r} is not implemented by jaxnn "
                                          f"(supported: {', '.join(map(repr, allowed))}).")
        # diffusers keeps the options it does not use in the config (its "hidden" keys, for compatible
        # classes): SD 1.5's PNDM config carries ``clip_sample=False`` on to the DDIM built from it with
        # ``DDIMScheduler.from_config(pndm.config)``, SD 2.1's DDIM config ``skip_prk_steps=True`` to PNDM.
        values.update({k: plain(config[k]) for k in unknown})
        # diffusers' ConfigMixin records the options left at their defaults, and ``from_config`` of
        # another class drops them so that it takes ITS defaults (SD 1.5's PNDM config has no
        # ``timestep_spacing``: a DPM-Solver built from it spaces "linspace", not PNDM's "leading").
        values["_use_default_values"] = sorted(set(self._defaults) - set(config))
        self.config = Config(values)
        self._build_tables()

    # ----------------------------------------------------------------- configuration and files
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | os.PathLike, **kwargs: Any):
        """A scheduler from a configuration: a mapping (diffusers' ``scheduler.config`` or another
        jaxnn scheduler's ``config``), a ``scheduler_config.json`` path or its folder; ``kwargs``
        override options (``DPMSolverMultistepScheduler.from_config(cfg, use_karras_sigmas=True)``)."""
        if isinstance(config, (str, os.PathLike)):
            p = os.fspath(config)
            config = _read_json(os.path.join(p, cls.config_name) if os.path.isdir(p) else p,
                                f"{cls.__name__}.from_config")
        if not isinstance(config, Mapping):
            raise TypeError(f"{cls.__name__}.from_config: `config` must be a mapping or a path, "
                            f"got {type(config).__name__}.")
        defaulted = set(config.get("_use_default_values", ()))  # see __init__
        config = {k: v for k, v in config.items() if k not in defaulted and k != "_use_default_values"}
        return cls(**dict(config, **kwargs))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, subfolder: str | None = None,
                        **kwargs: Any):
        """Read ``scheduler_config.json`` from a local folder (``subfolder="scheduler"`` in a
        pipeline folder). Nothing is downloaded: a hub id is an error."""
        folder = _local_folder(cls.__name__, pretrained_model_name_or_path, subfolder)
        path = os.path.join(folder, cls.config_name)
        if not os.path.isfile(path):
            raise CheckpointNotFoundError(f"{cls.__name__}.from_pretrained: {path!r} does not exist.")
        return cls.from_config(path, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write ``scheduler_config.json`` as diffusers does (diffusers' ``from_pretrained`` reads it)."""
        folder = os.fspath(save_directory)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, self.config_name)
        data = {"_class_name": type(self).__name__, "_diffusers_version": DIFFUSERS_VERSION,
                **{k: v for k, v in self.config.to_dict().items() if k != "_use_default_values"}}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.config.to_dict().items() if k != "_use_default_values"}
        return f"{type(self).__name__}({shown!r})"

    def __len__(self) -> int:
        return int(self.config["num_train_timesteps"])

    # ------------------------------------------------------------------------------ noise tables
    def _build_tables(self) -> None:
        """``betas``, ``alphas``, ``alphas_cumprod`` (float32 NumPy, torch's op sequence: linspace
        rounded to float32, squared in float32 for ``scaled_linear``, cumprod accumulated in float64)."""
        c = self.config
        n = int(c["num_train_timesteps"])
        trained = c.get("trained_betas")
        if trained is not None:
            betas = np.asarray(trained, dtype=np.float32)
        elif c["beta_schedule"] == "linear":
            betas = _linspace_f32(c["beta_start"], c["beta_end"], n)
        elif c["beta_schedule"] == "scaled_linear":
            betas = _linspace_f32(c["beta_start"] ** 0.5, c["beta_end"] ** 0.5, n) ** 2
        elif c["beta_schedule"] == "squaredcos_cap_v2":
            betas = betas_for_alpha_bar(n)
        else:
            raise NotImplementedError(f"{type(self).__name__}: beta_schedule={c['beta_schedule']!r} is not "
                                      "implemented (supported: 'linear', 'scaled_linear', 'squaredcos_cap_v2').")
        # only where it is an option of the class (PNDM has none): the config also holds other classes' options
        rescaled = "rescale_betas_zero_snr" in self._defaults and c["rescale_betas_zero_snr"]
        if rescaled:
            betas = rescale_zero_terminal_snr(betas)
        self.betas = betas.astype(np.float32)
        self.alphas = (np.float32(1.0) - self.betas).astype(np.float32)
        self.alphas_cumprod = _cumprod_f32(self.alphas)
        if rescaled and self._zero_snr_floor:
            # diffusers' sigma schedulers: a zero terminal SNR would make sigma infinite; abar_T = 2^-24.
            self.alphas_cumprod[-1] = np.float32(2.0 ** -24)

    def _check_steps(self, num_inference_steps: Any) -> int:
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}.set_timesteps: `num_inference_steps` must be an int, "
                            f"got {num_inference_steps!r}.")
        n = int(num_inference_steps)
        if not 1 <= n <= len(self):
            raise ValueError(f"{type(self).__name__}.set_timesteps: `num_inference_steps` (={n}) must be in "
                             f"[1, num_train_timesteps={len(self)}].")
        return n

    def _train_timesteps(self, what: str, timesteps: Any, x: Array) -> Array:
        """``timesteps`` checked as indices into the training schedule: integers, one per sample (or
        one for all), in ``[0, num_train_timesteps)`` where their values are known (not traced)."""
        name = f"{type(self).__name__}.{what}"
        t = _integer_index(timesteps, lambda dtype: f"{name}: `timesteps` must be integers (indices into the "
                           f"training schedule), got dtype {dtype}.")
        if x.ndim == 0 or t.size not in (1, x.shape[0]):
            raise ValueError(f"{name}: `timesteps` must hold one timestep per sample (or one for all), got shape "
                             f"{t.shape} for samples of shape {x.shape}.")
        return _check_index_range(t, len(self), lambda values: f"{name}: `timesteps` must lie in [0, "
                                  f"num_train_timesteps={len(self)}), got {values!r}.")

    def add_noise(self, original_samples: Array, noise: Array, timesteps: Array) -> Array:
        """The forward diffusion ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (diffusers'
        ``add_noise`` of DDPM/DDIM/PNDM/DPM-Solver), ``timesteps`` (B,) integers indexing the training
        schedule (traced is fine; checked to lie in range when not); the table is cast to the
        samples' dtype first, as diffusers does. TypeError for non-integer ``timesteps``, ValueError
        for out-of-range values or a count that is neither 1 nor B."""
        x = jnp.asarray(original_samples)
        abar = jnp.asarray(self.alphas_cumprod).astype(x.dtype)[self._train_timesteps("add_noise", timesteps, x)]
        one = jnp.asarray(1, x.dtype)
        return _expand(jnp.sqrt(abar), x.ndim) * x + _expand(jnp.sqrt(one - abar), x.ndim) * jnp.asarray(noise)

    def get_velocity(self, sample: Array, noise: Array, timesteps: Array) -> Array:
        """The v-prediction target ``sqrt(abar_t) noise - sqrt(1 - abar_t) x0`` (Salimans & Ho,
        "Progressive Distillation", 2022; diffusers' ``get_velocity``); ``timesteps`` as in ``add_noise``."""
        x = jnp.asarray(sample)
        abar = jnp.asarray(self.alphas_cumprod).astype(x.dtype)[self._train_timesteps("get_velocity", timesteps, x)]
        one = jnp.asarray(1, x.dtype)
        return _expand(jnp.sqrt(abar), x.ndim) * jnp.asarray(noise) - _expand(jnp.sqrt(one - abar), x.ndim) * x


def _integer_index(value: Any, type_error: Callable[[Any], str]) -> Array:
    """``value`` as an integer array (an index into the training schedule); TypeError with
    ``type_error(dtype)`` otherwise."""
    t = jnp.asarray(value)
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(type_error(t.dtype))
    return t


def _check_index_range(t: Array, num_train: int, range_error: Callable[[list], str]) -> Array:
    """``t``, checked to lie in ``[0, num_train)`` where its values are known (not traced): diffusers
    indexes ``alphas_cumprod`` with it (an IndexError out of range), where a JAX gather would
    silently clamp the index. ValueError with ``range_error(values)`` otherwise."""
    try:
        values = np.asarray(t)
    except jax.errors.TracerArrayConversionError:
        return t
    if values.size and (values.min() < 0 or values.max() >= num_train):
        raise ValueError(range_error(values.tolist()))
    return t


def _step_timestep(name: str, timestep: Any, num_train: int) -> Array:
    """``step``'s ``timestep`` as an integer array, checked where its value is known (not traced)."""
    t = _integer_index(timestep, lambda dtype: f"{name}.step: `timestep` must be an integer (an entry of "
                       f"state.timesteps), got {timestep!r} of dtype {dtype}.")
    return _check_index_range(t, num_train, lambda values: f"{name}.step: `timestep` (={values!r}) must lie in "
                              f"[0, num_train_timesteps={num_train}).")


def _leading_trailing_linspace(spacing: str, num_train: int, n: int, steps_offset: int) -> np.ndarray:
    """The discrete timesteps of DDIM/DDPM/PNDM-style ``set_timesteps`` (int64, descending)."""
    if spacing == "linspace":
        return np.linspace(0, num_train - 1, n).round()[::-1].copy().astype(np.int64)
    if spacing == "leading":
        ratio = num_train // n
        return (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64) + steps_offset
    if spacing == "trailing":
        return np.round(np.arange(num_train, 0, -num_train / n)).astype(np.int64) - 1
    raise ValueError(f"timestep_spacing={spacing!r} is not one of 'linspace', 'leading', 'trailing'.")


@struct.dataclass
class DDIMSchedulerState:
    """``DDIMScheduler.set_timesteps``' result: the descending timesteps and the step count."""

    timesteps: Array
    num_inference_steps: int = struct.field(pytree_node=False)
    init_noise_sigma: float = struct.field(pytree_node=False, default=1.0)


def _predict(prediction_type: str, model_output: Array, sample: Array, abar_t: Array) -> tuple[Array, Array]:
    """(pred_original_sample, pred_epsilon) from the model output, as diffusers' DDIM/DDPM step."""
    one = jnp.asarray(1, abar_t.dtype)
    beta_t = one - abar_t
    if prediction_type == "epsilon":
        return (sample - jnp.sqrt(beta_t) * model_output) / jnp.sqrt(abar_t), model_output
    if prediction_type == "sample":
        return model_output, (sample - jnp.sqrt(abar_t) * model_output) / jnp.sqrt(beta_t)
    # v_prediction
    return (jnp.sqrt(abar_t) * sample - jnp.sqrt(beta_t) * model_output,
            jnp.sqrt(abar_t) * model_output + jnp.sqrt(beta_t) * sample)


class DDIMScheduler(Scheduler):
    r"""diffusers' ``DDIMScheduler`` (Song et al., "Denoising Diffusion Implicit Models", 2020) in JAX.

    ``state = scheduler.set_timesteps(n)``; ``out = scheduler.step(state, model_output, t, sample,
    eta=0.0, rng=None)`` gives ``out.prev_sample``, ``out.pred_original_sample`` and ``out.state``
    (unchanged: DDIM keeps no history). ``t`` is the timestep value (``state.timesteps[i]``, a traced
    scalar under jit is fine). One step goes from :math:`t` to :math:`t' = t -
    \lfloor N_{train}/n 
floor` (formula (12) of the paper):

    .. math::
        x_{t'} = \sqrt{arlpha_{t'}}\,\hat x_0 + \sqrt{1 - arlpha_{t'} - \sigma_t^2}\,\hat\epsilon
                 + \sigma_t z,\qquad
        \sigma_t = \eta\sqrt{rac{1-arlpha_{t'}}{1-arlpha_t}\Big(1-rac{arlpha_t}{arlpha_{t'}}\Big)}

    with :math:`\hat x_0, \hat\epsilon` from the model output by ``prediction_type`` (:math:`\hat x_0`
    clipped to ``±clip_sample_range`` if ``clip_sample``; :math:`\hat\epsilon` recomputed from the
    clipped one with ``use_clipped_model_output``) and :math:`arlpha_{t'}` =
    ``final_alpha_cumprod`` (1 if ``set_alpha_to_one`` else :math:`arlpha_0`) for :math:`t' < 0`.
    ``eta != 0`` adds noise :math:`z` drawn from ``rng`` (``jax.random.normal``; torch's generator
    cannot be reproduced: pass ``variance_noise`` for diffusers' exact numbers). Samples (B, C, ...)
    of any float dtype; float32 arithmetic, ``prev_sample`` in the model output's dtype. Numbers
    equal diffusers' in float32 to rounding.

    Errors: NotImplementedError for ``thresholding=True`` (dynamic thresholding, unsuited to latent
    diffusion) and ``beta_schedule`` values other than linear / scaled_linear / squaredcos_cap_v2;
    TypeError for an ``eta`` that is not a Python number (it decides, before tracing, whether noise
    is drawn) or a ``timestep`` that is not an integer; ValueError for bad ``num_inference_steps``, a
    ``timestep`` outside ``[0, num_train_timesteps)`` (when not traced) and missing or doubled noise.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxnn.models import DDIMScheduler
        >>> s = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        ...                   clip_sample=False, set_alpha_to_one=False, steps_offset=1)
        >>> state = s.set_timesteps(5)
        >>> state.timesteps.tolist()
        [801, 601, 401, 201, 1]
        >>> x = jnp.ones((1, 4, 8, 8))
        >>> step = jax.jit(lambda state, x, i: s.step(state, 0.1 * x, state.timesteps[i], x).prev_sample)
        >>> for i in range(5):
        ...     x = step(state, x, i)
        >>> x.shape
        (1, 4, 8, 8)
    """

    _defaults: ClassVar[dict[str, Any]] = dict(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        trained_betas=None, clip_sample=True, set_alpha_to_one=True, steps_offset=0,
        prediction_type="epsilon", thresholding=False, dynamic_thresholding_ratio=0.995,
        clip_sample_range=1.0, sample_max_value=1.0, timestep_spacing="leading",
        rescale_betas_zero_snr=False)
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = dict(
        beta_schedule=("linear", "scaled_linear", "squaredcos_cap_v2"),
        prediction_type=("epsilon", "sample", "v_prediction"), thresholding=(False,),
        timestep_spacing=("leading", "trailing", "linspace"))

    def _build_tables(self) -> None:
        super()._build_tables()
        self.final_alpha_cumprod = np.float32(1.0) if self.config.set_alpha_to_one else self.alphas_cumprod[0]

    def set_timesteps(self, num_inference_steps: int, shape: Any = None, dtype: Any = None) -> DDIMSchedulerState:
        """The state for ``num_inference_steps`` steps (diffusers' ``set_timesteps``; its
        ``timesteps`` attribute is ``state.timesteps`` here). ``shape`` and ``dtype`` (what multistep
        schedulers need for their history) are accepted and ignored, so pipelines call every
        scheduler alike."""
        del shape, dtype
        n = self._check_steps(num_inference_steps)
        c = self.config
        ts = _leading_trailing_linspace(c.timestep_spacing, len(self), n, c.steps_offset)
        return DDIMSchedulerState(timesteps=jnp.asarray(ts), num_inference_steps=n)

    def scale_model_input(self, state: Any, sample: Array, timestep: Any = None) -> Array:
        """DDIM does not scale the model input (the identity, as diffusers)."""
        del state, timestep
        return sample

    def step(self, state: DDIMSchedulerState, model_output: Array, timestep: Any, sample: Array, *,
             eta: float = 0.0, use_clipped_model_output: bool = False, rng: Array | None = None,
             variance_noise: Array | None = None, return_dict: bool = True):
        """One DDIM step from ``timestep`` to ``timestep - num_train_timesteps // num_inference_steps``
        (formula (12) of the paper; diffusers' ``DDIMScheduler.step``).

        ``eta`` (a Python number, static: it decides whether noise is drawn) scales the noise,
        :math:`\\sigma_t = \\eta\\sqrt{(1-\\bar\\alpha_{t'})/(1-\\bar\\alpha_t)\\,(1-\\bar\\alpha_t/\\bar\\alpha_{t'})}`
        (0: deterministic DDIM; 1: DDPM's variance); for ``eta != 0`` the noise comes from ``rng`` or
        ``variance_noise`` (shaped like the sample). ``use_clipped_model_output`` recomputes the
        noise prediction from the clipped :math:`\\hat x_0` as diffusers does. TypeError for an
        ``eta`` that is not a Python number; ValueError for missing or doubled noise."""
        if isinstance(eta, bool) or not isinstance(eta, (int, float)):
            raise TypeError(f"DDIMScheduler.step: `eta` must be a Python number (it decides whether noise is drawn), "
                            f"got {eta!r}.")
        c = self.config
        model_output, sample = jnp.asarray(model_output), jnp.asarray(sample)
        if model_output.shape != sample.shape:
            raise ValueError(f"DDIMScheduler.step: `model_output` has shape {model_output.shape} but `sample` has "
                             f"shape {sample.shape}.")
        t = _step_timestep("DDIMScheduler", timestep, len(self))
        prev_t = t - len(self) // state.num_inference_steps
        abar = jnp.asarray(self.alphas_cumprod)
        abar_t = abar[t]
        abar_prev = jnp.where(prev_t >= 0, abar[jnp.clip(prev_t, 0)], jnp.float32(self.final_alpha_cumprod))
        pred_x0, pred_eps = _predict(c.prediction_type, model_output, sample, abar_t)
        if c.clip_sample:
            pred_x0 = jnp.clip(pred_x0, -c.clip_sample_range, c.clip_sample_range)
        one = jnp.float32(1)
        variance = ((one - abar_prev) / (one - abar_t)) * (one - abar_t / abar_prev)
        std_dev_t = eta * jnp.sqrt(variance)
        if use_clipped_model_output:
            pred_eps = (sample - jnp.sqrt(abar_t) * pred_x0) / jnp.sqrt(one - abar_t)
        direction = jnp.sqrt(one - abar_prev - std_dev_t ** 2) * pred_eps
        prev_sample = jnp.sqrt(abar_prev) * pred_x0 + direction
        if eta != 0:
            if variance_noise is not None and rng is not None:
                raise ValueError("DDIMScheduler.step: pass either `rng` or `variance_noise`, not both.")
            if variance_noise is None:
                if rng is None:
                    raise ValueError("DDIMScheduler.step: eta > 0 adds noise: pass `rng` (a jax.random key) or "
                                     "`variance_noise`.")
                variance_noise = jax.random.normal(rng, model_output.shape, model_output.dtype)
            variance_noise = jnp.asarray(variance_noise)
            if variance_noise.shape != model_output.shape:
                raise ValueError(f"DDIMScheduler.step: `variance_noise` must have the model output's shape "
                                 f"{model_output.shape}, got {variance_noise.shape}.")
            prev_sample = prev_sample + std_dev_t * variance_noise
        prev_sample = prev_sample.astype(model_output.dtype)
        if not return_dict:
            return prev_sample, state
        return SchedulerOutput(prev_sample=prev_sample, state=state, pred_original_sample=pred_x0)
