"""A schedule that cannot be made says why, in one line, and writes nothing."""

from __future__ import annotations

import pytest

from celery_durable import DBOS
from celery_durable.error import DBOSException

pytestmark = pytest.mark.usefixtures("dbos")


@DBOS.step()
def a_step(scheduled_time: object, context: object) -> None:
    """Not a workflow."""


@DBOS.transaction()
def a_transaction(scheduled_time: object, context: object) -> None:
    """Not a workflow either."""


@DBOS.workflow()
def a_workflow(scheduled_time: object, context: object) -> None:
    """Scheduled below."""


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("* * * *", "has 4 fields; a cron has 5 fields (minute hour day-of-month month"),
        ("every day", "has 2 fields"),
        ("61 * * * *", "the minute field '61' is not valid (it takes 0-59"),
        ("0 25 * * *", "the hour field '25' is not valid (it takes 0-23"),
        ("0 0 32 * *", "the day-of-month field '32' is not valid (it takes 1-31"),
        ("0 0 * 13 *", "the month field '13' is not valid (it takes 1-12 or JAN-DEC"),
        ("0 0 * * funday", "the day-of-week field 'funday' is not valid (it takes 0-6 or SUN-SAT"),
        ("*/0 * * * *", "the minute field '*/0' is not valid"),
        ("60 * * * * *", "the second field '60' is not valid (it takes 0-59"),
    ],
)
def test_a_bad_cron_says_which_field_and_why(cron: str, why: str) -> None:
    before = DBOS.list_schedules()
    for attempt in (
        lambda: DBOS.scheduled(cron),
        lambda: DBOS.create_schedule(
            schedule_name="bad-cron", workflow_fn=a_workflow, schedule=cron
        ),
    ):
        with pytest.raises(DBOSException) as raised:
            attempt()
        assert f"Invalid cron schedule: '{cron}'" in str(raised.value)
        assert why in str(raised.value) and "\n" not in str(raised.value)
    assert DBOS.list_schedules() == before


@pytest.mark.parametrize(("function", "kind"), [(a_step, "step"), (a_transaction, "transaction")])
def test_scheduling_a_step_says_only_workflows_can_be(function: object, kind: str) -> None:
    expected = f"'{function.__qualname__}' is a {kind}: only workflows can be scheduled"  # type: ignore[attr-defined]
    with pytest.raises(DBOSException, match=expected) as raised:
        DBOS.scheduled("* * * * *")(function)  # type: ignore[type-var]
    assert "below @DBOS.scheduled" not in str(raised.value)
    with pytest.raises(DBOSException, match=expected):
        DBOS.create_schedule(
            schedule_name="a-step",
            workflow_fn=function,  # type: ignore[arg-type]
            schedule="* * * * *",
        )
    assert DBOS.get_schedule("a-step") is None
