"""Layers computed as one that keep the state_dict of the layers they merge.

A block that runs two convolutions (or norms) on the same input as one layer, with their output channels side by
side, still reads and writes its state_dict under the names and shapes of the separate layers: a state_dict hook
splits each merged tensor along its first dimension into its parts, in the separate layers' order, and a load
pre-hook concatenates the parts back. Every tool that goes through ``state_dict()`` / ``load_state_dict()``
(checkpoints, official weights, EMA copies) sees the separate layers. The parts in a state_dict are views of the
merged tensors, as a state_dict's tensors are views of the parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
import torch.nn as nn

__all__ = ["keep_separate_keys"]


def keep_separate_keys(module: nn.Module, parts: Mapping[str, tuple[str, ...]], order: tuple[str, ...]) -> None:
    """Give ``module`` the state_dict of the separate layers its merged layers stand for.

    ``parts`` maps each merged child (e.g. ``"conv1"``) to the names of the layers it merges, in the order of its
    output channels, which it shares equally (``("conv1_a", "conv1_b")``). ``order`` lists name prefixes in the
    order the separate layers' keys come in; the module's other keys follow them, in their own order. A 0-d tensor
    (batch norm's ``num_batches_tracked``) is the same count for every part, and is read back from the first.
    """
    module._register_state_dict_hook(functools.partial(_split, parts=dict(parts), order=order))
    module._register_load_state_dict_pre_hook(functools.partial(_merge, parts=dict(parts)))


def _split(module: nn.Module, state: dict, prefix: str, local_metadata, *, parts, order) -> None:
    """State_dict hook: the merged tensors under the separate names, the module's keys in the separate order."""
    mine = [k for k in state if k.startswith(prefix)]
    entries = [(k, state.pop(k)) for k in mine]
    renamed = []
    for key, value in entries:
        child, _, leaf = key[len(prefix) :].partition(".")
        names = parts.get(child)
        if names is None:
            renamed.append((key, value))
            continue
        pieces = value.chunk(len(names)) if value.dim() else [value] * len(names)
        renamed += [(f"{prefix}{name}.{leaf}", piece) for name, piece in zip(names, pieces, strict=True)]

    def rank(item) -> int:
        local = item[0][len(prefix) :]
        return next((i for i, p in enumerate(order) if local.startswith(p)), len(order))

    state.update(sorted(renamed, key=rank))  # sorted is stable: each layer's keys keep their order
    if hasattr(state, "_metadata"):  # the merged children's metadata stand for their parts
        for child, names in parts.items():
            meta = state._metadata.get(f"{prefix}{child}")
            if meta is not None:
                state._metadata.update({f"{prefix}{name}": meta for name in names})


def _merge(state: dict, prefix: str, local_metadata, strict, missing_keys, unexpected_keys, error_msgs, *,
           parts) -> None:  # fmt: skip
    """Load pre-hook: the separate layers' tensors concatenated into the merged ones, where every part is given."""
    for child, names in parts.items():
        leaves = {k[len(f"{prefix}{names[0]}.") :] for k in state if k.startswith(f"{prefix}{names[0]}.")}
        for leaf in leaves:
            keys = [f"{prefix}{name}.{leaf}" for name in names]
            if not all(k in state for k in keys):
                continue  # left as it is: strict loading reports what is missing
            values = [state.pop(k) for k in keys]
            merged = values[0] if values[0].dim() == 0 else torch.cat(values)
            state[f"{prefix}{child}.{leaf}"] = merged
