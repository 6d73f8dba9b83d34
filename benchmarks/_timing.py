"""Timing helpers: warm up, then the median of repeated runs, with the block that each library needs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def median_ms(fn: Callable[[], Any], *, repeats: int = 15, warmup: int = 3, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in milliseconds; ``fn`` must block until its result is ready."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def median_ms_interleaved(fns: dict[str, Callable[[], Any]], *, repeats: int = 15, warmup: int = 2,
                          block: int = 1) -> dict[str, float]:
    """Median ms of each function, measured round-robin (A, B, C, A, B, C, ...).

    On a shared, noisy machine, drift (other load, thermal state, a neighbour's spinning threads)
    then hits every implementation alike, so ratios between them are far more stable than when
    each is timed in its own block. ``block > 1``: see :func:`_interleaved`.
    """
    return {name: statistics.median(ts) for name, ts in _interleaved(fns, repeats, warmup, block).items()}


def _interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int, block: int) -> dict[str, list[float]]:
    """``repeats`` timings of each function, round-robin. With ``block > 1`` each turn runs a
    function ``block + 1`` times and keeps the last ``block``: the first call after a switch pays
    for the previous library's threads (torch's OpenMP workers spin-wait after each op and take a
    core from XLA's next call: +1 ms on a 2-core machine, measured), which neither library pays
    in a program that uses only one of them."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    turns = repeats if block == 1 else -(-repeats // block)
    for _ in range(turns):
        for name, fn in fns.items():
            if block > 1:
                fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def stats_ms_interleaved(fns: dict[str, Callable[[], Any]], *, repeats: int = 15, warmup: int = 2,
                         block: int = 1) -> dict[str, tuple[float, float, float]]:
    """(min, median, max) ms of each function, measured round-robin as in ``median_ms_interleaved``."""
    times = _interleaved(fns, repeats, warmup, block)
    return {name: (min(ts), statistics.median(ts), max(ts)) for name, ts in times.items()}


def spread(t: tuple[float, float, float]) -> str:
    """``median (min-max)`` in ms, for a table cell."""
    return f"{t[1]:.3f} ({t[0]:.3f}-{t[2]:.3f})"


def jax_call(f: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: jax.block_until_ready(f(*args))


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def peak_rss_mb(fn: Callable[[], Any]) -> float:
    """Peak resident memory (MiB) that one call of ``fn`` adds on top of what the process held before.

    Linux only: writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current resident
    size, so the same number is measured for torch and XLA, whose allocators differ. nan elsewhere.
    """
    def status(field: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024
        return float("nan")

    try:
        # Hand memory that the allocators freed but kept back to the system first, so that a run
        # that reuses it counts as what it is (glibc keeps freed blocks resident otherwise).
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except (OSError, AttributeError):
        return float("nan")
    before = status("VmRSS")
    fn()
    return status("VmHWM") - before
