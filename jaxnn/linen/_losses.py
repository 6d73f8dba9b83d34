"""flax.linen loss modules with torch.nn's constructor and forward signatures (``nn.CrossEntropyLoss``,
...): thin shells over :class:`jaxnn._layers.Loss`, which calls :mod:`jaxnn.functional`'s losses.
``weight`` / ``pos_weight`` are persistent buffers in the ``batch_stats`` collection, named as torch's.
A module built with the deprecated ``size_average`` / ``reduce`` warns each time flax rebuilds it.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> import jaxnn.linen as jl
  >>> loss = jl.MSELoss(reduction="sum")
  >>> loss.apply({}, jnp.array([1.0, 2.0]), jnp.zeros(2))
  Array(5., dtype=float32)
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from .. import _layers as L
from ._modules import _Layer


class L1Loss(_Layer):
    """``torch.nn.L1Loss`` for flax.linen: the mean absolute error.

    Calls :func:`jaxnn.functional.l1_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "l1_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class MSELoss(_Layer):
    """``torch.nn.MSELoss`` for flax.linen: the mean squared error.

    Calls :func:`jaxnn.functional.mse_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "mse_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class SmoothL1Loss(_Layer):
    """``torch.nn.SmoothL1Loss`` for flax.linen: the smooth L1 (quadratic below ``beta``).

    Calls :func:`jaxnn.functional.smooth_l1_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"
    beta: float = 1.0

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "smooth_l1_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            beta=self.beta,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class HuberLoss(_Layer):
    """``torch.nn.HuberLoss`` for flax.linen: the Huber loss (quadratic below ``delta``).

    Calls :func:`jaxnn.functional.huber_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    reduction: str = "mean"
    delta: float = 1.0

    def _layer(self) -> L.Layer:
        return L.loss_layer("huber_loss", reduction=self.reduction, delta=self.delta)

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class CrossEntropyLoss(_Layer):
    """``torch.nn.CrossEntropyLoss`` for flax.linen: the cross entropy of logits.

    Calls :func:`jaxnn.functional.cross_entropy` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), in ``batch_stats``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    weight: jax.Array | None = None
    size_average: bool | None = None
    ignore_index: int = -100
    reduce: bool | None = None
    reduction: str = "mean"
    label_smoothing: float = 0.0

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "cross_entropy",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            buffers=(("weight", self.weight),),
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class NLLLoss(_Layer):
    """``torch.nn.NLLLoss`` for flax.linen: the negative log likelihood of class indices.

    Calls :func:`jaxnn.functional.nll_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), in ``batch_stats``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    weight: jax.Array | None = None
    size_average: bool | None = None
    ignore_index: int = -100
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "nll_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            buffers=(("weight", self.weight),),
            ignore_index=self.ignore_index,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class BCELoss(_Layer):
    """``torch.nn.BCELoss`` for flax.linen: the binary cross entropy on probabilities.

    Calls :func:`jaxnn.functional.binary_cross_entropy` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), in ``batch_stats``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    weight: jax.Array | None = None
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "binary_cross_entropy",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            buffers=(("weight", self.weight),),
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class BCEWithLogitsLoss(_Layer):
    """``torch.nn.BCEWithLogitsLoss`` for flax.linen: the binary cross entropy on logits.

    Calls :func:`jaxnn.functional.binary_cross_entropy_with_logits` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight``, ``pos_weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), in ``batch_stats``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    weight: jax.Array | None = None
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"
    pos_weight: jax.Array | None = None

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "binary_cross_entropy_with_logits",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            buffers=(("weight", self.weight), ("pos_weight", self.pos_weight),),
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class KLDivLoss(_Layer):
    """``torch.nn.KLDivLoss`` for flax.linen: the pointwise KL divergence.

    Calls :func:`jaxnn.functional.kl_div` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"
    log_target: bool = False

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "kl_div",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            log_target=self.log_target,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class PoissonNLLLoss(_Layer):
    """``torch.nn.PoissonNLLLoss`` for flax.linen: the Poisson negative log likelihood.

    Calls :func:`jaxnn.functional.poisson_nll_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(log_input, target)`` as torch's ``forward``.
    """

    log_input: bool = True
    full: bool = False
    size_average: bool | None = None
    eps: float = 1e-8
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "poisson_nll_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            log_input=self.log_input,
            full=self.full,
            eps=self.eps,
        )

    @nn.compact
    def __call__(self, log_input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(log_input, others=(target,))


class GaussianNLLLoss(_Layer):
    """``torch.nn.GaussianNLLLoss`` for flax.linen: the Gaussian negative log likelihood.

    Calls :func:`jaxnn.functional.gaussian_nll_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order (keyword-only, as torch).
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target, var)`` as torch's ``forward``.
    """

    _: dataclasses.KW_ONLY
    full: bool = False
    eps: float = 1e-6
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "gaussian_nll_loss",
            reduction=self.reduction,
            full=self.full,
            eps=self.eps,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array, var: jax.Array | float) -> jax.Array:
        return self._forward(input, others=(target, var))


class CosineEmbeddingLoss(_Layer):
    """``torch.nn.CosineEmbeddingLoss`` for flax.linen: the cosine embedding loss.

    Calls :func:`jaxnn.functional.cosine_embedding_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input1, input2, target)`` as torch's ``forward``.
    """

    margin: float = 0.0
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "cosine_embedding_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            margin=self.margin,
        )

    @nn.compact
    def __call__(self, input1: jax.Array, input2: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input1, others=(input2, target))


class MarginRankingLoss(_Layer):
    """``torch.nn.MarginRankingLoss`` for flax.linen: the margin ranking loss.

    Calls :func:`jaxnn.functional.margin_ranking_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input1, input2, target)`` as torch's ``forward``.
    """

    margin: float = 0.0
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "margin_ranking_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            margin=self.margin,
        )

    @nn.compact
    def __call__(self, input1: jax.Array, input2: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input1, others=(input2, target))


class HingeEmbeddingLoss(_Layer):
    """``torch.nn.HingeEmbeddingLoss`` for flax.linen: the hinge embedding loss.

    Calls :func:`jaxnn.functional.hinge_embedding_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    margin: float = 1.0
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "hinge_embedding_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            margin=self.margin,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class SoftMarginLoss(_Layer):
    """``torch.nn.SoftMarginLoss`` for flax.linen: the two-class logistic loss.

    Calls :func:`jaxnn.functional.soft_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "soft_margin_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class MultiMarginLoss(_Layer):
    """``torch.nn.MultiMarginLoss`` for flax.linen: the multi-class hinge loss.

    Calls :func:`jaxnn.functional.multi_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), in ``batch_stats``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    p: int = 1
    margin: float = 1.0
    weight: jax.Array | None = None
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "multi_margin_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            buffers=(("weight", self.weight),),
            p=self.p,
            margin=self.margin,
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class MultiLabelSoftMarginLoss(_Layer):
    """``torch.nn.MultiLabelSoftMarginLoss`` for flax.linen: the multi-label logistic loss.

    Calls :func:`jaxnn.functional.multilabel_soft_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), in ``batch_stats``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    weight: jax.Array | None = None
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "multilabel_soft_margin_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            buffers=(("weight", self.weight),),
        )

    @nn.compact
    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class TripletMarginLoss(_Layer):
    """``torch.nn.TripletMarginLoss`` for flax.linen: the triplet margin loss.

    Calls :func:`jaxnn.functional.triplet_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(anchor, positive, negative)`` as torch's ``forward``.
    """

    margin: float = 1.0
    p: float = 2.0
    eps: float = 1e-6
    swap: bool = False
    size_average: bool | None = None
    reduce: bool | None = None
    reduction: str = "mean"

    def _layer(self) -> L.Layer:
        return L.loss_layer(
            "triplet_margin_loss",
            size_average=self.size_average,
            reduce=self.reduce,
            reduction=self.reduction,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
        )

    @nn.compact
    def __call__(self, anchor: jax.Array, positive: jax.Array, negative: jax.Array) -> jax.Array:
        return self._forward(anchor, others=(positive, negative))
