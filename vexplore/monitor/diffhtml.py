"""A report diff as self-contained HTML (``Diff._repr_html_``): one table of changes, grouped by
kind, each code diff folded into a ``<details>`` under its row. Inline CSS only: no script, nothing
fetched, so it shows the same in a notebook, a saved page or a plain browser.

Only the standard library: this lives beside the Diff (monitor/), which imports no UI library.
"""
from __future__ import annotations

import html
from typing import Any

_CSS = """<style>
.vx-diff{font-family:sans-serif;font-size:12px;line-height:1.4;max-width:100%;overflow-x:auto}
.vx-diff-head{margin:4px 0 6px 0}
.vx-diff-table{border-collapse:collapse;font-size:12px}
.vx-diff-table th,.vx-diff-table td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top;font-size:12px}
.vx-diff-table td:nth-child(-n+2){white-space:nowrap}
.vx-diff-table th{background:#f4f4f4}
.vx-diff-kind{display:inline-block;white-space:nowrap;padding:0 6px;border-radius:3px;color:#fff;font-size:11px}
.vx-diff-before{color:#a0282d}.vx-diff-after{color:#1a7f37}
.vx-diff-table td.num{text-align:right;font-variant-numeric:tabular-nums}
.vx-diff details summary{cursor:pointer;color:#0550ae}
.vx-diff pre.vx-codediff{margin:2px 0;max-height:420px;overflow:auto;background:#f6f8fa;font-size:11px;line-height:1.35;padding:4px}
.vx-codediff .add{background:#dafbe1;display:block}.vx-codediff .del{background:#ffebe9;display:block}
.vx-codediff .hunk{color:#8250df;display:block}.vx-codediff .ctx{display:block}
</style>"""
KIND_COLOURS = {"config": "#4c78a8", "key": "#b279a2", "piece": "#f58518", "code": "#54a24b",
                "compile_time": "#9d755d", "counter": "#72b7b2"}
KIND_LABELS = {"compile_time": "compile time"}


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def seconds(s: float) -> str:
    """``812 µs``, ``25.0 ms``, ``2.48 s`` (as the explorer writes durations)."""
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def value(kind: str, v: Any) -> str:
    """One before/after cell: absent as a dash, lists joined, seconds for compile times."""
    if v is None:
        return '<span style="color:#999">—</span>'
    if kind == "compile_time" and isinstance(v, (int, float)):
        return esc(seconds(float(v)))
    if isinstance(v, (list, tuple)):
        return esc(", ".join(map(str, v))) if v else "<i>none</i>"
    return esc(v)


def ratio(kind: str, before: Any, after: Any) -> str:
    if kind in ("compile_time", "counter") and isinstance(before, (int, float)) and isinstance(after, (int, float)) and before:
        return f' <span style="color:#666">(×{after / before:.2g})</span>'
    return ""


def code_block(text: str) -> str:
    """A unified diff, each line coloured by what it is (added, removed, hunk header, context)."""
    out = []
    for line in text.splitlines():
        cls = ("hunk" if line.startswith(("@@", "---", "+++")) else "add" if line.startswith("+")
               else "del" if line.startswith("-") else "ctx")
        out.append(f'<span class="{cls}">{esc(line) or "&nbsp;"}</span>')
    return f'<pre class="vx-codediff">{"".join(out)}</pre>'


def _row(c: Any) -> str:
    colour = KIND_COLOURS.get(c.kind, "#888")
    label = KIND_LABELS.get(c.kind, c.kind)
    row = (f'<tr data-kind="{esc(c.kind)}"><td><span class="vx-diff-kind" style="background:{colour}">{esc(label)}</span></td>'
           f"<td>{esc(c.what)}</td><td class=\"vx-diff-before\">{value(c.kind, c.before)}</td>"
           f'<td class="vx-diff-after">{value(c.kind, c.after)}{ratio(c.kind, c.before, c.after)}</td></tr>')
    if c.kind == "code" and c.detail:
        lines = c.detail.splitlines()
        plus = sum(x.startswith("+") and not x.startswith("+++") for x in lines)
        minus = sum(x.startswith("-") and not x.startswith("---") for x in lines)
        row += (f'<tr class="vx-diff-code"><td></td><td colspan="3"><details><summary>code diff of {esc(c.what)} '
                f"(+{plus} −{minus} lines)</summary>{code_block(c.detail)}</details></td></tr>")
    return row


def diff_html(d: Any) -> str:
    """The HTML of a Diff (duck-typed: ``a_name``, ``b_name``, ``changed``)."""
    counts: dict[str, int] = {}
    for c in d.changed:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    summary = ", ".join(f"{n} {KIND_LABELS.get(k, k)}" for k, n in counts.items())
    head = (f'<div class="vx-diff-head"><b>{esc(d.a_name)}</b> → <b>{esc(d.b_name)}</b>: '
            f"{len(d.changed)} change{'s' if len(d.changed) != 1 else ''}{f' ({summary})' if summary else ''}</div>")
    if not d.changed:
        return f'<div class="vx-diff">{_CSS}{head}<i>the two reports do not differ</i></div>'
    body = "".join(_row(c) for c in d.changed)
    return (f'<div class="vx-diff">{_CSS}{head}<table class="vx-diff-table"><thead><tr><th>kind</th><th>what</th>'
            f"<th>before</th><th>after</th></tr></thead><tbody>{body}</tbody></table></div>")
