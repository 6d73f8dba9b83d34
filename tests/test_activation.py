"""The activation family against torch: values, gradients (kinks included), dtypes, errors."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch_ref import check, randn, to_numpy, to_torch

import jaxnn.functional as F

# Points where torch pins a gradient (kinks, thresholds) and far-out values that overflow naive code.
SPECIAL = np.array(
    [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 2.5, 3.0, -3.0, 6.0, 5.0, 10.0, 20.0, -20.0, 30.0,
     -30.0, 88.0, -88.0, 100.0, -100.0, 1e-3, -1e-3, 0.7, -0.7],
    np.float32,
)


def special_input(rng, shape=(4, 6, 5)):
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    flat = x.reshape(-1)
    flat[: SPECIAL.size] = SPECIAL
    return x


def gelu_t(x):
    return TF.gelu(x, approximate="tanh")


ACTIVATIONS = [
    ("relu", F.relu, TF.relu),
    ("relu6", F.relu6, TF.relu6),
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", F.elu, TF.elu),
    ("elu_0.7", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    ("selu", F.selu, TF.selu),
    ("celu_1.3", lambda x: F.celu(x, 1.3), lambda x: TF.celu(x, 1.3)),
    ("gelu", F.gelu, TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), gelu_t),
    ("silu", F.silu, TF.silu),
    ("mish", F.mish, TF.mish),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("hardtanh", F.hardtanh, TF.hardtanh),
    ("hardtanh_-0.5_2", lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0)),
    ("hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    ("hardswish", F.hardswish, TF.hardswish),
    ("softplus", F.softplus, TF.softplus),
    ("softplus_2_5", lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    ("softsign", F.softsign, TF.softsign),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid),
    ("tanhshrink", F.tanhshrink, TF.tanhshrink),
    ("softshrink", F.softshrink, TF.softshrink),
    ("softshrink_0.7", lambda x: F.softshrink(x, 0.7), lambda x: TF.softshrink(x, 0.7)),
    ("hardshrink", F.hardshrink, TF.hardshrink),
    ("hardshrink_1", lambda x: F.hardshrink(x, 1.0), lambda x: TF.hardshrink(x, 1.0)),
    ("threshold", lambda x: F.threshold(x, 1.0, -2.0), lambda x: TF.threshold(x, 1.0, -2.0)),
    ("glu", F.glu, TF.glu),
    ("glu_dim1", lambda x: F.glu(x, 1), lambda x: TF.glu(x, 1)),
    ("softmax", lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    ("log_softmax", lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    ("geglu", F.geglu, lambda x: x.chunk(2, -1)[0] * TF.gelu(x.chunk(2, -1)[1])),
    ("geglu_tanh", lambda x: F.geglu(x, approximate="tanh"),
     lambda x: x.chunk(2, -1)[0] * gelu_t(x.chunk(2, -1)[1])),
    ("swiglu", F.swiglu, lambda x: x.chunk(2, -1)[0] * TF.silu(x.chunk(2, -1)[1])),
    ("reglu", lambda x: F.reglu(x, 1), lambda x: x.chunk(2, 1)[0] * TF.relu(x.chunk(2, 1)[1])),
]
IDS = [a[0] for a in ACTIVATIONS]


@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_float32_values_and_gradients(rng, name, jf, tf):
    x = special_input(rng, (4, 6, 6))
    # Gated units multiply gelu(gate) (abs error ~1e-7 near erf = -1) by halves up to |100|.
    atol = 2e-5 if name.endswith(("glu", "glu_tanh")) else 1e-6
    check(jf, tf, [x], rtol=2e-6, atol=atol, grad_rtol=1e-5, grad_atol=max(atol, 1e-5))


@pytest.mark.parametrize("dtype,tol", [(ml_dtypes.bfloat16, 1e-2), (np.float16, 2e-3)])
@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_half_precision(rng, name, jf, tf, dtype, tol):
    x = special_input(rng, (4, 6, 6))
    x = np.clip(x, -30, 30)  # keep float16 exp() in range, like typical activations
    # torch's half softshrink compares with a float lambd forward and a half lambd backward: avoid
    # inputs that sit exactly on a rounded threshold.
    x[np.abs(np.abs(x) - 0.7) < 1e-6] = 0.75
    x = x.astype(dtype)
    check(jf, tf, [x], rtol=tol, atol=tol, grad_rtol=4 * tol, grad_atol=4 * tol)


@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_empty_and_scalar_inputs(name, jf, tf):
    empty = np.zeros((0, 4), np.float32)
    np.testing.assert_array_equal(np.asarray(jf(jnp.asarray(empty))), to_numpy(tf(torch.tensor(empty))))
    if name.startswith(("glu", "geglu", "swiglu", "reglu", "softmax", "log_softmax")):
        return  # halving / dim-based ops: 0-d has no dimension to split
    scalar = np.float32(-0.3)
    check(jf, tf, [np.asarray(scalar)], rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_nonfinite_propagate_like_torch(name, jf, tf):
    x = np.array([[np.inf, -np.inf, np.nan, 1.0], [0.0, 2.0, -np.inf, 5.0]], np.float32)
    got = np.asarray(jax.jit(jf)(jnp.asarray(x)))
    want = to_numpy(tf(torch.tensor(x)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)


def test_prelu_matches_torch(rng):
    x = special_input(rng, (3, 4, 5))
    for w in (np.array([0.25], np.float32), randn(rng, (4,))):
        check(F.prelu, TF.prelu, [x, w], rtol=2e-6, atol=1e-6)
    x1 = special_input(rng, (30,))
    check(F.prelu, TF.prelu, [x1, np.array([0.1], np.float32)], rtol=2e-6, atol=1e-6)


def test_under_jit_and_vmap(rng):
    x = special_input(rng, (3, 4, 6))
    for _, jf, _tf in ACTIVATIONS:
        whole = jax.jit(jf)(x)
        if _ == "softmax" or _ == "glu_dim1" or _ == "reglu":
            continue  # dim=1 refers to a different axis once vmapped
        mapped = jax.vmap(jf)(x)
        np.testing.assert_allclose(mapped, whole, rtol=1e-5, atol=1e-5)


def test_gelu_default_is_exact_not_tanh():
    x = jnp.linspace(-4, 4, 101)
    diff = jnp.max(jnp.abs(F.gelu(x) - jax.nn.gelu(x)))  # jax.nn.gelu defaults to tanh
    assert float(diff) > 1e-4
    assert float(jnp.max(jnp.abs(F.gelu(x) - jax.nn.gelu(x, approximate=False)))) < 1e-6


def test_softmax_dtype_and_implicit_dim(rng):
    x = randn(rng, (2, 3, 4))
    got = F.softmax(x, dim=-1, dtype=jnp.float16)
    want = TF.softmax(to_torch(x), dim=-1, dtype=torch.float16)
    assert got.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(got, np.float32), to_numpy(want), rtol=2e-3, atol=1e-3)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        implicit = F.softmax(x)
    np.testing.assert_allclose(implicit, F.softmax(x, 0), rtol=1e-6)


ERRORS = [
    (lambda: F.gelu(jnp.ones(3), approximate="fast"), ValueError, "`approximate`"),
    (lambda: F.geglu(jnp.ones(4), approximate="erf"), ValueError, "`approximate`"),
    (lambda: F.glu(jnp.ones((2, 5))), ValueError, "even size"),
    (lambda: F.glu(jnp.ones(())), ValueError, "0-d"),
    (lambda: F.geglu(jnp.ones((3, 3)), dim=0), ValueError, "even size"),
    (lambda: F.glu(jnp.ones((2, 4)), dim=2), ValueError, "out of range"),
    (lambda: F.prelu(jnp.ones((2, 3, 4)), jnp.ones(2)), ValueError, "1 or the input's channel size"),
    (lambda: F.prelu(jnp.ones((2, 3)), jnp.ones((3, 1))), ValueError, "scalar or 1D"),
    (lambda: F.prelu(jnp.ones(()), jnp.ones(1)), ValueError, "zero-dim"),
    (lambda: F.softshrink(jnp.ones(3), -0.5), ValueError, "`lambd`"),
    (lambda: F.hardtanh(jnp.ones(3), 1.0, -1.0), ValueError, "`min_val`"),
    (lambda: F.celu(jnp.ones(3), 0.0), ValueError, "`alpha`"),
    (lambda: F.softplus(jnp.ones(3), 0.0), ValueError, "`beta`"),
    (lambda: F.silu(jnp.ones(3, jnp.int32)), TypeError, "floating dtype"),
    (lambda: F.gelu([1.0, 2.0]), TypeError, "must be an array"),
    (lambda: F.softmax(jnp.ones((2, 3)), dim=1.0), TypeError, "`dim` must be an int"),
]


@pytest.mark.parametrize("call,exc,fragment", ERRORS)
def test_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_inplace_is_accepted_and_ignored():
    x = jnp.array([-1.0, 2.0])
    np.testing.assert_array_equal(F.relu(x, inplace=True), F.relu(x))
    np.testing.assert_array_equal(x, jnp.array([-1.0, 2.0]))


def test_torch_reference_sanity():
    # hardswish's gradient at the corners is torch's convention (0 at -3, 1 at 3)
    x = to_torch(np.array([-3.0, 3.0], np.float32), requires_grad=True)
    TF.hardswish(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0])
    g = jax.grad(lambda v: F.hardswish(v).sum())(jnp.array([-3.0, 3.0]))
    np.testing.assert_allclose(g, [0.0, 1.0])
