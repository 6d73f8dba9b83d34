"""Karras-style (sigma-parameterised) samplers: diffusers' ``EulerDiscreteScheduler`` and
``EulerAncestralDiscreteScheduler`` as jit-safe functional schedulers, and the sigma tables they
share with ``DPMSolverMultistepScheduler`` (Karras, exponential and beta spacings, the sigma -> timestep
interpolation).

In the sigma form of diffusion (Karras et al., "Elucidating the Design Space of Diffusion-Based
Generative Models", 2022) a latent at training timestep ``t`` is ``x = x0 + sigma_t * noise`` with
``sigma_t = sqrt((1 - abar_t) / abar_t)``; the sampler integrates the probability-flow ODE
``dx/dsigma = (x - x0_pred) / sigma`` from the largest sigma down to 0. The model still sees the
variance-preserving input ``x / sqrt(sigma^2 + 1)`` (``scale_model_input``).

Everything that depends only on the configuration and the number of steps (timesteps, sigmas) is
computed on the host in NumPy with diffusers' operation sequence, so the tables equal diffusers'; the
``step`` arithmetic is float32 ``jax.numpy`` on the state, jit-safe with a traced step index.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ._scheduling import Scheduler, SchedulerOutput, _expand

Array = jax.Array

_SIGMA_SPACINGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def _sqrt(x: Array) -> Array:
    """``sqrt`` for a divisor: XLA rewrites ``a / sqrt(b)`` as ``a * rsqrt(b)``, which is not
    correctly rounded on CPU (an ulp off ``a / sqrt(b)`` for ~40% of float32 inputs, measured); the
    barrier keeps diffusers' division."""
    return jax.lax.optimization_barrier(jnp.sqrt(x))


# ------------------------------------------------------------------------------------------ sigma tables
def _train_sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    """``sqrt((1 - abar) / abar)`` over the training timesteps, float32 (torch's elementwise float32
    ops are correctly rounded, as NumPy's)."""
    abar = alphas_cumprod.astype(np.float32)
    return np.sqrt((np.float32(1.0) - abar) / abar).astype(np.float32)


def _sigma_to_t(sigma: Any, log_sigmas: np.ndarray) -> np.ndarray:
    """The (fractional) training timestep of ``sigma``: linear interpolation of ``log(sigma)`` in the
    table ``log_sigmas`` (ascending in t), clipped to [0, T-1]; diffusers' ``_sigma_to_t``, with its
    NumPy dtype sequence (float64 query against the float32 table)."""
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low_idx = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low = log_sigmas[low_idx]
    high = log_sigmas[high_idx]
    w = np.clip((low - log_sigma) / (low - high), 0, 1)
    t = (1 - w) * low_idx + w * high_idx
    return t.reshape(np.shape(sigma))


def _spaced_sigmas(kind: str, in_sigmas: np.ndarray, n: int, sigma_min: float | None,
                   sigma_max: float | None) -> np.ndarray:
    """``n`` sigmas from ``sigma_max`` down to ``sigma_min`` (default: the ends of ``in_sigmas``, which
    is descending), float64:

    - ``use_karras_sigmas``: ``(max^(1/rho) + ramp (min^(1/rho) - max^(1/rho)))^rho``, rho = 7, ramp
      uniform on [0, 1] (Karras et al. 2022, eq. 5);
    - ``use_exponential_sigmas``: ``exp`` of a uniform grid of ``log(sigma)``;
    - ``use_beta_sigmas``: ``min + ppf(1 - ramp) (max - min)`` with the Beta(0.6, 0.6) quantile
      function (Lee et al., "Beta Sampling is All You Need", 2024), through ``scipy.stats``.
    """
    lo = float(sigma_min) if sigma_min is not None else in_sigmas[-1].item()
    hi = float(sigma_max) if sigma_max is not None else in_sigmas[0].item()
    if kind == "use_karras_sigmas":
        rho = 7.0
        ramp = np.linspace(0, 1, n)
        min_inv_rho, max_inv_rho = lo ** (1 / rho), hi ** (1 / rho)
        return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    if kind == "use_exponential_sigmas":
        return np.exp(np.linspace(math.log(hi), math.log(lo), n))
    import scipy.stats  # a dependency of jax

    ppf = [scipy.stats.beta.ppf(q, 0.6, 0.6) for q in 1 - np.linspace(0, 1, n)]
    return np.array([lo + (p * (hi - lo)) for p in ppf])


def _spacing_option(config: Any) -> str | None:
    chosen = [k for k in _SIGMA_SPACINGS if config.get(k)]
    return chosen[0] if chosen else None


def _check_one_spacing(name: str, config: Any) -> None:
    chosen = [k for k in _SIGMA_SPACINGS if config.get(k)]
    if len(chosen) > 1:
        raise ValueError(f"{name}: only one of `use_karras_sigmas`, `use_exponential_sigmas`, `use_beta_sigmas` "
                         f"may be True, got {', '.join(f'{k}=True' for k in chosen)}.")


def _lookup_indices(schedule: Array, timesteps: Array, missing: str) -> Array:
    """diffusers' ``index_for_timestep`` for each entry of ``timesteps`` (B,): the position of the
    timestep in ``schedule``, the SECOND match when it occurs more than once (diffusers' rule for
    image-to-image); ``missing="last"`` maps an absent timestep to the last position (DPM-Solver)."""
    matches = jnp.asarray(schedule)[None, :] == jnp.ravel(timesteps)[:, None]
    count = matches.sum(axis=1)
    wanted = jnp.where(count > 1, 2, 1)
    idx = jnp.argmax(jnp.cumsum(matches, axis=1) >= wanted[:, None], axis=1)
    if missing == "last":
        idx = jnp.where(count == 0, schedule.shape[0] - 1, idx)
    return idx


def _check_timesteps_present(cls: str, schedule: Array, timesteps: Any) -> None:
    """diffusers fails (IndexError) on a timestep that is not in the schedule; jaxnn says so, when
    the timesteps are concrete (under jit they cannot be checked)."""
    try:
        t, table = np.ravel(np.asarray(timesteps)), np.asarray(schedule)
    except jax.errors.JAXTypeError:  # traced under jit: nothing to check on the host
        return
    absent = [v for v in t.tolist() if not np.any(table == v)]
    if absent:
        raise ValueError(f"{cls}.add_noise: `timesteps` {absent} are not in the schedule "
                         f"(state.timesteps = {np.asarray(schedule).tolist()}).")


def _checked_index(name: str, state: Any) -> Array:
    """``state.step_index``; when it is concrete (not traced), a ValueError once the run is over
    (diffusers: IndexError; under jit an index past the end would read the last entry)."""
    i = state.step_index
    try:
        value = int(i)
    except jax.errors.JAXTypeError:  # traced
        return i
    if not 0 <= value < state.num_inference_steps:
        raise ValueError(f"{name}.step: the state's `step_index` (={value}) is outside the schedule of "
                         f"{state.num_inference_steps} steps: the run is over; call set_timesteps again.")
    return i


# ------------------------------------------------------------------------------------------------ state
@struct.dataclass
class EulerSchedulerState:
    """``set_timesteps``' result for the Euler samplers: ``timesteps`` (n,) float32 (diffusers'
    ``scheduler.timesteps``), ``sigmas`` (n + 1,) float32 (the last is 0 or sigma_min),
    ``step_index`` an int32 0-d array (diffusers' hidden ``_step_index``, 0 before the first step) and
    the static ``num_inference_steps`` and ``init_noise_sigma`` (the initial latents' scale)."""

    timesteps: Array
    sigmas: Array
    step_index: Array
    num_inference_steps: int = struct.field(pytree_node=False)
    init_noise_sigma: float = struct.field(pytree_node=False, default=1.0)


class _SigmaScheduler(Scheduler):
    """What the Euler samplers share: the tables (with diffusers' ``2**-24`` final ``abar`` under
    ``rescale_betas_zero_snr``), the discrete timesteps, ``scale_model_input``, ``add_noise``."""

    order: ClassVar[int] = 1
    _zero_snr_floor: ClassVar[bool] = True

    def _discrete_timesteps(self, n: int) -> np.ndarray:
        """Euler's ``set_timesteps`` timesteps (float32, descending) for ``timestep_spacing``."""
        c = self.config
        num_train = int(c.num_train_timesteps)
        if c.timestep_spacing == "linspace":
            return np.linspace(0, num_train - 1, n, dtype=np.float32)[::-1].copy()
        if c.timestep_spacing == "leading":
            ratio = num_train // n
            ts = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.float32)
            ts += c.steps_offset
            return ts
        ratio = num_train / n
        ts = np.arange(num_train, 0, -ratio).round().copy().astype(np.float32)
        ts -= 1
        return ts

    def _init_noise_sigma(self, sigmas: np.ndarray) -> float:
        """diffusers' ``init_noise_sigma``: the largest sigma for ``linspace``/``trailing`` spacing,
        ``sqrt(sigma_max^2 + 1)`` for ``leading`` (float32 arithmetic)."""
        s = np.float32(sigmas.max())
        if self.config.timestep_spacing in ("linspace", "trailing"):
            return float(s)
        return float(np.sqrt(s * s + np.float32(1.0)))

    def _full_state(self) -> EulerSchedulerState:
        """The state diffusers' scheduler has before ``set_timesteps``: every training timestep
        (descending, float) and its sigma, used by ``add_noise(..., state=None)``."""
        n = len(self)
        sig = _train_sigmas(self.alphas_cumprod)[::-1]
        sigmas = np.concatenate([sig, np.zeros(1, np.float32)]).astype(np.float32)
        ts = np.linspace(0, n - 1, n, dtype=float)[::-1].astype(np.float32)
        return EulerSchedulerState(timesteps=jnp.asarray(ts), sigmas=jnp.asarray(sigmas),
                                   step_index=jnp.zeros((), jnp.int32), num_inference_steps=n,
                                   init_noise_sigma=self._init_noise_sigma(sigmas))

    def scale_model_input(self, state: EulerSchedulerState, sample: Array, timestep: Any = None) -> Array:
        """The model's input ``sample / sqrt(sigma^2 + 1)`` with ``sigma = state.sigmas[state.step_index]``
        (diffusers looks the step up from ``timestep`` on the first call and counts from there; here
        the state carries the index and ``timestep`` is not used)."""
        del timestep
        x = jnp.asarray(sample)
        sigma = jnp.asarray(state.sigmas)[state.step_index]
        return (x / _sqrt(sigma * sigma + jnp.float32(1.0))).astype(x.dtype)

    def add_noise(self, original_samples: Array, noise: Array, timesteps: Array,
                  state: EulerSchedulerState | None = None) -> Array:
        """``x0 + sigma noise`` with ``sigma`` the sigma of each of ``timesteps`` (B,) in ``state``
        (diffusers' ``add_noise``: each timestep is looked up in ``state.timesteps``, the second
        match when it occurs twice). ``state=None`` uses the training schedule (every timestep 0..T-1),
        as diffusers' scheduler does before ``set_timesteps``. A timestep absent from the schedule is
        a ValueError (diffusers: IndexError). diffusers' ``begin_index`` (image-to-image) is not kept:
        the lookup is always by timestep."""
        st = self._full_state() if state is None else state
        _check_timesteps_present(type(self).__name__, st.timesteps, timesteps)
        x = jnp.asarray(original_samples)
        idx = _lookup_indices(st.timesteps, jnp.asarray(timesteps, jnp.asarray(st.timesteps).dtype), "error")
        sigma = jnp.asarray(st.sigmas).astype(x.dtype)[idx]
        return x + jnp.asarray(noise) * _expand(sigma, x.ndim)

    def get_velocity(self, sample: Array, noise: Array, timesteps: Array) -> Array:
        """Not available: diffusers' Euler ``get_velocity`` indexes the training ``alphas_cumprod`` by the
        position of the timestep in the inference schedule (not by the timestep), which is not the
        v-prediction target; use ``DDPMScheduler.get_velocity`` (integer training timesteps)."""
        raise NotImplementedError(f"{type(self).__name__}.get_velocity is not implemented by jaxnn (diffusers' "
                                  "indexes alphas_cumprod by the inference-step position); use the DDPM-family "
                                  "get_velocity (e.g. DDPMScheduler) for v-prediction targets.")

    @staticmethod
    def _check_timestep_type(name: str, timestep: Any) -> None:
        # diffusers: integer indices from enumerate(timesteps) are a mistake the Euler steps reject.
        if isinstance(timestep, (int, np.integer)) and not isinstance(timestep, bool):
            raise ValueError(f"{name}.step: `timestep` (={timestep!r}) is a Python int: pass an entry of "
                             "state.timesteps (a float), not the step's position.")
        dtype = getattr(timestep, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(f"{name}.step: `timestep` has integer dtype {dtype}: pass an entry of "
                             "state.timesteps (float32), not the step's position.")

    @staticmethod
    def _noise(name: str, what: str, model_output: Array, rng: Array | None, noise: Array | None) -> Array:
        if noise is not None and rng is not None:
            raise ValueError(f"{name}.step: pass either `rng` or `noise`, not both.")
        if noise is not None:
            noise = jnp.asarray(noise)
            if noise.shape != model_output.shape:
                raise ValueError(f"{name}.step: `noise` has shape {noise.shape}, but `model_output` has shape "
                                 f"{model_output.shape}.")
            return noise
        if rng is None:
            raise ValueError(f"{name}.step: {what} adds noise: pass `rng` (a jax.random key) or `noise`.")
        return jax.random.normal(rng, model_output.shape, model_output.dtype)


class EulerDiscreteScheduler(_SigmaScheduler):
    """diffusers' ``EulerDiscreteScheduler`` (Karras et al., "Elucidating the Design Space of
    Diffusion-Based Generative Models", 2022, Algorithm 2) in JAX.

    One Euler step of the probability-flow ODE from ``sigma = sigmas[i]`` to ``sigmas[i+1]``:

    .. math::
        \\hat\\sigma = \\sigma (1 + \\gamma), \\quad \\hat x = x + \\sqrt{\\hat\\sigma^2 - \\sigma^2}\\, s_{noise}\\, z,
        \\quad x_0 = \\hat x - \\hat\\sigma\\, \\epsilon_\\theta, \\quad
        x' = \\hat x + \\frac{\\hat x - x_0}{\\hat\\sigma} (\\sigma_{i+1} - \\hat\\sigma)

    with ``gamma = min(s_churn / n, sqrt(2) - 1)`` where ``s_tmin <= sigma <= s_tmax`` and 0 elsewhere
    (``s_churn = 0``: the deterministic sampler). ``v_prediction``:
    ``x0 = -sigma / sqrt(sigma^2 + 1) * v + x / (sigma^2 + 1)``; ``sample``: ``x0 = model_output``.

    Usage::

        state = scheduler.set_timesteps(25)
        latents = noise * state.init_noise_sigma
        for i in range(25):                  # or one jitted function of (state, latents, i)
            t = state.timesteps[i]
            eps = unet(scheduler.scale_model_input(state, latents, t), t, ctx)
            latents, state = scheduler.step(state, eps, t, latents, return_dict=False)

    Options (diffusers' names and defaults): ``beta_schedule`` linear / scaled_linear /
    squaredcos_cap_v2, ``trained_betas``, ``prediction_type`` epsilon / v_prediction / sample,
    ``timestep_spacing`` linspace / leading / trailing, ``steps_offset``, ``use_karras_sigmas``,
    ``use_exponential_sigmas``, ``use_beta_sigmas`` (scipy's Beta quantile), ``sigma_min`` /
    ``sigma_max`` (ends of those spacings), ``final_sigmas_type`` zero / sigma_min,
    ``rescale_betas_zero_snr``. Not implemented (NotImplementedError): ``interpolation_type="log_linear"``,
    ``timestep_type="continuous"``.

    Differences from diffusers: sigmas are correctly rounded float32 (torch's float32 ``sqrt`` is not
    always, so diffusers' table can be an ulp off); the step index lives in the state (diffusers
    infers it from the first ``timestep`` it sees, the second match if that timestep occurs twice; set a state's
    ``step_index`` with ``state.replace(step_index=...)`` for image-to-image); churn noise comes from
    ``rng`` (``jax.random.normal``) or an explicit ``noise=`` array, not a torch generator;
    ``get_velocity`` is not provided (diffusers' indexes the training table by step position);
    ``set_timesteps`` takes the number of steps only (no custom ``timesteps=`` / ``sigmas=``).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxnn.models import EulerDiscreteScheduler
        >>> s = EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
        >>> state = s.set_timesteps(4)
        >>> state.timesteps.tolist()
        [999.0, 666.0, 333.0, 0.0]
        >>> x = jnp.ones((1, 4, 8, 8)) * state.init_noise_sigma
        >>> out = s.step(state, jnp.zeros_like(x), state.timesteps[0], x)
        >>> int(out.state.step_index)
        1
    """

    _defaults: ClassVar[dict[str, Any]] = dict(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        trained_betas=None, prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False,
        use_exponential_sigmas=False, use_beta_sigmas=False, sigma_min=None, sigma_max=None,
        timestep_spacing="linspace", timestep_type="discrete", steps_offset=0, rescale_betas_zero_snr=False,
        final_sigmas_type="zero")
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = dict(
        beta_schedule=("linear", "scaled_linear", "squaredcos_cap_v2"),
        prediction_type=("epsilon", "v_prediction", "sample", "original_sample"),
        interpolation_type=("linear",), timestep_type=("discrete",),
        timestep_spacing=("linspace", "leading", "trailing"), final_sigmas_type=("zero", "sigma_min"))

    def __init__(self, **config: Any):
        super().__init__(**config)
        _check_one_spacing(type(self).__name__, self.config)

    def set_timesteps(self, num_inference_steps: int, shape: Any = None, dtype: Any = None) -> EulerSchedulerState:
        """The state for ``num_inference_steps`` steps: diffusers' ``set_timesteps`` (timesteps by
        ``timestep_spacing``; sigmas interpolated linearly in the training sigma table at those
        timesteps, or spaced by Karras / exponential / beta with timesteps from ``_sigma_to_t``; the
        final sigma appended). ``shape`` and ``dtype`` (what multistep schedulers need for their
        history) are accepted and not used, so that pipelines call every scheduler alike."""
        del shape, dtype
        n = self._check_steps(num_inference_steps)
        c = self.config
        timesteps = self._discrete_timesteps(n)
        train = _train_sigmas(self.alphas_cumprod)
        log_sigmas = np.log(train)
        sigmas = np.interp(timesteps, np.arange(0, len(train)), train)
        spacing = _spacing_option(c)
        if spacing is not None:
            sigmas = _spaced_sigmas(spacing, sigmas, n, c.sigma_min, c.sigma_max)
            timesteps = np.array([_sigma_to_t(s, log_sigmas) for s in sigmas])
        if c.final_sigmas_type == "sigma_min":
            a0 = self.alphas_cumprod[0]
            last = np.sqrt((np.float32(1.0) - a0) / a0)
        else:
            last = 0
        sigmas = np.concatenate([sigmas, [last]]).astype(np.float32)
        return EulerSchedulerState(timesteps=jnp.asarray(timesteps.astype(np.float32)), sigmas=jnp.asarray(sigmas),
                                   step_index=jnp.zeros((), jnp.int32), num_inference_steps=n,
                                   init_noise_sigma=self._init_noise_sigma(sigmas))

    def step(self, state: EulerSchedulerState, model_output: Array, timestep: Any, sample: Array, *,
             s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0,
             rng: Array | None = None, noise: Array | None = None, return_dict: bool = True):
        """One Euler step at ``state.step_index`` (formula in the class docstring); returns
        ``SchedulerOutput(prev_sample, state, pred_original_sample)`` with the step index advanced
        (``(prev_sample, state)`` with ``return_dict=False``).

        Args:
            state: from ``set_timesteps`` or the previous step (traced under jit).
            model_output: the model's prediction, the sample's shape (e.g. (B, C, H, W)).
            timestep: ``state.timesteps[i]`` (not used: the index is in the state; an integer is a
                ValueError, as in diffusers).
            sample: the current latents; computed in float32, returned in ``model_output``'s dtype.
            s_churn, s_tmin, s_tmax, s_noise: Karras' stochastic churn (Python floats). ``s_churn > 0``
                adds ``noise`` (or ``jax.random.normal(rng)``) where ``s_tmin <= sigma <= s_tmax``.
        """
        name = type(self).__name__
        self._check_timestep_type(name, timestep)
        for arg, v in (("s_churn", s_churn), ("s_tmin", s_tmin), ("s_tmax", s_tmax), ("s_noise", s_noise)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name}.step: `{arg}` must be a Python number, got {v!r}.")
        model_output = jnp.asarray(model_output)
        x = jnp.asarray(sample).astype(jnp.float32)
        sigmas = jnp.asarray(state.sigmas)
        i = _checked_index(name, state)
        sigma = sigmas[i]
        if s_churn > 0:
            gamma = min(s_churn / (sigmas.shape[0] - 1), 2 ** 0.5 - 1)
            in_range = (sigma >= jnp.float32(s_tmin)) & (sigma <= jnp.float32(s_tmax))
            # torch multiplies the float32 sigma by the Python float (gamma + 1) rounded to float32.
            sigma_hat = sigma * jnp.where(in_range, np.float32(gamma + 1), np.float32(1.0))
            z = self._noise(name, "s_churn > 0", model_output, rng, noise)
            eps = z * jnp.float32(s_noise)
            churned = x + eps * jnp.sqrt(sigma_hat * sigma_hat - sigma * sigma)
            x = jnp.where(in_range & (gamma > 0), churned, x)
        else:
            sigma_hat = sigma
        pt = self.config.prediction_type
        if pt in ("sample", "original_sample"):
            pred_x0 = model_output
        elif pt == "epsilon":
            pred_x0 = x - sigma_hat * model_output
        else:  # v_prediction
            s2p1 = sigma * sigma + jnp.float32(1.0)
            pred_x0 = model_output * (-sigma / _sqrt(s2p1)) + (x / s2p1)
        derivative = (x - pred_x0) / sigma_hat
        dt = sigmas[i + 1] - sigma_hat
        prev_sample = (x + derivative * dt).astype(model_output.dtype)
        new_state = dataclasses.replace(state, step_index=i + 1)
        if not return_dict:
            return prev_sample, new_state
        return SchedulerOutput(prev_sample=prev_sample, state=new_state, pred_original_sample=pred_x0)


class EulerAncestralDiscreteScheduler(_SigmaScheduler):
    """diffusers' ``EulerAncestralDiscreteScheduler`` (the ``sample_euler_ancestral`` sampler of
    k-diffusion, Crowson 2022, after Karras et al. 2022) in JAX: an Euler step to ``sigma_down``
    followed by fresh noise of scale ``sigma_up``:

    .. math::
        \\sigma_{up} = \\sqrt{\\sigma_{i+1}^2 (\\sigma_i^2 - \\sigma_{i+1}^2) / \\sigma_i^2}, \\quad
        \\sigma_{down} = \\sqrt{\\sigma_{i+1}^2 - \\sigma_{up}^2}, \\quad
        x' = x + \\frac{x - x_0}{\\sigma_i} (\\sigma_{down} - \\sigma_i) + \\sigma_{up} z

    with ``x0 = x - sigma_i eps`` (``epsilon``) or ``-sigma/sqrt(sigma^2+1) v + x/(sigma^2+1)``
    (``v_prediction``). Every step draws ``z`` (the last one with ``sigma_up = 0``): pass ``rng`` (the
    pipeline passes ``jax.random.fold_in(key, i)``) or an explicit ``noise`` array of the sample's shape.

    Options: ``beta_schedule`` linear / scaled_linear / squaredcos_cap_v2, ``trained_betas``,
    ``prediction_type`` epsilon / v_prediction (``sample``: NotImplementedError, as diffusers' step),
    ``timestep_spacing`` linspace / leading / trailing, ``steps_offset``, ``rescale_betas_zero_snr``.

    Differences from diffusers: sigmas correctly rounded and the step index in the state (see
    ``EulerDiscreteScheduler``); the
    noise comes from ``rng`` (``jax.random.normal``), not torch's generator, so a run equals diffusers'
    only with the same noise passed as ``noise=``; ``prediction_type="sample"`` is refused at
    construction rather than at the first step; no ``get_velocity``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxnn.models import EulerAncestralDiscreteScheduler
        >>> s = EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
        >>> state = s.set_timesteps(10)
        >>> x = jnp.zeros((1, 4, 8, 8))
        >>> out = s.step(state, x, state.timesteps[0], x, rng=jax.random.key(0))
        >>> out.prev_sample.shape
        (1, 4, 8, 8)
    """

    _defaults: ClassVar[dict[str, Any]] = dict(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        trained_betas=None, prediction_type="epsilon", timestep_spacing="linspace", steps_offset=0,
        rescale_betas_zero_snr=False)
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = dict(
        beta_schedule=("linear", "scaled_linear", "squaredcos_cap_v2"),
        prediction_type=("epsilon", "v_prediction"), timestep_spacing=("linspace", "leading", "trailing"))

    def set_timesteps(self, num_inference_steps: int, shape: Any = None, dtype: Any = None) -> EulerSchedulerState:
        """The state for ``num_inference_steps`` steps (diffusers' ``set_timesteps``: timesteps by
        ``timestep_spacing``, sigmas interpolated linearly in the training table, then 0).
        ``shape`` and ``dtype`` are accepted and not used (see ``EulerDiscreteScheduler``)."""
        del shape, dtype
        n = self._check_steps(num_inference_steps)
        timesteps = self._discrete_timesteps(n)
        train = _train_sigmas(self.alphas_cumprod)
        sigmas = np.interp(timesteps, np.arange(0, len(train)), train)
        sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
        return EulerSchedulerState(timesteps=jnp.asarray(timesteps), sigmas=jnp.asarray(sigmas),
                                   step_index=jnp.zeros((), jnp.int32), num_inference_steps=n,
                                   init_noise_sigma=self._init_noise_sigma(sigmas))

    def step(self, state: EulerSchedulerState, model_output: Array, timestep: Any, sample: Array, *,
             rng: Array | None = None, noise: Array | None = None, return_dict: bool = True):
        """One ancestral step at ``state.step_index`` (formula in the class docstring); ``rng`` or
        ``noise`` (the sample's shape) is required. Returns ``SchedulerOutput(prev_sample, state,
        pred_original_sample)`` (``(prev_sample, state)`` with ``return_dict=False``)."""
        name = type(self).__name__
        self._check_timestep_type(name, timestep)
        model_output = jnp.asarray(model_output)
        z = self._noise(name, "the ancestral sampler", model_output, rng, noise)
        x = jnp.asarray(sample).astype(jnp.float32)
        sigmas = jnp.asarray(state.sigmas)
        i = _checked_index(name, state)
        sigma = sigmas[i]
        if self.config.prediction_type == "epsilon":
            pred_x0 = x - sigma * model_output
        else:  # v_prediction
            s2p1 = sigma * sigma + jnp.float32(1.0)
            pred_x0 = model_output * (-sigma / _sqrt(s2p1)) + (x / s2p1)
        s_from, s_to = sigma, sigmas[i + 1]
        sigma_up = jnp.sqrt(s_to * s_to * (s_from * s_from - s_to * s_to) / (s_from * s_from))
        sigma_down = jnp.sqrt(s_to * s_to - sigma_up * sigma_up)
        derivative = (x - pred_x0) / sigma
        prev_sample = x + derivative * (sigma_down - sigma)
        prev_sample = (prev_sample + z * sigma_up).astype(model_output.dtype)
        new_state = dataclasses.replace(state, step_index=i + 1)
        if not return_dict:
            return prev_sample, new_state
        return SchedulerOutput(prev_sample=prev_sample, state=new_state, pred_original_sample=pred_x0)
