// What is drawn on a canvas under Cytoscape's: the frames of expanded modules (parents first)
// and, zoomed far out on a big graph, an overview of every box in their colours.
//
// Frames: as Cytoscape nodes, large boxes defeat its texture caches (170 ms a pan or zoom frame
// at 5,000 nodes and 800 frames, against 35 ms here); as compound nodes they also triple the
// time to add a graph. Overview: with thousands of boxes each under a few pixels, Cytoscape
// spends 150-250 ms a frame re-rasterising them at each new zoom, while a canvas fills the same
// rectangles in a few ms; Cytoscape is paused (a batch: it draws nothing, still hit-tests and
// pans) until the boxes are big enough to read again.
const OVERVIEW_BOXES = 1500;   // at least this many boxes,
const OVERVIEW_PX = 4;         // each under this many pixels high (node boxes are 28 units)

export function underlay(cy, canvas, onOverview = () => {}) {
  let frames = [], boxes = [], queued = false, overview = false;
  let colours = { fill: "rgba(238, 238, 238, 0.45)", stroke: "#bdbdbd", text: "rgba(0, 0, 0, 0.87)" };
  const draw = () => {
    queued = false;
    const pr = window.devicePixelRatio || 1, w = Math.round(cy.width() * pr), h = Math.round(cy.height() * pr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d"), z = cy.zoom(), p = cy.pan(), e = cy.extent();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.setTransform(pr * z, 0, 0, pr * z, pr * p.x, pr * p.y);
    const inView = (f) => f.x2 >= e.x1 && f.x1 <= e.x2 && f.y2 >= e.y1 && f.y1 <= e.y2;
    const shown = frames.filter(inView);
    // one path per colour: a fill per rectangle would cost a pass over its pixels each
    ctx.beginPath();
    for (const f of shown) ctx.rect(f.x1, f.y1, f.x2 - f.x1, f.y2 - f.y1);
    ctx.fillStyle = colours.fill;
    ctx.fill();
    ctx.lineWidth = 1 / z;
    ctx.strokeStyle = colours.stroke;
    ctx.stroke();
    if (overview) {
      const byColour = new Map();
      for (const b of boxes) if (inView(b)) (byColour.get(b.colour) ?? byColour.set(b.colour, []).get(b.colour)).push(b);
      for (const [colour, bs] of byColour) {
        ctx.beginPath();
        for (const b of bs) ctx.rect(b.x1, b.y1, b.x2 - b.x1, Math.max(b.y2 - b.y1, 1 / z));
        ctx.fillStyle = colour;
        ctx.fill();
      }
    }
    if (12 * z < 6) return;
    ctx.font = "12px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = colours.text;
    for (const f of shown) ctx.fillText(f.path, (f.x1 + f.x2) / 2, f.y1 + 3);
  };
  const request = () => { if (!queued) { queued = true; requestAnimationFrame(draw); } };
  const check = () => {
    const want = boxes.length >= OVERVIEW_BOXES && cy.zoom() * 28 < OVERVIEW_PX;
    if (want === overview) return;
    overview = want;
    if (want) cy.startBatch(); else cy.endBatch();
    // its canvases keep the last picture; its container keeps the mouse (wheel, drag, taps)
    for (const c of cy.container().querySelectorAll("canvas")) c.style.visibility = want ? "hidden" : "";
    onOverview(want);
  };
  cy.on("viewport resize", () => { check(); request(); });
  const rect = (c, b) => ({ x1: c.x - b.w / 2, y1: c.y - b.h / 2, x2: c.x + b.w / 2, y2: c.y + b.h / 2 });
  return {
    set(view, lay, colourOf) {
      frames = view.groups.map((g) => ({ path: g, ...rect(lay.pos.get("c:" + g), lay.box.get("c:" + g)) }));
      boxes = view.items.map((it) => ({ colour: colourOf(it), ...rect(lay.pos.get(it.id), lay.box.get(it.id)) }));
      check();
      request();
    },
    list: () => frames,
    boxes: () => boxes,
    overview: () => overview,
    // the frames' colours from the theme (theme.js)
    theme(t) { colours = { fill: t.frameFill, stroke: t.strong, text: t.text }; request(); },
    // everything drawn: boxes and frames
    bounds: () => [...frames, ...boxes].reduce((b, f) => ({ x1: Math.min(b.x1, f.x1), y1: Math.min(b.y1, f.y1),
      x2: Math.max(b.x2, f.x2), y2: Math.max(b.y2, f.y2) }), { x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity }),
    // the innermost frame at a point of the graph (frames nest, parents come first)
    at: (x, y) => frames.filter((f) => f.x1 <= x && x <= f.x2 && f.y1 <= y && y <= f.y2).pop(),
  };
}
