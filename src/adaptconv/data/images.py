"""Decoding one image to a uint8 RGB tensor (3, H, W), so that no file can crash the run or pass in silence.

- JPEG, WebP and GIF are decoded by ``torchvision.io``; a JPEG that libjpeg reports as corrupt (it decodes such
  data anyway, with a warning on the process's standard error) is refused. An animation gives its first frame.
- PNG is decoded by Pillow: libpng's error handling inside ``torchvision.io.decode_image`` ends the process with a
  segmentation fault on a damaged PNG, where Pillow raises an error.
- Other formats (BMP, TIFF, ...) are decoded by Pillow, high-bit-depth and floating-point images scaled to 8 bits
  over their range (16-bit integers over 0..65535, floats over 0..1, torchvision's convention).

Every failure is an :class:`ImageDecodeError` with a short reason; datasets turn it into an error naming the file.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.io import ImageReadMode, decode_image

__all__ = ["IMAGE_EXTENSIONS", "ImageDecodeError", "decode_image_data", "read_image_file"]

#: file name endings an image folder is searched for: torchvision's, and GIF
IMAGE_EXTENSIONS = (*IMG_EXTENSIONS, ".gif")

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
#: what libjpeg writes on standard error for data it decodes although it is damaged
_LIBJPEG_WARNING = re.compile(r"^(Corrupt JPEG data|Premature end of JPEG file).*$", re.M)


class ImageDecodeError(ValueError):
    """The bytes are not an image that decodes cleanly; the message says why."""


def read_image_file(path: str | os.PathLike) -> Tensor:
    """The image in file ``path`` as uint8 RGB (3, H, W); :class:`ImageDecodeError` or ``OSError`` if it cannot
    be read or decoded."""
    with open(path, "rb") as f:
        return decode_image_data(f.read())


def decode_image_data(data: bytes | Tensor) -> Tensor:
    """An encoded image (bytes, or a uint8 1-D tensor) as uint8 RGB (3, H, W)."""
    if isinstance(data, Tensor):
        data = data.numpy().tobytes()
    if data.startswith(_PNG):
        return _decode_with_pillow(data)
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    try:
        if data.startswith(_JPEG):
            with _native_stderr() as written:
                image = decode_image(encoded, mode=ImageReadMode.RGB)
            complaint = _LIBJPEG_WARNING.search(written[0])
            if complaint:
                raise ImageDecodeError(f"damaged JPEG data ({complaint.group(0).strip()})")
        else:
            image = decode_image(encoded, mode=ImageReadMode.RGB)
    except RuntimeError as e:
        if "Unsupported image file" not in str(e):
            raise ImageDecodeError(_reason(e)) from None
        return _decode_with_pillow(data)
    if image.ndim == 4:  # an animation (GIF, WebP): its first frame, as Pillow shows it
        image = image[0]
    return _checked(image)


def _checked(image: Tensor) -> Tensor:
    if image.ndim != 3 or image.shape[0] != 3 or image.dtype != torch.uint8 or min(image.shape[1:]) == 0:
        raise ImageDecodeError(f"decoded to an unusable array ({image.dtype}, shape {tuple(image.shape)})")
    return image


def _decode_with_pillow(data: bytes) -> Tensor:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # the first frame of a multi-frame file
            array = _to_uint8(im)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(str(e) or type(e).__name__) from None
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return _checked(torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous())


def _to_uint8(im) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB uint8: 8-bit modes through Pillow's conversion, others scaled over their range
    (Pillow's own conversion of 16-bit and float pixels to 8 bits clips them)."""
    if im.mode == "F":
        values = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0) * 255.0
    elif im.mode == "I" or im.mode.startswith("I;16"):
        values = np.clip(np.asarray(im).astype(np.float64), 0, 65535) * (255.0 / 65535.0)
    else:
        return np.asarray(im.convert("RGB"))
    if not np.isfinite(values).all():
        raise ImageDecodeError("the image holds NaN or infinite pixel values")
    return np.rint(values).astype(np.uint8)


def _reason(e: Exception) -> str:
    """The last line of a decoder's message: the part that says what is wrong."""
    text = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return text.split(", ")[-1] if text.startswith(("decode_", "operator()")) else text


_capture: tuple[int, object] | None = None  # (process id, file): one capture file per process


@contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Catch what native code writes on file descriptor 2 meanwhile (libjpeg's warnings go there, not to Python);
    ``written[0]`` holds it afterwards, and anything else caught is passed on to the real standard error."""
    global _capture
    if _capture is None or _capture[0] != os.getpid():  # a forked worker must not share its parent's file
        _capture = (os.getpid(), tempfile.TemporaryFile())
    capture = _capture[1]
    capture.seek(0)
    capture.truncate()
    sys.stderr.flush()
    saved = os.dup(2)
    written = [""]
    os.dup2(capture.fileno(), 2)
    try:
        yield written
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        written[0] = capture.read().decode(errors="replace")
        others = _LIBJPEG_WARNING.sub("", written[0]).strip()
        if others:
            os.write(2, (others + "\n").encode())
