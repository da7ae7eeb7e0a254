// The visible graph for a set of expanded modules: the same rules, ids, labels and order as
// vexplore/ui/graphmodel.py's `visible` (the browser tests compare the two).

function rep(node, expanded) {
  const parts = node.module ? node.module.split(".") : [];
  for (let k = 1; k <= parts.length; k++) {
    const prefix = parts.slice(0, k).join(".");
    if (!expanded.has(prefix)) return "m:" + prefix;
  }
  return node.id;
}

export const parentOf = (path) => (path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "");

function signature(vid, nodes) {
  const base = vid.length - 2 + 1;
  return nodes.map((n) => n.module.slice(base) + "\u0000" + n.target).join("\u0001");
}

function itemOf(vid, ns) {
  const pieces = [...new Set(ns.map((n) => n.piece))].sort((a, b) => a - b);
  const split = ns.some((n) => n.split);
  if (!vid.startsWith("m:")) return { id: vid, kind: "node", label: ns[0].op, count: 1, pieces, split, members: [], parent: ns[0].module };
  return { id: vid, kind: "module", label: vid.slice(2), count: ns.length, pieces, split, members: [], parent: parentOf(vid.slice(2)) };
}

export function visible(model, expanded, fold) {
  const repOf = new Map(), order = [], members = new Map();
  for (const n of model.nodes) {
    const vid = rep(n, expanded);
    repOf.set(n.id, vid);
    if (!members.has(vid)) { members.set(vid, []); order.push(vid); }
    members.get(vid).push(n);
  }
  let items = order.map((vid) => itemOf(vid, members.get(vid)));
  const folded = new Map();
  if (fold) items = foldRuns(items, members, folded);
  const seen = new Set(), edges = [];
  for (const [a, b] of model.edges) {
    let x = repOf.get(a), y = repOf.get(b);
    x = folded.get(x) ?? x; y = folded.get(y) ?? y;
    const key = x + "\u0000" + y;
    if (x !== y && !seen.has(key)) { seen.add(key); edges.push([x, y]); }
  }
  const at = (id) => { const r = repOf.get(id); return folded.get(r) ?? r; };
  const breaks = (model.breaks ?? []).map(([a, b]) => [at(a), at(b)]);
  return { items, edges, groups: groupsOf(items), breaks, repOf, folded };
}

function groupsOf(items) {
  const seen = new Set();
  for (const it of items) {
    const parts = it.parent ? it.parent.split(".") : [];
    for (let k = 1; k <= parts.length; k++) seen.add(parts.slice(0, k).join("."));
  }
  return [...seen];
}

function foldRuns(items, members, folded) {
  const out = [];
  let i = 0;
  while (i < items.length) {
    let j = i + 1;
    if (items[i].kind === "module") {
      const sig = signature(items[i].id, members.get(items[i].id));
      while (j < items.length && items[j].kind === "module" && items[j].parent === items[i].parent
             && signature(items[j].id, members.get(items[j].id)) === sig) j++;
    }
    if (j - i < 2) { out.push(items[i]); i++; continue; }
    const run = items.slice(i, j);
    const fid = "f:" + run[0].id.slice(2);
    const last = run[run.length - 1].id.slice(2).split(".").pop();
    out.push({ id: fid, kind: "fold", label: `${run[0].label}–${last} ×${run.length} identical`,
               count: run.reduce((s, r) => s + r.count, 0),
               pieces: [...new Set(run.flatMap((r) => r.pieces))].sort((a, b) => a - b),
               split: run.some((r) => r.split), members: run.map((r) => r.id.slice(2)), parent: run[0].parent });
    for (const r of run) folded.set(r.id, fid);
    i = j;
  }
  return out;
}
