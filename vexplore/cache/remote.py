"""The remote tier: signed artifacts in Redis, shared by every machine that holds the secret.

One Redis string per artifact, ``<prefix>art:<digest>``, holding::

    b"VXR1" | HMAC-SHA256(secret, name + b"\\n" + encoded artifact) | encoded artifact

plus a hash ``<prefix>index`` (digest -> key parts as JSON) used only to list entries and to
explain a miss. A value that is unsigned, wrongly signed (another secret, another key's name) or
damaged is refused before anything is decoded, counted and recompiled; its place is then
overwritten by the fresh compile. The secret comes from ``VEXPLORE_CACHE_KEY`` or a key file
(``VEXPLORE_CACHE_KEY_FILE``, default ``~/.config/vexplore/cache.key``, mode 0600). The
password comes from the URL (``redis://:pw@host:port/db``) or ``VEXPLORE_REDIS_PASSWORD``.

Every call runs with ``timeout_s`` for connecting and for each reply and no client retries. A
Redis that is down or dies mid-run turns the tier off with one warning; it is tried again
``retry_after_s`` later.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .artifact import Artifact, ArtifactCorrupt
from .keys import CacheKey
from .warn import degrade

log = logging.getLogger(__name__)

SIGNED_MAGIC = b"VXR1"
_MAC = 32
MIN_SECRET = 16
DEFAULT_KEY_FILE = "~/.config/vexplore/cache.key"
T = TypeVar("T")


class Refused(Exception):
    """A remote value failed its signature or framing check (never decoded further)."""


def load_secret() -> tuple[bytes | None, str]:
    """(secret, where it came from) or (None, why there is none and how to fix it)."""
    env = os.environ.get("VEXPLORE_CACHE_KEY")
    if env:
        if len(env.encode()) < MIN_SECRET:
            return None, f"VEXPLORE_CACHE_KEY is shorter than {MIN_SECRET} bytes; use e.g. `openssl rand -hex 32`"
        return env.encode(), "VEXPLORE_CACHE_KEY"
    path = Path(os.path.expanduser(os.environ.get("VEXPLORE_CACHE_KEY_FILE") or DEFAULT_KEY_FILE))
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return None, f"key file {path} is not a regular file"
        if st.st_mode & 0o077:
            return None, f"key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; run `chmod 600 {path}`"
        data = path.read_bytes().strip()
    except FileNotFoundError:
        return None, (f"no signing secret: set VEXPLORE_CACHE_KEY (the same on every machine) or write "
                      f"it to {path} with mode 0600")
    except OSError as e:
        return None, f"cannot read key file {path}: {e.strerror or e}"
    if len(data) < MIN_SECRET:
        return None, f"key file {path} holds fewer than {MIN_SECRET} bytes"
    return data, str(path)


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def sign(secret: bytes, name: str, blob: bytes) -> bytes:
    mac = hmac.new(secret, name.encode() + b"\n" + blob, hashlib.sha256).digest()
    return SIGNED_MAGIC + mac + blob


def unsign(secret: bytes, name: str, value: bytes) -> bytes:
    """The encoded artifact inside a signed value; Refused when unsigned or wrongly signed."""
    if len(value) < len(SIGNED_MAGIC) + _MAC or not value.startswith(SIGNED_MAGIC):
        raise Refused("unsigned value")
    mac, blob = value[len(SIGNED_MAGIC):len(SIGNED_MAGIC) + _MAC], value[len(SIGNED_MAGIC) + _MAC:]
    want = hmac.new(secret, name.encode() + b"\n" + blob, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, want):
        raise Refused("wrong signature (another secret, another key's value, or damaged)")
    return blob


@dataclass(frozen=True)
class RemoteStats:
    url: str
    prefix: str
    reachable: bool
    entries: int | None
    nbytes: int | None
    rejected: int
    outages: int
    disabled_reason: str | None


class RemoteTier:
    """Artifacts in one Redis database under ``prefix``, HMAC-signed."""

    name = "remote"

    def __init__(self, url: str, prefix: str = "vexplore:", timeout_s: float = 0.5,
                 retry_after_s: float = 30.0, secret: bytes | None = None) -> None:
        self.url, self.prefix, self.timeout_s, self.retry_after_s = url, prefix, timeout_s, retry_after_s
        self.outages = 0
        self.rejections: list[str] = []           # why each value was refused, in order
        self.down_reason: str | None = None
        self._down_until = 0.0
        self._client: redis.Redis | None = None
        self._warned_disabled = False
        where = "argument"
        if secret is None:
            secret, where = load_secret()
        self.secret = secret
        self.disabled_reason = None if secret else where
        log.debug("vexplore remote cache %s: secret from %s", redact(url), where)

    # -- connection ------------------------------------------------------------------------
    def _redis(self) -> redis.Redis | None:
        if self.disabled_reason:
            if not self._warned_disabled:
                self._warned_disabled = True
                degrade("vexplore remote cache off: %s. Compiles go on with the other tiers.", self.disabled_reason)
            return None
        if self.down_reason and time.monotonic() < self._down_until:
            return None
        if self._client is None:
            password = None if re.search(r"//[^/@]*:[^@]*@", self.url) else os.environ.get("VEXPLORE_REDIS_PASSWORD")
            self._client = redis.Redis.from_url(
                self.url, password=password, socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        return self._client

    def _call(self, what: str, fn: Callable[[redis.Redis], T]) -> T | None:
        r = self._redis()
        if r is None:
            return None
        try:
            out = fn(r)
        except (redis.RedisError, OSError) as e:
            self._down(what, e)
            return None
        if self.down_reason:
            log.info("vexplore remote cache %s is back", redact(self.url))
            self.down_reason = None
        return out

    def _down(self, what: str, e: Exception) -> None:
        first = self.down_reason is None
        self.down_reason = f"{what} failed: {type(e).__name__}: {e}"
        self._down_until = time.monotonic() + self.retry_after_s
        if self._client is not None:
            self._client.close()
            self._client = None
        if first:
            self.outages += 1
            degrade("vexplore remote cache %s unavailable (%s); carrying on with the other tiers and "
                    "retrying in %.0f s.", redact(self.url), self.down_reason, self.retry_after_s)
        else:
            log.info("vexplore remote cache still unavailable: %s", self.down_reason)

    @property
    def failure(self) -> str | None:
        """Why the tier cannot be used now (no secret, or Redis unreachable); None when it can."""
        return self.disabled_reason or self.down_reason

    @property
    def location(self) -> str:
        return f"{redact(self.url)}, prefix {self.prefix!r}"

    def heal(self) -> int:
        """Try again after an outage (reloading a missing secret first): one PING on a fresh
        connection. Returns 0 (a refused value is deleted where it is met); raises while the secret
        is still missing or Redis still does not answer (then nothing changes)."""
        if self.disabled_reason:
            secret, where = load_secret()
            if secret is None:
                raise ConnectionError(where)
            self.secret, self.disabled_reason = secret, None
        if self._client is not None:
            self._client.close()
            self._client = None
        self.down_reason, self._down_until = None, 0.0
        client = self._redis()
        try:
            assert client is not None
            client.ping()
        except (redis.RedisError, OSError) as e:
            self._client = None
            self.down_reason = f"PING failed: {type(e).__name__}: {e}"
            self._down_until = time.monotonic() + self.retry_after_s
            raise
        return 0

    @property
    def available(self) -> bool:
        return not self.disabled_reason and not (self.down_reason and time.monotonic() < self._down_until)

    def kname(self, key: CacheKey | str) -> str:
        return f"{self.prefix}art:{key if isinstance(key, str) else key.digest}"

    # -- the Tier protocol -----------------------------------------------------------------
    def get(self, key: CacheKey) -> Artifact | None:
        """The verified artifact of ``key``, or None (absent, unreachable, or refused and counted)."""
        name = self.kname(key)
        value = self._call("GET", lambda r: r.get(name))
        if value is None:
            return None
        try:
            return Artifact.decode(unsign(self.secret or b"", name, value), key)
        except (Refused, ArtifactCorrupt) as e:
            self._refuse(name, str(e))
            return None

    def _refuse(self, name: str, reason: str) -> None:
        self.rejections.append(f"remote value {name} refused ({reason})")
        log.warning("vexplore remote cache: %s refused (%s); will recompile and overwrite it", name, reason)

    def put(self, key: CacheKey, art: Artifact, blob: bytes | None = None) -> int:
        """SET the signed artifact (and its index entry); returns bytes written (0 when unreachable).

        ``blob`` is ``art.encode(key)`` when the caller has it already (one encoding for every tier).
        """
        if not self.secret:
            return 0
        name = self.kname(key)
        value = sign(self.secret, name, art.encode(key) if blob is None else blob)
        parts = json.dumps(key.parts(), sort_keys=True, default=str)

        def write(r: redis.Redis) -> int:
            pipe = r.pipeline(transaction=False)
            pipe.set(name, value)
            pipe.hset(self.prefix + "index", key.digest, parts)
            pipe.execute()
            return len(value)
        return self._call("SET", write) or 0

    def discard(self, key: CacheKey, reason: str) -> None:
        """Count an entry that could not be loaded and delete it."""
        self._refuse(self.kname(key), reason)
        self._delete(key.digest)

    def _delete(self, digest: str) -> None:
        """Delete a value and its index field together (else listings and prewarm see a ghost)."""
        def delete(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            pipe.delete(self.kname(digest))
            pipe.hdel(self.prefix + "index", digest)
            pipe.execute()
        self._call("DEL", delete)

    def keys(self, limit: int = 10000) -> list[tuple[str, dict[str, Any]]]:
        """(digest, key parts) from the index hash, for explaining a miss (never for loading)."""
        def scan(r: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
            out = []
            for digest, parts in r.hscan_iter(self.prefix + "index", count=500):
                try:
                    out.append((digest.decode(), json.loads(parts)))
                except ValueError:
                    continue
                if len(out) >= limit:
                    break
            return out
        return self._call("HSCAN", scan) or []

    # -- whole-prefix operations (the CLI) -------------------------------------------------
    def names(self) -> list[str]:
        return self._call("SCAN", lambda r: [n.decode() for n in r.scan_iter(self.prefix + "art:*", count=500)]) or []

    def verify(self) -> list[tuple[str, str]]:
        """Check every value's signature and framing; delete refused ones; (name, why) per deletion."""
        bad = []
        for name in self.names():
            value = self._call("GET", lambda r, n=name: r.get(n))
            if value is None:
                continue
            digest = name[len(self.kname("")):]
            try:
                Artifact.decode(unsign(self.secret or b"", name, value), digest)
            except (Refused, ArtifactCorrupt) as e:
                self._refuse(name, str(e))
                self._delete(digest)
                bad.append((name, str(e)))
        return bad

    def clear(self) -> int:
        """Delete every artifact under the prefix and the index; returns how many values went."""
        names = self.names()
        for i in range(0, len(names), 500):
            self._call("DEL", lambda r, chunk=names[i:i + 500]: r.delete(*chunk))
        self._call("DEL", lambda r: r.delete(self.prefix + "index"))
        return len(names)

    def stats(self) -> RemoteStats:
        names = self.names() if self.available else []
        nbytes = sum(self._call("STRLEN", lambda r, n=n: r.strlen(n)) or 0 for n in names) if names else 0
        up = self._call("PING", lambda r: r.ping()) is not None
        return RemoteStats(redact(self.url), self.prefix, up, len(names) if up else None,
                           nbytes if up else None, len(self.rejections), self.outages,
                           self.disabled_reason or self.down_reason)
