"""LazyTab: a Tab whose hidden tabs reach the page when they are first wanted.

JupyterLab's widget manager builds a view of every child of a Tab, shown or not, in the browser
task that shows the Tab: most of an explorer's ~300 widget views were in its hidden tabs. A
LazyTab sends the page a small placeholder for each tab not yet built (the ``children`` trait's
serializer; in Python ``tab.children`` stays the real tuple, and every widget model is sent as
usual). A tab is built (its contents sent in place of the placeholder, and drawn by the page in a
task of its own) when it is first selected, in the page or from Python, or by ``build(index)``.

Selecting a tab in the page reaches the kernel as a comm message: while a cell runs, a tab not yet
built shows its placeholder until the kernel is free. The explorer builds every tab without a
plotly chart shortly after it is shown (``chart.HeldCharts``), so only the tabs whose charts would
cost the page a plotly draw wait for a selection (chart.py says what the first one costs).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import ipywidgets as widgets
from ipywidgets.widgets.trait_types import TypedTuple
from ipywidgets.widgets.widget import _json_to_widget, _widget_to_json
from traitlets import Instance

from .style import MUTED

PENDING = "vx-tab-pending"   # the placeholder's class: the page shows it in each tab not built yet


def _children_to_json(children: Sequence[widgets.Widget], tab: "LazyTab") -> list[Any]:
    built = tab._built
    return [_widget_to_json(c if any(c is b for b in built) else tab.placeholder, tab) for c in children]


class LazyTab(widgets.Tab):
    """A ``widgets.Tab`` whose tab ``i`` reaches the page when first selected or ``build(i)``;
    ``built(i)`` says whether it has."""

    children = TypedTuple(trait=Instance(widgets.Widget), help="List of widget children").tag(
        sync=True, from_json=_json_to_widget, to_json=_children_to_json)

    def __init__(self, children: Sequence[widgets.Widget] = (), **kwargs: Any) -> None:
        # set before the Tab's state is first sent (in Widget.__init__): the selected tab is built
        self._lock = threading.RLock()   # built from the kernel's thread (a selection) and the explorer's pacer
        self._built: list[widgets.Widget] = list(children[:1])
        self.placeholder = widgets.HTML(f'<div class="{PENDING}" style="color:{MUTED};margin:8px 0"><i>opening…</i></div>')
        super().__init__(children=tuple(children), **kwargs)
        self.observe(lambda c: self.build(c["new"]), "selected_index")

    def built(self, index: int) -> bool:
        with self._lock:
            return 0 <= index < len(self.children) and any(self.children[index] is b for b in self._built)

    def build(self, index: int | None) -> bool:
        """Send tab ``index``'s contents to the page (the page draws them); False if it was sent already."""
        with self._lock:
            if index is None or not 0 <= index < len(self.children) or self.built(index):
                return False
            child = self.children[index]
            self._built.append(child)
            self.send_state("children")
        if isinstance(child, StagedBox):
            child.reveal()
        return True


def _staged_to_json(children: Sequence[widgets.Widget], box: "StagedBox") -> list[Any]:
    return [_widget_to_json(c, box) for c in children[:box.shown]]


class StagedBox(widgets.HBox):
    """An HBox (wrapping its rows) whose children reach the page one at a time, ``gap_s`` apart,
    from ``reveal()`` on (a LazyTab calls it when it builds the tab): a tab of charts is drawn a
    chart per browser task, not all in one. In Python ``children`` is the real tuple."""

    children = TypedTuple(trait=Instance(widgets.Widget), help="List of widget children").tag(
        sync=True, from_json=_json_to_widget, to_json=_staged_to_json)

    def __init__(self, children: Sequence[widgets.Widget] = (), gap_s: float = 0.25, **kwargs: Any) -> None:
        self.shown, self.gap_s, self._revealing = 1, gap_s, threading.Event()
        kwargs.setdefault("layout", widgets.Layout(flex_flow="row wrap"))
        super().__init__(children=tuple(children), **kwargs)

    def reveal(self) -> None:
        """Send the children held back, one at a time, from a daemon thread (once)."""
        if self.shown >= len(self.children) or self._revealing.is_set():
            return
        self._revealing.set()

        def pace() -> None:
            while self.shown < len(self.children):
                time.sleep(self.gap_s)
                self.shown += 1
                self.send_state("children")
        threading.Thread(target=pace, name="vexplore-staged", daemon=True).start()
