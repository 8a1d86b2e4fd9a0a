"""The calibration's 3x3 convolutions on the CPU: oneDNN for batch-1 inference on small maps.

PyTorch runs a batch-1 convolution (groups 1, a kernel of 3x3 or less) whose input has at most 20480 elements on
its native im2col kernel rather than oneDNN (``ConvParams::use_mkldnn``). The self-calibration's K2 (on the r-times
pooled map) and K3 (in a ResNet's last stage) are such convolutions, and there oneDNN, which PyTorch runs for every
larger input, was faster on a 2-core CPU except on 1x1 maps (docs/scnet_speed.md; the end-to-end effect is measured
by ``benchmarks/scnet_latency.py``). ``CalibrationConv2d`` sends those
convolutions to oneDNN (``torch.mkldnn_convolution``, the op PyTorch's own dispatch calls); everything else, and
every other device, dtype, autograd, ``torch.compile``/``torch.export`` and TorchScript, runs ``nn.Conv2d``'s
forward. Same parameters, state_dict and function (within float round-off).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["CalibrationConv2d", "calibration_conv"]

_ONEDNN = torch.backends.mkldnn.is_available()


def _onednn_serves(x: Tensor) -> bool:
    """Whether ``x`` is a case that PyTorch would leave to its native kernel and oneDNN serves faster: a contiguous
    float32 CPU batch of one, a map larger than 1x1, no autograd, not traced, oneDNN enabled."""
    return (
        _ONEDNN
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.shape[0] == 1
        and x.shape[-2] * x.shape[-1] > 1
        and not torch.is_grad_enabled()
        and x.is_contiguous()
        and torch.backends.mkldnn.enabled
        and not torch.compiler.is_compiling()
    )


def calibration_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> Tensor:
    """``F.conv2d`` (zero padding), through oneDNN where ``x`` is a batch-1 CPU inference case that PyTorch would
    run on its slower native kernel (see the module's docstring). Shapes as ``F.conv2d``'s."""
    if not torch.jit.is_scripting():
        if _onednn_serves(x):
            return torch.mkldnn_convolution(x, weight, bias, padding, stride, dilation, groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


# torch.fx's symbolic tracing cannot branch on a traced tensor: one graph node, run on real tensors later.
torch.fx.wrap("calibration_conv")


class CalibrationConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose batch-1 CPU inference on small maps runs on oneDNN (``calibration_conv``): the
    self-calibration's K2, K3 and K4. Same arguments, parameters and state_dict as ``nn.Conv2d``."""

    def forward(self, x: Tensor) -> Tensor:
        if self.padding_mode != "zeros":
            return self._conv_forward(x, self.weight, self.bias)
        return calibration_conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
