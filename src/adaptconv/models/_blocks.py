"""What the residual blocks of both families share: the keyword arguments timm's ``ResNet`` passes to a block."""

from __future__ import annotations

import torch.nn as nn


def check_block_options(name: str, cardinality: int, reduce_first: int, aa_layer, attn_layer=None) -> None:
    """Refuse ResNet options that a block does not implement, instead of ignoring them silently."""
    unsupported = {
        "cardinality": cardinality != 1,
        "block_reduce_first": reduce_first != 1,
        "aa_layer": aa_layer is not None,
        "attn_layer": attn_layer is not None,
    }
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise ValueError(f"{name} does not support the ResNet option(s) {', '.join(bad)}; leave them at their defaults")


def place(module: nn.Module, device=None, dtype=None) -> nn.Module:
    """Honour timm's ``device``/``dtype`` factory arguments after construction."""
    if device is not None or dtype is not None:
        module.to(device=device, dtype=dtype)
    return module
