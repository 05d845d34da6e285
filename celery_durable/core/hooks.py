"""A minimal synchronous hook: callables connected to a named moment of execution."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Hook:
    """Receivers are called in connection order with the keyword arguments sent.

    Tests use hooks to act at an exact moment (for example, to kill a worker right after
    a transaction commits); the library itself only sends them.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[Callable[..., Any]] = []
        self._lock = threading.Lock()

    def connect(self, receiver: Callable[..., Any]) -> Callable[..., Any]:
        """Connects ``receiver``; returns it, so that this works as a decorator."""
        with self._lock:
            if receiver not in self._receivers:
                self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver: Callable[..., Any]) -> None:
        with self._lock:
            if receiver in self._receivers:
                self._receivers.remove(receiver)

    def send(self, **kwargs: Any) -> None:
        with self._lock:
            receivers = list(self._receivers)
        for receiver in receivers:
            receiver(**kwargs)
