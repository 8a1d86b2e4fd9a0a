"""Image files that are damaged or unusual: each decodes correctly or is a named error, none ends the process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adaptconv.data import BadImageError, collate_skipping
from adaptconv.data.datasets import ImageFolderDataset


def _folder(root: Path, files: dict[str, bytes | None] | None = None) -> Path:
    """One class folder 'c' holding a plain 8x8 JPEG and ``files`` (name -> bytes)."""
    (root / "c").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(root / "c" / "plain.jpg")
    for name, data in (files or {}).items():
        (root / "c" / name).write_bytes(data)
    return root


def _item(ds: ImageFolderDataset, name: str):
    return ds[[Path(p).name for p, _ in ds.samples].index(name)]


def _encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_damaged_png_is_a_named_error_not_a_crash(tmp_path):
    """Single damaged bytes in a PNG's compressed data made libpng (inside torchvision) end the process."""
    rng = np.random.default_rng(0)
    png = _encoded(Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)), "PNG")
    files = {}
    for i in range(40):
        data = bytearray(png)
        data[int(rng.integers(60, len(png) - 20))] ^= int(rng.integers(1, 256))
        files[f"{i}.png"] = bytes(data)
    ds = ImageFolderDataset(_folder(tmp_path, files))
    for name in files:
        try:
            image, _ = _item(ds, name)
        except BadImageError as e:
            assert name in str(e)
        else:  # a flip in an ancillary part may leave a decodable image
            assert image.shape == (3, 32, 32)


def test_animated_gif_named_png_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((10, 12, 3), v, np.uint8)) for v in (30, 200, 90)]
    gif = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    ds = ImageFolderDataset(_folder(tmp_path, {"anim.png": gif, "anim.gif": gif}))
    for name in ("anim.png", "anim.gif"):
        image, _ = _item(ds, name)
        assert image.shape == (3, 10, 12) and abs(image.float().mean().item() - 30) < 2, name
    images, _, skipped = collate_skipping([(torch.zeros(3, 10, 12, dtype=torch.uint8), 0), (image, 0)])
    assert images.shape == (2, 3, 10, 12) and not skipped


def test_gif_files_are_found(tmp_path):
    gif = _encoded(Image.fromarray(np.full((6, 6, 3), 50, np.uint8)), "GIF")
    ds = ImageFolderDataset(_folder(tmp_path, {"still.gif": gif}))
    assert sorted(Path(p).name for p, _ in ds.samples) == ["plain.jpg", "still.gif"]


def test_high_bit_depth_and_float_tiffs_keep_their_brightness(tmp_path):
    ramp = np.linspace(0, 1, 400).reshape(20, 20)
    files = {
        "grey16.tif": _encoded(Image.fromarray((ramp * 65535).astype(np.uint16)), "TIFF"),
        "float32.tif": _encoded(Image.fromarray(ramp.astype(np.float32)), "TIFF"),
    }
    ds = ImageFolderDataset(_folder(tmp_path, files))
    for name in files:
        image, _ = _item(ds, name)
        assert image.shape == (3, 20, 20) and image.dtype == torch.uint8
        assert image.float().mean().item() / 255 == pytest.approx(ramp.mean(), abs=0.01), name
        assert image[:, 0, 0].tolist() == [0, 0, 0] and image[:, -1, -1].tolist() == [255, 255, 255], name


def test_jpeg_with_garbage_inside_is_refused(tmp_path):
    """Random bytes inside a JPEG's entropy-coded data: libjpeg decodes garbage and only warns on stderr."""
    rng = np.random.default_rng(1)
    jpeg = _encoded(Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)), "JPEG", quality=90)
    data = bytearray(jpeg)
    middle = int(len(data) * 0.45)
    data[middle : middle + 30] = bytes(rng.integers(0, 256, 30, dtype=np.uint8))
    ds = ImageFolderDataset(_folder(tmp_path, {"garbage.jpg": bytes(data)}))
    with pytest.raises(BadImageError, match=r"garbage\.jpg: damaged JPEG data \(Corrupt JPEG data"):
        _item(ds, "garbage.jpg")
    assert _item(ds, "plain.jpg")[0].shape == (3, 8, 8)
