"""Recipes and defaults."""

from __future__ import annotations

import pytest

from adaptconv.engine import RECIPES, TrainConfig, resolve_config


def test_embedded_recipe_without_data():
    cfg = resolve_config(TrainConfig())
    assert cfg.recipe == "embedded" and cfg.arch == RECIPES["embedded"]["arch"]


def test_classic_defaults_with_a_folder():
    cfg = resolve_config(TrainConfig(data="/some/dir"))
    assert cfg.recipe is None
    assert (cfg.arch, cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay) == (
        "resnet18", 90, 256, 0.1, 0.9, 1e-4)  # fmt: skip
    assert (cfg.schedule, cfg.step_epochs) == ("step", 30)


def test_rednet_recipe_scales_lr_linearly():
    cfg = resolve_config(TrainConfig(data="d", recipe="rednet", batch_size=512))
    assert cfg.lr == pytest.approx(0.8 * 512 / 2048)
    assert (cfg.schedule, cfg.nesterov, cfg.epochs, cfg.label_smoothing, cfg.weight_decay) == (
        "cosine", True, 130, 0.1, 1e-4)  # fmt: skip
    assert cfg.warmup_epochs > 0


def test_scnet_recipe_and_explicit_values_win():
    cfg = resolve_config(TrainConfig(data="d", recipe="scnet", lr=0.05, epochs=3))
    assert (cfg.lr, cfg.epochs, cfg.schedule, cfg.step_epochs, cfg.label_smoothing) == (0.05, 3, "step", 30, 0.1)


def test_unknown_recipe():
    with pytest.raises(ValueError, match="unknown --recipe"):
        resolve_config(TrainConfig(recipe="nope"))
