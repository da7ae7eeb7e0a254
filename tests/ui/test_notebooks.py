"""The notebooks run top to bottom in a real kernel (nbclient), and binder/ installs what they import."""
from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def _quickstart(outputs: list, text: str) -> None:
    assert sum(WIDGET in o.get("data", {}) for o in outputs) == 2      # vx.explore and %vexplore
    assert re.search(r"report \d+: full +pieces=1 unique=1", text)
    assert re.search(r"report \d+: piecewise pieces=9 unique=3 inductor_compiles=0 memory_hits=3", text)
    for variant in ("eager", "vexplore-piecewise-none", "vexplore-full-none"):
        assert variant in text
    assert any("vexplore-auto-none" in o.get("data", {}).get("text/html", "") for o in outputs)


def _your_own_model(outputs: list, text: str) -> None:
    """A transformers LlamaForCausalLM (4 layers, from a config) called with input_ids/attention_mask."""
    assert sum(WIDGET in o.get("data", {}) for o in outputs) == 1      # vx.explore(cm)
    assert "logits match eager: shape (2, 16, 1000)" in text
    # one split op per layer: 2 * 4 + 1 pieces, the three middle ones compiled once
    assert "piecewise (strategy=piecewise was requested): pieces=9 compiled=5 unique=3 inductor_compiles=3" in text
    assert "token dims marked dynamic: {'input_ids': (1,), 'attention_mask': (1,)}" in text
    lengths = re.findall(r"^ *(\d+) tokens: logits match eager, len\(cm.graphs\) = (\d+), len\(cm.reports\) = (\d+)$",
                         text, re.M)
    assert [n for n, _, _ in lengths] == ["7", "33", "100"] and {(g, r) for _, g, r in lengths} == {("1", "1")}
    assert "1 token: logits match eager, len(cm.graphs) = 2, len(cm.reports) = 2" in text
    assert "report warning decode_trace: graph 1 was traced for a 1-token call" in text
    assert "another 1-token call: len(cm.graphs) = 2" in text
    for variant in ("eager", "vexplore-piecewise", "vexplore-full"):
        assert re.search(rf"^{variant} +(16|128) ", text, re.M), variant
    assert re.search(r"report \d+: recompile full +graphs=2 pieces=2 unique=2 inductor_compiles=2 ", text)
    assert "back to piecewise: pieces=18 inductor_compiles=0 memory_hits=6" in text


CHECKS = {"01-quickstart.ipynb": _quickstart, "03-your-own-model.ipynb": _your_own_model}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "vxcache"))
    monkeypatch.setenv("HOME", str(tmp_path))          # %vxbench's default cache dir lands here too
    nb = nbformat.read(path, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and c.outputs], "commit notebooks without outputs"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.get("name") == "stdout")
    check = CHECKS.get(path.name)
    if check is not None:                              # what each notebook is there to show
        check(outputs, text)


def _imports(source: str) -> set[str]:
    source = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!")))
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[ ;]", ln.strip(), maxsplit=1)[0].lower() for ln in lines
            if ln.strip() and not ln.strip().startswith(("#", "-", "."))}


def test_binder_installs_what_the_notebooks_import():
    req = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0+cpu" in req and "--extra-index-url https://download.pytorch.org/whl/cpu" in req
    assert ".[notebook]" in req                          # the project itself with its notebook extra
    assert "graphviz" in (ROOT / "binder" / "apt.txt").read_text().split()   # the `dot` program
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["notebook"]
    provided = _requirement_names(req) | _requirement_names(extra)
    # what the notebooks import, and what vexplore's notebook side imports
    needed = set()
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        needed |= {"vexplore"} | set().union(*(_imports("".join(c["source"])) for c in cells if c["cell_type"] == "code"))
    for src in [*(ROOT / "vexplore" / "ui").glob("*.py"), ROOT / "vexplore" / "magics.py"]:
        needed |= _imports(src.read_text())
    dists = md.packages_distributions()
    # a module counts as installed when its distribution is named, or required by one that is
    deps = {re.split(r"[<>=!\[ ;(]", r, maxsplit=1)[0].lower() for p in provided for r in _requires(p)}
    missing = []
    for mod in sorted(needed - set(sys.stdlib_module_names) - {"vexplore", "torch"}):
        names = {d.lower() for d in dists.get(mod, [mod])}
        if not names & (provided | deps):
            missing.append(mod)
    assert missing == []


def _requires(dist: str) -> list[str]:
    try:
        return md.requires(dist) or []
    except md.PackageNotFoundError:
        return []
