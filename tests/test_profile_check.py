"""The runtime profile's build check (issue 26), its bookkeeping checked exactly on made-up data.

On the CPU, cm.profile names Inductor's C++ kernels with a profiling build of the same pieces and
checks it against the production build: both builds' calls alternate in one profiler session, pairs
of piece runs are read back from the profiler's ranges, and each piece's lower quintiles are compared
(PieceCheck.paired) and judged against 5 % (verdict, build_verdict). These tests need no compile; the
check on a compiled model is in test_profile.py.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
from types import SimpleNamespace

import pytest

import vexplore as vx
from vexplore.bench.profile import CHECK, _call_label, _pairs, check_note
from vexplore.bench.traceevents import CALL, PIECE, WARM
from vexplore.monitor.profile import PieceCheck, RuntimeProfile, build_verdict, low_quintile


def _check(lo: float | None, hi: float | None, production_ms: float = 1.0) -> PieceCheck:
    mid = None if lo is None or hi is None else (lo + hi) / 2
    return PieceCheck(0, production_ms, production_ms, 30, mid, lo, hi, 0)


def test_low_quintile_is_the_exclusive_p20():
    assert low_quintile([float(v) for v in range(1, 11)]) == pytest.approx(2.2)   # (n + 1) * 0.2 = 2.2nd value
    assert low_quintile([3.0]) == 3.0


def test_paired_same_pairs_give_an_exact_difference_and_a_closed_interval():
    c = PieceCheck.paired(4, [(1.0, 1.02)] * 10, ranges=3)
    assert (c.piece, c.production_ms, c.profiling_ms, c.pairs, c.ranges) == (4, 1.0, 1.02, 10, 3)
    assert c.diff == pytest.approx(0.02) and c.diff_low == c.diff_high == c.diff
    assert c.verdict() == "agrees"
    assert PieceCheck.paired(4, [(1.0, 1.10)] * 10).verdict() == "differs"      # slower beyond 5 %
    assert PieceCheck.paired(4, [(1.0, 0.90)] * 10).verdict() == "differs"      # faster beyond 5 % differs too


def test_paired_uses_lower_quintiles_and_medians():
    a = [1.0, 1.0, 1.0, 1.0, 9.0]            # one stall: it moves no lower quintile
    b = [1.01, 1.01, 1.01, 5.0, 5.0]
    c = PieceCheck.paired(0, list(zip(a, b)))
    assert (c.production_ms, c.profiling_ms) == (statistics.median(a), statistics.median(b)) == (1.0, 1.01)
    assert c.diff == pytest.approx(low_quintile(b) / low_quintile(a) - 1.0) == pytest.approx(0.01)
    assert c.diff_low <= c.diff <= c.diff_high
    assert PieceCheck.paired(0, list(zip(a, b))) == c                          # seeded by the piece: repeatable


def test_paired_noisy_pairs_are_unresolved():
    c = PieceCheck.paired(1, [(1.0, 1.0 + 0.02 * i) for i in range(10)])   # the profiling runs spread 1.00..1.18
    assert c.diff == pytest.approx(0.024)                                    # p20 = the 2.2nd value: 1.024
    assert c.diff_low < 0.05 < c.diff_high and c.verdict() == "unresolved"


def test_paired_without_pairs_or_production_time():
    assert PieceCheck.paired(2, []) == PieceCheck(2, 0.0, 0.0, 0, None, None, None, 0)
    zero = PieceCheck.paired(2, [(0.0, 1.0)] * 3)
    assert zero.diff is None and zero.verdict() == "unresolved"


@pytest.mark.parametrize("lo, hi, verdict", [
    (-0.05, 0.05, "agrees"), (0.0, 0.0, "agrees"), (0.051, 0.2, "differs"), (-0.2, -0.051, "differs"),
    (0.04, 0.06, "unresolved"), (-0.06, 0.06, "unresolved"), (0.05, 0.06, "unresolved"), (None, None, "unresolved")])
def test_verdict_against_five_percent(lo, hi, verdict):
    assert _check(lo, hi).verdict() == verdict


def test_build_verdict_reads_pieces_with_five_percent_of_the_call():
    ok, off, unsure = _check(-0.01, 0.01, 10.0), _check(0.2, 0.3, 10.0), _check(0.0, 0.1, 10.0)
    tiny_off = _check(0.5, 0.9, 0.5)          # 0.5 of 20.5 ms: under 5 % of the call, not judged
    assert build_verdict([ok, dataclasses.replace(ok, piece=1), tiny_off]) == "agrees"
    assert build_verdict([ok, off, unsure]) == "differs"
    assert build_verdict([ok, unsure]) == "unresolved"
    assert build_verdict([]) == ""


def test_build_agrees_and_build_diff():
    base = RuntimeProfile(1.0, 1.0, 1.0, 0.0, (), 0.0, 1, "cpu")
    assert base.build_verdict == "" and base.build_agrees is None and base.build_diff() is None
    checks = (PieceCheck(0, 2.0, 2.1, 30, -0.08, -0.1, -0.06), PieceCheck(1, 2.0, 2.0, 30, 0.01, 0.0, 0.02))
    prof = dataclasses.replace(base, build="profiling", build_check=checks, build_verdict=build_verdict(checks))
    assert (prof.build_verdict, prof.build_agrees) == ("differs", False)
    assert dataclasses.replace(prof, build_verdict="unresolved").build_agrees is None
    assert prof.build_diff() == pytest.approx(0.08)                             # the paired diff, in absolute value
    assert dataclasses.replace(prof, build_verdict="agrees").build_agrees is True


def test_a_profile_saved_before_pairs_loads_and_reads_its_medians():
    d = RuntimeProfile(1.0, 1.0, 1.0, 0.0, (), 0.0, 1, "cpu", build="profiling").to_dict()
    d["build_check"] = [{"piece": 0, "production_ms": 2.0, "profiling_ms": 2.5}]
    del d["build_verdict"]
    old = RuntimeProfile.from_dict(json.loads(json.dumps(d)))
    assert old.build_check == (PieceCheck(0, 2.0, 2.5),) and old.build_check[0].pairs == 0
    assert old.build_verdict == "" and old.build_agrees is None
    assert old.build_diff() == pytest.approx(0.25)
    assert old.build_check[0].verdict() == "unresolved"
    new = dataclasses.replace(old, build_check=(PieceCheck.paired(0, [(1.0, 1.0)] * 6, ranges=2),))
    assert RuntimeProfile.from_dict(json.loads(json.dumps(new.to_dict()))) == new


def test_call_labels():
    assert _call_label(0, 0, 2) == f"{CALL}0"                     # a profiled call: analysed into rows
    assert _call_label(2, 0, 2) == f"{CHECK}profiling 2"          # a check-only call of the profiling build
    assert _call_label(0, 1, 2) == f"{CHECK}production 0"
    assert not f"{CHECK}production 0".startswith(CALL)


def _ev(name: str, start: float, end: float, parent=None) -> SimpleNamespace:
    return SimpleNamespace(name=name, cpu_parent=parent, time_range=SimpleNamespace(start=start, end=end))


def test_pairs_read_piece_runs_by_call_and_build():
    warm = _ev(WARM, 0, 100)
    c0, p0 = _ev(f"{CALL}0", 100, 200), _ev(f"{CHECK}production 0", 200, 300)
    p1, c1 = _ev(f"{CHECK}production 1", 300, 400), _ev(f"{CHECK}profiling 1", 400, 500)
    lone = _ev(f"{CHECK}production 2", 500, 600)                  # its profiling call is missing: no pair
    inner = _ev("aten::addmm", 0, 0)
    events = [
        _ev(f"{PIECE}0", 1, 50, warm),                            # the profiler's warm-up: not counted
        _ev(f"{PIECE}0", 110, 130, c0), _ev(f"{PIECE}2", 130, 190, c0),
        _ev(f"{PIECE}0", 210, 228, p0), _ev(f"{PIECE}2", 230, 280, p0),
        _ev(f"{PIECE}0", 310, 330, p1),
        _ev(f"{PIECE}0", 410, 425, _ev("an outer range", 0, 0, c1)),   # nested deeper: found by its call
        _ev(f"{PIECE}0", 510, 520, lone), inner,
    ]
    assert _pairs(events) == {0: [(0.018, 0.020), (0.020, 0.015)], 2: [(0.050, 0.060)]}


def test_check_note_says_what_the_check_found():
    ok = PieceCheck(0, 0.1, 0.1, 100, 0.01, -0.01, 0.03, 1)
    assert check_note([ok]) == ("Build check: every piece within 5% of the production build (100 interleaved pairs "
                                "of calls; each piece's lower-quintile difference and its 95 % interval)")
    slow = PieceCheck(2, 0.1, 0.11, 100, 0.1, 0.08, 0.12, 3)
    note = check_note([ok, slow])
    assert note.startswith("Build check: the profiling build differs from the production build by more than 5%")
    assert note.endswith("piece 2 +10.0% (+8.0%..+12.0%; 3 kernel ranges, ~3.33 us each)")   # 10 % of 0.1 ms / 3
    assert "its profiler range per C++ kernel call is the difference" in note
    noisy = PieceCheck(2, 0.1, 0.1, 30, 0.02, -0.03, 0.09, 3)    # no cost per range where nothing differs
    assert check_note([ok, noisy]).startswith("Build check unresolved")
    assert check_note([ok, noisy]).endswith("piece 2 +2.0% (-3.0%..+9.0%)")


def test_profile_exports_stay_public():
    assert vx.RuntimeProfile is RuntimeProfile
