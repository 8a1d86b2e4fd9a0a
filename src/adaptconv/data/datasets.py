"""The image sources: arrays in memory (the embedded default), JPEG ``.npz`` files, and ImageNet-style folders.

Every dataset returns ``(image, label)`` with ``image`` a uint8 (C, H, W) tensor; transforms come later
(:mod:`adaptconv.data.transforms`). An image that cannot be decoded raises :class:`BadImageError` naming it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets import DatasetFolder

from .images import IMAGE_EXTENSIONS, ImageDecodeError, decode_image_data, read_image_file

__all__ = [
    "ArrayDataset",
    "BadImageError",
    "DataError",
    "ImageFolderDataset",
    "JpegNpzDataset",
    "embedded_dataset",
    "open_npz",
]

SPLITS = ("train", "test")
#: the embedded default data set, shipped inside the package (see ``assets/README.md``)
EMBEDDED_FILE = "fashion_mnist_subset.npz"
EMBEDDED_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot")  # fmt: skip


class DataError(ValueError):
    """The data cannot be used as given; the message says what is wrong and what to do."""


class BadImageError(DataError):
    """One image cannot be decoded (corrupt, truncated, or not an image)."""

    def __init__(self, where: str, reason: str | None = None) -> None:
        self.where, self.reason = where, reason or ""
        if reason is None:  # re-created from its message alone (as a DataLoader worker's error is)
            super().__init__(where)
            return
        super().__init__(f"cannot decode image {where}: {reason}. Remove or replace it, or pass --skip-bad-images "
                         "to skip such files (they are counted in the summary).")  # fmt: skip


class ArrayDataset(Dataset):
    """Images held in memory: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,)."""

    def __init__(self, images: Tensor, labels: Tensor, classes: tuple[str, ...]) -> None:
        self.images, self.labels, self.classes = images, labels, classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])


class JpegNpzDataset(Dataset):
    """The compact JPEG layout: ``{split}_jpeg`` bytes, ``{split}_offsets`` (N+1,), ``{split}_labels`` (N,)."""

    def __init__(self, path: Path, split: str, arrays, classes: tuple[str, ...]) -> None:
        self.path, self.split, self.classes = path, split, classes
        self.data = torch.from_numpy(np.ascontiguousarray(arrays[f"{split}_jpeg"]))
        self.offsets = arrays[f"{split}_offsets"].astype(np.int64)
        self.labels = torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))
        if len(self.offsets) != len(self.labels) + 1:
            raise DataError(f"{path}: {split}_offsets must have one entry more than {split}_labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        try:
            image = decode_image_data(self.data[start:end])
        except ImageDecodeError as e:
            raise BadImageError(f"{self.path} [{self.split} #{index}]", str(e)) from None
        return image, int(self.labels[index])


class ImageFolderDataset(DatasetFolder):
    """``root/<class>/<image>`` as torchvision's ``ImageFolder`` finds it (and GIF files), decoded to uint8 RGB
    tensors by :func:`.images.read_image_file`. A class folder without images is an error, as in torchvision."""

    def __init__(self, root: Path) -> None:
        try:
            super().__init__(str(root), loader=read_image_file, extensions=IMAGE_EXTENSIONS)
        except FileNotFoundError as e:
            raise DataError(f"{root}: {e}. Every class folder needs at least one image.") from None
        self.classes = tuple(self.classes)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        try:
            return read_image_file(path), label
        except (ImageDecodeError, OSError) as e:
            raise BadImageError(path, str(e)) from None


def _arrays_dataset(arrays, split: str, classes: tuple[str, ...]) -> ArrayDataset:
    images = torch.from_numpy(np.ascontiguousarray(arrays[f"x_{split}"]))
    if images.ndim == 3:  # grey (N, H, W)
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3):  # (N, H, W, C)
        images = images.permute(0, 3, 1, 2).contiguous()
    return ArrayDataset(images, torch.from_numpy(arrays[f"y_{split}"].astype(np.int64)), classes)


def _classes(path: Path, labels: np.ndarray) -> tuple[str, ...]:
    """Class names from ``classes.txt`` beside the file (line i names label i), else the label numbers."""
    num = int(labels.max()) + 1 if len(labels) else 0
    file = path.parent / "classes.txt"
    names = tuple(line.strip() for line in file.read_text().splitlines() if line.strip()) if file.is_file() else ()
    if len(names) >= num:
        return names
    return tuple(str(i) for i in range(num))


def open_npz(path: Path, split: str) -> Dataset:
    """A split of a ``.npz`` file: the JPEG layout (``{split}_jpeg``...) or the array layout (``x_{split}``...)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not path.is_file():
        raise DataError(f"no such .npz file: {path}")
    try:
        arrays = np.load(path, allow_pickle=False)
        keys = set(arrays.files)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} as a .npz file: {e}") from None
    if {f"{split}_jpeg", f"{split}_offsets", f"{split}_labels"} <= keys:
        return JpegNpzDataset(path, split, arrays, _classes(path, arrays[f"{split}_labels"]))
    if {f"x_{split}", f"y_{split}"} <= keys:
        return _arrays_dataset(arrays, split, _classes(path, arrays[f"y_{split}"]))
    raise DataError(
        f"{path} has neither the JPEG layout ({split}_jpeg, {split}_offsets, {split}_labels) nor the array layout "
        f"(x_{split}, y_{split}); it has {sorted(keys)}"
    )


def embedded_dataset(split: str) -> ArrayDataset:
    """The embedded default: a class-balanced Fashion-MNIST subset, 8000 train / 2000 test, 1x28x28."""
    with resources.as_file(resources.files("adaptconv.data") / "assets" / EMBEDDED_FILE) as path:
        arrays = np.load(path, allow_pickle=False)
        return _arrays_dataset(arrays, split, EMBEDDED_CLASSES)
