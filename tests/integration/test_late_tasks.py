"""The in-process worker serves a task its app registered after the worker started,
even when nothing refreshed the worker's consumer before the first message came (a
workflow defined right after ``DBOS.launch()`` and started at once could be refused as
an unregistered task while the consumer was still starting)."""

from __future__ import annotations

from tests.integration.test_async_starts import _run, program_database

__all__ = ["program_database"]


def test_a_task_registered_after_the_consumer_started_is_served(program_database: str) -> None:
    output = _run(
        program_database,
        """
        from celery import current_app

        @DBOS.workflow()
        def first() -> str:
            return "first"

        DBOS.launch()
        assert DBOS.start_workflow(first).get_result(timeout=30) == "first"  # consuming
        ran = threading.Event()

        # Registered on the worker's app directly: nothing refreshes its consumer.
        @current_app.task(name="late_plain_task")
        def late_plain_task() -> None:
            ran.set()

        late_plain_task.apply_async(queue=current_app.conf.task_default_queue)
        print(ran.wait(30))
        DBOS.destroy()
        """,
    )
    assert output == ["True"]
