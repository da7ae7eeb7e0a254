"""Session 5 diagnostic (GPU): the kernels one call runs, vexplore-default against torch-reduce-overhead
(static) and vexplore-whole (cudagraph_whole: full captures of the graph compiled whole), on the 8-layer toy Llama at 1 and
16 tokens: what the ~20 µs a call on the steady timer is made of. torch.profiler over 10 warm calls of
each; per callable the kernels of one call (name, count, mean µs) and the device time per call.
Output: stdout and $OUT/kernels-s5.json."""
import collections
import json
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

import vexplore as vx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import decode  # noqa: E402

CALLS = 10
m = decode.model(8)
session = vx.Session()
fns = {"vexplore-default": vx.compile(m, session=session),
       "vexplore-whole": vx.compile(m, vx.CompileConfig(cudagraph_whole=True), session=session)}
res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "sizes": {}}
with torch.no_grad():
    for f in fns.values():
        f(*m.example_inputs(2048, "cuda"))   # the general graph first, as decode.py parity does
    for n in (1, 16):
        x = m.example_inputs(n, "cuda")
        ro = torch.compile(m, mode="reduce-overhead", dynamic=False)
        per = {"torch-reduce-overhead": ro, **fns}
        res["sizes"][n] = {}
        for name, f in per.items():
            for _ in range(5):
                f(*x)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as p:
                for _ in range(CALLS):
                    f(*x)
                torch.cuda.synchronize()
            kern = [e for e in p.events() if e.device_type == torch.autograd.DeviceType.CUDA]
            by = collections.defaultdict(list)
            for e in kern:
                by[e.name].append(e.device_time if hasattr(e, "device_time") else e.cuda_time)
            rows = sorted(((k, len(v) / CALLS, sum(v) / len(v)) for k, v in by.items()), key=lambda r: -r[1] * r[2])
            busy = sum(sum(v) for v in by.values()) / CALLS
            res["sizes"][n][name] = {"kernels_per_call": len(kern) / CALLS, "busy_us": busy,
                                     "rows": [{"name": k, "per_call": c, "mean_us": u} for k, c, u in rows]}
            print(f"== {n} tokens {name}: {len(kern) / CALLS:.1f} kernels/call, busy {busy:.1f} us/call", flush=True)
            for k, c, u in rows[:14]:
                print(f"   {c:5.1f} x {u:7.2f} us  {k[:110]}")
json.dump(res, open(os.path.join(os.environ.get("OUT", "/tmp"), "kernels-s5.json"), "w"), indent=1)
