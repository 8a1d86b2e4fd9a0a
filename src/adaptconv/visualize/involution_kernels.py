"""The kernels an involution generates (Li et al., CVPR 2021, Eq. 6), taken by a forward hook while a RedNet runs
on an image: the K x K kernel of each group at chosen pixels, and each group's kernel strength over the image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..ops import Involution2d
from ._drawing import overlay, pyplot, save, show_image
from ._layers import find_layer, layers_by_block
from .errors import VisualizeError
from .images import ModelInput

__all__ = [
    "InvolutionKernels",
    "default_involution_block",
    "default_pixels",
    "draw_involution_kernels",
    "draw_kernel_maps",
    "involution_blocks",
    "involution_kernels",
    "kernel_map",
]

#: groups drawn at most: RedNet's deeper stages have 16 or 32, too many to read in one row
MAX_GROUPS = 8


def involution_blocks(model: nn.Module) -> dict[str, Involution2d]:
    """The involutions of ``model`` by block name ('layer2.1' for 'layer2.1.conv2'; the stem's is 'conv1.1')."""
    return layers_by_block(model, Involution2d, ".conv2")


def default_involution_block(model: nn.Module) -> str:
    """The last block of the second stage: 7 x 7 kernels at stride 8, in 8 groups for RedNet."""
    names = list(involution_blocks(model))
    return ([n for n in names if n.startswith("layer2.")] or names)[-1]


@dataclass(frozen=True)
class InvolutionKernels:
    """The kernels that involution ``block`` generated on an image: ``kernels`` (G, K, K, h, w), tap (a, b) of
    the kernel at output cell (i, j) weighting input cell (i*stride - padding + a*dilation, j*stride - padding +
    b*dilation); ``input_size`` (H_in, W_in) of the layer's input; ``image_size`` (H, W) of the model's input."""

    block: str
    kernels: Tensor
    stride: int
    padding: int
    dilation: int
    input_size: tuple[int, int]
    image_size: tuple[int, int]

    @property
    def cell(self) -> float:
        """Image pixels per cell of the layer's input grid (the network's stride before this layer)."""
        return self.image_size[0] / self.input_size[0]

    def grid_cell(self, x: int, y: int) -> tuple[int, int]:
        """(row, column) of the kernel grid whose output covers image pixel (x, y)."""
        return int(y // self.cell) // self.stride, int(x // self.cell) // self.stride

    def window(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(left, top, width, height) in image pixel coordinates of the K x K window that cell (row, col) weights."""
        k = self.kernels.shape[1]
        span = (self.dilation * (k - 1) + 1) * self.cell
        top = (row * self.stride - self.padding) * self.cell - 0.5
        left = (col * self.stride - self.padding) * self.cell - 0.5
        return left, top, span, span


def involution_kernels(model: nn.Module, image: ModelInput, block: str | None = None) -> InvolutionKernels:
    """The kernels involution ``block`` (default ``default_involution_block``) generates on ``image``.

    A forward hook on the layer takes its input while the model runs and asks the layer for the kernels of that
    input (``Involution2d.kernels``, the function its forward uses); the fused path never stores them otherwise.
    """
    layers = involution_blocks(model)
    if not layers:
        raise VisualizeError(
            f"{type(model).__name__} has no involution: the involution pictures are for rednet* models"
        )
    name, layer = find_layer(layers, block or default_involution_block(model), ".conv2", "involution")
    seen: list[tuple[Tensor, Tensor]] = []

    def take(module: Involution2d, inputs: tuple[Tensor, ...], _out: Tensor) -> None:
        seen.append((inputs[0].shape[-2:], module.kernels(inputs[0]).detach()))

    handle = layer.register_forward_hook(take)
    try:
        with torch.no_grad():
            model(image.tensor)
    finally:
        handle.remove()
    (h_in, w_in), flat = seen[0]
    k = layer.kernel_size
    kernels = flat[0].unflatten(0, (layer.groups, k, k))  # group-major, then taps row by row
    return InvolutionKernels(name, kernels, layer.stride, layer.padding, layer.dilation, (h_in, w_in), image.size)


def default_pixels(image: ModelInput) -> list[tuple[int, int]]:
    """Three pixels (x, y): the centre of the image and the centres of its upper-left and lower-right quarters."""
    h, w = image.size
    return [(w // 2, h // 2), (w // 4, h // 4), (3 * w // 4, 3 * h // 4)]


def check_pixels(pixels: list[tuple[int, int]], image: ModelInput) -> None:
    """A ``VisualizeError`` for a pixel outside the model's input."""
    h, w = image.size
    for x, y in pixels:
        if not (0 <= x < w and 0 <= y < h):
            raise VisualizeError(f"pixel ({x}, {y}) is outside the {w}x{h} model input (x < {w}, y < {h})")


_MARKER_COLOURS = ("#00e5ff", "#ffea00", "#ff4081", "#76ff03", "#ff9100", "#e040fb")


def draw_involution_kernels(
    result: InvolutionKernels, image: ModelInput, pixels: list[tuple[int, int]], title: str, path: str | Path
) -> Path:
    """Picture: the image with each pixel marked (and the window its kernel weights outlined); beside it, one row
    per pixel of the group kernels generated there, on one symmetric colour scale."""
    from matplotlib.patches import Rectangle

    check_pixels(pixels, image)
    plt = pyplot()
    groups, k = result.kernels.shape[:2]
    shown = min(groups, MAX_GROUPS)
    cells = [result.grid_cell(x, y) for x, y in pixels]
    chosen = torch.stack([result.kernels[:shown, :, :, r, c] for r, c in cells]).float()  # (P, G, K, K)
    vmax = float(chosen.abs().max()) or 1.0
    h, w = image.size
    img_w = 4.6
    kern_w = 0.95
    rows = len(pixels)
    height = max(img_w * h / w + 0.6, rows * kern_w + 0.6) + 0.8
    fig = plt.figure(figsize=(img_w + shown * kern_w + 1.4, height), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=(img_w, shown * kern_w + 1.0))
    ax = left.subplots()
    show_image(ax, image.rgb, f"input ({w}x{h}): pixels, {k}x{k} windows")
    for n, ((x, y), (r, c)) in enumerate(zip(pixels, cells, strict=True)):
        colour = _MARKER_COLOURS[n % len(_MARKER_COLOURS)]
        wl, wt, ww, wh = result.window(r, c)
        ax.add_patch(Rectangle((wl, wt), ww, wh, fill=False, edgecolor=colour, lw=1.5))
        ax.plot(x, y, marker="+", ms=10, mew=2, color=colour)
        ax.annotate(str(n + 1), (x, y), xytext=(4, 4), textcoords="offset points", color=colour, fontweight="bold")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    grid_h = rows * (kern_w + 0.3) + 0.7
    spare = height - 0.8 - grid_h
    if spare > 0.2:  # fewer pixels than the image is high: keep the kernel rows together, centred beside it
        grid = right.subfigures(3, 1, height_ratios=(spare / 2, grid_h, spare / 2))[1]
    else:
        grid = right
    axes = grid.subplots(rows, shown, squeeze=False)
    for n, ((x, y), (r, c)) in enumerate(zip(pixels, cells, strict=True)):
        for g in range(shown):
            a = axes[n, g]
            im = a.imshow(chosen[n, g].numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            if n == 0:
                a.set_title(f"group {g}", fontsize=8)
            if g == 0:
                colour = _MARKER_COLOURS[n % len(_MARKER_COLOURS)]
                a.set_ylabel(f"{n + 1}: ({x}, {y})\ncell ({r}, {c})", fontsize=8, color="black")
                for side in a.spines.values():
                    side.set_edgecolor(colour)
                    side.set_linewidth(2)
    grid.colorbar(im, ax=axes, shrink=0.9, label="kernel weight")
    more = f" (groups 0-{shown - 1} of {groups})" if shown < groups else ""
    grid.suptitle(f"{k}x{k} kernels per group at each pixel{more}", fontsize=9)
    fig.suptitle(f"{title}\ninvolution {result.block}: kernels generated from each pixel's features", fontsize=10)
    return save(fig, path)


#: what a kernel map shows at each output cell: (label, colour map, signed)
KERNEL_MAPS = {
    "norm": ("L2 norm of the {k}x{k} kernel", "inferno", False),
    "centre": ("centre tap of the {k}x{k} kernel", "RdBu_r", True),
}


def kernel_map(kernels: Tensor, statistic: str = "norm") -> Tensor:
    """(G, K, K, h, w) kernels -> (G, h, w): each kernel's L2 norm ('norm': how strongly it mixes the
    neighbourhood) or its centre tap ('centre': the weight of the pixel's own value, signed)."""
    if statistic == "norm":
        return kernels.float().flatten(1, 2).norm(dim=1)
    if statistic == "centre":
        k = kernels.shape[1]
        return kernels[:, k // 2, k // 2].float()
    raise VisualizeError(f"unknown kernel map {statistic!r}; choose from {', '.join(KERNEL_MAPS)}")


def draw_kernel_maps(
    result: InvolutionKernels, image: ModelInput, title: str, path: str | Path, statistic: str = "norm"
) -> Path:
    """Picture: for each group, ``kernel_map(statistic)`` at every output cell over the image, on one colour scale
    shared by the groups (symmetric about 0 for the signed centre tap)."""
    plt = pyplot()
    groups, k = result.kernels.shape[:2]
    shown = min(groups, MAX_GROUPS)
    maps = kernel_map(result.kernels[:shown], statistic).numpy()  # (G, h, w)
    label, cmap, signed = KERNEL_MAPS[statistic]
    h, w = image.size
    cols = min(shown, 4)
    rows = -(-shown // cols)
    panel_w = 2.9
    fig = plt.figure(figsize=(cols * panel_w + 1.2, rows * panel_w * h / w + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    vmax = float(np.abs(maps).max()) or 1.0
    for g, ax in enumerate(axes):
        if g >= shown:
            ax.set_axis_off()
            continue
        im = overlay(ax, image.rgb, maps[g], cmap=cmap, vmin=-vmax if signed else 0.0, vmax=vmax)
        ax.set_title(f"group {g}", fontsize=9)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label=label.format(k=k))
    more = f", groups 0-{shown - 1} of {groups}" if shown < groups else ""
    gh, gw = maps.shape[1:]
    what = label.format(k=k)
    fig.suptitle(f"{title}\ninvolution {result.block}: {what} per group, {gh}x{gw} cells{more}", fontsize=10)
    return save(fig, path)
