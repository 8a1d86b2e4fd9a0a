"""Resumable, rank-independent sampling and augmentation."""

from __future__ import annotations

import pytest
import torch

from adaptconv.data import (
    AugmentedDataset,
    BadImageError,
    DataConfig,
    DataError,
    EpochSampler,
    ShardSampler,
    build_transform,
)
from adaptconv.data.datasets import ArrayDataset
from adaptconv.data.loading import SkippedImage, collate_skipping


def _dataset(n: int = 23) -> ArrayDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 12, 12), dtype=torch.uint8, generator=g)
    return ArrayDataset(images, torch.arange(n) % 3, ("a", "b", "c"))


def test_ranks_together_see_the_single_process_batches():
    """Step k of 2 ranks with batch b/2 each covers exactly step k of one process with batch b."""
    ds, batch = _dataset(), 4
    single = [i for i, _ in EpochSampler(ds, 1, 0, seed=3)]
    ranks = [[i for i, _ in EpochSampler(ds, 2, r, seed=3)] for r in range(2)]
    for k in range(len(ranks[0]) // (batch // 2)):
        half = slice(k * batch // 2, (k + 1) * batch // 2)
        assert sorted(ranks[0][half] + ranks[1][half]) == sorted(single[k * batch : (k + 1) * batch])


def test_epoch_sampler_start_and_epochs():
    s = EpochSampler(_dataset(), 1, 0, seed=0)
    s.set_epoch(1)
    full = list(s)
    s.set_start(5)
    assert list(s) == full[5:] and len(s) == len(full) - 5
    s.set_start(0)
    s.set_epoch(2)
    assert [i for i, _ in s] != [i for i, _ in full]
    assert len({seed for _, seed in full}) == len(full)


def test_augmentation_depends_on_the_sample_seed_only():
    cfg = DataConfig(12, (0.5,), (0.5,), family="small")
    ds = AugmentedDataset(_dataset(), build_transform(cfg, train=True))
    torch.manual_seed(1)
    a = ds[(4, 1234)][0]
    torch.manual_seed(2)
    state = torch.get_rng_state()
    b = ds[(4, 1234)][0]
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state), "the global generator must not move"
    assert not torch.equal(a, ds[(4, 99)][0])


def test_shard_sampler_covers_everything_once():
    shards = [list(ShardSampler(10, 3, r)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))


def test_collate_skipping_names_and_refuses_an_empty_batch():
    bad = SkippedImage("x/1.png", "broken data stream")
    images, labels, skipped = collate_skipping([(torch.zeros(2), 1), bad, (torch.ones(2), 0)])
    assert images.shape == (2, 2) and labels.tolist() == [1, 0] and skipped == [bad]
    with pytest.raises(DataError, match=r"none of the 2 images .*\(x/1\.png, x/1\.png\)"):
        collate_skipping([bad, bad])


def test_skipped_images_carry_their_name_through_the_dataset():
    class Broken(ArrayDataset):
        def __getitem__(self, index):
            raise BadImageError(f"img{index}.jpg", "truncated")

    base = _dataset()
    ds = AugmentedDataset(Broken(base.images, base.labels, base.classes), lambda x: x, skip_bad=True)
    assert ds[3] == SkippedImage("img3.jpg", "truncated")
