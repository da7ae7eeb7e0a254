// The explorer's graph widget (anywidget): a module hierarchy, collapsed by default, laid out
// per expanded level with dagre and drawn with Cytoscape (both MIT); zoom, pan, fit, search, a
// minimap, and a details panel (source line, piece, kernel). `visible` (view.js) mirrors
// vexplore/ui/graphmodel.py's `visible`, which the tests compare it with. Colours come from
// JupyterLab's theme (theme.js); a big graph is held in Cytoscape a window at a time (windowed.js).
import cytoscape from "cytoscape";
import { visible } from "./view.js";
import { layoutView } from "./layout.js";
import { underlay } from "./underlay.js";
import { minimap } from "./minimap.js";
import { windowed } from "./windowed.js";
import { CSS, readTheme, watchTheme } from "./theme.js";
import { legend as makeLegend } from "./legend.js";
import { breakDetails, esc, groupDetails, nodeDetails, noteHtml, pieceRange, piecesTable } from "./details.js";

const SPLIT = "#e45756";   // the split-op colour (style.OUTCOME_COLOURS["split op"])
const MIXED = "#9aa5b1";   // a box holding more than one piece
const READABLE = 0.8;      // the smallest zoom "fit" uses: 11 px labels at 8.8 px

// ---- drawing ------------------------------------------------------------------------------
function colourOf(item, pieces) {
  if (item.split && item.kind === "node") return SPLIT;
  if (item.pieces.length === 1) return pieces[String(item.pieces[0])]?.colour ?? "#888888";
  return MIXED;
}

function elements(view, lay, pieces, info, theme) {
  const els = [];
  for (const it of view.items) {
    const b = lay.box.get(it.id), p = lay.pos.get(it.id), colour = colourOf(it, pieces);
    els.push({ group: "nodes", data: { id: it.id, label: b.text, kind: it.kind, w: b.w, h: b.h, colour, fg: theme.textOn(colour) },
               position: { x: p.x, y: p.y }, classes: it.kind + (it.split ? " split" : "") });
  }
  view.edges.forEach(([a, b], i) => els.push({ group: "edges", data: { id: "e" + i, source: a, target: b } }));
  view.breaks.forEach(([a, b], i) => {
    const where = info?.[i]?.where, label = where ? `graph break · ${where}` : "graph break";
    if (a !== b) els.push({ group: "edges", data: { id: "b" + i, source: a, target: b, label }, classes: "break" });
    else els.find((e) => e.data.id === a).classes += " break";   // one box holds both sides
  });
  return els;
}

// Edges are straight: bezier routing costs most of a frame at thousands of edges.
const style = (t) => [
  { selector: "node", style: { shape: "round-rectangle", width: "data(w)", height: "data(h)", label: "data(label)",
      "text-wrap": "wrap", "text-valign": "center", "font-size": 11, "font-family": "sans-serif", color: "data(fg)",
      "background-color": "data(colour)", "border-width": 1, "border-color": t.strong, "min-zoomed-font-size": 6 } },
  { selector: "node.split", style: { "border-color": SPLIT } },
  { selector: "node.module", style: { "border-width": 2 } },
  { selector: "node.fold", style: { "border-width": 4, "border-style": "double" } },
  { selector: "node.match", style: { "overlay-color": t.accent, "overlay-opacity": 0.45, "overlay-padding": 4 } },
  { selector: "node.break", style: { "border-width": 3, "border-style": "dashed", "border-color": t.errorText } },
  { selector: "node.picked", style: { "border-width": 4, "border-color": t.accent } },
  { selector: "edge", style: { width: 1.2, "line-color": t.edge, "target-arrow-color": t.edge,
      "target-arrow-shape": "triangle", "curve-style": "straight", "arrow-scale": 0.8 } },
  { selector: "edge.break", style: { width: 2.5, "line-style": "dashed", "line-color": t.errorText, "target-arrow-color": t.errorText,
      label: "data(label)", "font-size": 10, color: t.errorText, "text-background-color": t.bg, "text-background-opacity": 0.9 } },
];

// ---- the widget ---------------------------------------------------------------------------
function toolbar(el) {
  const bar = document.createElement("div");
  bar.className = "vx-gv-bar";
  bar.innerHTML = `<input class="vx-gv-search" placeholder="search op or module (Enter: next)" size="30">`
    + `<button class="vx-gv-fit" title="frame the graph at a zoom its labels read at">fit</button>`
    + `<button class="vx-gv-expand-matches" title="expand the modules holding the matches">expand to matches</button>`
    + `<button class="vx-gv-collapse" title="collapse every module">collapse all</button>`
    + `<label><input type="checkbox" class="vx-gv-fold"> fold identical</label><span class="vx-gv-status"></span>`;
  el.appendChild(bar);
  return bar;
}

function parts(el) {
  el.classList.add("vx-gv");
  const sheet = document.createElement("style");
  sheet.textContent = CSS;   // after the page's copy of the widget's CSS: these colours win
  el.appendChild(sheet);
  const bar = toolbar(el);
  const legendEl = document.createElement("div");
  legendEl.className = "vx-gv-legend";
  const body = document.createElement("div");
  body.className = "vx-gv-body";
  body.innerHTML = `<canvas class="vx-gv-frames"></canvas><div class="vx-gv-cy"></div>`
    + `<canvas class="vx-gv-mini" width="180" height="130"></canvas>`;
  const details = document.createElement("div");
  details.className = "vx-gv-details";
  details.innerHTML = "<i>click a box: a module expands (click its frame to collapse it), a node shows its source line, piece and kernel</i>";
  el.append(legendEl, body, details);
  return { bar, legendEl, body, details };
}

function render({ model, el }) {
  const { bar, legendEl, body, details } = parts(el);
  let theme = readTheme(el);
  const cy = cytoscape({ container: body.querySelector(".vx-gv-cy"), style: style(theme),
                         minZoom: 0.001, maxZoom: 4, boxSelectionEnabled: false, autoungrabify: true,
                         layout: { name: "preset" } });   // positions come from layoutView
  const state = { expanded: new Set(model.get("expanded")), view: null, lay: null, matches: [], at: 0, timings: {} };
  const win = windowed(cy);
  const frameLayer = underlay(cy, body.querySelector(".vx-gv-frames"), (on) => { if (!on) win.update(); });
  const mini = minimap(cy, body.querySelector(".vx-gv-mini"));
  cy.on("viewport resize", () => win.update(frameLayer.overview()));   // after the underlay's check
  frameLayer.theme(theme);
  const status = bar.querySelector(".vx-gv-status");
  const foldBox = bar.querySelector(".vx-gv-fold");
  foldBox.checked = model.get("fold");
  const search = bar.querySelector(".vx-gv-search");

  const cache = new Map();   // per-level layouts, reused while a level's contents stay the same
  const draw = (fitted) => {
    const t0 = performance.now();
    const data = model.get("graph");
    state.view = visible(data, state.expanded, foldBox.checked);
    const lay = state.lay = layoutView(state.view, cache);
    const t1 = performance.now();
    win.set(elements(state.view, lay, data.pieces, data.break_info, theme));
    frameLayer.set(state.view, lay, (it) => colourOf(it, data.pieces));
    mini.set(frameLayer.boxes(), theme);
    if (fitted) fit(true);
    win.update(frameLayer.overview());
    state.timings = { layout_ms: t1 - t0, draw_ms: performance.now() - t0, items: state.view.items.length };
    const breaks = (data.breaks ?? []).length;
    status.textContent = ` ${data.nodes.length} nodes, ${state.view.items.length} boxes shown`
      + (breaks ? `, ${breaks} graph break${breaks > 1 ? "s" : ""} (dashed)` : "");
    highlight(search.value);
  };
  const centre = (x, y, z = cy.zoom()) => cy.viewport({ zoom: z, pan: { x: cy.width() / 2 - z * x, y: cy.height() / 2 - z * y } });

  // The whole graph (boxes and frames) where it is legible that way; else at a legible zoom, as wide
  // as fits, from its top (the minimap shows the rest): a transformer is tall, fitted its boxes are
  // specks. `legible` false: the whole graph, however small (the overview draws it).
  let pendingFit = null;   // a fit asked for while the widget had no size (not attached, or a hidden tab)
  const fit = (legible) => {
    const b = frameLayer.bounds(), w = b.x2 - b.x1, h = b.y2 - b.y1;
    if (!(cy.width() > 0 && cy.height() > 0)) { pendingFit = legible; return; }
    pendingFit = null;
    if (!isFinite(w) || w <= 0) return;
    const whole = Math.min(1.25, (cy.width() - 40) / w, (cy.height() - 40) / h);
    if (!legible || whole >= READABLE) { centre((b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2, whole); return; }
    const z = Math.max(READABLE, Math.min(1, (cy.width() - 40) / w));
    const x = z * w <= cy.width() - 40 ? cy.width() / 2 - z * (b.x1 + b.x2) / 2 : 20 - z * b.x1;
    cy.viewport({ zoom: z, pan: { x, y: 20 - z * b.y1 } });
  };
  const setExpanded = () => { model.set("expanded", [...state.expanded]); model.save_changes(); };
  // A module or fold opens (a fold: its first module); a container closes, with all inside it.
  const toggle = (it) => {
    let focus;
    if (it.kind === "group") {
      const path = it.id.slice(2);
      for (const m of [...state.expanded]) if (m === path || m.startsWith(path + ".")) state.expanded.delete(m);
      focus = it.id.replace(/^c:/, "m:");
    } else {
      const path = it.kind === "fold" ? it.members[0] : it.id.slice(2);
      state.expanded.add(path);
      focus = "c:" + path;
    }
    setExpanded();
    draw(false);
    const at = state.lay.pos.get(focus) ?? state.lay.pos.get(focus.replace(/^m:/, "f:"));
    if (at) centre(at.x, at.y);
  };
  const itemOf = (id) => (id.startsWith("c:") ? { id, kind: "group" } : state.view.items.find((x) => x.id === id));
  const boxOf = (nodeId) => { const r = state.view.repOf.get(nodeId); return state.view.folded.get(r) ?? r; };
  const mark = (ids, cls = "match") => { win.clearClass(cls); ids.forEach((id) => win.addClass(id, cls)); };

  function highlight(q) {
    win.clearClass("match");
    state.matches = [];
    if (!q) return;
    const data = model.get("graph"), ql = q.toLowerCase();
    const hits = data.nodes.filter((n) => (n.name + " " + n.target + " " + n.module).toLowerCase().includes(ql));
    const shown = new Set(hits.map((n) => boxOf(n.id)));
    state.matches = [...shown];
    mark(shown);
    status.textContent = ` ${hits.length} nodes match "${q}", in ${shown.size} boxes`;
  }

  const legend = makeLegend(legendEl, (indices) => {
    const data = model.get("graph"), want = new Set(indices);
    mark(state.view.items.filter((it) => it.pieces.some((p) => want.has(p))).map((it) => it.id));
    details.innerHTML = (indices.length > 1 ? `<div class="vx-gv-title">${esc(pieceRange(indices))}</div>` : "")
      + piecesTable(indices, data);
  }, (g) => {
    const d = model.get("graph"), ns = (d.graph_notes ?? {})[g] ?? [];
    mark(new Set(d.nodes.filter((n) => n.id.startsWith(`g${g}:`)).map((n) => boxOf(n.id))));
    details.innerHTML = `<div class="vx-gv-title">graph ${esc(g)}</div>`
      + (ns.length ? ns.map(noteHtml).join("") : "no graph break ends it and no recompile made it");
  });

  cy.on("tap", "node", (ev) => {
    const id = ev.target.id(), it = itemOf(id), data = model.get("graph");
    mark([id], "picked");
    if (it.kind === "node") {
      details.innerHTML = nodeDetails(data.nodes.find((x) => x.id === id), data);
      model.set("selected", id);
      model.save_changes();
      return;
    }
    details.innerHTML = groupDetails(it, data);
    toggle(it);
  });
  cy.on("tap", "edge.break", (ev) => {
    const data = model.get("graph");
    details.innerHTML = breakDetails((data.break_info ?? [])[Number(ev.target.id().slice(1))], data.break_reasons ?? []);
  });
  cy.on("tap", (ev) => {   // on the background: a frame collapses its module
    const f = ev.target === cy ? frameLayer.at(ev.position.x, ev.position.y) : null;
    if (!f) return;
    details.innerHTML = `<div class="vx-gv-title">module ${esc(f.path)}</div>collapsed — click its box to expand it again`;
    toggle({ id: "c:" + f.path, kind: "group" });
  });
  search.addEventListener("input", () => highlight(search.value));
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || !state.matches.length) return;
    const at = state.lay.pos.get(state.matches[state.at++ % state.matches.length]), z = Math.max(cy.zoom(), READABLE);
    if (at) cy.animate({ zoom: z, pan: { x: cy.width() / 2 - z * at.x, y: cy.height() / 2 - z * at.y } }, { duration: 150 });
  });
  bar.querySelector(".vx-gv-fit").addEventListener("click", () => fit(true));
  bar.querySelector(".vx-gv-collapse").addEventListener("click", () => { state.expanded.clear(); setExpanded(); draw(true); });
  bar.querySelector(".vx-gv-expand-matches").addEventListener("click", () => {
    const data = model.get("graph"), ql = search.value.toLowerCase();
    if (!ql) return;
    for (const n of data.nodes) {
      if (!(n.name + " " + n.target + " " + n.module).toLowerCase().includes(ql) || !n.module) continue;
      const ps = n.module.split(".");
      for (let k = 1; k <= ps.length; k++) state.expanded.add(ps.slice(0, k).join("."));
    }
    setExpanded();
    draw(true);
  });
  foldBox.addEventListener("change", () => { model.set("fold", foldBox.checked); model.save_changes(); draw(false); });
  const retheme = (t) => {
    theme = t;
    cy.style(style(t));
    frameLayer.theme(t);
    mini.theme(t);
    legend.theme(t);
  };
  const watch = watchTheme(el, theme, retheme);
  legend.draw(model.get("graph"), theme);
  model.on("change:graph", () => { state.expanded = new Set(model.get("expanded")); legend.draw(model.get("graph"), theme); draw(true); });
  model.on("change:expanded", () => { state.expanded = new Set(model.get("expanded")); draw(false); });
  el.__vexplore = { cy, state, visible, layoutView, fit, frames: frameLayer.list, overview: frameLayer.overview,
                    toggle: (id) => toggle(itemOf(id)), held: win.count, has: win.has, marked: win.marked,
                    theme: () => theme, retheme: () => retheme(readTheme(el)), pick: legend.choose,
                    // a box's centre on the page, after bringing it into view (for tests and scripts)
                    show: (id) => { const p = state.lay.pos.get(id); if (p) centre(p.x, p.y); return win.has(id); } };
  const sized = new ResizeObserver(() => {
    watch.check();   // shown at last (a hidden tab, a view attached after rendering): the page's colours now
    cy.resize();
    if (pendingFit !== null) fit(pendingFit);
  });
  sized.observe(body);
  // Cytoscape caches where its container is on the page; JupyterLab scrolls the notebook in a
  // panel of its own, so after a scroll clicks landed beside the boxes. Any scroll (capture
  // phase: scroll events do not bubble) re-reads it, once per frame.
  let moved = false;
  const onScroll = () => {
    if (moved) return;
    moved = true;
    requestAnimationFrame(() => { moved = false; cy.resize(); });
  };
  document.addEventListener("scroll", onScroll, { capture: true, passive: true });
  body.addEventListener("mouseenter", () => cy.resize());
  draw(true);
  return () => {
    sized.disconnect();
    watch.stop();
    legend.destroy();
    document.removeEventListener("scroll", onScroll, { capture: true });
    cy.destroy();
  };
}

export default { render };
