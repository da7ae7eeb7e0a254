"""Shared look of every view: outcome colours, HTML escaping, number formatting."""
from __future__ import annotations

import html
from typing import Any

from ..monitor.report import Piece

# One colour per piece outcome; the graph, the compile-time bars and the tables agree on it.
OUTCOME_COLOURS: dict[str, str] = {
    "compiled": "#4c78a8",
    "memory hit": "#54a24b",
    "disk hit": "#72b7b2",
    "remote hit": "#b279a2",
    "fallback": "#f58518",
    "split op": "#e45756",
}
OUTCOMES = tuple(OUTCOME_COLOURS)


def esc(value: Any) -> str:
    """HTML-escape ``value`` (quotes too): every text that comes from the model goes through here."""
    return html.escape("" if value is None else str(value), quote=True)


def outcome(p: Piece) -> str:
    """What happened to a piece, as one of OUTCOMES (a same_as piece shows its twin's)."""
    if p.kind == "split_op":
        return "split op"
    if p.fallback_reason:
        return "fallback"
    if p.cache in ("memory", "disk", "remote"):
        return f"{p.cache} hit"
    return "compiled"


def seconds(s: float | None) -> str:
    """A duration for people: ``812 µs``, ``25.0 ms``, ``2.48 s``."""
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def short_module(path: str | None) -> str:
    """``L['model'].layers.0.attn_norm`` -> ``layers.0.attn_norm`` (the root is always the model)."""
    if not path:
        return "(top level)"
    if path.startswith("L['") and "']" in path:
        rest = path.split("']", 1)[1].lstrip(".")
        return rest or "(top level)"
    return path


def same_groups(pieces: tuple[Piece, ...] | list[Piece]) -> dict[int, tuple[int, ...]]:
    """Piece index -> indices of every piece sharing its compile (only for groups of 2 or more)."""
    by_key: dict[str, list[int]] = {}
    for p in pieces:
        if p.kind == "compiled" and p.unique_key is not None:
            by_key.setdefault(p.unique_key, []).append(p.index)
    return {i: tuple(g) for g in by_key.values() if len(g) > 1 for i in g}


def same_label(group: tuple[int, ...]) -> str:
    """``(2, 4, 6)`` -> ``piece 2 = 4 = 6``; long groups shortened: ``piece 2 = 4 = 6 = … = 98 (49 pieces)``."""
    if len(group) <= 6:
        return "piece " + " = ".join(str(i) for i in group)
    return "piece " + " = ".join(str(i) for i in group[:3]) + f" = … = {group[-1]} ({len(group)} pieces)"


# -- theme ----------------------------------------------------------------------------------------
# Every colour of the explorer's chrome is one of JupyterLab's CSS variables, so it follows the
# theme (light, dark, high contrast); the fallback after the comma is the light theme's value, for
# pages without the variables (an exported HTML file, a notebook viewer). The outcome colours above
# are data colours: mid-tones that read on both themes, with the text on them chosen by ``text_on``.
def jp(name: str, fallback: str) -> str:
    """``var(--jp-NAME, FALLBACK)``."""
    return f"var(--jp-{name}, {fallback})"


TEXT = jp("content-font-color1", "rgba(0, 0, 0, 0.87)")
MUTED = jp("content-font-color2", "rgba(0, 0, 0, 0.54)")     # 4.6:1 on white, 8.5:1 on dark: never on HEADER
HEADER = jp("layout-color2", "#eeeeee")
CODE_BACKGROUND = jp("cell-editor-background", "#f5f5f5")
BORDER = jp("border-color2", "#e0e0e0")
SELECTED = jp("rendermime-table-row-hover-background", "#e1f5fe")


def legible(name: str, fallback: str, share: int = 70) -> str:
    """Theme colour ``--jp-NAME`` mixed with the text colour (``share`` % of it kept): JupyterLab's own
    accent colours are made for fills, and some fall under 4.5:1 as text (its dark theme's error red
    on grey, its light theme's orange); pulled towards the text colour they pass in both themes."""
    return f"color-mix(in srgb, {jp(name, fallback)} {share}%, {TEXT})"


ERROR = legible("error-color1", "#d32f2f")
WARNING = legible("warn-color0", "#e65100")
INFO = legible("brand-color0", "#0d47a1")
GOOD = legible("success-color0", "#1b5e20")

# Pygments' short token classes -> JupyterLab's editor colours (its CodeMirror theme), each made legible.
_TOKENS = {
    "k kc kd kn kp kr": ("mirror-editor-keyword-color", "#008000", "bold"),
    "kt nb bp": ("mirror-editor-builtin-color", "#008000", ""),
    "nf nc fm": ("mirror-editor-def-color", "#0000ff", ""),
    "nd cp cpf": ("mirror-editor-meta-color", "#aa22ff", ""),
    "c c1 cm ch cs": ("mirror-editor-comment-color", "#408080", "italic"),
    "s s1 s2 sa sb sc sd se sh si sx sr ss dl": ("mirror-editor-string-color", "#ba2121", ""),
    "m mi mf mh mo mb il": ("mirror-editor-number-color", "#008800", ""),
    "o ow": ("mirror-editor-operator-color", "#7800c2", ""),
    "p": ("mirror-editor-punctuation-color", "#0055aa", ""),
    "nn ne": ("mirror-editor-variable-2-color", "#00366d", ""),
    "gi": ("success-color0", "#1b5e20", ""),
    "gd err": ("error-color1", "#d32f2f", ""),
}


def code_css(scope: str = ".vx-code") -> str:
    """CSS for Pygments' HTML with classes (``HtmlFormatter(cssclass="vx-code")``, not inline styles):
    the editor's background and text, tokens in JupyterLab's editor colours."""
    rules = [f"{scope}{{background:{CODE_BACKGROUND};color:{TEXT};padding:4px 6px;border-radius:2px}}",
             f"{scope} pre{{margin:0;background:none;color:inherit;line-height:1.35}}",
             f"{scope} .gh,{scope} .gu{{color:{MUTED};font-weight:bold}}"]
    for classes, (name, fallback, weight) in _TOKENS.items():
        sel = ",".join(f"{scope} .{c}" for c in classes.split())
        extra = {"bold": ";font-weight:bold", "italic": ";font-style:italic"}.get(weight, "")
        rules.append(f"{sel}{{color:{legible(name, fallback)}{extra}}}")
    return "".join(rules)


TABLE_CSS = (f".vx-table{{border-collapse:collapse;font-size:12px;font-family:sans-serif;color:{TEXT}}}"
             f".vx-table th,.vx-table td{{border-bottom:1px solid {BORDER};padding:2px 8px;text-align:left}}"
             f".vx-table th{{background:{HEADER};color:{TEXT}}}"
             ".vx-table td.num{text-align:right;font-variant-numeric:tabular-nums}"
             f".vx-table tr.vx-current{{background:{SELECTED};font-weight:bold}}")

# Plotly draws its text and grid with colours from the figure (``plotly_layout``: a grey that reads on
# both themes, at 4.3:1 short of AA on either); in JupyterLab these rules give them the theme's text
# and border colours (a presentation attribute or inline style loses to !important).
PLOTLY_CSS = (f".vexplore-explorer .js-plotly-plot .main-svg :is(.infolayer,.xaxislayer-above,.yaxislayer-above,"
              f".annotation,.legend) text{{fill:{TEXT}!important}}"
              f".vexplore-explorer .js-plotly-plot .main-svg .gridlayer path,"
              f".vexplore-explorer .js-plotly-plot .main-svg .zerolinelayer path{{stroke:{BORDER}!important}}")

# The static graph (Graphviz SVG inline, ``render.graph_view``): drawn on white with dark labels, so it
# reads anywhere; in the explorer its background gives way to the notebook's and its frame labels and
# edges take the theme's colours (box labels keep the colour ``text_on`` gave them for their fill).
GRAPH_SVG_CSS = (".vx-graph svg g.graph>polygon{fill:transparent;stroke:none}"
                 f".vx-graph svg g.graph>text,.vx-graph svg g.cluster>text{{fill:{TEXT}}}"
                 f".vx-graph svg g.edge path{{stroke:{MUTED}}}"
                 f".vx-graph svg g.edge polygon{{fill:{MUTED};stroke:{MUTED}}}")

# vx.diff's HTML (monitor/diffhtml.py: light colours of its own, as it is shown anywhere) in the explorer
_X = ".vexplore-explorer "
DIFF_CSS = (f"{_X}.vx-diff-table th,{_X}.vx-diff-table td{{border-bottom-color:{BORDER}}}"
            f"{_X}.vx-diff-table th{{background:{HEADER};color:{TEXT}}}"
            f"{_X}.vx-diff-before{{color:{ERROR}}}{_X}.vx-diff-after{{color:{GOOD}}}"
            f"{_X}.vx-diff details summary,{_X}.vx-codediff .hunk{{color:{INFO}}}"
            f"{_X}.vx-diff pre.vx-codediff{{background:{CODE_BACKGROUND};color:{TEXT}}}"
            f"{_X}.vx-codediff .add{{background:color-mix(in srgb, {jp('success-color1', '#4caf50')} 22%, transparent)}}"
            f"{_X}.vx-codediff .del{{background:color-mix(in srgb, {jp('error-color1', '#d32f2f')} 22%, transparent)}}")

# ipywidgets' own tab bar greys its unselected titles (JupyterLab's secondary text on its raised
# colour: 4.4:1 in the light theme, 4.2:1 in the dark one); in the explorer they are text
TABS_CSS = f"{_X}.jupyter-widget-TabPanel>.lm-TabBar .lm-TabBar-tab{{color:{TEXT}}}"

THEME_CSS = TABLE_CSS + code_css() + PLOTLY_CSS + GRAPH_SVG_CSS + DIFF_CSS + TABS_CSS


def theme_style() -> str:
    """``<style>`` with THEME_CSS: once on the page, before any view (the explorer's header carries it)."""
    return f'<style class="vx-theme">{THEME_CSS}</style>'


NEUTRAL_TEXT = "#787878"   # the grey with the best contrast against both white (4.4:1) and #111111 (4.3:1)


def plotly_template() -> dict[str, Any]:
    """A plotly template for every chart (``layout(template=plotly_template(), ...)``), whatever the
    theme: transparent paper and plot (the notebook's background shows through), text in a grey that
    reads on white and on JupyterLab's dark grey, a faint grid. Python cannot read the page's CSS
    variables; in JupyterLab PLOTLY_CSS gives text and grid the theme's own colours."""
    grid = "rgba(128, 128, 128, 0.3)"
    axis = dict(gridcolor=grid, zerolinecolor=grid, linecolor=grid, tickcolor=grid, automargin=True)
    return {"layout": dict(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font=dict(color=NEUTRAL_TEXT),
                           title=dict(font=dict(color=NEUTRAL_TEXT)), legend=dict(bgcolor="rgba(0,0,0,0)"),
                           xaxis=axis, yaxis=axis, colorway=list(OUTCOME_COLOURS.values()) + ["#9d755d", "#bab0ac"])}


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    chans = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in chans]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(fill: str) -> str:
    """``#000000`` or ``#ffffff``, whichever reads better on ``fill`` (a box's label on its colour)."""
    return "#000000" if contrast(fill, "#000000") >= contrast(fill, "#ffffff") else "#ffffff"
