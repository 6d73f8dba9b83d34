"""optax GradientTransformations whose trajectories match torch.optim's Adam and AdamW, and
torch.nn.utils' gradient clipping.

Use like any optax optimizer; decay needs the params: ``opt.update(grads, state, params)``.
Clip before the optimizer: ``optax.chain(clip_grad_norm(1.0), adamw(1e-3))``; the total norm that
torch's ``clip_grad_norm_`` returns is ``total_grad_norm(state)`` after each update.
"""

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

__all__ = [
    "ClipGradNormState",
    "DecoupledDecayState",
    "ScaleByTorchAdamState",
    "adam",
    "adamw",
    "clip_grad_norm",
    "clip_grad_value",
    "clip_grads_with_norm",
    "decay_weights",
    "decoupled_weight_decay",
    "get_total_norm",
    "negate_if",
    "scale_by_torch_adam",
    "total_grad_norm",
]
