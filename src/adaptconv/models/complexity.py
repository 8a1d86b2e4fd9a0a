"""Parameter and multiply-accumulate counts, through PyTorch's own FLOP counter.

MACs count convolutions, linear layers and the involution aggregation (K*K*C*H_out*W_out, the formula
registered with the ``adaptconv::involution_aggregate`` op); normalisation, activations, pooling and element-wise
ops are not counted, as in the papers' tables. Build the model on the meta device to count at no cost.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["MACS_COUNTED", "count_macs", "count_params"]

#: what ``count_macs`` counts, for tables and model cards
MACS_COUNTED = (
    "convolutions, linear layers and the involution aggregation (K*K*C*H_out*W_out); not normalisation, "
    "activations, pooling or element-wise operations"
)


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, int] = (224, 224), in_chans: int = 3) -> int:
    """Multiply-accumulates of one eval-mode forward pass of one image of ``input_size`` (H, W)."""
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.empty(1, in_chans, *input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
