"""``%load_ext vexplore``: the %vexplore, %vxbench and %vxprofile line magics.

Thin by design: parse the line, call one public function, display one object. vexplore's own
errors (VexploreError) become UsageError, so the notebook shows the message, not a traceback.

    %vexplore MODEL INPUTS [--strategy S] [--split-ops OP[,OP]] [--compiler C] [--cudagraph M] [--config CFG]
    %vxbench [-n N] [-r R] [-t idle|steady] [-o] [-q] STATEMENT
    %vxprofile [-n CALLS] [-w WARMUP] [-k TOP] [-o] [-q] STATEMENT

What ``%vexplore?``, ``%vxbench?`` and ``%vxprofile?`` print is each magic's docstring, generated from its option
table (ui/magiclines.py; %vexplore's options are configoptions.py's), so the help cannot miss an
option; ``tests/ui/test_magics.py`` checks it. docs/api.md has the same reference.
"""
from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from .config import CompileConfig
from .configoptions import apply_options
from .errors import VexploreError
from .ui.magiclines import (VEXPLORE_HELP, VEXPLORE_PARSER, VXBENCH_HELP, VXBENCH_PARSER, VXPROFILE_HELP,
                            VXPROFILE_PARSER, split_vexplore_line, split_vxbench_line, split_vxprofile_line)

__all__ = ["VEXPLORE_PARSER", "VXBENCH_PARSER", "VXPROFILE_PARSER", "VexploreMagics", "load_ipython_extension"]


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
        options = VEXPLORE_PARSER.parse_args(tokens)
        model = self._eval(model_src, "MODEL", "%vexplore")
        inputs = self._eval(inputs_src, "INPUTS", "%vexplore")
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        base = self._eval(options.config, "--config", "%vexplore") if options.config else CompileConfig()
        if not isinstance(base, CompileConfig):
            raise UsageError(f"%vexplore --config {options.config}: is a {type(base).__name__}, "
                             "not a vx.CompileConfig.")
        try:
            display(explore(model, *inputs, config=apply_options(base, vars(options))))
        except VexploreError as e:
            raise UsageError(f"%vexplore: {e}") from None

    vexplore.__doc__ = VEXPLORE_HELP   # what %vexplore? prints

    @line_magic
    def vxbench(self, line: str) -> Any:
        from .bench.statement import time_statement
        from .ui.benchpanel import BenchView

        asked = split_vxbench_line(line)
        try:
            report = time_statement(asked.statement, self.shell.user_ns, asked.number, asked.repeat, asked.timer)
        except VexploreError as e:
            raise UsageError(f"%vxbench: {e}") from None
        if not asked.quiet:
            display(BenchView(report))
        return report if asked.out else None

    vxbench.__doc__ = VXBENCH_HELP   # what %vxbench? prints

    @line_magic
    def vxprofile(self, line: str) -> Any:
        from .bench.statementprofile import profile_statement

        asked = split_vxprofile_line(line)
        try:
            prof = profile_statement(asked.statement, self.shell.user_ns, asked.calls, asked.warmup).profile
        except VexploreError as e:
            raise UsageError(f"%vxprofile: {e}") from None
        if not asked.quiet:
            print(prof.table(asked.top))
        return prof if asked.out else None

    vxprofile.__doc__ = VXPROFILE_HELP   # what %vxprofile? prints


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext vexplore``)."""
    ipython.register_magics(VexploreMagics)
