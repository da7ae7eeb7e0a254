"""The generated code of a piece, syntax-highlighted: Inductor's wrapper (Python) with its kernels
(C++ on CPU, Triton on GPU) pulled out and highlighted in their own language.

Uses Pygments (an IPython dependency) with inline styles, so no stylesheet is needed; without
Pygments the code is shown escaped and plain. Pygments escapes what it highlights.

A piece compiled with post-grad passes (``Piece.passes``) lists them, in the order they ran, with
the post-grad graph before the passes and after each (``Piece.pass_graphs``) as diffs. Where the
explorer also holds the same unique piece compiled without the passes (``pass_pair``), the
generated code without them is diffed against the code with them.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

from ..monitor.report import CompileReport, Piece
from .style import MUTED, code_css, esc

MAX_DIFF_LINES = 400

# Inductor embeds each kernel's source in a raw triple-quoted string of the wrapper module.
_KERNEL = re.compile(r"(\w+) = async_compile\.(\w+)\((?:[^\n]*?)r?'''(.*?)'''", re.S)


def kernels(code: str) -> list[tuple[str, str, str]]:
    """(kernel name, language, source) for every kernel in Inductor's wrapper code."""
    out = []
    for m in _KERNEL.finditer(code):
        kind = m.group(2)
        lang = "cpp" if kind.startswith("cpp") else "python"
        out.append((m.group(1), lang, m.group(3).strip("\n")))
    return out


def highlight(source: str, language: str) -> str:
    """``source`` as HTML with inline colours (``language``: "python" | "cpp" | "diff")."""
    try:
        from pygments import highlight as _hl
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import CppLexer, DiffLexer, PythonLexer
    except ImportError:
        return f'<pre class="vx-code">{esc(source)}</pre>'
    lexer = {"cpp": CppLexer, "diff": DiffLexer}.get(language, PythonLexer)()
    return _hl(source, lexer, HtmlFormatter(nowrap=False, cssclass="vx-code"))


@dataclass(frozen=True)
class PassPair:
    """One unique piece compiled without the post-grad passes (``before``) and with them (``after``),
    each with its report's number in the explorer (1, 2, 3)."""

    before: Piece
    after: Piece
    before_report: int | None
    after_report: int | None


def _has_code(p: Piece) -> bool:
    return p.kind == "compiled" and p.same_as is None and p.compiler == "inductor" and bool(p.code)


def pass_pair(piece: Piece, reports: Sequence[CompileReport], number: int | None = None) -> PassPair | None:
    """``piece`` (of report ``number``) beside the latest piece of ``reports`` with the same unique key
    compiled by Inductor the other way (without passes if ``piece`` ran some, with them if not); None if none."""
    if not _has_code(piece):
        return None
    for i in range(len(reports) - 1, -1, -1):
        other = next((q for q in reports[i].pieces if q.unique_key == piece.unique_key and _has_code(q)
                      and bool(q.passes) != bool(piece.passes)), None)
        if other is not None:
            mine, theirs = (piece, number), (other, i + 1)
            (before, nb), (after, na) = (theirs, mine) if piece.passes else (mine, theirs)
            return PassPair(before, after, nb, na)
    return None


def _diff(a: str, b: str, names: tuple[str, str]) -> tuple[str, int]:
    """(highlighted unified diff of ``a`` -> ``b``, lines changed), cut at MAX_DIFF_LINES."""
    diff = list(difflib.unified_diff(a.splitlines(), b.splitlines(), fromfile=names[0], tofile=names[1], lineterm="", n=2))
    changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    if len(diff) > MAX_DIFF_LINES:
        diff = diff[:MAX_DIFF_LINES] + [f"... {len(diff) - MAX_DIFF_LINES} more diff lines"]
    return (highlight("\n".join(diff), "diff") if diff else "<p><i>no change</i></p>"), changed


def graph_diffs_html(piece: Piece) -> str:
    """The post-grad graph each pass was given against the graph it left, one diff per pass; or
    why there is none (Inductor's own cache served the compile, so the passes did not run)."""
    if not piece.pass_graphs:
        if not piece.passes:
            return ""
        return (f'<div class="vx-pass-graphs-missing" style="color:{MUTED}"><i>Graphs before/after each pass: not seen in '
                "this compile (Inductor's own cache served it, so the passes did not run here).</i></div>")
    parts = []
    for (prev, before), (name, after) in zip(piece.pass_graphs, piece.pass_graphs[1:]):
        body, changed = _diff(before, after, (f"graph given to {name}" if prev == "input" else f"after {prev}", f"after {name}"))
        parts.append(f'<details class="vx-pass-graph" open><summary>{esc(name)}: {changed} line(s) of the post-grad '
                     f"graph changed</summary>{body}</details>")
    first = piece.pass_graphs[0][1]
    parts.append(f'<details class="vx-pass-graph-input"><summary>the post-grad graph the passes were given '
                 f"({first.count(chr(10)) + 1} lines)</summary>{highlight(first, 'python')}</details>")
    return "".join(parts)


def _report(n: int | None) -> str:
    return f"report {n}" if n is not None else "this report"


def passes_html(piece: Piece, pair: PassPair | None = None) -> str:
    """The post-grad passes that ran on ``piece`` and, with ``pair``, the generated code without them
    against the code with them as a diff; "" for a piece that ran none and has no pair."""
    if not piece.passes and pair is None:
        return ""
    ran = piece.passes or (pair.after.passes if pair else ())
    names = ", ".join(f'<b>{esc(n)}</b> <span style="color:{MUTED}" title="uuid {esc(u)}">({esc(u[:24])})</span>'
                      for n, u in ran)
    head = (f"post-grad passes run on this piece, in order: {names}" if piece.passes
            else f"no post-grad passes in this compile; {_report(pair.after_report)} ran {names}")
    parts = [f'<div class="vx-passes" style="margin:4px 0">{head}</div>', graph_diffs_html(piece)]
    if pair is None:
        if piece.code and piece.passes:
            parts.append(f'<div class="vx-passes-missing" style="color:{MUTED}"><i>Generated code without the passes: '
                         "untick “run post-grad passes” and Compile; this view then diffs the code without them "
                         "against the code with them.</i></div>")
        return "".join(parts)
    before = f"{_report(pair.before_report)} (without passes)"
    after = f"{_report(pair.after_report)} (with {', '.join(n for n, _ in pair.after.passes)})"
    body, changed = _diff(pair.before.code or "", pair.after.code or "", (before, after))
    if not changed:
        body = "<p><i>the generated code is the same</i></p>"
    parts.append(f'<details class="vx-passes-diff" open><summary>before/after the passes: generated code of '
                 f"{esc(before)} → {esc(after)}, {changed} line(s) differ</summary>{body}</details>")
    return "".join(parts)


def code_html(piece: Piece, device: str = "cpu", pair: PassPair | None = None) -> str:
    """The piece's generated code: the post-grad passes that ran on it (with ``pair``: the code
    without them against the code with them), each kernel highlighted, then the whole wrapper module."""
    title = f"piece {piece.index} ({esc(piece.name)}), compiler {esc(piece.compiler or '-')}"
    if piece.kind == "split_op":
        return f"<p>{title}: a split op (<code>{esc(', '.join(piece.split_ops))}</code>); it runs eagerly, no generated code.</p>"
    if piece.same_as is not None:
        return f"<p>{title}: shares the compiled code of piece {piece.same_as}; choose that piece to see it.</p>"
    if not piece.code:
        return (f"<p>{title}: no generated code was kept for this piece (loaded from a cache tier that does not hold "
                f"source, or compiled eagerly).</p>{passes_html(piece)}")
    ks = kernels(piece.code)
    lang = "C++" if any(k[1] == "cpp" for k in ks) else ("Triton" if ks else "Python")
    parts = [f"<p>{title} · {len(ks)} kernel(s) in {lang} on {esc(device)}</p>", passes_html(piece, pair)]
    for name, language, src in ks:
        parts.append(f"<div><b>{esc(name)}</b> ({'C++' if language == 'cpp' else 'Triton/Python'})</div>")
        parts.append(highlight(src, language))
    parts.append("<details><summary>whole wrapper module (Python)</summary>")
    parts.append(highlight(piece.code, "python"))
    parts.append("</details>")
    return (f'<style>{code_css()}</style><div class="vx-code-view" style="max-height:600px;overflow:auto;font-size:11px">'
            + "".join(parts) + "</div>")
