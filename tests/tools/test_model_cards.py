"""tools/model_cards.py: the committed docs/models pages are exactly what the generator writes from the table now."""

from __future__ import annotations

from pathlib import Path

import pytest

import adaptconv
from adaptconv.models import PRETRAINED
from tools.model_cards import CARDS, main, render_card, render_index, write_cards

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models"
MODELS = adaptconv.list_models()
HINT = "the model cards are stale: run `python -m tools.model_cards` and commit docs/models"


@pytest.mark.parametrize("name", MODELS)
def test_committed_card_is_current(name):
    assert (DOCS / f"{name}.md").read_text() == render_card(name), HINT


def test_committed_index_is_current_and_complete():
    assert CARDS == DOCS  # the generator's default folder is where the cards are committed
    assert (DOCS / "README.md").read_text() == render_index(), HINT
    assert sorted(p.name for p in DOCS.iterdir()) == sorted(["README.md", *(f"{n}.md" for n in MODELS)])


def test_card_content():
    card = render_card("rednet50")
    for fact in [
        "15.54M (15,540,806) | 15.54M",  # measured parameters beside the paper's
        "2.649G | 2.71G FLOPs",
        "78.35 / 94.13",
        "RedNet-50: (3, 4, 6, 3) involution bottlenecks.",  # the registered builder's docstring
        "Stages: (3, 4, 6, 3) blocks",  # measured on the model
        "Code licence: MIT (https://github.com/d-li14/involution",
        'torch.hub.load("path/to/adaptconv", "rednet50", source="local"',
        "adaptconv export rednet50 --format onnx --pretrained rednet50.pth",
    ]:
        assert fact in card, fact
    unreleased = render_card("scnet101_v1d")
    assert "the authors released no weights" in unreleased and "Weights:" not in unreleased
    assert "--pretrained official" in render_card("scnet50")


def test_every_model_has_its_licence_and_repository_in_the_table():
    for name, cfg in PRETRAINED.items():
        assert cfg.license == "MIT" and cfg.repository.startswith("https://github.com/"), name
        assert "no licence of their own" in cfg.weights_terms


def test_check_mode_reports_stale_cards(tmp_path, capsys, monkeypatch):
    assert write_cards(tmp_path, names=["rednet26"]) == ["README.md", "rednet26.md"]
    assert write_cards(tmp_path, check=True, names=["rednet26"]) == []
    (tmp_path / "rednet26.md").write_text("edited by hand\n")
    assert write_cards(tmp_path, check=True, names=["rednet26"]) == ["rednet26.md"]
    monkeypatch.setattr("tools.model_cards.list_models", lambda: ["rednet26"])  # one card: fast
    assert main(["--output", str(tmp_path), "--check"]) == 1
    assert "2 card(s) stale: README.md, rednet26.md" in capsys.readouterr().out  # the index lists one model now
    assert main(["--output", str(tmp_path)]) == 0 and main(["--output", str(tmp_path), "--check"]) == 0
