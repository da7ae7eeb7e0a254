"""Hugging Face LlamaForCausalLM with a static KV cache: vexplore against eager and torch.compile.

    python benchmarks/hf_decode.py --out benchmarks/results/h200-hf-{timer}.json
    python benchmarks/hf_decode.py --timers idle steady --out benchmarks/results/h200-hf-{timer}.json
    python benchmarks/hf_decode.py --device cpu --tiny --out /tmp/cpu-hf-{timer}.json

The model is built from a config with random weights (nothing is downloaded): 8 layers, hidden
1024, intermediate 2816, 16 heads, 8 KV heads, vocab 32000, fp16 on CUDA, SDPA attention, and a
``transformers.StaticCache``. It is called as ``generate`` calls it with a static cache:
``model(input_ids=ids, cache=cache, position_ids=pos, use_cache=True, logits_to_keep=1)``
(``past_key_values=`` on transformers releases whose forward still names it so, 5.17; plus
``cache_position=`` where the forward still takes it, 4.x).

Correctness: vexplore with ``CompileConfig(strategy="piecewise", cudagraph="full_and_piecewise")``
prefills at each prompt length (largest first), then takes ``--steps`` 1-token decode steps; a
separate StaticCache runs the same inputs eagerly. Every call's logits and, at the end, every
layer's keys and values must equal eager's within the accuracy gate of ``vx.benchmark``
(max|got - eager| / max|eager| <= 2e-2 in fp16, 1e-4 in fp32). Dynamo traces, the reports'
counters and warnings, and the CUDA-graph stats are recorded too.

Timing: a decode step (1 token at cache position ``--decode-at``) and prefill at each length,
for eager, torch.compile(mode="reduce-overhead", dynamic=False) (compiled static per size, the
fastest a user gets from torch; generate's own compile of the decode step uses reduce-overhead
too) and vexplore, with the project's timer (idle by
default) and its repetition rule and accuracy gate (a row over the gate is ``failed``, one
whose median stays uncertain ``noisy``). Each variant has its own StaticCache. One results
file per timer (``{timer}`` in --out); the correctness part is in each.

The StaticCache is sized as generate sizes it (prompt + new tokens: 320 by default), shorter
than vexplore's capture ladder (up to 512): a graph that writes a cache in place has its sizes
above the call in hand captured at their first call (cudagraph.py), not at compile time, where
a capture of 512 tokens would write past the end of the cache.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import platform
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

import torch

import vexplore as vx
from vexplore.bench.compare import BenchRow, tolerance
from vexplore.bench.timing import Budget, Sampler, autorange, first_call, l2_flush_buffer, stats
from vexplore.bench.variants import resolve, variant_name
from vexplore.engine.build.validate import max_rel_err

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
VX_CFG = dict(strategy="piecewise", cudagraph="full_and_piecewise")


# -- the model and its cache ------------------------------------------------------------------
def build(args: argparse.Namespace) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=max(args.max_cache, 2048),
                      attn_implementation="sdpa")
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).to(device=args.device, dtype=DTYPES[args.dtype]).eval()


def new_cache(model: torch.nn.Module, args: argparse.Namespace, length: int | None = None) -> Any:
    """A StaticCache of ``length`` (default ``--max-cache``) tokens, batch 1, allocated now (not on the
    first update, so no compiled region allocates it) and so at the same addresses for the whole run."""
    from transformers import StaticCache

    c, dtype, device = model.config, DTYPES[args.dtype], torch.device(args.device)
    length = length or args.max_cache
    try:     # 5.x: StaticCache(config, max_cache_len, ...), tensors made lazily or by early_initialization
        cache = StaticCache(config=c, max_cache_len=length)
    except TypeError:   # 4.x: batch size, device and dtype up front
        cache = StaticCache(config=c, max_batch_size=1, max_cache_len=length, device=device, dtype=dtype)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    if hasattr(cache, "early_initialization"):
        cache.early_initialization(1, c.num_key_value_heads, head_dim, dtype, device)
    return cache


def kv_tensors(cache: Any) -> list[tuple[str, torch.Tensor]]:
    """Every layer's keys and values, by name."""
    if hasattr(cache, "layers"):
        return [(f"layer{i}.{w}", getattr(layer, w)) for i, layer in enumerate(cache.layers) for w in ("keys", "values")]
    return ([(f"layer{i}.keys", t) for i, t in enumerate(cache.key_cache)]
            + [(f"layer{i}.values", t) for i, t in enumerate(cache.value_cache)])


def set_length(cache: Any, n: int) -> None:
    """Rewind (or advance) the cache's write position to ``n`` in place (the tensors keep their
    addresses). In transformers 5.x a StaticLayer writes at its ``cumulative_length`` tensor and
    adds the token count to it; 4.x wrote at the ``cache_position`` argument (nothing to do)."""
    for layer in getattr(cache, "layers", ()):
        if isinstance(getattr(layer, "cumulative_length", None), torch.Tensor):
            layer.cumulative_length.fill_(n)


@dataclass
class Caller:
    """``fn`` called as generate calls the model with a static cache; returns the logits."""

    fn: Callable[..., Any]
    cache: Any
    cache_kw: str             # "cache" (transformers 5.24) or "past_key_values" (5.17)
    cache_position: bool      # the forward still takes cache_position (4.x)
    logits_to_keep: int

    def __call__(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        kw = {self.cache_kw: self.cache}
        if self.cache_position:
            kw["cache_position"] = pos[0]
        return self.fn(input_ids=ids, position_ids=pos, use_cache=True, logits_to_keep=self.logits_to_keep, **kw).logits


def caller(fn: Callable[..., Any], model: torch.nn.Module, cache: Any, args: argparse.Namespace) -> Caller:
    params = inspect.signature(type(model.model).forward).parameters
    kw = "cache" if "cache" in params else "past_key_values"
    return Caller(fn, cache, kw, "cache_position" in params, args.logits_to_keep)


def make_inputs(n: int, start: int, args: argparse.Namespace, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, args.vocab, (1, n), generator=g).to(args.device)
    return ids, torch.arange(start, start + n, device=args.device).unsqueeze(0)


def sync(args: argparse.Namespace) -> None:
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()


def diff(got: torch.Tensor, want: torch.Tensor) -> dict:
    return {"max_abs": (got.double() - want.double()).abs().max().item(), "max_rel": max_rel_err(got, want)}


# -- correctness ------------------------------------------------------------------------------
def check_length(n: int, eager: Caller, vexp: Caller, args: argparse.Namespace) -> dict:
    try:
        return _check_length(n, eager, vexp, args)
    except Exception as e:   # noqa: BLE001 — recorded (and printed), so the other lengths and the timing still run
        traceback.print_exc()
        return {"prompt": n, "decode_steps": args.steps, "passed": False, "error": f"{type(e).__name__}: {e}"[:2000]}


def _check_length(n: int, eager: Caller, vexp: Caller, args: argparse.Namespace) -> dict:
    """Prefill ``n`` tokens then ``--steps`` decode steps into both (reset) caches; logits per
    call and, at the end, every layer's keys and values against eager's."""
    eager.cache.reset()
    vexp.cache.reset()
    calls = [make_inputs(n, 0, args, seed=n)] + [make_inputs(1, n + k, args, seed=10_000 * n + k)
                                                for k in range(args.steps)]
    logits, first_s = [], []
    for ids, pos in calls:
        want = eager(ids, pos)
        sync(args)
        t0 = time.perf_counter()
        got = vexp(ids, pos)
        sync(args)
        first_s.append(time.perf_counter() - t0)
        logits.append(diff(got, want))
    kv = {name: diff(got, want) for (name, got), (_, want) in zip(kv_tensors(vexp.cache), kv_tensors(eager.cache))}
    tol = tolerance(DTYPES[args.dtype])
    worst_kv = max(kv.values(), key=lambda d: d["max_rel"])
    return {"prompt": n, "decode_steps": args.steps, "prefill_s": first_s[0], "first_decode_s": first_s[1] if args.steps else None,
            "prefill_logits": logits[0], "decode_logits_max_rel": max((d["max_rel"] for d in logits[1:]), default=0.0),
            "decode_logits_max_abs": max((d["max_abs"] for d in logits[1:]), default=0.0),
            "kv_max_rel": worst_kv["max_rel"], "kv_max_abs": max(d["max_abs"] for d in kv.values()), "kv": kv,
            "passed": max(d["max_rel"] for d in logits) <= tol and worst_kv["max_rel"] <= tol, "tolerance": tol}


def graph_stats(cm: Any) -> list:
    out = []
    for g in cm.graphs:
        s = getattr(g, "graph_stats", None)
        d = dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s
        if isinstance(d, dict) and isinstance(d.get("sizes"), dict):
            d["sizes"] = {str(k): v for k, v in d["sizes"].items()}
        out.append(d)
    return out


def correctness(eager: Caller, vexp: Caller, args: argparse.Namespace) -> dict:
    cm = vexp.fn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lengths = [check_length(n, eager, vexp, args) for n in args.lengths]
    reps = [{"kind": r.kind, "strategy": r.strategy, "wall_s": r.wall_s, "counters": dict(r.counters),
             "warnings": [w.to_dict() for w in r.warnings], "graph_breaks": list(r.graph_breaks)} for r in cm.reports]
    return {"passed": all(x["passed"] for x in lengths), "lengths": lengths, "graphs": len(cm.graphs),
            "token_dims": {k: list(v) for k, v in cm.token_dims.items()}, "reports": reps,
            "graph_stats": graph_stats(cm), "python_warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught})}


# -- timing -----------------------------------------------------------------------------------
class Rewind:
    """What the Sampler calls ``flush.zero_()`` on before each timed call, outside the timed
    window: rewinds the variant's cache to ``start`` tokens, then flushes the L2 (when on).

    A StaticCache step writes its keys and values at the cache's length and advances it, so
    without a rewind the calls would walk off the end of the cache. With it, every call writes
    the same keys and values at the same positions over the same prefix: the writes are
    idempotent and every call returns the same logits (so the accuracy gate compares like with
    like)."""

    def __init__(self, cache: Any, start: int, l2: torch.Tensor | None) -> None:
        self.cache, self.start, self.l2 = cache, start, l2

    def zero_(self) -> None:
        set_length(self.cache, self.start)
        if self.l2 is not None:
            self.l2.zero_()


@dataclass
class Variant:
    name: str
    compiled_as: str
    make: Callable[[int], Caller]    # the caller for a token count (torch compiles once per size)


def fill_prefix(model: torch.nn.Module, variants: list[Variant], start: int, args: argparse.Namespace) -> None:
    """The same ``start``-token prefix in every variant's cache, written by the eager model."""
    ids, pos = make_inputs(start, 0, args, seed=start) if start else (None, None)
    for v in variants:
        c = v.make(1)
        c.cache.reset()
        if start:
            caller(model, model, c.cache, args)(ids, pos)


def measure(variants: list[Variant], n: int, start: int, args: argparse.Namespace, name: str) -> list[dict]:
    """One size, the way vx.benchmark measures (warm-up, round-robin blocks, accuracy gate),
    with a Rewind as the Sampler's flush so the rewind stays outside the timed window. A
    variant whose calls raise gets a row with status "error" and the others are still timed."""
    cuda = args.device.startswith("cuda")
    ids, pos = make_inputs(n, start, args, seed=n + 7 * start)
    l2 = l2_flush_buffer(cuda, True)
    eager = variants[0].make(n)
    set_length(eager.cache, start)
    ref = eager(ids, pos).clone()
    tol = tolerance(ref.dtype)
    samplers, first, errs, failed = {}, {}, {}, {}
    for v in variants:
        fn, pre = v.make(n), Rewind(v.make(n).cache, start, l2)
        if not cuda:   # on the CPU the Sampler never calls flush: the callable rewinds (timed)
            fn = _rewinding(fn, pre)
        try:
            first[v.name], errs[v.name] = _first_and_warm(fn, pre, ids, pos, ref, args)
        except Exception as e:   # noqa: BLE001
            traceback.print_exc()
            failed[v.name] = f"{type(e).__name__}: {e}"[:2000]
            continue
        samplers[v.name] = Sampler(fn, (ids, pos), args.timer, cuda, pre, 1)
    measured = autorange(samplers, Budget(seconds=args.budget), args.reps)
    return [{"model": name, "variant": v.name, "tokens": n, "status": "error", "error": failed[v.name]} if v.name in failed
            else _row(v, n, measured[v.name][0], errs[v.name], first[v.name], tol, name).to_dict() for v in variants]


def _first_and_warm(fn: Callable[..., Any], pre: Rewind, ids: torch.Tensor, pos: torch.Tensor, ref: torch.Tensor,
                    args: argparse.Namespace) -> tuple[float, float]:
    """(seconds of the first call, its max rel err against ``ref``), then the warm-up calls."""
    pre.zero_()
    first_s, out = first_call(fn, (ids, pos), args.device.startswith("cuda"))
    err = max_rel_err(out, ref)
    for _ in range(args.warmup):
        pre.zero_()
        fn(ids, pos)
    return first_s, err


def _rewinding(fn: Caller, pre: Rewind) -> Callable[..., Any]:
    def call(ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        pre.zero_()
        return fn(ids, pos)
    return call


def _row(v: Variant, n: int, samples: list[float], err: float, first_s: float, tol: float, name: str) -> BenchRow:
    s = stats(samples)
    wide = s.ci > 0.05 or s.spread > 0.25          # BenchOptions' noise_threshold and max_spread
    status = "failed" if err > tol else ("noisy" if wide else "ok")
    return BenchRow(name, v.name, n, s.median_ms, s.p20_ms, s.p80_ms, err, first_s, "tokens", status, s.n,
                    v.compiled_as, s.ci)


def vx_config(args: argparse.Namespace) -> vx.CompileConfig:
    sizes = {"cudagraph_sizes": args.cudagraph_sizes} if args.cudagraph_sizes else {}
    if args.default:   # vx.compile(model) as a user calls it: no options (the default split ops are SDPA's)
        return vx.CompileConfig(**sizes)
    return vx.CompileConfig(**VX_CFG, **sizes, cache=vx.CacheConfig(tiers=("memory",)))


def vx_name(cfg: vx.CompileConfig, args: argparse.Namespace) -> str:
    return ("vexplore-default" + (f"[cudagraph_sizes={','.join(map(str, cfg.cudagraph_sizes))}]" if cfg.cudagraph_sizes else "")
            if args.default else variant_name(cfg))


# -- generations: greedy decoding as generate() runs it, a new StaticCache each time ----------------
def greedy(fn: Caller, prompt: torch.Tensor, steps: int) -> torch.Tensor:
    """Prefill ``prompt`` then ``steps`` 1-token steps, each feeding back the argmax (on the device)."""
    n = prompt.shape[1]
    logits = fn(prompt, torch.arange(n, device=prompt.device)[None])
    out = []
    for k in range(steps):
        tok = logits[:, -1].argmax(-1, keepdim=True)
        out.append(tok)
        logits = fn(tok, torch.full((1, 1), n + k, device=prompt.device, dtype=torch.long))
    return torch.cat(out, 1)


def generations(model: torch.nn.Module, cm: Any, args: argparse.Namespace) -> dict:
    """``--generations`` greedy generations of ``--gen-steps`` tokens after the shortest prompt, each with a
    new StaticCache object (as generate() makes one per call) of ``--max-cache`` tokens (one length for
    every generation and the rest of the run: Dynamo specializes on a cache's length), for eager,
    vexplore and torch.compile(mode="reduce-overhead", fullgraph=True) (static per size): the tokens of
    each against eager's, each generation's wall time (perf_counter, synchronised at the end), and
    what vexplore's graphs did (traces, recaptures, notes of inputs it fell back to copying)."""
    n, steps = args.lengths[-1], args.gen_steps
    traced = len(cm.graphs)
    ro = torch.compile(model, mode="reduce-overhead", fullgraph=True, dynamic=False)
    fns = {"eager": model, "vexplore": cm, "torch-reduce-overhead": ro}
    runs = []
    with torch.no_grad():
        for g in range(args.generations):
            prompt = make_inputs(n, 0, args, seed=7_000 + g)[0]
            got = {}
            for name, fn in fns.items():
                c = caller(fn, model, new_cache(model, args), args)
                sync(args)
                t0 = time.perf_counter()
                toks = greedy(c, prompt, steps)
                sync(args)
                got[name] = (toks, time.perf_counter() - t0)
            want = got["eager"][0]
            row = {"generation": g}
            for name, (toks, secs) in got.items():
                bad = (toks != want).nonzero()
                row[name] = {"s": secs, "ms_per_token": secs * 1e3 / (steps + 1), "same_tokens": bool(torch.equal(toks, want)),
                             "first_difference": int(bad[0, 1]) if len(bad) else None}
            runs.append(row)
            print(f"  generation {g}: " + ", ".join(f"{k} {v['s'] * 1e3:.1f} ms same={v['same_tokens']}"
                                                     for k, v in row.items() if k != "generation"), flush=True)
    stats = [s for s in graph_stats(cm) if s]
    first, last = runs[0]["vexplore"]["s"], runs[-1]["vexplore"]["s"]
    return {"prompt": n, "steps": steps, "runs": runs, "same_tokens": all(r["vexplore"]["same_tokens"] for r in runs),
            "last_over_first": last / first, "graphs": len(cm.graphs), "traced_in_generations": len(cm.graphs) - traced, "graph_breaks": [str(b) for b in cm.graph_breaks],
            "recaptures": sum(s.get("recaptures", 0) for s in stats), "notes": [x for s in stats for x in s.get("notes", [])],
            "timer": "perf_counter per generation (synchronised at its end), tokens fed back on the device"}


def variants(model: torch.nn.Module, cm: Any, caches: dict, args: argparse.Namespace) -> list[Variant]:
    """eager, torch reduce-overhead (static per size, each size its own compile) and vexplore,
    each over its own cache."""
    torch_ro = resolve(model, ["torch-reduce-overhead"], vx.Session())[0]
    cfg = cm.config
    made: dict[int, Caller] = {}

    def ro(n: int) -> Caller:
        if n not in made:
            made[n] = caller(torch_ro.make(n), model, caches["torch"], args)
        return made[n]
    eager = caller(model, model, caches["eager"], args)
    vexp = caller(cm, model, caches["vexplore"], args)
    return [Variant("eager", "eager PyTorch (the model as it is)", lambda n: eager),
            Variant(torch_ro.name, torch_ro.compiled_as, ro),
            Variant(vx_name(cfg, args), ("vx.compile(model)" if args.default else
                    f"vx.compile(model, CompileConfig(strategy='piecewise', cudagraph='full_and_piecewise'"
                    f"{f', cudagraph_sizes={cfg.cudagraph_sizes}' if cfg.cudagraph_sizes else ''}))")
                    + ", compiled and captured during the correctness part", lambda n: vexp)]


def timing(model: torch.nn.Module, vs: list[Variant], args: argparse.Namespace, name: str) -> list[dict]:
    """The decode step at --decode-at over the same prefix in every cache, then prefill at each length."""
    rows = []
    with torch.no_grad():
        fill_prefix(model, vs, args.decode_at, args)
        rows += [dict(r, phase="decode", cache_position=args.decode_at) for r in measure(vs, 1, args.decode_at, args, name)]
        for n in args.lengths:
            rows += [dict(r, phase="prefill", cache_position=0) for r in measure(vs, n, 0, args, name)]
    return rows


# -- output -----------------------------------------------------------------------------------
def machine(args: argparse.Namespace, timer: str | None) -> dict:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None
    cuda = args.device.startswith("cuda")
    return {"device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})",
            "torch": torch.__version__, "triton": version("triton"), "transformers": version("transformers"),
            "vexplore": version("vexplore"), "python": platform.python_version(), "timer": timer}


def table(rows: list[dict]) -> str:
    base = {(r["phase"], r["tokens"], r["variant"]): r for r in rows}
    lines = [f"{'phase':<8}{'tokens':>7}  {'variant':<40}{'median ms':>10}{'p20-p80 ms':>17}{'vs eager':>9}"
             f"{'vs torch-ro':>12}{'max rel err':>12}{'first s':>9}  status"]
    for r in rows:
        if r["status"] == "error":
            lines.append(f"{r['phase']:<8}{r['tokens']:>7}  {r['variant']:<40}error: {r['error'][:120]}")
            continue
        ratio = []
        for b in ("eager", "torch-reduce-overhead"):
            o = base.get((r["phase"], r["tokens"], b))
            ok = o is not None and o["status"] == "ok" and r["status"] == "ok"
            ratio.append(f"{o['median_ms'] / r['median_ms']:.2f}x" if ok else "-")
        lines.append(f"{r['phase']:<8}{r['tokens']:>7}  {r['variant']:<40}{r['median_ms']:>10.3f}"
                     f"{r['p20_ms']:>8.3f}-{r['p80_ms']:<8.3f}{ratio[0]:>9}{ratio[1]:>12}{r['max_rel_err']:>12.1e}"
                     f"{r['first_call_s']:>9.2f}  {r['status']}")
    return "\n".join(lines)


KEY_COUNTERS = ("graphs_seen", "pieces", "compiled_pieces", "unique_pieces", "inductor_compiles", "fallbacks",
                "cudagraph_captures")


def _length_line(x: dict) -> str:
    if "error" in x:
        return f"  prompt {x['prompt']:>5}: ERROR {x['error'][:300]}"
    return (f"  prompt {x['prompt']:>5} + {x['decode_steps']} steps: prefill logits rel {x['prefill_logits']['max_rel']:.1e}"
            f" (abs {x['prefill_logits']['max_abs']:.1e}), decode logits rel {x['decode_logits_max_rel']:.1e}"
            f" (abs {x['decode_logits_max_abs']:.1e}), kv rel {x['kv_max_rel']:.1e} (abs {x['kv_max_abs']:.1e}),"
            f" first prefill {x['prefill_s']:.2f} s  {'ok' if x['passed'] else 'FAILED'}")


def correctness_lines(c: dict) -> str:
    lines = [f"correctness: {'PASSED' if c['passed'] else 'FAILED'}; Dynamo graphs {c['graphs']}; "
             f"token dims {c['token_dims']}"]
    lines += [_length_line(x) for x in c["lengths"]]
    for r in c["reports"]:
        lines.append(f"  report ({r['kind']}, {r['strategy']}): " + ", ".join(f"{k} {r['counters'].get(k)}" for k in KEY_COUNTERS))
        lines += [f"    warning {w['kind']}: {w['message'][:200]}" for w in r["warnings"]]
        lines += [f"    graph break: {b[:200]}" for b in r["graph_breaks"]]
    for i, s in enumerate(c["graph_stats"]):
        if s:
            modes = ", ".join(f"{k}:{v.get('mode')}" for k, v in s.get("sizes", {}).items())
            lines.append(f"  graph {i} CUDA graphs: captures {s.get('captures')}, replays {s.get('replays')}, uncaptured calls "
                         f"{s.get('uncaptured_calls')}, recaptures {s.get('recaptures')}; sizes {modes}")
            lines += [f"    note: {n[:200]}" for n in s.get("notes", [])]
    lines += [f"  python warning: {w[:200]}" for w in c["python_warnings"]]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------
NOTES = ("first_call_s of the vexplore rows excludes its compile and captures, done in the correctness part "
         "(correctness.lengths[].prefill_s and first_decode_s); torch-reduce-overhead compiles each size on its "
         "first call there. Before every timed call the variant's cache is rewound to cache_position (outside "
         "the timed window on CUDA; inside it on the CPU).")


def run(args: argparse.Namespace) -> dict:
    model = build(args)
    cm = vx.compile(model, vx_config(args), session=vx.Session())
    caches = {k: new_cache(model, args) for k in ("eager", "vexplore", "torch")}
    name = f"hf-llama-{args.layers}L-h{args.hidden}-{args.dtype}-static{args.max_cache}"
    with torch.no_grad():
        corr = correctness(caller(model, model, caches["eager"], args), caller(cm, model, caches["vexplore"], args), args)
    print(correctness_lines(corr), flush=True)
    if args.generations:
        corr["generations"] = generations(model, cm, args)
    base = dict(model=name, model_config=model.config.to_diff_dict(), notes=NOTES,
                config={k: v for k, v in vars(args).items() if k != "out"}, vexplore_config=cm.config.to_dict())
    vs = variants(model, cm, caches, args)
    results = {}
    for timer in args.timers or [None]:
        args.timer = timer or "idle"
        rows = timing(model, vs, args, name) if timer else []
        same = corr.get("generations", {}).get("same_tokens")
        rows = [dict(r, same_tokens=same) if r["variant"].startswith("vexplore") and same is not None else r for r in rows]
        corr["graphs_after_timing"] = len(cm.graphs)
        results[timer] = result = dict(machine(args, timer), **base, correctness=corr, rows=rows)
        path = args.out.format(timer=timer or "correctness")
        with open(path, "w") as f:
            json.dump(result, f, indent=1, default=str)
        if rows:
            print(f"\n{result['device']}, torch {result['torch']}, transformers {result['transformers']}, "
                  f"timer {timer}\n{table(rows)}")
        print(f"\nwrote {path}", flush=True)
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="2 layers, hidden 64, fp32, lengths 8 16, 5 reps: a CPU smoke run")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--intermediate", type=int, default=2816)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float16")
    p.add_argument("--max-cache", type=int, default=320, help="StaticCache length (prompt + new tokens, as generate sizes it)")
    p.add_argument("--cudagraph-sizes", type=int, nargs="+", default=None, help="vexplore's capture sizes (default: its ladder)")
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 64, 16], help="prompt lengths")
    p.add_argument("--steps", type=int, default=8, help="decode steps after each prefill (correctness)")
    p.add_argument("--decode-at", type=int, default=256, help="cache position of the timed decode step")
    p.add_argument("--logits-to-keep", type=int, default=1, help="as generate passes it (0: every position's logits)")
    p.add_argument("--default", action="store_true", help="vexplore as vx.compile(model), no options (row vexplore-default)")
    p.add_argument("--generations", type=int, default=0, help="greedy generations, a new StaticCache each (0: none)")
    p.add_argument("--gen-steps", type=int, default=48, help="tokens generated per generation")
    p.add_argument("--timers", choices=("idle", "steady"), nargs="*", default=["idle"], help="none: correctness only")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--reps", type=int, default=None, help="samples per row (default: until the median is known within 2 %%)")
    p.add_argument("--budget", type=float, default=1.5, help="seconds of measuring per row at most")
    p.add_argument("--out", default="benchmarks/results/h200-hf-{timer}.json", help="{timer}: the timer's name")
    args = p.parse_args(argv)
    if args.tiny:
        args.layers, args.hidden, args.intermediate, args.heads, args.kv_heads = 2, 64, 128, 4, 2
        args.vocab, args.dtype, args.max_cache, args.lengths, args.steps = 512, "float32", 64, [16, 8], 3
        args.decode_at, args.warmup, args.reps = 16, 2, args.reps or 5
    args.lengths = sorted(set(args.lengths), reverse=True)   # largest first: the first call makes the dynamic graph
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; use --device cpu --tiny")
    if max(args.lengths) > args.max_cache or args.decode_at + 1 > args.max_cache or \
            (args.generations and min(args.lengths) + args.gen_steps > args.max_cache):
        raise SystemExit(f"--max-cache {args.max_cache} is too short for prompts {args.lengths} / --decode-at {args.decode_at}")
    args.timer = (args.timers or ["idle"])[0]   # the Sampler's timer, set per run
    return args


if __name__ == "__main__":
    run(parse(sys.argv[1:]))
