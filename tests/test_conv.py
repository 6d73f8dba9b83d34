"""conv1d/2d/3d and conv_transpose1d/2d/3d against torch: values, gradients, errors."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f, assert_close, check, outcome, randn, to_numpy, to_torch

import jaxnn.functional as F

CONV = {1: (F.conv1d, TF.conv1d), 2: (F.conv2d, TF.conv2d), 3: (F.conv3d, TF.conv3d)}
CONV_T = {
    1: (F.conv_transpose1d, TF.conv_transpose1d),
    2: (F.conv_transpose2d, TF.conv_transpose2d),
    3: (F.conv_transpose3d, TF.conv_transpose3d),
}
TORCH_CONV_MODULE = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


def torch_conv(n, x, w, b, stride, padding, dilation, groups, padding_mode):
    """torch's conv with a padding_mode, the way nn.ConvNd computes it."""
    if padding_mode == "zeros":
        return CONV[n][1](x, w, b, stride, padding, dilation, groups)
    m = TORCH_CONV_MODULE[n](
        w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride, padding, dilation, groups,
        bias=b is not None, padding_mode=padding_mode,
    )
    return m._conv_forward(x, w, b)


# (n, batch, c_in, size, c_out, kernel, stride, padding, dilation, groups, padding_mode, bias)
CONV_CASES = [
    (1, 2, 3, 9, 4, 3, 1, 0, 1, 1, "zeros", True),
    (1, 2, 4, 10, 6, 4, 2, 1, 1, 2, "zeros", True),
    (1, 0, 4, 10, 6, 3, 1, 1, 1, 1, "zeros", True),  # empty batch
    (1, None, 3, 9, 4, 3, 1, "same", 2, 1, "zeros", False),  # unbatched
    (1, 2, 4, 9, 4, 4, 1, "same", 1, 4, "zeros", True),  # even kernel: extra unit at the end
    (1, 2, 4, 9, 4, 3, 1, "valid", 1, 1, "reflect", True),
    (1, 2, 2, 9, 4, 3, 1, 2, 1, 1, "circular", True),
    (1, 2, 2, 9, 4, 3, 3, 4, 2, 2, "replicate", True),
    (2, 2, 3, 8, 5, 3, 1, 1, 1, 1, "zeros", True),
    (2, 2, 4, 9, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2, "zeros", True),
    (2, 2, 6, 8, 6, 3, 1, 1, 1, 6, "zeros", True),  # depthwise
    (2, 2, 6, 8, 12, 3, 2, 1, 1, 3, "zeros", True),  # groups with C_in/groups = 2
    (2, None, 3, 7, 4, (2, 4), 1, "same", (3, 1), 1, "zeros", True),
    (2, 1, 4, 8, 4, 3, 1, (1, 2), 1, 2, "reflect", True),
    (2, 1, 4, 8, 4, 3, 2, (2, 1), 1, 1, "replicate", False),
    (2, 1, 4, 8, 4, 3, 1, (3, 3), 2, 1, "circular", True),
    (2, 1, 4, 7, 4, 4, 1, "same", 1, 1, "reflect", True),
    (3, 2, 2, 5, 4, 3, 1, 1, 1, 1, "zeros", True),
    (3, 1, 4, 6, 4, (1, 2, 3), (1, 2, 1), (0, 1, 1), (1, 1, 2), 2, "zeros", True),
    (3, None, 2, 5, 2, 3, 1, "same", 1, 2, "zeros", True),
    (3, 1, 2, 5, 3, 3, 1, 1, 1, 1, "reflect", True),
    (3, 1, 2, 5, 3, 2, 1, (1, 2, 1), 1, 1, "circular", True),
]


def _conv_inputs(rng, n, batch, c_in, size, c_out, kernel, groups, bias, dtype=np.float32):
    k = kernel if isinstance(kernel, tuple) else (kernel,) * n
    shape = ((batch,) if batch is not None else ()) + (c_in,) + (size,) * n
    x = randn(rng, shape, dtype)
    w = randn(rng, (c_out, c_in // groups) + k, dtype)
    b = randn(rng, (c_out,), dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_torch(rng, case):
    n, batch, c_in, size, c_out, kernel, stride, padding, dilation, groups, mode, bias = case
    x, w, b = _conv_inputs(rng, n, batch, c_in, size, c_out, kernel, groups, bias)
    inputs = [x, w] + ([b] if bias else [])

    def jfn(x, w, b=None):
        return CONV[n][0](x, w, b, stride, padding, dilation, groups, padding_mode=mode)

    def tfn(x, w, b=None):
        return torch_conv(n, x, w, b, stride, padding, dilation, groups, mode)

    check(jfn, tfn, inputs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CONV_CASES if c[1] is not None])
def test_conv_channels_last(rng, case):
    n, batch, c_in, size, c_out, kernel, stride, padding, dilation, groups, mode, bias = case
    x, w, b = _conv_inputs(rng, n, batch, c_in, size, c_out, kernel, groups, bias)
    f = CONV[n][0]
    ref = f(jnp.asarray(x), w, b, stride, padding, dilation, groups, padding_mode=mode)
    x_last = jnp.moveaxis(jnp.asarray(x), 1, -1)
    got = f(x_last, w, b, stride, padding, dilation, groups, padding_mode=mode, channels_last=True)
    np.testing.assert_allclose(np.moveaxis(np.asarray(got), -1, 1), ref, rtol=1e-5, atol=1e-5)


# (n, batch, c_in, size, c_out_per_group, kernel, stride, padding, output_padding, groups, dilation)
CONV_T_CASES = [
    (1, 2, 3, 7, 4, 3, 1, 0, 0, 1, 1),
    (1, 2, 4, 7, 3, 4, 2, 1, 1, 2, 1),
    (1, None, 4, 6, 2, 3, 3, 2, 2, 4, 2),
    (2, 2, 4, 5, 3, 3, 2, 1, 1, 1, 1),
    (2, 2, 6, 5, 2, (3, 2), (2, 3), (1, 0), (1, 2), 3, (1, 2)),  # grouped, C_in/groups = 2
    (2, 2, 4, 5, 1, 3, 1, 1, 0, 4, 1),  # depthwise
    (2, None, 2, 4, 3, 4, 2, 3, 0, 1, 1),  # padding larger than d(k-1): crops
    (2, 1, 4, 5, 2, 3, 2, 0, 1, 2, 3),  # output_padding < dilation but >= stride? no: < stride
    (3, 1, 4, 4, 2, 3, 2, 1, 1, 2, 1),
    (3, None, 2, 3, 2, (2, 3, 1), (1, 2, 2), (0, 1, 0), (0, 1, 1), 1, (2, 1, 1)),
]


@pytest.mark.parametrize("case", CONV_T_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_matches_torch(rng, case, bias):
    n, batch, c_in, size, c_out_g, kernel, stride, padding, out_pad, groups, dilation = case
    k = kernel if isinstance(kernel, tuple) else (kernel,) * n
    shape = ((batch,) if batch is not None else ()) + (c_in,) + (size,) * n
    x = randn(rng, shape)
    w = randn(rng, (c_in, c_out_g) + k)
    inputs = [x, w] + ([randn(rng, (c_out_g * groups,))] if bias else [])
    jf, tf = CONV_T[n]
    check(
        lambda x, w, b=None: jf(x, w, b, stride, padding, out_pad, groups, dilation),
        lambda x, w, b=None: tf(x, w, b, stride, padding, out_pad, groups, dilation),
        inputs,
        rtol=1e-5,
        atol=1e-5,
    )


def test_conv_transpose_channels_last(rng):
    x = randn(rng, (2, 6, 5, 4))
    w = randn(rng, (6, 2, 3, 3))
    ref = F.conv_transpose2d(x, w, None, 2, 1, 1, 3)
    got = F.conv_transpose2d(jnp.moveaxis(x, 1, -1), w, None, 2, 1, 1, 3, channels_last=True)
    np.testing.assert_allclose(np.moveaxis(np.asarray(got), -1, 1), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
@pytest.mark.parametrize("transposed", [False, True])
def test_low_precision_against_torch(rng, dtype, transposed):
    x = randn(rng, (2, 4, 9, 9), dtype)
    w = randn(rng, (4, 4, 3, 3), dtype)
    b = randn(rng, (4,), dtype)
    if transposed:
        got = F.conv_transpose2d(x, w, b, 2, 1, 1)
        want = TF.conv_transpose2d(to_torch(x), to_torch(w), to_torch(b), 2, 1, 1)
    else:
        got = F.conv2d(x, w, b, 1, 1, padding_mode="zeros")
        want = TF.conv2d(to_torch(x), to_torch(w), to_torch(b), 1, 1)
    assert got.dtype == dtype
    np.testing.assert_allclose(as_f(got), to_numpy(want), rtol=1e-2, atol=1e-2 * np.abs(to_numpy(want)).max())


def test_float64(rng):
    with jax.enable_x64(True):
        x = rng.standard_normal((2, 3, 8, 8))
        w = rng.standard_normal((4, 3, 3, 3))
        got = F.conv2d(jnp.asarray(x), jnp.asarray(w), padding=1)
        assert got.dtype == jnp.float64
        want = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


def test_vmap_of_unbatched_equals_batched(rng):
    x, w, b = _conv_inputs(rng, 2, 3, 4, 7, 6, 3, 2, True)
    batched = F.conv2d(x, w, b, 1, 1, 1, 2, padding_mode="reflect")
    mapped = jax.vmap(lambda xi: F.conv2d(xi, w, b, 1, 1, 1, 2, padding_mode="reflect"))(x)
    np.testing.assert_allclose(mapped, batched, rtol=1e-6, atol=1e-6)
    wt = randn(rng, (4, 3, 3, 3))
    mapped_t = jax.vmap(lambda xi: F.conv_transpose2d(xi, wt, None, 2, 1, 1, 2))(x)
    batched_t = F.conv_transpose2d(x, wt, None, 2, 1, 1, 2)
    np.testing.assert_allclose(mapped_t, batched_t, rtol=1e-6, atol=1e-6)


# --- hypothesis: random valid configurations -----------------------------------------------------


@st.composite
def conv_configs(draw):
    n = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    same = draw(st.booleans())
    if same:
        stride, padding = (1,) * n, "same"
        pads = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        pads = [max(p - p // 2, p // 2) for p in pads]
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
        padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
        pads = list(padding)
    # sizes large enough for the kernel and for reflect's pad < size rule
    sizes = tuple(
        max(d * (k - 1) + 1, p + 1) + draw(st.integers(0, 3))
        for k, d, p in zip(kernel, dilation, pads, strict=True)
    )
    batch = draw(st.sampled_from([None, 1, 2]))
    bias = draw(st.booleans())
    return n, batch, c_in, sizes, c_out, kernel, stride, padding, dilation, groups, mode, bias


@settings(max_examples=150)
@given(conv_configs())
def test_conv_hypothesis(config):
    n, batch, c_in, sizes, c_out, kernel, stride, padding, dilation, groups, mode, bias = config
    rng = np.random.default_rng(sum(sizes))
    shape = ((batch,) if batch else ()) + (c_in,) + sizes
    inputs = [randn(rng, shape), randn(rng, (c_out, c_in // groups) + kernel)]
    if bias:
        inputs.append(randn(rng, (c_out,)))
    check(
        lambda x, w, b=None: CONV[n][0](x, w, b, stride, padding, dilation, groups, padding_mode=mode),
        lambda x, w, b=None: torch_conv(n, x, w, b, stride, padding, dilation, groups, mode),
        inputs,
        rtol=1e-5,
        atol=1e-5,
    )


@st.composite
def conv_t_configs(draw):
    n = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out_g = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    sizes = tuple(draw(st.integers(2, 5)) for _ in range(n))
    batch = draw(st.sampled_from([None, 1, 2]))
    return n, batch, c_in, sizes, c_out_g, kernel, stride, padding, out_pad, groups, dilation


@settings(max_examples=100)
@given(conv_t_configs())
def test_conv_transpose_hypothesis(config):
    n, batch, c_in, sizes, c_out_g, kernel, stride, padding, out_pad, groups, dilation = config
    rng = np.random.default_rng(sum(sizes))
    shape = ((batch,) if batch else ()) + (c_in,) + sizes
    x, w = randn(rng, shape), randn(rng, (c_in, c_out_g) + kernel)
    jf, tf = CONV_T[n]
    args = (stride, padding, out_pad, groups, dilation)
    t_kind, t_val = outcome(lambda: tf(to_torch(x), to_torch(w), None, *args))
    j_kind, j_val = outcome(lambda: jf(x, w, None, *args))
    if t_kind == "ok" and t_val.numel() == 0 and j_kind == "error":
        return  # torch's 1x1x1-kernel fast path skips its own "output size is too small" check
    assert t_kind == j_kind, f"torch {t_kind}: {t_val!r}; jaxnn {j_kind}: {j_val!r}"
    if t_kind == "ok":
        check(lambda x, w: jf(x, w, None, *args), lambda x, w: tf(x, w, None, *args), [x, w],
              rtol=1e-5, atol=1e-5)
    else:
        assert isinstance(j_val, ValueError)


# --- errors ----------------------------------------------------------------------------------------

X2 = np.zeros((1, 4, 6, 6), np.float32)
W2 = np.zeros((4, 2, 3, 3), np.float32)

CONV_ERRORS = [
    (dict(stride=0, groups=2), ValueError, "`stride` must be positive"),
    (dict(stride=(1, -1), groups=2), ValueError, "`stride` must be positive"),
    (dict(padding=-1, groups=2), ValueError, "`padding` must be non-negative"),
    (dict(padding=(1, -2), groups=2), ValueError, "`padding` must be non-negative"),
    (dict(dilation=0, groups=2), ValueError, "`dilation` must be positive"),
    (dict(groups=0), ValueError, "`groups` must be positive"),
    (dict(groups=-2), ValueError, "`groups` must be positive"),
    (dict(groups=3), ValueError, "not divisible by `groups`"),
    (dict(groups=1), ValueError, "expects 2"),
    (dict(padding="full", groups=2), ValueError, "'valid' or 'same'"),
    (dict(padding="same", stride=2, groups=2), ValueError, "strided convolutions"),
    (dict(padding=(1, 1, 1), groups=2), ValueError, "tuple of 2 ints"),
    (dict(stride=1.5, groups=2), TypeError, "`stride` must be an int"),
    (dict(groups=2, padding_mode="mirror"), ValueError, "`padding_mode`"),
    (dict(groups=2, padding=6, padding_mode="reflect"), ValueError, "smaller than"),
    (dict(groups=2, padding=7, padding_mode="circular"), ValueError, "more than once"),
]


@pytest.mark.parametrize("kwargs,exc,fragment", CONV_ERRORS)
def test_conv_errors(kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        F.conv2d(X2, W2, **kwargs)


def test_conv_shape_errors():
    with pytest.raises(ValueError, match="must be 4D"):
        F.conv2d(np.zeros((1, 4, 6, 6), np.float32), np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="3D \\(unbatched\\) or 4D"):
        F.conv2d(np.zeros((1, 1, 4, 6, 6), np.float32), W2)
    with pytest.raises(ValueError, match="smaller than the dilated kernel"):
        F.conv2d(np.zeros((1, 4, 2, 2), np.float32), W2, groups=2)
    with pytest.raises(ValueError, match="`bias` must have shape \\(4,\\)"):
        F.conv2d(X2, W2, np.zeros(3, np.float32), groups=2)
    with pytest.raises(TypeError, match="`weight` dtype"):
        F.conv2d(X2, W2.astype(np.float16), groups=2)
    with pytest.raises(TypeError, match="floating dtype"):
        F.conv2d(X2.astype(np.int32), W2, groups=2)


CONV_T_ERRORS = [
    (dict(stride=0), ValueError, "`stride` must be positive"),
    (dict(padding=-1), ValueError, "`padding` must be non-negative"),
    (dict(output_padding=-1), ValueError, "`output_padding` must be non-negative"),
    (dict(dilation=0), ValueError, "`dilation` must be positive"),
    (dict(output_padding=1), ValueError, "smaller than either `stride`"),
    (dict(stride=2, output_padding=2), ValueError, "smaller than either `stride`"),
    (dict(groups=0), ValueError, "`groups` must be positive"),
    (dict(groups=3), ValueError, "not divisible by `groups`"),
    (dict(padding="same"), TypeError, "`padding` must be an int"),
    (dict(padding=5), ValueError, "must be positive"),
]


@pytest.mark.parametrize("kwargs,exc,fragment", CONV_T_ERRORS)
def test_conv_transpose_errors(kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        F.conv_transpose2d(X2, W2, **kwargs)


def test_conv_transpose_channel_mismatch():
    with pytest.raises(ValueError, match="expects 4"):
        F.conv_transpose2d(np.zeros((1, 3, 5, 5), np.float32), W2)


@st.composite
def maybe_bad_conv(draw):
    stride = draw(st.integers(-1, 3))
    padding = draw(st.sampled_from([-1, 0, 1, 2, 5, "same", "valid"]))
    dilation = draw(st.integers(-1, 3))
    groups = draw(st.integers(-1, 4))
    c_in = draw(st.integers(1, 4))
    c_out = draw(st.integers(0, 4))  # 0: torch refuses an empty weight
    w_c_in = draw(st.integers(1, 4))
    size = draw(st.integers(1, 6))
    k = draw(st.integers(1, 4))
    return stride, padding, dilation, groups, c_in, c_out, w_c_in, size, k


@settings(max_examples=200)
@given(maybe_bad_conv())
def test_conv_error_parity(config):
    """Random, often invalid, configurations: jaxnn refuses exactly what torch refuses."""
    stride, padding, dilation, groups, c_in, c_out, w_c_in, size, k = config
    x = np.ones((1, c_in, size), np.float32)
    w = np.ones((c_out, w_c_in, k), np.float32)
    args = (stride, padding, dilation, groups)
    t_kind, t_val = outcome(lambda: TF.conv1d(torch.tensor(x), torch.tensor(w), None, *args))
    j_kind, j_val = outcome(lambda: F.conv1d(x, w, None, stride, padding, dilation, groups))
    assert t_kind == j_kind, f"torch {t_kind}: {t_val!r}; jaxnn {j_kind}: {j_val!r}"
    if t_kind == "ok":
        np.testing.assert_allclose(np.asarray(j_val), t_val.numpy(), rtol=1e-6)
    else:
        assert isinstance(j_val, (ValueError, TypeError))


def _compiled_ops(fn, *args) -> list[str]:
    """The optimised HLO instructions, without names, metadata and layouts."""
    text = jax.jit(fn).lower(*args).compile().as_text()
    ops = []
    for line in text.splitlines():
        line = line.split(", metadata=")[0].strip()
        if " = " in line and not line.startswith(("HloModule", "ENTRY", "}")):
            ops.append(line.split(" = ", 1)[1].split("(")[0])
    return ops


def test_wrapper_compiles_to_the_same_program_as_raw_lax():
    """The benchmark goal 'jaxnn/raw lax <= 1.03' holds by construction: same optimised HLO."""
    from jax import lax

    x, w = jnp.ones((8, 64, 32, 32)), jnp.ones((64, 64, 3, 3))
    ours = _compiled_ops(lambda x, w: F.conv2d(x, w, None, 1, 1), x, w)
    dn = ("NCHW", "OIHW", "NCHW")
    pads = [(1, 1), (1, 1)]
    raw = _compiled_ops(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=dn), x, w)
    assert ours == raw


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
@pytest.mark.parametrize("kernel, dilation", [((3, 3), 1), ((1, 3), 2), ((3, 1), (2, 1))])
def test_unpadded_2d_conv_fast_path_is_the_valid_conv(mode, kernel, dilation):
    """Unpadded stride-1 2-D convs run as a conv padded by one zero row with that output row dropped
    (XLA CPU's faster path, issue 18): values and gradients are those of the plain VALID conv."""
    from jax import lax

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, 3, 7, 6)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 3, *kernel)), jnp.float32)
    pad = 0 if mode == "zeros" else 1
    dil = (dilation, dilation) if isinstance(dilation, int) else dilation

    def ours(x, w):
        return F.conv2d(x, w, None, 1, pad, dil, padding_mode=mode)

    def plain(x, w):
        xp = x if mode == "zeros" else jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap" if mode == "circular"
                                               else mode)
        return lax.conv_general_dilated(xp, w, (1, 1), "VALID", rhs_dilation=dil,
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    assert_close(ours(x, w), plain(x, w), rtol=1e-6, atol=1e-6)
    g = jnp.asarray(rng.standard_normal(plain(x, w).shape), jnp.float32)
    for a, b in zip(jax.vjp(ours, x, w)[1](g), jax.vjp(plain, x, w)[1](g), strict=True):
        assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_unpadded_2d_conv_fast_path_forward_mode_and_partial_grads(channels_last):
    """The fast path's custom JVP (issue 18): forward mode, Hessian-vector products and gradients
    with respect to one argument only (symbolic-zero tangents) agree with the plain VALID conv."""
    from jax import lax

    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 4, 7, 6)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 2, 3, 2)), jnp.float32)
    perm = (0, 2, 3, 1) if channels_last else (0, 1, 2, 3)
    dn = ("NHWC", "OIHW", "NHWC") if channels_last else ("NCHW", "OIHW", "NCHW")
    x = jnp.transpose(x, perm)

    def ours(x, w):
        return F.conv2d(x, w, None, 1, 1, (1, 2), 2, padding_mode="replicate", channels_last=channels_last)

    def plain(x, w):
        pads = [(0, 0), (1, 1), (1, 1), (0, 0)] if channels_last else [(0, 0), (0, 0), (1, 1), (1, 1)]
        return lax.conv_general_dilated(jnp.pad(x, pads, mode="edge"), w, (1, 1), "VALID", rhs_dilation=(1, 2),
                                        dimension_numbers=dn, feature_group_count=2)

    def loss(f, *args):
        return jnp.sum(jnp.sin(f(*args)))

    tx, tw = jnp.ones_like(x), jnp.full_like(w, 0.5)
    for a, b in zip(jax.jvp(ours, (x, w), (tx, tw)), jax.jvp(plain, (x, w), (tx, tw)), strict=True):
        assert_close(a, b, rtol=1e-5, atol=1e-5)
    for argnum in (0, 1):
        assert_close(jax.grad(loss, argnum + 1)(ours, x, w), jax.grad(loss, argnum + 1)(plain, x, w),
                     rtol=1e-5, atol=1e-5)
    hvp = jax.jvp(jax.grad(lambda x: loss(ours, x, w)), (x,), (tx,))[1]
    assert_close(hvp, jax.jvp(jax.grad(lambda x: loss(plain, x, w)), (x,), (tx,))[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fn,x,w", [
    ("conv2d", (1, 2, 5, 5), (0, 2, 3, 3)),
    ("conv1d", (1, 4, 5), (1, 2, 3)),            # groups=2 needs >= 2 output channels
    ("conv_transpose1d", (1, 0, 5), (0, 2, 3)),
    ("conv_transpose1d", (1, 2, 5), (2, 0, 3)),
])
def test_empty_or_too_small_weight_is_refused_like_torch(fn, x, w):
    groups = 2 if w == (1, 2, 3) else 1
    with pytest.raises(RuntimeError):
        getattr(TF, fn)(torch.ones(x), torch.ones(w), groups=groups)
    with pytest.raises(ValueError, match="must have at least `groups`"):
        getattr(F, fn)(jnp.ones(x), jnp.ones(w), groups=groups)
