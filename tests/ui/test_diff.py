"""``vx.diff`` on real reports, the explorer's History tab (numbers, variant names, diff of any
two rows), the replay of saved reports (``vx.explore(report)``), and the diff view in a real
browser (JupyterLab in Debian's Chromium), which saves ``artifacts/diff-view.png``
(``docs/diff-view.png`` with ``VEXPLORE_UPDATE_DOCS=1``, as tests/ui/test_graphview.py does).

Real compiles of tests/models.py's Stack (cut at vxtest::mix), each test with its own session
and cache dir; Inductor where generated code is the point, the eager compiler elsewhere.
"""
from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

import vexplore as vx
from vexplore.monitor.diff import align

import models
from browsing import code_notebook, lab_notebook, needs_chromium, shots_dir
from uihelpers import synthetic_report

STACK = ["compiled", "split_op"] * 3 + ["compiled"]


def _config(tmp_path, **changes) -> vx.CompileConfig:
    cfg = vx.CompileConfig(strategy="full", splitting_ops=["vxtest::mix"], cache=vx.CacheConfig(dir=str(tmp_path / "vxcache")))
    return cfg.replace(**changes)


def _compiled(tmp_path, **changes):
    torch.manual_seed(0)
    cm = vx.compile(models.Stack(3).eval(), _config(tmp_path, **changes), session=vx.Session())
    x = torch.randn(8, 16)
    with torch.no_grad():
        cm(x)
    return cm, x


@pytest.fixture(scope="module")
def full_then_piecewise(tmp_path_factory):
    """Inductor: full, then piecewise (a recompile), then full again (served by the memory tier)."""
    torch._dynamo.reset()
    cm, _x = _compiled(tmp_path_factory.mktemp("diff"), compiler="inductor")
    full = cm.report
    piecewise = cm.recompile(strategy="piecewise")
    again = cm.recompile(strategy="full")
    return full, piecewise, again


def _key8(p) -> str:
    return p.unique_key[:8]


def test_full_against_piecewise(full_then_piecewise):
    a, b, _ = full_then_piecewise
    assert [p.kind for p in b.pieces] == STACK and len(a.pieces) == 1
    d = vx.diff(a, b)
    assert isinstance(d, vx.Diff) and all(isinstance(c, vx.Change) for c in d.changed)
    assert [c.kind for c in d.changed] == sorted((c.kind for c in d.changed), key=vx.monitor.diff.KINDS.index)
    assert [(c.what, c.before, c.after) for c in d.of("config")] == [("strategy", "full", "piecewise")]
    # the whole graph's piece 0 became layer 0's: other inputs (16 tensors and a size -> 6)
    assert [(c.what, c.before, c.after) for c in d.of("key")] == [
        ("piece 0 inputs", list(a.pieces[0].input_shapes), list(b.pieces[0].input_shapes))]
    assert (len(a.pieces[0].input_shapes), len(b.pieces[0].input_shapes)) == (16, 6)
    p = b.pieces
    assert [(c.what, c.before, c.after) for c in d.of("piece")] == [
        ("piece 0", f"compiled, 16 nodes, key {_key8(a.pieces[0])}", f"compiled, 3 nodes, key {_key8(p[0])}"),
        ("piece 1", None, "split op vxtest::mix"),
        ("piece 2", None, f"compiled, 4 nodes, key {_key8(p[2])}"),
        ("piece 3", None, "split op vxtest::mix"),
        ("piece 4", None, f"compiled, 4 nodes, key {_key8(p[2])}, same as 2"),
        ("piece 5", None, "split op vxtest::mix"),
        ("piece 6", None, f"compiled, 2 nodes, key {_key8(p[6])}")]
    [code] = d.of("code")
    la, lb = len(a.pieces[0].code.splitlines()), len(b.pieces[0].code.splitlines())
    assert (code.what, code.before, code.after) == ("piece 0", f"{la} lines", f"{lb} lines") and la > lb
    assert code.detail.startswith("--- piece 0 before\n+++ piece 0 after\n@@ ")
    assert "-cpp_fused" in code.detail       # kernels of the later layers are gone from piece 0
    assert [(c.what, c.before, c.after) for c in d.of("compile_time")] == [
        ("wall", a.wall_s, b.wall_s), ("pieces total", a.pieces[0].compile_s, sum(x.compile_s for x in p)),
        ("piece 0", a.pieces[0].compile_s, p[0].compile_s)]
    counters = {c.what: (c.before, c.after) for c in d.of("counter")}
    assert {k: counters[k] for k in ("pieces", "compiled_pieces", "unique_pieces", "inductor_compiles", "cache_misses")} == {
        "pieces": (1, 7), "compiled_pieces": (1, 4), "unique_pieces": (1, 3), "inductor_compiles": (1, 3),
        "cache_misses": (1, 3)}
    assert "graphs_seen" not in counters and "cache_hits_memory" not in counters   # equal ones are left out
    assert all(counters[k] == (a.counters.get(k, 0), b.counters.get(k, 0)) for k in counters)


def test_the_same_config_again_differs_only_in_where_it_came_from(full_then_piecewise):
    a, _, again = full_then_piecewise
    d = vx.diff(a, again)
    assert not d.of("config") and not d.of("key") and not d.of("code")
    assert [(c.what, c.before, c.after) for c in d.of("piece")] == [("piece 0 cache", "miss", "memory")]
    counters = {c.what: c.after for c in d.of("counter")}
    assert counters["cache_hits_memory"] == 1 and counters["cache_misses"] == 0 and counters["inductor_compiles"] == 0
    assert {c.what for c in d.of("compile_time")} == {"wall", "pieces total", "piece 0"}
    assert not vx.diff(a, a) and str(vx.diff(a, a)).endswith("0 change(s)")


def test_key_parts_config_and_versions(tmp_path):
    cm, _x = _compiled(tmp_path, strategy="piecewise", compiler="eager")
    a = cm.report
    b = cm.recompile(mode="max-autotune", cache=vx.CacheConfig(tiers=("memory",), dir=str(tmp_path / "vxcache")))
    d = vx.diff(a, b)
    assert [(c.what, c.before, c.after) for c in d.of("key")] == [("config.mode", "default", "max-autotune")]
    assert [(c.what, c.before, c.after) for c in d.of("config")] == [("cache.tiers", ["memory", "disk"], ["memory"])]
    assert not d.of("piece")            # the same pieces, each compiled again (a new key: a miss both times)
    other = dataclasses.replace(a, versions={**a.versions, "torch": "9.9.0"})
    assert [(c.kind, c.what, c.before, c.after) for c in vx.diff(a, other).changed] == [
        ("key", "versions.torch", a.versions["torch"], "9.9.0")]


def test_pieces_align_by_unique_key():
    """A layer more: the first layers match by key, the new ones are added, the last piece moves."""
    a, b = synthetic_report(2, 3), synthetic_report(3, 3)
    pairs = [(x and x.index, y and y.index, same) for x, y, same in align(a.pieces, b.pieces)]
    assert pairs == [(0, 0, True), (1, 1, True), (2, 2, True), (3, 3, True), (None, 4, False), (None, 5, False),
                     (4, 6, True)]
    assert [(c.what, c.before, c.after) for c in vx.diff(a, b).of("piece")] == [
        ("piece 4", None, "compiled, 3 nodes, key layer, same as 2"), ("piece 5", None, "split op vexplore::attention")]


def test_diff_html_is_a_readable_self_contained_table(full_then_piecewise):
    a, b, _ = full_then_piecewise
    d = vx.diff(a, b, names=("report 1", "report <2>"))
    html = d._repr_html_()
    assert html.count("<tr data-kind=") == len(d.changed)
    assert html.count("<details>") == len(d.of("code")) == 1 and "code diff of piece 0" in html
    outside_code = re.sub(r"<pre.*?</pre>", "", html, flags=re.S)
    assert not re.search(r"<script|<link|<img|src=|href=|@import|url\(", outside_code)   # nothing to fetch or run
    assert '<span class="del">-cpp_fused' in html       # removed lines coloured
    assert "report &lt;2&gt;" in html and "×7" in html and "compile time" in html
    empty = vx.diff(a, a)._repr_html_()
    assert "0 changes" in empty and "do not differ" in empty


def test_code_diff_is_escaped_and_truncated():
    evil = "\n".join(["x = 1"] * 3 + ["y = '</pre><script>bad()</script>'"])
    long = "\n".join(f"line {i}" for i in range(1000))
    a = synthetic_report(1, 2, code="x = 1")
    d = vx.diff(a, synthetic_report(1, 2, code=evil))
    html = d._repr_html_()
    assert "<script>" not in html and "&lt;/pre&gt;&lt;script&gt;bad()" in html
    code = vx.diff(a, synthetic_report(1, 2, code=long)).of("code")[0]
    lines = code.detail.splitlines()
    assert len(lines) == vx.monitor.diff.MAX_DIFF_LINES + 1 and lines[-1].endswith("more diff lines not shown")


def test_history_numbers_its_own_reports_and_diffs_any_two(tmp_path):
    session = vx.Session()
    torch.manual_seed(0)
    m = models.Stack(3).eval()
    x = torch.randn(8, 16)
    other = vx.explore(m, x, config=_config(tmp_path, compiler="eager"), session=session)
    other.compile(other.cm.config.replace(strategy="piecewise"), wait=True)
    torch._dynamo.reset()
    ex = vx.explore(m, x, config=_config(tmp_path, strategy="piecewise", compiler="eager"), session=session)
    ex.compile(ex.cm.config.replace(strategy="full"), wait=True)
    ex.compile(ex.cm.config.replace(strategy="piecewise", cache=vx.CacheConfig(tiers=("memory",), dir=str(tmp_path / "vxcache"))),
               wait=True)
    assert [r.id for r in ex.reports] == [2, 3, 4]          # the session's ids go on across explorers...
    h = ex.history_view
    assert re.findall(r"<tr data-row=\"\d\" data-report=\"\d\"[^>]*><td class=num>(\d)</td>", h.table.value) == ["1", "2", "3"]
    assert [label for label, _ in h.pick.options] == ["report 1: piecewise", "report 2: full", "report 3: piecewise"]
    assert "report 3 (recompile)" in ex.summary.value and "report 3: piecewise" in ex.progress.status.value
    # variant names say what differs: the two piecewise rows differ in their cache tiers
    assert [label for label, _ in h.diff_a.options] == [
        "1: vexplore-piecewise-auto[compiler=eager, cache.tiers=default]", "2: vexplore-full-auto[compiler=eager]",
        "3: vexplore-piecewise-auto[compiler=eager, cache.tiers=memory]"]
    cells = re.findall(r"<td>([^<]*)</td>", h.table.value)
    assert "vxtest::mix ×3" in h.table.value and "memory, disk" in cells and "memory" in cells
    assert "press Diff" in h.diff_view.value
    assert (h.diff_a.value, h.diff_b.value) == (1, 2)       # the last two, until the user picks
    h.diff_a.value = 0
    assert h.last_diff is None                               # nothing drawn before Diff is pressed
    h.diff_button.click()
    d = h.last_diff
    assert (d.a_name, d.b_name) == ("report " + h.diff_a.options[0][0], "report " + h.diff_b.options[2][0])
    assert [(c.what, c.before, c.after) for c in d.of("config")] == [("cache.tiers", ["memory", "disk"], ["memory"])]
    assert 'class="vx-diff-table"' in h.diff_view.value and "cache.tiers" in h.diff_view.value
    h.diff_b.value = 1                                       # the diff follows the pickers
    assert h.last_diff.of("config") == [vx.Change("config", "strategy", "piecewise", "full")]
    ex.compile(ex.cm.config.replace(strategy="full"), wait=True)
    assert len(h.diff_a.options) == 4 and (h.diff_a.value, h.diff_b.value) == (0, 1)   # picked by the user: kept
    h.pick.value = 1                                         # show report 2 in every view
    assert ex.shown is ex.reports[1] and 'data-row="1" data-report="3" class="vx-current"' in h.table.value


def test_explore_replays_saved_reports_without_the_model(full_then_piecewise, tmp_path):
    a, b, _ = full_then_piecewise
    loaded = [vx.load_report(r.save(tmp_path / f"{i}.json")) for i, r in enumerate((a, b))]
    ex = vx.explore(loaded)
    assert ex.cm is None and ex.reports == loaded and ex.shown is loaded[1]
    assert ex.tabs.titles == ("Graph", "Pieces graph", "Pieces", "Code", "History", "Advice", "Compile time", "Run", "Tune")
    assert len(ex.graph_view.graph["nodes"]) == sum(p.nodes for p in b.pieces)
    assert re.findall(r'data-piece="(\d+)"', ex.pieces.value) == [str(i) for i in range(7)]
    assert "cpp_fused" in ex.code.value and sum(len(t.y) for t in ex.timeline.data) == len(b.events)
    assert ex.graph.value.count('class="node"') >= 5
    # what needs the model is off, with its reason on one line
    assert ex.compile_button.disabled and ex.controls is None and ex.bench is None
    notes = [w.value for w in ex.children if hasattr(w, "value")] + [
        c.value for w in ex.children if hasattr(w, "children") for c in w.children if hasattr(c, "value")]
    assert any("Compile is off: these are saved reports" in n for n in notes)
    assert any("<b>Benchmark</b>" in n and "timing needs the model" in n for n in notes)
    with pytest.raises(vx.VexploreError, match="recompiling needs the model"):
        ex.compile()
    with pytest.raises(vx.VexploreError, match="timing needs the model"):
        ex.benchmark()
    # history and diff work from the reports alone
    assert len(ex.history_pick.options) == 2
    assert ex.history_view.diff(0, 1).of("config") == [vx.Change("config", "strategy", "full", "piecewise")]
    ex.history_pick.value = 0
    assert ex.shown is loaded[0] and re.findall(r'data-piece="(\d+)"', ex.pieces.value) == ["0"]
    single = vx.explore(loaded[0])
    assert single.reports == [loaded[0]] and single.history_view.diff_button.disabled


def test_explore_of_reports_says_what_is_wrong(full_then_piecewise):
    a, _, _ = full_then_piecewise
    with pytest.raises(vx.VexploreError, match="takes no inputs"):
        vx.explore(a, torch.randn(8, 16))
    with pytest.raises(vx.VexploreError, match="it is empty"):
        vx.explore([])
    with pytest.raises(vx.VexploreError, match="not reports: 1: str"):
        vx.explore([a, "run.json"])
    with pytest.raises(vx.VexploreError, match="not a CompileReport"):
        vx.diff(a, "run.json")


NOTEBOOK = code_notebook([
    "import vexplore as vx\n",
    "ex = vx.explore([vx.load_report('full.json'), vx.load_report('piecewise.json')])   # no model here\n",
    "ex.tabs.selected_index = 4   # History\n",
    "ex"])


@pytest.mark.browser
@needs_chromium
def test_history_diff_in_jupyterlab(full_then_piecewise, lab, tmp_path):
    """Saved reports replayed in JupyterLab: pick two rows of the History tab, press Diff, open the
    code diff; the view is saved as artifacts/diff-view.png (docs/diff-view.png with VEXPLORE_UPDATE_DOCS=1)."""

    a, b, _ = full_then_piecewise
    work = tmp_path / "nb"
    a.save(work / "full.json")
    b.save(work / "piecewise.json")
    (work / "diff.ipynb").write_text(json.dumps(NOTEBOOK))
    expected = vx.diff(b, a)
    with lab_notebook(lab, "diff.ipynb", width=1600, height=2000) as (page, errors):
        tab = page.locator(".vexplore-explorer .vx-history-tab").first
        tab.locator("table.vx-history tbody tr").nth(1).wait_for(timeout=120_000)
        assert "press Diff" in tab.inner_text()
        assert page.locator(".vexplore-explorer button", has_text="Compile").first.is_disabled()
        pick, first, second = tab.locator("select").all()
        first.select_option(label="2: vexplore-piecewise-auto")
        second.select_option(label="1: vexplore-full-auto")
        tab.locator("button", has_text="Diff").click()
        table = tab.locator("table.vx-diff-table")
        table.wait_for(timeout=30_000)
        head = tab.locator(".vx-diff-head").inner_text()
        assert "report 2: vexplore-piecewise-auto → report 1: vexplore-full-auto" in head
        assert table.locator("tr[data-kind]").count() == len(expected.changed)
        assert table.locator('tr[data-kind="piece"]').count() == len(expected.of("piece")) == 7
        code = tab.locator("pre.vx-codediff")
        assert not code.is_visible()
        tab.locator("details summary").first.click()
        code.wait_for(state="visible", timeout=10_000)
        assert "+cpp_fused" in code.inner_text()          # the kernels the whole graph adds
        tab.locator(".vx-diff-head").scroll_into_view_if_needed()
        tab.screenshot(path=str(shots_dir(docs=True) / "diff-view.png"))
        first.select_option(label="1: vexplore-full-auto")  # the diff follows the pickers
        page.wait_for_function("""() => document.querySelector('.vx-history-tab .vx-diff-head')
            .textContent.includes('0 changes')""", timeout=30_000)
    assert not errors, errors
