"""The explorer in JupyterLab's light and dark themes: every tab shown in each, and the contrast of
its text against what is behind it (WCAG AA: 4.5:1, 3:1 for large text) measured in the page —
HTML text and form controls from getComputedStyle against the background they sit on (ancestors'
backgrounds composited), SVG text (Graphviz, plotly) against its box or the page, and the graph
canvas's labels against their box's fill. Screenshots of each tab in both themes go to docs/
(VEXPLORE_UPDATE_DOCS=1; else artifacts/): theme-<light|dark>-<tab>.png.

JupyterLab starts with its app exposed (``LabApp.expose_app_in_browser``, in the server's config)
so the test switches themes as the Settings menu does: ``apputils:change-theme``.
"""
from __future__ import annotations

import json
import re

import pytest

from browsing import BLOCK_LINES, code_notebook, jupyter_lab, lab_notebook, needs_chromium, shots_dir

pytestmark = [pytest.mark.browser, needs_chromium]

THEMES = ("JupyterLab Light", "JupyterLab Dark")
TABS = ("Graph", "Pieces graph", "Pieces", "Code", "History", "Advice", "Run", "Tune")

NOTEBOOK = code_notebook([
    *BLOCK_LINES,
    "class Blocks(nn.Module):\n",
    "    def __init__(self):\n",
    "        super().__init__()\n",
    "        self.blocks = nn.ModuleList(Block() for _ in range(4))\n",
    "    def forward(self, x):\n",
    "        for b in self.blocks:\n",
    "            x = b(x)\n",
    "        return x\n",
    "cm = vx.compile(Blocks().eval(), vx.CompileConfig(strategy='full'))\n",
    "x = torch.randn(4, 16)\n",
    "with torch.no_grad():\n",
    "    cm(x)\n",
    "ex = vx.explore(cm, x)\n",
    "ex.compile(cm.config, wait=True)    # a second report: History has a row to highlight\n",
    "ex.graph_view.expanded = ['blocks', 'blocks.0']\n",
    "ex"])

# Every visible text in `root` whose contrast falls short, and how many were measured.
CONTRAST = r"""(root) => {
  const parse = (s) => {
    let m = /rgba?\(([^)]*)\)/.exec(s || "");
    if (m) { const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    m = /color\(srgb ([^)]*)\)/.exec(s || "");
    if (m) { const p = m[1].split(/[\s/]+/).filter(Boolean).map(Number); return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    return null;
  };
  const over = (f, b) => [0, 1, 2].map((i) => f[i] * f[3] + b[i] * (1 - f[3])).concat(1);
  const lum = (c) => { const ch = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
                       return 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const page = parse(getComputedStyle(document.body).backgroundColor) || [255, 255, 255, 1];
  const backdrop = (el) => {          // the colour behind el: its and its ancestors' backgrounds, composited
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((b, c) => over(c, b), over(page, [255, 255, 255, 1]));
  };
  const svgBox = (t) => {             // Graphviz: a label on its node's shape
    const g = t.closest("g.node");
    const shape = g && g.querySelector("polygon, path, ellipse");
    const c = shape && parse(getComputedStyle(shape).fill);
    return c && c[3] > 0 ? over(c, backdrop(t.ownerSVGElement)) : backdrop(t.ownerSVGElement);
  };
  const where = (el) => { const w = el.closest("[class*='vx-'], .js-plotly-plot, .widget-label, .jupyter-widgets");
                          return w ? (w.className.baseVal ?? w.className).toString().split(" ").filter(Boolean).slice(0, 2).join(".") : el.tagName; };
  const bad = [];
  let checked = 0, least = Infinity;
  const check = (el, text, fg, bg) => {
    if (!fg || !text.trim()) return;
    const cs = getComputedStyle(el), size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    const r = ratio(over(fg, bg), bg);
    checked++;
    least = Math.min(least, r * 4.5 / need);    // as a multiple of AA's 4.5
    if (r < need) bad.push({ text: text.trim().slice(0, 60), where: where(el), ratio: Math.round(r * 100) / 100, need,
                             fg: cs.color, bg: `rgb(${bg.slice(0, 3).map(Math.round).join(",")})` });
  };
  const shown = (el) => el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })
    && el.getBoundingClientRect().width > 0 && !el.closest("[disabled], .mod-disabled, .jp-mod-hidden, .lm-mod-hidden, .hoverlayer");
  for (const el of root.querySelectorAll("*")) {
    if (!shown(el) || el.closest("script, style, canvas")) continue;
    if (el instanceof SVGElement) {
      if (el.tagName === "text") check(el, el.textContent, parse(getComputedStyle(el).fill), svgBox(el));
      continue;
    }
    if (el.matches("input, select, textarea, button")) {
      const text = el.matches("select") ? el.selectedOptions?.[0]?.textContent ?? "" : el.matches("button") ? el.innerText : el.value;
      if (!el.matches("button")) check(el, text || "", parse(getComputedStyle(el).color), backdrop(el));
    }
    const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("");
    if (own.trim() && !el.matches("input, select, textarea")) check(el, own, parse(getComputedStyle(el).color), backdrop(el));
  }
  return { checked, bad, least: Math.round(least * 100) / 100 };
}"""

# The graph canvas: each box's label on its fill, frame labels on their frame, the break label.
CANVAS = r"""(el) => {
  const v = el.__vexplore, t = v.theme(), bad = [];
  const parse = (s) => { const m = /rgba?\(([^)]*)\)/.exec(s); const p = m[1].split(/[\s,]+/).map(Number); return [p[0], p[1], p[2], p[3] ?? 1]; };
  const over = (f, b) => [0, 1, 2].map((i) => f[i] * f[3] + b[i] * (1 - f[3])).concat(1);
  const lum = (c) => { const ch = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
                       return 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bg = over(parse(getComputedStyle(el.querySelector(".vx-gv-body")).backgroundColor), [255, 255, 255, 1]);
  const nodes = v.cy.nodes();
  let least = Infinity;
  const note = (r, text, where) => { least = Math.min(least, r); if (r < 4.5) bad.push({ text, where, ratio: r }); };
  nodes.forEach((n) => { const fill = over(parse(n.style("background-color")), bg);
                         note(ratio(over(parse(n.style("color")), fill), fill), n.data("label"), "graph box"); });
  const frame = over(parse(t.frameFill), bg);
  note(ratio(over(parse(t.text), frame), frame), "frame label", "graph frame");
  note(ratio(parse(t.errorText), bg), "graph break label", "graph edge");
  return { checked: nodes.length + 2, bad, light: t.light, least: Math.round(least * 100) / 100 };
}"""


@pytest.fixture
def lab_exposed(tmp_path):
    """JupyterLab over tmp_path/nb holding the theme notebook, its app on ``window.jupyterapp``."""
    pytest.importorskip("jupyterlab")
    work = tmp_path / "nb"
    work.mkdir()
    (work / "theme.ipynb").write_text(json.dumps(NOTEBOOK))
    config = tmp_path / ".jupyter"
    config.mkdir()
    (config / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"expose_app_in_browser": True}}))
    with jupyter_lab(work, tmp_path) as url:
        yield url


def switch_theme(page, theme: str) -> None:
    """``apputils:change-theme`` (what Settings -> Theme runs), then wait until the page and the graph
    canvas have taken it."""
    page.evaluate("(theme) => window.jupyterapp.commands.execute('apputils:change-theme', { theme })", theme)
    light = "Light" in theme
    page.wait_for_function("""(light) => document.body.dataset.jpThemeLight === String(light)""", arg=light, timeout=30_000)
    page.wait_for_function("""(light) => { const g = document.querySelector('.vexplore-explorer .vx-gv');
        return g && g.__vexplore.theme().light === light; }""", arg=light, timeout=30_000)
    page.wait_for_timeout(300)


def show_tab(page, ex, title: str):
    """Click the explorer's tab ``title``; the tab's panel."""
    ex.locator(".lm-TabBar-tab", has_text=re.compile(rf"^{re.escape(title)}$")).click()
    page.wait_for_timeout(400)
    return ex.locator(".widget-tab-contents > :not(.lm-mod-hidden)").first


def test_every_tab_reads_in_the_light_and_the_dark_theme(lab_exposed):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    shots = shots_dir(docs=True)
    failures: dict[str, list] = {}
    measured: dict[str, int] = {}
    least: dict[str, float] = {}     # the lowest contrast seen (large text's scaled by 4.5 / 3)
    with lab_notebook(lab_exposed, "theme.ipynb", width=1100, height=1600) as (page, errors):
        ex = page.locator(".vexplore-explorer").first
        ex.locator(".vx-gv-status").wait_for(timeout=180_000)
        ex.locator("table.vx-history tbody tr").nth(1).wait_for(state="attached", timeout=60_000)
        themed = page.evaluate("() => !!document.querySelector('.vexplore-explorer style.vx-theme')")
        for theme in THEMES:
            switch_theme(page, theme)
            name = "light" if "Light" in theme else "dark"
            for tab in TABS:
                panel = show_tab(page, ex, tab)
                if tab == "Code":
                    panel.locator(".vx-code").first.wait_for(timeout=30_000)
                got = panel.evaluate(CONTRAST)
                key = f"{name}/{tab}"
                measured[key], failures[key], least[key] = got["checked"], got["bad"], got["least"]
                if tab == "Graph":
                    canvas = panel.locator(".vx-gv").evaluate(CANVAS)
                    assert canvas["light"] == (name == "light")
                    measured[key] += canvas["checked"]
                    failures[key] += canvas["bad"]
                    least[f"{name}/graph canvas"] = canvas["least"]
                panel.screenshot(path=str(shots / f"theme-{name}-{tab.lower().replace(' ', '-')}.png"))
            # the rest of the explorer: header, summary, controls, charts (in their tab, drawn when opened)
            # plotly's JupyterLab renderer may show a PNG it took of the chart; the chart itself comes back
            # on mouseenter
            show_tab(page, ex, "Compile time")
            charts = ex.locator(".jp-RenderedPlotly >> visible=true").first
            try:
                charts.wait_for(timeout=30_000)
                charts.hover()
                ex.locator(".js-plotly-plot .main-svg >> visible=true").first.wait_for(timeout=30_000)
            except PlaywrightTimeout:
                failures[f"{name}/charts"] = [{"text": "no chart shown", "where": "charts", "ratio": 0, "need": 4.5}]
            else:
                page.wait_for_timeout(300)
                charts.screenshot(path=str(shots / f"theme-{name}-chart.png"))
            got = ex.evaluate(CONTRAST)
            key = f"{name}/explorer"
            measured[key], failures[key], least[key] = got["checked"], got["bad"], got["least"]
    (shots / "theme-contrast.json").write_text(json.dumps({"measured": measured, "least": least, "failures": failures}, indent=1))
    for key in sorted(set(failures) | set(least), key=lambda k: (k.split("/")[0] != "light", k)):
        bad = failures.get(key, [])
        print(f"{key:22s} {measured.get(key, 0):5d} texts, {len(bad)} below AA, lowest {least.get(key, 0):.2f}:1"
              + "".join(f"\n    {b['ratio']:.2f} {b['where']}: {b['text']!r}" for b in bad[:6]))
    assert not [e for e in errors if "vexplore" in e.lower() or "blob:" in e]
    assert all(n > 0 for n in measured.values())
    # the views drawn by this package's graph widget and advice tab
    own = {k: v for k, v in failures.items() if k.split("/")[1] in ("Graph", "Advice")}
    assert not any(own.values()), own
    assert themed, "the explorer's header carries style.theme_style() (<style class=\"vx-theme\">)"
    rest = {k: v for k, v in failures.items() if v}
    assert not rest, rest
