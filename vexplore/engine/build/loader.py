"""Stored artifacts back into callables: the loader the cache's lookup and prewarm call."""
from __future__ import annotations

from typing import Any, Callable

from ...cache.artifact import Artifact
from .compilers import InductorCompiler


def load_artifact(art: Artifact) -> tuple[Callable[..., Any], dict[str, Any]]:
    """A stored artifact as (callable, info): Inductor's binary artifact loaded in this process."""
    fn, code = InductorCompiler().load(art.data)
    return fn, {"compiler": art.compiler, "reason": art.meta.get("reason"), "code": code,
                "passes": art.meta.get("passes") or [], "pass_graphs": art.meta.get("pass_graphs") or []}
