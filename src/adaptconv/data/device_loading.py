"""A data set held on the training device: decoded once, kept as uint8, augmented there in whole batches.

For data that fits in memory (the ``.npz`` sets: CIFAR-10 is 150 MB of uint8 pixels), a loader of worker processes
that decode, augment and copy every image every epoch sets the pace of a fast GPU. :class:`DeviceLoader` instead
decodes the split once, keeps it on the device, and builds each batch there with a few batched tensor ops: gather,
random translation (zero padding, as a padded random crop) or a random-resized crop (one ``grid_sample``), horizontal
flip, cutout, resizing, normalisation.

Randomness is per sample and seeded exactly as the worker loader's (``loading.sample_seed(seed, epoch, index)``),
from a counter-based hash evaluated on the device: a sample's augmentation depends on the run's seed, the epoch and
the sample alone, so a resumed run, any batch size split and any number of ranks see the same augmented images.
The order is :class:`~adaptconv.data.loading.EpochSampler`'s (torch's ``DistributedSampler``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .datasets import ArrayDataset
from .loading import EpochSampler, ShardSampler
from .transforms import CROP_RATIO

__all__ = ["DeviceAugment", "DeviceLoader", "crop_boxes", "hash_uniform", "materialize", "resized_crop"]


def _int64(value: int) -> int:
    """``value`` mod 2**64 as a signed 64-bit integer (torch has no unsigned 64-bit arithmetic on every device)."""
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


# splitmix64's constants
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = _int64(0xBF58476D1CE4E5B9)
_MIX2 = _int64(0x94D049BB133111EB)


def _shift_right(z: Tensor, bits: int) -> Tensor:
    """Logical right shift of int64 values (torch's ``>>`` is arithmetic: it copies the sign bit)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def hash_uniform(seeds: Tensor, stream: int) -> Tensor:
    """One float64 in [0, 1) per int64 seed for each ``stream`` number: splitmix64 of ``seed + (stream + 1) *
    golden``, the same on every device (int64 products wrap around, as splitmix64's unsigned ones do)."""
    z = seeds + _int64((stream + 1) * _GOLDEN)
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    z = z ^ _shift_right(z, 31)
    return _shift_right(z, 11).double() / float(1 << 53)


def _randint(seeds: Tensor, stream: int, low: int, high: int) -> Tensor:
    """One integer in [low, high] per seed."""
    return (hash_uniform(seeds, stream) * (high - low + 1)).long().clamp_(max=high - low) + low


@dataclass(frozen=True)
class DeviceAugment:
    """The augmentations of a training batch, in this order: ``size`` (resize to size x size, bilinear, for
    up-sampled training), ``translate`` (shift by up to this many pixels each way, zero-filled: a padded random
    crop), ``flip`` (horizontal, half the samples), ``cutout`` (zero a square of this side, in normalised units,
    centred anywhere on the image, clipped at its borders; 0: none).

    ``crop_scale`` (low, high): a random-resized crop instead of the resize and the translation, as torchvision's
    ``RandomResizedCrop(size, crop_scale, crop_ratio)`` draws it (a box of that share of the area and an aspect ratio
    w/h in ``crop_ratio``, log-uniform; ten tries, then the centre crop), resized to ``size`` bilinearly."""

    size: int | None = None
    translate: int = 0
    flip: bool = True
    cutout: int = 0
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = CROP_RATIO


def materialize(dataset: Dataset) -> tuple[Tensor, Tensor]:
    """All images of ``dataset`` as one uint8 (N, C, H, W) tensor and their labels (N,), decoded once. Every image
    must have the shape of the first (the in-memory sets do)."""
    if isinstance(dataset, ArrayDataset):
        return dataset.images, dataset.labels
    first, _ = dataset[0]
    images = torch.empty((len(dataset), *first.shape), dtype=torch.uint8)
    labels = torch.empty(len(dataset), dtype=torch.long)
    for i in range(len(dataset)):
        image, label = dataset[i]
        if image.shape != first.shape:
            raise ValueError(f"image {i} has shape {tuple(image.shape)}, the first {tuple(first.shape)}: a device "
                             "loader needs images of one size")  # fmt: skip
        images[i], labels[i] = image, label
    return images, labels


def _translate_flip(images: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, pad: int) -> Tensor:
    """Each image shifted by (dy, dx) pixels, |dy|, |dx| <= ``pad`` (zero where it leaves the frame), then mirrored
    where ``flip``."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pad,) * 4)
    rows = torch.arange(h, device=images.device) + pad - dy[:, None]  # (N, H)
    cols = torch.arange(w, device=images.device) + pad - dx[:, None]  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


#: the random-resized crop's tries before it falls back to the centre crop (torchvision's), and its hash streams
_CROP_TRIES = 10
_CROP_STREAM = 5  # streams 5 .. 5 + 2 * tries + 1: each try's area and ratio, then the box's top and left


def crop_boxes(
    seeds: Tensor, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float] = CROP_RATIO
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The random-resized crop's box (top, left, h, w), integers (N,), one per seed: torchvision's
    ``RandomResizedCrop.get_params`` with each try's draws taken from the seed's hash instead of a generator."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    tries = range(_CROP_TRIES)
    target = torch.stack([hash_uniform(seeds, _CROP_STREAM + 2 * t) for t in tries], 1) * (scale[1] - scale[0])
    target = (target + scale[0]) * area
    aspect = torch.exp(torch.stack([hash_uniform(seeds, _CROP_STREAM + 2 * t + 1) for t in tries], 1)
                       * (log_ratio[1] - log_ratio[0]) + log_ratio[0])  # fmt: skip
    ws, hs = torch.sqrt(target * aspect).round().long(), torch.sqrt(target / aspect).round().long()
    fits = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = fits.int().argmax(1, keepdim=True)  # the first try that fits
    found = fits.any(1)
    # the fall-back: the centre crop of the whole image with the ratio clamped to the range
    if width / height < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif width / height > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    w = torch.where(found, ws.gather(1, first)[:, 0], fw)
    h = torch.where(found, hs.gather(1, first)[:, 0], fh)
    stream = _CROP_STREAM + 2 * _CROP_TRIES
    top = torch.where(found, (hash_uniform(seeds, stream) * (height - h + 1)).long(), (height - h) // 2)
    left = torch.where(found, (hash_uniform(seeds, stream + 1) * (width - w + 1)).long(), (width - w) // 2)
    return top, left, h, w


def resized_crop(images: Tensor, boxes: tuple[Tensor, Tensor, Tensor, Tensor], size: int, flip: Tensor) -> Tensor:
    """Each image's box (top, left, h, w) resized to size x size, bilinear (as ``F.interpolate`` of the cropped
    image, ``align_corners=False``), mirrored where ``flip``: one ``grid_sample`` for the whole batch."""
    top, left, h, w = (b.to(images.dtype)[:, None] for b in boxes)
    height, width = images.shape[-2:]
    steps = (torch.arange(size, device=images.device, dtype=images.dtype) + 0.5) / size  # output pixel centres
    # source pixel coordinates, clamped to the box's pixel centres as interpolate clamps to the cropped image
    ys = torch.minimum((top + steps * h - 0.5).clamp(min=top), top + h - 1)
    xs = torch.minimum((left + steps * w - 0.5).clamp(min=left), left + w - 1)
    xs = torch.where(flip[:, None], xs.flip(1), xs)
    grid = torch.stack(torch.broadcast_tensors(((2 * xs + 1) / width - 1)[:, None, :],
                                               ((2 * ys + 1) / height - 1)[:, :, None]), -1)  # fmt: skip
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _cutout(images: Tensor, cy: Tensor, cx: Tensor, side: int) -> Tensor:
    """Zero the side x side square centred at (cy, cx) of each image (clipped at the borders)."""
    h, w = images.shape[-2:]
    ys = torch.arange(h, device=images.device)[None, :] - cy[:, None]  # (N, H)
    xs = torch.arange(w, device=images.device)[None, :] - cx[:, None]
    low, high = -(side // 2), side - side // 2
    inside = ((ys >= low) & (ys < high))[:, :, None] & ((xs >= low) & (xs < high))[:, None, :]
    return images.masked_fill(inside[:, None], 0.0)


class DeviceLoader:
    """Batches of a data set kept on ``device``: ``(images, labels, [])`` like the worker loader's (the empty list:
    no image was skipped), images float32 normalised by ``mean``/``std``, in channels_last when asked.

    Training (``augment`` given): :class:`EpochSampler`'s order and per-sample seeds (``set_epoch``,
    ``set_start``), full batches only. Evaluation (``augment=None``): every sample of this rank once, in order,
    resized to ``size`` (the short side to ``size / crop_pct``, then the centre ``size`` x ``size``: ``crop_pct=1``
    is the whole image).
    """

    def __init__(
        self,
        dataset: Dataset,
        device: torch.device | str,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        augment: DeviceAugment | None = None,
        size: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        channels_last: bool = False,
        crop_pct: float = 1.0,
    ) -> None:
        images, labels = materialize(dataset)
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.augment, self.channels_last = batch_size, augment, channels_last
        self.size = augment.size if augment is not None and augment.size else size
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.seed, self.crop_pct = seed, crop_pct
        self.sampler = (EpochSampler(range(len(labels)), num_replicas, rank, seed) if augment is not None
                        else ShardSampler(len(labels), num_replicas, rank))  # fmt: skip

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def set_start(self, start: int) -> None:
        self.sampler.set_start(start)

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full if self.augment is not None or not rest else full + 1

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, list]]:
        if self.augment is None:
            order = torch.tensor(list(self.sampler), dtype=torch.long)
            seeds = None
        else:
            pairs = list(self.sampler)
            order = torch.tensor([i for i, _ in pairs], dtype=torch.long)
            seeds = torch.tensor([s for _, s in pairs], dtype=torch.long)
        order = order.to(self.device, non_blocking=True)
        seeds = None if seeds is None else seeds.to(self.device, non_blocking=True)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch_seeds = None if seeds is None else seeds[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.batch(idx, batch_seeds), self.labels[idx], []

    def batch(self, indices: Tensor, seeds: Tensor | None = None) -> Tensor:
        """The images at ``indices``, augmented under ``seeds`` (one per image; None: not augmented), normalised."""
        x = self.images[indices].float()
        aug = self.augment if seeds is not None else None
        if aug is not None and aug.crop_scale is not None:
            flip = (hash_uniform(seeds, 2) < 0.5) & aug.flip
            x = resized_crop(x, crop_boxes(seeds, *x.shape[-2:], aug.crop_scale, aug.crop_ratio), self.size, flip)
        else:
            x = self._resize(x)
            if aug is not None and (aug.translate or aug.flip):
                t = aug.translate
                dy, dx = _randint(seeds, 0, -t, t), _randint(seeds, 1, -t, t)
                flip = (hash_uniform(seeds, 2) < 0.5) & aug.flip
                x = _translate_flip(x, dy, dx, flip, t)
        x = (x - self.mean) / self.std
        if aug is not None and aug.cutout:
            h, w = x.shape[-2:]
            x = _cutout(x, _randint(seeds, 3, 0, h - 1), _randint(seeds, 4, 0, w - 1), aug.cutout)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def _resize(self, x: Tensor) -> Tensor:
        """Images resized to ``size`` x ``size`` (bilinear, antialiased); with ``crop_pct < 1`` their centre, as the
        evaluation transforms take it: the short side to ``size / crop_pct``, then the centre ``size`` x ``size``."""
        if self.size is None:
            return x
        h, w = x.shape[-2:]
        if self.crop_pct < 1:
            short = int(round(self.size / self.crop_pct))
            shape = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
        else:
            shape = (self.size, self.size)
        if (h, w) != shape:
            x = F.interpolate(x, size=shape, mode="bilinear", antialias=True, align_corners=False)
        top, left = (int(round((side - self.size) / 2)) for side in shape)  # as torchvision's centre crop
        return x[..., top : top + self.size, left : left + self.size]
