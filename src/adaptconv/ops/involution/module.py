"""Involution layer (Li et al., CVPR 2021): a K x K kernel generated at every pixel from that pixel's features."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ...layers import LayerType, StrideAvgPool2d, conv_norm_act
from ..common import check_feature_map, check_kernel_size, check_positive_int
from .op import involution_aggregate, involution_fused

__all__ = ["Involution2d"]

# torch.fx's symbolic tracing (torchvision's create_feature_extractor, timm's FX features) cannot run the shape
# checks of these functions on a traced tensor: record each call as one graph node, run on real tensors later.
# The aggregation stays the custom op inside; torch.compile and torch.export do not use these wrappers.
for _name in ("check_feature_map", "involution_aggregate", "involution_fused"):
    torch.fx.wrap(_name)


class Involution2d(nn.Module):
    """Involution: ``y = aggregate(x, span(reduce(pool(x))))``.

    Kernel generation (paper Eq. 6): an optional average pool by the stride, a 1x1 conv to C/r channels with norm
    and activation (``reduce``), and a 1x1 conv with bias to K*K*G channels (``span``), G = C / group_channels.
    Each of the G kernels is shared by the ``group_channels`` consecutive channels of its group.

    The pool uses ``ceil_mode=True`` so that the kernel grid always matches the aggregation's output grid
    (ceil(H/s) x ceil(W/s)): for even sizes this is the official floor pooling exactly; for odd sizes, where the
    official code fails or reads out of bounds, the last window averages the pixels that exist. It is declared
    with ``count_include_pad=False``, the same function without padding, because inductor's backward of the
    default (``count_include_pad=True``) divides such a last window by the full window size (PyTorch issue
    #198119, open in 2.14): under ``torch.compile`` the input gradient would be wrong on odd sizes.

    Args:
        channels: C, input and output channels; a multiple of ``group_channels``.
        kernel_size: K, odd (7 in RedNet's blocks, 3 in its stem).
        stride: spatial stride.
        dilation: dilation of the K x K window; padding keeps 'same' size at stride 1.
        group_channels: channels that share one kernel (16 in the paper).
        reduction: r, channel reduction of the kernel generator (4 in the paper).
        norm_layer, act_layer: layer types used after the reducing 1x1 conv.
        fused: compute the kernels inside the aggregation (``involution_fused``) instead of storing them; the
            same function and parameters. Off by default until it is benchmarked against the unfused path.

    Shape: (N, C, H, W) -> (N, C, ceil(H/s), ceil(W/s)).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 7,
        stride: int = 1,
        dilation: int = 1,
        group_channels: int = 16,
        reduction: int = 4,
        norm_layer: LayerType = nn.BatchNorm2d,
        act_layer: LayerType = nn.ReLU,
        fused: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_kernel_size(kernel_size)
        check_positive_int(stride, "stride")
        check_positive_int(dilation, "dilation")
        check_positive_int(group_channels, "group_channels")
        check_positive_int(reduction, "reduction")
        if channels % group_channels != 0:
            raise ValueError(
                f"channels ({channels}) must be a multiple of group_channels ({group_channels}): "
                "each kernel is shared by one group of group_channels channels"
            )
        if channels // reduction < 1:
            raise ValueError(f"reduction ({reduction}) leaves no channels for channels={channels}")
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.padding = dilation * (kernel_size - 1) // 2
        self.groups = channels // group_channels
        self.fused = fused
        self.avgpool = StrideAvgPool2d(stride) if stride > 1 else nn.Identity()
        self.reduce = conv_norm_act(channels, channels // reduction, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.span = nn.Conv2d(channels // reduction, kernel_size * kernel_size * self.groups, 1, bias=True)

    def reduced(self, x: Tensor) -> Tensor:
        """The kernel generator's reduced features, (N, C/r, H_out, W_out)."""
        return self.reduce(self.avgpool(x))

    def kernels(self, x: Tensor) -> Tensor:
        """The generated kernels, (N, G*K*K, H_out, W_out), group-major."""
        return self.span(self.reduced(x))

    def forward(self, x: Tensor) -> Tensor:
        check_feature_map(x, "x", self.channels)
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
        if self.fused:
            bias = self.span.bias
            assert bias is not None  # built with one; tells TorchScript so
            return involution_fused(x, self.reduced(x), self.span.weight, bias, k, s, p, d)
        return involution_aggregate(x, self.kernels(x), k, s, p, d)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}, "
            f"groups={self.groups}" + (", fused=True" if self.fused else "")
        )
