"""The explorer's static snapshot (ui/snapshot.py) and vx.export_html (ui/export.py).

The snapshot of the quickstart's model (the 4-layer toy Llama on 16 tokens, ``toy_report``) has
every section and stays under its budget; the explorer shows it as a second output under a display
id and updates it when it recompiles (IPython's test shell, then a real kernel through nbclient,
and nbconvert's HTML). The export is one file that loads nothing and opens in Chromium cleanly;
it saves ``export-html.png`` to artifacts/ (docs/ with VEXPLORE_UPDATE_DOCS=1).
"""
from __future__ import annotations

import base64
import dataclasses
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from browsing import ARGS, CHROMIUM
import torch
from IPython.display import display
from IPython.utils.capture import capture_output
from nbclient import NotebookClient

import vexplore as vx
from vexplore.monitor.events import CompileEvent
from vexplore.monitor.report import CompileWarning
from vexplore.ui.figures import PHASE_COLOURS, main_phase
from vexplore.ui.snapshot import MAX_EVENTS, Subject, snapshot_html, subject_of, timeline_svg

from uihelpers import synthetic_report

ROOT = Path(__file__).resolve().parents[2]
WIDGET = "application/vnd.jupyter.widget-view+json"
BUDGET = 300_000                       # bytes of snapshot HTML for the quickstart's model
IMG = re.compile(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')   # nbconvert reorders attributes
LOADS = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _images(html: str) -> list[str]:
    return [base64.b64decode(m).decode("utf-8") for m in IMG.findall(html)]


# -- the snapshot, pure ---------------------------------------------------------------------------
def test_quickstart_snapshot_has_every_section_and_fits_the_budget(toy_compiled):
    cm, _x = toy_compiled
    html = snapshot_html(subject_of(cm), uid="abc123")
    assert len(html.encode("utf-8")) < BUDGET, len(html) // 1000
    assert 'class="vx-snapshot vx-snapshot-abc123 tex2jax_ignore"' in html     # MathJax leaves it alone
    for title in ("Graph", "Pieces (9)", "Timeline", "Warnings and advice"):
        assert f">{title}</summary>" in html
    assert "vexplore — ToyLlama: snapshot of report" in html
    assert html.count("<tr data-piece=") == 9
    advice = vx.advise(cm)                       # the advisor's list, as the Advice tab shows it
    assert all(f"{a.severity} {a.code}" in html for a in advice) and (advice or "nothing to suggest" in html)
    # what survives JupyterLab's sanitizer of untrusted notebooks: no script, no inline <svg>
    assert "<script" not in html and "<svg" not in html
    graph, timeline = _images(html)
    assert "layers.0–3 ×4 identical" in graph and graph.count('class="node"') >= 5
    assert ET.fromstring(timeline).tag.endswith("svg")


def test_timeline_svg_draws_every_event_and_the_wall_time(toy_report):
    svg = timeline_svg(toy_report)
    root = ET.fromstring(svg)                                   # well-formed
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = [r for r in root.findall("s:rect", ns) if r.find("s:title", ns) is not None and r.get("class") != "vx-stripe"]
    assert len(bars) == len(toy_report.events) > 5
    assert all(float(b.get("width")) >= 1 for b in bars)
    assert "stroke-dasharray" in svg and "wall " in svg and "dynamo_trace" in svg
    # coloured by phase, as the explorer's timeline: each bar in its main phase's colour, a legend of phases
    assert [b.get("fill") for b in bars] == [PHASE_COLOURS[main_phase(e)] for e in toy_report.events]
    legend = {t.text for t in root.findall("s:text", ns)}
    assert {p for p, s in toy_report.phases.items() if s > 0} <= legend


def test_timeline_of_many_events_is_cut_with_a_note():
    events = tuple(CompileEvent("load", i * 0.01, 0.005, graph=0, piece=i, tier="memory") for i in range(401))
    rep = dataclasses.replace(synthetic_report(layers=2, nodes_per_piece=2), events=events, wall_s=4.1)
    html = snapshot_html(Subject(rep))
    timeline = _images(html)[-1]
    assert timeline.count("<title>") == MAX_EVENTS
    assert f"the first {MAX_EVENTS} events drawn; {len(rep.events) - MAX_EVENTS} more" in html


def test_warnings_and_advice_are_listed(toy_report):
    rep = dataclasses.replace(toy_report, warnings=(CompileWarning("no_split", "nothing <to> split"),),
                              graph_breaks=("print() in forward",))
    html = snapshot_html(Subject(rep, advice=()))
    assert "<b>no_split</b>: nothing &lt;to&gt; split" in html and "graph break: print() in forward" in html
    assert "The advisor has nothing to suggest" in html
    advice = type("Advice", (), {"code": "split_more", "severity": "warning", "message": "try <this>"})()
    assert "warning split_more</b>: try &lt;this&gt;" in snapshot_html(Subject(rep, advice=(advice,)))


def test_subject_of_refuses_what_it_cannot_draw():
    with pytest.raises(vx.VexploreError, match="give a CompiledModel"):
        subject_of(object())
    with pytest.raises(vx.VexploreError, match="not been compiled yet"):
        subject_of(vx.compile(torch.nn.Linear(2, 2)))


# -- the explorer shows it, and keeps it current -------------------------------------------------
@pytest.fixture
def ip_compiler() -> str:
    return "eager"   # the ip shell's cfg: these tests draw snapshots, not generated code


def _snapshot_outputs(cap) -> list:
    return [o for o in cap.outputs if 'class="vx-snapshot' in o.data.get("text/html", "")]


def test_explorer_displays_the_widget_then_its_snapshot_and_updates_it(ip):
    ex = vx.explore(ip.user_ns["model"], ip.user_ns["x"], config=ip.user_ns["cfg"])
    with capture_output() as cap:
        display(ex)
    widget, snap = cap.outputs
    assert WIDGET in widget.data and WIDGET not in snap.data
    uid = ex.snapshot.uid
    assert snap.transient == {"display_id": f"vexplore-snapshot-{uid}"}
    assert f"vx-snapshot-{uid}" in snap.data["text/html"] and "Pieces (5)" in snap.data["text/html"]
    header = ex.children[0].value                             # the live widget hides that snapshot
    assert f"<style>.vx-snapshot-{uid}{{display:none}}</style>" in header

    with capture_output() as cap:
        ex.compile(ip.user_ns["cfg"].replace(strategy="full"), wait=True)
    (update,) = _snapshot_outputs(cap)
    assert update.update and update.transient == {"display_id": f"vexplore-snapshot-{uid}"}
    assert f"snapshot of report {ex.number(ex.shown)}" in update.data["text/html"]   # the explorer's number
    assert "Pieces (1)" in update.data["text/html"]


def test_replayed_reports_leave_a_snapshot_and_export(ip, toy_report, tmp_path):
    ex = vx.explore(toy_report)                              # saved reports, no model
    with capture_output() as cap:
        display(ex)
    assert [WIDGET in o.data for o in cap.outputs] == [True, False]
    assert "snapshot of report 1" in cap.outputs[1].data["text/html"]    # the replay's one report
    html = vx.export_html(ex, tmp_path / "replay.html").read_text()
    assert ">Pieces (9)</summary>" in html and ">Generated code</summary>" in html


def test_vexplore_magic_leaves_the_snapshot_too(ip):
    with capture_output() as cap:
        ip.run_line_magic("vexplore", "model x --config cfg --strategy full")
    assert [WIDGET in o.data for o in cap.outputs] == [True, False]
    assert "Pieces (1)" in _snapshot_outputs(cap)[0].data["text/html"]


# -- a real kernel: nbclient executes, nbconvert converts ----------------------------------------
NOTEBOOK = [
    "import os, torch, vexplore as vx\nfrom vexplore.models import ToyLlama\ntorch.manual_seed(0)\n"
    "model = ToyLlama(layers=2).eval()\n(x,) = model.example_inputs(16)\n"
    "cfg = vx.CompileConfig(strategy='piecewise', splitting_ops=['vexplore::attention'], compiler='eager',\n"
    "                       cache=vx.CacheConfig(dir=os.environ['VEXPLORE_CACHE_DIR']))",
    "ex = vx.explore(model, x, config=cfg)\nex",
    "ex.compile(cfg.replace(strategy='full'), wait=True)\nprint('shown report', ex.number(ex.shown))",
]


def test_executed_notebook_keeps_the_updated_snapshot_and_nbconvert_shows_it(tmp_path, monkeypatch):
    from nbconvert import HTMLExporter

    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "vxcache"))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[1].outputs
    assert [WIDGET in o.get("data", {}) for o in outputs] == [True, False]
    snap = outputs[1]["data"]["text/html"]
    shown = re.search(r"shown report (\d+)", nb.cells[2].outputs[0]["text"]).group(1)
    assert f"snapshot of report {shown}" in snap and "Pieces (1)" in snap     # updated by the later cell
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert html.count('class="vx-snapshot vx-snapshot-') == 1 and "Pieces (1)" in html
    assert len(_images(html)) == 2


# -- vx.export_html -------------------------------------------------------------------------------
def test_export_html_is_one_file_that_loads_nothing(toy_compiled, tmp_path):
    cm, _x = toy_compiled
    for obj, title in ((cm, "ToyLlama"), (cm.report, "report")):
        path = vx.export_html(obj, tmp_path / "out" / "report.html")
        html = path.read_text()
        assert path.stat().st_size < 1_500_000, path.stat().st_size // 1000
        assert not LOADS.findall(html) and "<script" not in html and "@import" not in html and "url(" not in html
        assert f"<h1>vexplore — {title}</h1>" in html
        for section in ("Graph", "Pieces (9)", "Generated code", "Timeline", "Warnings and advice", "Benchmark"):
            assert f">{section}</summary>" in html
        assert html.count("<svg") == 2 and html.count("<tr data-piece=") == 9
        assert len(re.findall(r"<summary[^>]*>piece \d+ \(", html)) == 3 and "cpp_fused" in html   # 3 unique pieces


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_exported_explorer_with_a_benchmark_opens_in_chromium_without_errors(ip, tmp_path):
    from playwright.sync_api import sync_playwright

    cfg = ip.user_ns["cfg"].replace(compiler="inductor")          # real generated code to show
    ex = vx.explore(ip.user_ns["model"], ip.user_ns["x"], config=cfg)
    ex.compile(cfg.replace(strategy="full"), wait=True)
    ex.compile(cfg, wait=True)                                      # back to piecewise: the export shows it
    ex.bench.sizes.value = "16"
    ex.bench.reps.value = 3
    ex.benchmark(wait=True)
    path = vx.export_html(ex, tmp_path / "explorer.html")
    html = path.read_text()
    assert ">Benchmark</summary>" in html and "vexplore-full-auto" in html and ">Reports (3)</summary>" in html
    shots = ROOT / ("docs" if os.environ.get("VEXPLORE_UPDATE_DOCS") == "1" else "artifacts")
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(f"load {r.url}"))
        page.goto(path.as_uri())
        page.locator("details > summary", has_text="Generated code").wait_for()
        assert page.locator("svg g.node").count() >= 5 and page.locator("table.vx-pieces tbody tr").count() == 5
        page.locator("details details > summary").first.click()       # open the first piece's code
        assert page.locator(".vx-code-view").first.is_visible()
        page.screenshot(path=str(shots / "export-html.png"), full_page=True)
        browser.close()
    assert problems == []
