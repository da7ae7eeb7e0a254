"""The ``vexplore`` command: ``vexplore demo`` and ``vexplore cache ...``."""
from __future__ import annotations

import argparse
import sys

from .cache.cli import register as register_cache
from .demo import register as register_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vexplore", description="vexplore: a compile explorer for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    register_demo(sub)
    register_cache(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
