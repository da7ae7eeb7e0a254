"""bench/traceevents.analyse on CUDA events as torch.profiler gave them on an H100 (torch 2.11): a tiny model
cut at vxtest::mix, one call in a "vexplore call 0" range around a "vexplore piece 7" range, without CUDA
graphs and with a full graph (benchmarks/gpu/profile_events.py, tests/data/h100-profile-events.json).

What the dump showed: a device event carries the id of the CUDA runtime call that launched it
(cudaLaunchKernel, cudaGraphLaunch, cudaMemcpyAsync), whose parent is the op (or range) around the launch;
CPU ops count ids on their own (an aten op and a runtime call share id 19); FunctionEvent has no
linked_correlation_id; the ranges are repeated on the device track as annotations."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from torch.autograd import DeviceType

from vexplore.bench.traceevents import analyse

DUMP = os.path.join(os.path.dirname(__file__), "data", "h100-profile-events.json")


def _events(case: str) -> list:
    """The dump's events as FunctionEvent-like objects; a CPU event's parent is the last CPU event before
    it of its parent's name (the dump lists parents before children)."""
    out, last = [], {}
    for e in json.loads(Path(DUMP).read_text())[case]["events"]:
        cpu = e["dev"].endswith("CPU")
        ev = SimpleNamespace(name=e["name"], id=e["id"], device_type=DeviceType.CPU if cpu else DeviceType.CUDA,
                             cpu_parent=last.get(e["parent"]) if cpu and e["parent"] else None,
                             is_user_annotation=bool(e["ann"]), time_range=SimpleNamespace(start=e["start"], end=e["end"]))
        if cpu:
            last[e["name"]] = ev
        out.append(ev)
    return out


def test_kernels_find_their_piece_through_the_runtime_call_that_launched_them():
    run = analyse(_events("none"), cuda=True)
    assert len(run.kernels) == 8          # 3 GEMMs, relu, arange, cumsum, div, add: no range counted as a kernel
    assert {(k.call, k.piece) for k in run.kernels} == {(0, 7)}
    assert [k.name.split("<")[0].split("(")[0].strip() for k in run.kernels][:2] == ["void gemmSN_TN_kernel", "void at::native::vectorized_elementwise_kernel"]


def test_a_graph_launch_gives_every_kernel_of_the_graph_its_range():
    run = analyse(_events("full"), cuda=True)
    names = [k.name for k in run.kernels]
    assert len(names) == 10               # the input copy, 8 kernels of one cudaGraphLaunch, the output copy
    assert names[0].startswith("void at::native::(anonymous namespace)::multi_tens") and names[-1].startswith("Memcpy DtoD")
    assert {(k.call, k.piece) for k in run.kernels} == {(0, 7)}
    assert [k.ordinal for k in run.kernels if k.name.startswith("void gemmSN")] == [0, 1, 2]
