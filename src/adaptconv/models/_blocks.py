"""What the residual blocks of both families share: timm's block options, the 1x1 expansion and the residual sum."""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from ..layers import LayerType


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


class ResidualBottleneck(nn.Module):
    """Base of both bottlenecks: ``branch(x)`` -> 1x1 ``conv3`` to ``planes * 4`` -> ``bn3`` -> drop-block ->
    drop-path -> + shortcut -> activation.

    Subclasses build their branch, then call ``finish`` last, so that their state_dict has the official order.
    """

    expansion = 4

    def finish(
        self,
        width: int,
        planes: int,
        downsample: nn.Module | None,
        norm_layer: LayerType,
        act_layer: LayerType,
        drop_block: nn.Module | None,
        drop_path: nn.Module | None,
        device=None,
        dtype=None,
    ) -> None:
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.act = act_layer(inplace=True)
        self.drop_block = drop_block if drop_block is not None else nn.Identity()
        self.downsample = downsample
        self.drop_path = drop_path if drop_path is not None else nn.Identity()
        place(self, device, dtype)

    def branch(self, x: Tensor) -> Tensor:
        """The block's own computation, up to the input of ``conv3``."""
        raise NotImplementedError

    def zero_init_last(self) -> None:
        """Zero the last BN's scale so that the block starts as the identity (timm's ``zero_init_last``)."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.drop_block(self.bn3(self.conv3(self.branch(x))))
        return self.act(self.drop_path(out) + shortcut)
