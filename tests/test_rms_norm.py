"""F.rms_norm and RMSNorm against torch: values and gradients in float32, torch 2.13's half
precision rule (float32 computation, one rounding, eps from float32), errors; the resampling
modules' stored configuration."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from torch_ref import assert_close

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

TF = torch.nn.functional


def _torch_rms(x, shape, w, eps):
    with warnings.catch_warnings():  # torch warns about a weight dtype differing from the input's
        warnings.simplefilter("ignore", UserWarning)
        return TF.rms_norm(x, shape, w, eps)


@pytest.mark.parametrize("shape,norm", [((4, 7), (7,)), ((2, 3, 40), (3, 40)), ((5,), 5)])
@pytest.mark.parametrize("eps", [None, 1e-5])
@pytest.mark.parametrize("affine", [True, False])
def test_values_and_gradients_match_torch(rng, shape, norm, eps, affine):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    ns = (norm,) if isinstance(norm, int) else norm
    w = rng.standard_normal(ns).astype(np.float32) if affine else None
    cot = rng.standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True) if affine else None
    want = TF.rms_norm(xt, list(ns), wt, eps)
    want.backward(torch.tensor(cot))
    if affine:
        got, vjp = jax.vjp(lambda x, w: F.rms_norm(x, norm, w, eps), jnp.asarray(x), jnp.asarray(w))
        gx, gw = vjp(jnp.asarray(cot))
        assert_close(gw, wt.grad.numpy(), rtol=1e-5, atol=1e-5, what="weight grad")
    else:
        got, vjp = jax.vjp(lambda x: F.rms_norm(x, norm, None, eps), jnp.asarray(x))
        (gx,) = vjp(jnp.asarray(cot))
    assert_close(got, want.detach().numpy(), rtol=2e-6, atol=2e-6)
    assert_close(gx, xt.grad.numpy(), rtol=1e-5, atol=1e-5, what="input grad")
    assert_close(jax.jit(lambda x: F.rms_norm(x, norm, w, eps))(jnp.asarray(x)), want.detach().numpy(),
                 rtol=2e-6, atol=2e-6, what="jit")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("eps", [None, 1e-5, 3e-4])
@pytest.mark.parametrize("weight", [None, "same", "float32"])
def test_half_input_is_computed_in_float32_and_rounded_once(rng, dtype, eps, weight):
    x = jnp.asarray((rng.standard_normal((64, 37)) * 3).astype(np.float32)).astype(dtype)
    w32 = jnp.asarray(rng.standard_normal(37).astype(np.float32))
    w = None if weight is None else w32.astype(dtype) if weight == "same" else w32
    got = F.rms_norm(x, 37, w, eps)
    assert got.dtype == jnp.dtype(dtype)
    # the float64 reference, rounded where torch rounds: once, at the end; eps=None -> float32's
    xd = np.asarray(x.astype(jnp.float32), np.float64)
    e = float(np.finfo(np.float32).eps) if eps is None else eps
    ref = xd / np.sqrt((xd * xd).mean(-1, keepdims=True) + e)
    if w is not None:
        ref = ref * np.asarray(w.astype(jnp.float32), np.float64)
    ref = np.asarray(jnp.asarray(ref, jnp.float32).astype(dtype).astype(jnp.float32))
    out = np.asarray(got.astype(jnp.float32))
    ulp = float(jnp.finfo(dtype).eps) * np.abs(ref)
    assert (np.abs(out - ref) <= ulp).all() and (out != ref).mean() < 0.01  # ties of the double rounding
    tx = torch.tensor(np.asarray(x.astype(jnp.float32))).to(getattr(torch, dtype))
    tw = None if w is None else torch.tensor(np.asarray(w.astype(jnp.float32))).to(
        getattr(torch, dtype) if weight == "same" else torch.float32)
    want = _torch_rms(tx, [37], tw, eps)
    assert want.dtype == getattr(torch, dtype)
    want = want.float().numpy()
    assert (np.abs(out - want) <= ulp).all() and (out != want).mean() < 0.01


def test_default_eps_follows_the_computation_dtype():
    # a row of zeros gives 0 * rsqrt(eps): finite either way; a tiny row shows eps
    x = np.full((1, 4), 1e-4, np.float32)
    want = TF.rms_norm(torch.tensor(x), [4]).numpy()
    assert_close(F.rms_norm(jnp.asarray(x), 4), want, rtol=1e-6, atol=0)
    with jax.enable_x64(True):
        xd = np.full((1, 4), 1e-8)
        want = TF.rms_norm(torch.tensor(xd), [4]).numpy()
        got = F.rms_norm(jnp.asarray(xd), 4)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, want, rtol=1e-12)


RMS_ERRORS = [
    (lambda: F.rms_norm(jnp.ones((2, 3)), 4), ValueError, "expects `input` of shape \\[\\*, 4\\]"),
    (lambda: F.rms_norm(jnp.ones((2, 3)), 3, jnp.ones(4)), ValueError, "`weight` must have shape"),
    (lambda: F.rms_norm(jnp.ones((2, 3), jnp.int32), 3), TypeError, "floating dtype"),
    (lambda: F.rms_norm(jnp.ones((2, 3)), "3"), TypeError, "`normalized_shape` must be an int"),
    (lambda: jn.RMSNorm(-2), ValueError, "non-negative sizes"),
    (lambda: jl.RMSNorm(-2), ValueError, "non-negative sizes"),
    (lambda: jn.RMSNorm(2, device="cpu"), ValueError, "`device` must be None"),
]


@pytest.mark.parametrize("call,exc,fragment", RMS_ERRORS)
def test_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_torch_rejects_what_jaxnn_rejects():
    for call in (lambda: TF.rms_norm(torch.ones(2, 3), [4]), lambda: TF.rms_norm(torch.ones(2, 3), [3], torch.ones(4)),
                 lambda: torch.nn.RMSNorm(-2)):
        with pytest.raises(RuntimeError):
            call()


def test_module_dtype_half_input_and_state_dict(rng):
    t = torch.nn.RMSNorm((3, 4), dtype=torch.bfloat16)
    m = jn.RMSNorm((3, 4), dtype=jnp.bfloat16)
    assert m.weight[...].dtype == jnp.bfloat16 and m.normalized_shape == (3, 4) and m.eps is None
    x = jnp.asarray(rng.standard_normal((2, 3, 4)).astype(np.float32))
    lm = jl.RMSNorm((3, 4))
    variables = lm.init(jax.random.key(0), x)
    assert jl.state_dict(variables)["weight"].dtype == jnp.float32
    # a float32 module on half input: the input's dtype out, as torch's
    xh = x.astype(jnp.float16)
    got = jn.RMSNorm((3, 4))(xh)
    assert got.dtype == jnp.float16
    np.testing.assert_array_equal(lm.apply(variables, xh), got)
    np.testing.assert_array_equal(got, F.rms_norm(xh, (3, 4), jnp.ones((3, 4))))
    assert set(jn.state_dict(m)) == set(t.state_dict()) == {"weight"}
    assert jn.state_dict(jn.RMSNorm(3, elementwise_affine=False)) == {}


def test_upsample_modules_store_torchs_configuration():
    for args in ((None, 2), (None, (2, 3)), (4, 0), ((3, 5), None)):
        t, m = torch.nn.Upsample(*args), jn.Upsample(*args)
        assert m.scale_factor == t.scale_factor and type(m.scale_factor) is type(t.scale_factor)
        assert m.size == t.size
    b = jn.UpsamplingBilinear2d(scale_factor=2)
    assert (b.mode, b.align_corners, b.scale_factor) == ("bilinear", True, 2.0)
    assert jn.PixelShuffle(3).upscale_factor == 3 and jn.PixelUnshuffle(2).downscale_factor == 2
    assert jn.state_dict(b) == {}


def test_resampling_modules_fail_at_the_call_as_torch():
    jn.PixelShuffle(0)  # torch accepts the factor at construction
    torch.nn.PixelShuffle(0)
    with pytest.raises(RuntimeError):
        torch.nn.PixelShuffle(0)(torch.ones(1, 4, 2, 2))
    with pytest.raises(ValueError, match="`upscale_factor` must be positive"):
        jn.PixelShuffle(0)(jnp.ones((1, 4, 2, 2)))
    with pytest.raises(ValueError, match="divisible by `downscale_factor`"):
        jl.PixelUnshuffle(2).apply({}, jnp.ones((1, 1, 3, 4)))
    with pytest.raises(ValueError):
        torch.nn.Upsample()(torch.ones(1, 1, 4))
    with pytest.raises(ValueError):
        jn.Upsample()(jnp.ones((1, 1, 4)))
    net = jn.Sequential(jn.Conv2d(4, 16, 3, padding=1, rngs=nnx.Rngs(0)), jn.PixelShuffle(2))
    assert net(jnp.ones((1, 4, 3, 3))).shape == (1, 4, 6, 6)
