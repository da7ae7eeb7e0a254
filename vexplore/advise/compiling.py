"""Detectors over the session's compile history: slow compiles, repeated blocks, the cache, memory."""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any

from ..engine.split.repeats import MIN_BLOCK_NODES, module_repeats
from ..monitor.phases import inductor_cache_hit
from ..monitor.report import CompileReport, Piece
from .advice import Advice, Context

SLOW_RATIO = 3.0        # a compile this many times slower than the same key's best is slow...
SLOW_MIN_S = 0.25       # ...when it also lost at least this many seconds
SLOW_TOTAL_S = 30.0     # a compile whose pieces took this long in all, with several unique pieces: use workers
LOW_HIT_RATE = 0.5      # later compiles hitting the cache less often than this...
LOW_HIT_LOOKUPS = 3     # ...over at least this many lookups
MEM_GROWTH_MB = 256.0   # memory grown across this model's compiles, first to last


def slow_compile(ctx: Context) -> list[Advice]:
    """Pieces slow against the same cache key's best compile in the session, and compiles slow in all."""
    out = []
    slow = _slow_against_history(ctx)
    if slow:
        worst = max(slow, key=lambda s: s["seconds"] / max(s["best_s"], 1e-9))
        out.append(Advice("slow-compile", "info", _slow_message(worst), {"pieces": slow}))
    total = _slow_in_all(ctx)
    if total is not None:
        out.append(total)
    return out


def _slow_against_history(ctx: Context) -> list[dict[str, Any]]:
    """Compiled pieces of this model slower than SLOW_RATIO x the fastest compile of the same unique key
    and the same work (``_same_work``) before them in the session, each with its ``cause`` read from the compile events: ``new_sizes``
    (sizes no compile of the key had before), ``inductor_cache_miss`` (Inductor's own cache served
    a size then and not now), ``retries`` (the fallback ladder compiled a size again), else ``busy``
    (the same work as then, only slower)."""
    best: dict[str, float] = {}             # unique key -> seconds of its fastest compile
    sizes: dict[str, set[Any]] = {}         # unique key -> the sizes compiled for it so far
    served: dict[str, set[Any]] = {}        # unique key -> the sizes Inductor's own cache served for it so far
    found = []
    mine = {id(r) for r in ctx.reports}
    for rep in ctx.history:
        for p in rep.unique_pieces:
            if p.cache not in ("miss", None) or p.unique_key is None:
                continue
            key, work = f"{p.unique_key}|{_same_work(rep)}", _work(rep, p)
            prior = best.get(key)
            if id(rep) in mine and prior is not None and p.compile_s > SLOW_RATIO * prior and p.compile_s - prior > SLOW_MIN_S:
                found.append({"report": rep.id, "piece": p.index, "graph": p.graph, "nodes": p.nodes,
                              "seconds": round(p.compile_s, 3), "best_s": round(prior, 3),
                              **_cause(work, sizes.get(key, set()), served.get(key, set()))})
            best[key] = p.compile_s if prior is None else min(prior, p.compile_s)
            sizes.setdefault(key, set()).update(size for size, _ in work)
            served.setdefault(key, set()).update(size for size, hit in work if hit)
    return found


# Inductor options that decide only whether its caches are used, never what it compiles
_CACHE_OPTIONS = frozenset({"fx_graph_cache", "fx_graph_remote_cache", "autotune_local_cache", "autotune_remote_cache",
                            "bundled_autotune_remote_cache", "force_disable_caches"})


def _same_work(rep: CompileReport) -> str:
    """What decides a compile's work besides the piece: the compiler, Inductor's mode and options
    (cache switches aside). Compiles of one piece under another of these are not compared."""
    cfg = rep.config
    options = sorted((k, repr(v)) for k, v in dict(cfg.get("inductor_options") or {}).items() if k not in _CACHE_OPTIONS)
    return repr((cfg.get("compiler"), cfg.get("mode"), options, cfg.get("post_grad_passes")))


def _work(rep: CompileReport, p: Piece) -> list[tuple[Any, bool]]:
    """(size, served by Inductor's own cache) of each compile event of piece ``p``."""
    return [(e.size, inductor_cache_hit(e)) for e in rep.events
            if e.step == "compile" and e.piece == p.index and e.graph == p.graph]


def _cause(work: list[tuple[Any, bool]], before: set[Any], served_before: set[Any]) -> dict[str, Any]:
    """Why a piece's compile (``work``) was slow, against the sizes compiled before (``before``) and those
    Inductor's own cache served before (``served_before``)."""
    sizes = [size for size, _ in work]
    new = sorted({s for s in sizes if s not in before}, key=lambda s: -1 if s is None else s)
    lost = [s for s, hit in work if not hit and s in served_before]
    served = sum(hit for _, hit in work)
    if new:
        cause = "new_sizes"
    elif lost:
        cause = "inductor_cache_miss"
    elif len(sizes) > len(set(sizes)):
        cause = "retries"
    else:
        cause = "busy"
    return {"cause": cause, "new_sizes": ["general" if s is None else s for s in new], "compiles": len(work),
            "inductor_cache_served": served}


def _slow_message(w: dict[str, Any]) -> str:
    head = (f"piece {w['piece']} (graph {w['graph']}, {w['nodes']} nodes) took {w['seconds']:.2f} s to compile, "
            f"{w['seconds'] / max(w['best_s'], 1e-9):.1f}x the {w['best_s']:.2f} s the same cache key took earlier in "
            "this session")
    served = f"Inductor's own cache served {w['inductor_cache_served']} of its {w['compiles']} compiles"
    if w["cause"] == "new_sizes":
        return (f"{head}: more work, not a slower machine. It compiled sizes {', '.join(map(str, w['new_sizes']))} that "
                f"no earlier compile of it did (compile_sizes), each a compile of its own ({served}). List in "
                "compile_sizes only the sizes you call, and keep a disk tier so each size compiles once.")
    if w["cause"] == "inductor_cache_miss":
        return (f"{head}: Inductor's own cache served this work before and missed this time ({served}), so it "
                "compiled from scratch: Inductor's cache directory was cleared, or its key changed (inductor_options "
                "such as fx_graph_cache or force_disable_caches, another torch). Keep a vexplore disk tier so the "
                "artifact is loaded instead.")
    if w["cause"] == "retries":
        return (f"{head}: the fallback ladder compiled it again ({w['compiles']} compiles): see the piece's "
                "fallback_reason for what failed the first time.")
    return (f"{head}, doing the same work as then (the same sizes, {served}): the machine was busy. Compile again "
            "when the machine is quiet, or keep a disk tier so the artifact is loaded instead.")


def _slow_in_all(ctx: Context) -> Advice | None:
    rep, cfg = ctx.latest, ctx.cm.config
    if rep is None or cfg.compiler != "inductor":
        return None
    spent = sum(p.compile_s for p in rep.unique_pieces if p.cache in ("miss", None))
    unique = len(rep.unique_pieces)
    if spent < SLOW_TOTAL_S:
        return None
    evidence = {"compile_s": round(spent, 2), "unique_pieces": unique, "workers": cfg.workers, "mode": cfg.mode}
    if cfg.mode.startswith("max-autotune"):
        return Advice("slow-compile", "warning", f"compiling took {spent:.1f} s, most of it autotuning (mode={cfg.mode!r}). "
                      "mode='default' compiles far faster; keep max-autotune for the final run.", evidence,
                      cfg.replace(mode="default"), "compile_s")
    if cfg.workers == 0 and unique >= 2:
        n = max(2, min(unique, (os.cpu_count() or 2) // 2, 8))
        return Advice("slow-compile", "warning", f"compiling {unique} unique pieces one after another took {spent:.1f} s. "
                      f"Compile them in parallel: CompileConfig(workers={n}).", evidence, cfg.replace(workers=n), "compile_s")
    return None


def repeated_blocks(ctx: Context) -> list[Advice]:
    """Identical numbered blocks (layers.0, layers.1, ...) inside one compiled piece."""
    rep = ctx.latest
    if rep is None:
        return []
    for p in rep.unique_pieces:
        found = _repeats(ctx.cm, p)
        if found is None:
            continue
        container, count, size = found
        cfg = ctx.cm.config.replace(strategy="piecewise", split_policy="repeats")
        how = f"CompileConfig(strategy='piecewise', split_policy='repeats') cuts at the blocks, so one compile serves all {count}"
        return [Advice(
            "repeated-blocks", "info",
            f"piece {p.index} (graph {p.graph}) compiles {count} identical blocks {container}.0-{count - 1} ({size} nodes "
            f"each) inside one piece of {p.nodes} nodes: the compiler works through every copy. {how}.",
            {"piece": p.index, "graph": p.graph, "blocks": count, "block_nodes": size, "container": container,
             "piece_nodes": p.nodes}, cfg, "compiled_nodes")]
    return []


def _repeats(cm: Any, p: Piece) -> tuple[str, int, int] | None:
    """(container, identical blocks, nodes per block) of the largest repeated container in piece ``p``,
    found as the repeats split policy finds it (engine/split/repeats.py) on the captured graph's nodes, so
    the advised config cuts where the advice says."""
    graph = next((g for g in cm.graphs if g.index == p.graph), None)
    if graph is None:
        return None
    names = {n.name for n in p.graph_nodes}
    best = None
    for r in module_repeats([n for n in graph.gm.graph.nodes if n.name in names]):
        for b in r.blocks:
            count = r.identical(b)
            if count >= 2 and b.nodes >= MIN_BLOCK_NODES and (best is None or count * b.nodes > best[1] * best[2]):
                best = (r.container, count, b.nodes)
    return best


def no_persistent_cache(ctx: Context) -> list[Advice]:
    cfg = ctx.cm.config
    if ctx.latest is None or cfg.compiler != "inductor" or {"disk", "remote"} & set(cfg.cache.tiers):
        return []
    tiers = tuple(cfg.cache.tiers) + ("disk",)
    spent = sum(p.compile_s for p in ctx.latest.unique_pieces)
    return [Advice(
        "no-persistent-cache", "warning",
        f"the cache tiers are {tuple(cfg.cache.tiers)}: no disk or remote tier, so every new process compiles these "
        f"{len(ctx.latest.unique_pieces)} pieces again ({spent:.1f} s here). Add the disk tier: "
        f"CompileConfig(cache=vx.CacheConfig(tiers={tiers}))",
        {"tiers": list(cfg.cache.tiers), "compile_s": round(spent, 3)},
        cfg.replace(cache=dataclasses.replace(cfg.cache, tiers=tiers)), "persistent_pieces")]


def low_cache_hit_rate(ctx: Context) -> list[Advice]:
    """Lookups that keep missing where the cache could have served them: a unique piece (at a size)
    this model compiled before under the same config. A first compile misses by design and is not
    counted: a new config is a new key (so is an applied advice's), and so is a new graph (a re-trace,
    the documented 1-token decode graph)."""
    seen: set[tuple[str, str, Any]] = set()
    hits = lookups = 0
    parts: Counter[str] = Counter()
    for r in ctx.reports:
        cfg = repr(sorted(r.config.items()))
        for p in r.unique_pieces:
            for size, tier in p.cache_by_size:
                key = (cfg, p.unique_key or "", size)
                if tier in ("memory", "disk", "remote", "miss") and key in seen:
                    lookups += 1
                    hits += tier != "miss"
                    if tier == "miss":
                        parts.update(miss_parts(p, size))
                seen.add(key)
    if lookups < LOW_HIT_LOOKUPS or hits / lookups >= LOW_HIT_RATE:
        return []
    changing, n = parts.most_common(1)[0] if parts else ("unknown", 0)
    return [Advice(
        "low-cache-hit-rate", "warning",
        f"{hits} of {lookups} cache lookups hit where this model had compiled the same piece under the same config "
        f"before ({hits / lookups:.0%}). The key part that keeps changing: {changing} ({n} misses). {_miss_fix(changing)}",
        {"hits": hits, "lookups": lookups, "hit_rate": round(hits / lookups, 3), "changing": dict(parts.most_common(5))})]


def miss_parts(p: Piece, size: int | None) -> list[str]:
    """The cache-key parts a piece's misses at ``size`` name (``config.mode``, ``inputs[0]``, ``graph``), or
    why none (``Piece.misses``: the cache's fields, never its prose)."""
    out: list[str] = []
    for m in p.misses:
        if m.size != size:
            continue
        if m.differs:
            out += m.differs
        elif not m.rejected:
            out.append("nothing stored (evicted, or a new cache)")
    return out


def _miss_fix(part: str) -> str:
    if part.startswith("config"):
        return "Each value of that setting compiles anew: settle on one, or keep the disk tier so each is compiled once."
    if part.startswith("inputs"):
        return "Input shapes or dtypes change from compile to compile: mark the changing dim dynamic (dynamic_dims)."
    if part.startswith("versions"):
        return "torch, vexplore or the device changed: artifacts of other versions are never reused."
    if part.startswith("graph"):
        return "The traced graph changes: the model's code or a Python value it reads changes between traces."
    if part.startswith("nothing"):
        return "Entries are evicted before reuse: raise CacheConfig(memory_entries=...) or add the disk tier."
    return "See each piece's miss_reasons in the report."


def memory_growth(ctx: Context) -> list[Advice]:
    """Process (RSS) or device memory that grew across this model's compiles."""
    rss = [m for m in (_peak(r, "rss_peak_mb") for r in ctx.reports) if m is not None]
    dev = [m for m in (_peak(r, "device_peak_mb") for r in ctx.reports) if m is not None]
    pools = sum(s.memory_mb for g in ctx.cm.graphs if g.graph_stats is not None for s in g.graph_stats.sizes.values())
    out = []
    for what, xs in (("process memory (RSS)", rss), ("device memory", dev)):
        if len(xs) < 3 or xs[-1] - xs[0] < MEM_GROWTH_MB or xs[-1] < max(xs) * 0.95:
            continue
        # Whole MiB in both the message and the evidence, so the two never read differently.
        first, last = round(xs[0]), round(xs[-1])
        per = round((last - first) / (len(xs) - 1))
        out.append(Advice(
            "memory-growth", "warning",
            f"{what} grew from {first} to {last} MiB over {len(xs)} compiles of this model (about {per} MiB "
            f"each): every re-trace keeps its graph and compiled pieces alive ({len(ctx.cm.graphs)} graphs held"
            f"{f', CUDA graph pools {pools:.0f} MiB' if pools else ''}). Stop the recompiles (see the recompile advice), "
            "or compile the model anew (vx.compile) to drop the old graphs.",
            {"what": what, "first_mb": first, "last_mb": last, "compiles": len(xs),
             "per_compile_mb": per, "graphs": len(ctx.cm.graphs), "cudagraph_pool_mb": round(pools, 1)}))
    return out


def _peak(r: CompileReport, attr: str) -> float | None:
    xs = [getattr(e, attr) for e in r.events if getattr(e, attr) is not None]
    return max(xs) if xs else None
