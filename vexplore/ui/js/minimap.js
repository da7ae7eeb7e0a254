// The minimap: the whole graph scaled into a small canvas (leaf boxes only: containers would cover
// them), and the viewport as a rectangle; a click centres the view there. The boxes are drawn once
// per graph into a picture of their own; a pan or zoom only copies it and draws the rectangle (it
// drew every box on every frame: a sixth of a pan frame's time with thousands of boxes).
export function minimap(cy, canvas) {
  const ctx = canvas.getContext("2d"), picture = document.createElement("canvas");
  picture.width = canvas.width;
  picture.height = canvas.height;
  let queued = false, scale = null, theme = null, boxes = [];
  const paint = () => {
    const p = picture.getContext("2d");
    p.clearRect(0, 0, picture.width, picture.height);
    scale = null;
    if (!boxes.length) return;
    const bb = boxes.reduce((b, r) => ({ x1: Math.min(b.x1, r.x1), y1: Math.min(b.y1, r.y1), x2: Math.max(b.x2, r.x2), y2: Math.max(b.y2, r.y2) }),
                            { x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity });
    const w = bb.x2 - bb.x1, h = bb.y2 - bb.y1;
    if (!(w > 0 && h > 0)) return;
    const s = Math.min(canvas.width / w, canvas.height / h);
    const ox = (canvas.width - w * s) / 2, oy = (canvas.height - h * s) / 2;
    scale = { s, x1: bb.x1 - ox / s, y1: bb.y1 - oy / s };
    for (const r of boxes) {
      p.fillStyle = r.colour;
      p.fillRect(ox + (r.x1 - bb.x1) * s, oy + (r.y1 - bb.y1) * s, Math.max(2, (r.x2 - r.x1) * s), Math.max(1, (r.y2 - r.y1) * s));
    }
  };
  const draw = () => {
    queued = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!scale) return;
    ctx.drawImage(picture, 0, 0);
    const e = cy.extent(), { s, x1, y1 } = scale;
    ctx.strokeStyle = theme?.brand ?? "#1976d2";
    ctx.lineWidth = 2;
    ctx.strokeRect((e.x1 - x1) * s, (e.y1 - y1) * s, e.w * s, e.h * s);
  };
  const request = () => { if (!queued) { queued = true; requestAnimationFrame(draw); } };
  cy.on("viewport resize", request);
  canvas.addEventListener("click", (ev) => {
    if (!scale) return;
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) / scale.s + scale.x1, y = (ev.clientY - r.top) / scale.s + scale.y1;
    cy.pan({ x: cy.width() / 2 - x * cy.zoom(), y: cy.height() / 2 - y * cy.zoom() });
  });
  return {
    // the leaf boxes ({x1, y1, x2, y2, colour}), or the same again in new colours
    set(list, t) { boxes = list; if (t) theme = t; paint(); request(); },
    theme(t) { theme = t; request(); },
  };
}
