"""jaxnn.models.CLIPTextModel / CLIPTextModelWithProjection against transformers 5.24's torch models.

Tiny configurations with every parameter randomised (so no test passes on zero-initialised layers),
saved once per module with transformers' ``save_pretrained`` and loaded with jaxnn's
``from_pretrained``: outputs (every field, hidden states included) within 1e-5 relative L2 of torch
with and without jit, gradients of a scalar loss w.r.t. every parameter within 1e-4, bfloat16 within
a small factor of torch's own bfloat16 error, the checkpoint formats (safetensors, .bin, fp16 variant,
shards, transformers 4.x's ``text_model.`` layout) and the round trip back into transformers.
"""

import copy
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors.torch import save_file
from transformers import CLIPTextConfig
from transformers import CLIPTextModel as TorchCLIPTextModel
from transformers import CLIPTextModelWithProjection as TorchCLIPTextModelWithProjection

import jaxnn.nnx as jn
from jaxnn._checkpoint import CheckpointError, CheckpointNotFoundError
from jaxnn.functional._embedding import EmbeddingIndexError
from jaxnn.models import (
    BaseModelOutputWithPooling,
    CLIPTextModel,
    CLIPTextModelOutput,
    CLIPTextModelWithProjection,
)

pytestmark = pytest.mark.xdist_group("models_clip")

# "text": SD 1.x-like text encoder with the current eos rule; "sdxl2": SDXL's text_encoder_2 shape
# (with projection, hidden_act 'gelu', the legacy eos_token_id 2); "gelu_new": the third activation.
CONFIGS = {
    "text": (TorchCLIPTextModel, CLIPTextModel, dict(
        vocab_size=100, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=16, projection_dim=24, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        bos_token_id=0, pad_token_id=1, eos_token_id=5)),
    "sdxl2": (TorchCLIPTextModelWithProjection, CLIPTextModelWithProjection, dict(
        vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=24, hidden_act="gelu", layer_norm_eps=1e-5,
        bos_token_id=0, pad_token_id=1, eos_token_id=2)),
    "gelu_new": (TorchCLIPTextModel, CLIPTextModel, dict(
        vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=16, projection_dim=24, hidden_act="gelu_new", layer_norm_eps=1e-6,
        bos_token_id=0, pad_token_id=1, eos_token_id=7)),
}
SEQ = 9


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy()


def _inputs(name: str):
    """Token ids exercising both pooling rules, and a padding mask with right and left padding."""
    cfg = CONFIGS[name][2]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(8, cfg["vocab_size"] - 1, (4, SEQ), generator=g)
    eos = cfg["eos_token_id"]
    if eos == 2:  # legacy rule: the largest id of each row (SD's EOS 49407 is the largest id)
        ids[0, 5] = cfg["vocab_size"] - 1
        ids[1, 2] = cfg["vocab_size"] - 1
        ids[1, 7] = cfg["vocab_size"] - 1  # a tie: the first one
        ids[2, 0] = 2  # an actual id 2 is not special under the legacy rule
    else:  # the first eos of each row; row 3 has none (position 0)
        ids[0, 5] = eos
        ids[1, 2] = eos
        ids[1, 6:] = eos  # eos used as padding
        ids[2, SEQ - 1] = eos
    mask = torch.ones(4, SEQ, dtype=torch.long)
    mask[1, 6:] = 0  # right padding
    mask[2, :3] = 0  # left padding: queries 0..2 may attend to no key
    return ids, mask


def _tree_np(x):
    return jax.tree.map(np.asarray, x)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (torch model (eval, random weights), folder saved by transformers, jaxnn model)."""
    out = {}
    for i, (name, (tcls, jcls, cfg)) in enumerate(CONFIGS.items()):
        torch.manual_seed(10 + i)
        tm = tcls(CLIPTextConfig(**cfg)).eval()
        with torch.no_grad():  # every parameter random; layer-norm scales around 1
            for pname, p in tm.named_parameters():
                p.copy_(torch.randn_like(p) * 0.4 + (1.0 if "norm" in pname and pname.endswith("weight") else 0.0))
        folder = str(tmp_path_factory.mktemp(f"clip_{name}"))
        tm.save_pretrained(folder)
        out[name] = (tm, folder, jcls.from_pretrained(folder))
    return out


def _torch_outputs(tm, ids, mask=None, position_ids=None):
    with torch.no_grad():
        o = tm(ids, attention_mask=mask, position_ids=position_ids, output_hidden_states=True)
    return {k: (tuple(_np(h) for h in v) if isinstance(v, tuple) else _np(v)) for k, v in o.items()}


def _compare(jout, tout, tol):
    fields = set(tout)
    assert fields == {f for f in ("text_embeds", "last_hidden_state", "pooler_output", "hidden_states")
                      if getattr(jout, f, None) is not None}
    for f in fields:
        if f == "hidden_states":
            assert len(jout.hidden_states) == len(tout[f])
            for k, (a, b) in enumerate(zip(jout.hidden_states, tout[f], strict=True)):
                assert _rel(a, b) <= tol, (f, k, _rel(a, b))
        else:
            assert np.asarray(getattr(jout, f)).shape == tout[f].shape
            assert _rel(getattr(jout, f), tout[f]) <= tol, (f, _rel(getattr(jout, f), tout[f]))


def test_state_dict_keys_match_torch(models):
    for name, (tm, _, jm) in models.items():
        sd = jn.state_dict(jm)
        tsd = tm.state_dict()
        assert sorted(sd) == sorted(tsd), name
        for k, v in tsd.items():
            assert sd[k].shape == tuple(v.shape) and sd[k].dtype == jnp.float32, (name, k)
            np.testing.assert_array_equal(np.asarray(sd[k]), v.numpy())


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_matches_torch(models, name, jit):
    tm, _, jm = models[name]
    ids, mask = _inputs(name)
    pos = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6, 5]])
    fn = (nnx.jit(lambda m, a, b, c: m(a, b, c, output_hidden_states=True)) if jit
          else (lambda m, a, b, c: m(a, b, c, output_hidden_states=True)))
    for m_, p_ in ((mask, None), (None, None), (mask, pos)):
        jout = fn(jm, jnp.asarray(ids.numpy()), None if m_ is None else jnp.asarray(m_.numpy()),
                  None if p_ is None else jnp.asarray(p_.numpy()))
        _compare(jout, _torch_outputs(tm, ids, m_, p_), 1e-5)


def test_pooling_rules(models):
    """The pooled state sits where transformers 5.24 takes it (checked on the ids themselves)."""
    for name in ("text", "sdxl2"):
        _, _, jm = models[name]
        ids, _ = _inputs(name)
        out = jm(jnp.asarray(ids.numpy()))
        text = jm if name == "text" else jm.text_model
        t = text(jnp.asarray(ids.numpy()))
        if name == "text":
            want = [5, 2, SEQ - 1, 0]  # first eos; row 3 has none
        else:
            want = [5, 2, int(ids[2].argmax()), int(ids[3].argmax())]
        np.testing.assert_array_equal(np.asarray(t.pooler_output),
                                      np.asarray(t.last_hidden_state)[np.arange(4), want])
        if name == "sdxl2":
            np.testing.assert_allclose(np.asarray(out.text_embeds),
                                       np.asarray(t.pooler_output) @ np.asarray(jm.text_projection.weight).T,
                                       rtol=1e-5, atol=1e-5)


def test_unbatched_and_batched_leading_dims(models):
    tm, _, jm = models["text"]
    ids, _ = _inputs("text")
    for x in (ids[0], ids[:4].reshape(2, 2, SEQ)):
        with torch.no_grad():
            t = tm(x)
        j = jm(jnp.asarray(x.numpy()))
        assert j.last_hidden_state.shape == tuple(t.last_hidden_state.shape)
        assert _rel(j.last_hidden_state, _np(t.last_hidden_state)) <= 1e-5
        assert _rel(j.pooler_output, _np(t.pooler_output)) <= 1e-5


def test_return_dict_false(models):
    for name in ("text", "sdxl2"):
        tm, _, jm = models[name]
        ids, mask = _inputs(name)
        with torch.no_grad():
            t = tm(ids, attention_mask=mask, return_dict=False)
            th = tm(ids, attention_mask=mask, return_dict=False, output_hidden_states=True)
        j = jm(jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy()), return_dict=False)
        jh = jm(jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy()), return_dict=False, output_hidden_states=True)
        assert isinstance(j, tuple) and len(j) == len(t) == 2 and len(jh) == len(th) == 3
        for a, b in zip(j, t, strict=True):
            assert _rel(a, _np(b)) <= 1e-5
        assert len(jh[2]) == len(th[2])
        out = jm(jnp.asarray(ids.numpy()))
        assert isinstance(out, BaseModelOutputWithPooling if name == "text" else CLIPTextModelOutput)
        assert out.hidden_states is None
        # transformers' ModelOutput indexing (diffusers' pipelines take `text_encoder(ids)[0]`)
        jo = jm(jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy()), output_hidden_states=True)
        for i in range(3):
            a, b = jo[i], th[i]
            for x, y in zip(a if i == 2 else (a,), b if i == 2 else (b,), strict=True):
                assert _rel(x, _np(y)) <= 1e-5
        assert jo[-1] is jo.hidden_states and jo[:2] == jo.to_tuple()[:2]
        assert jo["last_hidden_state"] is jo.last_hidden_state
        with pytest.raises(KeyError):
            out["hidden_states"]  # None fields are not items, as in transformers


def _param_grads(jm, loss):
    graphdef, params, rest = nnx.split(jm, nnx.Param, ...)
    grads = jax.jit(jax.grad(lambda p: loss(nnx.merge(graphdef, p, rest))))(params)
    return jn.state_dict(nnx.merge(graphdef, grads, rest))


@pytest.mark.parametrize("name", ["text", "sdxl2"])
def test_gradients_match_torch(models, name):
    tm, _, jm = models[name]
    ids, mask = _inputs(name)
    g = torch.Generator().manual_seed(3)
    fields = ["last_hidden_state", "pooler_output"] if name == "text" else ["last_hidden_state", "text_embeds"]
    with torch.no_grad():
        shapes = {f: tm(ids, attention_mask=mask)[f].shape for f in fields}
    weights = {f: torch.randn(s, generator=g) for f, s in shapes.items()}
    tm2 = copy.deepcopy(tm)
    tm2.zero_grad()
    to = tm2(ids, attention_mask=mask, output_hidden_states=True)
    loss = sum((to[f] * weights[f]).sum() for f in fields) + (to.hidden_states[1] ** 2).sum() * 0.1
    loss.backward()
    jw = {f: jnp.asarray(w.numpy()) for f, w in weights.items()}
    jids, jmask = jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy())

    def jloss(m):
        o = m(jids, jmask, output_hidden_states=True)
        return sum(jnp.sum(getattr(o, f) * jw[f]) for f in fields) + jnp.sum(o.hidden_states[1] ** 2) * 0.1

    grads = _param_grads(jm, jloss)
    tgrads = dict(tm2.named_parameters())
    assert set(grads) == set(tgrads)
    for k, p in tgrads.items():
        tg = p.grad.numpy()
        jg = np.asarray(grads[k])
        assert np.all(np.isfinite(jg)), k
        if np.linalg.norm(tg) == 0:  # e.g. unused embedding rows only: exactly zero in both
            assert np.abs(jg).max() == 0, k
        elif k.endswith("k_proj.bias"):
            # adds the same q.b to every score of a query row: softmax ignores it, the gradient is
            # 0 up to rounding in both (noise of the other terms' size times float32 eps)
            scale = np.linalg.norm(tgrads[k.replace("bias", "weight")].grad.numpy())
            assert np.linalg.norm(jg) < 1e-4 * scale and np.linalg.norm(tg) < 1e-4 * scale, k
        else:
            assert _rel(jg, tg) <= 1e-4, (k, _rel(jg, tg))


@pytest.mark.parametrize("name, dtype", [("text", "bfloat16"), ("sdxl2", "bfloat16"), ("text", "float16")])
def test_half_precision_within_torch_error(models, name, dtype):
    """Parameters and computation in bfloat16/float16: the error against torch's float32 run is
    within 2x torch's own half-precision error."""
    tm, folder, _ = models[name]
    ids, mask = _inputs(name)
    ref = _torch_outputs(tm, ids, mask)
    tb = copy.deepcopy(tm).to(getattr(torch, dtype))
    tbo = _torch_outputs(tb, ids, mask)
    jb = type(models[name][2]).from_pretrained(folder, dtype=jnp.dtype(dtype))
    assert all(v.dtype == jnp.dtype(dtype) for v in jn.state_dict(jb).values())
    jo = jb(jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy()), output_hidden_states=True)
    for f in ref:
        if f == "hidden_states":
            pairs = list(zip(jo.hidden_states, tbo[f], ref[f], strict=True))
        else:
            pairs = [(getattr(jo, f), tbo[f], ref[f])]
        for j, t, r in pairs:
            assert j.dtype == jnp.dtype(dtype)
            ej, et = _rel(np.asarray(j, np.float32), r), _rel(t, r)
            assert ej <= 2.0 * et + 1e-3, (f, ej, et)


def test_round_trip_into_transformers(models, tmp_path):
    for name in ("text", "sdxl2"):
        tcls, jcls, cfg = CONFIGS[name]
        tm, folder, _ = models[name]
        with open(os.path.join(folder, "config.json")) as f:
            torch_config = json.load(f)
        jm = jcls.from_config(torch_config, rngs=nnx.Rngs(5))  # transformers' init distributions
        jm.eval()
        out = tmp_path / name
        written = jm.save_pretrained(out)
        assert sorted(os.path.basename(p) for p in written) == ["config.json", "model.safetensors"]
        with open(out / "config.json") as f:
            assert json.load(f) == torch_config  # what transformers 5.24 writes
        back = tcls.from_pretrained(str(out)).eval()
        sd = jn.state_dict(jm)
        assert list(back.state_dict()) == list(sd)
        for k, v in back.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), np.asarray(sd[k]))
        ids, mask = _inputs(name)
        _compare(jm(jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy()), output_hidden_states=True),
                 _torch_outputs(back, ids, mask), 1e-5)


def test_checkpoint_formats(models, tmp_path):
    tm, folder, _ = models["text"]
    ids, mask = _inputs("text")
    ref = _torch_outputs(tm, ids, mask)
    jids, jmask = jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy())

    def load(path, **kw):
        return CLIPTextModel.from_pretrained(path, **kw)(jids, jmask, output_hidden_states=True)

    # pytorch_model.bin (torch.save; transformers 5 writes safetensors only, 4.x wrote this)
    (tmp_path / "bin").mkdir()
    torch.save(tm.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    (tmp_path / "bin" / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
    _compare(load(tmp_path / "bin"), ref, 1e-5)
    # shards + index
    tm.save_pretrained(tmp_path / "shards", max_shard_size="20KB")
    assert any(f.endswith(".index.json") for f in os.listdir(tmp_path / "shards"))
    _compare(load(tmp_path / "shards"), ref, 1e-5)
    # fp16 variant, cast up to float32
    half = copy.deepcopy(tm).half()
    half.save_pretrained(tmp_path / "fp16", variant="fp16")
    assert os.listdir(tmp_path / "fp16") and all("fp16" in f for f in os.listdir(tmp_path / "fp16")
                                                  if f.endswith(".safetensors"))
    jo = load(tmp_path / "fp16", variant="fp16")
    assert jo.last_hidden_state.dtype == jnp.float32
    _compare(jo, _torch_outputs(copy.deepcopy(half).float(), ids, mask), 1e-5)
    # transformers 4.x's layout: `text_model.` prefix, the persistent position_ids buffer, a 4.x config
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    sd = {f"text_model.{k}": v.contiguous() for k, v in tm.state_dict().items()}
    sd["text_model.embeddings.position_ids"] = torch.arange(16)[None]
    save_file(sd, str(legacy / "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(CONFIGS["text"][2], _name_or_path="openai/clip-vit-large-patch14", architectures=["CLIPTextModel"],
               model_type="clip_text_model", transformers_version="4.25.0.dev0", torch_dtype="float32",
               dropout=0.0, attention_dropout=0.0, initializer_factor=1.0, initializer_range=0.02)
    (legacy / "config.json").write_text(json.dumps(cfg))
    _compare(load(legacy), ref, 1e-5)
    legacy_torch = _torch_outputs(TorchCLIPTextModel.from_pretrained(str(legacy)).eval(), ids, mask)
    np.testing.assert_array_equal(legacy_torch["pooler_output"], ref["pooler_output"])  # transformers reads it too


def test_train_mode_attention_dropout(tmp_path):
    cfg = dict(CONFIGS["text"][2], attention_dropout=0.5)
    m = CLIPTextModel.from_config(cfg, rngs=nnx.Rngs(0, dropout=1))
    attn = m.encoder.layers[0].self_attn
    assert attn.training  # torch's default at construction
    ids = jnp.asarray(_inputs("text")[0].numpy())
    a, b = m(ids).last_hidden_state, m(ids).last_hidden_state
    assert not np.allclose(a, b)  # the stream advances
    m.eval()
    assert not attn.training
    e1, e2 = m(ids).last_hidden_state, m(ids).last_hidden_state
    np.testing.assert_array_equal(e1, e2)
    assert not np.allclose(a, e1)
    # dropout acts on the attention weights, kept ones scaled by 1/(1-p): the mean over many
    # independent masks (one per batch row) is the eval-mode attention output
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 6, 32)), jnp.float32)
    causal = jnp.tril(jnp.ones((6, 6), bool))[None, None]
    ref = attn(x, causal)
    attn.train()
    xs = jnp.broadcast_to(x, (4000, 6, 32))
    mean = attn(xs, jnp.broadcast_to(causal, (4000, 1, 6, 6))).mean(axis=0, keepdims=True)
    assert _rel(mean, ref) < 0.05
    assert _rel(attn(x, causal), ref) > 0.05
    # from_pretrained gives an eval model whose streams work after .train()
    m.save_pretrained(tmp_path)
    loaded = CLIPTextModel.from_pretrained(tmp_path)
    assert not loaded.encoder.layers[0].self_attn.training
    np.testing.assert_allclose(loaded(ids).last_hidden_state, e1, rtol=1e-6, atol=1e-6)
    loaded.train()
    t1 = loaded(ids).last_hidden_state
    assert np.all(np.isfinite(t1)) and not np.allclose(t1, e1)
    again = CLIPTextModel.from_pretrained(tmp_path)
    again.train()
    np.testing.assert_array_equal(again(ids).last_hidden_state, t1)  # streams start from seed 0
    nnx.reseed(again, default=7)
    assert not np.allclose(again(ids).last_hidden_state, t1)
    # no dropout stream at all: a clear error in training mode
    bare = CLIPTextModel.from_config(cfg, rngs=nnx.Rngs(params=0))
    with pytest.raises(ValueError, match="dropout` stream"):
        bare(ids)
    bare.eval()
    assert bare(ids).last_hidden_state.shape == (4, SEQ, 32)


def test_init_distributions():
    cfg = dict(vocab_size=500, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
               max_position_embeddings=77, projection_dim=48, initializer_factor=1.5)
    torch.manual_seed(0)
    tm = TorchCLIPTextModelWithProjection(CLIPTextConfig(**cfg))
    jm = CLIPTextModelWithProjection.from_config(cfg, rngs=nnx.Rngs(0))
    sd = jn.state_dict(jm)
    for k, v in tm.state_dict().items():
        t, j = v.numpy(), np.asarray(sd[k])
        if k.endswith("bias") or "layer_norm" in k:
            np.testing.assert_array_equal(j, t, err_msg=k)  # zeros / ones
        else:
            assert abs(j.mean()) < 4 * t.std() / np.sqrt(t.size) + 1e-6, k
            assert abs(j.std() / t.std() - 1) < 0.1, (k, j.std(), t.std())


def test_config_defaults_and_bookkeeping():
    full = CLIPTextModel._check_config({})
    tdict = CLIPTextConfig().to_dict()
    for k, v in full.items():
        assert tdict[k] == v, k
    assert set(full) == {"vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
                         "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
                         "attention_dropout", "initializer_range", "initializer_factor", "pad_token_id",
                         "bos_token_id", "eos_token_id"}
    kept = CLIPTextModel._check_config({"torch_dtype": "float16", "dropout": 0.1, "architectures": ["X"],
                                         "return_dict": False, "output_hidden_states": True})
    assert kept["return_dict"] is False and kept["output_hidden_states"] is True and "dropout" not in kept
    # transformers' generic keys (4.x configs, generation defaults) are known: no warning (warnings are
    # errors in this suite); a misspelled option is ignored with a warning naming it, and keeps its
    # default (transformers keeps the key as an unused attribute and uses the default too)
    generic = dict(CONFIGS["text"][2], torch_dtype="float32", dropout=0.0, use_bfloat16=False, max_length=20,
                   tie_word_embeddings=True, id2label={"0": "A"}, transformers_version="4.25.0", dtype="float32")
    assert CLIPTextModel.from_config(generic).config.hidden_size == 32
    with pytest.warns(UserWarning, match=r"CLIPTextModel: the configuration keys \['hiden_act'\] are not options"):
        m = CLIPTextModel.from_config(dict(CONFIGS["text"][2], hiden_act="gelu"))
    assert m.config.hidden_act == "quick_gelu" == TorchCLIPTextModel(
        CLIPTextConfig(**dict(CONFIGS["text"][2], hiden_act="gelu"))).config.hidden_act
    m = CLIPTextModel.from_config(dict(CONFIGS["text"][2], output_hidden_states=True, return_dict=False))
    m.eval()
    out = m(jnp.asarray(_inputs("text")[0].numpy()))
    assert isinstance(out, tuple) and len(out) == 3 and len(out[2]) == 3


@pytest.mark.parametrize("change, exc, match", [
    (dict(hidden_act="relu"), NotImplementedError, "hidden_act='relu' is not supported"),
    (dict(hidden_size=30), ValueError, "multiple of `num_attention_heads`"),
    (dict(eos_token_id=[2, 3]), NotImplementedError, "eos_token_id=\\[2, 3\\]"),
    (dict(attention_dropout=1.5), ValueError, "attention_dropout"),
    (dict(vocab_size=0), ValueError, "vocab_size"),
    (dict(output_attentions=True), NotImplementedError, "output_attentions"),
    (dict(is_causal=False), NotImplementedError, "is_causal=False"),
    (dict(layer_norm_eps="1e-5"), ValueError, "layer_norm_eps"),
    (dict(text_config={"hidden_size": 32}, model_type="clip"), ValueError, "full CLIPConfig"),
    (dict(model_type="siglip_text_model"), ValueError, "model_type"),
])
def test_bad_config(change, exc, match):
    with pytest.raises(exc, match=match):
        CLIPTextModel.from_config(dict(CONFIGS["text"][2], **change))
    if "hidden_size" in change:  # transformers rejects it too
        with pytest.raises(Exception, match="not a multiple"):
            TorchCLIPTextModel(CLIPTextConfig(**dict(CONFIGS["text"][2], **change)))


def test_bad_folders(models, tmp_path):
    _, folder, _ = models["text"]
    _, proj_folder, _ = models["sdxl2"]
    (tmp_path / "config.json").write_text(open(os.path.join(folder, "config.json")).read())
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        CLIPTextModel.from_pretrained(tmp_path)  # no weights
    # a plain CLIPTextModel folder has no projection: strict loading fails and says so (transformers
    # would initialise text_projection randomly)
    with pytest.raises(CheckpointError, match=r"no `text_projection.weight`: it is a CLIPTextModel's"):
        CLIPTextModelWithProjection.from_pretrained(folder)
    assert proj_folder  # loading it as a CLIPTextModel works: test_text_model_from_projection_folder
    with pytest.raises(CheckpointNotFoundError, match="local folders only"):
        CLIPTextModel.from_pretrained("openai/clip-vit-large-patch14")


def test_text_model_from_projection_folder(models):
    """CLIPTextModel.from_pretrained on a CLIPTextModelWithProjection folder (SDXL's text_encoder_2)
    loads the text model, ignoring text_projection.weight with a warning naming it, as transformers
    does (its load report lists the key as unexpected); outputs as transformers' model so loaded."""
    tp, proj_folder, _ = models["sdxl2"]
    with pytest.warns(UserWarning, match=r"\['text_projection.weight'\] \(a CLIPTextModelWithProjection's "
                                         r"projection\) are not used by CLIPTextModel") as rec:
        jm = CLIPTextModel.from_pretrained(proj_folder)
    assert len(rec) == 1 and rec[0].filename == __file__
    assert "text_projection.weight" not in jn.state_dict(jm)
    tm = TorchCLIPTextModel.from_pretrained(proj_folder).eval()
    ids, mask = _inputs("sdxl2")
    ref = _torch_outputs(tm, ids, mask)
    _compare(jm(jnp.asarray(ids.numpy()), jnp.asarray(mask.numpy()), output_hidden_states=True), ref, 1e-5)
    np.testing.assert_array_equal(ref["pooler_output"], _torch_outputs(tp.text_model, ids, mask)["pooler_output"])


def test_bad_inputs(models):
    tm, _, jm = models["text"]
    ids, mask = _inputs("text")
    jids = jnp.asarray(ids.numpy())
    cases = [
        ((torch.randint(0, 100, (2, 17)),), (jnp.zeros((2, 17), jnp.int32),), ValueError, "max_position_embeddings"),
        ((ids.float(),), (jids.astype(jnp.float32),), (TypeError, RuntimeError), "integer"),
        ((ids, torch.ones(4, SEQ + 1, dtype=torch.long)), (jids, jnp.ones((4, SEQ + 1), jnp.int32)),
         (ValueError, RuntimeError), "attention_mask"),
        ((ids, None, torch.arange(SEQ).expand(3, SEQ)), (jids, None, jnp.zeros((3, SEQ), jnp.int32)),
         (ValueError, RuntimeError), "position_ids"),
        ((ids, None, torch.arange(SEQ)[None] + 10), (jids, None, jnp.arange(SEQ)[None] + 10),
         IndexError, "out of range"),
        ((torch.tensor([[100, 1]]),), (jnp.array([[100, 1]]),), IndexError, "out of range"),
        ((torch.zeros(2, 0, dtype=torch.long),), (jnp.zeros((2, 0), jnp.int32),), (ValueError, RuntimeError),
         "non-empty"),
    ]
    for targs, jargs, exc, match in cases:
        with pytest.raises(exc if isinstance(exc, tuple) else (exc,)):
            with torch.no_grad():
                tm(*targs)
        with pytest.raises(exc if not isinstance(exc, tuple) else exc[0], match=match):
            jm(*jargs)
    with pytest.raises(EmbeddingIndexError):
        jm(jnp.array([[-1, 1]]))
    with pytest.raises(TypeError, match="must be an array"):
        jm([[1, 2]])
    with pytest.raises(ValueError, match="specify `input_ids`"):
        jm(None)
    assert isinstance(mask, torch.Tensor)
