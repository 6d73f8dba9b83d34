"""jaxnn's own CPU kernels: XLA FFI custom calls, compiled from the C++ sources beside this file.

Why our own: some ops cannot reach torch's CPU speed as XLA ops (group_norm: XLA does not fuse a
reduction with the elementwise pass that consumes it, so its input is read from memory twice and in
separate loops), and no library ships such kernels for JAX with torch's semantics.

Why built on first use rather than when the package is installed: the kernel must be compiled
against the XLA FFI headers of the jaxlib that will run it (``jax.ffi.include_dir()``), and for the
CPU it runs on (``-march=native``); the distribution stays pure Python. The first call that needs a
kernel runs the system's C++ compiler once (about a second) and caches the shared library under
``$JAXNN_KERNEL_CACHE`` (default ``$XDG_CACHE_HOME/jaxnn/kernels`` or ``~/.cache/jaxnn/kernels``),
keyed by the source, jaxlib's version, the compiler, its flags and the CPU. ``CXX`` picks the
compiler (default ``c++``, ``g++`` or ``clang++``), ``JAXNN_KERNEL_FLAGS`` replaces
``-march=native``. Where no compiler works, jaxnn warns once and uses its XLA implementation (same
results to float32 rounding, slower); ``JAXNN_CPU_KERNELS=0`` turns the kernels off without a warning.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import jax
import jaxlib

_HERE = Path(__file__).resolve().parent
# kernel name -> (source file, ((FFI target name, exported handler symbol), ...))
_KERNELS = {"group_norm": ("group_norm.cc", (("jaxnn_group_norm_f32", "JaxnnGroupNormF32"),))}
_LOCK = threading.Lock()


class KernelBuildWarning(UserWarning):
    """A jaxnn CPU kernel could not be built or loaded; the XLA implementation is used instead."""


def enabled() -> bool:
    """False when ``JAXNN_CPU_KERNELS`` is ``0`` (or ``false``/``off``/``no``)."""
    return os.environ.get("JAXNN_CPU_KERNELS", "1").strip().lower() not in ("0", "false", "off", "no")


def _cache_dir() -> Path:
    env = os.environ.get("JAXNN_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxnn" / "kernels"


def _compiler() -> list[str]:
    """``$CXX`` as a command (it may carry arguments: ``ccache g++``), else the first of c++, g++,
    clang++ on the PATH. A ``$CXX`` that does not run fails the build (and warns): it is not
    silently replaced by another compiler."""
    if os.environ.get("CXX", "").strip():
        return shlex.split(os.environ["CXX"])
    for name in ("c++", "g++", "clang++"):
        if shutil.which(name):
            return [name]
    raise RuntimeError("no C++ compiler found (set CXX, or install g++ or clang++)")


def _cpu_fingerprint() -> str:
    """What -march=native depends on: the machine and, on Linux, the CPU's feature flags."""
    parts = [platform.machine(), platform.processor()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features", "model name")):
                    parts.append(line.strip())
                if len(parts) >= 5:
                    break
    except OSError:
        pass
    return "\n".join(parts)


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def _build(name: str) -> Path:
    """Compile kernel ``name`` into the cache (once per source, jaxlib, compiler and CPU)."""
    source_file, _ = _KERNELS[name]
    source = _HERE / source_file
    cxx = _compiler()
    version = _run([*cxx, "--version"]).stdout
    include = jax.ffi.include_dir()
    # JAXNN_KERNEL_FLAGS replaces -march=native (make test-isa holds the kernels to older ISAs)
    flags = os.environ.get("JAXNN_KERNEL_FLAGS", "").split()
    key = hashlib.sha256(
        b"\0".join(
            s.encode() if isinstance(s, str) else s
            for s in (source.read_bytes(), jaxlib.__version__, " ".join(cxx), version, _cpu_fingerprint(),
                      " ".join(flags), "v1")
        )
    ).hexdigest()[:20]
    cache = _cache_dir()
    out = cache / f"{name}-{key}.so"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    base = [*cxx, "-O3", "-std=c++17", "-shared", "-fPIC", "-I", include, str(source)]
    tries = [flags] if flags else [["-march=native"], []]
    # a unique temporary name, then an atomic rename: concurrent processes (pytest-xdist workers)
    # may build the same kernel at once
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    try:
        errors = []
        for extra in tries:  # -march=native is refused by some compilers/targets: then the default
            proc = _run([*base, *extra, "-o", tmp])
            if proc.returncode == 0 and os.path.getsize(tmp) > 0:
                os.replace(tmp, out)
                return out
            errors.append(proc.stderr.strip()[-2000:] or f"exit status {proc.returncode}, no library written")
        raise RuntimeError(f"{' '.join(cxx)} failed:\n" + "\n".join(errors))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.cache
def _load(name: str) -> bool:
    """Build, load and register kernel ``name`` once per process (``available`` checks ``enabled``)."""
    try:
        path = _build(name)
        try:
            lib = ctypes.cdll.LoadLibrary(str(path))
        except OSError:
            path.unlink(missing_ok=True)  # a damaged cache entry: build it again, once
            lib = ctypes.cdll.LoadLibrary(str(_build(name)))
        for target, symbol in _KERNELS[name][1]:
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    except Exception as e:  # noqa: BLE001 - any failure means: use the XLA implementation
        warnings.warn(
            f"jaxnn could not build its CPU kernel {name!r} ({type(e).__name__}: {e}); using the "
            "XLA implementation instead (same results, slower). Set JAXNN_CPU_KERNELS=0 to silence this.",
            KernelBuildWarning,
            stacklevel=3,
        )
        return False
    return True


def available(name: str) -> bool:
    """Whether kernel ``name`` is built and registered for the CPU (building it on first call)."""
    if not enabled():
        return False
    with _LOCK:
        return _load(name)
