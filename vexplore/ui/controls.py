"""The explorer's controls: one widget per CompileConfig field a user toggles, read back as a config.

The splitting-ops choice lists the op names that occur in the captured graph (``vx.op_name``),
so a user picks from what is there; the CUDA-graph mode is disabled, with the reason, without a GPU.
The split policy (``PolicyControls``) shows its bounds only where the config takes them, and hands
what the user typed to CompileConfig as it is, so a bad value fails with the config's own message.
A config with post-grad passes gets a checkbox to compile without them (to compare the code).

The cache tiers mean what they say: with every tier unticked a compile is cold, so the config
also turns Inductor's own caches off for it (``inductor_options={"force_disable_caches": True}``:
its FX-graph and AOTAutograd caches would otherwise serve a graph compiled before); ticking a
tier again takes that option back out unless the config the explorer began with had it.
"""
from __future__ import annotations

from typing import Iterable

import ipywidgets as widgets

from ..config import (CacheConfig, COMPILERS, CompileConfig, CUDAGRAPH_MODES, DEFAULT_MAX_COMPILE_MB, MODES,
                      SPLIT_POLICIES, STRATEGIES, TIERS, pass_name)
from ..errors import ConfigError
from .style import MUTED, esc

_WIDE = widgets.Layout(width="280px")
COLD = "force_disable_caches"   # Inductor's option that bypasses its FX-graph, AOTAutograd and autotune caches
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


POLICY_NOTES = {
    "ops": "cut only at the splitting ops",
    "repeats": "also cut at the boundaries of repeated blocks, so identical blocks compile once "
               "(bounds, if set, cut inside blocks alike)",
    "memory": "also cut wherever a piece would pass the bounds, where the fewest bytes cross "
              f"(neither bound set: max compile MB {DEFAULT_MAX_COMPILE_MB:g})",
}


def parse_bound(text: str) -> object:
    """What a bound's text box holds, for CompileConfig to check: "" -> None, ``"40"`` -> 40,
    ``"2.5"`` -> 2.5, anything else as typed (the config then says what it takes)."""
    text = text.strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class PolicyControls:
    """The split policy and its bounds (max piece nodes, max compile MB); the bounds show for the
    policies that take them ("memory", and "repeats" inside blocks) and count only there."""

    BOUNDED = ("repeats", "memory")

    def __init__(self, config: CompileConfig) -> None:
        def bound(value: object, label: str) -> widgets.Text:
            return widgets.Text(value="" if value is None else str(value), placeholder="none", description=label,
                                layout=widgets.Layout(width="200px"), style=_STYLE)

        self.policy = widgets.Dropdown(options=SPLIT_POLICIES, value=config.split_policy, description="split policy",
                                       layout=_WIDE, style=_STYLE)
        self.max_nodes = bound(config.max_piece_nodes, "max piece nodes")
        self.max_mb = bound(config.max_compile_mb, "max compile MB")
        self.note = widgets.HTML()
        self.bounds = widgets.HBox([self.max_nodes, self.max_mb])
        self.widget = widgets.VBox([widgets.HBox([self.policy, self.note]), self.bounds])
        self.widget.add_class("vx-policy-controls")
        self.policy.observe(lambda _c: self._update(), "value")
        self._update()

    def _update(self) -> None:
        policy = self.policy.value
        self.bounds.layout.display = "" if policy in self.BOUNDED else "none"
        self.note.value = f'<i style="color:{MUTED}">{esc(POLICY_NOTES[policy])}</i>'

    def fields(self) -> dict[str, object]:
        """The CompileConfig fields as the controls set them (bounds unchecked: the config checks them)."""
        shown = self.policy.value in self.BOUNDED
        return dict(split_policy=self.policy.value,
                    max_piece_nodes=parse_bound(self.max_nodes.value) if shown else None,
                    max_compile_mb=parse_bound(self.max_mb.value) if shown else None)

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.policy, self.max_nodes, self.max_mb):
            w.disabled = not enabled

    def set_config(self, config: CompileConfig) -> None:
        self.policy.value = config.split_policy
        self.max_nodes.value = "" if config.max_piece_nodes is None else str(config.max_piece_nodes)
        self.max_mb.value = "" if config.max_compile_mb is None else str(config.max_compile_mb)


class Controls:
    """Widgets for strategy, splitting ops, split policy, compiler, mode, cache tiers, compile sizes,
    CUDA graphs, and (when the config has them) whether to run its post-grad passes."""

    def __init__(self, config: CompileConfig, graph_ops: Iterable[str], device: str) -> None:
        self.base = config
        self.own_cold = COLD in config.inductor_options   # the user's own: the tiers leave it alone
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
        # off a GPU the config's own value stays (the default "auto" means none there): the controls never
        # change a config the user did not touch
        self.cudagraph = widgets.Dropdown(options=CUDAGRAPH_MODES, value=config.cudagraph,
                                          description="CUDA graphs", disabled=not gpu, layout=_WIDE, style=_STYLE)
        self.cudagraph_note = widgets.HTML("" if gpu else f"<i>disabled: CUDA graphs need a CUDA GPU; this model runs on {esc(device)}</i>")
        self.tiers_note = widgets.HTML()
        for box in self.tiers.values():
            box.observe(lambda _c: self._tiers_changed(), "value")
        self._tiers_changed()
        tiers_row = widgets.HBox([widgets.Label("cache tiers", layout=widgets.Layout(width="110px")),
                                  *self.tiers.values(), self.tiers_note])
        self.split = PolicyControls(config)
        self._passes = config.post_grad_passes   # what the checkbox turns on, whatever config is shown later
        names = ", ".join(pass_name(p) for p in config.post_grad_passes)
        self.passes = widgets.Checkbox(value=bool(names), description=f"run post-grad passes: {names}", indent=False,
                                       tooltip="untick to compile without them and compare the code (Code tab)",
                                       layout=widgets.Layout(width="420px", display="" if names else "none"))
        left = widgets.VBox([self.strategy, self.compiler, self.mode, self.sizes,
                             widgets.HBox([self.cudagraph, self.cudagraph_note]), tiers_row])
        right = widgets.VBox([self.split_ops, self.split.widget, self.passes])
        self.widget = widgets.HBox([left, right], layout=widgets.Layout(flex_flow="row wrap"))

    def config(self) -> CompileConfig:
        """The CompileConfig the controls describe (fields without a control keep the base config's values)."""
        hidden = tuple(o for o in self.base.splitting_ops if o not in self.graph_ops)  # not in this graph: kept
        tiers = tuple(t for t in TIERS if self.tiers[t].value)
        cache = CacheConfig(**{**_cache_fields(self.base.cache), "tiers": tiers})
        passes = self._passes if self.passes.value else ()
        options = dict(self.base.inductor_options)
        if not tiers and self.compiler.value == "inductor":
            options[COLD] = True
        elif not self.own_cold:
            options.pop(COLD, None)
        return self.base.replace(
            strategy=self.strategy.value, splitting_ops=tuple(self.split_ops.value) + hidden,
            compiler=self.compiler.value, mode=self.mode.value, compile_sizes=parse_sizes(self.sizes.value),
            cudagraph=self.cudagraph.value, cache=cache, post_grad_passes=passes, inductor_options=options,
            **self.split.fields())

    def _tiers_changed(self) -> None:
        cold = not any(box.value for box in self.tiers.values())
        self.tiers_note.value = (f'<i style="color:{MUTED}">no tier: the next compile is cold (Inductor\'s own caches '
                                 "off for it too)</i>") if cold else ""

    def set_config(self, config: CompileConfig) -> None:
        """Show ``config`` (e.g. an applied advice's), so the next Compile starts from it."""
        self.base = config
        self.strategy.value, self.compiler.value, self.mode.value = config.strategy, config.compiler, config.mode
        self.split_ops.value = tuple(o for o in config.splitting_ops if o in self.graph_ops)
        for t, box in self.tiers.items():
            box.value = t in config.cache.tiers
        self.sizes.value = ", ".join(map(str, config.compile_sizes))
        self.cudagraph.value = config.cudagraph   # shown off a GPU too (disabled there)
        self.split.set_config(config)
        if config.post_grad_passes:
            self._passes = config.post_grad_passes
        self.passes.value = bool(config.post_grad_passes)

    def set_enabled(self, enabled: bool) -> None:
        for w in (self.strategy, self.split_ops, self.compiler, self.mode, self.sizes, self.passes):
            w.disabled = not enabled
        self.split.set_enabled(enabled)
        for t, box in self.tiers.items():
            box.disabled = not enabled or (t == "remote" and not self.base.cache.remote_url)


def _cache_fields(c: CacheConfig) -> dict[str, object]:
    return {f: getattr(c, f) for f in c.__dataclass_fields__}
