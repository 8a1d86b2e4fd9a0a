"""Stems for the input sizes a ResNet-family model is trained at: the ImageNet stem (stride 4) or a small-input one.

``stem="cifar"`` (any of our models, and timm's ResNets through ``create_model``) keeps the whole input resolution
through the stem, as small-image ResNets do (He et al., "Deep Residual Learning", CVPR 2016, Sec. 4.2): the first
conv becomes a 3x3 conv at stride 1 (a 7x7 stem conv is replaced by a 3x3 one; a deep stem or RedNet's stem keeps
its layers, its first conv at stride 1) and the max-pool is dropped. A 32 px image then reaches the last stage at
4x4 instead of 1x1.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["STEMS", "check_stem", "small_input_stem"]

#: the stems every ResNet-family model can be built with
STEMS = ("imagenet", "cifar")


def check_stem(stem: str) -> str:
    """``stem`` if it is one of :data:`STEMS`, else a ValueError that lists them."""
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    return stem


def _first_conv(stem: nn.Module) -> nn.Conv2d:
    return next(m for m in stem.modules() if isinstance(m, nn.Conv2d))


def small_input_stem(model: nn.Module) -> nn.Module:
    """Make ``model``'s stem keep the input resolution (see the module's docstring); returns ``model``.

    timm's ``ResNet`` builds its stem from ``stem_type``/``stem_width`` alone (it takes no stem module), so the stem
    is adapted after construction: this is the one place that does it, for every family.
    """
    from timm.models.resnet import ResNet  # here: the command line reads STEMS without importing timm

    if not isinstance(model, ResNet):
        raise TypeError(f"stem='cifar' applies to ResNet-family models, got {type(model).__name__}")
    if isinstance(model.conv1, nn.Conv2d):  # timm's plain stem: one 7x7 conv at stride 2
        old = model.conv1
        model.conv1 = nn.Conv2d(old.in_channels, old.out_channels, 3, 1, 1, bias=old.bias is not None,
                                device=old.weight.device, dtype=old.weight.dtype)  # fmt: skip
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as timm's ResNet
    else:  # a deep stem (v1d) or RedNet's stem: its first conv carries the stride
        first = _first_conv(model.conv1)
        first.stride = (1, 1)
    model.maxpool = nn.Identity()
    for info in model.feature_info:  # the stem no longer halves the resolution twice
        info["reduction"] = max(1, info["reduction"] // 4)
    return model
