"""benchmarks/accuracy_report.py: docs/accuracy.md is what the records say; runs grouped and summarised right."""

from __future__ import annotations

import json

from benchmarks import accuracy_report as report


def test_docs_accuracy_md_is_generated_from_the_records():
    runs = report.load_runs(report.RESULTS)
    assert report.DOC.read_text() == report.render(runs), "run: python -m benchmarks.accuracy_report"
    assert report.PLOT.is_file() and f"]({report.PLOT.name})" in report.DOC.read_text()


def test_the_first_records_are_classified_without_a_role_field():
    roles = {r.file: (r.role, r.change) for r in report.load_runs(report.RESULTS) if r.epochs in (40, 80)}
    assert roles["accuracy-resnet18-seed0-anchor-cuda.json"] == ("anchor", "")
    assert roles["accuracy-resnet18-seed0-workers-40ep-cuda.json"] == ("diagnosis", "--no-device-data -j 14")
    assert roles["accuracy-resnet18-seed1-device-nocutout-40ep-cuda.json"] == ("diagnosis", "--cutout 0")


def fabricate(folder, model, seed, top1, role=None, extra=(), epochs=30, data="cifar10_jpeg_q75", kwargs=None):
    """A record with what the report reads, as benchmarks/accuracy.py writes it."""
    train_args = ["--", "--dataset", f"npz:.carry/x/{data}.npz", "--recipe", "cifar", "--epochs", str(epochs), *extra]
    settings = dict(arch=model, stem="cifar", width=1.0, epochs=epochs, recipe="cifar", img_size=None,
                    num_classes=None, model_kwargs=kwargs)  # fmt: skip
    rec = dict(device="GPU", options=dict(train_args=train_args), model=model, seed=seed, settings=settings,
               final_top1=top1, final_top5=99.0, train_img_per_s=1000.0 * (seed + 1), gpu_minutes=2.0,
               rows=[dict(epoch=e + 1, top1=top1 * (e + 1) / epochs) for e in range(epochs)])  # fmt: skip
    if role:
        rec["role"] = role
    name = f"accuracy-{model}-seed{seed}-{len(list(folder.iterdir()))}-cuda.json"
    (folder / name).write_text(json.dumps(rec))


def test_runs_are_grouped_by_study_role_model_and_flags_with_mean_and_std(tmp_path):
    for seed, (a, b) in enumerate([(90.0, 91.5), (91.0, 92.5), (92.0, 93.5)]):
        fabricate(tmp_path, "resnet26", seed, a, "comparison")
        fabricate(tmp_path, "rednet26", seed, b, "comparison")
    fabricate(tmp_path, "resnet26", 0, 80.0, "comparison", epochs=10)  # another study
    fabricate(tmp_path, "rednet26", 0, 91.0, "ablation", extra=["--model-kwargs", "kernel_size=3"],
              kwargs=dict(kernel_size=3))  # fmt: skip
    fabricate(tmp_path, "resnet18", 0, 85.0)  # no role, no flag: the anchor
    fabricate(tmp_path, "resnet18", 0, 84.0, extra=["--cutout", "0"])  # no role, a flag: a diagnosis
    runs = report.load_runs(tmp_path)
    groups = report.groups(runs)
    study = ("cifar10_jpeg_q75", "cifar", 30)
    assert [r.seed for r in groups[("comparison", study, "rednet26", "")]] == [0, 1, 2]
    assert len(groups[("comparison", ("cifar10_jpeg_q75", "cifar", 10), "resnet26", "")]) == 1
    assert ("anchor", study, "resnet18", "") in groups and ("diagnosis", study, "resnet18", "--cutout 0") in groups
    assert report.mean_std([90.0, 91.0, 92.0]) == "91.00 ± 1.00" and report.mean_std([91.0]) == "91.00"

    doc = report.render(runs)
    lines = doc.splitlines()
    rednet = next(x for x in lines if x.startswith("| rednet26 | recipe | 0, 1, 2 |"))
    assert "| 92.50 ± 1.00 | 99.00 ± 0.00 | +1.50 |" in rednet and "| 2,000 | 2.00 |" in rednet
    assert any(x.startswith("| rednet26 | --model-kwargs kernel_size=3 | 0 | 91.00 |") for x in lines)
    assert any(x.startswith("| rednet26 | recipe (the comparison's seed 0) | 0 | 91.50 |") for x in lines)
    assert "resnet50 on `cifar10_jpeg_q75`, `--recipe cifar`, 30 epochs: seeds 0, 1, 2" in doc  # planned, missing
    assert "rednet26 on `cifar10_jpeg_q75`" not in doc.split("## Planned runs")[1]  # all three seeds are there
    kernel_3 = "rednet26 `--model-kwargs kernel_size=3`"
    assert kernel_3 not in doc and "rednet26 `--model-kwargs kernel_size=5`" in doc

    report.main(["--results", str(tmp_path), "--doc", str(tmp_path / "d" / "a.md"), "--plot", str(tmp_path / "c.png")])
    assert (tmp_path / "d" / "a.md").read_text() == report.render(runs, "c.png")
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_a_claim_holds_only_beyond_two_standard_errors():
    assert report.verdict([90.0], [89.0]).endswith("not decided yet")
    assert report.verdict([90.0, 90.2, 89.8], [89.0, 89.2, 88.8]).startswith("holds at this scale: +1.00 ± 0.16")
    assert report.verdict([89.0, 89.2, 88.8], [90.0, 90.2, 89.8]).startswith("does not hold")
    assert report.verdict([90.0, 91.0, 89.0], [89.9, 90.9, 88.9]).startswith("no difference beyond the seed spread")


def test_claims_compare_each_model_with_its_resnet_on_the_recipe(tmp_path):
    for seed, (ours, base) in enumerate([(90.0, 89.0), (90.2, 89.2), (89.8, 88.8)]):
        fabricate(tmp_path, "rednet26", seed, ours, role="comparison")
        fabricate(tmp_path, "resnet26", seed, base, role="comparison")
    fabricate(tmp_path, "rednet26", 0, 50.0, role="comparison", extra=["--lr", "9"])  # another recipe: not counted
    (line,) = report.claims(report.load_runs(tmp_path))
    assert "RedNet-26" in line and "holds at this scale: +1.00" in line and "MACs 0.67x" in line
