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
