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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "vxcache"))
    monkeypatch.setenv("HOME", str(tmp_path))          # %vxbench's default cache dir lands here too
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum(WIDGET in o.get("data", {}) for o in outputs) == 2      # vx.explore and %vexplore
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert re.search(r"report \d+: full +pieces=1 unique=1", text)
    assert re.search(r"report \d+: piecewise pieces=9 unique=3 inductor_compiles=0 memory_hits=3", text)
    for variant in ("eager", "vexplore-piecewise-none", "vexplore-full-none"):
        assert variant in text
    assert any("vexplore-auto-none" in o.get("data", {}).get("text/html", "") for o in outputs)


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
