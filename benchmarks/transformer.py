"""Transformer layer and cross_entropy next to torch (issue 13).

    python -m benchmarks transformer [--quick] [--write BENCHMARKS.md]

- ``nn.TransformerEncoderLayer(512, 8, batch_first=True)`` on ``(16, 256, 512)``, dropout 0:
  forward in eval mode (torch under ``no_grad``: its fused ``_transformer_encoder_layer_fwd``;
  jaxnn: the linen twin under ``jax.jit``) and forward+backward in training mode (gradients of the
  input and every parameter, loss ``sum(out**2)``).
- ``cross_entropy`` over ``(8192, 32000)`` float32 logits with class-index targets: forward, and
  forward+backward (gradient of the logits).

Round-robin timing, min/median/max (benchmarks/_timing.py); the same inputs on both sides.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

from ._timing import jax_call, spread, stats_ms_interleaved, table


def _device() -> str:
    return "cuda" if torch.cuda.is_available() and jax.devices()[0].platform == "gpu" else "cpu"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _encoder_layer_rows(quick: bool, reps: int) -> list[list[str]]:
    import jaxnn.linen as jl

    dev = _device()
    N, S, d, h, ff = (16, 256, 512, 8, 2048) if not quick else (2, 8, 16, 2, 32)
    x = np.random.default_rng(0).standard_normal((N, S, d)).astype(np.float32)
    torch.manual_seed(0)
    t = torch.nn.TransformerEncoderLayer(d, h, ff, 0.0, batch_first=True).to(dev)
    lm = jl.TransformerEncoderLayer(d, h, ff, 0.0, batch_first=True)
    params = {k: jnp.asarray(v.detach().cpu().numpy()) for k, v in t.state_dict().items()}
    shapes = jax.eval_shape(lambda k, v: lm.init(k, v, deterministic=True), jax.random.key(0), jnp.asarray(x[:1]))
    variables = jl.load_state_dict(shapes, params)[0]
    jx, tx = jnp.asarray(x), torch.tensor(x, device=dev)
    fwd = jax.jit(lambda v, x: lm.apply(v, x, deterministic=True))
    bwd = jax.jit(jax.grad(lambda p, x: jnp.sum(lm.apply({"params": p}, x, deterministic=False) ** 2),
                           argnums=(0, 1)))

    def torch_fwd() -> None:
        t.eval()
        with torch.no_grad():
            t(tx)
        _sync()

    def torch_bwd() -> None:
        t.train()
        t.zero_grad(set_to_none=True)
        xg = tx.detach().requires_grad_(True)
        (t(xg) ** 2).sum().backward()
        _sync()

    rows = []
    for name, ours, theirs in (("forward (eval)", jax_call(fwd, variables, jx), torch_fwd),
                               ("forward+backward (train)", jax_call(bwd, variables["params"], jx), torch_bwd)):
        s = stats_ms_interleaved({"jaxnn": ours, "torch": theirs}, repeats=reps)
        rows.append([f"TransformerEncoderLayer({d}, {h}, {ff}) {(N, S, d)}", name, spread(s["jaxnn"]),
                     spread(s["torch"]), f"{s['jaxnn'][1] / s['torch'][1]:.2f}"])
    return rows


def _cross_entropy_rows(quick: bool, reps: int) -> list[list[str]]:
    import jaxnn.functional as F

    dev = _device()
    n, c = (8192, 32000) if not quick else (64, 100)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n, c)).astype(np.float32)
    target = rng.integers(0, c, n).astype(np.int64)
    jl_, jt = jnp.asarray(logits), jnp.asarray(target.astype(np.int32))
    tl, tt = torch.tensor(logits, device=dev), torch.tensor(target, device=dev)
    fwd = jax.jit(F.cross_entropy)
    bwd = jax.jit(jax.grad(F.cross_entropy))

    def torch_fwd() -> None:
        with torch.no_grad():
            torch.nn.functional.cross_entropy(tl, tt)
        _sync()

    def torch_bwd() -> None:
        lg = tl.detach().requires_grad_(True)
        torch.nn.functional.cross_entropy(lg, tt).backward()
        _sync()

    rows = []
    for name, ours, theirs in (("forward", jax_call(fwd, jl_, jt), torch_fwd),
                               ("forward+backward", jax_call(bwd, jl_, jt), torch_bwd)):
        s = stats_ms_interleaved({"jaxnn": ours, "torch": theirs}, repeats=reps)
        rows.append([f"cross_entropy {(n, c)} logits, class indices", name, spread(s["jaxnn"]), spread(s["torch"]),
                     f"{s['jaxnn'][1] / s['torch'][1]:.2f}"])
    return rows


def bench_transformer(quick: bool) -> str:
    """TransformerEncoderLayer and cross_entropy, jaxnn (jit) next to torch, float32."""
    reps = 7 if not quick else 2
    rows = _encoder_layer_rows(quick, reps) + _cross_entropy_rows(quick, reps)
    return table("transformer layer and cross_entropy (float32; median (min-max))",
                 ["op", "pass", "jaxnn ms", "torch ms", "jaxnn/torch"], rows)
