"""TuneSpace: what ``vx.tune`` searches — dimensions, each a CompileConfig field (or one Inductor
option, ``"inductor_options.<name>"``) with the values to try.

A point of the space is one value per dimension; ``space.config(start, point)`` is the start config
with those values (``start.replace(...)``, so validated like any config). Values a point makes moot
are put back to the start's (the split policy under ``strategy="full"``, ``auto_min_nodes`` unless
``strategy="auto"``, ``cudagraph_full_max`` unless ``cudagraph`` is ``"full_and_piecewise"``, ``cudagraph_whole``
without full captures of a split graph, the
CUDA-graph fields under ``cudagraph="none"``, the GEMM backends outside max-autotune), so two
points that compile alike give one config and are measured once. ``config_diff`` says what a config
changes from the start, as a JSON-ready dict (a trial's ``diff``).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch

from ..config import CompileConfig, did_you_mean, pass_name, pass_uuid
from ..errors import ConfigError, VexploreError

OPTION = "inductor_options."
# fields a trial cannot change: what Dynamo traced (dynamic_dims) and how compiling is organised, not what
# is compiled (the cache, the workers and their timeout, validation: the tuner sets those itself)
FIXED = ("dynamic_dims", "cache", "workers", "compile_timeout_s", "validate")
MAX_AUTOTUNE = ("max-autotune", "max-autotune-no-cudagraphs")
# moot dimensions: (dimension, the condition under which it matters)
_MOOT = (
    ("split_policy", lambda c: c.strategy != "full"),
    ("max_piece_nodes", lambda c: c.strategy != "full"),
    ("max_compile_mb", lambda c: c.strategy != "full"),
    ("auto_min_nodes", lambda c: c.strategy == "auto"),
    ("cudagraph_full_max", lambda c: c.cudagraph in ("full_and_piecewise", "auto")),
    ("cudagraph_whole", lambda c: c.cudagraph in ("full", "full_and_piecewise", "auto") and c.strategy != "full"),
    ("cudagraph_sizes", lambda c: c.cudagraph != "none"),
    ("cudagraph_pad", lambda c: c.cudagraph != "none"),
    ("cudagraph_memory_mb", lambda c: c.cudagraph != "none"),
    (OPTION + "max_autotune_gemm_backends", lambda c: c.mode in MAX_AUTOTUNE),
)


@dataclass(frozen=True)
class TuneSpace:
    """``dims``: dimension -> the values to try (a tuple each, in the order given).

    ``vx.TuneSpace({"strategy": ("full", "piecewise"), "inductor_options.cpp_wrapper": (False, True)})``;
    ``TuneSpace.default(cm, sizes)`` draws one from the model and its device; ``narrow``, ``with_dims``
    and ``without`` make changed copies. Raises ConfigError for a dimension that is no CompileConfig
    field or Inductor option, one the tuner cannot change (``FIXED``), or a value the config refuses."""

    dims: Mapping[str, tuple[Any, ...]]

    def __post_init__(self) -> None:
        if not isinstance(self.dims, Mapping):
            raise ConfigError(f"TuneSpace(dims={self.dims!r}): give a dict of dimension -> values, e.g. "
                              "{'strategy': ('full', 'piecewise')}.")
        out = {}
        for name, values in self.dims.items():
            values = _values(name, values)
            for v in values:
                _check_value(name, v)
            out[name] = values
        object.__setattr__(self, "dims", out)

    # -- making spaces -------------------------------------------------------------------------
    @classmethod
    def default(cls, cm: Any, sizes: Sequence[int | None] = ()) -> "TuneSpace":
        """The space drawn from ``cm`` (its config, captured graphs and device) and the ``sizes`` to tune for."""
        return cls(default_dims(cm, [s for s in sizes if isinstance(s, int)]))

    def narrow(self, **values: Sequence[Any]) -> "TuneSpace":
        """Keep only ``values`` of the fields named (``space.narrow(strategy=("piecewise",))``)."""
        missing = [k for k in values if k not in self.dims]
        if missing:
            raise ConfigError(f"TuneSpace.narrow: {missing} are not dimensions of this space ({', '.join(self.dims)}); "
                              "use with_dims to add one.")
        return self.with_dims(values)

    def with_dims(self, dims: Mapping[str, Sequence[Any] | None]) -> "TuneSpace":
        """A copy with ``dims`` added or replacing those of the same name; a value None removes that dimension."""
        out = dict(self.dims)
        for name, values in dims.items():
            if values is None:
                out.pop(name, None)
            else:
                out[name] = values
        return TuneSpace(out)

    def without(self, *names: str) -> "TuneSpace":
        return self.with_dims(dict.fromkeys(names))

    # -- points and configs --------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Points in the space (before moot values fold points together)."""
        n = 1
        for values in self.dims.values():
            n *= len(values)
        return n

    def points(self) -> Iterator[dict[str, Any]]:
        names = list(self.dims)
        for combo in itertools.product(*(self.dims[n] for n in names)):
            yield dict(zip(names, combo))

    def config(self, start: CompileConfig, point: Mapping[str, Any]) -> CompileConfig:
        """``start`` with ``point``'s values, moot ones put back to the start's. Raises ConfigError for a
        combination the config refuses (e.g. ``max_piece_nodes`` under ``split_policy="ops"``)."""
        fields, options = {}, dict(start.inductor_options)
        for name, value in point.items():
            if name.startswith(OPTION):
                key = name[len(OPTION):]
                if key not in start.inductor_options and _same(value, inductor_default(key)):
                    options.pop(key, None)   # Inductor's own value, left unset: the start's cache keys stay
                else:
                    options[key] = value
            else:
                fields[name] = value
        cfg = start.replace(**fields, inductor_options=options)
        return _fold_moot(cfg, start)

    def configs(self, start: CompileConfig) -> list[CompileConfig]:
        """The distinct configs of the space (the grid), in the order of its points; invalid combinations left out."""
        seen: dict[str, CompileConfig] = {}
        for p in self.points():
            try:
                cfg = self.config(start, p)
            except ConfigError:
                continue
            seen.setdefault(config_key(config_diff(start, cfg)), cfg)
        return list(seen.values())


def _values(name: Any, values: Any) -> tuple[Any, ...]:
    if not isinstance(name, str):
        raise ConfigError(f"TuneSpace: dimension {name!r} is not a name; use a CompileConfig field or "
                          "'inductor_options.<option>'.")
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ConfigError(f"TuneSpace[{name!r}]={values!r}: give a non-empty list of values to try, e.g. "
                          "('full', 'piecewise').")
    return tuple(values)


def _check_value(name: str, value: Any) -> None:
    """ConfigError unless ``name`` is a dimension the tuner may change and ``value`` a value it may take."""
    fields = [f.name for f in dataclasses.fields(CompileConfig)]
    if name in FIXED:
        raise ConfigError(f"TuneSpace: {name!r} cannot be tuned (a trial keeps the start's: "
                          f"{', '.join(FIXED)} decide how compiling is done, not what is compiled).")
    if name.startswith(OPTION):
        CompileConfig(inductor_options={name[len(OPTION):]: value})   # the config module's option-name check
    elif name in fields:
        base = CompileConfig(split_policy="memory") if name in ("max_piece_nodes", "max_compile_mb") else CompileConfig()
        base.replace(**{name: value})
    else:
        raise ConfigError(f"TuneSpace: {name!r} is neither a CompileConfig field nor 'inductor_options.<option>'."
                          f"{did_you_mean(name, fields)}")


def _fold_moot(cfg: CompileConfig, start: CompileConfig) -> CompileConfig:
    changes: dict[str, Any] = {}
    options = dict(cfg.inductor_options)
    for name, matters in _MOOT:
        if matters(cfg):
            continue
        if name.startswith(OPTION):
            key = name[len(OPTION):]
            if key in start.inductor_options:
                options[key] = start.inductor_options[key]
            else:
                options.pop(key, None)
        else:
            changes[name] = getattr(start, name)
    if options != dict(cfg.inductor_options):
        changes["inductor_options"] = options
    if not changes:
        return cfg
    try:
        return cfg.replace(**changes)
    except ConfigError:   # the start's values do not fit here (e.g. its bounds under another policy): keep them
        return cfg


@functools.lru_cache(maxsize=None)
def inductor_default(name: str) -> Any:
    """Inductor's value of option ``name`` (dotted for sections) in this process: what an unset option means."""
    import torch._inductor.config as inductor_config   # the option values live there (names checked by config.py)

    return functools.reduce(getattr, name.split("."), inductor_config)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


def plain(v: Any) -> Any:
    """A config value as JSON holds it: tuples as lists, a post-grad pass as "name uuid=..."."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    if callable(getattr(v, "uuid", None)):
        return f"{pass_name(v)} uuid={pass_uuid(v)}"
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def config_diff(start: CompileConfig, cfg: CompileConfig) -> dict[str, Any]:
    """What ``cfg`` changes from ``start``, JSON-ready: ``{"strategy": "full", "inductor_options.cpp_wrapper": true}``
    (an option the start sets and ``cfg`` leaves unset shows as ``"<unset>"``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(CompileConfig):
        if f.name == "inductor_options":
            continue
        a, b = getattr(start, f.name), getattr(cfg, f.name)
        if plain(a) != plain(b):
            out[f.name] = plain(b)
    old, new = start.inductor_options, cfg.inductor_options
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out[OPTION + key] = "<unset>"
        elif key not in old or plain(old[key]) != plain(new[key]):
            out[OPTION + key] = plain(new[key])
    return out


def config_key(diff: Mapping[str, Any]) -> str:
    """One text per distinct config (its diff from the start, sorted)."""
    import json

    return json.dumps(diff, sort_keys=True, default=str)


def apply_diff(start: CompileConfig, diff: Mapping[str, Any]) -> CompileConfig:
    """``start`` with a saved ``diff`` applied (lists back to tuples). Raises VexploreError for what a saved
    diff cannot rebuild: post-grad passes (saved by name and uuid only)."""
    fields, options = {}, dict(start.inductor_options)
    for name, value in diff.items():
        if name.startswith(OPTION):
            if value == "<unset>":
                options.pop(name[len(OPTION):], None)
            else:
                options[name[len(OPTION):]] = value
        elif name == "post_grad_passes":
            raise VexploreError("a saved tune result names its post-grad passes only (name and uuid); rebuild the "
                                "config with the pass objects: start.replace(post_grad_passes=(MyPass(),), ...).")
        else:
            fields[name] = tuple(value) if isinstance(value, list) else value
    return start.replace(**fields, inductor_options=options)


def default_dims(cm: Any, sizes: Sequence[int]) -> dict[str, tuple[Any, ...]]:
    """The default dimensions for ``cm``: see docs/api.md (vx.TuneSpace)."""
    start: CompileConfig = cm.config
    cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for g in cm.graphs for x in g.real_inputs)
    # "auto" picks one of the two per graph: the start is trial 0 whatever it is, so the points are the two
    strategies = ("full", "piecewise")
    dims: dict[str, tuple[Any, ...]] = {"strategy": _first(start.strategy, strategies) if start.strategy in strategies
                                        else strategies}
    dims["split_policy"] = _first(start.split_policy, ("ops", "repeats") if _has_repeats(cm) else ("ops",))
    if cuda:
        dims["cudagraph"] = _first(start.cudagraph, ("none", "piecewise", "full", "full_and_piecewise"))
        dims["cudagraph_full_max"] = _first(start.cudagraph_full_max, tuple(s for s in sizes if s <= 512))
        dims["cudagraph_whole"] = _first(start.cudagraph_whole, (False, True))
    wanted = tuple(sorted(set(sizes)))
    if wanted and wanted != start.compile_sizes:
        dims["compile_sizes"] = (start.compile_sizes, wanted)
    if start.compiler == "inductor":
        dims["mode"] = _first(start.mode, ("default", "max-autotune-no-cudagraphs"))
        for name, values in (_CUDA_OPTIONS if cuda else _CPU_OPTIONS).items():
            now = start.inductor_options.get(name, inductor_default(name))
            dims[OPTION + name] = _first(now, values)
    return {k: v for k, v in dims.items() if len(v) > 1}


# Inductor options worth a trial. CUDA: Triton kernels' launch parameters tuned by coordinate descent,
# epilogues fused into GEMM templates, which GEMM backends max-autotune picks among. CPU: the C++ wrapper
# (the per-call Python wrapper code becomes C++: less host overhead for small calls) and freezing (weights
# become constants, so linear layers use prepacked oneDNN weights).
_CUDA_OPTIONS = {"coordinate_descent_tuning": (False, True), "epilogue_fusion": (True, False),
                 "max_autotune_gemm_backends": ("ATEN,TRITON", "TRITON", "ATEN")}
_CPU_OPTIONS = {"cpp_wrapper": (False, True), "freezing": (False, True)}


def _first(now: Any, values: Sequence[Any]) -> tuple[Any, ...]:
    """``values`` with ``now`` (the start's) first, once."""
    return (now, *(v for v in values if not _same(v, now)))


def _has_repeats(cm: Any) -> bool:
    """Whether a captured graph holds repeated blocks (as the repeats split policy finds them)."""
    from ..engine.split.repeats import module_repeats

    return any(module_repeats(list(g.gm.graph.nodes)) for g in cm.graphs)
