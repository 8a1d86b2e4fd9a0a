"""docs/design.md stays the map of the package: every module is named there, and the imports follow its table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "adaptconv"
DESIGN = (ROOT / "docs" / "design.md").read_text()
MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("module", MODULES)
def test_every_module_is_on_the_map(module):
    assert f"`{module}`" in DESIGN, f"src/adaptconv/{module} is not described in docs/design.md"


def allowed_imports() -> dict[str, set[str]]:
    """The layer table of design.md: sub-package -> the sub-packages (and top-level modules) it may import."""
    rows = re.findall(r"^\| `(\w+)/` \| [^|]+ \| ([^|]+) \|$", DESIGN, re.M)
    table: dict[str, set[str]] = {}
    for name, may in rows:
        table[name] = (
            set() if "nothing" in may else {m.strip("/").removesuffix(".py") for m in re.findall(r"`([\w./]+)`", may)}
        )
    for name, may in rows:
        if "everything above" in may:
            table[name] = set(table) - {name} | {"layers"}
    return table


def imports_of(path: Path) -> list[tuple[str, str]]:
    """(first component inside the package, full dotted target) of every import of the package in ``path``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[: len(parts) - node.level])
            target = base + (node.module.split(".") if node.module else [])
            names = [target + [alias.name] for alias in node.names] if not node.module else [target]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = [m.split(".")[1:] for m in modules if m.split(".")[0] == "adaptconv"]
        else:
            continue
        # names of the package's root (``from .. import __version__``) are not modules: only modules are layered
        found += [
            (t[0], ".".join(t)) for t in names if t and ((PACKAGE / t[0]).is_dir() or (PACKAGE / f"{t[0]}.py").exists())
        ]
    return found


def test_the_table_covers_every_sub_package():
    table = allowed_imports()
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(table)


@pytest.mark.parametrize("module", MODULES)
def test_imports_follow_the_layers_and_skip_other_packages_private_modules(module):
    path = PACKAGE / module
    own = Path(module).parts[0].removesuffix(".py")
    table = allowed_imports()
    for first, target in imports_of(path):
        if first == own or own not in table:  # inside its own sub-package, or a top-level module
            continue
        top_level_module = (PACKAGE / f"{first}.py").exists()  # layers.py, files.py, ...: any layer may use them
        assert first in table[own] or top_level_module, f"{module} imports {target}: not allowed by docs/design.md"
        assert not any(p.startswith("_") for p in target.split(".")[1:]), f"{module} imports private {target}"
