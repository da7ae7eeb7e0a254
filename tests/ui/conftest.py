"""Fixtures for the notebook side: a real toy-Llama report (fresh session and cache dir per module)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import vexplore as vx
from vexplore.monitor.report import CompileReport

from browsing import jupyter_lab
from uihelpers import toy_config

ROOT = Path(__file__).resolve().parents[2]


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
