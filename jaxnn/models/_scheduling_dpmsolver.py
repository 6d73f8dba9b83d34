"""diffusers' ``DPMSolverMultistepScheduler`` (DPM-Solver and DPM-Solver++, the default sampler of most
Stable Diffusion 1.5 / SDXL fine-tunes) as a jit-safe functional scheduler.

The multistep solver keeps the last ``solver_order`` converted model outputs; diffusers holds them in
a Python list and a counter on the scheduler object, jaxnn in the state (``model_outputs``, an array
of shape ``(solver_order, *sample.shape)``, and ``lower_order_nums``). The order of each step is
chosen from the traced step index with ``jnp.where`` and the update runs under ``lax.switch``, so a
whole run is one compiled step function.

All scalar coefficients of an update depend only on the sigma table and the step index: they are
computed once, in ``set_timesteps``, on the host, following diffusers' float32 operation sequence with
correctly rounded ``log``/``exp``/``sqrt`` (torch's float32 ones are not always: ~5% of ``log`` and
~16% of ``sqrt`` results are an ulp off, measured on CPU, so a coefficient may differ from diffusers'
by an ulp); ``step`` gathers one row of that table. The tensor arithmetic is diffusers', in float32.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ._scheduling import Scheduler, SchedulerOutput, _expand
from ._scheduling_euler import (
    _check_one_spacing,
    _checked_index,
    _lookup_indices,
    _sigma_to_t,
    _spaced_sigmas,
    _spacing_option,
    _train_sigmas,
)

Array = jax.Array

# Columns of the per-step coefficient table (see ``_coefficients``).
_CS, _C0, _CN, _C1_2, _C1_3, _C2, _R0, _R1, _Q, _P, _ALPHA_S0, _SIGMA_S0 = range(12)
_NCOEF = 12


def _log32(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x.astype(np.float64)).astype(np.float32)


def _exp32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(x.astype(np.float64)).astype(np.float32)


def _alpha_sigma(sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """diffusers' ``_sigma_to_alpha_sigma_t``: ``alpha = 1 / sqrt(sigma^2 + 1)``, ``sigma_t = sigma alpha``
    (float32)."""
    one = np.float32(1.0)
    alpha = (one / np.sqrt(sigmas * sigmas + one)).astype(np.float32)
    return alpha, (sigmas * alpha).astype(np.float32)


def _coefficients(sigmas: np.ndarray, algorithm: str, solver_type: str) -> np.ndarray:
    """The (n, 12) float32 table of per-step scalars: with ``h = lambda_{i+1} - lambda_i``,
    ``lambda = log(alpha) - log(sigma_t)``, ``r0 = (lambda_i - lambda_{i-1}) / h``,
    ``r1 = (lambda_{i-1} - lambda_{i-2}) / h``, the update is

        x' = cs x + c0 D0 + c1 D1 + c2 D2 + cn z

    with ``D0 = m0``; order 2: ``D1 = (m0 - m1) / r0``; order 3: ``D1_0 = (m0 - m1) / r0``,
    ``D1_1 = (m1 - m2) / r1``, ``D1 = D1_0 + r0/(r0 + r1) (D1_0 - D1_1)``,
    ``D2 = (D1_0 - D1_1) / (r0 + r1)`` (Lu et al. 2022, DPM-Solver++ Algorithms 1-2 and diffusers'
    multistep updates). Entries that a step cannot use (r0 at step 0) are whatever the arithmetic
    gives; the step never selects them."""
    one, half, two = np.float32(1.0), np.float32(0.5), np.float32(2.0)
    alpha, sig = _alpha_sigma(sigmas)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lam = (_log32(alpha) - _log32(sig)).astype(np.float32)
        n = sigmas.shape[0] - 1
        i = np.arange(n)
        a_t, s_t, a_0, s_0 = alpha[i + 1], sig[i + 1], alpha[i], sig[i]
        l_t, l_0, l_1, l_2 = lam[i + 1], lam[i], lam[i - 1], lam[i - 2]  # i - 1 < 0 wraps, unused
        h = l_t - l_0
        r0 = (l_0 - l_1) / h
        r1 = (l_1 - l_2) / h
        out = np.zeros((n, _NCOEF), np.float32)
        if algorithm == "dpmsolver++":
            e = _exp32(-h) - one
            b = a_t * e
            out[:, _CS] = s_t / s_0
            out[:, _C0] = -b
            heun = a_t * (e / h + one)
            out[:, _C1_2] = heun if solver_type == "heun" else -(half * b)
            out[:, _C1_3] = heun
            out[:, _C2] = -(a_t * ((e + h) / (h * h) - half))
        elif algorithm == "dpmsolver":
            e = _exp32(h) - one
            b = s_t * e
            out[:, _CS] = a_t / a_0
            out[:, _C0] = -b
            heun = -(s_t * (e / h - one))
            out[:, _C1_2] = heun if solver_type == "heun" else -(half * b)
            out[:, _C1_3] = heun
            out[:, _C2] = -(s_t * ((e - h) / (h * h) - half))
        else:  # sde-dpmsolver++
            f = one - _exp32(-two * h)
            b = a_t * f
            out[:, _CS] = (s_t / s_0) * _exp32(-h)
            out[:, _C0] = b
            heun = a_t * (f / (-two * h) + one)
            out[:, _C1_2] = heun if solver_type == "heun" else half * b
            out[:, _C1_3] = heun
            out[:, _C2] = a_t * ((f - two * h) / ((two * h) * (two * h)) - half)
            out[:, _CN] = s_t * np.sqrt(f)
        out[:, _R0] = one / r0
        out[:, _R1] = one / r1
        out[:, _Q] = r0 / (r0 + r1)
        out[:, _P] = one / (r0 + r1)
        out[:, _ALPHA_S0] = a_0
        out[:, _SIGMA_S0] = s_0
    return out


@struct.dataclass
class DPMSolverMultistepSchedulerState:
    """``DPMSolverMultistepScheduler.set_timesteps``' result.

    Attributes:
        timesteps: (n,) int32/int64 (JAX's default int), diffusers' ``scheduler.timesteps``.
        sigmas: (n + 1,) float32, diffusers' ``scheduler.sigmas``.
        step_index: int32 0-d, diffusers' ``_step_index`` (0 before the first step).
        model_outputs: (solver_order, *sample.shape) history of converted model outputs, the newest
            last (diffusers' ``model_outputs`` list; zeros where diffusers has None), or None until the
            first step when ``set_timesteps`` was not given the sample ``shape``.
        lower_order_nums: int32 0-d, how many steps have been taken, capped at ``solver_order``.
        coefficients: (n, 12) float32 per-step scalars of the update (see ``_coefficients``).
        num_inference_steps, init_noise_sigma: static (init_noise_sigma is 1.0, as diffusers).
    """

    timesteps: Array
    sigmas: Array
    step_index: Array
    model_outputs: Array | None
    lower_order_nums: Array
    coefficients: Array
    num_inference_steps: int = struct.field(pytree_node=False)
    init_noise_sigma: float = struct.field(pytree_node=False, default=1.0)


class DPMSolverMultistepScheduler(Scheduler):
    """diffusers' ``DPMSolverMultistepScheduler`` in JAX: DPM-Solver (Lu et al., "DPM-Solver: A Fast
    ODE Solver for Diffusion Probabilistic Model Sampling in Around 10 Steps", 2022) and DPM-Solver++
    (Lu et al., "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models", 2022),
    multistep, orders 1-3.

    With ``alpha_t = 1/sqrt(sigma^2 + 1)``, ``sigma_t = sigma alpha_t``, ``lambda = log(alpha_t / sigma_t)``
    and ``h = lambda_{i+1} - lambda_i``, the first-order DPM-Solver++ step is

    .. math::
        x_{i+1} = \\frac{\\sigma_{t,i+1}}{\\sigma_{t,i}} x_i - \\alpha_{t,i+1} (e^{-h} - 1)\\, \\hat x_0

    (``dpmsolver``: the same in the noise prediction, ``alpha`` and ``sigma_t`` swapped and ``e^{h}``);
    orders 2 and 3 add finite differences of the last model outputs (``solver_type`` midpoint / heun
    for order 2). ``sde-dpmsolver++`` adds ``sigma_t sqrt(1 - e^{-2h}) z``. The first steps use lower
    orders (one per output in the history); with ``lower_order_final`` and fewer than 15 steps the
    last two steps use orders 1 and 2, ``euler_at_final`` or ``final_sigmas_type="zero"`` make the last
    step first order (diffusers' rule).

    ``state = scheduler.set_timesteps(n, shape=latents.shape)`` (the history's shape; without it the
    history is created at the first step, which changes the state's structure once and so costs a
    jitted caller a second compilation), then ``prev, state = scheduler.step(state, model_output, t,
    latents, return_dict=False)``. ``sde-dpmsolver++`` needs ``rng`` or ``variance_noise``.

    Options (diffusers' names and defaults): ``beta_schedule`` linear / scaled_linear /
    squaredcos_cap_v2, ``trained_betas``, ``solver_order`` 1 / 2 / 3, ``prediction_type`` epsilon /
    v_prediction / sample, ``algorithm_type`` dpmsolver++ / dpmsolver / sde-dpmsolver++ (``deis`` is
    read as dpmsolver++, as diffusers does), ``solver_type`` midpoint / heun (UniPC's ``bh1``/``bh2``
    and DEIS' ``logrho`` read as midpoint, as diffusers), ``lower_order_final``, ``euler_at_final``,
    ``use_karras_sigmas``, ``use_exponential_sigmas``, ``use_beta_sigmas``, ``use_lu_lambdas``,
    ``final_sigmas_type`` zero / sigma_min, ``lambda_min_clipped``, ``timestep_spacing`` linspace /
    leading / trailing, ``steps_offset``, ``rescale_betas_zero_snr``. NotImplementedError:
    ``thresholding=True``, ``variance_type`` learned / learned_range, ``algorithm_type="sde-dpmsolver"``,
    ``prediction_type="flow_prediction"``, ``use_flow_sigmas``, ``use_dynamic_shifting``.

    Differences from diffusers: sigmas and coefficients are correctly rounded float32 (see the module
    docstring: diffusers' can be an ulp off); the step index and history are in the state (diffusers infers the
    index from the first ``timestep`` it is given; ``timestep`` is not used here); the history is kept
    in ``dtype`` (``set_timesteps``' argument, float32 by default), not in the model output's dtype;
    ``add_noise`` needs the state; SDE noise comes from ``rng`` (``jax.random.normal``) or an explicit
    ``variance_noise``; ``lambda_min_clipped`` is compared with correctly rounded float32
    ``lambda`` values (torch's vectorised ``log`` may differ by an ulp); ``set_timesteps`` takes the
    number of steps only (no custom ``timesteps=``); ``step`` gives ``pred_original_sample=None``, as
    diffusers' does not return one.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxnn.models import DPMSolverMultistepScheduler
        >>> s = DPMSolverMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
        >>> state = s.set_timesteps(5, shape=(1, 4, 8, 8))
        >>> state.timesteps.tolist()
        [999, 799, 599, 400, 200]
        >>> x = jnp.ones((1, 4, 8, 8))
        >>> prev, state = s.step(state, jnp.zeros_like(x), state.timesteps[0], x, return_dict=False)
        >>> int(state.step_index), int(state.lower_order_nums), state.model_outputs.shape
        (1, 1, (2, 1, 4, 8, 8))
    """

    _zero_snr_floor: ClassVar[bool] = True
    _defaults: ClassVar[dict[str, Any]] = dict(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
        trained_betas=None, solver_order=2, prediction_type="epsilon", thresholding=False,
        dynamic_thresholding_ratio=0.995, sample_max_value=1.0, algorithm_type="dpmsolver++",
        solver_type="midpoint", lower_order_final=True, euler_at_final=False, use_karras_sigmas=False,
        use_exponential_sigmas=False, use_beta_sigmas=False, use_lu_lambdas=False, use_flow_sigmas=False,
        flow_shift=1.0, final_sigmas_type="zero", lambda_min_clipped=-float("inf"), variance_type=None,
        timestep_spacing="linspace", steps_offset=0, rescale_betas_zero_snr=False, use_dynamic_shifting=False,
        time_shift_type="exponential")
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = dict(
        beta_schedule=("linear", "scaled_linear", "squaredcos_cap_v2"), solver_order=(1, 2, 3),
        prediction_type=("epsilon", "sample", "v_prediction"), thresholding=(False,),
        algorithm_type=("dpmsolver++", "dpmsolver", "sde-dpmsolver++"), solver_type=("midpoint", "heun"),
        use_flow_sigmas=(False,), final_sigmas_type=("zero", "sigma_min"), variance_type=(None,),
        timestep_spacing=("linspace", "leading", "trailing"), use_dynamic_shifting=(False,))

    def __init__(self, **config: Any):
        # diffusers rewrites these when a DEIS / UniPC configuration builds a DPM-Solver.
        if config.get("algorithm_type") == "deis":
            config["algorithm_type"] = "dpmsolver++"
        if config.get("solver_type") in ("logrho", "bh1", "bh2"):
            config["solver_type"] = "midpoint"
        super().__init__(**config)
        c = self.config
        _check_one_spacing(type(self).__name__, c)
        if c.algorithm_type == "dpmsolver" and c.final_sigmas_type == "zero":
            raise ValueError("DPMSolverMultistepScheduler: final_sigmas_type='zero' is not supported with "
                             "algorithm_type='dpmsolver' (a zero final sigma is infinite lambda); use "
                             "final_sigmas_type='sigma_min' (as diffusers requires).")

    def _timesteps(self, n: int) -> np.ndarray:
        c = self.config
        num_train = int(c.num_train_timesteps)
        abar = self.alphas_cumprod
        # lambda_t = log(sqrt(abar)) - log(sqrt(1 - abar)) (float32), cut at lambda_min_clipped.
        lambda_t = (_log32(np.sqrt(abar)) - _log32(np.sqrt(np.float32(1.0) - abar))).astype(np.float32)
        clipped_idx = int(np.searchsorted(lambda_t[::-1], np.float32(c.lambda_min_clipped), side="left"))
        last = num_train - clipped_idx
        if c.timestep_spacing == "linspace":
            return np.linspace(0, last - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)
        if c.timestep_spacing == "leading":
            ratio = last // (n + 1)
            ts = (np.arange(0, n + 1) * ratio).round()[::-1][:-1].copy().astype(np.int64)
            return ts + c.steps_offset
        ratio = num_train / n
        return np.arange(last, 0, -ratio).round().copy().astype(np.int64) - 1

    def set_timesteps(self, num_inference_steps: int, shape: tuple[int, ...] | None = None,
                      dtype: Any = jnp.float32) -> DPMSolverMultistepSchedulerState:
        """The state for ``num_inference_steps`` steps (diffusers' ``set_timesteps``: integer
        timesteps by ``timestep_spacing`` up to the ``lambda_min_clipped`` cut-off, sigmas interpolated
        in the training table or spaced by Karras / exponential / beta / Lu's lambdas, then the final
        sigma). ``shape``: the sample's shape, for the ``(solver_order, *shape)`` history in ``dtype``."""
        n = self._check_steps(num_inference_steps)
        c = self.config
        if shape is not None:
            if not isinstance(shape, (tuple, list)) or not all(
                    isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise TypeError(f"DPMSolverMultistepScheduler.set_timesteps: `shape` must be a tuple of "
                                f"non-negative ints (the sample's shape), got {shape!r}.")
        timesteps = self._timesteps(n)
        train = _train_sigmas(self.alphas_cumprod)
        log_sigmas = np.log(train)
        spacing = _spacing_option(c)
        if spacing is not None:
            # not options of DPM-Solver, but diffusers reads them from its config when there (a config
            # of Euler's, whose options it keeps, see Scheduler.__init__)
            sigmas = _spaced_sigmas(spacing, np.flip(train).copy(), n, c.get("sigma_min"), c.get("sigma_max"))
            timesteps = np.array([_sigma_to_t(s, log_sigmas) for s in sigmas])
            if spacing == "use_karras_sigmas" and c.beta_schedule != "squaredcos_cap_v2":
                timesteps = timesteps.round()
        elif c.use_lu_lambdas:
            lambdas = np.flip(log_sigmas.copy())
            lo, hi = lambdas[-1].item(), lambdas[0].item()
            lambdas = hi + np.linspace(0, 1, n) * (lo - hi)
            sigmas = np.exp(lambdas)
            timesteps = np.array([_sigma_to_t(s, log_sigmas) for s in sigmas])
            if c.beta_schedule != "squaredcos_cap_v2":
                timesteps = timesteps.round()
        else:
            sigmas = np.interp(timesteps, np.arange(0, len(train)), train)
        if c.final_sigmas_type == "sigma_min":
            a0 = self.alphas_cumprod[0]
            last = np.sqrt((np.float32(1.0) - a0) / a0)
        else:
            last = 0
        sigmas = np.concatenate([sigmas, [last]]).astype(np.float32)
        timesteps = timesteps.astype(np.int64)
        history = None if shape is None else jnp.zeros((c.solver_order, *shape), dtype)
        return DPMSolverMultistepSchedulerState(
            timesteps=jnp.asarray(timesteps), sigmas=jnp.asarray(sigmas), step_index=jnp.zeros((), jnp.int32),
            model_outputs=history, lower_order_nums=jnp.zeros((), jnp.int32),
            coefficients=jnp.asarray(_coefficients(sigmas, c.algorithm_type, c.solver_type)),
            num_inference_steps=len(timesteps))

    def scale_model_input(self, state: Any, sample: Array, timestep: Any = None) -> Array:
        """DPM-Solver does not scale the model input (the identity, as diffusers)."""
        del state, timestep
        return sample

    def _convert(self, row: Array, model_output: Array, sample: Array) -> Array:
        """diffusers' ``convert_model_output``: the data prediction x0 (dpmsolver++, sde-dpmsolver++) or
        the noise prediction (dpmsolver) from the model output at ``sigma_i``."""
        c = self.config
        a, s = row[_ALPHA_S0], row[_SIGMA_S0]
        pt = c.prediction_type
        if c.algorithm_type in ("dpmsolver++", "sde-dpmsolver++"):
            if pt == "epsilon":
                return (sample - s * model_output) / a
            if pt == "sample":
                return model_output
            return a * sample - s * model_output
        if pt == "epsilon":
            return model_output
        if pt == "sample":
            return (sample - a * model_output) / s
        return a * model_output + s * sample

    def step(self, state: DPMSolverMultistepSchedulerState, model_output: Array, timestep: Any, sample: Array, *,
             rng: Array | None = None, variance_noise: Array | None = None, return_dict: bool = True):
        """One multistep update at ``state.step_index`` (see the class docstring), jit-safe with a
        traced state. Returns ``SchedulerOutput(prev_sample, state, None)`` (``(prev_sample, state)``
        with ``return_dict=False``); ``prev_sample`` has ``model_output``'s dtype.

        Args:
            state: from ``set_timesteps`` or the previous step.
            model_output: the model's prediction (epsilon / v / sample per ``prediction_type``), the
                sample's shape.
            timestep: ``state.timesteps[i]`` (not used: the index is in the state).
            sample: the current latents (computed in float32).
            rng, variance_noise: the noise of ``sde-dpmsolver++`` (one of them; ignored otherwise).
        """
        del timestep
        c = self.config
        name = type(self).__name__
        model_output, sample = jnp.asarray(model_output), jnp.asarray(sample)
        if model_output.shape != sample.shape:
            raise ValueError(f"{name}.step: `model_output` has shape {model_output.shape} but `sample` has shape "
                             f"{sample.shape}.")
        history = state.model_outputs
        if history is None:
            history = jnp.zeros((c.solver_order, *sample.shape), jnp.float32)
        elif history.shape[1:] != sample.shape:
            raise ValueError(f"{name}.step: `sample` has shape {sample.shape} but the state's history was made for "
                             f"{history.shape[1:]} (set_timesteps(..., shape=...)).")
        z = None
        if c.algorithm_type == "sde-dpmsolver++":
            if variance_noise is not None and rng is not None:
                raise ValueError(f"{name}.step: pass either `rng` or `variance_noise`, not both.")
            if variance_noise is None:
                if rng is None:
                    raise ValueError(f"{name}.step: algorithm_type='sde-dpmsolver++' adds noise: pass `rng` (a "
                                     "jax.random key) or `variance_noise`.")
                z = jax.random.normal(rng, model_output.shape, jnp.float32)
            else:
                z = jnp.asarray(variance_noise).astype(jnp.float32)
                if z.shape != model_output.shape:
                    raise ValueError(f"{name}.step: `variance_noise` has shape {z.shape}, but `model_output` has "
                                     f"shape {model_output.shape}.")

        n = state.num_inference_steps
        i = _checked_index(name, state)
        row = jnp.asarray(state.coefficients)[i]
        converted = self._convert(row, model_output, sample)
        history = jnp.concatenate([history[1:], converted[None].astype(history.dtype)], axis=0)
        x = sample.astype(jnp.float32)

        lower_final = (i == n - 1) & bool(c.euler_at_final or (c.lower_order_final and n < 15)
                                          or c.final_sigmas_type == "zero")
        lower_second = (i == n - 2) & bool(c.lower_order_final and n < 15)
        lon = state.lower_order_nums
        first = (c.solver_order == 1) | (lon < 1) | lower_final
        second = (c.solver_order == 2) | (lon < 2) | lower_second
        branch = jnp.where(first, 0, jnp.where(second, 1, 2))

        def noise_term(y: Array) -> Array:
            return y if z is None else y + row[_CN] * z

        def order1(m: Array) -> Array:
            return noise_term(row[_CS] * x + row[_C0] * m[-1])

        def order2(m: Array) -> Array:
            d1 = row[_R0] * (m[-1] - m[-2])
            return noise_term(row[_CS] * x + row[_C0] * m[-1] + row[_C1_2] * d1)

        def order3(m: Array) -> Array:
            d1_0 = row[_R0] * (m[-1] - m[-2])
            d1_1 = row[_R1] * (m[-2] - m[-3])
            d1 = d1_0 + row[_Q] * (d1_0 - d1_1)
            d2 = row[_P] * (d1_0 - d1_1)
            return noise_term(row[_CS] * x + row[_C0] * m[-1] + row[_C1_3] * d1 + row[_C2] * d2)

        branches = [order1, order2, order3][: c.solver_order]
        m = history.astype(jnp.float32)
        prev = branches[0](m) if len(branches) == 1 else jax.lax.switch(
            jnp.minimum(branch, len(branches) - 1), branches, m)
        prev_sample = prev.astype(model_output.dtype)
        new_state = dataclasses.replace(state, step_index=i + 1, model_outputs=history,
                                        lower_order_nums=jnp.minimum(lon + 1, c.solver_order).astype(jnp.int32))
        if not return_dict:
            return prev_sample, new_state
        return SchedulerOutput(prev_sample=prev_sample, state=new_state, pred_original_sample=None)

    def add_noise(self, original_samples: Array, noise: Array, timesteps: Array,
                  state: DPMSolverMultistepSchedulerState | None = None) -> Array:
        """``alpha_t x0 + sigma_t noise`` with ``alpha_t = 1/sqrt(sigma^2 + 1)``, ``sigma_t = sigma alpha_t``
        and ``sigma`` the sigma of each of ``timesteps`` (B,) in ``state`` (diffusers' lookup: the second
        match of a repeated timestep, the last step for one not in the schedule). ``state`` is
        required: before ``set_timesteps`` diffusers' lookup reads its ascending training sigma table
        with a descending timestep list (sigma of ``T - 1 - t``); use the DDPM-family ``add_noise`` of
        ``DDPMScheduler`` for training."""
        if state is None:
            raise ValueError("DPMSolverMultistepScheduler.add_noise: pass `state` (from set_timesteps): the "
                             "timesteps are looked up in the inference schedule.")
        x = jnp.asarray(original_samples)
        idx = _lookup_indices(state.timesteps, jnp.asarray(timesteps), "last")
        sigma = _expand(jnp.asarray(state.sigmas).astype(x.dtype)[idx], x.ndim)
        one = jnp.asarray(1, x.dtype)
        alpha_t = one / jnp.sqrt(sigma * sigma + one)
        return alpha_t * x + (sigma * alpha_t) * jnp.asarray(noise)
