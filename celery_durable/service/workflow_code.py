"""The operations that only workflow code (or a step) performs: they need no
configuration, only the running workflow's context, so ``DBOS`` delegates to these
functions rather than to its :class:`~celery_durable.service.workflows.WorkflowService`.

Each ``_async`` twin is the sync operation run in a thread (the context travels with
it; its function ids are taken before, in call order), except where the operation never
blocks (``patch``) or waits with ``asyncio`` (``sleep_async``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from celery_durable.engine import children_and_sleep, events, mailbox, patches, streams
from celery_durable.engine.context import (
    StepContext,
    current_step,
    current_workflow,
    in_thread_in_call_order,
)


def recv(topic: str | None = None, timeout_seconds: float = 60) -> Any:
    return mailbox.recv(topic, timeout_seconds)


async def recv_async(topic: str | None = None, timeout_seconds: float = 60) -> Any:
    return await in_thread_in_call_order(2, lambda: mailbox.recv(topic, timeout_seconds))


def set_event(key: str, value: Any, serialization_type: object = None) -> None:
    events.set_event(key, value, serialization_type)


async def set_event_async(key: str, value: Any, serialization_type: object = None) -> None:
    await in_thread_in_call_order(1, lambda: events.set_event(key, value, serialization_type))


def write_stream(key: str, value: Any, serialization_type: object = None) -> None:
    streams.write_stream(key, value, serialization_type)


async def write_stream_async(key: str, value: Any, serialization_type: object = None) -> None:
    await in_thread_in_call_order(1, lambda: streams.write_stream(key, value, serialization_type))


def close_stream(key: str) -> None:
    streams.close_stream(key)


async def close_stream_async(key: str) -> None:
    await in_thread_in_call_order(1, lambda: streams.close_stream(key))


def patch(patch_name: str) -> bool:
    return patches.patch(patch_name)


def deprecate_patch(patch_name: str) -> bool:
    return patches.deprecate_patch(patch_name)


async def patch_async(patch_name: str) -> bool:
    return await patches.patch_async(patch_name)


async def deprecate_patch_async(patch_name: str) -> bool:
    return await patches.deprecate_patch_async(patch_name)


def sleep(seconds: float) -> None:
    """A durable sleep in workflow code (the wake-up time is recorded once); elsewhere
    ``time.sleep``."""
    remaining = children_and_sleep.sleep_remaining(seconds)
    if remaining > 0:
        time.sleep(remaining)


async def sleep_async(seconds: float) -> None:
    remaining = children_and_sleep.sleep_remaining(seconds)
    if remaining > 0:
        await asyncio.sleep(remaining)


def get_context() -> StepContext | None:
    """The running step's (or workflow's) context; None outside both."""
    step = current_step.get()
    if step is not None:
        return step
    workflow = current_workflow.get()
    if workflow is None:
        return None
    return StepContext(
        name=workflow.workflow_name,
        workflow_id=workflow.workflow_id,
        step_id=None,
        attempt=None,
        max_attempts=None,
        authenticated_user=workflow.authenticated_user,
    )
