"""The kernels drawn are the ones the involution applies, at the pixels asked for, and they are drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from adaptconv.visualize import (
    VisualizeError,
    draw_involution_kernels,
    draw_kernel_maps,
    involution_blocks,
    involution_kernels,
)
from adaptconv.visualize.involution_kernels import kernel_map


@pytest.mark.parametrize("block", ["conv1.1", "layer2.0", "layer2.1.conv2"])  # stem 3x3; 7x7 stride 2; stride 1
def test_kernels_shown_are_the_kernels_the_layer_applies(rednet, photo, block):
    """Applying the returned kernels to the layer's input (unfold, weight each tap, sum) gives the layer's output."""
    layer = involution_blocks(rednet)[block.removesuffix(".conv2")]
    with torch.no_grad():  # a non-zero kernel bias, so that the bias is part of what is compared
        layer.span.bias.copy_(torch.randn(layer.span.bias.shape, generator=torch.Generator().manual_seed(2)))
    seen = []
    handle = layer.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
    try:
        result = involution_kernels(rednet, photo, block)
    finally:
        handle.remove()
    x, out = seen[0]
    g, k = layer.groups, layer.kernel_size
    ho, wo = out.shape[-2:]
    assert result.kernels.shape == (g, k, k, ho, wo) and result.input_size == tuple(x.shape[-2:])
    patches = F.unfold(x, k, dilation=layer.dilation, padding=layer.padding, stride=layer.stride)
    patches = patches.view(1, g, x.shape[1] // g, k, k, ho, wo)
    rebuilt = (patches * result.kernels.unsqueeze(0).unsqueeze(2)).sum((3, 4)).view(out.shape)
    torch.testing.assert_close(rebuilt, out, rtol=1e-4, atol=1e-5)


def test_pixels_map_to_their_cell_and_window(rednet, photo):
    result = involution_kernels(rednet, photo, "layer2.0")  # input at stride 4, kernels at stride 8
    assert result.cell == 4 and result.stride == 2
    assert result.grid_cell(x=95, y=0) == (0, 11) and result.grid_cell(x=40, y=17) == (2, 5)
    left, top, width, height = result.window(2, 5)
    # the 7 x 7 window of cell (2, 5) starts 3 input cells before input cell (4, 10), 4 pixels a cell
    assert (left, top, width, height) == ((10 - 3) * 4 - 0.5, (4 - 3) * 4 - 0.5, 28, 28)


def test_kernel_maps(rednet, photo):
    kernels = involution_kernels(rednet, photo, "conv1.1").kernels  # 3 x 3 kernels
    torch.testing.assert_close(kernel_map(kernels, "centre"), kernels[:, 1, 1])
    torch.testing.assert_close(kernel_map(kernels, "norm"), kernels.pow(2).sum((1, 2)).sqrt())
    with pytest.raises(VisualizeError, match="unknown kernel map"):
        kernel_map(kernels, "mean")


def test_default_block_and_errors(rednet, scnet, photo, tmp_path):
    assert involution_kernels(rednet, photo).block == "layer2.1"
    with pytest.raises(VisualizeError, match=r"no involution block 'layer5.0'.*conv1.1, layer1.0, layer2.0-1"):
        involution_kernels(rednet, photo, "layer5.0")
    with pytest.raises(VisualizeError, match="no involution"):
        involution_kernels(scnet, photo)
    result = involution_kernels(rednet, photo)
    with pytest.raises(VisualizeError, match=r"pixel \(96, 10\) is outside the 96x64"):
        draw_involution_kernels(result, photo, [(96, 10)], "test", tmp_path / "k.png")


def test_pictures(rednet, photo, tmp_path):
    result = involution_kernels(rednet, photo, "layer3.0")  # 16 groups: 8 are drawn
    kernels = draw_involution_kernels(result, photo, [(10, 10), (50, 30)], "test", tmp_path / "kernels.png")
    maps = draw_kernel_maps(result, photo, "test", tmp_path / "maps.png", "centre")
    # 100 dpi: kernels (4.6 in image + 8 groups x 0.95 in + 1.4 in) wide; maps 4 columns x 2 rows of 2.9 in panels
    for path, size in [(kernels, (1360, 446)), (maps, (1280, 476))]:
        with Image.open(path) as png:
            assert png.size == size
            assert len(np.unique(np.asarray(png.convert("L")))) > 50
