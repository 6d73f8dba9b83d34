"""jaxnn.nnx and jaxnn.linen against their functions and against torch.nn models with checkpoints."""

import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
import torch
from flax import nnx
from torch_ref import assert_close

import jaxnn
import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn
from jaxnn._checkpoint import CheckpointError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from port_from_torch import TorchGEGLU  # noqa: E402  (diffusers' GEGLU, as the example defines it)

torch.manual_seed(0)


def rngs():
    return nnx.Rngs(0)


# --- modules equal their functions, bit for bit; nnx == linen ---------------------------------------

MODULE_CASES = [
    # (nnx ctor, linen ctor, input shape, functional reference given the params)
    (lambda: jn.Conv1d(4, 6, 3, 2, 1, 1, 2, padding_mode="circular", rngs=rngs()),
     lambda: jl.Conv1d(4, 6, 3, 2, 1, 1, 2, padding_mode="circular"), (2, 4, 9),
     lambda p, x: F.conv1d(x, p["weight"], p["bias"], 2, 1, 1, 2, padding_mode="circular")),
    (lambda: jn.Conv2d(3, 4, (3, 2), padding="same", dilation=2, rngs=rngs()),
     lambda: jl.Conv2d(3, 4, (3, 2), padding="same", dilation=2), (2, 3, 7, 6),
     lambda p, x: F.conv2d(x, p["weight"], p["bias"], 1, "same", 2)),
    (lambda: jn.Conv3d(2, 4, 3, padding=1, bias=False, padding_mode="replicate", rngs=rngs()),
     lambda: jl.Conv3d(2, 4, 3, padding=1, bias=False, padding_mode="replicate"), (1, 2, 4, 5, 3),
     lambda p, x: F.conv3d(x, p["weight"], None, 1, 1, padding_mode="replicate")),
    (lambda: jn.ConvTranspose1d(4, 6, 3, 2, 1, 1, 2, rngs=rngs()),
     lambda: jl.ConvTranspose1d(4, 6, 3, 2, 1, 1, 2), (2, 4, 5),
     lambda p, x: F.conv_transpose1d(x, p["weight"], p["bias"], 2, 1, 1, 2)),
    (lambda: jn.ConvTranspose2d(4, 2, 4, 2, 1, rngs=rngs()),
     lambda: jl.ConvTranspose2d(4, 2, 4, 2, 1), (1, 4, 5, 5),
     lambda p, x: F.conv_transpose2d(x, p["weight"], p["bias"], 2, 1)),
    (lambda: jn.ConvTranspose3d(2, 2, 2, 2, rngs=rngs()),
     lambda: jl.ConvTranspose3d(2, 2, 2, 2), (1, 2, 3, 3, 3),
     lambda p, x: F.conv_transpose3d(x, p["weight"], p["bias"], 2)),
    (lambda: jn.Linear(5, 3, rngs=rngs()), lambda: jl.Linear(5, 3), (4, 5),
     lambda p, x: F.linear(x, p["weight"], p["bias"])),
    (lambda: jn.GroupNorm(2, 6, eps=1e-6), lambda: jl.GroupNorm(2, 6, eps=1e-6), (2, 6, 4),
     lambda p, x: F.group_norm(x, 2, p["weight"], p["bias"], 1e-6)),
    (lambda: jn.LayerNorm((3, 4), bias=False), lambda: jl.LayerNorm((3, 4), bias=False), (2, 3, 4),
     lambda p, x: F.layer_norm(x, (3, 4), p["weight"], None)),
    (lambda: jn.PReLU(3), lambda: jl.PReLU(3), (2, 3, 4), lambda p, x: F.prelu(x, p["weight"])),
    (lambda: jn.GEGLU(6, 4, rngs=rngs()), lambda: jl.GEGLU(6, 4), (2, 6),
     lambda p, x: F.geglu(F.linear(x, p["proj.weight"], p["proj.bias"]))),
]


@pytest.mark.parametrize("make_nnx,make_linen,shape,ref", MODULE_CASES)
def test_module_equals_function_and_linen_equals_nnx(rng, make_nnx, make_linen, shape, ref):
    x = jnp.asarray(rng.standard_normal(shape).astype(np.float32))
    m = make_nnx()
    sd = jn.state_dict(m)
    out = m(x)
    p = {k: v for k, v in sd.items()}
    p.setdefault("bias", None)
    np.testing.assert_array_equal(out, ref(p, x))  # bit for bit
    lm = make_linen()
    template = lm.init(jax.random.key(1), x)
    variables, result = jl.load_state_dict(template, sd)
    assert result == jl.LoadResult([], [])
    np.testing.assert_array_equal(lm.apply(variables, x), out)


ACT_NAMES = sorted(n for n in jn.__all__ if isinstance(getattr(jn, n), type)
                   and issubclass(getattr(jn, n), jn._modules._Activation))


@pytest.mark.parametrize("name", ACT_NAMES)
def test_activation_modules_match_torch(rng, name):
    kwargs = {"threshold": 0.5, "value": -1.0} if name == "Threshold" else {}
    if name in ("Softmax", "LogSoftmax", "Softmin"):
        kwargs = {"dim": 1}
    x = rng.standard_normal((3, 4, 6)).astype(np.float32) * 3
    want = getattr(torch.nn, name)(**kwargs)(torch.tensor(x)).numpy()
    assert_close(jn.__dict__[name](**kwargs)(jnp.asarray(x)), want, rtol=2e-6, atol=1e-6)
    assert_close(getattr(jl, name)(**kwargs).apply({}, jnp.asarray(x)), want, rtol=2e-6, atol=1e-6)


def test_activation_constructor_errors():
    with pytest.raises(ValueError, match="`approximate`"):
        jn.GELU("fast")
    with pytest.raises(ValueError, match="`approximate`"):
        jl.GELU("fast").apply({}, jnp.ones(2))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        jn.ReLU(slope=1)
    with pytest.raises(TypeError, match="missing 2 required"):
        jn.Threshold()  # type: ignore[call-arg]


CTOR_ERRORS = [
    (lambda: jn.Conv2d(3, 4, 3, groups=2, rngs=rngs()), "`in_channels` \\(=3\\) must be divisible"),
    (lambda: jn.Conv2d(4, 3, 3, groups=2, rngs=rngs()), "`out_channels` \\(=3\\) must be divisible"),
    (lambda: jn.Conv2d(4, 4, 3, stride=2, padding="same", rngs=rngs()), "strided"),
    (lambda: jn.Conv2d(4, 4, 3, padding_mode="mirror", rngs=rngs()), "`padding_mode`"),
    (lambda: jn.Conv2d(4, 4, 0, rngs=rngs()), "`kernel_size` must be positive"),
    (lambda: jn.ConvTranspose2d(4, 4, 3, padding_mode="reflect", rngs=rngs()), "Only 'zeros'"),
    (lambda: jn.GroupNorm(3, 4), "divisible by `num_groups`"),
    (lambda: jl.GroupNorm(3, 4), "divisible by `num_groups`"),
    (lambda: jl.Conv2d(3, 4, 3, groups=2), "`in_channels` \\(=3\\) must be divisible"),
]


@pytest.mark.parametrize("call,fragment", CTOR_ERRORS)
def test_constructor_errors(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_init_matches_torch_distribution():
    conv = jn.Conv2d(64, 128, 3, groups=2, rngs=rngs())
    w = np.asarray(conv.weight[...])
    bound = 1 / np.sqrt(32 * 9)
    tw = torch.nn.Conv2d(64, 128, 3, groups=2).weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(tw).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    assert abs(w.std() - tw.std()) < 0.03 * bound
    assert abs(w.mean()) < 0.02 * bound
    lin = jn.Linear(1000, 200, rngs=rngs())
    assert np.abs(np.asarray(lin.bias[...])).max() <= 1 / np.sqrt(1000)
    ct = jn.ConvTranspose2d(16, 32, 4, groups=4, rngs=rngs())  # torch: fan_in = 32 / 4 * 16
    assert np.abs(np.asarray(ct.weight[...])).max() <= 1 / np.sqrt(8 * 16)
    assert np.asarray(ct.weight[...]).std() > 0.9 / np.sqrt(8 * 16) / np.sqrt(3)
    gn = jn.GroupNorm(2, 4)
    np.testing.assert_array_equal(gn.weight[...], 1.0)
    np.testing.assert_array_equal(gn.bias[...], 0.0)


def test_transposed_output_size_like_torch(rng):
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    t = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    m = jn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, rngs=rngs())
    jn.load_state_dict(m, t.state_dict())
    for size in [(9, 9), (10, 10), (1, 2, 10, 9)]:
        want = t(torch.tensor(x), output_size=list(size)).detach().numpy()
        assert_close(m(jnp.asarray(x), output_size=size), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="outside the reachable range"):
        m(jnp.asarray(x), output_size=(12, 12))


# --- torch models and their jaxnn twins --------------------------------------------------------------


class TorchResBlock(torch.nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1 = torch.nn.GroupNorm(2, cin, eps=1e-6)
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = torch.nn.Linear(temb, cout)
        self.norm2 = torch.nn.GroupNorm(2, cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = torch.nn.Conv2d(cin, cout, 1)
        self.act = torch.nn.SiLU()

    def forward(self, x, t):
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.time_emb_proj(self.act(t))[:, :, None, None]
        h = self.conv2(self.act(self.norm2(h)))
        return self.conv_shortcut(x) + h


class NnxResBlock(nnx.Module):
    def __init__(self, cin, cout, temb, *, rngs):
        self.norm1 = jn.GroupNorm(2, cin, eps=1e-6)
        self.conv1 = jn.Conv2d(cin, cout, 3, padding=1, rngs=rngs)
        self.time_emb_proj = jn.Linear(temb, cout, rngs=rngs)
        self.norm2 = jn.GroupNorm(2, cout)
        self.conv2 = jn.Conv2d(cout, cout, 3, padding=1, rngs=rngs)
        self.conv_shortcut = jn.Conv2d(cin, cout, 1, rngs=rngs)
        self.act = jn.SiLU()

    def __call__(self, x, t):
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.time_emb_proj(self.act(t))[:, :, None, None]
        h = self.conv2(self.act(self.norm2(h)))
        return self.conv_shortcut(x) + h


class LinenResBlock(nn.Module):
    cin: int
    cout: int
    temb: int

    @nn.compact
    def __call__(self, x, t):
        act = jl.SiLU()
        h = act(jl.GroupNorm(2, self.cin, 1e-6, name="norm1")(x))
        h = jl.Conv2d(self.cin, self.cout, 3, padding=1, name="conv1")(h)
        h = h + jl.Linear(self.temb, self.cout, name="time_emb_proj")(act(t))[:, :, None, None]
        h = act(jl.GroupNorm(2, self.cout, name="norm2")(h))
        h = jl.Conv2d(self.cout, self.cout, 3, padding=1, name="conv2")(h)
        return jl.Conv2d(self.cin, self.cout, 1, name="conv_shortcut")(x) + h


class TorchFeedForward(torch.nn.Module):
    """diffusers' FeedForward: ModuleList([GEGLU, Dropout, Linear])."""

    def __init__(self, dim, inner):
        super().__init__()
        self.net = torch.nn.ModuleList([TorchGEGLU(dim, inner), torch.nn.Dropout(0.0), torch.nn.Linear(inner, dim)])

    def forward(self, x):
        for m in self.net:
            x = m(x)
        return x


class NnxFeedForward(nnx.Module):
    def __init__(self, dim, inner, *, rngs):
        self.net = jn.ModuleList([jn.GEGLU(dim, inner, rngs=rngs), jn.Identity(), jn.Linear(inner, dim, rngs=rngs)])

    def __call__(self, x):
        for m in self.net:
            x = m(x)
        return x


class LinenFeedForward(nn.Module):
    dim: int
    inner: int

    def setup(self):
        self.net = jl.ModuleList([jl.GEGLU(self.dim, self.inner), jl.Dropout(0.0), jl.Linear(self.inner, self.dim)])

    def __call__(self, x):
        for m in self.net:
            x = m(x)
        return x


def torch_updown():
    return torch.nn.Sequential(
        torch.nn.Conv2d(4, 4, 3, stride=2, padding=1),
        torch.nn.SiLU(),
        torch.nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2),
    )


def nnx_updown():
    return jn.Sequential(
        jn.Conv2d(4, 4, 3, stride=2, padding=1, rngs=rngs()),
        jn.SiLU(),
        jn.ConvTranspose2d(4, 6, 4, stride=2, padding=1, groups=2, rngs=rngs()),
    )


def torch_stack1d3d():
    return torch.nn.ModuleDict({
        "c1": torch.nn.Conv1d(4, 6, 3, padding=2, groups=2, padding_mode="reflect"),
        "c3": torch.nn.Conv3d(6, 4, 3, padding=1, groups=2, padding_mode="circular"),
    })


class NnxStack(nnx.Module):
    def __init__(self):
        self.c1 = jn.Conv1d(4, 6, 3, padding=2, groups=2, padding_mode="reflect", rngs=rngs())
        self.c3 = jn.Conv3d(6, 4, 3, padding=1, groups=2, padding_mode="circular", rngs=rngs())

    def __call__(self, x):
        h = self.c1(x)  # (N, 6, L)
        return self.c3(h.reshape(h.shape[0], 6, 2, 2, -1))


def _torch_stack_forward(m, x):
    h = m["c1"](x)
    return m["c3"](h.reshape(h.shape[0], 6, 2, 2, -1))


def _compare_model(torch_model, torch_fwd, jax_model, inputs, rtol=1e-5, atol=1e-5):
    """Load torch's state_dict, compare outputs and every parameter's gradient."""
    result = jn.load_state_dict(jax_model, torch_model.state_dict())
    assert result == jn.LoadResult([], [])
    t_in = [torch.tensor(a) for a in inputs]
    t_out = torch_fwd(torch_model, *t_in)
    cot = np.random.default_rng(3).standard_normal(t_out.shape).astype(np.float32)
    (t_out * torch.tensor(cot)).sum().backward()
    j_out = jax_model(*[jnp.asarray(a) for a in inputs])
    assert_close(j_out, t_out.detach().numpy(), rtol=rtol, atol=atol)

    def loss(model):
        return jnp.sum(model(*[jnp.asarray(a) for a in inputs]) * cot)

    grads = nnx.grad(loss)(jax_model)
    flat = {".".join(map(str, path)): v for path, v in nnx.to_flat_state(grads)}
    for name, p in torch_model.named_parameters():
        assert_close(flat[name][...], p.grad.numpy(), rtol=rtol, atol=atol, what=f"grad {name}")
    return j_out


def test_resnet_block_nnx_and_linen(rng):
    tm = TorchResBlock(4, 6, 8)
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    t = rng.standard_normal((2, 8)).astype(np.float32)
    out = _compare_model(tm, lambda m, x, t: m(x, t), NnxResBlock(4, 6, 8, rngs=rngs()), [x, t])
    lm = LinenResBlock(4, 6, 8)
    variables, _ = jl.load_state_dict(lm.init(jax.random.key(0), x, t), tm.state_dict())
    np.testing.assert_array_equal(lm.apply(variables, x, t), out)
    # linen gradients against torch's too
    cot = np.random.default_rng(3).standard_normal(out.shape).astype(np.float32)
    g = jax.grad(lambda p: jnp.sum(lm.apply({"params": p}, x, t) * cot))(variables["params"])
    sd_grads = jl.state_dict({"params": g})
    for name, p in tm.named_parameters():
        assert_close(sd_grads[name], p.grad.numpy(), rtol=1e-5, atol=1e-5, what=name)


def test_feed_forward_geglu_in_module_list(rng):
    tm = TorchFeedForward(8, 16)
    assert "net.0.proj.weight" in tm.state_dict()
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    out = _compare_model(tm, lambda m, x: m(x), NnxFeedForward(8, 16, rngs=rngs()), [x])
    lm = LinenFeedForward(8, 16)
    template = lm.init(jax.random.key(0), x)
    sd = {k: v for k, v in tm.state_dict().items()}
    variables, _ = jl.load_state_dict(template, sd)
    np.testing.assert_array_equal(lm.apply(variables, x), out)
    del sd["net.2.bias"]
    sd["net.3.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="Missing key"):
        jl.load_state_dict(template, sd)
    kept, result = jl.load_state_dict(template, sd, strict=False)
    assert result == jn.LoadResult(["net.2.bias"], ["net.3.weight"])
    np.testing.assert_array_equal(kept["params"]["net"]["2"]["bias"], template["params"]["net"]["2"]["bias"])


def test_strided_downsampler_and_transposed_upsampler(rng):
    x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
    _compare_model(torch_updown(), lambda m, x: m(x), nnx_updown(), [x])


def test_conv1d_conv3d_groups_and_padding_modes(rng):
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    _compare_model(torch_stack1d3d(), _torch_stack_forward, NnxStack(), [x])


# --- checkpoints -------------------------------------------------------------------------------------


def test_round_trip_torch_jaxnn_safetensors_torch(tmp_path):
    tm = TorchResBlock(4, 6, 8)
    m = NnxResBlock(4, 6, 8, rngs=rngs())
    jn.load_state_dict(m, tm.state_dict())
    path = tmp_path / "block.safetensors"
    jn.save_state_dict(m, path, metadata={"format": "pt"})
    back = TorchResBlock(4, 6, 8)
    missing = back.load_state_dict({k: torch.tensor(v) for k, v in safetensors.numpy.load_file(str(path)).items()})
    assert not missing.missing_keys and not missing.unexpected_keys
    for k, v in tm.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # and straight from the file into a fresh jaxnn model, without torch
    m2 = NnxResBlock(4, 6, 8, rngs=nnx.Rngs(5))
    jn.load_state_dict(m2, str(path))
    for k, v in jn.state_dict(m2).items():
        np.testing.assert_array_equal(v, tm.state_dict()[k].numpy())
    # linen params save the same file
    x = jnp.ones((1, 4, 8, 8))
    lv, _ = jl.load_state_dict(LinenResBlock(4, 6, 8).init(jax.random.key(0), x, jnp.ones((1, 8))), str(path))
    jl.save_state_dict(lv, tmp_path / "linen.safetensors")
    a, b = jaxnn.load_file(path), jaxnn.load_file(tmp_path / "linen.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_safetensors_written_by_the_library_reads_here(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b.c": np.ones(3, np.float16),
              "i": np.arange(4, dtype=np.int64)}
    safetensors.numpy.save_file(arrays, str(tmp_path / "x.safetensors"))
    got = jaxnn.load_file(tmp_path / "x.safetensors")
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype


def test_torch_pt_file_and_bfloat16_tensors(tmp_path):
    tm = torch_updown()
    torch.save(tm.state_dict(), tmp_path / "m.pt")
    m = nnx_updown()
    jn.load_state_dict(m, str(tmp_path / "m.pt"))
    np.testing.assert_array_equal(jn.state_dict(m)["0.weight"], tm.state_dict()["0.weight"].numpy())
    bf = {k: v.to(torch.bfloat16) for k, v in tm.state_dict().items()}
    jn.load_state_dict(m, bf, dtype=jnp.bfloat16)
    assert jn.state_dict(m)["0.weight"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        np.asarray(jn.state_dict(m)["0.weight"], np.float32), bf["0.weight"].float().numpy()
    )


def test_strict_errors_report_everything_and_load_nothing():
    m = nnx_updown()
    before = {k: np.asarray(v) for k, v in jn.state_dict(m).items()}
    sd = {k: v.numpy() for k, v in torch_updown().state_dict().items()}
    del sd["0.bias"]
    sd["2.weight"] = np.zeros((4, 3, 3, 3), np.float32)
    sd["1.num_batches_tracked"] = np.zeros((), np.int64)
    with pytest.raises(CheckpointError) as info:
        jn.load_state_dict(m, sd)
    msg = str(info.value)
    assert "Missing key(s)" in msg and "'0.bias'" in msg
    assert "Unexpected key(s)" in msg and "'1.num_batches_tracked'" in msg
    assert "size mismatch for '2.weight'" in msg
    for k, v in jn.state_dict(m).items():
        np.testing.assert_array_equal(v, before[k])  # nothing loaded partially
    sd["2.weight"] = np.zeros((4, 3, 4, 4), np.float32)
    result = jn.load_state_dict(m, sd, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["1.num_batches_tracked"]
    np.testing.assert_array_equal(jn.state_dict(m)["2.weight"], 0.0)


def test_bad_values_and_paths(tmp_path):
    m = nnx_updown()
    # torch: "While copying the parameter named ..., expected torch.Tensor ... but received <class 'list'>"
    with pytest.raises(CheckpointError, match="parameter named '0.weight', expected an array or tensor"):
        jn.load_state_dict(m, {"0.weight": [1, 2, 3]}, strict=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        jn.load_state_dict(m, str(tmp_path / "missing.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a valid .safetensors"):
        jn.load_state_dict(m, str(bad))
    other = tmp_path / "weights.txt"
    other.write_text("hello")
    with pytest.raises(CheckpointError, match="cannot tell the format"):
        jn.load_state_dict(m, str(other))
    badpt = tmp_path / "bad.pt"
    badpt.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        jn.load_state_dict(m, str(badpt))
    with pytest.raises(TypeError, match="mapping"):
        jn.load_state_dict(m, 42)  # type: ignore[arg-type]


def test_linen_key_mapping_uses_names_only():
    # diffusers' `linear_1` is an attribute name, not a list index: it must stay as it is
    variables = {"params": {"time_embedding": {"linear_1": {"weight": jnp.ones(1)}},
                            "down": {"0": {"conv1": {"weight": jnp.ones(1)}}}}}
    sd = jl.state_dict(variables)
    assert sorted(sd) == ["down.0.conv1.weight", "time_embedding.linear_1.weight"]
    back, _ = jl.load_state_dict(variables, {k: np.asarray(v) * 2 for k, v in sd.items()})
    assert jax.tree.structure(back) == jax.tree.structure(variables)
    np.testing.assert_array_equal(back["params"]["time_embedding"]["linear_1"]["weight"], 2.0)


def test_nnx_module_under_jit_does_not_retrace(rng):
    m = NnxResBlock(4, 6, 8, rngs=rngs())
    traces = []

    @nnx.jit
    def f(m, x, t):
        traces.append(1)
        return m(x, t)

    x = jnp.asarray(rng.standard_normal((2, 4, 8, 8)).astype(np.float32))
    t = jnp.asarray(rng.standard_normal((2, 8)).astype(np.float32))
    for _ in range(3):
        f(m, x, t)
    assert len(traces) == 1


def test_dtype_policy_on_modules(rng):
    # flax's computation dtype is `compute_dtype`; torch's `dtype` is the parameters' dtype
    conv = jn.Conv2d(3, 4, 3, compute_dtype=jnp.bfloat16, rngs=rngs())
    out = conv(jnp.ones((1, 3, 5, 5)))
    assert out.dtype == jnp.bfloat16 and conv.weight[...].dtype == jnp.float32
    lin = jn.Linear(3, 2, dtype=jnp.bfloat16, rngs=rngs())
    assert lin.weight[...].dtype == jnp.bfloat16
    assert lin(jnp.ones((1, 3), jnp.bfloat16)).dtype == jnp.bfloat16
