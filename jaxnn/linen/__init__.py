"""flax.linen modules with torch.nn's signatures and parameter names, and torch checkpoints.

``params = params_from_state_dict("model.safetensors", template=model.init(key, x))`` then
``model.apply({"params": params}, x)``.
"""

from ._modules import CELU as CELU
from ._modules import ELU as ELU
from ._modules import GEGLU as GEGLU
from ._modules import GELU as GELU
from ._modules import GLU as GLU
from ._modules import SELU as SELU
from ._modules import Conv1d as Conv1d
from ._modules import Conv2d as Conv2d
from ._modules import Conv3d as Conv3d
from ._modules import ConvTranspose1d as ConvTranspose1d
from ._modules import ConvTranspose2d as ConvTranspose2d
from ._modules import ConvTranspose3d as ConvTranspose3d
from ._modules import GroupNorm as GroupNorm
from ._modules import Hardshrink as Hardshrink
from ._modules import Hardsigmoid as Hardsigmoid
from ._modules import Hardswish as Hardswish
from ._modules import Hardtanh as Hardtanh
from ._modules import LayerNorm as LayerNorm
from ._modules import LeakyReLU as LeakyReLU
from ._modules import Linear as Linear
from ._modules import LogSigmoid as LogSigmoid
from ._modules import LogSoftmax as LogSoftmax
from ._modules import Mish as Mish
from ._modules import PReLU as PReLU
from ._modules import ReLU as ReLU
from ._modules import ReLU6 as ReLU6
from ._modules import Sigmoid as Sigmoid
from ._modules import SiLU as SiLU
from ._modules import Softmax as Softmax
from ._modules import Softplus as Softplus
from ._modules import Softshrink as Softshrink
from ._modules import Softsign as Softsign
from ._modules import Tanh as Tanh
from ._modules import Tanhshrink as Tanhshrink
from ._modules import Threshold as Threshold
from ._state_dict import load_result as load_result
from ._state_dict import params_from_state_dict as params_from_state_dict
from ._state_dict import save_params as save_params
from ._state_dict import state_dict_from_params as state_dict_from_params

__all__ = [
    "CELU", "ELU", "GEGLU", "GELU", "GLU", "SELU", "Conv1d", "Conv2d", "Conv3d",
    "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "GroupNorm", "Hardshrink",
    "Hardsigmoid", "Hardswish", "Hardtanh", "LayerNorm", "LeakyReLU", "Linear", "LogSigmoid",
    "LogSoftmax", "Mish", "PReLU", "ReLU", "ReLU6", "SiLU", "Sigmoid", "Softmax",
    "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink", "Threshold", "load_result",
    "params_from_state_dict", "save_params", "state_dict_from_params",
]
