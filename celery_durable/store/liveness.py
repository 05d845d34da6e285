"""Whether an idle connection is known dead, without a round trip.

When PostgreSQL restarts (or a backend is terminated), the server says goodbye on each
connection and closes it; the client finds out only when it next reads. Lending such a
connection fails the statement sent on it, and for a step's checkpoint that means the
step runs again. One non-blocking read of what already arrived (libpq's
``PQconsumeInput``: a ``recv`` that returns at once, nothing is sent) tells a dead
connection from a live one before anything is sent on it. Two reads, in fact: the
first takes the server's goodbye (its "terminating connection" error), and only the
next finds the end of the stream (on a live idle connection both find nothing).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq


def lost(connection: psycopg.Connection[Any]) -> bool:
    """Whether ``connection`` (idle, in autocommit mode) is closed or its server has
    hung up on it (nothing is sent: a false "alive" is possible, a false "lost" is
    not)."""
    if connection.closed:
        return True
    pgconn = connection.pgconn
    try:
        pgconn.consume_input()
        pgconn.consume_input()
    except psycopg.OperationalError:
        return True
    return pgconn.status != pq.ConnStatus.OK
