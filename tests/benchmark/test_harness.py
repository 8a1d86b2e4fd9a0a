import json

import pytest
import torch

from adaptconv.benchmark import (
    Setting,
    baseline_for,
    environment,
    harness,
    markdown,
    measure,
    median_ms,
    plot_ratios,
    run,
    settings,
    write_json,
)
from adaptconv.cli.main import main


@pytest.mark.parametrize(
    "model, baseline",
    [("rednet26", "resnet26"), ("rednet38", "resnet50"), ("rednet101", "resnet101"), ("scnet50", "resnet50"),
     ("scnet50_v1d", "resnet50d"), ("scnet101_v1d", "resnet101d")],
)  # fmt: skip
def test_baseline_is_the_resnet_of_the_same_depth(model, baseline):
    assert baseline_for(model) == baseline


def test_fused_variant(monkeypatch):
    from adaptconv.ops import Involution2d

    involutions = [m for m in harness.create("rednet26+fused").modules() if isinstance(m, Involution2d)]
    assert involutions and all(m.fused for m in involutions)
    assert baseline_for("rednet50+fused") == "resnet50"
    r = measure(Setting("rednet26+fused", "train", 2, "fp32", "nchw", "eager", 32), "cpu", repeats=1, warmup=1)
    assert r["error"] is None
    with pytest.raises(ValueError, match=r"unknown variant '\+fast' of rednet26; choose from fused"):
        settings(["rednet26+fast"], ["inference"], {"inference": [1]}, ["fp32"], ["nchw"], ["eager"], 32)
    with pytest.raises(ValueError, match="'\\+fused' is for the rednet models, not scnet50"):
        settings(["scnet50+fused"], ["inference"], {"inference": [1]}, ["fp32"], ["nchw"], ["eager"], 32)


def test_unfused_scnet_variant():
    from adaptconv.ops import SelfCalibration

    convs = [m for m in harness.create("scnet50+unfused").modules() if isinstance(m, SelfCalibration)]
    assert convs and not any(m.fused for m in convs)
    assert not any(m.fused for m in harness.create("scnet50").modules() if isinstance(m, SelfCalibration))
    assert all(m.fused for m in harness.create("scnet50+fused_gate").modules() if isinstance(m, SelfCalibration))
    with pytest.raises(ValueError, match="'\\+unfused' is for the scnet models, not rednet26"):
        settings(["rednet26+unfused"], ["inference"], {"inference": [1]}, ["fp32"], ["nchw"], ["eager"], 32)


def test_median_ms_runs_warmup_then_times_each_repeat_after_before():
    calls = []
    ms = median_ms(lambda: calls.append("step"), "cpu", repeats=4, warmup=2, before=lambda: calls.append("next"))
    assert calls == ["step"] * 2 + ["next", "step"] * 4
    assert ms >= 0
    with pytest.raises(ValueError, match="repeats"):
        median_ms(lambda: None, "cpu", repeats=0)


def test_settings_cross_product_and_clear_errors():
    out = settings(["rednet26", "resnet18"], ["inference", "train"], {"inference": [1, 2], "train": [4]},
                   ["fp32", "bf16"], ["nchw"], ["eager"], 32)  # fmt: skip
    assert len(out) == 2 * (2 + 1) * 2
    assert Setting("rednet26", "train", 4, "bf16", "nchw", "eager", 32) in out
    with pytest.raises(ValueError, match="unknown model 'rednet27'"):
        settings(["rednet27"], ["inference"], {"inference": [1]}, ["fp32"], ["nchw"], ["eager"], 32)
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        settings(["rednet26"], ["inference"], {"inference": [1]}, ["fp8"], ["nchw"], ["eager"], 32)


@pytest.mark.parametrize("task, dtype, layout", [("inference", "fp32", "nchw"), ("train", "bf16", "channels_last")])
def test_measure_times_a_real_step(task, dtype, layout):
    s = Setting("rednet26", task, 2, dtype, layout, "eager", 32)
    r = measure(s, "cpu", repeats=2, warmup=1, input_sets=2)
    assert r["error"] is None
    assert r["ms"] > 0 and r["img_s"] == pytest.approx(2 / r["ms"] * 1e3)
    assert r["peak_mib"] is None  # not measured on a CPU


def test_measure_records_a_failure_instead_of_raising():
    # batch norm cannot train on one value per channel: resnet18 at 32 px and batch 1 ends at 1x1
    r = measure(Setting("resnet18", "train", 1, "fp32", "nchw", "eager", 32), "cpu", repeats=1, warmup=0)
    assert r["ms"] is None and "Expected more than 1 value per channel" in r["error"]


def test_run_measures_each_baseline_once_and_divides(monkeypatch):
    speed = {"rednet50": 50.0, "scnet50": 25.0, "resnet50": 100.0}
    seen = []

    def fake_measure(s, device, repeats, warmup, input_sets):
        seen.append(s.model)
        return dict(ms=1e3 / speed[s.model], img_s=speed[s.model], peak_mib=speed[s.model] * 2, error=None)

    monkeypatch.setattr(harness, "measure", fake_measure)
    todo = [Setting("rednet50"), Setting("scnet50")]
    rows = run(todo, "cpu", progress=lambda _: None)
    assert seen == ["resnet50", "rednet50", "scnet50"]
    assert [r["speed_ratio"] for r in rows] == [0.5, 0.25]
    assert [r["memory_ratio"] for r in rows] == [0.5, 0.25]
    assert all(r["baseline"] == "resnet50" and r["baseline_img_s"] == 100.0 for r in rows)
    table = markdown(rows, {"date": "d", "device": "cpu", "cpu_cores": 2, "torch_threads": 2, "torch": "x"})
    assert "| rednet50 | inference | 1 | fp32 | nchw | eager | 50.0 |" in table and "0.25" in table


def test_results_files(tmp_path):
    rows = run([Setting("rednet26", img_size=32)], "cpu", repeats=2, warmup=1, progress=lambda _: None)
    path = write_json(tmp_path / "r.json", {"device": "cpu"}, {"repeats": 2}, rows)
    assert json.loads(path.read_text())["rows"][0]["baseline"] == "resnet26"
    pytest.importorskip("matplotlib")
    assert plot_ratios(rows, tmp_path / "r.png").stat().st_size > 0


def test_cli_writes_json_markdown_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = ["benchmark", "rednet26", "--img-size", "32", "--repeats", "2", "--warmup", "1", "--device", "cpu",
            "--output", str(tmp_path), "--plot"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads((tmp_path / "models-cpu.json").read_text())
    assert data["environment"]["torch"] == torch.__version__ and data["options"]["repeats"] == 2
    assert [r["model"] for r in data["rows"]] == ["rednet26"] and data["rows"][0]["speed_ratio"] > 0
    assert (tmp_path / "models-cpu.md").read_text() in capsys.readouterr().out
    assert (tmp_path / "models-cpu.png").exists()


def test_cli_bad_arguments(tmp_path, capsys):
    assert main(["benchmark", "rednet27", "--device", "cpu", "--output", str(tmp_path)]) == 2
    assert "unknown model 'rednet27'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse's way: a bad value is refused as it is parsed
        main(["benchmark", "rednet26", "--repeats", "0", "--device", "cpu", "--output", str(tmp_path)])
    assert stop.value.code == 2 and "--repeats: must be an integer >= 1, got 0" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_train_step_with_peak_memory():
    r = measure(Setting("rednet26", "train", 8, "bf16", "channels_last", "eager", 64), "cuda", repeats=3, warmup=2)
    assert r["error"] is None and r["peak_mib"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_train_step_under_cuda_graphs():
    # torch.compile's reduce-overhead mode records the step, custom op and Triton kernels included, as CUDA graphs.
    s = Setting("rednet26", "train", 8, "bf16", "channels_last", "reduce-overhead", 64)
    r = measure(s, "cuda", repeats=3, warmup=3)
    assert r["error"] is None and r["ms"] > 0


def test_prepare_leaves_eager_models_alone():
    model = torch.nn.Linear(2, 2)
    assert harness.prepare(model, "eager") is model
    assert harness.prepare(model, "reduce-overhead") is not model


def test_folded_setting_folds_the_model_and_its_baseline(monkeypatch):
    folded = []
    real = harness.fuse_for_inference
    monkeypatch.setattr(harness, "fuse_for_inference", lambda m: folded.append(type(m).__name__) or real(m))
    todo = settings(["scnet50"], ["inference"], {"inference": [1]}, ["fp32"], ["nchw"], ["eager"], 32, [False, True])
    assert [s.fold for s in todo] == [False, True]
    rows = run(todo, "cpu", repeats=1, warmup=0, progress=lambda _: None)
    assert folded == ["ResNet", "SCNet"] and not any(r["error"] or r["baseline_error"] for r in rows)
    assert "eager folded" in markdown(rows, environment("cpu"))
    with pytest.raises(ValueError, match="for inference"):
        settings(["scnet50"], ["train"], {"train": [2]}, ["fp32"], ["nchw"], ["eager"], 32, [True])
