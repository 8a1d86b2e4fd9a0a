"""Shared by the picture tests: small models on the default photo at 64 px, and no downloads."""

from __future__ import annotations

import pytest
import torch

from adaptconv.visualize import load_image, load_model, prepare_input

#: the short side of the model input in these tests: 64 x 96 for the default photo, fast on a CPU
SIZE = 64


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch, tmp_path):
    """An empty torch.hub folder (no cached official weights) and no network: nothing may download."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture(scope="module")
def photo():
    """The default photo as a 64 x 96 model input."""
    return prepare_input(load_image(None), SIZE, name="chelsea.jpg")


@pytest.fixture(scope="module")
def scnet():
    return load_model("scnet50").model


@pytest.fixture(scope="module")
def rednet():
    return load_model("rednet26").model
