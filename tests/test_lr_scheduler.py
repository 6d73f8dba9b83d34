"""jaxnn.optim.lr_scheduler against torch.optim.lr_scheduler: get_last_lr() over 2000 steps."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from jaxnn import optim
from jaxnn.optim import lr_scheduler as S

T = torch.optim.lr_scheduler
STEPS = 2000
ULPS = 4  # float32 units in the last place allowed against torch's double, rounded to float32


def torch_lrs(make, lr=0.01, steps=STEPS, opt="sgd", extra=None):
    p = torch.zeros(1, requires_grad=True)
    o = torch.optim.SGD([p], lr=lr, momentum=0.9) if opt == "sgd" else torch.optim.Adam([p], lr=lr)
    sched = make(o)
    lrs, moms = [], []
    for i in range(steps):
        lrs.append(sched.get_last_lr()[0])
        g = o.param_groups[0]
        moms.append(g["momentum"] if opt == "sgd" else g["betas"][0])
        if i + 1 < steps:
            o.step()
            sched.step()
    return np.asarray(lrs, np.float64), np.asarray(moms, np.float64)


def jax_lrs(sched, steps=STEPS):
    return np.asarray(jax.jit(jax.vmap(sched))(jnp.arange(steps, dtype=jnp.int32)))


def max_ulps(ours, ref):
    """Largest distance from torch's double rounded to float32, in units of its last place
    (subnormals count as 0: XLA flushes them)."""
    ref32 = ref.astype(np.float32).astype(np.float64)
    spacing = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
    spacing = np.maximum(spacing, np.float64(np.finfo(np.float32).tiny))
    return float(np.max(np.abs(ours.astype(np.float64) - ref32) / spacing))


def assert_ulps(ours, ref, ulps=ULPS):
    assert ours.dtype == np.float32
    err = max_ulps(ours, ref)
    assert err <= ulps, f"{err:.2f} ulps from torch"


CASES = [
    ("step", lambda: S.StepLR(0.01, 30, 0.5), lambda o: T.StepLR(o, 30, 0.5)),
    ("step default gamma", lambda: S.StepLR(0.01, 7), lambda o: T.StepLR(o, 7)),
    ("multistep", lambda: S.MultiStepLR(0.01, [5, 100, 100, 700], 0.3),
     lambda o: T.MultiStepLR(o, [5, 100, 100, 700], 0.3)),
    ("exponential", lambda: S.ExponentialLR(0.01, 0.997), lambda o: T.ExponentialLR(o, 0.997)),
    ("exponential fast", lambda: S.ExponentialLR(0.5, 0.95), lambda o: T.ExponentialLR(o, 0.95)),
    ("cosine issue example", lambda: S.CosineAnnealingLR(0.01, T_max=10, eta_min=1e-3),
     lambda o: T.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    ("cosine long", lambda: S.CosineAnnealingLR(0.1, T_max=700),
     lambda o: T.CosineAnnealingLR(o, T_max=700)),
    ("cosine odd", lambda: S.CosineAnnealingLR(0.05, T_max=7, eta_min=0.01),
     lambda o: T.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
    ("warm restarts", lambda: S.CosineAnnealingWarmRestarts(0.01, T_0=50),
     lambda o: T.CosineAnnealingWarmRestarts(o, T_0=50)),
    ("warm restarts mult", lambda: S.CosineAnnealingWarmRestarts(0.01, T_0=7, T_mult=2, eta_min=1e-4),
     lambda o: T.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=1e-4)),
    ("warm restarts mult3", lambda: S.CosineAnnealingWarmRestarts(0.3, T_0=3, T_mult=3),
     lambda o: T.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=3)),
    ("linear", lambda: S.LinearLR(0.01, 0.1, 1.0, 300), lambda o: T.LinearLR(o, 0.1, 1.0, 300)),
    ("linear default decay", lambda: S.LinearLR(0.01, 1.0, 0.05, 1500), lambda o: T.LinearLR(o, 1.0, 0.05, 1500)),
    ("linear defaults", lambda: S.LinearLR(0.01), lambda o: T.LinearLR(o)),
    ("constant", lambda: S.ConstantLR(0.01, 0.25, 40), lambda o: T.ConstantLR(o, 0.25, 40)),
    ("constant defaults", lambda: S.ConstantLR(0.01), lambda o: T.ConstantLR(o)),
    ("polynomial", lambda: S.PolynomialLR(0.01, 1200, 2.0), lambda o: T.PolynomialLR(o, 1200, 2.0)),
    ("polynomial sqrt", lambda: S.PolynomialLR(0.01, 50, 0.5), lambda o: T.PolynomialLR(o, 50, 0.5)),
    ("lambda", lambda: S.LambdaLR(0.01, lambda k: 1.0 / (1.0 + 0.05 * k)),
     lambda o: T.LambdaLR(o, lambda k: 1.0 / (1.0 + 0.05 * k))),
    ("multiplicative", lambda: S.MultiplicativeLR(0.01, lambda k: 0.999 if k % 3 else 0.99, total_iters=STEPS),
     lambda o: T.MultiplicativeLR(o, lambda k: 0.999 if k % 3 else 0.99)),
    ("onecycle cos", lambda: S.OneCycleLR(0.1, total_steps=STEPS), lambda o: T.OneCycleLR(o, 0.1, total_steps=STEPS)),
    ("onecycle linear three phase",
     lambda: S.OneCycleLR(0.1, epochs=20, steps_per_epoch=100, anneal_strategy="linear", three_phase=True,
                          div_factor=10.0, final_div_factor=100.0, pct_start=0.25),
     lambda o: T.OneCycleLR(o, 0.1, epochs=20, steps_per_epoch=100, anneal_strategy="linear", three_phase=True,
                            div_factor=10.0, final_div_factor=100.0, pct_start=0.25)),
    ("onecycle cos three phase", lambda: S.OneCycleLR(0.01, total_steps=STEPS, three_phase=True),
     lambda o: T.OneCycleLR(o, 0.01, total_steps=STEPS, three_phase=True)),
    ("cyclic triangular", lambda: S.CyclicLR(0.001, 0.01, step_size_up=150),
     lambda o: T.CyclicLR(o, 0.001, 0.01, step_size_up=150)),
    ("cyclic triangular2", lambda: S.CyclicLR(0.001, 0.01, step_size_up=100, step_size_down=60, mode="triangular2"),
     lambda o: T.CyclicLR(o, 0.001, 0.01, step_size_up=100, step_size_down=60, mode="triangular2")),
    ("cyclic exp_range", lambda: S.CyclicLR(0.001, 0.01, step_size_up=70, mode="exp_range", gamma=0.999),
     lambda o: T.CyclicLR(o, 0.001, 0.01, step_size_up=70, mode="exp_range", gamma=0.999)),
    ("cyclic scale_fn iterations",
     lambda: S.CyclicLR(0.001, 0.01, step_size_up=40, scale_fn=lambda x: 1 / (1 + x / 500), scale_mode="iterations"),
     lambda o: T.CyclicLR(o, 0.001, 0.01, step_size_up=40, scale_fn=lambda x: 1 / (1 + x / 500),
                          scale_mode="iterations")),
    ("sequential warmup cosine",
     lambda: S.SequentialLR([S.LinearLR(0.01, 0.01, 1.0, 100), S.CosineAnnealingLR(0.01, 400, 1e-4)], [100]),
     lambda o: T.SequentialLR(o, [T.LinearLR(o, 0.01, 1.0, 100), T.CosineAnnealingLR(o, 400, 1e-4)], [100])),
    ("sequential three",
     lambda: S.SequentialLR([S.ConstantLR(0.01, 0.1, 10), S.ExponentialLR(0.01, 0.99),
                             S.CosineAnnealingWarmRestarts(0.01, 100, 2)], [30, 500]),
     lambda o: T.SequentialLR(o, [T.ConstantLR(o, 0.1, 10), T.ExponentialLR(o, 0.99),
                                  T.CosineAnnealingWarmRestarts(o, 100, 2)], [30, 500])),
    ("sequential step then onecycle",
     lambda: S.SequentialLR([S.StepLR(0.01, 20, 0.5), S.PolynomialLR(0.01, 300, 1.5)], [64]),
     lambda o: T.SequentialLR(o, [T.StepLR(o, 20, 0.5), T.PolynomialLR(o, 300, 1.5)], [64])),
    ("chained constant exponential",
     lambda: S.ChainedScheduler([S.ConstantLR(0.01, 0.1, 3), S.ExponentialLR(0.01, 0.998)]),
     lambda o: T.ChainedScheduler([T.ConstantLR(o, 0.1, 3), T.ExponentialLR(o, 0.998)])),
    ("chained linear step multistep",
     lambda: S.ChainedScheduler([S.LinearLR(0.01, 0.2, 1.0, 50), S.StepLR(0.01, 300, 0.7),
                                 S.MultiStepLR(0.01, [900, 1500], 0.5), S.PolynomialLR(0.01, 1800, 0.9)]),
     lambda o: T.ChainedScheduler([T.LinearLR(o, 0.2, 1.0, 50), T.StepLR(o, 300, 0.7),
                                   T.MultiStepLR(o, [900, 1500], 0.5), T.PolynomialLR(o, 1800, 0.9)])),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_schedule_matches_torch_2000_steps(name, ours, theirs):
    sched = ours()
    ref, _ = torch_lrs(theirs, lr=sched.base_lr)
    assert_ulps(jax_lrs(sched), ref)


def test_issue_example_and_optax_difference():
    s = S.CosineAnnealingLR(0.01, T_max=10, eta_min=1e-3)
    got = jax_lrs(s, 15)[10:]
    np.testing.assert_allclose(got, [0.001, 0.00122, 0.001859, 0.002855, 0.004109], rtol=1e-3)
    assert float(optax.cosine_decay_schedule(0.01, 10, alpha=0.1)(14)) == pytest.approx(0.001)


def test_float32_closed_form_drifts_where_the_table_does_not():
    ref, _ = torch_lrs(lambda o: T.CosineAnnealingLR(o, T_max=10, eta_min=0.0))
    k = np.arange(STEPS, dtype=np.float32)
    naive = (np.float32(0.01) * (1 + np.cos(np.float32(np.pi) * k / np.float32(10))) / 2).astype(np.float32)
    ours = jax_lrs(S.CosineAnnealingLR(0.01, T_max=10))
    assert max_ulps(ours, ref) <= 1
    assert max_ulps(naive, ref) > 1000


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_onecycle_and_cyclic_momentum(opt):
    ref_lr, ref_m = torch_lrs(lambda o: T.OneCycleLR(o, 0.1, total_steps=500, three_phase=True), steps=501, opt=opt)
    s = S.OneCycleLR(0.1, total_steps=500, three_phase=True)
    assert_ulps(jax_lrs(s, 501), ref_lr)
    assert s.momentum is not None
    assert_ulps(jax_lrs(s.momentum, 501), ref_m)
    ref_lr, ref_m = torch_lrs(lambda o: T.CyclicLR(o, 0.001, 0.01, 30, mode="triangular2"), opt=opt)
    c = S.CyclicLR(0.001, 0.01, 30, mode="triangular2")
    assert c.momentum is not None
    assert_ulps(jax_lrs(c.momentum), ref_m)
    assert S.CyclicLR(0.001, 0.01, cycle_momentum=False).momentum is None


def test_counts_beyond_the_tables():
    # periodic and constant tails, and int32 saturation, far past 2000
    far = jnp.asarray([10**6, 10**9, 2**31 - 1], jnp.int32)
    cos = S.CosineAnnealingLR(0.01, T_max=10, eta_min=1e-3)
    np.testing.assert_allclose(cos(far), [0.01, 0.01, cos(jnp.int32((2**31 - 1) % 20))], rtol=1e-7)
    lin = S.LinearLR(0.01, 0.1, 0.5, 20)
    np.testing.assert_allclose(lin(far), 0.005, rtol=1e-7)
    np.testing.assert_allclose(S.ExponentialLR(1.0, 0.999999)(far[:1]), 0.999999 ** 10**6, rtol=3e-7)
    assert float(S.ExponentialLR(1.0, 0.9)(far[2])) == 0.0
    wr = S.CosineAnnealingWarmRestarts(1.0, T_0=1, T_mult=2)
    k = 2**20 - 1 + 5  # in the cycle starting at 2**20 - 1, of length 2**20
    assert float(wr(k)) == pytest.approx((1 + math.cos(math.pi * 5 / 2**20)) / 2, rel=1e-6)
    mult = S.MultiplicativeLR(0.01, lambda k: 0.9, total_iters=10)
    assert np.isnan(float(mult(11))) and float(mult(10)) == pytest.approx(0.01 * 0.9**10, rel=1e-6)
    one = S.OneCycleLR(0.1, total_steps=10)
    assert float(one(10)) == float(one(50))


def test_schedule_drives_an_optimizer_like_torch():
    sched = S.CosineAnnealingLR(0.05, T_max=10, eta_min=1e-3)
    tx = optim.sgd(sched, momentum=0.9)
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.05, momentum=0.9)
    tsched = T.CosineAnnealingLR(topt, T_max=10, eta_min=1e-3)
    params = jnp.asarray([1.0, -2.0])
    state = tx.init(params)
    step = jax.jit(tx.update)
    for _ in range(60):
        g = np.cos(np.asarray(params)).astype(np.float32)
        p.grad = torch.tensor(g)
        topt.step()
        tsched.step()
        u, state = step(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, u)
    np.testing.assert_allclose(params, p.detach().numpy(), rtol=2e-5, atol=1e-6)


def test_schedules_under_inject_hyperparams():
    s = S.OneCycleLR(0.1, total_steps=100)
    tx = optax.inject_hyperparams(optim.adamw)(learning_rate=s, b1=s.momentum)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    for _ in range(3):
        _, state = jax.jit(tx.update)({"w": jnp.ones(3)}, state, params)
    # the hyperparameters of the last update, the third: count 2
    assert float(state.hyperparams["learning_rate"]) == float(s(2))
    assert float(state.hyperparams["b1"]) == float(s.momentum(2))


# --- ReduceLROnPlateau -----------------------------------------------------------------------------

PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2),
    dict(patience=1, threshold=0.05, threshold_mode="abs", cooldown=2, min_lr=3e-4),
    dict(mode="max", patience=0, threshold=0.1, threshold_mode="abs", factor=0.3),
    dict(patience=3, cooldown=1, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(3)
    metrics = np.concatenate([np.linspace(5, 1, 20), 1 + rng.random(60), np.linspace(2, 0.5, 20)]).astype(np.float32)
    p = torch.zeros(1, requires_grad=True)
    o = torch.optim.SGD([p], lr=0.01)
    sched = T.ReduceLROnPlateau(o, **kw)
    tx = S.ReduceLROnPlateau(0.01, **kw)
    state = tx.init(jnp.zeros(1))
    step = jax.jit(lambda u, s, v: tx.update(u, s, None, value=v))
    for m in metrics:
        ref = sched.get_last_lr()[0]
        u, state = step(jnp.ones(1), state, m)
        np.testing.assert_allclose(float(u[0]), ref / 0.01, rtol=1e-6)
        o.step()
        sched.step(float(m))
        np.testing.assert_allclose(float(state.lr), sched.get_last_lr()[0], rtol=1e-6)
    assert int(state.last_epoch) == len(metrics)


def test_reduce_on_plateau_in_a_chain_and_without_value():
    tx = optax.chain(optim.sgd(0.1), S.ReduceLROnPlateau(0.1, patience=0, factor=0.5))
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    u, state = tx.update({"w": jnp.ones(2)}, state, params)  # no metric step
    assert float(S.current_lr(state)) == pytest.approx(0.1)
    for v in (1.0, 2.0, 3.0):
        u, state = tx.update({"w": jnp.ones(2)}, state, params, value=v)
    assert float(S.current_lr(state)) == pytest.approx(0.025)
    u, state = tx.update({"w": jnp.ones(2)}, state, params)
    np.testing.assert_allclose(u["w"], -0.025, rtol=1e-6)


ERRORS = [
    (lambda: S.StepLR(-0.1, 10), ValueError, "`learning_rate` must be >= 0"),
    (lambda: S.StepLR(0.1, 0), ValueError, "`step_size` must be >= 1"),
    (lambda: S.ConstantLR(0.1, factor=1.5), ValueError, "`factor`"),
    (lambda: S.LinearLR(0.1, start_factor=0.0), ValueError, "`start_factor`"),
    (lambda: S.LinearLR(0.1, end_factor=1.5), ValueError, "`end_factor`"),
    (lambda: S.CosineAnnealingWarmRestarts(0.1, T_0=0), ValueError, "`T_0`"),
    (lambda: S.CosineAnnealingWarmRestarts(0.1, T_0=2, T_mult=1.5), TypeError, "`T_mult`"),
    (lambda: S.OneCycleLR(0.1), ValueError, "total_steps"),
    (lambda: S.OneCycleLR(0.1, total_steps=10, pct_start=1), ValueError, "`pct_start`"),
    (lambda: S.OneCycleLR(0.1, total_steps=10, anneal_strategy="exp"), ValueError, "`anneal_strategy`"),
    (lambda: S.CyclicLR(0.1, 1.0, mode="square"), ValueError, "`mode`"),
    (lambda: S.LambdaLR(0.1, 3), TypeError, "`lr_lambda`"),
    (lambda: S.SequentialLR([S.StepLR(0.1, 1)], [3]), ValueError, "milestones"),
    (lambda: S.SequentialLR([], []), ValueError, "at least one"),
    (lambda: S.ChainedScheduler([S.StepLR(0.1, 1), S.CosineAnnealingLR(0.1, 10)]), ValueError, "not multiplicative"),
    (lambda: S.ChainedScheduler([S.StepLR(0.1, 1), S.StepLR(0.2, 1)]), ValueError, "same `learning_rate`"),
    (lambda: S.ChainedScheduler([S.StepLR(0.1, 1), lambda c: c]), TypeError, "schedulers\\[1\\]"),
    (lambda: S.ReduceLROnPlateau(0.1, factor=1.0), ValueError, "`factor`"),
    (lambda: S.ReduceLROnPlateau(0.1, mode="up"), ValueError, "`mode`"),
    (lambda: S.ReduceLROnPlateau(0.1, threshold_mode="x"), ValueError, "`threshold_mode`"),
    (lambda: S.CosineAnnealingLR(0.1, T_max=S.MAX_TABLE)(0), ValueError, "MAX_TABLE"),
]


@pytest.mark.parametrize("call,exc,fragment", ERRORS)
def test_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_warm_restarts_formula_past_the_table(monkeypatch):
    """Past MAX_TABLE counts CosineAnnealingWarmRestarts uses a float32 formula (no cancellation)."""
    monkeypatch.setattr(S, "MAX_TABLE", 0)
    for t0, mult in ((50, 1), (7, 2), (3, 3)):
        s = S.CosineAnnealingWarmRestarts(0.01, T_0=t0, T_mult=mult, eta_min=1e-4)
        assert s._table is None
        ref, _ = torch_lrs(lambda o, t0=t0, mult=mult: T.CosineAnnealingWarmRestarts(o, t0, mult, 1e-4))
        assert_ulps(jax_lrs(s), ref, ulps=8)
