"""psycopg 3 under gevent: do blocking queries on separate connections overlap?

Run by :mod:`bench.gevent_overlap` in a subprocess of its own (the monkeypatching must
not reach the benchmark process)::

    python -m bench.gevent_psycopg DATABASE_URL GREENLETS after|before

``after`` imports psycopg after ``gevent.monkey.patch_all()``, as ``celery worker -P
gevent`` does (Celery patches before it imports the app); ``before`` imports it first.
psycopg picks its wait function when ``psycopg.waiting`` is imported: the C one unless
it sees gevent's ``select`` patched, and only a Python one yields to other greenlets.
Each of GREENLETS greenlets runs ``SELECT pg_sleep(0.2)`` on a connection of its own;
prints a JSON object: the wait function and the seconds all of them took.
"""

from __future__ import annotations

import json
import sys
import time


def main(url: str, greenlets: int, order: str) -> dict[str, object]:
    if order == "before":
        import psycopg  # chooses its wait function now: gevent is not there

    from gevent import monkey  # type: ignore[import-untyped]

    monkey.patch_all()
    import gevent
    import psycopg
    import psycopg.waiting

    connections = [psycopg.connect(url, autocommit=True) for _ in range(greenlets)]
    try:
        started = time.monotonic()
        gevent.joinall(
            [
                gevent.spawn(connection.execute, "SELECT pg_sleep(0.2)")
                for connection in connections
            ],
            raise_error=True,
        )
        seconds = time.monotonic() - started
    finally:
        for connection in connections:
            connection.close()
    return {"wait": getattr(psycopg.waiting.wait, "__name__", "unknown"), "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sys.argv[3])))
