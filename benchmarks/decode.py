"""Decode/prefill benchmark of the toy Llama on a GPU: eager, torch.compile and vexplore variants.

    python benchmarks/decode.py speed --out benchmarks/results/h200-decode-{timer}.json
    python benchmarks/decode.py agreement --out benchmarks/results/h200-agreement.json
    python benchmarks/decode.py first-call --layers 32 --out benchmarks/results/h100-first-call.json

``speed``: the 8-layer toy Llama (d 2048, fp16) at 1, 16, 256 and 2048 tokens, every variant
compiled once and measured interleaved by vx.benchmark with both timers (one results file
each: ``{timer}`` in --out is replaced by "idle" and "steady"), L2 flushed, with the HBM roofline
(weight bytes / measured copy bandwidth). The torch baselines are compiled static per size
(dynamic=False), as a decode loop with fixed shapes gets them; ``autotune`` then adds
torch-max-autotune-no-cudagraphs at ``--autotune-sizes`` to those files (its compiles take minutes).
``agreement``: the steady timer against triton.testing.do_bench on the same callables, GPU-bound
and host-bound. ``first-call``: the first call of a new process,
cold (empty Inductor and vexplore caches) and warm (both filled by the cold run), for
torch-default and vexplore-piecewise-none; ``first_call_s`` counts from the wrapper's creation,
since torch.compile(m) imports Inductor there and vx.compile on the first call.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

import vexplore as vx
from vexplore.bench.variants import resolve, variant_name
from vexplore.models import ToyLlama, ToyLlamaConfig

ATTN = ["vexplore::attention"]
SIZES = (2048, 256, 16, 1)   # largest first: the first call decides Dynamo's dynamic graph


def model(layers: int, dim: int = 2048) -> ToyLlama:
    torch.manual_seed(0)
    c = ToyLlamaConfig(vocab=32000, dim=dim, layers=layers, heads=dim // 128, ffn=int(dim * 8 / 3) // 64 * 64)
    return ToyLlama(c).cuda().half().eval()


def weight_bytes(m: torch.nn.Module) -> int:
    """Bytes a decode step reads: every weight but the embedding table (only rows are gathered)."""
    return sum(p.numel() * p.element_size() for n, p in m.named_parameters() if not n.startswith("embed"))


def copy_bandwidth() -> float:
    """Bytes/s of a 1 GiB device-to-device copy (read + write), median of 20."""
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    times = []
    for _ in range(23):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        dst.copy_(src)
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    t = sorted(times[3:])[10]
    return 2 * src.numel() / t


def variants() -> list:
    def cfg(strategy: str, cudagraph: str) -> vx.CompileConfig:
        return vx.CompileConfig(strategy=strategy, splitting_ops=ATTN, cudagraph=cudagraph,
                                cache=vx.CacheConfig(tiers=("memory",)))
    return ["eager", "torch-default", "torch-reduce-overhead", cfg("full", "none"), cfg("piecewise", "none"),
            cfg("piecewise", "piecewise"), cfg("full", "full")]


def do_bench_check(m: ToyLlama, rep: vx.BenchReport, fns: dict, pairs: list[tuple[str, int]]) -> list[dict]:
    """Our median against triton.testing.do_bench's on the same callables (both flush L2)."""
    from triton.testing import do_bench

    out = []
    for name, n in pairs:
        x = m.example_inputs(n, "cuda")
        ours = next(r.median_ms for r in rep.rows if r.variant == name and r.tokens == n)
        with torch.no_grad():
            theirs = do_bench(lambda: fns[name](*x), warmup=25, rep=200, return_mode="median")
        out.append({"variant": name, "tokens": n, "timer": rep.timer, "ours_ms": ours, "do_bench_ms": theirs,
                    "diff": ours / theirs - 1})
    return out


def _roofline(m: ToyLlama) -> dict:
    bw = copy_bandwidth()
    wb = weight_bytes(m)
    return {"weight_bytes": wb, "copy_bandwidth_GBps": bw / 1e9, "roofline_ms": wb / bw * 1e3}


def _write(rep: vx.BenchReport, extra: dict, path: str, firsts: dict | None = None) -> dict:
    result = rep.to_dict()
    result.update(extra)
    result["noise_warnings"] = list(rep.warnings)
    for row in result["rows"]:
        row["roofline_ratio"] = row["median_ms"] / extra["roofline_ms"]
        if firsts is not None:   # measured by the first timer's run, which compiled everything
            row["first_call_s"] = firsts[(row["variant"], row["tokens"])]
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n{path}\n{rep.table()}", flush=True)
    return result


def speed(args: argparse.Namespace) -> dict:
    m = model(args.layers)
    session = vx.Session()
    inputs = {n: m.example_inputs(n, "cuda") for n in args.sizes}
    resolved = resolve(m, variants(), session)        # compiled once, timed with both timers
    name = f"toy-llama-{args.layers}L-d2048-fp16"
    extra = _roofline(m)
    extra["baselines"] = {v.name: v.compiled_as for v in resolved}
    firsts = None
    out = {}
    for timer in ("idle", "steady"):
        rep = vx.benchmark(m, inputs, resolved, timer=timer, warmup=5, reps=args.reps, budget_s=args.budget,
                           session=session, model_name=name)
        if args.profile and timer == "idle":   # after the first call at the largest size
            pp = next(v for v in resolved if v.name == "vexplore-piecewise-piecewise")
            extra["profile_piecewise_piecewise_1_token"] = profile(m, pp.make(1), inputs[1])
        out[timer] = _write(rep, extra, args.out.format(timer=timer), firsts)
        firsts = firsts or {(r.variant, r.tokens): r.first_call_s for r in rep.rows}
    return out


def autotune(args: argparse.Namespace) -> None:
    """Add torch-max-autotune-no-cudagraphs (static per size) at ``--autotune-sizes`` to the
    results files ``speed`` wrote: its compiles take minutes, so it runs on its own."""
    m = model(args.layers)
    session = vx.Session()
    tuned = resolve(m, ["eager", "torch-max-autotune-no-cudagraphs"], session)
    inputs = {n: m.example_inputs(n, "cuda") for n in sorted(args.autotune_sizes, reverse=True)}
    firsts = None
    for timer in ("idle", "steady"):
        rep = vx.benchmark(m, inputs, tuned, timer=timer, warmup=5, reps=args.reps, budget_s=args.budget,
                           session=session, model_name=f"toy-llama-{args.layers}L-d2048-fp16")
        firsts = firsts or {(r.variant, r.tokens): r.first_call_s for r in rep.rows}
        path = args.out.format(timer=timer)
        with open(path) as f:
            merged = json.load(f)
        merged["rows"] += [dict(r.to_dict(), roofline_ratio=r.median_ms / merged["roofline_ms"],
                                first_call_s=firsts[(r.variant, r.tokens)]) for r in rep.rows if r.variant != "eager"]
        merged["baselines"][tuned[1].name] = tuned[1].compiled_as
        with open(path, "w") as f:
            json.dump(merged, f, indent=1)
        print(f"\n{path}\n{rep.table()}", flush=True)


def agreement(args: argparse.Namespace) -> dict:
    """The steady timer's median against do_bench's, on GPU-bound callables (eager and full
    compiles at 256-2048 tokens) and host-bound ones (CUDA-graph variants and eager at 1-16)."""
    m = model(args.layers)
    session = vx.Session()
    cfgs = [vx.CompileConfig(strategy=s, splitting_ops=ATTN, cudagraph=c, cache=vx.CacheConfig(tiers=("memory",)))
            for s, c in (("full", "none"), ("full", "full"), ("piecewise", "piecewise"))]
    fns = {"eager": m, **{variant_name(c): vx.compile(m, c, session=session) for c in cfgs}}
    inputs = {n: m.example_inputs(n, "cuda") for n in (2048, 256, 16, 1)}
    rep = vx.benchmark(fns, inputs, timer="steady", warmup=10, reps=args.reps, budget_s=args.budget, session=session)
    pairs = [("eager", 2048), ("eager", 256), ("vexplore-full-none", 2048), ("vexplore-full-none", 256),
             ("vexplore-full-full", 256), ("vexplore-full-full", 16), ("vexplore-full-full", 1),
             ("vexplore-piecewise-piecewise", 256), ("vexplore-piecewise-piecewise", 16), ("eager", 1)]
    rows = do_bench_check(m, rep, fns, pairs)
    for r in rows:
        print(f"{r['variant']:<30}{r['tokens']:>6}  steady {r['ours_ms']:.3f} ms  do_bench {r['do_bench_ms']:.3f} ms  {r['diff']:+.1%}")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "timer": "steady", "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    return result


def profile(m: ToyLlama, cm, x: tuple) -> str:
    """torch.profiler's top CUDA/CPU time table for one 1-token call of ``cm``."""
    from torch.profiler import ProfilerActivity, profile as prof

    with torch.no_grad():
        for _ in range(5):
            cm(*x)
        torch.cuda.synchronize()
        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            for _ in range(10):
                cm(*x)
            torch.cuda.synchronize()
    return p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)


FIRST = r"""
import sys, time, json, torch
sys.path.insert(0, {bench!r})
from decode import model, ATTN
import vexplore as vx
m = model({layers})
x = m.example_inputs(16, "cuda")
torch.cuda.synchronize()
t0 = time.perf_counter()   # creation counts: torch.compile(m) imports Inductor there, vx.compile on the first call
fn = torch.compile(m) if {variant!r} == "torch-default" else vx.compile(m, vx.CompileConfig(
    strategy="piecewise", splitting_ops=ATTN, cache=vx.CacheConfig(dir={vxdir!r})))
create = time.perf_counter() - t0
with torch.no_grad():
    fn(*x)
torch.cuda.synchronize()
c = getattr(fn, "report", None)
ev = [(e.step, e.piece, round(e.duration_s, 3)) for e in c.events if e.duration_s > 0.05] if c else None
print(json.dumps({{"first_call_s": time.perf_counter() - t0, "create_s": create,
                   "counters": c.counters if c else None, "events": ev}}))
"""


def first_call(args: argparse.Namespace) -> dict:
    rows = []
    bench = os.path.dirname(os.path.abspath(__file__))
    for variant in ("torch-default", "vexplore-piecewise-none"):
        with tempfile.TemporaryDirectory() as ind, tempfile.TemporaryDirectory() as vxd:
            for state in ("cold", "warm"):
                env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=ind)
                code = FIRST.format(bench=bench, layers=args.layers, variant=variant, vxdir=vxd)
                t0 = time.perf_counter()
                res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                if res.returncode:
                    raise SystemExit(res.stderr[-4000:])
                got = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append({"variant": variant, "state": state, "layers": args.layers,
                             "first_call_s": got["first_call_s"], "create_s": got["create_s"],
                             "process_s": time.perf_counter() - t0,
                             "counters": got["counters"], "events": got.get("events")})
                print(rows[-1])
    return {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("speed", "autotune", "first-call", "agreement"))
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--reps", type=int, default=None, help="samples per row (default: until the median is known within 2 %%)")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of measuring per row at most")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of vexplore-piecewise-piecewise at 1 token")
    p.add_argument("--autotune-sizes", type=int, nargs="+", default=[16, 1])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/decode.py needs a CUDA GPU")
    args.sizes = sorted(args.sizes, reverse=True)
    if args.what == "speed":
        args.layers = args.layers or 8
        speed(args)
    elif args.what == "autotune":
        args.layers = args.layers or 8
        autotune(args)
    elif args.what == "agreement":
        args.layers = args.layers or 8
        agreement(args)
    else:
        args.layers = args.layers or 32
        with open(args.out, "w") as f:
            json.dump(first_call(args), f, indent=1)


if __name__ == "__main__":
    main()
