"""A statement as typed (``%vxbench``'s STATEMENT): Python text over a namespace, made into a
function of no arguments and timed eager and compiled by ``bench_statement``.

``statement_function`` makes the function, ``statement_size`` reads the size column from the
statement, ``time_statement`` does both and times it.
"""
from __future__ import annotations

import ast
from types import CodeType
from typing import Any, Callable

import torch

from ..errors import VexploreError
from .compare import BenchReport, bench_statement


def statement_function(statement: str, namespace: dict[str, Any]) -> Callable[[], Any]:
    """A zero-argument function running ``statement``; it returns the last expression's value,
    or else the names the statement assigns (so the compiled graph has outputs to compute).

    The names of ``namespace`` it uses become closure variables, not globals: Dynamo then reads
    them from the function itself, whatever module the notebook namespace claims to be.
    Raises VexploreError for a statement that is not valid Python.
    """
    try:
        tree = ast.parse(statement)
    except SyntaxError as e:
        raise VexploreError(f"the statement is not valid Python: {e.msg} ({statement!r})") from None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        tree.body[-1] = ast.Return(tree.body[-1].value)
    else:
        assigned = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)]
        tree.body.append(ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in dict.fromkeys(assigned)], ast.Load())))
    body = "\n".join("        " + ln for ln in ast.unparse(ast.fix_missing_locations(tree)).splitlines())
    code = compile(statement, "<vxbench>", "exec")
    names = [n for n in dict.fromkeys(_read_names(code))
             if n in namespace and n.isidentifier() and not n.startswith("__")]
    binds = "".join(f"    {n} = __ns[{n!r}]\n" for n in names)
    src = f"def __vxbench_make(__ns):\n{binds}    def __vxbench_statement():\n{body}\n    return __vxbench_statement\n"
    scope: dict[str, Any] = {"__name__": "vexplore_vxbench"}
    exec(compile(src, "<vxbench>", "exec"), scope)
    return scope["__vxbench_make"](namespace)


def _read_names(code: CodeType) -> list[str]:
    """Every name a code object (and the code objects inside it) reads."""
    out = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            out += _read_names(const)
    return out


def statement_size(statement: str, namespace: dict[str, Any]) -> tuple[int | None, str]:
    """(dim 0 of the call's first argument, "dim 0 of NAME") when ``statement`` ends in a call whose
    first argument is a plain name (or attribute) holding a tensor in ``namespace``; else
    (None, "tokens"): unknown."""
    try:
        tree = ast.parse(statement)
    except SyntaxError:
        return None, "tokens"
    last = tree.body[-1] if tree.body else None
    call = last.value if isinstance(last, (ast.Expr, ast.Assign)) else None
    arg = call.args[0] if isinstance(call, ast.Call) and call.args else None
    if not isinstance(arg, (ast.Name, ast.Attribute)):
        return None, "tokens"
    expr = ast.unparse(arg)
    try:
        value = eval(expr, {}, namespace)   # a name or attribute, as the notebook would read it
    except Exception:
        return None, "tokens"
    if isinstance(value, torch.Tensor) and value.dim():
        return int(value.shape[0]), f"dim 0 of {expr}"
    return None, "tokens"


def time_statement(statement: str, namespace: dict[str, Any], number: int | None = None, repeat: int | None = None,
                   timer: str = "idle") -> BenchReport:
    """``%vxbench``'s work: ``statement`` over ``namespace`` timed eager and compiled by vexplore
    (``bench_statement``: ``repeat`` samples of ``number`` runs, None: until stable), its rows named
    by the statement and sized by ``statement_size``. Raises VexploreError for a statement that is
    not valid Python, and as ``bench_statement`` does."""
    fn = statement_function(statement, namespace)
    return bench_statement(fn, number, repeat, model_name=statement, size=statement_size(statement, namespace),
                           timer=timer)
