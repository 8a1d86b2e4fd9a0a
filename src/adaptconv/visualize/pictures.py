"""``adaptconv visualize``: every picture of a model on an image, written into a folder."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..models import get_pretrained_config
from ._layers import find_layer
from .calibration import calibration_gate, draw_calibration_gate, sc_blocks
from .errors import VisualizeError
from .images import default_image_path, load_image, prepare_input
from .involution_kernels import (
    KERNEL_MAPS,
    check_pixels,
    default_pixels,
    draw_involution_kernels,
    draw_kernel_maps,
    involution_blocks,
    involution_kernels,
)
from .weights import LoadedModel, load_model

__all__ = ["KINDS", "Pictures", "default_kinds", "visualize"]

#: the picture kinds; 'all' on the command line means every kind that applies to the model
KINDS = ("gradcam", "calibration", "involution")


@dataclass
class Pictures:
    """What ``visualize`` made: the PNG files, the top-5 classes (index, name, probability) and notes to show the
    user (e.g. that the weights are random)."""

    files: list[Path] = field(default_factory=list)
    top5: list[tuple[int, str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_kinds(loaded: LoadedModel) -> tuple[str, ...]:
    """Every kind that applies: Grad-CAM, and the model's own operator: calibration (SCNet), involution (RedNet)."""
    has = {
        "gradcam": True,
        "calibration": bool(sc_blocks(loaded.model)),
        "involution": bool(involution_blocks(loaded.model)),
    }
    return tuple(kind for kind in KINDS if has[kind])


def _check_kinds(kinds: tuple[str, ...], loaded: LoadedModel) -> None:
    for kind in kinds:
        if kind not in KINDS:
            raise VisualizeError(f"unknown picture kind {kind!r}; choose from {', '.join(KINDS)} or all")
    if "calibration" in kinds and not sc_blocks(loaded.model):
        raise VisualizeError(f"{loaded.name} has no self-calibrated convolution: kind 'calibration' is for scnet*")
    if "involution" in kinds and not involution_blocks(loaded.model):
        raise VisualizeError(f"{loaded.name} has no involution: kind 'involution' is for rednet*")


def visualize(
    image: str | Path | None = None,
    model: str = "scnet50",
    pretrained: bool | str | None = None,
    kinds: tuple[str, ...] | str | None = None,
    block: str | None = None,
    pixels: list[tuple[int, int]] | None = None,
    image_size: int = 224,
    output: str | Path = "pictures",
    class_index: int | None = None,
    kernel_map: str = "norm",
) -> Pictures:
    """Draw pictures of ``model`` on ``image`` into the folder ``output``.

    Args:
        image: an image file; ``None``: the photo that ships with the package (a cat, CC0).
        model: an adaptconv model name.
        pretrained: as ``load_model``: ``None`` random weights, ``True``/``'official'`` the official ones, or a path
            or URL.
        kinds: picture kinds from ``KINDS``, or 'all' (``None`` too): every kind that applies (``default_kinds``).
        block: the block whose calibration gate or involution kernels to draw (e.g. 'layer3.1'); default the last
            block of the second stage.
        pixels: (x, y) pixels of the model input whose involution kernels to draw; default ``default_pixels``.
        image_size: the short side of the model input, a multiple of 32.
        output: the folder to write into (made if missing).
        class_index: the class Grad-CAM explains; default the top-1 class.
        kernel_map: what the involution maps show per group: the kernel's 'norm' or its 'centre' tap.
    """
    loaded = load_model(model, pretrained)
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds or ("all",))
    kinds = default_kinds(loaded) if "all" in kinds else kinds
    _check_kinds(kinds, loaded)
    if block is not None:  # before any work: a misspelt block should fail at once
        for kind, layers, suffix, what in (("calibration", sc_blocks, ".scconv", "SC"),
                                           ("involution", involution_blocks, ".conv2", "involution")):  # fmt: skip
            if kind in kinds:
                find_layer(layers(loaded.model), block, suffix, what)
    path = default_image_path() if image is None else Path(image)
    cfg = get_pretrained_config(model)
    source = prepare_input(load_image(path), image_size, cfg.mean, cfg.std, name=path.name)
    if "involution" in kinds:
        if kernel_map not in KERNEL_MAPS:
            raise VisualizeError(f"unknown kernel map {kernel_map!r}; choose from {', '.join(KERNEL_MAPS)}")
        if pixels is not None:
            check_pixels(pixels, source)

    out = Path(output)
    stem = f"{_slug(path.stem)}_{model}"
    title = f"{model} ({loaded.weights}) on {path.name}"
    made = Pictures()
    if loaded.note:
        made.notes.append(loaded.note)
    if "gradcam" in kinds:
        from .gradcam import draw_grad_cam, grad_cam  # the grad-cam package only for this picture

        result = grad_cam(loaded.model, source, class_index)
        made.top5 = [(c.index, c.name, c.probability) for c in result.top5]
        made.files.append(draw_grad_cam(result, source, title, out / f"{stem}_gradcam.png"))
    if "calibration" in kinds:
        name, gate = calibration_gate(loaded.model, source, block)
        made.files.append(
            draw_calibration_gate(gate, source, title, out / f"{stem}_calibration_{name}.png", block=name)
        )
    if "involution" in kinds:
        kernels = involution_kernels(loaded.model, source, block)
        chosen = default_pixels(source) if pixels is None else pixels
        base = out / f"{stem}_involution_{kernels.block}"
        made.files.append(draw_involution_kernels(kernels, source, chosen, title, f"{base}_kernels.png"))
        made.files.append(draw_kernel_maps(kernels, source, title, f"{base}_{kernel_map}_maps.png", kernel_map))
    return made


def _slug(text: str) -> str:
    """A file-name-safe form of an image's name."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "image"
