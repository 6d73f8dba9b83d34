"""jaxnn.optim against torch.optim: trajectories, schedules, masks, clipping, interop, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx

import jaxnn.functional as F
from jaxnn import optim

STEPS = 200
RTOL, ATOL = 2e-5, 1e-6

_rng = np.random.default_rng(0)
_M = _rng.standard_normal((12, 12))
A = {"w": (_M @ _M.T / 24 + 0.5 * np.eye(12)).astype(np.float32), "b": np.eye(3, dtype=np.float32) * 0.5}
TARGET = {"w": _rng.standard_normal((4, 3)).astype(np.float32), "b": _rng.standard_normal(3).astype(np.float32)}
INIT = {"w": _rng.standard_normal((4, 3)).astype(np.float32), "b": _rng.standard_normal(3).astype(np.float32)}


def grad_fn(params, step, falling=False):
    """float32 gradient that depends on the parameters (a rotated quadratic plus a cosine).

    Computed in numpy and handed to both optimizers, so only the optimizers differ. ``falling``
    shrinks the gradients over time, where amsgrad's max of the raw second moment matters.
    """
    scale = np.float32(10.0 * 0.97**step) if falling else np.float32(1.0)
    out = {}
    for k in ("w", "b"):
        d = (params[k] - TARGET[k]).reshape(-1).astype(np.float32)
        g = A[k].astype(np.float32)[: d.size, : d.size] @ d + np.float32(0.1) * np.cos(params[k]).reshape(-1)
        out[k] = (g.reshape(params[k].shape) * scale).astype(np.float32)
    return out


def run_torch(make_opt, steps=STEPS, falling=False, clip=None, sched=None, groups=None):
    params = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in INIT.items()}
    if groups is not None:
        opt = make_opt(groups(params))
    else:
        opt = make_opt(list(params.values()))
    scheduler = sched(opt) if sched else None
    traj = []
    for t in range(steps):
        g = grad_fn({k: v.detach().numpy() for k, v in params.items()}, t, falling)
        for k, p in params.items():
            p.grad = torch.tensor(g[k])
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(list(params.values()), **clip)
        opt.step()
        if scheduler:
            scheduler.step()
        traj.append({k: v.detach().numpy().copy() for k, v in params.items()})
    return traj


def run_jax(tx, steps=STEPS, falling=False):
    params = {k: jnp.asarray(v) for k, v in INIT.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    traj = []
    for t in range(steps):
        g = grad_fn({k: np.asarray(v) for k, v in params.items()}, t, falling)
        params, state = step(params, state, g)
        traj.append({k: np.asarray(v) for k, v in params.items()})
    return traj


def assert_same_trajectory(jt, tt):
    assert len(jt) == len(tt)
    for i, (a, b) in enumerate(zip(jt, tt, strict=True)):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=RTOL, atol=ATOL, err_msg=f"step {i}, {k}")


CONFIGS = [
    ("adam defaults", lambda: optim.adam(), lambda p: torch.optim.Adam(p)),
    ("adamw defaults", lambda: optim.adamw(), lambda p: torch.optim.AdamW(p)),
    ("adam lr betas eps", lambda: optim.adam(3e-2, 0.8, 0.99, 1e-6),
     lambda p: torch.optim.Adam(p, lr=3e-2, betas=(0.8, 0.99), eps=1e-6)),
    ("adam L2 decay", lambda: optim.adam(1e-2, weight_decay=0.1),
     lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1)),
    ("adamw decay", lambda: optim.adamw(1e-2, weight_decay=0.3),
     lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.3)),
    ("adam amsgrad", lambda: optim.adam(1e-2, amsgrad=True), lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True)),
    ("adamw amsgrad", lambda: optim.adamw(1e-2, weight_decay=0.05, amsgrad=True),
     lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05, amsgrad=True)),
    ("adam maximize", lambda: optim.adam(1e-3, maximize=True, weight_decay=0.01),
     lambda p: torch.optim.Adam(p, lr=1e-3, maximize=True, weight_decay=0.01)),
    ("adamw maximize", lambda: optim.adamw(1e-3, maximize=True),
     lambda p: torch.optim.AdamW(p, lr=1e-3, maximize=True)),
]


@pytest.mark.parametrize("falling", [False, True])
@pytest.mark.parametrize("name,jaxnn_opt,torch_opt", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_trajectory_matches_torch(name, jaxnn_opt, torch_opt, falling):
    assert_same_trajectory(run_jax(jaxnn_opt(), falling=falling), run_torch(torch_opt, falling=falling))


def test_amsgrad_differs_from_optax_and_plain_adam():
    """The falling-gradient problem separates the variants: torch's amsgrad is what we follow."""
    ours = run_jax(optim.adam(1e-2, amsgrad=True), falling=True)[-1]["w"]
    plain = run_jax(optim.adam(1e-2), falling=True)[-1]["w"]
    optax_ams = run_jax(optax.amsgrad(1e-2), falling=True)[-1]["w"]
    assert np.abs(ours - plain).max() > 1e-3
    assert np.abs(ours - optax_ams).max() > 1e-4


def test_optax_adamw_default_decay_is_100x_smaller():
    # optax.adamw(1e-3) decays with 1e-4; torch's and ours with 1e-2
    ours = run_jax(optim.adamw(1e-3), steps=50)
    optax_default = run_jax(optax.adamw(1e-3), steps=50)
    torch_traj = run_torch(lambda p: torch.optim.AdamW(p, lr=1e-3), steps=50)
    assert_same_trajectory(ours, torch_traj)
    assert np.abs(optax_default[-1]["w"] - torch_traj[-1]["w"]).max() > 10 * RTOL


SCHEDULES = [
    ("lambda", lambda: (lambda c: 1e-2 * (1.0 / (1.0 + 0.05 * c))),
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda k: 1.0 / (1.0 + 0.05 * k))),
    ("exponential", lambda: optax.exponential_decay(1e-2, 1, 0.98),
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.98)),
    ("step", lambda: optax.exponential_decay(1e-2, 50, 0.5, staircase=True),
     lambda o: torch.optim.lr_scheduler.StepLR(o, 50, 0.5)),
    ("linear warmup", lambda: optax.linear_schedule(1e-3, 1e-2, 20),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 20)),
]


@pytest.mark.parametrize("name,jax_sched,torch_sched", SCHEDULES, ids=[s[0] for s in SCHEDULES])
@pytest.mark.parametrize("which", ["adam", "adamw"])
def test_schedules_match_torch_schedulers(name, jax_sched, torch_sched, which):
    if which == "adam":
        tx = optim.adam(jax_sched(), weight_decay=0.01)
        make = lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.01)  # noqa: E731
    else:
        tx = optim.adamw(jax_sched(), weight_decay=0.1)
        make = lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)  # noqa: E731
    assert_same_trajectory(run_jax(tx), run_torch(make, sched=torch_sched))


@pytest.mark.parametrize("which", ["adam", "adamw"])
def test_mask_matches_parameter_groups(which):
    mask = {"w": True, "b": False}
    groups = lambda p: [{"params": [p["w"]]}, {"params": [p["b"]], "weight_decay": 0.0}]  # noqa: E731
    if which == "adam":
        tx = optim.adam(1e-2, weight_decay=0.2, mask=mask)
        make = lambda g: torch.optim.Adam(g, lr=1e-2, weight_decay=0.2)  # noqa: E731
    else:
        tx = optim.adamw(1e-2, weight_decay=0.2, mask=mask)
        make = lambda g: torch.optim.AdamW(g, lr=1e-2, weight_decay=0.2)  # noqa: E731
    assert_same_trajectory(run_jax(tx), run_torch(make, groups=groups))
    # a callable mask gives the same result
    fn_mask = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731
    tx2 = (optim.adam if which == "adam" else optim.adamw)(1e-2, weight_decay=0.2, mask=fn_mask)
    assert_same_trajectory(run_jax(tx2), run_jax(tx))


@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (3.0, 2.0), (0.2, 1.0), (0.3, float("inf"))])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    tx = optax.chain(optim.clip_grad_norm(max_norm, norm_type), optim.adamw(1e-2))
    tt = run_torch(lambda p: torch.optim.AdamW(p, lr=1e-2), clip=dict(max_norm=max_norm, norm_type=norm_type))
    assert_same_trajectory(run_jax(tx), tt)


# --- a real model: conv net trained in torch and in JAX from the same weights ------------------------


def test_conv_net_loss_curve_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    init = {
        "conv.weight": (rng.standard_normal((4, 1, 3, 3)) / 3).astype(np.float32),
        "conv.bias": np.zeros(4, np.float32),
        "norm.weight": np.ones(4, np.float32),
        "norm.bias": np.zeros(4, np.float32),
        "fc.weight": (rng.standard_normal((3, 4)) / 2).astype(np.float32),
        "fc.bias": np.zeros(3, np.float32),
    }

    def forward(p, x, Fn):
        h = Fn.conv2d(x, p["conv.weight"], p["conv.bias"], padding=1)
        h = Fn.silu(Fn.group_norm(h, 2, p["norm.weight"], p["norm.bias"]))
        h = h.mean((2, 3))
        return Fn.linear(h, p["fc.weight"], p["fc.bias"])

    def jax_loss(p):
        logits = forward(p, jnp.asarray(x), F)
        return -jnp.mean(jnp.take_along_axis(F.log_softmax(logits, -1), jnp.asarray(y)[:, None], 1))

    tx = optim.adamw(3e-2, weight_decay=0.05)
    params = {k: jnp.asarray(v) for k, v in init.items()}
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        loss, g = jax.value_and_grad(jax_loss)(params)
        u, state = tx.update(g, state, params)
        return optax.apply_updates(params, u), state, loss

    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    topt = torch.optim.AdamW(list(tparams.values()), lr=3e-2, weight_decay=0.05)
    tx_, ty = torch.tensor(x), torch.tensor(y)
    j_losses, t_losses = [], []
    for _ in range(50):
        params, state, loss = step(params, state)
        j_losses.append(float(loss))
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(forward(tparams, tx_, torch.nn.functional), ty)
        tloss.backward()
        topt.step()
        t_losses.append(tloss.item())
    np.testing.assert_allclose(j_losses, t_losses, rtol=1e-4)
    assert j_losses[-1] < 0.9 * j_losses[0]


# --- optax interop -------------------------------------------------------------------------------


def _quadratic_run(tx, steps=5):
    params = {"w": jnp.ones((3,)), "b": jnp.zeros(())}
    state = tx.init(params)
    for _ in range(steps):
        grads = jax.tree.map(lambda p: 2 * p + 1, params)
        updates, state = jax.jit(tx.update)(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def test_inject_hyperparams_changes_lr_at_run_time():
    tx = optax.inject_hyperparams(optim.adamw)(learning_rate=1e-2, weight_decay=0.1)
    params, state = _quadratic_run(tx)
    ref, _ = _quadratic_run(optim.adamw(1e-2, weight_decay=0.1))
    np.testing.assert_allclose(params["w"], ref["w"], rtol=1e-6)
    state.hyperparams["learning_rate"] = jnp.asarray(0.0)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, state, params)
    assert float(jnp.abs(updates["w"]).max()) == 0.0


def test_multisteps_and_apply_if_finite():
    ms = optax.MultiSteps(optim.adam(1e-2), every_k_schedule=2)
    params, _ = _quadratic_run(ms, steps=4)
    ref, _ = _quadratic_run(optim.adam(1e-2), steps=2)  # constant grads: 2 accumulated steps
    np.testing.assert_allclose(params["w"], ref["w"], rtol=1e-6)
    safe = optax.apply_if_finite(optim.adamw(1e-2), max_consecutive_errors=3)
    params = {"w": jnp.ones(2)}
    state = safe.init(params)
    updates, state = safe.update({"w": jnp.array([jnp.nan, 1.0])}, state, params)
    assert float(jnp.abs(updates["w"]).max()) == 0.0
    assert int(state.notfinite_count) == 1


def test_nnx_optimizer():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, optim.adamw(1e-2), wrt=nnx.Param)
    x = jnp.ones((4, 3))

    @nnx.jit
    def train_step(model, opt):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
        opt.update(model, grads)
        return loss

    losses = [float(train_step(model, opt)) for _ in range(20)]
    assert losses[-1] < losses[0]


def test_state_is_a_pytree_with_int32_count_and_mu_dtype():
    tx = optim.scale_by_torch_adam(mu_dtype=jnp.bfloat16, amsgrad=True)
    params = {"w": jnp.ones((2, 2))}
    state = tx.init(params)
    assert state.count.dtype == jnp.int32
    assert state.mu["w"].dtype == jnp.bfloat16
    assert state.nu["w"].dtype == jnp.float32
    state = state._replace(count=jnp.asarray(np.iinfo(np.int32).max, jnp.int32))
    updates, state = tx.update(params, state)
    assert int(state.count) == np.iinfo(np.int32).max  # saturates instead of overflowing
    assert jnp.all(jnp.isfinite(updates["w"]))
    leaves = jax.tree.leaves(state)
    assert all(isinstance(x, jax.Array) for x in leaves)


def test_mu_dtype_trajectory_is_close():
    full = run_jax(optim.adamw(1e-2), steps=50)[-1]["w"]
    half = run_jax(optim.adamw(1e-2, mu_dtype=jnp.bfloat16), steps=50)[-1]["w"]
    np.testing.assert_allclose(half, full, rtol=5e-2, atol=5e-3)


ERRORS = [
    (lambda: optim.adam(-1.0), "`learning_rate` must be >= 0"),
    (lambda: optim.adamw(1e-3, eps=-1e-8), "`eps` must be >= 0"),
    (lambda: optim.adamw(1e-3, weight_decay=-0.1), "`weight_decay` must be >= 0"),
    (lambda: optim.adam(1e-3, b1=1.0), "`b1` must be in"),
    (lambda: optim.adam(1e-3, b2=-0.1), "`b2` must be in"),
]


@pytest.mark.parametrize("call,fragment", ERRORS)
def test_errors(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_mask_structure_mismatch_is_clear():
    tx = optim.adamw(1e-2, mask={"w": True})
    params = {"w": jnp.ones(2), "b": jnp.ones(1)}
    with pytest.raises(ValueError, match="`mask` must have the same tree structure"):
        tx.init(params)
    state = optim.adamw(1e-2, mask={"w": True, "b": False}).init(params)
    with pytest.raises(ValueError, match="`mask` must have the same tree structure"):
        tx.update(params, state, params)


def test_decay_without_params_is_clear():
    tx = optim.adamw(1e-2)
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="needs `params`"):
        tx.update(params, tx.init(params))


def test_functional_ops_used_here_exist():
    assert callable(F.conv2d) and callable(F.group_norm)
