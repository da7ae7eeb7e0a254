"""The CompileConfig fields a magic's line sets (``%vexplore``'s options), as an option table, and
``apply_options``: the config a parsed line asks for.

Each option's help names the values config.py allows, so the help follows the config.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .config import COMPILERS, CUDAGRAPH_MODES, STRATEGIES, CompileConfig
from .lineoptions import LineOption

_CHOICES = {"strategy": STRATEGIES, "compiler": COMPILERS, "cudagraph": CUDAGRAPH_MODES}   # --FIELD sets FIELD


def one_of(values: Sequence[str]) -> str:
    """The allowed values as the help lists them: ``auto | full | piecewise``."""
    return " | ".join(values)


def _choice_option(field: str, metavar: str, lead: str, detail: str, example_value: str) -> LineOption:
    """``--FIELD M``: sets CompileConfig.FIELD to one of the values config.py allows for it; the help is
    ``lead``, the values, then ``detail``."""
    return LineOption(f"--{field}", metavar, default_text=f"--config's ({getattr(CompileConfig(), field)} in "
                                                          "vx.CompileConfig())",
                      help=f"{lead}: {one_of(_CHOICES[field])}{detail} Sets CompileConfig.{field}.",
                      example=f"%vexplore model x --{field} {example_value}")


def _config_options() -> tuple[LineOption, ...]:
    return (
        _choice_option("strategy", "S", "How each graph is compiled",
                       ". full: one piece; piecewise: cut at the split ops (each runs eagerly between compiled "
                       "pieces); auto: piecewise when the graph has split ops and at least "
                       "CompileConfig.auto_min_nodes nodes, else full, with the reason in the report.", "piecewise"),
        LineOption("--split-ops", "OP[,OP]", dest="splitting_ops",
                   default_text="--config's (the attention ops of vx.DEFAULT_SPLITTING_OPS in vx.CompileConfig())",
                   help="The ops to cut the graph at, comma-separated, named as vx.op_name(node) names them "
                        "('ns::op', 'ns::op.overload', or a Python callable's dotted name); an entry without an "
                        "overload matches every overload. Sets CompileConfig.splitting_ops.",
                   example="%vexplore model x --strategy piecewise --split-ops vexplore::attention"),
        _choice_option("compiler", "C", "What compiles each piece", " (eager: the pieces run as traced).", "eager"),
        _choice_option("cudagraph", "M", "CUDA graphs",
                       ". piecewise: one per compiled piece, split ops eager between; full: the whole graph; "
                       "full_and_piecewise: full up to CompileConfig.cudagraph_full_max tokens, piecewise above; "
                       "auto: full_and_piecewise on a CUDA device, none elsewhere.", "full_and_piecewise"),
        LineOption("--config", "CFG", dest="config", default_text="vx.CompileConfig()",
                   help="A Python expression, evaluated in the notebook, giving the vx.CompileConfig to start from "
                        "(any field: cache, compile_sizes, dynamic_dims, ...); the other options change its fields. "
                        "Quote it if it holds spaces. In the example, cfg is a config made earlier: "
                        "cfg = vx.CompileConfig(cudagraph='auto').",
                   example="%vexplore model x --config cfg --strategy full"),
    )


CONFIG_OPTIONS = _config_options()


def apply_options(base: CompileConfig, values: Mapping[str, Any]) -> CompileConfig:
    """``base`` with the fields a parsed line set (``values``: the parsed options by dest; one left
    out, None, keeps base's). ``--split-ops a::b,c::d`` becomes ``splitting_ops=("a::b", "c::d")``.
    Raises ConfigError for a value the config refuses."""
    changes = {k: values[k] for k in _CHOICES if values.get(k)}
    if values.get("splitting_ops"):
        changes["splitting_ops"] = tuple(o.strip() for o in values["splitting_ops"].split(",") if o.strip())
    return base.replace(**changes)
