"""The calibration's 3x3 convolutions: oneDNN in batch-1 CPU inference on small maps, the plain conv elsewhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from adaptconv.ops.self_calibration.cpu import CalibrationConv2d

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")


def convs_run(module: nn.Module, x: torch.Tensor) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(x)
    return {e.name for e in prof.events() if "conv" in e.name}


def pair(stride: int, dilation: int, groups: int, bias: bool) -> tuple[nn.Conv2d, CalibrationConv2d]:
    torch.manual_seed(0)
    plain = nn.Conv2d(16, 16, 3, stride, dilation, dilation, groups=groups, bias=bias)
    ours = CalibrationConv2d(16, 16, 3, stride, dilation, dilation, groups=groups, bias=bias)
    ours.load_state_dict(plain.state_dict())
    return plain, ours


@pytest.mark.parametrize("stride, dilation, groups, bias", [(1, 1, 1, False), (2, 1, 1, True), (1, 2, 2, False)])
@pytest.mark.parametrize("size", [1, 3, 7, 14])
def test_gives_the_plain_conv_and_runs_onednn_on_small_maps(stride, dilation, groups, bias, size):
    plain, ours = pair(stride, dilation, groups, bias)
    assert list(ours.state_dict()) == list(plain.state_dict())
    x = torch.randn(1, 16, size, size)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), plain(x), rtol=1e-5, atol=1e-5)
        # on 1x1 maps the native kernel is faster: ours leaves them to PyTorch, which sends grouped convs to oneDNN
        assert ("aten::mkldnn_convolution" in convs_run(ours, x)) == (size > 1 or groups > 1)


@pytest.mark.parametrize("case", ["grad", "float64", "batch 2"])
def test_other_cases_run_the_plain_conv(case):
    plain, ours = pair(1, 1, 1, False)
    x = torch.randn(2 if case == "batch 2" else 1, 16, 7, 7)
    if case == "float64":
        plain, ours, x = plain.double(), ours.double(), x.double()
    with torch.set_grad_enabled(case == "grad"):
        assert convs_run(ours, x) == convs_run(plain, x)
        torch.testing.assert_close(ours(x), plain(x), rtol=0, atol=0)


def test_respects_the_onednn_switch():
    plain, ours = pair(1, 1, 1, False)
    x = torch.randn(1, 16, 7, 7)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        assert "aten::mkldnn_convolution" not in convs_run(ours, x)
        torch.testing.assert_close(ours(x), plain(x), rtol=0, atol=0)
