"""The pure view builders over reports: DOT, SVG/plain rendering, plotly figures, tables, code.

No widgets and no browser: each builder takes a CompileReport (a real toy-Llama one, or a
synthetic one built from the same dataclasses) and returns text or a plotly Figure.
"""
from __future__ import annotations

import re
import time

import pytest

from vexplore.bench.compare import BenchReport, BenchRow
from vexplore.ui.code import code_html, kernels
from vexplore.ui.dot import Run, fold_runs, report_dot
from vexplore.monitor.phases import PHASES
from vexplore.ui.figures import PHASE_COLOURS, bench_figure, compile_time_figure, main_phase, timeline_figure
from vexplore.ui.render import graph_view
from vexplore.ui.style import outcome
from vexplore.ui.tables import bench_table, history_table, pieces_table, summary_html

from uihelpers import scaled_report, synthetic_report

EVIL = '<script>alert("x")</script>'


def test_toy_report_folds_layers(toy_report):
    # piece 0, attention, (layer piece, attention) x3, last piece: 2 * layers + 1 pieces
    assert [p.kind for p in toy_report.pieces] == ["compiled", "split_op"] * 4 + ["compiled"]
    assert fold_runs(list(toy_report.pieces)) == [Run(0, 1, 1), Run(1, 1, 1), Run(2, 2, 3), Run(8, 1, 1)]
    dot = report_dot(toy_report)
    boxes = sorted(int(i) for i in re.findall(r"^\s+p(\d+) \[", dot, re.M))
    assert boxes == [0, 1, 2, 3, 8]
    assert "<b>piece 2 = 4 = 6</b>" in dot
    assert "<b>×3</b> (pieces 2–7)" in dot
    assert dot.count("<b>vexplore::attention</b>") == 2


def test_unfolded_dot_holds_every_piece_and_split_op(toy_report):
    dot = report_dot(toy_report, fold=False)
    boxes = sorted(int(i) for i in re.findall(r"^\s+p(\d+) \[", dot, re.M))
    assert boxes == list(range(9))
    assert len(re.findall(r"subgraph cluster_p\d+ ", dot)) == 9
    assert dot.count("<b>vexplore::attention</b>") == 4
    assert dot.count("same as piece 2 = 4 = 6") == 3
    assert "p0 -> p1;" in dot and "p7 -> p8;" in dot


def test_expanded_piece_shows_its_nodes_by_module(toy_report):
    p2 = toy_report.pieces[2]
    dot = report_dot(toy_report, expanded=[2])
    ids = set(re.findall(r"^\s+(p2_n\d+) \[", dot, re.M))
    assert len(ids) == len(p2.graph_nodes) == p2.nodes
    modules = {m for m in re.findall(r"subgraph cluster_p2_m\d+ \{ label=<([^>]*)>", dot)}
    assert {"layers.0.mlp_norm", "layers.1.attn_norm", "layers.1.qkv"} <= modules
    linear = next(k for k, n in enumerate(p2.graph_nodes) if n.target == "torch._C._nn.linear")
    tip = re.search(rf"p2_n{linear} \[.*tooltip=\"([^\"]*)\"", dot).group(1)
    n = p2.graph_nodes[linear]
    assert f"op: {n.op}" in tip and "target: torch._C._nn.linear" in tip
    assert f"shape: {n.shape} float32" in tip and "toy_llama.py&quot;, line" in tip
    # an expanded piece is never folded; its twins 4 and 6 still fold
    assert fold_runs(list(toy_report.pieces), keep={2})[2:4] == [Run(2, 1, 1), Run(3, 1, 1)]


def test_model_text_is_escaped_everywhere():
    code = "x = 1\nk = async_compile.cpp_pybinding(['float*'], r'''\n</pre><script>bad()</script>\n''')\n"
    rep = synthetic_report(2, 3, name="n<img src=x>", module=EVIL, target='ns::op"\\N', code=code)
    for text in (report_dot(rep, expanded=[0, 1, 2]), pieces_table(rep), summary_html(rep), history_table([rep]),
                 code_html(rep.pieces[0]), graph_view(rep, expanded=[0]).html):
        assert "<script>" not in text and "<img" not in text
    dot = report_dot(rep, expanded=[0])
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in dot
    assert 'ns::op&quot;\\\\N' in dot   # the quote is an entity, the backslash stays literal
    view = graph_view(rep, expanded=[0])
    assert view.engine == "dot" and view.html.count('class="node"') == 3 + 1 + 1 + 1 + 1  # 3 nodes + 4 boxes
    assert "n&lt;img src=x&gt;0_0" in dot


def test_graph_view_without_dot_draws_pieces_and_says_why(toy_report, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))   # no `dot` anywhere on PATH
    view = graph_view(toy_report, fold=False)
    assert view.engine == "html" and "<svg" not in view.html
    assert "<code>dot</code> program was not found" in view.note
    assert view.html.count('class="vx-piece"') == 9
    assert view.html.count("vexplore::attention") == 4
    folded = graph_view(toy_report)
    assert folded.html.count('class="vx-piece"') == 5 and "<b>×3</b>" in folded.html


def test_svg_nodes_carry_tooltips(toy_report):
    view = graph_view(toy_report, expanded=[0])
    assert view.engine == "dot"
    assert view.html.count('class="node"') == 4 + toy_report.pieces[0].nodes
    assert "target: torch.nn.functional.embedding" in view.html


def test_compile_time_figure_colours_by_outcome(toy_report):
    fig = compile_time_figure(toy_report)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {outcome(p) for p in toy_report.pieces} == {"compiled", "split op"}
    compiled = [p for p in toy_report.pieces if p.kind == "compiled"]
    assert list(by_name["compiled"].x) == [str(p.index) for p in compiled]
    assert list(by_name["compiled"].y) == [p.compile_s for p in compiled]
    assert f"report {toy_report.id}" in fig.layout.title.text


def test_timeline_shows_every_event_beside_wall_time(toy_report):
    fig = timeline_figure(toy_report)
    assert sum(len(t.y) for t in fig.data) == len(toy_report.events)
    drawn = [t for t in fig.data if len(t.y)]       # one trace per phase: few traces draw fast in the browser
    assert [t.name for t in drawn] == [p for p in PHASES if any(main_phase(e) == p for e in toy_report.events)]
    for t in drawn:
        ev = [e for e in toy_report.events if main_phase(e) == t.name]
        assert list(t.x) == [e.duration_s for e in ev] and list(t.base) == [e.start_s for e in ev]
        assert t.marker.color == PHASE_COLOURS[t.name]
    labels = [y for t in drawn for y in t.y]
    assert any("dynamo_trace" in y for y in labels) and any("split" in y for y in labels)
    assert any("compile" in y for y in labels)
    assert fig.layout.shapes[0].x0 == toy_report.wall_s


def test_pieces_table_sorts_and_lists_every_field(toy_report):
    html = pieces_table(toy_report, "compile_s", descending=True)
    order = [int(i) for i in re.findall(r'data-piece="(\d+)"', html)]
    assert order[0] == max(toy_report.pieces, key=lambda p: p.compile_s).index
    assert sorted(order) == list(range(9))
    heads = re.findall(r"<th>([^<▲▼]*)", html)
    assert [h.strip() for h in heads] == ["#", "kind", "nodes", "unique key", "same as", "compiler",
                                          "compile time", "cache tier", "fallback reason", "writes in place",
                                          "no CUDA graph because"]
    by_nodes = [int(i) for i in re.findall(r'data-piece="(\d+)"', pieces_table(toy_report, "nodes"))]
    assert [toy_report.pieces[i].nodes for i in by_nodes] == sorted(p.nodes for p in toy_report.pieces)
    with pytest.raises(ValueError, match="sort_by='bogus'"):
        pieces_table(toy_report, "bogus")


def test_bench_table_and_chart():
    rows = [BenchRow("m", "eager", 16, 2.0, 1.5, 2.5, 0.0, 0.0), BenchRow("m", "vexplore-full-auto", 16, 1.0, 0.9, 1.2, 1e-7, 1.5),
            BenchRow("m", "eager", 64, 8.0, 7.0, 9.0, 0.0, 0.0), BenchRow("m", "vexplore-full-auto", 64, 2.0, 1.9, 2.2, 2e-7, 0.01)]
    html = bench_table(BenchReport(tuple(rows), "cpu", "2.13", None))
    assert "2.00×" in html and "4.00×" in html and "1.00e-07" in html and "1.90–2.200" not in html
    assert "1.900–2.200" in html
    fig = bench_figure(rows)
    assert [t.name for t in fig.data] == ["eager", "vexplore-full-auto"]
    assert list(fig.data[1].y) == [1.0, 2.0] and list(fig.data[1].error_y.arrayminus) == pytest.approx([0.1, 0.1])


def test_code_view_highlights_cpp_kernels(toy_report):
    p0 = toy_report.pieces[0]
    ks = kernels(p0.code)
    assert ks and all(lang == "cpp" for _, lang, _ in ks) and ks[0][0].startswith("cpp_fused")
    html = code_html(p0, toy_report.device)
    assert f"{len(ks)} kernel(s) in C++ on cpu" in html and '<span class="' in html and ".vx-code .k" in html
    assert "runs eagerly" in code_html(toy_report.pieces[1])
    assert "shares the compiled code of piece 2" in code_html(toy_report.pieces[4])


def test_render_speed_large_graphs(toy_report, record_property):
    """5,000 nodes collapsed in under 1 s; one 1,000-node piece expanded in under 3 s (measured).

    The graphs copy a real toy-Llama layer piece (its edges, shapes and module paths)."""
    layer = toy_report.pieces[2]
    big = scaled_report(layer, layers=136, copies=1)
    assert sum(p.nodes for p in big.pieces) >= 5000
    t = time.perf_counter()
    view = graph_view(big, fold=False)
    collapsed_unfolded = time.perf_counter() - t
    t = time.perf_counter()
    folded = graph_view(big)
    collapsed_folded = time.perf_counter() - t
    one = scaled_report(layer, layers=2, copies=-(-1000 // layer.nodes))
    assert one.pieces[0].nodes >= 1000
    t = time.perf_counter()
    exp = graph_view(one, expanded=[0])
    expanded = time.perf_counter() - t
    record_property("collapsed_5000_s", collapsed_unfolded)
    record_property("expanded_1000_s", expanded)
    print(f"\n{sum(p.nodes for p in big.pieces)}-node graph ({len(big.pieces)} pieces) collapsed: "
          f"{collapsed_unfolded:.3f} s unfolded, {collapsed_folded:.3f} s folded; "
          f"{one.pieces[0].nodes}-node piece expanded: {expanded:.3f} s")
    assert view.engine == folded.engine == exp.engine == "dot"
    assert view.html.count('class="node"') == len(big.pieces)
    assert exp.html.count('class="node"') == one.pieces[0].nodes + 2
    assert collapsed_unfolded < 1.0 and collapsed_folded < 1.0 and expanded < 3.0
