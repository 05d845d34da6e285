"""System programs some tests drive (Debian's Chromium, ChromeDriver and PgBouncer).

The README's test command runs on a fresh machine with only the services running: a
test that needs one of these programs installs it on first use, with the project's
own script under ``deploy/`` (apt-get; root or sudo), instead of failing. Nothing is
skipped: an install that fails fails the test with the script's output.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PGBOUNCER = Path("/usr/sbin/pgbouncer")

BROWSER_SCRIPT = ROOT / "deploy" / "install-test-browser.sh"
PGBOUNCER_SCRIPT = ROOT / "deploy" / "install-test-pgbouncer.sh"


def ensure_installed(script: Path, *programs: Path) -> None:
    """Runs ``script`` unless every one of ``programs`` is an executable already.

    Concurrent test processes (or two checkouts on one machine) take a lock, so apt-get
    runs once at a time.
    """
    if all(program.is_file() for program in programs):
        return
    with open("/tmp/celery-durable-test-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(program.is_file() for program in programs):
            return
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
        )
    missing = [str(program) for program in programs if not program.is_file()]
    if done.returncode != 0 or missing:
        raise AssertionError(
            f"{script.relative_to(ROOT)} failed (exit {done.returncode}); still missing:"
            f" {', '.join(missing) or 'nothing'}\n{done.stdout}\n{done.stderr}"
        )


def ensure_browser() -> None:
    ensure_installed(BROWSER_SCRIPT, CHROMIUM, CHROMEDRIVER)


def ensure_pgbouncer() -> None:
    ensure_installed(PGBOUNCER_SCRIPT, PGBOUNCER)
