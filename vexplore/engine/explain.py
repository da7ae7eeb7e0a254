"""Why a model has several graphs: Dynamo's graph breaks and recompiles, in the user's terms.

Dynamo records both for the whole process: each graph break with the user frames that reached
it, and each frame compile with the guard that failed when it was a recompile (the sources are
read in ``_torch_compat``). A CompiledModel's ``TraceLog`` takes what Dynamo recorded while that
model was being called (so other models' breaks never show), ties each to the graph it made, and
rewrites Dynamo's names for the wrapper's view (``args[1]``, ``kwargs['scale']``, ``model.step``)
into the names of the model's own code (``scale``, ``self.step``) through its signature.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from . import _torch_compat as tc

STORM_AT = 3    # this many re-traces for the same reason make a recompile storm (alerts and advice)
ENTRY_PREFIX = "vexplore_entry_"    # the code name of the function vx.compile hands Dynamo (model.entry_point)
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_VEXPLORE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@dataclass(frozen=True)
class GraphBreak:
    """A graph break: where Dynamo stopped the graph and why. ``graph`` is the graph that ends at
    the break (the next graph resumes after it); None when no graph was compiled before it."""

    reason: str                 # Dynamo's reason, its first line: "Data-dependent branching"
    frame: str                  # "path:line" of the innermost frame outside vexplore and torch
    graph: int | None
    code: str | None = None     # the source of that line
    detail: str = ""            # Dynamo's whole text: explanation and hints

    def __str__(self) -> str:
        where = f"graph {self.graph} ends at " if self.graph is not None else "at "
        return f"{where}{self.frame}: {self.reason}" + (f" ({self.code})" if self.code else "")


@dataclass(frozen=True)
class Recompile:
    """A re-trace: a guard of an earlier graph failed on a later call. ``name`` is what changed as
    the model's code names it; ``graph`` the first graph of the new trace (None when there was
    none: at Dynamo's recompile limit the code runs eagerly from then on, ``limit_hit``)."""

    reason: str                 # "scale changed (compiled for scale == 2.0)"
    frame: str | None           # "path:line" of the innermost user frame that reads it
    graph: int | None
    name: str = ""              # "scale", "self.step", "x"
    guard: str = ""             # the failed guard in the user's names: "scale == 2.0"
    limit_hit: bool = False     # Dynamo's recompile limit was reached on this call
    detail: str = ""            # Dynamo's text

    def __str__(self) -> str:
        where = f" at {self.frame}" if self.frame else ""
        return f"recompile{where}: {self.reason}" + (f" -> graph {self.graph}" if self.graph is not None else "")


@dataclass(frozen=True)
class CallNames:
    """How the model's code names what the wrapper passes on: ``args[i]`` -> the i-th positional
    parameter of its forward (or of the function), ``model`` -> its forward's first parameter."""

    positional: tuple[str, ...] = ()
    varargs: str | None = None
    self_name: str | None = None
    source_files: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: Any) -> "CallNames":
        fn = type(model).forward if isinstance(model, torch.nn.Module) else model
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return cls()
        self_name = None
        if isinstance(model, torch.nn.Module) and params:
            self_name, params = params[0].name, params[1:]
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        var = next((p.name for p in params if p.kind == inspect.Parameter.VAR_POSITIONAL), None)
        files = tuple(f for f in (_source_file(fn), _source_file(type(model))) if f)
        return cls(tuple(p.name for p in params if p.kind in kinds), var, self_name, files)

    def rewrite(self, text: str) -> str:
        """``text`` (Dynamo's guard, as the wrapper saw the call) in the model's names."""
        text = re.sub(r"\bL\['(\w+)'\]", r"\1", text)
        text = re.sub(r"(?<![\w.])kwargs\['(\w+)'\]", r"\1", text)
        text = re.sub(r"(?<![\w.])args\[(\d+)\]", lambda m: self._positional(int(m.group(1))), text)
        if self.self_name:
            text = re.sub(r"(?<![\w.'\"])model(?=[.\[])", self.self_name, text)
        return text

    def _positional(self, i: int) -> str:
        if i < len(self.positional):
            return self.positional[i]
        return f"{self.varargs}[{i - len(self.positional)}]" if self.varargs else f"args[{i}]"


class TraceLog:
    """What Dynamo recorded while one model was called: its graph breaks and recompiles.

    ``begin`` at the start of each call, ``on_graph`` before each graph the backend compiles,
    ``end`` when the call returns. A call that compiled nothing costs two reads of where Dynamo's
    records stand (about a microsecond each).
    """

    def __init__(self, model: Any) -> None:
        self.names = CallNames.of(model)
        self.breaks: list[GraphBreak] = []
        self.recompiles: list[Recompile] = []
        self._said: dict[str, tuple[str, str]] = {}   # frame -> (reason, detail) Dynamo first gave for it
        self._break_at = 0
        self._mark: Any = None
        self._graphs_at = 0

    def begin(self, graphs: int) -> None:
        (self._break_at, self._mark), self._graphs_at = tc.dynamo_marks(), graphs

    def on_graph(self, index: int) -> None:
        """Breaks recorded since the last look end the graph about to be compiled."""
        self._take_breaks(index, tc.dynamo_marks()[0])

    def end(self, graphs: int) -> None:
        count, mark = tc.dynamo_marks()
        self._take_breaks(None, count)
        if mark is not self._mark:
            self._take_frames(iter(range(self._graphs_at, graphs)))
            self._mark = mark

    def _take_breaks(self, graph: int | None, count: int) -> None:
        if count == self._break_at:
            return
        start = self._break_at if count > self._break_at else 0   # fewer than before: torch._dynamo.reset()
        self._break_at = count
        seen: set[str] = set()
        for text, stack in tc.graph_break_records(start):
            frame = innermost_user_frame((f.filename, f.lineno, f.line) for f in stack)
            where = f"{frame[0]}:{frame[1]}" if frame else "?"
            if where in seen:      # Dynamo records a break again when it restarts the frame at it
                continue
            seen.add(where)
            reason, detail = self._said.setdefault(where, (_first_line(text), text.strip()))
            self.breaks.append(GraphBreak(reason, where, graph, frame[2] if frame else None, detail))

    def _take_frames(self, graphs: Iterator[int]) -> None:
        caller = _caller()   # where the model was called: the frame of a guard on the call itself (len(args))
        for rec in tc.frame_compiles_since(self._mark):
            made = rec["graph_ops"] > 0 and rec["co_name"] and not rec["fail_type"]
            graph = next(graphs, None) if made else None
            # BACKEND_MATCH: another compiled wrapper (a second vx.compile of this model) shares these
            # frames; Dynamo traced them again for it, nothing in this model's code changed
            if rec["recompile_reason"] and "BACKEND_MATCH" not in str(rec["recompile_reason"]):
                limit = "recompile limit" in str(rec["fail_reason"] or "").lower()
                entry = rec["co_name"] is None or str(rec["co_name"]).startswith(ENTRY_PREFIX)
                made_at = recompile(rec["recompile_reason"], graph, limit, self.names, entry)
                self.recompiles.append(made_at if made_at.frame else dataclasses.replace(made_at, frame=caller))


def recompile(text: str, graph: int | None, limit_hit: bool, names: CallNames, entry: bool = True) -> Recompile:
    """A Recompile from Dynamo's recompile reason (``"3/0: args[1] == 2.0  # code  # file:line in fn"``,
    then on 2.13 ``User stack trace:`` and the frames). ``entry``: the guard belongs to vexplore's
    wrapper frame, so ``names`` maps its view (else it was written in the model's own frame)."""
    head, _, stack = text.partition("\nUser stack trace:")
    head = re.sub(r"^\s*\[?\d+/\d+\]?:\s*", "", head.strip())
    guard = head.split("  #")[0].strip() or head
    if entry:
        guard = names.rewrite(guard)
    name = guard_subject(guard)
    frames = re.findall(r'File "([^"]+)", line (\d+), in \S+\n\s*(.*)', stack)
    frame = innermost_user_frame((f, int(n), code) for f, n, code in frames)
    where = f"{frame[0]}:{frame[1]}" if frame else _comment_location(head, names)
    if guard.startswith("len(") and "==" in guard:
        reason = f"the number of arguments changed (compiled for {guard}): pass them the same way at every call"
    elif re.search(r"\s(==|!=|is|<|>|<=|>=)\s", guard) and not guard.startswith("tensor"):
        reason = f"{name} changed (compiled for {guard})"
    else:
        reason = f"{name} changed: {guard}"
    if limit_hit:
        reason += "; Dynamo's recompile limit was hit, so this code runs eagerly from now on"
    return Recompile(reason, where, graph, name, guard, limit_hit, text.strip())


_NOT_SUBJECTS = {"len", "hasattr", "isinstance", "id", "type", "not", "tensor", "and", "or", "is", "in", "None",
                 "True", "False"}


def guard_subject(guard: str) -> str:
    """What a guard is about: ``tensor 'x' size mismatch ...`` -> ``x``; ``self.step == 0`` -> ``self.step``;
    ``len(args) == 2`` -> ``len(args)``; ``___check_obj_id(self.mode, 1)`` -> ``self.mode``."""
    m = re.match(r"\s*tensor '([^']+)'", guard)
    if m:
        return m.group(1)
    m = re.match(r"\s*(len\([^)]*\))", guard)
    if m:
        return m.group(1)
    for m in re.finditer(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\]]*\])*", guard):
        token = m.group(0)
        if token.startswith("___") or token in _NOT_SUBJECTS or guard[m.end():m.end() + 1] == "(":
            continue
        if m.start() > 0 and guard[m.start() - 1] in "'\"":
            continue
        return token
    return guard


def innermost_user_frame(frames: Any) -> tuple[str, int, str | None] | None:
    """(path, line, code) of the innermost frame outside vexplore, torch and generated code."""
    found = None
    for path, line, code in frames:
        if is_user_file(path):
            found = (path, int(line), (code or "").strip() or None)
    return found


def is_user_file(path: str) -> bool:
    if not path or path.startswith("<"):
        return False
    full = os.path.abspath(path)
    return not full.startswith(_TORCH_DIR) and not full.startswith(_VEXPLORE_DIR)


def _comment_location(head: str, names: CallNames) -> str | None:
    """Where Dynamo's comment says the guard came from (``# code  # ...path:line in fn``), its path
    completed from the model's source files when Dynamo shortened it."""
    m = re.search(r"#[^#]*#\s*(\S+):(\d+) in \S+", head)
    if not m or not is_user_file(m.group(1)) or "vexplore/engine/" in m.group(1):
        return None
    tail, line = m.group(1), m.group(2)
    for f in names.source_files:
        if f.endswith(tail.lstrip(".")):
            return f"{f}:{line}"
    return f"{tail}:{line}"


def _caller() -> str | None:
    """``path:line`` of the innermost user frame on the stack now (the model's caller, from inside the call)."""
    f = sys._getframe(1)
    while f is not None and not is_user_file(f.f_code.co_filename):
        f = f.f_back
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else None


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), text.strip())


def _source_file(obj: Any) -> str | None:
    try:
        return inspect.getsourcefile(obj)
    except (TypeError, OSError):
        return None



def trace_alerts(breaks: list[GraphBreak], recompiles: list[Recompile], new: tuple[int, int]) -> Iterator[tuple[str, str, str]]:
    """(code, severity, message) of the alerts a call raises for what it added (``new``: how many
    breaks and recompiles there were before it): a graph break at a place (line and reason) not
    seen before (info; a re-trace breaking at the same line again is not news), and a recompile
    storm when a name's re-traces reach STORM_AT or Dynamo's recompile limit is hit."""
    seen = {(b.frame, b.reason) for b in breaks[:new[0]]}
    for b in breaks[new[0]:]:
        if (b.frame, b.reason) not in seen:
            seen.add((b.frame, b.reason))
            yield "graph-break", "info", f"graph break: {b} — see cm.graph_breaks and vx.advise(cm)"
    for i in range(new[1], len(recompiles)):
        r = recompiles[i]
        same = sum(x.name == r.name for x in recompiles[:i + 1]) if r.name else 0
        if r.limit_hit or same == STORM_AT:
            what = ("Dynamo's recompile limit was hit: this code runs eagerly from now on" if r.limit_hit
                    else f"re-traced {same} times")
            yield ("recompile-storm", "critical" if r.limit_hit else "warning",
                   f"{r.name or r.guard or 'the model'} keeps changing ({r.reason}): {what} — vx.advise(cm) says what to change")
