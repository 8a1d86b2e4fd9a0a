"""A skipped test says what it needs in words any user can act on, not in one distribution's package names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DISTRIBUTION_WORDS = re.compile(r"\b(debian|ubuntu|apt-get|apt|dpkg|yum|dnf|rpm)\b", re.I)


def _skip_reasons(tree: ast.AST) -> list[str]:
    reasons = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in ("skip", "skipif", "importorskip", "xfail"):
            args = [k.value for k in node.keywords if k.arg in ("reason", "msg")]
            args += node.args[:1] if name == "skip" else []
            reasons += [a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return reasons


def test_skip_reasons_name_no_distribution_package():
    found = {path.relative_to(TESTS): _skip_reasons(ast.parse(path.read_text())) for path in TESTS.rglob("*.py")}
    assert sum(map(len, found.values())) > 5, "the scan finds the skip reasons"
    bad = {str(p): [r for r in reasons if DISTRIBUTION_WORDS.search(r)] for p, reasons in found.items()}
    assert not {p: r for p, r in bad.items() if r}
