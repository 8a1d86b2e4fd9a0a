"""Inference folding: every batch norm that follows a convolution folded into it, as deployment tools do.

In eval mode a batch norm is a per-channel affine map with fixed statistics, so ``bn(conv(x))`` is one convolution
with scaled weights and a bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``). Which norm follows which convolution
is read from the module tree, by the conventions of the ResNet family (timm's and torchvision's ResNets, SCNet,
RedNet): in an ``nn.Sequential``, a ``Conv2d`` directly followed by a ``BatchNorm2d``; in any other module, children
``conv<k>`` and ``bn<k>`` of the same suffix ``<k>`` (``conv1``/``bn1``, ``conv1_a``/``bn1_a``), where ``conv<k>`` is a
``Conv2d`` (or a Sequential ending in one: a deep stem) and ``bn<k>`` normalises its output channels. Pre-activation
networks, whose norms come before their convolutions, do not follow these conventions and must not be folded.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["conv_norm_pairs", "fuse_for_inference"]

_CONV = re.compile(r"conv(\w*)$")


def _last_conv(module: nn.Module) -> tuple[nn.Module, str] | None:
    """(parent, name) of ``module`` itself if it is a Conv2d, or of the last layer of a Sequential ending in one."""
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Conv2d):
        return module, str(len(module) - 1)
    return None


def conv_norm_pairs(module: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Module, str]]:
    """The (conv parent, conv name, norm parent, norm name) of each batch norm of ``module``'s own children that
    directly follows a convolution, by the conventions in this module's docstring."""
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        for first, second in zip(names, names[1:], strict=False):
            if isinstance(children[first], nn.Conv2d) and isinstance(children[second], _BatchNorm):
                yield module, first, module, second
        return
    for name, child in children.items():
        found = _CONV.match(name)
        norm = children.get(f"bn{found.group(1)}") if found else None
        if not isinstance(norm, _BatchNorm):
            continue
        parent, conv_name = (module, name) if isinstance(child, nn.Conv2d) else (_last_conv(child) or (None, None))
        if parent is not None and getattr(parent, conv_name).out_channels == norm.num_features:
            yield parent, conv_name, module, f"bn{found.group(1)}"


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every batch norm that follows a convolution folded into it (the
    convolution gets the norm's scale in its weights and a bias; the norm becomes ``nn.Identity``).

    The same function as ``model.eval()`` within floating-point round-off, with fewer operations: for SCNet, RedNet
    (their 1x1 convs, SCNet's merged layers and calibration convs, RedNet's kernel-generating convs) and the
    ResNets of timm and torchvision. ``model`` is left as it is. The copy is for inference: its norms are gone, so
    training it would not normalise. Its state_dict has the folded convolutions' biases and no norm entries.
    """
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        for conv_parent, conv_name, norm_parent, norm_name in list(conv_norm_pairs(module)):
            conv, norm = getattr(conv_parent, conv_name), getattr(norm_parent, norm_name)
            setattr(conv_parent, conv_name, fuse_conv_bn_eval(conv, norm))
            setattr(norm_parent, norm_name, nn.Identity())
    return folded
