"""benchmarks/ncu_kernels.py: its summary of Nsight Compute's details page (the profiling itself needs a GPU)."""

import csv
import json

from benchmarks import ncu_kernels


def test_summary_has_one_row_per_launch_with_numbers(tmp_path):
    fields = ["ID", "Kernel Name", "Section Name", "Metric Name", "Metric Unit", "Metric Value"]
    lines = []
    for launch in range(8):  # two cases of four launches
        kernel = "forward_kernel" if launch % 2 == 0 else "backward_kernel"
        lines += [
            [str(launch), kernel, "GPU Speed Of Light Throughput", "Duration", "us", f"{100 + launch}.5"],
            [str(launch), kernel, "Launch Statistics", "Grid Size", "", "12,544"],
            [str(launch), kernel, "Launch Statistics", "Shared Memory Configuration Size", "Kbyte", "32.77"],
        ]
    details = tmp_path / "details.csv"
    with details.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        writer.writerows(lines[::-1])  # any order: rows are sorted by launch
    ncu_kernels.main(["--summarise", str(details), "--output", str(tmp_path)])
    (written,) = tmp_path.glob("ncu_kernels-*.json")
    data = json.loads(written.read_text())
    assert data["source"] == "details.csv" and data["options"]["summarise"] == str(details)
    rows = data["rows"]
    assert [r["Duration [us]"] for r in rows] == [100.5 + i for i in range(8)]
    assert all(r["Grid Size"] == 12544 for r in rows)
    assert all("Shared Memory Configuration Size [Kbyte]" not in r for r in rows)  # only the listed metrics
    assert [r["case"] for r in rows] == ["/".join(map(str, ncu_kernels.CASES["triton"][i // 4])) for i in range(8)]
    assert rows[1]["kernel"] == "backward_kernel"
