"""The package's public names and side effects: every name loads on first use, and ``import adaptconv`` registers
the models with timm (whichever is imported first) and the operators with torch.library, without importing timm."""

from __future__ import annotations

import subprocess
import sys

import pytest

import adaptconv


@pytest.mark.parametrize("name", adaptconv.__all__)
def test_every_public_name_works(name):
    assert getattr(adaptconv, name) is not None and name in dir(adaptconv)
    namespace: dict = {}
    exec(f"from adaptconv import {name}", namespace)
    assert namespace[name] is getattr(adaptconv, name)


def test_the_lazy_names_are_the_modules_objects():
    import adaptconv.models as models
    from adaptconv.models.checkpoint import CheckpointError, load_official_checkpoint

    assert (
        adaptconv.load_official_checkpoint is load_official_checkpoint and adaptconv.CheckpointError is CheckpointError
    )
    assert models.create_model is adaptconv.create_model and adaptconv.detection.__name__ == "adaptconv.detection"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        adaptconv.nothing_here  # noqa: B018


def _fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("first", ["adaptconv", "timm"])
def test_timm_knows_the_models_whichever_is_imported_first(first):
    second = "timm" if first == "adaptconv" else "adaptconv"
    code = (f"import sys, {first}\nprint('timm' in sys.modules)\nimport {second}, timm\n"
            "print(type(timm.create_model('rednet26', num_classes=3)).__name__, "
            "timm.list_models('scnet50*'))")  # fmt: skip
    out = _fresh(code).splitlines()
    assert out[0] == ("False" if first == "adaptconv" else "True"), "import adaptconv imports no timm"
    assert out[1] == "RedNet ['scnet50', 'scnet50_v1d']"


def test_import_registers_the_operators():
    assert _fresh("import torch, adaptconv\nprint(torch.ops.adaptconv.involution_aggregate.default.name())") == (
        "adaptconv::involution_aggregate"
    )
