"""The worker app of the fault-injection tests.

Run as ``celery -A tests.integration.fault_app worker`` in a subprocess, configured from
``CD_FAULT_*`` environment variables. Side effects and kill switches live in
PostgreSQL tables, outside the worker, so a test can count what happened after the
worker is gone:

- ``fault_effects(workflow_id, step, pid)``: one row each time a step body's side
  effect runs;
- ``fault_payments(id)``: rows inserted by a ``@DBOS.transaction``;
- ``fault_triggers(point, action)``: the first execution to reach ``point`` deletes the
  row and performs ``action`` (``kill-worker``: SIGKILL the whole worker, main process
  included; ``exit-child``: ``os._exit`` the pool child).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from typing import Any

import psycopg
from celery import Celery
from sqlalchemy import text

from celery_durable import DBOS, Queue
from celery_durable.engine.transactions import transaction_committed

DATABASE_URL = os.environ["CD_FAULT_DATABASE_URL"]
# Set when DATABASE_URL is a transaction-mode PgBouncer (tests/integration/test_pgbouncer.py): the
# fence and LISTEN connect here, and so do this module's own side-effect tables.
SESSION_DATABASE_URL = os.environ.get("CD_FAULT_SESSION_DATABASE_URL") or None
BROKER_URL = os.environ["CD_FAULT_BROKER_URL"]
QUEUE = os.environ.get("CD_FAULT_QUEUE", "faults")
STEP_SECONDS = float(os.environ.get("CD_FAULT_STEP_SECONDS", "0"))
BACKOFF_SECONDS = float(os.environ.get("CD_FAULT_BACKOFF_SECONDS", "3"))

app = Celery("fault_app", broker=BROKER_URL)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("CD_FAULT_VISIBILITY_TIMEOUT", "3600"))
    },
)
DBOS(
    celery=app,
    config={
        "name": "fault_app",
        "system_database_url": DATABASE_URL,
        "recovery_interval_seconds": float(os.environ.get("CD_FAULT_SWEEP_SECONDS", "1")),
        "recovery_grace_seconds": float(os.environ.get("CD_FAULT_GRACE_SECONDS", "2")),
        **({"session_database_url": SESSION_DATABASE_URL} if SESSION_DATABASE_URL else {}),
        # Unset: computed from the workflows' source (as DBOS does).
        **(
            {"application_version": os.environ["CD_FAULT_APP_VERSION"]}
            if os.environ.get("CD_FAULT_APP_VERSION")
            else {}
        ),
    },
)

if os.environ.get("CD_FAULT_LOG_QOS"):
    # Which thread sends each basic.qos (kombu logs it at DEBUG): "basic.qos from <thread>:
    # basic.qos: prefetch_count->N" on the worker's stderr
    # (tests/integration/test_broker_restart.py).
    _qos_handler = logging.StreamHandler()
    _qos_handler.setFormatter(logging.Formatter("basic.qos from %(threadName)s: %(message)s"))
    _qos_logger = logging.getLogger("kombu.common")
    _qos_logger.addHandler(_qos_handler)
    _qos_logger.setLevel(logging.DEBUG)
    _qos_logger.propagate = False

_connection: tuple[int, psycopg.Connection[Any]] | None = None


def _db() -> psycopg.Connection[Any]:
    global _connection
    if _connection is None or _connection[0] != os.getpid() or _connection[1].closed:
        url = SESSION_DATABASE_URL or DATABASE_URL
        _connection = (os.getpid(), psycopg.connect(url, autocommit=True))
    return _connection[1]


def _execute(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    # The side-effect table must survive a PostgreSQL restart too: reconnect and retry.
    global _connection
    for attempt in range(30):
        try:
            cursor = _db().execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            _connection = None
            if attempt == 29:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def effect(workflow_id: str | None, step: str) -> None:
    _execute(
        "INSERT INTO fault_effects (workflow_id, step, pid) VALUES (%s, %s, %s)",
        (workflow_id, step, os.getpid()),
    )


def trigger(point: str) -> None:
    rows = _execute("DELETE FROM fault_triggers WHERE point = %s RETURNING action", (point,))
    if not rows:
        return
    action = rows[0][0]
    if action == "kill-worker":
        os.killpg(os.getpgid(0), signal.SIGKILL)
    elif action == "exit-child":
        os._exit(1)
    time.sleep(60)  # never reached


@DBOS.step()
def side_effect(index: int) -> int:
    trigger(f"before-effect:{index}")
    effect(DBOS.workflow_id, str(index))
    trigger(f"after-effect:{index}")
    if STEP_SECONDS:
        time.sleep(STEP_SECONDS)
    return index


@DBOS.workflow()
def steps(count: int) -> int:
    for index in range(count):
        side_effect(index)
        trigger(f"after-checkpoint:{index}")
    return count


@DBOS.step(max_attempts=3, interval_seconds=BACKOFF_SECONDS, backoff_rate=1.0)
def fails_first_attempt(index: int) -> int:
    status = DBOS.step_status
    assert status is not None
    effect(DBOS.workflow_id, f"{index}:attempt{status.current_attempt}")
    if status.current_attempt == 0:
        raise ConnectionError("first attempt fails")
    return index


@DBOS.workflow()
def with_backoff() -> list[int]:
    return [side_effect(0), fails_first_attempt(1), side_effect(2)]


@DBOS.step()
def dies() -> None:
    os._exit(1)


@DBOS.workflow(max_recovery_attempts=2)
def always_dies() -> None:
    # Workflow code, not a step: it runs once per execution.
    effect(DBOS.workflow_id, "execution")
    dies()


@DBOS.transaction()
def record_payment(payment_id: str) -> str:
    effect(DBOS.workflow_id, "record_payment")
    DBOS.sql_session.execute(
        text("INSERT INTO fault_payments (id) VALUES (:id)"), {"id": payment_id}
    )
    return payment_id


def _after_commit(sender: Any = None, **_: Any) -> None:
    trigger("after-commit")


transaction_committed.connect(_after_commit)


@DBOS.workflow()
def pays(payment_id: str) -> str:
    record_payment(payment_id)
    side_effect(1)
    return payment_id


# -- queues and children (tests/integration/test_operations.py) ------------------------------------

_limits = json.loads(os.environ.get("CD_FAULT_QUEUE_LIMITS", "{}"))
if _limits:
    # The worker's default queue, with the limits the test asks for.
    Queue(
        QUEUE,
        concurrency=_limits.get("concurrency"),
        limiter=_limits.get("limiter"),
        worker_concurrency=_limits.get("worker_concurrency"),
        priority_enabled=bool(_limits.get("priority_enabled", False)),
    )


@DBOS.step()
def hold(seconds: float) -> None:
    time.sleep(seconds)


@DBOS.workflow()
def occupy(seconds: float) -> str:
    hold(seconds)
    return str(DBOS.workflow_id)


@DBOS.workflow()
def child(value: int) -> int:
    side_effect(value)
    return value * 10


@DBOS.workflow()
def parent_of_children() -> list[int]:
    # Called children: the parent waits for each without holding the worker's slot.
    results = [child(1), child(2)]
    # A started child, awaited later.
    handle = DBOS.start_workflow(child, 3)
    results.append(handle.get_result())
    return results


@DBOS.workflow()
async def async_parent_of_child() -> int:
    # The async handle's get_result inside a workflow is a durable wait too.
    handle = await DBOS.start_workflow_async(child, 4)
    result: int = await handle.get_result()
    return result


# -- recovery without beat (tests/integration/test_recovery.py) ------------------------------------

SLEEP_SECONDS = float(os.environ.get("CD_FAULT_SLEEP_SECONDS", "5"))


def held(point: str) -> bool:
    """Whether the test holds ``point`` closed (a ``fault_triggers`` row, action 'hold')."""
    rows = _execute("SELECT 1 FROM fault_triggers WHERE point = %s AND action = 'hold'", (point,))
    return bool(rows)


@DBOS.step()
def gated(point: str) -> str:
    # The side effect first, then wait until the test opens the gate.
    effect(DBOS.workflow_id, point)
    while held(point):
        time.sleep(0.1)
    return point


@DBOS.workflow()
def gated_child() -> str:
    return gated("child")


@DBOS.workflow()
def gated_occupant() -> str:
    return gated("occupant")


@DBOS.workflow()
def survives(state: str) -> list[int]:
    """A workflow that a test kills in ``state``: a step, a sleep or a child, then a
    flaky step (its backoff: the "backoff" and "parked" states) and a last step."""
    done = [side_effect(0)]
    if state == "step":
        gated("step")
    elif state == "sleep":
        DBOS.sleep(SLEEP_SECONDS)
    elif state == "child":
        gated_child()
    done.append(fails_first_attempt(1))
    done.append(side_effect(2))
    return done


@DBOS.workflow()
def across_a_pause(point: str) -> list[int]:
    """Two steps with a pause between them, in workflow code (no step runs, none is in
    flight) while the test holds ``point`` closed (tests/integration/test_postgres_restart.py)."""
    first = side_effect(0)
    while held(point):
        time.sleep(0.1)
    return [first, side_effect(1)]


# -- messages (tests/integration/test_messaging_faults.py) -----------------------------------------

RECV_SECONDS = float(os.environ.get("CD_FAULT_RECV_SECONDS", "300"))


@DBOS.step()
def took(message: Any) -> Any:
    # The side effect of a received message: counted once per message.
    effect(DBOS.workflow_id, f"took:{message}")
    return message


@DBOS.workflow()
def receives(count: int) -> list[Any]:
    """Receives ``count`` messages on topic "pay" (each: recv, then a step that records
    it); ``after-recv:{i}`` triggers right after the i-th recv's checkpoint."""
    received = []
    for index in range(count):
        message = DBOS.recv("pay", timeout_seconds=RECV_SECONDS)
        trigger(f"after-recv:{index}")
        received.append(took(message))
    return received


# -- the authenticated user (tests/integration/test_identity.py) -----------------------------------


def _identity() -> list[Any]:
    context = DBOS.get_context()
    return [
        DBOS.authenticated_user,
        DBOS.authenticated_roles,
        DBOS.assumed_role,
        None if context is None else context.authenticated_user,
    ]


@DBOS.step()
def identity_step(point: str) -> list[Any]:
    effect(DBOS.workflow_id, point)
    trigger(point)
    return _identity()


@DBOS.workflow()
def identity_child() -> dict[str, Any]:
    return {"workflow": _identity(), "step": identity_step("identity-child")}


@DBOS.required_roles(["admin"])
@DBOS.workflow()
def identity_parent() -> dict[str, Any]:
    # The test kills the worker in the step, once: the replacement recovers it.
    step = identity_step("identity-step")
    return {"workflow": _identity(), "step": step, "child": identity_child()}


# -- application versions (tests/integration/test_versions.py) -------------------------------------


@DBOS.step()
def version_step(label: str) -> str:
    """Says which version's worker ran it."""
    return f"{label}@{DBOS.application_version}"


@DBOS.workflow()
def across_versions() -> list[str]:
    before = version_step("before")
    message = DBOS.recv("go", timeout_seconds=RECV_SECONDS)
    return [before, version_step(f"after-{message}")]


@DBOS.workflow()
def one_version_step() -> str:
    return version_step("only")


# -- pools (tests/integration/test_pools.py): in a module of their own, registered with these ------

# -- classes and datasources (tests/integration/test_classes_recovery.py) --------------------------
import tests.integration.fault_classes  # noqa: E402
import tests.integration.fault_pools  # noqa: E402, F401
