"""jaxnn's CPU kernels (jaxnn/_kernels): group_norm's float32 kernel against torch, float64 and
jaxnn's XLA implementation; when it is used and when not; building, caching and the fallback."""

import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxnn.functional as F
from jaxnn import _kernels
from jaxnn.functional import _norm

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not _kernels.available("group_norm"), reason="no C++ compiler: XLA path only")


def _xla(x, groups, w=None, b=None, channels_last=False, eps=1e-5):
    """jaxnn's XLA implementation (what runs on GPU/TPU and in exported programs)."""
    return _norm._group_norm_xla(jnp.asarray(x), w, b, groups, eps, channels_last)


def _ref(x, groups, w, b, eps=1e-5):
    """float64 group_norm of NCHW x."""
    x64 = x.astype(np.float64)
    g = x64.reshape(x.shape[0], groups, -1)
    mean, var = g.mean(-1, keepdims=True), g.var(-1, keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return y * w.astype(np.float64).reshape(shape) + b.astype(np.float64).reshape(shape)


def _hlo(fn, *args) -> str:
    return jax.jit(fn).lower(*args).as_text()


def test_the_kernel_is_what_runs_on_the_cpu():
    x = jnp.ones((2, 4, 3, 3))
    assert "jaxnn_group_norm_f32" in _hlo(partial(F.group_norm, num_groups=2), x)
    assert "jaxnn_group_norm_f32" in _hlo(partial(F.group_norm, num_groups=3, channels_last=True), x)
    # not for other dtypes, and not in programs lowered for serialisation
    assert "jaxnn_group_norm_f32" not in _hlo(partial(F.group_norm, num_groups=2), x.astype(jnp.bfloat16))
    # differentiated programs too: the derivatives use the kernel's statistics
    assert "jaxnn_group_norm_f32" in _hlo(jax.grad(lambda v: jnp.sum(F.group_norm(v, 2))), x)
    assert "jaxnn_group_norm_f32" in _hlo(lambda v: jax.jvp(partial(F.group_norm, num_groups=2), (v,), (v,)), x)
    exported = jax.export.export(jax.jit(partial(F.group_norm, num_groups=2)))(x)
    assert "jaxnn_group_norm_f32" not in exported.mlir_module()
    np.testing.assert_allclose(exported.call(x), F.group_norm(x, 2), rtol=0, atol=1e-6)


# (shape, groups): odd channel counts (no 8/16-lane multiple), a group of 1 channel, short and long
# runs, 3-D and 5-D inputs, one sample, and inputs large enough for several threads and streaming
# stores (> 4 MiB), with group starts that are not 32-byte aligned.
SHAPES = [
    ((2, 6, 5), 3), ((1, 3, 7), 3), ((2, 8, 8, 8), 4), ((1, 32, 16, 16), 8), ((2, 4, 3, 3, 3), 2),
    ((3, 5, 1, 1), 5), ((1, 20, 17, 3), 4), ((2, 24, 40, 41), 6), ((1, 320, 33, 33), 32), ((2, 64, 96, 96), 32),
    ((1, 12, 9, 999), 3),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape_g", SHAPES, ids=str)
def test_matches_torch_float64_and_the_xla_path(shape_g, channels_last):
    shape, groups = shape_g
    r = np.random.default_rng(sum(shape))
    x = (r.standard_normal(shape) * 3 + r.uniform(-2, 2, (1, shape[1]) + (1,) * (len(shape) - 2))).astype(np.float32)
    w = r.standard_normal(shape[1]).astype(np.float32)
    b = r.standard_normal(shape[1]).astype(np.float32)
    ref = _ref(x, groups, w, b)
    theirs = TF.group_norm(torch.tensor(x), groups, torch.tensor(w), torch.tensor(b)).numpy()
    xin = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if channels_last else x
    back = (lambda y: np.moveaxis(np.asarray(y), -1, 1)) if channels_last else np.asarray
    fn = jax.jit(lambda v, w, b: F.group_norm(v, groups, w, b, channels_last=channels_last))
    ours = back(fn(jnp.asarray(xin), jnp.asarray(w), jnp.asarray(b)))
    xla = back(_xla(xin, groups, jnp.asarray(w), jnp.asarray(b), channels_last))
    scale = np.abs(ref).max()
    err_ours, err_torch = np.abs(ours - ref).max(), np.abs(theirs - ref).max()
    assert err_ours <= max(err_torch, 2 ** -23 * scale), (err_ours, err_torch)
    np.testing.assert_allclose(ours, xla, rtol=0, atol=2 * 2 ** -23 * scale)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3), groups=st.sampled_from([1, 2, 3, 4]), cg=st.integers(1, 5), spatial=st.integers(1, 70),
    channels_last=st.booleans(), eps=st.sampled_from([1e-5, 1e-3, 0.0, 0.5]), affine=st.booleans(),
    offset=st.sampled_from([0.0, 1e4, -3e3]), seed=st.integers(0, 2**31 - 1),
)
def test_random_configurations(n, groups, cg, spatial, channels_last, eps, affine, offset, seed):
    c = groups * cg
    if n * cg * spatial == 1:
        return  # torch's rule: more than one value per group
    r = np.random.default_rng(seed)
    x = (r.standard_normal((n, c, spatial)) + offset).astype(np.float32)
    w = r.standard_normal(c).astype(np.float32) if affine else None
    b = r.standard_normal(c).astype(np.float32) if affine else None
    ref = _ref(x, groups, w if affine else np.ones(c), b if affine else np.zeros(c), eps)
    tw, tb = (torch.tensor(w), torch.tensor(b)) if affine else (None, None)
    theirs = TF.group_norm(torch.tensor(x), groups, tw, tb, eps).numpy()
    xin = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if channels_last else x
    jw, jb = (jnp.asarray(w), jnp.asarray(b)) if affine else (None, None)
    out = F.group_norm(jnp.asarray(xin), groups, jw, jb, eps, channels_last=channels_last)
    ours = np.moveaxis(np.asarray(out), -1, 1) if channels_last else np.asarray(out)
    if eps == 0.0 and np.any(np.ptp(x.reshape(n, groups, -1), -1) == 0):
        return  # a constant group with eps 0: 0/0, nan in both
    slack = 2 ** -23 * np.abs(ref).max()
    assert np.abs(ours - ref).max() <= np.abs(theirs - ref).max() + slack


def _ref_any(x, groups):
    x64 = x.astype(np.float64)
    g = x64.reshape(x.shape[0], groups, -1)
    return ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)


@pytest.mark.parametrize("channels_last", [False, True])
def test_extreme_magnitudes_are_right(channels_last):
    """Squares that overflow float32 (torch: 0), std near float32's range (torch: nan), spans that
    overflow x - mean in float32: the kernel's float64 statistics and its double output path give
    the float64 result. (jaxnn's XLA implementation, like torch, is limited by float32 squares.)"""
    cases = [
        (np.array([1e20, 1.0, 2.0, 3.0] * 5, np.float32).reshape(1, 4, 5), 2),
        ((np.random.default_rng(0).standard_normal((1, 2, 64)) * 1e38).astype(np.float32), 1),
        (np.array([[[3e38, 3e38], [3e38, -3e38]]], np.float32), 1),
        (np.concatenate([np.full(999, -3e38), [3e38]]).astype(np.float32).reshape(1, 2, 500), 2),
        ((np.random.default_rng(1).standard_normal((2, 4, 9)) * 1e-30).astype(np.float32), 2),
    ]
    for x, g in cases:
        xin = np.ascontiguousarray(np.moveaxis(x, 1, -1)) if channels_last else x
        y = np.asarray(F.group_norm(jnp.asarray(xin), g, channels_last=channels_last))
        y = np.moveaxis(y, -1, 1) if channels_last else y
        ref = _ref_any(x, g)
        np.testing.assert_allclose(y, ref, rtol=0, atol=4 * 2 ** -23 * np.abs(ref).max())


def test_derivatives_of_groups_beyond_float32_statistics_are_nan_not_zero():
    """std above 2^126: the output is right (double path) but rstd has no float32 value; the
    derivatives are nan (torch float32: nan output and gradients), never a silent 0."""
    x = jnp.asarray(np.array([[[3e38, -3e38, 2e38, -2e38]]], np.float32))
    w, b = jnp.asarray([2.0]), jnp.asarray([0.5])
    y = F.group_norm(x, 1, w, b)
    ref = _ref_any(np.asarray(x), 1) * 2 + 0.5
    np.testing.assert_allclose(y, ref, rtol=0, atol=4e-6)
    cot = jnp.arange(1.0, 5.0).reshape(1, 1, 4)
    dx, dw = jax.grad(lambda x, w: jnp.sum(F.group_norm(x, 1, w, b) * cot), (0, 1))(x, w)
    assert np.isnan(np.asarray(dw)).all() and np.isnan(np.asarray(dx)).all()


def test_works_with_jit_disabled():
    x = jnp.arange(24.0).reshape(2, 4, 3)
    with jax.disable_jit():
        y = F.group_norm(x, 2)
        g = jax.grad(lambda v: F.group_norm(v, 2)[0, 0, 1])(x)
    np.testing.assert_allclose(y, F.group_norm(x, 2), rtol=0, atol=1e-6)
    np.testing.assert_allclose(g, jax.grad(lambda v: F.group_norm(v, 2)[0, 0, 1])(x), rtol=0, atol=1e-6)


def test_eps_rules():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32))
    # a traced eps works (the XLA implementation), as it does for other dtypes
    traced = jax.jit(lambda v, e: F.group_norm(v, 2, eps=e))(x, 1e-3)
    np.testing.assert_allclose(traced, F.group_norm(x, 2, eps=1e-3), rtol=0, atol=1e-6)
    np.testing.assert_allclose(F.group_norm(x, 2, eps=np.float32(0.5)), F.group_norm(x, 2, eps=0.5), rtol=0, atol=1e-6)
    np.testing.assert_allclose(F.group_norm(x, 2, eps=1), F.group_norm(x, 2, eps=1.0), rtol=0, atol=0)
    for bad in ("1", None, [1e-5]):
        with pytest.raises(TypeError, match="`eps` must be a float"):
            F.group_norm(x, 2, eps=bad)
    with pytest.raises(TypeError, match="real floating dtype"):
        F.group_norm(x.astype(jnp.complex64), 2)
    with pytest.raises(TypeError, match="real floating dtype"):
        F.layer_norm(x.astype(jnp.complex64), 3)
    with pytest.raises(TypeError, match="real floating dtype"):
        F.instance_norm(x.astype(jnp.complex64))
    with pytest.raises(TypeError, match="real floating dtype"):
        F.batch_norm(x.astype(jnp.complex64), None, None, training=True)


@pytest.mark.parametrize("shape_g", [((64, 8, 8, 64), 8), ((3, 2, 2, 4), 2), ((1, 300, 40000), 1)], ids=str)
def test_channels_last_many_small_samples_and_wide_channels(shape_g):
    """Channels last: small samples are spread over the threads whole; a very wide C keeps few blocks."""
    shape, g = shape_g
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y = np.asarray(jax.jit(lambda v: F.group_norm(v, g, channels_last=True))(jnp.asarray(x)))
    ref = np.moveaxis(_ref_any(np.ascontiguousarray(np.moveaxis(x, -1, 1)), g), 1, -1)
    np.testing.assert_allclose(y, ref, rtol=0, atol=4 * 2 ** -23 * np.abs(ref).max())


def test_nonfinite_values_poison_their_group_only():
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    for pos, value in (((0, 0, 0, 0), np.inf), ((0, 1, 2, 2), -np.inf), ((1, 3, 4, 4), np.nan)):
        xv = x.copy()
        xv[pos] = value
        ours = np.asarray(F.group_norm(jnp.asarray(xv), 2))
        theirs = TF.group_norm(torch.tensor(xv), 2).numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)  # nan == nan here


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape_g", [((2, 6, 4, 4), 3), ((3, 8, 5), 4), ((1, 4, 3, 2, 2), 2), ((2, 3, 7), 3)], ids=str)
def test_derivatives_match_torch_and_the_xla_autodiff(shape_g, channels_last):
    """The analytic derivatives (custom_jvp from the kernel's statistics) against torch's autograd
    and against autodiff of the XLA implementation: vjp, jvp, and second order."""
    shape, g = shape_g
    r = np.random.default_rng(1)
    x, cot = (r.standard_normal(shape).astype(np.float32) * 2 + 0.5 for _ in range(2))
    w, b = (r.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    to = (lambda a: np.ascontiguousarray(np.moveaxis(a, 1, -1))) if channels_last else (lambda a: a)
    back = (lambda a: np.moveaxis(np.asarray(a), -1, 1)) if channels_last else np.asarray
    args = (jnp.asarray(to(x)), jnp.asarray(w), jnp.asarray(b))

    def ours(x, w, b):
        return F.group_norm(x, g, w, b, channels_last=channels_last)

    def xla(x, w, b):
        return _xla(x, g, w, b, channels_last)

    grads = jax.vjp(ours, *args)[1](jnp.asarray(to(cot)))
    grads_xla = jax.vjp(xla, *args)[1](jnp.asarray(to(cot)))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    TF.group_norm(tx, g, tw, tb).backward(torch.tensor(cot))
    for a, e, t in zip(grads, grads_xla, (tx, tw, tb), strict=True):
        a = back(a) if a.ndim > 1 else np.asarray(a)
        e = back(e) if e.ndim > 1 else np.asarray(e)
        tol = 4e-6 * max(1.0, float(np.abs(t.grad.numpy()).max()))
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=0, atol=tol)
        np.testing.assert_allclose(a, e, rtol=0, atol=tol)
    tangents = tuple(jnp.asarray(r.standard_normal(a.shape).astype(np.float32)) for a in args)
    t_ours, t_xla = jax.jvp(ours, args, tangents)[1], jax.jvp(xla, args, tangents)[1]
    np.testing.assert_allclose(t_ours, t_xla, rtol=0, atol=4e-6 * float(np.abs(t_xla).max()))

    def second(f):
        inner = jax.grad(lambda u: jnp.sum(f(u, args[1], args[2]) ** 3))
        return jax.grad(lambda v: jnp.sum(inner(v) * args[0]))(args[0])

    h_ours, h_xla = second(ours), second(xla)
    np.testing.assert_allclose(h_ours, h_xla, rtol=0, atol=1e-5 * float(np.abs(h_xla).max()))


@pytest.mark.parametrize("channels_last", [False, True])
def test_vmap_with_shared_and_per_sample_parameters(channels_last):
    r = np.random.default_rng(2)
    xs = jnp.asarray(r.standard_normal((3, 2, 7, 8, 8) if not channels_last else (3, 2, 8, 8, 8)).astype(np.float32))
    c = 7 if not channels_last else 8
    g = 7 if not channels_last else 4
    ws, bs = (jnp.asarray(r.standard_normal((3, c)).astype(np.float32)) for _ in range(2))
    def f(x, w, b):
        return F.group_norm(x, g, w, b, channels_last=channels_last)

    loop = jnp.stack([f(xs[i], ws[i], bs[i]) for i in range(3)])
    np.testing.assert_allclose(jax.vmap(f)(xs, ws, bs), loop, rtol=0, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(f, (0, None, None))(xs, ws[0], bs[0]),
                               jnp.stack([f(xs[i], ws[0], bs[0]) for i in range(3)]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(f, (None, 0, 0))(xs[0], ws, bs),
                               jnp.stack([f(xs[0], ws[i], bs[i]) for i in range(3)]), rtol=0, atol=1e-6)
    nested = jax.vmap(jax.vmap(f, (0, None, None)), (None, 0, 0))(xs, ws, bs)  # (3 params, 3 inputs, ...)
    np.testing.assert_allclose(nested[1, 2], f(xs[2], ws[1], bs[1]), rtol=0, atol=1e-6)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=300, check=False)


CHECK = """
    import warnings, jax, jax.numpy as jnp, numpy as np
    import jaxnn.functional as F
    from jaxnn.functional import _norm
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = F.group_norm(x, 2)
    print("kernel" if "jaxnn_group_norm_f32" in jax.jit(lambda v: F.group_norm(v, 2)).lower(x).as_text() else "xla")
    print("warned" if any("could not build" in str(w.message) for w in caught) else "quiet")
    print(float(jnp.abs(y - _norm._group_norm_xla(x, None, None, 2, 1e-5, False)).max()) < 1e-5)
"""


def test_build_cache_and_fallback(tmp_path):
    cache = tmp_path / "cache"
    built = _run(CHECK, JAXNN_KERNEL_CACHE=str(cache))
    assert built.stdout.split() == ["kernel", "quiet", "True"], built.stderr[-3000:]
    (so,) = cache.glob("group_norm-*.so")
    mtime = so.stat().st_mtime_ns
    again = _run(CHECK, JAXNN_KERNEL_CACHE=str(cache))
    assert again.stdout.split() == ["kernel", "quiet", "True"], again.stderr[-3000:]
    assert so.stat().st_mtime_ns == mtime and len(list(cache.iterdir())) == 1  # reused, no temporaries left
    # no working compiler: one warning, then the XLA implementation
    broken = _run(CHECK, JAXNN_KERNEL_CACHE=str(tmp_path / "other"), CXX="false")
    assert broken.stdout.split() == ["xla", "warned", "True"], broken.stderr[-3000:]
    # a CXX that does not run, or writes nothing, is not silently replaced: a warning, then XLA
    for cxx in ("no-such-compiler-here", "echo"):
        odd = _run(CHECK, JAXNN_KERNEL_CACHE=str(tmp_path / cxx), CXX=cxx)
        assert odd.stdout.split() == ["xla", "warned", "True"], odd.stderr[-3000:]
    # CXX with arguments (as `ccache g++`)
    wrapped = _run(CHECK, JAXNN_KERNEL_CACHE=str(tmp_path / "wrapped"), CXX="env c++")
    assert wrapped.stdout.split() == ["kernel", "quiet", "True"], wrapped.stderr[-3000:]
    # switched off: the XLA implementation, no warning, nothing built
    off = _run(CHECK, JAXNN_KERNEL_CACHE=str(tmp_path / "off"), JAXNN_CPU_KERNELS="0", CXX="false")
    assert off.stdout.split() == ["xla", "quiet", "True"], off.stderr[-3000:]
    assert not (tmp_path / "off").exists()
