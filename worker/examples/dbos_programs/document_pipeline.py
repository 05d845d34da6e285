"""A document pipeline on a queue, in our words (DBOS's document-ingestion example).

A DBOS Transact program ported by changing its imports only. ``index_documents``
receives a batch of documents and fans it out: each document is a workflow
(``index_document``) enqueued on the ``documents`` queue, which runs at most
``CONCURRENCY`` of them at a time across the deployment. A document's workflow fetches
it, splits it into pages and indexes each page in its own step, reporting its progress
as an event; the batch waits for every document and returns what was indexed. A
document that cannot be fetched fails its own workflow only: the batch reports it and
goes on.

``python document_pipeline.py`` indexes a small batch. Its database:
``DOCUMENT_PIPELINE_DATABASE_URL``; its broker: ``CELERY_BROKER_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from celery_durable import DBOS, DBOSConfig

config: DBOSConfig = {
    "name": "document-pipeline",
    "system_database_url": os.environ["DOCUMENT_PIPELINE_DATABASE_URL"],
}
DBOS(config=config)

QUEUE = "documents"
CONCURRENCY = 2
PAGE_WORDS = 5  # a "page" of these toy documents
PAGES_DONE = "pages_done"  # event: a document's progress

# Where the documents live: a stand-in for an object store or the web.
LIBRARY: dict[str, str] = {}


# A missing document does not appear by retrying (and our steps retry by default).
@DBOS.step(retries_allowed=False)
def fetch(url: str) -> str:
    if url not in LIBRARY:
        raise FileNotFoundError(url)
    return LIBRARY[url]


@DBOS.step()
def split_pages(body: str) -> list[str]:
    words = body.split()
    return [" ".join(words[i : i + PAGE_WORDS]) for i in range(0, len(words), PAGE_WORDS)]


@DBOS.step()
def index_page(url: str, number: int, page: str) -> dict[str, int]:
    """Indexes one page (here: counts its words); a real pipeline embeds it."""
    counts: dict[str, int] = {}
    for word in page.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts


@DBOS.workflow()
def index_document(url: str) -> dict[str, int]:
    """One document: fetched, split, each page indexed; its word counts."""
    pages = split_pages(fetch(url))
    totals: dict[str, int] = {}
    for number, page in enumerate(pages):
        for word, count in index_page(url, number, page).items():
            totals[word] = totals.get(word, 0) + count
        DBOS.set_event(PAGES_DONE, number + 1)
    return totals


@DBOS.workflow()
def index_documents(urls: list[str]) -> dict[str, Any]:
    """The batch: every document on the queue, then their results."""
    handles = [DBOS.enqueue_workflow(QUEUE, index_document, url) for url in urls]
    indexed: dict[str, dict[str, int]] = {}
    failed: list[str] = []
    for url, handle in zip(urls, handles, strict=True):
        try:
            indexed[url] = handle.get_result()
        except FileNotFoundError:
            failed.append(url)
    return {"indexed": indexed, "failed": failed}


def start() -> None:
    """At the app's start: DBOS and the queue (its limit is stored with it)."""
    DBOS.launch()
    DBOS.register_queue(QUEUE, global_concurrency=CONCURRENCY)


if __name__ == "__main__":
    LIBRARY.update(
        {
            "doc://a": "durable workflows survive crashes and restarts of their workers",
            "doc://b": "queues bound how many workflows run at once",
        }
    )
    start()
    print(index_documents(["doc://a", "doc://b", "doc://missing"]))
    DBOS.destroy(workflow_completion_timeout_sec=10)
