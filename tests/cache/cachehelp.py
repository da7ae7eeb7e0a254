"""Helpers of the cache tests: synthetic artifacts and the faults injected into their files."""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from vexplore.cache.artifact import Artifact
from vexplore.cache.keys import CACHE_SCHEMA, CacheKey, versions

HEAD = struct.Struct("<6sIIQ32s")


def key(i: int = 0, **kw) -> CacheKey:
    base = dict(graph=hashlib.sha256(str(i).encode()).hexdigest(), inputs="T[z0,64|64,1|torch.float32|cpu]",
                config={"compiler": "inductor", "mode": "default", "inductor_options": {}},
                versions=versions("cpu"), size=None)
    base.update(kw)
    return CacheKey(**base)


def art(n: int = 1000, seed: int = 0) -> Artifact:
    data = (hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n]
    return Artifact(data, "inductor", {"reason": None})


def truncate(p: Path) -> None:
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)


def flip_data_byte(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[-7] ^= 0xFF
    p.write_bytes(bytes(b))


def garble_header_json(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[HEAD.size] = 0xFF          # the key JSON's opening brace
    p.write_bytes(bytes(b))


def set_schema(p: Path, schema: int = CACHE_SCHEMA + 1) -> None:
    b = bytearray(p.read_bytes())
    struct.pack_into("<I", b, 6, schema)
    p.write_bytes(bytes(b))


def swap(a: Path, b: Path) -> None:
    tmp = a.with_suffix(".swap")
    os.replace(a, tmp)
    os.replace(b, a)
    os.replace(tmp, b)


def artifact_paths(root: Path) -> list[Path]:
    return sorted((root / "artifacts").glob("*/*.vxa"))
