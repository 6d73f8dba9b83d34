"""optax GradientTransformations whose trajectories match torch.optim's Adam and AdamW, and
torch.nn.utils' gradient clipping.

Use like any optax optimizer; decay needs the params: ``opt.update(grads, state, params)``.
Also torch's SGD, RMSprop, Adagrad, Adamax, NAdam, RAdam and Adadelta (``sgd``, ``rmsprop``, ...),
parameter groups (``param_groups``) and ``torch.optim.lr_scheduler`` (``lr_scheduler``).
Clip before the optimizer: ``optax.chain(clip_grad_norm(1.0), adamw(1e-3))``; the total norm that
torch's ``clip_grad_norm_`` returns is ``total_grad_norm(state)`` after each update.
"""

from . import lr_scheduler as lr_scheduler
from ._adam import DecoupledDecayState as DecoupledDecayState
from ._adam import ScaleByTorchAdamState as ScaleByTorchAdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adam import decay_weights as decay_weights
from ._adam import decoupled_weight_decay as decoupled_weight_decay
from ._adam import negate_if as negate_if
from ._adam import scale_by_torch_adam as scale_by_torch_adam
from ._clip import ClipGradNormState as ClipGradNormState
from ._clip import clip_grad_norm as clip_grad_norm
from ._clip import clip_grad_value as clip_grad_value
from ._clip import clip_grads_with_norm as clip_grads_with_norm
from ._clip import get_total_norm as get_total_norm
from ._clip import total_grad_norm as total_grad_norm
from ._groups import param_group_labels as param_group_labels
from ._groups import param_groups as param_groups
from ._others import ScaleByTorchAdadeltaState as ScaleByTorchAdadeltaState
from ._others import ScaleByTorchAdagradState as ScaleByTorchAdagradState
from ._others import ScaleByTorchAdamaxState as ScaleByTorchAdamaxState
from ._others import ScaleByTorchNAdamState as ScaleByTorchNAdamState
from ._others import ScaleByTorchRAdamState as ScaleByTorchRAdamState
from ._others import ScaleByTorchRMSpropState as ScaleByTorchRMSpropState
from ._others import adadelta as adadelta
from ._others import adagrad as adagrad
from ._others import adamax as adamax
from ._others import nadam as nadam
from ._others import radam as radam
from ._others import rmsprop as rmsprop
from ._others import scale_by_torch_adadelta as scale_by_torch_adadelta
from ._others import scale_by_torch_adagrad as scale_by_torch_adagrad
from ._others import scale_by_torch_adamax as scale_by_torch_adamax
from ._others import scale_by_torch_nadam as scale_by_torch_nadam
from ._others import scale_by_torch_radam as scale_by_torch_radam
from ._others import scale_by_torch_rmsprop as scale_by_torch_rmsprop
from ._sgd import ScaleByTorchMomentumState as ScaleByTorchMomentumState
from ._sgd import scale_by_torch_momentum as scale_by_torch_momentum
from ._sgd import sgd as sgd

__all__ = [
    "ClipGradNormState",
    "DecoupledDecayState",
    "ScaleByTorchAdadeltaState",
    "ScaleByTorchAdagradState",
    "ScaleByTorchAdamState",
    "ScaleByTorchAdamaxState",
    "ScaleByTorchMomentumState",
    "ScaleByTorchNAdamState",
    "ScaleByTorchRAdamState",
    "ScaleByTorchRMSpropState",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "clip_grad_norm",
    "clip_grad_value",
    "clip_grads_with_norm",
    "decay_weights",
    "decoupled_weight_decay",
    "get_total_norm",
    "lr_scheduler",
    "nadam",
    "negate_if",
    "param_group_labels",
    "param_groups",
    "radam",
    "rmsprop",
    "scale_by_torch_adadelta",
    "scale_by_torch_adagrad",
    "scale_by_torch_adam",
    "scale_by_torch_adamax",
    "scale_by_torch_momentum",
    "scale_by_torch_nadam",
    "scale_by_torch_radam",
    "scale_by_torch_rmsprop",
    "sgd",
    "total_grad_norm",
]
