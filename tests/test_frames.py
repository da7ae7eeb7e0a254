"""Python frames from the caller to Inductor's generated ``call``: vexplore's thin runtime path.

Without CUDA graphs the stitched code is called directly (no torch.fx lazy-forward stub, no
nn.Module ``__call__`` chain around the parent graph, no frame of the GraphRunner's own), so a
call of ``vx.compile(model)`` reaches Inductor's ``call`` through at most one frame more than
``torch.compile(model)`` on the same model and inputs (torch 2.13, the toy Llama: 14 frames for
torch.compile; 15 for strategy="full", whose single-output piece adds the unwrap, 14 for
piecewise, counting ``call`` itself; before the thin path: 21 and 20).
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import pytest
import torch

import vexplore as vx
from vexplore.models import ToyLlama


def _is_inductor_call(frame: Any) -> bool:
    """Inductor's generated ``call``: a function named ``call`` in a module of Inductor's output code
    (each such module imports ``AsyncCompile`` and binds ``empty_strided_cpu`` at its top)."""
    g = frame.f_globals
    return frame.f_code.co_name == "call" and "AsyncCompile" in g and "empty_strided_cpu" in g


def frames_to_inductor(fn: Callable[..., Any], *args: Any) -> list[str]:
    """The Python frames between this caller and the first Inductor ``call`` that ``fn(*args)`` reaches,
    ``call`` included, outermost first."""
    me = sys._getframe()
    found: list[list[str]] = []

    def prof(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and not found and _is_inductor_call(frame):
            chain, f = [], frame
            while f is not None and f is not me:
                chain.append(f"{f.f_code.co_name} ({f.f_code.co_filename.rsplit('/', 1)[-1]})")
                f = f.f_back
            assert f is me, "the probe lost its caller"
            found.append(chain[::-1])

    sys.setprofile(prof)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    assert found, "no Inductor call was reached"
    return found[0]


@pytest.fixture(scope="module")
def model_and_inputs():
    torch.manual_seed(0)
    m = ToyLlama(layers=2, dim=16, heads=2, ffn=32, vocab=32).eval()
    return m, m.example_inputs(4)


@pytest.fixture(scope="module")
def torch_frames(model_and_inputs) -> list[str]:
    m, x = model_and_inputs
    torch._dynamo.reset()
    with torch.no_grad():
        cm = torch.compile(m)
        cm(*x)
        cm(*x)
        return frames_to_inductor(cm, *x)


def _vexplore_frames(model_and_inputs, strategy: str) -> list[str]:
    m, x = model_and_inputs
    cm = vx.compile(m, vx.CompileConfig(strategy=strategy, cudagraph="none", cache=vx.CacheConfig(tiers=("memory",))),
                    session=vx.Session())
    with torch.no_grad():
        cm(*x)   # compiles (the first run is timed through a wrapper)
        cm(*x)
        frames = frames_to_inductor(cm, *x)
    assert cm.report.strategy == strategy
    return frames


def test_full_within_one_frame_of_torch_compile(model_and_inputs, torch_frames) -> None:
    ours = _vexplore_frames(model_and_inputs, "full")
    print(f"\ntorch.compile {len(torch_frames)} frames, vexplore full {len(ours)}:\n  " + "\n  ".join(ours))
    assert len(ours) <= len(torch_frames) + 1, (torch_frames, ours)
    assert not any(n.startswith(("_lazy_forward", "call_wrapped", "_call_impl", "_wrapped_call_impl")) for n in ours), ours


def test_piecewise_within_one_frame_of_torch_compile(model_and_inputs, torch_frames) -> None:
    ours = _vexplore_frames(model_and_inputs, "piecewise")
    print(f"\ntorch.compile {len(torch_frames)} frames, vexplore piecewise {len(ours)}:\n  " + "\n  ".join(ours))
    assert len(ours) <= len(torch_frames) + 1, (torch_frames, ours)


def test_runner_repoints_without_a_frame() -> None:
    from vexplore.engine.runtime.stitch import GraphRunner

    a, b = GraphRunner(lambda v: v + 1), GraphRunner(lambda v: v * 10)
    assert a(1) == 2 and b(1) == 10   # each runner has its own target
    f = a.fn
    a.fn = lambda v: v - 1
    assert a(1) == 0 and b(1) == 10 and a.fn is not f and isinstance(a, GraphRunner)
