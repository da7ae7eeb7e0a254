"""Artifact: a compiled piece as saved (bytes plus what is needed to use them again).

Encoded form (every tier stores exactly these bytes; the remote tier signs them too)::

    magic "VXART\\0" | schema u32 | header length u32 | data length u64 | sha256(data) 32 bytes
    | header JSON (the full key, compiler, meta) | data (Inductor's binary artifact)

``decode`` checks all of it against the key it was asked for before anything is loaded.
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .keys import CACHE_SCHEMA, CacheKey

MAGIC = b"VXART\x00"
_HEAD = struct.Struct("<6sIIQ32s")  # magic, schema, key-json length, data length, sha256(data)
MAX_HEADER = 16 * 1024 * 1024       # a header longer than this is damage, not a key


class ArtifactCorrupt(Exception):
    """An encoded artifact failed a check; ``reason`` says which (never loaded)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Header:
    """What the fixed header and the key JSON say, before the data is checked."""

    key: CacheKey
    compiler: str
    meta: dict[str, Any]
    data_offset: int
    data_len: int
    digest: bytes


def _fixed(head: bytes) -> tuple[int, int, bytes]:
    if len(head) < _HEAD.size:
        raise ArtifactCorrupt("truncated header")
    magic, schema, hlen, dlen, digest = _HEAD.unpack_from(head)
    if magic != MAGIC:
        raise ArtifactCorrupt("not a vexplore artifact")
    if schema != CACHE_SCHEMA:
        raise ArtifactCorrupt(f"schema {schema}, expected {CACHE_SCHEMA}")
    if hlen > MAX_HEADER:
        raise ArtifactCorrupt(f"header length {hlen} is implausible")
    return hlen, dlen, digest


def _key_json(raw: bytes, hlen: int, dlen: int, digest: bytes) -> Header:
    try:
        head = json.loads(raw)
        key = CacheKey.from_dict(head["key"])
        compiler, meta = str(head["compiler"]), dict(head.get("meta") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ArtifactCorrupt(f"undecodable header ({type(e).__name__}: {e})") from None
    return Header(key, compiler, meta, _HEAD.size + hlen, dlen, digest)


def read_header(f: BinaryIO, total_len: int) -> Header:
    """The header of an encoded artifact read from ``f`` (for listings); the data is not checked."""
    hlen, dlen, digest = _fixed(f.read(_HEAD.size))
    if total_len != _HEAD.size + hlen + dlen:
        raise ArtifactCorrupt(f"length {total_len}, header says {_HEAD.size + hlen + dlen}")
    raw = f.read(hlen)
    if len(raw) != hlen:
        raise ArtifactCorrupt("truncated header")
    return _key_json(raw, hlen, dlen, digest)


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
    def header(blob: bytes) -> Header:
        """Check the framing of ``blob`` and decode its key (not the data's checksum)."""
        return read_header(io.BytesIO(blob), len(blob))

    @staticmethod
    def decode(blob: bytes, expect: CacheKey | str | None) -> "Artifact":
        """Check everything, then return the artifact; raise ArtifactCorrupt saying what failed.

        ``expect`` is the key the entry must belong to, or only its digest (``verify`` knows the
        name an entry is stored under, not its key); None checks framing, key and checksum alone.
        """
        h = Artifact.header(blob)
        want = expect.digest if isinstance(expect, CacheKey) else expect
        if want is not None and h.key.digest != want:
            raise ArtifactCorrupt(f"entry belongs to another key ({h.key.digest[:12]})")
        data = blob[h.data_offset:]
        if hashlib.sha256(data).digest() != h.digest:
            raise ArtifactCorrupt("checksum mismatch")
        return Artifact(data=data, compiler=h.compiler, meta=h.meta)
