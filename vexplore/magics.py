"""``%load_ext vexplore``: the %vexplore and %vxbench line magics.

Thin by design: parse the line, call one public function, display one object. vexplore's own
errors (VexploreError) become UsageError, so the notebook shows the message, not a traceback.

    %vexplore MODEL INPUTS [--strategy S] [--split-ops OP[,OP]] [--compiler C] [--cudagraph M] [--config CFG]
    %vxbench [-n N] [-r R] [-t idle|steady] [-o] [-q] STATEMENT

What ``%vexplore?`` and ``%vxbench?`` print is each magic's docstring, generated from its argparse
parser below (every option's help, default and example live on the option), so the help cannot
miss an option; ``tests/ui/test_magics.py`` checks it. docs/api.md has the same reference.
"""
from __future__ import annotations

import argparse
import ast
import re
import shlex
import textwrap
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from .bench.timing import TIMERS
from .config import COMPILERS, CUDAGRAPH_MODES, STRATEGIES, CompileConfig
from .demo import count_arg
from .errors import VexploreError


class _Parser(argparse.ArgumentParser):
    """argparse for a magic: errors raise UsageError, and every option carries its default and an example."""

    def __init__(self, prog: str, head: str = "", tail: str = "") -> None:
        super().__init__(prog=prog, add_help=False)
        self.head, self.tail = head, tail          # the usage line's words before and after the options
        self.options: list[tuple[argparse.Action, str, str]] = []   # (action, default as text, example)

    def option(self, *flags: str, default_text: str, example: str, **kw: Any) -> None:
        self.options.append((self.add_argument(*flags, **kw), default_text, example))

    def usage_line(self) -> str:
        opts = " ".join(f"[{a.option_strings[0]}]" if a.nargs == 0 else f"[{a.option_strings[0]} {a.metavar}]"
                        for a, _, _ in self.options)
        return " ".join(filter(None, (self.prog, self.head, opts, self.tail)))

    def error(self, message: str) -> None:  # argparse would sys.exit(); a magic reports instead
        raise UsageError(f"{self.prog}: {message}\n{usage_hint(self)}")


def usage_hint(parser: _Parser) -> str:
    """The lines every usage error ends with: the usage, and where the full help is."""
    return f"usage: {parser.usage_line()}\n{parser.prog}? lists every option with an example."


def magic_help(parser: _Parser, summary: str, about: str, examples: list[str]) -> str:
    """A magic's docstring (what ``%magic?`` prints): usage, what it does, every option of
    ``parser`` with its default and an example, then more examples."""
    def para(text: str, indent: str = "") -> str:
        return textwrap.fill(text, 96, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                             break_on_hyphens=False)

    out = [summary, "", "    " + parser.usage_line(), "", *(para(p) + "\n" for p in about.split("\n\n")), "Options:"]
    for action, default, example in parser.options:
        name = " ".join(action.option_strings) + ("" if action.nargs == 0 else f" {action.metavar}")
        out += [f"  {name}", para(action.help or "", "      "), para(f"Default: {default}", "      "),
                f"      e.g.  {example}"]
    out += ["", "Examples:", *(f"  {e}" for e in examples), "", "Reference: docs/api.md in the vexplore repository."]
    return "\n".join(out)


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(values)


def _vexplore_parser() -> _Parser:
    p = _Parser("%vexplore", "MODEL INPUTS")
    d = CompileConfig()
    p.option("--strategy", metavar="S", default=None, default_text=f"--config's ({d.strategy} in vx.CompileConfig())",
             help=f"How each graph is compiled: {_choices(STRATEGIES)}. full: one piece; piecewise: cut at the split "
                  "ops (each runs eagerly between compiled pieces); auto: piecewise when the graph has split ops and "
                  f"at least CompileConfig.auto_min_nodes nodes, else full, with the reason in the report. Sets "
                  "CompileConfig.strategy.",
             example="%vexplore model x --strategy piecewise")
    p.option("--split-ops", dest="splitting_ops", metavar="OP[,OP]", default=None,
             default_text="--config's (the attention ops of vx.DEFAULT_SPLITTING_OPS in vx.CompileConfig())",
             help="The ops to cut the graph at, comma-separated, named as vx.op_name(node) names them ('ns::op', "
                  "'ns::op.overload', or a Python callable's dotted name); an entry without an overload matches "
                  "every overload. Sets CompileConfig.splitting_ops.",
             example="%vexplore model x --strategy piecewise --split-ops vexplore::attention")
    p.option("--compiler", metavar="C", default=None, default_text=f"--config's ({d.compiler} in vx.CompileConfig())",
             help=f"What compiles each piece: {_choices(COMPILERS)} (eager: the pieces run as traced). Sets "
                  "CompileConfig.compiler.",
             example="%vexplore model x --compiler eager")
    p.option("--cudagraph", metavar="M", default=None, default_text=f"--config's ({d.cudagraph} in vx.CompileConfig())",
             help=f"CUDA graphs: {_choices(CUDAGRAPH_MODES)}. piecewise: one per compiled piece, split ops eager "
                  "between; full: the whole graph; full_and_piecewise: full up to CompileConfig.cudagraph_full_max "
                  "tokens, piecewise above; auto: full_and_piecewise on a CUDA device, none elsewhere. Sets "
                  "CompileConfig.cudagraph.",
             example="%vexplore model x --cudagraph full_and_piecewise")
    p.option("--config", dest="config", metavar="CFG", default=None, default_text="vx.CompileConfig()",
             help="A Python expression, evaluated in the notebook, giving the vx.CompileConfig to start from (any "
                  "field: cache, compile_sizes, dynamic_dims, ...); the other options change its fields. Quote it "
                  "if it holds spaces. In the example, cfg is a config made earlier: cfg = vx.CompileConfig(cudagraph='auto').",
             example="%vexplore model x --config cfg --strategy full")
    return p


VEXPLORE_PARSER = _vexplore_parser()
VEXPLORE_USAGE = VEXPLORE_PARSER.usage_line()
VEXPLORE_HELP = magic_help(
    VEXPLORE_PARSER,
    "Show the vexplore explorer (an ipywidgets dashboard) for a model and its inputs.",
    "MODEL is the first word of the line; INPUTS is everything after it up to the first ' --' (spaces "
    "allowed). Both are Python expressions evaluated in the notebook; an INPUTS value that is not a tuple "
    "is the one input. The model is compiled with vx.compile under the config the options make, called once "
    "on INPUTS under torch.no_grad(), and the explorer vx.explore(model, *inputs, config=...) returns is "
    "displayed: under its summary, one line with the top advice of vx.advise (the most severe; nothing when there "
    "is none), and every advice, with Apply, in its Advice tab. A MODEL that is already a vx.compile(...) result keeps its own config (the options are not "
    "used) and is called only if it has not been yet.\n\n"
    "Errors: a line without MODEL and INPUTS, an expression that does not evaluate, an unknown option, "
    "a --config that is not a vx.CompileConfig, or a value vexplore refuses (ConfigError, CompileError) "
    "raise UsageError, whose message says what to change.",
    ["%vexplore model x",
     "%vexplore model ids, mask",
     "%vexplore model x --strategy piecewise --split-ops vexplore::attention --cudagraph piecewise",
     '%vexplore model x --config "vx.CompileConfig(compile_sizes=[1, 16])" --compiler eager'])


_whole = count_arg("give a whole number >= 1")


def _timer(text: str) -> str:
    if text not in TIMERS:
        raise argparse.ArgumentTypeError(f"{text!r}: the timer is 'idle' (one call from an idle GPU) or 'steady' "
                                         "(back-to-back calls, as do_bench)")
    return text


def _vxbench_parser() -> _Parser:
    # options are single letters (the line is cut into options and STATEMENT by _option_regex)
    p = _Parser("%vxbench", tail="STATEMENT")
    p.option("-n", dest="number", metavar="N", type=_whole, default=None, default_text="1",
             help="Runs of STATEMENT per timed call: the figures are per run (each timing divided by N).",
             example="%vxbench -n 10 model(x)")
    p.option("-r", dest="repeat", metavar="R", type=_whole, default=None,
             default_text="until each median is known within +-2 % (the half-width of its ~95 % interval) or 2 s "
                          "of measuring per row are spent",
             help="Samples per row (the eager row and the compiled row each; they are taken in turns).",
             example="%vxbench -r 30 model(x)")
    p.option("-t", dest="timer", metavar="idle|steady", type=_timer, default="idle", default_text="idle",
             help="The timer: idle (synchronise, then CUDA events around one call from an idle GPU: host overhead "
                  "counted) or steady (back-to-back calls, as triton's do_bench); on the CPU both are perf_counter "
                  "around back-to-back calls. The table names it. A statement has no tensor inputs: it is timed as "
                  "GPU work (synchronised) when CUDA is in use in this process after one run of it.",
             example="%vxbench -t steady model(x)")
    p.option("-o", dest="out", action="store_true", default_text="off (the magic returns None)",
             help="Return the vx.BenchReport (.rows, .table(), .to_dict()), e.g. to keep it in a variable.",
             example="rep = %vxbench -o model(x)")
    p.option("-q", dest="quiet", action="store_true",
             default_text="off (the table is displayed: HTML in a notebook, text in a terminal)",
             help="Display nothing (with -o: keep the report without showing it).",
             example="rep = %vxbench -q -o -r 20 model(x)")
    return p


VXBENCH_PARSER = _vxbench_parser()
VXBENCH_USAGE = VXBENCH_PARSER.usage_line()
VXBENCH_HELP = magic_help(
    VXBENCH_PARSER,
    "Time STATEMENT eager and compiled by vexplore, per call, and show the table.",
    "Options come first, as with %timeit; STATEMENT is the rest of the line, as typed: Python (several "
    "statements joined by ';' allowed) over the notebook's names. It runs as a function of no arguments, "
    "eager and compiled by vx.compile under vx.CompileConfig() (the row vexplore-auto-none); the function "
    "returns the last expression's value, or else the names the statement assigns, so the compiled graph has "
    "outputs. The first call of each row is timed apart (its seconds are reported beside the row), warm-up calls not at all. When "
    "STATEMENT ends in a call whose first argument is a name holding a tensor, the size column is that "
    "tensor's dim 0.\n\n"
    "Each row's output is compared with eager's: a row over the accuracy gate (max rel err 1e-4 in fp32, "
    "2e-2 in fp16/bf16) is 'failed' and warns (VexploreBenchWarning), a row whose median stays uncertain "
    "(over +-5 %, or a p20-p80 spread over 25 %) is 'noisy'; neither is shown as a speed-up.\n\n"
    "Errors: an option value that is not allowed, no STATEMENT, a STATEMENT that is not valid Python, or a "
    "VexploreError while compiling or timing raise UsageError, whose message says what to change.",
    ["%vxbench model(x)",
     "%vxbench -n 10 -r 50 -t steady model(x)",
     "%vxbench -q -r 5 y = model(x); z = y.sum()",
     "rep = %vxbench -o model(x)",
     "print(rep.table())"])


def split_vexplore_line(line: str) -> tuple[str, str, list[str]]:
    """``MODEL INPUTS --opts`` -> (model source, inputs source, option tokens): MODEL is the first
    token, INPUTS everything after it up to the first `` --``."""
    parts = line.strip().split(None, 1)
    if len(parts) < 2 or parts[1].startswith("--"):
        raise UsageError(f"%vexplore needs a model and its inputs.\n{usage_hint(VEXPLORE_PARSER)}")
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
        from .ui.explorer import explore

        model_src, inputs_src, tokens = split_vexplore_line(line)
        args = VEXPLORE_PARSER.parse_args(tokens)
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

    vexplore.__doc__ = VEXPLORE_HELP   # what %vexplore? prints

    @line_magic
    def vxbench(self, line: str) -> Any:
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

    vxbench.__doc__ = VXBENCH_HELP   # what %vxbench? prints

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


def _option_regex(parser: _Parser) -> re.Pattern[str]:
    """Matches one option at the start of a %vxbench line: ``-n 5``, ``-n5``, ``-o``."""
    valued = "".join(a.option_strings[0][1:] for a, _, _ in parser.options if a.nargs != 0)
    switches = "".join(a.option_strings[0][1:] for a, _, _ in parser.options if a.nargs == 0)
    assert all(len(a.option_strings[0]) == 2 for a, _, _ in parser.options), "%vxbench options are one letter"
    return re.compile(rf"-(?P<flag>[{valued}])\s*(?P<value>\S+)\s*|-(?P<switch>[{switches}])(?:\s+|$)")


_OPTION = _option_regex(VXBENCH_PARSER)


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
    rest, tokens = line.strip(), []
    while (m := _OPTION.match(rest)) is not None:
        tokens.append(f"-{m.group('switch')}" if m.group("switch") else f"-{m.group('flag')}{m.group('value')}")
        rest = rest[m.end():]
    args = VXBENCH_PARSER.parse_args(tokens)
    if not rest.strip():
        raise UsageError(f"%vxbench needs a statement to time.\n{usage_hint(VXBENCH_PARSER)}")
    return VxbenchLine(args.number, args.repeat, args.out, args.quiet, args.timer, rest.strip())


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext vexplore``)."""
    ipython.register_magics(VexploreMagics)
