"""argparse for a magic's line, built from an option table (``lineoptions.LineOption``): a mistake
raises IPython's UsageError that ends in the usage, and the help (what ``%magic?`` prints) lists
every option of the table with its default and an example."""
from __future__ import annotations

import argparse
import textwrap
from typing import Sequence

from IPython.core.error import UsageError

from ..lineoptions import LineOption


def _paragraph(text: str, indent: str = "") -> str:
    return textwrap.fill(text, 96, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


class MagicParser(argparse.ArgumentParser):
    """The parser of one magic: one argparse option per entry of ``options``, in their order."""

    def __init__(self, prog: str, options: Sequence[LineOption], head: str = "", tail: str = "") -> None:
        super().__init__(prog=prog, add_help=False)
        self.head, self.tail = head, tail          # the usage line's words before and after the options
        self.options = tuple(options)
        for o in self.options:
            if o.switch:
                self.add_argument(o.flag, dest=o.dest, action="store_true", help=o.help)
            else:
                self.add_argument(o.flag, dest=o.dest, metavar=o.metavar, type=o.type, default=o.default,
                                  help=o.help)

    def usage_line(self) -> str:
        """``%vxbench [-n N] ... [-o] [-q] STATEMENT``."""
        return " ".join(filter(None, (self.prog, self.head, " ".join(f"[{o.shown}]" for o in self.options),
                                      self.tail)))

    def usage_hint(self) -> str:
        """The lines every usage error ends with: the usage, and where the full help is."""
        return f"usage: {self.usage_line()}\n{self.prog}? lists every option with an example."

    def help_text(self, summary: str, about: str, examples: Sequence[str]) -> str:
        """The magic's docstring (what ``%magic?`` prints): ``summary``, the usage, ``about`` (paragraphs
        split by a blank line), every option with its default and an example, then ``examples``."""
        out = [summary, "", "    " + self.usage_line(), "", *(_paragraph(p) + "\n" for p in about.split("\n\n")),
               "Options:"]
        for o in self.options:
            out += [f"  {o.shown}", _paragraph(o.help, "      "), _paragraph(f"Default: {o.default_text}", "      "),
                    f"      e.g.  {o.example}"]
        out += ["", "Examples:", *(f"  {e}" for e in examples), "",
                "Reference: docs/api.md in the vexplore repository."]
        return "\n".join(out)

    def error(self, message: str) -> None:  # argparse would sys.exit(); a magic reports instead
        raise UsageError(f"{self.prog}: {message}\n{self.usage_hint()}")
