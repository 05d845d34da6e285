"""A workflow defined after ``DBOS.launch()`` is served by the in-process worker and
recorded as served at once, so a ``DBOSClient`` enqueues it by name (DBOS's own
client tests define their workflows after launch). Each program runs in a process of
its own, as in tests/integration/test_porting.py."""

from __future__ import annotations

from tests.integration.test_porting import PROGRAM, _env, _run, program_database

__all__ = ["program_database"]


def test_a_workflow_defined_after_launch_is_enqueued_by_a_client(program_database: str) -> None:
    output = _run(
        f"""
        import os, time
        from celery_durable import DBOS, DBOSClient
        from {PROGRAM} import increment

        DBOS.launch()
        # The worker runs, and its start-up registration is over, before the definition.
        DBOS.start_workflow(increment, 1).get_result(timeout=30)
        time.sleep(1)

        @DBOS.workflow()
        def defined_late(value: int) -> int:
            return value * 2

        client = DBOSClient(system_database_url=os.environ["PORTING_DATABASE_URL"])
        handle = client.enqueue({{"workflow_name": "defined_late", "queue_name": "celery"}}, 21)
        print(handle.get_result(timeout=30))
        client.destroy()
        DBOS.destroy()
        """,
        _env(program_database),
    )
    assert output.split() == ["42"]
