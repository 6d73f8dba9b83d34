"""embedding, embedding_renorm, one_hot and nn.Embedding against torch: outputs, gradients (vjp vs
autograd), padding_idx, scale_grad_by_freq, max_norm (in-place renormalisation), errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_ref import as_f, assert_close, reduction_tol

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

TF = torch.nn.functional

CASES = [
    ((2, 3), {}),
    ((4,), {"padding_idx": 1}),
    ((2, 2, 3), {"padding_idx": -1}),
    ((3, 4), {"scale_grad_by_freq": True}),
    ((3, 4), {"scale_grad_by_freq": True, "padding_idx": 0}),
    ((3, 4), {"padding_idx": 0, "sparse": True}),
    ((2, 3), {"max_norm": 1.0}),
    ((5,), {"max_norm": 2.0, "norm_type": 1.0}),
    ((5,), {"max_norm": 1.5, "norm_type": float("inf")}),
    ((5,), {"max_norm": 1.5, "norm_type": 3.0}),
    ((5,), {"max_norm": 2.0, "norm_type": 0.0}),
    ((5,), {"max_norm": 0.5, "norm_type": float("-inf")}),
    ((), {"padding_idx": 2}),
]


def _torch_embed(idx, w, kw):
    tw = torch.tensor(w, requires_grad=True)
    out = TF.embedding(torch.tensor(idx), tw, **kw)
    return tw, out


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,kw", CASES)
def test_embedding_output_and_gradient_match_torch(rng, shape, kw, index_dtype):
    n, d = 6, 4
    w = (rng.standard_normal((n, d)) * 2).astype(np.float32)
    idx = rng.integers(0, n, shape).astype(index_dtype)
    if np.size(idx) > 1:
        idx.reshape(-1)[:2] = 2  # a repeated index
    tw, tout = _torch_embed(idx, w.copy(), kw)
    f = jax.jit(lambda w: F.embedding(jnp.asarray(idx) if index_dtype == np.int32 else idx, w, **kw))
    out, vjp = jax.vjp(f, jnp.asarray(w))
    np.testing.assert_array_equal(out, tout.detach().numpy()) if "max_norm" not in kw else assert_close(
        out, tout.detach().numpy(), rtol=1e-6, atol=1e-7)
    cot = rng.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.tensor(cot))
    k = max(1, np.size(idx))
    tgrad = tw.grad.to_dense() if tw.grad.is_sparse else tw.grad  # sparse=True: the same values, dense here
    assert_close(vjp(jnp.asarray(cot))[0], tgrad.numpy(), rtol=reduction_tol(k), atol=1e-6, what="grad")
    if "max_norm" in kw:  # torch renormalised tw in place; embedding_renorm returns that weight
        new = F.embedding_renorm(jnp.asarray(w), jnp.asarray(idx), kw["max_norm"], kw.get("norm_type", 2.0))
        assert_close(new, tw.detach().numpy(), rtol=2e-7, atol=1e-7, what="renormalised weight")
        assert not np.array_equal(new, w)


def test_gradient_rows_exactly_for_unique_indices_and_padding(rng):
    w = rng.standard_normal((5, 3)).astype(np.float32)
    idx = np.array([[4, 0], [2, 3]])
    cot = rng.standard_normal((2, 2, 3)).astype(np.float32)
    g = jax.grad(lambda w: jnp.sum(F.embedding(jnp.asarray(idx), w, padding_idx=2) * cot))(jnp.asarray(w))
    tw, out = _torch_embed(idx, w, {"padding_idx": 2})
    out.backward(torch.tensor(cot))
    np.testing.assert_array_equal(g, tw.grad.numpy())
    np.testing.assert_array_equal(g[2], 0.0)
    np.testing.assert_array_equal(g[1], 0.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_bit_exact_lookup_and_gradient(rng, dtype):
    w = jnp.asarray(rng.standard_normal((6, 4)).astype(np.float32)).astype(dtype)
    idx = np.array([[5, 0, 3], [1, 2, 4]])
    tw = torch.tensor(as_f(w)).to(getattr(torch, dtype)).requires_grad_(True)
    tout = TF.embedding(torch.tensor(idx), tw, padding_idx=3)
    out, vjp = jax.vjp(lambda w: F.embedding(jnp.asarray(idx), w, padding_idx=3), w)
    assert out.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(as_f(out), tout.detach().float().numpy())
    cot = jnp.asarray(rng.standard_normal(out.shape).astype(np.float32)).astype(dtype)
    tout.backward(torch.tensor(as_f(cot)).to(getattr(torch, dtype)))
    np.testing.assert_array_equal(as_f(vjp(cot)[0]), tw.grad.float().numpy())  # unique indices: exact
    # repeated indices: torch adds the rows one at a time in half precision, and so does jaxnn
    # (regression: jaxnn summed in float32 and rounded once, 1-2% off torch for many repeats)
    for idx, kw in ((np.array([1, 1, 1, 2, 1]), {"scale_grad_by_freq": True}),
                    (rng.integers(0, 6, (3, 700)), {"padding_idx": 2}),
                    (rng.integers(0, 6, (60,)), {"scale_grad_by_freq": True, "padding_idx": 0})):
        tw.grad = None
        tout = TF.embedding(torch.tensor(idx), tw, **kw)
        cot = jnp.asarray(rng.standard_normal(tout.shape).astype(np.float32)).astype(dtype)
        tout.backward(torch.tensor(as_f(cot)).to(getattr(torch, dtype)))
        _, vjp = jax.vjp(jax.jit(lambda w, idx=idx, kw=kw: F.embedding(jnp.asarray(idx), w, **kw)), w)
        np.testing.assert_array_equal(as_f(vjp(cot)[0]), tw.grad.float().numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_renorm(rng, dtype):
    w = jnp.asarray((rng.standard_normal((5, 8)) * 3).astype(np.float32)).astype(dtype)
    idx = np.array([0, 2, 2, 4])
    tw = torch.tensor(as_f(w)).to(getattr(torch, dtype))
    with torch.no_grad():
        TF.embedding(torch.tensor(idx), tw, max_norm=1.0)
    new = F.embedding_renorm(w, jnp.asarray(idx), 1.0)
    assert new.dtype == jnp.dtype(dtype)
    eps = float(jnp.finfo(dtype).eps)
    # the norm is a sum of 8 squares: its rounding may differ by 1 ulp from torch's
    assert_close(new, tw.float().numpy(), rtol=2 * eps, atol=1e-3)
    np.testing.assert_array_equal(as_f(new)[[1, 3]], as_f(w)[[1, 3]])  # untouched rows stay


def test_out_of_range_and_dtype_errors_like_torch():
    w = jnp.ones((4, 3))
    for bad in ([4], [-1], [[0, 7]]):
        with pytest.raises(IndexError, match="index out of range"):
            TF.embedding(torch.tensor(bad), torch.ones(4, 3))
        with pytest.raises(IndexError, match="index out of range in self"):
            F.embedding(jnp.asarray(bad), w)
        with pytest.raises(ValueError, match="`input` holds"):
            F.embedding(jnp.asarray(bad), w)
    # under jit indices cannot be checked: NaN rows, no gradient
    out = jax.jit(F.embedding)(jnp.asarray([4, -1, 1]), w)
    assert np.isnan(np.asarray(out[:2])).all() and (np.asarray(out[2]) == 1).all()
    g = jax.grad(lambda w: jnp.nansum(jax.jit(F.embedding)(jnp.asarray([4, -1, 1]), w)))(w)
    np.testing.assert_array_equal(g, np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]], np.float32))
    for idx in (jnp.asarray([1.0]), jnp.asarray([True]), jnp.asarray([1], jnp.int16)):
        with pytest.raises(TypeError, match="Long"):
            F.embedding(idx, w)
    with pytest.raises(RuntimeError, match="Long, Int"):
        TF.embedding(torch.tensor([1.0]), torch.ones(4, 3))
    for pad in (4, -5):
        with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
            TF.embedding(torch.tensor([1]), torch.ones(4, 3), padding_idx=pad)
        with pytest.raises(ValueError, match="Padding_idx must be within num_embeddings.*`padding_idx`"):
            F.embedding(jnp.asarray([1]), w, padding_idx=pad)
    # torch fails in the backward; jaxnn says so at the call
    out = TF.embedding(torch.tensor([1]), torch.ones(4, 3, requires_grad=True), scale_grad_by_freq=True, sparse=True)
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse gradients"):
        out.sum().backward()
    with pytest.raises(ValueError, match="scale_grad_by_freq not supported with sparse gradients"):
        F.embedding(jnp.asarray([1]), w, scale_grad_by_freq=True, sparse=True)
    with pytest.raises(ValueError, match="`weight` must be 2-D"):
        F.embedding(jnp.asarray([1]), jnp.ones(4))


def test_max_norm_with_integer_weight_raises_like_torch():
    # regression: jaxnn renormalised integer weights where torch's norm() raises
    wi = torch.arange(6).reshape(3, 2)
    with pytest.raises(RuntimeError, match="floating point"):
        TF.embedding(torch.tensor([1]), wi, max_norm=1.0)
    with pytest.raises(TypeError, match="floating point.*`weight` of dtype int32"):
        F.embedding(jnp.asarray([1]), jnp.arange(6).reshape(3, 2), max_norm=1.0)
    with pytest.raises(TypeError, match="`weight` of dtype int32"):
        F.embedding_renorm(jnp.arange(6).reshape(3, 2), jnp.asarray([1]), 1.0)
    # without max_norm an integer weight is looked up, as torch's
    np.testing.assert_array_equal(F.embedding(jnp.asarray([1]), jnp.arange(6).reshape(3, 2)),
                                  TF.embedding(torch.tensor([1]), wi).numpy())


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(1, 4), length=st.integers(1, 8), seed=st.integers(0, 2**16),
       pad=st.one_of(st.none(), st.integers(-1, 0)), freq=st.booleans(),
       max_norm=st.one_of(st.none(), st.floats(0.1, 3.0)))
def test_hypothesis_against_torch(n, d, length, seed, pad, freq, max_norm):
    r = np.random.default_rng(seed)
    w = r.standard_normal((n, d)).astype(np.float32)
    idx = r.integers(0, n, (length,))
    kw = {"padding_idx": pad, "scale_grad_by_freq": freq, "max_norm": max_norm}
    tw, tout = _torch_embed(idx, w.copy(), kw)
    out, vjp = jax.vjp(lambda w: F.embedding(jnp.asarray(idx), w, **kw), jnp.asarray(w))
    if max_norm is None:
        np.testing.assert_array_equal(out, tout.detach().numpy())
    else:
        assert_close(out, tout.detach().numpy(), rtol=2e-7, atol=1e-7)
        assert_close(F.embedding_renorm(jnp.asarray(w), jnp.asarray(idx), max_norm), tw.detach().numpy(),
                     rtol=2e-7, atol=1e-7)
    cot = r.standard_normal(out.shape).astype(np.float32)
    tout.backward(torch.tensor(cot))
    assert_close(vjp(jnp.asarray(cot))[0], tw.grad.numpy(), rtol=reduction_tol(length), atol=1e-6)
    # vmap over a batch of index vectors equals the loop
    both = jnp.stack([jnp.asarray(idx), jnp.asarray(idx[::-1])])
    np.testing.assert_array_equal(jax.vmap(lambda i: F.embedding(i, jnp.asarray(w)))(both),
                                  jnp.stack([F.embedding(i, jnp.asarray(w)) for i in both]))


# --- one_hot -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values,num_classes", [([0, 2, 1], -1), ([[3], [0]], 5), ([1], 2), ([], 3),
                                                ([[]], 4), (4, -1)])
def test_one_hot_matches_torch(values, num_classes):
    t = torch.tensor(values, dtype=torch.long)
    want = TF.one_hot(t, num_classes).numpy()
    got = F.one_hot(jnp.asarray(values, jnp.int32), num_classes)
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, want)
    if num_classes > 0:
        np.testing.assert_array_equal(jax.jit(F.one_hot, static_argnums=1)(jnp.asarray(values, jnp.int32),
                                                                            num_classes), want)
    with jax.enable_x64(True):
        assert F.one_hot(jnp.asarray(values, jnp.int64), num_classes).dtype == jnp.int64


@pytest.mark.parametrize("values,num_classes,fragment", [
    ([-1, 2], 3, "Class values must be non-negative"),
    ([1, 3], 3, "Class values must be smaller than num_classes"),
    ([1, 2], -2, "Class values must be smaller than num_classes"),
    ([1, 2], 0, "Class values must be smaller than num_classes"),
    ([], -1, "Can not infer total number of classes from empty tensor"),
    ([], 0, "Can not infer total number of classes from empty tensor"),
])
def test_one_hot_errors_like_torch(values, num_classes, fragment):
    with pytest.raises(RuntimeError, match=fragment):
        TF.one_hot(torch.tensor(values, dtype=torch.long), num_classes)
    with pytest.raises(ValueError, match=fragment):
        F.one_hot(jnp.asarray(values, jnp.int32), num_classes)


def test_one_hot_dtype_and_jit_errors():
    with pytest.raises(RuntimeError, match="LongTensor"):
        TF.one_hot(torch.tensor([1.0]))
    for bad in (jnp.asarray([1.0]), jnp.asarray([True])):
        with pytest.raises(TypeError, match="integer index tensors"):
            F.one_hot(bad)
    with pytest.raises(ValueError, match="pass `num_classes` explicitly"):
        jax.jit(F.one_hot)(jnp.asarray([1, 2]))
    with pytest.raises(ValueError, match="smaller than num_classes"):
        jax.jit(F.one_hot, static_argnums=1)(jnp.asarray([1, 2]), 0)
    # under jit values cannot be checked: out-of-range values give zero rows (documented)
    out = jax.jit(F.one_hot, static_argnums=1)(jnp.asarray([5, -1, 1]), 3)
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 0, 0], [0, 1, 0]])


# --- nn.Embedding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,kw", [((10, 3), {}), ((10, 3, 2), {}), ((10, 3), {"padding_idx": -2}),
                                     ((6, 4), {"max_norm": 1.0}), ((6, 4), {"scale_grad_by_freq": True})])
def test_module_matches_torch(rng, args, kw):
    torch.manual_seed(0)
    t = torch.nn.Embedding(*args, **kw)
    m = jn.Embedding(*args, **kw, rngs=nnx.Rngs(0))
    lm = jl.Embedding(*args, **kw)
    for a in ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq",
              "sparse"):
        assert getattr(m, a) == getattr(t, a), a  # padding_idx normalised as torch's
    w0 = np.asarray(m.weight[...])
    assert w0.shape == tuple(t.weight.shape) and w0.dtype == np.float32
    if t.padding_idx is not None:
        np.testing.assert_array_equal(w0[t.padding_idx], 0.0)
        np.testing.assert_array_equal(t.weight[t.padding_idx].detach().numpy(), 0.0)
    with torch.no_grad():
        t.weight.uniform_(-2, 2)
    assert jn.load_state_dict(m, t.state_dict()) == jn.LoadResult([], [])
    idx = rng.integers(0, args[0], (3, 4))
    variables, res = jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(idx)), t.state_dict())
    assert res == jl.LoadResult([], [])
    for _ in range(2):  # with max_norm the weight changes after each call, in both
        want = t(torch.tensor(idx)).detach().numpy()
        got = m(jnp.asarray(idx))
        out, upd = lm.apply(variables, jnp.asarray(idx), mutable=["params"])
        variables = {**variables, **upd}
        assert_close(got, want, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(out, got)
        assert_close(jn.state_dict(m)["weight"], t.weight.detach().numpy(), rtol=2e-7, atol=1e-7)
        np.testing.assert_array_equal(jl.state_dict(variables)["weight"], jn.state_dict(m)["weight"])
        idx = rng.integers(0, args[0], (3, 4))
    # gradient through the module: nnx.grad against torch autograd
    t.weight.grad = None
    tout = t(torch.tensor(idx))
    cot = rng.standard_normal(tout.shape).astype(np.float32)
    tout.backward(torch.tensor(cot))
    grads = nnx.grad(lambda mod: jnp.sum(mod(jnp.asarray(idx)) * cot))(m)
    assert_close(grads["weight"][...], t.weight.grad.numpy(), rtol=reduction_tol(12), atol=1e-6)


def test_max_norm_module_updates_under_jit_and_linen_without_mutable_params(rng):
    torch.manual_seed(0)
    t = torch.nn.Embedding(6, 4, max_norm=1.0)
    m = jn.Embedding(6, 4, max_norm=1.0, rngs=nnx.Rngs(0))
    jn.load_state_dict(m, t.state_dict())
    step = nnx.jit(lambda mod, i: mod(i))
    for _ in range(3):
        idx = rng.integers(0, 6, (5,))
        assert_close(step(m, jnp.asarray(idx)), t(torch.tensor(idx)).detach().numpy(), rtol=2e-7, atol=1e-7)
        assert_close(m.weight[...], t.weight.detach().numpy(), rtol=2e-7, atol=1e-7)  # persisted, as torch's
    norms = np.linalg.norm(np.asarray(m.weight[...]), axis=1)
    assert np.all(norms[np.unique(idx)] <= 1.0 + 1e-6)
    m.eval()  # torch renormalises in eval mode too
    t.eval()
    idx = np.arange(6)
    assert_close(m(jnp.asarray(idx)), t(torch.tensor(idx)).detach().numpy(), rtol=2e-7, atol=1e-7)
    assert_close(m.weight[...], t.weight.detach().numpy(), rtol=2e-7, atol=1e-7)
    # linen: the output uses the renormalised rows; without mutable params the weight is kept as it was
    lm = jl.Embedding(6, 4, max_norm=0.5)
    v = lm.init(jax.random.key(0), jnp.asarray(idx))
    before = np.asarray(v["params"]["weight"])
    out = lm.apply(v, jnp.asarray(idx))
    tw = torch.tensor(before)
    with torch.no_grad():
        want = TF.embedding(torch.tensor(idx), tw, max_norm=0.5)
    assert_close(out, want.numpy(), rtol=2e-7, atol=1e-7)
    np.testing.assert_array_equal(v["params"]["weight"], before)
    _, upd = lm.apply(v, jnp.asarray(idx), mutable=["params"])
    assert_close(upd["params"]["weight"], tw.numpy(), rtol=2e-7, atol=1e-7)


def test_from_pretrained_and_freeze(rng):
    emb = rng.standard_normal((5, 3)).astype(np.float32)
    t = torch.nn.Embedding.from_pretrained(torch.tensor(emb), padding_idx=1)
    m = jn.Embedding.from_pretrained(jnp.asarray(emb), padding_idx=1)
    assert not t.weight.requires_grad
    assert isinstance(m.weight, jn.FrozenParam) and not isinstance(m.weight, nnx.Param)
    np.testing.assert_array_equal(m.weight[...], emb)  # given as it is: padding row not zeroed, as torch
    assert set(jn.state_dict(m)) == set(t.state_dict()) == {"weight"}
    assert nnx.state(m, nnx.Param) == nnx.State({})  # nothing to train
    m2 = jn.Embedding.from_pretrained(jnp.asarray(emb), freeze=False)
    assert isinstance(m2.weight, nnx.Param)
    assert jn.load_state_dict(m, t.state_dict()) == jn.LoadResult([], [])
    lm = jl.Embedding.from_pretrained(jnp.asarray(emb))
    v = lm.init(jax.random.key(0), jnp.asarray([1]))
    np.testing.assert_array_equal(v["params"]["weight"], emb)
    idx = jnp.asarray([[4, 1]])
    np.testing.assert_array_equal(m(idx), t(torch.tensor(np.asarray(idx))).detach().numpy())
    np.testing.assert_array_equal(lm.apply(v, idx), m(idx))
    f = jn.Embedding(5, 3, _weight=jnp.asarray(emb), _freeze=True)  # torch's private arguments
    assert isinstance(f.weight, jn.FrozenParam)


def test_module_errors_like_torch():
    cases = [
        (lambda mod: mod(4, 3, padding_idx=4), AssertionError, "Padding_idx must be within num_embeddings"),
        (lambda mod: mod(4, 3, padding_idx=-5), AssertionError, "Padding_idx must be within num_embeddings"),
        (lambda mod: mod(4, 3, _weight=torch.ones(3, 3) if mod is torch.nn.Embedding else jnp.ones((3, 3))),
         AssertionError, "Shape of weight does not match num_embeddings and embedding_dim"),
        (lambda mod: mod.from_pretrained(torch.ones(3) if mod is torch.nn.Embedding else jnp.ones(3)),
         AssertionError, "Embeddings parameter is expected to be 2-dimensional"),
    ]
    for make, torch_exc, fragment in cases:
        with pytest.raises(torch_exc, match=fragment):
            make(torch.nn.Embedding)
        with pytest.raises(ValueError, match=fragment):
            make(_NnxFactory())
        with pytest.raises(ValueError, match=fragment):
            make(_LinenFactory())
    m = jn.Embedding(4, 3, rngs=nnx.Rngs(0))
    with pytest.raises(IndexError, match="index out of range"):
        m(jnp.asarray([4]))
    with pytest.raises(TypeError, match="needs `rngs`"):
        jn.Embedding(4, 3)


class _NnxFactory:
    def __call__(self, *a, **k):
        return jn.Embedding(*a, **k, rngs=nnx.Rngs(0))

    def from_pretrained(self, *a, **k):
        return jn.Embedding.from_pretrained(*a, **k)


class _LinenFactory:
    def __call__(self, *a, **k):
        return jl.Embedding(*a, **k)

    def from_pretrained(self, *a, **k):
        return jl.Embedding.from_pretrained(*a, **k)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_module_dtype_like_torch(dtype):
    t = torch.nn.Embedding(4, 2, dtype=getattr(torch, dtype))
    m = jn.Embedding(4, 2, dtype=getattr(jnp, dtype), rngs=nnx.Rngs(0))
    assert m.weight[...].dtype == jnp.dtype(dtype) and t.weight.dtype == getattr(torch, dtype)
    jn.load_state_dict(m, t.state_dict())
    np.testing.assert_array_equal(as_f(m(jnp.asarray([3, 0]))), t(torch.tensor([3, 0])).detach().float().numpy())


def test_one_hot_keyword_is_input_as_torchs_parser():
    with pytest.raises(TypeError):
        TF.one_hot(tensor=torch.tensor([1]))  # torch's docstring says `tensor`; its parser wants `input`
    np.testing.assert_array_equal(F.one_hot(input=jnp.asarray([1]), num_classes=3),
                                  TF.one_hot(input=torch.tensor([1]), num_classes=3).numpy())
