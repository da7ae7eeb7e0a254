"""`vexplore demo` from the command line, as the README runs it."""
from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs(tmp_path):
    res = subprocess.run([sys.executable, "-m", "vexplore", "demo", "--layers", "2", "--tokens", "16", "--reps", "3",
                          "--cache-dir", str(tmp_path / "c")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "== full: compiling" in out and "== piecewise: compiling" in out
    assert "pieces 5, compiled 3, unique 3" in out
    assert "piece  0 (general): compiled in" in out
    for variant in ("eager", "vexplore-full-none", "vexplore-piecewise-none"):
        assert variant in out.split("time per call")[1]


def test_help_lists_commands():
    res = subprocess.run([sys.executable, "-m", "vexplore", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    for command in ("demo", "cache"):   # one line each under "positional arguments"
        assert re.search(rf"^\s+{command}\s+\w", res.stdout, re.M), res.stdout
