"""Browser-test helpers shared by the UI tests: Debian's Chromium for Playwright, a JupyterLab
server of its own, opening a notebook and running it (imported by name: tests/ui is on sys.path)."""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def code_notebook(source: list[str]) -> dict:
    """A notebook document (nbformat 4) of one code cell made of ``source``'s lines, not run yet."""
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


# The first lines of the notebook cell the theme and advice browser tests run: imports and a residual
# block of two Linears (each test builds its own model of these blocks after them).
BLOCK_LINES = ["import torch, vexplore as vx\n",
               "from torch import nn\n",
               "class Block(nn.Module):\n",
               "    def __init__(self):\n",
               "        super().__init__()\n",
               "        self.up, self.down = nn.Linear(16, 32), nn.Linear(32, 16)\n",
               "    def forward(self, x):\n",
               "        return x + self.down(torch.relu(self.up(x)))\n"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(work: Path, home: Path) -> Iterator[str]:
    """A fresh JupyterLab server over ``work`` (its HOME, hence its notebook signatures, in ``home``)."""
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, HOME=str(home), VEXPLORE_CACHE_DIR=str(home / "vxcache"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"))
    port = free_port()
    log = home / f"lab-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
         "--ServerApp.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={work}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("jupyter lab did not start:\n" + log.read_text()[-3000:])
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_notebook(page, url: str, name: str) -> None:
    page.goto(f"{url}/lab/tree/{name}?reset")
    page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)


def run_all(page) -> None:
    """Run -> Run All Cells, retried until the first code cell gets an execution count."""
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function("""() => [...document.querySelectorAll('.jp-InputPrompt')]
                .some(e => /\\[\\d+\\]/.test(e.textContent))""", timeout=20_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    pytest.fail("Run All Cells did not start the notebook")


@contextlib.contextmanager
def lab_notebook(lab: str, name: str, width: int = 1280, height: int = 2600) -> Iterator[tuple[object, list[str]]]:
    """Notebook ``name`` open in JupyterLab at ``lab`` in Chromium, every cell started (``run_all``):
    yields (page, the page's uncaught errors with their stacks); the browser closes after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
        try:
            open_notebook(page, lab, name)
            run_all(page)
            yield page, errors
        finally:
            browser.close()


def shots_dir(docs: bool = False) -> Path:
    """Where a browser test saves its screenshots: artifacts/, or docs/ for the pictures the docs
    show (``docs``) when VEXPLORE_UPDATE_DOCS=1."""
    root = Path(__file__).resolve().parents[2]
    shots = root / ("docs" if docs and os.environ.get("VEXPLORE_UPDATE_DOCS") == "1" else "artifacts")
    shots.mkdir(exist_ok=True)
    return shots
