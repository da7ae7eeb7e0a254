"""HTML of the advisor's views, pure and without widget libraries (the snapshot and export use it too):
the advice with its evidence, the top advice line, an Apply's result, the session's alerts, and
the Graph tab's list of graph breaks and recompiles.

Every text from the model, Dynamo or the advisor is escaped here; nothing is trusted as HTML.
"""
from __future__ import annotations

import json
import time
from typing import Any, Sequence

from .style import BORDER, ERROR, GOOD, HEADER, INFO, MUTED, TEXT, WARNING, esc

# theme colours (style.py): JupyterLab's own, made legible as text in light and dark themes
SEVERITY_COLOURS = {"info": INFO, "warning": WARNING, "critical": ERROR}
_ORDER = ("critical", "warning", "info")
EVIDENCE_CHARS = 240      # one evidence value is cut here (the advice object keeps it whole)
TOP_CHARS = 220           # the top advice line's message is cut here (its tooltip has it whole)
ALERTS_SHOWN = 20         # the latest alerts listed, newest first

NO_APPLY_CODE = "no Apply: the change is in your code or torch's config (the message says what to change)"
NO_APPLY_TRACE = ("no Apply: this config needs a new Dynamo trace, which a recompile cannot do; "
                  "compile anew with it: vx.compile(model, advice.config)")


def _colour(severity: str) -> str:
    return SEVERITY_COLOURS.get(severity, TEXT)


def _value(v: Any) -> str:
    """An evidence value as short text: numbers and strings as they are, the rest as JSON."""
    if isinstance(v, float):
        text = f"{v:.4g}"
    elif isinstance(v, str):
        text = v
    else:
        try:
            text = json.dumps(v, default=str)
        except (TypeError, ValueError):
            text = repr(v)
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS - 1] + "…"


def evidence_html(evidence: dict[str, Any] | None) -> str:
    """The figures an advice rests on, as a two-column table ("" when there are none)."""
    if not evidence:
        return ""
    rows = "".join(f'<tr><th style="text-align:left;padding:0 8px 0 0;font-weight:normal;color:{MUTED}">{esc(k)}</th>'
                   f'<td style="font-family:monospace;font-size:11px">{esc(_value(v))}</td></tr>'
                   for k, v in evidence.items())
    return f'<table class="vx-evidence" style="border-collapse:collapse;margin:2px 0 4px 12px">{rows}</table>'


def advice_item_html(a: Any) -> str:
    """One advice: its severity (coloured), code, message, then its evidence."""
    severity, code = getattr(a, "severity", ""), getattr(a, "code", "")
    message = getattr(a, "message", str(a))
    return (f'<div class="vx-advice" data-code="{esc(code)}" data-severity="{esc(severity)}" '
            f'style="border-left:4px solid {_colour(severity)};padding:2px 8px;margin:4px 0;overflow-wrap:anywhere">'
            f'<b style="color:{_colour(severity)}">{esc(severity)} {esc(code)}</b>: {esc(message)}'
            f'{evidence_html(getattr(a, "evidence", None))}</div>')


def advice_html(advice: Sequence[Any] | None, why_none: str = "") -> str:
    """Every advice, most severe first as ``vx.advise`` lists it; ``why_none`` when there is none
    to list (None: no advisor ran)."""
    if advice is None:
        return f"<p><i>{esc(why_none or 'No advice: the advisor did not run.')}</i></p>"
    if not advice:
        return f"<p><i>{esc(why_none or 'The advisor has nothing to suggest for this model.')}</i></p>"
    items = "".join(advice_item_html(a) for a in advice)
    return f'<div class="vx-advice-list">{advice_count_html(advice)}{items}</div>'


def advice_count_html(advice: Sequence[Any]) -> str:
    """``3 advice (1 critical, 2 warning), most severe first``."""
    counts = ", ".join(f"{n} {s}" for s in _ORDER if (n := sum(getattr(a, "severity", "") == s for a in advice)))
    return f'<div style="color:{MUTED}">{len(advice)} advice ({esc(counts)}), most severe first</div>'


def top_advice_html(advice: Sequence[Any] | None, where: str = "the Advice tab") -> str:
    """One line: the most severe advice (``vx.advise`` lists it first), how many more and ``where``
    they all are; "" when there is none."""
    if not advice:
        return ""
    a = advice[0]
    severity, message = getattr(a, "severity", ""), getattr(a, "message", str(a))
    short = message if len(message) <= TOP_CHARS else message[:TOP_CHARS - 1] + "…"
    more = f"1 of {len(advice)}, all in {where}" if len(advice) > 1 else f"in {where}"
    code = esc(getattr(a, "code", ""))
    return (f'<div class="vx-top-advice" title="{esc(message)}" style="margin:2px 0">Top advice ({esc(more)}): '
            f'<b style="color:{_colour(severity)}">{esc(severity)} {code}</b> — {esc(short)}</div>')


def apply_blocked(advice: Any, no_model: str | None = None) -> str | None:
    """Why Apply is off for ``advice`` (None: it can be applied); ``no_model`` is why there is no model."""
    if getattr(advice, "config", None) is None:
        return NO_APPLY_CODE
    if getattr(advice, "metric", None) is None:
        return NO_APPLY_TRACE
    return no_model


def apply_text(result: Any) -> str:
    """``metric: before -> after, kept`` (or ``reverted``): what Advice.apply measured."""
    verdict = "kept" if result.kept else "reverted"
    return f"{result.metric}: {result.before:.4g} -> {result.after:.4g}, {verdict}"


def apply_html(code: str, result: Any) -> str:
    """An Apply's result: the verdict, then its figures before and after in one table (the metric and
    each other figure it watched, ``result.checks``), then what the metric is and how it was measured."""
    colour = GOOD if result.kept else WARNING
    how = getattr(result, "note", "")   # what the metric is and under which config (the checks are in the table)
    return (f'<div class="vx-apply-result" style="margin:4px 0">Applied <b>{esc(code)}</b>: '
            f'<b style="color:{colour}">{esc(apply_text(result))}</b>{figures_html(result)}'
            + (f'<div class="vx-apply-how" style="color:{MUTED}">{esc(how)}</div>' if how else "") + "</div>")


def figures_html(result: Any) -> str:
    """The figures an Apply measured, before and after: its metric (kept or reverted) and each check."""
    th = f'style="text-align:left;padding:1px 8px;background:{HEADER};color:{TEXT}"'
    td = f'style="text-align:right;padding:1px 8px;border-bottom:1px solid {BORDER};font-variant-numeric:tabular-nums"'
    rows = [(result.metric, result.before, result.after, "kept" if result.kept else "reverted")]
    rows += [(c.metric, c.before, c.after, "worse" if c.worse else "within noise") for c in getattr(result, "checks", ())]
    body = "".join(f'<tr data-metric="{esc(m)}"><td style="padding:1px 8px;border-bottom:1px solid {BORDER}">{esc(m)}</td>'
                   f"<td {td}>{b:.4g}</td><td {td}>{a:.4g}</td>"
                   f'<td style="padding:1px 8px;border-bottom:1px solid {BORDER}">{esc(v)}</td></tr>' for m, b, a, v in rows)
    return (f'<table class="vx-apply-figures" style="border-collapse:collapse;margin:3px 0;color:{TEXT}">'
            f"<tr><th {th}>figure</th><th {th}>before</th><th {th}>after</th><th {th}></th></tr>{body}</table>")


def revert_html(code: str, state: str, error: BaseException | None = None) -> str:
    """A Revert's progress (``state``: "running" | "done" | "busy" | "failed") for advice ``code``."""
    text = {"running": f"reverting <b>{esc(code)}</b>: recompiling with the config from before the Apply…",
            "done": f"reverted <b>{esc(code)}</b>: the model runs the config from before the Apply again",
            "busy": f"cannot revert <b>{esc(code)}</b> now: another compile, benchmark or Apply is running"}
    if state == "failed":
        return (f'<div class="vx-revert" style="color:{ERROR}">Reverting {esc(code)} failed: '
                f"{esc(type(error).__name__)}: {esc(error)}</div>")
    return f'<div class="vx-revert"><i>{text[state]}</i></div>'


def alerts_html(alerts: Sequence[Any] | None, why_none: str = "") -> str:
    """The session monitor's alerts, newest first (the latest ALERTS_SHOWN)."""
    head = "<b>Alerts</b> (the session's monitor)"
    if alerts is None:
        return f"<div>{head}: <i>{esc(why_none or 'no session')}</i></div>"
    if not alerts:
        return f"<div>{head}: <i>none so far</i></div>"
    shown = list(alerts)[::-1][:ALERTS_SHOWN]
    items = "".join(
        f'<li class="vx-alert" data-code="{esc(a.code)}"><span style="color:{MUTED}">'
        f'{esc(time.strftime("%H:%M:%S", time.localtime(a.t)))}</span> '
        f'<b style="color:{_colour(a.severity)}">{esc(a.severity)} {esc(a.code)}</b>: {esc(a.message)}</li>'
        for a in shown)
    more = f" — the latest {ALERTS_SHOWN} of {len(alerts)}" if len(alerts) > ALERTS_SHOWN else ""
    return f'<div class="vx-alerts">{head}{esc(more)}, newest first:<ul style="margin:2px 0">{items}</ul></div>'


def explanations_html(rows: Sequence[dict[str, Any]], graphs: Sequence[int] = ()) -> str:
    """The Graph tab's panel: each graph break and recompile (``graphmodel.explanations`` rows) with
    its graph, reason and source line; rows about a graph of the report shown (``graphs``) in bold."""
    if not rows:
        return (f'<div class="vx-explain" style="color:{MUTED}"><b>Breaks and recompiles</b>: none — Dynamo '
                "captured this model whole, once.</div>")
    n_breaks = sum(r["kind"] == "graph break" for r in rows)
    head = (f"<b>Breaks and recompiles</b>: {n_breaks} graph break(s), {len(rows) - n_breaks} recompile(s) "
            "across this model's calls; the graphs of the report shown are in bold.")
    cells = []
    for r in rows:
        bold = "font-weight:bold;" if r["graph"] in graphs else ""
        graph = "?" if r["graph"] is None else str(r["graph"])
        code = f' <code>{esc(r["code"])}</code>' if r.get("code") else ""
        cells.append(f'<tr class="vx-explain-row" data-kind="{esc(r["kind"])}" style="{bold}">'
                     f'<td style="color:{ERROR if r["kind"] == "graph break" else WARNING}">{esc(r["kind"])}</td>'
                     f"<td>{esc(graph)}</td><td>{esc(r['reason'])}</td>"
                     f'<td title="{esc(r.get("frame") or "")}">{esc(r.get("where") or "?")}{code}</td></tr>')
    th = "".join(f'<th style="text-align:left;padding:0 8px 0 0">{t}</th>' for t in ("", "graph", "reason", "where"))
    return (f'<div class="vx-explain" style="margin:4px 0">{head}<table style="border-collapse:collapse;'
            f'font-size:12px"><tr>{th}</tr>{"".join(cells)}</table></div>')
