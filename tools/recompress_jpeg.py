"""Re-encode the images of a JPEG ``.npz`` data set at another JPEG quality (to measure how much the compression of
the stored images costs a model: the accuracy study's CIFAR-10 copy is stored at quality 75).

    python -m tools.recompress_jpeg IN.npz OUT.npz --quality 50

Each image is decoded and encoded again with ``torchvision.io``; labels and the layout (``{split}_jpeg``,
``{split}_offsets``, ``{split}_labels``) stay as they were. Re-encoding can only lose more: from a quality-75 file it
gives images at most as good as quality 75.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

SPLITS = ("train", "test")


def recompress(arrays, split: str, quality: int) -> dict[str, np.ndarray]:
    """The ``split`` arrays of a JPEG ``.npz`` with every image re-encoded at ``quality``."""
    data, offsets = arrays[f"{split}_jpeg"], arrays[f"{split}_offsets"]
    encoded = []
    for i in range(len(offsets) - 1):
        image = decode_jpeg(torch.from_numpy(data[offsets[i] : offsets[i + 1]].copy()), mode=ImageReadMode.RGB)
        encoded.append(encode_jpeg(image, quality=quality).numpy())
    new_offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    return {f"{split}_jpeg": np.concatenate(encoded), f"{split}_offsets": new_offsets,
            f"{split}_labels": arrays[f"{split}_labels"]}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--quality", type=int, required=True, help="JPEG quality, 1-100")
    args = ap.parse_args(argv)
    arrays = np.load(args.source)
    out = {}
    for split in SPLITS:
        out |= recompress(arrays, split, args.quality)
    np.savez(args.target, **out)
    print(f"{args.target}: {sum(len(out[f'{s}_offsets']) - 1 for s in SPLITS)} images at quality {args.quality}")


if __name__ == "__main__":
    main()
