"""Runtime profiles on the GPU (issue 26's figures): the toy Llama (8 layers, d 2048, fp16) at 2048, 16
and 1 tokens and the Hugging Face Llama with a StaticCache (decode step and a 16-token prefill), both
compiled piecewise with cudagraph="full_and_piecewise".

    python benchmarks/profile_gpu.py --out benchmarks/results/h200-profile.json

Per size: ``cm.profile(x, calls=20, warmup=5)`` (what it took, and that time beyond the 25 calls
themselves), the profile's attributed_share, wall/device/span/host-gap ms, and CUDA-event time of 20
calls of the same inputs without the profiler (each call between two events, synchronised; the
median) against the profile's median span (since session 6 itself CUDA events of calls without the
profiler, from the call's first graph entry: ``span_timer``) and the trace's (``traced_span_ms``):
from an idle device (the host's time before the first graph included) and queued behind a device
sleep (the kernels' device time alone, no host gap). Every kernel row is kept (name, piece, nodes, source
lines, ms, bytes, FLOPs, GB/s, TFLOP/s, limit_share), the rows without a piece listed apart.

The HF model is profiled at the decode step and a 16-token prefill only: each profiled call writes
the StaticCache at its running length (cm.profile cannot rewind the cache between calls), so 25
calls of 2048 tokens would need a cache of 51k positions.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

import vexplore as vx

sys.path.insert(0, os.path.dirname(__file__))
import decode  # noqa: E402
import hf_decode  # noqa: E402

CALLS, WARMUP = 20, 5
CFG = dict(strategy="piecewise", cudagraph="full_and_piecewise")


def event_ms(fn, calls: int = CALLS, queued: bool = False) -> float:
    """Median CUDA-event time of ``calls`` calls, each between two events and synchronised. ``queued``: the
    device sleeps ~5 ms first, so the host has launched the whole call before the first event fires: the
    events then time the kernels' device span with no host gap between them (first kernel to last);
    without it they also hold the host's time before the call's first kernel (guards, the launches)."""
    out = []
    for _ in range(calls):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        if queued:
            torch.cuda._sleep(10_000_000)   # cycles: ~5 ms at the H100's ~2 GHz, longer than any call's host time
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)


def one(cm, label: str, args: tuple, kwargs: dict) -> dict:
    with torch.no_grad():
        ev = event_ms(lambda: cm(*args, **kwargs))
        queued = event_ms(lambda: cm(*args, **kwargs), queued=True)
        t0 = time.perf_counter()
        prof = cm.profile(*args, calls=CALLS, warmup=WARMUP, **kwargs)
        took = time.perf_counter() - t0
    rows = sorted(prof.rows, key=lambda r: -r.total_ms)
    row = lambda r: {"name": r.name, "piece": r.piece, "nodes": list(r.nodes)[:6], "source_lines": list(r.source_lines)[:3],
                     "calls": r.calls, "total_ms": r.total_ms, "mean_ms": r.mean_ms, "bytes": r.bytes, "flops": r.flops,
                     "estimated": r.estimated, "gbps": r.gbps, "tflops": r.tflops, "limit_share": r.limit_share}
    res = {"case": label, "attributed_share": prof.attributed_share, "wall_ms": prof.wall_ms, "device_ms": prof.device_ms,
           "span_ms": prof.span_ms, "host_gap_ms": prof.host_gap_ms, "event_ms": ev, "span_over_event": prof.span_ms / ev,
           "queued_event_ms": queued, "span_over_queued_event": prof.span_ms / queued,
           "span_timer": prof.span_timer, "traced_span_ms": prof.traced_span_ms, "lead_in_ms": prof.lead_in_ms,
           "lead_in_and_span_over_event": (prof.lead_in_ms + prof.span_ms) / ev,
           "traced_span_over_event": prof.traced_span_ms / ev,
           "profile_s": took, "beyond_calls_s": took - (CALLS + WARMUP) * prof.wall_ms / 1e3,
           "runtime": prof.runtime.to_dict(), "build": prof.build, "note": prof.note,
           "rows": [row(r) for r in rows], "unmapped": [row(r) for r in rows if r.piece is None or not r.source_lines]}
    total = sum(r.total_ms for r in rows)
    far = [r for r in rows if r.limit_share is not None and r.total_ms > 0.02 * total]   # kernels that matter
    res["furthest_from_limit"] = [row(r) for r in sorted(far, key=lambda r: r.limit_share)[:5]]
    print(f"{label}: attributed {prof.attributed_share:.3f}, wall {prof.wall_ms:.3f} ms, device {prof.device_ms:.3f}, "
          f"span {prof.span_ms:.3f} vs events {ev:.3f} ({prof.span_ms / ev:.3f}x), queued {queued:.3f} "
          f"({prof.span_ms / queued:.3f}x), lead-in {prof.lead_in_ms:.3f} (+span {(prof.lead_in_ms + prof.span_ms) / ev:.3f}x events), traced span {prof.traced_span_ms:.3f} ({prof.traced_span_ms / ev:.3f}x events), "
          f"host gap {prof.host_gap_ms:.3f}, "
          f"profile {took:.2f} s ({res['beyond_calls_s']:.2f} s beyond the calls), rows {len(rows)}, "
          f"unmapped {len(res['unmapped'])}: {[(r['name'][:40], r['total_ms']) for r in res['unmapped'][:4]]}", flush=True)
    for r in rows[:6]:
        print(f"   {r.total_ms / prof.calls:8.4f} ms/call  piece {r.piece}  share {r.limit_share}  {r.name[:70]}  {list(r.source_lines)[:1]}")
    return res


def toy(out: dict) -> None:
    m = decode.model(8)
    cm = vx.compile(m, vx.CompileConfig(**CFG, cache=vx.CacheConfig(tiers=("memory",))), session=vx.Session())
    for n in (2048, 16, 1):   # largest first: the general (dynamic) compile
        try:
            out["cases"].append(one(cm, f"toy-llama-8L-d2048-fp16 {n} tokens", m.example_inputs(n, "cuda"), {}))
        except Exception as e:   # noqa: BLE001 — recorded, the other cases still run
            out["cases"].append({"case": f"toy {n}", "error": f"{type(e).__name__}: {e}"[:2000]})
            print("ERROR", out["cases"][-1], flush=True)


def hf(out: dict) -> None:
    args = hf_decode.parse(["--max-cache", "2304", "--lengths", "16"])
    model = hf_decode.build(args)
    cm = vx.compile(model, vx.CompileConfig(**CFG, cache=vx.CacheConfig(tiers=("memory",))), session=vx.Session())
    cache = hf_decode.new_cache(model, args)
    c = hf_decode.caller(cm, model, cache, args)
    kw = lambda ids, pos: {"input_ids": ids, "position_ids": pos, "use_cache": True, "logits_to_keep": 1, c.cache_kw: cache}
    name = f"hf-llama-{args.layers}L-h{args.hidden}-{args.dtype}-static{args.max_cache}"
    with torch.no_grad():
        for n, at in ((16, 0), (1, 256)):
            hf_decode.set_length(cache, at)
            ids, pos = hf_decode.make_inputs(n, at, args, seed=n)
            try:
                out["cases"].append(one(cm, f"{name} {'prefill' if n > 1 else 'decode'} {n} tokens", (), kw(ids, pos)))
            except Exception as e:   # noqa: BLE001
                out["cases"].append({"case": f"hf {n}", "error": f"{type(e).__name__}: {e}"[:2000]})
                print("ERROR", out["cases"][-1], flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "calls": CALLS, "warmup": WARMUP,
           "config": CFG, "timer": "cm.profile (torch.profiler) and CUDA events around each call", "cases": []}
    for part in (toy, hf):
        part(out)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1, default=str)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
