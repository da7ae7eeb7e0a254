"""Advice (what the advisor found, and the config that fixes it), ApplyResult, and the stable codes.

An Advice says what, where (``file:line`` when there is one) and what to change, in the user's
terms; ``evidence`` holds the figures it rests on (JSON-ready), ``config`` the CompileConfig that
applies it when vexplore can (None when the fix is in the user's code or torch's config).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..bench.compare import BenchReport
from ..config import CompileConfig
from ..errors import VexploreError
from ..monitor.report import CompileReport
from .apply import ApplyResult, apply_config, rebase

SEVERITIES = ("critical", "warning", "info")

# Every code the advisor gives, with what it means (stable: tests and users match on them).
CODES: dict[str, str] = {
    "graph-break": "Dynamo broke the model into several graphs at a line of its code",
    "recompile": "a later call re-traced the model because something the graph was specialized to changed",
    "recompile-storm": "the same thing keeps changing and re-tracing, up to Dynamo's recompile limit",
    "slow-compile": "a compile took much longer than the same cache key did before, or than it needs to",
    "repeated-blocks": "identical layers compiled inside one big piece: a piecewise config compiles one",
    "no-persistent-cache": "no disk or remote tier: every new process compiles again",
    "low-cache-hit-rate": "later compiles keep missing the cache; the key part that keeps changing is named",
    "memory-growth": "process or device memory grew across this model's compiles",
    "fast-path-op": "PyTorch's inference fast path is off while vexplore runs the model",
    "split-op-missing": "a splitting op the config names is not in the graph",
    "cudagraph-skipped": "pieces run without the CUDA graphs the config asked for",
    "host-bound": "call time barely grows with the work: per-call host overhead dominates",
    "training-mode": "the model is in training mode or called with grad enabled",
    "noisy-timing": "benchmark figures whose median stayed uncertain",
    "accuracy": "compiled output disagrees with eager beyond the dtype's tolerance",
    "runtime-fallback": "a compiled piece raised when called and runs eagerly since",
    "compile-system-failure": "a piece did not compile with the configured compiler (or a compile worker failed)",
    "cache-failure": "a cache tier refused or could not load entries",
}


class AdviceError(VexploreError):
    """An Advice that vexplore cannot apply by itself (the fix is in the user's code or torch's config)."""


@dataclass(frozen=True)
class Context:
    """What the detectors read: the model, its reports, the session's, and an optional benchmark."""

    cm: Any                                   # the CompiledModel
    reports: tuple[CompileReport, ...]        # this model's, oldest first
    history: tuple[CompileReport, ...]        # the session's (every model's), oldest first
    bench: BenchReport | None = None

    @property
    def latest(self) -> CompileReport | None:
        return self.reports[-1] if self.reports else None


@dataclass(frozen=True)
class Advice:
    """One finding: ``code`` (stable, see CODES), ``severity`` ("info" | "warning" | "critical"),
    ``message`` (what, where, what to change), ``evidence`` (the figures), ``config`` (the
    CompileConfig that applies it, or None), ``metric`` (what ``apply`` measures), ``base`` (the
    model's config when it was advised: ``apply`` carries over only what ``config`` changes from it)."""

    code: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    config: CompileConfig | None = None
    metric: str | None = None
    base: CompileConfig | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.code not in CODES or self.severity not in SEVERITIES:
            raise AdviceError(f"Advice(code={self.code!r}, severity={self.severity!r}): the code must be one of "
                              f"vexplore.advise.CODES and the severity one of {SEVERITIES}.")

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message}"

    def apply(self, cm: Any, inputs: Sequence[Any] | None = None) -> ApplyResult:
        """Recompile ``cm`` with what ``config`` changes, applied to ``cm.config`` as it is now (an
        advice applied before this one stays applied), measure ``metric`` before and after, and keep
        the new config only if the metric got better and nothing it watches got worse (else recompile
        back). ``inputs``: the model's inputs, for a timed metric (without them the captured graphs
        run on their own example inputs)."""
        if self.config is None:
            raise AdviceError(f"advice {self.code!r}: vexplore cannot apply it, the change is in your code or in "
                              f"torch's config: {self.message}")
        if self.metric is None:
            raise AdviceError(f"advice {self.code!r}: its config needs a new Dynamo trace, which recompile cannot do; "
                              "compile anew with it: cm2 = vx.compile(model, advice.config).")
        return apply_config(cm, rebase(self.config, self.base, cm.config), self.metric, inputs)
