"""HTML tables over reports: the pieces (sortable), the report history, the benchmark rows.

Sorting happens here (``sort_by``, ``descending``) so the widget only passes the chosen column;
every cell from the model is HTML-escaped. Each piece row carries, as its tooltip, why the piece
begins where it does (``Piece.cut``: the split policy and its reason); the "cut" column shows it
too when a split policy other than "ops" is in play (under "ops" it only repeats the kind column).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from ..bench.compare import BenchReport
from ..bench.variants import variant_names
from ..config import SPLIT_POLICIES
from ..monitor.phases import inductor_cache_hit
from ..monitor.report import CompileReport, Piece
from .style import MUTED, OUTCOME_COLOURS, TABLE_CSS, WARNING, esc, outcome, seconds

_CSS = f"<style>{TABLE_CSS}</style>"

# column -> (header, cell text, sort key, numeric)
PIECE_COLUMNS: dict[str, tuple[str, Callable[[Piece], str], Callable[[Piece], Any], bool]] = {
    "index": ("#", lambda p: str(p.index), lambda p: p.index, True),
    "kind": ("kind", lambda p: p.kind, lambda p: p.kind, False),
    "nodes": ("nodes", lambda p: str(p.nodes), lambda p: p.nodes, True),
    "unique_key": ("unique key", lambda p: p.unique_key or "-", lambda p: p.unique_key or "", False),
    "same_as": ("same as", lambda p: "" if p.same_as is None else str(p.same_as),
                lambda p: -1 if p.same_as is None else p.same_as, True),
    "compiler": ("compiler", lambda p: p.compiler or "-", lambda p: p.compiler or "", False),
    "compile_s": ("compile time", lambda p: seconds(p.compile_s), lambda p: p.compile_s, True),
    "cache": ("cache tier", lambda p: p.cache or "-", lambda p: p.cache or "", False),
    "fallback_reason": ("fallback reason", lambda p: p.fallback_reason or "", lambda p: p.fallback_reason or "", False),
    "writes": ("writes in place", lambda p: ", ".join(p.writes), lambda p: ", ".join(p.writes), False),
    "cudagraph_skip_reason": ("no CUDA graph because", lambda p: p.cudagraph_skip_reason or "",
                              lambda p: p.cudagraph_skip_reason or "", False),
    "cut": ("cut: policy and why", lambda p: cut_text(p), lambda p: (p.cut is not None, cut_text(p)), False),
}


def cut_text(p: Piece) -> str:
    """Why ``p`` begins where it does, led by the policy that cut there
    (``repeats: block blocks.3 begins (...)``); "" for a graph's first piece (or a report from before cuts)."""
    c = p.cut
    if c is None:
        return ""
    return c.reason if c.reason.startswith(f"{c.policy}:") else f"{c.policy}: {c.reason}"


def cut_tooltip(p: Piece) -> str:
    """The cut as a row's tooltip: its reason, the node it follows and what crosses it."""
    c = p.cut
    if c is None:
        return f"piece {p.index}: the first piece of graph {p.graph}"
    crossing = f"{c.crossing_tensors} tensor(s), {c.crossing_bytes} B cross it"
    return f"cut after node {c.after_node} ({crossing}): {cut_text(p)}"


def shows_cuts(report: CompileReport, sort_by: str = "index") -> bool:
    """Whether the pieces table shows the "cut" column: a split policy other than "ops" was asked
    for (and not ignored by strategy full) or cut the graph, or the table is sorted by it."""
    asked = (report.config.get("split_policy") or "ops") != "ops" and report.strategy != "full"
    return sort_by == "cut" or asked or any(p.cut is not None and p.cut.policy != "ops" for p in report.pieces)


def cut_counts(report: CompileReport) -> dict[str, int]:
    """Cuts per split policy, in SPLIT_POLICIES order (policies without cuts left out)."""
    counts: dict[str, int] = {}
    for p in report.pieces:
        if p.cut is not None:
            counts[p.cut.policy] = counts.get(p.cut.policy, 0) + 1
    order = {k: i for i, k in enumerate(SPLIT_POLICIES)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def policy_text(report: CompileReport) -> str:
    """``split policy repeats: 13 cuts (12 repeats, 1 ops)``, with the bounds the config set;
    "" for a report saved before split policies (nothing to say)."""
    cfg, counts = report.config, cut_counts(report)
    if "split_policy" not in cfg and not counts:
        return ""
    policy = cfg.get("split_policy") or "ops"
    bounds = ", ".join(f"{k}={cfg[k]:g}" for k in ("max_piece_nodes", "max_compile_mb") if cfg.get(k) is not None)
    total = sum(counts.values())
    cuts = (f"{total} cut{'s' if total != 1 else ''} ("
            + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")") if total else "no cuts"
    ignored = " — strategy full ignores it" if report.strategy == "full" and policy != "ops" else ""
    return f"split policy {policy}" + (f" ({bounds})" if bounds else "") + f": {cuts}{ignored}"


def pieces_table(report: CompileReport, sort_by: str = "index", descending: bool = False) -> str:
    """The pieces of ``report`` as an HTML table sorted by ``sort_by`` (a PIECE_COLUMNS key)."""
    if sort_by not in PIECE_COLUMNS:
        raise ValueError(f"pieces_table: sort_by={sort_by!r}; choose one of {', '.join(PIECE_COLUMNS)}")
    key = PIECE_COLUMNS[sort_by][2]
    pieces = sorted(report.pieces, key=lambda p: (key(p), p.index), reverse=descending)
    arrow = " ▼" if descending else " ▲"
    columns = {c: v for c, v in PIECE_COLUMNS.items() if c != "cut" or shows_cuts(report, sort_by)}
    head = "".join(f"<th>{esc(h)}{arrow if c == sort_by else ''}</th>" for c, (h, *_rest) in columns.items())
    rows = []
    for p in pieces:
        colour = OUTCOME_COLOURS[outcome(p)]
        cells = []
        for c, (_h, text, _k, num) in columns.items():
            value = esc(text(p))
            if c == "kind" and p.kind == "split_op":
                value += f" <code>{esc(', '.join(p.split_ops))}</code>"
            cells.append(f'<td class="num">{value}</td>' if num else f"<td>{value}</td>")
        rows.append(f'<tr data-piece="{p.index}" title="{esc(cut_tooltip(p))}" '
                    f'style="border-left:4px solid {colour}">{"".join(cells)}</tr>')
    return (f'{_CSS}<table class="vx-table vx-pieces" data-report="{report.id}">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _hits(counters: dict[str, int]) -> int:
    """Unique pieces served by any vexplore tier."""
    return sum(counters.get(f"cache_hits_{tier}", 0) for tier in ("memory", "disk", "remote"))


def inductor_cache_text(report: CompileReport) -> str:
    """Whether Inductor's own caches (FX graph, AOTAutograd) served this report's compiles, said
    plainly: a compile they served is not cold whatever vexplore's tiers were. "" without compiles."""
    compiles = [e for e in report.events if e.step == "compile"]
    if not compiles:
        return ""
    served = sum(inductor_cache_hit(e) for e in compiles)
    if served:
        return (f"Inductor's own cache served {served} of {len(compiles)} compile{'s' if len(compiles) != 1 else ''}: "
                "not a cold compile")
    tiers = (report.config.get("cache") or {}).get("tiers", ())
    return "cold: no cache served the compiles" if not tiers else ""


def summary_html(report: CompileReport, title: str = "", number: int | None = None) -> str:
    """One line about a report: strategy and why, the split policy and its cuts per policy, counters
    that matter, wall time, whether Inductor's own cache served it, warnings.
    ``number``: the report's number in its explorer (1, 2, 3; default: its id)."""
    c = report.counters
    hits = _hits(c)
    policy = policy_text(report)
    parts = [f"<b>{esc(title)}</b> " if title else "",
             f"report {report.id if number is None else number} ({esc(report.kind)}) on <b>{esc(report.device)}</b>: "
             f"strategy <b>{esc(report.strategy)}</b> <i>({esc(report.strategy_reason)})</i> · ",
             f'<span class="vx-policy">{esc(policy)}</span> · ' if policy else "",
             f"{c.get('pieces', 0)} pieces, {c.get('unique_pieces', 0)} unique · "
             f"{c.get('inductor_compiles', 0)} Inductor compiles · {hits} cache hits, {c.get('cache_misses', 0)} misses · "
             f"{c.get('fallbacks', 0)} fallbacks · wall {esc(seconds(report.wall_s))}"]
    inductor = inductor_cache_text(report)
    if inductor:
        parts.append(f' · <span class="vx-inductor-cache">{esc(inductor)}</span>')
    for w in report.warnings:
        parts.append(f'<div style="color:{WARNING}">⚠ {esc(w)}</div>')
    return f'<div class="vx-summary" data-report="{report.id}">{"".join(parts)}</div>'


def history_table(reports: Sequence[CompileReport], current: CompileReport | int | None = None) -> str:
    """Every report of an explorer, one row each, numbered 1, 2, 3 in its order (``data-row``: the
    index), for comparing configurations: the variant name (what differs), strategy, CUDA graphs,
    the split ops the graph was cut at, cache tiers and where the pieces came from. ``current``:
    the report shown (highlighted), or its id."""
    head = ("<tr><th>#</th><th>variant</th><th>kind</th><th>strategy</th><th>CUDA graphs</th><th>cut at</th>"
            "<th>cache tiers</th><th>served from</th><th>compiler</th><th>pieces</th><th>unique</th>"
            "<th>compiles</th><th>pieces time</th><th>wall</th></tr>")
    names = variant_names([r.config for r in reports])
    rows = []
    for i, (r, name) in enumerate(zip(reports, names)):
        c, cfg = r.counters, r.config
        shown = r is current if isinstance(current, CompileReport) else r.id == current
        bold = ' class="vx-current"' if shown else ""
        strategy = r.strategy if cfg.get("strategy") in (None, r.strategy) else f"{cfg['strategy']} → {r.strategy}"
        tiers = ", ".join((cfg.get("cache") or {}).get("tiers") or ()) or "none"
        rows.append(f'<tr data-row="{i}" data-report="{r.id}"{bold}><td class=num>{i + 1}</td>'
                    f"<td>{esc(name if cfg else '-')}</td><td>{esc(r.kind)}</td><td>{esc(strategy)}</td>"
                    f"<td>{esc(cfg.get('cudagraph', '-'))}</td>{_cut_at(r)}<td>{esc(tiers)}</td>"
                    f"<td>{esc(_served(r))}</td><td>{esc(cfg.get('compiler', '-'))}</td>"
                    f"<td class=num>{c.get('pieces', 0)}</td><td class=num>{c.get('unique_pieces', 0)}</td>"
                    f"<td class=num>{c.get('inductor_compiles', 0)}</td>"
                    f"<td class=num>{esc(seconds(sum(p.compile_s for p in r.pieces)))}</td>"
                    f"<td class=num>{esc(seconds(r.wall_s))}</td></tr>")
    return f'{_CSS}<table class="vx-table vx-history"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _cut_at(r: CompileReport) -> str:
    """The split ops the graph was cut at, with counts, then the split policy's own cuts
    (``repeats ×12``); the configured list and the policy as the tooltip."""
    cuts: dict[str, int] = {}
    for p in r.pieces:
        for op in p.split_ops if p.kind == "split_op" else ():
            cuts[op] = cuts.get(op, 0) + 1
    cuts.update({policy: n for policy, n in cut_counts(r).items() if policy != "ops"})
    text = ", ".join(f"{op} ×{n}" for op, n in cuts.items()) or "none"
    configured = ", ".join(r.config.get("splitting_ops") or ()) or "none"
    policy = policy_text(r)
    return f'<td title="splitting_ops: {esc(configured)}{"; " + esc(policy) if policy else ""}">{esc(text)}</td>'


def _served(r: CompileReport) -> str:
    """Where the unique pieces came from: ``memory 3``, ``disk 2, miss 1``, and how many compiles
    Inductor's own cache served (``miss 3 (Inductor's cache 3)``)."""
    c = r.counters
    parts = [f"{t} {c[f'cache_hits_{t}']}" for t in ("memory", "disk", "remote") if c.get(f"cache_hits_{t}")]
    parts += [f"miss {c['cache_misses']}"] if c.get("cache_misses") else []
    inductor = sum(inductor_cache_hit(e) for e in r.events)
    return (", ".join(parts) or "-") + (f" (Inductor's cache {inductor})" if inductor else "")


def _ms(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def bench_table(report: BenchReport | None) -> str:
    """Benchmark rows by size: time per call with spread, speed-up over eager (or why none:
    noisy, failed), max error vs eager, and the timer that made the figures."""
    dim = report.rows[0].size_dim if report is not None and report.rows else "tokens"
    head = (f"<tr><th>{esc(dim)}</th><th>variant</th><th>median ms</th><th>p20–p80 ms</th>"
            "<th>speed-up vs eager</th><th>max rel err</th><th>first call</th></tr>")
    rows = [] if report is None else sorted(report.rows, key=lambda r: (r.tokens is None, r.tokens or 0))
    body = []
    for r in rows:
        verdict = report.verdict(r).replace("x", "×") if r.status == "ok" else f'<b style="color:{WARNING}">{esc(r.status)}</b>'
        err = "-" if r.max_rel_err is None else f"{r.max_rel_err:.2e}"
        first = "-" if r.first_call_s is None else seconds(r.first_call_s)
        size = "-" if r.tokens is None else str(r.tokens)
        body.append(f'<tr><td class=num>{size}</td><td title="{esc(r.compiled_as)}">{esc(r.variant)}</td>'
                    f"<td class=num>{_ms(r.median_ms)}</td><td class=num>{_ms(r.p20_ms)}–{_ms(r.p80_ms)}</td>"
                    f"<td class=num>{verdict}</td><td class=num>{err}</td><td class=num>{esc(first)}</td></tr>")
    if not body:
        body.append('<tr><td colspan="7"><i>no benchmark yet</i></td></tr>')
    timer = "" if report is None else (f'<div style="font-size:11px;color:{MUTED}">timer: {esc(report.timer)} — '
                                       + ("one call from an idle GPU (host overhead counted)" if report.timer == "idle"
                                          else "back-to-back calls, as triton's do_bench") + "; perf_counter on the CPU</div>")
    return f'{_CSS}<table class="vx-table vx-bench"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>{timer}'
