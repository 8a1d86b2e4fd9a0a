"""Data: the embedded default set, ``.npz`` files and image folders; transforms; resumable sampling; data kept and
augmented on the training device."""

from .datasets import BadImageError, DataError, embedded_dataset, open_npz
from .device_loading import DeviceAugment, DeviceLoader
from .loading import (
    AugmentedDataset,
    EpochSampler,
    ShardSampler,
    SkippedImage,
    collate_skipping,
    ignore_stop_signals,
)
from .sources import DataSource, open_source, resolve_data_config
from .transforms import DataConfig, build_transform

__all__ = [
    "AugmentedDataset",
    "BadImageError",
    "DataConfig",
    "DataError",
    "DataSource",
    "DeviceAugment",
    "DeviceLoader",
    "EpochSampler",
    "ShardSampler",
    "SkippedImage",
    "build_transform",
    "collate_skipping",
    "embedded_dataset",
    "ignore_stop_signals",
    "open_npz",
    "open_source",
    "resolve_data_config",
]
