// The legend above the canvas: the pieces, and the graphs with their breaks and recompiles.
// Up to CHIPS_MAX pieces, a chip each; past it (a 64-layer model has 129 pieces: five rows of chips)
// a strip of one bar per piece in its colour, where a click picks a piece and a drag a range, with
// a number box for the piece and a count per outcome. `pick(indices)` is told what was picked.
import { esc, noteLine, pieceRange } from "./details.js";

export const CHIPS_MAX = 20;
const STRIP_W = 420, STRIP_H = 14;

function graphChips(data) {
  const graphs = data.graphs ?? [], notes = data.graph_notes ?? {};
  if (graphs.length < 2 && !Object.values(notes).some((ns) => ns.length)) return "";
  return `<span class="vx-gv-graphs">graphs: ` + graphs.map((g) => {
    const ns = notes[String(g)] ?? [], brk = ns.some((n) => n.kind === "graph break"), rec = ns.some((n) => n.kind === "recompile");
    const title = ns.length ? ns.map(noteLine).join("\n") : `graph ${g}: no graph break ends it and no recompile made it`;
    return `<span class="vx-gv-graph${brk ? " brk" : ""}${rec ? " rec" : ""}" data-graph="${g}" title="${esc(title)}">`
      + `graph ${g}${rec ? " ↻ recompile" : ""}${brk ? " ✂ break" : ""}</span>`;
  }).join("") + `</span>`;
}

function chips(pieces, theme) {
  return `<span>pieces: ` + pieces.map((p) => `<span class="vx-gv-chip" data-piece="${p.index}" `
    + `style="background:${esc(p.colour)};color:${esc(theme.textOn(p.colour))}" title="${esc(p.label)} (${esc(p.outcome)})">${p.index}</span>`).join("")
    + `</span>`;
}

function strip(pieces) {
  const counts = new Map();
  for (const p of pieces) counts.set(p.outcome, [p.colour, (counts.get(p.outcome)?.[1] ?? 0) + 1]);
  const first = pieces[0].index, last = pieces[pieces.length - 1].index;
  return `<span class="vx-gv-pieces">pieces: <canvas class="vx-gv-strip" width="${STRIP_W}" height="${STRIP_H}" `
    + `title="one bar per piece: click one, or drag across a range"></canvas> `
    + `<label>piece <input type="number" class="vx-gv-pick" min="${first}" max="${last}" placeholder="#"></label> `
    + `<span class="vx-gv-muted">of ${pieces.length}:</span>`
    + [...counts].map(([o, [c, n]]) => `<span class="vx-gv-swatch" style="background:${esc(c)}"></span>${n} ${esc(o)}`).join("")
    + `</span>`;
}

export function legend(el, pick, pickGraph) {
  let pieces = [], theme = null, picked = null, from = null, at = null;
  const paint = () => {
    const canvas = el.querySelector(".vx-gv-strip");
    if (!canvas) return;
    const ctx = canvas.getContext("2d"), w = canvas.width / pieces.length;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    pieces.forEach((p, i) => { ctx.fillStyle = p.colour; ctx.fillRect(i * w, 0, Math.max(1, w - (w > 3 ? 1 : 0)), canvas.height); });
    if (picked) {
      const a = pieces.findIndex((p) => p.index === picked[0]), b = pieces.findIndex((p) => p.index === picked[picked.length - 1]);
      ctx.strokeStyle = theme?.text ?? "#000";
      ctx.lineWidth = 2;
      ctx.strokeRect(a * w + 1, 1, (b - a + 1) * w - 2, canvas.height - 2);
    }
  };
  const choose = (list) => {
    picked = list.length ? list : null;
    paint();
    const box = el.querySelector(".vx-gv-pick");
    if (box && list.length === 1) box.value = String(list[0]);
    if (list.length) pick(list);
  };
  const wireStrip = () => {
    const canvas = el.querySelector(".vx-gv-strip"), box = el.querySelector(".vx-gv-pick");
    if (!canvas) return;
    at = (ev) => {
      const r = canvas.getBoundingClientRect(), k = Math.floor(((ev.clientX - r.left) / r.width) * pieces.length);
      return Math.max(0, Math.min(pieces.length - 1, k));
    };
    from = null;
    canvas.addEventListener("mousedown", (ev) => { from = at(ev); ev.preventDefault(); });
    canvas.addEventListener("mousemove", (ev) => {
      const p = pieces[at(ev)];
      canvas.title = `${p.label} (${p.outcome})`;
      if (from !== null) { const [a, b] = [from, at(ev)].sort((x, y) => x - y); picked = pieces.slice(a, b + 1).map((q) => q.index); paint(); }
    });
    box.addEventListener("change", () => {
      const p = pieces.find((q) => q.index === Number(box.value));
      if (p) choose([p.index]);
    });
  };
  const up = (ev) => {   // a drag may end outside the strip
    if (from === null) return;
    const [a, b] = [from, at(ev)].sort((x, y) => x - y);
    from = null;
    choose(pieces.slice(a, b + 1).map((q) => q.index));
  };
  window.addEventListener("mouseup", up);
  return {
    destroy: () => window.removeEventListener("mouseup", up),
    draw(data, t) {
      theme = t ?? theme;
      pieces = Object.values(data.pieces).sort((a, b) => a.index - b.index);
      picked = null;
      el.innerHTML = (pieces.length > CHIPS_MAX ? strip(pieces) : chips(pieces, theme)) + graphChips(data);
      el.querySelectorAll(".vx-gv-chip").forEach((c) => c.addEventListener("click", () => choose([Number(c.dataset.piece)])));
      el.querySelectorAll(".vx-gv-graph").forEach((c) => c.addEventListener("click", () => pickGraph(c.dataset.graph)));
      wireStrip();
      paint();
    },
    theme(t) {
      theme = t;
      el.querySelectorAll(".vx-gv-chip").forEach((c) => { c.style.color = t.textOn(c.style.backgroundColor); });
      paint();
    },
    choose,
  };
}

export { pieceRange };
