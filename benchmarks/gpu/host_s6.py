"""Session 6 one-off: the host's time per call of vx.compile(model) at 1 and 16 tokens against torch
reduce-overhead (wall per call, synchronised; median of 200), and where vexplore's goes (cProfile)."""
import cProfile
import io
import os
import pstats
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import decode  # noqa: E402
import vexplore as vx  # noqa: E402


def wall(fn, x, n=200):
    out = []
    for _ in range(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn(*x)
        torch.cuda.synchronize()
        out.append((time.perf_counter() - t) * 1e3)
    return statistics.median(out)


m = decode.model(8)
vxd = vx.compile(m, session=vx.Session())
ro = torch.compile(m, mode="reduce-overhead")
with torch.no_grad():
    for n in (1, 16):
        x = m.example_inputs(n, "cuda")
        for f in (vxd, ro):
            for _ in range(5):
                f(*x)
        print(f"{n} tokens: wall ms vexplore-default {wall(vxd, x):.3f}, torch-reduce-overhead {wall(ro, x):.3f}", flush=True)
    x = m.example_inputs(16, "cuda")
    p = cProfile.Profile()
    p.enable()
    for _ in range(200):
        vxd(*x)
    torch.cuda.synchronize()
    p.disable()
    s = io.StringIO()
    pstats.Stats(p, stream=s).sort_stats("tottime").print_stats(22)
    print(s.getvalue()[-6000:])
