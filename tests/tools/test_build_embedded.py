"""tools/build_embedded.py on a small made-up Fashion-MNIST (the real one is checked in tests/data where installed)."""

from __future__ import annotations

import gzip

import numpy as np

from tools.build_embedded import ASSET, main, read_idx


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_default_output_is_the_file_the_package_ships():
    assert ASSET.is_file() and ASSET.parent.name == "assets" and ASSET.parents[1].name == "data"


def test_builds_a_balanced_subset_of_each_split(tmp_path):
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 50), ("t10k", 30)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        images[:, 0, 0] = 1 if prefix == "train" else 2  # which split an image came from
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    assert read_idx(tmp_path / "train-labels-idx1-ubyte.gz").tolist() == list(np.arange(50) % 10)
    out = tmp_path / "subset.npz"
    main(["--source", str(tmp_path), "--train-per-class", "3", "--test-per-class", "2", "--output", str(out)])
    data = np.load(out)
    assert data["x_train"].shape == (30, 28, 28) and data["x_test"].shape == (20, 28, 28)
    assert np.bincount(data["y_train"]).tolist() == [3] * 10 and np.bincount(data["y_test"]).tolist() == [2] * 10
    assert (data["x_train"][:, 0, 0] == 1).all() and (data["x_test"][:, 0, 0] == 2).all()
