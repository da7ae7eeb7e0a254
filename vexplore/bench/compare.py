"""vx.benchmark: eager against compiled variants, per input size, into a BenchReport.

Figures it refuses to flatter: every row's output is checked against eager (a row over the
dtype's tolerance is ``failed`` and never shown as a speed-up), repetitions go on until the
median is known tightly or the budget is spent (a row whose median is still uncertain is
``noisy``, not a speed-up), the timer that made a figure is named, and a model left in training
mode is named before timing.

``bench_statement`` times one zero-argument function that way (``%vxbench``); ``resize_tokens``
makes inputs of another size from example inputs (the explorer's benchmark panel)."""
from __future__ import annotations

import dataclasses
import logging
import math
import platform
import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Callable, Mapping, Sequence

import torch

from ..config import CompileConfig
from ..engine.model import compile as vx_compile
from ..engine.build.validate import max_rel_err
from ..errors import VexploreBenchWarning, VexploreError
from .timing import TIMERS, Budget, Sampler, autorange, calls_per_sample, first_call, is_cuda, l2_flush_buffer, stats
from .variants import Variant, VariantSpec, resolve, variant_name

log = logging.getLogger(__name__)

__all__ = ["BenchOptions", "BenchReport", "BenchRow", "bench_statement", "benchmark", "resize_tokens", "tolerance",
           "variant_name"]


@dataclass(frozen=True)
class BenchOptions:
    """How vx.benchmark measures (each a keyword of ``vx.benchmark`` too)."""

    timer: str = "idle"              # "idle" | "steady": see bench/timing.py
    warmup: int = 3                  # calls before timing, after the first
    reps: int | None = None          # samples per row; None: until the median is known within target_ci
    budget_s: float = 2.0            # seconds of measuring per row at most
    target_ci: float = 0.02          # stop when the median's ~95 % interval is this tight (relative)
    noise_threshold: float = 0.05    # a row whose median's interval stays wider is "noisy"...
    max_spread: float = 0.25         # ...and so is one whose (p80 - p20) / median is wider (two modes, say)
    model_name: str | None = None
    size_dim: str = "tokens"         # which input dim the sizes count
    flush_l2: bool = True

    def __post_init__(self) -> None:
        if (self.reps is not None and self.reps < 1) or self.warmup < 0 or self.budget_s <= 0:
            raise VexploreError(f"vx.benchmark: reps={self.reps} must be >= 1 (or None: until stable), "
                                f"warmup={self.warmup} >= 0 and budget_s={self.budget_s} > 0.")
        if self.timer not in TIMERS:
            raise VexploreError(f"vx.benchmark: timer={self.timer!r}; choose 'idle' (one call from an idle GPU) or "
                                "'steady' (back-to-back calls, as triton's do_bench).")

    @property
    def budget(self) -> Budget:
        return Budget(target_ci=self.target_ci, seconds=self.budget_s)


def tolerance(dtype: torch.dtype | None) -> float:
    """The accuracy gate: max_rel_err above this against eager fails a row (fp16/bf16 2e-2, else 1e-4)."""
    return 2e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-4


@dataclass(frozen=True)
class BenchRow:
    """One variant at one size: its time per call (median, p20, p80 in ms, ``median_ci`` its relative
    ~95 % half-width), its error against eager, and ``status``: "ok", "noisy" (the median stayed
    uncertain) or "failed" (over the accuracy gate); only "ok" rows count as speed-ups."""

    model: str
    variant: str
    tokens: int | None              # the size of the varied dim (named by size_dim); None: not known
    median_ms: float
    p20_ms: float
    p80_ms: float
    max_rel_err: float
    first_call_s: float | None = None
    size_dim: str = "tokens"        # which input dim varies: "tokens", "batch", ...
    status: str = "ok"              # "ok" | "noisy" (median stayed uncertain) | "failed" (over the accuracy gate)
    samples: int = 0
    compiled_as: str = ""
    median_ci: float = 0.0          # half-width of the median's ~95 % interval, relative to it

    @property
    def spread(self) -> float:
        return (self.p80_ms - self.p20_ms) / self.median_ms if self.median_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BenchReport:
    """What ``vx.benchmark`` (and ``%vxbench``) measured: ``rows`` (one BenchRow per variant and size),
    the device, torch and triton versions, the timer that made every figure, and warnings (failed or
    noisy rows, a model in training mode). ``table()`` prints it; ``speedup(row)`` and
    ``verdict(row)`` compare a row with eager's at its size."""

    rows: tuple[BenchRow, ...]
    device: str
    torch: str
    triton: str | None
    warnings: tuple[str, ...] = ()
    timer: str = "idle"

    def to_dict(self) -> dict[str, Any]:
        """The format of benchmarks/results/*.json (one timer per file)."""
        return {"device": self.device, "torch": self.torch, "triton": self.triton, "timer": self.timer,
                "rows": [r.to_dict() for r in self.rows]}

    def speedup(self, row: BenchRow, baseline: str = "eager") -> float | None:
        """``baseline``'s median over ``row``'s at the same size; None unless both rows are ok
        (a noisy or failed figure is never a speed-up)."""
        base = next((r for r in self.rows if r.variant == baseline and r.tokens == row.tokens), None)
        if base is None or not row.median_ms or row.status != "ok" or base.status != "ok":
            return None
        return base.median_ms / row.median_ms

    def verdict(self, row: BenchRow) -> str:
        """The speed-up as text, or why there is none."""
        if row.status != "ok":
            return row.status
        sp = self.speedup(row)
        return "-" if sp is None else f"{sp:.2f}x"

    def table(self) -> str:
        """The rows as a plain-text table, headed by the timer; the verdict column says why a row has no speed-up."""
        dim = self.rows[0].size_dim if self.rows else "tokens"
        lines = [f"timer: {self.timer} ({'one call from an idle GPU' if self.timer == 'idle' else 'back-to-back calls, as do_bench'}"
                 f"; on the CPU, perf_counter)",
                 f"{'variant':<34}{dim:>8}{'median ms':>11}{'+-':>7}{'p20':>9}{'p80':>9}{'vs eager':>10}{'max rel err':>13}{'first s':>9}"]
        for r in self.rows:
            size = "-" if r.tokens is None else str(r.tokens)
            lines.append(f"{r.variant:<34}{size:>8}{r.median_ms:>11.3f}{r.median_ci:>7.1%}{r.p20_ms:>9.3f}{r.p80_ms:>9.3f}"
                         f"{self.verdict(r):>10}{r.max_rel_err:>13.2e}"
                         f"{'' if r.first_call_s is None else f'{r.first_call_s:.2f}':>9}")
        return "\n".join(lines)


def training_warning(model: Any) -> str | None:
    """Names what makes a model in training mode give other outputs at every call, or None."""
    if not isinstance(model, torch.nn.Module) or not model.training:
        return None
    drop = [f"{n} (p={m.p})" for n, m in model.named_modules()
            if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 and m.training]
    norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    what = "; ".join(filter(None, (f"active dropout: {', '.join(drop[:4])}" if drop else "",
                                   f"batch norm updating its statistics: {', '.join(norms[:4])}" if norms else "")))
    return (f"{type(model).__name__} is in training mode{f' ({what})' if what else ''}: outputs change from call to "
            "call, so errors against eager and timings mislead; call model.eval() before benchmarking")


def _output_dtype(out: Any) -> torch.dtype | None:
    flat = list(out) if isinstance(out, (tuple, list)) else [out]
    return next((t.dtype for t in flat if isinstance(t, torch.Tensor) and t.is_floating_point()), None)


@dataclass(frozen=True)
class _Size:
    """One size's inputs and how to time them."""

    size: int | None
    inputs: tuple[Any, ...]
    cuda: bool


def _measure_size(variants: Sequence[Variant], at: _Size, eager: Callable[..., Any], opts: BenchOptions,
                  model_name: str) -> list[BenchRow]:
    ref = eager(*at.inputs)
    tol = tolerance(_output_dtype(ref))
    flush = l2_flush_buffer(at.cuda, opts.flush_l2)
    samplers, first, errs = {}, {}, {}
    for v in variants:
        fn = v.make(at.size)
        first[v.name], out = first_call(fn, at.inputs, at.cuda)
        errs[v.name] = max_rel_err(out, ref)
        settle = getattr(fn, "settle", None)   # a graph compiled whole off the call path: taken before any timing
        if settle is not None:
            settle()
        for _ in range(max(opts.warmup - 1, 0)):
            fn(*at.inputs)
        number = 1 if at.cuda else calls_per_sample(fn, at.inputs)
        samplers[v.name] = Sampler(fn, at.inputs, opts.timer, at.cuda, flush, number)
    measured = autorange(samplers, opts.budget, opts.reps)
    rows = []
    for v in variants:
        samples, stable = measured[v.name]
        s = stats(samples)
        wide = s.ci > opts.noise_threshold or s.spread > opts.max_spread
        status = "failed" if errs[v.name] > tol else ("noisy" if wide else "ok")
        rows.append(BenchRow(model_name, v.name, at.size, s.median_ms, s.p20_ms, s.p80_ms, errs[v.name],
                             first[v.name], opts.size_dim, status, s.n, v.compiled_as, s.ci))
    return rows


def benchmark(model_or_callables: Any, inputs_by_size: Mapping[Any, Sequence[Any]],
              variants: Sequence[VariantSpec] | Mapping[str, Any] | None = None, options: BenchOptions | None = None,
              session: Any = None, **changes: Any) -> BenchReport:
    """Time every variant at every input size; eager is the oracle.

    ``model_or_callables``: a model (then ``variants`` names what to run: "eager",
    "torch-default", "torch-reduce-overhead", "torch-max-autotune-no-cudagraphs" — torch
    compiled static per size — vx.CompileConfig objects, (name, callable) pairs) or a dict
    name -> callable. ``inputs_by_size``: {size: inputs}, the size being that of ``size_dim``.
    ``options`` (or its fields as keywords, e.g. ``timer="steady", reps=20``): see BenchOptions.

    ``timer``: "idle" (one call from an idle GPU, host overhead counted) or "steady" (do_bench's
    back-to-back method); see bench/timing.py. Warm-up calls are excluded. Repetitions: round-
    robin blocks until each variant's median is known within +-``target_ci`` (relative half-width
    of its ~95 % interval) or ``budget_s`` seconds of measuring are spent (``reps`` fixes the
    count instead). A row whose interval stays over ``noise_threshold``, or whose p20-p80 spread
    is over ``max_spread`` (two modes, say), is "noisy"; a row whose
    max|out - eager| / max|eager| is over the dtype's tolerance (``tolerance``) is "failed";
    neither is shown as a speed-up.
    """
    try:
        opts = dataclasses.replace(options or BenchOptions(), **changes)
    except TypeError as e:
        raise VexploreError(f"vx.benchmark: {e}; the options are {', '.join(f.name for f in dataclasses.fields(BenchOptions))}.") from None
    if not inputs_by_size:
        raise VexploreError("vx.benchmark: inputs_by_size is empty; give {tokens: (inputs...)}.")
    if isinstance(model_or_callables, Mapping):
        eager = model_or_callables.get("eager", next(iter(model_or_callables.values())))
        resolved = resolve(None, model_or_callables, session)
    else:
        eager = model_or_callables
        resolved = resolve(model_or_callables, variants or ("eager", CompileConfig()), session)
    warns = []
    why = training_warning(eager)
    if why:
        warns.append(why)
        warnings.warn(f"vx.benchmark: {why}", VexploreBenchWarning, stacklevel=2)
    name = opts.model_name or type(getattr(eager, "__self__", eager)).__name__
    rows: list[BenchRow] = []
    with torch.no_grad():
        for size, inputs in inputs_by_size.items():
            inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
            rows += _measure_size(resolved, _Size(size, inputs, _on_cuda(inputs)), eager, opts, name)
    warns += _row_warnings(rows)
    return BenchReport(tuple(rows), _device_name(inputs_by_size), torch.__version__, _triton(), tuple(warns), opts.timer)


def _row_warnings(rows: Sequence[BenchRow]) -> list[str]:
    """One line per failed or noisy row; failed rows also raise one VexploreBenchWarning."""
    failed, noisy = [], []
    for r in rows:
        at = f"{r.variant} at {r.tokens} {r.size_dim}"
        if r.status == "failed":
            failed.append(f"{at}: max rel err {r.max_rel_err:.2g} against eager is over the accuracy gate; not a speed-up")
        elif r.status == "noisy":
            noisy.append(f"{at}: median known within +-{r.median_ci:.0%} after {r.samples} samples, p20-p80 spread "
                         f"{r.spread:.0%}; timings are noisy")
    if failed:
        warnings.warn("vx.benchmark: " + "; ".join(failed), VexploreBenchWarning, stacklevel=3)
    for line in noisy:
        log.warning("vx.benchmark: %s", line)
    return failed + noisy


def _triton() -> str | None:
    try:
        return metadata.version("triton")
    except metadata.PackageNotFoundError:
        return None


def _on_cuda(inputs: Sequence[Any]) -> bool:
    """Whether to time as GPU work: a CUDA tensor input, or (a statement, with no inputs) CUDA in use
    in this process: a GPU statement timed without a synchronise would time its launches only."""
    if inputs:
        return is_cuda(inputs)
    return torch.cuda.is_available() and torch.cuda.is_initialized()


def _device_name(inputs_by_size: Mapping[int, Any]) -> str:
    cuda = any(_on_cuda(tuple(i) if isinstance(i, (tuple, list)) else (i,)) for i in inputs_by_size.values())
    return torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()})"


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


def bench_statement(fn: Callable[[], Any], number: int | None = None, repeat: int | None = None,
                    config: CompileConfig | None = None, session: Any = None, size: tuple[Any, str] = (None, "tokens"),
                    **options: Any) -> BenchReport:
    """Time the zero-argument ``fn`` eager and compiled by vexplore, per call (``%vxbench``):
    ``repeat`` samples of ``number`` calls each, or (None) until the median is known within 2 %.
    ``size``: (the size of the varied dim, its name), when the caller knows them; ``options``:
    BenchOptions fields (``model_name``, ``timer``, ...)."""
    if (number is not None and number < 1) or (repeat is not None and repeat < 1):
        raise VexploreError(f"bench_statement: number={number} (-n) and repeat={repeat} (-r) must both be >= 1.")
    cfg = config if config is not None else CompileConfig()
    with torch.no_grad():
        fn()   # once: a statement that runs on the GPU initialises CUDA, so it is timed as GPU work
    compiled = vx_compile(fn, cfg, session=session)
    n = number or 1

    def loop(f: Callable[[], Any]) -> Callable[[], Any]:
        def looped() -> Any:
            out = None
            for _ in range(n):
                out = f()
            return out
        return looped

    rep = benchmark({"eager": loop(fn), variant_name(cfg): loop(compiled)}, {size[0]: ()}, session=session,
                    reps=repeat, size_dim=size[1], **options)
    rows = tuple(dataclasses.replace(r, median_ms=r.median_ms / n, p20_ms=r.p20_ms / n, p80_ms=r.p80_ms / n)
                 for r in rep.rows)
    return dataclasses.replace(rep, rows=rows)
