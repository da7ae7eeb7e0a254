"""Cost of one monitor sample (``session.monitor.sample()``), by the size of the disk tier's index.

    python benchmarks/monitor_bench.py --out benchmarks/results/cpu-monitor.json

A sample reads RSS and CPU time (psutil), device memory when CUDA is in use, the disk tiers' size
from their indexes (the total at the head of index.json before this process loaded the index,
else its own copy: never a directory walk) and the compile counters the monitor has seen. Target:
under 10 ms a sample. Each row: a fresh Session over a disk tier whose index.json lists N entries
(synthetic: the sample reads the index only), the first sample apart, then 500 more.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import vexplore as vx  # noqa: E402
from vexplore.cache.index import DiskIndex, Entry  # noqa: E402


def _fill(root: Path, n: int) -> None:
    """``n`` artifact files of 600 KiB (sparse: a sample never opens them) and an index.json listing them."""
    key = {"graph": "g" * 16, "inputs": "f32[s0, 64]", "config": {"strategy": "piecewise"}, "versions": {"torch": torch.__version__}}
    entries = {}
    for i in range(n):
        digest = f"{i:064x}"
        shard = root / "artifacts" / digest[-2:]
        shard.mkdir(parents=True, exist_ok=True)
        with open(shard / f"{digest}.vxa", "wb") as f:
            f.truncate(600 * 1024)
        entries[digest] = Entry(600 * 1024, time.time(), key)
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    DiskIndex(root, root / "artifacts", lambda *a: None).save(entries)


def row(n: int, loaded: bool, reps: int = 500) -> dict:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "vx"
        _fill(root, n)
        s = vx.Session()
        tier = s.disk_tier(str(root))
        if loaded:
            tier.keys()          # this process reads the whole index (as a compile's lookup does)
        t0 = time.perf_counter()
        first = s.monitor.sample()
        first_ms = (time.perf_counter() - t0) * 1e3
        ms = []
        for _ in range(reps):
            t0 = time.perf_counter()
            s.monitor.sample()
            ms.append((time.perf_counter() - t0) * 1e3)
        s.close()
    ms.sort()
    return {"entries": n, "index_loaded": loaded, "disk_cache_mb": first.disk_cache_mb, "first_ms": first_ms,
            "median_ms": statistics.median(ms), "p99_ms": ms[int(0.99 * len(ms))], "max_ms": ms[-1], "n": len(ms)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/cpu-monitor.json")
    args = p.parse_args()
    rows = [row(n, loaded) for n in (0, 1_000, 10_000) for loaded in (False, True)]
    doc = {"device": f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__,
           "python": platform.python_version(), "timer": "perf_counter", "rows": rows}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    for r in rows:
        print(f"{r['entries']:>6} entries, index {'loaded' if r['index_loaded'] else 'on disk'}: first {r['first_ms']:.2f} ms, "
              f"median {r['median_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, max {r['max_ms']:.2f} ms ({r['disk_cache_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
