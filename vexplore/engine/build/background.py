"""The graph compiled whole off the call path (``CompileConfig(cudagraph_whole="background")``).

With ``cudagraph_whole=True`` the graph compiled whole (pipeline._whole) is built inside the call
that compiles the graph: one more Inductor compile of every layer on the first call (+3.4 s of
7.3 s for the toy Llama's 8 layers on an H100, benchmarks/README.md). ``"background"`` builds it in
a thread instead, started as that compile ends: the full CUDA graphs replay the stitched pieces
meanwhile, and the graph's runtime takes the whole graph at its first call after it is ready
(runtime/replay.py: each full size is captured again with it at that size's next call).

The thread builds under Dynamo's compile lock, as every compile in this process does (so it begins
once the compiling call releases the lock, and a capture or a Dynamo trace of the calls' thread
waits for it to end), through the same tiers (a second process finds it in the cache). It records
its events on a recorder of its own: the compile's report is made before it ends. What it costs
while it runs: the calls' Python waits on the interpreter lock the compile holds, so calls are
slower, not wrong, for the compile's seconds. ``CompiledModel.settle()`` waits for it (``vx.bench``
and ``cm.profile`` do, so no measurement mixes the two graphs).
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from ...cancel import CancelToken
from ...monitor.events import EventRecorder, SilentMonitor
from .. import _torch_compat as tc

Built = tuple[Any, list[Any]]   # pipeline._whole's (the _Whole or None, its warnings)


def quiet_recorder() -> EventRecorder:
    """A recorder for the background build's own events (``WholeLater.events``)."""
    return EventRecorder(SilentMonitor(), tc.compile_metrics)


class WholeLater:
    """The whole graph of one graph, built by ``build`` in a thread once ``start`` is called;
    ``result()`` when ``done()``: (its callable or None, the note to keep: what was built and how
    long it took, or why nothing was)."""

    def __init__(self, build: Callable[[], Built], graph: int, rec: EventRecorder, cancel: CancelToken | None = None
                 ) -> None:
        self._build, self.graph, self.rec = build, graph, rec
        self._done = threading.Event()
        self._out: tuple[Callable[..., Any] | None, str] = (None, "")
        # the compile's token: a compile cancelled after its graph's capture plan was made builds nothing whole
        self.cancel = cancel if cancel is not None else CancelToken()

    def start(self) -> "WholeLater":
        threading.Thread(target=self._run, name=f"vexplore-whole-{self.graph}", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            with tc.compile_lock():   # after the compiling call: it holds the lock until its compile ends
                if self.cancel.cancelled:
                    self._out = (None, f"graph {self.graph}: cudagraph_whole=\"background\": cancelled before it began")
                    return
                whole, warnings = self._build()
            if whole is None:
                text = "; ".join(getattr(w, "message", str(w)) for w in warnings)
                self._out = (None, text or f"graph {self.graph}: cudagraph_whole=\"background\": nothing to build")
            else:
                self._out = (whole.fn, f"{whole.note}, off the call path; each full size is captured again with it "
                                       "at its next call")
        except BaseException as e:   # noqa: BLE001 — the stitched pieces go on serving; the note says why
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            self._out = (None, f"graph {self.graph}: cudagraph_whole=\"background\": the whole graph's build failed "
                               f"({type(e).__name__}: {first}); full CUDA graphs replay the stitched pieces")
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the build (``timeout`` seconds at most; None: until it ends); True when it ended."""
        return self._done.wait(timeout)

    def result(self) -> tuple[Callable[..., Any] | None, str]:
        return self._out

    @property
    def events(self) -> tuple[Any, ...]:
        return tuple(self.rec.events)
