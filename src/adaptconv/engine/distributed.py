"""Process set-up: one process (CPU or one GPU), ``torchrun`` (env://), or one process per GPU spawned by us
(``--multiprocessing-distributed``, the classic ImageNet script's way). DDP over NCCL on GPUs, gloo on CPU."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .config import ConfigError

__all__ = ["DistContext", "all_reduce_sum", "gather_objects", "launch"]


@dataclass(frozen=True)
class DistContext:
    """Where this process runs and which part of the work is its own."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def all_reduce_sum(values: list[float] | torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a small vector over all ranks (float64, on the process's device for NCCL)."""
    t = torch.as_tensor(values, dtype=torch.float64).to(ctx.device)
    if dist.is_initialized():
        dist.all_reduce(t)
    return t.cpu()


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` in a single process)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def _device(gpu: int | None, local_rank: int, want_cuda: bool) -> torch.device:
    if not want_cuda:
        return torch.device("cpu")
    index = gpu if gpu is not None else local_rank
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _check_gpu(gpu: int | None) -> None:
    if gpu is None:
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"--gpu {gpu} asks for a GPU, but PyTorch sees none; leave --gpu out to train on the CPU")
    if not 0 <= gpu < torch.cuda.device_count():
        raise ConfigError(f"--gpu {gpu}: this machine has GPUs 0..{torch.cuda.device_count() - 1}")


def _processes_per_node(asked: int | None, cuda: bool) -> int:
    """``--multiprocessing-distributed``'s processes on this node: one a GPU (1 on the CPU), or ``asked``."""
    if asked is None:
        return torch.cuda.device_count() if cuda else 1
    if asked < 1:
        raise ConfigError(f"--nproc-per-node must be at least 1, got {asked}")
    if cuda and asked > torch.cuda.device_count():
        raise ConfigError(f"--nproc-per-node {asked}: one process a GPU, and this node has {torch.cuda.device_count()}")
    return asked


def _init(backend: str | None, url: str, world_size: int, rank: int, cuda: bool) -> None:
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"), init_method=url, world_size=world_size, rank=rank)


def _spawned(local_rank: int, fn: Callable, opts, nprocs: int, backend, url, world_size, node_rank, cuda, *args):
    rank = node_rank * nprocs + local_rank
    _init(backend, url, world_size, rank, cuda)
    ctx = DistContext(rank, world_size, local_rank, nprocs, _device(None, local_rank, cuda))
    try:
        fn(ctx, opts, *args)
    finally:
        dist.destroy_process_group()


def launch(fn: Callable, opts, *args) -> None:
    """Run ``fn(ctx, opts, *args)`` in the process layout that ``opts``' classic flags describe (``world_size``,
    ``rank``, ``dist_url``, ``dist_backend``, ``gpu``, ``multiprocessing_distributed``; ``cpu`` to stay off GPUs).

    - ``torchrun``: ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the environment, ``dist_url='env://'``.
    - ``multiprocessing_distributed``: one process per GPU of this node (one process on a CPU-only node), or
      ``nproc_per_node`` processes; ``world_size`` counts nodes and ``rank`` is this node's rank, as in the classic
      script.
    - otherwise one process on ``gpu`` (or the first GPU, or the CPU).
    """
    world_size, rank, dist_url, dist_backend, gpu = (opts.world_size, opts.rank, opts.dist_url, opts.dist_backend,
                                                     opts.gpu)  # fmt: skip
    _check_gpu(gpu)
    cuda = torch.cuda.is_available() and not opts.cpu
    if dist_url == "env://" and world_size == -1 and "WORLD_SIZE" in os.environ:
        world_size = int(os.environ["WORLD_SIZE"])
    if opts.multiprocessing_distributed:
        nprocs = _processes_per_node(getattr(opts, "nproc_per_node", None), cuda)
        nodes = max(world_size, 1)
        node_rank = max(rank, 0)
        if dist_url == "env://":
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", "29500")
        torch.multiprocessing.spawn(
            _spawned, nprocs=nprocs,
            args=(fn, opts, nprocs, dist_backend, dist_url, nprocs * nodes, node_rank, cuda, *args),
        )  # fmt: skip
        return
    if world_size > 1:
        if dist_url == "env://":
            rank = int(os.environ.get("RANK", rank))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        if rank < 0:
            raise ConfigError("distributed training needs --rank (or torchrun, which sets RANK)")
        _init(dist_backend, dist_url, world_size, rank, cuda)
        ctx = DistContext(rank, world_size, local_rank, local_world, _device(gpu, local_rank, cuda))
        try:
            fn(ctx, opts, *args)
        finally:
            dist.destroy_process_group()
        return
    fn(DistContext(device=_device(gpu or 0, 0, cuda) if cuda else torch.device("cpu")), opts, *args)
