"""Widget wiring of the explorer, headless: controls -> recompile (background thread) -> views.

Real compiles of the 2-layer toy Llama (fresh session and cache dir per test); buttons are
clicked with ``Button.click()`` as the browser's click would, and ``wait()`` joins the worker.
"""
from __future__ import annotations

import re

import pytest
import torch

import vexplore as vx
from vexplore.models import ToyLlama
from vexplore.ui.graphmodel import default_expanded

from uihelpers import toy_config


@pytest.fixture
def explorer(tmp_path):
    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    (x,) = m.example_inputs(16)
    ex = vx.explore(m, x, config=toy_config(tmp_path), session=vx.Session())
    yield ex
    ex.wait()


def _rows(ex) -> list[int]:
    return [int(i) for i in re.findall(r'data-piece="(\d+)"', ex.pieces.value)]


def test_explore_draws_every_view(explorer):
    ex = explorer
    rep = ex.cm.report
    assert isinstance(ex, __import__("ipywidgets").VBox)
    assert len(rep.pieces) == 5 and _rows(ex) == [0, 1, 2, 3, 4]
    graph_ops = {vx.op_name(n) for cg in ex.cm.graphs for n in cg.gm.graph.nodes if n.op.startswith("call_")}
    assert set(ex.controls.split_ops.options) == graph_ops and "vexplore::attention" in graph_ops
    assert ex.controls.split_ops.value == ("vexplore::attention",)
    assert "<svg" in ex.graph.value and ex.graph.value.count('class="node"') == 5
    assert {t.name for t in ex.bars.data} == {"compiled", "split op"}
    assert sum(len(t.y) for t in ex.timeline.data) == len(rep.events)
    assert "cpp_fused" in ex.code.value
    assert ex.controls.cudagraph.disabled and "need a CUDA GPU" in ex.controls.cudagraph_note.value
    assert ex.tabs.titles == ("Graph", "Pieces graph", "Pieces", "Code", "History", "Advice", "Compile time", "Run", "Tune")
    # the interactive graph: every node of the report, its module paths and kernels, collapsed
    g = ex.graph_view.graph
    assert len(g["nodes"]) == sum(p.nodes for p in rep.pieces)
    assert ex.graph_view.expanded == default_expanded(g) and "layers" in ex.graph_view.expanded
    assert {"embed", "layers", "layers.0", "lm_head"} <= set(g["modules"])
    assert any(n["kernel"] and n["kernel"] in g["kernels"].get(str(n["piece"]), {}) for n in g["nodes"])


def test_changing_a_control_recompiles_and_redraws(explorer):
    ex = explorer
    first = ex.cm.report
    ex.controls.strategy.value = "full"
    ex.compile_button.click()
    ex.wait()
    rep = ex.cm.report
    assert rep is not first and rep.kind == "recompile" and rep.strategy == "full"
    assert ex.shown is rep and _rows(ex) == [0]
    assert f'data-report="{rep.id}"' in ex.pieces.value and f'data-report="{rep.id}"' in ex.summary.value
    assert ex.bars.figure.layout.title.text.startswith(f"Compile time per piece — report {ex.number(rep)} (full)")
    assert ex.progress.bar.bar_style == "success" and ex.progress.cancel.disabled
    assert [r.strategy for r in ex.reports] == ["piecewise", "full"]
    assert len(ex.cm.graphs) == 1          # recompiled, not re-traced
    ex.expand.value = (0,)
    assert ex.graph.value.count('class="node"') == rep.pieces[0].nodes
    assert {n["piece"] for n in ex.graph_view.graph["nodes"]} == {0}   # the graph view follows the report


def test_ten_toggles_in_a_row_keep_working(explorer):
    ex = explorer
    for i in range(10):
        ex.controls.strategy.value = "full" if i % 2 == 0 else "piecewise"
        ex.compile_button.click()
        ex.wait()
        assert ex.cm.report.strategy == ex.controls.strategy.value
        assert len(_rows(ex)) == (1 if i % 2 == 0 else 5)
    assert len(ex.reports) == 11 and len(ex.history_pick.options) == 11
    later = ex.reports[2:]   # every configuration is back in the memory tier from the third compile on
    assert all(r.counters["inductor_compiles"] == 0 and r.counters["cache_misses"] == 0 for r in later)
    assert all(r.counters["cache_hits_memory"] == r.counters["unique_pieces"] for r in later)
    assert ex.history.value.count("<tr") == 12
    ex.history_pick.value = 0              # look back at the first report
    assert ex.shown is ex.reports[0] and _rows(ex) == [0, 1, 2, 3, 4]
    x = ex.inputs[0]
    with torch.no_grad():
        torch.testing.assert_close(ex.cm(x), ex.cm.model(x))


def test_cancel_keeps_the_previous_compile(explorer, tmp_path):
    ex = explorer
    before = list(ex.reports)

    def click_cancel(event):  # the first event of the new compile: the user clicks Cancel now
        if not ex.progress.cancel.disabled:
            ex.progress.cancel.click()

    unsubscribe = ex.session.monitor.subscribe(click_cancel)
    try:
        ex.compile(toy_config(tmp_path / "other", strategy="full"), wait=True)
    finally:
        unsubscribe()
    assert ex.reports == before and ex.cm.report is before[-1]
    assert ex.progress.bar.description == "cancelled" and "CancelledError" in ex.progress.status.value
    assert not ex.compile_button.disabled
    x = ex.inputs[0]
    with torch.no_grad():
        torch.testing.assert_close(ex.cm(x), ex.cm.model(x))
    ex.compile(toy_config(tmp_path, strategy="full"), wait=True)   # the next compile is not cancelled
    assert ex.cm.report.strategy == "full" and len(ex.reports) == len(before) + 1


def test_cancel_after_the_compile_ended_does_not_cancel_the_next(explorer, tmp_path, monkeypatch):
    """recompile has returned (and reset the cancel) but the views are still being drawn and the
    Cancel button is live: a click then must not cancel the following compile."""
    ex = explorer
    show = ex.show

    def show_then_click(report):
        show(report)
        if not ex.progress.cancel.disabled:
            ex.progress.cancel.click()

    monkeypatch.setattr(ex, "show", show_then_click)
    ex.compile(toy_config(tmp_path, strategy="full"), wait=True)
    assert ex.cm.report.strategy == "full" and ex.progress.bar.bar_style == "success"
    monkeypatch.setattr(ex, "show", show)
    ex.compile(toy_config(tmp_path, strategy="piecewise"), wait=True)
    assert ex.cm.report.strategy == "piecewise" and ex.progress.bar.description == "done"


def test_bad_compile_sizes_say_why_and_do_not_compile(explorer):
    ex = explorer
    ex.controls.sizes.value = "1, many"
    ex.compile_button.click()
    ex.wait()
    assert "&#x27;many&#x27; is not a whole number" in ex.progress.status.value
    assert len(ex.reports) == 1
    ex.controls.sizes.value = "4"
    ex.controls.tiers["disk"].value = False
    cfg = ex.controls.config()
    assert cfg.compile_sizes == (4,) and cfg.cache.tiers == ("memory",)
    assert cfg.splitting_ops == ("vexplore::attention",) and cfg.cache.dir == ex.cm.config.cache.dir


def test_sorting_the_pieces_table(explorer):
    ex = explorer
    ex.sort_by.value = "nodes"
    ex.descending.value = True
    nodes = {p.index: p.nodes for p in ex.shown.pieces}
    assert [nodes[i] for i in _rows(ex)] == sorted(nodes.values(), reverse=True)
    assert "nodes ▼" in ex.pieces.value


def test_benchmark_panel_compares_every_configuration(explorer):
    ex = explorer
    ex.compile(ex.cm.config.replace(strategy="full"), wait=True)
    ex.bench.sizes.value = "8, 32"
    ex.bench.reps.value = 3
    ex.bench.run.click()
    ex.wait()
    rep = ex.bench.report
    assert rep is not None, ex.bench.status.value
    assert [(r.variant, r.tokens) for r in rep.rows] == [
        (v, n) for n in (8, 32) for v in ("eager", "vexplore-piecewise-auto", "vexplore-full-auto")]
    assert all(r.max_rel_err < 1e-4 for r in rep.rows)
    assert [t.name for t in ex.bench.chart.data] == ["eager", "vexplore-piecewise-auto", "vexplore-full-auto"]
    assert ex.bench.table.value.count("<tr>") == 1 + 6 and "speed-up vs eager" in ex.bench.table.value
    # one CompiledModel per configuration, made once; the explorer's own model is left as it was
    assert len(ex.bench._compiled) == 2 and ex.bench._compiled_for(ex.cm.config) is not ex.cm
    assert len(ex.cm.graphs) == 1 and ex.cm.report is ex.reports[-1]


def test_explorer_of_a_model_called_with_keywords_says_how_to_time_it(tmp_path):
    """vx.explore(cm) of a model called with keywords has no inputs to time it with: the panel says
    so and how, instead of calling the model with none (a Hugging Face model then raised its own error)."""
    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    (x,) = m.example_inputs(16)
    cm = vx.compile(m, toy_config(tmp_path).replace(compiler="eager"), session=vx.Session())
    with torch.no_grad():
        cm(tokens=x)
    ex = vx.explore(cm)
    assert ex.bench.run.disabled and "no example inputs to time" in ex.bench.status.value
    with pytest.raises(vx.VexploreError, match=r"vx.benchmark\(\{'eager'"):
        ex.bench.measure([cm.config])
