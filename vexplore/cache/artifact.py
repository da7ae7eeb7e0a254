"""Artifact: a compiled piece as saved (bytes plus what is needed to use them again)."""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from .keys import CACHE_SCHEMA, CacheKey

MAGIC = b"VXART\x00"
_HEAD = struct.Struct("<6sIIQ32s")  # magic, schema, key-json length, data length, sha256(data)


class ArtifactCorrupt(Exception):
    """An encoded artifact failed a check; ``reason`` says which (never loaded)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Artifact:
    """Bytes of a compiled piece (Inductor's binary format) and metadata about how it was made."""

    data: bytes
    compiler: str
    meta: dict[str, Any] = field(default_factory=dict)

    def encode(self, key: CacheKey) -> bytes:
        """Self-describing bytes: header (schema, full key, length, checksum) then data."""
        head = json.dumps({"key": key.to_dict(), "compiler": self.compiler, "meta": self.meta},
                          sort_keys=True, default=str).encode()
        digest = hashlib.sha256(self.data).digest()
        return _HEAD.pack(MAGIC, CACHE_SCHEMA, len(head), len(self.data), digest) + head + self.data

    @staticmethod
    def decode(blob: bytes, expect: CacheKey) -> "Artifact":
        """Check everything, then return the artifact; raise ArtifactCorrupt saying what failed."""
        if len(blob) < _HEAD.size:
            raise ArtifactCorrupt("truncated header")
        magic, schema, hlen, dlen, digest = _HEAD.unpack_from(blob)
        if magic != MAGIC:
            raise ArtifactCorrupt("not a vexplore artifact")
        if schema != CACHE_SCHEMA:
            raise ArtifactCorrupt(f"schema {schema}, expected {CACHE_SCHEMA}")
        if len(blob) != _HEAD.size + hlen + dlen:
            raise ArtifactCorrupt(f"length {len(blob)}, header says {_HEAD.size + hlen + dlen}")
        try:
            head = json.loads(blob[_HEAD.size:_HEAD.size + hlen])
            key = CacheKey.from_dict(head["key"])
        except (ValueError, KeyError, TypeError) as e:
            raise ArtifactCorrupt(f"undecodable header ({e})") from None
        if key.digest != expect.digest:
            raise ArtifactCorrupt("entry belongs to another key")
        data = blob[_HEAD.size + hlen:]
        if hashlib.sha256(data).digest() != digest:
            raise ArtifactCorrupt("checksum mismatch")
        return Artifact(data=data, compiler=head["compiler"], meta=head.get("meta", {}))
