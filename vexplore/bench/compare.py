"""vx.benchmark: eager against compiled variants, per input size, into a BenchReport.

``bench_statement`` times one zero-argument function that way (``%vxbench``); ``resize_tokens``
makes inputs of another size from example inputs (the explorer's benchmark panel)."""
from __future__ import annotations

import dataclasses
import logging
import math
import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Callable, Mapping, Sequence, Union

import torch

from ..config import CompileConfig
from ..engine.model import compile as vx_compile
from ..engine.validate import max_rel_err
from ..errors import VexploreError
from .timing import Timer, first_call, is_cuda, stats

log = logging.getLogger(__name__)

Variant = Union[str, CompileConfig, tuple]


@dataclass(frozen=True)
class BenchRow:
    model: str
    variant: str
    tokens: int
    median_ms: float
    p20_ms: float
    p80_ms: float
    max_rel_err: float
    first_call_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BenchReport:
    rows: tuple[BenchRow, ...]
    device: str
    torch: str
    triton: str | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The format of benchmarks/results/*.json (DESIGN.md)."""
        return {"device": self.device, "torch": self.torch, "triton": self.triton,
                "rows": [r.to_dict() for r in self.rows]}

    def speedup(self, row: BenchRow) -> float | None:
        base = next((r for r in self.rows if r.variant == "eager" and r.tokens == row.tokens), None)
        return base.median_ms / row.median_ms if base and row.median_ms else None

    def table(self) -> str:
        lines = [f"{'variant':<32}{'tokens':>7}{'median ms':>11}{'p20':>9}{'p80':>9}{'speedup':>9}{'max rel err':>13}{'first s':>9}"]
        for r in self.rows:
            sp = self.speedup(r)
            lines.append(f"{r.variant:<32}{r.tokens:>7}{r.median_ms:>11.3f}{r.p20_ms:>9.3f}{r.p80_ms:>9.3f}"
                         f"{'' if sp is None else f'{sp:.2f}x':>9}{r.max_rel_err:>13.2e}"
                         f"{'' if r.first_call_s is None else f'{r.first_call_s:.2f}':>9}")
        return "\n".join(lines)


def variant_name(cfg: CompileConfig) -> str:
    return f"vexplore-{cfg.strategy}-{cfg.cudagraph}"


def _device_name(cuda: bool) -> str:
    return torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})"


def _resolve(model: Any, variants: Sequence[Variant] | Mapping[str, Any], session: Any) -> list[tuple[str, Callable[..., Any]]]:
    items = list(variants.items()) if isinstance(variants, Mapping) else list(variants)
    out: list[tuple[str, Callable[..., Any]]] = []
    for v in items:
        name, what = (v if isinstance(v, tuple) else (None, v))
        if model is None and (isinstance(what, (CompileConfig, str))):
            raise VexploreError(f"vx.benchmark: variant {name or what!r} needs a model, but a dict of callables "
                                "was given; pass the model first and the variants as the third argument.")
        if isinstance(what, CompileConfig):
            out.append((name or variant_name(what), vx_compile(model, what, session=session)))
        elif what == "eager":
            out.append((name or "eager", model))
        elif what == "torch-default":
            out.append((name or what, torch.compile(model)))
        elif what == "torch-reduce-overhead":
            out.append((name or what, torch.compile(model, mode="reduce-overhead")))
        elif callable(what):
            out.append((name or getattr(what, "__name__", "callable"), what))
        else:
            raise VexploreError(f"vx.benchmark: variant {v!r} is unknown; use 'eager', 'torch-default', "
                                "'torch-reduce-overhead', a vx.CompileConfig, or a (name, callable) pair.")
    return out


def benchmark(model_or_callables: Any, inputs_by_size: Mapping[int, Sequence[Any]],
              variants: Sequence[Variant] | Mapping[str, Any] | None = None, *, warmup: int = 3,
              reps: int = 20, session: Any = None, model_name: str | None = None,
              noise_threshold: float = 0.5, flush_l2: bool = True) -> BenchReport:
    """Time every variant on every input size; eager is the oracle for ``max_rel_err``.

    ``model_or_callables``: a model (then ``variants`` names what to run: "eager",
    "torch-default", "torch-reduce-overhead", vx.CompileConfig objects, (name, callable)
    pairs) or a dict name -> callable. Warm-up calls are excluded; the variants are measured
    interleaved (one call of each in turn) so drift hits them alike. On GPU, CUDA events time
    each call and the L2 cache is flushed before it unless ``flush_l2=False``; a variant whose
    (p80 - p20) / median exceeds ``noise_threshold`` gets a noise warning. Each row's
    ``max_rel_err`` is max|out - eager| / max|eager|.
    """
    if not inputs_by_size:
        raise VexploreError("vx.benchmark: inputs_by_size is empty; give {tokens: (inputs...)}.")
    if reps < 1 or warmup < 0:
        raise VexploreError(f"vx.benchmark: reps={reps} must be >= 1 and warmup={warmup} >= 0.")
    if isinstance(model_or_callables, Mapping):
        eager = model_or_callables.get("eager", next(iter(model_or_callables.values())))
        resolved = _resolve(None, model_or_callables, session)
    else:
        eager = model_or_callables
        resolved = _resolve(model_or_callables, variants or ("eager", CompileConfig()), session)
    name = model_name or type(getattr(eager, "__self__", eager)).__name__
    rows, warns = [], []
    with torch.no_grad():
        for tokens, inputs in inputs_by_size.items():
            inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
            cuda = is_cuda(inputs)
            timer = Timer(cuda, flush_l2)
            ref = eager(*inputs)
            firsts, errs, samples = {}, {}, {n: [] for n, _ in resolved}
            for n, fn in resolved:
                firsts[n], out = first_call(fn, inputs, cuda)
                errs[n] = max_rel_err(out, ref)
                for _ in range(max(warmup - 1, 0)):
                    fn(*inputs)
            for _ in range(reps):
                for n, fn in resolved:
                    samples[n].append(timer(fn, inputs)[0])
            for n, _ in resolved:
                s = stats(samples[n])
                if s.spread > noise_threshold:
                    warns.append(f"{n} at {tokens} tokens: spread (p80-p20)/median = {s.spread:.0%}; timings are noisy")
                rows.append(BenchRow(name, n, int(tokens), s.median_ms, s.p20_ms, s.p80_ms, errs[n], firsts[n]))
    cuda_any = any(is_cuda(tuple(i) if isinstance(i, (tuple, list)) else (i,)) for i in inputs_by_size.values())
    try:
        triton = metadata.version("triton")
    except metadata.PackageNotFoundError:
        triton = None
    for w in warns:
        log.warning("vx.benchmark: %s", w)
    return BenchReport(tuple(rows), _device_name(cuda_any), torch.__version__, triton, tuple(warns))


def resize_tokens(inputs: Sequence[Any], tokens: int) -> tuple[Any, ...]:
    """``inputs`` with dim 0 of every tensor made ``tokens`` long, by repeating the example rows
    (so token ids stay valid ids); other inputs as they are."""
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[0] > 0:
            reps = math.ceil(tokens / x.shape[0])
            x = x.repeat(reps, *([1] * (x.dim() - 1)))[:tokens].contiguous()
        out.append(x)
    return tuple(out)


def bench_statement(fn: Callable[[], Any], number: int = 1, repeat: int = 20, config: CompileConfig | None = None,
                    session: Any = None, name: str = "statement") -> BenchReport:
    """Time the zero-argument ``fn`` eager and compiled by vexplore, timeit-style: ``repeat``
    timings of ``number`` calls each, reported per call (``%vxbench`` uses this)."""
    if number < 1 or repeat < 1:
        raise VexploreError(f"bench_statement: number={number} (-n) and repeat={repeat} (-r) must both be >= 1.")
    cfg = config if config is not None else CompileConfig()
    compiled = vx_compile(fn, cfg, session=session)

    def loop(f: Callable[[], Any]) -> Callable[[], Any]:
        def looped() -> Any:
            out = None
            for _ in range(number):
                out = f()
            return out
        return looped

    rep = benchmark({"eager": loop(fn), variant_name(cfg): loop(compiled)}, {0: ()}, reps=repeat,
                    session=session, model_name=name)
    rows = tuple(dataclasses.replace(r, median_ms=r.median_ms / number, p20_ms=r.p20_ms / number,
                                     p80_ms=r.p80_ms / number) for r in rep.rows)
    return dataclasses.replace(rep, rows=rows)
