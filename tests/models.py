"""Tiny models for the tests, each cut at a torch.library custom op."""
from __future__ import annotations

import inspect

import torch
from torch import nn

import vexplore as vx


@torch.library.custom_op("vxtest::mix", mutates_args=())
def mix(x: torch.Tensor) -> torch.Tensor:
    """A stand-in for attention: mixes tokens (a causal running mean), so it must stay eager."""
    n = torch.arange(1, x.shape[0] + 1, device=x.device, dtype=x.dtype).unsqueeze(-1)
    return x.cumsum(0) / n


@mix.register_fake
def _mix_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def _mix_backward(ctx, grad: torch.Tensor) -> torch.Tensor:
    # y[i] = sum_{j<=i} x[j] / (i+1), so dx[j] = sum_{i>=j} grad[i] / (i+1): a reversed cumsum
    n = torch.arange(1, grad.shape[0] + 1, device=grad.device, dtype=grad.dtype).unsqueeze(-1)
    return (grad / n).flip(0).cumsum(0).flip(0)


mix.register_autograd(_mix_backward)


@torch.library.custom_op("vxtest::pair", mutates_args=())
def pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x * 2, x + 1


@pair.register_fake
def _pair_fake(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty_like(x), torch.empty_like(x)


@torch.library.custom_op("vxtest::scale", mutates_args=())
def scale(x: torch.Tensor, s: float) -> torch.Tensor:
    return x * s


@scale.register_fake
def _scale_fake(x: torch.Tensor, s: float) -> torch.Tensor:
    return torch.empty_like(x)


class Layer(nn.Module):
    def __init__(self, dim: int = 16, act: str = "relu") -> None:
        super().__init__()
        self.up, self.down, self.act = nn.Linear(dim, dim), nn.Linear(dim, dim), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        h = torch.relu(h) if self.act == "relu" else torch.tanh(h)
        return x + torch.ops.vxtest.mix(self.down(h))


class Stack(nn.Module):
    """``layers`` Layers, then a head: 2*layers+1 pieces when cut at vxtest::mix."""

    def __init__(self, layers: int = 3, dim: int = 16, acts: list[str] | None = None) -> None:
        super().__init__()
        acts = acts or ["relu"] * layers
        self.layers = nn.ModuleList(Layer(dim, a) for a in acts)
        self.head = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class _TwoLinear(nn.Module):
    """Two dim x dim linears, ``a`` before the op under test and ``b`` after it."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(dim, dim), nn.Linear(dim, dim)


class Twin(_TwoLinear):
    """Two consecutive split ops (mix then pair) and a getitem after the multi-output one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ops.vxtest.mix(self.a(x))
        p, q = torch.ops.vxtest.pair(h)
        return self.b(p) * q


class Breaks(_TwoLinear):
    """A graph break in the middle (torch._dynamo.graph_break), so Dynamo captures two graphs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        torch._dynamo.graph_break()
        return torch.ops.vxtest.mix(self.b(h)) + 1


class Failing(_TwoLinear):
    """Calls vxtest::scale (or ``op``), which Inductor cannot lower under implicit_fallbacks=False.

    Inductor keeps one lowering registry per process: once any compile in the process lowered an
    op with implicit_fallbacks on, it registered a fallback lowering for it, and every later
    compile with implicit_fallbacks off succeeds (torch.compile does the same). A test that needs
    a real lowering failure passes an op of ``UNLOWERED`` that no other test compiles.
    """

    def __init__(self, dim: int = 16, op: str = "scale") -> None:
        super().__init__(dim)
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        h = getattr(torch.ops.vxtest, self.op)(h, 2.0)
        return torch.tanh(self.b(h)) + 1


def _unlowered(name: str) -> None:
    """``vxtest::<name>``: x * s, for one test's real Inductor lowering failure (see Failing)."""
    def impl(x: torch.Tensor, s: float) -> torch.Tensor:
        return x * s

    op = torch.library.custom_op(f"vxtest::{name}", impl, mutates_args=())
    op.register_fake(lambda x, s: torch.empty_like(x))


# one op per test that needs Inductor to fail to lower it: each is compiled by that test alone
UNLOWERED = ("unlowered_isolate", "unlowered_raise", "unlowered_partial", "unlowered_advice")
for _name in UNLOWERED:
    _unlowered(_name)


def _in_worker() -> bool:
    import os
    return os.environ.get("VEXPLORE_WORKER") == "1"


@torch.library.custom_op("vxtest::slow", mutates_args=())
def slow(x: torch.Tensor) -> torch.Tensor:
    return x + 1


@slow.register_fake
def _slow_fake(x: torch.Tensor) -> torch.Tensor:
    """Hangs while a compile worker traces it: a compile that never ends, for the timeout test."""
    if _in_worker():
        import time
        time.sleep(600)
    return torch.empty_like(x)


@torch.library.custom_op("vxtest::crash", mutates_args=())
def crash(x: torch.Tensor) -> torch.Tensor:
    return x - 1


@crash.register_fake
def _crash_fake(x: torch.Tensor) -> torch.Tensor:
    """Kills its process with SIGSEGV while a compile worker traces it: a real crash."""
    if _in_worker():
        import os
        import signal
        os.kill(os.getpid(), signal.SIGSEGV)
    return torch.empty_like(x)


class Calls(nn.Module):
    """Linear -> ``op`` -> linear, cut at vxtest::mix after it: two compiled pieces."""

    def __init__(self, op: str, dim: int = 16) -> None:
        super().__init__()
        self.a, self.b, self.op = nn.Linear(dim, dim), nn.Linear(dim, dim), op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = getattr(torch.ops.vxtest, self.op)(torch.relu(self.a(x)))
        return self.b(torch.ops.vxtest.mix(h)) + 1


class Noisy(_TwoLinear):
    """Adds noise before the split op: compiled and eager runs of that piece really differ."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x) + torch.rand_like(x)
        return self.b(torch.ops.vxtest.mix(h))


@torch.library.custom_op("vxtest::mix_into", mutates_args=("out",))
def mix_into(x: torch.Tensor, out: torch.Tensor) -> None:
    """vxtest::mix writing into a preallocated output (as serving engines' attention does)."""
    out.copy_(mix(x))


@mix_into.register_fake
def _mix_into_fake(x: torch.Tensor, out: torch.Tensor) -> None:
    return None


class KVBuffer(nn.Module):
    """Writes a registered buffer in place at call time (a KV cache), then attends over all of it.

    ``kv`` starts random, so a write that is lost, or one that lands in the wrong rows, changes
    the output; ``calls`` counts calls, so a call that ran twice shows.
    """

    def __init__(self, dim: int = 16, slots: int = 64) -> None:
        super().__init__()
        self.q, self.k, self.o = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.register_buffer("kv", torch.randn(slots, dim))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        self.kv.index_copy_(0, pos, self.k(x))
        self.calls.add_(1)
        return x + self.o(_attend(self.q(x), self.kv))


class KVArgument(nn.Module):
    """The same, with the cache passed by the caller at every call (Hugging Face's StaticCache)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.q, self.k, self.o = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
        cache[pos] = self.k(x)
        return x + self.o(_attend(self.q(x), cache))


def _attend(q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Single-head attention of the tokens over every cache row (the default split op)."""
    out = torch.nn.functional.scaled_dot_product_attention(q[None, None], kv[None, None], kv[None, None])
    return out[0, 0]


class IntoBuffer(_TwoLinear):
    """A split op that writes its result into a buffer the compiled piece before it allocated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        out = torch.empty_like(h)
        torch.ops.vxtest.mix_into(h, out)
        return self.b(out) + 1


@torch.library.custom_op("vxtest::colmajor", mutates_args=())
def colmajor(x: torch.Tensor) -> torch.Tensor:
    """Returns a column-major tensor while its fake kernel promises a row-major one: a real bug
    class (a fake kernel that disagrees with the real one) that compiles and fails only when
    Inductor's generated code asserts the strides it was promised."""
    if not torch.isfinite(x).all():
        raise ValueError("vxtest::colmajor: input holds inf or nan")   # fails eagerly too: the call's fault
    return (x * 2).t().contiguous().t()


@colmajor.register_fake
def _colmajor_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


class BadFake(nn.Module):
    """linear -> vxtest::colmajor -> relu; with ``counts`` it also adds 1 to a buffer in place."""

    def __init__(self, dim: int = 16, counts: bool = False) -> None:
        super().__init__()
        self.a = nn.Linear(dim, dim)
        self.register_buffer("calls", torch.zeros(1) if counts else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls is not None:
            self.calls.add_(1)
        return torch.relu(torch.ops.vxtest.colmajor(self.a(x))) + 1


@torch.library.custom_op("vxtest::syncs", mutates_args=())
def syncs(x: torch.Tensor) -> torch.Tensor:
    """Reads a value back to the CPU (``.item()``): runs anywhere, but a CUDA graph cannot capture it."""
    return x + 0.0 * float(x.abs().max().item())


@syncs.register_fake
def _syncs_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class Block(nn.Module):
    """A residual MLP block: x + down(gelu(up(norm(x)))), 5 graph nodes."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.norm, self.up, self.down = nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(nn.functional.gelu(self.up(self.norm(x))))


class Blocks(nn.Module):
    """``n`` identical residual blocks and a head: 5 * n + 1 nodes."""

    def __init__(self, n: int = 12, dim: int = 16) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim) for _ in range(n))
        self.head = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.head(x)


# -- models that break the graph or recompile (test_explain, test_advise) ---------------------------
def line_of(fn, text: str) -> str:
    """``path:line`` of the first line of ``fn`` holding ``text``."""
    lines, first = inspect.getsourcelines(fn)
    return f"{inspect.getsourcefile(fn)}:{first + next(i for i, ln in enumerate(lines) if text in ln)}"


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if h.sum() > 0:
            return h * 2
        return h - 1


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        return self.a(x) * scale


class Counter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.step = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.step += 1
        return self.a(x) + self.step


def eager_cfg() -> vx.CompileConfig:
    return vx.CompileConfig(compiler="eager", cache=vx.CacheConfig(tiers=()))


class ReadsAfterBreak(_TwoLinear):
    """Reads a Python float after a graph break (``.item()``), prints it and scales by it: Inductor's
    tensorify pass asks Dynamo to trace again with the float specialized (TensorifyScalarRestartAnalysis)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ops.vxtest.mix(self.a(x))
        m = h.mean().item()
        print("mean=", round(m, 3))
        return self.b(h) * m


# -- Models whose re-traces Dynamo names in its own terms (tests/test_explain.py, test_advise_names.py) --------
SCALE = 0.5     # a global the model reads: Dynamo guards it as G['__import_models'].SCALE


class ReadsGlobal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) * SCALE


class Swappable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.act = nn.Linear(8, 8), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.a(x))


class TakesExtras(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, extras: dict) -> torch.Tensor:
        h = self.a(x)
        if "bias" in extras:
            h = h + extras["bias"]
        return h


class ValueAfterBreak(nn.Module):
    """Reads a float out of a tensor (a graph break), prints it rounded and scales by it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        m = h.mean().item()
        print("mean", round(m, 3))
        return h * m


class Remembers(nn.Module):
    """Keeps its last outputs in a list it appends to on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        self.seen.append(h.detach())
        if len(self.seen) > 100:
            self.seen.pop(0)
        return h
