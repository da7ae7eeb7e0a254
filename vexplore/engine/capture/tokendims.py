"""Which input dims hold the token count: marked dynamic before Dynamo's first trace, so one
general compile serves every prompt length.

``CompileConfig.dynamic_dims`` names them, ``{position or keyword: dims}``
(``{"input_ids": (1,), 0: (0,)}``). Without it they are found from the first tensor input
(``input_ids`` where it is passed by keyword): dim 1 of an integer tensor of two or more dims
(the [batch, seq] ids Hugging Face models take), else dim 0 (flattened [tokens] ids, or
[tokens, hidden] activations); every other tensor input, positional or keyword, with that dim
of the same size is marked at it too (attention masks, position ids). A cache of another
length passed beside the tokens stays static.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ...errors import ConfigError


def _tensors(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[tuple[str, int | str, torch.Tensor]]:
    """(name in the graph, key in dynamic_dims, tensor) of every tensor input, in call order."""
    named = [(f"args[{i}]", i, a) for i, a in enumerate(args)] + [(k, k, v) for k, v in kwargs.items()]
    return [(n, k, t) for n, k, t in named if isinstance(t, torch.Tensor)]


def token_dims(args: tuple[Any, ...], kwargs: Mapping[str, Any],
               dynamic_dims: Mapping[int | str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Input name (``args[0]``, ``input_ids``) -> the dims to mark dynamic, for this call."""
    tensors = _tensors(args, kwargs)
    if dynamic_dims:
        return _given(tensors, dynamic_dims)
    primary = next((x for x in tensors if x[0] == "input_ids"), tensors[0] if tensors else None)
    if primary is None or primary[2].dim() == 0:
        return {}
    t = primary[2]
    d = 1 if t.dim() >= 2 and not (t.is_floating_point() or t.is_complex()) else 0
    count = t.shape[d]
    return {name: (d,) for name, _, x in tensors if x.dim() > d and x.shape[d] == count}


def _given(tensors: list[tuple[str, int | str, torch.Tensor]],
           dynamic_dims: Mapping[int | str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    passed = {key: (name, t) for name, key, t in tensors}
    out: dict[str, tuple[int, ...]] = {}
    for key, dims in dynamic_dims.items():
        if key not in passed:
            what = ", ".join(repr(k) for k in passed) or "no tensors"
            raise ConfigError(f"CompileConfig.dynamic_dims[{key!r}]: this call passes no tensor there "
                              f"(tensor inputs by position or keyword: {what}). Name an input the model "
                              f"is called with, e.g. {{'input_ids': 1}} or {{0: 0}}.")
        name, t = passed[key]
        bad = [d for d in dims if d >= t.dim()]
        if bad:
            raise ConfigError(f"CompileConfig.dynamic_dims[{key!r}]: {name} has {t.dim()} dims "
                              f"(shape {tuple(t.shape)}), no dim {bad[0]}.")
        out[name] = tuple(dims)
    return out
