"""The explorer's Tune tab: ``vx.tune`` on the explorer's model, live, and its best applied.

Budget, sizes and objective; Start runs ``vx.tune`` in the background (the explorer's worker when it
hands one over, so a tune and a compile never run at once) and Cancel stops it between trials (a
``CancelToken`` in ``TuneOptions.cancel``: the trial in progress ends, the rest are not run, and the
result holds what was measured). ``TuneOptions.on_trial`` tells the tab each trial as it ends: the
progress bar moves and the scatter (latency against first call, the start and the best marked) and the
trials table are drawn again. At the end the best's diff from the model's current config is shown with
Apply: ``TuneResult.apply`` (recompile, time before and after, keep only if faster), through the
explorer's Apply path when it hands one over (``apply``: the explorer's ``apply_advice``, which shows
it in the Advice tab, with Revert), else in the tab's own worker.

Everything drawn comes from ``tuneview``'s pure builders; this module only wires widgets. Wiring it
into an explorer::

    self.tune_view = TuneTab(self.cm, self.inputs, self.session, worker=self.worker, apply=self.apply_advice)
    self.tune_view.add_to(self.tabs)
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import torch

from ..advise.tune import TuneOptions, tune
from ..advise.tuneresult import TuneProgress, TuneResult
from ..advise.tunespace import config_diff
from ..bench.compare import resize_tokens
from ..cancel import CancelToken
from ..errors import VexploreError
from ..monitor.tuning import Trial, diff_text
from .chart import FigureView
from .controls import parse_sizes
from .jobs import Worker
from .style import ERROR, GOOD, MUTED, WARNING, esc
from .tuneview import best_html, trials_html, tune_figure

__all__ = ["TuneAdvice", "TuneTab"]

log = logging.getLogger(__name__)

NO_MODEL = ("Tune is off: these are saved reports, and tuning recompiles and times the model; their own tunes "
            "are in vx.export_html and vx.diff. vx.explore(model, *inputs) where the model is.")
NO_INPUTS = "no inputs: the trials time the captured graphs on their own example inputs (sizes are not used)"


class TuneAdvice:
    """A tune's best as the explorer's Apply path takes an advice (``code``, ``metric``, ``config``, ``base``,
    ``apply(cm, inputs)``); applying it tells the tab the outcome too."""

    code = "tune"
    metric = "median_ms"

    def __init__(self, tab: "TuneTab", result: TuneResult) -> None:
        self.tab, self.result = tab, result
        self.config, self.base = result.best, result.start
        self.message = f"the best config vx.tune found: {diff_text(result.best_diff)}"

    def apply(self, cm: Any, inputs: Sequence[Any] | None = None) -> Any:
        self.tab.applying()
        try:
            res = self.result.apply(cm, inputs)
        except BaseException as e:
            self.tab.applied(None, e)
            raise
        self.tab.applied(res, None)
        return res


class TuneTab:
    """The tab (``widget``) over ``cm`` and its ``inputs``. ``worker``: the explorer's background worker
    (default: one of the tab's own); ``apply``: the explorer's Apply path (a function of an advice; default:
    ``TuneResult.apply`` in the worker). ``space`` (None: ``TuneSpace.default``), ``options`` (a TuneOptions;
    its ``on_trial`` and ``cancel`` are the tab's) and ``executor`` are vx.tune's, for code to set; ``on_done``
    (a function of the TuneResult) is told each tune that ends; ``set_enabled`` turns Start and Apply off while
    an explorer runs other work."""

    def __init__(self, cm: Any, inputs: Sequence[Any] = (), session: Any = None, worker: Worker | None = None,
                 apply: Callable[[Any], Any] | None = None) -> None:
        self.cm, self.inputs = cm, tuple(inputs)
        self.session = session if session is not None else getattr(cm, "session", None)
        self.worker = worker if worker is not None else Worker()
        self.apply_path = apply
        self.space: Any = None
        self.options = TuneOptions()
        self.executor: Any = None
        self.on_done: Callable[[TuneResult], None] | None = None   # told each finished tune (in the worker thread)
        self.result: TuneResult | None = None
        self.trials: tuple[Trial, ...] = ()
        self.best_trial: int | None = None
        self._token: CancelToken | None = None
        self._lock = threading.RLock()     # drawn from the worker thread and from clicks
        self._build()

    def _build(self) -> None:
        lay = widgets.Layout
        self.budget = widgets.BoundedFloatText(value=60, min=1, max=86_400, step=10, description="budget s",
                                               tooltip="seconds for the whole tune, the final re-measurement included",
                                               layout=lay(width="170px"))
        self.sizes = widgets.Text(value=_default_sizes(self.inputs), description="sizes", layout=lay(width="220px"),
                                  tooltip="token counts to time each trial at (the inputs' dim 0 resized)")
        self.objective = widgets.Dropdown(options=[("latency", "latency"), ("latency + compile", "latency+compile")],
                                          value="latency", description="objective", layout=lay(width="240px"))
        self.start_button = widgets.Button(description="Start", icon="play", button_style="primary",
                                           tooltip="run vx.tune on this model in the background")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="warning", disabled=True,
                                            tooltip="stop the search after the trial in progress")
        self.bar = widgets.FloatProgress(value=0, min=0, max=1, description="idle", layout=lay(width="320px"))
        self.status = widgets.HTML()
        self.chart = FigureView(tune_figure((), None))
        self.table = widgets.HTML(layout=lay(flex="1 1 420px", min_width="360px", overflow="auto"))
        self.best = widgets.HTML()
        self.apply_button = widgets.Button(description="Apply best", icon="check", disabled=True,
                                           tooltip="recompile with the best config, time before and after, keep it "
                                                   "only if faster")
        self.apply_status = widgets.HTML()
        self.start_button.on_click(lambda _b: self.start())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.apply_button.on_click(lambda _b: self.apply())
        for b in (self.start_button, self.cancel_button, self.apply_button):
            b.add_class(f"vx-tune-{b.description.split()[0].lower()}")
        if not self.inputs:
            self.sizes.disabled, self.sizes.value = True, ""
            self.sizes.tooltip = NO_INPUTS
        self.widget = widgets.VBox([
            widgets.HBox([self.budget, self.sizes, self.objective, self.start_button, self.cancel_button],
                          layout=lay(flex_flow="row wrap")),
            widgets.HBox([self.bar, self.status]),
            widgets.HBox([self.chart, self.table], layout=lay(flex_flow="row wrap")),
            widgets.HBox([self.best, self.apply_button], layout=lay(align_items="flex-start")), self.apply_status],
            layout=lay(width="100%"))
        self.widget.add_class("vx-tune-tab")
        if self.cm is None:
            self.start_button.disabled = True
            self.status.value = f'<i style="color:{MUTED}">{esc(NO_MODEL)}</i>'

    def add_to(self, tabs: widgets.Tab, title: str = "Tune") -> None:
        """Append this tab's widget to ``tabs`` under ``title``."""
        tabs.children = (*tabs.children, self.widget)
        tabs.set_title(len(tabs.children) - 1, title)

    # -- the tune ----------------------------------------------------------------------------
    def inputs_by_size(self) -> dict[int, tuple[Any, ...]] | None:
        """The sizes field's inputs (the explorer's inputs resized along dim 0); None without inputs."""
        if not self.inputs:
            return None
        sizes = parse_sizes(self.sizes.value, "tune sizes")
        if not sizes:
            raise VexploreError("tune: give at least one size in 'sizes', e.g. '16, 64'.")
        return {n: resize_tokens(self.inputs, n) for n in sizes}

    def start(self, wait: bool = False) -> bool:
        """Run ``vx.tune`` in the background; False (said in the status) when it cannot start."""
        if self.cm is None:
            return False
        try:
            inputs = self.inputs_by_size()
        except VexploreError as e:
            self.status.value = f'<span style="color:{ERROR}">{esc(e)}</span>'
            return False
        token = CancelToken()
        opts = dataclasses.replace(self.options, on_trial=self.on_trial, cancel=token)
        budget, objective = float(self.budget.value), self.objective.value

        def run() -> TuneResult:
            with torch.no_grad():     # as the model was called: a call with grad on would trace anew
                return tune(self.cm, inputs, space=self.space, budget_s=budget, objective=objective,
                            executor=self.executor, options=opts)
        with self._lock:
            if self.worker.busy:
                self.status.value = f"busy: {esc(self.worker.name)} is running"
                return False
            self._token, self.result, self.trials, self.best_trial = token, None, (), None
            self._draw_trials()
            self._running(True, f"tuning for up to {budget:g} s…")
            self.worker.start("tune", run, self.tuned)
        if wait:
            self.wait()
        return True

    def on_trial(self, p: TuneProgress) -> None:
        """A trial ended (``TuneOptions.on_trial``, in the tune's thread): the bar, the scatter and the table."""
        with self._lock:
            self.trials, self.best_trial = p.trials, p.best_trial
            self.bar.value = p.fraction
            self.bar.description = f"{len(p.trials)} trial{'s' if len(p.trials) != 1 else ''}"
            t = p.trial
            self.status.value = (f"trial {t.number}: {esc(t.status)} · {esc(diff_text(t.diff))} · "
                                 f"{p.elapsed_s:.0f} s of {p.budget_s:g} s")
            self._draw_trials()

    def tuned(self, result: TuneResult | None, error: BaseException | None) -> None:
        """The tune ended (in the worker thread): the final statuses, the best and Apply, or the error."""
        with self._lock:
            self._running(False)
            if error is not None or result is None:
                self.bar.bar_style, self.bar.description = "danger", "failed"
                self.status.value = f'<span style="color:{ERROR}">{esc(type(error).__name__)}: {esc(error)}</span>'
                if not isinstance(error, VexploreError):
                    log.error("vexplore explorer: tune failed", exc_info=error)
                return
            self.result, self.trials, self.best_trial = result, result.trials, result.best_trial
            cancelled = result.stopped.startswith("cancelled")
            self.bar.value = 1.0
            self.bar.bar_style = "warning" if cancelled else "success"
            self.bar.description = "cancelled" if cancelled else "done"
            self.status.value = f"{len(result.trials)} trials in {result.seconds:.1f} s: {esc(result.stopped)}"
            self._draw_trials()
            self._draw_best()
        if self.on_done is not None:     # e.g. an explorer listing cm.report, which now carries the tune
            self.on_done(result)

    def set_enabled(self, enabled: bool) -> None:
        """Start and Apply off while an explorer runs other work in the worker (a compile, a benchmark)."""
        with self._lock:
            if self.worker.busy and self.worker.name == "tune":
                return
            self.start_button.disabled = not enabled or self.cm is None
            self.apply_button.disabled = not enabled or not self.current_diff()

    def cancel(self) -> None:
        """Stop the search after the trial in progress (the result keeps what was measured)."""
        if self._token is not None and self.worker.busy:
            self._token.cancel()
            self.cancel_button.disabled = True
            self.status.value = "cancelling after the trial in progress…"

    def wait(self, timeout: float | None = 600) -> None:
        """Block until the running tune or Apply (and its drawing) has finished."""
        self.worker.wait(timeout)

    # -- the best and Apply --------------------------------------------------------------------
    def current_diff(self) -> dict[str, Any]:
        """What the best changes from the model's config now ({} without a result)."""
        if self.result is None or self.cm is None:
            return {}
        return config_diff(self.cm.config, self.result.best)

    def apply(self, wait: bool = False) -> bool:
        """Apply the best (``TuneResult.apply``) through the explorer's Apply path, or in the worker."""
        if self.result is None or self.cm is None or not self.current_diff():
            return False
        advice = TuneAdvice(self, self.result)
        if self.apply_path is not None:
            started = bool(self.apply_path(advice))
        else:
            started = self.worker.start("apply", lambda: advice.apply(self.cm, self.inputs or None), lambda _r, _e: None)
        if not started:
            self.apply_status.value = f"busy: {esc(self.worker.name)} is running"
        elif wait:
            self.wait()
        return started

    def applying(self) -> None:
        with self._lock:
            self.apply_button.disabled = self.start_button.disabled = True
            self.apply_status.value = "<i>applying the best: recompiling and timing before and after…</i>"

    def applied(self, result: Any, error: BaseException | None) -> None:
        """An Apply ended: its figures (kept or reverted), or the error."""
        with self._lock:
            self.start_button.disabled = False
            if error is not None:
                self.apply_status.value = (f'<span style="color:{ERROR}">Applying the best failed: '
                                           f"{esc(type(error).__name__)}: {esc(error)}</span>")
            else:
                colour, verdict = (GOOD, "kept") if result.kept else (WARNING, "reverted")
                self.apply_status.value = (f'Applied the best: <b style="color:{colour}">{esc(result.metric)} '
                                           f"{result.before:.4g} -> {result.after:.4g}, {verdict}</b>")
            self._draw_best()

    # -- drawing ---------------------------------------------------------------------------------
    def _running(self, running: bool, text: str = "") -> None:
        self.start_button.disabled = running
        self.cancel_button.disabled = not running
        self.apply_button.disabled = True
        for w in (self.budget, self.objective):
            w.disabled = running
        self.sizes.disabled = running or not self.inputs
        if running:
            self.bar.value, self.bar.bar_style, self.bar.description = 0.0, "info", "starting"
            self.status.value, self.best.value, self.apply_status.value = esc(text), "", ""

    def _draw_trials(self) -> None:
        self.chart.show(tune_figure(self.trials, self.best_trial))
        self.table.value = trials_html(self.trials, self.best_trial)

    def _draw_best(self) -> None:
        if self.result is None:
            return
        diff = self.current_diff()
        self.best.value = best_html(self.result.record, diff, "the model's current config")
        self.apply_button.disabled = not diff   # drawn as a tune or an Apply ends: nothing else runs then


def _default_sizes(inputs: Sequence[Any]) -> str:
    """The inputs' own token count (dim 0 of the first tensor), as the sizes field starts."""
    n = next((x.shape[0] for x in inputs if isinstance(x, torch.Tensor) and x.dim() >= 1), None)
    return "" if n is None else str(n)
