"""Which weights a picture shows: ``--pretrained`` as everywhere; left out, random weights and a note that says
how to get the official ones (even where they are on this machine: using them is asked for, not guessed)."""

from __future__ import annotations

import pytest
import torch

from adaptconv.models import official_weights_file
from adaptconv.visualize import load_model


def test_random_weights_unless_asked_even_where_official_ones_are_cached():
    path = official_weights_file("rednet26")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(load_model("rednet26").model.state_dict(), path)
    loaded = load_model("rednet26")
    assert loaded.weights == "random weights"
    assert "on this machine: --pretrained official uses them" in loaded.note
    assert load_model("rednet26", "official").weights == "official weights"
    assert load_model("rednet26", True).note is None


def test_the_old_none_spelling_still_works_with_a_warning():
    with pytest.warns(FutureWarning, match="deprecated"):
        assert load_model("scnet50", "none").weights == "random weights"
    assert "--pretrained official downloads" in load_model("scnet50").note
