"""Stored artifacts back into callables: the loader the cache's lookup and prewarm call."""
from __future__ import annotations

from typing import Any, Callable

from ...cache.artifact import Artifact
from .compilers import InductorCompiler


def load_artifact(art: Artifact) -> tuple[Callable[..., Any], dict[str, Any]]:
    """A stored artifact as (callable, meta): Inductor's binary artifact loaded in this process; ``meta``
    is what ``BuildResult.from_meta`` reads."""
    fn, code = InductorCompiler().load(art.data)
    # the artifact's meta is BuildResult.to_meta() without the code, which loading generated again
    return fn, {**art.meta, "compiler": art.compiler, "code": code}
