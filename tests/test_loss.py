"""Losses against torch: outputs and vjp gradients (input, and target where torch differentiates it),
every reduction, torch's legacy size_average/reduce rule, half precision, extreme logits, errors."""

from __future__ import annotations

import math
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f, assert_close, reduction_tol, to_numpy, to_torch

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

REDUCTIONS = ["mean", "sum", "none"]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _n(shape, seed=0, scale=1.0):
    return (_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _u(shape, lo=0.0, hi=1.0, seed=0):
    return _rng(seed).uniform(lo, hi, shape).astype(np.float32)


def _sign(shape, seed=0):
    return np.where(_rng(seed).random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _tol(out: np.ndarray, k: int) -> tuple[float, float]:
    rtol = max(2e-6, reduction_tol(k, ulps=8))
    scale = float(np.max(np.abs(out))) if out.size and np.isfinite(out).any() else 1.0
    return rtol, rtol * max(scale, 1e-6)


def run_case(name, args, diff, kwargs, *, quiet=False, seed=0, jit=True, grad=True):
    """jaxnn and torch on the same arrays; ``diff[i]``: torch differentiates ``args[i]``.
    Compares the output, then jax.vjp against torch autograd for each differentiable array."""
    jfn, tfn = getattr(F, name), getattr(TF, name)
    idx = [i for i, d in enumerate(diff) if d]

    def assemble(floats, base, conv):
        out = [conv(a) for a in base]
        for i, v in zip(idx, floats, strict=True):
            out[i] = v
        return out

    def jcall(*floats):
        return jfn(*assemble(floats, args, lambda a: a if a is None else jnp.asarray(a)), **kwargs)

    t_args = [None if a is None else to_torch(a, requires_grad=bool(d) and grad) for a, d in zip(args, diff,
                                                                                                 strict=True)]
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        t_out = tfn(*t_args, **{k: (to_torch(v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()})
        j_floats = [jnp.asarray(args[i]) for i in idx]
        f = jax.jit(jcall) if jit else jcall
        j_out = f(*j_floats)
    want = to_numpy(t_out)
    k = max(int(np.size(a)) for a in args if a is not None)
    rtol, atol = _tol(as_f(want), k)
    assert j_out.dtype == jnp.dtype(args[0].dtype) if args[0].dtype.kind == "f" else True
    assert_close(j_out, want, rtol=rtol, atol=atol)
    if not grad or not idx:
        return
    cot = _rng(seed + 1).standard_normal(want.shape).astype(np.float32)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        _, vjp = jax.vjp(jcall, *j_floats)
        j_grads = vjp(jnp.asarray(cot, j_out.dtype))
        t_out.backward(to_torch(cot.astype(np.asarray(want).dtype)))
    for i, jg in zip(idx, j_grads, strict=True):
        tg = t_args[i].grad
        tg = np.zeros_like(args[i]) if tg is None else to_numpy(tg)
        rtol, atol = _tol(tg, k)
        assert_close(jg, tg, rtol=max(rtol, 1e-5), atol=max(atol, 1e-6), what=f"gradient of argument {i}")


# --- pointwise regression losses -------------------------------------------------------------------------

POINTWISE = []
for red in REDUCTIONS:
    POINTWISE += [
        ("mse_loss", [_n((3, 5)), _n((3, 5), 1)], [1, 1], {"reduction": red}),
        ("mse_loss", [_n((3, 5)), _n((3, 5), 1), _u((3, 5), 0.1, 2.0, 2)], [1, 1, 1], {"reduction": red}),
        ("l1_loss", [_n((2, 3, 4)), _n((2, 3, 4), 1)], [1, 1], {"reduction": red}),
        ("l1_loss", [_n((4,)), _n((4,), 1), _u((4,), 0.1, 2.0, 2)], [1, 1, 1], {"reduction": red}),
        ("smooth_l1_loss", [_n((3, 6), scale=2), _n((3, 6), 1)], [1, 1], {"reduction": red}),
        ("smooth_l1_loss", [_n((3, 6), scale=2), _n((3, 6), 1)], [1, 1], {"reduction": red, "beta": 0.3}),
        ("smooth_l1_loss", [_n((3, 6), scale=2), _n((3, 6), 1)], [1, 1], {"reduction": red, "beta": 0.0}),
        ("huber_loss", [_n((3, 6), scale=2), _n((3, 6), 1)], [1, 1], {"reduction": red}),
        ("huber_loss", [_n((3, 6), scale=2), _n((3, 6), 1)], [1, 1], {"reduction": red, "delta": 0.4}),
        ("huber_loss", [_n((3, 6), scale=2), _n((3, 6), 1), None, None, _u((3, 6), 0.1, 2.0, 3)], [1, 1, 0, 0, 1],
         {"reduction": red}),
        ("soft_margin_loss", [_n((3, 5), scale=3), _sign((3, 5), 1)], [1, 0], {"reduction": red}),
        ("hinge_embedding_loss", [_n((3, 5), scale=2), _sign((3, 5), 1)], [1, 0], {"reduction": red}),
        ("hinge_embedding_loss", [_n((3, 5), scale=2), _sign((3, 5), 1)], [1, 0], {"reduction": red, "margin": 0.5}),
        ("margin_ranking_loss", [_n((6,)), _n((6,), 1), _sign((6,), 2)], [1, 1, 0], {"reduction": red}),
        ("margin_ranking_loss", [_n((2, 6)), _n((2, 6), 1), _sign((2, 6), 2)], [1, 1, 0],
         {"reduction": red, "margin": 0.3}),
        ("poisson_nll_loss", [_n((3, 5)), _u((3, 5), 0.0, 4.0, 1)], [1, 1], {"reduction": red}),
        ("poisson_nll_loss", [_n((3, 5)), _u((3, 5), 0.1, 4.0, 1)], [1, 1], {"reduction": red, "full": True}),
        ("poisson_nll_loss", [_u((3, 5), 0.1, 3.0), _u((3, 5), 0.1, 4.0, 1)], [1, 1],
         {"reduction": red, "log_input": False, "full": True}),
        ("poisson_nll_loss", [_u((3, 5), 0.0, 3.0), _u((3, 5), 0.1, 4.0, 1)], [1, 1],
         {"reduction": red, "log_input": False, "eps": 1e-3}),
        ("kl_div", [np.log(_u((3, 5), 0.05, 1.0)), _u((3, 5), 0.05, 1.0, 1)], [1, 1],
         {"reduction": "batchmean" if red == "mean" else red}),
        ("kl_div", [np.log(_u((3, 5), 0.05, 1.0)), np.log(_u((3, 5), 0.05, 1.0, 1))], [1, 1],
         {"reduction": "batchmean" if red == "mean" else red, "log_target": True}),
        ("gaussian_nll_loss", [_n((4, 3)), _n((4, 3), 1), _u((4, 3), 0.2, 2.0, 2)], [1, 1, 1], {"reduction": red}),
        ("gaussian_nll_loss", [_n((4, 3)), _n((4, 3), 1), _u((4,), 0.2, 2.0, 2)], [1, 1, 1],
         {"reduction": red, "full": True}),
        ("gaussian_nll_loss", [_n((4, 3)), _n((4, 3), 1), _u((4, 1), 0.2, 2.0, 2)], [1, 1, 1], {"reduction": red}),
        ("gaussian_nll_loss", [_n((2, 4, 3)), _n((2, 4, 3), 1), _u((2, 1, 3), 0.2, 2.0, 2)], [1, 1, 1],
         {"reduction": red}),
        ("gaussian_nll_loss", [_n((4, 3)), _n((4, 3), 1), _u((4, 3), 0.0, 1e-5, 2)], [1, 1, 1],
         {"reduction": red, "eps": 1e-4}),
        ("binary_cross_entropy", [_u((3, 5), 0.02, 0.98), _u((3, 5), seed=1)], [1, 1], {"reduction": red}),
        ("binary_cross_entropy", [_u((3, 5), 0.02, 0.98), _u((3, 5), seed=1), _u((5,), 0.1, 2, 2)], [1, 1, 0],
         {"reduction": red}),
        ("binary_cross_entropy_with_logits", [_n((3, 5), scale=3), _u((3, 5), seed=1)], [1, 1], {"reduction": red}),
        ("binary_cross_entropy_with_logits", [_n((3, 5), scale=3), _u((3, 5), seed=1), _u((3, 1), 0.1, 2, 2)],
         [1, 1, 0], {"reduction": red, "pos_weight": _u((5,), 0.5, 3.0, 3)}),
        ("multilabel_soft_margin_loss", [_n((3, 5), scale=2), _u((3, 5), seed=1).round()], [1, 1], {"reduction": red}),
        ("multilabel_soft_margin_loss", [_n((2, 3, 5), scale=2), _u((2, 3, 5), seed=1).round(), _u((5,), 0.1, 2, 2)],
         [1, 1, 1], {"reduction": red}),
        ("cosine_embedding_loss", [_n((4, 6)), _n((4, 6), 1), _sign((4,), 2)], [1, 1, 0], {"reduction": red}),
        ("cosine_embedding_loss", [_n((4, 6)), _n((4, 6), 1), _sign((4,), 2)], [1, 1, 0],
         {"reduction": red, "margin": -0.2}),
        ("cosine_embedding_loss", [_n((6,)), _n((6,), 1), np.float32(-1.0) * np.ones((), np.float32)], [1, 1, 0],
         {"reduction": red}),
        ("triplet_margin_loss", [_n((4, 6)), _n((4, 6), 1), _n((4, 6), 2)], [1, 1, 1], {"reduction": red}),
        ("triplet_margin_loss", [_n((4, 6)), _n((4, 6), 1), _n((4, 6), 2)], [1, 1, 1],
         {"reduction": red, "p": 1, "swap": True, "margin": 2.0}),
        ("triplet_margin_loss", [_n((6,)), _n((6,), 1), _n((6,), 2)], [1, 1, 1], {"reduction": red, "p": 3.0}),
        ("triplet_margin_loss", [_n((4, 6)), _n((4, 6), 1), _n((1, 6), 2)], [1, 1, 1],
         {"reduction": red, "p": math.inf, "swap": True}),
    ]
# the weight is a keyword argument for these (positional in torch after size_average/reduce)
_KW_WEIGHT = {"mse_loss", "l1_loss"}


def _ids(cases):
    return [f"{c[0]}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("case", POINTWISE, ids=_ids(POINTWISE))
def test_pointwise_losses_match_torch(case):
    name, args, diff, kwargs = case
    if name in _KW_WEIGHT and len(args) == 3:  # torch 2.13's per-element `weight=` keyword
        return _run_weighted(name, args[0], args[1], args[2], kwargs["reduction"])
    if name == "huber_loss" and len(args) == 5:
        return _run_weighted(name, args[0], args[1], args[4], kwargs["reduction"])
    run_case(name, args, diff, kwargs)


def _run_weighted(name, x, y, w, reduction):
    """mse_loss / l1_loss / huber_loss with ``weight=`` (input's shape), by keyword as torch's."""
    jfn, tfn = getattr(F, name), getattr(TF, name)
    tx, ty, tw = (to_torch(a, requires_grad=True) for a in (x, y, w))
    t_out = tfn(tx, ty, reduction=reduction, weight=tw)

    def f(a, b, c):
        return jfn(a, b, reduction=reduction, weight=c)

    j_out = jax.jit(f)(jnp.asarray(x), jnp.asarray(y), jnp.asarray(w))
    rtol, atol = _tol(to_numpy(t_out), x.size)
    assert_close(j_out, to_numpy(t_out), rtol=rtol, atol=atol)
    cot = _rng(5).standard_normal(j_out.shape).astype(np.float32)
    t_out.backward(torch.from_numpy(cot))
    _, vjp = jax.vjp(f, jnp.asarray(x), jnp.asarray(y), jnp.asarray(w))
    for jg, t in zip(vjp(jnp.asarray(cot)), (tx, ty, tw), strict=True):
        rtol, atol = _tol(to_numpy(t.grad), x.size)
        assert_close(jg, to_numpy(t.grad), rtol=max(rtol, 1e-5), atol=max(atol, 1e-6), what="gradient")


@pytest.mark.parametrize("name,shapes", [
    ("mse_loss", [(3, 5), (5,)]),
    ("l1_loss", [(3, 1), (1, 4)]),
    ("smooth_l1_loss", [(2, 3, 4), (3, 1)]),
    ("huber_loss", [(4,), (2, 4)]),
])
def test_broadcast_target_warns_like_torch(name, shapes):
    x, y = _n(shapes[0]), _n(shapes[1], 1)
    with pytest.warns(UserWarning, match="Using a target size") as jrec:
        getattr(F, name)(jnp.asarray(x), jnp.asarray(y))
    with pytest.warns(UserWarning, match="Using a target size") as trec:
        getattr(TF, name)(torch.tensor(x), torch.tensor(y))
    assert str(jrec[0].message) == str(trec[0].message).replace("torch.Size([", "(").replace("])", ")")
    run_case(name, [x, y], [1, 1], {}, quiet=True)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "soft_margin_loss",
                                  "poisson_nll_loss", "multilabel_soft_margin_loss"])
def test_integer_target_is_promoted_like_torch(name):
    x, y = _n((3, 4)), _rng(2).integers(-1, 3, (3, 4)).astype(np.int32)
    want = getattr(TF, name)(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
    got = getattr(F, name)(jnp.asarray(x), jnp.asarray(y))
    assert got.dtype == jnp.float32
    assert_close(got, want.numpy(), rtol=reduction_tol(12), atol=1e-6)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "poisson_nll_loss"])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_integer_input_with_floating_target_is_promoted_like_torch(name, red):
    x, y = _rng(2).integers(-1, 3, (3, 4)).astype(np.int32), _n((3, 4))
    want = getattr(TF, name)(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y), reduction=red)
    got = getattr(F, name)(jnp.asarray(x), jnp.asarray(y), reduction=red)
    assert got.dtype == jnp.float32
    assert_close(got, want.numpy(), rtol=reduction_tol(12), atol=1e-6)


def test_integer_input_errors_where_torch_has_no_kernel():
    x = jnp.ones((2,), jnp.int32)
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "soft_margin_loss"):  # int with int
        with pytest.raises(TypeError, match="`input` must have a floating dtype"):
            getattr(F, name)(x, x)
    for name in ("huber_loss", "soft_margin_loss", "kl_div"):  # torch refuses these with a float target too
        with pytest.raises(TypeError, match="`input` must have a floating dtype"):
            getattr(F, name)(x, jnp.ones((2,)), reduction="sum")
    got = F.poisson_nll_loss(x, x)  # torch: exp/log of an integer tensor are float32
    assert got.dtype == jnp.float32
    assert_close(got, TF.poisson_nll_loss(torch.ones(2, dtype=torch.long), torch.ones(2, dtype=torch.long)).numpy(),
                 rtol=1e-6, atol=1e-6)


def test_kl_div_rejects_integer_target_like_torch():
    with pytest.raises(RuntimeError, match="Integral inputs not supported"):
        TF.kl_div(torch.zeros(2), torch.ones(2, dtype=torch.long), reduction="sum")
    with pytest.raises(TypeError, match="`target` must have a floating dtype"):
        F.kl_div(jnp.zeros(2), jnp.ones(2, jnp.int32), reduction="sum")


# --- classification --------------------------------------------------------------------------------------


def _targets(shape, c, seed=0, ignore=None, frac=0.3):
    t = _rng(seed).integers(0, c, shape).astype(np.int64)
    if ignore is not None:
        t = np.where(_rng(seed + 7).random(shape) < frac, ignore, t)
    return t


def run_class_case(name, x, target, kwargs, *, seed=0, grad=True):
    """nll_loss / cross_entropy with integer targets: the target is held fixed (not differentiable)."""
    kw = dict(kwargs)
    w = kw.pop("weight", None)
    jfn, tfn = getattr(F, name), getattr(TF, name)
    tx = to_torch(x, requires_grad=True)
    tw = None if w is None else to_torch(w)  # torch: not differentiable with respect to the class weights
    t_out = tfn(tx, torch.from_numpy(target), weight=tw, **kw)
    jt = jnp.asarray(target.astype(np.int32))

    def f(a, ww):
        return jfn(a, jt, weight=ww, **kw)

    j_out = jax.jit(f)(jnp.asarray(x), None if w is None else jnp.asarray(w))
    want = to_numpy(t_out)
    rtol, atol = _tol(want, x.size)
    assert j_out.dtype == jnp.dtype(x.dtype)
    assert_close(j_out, want, rtol=rtol, atol=atol)
    if not grad:
        return
    cot = _rng(seed + 1).standard_normal(want.shape).astype(np.float32)
    t_out.backward(to_torch(cot))
    _, vjp = jax.vjp(lambda a: f(a, None if w is None else jnp.asarray(w)), jnp.asarray(x))
    (gx,) = vjp(jnp.asarray(cot))
    tg = to_numpy(tx.grad)
    rtol, atol = _tol(tg, x.size)
    assert_close(gx, tg, rtol=max(rtol, 1e-5), atol=max(atol, 1e-6), what="gradient")


CLASS_SHAPES = [((5, 4), (5,)), ((4,), ()), ((4,), (1,)), ((3, 4, 5), (3, 5)), ((2, 3, 4, 5), (2, 4, 5)),
                ((2, 3, 2, 3, 2), (2, 2, 3, 2)), ((0, 4), (0,))]
CLASS_CASES = []
for xs, ts in CLASS_SHAPES:
    c = xs[0] if len(xs) == 1 else xs[1]
    for red in REDUCTIONS:
        for extra in ({}, {"weight": _u((c,), 0.2, 2.0, 4)}, {"ignore_index": 1},
                      {"weight": _u((c,), 0.2, 2.0, 4), "ign": 1}):
            CLASS_CASES.append((xs, ts, red, extra))


@pytest.mark.parametrize("fn,label_smoothing", [("nll_loss", 0.0), ("cross_entropy", 0.0), ("cross_entropy", 0.25)])
@pytest.mark.parametrize("case", CLASS_CASES, ids=[f"{c[0]}-{c[2]}-{sorted(c[3])}" for c in CLASS_CASES])
def test_class_index_losses_match_torch(fn, case, label_smoothing):
    xs, ts, red, extra = case
    extra = dict(extra)
    c = xs[0] if len(xs) == 1 else xs[1]
    ign = extra.pop("ign", None)
    ignore = extra.get("ignore_index", -100)
    x = _n(xs, 3, scale=2)
    if fn == "nll_loss":
        x = np.asarray(torch.log_softmax(torch.from_numpy(x), 0 if len(xs) == 1 else 1))
    target = _targets(ts, c, 5, ignore=ignore if (ign or "ignore_index" in extra) else None)
    kw = dict(extra, reduction=red)
    if fn == "cross_entropy":
        kw["label_smoothing"] = label_smoothing
    if xs == (4,) and ts == (1,):
        # torch's forward takes a (C,) input with a (1,) target (not with label smoothing: see the
        # error table), and its backward then fails with "size mismatch": compare the output only
        if label_smoothing:
            return
        run_class_case(fn, x, target, kw, grad=False)
        return
    run_class_case(fn, x, target, kw)


MULTI_MARGIN = [((5, 4), (5,)), ((4,), ()), ((4,), (1,)), ((6, 3), (6,))]


@pytest.mark.parametrize("shapes", MULTI_MARGIN, ids=[str(m) for m in MULTI_MARGIN])
@pytest.mark.parametrize("p,margin,weighted", [(1, 1.0, False), (2, 0.5, True), (1, 2.0, True), (2, 1.0, False)])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_multi_margin_loss_matches_torch(shapes, p, margin, weighted, red):
    xs, ts = shapes
    c = xs[-1]
    x = _n(xs, 3)
    t = _targets(ts, c, 4)
    xt, tt = to_torch(x, requires_grad=True), torch.from_numpy(t)
    w = _u((c,), 0.2, 2.0, 5) if weighted else None
    want = TF.multi_margin_loss(xt, tt, p, margin, None if w is None else torch.from_numpy(w), reduction=red)
    jt = jnp.asarray(t.astype(np.int32))

    def f(a):
        return F.multi_margin_loss(a, jt, p, margin, None if w is None else jnp.asarray(w), reduction=red)

    got = jax.jit(f)(jnp.asarray(x))
    rtol, atol = _tol(to_numpy(want), x.size)
    assert_close(got, to_numpy(want), rtol=rtol, atol=atol)
    cot = _rng(6).standard_normal(want.shape).astype(np.float32)
    want.backward(torch.from_numpy(cot))
    (g,) = jax.vjp(f, jnp.asarray(x))[1](jnp.asarray(cot))
    assert_close(g, to_numpy(xt.grad), rtol=1e-5, atol=1e-6, what="gradient")


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("red", REDUCTIONS)
def test_all_targets_ignored_is_nan_for_mean(label_smoothing, weighted, red):
    x = _n((3, 4))
    t = np.full((3,), -100, np.int64)
    kw = {"reduction": red, "label_smoothing": label_smoothing}
    if weighted:
        kw["weight"] = _u((4,), 0.5, 2, 1)
    run_class_case("cross_entropy", x, t, kw)
    got = F.cross_entropy(jnp.asarray(x), jnp.asarray(t), **{k: (jnp.asarray(v) if k == "weight" else v)
                                                              for k, v in kw.items()})
    assert bool(jnp.isnan(got).all()) == (red == "mean")


PROB_CASES = []
for red in REDUCTIONS:
    for xs in [(5, 4), (4,), (2, 3, 4), (2, 3, 2, 2)]:
        c = xs[0] if len(xs) == 1 else xs[1]
        for extra in ({}, {"weight": _u((c,), 0.2, 2.0, 4)}, {"label_smoothing": 0.2},
                      {"weight": _u((c,), 0.2, 2.0, 4), "label_smoothing": 0.7}):
            PROB_CASES.append((xs, red, extra))


@pytest.mark.parametrize("case", PROB_CASES, ids=[f"{c[0]}-{c[1]}-{sorted(c[2])}" for c in PROB_CASES])
def test_cross_entropy_probabilities_match_torch(case):
    xs, red, extra = case
    cdim = 0 if len(xs) == 1 else 1
    x = _n(xs, 1, scale=2)
    y = np.asarray(torch.softmax(torch.from_numpy(_n(xs, 2)), cdim))
    kw = dict(extra, reduction=red)
    w = kw.pop("weight", None)
    if w is not None:
        run_case("cross_entropy", [x, y, w], [1, 1, 1], kw)
    else:
        run_case("cross_entropy", [x, y], [1, 1], kw)


def test_cross_entropy_empty_batch_is_nan():
    for target in (np.zeros((0,), np.int64), np.zeros((0, 4), np.float32)):
        want = TF.cross_entropy(torch.zeros(0, 4), torch.from_numpy(target)).item()
        got = F.cross_entropy(jnp.zeros((0, 4)), jnp.asarray(target))
        assert math.isnan(want) and bool(jnp.isnan(got))


# --- extreme inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("red", REDUCTIONS)
def test_extreme_logits(red):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, -np.inf, 1.0]], np.float32)
    run_class_case("cross_entropy", x, np.array([0, 0, 2]), {"reduction": red})
    run_class_case("cross_entropy", x[:2], np.array([0, 1]), {"reduction": red, "label_smoothing": 0.1})
    z = np.array([1e4, -1e4, 50.0, -50.0, 0.0], np.float32)
    run_case("binary_cross_entropy_with_logits", [z, np.array([0, 1, 1, 0, 1], np.float32)], [1, 1],
             {"reduction": red})
    run_case("binary_cross_entropy_with_logits", [z, np.array([0, 1, 1, 0, 1], np.float32)], [1, 0],
             {"reduction": red, "pos_weight": np.array([2.0], np.float32)})
    p = np.array([0.0, 1.0, 1e-30, 1 - 1e-7, 0.5], np.float32)
    run_case("binary_cross_entropy", [p, np.array([1, 0, 1, 1, 0], np.float32)], [1, 0], {"reduction": red})


def test_poisson_full_target_gradient_at_zero_is_nan_like_torch():
    x, y = _n((4,)), np.array([0.0, 0.5, 1.0, 3.0], np.float32)
    ty = torch.from_numpy(y).requires_grad_(True)
    TF.poisson_nll_loss(torch.from_numpy(x), ty, full=True, reduction="sum").backward()
    g = jax.grad(lambda t: F.poisson_nll_loss(jnp.asarray(x), t, full=True, reduction="sum"))(jnp.asarray(y))
    assert_close(g, ty.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert bool(jnp.isnan(g[0])) and bool(jnp.isfinite(g[1:]).all())


def test_soft_margin_overflow_like_torch():
    x, y = np.array([-1e4, 1e4, 20.0, -88.0], np.float32), np.ones(4, np.float32)
    want = TF.soft_margin_loss(torch.tensor(x), torch.tensor(y), reduction="none").numpy()
    got = F.soft_margin_loss(jnp.asarray(x), jnp.asarray(y), reduction="none")
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("name,kwargs", [("l1_loss", {}), ("l1_loss", {"weight": True}),
                                         ("smooth_l1_loss", {"beta": 0.0})])
def test_l1_gradient_at_a_tie_is_zero_like_torch(name, kwargs):
    """torch's ``abs`` backward is ``sign``: 0 where input == target (``jnp.abs``'s is 1 there)."""
    x, y = np.array([0.0, 1.0, -2.0, 3.0], np.float32), np.array([0.0, 0.0, -2.0, 1.0], np.float32)
    w = _u((4,), 0.5, 2.0, 3)
    if kwargs.get("weight"):
        kwargs = {"weight": w}
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    getattr(TF, name)(tx, ty, reduction="sum", **tkw).backward()
    jkw = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    gx, gy = jax.grad(lambda a, b: getattr(F, name)(a, b, reduction="sum", **jkw), argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_array_equal(np.asarray(gx), tx.grad.numpy())
    np.testing.assert_array_equal(np.asarray(gy), ty.grad.numpy())


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, math.inf, -math.inf, 1.5])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_coincident_points_gradient_like_torch(p, swap):
    """eps=0 and anchor == positive (or == negative in one coordinate): torch's norm backward (0 at
    a zero norm and at a zero difference), not nan or jnp.abs's subgradient 1."""
    a = _n((3, 4))
    pos = a.copy()
    pos[1, 0] += 1.0
    neg = _n((3, 4), 1)
    neg[2] = a[2]
    neg[0, 1] = a[0, 1]
    ts = [torch.tensor(v, requires_grad=True) for v in (a, pos, neg)]
    TF.triplet_margin_loss(*ts, p=p, eps=0.0, swap=swap, reduction="sum").backward()
    out = F.triplet_margin_loss(*(jnp.asarray(v) for v in (a, pos, neg)), p=p, eps=0.0, swap=swap, reduction="sum")
    grads = jax.grad(lambda *v: F.triplet_margin_loss(*v, p=p, eps=0.0, swap=swap, reduction="sum"),
                     argnums=(0, 1, 2))(*(jnp.asarray(v) for v in (a, pos, neg)))
    want = TF.triplet_margin_loss(*(torch.tensor(v) for v in (a, pos, neg)), p=p, eps=0.0, swap=swap,
                                  reduction="sum")
    assert_close(out, want.numpy(), rtol=1e-5, atol=1e-6)
    for g, t in zip(grads, ts, strict=True):
        assert_close(g, t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_soft_margin_target_broadcasting_past_input_raises_like_torch():
    """torch writes the loss into a tensor of input's shape: a target that broadcasts it larger fails."""
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        TF.soft_margin_loss(torch.zeros(3), torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"output with shape \(3\) doesn't match the broadcast shape \(4, 3\)"):
        F.soft_margin_loss(jnp.zeros(3), jnp.ones((4, 3)))
    got = F.soft_margin_loss(jnp.zeros((4, 3)), jnp.ones(3), reduction="none")  # the other way round: fine
    assert got.shape == TF.soft_margin_loss(torch.zeros(4, 3), torch.ones(3), reduction="none").shape


# --- legacy size_average / reduce -------------------------------------------------------------------------

LEGACY = [(None, False), (False, None), (False, False), (True, True), (True, None), (None, True), (True, False)]
LEGACY_FNS = [
    ("mse_loss", lambda: [_n((3, 4)), _n((3, 4), 1)], [1, 1]),
    ("l1_loss", lambda: [_n((3, 4)), _n((3, 4), 1)], [1, 1]),
    ("smooth_l1_loss", lambda: [_n((3, 4)), _n((3, 4), 1)], [1, 1]),
    ("kl_div", lambda: [_n((3, 4)), _u((3, 4), 0.1, 1, 1)], [1, 1]),
    ("poisson_nll_loss", lambda: [_n((3, 4)), _u((3, 4), 0, 3, 1)], [1, 1]),
    ("binary_cross_entropy", lambda: [_u((3, 4), 0.1, 0.9), _u((3, 4), seed=1)], [1, 1]),
    ("binary_cross_entropy_with_logits", lambda: [_n((3, 4)), _u((3, 4), seed=1)], [1, 1]),
    ("soft_margin_loss", lambda: [_n((3, 4)), _sign((3, 4), 1)], [1, 0]),
    ("hinge_embedding_loss", lambda: [_n((3, 4)), _sign((3, 4), 1)], [1, 0]),
    ("multilabel_soft_margin_loss", lambda: [_n((3, 4)), _u((3, 4), seed=1).round()], [1, 1]),
    ("margin_ranking_loss", lambda: [_n((5,)), _n((5,), 1), _sign((5,), 2)], [1, 1, 0]),
    ("cosine_embedding_loss", lambda: [_n((3, 4)), _n((3, 4), 1), _sign((3,), 2)], [1, 1, 0]),
    ("triplet_margin_loss", lambda: [_n((3, 4)), _n((3, 4), 1), _n((3, 4), 2)], [1, 1, 1]),
]


@pytest.mark.parametrize("size_average,reduce", LEGACY)
@pytest.mark.parametrize("name,make,diff", LEGACY_FNS, ids=[f[0] for f in LEGACY_FNS])
def test_legacy_size_average_reduce(name, make, diff, size_average, reduce):
    args = make()
    kw = {"size_average": size_average, "reduce": reduce, "reduction": "sum"}
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated") as jrec:
        getattr(F, name)(*[jnp.asarray(a) for a in args], **kw)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated") as trec:
        getattr(TF, name)(*[torch.from_numpy(a) for a in args], **kw)
    assert [str(w.message) for w in jrec] == [str(w.message) for w in trec]
    run_case(name, args, diff, kw, quiet=True)


@pytest.mark.parametrize("fn", ["nll_loss", "cross_entropy"])
@pytest.mark.parametrize("size_average,reduce", LEGACY)
def test_legacy_class_losses(fn, size_average, reduce):
    x = _n((4, 3))
    t = np.array([0, 2, -100, 1])
    with pytest.warns(UserWarning, match="size_average and reduce"):
        want = getattr(TF, fn)(torch.from_numpy(x), torch.from_numpy(t), size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning, match="size_average and reduce"):
        got = getattr(F, fn)(jnp.asarray(x), jnp.asarray(t), size_average=size_average, reduce=reduce)
    assert_close(got, want.numpy(), rtol=1e-6, atol=1e-6)


def test_kl_div_mean_warns_like_torch():
    x, y = _n((2, 3)), _u((2, 3), 0.1, 1, 1)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size") as rec:
        got = F.kl_div(jnp.asarray(x), jnp.asarray(y))
    with pytest.warns(UserWarning) as trec:
        want = TF.kl_div(torch.from_numpy(x), torch.from_numpy(y))
    assert str(rec[0].message) == str(trec[0].message)
    assert_close(got, want.numpy(), rtol=1e-6, atol=1e-7)
    # 0-d input: batchmean is the sum, as torch
    assert_close(F.kl_div(jnp.float32(0.5), jnp.float32(0.3), reduction="batchmean"),
                 TF.kl_div(torch.tensor(0.5), torch.tensor(0.3), reduction="batchmean").numpy(), rtol=1e-6, atol=0)


def test_gaussian_nll_float_var():
    x, y = _n((3, 4)), _n((3, 4), 1)
    want = TF.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(y), 0.7, full=True)
    got = jax.jit(lambda a, b: F.gaussian_nll_loss(a, b, 0.7, full=True))(jnp.asarray(x), jnp.asarray(y))
    assert_close(got, want.numpy(), rtol=4e-6, atol=1e-6)


# --- half precision ---------------------------------------------------------------------------------------

HALF = [
    ("mse_loss", [_n((4, 8)), _n((4, 8), 1)]),
    ("l1_loss", [_n((4, 8)), _n((4, 8), 1)]),
    ("smooth_l1_loss", [_n((4, 8)), _n((4, 8), 1)]),
    ("huber_loss", [_n((4, 8)), _n((4, 8), 1)]),
    ("soft_margin_loss", [_n((4, 8)), _sign((4, 8), 1)]),
    ("binary_cross_entropy", [_u((4, 8), 0.05, 0.95), _u((4, 8), seed=1)]),
    ("binary_cross_entropy_with_logits", [_n((4, 8)), _u((4, 8), seed=1)]),
    ("kl_div", [np.log(_u((4, 8), 0.1, 1)), _u((4, 8), 0.1, 1, 1)]),
    ("poisson_nll_loss", [_n((4, 8)), _u((4, 8), 0, 3, 1)]),
    ("gaussian_nll_loss", [_n((4, 8)), _n((4, 8), 1), _u((4, 8), 0.5, 2, 2)]),
    ("hinge_embedding_loss", [_n((4, 8)), _sign((4, 8), 1)]),
    ("multilabel_soft_margin_loss", [_n((4, 8)), _u((4, 8), seed=1).round()]),
    ("margin_ranking_loss", [_n((8,)), _n((8,), 1), _sign((8,), 2)]),
    ("cosine_embedding_loss", [_n((4, 8)), _n((4, 8), 1), _sign((4,), 2)]),
    ("triplet_margin_loss", [_n((4, 8)), _n((4, 8), 1), _n((4, 8), 2)]),
    ("cross_entropy", [_n((4, 8)), np.array([0, 3, 7, 1])]),
    ("nll_loss", [np.log(_u((4, 8), 0.05, 1)), np.array([0, 3, 7, 1])]),
]


# Elementwise losses whose torch ops round every step to the half dtype (jaxnn rounds at the same
# places): 'none' is bit-exact. The others (torch's smooth_l1/huber kernels round differently for
# float16 and bfloat16, a vectorisation choice; kl_div; the norms of triplet/cosine; log_softmax)
# are compared within a few units in the last place.
EXACT_HALF = {"mse_loss", "l1_loss", "soft_margin_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
              "poisson_nll_loss", "gaussian_nll_loss", "hinge_embedding_loss", "margin_ranking_loss", "nll_loss"}


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("red", ["none", "mean"])
@pytest.mark.parametrize("name,args", HALF, ids=[h[0] for h in HALF])
def test_half_precision_close_to_torch(name, args, red, dtype):
    """Computed in float32 and rounded once; torch rounds some intermediates to the half dtype: within
    a few units in the last place (documented in the module)."""
    cast = [a.astype(dtype) if a.dtype == np.float32 else a for a in args]
    kw = {"reduction": "batchmean" if (name == "kl_div" and red == "mean") else red}
    got = getattr(F, name)(*[jnp.asarray(a) for a in cast], **kw)
    want = getattr(TF, name)(*[to_torch(a) for a in cast], **kw)
    assert got.dtype == jnp.dtype(dtype)
    if red == "none" and name in EXACT_HALF:
        np.testing.assert_array_equal(as_f(got), to_numpy(want))
        return
    eps = float(ml_dtypes.finfo(dtype).eps)
    assert_close(got, to_numpy(want), rtol=8 * eps, atol=8 * eps * float(np.max(np.abs(to_numpy(want)))))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["poisson_nll_loss", "gaussian_nll_loss", "binary_cross_entropy_with_logits",
                                  "binary_cross_entropy", "mse_loss"])
def test_half_precision_options_bit_exact(name, dtype):
    """The optional terms (Stirling, ``full``, ``pos_weight``, weights) keep torch's roundings."""
    x, y, v = _n((16, 16)), _u((16, 16), 0.05, 3.0, 1), _u((16, 16), 0.05, 2.0, 2)
    args, kw = {
        "poisson_nll_loss": ([x, y], {"full": True}),
        "gaussian_nll_loss": ([x, y, v], {"full": True}),
        "binary_cross_entropy_with_logits": ([x, y / 3], {"pos_weight": v[0], "weight": v}),
        "binary_cross_entropy": ([y / 3, v / 2], {"weight": v}),
        "mse_loss": ([x, y], {"weight": v}),
    }[name]
    cast = [a.astype(dtype) for a in args]
    jk = {k: jnp.asarray(a.astype(dtype)) for k, a in kw.items() if isinstance(a, np.ndarray)}
    tk = {k: to_torch(a.astype(dtype)) for k, a in kw.items() if isinstance(a, np.ndarray)}
    rest = {k: a for k, a in kw.items() if not isinstance(a, np.ndarray)}
    got = getattr(F, name)(*[jnp.asarray(a) for a in cast], reduction="none", **jk, **rest)
    want = getattr(TF, name)(*[to_torch(a) for a in cast], reduction="none", **tk, **rest)
    np.testing.assert_array_equal(as_f(got), to_numpy(want))


# --- errors -----------------------------------------------------------------------------------------------

X = _n((3, 4))
T = np.array([0, 1, 3])
U = _u((3, 4))


def _j(a):
    return None if a is None else jnp.asarray(a.astype(np.int32) if a.dtype == np.int64 else a)


def _t(a):
    return None if a is None else torch.from_numpy(np.asarray(a))


ERRORS = [
    # (function, args, kwargs, jaxnn exception, fragment)
    ("cross_entropy", [X, np.array([0, 1, 4])], {}, ValueError, "Target 4 is out of bounds"),
    ("cross_entropy", [X, np.array([0, 1, -3])], {}, ValueError, "Target -3 is out of bounds"),
    ("cross_entropy", [X, T.astype(np.float32)], {}, TypeError, "expected target dtype to be Long"),
    ("cross_entropy", [X, np.zeros((3, 4), np.int64)], {}, TypeError, "Expected floating point type for target"),
    ("cross_entropy", [X, U], {"ignore_index": 1}, ValueError, "ignore_index is not supported"),
    ("cross_entropy", [X, T], {"label_smoothing": 1.5}, ValueError, "label_smoothing must be between 0.0 and 1.0"),
    ("cross_entropy", [X, U], {"label_smoothing": 1.5}, ValueError, "label_smoothing must be between 0.0 and 1.0"),
    ("cross_entropy", [X, T], {"reduction": "avg"}, ValueError, "avg is not a valid value for reduction"),
    ("cross_entropy", [X, np.array([0, 1])], {}, ValueError, "Expected input batch_size (3) to match"),
    ("cross_entropy", [X, T], {"weight": np.ones(3, np.float32)}, ValueError,
     "weight tensor should be defined either for all 4 classes"),
    ("cross_entropy", [X, U], {"weight": np.ones(3, np.float32)}, ValueError,
     "cross_entropy: weight tensor should be defined either for all 4 classes"),
    ("cross_entropy", [_n((2, 3, 4)), np.zeros((2, 5), np.int64)], {}, ValueError, "Expected target size (2, 4)"),
    ("cross_entropy", [_n((2, 3, 4, 5)), np.zeros((2, 4), np.int64)], {}, ValueError,
     "only batches of spatial targets supported"),
    ("cross_entropy", [X, np.zeros((3, 2), np.int64)], {}, ValueError, "0D or 1D target tensor expected"),
    ("cross_entropy", [X[0], np.zeros((2,), np.int64)], {}, ValueError, "1D target must have size 1"),
    ("nll_loss", [X, T], {"weight": np.ones(4, np.float16)}, TypeError, "`weight` dtype"),
    ("cross_entropy", [X[0], np.array([1])], {"label_smoothing": 0.2}, ValueError, "1D target of size 1"),
    ("nll_loss", [X, np.array([0, 1, 4])], {}, ValueError, "Target 4 is out of bounds"),
    ("nll_loss", [X, T], {"reduction": "mean2"}, ValueError, "mean2 is not a valid value for reduction"),
    ("binary_cross_entropy", [np.array([1.5], np.float32), np.array([1.0], np.float32)], {}, ValueError,
     "all elements of input should be between 0 and 1"),
    ("binary_cross_entropy", [np.array([0.5], np.float32), np.array([1.5], np.float32)], {}, ValueError,
     "all elements of target should be between 0 and 1"),
    ("binary_cross_entropy", [np.array([0.5], np.float32), np.array([[1.0]], np.float32)], {}, ValueError,
     "that is different to the input size"),
    ("binary_cross_entropy", [U, U], {"weight": _u((2, 3, 4))}, ValueError, "must broadcast to `input`'s shape"),
    ("binary_cross_entropy_with_logits", [X, _u((4,))], {}, ValueError, "must be the same as input size"),
    ("binary_cross_entropy_with_logits", [X, U], {"weight": _u((2, 1, 4))}, ValueError, "must broadcast"),
    ("binary_cross_entropy_with_logits", [X, U], {"pos_weight": _u((2, 1, 4))}, ValueError, "must broadcast"),
    ("binary_cross_entropy_with_logits", [X, U], {"pos_weight": _u((3,))}, ValueError, "do not broadcast"),
    ("mse_loss", [X, _u((5,))], {}, ValueError, "do not broadcast"),
    ("mse_loss", [X, U], {"weight": _u((4,))}, ValueError, "Weights and input must have the same size"),
    ("l1_loss", [X, U], {"weight": _u((4,))}, ValueError, "Weights and input must have the same size"),
    ("huber_loss", [X, U], {"weight": _u((4,))}, ValueError, "Weights and input must have the same size"),
    ("mse_loss", [T, T], {}, TypeError, "floating dtype"),
    ("mse_loss", [X, U], {"reduction": "max"}, ValueError, "max is not a valid value for reduction"),
    ("smooth_l1_loss", [X, U], {"beta": -1.0}, ValueError, "does not support negative values for beta"),
    ("huber_loss", [X, U], {"delta": 0.0}, ValueError, "does not support non-positive values for delta"),
    ("kl_div", [X, U], {"reduction": "bogus"}, ValueError, "bogus is not a valid value for reduction"),
    ("poisson_nll_loss", [X, U], {"reduction": "x"}, ValueError, "x is not a valid value for reduction"),
    ("gaussian_nll_loss", [X, U, -np.ones((3, 4), np.float32)], {}, ValueError, "var has negative entry"),
    ("gaussian_nll_loss", [X, U, np.ones((2,), np.float32)], {}, ValueError, "var is of incorrect size"),
    ("gaussian_nll_loss", [X, U, np.ones((3, 4), np.float32)], {"reduction": "x"}, ValueError, "x is not valid"),
    ("cosine_embedding_loss", [X, X, np.ones((3, 1), np.float32)], {}, ValueError, "0D or 1D target tensor"),
    ("cosine_embedding_loss", [X[0], X[0], np.ones((3,), np.float32)], {}, ValueError,
     "1D target tensor expects 2D input tensors"),
    ("cosine_embedding_loss", [X, _u((3, 5)), np.ones((3,), np.float32)], {}, ValueError, "do not broadcast"),
    ("cosine_embedding_loss", [X, X, np.ones((2,), np.float32)], {}, ValueError, "do not broadcast"),
    ("margin_ranking_loss", [X, X, np.ones((3,), np.float32)], {}, ValueError,
     "All input tensors should have same dimension"),
    ("triplet_margin_loss", [X, X, X], {"margin": 0.0}, ValueError, "margin must be greater than 0"),
    ("triplet_margin_loss", [X, X, X[0]], {}, ValueError, "expected to have the same number of dimensions"),
    ("soft_margin_loss", [X, _u((5,))], {}, ValueError, "do not broadcast"),
    ("multi_margin_loss", [X, T], {"p": 3}, ValueError, "only p == 1 and p == 2 supported"),
    ("multi_margin_loss", [X, np.array([0, 1, 4])], {}, ValueError, "target out of range"),
    ("multi_margin_loss", [X, np.array([0, 1])], {}, ValueError, "target tensor should be 1-D"),
    ("multi_margin_loss", [X, T[:, None]], {}, ValueError, "target tensor should be 1-D"),
    ("multi_margin_loss", [_n((2, 3, 4)), np.array([0, 1])], {}, ValueError, "Expected non-empty vector or matrix"),
    ("multi_margin_loss", [_n((2, 0)), np.array([0, 0])], {}, ValueError, "Expected non-empty vector or matrix"),
    ("multi_margin_loss", [X, T], {"weight": np.ones(3, np.float32)}, ValueError, "inconsistent weight size"),
    ("multi_margin_loss", [X, T], {"weight": np.ones((1, 4), np.float32)}, ValueError, "weight must be one-dim"),
    ("multi_margin_loss", [X, T.astype(np.float32)], {}, TypeError, "expected target dtype to be Long"),
    ("multi_margin_loss", [X, T], {"reduction": "x"}, ValueError, "x is not a valid value for reduction"),
]


@pytest.mark.parametrize("name,args,kwargs,exc,fragment", ERRORS, ids=[f"{e[0]}-{e[4][:30]}" for e in ERRORS])
def test_errors_like_torch(name, args, kwargs, exc, fragment):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception):  # noqa: B017 - torch's own types vary (RuntimeError, IndexError, ...)
            getattr(TF, name)(*[_t(a) for a in args], **{k: _t(v) if isinstance(v, np.ndarray) else v
                                                         for k, v in kwargs.items()})
        with pytest.raises(exc, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            getattr(F, name)(*[_j(a) for a in args], **{k: _j(v) if isinstance(v, np.ndarray) else v
                                                        for k, v in kwargs.items()})


def test_out_of_range_is_also_an_index_error():
    with pytest.raises(IndexError, match="out of bounds"):
        F.nll_loss(jnp.zeros((2, 3)), jnp.array([0, 3]))


def test_out_of_range_under_jit_is_nan():
    f = jax.jit(lambda x, t: F.cross_entropy(x, t, reduction="none"))
    out = f(jnp.zeros((3, 4)), jnp.array([0, 7, -2]))
    assert bool(jnp.isfinite(out[0])) and bool(jnp.isnan(out[1:]).all())


def test_gaussian_int_var_is_a_type_error():
    with pytest.raises(TypeError):
        TF.gaussian_nll_loss(torch.zeros(2), torch.zeros(2), 2)
    with pytest.raises(TypeError, match="`var` must be an array or a Python float"):
        F.gaussian_nll_loss(jnp.zeros(2), jnp.zeros(2), 2)  # type: ignore[arg-type]


# --- transformations --------------------------------------------------------------------------------------


def test_vmap_over_unbatched_cross_entropy_equals_batched():
    x, t = jnp.asarray(_n((5, 4))), jnp.asarray([0, 3, 1, 2, 2])
    w = jnp.asarray(_u((4,), 0.5, 2))
    per = jax.vmap(lambda a, b: F.cross_entropy(a, b, w, reduction="none", label_smoothing=0.1))(x, t)
    assert_close(per, F.cross_entropy(x, t, w, reduction="none", label_smoothing=0.1), rtol=1e-6, atol=1e-6)


def test_vmap_triplet_and_cosine_unbatched():
    a, p, n = (jnp.asarray(_n((5, 6), s)) for s in range(3))
    y = jnp.asarray(_sign((5,), 4))
    assert_close(jax.vmap(lambda u, v, w: F.triplet_margin_loss(u, v, w, reduction="none"))(a, p, n),
                 F.triplet_margin_loss(a, p, n, reduction="none"), rtol=1e-6, atol=1e-6)
    assert_close(jax.vmap(lambda u, v, w: F.cosine_embedding_loss(u, v, w, reduction="none"))(a, p, y),
                 F.cosine_embedding_loss(a, p, y, reduction="none"), rtol=1e-6, atol=1e-6)


# --- hypothesis -------------------------------------------------------------------------------------------


@settings(max_examples=12)
@given(
    n=st.integers(1, 4), c=st.integers(2, 5), spatial=st.lists(st.integers(1, 3), max_size=2),
    weighted=st.booleans(), ls=st.sampled_from([0.0, 0.1, 0.6]), red=st.sampled_from(REDUCTIONS),
    ignore=st.sampled_from([None, -100, 0]), seed=st.integers(0, 2**16),
)
def test_cross_entropy_hypothesis(n, c, spatial, weighted, ls, red, ignore, seed):
    xs, ts = (n, c, *spatial), (n, *spatial)
    x = _n(xs, seed, scale=3)
    t = _targets(ts, c, seed + 1, ignore=ignore, frac=0.25)
    kw = {"reduction": red, "label_smoothing": ls}
    if ignore is not None:
        kw["ignore_index"] = ignore
    if weighted:
        kw["weight"] = _u((c,), 0.1, 3.0, seed + 2)
    run_class_case("cross_entropy", x, t, kw, seed=seed)


@settings(max_examples=20)
@given(
    name=st.sampled_from(["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy_with_logits",
                          "soft_margin_loss", "poisson_nll_loss"]),
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3), red=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_pointwise_hypothesis(name, shape, red, seed):
    shape = tuple(shape)
    x = _n(shape, seed, scale=2)
    y = _u(shape, 0, 1, seed + 1) if name in ("binary_cross_entropy_with_logits", "poisson_nll_loss") else \
        _sign(shape, seed + 1) if name == "soft_margin_loss" else _n(shape, seed + 1)
    diff = [1, 0] if name == "soft_margin_loss" else [1, 1]  # torch: soft_margin_loss's target has no gradient
    run_case(name, [np.asarray(x), np.asarray(y)], diff, {"reduction": red}, seed=seed)


# --- modules ----------------------------------------------------------------------------------------------

W4 = _u((4,), 0.2, 2.0, 9)
MODULES = [
    # (class name, constructor args, constructor kwargs (arrays become tensors), call inputs)
    ("L1Loss", (), {}, [X, U]),
    ("L1Loss", (None, None, "sum"), {}, [X, U]),
    ("MSELoss", (), {"reduction": "none"}, [X, U]),
    ("SmoothL1Loss", (), {"beta": 0.3}, [X, U]),
    ("HuberLoss", ("sum", 0.4), {}, [X, U]),
    ("CrossEntropyLoss", (), {}, [X, T]),
    ("CrossEntropyLoss", (W4,), {"ignore_index": 1, "label_smoothing": 0.2}, [X, T]),
    ("CrossEntropyLoss", (), {"weight": W4, "reduction": "sum"}, [X, U]),
    ("NLLLoss", (W4, None, 3), {}, [X, T]),
    ("BCELoss", (), {"weight": W4}, [U * 0.9 + 0.05, _u((3, 4), seed=4)]),
    ("BCEWithLogitsLoss", (), {"weight": W4, "pos_weight": W4[::-1].copy()}, [X, U]),
    ("BCEWithLogitsLoss", (), {"pos_weight": W4}, [X, U]),
    ("KLDivLoss", (), {"reduction": "batchmean", "log_target": True}, [X, U - 1]),
    ("PoissonNLLLoss", (False, True), {"eps": 1e-3}, [U + 0.5, U * 3]),
    ("GaussianNLLLoss", (), {"full": True, "eps": 1e-3}, [X, U, _u((3, 1), 0.1, 2, 5)]),
    ("CosineEmbeddingLoss", (0.2,), {}, [X, U, np.array([1.0, -1.0, -1.0], np.float32)]),
    ("MarginRankingLoss", (0.1,), {}, [X[0], U[0], _sign((4,), 3)]),
    ("HingeEmbeddingLoss", (0.5,), {}, [X, _sign((3, 4), 3)]),
    ("SoftMarginLoss", (), {"reduction": "none"}, [X, _sign((3, 4), 3)]),
    ("TripletMarginLoss", (0.5, 1.0), {"swap": True}, [X, U, _n((3, 4), 7)]),
    ("MultiMarginLoss", (2, 0.5, W4), {}, [X, T]),
    ("MultiMarginLoss", (), {"reduction": "none"}, [X, T]),
    ("MultiLabelSoftMarginLoss", (W4,), {}, [X, U.round()]),
    ("MultiLabelSoftMarginLoss", (), {"reduction": "sum"}, [X, U.round()]),
]


def _torch_value(v):
    return torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v


def _jax_value(v):
    return jnp.asarray(v.astype(np.int32) if v.dtype == np.int64 else v) if isinstance(v, np.ndarray) else v


@pytest.mark.parametrize("name,args,kwargs,inputs", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_loss_modules_match_torch(name, args, kwargs, inputs):
    t = getattr(torch.nn, name)(*[_torch_value(a) for a in args], **{k: _torch_value(v) for k, v in kwargs.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kl_div's 'mean' warning where a case uses it
        want = t(*[_torch_value(a) for a in inputs])
    sd = {k: v.numpy() for k, v in t.state_dict().items()}
    j_args = [_jax_value(a) for a in args]
    j_kwargs = {k: _jax_value(v) for k, v in kwargs.items()}
    j_inputs = [_jax_value(a) for a in inputs]
    m = getattr(jn, name)(*j_args, **j_kwargs)
    assert set(jn.state_dict(m)) == set(sd)
    for k, v in jn.state_dict(m).items():
        np.testing.assert_array_equal(np.asarray(v), sd[k])
    jn.load_state_dict(m, sd)  # strict: torch's keys, shapes and dtypes
    assert m.reduction == t.reduction
    for attr in ("ignore_index", "label_smoothing", "margin", "beta", "delta", "log_target", "log_input", "full", "eps",
                 "p", "swap"):
        if hasattr(t, attr):
            assert getattr(m, attr) == getattr(t, attr), attr
    got = m(*j_inputs)
    rtol, atol = _tol(to_numpy(want), inputs[0].size)
    assert_close(got, to_numpy(want), rtol=rtol, atol=atol)
    lm = getattr(jl, name)(*j_args, **j_kwargs)
    variables = lm.init(jax.random.key(0), *j_inputs)
    assert set(jl.state_dict(variables)) == set(sd)
    variables = jl.load_state_dict(variables, sd)[0]
    np.testing.assert_array_equal(np.asarray(lm.apply(variables, *j_inputs)), np.asarray(got))  # nnx == linen
    assert isinstance(lm, nn.Module) and isinstance(m, nnx.Module)


def test_loss_module_buffers_are_batch_stats_and_not_trained():
    m = jn.BCEWithLogitsLoss(weight=jnp.ones(4), pos_weight=jnp.full((4,), 2.0))
    assert isinstance(m.pos_weight, nnx.BatchStat) and isinstance(m.weight, nnx.BatchStat)
    assert jax.tree.leaves(nnx.state(m, nnx.Param)) == []
    assert jn.CrossEntropyLoss().weight is None


@pytest.mark.parametrize("front", ["nnx", "linen"])
def test_loss_module_legacy_arguments_warn_like_torch(front):
    with pytest.warns(UserWarning, match="size_average and reduce") as trec:
        t = torch.nn.MSELoss(size_average=False)
    with pytest.warns(UserWarning, match="size_average and reduce") as jrec:
        m = jn.MSELoss(size_average=False) if front == "nnx" else jl.MSELoss(size_average=False)
    assert str(jrec[0].message) == str(trec[0].message)
    x, y = _n((3, 4)), _n((3, 4), 1)
    want = t(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # linen rebuilds the description when binding
        got = m(jnp.asarray(x), jnp.asarray(y)) if front == "nnx" else m.apply({}, jnp.asarray(x), jnp.asarray(y))
    assert_close(got, want, rtol=reduction_tol(12), atol=1e-6)
    assert (m.reduction if front == "nnx" else "sum") == t.reduction


def test_multi_margin_loss_module_checks_at_construction_like_torch():
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        torch.nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="expected weight to be None or 1D tensor"):
        torch.nn.MultiMarginLoss(weight=torch.ones(2, 2))
    for make in (jn.MultiMarginLoss, jl.MultiMarginLoss):
        with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
            make(p=3)
        with pytest.raises(ValueError, match="expected weight to be None or 1D tensor, got 2D"):
            make(weight=jnp.ones((2, 2)))


def test_loss_module_errors_at_call_like_torch():
    torch.nn.MSELoss(reduction="bogus")  # torch checks at the call
    m = jn.MSELoss(reduction="bogus")
    with pytest.raises(ValueError, match="bogus is not a valid value for reduction"):
        m(jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(TypeError, match="`weight` must be an array or None"):
        jn.CrossEntropyLoss(weight=[1.0, 2.0])  # type: ignore[arg-type]
