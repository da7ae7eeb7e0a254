"""The layering: the engine never imports UI libraries, imports point downward, functions stay small."""
from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

BLOCKED = ("ipywidgets", "plotly", "graphviz", "IPython", "anywidget")

SCRIPT = r"""
import sys, importlib.abc
BLOCKED = %r
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for the layering test: {name}")
sys.meta_path.insert(0, Block())
import torch
import vexplore as vx
import vexplore.engine.backend, vexplore.engine.model, vexplore.cache.tiered, vexplore.cache.disk
import vexplore.monitor.report, vexplore.bench.compare, vexplore.cli, vexplore.demo
from vexplore.models import ToyLlama
m = ToyLlama(layers=1).eval()
cm = vx.compile(m, vx.CompileConfig(compiler="eager", cache=vx.CacheConfig(tiers=())))
with torch.no_grad():
    cm(*m.example_inputs(8))
assert cm.report.counters["pieces"] == 3, cm.report.counters
loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
assert not loaded, loaded
print("LAYERING-OK")
""" % (BLOCKED,)


def test_engine_imports_no_ui_library():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "LAYERING-OK" in res.stdout


# Every torch._ use outside engine/_torch_compat.py is one listed here, with its reason.
ALLOWED_PRIVATE = (
    # torch._inductor.standalone_compile / CompiledArtifact are the documented precompile API
    # but live under a private module; torch._dynamo.reset/maybe_mark_dynamic likewise.
    "torch._inductor.standalone_compile", "torch._dynamo.reset", "torch._dynamo.maybe_mark_dynamic",
    "torch._dynamo.graph_break", "torch._ops.OpOverload", "torch._ops.OpOverloadPacket",
    "torch._ops.HigherOrderOperator", "torch._subclasses.fake_tensor",
    # op names in DEFAULT_SPLITTING_OPS and docstrings (strings, not API uses)
    "torch._C._nn.scaled_dot_product_attention", "torch._C._nn.linear", "torch._native_multi_head_attention",
    # config.py checks inductor_options against torch._inductor.list_options() and the config module
    # (public names of a private package); config.py cannot import engine/_torch_compat (it sits below it)
    "torch._inductor.config", "torch._inductor.list_options",
    # advice text names the documented torch._dynamo marks a user calls (strings, not API uses)
    "torch._dynamo.mark_dynamic", "torch._dynamo.decorators.mark_unbacked", "torch._dynamo.mark_unbacked",
)
_PRIVATE = re.compile(r"\btorch\._(?!_)[A-Za-z_]+(?:\.[A-Za-z_]+)*")


def private_uses(text: str) -> list[str]:
    """The dotted ``torch._...`` names in ``text`` that no ALLOWED_PRIVATE entry starts."""
    return [m.group(0) for m in _PRIVATE.finditer(text)
            if not any(m.group(0).startswith(a) for a in ALLOWED_PRIVATE)]


def test_private_api_check_catches_module_imports():
    """An allowed name must not let its module (or a sibling) through."""
    for text in ("from torch._inductor import config", "import torch._dynamo as d", "torch._C._nn.gelu(x)",
                 "from torch._C import _nn"):
        assert private_uses(text), text
    assert private_uses("torch._inductor.standalone_compile(gm, xs)") == []


def test_private_torch_apis_stay_in_torch_compat():
    root = pathlib.Path(__file__).resolve().parents[1] / "vexplore"
    bad = [f"{path.relative_to(root)}: {name}" for path in root.rglob("*.py") if path.name != "_torch_compat.py"
           for name in private_uses(path.read_text())]
    assert not bad, bad


def _modules() -> dict[str, pathlib.Path]:
    root = pathlib.Path(__file__).resolve().parents[1] / "vexplore"
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: pathlib.Path, mods: dict[str, pathlib.Path]) -> set[str]:
    """Every vexplore module ``name`` imports, anywhere in the file (function-local and
    TYPE_CHECKING imports count: they are cycles too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found |= {c for c in [base] + [f"{base}.{a.name}" for a in node.names] if c in mods}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in mods}
    return found - {name}


def test_imports_point_downward_without_cycles():
    mods = _modules()
    edges = {m: _imports(m, p, mods) for m, p in mods.items()}
    is_pkg = {m for m, p in mods.items() if p.name == "__init__.py"}
    upward = [(a, b) for a, bs in edges.items() for b in bs
              if a.split(".")[1:2] in (["cache"], ["monitor"]) and b.split(".")[1:2] in (["session"], ["engine"])]
    assert not upward, upward
    cycles = []
    for start in edges:
        if start in is_pkg:
            continue
        stack, seen = [(start, (start,))], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges[node] - is_pkg:
                if nxt == start:
                    cycles.append(path)
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + (nxt,)))
    assert not cycles, cycles[:3]


def test_engine_functions_are_short_and_narrow():
    """No function in engine/, cache/, monitor/ or bench/ over 60 lines or 6 parameters
    (self and cls not counted; group the rest into a small frozen record)."""
    bad = []
    for name, path in _modules().items():
        if name.split(".")[1:2] not in (["engine"], ["cache"], ["monitor"], ["bench"]):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
                lines = node.end_lineno - node.lineno + 1
                if lines > 60 or len(params) > 6:
                    bad.append(f"{path.name}:{node.lineno} {node.name}: {lines} lines, {len(params)} params")
    assert not bad, bad


# engine/'s stages, lowest first: a module imports only its own stage or the ones below it. runtime/
# sits under split/ and build/ (they assemble what runs on each call); capture/ under runtime/.
ENGINE_RANKS = {"_torch_compat": 0, "ops": 0, "capture": 1, "runtime": 2, "split": 3, "build": 4,
                "backend": 5, "model": 6}


def _engine_rank(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["vexplore", "engine"] or len(parts) < 3:
        return None
    assert parts[2] in ENGINE_RANKS, f"{module}: engine/{parts[2]} has no rank in ENGINE_RANKS"
    return ENGINE_RANKS[parts[2]]


def test_engine_stages_import_only_downward():
    mods = _modules()
    upward = []
    for name, path in mods.items():
        rank = _engine_rank(name)
        if rank is None:
            continue
        for dep in _imports(name, path, mods):
            dep_rank = _engine_rank(dep)
            if dep_rank is not None and dep.split(".")[2] != name.split(".")[2] and dep_rank >= rank:
                upward.append(f"{name} -> {dep}")
    assert not upward, upward


def test_engine_is_packages_named_for_its_stages():
    """engine/: at most six loose modules, and each stage package says what enters and leaves it."""
    root = pathlib.Path(__file__).resolve().parents[1] / "vexplore" / "engine"
    loose = sorted(p.name for p in root.glob("*.py"))
    assert len(loose) <= 6 and "_torch_compat.py" in loose, loose
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists())
    assert len(packages) >= 4 and set(packages) <= set(ENGINE_RANKS), packages
    for name in packages:
        doc = ast.get_docstring(ast.parse((root / name / "__init__.py").read_text())) or ""
        assert "In:" in doc and "Out:" in doc, f"engine/{name}/__init__.py: say what enters and leaves it"
