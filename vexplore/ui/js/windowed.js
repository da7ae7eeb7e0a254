// Cytoscape holds a window of a big graph: the elements within a screen or so of the view, not all
// of them. Its cost per frame grows with every element it holds, on screen or not (it walks them
// all to cull, and its layered texture cache measures them all and then gives up on a graph taller
// than a texture): with a 64-layer model open, 2,400 boxes and 2,900 edges, pan and zoom frames
// took 40-100 ms on a loaded 2-core machine. Elements come and go in one batch when the view
// leaves the window; the window spans three screens each way, so that is every screen or so.
//
// What is drawn of the rest stays ours: positions and sizes (the layout), classes set on elements
// ("match", "picked": `addClass` keeps them for elements outside the window too).

export const HOLD_ALL = 1500;   // at most this many elements: hold them all (a small graph never changes hands)
const CHUNK = 800;              // elements added in one frame
const CELL = 1024;              // the grid's cell, in graph units
const MARGIN = 1;               // the window: the view grown by this many views on each side
// Zoomed out, a window holds most of the graph and moves on every step: past ALL_SHARE of the
// elements it takes them all (and keeps them until a window would hold under KEEP_SHARE).
const ALL_SHARE = 0.4, KEEP_SHARE = 0.15;

const bboxOf = (e, pos) => {
  if (e.group === "nodes") {
    const { x, y } = e.position, w = e.data.w / 2 + 4, h = e.data.h / 2 + 4;
    return { x1: x - w, y1: y - h, x2: x + w, y2: y + h };
  }
  const a = pos.get(e.data.source), b = pos.get(e.data.target);
  return { x1: Math.min(a.x, b.x), y1: Math.min(a.y, b.y), x2: Math.max(a.x, b.x), y2: Math.max(a.y, b.y) };
};
const inside = (a, b) => a.x1 >= b.x1 && a.y1 >= b.y1 && a.x2 <= b.x2 && a.y2 <= b.y2;

export function windowed(cy) {
  let els = [], byId = new Map(), grid = null, bounds = null, held = new Set(), region = null, marks = new Map(), whole = false;
  const withMarks = (e) => {
    const m = marks.get(e.data.id);
    return m && m.size ? { ...e, classes: [e.classes ?? "", ...m].join(" ").trim() } : e;
  };
  const query = (r) => {
    const out = new Set();
    const cx1 = Math.floor((Math.max(r.x1, bounds.x1) - bounds.x1) / CELL), cx2 = Math.floor((Math.min(r.x2, bounds.x2) - bounds.x1) / CELL);
    const cy1 = Math.floor((Math.max(r.y1, bounds.y1) - bounds.y1) / CELL), cy2 = Math.floor((Math.min(r.y2, bounds.y2) - bounds.y1) / CELL);
    for (let i = cx1; i <= cx2; i++) for (let j = cy1; j <= cy2; j++) {
      for (const k of grid.get(i * 65536 + j) ?? []) out.add(k);
    }
    const want = new Set();
    for (const k of out) {
      const e = els[k];
      if (!(e.box.x2 >= r.x1 && e.box.x1 <= r.x2 && e.box.y2 >= r.y1 && e.box.y1 <= r.y2)) continue;
      want.add(e.json.data.id);
      if (e.json.group === "edges") { want.add(e.json.data.source); want.add(e.json.data.target); }
    }
    return want;
  };
  // Hold `want`: what left goes at once; what comes, nearest the view first, CHUNK a frame (a view
  // coming out of the overview can need thousands: added at once they made a 150 ms frame).
  let queue = [], queued = false, target = new Set();
  const pump = () => {
    queued = false;
    const batch = queue.splice(0, CHUNK).filter((id) => target.has(id) && !held.has(id));
    if (batch.length) {
      cy.batch(() => { cy.add(batch.map((id) => withMarks(els[byId.get(id)].json))); });
      batch.forEach((id) => held.add(id));
    }
    if (queue.length) { queued = true; requestAnimationFrame(pump); }
  };
  const hold = (want) => {
    target = want;
    const gone = [...held].filter((id) => !want.has(id));
    if (gone.length) {
      cy.batch(() => { cy.collection(gone.map((id) => cy.getElementById(id))).remove(); });
      gone.forEach((id) => held.delete(id));
    }
    const e = cy.extent(), cx = (e.x1 + e.x2) / 2, cy0 = (e.y1 + e.y2) / 2;
    const far = (id) => { const b = els[byId.get(id)].box; return Math.abs((b.x1 + b.x2) / 2 - cx) + Math.abs((b.y1 + b.y2) / 2 - cy0); };
    const come = [...want].filter((id) => !held.has(id)).map((id) => [id, els[byId.get(id)].json.group === "nodes" ? 0 : 1, far(id)]);
    come.sort((a, b) => a[1] - b[1] || a[2] - b[2]);   // nodes first: an edge needs its ends
    queue = come.map((c) => c[0]);
    if (!queued) pump();
  };
  return {
    // Everything there is to draw (Cytoscape JSON, nodes with positions): held at once when small,
    // else from the next `update`.
    set(elements) {
      const pos = new Map(elements.filter((e) => e.group === "nodes").map((e) => [e.data.id, e.position]));
      els = elements.map((json) => ({ json, box: bboxOf(json, pos) }));
      byId = new Map(els.map((e, i) => [e.json.data.id, i]));
      marks = new Map([...marks].filter(([id]) => byId.has(id)));
      region = null;
      whole = false;
      queue = [];
      cy.batch(() => { cy.elements().remove(); });
      held = new Set();
      if (els.length <= HOLD_ALL) {   // at once, in order
        grid = null;
        target = new Set(byId.keys());
        cy.batch(() => { cy.add(els.map((e) => withMarks(e.json))); });
        held = new Set(target);
        return;
      }
      bounds = els.reduce((b, e) => ({ x1: Math.min(b.x1, e.box.x1), y1: Math.min(b.y1, e.box.y1), x2: Math.max(b.x2, e.box.x2),
                                       y2: Math.max(b.y2, e.box.y2) }), { x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity });
      grid = new Map();
      els.forEach((e, k) => {
        const i1 = Math.floor((e.box.x1 - bounds.x1) / CELL), i2 = Math.floor((e.box.x2 - bounds.x1) / CELL);
        const j1 = Math.floor((e.box.y1 - bounds.y1) / CELL), j2 = Math.floor((e.box.y2 - bounds.y1) / CELL);
        for (let i = i1; i <= i2; i++) for (let j = j1; j <= j2; j++) {
          const key = i * 65536 + j;
          (grid.get(key) ?? grid.set(key, []).get(key)).push(k);
        }
      });
    },
    // Hold what the view needs, if it has left the window (or shrunk well inside it). `idle`: the
    // boxes are not drawn (the overview): the window stays as it is.
    update(idle = false) {
      if (!grid || idle || !(cy.width() > 0 && cy.height() > 0)) return;   // idle: the overview draws the boxes
      const e = cy.extent();
      const view = { x1: e.x1, y1: e.y1, x2: e.x2, y2: e.y2 };
      const area = (r) => (r.x2 - r.x1) * (r.y2 - r.y1);
      if (region && inside(view, region) && area(region) <= 16 * (1 + 2 * MARGIN) ** 2 * area(view)) return;
      const m = MARGIN * Math.max(e.w, e.h);
      const next = { x1: e.x1 - m, y1: e.y1 - m, x2: e.x2 + m, y2: e.y2 + m };
      const want = query(next);
      if (whole && want.size > KEEP_SHARE * els.length) return;     // holding all already: cheaper to keep
      if (want.size > ALL_SHARE * els.length) {
        whole = true;
        region = null;
        hold(new Set(byId.keys()));
        return;
      }
      whole = false;
      region = next;
      hold(want);
    },
    has: (id) => held.has(id),
    count: () => held.size,
    all: () => els.map((e) => e.json),
    // A class kept on an element wherever the window is.
    addClass(id, c) {
      if (!byId.has(id)) return;
      (marks.get(id) ?? marks.set(id, new Set()).get(id)).add(c);
      if (held.has(id)) cy.getElementById(id).addClass(c);
    },
    clearClass(c) {
      for (const m of marks.values()) m.delete(c);
      cy.elements("." + c).removeClass(c);
    },
    marked: (c) => [...marks].filter(([, m]) => m.has(c)).map(([id]) => id),
  };
}
