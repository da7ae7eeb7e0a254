"""``vexplore demo``: the toy Llama compiled full and piecewise, beside eager."""
from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any, Callable, TextIO

import torch

from .bench.compare import benchmark
from .cache.cli import dir_arg
from .config import CacheConfig, CompileConfig
from .engine.build.compilers import pay_inductor_startup
from .engine.model import compile as vx_compile
from .monitor.events import CompileEvent
from .monitor.phases import inductor_cache_hit, phases_line
from .session import Session


DTYPES = ("float32", "float16", "bfloat16")
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def count_arg(fix: str) -> Callable[[str], int]:
    """argparse type of a count >= 1; ``fix`` says what to give instead ("give at least 1 token, e.g. ...")."""
    def count(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; {fix}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{n} is too small; {fix}")
        return n
    return count


def dim_arg(text: str) -> int:
    """argparse type of ``--dim``: a positive multiple of the toy Llama's head count."""
    from .models import ToyLlamaConfig

    heads = ToyLlamaConfig.heads
    fix = f"give a positive multiple of {heads} (the toy Llama's heads), e.g. --dim 64"
    n = count_arg(fix)(text)
    if n % heads:
        raise argparse.ArgumentTypeError(f"{n} is not a multiple of {heads}; {fix}")
    return n


def dtype_arg(text: str) -> str:
    """argparse type of ``--dtype``: a name in DTYPES, or an alias in DTYPE_ALIASES; gives the name."""
    name = DTYPE_ALIASES.get(text.lower(), text.lower())
    if name not in DTYPES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dtype the demo runs; choose float32, float16 or "
                                         "bfloat16 (or fp32, fp16, bf16)")
    return name


def device_arg(text: str) -> str:
    """argparse type of ``--device``: cpu, or cuda / cuda:N when this torch sees that GPU."""
    m = re.fullmatch(r"cpu|cuda(?::(\d+))?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device the demo runs on; choose cpu or cuda "
                                         "(cuda:N for one GPU of several)")
    if text == "cpu":
        return text
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        cpu_only = torch.version.cuda is None
        why = f"torch {torch.__version__} is a CPU-only build" if cpu_only else "torch sees no CUDA GPU"
        raise argparse.ArgumentTypeError(f"{text!r}: {why}; use --device cpu")
    if m.group(1) is not None and int(m.group(1)) >= n:
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    return text


def register(sub: Any) -> None:
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    p = sub.add_parser("demo", help="compile the built-in toy Llama full and piecewise, beside eager",
                       description="Compile the built-in toy Llama full and piecewise, beside eager, and "
                       "time each per call. Every option is checked before anything is built.")
    p.add_argument("--layers", type=count_arg("give at least 1 layer, e.g. --layers 4"), default=4,
                   help="transformer layers, >= 1 (default %(default)s)")
    p.add_argument("--dim", type=dim_arg, default=64, help="model width, a multiple of 4 (default %(default)s)")
    p.add_argument("--tokens", type=count_arg("give at least 1 token, e.g. --tokens 32"), default=32,
                   help="tokens per call, >= 1 (default %(default)s)")
    p.add_argument("--device", type=device_arg, default=default_device,
                   help="cpu | cuda | cuda:N (default here: %(default)s)")
    p.add_argument("--dtype", type=dtype_arg, default=None,
                   help="float32 | float16 | bfloat16, or fp32 | fp16 | bf16 "
                   "(default: float16 on cuda, float32 on cpu)")
    p.add_argument("--cache-dir", type=dir_arg, default=CacheConfig().dir,
                   help=f"compile cache dir (default: ${CacheConfig.DIR_ENV} if set, else {CacheConfig.DEFAULT_DIR})")
    p.add_argument("--reps", default=None,
                   type=count_arg("give at least 1 sample per variant (e.g. --reps 20), or leave --reps out "
                                  "to sample until the median is stable"),
                   help="samples per variant, >= 1 (default: until the median is known within 2 %%, or 3 s each)")
    p.add_argument("--timer", choices=("idle", "steady"), default="idle",
                   help="GPU timer: one call from an idle GPU, or back-to-back calls as do_bench (CPU: perf_counter)")
    p.set_defaults(func=run)


def _progress(out: TextIO) -> Any:
    def on(ev: CompileEvent) -> None:
        if ev.step == "inductor_startup":
            out.write(f"  Inductor start-up (once per process): {ev.duration_s:.2f} s ({ev.detail or 'measured'})\n")
        elif ev.step in ("compile", "load") and ev.piece is not None:
            what = "compiled" if ev.step == "compile" else f"loaded from {ev.tier}"
            if ev.step == "load" and ev.tier == "miss":
                return
            hit = " (an Inductor cache hit)" if inductor_cache_hit(ev) else ""
            size = "general" if ev.size is None else f"size {ev.size}"
            out.write(f"  piece {ev.piece:>2} ({size}): {what} in {ev.duration_s:.2f} s{hit}\n")
        out.flush()
    return on


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from .models import ToyLlama

    on_cuda = args.device.startswith("cuda")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if on_cuda else torch.float32)
    torch.manual_seed(0)
    model = ToyLlama(layers=args.layers, dim=args.dim).to(args.device, dtype).eval()
    (x,) = model.example_inputs(args.tokens, device=args.device)
    session = Session()
    unsubscribe = session.monitor.subscribe(_progress(out))
    cache = CacheConfig(dir=args.cache_dir)
    out.write(f"vexplore demo: ToyLlama layers={args.layers} dim={args.dim} tokens={args.tokens} "
              f"on {args.device} ({dtype}), torch {torch.__version__}\n")
    out.write(f"Inductor start-up (once per process, charged to no variant): {pay_inductor_startup(args.device, dtype):.2f} s\n")
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
                  f"unique {c['unique_pieces']}, inductor compiles {c['inductor_compiles']} ({c['fxgraph_cache_hits']} "
                  f"from Inductor's cache), hits memory/disk {c['cache_hits_memory']}/{c['cache_hits_disk']}, "
                  f"misses {c['cache_misses']}\n")
        out.write(f"phases: {phases_line(rep.phases, rep.wall_s)}\n")
        out.write(rep.table() + "\n")
        variants.append((f"vexplore-{strategy}-{cfg.cudagraph}", cm))
    unsubscribe()
    bench = benchmark(model, {args.tokens: (x,)}, variants, reps=args.reps, timer=args.timer, budget_s=3.0,
                      model_name="ToyLlama")
    out.write(f"\n== time per call ({bench.device})\n{bench.table()}\n")
    for w in bench.warnings:
        out.write(f"  note: {w}\n")
    return 0
