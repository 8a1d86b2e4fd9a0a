"""What the residual blocks of both families share: timm's block options, the 1x1 expansion and the residual sum."""

from __future__ import annotations

import warnings

import torch
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


def warn_if_batch_norm_degenerates(x: Tensor, batch_statistics: bool) -> None:
    """Warn when a training block's batch norms get at most two values per channel (N * H * W <= 2 at its input).

    With two values a channel, batch norm's output is +-1 (times its scale, plus its shift) whatever its input, so
    the gradient it passes back is zero in exact arithmetic: what remains is rounding noise, multiplied by
    1 / sqrt(var + eps) (up to 316). Over many norms in series (SCNet-101 on 1x1 maps: 7 a block, 33 blocks) it
    grows past float32's range, and the gradients become infinite or NaN. ``batch_statistics``: whether the
    block's norms compute batch statistics now (batch norm in training mode)."""
    if not torch.jit.is_scripting() and batch_statistics and not torch.compiler.is_compiling():
        values = x.shape[0] * x.shape[2] * x.shape[3]
        if values <= 2:
            warnings.warn(
                f"a residual block trains on {tuple(x.shape)} maps: its batch norms get {values} value(s) a channel, "
                "which leaves them no signal to pass back (their input gradient is rounding noise, amplified by each "
                "norm; a deep model's gradients can overflow to NaN). Train with larger images or batches.",
                stacklevel=2,
            )


torch.fx.wrap("warn_if_batch_norm_degenerates")


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
        self.batch_norm = isinstance(self.bn3, nn.modules.batchnorm._BatchNorm)
        place(self, device, dtype)

    def branch(self, x: Tensor) -> Tensor:
        """The block's own computation, up to the input of ``conv3``."""
        raise NotImplementedError

    def zero_init_last(self) -> None:
        """Zero the last BN's scale so that the block starts as the identity (timm's ``zero_init_last``)."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        warn_if_batch_norm_degenerates(x, self.training and self.batch_norm)
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.drop_path(self.drop_block(self.bn3(self.conv3(self.branch(x)))))
        if torch.is_grad_enabled():
            return self.act(out + shortcut)
        # inference: the sum in place (out is a new tensor), no temporary the size of the block's output
        return self.act(out.add_(shortcut))
