"""SC-Conv's calibration gate ``sigmoid(x + Up(K2(AvgPool_r(x))))`` (Liu et al., CVPR 2020, Eq. 3) in a block of
an SCNet, taken by a forward hook while the model runs on an image, and its picture."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from torch import Tensor

from ..ops import SelfCalibration
from ._drawing import overlay, pyplot, save, show_image
from ._layers import find_layer, layers_by_block
from .errors import VisualizeError
from .images import ModelInput

__all__ = ["calibration_gate", "default_calibration_block", "draw_calibration_gate", "sc_blocks"]


def sc_blocks(model: nn.Module) -> dict[str, SelfCalibration]:
    """The self-calibrated convs of ``model`` by block name (e.g. 'layer2.3' for 'layer2.3.scconv')."""
    return layers_by_block(model, SelfCalibration, ".scconv")


def default_calibration_block(model: nn.Module) -> str:
    """The last block of the second stage: at stride 8 its gate is fine enough to follow the image's shapes."""
    names = list(sc_blocks(model))
    return ([n for n in names if n.startswith("layer2.")] or names)[-1]


def calibration_gate(model: nn.Module, image: ModelInput, block: str | None = None) -> tuple[str, Tensor]:
    """The calibration gate of ``block`` (default ``default_calibration_block``) on ``image``: (block name,
    gate (C, h, w) in (0, 1)), as the model's forward computes it (a hook on the conv's ``calibration_gate``)."""
    blocks = sc_blocks(model)
    if not blocks:
        raise VisualizeError(
            f"{type(model).__name__} has no self-calibrated convolution: the calibration picture is for scnet* models"
        )
    name, conv = find_layer(blocks, block or default_calibration_block(model), ".scconv", "SC")
    seen: list[Tensor] = []
    handle = conv.calibration_gate.register_forward_hook(lambda _m, _inputs, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            model(image.tensor)
    finally:
        handle.remove()
    return name, seen[0][0]


def draw_calibration_gate(
    gate: Tensor, image: ModelInput, title: str, path: str | Path, block: str, channels: int = 6
) -> Path:
    """Picture: the image; the gate's mean over channels over the image; the ``channels`` channels whose gates vary
    most over the image (largest spatial standard deviation), on one 0-1 colour scale."""
    plt = pyplot()
    gate = gate.float()
    c, gh, gw = gate.shape
    chosen = gate.flatten(1).std(1).argsort(descending=True)[:channels].tolist()
    mean = gate.mean(0).numpy()
    h, w = image.size
    cols = 3
    rows = max(1, -(-len(chosen) // cols))
    panel_w = 3.2
    top_h = 1.5 * panel_w * h / w + 0.5
    bottom_h = rows * (panel_w * h / w + 0.35) + 0.4
    fig = plt.figure(figsize=(cols * panel_w + 1.2, top_h + bottom_h + 0.7), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(top_h, bottom_h))
    upper = top.subplots(1, 2)
    show_image(upper[0], image.rgb, f"input ({w}x{h})")
    # the mean varies over a narrow range around 0.5: its own scale shows where the calibration opens and closes
    im = overlay(upper[1], image.rgb, mean, cmap="viridis", vmin=float(mean.min()), vmax=float(mean.max()))
    upper[1].set_title(f"mean gate over the {c} channels", fontsize=9)
    top.colorbar(im, ax=list(upper), shrink=0.85, label="mean gate")
    axes = bottom.subplots(rows, cols, squeeze=False).ravel()
    for ax, ch in zip(axes, chosen, strict=False):
        im = overlay(ax, image.rgb, gate[ch].numpy(), cmap="magma", vmin=0.0, vmax=1.0)
        ax.set_title(f"channel {ch}", fontsize=9)
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    bottom.colorbar(im, ax=list(axes), shrink=0.8, label="gate (0 closed, 1 open)")
    bottom.suptitle(f"the {len(chosen)} channels whose gate varies most over the image", fontsize=9)
    fig.suptitle(f"{title}\ncalibration gate sigmoid(x + Up(K2(AvgPool4(x)))) of {block}.scconv, {gh}x{gw} cells",
                 fontsize=10)  # fmt: skip
    return save(fig, path)
