"""DBOSClient.enqueue's EnqueueOptions as DBOS 3.4 takes them: what is refused (and
with which words), and what is stored with the workflow."""

from __future__ import annotations

import pytest

from celery_durable import DBOS, DBOSClient, SetWorkflowID
from celery_durable.error import DBOSException
from tests.conftest import DATABASE_URL, TEST_QUEUE

pytestmark = pytest.mark.usefixtures("worker")


@DBOS.workflow(name="client_options_echo")
def client_options_echo(value: str) -> str:
    return value


@pytest.fixture
def client() -> DBOSClient:
    return DBOSClient(system_database_url=DATABASE_URL)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_workflow_id_is_refused_and_nothing_is_written(
    client: DBOSClient, blank: str
) -> None:
    before = len(client.list_workflows(name="client_options_echo"))
    try:
        with pytest.raises(DBOSException, match=r"Invalid workflow ID .*: workflow IDs must be"):
            client.enqueue(
                {
                    "workflow_name": "client_options_echo",
                    "queue_name": TEST_QUEUE,
                    "workflow_id": blank,
                },
                "v",
            )
        # Before, an empty id was replaced by a random one and the workflow ran.
        assert client.list_workflows(workflow_ids=[blank]) == []
        assert len(client.list_workflows(name="client_options_echo")) == before
    finally:
        client.destroy()


@pytest.mark.parametrize("blank", ["", "   "])
def test_set_workflow_id_refuses_a_blank_id_in_dbos_words(blank: str) -> None:
    with pytest.raises(DBOSException, match="workflow ID"):
        SetWorkflowID(blank)
