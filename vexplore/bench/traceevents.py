"""torch.profiler's events of the profiled calls, analysed: each call's span, each piece's runs, the kernels.

The calls run inside ranges ``vexplore call <i>`` (the profiler's warm-up call in another), the pieces
inside ``vexplore piece <index>`` (bench/profile.py puts them there). A kernel is, on CUDA, every
device event, placed by the CPU op that launched it (the profiler's correlation id); on the CPU, an
outermost op inside a call: an op (``ns::name``) or an Inductor C++ kernel's range, not an annotation.
(On CUDA the profiler repeats the ranges on the device track: those are no kernels.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.autograd import DeviceType

from .kernelmap import kernel_key

CALL, PIECE, WARM = "vexplore call ", "vexplore piece ", "vexplore profiler warm-up"


@dataclass(frozen=True)
class Kernel:
    name: str
    call: int
    piece: int | None
    ordinal: int          # the k-th run of this kernel's name in its piece's run (or in its call, outside pieces)
    start: float          # µs, the profiler's clock
    end: float


@dataclass
class Run:
    """One traced run, analysed: the calls' spans, the pieces' runs and the kernels, in µs."""

    calls: dict[int, tuple[float, float]]
    pieces: list[tuple[int, int, float, float]]   # (call, piece, start, end)
    kernels: list[Kernel]
    args: dict[int, tuple[Any, ...]]               # graph -> its input sizes at the first profiled call


def _where(e: Any, memo: dict[int, tuple[int | None, int | None, int | None]]) -> tuple[int | None, int | None, int | None]:
    """(call, piece, id of the piece's run) of a CPU event, from the ranges around it (itself included)."""
    chain, call, piece, run = [], None, None, None
    node = e
    while node is not None:
        if id(node) in memo:
            call, piece, run = memo[id(node)]
            break
        chain.append(node)
        node = node.cpu_parent
    for n in reversed(chain):
        if n.name.startswith(CALL):
            call = int(n.name[len(CALL):])
        elif n.name.startswith(PIECE):
            piece, run = int(n.name[len(PIECE):]), id(n)
        memo[id(n)] = (call, piece, run)
    return call, piece, run


def _is_op(e: Any) -> bool:
    """A CPU event that is work: an op (``ns::name``) or an Inductor C++ kernel's range, not an annotation."""
    return not getattr(e, "is_user_annotation", False) and ("::" in e.name or kernel_key(e.name) != e.name)


def _outermost(e: Any) -> bool:
    node = e.cpu_parent
    while node is not None and not node.name.startswith((CALL, PIECE)):
        if _is_op(node):
            return False
        node = node.cpu_parent
    return True


def analyse(events: list[Any], cuda: bool) -> Run:
    memo: dict[int, tuple[int | None, int | None, int | None]] = {}
    cpu = [e for e in events if e.device_type == DeviceType.CPU]
    calls = {int(e.name[len(CALL):]): (e.time_range.start, e.time_range.end) for e in cpu if e.name.startswith(CALL)}
    pieces = []
    for e in cpu:
        if e.name.startswith(PIECE):
            call, piece, _ = _where(e, memo)
            if call is not None:
                pieces.append((call, int(piece), e.time_range.start, e.time_range.end))
    found: list[tuple[Any, tuple[int | None, int | None, int | None]]] = []
    if cuda:
        # a device event has the id of the CUDA runtime call that launched it (cudaLaunchKernel, cuLaunchKernel
        # for Triton, cudaGraphLaunch, cudaMemcpyAsync ...), a CPU event whose parent is the op or range
        # around the launch; CPU ops' own ids are another count, so only runtime calls are looked up
        launchers = {e.id: e for e in cpu if e.name.startswith("cu")}
        for e in events:
            if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False) \
                    and not e.name.startswith((CALL, PIECE, WARM)):   # ranges shown on the device track
                by = launchers.get(e.id)
                found.append((e, _where(by, memo) if by is not None else (_call_at(calls, e.time_range.start), None, None)))
    else:
        found = [(e, _where(e, memo)) for e in cpu if _is_op(e) and _outermost(e)]
    counts: dict[tuple[Any, str], int] = {}
    kernels = []
    for e, (call, piece, run) in sorted(found, key=lambda f: f[0].time_range.start):
        if call is None:
            continue
        k = (run if run is not None else ("call", call), kernel_key(e.name))
        counts[k] = counts.get(k, -1) + 1
        kernels.append(Kernel(e.name, call, piece, counts[k], e.time_range.start, e.time_range.end))
    return Run(calls, pieces, kernels, {})


def _call_at(calls: dict[int, tuple[float, float]], t: float) -> int | None:
    return next((i for i, (a, b) in calls.items() if a <= t <= b), None)
