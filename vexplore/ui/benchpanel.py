"""The benchmark panel: eager against every configuration compiled so far, for a list of sizes.

Timing is ``vx.benchmark``'s and the inputs of each size are ``resize_tokens``' (bench/compare.py);
this module picks the variants and draws the BenchReport as a chart and a table.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import ipywidgets as widgets

from ..bench.compare import BenchReport, benchmark, resize_tokens, variant_name
from ..config import CompileConfig
from ..engine.model import CompiledModel
from ..engine.model import compile as vx_compile
from ..errors import VexploreError
from .chart import FigureView
from .controls import parse_sizes
from .figures import bench_figure
from .style import WARNING, esc
from .tables import bench_table


NO_INPUTS = ("no example inputs to time: this explorer was made from a compiled model alone (vx.explore(cm)). "
             "Time it with vx.benchmark, e.g. vx.benchmark({'eager': lambda: model(input_ids=ids), 'vexplore': "
             "lambda: cm(input_ids=ids)}, {n: ()}), or pass positional inputs: vx.explore(model, x).")


def labelled(configs: Sequence[CompileConfig]) -> list[tuple[str, CompileConfig]]:
    """One (name, config) per variant name: ``variant_name`` already says what differs, so
    configs that share a name differ only where the run is the same (cache tiers, validation)."""
    out: dict[str, CompileConfig] = {}
    for cfg in configs:
        out.setdefault(variant_name(cfg), cfg)
    return list(out.items())


class BenchPanel:
    """Sizes, repetitions and a Run button; the chart and table of the latest BenchReport."""

    def __init__(self, cm: CompiledModel, inputs: tuple[Any, ...], sizes: Sequence[int]) -> None:
        self.model, self.inputs, self.session = cm.model, inputs, cm.session
        self.report: BenchReport | None = None
        self._compiled: dict[str, CompiledModel] = {}  # repr(config.to_dict()) -> its model
        self.sizes = widgets.Text(value=", ".join(map(str, sizes)), description="tokens",
                                  layout=widgets.Layout(width="240px"))
        self.reps = widgets.BoundedIntText(value=0, min=0, max=10_000, description="reps",
                                           tooltip="samples per variant and size; 0: until the median is known within 2 % "
                                                   "(or 2 s of measuring)", layout=widgets.Layout(width="150px"))
        self.timer = widgets.Dropdown(options=[("idle GPU", "idle"), ("steady (do_bench)", "steady")], value="idle",
                                      description="timer", layout=widgets.Layout(width="220px"))
        self.run = widgets.Button(description="Run benchmark", icon="tachometer", button_style="primary")
        self.status = widgets.HTML("")
        self.chart = FigureView(bench_figure([]), held=True)   # the explorer releases it (chart.py says why)
        self.table = widgets.HTML(bench_table(None))
        if not inputs:   # vx.explore(cm) of a model called with keywords: nothing to call it with here
            self.run.disabled = True
            self.status.value = NO_INPUTS
        self.widget = widgets.VBox([
            widgets.HTML("<b>Benchmark</b>: eager against every configuration compiled so far"),
            widgets.HBox([self.sizes, self.reps, self.timer, self.run, self.status]),
            widgets.HBox([self.chart, self.table], layout=widgets.Layout(flex_flow="row wrap"))])

    def measure(self, configs: Sequence[CompileConfig], progress: Callable[[str], None] | None = None) -> BenchReport:
        """Run ``vx.benchmark`` for eager and ``configs`` at the chosen sizes (blocking)."""
        if not self.inputs:
            raise VexploreError(NO_INPUTS)
        sizes = parse_sizes(self.sizes.value, "benchmark tokens")
        if not sizes:
            raise VexploreError("benchmark: give at least one size in 'tokens', e.g. '16, 64'.")
        variants: list[Any] = ["eager"]
        for name, cfg in labelled(configs):
            variants.append((name, self._compiled_for(cfg)))
        if progress:
            progress(f"timing {len(variants)} variants at {len(sizes)} sizes…")
        return benchmark(self.model, {n: resize_tokens(self.inputs, n) for n in sizes}, variants,
                         reps=int(self.reps.value) or None, timer=self.timer.value, session=self.session,
                         model_name=type(self.model).__name__)

    def _compiled_for(self, cfg: CompileConfig) -> CompiledModel:
        """A CompiledModel per config, made once: one Dynamo trace, the pieces from the session's
        memory tier. Not the explorer's own model, even for its current config: sizes it has not
        seen (1 token, say) can make Dynamo trace it again, adding graphs and reports to the model
        the explorer is showing, from the benchmark's thread."""
        key = repr(cfg.to_dict())  # configs hold dicts, so they do not hash; their to_dict does
        if key not in self._compiled:
            self._compiled[key] = vx_compile(self.model, cfg, session=self.session)
        return self._compiled[key]

    def draw(self, report: BenchReport) -> None:
        """Show ``report`` in the chart and the table, in place."""
        self.report = report
        self.chart.show(bench_figure(report.rows))
        self.table.value = bench_table(report) + "".join(
            f'<div style="color:{WARNING}">⚠ {esc(w)}</div>' for w in report.warnings)


class BenchView:
    """How ``%vxbench`` shows a BenchReport: an HTML table in notebooks, the plain table in terminals."""

    def __init__(self, report: BenchReport) -> None:
        self.report = report

    def _repr_html_(self) -> str:
        return bench_table(self.report)

    def __repr__(self) -> str:
        return self.report.table()
