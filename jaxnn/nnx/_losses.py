"""flax.nnx loss modules with torch.nn's constructor and forward signatures (``nn.CrossEntropyLoss``,
...): thin shells over :class:`jaxnn._layers.Loss`, which calls :mod:`jaxnn.functional`'s losses.
``weight`` / ``pos_weight`` are persistent buffers (``nnx.BatchStat``) named as torch's, so
``jaxnn.nnx.state_dict`` / ``load_state_dict`` see torch's keys.

Examples:
  >>> import jax.numpy as jnp
  >>> import jaxnn.nnx as jn
  >>> loss = jn.CrossEntropyLoss(weight=jnp.array([1.0, 2.0]), label_smoothing=0.1)
  >>> loss(jnp.array([[1.0, -1.0]]), jnp.array([1]))
  Array(2.0237548, dtype=float32)
"""

from __future__ import annotations

import jax
from flax import nnx

from .. import _layers as L
from ._modules import _Layer


class L1Loss(_Layer):
    """``torch.nn.L1Loss`` for flax.nnx: the mean absolute error.

    Calls :func:`jaxnn.functional.l1_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "l1_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class MSELoss(_Layer):
    """``torch.nn.MSELoss`` for flax.nnx: the mean squared error.

    Calls :func:`jaxnn.functional.mse_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "mse_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class SmoothL1Loss(_Layer):
    """``torch.nn.SmoothL1Loss`` for flax.nnx: the smooth L1 (quadratic below ``beta``).

    Calls :func:`jaxnn.functional.smooth_l1_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        beta: float = 1.0,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "smooth_l1_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            beta=beta,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class HuberLoss(_Layer):
    """``torch.nn.HuberLoss`` for flax.nnx: the Huber loss (quadratic below ``delta``).

    Calls :func:`jaxnn.functional.huber_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        reduction: str = "mean",
        delta: float = 1.0,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer("huber_loss", reduction=reduction, delta=delta), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class CrossEntropyLoss(_Layer):
    """``torch.nn.CrossEntropyLoss`` for flax.nnx: the cross entropy of logits.

    Calls :func:`jaxnn.functional.cross_entropy` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), ``nnx.BatchStat``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        weight: jax.Array | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "cross_entropy",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            buffers=(("weight", weight),),
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class NLLLoss(_Layer):
    """``torch.nn.NLLLoss`` for flax.nnx: the negative log likelihood of class indices.

    Calls :func:`jaxnn.functional.nll_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), ``nnx.BatchStat``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        weight: jax.Array | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "nll_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            buffers=(("weight", weight),),
            ignore_index=ignore_index,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class BCELoss(_Layer):
    """``torch.nn.BCELoss`` for flax.nnx: the binary cross entropy on probabilities.

    Calls :func:`jaxnn.functional.binary_cross_entropy` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), ``nnx.BatchStat``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        weight: jax.Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "binary_cross_entropy",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            buffers=(("weight", weight),),
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class BCEWithLogitsLoss(_Layer):
    """``torch.nn.BCEWithLogitsLoss`` for flax.nnx: the binary cross entropy on logits.

    Calls :func:`jaxnn.functional.binary_cross_entropy_with_logits` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight``, ``pos_weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), ``nnx.BatchStat``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        weight: jax.Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        pos_weight: jax.Array | None = None,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "binary_cross_entropy_with_logits",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            buffers=(("weight", weight), ("pos_weight", pos_weight),),
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class KLDivLoss(_Layer):
    """``torch.nn.KLDivLoss`` for flax.nnx: the pointwise KL divergence.

    Calls :func:`jaxnn.functional.kl_div` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        log_target: bool = False,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "kl_div",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            log_target=log_target,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class PoissonNLLLoss(_Layer):
    """``torch.nn.PoissonNLLLoss`` for flax.nnx: the Poisson negative log likelihood.

    Calls :func:`jaxnn.functional.poisson_nll_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(log_input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        log_input: bool = True,
        full: bool = False,
        size_average: bool | None = None,
        eps: float = 1e-8,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "poisson_nll_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            log_input=log_input,
            full=full,
            eps=eps,
        ), rngs)

    def __call__(self, log_input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(log_input, others=(target,))


class GaussianNLLLoss(_Layer):
    """``torch.nn.GaussianNLLLoss`` for flax.nnx: the Gaussian negative log likelihood.

    Calls :func:`jaxnn.functional.gaussian_nll_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order (keyword-only, as torch).
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target, var)`` as torch's ``forward``.
    """

    def __init__(
        self,
        *,
        full: bool = False,
        eps: float = 1e-6,
        reduction: str = "mean",
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer("gaussian_nll_loss", reduction=reduction, full=full, eps=eps), rngs)

    def __call__(self, input: jax.Array, target: jax.Array, var: jax.Array | float) -> jax.Array:
        return self._forward(input, others=(target, var))


class CosineEmbeddingLoss(_Layer):
    """``torch.nn.CosineEmbeddingLoss`` for flax.nnx: the cosine embedding loss.

    Calls :func:`jaxnn.functional.cosine_embedding_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input1, input2, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "cosine_embedding_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            margin=margin,
        ), rngs)

    def __call__(self, input1: jax.Array, input2: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input1, others=(input2, target))


class MarginRankingLoss(_Layer):
    """``torch.nn.MarginRankingLoss`` for flax.nnx: the margin ranking loss.

    Calls :func:`jaxnn.functional.margin_ranking_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input1, input2, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        margin: float = 0.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "margin_ranking_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            margin=margin,
        ), rngs)

    def __call__(self, input1: jax.Array, input2: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input1, others=(input2, target))


class HingeEmbeddingLoss(_Layer):
    """``torch.nn.HingeEmbeddingLoss`` for flax.nnx: the hinge embedding loss.

    Calls :func:`jaxnn.functional.hinge_embedding_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        margin: float = 1.0,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "hinge_embedding_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            margin=margin,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class SoftMarginLoss(_Layer):
    """``torch.nn.SoftMarginLoss`` for flax.nnx: the two-class logistic loss.

    Calls :func:`jaxnn.functional.soft_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "soft_margin_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class MultiMarginLoss(_Layer):
    """``torch.nn.MultiMarginLoss`` for flax.nnx: the multi-class hinge loss.

    Calls :func:`jaxnn.functional.multi_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), ``nnx.BatchStat``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: jax.Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "multi_margin_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            buffers=(("weight", weight),),
            p=p,
            margin=margin,
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class MultiLabelSoftMarginLoss(_Layer):
    """``torch.nn.MultiLabelSoftMarginLoss`` for flax.nnx: the multi-label logistic loss.

    Calls :func:`jaxnn.functional.multilabel_soft_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Variables: ``weight`` are persistent buffers (torch's ``register_buffer``:
    in the state_dict when given, absent when None), ``nnx.BatchStat``.

    Call: ``(input, target)`` as torch's ``forward``.
    """

    def __init__(
        self,
        weight: jax.Array | None = None,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "multilabel_soft_margin_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            buffers=(("weight", weight),),
        ), rngs)

    def __call__(self, input: jax.Array, target: jax.Array) -> jax.Array:
        return self._forward(input, others=(target,))


class TripletMarginLoss(_Layer):
    """``torch.nn.TripletMarginLoss`` for flax.nnx: the triplet margin loss.

    Calls :func:`jaxnn.functional.triplet_margin_loss` with the stored configuration.

    Args: torch's constructor arguments, in torch's order.
    The deprecated ``size_average`` / ``reduce`` set ``reduction`` at construction, with torch's warning.
    ``reduction`` and the rest are checked at the call, as torch does.

    Call: ``(anchor, positive, negative)`` as torch's ``forward``.
    """

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        size_average: bool | None = None,
        reduce: bool | None = None,
        reduction: str = "mean",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self._build(L.loss_layer(
            "triplet_margin_loss",
            size_average=size_average,
            reduce=reduce,
            reduction=reduction,
            margin=margin,
            p=p,
            eps=eps,
            swap=swap,
        ), rngs)

    def __call__(self, anchor: jax.Array, positive: jax.Array, negative: jax.Array) -> jax.Array:
        return self._forward(anchor, others=(positive, negative))
