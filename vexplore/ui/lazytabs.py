"""LazyTab: a Tab whose hidden tabs reach the page when they are first wanted.

JupyterLab's widget manager builds a view of every child of a Tab, shown or not, in the browser
task that shows the Tab: most of an explorer's ~300 widget views were in its hidden tabs. A
LazyTab sends the page, for each tab, a box of its own (a holder) that holds a small placeholder
until the tab is built (the ``children`` trait's serializer; in Python ``tab.children`` stays the
real tuple, and every widget model is sent as usual). A tab is built (its contents put in its
holder, drawn by the page in a task of its own) when it is first selected, in the page or from
Python, or by ``build(index)``. The Tab's own children in the page never change: ipywidgets'
TabView remakes every tab view after a changed child, and the one shown came back hidden.

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
HOLDER = "vx-tab"            # the class of the box that stands for a tab in the page


def _children_to_json(children: Sequence[widgets.Widget], tab: "LazyTab") -> list[Any]:
    return [_widget_to_json(tab.holder(c), tab) for c in children]


class LazyTab(widgets.Tab):
    """A ``widgets.Tab`` whose tab ``i`` reaches the page when first selected or ``build(i)``;
    ``built(i)`` says whether it has."""

    children = TypedTuple(trait=Instance(widgets.Widget), help="List of widget children").tag(
        sync=True, from_json=_json_to_widget, to_json=_children_to_json)

    def __init__(self, children: Sequence[widgets.Widget] = (), **kwargs: Any) -> None:
        # set before the Tab's state is first sent (in Widget.__init__): the first tab, shown, is built
        self._lock = threading.RLock()   # built from the kernel's thread (a selection) and the explorer's pacer
        self._holders: list[tuple[widgets.Widget, widgets.Box]] = []
        self._first = children[0] if children else None
        self.placeholder = widgets.HTML(f'<div class="{PENDING}" style="color:{MUTED};margin:8px 0">'
                                        "<i>opening… (while a cell runs, when it ends)</i></div>")
        super().__init__(children=tuple(children), **kwargs)
        self.observe(lambda c: self.build(c["new"]), "selected_index")

    def holder(self, child: widgets.Widget) -> widgets.Box:
        """The box that stands for ``child`` in the page (made on first use)."""
        with self._lock:
            for c, box in self._holders:
                if c is child:
                    return box
            box = widgets.VBox([child if child is self._first else self.placeholder],
                               layout=widgets.Layout(width="100%"))
            box.add_class(HOLDER)
            self._holders.append((child, box))
            return box

    def built(self, index: int) -> bool:
        with self._lock:
            if not 0 <= index < len(self.children):
                return False
            child = self.children[index]
            return self.holder(child).children[0] is child

    def build(self, index: int | None) -> bool:
        """Send tab ``index``'s contents to the page (the page draws them); False if it was sent already."""
        with self._lock:
            if index is None or not 0 <= index < len(self.children) or self.built(index):
                return False
            child = self.children[index]
            self.holder(child).children = (child,)
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
