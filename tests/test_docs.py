"""docs/api.md is the API reference: every public name, config field, warning kind, magic option and
command-line option is in it; and no file of the project sends readers to a file outside the repo."""
from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

import vexplore as vx
from vexplore.bench.compare import BenchOptions

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.md"


@pytest.fixture(scope="module")
def api() -> str:
    return API.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under the first ``### `` heading that starts with ``heading``, up to the next heading."""
    start = text.index("\n### " + heading)
    end = text.find("\n##", start + 1)
    return text[start:end if end >= 0 else None]


def test_every_public_name_is_documented(api):
    missing = [n for n in vx.__all__ if not re.search(rf"`vx\.{re.escape(n)}\b", api)]
    assert missing == [], f"add these to docs/api.md: {missing}"


@pytest.mark.parametrize("cls, heading", [(vx.CompileConfig, "`vx.CompileConfig("), (vx.CacheConfig, "`vx.CacheConfig("),
                                          (BenchOptions, "`vx.BenchOptions(")])
def test_every_config_field_is_in_its_table(api, cls, heading):
    table = section(api, heading)
    missing = [f.name for f in dataclasses.fields(cls) if f"| `{f.name}` |" not in table]
    assert missing == [], f"docs/api.md, {cls.__name__}: no row for {missing}"


def test_every_compile_warning_kind_is_documented(api):
    made = set()
    for src in (ROOT / "vexplore").rglob("*.py"):
        for call in re.findall(r"CompileWarning\(\s*(.*?),", src.read_text(encoding="utf-8"), flags=re.S):
            made |= set(re.findall(r'"(\w+)"', call))
    named = {"no_split", "split_op_missing", "autograd", "cudagraph_skip", "cudagraph", "validation", "size_one",
             "decode_trace", "fast_path", "token_specialized"}
    assert named <= made, named - made     # the kinds the reference promises are the ones the engine makes
    table = api.split("\n### `CompileWarning`", 1)[1].split("\n### ", 1)[0]
    assert [k for k in sorted(made) if f"| `{k}` |" not in table] == []


def test_every_magic_option_is_documented(api):
    pytest.importorskip("IPython")
    from vexplore.magics import VEXPLORE_PARSER, VXBENCH_PARSER

    for parser in (VEXPLORE_PARSER, VXBENCH_PARSER):
        usage = parser.usage_line()
        assert f"### `{usage}`" in api, f"docs/api.md: the heading of {parser.prog} should be `{usage}`"
        text = section(api, f"`{parser.prog} ")
        for action in parser._actions:
            flag = action.option_strings[0]
            shown = flag if action.nargs == 0 else f"{flag} {action.metavar}".replace("|", "\\|")
            assert f"| `{shown}` |" in text, f"docs/api.md, {parser.prog}: no row for {shown}"


def _cli_options(parser: argparse.ArgumentParser, prefix: str = "vexplore") -> dict[str, set[str]]:
    """{"vexplore demo": {"--layers", ...}, "vexplore cache": {...}, "vexplore cache prune": {...}, ...}."""
    out: dict[str, set[str]] = {prefix: set()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(_cli_options(sub, f"{prefix} {name}"))
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            out[prefix].add(max(action.option_strings, key=len))
    return out


def test_every_command_and_option_of_the_cli_is_documented(api):
    from vexplore.cli import build_parser

    text = api.split("\n## The `vexplore` command", 1)[1]
    for command, options in _cli_options(build_parser()).items():
        words = command.split()
        if len(words) > 1:
            assert f"`{words[-1]}" in text or f"`{command}" in text, f"docs/api.md: no `{command}`"
        missing = [o for o in sorted(options) if not re.search(rf"[`\s\[]{re.escape(o)}\b", text)]
        assert missing == [], f"docs/api.md, {command}: no {missing}"


# Outside the repo: the design notes and the shared folder beside the checkout (written split so
# that this file does not name them itself).
OUTSIDE = ("DESIGN" + ".md", "../" + "shared", "/work/" + "shared")
SCANNED = ["README.md", "pyproject.toml", "vexplore", "notebooks", "docs", "benchmarks", "tests", "binder", ".ci"]
TEXT = {".py", ".md", ".ipynb", ".txt", ".toml", ".cfg", ".yml", ".yaml", ".json", ".sh", ".js", ".css", ".html", ""}


def _project_files() -> list[Path]:
    files = []
    for name in SCANNED:
        path = ROOT / name
        for f in ([path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []):
            if f.is_file() and f.suffix in TEXT and "__pycache__" not in f.parts and f.stat().st_size < 5_000_000:
                files.append(f)
    return files


def test_no_project_file_points_outside_the_repo():
    files = _project_files()
    assert len(files) > 50 and API in files
    found = [f"{f.relative_to(ROOT)}: {needle}" for f in files
             for needle in OUTSIDE if needle in f.read_text(encoding="utf-8", errors="replace")]
    assert found == [], "point readers to docs/api.md (or another file in the repo) instead: " + "; ".join(found)
