"""SCNet and RedNet classifiers and backbones, their configurations and official checkpoints.

Names load on first use (:mod:`adaptconv.lazy`): reading the configuration table (``adaptconv list``) imports no
timm. Importing the model modules registers the models with timm (``import adaptconv`` arranges that).
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from ._builder import official_weights_file
    from .checkpoint import (
        CheckpointError,
        load_official_checkpoint,
        official_key_map,
        official_state_dict,
        read_checkpoint,
    )
    from .factory import create_model, list_models
    from .folding import fuse_for_inference
    from .pretrained import PRETRAINED, PretrainedConfig, get_pretrained_config
    from .rednet import InvolutionBottleneck, RedNet, rednet26, rednet38, rednet50, rednet101, rednet152
    from .scnet import OfficialSCBottleneck, SCBottleneck, SCNet, scnet50, scnet50_v1d, scnet101, scnet101_v1d

__all__ = [
    "PRETRAINED",
    "CheckpointError",
    "InvolutionBottleneck",
    "OfficialSCBottleneck",
    "PretrainedConfig",
    "RedNet",
    "SCBottleneck",
    "SCNet",
    "create_model",
    "fuse_for_inference",
    "get_pretrained_config",
    "list_models",
    "load_official_checkpoint",
    "official_key_map",
    "official_state_dict",
    "official_weights_file",
    "read_checkpoint",
    "rednet26",
    "rednet38",
    "rednet50",
    "rednet101",
    "rednet152",
    "scnet50",
    "scnet50_v1d",
    "scnet101",
    "scnet101_v1d",
]

_MODULES = {
    "._builder": ["official_weights_file"],
    ".checkpoint": ["CheckpointError", "load_official_checkpoint", "official_key_map", "official_state_dict",
                    "read_checkpoint"],
    ".factory": ["create_model", "list_models"],
    ".folding": ["fuse_for_inference"],
    ".pretrained": ["PRETRAINED", "PretrainedConfig", "get_pretrained_config"],
    ".rednet": ["InvolutionBottleneck", "RedNet", "rednet26", "rednet38", "rednet50", "rednet101", "rednet152"],
    ".scnet": ["OfficialSCBottleneck", "SCBottleneck", "SCNet", "scnet50", "scnet50_v1d", "scnet101", "scnet101_v1d"],
}  # fmt: skip
__getattr__, __dir__ = lazy_exports(__name__, {name: module for module, names in _MODULES.items() for name in names})
