"""jaxnn.models' DDPM-family schedulers (DDPMScheduler, DDIMScheduler, PNDMScheduler) against
diffusers 0.42's (torch, CPU).

Tables (betas, alphas_cumprod), timesteps for every spacing and offset, add_noise / get_velocity,
and whole sampling runs: the same random model outputs (``base[i] + 0.5 * sample``, so that each
output depends on the sample as a model's does; both terms exact in float32) and the same noise
(drawn with torch generators, passed to jaxnn as ``variance_noise``) are fed to diffusers and
jaxnn, every ``prev_sample`` / ``pred_original_sample`` compared at 1e-6 relative to the run's
scale. Each run is done eagerly (Python-int timesteps) and jitted: ONE compiled function
``(state, sample, i) -> (prev_sample, state)`` with ``t = state.timesteps[i]`` called for every i.
"""

import json
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler as TorchDDIM
from diffusers import DDPMScheduler as TorchDDPM
from diffusers import EulerDiscreteScheduler as TorchEuler
from diffusers import PNDMScheduler as TorchPNDM
from torch_ref import no_warning

from jaxnn.models import DDIMScheduler, DDPMScheduler, PNDMScheduler, Scheduler, SchedulerOutput
from jaxnn.models._scheduling import _linspace_f32, betas_for_alpha_bar

pytestmark = pytest.mark.xdist_group("sched-ddpm")

SHAPE = (2, 3, 4, 4)
SD15 = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
            clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
SD2V = dict(SD15, prediction_type="v_prediction")
COS = dict(beta_schedule="squaredcos_cap_v2")
ZSNR = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=True,
            timestep_spacing="trailing", prediction_type="v_prediction", clip_sample=False)
TOL = 1e-6


def options(cls, cfg):
    """The options of ``cfg`` that the jaxnn class knows (the diffusers class is built from the same)."""
    return {k: v for k, v in cfg.items() if k in cls._defaults}


def run_scale_err(got, ref):
    """max |got - ref| / max |ref| over a whole run (relative to the run's scale: an element that
    cancels to ~0 is not held to an elementwise relative tolerance)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def run_inputs(n, seed, channels=SHAPE[1]):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn((n, SHAPE[0], channels) + SHAPE[2:], generator=g)
    x = torch.randn(SHAPE, generator=g)
    return base, x


def noise_for(i):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(1000 + i))


def model_output(base_i, x):
    """``base[i] + 0.5 * x`` on the first C channels, ``base[i]`` on the rest (learned variances)."""
    c = x.shape[1]
    if base_i.shape[1] == c:
        return base_i + 0.5 * x
    if isinstance(x, torch.Tensor):
        return torch.cat([base_i[:, :c] + 0.5 * x, base_i[:, c:]], 1)
    return jnp.concatenate([base_i[:, :c] + 0.5 * x, base_i[:, c:]], 1)


def diffusers_run(ds, base, x, *, noisy=True, step_kw=None):
    """diffusers' sampling loop; returns the stacked prev_samples and, per step, the
    pred_original_sample with the scale it is compared at (see ``compare_x0``)."""
    prev, x0 = [], []
    for i, t in enumerate(ds.timesteps):
        kw = dict(step_kw or {})
        if noisy:
            kw["generator"] = torch.Generator().manual_seed(1000 + i)
        out = ds.step(model_output(base[i], x), t, x, **kw)
        p = getattr(out, "pred_original_sample", None)
        if p is None:
            x0.append(None)
        else:
            scale = float(p.abs().max())
            if ds.config.prediction_type == "epsilon":
                scale = max(scale, float(x.abs().max()) / float(ds.alphas_cumprod[t].sqrt()))
            x0.append((p.numpy(), scale))
        x = out.prev_sample
        prev.append(x.numpy())
    return np.stack(prev), x0


def jaxnn_run(s, state, base, x, *, jit, noisy=True, step_kw=None):
    """jaxnn's loop: eager (Python-int timesteps) or ONE jitted step over a traced index."""
    base, x = jnp.asarray(base.numpy()), jnp.asarray(x.numpy())
    n = int(state.timesteps.shape[0])
    noise = jnp.asarray(np.stack([noise_for(i).numpy() for i in range(n)])) if noisy else None
    kw = dict(step_kw or {})

    def one(state, x, i, t):
        extra = dict(kw, variance_noise=noise[i]) if noisy else kw
        out = s.step(state, model_output(base[i], x), t, x, **extra)
        assert isinstance(out, SchedulerOutput)
        x0 = out.pred_original_sample if out.pred_original_sample is not None else jnp.zeros_like(x)
        return out.prev_sample, out.state, x0

    traces = []  # Python traces of the jitted step: one for the whole run (not jit's private cache
    # counter, which stays 0 where JAX's C++ dispatch path is not taken)

    def traced(state, x, i):
        traces.append(1)
        return one(state, x, i, state.timesteps[i])

    if jit:
        f = jax.jit(traced)
        step = lambda state, x, i: f(state, x, jnp.int32(i))  # noqa: E731
    else:
        step = lambda state, x, i: one(state, x, i, int(state.timesteps[i]))  # noqa: E731
    prev, x0 = [], []
    for i in range(n):
        x, state, p = step(state, x, i)
        prev.append(np.asarray(x))
        x0.append(np.asarray(p))
    if jit:
        assert len(traces) == 1
    return np.stack(prev), x0, state


def compare_x0(got, ref):
    """max over the steps of |got - ref| / scale for pred_original_sample. For epsilon prediction
    :math:`\\hat x_0 = (x - \\sqrt{1-\\bar\\alpha}\\,\\epsilon)/\\sqrt{\\bar\\alpha}` cancels terms of size
    :math:`|x|/\\sqrt{\\bar\\alpha}` (160x :math:`|\\hat x_0|` at t=999 of the linear schedule when
    clip_sample bounds it to 1), and torch's float32 sqrt is not correctly rounded on AVX-512 (1 ulp):
    the scale is then the size of those terms, i.e. the error is relative to the inputs' rounding."""
    errs = [float(np.max(np.abs(np.asarray(g, np.float64) - r[0])) / r[1])
            for g, r in zip(got, ref, strict=True) if r is not None]
    return max(errs) if errs else 0.0


# ---------------------------------------------------------------------------------------- tables
@pytest.mark.parametrize("cfg", [{}, SD15, COS, dict(beta_start=0.001, beta_end=0.03, num_train_timesteps=500),
                                 dict(trained_betas=np.linspace(1e-4, 0.03, 50).tolist(), num_train_timesteps=50)],
                         ids=["linear", "sd15", "squaredcos", "linear500", "trained"])
def test_tables(cfg):
    """betas and alphas_cumprod: torch's linspace is 1 ulp off the correctly rounded value in places
    (which places depends on the CPU's vector width), squared in ``scaled_linear``: <= 4e-7 relative;
    squaredcos and trained betas are computed in float64 and rounded once: equal."""
    d, j = TorchDDPM(**options(DDPMScheduler, cfg)), DDPMScheduler(**options(DDPMScheduler, cfg))
    exact = "beta_schedule" in cfg and cfg["beta_schedule"] == "squaredcos_cap_v2" or "trained_betas" in cfg
    for name in ("betas", "alphas", "alphas_cumprod"):
        ref, got = getattr(d, name).numpy(), getattr(j, name)
        assert got.dtype == np.float32 and got.shape == ref.shape
        if exact:
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_allclose(got, ref, rtol=4e-7, atol=0)


@pytest.mark.parametrize("kind", ["cosine", "exp", "laplace"])
def test_betas_for_alpha_bar(kind):
    from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar as torch_betas_for_alpha_bar

    for n, max_beta in ((1000, 0.999), (37, 0.5)):
        ref = torch_betas_for_alpha_bar(n, max_beta, alpha_transform_type=kind).numpy()
        np.testing.assert_array_equal(betas_for_alpha_bar(n, max_beta, alpha_transform_type=kind), ref)


def test_linspace_within_one_ulp():
    """The float32 linspace jaxnn uses is the correctly rounded one; torch's is at most 1 ulp away."""
    for a, b in [(0.0001, 0.02), (0.00085 ** 0.5, 0.012 ** 0.5)]:
        ref = torch.linspace(a, b, 1000, dtype=torch.float32).numpy()
        got = _linspace_f32(a, b, 1000)
        exact = np.linspace(a, b, 1000, dtype=np.float64)
        assert np.max(np.abs(got.view(np.int32) - ref.view(np.int32))) <= 1
        assert np.all(np.abs(got - exact) <= np.abs(ref.astype(np.float64) - exact))


def test_zero_snr_tables():
    """rescale_betas_zero_snr: alphas_cumprod ends at exactly 0; the tables differ from diffusers' only
    through torch's float32 linspace and sqrt (each 1 ulp from the correctly rounded value on AVX-512
    CPUs), amplified in betas by ``1 - alphas`` cancelling: alphas_cumprod within 6e-7 absolute (a few
    ulps of values <= 1; 3.6e-7 measured on AVX-512)."""
    d, j = TorchDDPM(**options(DDPMScheduler, ZSNR)), DDPMScheduler(**options(DDPMScheduler, ZSNR))
    assert j.alphas_cumprod[-1] == 0 and d.alphas_cumprod[-1].item() == 0
    np.testing.assert_allclose(j.alphas_cumprod, d.alphas_cumprod.numpy(), rtol=0, atol=6e-7)
    np.testing.assert_allclose(np.sqrt(j.alphas_cumprod), np.sqrt(d.alphas_cumprod.numpy()), rtol=0, atol=6e-7)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("cls,tcls", [(DDPMScheduler, TorchDDPM), (DDIMScheduler, TorchDDIM)], ids=["ddpm", "ddim"])
def test_timesteps(cls, tcls, spacing, offset):
    for train in (1000, 17):
        for n in sorted({1, 3, 7, 10, 25, 50, train}):
            if n > train:
                continue
            d = tcls(num_train_timesteps=train, timestep_spacing=spacing, steps_offset=offset)
            d.set_timesteps(n)
            state = cls(num_train_timesteps=train, timestep_spacing=spacing, steps_offset=offset).set_timesteps(n)
            np.testing.assert_array_equal(np.asarray(state.timesteps), d.timesteps.numpy())
            assert jnp.issubdtype(state.timesteps.dtype, jnp.integer)
            assert state.num_inference_steps == n and state.init_noise_sigma == d.init_noise_sigma == 1.0


def test_ddpm_custom_timesteps():
    ts = [999, 800, 601, 300, 299, 10, 0]
    d = TorchDDPM(**options(DDPMScheduler, SD15))
    d.set_timesteps(timesteps=ts)
    s = DDPMScheduler(**options(DDPMScheduler, SD15))
    state = s.set_timesteps(timesteps=ts)
    np.testing.assert_array_equal(np.asarray(state.timesteps), d.timesteps.numpy())
    base, x = run_inputs(len(ts), 5)
    ref, ref_x0 = diffusers_run(d, base, x)
    for jit in (False, True):
        got, got_x0, _ = jaxnn_run(s, state, base, x, jit=jit)
        assert run_scale_err(got, ref) <= TOL and compare_x0(got_x0, ref_x0) <= TOL


@pytest.mark.parametrize("cls,tcls", [(DDPMScheduler, TorchDDPM), (DDIMScheduler, TorchDDIM)], ids=["ddpm", "ddim"])
@pytest.mark.parametrize("cfg", [SD15, COS, {}], ids=["sd15", "squaredcos", "default"])
def test_add_noise_get_velocity(cls, tcls, cfg):
    d, j = tcls(**options(cls, cfg)), cls(**options(cls, cfg))
    g = torch.Generator().manual_seed(3)
    x0, noise = torch.randn((4, 3, 5, 5), generator=g), torch.randn((4, 3, 5, 5), generator=g)
    t = torch.tensor([0, 1, 500, 999])
    for name in ("add_noise", "get_velocity"):
        ref = getattr(d, name)(x0, noise, t).numpy()
        got = np.asarray(getattr(j, name)(x0.numpy(), noise.numpy(), t.numpy()))
        np.testing.assert_allclose(got, ref, rtol=TOL, atol=TOL * np.abs(ref).max())
        got_jit = np.asarray(jax.jit(getattr(j, name))(x0.numpy(), noise.numpy(), t.numpy()))
        np.testing.assert_allclose(got_jit, ref, rtol=TOL, atol=TOL * np.abs(ref).max())
    bf = np.asarray(j.add_noise(jnp.asarray(x0.numpy(), jnp.bfloat16), jnp.asarray(noise.numpy(), jnp.bfloat16),
                                t.numpy()).astype(jnp.float32))
    ref_bf = d.add_noise(x0.bfloat16(), noise.bfloat16(), t).float().numpy()
    np.testing.assert_allclose(bf, ref_bf, rtol=2 ** -7, atol=2 ** -7)


@pytest.mark.parametrize("cls", [DDPMScheduler, DDIMScheduler, PNDMScheduler])
def test_add_noise_checks_timesteps(cls):
    s = cls(num_train_timesteps=100)
    x = jnp.ones((2, 3, 4, 4))
    with pytest.raises(TypeError, match="`timesteps` must be integers"):
        s.add_noise(x, x, jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"`timesteps` must lie in \[0, num_train_timesteps=100\), got \[3, 100\]"):
        s.get_velocity(x, x, np.array([3, 100]))
    with pytest.raises(ValueError, match=r"one timestep per sample .* shape \(3,\)"):
        s.add_noise(x, x, np.array([1, 2, 3]))
    one = np.asarray(s.add_noise(x, 2 * x, np.array([7])))
    np.testing.assert_array_equal(one, np.asarray(s.add_noise(x, 2 * x, np.array([7, 7]))))
    traced = jax.jit(lambda t: s.add_noise(x, 2 * x, t))(jnp.array([7, 7]))
    np.testing.assert_allclose(np.asarray(traced), one, rtol=1e-7)


# ------------------------------------------------------------------------------------- DDPM runs
DDPM_CASES = {
    "sd15": SD15,
    "sd2-v": SD2V,
    "default-clip": {},
    "sample-pred": dict(prediction_type="sample", clip_sample_range=0.8),
    "squaredcos-trailing": dict(COS, timestep_spacing="trailing"),
    "linspace": dict(SD15, timestep_spacing="linspace"),
    "fixed_small_log": dict(SD15, variance_type="fixed_small_log"),
    "fixed_large": dict(SD15, variance_type="fixed_large"),
    "learned": dict(SD15, variance_type="learned"),
    "learned_range": dict(SD15, variance_type="learned_range"),
}


def learned_base(base, variance_type):
    """Model outputs with a second half of channels: a positive variance for ``learned``, a fraction
    in [-1, 1] for ``learned_range``."""
    g = torch.Generator().manual_seed(11)
    v = torch.rand(base.shape, generator=g)
    v = v * 0.02 + 1e-4 if variance_type == "learned" else v * 2 - 1
    return torch.cat([base, v], 2)


@pytest.mark.parametrize("case", list(DDPM_CASES))
def test_ddpm_run(case):
    cfg = options(DDPMScheduler, DDPM_CASES[case])
    n = 25
    d, s = TorchDDPM(**cfg), DDPMScheduler(**cfg)
    d.set_timesteps(n)
    state = s.set_timesteps(n)
    base, x = run_inputs(n, 1)
    if cfg.get("variance_type", "").startswith("learned"):
        base = learned_base(base, cfg["variance_type"])  # (n, B, 2C, H, W)
    ref, ref_x0 = diffusers_run(d, base, x)
    assert np.all(np.isfinite(ref))
    for jit in (False, True):
        got, got_x0, _ = jaxnn_run(s, state, base, x, jit=jit)
        err, err_x0 = run_scale_err(got, ref), compare_x0(got_x0, ref_x0)
        assert err <= TOL and err_x0 <= TOL, (case, jit, err, err_x0)


def test_ddpm_fixed_large_log():
    """diffusers 0.42's ``fixed_large_log`` takes sqrt(log beta) (NaN); jaxnn's is GLIDE's max-log
    variance, the standard deviation sqrt(beta): the same run as ``fixed_large``."""
    n = 10
    d = TorchDDPM(**options(DDPMScheduler, dict(SD15, variance_type="fixed_large_log")))
    d.set_timesteps(n)
    base, x = run_inputs(n, 2)
    assert np.isnan(diffusers_run(d, base, x)[0][0]).all()
    d_large = TorchDDPM(**options(DDPMScheduler, dict(SD15, variance_type="fixed_large")))
    d_large.set_timesteps(n)
    ref, _ = diffusers_run(d_large, base, x)
    s = DDPMScheduler(**options(DDPMScheduler, dict(SD15, variance_type="fixed_large_log")))
    got, _, _ = jaxnn_run(s, s.set_timesteps(n), base, x, jit=True)
    assert run_scale_err(got, ref) <= TOL


def test_ddpm_zero_snr_run():
    """rescale_betas_zero_snr + trailing + v_prediction. torch's float32 linspace and sqrt are 1 ulp
    off the correctly rounded values on AVX-512 (see test_zero_snr_tables) and the rescaling's
    cancellations amplify that, which can put 25-step runs over 1e-6 apart (1.7e-6 measured for a
    linspace DDIM run; 5.8e-7 here): with jaxnn's own tables the run is held at 3e-6, and with
    diffusers' alphas_cumprod copied into the jaxnn scheduler (the same tables) the step maths at
    1e-6."""
    cfg = options(DDPMScheduler, ZSNR)
    n = 25
    d, s = TorchDDPM(**cfg), DDPMScheduler(**cfg)
    d.set_timesteps(n)
    state = s.set_timesteps(n)
    np.testing.assert_array_equal(np.asarray(state.timesteps), d.timesteps.numpy())
    base, x = run_inputs(n, 4)
    ref, ref_x0 = diffusers_run(d, base, x)
    got, _, _ = jaxnn_run(s, state, base, x, jit=True)
    assert run_scale_err(got, ref) <= 3e-6
    s.alphas_cumprod = d.alphas_cumprod.numpy().copy()
    for jit in (False, True):
        got, got_x0, _ = jaxnn_run(s, state, base, x, jit=jit)
        assert run_scale_err(got, ref) <= TOL and compare_x0(got_x0, ref_x0) <= TOL


def test_ddpm_rng_noise():
    """Noise from ``rng``: jax.random.normal(rng) is the noise, so passing it as variance_noise
    gives the same step; t == 0 adds none."""
    s = DDPMScheduler(**options(DDPMScheduler, SD15))
    state = s.set_timesteps(10)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(SHAPE, dtype=np.float32))
    key = jax.random.key(7)
    a = s.step(state, x * 0.3, state.timesteps[0], x, rng=key).prev_sample
    b = s.step(state, x * 0.3, state.timesteps[0], x, variance_noise=jax.random.normal(key, SHAPE)).prev_sample
    c = s.step(state, x * 0.3, state.timesteps[0], x, variance_noise=jnp.zeros(SHAPE)).prev_sample
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.max(np.abs(np.asarray(a) - np.asarray(c))) > 1e-3
    s0 = DDPMScheduler(**options(DDPMScheduler, dict(SD15, steps_offset=0)))
    st0 = s0.set_timesteps(10)
    assert int(st0.timesteps[-1]) == 0
    a0 = s0.step(st0, x * 0.3, 0, x, rng=key)
    b0 = s0.step(st0, x * 0.3, 0, x, variance_noise=jnp.zeros(SHAPE), return_dict=False)
    assert isinstance(b0, tuple) and b0[1] is st0
    np.testing.assert_array_equal(np.asarray(a0.prev_sample), np.asarray(b0[0]))


# ------------------------------------------------------------------------------------- DDIM runs
DDIM_CASES = {
    "sd15": (SD15, {}),
    "sd2-v": (SD2V, {}),
    "default-clip": ({}, {}),
    "eta1-sd15": (SD15, dict(eta=1.0)),
    "eta0.5-clip-clipped-output": (dict(clip_sample_range=0.5), dict(eta=0.5, use_clipped_model_output=True)),
    "sample-pred-trailing": (dict(prediction_type="sample", timestep_spacing="trailing"), dict(eta=0.3)),
    "squaredcos-linspace": (dict(COS, timestep_spacing="linspace", set_alpha_to_one=False), {}),
}


@pytest.mark.parametrize("case", list(DDIM_CASES))
def test_ddim_run(case):
    cfg, step_kw = DDIM_CASES[case]
    cfg = options(DDIMScheduler, cfg)
    n = 25
    d, s = TorchDDIM(**cfg), DDIMScheduler(**cfg)
    d.set_timesteps(n)
    state = s.set_timesteps(n)
    base, x = run_inputs(n, 6)
    noisy = step_kw.get("eta", 0) > 0
    ref, ref_x0 = diffusers_run(d, base, x, noisy=noisy, step_kw=step_kw)
    for jit in (False, True):
        got, got_x0, _ = jaxnn_run(s, state, base, x, jit=jit, noisy=noisy, step_kw=step_kw)
        err, err_x0 = run_scale_err(got, ref), compare_x0(got_x0, ref_x0)
        assert err <= TOL and err_x0 <= TOL, (case, jit, err, err_x0)


@pytest.mark.parametrize("spacing", ["trailing", "linspace"])
def test_ddim_zero_snr_run(spacing):
    """As test_ddpm_zero_snr_run: own tables at 3e-6, diffusers' alphas_cumprod copied in at 1e-6."""
    cfg = options(DDIMScheduler, dict(ZSNR, timestep_spacing=spacing))
    n = 25
    d, s = TorchDDIM(**cfg), DDIMScheduler(**cfg)
    d.set_timesteps(n)
    state = s.set_timesteps(n)
    base, x = run_inputs(n, 8)
    ref, ref_x0 = diffusers_run(d, base, x, noisy=False)
    got, _, _ = jaxnn_run(s, state, base, x, jit=True, noisy=False)
    assert run_scale_err(got, ref) <= 3e-6
    s.alphas_cumprod = d.alphas_cumprod.numpy().copy()
    for jit in (False, True):
        got, got_x0, _ = jaxnn_run(s, state, base, x, jit=jit, noisy=False)
        assert run_scale_err(got, ref) <= TOL and compare_x0(got_x0, ref_x0) <= TOL


# ------------------------------------------------------------------------------------- PNDM runs
PNDM_CASES = {
    "sd15-plms": SD15,
    "sd15-prk": dict(SD15, skip_prk_steps=False),
    "sd2-v-trailing": dict(SD2V, timestep_spacing="trailing"),
    "default-prk": {},
    "linspace-alpha-one": dict(set_alpha_to_one=True, timestep_spacing="linspace"),
    "squaredcos-plms": dict(COS, skip_prk_steps=True),
}


def float64_copy(d):
    """A diffusers scheduler computing in float64 (its float32 tables, widened): the reference that
    both float32 implementations are measured against."""
    d.alphas_cumprod = d.alphas_cumprod.double()
    d.final_alpha_cumprod = d.final_alpha_cumprod.double()
    return d


@pytest.mark.parametrize("case", list(PNDM_CASES))
def test_pndm_run(case):
    """PLMS extrapolates with weights up to 55/24, which amplifies float32 rounding: over 26 steps
    of random model outputs diffusers' own float32 run is 2e-7 - 4e-7 from the same run in float64
    (diffusers' float32 tables widened), jaxnn's as close, and the two float32 runs are up to 1.1e-6
    apart. Both are held: jaxnn within 1e-6 of the float64 run (the exact answer for these tables)
    and within 1.5e-6 of diffusers' float32 run."""
    cfg = PNDM_CASES[case]
    cfg = options(PNDMScheduler, cfg)
    n = 25
    d, s = TorchPNDM(**cfg), PNDMScheduler(**cfg)
    d.set_timesteps(n)
    state = s.set_timesteps(n, shape=SHAPE)
    np.testing.assert_array_equal(np.asarray(state.timesteps), d.timesteps.numpy())
    calls = len(d.timesteps)
    base, x = run_inputs(calls, 9)
    ref, ref_x0 = diffusers_run(d, base, x, noisy=False)
    assert all(r is None for r in ref_x0)
    d64 = TorchPNDM(**cfg)
    d64.set_timesteps(n)
    ref64, _ = diffusers_run(float64_copy(d64), base.double(), x.double(), noisy=False)
    torch_err64 = run_scale_err(ref, ref64)
    for jit in (False, True):
        got, _, final = jaxnn_run(s, state, base, x, jit=jit, noisy=False)
        err, err64 = run_scale_err(got, ref), run_scale_err(got, ref64)
        assert err <= 1.5e-6 and err64 <= TOL and torch_err64 <= TOL, (case, jit, err, err64, torch_err64)
        assert int(final.counter) == calls == d.counter
        assert int(final.num_ets) == min(len(d.ets), 4)
        np.testing.assert_allclose(np.asarray(final.ets[-1]), d.ets[-1].numpy(), rtol=0,
                                   atol=1.5e-6 * float(d.ets[-1].abs().max()))


def test_pndm_timesteps():
    for cfg in (dict(SD15), dict(SD15, skip_prk_steps=False)):
        for spacing in ("leading", "trailing", "linspace"):
            for offset in (0, 1):
                for train, ns in ((1000, (1, 4, 7, 10, 25, 50, 1000)), (17, (4, 5, 17))):
                    kw = options(PNDMScheduler, dict(cfg, timestep_spacing=spacing, steps_offset=offset,
                                                     num_train_timesteps=train))
                    for n in ns:
                        if n < 4 and not kw["skip_prk_steps"]:
                            continue
                        d = TorchPNDM(**kw)
                        d.set_timesteps(n)
                        state = PNDMScheduler(**kw).set_timesteps(n)
                        np.testing.assert_array_equal(np.asarray(state.timesteps), d.timesteps.numpy())
                        assert state.prk_steps == len(d.prk_timesteps) and state.init_noise_sigma == 1.0


def test_pndm_history_created_at_first_step():
    """Without ``shape`` the first step makes the history: a jitted step compiles twice, then the
    states agree with those of a run started with ``shape``."""
    s = PNDMScheduler(**options(PNDMScheduler, SD15))
    state = s.set_timesteps(10)
    assert state.ets is None and state.cur_sample is None
    base, x = run_inputs(11, 3)
    got, _, _ = jaxnn_run(s, state, base, x, jit=False, noisy=False)
    ref, _, _ = jaxnn_run(s, s.set_timesteps(10, shape=SHAPE), base, x, jit=False, noisy=False)
    np.testing.assert_array_equal(got, ref)
    traces = []

    def step(st, x):
        traces.append(1)
        return s.step(st, x * 0.1, st.timesteps[st.counter], x, rng=jax.random.key(1), return_dict=False)

    f = jax.jit(step)
    xs, st = jnp.asarray(x.numpy()), state
    for _ in range(3):
        xs, st = f(st, xs)
    assert len(traces) == 2 and int(st.counter) == 3
    np.testing.assert_array_equal(np.asarray(s.scale_model_input(st, xs, 5)), np.asarray(xs))


def test_pndm_errors():
    with pytest.raises(NotImplementedError, match="prediction_type='sample'"):
        PNDMScheduler(prediction_type="sample")
    with pytest.raises(NotImplementedError, match="beta_schedule='sigmoid'"):
        PNDMScheduler(beta_schedule="sigmoid")
    s = PNDMScheduler()
    with pytest.raises(ValueError, match=r"`num_inference_steps` \(=3\) must be >= 4 when skip_prk_steps=False"):
        s.set_timesteps(3)
    with pytest.raises(ValueError, match=r"`num_inference_steps` \(=0\)"):
        s.set_timesteps(0)
    with pytest.raises(TypeError, match="`shape` must be a tuple"):
        s.set_timesteps(10, shape=(2, -1))
    state = s.set_timesteps(10, shape=SHAPE)
    x = jnp.zeros(SHAPE)
    with pytest.raises(ValueError, match="history was made for"):
        s.step(state, x[:1], 901, x[:1])
    with pytest.raises(ValueError, match="`model_output` has shape"):
        s.step(state, x[:1], 901, x)
    with pytest.raises(ValueError, match=r"`timestep` \(=-1\) must lie in \[0, num_train_timesteps=1000\)"):
        s.step(state, x, -1, x)
    with pytest.raises(TypeError, match="`timestep` must be an integer"):
        s.step(state, x, jnp.float32(901), x)
    with no_warning():  # another scheduler's options pass silently
        p = PNDMScheduler.from_config(dict(TorchDDIM(**options(DDIMScheduler, SD15)).config))
    assert p.config.skip_prk_steps is False and p.config.steps_offset == 1


# ------------------------------------------------------------------------------- configurations
def test_from_pretrained_and_save_pretrained(tmp_path):
    d = TorchDDPM(**options(DDPMScheduler, dict(SD2V, variance_type="fixed_small_log")))
    d.save_pretrained(tmp_path / "pipe" / "scheduler")
    s = DDPMScheduler.from_pretrained(tmp_path / "pipe", subfolder="scheduler")
    for k, v in d.config.items():
        if not k.startswith("_"):
            assert s.config[k] == v, k
    np.testing.assert_allclose(s.alphas_cumprod, d.alphas_cumprod.numpy(), rtol=4e-7)
    s.save_pretrained(tmp_path / "out")
    with open(tmp_path / "out" / "scheduler_config.json") as f:
        assert json.load(f)["_class_name"] == "DDPMScheduler"
    back = TorchDDPM.from_pretrained(tmp_path / "out")
    for k in d.config:
        if not k.startswith("_"):
            assert back.config[k] == d.config[k], k
    ddim = DDIMScheduler(**options(DDIMScheduler, SD15))
    ddim.save_pretrained(tmp_path / "ddim")
    tddim = TorchDDIM.from_pretrained(tmp_path / "ddim")
    assert tddim.config.set_alpha_to_one is False and tddim.config.steps_offset == 1
    assert public(DDIMScheduler.from_pretrained(tmp_path / "ddim").config) == public(ddim.config)
    assert len(s) == 1000 and "DDPMScheduler(" in repr(s)
    pndm = PNDMScheduler(**options(PNDMScheduler, SD2V))
    pndm.save_pretrained(tmp_path / "pndm")
    tp = TorchPNDM.from_pretrained(tmp_path / "pndm")
    assert tp.config.skip_prk_steps is True and tp.config.prediction_type == "v_prediction"
    tp.save_pretrained(tmp_path / "pndm2")
    assert public(PNDMScheduler.from_pretrained(tmp_path / "pndm2").config) == public(pndm.config)
    # trained_betas (an array) is written as a JSON list, as diffusers writes it
    tb = np.linspace(1e-4, 0.02, 10)
    DDPMScheduler(trained_betas=tb, num_train_timesteps=10).save_pretrained(tmp_path / "tb")
    np.testing.assert_array_equal(TorchDDPM.from_pretrained(tmp_path / "tb").betas.numpy(), tb.astype(np.float32))
    TorchDDPM(trained_betas=tb, num_train_timesteps=10).save_pretrained(tmp_path / "tb2")
    np.testing.assert_array_equal(DDPMScheduler.from_pretrained(tmp_path / "tb2").betas, tb.astype(np.float32))


def public(config):
    """A configuration without diffusers' bookkeeping keys (``_use_default_values`` records what
    was left at the defaults, so it differs between a scheduler and one read back from its file)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def test_from_config_of_another_scheduler(tmp_path):
    """A PNDM-style (SD 1.5) config builds a DDPMScheduler: unknown keys are warned about and
    ignored, the known ones used; overrides win. Also from an Euler scheduler's diffusers config."""
    with no_warning():  # another scheduler's options pass silently
        s = DDPMScheduler.from_config(SD15, prediction_type="v_prediction")
    assert s.config.steps_offset == 1 and s.config.prediction_type == "v_prediction"
    assert s.config.variance_type == "fixed_small" and s.config.beta_schedule == "scaled_linear"
    # options the Euler scheduler was given reach DDIM (and are warned about); its defaults do not
    e = TorchEuler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                   use_karras_sigmas=True)
    with no_warning():  # another scheduler's options pass silently
        ddim = DDIMScheduler.from_config(dict(e.config))
    ref = TorchDDIM.from_config(e.config)
    np.testing.assert_allclose(ddim.alphas_cumprod, ref.alphas_cumprod.numpy(), rtol=4e-7)
    path = tmp_path / "scheduler_config.json"
    path.write_text(json.dumps({"beta_schedule": "squaredcos_cap_v2", "clip_sample": False}))
    for src in (path, tmp_path, str(path)):
        s2 = DDPMScheduler.from_config(src)
        assert s2.config.clip_sample is False and s2.config.beta_schedule == "squaredcos_cap_v2"
    assert isinstance(s2, Scheduler)


def test_swap_keeps_the_new_class_defaults():
    """Swapping schedulers as users do, ``Other.from_config(scheduler.config)``: options the first
    scheduler left at ITS defaults are recorded (diffusers' ``_use_default_values``) and the new
    class takes its own (SD 1.5's PNDM has no ``timestep_spacing``: DPM-Solver spaces "linspace",
    not PNDM's "leading"), whether the config comes from diffusers or from jaxnn."""
    from diffusers import DPMSolverMultistepScheduler as TorchDPM

    from jaxnn.models import DPMSolverMultistepScheduler

    kw = {k: v for k, v in SD15.items() if not k.startswith("_") and k != "clip_sample"}
    tp, jp = TorchPNDM(**kw), PNDMScheduler(**kw)
    ref = TorchDPM.from_config(tp.config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # diffusers' own numpy-2 notice
        ref.set_timesteps(10)
    for src in (tp.config, jp.config):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = DPMSolverMultistepScheduler.from_config(src)
        np.testing.assert_array_equal(np.asarray(ours.set_timesteps(10).timesteps), ref.timesteps.numpy())
        assert ours.config.timestep_spacing == "linspace"
    assert "timestep_spacing" in jp.config["_use_default_values"]
    assert "steps_offset" not in jp.config["_use_default_values"]


def test_swap_keeps_options_the_first_class_does_not_use(tmp_path):
    """diffusers keeps the options of a config that a class does not use in its config (for other
    classes): SD 1.5's PNDM file carries ``clip_sample=False`` on to the DDIM built with
    ``DDIMScheduler.from_config(pndm.config)`` (jaxnn dropped it: DDIM then clipped x0 to [-1, 1]),
    SD 2.1's DDIM file ``skip_prk_steps=True`` to PNDM (jaxnn ran the Runge-Kutta warm-up)."""
    from diffusers import DPMSolverMultistepScheduler as TorchDPM

    from jaxnn.models import DPMSolverMultistepScheduler

    sd15 = dict(SD15, _class_name="PNDMScheduler", num_train_timesteps=1000, trained_betas=None)
    sd21 = dict(SD2V, _class_name="DDIMScheduler", num_train_timesteps=1000, trained_betas=None)
    for file, first, (tfirst, second, tsecond) in [
            (sd15, PNDMScheduler, (TorchPNDM, DDIMScheduler, TorchDDIM)),
            (sd21, DDIMScheduler, (TorchDDIM, PNDMScheduler, TorchPNDM)),
            (sd15, PNDMScheduler, (TorchPNDM, DPMSolverMultistepScheduler, TorchDPM))]:
        (tmp_path / "scheduler_config.json").write_text(json.dumps(file))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = second.from_config(first.from_pretrained(tmp_path).config)
            ref = tsecond.from_config(tfirst.from_pretrained(tmp_path).config)
            ref.set_timesteps(10)
        assert public(ours.config) == public(ref.config), (second.__name__, public(ours.config), dict(ref.config))
        np.testing.assert_array_equal(np.asarray(ours.set_timesteps(10).timesteps), ref.timesteps.numpy())
    assert ours.config.clip_sample is False and ours.config.skip_prk_steps is True  # kept, not used by DPM-Solver
    # a kept option is not used by a class that does not have it: PNDM has no rescale_betas_zero_snr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pndm = PNDMScheduler.from_config(DDIMScheduler(**options(DDIMScheduler, ZSNR)).config)
        ref_pndm = TorchPNDM.from_config(TorchDDIM(**options(DDIMScheduler, ZSNR)).config)
    assert pndm.config.rescale_betas_zero_snr is True
    np.testing.assert_allclose(pndm.alphas_cumprod, ref_pndm.alphas_cumprod.numpy(), rtol=4e-7)


def test_ddpm_from_dpm_solver_config_variance_type_none():
    """DPM-Solver configs saved by diffusers hold ``variance_type: null``; diffusers' DDPM built from
    one (the training noise of a fine-tune's folder) samples with it as ``fixed_small``; jaxnn raised
    NotImplementedError."""
    cfg = dict(SD15, variance_type=None)
    n = 10
    d, s = TorchDDPM(**options(DDPMScheduler, cfg)), DDPMScheduler(**options(DDPMScheduler, cfg))
    d.set_timesteps(n)
    base, x = run_inputs(n, 5)
    ref, ref_x0 = diffusers_run(d, base, x)
    got, got_x0, _ = jaxnn_run(s, s.set_timesteps(n), base, x, jit=True)
    assert run_scale_err(got, ref) <= TOL and compare_x0(got_x0, ref_x0) <= TOL


def test_misspelled_option_warns():
    """A key no jaxnn scheduler knows (a misspelling) is warned about, naming it, and not used."""
    with pytest.warns(UserWarning, match=r"\['beta_shedule'\] are not options of DDPMScheduler"):
        s = DDPMScheduler(beta_shedule="scaled_linear")
    assert s.config.beta_schedule == "linear"


def test_from_pretrained_errors(tmp_path):
    from jaxnn._checkpoint import CheckpointNotFoundError

    with pytest.raises(CheckpointNotFoundError, match="scheduler_config.json' does not exist"):
        DDPMScheduler.from_pretrained(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match="local folders only"):
        PNDMScheduler.from_pretrained("runwayml/stable-diffusion-v1-5", subfolder="scheduler")
    with pytest.raises(CheckpointNotFoundError, match="subfolder='scheduler'"):
        DDIMScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    with pytest.raises(ValueError, match="alpha_transform_type='sine'"):
        betas_for_alpha_bar(10, alpha_transform_type="sine")


@pytest.mark.parametrize("cls", [DDPMScheduler, DDIMScheduler])
def test_unsupported_options(cls):
    with pytest.raises(NotImplementedError, match="thresholding=True"):
        cls(thresholding=True)
    with pytest.raises(NotImplementedError, match="beta_schedule='sigmoid'"):
        cls(beta_schedule="sigmoid")
    with pytest.raises(NotImplementedError, match="beta_schedule='cubic'"):
        cls(beta_schedule="cubic")
    with pytest.raises(NotImplementedError, match="prediction_type='flow'"):
        cls(prediction_type="flow")
    with pytest.raises(NotImplementedError, match="timestep_spacing='karras'"):
        cls(timestep_spacing="karras")
    with pytest.raises(TypeError, match="mapping or a path"):
        cls.from_config(3)


@pytest.mark.parametrize("cls", [DDPMScheduler, DDIMScheduler, PNDMScheduler])
def test_bad_num_inference_steps(cls):
    s = cls(num_train_timesteps=100)
    for bad in (0, -3, 101):
        with pytest.raises(ValueError, match=rf"`num_inference_steps` \(={bad}\)"):
            s.set_timesteps(bad)
    for bad in (2.0, True, "10", None):
        with pytest.raises((TypeError, ValueError), match="num_inference_steps"):
            s.set_timesteps(bad)


def test_ddpm_bad_inputs():
    s = DDPMScheduler(num_train_timesteps=100)
    with pytest.raises(ValueError, match="exactly one of"):
        s.set_timesteps(10, timesteps=[5, 3])
    for bad in ([3, 5], [5, 5], [100, 3], [4, -1], [], [4.0, 2.0]):
        with pytest.raises(ValueError, match="`timesteps`"):
            s.set_timesteps(timesteps=bad)
    state = s.set_timesteps(10)
    x = jnp.zeros(SHAPE)
    with pytest.raises(ValueError, match="pass `rng`"):
        s.step(state, x, 90, x)
    with pytest.raises(ValueError, match="not both"):
        s.step(state, x, 90, x, rng=jax.random.key(0), variance_noise=x)
    with pytest.raises(ValueError, match=r"`variance_noise` must have the sample's shape"):
        s.step(state, x, 90, x, variance_noise=x[:1])
    with pytest.raises(ValueError, match=r"`timestep` \(=91\) is not one of the state's timesteps"):
        s.step(state, x, 91, x, variance_noise=x)
    with pytest.raises(ValueError, match="`model_output` has shape"):
        s.step(state, x[:1], 90, x, variance_noise=x)
    learned = DDPMScheduler(variance_type="learned_range")
    with pytest.raises(ValueError, match="twice the sample's channels"):
        learned.step(learned.set_timesteps(10), x, 901, x, rng=jax.random.key(0))


def test_ddim_bad_inputs():
    s = DDIMScheduler(**options(DDIMScheduler, SD15))
    state = s.set_timesteps(10)
    x = jnp.zeros(SHAPE)
    with pytest.raises(ValueError, match="pass `rng`"):
        s.step(state, x, 901, x, eta=0.5)
    with pytest.raises(ValueError, match="not both"):
        s.step(state, x, 901, x, eta=0.5, rng=jax.random.key(0), variance_noise=x)
    for bad in (jnp.float32(0.5), np.array(0.5), "0.5", None):
        with pytest.raises(TypeError, match="`eta` must be a Python number"):
            s.step(state, x, 901, x, eta=bad)
    with pytest.raises(ValueError, match="`model_output` has shape"):
        s.step(state, x[:1], 901, x)
    with pytest.raises(ValueError, match="`variance_noise` must have the model output's shape"):
        s.step(state, x, 901, x, eta=0.5, variance_noise=x[:1])
    # diffusers indexes alphas_cumprod with the timestep (IndexError); a JAX gather would clamp it
    with pytest.raises(ValueError, match=r"`timestep` \(=1000\) must lie in \[0, num_train_timesteps=1000\)"):
        s.step(state, x, 1000, x)
    with pytest.raises(TypeError, match="`timestep` must be an integer"):
        s.step(state, x, 901.0, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = s.step(state, x, 901, x, eta=0.5, rng=jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(out.prev_sample)))


def test_scale_model_input_identity():
    x = jnp.ones(SHAPE)
    for cls in (DDPMScheduler, DDIMScheduler):
        s = cls()
        assert s.scale_model_input(s.set_timesteps(5), x, 3) is x
    assert os.path.basename(DDPMScheduler.config_name) == "scheduler_config.json"
