"""Small public building blocks that the operators and both model families share: conv-norm-act, the stride pool."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

LayerType = Callable[..., nn.Module]


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    norm_layer: LayerType | None = nn.BatchNorm2d,
    act_layer: LayerType | None = nn.ReLU,
) -> nn.Sequential:
    """Conv2d (no bias, 'same' padding) -> norm -> activation, as a Sequential with children conv, bn, act."""
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
    )
    if norm_layer is not None:
        layers["bn"] = norm_layer(out_channels)
    if act_layer is not None:
        layers["act"] = act_layer(inplace=True)
    return nn.Sequential(layers)


def stride_avg_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """``avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)``: the average of each stride x
    stride window, the last windows of sides that the stride does not divide taking the pixels that exist.

    Run eagerly on CUDA, for channels_last maps whose sides the stride divides, it is computed as a mean over the
    windows of the (N, H, W, C) view, which keeps channels_last and took a third of the time of PyTorch's
    channels_last ``avg_pool2d`` forward and backward at RedNet-50's 56x56 and 28x28 stride-2 layers on an H100
    (``benchmarks/stride_pool.py``). Elsewhere it is
    ``avg_pool2d``: on a CPU that mean is the slower one, and under torch.compile inductor writes its own pooling
    kernel, while the mean's strides made it fail on a second input size (dynamic shapes).
    """
    if not torch.jit.is_scripting():
        h, w = x.shape[-2:]
        if (x.is_cuda and not torch.compiler.is_compiling() and h % stride == 0 and w % stride == 0
                and x.is_contiguous(memory_format=torch.channels_last)):  # fmt: skip
            return window_mean(x, stride)
    return F.avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)


def window_mean(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Mean of each stride x stride window of a channels_last (N, C, H, W) map whose sides the stride divides,
    as a channels_last (N, C, H/s, W/s) map."""
    n, c, h, w = x.shape
    windows = x.permute(0, 2, 3, 1).reshape(n, h // stride, stride, w // stride, stride, c)
    return windows.mean((2, 4)).permute(0, 3, 1, 2)


# torch.fx's symbolic tracing cannot branch on a traced tensor's device, layout or size: one graph node instead.
torch.fx.wrap("stride_avg_pool")


class StrideAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)`` computed by
    :func:`stride_avg_pool` (faster on CUDA channels_last maps)."""

    def __init__(self, stride: int) -> None:
        super().__init__(stride, stride, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stride_avg_pool(x, self.stride)
