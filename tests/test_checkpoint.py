"""Real-world checkpoints: files written by torch, safetensors, transformers and diffusers load into
jaxnn twins with torch's values; jaxnn's files (shards, index, variants) load in from_pretrained;
aliases, key maps, dtypes, sharded loading and every kind of bad file."""

from __future__ import annotations

import copy
import json
import os
import shutil
import struct
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from flax import linen as flax_nn
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

import jaxnn
import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn
from jaxnn._checkpoint import CheckpointError, find_in_folder, parse_size

ROOT = Path(__file__).resolve().parents[1]
FLOAT8 = {"F8_E4M3": (ml_dtypes.float8_e4m3fn, torch.float8_e4m3fn), "F8_E5M2": (ml_dtypes.float8_e5m2,
                                                                                 torch.float8_e5m2)}


def rngs(seed: int = 0) -> nnx.Rngs:
    return nnx.Rngs(params=seed, dropout=seed + 1)


class Node(nnx.Module):
    """A module holding variables at arbitrary dotted paths: a twin of any torch model's state."""


def twin_of(tm: torch.nn.Module) -> Node:
    """An nnx module with one zeroed variable per torch tensor, at the same key paths; torch
    tensors that are one tensor (tied) are one Variable reached under each name."""
    root, made = Node(), {}
    for key, v in tm.state_dict(keep_vars=True).items():
        *path, leaf = key.split(".")
        node = root
        for p in path:
            if not hasattr(node, p):
                setattr(node, p, Node())
            node = getattr(node, p)
        if id(v) not in made:
            kind = nnx.Param if isinstance(v, torch.nn.Parameter) else nnx.BatchStat
            dtype = ml_dtypes.bfloat16 if v.dtype == torch.bfloat16 else str(v.dtype).removeprefix("torch.")
            made[id(v)] = kind(jnp.zeros(tuple(v.shape), dtype))
        setattr(node, leaf, made[id(v)])
    return root


def assert_state_equals_torch(sd, tsd, keys=None):
    """Bit-equal floats of the same dtype; integers equal by value (JAX without x64 keeps
    torch's int64 counters as int32)."""
    for k in keys or tsd:
        got, want = np.asarray(sd[k]), jaxnn._checkpoint.to_numpy(tsd[k], k)
        if np.issubdtype(want.dtype, np.integer) and np.issubdtype(got.dtype, np.integer):
            np.testing.assert_array_equal(got, want, err_msg=k)
            continue
        assert got.dtype == want.dtype, k
        np.testing.assert_array_equal(np.ascontiguousarray(got).reshape(-1).view(np.uint8),
                                      np.ascontiguousarray(want).reshape(-1).view(np.uint8), err_msg=k)


# --- safetensors library, and why jaxnn keeps its own code for float8 -------------------------------


def test_safetensors_numpy_cannot_read_float8_so_jaxnn_reads_those(tmp_path):
    t = {"a": torch.tensor([0.5, -448.0, 3.0]).to(torch.float8_e4m3fn),
         "b": torch.tensor([1.0, -57344.0]).to(torch.float8_e5m2), "c": torch.arange(3.0)}
    safetensors.torch.save_file(t, tmp_path / "t.safetensors")
    # the library's numpy interface cannot read them (it looks for numpy.float8_e4m3fn), whole or sliced
    with safe_open(tmp_path / "t.safetensors", "numpy") as f:
        for read in (lambda: f.get_tensor("a"), lambda: f.get_slice("b")[:1],
                     lambda: safetensors.numpy.load_file(tmp_path / "t.safetensors")):
            with pytest.raises(AttributeError, match="float8"):
                read()
    got = jaxnn.load_file(tmp_path / "t.safetensors")
    assert_state_equals_torch(got, t)
    jaxnn.save_file(got, tmp_path / "back.safetensors")
    back = safetensors.torch.load_file(tmp_path / "back.safetensors")
    for k in t:
        assert back[k].dtype == t[k].dtype and torch.equal(back[k].view(torch.uint8), t[k].view(torch.uint8)), k
    with safe_open(tmp_path / "back.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}


def test_writes_with_the_library_and_always_format_pt(tmp_path):
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "h": np.ones(3, ml_dtypes.bfloat16)}
    jaxnn.save_file(arrays, tmp_path / "a.safetensors", metadata={"note": "x", "format": "pt"})
    jaxnn.save_file(arrays, tmp_path / "b.safetensors", metadata={"note": "x"})
    # same bytes as safetensors.numpy.save_file with the merged metadata: the library wrote it
    safetensors.numpy.save_file(arrays, str(tmp_path / "c.safetensors"), metadata={"format": "pt", "note": "x"})
    parsed = []
    for n in "abc":  # same header (as JSON: the library's metadata order varies) and same data bytes
        raw = (tmp_path / f"{n}.safetensors").read_bytes()
        (size,) = struct.unpack("<Q", raw[:8])
        parsed.append((json.loads(raw[8 : 8 + size]), raw[8 + size :]))
    assert parsed[0] == parsed[1] == parsed[2]
    with safe_open(tmp_path / "b.safetensors", "np") as f:
        assert f.metadata() == {"format": "pt", "note": "x"}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float32"])
def test_dtypes_round_trip_bit_exactly_and_torch_reads_them(tmp_path, dtype):
    rng = np.random.default_rng(0)
    np_dtype = np.dtype(getattr(ml_dtypes, dtype, None) or dtype)
    values = (rng.standard_normal((3, 5)) * 4).astype(np_dtype)
    values.reshape(-1)[:3] = np.array([0.0, -0.0, np.inf if "e4m3" not in dtype else 0.5], np.float32)
    m = Node()
    m.weight = nnx.Param(jnp.asarray(values))
    m.count = nnx.BatchStat(jnp.asarray(7, jnp.int64) if jax.config.jax_enable_x64 else jnp.asarray(7, jnp.int32))
    jn.save_state_dict(m, tmp_path / "m.safetensors")
    t = safetensors.torch.load_file(tmp_path / "m.safetensors")
    assert str(t["weight"].dtype) == f"torch.{dtype}"
    assert_state_equals_torch({"weight": values}, t, ["weight"])
    fresh = Node()
    fresh.weight = nnx.Param(jnp.zeros((3, 5), np_dtype))
    fresh.count = nnx.BatchStat(jnp.zeros((), m.count.get_value().dtype))
    assert jn.load_state_dict(fresh, tmp_path / "m.safetensors") == jn.LoadResult([], [])
    np.testing.assert_array_equal(np.asarray(fresh.weight.get_value()).view(np.uint8), values.view(np.uint8))
    assert int(fresh.count.get_value()) == 7


@pytest.mark.parametrize("src,dst", [("float32", "bfloat16"), ("float32", "float16"), ("bfloat16", "float32"),
                                     ("float32", "float8_e4m3fn"), ("float16", "float32")])
def test_cast_on_load_to_the_variable_dtype_or_dtype_arg_as_torch_copy(tmp_path, src, dst):
    tsrc = torch.randn(4, 6, generator=torch.Generator().manual_seed(1)).to(getattr(torch, src)) * 3
    safetensors.torch.save_file({"weight": tsrc}, tmp_path / "w.safetensors")
    want = torch.zeros(4, 6, dtype=getattr(torch, dst)).copy_(tsrc)  # torch's load_state_dict copies
    jdst = np.dtype(getattr(ml_dtypes, dst, None) or dst)
    m = Node()
    m.weight = nnx.Param(jnp.zeros((4, 6), jdst))
    jn.load_state_dict(m, tmp_path / "w.safetensors")
    assert_state_equals_torch(jn.state_dict(m), {"weight": want})
    m2 = Node()
    m2.weight = nnx.Param(jnp.zeros((4, 6), jnp.float32))
    jn.load_state_dict(m2, tmp_path / "w.safetensors", dtype=jdst)
    assert_state_equals_torch(jn.state_dict(m2), {"weight": want})
    variables, _ = jl.load_state_dict({"params": {"weight": jnp.zeros((4, 6), jdst)}}, tmp_path / "w.safetensors")
    assert_state_equals_torch(jl.state_dict(variables), {"weight": want})


@settings(max_examples=15)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
       dtype=st.sampled_from(["F32", "F16", "BF16", "F8_E4M3", "I64", "U8", "BOOL"]),
       n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_hypothesis_torch_written_files_read_back_exactly(tmp_path_factory, shape, dtype, n, seed):
    tdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F8_E4M3": torch.float8_e4m3fn,
           "I64": torch.int64, "U8": torch.uint8, "BOOL": torch.bool}[dtype]
    g = torch.Generator().manual_seed(seed)
    t = {f"layer.{i}.w": (torch.randn(shape, generator=g) * 10).to(tdt) for i in range(n)}
    path = tmp_path_factory.mktemp("h") / "t.safetensors"
    safetensors.torch.save_file(t, path)
    assert_state_equals_torch(jaxnn.load_file(path), t)


# --- torch.save and safetensors.torch files, aliases --------------------------------------------


class TiedLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.proj = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


class NnxTiedLM(nnx.Module):
    def __init__(self, *, tied: bool = True):
        self.embed = Node()
        self.embed.weight = nnx.Param(jnp.zeros((10, 4)))
        self.proj = jn.Linear(4, 4, rngs=rngs())
        self.head = Node()
        self.head.weight = self.embed.weight if tied else nnx.Param(jnp.zeros((10, 4)))


def test_tied_weights_state_dict_lists_both_names_and_saves_once(tmp_path):
    m = NnxTiedLM()
    sd = jn.state_dict(m)
    assert sorted(sd) == sorted(TiedLM().state_dict())
    assert sd["embed.weight"] is sd["head.weight"]
    jn.save_state_dict(m, tmp_path / "m.safetensors")
    with safe_open(tmp_path / "m.safetensors", "np") as f:
        assert sorted(f.keys()) == ["embed.weight", "proj.bias", "proj.weight"]  # first name in attribute order
    tm = TiedLM()
    # torch's own loader takes the file once the tie is restored, like transformers does
    missing = tm.load_state_dict(safetensors.torch.load_file(tmp_path / "m.safetensors"), strict=False)
    assert missing.missing_keys == ["head.weight"] and tm.head.weight is tm.embed.weight


@pytest.mark.parametrize("writer", ["torch.save", "state_dict", "save_model", "save_file_one_name"])
def test_aliases_from_every_writer_load_strictly(tmp_path, writer):
    torch.manual_seed(0)
    tm = TiedLM()
    path = tmp_path / ("m.pt" if writer == "torch.save" else "m.safetensors")
    source = str(path)
    if writer == "torch.save":
        torch.save(tm.state_dict(), path)  # storage sharing survives torch.load
    elif writer == "state_dict":
        source = tm.state_dict()
    elif writer == "save_model":
        safetensors.torch.save_model(tm, str(path))  # deduplicates: keeps one of the names
    else:
        sd = tm.state_dict()
        del sd["head.weight"]
        safetensors.torch.save_file(sd, path)
    m = NnxTiedLM()
    assert jn.load_state_dict(m, source) == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(m), tm.state_dict())
    assert m.head.weight is m.embed.weight
    # a twin without the tie (linen cannot tie): the torch tensors' alias is not unexpected,
    # a file holding only one of the names is missing the other, as torch would say
    variables = {"params": {"embed": {"weight": jnp.zeros((10, 4))}, "proj": {"weight": jnp.zeros((4, 4)),
                                                                               "bias": jnp.zeros(4)}}}
    if writer in ("torch.save", "state_dict"):
        out, result = jl.load_state_dict(variables, source)
        assert result == jl.LoadResult([], [])
        np.testing.assert_array_equal(out["params"]["embed"]["weight"], tm.embed.weight.detach().numpy())
    untied = NnxTiedLM(tied=False)
    if writer in ("torch.save", "state_dict"):  # both names are in the checkpoint
        assert jn.load_state_dict(untied, source) == jn.LoadResult([], [])
        assert_state_equals_torch(jn.state_dict(untied), tm.state_dict())
    else:
        with pytest.raises(CheckpointError, match=r"Missing key\(s\) in state_dict: '(head|embed).weight'"):
            jn.load_state_dict(untied, source)


def test_untied_names_with_different_values_are_an_error():
    m = NnxTiedLM()
    sd = {k: v.detach().numpy().copy() for k, v in TiedLM().state_dict().items()}
    sd["head.weight"] = sd["head.weight"] + 1  # two separate arrays, not one tensor
    with pytest.raises(CheckpointError, match="'embed.weight' and 'head.weight' are one tensor"):
        jn.load_state_dict(m, sd)
    sd["head.weight"] = sd["embed.weight"].copy()  # equal values: fine, as torch copies both
    assert jn.load_state_dict(m, sd) == jn.LoadResult([], [])


def test_pt_wrapped_state_dict_and_bin_bfloat16(tmp_path):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).to(torch.bfloat16)
    torch.save({"state_dict": tm.state_dict(), "epoch": 3}, tmp_path / "m.ckpt")
    torch.save(tm.state_dict(), tmp_path / "pytorch_model.bin")
    for src in (tmp_path / "m.ckpt", tmp_path, tmp_path / "pytorch_model.bin"):
        if src == tmp_path:
            os.remove(tmp_path / "m.ckpt")
        m = jn.Sequential(jn.Linear(3, 4, rngs=rngs(), dtype=jnp.bfloat16), jn.BatchNorm1d(4, dtype=jnp.bfloat16))
        assert jn.load_state_dict(m, src) == jn.LoadResult([], [])
        assert_state_equals_torch(jn.state_dict(m), tm.state_dict())


# --- shards, indexes, variants --------------------------------------------------------------------


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8),
                               torch.nn.LayerNorm(8))


def _nnx_mlp():
    return jn.Sequential(jn.Linear(8, 16, rngs=rngs(3)), jn.GELU(), jn.Linear(16, 8, rngs=rngs(4)), jn.LayerNorm(8))


@pytest.mark.parametrize("max_shard_size", [200, "1KB", "1KiB", 10**9, "600B", 64])
def test_sharded_write_layout_matches_huggingface_hub(tmp_path, max_shard_size):
    from huggingface_hub import split_torch_state_dict_into_shards

    tm = _mlp()
    m = _nnx_mlp()
    jn.load_state_dict(m, tm.state_dict())
    files = jn.save_state_dict(m, tmp_path / "out", max_shard_size=max_shard_size, metadata={"origin": "jaxnn"})
    sd = dict(sorted(tm.state_dict().items()))
    split = split_torch_state_dict_into_shards(sd, max_shard_size=parse_size(max_shard_size),
                                               filename_pattern="model{suffix}.safetensors")
    names = sorted(os.listdir(tmp_path / "out"))
    if len(split.filename_to_tensors) == 1:
        assert names == ["model.safetensors"] and files == [str(tmp_path / "out" / "model.safetensors")]
    else:
        index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
        assert index["weight_map"] == split.tensor_to_filename
        assert index["metadata"]["total_size"] == split.metadata["total_size"]
        assert names == sorted([*split.filename_to_tensors, "model.safetensors.index.json"])
    for name in names:
        if name.endswith(".safetensors"):
            with safe_open(tmp_path / "out" / name, "np") as f:
                assert f.metadata() == {"format": "pt", "origin": "jaxnn"}
    back = _nnx_mlp()
    assert jn.load_state_dict(back, tmp_path / "out") == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(back), tm.state_dict())


@settings(max_examples=12)
@given(max_shard_size=st.integers(1, 2500))
def test_hypothesis_shards_match_huggingface_hub(tmp_path_factory, max_shard_size):
    from huggingface_hub import split_torch_state_dict_into_shards

    tm = _mlp()
    out = tmp_path_factory.mktemp("s")
    jn.save_state_dict(_loaded_mlp(tm), out, max_shard_size=max_shard_size)
    split = split_torch_state_dict_into_shards(dict(sorted(tm.state_dict().items())), max_shard_size=max_shard_size,
                                               filename_pattern="model{suffix}.safetensors")
    written = {}
    for name in os.listdir(out):
        if name.endswith(".safetensors"):
            with safe_open(out / name, "np") as f:
                written[name] = sorted(f.keys())
    assert written == {k: sorted(v) for k, v in split.filename_to_tensors.items()}


def _loaded_mlp(tm):
    m = _nnx_mlp()
    jn.load_state_dict(m, tm.state_dict())
    return m


@pytest.mark.parametrize("size,want", [(5, 5), ("5GB", 5 * 10**9), ("10MB", 10**7), ("2KiB", 2048), ("1.5kb", 1500)])
def test_parse_size(size, want):
    assert parse_size(size) == want


@pytest.mark.parametrize("bad,err,frag", [("5 parsecs", ValueError, "max_shard_size"), (0, ValueError, "positive"),
                                          (1.5, TypeError, "int or a str")])
def test_parse_size_errors(bad, err, frag):
    with pytest.raises(err, match=frag):
        parse_size(bad)


def test_file_path_with_shard_options_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="is one file"):
        jn.save_state_dict(_nnx_mlp(), tmp_path / "m.safetensors", max_shard_size="1KB")
    with pytest.raises(ValueError, match="weights_name"):
        jn.save_state_dict(_nnx_mlp(), tmp_path / "d", weights_name="model.bin")
    # values are checked before any shard is written
    for bad, frag in (({"a": jnp.ones(2), "b": [1, 2]}, "key 'b' must be an array"),
                      ({"a": jnp.ones(2), "z": jnp.ones(2, jnp.complex64)}, "'z' of dtype complex64")):
        with pytest.raises(TypeError, match=frag):
            jl.save_state_dict({"params": bad}, tmp_path / "e", max_shard_size=4)
        assert not (tmp_path / "e").exists() or not os.listdir(tmp_path / "e")


def test_variants_and_plain_files_side_by_side(tmp_path):
    tm = _mlp()
    half = {k: v.half() for k, v in tm.state_dict().items()}
    m = _nnx_mlp()
    jn.load_state_dict(m, tm.state_dict())
    jn.save_state_dict(m, tmp_path, max_shard_size=400)  # plain: shards + index
    mh = jn.Sequential(jn.Linear(8, 16, rngs=rngs(), dtype=jnp.float16), jn.GELU(),
                       jn.Linear(16, 8, rngs=rngs(), dtype=jnp.float16), jn.LayerNorm(8, dtype=jnp.float16))
    jn.load_state_dict(mh, half)
    jn.save_state_dict(mh, tmp_path, variant="fp16", max_shard_size=300)
    jn.save_state_dict(mh, tmp_path / "single", variant="fp16")
    names = sorted(os.listdir(tmp_path))
    assert "model.safetensors.index.fp16.json" in names and "model.safetensors.index.json" in names
    assert any(n.startswith("model.fp16-00001-of-") for n in names)
    assert any(n.startswith("model-00001-of-") for n in names)
    assert sorted(os.listdir(tmp_path / "single")) == ["model.fp16.safetensors"]
    assert find_in_folder(str(tmp_path)).endswith("model.safetensors.index.json")
    assert find_in_folder(str(tmp_path), "fp16").endswith("model.safetensors.index.fp16.json")
    plain = _nnx_mlp()
    jn.load_state_dict(plain, tmp_path)
    assert_state_equals_torch(jn.state_dict(plain), tm.state_dict())
    fp16 = _nnx_mlp()
    jn.load_state_dict(fp16, tmp_path, variant="fp16", dtype=jnp.float16)
    assert_state_equals_torch(jn.state_dict(fp16), half)
    with pytest.raises(CheckpointError, match="no checkpoint for variant 'bf16'"):
        jn.load_state_dict(fp16, tmp_path, variant="bf16")
    with pytest.raises(ValueError, match="`variant`.*not a folder"):
        jn.load_state_dict(fp16, tmp_path / "single" / "model.fp16.safetensors", variant="fp16")


def test_folder_rules(tmp_path):
    a = {"w": np.ones(2, np.float32)}
    (tmp_path / "config.json").write_text("{}")
    jaxnn.save_file(a, tmp_path / "sd_xl_base_1.0.safetensors")  # a dotted name with no plain twin is plain
    assert find_in_folder(str(tmp_path)).endswith("sd_xl_base_1.0.safetensors")
    jaxnn.save_file(a, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="several checkpoints.*other.safetensors, sd_xl_base_1.0"):
        find_in_folder(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        jn.load_state_dict(Node(), empty)
    torch.save({"w": torch.ones(2)}, tmp_path / "empty" / "diffusion_pytorch_model.bin")
    jaxnn.save_file(a, tmp_path / "empty" / "diffusion_pytorch_model.fp16.safetensors")
    assert find_in_folder(str(empty)).endswith("diffusion_pytorch_model.bin")  # plain beats a variant


def test_bin_index_and_relative_shard_paths(tmp_path):
    tm = _mlp()
    sd = tm.state_dict()
    (tmp_path / "shards").mkdir()
    keys = sorted(sd)
    torch.save({k: sd[k] for k in keys[:3]}, tmp_path / "shards" / "a.bin")
    torch.save({k: sd[k] for k in keys[3:]}, tmp_path / "shards" / "b.bin")
    weight_map = {k: ("shards/a.bin" if i < 3 else "shards/b.bin") for i, k in enumerate(keys)}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    m = _nnx_mlp()
    assert jn.load_state_dict(m, tmp_path) == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(m), sd)


# --- key maps -------------------------------------------------------------------------------------


def test_key_map_ddp_and_ldm_prefixes_and_callable():
    tm = _mlp()
    ddp = {f"module.{k}": v for k, v in tm.state_dict().items()}
    ldm = {f"model.diffusion_model.{k}": v for k, v in tm.state_dict().items()}
    ldm["first_stage_model.encoder.weight"] = torch.zeros(3)
    for sd, key_map in ((ddp, {r"^module\.": ""}), (ldm, {r"^model\.diffusion_model\.": ""}),
                        (ldm, lambda k: k.removeprefix("model.diffusion_model.") if k.startswith("model.") else None)):
        m = _nnx_mlp()
        result = jn.load_state_dict(m, sd, key_map=key_map, strict=callable(key_map))
        assert result.missing_keys == []
        assert_state_equals_torch(jn.state_dict(m), tm.state_dict())
    m = _nnx_mlp()
    with pytest.raises(CheckpointError) as info:
        jn.load_state_dict(m, ddp)
    msg = str(info.value)
    assert "Missing key(s) in state_dict: '0.bias' (did you mean 'module.0.bias'?)" in msg
    assert "Unexpected key(s) in state_dict: 'module.0.bias' (did you mean '0.bias'?)" in msg
    with pytest.raises(CheckpointError) as info:  # keys are shown after mapping
        jn.load_state_dict(m, ddp, key_map={r"^module\.": "", r"^3\.": "norm."})
    assert "'norm.weight' (did you mean '3.weight'?)" in str(info.value)


def test_key_map_applies_to_torch_metadata_versions():
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    sd = tnet.state_dict()
    ddp = OrderedDict((f"module.{k}", v) for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    ddp._metadata = OrderedDict((f"module.{k}" if k else "module", v) for k, v in sd._metadata.items())  # type: ignore[attr-defined]
    plain = OrderedDict((k.removeprefix("module."), v) for k, v in ddp.items())
    plain._metadata = sd._metadata  # type: ignore[attr-defined]
    # version-2 metadata: torch requires num_batches_tracked, and so does jaxnn after the key map
    with pytest.raises(RuntimeError, match="Missing key.*1.num_batches_tracked"):
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).load_state_dict(plain)
    net = jn.Sequential(jn.Linear(3, 4, rngs=rngs()), jn.BatchNorm1d(4))
    with pytest.raises(CheckpointError, match="Missing key.*'1.num_batches_tracked'"):
        jn.load_state_dict(net, ddp, key_map={r"^module\.": ""})
    del ddp._metadata  # type: ignore[attr-defined]  # no versions: the counter may be absent, as in torch
    assert jn.load_state_dict(net, ddp, key_map={r"^module\.": ""}) == jn.LoadResult([], [])


def test_key_map_errors():
    sd = {"a.w": np.zeros(2), "b.w": np.zeros(2)}
    with pytest.raises(CheckpointError, match="maps both 'a.w' and 'b.w'.*to 'w'"):
        jn.load_state_dict(Node(), sd, key_map={r"^[ab]\.": ""})
    with pytest.raises(ValueError, match="not a valid regular expression"):
        jn.load_state_dict(Node(), sd, key_map={"(": ""})
    with pytest.raises(TypeError, match="callable or a mapping"):
        jn.load_state_dict(Node(), sd, key_map=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must return a str or None"):
        jn.load_state_dict(Node(), sd, key_map=lambda k: 1)  # type: ignore[arg-type,return-value]


# --- bad files: one clear error naming the file, nothing loaded ------------------------------------


def _good_file(path):
    safetensors.numpy.save_file({"0.weight": np.ones((16, 8), np.float32), "0.bias": np.ones(16, np.float32)},
                                str(path), metadata={"format": "pt"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _with_header(path, header, data):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _bad_files(tmp_path):
    p = tmp_path / "bad.safetensors"
    header, data = _good_file(p)
    cases = {}

    def make(name, fn):
        path = tmp_path / f"{name}.safetensors"
        fn(path, json.loads(json.dumps(header)), data)
        cases[name] = path

    make("truncated", lambda path, h, d: _with_header(path, h, d[:-10]))
    make("header_too_long", lambda path, h, d: path.write_bytes(struct.pack("<Q", 10**6) + b"{}"))
    make("short", lambda path, h, d: path.write_bytes(b"\x01\x02"))

    def out_of_range(path, h, d):
        h["0.bias"]["data_offsets"] = [len(d), len(d) + 64]
        _with_header(path, h, d)

    def overlapping(path, h, d):
        h["0.weight"]["data_offsets"] = [0, 512]
        _with_header(path, h, d)

    def bad_dtype(path, h, d):
        h["0.bias"]["dtype"] = "C64"
        _with_header(path, h, d)

    def size_mismatch(path, h, d):
        h["0.bias"]["shape"] = [15]
        _with_header(path, h, d)

    make("out_of_range", out_of_range)
    make("overlapping", overlapping)
    make("bad_dtype", bad_dtype)
    make("inconsistent", size_mismatch)
    make("not_json", lambda path, h, d: path.write_bytes(struct.pack("<Q", 4) + b"{{{{"))
    make("trailing", lambda path, h, d: _with_header(path, h, d + b"\0" * 8))

    def gap(path, h, d):  # the last tensor moved 8 bytes on, 8 bytes of nothing before it
        last = max((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
        start = h[last]["data_offsets"][0]
        h[last]["data_offsets"] = [o + 8 for o in h[last]["data_offsets"]]
        _with_header(path, h, d[:start] + b"\0" * 8 + d[start:])

    make("gap", gap)
    return cases


BAD_FRAGMENTS = {
    "truncated": "out of range", "header_too_long": "exceeds the file size", "short": "shorter than",
    "out_of_range": "out of range", "overlapping": "overlapping", "bad_dtype": "'C64', which jaxnn cannot load",
    "inconsistent": "needs 60 bytes", "not_json": "not a valid .safetensors",
    "trailing": "cover bytes 0..576 of a data section of 584 bytes",
    "gap": "8 bytes between tensors '0.bias' and '0.weight' belong to no tensor",
}


@pytest.mark.parametrize("case", sorted(BAD_FRAGMENTS))
def test_bad_safetensors_files_give_one_error_naming_the_file_and_load_nothing(tmp_path, case):
    path = _bad_files(tmp_path)[case]
    # the safetensors library (and so torch's users) refuses each of them too
    with pytest.raises(Exception):  # noqa: B017 - SafetensorError or its header parse error
        with safe_open(path, "np") as f:
            [f.get_tensor(k) for k in f.keys()]
    m = jn.Sequential(jn.Linear(8, 16, rngs=rngs()))
    before = {k: np.asarray(v) for k, v in jn.state_dict(m).items()}
    with pytest.raises(CheckpointError, match=BAD_FRAGMENTS[case]) as info:
        jn.load_state_dict(m, path)
    assert str(path) in str(info.value) and "not a valid .safetensors" in str(info.value)
    for k, v in jn.state_dict(m).items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(CheckpointError, match=BAD_FRAGMENTS[case]):
        jl.load_state_dict({"params": {"0": {"weight": jnp.zeros((16, 8)), "bias": jnp.zeros(16)}}}, path)


def test_bad_shard_in_an_index_loads_nothing(tmp_path):
    m = _nnx_mlp()
    jn.load_state_dict(m, _mlp().state_dict())
    jn.save_state_dict(m, tmp_path / "ok", max_shard_size=300)
    target = _nnx_mlp()
    before = {k: np.asarray(v) for k, v in jn.state_dict(target).items()}
    last = sorted(p for p in os.listdir(tmp_path / "ok") if p.endswith(".safetensors"))[-1]
    shutil.copytree(tmp_path / "ok", tmp_path / "missing")
    os.remove(tmp_path / "missing" / last)
    with pytest.raises(FileNotFoundError, match=f"names shard '{last}', which does not exist"):
        jn.load_state_dict(target, tmp_path / "missing")
    shutil.copytree(tmp_path / "ok", tmp_path / "truncated")
    raw = (tmp_path / "truncated" / last).read_bytes()
    (tmp_path / "truncated" / last).write_bytes(raw[:-4])
    with pytest.raises(CheckpointError, match=f"{last}.*out of range"):
        jn.load_state_dict(target, tmp_path / "truncated")
    shutil.copytree(tmp_path / "ok", tmp_path / "wrongmap")
    index_path = tmp_path / "wrongmap" / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    first = sorted(index["weight_map"])[0]
    index["weight_map"][first] = next(v for v in index["weight_map"].values() if v != index["weight_map"][first])
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=f"puts '{first}' in shard"):
        jn.load_state_dict(target, tmp_path / "wrongmap")
    index_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid checkpoint index"):
        jn.load_state_dict(target, index_path)
    for k, v in jn.state_dict(target).items():
        np.testing.assert_array_equal(v, before[k])


def test_truncated_or_foreign_torch_files(tmp_path):
    torch.save(_mlp().state_dict(), tmp_path / "m.pt")
    raw = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RuntimeError):  # torch refuses it too
        torch.load(tmp_path / "cut.pt", weights_only=True)
    m = _nnx_mlp()
    before = {k: np.asarray(v) for k, v in jn.state_dict(m).items()}
    with pytest.raises(CheckpointError, match=r"cut.pt' is not a readable torch checkpoint"):
        jn.load_state_dict(m, tmp_path / "cut.pt")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list.pt' holds a list, not a state_dict"):
        jn.load_state_dict(m, tmp_path / "list.pt")
    torch.save({"0.weight": 3}, tmp_path / "int.pt")  # a non-tensor where a tensor is expected (torch refuses too)
    with pytest.raises(CheckpointError, match=r"parameter named '0.weight', expected an array or tensor from the "
                                              r"checkpoint but received int \(in '.*int.pt'\)"):
        jn.load_state_dict(m, tmp_path / "int.pt", strict=False)
    for k, v in jn.state_dict(m).items():
        np.testing.assert_array_equal(v, before[k])


def test_dtype_the_model_cannot_take_and_missing_file(tmp_path):
    net = jn.Sequential(jn.Linear(3, 4, rngs=rngs()), jn.BatchNorm1d(4))
    sd = {k: np.asarray(v) for k, v in jn.state_dict(net).items()}
    sd["1.num_batches_tracked"] = np.asarray(2.5, np.float32)
    jaxnn.save_file(sd, tmp_path / "f.safetensors")
    with pytest.raises(CheckpointError, match=r"dtype mismatch for '1.num_batches_tracked'.*f.safetensors.*float32"):
        jn.load_state_dict(net, tmp_path / "f.safetensors")
    for bad in (np.asarray(2.5, ml_dtypes.bfloat16), np.asarray(1.0, ml_dtypes.float8_e4m3fn)):
        with pytest.raises(CheckpointError, match=f"holds {bad.dtype}, the model's variable is int"):
            jn.load_state_dict(net, {**sd, "1.num_batches_tracked": bad})
    with pytest.raises(CheckpointError, match="'1.weight' has dtype <U1, which jaxnn cannot load"):
        jn.load_state_dict(net, {**sd, "1.weight": np.array(["a"] * 4)})
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    for err in (FileNotFoundError, CheckpointError):
        with pytest.raises(err, match="nope.safetensors' does not exist"):
            jn.load_state_dict(net, tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError):
        tnet.load_state_dict(safetensors.torch.load_file(tmp_path / "nope.safetensors"))


def test_missing_keys_of_an_abstract_module_are_an_error():
    abstract = nnx.eval_shape(_nnx_mlp)
    sd = dict(_mlp().state_dict())
    del sd["0.bias"]
    with pytest.raises(CheckpointError, match=r"abstract.*'0.bias'"):
        jn.load_state_dict(abstract, sd, strict=False)
    shapes = jax.eval_shape(jl.Linear(8, 16).init, jax.random.key(0), jnp.ones((1, 8)))
    with pytest.raises(CheckpointError, match=r"abstract.*'bias'"):
        jl.load_state_dict(shapes, {"weight": np.zeros((16, 8), np.float32)}, strict=False)


def test_abstract_module_loads_on_one_device():
    tm = _mlp()
    abstract = nnx.eval_shape(_nnx_mlp)
    assert jn.load_state_dict(abstract, tm.state_dict()) == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(abstract), tm.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_allclose(abstract(jnp.asarray(x)), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


# --- transformers and diffusers --------------------------------------------------------------------


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg)


def test_transformers_save_pretrained_shards_and_variant_load_into_a_twin(tmp_path):
    tm = _tiny_llama()
    tm.save_pretrained(tmp_path / "plain", max_shard_size="4KB")
    tm.half().save_pretrained(tmp_path / "plain", variant="fp16", max_shard_size="4KB")
    assert any(n.startswith("model-0") for n in os.listdir(tmp_path / "plain"))
    assert "model.safetensors.index.fp16.json" in os.listdir(tmp_path / "plain")
    ref = _tiny_llama().state_dict()
    tw = twin_of(_tiny_llama())
    assert jn.load_state_dict(tw, tmp_path / "plain") == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(tw), ref)
    tw16 = twin_of(_tiny_llama().half())
    assert jn.load_state_dict(tw16, tmp_path / "plain", variant="fp16") == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(tw16), {k: v.half() for k, v in ref.items()})


def test_jaxnn_shards_load_in_transformers_from_pretrained(tmp_path):
    from transformers import LlamaForCausalLM

    tm = _tiny_llama()
    tw = twin_of(tm)
    jn.load_state_dict(tw, tm.state_dict())
    files = jn.save_state_dict(tw, tmp_path, max_shard_size="4KB")
    assert len(files) > 2 and files[-1].endswith("model.safetensors.index.json")
    tm.config.save_pretrained(tmp_path)
    back, info = LlamaForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert back.lm_head.weight is back.model.embed_tokens.weight
    for k, v in tm.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    half = twin_of(tm.half())
    jn.load_state_dict(half, tm.state_dict())
    jn.save_state_dict(half, tmp_path / "v", variant="fp16", max_shard_size="2KB")
    assert "model.safetensors.index.fp16.json" in os.listdir(tmp_path / "v")
    tm.config.save_pretrained(tmp_path / "v")
    back, info = LlamaForCausalLM.from_pretrained(tmp_path / "v", variant="fp16", dtype=torch.float16,
                                                  output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    for k, v in tm.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def _tiny_unet():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)


def test_diffusers_save_pretrained_and_jaxnn_shards_both_ways(tmp_path):
    from diffusers import UNet2DModel

    tm = _tiny_unet()
    tm.save_pretrained(tmp_path / "d", max_shard_size="20KB")
    copy.deepcopy(tm).half().save_pretrained(tmp_path / "d", variant="fp16")  # diffusers does not cast
    assert "diffusion_pytorch_model.safetensors.index.json" in os.listdir(tmp_path / "d")
    tw = twin_of(tm)
    assert jn.load_state_dict(tw, tmp_path / "d") == jn.LoadResult([], [])
    assert_state_equals_torch(jn.state_dict(tw), tm.state_dict())
    tw2 = twin_of(tm)
    jn.load_state_dict(tw2, tmp_path / "d", variant="fp16")  # float32 twin: cast on load as torch's copy_
    assert_state_equals_torch(jn.state_dict(tw2), {k: v.half().float() for k, v in tm.state_dict().items()})
    # jaxnn writes diffusers' names, sharded, and diffusers loads them with no missing keys
    jn.save_state_dict(tw, tmp_path / "j", max_shard_size="20KB", weights_name="diffusion_pytorch_model.safetensors")
    assert "diffusion_pytorch_model.safetensors.index.json" in os.listdir(tmp_path / "j")
    tm.save_config(tmp_path / "j")
    back, info = UNet2DModel.from_pretrained(tmp_path / "j", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    for k, v in tm.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


# diffusers' real blocks, twins built from jaxnn.nnx layers


class NnxDownsample2D(nnx.Module):
    def __init__(self, channels, use_conv=True, out_channels=None, padding=1, *, rngs):
        out = out_channels or channels
        self.padding = padding
        self.conv = jn.Conv2d(channels, out, 3, stride=2, padding=padding, rngs=rngs)
        self.Conv2d_0 = self.conv  # one layer under two names, as diffusers registers it

    def __call__(self, x):
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class NnxUpsample2D(nnx.Module):
    def __init__(self, channels, use_conv=True, *, rngs):
        self.conv = jn.Conv2d(channels, channels, 3, padding=1, rngs=rngs)

    def __call__(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class NnxResnetBlock2D(nnx.Module):
    def __init__(self, in_channels, out_channels, temb_channels, groups, eps=1e-6, *, rngs):
        self.norm1 = jn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = jn.Conv2d(in_channels, out_channels, 3, padding=1, rngs=rngs)
        self.time_emb_proj = jn.Linear(temb_channels, out_channels, rngs=rngs)
        self.norm2 = jn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = jn.Conv2d(out_channels, out_channels, 3, padding=1, rngs=rngs)
        self.conv_shortcut = jn.Conv2d(in_channels, out_channels, 1, rngs=rngs) if in_channels != out_channels else None

    def __call__(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


def _block(case):
    """(name, torch block, jaxnn twin, input shape, takes temb) for one case, built on demand."""
    from diffusers.models.downsampling import Downsample2D
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.models.upsampling import Upsample2D

    torch.manual_seed(0)
    return [
        lambda: ("down", Downsample2D(16, use_conv=True), NnxDownsample2D(16, rngs=rngs()), (2, 16, 8, 8), False),
        lambda: ("down_pad0", Downsample2D(16, use_conv=True, padding=0), NnxDownsample2D(16, padding=0, rngs=rngs()),
                 (2, 16, 7, 7), False),
        lambda: ("up", Upsample2D(8, use_conv=True), NnxUpsample2D(8, rngs=rngs()), (2, 8, 5, 6), False),
        lambda: ("resnet", ResnetBlock2D(in_channels=8, out_channels=16, temb_channels=12, groups=4),
                 NnxResnetBlock2D(8, 16, 12, 4, rngs=rngs()), (2, 8, 6, 6), True),
        lambda: ("resnet_same", ResnetBlock2D(in_channels=8, out_channels=8, temb_channels=12, groups=4),
                 NnxResnetBlock2D(8, 8, 12, 4, rngs=rngs()), (1, 8, 4, 4), True),
    ][case]()


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("via", ["state_dict", "save_model"])
def test_diffusers_blocks_load_strictly_into_jaxnn_twins_and_match(tmp_path, case, via):
    name, tm, m, shape, temb = _block(case)
    tm.eval()
    if name.startswith("down"):
        assert tm.conv.weight is tm.Conv2d_0.weight and {"conv.weight", "Conv2d_0.weight"} <= set(tm.state_dict())
    source = tm.state_dict()
    if via == "save_model":  # safetensors deduplicates the twice-registered conv
        safetensors.torch.save_model(tm, str(tmp_path / "b.safetensors"))
        source = tmp_path / "b.safetensors"
    assert jn.load_state_dict(m, source) == jn.LoadResult([], [])
    assert sorted(jn.state_dict(m)) == sorted(tm.state_dict())
    rng = np.random.default_rng(case)
    x = rng.standard_normal(shape).astype(np.float32)
    t = rng.standard_normal((shape[0], 12)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    targs = (tx, torch.tensor(t)) if temb else (tx,)
    want = tm(*targs)
    jargs = (jnp.asarray(x), jnp.asarray(t)) if temb else (jnp.asarray(x),)
    got, vjp = jax.vjp(lambda x: m(x, *jargs[1:]), jargs[0])
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-5)
    ct = rng.standard_normal(want.shape).astype(np.float32)
    want.backward(torch.tensor(ct))
    np.testing.assert_allclose(vjp(jnp.asarray(ct))[0], tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    # and back: jaxnn's file loads strictly into the torch block (each tensor written once)
    jn.save_state_dict(m, tmp_path / "j.safetensors")
    with torch.no_grad():
        for v in tm.state_dict().values():
            v.zero_()
    missing, unexpected = safetensors.torch.load_model(tm, str(tmp_path / "j.safetensors"), strict=True)
    assert not missing and not unexpected
    assert_state_equals_torch(jn.state_dict(m), tm.state_dict())


class LinenDownsample2D(flax_nn.Module):
    channels: int

    def setup(self):
        self.conv = jl.Conv2d(self.channels, self.channels, 3, stride=2, padding=1)  # linen cannot tie `Conv2d_0`

    def __call__(self, x):
        return self.conv(x)


@pytest.mark.parametrize("via", ["state_dict", "torch.save"])
def test_diffusers_downsample_into_a_linen_twin(tmp_path, via):
    from diffusers.models.downsampling import Downsample2D

    torch.manual_seed(0)
    tm = Downsample2D(8, use_conv=True)
    source = tm.state_dict()
    if via == "torch.save":
        torch.save(source, tmp_path / "d.pt")
        source = tmp_path / "d.pt"
    x = np.random.default_rng(0).standard_normal((2, 8, 6, 6)).astype(np.float32)
    lm = LinenDownsample2D(8)
    variables, result = jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(x)), source)
    assert result == jl.LoadResult([], [])  # `Conv2d_0.*` is one tensor with `conv.*`: not unexpected
    np.testing.assert_allclose(lm.apply(variables, jnp.asarray(x)), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    # a plain dict of copies is two tensors: the second name is unexpected, as it would be in torch
    copies = {k: v.numpy().copy() for k, v in tm.state_dict().items()}
    with pytest.raises(CheckpointError, match="Unexpected key.*'Conv2d_0.bias'"):
        jl.load_state_dict(lm.init(jax.random.key(0), jnp.asarray(x)), copies)


# --- sharded loading on 8 simulated devices -----------------------------------------------------------


def test_sharded_load_reads_slices_on_8_devices(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    worker = str(Path(__file__).with_name("checkpoint_worker.py"))
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, worker, str(tmp_path), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    got = json.loads(out.read_text())
    assert got["devices"] == 8 and got["kept_sharding"] and got["kept_sharding_none"] and got["replicated"]
    for case in ("nnx", "linen", "float8"):
        r = got[case]
        assert r["values_equal"] and r["shardings_ok"], case
        # the loader never held even one whole tensor on the host (each device's slice is read on
        # its own), so far below the largest tensor plus a small constant; reading the whole file
        # into host memory (the check that this measurement can fail) holds all of it
        assert r["peak"] < r["largest"], (case, r)
        assert r["naive_peak"] > r["file"], (case, r)
        assert r["model"] > 4 * r["largest"]


# --- review regressions -------------------------------------------------------------------------------


def test_non_tensor_entries_are_unexpected_keys_as_in_torch_and_an_error_where_a_variable_matches(tmp_path):
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    sd = tnet.state_dict()  # an OrderedDict with torch's _metadata
    extra = OrderedDict(sd)
    extra["epoch"], extra["zero_a"], extra["zero_b"] = 3, 0, 0  # small ints are one cached object
    extra._metadata = sd._metadata  # type: ignore[attr-defined]
    torch.save(extra, tmp_path / "extra.pt")
    loaded = torch.load(tmp_path / "extra.pt", weights_only=True)
    want = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).load_state_dict(loaded, strict=False)
    assert sorted(want.unexpected_keys) == ["epoch", "zero_a", "zero_b"]
    for source in (tmp_path / "extra.pt", extra):
        net = jn.Sequential(jn.Linear(3, 4, rngs=rngs()), jn.BatchNorm1d(4))
        result = jn.load_state_dict(net, source, strict=False)
        assert result == jn.LoadResult([], sorted(want.unexpected_keys))
        assert_state_equals_torch(jn.state_dict(net), sd)
        with pytest.raises(CheckpointError, match=r"Unexpected key\(s\) in state_dict: 'epoch', 'zero_a', 'zero_b'"):
            jn.load_state_dict(net, source)
        variables, lresult = jl.load_state_dict(
            {"params": {"0": {"weight": jnp.zeros((4, 3)), "bias": jnp.zeros(4)}}}, source, strict=False)
        assert lresult.missing_keys == [] and "epoch" in lresult.unexpected_keys
    flat = jaxnn.load_file(tmp_path / "extra.pt")  # tensors only
    assert sorted(flat) == sorted(sd)
    # a training checkpoint {"model": state_dict, "optimizer": ...}: the error says which key holds it
    torch.save({"model": sd, "optimizer": {"lr": 0.1}}, tmp_path / "train.pt")
    with pytest.raises(CheckpointError, match=r"'model', 'optimizer' hold a nested mapping: .*\['model'\]"):
        jn.load_state_dict(jn.Sequential(jn.Linear(3, 4, rngs=rngs()), jn.BatchNorm1d(4)), tmp_path / "train.pt")
    # a non-tensor under a variable's name: torch refuses it, so does jaxnn, and loads nothing
    bad = OrderedDict(sd)
    bad["1.num_batches_tracked"] = 7
    with pytest.raises(RuntimeError, match="expected torch.Tensor"):
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).load_state_dict(bad)
    net = jn.Sequential(jn.Linear(3, 4, rngs=rngs()), jn.BatchNorm1d(4))
    before = {k: np.asarray(v) for k, v in jn.state_dict(net).items()}
    with pytest.raises(CheckpointError, match="'1.num_batches_tracked', expected an array or tensor .* received int"):
        jn.load_state_dict(net, bad, strict=False)
    for k, v in jn.state_dict(net).items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("bad,err", [(jnp.int32, ValueError), (np.int64, ValueError), (bool, ValueError),
                                     (jnp.complex64, ValueError), ("not-a-dtype", TypeError)])
def test_dtype_argument_must_be_floating_not_a_silent_truncation(bad, err):
    sd = {"0.weight": np.full((4, 3), 2.75, np.float32), "0.bias": np.full(4, -1.5, np.float32)}
    net = jn.Sequential(jn.Linear(3, 4, rngs=rngs()))
    before = {k: np.asarray(v) for k, v in jn.state_dict(net).items()}
    with pytest.raises(err, match="`dtype`"):
        jn.load_state_dict(net, sd, dtype=bad)
    with pytest.raises(err, match="`dtype`"):
        jl.load_state_dict({"params": {"0": {"weight": jnp.zeros((4, 3)), "bias": jnp.zeros(4)}}}, sd, dtype=bad)
    for k, v in jn.state_dict(net).items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("src", ["float32", "float64", "bfloat16", "float16", "int64"])
def test_cast_into_float8_e4m3fn_saturates_as_torch_copy(tmp_path, src):
    # float8_e4m3fn has no infinity: torch saturates overflow and +-inf to +-448 (ml_dtypes gives NaN)
    vals = [1e4, -1e4, 500.0, 480.0, 479.0, 464.0, 449.0, 448.0, -460.0, 0.3, float("inf"), -float("inf"),
            float("nan")]
    t = torch.tensor(vals, dtype=torch.float64)
    if src == "int64":
        t = torch.tensor([40000, -40000, 500, 480, 479, 464, 449, 448, -460, 3, 2**40, -(2**40), 0])
    t = t.to(getattr(torch, src))
    want = torch.zeros(len(vals), dtype=torch.float8_e4m3fn).copy_(t)
    for source in ({"w": t}, tmp_path / "w.pt"):
        torch.save({"w": t}, tmp_path / "w.pt")
        m = Node()
        m.w = nnx.Param(jnp.zeros(len(vals), ml_dtypes.float8_e4m3fn))
        jn.load_state_dict(m, source)
        assert_state_equals_torch(jn.state_dict(m), {"w": want})
        m2 = Node()
        m2.w = nnx.Param(jnp.zeros(len(vals), jnp.float32))
        jn.load_state_dict(m2, source, dtype=jnp.float8_e4m3fn)
        assert_state_equals_torch(jn.state_dict(m2), {"w": want})


@pytest.mark.parametrize("field,value,frag", [("shape", [True, 16], "invalid shape"),
                                              ("shape", [16.0], "invalid shape"),
                                              ("data_offsets", [0.0, 64.0], "invalid data offsets"),
                                              ("data_offsets", [0, 32, 64], "invalid data offsets")])
def test_header_fields_of_the_wrong_json_type_are_refused_up_front(tmp_path, field, value, frag):
    path = tmp_path / "x.safetensors"
    header, data = _good_file(path)
    header["0.bias"][field] = value
    _with_header(path, header, data)
    with pytest.raises(Exception):  # noqa: B017 - the library refuses it too
        with safe_open(path, "np") as f:
            [f.get_tensor(k) for k in f.keys()]
    for dt in ("F32", "F8_E4M3"):  # float8 entries bypass the library: the header check must catch it
        h = json.loads(json.dumps(header))
        if dt == "F8_E4M3":
            for k in h:
                if k != "__metadata__":
                    h[k]["dtype"] = dt
        _with_header(path, h, data)
        with pytest.raises(CheckpointError, match=f"x.safetensors' is not a valid .safetensors checkpoint: .*{frag}"):
            jaxnn.load_file(path)


def test_sharding_that_is_not_a_sharding_is_a_type_error_naming_the_key():
    from jax.sharding import PartitionSpec

    sd = {"0.weight": np.ones((4, 3), np.float32), "0.bias": np.ones(4, np.float32)}
    net = jn.Sequential(jn.Linear(3, 4, rngs=rngs()))
    with pytest.raises(TypeError, match=r"`sharding` gave P for '0.(weight|bias)'"):
        jn.load_state_dict(net, sd, sharding=lambda key: PartitionSpec())
    with pytest.raises(TypeError, match=r"`sharding` gave str for '0.weight'"):
        jl.load_state_dict({"params": {"0": {"weight": jnp.zeros((4, 3)), "bias": jnp.zeros(4)}}}, sd,
                           sharding={"0.weight": "x"})
    with pytest.raises(TypeError, match="`sharding` must be a jax.sharding.Sharding"):
        jn.load_state_dict(net, sd, sharding=PartitionSpec())
    # None from a callable or a mapping: no sharding for that key (default device here)
    jn.load_state_dict(net, sd, sharding=lambda key: None)
    jn.load_state_dict(net, sd, sharding={"0.weight": None})
    np.testing.assert_array_equal(jn.state_dict(net)["0.weight"], sd["0.weight"])


def test_saving_over_an_earlier_save_removes_its_stale_shards_index_and_single_file(tmp_path):
    a, b = _nnx_mlp(), _loaded_mlp(_mlp(seed=1))
    assert not np.array_equal(jn.state_dict(a)["0.weight"], jn.state_dict(b)["0.weight"])
    (tmp_path / "config.json").write_text("{}")
    jn.save_state_dict(b, tmp_path, variant="fp16", max_shard_size=300)  # another variant: left alone
    variant_files = sorted(n for n in os.listdir(tmp_path) if "fp16" in n)
    for first, second, kwargs in ((a, b, {}), (a, b, {"max_shard_size": 600}), (b, a, {"max_shard_size": 300})):
        jn.save_state_dict(first, tmp_path, max_shard_size=300)  # 3+ shards and an index
        files = [os.path.basename(f) for f in jn.save_state_dict(second, tmp_path, **kwargs)]
        plain = sorted(n for n in os.listdir(tmp_path) if n.startswith("model") and "fp16" not in n)
        assert plain == sorted(files)  # nothing of the first save is left
        back = _nnx_mlp()
        jn.load_state_dict(back, tmp_path)  # the index of the first save would win over model.safetensors
        assert_state_equals_torch(jn.state_dict(back), jn.state_dict(second))
    assert sorted(n for n in os.listdir(tmp_path) if "fp16" in n) == variant_files
    assert (tmp_path / "config.json").exists()
