"""Synchronised batch norm on CPU over gloo equals batch norm over the global batch, forward and backward."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from adaptconv.engine.sync_batchnorm import CpuSyncBatchNorm, convert_sync_batchnorm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, x: torch.Tensor, gy: torch.Tensor, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    bn = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)), torch.device("cpu"))[0]
    assert isinstance(bn, CpuSyncBatchNorm)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
    xr = x.chunk(2)[rank].clone().requires_grad_()
    y = bn(xr)
    y.backward(gy.chunk(2)[rank])
    out[rank] = (y.detach(), xr.grad, bn.weight.grad, bn.running_mean.clone(), bn.running_var.clone())
    dist.destroy_process_group()


def test_cpu_sync_batchnorm_matches_global_batch_norm():
    torch.manual_seed(0)
    x, gy = torch.randn(6, 3, 5, 4) * 3 + 1, torch.randn(6, 3, 5, 4)
    ref = nn.BatchNorm2d(3)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
    xr = x.clone().requires_grad_()
    y = ref(xr)
    y.backward(gy)
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(_free_port(), x, gy, out), nprocs=2)
        parts = [out[0], out[1]]
    torch.testing.assert_close(torch.cat([parts[0][0], parts[1][0]]), y.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([parts[0][1], parts[1][1]]), xr.grad, rtol=1e-4, atol=1e-5)
    # DDP averages parameter gradients over ranks; each rank holds the global gradient's share of its samples
    torch.testing.assert_close(parts[0][2] + parts[1][2], ref.weight.grad, rtol=1e-4, atol=1e-5)
    for p in parts:
        torch.testing.assert_close(p[3], ref.running_mean)
        torch.testing.assert_close(p[4], ref.running_var)
