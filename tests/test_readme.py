"""README.md holds the two commands (.ci/run runs the second) and stays a document a person reads:
a bad edit once committed it as 28 MB of one paragraph repeated, with no commands left."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_has_the_two_commands_once():
    text = README.read_text()
    assert len(text) < 60_000 and text.startswith("# vexplore\n")
    blocks = re.findall(r"```bash\n(.*?)\n```", text, re.S)
    assert any("vexplore demo" in b and "torch==2.13.0" in b for b in blocks)
    assert any("pytest" in b and '".[notebook,redis,test]"' in b and "apt-get install" in b for b in blocks)
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pytest" in ci


def test_no_paragraph_is_repeated():
    paragraphs = [p.strip() for p in README.read_text().split("\n\n") if len(p.strip()) > 200]
    assert len(paragraphs) == len(set(paragraphs))
