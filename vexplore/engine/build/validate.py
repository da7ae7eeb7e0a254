"""Validation against eager PyTorch on the same (real) inputs: per piece, and the whole graph.

What is compared is what the caller sees: outputs, every input the graph writes in place, and
(for a graph that runs with autograd) the gradients. Validation never changes the caller's
tensors: written inputs are copied before eager runs and restored after the compiled run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.fx as fx

from ..ops import op_name
from ..split.split import Split

# Ops whose result holds whatever the memory held: a piece returning one (a buffer a later
# split op writes into) is not compared.
_UNINITIALIZED = ("torch.empty", "torch.empty_like", "torch.empty_strided", "torch.Tensor.new_empty",
                  "torch.Tensor.new_empty_strided", "aten::empty", "aten::empty_like", "aten::empty_strided")


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


def compare(got: Any, want: Any, what: str = "output") -> tuple[str, float | None]:
    """("ok ..." | "mismatch: ...", max relative error) for one piece's outputs."""
    gs, ws = _flat(got), _flat(want)
    if len(gs) != len(ws):
        return f"mismatch: {len(gs)} {what}s, eager gives {len(ws)}", None
    for i, (g, w) in enumerate(zip(gs, ws)):
        if isinstance(w, torch.Tensor):
            if not isinstance(g, torch.Tensor):
                return f"mismatch: {what} {i} is {type(g).__name__}, eager gives a tensor", None
            if g.shape != w.shape or g.dtype != w.dtype:
                return (f"mismatch: {what} {i} is {tuple(g.shape)} {g.dtype}, eager gives "
                        f"{tuple(w.shape)} {w.dtype}"), None
    err = max_rel_err(got, want)
    tol = max((tolerance(w.dtype) for w in ws if isinstance(w, torch.Tensor)), default=1e-3)
    if err > tol:
        where = "" if what == "output" else f"{what}s: "
        return f"mismatch: {where}max relative error {err:.3g} > {tol:g}", err
    return f"ok (max rel err {err:.2g})", err


def _worst(*results: tuple[str, float | None]) -> tuple[str, float | None]:
    """The first mismatch among ``results``, else "ok" with the largest error."""
    bad = [r for r in results if r[0].startswith("mismatch")]
    if bad:
        return bad[0]
    err = max((e for _, e in results if e is not None), default=0.0)
    return f"ok (max rel err {err:.2g})", err


@dataclass(frozen=True)
class Reference:
    """What eager gave each piece (by name): its inputs before it ran, its outputs, and the
    state after it ran of the inputs it writes."""

    inputs: Mapping[str, tuple[Any, ...]]
    outputs: Mapping[str, Any]
    written: Mapping[str, tuple[Any, ...]]


class _Record(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule, written: Mapping[str, tuple[int, ...]]) -> None:
        super().__init__(gm)
        self.written = written
        self.inputs: dict[str, tuple[Any, ...]] = {}
        self.outputs: dict[str, Any] = {}
        self.after: dict[str, tuple[Any, ...]] = {}

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        name, idx = str(target), self.written.get(str(target), ())
        self.inputs[name] = tuple(a.clone() if i in idx else a for i, a in enumerate(args))
        out = super().call_module(target, args, kwargs)
        self.outputs[name] = out
        self.after[name] = tuple(args[i].clone() for i in idx)
        return out


def eager_reference(split: Split, real: Sequence[Any], graph_written: Mapping[int, Any],
                    piece_written: Mapping[str, tuple[int, ...]]) -> Reference:
    """Run the split graph's pieces eagerly on ``real`` (the inputs it writes copied first)."""
    ins = [x.clone() if i in graph_written else x for i, x in enumerate(real)]
    rec = _Record(split.gm, piece_written)
    with torch.no_grad():
        rec.run(*ins)
    return Reference(rec.inputs, rec.outputs, rec.after)


def uninitialized_outputs(piece: fx.GraphModule) -> tuple[int, ...]:
    """Positions of a piece's outputs made by an empty-like op (their contents are not defined)."""
    out = next(n for n in reversed(piece.graph.nodes) if n.op == "output")
    vals = out.args[0] if isinstance(out.args[0], (tuple, list)) else (out.args[0],)
    return tuple(i for i, v in enumerate(vals) if isinstance(v, fx.Node) and op_name(v).split(".default")[0] in _UNINITIALIZED)


def validate_pieces(runners: dict[str, Callable[..., Any]], ref: Reference, written: Mapping[str, tuple[int, ...]],
                    skip: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[str, float | None]]:
    """Run each compiled piece on the inputs eager gave it; compare its outputs (but those at
    ``skip``: uninitialized ones), and the inputs it writes, with eager's."""
    result = {}
    with torch.no_grad():
        for name, fn in runners.items():
            idx = written.get(name, ())
            args = [a.clone() if i in idx else a for i, a in enumerate(ref.inputs[name])]
            try:
                got = fn(*args)
            except Exception as e:
                result[name] = (f"mismatch: raised {type(e).__name__}: {str(e)[:200]}", None)
                continue
            want = ref.outputs[name]
            if skip.get(name):
                keep = [i for i in range(len(_flat(want))) if i not in skip[name]]
                got, want = [_flat(got)[i] for i in keep], [_flat(want)[i] for i in keep]
            result[name] = _worst(compare(got, want),
                                  compare([args[i] for i in idx], list(ref.written[name]), "written input"))
    return result


def validate_graph(gm: fx.GraphModule, stitched: Callable[..., Any], real: Sequence[Any],
                   written: Mapping[int, Any], grad: bool) -> str:
    """The stitched callable on the caller's own inputs (CUDA graphs use them in place) against
    the Dynamo graph run eagerly on copies; the written inputs are restored afterwards."""
    saved = {i: real[i].clone() for i in written}
    ins = [saved[i].clone() if i in written else x for i, x in enumerate(real)]
    with torch.set_grad_enabled(grad):
        want = gm(*ins)
        try:
            got = stitched(*real)
        except Exception as e:
            _restore(real, saved)
            return f"mismatch: raised {type(e).__name__}: {str(e)[:200]}"
    after = [real[i].clone() for i in written]
    _restore(real, saved)
    checks = [compare(got, want), compare(after, [ins[i] for i in written], "written input")]
    if grad:
        checks.append(_gradients(got, want, real))
    status, err = _worst(*checks)
    what = f"outputs, {len(written)} written inputs" + (", gradients" if grad else "")
    return status if status.startswith("mismatch") else f"{status[:-1]}; {what})"


def _restore(real: Sequence[Any], saved: Mapping[int, torch.Tensor]) -> None:
    with torch.no_grad():
        for i, t in saved.items():
            real[i].copy_(t)


def _gradients(got: Any, want: Any, real: Sequence[Any]) -> tuple[str, float | None]:
    """Gradients of the same random projection of both outputs w.r.t. the inputs that need them."""
    leaves = [x for x in real if isinstance(x, torch.Tensor) and x.requires_grad]
    pairs = [(g, w) for g, w in zip(_flat(got), _flat(want))
             if isinstance(w, torch.Tensor) and w.requires_grad and isinstance(g, torch.Tensor)]
    if not pairs or not leaves:
        return "ok (no gradients)", None
    if any(not g.requires_grad for g, _ in pairs):
        return "mismatch: an output carries no gradient where eager's does", None
    proj = [torch.randn_like(w) for _, w in pairs]
    gw = torch.autograd.grad([w for _, w in pairs], leaves, proj, retain_graph=False, allow_unused=True)
    gg = torch.autograd.grad([g for g, _ in pairs], leaves, proj, retain_graph=False, allow_unused=True)
    zero = [torch.zeros_like(x) for x in leaves]
    return compare([g if g is not None else z for g, z in zip(gg, zero)],
                   [w if w is not None else z for w, z in zip(gw, zero)], "gradient")
