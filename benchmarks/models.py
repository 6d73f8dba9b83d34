"""Whole models (issue 15): diffusers' UNet2DConditionModel and AutoencoderKL in torch (eager) next to
jaxnn.models (jit) on the same weights, and the jitted UNet's compile time against its depth."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from ._timing import spread, stats_ms_interleaved, table

SD15_UNET: dict[str, Any] = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "attention_head_dim": 8,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
SD_VAE: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "block_out_channels": [128, 256, 512, 512], "sample_size": 512,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
}


def _dev() -> str:
    return "cuda" if torch.cuda.is_available() and jax.devices()[0].platform == "gpu" else "cpu"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _mid_unet(n_blocks: int, width: int = 64) -> dict[str, Any]:
    """SD 1.5's layout scaled down: ``n_blocks`` levels (cross-attention in all but the last),
    ``width`` channels at the first, 8 heads, 32 groups."""
    outs = [width * min(2 ** i, 4) for i in range(n_blocks)]
    down = ["CrossAttnDownBlock2D"] * (n_blocks - 1) + ["DownBlock2D"]
    return dict(SD15_UNET, block_out_channels=outs, down_block_types=down,
                up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n_blocks - 1), cross_attention_dim=256)


def _torch_unet(config: dict[str, Any], folder: str) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    model = UNet2DConditionModel(**config).eval()
    model.save_pretrained(folder)
    return model


def _unet_case(config: dict[str, Any], batch: int, size: int, tokens: int, dtype: Any, reps: int,
               label: str) -> list[Any]:
    from jaxnn.models import UNet2DConditionModel

    with tempfile.TemporaryDirectory() as folder:
        tm = _torch_unet(config, folder)
        jm = UNet2DConditionModel.from_pretrained(folder, dtype=None if dtype == "float32" else jnp.bfloat16)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, config["in_channels"], size, size)).astype(np.float32)
    ctx = rng.standard_normal((batch, tokens, config["cross_attention_dim"])).astype(np.float32)
    t_dtype = torch.float32 if dtype == "float32" else torch.bfloat16
    j_dtype = jnp.float32 if dtype == "float32" else jnp.bfloat16
    tm = tm.to(_dev(), t_dtype)
    tx, tc = torch.tensor(x, dtype=t_dtype, device=_dev()), torch.tensor(ctx, dtype=t_dtype, device=_dev())
    jx, jc = jnp.asarray(x, j_dtype), jnp.asarray(ctx, j_dtype)
    graph, state = nnx.split(jm)

    def fwd(state: Any, x: Any, c: Any) -> Any:
        return nnx.merge(graph, state)(x, 999, c).sample

    start = time.perf_counter()
    compiled = jax.jit(fwd).lower(state, jx, jc).compile()
    compile_s = time.perf_counter() - start

    def ours() -> None:
        compiled(state, jx, jc).block_until_ready()

    def theirs() -> None:
        with torch.no_grad():
            tm(tx, 999, tc)
        _sync()

    s = stats_ms_interleaved({"jaxnn": ours, "torch": theirs}, repeats=reps, warmup=1)
    return [label, dtype, spread(s["jaxnn"]), spread(s["torch"]), f"{s['jaxnn'][1] / s['torch'][1]:.2f}",
            f"{compile_s:.1f}"]


def _compile_rows(quick: bool) -> list[list[Any]]:
    """Trace (Python: building the jaxpr through nnx) and XLA compile time of the jitted forward
    for 2, 3 and 4 levels of the mid-size UNet."""
    from jaxnn.models import UNet2DConditionModel

    rows = []
    for n in (2, 3) if quick else (2, 3, 4):
        config = _mid_unet(n, 32 if quick else 64)
        jm = UNet2DConditionModel.from_config(config)
        jm.eval()
        graph, state = nnx.split(jm)
        x = jnp.zeros((1, 4, 16, 16))
        c = jnp.zeros((1, 8, config["cross_attention_dim"]))

        def fwd(state: Any, x: Any, c: Any, graph: Any = graph) -> Any:
            return nnx.merge(graph, state)(x, 999, c).sample

        t0 = time.perf_counter()
        lowered = jax.jit(fwd).lower(state, x, c)
        t1 = time.perf_counter()
        lowered.compile()
        t2 = time.perf_counter()
        n_params = sum(v.size for v in jax.tree.leaves(state))
        rows.append([f"{n} levels {config['block_out_channels']}", f"{n_params / 1e6:.1f} M",
                     f"{t1 - t0:.1f}", f"{t2 - t1:.1f}"])
    return rows


def _vae_row(config: dict[str, Any], latent: int, reps: int) -> list[Any]:
    from diffusers import AutoencoderKL as TorchVAE

    from jaxnn.models import AutoencoderKL

    torch.manual_seed(0)
    tm = TorchVAE(**config).eval()
    with tempfile.TemporaryDirectory() as folder:
        tm.save_pretrained(folder)
        jm = AutoencoderKL.from_pretrained(folder)
    z = np.random.default_rng(0).standard_normal((1, config["latent_channels"], latent, latent)).astype(np.float32)
    tm = tm.to(_dev())
    tz, jz = torch.tensor(z, device=_dev()), jnp.asarray(z)
    graph, state = nnx.split(jm)

    def dec(state: Any, z: Any) -> Any:
        return nnx.merge(graph, state).decode(z).sample

    start = time.perf_counter()
    compiled = jax.jit(dec).lower(state, jz).compile()
    compile_s = time.perf_counter() - start

    def ours() -> None:
        compiled(state, jz).block_until_ready()

    def theirs() -> None:
        with torch.no_grad():
            tm.decode(tz)
        _sync()

    s = stats_ms_interleaved({"jaxnn": ours, "torch": theirs}, repeats=reps, warmup=1)
    side = latent * 2 ** (len(config["block_out_channels"]) - 1)
    return [f"VAE decode {latent}x{latent} -> {side}x{side}", "float32", spread(s["jaxnn"]), spread(s["torch"]),
            f"{s['jaxnn'][1] / s['torch'][1]:.2f}", f"{compile_s:.1f}"]


def bench_models(quick: bool) -> str:
    """UNet forward (SD 1.5 size: batch 2, 64x64 latents, 77 tokens; and a mid size), VAE decode
    (64x64 latents -> 512x512), jaxnn jit next to torch eager on the same weights; compile times."""
    reps = 3 if not quick else 1
    rows = []
    mid = _mid_unet(3)
    if quick:
        rows.append(_unet_case(_mid_unet(2, 32), 1, 8, 8, "float32", reps, "UNet 2 levels (32, 64), 8x8, batch 1"))
        rows.append(_unet_case(_mid_unet(2, 32), 1, 8, 8, "bfloat16", reps, "UNet 2 levels (32, 64), 8x8, batch 1"))
        rows.append(_vae_row(dict(SD_VAE, block_out_channels=[32, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                                   up_block_types=["UpDecoderBlock2D"] * 2), 8, reps))
    else:
        for dtype in ("float32", "bfloat16"):
            rows.append(_unet_case(mid, 2, 32, 77, dtype, reps, "UNet mid (64, 128, 256), 32x32, batch 2"))
        for dtype in ("float32", "bfloat16"):
            rows.append(_unet_case(SD15_UNET, 2, 64, 77, dtype, reps, "UNet SD 1.5 (320..1280), 64x64, batch 2"))
        rows.append(_vae_row(SD_VAE, 64, reps))
    out = table("whole models (median (min-max) ms; compile: s, jax.jit lower+compile)",
                ["model", "dtype", "jaxnn ms", "torch ms", "jaxnn/torch", "compile s"], rows)
    out += "\n" + table("UNet compile time against depth (mid-size layout, 16x16 latents)",
                        ["levels (channels)", "params", "trace s", "XLA compile s"], _compile_rows(quick))
    return out
