"""The benchmark panel: eager against every configuration compiled so far, for a list of sizes.

Timing is ``vx.benchmark``'s; this module picks the variants, makes inputs of each size from
the explorer's example inputs, and draws the BenchReport as a chart and a table.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from ..bench.compare import BenchReport, benchmark, variant_name
from ..config import CompileConfig
from ..engine.model import CompiledModel
from ..engine.model import compile as vx_compile
from ..errors import VexploreError
from .controls import parse_sizes
from .figures import bench_figure, show_in
from .style import esc
from .tables import bench_table


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


def labelled(configs: Sequence[CompileConfig]) -> list[tuple[str, CompileConfig]]:
    """A variant name per distinct config: ``vexplore-<strategy>-<cudagraph>``, numbered when two share one."""
    seen: dict[str, int] = {}
    out = []
    for cfg in configs:
        name = variant_name(cfg)
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name} #{seen[name]}", cfg))
    return out


class BenchPanel:
    """Sizes, repetitions and a Run button; the chart and table of the latest BenchReport."""

    def __init__(self, model: Any, inputs: tuple[Any, ...], session: Any, sizes: Sequence[int]) -> None:
        self.model, self.inputs, self.session = model, inputs, session
        self.report: BenchReport | None = None
        self._compiled: dict[tuple[str, str], CompiledModel] = {}
        self.sizes = widgets.Text(value=", ".join(map(str, sizes)), description="tokens",
                                  layout=widgets.Layout(width="240px"))
        self.reps = widgets.BoundedIntText(value=20, min=1, max=10_000, description="reps",
                                           layout=widgets.Layout(width="150px"))
        self.run = widgets.Button(description="Run benchmark", icon="tachometer", button_style="primary")
        self.status = widgets.HTML("")
        self.chart = go.FigureWidget(bench_figure([]))
        self.table = widgets.HTML(bench_table([]))
        self.widget = widgets.VBox([
            widgets.HTML("<b>Benchmark</b>: eager against every configuration compiled so far"),
            widgets.HBox([self.sizes, self.reps, self.run, self.status]),
            widgets.HBox([self.chart, self.table], layout=widgets.Layout(flex_flow="row wrap"))])

    def measure(self, configs: Sequence[CompileConfig], progress: Callable[[str], None] | None = None) -> BenchReport:
        """Run ``vx.benchmark`` for eager and ``configs`` at the chosen sizes (blocking)."""
        sizes = parse_sizes(self.sizes.value, "benchmark tokens")
        if not sizes:
            raise VexploreError("benchmark: give at least one size in 'tokens', e.g. '16, 64'.")
        variants: list[Any] = ["eager"]
        for name, cfg in labelled(configs):
            key = (name, repr(cfg.to_dict()))
            if key not in self._compiled:  # each config compiles once, served by the session's memory tier
                self._compiled[key] = vx_compile(self.model, cfg, session=self.session)
            variants.append((name, self._compiled[key]))
        if progress:
            progress(f"timing {len(variants)} variants at {len(sizes)} sizes…")
        return benchmark(self.model, {n: resize_tokens(self.inputs, n) for n in sizes}, variants,
                         reps=int(self.reps.value), session=self.session, model_name=type(self.model).__name__)

    def draw(self, report: BenchReport) -> None:
        """Show ``report`` in the chart and the table, in place."""
        self.report = report
        show_in(self.chart, bench_figure(report.rows))
        self.table.value = bench_table(report.rows) + "".join(
            f'<div style="color:#a15c00">⚠ {esc(w)}</div>' for w in report.warnings)


def bench_statement(fn: Callable[[], Any], number: int = 1, repeat: int = 20, config: CompileConfig | None = None,
                    session: Any = None, name: str = "statement") -> BenchReport:
    """Time the zero-argument ``fn`` eager and compiled by vexplore, timeit-style: ``repeat``
    timings of ``number`` calls each, reported per call (``%vxbench`` uses this)."""
    if number < 1 or repeat < 1:
        raise VexploreError(f"%vxbench: -n {number} and -r {repeat} must both be >= 1.")
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


class BenchView:
    """How ``%vxbench`` shows a BenchReport: an HTML table in notebooks, the plain table in terminals."""

    def __init__(self, report: BenchReport) -> None:
        self.report = report

    def _repr_html_(self) -> str:
        return bench_table(self.report.rows)

    def __repr__(self) -> str:
        return self.report.table()
