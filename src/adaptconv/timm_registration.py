"""Registering adaptconv's models with timm, without making ``import adaptconv`` import timm.

timm has no hook for plug-in models: a model exists in its registry once the module that defines it is imported.
Importing timm takes longer than importing torch, and ``adaptconv --help`` or ``adaptconv list`` need neither it
nor the models. So ``import adaptconv`` calls :func:`register_when_timm_is_imported`: if timm is already imported,
the models are registered at once; otherwise a finder on ``sys.meta_path`` waits for ``import timm`` and registers
them as soon as timm has finished loading. Either way ``timm.create_model('rednet50')`` works after
``import adaptconv``, in whichever order the two are imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["register_models", "register_when_timm_is_imported"]

#: the module whose import registers every model (it imports the model modules)
MODELS = "adaptconv.models.factory"


def register_models() -> None:
    """Import the model modules, which register the models with timm."""
    importlib.import_module(MODELS)


class _RegisterAfterTimm(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``timm`` through the other finders and registers the models once its loader has run."""

    def __init__(self) -> None:
        self.loader: importlib.abc.Loader | None = None

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)  # once: the search below, and every later import, go to the real finders
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return spec
        self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader
        self.loader.exec_module(module)
        register_models()


def register_when_timm_is_imported() -> None:
    """Register the models now if timm is imported, else right after ``import timm`` (see the module's note)."""
    if "timm" in sys.modules:
        register_models()
    elif not any(isinstance(f, _RegisterAfterTimm) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTimm())
