"""benchmarks/multi_gpu.py: the equivalence rule, the checkpoint comparison, and a short call on the CPU."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import multi_gpu


def epochs(*values: tuple[float, float, float]) -> list[dict]:
    return [dict(epoch=i + 1, train_loss=t, val_loss=v, top1=a) for i, (t, v, a) in enumerate(values)]


def test_a_run_within_three_times_the_seed_spread_or_the_floor_is_equivalent():
    reference = epochs((2.0, 1.9, 30.0), (1.5, 1.4, 50.0))
    noise = epochs((2.1, 1.9, 32.0), (1.5, 1.41, 50.1))  # spreads: 0.1, 0, 2 / 0, 0.01, 0.1
    close = epochs((1.75, 1.91, 35.9), (1.49, 1.43, 49.6))
    rows = multi_gpu.compare(reference, close, noise)
    assert [r["tolerance"] for r in rows] == pytest.approx([0.3, 0.02, 6.0, 0.02, 0.03, 0.5])
    assert all(r["ok"] for r in rows)
    far = epochs((2.0, 1.9, 36.1), (1.5, 1.4, 50.0))
    assert [r["ok"] for r in multi_gpu.compare(reference, far, noise)] == [True, True, False, True, True, True]
    assert len(multi_gpu.compare(reference, far[:1], noise)) == 3  # an unfinished run: its epochs only


def test_checkpoint_differences(tmp_path):
    def save(path, w, momentum, count):
        state = {"state_dict": {"w": w, "n": torch.tensor(count)},
                 "optimizer": {"state": {0: {"momentum_buffer": momentum}}}}  # fmt: skip
        torch.save(state, path)
        return path

    a = save(tmp_path / "a.pth", torch.ones(4), torch.zeros(2) + 1, 3)
    same = multi_gpu.summarise_differences(multi_gpu.checkpoint_differences(a, a))
    assert same["identical"] and same["max_relative"] == 0
    b = save(tmp_path / "b.pth", torch.tensor([1.0, 1, 1, 1.02]), torch.zeros(2) + 1, 3)
    diff = multi_gpu.summarise_differences(multi_gpu.checkpoint_differences(a, b))
    assert not diff["identical"] and diff["worst"] == "model.w" and diff["max_relative"] == pytest.approx(0.01)
    c = save(tmp_path / "c.pth", torch.ones(4), torch.zeros(2) + 1, 4)
    assert multi_gpu.checkpoint_differences(a, c)["model.n"] == 1.0


def test_reference_torchrun_and_resume_on_the_cpu(tiny, tmp_path):
    """2 one-process runs and a 2-process torchrun of the tiny set, then the torchrun killed at rank 1 and resumed: one
    record with the per-epoch comparison and the resumed run's bit-identity."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = ["--device", "cpu", "--models", "rednet26", "--dataset", f"npz:{tiny}", "--epochs", "1", "--parts",
            "reference", "torchrun", "resume", "--checkpoint-every-steps", "1", "--output", str(out), "--run-dir",
            str(runs), "--", "--width", "0.25", "-b", "8", "-j", "0", "-p", "1", "--lr", "0.01"]  # fmt: skip
    path = multi_gpu.main(argv)
    data = json.loads(path.read_text())
    assert path == out / "multi_gpu-cpu.json" and (out / "multi_gpu-cpu-log.txt").stat().st_size > 0
    assert set(data["runs"]) == {"rednet26-one", "rednet26-one-seed+1", "rednet26-torchrun", "rednet26-torchrun-killed",
                                 "rednet26-torchrun-killed-resumed"}  # fmt: skip
    assert data["runs"].pop("rednet26-torchrun-killed")["returncode"] != 0
    resume = data["resume"]
    assert resume["killed_at"] == {"epoch": 1, "step": 3} and resume["resumed_from_step"] >= 2
    assert resume["killed_vs_uninterrupted"]["identical"] and resume["killed_epochs_equal"]
    assert all(r["returncode"] == 0 for r in data["runs"].values())
    assert "--nproc_per_node=2" in data["runs"]["rednet26-torchrun"]["command"]
    assert [(r["run"], r["metric"]) for r in data["rows"]] == [("torchrun", m) for m in multi_gpu.METRICS]
    assert data["equivalent"] == all(r["ok"] for r in data["rows"])
    assert data["train_img_per_s"]["rednet26-torchrun"] > 0
    assert data["tolerance"] == {"factor": multi_gpu.FACTOR, "floors": multi_gpu.FLOORS}
