"""Checkpoint loading: a float16 checkpoint (1 GB by default) read by jaxnn, safetensors and torch.

    python -m benchmarks checkpoint [--write BENCHMARKS.md]
    JAXNN_BENCH_CHECKPOINT_MB=8 python -m benchmarks checkpoint     # a smoke test (or --quick: 4 MB)

The files are written once to a temporary folder (``model.safetensors`` with safetensors, ``model.pt``
with ``torch.save``), then each reader runs round-robin (min/median/max). Each reader ends with every
tensor in memory: the jaxnn rows as JAX arrays on the default device (``load_state_dict`` into an
nnx model of the checkpoint's shapes), the others as numpy arrays or torch tensors. The OS page
cache is warm after the first round, so this measures parsing, copying and device transfer, not
the disk.
"""

from __future__ import annotations

import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy
import safetensors.torch
import torch
from flax import nnx

import jaxnn
import jaxnn.nnx as jn

from ._timing import spread, stats_ms_interleaved, table

ENV_SIZE = "JAXNN_BENCH_CHECKPOINT_MB"


class _Holder(nnx.Module):
    """An nnx model with one float16 parameter per checkpoint tensor (``layers.i.weight``)."""

    def __init__(self, shapes: list[tuple[int, int]]):
        self.layers = nnx.List([_Weight(s) for s in shapes])


class _Weight(nnx.Module):
    def __init__(self, shape: tuple[int, int]):
        self.weight = nnx.Param(jnp.zeros(shape, jnp.float16))


def bench_checkpoint(quick: bool) -> str:
    mb = float(os.environ.get(ENV_SIZE, 4 if quick else 1024))
    n_tensors = 32
    cols = 4096
    rows = max(1, int(mb * 2**20 / (2 * cols * n_tensors)))
    shapes = [(rows, cols)] * n_tensors
    total = sum(r * c * 2 for r, c in shapes)
    reps = 2 if quick else 7
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        st_path, pt_path = os.path.join(tmp, "model.safetensors"), os.path.join(tmp, "model.pt")
        arrays = {f"layers.{i}.weight": rng.standard_normal(s, dtype=np.float32).astype(np.float16)
                  for i, s in enumerate(shapes)}
        safetensors.numpy.save_file(arrays, st_path, metadata={"format": "pt"})
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, pt_path)
        del arrays
        model = nnx.eval_shape(lambda: _Holder(shapes))

        def jaxnn_model() -> None:
            jn.load_state_dict(model, st_path)
            jax.block_until_ready(jn.state_dict(model))

        fns = {
            "jaxnn.nnx.load_state_dict (into JAX arrays)": jaxnn_model,
            "jaxnn.load_file (numpy)": lambda: jaxnn.load_file(st_path),
            "safetensors.numpy.load_file": lambda: safetensors.numpy.load_file(st_path),
            "safetensors.torch.load_file": lambda: safetensors.torch.load_file(st_path),
            "torch.load(.pt, weights_only=True)": lambda: torch.load(pt_path, weights_only=True),
        }
        stats = stats_ms_interleaved(fns, repeats=reps, warmup=1)
    base = stats["safetensors.numpy.load_file"][1]
    out = [[name, spread(t), f"{total / 2**30 / (t[1] / 1e3):.2f}", f"{t[1] / base:.2f}"]
           for name, t in stats.items()]
    title = (f"checkpoint load: {n_tensors} float16 tensors of {rows}x{cols}, {total / 2**20:.0f} MiB "
             "(ms, median (min-max), round-robin)")
    return table(title, ["reader", "ms", "GiB/s", "vs safetensors.numpy"], out)


if __name__ == "__main__":
    print(bench_checkpoint(quick=False))
