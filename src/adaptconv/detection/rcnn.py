"""Faster, Mask and Keypoint R-CNN (torchvision's) on an adaptconv backbone with an FPN or involution neck.

The papers' detection experiments: SCNet on Faster/Mask R-CNN and keypoint detection (Liu et al., CVPR 2020);
RedNet on Faster/Mask R-CNN, with convolution or involution in the neck (Li et al., CVPR 2021).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn as nn
from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.ops import MultiScaleRoIAlign

from ..models import get_pretrained_config
from .anchors import rpn_anchor_generator
from .backbone import PretrainedBackbone, feature_pyramid_backbone

__all__ = ["fasterrcnn_fpn", "keypointrcnn_fpn", "maskrcnn_fpn"]


def build_rcnn(
    model_cls: type[nn.Module],
    name: str,
    *,
    num_classes: int | None,
    pretrained_backbone: PretrainedBackbone,
    trainable_layers: int | None,
    returned_layers: Sequence[int],
    neck: str,
    out_channels: int,
    backbone_kwargs: Mapping[str, Any] | None,
    roi_pools: Mapping[str, int],
    **kwargs,
) -> nn.Module:
    """``model_cls`` (a torchvision R-CNN) on ``name`` with a neck and a max-pooled extra level, as torchvision's
    ``*_resnet50_fpn``. Anchors and the RoI pools (``roi_pools``: argument name -> output size) follow the
    returned stages; image normalisation is the backbone's pretrained one. ``kwargs`` go to ``model_cls`` and
    win over these defaults."""
    backbone = feature_pyramid_backbone(
        name, pretrained=pretrained_backbone, trainable_layers=trainable_layers, returned_layers=returned_layers,
        neck=neck, out_channels=out_channels, extra_levels="maxpool", backbone_kwargs=backbone_kwargs,
    )  # fmt: skip
    # The pools read the body's levels, not the max-pooled extra one (as torchvision's ['0', '1', '2', '3']).
    for arg, size in roi_pools.items():
        kwargs.setdefault(arg, MultiScaleRoIAlign(backbone.body_levels, output_size=size, sampling_ratio=2))
    kwargs.setdefault("rpn_anchor_generator", rpn_anchor_generator(backbone.strides))
    cfg = get_pretrained_config(name)
    kwargs.setdefault("image_mean", list(cfg.mean))
    kwargs.setdefault("image_std", list(cfg.std))
    return model_cls(backbone, num_classes=num_classes, **kwargs)


def fasterrcnn_fpn(
    name: str,
    *,
    num_classes: int | None = 91,
    pretrained_backbone: PretrainedBackbone = False,
    trainable_layers: int | None = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    neck: str = "fpn",
    out_channels: int = 256,
    backbone_kwargs: Mapping[str, Any] | None = None,
    **kwargs,
) -> FasterRCNN:
    """Faster R-CNN (Ren et al., NeurIPS 2015) with FPN (Lin et al., CVPR 2017) on adaptconv model ``name``.

    Args:
        name: an adaptconv model (``adaptconv.list_models()``), e.g. 'scnet50', 'rednet50'.
        num_classes: object classes including the background (torchvision's convention; 91 for COCO); None
            where a ``box_predictor`` is given, as torchvision requires.
        pretrained_backbone, trainable_layers, returned_layers, neck, out_channels, backbone_kwargs: of the
            backbone and neck, see ``feature_pyramid_backbone``; ``neck`` is 'fpn' or 'involution'.
        **kwargs: torchvision's ``FasterRCNN`` arguments, e.g. ``min_size``, ``max_size``, ``box_score_thresh``.

    Returns: a torchvision ``FasterRCNN``: in training mode ``model(images, targets)`` gives the loss dict, in eval
    mode ``model(images)`` a list of dicts with ``boxes``, ``labels``, ``scores``.
    """
    return build_rcnn(
        FasterRCNN, name, num_classes=num_classes, pretrained_backbone=pretrained_backbone,
        trainable_layers=trainable_layers, returned_layers=returned_layers, neck=neck, out_channels=out_channels,
        backbone_kwargs=backbone_kwargs, roi_pools={"box_roi_pool": 7}, **kwargs,
    )  # fmt: skip


def maskrcnn_fpn(
    name: str,
    *,
    num_classes: int | None = 91,
    pretrained_backbone: PretrainedBackbone = False,
    trainable_layers: int | None = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    neck: str = "fpn",
    out_channels: int = 256,
    backbone_kwargs: Mapping[str, Any] | None = None,
    **kwargs,
) -> MaskRCNN:
    """Mask R-CNN (He et al., ICCV 2017) with FPN on adaptconv model ``name``; arguments as ``fasterrcnn_fpn``
    (``kwargs`` go to torchvision's ``MaskRCNN``). Its outputs add ``masks`` (N, 1, H, W) of probabilities."""
    return build_rcnn(
        MaskRCNN, name, num_classes=num_classes, pretrained_backbone=pretrained_backbone,
        trainable_layers=trainable_layers, returned_layers=returned_layers, neck=neck, out_channels=out_channels,
        backbone_kwargs=backbone_kwargs, roi_pools={"box_roi_pool": 7, "mask_roi_pool": 14}, **kwargs,
    )  # fmt: skip


def keypointrcnn_fpn(
    name: str,
    *,
    num_classes: int | None = 2,
    num_keypoints: int | None = None,
    pretrained_backbone: PretrainedBackbone = False,
    trainable_layers: int | None = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    neck: str = "fpn",
    out_channels: int = 256,
    backbone_kwargs: Mapping[str, Any] | None = None,
    **kwargs,
) -> KeypointRCNN:
    """Keypoint R-CNN (Mask R-CNN's keypoint branch) with FPN on adaptconv model ``name``.

    ``num_classes`` defaults to 2 (background and person) and ``num_keypoints`` (None) to COCO's 17 person
    keypoints, unless a ``keypoint_predictor`` is given (then it must stay None, as in torchvision); other
    arguments as ``fasterrcnn_fpn`` (``kwargs`` go to torchvision's ``KeypointRCNN``). Its outputs add
    ``keypoints`` (N, num_keypoints, 3) as (x, y, visibility) and ``keypoints_scores``.
    """
    return build_rcnn(
        KeypointRCNN, name, num_classes=num_classes, num_keypoints=num_keypoints,
        pretrained_backbone=pretrained_backbone, trainable_layers=trainable_layers, returned_layers=returned_layers,
        neck=neck, out_channels=out_channels, backbone_kwargs=backbone_kwargs,
        roi_pools={"box_roi_pool": 7, "keypoint_roi_pool": 14}, **kwargs,
    )  # fmt: skip
