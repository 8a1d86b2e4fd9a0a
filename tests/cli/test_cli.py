"""The command line: list and info."""

from __future__ import annotations

import subprocess
import sys

from adaptconv.cli.main import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ["scnet50", "scnet101_v1d", "rednet152"])
    assert "77.81" in out and "none released" in out
    assert main(["list", "rednet*"]) == 0
    assert "scnet" not in capsys.readouterr().out


def test_info_counts_at_the_requested_size(capsys):
    assert main(["info", "rednet26", "scnet50", "--input-size", "224", "224"]) == 0
    out = capsys.readouterr().out
    assert "1.685G" in out and "3.925G" in out and "9.23M" in out and "25.56M" in out
    assert main(["info", "rednet26", "--input-size", "112", "112"]) == 0
    assert "0.436G" in capsys.readouterr().out  # a quarter of the pixels, plus the same classifier


def test_bad_arguments(capsys):
    assert main(["info", "resnet9000"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["info", "rednet26", "--input-size", "16", "16"]) == 2


def test_console_entry_point():
    res = subprocess.run([sys.executable, "-m", "adaptconv.cli.main", "list"], capture_output=True, text=True)
    assert res.returncode == 0 and "rednet50" in res.stdout


def test_export_bad_arguments(capsys, tmp_path):
    for argv, message in [
        (["export", "resnet9000"], "unknown model 'resnet9000'"),
        (["export", "rednet26", "--input-size", "16", "40"], "at least 32x32"),
        (["export", "rednet26", "--opset", "13"], "opset must be an integer >= 17"),
        (["export", "scnet101_v1d", "--pretrained", "official"], "no pretrained weights"),
        (["export", "rednet26", "--pretrained", str(tmp_path / "missing.pth")], "missing.pth"),
    ]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not list(tmp_path.iterdir())


def test_export_program_round_trip(capsys, tmp_path):
    import torch

    import adaptconv

    path = tmp_path / "out" / "rednet26.pt2"
    assert main(["export", "rednet26", "--format", "exported", "--input-size", "64", "64", "-o", str(path)]) == 0
    assert f"wrote {path} (dynamic: batch 1.., height 2.., width 2..)" in capsys.readouterr().out
    program = torch.export.load(path)  # needs the custom op registered: adaptconv is imported
    x = torch.randn(3, 3, 40, 72)
    reference = adaptconv.create_model("rednet26").eval()
    reference.load_state_dict(program.state_dict)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), reference(x))


def test_model_kwargs_reach_the_model_and_a_wrong_one_is_one_clear_line(capsys, tmp_path):
    from adaptconv.cli.main import build_parser
    from adaptconv.cli.train import to_config
    from adaptconv.engine.config import resolve_config
    from adaptconv.engine.setup import build_model

    argv = ["train", "-a", "rednet26", "--width", "0.25", "--model-kwargs", "fused_involution=True",
            "recompute_stem=True", "drop_path_rate=0.1"]  # fmt: skip
    cfg = resolve_config(to_config(build_parser().parse_args(argv)))
    assert cfg.model_kwargs == {"fused_involution": True, "recompute_stem": True, "drop_path_rate": 0.1}
    model = build_model(cfg, 10, 1)
    assert model.conv1.recompute and model.layer1[0].conv2.fused
    assert main(["train", "-a", "rednet26", "--model-kwargs", "fusd=1", "--epochs", "1", "--output",
                 str(tmp_path / "run")]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaptconv train: error: --model-kwargs: rednet26 takes no argument 'fusd' (")
    assert "\n" not in err and "Traceback" not in err


def test_plot_of_a_folder_without_a_run_is_one_clear_line(capsys, tmp_path):
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaptconv plot: error: ") and "summary.csv not found" in err and "\n" not in err
    (tmp_path / "summary.csv").write_text("epoch,lr\n")
    assert main(["plot", str(tmp_path)]) == 1
    assert "has no finished epoch yet" in capsys.readouterr().err
