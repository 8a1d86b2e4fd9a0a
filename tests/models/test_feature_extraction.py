"""Our models with the feature extraction utilities of torchvision (FX graph) and timm (``features_only``).

Involution and self-calibrated convolution check shapes in Python, which FX's symbolic tracing cannot run: those
calls are ``torch.fx.wrap``-ped (``adaptconv.ops``), so they appear as single graph nodes and run on real tensors.
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models import FeatureGraphNet, FeatureListNet
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

import adaptconv

NAMES = ["rednet26", "scnet50", "scnet50_v1d"]
#: narrow stage widths (as ``--width 0.25``) keep these tests fast; every block type is still there
NARROW = (16, 32, 64, 128)


pytestmark = pytest.mark.usefixtures("one_thread")


def _features_only(name: str, model: torch.nn.Module, **kwargs) -> torch.nn.Module:
    features = adaptconv.create_model(name, features_only=True, channels=NARROW, **kwargs)
    features.load_state_dict(model.state_dict(), strict=False)  # the classifier's weights, its head left out
    return features.eval()


@pytest.mark.parametrize("name", NAMES)
def test_torchvision_feature_extractor(name):
    model = adaptconv.create_model(name, channels=NARROW).eval()
    train_nodes, eval_nodes = get_graph_node_names(model)
    assert train_nodes == eval_nodes
    # The operators are traced through: their wrapped calls are nodes of the graph.
    op = "involution_aggregate" if name.startswith("rednet") else "calibration_pool"
    assert any(n.endswith(op) for n in eval_nodes)
    # Each stage's output is the last node inside it (the activation after the last residual sum).
    nodes = {[n for n in eval_nodes if n.startswith(f"layer{i}.")][-1]: f"c{i + 1}" for i in range(1, 5)}
    extractor = create_feature_extractor(model, return_nodes=nodes)
    x = torch.randn(1, 3, 67, 93)  # odd sizes: the wrapped calls get real shapes
    with torch.no_grad():
        ours = extractor(x)
        reference = _features_only(name, model)(x)
    assert list(ours) == ["c2", "c3", "c4", "c5"]
    for a, b in zip(ours.values(), reference, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_timm_feature_wrappers(name):
    model = adaptconv.create_model(name, channels=NARROW).eval()
    features = _features_only(name, model)
    assert isinstance(features, FeatureListNet)
    # As documented: stages 1-4 at strides 4, 8, 16, 32 with 4 x the stage width channels.
    assert features.feature_info.channels() == [4 * c for c in NARROW]
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    # timm's FX-based wrapper picks the same modules by tracing the classifier.
    graph = FeatureGraphNet(model, out_indices=(1, 2, 3, 4)).eval()
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        for a, b in zip(graph(x), features(x), strict=True):
            torch.testing.assert_close(a, b)
    # timm's own create_model route gives the same wrapper.
    assert isinstance(timm.create_model(name, features_only=True, channels=NARROW), FeatureListNet)
