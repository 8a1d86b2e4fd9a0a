"""Choosing the data: an ImageNet-style folder, a ``.npz`` file, or the embedded default; and how to feed it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from .datasets import ArrayDataset, BadImageError, DataError, ImageFolderDataset, embedded_dataset, open_npz
from .transforms import CROP_SCALE, DataConfig

__all__ = ["DataSource", "open_source", "resolve_data_config"]

#: images at most this large (the shorter side) are fed at their own size with the ``small`` transforms
SMALL_IMAGE_SIDE = 64


@dataclass
class DataSource:
    """A training and a validation split, with what a model needs to know about them."""

    name: str
    train: Dataset
    val: Dataset
    classes: tuple[str, ...]
    in_chans: int
    image_side: int  # the shorter side of the first training image

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _first_image_shape(ds: Dataset, name: str) -> tuple[int, ...]:
    """The shape of the first image that decodes (bad ones are reported when training reaches them)."""
    if len(ds) == 0:
        raise DataError(f"{name} holds no images")
    for i in range(min(len(ds), 100)):
        try:
            return tuple(ds[i][0].shape)
        except BadImageError:
            continue
    raise DataError(f"none of the first {min(len(ds), 100)} images of {name} can be decoded")


def open_source(directory: str | None = None, dataset: str | None = None) -> DataSource:
    """``directory`` (``DIR/train/<class>/*``, ``DIR/val/<class>/*``), ``dataset='npz:PATH'``, or neither: the
    embedded Fashion-MNIST subset (``dataset='embedded'`` says so explicitly)."""
    if directory is not None and dataset not in (None, "folder"):
        raise DataError(f"give either a data folder ({directory}) or --dataset {dataset}, not both")
    if directory is not None:
        root = Path(directory)
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist")
        missing = [s for s in ("train", "val") if not (root / s).is_dir()]
        if missing:
            raise DataError(f"{root} must hold train/ and val/ folders with one sub-folder per class; "
                            f"missing: {', '.join(missing)}")  # fmt: skip
        train, val = ImageFolderDataset(root / "train"), ImageFolderDataset(root / "val")
        if train.classes != val.classes:
            raise DataError(f"{root}: train/ and val/ must have the same class folders")
        name, classes = str(root), train.classes
    elif dataset is None or dataset == "embedded":
        train, val = embedded_dataset("train"), embedded_dataset("test")
        name, classes = "embedded Fashion-MNIST subset", train.classes
    elif dataset.startswith("npz:"):
        path = Path(dataset[4:])
        train, val = open_npz(path, "train"), open_npz(path, "test")
        name, classes = str(path), train.classes if len(train.classes) >= len(val.classes) else val.classes
    else:
        raise DataError(f"unknown --dataset {dataset!r}: use 'npz:PATH' or 'embedded', or give a data folder")
    shape = _first_image_shape(train, f"the training split of {name}")
    _first_image_shape(val, f"the validation split of {name}")
    return DataSource(name, train, val, tuple(classes), in_chans=shape[0], image_side=min(shape[1:]))


def _channel_stats(ds: ArrayDataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = ds.images.float().div_(255).transpose(0, 1).flatten(1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


def resolve_data_config(
    source: DataSource,
    model_cfg: dict,
    img_size: int | None = None,
    crop_pct: float | None = None,
    crop_scale: tuple[float, float] | None = None,
) -> DataConfig:
    """Small images (<= 64 px) at their own size with their own channel statistics (when held in memory); other
    data with the ImageNet transforms of the model's pretrained configuration, where ``crop_pct`` (evaluation's
    centre crop) and ``crop_scale`` (training's random-resized crop), when given, replace its own."""
    if source.image_side <= SMALL_IMAGE_SIDE:
        mean, std = model_cfg["mean"], model_cfg["std"]
        if isinstance(source.train, ArrayDataset):
            mean, std = _channel_stats(source.train)
        elif len(mean) != source.in_chans:
            mean, std = (0.5,) * source.in_chans, (0.5,) * source.in_chans
        return DataConfig(img_size or source.image_side, mean, std, family="small")
    if len(model_cfg["mean"]) != source.in_chans:
        raise DataError(f"{source.name} has {source.in_chans}-channel images; the model expects "
                        f"{len(model_cfg['mean'])}")  # fmt: skip
    return DataConfig(
        img_size or model_cfg["input_size"][-1],
        tuple(model_cfg["mean"]),
        tuple(model_cfg["std"]),
        crop_pct=crop_pct or model_cfg.get("crop_pct", 0.875),
        interpolation=model_cfg.get("interpolation", "bilinear"),
        crop_scale=tuple(crop_scale or CROP_SCALE),
    )
