"""diffusers' ``PNDMScheduler`` (Liu et al., "Pseudo Numerical Methods for Diffusion Models on
Manifolds", ICLR 2022), Stable Diffusion 1.x's default scheduler, in JAX with its Runge-Kutta /
linear-multistep history as arrays of a jit-safe state."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ._scheduling import Scheduler, SchedulerOutput, _step_timestep

Array = jax.Array

_ORDER = 4  # diffusers' pndm_order


@struct.dataclass
class PNDMSchedulerState:
    """``PNDMScheduler.set_timesteps``' result and ``step``'s running state.

    Attributes:
        timesteps: the model calls' timesteps (the 12 pseudo-Runge-Kutta ones unless
            ``skip_prk_steps``, then the multistep ones; diffusers' ``scheduler.timesteps``).
        counter: int32 0-d, the number of steps taken (diffusers' ``counter``).
        ets: (4, *sample.shape) the last model outputs that the multistep formula combines, the
            newest last; ``num_ets`` (int32 0-d) of them are filled (diffusers' ``ets`` list).
        cur_sample: (*sample.shape) the sample a Runge-Kutta group (or the second multistep step)
            starts from (diffusers' ``cur_sample``).
        cur_model_output: (*sample.shape) the Runge-Kutta weighted sum so far.
        num_inference_steps, prk_steps (how many of ``timesteps`` are Runge-Kutta steps),
        init_noise_sigma: static.

    The three sample-shaped arrays are None when ``set_timesteps`` was not given the sample's
    ``shape``; the first ``step`` then creates them (a jitted step compiles twice: once for the state
    without them, once with).
    """

    timesteps: Array
    counter: Array
    num_ets: Array
    ets: Array | None
    cur_sample: Array | None
    cur_model_output: Array | None
    num_inference_steps: int = struct.field(pytree_node=False)
    prk_steps: int = struct.field(pytree_node=False)
    init_noise_sigma: float = struct.field(pytree_node=False, default=1.0)


class PNDMScheduler(Scheduler):
    r"""diffusers' ``PNDMScheduler`` in JAX: pseudo linear multistep (PLMS) sampling, optionally
    started with pseudo Runge-Kutta (PRK) steps.

    Every step applies the transfer of formula (9) of the paper from :math:`t` to :math:`t'`
    (:math:`\bar\alpha_{t'}` = ``final_alpha_cumprod`` when :math:`t' < 0`: 1 if
    ``set_alpha_to_one`` else :math:`\bar\alpha_0`) to a combined noise estimate :math:`e`:

    .. math::
        x_{t'} = \sqrt{\bar\alpha_{t'}/\bar\alpha_t}\,x_t
          - \frac{(\bar\alpha_{t'} - \bar\alpha_t)\,e}{\bar\alpha_t\sqrt{1-\bar\alpha_{t'}}
          + \sqrt{\bar\alpha_t(1-\bar\alpha_t)\bar\alpha_{t'}}}

    (``v_prediction`` outputs converted first, :math:`e = \sqrt{\bar\alpha_t}\,v + \sqrt{1-\bar\alpha_t}\,x_t`).
    With ``skip_prk_steps=True`` (Stable Diffusion's configs) the ``n`` timesteps become ``n + 1``
    model calls: the first step uses the model output as it is, the second recomputes the same
    transfer from the first sample with the mean of the two outputs, later ones the 2nd-, 3rd- and
    then 4th-order Adams-Bashforth combinations of the last outputs
    (:math:`(55e_1 - 59e_2 + 37e_3 - 9e_4)/24`). With ``skip_prk_steps=False`` the first three
    intervals are taken by 4-call Runge-Kutta steps (12 model calls, half-interval midpoints,
    weights 1/6, 1/3, 1/3, 1/6), then PLMS.

    ``state = scheduler.set_timesteps(n, shape=latents.shape)``, then for each ``i``:
    ``out = scheduler.step(state, model_output, state.timesteps[i], sample)``; ``out.state`` carries
    the counter and the history. The branches on the step number are ``jnp.where`` on
    ``state.counter``, so one jitted step serves every step. float32 arithmetic; ``prev_sample`` has
    the model output's dtype; no ``pred_original_sample`` (as diffusers).

    Errors: NotImplementedError for ``prediction_type="sample"`` (diffusers raises ValueError at the
    first step) and ``beta_schedule`` values other than linear / scaled_linear / squaredcos_cap_v2;
    ValueError for bad ``num_inference_steps``, shapes that do not match the state, a ``timestep``
    outside ``[0, num_train_timesteps)`` (when not traced; TypeError if it is not an integer).

    Differences from diffusers: the step is driven by ``state.counter``, as diffusers' is by its
    hidden ``counter``; the ``timestep`` argument is used where diffusers uses it (the transfer's
    start in PLMS and its end in PRK), so calling ``step`` with the state's own timesteps in order
    (as every pipeline does) is required in both.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxnn.models import PNDMScheduler
        >>> s = PNDMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        ...                   steps_offset=1, skip_prk_steps=True)
        >>> state = s.set_timesteps(4, shape=(1, 4, 8, 8))
        >>> state.timesteps.tolist()
        [751, 501, 501, 251, 1]
        >>> x = jnp.ones((1, 4, 8, 8))
        >>> for t in state.timesteps:
        ...     x, state = s.step(state, 0.1 * x, t, x, return_dict=False)
        >>> int(state.counter), int(state.num_ets)
        (5, 4)
    """

    _defaults: ClassVar[dict[str, Any]] = dict(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear", trained_betas=None,
        skip_prk_steps=False, set_alpha_to_one=False, prediction_type="epsilon", timestep_spacing="leading",
        steps_offset=0)
    _supported: ClassVar[dict[str, tuple[Any, ...]]] = dict(
        beta_schedule=("linear", "scaled_linear", "squaredcos_cap_v2"),
        prediction_type=("epsilon", "v_prediction"), timestep_spacing=("leading", "trailing", "linspace"))

    def _build_tables(self) -> None:
        super()._build_tables()
        self.final_alpha_cumprod = np.float32(1.0) if self.config.set_alpha_to_one else self.alphas_cumprod[0]

    def _ascending_timesteps(self, n: int) -> np.ndarray:
        c = self.config
        train = len(self)
        if c.timestep_spacing == "linspace":
            return np.linspace(0, train - 1, n).round().astype(np.int64)
        if c.timestep_spacing == "leading":
            return (np.arange(0, n) * (train // n)).round().astype(np.int64) + c.steps_offset
        return np.round(np.arange(train, 0, -train / n))[::-1].astype(np.int64) - 1

    def set_timesteps(self, num_inference_steps: int, shape: tuple[int, ...] | None = None,
                      dtype: Any = jnp.float32) -> PNDMSchedulerState:
        """The state for ``num_inference_steps`` steps (diffusers' ``set_timesteps``; its
        ``timesteps`` attribute is ``state.timesteps``: ``n + 1`` entries with ``skip_prk_steps``,
        ``n + 9`` without). ``shape`` (the sample's shape) and ``dtype`` (float32 unless the
        history should be kept in another dtype) make the history arrays now, so that a jitted step
        compiles once."""
        n = self._check_steps(num_inference_steps)
        name = type(self).__name__
        asc = self._ascending_timesteps(n)
        if self.config.skip_prk_steps:
            prk = np.zeros((0,), np.int64)
            plms = np.concatenate([asc[:-1], asc[-2:-1], asc[-1:]])[::-1]
        else:
            if n < _ORDER:
                raise ValueError(f"{name}.set_timesteps: `num_inference_steps` (={n}) must be >= {_ORDER} when "
                                 "skip_prk_steps=False (diffusers' Runge-Kutta warm-up takes 3 intervals).")
            half = len(self) // n // 2
            starts = np.repeat(asc[-_ORDER:], 2) + np.tile(np.array([0, half]), _ORDER)
            prk = np.repeat(starts[:-1], 2)[1:-1][::-1]
            plms = asc[:-3][::-1]
        timesteps = np.concatenate([prk, plms]).astype(np.int64)
        history: list[Array | None] = [None, None, None]
        if shape is not None:
            if not isinstance(shape, (tuple, list)) or not all(
                    isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise TypeError(f"{name}.set_timesteps: `shape` must be a tuple of non-negative ints (the sample's "
                                f"shape), got {shape!r}.")
            shape = tuple(int(d) for d in shape)
            history = [jnp.zeros((_ORDER, *shape), dtype), jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)]
        return PNDMSchedulerState(
            timesteps=jnp.asarray(timesteps), counter=jnp.zeros((), jnp.int32), num_ets=jnp.zeros((), jnp.int32),
            ets=history[0], cur_sample=history[1], cur_model_output=history[2], num_inference_steps=n,
            prk_steps=int(prk.shape[0]))

    def scale_model_input(self, state: Any, sample: Array, timestep: Any = None) -> Array:
        """PNDM does not scale the model input (the identity, as diffusers)."""
        del state, timestep
        return sample

    def _transfer(self, sample: Array, t: Array, prev_t: Array, e: Array) -> Array:
        """Formula (9) of the paper (diffusers' ``_get_prev_sample``)."""
        abar = jnp.asarray(self.alphas_cumprod)
        one = jnp.float32(1)
        abar_t = abar[t]
        abar_prev = jnp.where(prev_t >= 0, abar[jnp.maximum(prev_t, 0)], jnp.float32(self.final_alpha_cumprod))
        beta_t, beta_prev = one - abar_t, one - abar_prev
        if self.config.prediction_type == "v_prediction":
            e = jnp.sqrt(abar_t) * e + jnp.sqrt(beta_t) * sample
        sample_coeff = jnp.sqrt(abar_prev / abar_t)
        denom = abar_t * jnp.sqrt(beta_prev) + jnp.sqrt(abar_t * beta_t * abar_prev)
        return sample_coeff * sample - (abar_prev - abar_t) * e / denom

    def step(self, state: PNDMSchedulerState, model_output: Array, timestep: Any, sample: Array, *,
             rng: Array | None = None, return_dict: bool = True):
        """One PRK or PLMS step (see the class docstring; diffusers' ``PNDMScheduler.step``):
        ``model_output`` and ``sample`` (B, C, H, W) or any shape, the same for both; ``timestep``
        the current entry of ``state.timesteps`` (traced under jit is fine). Returns
        ``SchedulerOutput(prev_sample, state)`` with the advanced state, or ``(prev_sample, state)``
        for ``return_dict=False``. PNDM draws no noise: ``rng`` (what pipelines pass every
        scheduler) is accepted and unused."""
        del rng
        name = type(self).__name__
        model_output, sample = jnp.asarray(model_output), jnp.asarray(sample)
        if model_output.shape != sample.shape:
            raise ValueError(f"{name}.step: `model_output` has shape {model_output.shape} but `sample` has shape "
                             f"{sample.shape}.")
        ets, cur_sample, cur_mo = state.ets, state.cur_sample, state.cur_model_output
        if ets is None or cur_sample is None or cur_mo is None:
            ets = jnp.zeros((_ORDER, *sample.shape), jnp.float32)
            cur_sample = jnp.zeros(sample.shape, jnp.float32)
            cur_mo = jnp.zeros(sample.shape, jnp.float32)
        elif ets.shape[1:] != sample.shape:
            raise ValueError(f"{name}.step: `sample` has shape {sample.shape} but the state's history was made for "
                             f"{ets.shape[1:]} (set_timesteps(..., shape=...)).")
        dtype = ets.dtype
        mo, x = model_output.astype(dtype), sample.astype(dtype)
        t = _step_timestep(name, timestep, len(self))
        k = state.counter
        ratio = len(self) // state.num_inference_steps

        # pseudo Runge-Kutta: counter k in [0, prk_steps), phase k % 4 of the group starting at k // 4 * 4
        phase = k % 4
        prk_t = state.timesteps[k // 4 * 4]
        prk_prev = t - jnp.where(k % 2 == 1, 0, ratio // 2)
        prk_sample = jnp.where(phase == 0, x, cur_sample)
        prk_e = jnp.where(phase == 3, cur_mo + (1 / 6) * mo, mo)
        prk_cur_mo = jnp.where(phase == 0, cur_mo + (1 / 6) * mo,
                               jnp.where(phase == 3, jnp.zeros_like(cur_mo), cur_mo + (1 / 3) * mo))

        # pseudo linear multistep; the second step (k == 1, only reached with skip_prk_steps) redoes
        # the first interval with the mean of the two outputs
        second = k == 1
        is_prk = k < state.prk_steps
        append = jnp.where(is_prk, phase == 0, ~second)
        new_ets = jnp.where(append, jnp.concatenate([ets[1:], mo[None]]), ets)
        n_ets = jnp.where(append, jnp.minimum(state.num_ets + 1, _ORDER), state.num_ets)
        e1, e2, e3, e4 = new_ets[3], new_ets[2], new_ets[1], new_ets[0]
        plms_e = jnp.where(n_ets == 1, mo,
                           jnp.where(n_ets == 2, (3 * e1 - e2) / 2,
                                     jnp.where(n_ets == 3, (23 * e1 - 16 * e2 + 5 * e3) / 12,
                                               (1 / 24) * (55 * e1 - 59 * e2 + 37 * e3 - 9 * e4))))
        plms_e = jnp.where(second, (mo + ets[3]) / 2, plms_e)
        plms_t = jnp.where(second, t + ratio, t)
        plms_prev = jnp.where(second, t, t - ratio)
        plms_sample = jnp.where(second, cur_sample, x)

        prev_sample = self._transfer(jnp.where(is_prk, prk_sample, plms_sample), jnp.where(is_prk, prk_t, plms_t),
                                     jnp.where(is_prk, prk_prev, plms_prev), jnp.where(is_prk, prk_e, plms_e))
        starts_group = jnp.where(is_prk, phase == 0, k == 0)
        new_state = dataclasses.replace(
            state, counter=k + 1, num_ets=n_ets, ets=new_ets, cur_sample=jnp.where(starts_group, x, cur_sample),
            cur_model_output=jnp.where(is_prk, prk_cur_mo, cur_mo))
        prev_sample = prev_sample.astype(model_output.dtype)
        if not return_dict:
            return prev_sample, new_state
        return SchedulerOutput(prev_sample=prev_sample, state=new_state)
