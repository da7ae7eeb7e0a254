"""vx.tune on the GPU (issue 27's figures): the toy Llama (8 layers, d 2048, fp16) at 1, 16 and 2048
tokens from ``vx.compile(model)`` (the defaults), the default CUDA space, objective "latency" on the
idle timer; then the tuned config (``vexplore-tuned``) against torch's own modes compiled static per
size (torch-default, torch-reduce-overhead), measured by vx.benchmark with both timers.

    python benchmarks/tune_gpu.py --budget 600 --out benchmarks/results/h200-tune.json

torch-max-autotune-no-cudagraphs (static per size) is added with --autotune: its compiles take
minutes per size. Every trial is written to the results file (its diff from the start, per-size
medians and spread, first-call s, status), with the result's improvement and its interval.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

import vexplore as vx
from vexplore.bench.variants import resolve

sys.path.insert(0, os.path.dirname(__file__))
import decode  # noqa: E402

SIZES = (2048, 16, 1)   # largest first: the general (dynamic) compile


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--autotune", action="store_true", help="also torch-max-autotune (static per size; minutes)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    m = decode.model(args.layers)
    xs = {n: m.example_inputs(n, "cuda") for n in SIZES}
    session = vx.Session()
    cm = vx.compile(m, session=session)
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "model": f"toy-llama-{args.layers}L-d2048-fp16",
           "budget_s": args.budget, "sizes": list(SIZES)}
    with torch.no_grad():
        for n in SIZES:
            cm(*xs[n])
        t0 = time.perf_counter()
        r = vx.tune(cm, xs, budget_s=args.budget)
        out["tune_s"] = time.perf_counter() - t0
    out["result"] = r.to_dict()
    out["best_diff"] = {k: str(v) for k, v in r.best_diff.items()}
    print(f"tune: {out['tune_s']:.1f} s, {len(r.trials)} trials {r.by_status()}, best trial {r.best_trial}: "
          f"{out['best_diff']}; improvement {r.improvement} ci {r.improvement_ci}", flush=True)
    for t in r.trials:
        print(f"  trial {t.number:>3} {t.status:<16} {t.medians()} first {t.first_call_s} {dict(t.diff)}"[:300])
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, default=str)
    r.apply(cm)
    modes = ["torch-default", "torch-reduce-overhead"] + (["torch-max-autotune-no-cudagraphs"] if args.autotune else [])
    variants = ["eager", *resolve(m, modes, session), ("vexplore-tuned", cm)]
    for timer in ("idle", "steady"):
        rep = vx.benchmark(m, xs, variants, timer=timer, warmup=5, budget_s=2.0, session=session,
                           model_name=out["model"])
        out[f"bench_{timer}"] = rep.to_dict()
        print(f"\n{timer}\n{rep.table()}", flush=True)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1, default=str)
    roof = decode._roofline(m)
    out["roofline"] = roof
    one = [row for row in out["bench_idle"]["rows"] if row["variant"] == "vexplore-tuned" and row["tokens"] == 1]
    if one:
        out["roofline_ratio_1_token"] = one[0]["median_ms"] / roof["roofline_ms"]
        print(f"roofline at 1 token: {roof['roofline_ms']:.3f} ms; vexplore-tuned {out['roofline_ratio_1_token']:.2f}x")
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
