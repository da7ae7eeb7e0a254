"""Saved reports: ``report.save(path)`` and ``vx.load_report(path)``.

A real report (Inductor, two graphs around a graph break, a buffer written in place, validation,
warnings) goes through a file and comes back equal in every field the
explorer reads; a fresh process that never builds a model loads it and draws the same views; a
file of another format version, or not a report at all, is refused with what to do.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import vexplore as vx
from vexplore.monitor.persist import FORMAT, REPORT_FORMAT

import models  # noqa: F401  (registers vxtest::mix)


class Everything(nn.Module):
    """Cut at vxtest::mix, writes a buffer in place, and breaks the graph: two graphs, pieces of every kind."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.register_buffer("seen", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ops.vxtest.mix(torch.relu(self.a(x)))
        self.seen.add_(h.sum(0))
        torch._dynamo.graph_break()
        return self.b(h) + 1


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One real report and the file it was saved to."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("persist")
    cfg = vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix", "vxtest::nothing_here"],
                           validate=True, cache=vx.CacheConfig(dir=str(tmp / "vxcache")))
    cm = vx.compile(Everything().eval(), cfg, session=vx.Session())
    with torch.no_grad():
        cm(torch.randn(8, 16))
    rep = cm.report
    return rep, rep.save(tmp / "runs" / "run.vxreport.json")   # the folder is made


def _json(obj):
    return json.loads(json.dumps(obj))


def test_the_report_covers_what_the_dashboard_shows(saved):
    """The fixture is worth round-tripping: every kind of content is in it."""
    rep, _ = saved
    assert rep.counters["graphs_seen"] == 2 and rep.graph_breaks
    assert {p.kind for p in rep.pieces} == {"compiled", "split_op"}
    assert any(p.code and "cpp_fused" in p.code for p in rep.pieces)
    assert any(p.writes for p in rep.pieces) and any(p.graph_nodes for p in rep.pieces)
    assert any(p.cache_by_size == ((None, "miss"),) for p in rep.pieces) and rep.validation
    assert any(w.kind == "split_op_missing" for w in rep.warnings) and rep.events


def test_save_writes_versioned_json_and_load_gives_the_same_report(saved):
    rep, path = saved
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT == "vexplore-report" and data["version"] == REPORT_FORMAT == 2
    assert data["report"] == _json(rep.to_dict())
    loaded = vx.load_report(str(path))
    assert isinstance(loaded, vx.CompileReport)
    # to_dict() is plain data (lists for tuples), so it round-trips as it is
    assert loaded.to_dict() == rep.to_dict() == _json(rep.to_dict())
    # every record the views read is rebuilt exactly: frozen dataclasses with their tuples
    assert loaded.pieces == rep.pieces and loaded.events == rep.events and loaded.warnings == rep.warnings
    for f in ("counters", "versions", "graph_breaks", "validation", "strategy", "strategy_reason", "wall_s",
              "device", "kind", "id"):
        assert getattr(loaded, f) == getattr(rep, f), f
    assert all(isinstance(p.graph_nodes, tuple) and isinstance(p.cache_by_size, tuple) for p in loaded.pieces)
    assert not vx.diff(rep, loaded)   # nothing differs


def test_loaded_report_draws_the_same_views(saved):
    pytest.importorskip("plotly")
    from vexplore.ui.code import code_html
    from vexplore.ui.dot import report_dot
    from vexplore.ui.figures import compile_time_figure, timeline_figure
    from vexplore.ui.graphmodel import graph_model
    from vexplore.ui.tables import pieces_table, summary_html

    rep, path = saved
    loaded = vx.load_report(path)
    assert graph_model(loaded) == graph_model(rep)
    assert report_dot(loaded) == report_dot(rep)
    assert pieces_table(loaded) == pieces_table(rep) and summary_html(loaded) == summary_html(rep)
    assert [code_html(p) for p in loaded.pieces] == [code_html(p) for p in rep.pieces]
    assert timeline_figure(loaded).to_dict() == timeline_figure(rep).to_dict()
    assert compile_time_figure(loaded).to_dict() == compile_time_figure(rep).to_dict()


FRESH = r"""
import json, sys
import torch
import vexplore as vx
from vexplore.ui.tables import pieces_table
from vexplore.ui.graphmodel import graph_model
rep = vx.load_report(sys.argv[1])
ex = vx.explore(rep)
assert ex.cm is None and ex.compile_button.disabled and ex.bench is None
built = [m for m in sys.modules if m == "models" or m.startswith("vexplore.models.")]
print(json.dumps({"report": json.loads(json.dumps(rep.to_dict())), "pieces": pieces_table(rep),
                  "graph_nodes": len(graph_model(rep)["nodes"]), "code": ex.code.value,
                  "compiles": len(vx.default_session().monitor.reports), "cuda": torch.cuda.is_available(),
                  "built": built}))
"""


def test_a_fresh_process_without_the_model_loads_and_explores_it(saved):
    """Record anywhere, explore anywhere: no model class, no GPU, no compile in the loading process."""
    from vexplore.ui.graphmodel import graph_model
    from vexplore.ui.tables import pieces_table

    rep, path = saved
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", FRESH, str(path)], capture_output=True, text=True, env=env,
                         timeout=300, cwd=str(path.parent))
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["report"] == _json(rep.to_dict())
    assert out["pieces"] == pieces_table(rep) and out["graph_nodes"] == len(graph_model(rep)["nodes"])
    assert "cpp_fused" in out["code"]
    assert out["compiles"] == 0 and out["cuda"] is False and out["built"] == []


def _error(path) -> str:
    with pytest.raises(vx.ReportFileError) as info:
        vx.load_report(path)
    assert isinstance(info.value, vx.VexploreError)
    return str(info.value)


def test_another_format_version_is_refused_with_what_to_do(saved, tmp_path):
    _rep, path = saved
    data = json.loads(path.read_text())
    newer, older = tmp_path / "newer.json", tmp_path / "older.json"
    newer.write_text(json.dumps({**data, "version": REPORT_FORMAT + 1}))
    older.write_text(json.dumps({**data, "version": 0}))
    msg = _error(newer)
    assert f"report format {REPORT_FORMAT + 1}" in msg and "reads formats 1, 2" in msg
    assert "upgrade vexplore" in msg
    msg = _error(older)
    assert "report format 0" in msg and "record the report again" in msg


def test_a_format_1_file_still_loads(saved, tmp_path):
    """Format 1 (before a piece's fallback became fields): its pieces load with fallback=None, the prose kept."""
    rep, path = saved
    data = json.loads(path.read_text())
    for p in data["report"]["pieces"]:
        p.pop("fallback")
        p["fallback_reason"] = p["fallback_reason"] or ("unsupported op / lowering error: X; ran eagerly"
                                                        if p["kind"] == "compiled" else None)
    old = tmp_path / "format1.json"
    old.write_text(json.dumps({**data, "version": 1}))
    loaded = vx.load_report(str(old))
    assert all(p.fallback is None for p in loaded.pieces) and len(loaded.pieces) == len(rep.pieces)
    assert {p.fallback_reason for p in loaded.pieces if p.kind == "compiled"} == {"unsupported op / lowering error: X; ran eagerly"}
    assert vx.advise  # the advisor and alerts read fallback=None as "nothing known" (tests/test_fallback.py)


def test_files_that_are_not_reports_are_refused(tmp_path):
    missing = tmp_path / "nope.json"
    assert "no such file" in _error(missing)
    text = tmp_path / "notes.txt"
    text.write_text("not json at all")
    assert "not a saved vexplore report (not JSON" in _error(text)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"device": "cpu", "rows": []}))   # a benchmark result, say
    assert 'no "format": "vexplore-report"' in _error(bench)


def test_a_damaged_report_names_the_field(saved, tmp_path):
    _rep, path = saved
    data = json.loads(path.read_text())
    data["report"]["pieces"][0]["index"] = "zero"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    msg = _error(bad)
    assert "report.pieces[0].index should be int, not 'zero'" in msg and "save the report again" in msg
    data = json.loads(path.read_text())
    del data["report"]["events"]
    bad.write_text(json.dumps(data))
    assert "report has no 'events'" in _error(bad)
