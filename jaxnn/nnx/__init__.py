"""flax.nnx modules with torch.nn's signatures, parameter names and layouts, and torch checkpoints.

Write the model with the same structure and attribute names as the torch one (``ModuleList`` /
``Sequential`` children by index), then ``load_state_dict(model, "model.safetensors")``.
"""

from ._modules import CELU as CELU
from ._modules import ELU as ELU
from ._modules import GEGLU as GEGLU
from ._modules import GELU as GELU
from ._modules import GLU as GLU
from ._modules import SELU as SELU
from ._modules import BatchNorm1d as BatchNorm1d
from ._modules import BatchNorm2d as BatchNorm2d
from ._modules import BatchNorm3d as BatchNorm3d
from ._modules import Buffer as Buffer
from ._modules import Conv1d as Conv1d
from ._modules import Conv2d as Conv2d
from ._modules import Conv3d as Conv3d
from ._modules import ConvTranspose1d as ConvTranspose1d
from ._modules import ConvTranspose2d as ConvTranspose2d
from ._modules import ConvTranspose3d as ConvTranspose3d
from ._modules import Dropout as Dropout
from ._modules import Flatten as Flatten
from ._modules import GroupNorm as GroupNorm
from ._modules import Hardshrink as Hardshrink
from ._modules import Hardsigmoid as Hardsigmoid
from ._modules import Hardswish as Hardswish
from ._modules import Hardtanh as Hardtanh
from ._modules import Identity as Identity
from ._modules import LayerNorm as LayerNorm
from ._modules import LeakyReLU as LeakyReLU
from ._modules import Linear as Linear
from ._modules import LogSigmoid as LogSigmoid
from ._modules import LogSoftmax as LogSoftmax
from ._modules import Mish as Mish
from ._modules import ModuleList as ModuleList
from ._modules import MultiheadAttention as MultiheadAttention
from ._modules import PixelShuffle as PixelShuffle
from ._modules import PixelUnshuffle as PixelUnshuffle
from ._modules import PReLU as PReLU
from ._modules import ReLU as ReLU
from ._modules import ReLU6 as ReLU6
from ._modules import RMSNorm as RMSNorm
from ._modules import Sequential as Sequential
from ._modules import Sigmoid as Sigmoid
from ._modules import SiLU as SiLU
from ._modules import Softmax as Softmax
from ._modules import Softplus as Softplus
from ._modules import Softshrink as Softshrink
from ._modules import Softsign as Softsign
from ._modules import Tanh as Tanh
from ._modules import Tanhshrink as Tanhshrink
from ._modules import Threshold as Threshold
from ._modules import Upsample as Upsample
from ._modules import UpsamplingBilinear2d as UpsamplingBilinear2d
from ._modules import UpsamplingNearest2d as UpsamplingNearest2d
from ._state_dict import CheckpointError as CheckpointError
from ._state_dict import LoadResult as LoadResult
from ._state_dict import load_state_dict as load_state_dict
from ._state_dict import save_state_dict as save_state_dict
from ._state_dict import state_dict as state_dict

# Every name imported above (the `X as X` imports are the explicit re-exports type checkers read).
__all__ = sorted(name for name in dir() if not name.startswith("_"))  # pyright: ignore[reportUnsupportedDunderAll]
