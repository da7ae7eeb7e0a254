// The explorer's graph widget (anywidget): a module hierarchy, collapsed by default, laid out
// per expanded level with dagre and drawn with Cytoscape (both MIT); zoom, pan, fit, search, a
// minimap, and a details panel (source line, piece, kernel). `visible` (view.js) mirrors
// vexplore/ui/graphmodel.py's `visible`, which the tests compare it with.
import cytoscape from "cytoscape";
import { visible } from "./view.js";
import { layoutView } from "./layout.js";
import { underlay } from "./underlay.js";
import { minimap } from "./minimap.js";

const SPLIT = "#e45756";
const BREAK = "#b7002e";   // graph breaks: dashed, in a darker red than split ops
const READABLE = 0.8;   // the smallest zoom a first view uses: 11 px labels at 8.8 px
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const pieceRange = (ps) => (ps.length === 1 ? `piece ${ps[0]}` : `pieces ${ps[0]}–${ps[ps.length - 1]}`);

// ---- drawing ------------------------------------------------------------------------------
function colourOf(item, pieces) {
  if (item.split && item.kind === "node") return SPLIT;
  if (item.pieces.length === 1) return pieces[String(item.pieces[0])]?.colour ?? "#888";
  return "#9aa5b1";
}

// ---- why there are several graphs: a break ends graph k, a recompile makes a new graph ----------
const noteLine = (n) => `${n.kind}${n.where ? " at " + n.where : ""}: ${n.reason}${n.code ? " — " + n.code : ""}`;

function noteHtml(n) {
  return `<div class="vx-gv-note"><b>${esc(n.kind)}</b>${n.graph !== null && n.graph !== undefined ? ` (graph ${n.graph})` : ""}`
    + ` at <b title="${esc(n.frame ?? "")}">${esc(n.where ?? "an unknown line")}</b>`
    + `${n.code ? ` <code>${esc(n.code)}</code>` : ""}<div>${esc(n.reason)}</div>`
    + (n.detail ? `<details><summary>Dynamo's words</summary><pre>${esc(n.detail)}</pre></details>` : "") + `</div>`;
}

function graphChips(data) {
  const graphs = data.graphs ?? [], notes = data.graph_notes ?? {};
  if (graphs.length < 2 && !Object.values(notes).some((ns) => ns.length)) return "";
  return `<div class="vx-gv-graphs">graphs: ` + graphs.map((g) => {
    const ns = notes[String(g)] ?? [], brk = ns.some((n) => n.kind === "graph break"), rec = ns.some((n) => n.kind === "recompile");
    const title = ns.length ? ns.map(noteLine).join("\n") : `graph ${g}: no graph break ends it and no recompile made it`;
    return `<span class="vx-gv-graph${brk ? " brk" : ""}${rec ? " rec" : ""}" data-graph="${g}" title="${esc(title)}">`
      + `graph ${g}${rec ? " ↻ recompile" : ""}${brk ? " ✂ break" : ""}</span>`;
  }).join("") + `</div>`;
}

function elements(view, lay, pieces, info) {
  const els = [];
  for (const it of view.items) {
    const b = lay.box.get(it.id), p = lay.pos.get(it.id);
    els.push({ group: "nodes", data: { id: it.id, label: b.text, kind: it.kind, w: b.w, h: b.h,
               colour: colourOf(it, pieces), border: it.split ? SPLIT : "#2d3748" },
               position: { x: p.x, y: p.y }, classes: it.kind });
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
const STYLE = [
  { selector: "node", style: { shape: "round-rectangle", width: "data(w)", height: "data(h)", label: "data(label)",
      "text-wrap": "wrap", "text-valign": "center", "font-size": 11, "font-family": "sans-serif", color: "#fff",
      "background-color": "data(colour)", "border-width": 1, "border-color": "data(border)", "min-zoomed-font-size": 6 } },
  { selector: "node.module", style: { "border-width": 2, "background-opacity": 0.85 } },
  { selector: "node.fold", style: { "border-width": 4, "border-style": "double", "background-opacity": 0.85 } },
  { selector: "node.match", style: { "overlay-color": "#ffd400", "overlay-opacity": 0.45, "overlay-padding": 4 } },
  { selector: "node.break", style: { "border-width": 3, "border-style": "dashed", "border-color": BREAK } },
  { selector: "node.picked", style: { "border-width": 4, "border-color": "#ffd400" } },
  { selector: "edge", style: { width: 1.2, "line-color": "#a0aec0", "target-arrow-color": "#a0aec0",
      "target-arrow-shape": "triangle", "curve-style": "straight", "arrow-scale": 0.8 } },
  { selector: "edge.break", style: { width: 2.5, "line-style": "dashed", "line-color": BREAK, "target-arrow-color": BREAK,
      label: "data(label)", "font-size": 10, color: BREAK, "text-background-color": "#fff", "text-background-opacity": 0.8 } },
];

// ---- details ------------------------------------------------------------------------------
function pieceRow(piece) {
  const cells = Object.entries(piece.row);
  return `<table class="vx-gv-row"><tr>${cells.map(([k]) => `<th>${esc(k)}</th>`).join("")}</tr>`
       + `<tr data-piece="${piece.index}">${cells.map(([, v]) => `<td>${esc(v)}</td>`).join("")}</tr></table>`;
}

function nodeDetails(n, data) {
  const piece = data.pieces[String(n.piece)];
  const code = n.kernel ? data.kernels[String(n.piece)]?.[n.kernel] : null;
  return `<div class="vx-gv-title">${esc(n.name)} <code>${esc(n.target)}</code></div>`
    + `<div>module <code>${esc(n.module || "(top level)")}</code> · ${esc(n.shape ?? "")} ${esc(n.dtype ?? "")}</div>`
    + `<div class="vx-gv-source">source <b>${esc(n.source ?? "unknown")}</b>${n.line ? ` <code>${esc(n.line)}</code>` : ""}</div>`
    + `<div>${esc(piece?.label ?? "")} (${esc(piece?.outcome ?? "")})</div>${piece ? pieceRow(piece) : ""}`
    + (n.kernel ? `<div class="vx-gv-kernel">kernel <code>${esc(n.kernel)}</code></div>`
       : `<div>${n.split ? "a split op: runs eagerly between pieces, no generated kernel"
                         : "no generated kernel names it (its piece ran eagerly, or Inductor's code was not kept)"}</div>`)
    + (code ? `<pre class="vx-gv-code">${esc(code)}</pre>` : "");
}

function groupDetails(it, data) {
  const rows = it.pieces.map((p) => data.pieces[String(p)]).filter(Boolean).map(pieceRow).join("");
  const what = it.kind === "fold" ? `${it.members.length} identical modules: ${it.members.join(", ")}` : `module ${it.label}`;
  return `<div class="vx-gv-title">${esc(what)}</div><div>${it.count} nodes in ${esc(pieceRange(it.pieces))}`
    + ` — click the box to ${it.kind === "fold" ? "open the first" : "expand it"}</div>${rows}`;
}

// ---- the widget ---------------------------------------------------------------------------
function toolbar(el) {
  const bar = document.createElement("div");
  bar.className = "vx-gv-bar";
  bar.innerHTML = `<input class="vx-gv-search" placeholder="search op or module (Enter: next)" size="30">`
    + `<button class="vx-gv-fit" title="fit the graph">fit</button>`
    + `<button class="vx-gv-expand-matches" title="expand the modules holding the matches">expand to matches</button>`
    + `<button class="vx-gv-collapse" title="collapse every module">collapse all</button>`
    + `<label><input type="checkbox" class="vx-gv-fold"> fold identical</label><span class="vx-gv-status"></span>`;
  el.appendChild(bar);
  return bar;
}

function render({ model, el }) {
  el.classList.add("vx-gv");
  const bar = toolbar(el);
  const legend = document.createElement("div");
  legend.className = "vx-gv-legend";
  const body = document.createElement("div");
  body.className = "vx-gv-body";
  body.innerHTML = `<canvas class="vx-gv-frames"></canvas><div class="vx-gv-cy"></div>`
    + `<canvas class="vx-gv-mini" width="180" height="130"></canvas>`;
  const details = document.createElement("div");
  details.className = "vx-gv-details";
  details.innerHTML = "<i>click a box: a module expands (click its frame to collapse it), a node shows its source line, piece and kernel</i>";
  el.append(legend, body, details);
  const cy = cytoscape({ container: body.querySelector(".vx-gv-cy"), style: STYLE,
                         minZoom: 0.001, maxZoom: 4, boxSelectionEnabled: false,
                         layout: { name: "preset" } });   // positions come from layoutView
  const state = { expanded: new Set(model.get("expanded")), view: null, matches: [], at: 0, timings: {} };
  const redrawMini = minimap(cy, body.querySelector(".vx-gv-mini"));
  const frameLayer = underlay(cy, body.querySelector(".vx-gv-frames"));
  const status = bar.querySelector(".vx-gv-status");
  const foldBox = bar.querySelector(".vx-gv-fold");
  foldBox.checked = model.get("fold");

  const cache = new Map();   // per-level layouts, reused while a level's contents stay the same
  const draw = (fitted) => {
    const t0 = performance.now();
    const data = model.get("graph");
    state.view = visible(data, state.expanded, foldBox.checked);
    const lay = layoutView(state.view, cache);
    const t1 = performance.now();
    cy.batch(() => { cy.elements().remove(); cy.add(elements(state.view, lay, data.pieces, data.break_info)); });
    frameLayer.set(state.view, lay, (it) => colourOf(it, data.pieces));
    if (fitted) fit(true);
    state.timings = { layout_ms: t1 - t0, draw_ms: performance.now() - t0, items: state.view.items.length };
    const breaks = (data.breaks ?? []).length;
    status.textContent = ` ${data.nodes.length} nodes, ${state.view.items.length} boxes shown`
      + (breaks ? `, ${breaks} graph break${breaks > 1 ? "s" : ""} (dashed)` : "");
    highlight(bar.querySelector(".vx-gv-search").value);
    redrawMini();
  };

  // The whole graph (boxes and frames) if it is legible that way, else its top at a legible
  // zoom (the minimap shows the rest): a transformer is tall, and fitted its boxes are specks.
  const bounds = () => {
    const bb = cy.nodes().boundingBox(), fs = frameLayer.list();
    return fs.reduce((b, f) => ({ x1: Math.min(b.x1, f.x1), y1: Math.min(b.y1, f.y1), x2: Math.max(b.x2, f.x2), y2: Math.max(b.y2, f.y2) }),
                     { x1: bb.x1, y1: bb.y1, x2: bb.x2, y2: bb.y2 });
  };
  let pendingFit = null;   // a fit asked for while the widget had no size (not attached, or a hidden tab)
  const fit = (legible) => {
    const b = bounds(), w = b.x2 - b.x1, h = b.y2 - b.y1;
    if (!(cy.width() > 0 && cy.height() > 0)) { pendingFit = legible; return; }
    pendingFit = null;
    if (!isFinite(w) || w <= 0) return;
    let z = Math.min(1.25, (cy.width() - 40) / w, (cy.height() - 40) / h);
    const top = legible && z < READABLE;
    if (top) z = READABLE;
    cy.zoom(z);
    z = cy.zoom();   // clamped to [minZoom, maxZoom]
    cy.pan({ x: cy.width() / 2 - z * (b.x1 + b.x2) / 2, y: top ? 20 - z * b.y1 : cy.height() / 2 - z * (b.y1 + b.y2) / 2 });
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
    const frame = frameLayer.list().find((f) => "c:" + f.path === focus), z = cy.zoom();
    if (frame) cy.pan({ x: cy.width() / 2 - z * (frame.x1 + frame.x2) / 2, y: cy.height() / 2 - z * (frame.y1 + frame.y2) / 2 });
    else cy.center(cy.getElementById(focus).union(cy.getElementById(focus.replace(/^m:/, "f:"))));
  };
  const itemOf = (id) => (id.startsWith("c:") ? { id, kind: "group" } : state.view.items.find((x) => x.id === id));


  function highlight(q) {
    cy.nodes().removeClass("match");
    state.matches = [];
    if (!q) return;
    const data = model.get("graph"), ql = q.toLowerCase();
    const hits = data.nodes.filter((n) => (n.name + " " + n.target + " " + n.module).toLowerCase().includes(ql));
    const shown = new Set(hits.map((n) => { const r = state.view.repOf.get(n.id); return state.view.folded.get(r) ?? r; }));
    state.matches = [...shown];
    shown.forEach((id) => cy.getElementById(id).addClass("match"));
    status.textContent = ` ${hits.length} nodes match "${q}", in ${shown.size} boxes`;
  }

  cy.on("tap", "node", (ev) => {
    const id = ev.target.id(), it = itemOf(id), data = model.get("graph");
    cy.nodes().removeClass("picked");
    ev.target.addClass("picked");
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
    const data = model.get("graph"), info = (data.break_info ?? [])[Number(ev.target.id().slice(1))];
    const reasons = data.break_reasons ?? [];
    details.innerHTML = `<div class="vx-gv-title">graph break</div>Dynamo ended one graph here and started the next;`
      + ` each graph is compiled on its own and Python runs between them. `
      + (info ? noteHtml(info) : `Reasons this compile recorded:`
        + `<ul>${reasons.map((r) => `<li><code style="white-space:pre-wrap">${esc(r)}</code></li>`).join("") || "<li>none recorded</li>"}</ul>`);
  });
  cy.on("tap", (ev) => {   // on the background: a frame collapses its module
    const f = ev.target === cy ? frameLayer.at(ev.position.x, ev.position.y) : null;
    if (!f) return;
    details.innerHTML = `<div class="vx-gv-title">module ${esc(f.path)}</div>collapsed — click its box to expand it again`;
    toggle({ id: "c:" + f.path, kind: "group" });
  });
  const search = bar.querySelector(".vx-gv-search");
  search.addEventListener("input", () => highlight(search.value));
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || !state.matches.length) return;
    const id = state.matches[state.at++ % state.matches.length];
    cy.animate({ center: { eles: cy.getElementById(id) }, zoom: Math.max(cy.zoom(), 0.8) }, { duration: 150 });
  });
  bar.querySelector(".vx-gv-fit").addEventListener("click", () => fit(false));
  bar.querySelector(".vx-gv-collapse").addEventListener("click", () => { state.expanded.clear(); setExpanded(); draw(true); });
  bar.querySelector(".vx-gv-expand-matches").addEventListener("click", () => {
    const data = model.get("graph"), ql = search.value.toLowerCase();
    if (!ql) return;
    for (const n of data.nodes) {
      if (!(n.name + " " + n.target + " " + n.module).toLowerCase().includes(ql) || !n.module) continue;
      const parts = n.module.split(".");
      for (let k = 1; k <= parts.length; k++) state.expanded.add(parts.slice(0, k).join("."));
    }
    setExpanded();
    draw(true);
  });
  foldBox.addEventListener("change", () => { model.set("fold", foldBox.checked); model.save_changes(); draw(false); });
  drawLegend(legend, model, cy, details, () => state.view);
  model.on("change:graph", () => { state.expanded = new Set(model.get("expanded")); drawLegend(legend, model, cy, details, () => state.view); draw(true); });
  model.on("change:expanded", () => { state.expanded = new Set(model.get("expanded")); draw(false); });
  el.__vexplore = { cy, state, visible, layoutView, fit, frames: frameLayer.list, overview: frameLayer.overview, toggle: (id) => toggle(itemOf(id)) };
  const sized = new ResizeObserver(() => {
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
    document.removeEventListener("scroll", onScroll, { capture: true });
    cy.destroy();
  };
}

function drawLegend(legend, model, cy, details, view) {
  const data = model.get("graph"), pieces = Object.values(data.pieces);
  legend.innerHTML = "pieces: " + pieces.map((p) => `<span class="vx-gv-chip" data-piece="${p.index}" `
    + `style="background:${esc(p.colour)}" title="${esc(p.label)} (${esc(p.outcome)})">${p.index}</span>`).join("")
    + graphChips(data);
  legend.querySelectorAll(".vx-gv-graph").forEach((chip) => chip.addEventListener("click", () => {
    const g = chip.dataset.graph, d = model.get("graph"), ns = (d.graph_notes ?? {})[g] ?? [];
    const ids = new Set(d.nodes.filter((n) => n.id.startsWith(`g${g}:`)).map((n) => { const r = view().repOf.get(n.id); return view().folded.get(r) ?? r; }));
    cy.nodes().removeClass("match");
    ids.forEach((id) => cy.getElementById(id).addClass("match"));
    details.innerHTML = `<div class="vx-gv-title">graph ${esc(g)}</div>`
      + (ns.length ? ns.map(noteHtml).join("") : "no graph break ends it and no recompile made it");
  }));
  legend.querySelectorAll(".vx-gv-chip").forEach((chip) => chip.addEventListener("click", () => {
    const idx = Number(chip.dataset.piece);
    cy.nodes().removeClass("match");
    view().items.filter((it) => it.pieces.includes(idx)).forEach((it) => cy.getElementById(it.id).addClass("match"));
    details.innerHTML = pieceRow(model.get("graph").pieces[String(idx)]);
  }));
}

export default { render };
