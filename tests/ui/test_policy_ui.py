"""The split policy in the explorer: the control recompiles with it, cuts say why (pieces table,
summary, history, snapshot and export), and the code view shows a piece's post-grad passes with
its code before and after them.

Builders are checked on hand-made reports; the explorer is driven headlessly (``Button.click()``,
``wait()``) over real compiles of a tiny model of identical residual MLP blocks.
"""
from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from torch import nn

import vexplore as vx
from vexplore.engine.split.passes import AddSelfToMul
from vexplore.monitor.report import CompileReport, Cut
from vexplore.ui.code import code_html, pass_pair, passes_html
from vexplore.ui.controls import Controls, parse_bound
from vexplore.ui.snapshot import Subject, snapshot_html
from vexplore.ui.style import esc
from vexplore.ui.tables import cut_counts, history_table, pieces_table, policy_text, summary_html

from models import Blocks
from uihelpers import synthetic_report

SELF_ADD = re.compile(r"\b(tmp\d+) \+ \1\b")     # a value added to itself in C++ kernel code


class Doubler(nn.Module):
    """``h + h``: the pattern AddSelfToMul rewrites."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.b(h + h)


def _config(tmp_path, **kw) -> vx.CompileConfig:
    kw.setdefault("compiler", "eager")
    kw.setdefault("strategy", "auto")
    return vx.CompileConfig(cache=vx.CacheConfig(dir=str(tmp_path / "vxcache")), **kw)


def _cut_report() -> CompileReport:
    """3 layers (7 pieces) as a "repeats" compile would record them: ops cuts around each attention,
    one cut inside each layer piece by "memory"."""
    rep = synthetic_report(3, 4)
    pieces = []
    for p in rep.pieces:
        if p.index == 0:
            pieces.append(p)
            continue
        why = ("ops: split op vexplore::attention (in splitting_ops) runs eagerly" if p.kind == "split_op"
               else "ops: after split op vexplore::attention")
        policy = "ops"
        if p.index == 4:
            policy, why = "repeats", "repeats: block layers.2 begins (3 identical blocks of 5 nodes in layers)"
        if p.index == 6:
            policy, why = "memory", "over max_piece_nodes=4 <here>"    # no policy prefix: the table adds it
        pieces.append(dataclasses.replace(p, cut=Cut(policy, why, f"n{p.index - 1}_3", 1, 256)))
    config = {"split_policy": "repeats", "max_piece_nodes": 4, "max_compile_mb": None}
    return dataclasses.replace(rep, pieces=tuple(pieces), config=config)


def _rows(html: str) -> dict[int, str]:
    return {int(i): row for i, row in re.findall(r'<tr data-piece="(\d+)"(.*?)</tr>', html)}


# -- pure builders ------------------------------------------------------------------------------
def test_pieces_table_rows_carry_the_cut_policy_and_reason():
    rep = _cut_report()
    html = pieces_table(rep)
    assert "<th>cut: policy and why</th>" in html
    rows = _rows(html)
    assert "<td>repeats: block layers.2 begins (3 identical blocks of 5 nodes in layers)</td>" in rows[4]
    assert f"<td>{esc('memory: over max_piece_nodes=4 <here>')}</td>" in rows[6]     # escaped, prefixed
    assert "<td>ops: after split op vexplore::attention</td>" in rows[2]
    assert 'title="cut after node n3_3 (1 tensor(s), 256 B cross it): repeats: block layers.2' in rows[4]
    assert 'title="piece 0: the first piece of graph 0"' in rows[0]
    by_cut = [int(i) for i in re.findall(r'data-piece="(\d+)"', pieces_table(rep, "cut"))]
    assert by_cut[0] == 0 and by_cut[-1] == 4          # no cut first, then by policy: memory < ops < repeats


def test_under_the_ops_policy_the_reason_is_the_tooltip():
    rep = _cut_report()
    ops = dataclasses.replace(rep, config={"split_policy": "ops"},
                              pieces=tuple(p if p.cut is None or p.cut.policy == "ops"
                                           else dataclasses.replace(p, cut=dataclasses.replace(p.cut, policy="ops",
                                                                    reason="ops: after split op x::y"))
                                           for p in rep.pieces))
    html = pieces_table(ops)
    assert "cut: policy and why" not in html            # it would repeat the kind column
    assert 'title="cut after node n0_3 (1 tensor(s), 256 B cross it): ops: split op vexplore::attention' in _rows(html)[1]
    assert "cut: policy and why" in pieces_table(ops, "cut")   # sorted by it: shown


def test_summary_names_the_policy_and_counts_cuts_per_policy():
    rep = _cut_report()
    assert cut_counts(rep) == {"ops": 4, "repeats": 1, "memory": 1}
    assert list(cut_counts(rep)) == ["ops", "repeats", "memory"]
    text = "split policy repeats (max_piece_nodes=4): 6 cuts (4 ops, 1 repeats, 1 memory)"
    assert policy_text(rep) == text
    assert f'<span class="vx-policy">{text}</span>' in summary_html(rep)
    full = dataclasses.replace(rep, strategy="full", pieces=rep.pieces[:1],
                               config={"split_policy": "memory", "max_compile_mb": 64.0})
    assert policy_text(full) == "split policy memory (max_compile_mb=64): no cuts — strategy full ignores it"
    old = dataclasses.replace(rep, config={}, pieces=tuple(dataclasses.replace(p, cut=None) for p in rep.pieces))
    assert policy_text(old) == "" and "vx-policy" not in summary_html(old)   # saved before split policies
    history = history_table([rep])
    assert "vexplore::attention ×3, repeats ×1, memory ×1" in history and "; split policy repeats" in history


def test_snapshot_and_export_show_the_cut_reasons(tmp_path):
    rep = _cut_report()
    snap = snapshot_html(Subject(rep, reports=(rep,)))
    assert "repeats: block layers.2 begins" in snap and "split policy repeats (max_piece_nodes=4): 6 cuts" in snap
    path = vx.export_html(rep, tmp_path / "rep.html")
    page = open(path, encoding="utf-8").read()
    assert "<td>repeats: block layers.2 begins (3 identical blocks of 5 nodes in layers)</td>" in page
    assert "6 cuts (4 ops, 1 repeats, 1 memory)" in page


def test_passes_builder_lists_passes_and_diffs_code():
    rep = synthetic_report(1, 2, code="def call(args):\n    tmp2 = tmp1 + tmp1\n    return tmp2\n")
    plain = rep.pieces[0]
    uuid = "AddSelfToMul:" + "0" * 16
    rewritten = dataclasses.replace(plain, passes=(("AddSelfToMul", uuid),),
                                    code="def call(args):\n    tmp2 = tmp1 * 2.0\n    return tmp2\n")
    with_passes = dataclasses.replace(rep, pieces=(rewritten, *rep.pieces[1:]))
    alone = code_html(rewritten)
    assert "post-grad passes run on this piece, in order: <b>AddSelfToMul</b>" in alone
    assert "untick" in alone and "vx-passes-diff" not in alone
    assert "not seen in this compile (Inductor's own cache served it" in alone      # passes, no graphs kept
    assert passes_html(plain) == "" and pass_pair(plain, [rep], 1) is None
    pair = pass_pair(rewritten, [rep, with_passes], 2)
    assert (pair.before, pair.after, pair.before_report, pair.after_report) == (plain, rewritten, 1, 2)
    assert pass_pair(plain, [rep, with_passes], 1) == pair          # found from either side
    html = code_html(rewritten, "cpu", pair)
    assert "report 1 (without passes) → report 2 (with AddSelfToMul), 2 line(s) differ" in html
    text = re.sub(r"<[^>]+>", "", html)
    assert "-    tmp2 = tmp1 + tmp1" in text and "+    tmp2 = tmp1 * 2.0" in text
    assert "no post-grad passes in this compile; report 2 ran" in code_html(plain, "cpu", pair)
    # the post-grad graph each pass was given and left, as a diff per pass
    seen = dataclasses.replace(rewritten, pass_graphs=(
        ("input", "graph():\n    %add : = aten.add.Tensor(%x, %x)\n    return (add,)"),
        ("AddSelfToMul", "graph():\n    %mul : = aten.mul.Tensor(%x, 2)\n    return (mul,)")))
    text = re.sub(r"<[^>]+>", "", code_html(seen))
    assert "AddSelfToMul: 4 line(s) of the post-grad graph changed" in text
    assert "-    %add : = aten.add.Tensor(%x, %x)" in text and "+    %mul : = aten.mul.Tensor(%x, 2)" in text
    assert "the post-grad graph the passes were given (3 lines)" in text and "not seen in this compile" not in text


# -- the control -------------------------------------------------------------------------------
def test_policy_control_bounds_show_where_the_config_takes_them():
    c = Controls(vx.CompileConfig(split_policy="memory", max_piece_nodes=40), ["aten::add"], "cpu")
    assert c.split.policy.value == "memory" and c.split.max_nodes.value == "40" and c.split.max_mb.value == ""
    assert c.split.bounds.layout.display == "" and "fewest bytes cross" in c.split.note.value
    assert (c.config().max_piece_nodes, c.config().max_compile_mb) == (40, None)
    c.split.policy.value = "ops"
    assert c.split.bounds.layout.display == "none"
    cfg = c.config()                                     # hidden bounds are not sent: no error under "ops"
    assert (cfg.split_policy, cfg.max_piece_nodes) == ("ops", None)
    c.split.policy.value = "repeats"
    c.split.max_mb.value = " 64.5 "
    assert c.split.bounds.layout.display == "" and c.config().max_compile_mb == 64.5
    assert [parse_bound(t) for t in ("", "3", "2.5", "1G")] == [None, 3, 2.5, "1G"]
    assert c.passes.layout.display == "none" and c.config().post_grad_passes == ()
    c.set_enabled(False)
    assert c.split.policy.disabled and c.split.max_nodes.disabled


@pytest.fixture
def blocks(tmp_path):
    torch.manual_seed(0)
    m = Blocks(6).eval()   # six identical residual blocks and a head: no split op, so the default policy compiles it whole
    x = torch.randn(8, 16)
    ex = vx.explore(m, x, config=_config(tmp_path), session=vx.Session())
    yield ex
    ex.wait()


def test_repeats_from_the_control_compiles_identical_blocks_once(blocks):
    ex = blocks
    first = ex.cm.report
    assert first.strategy == "full" and ex.controls.split.policy.value == "ops"
    assert "split policy ops: no cuts" in ex.summary.value
    ex.controls.split.policy.value = "repeats"
    ex.compile_button.click()
    ex.wait()
    rep = ex.cm.report
    assert rep is not first and ex.shown is rep, ex.progress.status.value
    assert rep.config["split_policy"] == "repeats" and rep.strategy == "piecewise"
    c = rep.counters
    assert (c["compiled_pieces"], c["unique_pieces"]) == (7, 2)        # six blocks compile once, and the head
    assert "split policy repeats: 6 cuts (6 repeats)" in ex.summary.value
    rows = _rows(ex.pieces.value)
    assert "<td>repeats: block blocks.3 begins (6 identical blocks of 5 nodes in blocks)</td>" in rows[3]
    assert "repeats: the blocks of blocks end after blocks.5" in rows[6]
    assert "repeats ×6" in ex.history.value
    assert "repeats: block blocks.3 begins" in snapshot_html(Subject(rep, reports=tuple(ex.reports)))
    x = ex.inputs[0]
    with torch.no_grad():
        torch.testing.assert_close(ex.cm(x), ex.cm.model(x))


def test_a_bad_bound_shows_the_config_error_and_compiles_nothing(blocks):
    ex = blocks
    ex.controls.split.policy.value = "memory"
    for typed, says in (("0", "CompileConfig.max_piece_nodes=0: a node count &gt;= 1"),
                        ("many", "CompileConfig.max_piece_nodes=&#x27;many&#x27;: a node count &gt;= 1")):
        ex.controls.split.max_nodes.value = typed
        ex.compile_button.click()
        ex.wait()
        assert says in ex.progress.status.value and "Traceback" not in ex.progress.status.value
        assert len(ex.reports) == 1
    ex.controls.split.max_nodes.value = "12"
    ex.compile_button.click()
    ex.wait()
    rep = ex.cm.report
    assert len(ex.reports) == 2 and all(p.nodes <= 12 for p in rep.pieces) and len(rep.pieces) == 3
    assert "split policy memory (max_piece_nodes=12): 2 cuts (2 memory)" in ex.summary.value


@pytest.mark.slow
def test_code_view_shows_passes_and_the_code_before_and_after(tmp_path):
    torch.manual_seed(0)
    cfg = _config(tmp_path, compiler="inductor", strategy="full", post_grad_passes=(AddSelfToMul(),))
    ex = vx.explore(Doubler().eval(), torch.randn(8, 16), config=cfg, session=vx.Session())
    try:
        assert ex.controls.passes.value and "AddSelfToMul" in ex.controls.passes.description
        first = ex.cm.report.pieces[0]
        assert first.passes == (("AddSelfToMul", AddSelfToMul().uuid()),)
        assert "post-grad passes run on this piece, in order: <b>AddSelfToMul</b>" in ex.code.value
        assert "untick" in ex.code.value and "vx-passes-diff" not in ex.code.value
        ex.controls.passes.value = False                    # compile without them to compare
        ex.compile_button.click()
        ex.wait()
        assert len(ex.reports) == 2 and ex.cm.report.pieces[0].passes == (), ex.progress.status.value
        assert "no post-grad passes in this compile; report 1 ran <b>AddSelfToMul</b>" in ex.code.value
        assert "report 2 (without passes) → report 1 (with AddSelfToMul)" in ex.code.value
        ex.history_pick.value = 0                           # back to the compile with the pass
        text = re.sub(r"<[^>]+>", "", ex.code.value)
        removed = [line for line in text.splitlines() if line.startswith("-") and SELF_ADD.search(line)]
        assert removed and "post-grad passes run on this piece" in text   # h + h was added to itself before
    finally:
        ex.wait()
