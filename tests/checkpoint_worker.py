"""Sharded checkpoint loading on 8 simulated CPU devices (launched by test_checkpoint.py).

Usage: python checkpoint_worker.py WORKDIR OUT_JSON

Writes a checkpoint, creates the model abstractly (``nnx.eval_shape`` / ``jax.eval_shape`` of linen's
``init``), loads it with a NamedSharding per parameter and reports, as JSON: whether the values and
shardings are right, the loader's peak traced host memory, the largest tensor's and the model's
size, and the peak of reading the whole file into host memory (the measurement's control).
Everything happens under ``__main__``: pytest imports this file while collecting doctests, and
that import must not touch XLA_FLAGS or JAX in the test process.
"""

import json
import os
import sys


def main() -> None:
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    os.environ["XLA_FLAGS"] = " ".join([*flags, "--xla_force_host_platform_device_count=8"])
    os.environ["JAX_PLATFORMS"] = "cpu"
    import gc
    import tracemalloc

    import jax
    import jax.numpy as jnp
    import ml_dtypes
    import numpy as np
    from flax import nnx
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import jaxnn
    import jaxnn.linen as jl
    import jaxnn.nnx as jn

    workdir, out = sys.argv[1], sys.argv[2]
    mesh = jax.make_mesh((8,), ("x",))
    sizes = [(256, 512), (512, 256)] * 3
    rng = np.random.default_rng(0)
    arrays = {}
    for i, (a, b) in enumerate(sizes):
        arrays[f"{i}.weight"] = rng.standard_normal((b, a)).astype(np.float32)
        arrays[f"{i}.bias"] = rng.standard_normal(b).astype(np.float32)
    path = os.path.join(workdir, "model.safetensors")
    jaxnn.save_file(arrays, path)
    f8 = {k: v.astype(ml_dtypes.float8_e4m3fn) for k, v in arrays.items()}
    path8 = os.path.join(workdir, "model8.safetensors")
    jaxnn.save_file(f8, path8)

    def sharding_of(key: str) -> NamedSharding:
        return NamedSharding(mesh, P("x", None) if key.endswith("weight") else P("x"))

    def nnx_model():
        return jn.Sequential(*[jn.Linear(a, b, rngs=nnx.Rngs(0)) for a, b in sizes])

    linen_model = jl.Sequential([jl.Linear(a, b) for a, b in sizes])

    def load_nnx(file):
        model = nnx.eval_shape(nnx_model)  # abstract: no parameter is ever created on the host
        return measure(lambda: jn.load_state_dict(model, file, sharding=sharding_of), lambda: jn.state_dict(model))

    def load_linen(file):
        shapes = jax.eval_shape(linen_model.init, jax.random.key(0), jnp.ones((1, 256)))
        loaded = []
        return measure(lambda: loaded.append(jl.load_state_dict(shapes, file, sharding=sharding_of)[0]),
                       lambda: jl.state_dict(loaded[0]))

    def measure(load, result):
        gc.collect()
        tracemalloc.start()
        load()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result(), peak

    report = {"devices": len(jax.devices())}
    for case, fn, file, want in (("nnx", load_nnx, path, arrays), ("linen", load_linen, path, arrays),
                                 ("float8", load_nnx, path8, {k: v.astype(np.float32) for k, v in f8.items()})):
        fn(file)  # warm up JAX's and Flax's first-use caches outside the measurement
        got, peak = fn(file)
        _, naive_peak = measure(lambda file=file: jaxnn.load_file(file), lambda: None)
        values_equal = sorted(got) == sorted(want) and all(np.array_equal(np.asarray(got[k]), want[k]) for k in want)
        shardings_ok = all(
            got[k].sharding == sharding_of(k)
            and all(s.data.shape == (want[k].shape[0] // 8, *want[k].shape[1:]) for s in got[k].addressable_shards)
            for k in want)
        file_bytes = [v.nbytes for v in (f8 if case == "float8" else arrays).values()]
        report[case] = {"values_equal": bool(values_equal), "shardings_ok": bool(shardings_ok), "peak": peak,
                        "naive_peak": naive_peak, "largest": max(v.nbytes for v in want.values()),
                        "model": sum(v.nbytes for v in want.values()), "file": sum(file_bytes)}
    # a concrete model already sharded keeps its shardings when loaded without `sharding`
    model = nnx.eval_shape(nnx_model)
    jn.load_state_dict(model, path, sharding=sharding_of)
    jn.load_state_dict(model, path8)  # float8 values, cast to the float32 variables
    got = jn.state_dict(model)
    report["kept_sharding"] = all(got[k].sharding == sharding_of(k) and
                                  np.array_equal(np.asarray(got[k]), f8[k].astype(np.float32)) for k in arrays)
    # a callable (or mapping) giving None for a key means "no sharding given": the variable keeps its
    # own, as without `sharding`; a replicated sharding puts the whole tensor on every device
    jn.load_state_dict(model, path, sharding=lambda key: None)
    jn.load_state_dict(model, path, sharding={k: None for k in arrays})
    got = jn.state_dict(model)
    report["kept_sharding_none"] = all(
        got[k].sharding == sharding_of(k) and np.array_equal(np.asarray(got[k]), arrays[k]) for k in arrays)
    replicated = NamedSharding(mesh, P())
    jn.load_state_dict(model, path, sharding=lambda key: replicated)
    got = jn.state_dict(model)
    report["replicated"] = all(got[k].sharding == replicated and len(got[k].addressable_shards) == 8
                               and all(np.array_equal(np.asarray(s.data), arrays[k]) for s in got[k].addressable_shards)
                               for k in arrays)
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
