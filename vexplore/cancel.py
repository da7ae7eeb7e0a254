"""CancelToken: one compile's request to stop, checked by the engine between its steps.

The Session hands a token to each compile it runs (``Session.compiling()``) and cancels the tokens of
the compiles in progress (``Session.cancel()``, which ``s.monitor.cancel()`` and the explorer's Cancel
reach); the engine carries the token in its context (``GraphContext.cancel``) and calls ``check()``
between steps and jobs. A token is never reset: a cancel belongs to the compile that held the token,
so one that arrives after that compile ended cannot stop the next.
"""
from __future__ import annotations

import threading

from .errors import CancelledError


class CancelToken:
    """``cancel()`` from any thread; ``check()`` raises CancelledError once it was cancelled."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the compile that holds this token to stop at its next step."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise CancelledError when cancelled (the engine calls it between steps and jobs)."""
        if self._event.is_set():
            raise CancelledError("compile cancelled by the user (Session.cancel(), s.monitor.cancel() or the "
                                 "explorer's Cancel); the previous compiled callables and report stay in effect.")

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"
