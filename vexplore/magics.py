"""``%load_ext vexplore``: the %vexplore and %vxbench line magics.

Thin by design: parse the line, call one public function, display one object. vexplore's own
errors (VexploreError) become UsageError, so the notebook shows the message, not a traceback.

    %vexplore MODEL INPUTS [--strategy S] [--split-ops OP[,OP]] [--compiler C] [--cudagraph M] [--config CFG]
    %vxbench [-n N] [-r R] [-t idle|steady] [-o] [-q] STATEMENT
"""
from __future__ import annotations

import argparse
import ast
import re
import shlex
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from .config import CompileConfig
from .errors import VexploreError

VEXPLORE_USAGE = ("%vexplore MODEL INPUTS [--strategy S] [--split-ops OP[,OP]] [--compiler C] "
                  "[--cudagraph M] [--config CFG]\n  e.g. %vexplore model x --strategy piecewise "
                  "--split-ops vexplore::attention")
VXBENCH_USAGE = ("%vxbench [-n N] [-r R] [-t idle|steady] [-o] [-q] STATEMENT\n  e.g. %vxbench model(x)   (-r: samples, "
                 "default until the median is known within 2 %; -n: calls per sample; -t: the GPU timer)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would sys.exit(); a magic reports instead
        raise UsageError(f"{self.prog}: {message}\nusage: {self.usage}")


def _vexplore_parser() -> _Parser:
    p = _Parser(prog="%vexplore", usage=VEXPLORE_USAGE, add_help=False)
    p.add_argument("--strategy")
    p.add_argument("--split-ops", dest="splitting_ops")
    p.add_argument("--compiler")
    p.add_argument("--cudagraph")
    p.add_argument("--config", dest="config")
    return p


def split_vexplore_line(line: str) -> tuple[str, str, list[str]]:
    """``MODEL INPUTS --opts`` -> (model source, inputs source, option tokens), as the README says:
    MODEL is the first token, INPUTS everything after it up to the first `` --``."""
    parts = line.strip().split(None, 1)
    if len(parts) < 2 or parts[1].startswith("--"):
        raise UsageError(f"%vexplore needs a model and its inputs.\nusage: {VEXPLORE_USAGE}")
    model_src, rest = parts[0], " " + parts[1]
    cut = rest.find(" --")
    inputs_src, opts = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    try:
        tokens = shlex.split(opts)
    except ValueError as e:
        raise UsageError(f"%vexplore: cannot read the options {opts.strip()!r}: {e}") from None
    return model_src, inputs_src.strip(), tokens


@magics_class
class VexploreMagics(Magics):
    """The magics; ``self.shell.user_ns`` is the notebook's namespace."""

    def _eval(self, source: str, what: str, magic: str) -> Any:
        try:
            return self.shell.ev(source)
        except Exception as e:
            raise UsageError(f"{magic}: could not evaluate {what} {source!r} in the notebook: "
                             f"{type(e).__name__}: {e}") from None

    @line_magic
    def vexplore(self, line: str) -> None:
        """Show the vexplore explorer for a model and its inputs. Usage: see VEXPLORE_USAGE."""
        from .ui.explorer import explore

        model_src, inputs_src, tokens = split_vexplore_line(line)
        args = _vexplore_parser().parse_args(tokens)
        model = self._eval(model_src, "MODEL", "%vexplore")
        inputs = self._eval(inputs_src, "INPUTS", "%vexplore")
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        base = self._eval(args.config, "--config", "%vexplore") if args.config else CompileConfig()
        if not isinstance(base, CompileConfig):
            raise UsageError(f"%vexplore --config {args.config}: is a {type(base).__name__}, not a vx.CompileConfig.")
        changes = {k: getattr(args, k) for k in ("strategy", "compiler", "cudagraph") if getattr(args, k)}
        if args.splitting_ops:
            changes["splitting_ops"] = tuple(o.strip() for o in args.splitting_ops.split(",") if o.strip())
        try:
            display(explore(model, *inputs, config=base.replace(**changes)))
        except VexploreError as e:
            raise UsageError(f"%vexplore: {e}") from None

    @line_magic
    def vxbench(self, line: str) -> Any:
        """Time STATEMENT eager and compiled by vexplore (per call; -o returns the BenchReport)."""
        from .bench.compare import bench_statement
        from .ui.benchpanel import BenchView

        args = split_vxbench_line(line)
        fn = self._function(args.statement)
        try:
            report = bench_statement(fn, args.number, args.repeat, model_name=args.statement,
                                     size=self._size(args.statement), timer=args.timer)
        except VexploreError as e:
            raise UsageError(f"%vxbench: {e}") from None
        if not args.quiet:
            display(BenchView(report))
        return report if args.out else None

    def _size(self, statement: str) -> tuple[int | None, str]:
        """(dim 0 of the call's first argument, "dim 0 of NAME") when the statement ends in a
        call whose first argument is a plain name (or attribute) holding a tensor; else unknown."""
        import torch

        try:
            tree = ast.parse(statement)
        except SyntaxError:
            return None, "tokens"
        last = tree.body[-1] if tree.body else None
        call = last.value if isinstance(last, (ast.Expr, ast.Assign)) else None
        arg = call.args[0] if isinstance(call, ast.Call) and call.args else None
        if not isinstance(arg, (ast.Name, ast.Attribute)):
            return None, "tokens"
        name = ast.unparse(arg)
        try:
            value = self.shell.ev(name)
        except Exception:
            return None, "tokens"
        if isinstance(value, torch.Tensor) and value.dim():
            return int(value.shape[0]), f"dim 0 of {name}"
        return None, "tokens"

    def _function(self, statement: str) -> Any:
        """A zero-argument function running ``statement``; it returns the last expression's value,
        or else the names the statement assigns (so the compiled graph has outputs to compute).

        The notebook names it uses become closure variables, not globals: Dynamo then reads them
        from the function itself, whatever module the notebook namespace claims to be.
        """
        try:
            tree = ast.parse(statement)
        except SyntaxError as e:
            raise UsageError(f"%vxbench: the statement is not valid Python: {e.msg} ({statement!r})") from None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            tree.body[-1] = ast.Return(tree.body[-1].value)
        else:
            assigned = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                        if isinstance(t, ast.Name)]
            tree.body.append(ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in dict.fromkeys(assigned)], ast.Load())))
        body = "\n".join("        " + ln for ln in ast.unparse(ast.fix_missing_locations(tree)).splitlines())
        ns = self.shell.user_ns
        code = compile(statement, "<vxbench>", "exec")
        names = [n for n in dict.fromkeys(_names(code)) if n in ns and n.isidentifier() and not n.startswith("__")]
        binds = "".join(f"    {n} = __ns[{n!r}]\n" for n in names)
        src = f"def __vxbench_make(__ns):\n{binds}    def __vxbench_statement():\n{body}\n    return __vxbench_statement\n"
        scope: dict[str, Any] = {"__name__": "vexplore_vxbench"}
        exec(compile(src, "<vxbench>", "exec"), scope)
        return scope["__vxbench_make"](ns)


def _names(code: Any) -> list[str]:
    """Every name a code object (and the code objects inside it) reads."""
    out = list(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            out += _names(const)
    return out


_OPTION = re.compile(r"-(?P<flag>[nrt])\s*(?P<value>\S+)\s*|-(?P<switch>[oq])(?:\s+|$)")


@dataclass(frozen=True)
class VxbenchLine:
    """What a %vxbench line asks for (None: chosen until the figure is stable)."""

    number: int | None
    repeat: int | None
    out: bool
    quiet: bool
    timer: str
    statement: str


def split_vxbench_line(line: str) -> VxbenchLine:
    """``-n 5 -r 30 -t steady -o model(x)`` -> VxbenchLine(5, 30, True, False, "steady", "model(x)").

    Options come first, as with %timeit; the statement is the rest of the line, as typed.
    Without -n/-r: None (calls per sample and samples chosen until the figure is stable)."""
    opts: dict[str, Any] = {"n": None, "r": None, "t": "idle", "o": False, "q": False}
    rest = line.strip()
    while (m := _OPTION.match(rest)) is not None:
        if m.group("switch"):
            opts[m.group("switch")] = True
        else:
            opts[m.group("flag")] = _option_value(m.group("flag"), m.group("value"))
        rest = rest[m.end():]
    if not rest.strip():
        raise UsageError(f"%vxbench needs a statement to time.\nusage: {VXBENCH_USAGE}")
    return VxbenchLine(opts["n"], opts["r"], opts["o"], opts["q"], opts["t"], rest.strip())


def _option_value(flag: str, text: str) -> Any:
    if flag == "t":
        if text not in ("idle", "steady"):
            raise UsageError(f"%vxbench -t {text}: the timer is 'idle' (one call from an idle GPU) or 'steady' "
                             f"(back-to-back, as do_bench).\nusage: {VXBENCH_USAGE}")
        return text
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"%vxbench -{flag} {text}: give a whole number.\nusage: {VXBENCH_USAGE}") from None
    if value < 1:
        raise UsageError(f"%vxbench -{flag} {value}: must be >= 1.\nusage: {VXBENCH_USAGE}")
    return value


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext vexplore``)."""
    ipython.register_magics(VexploreMagics)
