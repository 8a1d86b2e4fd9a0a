"""adaptconv: self-calibrated convolution (SCNet, CVPR 2020) and involution (RedNet, CVPR 2021) for PyTorch.

Importing the package registers its operators with ``torch.library`` and its models with timm, so
``timm.create_model('rednet50')`` works too (:mod:`adaptconv.timm_registration`: timm itself is imported only when
something needs it). The other names, and ``adaptconv.detection``, load on first use.
"""

from typing import TYPE_CHECKING

from .lazy import lazy_exports
from .ops import Involution2d, SelfCalibratedConv2d, involution_aggregate
from .timm_registration import register_when_timm_is_imported

if TYPE_CHECKING:
    from . import detection  # noqa: F401
    from .models import (
        CheckpointError,
        create_model,
        fuse_for_inference,
        get_pretrained_config,
        list_models,
        load_official_checkpoint,
        official_state_dict,
    )

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Involution2d",
    "SelfCalibratedConv2d",
    "create_model",
    "fuse_for_inference",
    "get_pretrained_config",
    "involution_aggregate",
    "list_models",
    "load_official_checkpoint",
    "official_state_dict",
]

_LAZY = {"detection": ".detection"} | {
    name: ".models"
    for name in (
        "CheckpointError",
        "create_model",
        "fuse_for_inference",
        "get_pretrained_config",
        "list_models",
        "load_official_checkpoint",
        "official_state_dict",
    )  # fmt: skip
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

register_when_timm_is_imported()
