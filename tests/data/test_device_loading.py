"""The device-resident loader: its hash, its augmentations against plain formulas, its order and its resumability."""

from __future__ import annotations

import pytest
import torch
from helpers import DEVICES

from adaptconv.data.datasets import ArrayDataset
from adaptconv.data.device_loading import DeviceAugment, DeviceLoader, hash_uniform, materialize
from adaptconv.data.loading import EpochSampler, sample_seed

MASK64 = (1 << 64) - 1


def splitmix64(seed: int, stream: int) -> float:
    """The reference: splitmix64 in Python's unbounded integers, reduced mod 2**64 at each step."""
    z = (seed + (stream + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) / float(1 << 53)


@pytest.mark.parametrize("device", DEVICES)
def test_hash_is_splitmix64_on_every_device(device):
    seeds = [0, 1, 12345, sample_seed(7, 3, 49_999), (1 << 63) - 1]
    got = hash_uniform(torch.tensor(seeds, device=device), 4).cpu()
    assert got.tolist() == [splitmix64(s, 4) for s in seeds]
    u = hash_uniform(torch.arange(100_000, device=device), 0)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean().item() - 0.5) < 0.01


def dataset(n=40, c=3, h=8, w=10):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g)
    return ArrayDataset(images, torch.arange(n) % 5, tuple("abcde"))


def test_evaluation_batches_are_every_sample_normalised_in_order():
    ds = dataset(n=23)
    loader = DeviceLoader(ds, "cpu", 10, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.25), num_replicas=2, rank=1)
    batches = list(loader)
    assert len(loader) == len(batches) == 2  # rank 1 of 2: samples 1, 3, ..., 21 (11 of them)
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    expected = (ds.images[1::2].float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.2, 0.25]).view(1, 3, 1, 1)  # fmt: skip
    torch.testing.assert_close(images, expected)
    assert labels.tolist() == ds.labels[1::2].tolist() and all(b[2] == [] for b in batches)


def plain_augment(image: torch.Tensor, seed: int, aug: DeviceAugment, mean: float, std: float) -> torch.Tensor:
    """One image augmented by loops over its pixels, from the same hashed draws as the loader."""
    s = torch.tensor([seed])
    t = aug.translate
    dy = int((hash_uniform(s, 0) * (2 * t + 1)).long().clamp(max=2 * t)) - t
    dx = int((hash_uniform(s, 1) * (2 * t + 1)).long().clamp(max=2 * t)) - t
    flip = bool(hash_uniform(s, 2) < 0.5) and aug.flip
    c, h, w = image.shape
    out = torch.zeros(c, h, w, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            sx = w - 1 - x if flip else x
            yy, xx = y - dy, sx - dx
            if 0 <= yy < h and 0 <= xx < w:
                out[:, y, x] = image[:, yy, xx].double()
    out = (out / 255 - mean) / std
    if aug.cutout:
        cy = int((hash_uniform(s, 3) * h).long().clamp(max=h - 1))
        cx = int((hash_uniform(s, 4) * w).long().clamp(max=w - 1))
        lo, hi = -(aug.cutout // 2), aug.cutout - aug.cutout // 2
        out[:, max(0, cy + lo) : max(0, cy + hi), max(0, cx + lo) : max(0, cx + hi)] = 0
    return out


@pytest.mark.parametrize("aug", [DeviceAugment(translate=3, cutout=4), DeviceAugment(translate=0, flip=True),
                                 DeviceAugment(translate=2, flip=False, cutout=3)])  # fmt: skip
def test_training_batches_follow_the_sampler_and_the_plain_formulas(aug):
    ds = dataset(n=40)
    loader = DeviceLoader(ds, "cpu", 8, mean=(0.5,) * 3, std=(0.25,) * 3, augment=aug, seed=3)
    loader.set_epoch(2)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    sampler = EpochSampler(range(40), 1, 0, seed=3)
    sampler.set_epoch(2)
    pairs = list(sampler)
    assert torch.cat([b[1] for b in batches]).tolist() == [int(ds.labels[i]) for i, _ in pairs]
    images = torch.cat([b[0] for b in batches])
    for k in (0, 7, 21, 39):
        index, seed = pairs[k]
        torch.testing.assert_close(images[k].double(), plain_augment(ds.images[index], seed, aug, 0.5, 0.25))


def test_resuming_mid_epoch_gives_the_rest_of_the_epoch_exactly():
    ds = dataset(n=40)
    make = lambda: DeviceLoader(ds, "cpu", 8, (0.5,) * 3, (0.25,) * 3, DeviceAugment(translate=2, cutout=3), seed=1)  # noqa: E731
    whole = make()
    whole.set_epoch(4)
    expected = list(whole)[2:]
    resumed = make()
    resumed.set_epoch(4)
    resumed.set_start(2 * 8)
    got = list(resumed)
    assert len(got) == len(expected) == 3
    for (a, la, _), (b, lb, _) in zip(got, expected, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_resize_and_channels_last_and_a_decoded_split():
    class Decoded(torch.utils.data.Dataset):  # a data set that decodes on access (as the JPEG .npz one)
        def __init__(self):
            self.inner = dataset(n=12)

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            return self.inner[i]

    images, labels = materialize(Decoded())
    assert torch.equal(images, dataset(n=12).images) and labels.tolist() == dataset(n=12).labels.tolist()
    loader = DeviceLoader(Decoded(), "cpu", 4, (0.5,) * 3, (0.5,) * 3, DeviceAugment(size=16), channels_last=True)
    x, y, _ = next(iter(loader))
    assert x.shape == (4, 3, 16, 16) and x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.gpu
def test_cuda_batches_equal_cpu_batches():
    ds = dataset(n=64, h=32, w=32)
    aug = DeviceAugment(translate=4, cutout=12)
    cpu, cuda = (DeviceLoader(ds, d, 16, (0.5,) * 3, (0.25,) * 3, aug, seed=5) for d in ("cpu", "cuda"))
    for loader in (cpu, cuda):
        loader.set_epoch(1)
    for (a, la, _), (b, lb, _) in zip(cpu, cuda, strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-6, atol=1e-6)
        assert torch.equal(la, lb.cpu())
