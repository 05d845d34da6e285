"""DBOS Transact's documented pytest fixture, unchanged but for the import, and a few
workflows run through it. ``test_porting.py`` runs this file with pytest in a process of
its own (DBOS is process-wide), with ``PORTING_DATABASE_URL`` and ``CELERY_BROKER_URL``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from celery_durable import DBOS, DBOSConfig, Queue


@pytest.fixture()
def reset_dbos() -> Iterator[None]:
    DBOS.destroy()
    config: DBOSConfig = {
        "name": "dbos-fixture-suite",
        "system_database_url": os.environ["PORTING_DATABASE_URL"],
    }
    DBOS(config=config)
    DBOS.reset_system_database()
    DBOS.launch()
    yield
    DBOS.destroy()


queue = Queue("fixture_queue")


@DBOS.step()
def double(value: int) -> int:
    return value * 2


@DBOS.workflow()
def doubled(value: int) -> int:
    return double(value)


@DBOS.workflow()
def set_and_return(value: int) -> int:
    DBOS.set_event("value", value)
    return value


def test_start_workflow(reset_dbos: None) -> None:
    assert DBOS.start_workflow(doubled, 21).get_result(timeout=30) == 42


def test_a_queue(reset_dbos: None) -> None:
    handles = [queue.enqueue(doubled, n) for n in range(5)]
    assert [h.get_result(timeout=30) for h in handles] == [0, 2, 4, 6, 8]


def test_each_test_starts_from_an_empty_database(reset_dbos: None) -> None:
    # The tests before this one ran workflows: the reset emptied the database.
    assert DBOS.list_workflows() == []
    handle = DBOS.start_workflow(set_and_return, 7)
    assert handle.get_result(timeout=30) == 7
    assert DBOS.get_event(handle.workflow_id, "value") == 7


def test_a_workflow_defined_after_launch(reset_dbos: None) -> None:
    @DBOS.workflow(name="defined_after_launch")
    def defined_after_launch(value: int) -> int:
        return double(value) + 1

    assert DBOS.start_workflow(defined_after_launch, 5).get_result(timeout=30) == 11


def test_a_queue_declared_after_launch(reset_dbos: None) -> None:
    late_queue = Queue("fixture_late_queue")
    assert late_queue.enqueue(doubled, 4).get_result(timeout=30) == 8
