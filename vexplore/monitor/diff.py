"""``vx.diff(a, b)``: what changed from one CompileReport to another, as a list of small records.

Pieces are aligned by their unique key (split ops by the ops they run), so a piece that moved
is the same piece; pieces in a stretch that differs are paired in order (changed) and the rest
are added or removed. For each change the record says its kind, what, before and after:

    config        a config field that is not part of the cache key (strategy, splitting_ops, ...)
    key           a cache-key part: config fields in the key, versions, a piece's input specs or sizes
    piece         a piece added, removed or changed (other graph), or its cache tier / compiler / fallback
    code          a piece's generated code (``detail``: the unified diff, truncated)
    compile_time  the wall time, the pieces' total, and each unique piece's compile or load seconds
    counter       every counter that differs
    profile       the latest runtime profiles (``cm.profile``) of both: wall, device and host-gap ms per
                  call, attributed share, and the kernels with the most time on either side (ms per
                  call, by name; Inductor's per-process ``graph_<n>_`` prefix dropped so builds compare)
    tune          the latest ``vx.tune`` of both (``report.tunes``): its summary, what its best changes from
                  its start (``best strategy``, ...) and its improvement per size with the interval; where
                  only one report carries a tune, that one's, beside nothing
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from ..config import CompileConfig
from ..errors import VexploreError
from .diffhtml import diff_html
from .profile import RuntimeProfile
from .report import CompileReport, Piece
from .tuning import TuneRecord, size_name

KINDS = ("config", "key", "piece", "code", "compile_time", "counter", "profile", "tune")
TOP_KERNELS = 5          # kernels shown per profile diff
_GRAPH_PREFIX = re.compile(r"^graph_\d+_")
KEY_FIELDS = tuple(CompileConfig().compile_relevant())   # config fields that go into every cache key
MAX_DIFF_LINES = 400     # of one piece's code diff; the rest is counted, not shown
_AOT_ID = re.compile(r"^(# AOT ID: \['?)\d+(_\w+'?\])", re.M)
_PIECE_FIELDS = (("cache", "cache"), ("compiler", "compiler"), ("fallback", "fallback_reason"))

Match = tuple[Piece | None, Piece | None, bool]   # (piece of a, piece of b, matched by unique key)
Pair = tuple[Piece, Piece, bool]


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` (one of KINDS), ``what`` changed, its value ``before`` and ``after``
    (None where it does not exist on that side); ``detail``: the code diff for kind "code"."""

    kind: str
    what: str
    before: Any
    after: Any
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind:<13}{self.what}: {_show(self.before)} -> {_show(self.after)}"


@dataclass(frozen=True)
class Diff:
    """Every Change from report ``a`` to report ``b`` (named ``a_name`` and ``b_name``), grouped by kind."""

    a_name: str
    b_name: str
    changed: tuple[Change, ...]

    def __bool__(self) -> bool:
        return bool(self.changed)

    def of(self, kind: str) -> list[Change]:
        """The changes of one kind (``"piece"``, ``"counter"``, ...)."""
        return [c for c in self.changed if c.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a_name, "b": self.b_name,
                "changed": [{"kind": c.kind, "what": c.what, "before": c.before, "after": c.after, "detail": c.detail}
                            for c in self.changed]}

    def __str__(self) -> str:
        head = f"{self.a_name} -> {self.b_name}: {len(self.changed)} change(s)"
        return "\n".join([head] + [f"  {c}" for c in self.changed])

    def _repr_html_(self) -> str:
        return diff_html(self)


def diff(a: CompileReport, b: CompileReport, names: tuple[str, str] | None = None) -> Diff:
    """What changed from report ``a`` to report ``b``; ``names`` label them (default: ``report <id> (<strategy>)``)."""
    for r, arg in ((a, "a"), (b, "b")):
        if not isinstance(r, CompileReport):
            raise VexploreError(f"vx.diff: {arg} is a {type(r).__name__}, not a CompileReport; pass reports "
                                "(cm.report, cm.recompile(...), vx.load_report(path)).")
    a_name, b_name = names or (f"report {a.id} ({a.strategy})", f"report {b.id} ({b.strategy})")
    matches = align(a.pieces, b.pieces)
    pairs = _both(matches)
    changes = [*_config(a, b), *_key(a, b, pairs), *_pieces(matches), *_code(pairs),
               *_times(a, b, pairs), *_counters(a.counters, b.counters), *_profiles(a, b), *_tunes(a, b)]
    return Diff(a_name, b_name, tuple(changes))


def align(a: Sequence[Piece], b: Sequence[Piece]) -> list[Match]:
    """Pieces of ``a`` and ``b`` in order, matched by unique key (split ops by their ops): ``(pa, pb,
    True)``. In a stretch that differs, pieces of the same kind pair in order (``(pa, pb, False)``:
    changed) and the others stand alone: ``(pa, None, False)`` removed, ``(None, pb, False)`` added."""
    sa, sb = [_signature(p) for p in a], [_signature(p) for p in b]
    out: list[Match] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, sa, sb, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [(a[i], b[j], True) for i, j in zip(range(i1, i2), range(j1, j2))]
        else:
            out += _pair_in_order(a[i1:i2], b[j1:j2])
    return out


def _pair_in_order(xs: Sequence[Piece], ys: Sequence[Piece]) -> list[Match]:
    out: list[Match] = []
    j = 0
    for x in xs:
        k = next((k for k in range(j, len(ys)) if ys[k].kind == x.kind), None)
        if k is None:
            out.append((x, None, False))
            continue
        out += [(None, y, False) for y in ys[j:k]] + [(x, ys[k], False)]
        j = k + 1
    return out + [(None, y, False) for y in ys[j:]]


def _both(matches: list[Match]) -> list[Pair]:
    return [(pa, pb, same) for pa, pb, same in matches if pa is not None and pb is not None]


def _signature(p: Piece) -> str:
    return f"{p.graph}:{p.unique_key}" if p.kind == "compiled" else f"{p.graph}:split:{','.join(p.split_ops)}"


def _plain(v: Any) -> Any:
    """``v`` as JSON gives it back (tuples -> lists), so a loaded report compares equal to the one saved."""
    return json.loads(json.dumps(v, default=str))


def _flat(d: Mapping[str, Any]) -> dict[str, Any]:
    """``{"cache": {"tiers": ...}}`` -> ``{"cache.tiers": ...}`` (one level: the cache config)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update({f"{k}.{kk}": vv for kk, vv in v.items()} if k == "cache" and isinstance(v, Mapping) else {k: v})
    return out


def _dict_changes(kind: str, a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> Iterator[Change]:
    a, b = _plain(dict(a)), _plain(dict(b))
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            yield Change(kind, f"{prefix}{k}", a.get(k), b.get(k))


def _config(a: CompileReport, b: CompileReport) -> Iterator[Change]:
    fa, fb = _flat(a.config), _flat(b.config)
    rest = [k for k in dict.fromkeys([*fa, *fb]) if k not in KEY_FIELDS]
    yield from _dict_changes("config", {k: fa.get(k) for k in rest}, {k: fb.get(k) for k in rest})
    if a.strategy != b.strategy and fa.get("strategy") == fb.get("strategy"):
        yield Change("config", "strategy used", a.strategy, b.strategy)


def _key(a: CompileReport, b: CompileReport, pairs: list[Pair]) -> Iterator[Change]:
    yield from _dict_changes("key", _in_key(a.config), _in_key(b.config), "config.")
    yield from _dict_changes("key", a.versions, b.versions, "versions.")
    for pa, pb, _same in pairs:
        if pa.kind != "compiled":
            continue
        if pa.input_shapes != pb.input_shapes:
            yield Change("key", f"{_name(pa, pb)} inputs", list(pa.input_shapes), list(pb.input_shapes))
        if pa.sizes != pb.sizes:
            yield Change("key", f"{_name(pa, pb)} sizes", _sizes(pa), _sizes(pb))


def _in_key(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in KEY_FIELDS if k in config}


def _sizes(p: Piece) -> list[str]:
    return ["general" if s is None else str(s) for s in p.sizes]


def _name(pa: Piece | None, pb: Piece | None) -> str:
    if pa is not None and pb is not None and pa.index != pb.index:
        return f"piece {pa.index} -> {pb.index}"
    return f"piece {(pa or pb).index}"   # type: ignore[union-attr]


def describe(p: Piece) -> str:
    """A piece in a few words: ``compiled, 16 nodes, key 81ac61ef``, ``split op vxtest::mix``."""
    if p.kind == "split_op":
        return f"split op {', '.join(p.split_ops)}"
    twin = f", same as {p.same_as}" if p.same_as is not None else ""
    return f"{p.kind}, {p.nodes} nodes, key {(p.unique_key or '-')[:8]}{twin}"


def _pieces(matches: list[Match]) -> Iterator[Change]:
    for pa, pb, same in matches:
        if pa is None or pb is None or not same:
            yield Change("piece", _name(pa, pb), None if pa is None else describe(pa), None if pb is None else describe(pb))
        elif pa.same_as is None and pb.same_as is None:
            for label, attr in _PIECE_FIELDS:
                if getattr(pa, attr) != getattr(pb, attr):
                    yield Change("piece", f"{_name(pa, pb)} {label}", getattr(pa, attr), getattr(pb, attr))


def _code(pairs: list[Pair]) -> Iterator[Change]:
    for pa, pb, _same in pairs:
        if pa.code and pb.code and _numbered(pa.code) != _numbered(pb.code):
            la, lb = _numbered(pa.code).splitlines(), _numbered(pb.code).splitlines()
            text = code_diff(la, lb, f"{_name(pa, pb)} before", f"{_name(pa, pb)} after")
            yield Change("code", _name(pa, pb), f"{len(la)} lines", f"{len(lb)} lines", text)


def _numbered(code: str) -> str:
    """Inductor's code without the number it gives each compile in a process (``# AOT ID: ['3_inference']``):
    the same code compiled twice is not a change."""
    return _AOT_ID.sub(r"\1N\2", code)


def code_diff(a: list[str], b: list[str], a_name: str, b_name: str, limit: int = MAX_DIFF_LINES) -> str:
    """A unified diff of two codes (2 lines of context), cut after ``limit`` lines with a count of the rest."""
    lines = list(difflib.unified_diff(a, b, a_name, b_name, n=2, lineterm=""))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more diff lines not shown"]
    return "\n".join(lines)


def _times(a: CompileReport, b: CompileReport, pairs: list[Pair]) -> Iterator[Change]:
    if a.wall_s != b.wall_s:
        yield Change("compile_time", "wall", a.wall_s, b.wall_s)
    ta, tb = sum(p.compile_s for p in a.pieces), sum(p.compile_s for p in b.pieces)
    if ta != tb:
        yield Change("compile_time", "pieces total", ta, tb)
    for pa, pb, _same in pairs:
        if pa.kind == "compiled" and pa.same_as is None and pb.same_as is None and pa.compile_s != pb.compile_s:
            yield Change("compile_time", _name(pa, pb), pa.compile_s, pb.compile_s)


def _counters(a: Mapping[str, int], b: Mapping[str, int]) -> Iterator[Change]:
    for k in dict.fromkeys([*a, *b]):
        if a.get(k, 0) != b.get(k, 0):
            yield Change("counter", k, a.get(k, 0), b.get(k, 0))


def _profiles(a: CompileReport, b: CompileReport) -> Iterator[Change]:
    """The latest profiles of ``a`` and ``b`` (see ``profile`` in the module docstring)."""
    pa = a.profiles[-1] if a.profiles else None
    pb = b.profiles[-1] if b.profiles else None
    if pa is None or pb is None:
        if pa is not None or pb is not None:
            yield Change("profile", "runtime profile", _summary(pa), _summary(pb))
        return
    for name in ("wall_ms", "device_ms", "host_gap_ms", "span_ms", "attributed_share"):
        if getattr(pa, name) != getattr(pb, name):
            yield Change("profile", name, round(getattr(pa, name), 4), round(getattr(pb, name), 4))
    ka, kb = _per_kernel(pa), _per_kernel(pb)
    top = sorted(set(ka) | set(kb), key=lambda k: -max(ka.get(k, 0.0), kb.get(k, 0.0)))[:TOP_KERNELS]
    for k in top:
        yield Change("profile", f"kernel {k} ms/call", _ms(ka.get(k)), _ms(kb.get(k)))


def _tunes(a: CompileReport, b: CompileReport) -> Iterator[Change]:
    """The latest tunes of ``a`` and ``b`` (see ``tune`` in the module docstring)."""
    ta = a.tunes[-1] if a.tunes else None
    tb = b.tunes[-1] if b.tunes else None
    if ta is None and tb is None:
        return
    sa, sb = (t.summary() if t is not None else None for t in (ta, tb))
    if sa != sb:
        yield Change("tune", "tune", sa, sb)
    da, db = (t.best_diff if t is not None else {} for t in (ta, tb))
    yield from _dict_changes("tune", da, db, "best ")
    for s in dict.fromkeys([*_sizes_of(ta), *_sizes_of(tb)]):
        ia, ib = (t.improvement_text(s) if t is not None else None for t in (ta, tb))
        if ia != ib:
            yield Change("tune", f"improvement at {size_name(s)}", ia, ib)


def _sizes_of(t: TuneRecord | None) -> list[Any]:
    return [s for s, _ in t.improvement] if t is not None else []


def _summary(p: RuntimeProfile | None) -> str | None:
    return None if p is None else f"{p.calls} calls on {p.device}: wall {p.wall_ms:.3f} ms"


def _per_kernel(p: RuntimeProfile) -> dict[str, float]:
    """ms per profiled call of each kernel name (its rows summed)."""
    out: dict[str, float] = {}
    for r in p.rows:
        k = _GRAPH_PREFIX.sub("", r.name)
        out[k] = out.get(k, 0.0) + r.total_ms / max(p.calls, 1)
    return out


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _show(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
