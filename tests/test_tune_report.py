"""A tune on the report: vx.tune keeps its record on the model's latest report (and the Session's copy), a saved
report carries it and loads it back (a format-2 file without tunes still loads), TuneResult.from_record rebuilds
the result, vx.diff shows tunes; vx.tune's on_trial tells each trial and a cancel token stops it between trials.

The eager compiler throughout (a trial is a re-split and a bench, well under a second)."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import vexplore as vx
from models import Stack
from vexplore.advise.tuneexec import LocalExecutor
from vexplore.cancel import CancelToken
from vexplore.monitor.persist import FORMAT
from vexplore.monitor.tuning import Timing, Trial, TuneRecord

SIZES = (8, 32)
FAST = vx.BenchOptions(budget_s=0.1, warmup=1)
SPACE = {"strategy": ("piecewise", "full"), "split_policy": ("ops", "repeats")}


@pytest.fixture
def stack(session):
    torch.manual_seed(0)
    m = Stack(layers=2).eval()
    xs = {n: (torch.randn(n, 16),) for n in SIZES}
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager",
                                        cache=vx.CacheConfig(tiers=("memory",))), session=session)
    with torch.no_grad():
        cm(*xs[8])
    return cm, xs


def _tune(cm, xs, **kw):
    kw.setdefault("executor", LocalExecutor(workers=0))
    kw.setdefault("bench", FAST)
    kw.setdefault("budget_s", 30)
    return vx.tune(cm, xs, space=vx.TuneSpace(SPACE), **kw)


def test_the_tune_is_kept_on_the_report_saved_and_loaded(stack, tmp_path):
    cm, xs = stack
    r = _tune(cm, xs)
    rep = cm.report
    assert rep.tunes == (r.record,) and rep is cm.reports[-1]
    assert any(x is rep for x in cm.session.monitor.reports)          # the Session's copy took it too
    rec = rep.tunes[-1]
    assert rec.best_trial == r.best_trial and rec.best_diff == r.best_diff and rec.trials == r.trials
    assert dict(rec.improvement) == r.improvement and rec.stopped == r.stopped and rec.table() == r.table()
    assert (rec.profile is not None) == (r.profile is not None)
    loaded = vx.load_report(rep.save(tmp_path / "tuned.json"))
    assert loaded.to_dict() == rep.to_dict() and loaded.tunes == rep.tunes
    back = vx.TuneResult.from_record(loaded.tunes[-1])
    assert back.best == r.best and back.start == r.start and back.trials == r.trials
    assert back.improvement == r.improvement and back.improvement_ci == {s: tuple(v) for s, v in r.improvement_ci.items()}
    assert back.trials[0].config is None      # a loaded trial has its diff, not the config object
    res = back.apply(cm, xs[32])              # the rebuilt result applies as the original does
    assert isinstance(res, vx.ApplyResult) and cm.config == (r.best if res.kept else r.start)


def test_a_format_2_report_without_tunes_loads(stack, tmp_path):
    cm, _ = stack
    d = cm.report.to_dict()
    del d["tunes"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": FORMAT, "version": 2, "report": d}))
    loaded = vx.load_report(path)
    assert loaded.tunes == () and loaded.pieces == cm.report.pieces


def _record(best_diff, improvement, trials=3, stopped="the space is exhausted"):
    t = Timing(8, 1.0, 0.9, 1.1, 0.02, 0.0, 0.01)
    ts = tuple(Trial(i, {} if i == 0 else {"strategy": "full"}, "ok", (t,), 0.05, 1.0) for i in range(trials))
    return TuneRecord(start={"strategy": "piecewise"}, best_diff=best_diff, best_trial=1 if best_diff else 0,
                      trials=ts, improvement=tuple((8, v) for v in improvement),
                      improvement_ci=tuple((8, v * 0.9, v * 1.1) for v in improvement), stopped=stopped, device="cpu")


def test_diff_shows_the_tunes(stack):
    cm, _ = stack
    a = dataclasses.replace(cm.report, tunes=(_record({}, [1.0]), _record({"strategy": "full"}, [1.5])))
    b = dataclasses.replace(cm.report, tunes=(_record({"strategy": "full", "split_policy": "repeats"}, [1.25], 5),))
    changes = {c.what: (c.before, c.after) for c in vx.diff(a, b).of("tune")}
    assert changes["best split_policy"] == (None, "repeats") and "best strategy" not in changes   # the newest tunes
    assert changes["improvement at 8"] == ("1.500x (~95 % 1.350-1.650)", "1.250x (~95 % 1.125-1.375)")
    assert changes["tune"][0].startswith("3 trials (3 ok)") and changes["tune"][1].startswith("5 trials (5 ok)")
    one = vx.diff(a, cm.report)                 # only one side tuned: what it found, beside nothing
    assert {c.what: c.after for c in one.of("tune")} == {"tune": None, "best strategy": None, "improvement at 8": None}
    assert not vx.diff(cm.report, cm.report).of("tune")
    assert "tune" in str(vx.diff(a, b)) and 'data-kind="tune"' in vx.diff(a, b)._repr_html_()


def test_on_trial_tells_each_trial_and_a_cancel_stops_between_trials(stack):
    cm, xs = stack
    start = cm.config
    token, seen = CancelToken(), []

    def on_trial(p):
        seen.append(p)
        if len(p.trials) == 2:
            token.cancel()
    r = _tune(cm, xs, on_trial=on_trial, cancel=token)
    assert [p.trial.number for p in seen] == [0, 1] and [len(p.trials) for p in seen] == [1, 2]
    assert seen[0].planned == 3 and seen[-1].best_trial in (0, 1) and 0 < seen[-1].fraction <= 1   # 2 distinct + start
    assert [t.number for t in r.trials] == [0, 1] and r.stopped == "cancelled by the user after 2 trial(s)"
    assert any("the tune was cancelled" in n for n in r.notes) or r.best == r.start
    assert cm.config == start and cm.report.tunes[-1].stopped == r.stopped
    with pytest.raises(vx.VexploreError, match="on_trial"):
        _tune(cm, xs, on_trial=3)


def test_a_failing_on_trial_costs_the_tune_nothing(stack, caplog):
    cm, xs = stack

    def boom(_p):
        raise RuntimeError("a broken view")
    r = _tune(cm, xs, on_trial=boom, max_trials=1)
    assert len(r.trials) == 2 and "on_trial raised" in caplog.text
