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

from .. import _torch_compat as tc

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
    carried: bool = False       # a Python value computed before a graph break, read in the frame resumed after it

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

    def rewrite(self, text: str, entry: bool = True) -> str:
        """``text`` (Dynamo's guard) in the model's names: Dynamo's sources (``L['x']``, ``G['x']``,
        ``_modules['x']``) and guard helpers (``___check_type_id``, ``___stack0``) in any frame, and the
        wrapper's view of the call (``args[1]``, ``kwargs['x']``, ``model``) when ``entry`` (the guard
        was written in vexplore's wrapper frame)."""
        text = _sources(text)
        if entry:
            text = re.sub(r"(?<![\w.])kwargs\['(\w+)'\]", r"\1", text)
            text = re.sub(r"(?<![\w.])args\[(\d+)\]", lambda m: self._positional(int(m.group(1))), text)
            if self.self_name:
                text = re.sub(r"(?<![\w.'\"])model(?=[.\[])", self.self_name, text)
        return _helpers(text)

    def _positional(self, i: int) -> str:
        if i < len(self.positional):
            return self.positional[i]
        return f"{self.varargs}[{i - len(self.positional)}]" if self.varargs else f"args[{i}]"


# What Dynamo calls things that no user wrote: its guard helpers and stack slots (___check_obj_id,
# ___stack0), its sources (L['x'], G['x']), its placeholder names (L_kwargs_x_), a module's
# _modules[...], and the wrapper's view of the call (args[1], kwargs['x']). Never in a message.
DYNAMO_NAME = re.compile(r"___\w|\b[LG]\['|\bL_(?:args|kwargs)_|\._(?:modules|parameters|buffers)\["
                         r"|(?<![\w.])(?:kwargs\['|args\[\d)")


# Dynamo's guard helpers (torch/_dynamo/guards.py's closure names, 2.11 and 2.13), said as Python a
# user reads; ``___stackN`` is a value Dynamo carried over a graph break into the resumed frame.
_HELPER_WORDS: tuple[tuple[re.Pattern[str], Any], ...] = tuple((re.compile(a), b) for a, b in (
    (r"___check_type_id\((.+?), \d+\)(?:, type=<class '(?:[\w.]*\.)?(\w+)'>)?",
     lambda m: f"type({m.group(1)}) is {m.group(2) or 'the type it had'}"),
    (r"___check_obj_id\((.+?), \d+\)", r"\1 is the object it was"),
    (r"not ___dict_contains\(('[^']*'|[^,]+), (.+?)\)", r"\1 not in \2"),
    (r"___dict_contains\(('[^']*'|[^,]+), (.+?)\)", r"\1 in \2"),
    (r"___odict_getitem\((.+?), (.+?)\)", r"\1[\2]"),
    (r"___(?:tuple_iterator_len|normalize_count_iter|normalize_range_iter)\(", "len("),
    (r"___key_to_id\((.+?)\)", r"list(\1)"),
    (r"___stack\d+", "value"),
    (r"___(\w+)", r"\1"),     # any other helper: its plain name
))


def _sources(text: str) -> str:
    """Dynamo's sources in Python's spelling: ``L['x']`` -> ``x``, ``G['__import_mod'].SCALE`` ->
    ``SCALE`` (a global the model's code names), ``self._modules['act']`` -> ``self.act``."""
    text = re.sub(r"\bL\['(\w+)'\]", r"\1", text)
    text = re.sub(r"\bG\['__import_\w+'\]\.", "", text)
    text = re.sub(r"\bG\['(\w+)'\]", r"\1", text)
    return re.sub(r"\._(?:modules|parameters|buffers)\['(\w+)'\]", r".\1", text)


def _helpers(text: str) -> str:
    for pattern, words in _HELPER_WORDS:
        text = pattern.sub(words, text)
    return text


def user_terms(text: str, names: CallNames | None = None) -> str:
    """Any text of Dynamo's (a guard, a source name) in the model's terms, through ``names`` (the
    wrapper's view of the call) when given: ``L['kwargs']['past_key_values'].layers[0].keys`` ->
    ``past_key_values.layers[0].keys``."""
    return (names or CallNames()).rewrite(text)


def source_name(source: str, placeholder: str, names: CallNames | None = None) -> str:
    """The model's name for a graph input: its Dynamo source (``L['kwargs']['cache'].layers[0].keys``,
    what ``node.meta['grapharg'].source`` names) in the model's terms; without a source, the
    placeholder (``L_args_0_`` -> ``args[0]`` -> its parameter) where its form is unambiguous."""
    if source:
        return user_terms(source, names)
    m = re.fullmatch(r"L_args_(\d+)_", placeholder)
    if m:
        return user_terms(f"args[{m.group(1)}]", names)
    m = re.fullmatch(r"L_kwargs_([A-Za-z]\w*?)_", placeholder)
    return m.group(1) if m else placeholder


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
                made_at = recompile(rec["recompile_reason"], graph, limit, self.names, entry, rec["co_name"])
                self.recompiles.append(made_at if made_at.frame else dataclasses.replace(made_at, frame=caller))


def recompile(text: str, graph: int | None, limit_hit: bool, names: CallNames, entry: bool = True,
              code: str | None = None) -> Recompile:
    """A Recompile from Dynamo's recompile reason (``"3/0: args[1] == 2.0  # code  # file:line in fn"``,
    then on 2.13 ``User stack trace:`` and the frames). ``entry``: the guard belongs to vexplore's
    wrapper frame, so ``names`` maps its view (else it was written in the model's own frame);
    ``code``: the name of the frame's code (Dynamo names a frame resumed after a graph break
    ``torch_dynamo_resume_in_<fn>_at_<line>``)."""
    head, _, stack = text.partition("\nUser stack trace:")
    head = re.sub(r"^\s*\[?\d+/\d+\]?:\s*", "", head.strip())
    raw = head.split("  #")[0].strip() or head
    guard = names.rewrite(raw, entry)
    frames = re.findall(r'File "([^"]+)", line (\d+), in \S+\n\s*(.*)', stack)
    frame = innermost_user_frame((f, int(n), code) for f, n, code in frames)
    where = f"{frame[0]}:{frame[1]}" if frame else _comment_location(head, names)
    small = size_one_guard(guard, head)
    name = guard_subject(guard)
    if small is not None:   # Dynamo's own 0/1 rule, not a line of the model: the call that passed the size
        where, name = None, small[0]
    if re.search(r"___stack\d", raw) and name == "value":
        name = f"a Python value at {where}" if where else "a Python value computed before a graph break"
    resumed = str(code or "").startswith("torch_dynamo_resume_in_") or "in torch_dynamo_resume_in_" in head
    carried = bool(re.search(r"___stack\d", raw)) or (resumed and name.isidentifier() and name not in names.positional
                                                     and name not in (names.self_name, names.varargs))
    reason = _reason(guard, name, small)
    if limit_hit:
        reason += "; Dynamo's recompile limit was hit, so this code runs eagerly from now on"
    return Recompile(reason, where, graph, name, guard, limit_hit, text.strip(), carried)


def size_one_guard(guard: str, text: str = "") -> tuple[str, int] | None:
    """(tensor, dim) when the guard is Dynamo's 0/1 specialization (``2 <= x.size()[0]``: the general
    graph serves sizes of 2 and up, so a size of 0 or 1 traces a graph of its own); else None."""
    m = re.fullmatch(r"2 <= (.+?)\.size\(\)\[(\d+)\]", guard.strip())
    if m is None and "0/1 specialization" in text:
        m = re.search(r"(\S+?)\.size\(\)\[(\d+)\]", guard)
    return (m.group(1), int(m.group(2))) if m else None


def _reason(guard: str, name: str, small: tuple[str, int] | None) -> str:
    if small is not None:
        return (f"dim {small[1]} of {small[0]} is 0 or 1 on this call (compiled for {guard}): Dynamo compiles sizes 0 "
                "and 1 apart from the rest, so this size traced a graph of its own, once")
    if re.fullmatch(r"len\((args|kwargs)\) == \d+", guard):
        return f"the number of arguments changed (compiled for {guard}): pass them the same way at every call"
    if re.fullmatch(r"len\(.+\) == \d+", guard):
        return f"the length of {name} changed (compiled for {guard})"
    if guard == f"not {name}":
        return f"{name} is no longer empty (compiled for {guard})"
    if re.search(r"\s(==|!=|is|in|<|>|<=|>=)\s", guard) and not guard.startswith("tensor"):
        return f"{name} changed (compiled for {guard})"
    return f"{name} changed: {guard}"


_NOT_SUBJECTS = {"len", "hasattr", "isinstance", "id", "type", "not", "tensor", "and", "or", "is", "in", "None",
                 "True", "False"}


def guard_subject(guard: str) -> str:
    """What a guard is about: ``tensor 'x' size mismatch ...`` -> ``x``; ``self.step == 0`` -> ``self.step``;
    ``len(args) == 2`` -> ``len(args)`` (the call's arguments); ``len(self.seen) == 2`` -> ``self.seen``;
    ``___check_obj_id(self.mode, 1)`` -> ``self.mode``."""
    m = re.match(r"\s*tensor '([^']+)'", guard)
    if m:
        return m.group(1)
    m = re.match(r"\s*len\((args|kwargs)\)", guard)
    if m:
        return m.group(0).strip()
    m = re.match(r"\s*len\(([^)]*)\)", guard)     # the length of a list or dict the code reads: that object
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
    """Where Dynamo's comment says the guard came from (``# code  # ...path:line in fn``). Torch writes
    the path short (torch.utils._traceback.shorten_filename: relative to what it shares with torch's
    own directory), so it is completed first: a torch file is no user's line; a model's source file
    or a library beside torch is named in full."""
    m = re.search(r"#[^#]*#\s*(\S+):(\d+) in \S+", head)
    if not m:
        return None
    path = _full_path(m.group(1), names)
    if not is_user_file(path) or "vexplore/engine/" in path:
        return None
    return f"{path}:{m.group(2)}"


def _full_path(short: str, names: CallNames) -> str:
    if os.path.isabs(short):
        return short
    for base in (_TORCH_DIR, os.path.dirname(_TORCH_DIR.rstrip(os.sep)) + os.sep):
        if os.path.isfile(base + short):
            return base + short
    for f in names.source_files:
        if f.endswith(short.lstrip(".")):
            return f
    return short


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
