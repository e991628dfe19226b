"""Layer-wise relevance propagation (Bach et al. 2015) via Zennit.

Why Zennit and not Captum's ``LRP``: on the torchxrayvision DenseNet, Captum's LRP returns NaN
maps. Its rules hook the *input tensor* of each layer and multiply the incoming value by the
activation there; in a DenseNet the same tensor feeds a layer and the concatenation that
carries it to every later layer, so relevance gets multiplied by activations again and again
until it overflows. Zennit replaces each layer's gradient by its relevance, so a concatenation
simply splits relevance (conserving it), and its composites are the current practice (e.g.
``EpsilonPlusFlat``: flat rule on the first layer, z+ on convolutions, epsilon on dense layers;
Kohlbrenner et al. 2020). Zennit is an extra dependency (``zennit`` on PyPI, pure Python).

Relevance starts at the target *logit*: a "probability" classifier is explained through
``model.with_output("logit")`` (sigmoid and calibration are not layers LRP can decompose).
Known functional operations (torchxrayvision DenseNet's final ReLU and average pool) run as
modules during attribution (:func:`chexp.baselines.guided.module_relus`) so rules apply to them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attribution import Attribution
from ..models.base import Classifier
from ..targets import Target
from .guided import module_relus


def default_composite() -> object:
    """Zennit's ``EpsilonPlusFlat``; BatchNorm layers pass relevance unchanged (Zennit's
    ``Pass`` rule). No BatchNorm-merging canonizer: zennit's ``SequentialMergeBatchNorm`` pairs
    layers by registration order, which in a DenseNet wrongly pairs a convolution with the next
    layer's norm across a concatenation (and fails on the shapes)."""
    from zennit.composites import EpsilonPlusFlat

    return EpsilonPlusFlat()


class LRP(Attribution):
    """LRP relevance maps for one target logit.

    Args:
        model: classifier to explain; its logits are decomposed.
        composite: a zennit ``Composite``, or a callable returning one (a fresh one is built per
            call); default :func:`default_composite`.

    Maps are signed ``(B, 1, H, W)`` relevances; with conserving rules (e.g. ``EpsilonPlus`` on
    a bias-free network) they sum to the target logit.
    """

    def __init__(self, model: Classifier, composite: object | Callable[[], object] | None = None) -> None:
        super().__init__(model)
        self.composite = composite

    def _make_composite(self) -> object:
        from zennit.core import Composite

        if self.composite is None:
            return default_composite()
        if isinstance(self.composite, Composite):
            return self.composite
        return self.composite()  # type: ignore[operator]

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        from zennit.attribution import Gradient

        model = self.model if self.model.output != "probability" else self.model.with_output("logit")
        columns = target.columns(model, inputs.shape[0])
        with module_relus(model), Gradient(model=model, composite=self._make_composite()) as attributor:
            def initial_relevance(scores: torch.Tensor) -> torch.Tensor:
                one_hot = torch.zeros_like(scores)
                one_hot[torch.arange(len(columns), device=scores.device), columns.to(scores.device)] = 1.0
                return one_hot * scores

            _, relevance = attributor(inputs, initial_relevance)
        return relevance
