// The minimap: the whole graph scaled into a small canvas (leaf boxes only: containers would cover them), and
// the viewport as a rectangle; a click centres the view there.
export function minimap(cy, canvas) {
  const ctx = canvas.getContext("2d");
  let queued = false;
  const draw = () => {
    queued = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const bb = cy.elements().boundingBox();
    if (!isFinite(bb.w) || bb.w === 0) return;
    const s = Math.min(canvas.width / bb.w, canvas.height / bb.h);
    const ox = (canvas.width - bb.w * s) / 2, oy = (canvas.height - bb.h * s) / 2;
    const tx = (x) => ox + (x - bb.x1) * s, ty = (y) => oy + (y - bb.y1) * s;
    cy.nodes().forEach((n) => {
      const p = n.position(), w = n.data("w"), h = n.data("h");
      ctx.fillStyle = n.data("colour");
      ctx.fillRect(tx(p.x - w / 2), ty(p.y - h / 2), Math.max(2, w * s), Math.max(1, h * s));
    });
    const e = cy.extent();
    ctx.strokeStyle = "#d69e2e";
    ctx.lineWidth = 2;
    ctx.strokeRect(tx(e.x1), ty(e.y1), e.w * s, e.h * s);
    canvas._scale = { s, x1: bb.x1 - ox / s, y1: bb.y1 - oy / s };
  };
  const request = () => { if (!queued) { queued = true; requestAnimationFrame(draw); } };
  cy.on("viewport add remove position", request);
  canvas.addEventListener("click", (ev) => {
    const m = canvas._scale;
    if (!m) return;
    const r = canvas.getBoundingClientRect();
    const x = (ev.clientX - r.left) / m.s + m.x1, y = (ev.clientY - r.top) / m.s + m.y1;
    cy.pan({ x: cy.width() / 2 - x * cy.zoom(), y: cy.height() / 2 - y * cy.zoom() });
  });
  return request;
}

