"""The ``imagenette`` recipe: images above 64 px trained from scratch at 128 px, cropped on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clirun import MODULE
from clirun import run as run_cli
from torchvision.transforms import v2 as T

from adaptconv.data import DataSource, build_transform, resolve_data_config
from adaptconv.data.datasets import ArrayDataset
from adaptconv.engine.config import RECIPES, TrainConfig, resolve_config
from adaptconv.engine.distributed import DistContext
from adaptconv.engine.setup import eval_loader, train_loader

MODEL_CFG = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_size=(3, 224, 224), crop_pct=0.875)


def test_imagenette_recipe_holds_its_hyper_parameters_and_lr_stays_a_flag():
    cfg = resolve_config(TrainConfig(dataset="npz:x.npz", recipe="imagenette"))
    expected = dict(arch="resnet50", stem="imagenet", img_size=128, epochs=20, batch_size=256, lr=0.4, momentum=0.9,
                    nesterov=True, schedule="linear", warmup_epochs=4.0, warmup_factor=0.0, weight_decay=5e-4,
                    label_smoothing=0.1, amp="bf16", channels_last=True, device_data=True, crop_scale=(0.35, 1.0),
                    crop_pct=1.0, cutout=0, workers=0)  # fmt: skip
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert resolve_config(TrainConfig(dataset="npz:x.npz", recipe="imagenette", lr=0.8)).lr == 0.8
    assert resolve_config(TrainConfig(dataset="npz:x.npz", recipe="imagenette", batch_size=128)).lr == 0.2


def test_crop_scale_is_checked():
    with pytest.raises(ValueError, match="--crop-scale"):
        resolve_config(TrainConfig(dataset="npz:x.npz", recipe="imagenette", crop_scale=(0.9, 0.5)))
    with pytest.raises(ValueError, match="--crop-scale: must be a finite number > 0"):
        resolve_config(TrainConfig(dataset="npz:x.npz", recipe="imagenette", crop_scale=(0.0, 0.5)))


def source(n: int = 16, side: int = 96) -> DataSource:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)
    split = ArrayDataset(images, torch.arange(n) % 4, tuple("abcd"))
    return DataSource("fabricated", split, split, tuple("abcd"), in_chans=3, image_side=side)


def test_both_loaders_feed_128_px_crops_and_evaluate_the_whole_image():
    src = source()
    cfg = resolve_config(TrainConfig(dataset="npz:x.npz", recipe="imagenette", batch_size=8))
    data_cfg = resolve_data_config(src, MODEL_CFG, cfg.img_size, cfg.crop_pct, cfg.crop_scale)
    assert (data_cfg.family, data_cfg.img_size, data_cfg.crop_pct, data_cfg.crop_scale) == (
        "imagenet", 128, 1.0, (0.35, 1.0))  # fmt: skip
    ctx = DistContext()
    loader, sampler = train_loader(src, data_cfg, cfg, ctx)
    assert loader is sampler and loader.augment.crop_scale == (0.35, 1.0)
    sampler.set_epoch(0)
    x, _, _ = next(iter(loader))
    assert x.shape == (8, 3, 128, 128) and x.is_contiguous(memory_format=torch.channels_last)
    evaluated = torch.cat([b[0] for b in eval_loader(src, data_cfg, cfg, ctx)])
    whole = torch.nn.functional.interpolate(src.val.images.float(), size=(128, 128), mode="bilinear")
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) * 255 for v in (MODEL_CFG["mean"], MODEL_CFG["std"]))
    torch.testing.assert_close(evaluated, (whole - mean) / std)
    # the worker loader's transforms: the same crop parameters, the whole image at evaluation
    crop = next(t for t in build_transform(data_cfg, train=True).transforms if isinstance(t, T.RandomResizedCrop))
    assert (tuple(crop.size), crop.scale, crop.ratio) == ((128, 128), (0.35, 1.0), (3 / 4, 4 / 3))
    worker_eval = torch.stack([build_transform(data_cfg, train=False)(image) for image in src.val.images])
    torch.testing.assert_close(worker_eval, evaluated, rtol=0, atol=0.05)


def test_a_run_of_the_recipe_prints_it(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 72, 72, 3), dtype=np.uint8)
    y = (np.arange(24) % 4).astype(np.uint8)
    np.savez(tmp_path / "rgb.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    out = run_cli(["train", "--dataset", f"npz:{tmp_path / 'rgb.npz'}", "--recipe", "imagenette", "-a", "resnet18",
                   "--width", "0.25", "--img-size", "64", "-b", "8", "--epochs", "1",
                   "--output", str(tmp_path / "run")], cli=MODULE).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.strip().startswith("recipe imagenette:"))
    assert all(f"{k}=" in line for k in RECIPES["imagenette"])
    assert "crop_scale=(0.35, 1.0)" in line and "img_size=64" in line and "arch='resnet18'" in line
