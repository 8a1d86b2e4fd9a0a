"""Synchronised batch norm on any device.

On GPUs this is ``torch.nn.SyncBatchNorm``. PyTorch's version refuses CPU tensors, so on CPU (gloo) the batch
statistics are summed over the ranks with the differentiable ``torch.distributed.nn.all_reduce``; autograd then
sums the gradients of the statistics over the ranks too, which is exactly the backward of a batch norm over the
global batch.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn as nn
from torch import Tensor

__all__ = ["CpuSyncBatchNorm", "convert_sync_batchnorm"]


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch over all ranks."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        with warnings.catch_warnings():  # deprecated in favour of a private module; still the public autograd op
            warnings.simplefilter("ignore", FutureWarning)
            return self._synchronised(x)

    def _synchronised(self, x: Tensor) -> Tensor:
        from torch.distributed.nn.functional import all_reduce

        dims = (0, 2, 3)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        stats = all_reduce(torch.cat([x.sum(dims), count]))  # differentiable: its backward sums over ranks too
        n = stats[-1]
        mean = stats[:-1] / n
        centred = x - mean[None, :, None, None]
        var = all_reduce(centred.square().sum(dims)) / n  # two passes: as stable as a local batch norm
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                unbiased = var.detach() * (n / (n - 1)).clamp_min(0)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CpuSyncBatchNorm):
        new = CpuSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)  # fmt: skip
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, _convert_cpu(child))
    return module


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every ``BatchNorm2d`` of ``model`` synchronised over the process group (torch's on GPU, ours on CPU)."""
    if device.type == "cpu":
        return _convert_cpu(model)
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
