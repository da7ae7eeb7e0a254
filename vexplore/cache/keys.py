"""CacheKey: what a compiled artifact depends on, in named parts that can be compared.

Parts: ``graph`` (normalized structure), ``inputs`` (shapes, dtypes, strides, dynamic dims),
``config`` (compile-relevant fields only), ``versions`` (torch, triton, Python, device, schema),
and ``size`` (the static compile size; None = the general dynamic compile).
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

import torch

# Bump when the artifact format or the key's meaning changes: old entries become cleanly invalid.
CACHE_SCHEMA = 1


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
        return {"graph": self.graph, "inputs": self.inputs, "config": self.config,
                "versions": self.versions, "size": self.size}

    @property
    def digest(self) -> str:
        return _sha(json.dumps(self.parts(), sort_keys=True, default=str))

    def to_dict(self) -> dict[str, Any]:
        return self.parts()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CacheKey":
        return cls(graph=d["graph"], inputs=d["inputs"], config=dict(d["config"]),
                   versions=dict(d["versions"]), size=d.get("size"))


def explain(a: CacheKey | dict, b: CacheKey | dict) -> list[str]:
    """Which parts of two keys differ, as lines like ``config.mode: default -> max-autotune``."""
    pa = a.parts() if isinstance(a, CacheKey) else a
    pb = b.parts() if isinstance(b, CacheKey) else b
    out: list[str] = []
    for part in ("graph", "inputs", "config", "versions", "size"):
        va, vb = pa.get(part), pb.get(part)
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            for k in sorted(set(va) | set(vb)):
                if va.get(k) != vb.get(k):
                    out.append(f"{part}.{k}: {va.get(k, '<unset>')} -> {vb.get(k, '<unset>')}")
        elif part == "graph":
            out.append(f"graph: structure differs ({str(va)[:12]} -> {str(vb)[:12]})")
        else:
            out.append(f"{part}: {va} -> {vb}")
    return out
