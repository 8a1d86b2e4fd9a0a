"""RetinaNet (torchvision's) on an adaptconv backbone with an FPN or involution neck (RedNet paper)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torchvision.models.detection import RetinaNet

from ..models import get_pretrained_config
from .anchors import retinanet_anchor_generator
from .backbone import PretrainedBackbone, feature_pyramid_backbone

__all__ = ["retinanet_fpn"]


def retinanet_fpn(
    name: str,
    *,
    num_classes: int | None = 91,
    pretrained_backbone: PretrainedBackbone = False,
    trainable_layers: int | None = None,
    returned_layers: Sequence[int] = (2, 3, 4),
    neck: str = "fpn",
    out_channels: int = 256,
    backbone_kwargs: Mapping[str, Any] | None = None,
    **kwargs,
) -> RetinaNet:
    """RetinaNet (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) on adaptconv model ``name``.

    The pyramid is P3-P5 from stages 2-4 plus P6 and P7 by strided 3x3 convs on the last stage's output (C5), as in
    the RetinaNet paper and RedNet's detection configuration (torchvision's ``retinanet_resnet50_fpn_v2`` does the
    same). Arguments as ``fasterrcnn_fpn``; ``kwargs`` go to torchvision's ``RetinaNet`` (e.g. ``min_size``,
    ``score_thresh``). Outputs in eval mode: a list of dicts with ``boxes``, ``labels``, ``scores``.
    """
    backbone = feature_pyramid_backbone(
        name, pretrained=pretrained_backbone, trainable_layers=trainable_layers, returned_layers=returned_layers,
        neck=neck, out_channels=out_channels, extra_levels="p6p7", backbone_kwargs=backbone_kwargs,
    )  # fmt: skip
    kwargs.setdefault("anchor_generator", retinanet_anchor_generator(backbone.strides))
    cfg = get_pretrained_config(name)
    kwargs.setdefault("image_mean", list(cfg.mean))
    kwargs.setdefault("image_std", list(cfg.std))
    return RetinaNet(backbone, num_classes=num_classes, **kwargs)
