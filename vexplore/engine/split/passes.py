"""Post-grad passes: ``CompileConfig.post_grad_passes`` as the one pass Inductor takes, and an example pass.

Inductor runs one ``post_grad_custom_post_pass`` on each piece's graph after AOTAutograd and
its own post-grad passes, just before lowering. ``PassChain`` runs the config's passes in order
as that one pass; its ``uuid()`` combines theirs, so Inductor's own cache keys it as vexplore's
cache key does (by uuid, never by repr). A pass that raises, or leaves a graph that fails
``Graph.lint()``, raises ``PostGradPassError`` naming it: the compile fails and the piece walks
the fallback ladder like any failed compile.

This module imports Inductor (about a second), so the engine imports it only when a config has passes.
"""
from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from typing import Any, Sequence

import torch
import torch.fx as fx

from ...config import pass_name, pass_uuid
from .. import _torch_compat as tc

# Inductor's base class of post-grad passes, for users to subclass: ``from vexplore.engine.split.passes import CustomGraphPass``.
CustomGraphPass: Any = tc.custom_graph_pass_base()


class PostGradPassError(RuntimeError):
    """A post-grad pass raised (or broke the graph) while Inductor compiled a piece."""


GRAPH_TEXT_LIMIT = 100_000    # characters of one graph's text kept for the explorer's before/after view


def graph_text(graph: fx.Graph) -> str:
    """The graph as FX prints it (one line per node), cut at GRAPH_TEXT_LIMIT characters."""
    text = str(graph)
    return text if len(text) <= GRAPH_TEXT_LIMIT else text[:GRAPH_TEXT_LIMIT] + f"\n... ({len(text) - GRAPH_TEXT_LIMIT} more characters)"


class PassChain(CustomGraphPass):
    """Several post-grad passes as the one Inductor's ``post_grad_custom_post_pass`` takes.

    ``seen`` keeps the graph of its latest call as the passes saw it: ("input", text) and then
    (pass name, text after it) per pass; the compiler clears it before each compile and reads it
    after (empty when Inductor's own cache served the compile: the passes did not run)."""

    def __init__(self, passes: Sequence[Any]) -> None:
        self.passes = tuple(passes)
        self.seen: list[tuple[str, str]] = []

    def __call__(self, graph: fx.Graph) -> None:
        self.seen = [("input", graph_text(graph))]
        for p in self.passes:
            try:
                p(graph)
                graph.lint()   # a broken rewrite is named here, not later somewhere in lowering
                self.seen.append((pass_name(p), graph_text(graph)))
            except Exception as e:
                first = (str(e).strip().splitlines() or [""])[0]
                uuid = (pass_uuid(p) or "")[:24]
                raise PostGradPassError(f"post-grad pass {pass_name(p)} (uuid {uuid}) raised {type(e).__name__}: {first}") from e

    def uuid(self) -> str:
        text = "\0".join(pass_uuid(p) or "" for p in self.passes)
        return "vexplore.PassChain:" + hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=None)
def source_uuid(cls: type) -> str:
    """A uuid that changes when ``cls``'s source does: ``qualname:sha256 of the source``."""
    try:
        text = inspect.getsource(cls)
    except (OSError, TypeError):   # no source (e.g. a frozen app): its qualified name stands in
        text = f"{cls.__module__}.{cls.__qualname__}"
    return f"{cls.__qualname__}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class AddSelfToMul(CustomGraphPass):
    """Rewrites ``aten.add.Tensor(x, x)`` (``h + h``, ``2 * h`` written as a sum) into ``aten.mul.Tensor(x, 2)``.

    A small, real example of a post-grad pass: the result is bit-for-bit the same (x + x and
    x * 2 round alike, for floats and ints), and the effect shows in the generated code: where
    the kernel added a value to itself (``tmp2 = tmp1 + tmp1``) it multiplies by a constant
    (``tmp2 = static_cast<float>(2.0)`` ... ``tmp4 = tmp1 * tmp3`` in C++ on CPU, ``2.0`` in
    Triton), and the kernel's name loses its ``add``. Bool tensors (where ``+`` is "or") and
    adds with ``alpha`` are left alone. Use it as a template: match nodes, insert the new one
    before the old one with the old one's ``meta["val"]``, replace its uses, erase it.
    """

    def __call__(self, graph: fx.Graph) -> None:
        add = torch.ops.aten.add.Tensor
        for n in list(graph.nodes):
            if n.op != "call_function" or n.target is not add or n.kwargs or len(n.args) != 2:
                continue
            x, y = n.args
            val = n.meta.get("val")
            if x is not y or not isinstance(x, fx.Node) or not isinstance(val, torch.Tensor) or val.dtype == torch.bool:
                continue
            with graph.inserting_before(n):
                mul = graph.call_function(torch.ops.aten.mul.Tensor, (x, 2))
            mul.meta["val"] = val
            n.replace_all_uses_with(mul)
            graph.erase_node(n)

    def uuid(self) -> str:
        return source_uuid(type(self))
