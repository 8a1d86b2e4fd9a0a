"""Build the embedded default data set: a class-balanced subset of Fashion-MNIST.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, arXiv:1708.07747; MIT licence, Copyright 2017 Zalando SE) as
Debian's ``dataset-fashion-mnist`` package installs it (``apt-get install dataset-fashion-mnist``). The subset
takes ``--train-per-class`` images of each class from the official training split and ``--test-per-class`` from
the official test split, chosen at random with a fixed seed, so the held-out split is truly held out.

    python -m tools.build_embedded [--source DIR] [--train-per-class 800] [--test-per-class 200] [--output FILE]

run from the repository root, rewrites the file the package ships (src/adaptconv/data/assets/) by default.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

from adaptconv.data.datasets import EMBEDDED_CLASSES, EMBEDDED_FILE

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
#: the file the package ships, in this checkout
ASSET = Path(__file__).resolve().parents[1] / "src" / "adaptconv" / "data" / "assets" / EMBEDDED_FILE
TRAIN_PER_CLASS = 800
TEST_PER_CLASS = 200
SEED = 0


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: magic, dimension sizes, then uint8 data), gzipped."""
    data = gzip.decompress(path.read_bytes())
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` random examples of every class."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(len(EMBEDDED_CLASSES))]
    return np.sort(np.concatenate(picks))


def build(source: Path = DEBIAN_DIR, train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS,
          seed: int = SEED) -> dict[str, np.ndarray]:  # fmt: skip
    """The subset's arrays: ``x_train`` uint8 (N, 28, 28), ``y_train`` uint8 (N,), ``x_test``, ``y_test``."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, prefix, per_class in (("train", "train", train_per_class), ("test", "t10k", test_per_class)):
        images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz")
        keep = balanced_subset(labels, per_class, rng)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images[keep], labels[keep]
    return arrays


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, default=DEBIAN_DIR, help="folder with the four Fashion-MNIST .gz files")
    p.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS)
    p.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    p.add_argument("--output", type=Path, default=ASSET, help="default: the file the package ships")
    args = p.parse_args(argv)
    if not (args.source / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"no Fashion-MNIST in {args.source}: apt-get install dataset-fashion-mnist, or pass --source")
    arrays = build(args.source, args.train_per_class, args.test_per_class)
    np.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB): "
          + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))  # fmt: skip


if __name__ == "__main__":
    main()
