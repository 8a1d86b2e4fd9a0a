"""An adaptconv model as the backbone of torchvision's detectors: timm's features-only body, then a pyramid neck."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn as nn
from timm.layers import freeze_batch_norm_2d
from torch import Tensor

from ..models import create_model, list_models
from .neck import EXTRA_LEVELS, build_neck, check_neck_options

__all__ = [
    "FeaturePyramidBackbone",
    "PretrainedBackbone",
    "check_backbone_name",
    "feature_pyramid_backbone",
    "freeze_layers",
]

#: what ``pretrained_backbone`` accepts: False, True (official weights), a file path or URL, or a state_dict
PretrainedBackbone = bool | str | os.PathLike | Mapping[str, Any]

#: the backbone's top-level modules from the output end: ``trainable_layers=n`` trains the first n of them
_LAYERS_FROM_TOP = ("layer4", "layer3", "layer2", "layer1", "conv1", "bn1")


class FeaturePyramidBackbone(nn.Module):
    """``body`` (a timm ``features_only`` model returning a list of maps) followed by ``neck`` (an FPN).

    The body's maps are named "0", "1", ... (finest first) before the neck, the names torchvision's RoI pools use
    by default; the neck may add extra levels above them. ``out_channels`` (of every level), ``body_levels`` (the
    names of the body's levels) and ``strides`` (of all levels, extra ones included) describe the output.

    Shape: (N, 3, H, W) -> OrderedDict of (N, out_channels, ceil(H / s), ceil(W / s)), one for each level's stride s.
    """

    def __init__(self, body: nn.Module, neck: nn.Module, out_channels: int, extra_levels: int = 0) -> None:
        super().__init__()
        self.body = body
        self.neck = neck
        self.out_channels = out_channels
        body_strides = list(body.feature_info.reduction())
        self.body_levels = [str(i) for i in range(len(body_strides))]
        # Each extra level halves the one below it.
        self.strides = body_strides + [body_strides[-1] * 2**k for k in range(1, extra_levels + 1)]

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        features = self.body(x)
        return self.neck(OrderedDict((str(i), f) for i, f in enumerate(features)))


def check_backbone_name(name: str) -> None:
    """Raise a ValueError naming the choices unless ``name`` is an adaptconv model."""
    choices = list_models()
    if name not in choices:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(choices)}")


def _check_returned_layers(returned_layers: Sequence[int]) -> list[int]:
    layers = list(returned_layers)
    if not layers or layers != sorted(set(layers)) or not set(layers) <= {1, 2, 3, 4}:
        raise ValueError(f"returned_layers must be increasing stage numbers from 1 to 4, got {returned_layers!r}")
    return layers


def freeze_layers(body: nn.Module, trainable_layers: int) -> None:
    """Train only the last ``trainable_layers`` stages (0-5; 5 includes the stem), as torchvision's backbones."""
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int) or not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers must be an integer from 0 to 5, got {trainable_layers!r}")
    # 5 also trains the stem's BN; on RedNet and the v1d SCNets the whole stem is inside conv1.
    trained = _LAYERS_FROM_TOP[: trainable_layers + (trainable_layers == 5)]
    for name, param in body.named_parameters():
        param.requires_grad_(name.split(".")[0] in trained)


def feature_pyramid_backbone(
    name: str,
    *,
    pretrained: PretrainedBackbone = False,
    trainable_layers: int | None = None,
    returned_layers: Sequence[int] = (1, 2, 3, 4),
    neck: str = "fpn",
    out_channels: int = 256,
    extra_levels: str | None = "maxpool",
    freeze_bn: bool | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
) -> FeaturePyramidBackbone:
    """Model ``name`` (``adaptconv.list_models()``) with a pyramid neck, ready for torchvision's detectors.

    Args:
        name: an adaptconv model, e.g. 'scnet50' or 'rednet50'.
        pretrained: the backbone's weights, loaded by ``create_model``: False, True (the official ImageNet weights),
            a file path or URL, or a state_dict.
        trainable_layers: stages trained, counted from the output end (0-5); None: 3 if pretrained, else all 5.
        returned_layers: the stages (1-4, strides 4, 8, 16, 32) that feed the neck.
        neck: 'fpn' (torchvision's FPN) or 'involution' (its 3x3 output convs made 7x7 involutions; RedNet).
        out_channels: channels of every pyramid level.
        extra_levels: levels above the body's: 'maxpool' (one, torchvision's ``LastLevelMaxPool``), 'p6p7' (two,
            ``LastLevelP6P7`` on C5) or None.
        freeze_bn: replace the backbone's BatchNorm by ``FrozenBatchNorm2d`` (fixed statistics and affine, as
            torchvision does for pretrained backbones: detection batches are too small for BN); None: if pretrained.
        backbone_kwargs: more arguments of ``create_model``, e.g. ``channels=(32, 64, 128, 256)`` for a narrow net.
    """
    check_backbone_name(name)
    layers = _check_returned_layers(returned_layers)
    check_neck_options(neck, extra_levels)  # before the backbone is built
    is_pretrained = pretrained is not False and pretrained is not None
    body = create_model(
        name, pretrained=pretrained if is_pretrained else False, features_only=True, out_indices=tuple(layers),
        **dict(backbone_kwargs or {}),
    )  # fmt: skip
    if freeze_bn if freeze_bn is not None else is_pretrained:
        body = freeze_batch_norm_2d(body)
    freeze_layers(body, trainable_layers if trainable_layers is not None else (3 if is_pretrained else 5))
    fpn = build_neck(neck, body.feature_info.channels(), out_channels, extra_levels)
    return FeaturePyramidBackbone(body, fpn, out_channels, EXTRA_LEVELS[extra_levels] if extra_levels else 0)
