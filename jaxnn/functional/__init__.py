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
from ._attention import multi_head_attention_forward as multi_head_attention_forward
from ._attention import scaled_dot_product_attention as scaled_dot_product_attention
from ._batchnorm import batch_norm as batch_norm
from ._batchnorm import batch_norm_running_stats as batch_norm_running_stats
from ._conv import conv1d as conv1d
from ._conv import conv2d as conv2d
from ._conv import conv3d as conv3d
from ._conv import conv_transpose1d as conv_transpose1d
from ._conv import conv_transpose2d as conv_transpose2d
from ._conv import conv_transpose3d as conv_transpose3d
from ._dropout import alpha_dropout as alpha_dropout
from ._dropout import dropout as dropout
from ._dropout import dropout1d as dropout1d
from ._dropout import dropout2d as dropout2d
from ._dropout import dropout3d as dropout3d
from ._dropout import feature_alpha_dropout as feature_alpha_dropout
from ._embedding import embedding as embedding
from ._embedding import embedding_renorm as embedding_renorm
from ._embedding import one_hot as one_hot
from ._fold import fold as fold
from ._fold import unfold as unfold
from ._grid_sample import affine_grid as affine_grid
from ._grid_sample import grid_sample as grid_sample
from ._instance_norm import instance_norm as instance_norm
from ._instance_norm import instance_norm_running_stats as instance_norm_running_stats
from ._instance_norm import local_response_norm as local_response_norm
from ._interpolate import interpolate as interpolate
from ._interpolate import pixel_shuffle as pixel_shuffle
from ._interpolate import pixel_unshuffle as pixel_unshuffle
from ._interpolate import upsample as upsample
from ._interpolate import upsample_bilinear as upsample_bilinear
from ._interpolate import upsample_nearest as upsample_nearest
from ._loss import binary_cross_entropy as binary_cross_entropy
from ._loss import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._loss import cosine_embedding_loss as cosine_embedding_loss
from ._loss import cross_entropy as cross_entropy
from ._loss import gaussian_nll_loss as gaussian_nll_loss
from ._loss import hinge_embedding_loss as hinge_embedding_loss
from ._loss import huber_loss as huber_loss
from ._loss import kl_div as kl_div
from ._loss import l1_loss as l1_loss
from ._loss import margin_ranking_loss as margin_ranking_loss
from ._loss import mse_loss as mse_loss
from ._loss import multi_margin_loss as multi_margin_loss
from ._loss import multilabel_soft_margin_loss as multilabel_soft_margin_loss
from ._loss import nll_loss as nll_loss
from ._loss import poisson_nll_loss as poisson_nll_loss
from ._loss import smooth_l1_loss as smooth_l1_loss
from ._loss import soft_margin_loss as soft_margin_loss
from ._loss import triplet_margin_loss as triplet_margin_loss
from ._misc import bilinear as bilinear
from ._misc import cosine_similarity as cosine_similarity
from ._misc import normalize as normalize
from ._misc import pairwise_distance as pairwise_distance
from ._misc import softmin as softmin
from ._norm import group_norm as group_norm
from ._norm import layer_norm as layer_norm
from ._norm import linear as linear
from ._norm import rms_norm as rms_norm
from ._pad import pad as pad
from ._pool import adaptive_avg_pool1d as adaptive_avg_pool1d
from ._pool import adaptive_avg_pool2d as adaptive_avg_pool2d
from ._pool import adaptive_avg_pool3d as adaptive_avg_pool3d
from ._pool import adaptive_max_pool1d as adaptive_max_pool1d
from ._pool import adaptive_max_pool1d_with_indices as adaptive_max_pool1d_with_indices
from ._pool import adaptive_max_pool2d as adaptive_max_pool2d
from ._pool import adaptive_max_pool2d_with_indices as adaptive_max_pool2d_with_indices
from ._pool import adaptive_max_pool3d as adaptive_max_pool3d
from ._pool import adaptive_max_pool3d_with_indices as adaptive_max_pool3d_with_indices
from ._pool import avg_pool1d as avg_pool1d
from ._pool import avg_pool2d as avg_pool2d
from ._pool import avg_pool3d as avg_pool3d
from ._pool import lp_pool1d as lp_pool1d
from ._pool import lp_pool2d as lp_pool2d
from ._pool import lp_pool3d as lp_pool3d
from ._pool import max_pool1d as max_pool1d
from ._pool import max_pool1d_with_indices as max_pool1d_with_indices
from ._pool import max_pool2d as max_pool2d
from ._pool import max_pool2d_with_indices as max_pool2d_with_indices
from ._pool import max_pool3d as max_pool3d
from ._pool import max_pool3d_with_indices as max_pool3d_with_indices
from ._unpool import max_unpool1d as max_unpool1d
from ._unpool import max_unpool2d as max_unpool2d
from ._unpool import max_unpool3d as max_unpool3d

__all__ = [
    "batch_norm",
    "batch_norm_running_stats",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "embedding",
    "embedding_renorm",
    "one_hot",
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
    "multi_head_attention_forward",
    "interpolate",
    "pixel_shuffle",
    "pixel_unshuffle",
    "upsample",
    "upsample_bilinear",
    "upsample_nearest",
    "rms_norm",
    "instance_norm",
    "instance_norm_running_stats",
    "local_response_norm",
    "normalize",
    "cosine_similarity",
    "pairwise_distance",
    "softmin",
    "bilinear",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cross_entropy",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d",
    "adaptive_max_pool3d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d",
    "max_pool1d_with_indices",
    "max_pool2d",
    "max_pool2d_with_indices",
    "max_pool3d",
    "max_pool3d_with_indices",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "unfold",
    "fold",
    "grid_sample",
    "affine_grid",
]
