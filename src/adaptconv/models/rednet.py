"""RedNet (Li et al., "Involution: Inverting the Inherence of Convolution for Visual Recognition", CVPR 2021).

A ResNet whose bottleneck 3x3 convs are replaced by 7x7 involutions, with a stem of conv 3x3/2 -> involution 3x3
-> conv 3x3. The network is timm's ``ResNet`` with this block and stem; official (mmcls) checkpoints are mapped by
``official_key_rules``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import register_model
from timm.models.resnet import ResNet
from torch import Tensor

from ..layers import LayerType, conv_norm_act
from ..ops import Involution2d
from ._blocks import ResidualBottleneck, check_block_options, place
from ._builder import build_model, timm_default_cfgs
from .recompute import recomputed
from .stems import check_stem, small_input_stem

__all__ = ["InvolutionBottleneck", "RedNet", "RedNetStem", "rednet_stem"]


class InvolutionBottleneck(ResidualBottleneck):
    """RedNet bottleneck: 1x1 conv -> K x K involution (carries the stride) -> 1x1 conv to ``planes * 4``.

    ``kernel_size``, ``group_channels``, ``reduction`` and ``fused`` are the involution's (``Involution2d``)."""

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        base_width: int = 64,
        reduce_first: int = 1,
        dilation: int = 1,
        first_dilation: int | None = None,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        attn_layer: type[nn.Module] | None = None,
        aa_layer: type[nn.Module] | None = None,
        drop_block: nn.Module | None = None,
        drop_path: nn.Module | None = None,
        kernel_size: int = 7,
        group_channels: int = 16,
        reduction: int = 4,
        fused: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_block_options("InvolutionBottleneck", cardinality, reduce_first, aa_layer, attn_layer)
        width = int(planes * base_width / 64)
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = Involution2d(
            width, kernel_size, stride, dilation=first_dilation or dilation, group_channels=group_channels,
            reduction=reduction, norm_layer=norm_layer, act_layer=act_layer, fused=fused,
        )  # fmt: skip
        self.bn2 = norm_layer(width)
        self.finish(width, planes, downsample, norm_layer, act_layer, drop_block, drop_path, device, dtype)

    def zero_init_last(self) -> None:
        """Zero the last BN (scale and shift), as the official ``zero_init_residual``."""
        nn.init.zeros_(self.bn3.weight)
        nn.init.zeros_(self.bn3.bias)

    def branch(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)))


class RedNetStem(nn.Sequential):
    """The RedNet stem (a Sequential, so the state_dict keys stay the official ones), optionally recomputed.

    With ``recompute=True``, a training forward keeps none of the stem's activations: the backward pass runs the
    stem again (``torch.utils.checkpoint``). The stem works at half the input resolution, so this saves a large
    share of RedNet's training memory (docs/training_memory.md) for one more stem forward a step. Batch norm's
    running statistics are updated once, in the forward pass, not again in the recomputation. Under
    ``torch.compile`` the compiler decides what to keep, and in TorchScript nothing is recomputed.
    """

    def __init__(self, *layers: nn.Module, recompute: bool = False) -> None:
        super().__init__(*layers)
        self.recompute = recompute

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            # the flags first: FX tracing (feature extractors) gets the plain path without looking at the traced x
            if self.recompute and self.training and torch.is_grad_enabled() and not torch.compiler.is_compiling():
                if x.requires_grad or any(p.requires_grad for p in self.parameters()):
                    return self._recomputed(x)
        return self.layers(x)

    def layers(self, x: Tensor) -> Tensor:
        """The stem's layers in order (``nn.Sequential``'s forward)."""
        for layer in self:
            x = layer(x)
        return x

    def _recomputed(self, x: Tensor) -> Tensor:
        return recomputed(self.layers, self, x)


def rednet_stem(
    in_chans: int,
    out_channels: int = 64,
    kernel_size: int = 3,
    norm_layer: LayerType = nn.BatchNorm2d,
    act_layer: LayerType = nn.ReLU,
    fused: bool = False,
    recompute: bool = False,
) -> RedNetStem:
    """RedNet stem, stride 2: conv 3x3/2 (width out/2) -> involution K x K -> norm -> act -> conv 3x3 (width out).

    K is 3 in the classification code and its checkpoints (7 in the official detection/segmentation copies).
    ``fused``: the involution's (``Involution2d``); ``recompute``: the stem's (``RedNetStem``).
    """
    mid = out_channels // 2
    return RedNetStem(
        conv_norm_act(in_chans, mid, 3, 2, norm_layer, act_layer),
        Involution2d(mid, kernel_size, norm_layer=norm_layer, act_layer=act_layer, fused=fused),
        norm_layer(mid),
        act_layer(inplace=True),
        conv_norm_act(mid, out_channels, 3, 1, norm_layer, act_layer),
        recompute=recompute,
    )


class RedNet(ResNet):
    """RedNet: timm's ``ResNet`` with ``InvolutionBottleneck`` blocks and the RedNet stem in place of ``conv1``.

    As in the official code, the last BN of every block starts at zero and the classifier at N(0, 0.01).
    ``fused_involution=True`` makes every involution generate its kernels inside the aggregation
    (``Involution2d(fused=True)``), and ``recompute_stem=True`` recomputes the stem in the backward pass
    (``RedNetStem``): the same function and parameters, less training memory (docs/training_memory.md).
    ``kernel_size``, ``group_channels`` and ``reduction`` set every block's involution (7, 16, 4 in the paper; the
    stem's kernel is ``stem_kernel_size``). ``stem="cifar"``: the small-input stem (``stems.small_input_stem``).
    """

    # Our names -> official mmcls ImageClassifier names (applied in order, first match of each rule).
    official_key_rules: tuple[tuple[str, str], ...] = (
        (r"\.reduce\.", ".conv1."),
        (r"\.span\.", ".conv2.conv."),
        (r"^conv1\.", "backbone.stem."),
        (r"^fc\.", "head.fc."),
        (r"^(?!backbone\.|head\.)", "backbone."),
    )

    def __init__(
        self,
        layers: tuple[int, ...],
        in_chans: int = 3,
        stem_kernel_size: int = 3,
        zero_init_last: bool = True,
        norm_layer: LayerType = nn.BatchNorm2d,
        act_layer: LayerType = nn.ReLU,
        fused_involution: bool = False,
        recompute_stem: bool = False,
        kernel_size: int = 7,
        group_channels: int = 16,
        reduction: int = 4,
        stem: str = "imagenet",
        block_args: dict | None = None,
        **kwargs,
    ) -> None:
        block_args = dict(block_args or {}, fused=fused_involution, kernel_size=kernel_size,
                          group_channels=group_channels, reduction=reduction)  # fmt: skip
        super().__init__(
            block=InvolutionBottleneck, layers=layers, in_chans=in_chans, norm_layer=norm_layer, act_layer=act_layer,
            zero_init_last=zero_init_last, block_args=block_args, **kwargs,
        )  # fmt: skip
        # timm's ResNet builds its stem from stem_type/stem_width alone (it takes no stem module), so RedNet's stem
        # takes the place of the conv1 it built, and bn1/act1 (inside RedNet's stem) become identities.
        stem_layers = rednet_stem(in_chans, 64, stem_kernel_size, norm_layer, act_layer, fused_involution,
                                  recompute_stem)  # fmt: skip
        self.conv1 = place(stem_layers, kwargs.get("device"), kwargs.get("dtype"))
        self.bn1 = nn.Identity()
        self.act1 = nn.Identity()
        if check_stem(stem) == "cifar":
            small_input_stem(self)
        self.init_weights(zero_init_last=zero_init_last)

    def init_weights(self, zero_init_last: bool = True) -> None:
        """kaiming_normal (fan_out) convs with zero bias, BN 1/0, zero last BN, classifier N(0, 0.01)."""
        super().init_weights(zero_init_last=zero_init_last)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                nn.init.zeros_(m.bias)
        if isinstance(getattr(self, "fc", None), nn.Linear):
            nn.init.normal_(self.fc.weight, std=0.01)
            nn.init.zeros_(self.fc.bias)


default_cfgs = timm_default_cfgs(["rednet26", "rednet38", "rednet50", "rednet101", "rednet152"])


@register_model
def rednet26(pretrained=False, **kwargs) -> RedNet:
    """RedNet-26: (1, 2, 4, 1) involution bottlenecks."""
    return build_model(RedNet, "rednet26", pretrained, layers=(1, 2, 4, 1), **kwargs)


@register_model
def rednet38(pretrained=False, **kwargs) -> RedNet:
    """RedNet-38: (2, 3, 5, 2) involution bottlenecks."""
    return build_model(RedNet, "rednet38", pretrained, layers=(2, 3, 5, 2), **kwargs)


@register_model
def rednet50(pretrained=False, **kwargs) -> RedNet:
    """RedNet-50: (3, 4, 6, 3) involution bottlenecks."""
    return build_model(RedNet, "rednet50", pretrained, layers=(3, 4, 6, 3), **kwargs)


@register_model
def rednet101(pretrained=False, **kwargs) -> RedNet:
    """RedNet-101: (3, 4, 23, 3) involution bottlenecks."""
    return build_model(RedNet, "rednet101", pretrained, layers=(3, 4, 23, 3), **kwargs)


@register_model
def rednet152(pretrained=False, **kwargs) -> RedNet:
    """RedNet-152: (3, 8, 36, 3) involution bottlenecks."""
    return build_model(RedNet, "rednet152", pretrained, layers=(3, 8, 36, 3), **kwargs)
