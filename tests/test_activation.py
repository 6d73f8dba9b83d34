"""The activation family against torch: values, gradients (kinks included), dtypes, errors.

float16/bfloat16 are checked bit for bit against an ISA-independent float64 reference rounded where
torch's op sequence rounds; torch itself is checked against the same reference, with its known
deviations counted (KNOWN_TORCH_DEVIATIONS). Non-finite inputs are checked against the mathematical
limits, not against torch's vectorised kernels (which disagree with each other at inf).
"""

import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch_ref import as_f, check, randn, round_to, to_numpy, to_torch

import jaxnn.functional as F

# Points where torch pins a gradient (kinks, thresholds) and far-out values that overflow naive code.
SPECIAL = np.array(
    [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 2.5, 3.0, -3.0, 6.0, 5.0, 10.0, 20.0, -20.0, 30.0,
     -30.0, 88.0, -88.0, 100.0, -100.0, 1e-3, -1e-3, 0.7, -0.7],
    np.float32,
)


def special_input(rng, shape=(4, 6, 5)):
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    flat = x.reshape(-1)
    flat[: SPECIAL.size] = SPECIAL
    return x


def gelu_t(x):
    return TF.gelu(x, approximate="tanh")


ACTIVATIONS = [
    ("relu", F.relu, TF.relu),
    ("relu6", F.relu6, TF.relu6),
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", F.elu, TF.elu),
    ("elu_0.7", lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    ("selu", F.selu, TF.selu),
    ("celu_1.3", lambda x: F.celu(x, 1.3), lambda x: TF.celu(x, 1.3)),
    ("gelu", F.gelu, TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), gelu_t),
    ("silu", F.silu, TF.silu),
    ("mish", F.mish, TF.mish),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("hardtanh", F.hardtanh, TF.hardtanh),
    ("hardtanh_-0.5_2", lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0)),
    ("hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    ("hardswish", F.hardswish, TF.hardswish),
    ("softplus", F.softplus, TF.softplus),
    ("softplus_2_5", lambda x: F.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)),
    ("softsign", F.softsign, TF.softsign),
    ("logsigmoid", F.logsigmoid, TF.logsigmoid),
    ("tanhshrink", F.tanhshrink, TF.tanhshrink),
    ("softshrink", F.softshrink, TF.softshrink),
    ("softshrink_0.7", lambda x: F.softshrink(x, 0.7), lambda x: TF.softshrink(x, 0.7)),
    ("hardshrink", F.hardshrink, TF.hardshrink),
    ("hardshrink_1", lambda x: F.hardshrink(x, 1.0), lambda x: TF.hardshrink(x, 1.0)),
    ("hardshrink_0.7", lambda x: F.hardshrink(x, 0.7), lambda x: TF.hardshrink(x, 0.7)),
    ("threshold", lambda x: F.threshold(x, 1.0, -2.0), lambda x: TF.threshold(x, 1.0, -2.0)),
    ("threshold_0.7", lambda x: F.threshold(x, 0.7, -2.1), lambda x: TF.threshold(x, 0.7, -2.1)),
    ("glu", F.glu, TF.glu),
    ("glu_dim1", lambda x: F.glu(x, 1), lambda x: TF.glu(x, 1)),
    ("softmax", lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    ("log_softmax", lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
    ("geglu", F.geglu, lambda x: x.chunk(2, -1)[0] * TF.gelu(x.chunk(2, -1)[1])),
    ("geglu_tanh", lambda x: F.geglu(x, approximate="tanh"),
     lambda x: x.chunk(2, -1)[0] * gelu_t(x.chunk(2, -1)[1])),
    ("swiglu", F.swiglu, lambda x: x.chunk(2, -1)[0] * TF.silu(x.chunk(2, -1)[1])),
    ("reglu", lambda x: F.reglu(x, 1), lambda x: x.chunk(2, 1)[0] * TF.relu(x.chunk(2, 1)[1])),
]
IDS = [a[0] for a in ACTIVATIONS]


# ---------------------------------------------------------------------------------------------
# float16 / bfloat16: float64 references rounded exactly where torch's op sequence rounds.
#
# Each reference is ``ref(x, ct, r, rg) -> (value, grad)`` in float64 on half-precision inputs:
# ``r`` rounds a forward result to the half dtype, ``rg`` a backward one. Inside one torch kernel
# nothing rounds (the exact maths); every torch op (a kernel, or one op of a composite) rounds
# once. That is the "correctly rounded op sequence", independent of any CPU's vector unit.
#
# The rounders also record near-ties: an exact value closer to a tie between two half-precision
# neighbours than a float32 kernel's error (_TIE_ULPS float32 ulps of the value, or of the terms it
# is summed from where they cancel), which torch's and jaxnn's float32 kernels can round either
# way. There a result may be off by that error plus one unit in the last place (`slack`); every
# other element must be exact.
_TIE_ULPS = 16
_SQRT1_2 = math.sqrt(0.5)
_KB, _KK = float(np.float32(math.sqrt(2 / math.pi))), float(np.float32(0.044715))  # torch's constants
_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _f32(c):
    return float(np.float32(c))


def _half_step(a, dtype, up):
    """The half-precision neighbour of each (representable) ``a`` above (``up``) or below it."""
    with np.errstate(invalid="ignore"):
        bits = np.asarray(a).astype(dtype).view(np.uint16).astype(np.int64)
    neg = (bits & 0x8000) != 0
    step = np.where(neg, -1, 1) * (1 if up else -1)
    nb = np.where((bits & 0x7FFF) == 0, np.where(up, 1, 0x8001), bits + step)
    return (nb & 0xFFFF).astype(np.uint16).view(dtype).astype(np.float64)


class _Rounder:
    """Correct rounding to a half dtype that remembers near-ties and how far off they may round."""

    def __init__(self, dtype):
        self.dtype, self.tie, self.slack = dtype, np.zeros((), bool), np.zeros(())

    def __call__(self, v, scale=0.0):
        """``v`` rounded; ``scale``: the size of the terms ``v`` was summed from, if they cancel."""
        v = np.asarray(v, np.float64)
        out = round_to(v, self.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            other = np.where(out >= v, _half_step(out, self.dtype, False), _half_step(out, self.dtype, True))
            err = _TIE_ULPS * np.spacing(np.maximum(np.abs(v), scale).astype(np.float32)).astype(np.float64)
            tie = np.isfinite(v) & (np.abs(v - (out + other) / 2) <= err)
        self.tie = self.tie | tie
        self.slack = np.maximum(self.slack, np.where(tie, err, 0.0))
        return out


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _gelu64(x):
    return x * 0.5 * _erfc(-x * _SQRT1_2)


def _dgelu64(x):
    return 0.5 * _erfc(-x * _SQRT1_2) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _dgelu_terms64(x):
    return 0.5 * _erfc(-x * _SQRT1_2) + np.abs(x) * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _gelu_tanh64(x):  # 0.5 x (1 + tanh u) = x sigmoid(2u): no cancellation
    return x * _sigmoid64(2 * _KB * (x + _KK * x**3))


def _dgelu_tanh64(x):
    s = _sigmoid64(2 * _KB * (x + _KK * x**3))
    return s + 2 * x * s * (1 - s) * _KB * (1 + 3 * _KK * x * x)


def _dgelu_tanh_terms64(x):
    s = _sigmoid64(2 * _KB * (x + _KK * x**3))
    return s + 2 * np.abs(x) * s * (1 - s) * _KB * (1 + 3 * _KK * x * x)


def _silu64(x):
    return x * _sigmoid64(x)


def _dsilu64(x):
    s = _sigmoid64(x)
    return s * (1 + x * (1 - s))


def _dsilu_terms64(x):
    s = _sigmoid64(x)
    return s * (1 + np.abs(x) * (1 - s))


def _mish64(x):
    return x * np.tanh(np.logaddexp(x, 0.0))


def _dmish64(x, terms=False):
    t = np.tanh(np.logaddexp(x, 0.0))
    return t + (np.abs(x) if terms else x) * _sigmoid64(x) * (1 - t * t)


def _fused(f, df, df_terms=None):
    """One torch kernel: the value and the gradient (from the input) are each rounded once.
    ``df_terms``: the size of the terms of ``df``, where they cancel (gelu' has a zero)."""
    return lambda x, ct, r, rg: (r(f(x)), rg(ct * df(x), 0.0 if df_terms is None else np.abs(ct) * df_terms(x)))


def _elu_ref(alpha=1.0, scale=1.0, input_scale=1.0):
    neg, pos, ins = _f32(_f32(alpha) * _f32(scale)), _f32(scale), _f32(input_scale)  # torch's float constants
    return _fused(
        lambda x: np.where(x > 0, x * pos, neg * np.expm1(np.minimum(x, 0) * ins)),
        lambda x: np.where(x > 0, pos, ins * neg * np.exp(np.minimum(x, 0) * ins)),
    )


def _softplus_ref(beta=1.0, threshold=20.0):
    b, t = _f32(beta), _f32(threshold)
    return _fused(
        lambda x: np.where(x * b > t, x, np.logaddexp(x * b, 0.0) / b),
        lambda x: np.where(x * b > t, 1.0, _sigmoid64(x * b)),
    )


def _leaky_ref(slope):
    s = _f32(slope)
    return _fused(lambda x: np.where(x > 0, x, x * s), lambda x: np.where(x > 0, 1.0, s))


def _clamp_ref(lo, hi):  # relu, relu6, hardtanh: exact values; gradient 1 strictly inside
    return lambda x, ct, r, rg: (np.clip(x, lo, hi), np.where((x > lo) & (x < hi), ct, 0.0))


def _shrink_ref(lambd, soft):
    def ref(x, ct, r, rg):
        lam_h = r(lambd)  # torch's backward (and hardshrink's forward) compare in the half dtype
        if soft:  # softshrink's forward compares in float32
            lam = _f32(lambd)
            y = r(np.where(x > lam, x - lam, np.where(x < -lam, x + lam, 0.0)))
        else:
            y = np.where(np.abs(x) <= lam_h, 0.0, x)
        return y, np.where(np.abs(x) <= lam_h, 0.0, ct)

    return ref


def _threshold_ref(threshold, value):  # torch compares in float32; `value` is rounded
    t = _f32(threshold)
    return lambda x, ct, r, rg: (np.where(x <= t, r(value), x), np.where(x <= t, 0.0, ct))


def _sigmoid_ref(x, ct, r, rg):  # backward reads the rounded output
    y = r(_sigmoid64(x))
    return y, rg(ct * (1 - y) * y)


def _tanh_ref(x, ct, r, rg):
    y = r(np.tanh(x))
    return y, rg(ct * (1 - y * y))


def _logsigmoid_ref(x, ct, r, rg):  # backward reads the buffer exp(-|x|), stored rounded
    b = rg(np.exp(-np.abs(x)))
    slope = np.where(x < 0, 1 - b / (1 + b), b / (1 + b))
    return r(np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))), rg(ct * slope)


def _softsign_ref(x, ct, r, rg):  # input / (input.abs() + 1): two ops; div's backward is three
    d = r(np.abs(x) + 1)
    y = r(x / d)
    return y, rg(rg(ct / d) + rg(-ct * rg(y / d)) * np.sign(x))


def _tanhshrink_ref(x, ct, r, rg):  # input - input.tanh(); the two gradient paths add in half
    t = r(np.tanh(x))
    return r(x - t), rg(ct + rg(-ct * (1 - t * t)))


def _hardswish_ref(x, ct, r, rg):
    slope = np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0))
    return r(x * np.clip(x + 3, 0, 6) / 6), rg(ct * slope)


def _hardsigmoid_ref(x, ct, r, rg):
    return r(np.clip(x + 3, 0, 6) / 6), rg(ct * np.where((x > -3) & (x < 3), _f32(1 / 6), 0.0))


def _glu_ref(dim):
    def ref(x, ct, r, rg):  # one kernel forward; the backward stores sigmoid(b) rounded first
        a, b = np.split(x, 2, axis=dim)
        s = rg(_sigmoid64(b))
        return r(a * _sigmoid64(b)), np.concatenate([rg(s * ct), rg((1 - s) * s * a * ct)], axis=dim)

    return ref


def _gated_ref(act, dact, dact_terms=None, dim=-1, exact=False):
    def ref(x, ct, r, rg):  # h * act(gate): act rounds, the product rounds; backward likewise
        h, g = np.split(x, 2, axis=dim)
        a = act(g) if exact else r(act(g))
        grad_a = rg(ct * h)
        grad_g = rg(grad_a * dact(g), 0.0 if dact_terms is None else np.abs(grad_a) * dact_terms(g))
        return r(h * a), np.concatenate([rg(ct * a), grad_g], axis=dim)

    return ref


def _softmax_ref(dim):
    def ref(x, ct, r, rg):
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        y = r(e / e.sum(axis=dim, keepdims=True))
        scale = y * (np.abs(ct) + (np.abs(ct) * y).sum(axis=dim, keepdims=True))
        return y, rg(y * (ct - (ct * y).sum(axis=dim, keepdims=True)), scale)

    return ref


def _log_softmax_ref(dim):
    def ref(x, ct, r, rg):
        s = x - x.max(axis=dim, keepdims=True)
        # log(sum(exp(s))) = log1p(sum less one exact 1): float64's 1 + 1e-18 would round to 1
        ones = (s == 0).sum(axis=dim, keepdims=True)
        rest = np.where(s == 0, 0.0, np.exp(s)).sum(axis=dim, keepdims=True) + (ones - 1)
        y = r(s - np.log1p(rest))
        p = np.exp(y)
        scale = np.abs(ct) + p * np.abs(ct).sum(axis=dim, keepdims=True)
        return y, rg(ct - p * ct.sum(axis=dim, keepdims=True), scale)

    return ref


REFERENCES = {
    "relu": _clamp_ref(0.0, np.inf),
    "relu6": _clamp_ref(0.0, 6.0),
    "leaky_relu": _leaky_ref(0.01),
    "leaky_relu_0.2": _leaky_ref(0.2),
    "elu": _elu_ref(),
    "elu_0.7": _elu_ref(0.7),
    "selu": _elu_ref(*_SELU),
    "celu_1.3": _elu_ref(1.3, 1.0, 1 / 1.3),
    "gelu": _fused(_gelu64, _dgelu64, _dgelu_terms64),
    "gelu_tanh": _fused(_gelu_tanh64, _dgelu_tanh64, _dgelu_tanh_terms64),
    "silu": _fused(_silu64, _dsilu64, _dsilu_terms64),
    "mish": _fused(_mish64, _dmish64, lambda x: _dmish64(x, terms=True)),
    "sigmoid": _sigmoid_ref,
    "tanh": _tanh_ref,
    "hardtanh": _clamp_ref(-1.0, 1.0),
    "hardtanh_-0.5_2": _clamp_ref(-0.5, 2.0),
    "hardsigmoid": _hardsigmoid_ref,
    "hardswish": _hardswish_ref,
    "softplus": _softplus_ref(),
    "softplus_2_5": _softplus_ref(2.0, 5.0),
    "softsign": _softsign_ref,
    "logsigmoid": _logsigmoid_ref,
    "tanhshrink": _tanhshrink_ref,
    "softshrink": _shrink_ref(0.5, soft=True),
    "softshrink_0.7": _shrink_ref(0.7, soft=True),
    "hardshrink": _shrink_ref(0.5, soft=False),
    "hardshrink_1": _shrink_ref(1.0, soft=False),
    "hardshrink_0.7": _shrink_ref(0.7, soft=False),
    "threshold": _threshold_ref(1.0, -2.0),
    "threshold_0.7": _threshold_ref(0.7, -2.1),
    "glu": _glu_ref(-1),
    "glu_dim1": _glu_ref(1),
    "softmax": _softmax_ref(1),
    "log_softmax": _log_softmax_ref(-1),
    "geglu": _gated_ref(_gelu64, _dgelu64, _dgelu_terms64),
    "geglu_tanh": _gated_ref(_gelu_tanh64, _dgelu_tanh64, _dgelu_tanh_terms64),
    "swiglu": _gated_ref(_silu64, _dsilu64, _dsilu_terms64),
    "reglu": _gated_ref(lambda g: np.maximum(g, 0.0), lambda g: (g > 0).astype(np.float64), dim=1, exact=True),
}
# How an element's result depends on the roundings: the gated units' on their (h, gate) pair, the
# softmax gradients' on the whole row.
_GATED_DIM = {"glu": -1, "glu_dim1": 1, "geglu": -1, "geglu_tanh": -1, "swiglu": -1, "reglu": 1}
_ROW_DIM = {"softmax": 1, "log_softmax": -1}

# torch's own CPU kernels that are not correctly rounded: (name, dtype, "value"|"grad") -> (how
# many of the HALF_N test elements were off, each off by at most this much), the maximum over
# ATEN_CPU_CAPABILITY=default/avx2/avx512 (only float16 gelu differs between them), measured with
# torch 2.13; only the size of the error is asserted (the count varies with torch's build and
# CPU). jaxnn is correctly rounded there too (test_half_precision asserts it everywhere). Every
# other case, composites included, is torch's bit for bit.
KNOWN_TORCH_DEVIATIONS = {
    # gelu: x/2 (1 + erf(x/sqrt 2)) in float32 cancels for x < -2 (to 0 below -5.5)
    ("gelu", "bfloat16", "value"): (264, 2.0**-16),
    ("gelu", "bfloat16", "grad"): (200, 2.0**-23),
    ("gelu", "float16", "value"): (110, 2.0**-17),
    ("gelu", "float16", "grad"): (14, 2.0**-19),
    # gelu_tanh: x/2 (1 + tanh(u)) in float32 cancels for x < -2
    ("gelu_tanh", "bfloat16", "value"): (206, 2.0**-16),
    ("gelu_tanh", "bfloat16", "grad"): (203, 2.0**-16),
    ("gelu_tanh", "float16", "value"): (83, 2.0**-21),
    ("gelu_tanh", "float16", "grad"): (99, 2.0**-19),
    # sigmoid: the float16 backward kernel also rounds 1 - y and grad * (1 - y) to float16
    ("sigmoid", "float16", "grad"): (1097, 2.0**-11),
    # softmax (dim=1, not the last): the exponentials are stored in the half dtype before the sum;
    # the gradient reads that output
    ("softmax", "bfloat16", "value"): (720, 2.0**-9),
    ("softmax", "bfloat16", "grad"): (950, 2.0**-8),
    ("softmax", "float16", "value"): (692, 2.0**-12),
    ("softmax", "float16", "grad"): (850, 2.0**-11),
    # log_softmax (last dim): the float32 sum of exponentials, then its log, are stored in the half
    # dtype; the gradient reads that output
    ("log_softmax", "bfloat16", "value"): (929, 2.0**-2),
    ("log_softmax", "bfloat16", "grad"): (364, 2.0**-5),
    ("log_softmax", "float16", "value"): (827, 2.0**-5),
    ("log_softmax", "float16", "grad"): (354, 2.0**-8),
    # geglu: torch's gelu (above), rounded into the product
    ("geglu", "bfloat16", "value"): (112, 2.0**-19),
    ("geglu", "bfloat16", "grad"): (202, 2.0**-22),
    ("geglu", "float16", "value"): (28, 2.0**-18),
    ("geglu", "float16", "grad"): (38, 2.0**-20),
    # geglu_tanh: torch's tanh gelu (above), rounded into the product
    ("geglu_tanh", "bfloat16", "value"): (101, 2.0**-12),
    ("geglu_tanh", "bfloat16", "grad"): (187, 2.0**-17),
    ("geglu_tanh", "float16", "value"): (32, 2.0**-19),
    ("geglu_tanh", "float16", "grad"): (67, 2.0**-18),
}


@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_float32_values_and_gradients(rng, name, jf, tf):
    x = special_input(rng, (4, 6, 6))
    # Gated units multiply gelu(gate) (torch's float32 kernel is ~1e-7 off where 1 + erf cancels)
    # by halves up to |100|. These tolerances pass with ATEN_CPU_CAPABILITY=default/avx2/avx512 and
    # XLA_FLAGS=--xla_cpu_max_isa=SSE4_2/AVX/AVX2 (tests/conftest.py keeps the flag).
    atol = 2e-5 if name.endswith(("glu", "glu_tanh")) else 1e-6
    check(jf, tf, [x], rtol=2e-6, atol=atol, grad_rtol=1e-5, grad_atol=max(atol, 1e-5))


HALF_SHAPE = (128, 6, 6)  # 4608 elements; dim 1 and dim -1 both have size 6
HALF_N = math.prod(HALF_SHAPE)
HALF_DTYPES = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}
# XLA flushes float32 subnormals to zero, and bfloat16 has float32's range: a bfloat16 result whose
# float32 computation passed through subnormals loses bits or vanishes. Below this, only the size
# is checked.
_BF16_FLUSH = 2.0**-100


def half_inputs(dtype, seed=0):
    """The special values, then values of every scale from 0.01 to 16 (clipped to +-80)."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([0.01, 0.3, 1.0, 4.0, 16.0], HALF_N)
    x = np.clip(rng.standard_normal(HALF_N) * scale, -80, 80)
    x[: SPECIAL.size] = SPECIAL
    return round_to(x, dtype).reshape(HALF_SHAPE)


def half_reference(name, x, ct, dtype):
    """(value, grad, value_slack, grad_slack): the correctly rounded op sequence, and how far off
    (beyond one unit in the last place) a float32 kernel may round each element: 0 but at near-ties."""
    r, rg = _Rounder(dtype), _Rounder(dtype)
    with np.errstate(all="ignore"):
        y, g = REFERENCES[name](x, ct, r, rg)
    slack_y = np.broadcast_to(r.slack, y.shape)
    slack_g = np.broadcast_to(np.maximum(rg.slack, r.slack), y.shape)
    if name in _GATED_DIM:
        slack_g = np.concatenate([slack_g, slack_g], axis=_GATED_DIM[name])
    if name in _ROW_DIM:  # a near-tie in a row's value moves the row's gradients by ~|ct| ulp(value)
        d = _ROW_DIM[name]
        moved = np.where(np.any(r.tie, axis=d, keepdims=True), np.abs(ct).max(axis=d, keepdims=True), 0.0)
        slack_g = np.maximum(slack_g, 2 * moved * np.spacing(np.abs(y).astype(dtype)).astype(np.float64))
    return y, g, slack_y, slack_g


def _off(got, want, slack, dtype):
    """Elements where ``got`` is not the correctly rounded ``want`` (beyond a near-tie's slack)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    ok = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
        ok |= (slack > 0) & (np.abs(got - want) <= slack + ulp)
    if dtype == ml_dtypes.bfloat16:
        ok |= (np.abs(want) < _BF16_FLUSH) & (np.abs(got) < _BF16_FLUSH)
    return ~ok


def run_half(name, jf, tf, dtype, seed=0):
    x = half_inputs(dtype, seed)
    out_shape = jax.eval_shape(jf, jax.ShapeDtypeStruct(x.shape, dtype)).shape
    ct = round_to(np.random.default_rng(seed + 1).standard_normal(out_shape), dtype)
    want_y, want_g, slack_y, slack_g = half_reference(name, x, ct, dtype)
    j_y, vjp = jax.vjp(jax.jit(jf), jnp.asarray(x.astype(dtype)))
    (j_g,) = jax.jit(vjp)(jnp.asarray(ct.astype(dtype)))
    xt = to_torch(x.astype(dtype), requires_grad=True)
    t_y = tf(xt)
    t_y.backward(to_torch(ct.astype(dtype)))
    assert j_y.dtype == dtype and j_g.dtype == dtype
    return {
        "value": (np.asarray(j_y), to_numpy(t_y), want_y, slack_y),
        "grad": (np.asarray(j_g), to_numpy(xt.grad), want_g, slack_g),
    }


@pytest.mark.parametrize("dtype_name", list(HALF_DTYPES))
@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_half_precision(name, jf, tf, dtype_name):
    """Bit for bit: jaxnn against the correctly rounded op sequence, and torch against the same.

    jaxnn must equal the reference at every element (near-ties: see _Rounder). So must torch,
    except where its CPU kernel is known not to round correctly (KNOWN_TORCH_DEVIATIONS): those
    elements are counted and their error bounded, and jaxnn is exact there too.
    """
    dtype = HALF_DTYPES[dtype_name]
    for part, (j, t, want, slack) in run_half(name, jf, tf, dtype).items():
        off = _off(j, want, slack, dtype)
        at = tuple(np.argwhere(off)[:5].T)
        assert not off.any(), f"jaxnn's {part} at {np.argwhere(off)[:5].tolist()}: {j[at]} != {want[at]}"
        off = _off(t, want, slack, dtype)
        count, atol = KNOWN_TORCH_DEVIATIONS.get((name, dtype_name, part), (0, 0.0))
        # Where torch is known to deviate, only the size of its error is bounded: how many elements
        # deviate depends on its kernel build and CPU (torch 2.11 on an AMX Xeon: 131 float16 gelu
        # values against 110 here); elsewhere torch must be exact.
        assert count or not off.any(), (
            f"torch's {part} is not correctly rounded at {off.sum()} elements, e.g. {np.argwhere(off)[:5].tolist()}"
        )
        err = np.abs(np.asarray(t, np.float64) - want)[off]
        assert err.max(initial=0.0) <= atol, f"torch's {part} is {err.max()} off (known: {atol})"


# f(+inf), f(-inf): the mathematical limits (float32). torch agrees except where noted: its
# formulas x * g(x) give -inf * 0 = nan at -inf (gelu, gelu_tanh, silu, mish, hardswish), its
# vectorised gelu kernel returns nan for +inf in some vector lanes (seen on AVX2 and AVX-512 and
# with ATEN_CPU_CAPABILITY=default), and its softsign op sequence gives inf / inf = nan.
_ALPHA_SELU = _f32(_f32(_SELU[0]) * _f32(_SELU[1]))
LIMITS = {
    "relu": (np.inf, 0.0),
    "relu6": (6.0, 0.0),
    "leaky_relu": (np.inf, -np.inf),
    "leaky_relu_0.2": (np.inf, -np.inf),
    "elu": (np.inf, -1.0),
    "elu_0.7": (np.inf, -_f32(0.7)),
    "selu": (np.inf, -_ALPHA_SELU),
    "celu_1.3": (np.inf, -_f32(1.3)),
    "gelu": (np.inf, 0.0),
    "gelu_tanh": (np.inf, 0.0),
    "silu": (np.inf, 0.0),
    "mish": (np.inf, 0.0),
    "sigmoid": (1.0, 0.0),
    "tanh": (1.0, -1.0),
    "hardtanh": (1.0, -1.0),
    "hardtanh_-0.5_2": (2.0, -0.5),
    "hardsigmoid": (1.0, 0.0),
    "hardswish": (np.inf, 0.0),
    "softplus": (np.inf, 0.0),
    "softplus_2_5": (np.inf, 0.0),
    "softsign": (1.0, -1.0),
    "logsigmoid": (0.0, -np.inf),
    "tanhshrink": (np.inf, -np.inf),
    "softshrink": (np.inf, -np.inf),
    "softshrink_0.7": (np.inf, -np.inf),
    "hardshrink": (np.inf, -np.inf),
    "hardshrink_1": (np.inf, -np.inf),
    "hardshrink_0.7": (np.inf, -np.inf),
    "threshold": (np.inf, -2.0),
    "threshold_0.7": (np.inf, _f32(-2.1)),
}
_GATE_ACTIVATION = {"glu": "sigmoid", "glu_dim1": "sigmoid", "geglu": "gelu", "geglu_tanh": "gelu_tanh",
                    "swiglu": "silu", "reglu": "relu"}


def _no_rounding(v, scale=0.0):
    return v


def _limit_reference(name, x):
    """float64 values with the limits at +-inf (the gated units multiply the gate's by h)."""
    if name in _GATE_ACTIVATION:
        h, g = np.split(x, 2, axis=_GATED_DIM[name])
        return h * _limit_reference(_GATE_ACTIVATION[name], g)
    if name in _ROW_DIM:  # exp(-inf) = 0, and nan for a row with nan or +inf: float64 does it
        with np.errstate(invalid="ignore"):
            return REFERENCES[name](x, np.zeros_like(x), _no_rounding, _no_rounding)[0]
    y = REFERENCES[name](np.where(np.isfinite(x), x, 0.0), np.zeros_like(x), _no_rounding, _no_rounding)[0]
    pos, neg = LIMITS[name]
    return np.where(np.isnan(x), np.nan, np.where(x == np.inf, pos, np.where(x == -np.inf, neg, y)))


@pytest.mark.parametrize("name,jf,tf", ACTIVATIONS, ids=IDS)
def test_nonfinite_inputs_give_the_limits(name, jf, tf):
    """+-inf gives the mathematical limit and nan gives nan, in float32 and in the half dtypes;
    the expected values are written out (LIMITS), not read from torch."""
    x = np.array([[np.inf, -np.inf, np.nan, 1.0], [0.0, 2.0, -np.inf, 5.0]], np.float32)
    want = _limit_reference(name, x.astype(np.float64))
    got = np.asarray(jax.jit(jf)(jnp.asarray(x)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, equal_nan=True)
    nonfinite = ~np.isfinite(x)
    if name in _GATED_DIM:
        nonfinite = np.logical_or(*np.split(nonfinite, 2, axis=_GATED_DIM[name]))
    for dtype in HALF_DTYPES.values():  # the elements computed from +-inf and nan
        got = as_f(np.asarray(jax.jit(jf)(jnp.asarray(x.astype(dtype)))))
        np.testing.assert_array_equal(got[nonfinite], round_to(want, dtype)[nonfinite])


def test_prelu_matches_torch(rng):
    x = special_input(rng, (3, 4, 5))
    for w in (np.array([0.25], np.float32), randn(rng, (4,))):
        check(F.prelu, TF.prelu, [x, w], rtol=2e-6, atol=1e-6)
    x1 = special_input(rng, (30,))
    check(F.prelu, TF.prelu, [x1, np.array([0.1], np.float32)], rtol=2e-6, atol=1e-6)


def test_under_jit_and_vmap(rng):
    x = special_input(rng, (3, 4, 6))
    for _, jf, _tf in ACTIVATIONS:
        whole = jax.jit(jf)(x)
        if _ == "softmax" or _ == "glu_dim1" or _ == "reglu":
            continue  # dim=1 refers to a different axis once vmapped
        mapped = jax.vmap(jf)(x)
        np.testing.assert_allclose(mapped, whole, rtol=1e-5, atol=1e-5)


def test_gelu_default_is_exact_not_tanh():
    x = jnp.linspace(-4, 4, 101)
    diff = jnp.max(jnp.abs(F.gelu(x) - jax.nn.gelu(x)))  # jax.nn.gelu defaults to tanh
    assert float(diff) > 1e-4
    assert float(jnp.max(jnp.abs(F.gelu(x) - jax.nn.gelu(x, approximate=False)))) < 1e-6


def test_softmax_dtype_and_implicit_dim(rng):
    x = randn(rng, (2, 3, 4))
    got = F.softmax(x, dim=-1, dtype=jnp.float16)
    want = TF.softmax(to_torch(x), dim=-1, dtype=torch.float16)
    assert got.dtype == jnp.float16
    x16 = x.astype(np.float16).astype(np.float64)  # torch casts first, then one half softmax
    e = np.exp(x16 - x16.max(-1, keepdims=True))
    exact = round_to(e / e.sum(-1, keepdims=True), np.float16)
    np.testing.assert_array_equal(as_f(got), exact)
    np.testing.assert_array_equal(to_numpy(want), exact)  # torch's last-dim kernel rounds correctly
    with pytest.warns(UserWarning, match="Implicit dimension"):
        implicit = F.softmax(x)
    np.testing.assert_allclose(implicit, F.softmax(x, 0), rtol=1e-6)


ERRORS = [
    (lambda: F.gelu(jnp.ones(3), approximate="fast"), ValueError, "`approximate`"),
    (lambda: F.geglu(jnp.ones(4), approximate="erf"), ValueError, "`approximate`"),
    (lambda: F.glu(jnp.ones((2, 5))), ValueError, "even size"),
    (lambda: F.glu(jnp.ones(())), ValueError, "0-d"),
    (lambda: F.geglu(jnp.ones((3, 3)), dim=0), ValueError, "even size"),
    (lambda: F.glu(jnp.ones((2, 4)), dim=2), ValueError, "out of range"),
    (lambda: F.prelu(jnp.ones((2, 3, 4)), jnp.ones(2)), ValueError, "1 or the input's channel size"),
    (lambda: F.prelu(jnp.ones((2, 3)), jnp.ones((3, 1))), ValueError, "scalar or 1D"),
    (lambda: F.prelu(jnp.ones(()), jnp.ones(2)), ValueError, "single-element"),
    (lambda: F.softshrink(jnp.ones(3), -0.5), ValueError, "`lambd`"),
    (lambda: F.hardtanh(jnp.ones(3), 1.0, -1.0), ValueError, "`min_val`"),
    (lambda: F.celu(jnp.ones(3), 0.0), ValueError, "`alpha`"),
    (lambda: F.softplus(jnp.ones(3), 0.0), ValueError, "`beta`"),
    (lambda: F.silu(jnp.ones(3, jnp.int32)), TypeError, "floating dtype"),
    (lambda: F.gelu([1.0, 2.0]), TypeError, "must be an array"),
    (lambda: F.softmax(jnp.ones((2, 3)), dim=1.0), TypeError, "`dim` must be an int"),
]


@pytest.mark.parametrize("call,exc,fragment", ERRORS)
def test_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


def test_inplace_is_accepted_and_ignored():
    x = jnp.array([-1.0, 2.0])
    np.testing.assert_array_equal(F.relu(x, inplace=True), F.relu(x))
    np.testing.assert_array_equal(x, jnp.array([-1.0, 2.0]))


def test_torch_reference_sanity():
    # hardswish's gradient at the corners is torch's convention (0 at -3, 1 at 3)
    x = to_torch(np.array([-3.0, 3.0], np.float32), requires_grad=True)
    TF.hardswish(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0])
    g = jax.grad(lambda v: F.hardswish(v).sum())(jnp.array([-3.0, 3.0]))
    np.testing.assert_allclose(g, [0.0, 1.0])


def test_references_cover_every_case():
    assert set(REFERENCES) == set(IDS)
    assert set(LIMITS) | set(_GATE_ACTIVATION) | set(_ROW_DIM) == set(IDS)


def test_issue_examples_in_bfloat16():
    bf16 = ml_dtypes.bfloat16
    # GEGLU is torch's two ops: gelu(1.0) rounds to 0.83984375 before the product.
    x = np.array([1.5, 1.0], bf16)
    torch_geglu = dict((n, t) for n, _, t in ACTIVATIONS)["geglu"]
    assert float(F.geglu(jnp.asarray(x))[0]) == 1.2578125 == float(torch_geglu(to_torch(x))[0])
    # log_softmax is one torch kernel: jaxnn is correctly rounded (torch's bf16 kernel gives [0, -12.5]).
    x = np.array([10.0, -2.53125])
    exact = x - x.max() - np.log(np.sum(np.exp(x - x.max())))
    got = F.log_softmax(jnp.asarray(x.astype(bf16)), 0)
    np.testing.assert_array_equal(as_f(got), round_to(exact, bf16))
    assert float(got[0]) != 0.0
