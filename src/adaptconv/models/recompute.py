"""Recomputing part of a model in the backward pass instead of keeping its activations, batch norm updated once.

``torch.utils.checkpoint`` runs a function again in the backward pass; its batch norms would then update their running
statistics a second time. :func:`recomputed` runs the recomputation with each batch norm's momentum at 0 and a
scratch counter, so the running statistics are rewritten with their own values (a weight of 0 for the batch's) and
the counter stays: the same operations as the forward (the checkpoint compares what they save), the batch's
statistics used alike (plain and synchronised batch norm).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

__all__ = ["recomputed", "running_statistics_not_updated"]


@contextlib.contextmanager
def running_statistics_not_updated(module: nn.Module) -> Iterator[None]:
    """Within the block, the batch norms of ``module`` that are training normalise by the batch's statistics as
    before, but update their running statistics with weight 0 (momentum 0: they keep their values), and count the
    batch on a scratch counter instead of ``num_batches_tracked`` (synchronised batch norm requires a counter)."""
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    kept = [(m.momentum, m.num_batches_tracked) for m in norms]
    for m, (_, count) in zip(norms, kept, strict=True):
        m.momentum, m.num_batches_tracked = 0.0, _scratch_counter(m, count)
    try:
        yield
    finally:
        for m, (momentum, count) in zip(norms, kept, strict=True):
            m.momentum, m.num_batches_tracked = momentum, count


def _scratch_counter(norm: nn.Module, count: Tensor | None) -> Tensor | None:
    """A counter like ``count`` that nothing reads, kept on the norm (outside its state_dict) for the next time."""
    if count is None:
        return None
    scratch = norm.__dict__.get("_recomputation_counter")
    if scratch is None or scratch.device != count.device:
        scratch = norm.__dict__["_recomputation_counter"] = torch.zeros_like(count)
    return scratch


def recomputed(function: Callable[..., Tensor], module: nn.Module, *inputs: Tensor) -> Tensor:
    """``function(*inputs)`` without keeping its activations for the backward pass (non-reentrant
    ``torch.utils.checkpoint``): the backward pass runs it again, with the batch norms of ``module`` (the module
    ``function`` runs) not updating their running statistics a second time."""
    calls = []

    def run(*args: Tensor) -> Tensor:
        calls.append(None)
        if len(calls) == 1:
            return function(*args)
        with running_statistics_not_updated(module):
            return function(*args)

    return checkpoint(run, *inputs, use_reentrant=False)
