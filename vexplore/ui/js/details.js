// The details panel's HTML: a node (source line, piece, kernel), a module or fold (its pieces rolled
// up into one table), a graph's breaks and recompiles. Every text from the model is escaped.
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
export const pieceRange = (ps) => (ps.length === 1 ? `piece ${ps[0]}` : `pieces ${ps[0]}–${ps[ps.length - 1]}`);
export const ROWS_MAX = 8;   // past this many pieces a table rolls them up (one row per kind of piece)

// as vexplore/ui/style.py's `seconds`
export const seconds = (s) => (s == null ? "-" : s < 1e-3 ? `${(s * 1e6).toFixed(0)} µs` : s < 1 ? `${(s * 1e3).toFixed(1)} ms` : `${s.toFixed(2)} s`);

// `2, 4, 6, …, 126 (63)`: a list of piece numbers, shortened
export function numbers(ps) {
  if (ps.length <= 6) return ps.join(", ");
  return `${ps.slice(0, 3).join(", ")}, …, ${ps[ps.length - 1]} (${ps.length})`;
}

// One table with a row per piece (the pieces' own table rows), or, past ROWS_MAX pieces, one row
// per kind of piece: those with the same kind, outcome, compiler and shared compile, with how many
// there are, their nodes and their compile time summed.
export function piecesTable(indices, data) {
  const pieces = indices.map((p) => data.pieces[String(p)]).filter(Boolean);
  if (!pieces.length) return "";
  if (pieces.length <= ROWS_MAX) {
    const cols = Object.keys(pieces[0].row);
    return `<table class="vx-gv-row"><tr>${cols.map((k) => `<th>${esc(k)}</th>`).join("")}</tr>`
      + pieces.map((p) => `<tr data-piece="${p.index}">${cols.map((k) => `<td>${esc(p.row[k])}</td>`).join("")}</tr>`).join("")
      + `</table>`;
  }
  const groups = new Map();
  for (const p of pieces) {
    const key = [p.kind, p.outcome, p.row.compiler, p.kind === "split_op" ? p.row["split ops"] : p.label.replace(/^piece \d+ = /, "")].join("\u0000");
    (groups.get(key) ?? groups.set(key, []).get(key)).push(p);
  }
  const head = ["pieces", "kind", "outcome", "compiler", "nodes", "compile time", "cache tier", "shares a compile"];
  const rows = [...groups.values()].map((ps) => {
    const idx = ps.map((p) => p.index), nodes = ps.map((p) => p.nodes ?? 0), each = new Set(nodes).size === 1;
    const total = ps.reduce((s, p) => s + (p.compile_s ?? 0), 0), tiers = [...new Set(ps.map((p) => p.row["cache tier"]))];
    const shared = ps[0].kind === "split_op" ? "-" : new Set(ps.map((p) => p.label)).size === 1 && ps[0].label.includes("=") ? esc(ps[0].label) : "-";
    return `<tr data-pieces="${idx.join(" ")}"><td>${esc(numbers(idx))}</td><td>${esc(ps[0].kind)}</td>`
      + `<td><span class="vx-gv-swatch" style="background:${esc(ps[0].colour)}"></span>${esc(ps[0].outcome)}</td>`
      + `<td>${esc(ps[0].row.compiler)}</td><td>${ps.length > 1 && each ? `${nodes[0]} each` : nodes.reduce((a, b) => a + b, 0)}</td>`
      + `<td>${esc(seconds(total))}${ps.length > 1 ? " in all" : ""}</td><td>${esc(tiers.join(", "))}</td><td>${shared}</td></tr>`;
  });
  return `<table class="vx-gv-row vx-gv-rollup"><tr>${head.map((k) => `<th>${esc(k)}</th>`).join("")}</tr>${rows.join("")}</table>`;
}

export function nodeDetails(n, data) {
  const piece = data.pieces[String(n.piece)];
  const code = n.kernel ? data.kernels[String(n.piece)]?.[n.kernel] : null;
  return `<div class="vx-gv-title">${esc(n.name)} <code>${esc(n.target)}</code></div>`
    + `<div>module <code>${esc(n.module || "(top level)")}</code> · ${esc(n.shape ?? "")} ${esc(n.dtype ?? "")}</div>`
    + `<div class="vx-gv-source">source <b>${esc(n.source ?? "unknown")}</b>${n.line ? ` <code>${esc(n.line)}</code>` : ""}</div>`
    + `<div>${esc(piece?.label ?? "")} (${esc(piece?.outcome ?? "")})</div>${piece ? piecesTable([n.piece], data) : ""}`
    + (n.kernel ? `<div class="vx-gv-kernel">kernel <code>${esc(n.kernel)}</code></div>`
       : `<div>${n.split ? "a split op: runs eagerly between pieces, no generated kernel"
                         : "no generated kernel names it (its piece ran eagerly, or Inductor's code was not kept)"}</div>`)
    + (code ? `<pre class="vx-gv-code">${esc(code)}</pre>` : "");
}

// A module or a fold: what it is, its nodes and pieces, and one table of its pieces.
export function groupDetails(it, data) {
  const m = it.members, what = it.kind === "fold"
    ? `${esc(it.label)}</div><div>${m.length} identical modules, ${esc(m[0])} to ${esc(m[m.length - 1])}`
    : `module ${esc(it.label)}`;
  return `<div class="vx-gv-title">${what}</div><div>${it.count} nodes in ${esc(pieceRange(it.pieces))}`
    + ` — click the box to ${it.kind === "fold" ? "open the first" : "expand it"}</div>${piecesTable(it.pieces, data)}`;
}

// ---- why there are several graphs: a break ends graph k, a recompile makes a new graph ----------
export const noteLine = (n) => `${n.kind}${n.where ? " at " + n.where : ""}: ${n.reason}${n.code ? " — " + n.code : ""}`;

export function noteHtml(n) {
  return `<div class="vx-gv-note"><b>${esc(n.kind)}</b>${n.graph !== null && n.graph !== undefined ? ` (graph ${n.graph})` : ""}`
    + ` at <b title="${esc(n.frame ?? "")}">${esc(n.where ?? "an unknown line")}</b>`
    + `${n.code ? ` <code>${esc(n.code)}</code>` : ""}<div>${esc(n.reason)}</div>`
    + (n.detail ? `<details><summary>Dynamo's words</summary><pre>${esc(n.detail)}</pre></details>` : "") + `</div>`;
}

export function breakDetails(info, reasons) {
  return `<div class="vx-gv-title">graph break</div>Dynamo ended one graph here and started the next;`
    + ` each graph is compiled on its own and Python runs between them. `
    + (info ? noteHtml(info) : `Reasons this compile recorded:`
      + `<ul>${reasons.map((r) => `<li><code style="white-space:pre-wrap">${esc(r)}</code></li>`).join("") || "<li>none recorded</li>"}</ul>`);
}
