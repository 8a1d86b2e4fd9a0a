"""SCNet (Liu et al., "Improving Convolutional Networks with Self-Calibrated Convolutions", CVPR 2020).

A ResNet whose bottleneck splits its width in two: one half goes through a plain 3x3 conv (``k1``), the other
through a self-calibrated conv (``scconv``). The network is timm's ``ResNet`` with this block; the v1d variants add
timm's deep stem and average-pool shortcut, plus average pooling after the 3x3 stage of strided blocks (``avd``).
The block computes in merged layers (``SCBottleneck``) and keeps the official state_dict, so official checkpoints
load without renaming; ``OfficialSCBottleneck`` is the official code's layers one by one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models import register_model
from timm.models.resnet import ResNet
from torch import Tensor

from ..layers import LayerType
from ..ops import SelfCalibratedConv2d, SelfCalibration
from ._blocks import ResidualBottleneck, check_block_options
from ._builder import build_model, timm_default_cfgs
from .merged_layers import keep_separate_keys
from .recompute import recomputed
from .stems import check_stem, small_input_stem

__all__ = ["OfficialSCBottleneck", "SCBottleneck", "SCNet"]


#: the merged layers of ``SCBottleneck`` -> the official layers each holds, in the order of its output channels
OFFICIAL_PARTS = {"conv1": ("conv1_a", "conv1_b"), "bn1": ("bn1_a", "bn1_b"), "conv2": ("k1.0", "scconv.k4.0"),
                  "bn2": ("k1.1", "scconv.k4.1")}  # fmt: skip
#: the order of the official block's keys (``conv3``, ``bn3`` and ``downsample`` follow)
OFFICIAL_ORDER = ("conv1_a.", "bn1_a.", "conv1_b.", "bn1_b.", "k1.", "scconv.k2.", "scconv.k3.", "scconv.k4.")


def _check_norm(norm_layer: LayerType) -> None:
    if isinstance(norm_layer, type) and issubclass(norm_layer, nn.GroupNorm):
        raise ValueError(
            "SCBottleneck normalises merged layers as one, which needs a norm of each channel on its own (batch norm "
            "and its frozen or synchronised forms), not GroupNorm; use official_layers=True for other norms"
        )


def _same_layout(part: Tensor, whole: Tensor) -> Tensor:
    """``part`` (a channel slice of ``whole``) contiguous in ``whole``'s memory format: a copy unless it already is
    (convolutions and the calibration kernels take contiguous maps)."""
    if whole.is_contiguous(memory_format=torch.channels_last) and not whole.is_contiguous():
        return part.contiguous(memory_format=torch.channels_last)
    return part.contiguous()


# torch.fx's symbolic tracing cannot branch on a traced tensor's layout: one graph node instead.
torch.fx.wrap("_same_layout")


def _hooked(module: nn.Module) -> bool:
    """Whether a forward hook or pre-hook sits on ``module`` or one of its submodules."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


class _SCBlock(ResidualBottleneck):
    """What both forms of the SC bottleneck share: timm's block signature and options, the half width, the stride of
    the 3x3 stage, the avd pool and ``finish``; a form adds its layers in :meth:`layers`."""

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
        fused_calibration: bool = False,
        pooling: str = "avg",
        upsampling: str = "nearest",
        gate_identity: bool = True,
        recompute_calibration: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_block_options(type(self).__name__, cardinality, reduce_first, aa_layer, attn_layer)
        self.recompute_calibration = recompute_calibration
        self.avd = avd and stride > 1
        half = int(planes * base_width / 64)
        calibration = dict(pooling_r=pooling_r, norm_layer=norm_layer, fused=fused_calibration, pooling=pooling,
                           upsampling=upsampling, gate_identity=gate_identity)  # fmt: skip
        self.layers(inplanes, half, 1 if self.avd else stride, first_dilation or dilation, norm_layer, calibration)
        self.avd_layer = nn.AvgPool2d(3, stride, padding=1) if self.avd else nn.Identity()
        self.finish(half * 2, planes, downsample, norm_layer, act_layer, drop_block, drop_path, device, dtype)

    def layers(self, inplanes: int, half: int, stride: int, dilation: int, norm_layer: LayerType,
               calibration: dict) -> None:  # fmt: skip
        """Add the layers from the block's input to the 3x3 stage's output (``half`` channels a half, the 3x3
        stage at ``stride`` and ``dilation``; ``calibration``: the self-calibration's keyword arguments)."""
        raise NotImplementedError


class SCBottleneck(_SCBlock):
    """SCNet bottleneck: two 1x1 convs to width/2 each; a 3x3 conv on one half and a self-calibrated conv on the
    other; concatenation; 1x1 conv to ``planes * 4``; residual (in merged layers, with the official state_dict).

    The official block's layers are ``conv1_a``, ``conv1_b`` (same input), a 3x3 conv K1 on the first half and a
    self-calibrated conv K4(K3(b) * gate(b)) on the second. Here ``conv1``/``bn1`` are the two 1x1 convs and their
    norms as one layer, and ``conv2``/``bn2`` are K1 and K4 as one grouped 3x3 conv (groups 2: K1 on the first half,
    K4 on the calibrated second half; they carry the same stride in every block) and one norm, whose output is
    conv3's input: no concatenation after it. ``scconv`` holds K2, K3 and the gate (``SelfCalibration``). In
    inference (no autograd) the calibrated half is written over the second half of conv1's output, so conv2 reads
    one buffer; in training it is concatenated to the first half. The state_dict keeps the official names and shapes
    (``merged_layers.keep_separate_keys``), so official checkpoints load and save unchanged.

    width = planes * base_width / 64 (base_width 32 in SCNet, so each half has planes / 2 channels).
    With ``avd`` and a stride, the 3x3 stage runs at stride 1 and a 3x3 average pool (stride 2) follows it.
    ``pooling_r``, ``pooling``, ``upsampling``, ``gate_identity`` and ``fused_calibration`` are the calibration's
    (``SelfCalibration``; the last is its ``fused``). ``norm_layer`` must normalise each channel on its own.

    ``recompute_calibration=True``: a training forward keeps none of the calibration's activations (K3's and K2's
    outputs, the gate): the backward pass computes the calibrated half again from conv1's output
    (``recompute.recomputed``; batch norm's running statistics move once), and K1 and K4 run as two convs on the two
    halves (slices of ``conv2``'s weight), so that K1's input is read from conv1's output, not from a copy. What a
    block keeps beyond a ResNet bottleneck of its width is then K4's input alone. Same function, parameters and
    state_dict; under ``torch.compile`` the compiler decides what to keep.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keep_separate_keys(self, OFFICIAL_PARTS, OFFICIAL_ORDER)

    def layers(self, inplanes: int, half: int, stride: int, dilation: int, norm_layer: LayerType,
               calibration: dict) -> None:  # fmt: skip
        _check_norm(norm_layer)
        d = dilation
        self.half = half
        self.conv1 = nn.Conv2d(inplanes, 2 * half, 1, bias=False)
        self.bn1 = norm_layer(2 * half)
        self.scconv = SelfCalibration(half, padding=d, dilation=d, **calibration)
        self.conv2 = nn.Conv2d(2 * half, 2 * half, 3, stride, d, d, groups=2, bias=False)
        self.bn2 = norm_layer(2 * half)

    def branch(self, x: Tensor) -> Tensor:
        t = self.act(self.bn1(self.conv1(x)))
        halves = t.split(self.half, 1)  # one autograd node: its backward is one concatenation
        in_place = not torch.is_grad_enabled()
        if not torch.jit.is_scripting():
            # compiled graphs: inductor places the halves itself; a hook on scconv may keep the b it was given
            hooked = bool(self.scconv._forward_hooks or self.scconv._forward_pre_hooks)
            in_place = in_place and not torch.compiler.is_compiling() and not hooked
            # (a recomputation would run the hooks of the calibration's modules twice)
            if self.recompute_calibration and self.training and not in_place and not torch.compiler.is_compiling():
                if not _hooked(self.scconv):
                    # the fused op's kernels take contiguous maps; the official ops read b where it lies
                    b = _same_layout(halves[1], t) if self.scconv.fused else halves[1]
                    return self._recomputed_branch(halves[0], b)
        b = _same_layout(halves[1], t)
        if in_place:  # the calibrated half replaces b in t's memory (b is not read again)
            self.scconv(b, out=halves[1])
        else:
            t = torch.cat([halves[0], self.scconv(b)], 1)
        return self.avd_layer(self.act(self.bn2(self.conv2(t))))

    def _recomputed_branch(self, a: Tensor, b: Tensor) -> Tensor:
        """The 3x3 stage in training with the calibration of b recomputed in the backward pass
        (``recompute_calibration``), and K1 and K4 as two convs, so that neither half is copied into a buffer the
        backward pass keeps."""
        calibrated = recomputed(self.scconv, self.scconv, b)
        conv = self.conv2
        k1, k4 = conv.weight.split(self.half)
        out = torch.cat([F.conv2d(a, k1, None, conv.stride, conv.padding, conv.dilation),
                         F.conv2d(calibrated, k4, None, conv.stride, conv.padding, conv.dilation)], 1)  # fmt: skip
        return self.avd_layer(self.act(self.bn2(out)))


class OfficialSCBottleneck(_SCBlock):
    """SCNet bottleneck in the official code's layers, one module each (``conv1_a``, ``bn1_a``, ``conv1_b``,
    ``bn1_b``, ``k1``, ``scconv`` = ``SelfCalibratedConv2d``, concatenation): the same function and state_dict as
    ``SCBottleneck``, which is faster. Kept as the reference it is tested against and measured with
    (``SCNet(official_layers=True)``, ``adaptconv benchmark scnet50+official``). Arguments as ``SCBottleneck``'s.
    """

    def layers(self, inplanes: int, half: int, stride: int, dilation: int, norm_layer: LayerType,
               calibration: dict) -> None:  # fmt: skip
        if self.recompute_calibration:
            raise ValueError("recompute_calibration=True needs SCNet's merged layers: leave official_layers False")
        d = dilation
        self.conv1_a = nn.Conv2d(inplanes, half, 1, bias=False)
        self.bn1_a = norm_layer(half)
        self.conv1_b = nn.Conv2d(inplanes, half, 1, bias=False)
        self.bn1_b = norm_layer(half)
        self.k1 = nn.Sequential(nn.Conv2d(half, half, 3, stride, d, d, bias=False), norm_layer(half))
        self.scconv = SelfCalibratedConv2d(half, stride=stride, padding=d, dilation=d, **calibration)

    def branch(self, x: Tensor) -> Tensor:
        a = self.act(self.bn1_a(self.conv1_a(x)))
        b = self.act(self.bn1_b(self.conv1_b(x)))
        a = self.avd_layer(self.act(self.k1(a)))
        b = self.avd_layer(self.act(self.scconv(b)))
        return torch.cat([a, b], dim=1)


class SCNet(ResNet):
    """SCNet: timm's ``ResNet`` with ``SCBottleneck`` blocks (width 32 per 64 planes, no zero-init, as official).

    ``official_layers=True`` builds the official code's layers one by one (``OfficialSCBottleneck``) instead of
    ``SCBottleneck``'s merged ones: same function and state_dict, slower; the reference for tests and benchmarks.
    ``fused_calibration=True`` computes every calibration gate in training with the fused op
    (``SelfCalibration(fused=True)``); the default, False, uses the official code's separate ops: on an H200 the eager
    step of the merged block was faster with them (training 1963 against 1602 img/s, inference 11331
    against 9652; docs/scnet_speed.md). Same function and parameters either way. ``pooling_r``,
    ``calibration_pooling``, ``calibration_upsampling`` and ``calibration_gate_identity`` set every block's
    self-calibrated conv (its ``pooling_r``, ``pooling``, ``upsampling``, ``gate_identity``; defaults: the official
    code's). ``recompute_calibration=True``: each block computes its calibration again in the backward pass instead
    of keeping its activations (``SCBottleneck``; less training memory for more work). ``stem="cifar"``: the
    small-input stem (``stems.small_input_stem``).
    """

    official_key_rules: tuple[tuple[str, str], ...] = ()  # the official names are ours

    def __init__(
        self,
        layers: tuple[int, ...],
        base_width: int = 32,
        zero_init_last: bool = False,
        fused_calibration: bool = False,
        pooling_r: int = 4,
        calibration_pooling: str = "avg",
        calibration_upsampling: str = "nearest",
        calibration_gate_identity: bool = True,
        recompute_calibration: bool = False,
        stem: str = "imagenet",
        official_layers: bool = False,
        block_args: dict | None = None,
        **kwargs,
    ) -> None:
        block_args = dict(block_args or {}, fused_calibration=fused_calibration, pooling_r=pooling_r,
                          pooling=calibration_pooling, upsampling=calibration_upsampling,
                          gate_identity=calibration_gate_identity,
                          recompute_calibration=recompute_calibration)  # fmt: skip
        super().__init__(
            block=OfficialSCBottleneck if official_layers else SCBottleneck, layers=layers, base_width=base_width,
            zero_init_last=zero_init_last, block_args=block_args, **kwargs,
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
