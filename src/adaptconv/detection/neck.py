"""Feature pyramid necks: torchvision's FPN, and the RedNet paper's involution neck built on it."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from torchvision.ops.feature_pyramid_network import (
    ExtraFPNBlock,
    FeaturePyramidNetwork,
    LastLevelMaxPool,
    LastLevelP6P7,
)

from ..layers import LayerType
from ..ops import Involution2d

__all__ = ["EXTRA_LEVELS", "NECKS", "InvolutionFPN", "build_neck", "check_neck_options", "extra_levels_block"]

#: the ``neck`` choices of the detection builders
NECKS = ("fpn", "involution")

#: extra pyramid levels above the body's, and how many levels each adds: 'maxpool' subsamples the top level
#: (the R-CNN family's P6); 'p6p7' applies two strided 3x3 convs to the last body map, C5 (RetinaNet's P6, P7)
EXTRA_LEVELS = {"maxpool": 1, "p6p7": 2}


class InvolutionFPN(FeaturePyramidNetwork):
    """torchvision's ``FeaturePyramidNetwork`` whose 3x3 output convs are K x K involutions.

    This is the "involution neck" of RedNet (Li et al., CVPR 2021): the 1x1 lateral convs, the top-down
    path and the extra levels stay as in FPN; each output conv becomes an involution with K = 7, 16 channels a
    group and reduction 4, whose kernel generator has a BN and a ReLU, as in the official detection code.

    The involutions' convs start Xavier-uniform with zero bias, as the official neck initialises all its convs.
    Nothing normalises the neck's output: with PyTorch's default initialisation of the kernel generator, the
    finest level came out about 3.5 times as large as the FPN's on the synthetic test images (2 times with
    Xavier), and a Mask R-CNN's initial mask loss was correspondingly high.

    Args:
        in_channels_list: channels of the backbone maps, finest first.
        out_channels: channels of every pyramid level; a multiple of ``group_channels``.
        extra_blocks: torchvision's extra levels (``LastLevelMaxPool``, ``LastLevelP6P7``) or None.
        kernel_size, group_channels, reduction, norm_layer, act_layer: of each ``Involution2d``.
    """

    def __init__(
        self,
        in_channels_list: Sequence[int],
        out_channels: int,
        extra_blocks: ExtraFPNBlock | None = None,
        kernel_size: int = 7,
        group_channels: int = 16,
        reduction: int = 4,
        norm_layer: LayerType = nn.BatchNorm2d,
        act_layer: LayerType = nn.ReLU,
    ) -> None:
        super().__init__(list(in_channels_list), out_channels, extra_blocks)
        # The parent's forward calls layer_blocks[i] on level i, so swapping the modules is all that is needed.
        self.layer_blocks = nn.ModuleList(
            Involution2d(
                out_channels,
                kernel_size,
                group_channels=group_channels,
                reduction=reduction,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )  # fmt: skip
            for _ in in_channels_list
        )
        for m in self.layer_blocks.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def check_neck_options(neck: str, extra_levels: str | None = None) -> None:
    """Raise a ValueError naming the choices unless ``neck`` is in ``NECKS`` and ``extra_levels`` in
    ``EXTRA_LEVELS`` (or None)."""
    if neck not in NECKS:
        raise ValueError(f"unknown neck {neck!r}; choose one of {', '.join(NECKS)}")
    if extra_levels is not None and extra_levels not in EXTRA_LEVELS:
        raise ValueError(f"unknown extra_levels {extra_levels!r}; choose one of {', '.join(EXTRA_LEVELS)} or None")


def extra_levels_block(
    extra_levels: str | None, in_channels_list: Sequence[int], out_channels: int
) -> ExtraFPNBlock | None:
    """torchvision's block for ``extra_levels`` (a key of ``EXTRA_LEVELS``, or None for no extra level)."""
    check_neck_options(NECKS[0], extra_levels)
    if extra_levels == "maxpool":
        return LastLevelMaxPool()
    if extra_levels == "p6p7":
        # From C5 as in the RetinaNet paper (torchvision uses P5 instead only where C5 has out_channels channels).
        return LastLevelP6P7(in_channels_list[-1], out_channels)
    return None


def build_neck(
    neck: str, in_channels_list: Sequence[int], out_channels: int, extra_levels: str | None = None
) -> FeaturePyramidNetwork:
    """The neck named ``neck`` ('fpn' or 'involution') with ``extra_levels`` ('maxpool', 'p6p7' or None).

    Both necks map an ``OrderedDict[str, Tensor]`` of backbone maps (finest first) to one of the same keys plus
    those of the extra levels, every level with ``out_channels`` channels.
    """
    check_neck_options(neck, extra_levels)
    extra_blocks = extra_levels_block(extra_levels, in_channels_list, out_channels)
    if neck == "involution":
        return InvolutionFPN(in_channels_list, out_channels, extra_blocks)
    return FeaturePyramidNetwork(list(in_channels_list), out_channels, extra_blocks)
