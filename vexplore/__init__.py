"""vexplore: an interactive compile explorer for PyTorch, made for Jupyter.

    import vexplore as vx
    cm = vx.compile(model, vx.CompileConfig(strategy="piecewise"))
    out = cm(*inputs)
    print(cm.report.table())

Importing vexplore never imports ipywidgets, plotly, graphviz or IPython; the notebook side
loads lazily (``vx.explore``, ``%load_ext vexplore``).
"""
from __future__ import annotations

from typing import Any

from .advise import Advice, ApplyResult, advise
from .advise.raytune import RayExecutor
from .advise.tune import TuneOptions, tune
from .advise.tuneresult import Trial, TuneResult
from .advise.tunespace import TuneSpace
from .bench.compare import BenchOptions, BenchReport, BenchRow, benchmark
from .bench.profile import profile
from .config import CacheConfig, CompileConfig, DEFAULT_SPLITTING_OPS
from .engine.capture.explain import GraphBreak, Recompile
from .engine.model import CompiledModel, compile
from .engine.ops import op_name
from .errors import (CompileError, ConfigError, VexploreBenchWarning, VexploreError, VexploreFallbackWarning,
                     VexplorePerformanceWarning, VexploreValidationWarning, VexploreWarning)
from .monitor.diff import Change, Diff, diff
from .monitor.events import CompileEvent
from .monitor.persist import ReportFileError
from .monitor.profile import KernelRow, RuntimeCounters, RuntimeProfile
from .monitor.report import CompileReport, Piece, load_report
from .session import Session, default_session
from . import cache
from .engine.build.prewarm import prewarm as _prewarm

cache.prewarm = _prewarm   # vx.cache.prewarm: it needs the engine and the Session, which sit above cache/

__version__ = "0.1.0"

__all__ = [
    "Advice", "ApplyResult", "GraphBreak", "Recompile", "advise",
    "BenchOptions", "BenchReport", "BenchRow", "CacheConfig", "Change", "CompileConfig", "CompileError", "CompileEvent",
    "CompileReport", "CompiledModel", "ConfigError", "DEFAULT_SPLITTING_OPS", "Diff", "KernelRow", "Piece", "ReportFileError",
    "RuntimeCounters", "RuntimeProfile", "Session",
    "VexploreBenchWarning", "VexploreError", "VexploreFallbackWarning", "VexplorePerformanceWarning", "VexploreValidationWarning",
    "VexploreWarning",
    "RayExecutor", "Trial", "TuneOptions", "TuneResult", "TuneSpace", "tune",
    "benchmark", "cache", "compile", "default_session", "diff", "explore", "export_html", "load_report", "op_name", "profile",
]


def explore(model: Any, *inputs: Any, config: CompileConfig | None = None, session: Session | None = None) -> Any:
    """The explorer dashboard (an ipywidgets widget) for ``model`` on ``inputs``; or for a CompileReport
    or a list of them (``vx.explore(vx.load_report(path))``), replayed without the model."""
    from .ui.explorer import explore as _explore  # UI libraries load only here

    return _explore(model, *inputs, config=config, session=session)


def export_html(obj: Any, path: Any, include_paths: bool = False) -> Any:
    """Write ``obj`` (a CompiledModel, CompileReport or explorer) to ``path`` as one self-contained
    HTML file (graph, pieces, generated code, timeline, warnings and advice, benchmarks); returns
    the path written. Nothing in it loads from the network; local paths (the cache directory, the
    model's files) are shortened to their file name unless ``include_paths``."""
    from .ui.export import export_html as _export  # UI modules load only here

    return _export(obj, path, include_paths=include_paths)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext vexplore``: registers the %vexplore and %vxbench magics."""
    from .magics import load_ipython_extension as _load

    _load(ipython)
