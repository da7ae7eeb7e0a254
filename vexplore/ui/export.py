"""``vx.export_html(obj, path)``: one self-contained HTML file of a report, to keep or send.

The graph and the timeline as inline SVG, the pieces table, the generated code of every unique
piece (collapsible), warnings and advice, the benchmark, the runtime profile (its top kernels and
pieces) and the report history where there are any, the config and versions. Nothing is loaded
from the network and no script runs: styles are in the page, highlighting is inline, sections
fold with ``<details>``.

A page is made to be sent, so it names places as a reader elsewhere can use them: the report by
its number in the explorer, notebook cells as ``cell [n], line k``, and no local paths unless
asked (``include_paths=True``): the cache directory, home and temporary folders, Inductor's
kernel files and the model's source files become ``…/`` and their file name.
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .advicehtml import top_advice_html
from .code import code_html
from .displaytext import CellNames, strip_paths
from .runview import profile_section
from .snapshot import Subject, details, sections, subject_of, summary
from .style import esc
from .tables import history_table
from .tuneview import tune_section

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
    if r.profiles:     # cm.profile (or the explorer's Run tab) ran on this report: where its calls' time went
        parts.append(("Runtime profile", profile_section(r)))
    if r.tunes:        # vx.tune (or the explorer's Tune tab) ran on this model: its best and its trials
        parts.append(("Tune", tune_section(r)))
    if len(subject.reports) > 1:
        parts.append((f"Reports ({len(subject.reports)})", history_table(subject.reports, current=r)))
    body = "".join(details(t, h) for t, h in parts) + details("Config, versions and counters", _about(subject), False)
    made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<title>vexplore — {esc(name)}, report {subject.number}</title><link rel="icon" href="data:,">'
            f"<style>{_PAGE_CSS}</style></head><body>"
            f"<h1>vexplore — {esc(name)}</h1>"
            f'<div class="vx-meta">report {subject.number} · exported {esc(made)} by vexplore</div>'
            f"{summary(subject)}{top_advice_html(subject.shown_advice, 'Warnings and advice below')}{body}</body></html>\n")


def _target(path: str | os.PathLike[str]) -> Path:
    """``path`` as the file to write, its missing parent folders made; ConfigError for a directory, or a
    parent that cannot be one (a file in the way, no permission), naming the path and what to pass."""
    out = Path(path).expanduser()
    where = f"vx.export_html(..., {os.fspath(path)!r})"
    if out.is_dir() or os.fspath(path).endswith(("/", os.sep)):
        raise ConfigError(f"{where}: {str(out)!r} is a directory; pass a file path for the page, "
                          f"e.g. {str(out / 'run.html')!r}.")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"{where}: the folder {str(out.parent)!r} cannot be made, {str(blocker)!r} is a file; "
                          "pass a path inside a directory, e.g. 'run.html'.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{where}: cannot make the folder {str(out.parent)!r} ({e.strerror or e}); "
                          "pass a path inside a directory you can write to, e.g. 'run.html'.") from e
    return out


def export_html(obj: Any, path: str | os.PathLike[str], include_paths: bool = False) -> Path:
    """Write ``obj`` (a CompiledModel, CompileReport or explorer) to ``path`` as one self-contained
    HTML file (missing parent folders are made); returns the path written. Local paths are left out
    (each shortened to ``…/`` and its file name) unless ``include_paths``. A directory, or a path
    that cannot be written, raises ConfigError saying which and what to pass."""
    subject = subject_of(obj)   # a wrong object fails before any folder is made
    out = _target(path)
    html = CellNames.current().sub(export_document(subject))
    if not include_paths:
        html = strip_paths(html)
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"vx.export_html(..., {os.fspath(path)!r}): cannot write {str(out)!r} "
                          f"({e.strerror or e}); pass a file path you can write to, e.g. 'run.html'.") from e
    return out
