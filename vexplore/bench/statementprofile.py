"""A statement as typed (``%vxprofile``'s STATEMENT) profiled: ``profile_statement``.

The statement ``model(x)`` or ``cm(ids, mask)``, one call with positional arguments, profiles what
it calls on those arguments: a CompiledModel (``vx.compile``'s) as it is, its profile kept on its
report; any other callable (an ``nn.Module``, a function) compiled by ``vx.compile`` under the
default config first. Any other statement is made a function of no arguments (as ``%vxbench`` does:
bench/statement.py), compiled and profiled. The calls run under ``torch.no_grad()``: inference, as
the explorer calls the model.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import torch

from ..config import CompileConfig
from ..engine.model import CompiledModel
from ..engine.model import compile as vx_compile
from ..errors import VexploreError
from ..monitor.profile import RuntimeProfile
from .statement import statement_function


@dataclass(frozen=True)
class Profiled:
    """What ``profile_statement`` profiled: the compiled model (``cm.report.profiles`` holds the profile
    too), the profile, and how the statement was read (``"model"``: one call of a CompiledModel;
    ``"compiled"``: a callable compiled for it; ``"statement"``: the whole statement compiled)."""

    cm: CompiledModel
    profile: RuntimeProfile
    how: str


def _one_call(statement: str, namespace: dict[str, Any]) -> tuple[Any, tuple[Any, ...]] | None:
    """(the callee, its positional arguments) when ``statement`` is one call with positional arguments
    only (``model(x)``, ``m.generate(ids, 4)``), evaluated in ``namespace``; else None."""
    try:
        tree = ast.parse(statement.strip())
    except SyntaxError as e:
        raise VexploreError(f"the statement is not valid Python: {e.msg} ({statement!r})") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr) or not isinstance(tree.body[0].value, ast.Call):
        return None
    call = tree.body[0].value
    if call.keywords:
        return None
    try:
        fn = eval(ast.unparse(call.func), {}, namespace)   # the notebook's names, as the notebook would read them
        args = eval(ast.unparse(ast.Tuple(call.args, ast.Load())), {}, namespace)
    except Exception as e:
        raise VexploreError(f"could not evaluate {statement!r} in the notebook: {type(e).__name__}: {e}") from None
    return fn, tuple(args)


def profile_statement(statement: str, namespace: dict[str, Any], calls: int = 20, warmup: int = 5,
                      config: CompileConfig | None = None) -> Profiled:
    """``%vxprofile``'s work (see the module docstring); ``config`` compiles what is not compiled yet
    (default: ``CompileConfig()``). Raises VexploreError for a statement that is not valid Python or does
    not evaluate, and as ``cm.profile`` does."""
    cfg = config if config is not None else CompileConfig()
    found = _one_call(statement, namespace)
    with torch.no_grad():
        if found is not None and isinstance(found[0], CompiledModel):
            cm, args, how = found[0], found[1], "model"
        elif found is not None and callable(found[0]):
            cm, args, how = vx_compile(found[0], cfg), found[1], "compiled"
        else:
            cm, args, how = vx_compile(statement_function(statement, namespace), cfg), (), "statement"
        if not cm.graphs:
            cm(*args)
        return Profiled(cm, cm.profile(*args, calls=calls, warmup=warmup), how)
