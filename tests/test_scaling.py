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


_INDICES = jnp.asarray([[0, 1, 5], [5, 2, 0]])  # embedding's indices: a repeat, the padding row

# Every public function: a call with sample arguments. The first argument is the one that is
# batched by vmap and differentiated; the others are held fixed.
SAMPLES = {
    "batch_norm": (lambda x, m, v: F.batch_norm(x, m, v, training=True), [_r(4, 3, 5), _r(3), _r(3) ** 2 + 1]),
    "batch_norm_running_stats": (lambda x, m, v: F.batch_norm_running_stats(x, m, v)[1],
                                 [_r(4, 3, 5), _r(3), _r(3) ** 2 + 1]),
    "dropout": (lambda x: F.dropout(x, 0.25, rng=jax.random.key(0)), [_r(3, 8)]),
    "dropout1d": (lambda x: F.dropout1d(x, 0.25, rng=jax.random.key(0)), [_r(3, 4, 8)]),
    "dropout2d": (lambda x: F.dropout2d(x, 0.25, rng=jax.random.key(0)), [_r(2, 3, 4, 4)]),
    "dropout3d": (lambda x: F.dropout3d(x, 0.25, rng=jax.random.key(0)), [_r(2, 3, 2, 2, 2)]),
    "alpha_dropout": (lambda x: F.alpha_dropout(x, 0.25, True, rng=jax.random.key(0)), [_r(3, 8)]),
    "feature_alpha_dropout": (lambda x: F.feature_alpha_dropout(x, 0.25, True, rng=jax.random.key(0)),
                              [_r(3, 4, 5)]),
    "embedding": (lambda w: F.embedding(_INDICES, w, padding_idx=1, scale_grad_by_freq=True), [_r(6, 4)]),
    "embedding_renorm": (lambda w: F.embedding_renorm(w, _INDICES, 1.0), [_r(6, 4) * 2]),
    "one_hot": (lambda x: F.one_hot(jnp.argmax(x, -1), 8).astype(x.dtype) * x, [_r(3, 8)]),
    "multi_head_attention_forward": (
        lambda q, w, wo: F.multi_head_attention_forward(q, q, q, 8, 2, w, None, None, None, False, 0.0, wo, None)[0],
        [_r(3, 2, 8), _r(24, 8), _r(8, 8)]),
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
    "instance_norm": (lambda x, w: F.instance_norm(x, weight=w, bias=w), [_r(2, 4, 6), _r(4)]),
    "instance_norm_running_stats": (lambda x, m, v: F.instance_norm_running_stats(x, m, v)[1],
                                    [_r(2, 3, 5), _r(3), _r(3) ** 2 + 1]),
    "local_response_norm": (lambda x: F.local_response_norm(x, 3, 0.5, 0.75, 2.0), [_r(2, 5, 4)]),
    "normalize": (lambda x: F.normalize(x, 3.0, -1), [_r(3, 8)]),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b, -1), [_r(3, 8), _r(3, 8)]),
    "pairwise_distance": (lambda a, b: F.pairwise_distance(a, b), [_r(3, 8), _r(3, 8)]),
    "softmin": (lambda x: F.softmin(x, -1), [_r(3, 8)]),
    "bilinear": (lambda a, b, w: F.bilinear(a, b, w), [_r(3, 4), _r(3, 5), _r(2, 4, 5)]),
}
ELEMENTWISE = ["celu", "elu", "gelu", "hardshrink", "hardsigmoid", "hardswish", "leaky_relu", "logsigmoid",
               "mish", "relu", "relu6", "selu", "sigmoid", "silu", "softplus", "softshrink", "softsign",
               "swish", "tanh", "tanhshrink"]
for _name in ELEMENTWISE:
    SAMPLES[_name] = (getattr(F, _name), [_r(3, 8) * 3])
# Losses (jaxnn/functional/_loss.py): class-index targets are held fixed inside the lambdas.
_CLS = np.array([0, 3, 7], np.int32)
SAMPLES.update({
    "mse_loss": (lambda x, y: F.mse_loss(x, y), [_r(3, 8), _r(3, 8) + 1]),
    "l1_loss": (lambda x, y: F.l1_loss(x, y, reduction="sum"), [_r(3, 8), _r(3, 8) + 1]),
    "smooth_l1_loss": (lambda x, y: F.smooth_l1_loss(x, y, reduction="none", beta=0.5), [_r(3, 8), _r(3, 8) + 1]),
    "huber_loss": (lambda x, y: F.huber_loss(x, y, reduction="none", delta=0.5), [_r(3, 8), _r(3, 8) + 1]),
    "cross_entropy": (lambda x, w: F.cross_entropy(x, _CLS, w, label_smoothing=0.1), [_r(3, 8), _r(8) ** 2 + 0.5]),
    "nll_loss": (lambda x: F.nll_loss(x, _CLS, reduction="none"), [_r(3, 8)]),
    "binary_cross_entropy": (lambda z, y: F.binary_cross_entropy(jax.nn.sigmoid(z), y),
                             [_r(3, 8), np.abs(np.tanh(_r(3, 8)))]),
    "binary_cross_entropy_with_logits": (
        lambda x, y, p: F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=p),
        [_r(3, 8) * 3, np.abs(np.tanh(_r(3, 8))), _r(8) ** 2]),
    "kl_div": (lambda x, y: F.kl_div(x, y, reduction="batchmean", log_target=True), [_r(3, 8), _r(3, 8) - 1]),
    "poisson_nll_loss": (lambda x, y: F.poisson_nll_loss(x, y, full=True, reduction="none"),
                         [_r(3, 8), _r(3, 8) ** 2 * 2]),
    "gaussian_nll_loss": (lambda x, y, v: F.gaussian_nll_loss(x, y, v, reduction="none"),
                          [_r(3, 8), _r(3, 8) + 1, _r(3, 8) ** 2 + 0.1]),
    "cosine_embedding_loss": (lambda a, b, y: F.cosine_embedding_loss(a, b, y, 0.1, reduction="none"),
                              [_r(3, 8), _r(3, 8) + 1, np.array([1.0, -1.0, 1.0], np.float32)]),
    "margin_ranking_loss": (lambda a, b, y: F.margin_ranking_loss(a, b, y, 0.2, reduction="none"),
                            [_r(3, 8), _r(3, 8) + 1, np.sign(_r(3, 8) + 0.1)]),
    "hinge_embedding_loss": (lambda x, y: F.hinge_embedding_loss(x, y, reduction="none"),
                             [_r(3, 8), np.sign(_r(3, 8) + 0.1)]),
    "soft_margin_loss": (lambda x, y: F.soft_margin_loss(x, y, reduction="none"), [_r(3, 8), np.sign(_r(3, 8) + 0.1)]),
    "multilabel_soft_margin_loss": (lambda x, y: F.multilabel_soft_margin_loss(x, y, reduction="none"),
                                    [_r(3, 8), (_r(3, 8) > 0).astype(np.float32)]),
    "triplet_margin_loss": (lambda a, p, n: F.triplet_margin_loss(a, p, n, reduction="none", swap=True),
                            [_r(3, 8), _r(3, 8) + 0.5, _r(3, 8) - 0.5]),
    "multi_margin_loss": (lambda x, w: F.multi_margin_loss(x, _CLS, 2, 0.5, w, reduction="none"),
                          [_r(3, 8), _r(8) ** 2]),
})
# Pooling (jaxnn/functional/_pool.py): the pooled values (indices are integers, not differentiable).
SAMPLES.update({
    "max_pool1d": (lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True), [_r(2, 3, 9)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, (3, 2), 2, 1, (1, 2)), [_r(2, 3, 7, 8)]),
    "max_pool3d": (lambda x: F.max_pool3d(x, 2, 1), [_r(2, 3, 4, 4)]),
    "max_pool1d_with_indices": (lambda x: F.max_pool1d_with_indices(x, 2)[0], [_r(3, 8)]),
    "max_pool2d_with_indices": (lambda x: F.max_pool2d_with_indices(x, 3, 2, 1, ceil_mode=True)[0],
                                [_r(2, 3, 7, 8)]),
    "max_pool3d_with_indices": (lambda x: F.max_pool3d_with_indices(x, 2)[0], [_r(1, 2, 4, 4, 4)]),
    "avg_pool1d": (lambda x: F.avg_pool1d(x, 3, 2, 1, True, False), [_r(2, 3, 9)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=5), [_r(2, 3, 7, 8)]),
    "avg_pool3d": (lambda x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False), [_r(2, 3, 4, 4)]),
    "adaptive_avg_pool1d": (lambda x: F.adaptive_avg_pool1d(x, 4), [_r(2, 3, 9)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, None)), [_r(2, 3, 7, 8)]),
    "adaptive_avg_pool3d": (lambda x: F.adaptive_avg_pool3d(x, (2, 3, 2)), [_r(2, 3, 5, 4)]),
    "adaptive_max_pool1d": (lambda x: F.adaptive_max_pool1d(x, 4), [_r(2, 3, 9)]),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (3, 5)), [_r(2, 3, 7, 8)]),
    "adaptive_max_pool3d": (lambda x: F.adaptive_max_pool3d(x, 2), [_r(2, 3, 5, 4)]),
    "adaptive_max_pool1d_with_indices": (lambda x: F.adaptive_max_pool1d_with_indices(x, 4)[0], [_r(2, 3, 9)]),
    "adaptive_max_pool2d_with_indices": (lambda x: F.adaptive_max_pool2d_with_indices(x, 3)[0], [_r(3, 7, 8)]),
    "adaptive_max_pool3d_with_indices": (lambda x: F.adaptive_max_pool3d_with_indices(x, 2)[0], [_r(2, 3, 5, 4)]),
    "lp_pool1d": (lambda x: F.lp_pool1d(x, 2, 3, 2, True), [_r(2, 3, 9)]),
    "lp_pool2d": (lambda x: F.lp_pool2d(x, 1, (2, 3)), [_r(2, 3, 7, 8)]),
    "lp_pool3d": (lambda x: F.lp_pool3d(x, 2, 2), [_r(2, 3, 4, 4)]),
})
# Unpooling (jaxnn/functional/_unpool.py): random in-range indices (repeats included: the last write
# wins, each repeat takes the gradient at its index); the values are differentiated.
_UNPOOL_INDICES = {n: jnp.asarray(np.random.default_rng(n).integers(0, plane, shape), jnp.int32)
                   for n, plane, shape in ((1, 10, (2, 3, 5)), (2, 30, (2, 3, 3, 4)), (3, 64, (2, 2, 2, 2)))}
SAMPLES.update({
    "max_unpool1d": (lambda x: F.max_unpool1d(x, _UNPOOL_INDICES[1], 3, 2, 1, (2, 3, 10)), [_r(2, 3, 5)]),
    "max_unpool2d": (lambda x: F.max_unpool2d(x, _UNPOOL_INDICES[2], (3, 2), 2, 1), [_r(2, 3, 3, 4)]),
    "max_unpool3d": (lambda x: F.max_unpool3d(x, _UNPOOL_INDICES[3], 2), [_r(2, 2, 2, 2)]),
})
# Sampling and patch ops (jaxnn/functional/_fold.py, _grid_sample.py): grid_sample differentiates the grid.
SAMPLES.update({
    "unfold": (lambda x: F.unfold(x, (2, 3), 2, 1, (1, 2)), [_r(2, 3, 6, 7)]),
    "fold": (lambda x: F.fold(x, (4, 5), 2, 1, 0, 1), [_r(2, 12, 12)]),
    "grid_sample": (lambda g, x: F.grid_sample(x, g, "bicubic", "reflection", False),
                    [np.tanh(_r(2, 4, 5, 2)) * 1.5, _r(2, 3, 5, 6)]),
    "affine_grid": (lambda t: F.affine_grid(t, (2, 3, 4, 5), align_corners=True), [_r(2, 2, 3)]),
})
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
    "embedding": 2, "embedding_renorm": 4, "multi_head_attention_forward": 8 * 4,
    "instance_norm": 6, "instance_norm_running_stats": 10, "local_response_norm": 3, "normalize": 8,
    "cosine_similarity": 8, "pairwise_distance": 8, "softmin": 8, "bilinear": 20,
}
REDUCTION_SIZE.update({  # losses: a mean/sum over every element, or a sum over the class/feature dim
    "mse_loss": 24, "l1_loss": 24, "cross_entropy": 24, "binary_cross_entropy": 24, "kl_div": 24,
    "cosine_embedding_loss": 8, "multilabel_soft_margin_loss": 8, "triplet_margin_loss": 8, "multi_margin_loss": 8,
})
REDUCTION_SIZE.update({  # pooling: the window size
    "avg_pool1d": 3, "avg_pool2d": 9, "avg_pool3d": 8, "adaptive_avg_pool1d": 3, "adaptive_avg_pool2d": 3 * 8,
    "adaptive_avg_pool3d": 3 * 2 * 2, "lp_pool1d": 3, "lp_pool2d": 6, "lp_pool3d": 8,
})
REDUCTION_SIZE.update({"fold": 4, "grid_sample": 3 * 16, "affine_grid": 3})  # overlaps, taps, terms


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
