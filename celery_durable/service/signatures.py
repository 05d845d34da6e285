"""A workflow's Celery signature: ``process_order.s("o-1")`` in a chain, group or chord.

``@DBOS.workflow()`` functions carry ``s``, ``si`` and ``signature`` as Celery tasks
do. The signature names the workflow's Celery task (on the app ``DBOS`` was configured
with, or Celery's current app when it is applied); its message starts the workflow
with its arguments and its task id as the workflow id (see
:mod:`celery_durable.integration.canvas`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from celery import Celery
from celery.canvas import Signature

from celery_durable.engine.registry import WorkflowSpec
from celery_durable.error import DBOSException
from celery_durable.service.direct_calls import DirectCalls

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)


class WorkflowFunction(Protocol[P, R_co]):
    """What ``@DBOS.workflow()`` returns, for type checkers: the function (the same
    parameters and result, so ``DBOS.start_workflow(fn, ...)`` checks its arguments),
    plus Celery's ``s``, ``si`` and ``signature``. As a method of a class it binds as a
    function does (its arguments are then not checked)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> WorkflowFunction[P, R_co]: ...

    @overload
    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> Callable[..., R_co]: ...

    def s(self, *args: Any, **kwargs: Any) -> Signature[Any]:
        """A signature of the workflow with these arguments (``.si``: immutable)."""
        ...

    def si(self, *args: Any, **kwargs: Any) -> Signature[Any]: ...

    def signature(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Signature[Any]: ...


def add_signature_methods(
    wrapper: Callable[..., Any], spec: WorkflowSpec, service: Callable[[], DirectCalls]
) -> None:
    """Gives a workflow's function Celery's ``s``, ``si`` and ``signature``."""

    def signature(
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Signature[Any]:
        return Signature(spec.name, args, kwargs, app=_app(service), **options)

    def s(*args: Any, **kwargs: Any) -> Signature[Any]:
        return signature(args, kwargs)

    def si(*args: Any, **kwargs: Any) -> Signature[Any]:
        return signature(args, kwargs, immutable=True)

    wrapper.signature = signature  # type: ignore[attr-defined]
    wrapper.s = s  # type: ignore[attr-defined]
    wrapper.si = si  # type: ignore[attr-defined]


def _app(service: Callable[[], DirectCalls]) -> Celery | None:
    """The configured ``DBOS``'s app; None before ``DBOS(...)`` (Celery's current app
    then, when the signature is applied)."""
    try:
        return service().celery
    except DBOSException:
        return None
