"""A notebook saved from JupyterLab and reopened keeps the explorer's static snapshot.

JupyterLab runs a small notebook with ``vx.explore`` (the snapshot is on the page but hidden by
the live widget), recompiles from a later cell (the snapshot output follows through its display
id), saves it with Ctrl+S and its kernel is shut down. A fresh server reopens it: the widget says
"model not found" and the snapshot shows instead (graph image, pieces table); then the same
notebook untrusted (its signature broken), where JupyterLab's sanitizer strips ``<style>`` and
``<svg>`` but the snapshot still shows. Last, ``jupyter nbconvert --to html`` of the saved
notebook shows the snapshot in Chromium, offline. Saves ``snapshot-reopened.png`` to artifacts/ (docs/
with VEXPLORE_UPDATE_DOCS=1). Needs /usr/bin/chromium and JupyterLab.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from browsing import ARGS, CHROMIUM, jupyter_lab, needs_chromium, open_notebook, run_all

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "reopen.ipynb"
UNTRUSTED = "reopen-untrusted.ipynb"
CELLS = [
    ("markdown", "# A saved explorer\nThe snapshot below stays when the notebook is reopened without its kernel."),
    ("code", "import os, torch, vexplore as vx\nfrom vexplore.models import ToyLlama\ntorch.manual_seed(0)\n"
             "model = ToyLlama(layers=4).eval()\n(x,) = model.example_inputs(16)\n"
             "cfg = vx.CompileConfig(strategy='piecewise', splitting_ops=['vexplore::attention'],\n"
             "                       cache=vx.CacheConfig(dir=os.environ['VEXPLORE_CACHE_DIR']))"),
    ("code", "ex = vx.explore(model, x, config=cfg)\nex"),
    ("code", "ex.compile(cfg.replace(strategy='full'), wait=True)\nex.compile(cfg, wait=True)\n"
             "print('shown: report', ex.reports.index(ex.shown) + 1)"),   # its number in the explorer, as shown
]

pytestmark = [pytest.mark.browser, needs_chromium]


def _saved(path: Path, timeout: float = 30) -> dict:
    """The notebook on disk once JupyterLab has saved it with the last cell's output."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            nb = json.loads(path.read_text())
        except (json.JSONDecodeError, FileNotFoundError):   # caught mid-save (read back empty once under load)
            time.sleep(0.3)
            continue
        if any("shown: report" in "".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])):
            return nb
        time.sleep(0.3)
    pytest.fail("JupyterLab did not save the notebook with its outputs")


def _shut_down_kernel(page, url: str) -> None:
    """Kernel -> Shut Down Kernel, as a user would; done when the server lists no kernel."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Kernel$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Shut Down Kernel")).click()
    deadline = time.time() + 30
    while json.load(urllib.request.urlopen(f"{url}/api/kernels")):
        if time.time() > deadline:
            pytest.fail("the kernel did not shut down")
        time.sleep(0.3)


def _run_and_save(page, url: str, work: Path) -> dict:
    """Run the notebook in JupyterLab; while it is live the snapshot is hidden; save it; shut down."""
    open_notebook(page, url, NOTEBOOK)
    run_all(page)
    page.get_by_text("shown: report 3").wait_for(timeout=240_000)
    page.locator(".vexplore-explorer .vx-summary").first.wait_for(timeout=30_000)
    snap = page.locator(".vx-snapshot")
    assert snap.count() == 1 and not snap.is_visible()           # the live widget's rule hides it
    assert "snapshot of report 3" in snap.text_content()          # updated from the later cell
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    nb = _saved(work / NOTEBOOK)
    _shut_down_kernel(page, url)
    return nb


def _snapshot_shows(page, trusted: bool) -> None:
    snap = page.locator(".vx-snapshot")
    snap.wait_for(state="visible", timeout=60_000)
    # the widget output: dead where trusted; untrusted, JupyterLab renders no widget, only its text
    dead = "Error displaying widget: model not found" if trusted else "vexplore explorer of ToyLlama: a live widget"
    page.get_by_text(dead).first.wait_for(timeout=30_000)
    assert "snapshot of report 3" in snap.text_content()
    assert snap.locator("table.vx-pieces tbody tr").count() == 9
    images = snap.locator("img.vx-snapshot-svg")
    assert images.count() == 2
    for i in range(2):
        images.nth(i).scroll_into_view_if_needed()
        assert images.nth(i).is_visible()
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 100")   # the SVG decoded
    # trusted: the HTML as written; untrusted: JupyterLab's sanitizer dropped the <style> elements
    assert (snap.locator("style").count() > 0) is trusted


def _untrusted_copy(work: Path) -> None:
    """The saved notebook with its signature broken: JupyterLab opens it untrusted."""
    nb = nbformat.read(work / NOTEBOOK, as_version=4)
    nb.metadata["edited_elsewhere"] = True
    nbformat.write(nb, work / UNTRUSTED)


def _nbconvert_shows(browser, work: Path) -> None:
    """``jupyter nbconvert --to html`` of the saved notebook: the page shows the snapshot, offline."""
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(work / NOTEBOOK)],
                   check=True, capture_output=True, timeout=120)
    html = (work / NOTEBOOK).with_suffix(".html").read_text()
    assert html.count('class="vx-snapshot vx-snapshot-') == 1 and html.count('class="vx-snapshot-svg"') == 2
    page = browser.new_page(viewport={"width": 1280, "height": 1800})
    page.route(re.compile(r"^https?://"), lambda route: route.abort())   # offline: nbconvert's CDN scripts fail
    page.goto((work / NOTEBOOK).with_suffix(".html").as_uri())
    snap = page.locator(".vx-snapshot")
    assert snap.is_visible() and "snapshot of report 3" in snap.text_content()
    assert snap.locator("table.vx-pieces tbody tr").count() == 9
    assert snap.locator("img.vx-snapshot-svg").first.evaluate("img => img.complete && img.naturalWidth > 100")
    page.close()


def test_saved_notebook_reopens_with_the_snapshot(tmp_path):
    pytest.importorskip("jupyterlab")
    from playwright.sync_api import sync_playwright

    work, home = tmp_path / "nb", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
             for kind, src in CELLS]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), work / NOTEBOOK)
    shots = ROOT / ("docs" if os.environ.get("VEXPLORE_UPDATE_DOCS") == "1" else "artifacts")
    shots.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            with jupyter_lab(work, home) as url:
                page = browser.new_page(viewport={"width": 1280, "height": 1800})
                nb = _run_and_save(page, url, work)
                page.close()
            outputs = nb["cells"][2]["outputs"]
            assert ["application/vnd.jupyter.widget-view+json" in o["data"] for o in outputs] == [True, False]
            assert "widgets" not in nb["metadata"]          # JupyterLab's default: no widget state saved
            _untrusted_copy(work)
            with jupyter_lab(work, home) as url:                   # another day: a fresh server, the same user
                page = browser.new_page(viewport={"width": 1280, "height": 1800})
                open_notebook(page, url, NOTEBOOK)
                _snapshot_shows(page, trusted=True)
                page.locator(".vx-snapshot").scroll_into_view_if_needed()
                page.locator(".jp-WindowedPanel-outer").first.evaluate(
                    "(el) => { const s = document.querySelector('.vx-snapshot'); "
                    "el.scrollTop += s.getBoundingClientRect().top - el.getBoundingClientRect().top - 160; }")
                page.screenshot(path=str(shots / "snapshot-reopened.png"))
                page.close()
                page = browser.new_page(viewport={"width": 1280, "height": 1800})
                open_notebook(page, url, UNTRUSTED)
                _snapshot_shows(page, trusted=False)
                page.close()
            _nbconvert_shows(browser, work)
        finally:
            for context in browser.contexts:                # a failure leaves its page open: keep what it showed
                for page in context.pages:
                    (ROOT / "artifacts").mkdir(exist_ok=True)
                    page.screenshot(path=str(ROOT / "artifacts" / "reopen-last.png"))
            browser.close()
