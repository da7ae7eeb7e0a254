"""What a benchmark runs: each variant's name, how it was compiled, and its callable per size.

The torch baselines are what a demanding user would pick instead of vexplore, compiled static
per size (``dynamic=False``, one compile per size, as a decode loop with fixed shapes gets):
``torch-default``, ``torch-reduce-overhead`` (CUDA graphs: the fastest decode torch offers) and
``torch-max-autotune-no-cudagraphs``. vexplore configs are named
``vexplore-<strategy>-<cudagraph>``, with what else differs from the default config in brackets.
"""
from __future__ import annotations

import json
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


def variant_name(cfg: CompileConfig | Mapping[str, Any]) -> str:
    """``vexplore-<strategy>-<cudagraph>``, plus ``[field=value, ...]`` for what else differs
    from the default config (so two configs never share a name). ``cfg`` may also be a report's
    ``config`` (``CompileConfig.to_dict()``, as saved and loaded)."""
    if isinstance(cfg, Mapping):
        return _name_of_dict(cfg)
    default = CompileConfig()
    diff = [f"{f.name}={_short(getattr(cfg, f.name))}" for f in fields(CompileConfig)
            if f.name not in _UNNAMED and getattr(cfg, f.name) != getattr(default, f.name)]
    base = f"vexplore-{cfg.strategy}-{cfg.cudagraph}"
    return f"{base}[{', '.join(diff)}]" if diff else base


def variant_names(configs: Sequence[CompileConfig | Mapping[str, Any]]) -> list[str]:
    """``variant_name`` of each config, plus the fields that tell apart configs sharing that name
    (``splitting_ops``, ``cache.tiers``, ...; a default value as ``default``, long lists shortened),
    so configs that differ do not share a name in the list, and equal configs keep equal names."""
    names = [variant_name(c) for c in configs]
    flat = [_flat(_plain(c.to_dict() if isinstance(c, CompileConfig) else c)) for c in configs]
    default = _flat(_plain(CompileConfig().to_dict()))
    out = []
    for name, mine in zip(names, flat):
        group = [f for n, f in zip(names, flat) if n == name]
        keys = [k for k in dict.fromkeys(k for f in group for k in f)
                if len({json.dumps(f.get(k), sort_keys=True) for f in group}) > 1]
        extra = [f"{k}={_brief(mine.get(k), default.get(k))}" for k in keys]
        out.append(name if not extra else (name[:-1] + ", " if name.endswith("]") else name + "[") + ", ".join(extra) + "]")
    return out


def _name_of_dict(cfg: Mapping[str, Any]) -> str:
    """variant_name of a config dict; values compare as JSON gives them back (tuples as lists)."""
    got, default = _plain(cfg), _plain(CompileConfig().to_dict())
    diff = [f"{k}={_short(got[k])}" for k in default if k not in _UNNAMED and k in got and got[k] != default[k]]
    base = f"vexplore-{got.get('strategy', '?')}-{got.get('cudagraph', '?')}"
    return f"{base}[{', '.join(diff)}]" if diff else base


def _brief(v: Any, default: Any) -> str:
    """A value for a name: ``default`` where it is the default's, lists of more than 3 shortened."""
    if v == default:
        return "default"
    if isinstance(v, list) and len(v) > 3:
        return f"{_short(v[:2])},+{len(v) - 2} more"
    return _short(v) or "none"


def _plain(d: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(d), default=str))


def _flat(d: Mapping[str, Any]) -> dict[str, Any]:
    """``{"cache": {"tiers": ...}}`` -> ``{"cache.tiers": ...}`` (one level: the cache config)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update({f"{k}.{kk}": vv for kk, vv in v.items()} if k == "cache" and isinstance(v, Mapping) else {k: v})
    return out


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
