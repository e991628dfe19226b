"""IBA on the torchxrayvision DenseNet121 architecture (random weights: mechanics, not meaning)."""

from __future__ import annotations

import pytest
import torch

from chexp.iba import IBA, BottleneckConfig, MultiLayerIBA, TargetBCE, UnitStatistics, reference_attribute

pytestmark = pytest.mark.filterwarnings("ignore:IBA statistics")


def test_densenet_bottleneck_after_dense_block_3() -> None:
    from chexp.models.xrv import densenet121_architecture

    model = densenet121_architecture(output="probability")
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(2, 1, 224, 224, generator=g) * 2 - 1) * 1024
    stats = UnitStatistics.fit(model, "features.denseblock3", images, progress=False)
    assert stats.layer == "model.features.denseblock3" and stats.shape == (1024, 14, 14)
    target = next(t for t in model.targets if t)
    loss = TargetBCE(target)
    iba = IBA(model, "features.denseblock3", stats, steps=2, samples=2)
    maps = iba.attribute(images[:1], target=loss)
    assert maps.shape == (1, 1, 224, 224)
    assert iba.last_results[0].replayed  # the front ran once, the steps only behind the block
    assert iba.last_results[0].scored_on == "logit"  # BCE on the logits, not on the op-normalised probability
    ref = reference_attribute(model, "denseblock3", images[:1], TargetBCE(target), stats,
                              BottleneckConfig(steps=2, samples=2))
    assert float((maps - ref).abs().max()) <= 1e-4 * float(ref.max() - ref.min())
    multi = MultiLayerIBA(model)  # default: after dense blocks 1, 2 and 3
    assert multi.layer_names == [f"model.features.denseblock{i}" for i in (1, 2, 3)]
