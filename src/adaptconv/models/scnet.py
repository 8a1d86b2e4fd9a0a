"""SCNet (Liu et al., "Improving Convolutional Networks with Self-Calibrated Convolutions", CVPR 2020).

A ResNet whose bottleneck splits its width in two: one half goes through a plain 3x3 conv (``k1``), the other
through a self-calibrated conv (``scconv``). The network is timm's ``ResNet`` with this block; the v1d variants add
timm's deep stem and average-pool shortcut, plus average pooling after the 3x3 stage of strided blocks (``avd``).
Module names follow the official code, so official checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import register_model
from timm.models.resnet import ResNet
from torch import Tensor

from ..ops import SelfCalibratedConv2d
from ._blocks import ResidualBottleneck, check_block_options
from ._builder import build_model, timm_default_cfgs
from .stems import check_stem, small_input_stem

__all__ = ["SCBottleneck", "SCNet"]


class SCBottleneck(ResidualBottleneck):
    """SCNet bottleneck: two 1x1 convs to width/2 each; a 3x3 conv on one half and a self-calibrated conv on the
    other; concatenation; 1x1 conv to ``planes * 4``; residual.

    width = planes * base_width / 64 (base_width 32 in SCNet, so each half has planes / 2 channels).
    With ``avd`` and a stride, both 3x3 stages run at stride 1 and a 3x3 average pool (stride 2) follows them.
    ``pooling_r``, ``pooling``, ``upsampling``, ``gate_identity`` and ``fused_calibration`` are the self-calibrated
    conv's (``SelfCalibratedConv2d``; the last is its ``fused``).
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        base_width: int = 32,
        reduce_first: int = 1,
        dilation: int = 1,
        first_dilation: int | None = None,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        attn_layer: type[nn.Module] | None = None,
        aa_layer: type[nn.Module] | None = None,
        drop_block: nn.Module | None = None,
        drop_path: nn.Module | None = None,
        avd: bool = False,
        pooling_r: int = 4,
        fused_calibration: bool = True,
        pooling: str = "avg",
        upsampling: str = "nearest",
        gate_identity: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_block_options("SCBottleneck", cardinality, reduce_first, aa_layer, attn_layer)
        half = int(planes * base_width / 64)
        first_dilation = first_dilation or dilation
        self.avd = avd and stride > 1
        inner_stride = 1 if self.avd else stride
        self.conv1_a = nn.Conv2d(inplanes, half, 1, bias=False)
        self.bn1_a = norm_layer(half)
        self.conv1_b = nn.Conv2d(inplanes, half, 1, bias=False)
        self.bn1_b = norm_layer(half)
        self.k1 = nn.Sequential(
            nn.Conv2d(half, half, 3, inner_stride, first_dilation, first_dilation, bias=False),
            norm_layer(half),
        )
        self.scconv = SelfCalibratedConv2d(
            half, stride=inner_stride, padding=first_dilation, dilation=first_dilation, pooling_r=pooling_r,
            norm_layer=norm_layer, fused=fused_calibration, pooling=pooling, upsampling=upsampling,
            gate_identity=gate_identity,
        )  # fmt: skip
        self.avd_layer = nn.AvgPool2d(3, stride, padding=1) if self.avd else nn.Identity()
        self.finish(half * 2, planes, downsample, norm_layer, act_layer, drop_block, drop_path, device, dtype)

    def branch(self, x: Tensor) -> Tensor:
        a = self.act(self.bn1_a(self.conv1_a(x)))
        b = self.act(self.bn1_b(self.conv1_b(x)))
        a = self.avd_layer(self.act(self.k1(a)))
        b = self.avd_layer(self.act(self.scconv(b)))
        return torch.cat([a, b], dim=1)


class SCNet(ResNet):
    """SCNet: timm's ``ResNet`` with ``SCBottleneck`` blocks (width 32 per 64 planes, no zero-init, as official).

    ``fused_calibration=False`` computes every calibration gate with the official code's separate ops instead of
    the fused op (``SelfCalibratedConv2d(fused=False)``): same function and parameters. ``pooling_r``,
    ``calibration_pooling``, ``calibration_upsampling`` and ``calibration_gate_identity`` set every block's
    self-calibrated conv (its ``pooling_r``, ``pooling``, ``upsampling``, ``gate_identity``; defaults: the official
    code's). ``stem="cifar"``: the small-input stem (``stems.small_input_stem``).
    """

    official_key_rules: tuple[tuple[str, str], ...] = ()  # the official names are ours

    def __init__(
        self,
        layers: tuple[int, ...],
        base_width: int = 32,
        zero_init_last: bool = False,
        fused_calibration: bool = True,
        pooling_r: int = 4,
        calibration_pooling: str = "avg",
        calibration_upsampling: str = "nearest",
        calibration_gate_identity: bool = True,
        stem: str = "imagenet",
        block_args: dict | None = None,
        **kwargs,
    ) -> None:
        block_args = dict(block_args or {}, fused_calibration=fused_calibration, pooling_r=pooling_r,
                          pooling=calibration_pooling, upsampling=calibration_upsampling,
                          gate_identity=calibration_gate_identity)  # fmt: skip
        super().__init__(
            block=SCBottleneck, layers=layers, base_width=base_width, zero_init_last=zero_init_last,
            block_args=block_args, **kwargs,
        )  # fmt: skip
        if check_stem(stem) == "cifar":
            small_input_stem(self)


def _scnet_v1d(**kwargs) -> dict:
    """The v1d recipe (He et al., "Bag of Tricks", 2019): deep stem, average-pool shortcut, avd."""
    kwargs.setdefault("stem_width", 32)
    block_args = dict(kwargs.pop("block_args", None) or {}, avd=True)
    return dict(stem_type="deep", avg_down=True, block_args=block_args, **kwargs)


default_cfgs = timm_default_cfgs(["scnet50", "scnet50_v1d", "scnet101", "scnet101_v1d"])


@register_model
def scnet50(pretrained=False, **kwargs) -> SCNet:
    """SCNet-50: [3, 4, 6, 3] SC bottlenecks, 7x7 stem."""
    return build_model(SCNet, "scnet50", pretrained, layers=(3, 4, 6, 3), **kwargs)


@register_model
def scnet101(pretrained=False, **kwargs) -> SCNet:
    """SCNet-101: [3, 4, 23, 3] SC bottlenecks, 7x7 stem."""
    return build_model(SCNet, "scnet101", pretrained, layers=(3, 4, 23, 3), **kwargs)


@register_model
def scnet50_v1d(pretrained=False, **kwargs) -> SCNet:
    """SCNet-50 v1d: deep stem of width 32 (32, 32, 64), average-pool shortcut, avd."""
    return build_model(SCNet, "scnet50_v1d", pretrained, layers=(3, 4, 6, 3), **_scnet_v1d(**kwargs))


@register_model
def scnet101_v1d(pretrained=False, **kwargs) -> SCNet:
    """SCNet-101 v1d: deep stem of width 64 (64, 64, 128), average-pool shortcut, avd."""
    return build_model(SCNet, "scnet101_v1d", pretrained, layers=(3, 4, 23, 3), **_scnet_v1d(stem_width=64, **kwargs))
