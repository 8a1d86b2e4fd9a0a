"""``adaptconv visualize``: no arguments at all draws the default pictures; bad input gives one clear line."""

from __future__ import annotations

import pytest

from adaptconv.cli.main import main

pytest.importorskip("pytorch_grad_cam")
pytest.importorskip("matplotlib")


def test_no_arguments(tmp_path, monkeypatch, capsys):
    """No image, model, kind, block or weights: the defaults (at 64 px instead of 224, to be quick)."""
    monkeypatch.chdir(tmp_path)
    assert main(["visualize", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "random weights" in out and "top-5 classes" in out
    files = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert files == ["chelsea_scnet50_calibration_layer2.3.png", "chelsea_scnet50_gradcam.png"]


def test_rednet_all_kinds_at_chosen_pixels(tmp_path, capsys):
    argv = ["visualize", "--model", "rednet26", "--image-size", "64", "--block", "layer1.0", "--pixels", "5,5",
            "60,40", "--kind", "all", "--kernel-map", "centre", "-o", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "chelsea_rednet26_gradcam.png",
        "chelsea_rednet26_involution_layer1.0_centre_maps.png",
        "chelsea_rednet26_involution_layer1.0_kernels.png",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jpg"], "image not found: missing.jpg"),
        (["notes.txt"], "is not an image"),
        (["--block", "layer7.1"], "no SC block 'layer7.1'"),
        (["--model", "rednet26", "--kind", "calibration"], "rednet26 has no self-calibrated convolution"),
        (["--model", "scnet50", "--kind", "involution"], "scnet50 has no involution"),
        (["--model", "resnet50"], "unknown model 'resnet50'"),
        (["--image-size", "100"], "multiple of 32"),
    ],
)
def test_bad_input_gives_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["visualize", "--image-size", "64", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaptconv visualize: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "pictures").exists()
