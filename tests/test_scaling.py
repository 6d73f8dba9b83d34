"""One code path for CPU/GPU/TPU: export for every platform, every transformation, sharding on 8
simulated devices, two processes, no recompilation, and the dtype policy; all of jaxnn.functional."""

import importlib
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from torch_ref import assert_close_reduction

import jaxnn.functional as F
import jaxnn.nnx as jn
from jaxnn import optim

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
train_sharded = importlib.import_module("train_sharded")

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def _r(*shape):
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def _quiet(fn, *args, **kwargs):
    """Call a deprecated alias without its (torch's) deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# Every public function: a call with sample arguments. The first argument is the one that is
# batched by vmap and differentiated; the others are held fixed.
SAMPLES = {
    "batch_norm": (lambda x, m, v: F.batch_norm(x, m, v, training=True), [_r(4, 3, 5), _r(3), _r(3) ** 2 + 1]),
    "batch_norm_running_stats": (lambda x, m, v: F.batch_norm_running_stats(x, m, v)[1],
                                 [_r(4, 3, 5), _r(3), _r(3) ** 2 + 1]),
    "dropout": (lambda x: F.dropout(x, 0.25, rng=jax.random.key(0)), [_r(3, 8)]),
    "conv1d": (lambda x, w: F.conv1d(x, w, None, 1, 1, padding_mode="reflect"), [_r(2, 4, 9), _r(6, 4, 3)]),
    "conv2d": (lambda x, w: F.conv2d(x, w, None, 2, 1, 1, 2), [_r(2, 4, 8, 8), _r(6, 2, 3, 3)]),
    "conv3d": (lambda x, w: F.conv3d(x, w, None, 1, "same"), [_r(1, 2, 4, 4, 4), _r(3, 2, 2, 3, 2)]),
    "conv_transpose1d": (lambda x, w: F.conv_transpose1d(x, w, None, 2, 1, 1, 2), [_r(2, 4, 5), _r(4, 3, 3)]),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, None, 2, 1), [_r(2, 4, 5, 5), _r(4, 3, 4, 4)]),
    "conv_transpose3d": (lambda x, w: F.conv_transpose3d(x, w, None, 2), [_r(1, 2, 3, 3, 3), _r(2, 2, 2, 2, 2)]),
    "pad": (lambda x: F.pad(x, (1, 2, -1, 1), "circular"), [_r(2, 3, 5, 6)]),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=2.5, mode="bicubic"), [_r(2, 3, 5, 6)]),
    "upsample": (lambda x: _quiet(F.upsample, x, size=(3, 4), mode="area"), [_r(2, 3, 5, 6)]),
    "upsample_nearest": (lambda x: _quiet(F.upsample_nearest, x, scale_factor=0.37), [_r(2, 3, 9, 6)]),
    "upsample_bilinear": (lambda x: _quiet(F.upsample_bilinear, x, size=(4, 9)), [_r(2, 3, 5, 6)]),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), [_r(2, 8, 3, 5)]),
    "pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2), [_r(2, 3, 4, 6)]),
    "group_norm": (lambda x, w: F.group_norm(x, 2, w, w), [_r(2, 4, 6), _r(4)]),
    "layer_norm": (lambda x, w: F.layer_norm(x, 6, w, w), [_r(3, 6), _r(6)]),
    "linear": (lambda x, w: F.linear(x, w), [_r(3, 5), _r(4, 5)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, 6, w), [_r(3, 6), _r(6)]),
    "prelu": (lambda x, w: F.prelu(x, w), [_r(2, 3, 4), _r(3)]),
    "glu": (lambda x: F.glu(x, -1), [_r(3, 8)]),
    "geglu": (lambda x: F.geglu(x), [_r(3, 8)]),
    "swiglu": (lambda x: F.swiglu(x), [_r(3, 8)]),
    "reglu": (lambda x: F.reglu(x), [_r(3, 8)]),
    "softmax": (lambda x: F.softmax(x, -1), [_r(3, 8)]),
    "log_softmax": (lambda x: F.log_softmax(x, -1), [_r(3, 8)]),
    "threshold": (lambda x: F.threshold(x, 0.1, 2.0), [_r(3, 8)]),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 0.5), [_r(3, 8)]),
    "scaled_dot_product_attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                                     [_r(2, 4, 8), _r(2, 6, 8), _r(2, 6, 5)]),
}
ELEMENTWISE = ["celu", "elu", "gelu", "hardshrink", "hardsigmoid", "hardswish", "leaky_relu", "logsigmoid",
               "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softplus", "softshrink", "softsign",
               "swish", "tanh", "tanhshrink"]
for _name in ELEMENTWISE:
    SAMPLES[_name] = (getattr(F, _name), [_r(3, 8) * 3])
NAMES = sorted(SAMPLES)
# How many terms one output element sums in each sample (1 for elementwise ops): the tolerance of
# comparisons between two compiled programs (jit vs eager, remat, scan) follows it, since XLA may
# fuse and order each program's reductions differently, and differently on each CPU.
REDUCTION_SIZE = {
    "conv1d": 4 * 3, "conv2d": 2 * 9, "conv3d": 2 * 12, "conv_transpose1d": 3 * 3, "conv_transpose2d": 4 * 16,
    "conv_transpose3d": 2 * 8, "group_norm": 12, "layer_norm": 6, "linear": 5, "softmax": 8, "log_softmax": 8,
    "batch_norm": 20, "batch_norm_running_stats": 20, "rms_norm": 6,
    "interpolate": 16, "upsample": 4, "upsample_bilinear": 4,
    "scaled_dot_product_attention": 8 * 6,
}


def test_every_public_function_has_a_sample():
    assert set(F.__all__) == set(SAMPLES), set(F.__all__) ^ set(SAMPLES)


def _cast(args, dtype):
    return [jnp.asarray(a, dtype) for a in args]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_exports_for_every_platform(name, dtype):
    fn, args = SAMPLES[name]
    exported = jax.export.export(jax.jit(fn), platforms=PLATFORMS)(*_cast(args, dtype))
    assert exported.platforms == PLATFORMS
    text = exported.mlir_module()
    assert "callback" not in text and "host" not in text.lower().replace("host_", "")
    # and the exported function runs here with the same result
    np.testing.assert_allclose(
        np.asarray(exported.call(*_cast(args, dtype)), np.float32),
        np.asarray(jax.jit(fn)(*_cast(args, dtype)), np.float32),
        rtol=1e-6, atol=1e-6,
    )


@pytest.mark.parametrize("name", NAMES)
def test_transformations(name):
    fn, args = SAMPLES[name]
    x, rest = jnp.asarray(args[0]), [jnp.asarray(a) for a in args[1:]]
    f = lambda v: fn(v, *rest)  # noqa: E731
    k = REDUCTION_SIZE.get(name, 1)
    ref = f(x)
    assert_close_reduction(jax.jit(f)(x), ref, k)
    # vmap equals a Python loop over a stacked batch of valid inputs
    xs = jnp.stack([x, 2 * x - 0.5, -x])
    assert_close_reduction(jax.vmap(f)(xs), jnp.stack([f(v) for v in xs]), k)
    # grad through remat and scan equals the plain grad (the loss sums every output element too)
    cot = jnp.asarray(np.random.default_rng(1).standard_normal(ref.shape), ref.dtype)
    loss = lambda v: jnp.sum(f(v) * cot)  # noqa: E731
    g = jax.grad(loss)(x)
    assert_close_reduction(jax.grad(jax.checkpoint(loss))(x), g, k * ref.size)

    def body(carry, v):
        return carry + loss(v), None

    total, _ = jax.lax.scan(body, jnp.zeros((), ref.dtype), xs)
    terms = sum(float(jnp.sum(jnp.abs(f(v) * cot))) for v in xs)
    assert_close_reduction(total, sum(loss(v) for v in xs), k * ref.size * len(xs), scale=terms)
    _, vjp = jax.vjp(f, x)
    assert_close_reduction(vjp(cot)[0], g, k * ref.size)


@pytest.mark.parametrize("name", NAMES)
def test_compiles_once_per_shape(name):
    fn, args = SAMPLES[name]
    traces = []

    @jax.jit
    def f(*a):
        traces.append(None)
        return fn(*a)

    f(*args)
    f(*[a * 2 for a in args])  # same shapes and configuration, new values: no retrace
    f(*[jnp.asarray(a) + 1 for a in args])
    assert len(traces) == 1
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def g(*a):
        return fn(*a)

    g(*args)
    g(*[a * 3 for a in args])


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_in_same_dtype_out(name, dtype):
    fn, args = SAMPLES[name]
    out = fn(*_cast(args, dtype))
    assert out.dtype == dtype
    ref = fn(*_cast(args, jnp.float32))
    np.testing.assert_allclose(np.asarray(out, np.float32), ref, rtol=5e-2, atol=5e-2 * float(jnp.abs(ref).max()))


@pytest.mark.parametrize("name", NAMES)
def test_float64_with_x64(name):
    fn, args = SAMPLES[name]
    with jax.enable_x64(True):
        out = fn(*[jnp.asarray(a, jnp.float64) for a in args])
        assert out.dtype == jnp.float64


# --- a full train step -------------------------------------------------------------------------------


def _train_step_parts(dtype):
    model = train_sharded.Net(rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    params = jax.tree.map(lambda p: p.astype(dtype), params)
    tx = optim.adamw(1e-3)
    step = train_sharded.make_train_step(graphdef, tx)
    x = jnp.ones((4, 3, 8, 8), dtype)
    y = jnp.zeros((4,), jnp.int32)
    return step, params, tx.init(params), x, y


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_train_step_exports_for_every_platform(dtype):
    step, params, opt_state, x, y = _train_step_parts(dtype)
    exported = jax.export.export(step, platforms=PLATFORMS)(params, opt_state, x, y)
    assert "callback" not in exported.mlir_module()


def test_nnx_train_step_does_not_retrace():
    model = jn.Sequential(jn.Conv2d(3, 4, 3, rngs=nnx.Rngs(0)), jn.GroupNorm(2, 4), jn.SiLU())
    opt = nnx.Optimizer(model, optim.adamw(1e-3), wrt=nnx.Param)
    traces = []

    @nnx.jit
    def step(model, opt, x):
        traces.append(None)
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
        opt.update(model, grads)
        return loss

    for i in range(4):
        step(model, opt, jnp.full((2, 3, 6, 6), float(i)))
    assert len(traces) == 1


def test_static_configuration_is_hashable():
    for value in [(1, 2), "same", "reflect", 2]:
        hash(value)
    f = jax.jit(F.conv2d, static_argnames=("stride", "padding", "dilation", "groups", "padding_mode"))
    out = f(jnp.ones((1, 2, 6, 6)), jnp.ones((2, 1, 3, 3)), stride=(1, 1), padding="same", groups=2,
            padding_mode="circular")
    assert out.shape == (1, 2, 6, 6)


# --- sharding on 8 simulated CPU devices ---------------------------------------------------------------


@pytest.fixture(scope="module")
def eight_devices():
    if len(jax.devices()) < 8:
        pytest.fail("conftest sets --xla_force_host_platform_device_count=8 before JAX starts")
    return jax.devices()[:8]


@pytest.mark.xdist_group("sharding")
def test_sharded_example_equals_single_device(eight_devices):
    result = train_sharded.main(["--devices", "8", "--steps", "4", "--batch", "16"])
    assert result["param_rel_diff"] < 1e-5
    assert result["loss_rel_diff"] < 1e-5
    assert result["weight_spec"] == P("model") and result["mu_spec"] == P("model")


@pytest.mark.xdist_group("sharding")
def test_replicated_parameters_data_parallel(eight_devices):
    mesh = train_sharded.make_mesh(8, 1)
    sharded, _, _ = train_sharded.train(3, 16, mesh)
    single, _, _ = train_sharded.train(3, 16)
    np.testing.assert_allclose(sharded, single, rtol=1e-5)


@pytest.mark.xdist_group("sharding")
def test_norm_statistics_with_sharded_batch_and_channels(eight_devices):
    mesh = train_sharded.make_mesh(4, 2)
    x = _r(8, 8, 5, 5)
    w = _r(8)
    xs = jax.device_put(x, NamedSharding(mesh, P("data", "model")))
    gn = jax.jit(lambda v: F.group_norm(v, 2, w, w))
    np.testing.assert_allclose(gn(xs), gn(jnp.asarray(x)), rtol=1e-5, atol=1e-5)
    assert gn(xs).sharding.spec[0] in ("data", ("data",))
    ln = jax.jit(lambda v: F.layer_norm(v, (5, 5)))
    np.testing.assert_allclose(ln(xs), ln(jnp.asarray(x)), rtol=1e-5, atol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.xdist_group("sharding")
def test_two_processes_equal_one(tmp_path):
    steps, batch = 3, 16
    out = tmp_path / "result.json"
    port = str(_free_port())
    env = dict(os.environ)  # the worker replaces the device count and keeps other XLA flags
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    worker = str(Path(__file__).with_name("multiproc_worker.py"))
    procs = [
        subprocess.Popen([sys.executable, worker, str(i), port, str(steps), str(batch), str(out)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=180)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-4000:]
    got = json.loads(out.read_text())
    losses, params, _ = train_sharded.train(steps, batch)
    np.testing.assert_allclose(got["losses"], losses, rtol=1e-5)
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): v
            for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    assert got["params"].keys() == flat.keys()
    for k, v in flat.items():
        np.testing.assert_allclose(np.asarray(got["params"][k]), v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_optax_chain_is_jittable_with_donation():
    tx = optax.chain(optim.clip_grad_norm(1.0), optim.adamw(1e-3))
    params = {"w": jnp.ones((4, 4))}
    state = tx.init(params)

    def step(params, state):
        updates, state = tx.update(params, state, params)
        return optax.apply_updates(params, updates), state

    params, state = jax.jit(step, donate_argnums=(0, 1))(params, state)
    assert params["w"].shape == (4, 4)
