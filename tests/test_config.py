"""Bad configuration fails at creation, naming the field and the allowed values."""
from __future__ import annotations

import pytest

import vexplore as vx


@pytest.mark.parametrize("kw, match", [
    ({"strategy": "fast"}, r"CompileConfig.strategy='fast' is not allowed; choose one of 'auto', 'full', 'piecewise'"),
    ({"compiler": "tvm"}, r"CompileConfig.compiler='tvm'.*'inductor', 'eager'"),
    ({"mode": "turbo"}, r"CompileConfig.mode='turbo'.*'max-autotune'"),
    ({"cudagraph": "yes"}, r"CompileConfig.cudagraph='yes'.*'none', 'piecewise', 'full'"),
    ({"compile_sizes": [0]}, r"compile_sizes: 0 is not a positive integer"),
    ({"compile_sizes": [-4]}, r"compile_sizes: -4 is not a positive integer"),
    ({"compile_sizes": 16}, r"compile_sizes=16: give a list"),
    ({"cudagraph_sizes": [1, 0]}, r"cudagraph_sizes: 0 is not a positive"),
    ({"splitting_ops": ["attention"]}, r"splitting_ops: 'attention' is not an op name"),
    ({"splitting_ops": ["my lib::op"]}, r"is not an op name"),
    ({"splitting_ops": "mylib::attention"}, r"give a list of op names"),
    ({"workers": -1}, r"workers=-1"),
    ({"compile_timeout_s": 0}, r"compile_timeout_s=0"),
    ({"dynamic_dims": {0: [-1]}}, r"dynamic_dims\[0\]"),
    ({"cache": {"tiers": ["disk"]}}, r"CompileConfig.cache must be a vx.CacheConfig"),
])
def test_compile_config_rejects(kw, match):
    with pytest.raises(vx.ConfigError, match=match):
        vx.CompileConfig(**kw)


@pytest.mark.parametrize("kw, match", [
    ({"tiers": ("memory", "cloud")}, r"CacheConfig.tiers entry='cloud' is not allowed; choose one of 'memory', 'disk', 'remote'"),
    ({"tiers": ("remote",)}, r"needs remote_url"),
    ({"memory_entries": 0}, r"memory_entries=0"),
])
def test_cache_config_rejects(kw, match):
    with pytest.raises(vx.ConfigError, match=match):
        vx.CacheConfig(**kw)


def test_config_errors_are_vexplore_errors():
    with pytest.raises(vx.VexploreError):
        vx.CompileConfig(strategy="nope")


def test_defaults_and_normalisation():
    c = vx.CompileConfig(compile_sizes=[16, 1, 16], splitting_ops=["mylib::attention", "torch._C._nn.linear"],
                         dynamic_dims={0: 0})
    assert c.compile_sizes == (1, 16)
    assert c.splitting_ops == ("mylib::attention", "torch._C._nn.linear")
    assert c.dynamic_dims == {0: (0,)}
    assert vx.CompileConfig().splitting_ops == vx.DEFAULT_SPLITTING_OPS
    assert "torch._C._nn.scaled_dot_product_attention" in vx.DEFAULT_SPLITTING_OPS
    assert c.replace(strategy="full").strategy == "full"
    with pytest.raises(vx.ConfigError):
        c.replace(strategy="bogus")
    assert vx.CompileConfig().to_dict()["cache"]["tiers"] == ("memory", "disk")
