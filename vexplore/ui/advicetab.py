"""The explorer's Advice tab: ``vx.advise``'s advice, one row each, with an Apply button where
vexplore can apply it (the advice carries a config and a metric to measure); the last Apply's
result ("metric: before -> after, kept"); and the session monitor's alerts, kept current by an
``on_alert`` callback.

The HTML comes from the pure builders in ``advicehtml`` (``advice_html`` is the whole list as the
snapshot shows it); this module only wires buttons. Applying is the explorer's job (it owns the
model and the background worker): the tab calls ``apply(advice)`` and is told the outcome.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Sequence

import ipywidgets as widgets

from .advicehtml import (advice_count_html, advice_html, advice_item_html, alerts_html, apply_blocked, apply_html,
                         top_advice_html)
from .style import esc

__all__ = ["AdviceTab"]


class AdviceTab:
    """One row per advice (its HTML and, for advice with a config, an Apply button or why not), the
    result of the last Apply, and the alerts. ``apply(advice)`` is called on a click."""

    def __init__(self, apply: Callable[[Any], Any] | None = None) -> None:
        self.apply = apply
        self.no_model: str | None = None if apply is not None else "no model to apply it to"
        self.advice: tuple[Any, ...] = ()
        self.buttons: list[widgets.Button] = []       # one per row; a row without a config has none
        self.reasons: list[widgets.HTML] = []         # per button: why it is off, or what it is doing
        self.status = widgets.HTML()                  # the last Apply's result (or error)
        self.rows = widgets.VBox()
        self.alerts = widgets.HTML(alerts_html(None))
        self.widget = widgets.VBox([self.status, self.rows, self.alerts])
        self.widget.add_class("vx-advice-tab")
        self._enabled = True
        self._alerts_lock = threading.Lock()

    def show(self, advice: Sequence[Any] | None, why_none: str = "") -> None:
        """List ``advice`` (None: no advisor ran, ``why_none`` says why). The same list again (the
        explorer asks on every report it shows) keeps the rows as they are."""
        if self.rows.children and advice and tuple(advice) == self.advice:
            self._refresh_buttons()
            return
        self.advice = tuple(advice or ())
        self.buttons, self.reasons = [], []
        head = advice_count_html(self.advice) if self.advice else advice_html(advice, why_none)
        old = self.rows.children
        self.rows.children = [widgets.HTML(head), *(self._row(a) for a in self.advice)]
        for w in old:              # a widget left open stays in the kernel (and its front end) for good
            _close(w)
        self._refresh_buttons()

    def _row(self, a: Any) -> widgets.Widget:
        text = widgets.HTML(advice_item_html(a), layout=widgets.Layout(flex="1 1 auto"))
        if getattr(a, "config", None) is None:
            return text
        button = widgets.Button(description="Apply", icon="check", layout=widgets.Layout(width="90px", flex="0 0 auto"),
                                tooltip="recompile with the advised config, measure before and after, "
                                        "keep it if better")
        reason = widgets.HTML(layout=widgets.Layout(max_width="360px"))
        button.on_click(lambda _b, a=a: self._click(a))
        self.buttons.append(button)
        self.reasons.append(reason)
        return widgets.HBox([text, widgets.VBox([button, reason])], layout=widgets.Layout(align_items="flex-start"))

    def _applicable(self) -> list[Any]:
        return [a for a in self.advice if getattr(a, "config", None) is not None]

    def _refresh_buttons(self) -> None:
        for a, button, reason in zip(self._applicable(), self.buttons, self.reasons):
            why = apply_blocked(a, self.no_model)
            button.disabled = why is not None or not self._enabled
            button.tooltip = why or button.tooltip
            reason.value = f'<i style="color:#666666">{esc(why)}</i>' if why else ""

    def _click(self, a: Any) -> None:
        if self.apply is None or apply_blocked(a, self.no_model) is not None:
            return
        self.apply(a)

    # -- what the explorer tells the tab -----------------------------------------------------
    def disable(self, why: str) -> None:
        """No model to apply advice to (saved reports): every Apply is off, saying ``why``."""
        self.no_model = why
        self._refresh_buttons()

    def set_enabled(self, enabled: bool) -> None:
        """Apply off while the explorer is busy (a compile, benchmark or another Apply runs)."""
        self._enabled = enabled
        self._refresh_buttons()

    def applying(self, a: Any) -> None:
        self.status.value = (f"<i>applying <b>{esc(getattr(a, 'code', ''))}</b>: recompiling with the advised "
                             f"config and measuring {esc(getattr(a, 'metric', ''))} before and after…</i>")

    def applied(self, a: Any, result: Any) -> None:
        self.status.value = apply_html(getattr(a, "code", ""), result)

    def failed(self, a: Any, error: BaseException) -> None:
        self.status.value = (f'<div style="color:#b00">Applying {esc(getattr(a, "code", ""))} failed: '
                             f"{esc(type(error).__name__)}: {esc(error)}</div>")

    # -- alerts ------------------------------------------------------------------------------
    def show_alerts(self, alerts: Sequence[Any] | None, why_none: str = "") -> None:
        with self._alerts_lock:       # alerts arrive from compile and sampling threads
            self.alerts.value = alerts_html(alerts, why_none)

    def watch(self, monitor: Any) -> Callable[[], None]:
        """List ``monitor``'s alerts and redraw them on each new one; returns the unsubscribe function.
        The callback holds the tab weakly: a tab that is gone unsubscribes itself."""
        self.show_alerts(monitor.alerts)
        ref = weakref.ref(self)

        def told(_alert: Any) -> None:
            tab = ref()
            if tab is None:
                unsubscribe()
                return
            tab.show_alerts(monitor.alerts)
        unsubscribe = monitor.on_alert(told)
        return unsubscribe


def _close(w: widgets.Widget) -> None:
    """Close ``w`` and every widget inside it."""
    for child in getattr(w, "children", ()):
        _close(child)
    w.close()
