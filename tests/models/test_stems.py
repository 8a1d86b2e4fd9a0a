"""The small-input stem (``stem="cifar"``) for our models and timm's ResNet baselines alike."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import adaptconv

BASELINES = ["resnet18", "resnet26", "resnet50", "resnet50d"]


@pytest.mark.parametrize("name", adaptconv.list_models() + BASELINES)
def test_cifar_stem_keeps_the_input_resolution(name):
    features = adaptconv.create_model(name, stem="cifar", features_only=True).eval()
    maps = features(torch.randn(1, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4]
    assert features.feature_info.reduction() == [1, 2, 4, 8]
    model = adaptconv.create_model(name, stem="cifar", num_classes=10)
    assert isinstance(model.maxpool, nn.Identity)
    assert not any(m.stride != (1, 1) for m in model.conv1.modules() if isinstance(m, nn.Conv2d))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # training mode, batch 2: the calibration branch works


@pytest.mark.parametrize("name", ["resnet18", "scnet50", "rednet26"])
def test_imagenet_stem_is_the_default(name):
    default, explicit = adaptconv.create_model(name), adaptconv.create_model(name, stem="imagenet")
    assert str(default.conv1) == str(explicit.conv1) and not isinstance(default.maxpool, nn.Identity)


def test_stem_errors_name_the_choices():
    with pytest.raises(ValueError, match="stem must be one of"):
        adaptconv.create_model("resnet18", stem="tiny")
    with pytest.raises(ValueError, match="stem must be one of"):
        adaptconv.create_model("rednet26", stem="tiny")
    with pytest.raises(TypeError, match="ResNet-family"):
        adaptconv.create_model("mobilenetv3_small_050", stem="cifar")
