"""``vexplore cache info | list | explain A B | verify | prune --max-size S | clear``.

Every command works on one cache dir (``--dir``, default CacheConfig's) and, with
``--remote-url``, on the Redis tier under ``--prefix`` too; each prints what it did.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from ..config import CacheConfig
from .artifact import MAGIC, ArtifactCorrupt, read_header
from .disk import DiskTier, Removed
from .index import SUFFIX
from .keys import CacheKey, explain

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``500M``, ``5G``, ``1.5GB``, ``1048576`` -> bytes; ValueError saying the accepted forms
    (and why a negative size or a fraction of a byte is refused)."""
    forms = "give bytes or a number with K, M, G or T (e.g. 500M, 5G)"
    m = re.fullmatch(r"\s*(-?)(\d+(?:\.\d+)?)\s*(?:([KMGT])I?)?B?\s*", text.upper())
    if not m:
        raise ValueError(f"size {text!r}: {forms}")
    if m.group(1):
        raise ValueError(f"size {text!r} is negative; a cache holds 0 bytes or more: {forms}")
    n = Fraction(m.group(2)) * _UNITS[m.group(3) or ""]   # exact: no float overflow on long numbers
    if n.denominator != 1 and not m.group(3):
        raise ValueError(f"size {text!r} is a fraction of a byte; {forms}")
    return int(n)


def human(n: int | None) -> str:
    if n is None:
        return "?"
    if abs(n) < 1024:
        return f"{n:.0f} B"
    x = n / 1024
    for unit in ("KiB", "MiB"):
        if abs(x) < 1024:
            return f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} GiB"


def size_arg(text: str) -> str:
    """argparse type of ``--max-size``: the text, once parse_size accepts it (else exit 2 with why)."""
    try:
        parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def dir_arg(text: str) -> str:
    """argparse type of a cache dir: refused when it, or the nearest parent that exists, is no directory."""
    path = os.path.abspath(os.path.expanduser(text))
    nearest = path
    while not os.path.lexists(nearest) and os.path.dirname(nearest) != nearest:
        nearest = os.path.dirname(nearest)
    if os.path.lexists(nearest) and not os.path.isdir(nearest):
        what = "is a file" if nearest == path else f"cannot be a directory: {nearest} is a file"
        raise argparse.ArgumentTypeError(f"{text!r} {what}; give a directory for the cache (a missing one is fine)")
    return text


def remote_url_arg(text: str) -> str:
    """argparse type of ``--remote-url``: a Redis URL redis-py can open, with redis installed."""
    why = CacheConfig.remote_url_problem(text)
    if why:
        raise argparse.ArgumentTypeError(f"{CacheConfig.redact(text)!r} {why}; give {CacheConfig.REMOTE_URL_FORM}")
    if importlib.util.find_spec("redis") is None:
        raise argparse.ArgumentTypeError("the remote tier needs the redis package: pip install 'vexplore[redis]'")
    return text


class _Parser(argparse.ArgumentParser):
    """The commands' parser: ``--max-size -5G`` reaches ``size_arg`` (which says it is negative)
    instead of argparse's "expected one argument" (it takes ``-5G`` for an option)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        joined: list[str] | None = None
        if args is not None:
            joined = []
            for a in args:
                if joined and joined[-1] == "--max-size" and re.match(r"-\.?\d", a):
                    joined[-1] = f"--max-size={a}"
                else:
                    joined.append(a)
        return super().parse_known_args(joined, namespace)


def _add_common(p: argparse.ArgumentParser, defaults: bool) -> None:
    """--dir, --remote-url, --prefix: with their defaults on ``vexplore cache``; on each command
    without (argparse.SUPPRESS), so a value given after the command wins and none is overwritten."""
    d = CacheConfig()
    unset = argparse.SUPPRESS
    p.add_argument("--dir", type=dir_arg, default=d.dir if defaults else unset,
                   help=f"cache dir (default: ${CacheConfig.DIR_ENV} if set, else {CacheConfig.DEFAULT_DIR})")
    p.add_argument("--remote-url", type=remote_url_arg, default=None if defaults else unset, metavar="URL",
                   help="also act on this Redis tier: redis://[:password@]host[:port][/db]")
    p.add_argument("--prefix", default=d.remote_prefix if defaults else unset,
                   help=f"Redis key prefix (default {d.remote_prefix})")


def register(subparsers: Any) -> None:
    """Add ``vexplore cache ...`` to the ``vexplore`` command's subparsers."""
    p = subparsers.add_parser("cache", help="inspect and maintain vexplore's compile cache",
                              description="Inspect and maintain vexplore's compile cache. The options "
                              "--dir, --remote-url and --prefix go before or after the command.")
    _add_common(p, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, defaults=False)
    sub = p.add_subparsers(dest="cache_command", required=True, title="commands", parser_class=_Parser)

    def add(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[common])
        c.set_defaults(func=_with_remote(func))
        return c

    add("info", "where the cache is, how full, and its health", cmd_info)
    add("list", "every entry, most recently used first", cmd_list)
    e = add("explain", "which key parts of two entries differ", cmd_explain)
    e.add_argument("a", help="digest (a unique prefix is enough) or path of an artifact file")
    e.add_argument("b", help="the same, for the entry to compare with")
    add("verify", "check every entry in full; delete damaged ones", cmd_verify)
    pr = add("prune", "evict least recently used entries down to a size", cmd_prune)
    pr.add_argument("--max-size", required=True, type=size_arg, metavar="SIZE",
                    help="bytes, or a number with K, M, G or T: e.g. 500M, 5G")
    add("clear", "delete every entry", cmd_clear)
    sub.metavar = "{" + ",".join(sub.choices) + "}"   # "required: {info,...}", not "required: cache_command"


def _disk(args: argparse.Namespace, say: bool = True) -> DiskTier | None:
    """The disk tier of ``--dir``, or None (said unless ``say`` is False) when there is no cache there."""
    root = Path(os.path.expanduser(args.dir))
    if not (root / "artifacts").is_dir():
        if say:
            print(f"no vexplore cache at {root} (nothing to do)")
        return None
    return DiskTier(root)


def _remote(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The remote tier of ``--remote-url`` (None without one) and why it cannot be used (None when it
    answered a PING): a command never reads an unreachable Redis as an empty one."""
    if not args.remote_url:
        return None, None
    import redis

    from .remote import RemoteTier

    remote = RemoteTier(args.remote_url, prefix=args.prefix, timeout_s=2.0)
    fix = "without --remote-url the command acts on the disk cache only"
    try:
        remote.heal()   # one PING on a fresh connection (and the signing secret loaded)
    except (ConnectionError, redis.RedisError, OSError) as e:
        if remote.disabled_reason:   # no signing secret: load_secret's reason says how to give one
            return remote, f"cannot be used: {e}; {fix}"
        return remote, f"is unreachable ({type(e).__name__}: {e}); start Redis there or fix --remote-url ({fix})"
    return remote, None


def _with_remote(cmd: Callable[[argparse.Namespace, Any], int]) -> Callable[[argparse.Namespace], int]:
    """``cmd(args, remote)``, run only when ``--remote-url`` (if given) answers; otherwise, or when
    Redis stops answering during the command, one line on stderr and exit status 1."""
    def run(args: argparse.Namespace) -> int:
        remote, why = _remote(args)
        if why is None:
            rc = cmd(args, remote)
            if remote is None or not remote.failure:
                return rc
            why = (f"stopped answering during the command ({remote.failure}), so what it printed for the "
                   "remote is incomplete; run it again once Redis answers")
        print(f"vexplore cache {args.cache_command}: error: the remote cache {_where(remote)} {why}", file=sys.stderr)
        return 1
    return run


def _where(remote: Any) -> str:
    """The remote tier's URL to print (password hidden); stats() would also scan every value."""
    from .remote import redact

    return redact(remote.url)


def cmd_info(args: argparse.Namespace, remote: Any) -> int:
    disk = _disk(args)
    if disk is not None:
        s = disk.stats()
        print(f"disk cache {s.dir}: {s.entries} entries, {human(s.nbytes)} of {human(s.max_bytes)} "
              f"(the default bound; CacheConfig.disk_max_bytes sets it)")
        health = [f"{s.rejected} damaged entries deleted" if s.rejected else "",
                  "index rebuilt from the artifact files" if s.index_rebuilds else "",
                  "meta.json rewritten" if s.meta_repairs else "", s.disabled_reason or ""]
        print("  health: " + ("; ".join(h for h in health if h) or "ok"))
    if remote is not None:
        r = remote.stats()
        state = (f"{r.entries} entries, {human(r.nbytes)}" if r.reachable
                 else f"unreachable ({r.disabled_reason})")
        print(f"remote cache {r.url} prefix {r.prefix!r}: {state}")
    return 0


def _summary(key: dict[str, Any]) -> str:
    cfg, ver = key.get("config") or {}, key.get("versions") or {}
    size = "general" if key.get("size") is None else key.get("size")
    return (f"{str(key.get('graph'))[:12]}  size={size}  {cfg.get('compiler')}/{cfg.get('mode')}  "
            f"torch {ver.get('torch')}  {ver.get('device')}")


def cmd_list(args: argparse.Namespace, remote: Any) -> int:
    disk = _disk(args)
    if disk is not None:
        entries = disk.entries()
        print(f"{len(entries)} entries in {disk.root} ({human(sum(e.nbytes for _, e in entries))}), "
              "most recently used first:")
        for digest, e in entries:
            used = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.used))
            print(f"  {digest[:16]}  {human(e.nbytes):>10}  {used}  {_summary(e.key)}")
    if remote is not None:
        keys = dict(remote.keys())
        names = remote.names()
        print(f"{len(names)} entries in {_where(remote)} under {args.prefix!r}:")
        for name in names:
            digest = name.rsplit(":", 1)[-1]
            print(f"  {digest[:16]}  {_summary(keys.get(digest, {}))}")
    return 0


def _resolve(disk: DiskTier | None, ref: str) -> CacheKey:
    path = Path(ref)
    if not path.is_file():
        if disk is None:
            raise LookupError(f"{ref!r} is not an artifact file and there is no cache dir to look it up in")
        found = [d for d, _ in disk.entries() if d.startswith(ref.lower())]
        if len(found) != 1:
            raise LookupError(f"{ref!r} matches {len(found)} entries in {disk.root}; give a longer "
                              "digest prefix (see `vexplore cache list`) or a file path")
        path = disk.path(found[0])
    with open(path, "rb") as f:
        try:
            return read_header(f, path.stat().st_size).key
        except ArtifactCorrupt as e:
            f.seek(0)
            raise LookupError(_unreadable(path, f.read(len(MAGIC) + 10), e.reason)) from None


def _unreadable(path: Path, start: bytes, reason: str) -> str:
    """Why ``path`` (whose first bytes are ``start``) gives no key: what an artifact is, what this is."""
    if start.startswith(MAGIC):
        return (f"{path} is a vexplore cache artifact this vexplore cannot read ({reason}); "
                "`vexplore cache verify` deletes damaged entries")
    found = "an empty file" if not start else f"a {path.stat().st_size}-byte file starting with {start!r}"
    return (f"{path} is not a vexplore cache artifact (a file under a cache dir's artifacts/, named "
            f"<digest>{SUFFIX}, starting with {MAGIC!r}): found {found}")


def cmd_explain(args: argparse.Namespace, remote: Any) -> int:
    disk = _disk(args, say=False)
    try:
        a, b = _resolve(disk, args.a), _resolve(disk, args.b)
    except (LookupError, OSError, ArtifactCorrupt) as e:
        print(f"vexplore cache explain: error: {e}", file=sys.stderr)
        return 2
    lines = explain(a, b)
    print(f"{a.digest[:16]} -> {b.digest[:16]}: " + ("the keys are equal" if not lines else f"{len(lines)} difference(s)"))
    for line in lines:
        print(f"  {line}")
    return 0


def _print_removed(what: str, r: Removed) -> None:
    for name, n, why in r.files:
        print(f"  {what} {name[:16]} ({human(n)}): {why}")


def cmd_verify(args: argparse.Namespace, remote: Any) -> int:
    disk = _disk(args)
    if disk is not None:
        r = disk.verify()
        print(f"verified {r.checked} entries in {disk.root}: {r.checked - len(r.files)} ok, "
              f"{len(r.files)} damaged and deleted; index rebuilt ({r.remaining_entries} entries, "
              f"{human(r.remaining_bytes)})")
        _print_removed("deleted", r)
    if remote is not None:
        bad = remote.verify()
        print(f"verified {_where(remote)} under {args.prefix!r}: {len(bad)} refused and deleted")
        for name, why in bad:
            print(f"  deleted {name}: {why}")
    return 0


def cmd_prune(args: argparse.Namespace, remote: Any) -> int:
    limit = parse_size(args.max_size)   # size_arg checked it
    disk = _disk(args)
    if disk is not None:
        r = disk.prune(limit)
        print(f"pruned {disk.root} to {human(limit)}: removed {len(r.files)} entries ({human(r.freed)}), "
              f"{r.remaining_entries} entries ({human(r.remaining_bytes)}) remain")
        _print_removed("evicted", r)
    if remote is not None:
        print(f"{_where(remote)} is not pruned: Redis bounds its own memory (maxmemory with an LRU policy)")
    return 0


def cmd_clear(args: argparse.Namespace, remote: Any) -> int:
    disk = _disk(args)
    if disk is not None:
        r = disk.clear()
        print(f"cleared {disk.root}: removed {len(r.files)} entries ({human(r.freed)})")
    if remote is not None:
        n = remote.clear()
        print(f"cleared {_where(remote)} under {args.prefix!r}: removed {n} entries")
    return 0
