"""Saved reports: a versioned JSON file, and frozen records rebuilt from their ``to_dict()``.

A report saved on one machine (a GPU, say) opens on any other: the file holds only plain data
(pieces with their nodes and generated code, events, counters, config, versions), so loading
needs no model, no GPU and no compile. The file is ``{"format": "vexplore-report", "version":
N, "report": {...}}``; a file of another version is refused with what to do, never misread
(the cache's rule for its artifacts, applied to reports).

Records are rebuilt from their type hints (``from_jsonable``), so a field added to Piece or
CompileReport is saved and loaded without a change here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import types
import typing
from typing import Any, Mapping, Union

from ..errors import VexploreError

FORMAT = "vexplore-report"
# Bump when a saved report's meaning changes (a field renamed or re-typed; not for a field added
# with a default): files of a version not in READABLE are refused with a message, never misread.
# 2: a Piece's fallback as fields (Piece.fallback: kind, rung, category, cause, op, ...) beside its
# prose. Format 1 files load as they are: their pieces have fallback=None (the prose only).
REPORT_FORMAT = 2
READABLE = (1, 2)


class ReportFileError(VexploreError, ValueError):
    """A file given to ``vx.load_report`` is not a saved report this vexplore can read."""


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> pathlib.Path:
    """Write ``report`` (a ``to_dict()``) to ``path`` in the versioned envelope, atomically
    (missing parent folders are made)."""
    path = pathlib.Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "version": REPORT_FORMAT, "report": report}, indent=1)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)   # a reader never sees half a file
    return path


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The report dict saved in ``path``; ReportFileError says what is wrong and how to fix it."""
    path = pathlib.Path(path).expanduser()
    where = f"vx.load_report({str(path)!r})"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportFileError(f"{where}: no such file; give the path report.save(path) wrote.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportFileError(f"{where}: cannot read it ({type(e).__name__}: {e}); give a file report.save(path) wrote.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportFileError(f"{where}: not a saved vexplore report (not JSON: {e}); "
                              "save one with report.save(path).") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReportFileError(f"{where}: JSON, but not a saved vexplore report (it has no \"format\": \"{FORMAT}\"); "
                              "save one with report.save(path) and load that file.")
    version = data.get("version")
    if version not in READABLE:
        raise ReportFileError(f"{where}: saved in report format {version!r}, and this vexplore reads formats "
                              f"{', '.join(map(str, READABLE))}. {_version_hint(version)}")
    if not isinstance(data.get("report"), dict):
        raise ReportFileError(f"{where}: the file has no report in it (damaged or edited); save the report again.")
    return data["report"]


def _version_hint(version: Any) -> str:
    if isinstance(version, int) and version > REPORT_FORMAT:
        return "It was saved by a newer vexplore: upgrade vexplore (pip install -U vexplore) to open it."
    return ("Open it with the vexplore version that saved it, or record the report again with this one "
            "(report.save(path)).")


def to_jsonable(value: Any) -> Any:
    """``value`` with every tuple a list, through dicts and lists (JSON's shapes): what a record's
    ``to_dict`` returns, so a saved and loaded record's ``to_dict()`` equals the one saved."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(tp: Any, value: Any, where: str = "report") -> Any:
    """``value`` (JSON data) as type ``tp``: dataclasses from dicts by their type hints, tuples
    from lists. Raises ReportFileError naming the field (``where``) that does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, value, where)
    if origin in (Union, types.UnionType):
        return _union(args, value, where)
    if origin is tuple:
        items = _check(value, list, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        if len(items) != len(args):
            raise _bad(where, f"{len(args)} items", value)
        return tuple(from_jsonable(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, items)))
    if origin is dict:
        d = _check(value, dict, where)
        return {k: from_jsonable(args[1] if args else Any, v, f"{where}.{k}") for k, v in d.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, float, bool):
        if isinstance(value, bool) and tp is not bool:
            raise _bad(where, tp.__name__, value)
        return _check(value, tp, where)
    if tp is type(None):
        return _check(value, type(None), where)
    return value   # a type this reader does not know: kept as JSON gave it


def _dataclass(cls: Any, value: Any, where: str) -> Any:
    d = _check(value, dict, where)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in d:
            kwargs[f.name] = from_jsonable(hints[f.name], d[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ReportFileError(f"vx.load_report: {where} has no {f.name!r} (the file is damaged or edited); "
                                  "save the report again with report.save(path).")
    return cls(**kwargs)


def _union(args: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for t in args:
        if t is type(None):
            continue
        try:
            return from_jsonable(t, value, where)
        except ReportFileError as e:
            errors.append(e)
    raise errors[0] if errors else _bad(where, "a value", value)


def _check(value: Any, tp: type, where: str) -> Any:
    if not isinstance(value, tp):
        raise _bad(where, tp.__name__, value)
    return value


def _bad(where: str, want: str, value: Any) -> ReportFileError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ReportFileError(f"vx.load_report: {where} should be {want}, not {shown} (the file is damaged or edited); "
                           "save the report again with report.save(path).")
