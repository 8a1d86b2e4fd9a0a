"""Training small images from scratch: the ``cifar`` recipe, the linear schedule, data kept on the device."""

from __future__ import annotations

import signal
import subprocess

import pytest
import torch
from clirun import ENV, MODULE, make_tiny_npz, weights
from clirun import run as run_cli

from adaptconv.engine.config import RECIPES, TrainConfig, resolve_config
from adaptconv.engine.setup import build_scheduler


def test_cifar_recipe_holds_the_published_hyper_parameters():
    cfg = resolve_config(TrainConfig(dataset="npz:x.npz", recipe="cifar"))
    expected = dict(arch="resnet18", stem="cifar", epochs=80, batch_size=512, lr=0.2, momentum=0.9, nesterov=True,
                    schedule="linear", warmup_epochs=16.0, warmup_factor=0.0, weight_decay=5e-4, label_smoothing=0.0,
                    amp="bf16", channels_last=True, device_data=True, translate=4, cutout=12)  # fmt: skip
    assert {k: getattr(cfg, k) for k in expected} == expected
    shorter = resolve_config(TrainConfig(dataset="npz:x.npz", recipe="cifar", epochs=30, batch_size=256))
    assert (shorter.warmup_epochs, shorter.lr) == (6.0, 0.1)  # 20% of the epochs; lr scaled with the batch
    given = resolve_config(TrainConfig(dataset="npz:x.npz", recipe="cifar", warmup_epochs=2))
    assert given.warmup_epochs == 2


def test_linear_schedule_is_a_triangle():
    cfg = resolve_config(TrainConfig(dataset="npz:x.npz", recipe="cifar", epochs=10, lr=0.2))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=5)
    lrs = []
    for step in range(51):
        scheduler.step_update(step)
        lrs.append(optimizer.param_groups[0]["lr"])
    peak = 10  # 2 warm-up epochs of 5 steps
    assert lrs[0] == 0 and lrs[peak] == pytest.approx(0.2) and lrs[-1] == pytest.approx(0, abs=1e-12)
    assert lrs[peak // 2] == pytest.approx(0.1) and lrs[30] == pytest.approx(0.1)  # linear up, linear down


def device_args(data, output, *extra):
    """ResNet-18 (small-input stem, quarter width) on 16x16 images kept on the device: 2 epochs of 6 steps."""
    return ["train", "--dataset", f"npz:{data}", "-a", "resnet18", "--stem", "cifar", "--width", "0.25", "-b", "8",
            "--epochs", "2", "--lr", "0.05", "--schedule", "linear", "--warmup-fraction", "0.25", "--device-data",
            "--translate", "2", "--cutout", "4", "-j", "0", "-p", "1", "--output", str(output), *extra]  # fmt: skip


def test_device_data_trains_and_resumes_exactly(tmp_path):
    data = make_tiny_npz(tmp_path)
    whole = run_cli(device_args(data, tmp_path / "a"), cli=MODULE)
    assert "recipe" not in whole.stdout and "top-1" in whole.stdout
    proc = subprocess.Popen(MODULE + device_args(data, tmp_path / "b", "--checkpoint-every-steps", "1"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seen = 0
    for line in proc.stdout:
        if " step " in line and ": loss " in line:
            seen += 1
            if seen == 8:  # inside the second epoch
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run_cli(["train", "--resume", str(tmp_path / "b" / "checkpoint.pth")], cli=MODULE)
    a, b = weights(tmp_path / "a" / "checkpoint.pth"), weights(tmp_path / "b" / "checkpoint.pth")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_recipe_run_prints_its_hyper_parameters(tmp_path):
    data = make_tiny_npz(tmp_path)
    out = run_cli(["train", "--dataset", f"npz:{data}", "--recipe", "cifar", "--width", "0.25", "-b", "8",
                   "--epochs", "1", "--amp", "bf16", "--output", str(tmp_path / "run")], cli=MODULE).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.strip().startswith("recipe cifar:"))
    assert all(f"{k}=" in line for k in RECIPES["cifar"]) and "batch_size=8" in line and "stem='cifar'" in line


def test_validate_rebuilds_the_small_input_stem_of_its_run(tmp_path):
    """A RedNet's stem has the same weights at either stride: only the run's settings can say it was the small one."""
    from adaptconv.engine.loggers import read_summary

    data = make_tiny_npz(tmp_path)
    run = tmp_path / "run"
    run_cli(["train", "--dataset", f"npz:{data}", "-a", "rednet26", "--stem", "cifar", "--width", "0.25", "-b", "8",
             "--epochs", "1", "-j", "0", "--output", str(run)], cli=MODULE)  # fmt: skip
    out = run_cli(["validate", "--checkpoint", str(run / "model_best.pth")], cli=MODULE).stdout
    top1 = read_summary(run / "summary.csv")[-1]["top1"]
    assert f"top-1 {top1:.2f}%" in out, out
