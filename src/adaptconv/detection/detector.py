"""The one assembly of a torchvision detector on an adaptconv backbone, shared by every builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch.nn as nn

from ..models import get_pretrained_config
from .backbone import FeaturePyramidBackbone, PretrainedBackbone, feature_pyramid_backbone

__all__ = ["build_detector"]


def build_detector(
    model_cls: type[nn.Module],
    name: str,
    *,
    num_classes: int | None,
    extra_levels: str,
    heads: Callable[[FeaturePyramidBackbone], dict[str, Any]],
    pretrained_backbone: PretrainedBackbone = False,
    trainable_layers: int | None = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    neck: str = "fpn",
    out_channels: int = 256,
    backbone_kwargs: Mapping[str, Any] | None = None,
    **kwargs,
) -> nn.Module:
    """``model_cls`` (a torchvision detector) on the backbone and neck of ``feature_pyramid_backbone``.

    ``heads(backbone)`` gives the detector's defaults that depend on the pyramid (anchor generators, RoI pools);
    image normalisation is the backbone's pretrained one. ``kwargs`` go to ``model_cls`` and win over both.
    """
    backbone = feature_pyramid_backbone(
        name, pretrained=pretrained_backbone, trainable_layers=trainable_layers, returned_layers=returned_layers,
        neck=neck, out_channels=out_channels, extra_levels=extra_levels, backbone_kwargs=backbone_kwargs,
    )  # fmt: skip
    cfg = get_pretrained_config(name)
    defaults = dict(heads(backbone), image_mean=list(cfg.mean), image_std=list(cfg.std))
    return model_cls(backbone, num_classes=num_classes, **(defaults | kwargs))
