"""The runtime profile's build check on the CPU (issue 26): the profiling build against the production build.

    python benchmarks/profile_check.py --out benchmarks/results/cpu-profile-check.json [--repeats 2]

On the CPU, ``cm.profile`` names Inductor's C++ kernels with a profiling build of the same pieces
(``cpp.enable_kernel_profile``: a profiler range around every C++ kernel call) and checks per piece
that it runs the production build's work: ``prof.build_check``. For the toy Llama (4 layers, piecewise
at its attention op) at several widths and token counts, each piece's time in the two builds is
measured four ways, per compiled and split-op piece:

- ``blocks``: the check as it was before: 20 production calls under the profiler, then (after 5 warm
  calls) 20 profiling-build calls in a second profiler session; medians per piece.
- ``interleaved``: the check ``cm.profile(x, calls=20, warmup=5)`` makes now: both builds' calls
  alternating in one profiler session (30 pairs), the paired median difference and its 95 % interval.
- ``a-a``: the same interleaved check with the production build on both sides: the method's noise
  floor on this machine at that moment.
- ``no-profiler``: both builds' pieces timed by ``time.perf_counter`` around each piece's runner,
  interleaved in blocks of 5 calls, 100 calls each, no profiler running: whether the two builds'
  code differs at all when the ranges record nothing.

Rows: ``{"model", "tokens", "size_dim", "variant" (the method), "repeat", "piece", "kind",
"production_us", "profiling_us", "diff", "diff_low", "diff_high", "pairs", "ranges", "verdict",
"load"}`` (``load``: the 1-minute load average when that measurement began; this machine has 2 cores
and is shared). The markdown table goes to stdout. ``blocks`` runs the profiling build with the
production build's split-op runners, as the check does now (the first check ran the build's own).
The committed results file holds two runs of this script merged (``runs``; each row's ``run``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import vexplore as vx  # noqa: E402
from vexplore.bench import profile as P  # noqa: E402
from vexplore.engine.runtime.stitch import piece_hooks  # noqa: E402
from vexplore.models.toy_llama import ToyLlama  # noqa: E402
from vexplore.monitor.profile import PieceCheck  # noqa: E402

SIZES = [(64, 1), (64, 16), (64, 128), (256, 16), (1024, 1), (1024, 128)]   # (dim, tokens)
LAYERS, CALLS, WARMUP = 4, 20, 5


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _medians(run: Any) -> dict[int, float]:
    runs: dict[int, list[float]] = {}
    for _, piece, a, b in run.pieces:
        runs.setdefault(piece, []).append((b - a) / 1e3)
    return {p: statistics.median(v) for p, v in runs.items()}


def blocks(cm: Any, x: tuple, build: dict) -> list[PieceCheck]:
    """The check before issue 26's fix: two profiler sessions back to back, production then profiling."""
    production, _ = P._traced(cm, x, CALLS, {})
    profiling, _ = P._traced(cm, x, CALLS, build, warm=WARMUP)
    a, b = _medians(production), _medians(profiling)
    return [PieceCheck(p, a[p], b.get(p, 0.0), CALLS, b.get(p, 0.0) / a[p] - 1.0 if a[p] else None)
            for p in sorted(a)]


def interleaved(cm: Any, x: tuple, build: dict) -> list[PieceCheck]:
    """The check as ``cm.profile`` makes it (``build`` ``{}``: production on both sides, the A/A control)."""
    run, pairs = P._traced(cm, x, CALLS, build, warm=WARMUP, check=max(CALLS, P.CHECK_PAIRS[0]))
    return list(P._piece_check(pairs, run))


@contextlib.contextmanager
def _timed_pieces(cm: Any, build: dict, into: dict[int, list[float]]) -> Iterator[None]:
    index = {(p.graph, p.name): p.index for p in cm.report.pieces}

    def wrap(gi: int, name: str, r: Any) -> Any:
        i = index.get((gi, name))
        if i is None:
            return r

        def run(*a: Any) -> Any:
            t = time.perf_counter()
            out = r(*a)
            into.setdefault(i, []).append((time.perf_counter() - t) * 1e3)
            return out
        return run

    with contextlib.ExitStack() as stack:
        for g in cm.graphs:
            fn = build[g.index].fn if g.index in build else g.runner.fn
            stack.enter_context(P._repointed(g.runner, fn))
            stack.enter_context(piece_hooks(fn, lambda n, r, gi=g.index: wrap(gi, n, r)))
        yield


def no_profiler(cm: Any, x: tuple, build: dict, rounds: int = 20, block: int = 5) -> list[PieceCheck]:
    a: dict[int, list[float]] = {}
    b: dict[int, list[float]] = {}
    for r in range(rounds):
        for bld, into in (((build, b), ({}, a)) if r % 2 else (({}, a), (build, b))):
            with _timed_pieces(cm, bld, into):
                for _ in range(block):
                    cm(*x)
    return [PieceCheck.paired(p, list(zip(a[p], b[p]))) for p in sorted(a)]


def measure(dim: int, tokens: int, repeats: int) -> tuple[list[dict[str, Any]], str]:
    torch.manual_seed(0)
    model = ToyLlama(dim=dim, layers=LAYERS, ffn=2 * dim).eval()
    x = model.example_inputs(tokens)
    cfg = vx.CompileConfig(strategy="piecewise", cache=vx.CacheConfig(dir=tempfile.mkdtemp(prefix="vx-pc-")))
    cm = vx.compile(model, cfg)
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for _ in range(1 + WARMUP):
            cm(*x)
        build, _ = P._profiling_build(cm)
        assert build, "no profiling build: this torch cannot name Inductor's C++ kernels"
        kinds = {p.index: p.kind for p in cm.report.pieces}
        methods = {"blocks": lambda: blocks(cm, x, build), "interleaved": lambda: interleaved(cm, x, build),
                   "a-a": lambda: interleaved(cm, x, {}), "no-profiler": lambda: no_profiler(cm, x, build)}
        for rep in range(repeats):
            for name, fn in methods.items():
                load = _load()
                for c in fn():
                    rows.append({"model": f"toy-llama-{LAYERS}L-d{dim}", "tokens": tokens, "size_dim": "tokens",
                                 "variant": name, "repeat": rep, "piece": c.piece, "kind": kinds[c.piece],
                                 "production_us": c.production_ms * 1e3, "profiling_us": c.profiling_ms * 1e3,
                                 "diff": c.diff, "diff_low": c.diff_low, "diff_high": c.diff_high, "pairs": c.pairs,
                                 "ranges": c.ranges, "verdict": c.verdict() if c.diff_low is not None else "",
                                 "load": load})
        prof = cm.profile(*x, calls=CALLS, warmup=WARMUP)
        rows.append({"model": f"toy-llama-{LAYERS}L-d{dim}", "tokens": tokens, "size_dim": "tokens",
                     "variant": "cm.profile", "verdict": prof.build_verdict, "note": prof.note, "load": _load(),
                     "wall_ms": prof.wall_ms, "profiled_wall_ms": prof.profiled_wall_ms, "profile_s": prof.profile_s})
    return rows, prof.device


def table(rows: list[dict[str, Any]]) -> str:
    """Per size and method: each piece's diff in the first repeat (compiled pieces, then split ops), the
    largest |diff| over compiled pieces in each repeat, the check's verdicts, the load."""
    out = ["| model | tokens | method | compiled pieces (repeat 0) | split ops (repeat 0) | max abs, compiled, per repeat "
           "| verdicts | load |", "|---|---:|---|---|---|---|---|---:|"]
    keys = dict.fromkeys((r["model"], r["tokens"], r["variant"]) for r in rows if r["variant"] != "cm.profile")
    for model, tokens, variant in keys:
        mine = [r for r in rows if (r["model"], r["tokens"], r["variant"]) == (model, tokens, variant)
                and r["diff"] is not None]
        reps = sorted({r["repeat"] for r in mine})
        first = {k: " ".join(f"{r['diff']:+.1%}" for r in mine if r["repeat"] == 0 and r["kind"] == k)
                 for k in ("compiled", "split_op")}
        worst = ", ".join(f"{max(abs(r['diff']) for r in mine if r['repeat'] == k and r['kind'] == 'compiled'):.1%}"
                          for k in reps)
        verdicts = "/".join(sorted({r["verdict"] for r in mine if r["verdict"]})) if variant != "blocks" else "-"
        load = statistics.median(r["load"] for r in mine)
        out.append(f"| {model} | {tokens} | {variant} | {first['compiled']} | {first['split_op']} | {worst} "
                   f"| {verdicts} | {load:.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sizes", default=",".join(f"{d}x{t}" for d, t in SIZES), help="dimxtokens,...")
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    for dim, tokens in sizes:
        more, device = measure(dim, tokens, args.repeats)
        rows += more
    result = {"device": device,
              "torch": torch.__version__, "triton": None, "timer": "torch.profiler ranges (no-profiler: perf_counter)",
              "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d"), "seconds": round(time.time() - t0, 1), "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(rows))
    for r in rows:
        if r["variant"] == "cm.profile":
            print(f"{r['model']} {r['tokens']} tokens: cm.profile build_verdict={r['verdict']!r}: {r['note']}")


if __name__ == "__main__":
    main()
