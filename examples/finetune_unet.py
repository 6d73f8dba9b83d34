"""Fine-tune a Stable Diffusion UNet (jaxnn.models.UNet2DConditionModel) as diffusers'
train_text_to_image.py does, with torch's numbers, on one device or FSDP-sharded over many.

One training step, jitted once with the parameters, the optimizer state and the EMA weights donated:

    t ~ U{0, ..., num_train_timesteps - 1},  noise ~ N(0, I)
    x_t    = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise          (DDPMScheduler.add_noise)
    target = noise                      (prediction_type "epsilon")
           = sqrt(abar_t) noise - sqrt(1 - abar_t) x_0      ("v_prediction": get_velocity)
    loss   = mean((unet(x_t, t, encoder_hidden_states) - target)^2)    (F.mse_loss, float32)
    g      = clip_grad_norm(grad loss, max_grad_norm)                (torch.nn.utils.clip_grad_norm_)
    params = AdamW(params, g)                                        (torch.optim.AdamW)
    ema    = ema - (1 - decay_k) (ema - params)                      (diffusers' EMAModel.step)

with diffusers' EMA decay at optimisation step k: ``s = max(0, k - update_after_step - 1)``,
``decay_k = 0`` when ``s == 0``, else ``min(decay, (1 + s) / (10 + s))`` (or, with
``--ema-warmup``, ``min(decay, 1 - (1 + s / inv_gamma) ** -power)``), then ``max(., min_decay)``.

The text conditioning is precomputed ``encoder_hidden_states`` (a CLIP text encoder's output, as
the latents are the VAE's): ``--data file.npz`` with arrays ``latents`` (N, C, H, W) and
``encoder_hidden_states`` (N, L, D); without it a seeded random data set of that form is used.
The noise scheduler is ``PATH/scheduler`` when ``--model`` is a pipeline folder (diffusers'
``DDPMScheduler.from_pretrained(model, subfolder="scheduler")``), else ``DDPMScheduler()``.

The result is written as diffusers writes it: ``OUT/unet`` (the trained weights) and
``OUT/unet_ema`` (the EMA weights, with EMAModel's state in its config.json, so that both
``diffusers.UNet2DConditionModel.from_pretrained(OUT/unet_ema)`` and
``diffusers.training_utils.EMAModel.from_pretrained(OUT/unet_ema, UNet2DConditionModel)`` load it).

``--devices N`` trains on a mesh of N devices with one axis "data": the batch is split over it, and
so is every weight of at least ``--fsdp-min-size`` elements (with its AdamW moments and EMA copy),
along its largest axis divisible by N (FSDP / ZeRO-3 style); the weights are read from the files
straight into that sharding (``from_pretrained(sharding=...)``). On CPU the devices are simulated
(XLA_FLAGS=--xla_force_host_platform_device_count=N, set by this script before JAX starts).

    python examples/finetune_unet.py --model sd-v1-5/ --steps 1000 --batch-size 8 --lr 1e-5 --out out/ft
    python examples/finetune_unet.py --model tiny-unet/ --devices 8 --steps 10 --out out/ft8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


def _set_device_count(n: int) -> None:
    # Must happen before JAX initialises its CPU backend.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


if __name__ == "__main__":
    _n = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--devices=")), None)
    if _n is None and "--devices" in sys.argv:
        _n = int(sys.argv[sys.argv.index("--devices") + 1])
    if _n and _n > 1:
        _set_device_count(_n)


import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxnn.nnx as jn  # noqa: E402
from jaxnn import optim  # noqa: E402
from jaxnn.models import DDPMScheduler, UNet2DConditionModel  # noqa: E402

PREDICTION_TYPES = ("epsilon", "v_prediction")


# --- EMA of the weights: diffusers' EMAModel -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EMAConfig:
    """diffusers' ``EMAModel`` options (``diffusers.training_utils.EMAModel``), same names and
    defaults. The decay is computed on the host in Python floats, as diffusers does, and passed to
    the jitted step as ``1 - decay`` rounded once to float32 (torch's scalar argument)."""

    decay: float = 0.9999
    min_decay: float = 0.0
    update_after_step: int = 0
    use_ema_warmup: bool = False
    inv_gamma: float = 1.0
    power: float = 2 / 3

    def __post_init__(self) -> None:
        for name in ("decay", "min_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"EMAConfig: `{name}` (={v!r}) must be a number in [0, 1].")
        if isinstance(self.update_after_step, bool) or not isinstance(self.update_after_step, int) \
                or self.update_after_step < 0:
            raise ValueError(f"EMAConfig: `update_after_step` (={self.update_after_step!r}) must be an int >= 0.")
        for name in ("inv_gamma", "power"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"EMAConfig: `{name}` (={v!r}) must be a number > 0.")

    def get_decay(self, optimization_step: int) -> float:
        """The decay used at the ``optimization_step``-th update (1 at the first), as
        ``EMAModel.get_decay``: 0 (copy the weights) until ``update_after_step + 1`` updates."""
        step = max(0, optimization_step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        if self.use_ema_warmup:
            value = 1 - (1 + step / self.inv_gamma) ** -self.power
        else:
            value = (1 + step) / (10 + step)
        return max(min(value, self.decay), self.min_decay)

    def saved_config(self, optimization_step: int) -> dict[str, Any]:
        """The keys ``EMAModel.save_pretrained`` adds to the model's config.json."""
        return dict(dataclasses.asdict(self), optimization_step=optimization_step)


# --- FSDP sharding ---------------------------------------------------------------------------------


def fsdp_spec(shape: tuple[int, ...], devices: int, min_size: int = 1024) -> P:
    """Split a weight over the "data" axis along its largest axis whose size ``devices`` divides
    (the first such axis on ties); weights under ``min_size`` elements, or with no such axis, are
    replicated (``P()``)."""
    if devices <= 1 or math.prod(shape) < min_size:
        return P()
    axes = [i for i, n in enumerate(shape) if n % devices == 0]
    if not axes:
        return P()
    best = max(axes, key=lambda i: (shape[i], -i))
    return P(*([None] * best + ["data"]))


def make_mesh(devices: int) -> Mesh:
    """A 1-D mesh ("data",) over the first ``devices`` devices (automatic sharding propagation)."""
    available = len(jax.devices())
    if devices > available:
        raise ValueError(f"`devices` (={devices}) exceeds the {available} visible device(s): on CPU run this file "
                         "as a script (it sets XLA_FLAGS=--xla_force_host_platform_device_count before JAX "
                         "starts) or set that flag yourself.")
    return jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                         devices=jax.devices()[:devices])


def load_unet(path: str, subfolder: str | None = None, mesh: Mesh | None = None,
              min_size: int = 1024) -> UNet2DConditionModel:
    """``UNet2DConditionModel.from_pretrained``; with a mesh every weight is read straight into its
    FSDP sharding (:func:`fsdp_spec`)."""
    if mesh is None:
        return UNet2DConditionModel.from_pretrained(path, subfolder=subfolder)
    folder = os.path.join(path, subfolder) if subfolder else path
    with warnings.catch_warnings():  # unknown config keys: from_pretrained below warns about them once
        warnings.simplefilter("ignore", UserWarning)
        abstract = nnx.eval_shape(lambda: UNet2DConditionModel.from_config(folder))
    n = mesh.shape["data"]
    shardings = {k: NamedSharding(mesh, fsdp_spec(tuple(v.shape), n, min_size))
                 for k, v in jn.state_dict(abstract).items()}
    return UNet2DConditionModel.from_pretrained(path, subfolder=subfolder, sharding=shardings)


def load_noise_scheduler(path: str, subfolder: str | None, prediction_type: str | None) -> DDPMScheduler:
    """The training noise: ``PATH/scheduler`` of a pipeline folder, else diffusers' default DDPM."""
    overrides = {} if prediction_type is None else {"prediction_type": prediction_type}
    if subfolder and os.path.isfile(os.path.join(path, "scheduler", DDPMScheduler.config_name)):
        scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler", **overrides)
    else:
        scheduler = DDPMScheduler(**overrides)
    if scheduler.config.prediction_type not in PREDICTION_TYPES:
        raise NotImplementedError(f"prediction_type={scheduler.config.prediction_type!r} is not supported by this "
                                  f"example (supported: {', '.join(map(repr, PREDICTION_TYPES))}).")
    return scheduler


# --- data -------------------------------------------------------------------------------------------


def conditioning_dim(config: Mapping[str, Any]) -> int:
    """The width of the ``encoder_hidden_states`` the UNet takes; text-only conditioning is checked."""
    for option in ("addition_embed_type", "class_embed_type", "num_class_embeds", "time_cond_proj_dim"):
        if config.get(option) is not None:
            raise NotImplementedError(f"{option}={config[option]!r}: this example conditions on text only "
                                      "(SDXL's added_cond_kwargs, class labels and timestep_cond are not fed).")
    if config.get("encoder_hid_dim") is not None:
        return int(config["encoder_hid_dim"])
    dim = config["cross_attention_dim"]
    dims = set(dim) if isinstance(dim, (tuple, list)) else {dim}
    if len(dims) != 1:
        raise NotImplementedError(f"cross_attention_dim={dim!r}: one encoder_hidden_states width is fed to every "
                                  "block, so the per-block widths must be equal.")
    return int(dims.pop())


def synthetic_dataset(config: Mapping[str, Any], num_examples: int, seq_len: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded random latents (N, in_channels, sample_size, sample_size) and text states (N, L, D)."""
    r = np.random.default_rng(seed)
    size = config["sample_size"]
    if size is None:  # diffusers' default: the config does not say which latent size the UNet is for
        raise ValueError("the UNet's config has `sample_size` (=None): the random data set needs a latent size; "
                         "pass --data with latents, or set sample_size in the UNet's config.json.")
    h, w = (size, size) if isinstance(size, int) else size
    return {"latents": r.standard_normal((num_examples, config["in_channels"], h, w)).astype(np.float32),
            "encoder_hidden_states": r.standard_normal((num_examples, seq_len, conditioning_dim(config)))
            .astype(np.float32)}


def load_dataset(path: str, config: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``latents`` (N, C, H, W) and ``encoder_hidden_states`` (N, L, D) from an ``.npz`` file."""
    with np.load(path) as f:
        missing = {"latents", "encoder_hidden_states"} - set(f.files)
        if missing:
            raise ValueError(f"`data` (={path!r}) lacks the arrays {sorted(missing)} (it has {sorted(f.files)}).")
        data = {k: np.asarray(f[k], np.float32) for k in ("latents", "encoder_hidden_states")}
    lat, ehs = data["latents"], data["encoder_hidden_states"]
    if lat.ndim != 4 or lat.shape[1] != config["in_channels"]:
        raise ValueError(f"`data`: latents of shape {lat.shape} do not fit the UNet: expected "
                         f"(N, {config['in_channels']}, H, W).")
    if ehs.ndim != 3 or ehs.shape[0] != lat.shape[0] or ehs.shape[2] != conditioning_dim(config):
        raise ValueError(f"`data`: encoder_hidden_states of shape {ehs.shape} do not fit: expected "
                         f"({lat.shape[0]}, L, {conditioning_dim(config)}).")
    return data


def batches(data: Mapping[str, np.ndarray], steps: int, batch_size: int, num_train_timesteps: int,
            seed: int) -> Iterator[dict[str, np.ndarray]]:
    """``steps`` batches: examples drawn without replacement (reshuffled per epoch), standard
    normal noise and uniform integer timesteps, from one seeded NumPy generator, so the same
    batches can be fed to torch."""
    n = len(data["latents"])
    if not 1 <= batch_size <= n:
        raise ValueError(f"`batch_size` (={batch_size}) must be in [1, number of examples={n}].")
    r = np.random.default_rng(seed)
    order, pos = r.permutation(n), 0
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = r.permutation(n), 0
        idx = np.sort(order[pos:pos + batch_size])
        pos += batch_size
        latents = data["latents"][idx]
        yield {"latents": latents, "encoder_hidden_states": data["encoder_hidden_states"][idx],
               "noise": r.standard_normal(latents.shape).astype(np.float32),
               "timesteps": r.integers(0, num_train_timesteps, batch_size).astype(np.int32)}


# --- the train step ---------------------------------------------------------------------------------


def make_optimizer(lr: float, weight_decay: float, max_grad_norm: float | None) -> optax.GradientTransformation:
    """torch.nn.utils.clip_grad_norm_ (when ``max_grad_norm`` is not None) then torch.optim.AdamW."""
    adamw = optim.adamw(lr, weight_decay=weight_decay)
    return adamw if max_grad_norm is None else optax.chain(optim.clip_grad_norm(max_grad_norm), adamw)


def make_train_step(graphdef: Any, tx: optax.GradientTransformation, scheduler: DDPMScheduler,
                    out_shardings: Any = None, gathered: Any = None):
    """``step(params, opt_state, ema, rest, batch, one_minus_decay) -> (params, opt_state, ema,
    rest, loss)``, jitted with ``params``, ``opt_state`` and ``ema`` donated (updated in place);
    ``rest`` (the model's other state: its dropout RNG streams) comes back advanced, so that a
    UNet with ``dropout > 0`` draws new masks at every step, as torch's training mode does.

    FSDP (``out_shardings`` = the shardings of params, optimizer state, EMA, rest and loss; ``gathered``
    = a replicated sharding): the forward and backward use the weights all-gathered to
    ``gathered`` (each device computes its part of the batch with whole weights) and the gradients
    are reduce-scattered back to the parameters' sharding, where AdamW and the EMA update their
    slices."""
    prediction_type = scheduler.config.prediction_type

    def loss_fn(model, batch):
        x0, noise, t = batch["latents"], batch["noise"], batch["timesteps"]
        noisy = scheduler.add_noise(x0, noise, t)
        pred = model(noisy, t, batch["encoder_hidden_states"]).sample
        target = noise if prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
        return jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)))

    def step(params, opt_state, ema, rest, batch, one_minus_decay):
        whole = params if gathered is None else \
            jax.lax.with_sharding_constraint(params, jax.tree.map(lambda _: gathered, params))
        model = nnx.merge(graphdef, whole, rest)
        # nnx.value_and_grad (gradients of the nnx.Param variables) carries the dropout streams'
        # advanced counts back to `model`
        loss, grads = nnx.value_and_grad(loss_fn)(model, batch)
        rest = nnx.split(model, nnx.Param, ...)[2]
        if gathered is not None:
            grads = jax.lax.with_sharding_constraint(grads, out_shardings[0])
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda s, p: s - one_minus_decay.astype(s.dtype) * (s - p), ema, params)
        return params, opt_state, ema, rest, loss

    return jax.jit(step, donate_argnums=(0, 1, 2), out_shardings=out_shardings)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the per-step losses and clipped-before total gradient norms
    (torch's ``clip_grad_norm_`` return values; None without clipping), the trained and EMA
    parameters (nnx.Param states) and what rebuilds the model (``graphdef``, ``rest``)."""

    losses: list[float]
    grad_norms: list[float] | None
    params: Any
    ema: Any
    graphdef: Any
    rest: Any
    opt_state: Any
    ema_config: EMAConfig
    optimization_step: int
    seconds_per_step: float

    def model(self, ema: bool = False) -> UNet2DConditionModel:
        """The trained (or EMA) UNet as a jaxnn model, in eval mode (as from_pretrained gives it)."""
        model = nnx.merge(self.graphdef, self.ema if ema else self.params, self.rest)
        model.eval()
        return model


def train(model: UNet2DConditionModel, scheduler: DDPMScheduler, data: Iterable[Mapping[str, np.ndarray]], *,
          lr: float = 1e-4, weight_decay: float = 1e-2, max_grad_norm: float | None = 1.0,
          ema: EMAConfig | None = None, mesh: Mesh | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (dicts of ``latents``, ``encoder_hidden_states``, ``noise``,
    ``timesteps``, as :func:`batches` gives). With ``mesh`` the batch is split over "data" and the
    parameters keep the sharding they were loaded with (:func:`load_unet`); the optimizer moments
    and EMA copies follow their parameters' sharding. ``model`` is put in training mode (dropout on,
    as diffusers' ``unet.train()``) and its weights are donated to the first step: use
    ``result.model()`` afterwards, not ``model``."""
    ema = EMAConfig() if ema is None else ema
    tx = make_optimizer(lr, weight_decay, max_grad_norm)
    model.train()  # from_pretrained gives eval mode
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    out_shardings = batch_sharding = replicated = None
    if mesh is not None:
        replicated = NamedSharding(mesh, P())
        p_shard = jax.tree.map(lambda v: v.sharding, params)
        rest = jax.device_put(rest, replicated)
        o_shard = optax.tree_map_params(tx, lambda _, s: s, jax.eval_shape(tx.init, params), p_shard,
                                        transform_non_params=lambda _: replicated)
        opt_state = jax.jit(tx.init, out_shardings=o_shard)(params)
        ema_params = jax.jit(lambda p: jax.tree.map(jnp.copy, p), out_shardings=p_shard)(params)
        out_shardings = (p_shard, o_shard, p_shard, jax.tree.map(lambda _: replicated, rest), replicated)
        batch_sharding = NamedSharding(mesh, P("data"))
    else:
        opt_state = jax.jit(tx.init)(params)
        ema_params = jax.jit(lambda p: jax.tree.map(jnp.copy, p))(params)
    step = make_train_step(graphdef, tx, scheduler, out_shardings, replicated)
    losses, norms, k, start, timed = [], [], 0, time.perf_counter(), 0
    for batch in data:
        arrays = {name: jnp.asarray(batch[name]) if batch_sharding is None else
                  jax.device_put(np.asarray(batch[name]), batch_sharding)
                  for name in ("latents", "encoder_hidden_states", "noise", "timesteps")}
        k += 1
        one_minus_decay = jnp.float32(1 - ema.get_decay(k))
        params, opt_state, ema_params, rest, loss = step(params, opt_state, ema_params, rest, arrays,
                                                         one_minus_decay)
        losses.append(float(loss))
        if max_grad_norm is not None:
            norms.append(float(optim.total_grad_norm(opt_state)))
        if k == 1:  # the first step includes compilation
            start, timed = time.perf_counter(), 0
        else:
            timed += 1
    seconds = (time.perf_counter() - start) / timed if timed else float("nan")
    return TrainResult(losses, norms if max_grad_norm is not None else None, params, ema_params, graphdef, rest,
                       opt_state, ema, k, seconds)


def save(result: TrainResult, out: str) -> tuple[str, str]:
    """Write ``out/unet`` and ``out/unet_ema`` (diffusers' folders; the EMA one with EMAModel's
    state in its config.json, as ``EMAModel.save_pretrained`` writes it)."""
    unet_dir, ema_dir = os.path.join(out, "unet"), os.path.join(out, "unet_ema")
    result.model().save_pretrained(unet_dir)
    result.model(ema=True).save_pretrained(ema_dir)
    config_path = os.path.join(ema_dir, UNet2DConditionModel.config_name)
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config.update(result.ema_config.saved_config(result.optimization_step))
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    return unet_dir, ema_dir


def _positive_int(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"`{name}` (={value}) must be >= 1.")
    return value


def main(argv: list[str] | None = None) -> TrainResult:
    # no abbreviations: `--devices` is read from sys.argv before JAX starts, and `--dev 8` would not be
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--model", required=True, help="a diffusers UNet folder, or a pipeline folder (uses unet/)")
    parser.add_argument("--subfolder", default=None, help="the UNet's subfolder (default: 'unet' if it exists)")
    parser.add_argument("--data", default=None, help=".npz with latents (N,C,H,W), encoder_hidden_states (N,L,D)")
    parser.add_argument("--num-examples", type=int, default=64, help="size of the random data set without --data")
    parser.add_argument("--seq-len", type=int, default=77, help="text length of the random data set")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW's decoupled decay (torch: 1e-2)")
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="clip_grad_norm_; <= 0: no clipping")
    parser.add_argument("--prediction-type", choices=PREDICTION_TYPES, default=None,
                        help="override the scheduler's prediction_type")
    parser.add_argument("--ema-decay", type=float, default=0.9999)
    parser.add_argument("--ema-min-decay", type=float, default=0.0)
    parser.add_argument("--ema-update-after-step", type=int, default=0)
    parser.add_argument("--ema-warmup", action="store_true", help="EMAModel's use_ema_warmup")
    parser.add_argument("--ema-inv-gamma", type=float, default=1.0)
    parser.add_argument("--ema-power", type=float, default=2 / 3)
    parser.add_argument("--devices", type=int, default=1, help="> 1: FSDP over a ('data',) mesh of that many")
    parser.add_argument("--fsdp-min-size", type=int, default=1024, help="smaller weights are replicated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write OUT/unet and OUT/unet_ema")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "devices", "num_examples", "seq_len"):
        _positive_int(name.replace("_", "-"), getattr(args, name))

    subfolder = args.subfolder
    if subfolder is None and os.path.isdir(os.path.join(args.model, "unet")):
        subfolder = "unet"
    mesh = make_mesh(args.devices) if args.devices > 1 else None
    if mesh is not None and args.batch_size % args.devices:
        raise ValueError(f"`batch-size` (={args.batch_size}) must be divisible by `devices` (={args.devices}).")
    scheduler = load_noise_scheduler(args.model, subfolder, args.prediction_type)
    model = load_unet(args.model, subfolder, mesh, args.fsdp_min_size)
    config = model.config
    data = (load_dataset(args.data, config) if args.data else
            synthetic_dataset(config, args.num_examples, args.seq_len, args.seed))
    ema = EMAConfig(decay=args.ema_decay, min_decay=args.ema_min_decay, update_after_step=args.ema_update_after_step,
                    use_ema_warmup=args.ema_warmup, inv_gamma=args.ema_inv_gamma, power=args.ema_power)
    result = train(model, scheduler, batches(data, args.steps, args.batch_size, len(scheduler), args.seed + 1),
                   lr=args.lr, weight_decay=args.weight_decay,
                   max_grad_norm=args.max_grad_norm if args.max_grad_norm > 0 else None, ema=ema, mesh=mesh)
    where = f"{args.devices} devices (FSDP)" if mesh is not None else "1 device"
    print(f"{args.steps} steps on {where}, prediction_type={scheduler.config.prediction_type}: "
          f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}, {result.seconds_per_step * 1e3:.1f} ms/step "
          "after the first")
    if args.out:
        unet_dir, ema_dir = save(result, args.out)
        print(f"wrote {unet_dir} and {ema_dir} (diffusers' UNet2DConditionModel.from_pretrained loads both)")
    return result


if __name__ == "__main__":
    main()
