"""Errors and warnings vexplore raises.

Every user-facing error says what went wrong, where, and how to fix it.
"""
from __future__ import annotations

from typing import Iterator


class VexploreError(Exception):
    """Base class of every error vexplore raises on purpose."""


class ConfigError(VexploreError, ValueError):
    """A CompileConfig or CacheConfig field holds a value vexplore cannot use."""


class CompileError(VexploreError, RuntimeError):
    """Compiling a piece failed and ``fallback=False`` asked to re-raise."""


class CancelledError(VexploreError):
    """A compile was cancelled through ``Session.monitor.cancel()``."""


class VexploreWarning(UserWarning):
    """Base class of vexplore's warnings."""


class VexploreFallbackWarning(VexploreWarning):
    """One or more pieces did not compile with the configured compiler (one per compile)."""


class VexploreValidationWarning(VexploreWarning):
    """A compiled piece disagreed with eager PyTorch on the example inputs."""


class VexplorePerformanceWarning(VexploreWarning):
    """vexplore ran correctly but slower than it could: e.g. an eval() model called with grad enabled."""


class VexploreBenchWarning(VexploreWarning):
    """A benchmark figure is not to be trusted: a variant over the accuracy gate, a model in training mode."""


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it wraps, innermost last: an Inductor error's ``inner_exception`` where it
    has one, else its ``__cause__`` or ``__context__`` (each exception once, so a cycle ends)."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        inner = getattr(e, "inner_exception", None)
        e = inner if isinstance(inner, BaseException) else (e.__cause__ or e.__context__)
