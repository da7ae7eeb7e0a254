"""Fixtures for the notebook side: a real toy-Llama report (fresh session and cache dir per module)."""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch
from IPython.testing import globalipapp

import vexplore as vx
from vexplore.monitor.report import CompileReport
from vexplore.ui.graphwidget import _STATIC

from browsing import ARGS, CHROMIUM, jupyter_lab
from uihelpers import toy_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ip_compiler() -> str:
    """The compiler of the ``ip`` shell's ``cfg`` (a module overrides this fixture: "eager" is faster)."""
    return "inductor"


@pytest.fixture
def ip(tmp_path, monkeypatch, ip_compiler):
    """The test shell with the extension loaded, a 2-layer toy (``model``, ``x``) and ``cfg`` in its
    namespace, HOME (the default cache dir) in tmp_path; the names a test adds are removed after it."""
    from vexplore.models import ToyLlama

    monkeypatch.setenv("HOME", str(tmp_path))
    globalipapp.start_ipython()         # once per process; later calls return None
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "vexplore")
    before = set(shell.user_ns)
    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    shell.user_ns.update(model=m, x=m.example_inputs(16)[0], cfg=toy_config(tmp_path, compiler=ip_compiler), n_calls=0)
    yield shell
    for name in set(shell.user_ns) - before:
        if not name.startswith("_"):
            shell.user_ns.pop(name, None)


@pytest.fixture(scope="module")
def toy_compiled(tmp_path_factory):
    """A 4-layer toy Llama compiled piecewise once per test module (its own session and cache dir)."""
    from vexplore.models import ToyLlama

    torch._dynamo.reset()
    torch.manual_seed(0)
    m = ToyLlama(layers=4).eval()
    (x,) = m.example_inputs(16)
    cm = vx.compile(m, toy_config(tmp_path_factory.mktemp("toy")), session=vx.Session())
    with torch.no_grad():
        cm(x)
    return cm, x


@pytest.fixture(scope="module")
def toy_report(toy_compiled) -> CompileReport:
    return toy_compiled[0].report


@pytest.fixture
def lab(tmp_path):
    """A fresh JupyterLab server over tmp_path/nb holding a copy of the quickstart; yields its base URL."""
    pytest.importorskip("jupyterlab")
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "01-quickstart.ipynb", work)
    with jupyter_lab(work, tmp_path) as url:
        yield url


# ---- the graph widget alone in headless Chromium (test_graphview, test_advice_ui) -------------
PAGE = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><div id="w" style="width:1200px"></div>
<script type="module">
import widget from "./graphview.js";
const graph = await (await fetch("./graph.json")).json();
const state = {{graph, expanded: {expanded}, fold: true, selected: ""}};
const listeners = {{}};
const model = {{get: (k) => state[k], set: (k, v) => {{ state[k] = v; }}, save_changes() {{}},
               on(e, cb) {{ (listeners[e] ||= []).push(cb); }}}};
const el = document.getElementById("w");
const t0 = performance.now();
widget.render({{model, el}});
await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
window.__rendered_ms = performance.now() - t0;
window.__el = el; window.__state = state;
</script></body></html>"""


@pytest.fixture
def page_of(tmp_path):
    """page_of(graph, expanded) -> a Playwright page with the widget rendered from the shipped bundle."""
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    (tmp_path / "graphview.js").write_text((_STATIC / "graphview.js").read_text())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)

    def open_page(graph, expanded):
        (tmp_path / "graph.json").write_text(json.dumps(graph))
        (tmp_path / "index.html").write_text(PAGE.format(expanded=json.dumps(expanded)))
        page = browser.new_page(viewport={"width": 1240, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
        page.wait_for_function("() => window.__rendered_ms !== undefined", timeout=30_000)
        page.errors = errors
        return page
    yield open_page
    browser.close()
    pw.stop()
    server.shutdown()
