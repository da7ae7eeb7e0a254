"""``vexplore demo``: the toy Llama compiled full and piecewise, beside eager."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import torch

from .bench.compare import benchmark
from .config import CacheConfig, CompileConfig
from .engine.compilers import inductor_startup
from .engine.model import compile as vx_compile
from .monitor.events import CompileEvent
from .session import Session


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="compile the built-in toy Llama full and piecewise, beside eager")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="float32 | float16 | bfloat16 (default: float16 on cuda, float32 on cpu)")
    p.add_argument("--cache-dir", default="~/.cache/vexplore")
    p.add_argument("--reps", type=int, default=None,
                   help="samples per variant (default: until the median is known within 2 %%, or 3 s each)")
    p.add_argument("--timer", choices=("idle", "steady"), default="idle",
                   help="GPU timer: one call from an idle GPU, or back-to-back calls as do_bench (CPU: perf_counter)")
    p.set_defaults(func=run)


def _progress(out: TextIO) -> Any:
    def on(ev: CompileEvent) -> None:
        if ev.step in ("compile", "load") and ev.piece is not None:
            what = "compiled" if ev.step == "compile" else f"loaded from {ev.tier}"
            if ev.step == "load" and ev.tier == "miss":
                return
            size = "general" if ev.size is None else f"size {ev.size}"
            out.write(f"  piece {ev.piece:>2} ({size}): {what} in {ev.duration_s:.2f} s\n")
            out.flush()
    return on


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from .models import ToyLlama

    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if args.device == "cuda" else torch.float32)
    torch.manual_seed(0)
    model = ToyLlama(layers=args.layers, dim=args.dim).to(args.device, dtype).eval()
    (x,) = model.example_inputs(args.tokens, device=args.device)
    session = Session()
    unsubscribe = session.monitor.subscribe(_progress(out))
    cache = CacheConfig(dir=args.cache_dir)
    out.write(f"vexplore demo: ToyLlama layers={args.layers} dim={args.dim} tokens={args.tokens} "
              f"on {args.device} ({dtype}), torch {torch.__version__}\n")
    out.write(f"Inductor start-up (once per process, charged to no variant): {inductor_startup(args.device, dtype):.2f} s\n")
    variants: list[Any] = ["eager"]
    for strategy in ("full", "piecewise"):
        cfg = CompileConfig(strategy=strategy, splitting_ops=["vexplore::attention"], cache=cache, validate=True)
        cm = vx_compile(model, cfg, session=session)
        out.write(f"\n== {strategy}: compiling\n")
        t0 = time.perf_counter()
        with torch.no_grad():
            cm(x)
        rep = cm.report
        assert rep is not None
        c = rep.counters
        out.write(f"first call {time.perf_counter() - t0:.2f} s; pieces {c['pieces']}, compiled {c['compiled_pieces']}, "
                  f"unique {c['unique_pieces']}, inductor compiles {c['inductor_compiles']}, hits "
                  f"memory/disk {c['cache_hits_memory']}/{c['cache_hits_disk']}, misses {c['cache_misses']}\n")
        out.write(rep.table() + "\n")
        variants.append((f"vexplore-{strategy}-none", cm))
    unsubscribe()
    bench = benchmark(model, {args.tokens: (x,)}, variants, reps=args.reps, timer=args.timer, budget_s=3.0,
                      model_name="ToyLlama")
    out.write(f"\n== time per call ({bench.device})\n{bench.table()}\n")
    for w in bench.warnings:
        out.write(f"  note: {w}\n")
    return 0
