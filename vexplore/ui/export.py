"""``vx.export_html(obj, path)``: one self-contained HTML file of a report, to keep or send.

The graph and the timeline as inline SVG, the pieces table, the generated code of every unique
piece (collapsible), warnings and advice, the benchmark and the report history where there are
any, the config and versions. Nothing is loaded from the network and no script runs: styles are
in the page, highlighting is inline, sections fold with ``<details>``.
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from .advicehtml import top_advice_html
from .code import code_html
from .snapshot import Subject, details, sections, subject_of, summary
from .style import esc
from .tables import history_table

_PAGE_CSS = """
body { font-family: Helvetica, Arial, sans-serif; font-size: 13px; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
.vx-meta { color: #666; font-size: 11px; margin-bottom: 8px; }
pre.vx-config { background: #f6f8fa; padding: 6px; font-size: 11px; overflow: auto; }
"""


def code_section(subject: Subject) -> str:
    """The generated code of each unique compiled piece, one collapsed section per piece."""
    r = subject.report
    parts = [details(f"piece {p.index} ({p.name}) · {p.compiler or '-'} · {p.nodes} nodes", code_html(p, r.device),
                     open_=False) for p in r.unique_pieces]
    return "".join(parts) or "<p><i>No compiled piece.</i></p>"


def _about(subject: Subject) -> str:
    r = subject.report
    text = json.dumps({"config": r.config, "versions": r.versions, "counters": r.counters}, indent=1, default=str)
    return f'<pre class="vx-config">{esc(text)}</pre>'


def export_document(subject: Subject) -> str:
    """The whole HTML page for ``subject``."""
    r = subject.report
    name = subject.title or "report"
    parts = sections(subject, inline=True)
    parts.insert(2, ("Generated code", code_section(subject)))          # after the pieces table
    if subject.bench is None or not subject.bench.rows:
        parts.append(("Benchmark", "<p><i>No benchmark was run (the explorer's Run benchmark, or vx.benchmark).</i></p>"))
    if len(subject.reports) > 1:
        parts.append((f"Reports ({len(subject.reports)})", history_table(subject.reports, current=r.id)))
    body = "".join(details(t, h) for t, h in parts) + details("Config, versions and counters", _about(subject), False)
    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<title>vexplore — {esc(name)}, report {r.id}</title><link rel="icon" href="data:,">'
            f"<style>{_PAGE_CSS}</style></head><body>"
            f"<h1>vexplore — {esc(name)}</h1>"
            f'<div class="vx-meta">report {r.id} · exported {esc(made)} by vexplore</div>'
            f"{summary(r)}{top_advice_html(subject.advice, 'Warnings and advice below')}{body}</body></html>\n")


def export_html(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` (a CompiledModel, CompileReport or explorer) to ``path`` as one self-contained
    HTML file; returns the path written."""
    out = Path(path).expanduser()
    html = export_document(subject_of(obj))
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
