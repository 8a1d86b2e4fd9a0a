"""The device-resident loader: its hash, its augmentations against plain formulas, its order and its resumability."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import DEVICES

from adaptconv.data.datasets import ArrayDataset
from adaptconv.data.device_loading import (
    DeviceAugment,
    DeviceLoader,
    crop_boxes,
    hash_uniform,
    materialize,
    resized_crop,
)
from adaptconv.data.loading import EpochSampler, sample_seed
from adaptconv.data.transforms import DataConfig, build_transform

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
@pytest.mark.parametrize("aug", [DeviceAugment(translate=4, cutout=12), DeviceAugment(size=40, crop_scale=(0.35, 1))])
def test_cuda_batches_equal_cpu_batches(aug):
    ds = dataset(n=64, h=32, w=32)
    cpu, cuda = (DeviceLoader(ds, d, 16, (0.5,) * 3, (0.25,) * 3, aug, seed=5) for d in ("cpu", "cuda"))
    for loader in (cpu, cuda):
        loader.set_epoch(1)
    # The same crops and flips; the bilinear resampling of the random-resized crop (grid_sample) rounds differently
    # on the two devices (on the H200, 1e-5 at most, 2026-12-04): 1e-4 is under 1% of one grey level (1/255/0.25).
    tol = 1e-6 if aug.crop_scale is None else 1e-4
    for (a, la, _), (b, lb, _) in zip(cpu, cuda, strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=0, atol=tol)
        assert torch.equal(la, lb.cpu())


def plain_crop_box(seed: int, height: int, width: int, scale, ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params``, line by line, drawing from the hash streams the loader uses."""
    s = torch.tensor([seed])
    draw = lambda stream: float(hash_uniform(s, stream))  # noqa: E731
    area, log_ratio = height * width, (math.log(ratio[0]), math.log(ratio[1]))
    for t in range(10):
        target_area = area * (scale[0] + draw(5 + 2 * t) * (scale[1] - scale[0]))
        aspect = math.exp(log_ratio[0] + draw(6 + 2 * t) * (log_ratio[1] - log_ratio[0]))
        w, h = round(math.sqrt(target_area * aspect)), round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(draw(25) * (height - h + 1)), int(draw(26) * (width - w + 1)), h, w
    return 0, 0, height, width  # square images: the whole image


def test_crop_boxes_are_torchvisions_draws_and_the_crop_is_interpolate_of_the_box():
    seeds = torch.tensor([sample_seed(3, epoch, i) for epoch in range(3) for i in range(40)])
    top, left, h, w = crop_boxes(seeds, 24, 24, (0.35, 1.0))
    boxes = list(zip(top.tolist(), left.tolist(), h.tolist(), w.tolist(), strict=True))
    assert boxes == [plain_crop_box(int(s), 24, 24, (0.35, 1.0)) for s in seeds]
    assert all(0.35 * 576 * 0.9 <= bh * bw and bh + bt <= 24 and bw + bl <= 24 for bt, bl, bh, bw in boxes)
    images = dataset(n=len(seeds), h=24, w=24).images.float()
    flip = hash_uniform(seeds, 2) < 0.5
    got = resized_crop(images, (top, left, h, w), 32, flip)
    for k in (0, 5, 77, 119):
        bt, bl, bh, bw = boxes[k]
        box = images[k : k + 1, :, bt : bt + bh, bl : bl + bw]
        expected = torch.nn.functional.interpolate(box, size=(32, 32), mode="bilinear", align_corners=False)[0]
        torch.testing.assert_close(got[k], expected.flip(-1) if flip[k] else expected, rtol=0, atol=1e-3)


def test_crop_falls_back_to_the_centre_when_no_try_fits():
    # an area of at least the whole image at a ratio far from 1 never fits: torchvision's centre crop, ratio clamped
    top, left, h, w = crop_boxes(torch.arange(4), 10, 40, (1.0, 1.0), ratio=(3.0, 3.0))
    assert (top.tolist(), left.tolist(), h.tolist(), w.tolist()) == ([0] * 4, [5] * 4, [10] * 4, [30] * 4)


def crop_loader(ds, batch_size=8, seed=2):
    aug = DeviceAugment(size=32, cutout=0, crop_scale=(0.35, 1.0))
    return DeviceLoader(ds, "cpu", batch_size, (0.5,) * 3, (0.25,) * 3, aug, seed=seed)


def test_random_resized_crop_depends_on_seed_epoch_and_sample_alone():
    ds = dataset(n=40, h=24, w=24)
    a, b = crop_loader(ds, 8), crop_loader(ds, 5)  # batches of another size: the same image per sample
    for loader in (a, b):
        loader.set_epoch(1)
    x, y = torch.cat([t[0] for t in a]), torch.cat([t[1] for t in a])
    assert x.shape == (40, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= (0 - 0.5) / 0.25 and x.max() <= (1 - 0.5) / 0.25  # bilinear stays within the pixels' range
    assert torch.equal(x, torch.cat([t[0] for t in b])) and torch.equal(y, torch.cat([t[1] for t in b]))
    a.set_epoch(2)
    assert not torch.equal(x, torch.cat([t[0] for t in a]))  # another epoch, other crops
    resumed = crop_loader(ds, 8)
    resumed.set_epoch(1)
    resumed.set_start(3 * 8)
    assert torch.equal(torch.cat([t[0] for t in resumed]), x[3 * 8 :])


@pytest.mark.parametrize(("side", "crop_pct"), [(24, 1.0), (24, 0.75)])
def test_evaluation_resize_is_the_evaluation_transform(side, crop_pct):
    """Evaluation on the device feeds what the worker loader's ImageNet evaluation transform does."""
    ds = dataset(n=6, h=side, w=side)
    loader = DeviceLoader(ds, "cpu", 6, (0.5,) * 3, (0.25,) * 3, size=32, crop_pct=crop_pct)
    x = next(iter(loader))[0]
    transform = build_transform(DataConfig(32, (0.5,) * 3, (0.25,) * 3, crop_pct=crop_pct), train=False)
    expected = torch.stack([transform(image) for image in ds.images])
    assert x.shape == (6, 3, 32, 32)
    torch.testing.assert_close(x, expected, rtol=0, atol=0.02)


@pytest.mark.parametrize("augment", [DeviceAugment(translate=2, cutout=3), DeviceAugment(size=6, crop_scale=(0.3, 1))],
                         ids=["translate", "resized-crop"])  # fmt: skip
def test_two_ranks_together_build_the_one_process_batch(augment):
    """Step k of 2 ranks with batch 4 each holds exactly the 8 augmented images (and labels) of step k of one process
    with batch 8: the same samples, each augmented by its own seed wherever it lands (epoch 1, from step 1 on)."""
    ds = dataset(n=40)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.25)
    one = DeviceLoader(ds, "cpu", 8, mean, std, augment, seed=5)
    ranks = [DeviceLoader(ds, "cpu", 4, mean, std, augment, seed=5, num_replicas=2, rank=r) for r in range(2)]
    for loader in (one, *ranks):
        loader.set_epoch(1)
    one.set_start(8)
    for r in ranks:
        r.set_start(4)
    steps = list(one)
    assert len(ranks[0]) == len(ranks[1]) == len(steps) == 4  # 5 steps of 8, the first one done
    for (x, y, _), (x0, y0, _), (x1, y1, _) in zip(steps, *ranks, strict=True):
        # rank r holds the one process's samples r, r + 2, ... of the step (torch's DistributedSampler)
        torch.testing.assert_close(torch.stack([x0, x1], 1).flatten(0, 1), x, rtol=0, atol=0)
        assert torch.stack([y0, y1], 1).flatten().tolist() == y.tolist()
