"""What the pictures share: matplotlib without a display, an image with a heat map over it, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["DPI", "overlay", "pyplot", "save", "show_image"]

#: dots per inch of every picture: figure sizes are given in inches, so a picture is (inches * DPI) pixels
DPI = 100


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("adaptconv visualize needs matplotlib: pip install 'adaptconv[visualize]'") from e
    return plt


def show_image(ax, rgb: np.ndarray, title: str | None = None) -> None:
    """Draw ``rgb`` (H, W, 3) with pixel-centred axes, as every heat map drawn over it expects."""
    ax.imshow(rgb, interpolation="bilinear")
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def overlay(ax, rgb: np.ndarray, heat: np.ndarray, *, cmap: str, vmin: float, vmax: float, alpha: float = 0.55):
    """Draw ``rgb`` (H, W, 3) dimmed to grey and ``heat`` (h, w) over it, stretched to cover the image exactly.

    ``heat`` may be coarser than the image (a feature map): each of its cells then covers the (H/h) x (W/w) block
    of pixels it was computed from (H and W are multiples of h and w), drawn as a flat block so that the picture
    shows the map's real resolution. The image is drawn in grey so that the colours are the heat map's alone.
    """
    h, w = rgb.shape[:2]
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
    # extent puts the map's outer edges on the image's outer pixel edges: cell (i, j) covers its own pixel block
    im = ax.imshow(
        heat,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        alpha=alpha,
        interpolation="nearest",
        extent=(-0.5, w - 0.5, h - 0.5, -0.5),
    )
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``DPI`` (its size in inches times DPI, no cropping) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path
