"""Every jaxnn function and module has its torch twin's signature: what torch accepts, jaxnn accepts.

For each name in ``jaxnn.functional.__all__`` and each public module class of ``jaxnn.nnx`` and
``jaxnn.linen``, torch's parameters come first with the same names, order, kinds and defaults;
jaxnn's own arguments (``channels_last``, ``precision``, ``compute_dtype``, ``rngs``, ...) may follow
only as keyword-only ones. Modules are compared twice: the constructor with torch's ``__init__`` and
``__call__`` with torch's ``forward``.

torch's signatures are read from torch itself. Where ``inspect`` cannot read a builtin op, names and
defaults come from its documented signature (the first line of its docstring) and the kinds from its
ATen schema (``approximate`` of ``gelu`` is keyword-only there, for instance). The few differences
that cannot be avoided are in the tables of documented exceptions below, each with its reason; a
stale entry fails the suite.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import typing
import warnings
from collections import OrderedDict

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx
from torch_ref import assert_close

import jaxnn.functional as F
import jaxnn.linen as jl
import jaxnn.nnx as jn

P = inspect.Parameter

# --- documented exceptions -------------------------------------------------------------------------

# jaxnn functions with no torch.nn.functional twin: not compared.
NO_TORCH_FUNCTION = {
    "geglu": "GLU variant (diffusers' GEGLU as a function); torch has only glu",
    "swiglu": "GLU variant; torch has no swiglu",
    "reglu": "GLU variant; torch has no reglu",
    "batch_norm_running_stats": "the running statistics torch's batch_norm updates in place, as values",
    "embedding_renorm": "the weight torch's embedding(max_norm=...) renormalises in place, as a value",
    "instance_norm_running_stats": "the running statistics torch's instance_norm updates in place, as values",
}

# jaxnn names that are another name for a torch function.
FUNCTION_ALIASES = {"swish": "silu"}  # torch has F.silu only; jaxnn.functional.swish = silu

# torch's boolean_dispatch functions (F.max_pool2d, ...) show only (*args, **kwargs): their signature is
# that of the variant they dispatch to, which torch also exports (F.max_pool2d_with_indices, ...).
BOOLEAN_DISPATCH = {f"{k}{n}d": f"{k}{n}d_with_indices" for k in ("max_pool", "adaptive_max_pool") for n in (1, 2, 3)}

# torch builtins whose docstring names an argument differently from their argument parser (the
# ATen schema): the parser's name is the one a keyword call must use, so it is the one compared.
DOC_ARGUMENT_NAMES = {"one_hot": {"tensor": "input"}}  # one_hot(tensor=t) is a TypeError, input=t works


def _sig(*params: inspect.Parameter) -> inspect.Signature:
    return inspect.Signature(list(params))


def _pk(name: str, default=P.empty) -> inspect.Parameter:
    return P(name, P.POSITIONAL_OR_KEYWORD, default=default)


# Module twins outside torch.nn: diffusers' GEGLU (diffusers/models/activations.py), whose forward is
# ``forward(self, hidden_states, *args, **kwargs)``. diffusers is not a test dependency: its signature
# is written here and checked against diffusers when it is installed.
DIFFUSERS_GEGLU_INIT = _sig(_pk("dim_in"), _pk("dim_out"), _pk("bias", True))
DIFFUSERS_GEGLU_FORWARD = _sig(
    _pk("hidden_states"), P("args", P.VAR_POSITIONAL), P("kwargs", P.VAR_KEYWORD)
)

# Deliberate differences: (front end, class, "init" or "forward") -> (edit applied to torch's
# signature before comparing, reason).
MODULE_EXCEPTIONS = {
    ("linen", "PReLU", "init"): (
        {"rename": {"init": "init_value"}},
        "a linen field named `init` would shadow flax.linen.Module.init, the method that creates "
        "the parameters",
    ),
    ("nnx", "GEGLU", "forward"): (
        {"drop": ("args", "kwargs")},
        "diffusers' *args/**kwargs only catch its deprecated, ignored `scale` argument",
    ),
    ("linen", "Identity", "init"): (
        {"drop": ("args", "kwargs")},
        "a linen module's constructor takes its dataclass fields only; torch's ignores everything",
    ),
    ("linen", "Sequential", "init"): (
        {"replace": inspect.Signature([P("modules", P.POSITIONAL_OR_KEYWORD, default=None)])},
        "a linen module's constructor takes dataclass fields: torch's *args become one sequence",
    ),
    ("linen", "GEGLU", "forward"): (
        {"drop": ("args", "kwargs")},
        "diffusers' *args/**kwargs only catch its deprecated, ignored `scale` argument",
    ),
}


def _documented_init(name: str) -> inspect.Signature:
    sig = inspect.signature(typing.get_overloads(getattr(torch.nn, name).__init__)[0])
    return sig.replace(parameters=list(sig.parameters.values())[1:])  # without self


# nn.RNN / nn.LSTM / nn.GRU: torch's __init__(*args, **kwargs) forwards to RNNBase; the signature
# torch documents is its first typing.overload, which is what is compared.
MODULE_EXCEPTIONS.update({
    (front, name, "init"): (
        {"replace": _documented_init(name)},
        "torch's *args/**kwargs __init__ has this documented @overload signature",
    )
    for front in ("nnx", "linen") for name in ("RNN", "LSTM", "GRU")
})
# nn.Transformer / nn.TransformerEncoderLayer / nn.TransformerDecoderLayer: `activation` defaults to
# torch.nn.functional.relu in torch, to its jaxnn twin jaxnn.functional.relu here.
MODULE_EXCEPTIONS.update({
    (front, name, "init"): (
        {"replace": inspect.Signature([
            p.replace(default=F.relu) if p.name == "activation" else p
            for p in list(inspect.signature(getattr(torch.nn, name).__init__).parameters.values())[1:]])},
        "torch's default activation is torch.nn.functional.relu; jaxnn's is jaxnn.functional.relu",
    )
    for front in ("nnx", "linen") for name in ("Transformer", "TransformerEncoderLayer", "TransformerDecoderLayer")
})
# the recurrent layers' `lengths=` (jaxnn's stand-in for a PackedSequence) is keyword-only, so the
# forward comparison needs no exception.

# Modules that are not called (torch's ModuleList.forward raises NotImplementedError).
NOT_CALLABLE = {"ModuleList"}

# --- torch's signatures ----------------------------------------------------------------------------


def _doc_signature(fn) -> inspect.Signature:
    """The documented signature on the first line of a torch builtin's docstring,
    e.g. ``conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor``."""
    lines = fn.__doc__.strip().splitlines()
    # the signature may wrap (scaled_dot_product_attention's does): read up to the line with "->"
    end = next((i for i, text in enumerate(lines[:4]) if "->" in text), 0)
    line = " ".join(text.strip() for text in lines[: end + 1])
    head = line.split("->")[0].strip()
    tree = ast.parse(f"def {head}: pass").body[0]
    assert isinstance(tree, ast.FunctionDef)
    args = tree.args
    assert not args.kwonlyargs and args.vararg is None and args.kwarg is None, line
    defaults = [P.empty] * (len(args.args) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    return _sig(*(_pk(a.arg, d) for a, d in zip(args.args, defaults, strict=True)))


def _schema_keyword_only(fn) -> tuple[list[str], set[str]]:
    """Argument names (``self`` read as ``input``, as torch's Python binding does) and the
    keyword-only ones, from the ATen schema of a builtin op's main overload."""
    overloads = torch._C._jit_get_schemas_for_operator(f"aten::{fn.__name__}")
    schemas = [s for s in overloads if s.overload_name in ("", "input")]
    assert schemas, f"no ATen schema for {fn.__name__}"
    args = schemas[0].arguments
    names = ["input" if a.name == "self" else a.name for a in args]
    return names, {n for n, a in zip(names, args, strict=True) if a.kwarg_only}


def torch_function_signature(fn) -> inspect.Signature:
    try:
        return inspect.signature(fn)
    except ValueError:  # a C builtin
        pass
    documented = _doc_signature(fn)
    renames = DOC_ARGUMENT_NAMES.get(fn.__name__, {})
    documented = _sig(*(p.replace(name=renames.get(p.name, p.name)) for p in documented.parameters.values()))
    names, kw_only = _schema_keyword_only(fn)
    assert names == list(documented.parameters), (names, documented)
    params, kinds_seen = [], False
    for p in documented.parameters.values():
        kinds_seen |= p.name in kw_only
        params.append(p.replace(kind=P.KEYWORD_ONLY) if kinds_seen else p)
    return _sig(*params)


def _drop_self(sig: inspect.Signature) -> inspect.Signature:
    params = list(sig.parameters.values())
    return sig.replace(parameters=params[1:] if params and params[0].name == "self" else params)


def torch_module_init(cls) -> inspect.Signature:
    if cls.__init__ is torch.nn.Module.__init__:
        return _sig()  # nn.Module.__init__(*args, **kwargs) rejects every argument
    return _drop_self(inspect.signature(cls.__init__))


def _edit(sig: inspect.Signature, edit: dict) -> inspect.Signature:
    if "replace" in edit:
        return edit["replace"]
    params = [p for p in sig.parameters.values() if p.name not in edit.get("drop", ())]
    params = [p.replace(name=edit.get("rename", {}).get(p.name, p.name)) for p in params]
    return _sig(*params)


# --- the comparison --------------------------------------------------------------------------------


def _same_default(a, b) -> bool:
    if a is P.empty or b is P.empty:
        return a is b
    exact = (bool, str, type(None))
    if isinstance(a, exact) or isinstance(b, exact):
        return type(a) is type(b) and a == b
    return a == b  # numbers: torch documents beta=1 where jaxnn writes 1.0


def assert_torch_signature(ours: inspect.Signature, theirs: inspect.Signature, what: str) -> None:
    mine = list(ours.parameters.values())
    torch_params = list(theirs.parameters.values())
    shown = f"{what}:\n  jaxnn {ours}\n  torch {theirs}"
    assert len(mine) >= len(torch_params), shown
    for m, t in zip(mine, torch_params, strict=False):
        assert (m.name, m.kind) == (t.name, t.kind), shown
        assert _same_default(m.default, t.default), shown
    extras = mine[len(torch_params) :]
    assert all(p.kind is P.KEYWORD_ONLY for p in extras), f"jaxnn's extras must be keyword-only. {shown}"


# --- functions -------------------------------------------------------------------------------------


def test_exception_tables_are_not_stale():
    for name in NO_TORCH_FUNCTION:
        assert name in F.__all__ and not hasattr(TF, name)
    for name, twin in FUNCTION_ALIASES.items():
        assert getattr(F, name) is getattr(F, twin) and not hasattr(TF, name)
    for name, twin in BOOLEAN_DISPATCH.items():
        kinds = [p.kind for p in inspect.signature(getattr(TF, name)).parameters.values()]
        assert kinds == [P.VAR_POSITIONAL, P.VAR_KEYWORD] and hasattr(TF, twin), name
    for name, renames in DOC_ARGUMENT_NAMES.items():
        fn = getattr(TF, name)
        assert set(renames) <= set(_doc_signature(fn).parameters)  # the docstring still says so
        assert set(renames.values()) <= set(_schema_keyword_only(fn)[0])
    for front, cls, _ in MODULE_EXCEPTIONS:
        assert cls in (jn if front == "nnx" else jl).__all__


@pytest.mark.parametrize("name", sorted(set(F.__all__) - set(NO_TORCH_FUNCTION)))
def test_function_signature_matches_torch(name):
    twin = getattr(TF, BOOLEAN_DISPATCH.get(name, FUNCTION_ALIASES.get(name, name)))
    assert_torch_signature(inspect.signature(getattr(F, name)), torch_function_signature(twin), f"F.{name}")


def test_builtin_signatures_are_read_with_kinds():
    """The reader above sees what torch's argument parser does: gelu's ``approximate`` is
    keyword-only, conv's arguments are positional."""
    sig = torch_function_signature(TF.gelu)
    assert sig.parameters["approximate"].kind is P.KEYWORD_ONLY
    with pytest.raises(TypeError):
        TF.gelu(torch.ones(2), "tanh")
    sig = torch_function_signature(TF.conv_transpose2d)
    assert list(sig.parameters)[-2:] == ["groups", "dilation"]
    assert all(p.kind is P.POSITIONAL_OR_KEYWORD for p in sig.parameters.values())


# --- modules ---------------------------------------------------------------------------------------


def _public_classes(mod, base) -> list[str]:
    objs = {n: getattr(mod, n) for n in mod.__all__}
    return sorted(n for n, o in objs.items() if isinstance(o, type) and issubclass(o, base))


NNX_CLASSES = _public_classes(jn, nnx.Module)
LINEN_CLASSES = _public_classes(jl, nn.Module)


def _torch_twin(name: str) -> tuple[inspect.Signature, inspect.Signature | None]:
    if name == "GEGLU":
        return DIFFUSERS_GEGLU_INIT, DIFFUSERS_GEGLU_FORWARD
    cls = getattr(torch.nn, name)
    forward = None if name in NOT_CALLABLE else _drop_self(inspect.signature(cls.forward))
    return torch_module_init(cls), forward


def _expected(front: str, name: str, part: str, sig: inspect.Signature) -> inspect.Signature:
    exc = MODULE_EXCEPTIONS.get((front, name, part))
    return sig if exc is None else _edit(sig, exc[0])


def test_every_module_has_a_twin():
    assert "Sequential" in NNX_CLASSES and "Conv2d" in LINEN_CLASSES  # the enumeration sees them
    for mod in (F, jn, jl):
        assert len(set(mod.__all__)) == len(mod.__all__), mod.__name__
    for name in set(NNX_CLASSES) | set(LINEN_CLASSES):
        assert name == "GEGLU" or hasattr(torch.nn, name), name


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="diffusers is not installed")
def test_diffusers_geglu_table_matches_diffusers():
    from diffusers.models.activations import GEGLU

    assert _drop_self(inspect.signature(GEGLU.__init__)).parameters.keys() == DIFFUSERS_GEGLU_INIT.parameters.keys()
    assert_torch_signature(DIFFUSERS_GEGLU_INIT, _drop_self(inspect.signature(GEGLU.__init__)), "GEGLU")
    assert_torch_signature(DIFFUSERS_GEGLU_FORWARD, _drop_self(inspect.signature(GEGLU.forward)), "GEGLU.forward")


@pytest.mark.parametrize("name", NNX_CLASSES)
def test_nnx_module_signatures_match_torch(name):
    cls = getattr(jn, name)
    init, forward = _torch_twin(name)
    ours = _drop_self(inspect.signature(cls.__init__))
    assert_torch_signature(ours, _expected("nnx", name, "init", init), f"jaxnn.nnx.{name}.__init__")
    if forward is None:
        return
    ours = _drop_self(inspect.signature(cls.__call__))
    assert_torch_signature(ours, _expected("nnx", name, "forward", forward), f"jaxnn.nnx.{name}.__call__")


@pytest.mark.parametrize("name", LINEN_CLASSES)
def test_linen_module_signatures_match_torch(name):
    cls = getattr(jl, name)
    init, forward = _torch_twin(name)
    sig = inspect.signature(cls)  # the dataclass constructor; parent and name are flax's own
    ours = sig.replace(parameters=[p for p in sig.parameters.values() if p.name not in ("parent", "name")])
    assert_torch_signature(ours, _expected("linen", name, "init", init), f"jaxnn.linen.{name} fields")
    if forward is None:
        return
    ours = _drop_self(inspect.signature(cls.__call__))
    assert_torch_signature(ours, _expected("linen", name, "forward", forward), f"jaxnn.linen.{name}.__call__")


def test_the_comparison_catches_mismatches():
    torch_sig = _sig(_pk("input"), _pk("approximate", "none"))
    for bad in (
        _sig(_pk("x"), _pk("approximate", "none")),  # name
        _sig(_pk("approximate"), _pk("input")),  # order
        _sig(_pk("input"), P("approximate", P.KEYWORD_ONLY, default="none")),  # kind
        _sig(_pk("input"), _pk("approximate", "tanh")),  # default
        _sig(_pk("input"), _pk("approximate", "none"), _pk("rngs", None)),  # positional extra
        _sig(_pk("input")),  # missing
    ):
        with pytest.raises(AssertionError):
            assert_torch_signature(bad, torch_sig, "bad")
    assert_torch_signature(
        _sig(_pk("input"), _pk("approximate", "none"), P("rngs", P.KEYWORD_ONLY)), torch_sig, "good"
    )


# --- what torch accepts at construction and call, jaxnn accepts -----------------------------------


def _rngs():
    return nnx.Rngs(0)


def _linen_variables_from(sd, module, x):
    return jl.load_state_dict(module.init(jax.random.key(1), x), sd)[0]


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_bias_false_like_torch(rng, affine):
    x = rng.standard_normal((2, 6, 5)).astype(np.float32)
    t = torch.nn.GroupNorm(3, 6, 1e-5, affine, None, None, bias=False)
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 1.5)
    want = t(torch.tensor(x)).detach().numpy()
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    m = jn.GroupNorm(3, 6, 1e-5, affine, None, None, bias=False)
    assert m.bias is None and (m.weight is not None) == affine
    jn.load_state_dict(m, sd)
    assert set(jn.state_dict(m)) == set(sd)
    assert_close(m(input=jnp.asarray(x)), want, rtol=1e-5, atol=1e-6)
    lm = jl.GroupNorm(3, 6, 1e-5, affine, None, None, bias=False)
    variables = _linen_variables_from(sd, lm, jnp.asarray(x)) if affine else {}
    assert_close(lm.apply(variables, input=jnp.asarray(x)), want, rtol=1e-5, atol=1e-6)
    if affine:
        assert set(variables["params"]) == {"weight"}


def test_layer_norm_positional_torch_arguments(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = torch.nn.LayerNorm((3, 4), 1e-6, True, False, None, None)
    want = t(torch.tensor(x)).detach().numpy()
    m = jn.LayerNorm((3, 4), 1e-6, True, False, None, None)
    assert m.bias is None
    assert_close(m(input=jnp.asarray(x)), want, rtol=1e-5, atol=1e-6)
    lm = jl.LayerNorm((3, 4), 1e-6, True, False, None, None)
    params = lm.init(jax.random.key(0), jnp.asarray(x))["params"]
    assert set(params) == {"weight"}
    assert_close(lm.apply({"params": params}, input=jnp.asarray(x)), want, rtol=1e-5, atol=1e-6)


def test_torch_dtype_is_the_parameter_dtype():
    lin = jn.Linear(3, 2, False, None, jnp.bfloat16, rngs=_rngs())  # torch's positional order
    assert lin.bias is None and lin.weight[...].dtype == jnp.bfloat16
    assert lin(input=jnp.ones((1, 3), jnp.bfloat16)).dtype == jnp.bfloat16
    assert jn.Linear(3, 2, device=None, dtype=None, rngs=_rngs()).weight[...].dtype == jnp.float32
    assert jn.Conv2d(2, 2, 3, dtype=jnp.float16, rngs=_rngs()).weight[...].dtype == jnp.float16
    assert jn.GroupNorm(1, 2, dtype=jnp.bfloat16).weight[...].dtype == jnp.bfloat16
    assert jn.LayerNorm(2, dtype=jnp.bfloat16).weight[...].dtype == jnp.bfloat16
    assert jn.PReLU(2, 0.1, None, jnp.bfloat16).weight[...].dtype == jnp.bfloat16
    assert jn.GEGLU(2, 3, dtype=jnp.bfloat16, rngs=_rngs()).proj.weight[...].dtype == jnp.bfloat16
    x = jnp.ones((1, 3), jnp.bfloat16)
    params = jl.Linear(3, 2, True, None, jnp.bfloat16).init(jax.random.key(0), x)["params"]
    assert params["weight"].dtype == jnp.bfloat16 and params["bias"].dtype == jnp.bfloat16
    params = jl.Conv1d(2, 2, 1, dtype=jnp.float16).init(jax.random.key(0), jnp.ones((1, 2, 3), jnp.float16))
    assert params["params"]["weight"].dtype == jnp.float16
    params = jl.PReLU(1, 0.1, None, jnp.bfloat16).init(jax.random.key(0), x)["params"]
    assert params["weight"].dtype == jnp.bfloat16


def test_compute_dtype_is_flax_computation_dtype():
    conv = jn.Conv2d(3, 4, 3, compute_dtype=jnp.bfloat16, rngs=_rngs())
    assert conv(jnp.ones((1, 3, 5, 5))).dtype == jnp.bfloat16 and conv.weight[...].dtype == jnp.float32
    lm = jl.Linear(3, 2, compute_dtype=jnp.bfloat16)
    out, params = lm.init_with_output(jax.random.key(0), jnp.ones((1, 3)))
    assert out.dtype == jnp.bfloat16 and params["params"]["weight"].dtype == jnp.float32


DTYPE_DEVICE_ERRORS = [
    (lambda: jn.Linear(3, 2, device="cuda", rngs=_rngs()), ValueError, "`device` must be None"),
    (lambda: jn.Conv2d(3, 2, 1, device=jax.devices()[0], rngs=_rngs()), ValueError, "jax.default_device"),
    (lambda: jn.GroupNorm(1, 2, device="cpu"), ValueError, "`device` must be None"),
    (lambda: jn.LayerNorm(2, device="cpu"), ValueError, "`device` must be None"),
    (lambda: jn.PReLU(device="cpu"), ValueError, "`device` must be None"),
    (lambda: jl.Linear(3, 2, device="cuda"), ValueError, "`device` must be None"),
    (lambda: jl.ConvTranspose1d(3, 2, 1, device="cuda"), ValueError, "`device` must be None"),
    (lambda: jl.GroupNorm(1, 2, device="cuda"), ValueError, "`device` must be None"),
    (lambda: jn.Linear(3, 2, dtype=jnp.int32, rngs=_rngs()), ValueError, "floating dtype"),
    (lambda: jn.Linear(3, 2, dtype=torch.float32, rngs=_rngs()), TypeError, "JAX/NumPy floating dtype"),
    (lambda: jl.LayerNorm(2, dtype="int8"), ValueError, "floating dtype"),
]


@pytest.mark.parametrize("call,exc,fragment", DTYPE_DEVICE_ERRORS)
def test_device_and_dtype_errors(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()


# Each module called by keyword with torch's forward argument names.
KEYWORD_CALLS = [
    ("Conv1d", lambda m: m(4, 6, 3, rngs=_rngs()), (2, 4, 9), {}),
    ("ConvTranspose2d", lambda m: m(4, 2, 3, 2, 1, rngs=_rngs()), (1, 4, 5, 5), {"output_size": (10, 10)}),
    ("Linear", lambda m: m(5, 3, rngs=_rngs()), (4, 5), {}),
    ("GroupNorm", lambda m: m(2, 6), (2, 6, 4), {}),
    ("LayerNorm", lambda m: m(4), (2, 4), {}),
    ("PReLU", lambda m: m(), (2, 3), {}),
    ("GELU", lambda m: m("tanh"), (2, 3), {}),
    ("Softmax", lambda m: m(1), (2, 3), {}),
    ("Flatten", lambda m: m(), (2, 3, 4), {}),
    ("Identity", lambda m: m(), (2, 3), {}),
    ("MaxUnpool2d", lambda m: m(2), (1, 2, 2, 2),
     {"indices": jnp.asarray(np.arange(8).reshape(1, 2, 2, 2) % 4 * 3, jnp.int32), "output_size": (4, 5)}),
]


@pytest.mark.parametrize("name,make,shape,extra", KEYWORD_CALLS, ids=[c[0] for c in KEYWORD_CALLS])
def test_nnx_forward_by_keyword(rng, name, make, shape, extra):
    x = jnp.asarray(rng.standard_normal(shape).astype(np.float32))
    m = make(getattr(jn, name))
    np.testing.assert_array_equal(m(input=x, **extra), m(x, *extra.values()))


@pytest.mark.parametrize(
    "name,make,shape,extra",
    [c for c in KEYWORD_CALLS if hasattr(jl, c[0])],
    ids=[c[0] for c in KEYWORD_CALLS if hasattr(jl, c[0])],
)
def test_linen_forward_by_keyword(rng, name, make, shape, extra):
    x = jnp.asarray(rng.standard_normal(shape).astype(np.float32))
    lm = make(lambda *a, rngs=None, **k: getattr(jl, name)(*a, **k))
    variables = lm.init(jax.random.key(0), input=x, **extra)
    np.testing.assert_array_equal(lm.apply(variables, input=x, **extra), lm.apply(variables, x, *extra.values()))


def test_sequential_and_geglu_by_keyword(rng):
    x = jnp.asarray(rng.standard_normal((2, 4)).astype(np.float32))
    seq = jn.Sequential(jn.Linear(4, 4, rngs=_rngs()), jn.SiLU())
    np.testing.assert_array_equal(seq(input=x), seq(x))
    g = jn.GEGLU(4, 3, rngs=_rngs())
    np.testing.assert_array_equal(g(hidden_states=x), g(x))
    lg = jl.GEGLU(4, 3)
    v = lg.init(jax.random.key(0), hidden_states=x)
    np.testing.assert_array_equal(lg.apply(v, hidden_states=x), lg.apply(v, x))
    assert len(jn.ModuleList(modules=[jn.ReLU()])) == 1 and len(jn.ModuleList()) == 0
    with pytest.raises(TypeError, match="OrderedDict"):
        jn.Sequential(OrderedDict([("fc", jn.ReLU())]))


ACTIVATION_ARGS = [
    # (name, positional args as torch takes them)
    ("LeakyReLU", (0.2, True)),
    ("ELU", (0.5, False)),
    ("CELU", (2.0,)),
    ("GELU", ("tanh",)),
    ("Hardtanh", (-0.5, 2.0, False)),
    ("Softplus", (2.0, 5.0)),
    ("Softshrink", (0.3,)),
    ("Hardshrink", (0.3,)),
    ("Threshold", (0.1, -2.0, True)),
    ("GLU", (1,)),
    ("Softmax", (0,)),
    ("LogSoftmax", (2,)),
]


@pytest.mark.parametrize("name,args", ACTIVATION_ARGS, ids=[a[0] for a in ACTIVATION_ARGS])
def test_activation_positional_arguments_like_torch(rng, name, args):
    x = rng.standard_normal((2, 4, 6)).astype(np.float32) * 3
    want = getattr(torch.nn, name)(*args)(torch.tensor(x)).numpy()
    assert_close(getattr(jn, name)(*args)(input=jnp.asarray(x)), want, rtol=2e-6, atol=1e-6)
    assert_close(getattr(jl, name)(*args).apply({}, input=jnp.asarray(x)), want, rtol=2e-6, atol=1e-6)


def test_activation_dim_is_checked_at_call_as_torch():
    torch.nn.Softmax(dim=7)  # torch accepts any dim at construction
    for m in (jn.Softmax(dim=7), jn.GLU(7)):
        with pytest.raises(ValueError, match="dim"):
            m(jnp.ones((2, 2)))
    assert jl.LogSoftmax(7) is not None


def _deprecations(record) -> list[str]:
    return sorted(str(w.message) for w in record if issubclass(w.category, FutureWarning))


def test_hardtanh_deprecated_bounds_and_check(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32) * 3
    with pytest.warns(FutureWarning) as record:
        t = torch.nn.Hardtanh(min_value=-0.5, max_value=2.0)
    expected = _deprecations(record)
    assert len(expected) == 2
    want = t(torch.tensor(x)).numpy()
    with pytest.warns(FutureWarning) as record:
        m = jn.Hardtanh(min_value=-0.5, max_value=2.0)
    assert _deprecations(record) == expected  # torch's messages
    assert (m.min_val, m.max_val) == (-0.5, 2.0)
    assert_close(m(jnp.asarray(x)), want, rtol=0, atol=0)
    with pytest.warns(FutureWarning) as record:
        lm = jl.Hardtanh(min_value=-0.5, max_value=2.0)
    assert _deprecations(record) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # linen re-runs the constructor when binding
        assert_close(lm.apply({}, jnp.asarray(x)), want, rtol=0, atol=0)
    with pytest.raises(AssertionError):
        torch.nn.Hardtanh(1.0, 1.0)
    for make in (jn.Hardtanh, jl.Hardtanh):
        with pytest.raises(ValueError, match="`max_val` \\(=1.0\\) must be greater than `min_val`"):
            make(1.0, 1.0)


def test_activation_signature_errors_are_python_errors():
    with pytest.raises(TypeError, match="unexpected keyword argument 'slope'"):
        jn.ReLU(slope=1)
    with pytest.raises(TypeError, match="missing 2 required"):
        jn.Threshold()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        jn.Sigmoid(0.5)  # torch: nn.Sigmoid takes no arguments
    with pytest.raises(TypeError):
        torch.nn.Sigmoid(0.5)


# --- prelu on a 0-d input --------------------------------------------------------------------------


@pytest.mark.parametrize("x0", [-2.0, 0.0, 1.5])
@pytest.mark.parametrize("wshape", [(1,), ()])
def test_prelu_zero_dim_input_matches_torch(x0, wshape):
    xt = torch.tensor(x0, requires_grad=True)
    wt = torch.full(wshape, 0.25, requires_grad=True)
    yt = TF.prelu(xt, wt)
    yt.backward(torch.tensor(1.5))
    x, w = jnp.float32(x0), jnp.full(wshape, 0.25, jnp.float32)
    y, vjp = jax.vjp(F.prelu, x, w)
    gx, gw = vjp(jnp.float32(1.5))
    assert y.shape == () and gw.shape == wshape
    assert_close(y, yt.detach().numpy(), rtol=0, atol=0)
    assert_close(gx, xt.grad.numpy(), rtol=0, atol=0)
    assert_close(gw, wt.grad.numpy(), rtol=0, atol=0)
    assert_close(jax.jit(F.prelu)(x, w), yt.detach().numpy(), rtol=0, atol=0)


def test_prelu_zero_dim_needs_one_weight():
    with pytest.raises(RuntimeError, match="zero-dim"):
        TF.prelu(torch.tensor(1.0), torch.ones(2))
    with pytest.raises(ValueError, match="0-d `input` of prelu needs a single-element `weight`"):
        F.prelu(jnp.float32(1.0), jnp.ones(2))


def test_prelu_module_on_zero_dim_input():
    t = torch.nn.PReLU(1, 0.3)
    want = t(torch.tensor(-2.0)).detach().numpy()
    assert_close(jn.PReLU(1, 0.3)(input=jnp.float32(-2.0)), want, rtol=0, atol=0)
    lm = jl.PReLU(1, 0.3)
    v = lm.init(jax.random.key(0), jnp.float32(-2.0))
    assert_close(lm.apply(v, input=jnp.float32(-2.0)), want, rtol=0, atol=0)
