"""The explorer's Advice tab: ``vx.advise``'s advice, one row each, with an Apply button where
vexplore can apply it (the advice carries a config and a metric to measure); the last Apply's
result (its figures before and after) with a Revert button after a kept Apply; and the session
monitor's alerts about this model, which the explorer keeps current (``modelalerts.watch``).

Each row is a flex box: the advice text takes the room left and wraps, the button keeps the width
its label needs (a fixed width clipped it to "✔ Ap" in a narrow notebook).

The HTML comes from the pure builders in ``advicehtml`` (``advice_html`` is the whole list as the
snapshot shows it); this module only wires buttons. Applying is the explorer's job (it owns the
model and the background worker): the tab calls ``apply(advice)`` and is told the outcome.
Reverting is the explorer's too: the tab calls ``revert(config)`` with the config from before the
Apply (``applying(advice, before)``, or the config the advice was made against, ``advice.base``),
and is told when it ends (``reverted(error)``).
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Sequence

import ipywidgets as widgets

from .advicehtml import (advice_count_html, advice_html, advice_item_html, alerts_html, apply_blocked, apply_html,
                         revert_html)
from .style import ERROR, MUTED, esc

__all__ = ["AdviceTab"]


class AdviceTab:
    """One row per advice (its HTML and, for advice with a config, an Apply button or why not), the
    result of the last Apply, and the alerts. ``apply(advice)`` is called on a click; ``revert(config)``
    (recompile the model under ``config`` in the background; False while busy) on Revert, whose end
    the explorer tells with ``reverted(error)``."""

    def __init__(self, apply: Callable[[Any], Any] | None = None,
                 revert: Callable[[Any], bool] | None = None) -> None:
        self.apply = apply
        self.revert = revert
        self.no_model: str | None = None if apply is not None else "no model to apply it to"
        self.advice: tuple[Any, ...] = ()
        self.buttons: list[widgets.Button] = []       # one per row; a row without a config has none
        self.reasons: list[widgets.HTML] = []         # per button: why it is off, or what it is doing
        self.status = widgets.HTML(layout=widgets.Layout(flex="1 1 0%", min_width="0"))   # the last Apply's result
        self.revert_button = widgets.Button(description="Revert", icon="undo", layout=_button_layout(),
                                            tooltip="recompile with the config from before this Apply")
        self.revert_button.layout.display = "none"    # shown after a kept Apply
        self.revert_button.add_class("vx-revert-button")
        ref = weakref.ref(self)     # the button lives in ipywidgets' registry: it must not keep the tab alive
        self.revert_button.on_click(lambda _b: (tab := ref()) is not None and tab._click_revert())
        self.revert_status = widgets.HTML()
        self.rows = widgets.VBox(layout=widgets.Layout(width="100%"))
        self.alerts = widgets.HTML(alerts_html(None))
        self.widget = widgets.VBox([widgets.HBox([self.status, self.revert_button], layout=_row_layout()), self.revert_status,
                                    self.rows, self.alerts], layout=widgets.Layout(width="100%"))
        self.widget.add_class("vx-advice-tab")
        self._enabled = True
        self._alerts_lock = threading.Lock()
        self._before: tuple[str, Any] | None = None     # (advice code, config) the Apply in hand started from
        self._undo: tuple[str, Any] | None = None       # what Revert goes back to, after a kept Apply
        self._reverting: str | None = None              # the advice code of a revert under way

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
        text = widgets.HTML(advice_item_html(a), layout=widgets.Layout(flex="1 1 0%", min_width="0"))
        if getattr(a, "config", None) is None:
            return text
        button = widgets.Button(description="Apply", icon="check", layout=_button_layout(),
                                tooltip="recompile with the advised config, measure before and after, "
                                        "keep it if better")
        button.add_class("vx-apply-button")
        reason = widgets.HTML(layout=widgets.Layout(max_width="320px"))
        button.on_click(lambda _b, a=a: self._click(a))
        self.buttons.append(button)
        self.reasons.append(reason)
        actions = widgets.VBox([button, reason], layout=widgets.Layout(flex="0 0 auto", max_width="45%",
                                                                        align_items="flex-end"))
        return widgets.HBox([text, actions], layout=_row_layout())

    def _applicable(self) -> list[Any]:
        return [a for a in self.advice if getattr(a, "config", None) is not None]

    def _refresh_buttons(self) -> None:
        for a, button, reason in zip(self._applicable(), self.buttons, self.reasons):
            why = apply_blocked(a, self.no_model)
            button.disabled = why is not None or not self._enabled
            button.tooltip = why or button.tooltip
            reason.value = f'<i style="color:{MUTED}">{esc(why)}</i>' if why else ""
        self.revert_button.disabled = not self._enabled

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
        """Apply and Revert off while the explorer is busy (a compile, benchmark or another Apply runs)."""
        self._enabled = enabled
        self._refresh_buttons()

    def reverted(self, error: BaseException | None = None) -> None:
        """The revert under way ended: the model runs the config from before the Apply again, or
        ``error`` says why not."""
        if self._reverting is None:
            return
        code, self._reverting = self._reverting, None
        self.revert_status.value = revert_html(code, "done" if error is None else "failed", error)

    def applying(self, a: Any, before: Any = None) -> None:
        """An Apply of ``a`` starts, from the model's config ``before`` (default: the config the
        advice was made against, ``a.base``): what Revert goes back to if it is kept."""
        self._before = (getattr(a, "code", ""), before if before is not None else getattr(a, "base", None))
        self._show_revert(None)
        self.revert_status.value = ""
        self.status.value = (f"<i>applying <b>{esc(getattr(a, 'code', ''))}</b>: recompiling with the advised "
                             f"config and measuring {esc(getattr(a, 'metric', ''))} before and after…</i>")

    def applied(self, a: Any, result: Any) -> None:
        self.status.value = apply_html(getattr(a, "code", ""), result)
        before = self._before
        self._show_revert(before if result.kept and before is not None and before[1] is not None else None)

    def failed(self, a: Any, error: BaseException) -> None:
        self._show_revert(None)
        self.status.value = (f'<div style="color:{ERROR}">Applying {esc(getattr(a, "code", ""))} failed: '
                             f"{esc(type(error).__name__)}: {esc(error)}</div>")

    # -- revert ------------------------------------------------------------------------------
    def _show_revert(self, undo: tuple[str, Any] | None) -> None:
        """Offer Revert (to ``undo``: advice code, config) where the explorer can recompile, else hide it."""
        self._undo = undo if self.revert is not None else None
        self.revert_button.layout.display = None if self._undo is not None else "none"
        self.revert_button.disabled = not self._enabled

    def _click_revert(self) -> None:
        if self._undo is None or self.revert is None:
            return
        code, config = self._undo
        self._reverting = code
        if not self.revert(config):
            self._reverting = None
            self.revert_status.value = revert_html(code, "busy")
            return
        self._show_revert(None)
        if self._reverting is not None:          # still running (a revert that ended at once has said so)
            self.revert_status.value = revert_html(code, "running")

    # -- alerts ------------------------------------------------------------------------------
    def show_alerts(self, alerts: Sequence[Any] | None, why_none: str = "") -> None:
        with self._alerts_lock:       # alerts arrive from compile and sampling threads
            self.alerts.value = alerts_html(alerts, why_none)


def _row_layout() -> widgets.Layout:
    """A row: the text takes the room left (and wraps), the actions keep their width. A layout of its own:
    a Layout is a widget, shared it would carry one row's change to all."""
    return widgets.Layout(display="flex", flex_flow="row nowrap", align_items="flex-start", width="100%")


def _button_layout() -> widgets.Layout:
    """As wide as the button's label: never clipped (a fixed width cut it to "✔ Ap")."""
    return widgets.Layout(width="auto", min_width="max-content", flex="0 0 auto")


def _close(w: widgets.Widget) -> None:
    """Close ``w`` and every widget inside it."""
    for child in getattr(w, "children", ()):
        _close(child)
    w.close()
