"""Strict JAX for the whole suite, 8 simulated CPU devices for the sharding tests, seeded RNGs."""

import os
import warnings

# Must happen before JAX initialises its backends (the sharding tests need 8 CPU devices). Flags
# already set (`make test-isa` sets --xla_cpu_max_isa) are kept.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "jaxnn",
    deadline=None,
    derandomize=True,  # seeded: the same cases every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("jaxnn")


_XLA_ISAS = {"SSE4_2", "AVX", "AVX2", "AVX512", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX"}


def pytest_configure(config) -> None:
    """`make test-isa` must run at the levels it names: XLA only logs an unknown
    --xla_cpu_max_isa, and torch silently keeps its best kernels for an unknown or unsupported
    ATEN_CPU_CAPABILITY, so either would quietly test the native level instead."""
    import torch

    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith("--xla_cpu_max_isa=") and flag.split("=", 1)[1].upper() not in _XLA_ISAS:
            raise pytest.UsageError(f"unknown XLA CPU ISA in XLA_FLAGS: {flag} (known: {sorted(_XLA_ISAS)})")
    wanted = os.environ.get("ATEN_CPU_CAPABILITY")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about an invalid value; we raise below
        running = torch.backends.cpu.get_cpu_capability()
    if wanted and running.lower() != wanted.lower():
        raise pytest.UsageError(
            f"ATEN_CPU_CAPABILITY={wanted} did not take effect: torch runs {running} "
            "(unknown level, or the CPU lacks it)"
        )


def pytest_report_header(config) -> list[str]:
    """Which kernels the run exercises: torch's CPU dispatch level and XLA's CPU flags."""
    import torch

    return [
        f"torch {torch.__version__} CPU capability: {torch.backends.cpu.get_cpu_capability()} "
        f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'unset')})",
        f"jax {jax.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}",
    ]


@pytest.fixture
def rng() -> np.random.Generator:
    """A NumPy generator with a fixed seed: inputs are shared by torch and jaxnn."""
    return np.random.default_rng(0)


@pytest.fixture
def key() -> jax.Array:
    """A fixed-seed JAX key."""
    return jax.random.key(0)
