"""The deployment files: ``docker-compose.yml`` checked against the Compose schema, the Dockerfile.

No Docker tool is needed. The file is read with PyYAML, interpolated as Compose does
(``${NAME:-default}``, ``${NAME-default}``, ``${NAME}``, ``$NAME``, ``$$``) and validated
with ``jsonschema`` against the Compose Specification's JSON schema
(github.com/compose-spec/compose-spec, ``schema/compose-spec.json``) as the dev dependency
``check-jsonschema`` ships it: ``check_jsonschema/builtin_schemas/vendor/compose-spec.json``,
which that package vendors from the specification's repository. Nothing is copied here.

Where Compose is installed as well (``docker compose``, else ``docker-compose``), each test
also runs its ``config`` on the same file; it parses, interpolates and validates, no engine
runs. Without Compose that extra check is not part of the test: nothing is skipped.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.integration.subprocesses import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"postgres", "redis", "migrate", "worker", "beat", "flower", "dashboard", "producer"}
# The services built from the x-app anchor: they share its environment.
APP_SERVICES = SERVICES - {"postgres", "redis"}

# Compose's interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default}, $NAME.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


# --- the schema check (always) ---------------------------------------------------------


@cache
def _validator() -> jsonschema.protocols.Validator:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    assert schema.get("title") == "Compose Specification", schema.get("title")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _env(**overrides: str) -> dict[str, str]:
    # The file's defaults must hold on their own: drop anything it interpolates.
    names = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    base = {key: value for key, value in os.environ.items() if key not in names}
    return {**base, **overrides}


def _interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        name = match["braced"]
        if name is None:
            raise AssertionError(f"interpolation this test does not implement: {value!r}")
        if match["operator"] == ":-":
            return env.get(name) or match["default"]
        if match["operator"] == "-":
            return env.get(name, match["default"])
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def _load(compose_file: Path, **overrides: str) -> dict[str, Any]:
    document = yaml.safe_load(compose_file.read_text())
    assert isinstance(document, dict), document
    interpolated = _interpolate(document, _env(**overrides))
    assert isinstance(interpolated, dict)
    return interpolated


def _leaves(errors: Iterator[jsonschema.ValidationError]) -> Iterator[jsonschema.ValidationError]:
    # A failed oneOf/anyOf keeps the reasons of each branch in its context.
    for error in errors:
        if error.context:
            yield from _leaves(iter(error.context))
        else:
            yield error


def _schema_errors(document: Mapping[str, Any]) -> list[str]:
    """Each schema violation as ``dotted.path: message``, the innermost ones."""
    return sorted(
        ".".join(str(part) for part in error.absolute_path) + ": " + error.message
        for error in _leaves(_validator().iter_errors(document))
    )


# --- Compose's own ``config`` (where Compose is installed) -----------------------------


@cache
def _compose_command() -> tuple[str, ...] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        return (legacy,)
    return None


def _config(compose_file: Path, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    command = _compose_command()
    assert command is not None
    files = ["-f", str(compose_file), "--project-directory", str(ROOT)]
    return subprocess.run(
        [*command, *files, "config", *args],
        env=_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the tests -------------------------------------------------------------------------


def test_compose_file_is_valid_with_its_defaults() -> None:
    document = _load(COMPOSE_FILE)
    assert _schema_errors(document) == []
    services = document["services"]
    assert set(services) == SERVICES
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment["CELERY_DURABLE_IMPORTS"] == "worker.examples", name
        assert services[name]["stop_signal"] == "SIGTERM", name
    for name in ("worker", "beat", "producer"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    assert int(services["worker"]["deploy"]["replicas"]) == 2
    # Flower has no authentication by default: it listens on loopback only.
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    # The dashboard too (its actions need a token or a login, read-only without).
    assert services["dashboard"]["ports"] == ["127.0.0.1:8090:8090"]
    assert services["dashboard"]["environment"]["CELERY_DURABLE_DASHBOARD_TOKEN"] == ""
    # $$ is Compose's escape: the container's shell sees $POSTGRES_USER.
    assert '"$POSTGRES_USER"' in services["postgres"]["healthcheck"]["test"][1]

    if _compose_command() is not None:
        quiet = _config(COMPOSE_FILE, "--quiet")
        assert quiet.returncode == 0, quiet.stderr
        listed = _config(COMPOSE_FILE, "--services")
        assert listed.returncode == 0, listed.stderr
        assert set(listed.stdout.split()) == SERVICES
        defaults = _config(COMPOSE_FILE)
        assert defaults.returncode == 0, defaults.stderr
        assert "CELERY_DURABLE_IMPORTS: worker.examples" in defaults.stdout
        assert "stop_signal: SIGTERM" in defaults.stdout
        assert "condition: service_completed_successfully" in defaults.stdout


def test_compose_settings_come_from_the_environment() -> None:
    overrides = {
        "CELERY_DURABLE_IMPORTS": "shop.workflows",
        "CELERY_WORKER_REPLICAS": "3",
        "FLOWER_BIND_ADDRESS": "0.0.0.0",
    }
    document = _load(COMPOSE_FILE, **overrides)
    assert _schema_errors(document) == []
    services = document["services"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["CELERY_DURABLE_IMPORTS"] == "shop.workflows", name
    assert int(services["worker"]["deploy"]["replicas"]) == 3
    assert services["flower"]["ports"] == ["0.0.0.0:5555:5555"]

    if _compose_command() is not None:
        result = _config(COMPOSE_FILE, **overrides)
        assert result.returncode == 0, result.stderr
        assert "CELERY_DURABLE_IMPORTS: shop.workflows" in result.stdout
        assert re.search(r"replicas: '?3'?\n", result.stdout)


@pytest.mark.parametrize(
    ("old", "new", "path", "mentions"),
    [
        # Not one of the conditions Compose knows.
        (
            "condition: service_completed_successfully",
            "condition: service_done",
            "services.worker.depends_on.migrate.condition",
            "'service_done'",
        ),
        # A wrong-typed field: ports is a list, not a string.
        (
            "    ports:\n      # Local only by default: Flower has no authentication unless you"
            ' configure it.\n      - "${FLOWER_BIND_ADDRESS:-127.0.0.1}:${FLOWER_PORT:-5555}:5555"',
            '    ports: "5555:5555"',
            "services.flower.ports",
            "'5555:5555'",
        ),
        # A wrong-typed field: retries is an integer.
        (
            "      retries: 3\n",
            "      retries: [3]\n",
            "services.flower.healthcheck.retries",
            "[3]",
        ),
        # A misspelt key is an unknown service property.
        (
            "    stop_grace_period: 10s\n",
            "    stop_grace_period_s: 10s\n",
            "services.producer",
            "'stop_grace_period_s'",
        ),
    ],
    ids=["depends-on-condition", "ports-type", "retries-type", "unknown-key"],
)
def test_compose_rejects_a_broken_file(
    tmp_path: Path, old: str, new: str, path: str, mentions: str
) -> None:
    # The validation is real: the same validator rejects each of these.
    text = COMPOSE_FILE.read_text()
    assert text.count(old) >= 1, old
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new))

    errors = _schema_errors(_load(broken))
    assert any(error.startswith(path + ":") and mentions in error for error in errors), errors

    if _compose_command() is not None:
        result = _config(broken, "--quiet")
        assert result.returncode != 0, result.stdout
        if path.endswith("depends_on.migrate.condition"):
            # Compose v1 quotes the value, v2 names the field.
            assert "depends_on.migrate.condition" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "line",
    [
        r"^FROM python:3\.11-slim$",
        r'^RUN pip install "/src\[flower,dashboard\]"',
        r"^USER app$",
        r"^HEALTHCHECK .*\n.*celery -A worker\.app inspect ping",
        r"^STOPSIGNAL SIGTERM$",
    ],
)
def test_dockerfile_has(line: str) -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(line, dockerfile, re.MULTILINE), line
