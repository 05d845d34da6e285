"""The deployment files: ``docker-compose.yml`` validated by Compose, the Dockerfile's basics.

No Docker engine is needed (nor run): ``config`` only parses, interpolates and validates.
Compose v2 (``docker compose``) is used when the docker client has it, else Compose v1
(``docker-compose``, Debian's ``docker-compose`` package); neither fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.subprocesses import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"postgres", "redis", "migrate", "worker", "beat", "flower", "producer"}


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return [legacy]
    raise AssertionError(
        "Neither `docker compose` nor `docker-compose` is installed: install the Compose "
        "plugin, or `apt-get install docker-compose`"
    )


def _env(**overrides: str) -> dict[str, str]:
    # The file's defaults must hold on their own: drop anything it interpolates.
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    base = {key: value for key, value in os.environ.items() if key not in names}
    return {**base, **overrides}


def _config(compose_file: Path, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    files = ["-f", str(compose_file), "--project-directory", str(ROOT)]
    return subprocess.run(
        [*_compose_command(), *files, "config", *args],
        env=_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_is_valid_with_its_defaults() -> None:
    quiet = _config(COMPOSE_FILE, "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    services = _config(COMPOSE_FILE, "--services")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == SERVICES


def test_compose_settings_come_from_the_environment() -> None:
    result = _config(
        COMPOSE_FILE, CELERY_DURABLE_IMPORTS="shop.workflows", CELERY_WORKER_REPLICAS="3"
    )
    assert result.returncode == 0, result.stderr
    assert "CELERY_DURABLE_IMPORTS: shop.workflows" in result.stdout
    assert re.search(r"replicas: '?3'?\n", result.stdout)
    defaults = _config(COMPOSE_FILE)
    assert "CELERY_DURABLE_IMPORTS: worker.examples" in defaults.stdout
    assert "stop_signal: SIGTERM" in defaults.stdout
    assert "condition: service_completed_successfully" in defaults.stdout


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    # The validation is real: a wrong depends_on condition fails it.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("service_completed_successfully", "service_done")
    )
    result = _config(broken, "--quiet")
    assert result.returncode != 0
    # Compose v1 quotes the value, v2 names the field.
    assert "depends_on.migrate.condition" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "line",
    [
        r"^FROM python:3\.11-slim$",
        r'^RUN pip install "/src\[flower\]"',
        r"^USER app$",
        r"^HEALTHCHECK .*\n.*celery -A worker\.app inspect ping",
        r"^STOPSIGNAL SIGTERM$",
    ],
)
def test_dockerfile_has(line: str) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(line, dockerfile, re.MULTILINE), line
