"""The notebooks run top to bottom in a real kernel (nbclient), and binder/ installs what they import."""
from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import shutil
import socket
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def _quickstart(outputs: list, text: str) -> None:
    assert sum(WIDGET in o.get("data", {}) for o in outputs) == 2      # vx.explore and %vexplore
    assert re.search(r"report \d+: full +pieces=1 unique=1", text)
    assert re.search(r"report \d+: piecewise pieces=9 unique=3 inductor_compiles=0 memory_hits=3", text)
    for variant in ("eager", "vexplore-piecewise-auto", "vexplore-full-auto"):
        assert variant in text
    assert any("vexplore-auto-auto" in o.get("data", {}).get("text/html", "") for o in outputs)


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


def _piecewise_and_cuda_graphs(outputs: list, text: str) -> None:
    """The CPU path (CI has no GPU): full vs piecewise, and every CUDA-graph mode running without graphs, saying why."""
    assert "device: cpu (no CUDA device); toy Llama: 4 layers, dim 64, torch.float32" in text
    assert re.search(r"^piecewise: pieces=9 \(2 x 4 layers \+ 1\) compiled=5 unique=3 inductor_compiles=3; "
                     r"matches eager \(max rel err ", text, re.M)
    pw = re.search(r"^piecewise pieces=9 unique=3 inductor_compiles=3 nodes compiled=(\d+) compile_s=", text, re.M)
    full = re.search(r"^full +pieces=1 unique=1 inductor_compiles=1 nodes compiled=(\d+) compile_s=", text, re.M)
    assert pw and full and int(pw[1]) < int(full[1])   # piecewise hands Inductor one layer's worth, once
    modes = dict(re.findall(r"^cudagraph=(\w+) +inductor_compiles=0 memory_hits=3 captures=0 +graph 0: no graphs: (.*)$",
                            text, re.M))
    assert modes == {"none": "none asked for", "auto": "auto asks for none without a CUDA device",
                     **{m: f"cudagraph={m} needs a CUDA device; the graph runs on cpu"
                        for m in ("piecewise", "full", "full_and_piecewise")}}
    assert ("graph 0: graph_stats is None: nothing captured (cudagraph=full_and_piecewise needs a CUDA device; "
            "the graph runs on cpu)") in text
    assert "No CUDA device: nothing is captured, so there is no memory to budget." in text
    assert "No CUDA device: no benchmark here." in text


def _piecewise_and_cuda_graphs_recorded(outputs: list, text: str, recorded_on: str) -> None:
    """The outputs committed with the notebook: its GPU path, run on ``recorded_on``."""
    assert f"device: {recorded_on}; toy Llama: 4 layers, dim 2048, torch.float16" in text
    captured = re.search(r"^cudagraph=full_and_piecewise +inductor_compiles=0 memory_hits=3 captures=([1-9]\d*) +"
                         r"graph 0: 2:full .*512:piecewise$", text, re.M)
    assert captured, "the recorded run captured no CUDA graphs"
    for tokens in (16, 1):
        for variant in ("eager", "torch-reduce-overhead", "vexplore-piecewise-full_and_piecewise"):
            assert re.search(rf"^{variant} +{tokens} +\d", text, re.M), (variant, tokens)
    assert re.search(r"^graph 1: captures=1 replays=[1-9]", text, re.M)      # the 1-token graph, replayed
    assert "No CUDA device" not in text


def _cache_tiers(outputs: list, text: str) -> None:
    served = "inductor_compiles={} memory_hits={} disk_hits={} remote_hits={} misses={}".format
    assert f"first compile:            {served(3, 0, 0, 0, 3)}" in text
    assert f"again in the same session: {served(0, 3, 0, 0, 0)}" in text
    assert f"fresh session: {served(0, 0, 3, 0, 0)}" in text       # a new session loads all from disk
    assert "cache column: ['disk']" in text
    # one Inductor option changed: every piece misses, and says which part of the key differs
    assert f"{served(3, 0, 0, 0, 3)}\npiece 0 miss:" in text
    missed = re.findall(r"^piece (\d+) miss: size general: nearest stored key [0-9a-f]{12} \((?:memory|disk)\) "
                        r"differs in config\.inductor_options: \{\} -> \{'epilogue_fusion': 'False'\}$", text, re.M)
    assert missed == ["0", "2", "8"]
    assert re.search(r"^prewarm\(cfg\): +loaded=3 failed=0 in ", text, re.M)
    assert f"first call after it: {served(0, 3, 0, 0, 0)}" in text
    assert "prewarm(cfg.cache): loaded=6 failed=0" in text
    if shutil.which("redis-server"):          # the kernel has the PATH of this test
        assert f"machine A: {served(3, 0, 0, 0, 3)}" in text
        assert f"machine B: {served(0, 0, 0, 3, 0)}" in text
        assert re.search(r"^remote cache redis://127\.0\.0\.1:\d+/0 prefix 'vexplore:': 3 entries", text, re.M)
        port = int(re.search(r"^redis-server on port (\d+) stopped$", text, re.M)[1])
        with pytest.raises(OSError):           # the notebook stopped the server it started
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    else:
        assert "redis-server is not installed here" in text
    # the `vexplore cache` command
    assert re.search(r"^disk cache .*vexplore-05-\w+: 6 entries, ", text, re.M)
    assert re.search(r"^6 entries in .*vexplore-05-\w+ \(.*\), most recently used first:$", text, re.M)
    assert re.search(r"^[0-9a-f]{16} -> [0-9a-f]{16}: 1 difference\(s\)\n"
                     r"  config\.inductor_options: \{\} -> \{'epilogue_fusion': 'False'\}$", text, re.M)
    assert re.search(r"^verified 6 entries in .*: 6 ok, 0 damaged and deleted", text, re.M)
    assert re.search(r"^pruned .* to 1\.0 MiB: removed \d+ entries", text, re.M)
    assert re.search(r"^cleared .*: removed [1-5] entries", text, re.M)
    assert re.search(r"^removed [13] cache dirs$", text, re.M)


def _monitor_and_advice(outputs: list, text: str) -> None:
    """Graph breaks and recompiles explained, advice listed, one applied and measured, the monitor's alerts."""
    assert sum(WIDGET in o.get("data", {}) for o in outputs) == 2      # the two explorers
    assert re.search(r"^3 calls: 6 graphs traced, 3 compiles, ", text, re.M)
    breaks = re.findall(r"^graph break: graph (\d) ends at line (\d+) `if h\.sum\(\) > 0:`: Data-dependent branching$",
                        text, re.M)
    assert [g for g, _ in breaks] == ["0", "2", "4"] and len({n for _, n in breaks}) == 1
    recompiles = re.findall(r"^recompile: +graph (\d) traced at line \d+: (.*)$", text, re.M)
    assert recompiles == [("2", "self.step changed (compiled for self.step == 0)"),
                          ("3", "scale changed (compiled for scale == 2.0)"),
                          ("4", "self.step changed (compiled for self.step == 1)"),
                          ("5", "self.step changed (compiled for self.step == 2)")]
    listed = re.findall(r"^(critical|warning|info) +([\w-]+) +\((.*)\)$", text, re.M)
    assert listed == [("warning", "recompile-storm", "fix it in the code"), ("warning", "recompile", "fix it in the code"),
                      ("warning", "graph-break", "fix it in the code"),
                      ("info", "repeated-blocks", "Apply measures compiled_nodes")]
    assert "fixed: graphs=1 breaks=0 recompiles=0 steps counted=3\nadvice: ['repeated-blocks']" in text
    # fewer nodes to compile; kept unless the cold compile took longer (on a 2-core CPU each unique piece is a
    # gcc build of its own, so a loaded machine can make three builds slower than one: then reverted)
    applied = re.search(r"^applied repeated-blocks: compiled_nodes (\d+) -> (\d+), (kept|reverted)$", text, re.M)
    assert applied and int(applied[2]) < int(applied[1])
    policy = "repeats" if applied[3] == "kept" else "ops"
    assert re.search(rf"^now: strategy=\w+ split_policy={policy} ", text, re.M) and "matches eager: True" in text
    assert "alert: [critical] compile-system-failure\nalert: [warning] cache-failure" in text
    assert int(re.search(r"^samples: (\d+);", text, re.M)[1]) >= 2
    assert re.search(r"^refused: CompileConfig.inductor_options: 'epilogue_fusoin' is not an Inductor option .* "
                     r"Did you mean 'epilogue_fusion'\?", text, re.M)
    assert "advice for the model with the broken pass: ['compile-system-failure']" in text
    assert re.search(r"^monitor stopped: sampling=False, \d+ samples kept$", text, re.M)
    assert re.search(r"^removed vexplore-04-\w+$", text, re.M)


def _save_share_replay(outputs: list, text: str) -> None:
    """Reports saved, loaded without the model (in a fresh process too), replayed, compared and exported."""
    assert re.search(r"^saved report \d+ \(full +pieces=1\) -> full\.json, [1-9]\d* KiB$", text, re.M)
    assert re.search(r"^saved report \d+ \(piecewise pieces=9\) -> piecewise\.json, [1-9]\d* KiB$", text, re.M)
    assert re.search(r"^fresh process loaded report \d+ \(full\): pieces=1 unique=1 device=cpu ", text, re.M)
    assert re.search(r"^fresh process loaded report \d+ \(piecewise\): pieces=9 unique=3 device=cpu ", text, re.M)
    for strategy in ("full", "piecewise"):
        assert re.search(rf"^{strategy} +loaded == saved: True; vx\.diff\(saved, loaded\): 0 changes$", text, re.M)
    widgets = [o for o in outputs if WIDGET in o.get("data", {})]
    assert len(widgets) == 1 and "vexplore explorer of a report" in widgets[0]["data"]["text/plain"]   # vx.explore([a, b])
    assert any(re.fullmatch(r"vexplore snapshot of report \d+ \(HTML\)", o.get("data", {}).get("text/plain", ""))
               for o in outputs)
    # the diff: the strategy, the one full piece against 4 layers split at attention, the counters
    assert re.search(r"^report \d+ \(full\) -> report \d+ \(piecewise\): \d+ changes \{'config': 1, 'key': 1, "
                     r"'piece': 9, 'code': 1, ", text, re.M)
    assert "  config       strategy: full -> piecewise\n" in text
    assert re.search(r"^  piece        piece 0: compiled, \d+ nodes, key \w+ -> compiled, \d+ nodes, key \w+$", text, re.M)
    assert len(re.findall(r"^  piece        piece [1357]: - -> split op vexplore::attention$", text, re.M)) == 4
    assert len(re.findall(r"^  piece        piece [46]: - -> compiled, \d+ nodes, key \w+, same as 2$", text, re.M)) == 2
    for counter in ("pieces: 1 -> 9", "unique_pieces: 1 -> 3", "inductor_compiles: 1 -> 3"):
        assert f"  counter      {counter}\n" in text
    assert any('class="vx-diff-table"' in o.get("data", {}).get("text/html", "") for o in outputs)   # the Diff shown
    assert re.search(r"^saved-reports\.html: report \d+ \(piecewise\) and a history of 2, [1-9]\d* KiB, one file; "
                     r"loads from the network: nothing; scripts: 0$", text, re.M)
    assert re.search(r"^explorer snapshot in the notebook: True \(vexplore snapshot of report \d+ \(HTML\), "
                     r"[1-9]\d* KiB\)$", text, re.M)
    assert re.search(r"^removed vexplore-06-\w+$", text, re.M)


def _where_the_time_goes(outputs: list, text: str) -> None:
    """A model cut at every GELU profiled, advised (split-op-overhead), fixed by Apply and profiled again."""
    assert "piecewise: pieces=17 compiled=9 unique=3 fallbacks=0 warnings=0; matches eager: True" in text
    heads = re.findall(r"^(\d+) calls on cpu.*: wall [\d.]+ ms, device [\d.]+ ms, span [\d.]+ ms, host gap [\d.]+ ms, "
                       r"lead-in [\d.]+ ms, attributed (\d+)%$", text, re.M)
    assert [n for n, _ in heads] == ["20", "20", "10"] and all(int(a) >= 95 for _, a in heads), heads
    assert re.search(r"^aten::gelu +\d+ ", text, re.M)                           # the split ops, as kernels
    assert re.search(r"^piece  0 compiled .*\npiece  1 split_op ", text, re.M)
    assert re.search(r"^per call \(medians\): wall .* split ops: \d+% of the kernels' time; 100% of the kernels' time "
                     r"mapped to a line of the model$", text, re.M)
    assert sum(WIDGET in o.get("data", {}) for o in outputs) == 1                  # the explorer (its Run tab)
    assert re.search(r"^warning  split-op-overhead: \d+% of each call .* outside the 9 compiled pieces: .* in the 8 eager "
                     r"split ops \(torch\._C\._nn\.gelu\).*strategy='full'", text, re.M)
    assert re.search(r"^evidence: \{'outside_share': 0\.\d+, 'split_pieces': 8, ", text, re.M)
    verdict = re.search(r"^applied split-op-overhead: median_ms: [\d.]+ -> [\d.]+, (kept|reverted) ", text, re.M)
    assert verdict, text
    if verdict[1] == "kept":     # the point of the notebook; a stall while timing 'after' can revert it
        assert "now: strategy=full pieces=1; matches eager: True" in text
        assert re.search(r"^pieces profiled 17 -> 1; per call: host gap [\d.]+ -> [\d.]+ ms", text, re.M)
        assert "advice now: no split-op-overhead" in text and "  config   strategy: piecewise -> full\n" in text
        # GELU: eager aten calls in the 8 split-op pieces, then an Inductor kernel in the one piece
        assert re.search(r"^GELU before: \['aten::gelu'\] in pieces \[1, 3, 5, 7, 9, 11, 13, 15\]; "
                         r"after: \['cpp_fused_\w*gelu\w*'\] in pieces \[0\]$", text, re.M)
    for name in ("wall_ms", "device_ms", "host_gap_ms", "span_ms"):
        assert re.search(rf"^  profile  {name}: [\d.]+ -> [\d.]+$", text, re.M), name
    assert any('class="vx-diff-table"' in o.get("data", {}).get("text/html", "") for o in outputs)
    # %vxprofile's top 4 kernels: all in the one piece once the fix was kept; else (reverted) in the pieces
    vxprofile = text.split("\n10 calls on cpu", 1)[1]
    rows = re.findall(r"^(?:graph_\d+_)?\S+ +(\d+) +[\d.]+ +[\d.]+%  \S+", vxprofile, re.M)
    assert len(rows) == 4, vxprofile
    if verdict[1] == "kept":
        assert set(rows) == {"0"}, vxprofile
    assert re.search(r"^removed vexplore-07-\w+$", text, re.M)


def _tune(outputs: list, text: str) -> None:
    """A toy Llama cut at attention and every linear, tuned on the CPU (eager compiler, the default space, 40 s):
    the trials table, the improvement with its interval, the record on the report (saved, loaded), Apply, vx.diff.
    Timings on a shared 2-core CPU are noise, so which config wins is not checked: the bookkeeping is."""
    start = "strategy=piecewise split_policy=ops compile_sizes=[]"
    assert f"start: {start} pieces=42" in text
    assert "strategy: ('piecewise', 'full')\nsplit_policy: ('ops', 'repeats')\n" in text and "\n8 points\n" in text
    head = re.search(r"^objective: latency; (\d+) trials in [\d.]+ s \(budget 40 s\); (.*)$", text, re.M)
    assert head and 2 <= int(head[1]) <= 6 and ("exhausted" in head[2] or head[2].startswith("budget:")), head
    rows = re.findall(r"^ +(\d+)([* ])(\S+) ", text.split("  # status", 1)[1].split("\nimprovement at", 1)[0], re.M)
    assert sorted(int(n) for n, _, _ in rows) == list(range(int(head[1])))       # one row per trial, the start first
    assert sum(mark == "*" for _, mark, _ in rows) == 1 and {st for _, _, st in rows} <= {"ok", "worse", "pruned"}
    for size in (8, 32, 128):
        assert re.search(rf"^improvement at {size}: [\d.]+x \(start / best\), ~95 % interval \S+$", text, re.M), size
    verdicts = re.findall(r"^ *(\d+) tokens: start / best = [\d.]+x, ~95 % interval \S+: "
                          r"(faster|slower|within noise|the start itself)$", text, re.M)
    assert [n for n, _ in verdicts] == ["8", "32", "128"]
    assert re.search(r"^the report keeps the tune: True; \d+ trials \(", text, re.M) and "loaded == saved: True" in text
    applied = re.search(r"^applied: (?:median_ms: \S+ -> \S+, (kept|reverted)|nothing to apply, the start stayed best)$",
                        text, re.M)
    assert applied, text
    now = re.search(r"^now: (.*)$", text, re.M)[1]
    assert (now != start) == (applied[1] == "kept")
    diffed = re.search(r"^report \d+ \(\w+\) -> report \d+ \(\w+\): \d+ changes \{(.*)\}$", text, re.M)
    assert diffed, text
    if applied[1] is not None:      # applied, kept or not: the report before carries the tune, the one after none
        assert "'tune': " in diffed[1] and re.search(r"^  tune +tune: \d+ trials .* -> -$", text, re.M)
        assert ("'config': " in diffed[1]) == (applied[1] == "kept")
    assert any("vx-diff" in o.get("data", {}).get("text/html", "") for o in outputs)    # the Diff shown
    assert re.search(r"^removed vexplore-08-\w+$", text, re.M)


CHECKS = {"01-quickstart.ipynb": _quickstart, "02-piecewise-and-cuda-graphs.ipynb": _piecewise_and_cuda_graphs,
          "03-your-own-model.ipynb": _your_own_model, "04-monitor-and-advice.ipynb": _monitor_and_advice,
          "05-cache-tiers-and-sharing.ipynb": _cache_tiers,
          "06-save-share-replay.ipynb": _save_share_replay, "07-where-the-time-goes.ipynb": _where_the_time_goes,
          "08-tune.ipynb": _tune}
# Notebooks whose point needs a GPU are committed WITH the outputs of a GPU run, marked in the notebook's
# metadata as {"vexplore": {"recorded_on": "<torch.cuda.get_device_name()>"}}; these check what was recorded.
# CI still runs them here, on the CPU, and checks that path with CHECKS.
RECORDED_CHECKS = {"02-piecewise-and-cuda-graphs.ipynb": _piecewise_and_cuda_graphs_recorded}


def recorded_on(nb: nbformat.NotebookNode) -> str | None:
    """Where a notebook committed with outputs was run (its metadata says), else None."""
    return (nb.metadata.get("vexplore") or {}).get("recorded_on")


def _stdout(outputs: list) -> str:
    """What the cells printed (a `!command` prints through a terminal: its line ends are made plain)."""
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.get("name") == "stdout")
    return text.replace("\r\n", "\n")


def check_stored_outputs(name: str, nb: nbformat.NotebookNode) -> None:
    """A notebook is committed without outputs, unless it was recorded on a GPU: then its outputs are
    those of a whole run (every code cell ran, none failed) and show what the notebook is there to show."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    where = recorded_on(nb)
    if not where:
        assert not [c for c in code if c.outputs], \
            "commit notebooks without outputs (or, for one whose point needs a GPU, with a GPU run's: see RECORDED_CHECKS)"
        return
    assert name in RECORDED_CHECKS, f"{name} is marked recorded_on={where!r} but has no RECORDED_CHECKS entry"
    assert all(c.get("execution_count") for c in code), f"{name}: recorded outputs are not of a whole run"
    stored = [o for c in code for o in c.outputs]
    assert not [o for o in stored if o.output_type == "error"], f"{name}: the recorded run failed"
    RECORDED_CHECKS[name](stored, _stdout(stored), where)


def _kernel(tmp_path: Path, monkeypatch) -> str:
    """The kernel the notebooks run in: this interpreter's, or, where VEXPLORE_NOTEBOOK_PYTHON names
    another (CI names the venv it built from binder/requirements.txt alone), a kernel of that one, so a
    notebook importing what Binder does not install fails here and every notebook runs once in CI."""
    python = os.environ.get("VEXPLORE_NOTEBOOK_PYTHON")
    if not python:
        return "python3"
    if not os.access(python, os.X_OK):
        pytest.fail(f"VEXPLORE_NOTEBOOK_PYTHON={python!r} is not an executable Python: point it at a venv's "
                    "bin/python with ipykernel installed, or unset it to use this interpreter's kernel")
    spec = tmp_path / "jupyter" / "kernels" / "vx-notebook"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "vexplore notebooks", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "vx-notebook"


# Notebooks whose story rests on measured time (07: a profile's share outside the pieces names the fix;
# 08: a tune's trials) run with no other test beside them (the solo mark, conftest.py)
TIMED = {"07-where-the-time-goes.ipynb", "08-tune.ipynb"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.solo) if p.name in TIMED else p for p in NOTEBOOKS],
                         ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "vxcache"))
    monkeypatch.setenv("HOME", str(tmp_path))          # %vxbench's default cache dir lands here too
    nb = nbformat.read(path, as_version=4)
    check_stored_outputs(path.name, nb)
    kernel = _kernel(tmp_path, monkeypatch)
    NotebookClient(nb, timeout=300, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = _stdout(outputs)
    check = CHECKS.get(path.name)
    if check is not None:                              # what each notebook is there to show
        check(outputs, text)


def _imports(source: str) -> set[str]:
    # IPython's own transform: magics and shell commands (`!cmd`, `out = !cmd`) become Python calls
    source = TransformerManager().transform_cell(source)
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
    needed, code = set(), ""
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        code += "".join("".join(c["source"]) + "\n" for c in cells if c["cell_type"] == "code")
        needed |= {"vexplore"} | set().union(*(_imports("".join(c["source"])) for c in cells if c["cell_type"] == "code"))
    for src in [*(ROOT / "vexplore" / "ui").glob("*.py"), ROOT / "vexplore" / "magics.py"]:
        needed |= _imports(src.read_text())
    if '"remote"' in code:                             # the remote tier: redis-py and a redis-server
        needed |= _imports((ROOT / "vexplore" / "cache" / "remote.py").read_text())
        assert "redis-server" in (ROOT / "binder" / "apt.txt").read_text().split()
    dists = md.packages_distributions()
    # a module counts as installed when its distribution is named, or required by one that is
    # (a requirement of an extra that is not installed counts for nothing)
    deps = {re.split(r"[<>=!\[ ;(]", r, maxsplit=1)[0].lower() for p in provided for r in _requires(p)
            if "extra ==" not in r}
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
