"""PyTorch's inference fast path for stock attention modules, off while vexplore traces and runs.

In eval() under no_grad, nn.TransformerEncoderLayer and nn.MultiheadAttention take a fast path:
one opaque ``_transformer_encoder_layer_fwd`` (or ``_native_multi_head_attention``)
call per layer. Traced that way, a stock encoder is one piece of a few opaque nodes: nothing to
split at attention, nothing to see. With the fast path off they run their decomposed path
(linears, ``multi_head_attention_forward``, layer norms), which the default split ops cut at.
Dynamo guards on the flag, so it stays off for every call of the compiled model, not only the
first; eager calls of the model outside vexplore keep it.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch

from ...monitor.report import CompileWarning

_FAST_PATH_MODULES = (torch.nn.MultiheadAttention, torch.nn.TransformerEncoderLayer)


def fast_path_modules(model: Callable[..., Any]) -> tuple[str, ...]:
    """The stock module classes in ``model`` that have a fast path (empty for other callables)."""
    if not isinstance(model, torch.nn.Module):
        return ()
    return tuple(sorted({type(m).__name__ for m in model.modules() if isinstance(m, _FAST_PATH_MODULES)}))


@contextlib.contextmanager
def fast_path_off() -> Iterator[None]:
    """Turn PyTorch's MHA fast path off for the block, restoring what it was."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def fast_path_warning(classes: tuple[str, ...], graph: int) -> CompileWarning:
    """What the report says when the fast path was turned off for this model."""
    return CompileWarning(
        "fast_path", f"graph {graph}: PyTorch's inference fast path of {', '.join('nn.' + c for c in classes)} "
        "(one opaque _transformer_encoder_layer_fwd / _native_multi_head_attention call per layer) is off "
        "while vexplore traces and runs this model, so the graph shows each layer's attention and the split ops "
        "find it. Calls of the model outside vexplore keep the fast path.", graph)
