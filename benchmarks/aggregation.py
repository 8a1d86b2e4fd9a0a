"""The involution aggregation as the benchmarks time it: its implementations, and its tensors at RedNet-50's layers.

Used by ``involution_op.py``, ``involution_memory.py``, ``involution_fused.py`` and ``ncu_kernels.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from adaptconv.benchmark import LAYOUTS
from adaptconv.ops import involution_aggregate_unfold, involution_output_size, nvrtc
from adaptconv.ops.common import TRITON_INSTALLED
from adaptconv.ops.involution import nvrtc_channels_last
from adaptconv.ops.involution.reference import involution_aggregate_backward_reference, involution_aggregate_reference

from . import flags

__all__ = ["GROUP_CHANNELS", "IMPLEMENTATIONS", "LAYERS", "aggregation_step", "layer_case", "layers_parser"]

#: implementations of the aggregation that can be timed: forward and (gradient, x, weight, conf) -> (gx, gw)
IMPLEMENTATIONS: dict[str, tuple[Callable, Callable | None]] = {
    "reference": (involution_aggregate_reference, involution_aggregate_backward_reference),
    "unfold": (involution_aggregate_unfold, None),  # its backward is autograd's
}
if TRITON_INSTALLED:
    from adaptconv.ops.involution import cuda

    IMPLEMENTATIONS["triton"] = (cuda.aggregate_triton, cuda.aggregate_backward_triton)
if nvrtc.available():
    # channels_last only: the calls nvrtc_channels_last.supports takes
    IMPLEMENTATIONS["nvrtc"] = (nvrtc_channels_last.aggregate, nvrtc_channels_last.aggregate_backward)

# RedNet-50's involutions (Li et al., CVPR 2021): the stem's 3x3 and each stage's 7x7, the first block of stages
# 2-4 with stride 2. (channels, input size, K, stride); 16 channels a group throughout.
LAYERS = {
    "stem": (32, 112, 3, 1),
    "layer1": (64, 56, 7, 1),
    "layer2.0": (128, 56, 7, 2),
    "layer2": (128, 28, 7, 1),
    "layer3.0": (256, 28, 7, 2),
    "layer3": (256, 14, 7, 1),
    "layer4.0": (512, 14, 7, 2),
    "layer4": (512, 7, 7, 1),
}
GROUP_CHANNELS = 16


def layer_case(layer: str, batch: int, dtype: torch.dtype, layout: str, device: str, fill=torch.randn) -> tuple:
    """The aggregation's tensors at one of RedNet-50's layers: x (N, C, H, H), the kernels w (N, G*K*K, Ho, Wo) and
    an output gradient gy (N, C, Ho, Wo), in ``layout`` ('nchw' or 'channels_last'), made by ``fill``; and the
    window (K, stride, padding, dilation) with 'same' padding."""
    c, h, k, s = LAYERS[layer]
    conf = (k, s, (k - 1) // 2, 1)
    ho, wo = involution_output_size(h, h, *conf)
    x, w, gy = (fill(batch, *shape, device=device, dtype=dtype).contiguous(memory_format=LAYOUTS[layout])
                for shape in ((c, h, h), (c // GROUP_CHANNELS * k * k, ho, wo), (c, ho, wo)))  # fmt: skip
    return x, w, gy, conf


def layers_parser(script: str, description: str) -> argparse.ArgumentParser:
    """The flags of the scripts that time the aggregation at RedNet-50's layers (``involution_op.py``,
    ``involution_fused.py``): ``--layers`` and the vocabulary's batch size, dtypes, layouts, device, repeats and
    warm-up runs."""
    ap = flags.parser(script, description, batch_size=64, dtype=["fp32", "bf16"], layout=["nchw", "channels_last"],
                      device=flags.default_device(), repeats=30, warmup=5)  # fmt: skip
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    return ap


def aggregation_step(impl: str, x: torch.Tensor, weight: torch.Tensor, conf: tuple, backward: bool) -> Callable:
    """A function that runs one forward (and backward) pass of ``impl`` on fixed inputs; the gradient is made here."""
    forward, backward_fn = IMPLEMENTATIONS[impl]
    with torch.no_grad():
        grad = torch.randn_like(forward(x, weight, *conf)) if backward else None

    def step() -> None:
        if not backward:
            with torch.no_grad():
                forward(x, weight, *conf)
        elif backward_fn is not None:
            forward(x, weight, *conf)
            backward_fn(grad, x, weight, *conf)
        else:
            xg, wg = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
            torch.autograd.grad(forward(xg, wg, *conf), (xg, wg), grad)

    return step
