"""InductorCompiler (standalone_compile), and how Inductor failures are described.

It turns a piece's GraphModule into a callable and, where it can, artifact bytes that ``load``
turns back into the same callable in another process. The eager "compiler" is the GraphModule
itself (CompilerManager hands it back as it is).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from ...config import CONSERVATIVE_INDUCTOR_OPTIONS
from ...errors import exception_chain
from .. import _torch_compat as tc
from .jobs import Attempt, Failure


class InductorCompiler:
    """torch._inductor.standalone_compile with the config's mode, inductor_options and post-grad passes."""

    def __init__(self, mode: str = "default", options: dict[str, Any] | None = None,
                 passes: Sequence[Any] = ()) -> None:
        self.mode, self.user_options = mode, dict(options or {})
        self.chain: Any = None
        if passes:   # imported only when used: it imports Inductor
            from ..split.passes import PassChain
            self.chain = PassChain(passes)

    def options(self, conservative: bool) -> dict[str, Any]:
        extra = dict(self.user_options)
        if self.chain is not None:   # the conservative rung keeps them: they are what the user asked for
            extra["post_grad_custom_post_pass"] = self.chain
        if conservative:
            extra.update(CONSERVATIVE_INDUCTOR_OPTIONS)
        return tc.inductor_options(self.mode, extra)

    def compile(self, gm: fx.GraphModule, inputs: Sequence[Any], fake_mode: Any | None,
                conservative: bool = False, grad: bool = False) -> Attempt:
        """A successful Attempt (``fn`` the compiled artifact; ``data`` None when it cannot be saved);
        Inductor's failure raises. The caller times it and says where it ran."""
        code: list[str] = []
        with tc.compile_scope(code):   # one compile at a time in this process, torch's globals put back after
            if self.chain is not None:
                self.chain.seen = []
            art = tc.standalone_compile(gm, inputs, self.options(conservative), fake_mode, grad)
            try:
                data = tc.artifact_bytes(art)
            except Exception:  # not serializable: still usable in this process
                data = None
            seen = tuple(self.chain.seen) if self.chain is not None else ()
        return Attempt("ok", art, data, code[-1] if code else None, pass_graphs=seen)

    def load(self, data: bytes) -> tuple[Callable[..., Any], str | None]:
        code: list[str] = []
        with tc.compile_scope(code):
            fn = tc.load_artifact(data)
        return fn, (code[-1] if code else None)


def pay_inductor_startup(device: str, dtype: torch.dtype) -> float:
    """Seconds of Inductor's one-time start-up in this process, paid by a one-op compile: its
    imports, the CPU ISA probe and C++ header build or Triton's start. Paid here, it is not
    charged to whichever variant happens to compile first."""
    import time

    gm = fx.symbolic_trace(lambda x: (x.sin() + 1,))
    t0 = time.perf_counter()
    InductorCompiler().compile(gm, [torch.randn(8, device=device, dtype=dtype)], None)
    return time.perf_counter() - t0


_TARGET = re.compile(r"target: ([A-Za-z_][\w.]*)")


def failing_target(exc: BaseException) -> str | None:
    """The op Inductor failed to lower, as an op name (``ns::op.overload``), from the exception chain.

    Inductor's LoweringException/MissingOperator* put ``target: ns.op.overload`` in their message.
    """
    for e in exception_chain(exc):
        m = _TARGET.search(str(e))
        if m:
            ns, _, rest = m.group(1).partition(".")
            return f"{ns}::{rest}" if rest else None
    return None


def classify(exc: BaseException) -> str:
    """out of memory | unsupported op / lowering error | timeout | post-grad pass error | other."""
    text = f"{type(exc).__name__}: {exc}".lower()
    chain_names = [type(e).__name__ for e in exception_chain(exc)]
    if "PostGradPassError" in chain_names:   # whatever the pass raised, the pass is what failed
        return "post-grad pass error"
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "OutOfMemoryError" in chain_names:
        return "out of memory"
    if "timeout" in text or "TimeoutError" in chain_names:
        return "timeout"
    if any(n in ("LoweringException", "MissingOperatorWithoutDecomp", "MissingOperatorWithDecomp",
                 "NotImplementedError", "Unsupported") for n in chain_names) or "lowering" in text:
        return "unsupported op / lowering error"
    return "other"


def describe(exc: BaseException) -> str:
    """``category: ExcClass: first line`` for a piece's fallback_reason."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{classify(exc)}: {type(exc).__name__}: {first[:200]}"


def failure(exc: BaseException) -> Failure:
    """An Inductor failure as fields, read off the exception chain once, where it was caught."""
    return Failure(classify(exc), cause(exc), failing_target(exc))


def cause(exc: BaseException) -> str | None:
    """What the user can fix behind ``exc``: "c++ compiler" | "triton" | "inductor options" | None."""
    text = " ".join([describe(exc)] + [type(e).__name__ for e in exception_chain(exc)]).lower()
    if "cxx" in text or "c++ compiler" in text or "cppcompileerror" in text:
        return "c++ compiler"
    if "triton" in text:
        return "triton"
    if "inductor_options" in text or "config" in text:
        return "inductor options"
    return None
