"""Pure builders of the Tune tab and of a report's tune in an export: trials -> plotly figure / HTML.

``tune_figure(trials, best)``: one point per measured trial (ok and worse; latency, the mean of its medians
over sizes, against its first call: the compile plus one call), the start and the best marked. ``trials_html``:
the trials as a table, the best's row highlighted. ``best_html``: what the best changes from a config (the
model's current one in the tab, the tune's start in an export), its improvement per size with the interval,
why the search stopped and its notes. ``tune_section(report)``: every tune the report keeps, for
``vx.export_html`` (tables only: an export runs no script).

Inputs are the records of monitor/tuning.py (a ``TuneRecord``, ``Trial``s): what a live tune has told so far
(``TuneOptions.on_trial``) and what a saved report holds draw the same.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go

from ..monitor.report import CompileReport
from ..monitor.tuning import Trial, TuneRecord, diff_text, size_name
from .style import ERROR, GOOD, MUTED, OUTCOME_COLOURS, TABLE_CSS, WARNING, esc, plotly_template, seconds

__all__ = ["best_html", "measured", "trials_html", "tune_figure", "tune_section"]

STATUS_COLOURS = {"ok": OUTCOME_COLOURS["compiled"], "worse": "#9d755d"}
BEST_COLOUR = OUTCOME_COLOURS["memory hit"]     # a data colour that reads on both themes
START_COLOUR = "#bab0ac"
STATUS_TEXT = {"ok": GOOD, "worse": WARNING, "pruned": MUTED, "failed-accuracy": ERROR, "crashed": ERROR,
               "timeout": ERROR}
_LAYOUT = dict(template=plotly_template(), height=340, margin=dict(l=60, r=20, t=50, b=50), font=dict(size=11),
               legend=dict(orientation="h", y=-0.25))
_CSS = f"<style>{TABLE_CSS}</style>"


def latency_ms(t: Trial) -> float | None:
    """A trial's latency: the mean of its medians over the sizes measured (None without timings)."""
    return sum(x.median_ms for x in t.timings) / len(t.timings) if t.timings else None


def measured(trials: Iterable[Trial]) -> list[Trial]:
    """The trials the scatter shows: every size timed (ok, or worse than the start), in trial order."""
    return sorted((t for t in trials if t.status in ("ok", "worse") and t.timings and t.first_call_s is not None),
                  key=lambda t: t.number)


def _hover(t: Trial) -> list[str]:
    medians = ", ".join(f"{size_name(x.size)}: {x.median_ms:.4g} ms" for x in t.timings)
    return [f"trial {t.number} ({t.status})", diff_text(t.diff), medians]


def tune_figure(trials: Sequence[Trial], best: int | None, title: str | None = None) -> go.Figure:
    """Latency against first call, one point per measured trial, a trace per status; the start and the best
    (trial number ``best``) marked by traces of their own over their points."""
    fig = go.Figure()
    shown = measured(trials)
    hover = "%{customdata[0]}<br>%{customdata[1]}<br>%{customdata[2]}<br>first call %{x:.2f} s<extra></extra>"
    for status, colour in STATUS_COLOURS.items():
        ts = [t for t in shown if t.status == status]
        if ts:
            fig.add_scatter(name=status, mode="markers", x=[t.first_call_s for t in ts], y=[latency_ms(t) for t in ts],
                            marker=dict(color=colour, size=9), customdata=[_hover(t) for t in ts],
                            hovertemplate=hover)
    for name, number, marker in (("start", 0, dict(symbol="diamond-open", size=15, color=START_COLOUR, line=dict(width=2))),
                                 ("best", best, dict(symbol="star", size=17, color=BEST_COLOUR,
                                                     line=dict(width=1, color="#000000")))):
        t = next((t for t in shown if t.number == number), None)
        if t is not None:
            fig.add_scatter(name=name, mode="markers", x=[t.first_call_s], y=[latency_ms(t)], marker=marker,
                            customdata=[_hover(t)], hovertemplate=hover)
    n = len(trials)
    fig.update_layout(**_LAYOUT, title=title or (f"Tune: {len(shown)} of {n} trial(s) measured" if n else
                                                  "Tune: no trial yet (Start runs vx.tune)"),
                      xaxis=dict(title="first call (compile + one call), s", rangemode="tozero"),
                      yaxis=dict(title="latency, mean median over sizes (ms)", rangemode="tozero"))
    return fig


def trials_html(trials: Sequence[Trial], best: int | None) -> str:
    """The trials as a table (the best first, then in order), the best's row highlighted."""
    if not trials:
        return f'<i style="color:{MUTED}">No trials yet.</i>'
    sizes = list(dict.fromkeys(x.size for t in trials for x in t.timings))
    head = "".join(f"<th>{esc(h)}</th>" for h in ("#", "status", "objective ms", *(f"{size_name(s)} ms" for s in sizes),
                                                  "first call", "diff from the start", "why"))
    rows = []
    for t in sorted(trials, key=lambda t: (t.number != best, t.number)):
        med = t.medians
        cells = [f'<td class="num">{t.number}{" ★" if t.number == best else ""}</td>',
                 f'<td style="color:{STATUS_TEXT.get(t.status, MUTED)}">{esc(t.status)}</td>',
                 f'<td class="num">{_num(t.objective)}</td>',
                 *(f'<td class="num">{_num(med.get(s))}</td>' for s in sizes),
                 f'<td class="num">{esc(seconds(t.first_call_s))}</td>', f"<td>{esc(diff_text(t.diff))}</td>",
                 f'<td style="color:{MUTED}">{esc(t.error or "")}</td>']
        rows.append(f'<tr class="{"vx-current" if t.number == best else ""}" data-trial="{t.number}">{"".join(cells)}</tr>')
    return f'{_CSS}<table class="vx-table vx-tune-trials"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def best_html(record: TuneRecord, against: Mapping[str, Any] | None = None, against_name: str = "the start") -> str:
    """The best: what it changes from ``against`` (a diff as ``config_diff`` gives it; default: the best's diff
    from the tune's start), the improvement per size (start / best) with its interval, why the search stopped,
    the notes."""
    diff = record.best_diff if against is None else against
    what = (f"<b>Best</b> (trial {record.best_trial}): " +
            (f"changes from {esc(against_name)}: <code>{esc(diff_text(diff))}</code>" if diff else
             f"the same as {esc(against_name)}"))
    imp = "".join(f"<li>at {esc(size_name(s))}: <b>{esc(record.improvement_text(s))}</b> (start / best)</li>"
                  for s, _ in record.improvement)
    notes = "".join(f"<li>{esc(n)}</li>" for n in record.notes)
    return (f'<div class="vx-tune-best">{what}'
            + (f"<div>Improvement:</div><ul style='margin:2px 0'>{imp}</ul>" if imp else "")
            + f'<div style="color:{MUTED}">{esc(record.summary())}. Stopped: {esc(record.stopped or "-")}.</div>'
            + (f'<ul style="color:{MUTED};margin:2px 0">{notes}</ul>' if notes else "") + "</div>")


def tune_section(report: CompileReport) -> str:
    """What an export shows of a report's tunes: for each (newest first) the best and the trials table."""
    if not report.tunes:
        return "<p><i>No tune: vx.tune(cm, inputs_by_size) or the explorer's Tune tab runs one.</i></p>"
    parts = []
    for i, rec in enumerate(reversed(report.tunes)):
        head = f"<h4>Tune {len(report.tunes) - i} of {len(report.tunes)} · {esc(rec.device)} · {esc(rec.executor)}</h4>"
        parts.append(head + best_html(rec) + trials_html(rec.trials, rec.best_trial))
    return "".join(parts)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"
