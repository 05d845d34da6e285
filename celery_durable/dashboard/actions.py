"""Cancel, resume and fork, as the pages and the API perform them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from celery_durable.api.client import DBOSClient

ACTIONS = ("cancel", "resume", "fork")


class ActionRefused(Exception):
    """An action that cannot be done here as asked (HTTP 409)."""


@dataclass(frozen=True, kw_only=True)
class ActionResult:
    action: str
    workflow_id: str
    status: str
    message: str
    forked_workflow_id: str | None = None

    def document(self) -> dict[str, Any]:
        return asdict(self)


def perform(
    client: DBOSClient,
    action: str,
    workflow_id: str,
    *,
    can_publish: bool,
    start_step: int = 1,
) -> ActionResult:
    """Performs ``action`` on an existing workflow and reports its status after.

    Raises:
        DBOSNonExistentWorkflowError: no workflow has this id.
        ActionRefused: resume or fork without a broker to publish on.
    """
    if action not in ACTIONS:
        raise ActionRefused(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    before = client.retrieve_workflow(workflow_id).get_status().status
    if action != "cancel" and not can_publish:
        raise ActionRefused(
            f"{action} publishes the workflow to the workers: start the dashboard with "
            "--broker-url (or CELERY_DURABLE_BROKER_URL)"
        )
    if action == "cancel":
        client.cancel_workflow(workflow_id)
    elif action == "resume" and before == "ERROR":
        # The resume page warns that it replays its recorded error; DBOS 3.4's
        # resume_workflow would leave it alone.
        client.resume_failed_workflow(workflow_id)
    elif action == "resume":
        client.resume_workflow(workflow_id)
    else:
        forked = client.fork_workflow(workflow_id, start_step).workflow_id
        return ActionResult(
            action=action,
            workflow_id=workflow_id,
            status=before,
            forked_workflow_id=forked,
            message=f"Forked {workflow_id} from step {start_step} as {forked}",
        )
    after = client.retrieve_workflow(workflow_id).get_status().status
    return ActionResult(
        action=action,
        workflow_id=workflow_id,
        status=after,
        message=_message(action, workflow_id, before, after),
    )


def _message(action: str, workflow_id: str, before: str, after: str) -> str:
    if before == after:
        return (
            f"{action.capitalize()}: {workflow_id} was {before} and still is (nothing to {action})"
        )
    return f"{action.capitalize()}: {workflow_id} went from {before} to {after}"
