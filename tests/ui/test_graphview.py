"""The graph view: its model and visible graph (pure), and the widget in headless Chromium —
the same visible graph as Python's, click-through to source line, piece and kernel, and speed on
a 5,000-node graph, a 64-layer model with every module open. Saves docs/graph-collapsed-5000.png,
docs/graph-expanded-5000.png and docs/graph-64-layers-open.png when VEXPLORE_UPDATE_DOCS=1 (else
under artifacts/)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest


from uihelpers import scaled_report, synthetic_report, toy_config
from vexplore.ui.graphmodel import assign_kernels, default_expanded, graph_model, kernel_map, module_path, visible
from vexplore.ui.graphsvg import SPLIT, graph_svg, view_dot
from vexplore.ui.graphwidget import _STATIC, GraphWidget

ROOT = Path(__file__).resolve().parents[2]


def test_module_paths_and_sources():
    assert module_path("L['model'].layers.0.attn_norm") == "layers.0.attn_norm"
    assert module_path("L['self']._modules['layers']._modules['3'].mlp") == "layers.3.mlp"
    assert module_path("L['self'].blocks[2]") == "blocks.2"
    assert module_path(None) == "" and module_path("L['model']") == ""


def test_model_of_a_real_report(toy_report):
    g = graph_model(toy_report)
    assert len(g["nodes"]) == sum(p.nodes for p in toy_report.pieces)
    assert g["modules"]["layers.0.qkv"] == "layers.0" and g["modules"]["layers"] == ""
    attn = [n for n in g["nodes"] if n["split"]]
    assert len(attn) == 4 and all(n["op"] == "attention" for n in attn)
    lin = next(n for n in g["nodes"] if n["target"] == "torch._C._nn.linear")
    assert lin["source"].startswith("toy_llama.py:") and "self.qkv(" in lin["line"]
    # each node with a kernel names one of its piece's kernels or a library call
    assert all(n["kernel"] is None or n["kernel"] in g["kernels"].get(str(n["piece"]), {})
               or n["kernel"].startswith("extern_kernels.") for n in g["nodes"])
    pow_node = next(n for n in g["nodes"] if n["op"] == "pow")
    assert "pow" in pow_node["kernel"] and "def " not in pow_node["kernel"]
    # the last piece runs two RMSNorms in two kernels: each pow gets its own
    pows = [n["kernel"] for n in g["nodes"] if n["op"] == "pow" and n["piece"] == 8]
    assert len(pows) == 2 and pows[0] != pows[1] and all("pow" in k for k in pows)
    # identical pieces run their twin's compile: their nodes name the twin's kernels
    assert {n["kernel"] for n in g["nodes"] if n["piece"] == 4 and n["op"] == "silu"} == {"cpp_fused_mul_silu_split_1"}
    assert g["pieces"]["4"]["label"] == "piece 2 = 4 = 6" and g["pieces"]["1"]["kind"] == "split_op"
    json.dumps(g)


def test_visible_collapses_expands_and_folds(toy_report):
    g = graph_model(toy_report)
    top = visible(g)
    assert [i.id for i in top.items] == ["m:embed", "m:layers", "m:norm", "m:lm_head"]
    assert top.items[1].count == sum(1 for n in g["nodes"] if n["module"].startswith("layers"))
    assert ("m:embed", "m:layers") in top.edges and all(a != b for a, b in top.edges)
    layers = visible(g, ["layers"])
    assert [i.label for i in layers.items][1] == "layers.0–3 ×4 identical"
    assert layers.items[1].members == ("layers.0", "layers.1", "layers.2", "layers.3")
    assert [i.id for i in visible(g, ["layers"], fold=False).items][1:5] == ["m:layers.0", "m:layers.1", "m:layers.2", "m:layers.3"]
    one = visible(g, ["layers", "layers.1"])
    ids = [i.id for i in one.items]
    assert "m:layers.0" in ids and "f:layers.2" in ids and "m:layers.1.qkv" in ids   # the run broken at layers.1
    attention = next(i for i in one.items if i.kind == "node" and i.split)
    assert attention.label == "attention" and attention.pieces == (3,)
    # expanded modules become containers, each item sits in the innermost one
    assert one.groups == ("layers", "layers.1") and top.groups == ()
    parent = {i.id: i.parent for i in one.items}
    assert parent["m:embed"] == "" and parent["m:layers.0"] == "layers" and parent["f:layers.2"] == "layers"
    assert parent["m:layers.1.qkv"] == "layers.1" and attention.parent == "layers.1"
    deep = visible(g, ["layers", "layers.0", "layers.0.qkv"])
    assert deep.groups == ("layers", "layers.0", "layers.0.qkv")
    assert {i.parent for i in deep.items if i.kind == "node"} == {"layers.0", "layers.0.qkv"}
    assert default_expanded(g) == ["embed", "layers", "norm", "lm_head"]


@pytest.fixture(scope="module")
def breaks_report(tmp_path_factory):
    """A model Dynamo captures as two graphs (torch._dynamo.graph_break in the middle)."""
    import torch
    import vexplore as vx
    from models import Breaks

    torch._dynamo.reset()
    cm = vx.compile(Breaks().eval(), toy_config(tmp_path_factory.mktemp("breaks"), splitting_ops=["vxtest::mix"]),
                    session=vx.Session())
    with torch.no_grad():
        cm(torch.randn(8, 16))
    return cm.report


def test_graph_breaks_are_marked(breaks_report):
    g = graph_model(breaks_report)
    assert len(g["breaks"]) == 1 and g["break_reasons"] == list(breaks_report.graph_breaks)
    last0, first1 = g["breaks"][0]
    assert last0.startswith("g0:") and first1.startswith("g1:")
    order = [n["id"] for n in g["nodes"]]
    assert order.index(first1) == order.index(last0) + 1
    assert visible(g, ["a", "b"]).breaks == ((last0, first1),)            # between two ops
    top = visible(g)
    assert last0 == "g0:h" and top.breaks == (("g0:h", "m:b"),)           # lifted to the boxes shown
    dot = view_dot(top, g["pieces"])
    assert dot.count("graph break") == 1 and 'style="dashed"' in dot


def test_a_transformers_llama_called_as_its_users_call_it(tmp_path):
    """A model not written for vexplore: Hugging Face's LlamaForCausalLM (8 layers, random
    weights from a config: nothing downloaded), called with input_ids, compiled piecewise at
    its default split op (SDPA)."""
    import torch
    import vexplore as vx
    from transformers import LlamaConfig, LlamaForCausalLM

    torch._dynamo.reset()
    torch.manual_seed(0)
    cfg = LlamaConfig(num_hidden_layers=8, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, max_position_embeddings=128)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 256, (1, 12))
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise", cache=vx.CacheConfig(dir=str(tmp_path))),
                    session=vx.Session())
    with torch.no_grad():
        torch.testing.assert_close(cm(input_ids=ids).logits, model(input_ids=ids).logits)
    g = graph_model(cm.report)
    assert len(cm.report.pieces) == 17 and len(g["nodes"]) == sum(p.nodes for p in cm.report.pieces)
    view = visible(g, default_expanded(g))
    assert "model.layers.0–7 ×8 identical" in [i.label for i in view.items] and len(view.items) <= 30
    assert view.groups[:2] == ("model", "model.embed_tokens")
    # every projection names its library call, every RMSNorm's pow a fused kernel; twins included
    by_op = lambda op: [n for n in g["nodes"] if n["op"] == op]
    assert len(by_op("linear")) == 8 * 7 + 1 and all(n["kernel"] == "extern_kernels.mm" for n in by_op("linear"))
    assert len(by_op("pow")) == 17 and all("pow" in n["kernel"] for n in by_op("pow"))
    assert all(n["source"] and "modeling_llama.py:" in n["source"] for n in by_op("linear"))
    svg, why = graph_svg(cm.report)
    assert why is None and "model.layers.0–7 ×8 identical" in svg


def test_kernels_are_read_from_the_generated_code():
    cpu = "\n".join([
        "cpp_fused_add_mul_0 = async_compile.cpp_pybinding(['float*'], r'''", "void kernel() {}", "''')",
        "cpp_fused_add_cat_1 = async_compile.cpp_pybinding(['float*'], r'''", "void kernel() {}", "''')",
        "def call(args):",
        "    buf0 = empty_strided_cpu((4, 4), (4, 1), torch.float32)",
        "    cpp_fused_add_mul_0(buf0)",
        "    # Topologically Sorted Source Nodes: [mul, add, linear], Original ATen: [aten.mul, aten.add, aten.mm]",
        "    extern_kernels.mm(buf0, arg1, out=buf1)",
        "    cpp_fused_add_cat_1(buf1, buf2)"])
    by_node, sources = kernel_map(cpu)
    assert by_node == {"mul": "extern_kernels.mm", "add": "extern_kernels.mm", "linear": "extern_kernels.mm"}
    assert list(sources) == ["cpp_fused_add_mul_0", "cpp_fused_add_cat_1"] and "void kernel" in sources["cpp_fused_add_cat_1"]
    nodes = [("mul", "mul"), ("add", "add"), ("linear", "linear"), ("cat", "cat"), ("add_1", "add")]
    # the CPU comment lists nodes fused before the library call: a fused kernel named after the op
    # wins, and of two such kernels the one called after the node before
    assert assign_kernels(nodes, by_node, sources, cpu) == {
        "mul": "cpp_fused_add_mul_0", "add": "cpp_fused_add_mul_0", "linear": "extern_kernels.mm",
        "cat": "cpp_fused_add_cat_1", "add_1": "cpp_fused_add_cat_1"}
    # code from Inductor's cache, first compiled for an identical graph with other node names:
    # its comments are not trusted; the library calls go to the matmuls in order
    foreign = [("mul_7", "mul"), ("linear_53", "linear"), ("cat_2", "cat"), ("linear_54", "linear")]
    code = cpu + "\n    # Topologically Sorted Source Nodes: [linear_12]\n    extern_kernels.addmm(buf2, arg3, out=buf4)"
    by_node, sources = kernel_map(code)
    assert assign_kernels(foreign, by_node, sources, code) == {
        "mul_7": "cpp_fused_add_mul_0", "linear_53": "extern_kernels.mm", "cat_2": "cpp_fused_add_cat_1",
        "linear_54": "extern_kernels.addmm"}
    triton = "\n".join([
        "triton_poi_fused_add_0 = async_compile.triton('triton_poi_fused_add_0', '''", "def triton_(): pass",
        "''', device_str='cuda')",
        "def call(args):",
        "    # Topologically Sorted Source Nodes: [sub], Original ATen: [aten.sub]",
        "    triton_poi_fused_add_0.run(buf0, 16, stream=stream0)"])
    by_node, sources = kernel_map(triton)
    # Triton's comments name each kernel's nodes: taken as they are, even against the name
    assert assign_kernels([("sub", "sub")], by_node, sources, triton) == {"sub": "triton_poi_fused_add_0"}


def test_the_static_svg_draws_the_same_view(toy_report):
    g = graph_model(toy_report)
    view = visible(g, ["layers", "layers.1"])
    dot = view_dot(view, g["pieces"])
    assert dot.count("subgraph cluster_") == 2 and "label=<layers.1>" in dot
    assert dot.count(" -> ") == len(view.edges) and dot.count("fillcolor=") == len(view.items) + 2
    assert f'fillcolor="{SPLIT}"' in dot                                  # the attention op in layers.1
    svg, why = graph_svg(toy_report)                                      # as the widget opens it
    assert why is None and svg.startswith("<svg") and "layers.0–3 ×4 identical" in svg
    assert "lm_head" in svg and svg.count("<g id=\"node") == len(visible(g, default_expanded(g)).items)
    hostile = synthetic_report(2, 3, module="x<b>y")
    dot = view_dot(visible(graph_model(hostile), ["x<b>y"]), graph_model(hostile)["pieces"])
    assert "x<b>y" not in dot and "x&lt;b&gt;y" in dot


def test_widget_ships_its_front_end_and_syncs(toy_report):
    w = GraphWidget()
    w.show(toy_report)
    js = Path(_STATIC / "graphview.js").read_text()
    assert "cytoscape" in js.lower() and "dagre" in js.lower()
    assert not re.search(r"""(?:\bfrom|\bimport)\s*\(?\s*["']https?:""", js)     # nothing fetched at run time
    assert w.expanded == ["embed", "layers", "norm", "lm_head"] and w.graph["nodes"]
    w.expanded = ["layers", "layers.0"]
    w.show(toy_report)                                   # a recompile keeps what the user opened
    assert w.expanded == ["layers", "layers.0"]
    w.show(synthetic_report(2, 3, module="blocks"))      # another model: opened afresh
    assert w.expanded == default_expanded(w.graph)


# ---- in a real browser -------------------------------------------------------------------------
def _click(page, item_id):
    """A real mouse click on a box (centred first, so it is on screen)."""
    x, y = page.evaluate("""(id) => { const cy = window.__el.__vexplore.cy, n = cy.getElementById(id);
        cy.center(n); const r = cy.container().getBoundingClientRect(), p = n.renderedPosition();
        return [r.left + p.x, r.top + p.y]; }""", item_id)
    page.mouse.click(x, y)


def _click_frame(page, path):
    """A real mouse click inside a container's frame, next to its label."""
    x, y = page.evaluate("""(path) => { const v = window.__el.__vexplore, cy = v.cy;
        const f = v.frames().find((f) => f.path === path), z = cy.zoom();
        cy.pan({x: cy.width() / 2 - z * (f.x1 + 6), y: cy.height() / 2 - z * (f.y1 + 6)});
        const r = cy.container().getBoundingClientRect();
        return [r.left + cy.width() / 2, r.top + cy.height() / 2]; }""", path)
    page.mouse.click(x, y)


def _js_view(page, expanded):
    return page.evaluate("""(exp) => { const v = window.__el.__vexplore.visible(window.__state.graph, new Set(exp), true);
        return {items: v.items.map((i) => [i.id, i.kind, i.label, i.count, i.pieces, i.parent]), edges: v.edges,
                groups: v.groups, breaks: v.breaks}; }""", expanded)


def _shown(page):
    return page.evaluate("""() => ({expanded: [...window.__el.__vexplore.state.expanded],
        nodes: window.__el.__vexplore.cy.nodes().map((n) => n.id()), frames: window.__el.__vexplore.frames().map((f) => f.path)})""")


@pytest.mark.browser
def test_the_browser_draws_what_python_computes_and_clicks_through(toy_report, page_of):
    g = graph_model(toy_report)
    page = page_of(g, default_expanded(g))
    for expanded in ([], ["layers"], ["layers", "layers.1"], ["layers", "layers.0", "layers.0.qkv", "norm"]):
        py = visible(g, expanded)
        js = _js_view(page, expanded)
        assert js["items"] == [[i.id, i.kind, i.label, i.count, list(i.pieces), i.parent] for i in py.items], expanded
        assert [tuple(e) for e in js["edges"]] == list(py.edges) and tuple(js["groups"]) == py.groups
    first = visible(g, default_expanded(g))
    assert sorted(_shown(page)["nodes"]) == sorted(i.id for i in first.items)
    assert _shown(page)["frames"] == list(first.groups)
    # a click on the folded layers opens the first; the rest stay folded
    _click(page, "f:layers.0")
    shown = _shown(page)
    assert "layers.0" in shown["expanded"] and "layers.0" in shown["frames"] and "f:layers.1" in shown["nodes"]
    assert "layers.0" in page.evaluate("window.__state.expanded")          # synced to the model
    # a node: its source line, its piece (with the table row) and the kernel that computes it
    _click(page, "m:layers.0.qkv")
    lin = next(n for n in g["nodes"] if n["module"] == "layers.0.qkv")
    _click(page, lin["id"])
    details = page.locator(".vx-gv-details").inner_text()
    assert lin["source"] in details and "self.qkv(" in details and f"piece {lin['piece']}" in details
    assert lin["kernel"] in details and "compile time" in details
    assert page.evaluate("window.__state.selected") == lin["id"]
    _click(page, "m:layers.0.attn_norm")
    pow_node = next(n for n in g["nodes"] if n["op"] == "pow" and n["module"] == "layers.0.attn_norm")
    _click(page, pow_node["id"])
    assert pow_node["kernel"] in page.locator(".vx-gv-kernel").inner_text()
    assert "cpp_fused" in page.locator(".vx-gv-code").inner_text()
    # a click on a container's frame collapses it, and what it holds
    _click_frame(page, "layers.0")
    shown = _shown(page)
    assert not {"layers.0", "layers.0.qkv", "layers.0.attn_norm"} & set(shown["expanded"])
    assert "layers.0" not in shown["frames"] and "f:layers.0" in shown["nodes"]
    # a piece chip: its table row; search marks the boxes holding matches
    page.locator(".vx-gv-chip[data-piece='4']").click()
    assert page.locator(".vx-gv-details tr[data-piece='4']").count() == 1
    page.fill(".vx-gv-search", "rsqrt")
    assert "9 nodes match" in page.locator(".vx-gv-status").inner_text()
    assert page.evaluate("window.__el.__vexplore.cy.nodes('.match').length") >= 1
    assert not page.errors


@pytest.mark.browser
def test_graph_breaks_are_drawn_and_explained(breaks_report, page_of):
    g = graph_model(breaks_report)
    page = page_of(g, [])
    for expanded in ([], ["a", "b"]):
        js = _js_view(page, expanded)
        assert [tuple(b) for b in js["breaks"]] == list(visible(g, expanded).breaks)
    assert "1 graph break" in page.locator(".vx-gv-status").inner_text()
    assert page.evaluate("window.__el.__vexplore.cy.edges('.break').length") == 1
    x, y = page.evaluate("""() => { const cy = window.__el.__vexplore.cy, e = cy.edges('.break')[0];
        cy.center(e); const r = cy.container().getBoundingClientRect(), p = e.renderedMidpoint();
        return [r.left + p.x, r.top + p.y]; }""")
    page.mouse.click(x, y)
    details = page.locator(".vx-gv-details").inner_text()
    assert "graph break" in details and "Call to `torch._dynamo.graph_break()`" in details
    assert not page.errors


FRAMES = """async ([factor, n]) => {
    // n steps, each a zoom (in for the first half, out for the rest) and a pan; per step the
    // wall time to the second animation frame after it: the frame that shows it
    const cy = window.__el.__vexplore.cy, wall = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      cy.zoom({level: cy.zoom() * (i < n / 2 ? factor : 1 / factor), renderedPosition: {x: 600, y: 280}});
      cy.panBy({x: 37, y: -23});
      await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
      wall.push(performance.now() - t0);
    }
    return wall; }"""
RAF2 = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"


@pytest.mark.browser
def test_five_thousand_nodes_render_pan_zoom_and_expand(toy_report, page_of):
    """A 5,009-node graph draws, opens and pans in the browser. Its times are measured here but
    judged in benchmarks/graphview.py (targets: first view 3 s, frames 100 ms, one module 500 ms),
    which runs this test with VEXPLORE_GRAPHVIEW_TIMES set: a timed assertion here would fail on
    a loaded CI machine for no fault of the code (it did: 4.9 s on 2 shared cores under load)."""
    big = graph_model(scaled_report(toy_report.pieces[2], 15, 9))
    assert len(big["nodes"]) >= 5000
    page = page_of(big, default_expanded(big))
    rendered = page.evaluate("window.__rendered_ms")
    shots = ROOT / ("docs" if os.environ.get("VEXPLORE_UPDATE_DOCS") == "1" else "artifacts")
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "graph-collapsed-5000.png"))
    collapsed = page.evaluate(FRAMES, [1.15, 20])
    expand_ms = page.evaluate(f"""async () => {{ const t0 = performance.now();
        window.__el.__vexplore.toggle('f:layers.0.0'); await {RAF2}; return performance.now() - t0; }}""")
    page.locator(".vx-gv-collapse").click()
    assert _shown(page)["nodes"] == ["m:layers"]
    page.locator(".vx-gv-fold").uncheck()
    # everything open: 5,009 boxes in 1,230 containers
    all_ms = page.evaluate(f"""async (mods) => {{ const v = window.__el.__vexplore, t0 = performance.now();
        v.toggle('m:layers'); for (const m of mods) v.state.expanded.add(m);
        document.querySelector('.vx-gv-fold').dispatchEvent(new Event('change')); await {RAF2};
        return performance.now() - t0; }}""", sorted(big["modules"]))
    assert page.evaluate("window.__el.__vexplore.state.view.items.length") == len(big["nodes"])
    # Cytoscape holds the boxes near the view, not all 5,009 (windowed.js)
    assert 0 < page.evaluate("window.__el.__vexplore.cy.nodes().length") < len(big["nodes"])
    page.evaluate("() => { window.__el.__vexplore.fit(false); }")
    assert page.evaluate("window.__el.__vexplore.overview()")     # boxes under 4 px: drawn as an overview
    # from all 5,009 boxes in view to readable labels and back: x1.4 a step, 40 steps
    expanded = page.evaluate(FRAMES, [1.4, 40])
    page.evaluate("""() => { const cy = window.__el.__vexplore.cy, bb = cy.nodes().boundingBox();
        cy.zoom(0.8); cy.pan({x: cy.width() / 2 - 0.8 * (bb.x1 + bb.x2) / 2, y: 20 - 0.8 * bb.y1}); }""")
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "graph-expanded-5000.png"))
    print(f"5,000-node graph: first view {rendered:.0f} ms, its pan/zoom frames {max(collapsed):.0f} ms at most; "
          f"expanding one module {expand_ms:.0f} ms; everything open {all_ms:.0f} ms, its pan/zoom frames "
          f"{max(expanded):.0f} ms at most (median {sorted(expanded)[20]:.0f} ms)")
    times = os.environ.get("VEXPLORE_GRAPHVIEW_TIMES")
    if times:
        with open(times, "a") as f:
            f.write(json.dumps(dict(first_view_ms=rendered, collapsed_frame_ms=max(collapsed), expand_one_ms=expand_ms,
                                    everything_open_ms=all_ms, open_frame_ms=max(expanded))) + "\n")
    held = page.evaluate("""() => { const v = window.__el.__vexplore, cy = v.cy, e = cy.extent();
        return v.state.view.items.filter((it) => { const p = v.state.lay.pos.get(it.id);
            return p.x >= e.x1 && p.x <= e.x2 && p.y >= e.y1 && p.y <= e.y2; }).every((it) => v.has(it.id)); }""")
    assert held                                              # panning lost nothing: every box in view is drawn
    assert not page.errors


@pytest.mark.browser
def test_clicks_land_after_the_notebook_scrolls(toy_report, page_of):
    """JupyterLab scrolls the notebook in a panel of its own: Cytoscape's cached position of its
    container went stale, and clicks after a scroll selected nothing."""
    g = graph_model(toy_report)
    page = page_of(g, ["layers", "layers.0", "layers.0.qkv", "layers.0.attn_norm"])
    page.evaluate("""() => { const el = window.__el, wrap = document.createElement('div');
        wrap.className = 'vx-test-panel'; wrap.style.cssText = 'height:800px;overflow:auto';
        const pad = () => { const d = document.createElement('div'); d.style.height = '1500px'; return d; };
        el.parentNode.insertBefore(wrap, el); wrap.append(pad(), el, pad()); wrap.scrollTop = 1400; }""")
    page.wait_for_timeout(100)
    lin = next(n for n in g["nodes"] if n["module"] == "layers.0.qkv")
    _click(page, lin["id"])                                  # Cytoscape reads its position here
    assert page.evaluate("window.__state.selected") == lin["id"]
    page.evaluate("() => { document.querySelector('.vx-test-panel').scrollTop = 1250; }")
    page.wait_for_timeout(100)
    other = next(n for n in g["nodes"] if n["op"] == "pow" and n["module"] == "layers.0.attn_norm")
    _click(page, other["id"])
    assert page.evaluate("window.__state.selected") == other["id"]
    assert not page.errors


# ---- a 64-layer model, every module open -------------------------------------------------------
@pytest.fixture(scope="module")
def llama64(tmp_path_factory):
    """ToyLlama(layers=64) compiled piecewise (eager compiler: the graph is what matters, 2,443 nodes
    in 129 pieces)."""
    import torch
    import vexplore as vx
    from vexplore.models import ToyLlama

    torch._dynamo.reset()
    torch.manual_seed(0)
    m = ToyLlama(layers=64).eval()
    (x,) = m.example_inputs(16)
    cm = vx.compile(m, toy_config(tmp_path_factory.mktemp("llama64"), compiler="eager"), session=vx.Session())
    with torch.no_grad():
        cm(x)
    return cm.report


RECORD = """() => { const cy = window.__el.__vexplore.cy; window.__frames = []; window.__zooms = [];
    let last = performance.now(); window.__recording = true;
    const tick = (t) => { window.__frames.push(t - last); window.__zooms.push(cy.zoom()); last = t;
                          if (window.__recording) requestAnimationFrame(tick); };
    requestAnimationFrame(tick); }"""


def frame_times(page, drags: int = 4, wheels: int = 30) -> tuple[list[float], list[float]]:
    """requestAnimationFrame deltas (ms) while the mouse drags the canvas and wheels it in and out
    (Playwright's real input events), and the zoom at each frame."""
    box = page.locator(".vx-gv-cy").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(RECORD)
    for k in range(drags):
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 31):
            page.mouse.move(x + (8 * i if k % 2 == 0 else -8 * i), y + (12 * i if k < drags // 2 else -12 * i))
        page.mouse.up()
    for k in range(wheels):
        page.mouse.move(x, y)
        page.mouse.wheel(0, -60 if k % 10 < 5 else 60)
    frames, zooms = page.evaluate("() => { window.__recording = false; return [window.__frames, window.__zooms]; }")
    return frames[1:], zooms[1:]


@pytest.mark.browser
def test_sixty_four_layers_open_pan_and_zoom_at_a_legible_zoom(llama64, page_of):
    """Every module of a 64-layer model open (2,443 boxes, 452 frames): pan and zoom frames at p95
    <= 33 ms at zooms where the labels read (11 px type at 0.6-1.3), "fit" frames it legibly, the
    pieces are a strip (not 129 chips), and a fold's details are one table."""
    g = graph_model(llama64)
    assert len(g["nodes"]) > 2400 and len(g["pieces"]) == 129
    page = page_of(g, sorted(g["modules"]))
    v = "window.__el.__vexplore"
    assert page.evaluate(f"{v}.state.view.items.length") == len(g["nodes"])
    # "fit": the top of the graph at a zoom its labels read at, not the whole of it as a line
    page.locator(".vx-gv-fit").click()
    assert 0.8 <= page.evaluate(f"{v}.cy.zoom()") <= 1.25
    shots = ROOT / ("docs" if os.environ.get("VEXPLORE_UPDATE_DOCS") == "1" else "artifacts")
    shots.mkdir(exist_ok=True)
    page.wait_for_timeout(200)
    page.locator(".vx-gv").screenshot(path=str(shots / "graph-64-layers-open.png"))
    # Cytoscape holds the boxes near the view only
    held, total = page.evaluate(f"[{v}.cy.elements().length, {v}.state.view.items.length + {v}.state.view.edges.length]")
    assert held < total / 4
    page.evaluate(f"() => {{ const cy = {v}.cy; cy.zoom(0.8); cy.panBy({{x: 0, y: -3000}}); }}")
    page.wait_for_timeout(200)
    frames, zooms = frame_times(page)
    frames.sort()
    p95, median = frames[int(len(frames) * 0.95)], frames[len(frames) // 2]
    print(f"64 layers, every module open: {len(frames)} frames while dragging and wheeling, median {median:.1f} ms, "
          f"p95 {p95:.1f} ms, max {frames[-1]:.1f} ms; zoom {min(zooms):.2f}-{max(zooms):.2f}")
    assert len(frames) > 100 and min(zooms) >= 0.6 and max(zooms) > 0.85
    assert p95 <= 33.4, f"p95 frame {p95:.1f} ms"   # two 60 Hz frames
    assert page.evaluate(f"""() => {{ const v = {v}, e = v.cy.extent();   // every box in view is drawn
        return v.state.view.items.filter((it) => {{ const p = v.state.lay.pos.get(it.id);
            return p.x >= e.x1 && p.x <= e.x2 && p.y >= e.y1 && p.y <= e.y2; }}).every((it) => v.has(it.id)); }}""")
    assert not page.errors


@pytest.mark.browser
def test_many_pieces_are_a_strip_and_a_fold_rolls_up(llama64, page_of):
    g = graph_model(llama64)
    page = page_of(g, default_expanded(g))
    legend = page.locator(".vx-gv-legend")
    assert page.locator(".vx-gv-chip").count() == 0 and legend.locator(".vx-gv-strip").count() == 1
    assert legend.bounding_box()["height"] <= 30                       # one line, not five rows of chips
    assert "65 compiled" in legend.inner_text() and "64 split op" in legend.inner_text()
    # a piece by number: its row
    page.fill(".vx-gv-pick", "4")
    page.dispatch_event(".vx-gv-pick", "change")
    assert page.locator(".vx-gv-details tr[data-piece='4']").count() == 1
    assert page.evaluate("window.__el.__vexplore.marked('match').length") >= 1
    # a range, dragged across the strip: one table rolling the pieces up
    strip = page.locator(".vx-gv-strip").bounding_box()
    at = lambda k: strip["x"] + (k + 0.5) * strip["width"] / 129
    page.mouse.move(at(10), strip["y"] + 5)
    page.mouse.down()
    page.mouse.move(at(15), strip["y"] + 5)
    page.mouse.move(at(20), strip["y"] + 5)
    page.mouse.up()
    details = page.locator(".vx-gv-details")
    assert "pieces 10–20" in details.inner_text() and details.locator("table").count() == 1
    assert details.locator("table.vx-gv-rollup tr").count() == 3        # head, compiled, split op
    # the ×64 fold: one table of its pieces, not 64 names and 129 tables
    fold = next(i for i in visible(g, default_expanded(g)).items if i.kind == "fold")
    assert fold.label == "layers.0–63 ×64 identical"
    _click(page, fold.id)
    text = details.inner_text()
    assert "64 identical modules, layers.0 to layers.63" in text and "layers.17" not in text
    assert details.locator("table").count() == 1
    rows = details.locator("table tr").all_inner_texts()
    # the first and last pieces reach outside the layers; the 63 layer pieces that share one compile; the 64 split ops
    assert len(rows) == 5 and rows[0].split("\t")[0] == "pieces"
    assert any(r.startswith("2, 4, 6, …, 126 (63)") and "piece 2 = 4 = 6 = … = 126 (63 pieces)" in r for r in rows)
    assert any(r.startswith("1, 3, 5, …, 127 (64)\tsplit_op") and "1 each" in r for r in rows)
    assert not page.errors


DARK = {"--jp-layout-color0": "#111111", "--jp-layout-color1": "#212121", "--jp-layout-color2": "#424242",
        "--jp-content-font-color1": "#ffffff", "--jp-content-font-color2": "rgba(255, 255, 255, 0.7)",
        "--jp-border-color1": "#616161", "--jp-border-color2": "#424242", "--jp-ui-font-color0": "#ffffff",
        "--jp-ui-inverse-font-color0": "#000000"}


@pytest.mark.browser
def test_the_canvas_takes_the_theme_when_it_changes(toy_report, page_of):
    """Colours come from JupyterLab's CSS variables: changed on the page (as a theme switch does, with
    data-jp-theme-light on <body>), the canvas is restyled — edges, frames, the details panel."""
    page = page_of(graph_model(toy_report), ["layers", "layers.0"])
    v = "window.__el.__vexplore"
    look = f"""() => [{v}.theme().light, {v}.cy.edges()[0].style('line-color'), {v}.theme().frameFill,
        getComputedStyle(document.querySelector('.vx-gv-body')).backgroundColor,
        getComputedStyle(document.querySelector('.vx-gv-details')).color]"""
    light = page.evaluate(look)
    assert light[0] is True and light[3] == "rgb(255, 255, 255)"
    page.evaluate("""(vars) => { for (const [k, x] of Object.entries(vars)) document.body.style.setProperty(k, x);
        document.body.dataset.jpThemeLight = 'false'; }""", DARK)
    page.wait_for_function(f"() => {v}.theme().light === false", timeout=5000)
    dark = page.evaluate(look)
    assert dark[1] != light[1] and dark[2] != light[2]                     # edges and frames restyled
    assert dark[3] == "rgb(17, 17, 17)" and dark[4] == "rgb(255, 255, 255)"    # the DOM parts follow the variables
    # every box's label still reads on its fill
    ratios = page.evaluate(f"""() => {v}.cy.nodes().map((n) => [n.style('color'), n.data('colour')])""")
    from vexplore.ui.style import contrast
    hexed = lambda c: "#" + "".join(f"{int(x):02x}" for x in re.findall(r"\d+", c)[:3]) if c.startswith("rgb") else c
    assert min(contrast(hexed(fg), bg) for fg, bg in ratios) >= 4.5
    assert not page.errors
