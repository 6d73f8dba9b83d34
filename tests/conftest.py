"""Strict JAX for the whole suite, 8 simulated CPU devices for the sharding tests, seeded RNGs."""

import os

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
