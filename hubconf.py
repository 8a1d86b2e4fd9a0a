"""torch.hub entry points: ``torch.hub.load('<owner>/adaptconv', 'rednet50', pretrained=True)``, or with a local
clone ``torch.hub.load('path/to/adaptconv', 'rednet50', source='local')``. One entry per registered model, each
``create_model(name, pretrained=False, **kwargs)`` (``num_classes``, ``in_chans``, ``features_only``, ...).
"""

import os
import sys

dependencies = ["torch", "timm", "torchvision"]

# torch.hub puts the repository root on sys.path; the package lives under src/ (src layout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

import adaptconv.models as _models  # noqa: E402  (needs the path above)


def _entry_point(name):
    def entry(pretrained=False, **kwargs):
        return _models.create_model(name, pretrained=pretrained, **kwargs)

    cfg = _models.get_pretrained_config(name)
    top1 = (
        f"{cfg.paper_top1:.2f}% ImageNet top-1 in the paper" if cfg.paper_top1 is not None else "no published results"
    )
    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"{name} ({top1}). pretrained: False, True (official weights), or a checkpoint path or URL; "
        "other keyword arguments go to adaptconv.create_model."
    )
    return entry


globals().update({_name: _entry_point(_name) for _name in _models.list_models()})
