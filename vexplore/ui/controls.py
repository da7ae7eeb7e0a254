"""The explorer's controls: one widget per CompileConfig field a user toggles, read back as a config.

The splitting-ops choice lists the op names that occur in the captured graph (``vx.op_name``),
so a user picks from what is there; the CUDA-graph mode is disabled, with the reason, without a GPU.
"""
from __future__ import annotations

from typing import Iterable

import ipywidgets as widgets

from ..config import CacheConfig, COMPILERS, CompileConfig, CUDAGRAPH_MODES, MODES, STRATEGIES, TIERS
from ..errors import ConfigError
from .style import esc

_WIDE = widgets.Layout(width="280px")
_STYLE = {"description_width": "110px"}


def parse_sizes(text: str, where: str = "compile sizes") -> tuple[int, ...]:
    """``"1, 16"`` -> ``(1, 16)``; a bad entry raises ConfigError naming it."""
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(f"{where}: {part!r} is not a whole number; write sizes like '1, 16'.") from None
        if value <= 0:
            raise ConfigError(f"{where}: {value} must be >= 1 (sizes count tokens).")
        out.append(value)
    return tuple(out)


class Controls:
    """Widgets for strategy, splitting ops, compiler, mode, cache tiers, compile sizes, CUDA graphs."""

    def __init__(self, config: CompileConfig, graph_ops: Iterable[str], device: str) -> None:
        self.base = config
        ops = sorted(set(graph_ops))
        self.graph_ops = ops
        self.strategy = widgets.Dropdown(options=STRATEGIES, value=config.strategy, description="strategy",
                                         layout=_WIDE, style=_STYLE)
        self.split_ops = widgets.SelectMultiple(
            options=ops, value=tuple(o for o in config.splitting_ops if o in ops), rows=min(8, max(3, len(ops))),
            description="splitting ops", layout=widgets.Layout(width="420px"), style=_STYLE)
        self.compiler = widgets.Dropdown(options=COMPILERS, value=config.compiler, description="compiler",
                                         layout=_WIDE, style=_STYLE)
        self.mode = widgets.Dropdown(options=MODES, value=config.mode, description="mode", layout=_WIDE, style=_STYLE)
        self.tiers = {t: widgets.Checkbox(value=t in config.cache.tiers, description=t, indent=False,
                                          layout=widgets.Layout(width="90px")) for t in TIERS}
        if not config.cache.remote_url:
            self.tiers["remote"].disabled = True
            self.tiers["remote"].tooltip = "needs CacheConfig(remote_url='redis://...')"
        self.sizes = widgets.Text(value=", ".join(map(str, config.compile_sizes)), placeholder="e.g. 1, 16",
                                  description="compile sizes", layout=_WIDE, style=_STYLE)
        gpu = device == "cuda"
        self.cudagraph = widgets.Dropdown(options=CUDAGRAPH_MODES, value=config.cudagraph if gpu else "none",
                                          description="CUDA graphs", disabled=not gpu, layout=_WIDE, style=_STYLE)
        self.cudagraph_note = widgets.HTML("" if gpu else f"<i>disabled: CUDA graphs need a CUDA GPU; this model runs on {esc(device)}</i>")
        tiers_row = widgets.HBox([widgets.Label("cache tiers", layout=widgets.Layout(width="110px"))] + list(self.tiers.values()))
        left = widgets.VBox([self.strategy, self.compiler, self.mode, self.sizes,
                             widgets.HBox([self.cudagraph, self.cudagraph_note]), tiers_row])
        self.widget = widgets.HBox([left, self.split_ops], layout=widgets.Layout(flex_flow="row wrap"))

    def config(self) -> CompileConfig:
        """The CompileConfig the controls describe (fields without a control keep the base config's values)."""
        hidden = tuple(o for o in self.base.splitting_ops if o not in self.graph_ops)  # not in this graph: kept
        tiers = tuple(t for t in TIERS if self.tiers[t].value)
        cache = CacheConfig(**{**_cache_fields(self.base.cache), "tiers": tiers})
        return self.base.replace(
            strategy=self.strategy.value, splitting_ops=tuple(self.split_ops.value) + hidden,
            compiler=self.compiler.value, mode=self.mode.value, compile_sizes=parse_sizes(self.sizes.value),
            cudagraph=self.cudagraph.value, cache=cache)

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.strategy, self.split_ops, self.compiler, self.mode, self.sizes):
            w.disabled = not enabled
        for t, box in self.tiers.items():
            box.disabled = not enabled or (t == "remote" and not self.base.cache.remote_url)


def _cache_fields(c: CacheConfig) -> dict[str, object]:
    return {f: getattr(c, f) for f in c.__dataclass_fields__}
