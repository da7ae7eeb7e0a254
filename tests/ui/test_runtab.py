"""The explorer's Run tab (ui/runtab.py over ui/runview.py's builders), the profile in export_html,
and %vxprofile: a 2-layer toy Llama with eager pieces profiled on the CPU for real (the engine's
profile, no stand-ins), plus profiles built from records for what only a GPU gives (limit shares,
CUDA-graph counts). The last test presses Profile in JupyterLab in Chromium."""
from __future__ import annotations

import dataclasses
import html
import json
import linecache
import math
import re

import pytest
import torch
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import vexplore as vx
from vexplore.bench.statementprofile import profile_statement
from vexplore.monitor.profile import KernelRow, RuntimeCounters
from vexplore.ui.explorer import Explorer
from vexplore.ui.magiclines import VXPROFILE_HELP, VXPROFILE_OPTIONS, split_vxprofile_line
from vexplore.ui.runtab import RunTab
from vexplore.ui.runview import (COLD, HEAT, NO_PROFILE, call_figure, heat_graph, kernel_rows, node_times, per_call,
                                 pieces_figure, profile_section, sorted_rows, summary_html)

from browsing import BLOCK_LINES, code_notebook, lab_notebook, needs_chromium, shots_dir
from uihelpers import toy_config

CALLS = 8


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """(explorer, its profile): a 2-layer toy Llama, eager pieces, profiled by the explorer's Profile."""
    from vexplore.models import ToyLlama

    torch._dynamo.reset()
    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    (x,) = m.example_inputs(16)
    ex = vx.explore(m, x, config=toy_config(tmp_path_factory.mktemp("run"), compiler="eager"), session=vx.Session())
    before = ex.cm.report
    assert html.escape(NO_PROFILE) in ex.run_view.summary.value and ex.run_view.table.rows == []
    assert ex.profile(calls=CALLS, warmup=1, wait=True)
    assert ex.cm.report is not before and ex.reports == [ex.cm.report] and ex.shown is ex.cm.report
    prof = ex.cm.report.profiles[-1]
    assert ex.run_view.status.value == f"profiled {CALLS} calls in {prof.profile_s:.1f} s"
    return ex, prof


def test_profile_fills_the_run_tab(profiled):
    ex, prof = profiled
    tab = ex.run_view
    assert f"{CALLS} calls</b> on {prof.device}" in tab.summary.value and "host gap" in tab.summary.value
    assert [r["id"] for r in tab.table.rows] == sorted_rows(prof, "time")
    assert len(tab.table.rows) == len(prof.rows) > 10
    busy, gap, lead, outside = tab.call_chart.figure.data
    assert [t.name for t in (busy, gap, lead, outside)] == ["device busy", "host gap", "before the first graph",
                                                           "outside the kernels"]
    assert (busy.x[0], gap.x[0], lead.x[0]) == (prof.device_ms, prof.host_gap_ms, prof.lead_in_ms)
    # the CPU's span is the trace's, so the parts add up to the profiled wall
    assert prof.lead_in_ms > 0 and math.isclose(outside.x[0], max(0.0, prof.profiled_wall_ms - prof.span_ms - prof.lead_in_ms))
    assert "no CUDA graphs ran" in tab.call_chart.figure.layout.title.text
    bars = tab.piece_chart.figure.data[0]
    assert list(bars.y) == [u.mean_ms for u in prof.by_piece()] and len(bars.y) == len(ex.shown.pieces)
    assert not tab.button.disabled and "tachometer" == tab.button.icon
    assert "Run" in [ex.tabs.get_title(i) for i in range(len(ex.tabs.children))]


def test_a_span_by_cuda_events_is_set_against_the_wall_without_the_profiler(profiled):
    """On CUDA the span is of calls without the profiler (span_timer "cuda events"), so the bar's parts add up
    to the unprofiled wall, the host's time before the call's first graph (lead_in_ms) a part of its own."""
    _, prof = profiled
    cuda = dataclasses.replace(prof, span_timer="cuda events", span_ms=prof.wall_ms * 0.5, lead_in_ms=prof.wall_ms * 0.2)
    bars = {t.name: t.x[0] for t in call_figure(cuda).data[:4]}
    assert list(bars) == ["device busy", "host gap", "before the first graph", "outside the kernels"]
    assert math.isclose(bars["before the first graph"], prof.wall_ms * 0.2)
    assert math.isclose(bars["outside the kernels"], prof.wall_ms * 0.3)
    assert "before the first graph" in summary_html(cuda)
    none = dataclasses.replace(prof, lead_in_ms=0.0)   # a profile saved before lead-ins: no such part
    assert "before the first graph" not in summary_html(none) and len(call_figure(none).data) == 3


def test_kernel_rows_by_time_and_by_limit_share(profiled):
    _, prof = profiled
    rows = kernel_rows(prof, "time")
    times = [float(r["cells"][2]) for r in rows]
    assert times == sorted(times, reverse=True)
    assert all(r["cells"][7] == "—" for r in rows)                  # the CPU has no limit share
    assert [r["id"] for r in kernel_rows(prof, "limit")] == [r["id"] for r in rows]   # so time order
    assert {r["heat"] for r in rows} <= set(HEAT) and rows[0]["heat"] == HEAT[-1]
    # on a GPU: furthest from the limit first, kernels without one last
    shares = [0.5, None, 0.1, 0.9]
    gpu = dataclasses.replace(prof, rows=tuple(dataclasses.replace(r, limit_share=s) for r, s in zip(prof.rows, shares)))
    assert sorted_rows(gpu, "limit")[:3] == [2, 0, 3]
    assert [r["cells"][7] for r in kernel_rows(gpu, "limit")[:3]] == ["10 %", "50 %", "90 %"]
    with pytest.raises(ValueError, match="time, limit"):
        sorted_rows(prof, "name")


def test_clicking_a_header_sorts_and_a_row_picks_a_kernel(profiled):
    ex, prof = profiled
    tab = ex.run_view
    tab.table.sort = "limit"                                          # what a header click sends
    assert [r["id"] for r in tab.table.rows] == sorted_rows(prof, "limit")
    tab.table.sort = "time"
    i = next(r["id"] for r in tab.table.rows if prof.rows[r["id"]].source_lines and prof.rows[r["id"]].nodes)
    tab.table.picked = i                                              # what a row click sends
    k = prof.rows[i]
    details = html.unescape(tab.details.value)
    assert k.name in details and ", ".join(k.nodes) in details
    path, line = k.source_lines[0].rsplit(":", 1)
    assert linecache.getline(path, int(line)).strip() in details      # the line's own text
    graph = html.unescape(tab.graph.value)
    assert graph.count('class="node vx-run-picked"') >= 1 and "vx-heat-legend" in graph
    # from Python, as the button's users do
    j = tab.table.rows[1]["id"]
    tab.pick(j)
    assert tab.table.picked == j and prof.rows[j].name in html.unescape(tab.details.value)
    tab.pick(-1)


def test_the_heat_graph_adds_up_to_the_kernels(profiled):
    ex, prof = profiled
    report = ex.shown
    nodes = node_times(prof, report)
    mapped = sum(per_call(r, prof) for r in prof.rows if r.nodes and r.piece is not None)
    assert math.isclose(sum(nodes.values()), mapped, rel_tol=1e-9)
    g = heat_graph(prof, report)
    assert g.svg is not None and math.isclose(sum(g.times.values()), mapped, rel_tol=1e-9)
    assert g.hottest == max(g.times.values()) and g.picked == ()
    fills = set(re.findall(r'fillcolor="(#[0-9a-f]{6})"', g.dot))
    assert HEAT[-1] in fills and fills <= {*HEAT, COLD}
    # a picked node opens its modules: it is a box of its own
    attn = next(r for r in prof.rows if r.name == "vexplore::attention")
    graph = next(p.graph for p in report.pieces if p.index == attn.piece)
    picked = heat_graph(prof, report, (f"g{graph}:{attn.nodes[0]}",))
    assert picked.picked == (f"g{graph}:{attn.nodes[0]}",) and 'class="vx-run-picked"' in picked.dot


def test_pieces_and_calls_figures_from_records(profiled):
    _, prof = profiled
    rt = RuntimeCounters(captures=2, replays=30, replays_by_size=((16, 30),), uncaptured_calls=4,
                         uncaptured_sizes=((24, 4),), padded_calls=5)
    fig = call_figure(dataclasses.replace(prof, runtime=rt))
    counts = {t.name: t.x[0] for t in fig.data if t.name in ("replayed", "padded", "uncaptured")}
    assert counts == {"replayed": 25, "padded": 5, "uncaptured": 4} and "4 of 34 calls without" in fig.layout.title.text
    empty = dataclasses.replace(prof, rows=())
    assert "No kernel ran" in pieces_figure(empty, profiled[0].shown).layout.title.text
    # every size without a graph, with its calls and why
    why = dataclasses.replace(rt, uncaptured_why=((24, "24 tokens is no capture size (captured: 16) ..."),))
    html = summary_html(dataclasses.replace(prof, runtime=why))
    assert "Without a CUDA graph:" in html and "<b>24 tokens</b> (4 calls): 24 tokens is no capture size" in html
    assert "Without a CUDA graph" not in summary_html(prof)


def test_export_and_saved_reports_carry_the_profile(profiled, tmp_path):
    ex, prof = profiled
    page = vx.export_html(ex, tmp_path / "run.html").read_text()
    section = page.split("Runtime profile", 1)[1]
    top = prof.top(1)[0]
    assert "vx-run-kernels" in section and "vx-run-pieces" in section and html.escape(top.name) in section
    assert f"Top {min(15, len(prof.rows))} kernels" in section
    assert "No runtime profile" in profile_section(dataclasses.replace(ex.shown, profiles=()))
    path = ex.shown.save(tmp_path / "rep.json")
    replay = vx.explore(vx.load_report(path))
    assert [r["id"] for r in replay.run_view.table.rows] == [r["id"] for r in ex.run_view.table.rows]
    assert replay.run_view.button.disabled and "saved reports" in replay.run_view.status.value
    with pytest.raises(vx.VexploreError, match="Profile is off"):
        replay.profile()


def test_profile_waits_its_turn(profiled):
    import threading

    ex, _ = profiled
    release = threading.Event()
    assert ex.worker.start("hold", release.wait, lambda _r, _e: ex._busy(False))
    ex._busy(True)
    try:
        assert ex.run_view.button.disabled
        assert ex.profile() is False and "busy" in ex.run_view.status.value
    finally:
        release.set()
        ex.wait()
    assert not ex.run_view.button.disabled


def test_a_tab_without_a_profile_says_how_to_get_one(profiled):
    ex, _ = profiled
    tab = RunTab()
    tab.show(dataclasses.replace(ex.shown, profiles=()))
    assert html.escape(NO_PROFILE) in tab.summary.value and tab.table.rows == [] and tab.graph.value == ""
    tab.pick(0)
    assert "Click a kernel" in tab.details.value


def test_an_explorer_without_inputs_says_how_to_profile(profiled):
    ex, _ = profiled
    bare = vx.explore(ex.cm)                      # a model called already, no inputs given here
    assert bare.run_view.button.disabled and "no inputs" in bare.run_view.status.value
    with pytest.raises(vx.VexploreError, match="cm.profile"):
        bare.profile()


# -- %vxprofile -----------------------------------------------------------------------------------------
@pytest.fixture
def ip_compiler() -> str:
    return "eager"      # the magics' own work; Inductor's builds are not what these tests look at


def test_vxprofile_prints_the_top_kernels_and_keeps_the_profile(ip):
    ip.run_cell("import torch, vexplore as vx\ncm = vx.compile(model, cfg)\nwith torch.no_grad():\n    cm(x)", store_history=False)
    with capture_output() as cap:
        assert ip.run_line_magic("vxprofile", "-n 4 -w 1 -k 3 cm(x)") is None
    lines = cap.stdout.strip().splitlines()
    assert re.match(r"4 calls on .*: wall [\d.]+ ms, device [\d.]+ ms", lines[0]) and lines[1].startswith("kernel")
    assert len(lines) == 5                                            # head, columns, 3 kernels
    cm = ip.user_ns["cm"]
    assert len(cm.report.profiles) == 1 and cm.report.profiles[0].calls == 4
    with capture_output() as cap:
        prof = ip.run_line_magic("vxprofile", "-q -o -n 3 -w 0 cm(x)")
    assert cap.stdout == "" and isinstance(prof, vx.RuntimeProfile) and prof is cm.report.profiles[-1]


def test_profile_statement_compiles_what_is_not_compiled(tmp_path):
    lin = torch.nn.Linear(8, 8).eval()
    ns = {"lin": lin, "x": torch.randn(4, 8)}
    cfg = vx.CompileConfig(compiler="eager", cache=vx.CacheConfig(dir=str(tmp_path)))
    one = profile_statement("lin(x)", ns, calls=3, warmup=1, config=cfg)
    assert one.how == "compiled" and one.cm.model is lin and one.profile.calls == 3
    assert any("linear" in r.name or "addmm" in r.name for r in one.profile.rows)
    many = profile_statement("y = lin(x); z = (y * 2).sum()", ns, calls=2, warmup=0, config=cfg)
    assert many.how == "statement" and many.profile.rows
    with pytest.raises(vx.VexploreError, match="could not evaluate"):
        profile_statement("nosuch(x)", ns, config=cfg)
    with pytest.raises(vx.VexploreError, match="not valid Python"):
        profile_statement("lin(x", ns, config=cfg)


@pytest.mark.parametrize("line, message", [
    ("", "needs a statement"),
    ("-n 0 model(x)", "0 is too small"),
    ("-w -1 model(x)", "give a whole number >= 0"),
    ("-k two model(x)", "'two' is not a whole number"),
    ("nosuch(x)", "could not evaluate"),
    ("model(x", "not valid Python"),
])
def test_vxprofile_errors_are_usage_errors(ip, line, message):
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("vxprofile", line)


def test_vxprofile_line_and_help():
    assert split_vxprofile_line("-n 50 -w2 -k 5 -o model(x, y)") == \
        split_vxprofile_line("-n50 -w 2 -k5 -o  model(x, y)")
    asked = split_vxprofile_line("-q model(x) ")
    assert (asked.calls, asked.warmup, asked.top, asked.out, asked.quiet, asked.statement) == (20, 5, 15, False, True, "model(x)")
    for o in VXPROFILE_OPTIONS:
        assert o.shown in VXPROFILE_HELP and o.example in VXPROFILE_HELP
    from vexplore.magics import VexploreMagics
    assert VexploreMagics.vxprofile.__doc__ == VXPROFILE_HELP
    with open("docs/api.md", encoding="utf-8") as f:
        api = f.read()
    from vexplore.magics import VXPROFILE_PARSER
    assert f"### `{VXPROFILE_PARSER.usage_line()}`" in api
    for o in VXPROFILE_OPTIONS:
        assert f"| `{o.shown}` |" in api, o.shown


# -- in a real browser ------------------------------------------------------------------------------------
RUN_NOTEBOOK = code_notebook([
    *BLOCK_LINES,
    "cm = vx.compile(nn.Sequential(*[Block() for _ in range(3)]).eval(), vx.CompileConfig(compiler='eager'))\n",
    "x = torch.randn(8, 16)\n",
    "with torch.no_grad():\n",
    "    cm(x)\n",
    "ex = vx.explore(cm, x)\n",
    "ex"])


@pytest.mark.browser
@needs_chromium
def test_run_tab_profiles_and_picks_a_kernel_in_jupyterlab(lab, tmp_path):
    """JupyterLab in Chromium: the Run tab's Profile round-trips through the kernel, the kernels table
    appears, a click on a row frames the kernel's nodes in the graph and shows its lines (saved as
    artifacts/browser-run-tab.png; docs/run-tab.png with VEXPLORE_UPDATE_DOCS=1)."""
    (tmp_path / "nb" / "run.ipynb").write_text(json.dumps(RUN_NOTEBOOK))
    with lab_notebook(lab, "run.ipynb") as (page, errors):
        ex = page.locator(".vexplore-explorer").first
        ex.wait_for(timeout=120_000)
        ex.locator(".lm-TabBar-tab", has_text=re.compile(r"^Run$")).click()
        ex.locator("button.vx-profile-button").click()
        rows = ex.locator(".vx-kt-row")
        rows.first.wait_for(timeout=60_000)
        assert rows.count() > 3 and "—" in rows.first.inner_text()          # limit share: none on the CPU
        ex.locator(".vx-kt-table th.vx-kt-sortable", has_text="limit share").click()
        ex.locator(".vx-kt-table th.vx-kt-sorted", has_text="limit share").wait_for(timeout=30_000)
        rows.first.click()
        ex.locator(".vx-kt-row.vx-kt-picked").wait_for(timeout=30_000)
        ex.locator(".vx-run-graph svg g.node.vx-run-picked").first.wait_for(timeout=30_000)
        details = ex.locator(".vx-run-details").inner_text()
        assert "source lines" in details and "nodes" in details
        ex.locator(".vx-run-graph").scroll_into_view_if_needed()
        page.screenshot(path=str(shots_dir() / "browser-run-tab.png"))
        if shots_dir(docs=True).name == "docs":
            ex.locator(".vx-run-tab").screenshot(path=str(shots_dir(docs=True) / "run-tab.png"))
    assert not errors, errors
