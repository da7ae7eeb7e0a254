"""Validation: each compiled piece against eager PyTorch on the same (real) inputs."""
from __future__ import annotations

from typing import Any, Callable

import torch


def tolerance(dtype: torch.dtype) -> float:
    return 2e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-3


def _flat(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [y for v in x for y in _flat(v)]
    return [x]


def max_rel_err(got: Any, want: Any) -> float:
    """max |got - want| / max |want| over every tensor in the outputs (0 for equal outputs)."""
    err = 0.0
    for g, w in zip(_flat(got), _flat(want)):
        if isinstance(w, torch.Tensor) and isinstance(g, torch.Tensor) and w.numel():
            g64, w64 = g.detach().double(), w.detach().double()
            scale = max(w64.abs().max().item(), 1e-6)
            err = max(err, (g64 - w64).abs().max().item() / scale)
    return err


def compare(got: Any, want: Any) -> tuple[str, float | None]:
    """("ok ..." | "mismatch: ...", max relative error) for one piece's outputs."""
    gs, ws = _flat(got), _flat(want)
    if len(gs) != len(ws):
        return f"mismatch: {len(gs)} outputs, eager gives {len(ws)}", None
    for i, (g, w) in enumerate(zip(gs, ws)):
        if isinstance(w, torch.Tensor):
            if not isinstance(g, torch.Tensor):
                return f"mismatch: output {i} is {type(g).__name__}, eager gives a tensor", None
            if g.shape != w.shape or g.dtype != w.dtype:
                return (f"mismatch: output {i} is {tuple(g.shape)} {g.dtype}, eager gives "
                        f"{tuple(w.shape)} {w.dtype}"), None
    err = max_rel_err(got, want)
    tol = max((tolerance(w.dtype) for w in ws if isinstance(w, torch.Tensor)), default=1e-3)
    if err > tol:
        return f"mismatch: max relative error {err:.3g} > {tol:g}", err
    return f"ok (max rel err {err:.2g})", err


def validate_pieces(runners: dict[str, Callable[..., Any]], inputs: dict[str, tuple],
                    outputs: dict[str, Any]) -> dict[str, tuple[str, float | None]]:
    """Run each compiled piece on the inputs eager gave it; compare with eager's outputs."""
    result = {}
    with torch.no_grad():
        for name, fn in runners.items():
            try:
                got = fn(*inputs[name])
            except Exception as e:
                result[name] = (f"mismatch: raised {type(e).__name__}: {str(e)[:200]}", None)
                continue
            result[name] = compare(got, outputs[name])
    return result
