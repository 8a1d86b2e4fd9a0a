"""Small building blocks shared by the operators and the models."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch.nn as nn

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
