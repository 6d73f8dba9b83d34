"""jaxnn.models' base: Config, from_config / from_pretrained / save_pretrained on a toy model (the
real models' folder round trips against diffusers/transformers are in test_models_*.py)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxnn.nnx as jn
from jaxnn._checkpoint import CheckpointError, CheckpointNotFoundError
from jaxnn.models import Config, PretrainedModel


class Toy(PretrainedModel):
    weights_name = "diffusion_pytorch_model.safetensors"
    config_keys = frozenset({"width", "sizes"})

    @classmethod
    def _check_config(cls, config):
        c = dict({"width": 4, "sizes": [1, 2]}, **config)
        if c["width"] > 100:
            raise NotImplementedError(f"Toy: width={c['width']!r} is not supported")
        return c

    def __init__(self, config, *, dtype=None, rngs):
        config = self._init_config(config)
        self.lin = jn.Linear(3, config.width, dtype=dtype, rngs=rngs)
        self.drop = jn.Dropout(0.5, rngs=rngs)  # a dropout stream: not in the state_dict
        self.position_ids = jn.Buffer(jnp.arange(config.width))  # a non-persistent buffer: not in the state_dict

    def __call__(self, x):
        return self.drop(self.lin(x)) + self.position_ids[None]


def test_config_is_a_read_only_hashable_mapping():
    c = Config({"a": [1, [2, 3]], "b": {"c": [4]}})
    assert c.a == (1, (2, 3)) and c["b"].c == (4,)
    assert c == {"a": (1, (2, 3)), "b": {"c": (4,)}}
    assert hash(c) == hash(Config(c.to_dict()))
    assert c.to_dict() == {"a": [1, [2, 3]], "b": {"c": [4]}}
    with pytest.raises(AttributeError, match="read-only"):
        c.a = 1  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(AttributeError, match="no option 'zz'"):
        _ = c.zz
    with pytest.raises(TypeError, match="keys must be strings"):
        Config({1: 2})


def test_config_and_model_copy_and_pickle():
    """copy.deepcopy(model) (an EMA copy) and pickling rebuild the read-only Config."""
    import copy
    import pickle

    c = Config({"a": [1, [2, 3]], "b": {"c": [4]}})
    for f in (copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))):
        d = f(c)
        assert isinstance(d, Config) and d == c and hash(d) == hash(c) and d.b.c == (4,)
    m = Toy.from_config({"width": 5})
    m2 = copy.deepcopy(m)
    assert m2.config == m.config and m2.lin.weight is not m.lin.weight
    np.testing.assert_array_equal(np.asarray(m2.lin.weight[...]), np.asarray(m.lin.weight[...]))


def test_from_config_fills_defaults_drops_private_keys_and_checks():
    m = Toy.from_config({"width": 5, "_class_name": "Toy", "_diffusers_version": "0"})
    assert dict(m.config) == {"width": 5, "sizes": (1, 2)}
    with pytest.raises(NotImplementedError, match="width=101"):
        Toy.from_config({"width": 101})
    with pytest.raises(TypeError, match="must be a mapping"):
        Toy([("width", 3)], rngs=nnx.Rngs(0))  # pyright: ignore[reportArgumentType]


def test_unknown_keys_are_warned_about_and_ignored(tmp_path):
    """diffusers' rule, for every model: a key that is not an option (a misspelling) is ignored with a
    warning naming it; private keys are ignored silently; from_pretrained warns once."""
    with pytest.warns(UserWarning, match=r"Toy: the configuration keys \['widht'\] are not options") as rec:
        m = Toy.from_config({"widht": 7, "sizes": [3], "_class_name": "Toy"})
    assert len(rec) == 1 and rec[0].filename == __file__  # points at the caller
    assert dict(m.config) == {"width": 4, "sizes": (3,)}  # the default width, as diffusers does
    Toy.from_config({"width": 3}).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, extra_a=1, extra_b=None, sizes=[1])))
    with pytest.warns(UserWarning, match=r"\['extra_a', 'extra_b'\]") as rec:
        loaded = Toy.from_pretrained(tmp_path)
    assert len(rec) == 1 and rec[0].filename == __file__
    assert loaded.config == {"width": 3, "sizes": (1,)}
    with pytest.warns(UserWarning, match=r"\[3\]"):  # a non-string key is not an option either
        Toy.from_config({3: 1})


def test_save_and_load_round_trip(tmp_path):
    m = Toy.from_config({"width": 5}, rngs=nnx.Rngs(3))
    written = m.save_pretrained(tmp_path / "toy")
    assert sorted(os.path.basename(p) for p in written) == ["config.json", "diffusion_pytorch_model.safetensors"]
    cfg = json.loads((tmp_path / "toy" / "config.json").read_text())
    assert cfg == {"_class_name": "Toy", "_diffusers_version": "0.42.1", "width": 5, "sizes": [1, 2]}
    # from_config accepts the folder or the file
    assert Toy.from_config(tmp_path / "toy").config == m.config
    assert Toy.from_config(str(tmp_path / "toy" / "config.json")).config == m.config
    loaded = Toy.from_pretrained(tmp_path, subfolder="toy")
    np.testing.assert_array_equal(loaded.lin.weight[...], m.lin.weight[...])
    assert loaded.lin.weight[...].dtype == jnp.float32
    x = jnp.ones((2, 3))
    # eval mode: dropout off, so the output is the Linear's, deterministic, and jits
    np.testing.assert_array_equal(nnx.jit(lambda mod, x: mod(x))(loaded, x), loaded.lin(x) + jnp.arange(5)[None])
    half = Toy.from_pretrained(tmp_path / "toy", dtype=jnp.bfloat16)
    assert half.lin.weight[...].dtype == jnp.bfloat16
    np.testing.assert_array_equal(half.lin.weight[...], m.lin.weight[...].astype(jnp.bfloat16))
    # a variant and shards
    m.save_pretrained(tmp_path / "v", variant="fp16", max_shard_size=40)
    names = sorted(os.listdir(tmp_path / "v"))
    assert "diffusion_pytorch_model.safetensors.index.fp16.json" in names, names
    np.testing.assert_array_equal(Toy.from_pretrained(tmp_path / "v", variant="fp16").lin.bias[...], m.lin.bias[...])


def test_errors(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="reads local folders only"):
        Toy.from_pretrained("runwayml/stable-diffusion-v1-5", subfolder="unet")
    with pytest.raises(CheckpointNotFoundError, match=r"subfolder='unet'"):
        Toy.from_pretrained(tmp_path, subfolder="unet")
    with pytest.raises(CheckpointNotFoundError, match="config.json' does not exist"):
        Toy.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        Toy.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"width": 5}))
    with pytest.raises(CheckpointError, match="holds no checkpoint"):  # no weights
        Toy.from_pretrained(tmp_path)
    Toy.from_config({"width": 6}).save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text(json.dumps({"width": 5}))
    with pytest.raises(CheckpointError, match="shape"):  # weights of another configuration
        Toy.from_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match=r"`dtype` \(=int32\) must be None \(float32\), float32, bfloat16 or float16"):
        Toy.from_pretrained(tmp_path / "other", dtype=jnp.int32)
    with pytest.raises(ValueError, match="is a file"):
        Toy.from_config({}).save_pretrained(tmp_path / "config.json")
    with pytest.raises(TypeError, match="folder path"):
        Toy.from_pretrained(3)  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize("dtype,name", [(jnp.float8_e4m3fn, "float8_e4m3fn"), ("float8_e5m2", "float8_e5m2"),
                                        (jnp.float64, "float64")])
def test_dtypes_outside_float32_bfloat16_float16_are_errors(tmp_path, dtype, name):
    """float8 stores weights but cannot be computed in (torch's float8 models raise "not implemented
    for 'Float8_e4m3fn'" in their first conv), float64 is not supported: a ValueError naming the
    dtype, from every model's constructor (at construction, before any parameter exists) and from
    from_pretrained."""
    from jaxnn.models import AutoencoderKL, CLIPTextModel, CLIPTextModelWithProjection, UNet2DConditionModel

    match = rf"`dtype` \(={name}\) must be None \(float32\), float32, bfloat16 or float16"
    if name.startswith("float8"):
        match += ".*enable_layerwise_casting"
    clip = dict(vocab_size=10, hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=4, projection_dim=4)
    for cls, cfg in ((AutoencoderKL, {"block_out_channels": [4], "norm_num_groups": 2}),
                     (UNet2DConditionModel, {}), (CLIPTextModel, clip), (CLIPTextModelWithProjection, clip)):
        with pytest.raises(ValueError, match=f"{cls.__name__}: {match}"):
            nnx.eval_shape(lambda cls=cls, cfg=cfg: cls(cfg, dtype=dtype, rngs=nnx.Rngs(0)))
    Toy.from_config({}).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=f"Toy.from_pretrained: {match}"):
        Toy.from_pretrained(tmp_path, dtype=dtype)
    with pytest.raises(TypeError, match="is not a dtype"):
        AutoencoderKL({}, dtype="float9", rngs=nnx.Rngs(0))
    if name == "float8_e4m3fn":  # torch cannot run such a model either
        import torch
        from diffusers import AutoencoderKL as TorchAutoencoderKL

        tm = TorchAutoencoderKL(block_out_channels=[4], norm_num_groups=2).to(torch.float8_e4m3fn)
        with pytest.raises(NotImplementedError, match="not implemented for 'Float8_e4m3fn'"):
            tm.decode(torch.zeros(1, 4, 2, 2, dtype=torch.float8_e4m3fn))


def test_variables_outside_the_state_dict_get_the_constructors_values(tmp_path):
    Toy.from_config({"width": 3}).save_pretrained(tmp_path)
    m = Toy.from_pretrained(tmp_path)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(nnx.state(m)))
    np.testing.assert_array_equal(m.position_ids[...], np.arange(3))
    np.testing.assert_array_equal(jax.random.key_data(m.drop.rngs.key[...]),
                                  jax.random.key_data(jax.random.fold_in(jax.random.key(0), 0)))
    assert int(m.drop.rngs.count[...]) == 0
    # jit works on the loaded model (no abstract leaves left), in eval and in training mode
    x = jnp.ones((2, 3))
    np.testing.assert_array_equal(nnx.jit(lambda mod, x: mod(x))(m, x), m.lin(x) + jnp.arange(3)[None])
    m.train()
    y = nnx.jit(lambda mod, x: mod(x))(m, x)
    assert bool(jnp.any(y == jnp.arange(3)[None]))  # some dropped


def test_from_pretrained_dtype_errors_state_the_models_rule(tmp_path):
    """An integer or boolean dtype gets the models' rule (float32, bfloat16, float16), not the
    checkpoint reader's (which offers float8, that the models reject)."""
    Toy.from_config({}).save_pretrained(tmp_path)
    for dtype, name in ((jnp.int32, "int32"), (bool, "bool")):
        with pytest.raises(ValueError, match=rf"Toy.from_pretrained: `dtype` \(={name}\) must be None \(float32\)"):
            Toy.from_pretrained(tmp_path, dtype=dtype)


def test_from_pretrained_sharding_mapping_with_unknown_keys_is_an_error(tmp_path):
    """A misspelt key in a `sharding` mapping would leave that weight on one device silently."""
    Toy.from_config({}).save_pretrained(tmp_path)
    one = jax.sharding.SingleDeviceSharding(jax.devices()[-1])
    with pytest.raises(ValueError, match=r"Toy.from_pretrained: `sharding` maps \['lin.weigth'\] \(1 key\(s\)\)"):
        Toy.from_pretrained(tmp_path, sharding={"lin.weigth": one})
    m = Toy.from_pretrained(tmp_path, sharding={"lin.weight": one})  # keys it lacks: the default device
    assert m.lin.weight[...].sharding == one
    assert m.lin.bias[...].devices() == {jax.devices()[0]}
