"""Faster, Mask and Keypoint R-CNN (torchvision's) on an adaptconv backbone with an FPN or involution neck.

The papers' detection experiments: SCNet on Faster/Mask R-CNN and keypoint detection (Liu et al., CVPR 2020);
RedNet on Faster/Mask R-CNN, with convolution or involution in the neck (Li et al., CVPR 2021).
"""

from __future__ import annotations

from collections.abc import Callable

from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.ops import MultiScaleRoIAlign

from .anchors import rpn_anchor_generator
from .backbone import FeaturePyramidBackbone
from .detector import build_detector

__all__ = ["fasterrcnn_fpn", "keypointrcnn_fpn", "maskrcnn_fpn"]


def _rcnn_heads(**roi_pools: int) -> Callable[[FeaturePyramidBackbone], dict]:
    """The RPN's anchors and the RoI pools (argument name -> output size) for a backbone's levels. The pools read
    the body's levels, not the max-pooled extra one (as torchvision's ['0', '1', '2', '3'])."""

    def heads(backbone: FeaturePyramidBackbone) -> dict:
        pools = {arg: MultiScaleRoIAlign(backbone.body_levels, output_size=size, sampling_ratio=2)
                 for arg, size in roi_pools.items()}  # fmt: skip
        return dict(pools, rpn_anchor_generator=rpn_anchor_generator(backbone.strides))

    return heads


def fasterrcnn_fpn(name: str, *, num_classes: int | None = 91, **kwargs) -> FasterRCNN:
    """Faster R-CNN (Ren et al., NeurIPS 2015) with FPN (Lin et al., CVPR 2017) on adaptconv model ``name``.

    Args:
        name: an adaptconv model (``adaptconv.list_models()``), e.g. 'scnet50', 'rednet50'.
        num_classes: object classes including the background (torchvision's convention; 91 for COCO); None
            where a ``box_predictor`` is given, as torchvision requires.
        **kwargs: the backbone and neck's ``pretrained_backbone`` (False), ``trainable_layers`` (None),
            ``returned_layers`` ((1, 2, 3, 4)), ``neck`` ('fpn' or 'involution'), ``out_channels`` (256),
            ``backbone_kwargs`` (see ``feature_pyramid_backbone``), and torchvision's ``FasterRCNN`` arguments,
            e.g. ``min_size``, ``max_size``, ``box_score_thresh``.

    Returns: a torchvision ``FasterRCNN``: in training mode ``model(images, targets)`` gives the loss dict, in eval
    mode ``model(images)`` a list of dicts with ``boxes``, ``labels``, ``scores``.
    """
    heads = _rcnn_heads(box_roi_pool=7)
    return build_detector(FasterRCNN, name, num_classes=num_classes, extra_levels="maxpool", heads=heads, **kwargs)


def maskrcnn_fpn(name: str, *, num_classes: int | None = 91, **kwargs) -> MaskRCNN:
    """Mask R-CNN (He et al., ICCV 2017) with FPN on adaptconv model ``name``; arguments as ``fasterrcnn_fpn``
    (``kwargs`` go to torchvision's ``MaskRCNN``). Its outputs add ``masks`` (N, 1, H, W) of probabilities."""
    heads = _rcnn_heads(box_roi_pool=7, mask_roi_pool=14)
    return build_detector(MaskRCNN, name, num_classes=num_classes, extra_levels="maxpool", heads=heads, **kwargs)


def keypointrcnn_fpn(name: str, *, num_classes: int | None = 2, **kwargs) -> KeypointRCNN:
    """Keypoint R-CNN (Mask R-CNN's keypoint branch) with FPN on adaptconv model ``name``.

    ``num_classes`` defaults to 2 (background and person) and torchvision's ``num_keypoints`` (None) to COCO's 17
    person keypoints, unless a ``keypoint_predictor`` is given (then it must stay None, as in torchvision); other
    arguments as ``fasterrcnn_fpn`` (``kwargs`` go to torchvision's ``KeypointRCNN``). Its outputs add
    ``keypoints`` (N, num_keypoints, 3) as (x, y, visibility) and ``keypoints_scores``.
    """
    heads = _rcnn_heads(box_roi_pool=7, keypoint_roi_pool=14)
    return build_detector(KeypointRCNN, name, num_classes=num_classes, extra_levels="maxpool", heads=heads, **kwargs)
