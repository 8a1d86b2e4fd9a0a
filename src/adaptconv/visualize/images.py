"""The picture's input: reading an image (or the default photo that ships with the package) and turning it into
the model's input tensor, with the RGB array that the pictures draw under their heat maps."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..models.pretrained import IMAGENET_MEAN, IMAGENET_STD
from .errors import VisualizeError

__all__ = ["DEFAULT_IMAGE", "MODEL_STRIDE", "ModelInput", "default_image_path", "load_image", "prepare_input"]

#: the default photo: Chelsea the cat, CC0, from scikit-image's sample data (see assets/README.md)
DEFAULT_IMAGE = "chelsea.jpg"

#: total stride of every adaptconv model: sides that are multiples of it make each feature map cover the image
#: exactly, so that a map up-sampled to the image lies on it without a shift
MODEL_STRIDE = 32


def default_image_path() -> Path:
    """Path of the default photo inside the installed package."""
    return Path(str(resources.files(__package__).joinpath("assets", DEFAULT_IMAGE)))


def load_image(path: str | Path | None = None) -> Image.Image:
    """Read an image file as RGB (``None``: the default photo); a ``VisualizeError`` says why one cannot be read."""
    path = default_image_path() if path is None else Path(path)
    if not path.is_file():
        raise VisualizeError(f"image not found: {path}" + (" (a folder)" if path.is_dir() else ""))
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise VisualizeError(f"{path} is not an image that Pillow can read ({type(e).__name__})") from None


@dataclass(frozen=True)
class ModelInput:
    """An image prepared for a model: ``tensor`` (1, 3, H, W), normalised; ``rgb`` (H, W, 3) floats in [0, 1],
    the same pixels unnormalised, for drawing; ``name`` names the source in titles and file names."""

    tensor: Tensor
    rgb: np.ndarray
    name: str

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the model input."""
        return self.rgb.shape[0], self.rgb.shape[1]


def prepare_input(
    image: Image.Image,
    short_side: int = 224,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    name: str = "image",
) -> ModelInput:
    """Resize ``image`` so its short side is ``short_side`` (bilinear, aspect kept), then centre-crop the long side
    down to a multiple of ``MODEL_STRIDE``; normalise with ``mean``/``std``.

    The whole picture stays in view (a square centre crop would cut most of a wide photo) and nothing is stretched:
    the crop takes at most 31 pixels off the long side. ``short_side`` must be a multiple of ``MODEL_STRIDE``.
    """
    if short_side < MODEL_STRIDE or short_side % MODEL_STRIDE:
        raise VisualizeError(f"image size must be a positive multiple of {MODEL_STRIDE}, got {short_side}")
    w, h = image.size
    scale = short_side / min(w, h)
    rw, rh = max(short_side, round(w * scale)), max(short_side, round(h * scale))
    resized = image.resize((rw, rh), Image.Resampling.BILINEAR)
    cw, ch = rw - rw % MODEL_STRIDE, rh - rh % MODEL_STRIDE
    left, top = (rw - cw) // 2, (rh - ch) // 2
    rgb = np.asarray(resized.crop((left, top, left + cw, top + ch)), dtype=np.float32) / 255.0
    tensor = (torch.from_numpy(rgb).permute(2, 0, 1) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(
        3, 1, 1
    )
    return ModelInput(tensor=tensor.unsqueeze(0).contiguous(), rgb=rgb, name=name)
