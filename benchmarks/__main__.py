"""jaxnn benchmarks, side by side with torch and flax/optax in one process.

    python -m benchmarks conv|norm|act|optim|layers|attention|checkpoint|rnn|transformer|models|pipeline|all
        [--quick] [--write BENCHMARKS.md]

Prints markdown tables of medians (ms) and ratios. ``--write`` replaces the matching section of
BENCHMARKS.md (between ``<!-- bench:NAME -->`` markers) with the fresh table and machine info.
"""

from __future__ import annotations

import argparse
import os

# torch's OpenMP workers spin after each parallel region and steal the 2 cores XLA needs next;
# let them sleep so the side-by-side numbers measure each library, not their interference.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ._timing import jax_call, median_ms, median_ms_interleaved, peak_rss_mb, spread, stats_ms_interleaved, table  # noqa: E402
from .checkpoint import bench_checkpoint  # noqa: E402
from .models import bench_models  # noqa: E402
from .pipeline import bench_pipeline  # noqa: E402
from .transformer import bench_transformer  # noqa: E402


def _cpu() -> str:
    """The CPU model and its widest vector ISA (Linux: /proc/cpuinfo; else the platform string)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    flag_line = re.search(r"^flags\s*:\s*(.+)$", info, re.M)
    flags = set(flag_line.group(1).split()) if flag_line else set()
    isa = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))
                if flag in flags), "SSE")
    extras = "".join(f", {x}" for x in ("avx512_bf16", "avx512_vnni", "amx_tile") if x in flags)
    name = model.group(1).strip() if model else platform.machine()
    return f"{name} ({isa}{extras})"


def _env() -> str:
    dev = jax.devices()[0]
    return (f"jax {jax.__version__} on {dev.platform} ({getattr(dev, 'device_kind', '')}), torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs: {_cpu()}, "
            f"{platform.machine()}, Python {platform.python_version()}")


def _torch_device() -> str:
    return "cuda" if torch.cuda.is_available() and jax.devices()[0].platform == "gpu" else "cpu"


def _tsync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_conv(quick: bool) -> str:
    """conv{1,2,3}d with each padding_mode next to the zeros-mode conv of the same shape and torch
    (issue 18: padded convolutions within 1.15x of zero-padded ones), round-robin, min/median/max."""
    import jaxnn.functional as F

    cases = [((8, 64, 32, 32), 3), ((4, 128, 64, 64), 3), ((2, 320, 32, 32), 3), ((2, 320, 64, 64), 3),
             ((8, 256, 1024), 3), ((2, 32, 16, 32, 32), 3)]
    if quick:
        cases = [((2, 16, 16, 16), 3), ((2, 8, 32), 3), ((1, 4, 4, 8, 8), 3)]
    dev = _torch_device()
    rows = []
    rng = np.random.default_rng(0)
    modes = ("zeros", "reflect", "replicate", "circular")
    reps = 7 if not quick else 2
    for shape, k in cases:
        n = len(shape) - 2
        c = shape[1]
        x = rng.standard_normal(shape).astype(np.float32)
        w = (rng.standard_normal((c, c) + (k,) * n) / np.sqrt(k**n * c)).astype(np.float32)
        jx, jw = jnp.asarray(x), jnp.asarray(w)
        tx = torch.tensor(x, device=dev, requires_grad=True)
        conv_j = getattr(F, f"conv{n}d")
        tconvs = {}
        for mode in modes:
            m = getattr(torch.nn, f"Conv{n}d")(c, c, k, padding=k // 2, bias=False, padding_mode=mode).to(dev)
            m.weight.data = torch.tensor(w, device=dev)
            tconvs[mode] = m
        for pass_ in ("forward", "forward+backward"):
            runs = {}
            for mode in modes:
                def f(x, w, mode=mode):
                    return conv_j(x, w, None, 1, k // 2, padding_mode=mode)

                jf = jax.jit(f) if pass_ == "forward" else jax.jit(
                    jax.grad(lambda x, w, f=f: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
                runs[f"jaxnn {mode}"] = jax_call(jf, jx, jw)

                def run(m=tconvs[mode]):
                    if pass_ == "forward":
                        with torch.no_grad():
                            m(tx)
                    else:
                        tx.grad = None
                        m.weight.grad = None
                        m(tx).square().sum().backward()
                    _tsync()

                runs[f"torch {mode}"] = run
            t = stats_ms_interleaved(runs, repeats=reps)
            z = t["jaxnn zeros"][1]
            for mode in modes:
                tj, tt = t[f"jaxnn {mode}"], t[f"torch {mode}"]
                rows.append([f"conv{n}d {shape} k={k}", pass_, mode, spread(tj), spread(tt),
                             f"{tj[1] / z:.2f}" if mode != "zeros" else "1", f"{tj[1] / tt[1]:.2f}"])
    header = ["input (C_out=C_in, padding=k//2)", "pass", "padding_mode", "jaxnn ms", "torch ms",
              "jaxnn mode/zeros", "jaxnn/torch"]
    return table("conv (float32, channels-first; median (min-max))", header, rows)


def bench_norm(quick: bool) -> str:
    import flax.linen as nn

    import jaxnn.functional as F
    from jaxnn.functional import _norm

    shapes = [(4, 320, 64, 64), (16, 128, 64, 64)] if not quick else [(2, 32, 8, 8)]
    dev = _torch_device()
    rows = []
    rng = np.random.default_rng(0)
    for shape in shapes:
        c = shape[1]
        x = rng.standard_normal(shape).astype(np.float32)
        w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
        jx, jw, jb = jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)
        jx_last = jnp.asarray(np.moveaxis(x, 1, -1))
        t = {n: torch.tensor(v, device=dev) for n, v in (("x", x), ("w", w), ("b", b))}
        t["x_last"] = t["x"].contiguous(memory_format=torch.channels_last)
        ours = jax.jit(lambda x, w, b: F.group_norm(x, 32, w, b))
        ours_last = jax.jit(lambda x, w, b: F.group_norm(x, 32, w, b, channels_last=True))
        # jaxnn's XLA implementation: what float32 runs off the CPU (and float32 took before the kernel)
        xla = jax.jit(lambda x, w, b: _norm._group_norm_xla(x, w, b, 32, 1e-5, False))
        xla_last = jax.jit(lambda x, w, b: _norm._group_norm_xla(x, w, b, 32, 1e-5, True))
        flax_gn = nn.GroupNorm(num_groups=32, epsilon=1e-5)
        fparams = flax_gn.init(jax.random.key(0), jx_last)
        flax_fn = jax.jit(lambda x: flax_gn.apply(fparams, x))
        copy = jax.jit(lambda x: x + 1.0)

        def torch_gn(key):
            def run():
                with torch.no_grad():
                    torch.nn.functional.group_norm(t[key], 32, t["w"], t["b"])
                _tsync()

            return run

        ms = median_ms_interleaved(
            {
                "ours": jax_call(ours, jx, jw, jb),
                "ours_last": jax_call(ours_last, jx_last, jw, jb),
                "xla": jax_call(xla, jx, jw, jb),
                "xla_last": jax_call(xla_last, jx_last, jw, jb),
                "torch": torch_gn("x"),
                "torch_last": torch_gn("x_last"),
                "flax": jax_call(flax_fn, jx_last),
                "copy": jax_call(copy, jx),
            },
            repeats=40 if not quick else 3,
            block=4,  # torch's spinning OpenMP threads slow the next XLA call (see _timing)
        )
        tj, tjl, tt, ttl, tf, tc = (ms[k] for k in ("ours", "ours_last", "torch", "torch_last", "flax", "copy"))
        rows.append([str(shape), tj, tjl, ms["xla"], ms["xla_last"], tt, ttl, tf, tc, f"{tj / tt:.2f}",
                     f"{tjl / ttl:.2f}", f"{tj / tc:.2f}", f"{tf / ttl:.2f}"])
    header = ["input, G=32", "jaxnn NCHW ms", "jaxnn NHWC ms", "jaxnn XLA impl NCHW ms", "jaxnn XLA impl NHWC ms",
              "torch ms", "torch channels_last ms", "flax.linen (NHWC) ms", "copy floor ms", "jaxnn/torch NCHW",
              "jaxnn/torch NHWC", "jaxnn NCHW/copy", "flax/torch NHWC"]
    out = table("group_norm forward (float32)", header, rows)

    rows = []
    for shape in [(8, 1024, 768), (2, 4096, 320)] if not quick else [(2, 8, 16)]:
        x = rng.standard_normal(shape).astype(np.float32)
        d = shape[-1]
        jx, jw = jnp.asarray(x), jnp.ones(d, jnp.float32)
        tx, tw = torch.tensor(x, device=dev), torch.ones(d, device=dev)
        ours = jax.jit(lambda x, w: F.layer_norm(x, d, w, w))
        flax_ln = nn.LayerNorm(epsilon=1e-5)
        fparams = flax_ln.init(jax.random.key(0), jx)
        flax_fn = jax.jit(lambda x: flax_ln.apply(fparams, x))
        copy = jax.jit(lambda x: x + 1.0)

        def torch_ln():
            with torch.no_grad():
                torch.nn.functional.layer_norm(tx, (d,), tw, tw)
            _tsync()

        ms = median_ms_interleaved(
            {"ours": jax_call(ours, jx, jw), "torch": torch_ln, "flax": jax_call(flax_fn, jx),
             "copy": jax_call(copy, jx)},
            repeats=20 if not quick else 3,
        )
        rows.append([str(shape), ms["ours"], ms["torch"], ms["flax"], ms["copy"], f"{ms['ours'] / ms['torch']:.2f}",
                     f"{ms['ours'] / ms['copy']:.2f}", f"{ms['flax'] / ms['torch']:.2f}"])
    header = ["input (normalized: last dim)", "jaxnn ms", "torch ms", "flax.linen ms", "copy floor ms", "jaxnn/torch",
              "jaxnn/copy", "flax/torch"]
    return out + "\n" + table("layer_norm forward (float32)", header, rows)


def bench_act(quick: bool) -> str:
    import jaxnn.functional as F

    shape = (4, 320, 64, 64) if not quick else (2, 8, 8, 8)
    dev = _torch_device()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    jx, tx = jnp.asarray(x), torch.tensor(x, device=dev)
    copy_fn = jax_call(jax.jit(lambda v: v + 1.0), jx)
    rows = []
    for name, jf, tf in [
        ("gelu (exact)", F.gelu, torch.nn.functional.gelu),
        ("silu", F.silu, torch.nn.functional.silu),
        ("geglu", F.geglu, lambda v: v.chunk(2, -1)[0] * torch.nn.functional.gelu(v.chunk(2, -1)[1])),
    ]:
        def run(tf=tf):
            with torch.no_grad():
                tf(tx)
            _tsync()

        t = median_ms_interleaved({"jaxnn": jax_call(jax.jit(jf), jx), "torch": run, "copy": copy_fn},
                                  repeats=20 if not quick else 3)
        tj, tt, copy = t["jaxnn"], t["torch"], t["copy"]
        rows.append([name, str(shape), tj, tt, copy, f"{tj / copy:.2f}", f"{tj / tt:.2f}"])
    return table("activations forward (float32)", ["op", "input", "jaxnn ms", "torch ms", "copy floor ms",
                                                   "jaxnn/copy", "jaxnn/torch"], rows)


def bench_optim(quick: bool) -> str:
    import optax

    from jaxnn import optim

    shapes = [(1024, 1024)] * 8 + [(4096, 1024)] * 2 + [(1024,)] * 50
    if quick:
        shapes = [(64, 64)] * 4
    n = sum(int(np.prod(s)) for s in shapes)
    dev = _torch_device()
    rng = np.random.default_rng(0)
    host = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads_host = [rng.standard_normal(s).astype(np.float32) * 1e-3 for s in shapes]
    reps = 20 if not quick else 3
    rows = []

    def jax_runner(tx, donate: bool = True) -> Callable[[], None]:
        params = [jnp.asarray(p) for p in host]
        grads = [jnp.asarray(g) for g in grads_host]
        state = tx.init(params)

        def step(params, state, grads):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        f = jax.jit(step, donate_argnums=(0, 1) if donate else ())
        box = [params, state]

        def run():
            box[0], box[1] = f(box[0], box[1], grads)
            jax.block_until_ready(box[0])

        return run

    def torch_runner(cls=torch.optim.AdamW, **kw) -> Callable[[], None]:
        params = [torch.tensor(p, device=dev, requires_grad=True) for p in host]
        for p, g in zip(params, grads_host, strict=True):
            p.grad = torch.tensor(g, device=dev)
        opt = cls(params, **kw)

        def run():
            opt.step()
            _tsync()

        return run

    def jax_step(tx, donate: bool) -> float:
        return median_ms(jax_runner(tx, donate), repeats=reps)

    def torch_step(**kw) -> float:
        return median_ms(torch_runner(torch.optim.AdamW, lr=1e-3, **kw), repeats=reps)

    results = {
        "jaxnn.optim.adamw (jit, donated)": jax_step(optim.adamw(1e-3), True),
        "jaxnn.optim.adamw (jit, no donation)": jax_step(optim.adamw(1e-3), False),
        "optax.adamw(weight_decay=1e-2) (jit, donated)": jax_step(optax.adamw(1e-3, weight_decay=1e-2), True),
        "optax.adamw(weight_decay=1e-2) (jit, no donation)": jax_step(optax.adamw(1e-3, weight_decay=1e-2), False),
    }
    fused_ok = dev == "cuda" or hasattr(torch, "_fused_adamw_")
    if fused_ok:
        try:
            results["torch AdamW fused=True"] = torch_step(fused=True)
        except Exception as e:  # noqa: BLE001 - recorded, not hidden
            results[f"torch AdamW fused=True (unavailable: {type(e).__name__})"] = float("nan")
    results["torch AdamW foreach=True"] = torch_step(foreach=True)
    results["torch AdamW for-loop"] = torch_step(foreach=False)
    ref_key = "torch AdamW fused=True" if "torch AdamW fused=True" in results else "torch AdamW foreach=True"
    ref = results[ref_key]
    for name, ms in results.items():
        rows.append([name, ms, f"{ms / ref:.2f}" if ms == ms else "n/a"])
    adamw_text = table(f"AdamW step over {n / 1e6:.1f}M float32 parameters ({len(shapes)} tensors)",
                       ["implementation", "median ms", f"ratio to {ref_key}"], rows)

    # Other optimizers: jaxnn vs torch (fused where torch has a fused kernel for it on this device,
    # else foreach) vs optax's nearest transform, round-robin per optimizer, all jitted with donation.
    T = torch.optim
    others = [  # label, jaxnn transform, torch class, torch kwargs, try fused first, optax transform
        ("SGD (lr=1e-2, momentum=0.9)", optim.sgd(1e-2, momentum=0.9), T.SGD, dict(lr=1e-2, momentum=0.9),
         True, optax.sgd(1e-2, momentum=0.9)),
        ("RMSprop (defaults, lr=1e-2)", optim.rmsprop(1e-2), T.RMSprop, dict(lr=1e-2),
         False, optax.rmsprop(1e-2, decay=0.99, eps=1e-8, eps_in_sqrt=False)),
        ("Adagrad (defaults, lr=1e-2)", optim.adagrad(1e-2), T.Adagrad, dict(lr=1e-2),
         True, optax.adagrad(1e-2, initial_accumulator_value=0.0, eps=1e-10)),
        ("Adamax (defaults, lr=2e-3)", optim.adamax(2e-3), T.Adamax, dict(lr=2e-3),
         False, optax.adamax(2e-3)),
        ("NAdam (defaults, lr=2e-3)", optim.nadam(2e-3), T.NAdam, dict(lr=2e-3),
         False, optax.nadam(2e-3)),
        ("RAdam (defaults, lr=1e-3)", optim.radam(1e-3), T.RAdam, dict(lr=1e-3),
         False, optax.radam(1e-3)),
        ("Adadelta (defaults, lr=1.0)", optim.adadelta(1.0), T.Adadelta, dict(lr=1.0),
         False, optax.adadelta(1.0, rho=0.9, eps=1e-6)),
    ]
    other_reps = 7 if not quick else 2
    other_rows = []
    for label, jtx, tcls, tkw, try_fused, otx in others:
        truns, impl = None, "foreach"
        if try_fused:
            try:
                truns = torch_runner(tcls, fused=True, **tkw)
                truns()  # unsupported fused kernels raise here or in the constructor
                impl = "fused"
            except Exception:  # noqa: BLE001 - falls back to foreach, and the table says which
                truns = None
        if truns is None:
            truns = torch_runner(tcls, foreach=True, **tkw)
        fns = {"jaxnn": jax_runner(jtx), "torch": truns}
        if otx is not None:
            fns["optax"] = jax_runner(otx)
        t = median_ms_interleaved(fns, repeats=other_reps)
        tj, tt, to = t["jaxnn"], t["torch"], t.get("optax")
        other_rows.append([label, tj, f"{tt:.3f} ({impl})", "n/a" if to is None else to, f"{tj / tt:.2f}",
                           "n/a" if to is None else f"{tj / to:.2f}"])
        del fns, truns
    other_text = table(f"Other optimizers: one step over {n / 1e6:.1f}M float32 parameters ({len(shapes)} tensors)",
                       ["optimizer", "jaxnn ms", "torch ms (which impl)", "optax ms", "jaxnn/torch", "jaxnn/optax"],
                       other_rows)
    return adamw_text + "\n" + other_text


def bench_attention(quick: bool) -> str:
    """scaled_dot_product_attention at long sequences (issue 18): 4096 and 16384 tokens (the SDXL
    VAE's mid-block attention at 1024x1024 has 16384), head dim 64, 8 heads, no mask, float32:
    jaxnn's plain path (the L x S scores), its chunked path (online softmax over key blocks) and
    torch's CPU SDPA (a flash-attention kernel), forward time round-robin and each call's peak
    resident memory (VmHWM reset before the call). A plain-path case whose compiled program needs
    more temporary memory than half of the machine's available memory is compiled but not run."""
    import jaxnn.functional as F
    from jaxnn.functional._attention import _sdpa_path

    dev = _torch_device()
    rng = np.random.default_rng(0)
    shapes = [(1, 8, 4096, 64), (2, 8, 4096, 64), (1, 8, 16384, 64)] if not quick else [(1, 2, 256, 8)]
    blocks = {} if not quick else {"block_q": 64, "block_k": 64}
    try:
        avail_mib = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        avail_mib = float("inf")
    rows = []
    for shape in shapes:
        q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
        jq, jk, jv = (jnp.asarray(a) for a in (q, k, v))
        tq, tk, tv = (torch.tensor(a, device=dev) for a in (q, k, v))
        fns, temps = {}, {}
        for path in ("plain", "chunked"):
            with _sdpa_path(path, **blocks):  # a fresh function traced inside the block
                compiled = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v)).lower(jq, jk, jv).compile()
            temps[path] = compiled.memory_analysis().temp_size_in_bytes / 2**20
            if temps[path] < avail_mib / 2:
                fns[path] = jax_call(compiled, jq, jk, jv)

        def torch_sdpa(tq=tq, tk=tk, tv=tv):
            with torch.no_grad():
                torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
            _tsync()

        fns["torch"] = torch_sdpa
        big = shape[2] >= 16384
        t = stats_ms_interleaved(fns, repeats=(3 if big else 7) if not quick else 2, warmup=1)
        mem = {name: peak_rss_mb(fn) for name, fn in fns.items()}

        def cell(name: str) -> str:
            return spread(t[name]) if name in t else f"not run (XLA temp {temps[name] / 1024:.1f} GiB)"

        def mcell(name: str) -> str:
            extra = f" (XLA temp {temps[name]:.0f})" if name in temps else ""
            return (f"{mem[name]:.0f}" if name in mem else "-") + extra

        ratio = {p: f"{t[p][1] / t['torch'][1]:.2f}" if p in t else "-" for p in ("plain", "chunked")}
        rows.append([str(shape), cell("plain"), cell("chunked"), spread(t["torch"]),
                     f"{ratio['plain']} / {ratio['chunked']}", mcell("plain"), mcell("chunked"), f"{mem['torch']:.0f}"])
    text = table("scaled_dot_product_attention at long sequences, forward, float32 (batch, heads, tokens, head dim)",
                 ["shape", "jaxnn plain ms", "jaxnn chunked ms", "torch ms", "plain/torch / chunked/torch",
                  "plain peak MiB", "chunked peak MiB", "torch peak MiB"], rows)
    if dev == "cuda" or quick:  # on CPU (quick only: a smoke run) the automatic path is the chunked one
        text += "\n" + _bench_attention_half(quick, dev)
    return text


def _bench_attention_half(quick: bool, dev: str) -> str:
    """bfloat16 SDPA, forward and forward+backward: jaxnn's automatic path (on GPU cuDNN's flash
    attention through jax.nn.dot_product_attention), its plain path forced, and torch's SDPA, with
    the automatic path's largest difference from the float32 plain result in units of bfloat16's
    eps times max|value| (the plain path's own is at most 0.5)."""
    import jaxnn.functional as F
    from jaxnn.functional._attention import _sdpa_path

    rng = np.random.default_rng(1)
    shapes = [(2, 8, 4096, 64), (2, 8, 4096, 40), (1, 8, 16384, 64)] if not quick else [(1, 2, 64, 8)]
    rows = []
    for shape in shapes:
        q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
        jq, jk, jv = (jnp.asarray(a, jnp.bfloat16) for a in (q, k, v))
        tq, tk, tv = (torch.tensor(a, device=dev, dtype=torch.bfloat16, requires_grad=True) for a in (q, k, v))
        fns = {}
        for path in (None, "plain"):
            with _sdpa_path(path):
                fwd = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
                both = jax.jit(jax.grad(
                    lambda q, k, v: jnp.sum(F.scaled_dot_product_attention(q, k, v).astype(jnp.float32)),
                    argnums=(0, 1, 2)))
                hlo = fwd.lower(jq, jk, jv).as_text()
                fns[path or "auto", "fwd"] = jax_call(fwd.lower(jq, jk, jv).compile(), jq, jk, jv)
                fns[path or "auto", "bwd"] = jax_call(both.lower(jq, jk, jv).compile(), jq, jk, jv)
                if path is None:
                    fused = "cudnn" in hlo.lower()
                    auto = np.asarray(fwd(jq, jk, jv), np.float32)
        with _sdpa_path("plain"):
            ref = np.asarray(jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))(
                *(a.astype(jnp.float32) for a in (jq, jk, jv))))
        vmax = np.max(np.abs(np.asarray(jv, np.float32)))
        err = np.max(np.abs(auto - ref)) / (float(jnp.finfo(jnp.bfloat16).eps) * vmax)

        def t_fwd():
            with torch.no_grad():
                torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
            _tsync()

        def t_bwd():
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv).float().sum().backward()
            _tsync()

        fns["torch", "fwd"], fns["torch", "bwd"] = t_fwd, t_bwd
        t = stats_ms_interleaved(fns, repeats=7 if not quick else 2, warmup=1)
        for kind, label in (("fwd", "forward"), ("bwd", "forward+backward")):
            rows.append([f"{shape} {label}", "fused (cuDNN)" if fused else "plain/chunked", spread(t["auto", kind]),
                         spread(t["plain", kind]), spread(t["torch", kind]),
                         f"{t['auto', kind][1] / t['torch', kind][1]:.2f}", f"{err:.2f}" if kind == "fwd" else ""])
    return table("scaled_dot_product_attention, bfloat16: jaxnn's automatic path, its plain path and torch",
                 ["shape", "automatic path", "jaxnn auto ms", "jaxnn plain ms", "torch ms", "auto/torch",
                  "auto max err (bf16 eps x max abs v)"], rows)


def bench_layers(quick: bool) -> str:
    """The ops of whole models (issue 12): attention at Stable Diffusion's sizes, resampling,
    a BatchNorm2d training step and max pooling, each next to torch in one round-robin run."""
    import jaxnn.functional as F

    dev = _torch_device()
    rng = np.random.default_rng(0)
    reps = 9 if not quick else 2
    out = []

    # Attention at SD 1.x 64x64 latents: batch 2, 8 heads, 4096 tokens, head dim 40; cross-attention
    # over the 77 text tokens. jax.nn.dot_product_attention (XLA's own) for reference.
    n, h, l, e = (2, 8, 4096, 40) if not quick else (1, 2, 64, 8)
    rows = []
    for label, s in (("self-attention", l), ("cross-attention", 77 if not quick else 7)):
        q = rng.standard_normal((n, h, l, e)).astype(np.float32)
        k = rng.standard_normal((n, h, s, e)).astype(np.float32)
        v = rng.standard_normal((n, h, s, e)).astype(np.float32)
        jq, jk, jv = (jnp.asarray(a) for a in (q, k, v))
        tq, tk, tv = (torch.tensor(a, device=dev) for a in (q, k, v))
        ours = jax.jit(F.scaled_dot_product_attention)
        xla = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(
            q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3))

        def torch_sdpa():
            with torch.no_grad():
                torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
            _tsync()

        fns = {"jaxnn": jax_call(ours, jq, jk, jv), "torch": torch_sdpa, "jax.nn": jax_call(xla, jq, jk, jv)}
        t = stats_ms_interleaved(fns, repeats=reps)
        mem = {name: peak_rss_mb(fn) for name, fn in fns.items()}
        xla_temp = ours.lower(jq, jk, jv).compile().memory_analysis()
        temp = getattr(xla_temp, "temp_size_in_bytes", float("nan")) / 2**20
        rows.append([f"{label} {(n, h, l, e)} x {s} keys", spread(t["jaxnn"]), spread(t["torch"]),
                     spread(t["jax.nn"]), f"{t['jaxnn'][1] / t['torch'][1]:.2f}",
                     f"{mem['jaxnn']:.0f} (XLA temp {temp:.0f})", f"{mem['torch']:.0f}", f"{mem['jax.nn']:.0f}"])
    out.append(table("scaled_dot_product_attention forward (float32)",
                     ["case", "jaxnn ms", "torch ms", "jax.nn.dot_product_attention ms", "jaxnn/torch",
                      "jaxnn peak MiB", "torch peak MiB", "jax.nn peak MiB"], rows))

    # scaled_dot_product_attention's two paths forced (issue 18): the plain L x S formula and the
    # chunked (flash-attention-2 style) one that large inputs take; forward and gradient, with the
    # compiled programs' temporary memory.
    from jaxnn.functional._attention import _sdpa_path

    shape = (1, 8, 4096, 64) if not quick else (1, 2, 96, 8)
    blocks = {} if not quick else {"block_q": 32, "block_k": 32}
    q, k, v = (jnp.asarray(rng.standard_normal(shape).astype(np.float32)) for _ in range(3))
    fns, temps = {}, {}
    for path in ("plain", "chunked"):
        with _sdpa_path(path, **blocks):  # fresh functions, traced (compiled) inside the block
            fwd = jax.jit(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
            grad = jax.jit(jax.grad(lambda q, k, v: jnp.sum(F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                                    argnums=(0, 1, 2)))
            for name, f in (("forward", fwd), ("gradient", grad)):
                compiled = f.lower(q, k, v).compile()  # timed as compiled here: no retrace outside
                temps[path, name] = compiled.memory_analysis().temp_size_in_bytes / 2**20
                fns[path, name] = jax_call(compiled, q, k, v)
    rows = []
    for name in ("forward", "gradient"):
        t = stats_ms_interleaved({p: fns[p, name] for p in ("plain", "chunked")}, repeats=reps if name == "forward"
                                 else max(2, reps // 3))
        rows.append([f"causal {shape} {name}", spread(t["plain"]), spread(t["chunked"]),
                     f"{t['chunked'][1] / t['plain'][1]:.2f}", f"{temps['plain', name]:.0f}",
                     f"{temps['chunked', name]:.0f}"])
    out.append(table("scaled_dot_product_attention: plain vs chunked path (float32)",
                     ["case", "plain ms", "chunked ms", "chunked/plain", "plain XLA temp MiB",
                      "chunked XLA temp MiB"], rows))

    # nearest x2 upsampling (every SD up block) and a BatchNorm2d training step.
    rows = []
    shape = (2, 320, 64, 64) if not quick else (1, 4, 8, 8)
    x = rng.standard_normal(shape).astype(np.float32)
    jx, tx = jnp.asarray(x), torch.tensor(x, device=dev)
    ours = jax.jit(lambda x: F.interpolate(x, scale_factor=2.0))

    def torch_up():
        with torch.no_grad():
            torch.nn.functional.interpolate(tx, scale_factor=2.0)
        _tsync()

    t = stats_ms_interleaved({"jaxnn": jax_call(ours, jx), "torch": torch_up}, repeats=reps)
    rows.append([f"interpolate nearest x2 {shape}", "forward", spread(t["jaxnn"]), spread(t["torch"]),
                 f"{t['jaxnn'][1] / t['torch'][1]:.2f}"])

    shape = (32, 64, 56, 56) if not quick else (4, 8, 6, 6)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    jx, jg = jnp.asarray(x), jnp.asarray(g)
    stats = (jnp.zeros(c), jnp.ones(c), jnp.ones(c), jnp.zeros(c))

    def bn_step(x, g, mean, var, w, b):
        def f(x, w, b):
            return jnp.vdot(F.batch_norm(x, mean, var, w, b, training=True), g)

        grads = jax.grad(f, argnums=(0, 1, 2))(x, w, b)
        return grads, F.batch_norm_running_stats(x, mean, var)

    ours = jax.jit(bn_step)
    tbn = torch.nn.BatchNorm2d(c).to(dev).train()
    ttx = torch.tensor(x, device=dev, requires_grad=True)
    ttg = torch.tensor(g, device=dev)

    def torch_bn():
        ttx.grad = None
        tbn.zero_grad()
        tbn(ttx).backward(ttg)
        _tsync()

    t = stats_ms_interleaved({"jaxnn": jax_call(ours, jx, jg, *stats), "torch": torch_bn}, repeats=reps)
    rows.append([f"BatchNorm2d training step {shape}", "forward+backward+running stats", spread(t["jaxnn"]),
                 spread(t["torch"]), f"{t['jaxnn'][1] / t['torch'][1]:.2f}"])

    if hasattr(F, "max_pool2d"):
        shape = (32, 64, 112, 112) if not quick else (2, 4, 12, 12)
        x = rng.standard_normal(shape).astype(np.float32)
        jx, tx = jnp.asarray(x), torch.tensor(x, device=dev)
        for with_idx in (False, True):
            ours = jax.jit(lambda x, r=with_idx: F.max_pool2d(x, 3, 2, 1, return_indices=r))

            def torch_pool(r=with_idx):
                with torch.no_grad():
                    torch.nn.functional.max_pool2d(tx, 3, 2, 1, return_indices=r)
                _tsync()

            t = stats_ms_interleaved({"jaxnn": jax_call(ours, jx), "torch": torch_pool}, repeats=reps)
            rows.append([f"max_pool2d 3x3 stride 2 pad 1 {shape}" + (", return_indices" if with_idx else ""),
                         "forward", spread(t["jaxnn"]), spread(t["torch"]), f"{t['jaxnn'][1] / t['torch'][1]:.2f}"])
    out.append(table("resampling, BatchNorm2d, pooling (float32; median (min-max))",
                     ["op", "pass", "jaxnn ms", "torch ms", "jaxnn/torch"], rows))

    # YOLO SPP's stride-1 max pools (5/9/13 windows, padding k//2): forward and forward+backward,
    # with the XLA compile time of the gradient (47 s for 13x13 before the separable path).
    rows = []
    shape = (8, 256, 40, 40) if not quick else (1, 4, 9, 9)
    x = rng.standard_normal(shape).astype(np.float32)
    jx, tx = jnp.asarray(x), torch.tensor(x, device=dev)
    for k in (5, 9, 13) if not quick else (5,):
        fwd = jax.jit(lambda x, k=k: F.max_pool2d(x, k, 1, k // 2))
        start = time.perf_counter()
        grad = jax.jit(jax.grad(lambda x, k=k: jnp.sum(F.max_pool2d(x, k, 1, k // 2) ** 2))).lower(jx).compile()
        compile_s = time.perf_counter() - start

        def t_fwd(k=k):
            with torch.no_grad():
                torch.nn.functional.max_pool2d(tx, k, 1, k // 2)
            _tsync()

        def t_bwd(k=k):
            xg = tx.detach().requires_grad_(True)
            (torch.nn.functional.max_pool2d(xg, k, 1, k // 2) ** 2).sum().backward()
            _tsync()

        t = stats_ms_interleaved({"fwd": jax_call(fwd, jx), "bwd": jax_call(grad, jx), "tfwd": t_fwd,
                                  "tbwd": t_bwd}, repeats=reps)
        for name, ours, theirs in (("forward", "fwd", "tfwd"), ("forward+backward", "bwd", "tbwd")):
            rows.append([f"max_pool2d {k}x{k} stride 1 pad {k // 2} {shape}", name, spread(t[ours]),
                         spread(t[theirs]), f"{t[ours][1] / t[theirs][1]:.2f}",
                         f"{compile_s:.2f}" if ours == "bwd" else ""])
    out.append(table("SPP max pooling, stride 1 (float32; median (min-max))",
                     ["op", "pass", "jaxnn ms", "torch ms", "jaxnn/torch", "gradient compile s"], rows))
    return "\n".join(out)


def bench_rnn(quick: bool) -> str:
    """nn.LSTM (seq 256, batch 32, hidden 512; one layer) forward and forward+backward, jaxnn's
    lax.scan next to torch's kernel (oneDNN on CPU, cuDNN on GPU), float32."""
    import jaxnn.linen as jl

    dev = _torch_device()
    L_, n, h = (256, 32, 512) if not quick else (8, 2, 16)
    reps = 7 if not quick else 2
    x = np.random.default_rng(0).standard_normal((L_, n, h)).astype(np.float32)
    torch.manual_seed(0)
    t = torch.nn.LSTM(h, h).to(dev)
    lm = jl.LSTM(h, h)
    params = {"params": {k: jnp.asarray(v.detach().cpu().numpy()) for k, v in t.state_dict().items()}}
    jx, tx = jnp.asarray(x), torch.tensor(x, device=dev)
    fwd = jax.jit(lambda p, x: lm.apply(p, x)[0])
    bwd = jax.jit(jax.grad(lambda p, x: jnp.sum(lm.apply(p, x)[0] ** 2), argnums=(0, 1)))

    def torch_fwd():
        with torch.no_grad():
            t(tx)
        _tsync()

    def torch_bwd():
        xg = tx.detach().requires_grad_(True)
        (t(xg)[0] ** 2).sum().backward()
        _tsync()

    rows = []
    for name, ours, theirs in (("forward", jax_call(fwd, params, jx), torch_fwd),
                               ("forward+backward", jax_call(bwd, params, jx), torch_bwd)):
        s = stats_ms_interleaved({"jaxnn": ours, "torch": theirs}, repeats=reps)
        rows.append([f"LSTM({h}, {h}) seq {L_} batch {n}", name, spread(s["jaxnn"]), spread(s["torch"]),
                     f"{s['jaxnn'][1] / s['torch'][1]:.2f}"])
    out = table("recurrent layers (float32; median (min-max))", ["layer", "pass", "jaxnn ms", "torch ms",
                                                                 "jaxnn/torch"], rows)
    # Compile time against sequence length: one lax.scan per layer and direction, so the program
    # (and its compile time) is the same whatever the length.
    compile_rows = []
    for length in (16, 256, 4096) if not quick else (4, 64):
        xs = jnp.zeros((length, n, h))
        t0 = time.perf_counter()
        lowered = jax.jit(jax.grad(lambda p, x: jnp.sum(lm.apply(p, x)[0] ** 2))).lower(params, xs)
        t1 = time.perf_counter()
        lowered.compile()
        t2 = time.perf_counter()
        compile_rows.append([f"LSTM({h}, {h}) batch {n}", length, f"{(t1 - t0) * 1e3:.0f}", f"{(t2 - t1) * 1e3:.0f}"])
    return out + "\n" + table("LSTM forward+backward: trace and compile time against sequence length",
                              ["layer", "seq len", "trace ms", "XLA compile ms"], compile_rows)


BENCHES = {"conv": bench_conv, "norm": bench_norm, "act": bench_act, "optim": bench_optim, "layers": bench_layers,
           "attention": bench_attention,
           "checkpoint": bench_checkpoint, "rnn": bench_rnn, "transformer": bench_transformer, "models": bench_models,
           "pipeline": bench_pipeline}


def write_section(path: str, name: str, text: str) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    body = f"{start}\n{text}\n{end}"
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if start in doc:
        doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: body, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + body + "\n"
    with open(path, "w") as f:
        f.write(doc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=[*BENCHES, "all"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--write", metavar="MD", help="update this markdown file's sections")
    parser.add_argument("--tag", default="cpu", help="section suffix, e.g. cpu or h200")
    args = parser.parse_args(argv)
    names = list(BENCHES) if args.which == "all" else [args.which]
    env = _env()
    print(env, file=sys.stderr)
    for name in names:
        text = BENCHES[name](args.quick) + f"\n_{env}_\n"
        print(text)
        if args.write:
            write_section(args.write, f"{name}-{args.tag}", text)


if __name__ == "__main__":
    main()
