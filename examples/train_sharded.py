"""Data- and model-parallel training of a jaxnn model with jax.sharding, on simulated CPU devices.

The batch is split over the mesh axis 'data'; conv output channels and linear out-features (and
their optimizer state) are split over 'model'. The result equals the single-device step. The
same code runs unchanged on GPUs/TPUs, and across processes (see `--processes` and the README).

    python examples/train_sharded.py --devices 8 --steps 10
"""

from __future__ import annotations

import argparse
import os
import sys


def _set_device_count(n: int) -> None:
    # Must happen before JAX initialises its CPU backend.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


if __name__ == "__main__":
    _n = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--devices=")), None)
    if _n is None and "--devices" in sys.argv:
        _n = int(sys.argv[sys.argv.index("--devices") + 1])
    _set_device_count(_n or 8)


import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxnn.nnx as jn  # noqa: E402
from jaxnn import optim  # noqa: E402


class Net(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = jn.Conv2d(3, 16, 3, padding=1, rngs=rngs)
        self.norm1 = jn.GroupNorm(4, 16)
        self.conv2 = jn.Conv2d(16, 16, 3, padding=1, padding_mode="reflect", rngs=rngs)
        self.norm2 = jn.LayerNorm(16)
        self.act = jn.SiLU()
        self.head = jn.Linear(16, 10, rngs=rngs)

    def __call__(self, x):
        x = self.act(self.norm1(self.conv1(x)))
        x = self.act(self.conv2(x)).mean(axis=(2, 3))
        return self.head(self.norm2(x))


def make_mesh(data: int, model: int = 1, devices=None):
    """A ('data', 'model') mesh with automatic (GSPMD) sharding propagation."""
    auto = (jax.sharding.AxisType.Auto,) * 2
    devices = devices if devices is not None else jax.devices()[: data * model]
    return jax.make_mesh((data, model), ("data", "model"), axis_types=auto, devices=devices)


def batches(steps: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield rng.standard_normal((batch, 3, 8, 8)).astype(np.float32), rng.integers(0, 10, batch).astype(np.int32)


def param_spec(path: tuple, value: jax.Array, model_axis: int) -> P:
    """Split conv/linear output channels (dim 0 of torch's layouts) over 'model' when they divide."""
    keys = [getattr(k, "key", None) for k in path]  # DictKeys; nnx adds a trailing .value attribute
    name = next((k for k in reversed(keys) if isinstance(k, str)), "")
    if model_axis > 1 and name in ("weight", "bias") and value.ndim >= 1 and value.shape[0] % model_axis == 0:
        return P("model")
    return P()


def make_train_step(graphdef, tx, out_shardings=None):
    """The jitted step; params and optimizer state are donated (updated in place)."""

    def step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(x), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1), out_shardings=out_shardings)


def train(steps: int, batch: int, mesh=None, local_batches=None):
    """Train from a fixed init; with ``mesh`` the batch/params are sharded, else one device.

    ``local_batches`` (multi-process): this process's slice of each global batch.
    """
    model = Net(rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    tx = optim.adamw(1e-2, weight_decay=0.01)
    data_sharding = out_shardings = None
    init = jax.jit(tx.init)
    if mesh is not None:
        model_axis = mesh.shape.get("model", 1)
        replicated = NamedSharding(mesh, P())
        p_shard = jax.tree_util.tree_map_with_path(
            lambda p, v: NamedSharding(mesh, param_spec(p, v, model_axis)), params
        )
        params = jax.device_put(params, p_shard)
        # The optimizer state's moments follow their parameters' sharding; counts are replicated.
        o_shard = optax.tree_map_params(
            tx, lambda _, s: s, jax.eval_shape(tx.init, params), p_shard,
            transform_non_params=lambda _: replicated,
        )
        init = jax.jit(tx.init, out_shardings=o_shard)
        out_shardings = (p_shard, o_shard, replicated)
        data_sharding = NamedSharding(mesh, P("data"))
    opt_state = init(params)
    train_step = make_train_step(graphdef, tx, out_shardings)
    losses = []
    source = local_batches if local_batches is not None else batches(steps, batch)
    for x, y in source:
        if local_batches is not None:
            x = jax.make_array_from_process_local_data(data_sharding, x)
            y = jax.make_array_from_process_local_data(data_sharding, y)
        elif data_sharding is not None:
            x, y = jax.device_put(x, data_sharding), jax.device_put(y, data_sharding)
        params, opt_state, loss = train_step(params, opt_state, x, y)
        losses.append(float(loss))
    return losses, params, opt_state


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=8, help="simulated CPU devices (set before JAX starts)")
    parser.add_argument("--model-parallel", type=int, default=2, help="size of the 'model' mesh axis")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)

    n = len(jax.devices())
    if n < args.devices:
        raise SystemExit(f"only {n} devices are visible; set XLA_FLAGS before JAX starts (run as a script)")
    mesh = make_mesh(args.devices // args.model_parallel, args.model_parallel)
    sharded_losses, sharded_params, opt_state = train(args.steps, args.batch, mesh)
    single_losses, single_params, _ = train(args.steps, args.batch)
    diffs = jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - jax.device_get(b))) / (jnp.max(jnp.abs(a)) + 1e-12)),
        single_params, sharded_params,
    )
    worst = max(jax.tree.leaves(diffs))
    loss_diff = max(abs(a - b) / abs(a) for a, b in zip(single_losses, sharded_losses, strict=True))
    w = sharded_params["conv1"]["weight"]
    adam_state = next(s for s in opt_state if isinstance(s, optim.ScaleByTorchAdamState))
    mu = adam_state.mu["conv1"]["weight"]
    print(f"mesh {dict(mesh.shape)} on {args.devices} devices")
    print(f"conv1.weight sharding: {w.sharding.spec}; its Adam first moment: {mu.sharding.spec}")
    print(f"losses (sharded): {[round(v, 4) for v in sharded_losses]}")
    print(f"max relative difference vs one device: params {worst:.2e}, losses {loss_diff:.2e}")
    return {"param_rel_diff": worst, "loss_rel_diff": loss_diff, "losses": sharded_losses,
            "weight_spec": w.sharding.spec, "mu_spec": mu.sharding.spec}


if __name__ == "__main__":
    main()
