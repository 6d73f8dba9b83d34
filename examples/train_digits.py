"""Train a small conv net built from jaxnn.nnx modules on scikit-learn's bundled digits.

Conv2d -> GroupNorm -> SiLU blocks and a GEGLU feed-forward head, trained with jaxnn.optim.adamw
(torch's AdamW, step for step) in a jitted, buffer-donating train step. Prints `test accuracy: X`
and writes a PNG of the curves and a .safetensors checkpoint that torch can load by name.

    python examples/train_digits.py --epochs 30 --out out/digits
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jaxnn.nnx as jn
from jaxnn import optim


class DigitsNet(nnx.Module):
    """Same attribute names as the equivalent torch.nn.Module would use."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = jn.Conv2d(1, 32, 3, padding=1, rngs=rngs)
        self.norm1 = jn.GroupNorm(8, 32)
        self.conv2 = jn.Conv2d(32, 64, 3, stride=2, padding=1, rngs=rngs)
        self.norm2 = jn.GroupNorm(8, 64)
        self.conv3 = jn.Conv2d(64, 64, 3, padding=1, padding_mode="reflect", rngs=rngs)
        self.norm3 = jn.GroupNorm(8, 64)
        self.act = jn.SiLU()
        self.ff = jn.GEGLU(64, 128, rngs=rngs)
        self.head = jn.Linear(128, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.act(self.norm1(self.conv1(x)))
        x = self.act(self.norm2(self.conv2(x)))  # 8x8 -> 4x4
        x = self.act(self.norm3(self.conv3(x)))
        x = x.mean(axis=(2, 3))
        return self.head(self.ff(x))


def load_digits(seed: int):
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8), NCHW like torch
    y = data.target.astype(np.int32)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--out", default="out/digits", help="directory for the plot and checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="disable the tqdm bar")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    x_train, x_test, y_train, y_test = load_digits(args.seed)
    model = DigitsNet(rngs=nnx.Rngs(args.seed))
    graphdef, params = nnx.split(model)
    steps_per_epoch = len(x_train) // args.batch_size
    # A cosine schedule, called with the update count (what a torch scheduler stepped per batch gives).
    schedule = optax.cosine_decay_schedule(args.lr, max(1, args.epochs * steps_per_epoch), alpha=0.05)
    tx = optim.adamw(schedule, weight_decay=args.weight_decay)
    opt_state = tx.init(params)

    # Donating params and optimizer state lets XLA update them in place: on CPU, allocating fresh
    # buffers every step costs more than the AdamW arithmetic itself.
    @partial(jax.jit, donate_argnums=(0, 1))
    def train_step(params, opt_state, x, y):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def accuracy(params, x, y):
        return jnp.mean(jnp.argmax(nnx.merge(graphdef, params)(x), -1) == y)

    rng = np.random.default_rng(args.seed)
    losses, accs = [], []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", disable=args.no_progress)
        for i in bar:
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
            losses.append(float(loss))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        accs.append(float(accuracy(params, x_test, y_test)))
    elapsed = time.perf_counter() - start

    os.makedirs(args.out, exist_ok=True)
    nnx.update(model, params)
    ckpt = os.path.join(args.out, "digits.safetensors")
    jn.save_state_dict(model, ckpt)
    plot = os.path.join(args.out, "digits.png")
    _plot(losses, accs, steps_per_epoch, plot)
    print(f"trained {args.epochs} epochs in {elapsed:.1f} s; checkpoint {ckpt}; plot {plot}")
    print(f"test accuracy: {accs[-1]:.4f}")
    return accs[-1]


def _plot(losses: list[float], accs: list[float], steps_per_epoch: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(losses, lw=0.8)
    ax1.set(xlabel="step", ylabel="training loss", yscale="log", title="jaxnn.optim.adamw")
    epochs = np.arange(1, len(accs) + 1) * steps_per_epoch
    ax2.plot(epochs, accs, marker="o")
    ax2.set(xlabel="step", ylabel="test accuracy", title="digits (held-out 25%)", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
