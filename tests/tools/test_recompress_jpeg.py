"""tools/recompress_jpeg.py: the same images and labels, re-encoded at the quality asked for."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.io import decode_jpeg, encode_jpeg

from tools.recompress_jpeg import main


def test_recompressed_set_keeps_labels_and_layout_and_loses_detail(tmp_path):
    g = torch.Generator().manual_seed(0)
    arrays = {}
    for split, n in (("train", 6), ("test", 3)):
        images = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g) for _ in range(n)]
        encoded = [encode_jpeg(im, quality=95).numpy() for im in images]
        offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
        arrays |= {f"{split}_jpeg": np.concatenate(encoded), f"{split}_labels": np.arange(n, dtype=np.uint8),
                   f"{split}_offsets": offsets}  # fmt: skip
    np.savez(tmp_path / "in.npz", **arrays)
    main([str(tmp_path / "in.npz"), str(tmp_path / "out.npz"), "--quality", "30"])
    out = np.load(tmp_path / "out.npz")
    for split in ("train", "test"):
        assert np.array_equal(out[f"{split}_labels"], arrays[f"{split}_labels"])
        assert len(out[f"{split}_offsets"]) == len(arrays[f"{split}_offsets"])
        assert out[f"{split}_jpeg"].nbytes < arrays[f"{split}_jpeg"].nbytes  # quality 30 is smaller than 95
        first = decode_jpeg(torch.from_numpy(out[f"{split}_jpeg"][: out[f"{split}_offsets"][1]].copy()))
        assert first.shape == (3, 32, 32)
