"""A workflow that streams its progress: a report built section by section.

Each section is a step. After each one the workflow appends a record to its stream
``progress`` (``DBOS.write_stream``), and it closes the stream when the report is
done (``DBOS.close_stream``). A reader (``DBOSClient.read_stream``, or
``celery-durable workflows stream ID progress --follow``) gets every record in order
as it is written, and stops at the close. A write in workflow code is a durable
operation: a replay after a crash does not write it again.
"""

from __future__ import annotations

from celery_durable import DBOS
from worker.examples import fakes

PROGRESS = "progress"


@DBOS.step()
def build_section(report_id: str, section: str) -> int:
    return fakes.count_rows(report_id, section)


@DBOS.workflow()
def build_report(report_id: str, sections: list[str]) -> dict[str, int]:
    rows: dict[str, int] = {}
    for done, section in enumerate(sections, start=1):
        rows[section] = build_section(report_id, section)
        DBOS.write_stream(
            PROGRESS,
            {"section": section, "rows": rows[section], "done": done, "of": len(sections)},
        )
    DBOS.close_stream(PROGRESS)
    return rows
