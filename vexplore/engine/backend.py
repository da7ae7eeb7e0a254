"""VexBackend: the torch.compile backend ``vx.compile`` installs.

Dynamo hands it each graph it captures (one per trace: graph breaks and recompiles make
several); it hands the graph on through a callback (the CompiledModel's), which compiles it and
returns what Dynamo should call. It knows nothing of models or reports.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch.fx as fx

OnGraph = Callable[[fx.GraphModule, Sequence[Any]], Callable[..., Any]]


class VexBackend:
    """``torch.compile(fn, backend=VexBackend(on_graph))``."""

    def __init__(self, on_graph: OnGraph) -> None:
        self.on_graph = on_graph

    def __call__(self, gm: fx.GraphModule, example_inputs: Sequence[Any]) -> Callable[..., Any]:
        return self.on_graph(gm, example_inputs)
