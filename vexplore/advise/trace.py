"""Detectors over what Dynamo did with the model's code: graph breaks, recompiles, recompile storms."""
from __future__ import annotations

import re
from typing import Any

from ..engine import _torch_compat as tc
from ..engine.explain import STORM_AT
from .advice import Advice, Context



def graph_break(ctx: Context) -> list[Advice]:
    """One advice per line of the model's code where Dynamo broke the graph."""
    by_frame: dict[str, list[Any]] = {}
    for b in ctx.cm.graph_breaks:
        by_frame.setdefault(b.frame, []).append(b)
    out = []
    for frame, breaks in by_frame.items():
        b = breaks[0]
        graphs = [x.graph for x in breaks if x.graph is not None]
        code = f" (`{b.code}`)" if b.code else ""
        ends = f"graph {graphs[0]} ends there and the next graph resumes after it" if graphs else "a graph ends there"
        out.append(Advice(
            "graph-break", "warning",
            f"Graph break at {frame}{code}: {b.reason}. Dynamo cannot trace this line, so {ends}: no fusion across "
            f"it and a return to Python on every call. {break_fix(b.reason, b.detail)}",
            {"frame": frame, "reason": b.reason, "code": b.code, "graphs": graphs, "count": len(breaks)}))
    return out


def break_fix(reason: str, detail: str) -> str:
    """What to change for a break, by Dynamo's reason (its own first hint otherwise)."""
    low = reason.lower()
    if "data-dependent" in low or "generic_jump" in low:
        return ("Make the branch tensor code: torch.where(cond, a, b) computes both sides in one graph, "
                "torch.cond(pred, true_fn, false_fn, (x,)) keeps one graph and runs one side.")
    if "graph_break()" in reason:
        return "Remove the torch._dynamo.graph_break() call."
    if ".item()" in detail or "tensor.item" in low:
        option = tc.dynamo_config_name("capture_scalar_outputs")
        return ("Keep the value a tensor instead of reading it into Python (.item())"
                + (f", or set {option} = True." if option else "."))
    hint = re.search(r"Hint:\s*(.+)", detail)
    return f"Dynamo's hint: {hint.group(1).strip()}" if hint else "Move this call out of the compiled model, or rewrite it with torch ops."


def recompile(ctx: Context) -> list[Advice]:
    """One advice per thing that changed: ``recompile`` for a few re-traces, ``recompile-storm`` from
    STORM_AT on or when Dynamo's recompile limit was hit (the code then runs eagerly: critical)."""
    by_name: dict[str, list[Any]] = {}
    for r in ctx.cm.recompiles:
        by_name.setdefault(r.name or r.guard, []).append(r)
    out = []
    for name, rs in by_name.items():
        limit = any(r.limit_hit for r in rs)
        storm = limit or len(rs) >= STORM_AT
        frame = next((r.frame for r in rs if r.frame), None)
        where = f" at {frame}" if frame else ""
        graphs = [r.graph for r in rs if r.graph is not None]
        evidence = {"name": name, "recompiles": len(rs), "frame": frame, "guards": [r.guard for r in rs[:3]],
                    "graphs": graphs, "limit_hit": limit, "recompile_limit": tc.dynamo_config("recompile_limit")}
        if storm:
            tail = ("Dynamo's recompile limit was hit: this code now runs eagerly, uncompiled, on every call. "
                    if limit else "Each new value traces and compiles a graph again. ")
            msg = f"{name}{where} changed on {len(rs)} calls, and each re-traced the model. {tail}"
        else:
            msg = f"{name}{where} changed and the model was traced again ({rs[0].reason}). "
        out.append(Advice("recompile-storm" if storm else "recompile", "critical" if limit else "warning",
                          msg + recompile_fix(name, rs[0].guard, _dims_key(name, rs[0].detail)), evidence))
    return out


def _dims_key(name: str, detail: str) -> str:
    """How ``dynamic_dims`` names the input: its position when the model got it positionally
    (Dynamo's own guard reads ``args[i]``), else its keyword name."""
    at = re.search(r"(?<![\w.])args\[(\d+)\]", detail or "")
    return at.group(1) if at else repr(name)


def recompile_fix(name: str, guard: str, dims_key: str | None = None) -> str:
    """What to change, by what the guard is about (``dims_key``: the input as dynamic_dims names it)."""
    value = guard.split("==", 1)[1].strip() if "==" in guard else ""
    if name.startswith("len("):
        return "Pass the arguments the same way (by position or by keyword) at every call."
    if guard.startswith("tensor") and "size mismatch at index" in guard:
        dim = re.search(r"index (\d+)", guard)
        return (f"Its size changed at dim {dim.group(1) if dim else '?'}: mark that dim dynamic before the first call, "
                f"vx.CompileConfig(dynamic_dims={{{dims_key or repr(name)}: {dim.group(1) if dim else 0}}}), so one graph "
                "serves every size.")
    if guard.startswith("tensor"):
        return "Pass tensors of the same dtype, device and layout at every call."
    if "." in name and re.fullmatch(r"-?\d+", value):
        option = tc.dynamo_config_name("allow_unspec_int_on_nn_module")
        return (f"{name} is a Python int on a module, and Dynamo compiles it as a constant. Make it a tensor "
                f"(register_buffer('{name.rsplit('.', 1)[1]}', torch.zeros((), dtype=torch.long)) and update it in place)"
                + (f", or set {option} = True before the first call." if option else "."))
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?|-?inf|nan", value):
        option = tc.dynamo_config_name("specialize_float") if tc.dynamo_config("specialize_float") else None
        extra = f" or set {option} = False;" if option else ""
        return (f"{name} is a Python float, and Dynamo compiled the first value ({value}) as a constant. Pass it as a "
                f"tensor (torch.tensor({value})) so one graph serves every value;{extra} or keep it constant.")
    if re.fullmatch(r"-?\d+", value):
        return (f"{name} is a Python int, and Dynamo compiled the first value ({value}) as a constant. Pass it as a "
                "tensor, or keep it constant.")
    return f"Dynamo's guard was `{guard}`: keep what it checks the same from call to call."
