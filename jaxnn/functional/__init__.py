"""Pure functions with torch.nn.functional's signatures, defaults, shapes and error conditions.

Every function is jit/vmap/grad-safe: configuration arguments (stride, padding, mode, dims) are
static Python values, arrays are traced. Import as ``import jaxnn.functional as F``.
"""

from ._activation import celu as celu
from ._activation import elu as elu
from ._activation import geglu as geglu
from ._activation import gelu as gelu
from ._activation import glu as glu
from ._activation import hardshrink as hardshrink
from ._activation import hardsigmoid as hardsigmoid
from ._activation import hardswish as hardswish
from ._activation import hardtanh as hardtanh
from ._activation import leaky_relu as leaky_relu
from ._activation import log_softmax as log_softmax
from ._activation import logsigmoid as logsigmoid
from ._activation import mish as mish
from ._activation import prelu as prelu
from ._activation import reglu as reglu
from ._activation import relu as relu
from ._activation import relu6 as relu6
from ._activation import selu as selu
from ._activation import sigmoid as sigmoid
from ._activation import silu as silu
from ._activation import softmax as softmax
from ._activation import softplus as softplus
from ._activation import softshrink as softshrink
from ._activation import softsign as softsign
from ._activation import swiglu as swiglu
from ._activation import swish as swish
from ._activation import tanh as tanh
from ._activation import tanhshrink as tanhshrink
from ._activation import threshold as threshold
from ._attention import scaled_dot_product_attention as scaled_dot_product_attention
from ._batchnorm import batch_norm as batch_norm
from ._batchnorm import batch_norm_running_stats as batch_norm_running_stats
from ._conv import conv1d as conv1d
from ._conv import conv2d as conv2d
from ._conv import conv3d as conv3d
from ._conv import conv_transpose1d as conv_transpose1d
from ._conv import conv_transpose2d as conv_transpose2d
from ._conv import conv_transpose3d as conv_transpose3d
from ._dropout import dropout as dropout
from ._interpolate import interpolate as interpolate
from ._interpolate import pixel_shuffle as pixel_shuffle
from ._interpolate import pixel_unshuffle as pixel_unshuffle
from ._interpolate import upsample as upsample
from ._interpolate import upsample_bilinear as upsample_bilinear
from ._interpolate import upsample_nearest as upsample_nearest
from ._norm import group_norm as group_norm
from ._norm import layer_norm as layer_norm
from ._norm import linear as linear
from ._norm import rms_norm as rms_norm
from ._pad import pad as pad

__all__ = [
    "batch_norm",
    "batch_norm_running_stats",
    "dropout",
    "celu",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "elu",
    "geglu",
    "gelu",
    "glu",
    "group_norm",
    "hardshrink",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsigmoid",
    "mish",
    "pad",
    "prelu",
    "reglu",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softshrink",
    "softsign",
    "swiglu",
    "swish",
    "tanh",
    "tanhshrink",
    "threshold",
    "scaled_dot_product_attention",
    "interpolate",
    "pixel_shuffle",
    "pixel_unshuffle",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
    "rms_norm",
]
