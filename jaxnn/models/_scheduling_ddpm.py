"""diffusers' ``DDPMScheduler`` (Ho et al., "Denoising Diffusion Probabilistic Models", 2020) in JAX:
the training noise schedule (``add_noise``, ``get_velocity``) and ancestral sampling with a
jit-safe ``step``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ._scheduling import Scheduler, SchedulerOutput, _leading_trailing_linspace, _predict

Array = jax.Array

# None (what DPM-Solver configs saved by diffusers hold) is fixed_small in diffusers' DDPM step.
_VARIANCE_TYPES = ("fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range",
                   None)


@struct.dataclass
class DDPMSchedulerState:
    """``DDPMScheduler.set_timesteps``' result: the descending timesteps (int64 where x64 is on, else
    int32; diffusers' ``scheduler.timesteps``) and their number."""

    timesteps: Array
    num_inference_steps: int = struct.field(pytree_node=False)
    init_noise_sigma: float = struct.field(pytree_node=False, default=1.0)


class DDPMScheduler(Scheduler):
    r"""diffusers' ``DDPMScheduler`` in JAX: the noise schedule of training and ancestral sampling.

    Training uses only the tables: ``add_noise(x0, noise, t)`` is
    :math:`\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon` and ``get_velocity(x0, noise, t)``
    the v-prediction target :math:`\sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0`
    (``t`` (B,) integer timesteps, samples (B, ...) of any float dtype, the table cast to it as
    diffusers does).

    Sampling: ``state = scheduler.set_timesteps(n)`` (or ``set_timesteps(timesteps=[...])``, custom
    descending timesteps); for each ``t`` in ``state.timesteps``, ``out = scheduler.step(state,
    model_output, t, sample, rng=key)``. With :math:`t'` the next timestep of ``state.timesteps``
    (:math:`\bar\alpha_{t'} = 1` after the last), :math:`\beta = 1 - \bar\alpha_t/\bar\alpha_{t'}` and
    :math:`\hat x_0` the predicted original sample (``prediction_type``; clipped to
    ``±clip_sample_range`` if ``clip_sample``), the step is formula (7) of the paper

    .. math::
        x_{t'} = \frac{\sqrt{\bar\alpha_{t'}}\,\beta}{1-\bar\alpha_t}\hat x_0
               + \frac{\sqrt{1-\beta}\,(1-\bar\alpha_{t'})}{1-\bar\alpha_t}x_t + \sigma_t z,
        \qquad z \sim N(0, I),

    with no noise at ``t == 0`` and :math:`\sigma_t` by ``variance_type``: ``fixed_small`` (and ``None``, as diffusers)
    :math:`\sqrt{\tilde\beta}`, :math:`\tilde\beta = \max((1-\bar\alpha_{t'})/(1-\bar\alpha_t)\,\beta,
    10^{-20})`; ``fixed_small_log`` the same through ``exp(0.5 log)``; ``fixed_large`` and
    ``fixed_large_log`` :math:`\sqrt\beta`; ``learned`` :math:`\sqrt v` and ``learned_range``
    :math:`\exp(\tfrac12(f\log\beta + (1-f)\log\tilde\beta))`, :math:`f = (v+1)/2`, where the model
    output has twice the sample's channels (axis 1) and :math:`v` is its second half.

    ``z`` comes from ``rng`` (``jax.random.normal``; torch's generator cannot be reproduced) or from
    ``variance_noise`` (an array shaped like the sample: diffusers' numbers exactly when it holds
    the same noise as diffusers' generator draws). ``step`` is jit-safe with ``state`` and ``t``
    traced. float32 arithmetic; ``prev_sample`` has the model output's dtype.

    Errors: NotImplementedError for ``thresholding=True`` (dynamic thresholding, unsuited to latent
    diffusion) and ``beta_schedule`` ``"sigmoid"``/``"laplace"``; ValueError for bad
    ``num_inference_steps``/``timesteps``, a missing ``rng``, a ``learned`` variance with a model
    output that does not have twice the sample's channels.

    Differences from diffusers: ``fixed_large_log`` gives the standard deviation
    :math:`\sqrt\beta` (GLIDE's "max log" variance, as ``fixed_large``); diffusers 0.42 takes the
    square root of :math:`\log\beta < 0`, a NaN sample at every noisy step. ``step`` returns the
    state (unchanged) in the output; ``return_dict=False`` gives ``(prev_sample, state)``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxnn.models import DDPMScheduler
        >>> s = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
        >>> x0, noise = jnp.ones((2, 4, 8, 8)), jnp.zeros((2, 4, 8, 8))
        >>> s.add_noise(x0, noise, jnp.array([0, 999]))[:, 0, 0, 0].round(4)  # sqrt(alphas_cumprod[t])
        Array([0.9996, 0.0683], dtype=float32)
        >>> state = s.set_timesteps(4)
        >>> state.timesteps.tolist()
        [750, 500, 250, 0]
        >>> out = s.step(state, noise, state.timesteps[0], x0, rng=jax.random.key(0))
        >>> out.prev_sample.shape, out.pred_original_sample.shape
        ((2, 4, 8, 8), (2, 4, 8, 8))
    """

    _defaults: ClassVar[dict[str, Any]] = dict(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        trained_betas=None, variance_type="fixed_small", clip_sample=True, prediction_type="epsilon",
        thresholding=False, dynamic_thresholding_ratio=0.995, clip_sample_range=1.0, sample_max_value=1.0,
        timestep_spacing="leading", steps_offset=0, rescale_betas_zero_snr=False)
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = dict(
        beta_schedule=("linear", "scaled_linear", "squaredcos_cap_v2"), variance_type=_VARIANCE_TYPES,
        prediction_type=("epsilon", "sample", "v_prediction"), thresholding=(False,),
        timestep_spacing=("leading", "trailing", "linspace"))

    def set_timesteps(self, num_inference_steps: int | None = None, shape: Any = None, dtype: Any = None, *,
                      timesteps: Sequence[int] | None = None) -> DDPMSchedulerState:
        """The state for ``num_inference_steps`` steps spaced by ``timestep_spacing`` (diffusers'
        ``set_timesteps``; its ``timesteps`` attribute is ``state.timesteps``), or for the custom
        strictly descending integer ``timesteps`` (first < ``num_train_timesteps``, last >= 0).
        Exactly one of the two must be given. ``shape`` and ``dtype`` (what multistep schedulers
        need for their history) are accepted and ignored, so pipelines call every scheduler alike."""
        del shape, dtype
        name = type(self).__name__
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError(f"{name}.set_timesteps: pass exactly one of `num_inference_steps` and `timesteps` "
                             f"(got num_inference_steps={num_inference_steps!r}, timesteps={timesteps!r}).")
        if timesteps is not None:
            ts = np.asarray(timesteps)
            if ts.ndim != 1 or ts.size == 0 or not np.issubdtype(ts.dtype, np.integer):
                raise ValueError(f"{name}.set_timesteps: `timesteps` must be a non-empty 1-D sequence of ints, "
                                 f"got {timesteps!r}.")
            if np.any(np.diff(ts) >= 0):
                raise ValueError(f"{name}.set_timesteps: `timesteps` must be strictly descending, got {timesteps!r}.")
            if ts[0] >= len(self) or ts[-1] < 0:
                raise ValueError(f"{name}.set_timesteps: `timesteps` must lie in [0, num_train_timesteps="
                                 f"{len(self)}), got {timesteps!r}.")
            return DDPMSchedulerState(timesteps=jnp.asarray(ts.astype(np.int64)), num_inference_steps=int(ts.size))
        n = self._check_steps(num_inference_steps)
        c = self.config
        ts = _leading_trailing_linspace(c.timestep_spacing, len(self), n, c.steps_offset)
        return DDPMSchedulerState(timesteps=jnp.asarray(ts), num_inference_steps=n)

    def scale_model_input(self, state: Any, sample: Array, timestep: Any = None) -> Array:
        """DDPM does not scale the model input (the identity, as diffusers)."""
        del state, timestep
        return sample

    def previous_timestep(self, state: DDPMSchedulerState, timestep: Any) -> Array:
        """The timestep after ``timestep`` in ``state.timesteps`` (-1 after the last; jit-safe)."""
        ts = state.timesteps
        index = jnp.argmax(ts == jnp.asarray(timestep))
        return jnp.where(index == ts.shape[0] - 1, -1, ts[jnp.minimum(index + 1, ts.shape[0] - 1)])

    def step(self, state: DDPMSchedulerState, model_output: Array, timestep: Any, sample: Array, *,
             rng: Array | None = None, variance_noise: Array | None = None, return_dict: bool = True):
        """One ancestral step from ``timestep`` to the next timestep of ``state.timesteps`` (see the
        class docstring; diffusers' ``DDPMScheduler.step``). ``model_output`` (B, C, ...) or, for
        ``learned``/``learned_range`` variances, (B, 2C, ...); ``sample`` (B, C, ...). Noise from
        ``rng`` (a jax.random key) or ``variance_noise`` (shaped like ``sample``); one of them is
        required (diffusers draws noise even when it multiplies it by zero at ``t == 0``)."""
        name = type(self).__name__
        c = self.config
        model_output, sample = jnp.asarray(model_output), jnp.asarray(sample)
        learned = c.variance_type in ("learned", "learned_range")
        if learned:
            if model_output.ndim < 2 or model_output.shape[1] != 2 * sample.shape[1]:
                raise ValueError(f"{name}.step: variance_type={c.variance_type!r} needs a `model_output` with twice "
                                 f"the sample's channels (axis 1), got shapes {model_output.shape} and {sample.shape}.")
            model_output, predicted_variance = jnp.split(model_output, 2, axis=1)
        else:
            predicted_variance = None
        if model_output.shape != sample.shape:
            raise ValueError(f"{name}.step: `model_output` has shape {model_output.shape} but `sample` has shape "
                             f"{sample.shape}.")
        try:
            concrete = np.asarray(timestep)
        except jax.errors.TracerArrayConversionError:
            concrete = None
        if concrete is not None and not np.isin(concrete, np.asarray(state.timesteps)).all():
            raise ValueError(f"{name}.step: `timestep` (={concrete.tolist()!r}) is not one of the state's timesteps "
                             f"{np.asarray(state.timesteps).tolist()!r}.")
        if variance_noise is not None and rng is not None:
            raise ValueError(f"{name}.step: pass either `rng` or `variance_noise`, not both.")
        if variance_noise is None:
            if rng is None:
                raise ValueError(f"{name}.step: DDPM sampling adds noise: pass `rng` (a jax.random key) or "
                                 "`variance_noise`.")
            variance_noise = jax.random.normal(rng, model_output.shape, model_output.dtype)
        variance_noise = jnp.asarray(variance_noise)
        if variance_noise.shape != model_output.shape:
            raise ValueError(f"{name}.step: `variance_noise` must have the sample's shape {model_output.shape}, "
                             f"got {variance_noise.shape}.")

        t = jnp.asarray(timestep)
        prev_t = self.previous_timestep(state, t)
        abar = jnp.asarray(self.alphas_cumprod)
        one = jnp.float32(1)
        abar_t = abar[t]
        abar_prev = jnp.where(prev_t >= 0, abar[jnp.maximum(prev_t, 0)], one)
        beta_prod_t = one - abar_t
        beta_prod_prev = one - abar_prev
        alpha_t = abar_t / abar_prev
        beta_t = one - alpha_t

        pred_x0 = _predict(c.prediction_type, model_output, sample, abar_t)[0]
        if c.clip_sample:
            pred_x0 = jnp.clip(pred_x0, -c.clip_sample_range, c.clip_sample_range)
        x0_coeff = (jnp.sqrt(abar_prev) * beta_t) / beta_prod_t
        xt_coeff = jnp.sqrt(alpha_t) * beta_prod_prev / beta_prod_t
        prev_sample = x0_coeff * pred_x0 + xt_coeff * sample

        small = jnp.maximum(beta_prod_prev / beta_prod_t * beta_t, jnp.float32(1e-20))
        vt = c.variance_type
        if vt in ("fixed_small", None):
            std = jnp.sqrt(small)
        elif vt == "fixed_small_log":
            std = jnp.exp(0.5 * jnp.log(small))
        elif vt in ("fixed_large", "fixed_large_log"):
            std = jnp.sqrt(beta_t)
        elif vt == "learned":
            std = jnp.sqrt(jnp.asarray(predicted_variance))
        else:  # learned_range
            frac = (jnp.asarray(predicted_variance) + 1) / 2
            std = jnp.exp(0.5 * (frac * jnp.log(beta_t) + (1 - frac) * jnp.log(small)))
        prev_sample = prev_sample + jnp.where(t > 0, std * variance_noise, 0)
        prev_sample = prev_sample.astype(model_output.dtype)
        if not return_dict:
            return prev_sample, state
        return SchedulerOutput(prev_sample=prev_sample, state=state, pred_original_sample=pred_x0)
