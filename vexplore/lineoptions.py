"""One option of a magic's line as a record: what argparse is given for it, and what the magic's help
shows beside it (its default in words and a line that uses it).

Option tables are tuples of these, kept beside what their options set (``configoptions.py`` for
the CompileConfig fields); ``ui/magicparser.py`` builds a parser and its help from a table, so the
help cannot miss an option.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class LineOption:
    """An option such as ``--strategy S`` (metavar "S") or the switch ``-o`` (metavar None)."""

    flag: str                                     # "--strategy", "-n"
    metavar: str | None                           # the value's name in the usage line; None: a switch
    help: str                                     # what it does, in the help
    default_text: str                             # the default, as the help words it
    example: str                                  # a whole magic line that uses it
    dest: str | None = None                       # the parsed attribute; None: argparse's, from the flag
    type: Callable[[str], Any] | None = None      # argparse's type: checks and converts the value
    default: Any = None                           # the parsed value when the option is left out

    @property
    def switch(self) -> bool:
        """True for an option without a value (parsed as True when present)."""
        return self.metavar is None

    @property
    def shown(self) -> str:
        """The option as the usage line and the help show it: ``--strategy S``, ``-o``."""
        return self.flag if self.switch else f"{self.flag} {self.metavar}"
