"""CompilerManager: one unique piece through the cache tiers and the fallback ladder, per size.

Ladder (``fallback=True``): inductor -> inductor with CONSERVATIVE_INDUCTOR_OPTIONS -> isolate
the node Inductor could not lower (only that op runs eagerly, the rest compiles) -> eager.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from ..cache.artifact import Artifact
from ..cache.keys import CacheKey
from ..cache.tiered import TieredCache
from ..config import CompileConfig
from ..errors import CompileError
from ..monitor.events import EventRecorder
from . import _torch_compat as tc
from .compilers import InductorCompiler, describe, failing_target
from .fingerprint import fingerprint, inputs_text
from .ops import matches, op_name
from .split import propagate, split_graph
from .stitch import SizeDispatch, install, normalize_output, token_dims, unwrap

log = logging.getLogger(__name__)


@dataclass
class Built:
    """One compile of one piece at one size: the callable and how it came to be."""

    fn: Callable[..., Any]
    compiler: str
    reason: str | None = None
    isolated: tuple[str, ...] = ()
    code: str | None = None
    data: bytes | None = None
    compiled_in: str | None = None   # "worker pid N", or why it compiled in this process
    worker_s: float = 0.0

    def info(self) -> dict[str, Any]:
        return {"compiler": self.compiler, "reason": self.reason, "isolated": list(self.isolated), "code": self.code}


@dataclass
class PieceOutcome:
    """What the report shows of one unique piece."""

    fn: Callable[..., Any]
    compiler: str
    compile_s: float = 0.0
    cache_by_size: list[tuple[int | None, str | None]] = field(default_factory=list)
    fallback_reason: str | None = None
    isolated: tuple[str, ...] = ()
    code: str | None = None
    sizes: tuple[int | None, ...] = (None,)
    miss_reasons: list[str] = field(default_factory=list)
    compiled_in: str | None = None


def token_position(inputs: Sequence[Any], token: Any) -> tuple[int, int | None] | None:
    """Where a piece's inputs carry exactly the token count: (arg, dim), dim None for a SymInt."""
    dims = token_dims(inputs, token)
    if dims:
        i, d = dims[0]
        x = inputs[i]
        if tc.sym_expr(x if d is None else x.shape[d]) == token:
            return i, d
    return None


def concrete_inputs(inputs: Sequence[Any], token: Any, size: int, hints: dict[Any, Any]) -> list[Any]:
    """Zero-filled tensors (and ints) of a piece's inputs with the token dim set to ``size``
    (requiring grad where the fake input does)."""
    subs = dict(hints)
    subs[token] = size

    def ev(x: Any) -> int:
        e = tc.sym_expr(x)
        return int(e.xreplace(subs)) if hasattr(e, "xreplace") else int(e)

    out: list[Any] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            shape, stride = [ev(s) for s in x.shape], [ev(s) for s in x.stride()]
            t = torch.empty_strided(shape, stride, dtype=x.dtype, device=x.device).zero_()
            out.append(t.requires_grad_() if x.requires_grad and t.is_floating_point() else t)
        elif isinstance(x, torch.SymInt):
            out.append(ev(x))
        else:
            out.append(x)
    return out


class CompilerManager:
    """Compiles the unique pieces of one graph. ``grad``: the graph runs with autograd (pieces
    compile for it, and are keyed apart from the inference compiles)."""

    def __init__(self, config: CompileConfig, cache: TieredCache, rec: EventRecorder,
                 versions: dict[str, str], counters: Counter, grad: bool = False) -> None:
        self.config, self.cache, self.rec = config, cache, rec
        self.versions, self.counters, self.grad = versions, counters, grad
        self.inductor = InductorCompiler(config.mode, dict(config.inductor_options))
        self._prefetched: dict[str, Any] = {}   # key digest -> Lookup done by prefetch
        self._variants_of: dict[str, list[Any]] = {}  # unique key -> _variants made by prefetch
        self._worker: dict[str, Any] = {}       # key digest -> workers.Result
        self._in_process: dict[str, str] = {}   # key digest -> why no worker could take it

    # -- keys ------------------------------------------------------------------------------
    def unique_key(self, gm: fx.GraphModule, inputs: Sequence[Any]) -> tuple[str, str, str, str]:
        """(unique key, graph hash, input specs, graph text) of a normalized piece."""
        ghash, itext, gtext = fingerprint(gm, inputs, self.grad)
        return hashlib.sha256(f"{ghash}|{itext}".encode()).hexdigest()[:16], ghash, itext, gtext

    def cache_key(self, ghash: str, itext: str, gtext: str, size: int | None) -> CacheKey:
        config = self.config.compile_relevant()
        if self.grad:   # inference keys stay as they were; autograd compiles are keyed apart
            config["grad"] = True
        return CacheKey(graph=ghash, inputs=itext, config=config, versions=self.versions, size=size, graph_text=gtext)

    # -- one unique piece ------------------------------------------------------------------
    def _variants(self, inputs: Sequence[Any], fake_mode: Any, token: Any,
                  keyed: tuple[str, str, str, str]) -> list[tuple[int | None, Sequence[Any], Any, CacheKey]]:
        """(size, example inputs, fake mode or None, cache key) of the general compile and each
        static compile size (only where the piece's inputs carry the token dim)."""
        _, ghash, itext, gtext = keyed
        out: list[tuple[int | None, Sequence[Any], Any, CacheKey]] = [
            (None, inputs, fake_mode, self.cache_key(ghash, itext, gtext, None))]
        if token_position(inputs, token) is None or not self.config.compile_sizes:
            return out
        hints = tc.symbol_hints(fake_mode)
        for size in self.config.compile_sizes:
            ex = concrete_inputs(inputs, token, size, hints)
            out.append((size, ex, None, self.cache_key(ghash, inputs_text(ex, grad=self.grad), gtext, size)))
        return out

    def compile_piece(self, normalized: tuple[fx.GraphModule, bool], keyed: tuple[str, str, str, str],
                      inputs: Sequence[Any], fake_mode: Any, token: Any, graph: int, index: int) -> PieceOutcome:
        """Compile (or load) one unique piece; ``normalized`` is ``stitch.normalize_output(piece)``
        and ``keyed`` its ``unique_key``."""
        gm, single = normalized
        variants = self._variants_of.pop(keyed[0], None) or self._variants(inputs, fake_mode, token, keyed)
        out = PieceOutcome(fn=gm, compiler=self.config.compiler,
                           sizes=tuple(v[0] for v in variants))
        by_size: dict[int, Callable[..., Any]] = {}
        for size, ex, fm, key in variants:
            built, tier = self._build(gm, ex, fm, key, graph, index, size, out)
            out.cache_by_size.append((size, tier))
            if size is None:
                general = built
            else:
                by_size[size] = built.fn
        out.compiler, out.fallback_reason = general.compiler, general.reason
        out.isolated, out.code, out.compiled_in = general.isolated, general.code, general.compiled_in
        pos = token_position(inputs, token)
        fn = SizeDispatch(general.fn, by_size, *pos) if by_size and pos else general.fn
        out.fn = unwrap(fn, single)
        return out

    # -- compile workers -------------------------------------------------------------------
    def prefetch(self, pieces: Sequence[tuple[fx.GraphModule, tuple[str, str, str, str], Sequence[Any], int, int]],
                 fake_mode: Any, token: Any, pool: Any) -> None:
        """Look every unique piece up in the cache, and compile all misses at once in ``pool``.

        compile_piece then finds each piece's variants, lookup and worker result here instead of
        working again.
        """
        from .workers import Job, dump_graph, rebuild_modules, specs_of

        jobs, where = [], {}
        hints = tc.symbol_hints(fake_mode)
        for gm, keyed, inputs, graph, index in pieces:     # gm: normalized already
            variants = self._variants_of[keyed[0]] = self._variants(inputs, fake_mode, token, keyed)
            mods, why = rebuild_modules(gm)
            dumped = None if why else dump_graph(gm)
            for size, ex, fm, key in variants:
                if self.cache.enabled:
                    hit = self._prefetched[key.digest] = self._lookup(key, graph, index, size)
                    if hit.fn is not None:
                        continue
                if why:
                    self._in_process[key.digest] = f"in-process: {why}"
                    continue
                specs, symbols = specs_of(ex, hints)
                jobs.append(Job(key.digest, dumped, specs, symbols, mods, self.inductor.options(False), fm is not None,
                                self.grad))
                where[key.digest] = (graph, index, size)
        if not jobs:
            return
        t0 = time.perf_counter()
        try:
            results = pool.run(jobs, self.config.compile_timeout_s)
        except RuntimeError as e:  # the pool cannot start: compile in this process, saying why
            log.warning("vexplore: %s", e)
            self._in_process.update({j.id: f"in-process: {e}" for j in jobs})
            return
        for digest, r in results.items():
            graph, index, size = where[digest]
            self.rec.add("compile", t0, r.seconds, graph=graph, piece=index, size=size, compiler="inductor",
                         error_class=None if r.status == "ok" else r.status, detail=f"worker pid {r.pid}: {r.status}")
            self._worker[digest] = r

    def _from_worker(self, gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any, index: int,
                     digest: str) -> Built | None:
        r = self._worker.pop(digest, None)
        if r is None:
            return None
        where = f"worker pid {r.pid}"
        if r.status == "ok":
            fn, code = self.inductor.load(r.data)
            self.counters["inductor_compiles"] += 1
            self.counters["worker_compiles"] += 1
            return Built(fn, "inductor", code=code or r.code, data=r.data, compiled_in=where, worker_s=r.seconds)
        if r.status in ("timeout", "crashed"):  # never retried in this process: it could hang or crash it
            self.counters[f"worker_{r.status}"] += 1
            return Built(gm, "eager", f"{r.status}: {r.error}; ran eagerly", code=gm.code, compiled_in=where, worker_s=r.seconds)
        built = self._ladder(gm, inputs, fake_mode, index, first_error=r.error)
        built.compiled_in = f"in-process after {where} failed"
        return built

    def _build(self, gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any, key: CacheKey,
               graph: int, index: int, size: int | None, out: PieceOutcome) -> tuple[Built, str | None]:
        cached = self.config.compiler == "inductor" and self.cache.enabled
        if cached:
            hit = self._prefetched.pop(key.digest, None) or self._lookup(key, graph, index, size)
            if hit.fn is not None:
                out.compile_s += hit.seconds
                info = hit.info
                return Built(hit.fn, info.get("compiler", "inductor"), info.get("reason"),
                             tuple(info.get("isolated", ())), info.get("code")), hit.tier
            out.miss_reasons.append(f"size {size or 'general'}: {hit.miss_reason}")
        with self.rec.step("compile", graph=graph, piece=index, size=size, compiler=self.config.compiler) as st:
            # a worker's result when prefetch compiled this key (with or without a cache)
            built = self._from_worker(gm, inputs, fake_mode, index, key.digest) or self._ladder(gm, inputs, fake_mode, index)
            built.compiled_in = built.compiled_in or self._in_process.pop(key.digest, None)
        out.compile_s += st.event.duration_s + built.worker_s
        if not cached:
            return built, None
        art = Artifact(built.data, built.compiler, {"reason": built.reason}) if built.data else None
        self.counters.update(self.cache.store(key, built.fn, art, built.info()).counters())
        return built, "miss"

    def _lookup(self, key: CacheKey, graph: int, index: int, size: int | None) -> Any:
        with self.rec.step("load", graph=graph, piece=index, size=size) as st:
            hit = self.cache.lookup(key, functools.partial(load_artifact, self.inductor))
            st.kw["tier"] = hit.tier
            if hit.miss_reason:
                st.kw["detail"] = hit.miss_reason
        self.counters.update(hit.counters())  # per-tier misses, rejections, bytes, load time
        return hit

    # -- the fallback ladder ---------------------------------------------------------------
    def _ladder(self, gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any, index: int,
                first_error: str | None = None) -> Built:
        """Walk the ladder; ``first_error`` says rung 1 already failed (in a worker)."""
        if self.config.compiler == "eager":
            return Built(gm, "eager", code=gm.code)
        if not any(isinstance(v, torch.Tensor) for v in _outputs(gm)):
            # not a failure, so no fallback warning: Inductor only compiles graphs with tensor outputs
            return Built(gm, "eager", code=gm.code, compiled_in="eager: the piece returns no tensors, nothing to compile")
        first = first_error
        if first is None:
            try:
                return self._inductor(gm, inputs, fake_mode, conservative=False)
            except Exception as e1:
                if not self.config.fallback:
                    raise CompileError(f"piece {index}: Inductor failed ({describe(e1)}); set fallback=True "
                                       "to fall back per piece, or change the split so this op runs eagerly.") from e1
                first = describe(e1)
        elif not self.config.fallback:
            raise CompileError(f"piece {index}: Inductor failed in a compile worker ({first}); set fallback=True "
                               "to fall back per piece.")
        log.info("vexplore: piece %d failed with Inductor (%s); retrying with conservative options", index, first)
        try:
            self.counters["conservative_retries"] += 1
            built = self._inductor(gm, inputs, fake_mode, conservative=True)
            built.reason = f"{first}; compiled with conservative Inductor options"
            return built
        except Exception as e2:
            second = e2
        target = failing_target(second)
        if target is not None:
            try:
                return self._isolate(gm, inputs, fake_mode, target, describe(second))
            except Exception as e3:
                log.info("vexplore: isolating %s in piece %d failed: %s", target, index, e3)
        return Built(gm, "eager", f"{describe(second)}; ran eagerly", code=gm.code)

    def _inductor(self, gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any, conservative: bool) -> Built:
        res = self.inductor.compile(gm, inputs, fake_mode, conservative=conservative, grad=self.grad)
        self.counters["inductor_compiles"] += 1
        return Built(res.fn, "inductor", code=res.code, data=res.data)

    def _isolate(self, gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any, target: str, why: str) -> Built:
        bad = {n for n in gm.graph.nodes if n.op == "call_function" and matches(op_name(n), [target])}
        if not bad:
            raise LookupError(f"no node calls {target}")
        sub = split_graph(gm, lambda n: n in bad)
        sub_inputs, _ = propagate(sub, inputs, fake_mode, grad=self.grad)
        runners, codes = {}, []
        for p in sub.pieces:
            if p.kind != "compiled":
                continue
            pg, single = normalize_output(p.module)
            try:
                built = self._inductor(pg, sub_inputs[p.name], fake_mode, conservative=True)
                codes.append(built.code or "")
            except Exception:
                built = Built(pg, "eager")
            runners[p.name] = unwrap(built.fn, single)
        names = tuple(sorted(n.name for n in bad))
        return Built(install(sub.gm, runners), "inductor",
                     f"{why}; isolated {', '.join(names)} ({target}) to run eagerly, the rest compiled",
                     isolated=names, code="\n\n".join(codes) or None)


def load_artifact(inductor: InductorCompiler, art: Artifact) -> tuple[Callable[..., Any], dict[str, Any]]:
    """A stored artifact as (callable, info): the loader the cache's lookup and prewarm call."""
    fn, code = inductor.load(art.data)
    return fn, {"compiler": art.compiler, "reason": art.meta.get("reason"), "code": code}


def _outputs(gm: fx.GraphModule) -> list[Any]:
    out = next(n for n in reversed(gm.graph.nodes) if n.op == "output")
    vals = []
    fx.map_arg(out.args[0], lambda n: vals.append(n.meta.get("example_value", n.meta.get("val", torch.empty(0)))))
    return vals
