"""Recipes and defaults."""

from __future__ import annotations

import os
import re

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


def test_loader_workers_default_to_the_cores_this_process_may_use(monkeypatch):
    """Four workers on a 2-core machine made PyTorch warn of excessive worker creation on every run."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert resolve_config(TrainConfig(data="d")).workers == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert resolve_config(TrainConfig(data="d")).workers == 4
    assert resolve_config(TrainConfig(data="d", workers=7)).workers == 7


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("lr", float("nan"), "--lr: must be a finite number > 0"), ("lr", 1e39, "<= 3.40282e+38"),
     ("batch_size", 0, "-b/--batch-size: must be an integer >= 1"), ("workers", -1, "-j/--workers"),
     ("momentum", 1.0, "--momentum: must be a finite number >= 0 and < 1")],
)  # fmt: skip
def test_numbers_are_checked_for_callers_from_python(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_config(TrainConfig(data="d", **{field: value}))
