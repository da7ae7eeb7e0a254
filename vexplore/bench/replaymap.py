"""Kernels of CUDA-graph replays mapped to pieces by the kernel order of a call without graphs.

A replay launches all of a graph's kernels with one ``cudaGraphLaunch``: the profiler sees each
kernel, but the CPU op that launched them is the call itself, never a piece's range, so those
kernels have no piece. The kernels a replay runs are the kernels its capture recorded, in the
same order: the compiled pieces' own kernels (a full capture records the whole graph as run
without graphs; a piecewise capture each piece, the split ops running eagerly between). So one
*reference* call of the same graphs run without CUDA graphs, each piece in its profiler range
(bench/profile.py), gives the order: kernel names of a replayed call are aligned with the
reference call's by difflib's longest matching blocks (copies and fills by kind: a graph's
memcpy and memset nodes are named otherwise when replayed), and a matched kernel takes the piece,
the call-site ordinal and the code key (the op that launched a library kernel) of its reference kernel. What does not match (the copies into a graph's
input buffers, a split op's output copied for want of an out variant) keeps no piece and counts
against ``attributed_share``.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Sequence

from .kernelmap import kernel_key
from .traceevents import Kernel, Run


def assign(run: Run, reference: Run) -> Run:
    """``run`` with the pieceless kernels of each call given the piece of the kernel at the same place
    in ``reference``'s first call (see the module docstring); calls whose kernels all have pieces,
    and a reference without kernels, leave ``run`` as it was."""
    template = _first_call(reference.kernels)
    if not template:
        return run
    names = [_align_key(k.name) for k in template]
    out: list[Kernel] = []
    for call in sorted({k.call for k in run.kernels}):
        ks = [k for k in run.kernels if k.call == call]
        out.extend(_aligned(ks, template, names) if any(k.piece is None for k in ks) else ks)
    return dataclasses.replace(run, kernels=sorted(out, key=lambda k: k.start))


def _align_key(name: str) -> str:
    """The name a kernel is aligned by. A copy or fill a capture recorded is a memcpy or memset node of
    the graph, which the profiler names otherwise in a replay ("memcpy32_post", "Memset (Unknown)")
    than in the call that ran it ("Memcpy DtoD (Device -> Device)", "Memset (Device)")."""
    low = name.lower()
    if low.startswith("memcpy"):
        return "memcpy"
    if low.startswith("memset"):
        return "memset"
    return kernel_key(name)


def _first_call(kernels: Sequence[Kernel]) -> list[Kernel]:
    calls = sorted({k.call for k in kernels})
    return [k for k in kernels if k.call == calls[0]] if calls else []


def _aligned(ks: list[Kernel], template: list[Kernel], names: list[str]) -> list[Kernel]:
    mine = [_align_key(k.name) for k in ks]
    match = difflib.SequenceMatcher(None, mine, names, autojunk=False)
    out = list(ks)
    for a, b, size in match.get_matching_blocks():
        for j in range(size):
            k, ref = ks[a + j], template[b + j]
            if k.piece is None:
                out[a + j] = dataclasses.replace(k, piece=ref.piece, ordinal=ref.ordinal, key=ref.code_key)
    return out
