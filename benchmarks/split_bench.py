"""Benchmark of the split policies (CompileConfig.split_policy) against one full compile, on CPU.

    python benchmarks/split_bench.py --out benchmarks/results/cpu-split.json [--runs 3]

Two stages, every run in a fresh Python process (this script with --role) with an empty vexplore
cache dir and an empty TORCHINDUCTOR_CACHE_DIR, variants alternating:

- cold: the first call of vx.compile(model) on a stack of 24 identical residual MLP blocks (each
  LayerNorm, Linear, GELU, Linear twice, 10 graph nodes) and a head, split_policy="repeats"
  against strategy="full". Inductor's start-up is paid by both: its precompiled C++ header lives
  outside TORCHINDUCTOR_CACHE_DIR (in the temp dir's torchinductor_<user>/precompiled_headers),
  so one untimed warm-up process builds it and no timed run builds it again; the rest of the
  start-up (imports, the ISA probe, the source hash, the pattern matcher) every process pays,
  and rows give the first call with and without it (``report.phases["inductor_startup"]``).
- memory: the same blocks, 48 of them, split_policy="memory" (max_compile_mb) against
  strategy="full": the peak RSS the compile adds, sampled every 5 ms by psutil from just before
  vx.compile to the end of the first call, after an untimed tiny compile in the same process has
  paid Inductor's imports and start-up; and the process's own peak (ru_maxrss).

Results (the format of benchmarks/README.md, timer "perf_counter", plus ``n``, ``samples_ms``,
the extra figures and a note per row) go to --out; the markdown table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DIM, TOKENS = 64, 16
VARIANTS = {
    "full": dict(strategy="full"),
    "repeats": dict(strategy="piecewise", split_policy="repeats"),
    "memory": dict(strategy="piecewise", split_policy="memory", max_compile_mb=32),
}


# -- children ----------------------------------------------------------------------------------
def _model(blocks: int):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
            self.fc1, self.fc2 = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)
            self.fc3, self.fc4 = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.fc2(nn.functional.gelu(self.fc1(self.n1(x))))
            return x + self.fc4(nn.functional.gelu(self.fc3(self.n2(x))))

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(Block() for _ in range(blocks))
            self.head = nn.Linear(DIM, DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for b in self.blocks:
                x = b(x)
            return self.head(x)

    torch.manual_seed(0)
    return Stack().eval(), torch.randn(TOKENS, DIM)


class _PeakRSS:
    """The largest RSS seen, sampled every 5 ms on a thread, from ``start()`` to ``stop()``."""

    def __init__(self) -> None:
        import psutil

        self.proc, self.peak, self.done = psutil.Process(), 0, threading.Event()

    def start(self) -> "_PeakRSS":
        self.base = self.peak = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        return (self.peak - self.base) / 2**20


def role_compile(args) -> dict:
    """One variant's first call in this process: time, counters, phases, memory."""
    import torch

    import vexplore as vx
    from vexplore.engine.build.validate import max_rel_err

    cache = vx.CacheConfig(dir=args.vxdir)
    if args.warm:   # pay Inductor's imports and start-up here, untimed (the memory stage)
        tiny = torch.nn.Linear(4, 4).eval()
        with torch.no_grad():
            vx.compile(tiny, vx.CompileConfig(strategy="full", cache=vx.CacheConfig(tiers=())), session=vx.Session())(torch.randn(2, 4))
    model, x = _model(args.blocks)
    with torch.no_grad():
        ref = model(x)
    probe = _PeakRSS().start()
    t0 = time.perf_counter()
    cm = vx.compile(model, vx.CompileConfig(cache=cache, **VARIANTS[args.variant]), session=vx.Session())
    with torch.no_grad():
        out = cm(x)
    first = time.perf_counter() - t0
    rss = probe.stop()
    rep = cm.report
    return {"first_call_s": first, "startup_s": rep.phases.get("inductor_startup", 0.0), "compile_rss_mb": rss,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max_rel_err": max_rel_err(out, ref),
            "counters": {k: rep.counters[k] for k in ("pieces", "compiled_pieces", "unique_pieces", "inductor_compiles")},
            "max_piece_nodes": max(p.nodes for p in rep.pieces)}


# -- parent ------------------------------------------------------------------------------------
def _child(work: Path, variant: str, blocks: int, run: str, warm: bool = False) -> dict:
    """``variant`` in a fresh process, with empty vexplore and Inductor cache dirs of its own."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(work / f"inductor-{run}"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = work / f"{run}.json"
    cmd = [sys.executable, __file__, "--role", "compile", "--variant", variant, "--blocks", str(blocks),
           "--vxdir", str(work / f"vx-{run}"), "--json-out", str(out)] + (["--warm"] if warm else [])
    subprocess.run(cmd, env=env, check=True)
    return json.loads(out.read_text())


def _variant_name(variant: str) -> str:
    kw = dict(VARIANTS[variant])
    strategy = kw.pop("strategy")
    extra = ",".join(f"{k}={v}" for k, v in kw.items())
    return f"vexplore-{strategy}-none" + (f"[{extra}]" if extra else "")


def _row(model: str, variant: str, res: list[dict], note: str) -> dict:
    ms = sorted(r["first_call_s"] * 1e3 for r in res)
    q = statistics.quantiles(ms, n=5, method="inclusive") if len(ms) > 1 else [ms[0]] * 4
    med = statistics.median
    return {"model": model, "tokens": TOKENS, "size_dim": "tokens", "variant": _variant_name(variant),
            "median_ms": med(ms), "p20_ms": q[0], "p80_ms": q[3], "n": len(ms), "samples_ms": ms,
            "first_call_s": med(r["first_call_s"] for r in res),
            "startup_s": med(r["startup_s"] for r in res),
            "first_call_less_startup_s": med(r["first_call_s"] - r["startup_s"] for r in res),
            "compile_rss_mb": med(r["compile_rss_mb"] for r in res), "maxrss_mb": med(r["maxrss_mb"] for r in res),
            "max_rel_err": max(r["max_rel_err"] for r in res), "counters": res[0]["counters"],
            "max_piece_nodes": res[0]["max_piece_nodes"], "note": note}


def _stage(work: Path, name: str, blocks: int, variants: tuple[str, str], runs: int, warm: bool) -> list[dict]:
    got: dict[str, list[dict]] = {v: [] for v in variants}
    for i in range(runs):
        for v in variants if i % 2 == 0 else variants[::-1]:   # alternate, so drift hits both
            got[v].append(_child(work, v, blocks, f"{name}-{v}-{i}", warm))
            print(f"{name} {v} run {i}: {got[v][-1]['first_call_s']:.2f} s, +{got[v][-1]['compile_rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
    model = f"mlp-{blocks}-blocks"
    note = ("cold first call (fresh process, empty caches, header warm)" if not warm else
            "first call after an untimed tiny compile in the same process (Inductor started)")
    return [_row(model, v, got[v], note) for v in variants]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"cpu: {line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def table(doc: dict) -> str:
    rows = doc["rows"]
    out = [f"Device: {doc['device']}, torch {doc['torch']}, timer **{doc['timer']}**, {rows[0]['n']} runs each, medians.", "",
           "| model | variant | pieces / unique / Inductor compiles | largest piece (nodes) | first call s | "
           "less Inductor start-up s | vs full | compile RSS MB | vs full | process peak RSS MB |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = next(b for b in rows if b["model"] == r["model"] and "full" in b["variant"])
        c = r["counters"]
        out.append(f"| {r['model']} | {r['variant']} | {c['pieces']} / {c['unique_pieces']} / {c['inductor_compiles']} | "
                   f"{r['max_piece_nodes']} | {r['first_call_s']:.2f} | {r['first_call_less_startup_s']:.2f} | "
                   f"{r['first_call_less_startup_s'] / base['first_call_less_startup_s']:.2f}x | "
                   f"{r['compile_rss_mb']:.0f} | {r['compile_rss_mb'] / base['compile_rss_mb']:.2f}x | {r['maxrss_mb']:.0f} |")
    return "\n".join(out)


def parent_main(args) -> None:
    import torch

    work = Path(tempfile.mkdtemp(prefix="vx-split-bench-"))
    _child(work, "repeats", 2, "header-warmup")   # builds the precompiled header (shared, untimed)
    rows = _stage(work, "cold", 24, ("full", "repeats"), args.runs, warm=False)
    rows += _stage(work, "memory", 48, ("full", "memory"), args.runs, warm=True)
    doc = {"device": _cpu_name(), "torch": torch.__version__, "triton": None, "timer": "perf_counter",
           "python": platform.python_version(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(table(doc))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu-split.json"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--table", help="print the table of this results file and exit")
    p.add_argument("--role", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--blocks", type=int, help=argparse.SUPPRESS)
    p.add_argument("--vxdir", help=argparse.SUPPRESS)
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    p.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
    elif args.role == "compile":
        Path(args.json_out).write_text(json.dumps(role_compile(args)))
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
