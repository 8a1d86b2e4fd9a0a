"""benchmarks/first_call.py: a cold and a warm process a model, each step's first and steady time, on a CPU."""

from __future__ import annotations

import json

from benchmarks import first_call


def test_cold_and_warm_runs_of_each_step(tmp_path):
    first_call.main(["--models", "rednet26", "--batch-size", "5", "--img-size", "32", "--repeats", "1", "--device",
                     "cpu", "--output", str(tmp_path)])  # fmt: skip
    data = json.loads((tmp_path / "first_call-cpu.json").read_text())
    rows = data["rows"]
    assert [(r["cache"], r["step"], r["batch"]) for r in rows] == [
        (cache, step, batch) for cache in ("cold", "warm")
        for step, batch in [("train", 5), ("train, partial batch", 2), ("inference", 10),
                            ("inference, partial batch", 5)]
    ]  # fmt: skip
    for r in rows:
        assert r["first_s"] > 0 and r["steady_s"] > 0
        assert abs(r["first_call_s"] - (r["first_s"] - r["steady_s"])) < 1e-9
    assert set(data["first_call_totals_s"]) == {"rednet26/cold", "rednet26/warm"}
