// The widget's colours, every one a JupyterLab CSS variable (`--jp-*`) with the light theme's value
// as the fallback (a page without JupyterLab: a test page, an exported notebook). The DOM parts use
// the variables in CSS (`CSS` below, scoped to the widget); the canvases (Cytoscape's, the frames',
// the minimap's) cannot, so `readTheme` resolves the variables to colours and `watchTheme` reads
// them again when JupyterLab switches themes (it swaps a stylesheet and sets `data-jp-theme-*` on
// <body>). vexplore/ui/style.py holds the same palette for the Python-built views.

const VARS = {
  text: ["--jp-content-font-color1", "rgba(0, 0, 0, 0.87)"],
  muted: ["--jp-content-font-color2", "rgba(0, 0, 0, 0.54)"],
  bg: ["--jp-layout-color0", "#ffffff"],
  panel: ["--jp-layout-color1", "#ffffff"],
  raised: ["--jp-layout-color2", "#eeeeee"],
  border: ["--jp-border-color2", "#e0e0e0"],
  strong: ["--jp-border-color1", "#bdbdbd"],
  ink: ["--jp-ui-font-color0", "#000000"],            // black in a light theme, white in a dark one
  inverse: ["--jp-ui-inverse-font-color0", "#ffffff"], // the other one
  error: ["--jp-error-color1", "#d32f2f"],
  warn: ["--jp-warn-color0", "#e65100"],
  accent: ["--jp-warn-color1", "#ff9800"],             // the search marks and the picked box
  brand: ["--jp-brand-color1", "#1976d2"],             // the minimap's view rectangle
};

// `var(--x, fallback)` mixed with the text colour: theme accents made legible as text (style.legible)
const legibleCss = (name, share = 70) => `color-mix(in srgb, var(${VARS[name][0]}, ${VARS[name][1]}) ${share}%, var(${VARS.text[0]}, ${VARS.text[1]}))`;
const v = (name) => `var(${VARS[name][0]}, ${VARS[name][1]})`;

export const CSS = `
.vx-gv { font-family: sans-serif; font-size: 12px; color: ${v("text")}; }
.vx-gv input, .vx-gv button { background: ${v("panel")}; color: ${v("text")}; border: 1px solid ${v("strong")}; border-radius: 2px; font: inherit; }
.vx-gv button { cursor: pointer; padding: 1px 6px; }
.vx-gv-bar { display: flex; gap: 6px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.vx-gv-body { position: relative; height: 560px; border: 1px solid ${v("border")}; background: ${v("bg")}; }
.vx-gv-cy, .vx-gv-frames { position: absolute; inset: 0; width: 100%; height: 100%; }
.vx-gv-mini { position: absolute; right: 6px; bottom: 6px; background: ${v("panel")}; border: 1px solid ${v("strong")}; cursor: pointer; }
.vx-gv-legend { margin: 2px 0; display: flex; flex-wrap: wrap; align-items: center; gap: 2px 6px; }
.vx-gv-chip { display: inline-block; min-width: 16px; padding: 0 3px; margin: 1px; text-align: center; border-radius: 3px; cursor: pointer; }
.vx-gv-strip { cursor: crosshair; border: 1px solid ${v("strong")}; vertical-align: middle; }
.vx-gv-pick { width: 4.5em; }
.vx-gv-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 3px 0 6px; vertical-align: middle; }
.vx-gv-details { margin-top: 4px; padding: 4px; border: 1px solid ${v("border")}; max-height: 320px; overflow: auto; background: ${v("bg")}; }
.vx-gv-title { font-weight: bold; margin-bottom: 2px; }
.vx-gv-row { border-collapse: collapse; margin: 3px 0; color: ${v("text")}; }
.vx-gv-row th, .vx-gv-row td { border-bottom: 1px solid ${v("border")}; padding: 1px 6px; text-align: left; }
.vx-gv-row th { background: ${v("raised")}; color: ${v("text")}; }
.vx-gv-code, .vx-gv-note pre { max-height: 200px; overflow: auto; background: var(--jp-cell-editor-background, #f5f5f5); color: ${v("text")}; padding: 4px; font-size: 11px; }
.vx-gv-muted { color: ${v("muted")}; }
.vx-gv-graph { display: inline-block; padding: 0 5px; margin: 1px 2px; border: 1px solid ${v("strong")}; border-radius: 3px; cursor: pointer; background: ${v("panel")}; color: ${v("text")}; }
.vx-gv-graph.brk { border: 2px dashed ${legibleCss("error")}; color: ${legibleCss("error")}; }
.vx-gv-graph.rec { background: ${v("raised")}; color: ${legibleCss("warn", 60)}; }
.vx-gv-note { margin: 3px 0; }
.vx-gv-note pre { white-space: pre-wrap; max-height: 160px; }
`;

// ---- colours as values (for canvases) -----------------------------------------------------------
export function parseColour(s) {
  const m = /rgba?\(([^)]*)\)/.exec(s ?? "");
  if (m) {
    const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  const h = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec((s ?? "").trim());
  if (h) {
    const x = h[1].length === 3 ? [...h[1]].map((c) => c + c).join("") : h[1];
    return [0, 2, 4].map((i) => parseInt(x.slice(i, i + 2), 16)).concat(1);
  }
  return [128, 128, 128, 1];
}
const css = ([r, g, b, a]) => (a >= 1 ? `rgb(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)})` : `rgba(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)}, ${a})`);
const over = ([r, g, b, a], [R, G, B]) => [r * a + R * (1 - a), g * a + G * (1 - a), b * a + B * (1 - a), 1];
const luminance = ([r, g, b]) => {
  const ch = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
};
export function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
const mix = (a, b, share) => [0, 1, 2].map((i) => a[i] * share + b[i] * (1 - share)).concat(1);

// Every colour a canvas needs, resolved in `el` (a probe element inherits the page's variables).
export function readTheme(el) {
  const probe = document.createElement("span");
  probe.style.display = "none";
  (el.isConnected ? el : document.body).appendChild(probe);   // a detached element has no computed style
  const raw = {};
  for (const [k, [name, fallback]] of Object.entries(VARS)) {
    probe.style.color = `var(${name}, ${fallback})`;
    raw[k] = parseColour(getComputedStyle(probe).color);
  }
  probe.remove();
  const bg = over(raw.bg, [255, 255, 255]);
  const solid = (c) => over(c, bg);
  const text = solid(raw.text);
  const t = {};
  for (const k of Object.keys(raw)) t[k] = css(solid(raw[k]));
  t.light = luminance(bg) > 0.4;
  t.errorText = css(mix(solid(raw.error), text, 0.7));       // legible: as style.legible does
  t.edge = css(mix(solid(raw.muted), bg, 0.75));
  t.frameFill = css([...mix(solid(raw.raised), bg, 1).slice(0, 3), 0.45]);
  const ink = solid(raw.ink), inverse = solid(raw.inverse);
  // the label colour for a box's fill: whichever of the theme's black and white reads better on it
  const cache = new Map();
  t.textOn = (fill) => {
    if (!cache.has(fill)) {
      const f = parseColour(fill);
      cache.set(fill, css(contrast(ink, f) >= contrast(inverse, f) ? ink : inverse));
    }
    return cache.get(fill);
  };
  t.key = JSON.stringify(raw);
  return t;
}

// Calls `changed(theme)` when the resolved colours change: JupyterLab sets `data-jp-theme-*` on
// <body> and swaps its theme stylesheet (in <head>), in either order; each is checked on the next
// frame and again once the stylesheet has had time to load. Returns the function that stops it.
export function watchTheme(el, theme, changed) {
  let key = theme.key, timers = [];
  const check = () => {
    if (!el.isConnected) return;
    const t = readTheme(el);
    if (t.key !== key) { key = t.key; changed(t); }
  };
  requestAnimationFrame(check);   // rendered before it was on the page: read again once it is
  const soon = () => {
    requestAnimationFrame(check);
    timers.forEach(clearTimeout);
    timers = [150, 500, 1500].map((ms) => setTimeout(check, ms));
  };
  const seen = new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes ?? []) if (n.tagName === "LINK" || n.tagName === "STYLE") n.addEventListener?.("load", check);
    soon();
  });
  seen.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light", "class"] });
  seen.observe(document.head, { childList: true });
  return { stop: () => { seen.disconnect(); timers.forEach(clearTimeout); }, check };
}
