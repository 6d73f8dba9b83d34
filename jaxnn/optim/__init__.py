"""optax GradientTransformations whose trajectories match torch.optim's Adam and AdamW.

Use like any optax optimizer; decay needs the params: ``opt.update(grads, state, params)``.
"""

from ._adam import ClipGradNormState as ClipGradNormState
from ._adam import ScaleByTorchAdamState as ScaleByTorchAdamState
from ._adam import adam as adam
from ._adam import adamw as adamw
from ._adam import clip_grad_norm as clip_grad_norm
from ._adam import decay_weights as decay_weights
from ._adam import negate_if as negate_if
from ._adam import scale_by_torch_adam as scale_by_torch_adam

__all__ = [
    "ClipGradNormState",
    "ScaleByTorchAdamState",
    "adam",
    "adamw",
    "clip_grad_norm",
    "decay_weights",
    "negate_if",
    "scale_by_torch_adam",
]
