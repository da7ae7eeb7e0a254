"""The generated code of a piece, syntax-highlighted: Inductor's wrapper (Python) with its kernels
(C++ on CPU, Triton on GPU) pulled out and highlighted in their own language.

Uses Pygments (an IPython dependency) with inline styles, so no stylesheet is needed; without
Pygments the code is shown escaped and plain. Pygments escapes what it highlights.
"""
from __future__ import annotations

import re

from ..monitor.report import Piece
from .style import esc

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
    """``source`` as HTML with inline colours (``language``: "python" | "cpp")."""
    try:
        from pygments import highlight as _hl
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import CppLexer, PythonLexer
    except ImportError:
        return f'<pre class="vx-code">{esc(source)}</pre>'
    lexer = CppLexer() if language == "cpp" else PythonLexer()
    return _hl(source, lexer, HtmlFormatter(noclasses=True, nowrap=False, cssclass="vx-code", style="default"))


def code_html(piece: Piece, device: str = "cpu") -> str:
    """The piece's generated code: each kernel highlighted, then the whole wrapper module."""
    title = f"piece {piece.index} ({esc(piece.name)}), compiler {esc(piece.compiler or '-')}"
    if piece.kind == "split_op":
        return f"<p>{title}: a split op (<code>{esc(', '.join(piece.split_ops))}</code>); it runs eagerly, no generated code.</p>"
    if piece.same_as is not None:
        return f"<p>{title}: shares the compiled code of piece {piece.same_as}; choose that piece to see it.</p>"
    if not piece.code:
        return f"<p>{title}: no generated code was kept for this piece (loaded from a cache tier that does not hold source, or compiled eagerly).</p>"
    ks = kernels(piece.code)
    lang = "C++" if any(k[1] == "cpp" for k in ks) else ("Triton" if ks else "Python")
    parts = [f"<p>{title} · {len(ks)} kernel(s) in {lang} on {esc(device)}</p>"]
    for name, language, src in ks:
        parts.append(f"<div><b>{esc(name)}</b> ({'C++' if language == 'cpp' else 'Triton/Python'})</div>")
        parts.append(highlight(src, language))
    parts.append("<details><summary>whole wrapper module (Python)</summary>")
    parts.append(highlight(piece.code, "python"))
    parts.append("</details>")
    return '<div class="vx-code-view" style="max-height:600px;overflow:auto;font-size:11px">' + "".join(parts) + "</div>"
