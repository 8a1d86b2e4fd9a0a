"""Finding the layer a picture shows by the name of its block, and naming the blocks there are."""

from __future__ import annotations

import torch.nn as nn

from .errors import VisualizeError

__all__ = ["find_layer", "layers_by_block"]


def layers_by_block(model: nn.Module, layer_type: type[nn.Module], suffix: str) -> dict[str, nn.Module]:
    """The ``layer_type`` modules of ``model`` by block name: the module's name less ``suffix`` (the layer's
    name inside its block, e.g. '.scconv'), so that 'layer2.3' names the layer of block 'layer2.3'."""
    return {
        name.removesuffix(suffix): module for name, module in model.named_modules() if isinstance(module, layer_type)
    }


def find_layer(layers: dict[str, nn.Module], block: str, suffix: str, what: str) -> tuple[str, nn.Module]:
    """The layer of ``block`` (the block's name, or the layer's own name with ``suffix``); a ``VisualizeError``
    lists the blocks there are."""
    name = block.removesuffix(suffix)
    if name not in layers:
        raise VisualizeError(f"no {what} block {block!r} in this model; its blocks are {block_ranges(list(layers))}")
    return name, layers[name]


def block_ranges(names: list[str]) -> str:
    """Block names compactly, one range per stage: 'layer1.0-2, layer2.0-3, ...'."""
    stages: dict[str, list[str]] = {}
    for n in names:
        stage, _, index = n.rpartition(".")
        stages.setdefault(stage, []).append(index)
    return ", ".join(f"{s}.{i[0]}-{i[-1]}" if len(i) > 1 else f"{s}.{i[0]}" for s, i in stages.items())
