"""Which of a session's alerts an explorer lists: its own model's, and the session's own.

A Session's monitor keeps every alert of every model it compiles; an explorer's Advice tab lists
the alerts about its model and those about the session itself (a cache tier that failed or came
back, the process's memory), never another model's. Alerts carry no model, so they are matched by
what raised them: a report of this model (``report N: ...``, N its id), one of its graph breaks,
recompiles or runtime fallbacks (their text starts the message). An alert that matches none of
them is another model's (or a benchmark variant's) and is left out.

``model_alerts`` also words them as the explorer does: the report as its number in the explorer
(``report 2``, not the session-wide id) and notebook cells as ``cell [n], line k``.
"""
from __future__ import annotations

import dataclasses
import re
import weakref
from typing import Any, Callable, Sequence

from .displaytext import CellNames

SESSION_ALERTS = frozenset({"cache-failure", "cache-recovered", "memory-growth"})   # the session's, every model's
_REPORT = re.compile(r"^report (\d+):")


def is_models(alert: Any, cm: Any) -> bool:
    """Whether ``alert`` is about the session itself or about ``cm`` (a CompiledModel)."""
    if alert.code in SESSION_ALERTS:
        return True
    msg = alert.message
    m = _REPORT.match(msg)
    if m:
        return int(m.group(1)) in {r.id for r in getattr(cm, "reports", ())}
    if alert.code == "graph-break":
        return any(msg.startswith(f"graph break: {b} —") for b in getattr(cm, "graph_breaks", ()))
    if alert.code == "recompile-storm":
        return any(msg.startswith(f"{r.name or r.guard or 'the model'} keeps changing ({r.reason}):")
                   for r in getattr(cm, "recompiles", ()))
    if alert.code == "runtime-fallback":
        return any(msg.startswith(f"{fb} —") for fb in getattr(cm, "runtime_fallbacks", ()))
    return False


def model_alerts(alerts: Sequence[Any], cm: Any, number_of: Callable[[int], int | None],
                 names: CellNames | None = None) -> list[Any]:
    """``cm``'s alerts and the session's, oldest first, worded for display: ``report <id>`` as
    ``report <number_of(id)>`` (unchanged where that is None), cells named by ``names``."""
    out = []
    for a in alerts:
        if not is_models(a, cm):
            continue
        msg = a.message
        m = _REPORT.match(msg)
        if m and number_of(int(m.group(1))) is not None:
            msg = f"report {number_of(int(m.group(1)))}:" + msg[m.end():]
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
