"""Decode/prefill benchmark of the toy Llama on a GPU: eager, torch.compile and vexplore variants.

    python benchmarks/decode.py speed --out benchmarks/results/h200-decode-{timer}.json
    python benchmarks/decode.py agreement --out benchmarks/results/h200-agreement.json
    python benchmarks/decode.py first-call --layers 8 --repeats 3 --out benchmarks/results/h200-first-call-8L.json

``speed``: the 8-layer toy Llama (d 2048, fp16) at 1, 16, 256 and 2048 tokens, every variant
compiled once and measured interleaved by vx.benchmark with both timers (one results file
each: ``{timer}`` in --out is replaced by "idle" and "steady"), L2 flushed, with the HBM roofline
(weight bytes / measured copy bandwidth). The torch baselines are compiled static per size
(dynamic=False), as a decode loop with fixed shapes gets them; ``autotune`` then adds
torch-max-autotune-no-cudagraphs at ``--autotune-sizes`` to those files (its compiles take minutes).
``agreement``: the steady timer against triton.testing.do_bench on the same callables, GPU-bound
and host-bound, alternating between the two so host drift hits both alike. ``first-call``: the first call of a new process,
cold (empty Inductor and vexplore caches) and warm (both filled by the cold run), for
torch-default and vexplore-piecewise-none, interleaved ``--repeats`` times, with vexplore's
report.phases; ``first_call_s`` counts from the wrapper's creation, since torch.compile(m)
imports Inductor there and vx.compile on the first call. Children share a bytecode cache.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import statistics
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
            cfg("piecewise", "piecewise"), cfg("full", "full"), cfg("piecewise", "full_and_piecewise")]


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


def _rounds(fns: dict, x: tuple, timer: str, rounds: int, block_ms: float = 150.0) -> dict:
    """Each callable's median per round (a block of ~``block_ms`` of calls each), the callables
    alternating within a round and their order reversed every other round, so drift hits all alike."""
    from vexplore.bench.timing import Sampler, l2_flush_buffer, stats

    flush = l2_flush_buffer(True, True)
    samplers = {k: Sampler(f, x, timer, cuda=True, flush=flush) for k, f in fns.items()}
    with torch.no_grad():
        once = {k: max(stats(s.block(5)).median_ms, 1e-3) for k, s in samplers.items()}
        out: dict = {k: [] for k in fns}
        for r in range(rounds):
            for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                out[k].append(stats(samplers[k].block(max(5, int(block_ms / once[k])))).median_ms)
    return out


def _ratio_ci(ratios: list) -> dict:
    """The median of the per-round ratios and its ~95 % interval (order statistics of the median: for
    n rounds, ranks n/2 -+ 0.98 sqrt(n), clipped to the ends)."""
    xs, n = sorted(ratios), len(ratios)
    half = 0.98 * n ** 0.5
    lo, hi = max(0, int(n / 2 - half)), min(n - 1, int(round(n / 2 + half)))
    return {"median": statistics.median(xs), "low": xs[lo], "high": xs[hi], "rounds": n}


WHOLE = "background"   # the parity rows' cudagraph_whole (session 5's rows: True)


def parity(args: argparse.Namespace) -> dict:
    """vexplore-default (``vx.compile(model)``, no options) against torch-reduce-overhead (static per
    size) at 1 and 16 tokens, interleaved rounds on the idle and the steady timer (the median ratio
    and its 95 % upper bound); at 2048 tokens vexplore-default and vexplore-default[compile_sizes=2048]
    against torch-default (static), the same way. Every callable checked against eager first. At 1 and
    16 tokens also ``vexplore-default[cudagraph_whole=WHOLE]`` (full captures of the graph compiled whole;
    "background" since session 6, timed after ``cm.settle()``)."""
    m = model(args.layers)
    session = vx.Session()
    base = resolve(m, ["eager", "torch-reduce-overhead", "torch-default"], session)
    vxd = vx.compile(m, session=session)
    vx2048 = vx.compile(m, vx.CompileConfig(compile_sizes=(2048,)), session=session)
    # full captures of the graph compiled whole (no stitched pieces), as torch's reduce-overhead graph is; built
    # off the call path (measured after cm.settle(), in the correctness calls below)
    whole = vx.compile(m, vx.CompileConfig(cudagraph_whole=WHOLE), session=session)
    out: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": f"toy-llama-{args.layers}L-d2048-fp16",
                 "vexplore_default": vxd.config.to_dict(), "rows": [], "timers": {}}
    cases = [(n, {"torch-reduce-overhead": base[1].make(n), "vexplore-default": vxd, f"vexplore-default[cudagraph_whole={WHOLE}]": whole})
             for n in (16, 1)]
    cases.insert(0, (2048, {"torch-default": base[2].make(2048), "vexplore-default": vxd, "vexplore-default[compile_sizes=2048]": vx2048}))
    with torch.no_grad():
        for n, fns in cases:
            x = m.example_inputs(n, "cuda")
            want = m(*x).float()
            for k, f in fns.items():
                for _ in range(3):
                    got = f(*x)
                    getattr(f, "settle", lambda: True)()   # a whole graph built off the call path: taken now
                err = ((got.float() - want).abs().max() / want.abs().max()).item()
                out["rows"].append({"tokens": n, "variant": k, "max_rel_err": err})
                if err > 2e-2:
                    raise SystemExit(f"{k} at {n} tokens: max rel err {err:.2e} over the gate")
    for timer in ("idle", "steady"):
        per = out["timers"][timer] = {}
        for n, fns in cases:
            x = m.example_inputs(n, "cuda")
            meds = _rounds(fns, x, timer, args.rounds)
            ref = next(iter(fns))
            per[n] = {"medians_ms": meds, "ratio_vs_" + ref: {k: _ratio_ci([a / b for a, b in zip(meds[k], meds[ref])])
                                                           for k in fns if k != ref}}
            print(timer, n, {k: round(statistics.median(v), 4) for k, v in meds.items()},
                  {k: {a: round(b, 3) for a, b in v.items()} for k, v in per[n]["ratio_vs_" + ref].items()}, flush=True)
    out["graph_stats"] = {k: [dataclasses.asdict(g.graph_stats) if g.graph_stats else None for g in c.graphs]
                          for k, c in (("vexplore-default", vxd), ("vexplore-default[compile_sizes=2048]", vx2048),
                                       (f"vexplore-default[cudagraph_whole={WHOLE}]", whole))}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, default=str)
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


def _agree(fn, args: tuple, rounds: int = 9) -> dict:
    """The steady timer's median and do_bench's on the same callable, alternating ``rounds``
    times (both ~200 ms of calls each time) so a drifting host hits them alike; and do_bench
    against itself (a second do_bench in each round), the noise floor of the comparison."""
    from triton.testing import do_bench

    from vexplore.bench.timing import Sampler, l2_flush_buffer, stats

    sampler = Sampler(fn, args, "steady", cuda=True, flush=l2_flush_buffer(True, True))
    theirs, ours, again = [], [], []
    with torch.no_grad():
        for _ in range(3):
            fn(*args)
        torch.cuda.synchronize()
        once = max(stats(sampler.block(5)).median_ms, 1e-3)
        for _ in range(rounds):
            ours.append(stats(sampler.block(max(5, int(200 / once)))).median_ms)
            theirs.append(do_bench(lambda: fn(*args), warmup=25, rep=200, return_mode="median"))
            again.append(do_bench(lambda: fn(*args), warmup=25, rep=200, return_mode="median"))
    o, t, a = (sorted(x)[rounds // 2] for x in (ours, theirs, again))
    return {"steady_ms": o, "do_bench_ms": t, "diff": o / t - 1, "do_bench_again_ms": a,
            "do_bench_self_diff": a / t - 1, "rounds": rounds}


def agreement(args: argparse.Namespace) -> dict:
    """The steady timer against triton.testing.do_bench: GPU-bound callables (a large GEMM, the
    full compile at 2048 tokens) and host-bound ones (300 tiny kernel launches, eager and the
    CUDA-graph variants at 1-16 tokens)."""
    m = model(args.layers)
    session = vx.Session()
    cfgs = {c: vx.CompileConfig(strategy=c[0], splitting_ops=ATTN, cudagraph=c[1], cache=vx.CacheConfig(tiers=("memory",)))
            for c in (("full", "none"), ("full", "full"), ("piecewise", "piecewise"))}
    fns = {variant_name(c): vx.compile(m, c, session=session) for c in cfgs.values()}
    with torch.no_grad():   # first calls, largest first (Dynamo's dynamic graph, then the 1-token one)
        for n in (2048, 16, 1):
            for f in fns.values():
                f(*m.example_inputs(n, "cuda"))
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    tiny = torch.zeros(16, device="cuda")

    def launches(t):
        for _ in range(300):
            t.add_(1)
    cases = [("gemm 8192 fp16", "GPU-bound", torch.mm, (a, a)),
             ("vexplore-full-none 2048", "GPU-bound", fns["vexplore-full-none"], m.example_inputs(2048, "cuda")),
             ("300 tiny launches", "host-bound", launches, (tiny,)),
             ("eager 1", "host-bound", m, m.example_inputs(1, "cuda")),
             ("vexplore-piecewise-piecewise 16", "host-bound", fns["vexplore-piecewise-piecewise"], m.example_inputs(16, "cuda")),
             ("vexplore-full-full 16", "graph replay", fns["vexplore-full-full"], m.example_inputs(16, "cuda")),
             ("vexplore-full-full 1", "graph replay", fns["vexplore-full-full"], m.example_inputs(1, "cuda"))]
    rows = []
    for name, kind, fn, x in cases:
        rows.append({"callable": name, "kind": kind, **_agree(fn, tuple(x))})
        r = rows[-1]
        print(f"{name:<34}{kind:<14}steady {r['steady_ms']:.3f} ms  do_bench {r['do_bench_ms']:.3f} ms  {r['diff']:+.1%}"
              f"   (do_bench again {r['do_bench_again_ms']:.3f} ms, {r['do_bench_self_diff']:+.1%})", flush=True)
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
from vexplore.engine import _torch_compat as tc
m = model({layers})
x = m.example_inputs(16, "cuda")
torch.cuda.synchronize()
prof = None
if {cprofile!r}:
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
t0 = time.perf_counter()   # creation counts: torch.compile(m) imports Inductor there, vx.compile on the first call
if {variant!r}.startswith("torch-"):
    fn = torch.compile(m, mode=None if {variant!r} == "torch-default" else "reduce-overhead")
else:
    fn = vx.compile(m, vx.CompileConfig(**{kwargs}, cache=vx.CacheConfig(dir={vxdir!r})))
create = time.perf_counter() - t0
with torch.no_grad():
    fn(*x)
torch.cuda.synchronize()
first = time.perf_counter() - t0
if prof is not None:
    import io, pstats
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(120)
    open({cprofile!r}, "w").write(f"first call {{first:.3f}} s\n" + text.getvalue())
t1 = time.perf_counter()
if hasattr(fn, "settle"):   # the work left off the call path, if any
    fn.settle()
settle_s = time.perf_counter() - t1
c = getattr(fn, "report", None)
ev = [(e.step, e.piece, round(e.duration_s, 3)) for e in c.events if e.duration_s > 0.05] if c else None
print(json.dumps({{"first_call_s": first, "create_s": create, "settle_s": settle_s, "counters": c.counters if c else None,
                   "phases": c.phases if c else None, "wall_s": c.wall_s if c else None,
                   "torch_metrics": tc.compile_metrics(), "events": ev}}))
"""
VARIANTS = ("torch-default", "vexplore-piecewise-none")
FIRST_CONFIGS = {   # first-call variants: vx.CompileConfig keywords (workers= added by --vx-workers)
    "vexplore-piecewise-none": "dict(strategy='piecewise', splitting_ops=ATTN, cudagraph='none')",
    "vexplore-default": "dict()",
    "vexplore-default[cudagraph_whole]": "dict(cudagraph_whole=True)",
    "vexplore-default[cudagraph_whole=background]": "dict(cudagraph_whole='background')",
    "vexplore-default[cudagraph_capture=first_call]": "dict(cudagraph_capture='first_call')",
    "vexplore-default[background, first_call]": "dict(cudagraph_whole='background', cudagraph_capture='first_call')",
}


def _variants(args: argparse.Namespace) -> tuple[str, ...]:
    """``--first-variants`` (default: torch-default and vexplore piecewise without CUDA graphs), and with
    ``--vx-workers N`` vexplore piecewise with N compile workers."""
    names = tuple(args.first_variants or VARIANTS)
    for v in names:
        if v not in FIRST_CONFIGS and v not in ("torch-default", "torch-reduce-overhead"):
            raise SystemExit(f"--first-variants: {v!r} is not one of {['torch-default', 'torch-reduce-overhead', *FIRST_CONFIGS]}")
    return names + ((f"vexplore-piecewise-none[workers={args.vx_workers}]",) if args.vx_workers else ())


def _env(work: str) -> dict:
    """Children write and read Python's bytecode cache under ``work`` (PYTHONPYCACHEPREFIX): the
    GPU machine's torch has no .pyc files and may not write them beside its sources, so without
    this every process compiles seconds of Python source, which a user's machine does once."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(work, "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _first(args: argparse.Namespace, variant: str, dirs: dict, state: str, cprofile: str = "") -> dict:
    env = dict(dirs["env"], TORCHINDUCTOR_CACHE_DIR=dirs[variant][0])
    code = FIRST.format(bench=os.path.dirname(os.path.abspath(__file__)), layers=args.layers, variant=variant,
                        vxdir=dirs[variant][1], cprofile=cprofile,
                        kwargs=FIRST_CONFIGS.get(variant.split("[workers=")[0], "dict()")[:-1]
                        + (f", workers={args.vx_workers})" if "workers=" in variant else ")"))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr[-4000:])
    got = json.loads(res.stdout.strip().splitlines()[-1])
    row = {"variant": variant, "state": state, "layers": args.layers, "process_s": time.perf_counter() - t0, **got}
    print({k: row[k] for k in ("variant", "state", "first_call_s", "phases")}, flush=True)
    return row


def first_call(args: argparse.Namespace) -> dict:
    """Cold (empty caches, each variant its own Inductor and vexplore dirs), then warm starts of
    both variants interleaved ``--repeats`` times, so drift in the machine hits both alike."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        names = _variants(args)
        dirs: dict = {v: (os.path.join(work, v, "inductor"), os.path.join(work, v, "vx")) for v in names}
        dirs["env"] = _env(work)
        if not args.no_pyc:   # one process fills the bytecode cache for every import both variants make
            tiny = argparse.Namespace(**{**vars(args), "layers": 1})
            for variant in names:
                _first(tiny, variant, dirs, "pyc")
                for d in dirs[variant]:
                    shutil.rmtree(d, ignore_errors=True)
        else:
            dirs["env"]["PYTHONDONTWRITEBYTECODE"] = "1"
        if "cold" in args.states:
            for _ in range(args.repeats):
                for variant in names:
                    for d in dirs[variant]:
                        shutil.rmtree(d, ignore_errors=True)
                    rows.append(_first(args, variant, dirs, "cold"))
        if "warm" in args.states:
            if "cold" not in args.states:
                for variant in names:
                    _first(args, variant, dirs, "fill")
            for _ in range(args.repeats):
                for variant in names:
                    rows.append(_first(args, variant, dirs, "warm"))
            for variant in names if args.cprofile else ():   # profiled apart: cProfile slows what it sees
                _first(args, variant, dirs, "profile", os.path.join(args.cprofile, f"warm-{variant}-{args.layers}L.txt"))
    return {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "pyc": not args.no_pyc, "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("speed", "autotune", "first-call", "agreement", "parity"))
    p.add_argument("--rounds", type=int, default=9, help="parity: interleaved rounds")
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--reps", type=int, default=None, help="samples per row (default: until the median is known within 2 %%)")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of measuring per row at most")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of vexplore-piecewise-piecewise at 1 token")
    p.add_argument("--autotune-sizes", type=int, nargs="+", default=[16, 1])
    p.add_argument("--states", nargs="+", default=["cold", "warm"], choices=("cold", "warm"))
    p.add_argument("--repeats", type=int, default=1, help="first-call: runs of each state, interleaved")
    p.add_argument("--first-variants", nargs="+", default=None, help="first-call: the variants (default: %s)" % " ".join(VARIANTS))
    p.add_argument("--vx-workers", type=int, default=0, help="first-call: also vexplore with this many compile workers")
    p.add_argument("--no-pyc", action="store_true", help="first-call: no bytecode cache (each process compiles torch's sources)")
    p.add_argument("--cprofile", default="", help="first-call: cProfile text of the last warm start of each variant, here")
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
    elif args.what == "parity":
        args.layers = args.layers or 8
        parity(args)
    elif args.what == "agreement":
        args.layers = args.layers or 8
        agreement(args)
    else:
        args.layers = args.layers or 32
        with open(args.out, "w") as f:
            json.dump(first_call(args), f, indent=1)


if __name__ == "__main__":
    main()
