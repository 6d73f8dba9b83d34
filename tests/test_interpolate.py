"""interpolate, upsample*, pixel_shuffle/unshuffle against torch: outputs and vjp gradients."""

import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch_ref import check, randn, to_numpy, to_torch

import jaxnn.functional as F

# (spatial input shape, mode, align_corners, size, scale_factor, recompute_scale_factor)
CASES = [
    ((7,), "nearest", None, 12, None, None),
    ((7,), "nearest", None, None, 2.5, None),
    ((13,), "nearest", None, None, 0.37, None),
    ((13,), "nearest", None, None, 0.37, True),
    ((7,), "nearest", None, None, 1.01, None),  # same size, scale 1/1.01
    ((5, 7), "nearest", None, None, (2.01, 1.01), None),  # torch's 2-D copy/halving special cases
    ((5, 7), "nearest", None, (3, 11), None, None),
    ((3, 4, 5), "nearest", None, None, 2.5, None),
    ((2,), "nearest-exact", None, 41, None, None),  # the 1-D kernel's extra rounding
    ((2, 2), "nearest-exact", None, (41, 3), None, None),
    ((9,), "nearest-exact", None, None, 0.37, None),
    ((5, 7), "nearest-exact", None, None, 2.5, True),
    ((2, 3, 4), "nearest-exact", None, (41, 5, 9), None, None),
    ((7,), "linear", False, 12, None, None),
    ((7,), "linear", True, 12, None, None),
    ((13,), "linear", False, None, 0.37, None),
    ((13,), "linear", True, None, 2.5, True),
    ((5, 7), "bilinear", False, None, 2.5, None),
    ((5, 7), "bilinear", True, (3, 4), None, None),
    ((9, 6), "bilinear", False, None, (0.37, 1.5), True),
    ((5, 7), "bilinear", False, (5, 9), None, None),  # one axis unchanged: copied
    ((3, 4, 5), "trilinear", False, None, 2.5, None),
    ((3, 4, 5), "trilinear", True, (2, 7, 1), None, None),
    ((5, 7), "bicubic", False, None, 2.5, None),
    ((5, 7), "bicubic", True, (9, 3), None, None),
    ((9, 8), "bicubic", False, None, 0.37, None),
    ((13,), "area", None, 4, None, None),
    ((5, 7), "area", None, None, 2.5, None),
    ((9, 8), "area", None, None, 0.37, None),
    ((3, 4, 5), "area", None, (2, 5, 3), None, None),
]


def _kw(mode, ac, size, sf, rsf, aa=False):
    return dict(size=size, scale_factor=sf, mode=mode, align_corners=ac, recompute_scale_factor=rsf, antialias=aa)


@pytest.mark.parametrize("spatial,mode,ac,size,sf,rsf", CASES)
def test_interpolate_matches_torch(spatial, mode, ac, size, sf, rsf):
    kw = _kw(mode, ac, size, sf, rsf)
    x = randn(np.random.default_rng(0), (2, 3, *spatial))
    nearest = mode.startswith("nearest")
    # torch's 1-D/3-D nearest backward kernels do not use their forward kernels' index rules (the
    # extra rounding of nearest-exact, an unchanged size under scale 1/1.01): their gradient is not
    # the adjoint of their output there. jaxnn's gradient is the exact vjp of its (torch-equal) output.
    grad = not (nearest and len(spatial) != 2 and (sf == 1.01 or mode == "nearest-exact" and size is not None))
    if mode == "nearest-exact" and len(spatial) != 2 and size is not None:
        _check_nearest_exact_1d_3d(x, spatial, kw)
        return
    check(lambda v: F.interpolate(v, **kw), lambda t: TF.interpolate(t, **kw), [x],
          rtol=2e-6, atol=2e-6, exact=nearest, grad=grad, grad_rtol=1e-5, grad_atol=1e-5)


def _check_nearest_exact_1d_3d(x, spatial, kw):
    """torch's 1-D/3-D nearest-exact kernels disagree with each other where the source position
    ``(dst + 0.5) * scale`` lies within float32 rounding of an integer: the vectorised (AVX2/AVX-512)
    kernel rounds it once, as a fused multiply-add (2 -> 41: output 20 reads x[1], the exact
    20.5 * 2/41 = 1), the scalar kernel (ATEN_CPU_CAPABILITY=default) twice (x[0]). jaxnn gives the
    once-rounded index; the comparison with torch skips exactly those positions, which must be few."""
    out = np.asarray(F.interpolate(x, **kw))
    want = to_numpy(TF.interpolate(to_torch(x), **kw))
    sizes = kw["size"] if isinstance(kw["size"], tuple) else (kw["size"],) * len(spatial)
    keep = np.ones(out.shape, bool)
    for axis, (n_in, n_out) in enumerate(zip(spatial, sizes, strict=True)):
        scale = np.float64(np.float32(n_in) / np.float32(n_out))
        src = (np.arange(n_out) + 0.5) * scale
        tie = np.abs(src - np.round(src)) <= 2.0 ** -22 * np.maximum(src, 1.0)
        shape = [1] * out.ndim
        shape[2 + axis] = n_out
        keep &= ~tie.reshape(shape)
    assert keep.mean() > 0.8  # 2 -> 41, 3 -> 5, 4 -> 9: 13% of the 3-D case sit on exact ties
    np.testing.assert_array_equal(out[keep], want[keep])


@pytest.mark.parametrize("mode,ac,size,sf", [
    ("bilinear", False, (3, 4), None), ("bilinear", True, (4, 3), None), ("bilinear", False, None, 0.37),
    ("bicubic", False, (3, 5), None), ("bicubic", True, None, 0.45), ("bilinear", False, (20, 30), None),
    ("bicubic", False, (12, 4), None),
])
def test_interpolate_antialias_matches_torch(mode, ac, size, sf):
    kw = _kw(mode, ac, size, sf, None, aa=True)
    x = randn(np.random.default_rng(1), (2, 2, 11, 13))
    check(lambda v: F.interpolate(v, **kw), lambda t: TF.interpolate(t, **kw), [x],
          rtol=5e-6, atol=5e-6, grad_rtol=1e-5, grad_atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("spatial,mode,ac,size,sf", [
    ((5, 7), "nearest", None, None, 2.5), ((9,), "nearest-exact", None, 4, None),
    ((5, 7), "bilinear", False, None, 2.5), ((5, 7), "bicubic", True, (9, 3), None),
    ((3, 4, 5), "trilinear", False, (2, 7, 6), None), ((9, 8), "area", None, (4, 3), None),
])
def test_interpolate_half_dtypes(dtype, spatial, mode, ac, size, sf):
    kw = _kw(mode, ac, size, sf, None)
    x = randn(np.random.default_rng(2), (2, 3, *spatial), dtype)
    eps = float(ml_dtypes.finfo(dtype).eps)
    check(lambda v: F.interpolate(v, **kw), lambda t: TF.interpolate(t, **kw), [x],
          rtol=eps, atol=eps, exact=mode.startswith("nearest"), grad_rtol=4 * eps, grad_atol=4 * eps)


def test_issue_facts():
    out = F.interpolate(np.arange(4.0, dtype=np.float32).reshape(1, 1, 4), size=6)
    assert np.asarray(out).ravel().tolist() == [0, 0, 1, 2, 2, 3]
    assert TF.interpolate(torch.arange(4.0).reshape(1, 1, 4), size=6).ravel().tolist() == [0, 0, 1, 2, 2, 3]
    x = randn(np.random.default_rng(3), (1, 2, 30, 40))
    np.testing.assert_array_equal(np.asarray(F.interpolate(x, scale_factor=2.5)),
                                  to_numpy(TF.interpolate(to_torch(x), scale_factor=2.5)))


def test_scale_factor_and_size_pick_different_pixels_as_torch():
    x = randn(np.random.default_rng(4), (1, 1, 13))
    a = np.asarray(F.interpolate(x, scale_factor=0.37))
    b = np.asarray(F.interpolate(x, size=4))
    assert a.shape == b.shape and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, to_numpy(TF.interpolate(to_torch(x), scale_factor=0.37)))


X4 = np.zeros((1, 2, 4, 4), np.float32)
ERRORS = [
    (dict(size=3, scale_factor=2.0), ValueError, "only one of"),
    (dict(), ValueError, "either `size` or `scale_factor`"),
    (dict(size=3, align_corners=True), ValueError, "align_corners"),
    (dict(size=3, mode="area", align_corners=False), ValueError, "align_corners"),
    (dict(size=(2, 2, 2)), ValueError, "one entry per spatial dimension"),
    (dict(scale_factor=(2.0,)), ValueError, "one entry per spatial dimension"),
    (dict(size=(3, 3.0)), TypeError, "`size`"),
    (dict(size=2, recompute_scale_factor=True), ValueError, "recompute_scale_factor"),
    (dict(size=(0, 3)), ValueError, "greater than 0"),
    (dict(scale_factor=0.1), ValueError, "greater than 0"),
    (dict(size=3, mode="linear"), ValueError, "3-D"),
    (dict(size=3, mode="trilinear"), ValueError, "5-D"),
    (dict(size=3, mode="foo"), ValueError, "`mode`"),
    (dict(size=3, mode="nearest", antialias=True), ValueError, "antialias"),
]


@pytest.mark.parametrize("kw,exc,fragment", ERRORS)
def test_interpolate_errors_where_torch_errors(kw, exc, fragment):
    with pytest.raises(Exception):  # noqa: B017 - torch's types differ (RuntimeError, NotImplementedError)
        TF.interpolate(torch.from_numpy(X4), **kw)
    with pytest.raises(exc, match=fragment):
        F.interpolate(X4, **kw)


def test_interpolate_rank_errors():
    for x, mode in [(np.zeros((2, 3), np.float32), "nearest"), (np.zeros((1, 2, 3), np.float32), "bilinear"),
                    (np.zeros((1, 2, 3, 3, 3), np.float32), "bicubic")]:
        with pytest.raises(Exception):  # noqa: B017
            TF.interpolate(torch.from_numpy(x), size=2, mode=mode)
        with pytest.raises(ValueError, match="-D"):
            F.interpolate(x, size=2, mode=mode)
    with pytest.raises(NotImplementedError, match="lanczos"):
        F.interpolate(X4, size=2, mode="lanczos", antialias=True)


@pytest.mark.parametrize("name,kw,torch_kw", [
    ("upsample", dict(scale_factor=2, mode="bilinear"), dict(scale_factor=2, mode="bilinear")),
    ("upsample_nearest", dict(size=(3, 5)), dict(size=(3, 5))),
    ("upsample_bilinear", dict(scale_factor=1.5), dict(scale_factor=1.5)),
])
def test_deprecated_aliases_warn_like_torch(name, kw, torch_kw):
    x = randn(np.random.default_rng(5), (1, 2, 4, 6))
    with pytest.warns(UserWarning, match="deprecated"):
        t = getattr(TF, name)(to_torch(x), **torch_kw)
    with pytest.warns(UserWarning, match=f"`nn.functional.{name}` is deprecated"):
        j = getattr(F, name)(x, **kw)
    np.testing.assert_allclose(np.asarray(j), to_numpy(t), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("shape,r", [((1, 8, 3, 5), 2), ((2, 3, 18, 2, 3), 3), ((9, 1, 1), 3), ((4, 2, 2), 1)])
def test_pixel_shuffle_matches_torch(shape, r):
    x = randn(np.random.default_rng(6), shape)
    check(lambda v: F.pixel_shuffle(v, r), lambda t: TF.pixel_shuffle(t, r), [x], rtol=0, atol=0, exact=True)
    y = np.asarray(F.pixel_shuffle(x, r))
    check(lambda v: F.pixel_unshuffle(v, r), lambda t: TF.pixel_unshuffle(t, r), [y], rtol=0, atol=0, exact=True)
    np.testing.assert_array_equal(np.asarray(F.pixel_unshuffle(y, r)), x)


@pytest.mark.parametrize("fn,shape,r,exc,fragment", [
    ("pixel_shuffle", (8, 4), 2, ValueError, "at least 3"),
    ("pixel_shuffle", (1, 8, 4, 4), 0, ValueError, "positive"),
    ("pixel_shuffle", (1, 8, 4, 4), 3, ValueError, "divisible"),
    ("pixel_unshuffle", (1, 1, 5, 4), 2, ValueError, "height"),
    ("pixel_unshuffle", (1, 1, 4, 5), 2, ValueError, "width"),
    ("pixel_unshuffle", (1, 1, 4, 4), -1, ValueError, "positive"),
    ("pixel_unshuffle", (1, 1, 4, 4), 2.0, TypeError, "int"),
])
def test_pixel_shuffle_errors(fn, shape, r, exc, fragment):
    x = np.zeros(shape, np.float32)
    with pytest.raises((RuntimeError, TypeError)):
        getattr(TF, fn)(torch.from_numpy(x), r)
    with pytest.raises(exc, match=fragment):
        getattr(F, fn)(x, r)
