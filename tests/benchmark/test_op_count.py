"""benchmarks/op_count.py: the operators of a training step, forward and backward, against the baseline's."""

from __future__ import annotations

import json

from benchmarks import op_count


def test_counts_each_part_and_the_baseline(tmp_path):
    op_count.main(["--models", "rednet26", "--batch-size", "2", "--img-size", "32", "--output", str(tmp_path)])
    (row,) = json.loads((tmp_path / "op_count-cpu.json").read_text())["rows"]
    assert row["model"] == "rednet26" and row["baseline"] == "resnet26"
    for part in ("forward", "backward"):
        assert row[f"{part}_ops"] > 0 and row[f"baseline_{part}_ops"] > 0
        assert row[f"{part}_ratio"] == round(row[f"{part}_ops"] / row[f"baseline_{part}_ops"], 3)
    assert row["step_ratio"] > 1 and len(row["top_operators"]) == 12
    # RedNet-26 runs its involutions (the custom op) where ResNet-26 runs 3x3 convs, forward and backward
    counts = op_count.count_step("rednet26", 2, 32, None)
    assert counts["forward"]["adaptconv.involution_aggregate"] == 9  # 8 blocks and the stem
    assert counts["backward"]["adaptconv.involution_aggregate_backward"] == 9


def test_counting_sees_every_dispatched_operator():
    import torch

    with op_count._Counting() as counting:
        torch.ones(3).add(1).relu()
    assert counting.counts["aten.add"] == 1 and counting.counts["aten.relu"] == 1
