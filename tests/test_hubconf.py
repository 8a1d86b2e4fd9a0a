"""torch.hub: hubconf.py at the repository root has one entry point per registered model (source='local')."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import adaptconv

ROOT = Path(__file__).resolve().parents[1]


def _hubconf():
    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_entry_per_model():
    hub = _hubconf()
    # torch.hub.list's rule (it has no source='local'): public callables of hubconf.py.
    entries = [name for name in dir(hub) if callable(getattr(hub, name)) and not name.startswith("_")]
    assert sorted(entries) == sorted(adaptconv.list_models())
    assert set(hub.dependencies) == {"torch", "timm", "torchvision"}
    assert "78.35% ImageNet top-1" in hub.rednet50.__doc__ and "no published results" in hub.scnet101_v1d.__doc__


@pytest.mark.parametrize("name", ["scnet50_v1d", "rednet26"])
def test_load_builds_the_registered_model(name):
    model = torch.hub.load(str(ROOT), name, source="local", num_classes=7, in_chans=1)
    assert type(model) is type(adaptconv.create_model(name, num_classes=7))
    assert model.fc.out_features == 7 and model.get_submodule(model.pretrained_cfg["first_conv"]).in_channels == 1
    assert model.pretrained_cfg["input_size"] == adaptconv.get_pretrained_config(name).input_size


def test_pretrained_goes_through_the_checkpoint_loader(tmp_path):
    weights = adaptconv.create_model("rednet26").state_dict()
    weights = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in weights.items()}
    torch.save(weights, tmp_path / "rednet26.pth")
    model = torch.hub.load(str(ROOT), "rednet26", source="local", pretrained=str(tmp_path / "rednet26.pth"))
    torch.testing.assert_close(model.state_dict()["fc.weight"], weights["fc.weight"])
    with pytest.raises(adaptconv.CheckpointError, match="no pretrained weights"):
        torch.hub.load(str(ROOT), "scnet101_v1d", source="local", pretrained=True)
