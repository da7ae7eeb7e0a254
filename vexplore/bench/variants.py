"""What a benchmark runs: each variant's name, how it was compiled, and its callable per size.

The torch baselines are what a demanding user would pick instead of vexplore, compiled static
per size (``dynamic=False``, one compile per size, as a decode loop with fixed shapes gets):
``torch-default``, ``torch-reduce-overhead`` (CUDA graphs: the fastest decode torch offers) and
``torch-max-autotune-no-cudagraphs``. vexplore configs are named
``vexplore-<strategy>-<cudagraph>``, with what else differs from the default config in brackets.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, Sequence, Union

import torch

from ..config import CompileConfig
from ..engine.model import compile as vx_compile
from ..engine.model import entry_point
from ..errors import VexploreError

VariantSpec = Union[str, CompileConfig, tuple, "Variant"]
TORCH_MODES = {"torch-default": "default", "torch-reduce-overhead": "reduce-overhead",
               "torch-max-autotune-no-cudagraphs": "max-autotune-no-cudagraphs"}
# Fields that do not change what runs, or that every benchmark sets: not part of a variant's name.
_UNNAMED = {"strategy", "cudagraph", "splitting_ops", "cache", "validate", "workers", "compile_timeout_s"}


@dataclass(frozen=True)
class Variant:
    name: str
    compiled_as: str                             # how it was compiled, in words a user can repeat
    make: Callable[[int | None], Callable[..., Any]]   # the callable to time at a size


def variant_name(cfg: CompileConfig) -> str:
    """``vexplore-<strategy>-<cudagraph>``, plus ``[field=value, ...]`` for what else differs
    from the default config (so two configs never share a name)."""
    default = CompileConfig()
    diff = [f"{f.name}={_short(getattr(cfg, f.name))}" for f in fields(CompileConfig)
            if f.name not in _UNNAMED and getattr(cfg, f.name) != getattr(default, f.name)]
    base = f"vexplore-{cfg.strategy}-{cfg.cudagraph}"
    return f"{base}[{', '.join(diff)}]" if diff else base


def _short(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    if isinstance(v, Mapping):
        return ",".join(f"{k}:{x}" for k, x in v.items())
    return str(v)


def _config_text(cfg: CompileConfig) -> str:
    keep = ("strategy", "cudagraph", "splitting_ops")
    parts = [f"{k}={getattr(cfg, k)!r}" for k in keep]
    default = CompileConfig()
    parts += [f"{f.name}={getattr(cfg, f.name)!r}" for f in fields(CompileConfig)
              if f.name not in _UNNAMED and getattr(cfg, f.name) != getattr(default, f.name)]
    return f"vx.compile(model, CompileConfig({', '.join(parts)}))"


def _once(fn: Callable[..., Any]) -> Callable[[int | None], Callable[..., Any]]:
    return lambda size: fn


def _per_size(model: Any, mode: str) -> Callable[[int | None], Callable[..., Any]]:
    """A fresh torch.compile(dynamic=False) per size. Each wraps the model in a code object of
    its own (entry_point), so the compiles never share Dynamo's per-code recompile limit (8),
    past which torch would run the model eagerly without a word."""
    made: dict[int | None, Callable[..., Any]] = {}

    def make(size: int | None) -> Callable[..., Any]:
        if size not in made:
            made[size] = torch.compile(entry_point(model), mode=None if mode == "default" else mode, dynamic=False)
        return made[size]
    return make


def resolve(model: Any, specs: Sequence[VariantSpec] | Mapping[str, Any], session: Any) -> list[Variant]:
    """Variants from names ("eager", "torch-default", "torch-reduce-overhead",
    "torch-max-autotune-no-cudagraphs"), vx.CompileConfig objects, (name, callable or config)
    pairs and Variants resolved before; ``model`` None when a dict of callables was given."""
    items = list(specs.items()) if isinstance(specs, Mapping) else list(specs)
    out: list[Variant] = []
    for v in items:
        name, what = (v if isinstance(v, tuple) else (None, v))
        if model is None and isinstance(what, (CompileConfig, str)):
            raise VexploreError(f"vx.benchmark: variant {name or what!r} needs a model, but a dict of callables "
                                "was given; pass the model first and the variants as the third argument.")
        if isinstance(what, Variant):        # resolved before: reused as it is (no new compile)
            out.append(what)
        elif isinstance(what, CompileConfig):
            out.append(Variant(name or variant_name(what), _config_text(what), _once(vx_compile(model, what, session=session))))
        elif what == "eager":
            out.append(Variant(name or "eager", "eager PyTorch (the model as it is)", _once(model)))
        elif isinstance(what, str) and what in TORCH_MODES:
            mode = TORCH_MODES[what]
            out.append(Variant(name or what, f"torch.compile(model, mode={mode!r}, dynamic=False), one compile per size",
                               _per_size(model, mode)))
        elif callable(what):
            out.append(Variant(name or getattr(what, "__name__", "callable"), "a callable, as given", _once(what)))
        else:
            raise VexploreError(f"vx.benchmark: variant {v!r} is unknown; use 'eager', "
                                f"{', '.join(repr(k) for k in TORCH_MODES)}, a vx.CompileConfig, or a (name, callable) pair.")
    names = [x.name for x in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise VexploreError(f"vx.benchmark: two variants are both named {', '.join(dup)}; name them with (name, variant) pairs.")
    return out
