"""Compile progress: a bar that moves one step per piece, a coloured cell per finished piece, Cancel.

It listens to the session's Monitor only while a compile runs (``start`` to ``finish``) and asks
the Monitor to cancel when the button is clicked; the engine stops at its next step and keeps the
old compiled callables.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import ipywidgets as widgets

from ..errors import CancelledError
from ..monitor.events import CompileEvent
from .style import ERROR, OUTCOME_COLOURS, esc, seconds, text_on

_TIER_OUTCOME = {"memory": "memory hit", "disk": "disk hit", "remote": "remote hit"}


class Progress:
    """Progress of one compile: ``start(monitor, expected)``, then events arrive, then ``finish``."""

    def __init__(self) -> None:
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="idle", bar_style="",
                                       layout=widgets.Layout(width="320px"))
        self.cancel = widgets.Button(description="Cancel", icon="stop", disabled=True, button_style="warning",
                                     tooltip="stop the compile at its next step; the current compiled model stays")
        self.cells = widgets.HTML("")
        self.status = widgets.HTML("")
        self.widget = widgets.VBox([widgets.HBox([self.bar, self.cancel, self.status]), self.cells])
        self.cancel.on_click(self._on_cancel)
        self._monitor: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._done: dict[int, str] = {}
        self._lock = threading.Lock()

    def start(self, monitor: Any, expected: int) -> None:
        """Listen to ``monitor``'s events; ``expected`` compiled pieces (an estimate; the bar fills at the end)."""
        self._monitor, self._done = monitor, {}
        self.bar.max, self.bar.value, self.bar.bar_style = max(1, expected), 0, "info"
        self.bar.description = "compiling"
        self.cells.value, self.status.value = "", ""
        self.cancel.disabled = False
        self._unsubscribe = monitor.subscribe(self.on_event)

    def on_event(self, ev: CompileEvent) -> None:
        """A Monitor listener: one cell per piece as soon as it is compiled or loaded."""
        if ev.piece is None or ev.step not in ("compile", "load", "isolate"):
            return
        if ev.step == "load" and ev.tier == "miss":
            return  # a compile follows
        outcome = _TIER_OUTCOME.get(ev.tier or "", "fallback" if ev.compiler == "eager" else "compiled")
        with self._lock:
            self._done[ev.piece] = outcome
            self.bar.max = max(self.bar.max, len(self._done))
            self.bar.value = len(self._done)
            self.bar.description = f"piece {ev.piece}"
            self.cells.value = "".join(
                f'<span title="piece {i}: {esc(o)}" style="display:inline-block;min-width:22px;margin:1px;padding:0 3px;'
                f'background:{OUTCOME_COLOURS[o]};color:{text_on(OUTCOME_COLOURS[o])};font-size:10px;border-radius:3px">{i}</span>'
                for i, o in sorted(self._done.items()))
            self.status.value = f"piece {ev.piece}: {esc(ev.step)} {esc(seconds(ev.duration_s))}"

    def finish(self, error: BaseException | None, message: str = "") -> None:
        """Stop listening; show ``message`` (or the error) and leave the bar full or red."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.cancel.disabled = True   # a late click reaches no compile: a cancel token lives as long as its compile
        if error is None:
            self.bar.value, self.bar.bar_style, self.bar.description = self.bar.max, "success", "done"
            self.status.value = message
        else:
            cancelled = isinstance(error, CancelledError)
            self.bar.bar_style = "warning" if cancelled else "danger"
            self.bar.description = "cancelled" if cancelled else "failed"
            self.status.value = f'<span style="color:{ERROR}">{esc(type(error).__name__)}: {esc(error)}</span>'

    def _on_cancel(self, _button: Any = None) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            self.cancel.disabled = True
            self.status.value = "cancelling at the next step…"
