"""The ``dbos`` package DBOS Transact's tests import, re-exporting celery_durable.

``python -m bench dbos_suite`` copies this file to ``dbos/__init__.py`` beside DBOS's
tests: a porting user's only change is the import. Every name comes from
celery_durable (or ``celery_durable.error``, which is also ``dbos.error``). A name that
DBOS has and celery_durable lacks is an *absent placeholder*: importing it works (so a
test file that imports it still runs its other tests), using it raises
``NotImplementedError`` naming it. Every other module under ``dbos`` (``dbos._sys_db``,
``dbos._error``, ``dbos.cli.cli``...) is made on import the same way: celery_durable's
name where it has one, else a placeholder.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

import celery_durable
import celery_durable.error
from celery_durable import *  # noqa: F403

error = celery_durable.error


class _AbsentType(type):
    """The metaclass of placeholders: any use of one says what is absent."""

    def __getattr__(cls, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise NotImplementedError(f"{cls.__qualname__}.{attribute}: absent in celery_durable")

    def __getitem__(cls, item: Any) -> Any:
        return cls  # Generic[...] in annotations


def absent(qualified_name: str) -> type:
    """A placeholder class: subclassable, usable in annotations, failing when used."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{qualified_name}: absent in celery_durable")

    module, _, name = qualified_name.rpartition(".")
    return _AbsentType(
        name, (), {"__init__": __init__, "__qualname__": qualified_name, "__module__": module}
    )


def _global_instance() -> Any:
    """``dbos._dbos._dbos_global_instance``: None before ``DBOS(...)``, else an object
    whose ``_launched`` says whether ``DBOS.launch()`` ran (DBOS's
    tests/client_collateral.py reads it as it loads, to register its queues once)."""
    service = celery_durable.DBOS._current_service()
    return None if service is None else types.SimpleNamespace(_launched=service.launched)


# Private names DBOS's test modules read as they load (so the whole file would fail to
# import without them), answered from celery_durable's state. The tests that use them
# still count as reaching into DBOS's internals.
_PRIVATE_EQUIVALENTS: dict[str, Any] = {
    "dbos._dbos._dbos_global_instance": _global_instance,
    # tests/test_streaming.py sizes its streams by DBOS's read batch; celery_durable
    # reads a stream without batches, so any size serves.
    "dbos._core._STREAM_READ_BATCH_SIZE": lambda: 100,
}


def _lookup(module_name: str, name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    equivalent = _PRIVATE_EQUIVALENTS.get(f"{module_name}.{name}")
    if equivalent is not None:
        return equivalent()
    for source in (celery_durable, celery_durable.error):
        if hasattr(source, name):
            return getattr(source, name)
    if name.startswith("_") and module_name == __name__:
        # `from dbos import _workflow_commands`: a private module.
        return importlib.import_module(f"{module_name}.{name}")
    return absent(f"{module_name}.{name}")


def __getattr__(name: str) -> Any:
    return _lookup(__name__, name)


class _ShimModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes any ``dbos.<anything>`` module on import (a package, so deeper ones too)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(__name__ + "."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda name: _lookup(spec.name, name)  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


sys.meta_path.insert(0, _ShimModules())
