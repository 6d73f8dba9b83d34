"""jaxnn.models' EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and DPMSolverMultistepScheduler
against diffusers' (torch, CPU).

Tables: timesteps and sigmas for every combination of the options the released SD/SDXL configs and
common fine-tunes use. jaxnn computes them with correctly rounded float32 arithmetic; torch's CPU
``sqrt`` is not correctly rounded in float32 (190 of the 1000 entries of SD's training sigma table
``sqrt((1 - abar) / abar)`` are one ulp off, AVX-512 and 0-d alike) and its ``linspace`` differs by an
ulp depending on the instruction set, so sigmas are compared at one ulp and timesteps derived from
them (Karras / exponential / beta spacing) at 1e-6 relative.

Runs: whole sampling runs (25 steps, 10 for lower_order_final) with random model outputs fed
identically to both, every step compared, through ONE jitted ``denoise(state, latents, i, ...)`` with
a traced step index (as the pipelines run it; its trace count is checked) and eagerly. Runs at 1e-6
use diffusers' tables injected into the jaxnn state (diffusers' ``alphas_cumprod`` and ``sigmas``;
DPM-Solver's coefficient table recomputed from those sigmas), which isolates the step arithmetic from
the one-ulp table differences; the same runs with jaxnn's own tables are compared at 5e-6. The error
of a step is measured against the scale of its operands (max |sample in|, |sample out|), that of a
model input against the previous step's input: where a step cancels (zero terminal SNR starts from
sigma = 4096; squaredcos' beta-spaced sigmas drop from 188 to 0.006) the result carries the rounding
of its larger inputs, in both libraries.
"""

import itertools
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler as TorchDPM
from diffusers import EulerAncestralDiscreteScheduler as TorchEA
from diffusers import EulerDiscreteScheduler as TorchEuler
from diffusers import PNDMScheduler as TorchPNDM
from diffusers import UniPCMultistepScheduler as TorchUniPC
from diffusers.schedulers import scheduling_euler_ancestral_discrete as ea_module
from diffusers.schedulers import scheduling_euler_discrete as euler_module
from hypothesis import given, settings
from hypothesis import strategies as hst
from torch_ref import no_warning

from jaxnn.models import (
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)
from jaxnn.models._scheduling_dpmsolver import _coefficients

pytestmark = [
    pytest.mark.xdist_group("schedulers_k"),
    # diffusers' set_timesteps calls np.array on torch tensors (torch's __array__ predates NumPy 2's copy=)
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]

SD = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
SHAPE = (2, 4, 8, 8)
PAIRS = {EulerDiscreteScheduler: TorchEuler, EulerAncestralDiscreteScheduler: TorchEA,
         DPMSolverMultistepScheduler: TorchDPM}


def torch_scheduler(cls, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diffusers' FutureWarning for algorithm_type="dpmsolver"
        return PAIRS[cls](**kw)


def ulps(a, b):
    """Distance in float32 ulps (of the expected value)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert a.shape == b.shape, (a.shape, b.shape)
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)) / np.spacing(np.abs(b))
    return float(np.where(both_inf, 0, d).max(initial=0))


def step_error(ours, ref, ref_in):
    ours, ref, ref_in = (np.asarray(v, np.float64) for v in (ours, ref, ref_in))
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), np.abs(ref_in).max()))


# ------------------------------------------------------------------------------------------- tables
SPACINGS = ("linspace", "leading", "trailing")
SCHEDULES = (SD, dict(beta_schedule="linear"), dict(beta_schedule="squaredcos_cap_v2"))
EULER_TABLES = [
    dict(sched, timestep_spacing=sp, final_sigmas_type=fin, **({kind: True} if kind else {}))
    for sched, sp, fin, kind in itertools.product(
        SCHEDULES, SPACINGS, ("zero", "sigma_min"),
        (None, "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"))
] + [dict(SD, timestep_spacing="trailing", rescale_betas_zero_snr=True),
     dict(SD, use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0),
     dict(SD, timestep_spacing="leading", steps_offset=0)]
EA_TABLES = [dict(sched, timestep_spacing=sp) for sched, sp in itertools.product(SCHEDULES, SPACINGS)] + [
    dict(SD, timestep_spacing="trailing", rescale_betas_zero_snr=True)]
DPM_TABLES = [
    dict(sched, timestep_spacing=sp, final_sigmas_type=fin, **({kind: True} if kind else {}))
    for sched, sp, fin, kind in itertools.product(
        SCHEDULES, SPACINGS, ("zero", "sigma_min"),
        (None, "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas"))
] + [dict(SD, lambda_min_clipped=-5.1), dict(SD, timestep_spacing="trailing", lambda_min_clipped=-3.0),
     dict(SD, timestep_spacing="trailing", rescale_betas_zero_snr=True),
     dict(beta_schedule="squaredcos_cap_v2", lambda_min_clipped=-5.1, use_karras_sigmas=True)]
TABLE_CASES = ([(EulerDiscreteScheduler, kw) for kw in EULER_TABLES]
               + [(EulerAncestralDiscreteScheduler, kw) for kw in EA_TABLES]
               + [(DPMSolverMultistepScheduler, kw) for kw in DPM_TABLES])


@pytest.mark.parametrize("n", [25, 7])
@pytest.mark.parametrize("cls,kw", TABLE_CASES, ids=[f"{c.__name__[:5]}-{i}" for i, (c, _) in enumerate(TABLE_CASES)])
def test_tables(cls, kw, n):
    """jaxnn's own tables: alphas_cumprod a few ulps from diffusers' (betas from torch.linspace),
    sigmas within 4 ulps (32 with zero terminal SNR, whose rescaling amplifies the betas' ulps); with
    diffusers' alphas_cumprod injected, sigmas within ONE ulp (torch's float32 sqrt) and the integer
    timesteps identical."""
    t, j = torch_scheduler(cls, **kw), cls(**kw)
    t.set_timesteps(n)
    st = j.set_timesteps(n)
    ref_ts = t.timesteps.numpy()
    assert st.timesteps.shape == ref_ts.shape and st.num_inference_steps == len(ref_ts)
    zsnr = kw.get("rescale_betas_zero_snr", False)
    assert ulps(st.sigmas, t.sigmas.numpy()) <= (32 if zsnr else 4)
    assert ulps(np.float32(st.init_noise_sigma), np.float32(float(t.init_noise_sigma))) <= (32 if zsnr else 4)
    if np.issubdtype(ref_ts.dtype, np.integer):
        assert jnp.issubdtype(st.timesteps.dtype, jnp.integer)
        np.testing.assert_array_equal(np.asarray(st.timesteps), ref_ts)
    else:
        assert st.timesteps.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(st.timesteps), ref_ts, rtol=1e-6, atol=1e-4)
    if zsnr:
        assert j.alphas_cumprod[-1] == np.float32(2.0 ** -24) == t.alphas_cumprod[-1].item()
    if cls is DPMSolverMultistepScheduler:
        assert st.model_outputs is None and int(st.lower_order_nums) == 0
    assert int(st.step_index) == 0 and st.step_index.dtype == jnp.int32

    j.alphas_cumprod = t.alphas_cumprod.numpy().copy()
    st = j.set_timesteps(n)
    assert st.sigmas.dtype == jnp.float32
    assert ulps(st.sigmas, t.sigmas.numpy()) <= 1
    # leading spacing: sqrt(sigma_max^2 + 1), torch's sqrt once more
    assert ulps(np.float32(st.init_noise_sigma), np.float32(float(t.init_noise_sigma))) <= 2
    if np.issubdtype(ref_ts.dtype, np.integer):
        np.testing.assert_array_equal(np.asarray(st.timesteps), ref_ts)
    else:
        np.testing.assert_allclose(np.asarray(st.timesteps), ref_ts, rtol=1e-6, atol=1e-5)


@settings(max_examples=40)
@given(data=hst.data())
def test_tables_random_configs(data):
    """Random option combinations and step counts 1..100 (diffusers' alphas_cumprod injected, as in
    test_tables): sigmas within one ulp, timesteps identical. (Past ~300 steps the table ulps can make
    two float64 paths differ by two ulps, and a float timestep near an integer truncate differently.)"""
    cls = data.draw(hst.sampled_from(list(PAIRS)))
    kw = dict(data.draw(hst.sampled_from(SCHEDULES)), timestep_spacing=data.draw(hst.sampled_from(SPACINGS)),
              steps_offset=data.draw(hst.sampled_from([0, 1])),
              rescale_betas_zero_snr=data.draw(hst.booleans()))
    if cls is not EulerAncestralDiscreteScheduler:
        kinds = [None, "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"]
        kind = data.draw(hst.sampled_from(kinds + (["use_lu_lambdas"] if cls is DPMSolverMultistepScheduler else [])))
        if kind:
            kw[kind] = True
        kw["final_sigmas_type"] = data.draw(hst.sampled_from(["zero", "sigma_min"]))
    if cls is DPMSolverMultistepScheduler:
        kw["lambda_min_clipped"] = data.draw(hst.sampled_from([-float("inf"), -5.1, -2.0]))
    n = data.draw(hst.integers(1, 100))
    t, j = torch_scheduler(cls, **kw), cls(**kw)
    t.set_timesteps(n)
    j.alphas_cumprod = t.alphas_cumprod.numpy().copy()
    state = j.set_timesteps(n)
    assert ulps(state.sigmas, t.sigmas.numpy()) <= 1
    np.testing.assert_allclose(np.asarray(state.timesteps, np.float64), t.timesteps.numpy(), rtol=1e-6, atol=1e-5)


# --------------------------------------------------------------------------------------------- runs
def make_denoise(j, noise_kw, step_kwargs):
    """The pipeline's pattern: one jitted function of the state and a traced step index."""
    traces = []

    @jax.jit
    def denoise(state, latents, i, model_output, z):
        traces.append(1)
        t = state.timesteps[i]
        scaled = j.scale_model_input(state, latents, t)
        extra = {noise_kw: z} if noise_kw else {}
        prev, state = j.step(state, model_output, t, latents, return_dict=False, **step_kwargs, **extra)
        return scaled, prev, state

    return denoise, traces


def run_pair(cls, kw, n, *, inject, jit, step_kwargs=None, noise_kw=None, seed=0):
    """Run diffusers and jaxnn side by side; returns (worst step error, worst scale_model_input error,
    trace count)."""
    step_kwargs = step_kwargs or {}
    t, j = torch_scheduler(cls, **kw), cls(**kw)
    t.set_timesteps(n)
    st = j.set_timesteps(n, shape=SHAPE)
    if inject:
        sig = t.sigmas.numpy().astype(np.float32)
        st = st.replace(sigmas=jnp.asarray(sig))
        if cls is DPMSolverMultistepScheduler:
            st = st.replace(coefficients=jnp.asarray(_coefficients(sig, j.config.algorithm_type,
                                                                    j.config.solver_type)))
    g = np.random.default_rng(seed)
    x0 = g.standard_normal(SHAPE).astype(np.float32)
    xt = torch.tensor(x0) * t.init_noise_sigma
    xj = jnp.asarray(x0) * st.init_noise_sigma
    assert step_error(xj, xt.numpy(), xt.numpy()) <= 1e-6
    if inject:  # the same initial latents (init_noise_sigma may be an ulp apart, see test_tables)
        xj = jnp.asarray(xt.numpy())
    if jit:
        denoise, traces = make_denoise(j, noise_kw, step_kwargs)
    else:
        traces = []

        def denoise(state, latents, i, model_output, z):
            tt = state.timesteps[i]
            extra = {noise_kw: z} if noise_kw else {}
            return (j.scale_model_input(state, latents, tt),
                    *j.step(state, model_output, tt, latents, return_dict=False, **step_kwargs, **extra))
    worst = worst_in = 0.0
    prev_in = xt  # the input of the previous step: the scale of the error the current input carries
    modules = (euler_module, ea_module)
    originals = [m.randn_tensor for m in modules]
    try:
        for i, tt in enumerate(t.timesteps):
            m = g.standard_normal(SHAPE).astype(np.float32)
            z = g.standard_normal(SHAPE).astype(np.float32)
            for mod in modules:  # diffusers draws its noise here: hand it the same z
                mod.randn_tensor = lambda *a, _z=z, **k: torch.tensor(_z)
            scaled_t = t.scale_model_input(xt, tt)
            kw_t = dict(step_kwargs)
            if cls is DPMSolverMultistepScheduler and noise_kw:
                kw_t["variance_noise"] = torch.tensor(z)
            new_t = t.step(torch.tensor(m), tt, xt, **kw_t).prev_sample
            scaled_j, xj_new, st = denoise(st, xj, jnp.int32(i), jnp.asarray(m), jnp.asarray(z))
            worst_in = max(worst_in, step_error(scaled_j, scaled_t.numpy(), prev_in.numpy()))
            worst = max(worst, step_error(xj_new, new_t.numpy(), xt.numpy()))
            assert int(st.step_index) == i + 1
            prev_in, xt, xj = xt, new_t, xj_new
    finally:
        for mod, orig in zip(modules, originals, strict=True):
            mod.randn_tensor = orig
    return worst, worst_in, len(traces)


# (scheduler, options, steps, noise argument, tolerance with diffusers' tables, with jaxnn's own tables
# or None: not run). Wider than 1e-6, measured and explained:
# - zero terminal SNR (sigma_max = 4096): the first Euler step cancels |x| ~ 1.6e4 to ~200; XLA
#   contracts ``x + d * dt`` into an FMA (more accurate: 109.09714 vs float64 109.09719, torch
#   109.09668), an absolute difference of ~5e-4 that is 2e-6 of the later samples (eager: 3e-7);
# - sample prediction with Lu's lambdas: per-step differences of ~1e-7 (torch's float32 log/exp/sqrt
#   are not always correctly rounded: ~5% of log and ~16% of sqrt results an ulp off, measured; jaxnn's
#   coefficients are) accumulate to 1.5e-6 through the multistep history.
ZSNR = dict(timestep_spacing="trailing", prediction_type="v_prediction", rescale_betas_zero_snr=True)
RUNS = [
    (EulerDiscreteScheduler, SD, 25, None, 1e-6, 5e-6),
    (EulerDiscreteScheduler, dict(SD, use_karras_sigmas=True), 25, None, 1e-6, 5e-6),
    (EulerDiscreteScheduler, dict(SD, timestep_spacing="leading", prediction_type="v_prediction"), 25, None,
     1e-6, 5e-6),
    (EulerDiscreteScheduler, dict(SD, **ZSNR), 25, None, 3e-6, 5e-6),
    (EulerDiscreteScheduler, dict(SD, use_exponential_sigmas=True, final_sigmas_type="sigma_min"), 25, None,
     1e-6, 5e-6),
    (EulerDiscreteScheduler, dict(beta_schedule="squaredcos_cap_v2", use_beta_sigmas=True,
                                  prediction_type="sample"), 25, None, 1e-6, 5e-6),
    (EulerAncestralDiscreteScheduler, SD, 25, "noise", 1e-6, 5e-6),
    (EulerAncestralDiscreteScheduler, dict(SD, **ZSNR), 25, "noise", 3e-6, 5e-6),
    (DPMSolverMultistepScheduler, SD, 25, None, 1e-6, 5e-6),
    (DPMSolverMultistepScheduler, dict(SD, solver_order=1), 25, None, 1e-6, None),
    (DPMSolverMultistepScheduler, dict(SD, solver_order=3), 25, None, 1e-6, 5e-6),
    (DPMSolverMultistepScheduler, dict(SD, solver_order=3), 10, None, 1e-6, None),
    (DPMSolverMultistepScheduler, dict(SD, use_karras_sigmas=True), 25, None, 1e-6, 5e-6),
    (DPMSolverMultistepScheduler, dict(SD, use_karras_sigmas=True, solver_order=3), 10, None, 1e-6, None),
    (DPMSolverMultistepScheduler, dict(SD, solver_type="heun", final_sigmas_type="sigma_min",
                                       lower_order_final=False), 10, None, 1e-6, None),
    (DPMSolverMultistepScheduler, dict(SD, solver_order=3, euler_at_final=True, final_sigmas_type="sigma_min",
                                       prediction_type="v_prediction", timestep_spacing="trailing"), 25, None,
     1e-6, 5e-6),
    (DPMSolverMultistepScheduler, dict(SD, algorithm_type="dpmsolver", final_sigmas_type="sigma_min",
                                       solver_order=3), 25, None, 1e-6, None),
    (DPMSolverMultistepScheduler, dict(SD, algorithm_type="dpmsolver", final_sigmas_type="sigma_min",
                                       solver_type="heun", prediction_type="v_prediction"), 10, None, 1e-6, None),
    (DPMSolverMultistepScheduler, dict(SD, prediction_type="sample", use_lu_lambdas=True), 25, None, 2e-6, 5e-6),
    (DPMSolverMultistepScheduler, dict(SD, algorithm_type="sde-dpmsolver++"), 25, "variance_noise", 1e-6, 5e-6),
    (DPMSolverMultistepScheduler, dict(SD, algorithm_type="sde-dpmsolver++", solver_order=3,
                                       solver_type="heun", use_karras_sigmas=True), 10, "variance_noise", 1e-6, None),
]


@pytest.mark.parametrize("cls,kw,n,noise_kw,tol,tol_own", RUNS,
                         ids=[f"{c.__name__[:5]}-{i}" for i, (c, *_) in enumerate(RUNS)])
def test_run_jit_matches_diffusers(cls, kw, n, noise_kw, tol, tol_own):
    """Every step of a whole run through one compiled step function, with diffusers' tables injected
    (and, where ``tol_own`` is given, with jaxnn's own tables)."""
    worst, worst_in, traces = run_pair(cls, kw, n, inject=True, jit=True, noise_kw=noise_kw)
    assert traces == 1  # one compilation for the whole run
    assert worst <= tol, worst
    assert worst_in <= tol, worst_in
    if tol_own is not None:
        worst, _, _ = run_pair(cls, kw, n, inject=False, jit=True, noise_kw=noise_kw)
        assert worst <= tol_own, worst


@pytest.mark.parametrize("cls,kw,n,noise_kw", [RUNS[i][:4] for i in (0, 3, 6, 11)],
                         ids=["euler", "euler-zsnr", "ancestral", "dpm3"])
def test_run_eager_matches_diffusers(cls, kw, n, noise_kw):
    worst, worst_in, _ = run_pair(cls, kw, n, inject=True, jit=False, noise_kw=noise_kw)
    assert worst <= 1e-6 and worst_in <= 1e-6, (worst, worst_in)


@pytest.mark.parametrize("churn,jit", [(dict(s_churn=0.5), False),
                                       (dict(s_churn=10.0, s_tmin=0.5, s_tmax=5.0, s_noise=1.003), True)])
def test_euler_churn_matches_diffusers(churn, jit):
    """Karras' churn (noise where s_tmin <= sigma <= s_tmax, chosen from the traced sigma under jit),
    the same noise handed to both."""
    worst, _, _ = run_pair(EulerDiscreteScheduler, SD, 25, inject=True, jit=jit, step_kwargs=churn,
                           noise_kw="noise")
    assert worst <= 1e-6, worst


def test_rng_noise_paths():
    """``rng`` draws ``jax.random.normal(rng, shape)``: the same as passing that array as noise; the
    pipeline's ``fold_in(key, i)`` under one jitted function."""
    x = jnp.asarray(np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32))
    key = jax.random.key(3)
    z = jax.random.normal(key, SHAPE)
    ea = EulerAncestralDiscreteScheduler(**SD)
    st = ea.set_timesteps(5)
    a = ea.step(st, x, st.timesteps[0], x, rng=key).prev_sample
    b = ea.step(st, x, st.timesteps[0], x, noise=z).prev_sample
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    eu = EulerDiscreteScheduler(**SD)
    st = eu.set_timesteps(5)
    a = eu.step(st, x, st.timesteps[0], x, s_churn=1.0, rng=key).prev_sample
    b = eu.step(st, x, st.timesteps[0], x, s_churn=1.0, noise=z).prev_sample
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    dpm = DPMSolverMultistepScheduler(**SD, algorithm_type="sde-dpmsolver++")
    st = dpm.set_timesteps(3, shape=SHAPE)
    step = jax.jit(lambda state, latents, i, key: dpm.step(state, latents * 0.1, state.timesteps[i], latents,
                                                            rng=jax.random.fold_in(key, i), return_dict=False))
    r1, s1 = step(st, x, jnp.int32(1), key)
    r2, _ = step(st, x, jnp.int32(1), jax.random.key(4))
    ref, _ = dpm.step(st, x * 0.1, st.timesteps[1], x, variance_noise=jax.random.normal(jax.random.fold_in(key, 1),
                                                                                         SHAPE), return_dict=False)
    np.testing.assert_allclose(np.asarray(r1), np.asarray(ref), rtol=1e-6, atol=1e-6)
    assert not np.allclose(np.asarray(r1), np.asarray(r2))


def test_dpm_history_without_shape():
    """Without ``shape`` the history is created at the first step; the numbers are the same."""
    j = DPMSolverMultistepScheduler(**SD, solver_order=3)
    g = np.random.default_rng(2)
    outs = [jnp.asarray(g.standard_normal(SHAPE).astype(np.float32)) for _ in range(4)]
    xa = xb = jnp.asarray(g.standard_normal(SHAPE).astype(np.float32))
    sa, sb = j.set_timesteps(4, shape=SHAPE), j.set_timesteps(4)
    for i in range(4):
        xa, sa = j.step(sa, outs[i], sa.timesteps[i], xa, return_dict=False)
        xb, sb = j.step(sb, outs[i], sb.timesteps[i], xb, return_dict=False)
    np.testing.assert_array_equal(np.asarray(xa), np.asarray(xb))
    assert sa.model_outputs.shape == (3, *SHAPE) and int(sa.lower_order_nums) == 3


def test_step_outputs_and_return_dict():
    x = jnp.ones(SHAPE)
    for cls, kw in ((EulerDiscreteScheduler, {}), (EulerAncestralDiscreteScheduler, dict(noise=x)),
                    (DPMSolverMultistepScheduler, {})):
        j = cls(**SD)
        st = j.set_timesteps(4, shape=SHAPE)
        out = j.step(st, x * 0.5, st.timesteps[0], x, **kw)
        prev, st2 = j.step(st, x * 0.5, st.timesteps[0], x, return_dict=False, **kw)
        np.testing.assert_array_equal(np.asarray(out.prev_sample), np.asarray(prev))
        assert int(st2.step_index) == 1 and int(out.state.step_index) == 1
        assert (out.pred_original_sample is None) == (cls is DPMSolverMultistepScheduler)
        b = j.step(st, (x * 0.5).astype(jnp.bfloat16), st.timesteps[0], x, **kw).prev_sample
        assert b.dtype == jnp.bfloat16  # diffusers returns the model output's dtype


# ----------------------------------------------------------------------------------------- add_noise
@pytest.mark.parametrize("cls", [EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
                                 DPMSolverMultistepScheduler])
def test_add_noise_matches_diffusers(cls):
    kw = dict(SD) if cls is EulerAncestralDiscreteScheduler else dict(SD, use_karras_sigmas=True)
    t, j = torch_scheduler(cls, **kw), cls(**kw)
    g = np.random.default_rng(5)
    x, z = (g.standard_normal((3, 4, 4, 4)).astype(np.float32) for _ in range(2))
    if cls is not DPMSolverMultistepScheduler:  # before set_timesteps: the training schedule
        ts = np.array([999.0, 500.0, 3.0], np.float32)
        ref = t.add_noise(torch.tensor(x), torch.tensor(z), torch.tensor(ts)).numpy()
        np.testing.assert_allclose(np.asarray(j.add_noise(x, z, ts)), ref, rtol=1e-6, atol=1e-6)
    t.set_timesteps(10)
    st = j.set_timesteps(10)
    pick = np.array([0, 4, 9])  # the same positions (Karras' float timesteps differ in the last bits)
    ref = t.add_noise(torch.tensor(x), torch.tensor(z), t.timesteps[pick]).numpy()
    got = np.asarray(j.add_noise(x, z, st.timesteps[pick], state=st))
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("cls", [EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
                                 DPMSolverMultistepScheduler])
def test_pretrained_round_trip_with_diffusers(cls, tmp_path):
    kw = dict(SD, timestep_spacing="trailing", prediction_type="v_prediction")
    if cls is not EulerAncestralDiscreteScheduler:
        kw["use_karras_sigmas"] = True
    torch_scheduler(cls, **kw).save_pretrained(tmp_path / "a" / "scheduler")
    j = cls.from_pretrained(tmp_path / "a", subfolder="scheduler")
    assert j.config.prediction_type == "v_prediction" and j.config.timestep_spacing == "trailing"
    j.save_pretrained(tmp_path / "b")
    saved = json.loads((tmp_path / "b" / "scheduler_config.json").read_text())
    assert saved["_class_name"] == cls.__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = PAIRS[cls].from_pretrained(tmp_path / "b")
    ours = {k: v for k, v in j.config.to_dict().items() if k[0] != "_"}
    assert dict(t.config) == {**dict(t.config), **ours}
    t.set_timesteps(12)
    np.testing.assert_allclose(np.asarray(j.set_timesteps(12).timesteps), t.timesteps.numpy(), rtol=1e-6)


# SD 1.5's scheduler/scheduler_config.json as released (written by diffusers 0.6: no timestep_spacing).
SD15_PNDM = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
             "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
             "clip_sample": False}


def test_from_config_of_pndm_config(tmp_path):
    """SD 1.5's PNDM configuration builds a DPM-Solver / Euler (how pipelines swap schedulers): PNDM-only
    keys are warned about and not used, but kept in the config (for the next swap), as diffusers does."""
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps(SD15_PNDM))
    for cls, extra in ((DPMSolverMultistepScheduler, {}), (EulerDiscreteScheduler, dict(use_karras_sigmas=True)),
                       (EulerAncestralDiscreteScheduler, {})):
        with no_warning():  # another scheduler's options pass silently
            j = cls.from_config(path, **extra)
        assert j.config.skip_prk_steps is True and j.config.beta_schedule == "scaled_linear"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = PAIRS[cls].from_config(PAIRS[cls].load_config(str(path)), **extra)
        ours = {k: v for k, v in j.config.to_dict().items() if k[0] != "_"}
        assert {k: t.config[k] for k in ours} == ours
        t.set_timesteps(20)
        np.testing.assert_allclose(np.asarray(j.set_timesteps(20).timesteps), t.timesteps.numpy(), rtol=1e-6)
    pndm = TorchPNDM.from_config(SD15_PNDM)  # diffusers' own object: its config is a mapping jaxnn reads
    with no_warning():  # another scheduler's options pass silently
        e = EulerDiscreteScheduler.from_config(pndm.config, use_karras_sigmas=True)
    assert e.config.use_karras_sigmas is True and e.config.steps_offset == 1


@pytest.mark.parametrize("spacing", ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"])
def test_dpm_from_euler_config_reads_its_sigma_range(spacing):
    """diffusers keeps an Euler config's ``sigma_min`` / ``sigma_max`` in the DPM-Solver built from it
    and its Karras / exponential / beta spacings read them from the config (jaxnn spaced the full
    training range)."""
    kw = dict(SD, sigma_min=0.1, sigma_max=10.0, **{spacing: True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = TorchDPM.from_config(TorchEuler(**kw).config)
        ref.set_timesteps(10)
        ours = DPMSolverMultistepScheduler.from_config(EulerDiscreteScheduler(**kw).config).set_timesteps(10)
    np.testing.assert_allclose(np.asarray(ours.sigmas), ref.sigmas.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ours.timesteps), ref.timesteps.numpy())


def test_from_config_of_unipc_config_reads_bh2_as_midpoint():
    unipc = TorchUniPC(**SD, solver_type="bh2", predict_x0=True)  # UniPC's own option, given: warned
    with pytest.warns(UserWarning, match="predict_x0"):
        j = DPMSolverMultistepScheduler.from_config(unipc.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = TorchDPM.from_config(unipc.config)
    assert j.config.solver_type == t.config.solver_type == "midpoint"
    j2 = DPMSolverMultistepScheduler(**SD, algorithm_type="deis")
    assert j2.config.algorithm_type == "dpmsolver++"


@pytest.mark.parametrize("cls,kw,fragment", [
    (EulerDiscreteScheduler, dict(interpolation_type="log_linear"), "interpolation_type='log_linear'"),
    (EulerDiscreteScheduler, dict(timestep_type="continuous"), "timestep_type='continuous'"),
    (EulerDiscreteScheduler, dict(beta_schedule="cosine"), "beta_schedule='cosine'"),
    (EulerAncestralDiscreteScheduler, dict(prediction_type="sample"), "prediction_type='sample'"),
    (DPMSolverMultistepScheduler, dict(thresholding=True), "thresholding=True"),
    (DPMSolverMultistepScheduler, dict(variance_type="learned_range"), "variance_type='learned_range'"),
    (DPMSolverMultistepScheduler, dict(algorithm_type="sde-dpmsolver", final_sigmas_type="sigma_min"),
     "algorithm_type='sde-dpmsolver'"),
    (DPMSolverMultistepScheduler, dict(prediction_type="flow_prediction"), "prediction_type='flow_prediction'"),
    (DPMSolverMultistepScheduler, dict(use_flow_sigmas=True), "use_flow_sigmas=True"),
    (DPMSolverMultistepScheduler, dict(use_dynamic_shifting=True), "use_dynamic_shifting=True"),
    (DPMSolverMultistepScheduler, dict(solver_order=4), "solver_order=4"),
])
def test_not_implemented(cls, kw, fragment):
    with pytest.raises(NotImplementedError, match=fragment.replace("(", r"\(")):
        cls(**kw)


def test_bad_input():
    x = jnp.ones(SHAPE)
    with pytest.raises(ValueError, match="only one of"):
        EulerDiscreteScheduler(use_karras_sigmas=True, use_beta_sigmas=True)
    with pytest.raises(ValueError, match="only one of"):
        DPMSolverMultistepScheduler(use_karras_sigmas=True, use_exponential_sigmas=True)
    with pytest.raises(ValueError, match="final_sigmas_type='zero'"):
        DPMSolverMultistepScheduler(algorithm_type="dpmsolver")
    eu = EulerDiscreteScheduler(**SD)
    with pytest.raises(TypeError, match="num_inference_steps"):
        eu.set_timesteps(2.5)
    with pytest.raises(ValueError, match="num_inference_steps"):
        eu.set_timesteps(0)
    st = eu.set_timesteps(4)
    with pytest.raises(ValueError, match="Python int"):
        eu.step(st, x, 999, x)
    with pytest.raises(ValueError, match="integer dtype"):
        eu.step(st, x, jnp.int32(999), x)
    with pytest.raises(TypeError, match="s_churn"):
        eu.step(st, x, st.timesteps[0], x, s_churn="1")
    with pytest.raises(ValueError, match="pass `rng`"):
        eu.step(st, x, st.timesteps[0], x, s_churn=1.0)
    with pytest.raises(ValueError, match=r"`timesteps` \[5.0\] are not in the schedule"):
        eu.add_noise(x, x, jnp.array([5.0, 999.0]), state=st)
    done = st.replace(step_index=jnp.int32(4))
    with pytest.raises(ValueError, match=r"`step_index` \(=4\) is outside the schedule of 4 steps"):
        eu.step(done, x, st.timesteps[0], x)
    with pytest.raises(NotImplementedError, match="get_velocity"):
        eu.get_velocity(x, x, st.timesteps[:2])
    ea = EulerAncestralDiscreteScheduler(**SD)
    st = ea.set_timesteps(4)
    with pytest.raises(ValueError, match="pass `rng`"):
        ea.step(st, x, st.timesteps[0], x)
    with pytest.raises(ValueError, match="either `rng` or `noise`"):
        ea.step(st, x, st.timesteps[0], x, rng=jax.random.key(0), noise=x)
    with pytest.raises(ValueError, match=r"`noise` has shape \(2, 4\)"):
        ea.step(st, x, st.timesteps[0], x, noise=jnp.ones((2, 4)))
    dpm = DPMSolverMultistepScheduler(**SD)
    with pytest.raises(TypeError, match="`shape` must be a tuple"):
        dpm.set_timesteps(4, shape=8)
    st = dpm.set_timesteps(4, shape=(1, 4, 8, 8))
    with pytest.raises(ValueError, match="history was made for"):
        dpm.step(st, x, st.timesteps[0], x)
    with pytest.raises(ValueError, match="`model_output` has shape"):
        dpm.step(st, x[:1], st.timesteps[0], x)
    with pytest.raises(ValueError, match=r"`step_index` \(=4\)"):
        dpm.step(st.replace(step_index=jnp.int32(4)), x[:1], st.timesteps[0], x[:1])
    with pytest.raises(ValueError, match="pass `state`"):
        dpm.add_noise(x, x, st.timesteps[:2])
    sde = DPMSolverMultistepScheduler(**SD, algorithm_type="sde-dpmsolver++")
    st = sde.set_timesteps(4, shape=SHAPE)
    with pytest.raises(ValueError, match="pass `rng`"):
        sde.step(st, x, st.timesteps[0], x)
    with pytest.raises(ValueError, match="`variance_noise` has shape"):
        sde.step(st, x, st.timesteps[0], x, variance_noise=jnp.ones((3,)))
