"""Which of a session's alerts an explorer lists: its own model's, and the session's own.

A Session's monitor keeps every alert of every model it compiles; an explorer's Advice tab lists
the alerts about its model (``Alert.model == cm.id``: its reports', graph breaks', recompiles' and
runtime fallbacks') and those about the session itself (``Alert.model is None``: a cache tier that
failed or came back, the process's memory), never another model's or a benchmark variant's.

``model_alerts`` also words them as the explorer does: the report that raised one (``Alert.report``)
as its number in the explorer (``report 2``, not the session-wide id) and notebook cells as
``cell [n], line k``.
"""
from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Callable, Sequence

from .displaytext import CellNames


def is_models(alert: Any, cm: Any) -> bool:
    """Whether ``alert`` is about the session itself or about ``cm`` (a CompiledModel)."""
    return alert.model is None or alert.model == getattr(cm, "id", None)


def model_alerts(alerts: Sequence[Any], cm: Any, number_of: Callable[[int], int | None],
                 names: CellNames | None = None) -> list[Any]:
    """``cm``'s alerts and the session's, oldest first, worded for display: a report's alert
    (``report <id>: ...``) as ``report <number_of(id)>: ...`` (unchanged where that is None), cells named by ``names``."""
    out = []
    for a in alerts:
        if not is_models(a, cm):
            continue
        msg = a.message
        head = f"report {a.report}:"
        if a.report is not None and msg.startswith(head) and number_of(a.report) is not None:
            msg = f"report {number_of(a.report)}:" + msg[len(head):]
        if names is not None:
            msg = names.sub(msg)
        out.append(dataclasses.replace(a, message=msg) if msg != a.message else a)
    return out


def watch(monitor: Any, owner: Any, redraw: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``redraw(owner)`` now and on each new alert of ``monitor``; returns the unsubscribe
    function. ``owner`` is held weakly: once it is gone, the next alert unsubscribes."""
    ref = weakref.ref(owner)

    def told(_alert: Any) -> None:
        o = ref()
        if o is None:
            unsubscribe()
        else:
            redraw(o)
    unsubscribe = monitor.on_alert(told)
    redraw(owner)
    return unsubscribe
