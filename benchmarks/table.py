"""Markdown table of a decode results file (benchmarks/results/*-decode-*.json), as README shows it.

    python benchmarks/table.py benchmarks/results/h200-decode-idle.json
"""
from __future__ import annotations

import json
import sys

BASE = "torch-reduce-overhead"


def table(path: str) -> str:
    d = json.load(open(path))
    rows = d["rows"]
    base = {r["tokens"]: r["median_ms"] for r in rows if r["variant"] == BASE}
    out = [f"Device: {d['device']}, torch {d['torch']}, Triton {d['triton']}, timer **{d['timer']}**. "
           f"Weights read per step: {d['weight_bytes'] / 1e9:.3f} GB; copy bandwidth {d['copy_bandwidth_GBps']:.0f} GB/s; "
           f"roofline {d['roofline_ms']:.3f} ms.", "",
           f"| tokens | variant | median ms | ±median | p20–p80 ms | vs {BASE} | x roofline | first call s | max rel err | status |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (-r["tokens"], r["variant"] != "eager", r["variant"])):
        vs = r["median_ms"] / base[r["tokens"]] if r["tokens"] in base else float("nan")
        first = "-" if r["first_call_s"] is None else f"{r['first_call_s']:.2f}"
        out.append(f"| {r['tokens']} | {r['variant']} | {r['median_ms']:.3f} | {r['median_ci']:.1%} | "
                   f"{r['p20_ms']:.3f}–{r['p80_ms']:.3f} | {vs:.2f}x | {r['roofline_ratio']:.2f} | {first} | "
                   f"{r['max_rel_err']:.1e} | {r['status']} |")
    return "\n".join(out)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(table(p), "\n")
