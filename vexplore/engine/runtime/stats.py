"""The records CUDA graphs keep for one graph: counts over its calls (``GraphStats``) and, per
capture size, how that size is served and why (``SizeInfo``).

The size policy, admission, capture and replay modules write them; the report, the advisor and
tests read them as ``graph.graph_stats`` (``graph_stats.sizes[s].mode``, ``.reason``, ...). Code
branches on the codes (``mode``, ``reason``), never on the prose (``why``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .inputplan import SizeDecision


@dataclass(frozen=True)
class SizeInfo:
    """How one size is served: its mode, why, and the split ops whose result is copied."""

    mode: str                              # "full" | "piecewise" | "none" (not captured: runs without graphs)
    why: str
    copied: tuple[str, ...] = ()           # split ops without an out variant (one copy each per call)
    capture_s: float = 0.0
    memory_mb: float = 0.0                 # device memory the size's graphs and buffers hold
    estimate_mb: float = 0.0               # what capturemem estimated before capturing
    # what ``why`` says, as a code, where the size is not served as the config asked: mode "none":
    # "longer_than_cache" | "over_budget" | "capture_failed"; mode "piecewise": "full_failed" (the
    # config asked for a full capture, which failed); "" otherwise
    reason: str = ""


@dataclass
class GraphStats:
    """Counts over the calls of one compile; the report reads captures from the capture events."""

    captures: int = 0
    padded_calls: int = 0
    recaptures: int = 0          # sizes captured again because an input's address moved
    replays_by_size: dict[int | None, int] = field(default_factory=dict)     # capture size -> replays
    # a call's token count -> calls without a graph (sizes or other input shapes no graph serves)
    uncaptured_sizes: dict[int | None, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # why an input is copied rather than used in place
    sizes: dict[int | None, SizeInfo] = field(default_factory=dict)
    plan: dict[int | None, SizeDecision] = field(default_factory=dict)   # when each size is captured, and why
    whole: bool = False          # full captures replay the graph compiled whole (cudagraph_whole), not the pieces

    @property
    def replays(self) -> int:
        return sum(self.replays_by_size.values())

    @property
    def uncaptured_calls(self) -> int:
        return sum(self.uncaptured_sizes.values())

    def why_uncaptured(self, n: int | None) -> str:
        """Why calls of ``n`` tokens ran without a CUDA graph, in words (``uncaptured_sizes``' keys)."""
        info = self.sizes.get(n)
        if info is not None and info.mode == "none":
            return info.why
        captured = sorted(s for s, i in self.sizes.items() if s is not None and i.mode != "none")
        if n is None or n in captured:
            return ("the call's shapes differ from the capture's in a dim other than the token count (or an int "
                    "input changed): a graph replays only the shapes it was captured at")
        if captured and n > captured[-1]:
            return (f"{n} tokens is above the largest capture size ({captured[-1]}): add it to cudagraph_sizes "
                    "(and compile_sizes for a static compile)")
        return (f"{n} tokens is no capture size (captured: {', '.join(map(str, captured)) or 'none'}) and calls are not "
                "padded up to one (cudagraph_pad=False): add it to cudagraph_sizes")
