"""Benchmark of vexplore's compile cache: load time per entry per tier, and warm start.

    python benchmarks/cache_bench.py --out benchmarks/results/cpu-cache.json            # CPU
    python benchmarks/cache_bench.py --device cuda --out /tmp/h100-cache.json           # GPU

Every measurement that says "new process" runs in a fresh Python process (this script with
--role), so first-in-process costs are real. Rows (the results format of benchmarks/README.md plus ``n``/``note``):

- load-<tier>-first / load-<tier>-later: get + verify + CompiledArtifact.load of one entry; the
  first load in a process apart from the later ones (memory: a TieredCache.lookup hit). Importing
  Inductor's load path comes before and is reported in the note, not in the row.
- warm-start-vexplore-disk: first call of vx.compile(model) in a new process, artifacts on disk.
- warm-start-torch-compile: first call of torch.compile(model) in a new process, Inductor's own
  caches warm (the same TORCHINDUCTOR_CACHE_DIR it compiled into).
- dynamo-trace-only: first call of torch.compile(model, backend="eager"): the Dynamo floor.
- warm-start-vexplore-fresh-inductor (CPU): vexplore's disk artifacts, but an empty Inductor cache
  dir, so gcc rebuilds the C++ the artifacts hold.
- cold-*: the first compiles, for context.

Remote rows need the redis package and a redis-server binary; they are skipped without them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = "toy-llama-4L"
TOKENS = 16


# -- children ----------------------------------------------------------------------------------
def _model(device: str):
    import torch
    from vexplore.models import ToyLlama

    torch.manual_seed(0)
    m = ToyLlama(layers=4).eval().to(device)
    return m, m.example_inputs(TOKENS, device=device)[0]


def _cfg(args, sizes: tuple[int, ...] = (), tiers=("memory", "disk")):
    import vexplore as vx

    cache = vx.CacheConfig(tiers=tiers, dir=args.vxdir, remote_url=args.remote_url if "remote" in tiers else None)
    return vx.CompileConfig(strategy="piecewise", splitting_ops=["vexplore::attention"],
                            compile_sizes=sizes, cache=cache)


def role_compile(args) -> dict:
    """vexplore (or torch.compile / Dynamo only) first call in this process."""
    import torch
    import vexplore as vx
    from vexplore.bench.timing import first_call
    from vexplore.engine.build.validate import max_rel_err

    m, x = _model(args.device)
    with torch.no_grad():
        ref = m(x)
    prof = None
    if args.cprofile:                # where a warm start's time goes (parent --profile-dir)
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()   # creating the wrapper counts: torch.compile imports Inductor there
    if args.what == "vexplore":
        tiers = ("memory", "disk", "remote") if args.remote_url else ("memory", "disk")
        fn = vx.compile(m, _cfg(args, tuple(args.sizes), tiers))
    else:
        torch._dynamo.maybe_mark_dynamic(x, 0)    # the same dynamic token dim vexplore marks
        fn = torch.compile(m, backend="eager" if args.what == "dynamo" else "inductor")
    create = time.perf_counter() - t0
    with torch.no_grad():
        s, out = first_call(fn, (x,), args.device == "cuda")
    if prof is not None:
        _save_profile(prof, args.cprofile, f"create {create:.3f} s, first call {s:.3f} s")
    res = {"create_s": create, "first_call_s": s, "max_rel_err": max_rel_err(out, ref)}
    if args.what == "vexplore":
        res["counters"] = fn.report.counters
    return res


def _save_profile(prof, path: str, head: str) -> None:
    import io
    import pstats

    prof.disable()
    text = io.StringIO()
    st = pstats.Stats(prof, stream=text).sort_stats("cumulative")
    st.print_stats(80)
    st.print_callers("vec_isa|_filelock|check_call|torch_key|subprocess.py.*run")   # the usual suspects
    Path(path).write_text(head + "\n" + text.getvalue())


def role_loads(args) -> dict:
    """Per entry: fetch (read + verify) and load; then memory-hit lookups of the loaded entries."""
    from vexplore.cache.disk import DiskTier
    from vexplore.cache.keys import CacheKey
    from vexplore.cache.memory import MemoryTier
    from vexplore.cache.tiered import TieredCache
    from vexplore.engine.build.loader import load_artifact as load

    t0 = time.perf_counter()
    import torch._functorch._aot_autograd.autograd_cache  # noqa: F401  (the load path's imports,
    import torch._inductor.compile_fx  # noqa: F401                       timed apart)
    import_s = time.perf_counter() - t0
    keys = [CacheKey.from_dict(parts) for _, parts in DiskTier(args.vxdir).keys()]
    if args.tier == "remote":
        from vexplore.cache.remote import RemoteTier
        tier = RemoteTier(args.remote_url, timeout_s=5.0)
    else:
        tier = DiskTier(args.vxdir)
    rows = []
    for i, k in enumerate(keys):
        prof = None
        if args.cprofile and i == 0:   # the first load in a process: what it pays for
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        t0 = time.perf_counter()
        art = tier.get(k)
        t1 = time.perf_counter()
        load(art)
        if prof is not None:
            _save_profile(prof, args.cprofile, f"first {args.tier} load {time.perf_counter() - t0:.3f} s")
        rows.append({"fetch_ms": (t1 - t0) * 1e3, "total_ms": (time.perf_counter() - t0) * 1e3,
                     "bytes": len(art.data)})
    cache = TieredCache(MemoryTier(), [tier])
    for k in keys:
        cache.lookup(k, load)
    mem = []
    for _ in range(200):
        for k in keys:
            k2 = CacheKey.from_dict(k.to_dict())   # a fresh key object, as the engine makes one per piece
            t0 = time.perf_counter()
            hit = cache.lookup(k2, load)
            mem.append((time.perf_counter() - t0) * 1e3)
            assert hit.tier == "memory"
    return {"entries": rows, "memory_ms": mem, "import_s": import_s}


def child_main(args) -> None:
    out = role_compile(args) if args.role == "compile" else role_loads(args)
    Path(args.json_out).write_text(json.dumps(out))


# -- parent --------------------------------------------------------------------------------------
def _child(args, env: dict, role: str, **kw) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [sys.executable, __file__, "--role", role, "--json-out", path, "--device", args.device,
           "--vxdir", kw.pop("vxdir")]
    for k, v in kw.items():
        if v is None:
            continue
        cmd += [f"--{k.replace('_', '-')}"] + ([str(s) for s in v] if isinstance(v, (list, tuple)) else [str(v)])
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
    out = json.loads(Path(path).read_text())
    out["process_s"] = time.perf_counter() - t0
    os.unlink(path)
    print(f"  child {role} {kw}: {out['process_s']:.1f} s", file=sys.stderr, flush=True)
    return out


def _row(variant: str, ms: list[float], first_call_s: float | None = None, err: float | None = None,
         note: str = "") -> dict:
    from vexplore.bench.timing import stats   # the same p20/p80 as every vexplore benchmark

    st = stats(ms)
    return {"model": MODEL, "tokens": TOKENS, "size_dim": "tokens", "variant": variant, "median_ms": st.median_ms, "p20_ms": st.p20_ms,
            "p80_ms": st.p80_ms, "n": st.n, "samples_ms": list(ms) if len(ms) <= 50 else None,
            "first_call_s": first_call_s, "max_rel_err": err, "note": note}


def _redis(work: Path) -> tuple[subprocess.Popen | None, str | None]:
    try:
        import redis  # noqa: F401
    except ImportError:
        return None, None
    exe = shutil.which("redis-server")
    if exe is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def _warm_rows(args, env: dict, work: Path, warm_dir: str) -> list[dict]:
    rows = []
    runs = {"warm-start-vexplore-disk": ("vexplore", env), "warm-start-torch-compile": ("torch", env),
            "dynamo-trace-only": ("dynamo", env)}
    got: dict[str, list[dict]] = {v: [] for v in runs}
    for _ in range(args.repeats):   # interleaved, so drift in the machine's speed hits every variant alike
        for variant, (what, e) in runs.items():
            got[variant].append(_child(args, e, "compile", vxdir=warm_dir, what=what))
    for variant, (what, e) in runs.items():
        res = got[variant]
        if what == "vexplore":
            assert all(r["counters"]["cache_hits_disk"] == 3 for r in res), res[0]["counters"]
        fc = [r["first_call_s"] for r in res]
        rows.append(_row(variant, [(r["create_s"] + r["first_call_s"]) * 1e3 for r in res], statistics.median(fc),
                         max(r["max_rel_err"] for r in res),
                         f"ms = create + first call; first call alone median {statistics.median(fc):.2f} s, create "
                         f"{statistics.median(r['create_s'] for r in res):.2f} s; process wall (python start to first "
                         f"output) median {statistics.median(r['process_s'] for r in res):.2f} s"))
    if args.device == "cpu":
        res = []
        for i in range(max(2, args.repeats - 1)):
            fresh = dict(env, TORCHINDUCTOR_CACHE_DIR=str(work / f"inductor-fresh-{i}"))
            res.append(_child(args, fresh, "compile", vxdir=warm_dir, what="vexplore"))
        fc = [r["first_call_s"] for r in res]
        rows.append(_row("warm-start-vexplore-fresh-inductor", [(r["create_s"] + r["first_call_s"]) * 1e3 for r in res],
                         statistics.median(fc),
                         max(r["max_rel_err"] for r in res), "empty TORCHINDUCTOR_CACHE_DIR: gcc rebuilds each piece's C++"))
    return rows


def _load_rows(tier: str, res: dict) -> list[dict]:
    ents = res["entries"]
    note = f"{len(ents)} entries, {statistics.mean(e['bytes'] for e in ents) / 1024:.0f} KiB each on average"
    later = ents[1:]
    rows = [_row(f"load-{tier}-first", [ents[0]["total_ms"]],
                 note=f"fetch {ents[0]['fetch_ms']:.2f} ms; after importing Inductor's load path "
                      f"({res['import_s']:.2f} s, not counted); " + note),
            _row(f"load-{tier}-later", [e["total_ms"] for e in later],
                 note=f"fetch median {statistics.median(e['fetch_ms'] for e in later):.2f} ms; " + note)]
    if tier == "disk":
        rows.append(_row("load-memory", res["memory_ms"], note="TieredCache.lookup hit, new key object each time"))
    return rows


def parent_main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="vx-cache-bench-"))
    # A bytecode cache under work/ for every child (the first cold child fills it): the GPU machine's
    # torch has no .pyc files, and compiling its sources anew in each process (seconds) is not what a
    # user's warm start pays.
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(work / "inductor"), VEXPLORE_CACHE_KEY=secrets.token_hex(32),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONPYCACHEPREFIX=str(work / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    redis_proc, url = _redis(work)
    rows: list[dict] = []
    t_start = time.perf_counter()

    def stage(name: str, new_rows: list[dict]) -> None:
        # The document is rewritten after every stage, so a run cut short keeps what it measured.
        rows.extend(new_rows)
        _write(args, url, rows)
        print(f"[{time.perf_counter() - t_start:6.1f} s] {name}: " + ", ".join(
            f"{r['variant']} {r['median_ms']:.1f} ms" for r in new_rows), file=sys.stderr, flush=True)

    try:
        loads_dir, warm_dir = str(work / "vx-loads"), str(work / "vx-warm")
        cold = _child(args, env, "compile", vxdir=warm_dir, what="vexplore")
        stage("cold vexplore", [_row("cold-vexplore", [cold["first_call_s"] * 1e3], cold["first_call_s"],
                                     cold["max_rel_err"], "first compile, empty caches (Inductor's included)")])
        tc = _child(args, env, "compile", vxdir=warm_dir, what="torch")
        stage("cold torch.compile", [_row("cold-torch-compile", [tc["first_call_s"] * 1e3], tc["first_call_s"],
                                          tc["max_rel_err"],
                                          "first torch.compile; fills Inductor's FX graph and AOTAutograd caches")])
        stage("warm starts", _warm_rows(args, env, work, warm_dir))
        if args.profile_dir:
            Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
            for what in ("vexplore", "torch"):
                _child(args, env, "compile", vxdir=warm_dir, what=what,
                       cprofile=str(Path(args.profile_dir) / f"warm-{what}-{args.device}.prof.txt"))
            stage("profiles", [])
        _child(args, env, "compile", vxdir=loads_dir, what="vexplore", sizes=[1, 4, 8, 16, 32], remote_url=url)
        prof = str(Path(args.profile_dir) / f"first-load-{args.device}.prof.txt") if args.profile_dir else None
        stage("disk loads", _load_rows("disk", _child(args, env, "loads", vxdir=loads_dir, tier="disk", cprofile=prof)))
        if url:
            stage("remote loads", _load_rows("remote", _child(args, env, "loads", vxdir=loads_dir, tier="remote",
                                                              remote_url=url)))
    finally:
        if redis_proc is not None:
            redis_proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(table(_write(args, url, rows)))


def _write(args, url: str | None, rows: list[dict]) -> dict:
    import torch

    dev = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu: {cpu_name()}, {os.cpu_count()} cores"
    try:
        from importlib.metadata import version
        triton = version("triton")
    except Exception:
        triton = None
    doc = {"device": dev, "torch": torch.__version__, "triton": triton, "python": platform.python_version(), "timer": "perf_counter",
           "remote": "redis-server on loopback" if url else "skipped (no redis package or redis-server)",
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(doc: dict) -> str:
    lines = [f"{doc['device']} | torch {doc['torch']} | triton {doc['triton']}",
             f"{'variant':<38}{'median ms':>11}{'p20':>10}{'p80':>10}{'n':>5}  note"]
    for r in doc["rows"]:
        lines.append(f"{r['variant']:<38}{r['median_ms']:>11.2f}{r['p20_ms']:>10.2f}{r['p80_ms']:>10.2f}{r['n']:>5}  {r['note']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/cpu-cache.json")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--role", choices=("compile", "loads"))
    p.add_argument("--json-out")
    p.add_argument("--vxdir")
    p.add_argument("--what", choices=("vexplore", "torch", "dynamo"))
    p.add_argument("--tier", choices=("disk", "remote"))
    p.add_argument("--sizes", type=int, nargs="*", default=[])
    p.add_argument("--remote-url")
    p.add_argument("--profile-dir", help="also cProfile one warm start of vexplore and of torch.compile, text here")
    p.add_argument("--cprofile", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
