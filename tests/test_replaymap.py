"""bench/replaymap.py: kernels of CUDA-graph replays (no piece: the call launched them) mapped to pieces
by the kernel order of a reference call run without graphs. Synthetic kernels: exact."""
from __future__ import annotations

from vexplore.bench.replaymap import assign
from vexplore.bench.traceevents import Kernel, Run


def _k(name, call, piece, ordinal=0, start=0.0):
    return Kernel(name, call, piece, ordinal, start, start + 1.0)


def _run(kernels):
    return Run({}, [], kernels, {})


REF = _run([_k("triton_red_fused_mean_0", 0, 0, start=1), _k("sm90_gemm", 0, 0, start=2), _k("sm90_gemm", 0, 0, 1, start=3),
            _k("flash_fwd", 0, 1, start=4), _k("triton_poi_fused_add_1", 0, 2, start=5), _k("sm90_gemm", 0, 2, start=6)])


def test_replayed_kernels_take_the_reference_pieces_in_order():
    replay = [_k(k.name, c, None, start=10 * c + k.start) for c in (0, 1) for k in REF.kernels]
    got = assign(_run(replay), REF)
    assert [(k.call, k.piece, k.ordinal) for k in got.kernels] == [
        (c, p, o) for c in (0, 1) for p, o in ((0, 0), (0, 0), (0, 1), (1, 0), (2, 0), (2, 0))]


def test_kernels_the_reference_lacks_keep_no_piece():
    """A copy into a graph's input buffer before the replay, a split op's output copied after it."""
    names = ["Memcpy DtoD", "triton_red_fused_mean_0", "sm90_gemm", "sm90_gemm", "flash_fwd", "Memcpy DtoD",
             "triton_poi_fused_add_1", "sm90_gemm"]
    got = assign(_run([_k(n, 0, None, start=i) for i, n in enumerate(names)]), REF)
    assert [k.piece for k in got.kernels] == [None, 0, 0, 0, 1, None, 2, 2]


def test_calls_with_pieces_and_an_empty_reference_are_left_alone():
    own = _run([_k("sm90_gemm", 0, 3, start=1), _k("flash_fwd", 0, 4, start=2)])
    assert assign(own, REF) == own
    replay = _run([_k("sm90_gemm", 0, None)])
    assert assign(replay, _run([])) == replay


def test_a_graphs_copies_and_fills_match_by_kind():
    """A capture records a memcpy or memset node; its replay is named "memcpy32_post" or "Memset (Unknown)"
    where the reference call had "Memcpy DtoD (Device -> Device)" and "Memset (Device)"."""
    ref = _run([_k("triton_poi_fused_0", 0, 0, start=1), _k("Memcpy DtoD (Device -> Device)", 0, 0, start=2),
                _k("Memset (Device)", 0, 1, start=3), _k("sm90_gemm", 0, 1, start=4)])
    names = ["triton_poi_fused_0", "memcpy32_post", "Memset (Unknown)", "sm90_gemm"]
    got = assign(_run([_k(n, 0, None, start=i) for i, n in enumerate(names)]), ref)
    assert [k.piece for k in got.kernels] == [0, 0, 1, 1]


def test_library_kernels_are_keyed_by_the_op_that_launched_them():
    """A cuBLAS GEMM (``nvjet_sm90_...``) and its split-K reduction, launched by one ``aten::mm`` inside a piece:
    both are the code's ``mm`` call site 0, the next ``aten::mm`` site 1; a Triton kernel keeps its own name.
    Replayed kernels take the reference's key. Synthetic profiler events (CPU ranges, runtime calls, kernels)."""
    from types import SimpleNamespace as NS

    from torch.autograd import DeviceType
    from vexplore.bench.traceevents import analyse, launch_key

    call = NS(name="vexplore call 0", cpu_parent=None, device_type=DeviceType.CPU, time_range=NS(start=0, end=100), id=-1)
    piece = NS(name="vexplore piece 3", cpu_parent=call, device_type=DeviceType.CPU, time_range=NS(start=1, end=99), id=-2)
    events, t = [call, piece], 2
    for i, (op_name, kernels) in enumerate((("aten::mm", ("nvjet_sm90_hsh_x", "cublasLt::splitKreduce_kernel")),
                                            (None, ("triton_poi_fused_add_0",)), ("aten::mm", ("nvjet_sm90_hsh_x",)))):
        parent = piece
        if op_name:
            parent = NS(name=op_name, cpu_parent=piece, device_type=DeviceType.CPU, time_range=NS(start=t, end=t + 5), id=-10 - i)
            events.append(parent)
        for j, name in enumerate(kernels):
            rt = NS(name="cuLaunchKernel", cpu_parent=parent, device_type=DeviceType.CPU, time_range=NS(start=t, end=t + 1),
                    id=100 * i + j)
            events += [rt, NS(name=name, cpu_parent=None, device_type=DeviceType.CUDA, time_range=NS(start=t + 1, end=t + 2),
                              id=100 * i + j)]
            t += 3
    run = analyse(events, cuda=True)
    assert [(k.name[:14], k.piece, k.code_key, k.ordinal) for k in run.kernels] == [
        ("nvjet_sm90_hsh", 3, "mm", 0), ("cublasLt::spli", 3, "mm", 0), ("triton_poi_fus", 3, "triton_poi_fused_add_0", 0),
        ("nvjet_sm90_hsh", 3, "mm", 1)]
    assert launch_key("triton_poi_fused_add_0", events[2]) == "triton_poi_fused_add_0" and launch_key("x", None) == "x"
    replay = _run([_k(k.name, 0, None, start=k.start) for k in run.kernels])
    assert [(k.piece, k.code_key, k.ordinal) for k in assign(replay, run).kernels] == [
        (3, "mm", 0), (3, "mm", 0), (3, "triton_poi_fused_add_0", 0), (3, "mm", 1)]
