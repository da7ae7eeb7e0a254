"""CacheKey: what a compiled artifact depends on, in named parts that can be compared.

Parts: ``graph`` (normalized structure), ``inputs`` (shapes, dtypes, strides, dynamic dims),
``config`` (compile-relevant fields only), ``versions`` (torch, triton, Python, device and its
capability, vexplore's cache schema), and ``size`` (the static compile size; None = the general
dynamic compile). ``explain(a, b)`` names the parts that differ, ``nearest`` finds the stored
key closest to a missed one.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import metadata
from typing import Any, Iterable, Mapping

import torch

# Bump when the artifact format or the key's meaning changes: old entries become cleanly invalid.
# 3: schema 2 could hold a piece compiled after Inductor's TensorifyScalarRestartAnalysis was taken for
# a failure (a conservative retry that baked in a Python float Dynamo did not guard on: stale values).
# 4: an artifact's header carries the piece's outcome as fields (BuildResult.to_meta: "fallback" as a
# record), no longer the fallback reason as prose.
CACHE_SCHEMA = 4
PARTS = ("graph", "inputs", "config", "versions", "size")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=None)
def versions(device_type: str = "cpu") -> dict[str, str]:
    """The versions an artifact is only valid for."""
    try:
        triton = metadata.version("triton")
    except metadata.PackageNotFoundError:
        triton = "none"
    if device_type == "cuda" and torch.cuda.is_available():
        cap = torch.cuda.get_device_capability()
        device = f"cuda:{torch.cuda.get_device_name()}:sm{cap[0]}{cap[1]}"
    else:
        device = f"{device_type}:{platform.machine()}"
    return {"torch": torch.__version__, "triton": triton,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}", "device": device,
            "schema": str(CACHE_SCHEMA)}


@dataclass(frozen=True)
class CacheKey:
    """The key of one artifact. ``digest`` names it in every tier."""

    graph: str                      # structural hash of the piece's graph
    inputs: str                     # canonical text of the input specs
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    size: int | None = None
    graph_text: str = field(default="", compare=False, repr=False)  # for explain(); not hashed

    def parts(self) -> dict[str, Any]:
        """The named parts the digest is made of."""
        return {"graph": self.graph, "inputs": self.inputs, "config": self.config,
                "versions": self.versions, "size": self.size}

    @cached_property
    def digest(self) -> str:
        # cached_property writes the instance __dict__ directly, so it works on a frozen dataclass
        return digest_of(self.parts())

    def to_dict(self) -> dict[str, Any]:
        """The parts plus the graph text (kept in artifact headers so explain can show nodes)."""
        d = self.parts()
        if self.graph_text:
            d["graph_text"] = self.graph_text
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CacheKey":
        """Inverse of ``to_dict``; raises KeyError/TypeError/ValueError on a malformed dict."""
        size = d.get("size")
        if size is not None and not isinstance(size, int):
            raise ValueError(f"size {size!r} is not an int")
        if not isinstance(d["graph"], str) or not isinstance(d["inputs"], str):
            raise ValueError("graph and inputs must be strings")
        return cls(graph=d["graph"], inputs=d["inputs"], config=dict(d["config"]),
                   versions=dict(d["versions"]), size=size, graph_text=str(d.get("graph_text") or ""))


def digest_of(parts: Mapping[str, Any]) -> str:
    """The digest of a key given as its parts (what every tier names the artifact by)."""
    return _sha(json.dumps({p: parts.get(p) for p in PARTS}, sort_keys=True, default=str))


def _parts(k: CacheKey | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(k, CacheKey):
        return k.parts(), k.graph_text
    return dict(k), str(k.get("graph_text") or "")


def _graph_lines(a: str, b: str, ta: str, tb: str) -> list[str]:
    if not (ta and tb):
        return [f"graph: structure differs ({a[:12]} -> {b[:12]})"]
    la, lb = ta.splitlines(), tb.splitlines()
    if len(la) != len(lb):
        return [f"graph: {len(la)} -> {len(lb)} nodes ({a[:12]} -> {b[:12]})"]
    first = next(i for i, (x, y) in enumerate(zip(la, lb)) if x != y) if la != lb else 0
    return [f"graph: node {first} differs: {la[first][:120]} -> {lb[first][:120]}"]


def _input_lines(a: str, b: str) -> list[str]:
    ia, ib = a.split(";") if a else [], b.split(";") if b else []
    if len(ia) != len(ib):
        return [f"inputs: {len(ia)} -> {len(ib)} inputs ({a[:80]} -> {b[:80]})"]
    return [f"inputs[{i}]: {x} -> {y}" for i, (x, y) in enumerate(zip(ia, ib)) if x != y]


def _show(v: Any) -> str:
    return "<unset>" if v is _UNSET else str(v)


_UNSET = object()


def explain(a: CacheKey | Mapping[str, Any], b: CacheKey | Mapping[str, Any]) -> list[str]:
    """Which parts of two keys differ, from ``a`` to ``b``, one line each.

    E.g. ``config.mode: default -> max-autotune``, ``versions.torch: 2.11.0 -> 2.13.0``,
    ``inputs[0]: T[z0,64|...] -> T[z0,128|...]``, ``size: general -> 16``. Empty when the keys
    are equal.
    """
    (pa, ta), (pb, tb) = _parts(a), _parts(b)
    out: list[str] = []
    for part in PARTS:
        va, vb = pa.get(part), pb.get(part)
        if va == vb:
            continue
        if part == "graph":
            out += _graph_lines(str(va), str(vb), ta, tb)
        elif part == "inputs":
            out += _input_lines(str(va or ""), str(vb or ""))
        elif part == "size":
            out.append(f"size: {'general' if va is None else va} -> {'general' if vb is None else vb}")
        elif isinstance(va, dict) and isinstance(vb, dict):
            for k in sorted(set(va) | set(vb)):
                x, y = va.get(k, _UNSET), vb.get(k, _UNSET)
                if x != y:
                    out.append(f"{part}.{k}: {_show(x)} -> {_show(y)}")
        else:
            out.append(f"{part}: {va} -> {vb}")
    return out


def differing_parts(a: CacheKey | Mapping[str, Any], b: CacheKey | Mapping[str, Any]) -> list[str]:
    """The names of the parts ``explain`` would name, as code reads them: ``graph``, ``size``,
    ``inputs`` (a different count) or ``inputs[i]``, ``config.<field>``, ``versions.<name>``."""
    (pa, _), (pb, _) = _parts(a), _parts(b)
    out: list[str] = []
    for part in PARTS:
        va, vb = pa.get(part), pb.get(part)
        if va == vb:
            continue
        if part == "inputs":
            ia, ib = str(va or "").split(";") if va else [], str(vb or "").split(";") if vb else []
            out += ["inputs"] if len(ia) != len(ib) else [f"inputs[{i}]" for i, (x, y) in enumerate(zip(ia, ib)) if x != y]
        elif isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{part}.{k}" for k in sorted(set(va) | set(vb)) if va.get(k, _UNSET) != vb.get(k, _UNSET)]
        else:
            out.append(part)
    return out


def nearest(key: CacheKey, candidates: Iterable[tuple[str, str, Mapping[str, Any] | CacheKey]]
            ) -> tuple[str, str, list[str], list[str]] | None:
    """The stored key closest to ``key``: (tier, digest, explain(stored, key), differing_parts(stored, key)), or None.

    ``candidates`` are (tier, digest, key or its parts), the digest as the tier names the entry.
    Closest = fewest differing parts, then fewest differing lines; the key itself is skipped.
    """
    best: tuple[tuple[int, int], str, str, list[str], Any] | None = None
    want = key.parts()
    for tier, digest, cand in candidates:
        parts, _ = _parts(cand)
        if digest == key.digest:
            continue
        lines = explain(cand, key)
        score = (sum(parts.get(p) != want[p] for p in PARTS), len(lines))
        if best is None or score < best[0]:
            best = (score, tier, digest, lines, cand)
    return None if best is None else (best[1], best[2], best[3], differing_parts(best[4], key))
