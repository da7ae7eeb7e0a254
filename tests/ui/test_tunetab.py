"""The Tune tab (ui/tunetab.py over ui/tuneview.py's builders) and the tune in export_html: a tiny model cut at a
custom op, the eager compiler (a trial is a re-split and a bench, well under a second), small spaces.

Start runs vx.tune in the background and draws each trial as it ends; the scatter has one point per measured
trial, the start and the best marked; Cancel stops the search between trials; Apply goes through
TuneResult.apply, in the tab's worker or through the explorer's Apply path (the tab wired into a real explorer
with the two lines its module docstring gives)."""
from __future__ import annotations

import dataclasses
import re
import time

import pytest
import torch

import vexplore as vx
from models import Stack
from vexplore.advise import apply as advise_apply
from vexplore.advise.tune import TuneOptions
from vexplore.advise.tuneexec import LocalExecutor
from vexplore.advise.tunetrial import Outcome
from vexplore.monitor.tuning import Timing, Trial
from vexplore.ui.tunetab import NO_MODEL, TuneTab
from vexplore.ui.tuneview import best_html, measured, trials_html, tune_figure, tune_section

FAST = vx.BenchOptions(budget_s=0.1, warmup=1)
SPACE = {"strategy": ("piecewise", "full"), "split_policy": ("ops", "repeats")}
CONFIG = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager",
                          cache=vx.CacheConfig(tiers=("memory",)))


@pytest.fixture
def stack():
    torch.manual_seed(0)
    m = Stack(layers=2).eval()
    x = torch.randn(8, 16)
    cm = vx.compile(m, CONFIG, session=vx.Session())
    with torch.no_grad():
        cm(x)
    return cm, x


class SlowStart(LocalExecutor):
    """The local executor, with the start's timings made 10x slower: the best is another config, whatever the
    machine's noise (the tab's Apply is under test here, not the search)."""

    def wait(self, timeout=None):
        return [(h, _slowed(o) if h == 0 else o) for h, o in super().wait(timeout)]


def _slowed(o: Outcome) -> Outcome:
    slow = tuple(dataclasses.replace(t, median_ms=10 * t.median_ms, p20_ms=10 * t.p20_ms, p80_ms=10 * t.p80_ms)
                 for t in o.timings)
    return dataclasses.replace(o, timings=slow)


def _tab(cm, x, space=SPACE, executor=None, **kw) -> TuneTab:
    tab = TuneTab(cm, (x,), cm.session, **kw)
    tab.space, tab.executor = vx.TuneSpace(space), executor or LocalExecutor(workers=0)
    tab.options = TuneOptions(bench=FAST)
    tab.budget.value, tab.sizes.value = 30, "8, 32"
    return tab


def _points(fig, *names):
    return [(x, y) for t in fig.data if t.name in names for x, y in zip(t.x, t.y)]


def test_start_draws_each_trial_and_the_best(stack):
    cm, x = stack
    start = cm.config
    tab = _tab(cm, x)
    assert tab.sizes.value == "8, 32" and tab.bar.description == "idle" and tab.cancel_button.disabled
    live = []
    told = tab.on_trial

    def on_trial(p):
        told(p)
        live.append((len(p.trials), len(_points(tab.chart.figure, "ok", "worse")), len(measured(p.trials)),
                     tab.table.value.count("data-trial=")))
    tab.on_trial = on_trial
    done = []
    tab.on_done = done.append
    assert tab.start(wait=True)
    r = tab.result
    assert done == [r]
    assert r is not None and [t.number for t in r.trials] == [0, 1, 2] and "exhausted" in r.stopped
    # drawn as each trial ended: the table had a row per trial so far, the scatter a point per measured one
    assert [n for n, _, _, _ in live] == [1, 2, 3] and all(rows == n and pts == m for n, pts, m, rows in live)
    fig = tab.chart.figure
    shown = measured(r.trials)
    assert len(_points(fig, "ok", "worse")) == len(shown) == sum(t.status in ("ok", "worse") for t in r.trials)
    best = next(t for t in r.trials if t.number == r.best_trial)
    [(bx, by)] = _points(fig, "best")
    assert (bx, by) == (best.first_call_s, sum(t.median_ms for t in best.timings) / len(best.timings))
    assert len(_points(fig, "start")) == 1
    assert tab.table.value.count("data-trial=") == 3 and f'data-trial="{r.best_trial}"' in tab.table.value
    assert tab.bar.value == 1.0 and tab.bar.description == "done" and not tab.start_button.disabled
    assert tab.status.value.startswith("3 trials in ")
    assert cm.config == start and cm.report.tunes[-1] == r.record      # kept on the report the model ends at
    diff = tab.current_diff()
    assert tab.apply_button.disabled == (not diff) and ("changes from the model" in tab.best.value) == bool(diff)
    assert "Improvement" in tab.best.value and "(start / best)" in tab.best.value


def test_apply_in_the_tabs_own_worker(stack, monkeypatch):
    cm, x = stack
    monkeypatch.setattr(advise_apply, "TIMING_GAIN", -10.0)   # kept whatever the noise: the tab's wiring is tested
    tab = _tab(cm, x, executor=SlowStart(workers=0))
    assert tab.start(wait=True)
    r = tab.result
    assert r.best_trial != 0 and r.best != r.start and tab.current_diff() == r.best_diff
    assert not tab.apply_button.disabled
    assert tab.apply(wait=True)
    assert cm.config == r.best and "kept" in tab.apply_status.value and tab.apply_button.disabled
    assert "the same as the model" in tab.best.value
    assert not tab.apply()                       # nothing left to apply


def test_wired_into_an_explorer_apply_goes_through_its_apply_path(monkeypatch):
    monkeypatch.setattr(advise_apply, "TIMING_GAIN", -10.0)
    torch.manual_seed(0)
    m = Stack(layers=2).eval()
    ex = vx.explore(m, torch.randn(8, 16), config=CONFIG, session=vx.Session())
    tab = ex.tune_view                           # the explorer's own Tune tab
    assert ex.tabs.get_title(len(ex.tabs.children) - 1) == "Tune" and ex.tabs.children[-1] is tab.widget
    tab.space, tab.executor, tab.options = vx.TuneSpace(SPACE), SlowStart(workers=0), TuneOptions(bench=FAST)
    tab.budget.value, tab.sizes.value = 30, "8, 32"
    before = len(ex.reports)
    assert tab.start()
    assert not ex.compile(ex.cm.config)          # one background job at a time: the explorer waits for the tune
    ex.wait()
    r = tab.result
    # the report the tune left the model on carries it, and joins History
    assert len(ex.reports) == before + 1 and ex.reports[-1] is ex.cm.report and ex.cm.report.tunes[-1] == r.record
    assert r.best != r.start and tab.apply()
    ex.wait()
    assert ex.cm.config == r.best and "kept" in tab.apply_status.value
    assert ex.applied[-1][0].code == "tune" and ex.applied[-1][1].kept     # the explorer's Apply path ran it
    assert "tune" in ex.advice_view.status.value and ex.reports[-1] is ex.cm.report


def test_cancel_stops_the_search_between_trials(stack):
    cm, x = stack
    tab = _tab(cm, x, space={"strategy": ("auto",), "auto_min_nodes": tuple(range(1, 40))})
    tab.budget.value = 300
    assert tab.start()
    deadline = time.monotonic() + 120
    while not tab.trials and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tab.trials, "no trial ended in 120 s"
    tab.cancel()
    assert tab.cancel_button.disabled and "cancelling" in tab.status.value
    tab.wait()
    r = tab.result
    assert r.stopped.startswith("cancelled by the user") and len(r.trials) < 10
    assert tab.bar.description == "cancelled" and tab.bar.bar_style == "warning" and not tab.start_button.disabled


def test_without_a_model_the_tab_is_off():
    tab = TuneTab(None)
    assert tab.start_button.disabled and "Tune is off" in tab.status.value and NO_MODEL
    assert not tab.start() and not tab.apply()


def test_bad_sizes_are_said_not_run(stack):
    cm, x = stack
    tab = _tab(cm, x)
    tab.sizes.value = "8, many"
    assert not tab.start() and "&#x27;many&#x27; is not a whole number" in tab.status.value and tab.result is None
    tab.set_enabled(False)                      # an explorer busy with other work
    assert tab.start_button.disabled and tab.apply_button.disabled
    tab.set_enabled(True)
    assert not tab.start_button.disabled and tab.apply_button.disabled     # nothing to apply yet


def _trial(n, status, ms=None, first=0.05, diff=None):
    ts = (Timing(8, ms, ms * 0.9, ms * 1.1, 0.02, 0.0),) if ms is not None else ()
    return Trial(n, diff if diff is not None else ({} if n == 0 else {"strategy": "full"}), status, ts,
                 first if ms is not None and status in ("ok", "worse") else None, ms, error=None if ms else "why")


def test_builders_plot_measured_trials_only():
    trials = (_trial(0, "ok", 2.0), _trial(1, "ok", 1.0, diff={"split_policy": "repeats"}), _trial(2, "worse", 3.0),
              _trial(3, "pruned", 4.0), _trial(4, "crashed"), _trial(5, "failed-accuracy"))
    fig = tune_figure(trials, 1)
    assert len(_points(fig, "ok")) == 2 and len(_points(fig, "worse")) == 1
    assert _points(fig, "best") == [(0.05, 1.0)] and _points(fig, "start") == [(0.05, 2.0)]
    assert "3 of 6 trial(s) measured" in fig.layout.title.text
    assert tune_figure((), None).data == () and "no trial yet" in tune_figure((), None).layout.title.text
    html = trials_html(trials, 1)
    assert html.count("data-trial=") == 6 and re.search(r'class="vx-current" data-trial="1"', html)
    assert html.index('data-trial="1"') < html.index('data-trial="0"')      # the best first
    assert "split_policy=repeats" in html and "crashed" in html and "No trials yet" in trials_html((), None)


def test_export_and_diff_show_the_tune(stack, tmp_path):
    cm, x = stack
    tab = _tab(cm, x)
    assert tab.start(wait=True)
    rec = cm.report.tunes[-1]
    page = vx.export_html(cm, tmp_path / "tuned.html").read_text()
    assert ">Tune<" in page and page.count("data-trial=") == len(rec.trials) and "vx-tune-best" in page
    assert "<script" not in page
    section = tune_section(cm.report)
    assert "Tune 1 of 1" in section and best_html(rec) in section
    before = cm.report
    after = cm.recompile(strategy="full")
    kinds = {c.what for c in vx.diff(before, after).of("tune")}
    assert {"tune", "improvement at 8", "improvement at 32"} <= kinds
