"""The calibration gate taken by the hook is the gate that SC-Conv computes (Eq. 3), and it is drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from adaptconv.visualize import VisualizeError, calibration_gate, draw_calibration_gate, sc_blocks


def _gate_from_weights(conv, x: torch.Tensor) -> torch.Tensor:
    """sigmoid(x + Up(BN(K2 * AvgPool_4(x)))), written out from the weights (eval-mode BN)."""
    k2, bn = conv.k2[1], conv.k2[2]
    y = F.conv2d(F.avg_pool2d(x, 4, 4), k2.weight, padding=k2.padding, dilation=k2.dilation, groups=k2.groups)
    y = (y - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
    y = y * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    return torch.sigmoid(x + F.interpolate(y, size=x.shape[-2:], mode="nearest"))


@pytest.mark.parametrize("block", ["layer1.0", "layer2.3.scconv"])
def test_hooked_gate_is_the_gate_recomputed_from_the_weights(scnet, photo, block):
    name = block.removesuffix(".scconv")
    conv = sc_blocks(scnet)[name]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # BN statistics that are not the identity, so that they matter
        bn = conv.k2[2]
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.2)
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
        bn.weight.copy_(torch.rand(bn.weight.shape, generator=g) + 0.5)
    inputs = []
    handle = conv.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
    try:
        got_name, gate = calibration_gate(scnet, photo, block)
    finally:
        handle.remove()
    assert got_name == name
    expected = _gate_from_weights(conv, inputs[0])[0]
    assert gate.shape == expected.shape == (conv.in_channels, *inputs[0].shape[-2:])
    torch.testing.assert_close(gate, expected, rtol=1e-5, atol=1e-6)


def test_hook_point_changes_neither_numerics_nor_state_dict(scnet):
    conv = sc_blocks(scnet)["layer1.0"]
    assert not any("calibration_gate" in key for key in scnet.state_dict())
    x = torch.randn(1, conv.in_channels, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(conv.gate(x), _gate_from_weights(conv, x), rtol=1e-5, atol=1e-6)


def test_default_block_and_errors(scnet, rednet, photo):
    assert calibration_gate(scnet, photo)[0] == "layer2.3"  # the last block of the second stage
    with pytest.raises(VisualizeError, match=r"no SC block 'layer9.0'.*layer1.0-2, layer2.0-3"):
        calibration_gate(scnet, photo, "layer9.0")
    with pytest.raises(VisualizeError, match="no self-calibrated convolution"):
        calibration_gate(rednet, photo)


def test_picture(scnet, photo, tmp_path):
    name, gate = calibration_gate(scnet, photo)
    path = draw_calibration_gate(gate, photo, "test", tmp_path / "gate.png", block=name)
    with Image.open(path) as png:
        # (3 panels x 3.2 in + 1.2 in) x 100 dpi wide; high: the 64 x 96 input over the mean, two rows of channels
        assert png.size == (1080, 976)
        assert len(np.unique(np.asarray(png.convert("L")))) > 50  # not blank
