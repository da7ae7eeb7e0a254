"""Post-grad passes (CompileConfig.post_grad_passes): real Inductor compiles of tiny models.

The passes here that record their calls carry a per-process nonce in their uuid: Inductor's own
FX-graph cache (shared by the test session, kept between runs) keys a pass by its uuid, and a hit
there would serve the code without calling the pass.
"""
from __future__ import annotations

import json
import re
import uuid as _uuid

import pytest
import torch

import vexplore as vx
from models import Calls, _TwoLinear
from vexplore.engine.split.passes import AddSelfToMul, CustomGraphPass

NONCE = _uuid.uuid4().hex[:12]
CALLS: list[tuple[str, tuple[str, ...]]] = []   # (tag, the targets of the graph the pass saw)
SELF_ADD = re.compile(r"\b(tmp\d+) \+ \1\b")     # a value added to itself in the generated code


class Doubler(_TwoLinear):
    """``h + h`` before the split op: the example pass's pattern."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.b(torch.ops.vxtest.mix(h + h)) + 1


class Recorder(CustomGraphPass):
    """Records that it ran and the ops of the graph it saw; changes nothing."""

    def __init__(self, tag: str, version: int = 1) -> None:
        self.tag, self.version = tag, version

    def __call__(self, graph: torch.fx.Graph) -> None:
        CALLS.append((self.tag, tuple(str(n.target) for n in graph.nodes if n.op == "call_function")))

    def uuid(self) -> str:
        return f"recorder-{self.tag}-v{self.version}-{NONCE}"


class Boom(CustomGraphPass):
    def __call__(self, graph: torch.fx.Graph) -> None:
        raise ValueError("no rewrite for this graph")

    def uuid(self) -> str:
        return f"boom-{NONCE}"


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def _cfg(cache_cfg: vx.CacheConfig, passes: tuple = (), **kw) -> vx.CompileConfig:
    return vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], post_grad_passes=passes,
                            cache=cache_cfg, **kw)


def _run(model: torch.nn.Module, cfg: vx.CompileConfig, session: vx.Session) -> vx.CompileReport:
    x = torch.randn(8, 16)
    cm = vx.compile(model, cfg, session=session)
    with torch.no_grad():
        torch.testing.assert_close(cm(x), model(x))
    return cm.report


def test_example_pass_rewrites_the_generated_code(cache_cfg, session):
    m = Doubler().eval()
    plain = _run(m, _cfg(cache_cfg), session).pieces[0]
    assert SELF_ADD.search(plain.code) and plain.passes == ()
    rep = _run(m, _cfg(cache_cfg, (AddSelfToMul(),)), session)
    p = rep.pieces[0]
    assert p.compiler == "inductor" and p.fallback_reason is None
    assert not SELF_ADD.search(p.code) and "2.0" in p.code     # h + h became h * 2.0
    assert p.passes == (("AddSelfToMul", AddSelfToMul().uuid()),)
    assert all(q.passes == p.passes for q in rep.pieces if q.kind == "compiled")
    assert rep.config["post_grad_passes"] == [list(p.passes[0])]
    assert vx.CompileReport.from_dict(json.loads(json.dumps(rep.to_dict()))).pieces[0].passes == p.passes


def test_passes_run_in_order_on_every_piece(cache_cfg, session):
    m = Doubler().eval()
    rep = _run(m, _cfg(cache_cfg, (Recorder("before"), AddSelfToMul(), Recorder("after"))), session)
    assert [tag for tag, _ in CALLS] == ["before", "after"] * 2       # two compiled pieces, in order
    before, after = CALLS[0][1], CALLS[1][1]
    assert "aten.add.Tensor" in before and "aten.add.Tensor" not in after and "aten.mul.Tensor" in after
    assert [name for name, _ in rep.pieces[0].passes] == ["Recorder", "AddSelfToMul", "Recorder"]
    assert rep.pieces[0].passes[0][1] == f"recorder-before-v1-{NONCE}"


def test_the_graph_before_and_after_each_pass_is_kept(cache_cfg, session):
    # a Recorder with this session's nonce keeps Inductor's own cache from serving the compile
    m = Doubler().eval()
    cfg = _cfg(cache_cfg, (AddSelfToMul(), Recorder("graphs")))
    p = _run(m, cfg, session).pieces[0]
    assert [name for name, _ in p.pass_graphs] == ["input", "AddSelfToMul", "Recorder"]
    given, rewritten, recorded = (text for _, text in p.pass_graphs)
    assert "aten.add.Tensor" in given and "aten.mul.Tensor" not in given
    assert "aten.add.Tensor" not in rewritten and "aten.mul.Tensor" in rewritten and recorded == rewritten
    # kept with the artifact (a fresh session: disk hits) and in a saved report
    again = _run(m, cfg, vx.Session())
    assert again.counters["cache_hits_disk"] == 2 and again.pieces[0].pass_graphs == p.pass_graphs
    loaded = vx.CompileReport.from_dict(json.loads(json.dumps(again.to_dict())))
    assert loaded.pieces[0].pass_graphs == p.pass_graphs


def test_cache_key_follows_the_uuid_not_the_instance(cache_cfg, session):
    m = Calls("mix").eval()
    first = _run(m, _cfg(cache_cfg, (Recorder("k"),)), session)
    assert first.counters["cache_misses"] == 2 and len(CALLS) == 2
    # a fresh session (empty memory tier), a new instance of the same pass: the disk tier serves it
    again = _run(m, _cfg(cache_cfg, (Recorder("k"),)), vx.Session())
    c = again.counters
    assert (c["cache_hits_disk"], c["cache_misses"], c["inductor_compiles"]) == (2, 0, 0) and len(CALLS) == 2
    assert again.pieces[0].passes == (("Recorder", f"recorder-k-v1-{NONCE}"),)   # kept in the artifact
    # a new uuid (the pass changed) is a new key, and the miss says which part changed
    changed = _run(m, _cfg(cache_cfg, (Recorder("k", version=2),)), vx.Session())
    assert changed.counters["cache_misses"] == 2 and len(CALLS) == 4
    assert any("config.post_grad_passes" in r for r in changed.pieces[0].miss_reasons)


def test_key_holds_uuids_never_reprs():
    a, b = vx.CompileConfig(post_grad_passes=(Recorder("x"),)), vx.CompileConfig(post_grad_passes=(Recorder("x"),))
    assert a.compile_relevant() == b.compile_relevant()
    assert a.compile_relevant()["post_grad_passes"] == [f"recorder-x-v1-{NONCE}"]
    assert vx.CompileConfig().compile_relevant() == {"compiler": "inductor", "mode": "default", "inductor_options": {}}
    ordered = vx.CompileConfig(post_grad_passes=(Recorder("x"), AddSelfToMul()))
    assert ordered.compile_relevant() != vx.CompileConfig(post_grad_passes=(AddSelfToMul(), Recorder("x"))).compile_relevant()
    # a pass given as an Inductor option is keyed by its uuid too (its repr holds a memory address)
    opt = [vx.CompileConfig(inductor_options={"post_grad_custom_pre_pass": Recorder("y")}).compile_relevant()
           for _ in range(2)]
    assert opt[0] == opt[1] and "0x" not in json.dumps(opt[0])


def test_raising_pass_falls_back_naming_the_pass(cache_cfg, session):
    m = Calls("mix").eval()
    with pytest.warns(vx.VexploreFallbackWarning):
        rep = _run(m, _cfg(cache_cfg, (Recorder("ok"), Boom())), session)
    for p in (p for p in rep.pieces if p.kind == "compiled"):
        assert p.compiler == "eager" and p.passes == ()
        assert p.fallback_reason.startswith("post-grad pass error: ")
        assert "post-grad pass Boom" in p.fallback_reason and "ValueError: no rewrite for this graph" in p.fallback_reason
    assert rep.counters["fallbacks"] == 2 and rep.counters["conservative_retries"] == 2
    with pytest.raises(vx.CompileError, match="post-grad pass Boom"), torch.no_grad():
        vx.compile(m, _cfg(cache_cfg, (Boom(),), fallback=False), session=session)(torch.randn(8, 16))


class _NoUuid:
    def __call__(self, graph: torch.fx.Graph) -> None:
        pass


class _IntUuid(_NoUuid):
    def uuid(self) -> int:
        return 3


@pytest.mark.parametrize("entry, says", [
    (_NoUuid(), "no uuid()"), (_IntUuid(), "uuid() returned 3"), ("AddSelfToMul", "not callable"),
    (lambda g: None, "no uuid()"),
])
def test_an_entry_that_is_not_a_pass_is_a_config_error(entry, says):
    with pytest.raises(vx.ConfigError, match=re.escape(says)) as e:
        vx.CompileConfig(post_grad_passes=(entry,))
    assert "post_grad_passes[0]" in str(e.value) and "CustomGraphPass" in str(e.value)


def test_passes_must_be_a_tuple_and_the_only_post_grad_pass():
    with pytest.raises(vx.ConfigError, match="give a tuple of passes"):
        vx.CompileConfig(post_grad_passes=AddSelfToMul())
    with pytest.raises(vx.ConfigError, match="move that pass into post_grad_passes"):
        vx.CompileConfig(post_grad_passes=(AddSelfToMul(),), inductor_options={"post_grad_custom_post_pass": Boom()})


def test_workers_run_the_pass_or_say_why_not(cache_cfg):
    s = vx.Session()
    try:
        m = Doubler().eval()
        rep = _run(m, _cfg(cache_cfg, (AddSelfToMul(),), workers=1), s)
        p = rep.pieces[0]
        assert p.compiled_in.startswith("worker pid") and p.passes == (("AddSelfToMul", AddSelfToMul().uuid()),)
        assert not SELF_ADD.search(p.code) and "2.0" in p.code
        # the graphs the passes saw come back from the worker (this session's Recorder: no Inductor cache hit)
        rep = _run(m, _cfg(cache_cfg, (AddSelfToMul(), Recorder("worker")), workers=1), s)
        p = rep.pieces[0]
        assert p.compiled_in.startswith("worker pid") and [n for n, _ in p.pass_graphs] == ["input", "AddSelfToMul", "Recorder"]
        assert "aten.mul.Tensor" in p.pass_graphs[1][1] and "aten.mul.Tensor" not in p.pass_graphs[0][1]
        # a pass defined in __main__ (a notebook cell) cannot reach a worker: compiled here, saying why
        main_pass = type("NotebookPass", (Recorder,), {"__module__": "__main__"})("nb")
        rep = _run(Calls("mix").eval(), _cfg(cache_cfg, (main_pass,), workers=1), s)
        p = rep.pieces[0]
        assert p.compiled_in == ("in-process: post-grad pass NotebookPass is defined in __main__ (the notebook or "
                                 "script), which a worker cannot import")
        assert p.passes == (("NotebookPass", f"recorder-nb-v1-{NONCE}"),) and len(CALLS) == 2
    finally:
        s.close()
