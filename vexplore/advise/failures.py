"""Detectors of things that failed: pieces that did not compile, a cache that refused, pieces that raised."""
from __future__ import annotations

from typing import Any

from ..config import DEFAULT_SPLITTING_OPS, CompileConfig
from .advice import Advice, Context


def compile_system_failure(ctx: Context) -> list[Advice]:
    """Pieces of the latest compile that ended off the configured compiler, and compile workers that failed."""
    rep = ctx.latest
    if rep is None:
        return []
    fell = [p for p in rep.unique_pieces if p.fallback_reason and (p.compiler != ctx.cm.config.compiler or p.isolated)]
    crashed, timed_out = rep.counters.get("worker_crashed", 0), rep.counters.get("worker_timeout", 0)
    if not fell and not crashed and not timed_out:
        return []
    lines = [f"piece {p.index} (graph {p.graph}): {p.fallback_reason}" for p in fell[:3]]
    if crashed or timed_out:
        lines.append(f"{crashed} compile worker(s) crashed and {timed_out} timed out")
    ops = sorted({_custom(p.fallback.op) for p in fell if p.fallback is not None and _custom(p.fallback.op)})
    cfg, metric = _split_at(ctx.cm.config, ops), "fallbacks"
    if ops:
        fix = (f"The failing op {', '.join(ops)} has no Inductor lowering: make it a split op so it runs eagerly by design "
               f"and the rest compiles whole: CompileConfig(strategy='piecewise', splitting_ops=[..., {ops[0]!r}]).")
    elif any(p.fallback is not None and p.fallback.cause == "inductor options" for p in fell):
        fix, cfg = "Check CompileConfig.inductor_options: Inductor refused them.", None
    else:
        fix, cfg = ("Read the reason above; a piece that fell back runs correctly, only slower. Report Inductor errors "
                    "upstream with the piece's graph (report.pieces[i].code)."), None
    eager = any(p.compiler == "eager" for p in fell)
    return [Advice(
        "compile-system-failure", "critical" if eager else "warning",
        f"{len(fell)} piece(s) did not compile with {ctx.cm.config.compiler}: " + "; ".join(lines) + ". " + fix,
        {"pieces": [p.index for p in fell], "reasons": [p.fallback_reason for p in fell], "ops": ops,
         "worker_crashed": crashed, "worker_timeout": timed_out}, cfg, metric if cfg is not None else None)]


def _custom(op: str | None) -> str | None:
    """A failing op as a split op names it (``ns::op``), aten's and prims' left out (those lower)."""
    if op is None or op.startswith(("aten::", "prims::")):
        return None
    return op.removesuffix(".default")


def _split_at(cfg: CompileConfig, ops: list[str]) -> CompileConfig | None:
    if not ops:
        return None
    current = tuple(cfg.splitting_ops) if cfg.splitting_ops is not None else tuple(DEFAULT_SPLITTING_OPS)
    return cfg.replace(strategy="piecewise", splitting_ops=current + tuple(o for o in ops if o not in current))


def cache_failure(ctx: Context) -> list[Advice]:
    """Entries a tier refused (damaged, other format, failed to load) in this model's compiles."""
    rejected = sum(r.counters.get("cache_rejected", 0) for r in ctx.reports)
    bad = [m.reason for r in ctx.reports for p in r.unique_pieces for m in p.misses if m.rejected]
    if not rejected and not bad:
        return []
    said = "; ".join(dict.fromkeys(bad))[:400] or "see the report's cache_rejected counter"
    return [Advice(
        "cache-failure", "warning",
        f"the cache refused {max(rejected, len(bad))} entries of this model ({said}): those pieces compiled again. "
        "A damaged or foreign entry is dropped and rewritten; if it repeats, check the cache dir's disk "
        "(`vexplore cache verify`) or the remote tier's server.",
        {"rejected": rejected, "reasons": list(dict.fromkeys(bad))[:5]})]


def runtime_fallback(ctx: Context) -> list[Advice]:
    """Compiled pieces that raised when called and run eagerly since (cm.runtime_fallbacks)."""
    out = []
    for fb in ctx.cm.runtime_fallbacks:
        ops = _custom_ops(ctx, fb)
        who = f" It calls {', '.join(ops)}: a custom op whose fake kernel promises other shapes, strides or dtypes " \
              "than its real kernel returns is the usual cause; fix the fake kernel (register_fake), or make it a split " \
              f"op so it runs eagerly by design: splitting_ops=[..., {ops[0]!r}]." if ops else \
              " Compare the piece's code (report.pieces[i].code) with eager on the failing input."
        out.append(Advice(
            "runtime-fallback", "warning",
            f"graph {fb.graph} piece {fb.piece} raised {fb.error_class} when called ({fb.error}) and runs eagerly from "
            f"then on: correct, but uncompiled.{who}",
            {"graph": fb.graph, "piece": fb.piece, "error_class": fb.error_class, "error": fb.error, "ops": ops}))
    return out


def _custom_ops(ctx: Context, fb: Any) -> list[str]:
    for rep in reversed(ctx.reports):
        for p in rep.pieces:
            if p.index == fb.piece and p.graph == fb.graph:
                return sorted({n.target for n in p.graph_nodes if "::" in n.target
                               and not n.target.startswith(("aten::", "prims::"))})
    return []
