"""F.pad against torch: bit-exact values and gradients, and the same error verdicts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st
from torch_ref import check, outcome, randn, to_torch

import jaxnn.functional as F

CASES = [
    # (shape, pad, mode)
    ((3, 4), (1, 2), "constant"),
    ((2, 3, 4, 5), (1, 1, 2, 0), "constant"),
    ((2, 3, 4, 5), (0, 1, 2, 1, 3, 3), "constant"),
    ((2, 3, 4, 5), (1, 1, 1, 1, 1, 1, 1, 1), "constant"),
    ((2, 3, 4, 5), (-1, -2, 0, -3), "constant"),
    ((2, 3, 4, 5), (-1, 2, 3, -2), "constant"),
    ((5,), (-5, 0), "constant"),
    ((), (), "constant"),
    ((2, 5), (2, 3), "reflect"),
    ((2, 3, 5), (4, 4), "reflect"),
    ((2, 3, 4, 5), (1, 3, 3, 0), "reflect"),
    ((1, 2, 3, 4, 5), (1, 2, 2, 1, 2, 0), "reflect"),
    ((2, 3, 5), (-3, 4), "reflect"),
    ((2, 3, 5), (2, -1), "reflect"),
    ((2, 3, 5), (7, 9), "replicate"),
    ((2, 3, 4, 5), (2, 0, 1, 5), "replicate"),
    ((3, 4, 5, 6), (1, 1, 2, 2, 3, 3), "replicate"),
    ((2, 3, 5), (-5, 1), "replicate"),
    ((2, 3, 5), (5, 5), "circular"),
    ((2, 3, 4, 5), (1, 2, 4, 0), "circular"),
    ((1, 2, 3, 4, 5), (1, 2, 2, 1, 3, 0), "circular"),
    ((2, 3, 5), (2, -1), "circular"),
    ((2, 3, 5), (-2, -1), "circular"),
    ((0, 3, 5), (1, 1), "reflect"),
]


@pytest.mark.parametrize("shape,amounts,mode", CASES)
def test_pad_matches_torch_exactly(rng, shape, amounts, mode):
    x = randn(rng, shape)
    check(
        lambda a: F.pad(a, amounts, mode),
        lambda a: TF.pad(a, amounts, mode),
        [x],
        rtol=1e-6,  # gradients: reflected positions sum several cotangents
        atol=1e-6,
        exact=True,  # values: bit for bit
        grad=x.size > 0,
    )


@pytest.mark.parametrize("value", [0.0, 2.5, -1e30, float("inf")])
def test_constant_value(rng, value):
    x = randn(rng, (2, 3))
    got = F.pad(jnp.asarray(x), (1, 2, 1, 0), value=value)
    want = TF.pad(torch.tensor(x), (1, 2, 1, 0), value=value)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.int32])
def test_dtypes_preserved(dtype):
    x = jnp.arange(12).reshape(1, 3, 4).astype(dtype)
    for mode in ("constant", "reflect", "replicate", "circular"):
        out = F.pad(x, (2, 1), mode)
        assert out.dtype == dtype
        want = TF.pad(torch.arange(12).reshape(1, 3, 4).float(), (2, 1), mode)
        np.testing.assert_array_equal(np.asarray(out).astype(np.float32), want.numpy())


def test_jit_and_vmap():
    x = jnp.arange(2 * 3 * 5.0).reshape(2, 3, 5)
    f = jax.jit(lambda a: F.pad(a, (2, 1), "reflect"))
    batched = f(x)
    per_sample = jax.vmap(lambda a: F.pad(a, (2, 1), "reflect"))(x)
    np.testing.assert_array_equal(batched, per_sample)


# --- errors: each condition, then a differential search over random configurations -------------

ERRORS = [
    ((2, 3), (1,), "constant", None, ValueError, "divisible by 2"),
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", None, ValueError, "only 2 dimensions"),
    ((2, 3), (-3, -1), "constant", None, ValueError, "negative output size"),
    ((2, 3), (1.5, 1), "constant", None, TypeError, "tuple of ints"),
    ((2, 3), "1,1", "constant", None, TypeError, "tuple of ints"),
    ((2, 3), (1, 1), "wrap", None, ValueError, "`mode`"),
    ((2, 3), (1, 1), "reflect", 1.0, ValueError, "`value`"),
    ((1, 2, 3), (3, 0), "reflect", None, ValueError, "smaller than"),
    ((1, 2, 3), (0, 4), "circular", None, ValueError, "wrap around more than once"),
    ((1, 2, 5), (-3, 4), "circular", None, ValueError, "after cropping"),
    ((5,), (1, 1), "reflect", None, ValueError, "2D or 3D input"),
    ((1, 2, 3, 4, 5, 6), (1, 1), "replicate", None, ValueError, "2D or 3D input"),
    ((1, 0, 5), (1, 1), "replicate", None, ValueError, "non-empty"),
    ((1, 2, 3), (-2, -1), "replicate", None, ValueError, "at least 1"),
]


@pytest.mark.parametrize("shape,amounts,mode,value,exc,fragment", ERRORS)
def test_pad_errors(shape, amounts, mode, value, exc, fragment):
    with pytest.raises(exc, match=fragment):
        F.pad(jnp.zeros(shape), amounts, mode, value)


def test_non_array_input():
    with pytest.raises(TypeError, match="`input` must be an array"):
        F.pad([1.0, 2.0], (1, 1))  # type: ignore[arg-type]


@st.composite
def pad_configs(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    ndim = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    npairs = draw(st.integers(1, min(ndim, 3) if mode != "constant" else ndim))
    amounts = tuple(draw(st.lists(st.integers(-6, 6), min_size=2 * npairs, max_size=2 * npairs)))
    return shape, amounts, mode


@given(pad_configs())
def test_pad_differential(config):
    """Random shapes/amounts/modes: jaxnn raises exactly when torch raises, else equal bits."""
    shape, amounts, mode = config
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    t_kind, t_val = outcome(lambda: TF.pad(to_torch(x), amounts, mode))
    j_kind, j_val = outcome(lambda: F.pad(jnp.asarray(x), amounts, mode))
    if j_kind == "error":
        assert isinstance(j_val, (ValueError, TypeError)), repr(j_val)
    assert t_kind == j_kind, f"torch {t_kind}: {t_val!r}; jaxnn {j_kind}: {j_val!r}"
    if t_kind == "ok":
        np.testing.assert_array_equal(np.asarray(j_val), t_val.numpy())
