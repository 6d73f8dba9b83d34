"""Port a PyTorch block to JAX with its checkpoint: same class structure, load by name, same numbers.

Defines a small torch model (a diffusers-style ResNet block with a GEGLU feed-forward head), saves
its weights to .safetensors, rebuilds it with jaxnn.nnx (attribute for attribute), loads the file
without torch, and prints the max abs difference of the outputs and of one parameter gradient.

    python examples/port_from_torch.py
"""

from __future__ import annotations

import argparse
import os
import tempfile

import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as TF
from flax import nnx

import jaxnn
import jaxnn.nnx as jn


# --- the torch model, as a user has it -----------------------------------------------------------
class TorchGEGLU(torch.nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = torch.nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        h, gate = self.proj(x).chunk(2, dim=-1)
        return h * TF.gelu(gate)


class TorchBlock(torch.nn.Module):
    def __init__(self, channels=32, temb=16, classes=10):
        super().__init__()
        self.norm1 = torch.nn.GroupNorm(8, channels)
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.time_emb_proj = torch.nn.Linear(temb, channels)
        self.norm2 = torch.nn.GroupNorm(8, channels, eps=1e-6)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.head = torch.nn.ModuleList([TorchGEGLU(channels, 64), torch.nn.Linear(64, classes)])

    def forward(self, x, t):
        h = self.conv1(TF.silu(self.norm1(x)))
        h = h + self.time_emb_proj(TF.silu(t))[:, :, None, None]
        h = x + self.conv2(TF.silu(self.norm2(h)))
        h = h.mean(dim=(2, 3))
        for layer in self.head:
            h = layer(h)
        return h


# --- the jaxnn twin: same names, same structure, torch's layouts ----------------------------------
class Block(nnx.Module):
    def __init__(self, channels=32, temb=16, classes=10, *, rngs: nnx.Rngs):
        self.norm1 = jn.GroupNorm(8, channels)
        self.conv1 = jn.Conv2d(channels, channels, 3, padding=1, rngs=rngs)
        self.time_emb_proj = jn.Linear(temb, channels, rngs=rngs)
        self.norm2 = jn.GroupNorm(8, channels, eps=1e-6)
        self.conv2 = jn.Conv2d(channels, channels, 3, padding=1, rngs=rngs)
        self.head = jn.ModuleList([jn.GEGLU(channels, 64, rngs=rngs), jn.Linear(64, classes, rngs=rngs)])

    def __call__(self, x, t):
        F = jaxnn.functional
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(t))[:, :, None, None]
        h = x + self.conv2(F.silu(self.norm2(h)))
        h = h.mean(axis=(2, 3))
        for layer in self.head:
            h = layer(h)
        return h


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="where to write block.safetensors (default: a temp dir)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch_model = TorchBlock()
    out_dir = args.out or tempfile.mkdtemp()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "block.safetensors")
    jaxnn.save_file(torch_model.state_dict(), path)  # torch tensors in, a standard .safetensors out

    model = Block(rngs=nnx.Rngs(0))
    result = jn.load_state_dict(model, path)  # no torch needed for this step
    print(f"loaded {len(jn.state_dict(model))} tensors from {path}; {result}")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 16, 16)).astype(np.float32)
    t = rng.standard_normal((4, 16)).astype(np.float32)

    t_out = torch_model(torch.tensor(x), torch.tensor(t))
    t_out.square().sum().backward()
    j_out = model(jnp.asarray(x), jnp.asarray(t))
    grads = nnx.grad(lambda m: jnp.sum(m(jnp.asarray(x), jnp.asarray(t)) ** 2))(model)

    out_diff = float(np.abs(np.asarray(j_out) - t_out.detach().numpy()).max())
    g_j = np.asarray(grads.conv1.weight[...])
    g_t = torch_model.conv1.weight.grad.numpy()
    grad_diff = float(np.abs(g_j - g_t).max())
    print(f"max |output diff|            = {out_diff:.3e}  (output scale {np.abs(t_out.detach().numpy()).max():.2e})")
    print(f"max |d loss / d conv1.weight| = {grad_diff:.3e}  (gradient scale {np.abs(g_t).max():.2e})")
    return {"output": out_diff, "grad": grad_diff}


if __name__ == "__main__":
    main()
