"""The default photo ships with the package; images become model inputs whose sides are multiples of 32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from adaptconv.models.pretrained import IMAGENET_MEAN, IMAGENET_STD
from adaptconv.visualize import VisualizeError, default_image_path, load_image, prepare_input


def test_default_photo_is_small_and_has_its_licence_beside_it():
    path = default_image_path()
    assert path.is_file() and path.stat().st_size < 300_000
    notice = (path.parent / "README.md").read_text()
    assert path.name in notice and "CC0" in notice
    assert load_image(None).size == (451, 300)


@pytest.mark.parametrize(("size", "expected"), [(64, (64, 96)), (224, (224, 320))])
def test_short_side_kept_long_side_cropped_to_a_multiple_of_32(size, expected):
    x = prepare_input(load_image(None), size)
    assert x.size == expected and x.tensor.shape == (1, 3, *expected)
    # the tensor is the drawn RGB array, normalised: heat maps drawn over the array lie on what the model saw
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (x.tensor[0] * std + mean).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(rgb, x.rgb, atol=1e-6)


def test_portrait_and_tiny_images(tmp_path):
    path = tmp_path / "tall.png"
    Image.new("RGB", (20, 50), (10, 200, 30)).save(path)
    assert prepare_input(load_image(path), 32).size == (64, 32)  # 32 x 80 cropped to 32 x 64


def test_bad_images_and_sizes(tmp_path):
    with pytest.raises(VisualizeError, match="image not found"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(VisualizeError, match="a folder"):
        load_image(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(VisualizeError, match="not an image"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(VisualizeError, match="multiple of 32"):
        prepare_input(load_image(None), 100)
