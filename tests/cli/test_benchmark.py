"""``adaptconv benchmark`` writes a user's results to a user's folder, and replaces a file only when told to."""

from __future__ import annotations

import json

from clirun import run

QUICK = ["benchmark", "rednet26", "--device", "cpu", "--img-size", "32", "--repeats", "1", "--warmup", "0",
         "--input-sets", "1"]  # fmt: skip


def test_a_run_from_the_repository_root_leaves_its_results_alone(tmp_path):
    committed = tmp_path / "benchmarks" / "results" / "models-cpu.json"
    committed.parent.mkdir(parents=True)
    committed.write_text('{"committed": true}')
    first = run(QUICK, cwd=tmp_path)
    assert committed.read_text() == '{"committed": true}'
    mine = tmp_path / "output" / "benchmark" / "models-cpu.json"
    assert json.loads(mine.read_text())["rows"][0]["model"] == "rednet26"
    assert "wrote output/benchmark/models-cpu.json" in first.stdout
    before = mine.read_bytes()
    again = run(QUICK, check=False, cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    assert mine.read_bytes() == before
    run([*QUICK, "--overwrite"], cwd=tmp_path)
    assert mine.read_bytes() != before
    refused = run([*QUICK, "--output", str(committed.parent)], check=False, cwd=tmp_path)
    assert refused.returncode == 2 and committed.read_text() == '{"committed": true}'
