"""jaxnn: torch-exact layers for JAX and Flax.

Take the torch code and the torch checkpoint, write the same model with jaxnn, load the weights by
name, get the same numbers; then train and scale it the JAX way.

Submodules:
  - :mod:`jaxnn.functional`: torch.nn.functional's ops as pure JAX functions.
  - :mod:`jaxnn.nnx` / :mod:`jaxnn.linen`: Flax modules with torch.nn's signatures and parameter
    names, plus torch state_dict loading and saving.
  - :mod:`jaxnn.optim`: optax transforms that follow torch.optim's Adam/AdamW step for step.
"""

from typing import TYPE_CHECKING

from . import functional as functional
from . import optim as optim
from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import load_file as load_file
from ._checkpoint import save_file as save_file

if TYPE_CHECKING:  # imported lazily at run time (they import flax)
    from . import linen as linen
    from . import nnx as nnx

__version__ = "0.1.0"
# The distribution that installs this package. The package index has an unrelated project named
# `jaxnn`; both install a top-level `jaxnn` package, so this tells which one is imported.
__distribution__ = "jaxnn-torch"

__all__ = [
    "CheckpointError", "functional", "optim", "nnx", "linen", "load_file", "save_file", "__version__",
    "__distribution__",
]


def __getattr__(name: str):
    # The Flax front ends import flax; load them on first use so `import jaxnn` stays light.
    if name in ("nnx", "linen"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
