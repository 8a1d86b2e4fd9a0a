"""Self-calibrated convolution (Liu et al., "Improving Convolutional Networks with Self-Calibrated
Convolutions", CVPR 2020, Eq. 1-4): ``K4( K3(x) * sigmoid(x + Up(K2(AvgPool_r(x)))) )``."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...layers import LayerType
from ..common import check_feature_map, check_positive_int
from .cpu import CalibrationConv2d
from .op import calibrate, calibration_pool
from .reference import add_upsampled

__all__ = ["CalibrationPool", "SelfCalibratedConv2d", "SelfCalibration"]

# torch.fx's symbolic tracing (torchvision's create_feature_extractor, timm's FX features) cannot run Python logic
# on a traced tensor's shape: record these calls as single graph nodes instead, which run on real tensors later.
torch.fx.wrap("check_feature_map")
torch.fx.wrap("calibrate")
torch.fx.wrap("calibration_pool")


#: the calibration branch's pooling and up-sampling: the official choice first
POOLINGS = ("avg", "max")
UPSAMPLINGS = ("nearest", "bilinear")


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


class CalibrationPool(nn.Module):
    """r x r average pooling with stride r (floor), as in the paper's down-sampling of the calibration branch.

    On a map smaller than r along an axis, the window shrinks to the whole axis (a global average there) instead
    of producing an empty output: the official code crashes on such maps (e.g. stage 4 of a 96 px input), and on
    every map of r or more pixels this is exactly ``AvgPool2d(r, r)``. ``mode="max"`` takes the maximum instead (an
    ablation, not the paper's).
    """

    def __init__(self, r: int = 4, mode: str = "avg") -> None:
        super().__init__()
        self.r = check_positive_int(r, "pooling_r")
        self.mode = _check_choice(mode, POOLINGS, "pooling")

    def forward(self, x: Tensor) -> Tensor:
        return calibration_pool(x, self.r, self.mode)

    def extra_repr(self) -> str:
        return f"r={self.r}" + ("" if self.mode == "avg" else f", mode={self.mode!r}")


def check_calibration_batch(x: Tensor, r: int, batch_statistics: bool) -> None:
    """Refuse, with a message that says what to do, a training batch whose calibration branch would leave batch norm
    one value per channel (batch 1 and a map pooled to 1x1, e.g. SCNet's last stage at 224 px), instead of batch
    norm's own error. ``batch_statistics``: whether the branch's norm computes batch statistics now."""
    if not torch.jit.is_scripting():
        h, w = x.shape[-2], x.shape[-1]
        if batch_statistics and x.shape[0] == 1 and max(h // r, 1) * max(w // r, 1) == 1:
            raise ValueError(
                f"the self-calibrated conv's calibration branch pools this {h}x{w} map to 1x1 (pooling_r={r}), and "
                "with a batch of one its batch norm has one value per channel, which training cannot normalise: "
                f"train with a batch of at least 2, or on maps of at least {2 * r} pixels a side at this layer, or "
                "call model.eval()"
            )


torch.fx.wrap("check_calibration_batch")


def _conv3x3_bn(
    in_channels: int,
    out_channels: int,
    stride: int,
    padding: int,
    dilation: int,
    groups: int,
    norm_layer: LayerType,
) -> list[nn.Module]:
    conv = CalibrationConv2d(in_channels, out_channels, 3, stride, padding, dilation, groups=groups, bias=False)
    return [conv, norm_layer(out_channels)]


class SelfCalibration(nn.Module):
    """The self-calibration of an SC-Conv without its last conv: ``K3(x) * sigmoid(x + Up(K2(AvgPool_r(x))))``, the
    input of K4 (Liu et al., CVPR 2020, Eq. 1-4).

    K2 and K3 are 3x3 conv + norm at stride 1; the gate and K3 work at the input resolution. ``Up`` is
    nearest-neighbour up-sampling to the input size (PyTorch's 'nearest', as in the official code; the paper says
    bilinear). Submodule names (``k2``, ``k3``) follow the official code. ``calibration_gate`` is an identity hook
    point whose forward hooks see the gate. SCNet's bottleneck computes K4 together with its other 3x3 conv
    (``models.scnet.SCBottleneck``); :class:`SelfCalibratedConv2d` is this module followed by K4.

    Args:
        channels: C, of the input and the output.
        padding, dilation, groups: of the 3x3 convs (padding must equal dilation, so that K3 keeps the size).
        pooling_r: r, the down-sampling rate of the calibration branch (4 in the paper); see ``CalibrationPool``
            for maps smaller than r.
        norm_layer: norm layer type after each conv.
        fused: in eager mode, compute the gate and its product with K3's output as one op
            (``op.calibrate``: one Triton kernel each way on large CUDA channels_last tensors, the official
            ops elsewhere). ``False``: the official ops, each its own pass over memory. Under ``torch.compile`` the
            official ops always run: inductor fuses them with their neighbours itself, and was as fast as the
            kernels with CUDA graphs (docs/scnet_speed.md). Same parameters either way.
        pooling, upsampling, gate_identity: ablations of the calibration branch (defaults: the official code's):
            ``pooling="max"`` pools K2's input by its maximum instead of its average; ``upsampling="bilinear"``
            up-samples K2's output bilinearly (the paper's wording) instead of to the nearest pixel (the official
            code's); ``gate_identity=False`` drops x from the gate: ``sigmoid(Up(K2(AvgPool_r(x))))``. The fused op
            computes the official gate only: other settings run PyTorch's ops. Same parameters either way.

    Shape: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        pooling_r: int = 4,
        norm_layer: LayerType = nn.BatchNorm2d,
        fused: bool = True,
        pooling: str = "avg",
        upsampling: str = "nearest",
        gate_identity: bool = True,
    ) -> None:
        super().__init__()
        for value, name in ((channels, "in_channels"), (groups, "groups"), (dilation, "dilation")):
            check_positive_int(value, name)
        check_positive_int(padding, "padding", minimum=0)
        if padding != dilation:
            raise ValueError(
                f"padding ({padding}) must equal dilation ({dilation}): K3 must keep the input's size, which the "
                "calibration gate multiplies; a 3x3 conv does with padding = dilation"
            )
        if channels % groups:
            raise ValueError(f"in_channels ({channels}) must be a multiple of groups ({groups})")
        self.in_channels = channels
        self.upsampling = _check_choice(upsampling, UPSAMPLINGS, "upsampling")
        self.gate_identity = gate_identity
        self.k2 = nn.Sequential(
            CalibrationPool(pooling_r, pooling),
            *_conv3x3_bn(channels, channels, 1, padding, dilation, groups, norm_layer),
        )
        self.k3 = nn.Sequential(*_conv3x3_bn(channels, channels, 1, padding, dilation, groups, norm_layer))
        # A hook point, no parameters: a forward hook on it sees the very gate tensor that the forward multiplies
        # by (``adaptconv visualize`` draws it), without recomputing it. The state_dict is unchanged.
        self.calibration_gate = nn.Identity()
        self.fused = fused
        # whether the gate is the fused op's formula (the official one): only then can the op compute it
        self.official_gate = upsampling == "nearest" and gate_identity
        # In training, batch norm needs more than one value per channel: see check_calibration_batch.
        self.batch_norm = isinstance(self.k2[-1], nn.modules.batchnorm._BatchNorm)

    def gate(self, x: Tensor) -> Tensor:
        """The calibration gate ``sigmoid(x + Up(K2(AvgPool_r(x))))``, (N, C_in, H, W)."""
        size = [x.shape[-2], x.shape[-1]]
        if self.upsampling == "bilinear":
            up = F.interpolate(self.k2(x), size=size, mode="bilinear", align_corners=False)
        else:
            up = F.interpolate(self.k2(x), size=size, mode="nearest")
        return self.calibration_gate(torch.sigmoid(x + up if self.gate_identity else up))

    def calibrated(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        """``K3(x) * gate(x)``. With ``out`` (inference only: no autograd through it), the result is written into
        ``out``, a tensor of x's shape that may be x itself (then x is overwritten, after K2 and K3 have read it)."""
        use_op = self.fused and self.official_gate
        in_place = out is not None
        if not torch.jit.is_scripting():
            check_feature_map(x, "x", self.in_channels)
            check_calibration_batch(x, self.k2[0].r, self.training and self.batch_norm)
            # A hook on the gate needs the gate as a tensor: the unfused ops make it.
            gate_hooked = bool(self.calibration_gate._forward_hooks or self.calibration_gate._forward_pre_hooks)
            use_op = use_op and not gate_hooked and not torch.compiler.is_compiling()
            in_place = in_place and not gate_hooked
        # In place, the official ops make no temporary and no copy: faster than the op and a copy into out, on CUDA
        # too (SCNet-50's inference on an H200, docs/scnet_speed.md).
        use_op = use_op and not in_place
        k3 = self.k3(x)
        if use_op:
            result = calibrate(x, k3, self.k2(x))
        elif in_place and self.official_gate and out is not None:
            # the official ops in place: no temporaries but K2's map
            return add_upsampled(x, self.k2(x), out).sigmoid_().mul_(k3)
        else:
            result = k3 * self.gate(x)
        if out is not None:
            return out.copy_(result)
        return result

    def forward(self, x: Tensor, out: Tensor | None = None) -> Tensor:
        return self.calibrated(x, out)

    def extra_repr(self) -> str:
        options = [] if self.fused else ["fused=False"]
        if self.upsampling != "nearest":
            options.append(f"upsampling={self.upsampling!r}")
        if not self.gate_identity:
            options.append("gate_identity=False")
        return ", ".join(options)


class SelfCalibratedConv2d(SelfCalibration):
    """Self-calibrated 3x3 convolution: ``K4( K3(x) * sigmoid(x + Up(K2(AvgPool_r(x)))) )``.

    :class:`SelfCalibration` followed by K4, a 3x3 conv + norm that alone carries the stride. Submodule names
    (``k2``, ``k3``, ``k4``) and defaults follow the official code, so official checkpoints load directly.

    Args:
        in_channels: C_in.
        out_channels: C_out. ``None`` (the official case) means C_in. A different value is an extension beyond
            the official code, which only works for C_in == C_out: the calibration (K2, K3, the gate) stays at
            C_in channels and only K4 maps C_in -> C_out, so the official case is unchanged.
        stride, padding, dilation, groups: of the three 3x3 convs (stride of K4 only).
        pooling_r, norm_layer, fused, pooling, upsampling, gate_identity: the calibration's
            (:class:`SelfCalibration`).

    Shape: (N, C_in, H, W) -> (N, C_out, H_out, W_out), H_out as for a 3x3 conv with this stride and padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        pooling_r: int = 4,
        norm_layer: LayerType = nn.BatchNorm2d,
        fused: bool = True,
        pooling: str = "avg",
        upsampling: str = "nearest",
        gate_identity: bool = True,
    ) -> None:
        out_channels = in_channels if out_channels is None else out_channels
        for value, name in ((out_channels, "out_channels"), (stride, "stride")):
            check_positive_int(value, name)
        if out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be multiples of groups ({groups})"
            )
        super().__init__(in_channels, padding, dilation, groups, pooling_r, norm_layer, fused, pooling, upsampling,
                         gate_identity)  # fmt: skip
        self.out_channels = out_channels
        self.k4 = nn.Sequential(*_conv3x3_bn(in_channels, out_channels, stride, padding, dilation, groups, norm_layer))

    def forward(self, x: Tensor) -> Tensor:
        return self.k4(self.calibrated(x))
