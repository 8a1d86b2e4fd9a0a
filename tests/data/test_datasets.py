"""The data sources: the embedded subset, .npz files in both layouts, image folders and their bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHARED
from PIL import Image

from adaptconv.data import BadImageError, DataError, embedded_dataset, open_npz, open_source
from adaptconv.data.datasets import EMBEDDED_CLASSES
from tools.build_embedded import DEBIAN_DIR, build

ASSETS = Path(__file__).resolve().parents[2] / "src" / "adaptconv" / "data" / "assets"


def test_embedded_is_balanced_small_and_attributed():
    train, test = embedded_dataset("train"), embedded_dataset("test")
    assert train.images.shape == (8000, 1, 28, 28) and test.images.shape == (2000, 1, 28, 28)
    assert train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [800] * 10
    assert torch.bincount(test.labels).tolist() == [200] * 10
    assert train.classes == EMBEDDED_CLASSES
    assert (ASSETS / "fashion_mnist_subset.npz").stat().st_size <= 5_000_000
    licence = (ASSETS / "LICENSE.fashion-mnist").read_text()
    assert "MIT" in licence and "Zalando SE" in licence


@pytest.mark.skipif(not (DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="the Fashion-MNIST source files are not on this machine (assets/README.md)")  # fmt: skip
def test_embedded_file_is_what_the_build_script_makes():
    shipped = np.load(ASSETS / "fashion_mnist_subset.npz")
    rebuilt = build()
    assert set(shipped.files) == set(rebuilt)
    for key, value in rebuilt.items():
        np.testing.assert_array_equal(shipped[key], value, err_msg=key)


def _jpeg_npz(path: Path, n: int = 6, corrupt: int | None = None) -> Path:
    rng = np.random.default_rng(0)
    blobs, labels = [], []
    for i in range(n):
        arr = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
        file = path.parent / f"img{i}.jpg"
        Image.fromarray(arr).save(file)
        data = file.read_bytes()
        blobs.append(data[: len(data) // 2] if i == corrupt else data)
        labels.append(i % 3)
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    arrays = {}
    for split in ("train", "test"):
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = offsets
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.uint8)
    np.savez(path, **arrays)
    return path


def test_npz_jpeg_layout(tmp_path):
    ds = open_npz(_jpeg_npz(tmp_path / "d.npz"), "train")
    image, label = ds[4]
    assert image.shape == (3, 20, 24) and image.dtype == torch.uint8 and label == 1
    assert len(ds) == 6 and ds.classes == ("0", "1", "2")


def test_npz_corrupt_image_is_named(tmp_path):
    ds = open_npz(_jpeg_npz(tmp_path / "d.npz", corrupt=2), "train")
    with pytest.raises(BadImageError, match=r"d\.npz \[train #2\].*--skip-bad-images"):
        ds[2]


def test_npz_array_layout_and_classes_file(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 1, 2, 1], np.uint8),
             x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.array([0, 2], np.uint8))  # fmt: skip
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n")
    ds = open_npz(tmp_path / "a.npz", "train")
    assert ds[0][0].shape == (1, 8, 8) and ds.classes == ("cat", "dog", "bird")


@pytest.mark.parametrize("content, match", [(None, "no such .npz"), (b"garbage", "cannot read")])
def test_npz_bad_file(tmp_path, content, match):
    path = tmp_path / "x.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        open_npz(path, "train")


def test_npz_wrong_layout(tmp_path):
    np.savez(tmp_path / "w.npz", foo=np.zeros(3))
    with pytest.raises(DataError, match="neither the JPEG layout"):
        open_npz(tmp_path / "w.npz", "train")


def make_folder(root: Path, classes=("a", "b"), per_class: int = 3, size=(12, 10)) -> Path:
    """An ImageNet-style folder of small random PNG/JPEG images."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = (rng.random((*size, 3)) * 255).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_folder_source(tmp_path):
    source = open_source(str(make_folder(tmp_path / "d")))
    assert source.classes == ("a", "b") and source.in_chans == 3 and len(source.train) == 6
    image, label = source.val[5]
    assert image.shape == (3, 12, 10) and label == 1


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_source(str(tmp_path / "missing"))
    (tmp_path / "d" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="missing: val"):
        open_source(str(tmp_path / "d"))
    root = make_folder(tmp_path / "e")
    (root / "train" / "empty").mkdir()
    (root / "val" / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        open_source(str(root))


@pytest.mark.parametrize("bad", [b"not an image at all", "truncated"])
def test_folder_bad_image_is_named(tmp_path, bad):
    root = make_folder(tmp_path / "d")
    target = root / "train" / "a" / "2.jpg"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if bad == "truncated" else bad)
    source = open_source(str(root))
    index = [s[0] for s in source.train.samples].index(str(target))
    with pytest.raises(BadImageError, match=r"a/2\.jpg: .*--skip-bad-images"):
        source.train[index]


def test_unknown_dataset_spec():
    with pytest.raises(DataError, match="unknown --dataset"):
        open_source(dataset="imagenet")


@pytest.mark.skipif(not (SHARED / "datasets" / "imagenette").is_dir(), reason="needs ../shared/datasets")
def test_shared_imagenette():
    source = open_source(dataset=f"npz:{SHARED / 'datasets' / 'imagenette' / 'imagenette2_96px_q85.npz'}")
    assert source.num_classes == 10 and source.in_chans == 3 and source.image_side == 96
    assert len(source.train) == 9469 and len(source.val) == 3925
