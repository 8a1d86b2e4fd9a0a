"""Detection and instance segmentation on adaptconv backbones: torchvision's Faster/Mask/Keypoint R-CNN and
RetinaNet with an FPN neck or RedNet's involution neck.

    from adaptconv.detection import maskrcnn_fpn
    model = maskrcnn_fpn("rednet50", num_classes=91, pretrained_backbone="rednet50.pth", neck="involution")
"""

from .anchors import retinanet_anchor_generator, rpn_anchor_generator
from .backbone import FeaturePyramidBackbone, check_backbone_name, feature_pyramid_backbone, freeze_layers
from .neck import EXTRA_LEVELS, NECKS, InvolutionFPN, build_neck
from .rcnn import fasterrcnn_fpn, keypointrcnn_fpn, maskrcnn_fpn
from .retinanet import retinanet_fpn

__all__ = [
    "EXTRA_LEVELS",
    "NECKS",
    "FeaturePyramidBackbone",
    "InvolutionFPN",
    "build_neck",
    "check_backbone_name",
    "fasterrcnn_fpn",
    "feature_pyramid_backbone",
    "freeze_layers",
    "keypointrcnn_fpn",
    "maskrcnn_fpn",
    "retinanet_anchor_generator",
    "retinanet_fpn",
    "rpn_anchor_generator",
]
