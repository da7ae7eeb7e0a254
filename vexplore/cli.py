"""The ``vexplore`` command: ``vexplore demo`` and ``vexplore cache ...``.

A user's mistake ends in one line that says what is wrong and how to fix it, after the usage line,
with exit status 2, before anything is built or compiled: options are checked as argparse parses
them (each option's ``type``), and a ConfigError raised later is reported the same way.
"""
from __future__ import annotations

import argparse
import sys

from .cache.cli import register as register_cache
from .demo import register as register_demo
from .errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vexplore", description="vexplore: a compile explorer for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, title="commands")
    register_demo(sub)
    register_cache(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"   # "required: {demo,cache}", not "required: command"
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)   # a mistake: usage, one line of error, exit 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"vexplore {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vexplore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
