"""Anchor generators sized from the pyramid's strides, so that any choice of returned stages gets matching anchors.

With the default stages they are torchvision's defaults: one size of 8 x stride per level for the R-CNN family's
RPN (32 to 512 px on P2-P6), and three octave scales of 4 x stride per level for RetinaNet (32 to 512 px on P3-P7,
Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017); aspect ratios 0.5, 1 and 2 everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.models.detection.anchor_utils import AnchorGenerator

__all__ = ["retinanet_anchor_generator", "rpn_anchor_generator"]

ASPECT_RATIOS = (0.5, 1.0, 2.0)


def rpn_anchor_generator(strides: Sequence[int]) -> AnchorGenerator:
    """One anchor size (8 x stride) and three aspect ratios per level, for the R-CNN family's RPN."""
    return AnchorGenerator(tuple((8 * s,) for s in strides), (ASPECT_RATIOS,) * len(strides))


def retinanet_anchor_generator(strides: Sequence[int]) -> AnchorGenerator:
    """Sizes 4 x stride x 2^(0, 1/3, 2/3) and three aspect ratios per level, for RetinaNet."""
    sizes = tuple(tuple(int(4 * s * 2 ** (k / 3)) for k in range(3)) for s in strides)
    return AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(strides))
