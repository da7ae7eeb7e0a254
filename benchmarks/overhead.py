"""Per-call overhead of vexplore's runtime on the CPU: Python time per call and per piece.

    python benchmarks/overhead.py --out benchmarks/results/cpu-overhead.json

A tiny toy Llama (4 layers, d 8, 2 tokens) compiled piecewise and full with the eager compiler,
so the pieces are plain GraphModules and what differs is the call path. Timed with timeit,
the three measured in turn (drift hits them alike), best of 25 rounds of 500 calls, per call:

- ``entry``: ``cm(x)``: Dynamo's guards, the runner, the stitched parent, the pieces;
- ``stitched``: the stitched code called directly (what the runner calls: the parent graph's code as a
  plain function, no nn.Module call chain, without CUDA graphs);
- ``direct``: the same pieces' runners called one after another on recorded inputs.

entry - stitched is what Dynamo and vexplore's entry cost; (stitched - direct) / pieces is the
stitching's cost per piece. A regression in the call path shows here.
"""
from __future__ import annotations

import argparse
import json
import platform
import timeit

import torch
import torch.fx as fx

import vexplore as vx
from vexplore.models import ToyLlama


class _Recorder(fx.Interpreter):
    """Runs the stitched parent once, keeping each piece's runner and inputs."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.calls: list = []

    def call_module(self, target, args, kwargs):
        fn = self.module.__dict__.get(str(target)) or getattr(self.module, str(target))
        self.calls.append((fn, tuple(args)))
        return super().call_module(target, args, kwargs)


def _interleaved(fns: dict, number: int = 500, rounds: int = 25) -> dict:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
    return best


def measure(strategy: str) -> dict:
    torch.manual_seed(0)
    m = ToyLlama(layers=4, dim=8, heads=2, ffn=16, vocab=32).eval()
    x = m.example_inputs(2)
    cm = vx.compile(m, vx.CompileConfig(strategy=strategy, compiler="eager", cache=vx.CacheConfig(tiers=("memory",))))
    with torch.no_grad():
        cm(*x)
        g = cm.graphs[0]
        stitched = g.runner.fn
        parent = stitched.__self__
        rec = _Recorder(parent)
        rec.run(*g.real_inputs)
        calls = rec.calls

        def direct() -> None:
            for fn, args in calls:
                fn(*args)
        t = _interleaved({"entry": lambda: cm(*x), "stitched": lambda: stitched(*g.real_inputs), "direct": direct})
        out = {"entry_us": t["entry"], "stitched_us": t["stitched"], "direct_us": t["direct"], "pieces": len(calls)}
    out["dynamo_and_entry_us"] = out["entry_us"] - out["stitched_us"]
    out["stitching_per_piece_us"] = (out["stitched_us"] - out["direct_us"]) / out["pieces"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    result = {"device": f"cpu ({platform.processor() or platform.machine()})", "torch": torch.__version__,
              "timer": "timeit, best of 25 interleaved rounds", "variants": {s: measure(s) for s in ("full", "piecewise")}}
    for s, r in result["variants"].items():
        print(f"{s:<10} entry {r['entry_us']:7.1f} us  stitched {r['stitched_us']:7.1f} us  direct {r['direct_us']:7.1f} us"
              f"  pieces {r['pieces']}  dynamo+entry {r['dynamo_and_entry_us']:6.1f} us  per piece {r['stitching_per_piece_us']:5.2f} us")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
