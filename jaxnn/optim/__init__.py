"""optax GradientTransformations whose trajectories match torch.optim's Adam and AdamW.

Use like any optax optimizer; decay needs the params: ``opt.update(grads, state, params)``.
"""

from ._adam import ClipGradNormState as ClipGradNormState
from ._adam import DecoupledDecayState as DecoupledDecayState
from ._adam import ScaleByTorchAdamState as ScaleByTorchAdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adam import clip_grad_norm as clip_grad_norm
from ._adam import decay_weights as decay_weights
from ._adam import decoupled_weight_decay as decoupled_weight_decay
from ._adam import negate_if as negate_if
from ._adam import scale_by_torch_adam as scale_by_torch_adam

__all__ = [
    "ClipGradNormState",
    "DecoupledDecayState",
    "ScaleByTorchAdamState",
    "adam",
    "adamw",
    "clip_grad_norm",
    "decay_weights",
    "decoupled_weight_decay",
    "negate_if",
    "scale_by_torch_adam",
]
