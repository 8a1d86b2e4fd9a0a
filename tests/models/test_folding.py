"""Inference folding (``adaptconv.fuse_for_inference``): batch norms folded into the convolutions before them, the
eval-mode function kept within float32 round-off, for SCNet, RedNet and timm's ResNets."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn as nn
from helpers import randomize_norms, rel_error

import adaptconv
from adaptconv.ops import Involution2d

#: the norms no convolution comes right before: RedNet's after each involution (the block's and the stem's)
UNFOLDED = {"rednet26": 1 + 8}


@pytest.mark.parametrize("name", ["scnet50", "scnet50_v1d", "rednet26", "resnet50", "resnet50d"])
def test_folded_model_computes_the_eval_function(name):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 72)
    model = adaptconv.create_model(name) if name.startswith(("sc", "red")) else timm.create_model(name)
    model = randomize_norms(model, x).eval()
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = adaptconv.fuse_for_inference(model)
    assert folded is not model and not folded.training
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == norms  # the model is left as it is
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == UNFOLDED.get(name, 0)
    with torch.no_grad():
        eager, got = model(x), folded(x)
        # float64: the same function to round-off; float32: as close to it as the eager model (a random deep
        # network is ill-conditioned in float32: both err by ~1e-4)
        model.double()
        exact, exact_folded = model(x.double()), adaptconv.fuse_for_inference(model)(x.double())
    assert rel_error(exact_folded, exact) < 1e-10
    assert rel_error(got.double(), exact) <= 2 * rel_error(eager.double(), exact) + 1e-6
    if name.startswith("rednet"):  # the kernel generation's 1x1 conv + norm is folded too
        assert all(isinstance(m.reduce[1], nn.Identity) for m in folded.modules() if isinstance(m, Involution2d))


def test_folded_scnet_keeps_official_names_with_biases():
    folded = adaptconv.fuse_for_inference(adaptconv.create_model("scnet50", num_classes=10))
    keys = folded.state_dict()
    assert "layer1.0.conv1_a.bias" in keys and "layer1.0.scconv.k4.0.bias" in keys
    assert not any(".bn1_a." in k or ".k1.1." in k for k in keys)


def test_folded_official_layers_equal_the_folded_merged_layers():
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    merged = randomize_norms(adaptconv.create_model("scnet50", num_classes=10), x).double().eval()
    official = adaptconv.create_model("scnet50", num_classes=10, official_layers=True).double().eval()
    official.load_state_dict(merged.state_dict())
    with torch.no_grad():
        a = adaptconv.fuse_for_inference(merged)(x)
        b = adaptconv.fuse_for_inference(official)(x)
    assert rel_error(a, b) < 1e-12


def test_a_norm_before_a_convolution_is_not_folded():
    preact = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3))
    folded = adaptconv.fuse_for_inference(preact)
    assert isinstance(folded[0], nn.BatchNorm2d)
