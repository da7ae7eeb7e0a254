"""notebooks/02 in a real Jupyter kernel on the GPU (GPU only; needs nbclient and ipykernel, which
the project's device-wheels tool fetches for the GPU machine): every cell runs, the model is on CUDA,
cudagraph="auto" (the default) captures graphs, and the benchmark cell times the vexplore variant
against torch-reduce-overhead."""
from __future__ import annotations

import os
import re

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "..", "notebooks", "02-piecewise-and-cuda-graphs.ipynb")


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", "") if o.get("output_type") == "stream" else "".join(o.get("data", {}).get("text/plain", "")))
    return "".join(out)


def test_notebook_02_on_the_gpu(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "vxcache"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    text = "\n".join(_text(c) for c in code)
    assert re.search(r"device: NVIDIA", text), text[:500]
    auto = re.search(r"cudagraph=auto\s+.*captures=(\d+)", text)
    assert auto and int(auto.group(1)) > 0, text
    assert "vexplore-piecewise-full_and_piecewise" in text and "torch-reduce-overhead" in text
    assert re.search(r"replays=[1-9]", text)
