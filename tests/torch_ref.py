"""Differential testing against PyTorch: same inputs, compare outputs and vjp gradients."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import torch

torch.set_num_threads(1)

_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.float16): torch.float16,
    np.dtype(ml_dtypes.bfloat16): torch.bfloat16,
}


def to_torch(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    a = np.asarray(a)
    if a.dtype == ml_dtypes.bfloat16:
        t = torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    else:
        t = torch.from_numpy(np.array(a))
    return t.requires_grad_(requires_grad) if requires_grad else t


def to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.float().numpy()
    return t.numpy()


def as_f(a) -> np.ndarray:
    """Compare low-precision results in float32 (exact widening)."""
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype in (ml_dtypes.bfloat16, np.float16) else a


def round_to(values, dtype) -> np.ndarray:
    """float64 ``values`` correctly rounded (to nearest, ties to even) to ``dtype``, as float64.

    ``astype`` is not enough for bfloat16: ml_dtypes casts float64 through float32, rounding twice.
    Here float32 is reached by rounding to odd (truncate, then set the last bit if inexact), which
    makes the second rounding exact for any format with at most 22 significand bits.
    """
    v = np.asarray(values, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        f = v.astype(np.float32)
        f = np.where(np.isfinite(v) & (np.abs(f.astype(np.float64)) > np.abs(v)), np.nextafter(f, np.float32(0)), f)
        inexact = np.isfinite(v) & (f.astype(np.float64) != v)
        f = (f.view(np.uint32) | inexact.astype(np.uint32)).view(np.float32)
        return f.astype(dtype).astype(np.float64)


def assert_close(actual, expected, *, rtol: float, atol: float, what: str = "output") -> None:
    actual, expected = as_f(actual), as_f(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def check(
    jfn: Callable,
    tfn: Callable,
    inputs: Sequence[np.ndarray],
    *,
    rtol: float,
    atol: float,
    grad: bool = True,
    grad_rtol: float | None = None,
    grad_atol: float | None = None,
    jit: bool = True,
    exact: bool = False,
    seed: int = 0,
) -> None:
    """Run ``jfn`` (jaxnn) and ``tfn`` (torch) on the same ``inputs``; compare outputs and grads.

    Gradients: one random cotangent, jax.vjp against torch autograd, for every input.
    """
    j_inputs = [jnp.asarray(a) for a in inputs]
    fn = jax.jit(jfn) if jit else jfn
    j_out = fn(*j_inputs)
    t_inputs = [to_torch(a, requires_grad=bool(grad)) for a in inputs]
    t_out = tfn(*t_inputs)
    assert j_out.dtype == jnp.dtype(np.asarray(inputs[0]).dtype), (j_out.dtype, inputs[0].dtype)
    if exact:
        np.testing.assert_array_equal(as_f(j_out), to_numpy(t_out))
    else:
        assert_close(j_out, to_numpy(t_out), rtol=rtol, atol=atol)
    if not grad:
        return
    cot = np.random.default_rng(seed).standard_normal(j_out.shape).astype(np.float32)
    cot = cot.astype(np.asarray(inputs[0]).dtype)
    def grads(args, ct):
        return jax.vjp(jfn, *args)[1](ct)

    j_grads = (jax.jit(grads) if jit else grads)(j_inputs, jnp.asarray(cot))
    t_out.backward(to_torch(cot))
    for i, (jg, ti) in enumerate(zip(j_grads, t_inputs, strict=True)):
        tg = ti.grad if ti.grad is not None else torch.zeros_like(ti)
        assert_close(
            jg,
            to_numpy(tg),
            rtol=grad_rtol if grad_rtol is not None else rtol,
            atol=grad_atol if grad_atol is not None else atol,
            what=f"gradient of input {i}",
        )


def reduction_tol(k: int, dtype=np.float32, ulps: float = 4.0) -> float:
    """Relative tolerance for a result that sums ``k`` terms in ``dtype``: ``ulps * eps * sqrt(k)``.

    Two correct implementations of a reduction differ by the order they add in (XLA's fusion
    decisions, the CPU's vector width, torch's kernel dispatch): the rounding error grows like
    ``sqrt(k)`` for random data. Never below ``ulps * eps``.
    """
    return ulps * float(np.finfo(dtype).eps) * max(1.0, float(np.sqrt(k)))


def assert_close_reduction(
    actual, expected, k: int, *, ulps: float = 4.0, scale: float | None = None, what: str = "output"
) -> None:
    """``assert_close`` with :func:`reduction_tol`; the absolute part scales with ``scale``.

    ``scale`` is the magnitude of the summed terms (default ``max|expected|``); pass it where the
    result cancels (a sum of terms of both signs can be far smaller than its terms).
    """
    expected_f = as_f(np.asarray(expected))
    tol = reduction_tol(k, np.float32 if expected_f.dtype != np.float64 else np.float64, ulps)
    if scale is None:
        scale = float(np.max(np.abs(expected_f))) if expected_f.size else 1.0
    assert_close(actual, expected, rtol=tol, atol=tol * max(scale, 1e-30), what=what)


def outcome(fn: Callable[[], object]) -> tuple[str, object]:
    """('ok', value) or ('error', exception) so tests can compare torch's and jaxnn's verdicts."""
    try:
        return "ok", fn()
    except Exception as e:  # noqa: BLE001 - we classify, callers assert
        return "error", e


def randn(rng: np.random.Generator, shape, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)



def adamw_losses(loss_fn: Callable, params, steps: int = 20, lr: float = 1e-2) -> list[float]:
    """The losses of ``steps`` jitted ``jaxnn.optim.adamw(lr)`` steps on ``loss_fn(params)``, each taken
    before its update (as a torch loop logs ``loss.item()`` before ``opt.step()``)."""
    import optax

    from jaxnn import optim

    tx = optim.adamw(lr)
    state = tx.init(params)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(loss_fn)(p)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    losses = []
    for _ in range(steps):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    return losses


@contextlib.contextmanager
def no_warning() -> Iterator[None]:
    """Fail on any warning inside the block (e.g. a scheduler built from another scheduler's
    options, which diffusers accepts silently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
