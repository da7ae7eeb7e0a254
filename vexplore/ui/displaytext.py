"""Text as the UI shows it, never as the data keeps it.

- A notebook cell's code is named ``cell [3], line 18``, not the file IPython compiled the cell
  into (``/tmp/ipykernel_81/2093.py:18``; ``<ipython-input-3-…>`` in a plain IPython shell).
  IPython keeps each code name's execution count (what its own tracebacks print as ``Cell In[3]``);
  ``CellNames.current()`` reads it from the running shell, imported lazily: the engine never sees it.
- Evidence figures to three significant figures with the unit their key names (``compile_s`` in
  seconds, ``hit_rate`` as a percentage), as text; the Advice keeps its full-precision data.
- Local paths left out of an export (``strip_paths``): each absolute path becomes ``…/`` and its
  last part, the file name, so a shared page does not show the user's folders or cache directory.

Pure functions over text and plain data; tested without IPython by giving the names.
"""
from __future__ import annotations

import dataclasses
import functools
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class CellNames:
    """Code names of notebook cells (as Python's frames and Inductor's comments print them) and the
    execution count of each; ``sub(text)`` names every one of them as ``cell [n], line k``."""

    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def current(cls) -> CellNames:
        """The running IPython's cells (none outside IPython)."""
        try:
            from IPython import get_ipython
        except ImportError:
            return cls({})
        compiler = getattr(get_ipython(), "compile", None)
        # IPython's CachingCompiler maps each code name it made to the cell's execution count
        # (format_code_name reads it for tracebacks); it has no public accessor for the whole map.
        counts = getattr(compiler, "_filename_map", None)
        return cls({str(k): int(v) for k, v in dict(counts or {}).items() if isinstance(v, int)})

    @functools.cached_property
    def _compiled(self) -> tuple[tuple[re.Pattern[str], ...], dict[str, int]]:
        return _compiled(tuple(sorted(self.counts.items())))

    def sub(self, text: str) -> str:
        """``text`` with every cell's code name (with its line: ``name:18``, ``File "name", line 18``)
        as ``cell [n], line k``; raw or HTML-escaped; other text unchanged."""
        patterns, forms = self._compiled
        if not patterns or not text:
            return text

        def named(m: re.Match[str]) -> str:
            count = forms.get(m.group("name"))
            if count is None:                 # a file of that shape that is no cell of this kernel
                return m.group(0)
            line = m.group("line")
            return f"cell [{count}]" + (f", line {line}" if line else "")
        for pattern in patterns:
            text = pattern.sub(named, text)
        return text

    def walk(self, obj: Any) -> Any:
        """``obj`` (dicts, lists, tuples, strings: JSON-like data) with ``sub`` applied to every string."""
        if not self.counts:
            return obj
        if isinstance(obj, str):
            return self.sub(obj)
        if isinstance(obj, dict):
            return {k: self.walk(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.walk(v) for v in obj)
        return obj


# What a cell's code name looks like: ipykernel's file (``/tmp/ipykernel_81/2093.py``, or its file
# name alone) and plain IPython's ``<ipython-input-3-9f2c…>`` (raw or HTML-escaped). Text is scanned
# for these shapes and each hit looked up, so the cost does not grow with the number of cells; each
# shape begins with a character the scan can reject at once (a megabyte in about 0.06 s).
_SHAPES = (r"(?:&lt;|<)ipython-input-\d+-[0-9a-f]+(?:&gt;|>)"
           r"|/(?<![\w./-]/)(?:[\w.+@-]+/)*ipykernel_\d+/\d+\.py(?![\w.])"
           r"|\d(?<![\w./-]\d)\d*\.py(?![\w.])")


@functools.lru_cache(maxsize=32)
def _compiled(items: tuple[tuple[str, int], ...]) -> tuple[tuple[re.Pattern[str], ...], dict[str, int]]:
    """Two regexes, a traceback's ``File "name", line k`` then a bare ``name[:k]``, over every
    code-name shape (and, literally, any name of another shape: IPYKERNEL_CELL_NAME can name cells
    anyhow); and a map from each form of each name (full, HTML-escaped, file name alone) to its cell."""
    forms: dict[str, int] = {}
    for name, count in items:
        forms[name] = count
        forms[html.escape(name, quote=True)] = count
        base = os.path.basename(name)
        if base != name and base.endswith(".py"):
            forms.setdefault(base, count)
    if not forms:
        return (), forms
    shapes = re.compile(_SHAPES)
    odd = [f for f in forms if not shapes.fullmatch(f)]
    names = "(?P<name>" + "|".join([_SHAPES, *(re.escape(f) for f in sorted(odd, key=len, reverse=True))]) + ")"
    return (re.compile(r'File (?P<q>"|&quot;)' + names + r"(?P=q), line (?P<line>\d+)"),
            re.compile(names + r"(?::(?P<line>\d+))?")), forms


# -- figures --------------------------------------------------------------------------------------
# Units by the key's ending (the advisor names its figures this way: compile_s, median_ms, first_mb).
_UNITS = (("_ms", "ms"), ("_us", "µs"), ("_s", "s"), ("_mib", "MiB"), ("_mb", "MiB"), ("_gib", "GiB"),
          ("_gb", "GiB"), ("_bytes", "B"), ("_gbps", "GB/s"), ("_tflops", "TFLOP/s"))
_PERCENT = ("rate", "share", "_ci", "spread", "fraction")


def sig3(x: float) -> str:
    """``x`` to three significant figures: 0.3256852 -> ``0.326``, 1234.5 -> ``1230``, 2e-05 -> ``2.00e-05``."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if not 1e-3 <= abs(x) < 1e15:
        return f"{x:.2e}"
    digits = 2 - math.floor(math.log10(abs(x)))
    r = round(x, digits)
    if r and math.floor(math.log10(abs(r))) > math.floor(math.log10(abs(x))):   # 9.996 -> 10.0, not 10.00
        digits -= 1
    return f"{round(x, digits):.{max(digits, 0)}f}"


def unit_of(key: str) -> str:
    """The unit a figure's key names ("" for none; "%" for a share)."""
    k = key.lower()
    if k.endswith(_PERCENT):
        return "%"
    return next((u for end, u in _UNITS if k.endswith(end)), "")


def figure_text(x: float | int, key: str = "") -> str:
    """One number as shown: three significant figures for a float, whole numbers as they are, with its unit."""
    unit = unit_of(key)
    if unit == "%" and isinstance(x, float):
        return f"{sig3(100 * x)}%"
    text = sig3(float(x)) if isinstance(x, float) else str(x)
    return f"{text} {unit}" if unit and unit != "%" else text


def value_text(v: Any, key: str = "", names: CellNames | None = None) -> str:
    """An evidence value as text: numbers by ``figure_text`` (a list of numbers shares one unit),
    strings with cells named, lists and dicts in brackets and braces."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return figure_text(v, key)
    if isinstance(v, str):
        return names.sub(v) if names is not None else v
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {value_text(x, str(k), names)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        nums = bool(v) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
        unit = unit_of(key)
        if nums and unit and unit != "%":
            return "[" + ", ".join(sig3(float(x)) if isinstance(x, float) else str(x) for x in v) + f"] {unit}"
        return "[" + ", ".join(value_text(x, key, names) for x in v) + "]"
    return names.sub(str(v)) if names is not None else str(v)


def evidence_text(evidence: Mapping[str, Any], names: CellNames | None = None) -> dict[str, str]:
    """Every evidence value as the text the views show (``value_text``)."""
    return {k: value_text(v, k, names) for k, v in evidence.items()}


def shown_advice(advice: Sequence[Any] | None, names: CellNames | None = None) -> tuple[Any, ...] | None:
    """Copies of ``advice`` for display: cells named in the message, evidence as text. The copies
    still apply (config, metric and base are the originals'); the originals keep full precision."""
    if advice is None:
        return None
    out = []
    for a in advice:
        if not dataclasses.is_dataclass(a):
            out.append(a)
            continue
        message = names.sub(a.message) if names is not None else a.message
        out.append(dataclasses.replace(a, message=message, evidence=evidence_text(a.evidence or {}, names)))
    return tuple(out)


# -- paths ----------------------------------------------------------------------------------------
# An absolute POSIX path of two or more parts (not a URL's //host/..., not a closing tag, not a date).
_PATH = re.compile(r"(?<![\w:/.<~-])/(?:[\w.+@-]+/)+[\w.+@-]*")
_HOME = re.compile(r"(?<![\w:/.<-])~/(?:[\w.+@-]+/)*[\w.+@-]*")


def strip_paths(text: str) -> str:
    """``text`` with every absolute (or home-relative) local path shortened to ``…/`` and its last part."""
    def short(m: re.Match[str]) -> str:
        last = m.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f"…/{last}"
    return _HOME.sub(short, _PATH.sub(short, text))
