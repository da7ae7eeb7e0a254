"""Split ops that match nothing in a graph: what the graph calls instead, and the closest names.

A split op that is almost right (``torch.nn.functional.gelu`` where Dynamo recorded gelu's C
binding, ``_C._nn.gelu``) splits nothing and says nothing; these warnings name the near misses
("did you mean") and, when nothing split at all, list what the graph does call.
"""
from __future__ import annotations

import difflib
from collections import Counter
from typing import Sequence

import torch.fx as fx

from ...monitor.report import CompileWarning
from ..ops import matches, op_name

_LISTED = 12   # the graph's most frequent ops named in a no-split message


def graph_ops(gm: fx.GraphModule) -> Counter[str]:
    """How often each op (as vx.op_name names it) is called in ``gm``."""
    return Counter(op_name(n) for n in gm.graph.nodes if n.op.startswith("call_"))


def _base(name: str) -> str:
    """The op's own name without namespace or overload: ``_C._nn.gelu`` and ``aten::gelu.default`` -> gelu."""
    if "::" in name:
        return name.split("::", 1)[1].split(".", 1)[0]
    return name.rsplit(".", 1)[-1]


def closest(name: str, present: Sequence[str], n: int = 3) -> list[str]:
    """The names in ``present`` closest to ``name``: same op name under another module first, then by spelling."""
    same = [p for p in present if _base(p) == _base(name)]
    by_base = {p: difflib.SequenceMatcher(None, _base(name), _base(p)).ratio() for p in present}
    by_full = {p: difflib.SequenceMatcher(None, name, p).ratio() for p in present}
    near = [p for p in sorted(present, key=lambda p: -max(by_base[p], by_full[p]))
            if p not in same and max(by_base[p], by_full[p]) >= 0.8]
    return (same + near)[:n]


def _did_you_mean(op: str, ops: Counter[str]) -> str:
    near = closest(op, list(ops))
    if not near:
        return f"{op!r} matches no node of this graph."
    return f"{op!r} matches no node; did you mean " + " or ".join(f"{p!r} ({ops[p]}x)" for p in near) + "?"


def _calls(ops: Counter[str]) -> str:
    top = ops.most_common(_LISTED)
    more = f", and {len(ops) - len(top)} more" if len(ops) > len(top) else ""
    return ", ".join(f"{name} {count}x" for name, count in top) + more


def split_op_warnings(gm: fx.GraphModule, graph: int, split_ops: Sequence[str], user_given: bool,
                      splits: bool, policy_cut: bool = False) -> list[CompileWarning]:
    """Warnings about ``split_ops`` in graph ``graph``.

    ``splits``: the graph was to be split (piecewise, or auto with ops the user named). When
    nothing matched, one ``no_split`` warning lists what the graph calls and, for ops the user
    named, the closest names; otherwise each user-named op that matched nothing gets a
    ``split_op_missing`` warning with its closest names. The default ops are not named one by one.
    ``policy_cut``: a split policy cut the graph anyway, so it is not "one piece": ops the user
    named that match nothing get their ``split_op_missing`` warnings, the defaults none.
    """
    if not splits or not split_ops:
        return []
    ops = graph_ops(gm)
    missing = [o for o in split_ops if not any(matches(name, [o]) for name in ops)]
    if len(missing) == len(split_ops) and not policy_cut:
        which = " ".join(_did_you_mean(o, ops) for o in missing) if user_given else \
            "none of the default split ops (the attention ops) is in it."
        named = tuple(missing) if user_given else ()
        return [CompileWarning("no_split", f"graph {graph}: no split points found, compiled as one piece: {which} "
                               f"The graph calls: {_calls(ops)}. Pass the one to cut at as "
                               "CompileConfig(splitting_ops=[...]) (names as vx.op_name gives them).", graph,
                               ops=named, suggested=_best(named, ops))]
    if not user_given:
        return []
    return [CompileWarning("split_op_missing", f"graph {graph}: splitting op {_did_you_mean(o, ops)}", graph,
                           ops=(o,), suggested=_best((o,), ops)) for o in missing]


def _best(named: Sequence[str], ops: Counter[str]) -> tuple[str, ...]:
    """The closest name the graph calls, for each of ``named`` that has one."""
    return tuple(near[0] for near in (closest(o, list(ops)) for o in named) if near)
