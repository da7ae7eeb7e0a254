"""The explorer dashboard: ``vx.explore(model, *inputs, config=...)``, or ``vx.explore(report)``
(``vx.explore([r1, r2])``) to replay saved reports without the model.

One ipywidgets tree whose views update in place: the summary, controls with Compile/Cancel and
per-piece progress, tabs for the graph (its breaks and recompiles listed above it), the pieces
graph and table, the generated code, the report history, the advice (Apply, alerts), the
compile-time charts (plotly's mime type in Output widgets: ``chart.FigureView``), the runtime
profile and the tuner, and the benchmark panel. Every view is drawn by a pure builder over a
CompileReport (or the advisor's Advice); this module only wires widgets to them.

What the page draws first is light (issue 28): the Graph tab and what is around the tabs. The
other tabs reach the page after it, one at a time (``lazytabs.LazyTab``), but a tab with a plotly
chart (Compile time; Run and Tune once they have one) waits until it is opened: the page's first
plotly chart costs a task of about a second (chart.py says why), the user's to take.

Names and places, one way everywhere: a report is its number in this explorer (1, 2, 3, as the
History tab lists them) in the summary, chart titles, History, alerts, snapshot and export; a
notebook cell's code is ``cell [n], line k`` (``displaytext.CellNames``) wherever a frame shows;
evidence is shown to three significant figures (the advice keeps its data); the Advice tab lists
this model's alerts and the session's, not another model's (``modelalerts``).
"""
from __future__ import annotations

import logging
from functools import partial
from typing import Any, Sequence

import ipywidgets as widgets
import torch

from ..config import CompileConfig
from ..engine.model import CompiledModel
from ..engine.model import compile as vx_compile
from ..engine.ops import op_name
from ..errors import VexploreError
from ..monitor.report import CompileReport
from ..session import Session
from .advicehtml import apply_text, explanations_html, top_advice_html
from .advicetab import AdviceTab
from .benchpanel import BenchPanel
from .chart import FigureView, HeldCharts, holds_chart
from .code import code_html, pass_pair
from .controls import Controls
from .displaytext import CellNames, shown_advice
from .figures import compile_time_figure, timeline_figure
from .graphwidget import GraphWidget
from .history import History
from .jobs import Worker
from .lazytabs import LazyTab, StagedBox
from .modelalerts import model_alerts, watch
from .progress import Progress
from .render import graph_view
from .runtab import RunTab
from .tunetab import TuneTab
from .snapshot import LiveSnapshot, advice_for
from .style import ERROR, MUTED, esc, seconds, theme_style
from .tables import PIECE_COLUMNS, pieces_table, summary_html

log = logging.getLogger(__name__)

NO_COMPILE = ("Compile is off: these are saved reports, and recompiling needs the model; "
              "vx.explore(model, *inputs) where the model is.")
NO_BENCH = "off: timing needs the model and its inputs, and these are saved reports."
NO_APPLY = ("Apply is off: these are saved reports, and applying advice recompiles the model; "
            "vx.explore(model, *inputs) where the model is.")
NO_PROFILE = "Profile is off: these are saved reports, and profiling runs the model; their own profiles show here."
NO_PROFILE_INPUTS = ("Profile is off: the explorer has no inputs to call the model with; "
                     "cm.profile(*inputs) or %vxprofile cm(...) with them.")
NO_ADVICE = ("No advice: the advisor reads the model and its history (vx.advise(cm)), and these are saved reports; "
             "advice computed where the model is can be listed here with explorer.show_advice(advice).")
CHARTS_AFTER_S = 2.0   # a dashboard not shown by IPython's display sends its charts this long after it is made
CHART_GAP_S = 0.25     # between the dashboard and each chart: each is drawn in a browser task of its own


class Explorer(widgets.VBox):
    """The dashboard over one CompiledModel. ``explorer.compile(cfg)`` recompiles (no re-trace) in a
    background thread; ``explorer.wait()`` blocks until it is done; ``explorer.reports`` is the history.

    With ``cm`` None it replays ``reports`` (saved ones: ``vx.load_report``): graph, pieces, code,
    timeline and history work; Compile and the benchmark, which need the model, are off and say why."""

    def __init__(self, cm: CompiledModel | None, inputs: tuple[Any, ...] = (),
                 reports: Sequence[CompileReport] = ()) -> None:
        if cm is not None and cm.report is None:
            raise VexploreError("vx.explore: the model has not been compiled yet; call it once first.")
        if cm is None and not reports:
            raise VexploreError("vx.explore: give a model and its inputs, or reports (vx.load_report(path)).")
        self.cm, self.inputs = cm, inputs
        self.session: Session | None = cm.session if cm is not None else None
        self.reports: list[CompileReport] = [cm.report] if cm is not None else list(reports)
        self.configs: list[CompileConfig] = [cm.config] if cm is not None else []
        self.shown: CompileReport = self.reports[-1]
        self.worker = Worker()
        self._drawing = False
        self.names = CellNames.current()     # notebook cells by number, refreshed on every show()
        self.compile_button = widgets.Button(description="Compile", icon="cogs", button_style="primary",
                                             tooltip="recompile the captured graph with these settings (no re-trace)")
        self.progress = Progress()
        self.summary = widgets.HTML()
        self.top_advice = widgets.HTML()     # the most severe advice, under the summary
        self.advice: tuple[Any, ...] | None = None
        self._shown_advice: tuple[Any, ...] | None = None   # self.advice as the views show it (displaytext.shown_advice)
        self.applied: list[tuple[Any, Any]] = []   # (Advice, ApplyResult) of each Apply, oldest first
        self._build_views()
        top, bottom = self._live_parts(cm, inputs) if cm is not None else self._replay_parts()
        name = type(cm.model).__name__ if cm is not None else f"{len(self.reports)} saved report(s)"
        self.snapshot = LiveSnapshot(self)   # the static copy the notebook keeps; hide_rule hides it while we render
        super().__init__([
            widgets.HTML(f"<h3 style='margin:4px 0'>vexplore — {esc(name)}</h3>{self.snapshot.hide_rule}{theme_style()}"), self.summary,
            self.top_advice, *top, self.tabs, bottom], layout=widgets.Layout(width="100%"))
        self.add_class("vexplore-explorer")
        self.show(self.shown)
        # sent after the dashboard, one at a time (chart.py says why): _ipython_display_ releases them;
        # then the hidden tabs without a plotly chart are built, one at a time (lazytabs.py says why)
        self.charts = HeldCharts([self.bars, self.timeline, *((self.bench.chart,) if self.bench is not None else ()),
                                  *self.run_view.charts],
                                 CHART_GAP_S, CHARTS_AFTER_S,
                                 then=[partial(self._build_tab, i) for i in range(1, len(self.tabs.children))])

    def _live_parts(self, cm: CompiledModel, inputs: tuple[Any, ...]) -> tuple[list[widgets.Widget], widgets.Widget]:
        """Controls, Compile and progress (above the tabs) and the benchmark panel (below): they need the model."""
        ops = {op_name(n) for cg in cm.graphs for n in cg.gm.graph.nodes if n.op.startswith("call_")}
        self.controls: Controls | None = Controls(cm.config, ops, cm.report.device)
        self.bench: BenchPanel | None = BenchPanel(cm, inputs, sizes=_default_sizes(inputs))
        self.compile_button.on_click(lambda _b: self._on_compile())
        self.bench.run.on_click(lambda _b: self.benchmark())
        watch(cm.session.monitor, self, Explorer._draw_alerts)
        if not inputs:
            self.run_view.disable(NO_PROFILE_INPUTS)
        return [self.controls.widget, widgets.HBox([self.compile_button]), self.progress.widget], self.bench.widget

    def _replay_parts(self) -> tuple[list[widgets.Widget], widgets.Widget]:
        """In a replay: Compile disabled and the benchmark replaced, each with a one-line reason."""
        self.controls, self.bench = None, None
        self.compile_button.disabled = True
        self.compile_button.tooltip = NO_COMPILE
        note = widgets.HTML(f'<span class="vx-replay-note" style="color:{MUTED}"><i>{esc(NO_COMPILE)}</i></span>')
        bench = widgets.HTML(f'<div class="vx-replay-note"><b>Benchmark</b> — <i>{esc(NO_BENCH)}</i></div>')
        self.advice_view.disable(NO_APPLY)
        self.run_view.disable(NO_PROFILE)
        self.advice_view.show_alerts(None, "no live session: these are saved reports")
        return [widgets.HBox([self.compile_button, note])], bench

    # -- views -----------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.expand = widgets.SelectMultiple(options=[], description="expand", rows=4,
                                             layout=widgets.Layout(width="340px"))
        self.fold = widgets.Checkbox(value=True, description="fold identical pieces", indent=False)
        self.graph = widgets.HTML()
        self.graph_view = GraphWidget()
        self.explain = widgets.HTML()        # the graph breaks and recompiles, above the graph view
        self.advice_view = AdviceTab(self.apply_advice, revert=self.revert_to)
        self.sort_by = widgets.Dropdown(options=[(h, c) for c, (h, *_r) in PIECE_COLUMNS.items()], value="index",
                                        description="sort by")
        self.descending = widgets.Checkbox(value=False, description="descending", indent=False)
        self.pieces = widgets.HTML()
        self.code_piece = widgets.Dropdown(options=[], description="piece")
        self.code = widgets.HTML()
        self.history_view = History(lambda i: self.show(self.reports[i]))
        self.history_pick, self.history = self.history_view.pick, self.history_view.table
        self.run_view = RunTab(lambda calls: self.profile(calls))     # the Run tab: runtime profiles
        self.bars = FigureView(held=True)        # sent after the dashboard (self.charts)
        self.timeline = FigureView(held=True)
        # tabs reach the page when first selected or built after the first render (lazytabs.py); the
        # compile-time charts have a tab of their own, drawn when opened (chart.py says what the first costs)
        self.tabs = LazyTab(children=[
            widgets.VBox([self.explain, self.graph_view]),
            widgets.VBox([widgets.HBox([self.expand, self.fold]), self.graph]),
            widgets.VBox([widgets.HBox([self.sort_by, self.descending]), self.pieces]),
            widgets.VBox([self.code_piece, self.code]),
            self.history_view.widget, self.advice_view.widget,
            StagedBox([self.bars, self.timeline], gap_s=CHART_GAP_S),
            self.run_view.widget])
        titles = ("Graph", "Pieces graph", "Pieces", "Code", "History", "Advice", "Compile time", "Run")
        for i, title in enumerate(titles):
            self.tabs.set_title(i, title)
        # the Tune tab: vx.tune in the explorer's worker; Apply through the Advice tab's path (Revert too)
        self.tune_view = TuneTab(self.cm, self.inputs, self.session, worker=self.worker, apply=self.apply_advice)
        self.tune_view.add_to(self.tabs)
        self.tune_view.on_done = self._tuned
        for w in (self.expand, self.fold):
            w.observe(lambda _c: self._draw_graph(), "value")
        for w in (self.sort_by, self.descending):
            w.observe(lambda _c: self._draw_pieces(), "value")
        self.code_piece.observe(lambda _c: self._draw_code(), "value")

    def _build_tab(self, index: int) -> None:
        """Build tab ``index`` in the page unless it would draw a plotly chart: that one waits until opened."""
        if not holds_chart(self.tabs.children[index]):
            self.tabs.build(index)

    def show(self, report: CompileReport) -> None:
        """Draw every view for ``report``, in place."""
        self._drawing = True
        self.names = CellNames.current()
        try:
            self.shown = report
            self.summary.value = self.names.sub(summary_html(report, number=self.number(report)))
            self.expand.options = [(f"piece {p.index} · {p.kind} · {p.nodes} nodes", p.index) for p in report.pieces]
            self.expand.value = ()
            keep = self.code_piece.value
            self.code_piece.options = [(f"piece {p.index} ({p.nodes} nodes)", p.index) for p in report.pieces
                                       if p.kind == "compiled" and p.same_as is None]
            values = [v for _, v in self.code_piece.options]
            self.code_piece.value = keep if keep in values else (values[0] if values else None)
        finally:
            self._drawing = False
        self._draw_explanations(report)
        self._draw_graph()
        self._draw_pieces()
        self._draw_code()
        self.history_view.update(self.reports, report)
        self.bars.show(compile_time_figure(report, self.number(report)))
        self.timeline.show(timeline_figure(report))
        self.run_view.show(report, self.names)
        if self.cm is not None:
            self._draw_alerts()
        self.show_advice()

    def _draw_graph(self) -> None:
        if not self._drawing:
            self.graph.value = self.names.sub(graph_view(self.shown, expanded=self.expand.value, fold=self.fold.value).html)

    def _draw_pieces(self) -> None:
        if not self._drawing:
            self.pieces.value = self.names.sub(pieces_table(self.shown, self.sort_by.value, self.descending.value))

    def _draw_code(self) -> None:
        if self._drawing:
            return
        p = next((p for p in self.shown.pieces if p.index == self.code_piece.value), None)
        if p is None:
            self.code.value = "<i>no compiled piece</i>"
            return
        pair = pass_pair(p, self.reports, self.number(self.shown))   # the same piece with/without post-grad passes
        self.code.value = self.names.sub(code_html(p, self.shown.device, pair))

    def number(self, report: CompileReport) -> int | None:
        """``report``'s number in this explorer (1, 2, 3 in the History tab), None if it is not one of them."""
        return next((i + 1 for i, r in enumerate(self.reports) if r is report), None)

    # -- actions ---------------------------------------------------------------------------
    def _on_compile(self) -> None:
        try:
            cfg = self.controls.config()
        except VexploreError as e:
            self.progress.status.value = f'<span style="color:{ERROR}">{esc(e)}</span>'
            return
        self.compile(cfg)

    def compile(self, config: CompileConfig | None = None, wait: bool = False) -> bool:
        """Recompile under ``config`` (default: the controls') in the background; False if busy."""
        if self.cm is None:
            raise VexploreError(f"explorer.compile: {NO_COMPILE}")
        cfg = config if config is not None else self.controls.config()
        started = self._recompile("compile", cfg)
        if wait:
            self.wait()
        return started

    def _recompile(self, job: str, cfg: CompileConfig) -> bool:
        """``cm.recompile(cfg)`` in the background as ``job`` ("compile" or "revert"); False if busy."""
        if not self._claim(self.progress.status):
            return False
        self.progress.start(self.session.monitor, self._unique_compiles())
        return self.worker.start(job, lambda: self.cm.recompile(cfg), lambda r, e: self._compiled(cfg, r, e, job))

    def _compiled(self, cfg: CompileConfig, report: CompileReport | None, error: BaseException | None,
                  job: str = "compile") -> None:
        try:
            if error is None and report is not None:
                self.reports.append(report)
                if cfg not in self.configs:
                    self.configs.append(cfg)
                self.show(report)
                self.progress.finish(None, f"report {self.number(report)}: {esc(report.strategy)}, "
                                           f"{len(report.pieces)} pieces in {esc(seconds(report.wall_s))}")
            else:
                self.progress.finish(error)
                if not isinstance(error, VexploreError):
                    log.error("vexplore explorer: recompile failed", exc_info=error)
        finally:
            self._busy(False)
            if job == "revert":
                self.advice_view.reverted(error)

    def benchmark(self, wait: bool = False) -> bool:
        """Time eager and every configuration compiled so far in the background; False if busy."""
        if self.bench is None:
            raise VexploreError(f"explorer.benchmark: {NO_BENCH}")
        if not self._claim(self.bench.status):
            return False
        self.bench.status.value = "compiling the variants…"
        started = self.worker.start("benchmark", lambda: self.bench.measure(self.configs, self._bench_status),
                                    self._benchmarked)
        if wait:
            self.wait()
        return started

    def _bench_status(self, text: str) -> None:
        self.bench.status.value = esc(text)

    def _benchmarked(self, report: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                self.bench.draw(report)
                self.show_advice()   # the benchmark's figures are evidence too (and the snapshot is redrawn)
                self.bench.status.value = f"{len(report.rows)} rows on {esc(report.device)}"
            else:
                self.bench.status.value = f'<span style="color:{ERROR}">{esc(type(error).__name__)}: {esc(error)}</span>'
                if not isinstance(error, VexploreError):
                    log.error("vexplore explorer: benchmark failed", exc_info=error)
        finally:
            self._busy(False)

    def profile(self, calls: int = 20, warmup: int = 5, wait: bool = False) -> bool:
        """Profile the model on the explorer's inputs in the background (``cm.profile``, under no_grad);
        the Run tab shows it, the report keeps it. False if busy."""
        if self.cm is None or not self.inputs:
            raise VexploreError(f"explorer.profile: {NO_PROFILE if self.cm is None else NO_PROFILE_INPUTS}")
        if not self._claim(self.run_view.status):
            return False
        self.run_view.profiling(calls)
        before = self.cm.report

        def run() -> Any:
            with torch.no_grad():     # as vx.explore called it: a call with grad on would trace anew
                return self.cm.profile(*self.inputs, calls=calls, warmup=warmup)
        started = self.worker.start("profile", run, lambda _p, e: self._profiled(before, e))
        if wait:
            self.wait()
        return started

    def _profiled(self, before: CompileReport, error: BaseException | None) -> None:
        """cm.profile put the profile on a copy of the model's report: it takes the old one's place here."""
        try:
            if error is None:
                new = self.cm.report
                self.reports = [new if r is before else r for r in self.reports]
                if self.shown is before:
                    self.shown = new
                    self.history_view.update(self.reports, new)
                    self.show_advice()        # the profile's advice (and the snapshot is redrawn)
                else:                         # an older report was shown: every view on the one profiled
                    self.show(new)
                self.run_view.profiled(new, self.names)
            else:
                self.run_view.failed(error)
                if not isinstance(error, VexploreError):
                    log.error("vexplore explorer: profiling failed", exc_info=error)
        finally:
            self._busy(False)

    def _tuned(self, _result: Any) -> None:
        """A tune ended (in the worker thread): the model's latest report, back at the start config and
        carrying the tune (``report.tunes``), joins History and is shown."""
        new = self.cm.report if self.cm is not None else None
        if new is not None and not any(r is new for r in self.reports):
            self.reports.append(new)
            self.show(new)

    def _claim(self, status: Any) -> bool:
        """Start a background job: False (said on ``status``) while another runs, else the controls
        are disabled until it ends."""
        if self.worker.busy:
            status.value = f"busy: {esc(self.worker.name)} is running"
            return False
        self._busy(True)
        return True

    def _unique_compiles(self) -> int:
        """Compiles a recompile of the shown report runs (its unique compiled pieces): the progress bar's length."""
        return sum(p.kind == "compiled" and p.same_as is None for p in self.shown.pieces)

    def _busy(self, busy: bool) -> None:
        self.compile_button.disabled = busy
        self.bench.run.disabled = busy
        self.controls.set_enabled(not busy)
        self.advice_view.set_enabled(not busy)
        self.history_pick.disabled = busy   # an older report is shown only while the model stands still
        self.run_view.set_enabled(not busy)
        self.tune_view.set_enabled(not busy)

    # -- explanations and advice -----------------------------------------------------------
    def _draw_explanations(self, report: CompileReport) -> None:
        """The graph view with each graph's breaks and recompiles marked, and their list above it."""
        live = self.cm is not None
        self.graph_view.show(report, self.cm.graph_breaks if live else None, self.cm.recompiles if live else None)
        self.explain.value = explanations_html(self.graph_view.graph["explanations"], self.graph_view.graph["graphs"])

    def show_advice(self, advice: Sequence[Any] | None = None) -> None:
        """List ``advice`` in the Advice tab and the top one under the summary; by default
        ``vx.advise(cm)`` anew (saved reports keep what they were given, else say why there is none)."""
        if advice is not None:
            self.advice = tuple(advice)
        elif self.cm is not None:   # with the explorer's benchmark: host-bound, noisy timing, accuracy
            self.advice = advice_for(self.cm, self.bench.report)
        self._shown_advice = shown_advice(self.advice, self.names)   # cells named, evidence to 3 figures
        self.advice_view.show(self._shown_advice, NO_ADVICE if self.cm is None else "")
        self.top_advice.value = top_advice_html(self._shown_advice)
        self.snapshot.update()

    def _original(self, advice: Any) -> Any:
        """The advisor's Advice of one the Advice tab shows (its display copy), else ``advice`` itself."""
        shown = self._shown_advice or ()
        return next((a for s, a in zip(shown, self.advice or ()) if s is advice or s == advice), advice)

    def _draw_alerts(self) -> None:
        """This model's and the session's alerts in the Advice tab (``modelalerts``), numbered as here."""
        numbers = {r.id: i + 1 for i, r in enumerate(self.reports)}   # session-wide id -> number here
        self.advice_view.show_alerts(model_alerts(self.session.monitor.alerts, self.cm, numbers.get, self.names))

    def apply_advice(self, advice: Any, wait: bool = False) -> bool:
        """Apply ``advice`` in the background (``advice.apply(cm, inputs)``: recompile, measure its
        metric before and after, keep the config only if better), then show the model's report."""
        if self.cm is None:
            raise VexploreError(f"explorer.apply_advice: {NO_APPLY}")
        advice = self._original(advice)
        if not self._claim(self.advice_view.status):
            return False
        self.advice_view.applying(advice, self.cm.config)
        # the compiles Apply runs show in the progress bar, and its Cancel stops them (the model goes back)
        self.progress.start(self.session.monitor, self._unique_compiles())
        started = self.worker.start("apply", lambda: advice.apply(self.cm, self.inputs or None),
                                    lambda r, e: self._applied(advice, r, e))
        if wait:
            self.wait()
        return started

    def _applied(self, advice: Any, result: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                self.applied.append((advice, result))
                self.advice_view.applied(advice, result)
                if all(r is not self.cm.report for r in self.reports):
                    self.reports.append(self.cm.report)
                if result.kept and self.cm.config not in self.configs:
                    self.configs.append(self.cm.config)
                if result.kept:   # the controls show the config now in use: the next Compile starts from it
                    self.controls.set_config(self.cm.config)
                self.show(self.cm.report)
                self.progress.finish(None, f"applied {esc(advice.code)}: {esc(apply_text(result))}")
            else:
                self.progress.finish(error)
                self.advice_view.failed(advice, error)
                if not isinstance(error, VexploreError):
                    log.error("vexplore explorer: applying advice failed", exc_info=error)
                if self.cm.report is not None and all(r is not self.cm.report for r in self.reports):
                    self.reports.append(self.cm.report)   # apply compiled (and went back): show what the model runs
                    self.show(self.cm.report)
        finally:
            self._busy(False)

    def revert_to(self, config: CompileConfig) -> bool:
        """Recompile under ``config`` in the background with the controls showing it (the Advice tab's
        Revert, with the config from before an Apply); False if busy."""
        if self.cm is None:
            raise VexploreError(f"explorer.revert_to: {NO_COMPILE}")
        if self.worker.busy:
            return False
        self.controls.set_config(config)
        return self._recompile("revert", config)

    def _ipython_display_(self) -> None:
        """The widget, then its static snapshot as an output of its own (ui/snapshot.py says why),
        then the charts, each in a message of its own (chart.py says why)."""
        self.snapshot.display(self._repr_mimebundle_())
        self.charts.release()

    def wait(self, timeout: float | None = 600) -> None:
        """Block until the running compile or benchmark has finished and the views are drawn."""
        self.worker.wait(timeout)


def _reports(obj: Any) -> list[CompileReport] | None:
    """``obj`` as a list of reports when it is a CompileReport or a list/tuple of them; None for a model."""
    if isinstance(obj, CompileReport):
        return [obj]
    if isinstance(obj, (list, tuple)) and (not obj or any(isinstance(r, CompileReport) for r in obj)):
        bad = [f"{i}: {type(r).__name__}" for i, r in enumerate(obj) if not isinstance(r, CompileReport)]
        if bad or not obj:
            raise VexploreError(f"vx.explore([...]): give a list of CompileReports (vx.load_report(path)); "
                                f"{'it is empty' if not obj else 'not reports: ' + ', '.join(bad)}.")
        return list(obj)
    return None


def _default_sizes(inputs: tuple[Any, ...]) -> list[int]:
    n = next((x.shape[0] for x in inputs if isinstance(x, torch.Tensor) and x.dim() >= 1), 16)
    return sorted({max(1, n // 2), n, n * 4})


def explore(model: Any, *inputs: Any, config: CompileConfig | None = None,
            session: Session | None = None) -> Explorer:
    """Compile ``model`` on ``inputs`` (once, under no_grad) and return the explorer dashboard.

    ``model`` may also be a CompiledModel (``vx.compile(...)``); then ``config`` and ``session``
    are its own and it is compiled only if it has not been called yet. Or a CompileReport, or a
    list of them (``vx.load_report(path)``): the dashboard replays them, without the model.
    """
    reports = _reports(model)
    if reports is not None:
        if inputs or config is not None or session is not None:
            raise VexploreError("vx.explore(report): a replay of saved reports takes no inputs, config or session "
                                "(it compiles nothing); call vx.explore(report) or vx.explore([r1, r2]) alone.")
        return Explorer(None, (), reports)
    if isinstance(model, CompiledModel):
        cm = model
    else:
        cm = vx_compile(model, config if config is not None else CompileConfig(), session=session)
    if cm.report is None:
        if not inputs:
            raise VexploreError("vx.explore(model, *inputs): give the example inputs the model is called with, "
                                "e.g. vx.explore(model, x).")
        with torch.no_grad():
            cm(*inputs)
    return Explorer(cm, tuple(inputs))
