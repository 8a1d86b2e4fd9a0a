"""Packages whose public names load on first use (PEP 562), so that ``adaptconv --help`` and ``adaptconv list``
start without importing timm, torchvision's detection models or the export machinery."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each public name to the module
    (relative to ``package``) that defines it; a name that maps to ``.<name>`` is that submodule itself. A name is
    imported on first access and then kept in the package, as an eager import would have put it there."""

    def __getattr__(name: str) -> object:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(where, package)
        value = module if where == f".{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
