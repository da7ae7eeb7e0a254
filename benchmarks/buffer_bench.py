"""Intermediate buffers per call: piecewise against one full compile (and eager), CPU or CUDA.

    python benchmarks/buffer_bench.py --out benchmarks/results/cpu-buffers.json [--device cuda]

What one call allocates once the model is compiled and warm (two calls first), under
torch.no_grad(), for two models the split cuts differently: the toy Llama (d 256, 4 layers, ffn
512; piecewise at its attention op) and a stack of 8 residual MLP blocks from split_bench.py
(split_policy="repeats": a piece per block). 64 tokens, fp32 on the CPU, fp16 on CUDA.

- CPU: torch.profiler with profile_memory, read from its exported Chrome trace (the profiler's
  event list drops allocations of Inductor's C++ wrapper): allocations per call (events with
  bytes > 0), bytes allocated, and the peak of live bytes above the call's start.
- CUDA: the caching allocator's counters around one call (``allocation.all.allocated``,
  ``allocated_bytes.all.allocated``) and its peak (``reset_peak_memory_stats``); and with CUDA
  graphs captured at the call's size (cudagraph "full" against "piecewise"): what each capture
  holds after capturing (``SizeInfo.memory_mb``, the graphs' pool and buffers) and what a replay
  allocates.

Counts, not times: no timer. Results (one row per model and variant, the same on every call
measured: three calls, checked) go to --out; a markdown table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
TOKENS, CALLS = 64, 3


def _models(device: str, dtype: torch.dtype):
    import split_bench
    from vexplore.models.toy_llama import ToyLlama

    llama = ToyLlama(dim=256, layers=4, ffn=512).eval().to(device, dtype)
    mlp, _ = split_bench._model(8)
    mlp = mlp.to(device, dtype)
    x = torch.randn(TOKENS, split_bench.DIM, device=device, dtype=dtype)
    return {"toy-llama-4L": (llama, llama.example_inputs(TOKENS, device), dict(strategy="piecewise")),
            "mlp-8-blocks": (mlp, (x,), dict(strategy="piecewise", split_policy="repeats"))}


def _cpu_call(fn, args) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args)
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    events = sorted((e for e in json.load(open(path))["traceEvents"] if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    os.unlink(path)
    live = peak = n = total = 0
    for e in events:
        b = e["args"]["Bytes"]
        live += b
        peak = max(peak, live)
        if b > 0:
            n, total = n + 1, total + b
    return {"allocations": n, "allocated_bytes": total, "peak_bytes": peak}


def _cuda_call(fn, args) -> dict:
    torch.cuda.synchronize()
    before, base = torch.cuda.memory_stats(), torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn(*args)
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    return {"allocations": after["allocation.all.allocated"] - before["allocation.all.allocated"],
            "allocated_bytes": after["allocated_bytes.all.allocated"] - before["allocated_bytes.all.allocated"],
            "peak_bytes": torch.cuda.max_memory_allocated() - base}


def _measure(fn, args, device: str) -> dict:
    call = _cuda_call if device == "cuda" else _cpu_call
    with torch.no_grad():
        for _ in range(2):
            fn(*args)
        runs = [call(fn, args) for _ in range(CALLS)]
    same = all(r == runs[0] for r in runs)
    return {**runs[0], "same_every_call": same, "calls": runs}


def _variants(device: str, piecewise: dict) -> dict:
    out = {"eager": None, "full": dict(strategy="full"), "piecewise": piecewise}
    if device == "cuda":
        out = {**out, "full-cudagraph-full": dict(strategy="full", cudagraph="full", cudagraph_sizes=(TOKENS,)),
               "piecewise-cudagraph-piecewise": dict(piecewise, cudagraph="piecewise", cudagraph_sizes=(TOKENS,))}
    return out


def run(device: str) -> dict:
    import vexplore as vx

    dtype = torch.float16 if device == "cuda" else torch.float32
    session, cache = vx.Session(), vx.CacheConfig(dir=tempfile.mkdtemp(prefix="vx-buffers-"))
    rows = []
    for model_name, (model, args, piecewise) in _models(device, dtype).items():
        for variant, kw in _variants(device, piecewise).items():
            fn = model if kw is None else vx.compile(model, vx.CompileConfig(cache=cache, **kw), session=session)
            row = {"model": model_name, "variant": variant, **_measure(fn, args, device)}
            if kw is not None:
                rep = fn.report
                row["pieces"] = len(rep.pieces)
                stats = [g.graph_stats for g in fn.graphs if g.graph_stats is not None]
                row["capture_held_mb"] = {str(s): round(i.memory_mb, 3) for st in stats for s, i in st.sizes.items()}
            rows.append(row)
    from cache_bench import cpu_name

    return {"device": torch.cuda.get_device_name() if device == "cuda" else f"{cpu_name()} ({os.cpu_count()} cores)",
            "torch": torch.__version__, "python": platform.python_version(), "tokens": TOKENS, "dtype": str(dtype),
            "timer": None, "rows": rows}


def table(d: dict) -> str:
    out = [f"Device: {d['device']}, torch {d['torch']}, {d['dtype']}, {d['tokens']} tokens; per call, after two warm calls.", "",
           "| model | variant | pieces | allocations | allocated KiB | peak KiB | vs full (alloc / peak) | capture holds MiB |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    full = {r["model"]: r for r in d["rows"] if r["variant"] == "full"}
    for r in d["rows"]:
        f = full[r["model"]]
        vs = f"{r['allocations'] / max(f['allocations'], 1):.2f}x / {r['peak_bytes'] / max(f['peak_bytes'], 1):.2f}x"
        held = ", ".join(f"{v:.2f}" for v in r.get("capture_held_mb", {}).values()) or "-"
        out.append(f"| {r['model']} | {r['variant']} | {r.get('pieces', '-')} | {r['allocations']} | "
                   f"{r['allocated_bytes'] / 1024:.0f} | {r['peak_bytes'] / 1024:.0f} | {vs} | {held} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="results JSON path")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("buffer_bench: --device cuda needs a CUDA GPU; this machine has none (run it with --device cpu).")
    torch.manual_seed(0)
    d = run(a.device)
    Path(a.out).write_text(json.dumps(d, indent=1))
    print(table(d))


if __name__ == "__main__":
    main()
