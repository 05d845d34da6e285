"""``dbos-config.yaml``, read as DBOS's command line reads it: the file in the current
directory, ``${VAR}`` replaced by the environment variable (empty when unset).

The commands that follow ``dbos``'s use it for what ``dbos`` uses it for: the system
database URL when none is given, ``start``'s commands, ``migrate``'s extra commands and
the application's name.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import click

CONFIG_FILE = "dbos-config.yaml"

_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def load(path: str = CONFIG_FILE) -> dict[str, Any] | None:
    """The configuration file's settings, or None when there is no such file.

    Raises:
        click.ClickException: the file is not YAML mapping, or PyYAML is missing.
    """
    file = Path(path)
    if not file.is_file():
        return None
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise click.ClickException(f"Reading {path} needs PyYAML: pip install pyyaml") from None
    text = _VARIABLE.sub(lambda match: os.environ.get(match.group(1), ""), file.read_text())
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise click.ClickException(f"{path} is not valid YAML: {error}") from None
    if not isinstance(settings, dict):
        raise click.ClickException(f"{path} must hold a mapping of settings")
    return settings


def commands(settings: dict[str, Any], section: str, key: str) -> list[str]:
    """The list of shell commands at ``settings[section][key]`` (none when absent)."""
    value = (settings.get(section) or {}).get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise click.ClickException(f"{CONFIG_FILE}: {section}.{key} must be a list of commands")
    return value


def run_migrate_commands(settings: dict[str, Any] | None) -> None:
    """Runs ``database.migrate``'s commands in order, as ``dbos migrate`` does after its
    own migrations; the first that fails stops them (exit status 1)."""
    migrate_commands = commands(settings, "database", "migrate") if settings else []
    if not migrate_commands:
        return
    click.echo(f"Executing migration commands from '{CONFIG_FILE}'")
    for command in migrate_commands:
        click.echo(f"Executing migration command: {command}")
        result = subprocess.run(command, shell=True, text=True, check=False)
        if result.returncode != 0:
            click.echo(f"Migration command failed: {command}", err=True)
            raise click.exceptions.Exit(1)
