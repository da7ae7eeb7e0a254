"""CompileConfig and CacheConfig: frozen, validated on creation.

Every field vexplore reads lives here, so the explorer's controls, the CLI and the cache key
all agree on one list.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

from .errors import ConfigError

STRATEGIES = ("auto", "full", "piecewise")
COMPILERS = ("inductor", "eager")
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("none", "piecewise", "full", "full_and_piecewise", "auto")
CUDAGRAPH_CAPTURES = ("ahead", "first_call")
TIERS = ("memory", "disk", "remote")
SPLIT_POLICIES = ("ops", "repeats", "memory")
# split_policy="memory" with neither bound set: pieces of at most this estimated compile memory.
DEFAULT_MAX_COMPILE_MB = 256.0

# The attention calls a plain PyTorch model leaves in a Dynamo graph, in the forms they take
# there (Dynamo records the Python-level callable it saw, or an aten overload after
# decomposition), plus the built-in toy model's custom op.
DEFAULT_SPLITTING_OPS: tuple[str, ...] = (
    "torch._C._nn.scaled_dot_product_attention",
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
    "torch._native_multi_head_attention",
    "aten::scaled_dot_product_attention",
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
    "aten::_native_multi_head_attention",
    "vexplore::attention",
)

# Inductor options for the second rung of the fallback ladder: every optimisation that is
# known to trip lowering bugs switched off, correctness-relevant settings left alone.
CONSERVATIVE_INDUCTOR_OPTIONS: dict[str, Any] = {
    "max_autotune": False,
    "max_autotune_gemm": False,
    "max_autotune_pointwise": False,
    "coordinate_descent_tuning": False,
    "epilogue_fusion": False,
    "pattern_matcher": False,
    "freezing": False,
    "cpp_wrapper": False,
    "triton.cudagraphs": False,
    "split_reductions": False,
    "aggressive_fusion": False,
    "fallback_random": True,
}

_TORCH_OP = re.compile(r"^[A-Za-z_]\w*::[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")
_PY_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def validate_op_name(name: object, where: str) -> str:
    """Return ``name`` if it is an op name as ``vx.op_name`` gives them, else raise ConfigError."""
    if not isinstance(name, str) or not (_TORCH_OP.match(name) or _PY_NAME.match(name)):
        raise ConfigError(
            f"{where}: {name!r} is not an op name. Use 'namespace::op' or 'namespace::op.overload' "
            "for torch ops (e.g. 'mylib::attention') or the dotted qualified name of a Python "
            "callable (e.g. 'torch._C._nn.scaled_dot_product_attention'); vx.op_name(node) "
            "prints the name of any graph node."
        )
    return name


def pass_uuid(p: object) -> str | None:
    """A post-grad pass's ``uuid()`` as text (bytes as hex), or None when it has no usable one."""
    fn = getattr(p, "uuid", None)
    try:
        u = fn() if callable(fn) else None
    except Exception:
        return None
    if isinstance(u, bytes):
        return u.hex() or None
    return u if isinstance(u, str) and u else None


def pass_name(p: object) -> str:
    """What a report calls a pass: its class's qualified name (a function's own)."""
    return getattr(p, "__qualname__", None) or type(p).__qualname__


def _check_passes(value: object) -> tuple[Any, ...]:
    """``post_grad_passes`` as a tuple, each entry a pass Inductor can run and cache by its uuid."""
    how = ("a subclass of Inductor's CustomGraphPass (from vexplore.engine.split.passes import CustomGraphPass): "
           "__call__(self, graph: torch.fx.Graph) rewrites "
           "the graph in place, uuid(self) returns a str or bytes that changes whenever what the pass does changes "
           "(e.g. a hash of its source), e.g. vexplore.engine.split.passes.AddSelfToMul()")
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"CompileConfig.post_grad_passes={value!r}: give a tuple of passes, e.g. (MyPass(),); "
                          f"each is {how}.")
    for i, p in enumerate(value):
        where = f"CompileConfig.post_grad_passes[{i}]={p!r}"
        fn = getattr(p, "uuid", None)
        if not callable(p) or not callable(fn):
            raise ConfigError(f"{where} is not a post-grad pass ({'not callable' if not callable(p) else 'no uuid()'}); "
                              f"use {how}.")
        try:
            u = fn()
        except Exception as e:
            raise ConfigError(f"{where}: uuid() raised {type(e).__name__}: {e}; a CustomGraphPass's uuid() must "
                              "return a str or bytes.") from e
        if not isinstance(u, (str, bytes)) or not u:
            raise ConfigError(f"{where}: uuid() returned {u!r}; a CustomGraphPass's uuid() must return a non-empty "
                              "str or bytes that names what the pass does: the cache key holds it, so compiles with "
                              "the same passes hit across processes.")
    return tuple(value)


def _option_text(v: object) -> str:
    """An Inductor option's value as the cache key holds it: a pass by its uuid (a repr holds a memory
    address, so it would never hit in another process), anything else by its repr."""
    u = pass_uuid(v) if callable(getattr(v, "uuid", None)) else None
    return f"{pass_name(v)} uuid={u}" if u is not None else repr(v)


def did_you_mean(name: object, valid: Sequence[str]) -> str:
    """`` Did you mean 'x'?`` for the valid name nearest ``name`` (difflib), or "" when none is near."""
    near = difflib.get_close_matches(name, valid, n=1, cutoff=0.6) if isinstance(name, str) else []
    return f" Did you mean {near[0]!r}?" if near else ""


def _inductor_option_names() -> tuple[list[str], Callable[[str], bool]]:
    """The installed torch's Inductor option names (nested sections dotted, e.g. "triton.cudagraphs"),
    and a test for the names list_options() leaves out but Inductor accepts (aliases)."""
    # Private torch module outside engine/_torch_compat.py, on purpose (tests/test_layering.py allows these
    # two names): Inductor's config module is the one place torch keeps its option names (torch.compile's
    # docs point to list_options()), and config.py, below the engine, may not import engine/_torch_compat.
    # Imported only for a config that sets options: it costs about a second. torch 2.0+.
    import torch
    import torch._inductor.config as inductor_config

    def resolves(name: str) -> bool:   # e.g. force_disable_caches, an alias of another module's option
        if name in vars(inductor_config):   # "os", "triton" (a section): module attributes, not options
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a deprecated option warns when read; it is still an option
            try:
                getattr(inductor_config, name)
            except Exception:
                return False
        return True

    return torch._inductor.list_options(), resolves


def _check_inductor_options(options: Mapping[Any, Any]) -> None:
    """ConfigError for the first key of ``options`` that the installed torch's Inductor lacks."""
    if not options:
        return
    import torch

    known, resolves = _inductor_option_names()
    listed = set(known)
    for name in options:
        if name not in listed and not (isinstance(name, str) and resolves(name)):
            raise ConfigError(
                f"CompileConfig.inductor_options: {name!r} is not an Inductor option of the installed torch "
                f"{torch.__version__}.{did_you_mean(name, known)} Options of nested sections are dotted "
                "(e.g. 'triton.cudagraphs'); torch._inductor.list_options() lists them all.")


def _one_of(value: object, allowed: Sequence[str], where: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}.")


def _sizes(value: object, where: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}={value!r}: give a list of positive integers, e.g. [1, 16].")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{where}: {v!r} is not a positive integer size; sizes count tokens and must be >= 1.")
        out.append(v)
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class CacheConfig:
    """Which cache tiers a compile uses and where they live.

    ``dir`` left out (None) is ``$VEXPLORE_CACHE_DIR`` when that is set, else ``~/.cache/vexplore``;
    a ``dir`` given here wins over the environment. ``remote_url`` is a Redis URL
    (``REMOTE_URL_FORM``), checked on creation.
    """

    DEFAULT_DIR = "~/.cache/vexplore"   # class constants (no annotation: not fields)
    DIR_ENV = "VEXPLORE_CACHE_DIR"
    REMOTE_URL_FORM = "redis://[:password@]host[:port][/db] (rediss:// for TLS, unix:///path/to/redis.sock)"

    tiers: tuple[str, ...] = ("memory", "disk")
    dir: str | None = None              # None: $VEXPLORE_CACHE_DIR, else DEFAULT_DIR
    remote_url: str | None = None
    memory_entries: int = 256
    memory_bytes: int | None = None
    disk_max_bytes: int = 5 * 1024**3
    remote_prefix: str = "vexplore:"
    remote_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        tiers = (self.tiers,) if isinstance(self.tiers, str) else tuple(self.tiers)
        for t in tiers:
            _one_of(t, TIERS, "CacheConfig.tiers entry")
        if "remote" in tiers and not self.remote_url:
            raise ConfigError("CacheConfig: tier 'remote' needs remote_url='redis://host:port/db'.")
        if self.remote_url and (why := self.remote_url_problem(self.remote_url)):
            raise ConfigError(f"CacheConfig.remote_url={self.redact(self.remote_url)!r} {why}; "
                              f"give {self.REMOTE_URL_FORM}.")
        if self.dir is None:
            object.__setattr__(self, "dir", os.environ.get(self.DIR_ENV) or self.DEFAULT_DIR)
        if self.memory_entries <= 0:
            raise ConfigError(f"CacheConfig.memory_entries={self.memory_entries!r}: must be >= 1.")
        if self.disk_max_bytes <= 0:
            raise ConfigError(f"CacheConfig.disk_max_bytes={self.disk_max_bytes!r}: must be > 0.")
        object.__setattr__(self, "tiers", tuple(dict.fromkeys(tiers)))

    @staticmethod
    def redact(url: object) -> object:
        """``url`` with its password replaced by *** (for messages); anything but a str as it is."""
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url) if isinstance(url, str) else url

    @staticmethod
    def remote_url_problem(url: object) -> str | None:
        """Why redis-py could not open ``url`` (e.g. "is not a redis:// URL"), or None when it can."""
        if not isinstance(url, str):
            return "is not a string"
        u = urlparse(url)
        if u.scheme not in ("redis", "rediss", "unix"):
            return "is not a redis:// URL"
        if u.scheme == "unix":
            return None if u.path else "names no socket path"
        try:
            u.port
        except ValueError:
            return "has a port that is not a number from 0 to 65535"
        db = u.path.strip("/")
        return None if not db or db.isdigit() else f"names database {db!r}, but Redis databases are numbers"


@dataclass(frozen=True)
class CompileConfig:
    """Everything that decides how vexplore compiles a model; validated on creation.

    ``vx.CompileConfig(strategy="piecewise", splitting_ops=["mylib::attention"])``; change a
    field with ``cfg.replace(cudagraph="full")``. Each field's meaning is in the comment beside it
    and in docs/api.md (CompileConfig); a value vexplore cannot use raises ConfigError, naming it.
    """

    strategy: str = "auto"                      # "full" (one piece) | "piecewise" (cut at split ops) | "auto"
    splitting_ops: tuple[str, ...] | None = None   # op names as vx.op_name gives them; None: the attention ops
    compiler: str = "inductor"                  # "inductor" | "eager" (pieces run as traced)
    mode: str = "default"                       # Inductor's mode: "default" | "max-autotune" | ...
    inductor_options: Mapping[str, Any] = field(default_factory=dict)   # merged into Inductor's config
    dynamic_dims: Mapping[int | str, tuple[int, ...]] = field(default_factory=dict)   # {position or keyword: dims}; {}: found (tokendims.py)
    compile_sizes: tuple[int, ...] = ()         # static compiles of the token dim besides the general one
    # "none" | "piecewise" (each compiled piece, split ops eager between) | "full" (the whole graph,
    # split ops included) | "full_and_piecewise" (full up to cudagraph_full_max tokens, piecewise
    # above) | "auto" (full_and_piecewise on a CUDA device, none elsewhere)
    cudagraph: str = "auto"
    # full_and_piecewise: full graphs up to this many tokens (512: every default capture size; a size whose
    # full capture fails falls back to piecewise graphs). Lower it to keep attention out of large graphs.
    cudagraph_full_max: int = 512
    # Full captures replay the graph compiled whole (one more Inductor compile: the unsplit graph, no split
    # ops cut out) instead of the compiled pieces stitched: what crosses a piece boundary is fused as in a
    # torch.compile graph. CUDA only; the pieces still serve every size above cudagraph_full_max.
    # "background": built off the call path (the stitched pieces' full graphs serve until it is ready).
    cudagraph_whole: bool | str = False
    cudagraph_sizes: tuple[int, ...] | None = None   # capture sizes; None: 2..512 in powers of two
    # When each capture size is captured: "ahead" (in the compiling call, every size the size plan allows,
    # as vLLM captures at start-up) | "first_call" (each size at its first call, with that call, as torch's
    # reduce-overhead does: the compiling call captures only its own size).
    cudagraph_capture: str = "ahead"
    # Device memory captures may take; a size estimated above it runs without graphs. None: 90 % of what is free.
    cudagraph_memory_mb: float | None = None
    fallback: bool = True                       # False: a failed compile raises instead of falling back
    validate: bool = False                      # compare with eager on the compile's own inputs
    workers: int | str = 0                      # compile worker processes; 0: in this process; "ray": Ray tasks
    compile_timeout_s: float = 600              # per piece, enforced in workers (processes or Ray tasks)
    cache: CacheConfig = field(default_factory=CacheConfig)
    # strategy="auto" picks piecewise only for graphs with split ops and at least this many nodes.
    auto_min_nodes: int = 8
    # Pad a call up to the next captured CUDA-graph size (changes results of ops that mix tokens).
    cudagraph_pad: bool = False
    # Inductor post-grad passes (torch CustomGraphPass: __call__(graph), uuid()), run in order on every piece.
    post_grad_passes: tuple[Any, ...] = ()
    # Where piecewise (and auto) cuts besides the split ops: "ops" (only there) | "repeats" (also at the
    # boundaries of repeated blocks, so identical blocks compile once) | "memory" (also wherever a piece
    # would pass max_piece_nodes / max_compile_mb, where the fewest bytes cross). strategy="full": ignored.
    split_policy: str = "ops"
    max_piece_nodes: int | None = None          # "memory" (and "repeats", inside blocks): nodes per piece
    max_compile_mb: float | None = None         # ... estimated compile memory per piece; "memory" with neither: 256

    def __post_init__(self) -> None:
        _one_of(self.strategy, STRATEGIES, "CompileConfig.strategy")
        _one_of(self.compiler, COMPILERS, "CompileConfig.compiler")
        _one_of(self.mode, MODES, "CompileConfig.mode")
        _one_of(self.cudagraph, CUDAGRAPH_MODES, "CompileConfig.cudagraph")
        ops = self.splitting_ops
        if ops is None:
            ops = DEFAULT_SPLITTING_OPS
        elif isinstance(ops, str) or not isinstance(ops, Sequence):
            raise ConfigError(f"CompileConfig.splitting_ops={ops!r}: give a list of op names, e.g. ['mylib::attention'].")
        ops = tuple(validate_op_name(o, "CompileConfig.splitting_ops") for o in ops)
        object.__setattr__(self, "splitting_ops", ops)
        if not isinstance(self.inductor_options, Mapping):
            raise ConfigError("CompileConfig.inductor_options must be a dict of Inductor config names to values.")
        _check_inductor_options(self.inductor_options)
        object.__setattr__(self, "inductor_options", dict(sorted(self.inductor_options.items())))
        object.__setattr__(self, "dynamic_dims", self._check_dynamic_dims(self.dynamic_dims))
        object.__setattr__(self, "compile_sizes", _sizes(self.compile_sizes, "CompileConfig.compile_sizes"))
        if isinstance(self.cudagraph_full_max, bool) or not isinstance(self.cudagraph_full_max, int) or self.cudagraph_full_max < 0:
            raise ConfigError(f"CompileConfig.cudagraph_full_max={self.cudagraph_full_max!r}: a token count >= 0 "
                              "(full CUDA graphs up to it, piecewise above).")
        if not isinstance(self.cudagraph_whole, bool) and self.cudagraph_whole != "background":
            raise ConfigError(f"CompileConfig.cudagraph_whole={self.cudagraph_whole!r}: True (full CUDA graphs replay the "
                              "graph compiled whole, built in the compiling call), \"background\" (the same, built off "
                              "the call path) or False (the compiled pieces, stitched).")
        if self.cudagraph_capture not in CUDAGRAPH_CAPTURES:
            raise ConfigError(f"CompileConfig.cudagraph_capture={self.cudagraph_capture!r}: one of "
                              f"{', '.join(map(repr, CUDAGRAPH_CAPTURES))} (every capture size in the compiling call, or "
                              "each at its first call).")
        mb = self.cudagraph_memory_mb
        if mb is not None and (isinstance(mb, bool) or not isinstance(mb, (int, float)) or mb <= 0):
            raise ConfigError(f"CompileConfig.cudagraph_memory_mb={mb!r}: a positive number of MiB, or None "
                              "(90 % of the device's free memory).")
        if self.cudagraph_sizes is not None:
            object.__setattr__(self, "cudagraph_sizes", _sizes(self.cudagraph_sizes, "CompileConfig.cudagraph_sizes"))
        if self.workers != "ray" and (isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0):
            raise ConfigError(f"CompileConfig.workers={self.workers!r}: use 0 (compile in this process), a positive count "
                              "of worker processes, or \"ray\" (each unique piece a Ray task on a Ray cluster).")
        if not self.compile_timeout_s or self.compile_timeout_s <= 0:
            raise ConfigError(f"CompileConfig.compile_timeout_s={self.compile_timeout_s!r}: must be > 0 seconds.")
        if not isinstance(self.cache, CacheConfig):
            raise ConfigError("CompileConfig.cache must be a vx.CacheConfig(...).")
        if self.auto_min_nodes < 0:
            raise ConfigError(f"CompileConfig.auto_min_nodes={self.auto_min_nodes!r}: must be >= 0.")
        object.__setattr__(self, "post_grad_passes", _check_passes(self.post_grad_passes))
        self._check_split_policy()
        if self.post_grad_passes and "post_grad_custom_post_pass" in self.inductor_options:
            raise ConfigError("CompileConfig: inductor_options['post_grad_custom_post_pass'] and post_grad_passes "
                              "both set Inductor's post-grad pass; move that pass into post_grad_passes.")

    def _check_split_policy(self) -> None:
        _one_of(self.split_policy, SPLIT_POLICIES, "CompileConfig.split_policy")
        n, mb = self.max_piece_nodes, self.max_compile_mb
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"CompileConfig.max_piece_nodes={n!r}: a node count >= 1 (graph nodes per piece), "
                              "or None (no bound on nodes).")
        if mb is not None and (isinstance(mb, bool) or not isinstance(mb, (int, float)) or not mb > 0):
            raise ConfigError(f"CompileConfig.max_compile_mb={mb!r}: a positive number of MB (estimated compile "
                              "memory per piece), or None (no bound on it).")
        if self.split_policy == "ops" and (n is not None or mb is not None):
            field_ = "max_piece_nodes" if n is not None else "max_compile_mb"
            raise ConfigError(f"CompileConfig.{field_} bounds pieces only under split_policy='memory' (or 'repeats', "
                              "inside and between blocks), and split_policy='ops' cuts at splitting_ops only; "
                              "add split_policy='memory', or leave the bound out.")

    @staticmethod
    def _check_dynamic_dims(value: object) -> dict[int | str, tuple[int, ...]]:
        if not isinstance(value, Mapping):
            raise ConfigError("CompileConfig.dynamic_dims: give {input position or keyword: dim or [dims]}, "
                              "e.g. {'input_ids': 1} or {0: 0}; {} finds the token dim itself.")
        out: dict[int | str, tuple[int, ...]] = {}
        for k, dims in value.items():
            dims = (dims,) if isinstance(dims, int) else tuple(dims)
            key_ok = (isinstance(k, int) and not isinstance(k, bool) and k >= 0) or (isinstance(k, str) and k.isidentifier())
            if not key_ok or not dims or any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in dims):
                raise ConfigError(f"CompileConfig.dynamic_dims[{k!r}]={dims!r}: keys are input positions (ints >= 0) "
                                  "or keyword names, values a dim or dims (ints >= 0), e.g. {'input_ids': 1}.")
            out[k] = dims
        return dict(sorted(out.items(), key=lambda kv: (isinstance(kv[0], str), str(kv[0]))))

    def replace(self, **changes: Any) -> "CompileConfig":
        """A copy with ``changes`` applied (validated like a new config); a name that is no field
        raises ConfigError with the nearest field (``cm.recompile(**changes)`` comes here too)."""
        fields = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in fields:
                raise ConfigError(f"{name!r} is not a CompileConfig field (in cfg.replace(...) or "
                                  f"cm.recompile(...)).{did_you_mean(name, fields)} Fields: {', '.join(fields)}.")
        return dataclasses.replace(self, **changes)

    def compile_relevant(self) -> dict[str, Any]:
        """The fields that change what a compiled artifact is (they go into the cache key)."""
        d: dict[str, Any] = {"compiler": self.compiler, "mode": self.mode,
                             "inductor_options": {k: _option_text(v) for k, v in self.inductor_options.items()}}
        if self.post_grad_passes:   # keys of configs without passes stay as they were
            d["post_grad_passes"] = [pass_uuid(p) for p in self.post_grad_passes]
        return d

    def pass_record(self) -> tuple[tuple[str, str], ...]:
        """(name, uuid) of each post-grad pass, in the order they run."""
        return tuple((pass_name(p), pass_uuid(p) or "") for p in self.post_grad_passes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(dataclasses.replace(self, post_grad_passes=()))   # asdict would deep-copy passes
        d["inductor_options"] = {k: _option_text(v) for k, v in self.inductor_options.items()}
        d["post_grad_passes"] = [list(p) for p in self.pass_record()]
        d["dynamic_dims"] = {str(k): list(v) for k, v in self.dynamic_dims.items()}
        return d
