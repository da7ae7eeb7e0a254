// Layout per expanded level (Model Explorer's idea): each expanded module is a container laid
// out on its own, with its children (boxes and inner containers, already sized) and the edges
// between them lifted to that level; the parent then places the container as one box. A level
// is small even when the graph is not, so dagre stays fast, and expanding a module lays out
// again only the containers on its path (the rest come from `cache`).
import dagre from "@dagrejs/dagre";
import { parentOf } from "./view.js";

export const PAD = 10, LABEL = 18;
const NODESEP = 18, RANKSEP = 28;
// dagre recurses once per node along a chain (it overflows the stack past ~2,000) and takes
// ~0.4 s at 500 boxes: a level with more boxes is laid out by ranks instead.
export const DAGRE_MAX = 300;

const pieceRange = (ps) => (ps.length === 1 ? `piece ${ps[0]}` : `pieces ${ps[0]}–${ps[ps.length - 1]}`);

export function boxOf(item) {
  const text = item.kind === "node" ? item.label : `${item.label}\n${item.count} nodes · ${pieceRange(item.pieces)}`;
  const w = Math.min(360, Math.max(...text.split("\n").map((l) => l.length)) * 7 + 24);
  return { text, w, h: item.kind === "node" ? 28 : 44 };
}

// A level's boxes are indices 0..n-1 (execution order); a layout is their centres and its size.
function dagreLevel(n, size, edges) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: NODESEP, ranksep: RANKSEP, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  for (let i = 0; i < n; i++) { const s = size(i); g.setNode(String(i), { width: s.w, height: s.h }); }
  for (const [a, b] of edges) g.setEdge(String(a), String(b));
  dagre.layout(g);
  const pos = [];
  for (let i = 0; i < n; i++) { const p = g.node(String(i)); pos.push({ x: p.x, y: p.y }); }
  return { pos, w: g.graph().width, h: g.graph().height };
}

// Longest-path ranks over the forward edges (ids come in execution order): one row per rank.
function rankRows(n, edges) {
  const rank = new Array(n).fill(0), preds = Array.from({ length: n }, () => []);
  for (const [i, j] of edges) if (i < j) preds[j].push(i);
  for (let j = 0; j < n; j++) for (const i of preds[j]) rank[j] = Math.max(rank[j], rank[i] + 1);
  const rows = [];
  for (let i = 0; i < n; i++) (rows[rank[i]] ||= []).push(i);
  return rows.filter(Boolean);
}

// The rows centred under each other: a column for a chain (what dagre would draw, at a
// fraction of its cost: most modules are a chain of a few ops), a plain grid past DAGRE_MAX.
function rankLevel(rows, size) {
  const sized = rows.map((row) => ({ row,
    w: row.reduce((s, id) => s + size(id).w, 0) + NODESEP * (row.length - 1),
    h: row.reduce((m, id) => Math.max(m, size(id).h), 0) }));
  const w = sized.reduce((m, r) => Math.max(m, r.w), 0), pos = [];
  let y = 0;
  for (const r of sized) {
    let x = (w - r.w) / 2;
    for (const id of r.row) { const s = size(id); pos[id] = { x: x + s.w / 2, y: y + r.h / 2 }; x += s.w + NODESEP; }
    y += r.h + RANKSEP;
  }
  return { pos, w, h: Math.max(0, y - RANKSEP) };
}

function levels(view) {
  const kids = new Map([["", []]]), up = new Map(), box = new Map();
  for (const g of view.groups) kids.set(g, []);
  for (const g of view.groups) { kids.get(parentOf(g)).push("c:" + g); up.set("c:" + g, parentOf(g)); }
  for (const it of view.items) { kids.get(it.parent).push(it.id); up.set(it.id, it.parent); box.set(it.id, boxOf(it)); }
  const depth = (c) => (c ? c.split(".").length : 0);
  const edges = new Map([...kids.keys()].map((k) => [k, new Set()]));
  for (let [a, b] of [...view.edges, ...view.breaks]) {   // a break keeps the graphs in order
    let ca = up.get(a), cb = up.get(b);
    while (ca !== cb) {
      if (depth(ca) >= depth(cb)) { a = "c:" + ca; ca = parentOf(ca); } else { b = "c:" + cb; cb = parentOf(cb); }
    }
    if (a !== b) edges.get(ca).add(a + "\u0000" + b);
  }
  return { kids, box, edges, depth };
}

// Centres of every item, and the size and label of every box and container ("c:" + path).
export function layoutView(view, cache = new Map()) {
  const { kids, box, edges, depth } = levels(view);
  const size = (id) => box.get(id), local = new Map();
  for (const g of [...[...view.groups].sort((x, y) => depth(y) - depth(x)), ""]) {
    const ids = kids.get(g), at = new Map(ids.map((id, i) => [id, i]));
    const pairs = [...edges.get(g)].map((e) => e.split("\u0000").map((id) => at.get(id)));
    // keyed by structure, not ids: identical modules (a model's layers) share one layout
    const key = ids.map((id) => `${size(id).w}x${size(id).h}`).join(",") + "|" + pairs.join(";");
    let lay = cache.get(key);
    if (!lay) {
      const rows = rankRows(ids.length, pairs);
      lay = ids.length > DAGRE_MAX || rows.length === ids.length ? rankLevel(rows, (i) => size(ids[i]))
        : dagreLevel(ids.length, (i) => size(ids[i]), pairs);
      if (cache.size > 5000) cache.clear();
      cache.set(key, lay);
    }
    local.set(g, lay);
    if (g) box.set("c:" + g, { text: g, w: Math.max(lay.w + 2 * PAD, g.length * 7 + 16), h: lay.h + 2 * PAD + LABEL });
  }
  const pos = new Map();
  const place = (g, ox, oy) => {   // (ox, oy): the top left of level g's content
    const lay = local.get(g), inner = g ? box.get("c:" + g).w - 2 * PAD : lay.w;
    const dx = (inner - lay.w) / 2;
    kids.get(g).forEach((id, i) => {
      const x = ox + dx + lay.pos[i].x, y = oy + lay.pos[i].y;
      pos.set(id, { x, y });
      if (id.startsWith("c:")) { const b = box.get(id); place(id.slice(2), x - b.w / 2 + PAD, y - b.h / 2 + LABEL + PAD); }
    });
  };
  place("", 0, 0);
  return { box, pos };
}
