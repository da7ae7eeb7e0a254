"""The explorer's History tab: one row per report of this explorer (numbered 1, 2, 3), a picker
that shows one of them in every view, and two pickers that diff any two (``vx.diff``'s HTML).

The diff is drawn when asked (the Diff button), then follows the pickers; a new report moves
pickers left on the last two reports to the new last two.
"""
from __future__ import annotations

from typing import Callable, Sequence

import ipywidgets as widgets

from ..bench.variants import variant_names
from ..monitor.diff import Diff, diff
from ..monitor.report import CompileReport
from .tables import history_table

HINT = "<i>Pick two reports and press Diff to see what changed between them.</i>"
ONE = "<i>One report so far: compile another configuration to compare them.</i>"


class History:
    """``widget`` (the tab), ``pick`` (show a report), ``table``, ``diff_a``/``diff_b`` and ``diff_button``
    (compare two), ``diff_view`` (the diff's HTML); ``on_show(index)`` is called when the user picks a report."""

    def __init__(self, on_show: Callable[[int], None]) -> None:
        self.on_show = on_show
        self.reports: list[CompileReport] = []
        self.last_diff: Diff | None = None
        self._diffed: tuple[int, int] | None = None     # the rows last_diff compares
        self._quiet = False
        self.pick = widgets.Dropdown(options=[], description="show report")
        self.table = widgets.HTML(layout=widgets.Layout(overflow="auto"))   # a wide table scrolls, not clips
        wide = widgets.Layout(width="420px")
        self.diff_a = widgets.Dropdown(options=[], description="diff", layout=wide)
        self.diff_b = widgets.Dropdown(options=[], description="against", layout=wide)
        self.diff_button = widgets.Button(description="Diff", icon="exchange", tooltip="what changed from the first to the second")
        self.diff_view = widgets.HTML(ONE)
        self.widget = widgets.VBox([self.pick, self.table, widgets.HBox([self.diff_a, self.diff_b, self.diff_button]),
                                    self.diff_view])
        self.widget.add_class("vx-history-tab")
        self.pick.observe(self._picked, "value")
        for w in (self.diff_a, self.diff_b):
            w.observe(self._diff_picked, "value")
        self.diff_button.on_click(lambda _b: self.diff(self.diff_a.value, self.diff_b.value))

    def update(self, reports: Sequence[CompileReport], shown: CompileReport) -> None:
        """Redraw for ``reports`` (in order) with ``shown`` highlighted and picked."""
        old = len(self.reports)
        self.reports = list(reports)
        n = len(self.reports)
        labels = [(f"{i + 1}: {name}", i) for i, name in enumerate(variant_names([r.config for r in self.reports]))]
        a, b = self.diff_a.value, self.diff_b.value
        if a is None or b is None or (a, b) == _last_two(old) or max(a, b) >= n:
            a, b = _last_two(n)
        self._quiet = True
        try:
            self.pick.options = [(f"report {i + 1}: {r.strategy}", i) for i, r in enumerate(self.reports)]
            self.pick.value = next((i for i, r in enumerate(self.reports) if r is shown), None)
            self.diff_a.options, self.diff_b.options = labels, labels
            self.diff_a.value, self.diff_b.value = a, b
        finally:
            self._quiet = False
        self.table.value = history_table(self.reports, current=shown)
        self.diff_button.disabled = n < 2
        if self.last_diff is not None and n >= 2 and (a, b) != self._diffed:
            self.diff(a, b)
        elif self.last_diff is None:
            self.diff_view.value = HINT if n >= 2 else ONE

    def diff(self, a: int, b: int) -> Diff:
        """Show ``vx.diff`` of reports ``a`` and ``b`` (indices in this explorer) and return it."""
        if not (0 <= a < len(self.reports) and 0 <= b < len(self.reports)):
            raise IndexError(f"History.diff: reports {a + 1} and {b + 1}: this explorer has {len(self.reports)}")
        self._quiet = True
        try:
            self.diff_a.value, self.diff_b.value = a, b
        finally:
            self._quiet = False
        names = [label for label, _i in self.diff_a.options]
        self.last_diff = diff(self.reports[a], self.reports[b], names=(f"report {names[a]}", f"report {names[b]}"))
        self.diff_view.value = self.last_diff._repr_html_()
        self._diffed = (a, b)
        return self.last_diff

    def _picked(self, change: dict) -> None:
        if not self._quiet and change["new"] is not None:
            self.on_show(change["new"])

    def _diff_picked(self, _change: dict) -> None:
        if not self._quiet and self.last_diff is not None and None not in (self.diff_a.value, self.diff_b.value):
            self.diff(self.diff_a.value, self.diff_b.value)


def _last_two(n: int) -> tuple[int, int]:
    """The pickers' default: the last two of ``n`` reports (the only one twice, while there is one)."""
    return max(n - 2, 0), max(n - 1, 0)
