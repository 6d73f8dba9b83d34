"""grid_sample and affine_grid against torch: outputs and gradients (input, grid, theta) over every
mode x padding_mode x align_corners, grids far outside [-1, 1], exact pixel centres and rounding
ties, half types (bounded by torch's own half-precision error), random configurations, errors."""

import functools
import itertools
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import assert_close, assert_close_reduction, randn, to_numpy, to_torch

import jaxnn.functional as F

MODES_2D = list(itertools.product(["bilinear", "nearest", "bicubic"], ["zeros", "border", "reflection"], [False, True]))
MODES_3D = [m for m in MODES_2D if m[0] != "bicubic"]
TAPS = {"bilinear": 4, "nearest": 1, "bicubic": 16}


@functools.cache
def _compiled(mode, padding_mode, align_corners):
    """Forward and vjp, compiled once per configuration (shapes retrace as needed)."""
    def f(x, g):
        return F.grid_sample(x, g, mode, padding_mode, align_corners)

    def vjp(x, g, ct):
        return jax.vjp(f, x, g)[1](ct)

    return jax.jit(f), jax.jit(vjp)


def _grid(rng, shape, nd):
    """Random locations reaching far outside [-1, 1] (several reflections), plus the special values:
    the borders, exact pixel centres / edges for both align_corners, and +-1e4."""
    g = (rng.standard_normal(shape) * 2.0).astype(np.float32)
    special = np.array([-1.0, 1.0, 0.0, 5.5, -7.25, 0.5, -0.5, 3.0, -3.0, 1e4, -1e4, 2.0, 0.25, -0.75],
                       np.float32)
    flat = g.reshape(-1)
    flat[: min(special.size, flat.size)] = special[: flat.size]
    return g


def _compare(x, g, mode, padding_mode, align_corners, seed=0):
    fwd, vjp = _compiled(mode, padding_mode, align_corners)
    out = np.asarray(fwd(jnp.asarray(x), jnp.asarray(g)))
    tx, tg = to_torch(x, True), to_torch(g, True)
    t_out = TF.grid_sample(tx, tg, mode, padding_mode, align_corners)
    want = to_numpy(t_out)
    nd = x.ndim - 2
    taps = TAPS[mode] if nd == 2 else {"bilinear": 8, "nearest": 1}[mode]
    if mode == "nearest":
        np.testing.assert_array_equal(out, want)
    else:  # bicubic's coefficient polynomials add a few roundings per tap
        assert_close_reduction(out, want, taps, ulps=8 if mode == "bicubic" else 4,
                               scale=float(np.abs(x).max()))
    ct = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    gx, gg = vjp(jnp.asarray(x), jnp.asarray(g), jnp.asarray(ct))
    t_out.backward(to_torch(ct))
    gx, gg = np.asarray(gx), np.asarray(gg)
    assert np.isfinite(gx).all() and np.isfinite(gg).all() and np.isfinite(out).all()
    c = x.shape[1]
    if mode == "nearest":
        np.testing.assert_array_equal(gg, 0.0)  # torch: no gradient for the grid
        np.testing.assert_array_equal(to_numpy(tg.grad), 0.0)
    # input gradient: a scatter-add of weight * cotangent over every output point
    fan_in = max(1, int(np.prod(g.shape[1:-1])))
    assert_close_reduction(gx, to_numpy(tx.grad), taps * fan_in, scale=float(np.abs(ct).max()),
                           what="input gradient")
    # grid gradient: sum over channels and taps of value * weight derivative * cotangent * scale
    scale = float(np.abs(x).max() * np.abs(ct).max()) * max(x.shape[2:])
    assert_close_reduction(gg, to_numpy(tg.grad), c * taps, ulps=16, scale=scale, what="grid gradient")
    return out


def _centres(h, w, align_corners):
    """Normalised coordinates of the pixel centres, (h, w, 2) as (x, y)."""
    cols, rows = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    if align_corners:
        gx, gy = 2 * cols / (w - 1) - 1, 2 * rows / (h - 1) - 1
    else:
        gx, gy = (2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    return np.stack([xx, yy], -1)


@pytest.mark.parametrize("mode,padding_mode,align_corners", MODES_2D)
def test_grid_sample_4d_matches_torch(mode, padding_mode, align_corners):
    """One grid per configuration: rows 0-4 the exact pixel centres (which must read the pixel
    itself), rows 5-9 the points half a pixel right and below them (rounding ties for nearest; the
    last ones past the border), rows 10-14 random points far outside [-1, 1] and special values."""
    h, w = 5, 7
    rng = np.random.default_rng(0)
    x = randn(rng, (2, 3, h, w))
    centres = _centres(h, w, align_corners)
    pitch = np.array([2 / (w - 1), 2 / (h - 1)]) if align_corners else np.array([2 / w, 2 / h])
    ties = centres + pitch / 2
    g = np.concatenate([centres, ties, _grid(rng, (h, w, 2), 2)], 0)
    g = np.broadcast_to(g.astype(np.float32), (2, 3 * h, w, 2)).copy()
    out = _compare(x, g, mode, padding_mode, align_corners)
    np.testing.assert_allclose(out[:, :, :h], x, rtol=0, atol=2e-6 if mode != "nearest" else 0)


@pytest.mark.parametrize("mode,padding_mode,align_corners", MODES_3D)
def test_grid_sample_5d_matches_torch(mode, padding_mode, align_corners):
    rng = np.random.default_rng(1)
    x = randn(rng, (2, 2, 3, 4, 5))
    g = _grid(rng, (2, 3, 4, 5, 3), 3)
    g[0, 0, 0, 0] = [-1.0, 1.0, 0.0]  # corners and centre lines of the volume
    g[0, 0, 0, 1] = [1.0, -1.0, 1.0]
    _compare(x, g, mode, padding_mode, align_corners)


def test_unit_size_axes_and_empty_batch():
    x = randn(np.random.default_rng(3), (2, 2, 1, 5))
    g = _grid(np.random.default_rng(4), (2, 3, 4, 2), 2)
    for mode, pm, ac in [("bilinear", "reflection", True), ("bicubic", "border", True), ("nearest", "zeros", False),
                         ("bilinear", "reflection", False)]:
        _compare(x, g, mode, pm, ac)
    out = F.grid_sample(np.zeros((0, 2, 3, 3), np.float32), np.zeros((0, 4, 4, 2), np.float32), align_corners=False)
    assert out.shape == (0, 2, 4, 4)


def test_float64_with_x64():
    rng = np.random.default_rng(11)
    with jax.enable_x64(True):
        for nd, mode, pm, ac in [(2, "bicubic", "reflection", True), (3, "bilinear", "border", False),
                                 (2, "bilinear", "zeros", False)]:
            x = rng.standard_normal((2, 3, 4, 5) if nd == 2 else (2, 2, 3, 4, 5))
            g = rng.standard_normal((2, 3, 4, 2) if nd == 2 else (2, 2, 3, 4, 3)) * 2
            out = jax.jit(lambda a, b, m=mode, p=pm, c=ac: F.grid_sample(a, b, m, p, c))(x, g)
            assert out.dtype == np.float64
            want = TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), mode, pm, ac).numpy()
            np.testing.assert_allclose(np.asarray(out), want, rtol=1e-13, atol=1e-13)



@pytest.mark.parametrize("size", [(1, 1, 7, 3), (1, 1, 9, 1, 11), (1, 1, 100, 37)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_float64_base_grid_is_torchs_linspace(size, align_corners):
    """float64 linspace is one fused multiply-add per point in torch: evaluating it in float64 (two
    roundings) gave last-bit differences in the base grid (regression)."""
    nd = len(size) - 2
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unit-size axes with align_corners
        ident = np.broadcast_to(np.eye(nd, nd + 1), (size[0], nd, nd + 1)).copy()
        out = F.affine_grid(jnp.asarray(ident), size, align_corners)
        assert out.dtype == np.float64
        np.testing.assert_array_equal(np.asarray(out),
                                      TF.affine_grid(torch.from_numpy(ident), list(size), align_corners).numpy())


def test_numpy_float64_without_x64_is_float32_silently():
    """NumPy float64 inputs without x64 are computed as float32 like every jax op; grid_sample and
    affine_grid asked for float64 and raised JAX's "not available" UserWarning (regression)."""
    rng = np.random.default_rng(12)
    x, g, theta = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((1, 3, 2, 2)), rng.standard_normal((1, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.grid_sample(x, g, "bicubic", "border", True)
        grid = F.affine_grid(theta, (1, 1, 3, 4), False)
    assert out.dtype == grid.dtype == np.float32
    want = TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), "bicubic", "border", True).numpy()
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-5)
    want = TF.affine_grid(torch.from_numpy(theta), [1, 1, 3, 4], False).numpy()
    np.testing.assert_allclose(np.asarray(grid), want, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("mode,padding_mode,align_corners", MODES_3D)
def test_5d_infinite_coordinates_follow_torchs_scalar_kernel(mode, padding_mode, align_corners):
    """torch's 5-D kernel skips out-of-bounds corners (``zeros`` gives 0 where an infinite coordinate's
    weights are NaN) and its ``std::min``/``std::max`` clip sends NaN (an infinite coordinate
    reflected, a NaN grid) to ``size - 1``: jaxnn gave NaN and pixel 0 (regression). -3e38 is finite
    but overflows when un-normalised."""
    x = randn(np.random.default_rng(13), (1, 2, 2, 3, 4))
    pts = [[np.inf, 0.0, 0.0], [0.1, -3e38, 0.3], [0.2, 0.3, -np.inf], [np.nan, 0.0, 0.0], [0.2, np.nan, -np.inf],
           [1e20, 0.2, 0.3], [-np.inf, -np.inf, -np.inf], [0.5, -0.25, 0.75]]
    g = np.array(pts, np.float32).reshape(1, 1, 2, 4, 3)
    out = F.grid_sample(x, g, mode, padding_mode, align_corners)
    want = TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), mode, padding_mode, align_corners).numpy()
    # the bugs this guards against are NaN or a wrong pixel (O(1) off); sums of 8 corners may round apart
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-5)
HALF_CASES = [("bilinear", "zeros", False), ("bilinear", "reflection", True), ("nearest", "border", False),
              ("bicubic", "zeros", True), ("bicubic", "reflection", False)]


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("mode,padding_mode,align_corners", HALF_CASES)
def test_half_dtypes_within_torchs_own_error(dtype, nd, mode, padding_mode, align_corners):
    """torch computes float16/bfloat16 grid_sample in the half type, rounding every intermediate
    (coordinates, weights, each product and sum) in its own op order; jaxnn computes in float32 and
    rounds once. Reference: torch in float32 on the same (half-representable) inputs. jaxnn's
    error against it never exceeds torch's own half-precision error (which, for nearest, can even
    be another pixel: jaxnn reads the float32 pixel, bit for bit)."""
    if nd == 3 and mode == "bicubic":
        mode = "bilinear"
    rng = np.random.default_rng(5)
    x = randn(rng, (2, 3, 5, 6) if nd == 2 else (2, 2, 3, 4, 5), dtype)
    g = (rng.standard_normal((2, 4, 5, 2) if nd == 2 else (2, 2, 3, 4, 3)) * 1.5).astype(dtype)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    fwd, vjp = _compiled(mode, padding_mode, align_corners)
    out = fwd(jnp.asarray(x), jnp.asarray(g))
    assert out.dtype == dtype
    t_half = to_numpy(TF.grid_sample(to_torch(x), to_torch(g), **kw))
    x32, g32 = to_torch(x.astype(np.float32), True), to_torch(g.astype(np.float32), True)
    t32 = TF.grid_sample(x32, g32, **kw)
    ref = to_numpy(t32)
    ours = np.asarray(out, np.float32)
    if mode == "nearest":
        np.testing.assert_array_equal(ours, ref.astype(dtype).astype(np.float32))
    eps = float(ml_dtypes.finfo(dtype).eps)
    err_j, err_t = np.abs(ours - ref).max(), np.abs(t_half - ref).max()
    assert err_j <= max(err_t, eps * np.abs(ref).max() / 2), (err_j, err_t)
    # gradients: the same bound against torch's float32 gradients (input and grid)
    ct = np.random.default_rng(6).standard_normal(out.shape).astype(np.float32).astype(dtype)
    gx, gg = vjp(jnp.asarray(x), jnp.asarray(g), jnp.asarray(ct))
    assert gx.dtype == dtype and gg.dtype == dtype
    t32.backward(to_torch(ct.astype(np.float32)))
    th_x, th_g = to_torch(x, True), to_torch(g, True)
    TF.grid_sample(th_x, th_g, **kw).backward(to_torch(ct))
    for what, ours_g, t_g, ref_g in (("input", gx, th_x.grad, x32.grad), ("grid", gg, th_g.grad, g32.grad)):
        ref_g = to_numpy(ref_g)
        e_j = np.abs(np.asarray(ours_g, np.float32) - ref_g).max()
        e_t = np.abs(to_numpy(t_g) - ref_g).max()
        assert e_j <= max(e_t, eps * np.abs(ref_g).max()), (what, e_j, e_t)


def test_half_large_image_reads_the_right_pixels():
    """torch's 4-D float16/bfloat16 kernel computes gather offsets in 16-bit integers (wrong pixels
    past 32767 elements per channel); jaxnn's half result is torch's float32 one, rounded."""
    x = (np.arange(300 * 300, dtype=np.float32).reshape(1, 1, 300, 300) / 1000).astype(np.float16)
    g = np.array([[[[0.9, 0.9], [-0.9, -0.9]]]], np.float16)
    out = F.grid_sample(x, g, "nearest", "zeros", True)
    want = TF.grid_sample(to_torch(x.astype(np.float32)), to_torch(g.astype(np.float32)), "nearest", "zeros", True)
    np.testing.assert_array_equal(np.asarray(out), to_numpy(want).astype(np.float16))


@settings(max_examples=6)
@given(
    nd=st.sampled_from([2, 3]), cfg=st.sampled_from(MODES_2D), n=st.integers(1, 2), c=st.integers(1, 3),
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    out=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    spread=st.sampled_from([0.5, 1.0, 3.0, 20.0]), seed=st.integers(0, 2**16),
)
def test_random_configurations_match_torch(nd, cfg, n, c, sizes, out, spread, seed):
    mode, pm, ac = cfg
    if nd == 3 and mode == "bicubic":
        mode = "bilinear"
    rng = np.random.default_rng(seed)
    x = randn(rng, (n, c, *sizes[:nd]))
    g = (rng.standard_normal((n, *out[:nd], nd)) * spread).astype(np.float32)
    _compare(x, g, mode, pm, ac, seed=seed)


def test_align_corners_none_warns_like_torch():
    x, g = np.ones((1, 1, 2, 2), np.float32), np.zeros((1, 1, 1, 2), np.float32)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g))
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        out = F.grid_sample(x, g)
    np.testing.assert_array_equal(np.asarray(out), np.ones((1, 1, 1, 1), np.float32))
    th = np.eye(2, 3, dtype=np.float32)[None]
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.affine_grid(th, (1, 1, 2, 2))
    with pytest.warns(UserWarning, match="unit-size grids"):
        TF.affine_grid(torch.from_numpy(th), [1, 1, 1, 3], align_corners=True)
    with pytest.warns(UserWarning, match="unit-size grids"):
        F.affine_grid(th, (1, 1, 1, 3), align_corners=True)


X4, G4 = np.zeros((2, 3, 5, 6), np.float32), np.zeros((2, 4, 4, 2), np.float32)
GRID_SAMPLE_ERRORS = [
    (X4, G4, dict(mode="area"), ValueError, "`mode`"),
    (X4, G4, dict(padding_mode="circular"), ValueError, "`padding_mode`"),
    (X4, G4.astype(np.float64), {}, TypeError, "dtype"),
    (X4, G4[:1], {}, ValueError, "same batch size"),
    (X4, np.zeros((2, 4, 4, 3), np.float32), {}, ValueError, "grid.shape\\[-1\\]"),
    (X4, np.zeros((2, 4, 4, 1, 2), np.float32), {}, ValueError, "4-D grid"),
    (np.zeros((2, 3, 5), np.float32), np.zeros((2, 4, 1), np.float32), {}, ValueError, "4-D input"),
    (np.zeros((2, 3, 0, 6), np.float32), G4, {}, ValueError, "non-empty spatial"),
    (np.zeros((2, 3, 4, 5, 6), np.float32), np.zeros((2, 3, 3, 3, 3), np.float32), dict(mode="bicubic"),
     ValueError, "bicubic"),
    (X4.astype(np.int32), G4.astype(np.int32), {}, TypeError, "floating"),
    (X4, G4, dict(align_corners=1), TypeError, "`align_corners`"),
]


@pytest.mark.parametrize("x,g,kw,exc,fragment", GRID_SAMPLE_ERRORS)
def test_grid_sample_errors_where_torch_errors(x, g, kw, exc, fragment):
    kw = {"align_corners": False, **kw}
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError)):
        TF.grid_sample(torch.from_numpy(x), torch.from_numpy(g), **kw)
    with pytest.raises(exc, match=fragment):
        F.grid_sample(x, g, **kw)


# --- affine_grid -------------------------------------------------------------------------------------

AFFINE_SIZES = [(2, 3, 4, 5), (2, 1, 7, 1), (1, 1, 17, 33), (2, 2, 3, 4, 5), (1, 1, 9, 2, 13), (2, 3, 1, 5)]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", AFFINE_SIZES)
def test_affine_grid_matches_torch(size, align_corners):
    nd = len(size) - 2
    theta = randn(np.random.default_rng(7), (size[0], nd, nd + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unit-size axes with align_corners
        t_theta = to_torch(theta, True)
        t_out = TF.affine_grid(t_theta, list(size), align_corners)
        f = jax.jit(lambda t: F.affine_grid(t, size, align_corners))
        out = f(jnp.asarray(theta))
        ident = np.broadcast_to(np.eye(nd, nd + 1, dtype=np.float32), theta.shape)
        # the base grid is torch's linspace, bit for bit (the identity map returns it)
        np.testing.assert_array_equal(np.asarray(f(jnp.asarray(ident))),
                                      TF.affine_grid(torch.from_numpy(ident.copy()), list(size), align_corners).numpy())
        ct = np.random.default_rng(8).standard_normal(out.shape).astype(np.float32)
        (g,) = jax.jit(lambda t, c: jax.vjp(f, t)[1](c))(jnp.asarray(theta), jnp.asarray(ct))
    assert out.shape == (size[0], *size[2:], nd)
    assert_close_reduction(out, to_numpy(t_out), nd + 1, scale=float(np.abs(theta).max()))
    t_out.backward(to_torch(ct))
    assert_close_reduction(g, to_numpy(t_theta.grad), int(np.prod(size[2:])), scale=float(np.abs(ct).max()),
                           what="theta gradient")


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_affine_grid_half_dtypes(dtype):
    size = (2, 1, 6, 7)
    theta = randn(np.random.default_rng(9), (2, 2, 3), dtype)
    out = F.affine_grid(theta, size, align_corners=False)
    assert out.dtype == dtype
    ref = TF.affine_grid(to_torch(theta.astype(np.float32)), list(size), False).numpy()
    t_half = to_numpy(TF.affine_grid(to_torch(theta), list(size), False))
    eps = float(ml_dtypes.finfo(dtype).eps)
    err_j, err_t = np.abs(np.asarray(out, np.float32) - ref).max(), np.abs(t_half - ref).max()
    assert err_j <= max(err_t, eps * np.abs(ref).max() / 2), (err_j, err_t)


def test_identity_transform_resamples_the_input():
    """affine_grid(identity) + grid_sample returns the input (the spatial transformer's fixed point)."""
    x = randn(np.random.default_rng(10), (2, 3, 5, 7))
    th = np.broadcast_to(np.eye(2, 3, dtype=np.float32), (2, 2, 3))
    for ac in (False, True):
        g = F.affine_grid(th, x.shape, align_corners=ac)
        assert_close(F.grid_sample(x, g, "bilinear", "zeros", ac), x, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(F.grid_sample(x, g, "nearest", "zeros", ac)), x)


TH = np.zeros((2, 2, 3), np.float32)
AFFINE_ERRORS = [
    (TH, [3, 3, 4, 5], False, ValueError, "batch size"),
    (TH, [2, 3, 4], False, ValueError, "4-D and 5-D"),
    (TH, [2, 3, 4, 5, 6], False, ValueError, "3-D affine matrices"),
    (TH.astype(np.int32), [2, 3, 4, 5], False, TypeError, "floating"),
    (TH, [2, 3, 0, 5], False, ValueError, "positive"),
    (TH, [2, 0, 4, 5], False, ValueError, "positive"),
    (TH, [2, 3, 0, 1], True, ValueError, "positive"),
    (TH[0], [2, 3, 4, 5], False, ValueError, "2-D affine matrices"),
]


@pytest.mark.parametrize("theta,size,ac,exc,fragment", AFFINE_ERRORS)
def test_affine_grid_errors_where_torch_errors(theta, size, ac, exc, fragment):
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)):
        TF.affine_grid(torch.from_numpy(theta), size, align_corners=ac)
    with pytest.raises(exc, match=fragment):
        F.affine_grid(theta, size, align_corners=ac)
