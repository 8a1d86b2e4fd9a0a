"""Samplers and a dataset wrapper that make data loading exactly resumable and identical on any number of ranks.

- :class:`EpochSampler` is torch's ``DistributedSampler`` (a permutation seeded by ``seed + epoch``, rank ``r``
  takes every ``world``-th index) that can start part-way into an epoch, and yields ``(index, sample_seed)``.
- :class:`AugmentedDataset` applies the transform under ``sample_seed``: a sample's random augmentation depends on
  the run's seed, the epoch and the sample alone, not on the worker that loads it, the number of workers or ranks,
  or where a resumed run started.
- :class:`ShardSampler` splits an evaluation set over the ranks without padding or dropping, so that metrics summed
  over the ranks are exact.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Sampler
from torch.utils.data._utils.collate import default_collate

from .datasets import BadImageError, DataError

__all__ = ["AugmentedDataset", "EpochSampler", "ShardSampler", "SkippedImage", "collate_skipping",
           "ignore_stop_signals", "sample_seed"]  # fmt: skip

_MASK = (1 << 63) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one sample's augmentation, unique per (run seed, epoch, index)."""
    return ((seed * 1_000_003 + epoch) * 2_654_435_761 + index) & _MASK


class EpochSampler(DistributedSampler):
    """``DistributedSampler`` that yields ``(index, sample_seed)`` and can skip the first samples of an epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank in the next epoch (resuming mid-epoch)."""
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())[self.start :]
        return iter([(i, sample_seed(self.seed, self.epoch, i)) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once over all ranks, in order."""

    def __init__(self, length: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.indices = range(rank, length, num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class SkippedImage:
    """What :class:`AugmentedDataset` returns in place of an image it could not decode (with ``skip_bad``)."""

    where: str  # the file (or the file and index in it)
    reason: str  # the decoder's complaint


class AugmentedDataset(Dataset):
    """``base[index]`` through ``transform``, seeded by the sampler's ``sample_seed``; bad images become a
    :class:`SkippedImage` when ``skip_bad`` (and are named by :func:`collate_skipping`)."""

    def __init__(self, base: Dataset, transform: Callable[[Tensor], Tensor], skip_bad: bool = False) -> None:
        self.base, self.transform, self.skip_bad = base, transform, skip_bad

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item: int | tuple[int, int]):
        index, seed = item if isinstance(item, tuple) else (item, None)
        try:
            image, label = self.base[index]
        except BadImageError as e:
            if self.skip_bad:
                return SkippedImage(e.where, e.reason)
            raise
        if seed is None:
            return self.transform(image), label
        # torchvision's random transforms draw from torch's global CPU generator: seed it for this sample and put
        # its state back, so that the seed stays local (fork_rng does the same, at 100x the cost per sample)
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(seed)
        try:
            return self.transform(image), label
        finally:
            generator.set_state(state)


def collate_skipping(batch: Sequence) -> tuple[Tensor, Tensor, list[SkippedImage]]:
    """``default_collate`` over the samples that loaded, and the names of those that did not."""
    skipped = [b for b in batch if isinstance(b, SkippedImage)]
    good = [b for b in batch if not isinstance(b, SkippedImage)]
    if not good:
        names = ", ".join(s.where for s in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        raise DataError(f"none of the {len(batch)} images of a batch could be decoded ({names}); check the data set")
    images, labels = default_collate(good)
    return images, labels, skipped


def ignore_stop_signals(worker_id: int | None = None) -> None:
    """A data-loading worker's start: leave SIGTERM and SIGINT to the main process, which saves a checkpoint and
    then ends the workers. A scheduler signals the whole process group (Slurm, ``kill -TERM -PGID``, Ctrl-C in a
    terminal); a worker that died of it first would make the loader fail before the checkpoint is written."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
