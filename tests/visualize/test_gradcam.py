"""Grad-CAM through the grad-cam package: a map at the input's size, the top-5 classes with names, a picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("pytorch_grad_cam")

from adaptconv.visualize.classes import class_name, top_classes  # noqa: E402
from adaptconv.visualize.gradcam import draw_grad_cam, grad_cam  # noqa: E402


def test_class_names_offline():
    assert class_name(281, 1000) == "tabby, tabby cat"
    assert class_name(3, 10) == "class 3"
    top = top_classes(torch.tensor([0.0, 3.0, 1.0, 2.0]), 3)
    assert [c.index for c in top] == [1, 3, 2] and top[0].probability > top[1].probability


def test_map_top5_and_picture(rednet, photo, tmp_path):
    result = grad_cam(rednet, photo)
    assert result.cam.shape == photo.size and 0 <= result.cam.min() <= result.cam.max() <= 1
    assert len(result.top5) == 5 and result.target == result.top5[0] and result.layer == "layer4.0"
    assert grad_cam(rednet, photo, class_index=281).target.name == "tabby, tabby cat"
    path = draw_grad_cam(result, photo, "test", tmp_path / "cam.png")
    with Image.open(path) as png:
        assert png.size == (1240, 360)  # (3 x 3.6 in + 1.6 in) x 100 dpi by (3.6 in x 64/96 + 1.2 in) x 100 dpi
        assert len(np.unique(np.asarray(png.convert("L")))) > 50
