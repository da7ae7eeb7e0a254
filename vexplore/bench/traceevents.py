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
    ordinal: int          # the k-th run of ``key`` in its piece's run (or in its call, outside pieces)
    start: float          # µs, the profiler's clock
    end: float
    key: str = ""         # the name Inductor's code calls it by (kernelmap.kernel_key; see ``launch_key``)

    @property
    def code_key(self) -> str:
        return self.key or kernel_key(self.name)


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


def launch_key(name: str, op: Any) -> str:
    """What a device kernel is called by in Inductor's code: a Triton kernel by its own name; any other
    (a cuBLAS GEMM such as ``nvjet_sm90_...``, a flash-attention or an aten elementwise kernel) by the aten
    op that launched it (``aten::mm`` -> ``mm``, as ``extern_kernels.mm`` is), when the profiler saw one."""
    if op is None or name.startswith("triton_"):
        return kernel_key(name)
    return kernel_key(op.name)


def _launching_op(e: Any) -> Any:
    """The outermost op (below the call and piece ranges) around a CUDA runtime call, or None."""
    op, node = None, e
    while node is not None and not node.name.startswith((CALL, PIECE)):
        if _is_op(node):
            op = node
        node = node.cpu_parent
    return op


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
                where = _where(by, memo) if by is not None else (_call_at(calls, e.time_range.start), None, None)
                found.append((e, where, _launching_op(by) if by is not None else None))
    else:
        found = [(e, _where(e, memo), e) for e in cpu if _is_op(e) and _outermost(e)]
    counts: dict[tuple[Any, str], int] = {}
    last: dict[tuple[Any, str], int] = {}   # the op event each key's latest ordinal came from
    kernels = []
    for e, (call, piece, run), op in sorted(found, key=lambda f: f[0].time_range.start):
        if call is None:
            continue
        key = launch_key(e.name, op) if cuda else kernel_key(e.name)
        k = (run if run is not None else ("call", call), key)
        # an op that launches several kernels (a GEMM and its split-K reduction) is one call site
        if op is None or not cuda or last.get(k) != id(op):
            counts[k] = counts.get(k, -1) + 1
        last[k] = id(op)
        kernels.append(Kernel(e.name, call, piece, counts[k], e.time_range.start, e.time_range.end, key))
    return Run(calls, pieces, kernels, {})


def _call_at(calls: dict[int, tuple[float, float]], t: float) -> int | None:
    return next((i for i, (a, b) in calls.items() if a <= t <= b), None)
