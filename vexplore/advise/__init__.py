"""The advisor: what a compiled model's history says to change, and applying it with a measurement.

    advice = vx.advise(cm)             # [Advice(code, severity, message, evidence, config)]
    result = advice[0].apply(cm)       # ApplyResult(metric, before, after, kept, report)

It reads reports, events and what Dynamo said (cm.graph_breaks, cm.recompiles); it may use the
engine (to recompile) and bench/ (to time), and nothing below imports it.
"""
from __future__ import annotations

from .advice import CODES, SEVERITIES, Advice, AdviceError
from .advisor import advise
from .apply import ApplyResult

__all__ = ["CODES", "SEVERITIES", "Advice", "AdviceError", "ApplyResult", "advise"]
