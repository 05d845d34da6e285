"""What a worker costs while it drains a batch: its connections, memory and CPU, and the
CPU of the PostgreSQL backends serving it.

Read from ``/proc`` (the server runs on the same machine) and ``pg_stat_activity``:

- the worker's processes are its process group (``bench.workers`` starts it in a
  session of its own): the main process and, for prefork, the pool's children;
- its connections are the rows of ``pg_stat_activity`` whose ``client_port`` is the
  local port of a TCP socket one of those processes holds open (found through
  ``/proc/<pid>/fd`` and ``/proc/net/tcp``), so the producer's connections to the same
  database never count, and no ``application_name`` the library sets can hide one
  (the ceiling's own connections, ``FLOOR_APPLICATION``, are not counted as the
  worker's connections, but their backends' CPU is);
- a backend's CPU is its ``utime + stime`` in ``/proc/<pid>/stat``. Backends come and go
  (a pool's overflow connections close when returned), so a thread samples them every
  0.2 s and each backend counts from its first sample (from zero if it was born during
  the batch: a new connection's start-up is part of what the design costs) to its last;
  a backend that exits loses at most its last 0.2 s.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.workflows import FLOOR_APPLICATION

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU the process has used so far, or None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids


def rss_bytes(pids: list[int]) -> int:
    """The resident set of these processes, summed (shared pages count in each)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _socket_inodes(pids: list[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        try:
            entries = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for entry in entries:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{entry}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def local_ports(pids: list[int]) -> set[int]:
    """The local ports of the TCP sockets these processes hold open."""
    inodes = _socket_inodes(pids)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if int(fields[9]) in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


@dataclass
class Usage:
    """What one worker used between :meth:`ResourceSampler.start` and ``stop``."""

    worker_cpu_seconds: float = 0.0
    backend_cpu_seconds: float = 0.0
    peak_connections: int = 0
    rss_bytes: int = 0
    backend_cpu: dict[int, tuple[float, float]] = field(default_factory=dict)


class ResourceSampler:
    """Samples a worker's connections and its backends' CPU in a thread, every 0.2 s."""

    INTERVAL_SECONDS = 0.2

    def __init__(self, worker_pgid: int, database_url: str, database: str) -> None:
        self._pgid = worker_pgid
        self._url = database_url
        self._database = database
        self._usage = Usage()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker_cpu: dict[int, tuple[float, float]] = {}

    def start(self) -> None:
        self._usage = Usage()
        self._worker_cpu = {}
        self._stopped.clear()
        with psycopg.connect(self._url, autocommit=True) as connection:
            self._sample(connection, first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> Usage:
        self._stopped.set()
        assert self._thread is not None
        self._thread.join()
        with psycopg.connect(self._url, autocommit=True) as connection:
            self._sample(connection, first=False)
        usage = self._usage
        usage.worker_cpu_seconds = sum(end - start for start, end in self._worker_cpu.values())
        usage.backend_cpu_seconds = sum(end - start for start, end in usage.backend_cpu.values())
        return usage

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as connection:
            while not self._stopped.wait(self.INTERVAL_SECONDS):
                self._sample(connection, first=False)

    def _sample(self, connection: psycopg.Connection[Any], *, first: bool) -> None:
        pids = group_pids(self._pgid)
        for pid in pids:
            self._track(self._worker_cpu, pid, first=first)
        ports = local_ports(pids)
        rows = connection.execute(
            "SELECT pid, client_port, application_name FROM pg_stat_activity WHERE datname = %s",
            (self._database,),
        ).fetchall()
        backends = [pid for pid, port, _ in rows if port in ports]
        connections = [
            pid for pid, port, name in rows if port in ports and name != FLOOR_APPLICATION
        ]
        usage = self._usage
        usage.peak_connections = max(usage.peak_connections, len(connections))
        usage.rss_bytes = max(usage.rss_bytes, rss_bytes(pids))
        for pid in backends:
            self._track(usage.backend_cpu, pid, first=first)

    @staticmethod
    def _track(seen: dict[int, tuple[float, float]], pid: int, *, first: bool) -> None:
        """Records the process's CPU: from its first sample (or 0 if it appeared after
        the start) to its latest."""
        now = cpu_seconds(pid)
        if now is None:
            return
        if pid in seen:
            seen[pid] = (seen[pid][0], now)
        else:
            seen[pid] = (now if first else 0.0, now)
