"""benchmarks/accuracy.py: several models and seeds in one call, each record written when its run ends, runs with a
record skipped, --deadline."""

from __future__ import annotations

import json

import pytest
from clirun import make_tiny_npz

from benchmarks import accuracy


def test_one_real_run_is_recorded_and_not_run_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_tiny_npz(tmp_path)
    argv = ["--models", "resnet18", "--seeds", "3", "--role", "anchor", "--name", "t", "--device", "cpu", "--output",
            str(tmp_path / "out"), "--", "--dataset", f"npz:{data}", "--width", "0.25", "-b", "8", "--epochs", "1",
            "-j", "0"]  # fmt: skip
    accuracy.main(argv)
    rec = json.loads((tmp_path / "out" / "accuracy-resnet18-seed3-t-cpu.json").read_text())
    assert (rec["role"], rec["model"], rec["seed"], rec["settings"]["epochs"]) == ("anchor", "resnet18", 3, 1)
    assert rec["options"]["seeds"] == [3] and rec["final_top1"] == rec["rows"][-1]["top1"]
    assert rec["train_command"].endswith("-a resnet18 --seed 3 --output output/accuracy/resnet18-seed3-t")
    monkeypatch.setattr(accuracy, "train", lambda *a: pytest.fail("a recorded run ran again"))
    accuracy.main(argv)


def fake_train(calls, seconds):
    def train(args, model, seed, train_args):
        calls.append((model, seed))
        return dict(role=args.role, model=model, seed=seed, final_top1=50.0, wall_seconds=seconds[model], rows=[])

    return train


def test_seeds_outside_models_inside_and_every_record_at_once(tmp_path, monkeypatch):
    calls = []
    out = tmp_path / "out"

    def train(args, model, seed, train_args):  # the records of the runs before this one are written already
        assert len(list(out.glob("*.json"))) == 1 + len(calls)  # and the one done earlier
        return fake_train(calls, dict(a=1, b=1))(args, model, seed, train_args)

    monkeypatch.setattr(accuracy, "train", train)
    out.mkdir()
    (out / "accuracy-b-seed0-x-cpu.json").write_text("{}")  # done in an earlier call
    accuracy.main(["--models", "a", "b", "--seeds", "0", "1", "--name", "x", "--device", "cpu", "--output", str(out)])
    assert calls == [("a", 0), ("a", 1), ("b", 1)]


def test_deadline_starts_no_run_expected_to_end_after_it(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(accuracy, "train", fake_train(calls, dict(slow=1e6, fast=0.0, known=0.0)))
    (tmp_path / "accuracy-known-seed7-x-cpu.json").write_text(json.dumps(dict(wall_seconds=1e6)))  # an earlier run
    accuracy.main(["--models", "fast", "known", "slow", "--seeds", "0", "1", "--deadline", "100", "--name", "x",
                   "--device", "cpu", "--output", str(tmp_path)])  # fmt: skip
    # 'known' took too long before; 'slow' was not known and the longest run so far fitted; then it had taken long
    assert calls == [("fast", 0), ("slow", 0), ("fast", 1)]
