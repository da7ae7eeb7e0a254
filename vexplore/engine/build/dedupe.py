"""Planning: each compiled piece's normalised graph and unique key, and a PieceJob per unique
piece and size (the general, dynamic compile and each of ``compile_sizes`` where the piece's
inputs carry the token count), with the cache key it is stored under."""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

import torch

from ...cache.keys import CacheKey
from ...cache.keys import versions as cache_versions
from ...config import CompileConfig
from .. import _torch_compat as tc
from ..capture.captured import CapturedGraph
from ..split.fingerprint import fingerprint, inputs_text
from .jobs import PieceJob
from ..split.split import Split
from ..runtime.stitch import normalize_output, token_positions


@dataclass(frozen=True)
class Deduped:
    """A compiled piece's normalised graph, unique key, and the jobs of a unique piece built here."""

    single: bool
    unique_key: str
    jobs: tuple[PieceJob, ...] = ()     # empty when an earlier piece (or graph) builds this unique key
    token_at: tuple[int, int | None] | None = None


def dedupe_pieces(split: Split, inputs: Mapping[str, tuple], graph: CapturedGraph, config: CompileConfig,
                known: Collection[str], first_index: int) -> dict[str, Deduped]:
    """One entry per compiled piece; jobs for each unique key not built before (general + sizes)."""
    device = next((x.device.type for x in graph.real_inputs if isinstance(x, torch.Tensor)), "cpu")
    versions = cache_versions(device)
    plan: dict[str, Deduped] = {}
    seen = set(known)
    for i, spec in enumerate(split.pieces):
        if spec.kind != "compiled":
            continue
        gm, single = normalize_output(spec.module)
        ghash, itext, gtext = fingerprint(gm, inputs[spec.name], graph.grad)
        ukey = hashlib.sha256(f"{ghash}|{itext}".encode()).hexdigest()[:16]
        at = token_position(inputs[spec.name], graph.token)
        if ukey in seen:
            plan[spec.name] = Deduped(single, ukey)
            continue
        seen.add(ukey)
        job = PieceJob(ukey, first_index + i, graph.index, None, gm, tuple(inputs[spec.name]), graph.fake_mode,
                       _key(config, graph.grad, versions, (ghash, itext, gtext), None), graph.grad)
        plan[spec.name] = Deduped(single, ukey, (job, *_size_jobs(job, config, graph, versions, (ghash, gtext))), at)
    return plan


def _size_jobs(job: PieceJob, config: CompileConfig, graph: CapturedGraph, versions: Mapping[str, str],
               hashes: tuple[str, str]) -> list[PieceJob]:
    """A static compile per ``compile_sizes`` entry, where the piece's inputs carry the token count."""
    if token_position(job.inputs, graph.token) is None or not config.compile_sizes:
        return []
    hints = tc.symbol_hints(graph.fake_mode)
    out = []
    for size in config.compile_sizes:
        ex = concrete_inputs(job.inputs, graph.token, size, hints)
        key = _key(config, graph.grad, versions, (hashes[0], inputs_text(ex, grad=graph.grad), hashes[1]), size)
        out.append(dataclasses.replace(job, size=size, inputs=tuple(ex), fake_mode=None, key=key))
    return out


def _key(config: CompileConfig, grad: bool, versions: Mapping[str, str], parts: tuple[str, str, str],
         size: int | None) -> CacheKey:
    cfg = config.compile_relevant()
    if grad:   # inference keys stay as they were; autograd compiles are keyed apart
        cfg["grad"] = True
    return CacheKey(graph=parts[0], inputs=parts[1], config=cfg, versions=dict(versions), size=size,
                    graph_text=parts[2])


def token_position(inputs: Sequence[Any], token: Any) -> tuple[int, int | None] | None:
    """Where a piece's inputs carry exactly the token count: (arg, dim), dim None for a SymInt."""
    dims = token_positions(inputs, token)
    if dims:
        i, d = dims[0]
        x = inputs[i]
        if tc.sym_expr(x if d is None else x.shape[d]) == token:
            return i, d
    return None


def concrete_inputs(inputs: Sequence[Any], token: Any, size: int, hints: Mapping[Any, Any]) -> list[Any]:
    """Zero-filled tensors (and ints) of a piece's inputs with the token dim set to ``size``
    (requiring grad where the fake input does)."""
    subs = dict(hints)
    subs[token] = size

    def ev(x: Any) -> int:
        e = tc.sym_expr(x)
        return int(e.xreplace(subs)) if hasattr(e, "xreplace") else int(e)

    out: list[Any] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            t = torch.empty_strided([ev(s) for s in x.shape], [ev(s) for s in x.stride()], dtype=x.dtype,
                                    device=x.device).zero_()
            out.append(t.requires_grad_() if x.requires_grad and t.is_floating_point() else t)
        elif isinstance(x, torch.SymInt):
            out.append(ev(x))
        else:
            out.append(x)
    return out
