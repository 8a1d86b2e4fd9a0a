"""RetinaNet (torchvision's) on an adaptconv backbone with an FPN or involution neck (RedNet paper)."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.models.detection import RetinaNet

from .anchors import retinanet_anchor_generator
from .detector import build_detector

__all__ = ["retinanet_fpn"]


def retinanet_fpn(
    name: str, *, num_classes: int | None = 91, returned_layers: Sequence[int] = (2, 3, 4), **kwargs
) -> RetinaNet:
    """RetinaNet (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) on adaptconv model ``name``.

    The pyramid is P3-P5 from stages 2-4 plus P6 and P7 by strided 3x3 convs on the last stage's output (C5), as in
    the RetinaNet paper and RedNet's detection configuration (torchvision's ``retinanet_resnet50_fpn_v2`` does the
    same). Arguments as ``fasterrcnn_fpn``; ``kwargs`` go to torchvision's ``RetinaNet`` (e.g. ``min_size``,
    ``score_thresh``). Outputs in eval mode: a list of dicts with ``boxes``, ``labels``, ``scores``.
    """
    return build_detector(
        RetinaNet, name, num_classes=num_classes, extra_levels="p6p7", returned_layers=returned_layers,
        heads=lambda backbone: dict(anchor_generator=retinanet_anchor_generator(backbone.strides)), **kwargs,
    )  # fmt: skip
