"""The fallback ladder, a function over an executor: inductor -> conservative -> isolate -> eager.

Rung 1 runs every job at once on the executor (the worker pool, when there is one). A job
Inductor refused climbs in this process: the conservative Inductor options
(``CONSERVATIVE_INDUCTOR_OPTIONS``), then isolating the node Inductor could not lower (only
that op runs eagerly, the sub-pieces around it compile), then eager. A worker that timed out or
crashed is never retried here: that piece runs eagerly. Each result says exactly what compiled
and what runs eagerly (``BuildResult.isolated``, ``fallback_reason``), and which post-grad passes
ran on it (``BuildResult.passes``). A post-grad pass that raises fails the compile like any
Inductor error (``post-grad pass error: ...``, naming the pass), so the piece climbs the same ladder.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from ...config import CompileConfig
from ...errors import CompileError
from ...monitor.report import Fallback
from .executor import Executor, InProcess
from .jobs import Attempt, BuildResult, PieceJob
from ..ops import matches, op_name
from ..split.split import propagate, split_graph
from ..runtime.stitch import install, normalize_output, unwrap

log = logging.getLogger(__name__)


def build(jobs: Sequence[PieceJob], config: CompileConfig, executor: Executor, local: InProcess,
          in_trace: bool = False) -> list[BuildResult]:
    """A BuildResult per job, in order: compiled with the config's compiler, or down the ladder.

    ``in_trace``: the compile runs inside Dynamo's backend call. Dynamo's signal to trace the frame
    again (an Attempt with status "restart") is then raised for Dynamo to act on; outside a trace
    (``recompile``) nothing can re-trace, so that piece runs eagerly, saying why. Never a retry: a
    retried compile that gets past the signal bakes in a Python value Dynamo did not guard on.
    """
    if config.compiler == "eager":
        return [BuildResult(j.gm, "eager", code=j.gm.code, compiled_in="eager: compiler='eager' was asked for")
                for j in jobs]
    out: dict[int, BuildResult] = {}
    todo = []
    for i, job in enumerate(jobs):
        if any(isinstance(v, torch.Tensor) for v in _outputs(job.gm)):
            todo.append(i)
        else:   # not a failure, so no fallback warning: Inductor only compiles graphs with tensor outputs
            out[i] = BuildResult(job.gm, "eager", code=job.gm.code,
                                 compiled_in="eager: the piece returns no tensors, nothing to compile")
    firsts = executor.run([jobs[i] for i in todo])
    ran = config.pass_record()
    for i, first in zip(todo, firsts):
        if first.status == "restart":
            out[i] = _restart(jobs[i], first, in_trace)
            continue
        out[i] = _settle(jobs[i], first, config, local, in_trace)
        if ran and out[i].compiler == "inductor":   # Inductor ran the post-grad passes on what it compiled
            out[i] = dataclasses.replace(out[i], passes=ran)
    return [out[i] for i in range(len(jobs))]


def _restart(job: PieceJob, first: Attempt, in_trace: bool) -> BuildResult:
    """Dynamo's signal to trace again: raised inside Dynamo's call; outside it, the piece runs eagerly."""
    if in_trace and first.exc is not None:
        raise first.exc
    return BuildResult(job.gm, "eager", code=job.gm.code, compiled_in=first.where, seconds=first.seconds,
                       fallback=Fallback("restart", "eager", first.error or "", "dynamo restart"))


def _fallback(first: Attempt, rung: str, **kw: Any) -> Fallback:
    """The record of a job that climbed to ``rung``: the first failure's fields, and ``kw``'s."""
    f = first.failure
    fields = dict(category=f.category, cause=f.cause, op=f.op) if f is not None else {}
    return Fallback(first.status, rung, first.error or "", **{**fields, **kw})


def _settle(job: PieceJob, first: Attempt, config: CompileConfig, local: InProcess, in_trace: bool) -> BuildResult:
    if first.status == "ok":
        return BuildResult(first.fn, "inductor", code=first.code, data=first.data, compiled_in=first.where,
                           seconds=first.seconds, pass_graphs=first.pass_graphs)
    if first.status in ("timeout", "crashed"):
        return BuildResult(job.gm, "eager", fallback=_fallback(first, "eager", category=first.status),
                           code=job.gm.code, compiled_in=first.where, seconds=first.seconds)
    if not config.fallback:
        raise CompileError(f"piece {job.piece}: Inductor failed ({first.error}); set fallback=True to fall back "
                           "per piece, or change the split so this op runs eagerly.") from first.exc
    log.info("vexplore: piece %d failed with Inductor (%s); retrying with conservative options", job.piece, first.error)
    where = f"in-process after {first.where} failed" if first.pid is not None else first.where
    second = local.one(job, conservative=True, where=where, retry=True)
    if second.status == "restart":
        return _restart(job, second, in_trace)
    spent = first.seconds + second.seconds
    if second.status == "ok":
        return BuildResult(second.fn, "inductor", fallback=_fallback(first, "conservative"),
                           code=second.code, data=second.data, compiled_in=where, seconds=spent,
                           pass_graphs=second.pass_graphs)
    found = second.failure.op if second.failure is not None else None
    retry = {"retry_error": second.error or "", **({"op": found} if found else {})}
    if found is not None:
        try:
            built, parts = isolate(job, found, local)
            fb = _fallback(first, "isolate", retry_error=retry["retry_error"], **parts)
            return dataclasses.replace(built, fallback=fb, compiled_in=where, seconds=spent + built.seconds)
        except LookupError as e:
            log.info("vexplore: isolating %s in piece %d failed: %s", found, job.piece, e)
    return BuildResult(job.gm, "eager", fallback=_fallback(first, "eager", **retry), code=job.gm.code,
                       compiled_in=where, seconds=spent)


def isolate(job: PieceJob, target: str, local: InProcess) -> tuple[BuildResult, dict[str, Any]]:
    """Cut the nodes that call ``target`` out to run eagerly and compile the sub-pieces around
    them (conservative options). A sub-piece that fails too runs eagerly. Returns the result and
    the Fallback fields it fills (the nodes cut out, the sub-pieces that failed, how many compiled);
    the ladder adds why."""
    bad = {n for n in job.gm.graph.nodes if n.op == "call_function" and matches(op_name(n), [target])}
    if not bad:
        raise LookupError(f"no node calls {target}")
    with local.rec.step("isolate", graph=job.graph, piece=job.piece, size=job.size, detail=target) as step:
        sub = split_graph(job.gm, lambda n: n in bad)
        sub_inputs, _ = propagate(sub, job.inputs, job.fake_mode, grad=job.grad)
        runners: dict[str, Callable[..., Any]] = {}
        codes, eager_parts, compiled = [], [], 0
        for p in sub.pieces:
            if p.kind != "compiled":
                continue
            gm, single = normalize_output(p.module)
            sub_job = dataclasses.replace(job, gm=gm, inputs=tuple(sub_inputs[p.name]))
            got = local.one(sub_job, conservative=True)
            if got.status == "ok":
                compiled += 1
                codes.append(got.code or "")
            else:
                eager_parts.append((p, got.error))
            runners[p.name] = unwrap(got.fn if got.status == "ok" else gm, single)
    names = sorted(n.name for n in bad) + sorted(n.name for p, _ in eager_parts for n in _body(p.module))
    parts = dict(op=target, isolated=tuple(sorted(n.name for n in bad)), compiled_parts=compiled,
                 failed_parts=tuple((p.name, len(_body(p.module)), err or "") for p, err in eager_parts))
    return BuildResult(install(sub.gm, runners), "inductor" if compiled else "eager",
                       isolated=tuple(names), code="\n\n".join(codes) or None, seconds=step.event.duration_s), parts


def _body(gm: fx.GraphModule) -> list[fx.Node]:
    return [n for n in gm.graph.nodes if n.op not in ("placeholder", "output")]


def _outputs(gm: fx.GraphModule) -> list[Any]:
    out = next(n for n in reversed(gm.graph.nodes) if n.op == "output")
    vals: list[Any] = []
    fx.map_arg(out.args[0], lambda n: vals.append(n.meta.get("example_value", n.meta.get("val", torch.empty(0)))))
    return vals
