"""Session 4 diagnostics (GPU): (1) the test_profile_gpu model's replayed kernels against the reference
call's, per kernel with piece and time; (2) vx.tune of test_tune_gpu's 2-layer model, each trial's
recompile phases and counters. Output: stdout and $OUT/debug-s4.json."""
import json, os, sys, time, logging
import torch
import vexplore as vx
from vexplore.bench import replaymap
from vexplore.models import ToyLlama, ToyLlamaConfig

OUT = os.environ.get("OUT", "/tmp")
res = {}
part = sys.argv[1] if len(sys.argv) > 1 else "both"

if part in ("both", "profile"):
    torch.manual_seed(0)
    m = ToyLlama(ToyLlamaConfig(vocab=512, dim=256, layers=2, heads=2, ffn=512)).cuda().half().eval()
    cm = vx.compile(m, vx.CompileConfig(strategy="piecewise", cudagraph="full_and_piecewise",
                                        cache=vx.CacheConfig(tiers=("memory",))), session=vx.Session())
    seen = []
    orig = replaymap.assign
    def spy(run, reference):
        out = orig(run, reference)
        calls = sorted({k.call for k in run.kernels})
        c0 = calls[0] if calls else None
        seen.append({"run": [(k.name[:90], k.piece, round(k.end - k.start, 3) if hasattr(k, "end") else None) for k in run.kernels if k.call == c0],
                     "mapped": [(k.name[:90], k.piece) for k in out.kernels if k.call == c0],
                     "reference": [(k.name[:90], k.piece) for k in reference.kernels]})
        return out
    replaymap.assign = spy
    with torch.no_grad():
        cm(*m.example_inputs(128, "cuda"))
        for n in (1, 64):
            x = m.example_inputs(n, "cuda")
            prof = cm.profile(*x, calls=5, warmup=2)
            rows = [(r.name[:90], r.piece, round(r.total_ms / prof.calls, 5)) for r in prof.rows]
            print(f"== {n} tokens: attributed {prof.attributed_share:.3f} device {prof.device_ms:.4f} ms")
            for r in rows:
                print("  row", r)
            s = seen[-1]
            print("  reference:", s["reference"])
            print("  replay call 0:", s["run"])
            res[f"profile{n}"] = {"rows": rows, **s, "attributed": prof.attributed_share}
    replaymap.assign = orig

if part in ("both", "tune"):
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0f ms %(name)s %(message)s")
    logging.getLogger("vexplore").setLevel(logging.INFO)
    torch.manual_seed(0)
    m = ToyLlama(ToyLlamaConfig(vocab=1024, dim=512, layers=2, heads=4, ffn=1024)).cuda().half().eval()
    xs = {n: m.example_inputs(n, "cuda") for n in (1, 16)}
    cm = vx.compile(m, vx.CompileConfig(cache=vx.CacheConfig(dir=os.path.join(OUT, "vxc"))), session=vx.Session())
    with torch.no_grad():
        t = time.perf_counter(); cm(*xs[16]); print(f"first call 16: {time.perf_counter() - t:.1f} s", flush=True)
        n0 = len(cm.reports)
        t = time.perf_counter()
        import faulthandler   # where a long trial spends its time: every thread's stack each 25 s
        faulthandler.dump_traceback_later(25, repeat=True)
        r = vx.tune(cm, xs, budget_s=100)
        faulthandler.cancel_dump_traceback_later()
        print(f"tune took {time.perf_counter() - t:.1f} s; notes {r.notes}", flush=True)
    for tr in r.trials:
        print("trial", tr.number, tr.status, tr.diff, f"first {tr.first_call_s}", f"seconds {tr.seconds:.1f}", tr.error)
    for rep in cm.reports[n0:]:
        print("report", rep.kind if hasattr(rep, "kind") else "", f"wall {rep.wall_s:.1f}", {k: round(v, 1) for k, v in rep.phases.items() if v > 0.5},
              {k: v for k, v in rep.counters.items() if v})
    res["tune"] = {"trials": [(t.number, t.status, str(t.diff), t.first_call_s, t.seconds) for t in r.trials]}

json.dump(res, open(os.path.join(OUT, "debug-s4.json"), "w"), indent=1, default=str)
