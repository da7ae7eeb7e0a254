"""The lines of ``%vexplore``, ``%vxbench`` and ``%vxprofile``: their parsers, their help, and how a
line is cut into its parts. A mistake raises UsageError, whose message ends in the usage.

    %vexplore MODEL INPUTS [options]   the options set CompileConfig fields (configoptions.py)
    %vxbench [options] STATEMENT       options first, as with %timeit; STATEMENT is the rest, as typed
    %vxprofile [options] STATEMENT     the same; its options go to bench.statementprofile.profile_statement

``%vxbench``'s option table is here: -n, -r and -t go to ``bench.statement.time_statement`` as they
are, -o and -q say what the magic returns and displays.
"""
from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass

from IPython.core.error import UsageError

from ..bench.timing import TIMERS
from ..configoptions import CONFIG_OPTIONS
from ..demo import count_arg
from ..lineoptions import LineOption
from .magicparser import MagicParser

VEXPLORE_PARSER = MagicParser("%vexplore", CONFIG_OPTIONS, head="MODEL INPUTS")
VEXPLORE_HELP = VEXPLORE_PARSER.help_text(
    "Show the vexplore explorer (an ipywidgets dashboard) for a model and its inputs.",
    "MODEL is the first word of the line; INPUTS is everything after it up to the first ' --' (spaces "
    "allowed). Both are Python expressions evaluated in the notebook; an INPUTS value that is not a tuple "
    "is the one input. The model is compiled with vx.compile under the config the options make, called once "
    "on INPUTS under torch.no_grad(), and the explorer vx.explore(model, *inputs, config=...) returns is "
    "displayed: under its summary, one line with the top advice of vx.advise (the most severe; nothing when there "
    "is none), and every advice, with Apply, in its Advice tab. A MODEL that is already a vx.compile(...) result "
    "keeps its own config (the options are not used) and is called only if it has not been yet.\n\n"
    "Errors: a line without MODEL and INPUTS, an expression that does not evaluate, an unknown option, "
    "a --config that is not a vx.CompileConfig, or a value vexplore refuses (ConfigError, CompileError) "
    "raise UsageError, whose message says what to change.",
    ["%vexplore model x",
     "%vexplore model ids, mask",
     "%vexplore model x --strategy piecewise --split-ops vexplore::attention --cudagraph piecewise",
     '%vexplore model x --config "vx.CompileConfig(compile_sizes=[1, 16])" --compiler eager'])


def _timer(text: str) -> str:
    if text not in TIMERS:
        raise argparse.ArgumentTypeError(f"{text!r}: the timer is 'idle' (one call from an idle GPU) or 'steady' "
                                         "(back-to-back calls, as do_bench)")
    return text


_WHOLE = count_arg("give a whole number >= 1")

# one letter each: split_vxbench_line cuts the options off the front of the line by _VXBENCH_OPTION
VXBENCH_OPTIONS = (
    LineOption("-n", "N", dest="number", type=_WHOLE, default_text="1",
               help="Runs of STATEMENT per timed call: the figures are per run (each timing divided by N).",
               example="%vxbench -n 10 model(x)"),
    LineOption("-r", "R", dest="repeat", type=_WHOLE,
               default_text="until each median is known within +-2 % (the half-width of its ~95 % interval) or 2 s "
                            "of measuring per row are spent",
               help="Samples per row (the eager row and the compiled row each; they are taken in turns).",
               example="%vxbench -r 30 model(x)"),
    LineOption("-t", "idle|steady", dest="timer", type=_timer, default="idle", default_text="idle",
               help="The timer: idle (synchronise, then CUDA events around one call from an idle GPU: host overhead "
                    "counted) or steady (back-to-back calls, as triton's do_bench); on the CPU both are perf_counter "
                    "around back-to-back calls. The table names it. A statement has no tensor inputs: it is timed as "
                    "GPU work (synchronised) when CUDA is in use in this process after one run of it.",
               example="%vxbench -t steady model(x)"),
    LineOption("-o", None, dest="out", default_text="off (the magic returns None)",
               help="Return the vx.BenchReport (.rows, .table(), .to_dict()), e.g. to keep it in a variable.",
               example="rep = %vxbench -o model(x)"),
    LineOption("-q", None, dest="quiet",
               default_text="off (the table is displayed: HTML in a notebook, text in a terminal)",
               help="Display nothing (with -o: keep the report without showing it).",
               example="rep = %vxbench -q -o -r 20 model(x)"),
)
VXBENCH_PARSER = MagicParser("%vxbench", VXBENCH_OPTIONS, tail="STATEMENT")
VXBENCH_HELP = VXBENCH_PARSER.help_text(
    "Time STATEMENT eager and compiled by vexplore, per call, and show the table.",
    "Options come first, as with %timeit; STATEMENT is the rest of the line, as typed: Python (several "
    "statements joined by ';' allowed) over the notebook's names. It runs as a function of no arguments, "
    "eager and compiled by vx.compile under vx.CompileConfig() (the row vexplore-auto-auto); the function "
    "returns the last expression's value, or else the names the statement assigns, so the compiled graph has "
    "outputs. The first call of each row is timed apart (its seconds are reported beside the row), warm-up calls "
    "not at all. When STATEMENT ends in a call whose first argument is a name holding a tensor, the size column "
    "is that tensor's dim 0.\n\n"
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
        raise UsageError(f"%vexplore needs a model and its inputs.\n{VEXPLORE_PARSER.usage_hint()}")
    model_src, rest = parts[0], " " + parts[1]
    cut = rest.find(" --")
    inputs_src, opts = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    try:
        tokens = shlex.split(opts)
    except ValueError as e:
        raise UsageError(f"%vexplore: cannot read the options {opts.strip()!r}: {e}") from None
    return model_src, inputs_src.strip(), tokens


def _option_regex(options: tuple[LineOption, ...]) -> re.Pattern[str]:
    """Matches one option at the start of a %vxbench line: ``-n 5``, ``-n5``, ``-o``."""
    assert all(len(o.flag) == 2 for o in options), "%vxbench options are one letter"
    valued = "".join(o.flag[1] for o in options if not o.switch)
    switches = "".join(o.flag[1] for o in options if o.switch)
    return re.compile(rf"-(?P<flag>[{valued}])\s*(?P<value>\S+)\s*|-(?P<switch>[{switches}])(?:\s+|$)")


_VXBENCH_OPTION = _option_regex(VXBENCH_OPTIONS)


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
    while (m := _VXBENCH_OPTION.match(rest)) is not None:
        tokens.append(f"-{m.group('switch')}" if m.group("switch") else f"-{m.group('flag')}{m.group('value')}")
        rest = rest[m.end():]
    values = VXBENCH_PARSER.parse_args(tokens)
    if not rest.strip():
        raise UsageError(f"%vxbench needs a statement to time.\n{VXBENCH_PARSER.usage_hint()}")
    return VxbenchLine(values.number, values.repeat, values.out, values.quiet, values.timer, rest.strip())


# -- %vxprofile -----------------------------------------------------------------------------------------
def _warmup(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 0")
    return n


VXPROFILE_OPTIONS = (
    LineOption("-n", "CALLS", dest="calls", type=_WHOLE, default=20, default_text="20",
               help="Calls profiled (after the warm-up), as cm.profile(..., calls=CALLS).",
               example="%vxprofile -n 50 model(x)"),
    LineOption("-w", "WARMUP", dest="warmup", type=_warmup, default=5, default_text="5",
               help="Warm-up calls before the profiled ones (the first call compiles).",
               example="%vxprofile -w 2 model(x)"),
    LineOption("-k", "TOP", dest="top", type=_WHOLE, default=15, default_text="15",
               help="Kernels printed: the TOP with the most device time (prof.table(TOP)).",
               example="%vxprofile -k 5 model(x)"),
    LineOption("-o", None, dest="out", default_text="off (the magic returns None)",
               help="Return the vx.RuntimeProfile (.rows, .by_piece(), .table()), e.g. to keep it in a variable.",
               example="prof = %vxprofile -o model(x)"),
    LineOption("-q", None, dest="quiet", default_text="off (the table is printed)",
               help="Print nothing (with -o: keep the profile without showing it).",
               example="prof = %vxprofile -q -o model(x)"),
)
VXPROFILE_PARSER = MagicParser("%vxprofile", VXPROFILE_OPTIONS, tail="STATEMENT")
VXPROFILE_HELP = VXPROFILE_PARSER.help_text(
    "Profile STATEMENT's calls under torch.profiler (vx.profile) and print where the time goes: the top kernels.",
    "Options come first, as with %vxbench; STATEMENT is the rest of the line, as typed. One call with positional "
    "arguments, MODEL(ARGS), profiles MODEL on ARGS: a vx.compile(...) result as it is (the profile is kept on its "
    "report, cm.report.profiles), any other callable (an nn.Module, a function) compiled by vx.compile under "
    "vx.CompileConfig() first. Any other statement is made a function of no arguments, as %vxbench does, compiled "
    "and profiled. The calls run under torch.no_grad(). The printed table is prof.table(TOP): calls, wall, device "
    "busy, span and host gap per call, then one line per kernel with its piece, ms per run, share of the device "
    "time and source lines.\n\n"
    "Errors: an option value that is not allowed, no STATEMENT, a STATEMENT that is not valid Python or does not "
    "evaluate, or a VexploreError while compiling or profiling raise UsageError, whose message says what to change.",
    ["%vxprofile model(x)",
     "%vxprofile -n 50 -k 5 cm(ids, mask)",
     "prof = %vxprofile -q -o model(x)",
     "prof.by_piece()"])

_VXPROFILE_OPTION = _option_regex(VXPROFILE_OPTIONS)


@dataclass(frozen=True)
class VxprofileLine:
    """What a %vxprofile line asks for."""

    calls: int
    warmup: int
    top: int
    out: bool
    quiet: bool
    statement: str


def split_vxprofile_line(line: str) -> VxprofileLine:
    """``-n 50 -k 5 -o model(x)`` -> VxprofileLine(50, 5, 5, True, False, "model(x)"): options first, the
    statement the rest of the line, as typed."""
    rest, tokens = line.strip(), []
    while (m := _VXPROFILE_OPTION.match(rest)) is not None:
        tokens.append(f"-{m.group('switch')}" if m.group("switch") else f"-{m.group('flag')}{m.group('value')}")
        rest = rest[m.end():]
    values = VXPROFILE_PARSER.parse_args(tokens)
    if not rest.strip():
        raise UsageError(f"%vxprofile needs a statement to profile.\n{VXPROFILE_PARSER.usage_hint()}")
    return VxprofileLine(values.calls, values.warmup, values.top, values.out, values.quiet, rest.strip())
