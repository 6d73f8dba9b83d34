"""One process of the two-process data-parallel test (launched by test_scaling.py).

Usage: python multiproc_worker.py PROCESS_ID PORT STEPS BATCH OUT_JSON

Everything happens under ``__main__``: pytest imports this file while collecting doctests, and
that import must not touch XLA_FLAGS or JAX in the test process.
"""

import json
import os
import sys


def main() -> None:
    # One device per process; other flags (make test-isa's --xla_cpu_max_isa) are kept.
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    os.environ["XLA_FLAGS"] = " ".join([*flags, "--xla_force_host_platform_device_count=1"])
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    import train_sharded

    pid, port, steps, batch, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    assert jax.process_count() == 2 and len(jax.devices()) == 2 and len(jax.local_devices()) == 1
    mesh = train_sharded.make_mesh(2, 1, devices=jax.devices())
    half = batch // 2
    local = ((x[pid * half : (pid + 1) * half], y[pid * half : (pid + 1) * half])
             for x, y in train_sharded.batches(steps, batch))
    losses, params, _ = train_sharded.train(steps, batch, mesh, local_batches=local)
    if pid == 0:
        flat = {
            "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v.addressable_data(0)).tolist()
            for path, v in jax.tree_util.tree_flatten_with_path(params)[0]
        }
        with open(out, "w") as f:
            json.dump({"losses": losses, "params": flat}, f)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
