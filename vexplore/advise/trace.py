"""Detectors over what Dynamo did with the model's code: graph breaks, recompiles, recompile storms."""
from __future__ import annotations

import re
from typing import Any

from ..engine import _torch_compat as tc
from ..engine.capture.explain import STORM_AT, size_one_guard
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
    STORM_AT on or when Dynamo's recompile limit was hit (the code then runs eagerly: critical).
    The documented decode trace is left out: the first 1-token call after longer ones traces a graph
    of its own once (Dynamo's 0/1 specialization; a KV cache filled by the prefill), by design."""
    by_name: dict[str, list[Any]] = {}
    for r in ctx.cm.recompiles:
        by_name.setdefault(r.name or r.guard, []).append(r)
    decode = decode_graph(ctx)
    out = []
    for name, rs in by_name.items():
        limit = any(r.limit_hit for r in rs)
        if len(rs) == 1 and not limit and decode is not None and rs[0].graph == decode:
            continue
        storm = limit or len(rs) >= STORM_AT
        frame = next((r.frame for r in rs if r.frame), None)
        where = f" at {frame}" if frame and frame not in name else ""
        graphs = [r.graph for r in rs if r.graph is not None]
        evidence = {"name": name, "recompiles": len(rs), "frame": frame, "guards": [r.guard for r in rs[:3]],
                    "graphs": graphs, "limit_hit": limit, "recompile_limit": tc.dynamo_config("recompile_limit")}
        if storm:
            tail = ("Dynamo's recompile limit was hit: this code now runs eagerly, uncompiled, on every call. "
                    if limit else "Each new value traces and compiles a graph again. ")
            msg = f"{name}{where} changed on {len(rs)} calls, and each re-traced the model. {tail}"
        else:
            msg = f"{name}{where} changed and the model was traced again ({rs[0].reason}). "
        small = size_one_guard(rs[0].guard, rs[0].detail)
        severity = "critical" if limit else ("info" if small and not storm else "warning")
        fix = _size_one_fix(small) if small is not None else recompile_fix(ctx, name, rs)
        out.append(Advice("recompile-storm" if storm else "recompile", severity, msg + fix, evidence))
    return out


def decode_graph(ctx: Context) -> int | None:
    """The first graph traced for a 1-token call after longer ones (its report warned ``decode_trace``)."""
    graphs = [w.graph for r in ctx.reports for w in r.warnings if w.kind == "decode_trace" and w.graph is not None]
    return min(graphs) if graphs else None


def _dims_key(name: str, detail: str) -> str:
    """How ``dynamic_dims`` names the input: its position when the model got it positionally
    (Dynamo's own guard reads ``args[i]``), else its keyword name."""
    at = re.search(r"(?<![\w.])args\[(\d+)\]", detail or "")
    return at.group(1) if at else repr(name)


def _size_one_fix(small: tuple[str, int]) -> str:
    """What to change for Dynamo's 0/1 specialization of dim ``small[1]`` of tensor ``small[0]``."""
    return (f"Nothing to change when such calls are rare. To serve them with the general graph, mark the dim "
            f"before the first call: torch._dynamo.decorators.mark_unbacked({small[0]}, {small[1]}).")


def recompile_fix(ctx: Context, name: str, rs: list[Any]) -> str:
    """What to change, by what the guard is about (Dynamo's 0/1 specialization aside: ``_size_one_fix``)."""
    guard = rs[0].guard
    value = guard.split("==", 1)[1].strip() if "==" in guard else ""
    if name in ("len(args)", "len(kwargs)"):
        return "Pass the arguments the same way (by position or by keyword) at every call."
    if any(re.fullmatch(rf"len\({re.escape(name)}\) == \d+|not {re.escape(name)}", r.guard) for r in rs):
        return _container_fix(ctx, name, rs)
    if re.fullmatch(r"'[^']*' (not )?in " + re.escape(name), guard):
        return (f"Dynamo guards which keys {name} holds, and a key came or went. Pass the same keys at every call "
                "(an entry that is sometimes absent: always pass it, e.g. as None).")
    if re.fullmatch(rf"type\({re.escape(name)}\) is (\w+|the type it had)|{re.escape(name)} is the object it was", guard):
        return (f"{name} now holds another object: Dynamo compiled in the one it found. Set it before the first call, "
                "or keep each variant in a model of its own (one compile each).")
    if guard.startswith("tensor"):
        return _tensor_fix(name, guard, _dims_key(name, rs[0].detail))
    if any(r.carried for r in rs):
        what = "That value" if name.startswith("a Python value") else f"{name} is a Python value that"
        return (f"{what} was computed before a graph break (read out of a tensor: .item(), float(), round()), and "
                f"Dynamo compiled its first value ({value or '?'}) into the code after the break as a constant. Keep "
                "it a tensor (no .item()) so the graph takes it as an input and one graph serves every value.")
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


def _container_fix(ctx: Context, name: str, rs: list[Any]) -> str:
    """A list (or dict) whose length Dynamo guards: one the model appends to re-traces on every call."""
    lengths = [0 if r.guard.startswith("not ") else int(r.guard.rsplit("==", 1)[1]) for r in rs]
    obj = _attribute(ctx.cm.model, name)
    kind = {list: "a list", dict: "a dict", set: "a set", tuple: "a tuple"}.get(type(obj), "a container")
    grows = len(lengths) >= 2 and all(b > a for a, b in zip(lengths, lengths[1:]))
    verb = "the model adds to" if kind != "a list" else "the model appends to"
    said = (f"{name} is {kind} {verb}: it grows on every call (compiled for lengths {', '.join(map(str, lengths))}), "
            if grows else f"{name} is {kind} whose length changes between calls (compiled for lengths "
            f"{', '.join(map(str, lengths))}), ")
    return (said + "and Dynamo guards its length, so each new length traces the model again. Keep it out of the "
            "compiled forward (collect after the call returns, in the caller), or keep a tensor of fixed size "
            "written in place.")


def _attribute(model: Any, name: str) -> Any:
    """The object ``self.a.b`` names on ``model`` (None when it is not an attribute path of the model)."""
    parts = name.split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        return None
    obj = model
    for p in parts[1:]:
        obj = getattr(obj, p, None)
    return obj


def _tensor_fix(name: str, guard: str, dims_key: str) -> str:
    at = re.search(r"(size|stride) mismatch at index (\d+)\. expected (\d+), actual (\d+)", guard)
    if at is None:
        return "Pass tensors of the same dtype, device and layout at every call."
    what, dim, was, now = at.group(1), at.group(2), at.group(3), at.group(4)
    if re.fullmatch(r"[A-Za-z_]\w*|\d+", name):   # an input the call passes: dynamic_dims names it
        if what == "stride":
            return (f"Its strides changed at dim {dim} ({was} -> {now}): pass it with the same layout at every call "
                    "(.contiguous()).")
        return (f"Its size changed at dim {dim}: mark that dim dynamic before the first call, "
                f"vx.CompileConfig(dynamic_dims={{{dims_key}: {dim}}}), so one graph serves every size.")
    grew = (f"whose size at dim {dim} went {was} -> {now}" if what == "size" else
            f"whose strides changed at dim {dim} ({was} -> {now}: it was rebuilt, e.g. by torch.cat)")
    grows = "it grows between calls" if what == "stride" or int(now) > int(was) else "its size changes between calls"
    mark = f"torch._dynamo.mark_dynamic(<that tensor>, {dim})" if what == "size" else \
        "torch._dynamo.mark_dynamic(<that tensor>, <its growing dim>)"
    return (f"{name} is a tensor inside an argument or the model (a KV cache, for one) {grew}: {grows}, and "
            "Dynamo traced again with that dim dynamic (once). A cache of fixed size written in place "
            "(transformers' StaticCache with cache_position) keeps one graph from the start; or mark the dim before "
            f"the first call: {mark}.")
