"""Detectors of how the model runs: split ops, CUDA graphs, fast path, training mode, and the benchmark's figures."""
from __future__ import annotations

from typing import Any

from ..bench.compare import training_warning
from .advice import Advice, Context

HOST_BOUND_GROWTH = 1.25    # time grew less than this while the size grew...
HOST_BOUND_SIZES = 4.0      # ...at least this many times: per-call overhead dominates


def _warnings(ctx: Context, *kinds: str) -> list[Any]:
    rep = ctx.latest
    return [w for w in (rep.warnings if rep is not None else ()) if w.kind in kinds]


def fast_path_op(ctx: Context) -> list[Advice]:
    return [Advice("fast-path-op", "info", f"{w} Nothing to change: compare against eager with vx.benchmark, which "
                   "times the model as you call it.", {"graph": w.graph}) for w in _warnings(ctx, "fast_path")]


def split_op_missing(ctx: Context) -> list[Advice]:
    """Split ops the user named that the graph lacks; the config uses the names the warning suggests."""
    cfg = ctx.cm.config
    # a no_split warning counts only where it names ops the user gave (CompileWarning.ops), not the defaults
    found = _warnings(ctx, "split_op_missing") + [w for w in _warnings(ctx, "no_split") if w.ops]
    if not found:
        return []
    text = " ".join(str(w) for w in found)
    missing = list(dict.fromkeys(o for w in found for o in w.ops))
    better = list(dict.fromkeys(s for w in found for s in w.suggested))
    config = None
    if better and cfg.splitting_ops is not None:
        ops = [o for o in cfg.splitting_ops if o not in missing] + [o for o in better if o not in cfg.splitting_ops]
        config = cfg.replace(splitting_ops=ops, strategy="piecewise" if cfg.strategy == "auto" else cfg.strategy)
    return [Advice("split-op-missing", "warning", text + (f" Use splitting_ops={config.splitting_ops!r}." if config else ""),
                   {"missing": missing, "suggested": better}, config, "split_pieces" if config is not None else None)]


def cudagraph_skipped(ctx: Context) -> list[Advice]:
    rep = ctx.latest
    if rep is None:
        return []
    pieces = [p for p in rep.pieces if p.cudagraph_skip_reason]
    notes = [str(w) for w in _warnings(ctx, "cudagraph_skip")] + [f"piece {p.index}: {p.cudagraph_skip_reason}" for p in pieces]
    if not notes:
        return []
    return [Advice("cudagraph-skipped", "warning",
                   f"the config asked for CUDA graphs (cudagraph={ctx.cm.config.cudagraph!r}) but some work runs without "
                   f"them: {'; '.join(notes[:4])}. Each skip costs a kernel launch per op on every call; the reasons say "
                   "what to change (an op that syncs with the CPU, inputs that move, a size not captured).",
                   {"pieces": [p.index for p in pieces], "reasons": notes[:10]})]


def training_mode(ctx: Context) -> list[Advice]:
    out = []
    said = training_warning(ctx.cm.model)
    if said:
        out.append(Advice("training-mode", "warning", said + "; for inference, call it under torch.no_grad() too.",
                          {"training": True}))
    grad = _warnings(ctx, "autograd")
    if grad:
        out.append(Advice("training-mode", "info", f"{grad[0]}: a graph compiled for autograd saves activations for "
                          "backward and cannot use CUDA graphs.", {"graphs": [w.graph for w in grad]}))
    return out


def host_bound(ctx: Context) -> list[Advice]:
    """Compiled variants whose time per call hardly grows with the size: the host launches, the device waits."""
    if ctx.bench is None:
        return []
    out = []
    for variant in dict.fromkeys(r.variant for r in ctx.bench.rows if r.variant != "eager"):
        rows = sorted((r for r in ctx.bench.rows if r.variant == variant and r.tokens and r.status == "ok"),
                      key=lambda r: r.tokens)
        if len(rows) < 2 or rows[-1].tokens < HOST_BOUND_SIZES * rows[0].tokens:
            continue
        growth = rows[-1].median_ms / rows[0].median_ms if rows[0].median_ms else 0.0
        cuda = ctx.latest is not None and ctx.latest.device == "cuda"
        mode = variant.split("[")[0].rsplit("-", 1)[-1] if variant.startswith("vexplore-") else None   # its cudagraph
        graphs = variant.startswith("torch-reduce-overhead") or (mode not in (None, "none") and (cuda or mode != "auto"))
        if growth >= HOST_BOUND_GROWTH or graphs:
            continue
        cfg = ctx.cm.config.replace(cudagraph="auto") if cuda and ctx.cm.config.cudagraph == "none" else None
        fix = ("Capture CUDA graphs: CompileConfig(cudagraph='auto') replays each size's kernels in one launch."
               if cuda else "On a GPU, CUDA graphs (CompileConfig(cudagraph='auto')) remove it; on the CPU, batch more work per call.")
        out.append(Advice(
            "host-bound", "warning",
            f"{variant}: {rows[0].median_ms:.3f} ms at {rows[0].tokens} {rows[0].size_dim} and {rows[-1].median_ms:.3f} ms at "
            f"{rows[-1].tokens} ({growth:.2f}x for {rows[-1].tokens / rows[0].tokens:.0f}x the work): the time per call is "
            f"the host's launch overhead, not the work. {fix}",
            {"variant": variant, "sizes": [r.tokens for r in rows], "median_ms": [r.median_ms for r in rows]},
            cfg, "median_ms" if cfg is not None else None))
    return out


def noisy_timing(ctx: Context) -> list[Advice]:
    rows = [r for r in (ctx.bench.rows if ctx.bench is not None else ()) if r.status == "noisy"]
    if not rows:
        return []
    named = ", ".join(f"{r.variant}@{r.tokens} (+-{r.median_ci:.0%}, spread {r.spread:.0%})" for r in rows[:4])
    return [Advice("noisy-timing", "info",
                   f"{len(rows)} benchmark figure(s) stayed uncertain: {named}. They are not shown as speed-ups. Another "
                   "process is using the machine, or calls are too short to time: close other work, raise "
                   "vx.benchmark(..., budget_s=...), or use timer='steady'.",
                   {"rows": [{"variant": r.variant, "tokens": r.tokens, "median_ci": r.median_ci} for r in rows]})]


def accuracy(ctx: Context) -> list[Advice]:
    """Benchmark rows over the accuracy gate, and validation mismatches in this model's compiles."""
    failed = [r for r in (ctx.bench.rows if ctx.bench is not None else ()) if r.status == "failed"]
    mismatches = [line for r in ctx.reports for line in r.validation if "mismatch" in line]
    mismatches += [f"piece {p.index}: {p.validation}" for r in ctx.reports for p in r.unique_pieces
                   if p.validation and p.validation.startswith("mismatch")]
    if not failed and not mismatches:
        return []
    said = [f"{r.variant}@{r.tokens}: max rel err {r.max_rel_err:.2e}" for r in failed[:4]] + mismatches[:4]
    low = any(r.max_rel_err < 1e-2 for r in failed)
    return [Advice("accuracy", "critical",
                   f"compiled output disagrees with eager: {'; '.join(said)}. "
                   + ("Small errors in reduced precision usually come from fusion reordering sums: compare in float32, "
                      "or set inductor_options={'emulate_precision_casts': True}. " if low else "")
                   + "Find the piece with CompileConfig(validate=True) (report.validation names it); a piece whose "
                   "custom op's fake kernel lies, or that reads random numbers, differs for real.",
                   {"bench": [r.to_dict() for r in failed[:10]], "validation": mismatches[:10]})]
