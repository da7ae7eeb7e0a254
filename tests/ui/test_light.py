"""An explorer light enough for a whole investigation (issue 28), without a browser.

Part 1, what the page receives: the explorer's widget state (every widget it reaches, binary
buffers counted by their length) for the 64-layer toy Llama within 3 MB and a second explorer
within 2 MB more; charts as plotly's mime type, the graph's front end once per kernel, the graph
gzipped. Part 5, names and places: one report number in every view, notebook cells named
``cell [n], line k``, evidence to three significant figures with units, alerts per model, no local
paths in an export unless asked, cache tiers that mean what they say.
"""
from __future__ import annotations

import base64
import gzip
import json
import re
from html import unescape
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest
import torch
from IPython.utils.capture import capture_output

import vexplore as vx
from vexplore.advise import Advice
from vexplore.models import ToyLlama
from vexplore.monitor.alerts import Alert
from vexplore.ui.chart import MIME, FigureView, figure_bundle
from vexplore.ui.displaytext import CellNames, evidence_text, figure_text, shown_advice, sig3, strip_paths
from vexplore.ui.graphwidget import GraphCode, GraphWidget, pack
from vexplore.ui.modelalerts import model_alerts
from vexplore.ui.snapshot import snapshot_html, subject_of

from uihelpers import toy_config

FIRST_MB, SECOND_MB = 3.0, 2.0


def state_bytes(w) -> int:
    """What ``w``'s state costs on the wire: its JSON, and its binary buffers by length."""
    buffers: list[int] = []

    def buffer(o):
        buffers.append(len(o))
        return None
    return len(json.dumps(w.get_state(), default=buffer)) + sum(buffers)


def reached(root) -> dict[str, object]:
    """Every widget ``root``'s state names, directly or through another (model id -> widget)."""
    from ipywidgets.widgets.widget import _instances

    out, todo = {}, [root.model_id]
    while todo:
        mid = todo.pop()
        if mid in out or mid not in _instances:
            continue
        out[mid] = w = _instances[mid]
        todo += re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(w.get_state(), default=lambda o: None))
    return out


@pytest.fixture(scope="module")
def toy64():
    torch.manual_seed(0)
    m = ToyLlama(layers=64).eval()
    return m, m.example_inputs(16)[0]


# -- part 1: what an explorer sends ---------------------------------------------------------------
def test_the_64_layer_explorer_sends_under_3_mb_and_a_second_under_2_mb(toy64, tmp_path):
    m, x = toy64
    cfg = toy_config(tmp_path, compiler="eager")
    ex1 = vx.explore(m, x, config=cfg, session=vx.Session())
    ex2 = vx.explore(m, x, config=cfg, session=vx.Session())
    for ex in (ex1, ex2):
        ex.charts.release()
    w1, w2 = reached(ex1), reached(ex2)
    first = sum(state_bytes(w) for w in w1.values())
    second = sum(state_bytes(w) for mid, w in w2.items() if mid not in w1)
    print(f"\nwidget state: first explorer {first / 1e6:.3f} MB, a second adds {second / 1e6:.3f} MB")
    assert first <= FIRST_MB * 1e6 and second <= SECOND_MB * 1e6
    # the front end once: both graph widgets name the one GraphCode, no widget carries plotly.js
    codes = [w for w in {**w1, **w2}.values() if isinstance(w, GraphCode)]
    assert len(codes) == 1 and ex1.graph_view.code is ex2.graph_view.code is codes[0]
    assert all(len(w.get_state().get("_esm", "")) < 4000 for w in w2.values())
    assert not any(type(w).__name__ == "FigureWidget" for w in w2.values())
    # charts are plotly's mime type, a few KB each; the graph goes gzipped and comes back whole
    _wait_released(ex1)
    bundle = ex1.bars.outputs[0]["data"]
    assert set(bundle) == {MIME, "text/plain"} and len(json.dumps(bundle)) < 40_000
    assert json.loads(gzip.decompress(ex1.graph_view.graph_z)) == json.loads(json.dumps(ex1.graph_view.graph))
    assert len(ex1.graph_view.graph_z) < len(json.dumps(ex1.graph_view.graph)) / 10


def _wait_released(ex, timeout: float = 10.0) -> None:
    import time

    end = time.time() + timeout
    while time.time() < end and not all(c.outputs for c in (ex.bars, ex.timeline)):
        time.sleep(0.05)
    assert all(c.outputs for c in (ex.bars, ex.timeline)), "the charts were not sent"


def test_figure_view_holds_its_figure_until_released_and_draws_no_empty_chart():
    fig = go.Figure(go.Bar(x=["a"], y=[1]), layout=dict(title="t"))
    view = FigureView(fig, held=True)
    assert view.outputs == () and view.data == fig.data
    view.release()
    (out,) = view.outputs
    assert out["output_type"] == "display_data" and out["data"] == figure_bundle(fig)
    assert out["data"][MIME]["data"][0]["y"] == [1] and out["data"]["text/plain"] == "<plotly figure: t>"
    view.show(go.Figure(layout=dict(title="press <Run>")))      # no traces: a line of text, no plotly draw
    (out,) = view.outputs
    assert MIME not in out["data"] and "press &lt;Run&gt;" in out["data"]["text/html"]


def test_graph_widget_sends_the_graph_gzipped_and_shares_its_front_end(toy_report):
    a, b = GraphWidget(), GraphWidget()
    assert a.code is b.code and a.code_digest == a.code.digest and len(a._esm) < 4000
    a.show(toy_report)
    assert "graph" not in a.get_state() and a.graph_z == pack(a.graph)
    assert json.loads(gzip.decompress(a.graph_z)) == json.loads(json.dumps(a.graph))
    a.code.close()                                  # Widget.close_all, say: the next widget makes it anew
    c = GraphWidget()
    assert c.code is not a.code and c.code.comm is not None


# -- part 5: names and places ---------------------------------------------------------------------
CELLS = CellNames({"/tmp/ipykernel_81/2093.py": 3, "<ipython-input-4-abc>": 4})


@pytest.mark.parametrize("text, shown", [
    ("/tmp/ipykernel_81/2093.py:18", "cell [3], line 18"),
    ("at 2093.py:18 (where)", "at cell [3], line 18 (where)"),
    ('File "/tmp/ipykernel_81/2093.py", line 18, in forward', "cell [3], line 18, in forward"),
    ("File &quot;/tmp/ipykernel_81/2093.py&quot;, line 18", "cell [3], line 18"),
    ("# File: /tmp/ipykernel_81/2093.py:18 in forward, code: h = x", "# File: cell [3], line 18 in forward, code: h = x"),
    ("&lt;ipython-input-4-abc&gt;:7", "cell [4], line 7"),
    ("<ipython-input-4-abc>", "cell [4]"),
    ("x12093.py:1 /other/2093.py:1 model.py:3", "x12093.py:1 /other/2093.py:1 model.py:3"),
])
def test_cell_names(text, shown):
    assert CELLS.sub(text) == shown


def test_cell_names_scan_for_shapes_not_for_each_cell():
    many = CellNames({f"/tmp/ipykernel_1/{i}.py": i for i in range(1, 300)})
    assert many.sub("/tmp/ipykernel_1/250.py:3 and 17.py") == "cell [250], line 3 and cell [17]"
    assert all(len(p.pattern) < 1000 for p in many._compiled[0])     # the cost does not grow with the cells
    assert CellNames({"my cell": 5}).sub("at my cell:2") == "at cell [5], line 2"   # IPYKERNEL_CELL_NAME's


def test_cell_names_walk_data_and_read_the_running_shell(ip):
    data = {"a": ["/tmp/ipykernel_81/2093.py:2", 1.5], "b": ("2093.py:3",)}
    assert CELLS.walk(data) == {"a": ["cell [3], line 2", 1.5], "b": ("cell [3], line 3",)}
    n = ip.execution_count
    ip.run_cell("def where():\n    import inspect\n    return inspect.currentframe().f_code.co_filename", store_history=True)
    name = ip.user_ns["where"]()
    assert CellNames.current().sub(f"{name}:2") == f"cell [{n}], line 2"


@pytest.mark.parametrize("x, text", [(0.3256852126221139, "0.326"), (1234.5, "1230"), (9.996, "10.0"),
                                     (2e-05, "2.00e-05"), (12.345, "12.3"), (0.0, "0"), (100.0, "100"), (-0.0123456, "-0.0123")])
def test_three_significant_figures(x, text):
    assert sig3(x) == text


def test_evidence_as_shown_with_units():
    ev = {"compile_s": 12.345, "hit_rate": 0.3333, "median_ms": [0.3256852126221139, 1.5], "first_mb": 573,
          "rows": [{"variant": "eager", "median_ci": 0.031}], "frame": "/tmp/ipykernel_81/2093.py:5", "ok": True,
          "name": "scale", "compiles": 3}
    assert evidence_text(ev, CELLS) == {
        "compile_s": "12.3 s", "hit_rate": "33.3%", "median_ms": "[0.326, 1.50] ms", "first_mb": "573 MiB",
        "rows": "[{variant: eager, median_ci: 3.10%}]", "frame": "cell [3], line 5", "ok": "true",
        "name": "scale", "compiles": "3"}
    assert figure_text(0.5, "limit_share") == "50.0%" and figure_text(2048, "bytes") == "2048"
    a = Advice("host-bound", "warning", "slow at /tmp/ipykernel_81/2093.py:5", {"median_ms": [0.3256852126221139]})
    (shown,) = shown_advice([a], CELLS)
    assert shown.message == "slow at cell [3], line 5" and shown.evidence == {"median_ms": "[0.326] ms"}
    assert a.evidence == {"median_ms": [0.3256852126221139]}          # the data keeps full precision
    assert shown_advice([shown], CELLS) == (shown,) and shown_advice(None) is None


def test_strip_paths_keeps_file_names_and_leaves_urls_tags_and_code():
    text = ('{"dir": "/home/u/.cache/vexplore"} ~/.cache/vx/a.bin </div><br/> https://ui.perfetto.dev/a/b '
            '2026/12/07 File "/home/u/m.py", line 3 · a / b · tmp0 / tmp1 · x/y/z · <td>/tmp/k/c.py</td> '
            '&quot;/root/x/y&quot;')
    assert strip_paths(text) == ('{"dir": "…/vexplore"} …/a.bin </div><br/> https://ui.perfetto.dev/a/b '
                                 '2026/12/07 File "…/m.py", line 3 · a / b · tmp0 / tmp1 · x/y/z · <td>…/c.py</td> '
                                 '&quot;…/y&quot;')


def _alert(code: str, message: str, model: int | None = None, report: int | None = None) -> Alert:
    return Alert(code, "warning", message, 0.0, model, report)


def test_alerts_of_this_model_and_the_session_only():
    """An alert names its model (Alert.model, the CompiledModel's id) and the report that raised it:
    the explorer lists its model's and the session's own (model None), words the report as its number."""
    cm = SimpleNamespace(id=3)
    alerts = [_alert("cudagraph-skipped", "report 7: no CUDA graphs", 3, 7),
              _alert("cudagraph-skipped", "report 5: another model's", 4, 5),
              _alert("graph-break", "graph break: /tmp/ipykernel_81/2093.py:5: data-dependent branch — see cm.graph_breaks", 3),
              _alert("graph-break", "graph break: other.py:9: print — see cm.graph_breaks", 4),
              _alert("recompile-storm", "scale keeps changing (scale changed): re-traced 8 times — vx.advise(cm)", 3),
              _alert("runtime-fallback", "graph 0 piece 2 (submod_2): RuntimeError: boom — the compiled piece raised", 3),
              _alert("runtime-fallback", "graph 0 piece 1 (submod_1): RuntimeError: other — the compiled piece raised", 4),
              _alert("cache-failure", "the disk tier failed"), _alert("memory-growth", "RSS grew")]
    shown = model_alerts(alerts, cm, {4: 1, 7: 2}.get, CELLS)
    assert [a.message for a in shown] == [
        "report 2: no CUDA graphs", "graph break: cell [3], line 5: data-dependent branch — see cm.graph_breaks",
        "scale keeps changing (scale changed): re-traced 8 times — vx.advise(cm)",
        "graph 0 piece 2 (submod_2): RuntimeError: boom — the compiled piece raised", "the disk tier failed", "RSS grew"]
    assert alerts[0].message == "report 7: no CUDA graphs"          # the session's own record is untouched


def test_advice_tab_lists_no_other_models_alert(ip):
    session = vx.Session()
    cfg = vx.CompileConfig(compiler="eager", strategy="full", cache=vx.CacheConfig(tiers=()))
    torch.manual_seed(0)
    other = vx.compile(ToyLlama(layers=1).eval(), cfg, session=session)
    with torch.no_grad():
        other(*ToyLlama(layers=1).example_inputs(4))
    ex = vx.explore(ToyLlama(layers=1).eval(), *ToyLlama(layers=1).example_inputs(8), config=cfg, session=session)
    assert other.id != ex.cm.id
    session.monitor.raise_alert("cudagraph-skipped", "warning", f"report {other.report.id}: the other model's",
                                model=other.id, report=other.report.id)
    session.monitor.raise_alert("cudagraph-skipped", "warning", f"report {ex.cm.report.id}: this model's",
                                model=ex.cm.id, report=ex.cm.report.id)
    session.monitor.raise_alert("cache-failure", "warning", "the disk tier failed")
    text = ex.advice_view.alerts.value
    assert "this model" in text and "the disk tier failed" in text and "the other model" not in text
    assert f"report {ex.number(ex.cm.report)}: this model" in text


def test_one_report_number_in_every_view(ip, tmp_path):
    session = vx.Session()
    cfg = toy_config(tmp_path, compiler="eager")
    torch.manual_seed(0)
    other = vx.compile(ToyLlama(layers=1).eval(), cfg, session=session)
    with torch.no_grad():
        other(*ToyLlama(layers=1).example_inputs(4))
    other.recompile(strategy="full")                  # the session's reports 0 and 1: ids and numbers differ
    ex = vx.explore(ip.user_ns["model"], ip.user_ns["x"], config=cfg, session=session)
    ex.compile(cfg.replace(strategy="full"), wait=True)
    rep = ex.shown
    assert ex.number(rep) == 2 and rep.id != 2
    with capture_output() as cap:
        ex._ipython_display_()
    _wait_released(ex)
    assert "report 2 (recompile)" in ex.summary.value
    assert ex.bars.figure.layout.title.text.startswith("Compile time per piece — report 2 (full)")
    assert ex.bars.outputs[0]["data"][MIME]["layout"]["title"]["text"].startswith("Compile time per piece — report 2 ")
    assert ex.history_pick.options[1][0] == "report 2: full" and "report 2: " in ex.progress.status.value
    assert "snapshot of report 2" in cap.outputs[1].data["text/html"]
    assert "snapshot of report 2" in snapshot_html(subject_of(ex))
    html = vx.export_html(ex, tmp_path / "ex.html").read_text()
    assert "<title>vexplore — ToyLlama, report 2</title>" in html and "report 2 (recompile)" in html
    assert f"report {rep.id} " not in html.replace("report 2 ", "")


def test_export_leaves_local_paths_out_unless_asked(ip, tmp_path):
    cfg = ip.user_ns["cfg"]
    ex = vx.explore(ip.user_ns["model"], ip.user_ns["x"], config=cfg)
    cache_dir = cfg.cache.dir
    assert cache_dir.startswith("/")
    kept = vx.export_html(ex, tmp_path / "with.html", include_paths=True).read_text()
    html = vx.export_html(ex, tmp_path / "without.html").read_text()
    assert cache_dir in kept and cache_dir not in html and str(tmp_path) not in html
    assert "&quot;dir&quot;: &quot;…/vxcache&quot;" in html
    assert not re.search(r"(?<![\w:/.<~-])/(?:home|tmp|root|usr)/", html)


def test_graph_break_in_a_cell_is_named_by_the_cell(ip, monkeypatch):
    from ipykernel.compiler import get_file_name

    # a kernel names a cell's code as a file (ipykernel_<pid>/<hash>.py); this shell, <ipython-input-…>
    monkeypatch.setattr(ip.compile, "get_code_name", lambda raw, code, number: get_file_name(raw))
    n = ip.execution_count
    ip.run_cell("import torch\n"
                "class Breaks(torch.nn.Module):\n"
                "    def forward(self, x):\n"
                "        h = x * 2\n"
                "        torch._dynamo.graph_break()\n"
                "        return h + 1\n", store_history=True)
    cfg = vx.CompileConfig(compiler="eager", strategy="full", cache=vx.CacheConfig(tiers=()))
    ex = vx.explore(ip.user_ns["Breaks"](), torch.randn(4, 8), config=cfg, session=vx.Session())
    where = f"cell [{n}], line 5"
    assert where in ex.explain.value and "ipykernel_" not in ex.explain.value
    notes = json.dumps(ex.graph_view.graph)
    assert where in notes and "ipykernel_" not in notes
    assert json.loads(gzip.decompress(ex.graph_view.graph_z)) == json.loads(notes)
    advice = [a for a in ex.advice_view.advice if a.code == "graph-break"]
    assert advice and where in advice[0].message and "ipykernel_" not in advice[0].message
    assert any("ipykernel_" in a.message for a in ex.advice if a.code == "graph-break")   # the data as it was
    assert where in ex.top_advice.value or "graph-break" not in ex.top_advice.value
    alerts = ex.advice_view.alerts.value
    assert where in alerts and "ipykernel_" not in alerts
    snap = ex.snapshot.bundle()["text/html"]                  # the snapshot, its SVG images included
    images = [base64.b64decode(m) for m in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', snap)]
    assert images and "ipykernel_" not in snap and not any(b"ipykernel_" in i for i in images)


def test_evidence_in_the_advice_tab_to_three_figures_and_apply_gets_the_original(ip):
    ex = vx.explore(ip.user_ns["model"], ip.user_ns["x"], config=ip.user_ns["cfg"].replace(compiler="eager"))
    a = Advice("host-bound", "warning", "per-call overhead", {"median_ms": [0.3256852126221139, 0.41234]},
               config=ex.cm.config.replace(strategy="full"), metric="compiled_nodes")
    ex.show_advice([a])
    html = "".join(getattr(w, "value", "") for w in _descendants(ex.advice_view.widget))
    assert "[0.326, 0.412] ms" in html and "0.3256852" not in html
    assert ex.advice == (a,) and ex._original(ex.advice_view.advice[0]) is a


def _descendants(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from _descendants(c)


def test_unticked_tiers_compile_cold_and_inductor_cache_is_said(ip):
    ex = vx.explore(ip.user_ns["model"], ip.user_ns["x"], config=ip.user_ns["cfg"])
    for box in ex.controls.tiers.values():
        box.value = False
    assert "cold" in ex.controls.tiers_note.value
    cold = ex.controls.config()
    assert cold.inductor_options == {"force_disable_caches": True} and cold.cache.tiers == ()
    ex.compile(cold, wait=True)
    assert ex.shown.counters["inductor_compiles"] > 0
    assert "cold: no cache served the compiles" in ex.summary.value and "Inductor's own cache served" not in ex.summary.value
    warm = cold.replace(inductor_options={})          # no vexplore tier, but Inductor's own caches on
    ex.compile(warm, wait=True)
    assert re.search(r"Inductor's own cache served \d+ of \d+ compiles?: not a cold compile", unescape(ex.summary.value))
    assert "(Inductor's cache " in unescape(ex.history.value)
    ex.controls.tiers["memory"].value = True
    assert "force_disable_caches" not in ex.controls.config().inductor_options
