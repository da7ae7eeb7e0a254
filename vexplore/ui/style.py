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
