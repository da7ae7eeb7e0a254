"""Dump torch.profiler's raw events for a tiny piecewise model on CUDA (how kernels link to the CPU ops
and ranges that launched them), eager compiler, without and with CUDA graphs. Output: $OUT/events.json."""
import json, os, sys
import torch
from torch.profiler import ProfilerActivity, record_function
sys.path.insert(0, "tests")
import vexplore as vx
from models import Stack

out = {"torch": torch.__version__}
m = Stack(layers=1).cuda().eval()
x = torch.randn(8, 16, device="cuda")
for cg in ("none", "full"):
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", splitting_ops=["vxtest::mix"], compiler="eager", cudagraph=cg,
                                        cache=vx.CacheConfig(tiers=("memory",))), session=vx.Session())
    with torch.no_grad():
        for _ in range(3):
            cm(x)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            with record_function("vexplore call 0"):
                with record_function("vexplore piece 7"):
                    cm(x)
                torch.cuda.synchronize()
    evs = []
    for e in prof.events():
        evs.append({"name": e.name[:80], "id": e.id, "dev": str(e.device_type), "linked": getattr(e, "linked_correlation_id", None),
                    "parent": e.cpu_parent.name[:60] if e.cpu_parent else None, "ann": getattr(e, "is_user_annotation", None),
                    "start": e.time_range.start, "end": e.time_range.end, "kernels": [k.name[:40] for k in getattr(e, "kernels", [])][:3]})
    raw = []
    for k in prof.profiler.kineto_results.events():
        raw.append({"name": k.name()[:80], "corr": k.correlation_id(), "linked": k.linked_correlation_id(), "dev": str(k.device_type()),
                    "start": k.start_ns() if hasattr(k, "start_ns") else None})
    out[cg] = {"events": evs, "raw": raw}
with open(os.path.join(os.environ.get("OUT", "/tmp"), "events.json"), "w") as f:
    json.dump(out, f, indent=0, default=str)
print("ok", {k: len(v["events"]) for k, v in out.items() if isinstance(v, dict)})
