"""GuardedTier: a tier below memory that is switched off when it fails and re-initialised once healthy.

A tier fails when a call raises, or when it records a failure of its own (the disk tier's
``failure`` / ``write_error``: a dir replaced by a file, permissions, a full disk; the remote
tier's outage). The guard then skips it until it is repaired — reads too, unless only
writing failed (a full or read-only disk still serves hits) — and raises a ``cache-failure``
alert (warning) naming the tier, where it lives, the error and the fix. Every ``retry_s`` seconds
the next call that would use it (the next compile after the back-off) tries the tier's
``heal()``: a cheap probe that re-initialises it (the disk tier recreates its dirs, checks a
file can be written, repairs meta.json and reconciles its index, deleting damaged entries); on
success the tier is back, with a ``cache-recovered`` alert (info).

The alert callback comes from the Session (``Monitor.raise_alert``): cache/ imports nothing above it.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from .artifact import Artifact
from .keys import CacheKey

log = logging.getLogger(__name__)

AlertFn = Callable[[str, str, str], Any]
DEFAULT_RETRY_S = 30.0


class GuardedTier:
    """``tier`` behind a health check (the Tier protocol: ``get`` / ``put`` / ``discard`` / ``keys``)."""

    def __init__(self, tier: Any, alert: AlertFn | None = None, retry_s: float = DEFAULT_RETRY_S) -> None:
        self.tier, self.alert, self.retry_s = tier, alert, retry_s
        self.failed: str | None = None    # why the tier is off (None: healthy)
        self.reads_ok = False             # only writing failed: hits are still served
        self.retry_at = 0.0               # time.monotonic() of the next heal attempt
        self.failures = self.recoveries = 0

    @property
    def name(self) -> str:
        return self.tier.name

    @property
    def rejections(self) -> list[str]:
        return self.tier.rejections

    # -- the Tier protocol -----------------------------------------------------------------
    def get(self, key: CacheKey) -> Artifact | None:
        if not self.usable(writing=False):
            return None
        return self._call("get", lambda: self.tier.get(key), None)

    def put(self, key: CacheKey, art: Artifact, blob: bytes | None = None) -> int:
        if not self.usable(writing=True):
            return 0
        return self._call("put", lambda: self.tier.put(key, art, blob), 0)

    def discard(self, key: CacheKey, reason: str) -> None:
        if self.usable(writing=True):
            self._call("discard", lambda: self.tier.discard(key, reason), None)

    def keys(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.usable(writing=False):
            return []
        return self._call("keys", self.tier.keys, [])

    # -- health ----------------------------------------------------------------------------
    def usable(self, writing: bool) -> bool:
        """Whether to call the tier now; a failed tier whose back-off has passed is healed first."""
        if self.failed is None:
            return True
        if time.monotonic() >= self.retry_at and self._heal():
            return True
        return self.reads_ok and not writing

    def _call(self, op: str, fn: Callable[[], Any], default: Any) -> Any:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 — a tier that raises must not take the compile down
            self._fail(f"{op} raised {type(e).__name__}: {e}", reads_ok=False)
            return default
        self.check()
        return out

    def check(self) -> None:
        """Take up a failure the tier recorded itself (it never raises for those)."""
        whole = getattr(self.tier, "failure", None)
        if whole:
            if self.failed is None or self.reads_ok:
                self._fail(whole, reads_ok=False)
            return
        writes = getattr(self.tier, "write_error", None)
        if writes and self.failed is None:
            self._fail(writes, reads_ok=True)

    def _fail(self, reason: str, reads_ok: bool) -> None:
        self.failed, self.reads_ok = reason, reads_ok
        self.failures += 1
        self.retry_at = time.monotonic() + self.retry_s
        off = ("Writes are off, hits are still served" if reads_ok else
               "It is off (no reads, no writes) and compiles go on with the other tiers")
        self._alert("cache-failure", "warning",
                    f"{self._where()} failed: {reason}. {off}; vexplore tries it again at the first "
                    f"compile {self.retry_s:.0f} s from now (and each {self.retry_s:.0f} s after). Fix: {self._fix()}")

    def _heal(self) -> bool:
        heal = getattr(self.tier, "heal", None)
        try:
            cleaned = heal() if heal is not None else 0
        except Exception as e:  # noqa: BLE001 — still unhealthy: try again after the back-off
            self.retry_at = time.monotonic() + self.retry_s
            log.info("vexplore %s: still failing (%s: %s); next try in %.0f s", self._where(), type(e).__name__, e,
                     self.retry_s)
            return False
        was, self.failed, self.reads_ok = self.failed, None, False
        self.recoveries += 1
        swept = f"; {cleaned} damaged entr{'y' if cleaned == 1 else 'ies'} deleted" if cleaned else ""
        self._alert("cache-recovered", "info", f"{self._where()} is back: re-initialised{swept}; reads and writes "
                    f"resume (it had failed: {was})")
        return True

    def _alert(self, code: str, severity: str, message: str) -> None:
        if self.alert is not None:
            self.alert(code, severity, message)
        else:
            log.log(logging.WARNING if severity != "info" else logging.INFO, "vexplore %s: %s", code, message)

    def _where(self) -> str:
        where = getattr(self.tier, "location", None)
        return f"the {self.name} cache tier" + (f" ({where})" if where else "")

    def _fix(self) -> str:
        where = getattr(self.tier, "location", None) or "it"
        if self.name == "disk":
            return (f"make {where} a writable directory with free space again (or point CacheConfig(dir=...) at "
                    "another); vexplore re-initialises it by itself")
        if self.name == "remote":
            return (f"make Redis at {where} reachable (and VEXPLORE_CACHE_KEY / the key file readable), or drop "
                    "'remote' from CacheConfig.tiers")
        return "repair the tier or drop it from CacheConfig.tiers"
