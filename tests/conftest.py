"""Shared fixtures: fresh Inductor and vexplore cache dirs per test run, a fresh vexplore cache dir per test.

Each pytest run compiles into an Inductor cache dir and a default vexplore cache dir of its own (made
here, before torch._inductor is imported, and removed when the run ends), so a run never depends on
what the machine compiled before: Inductor's FX-graph cache would otherwise serve a compile another
run made (or a compile made while Inductor's per-process lowering registry held a fallback an earlier
test registered). Within a run the Inductor cache is shared: vexplore's own tiers are what the tests
check, and each test that caches gets a fresh vexplore dir (``cache_cfg``).
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

_RUN_DIR = tempfile.mkdtemp(prefix="vexplore-tests-")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(_RUN_DIR, "inductor")
os.environ["VEXPLORE_CACHE_DIR"] = os.path.join(_RUN_DIR, "vexplore")
atexit.register(shutil.rmtree, _RUN_DIR, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

import vexplore as vx  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield


@pytest.fixture
def cache_cfg(tmp_path) -> vx.CacheConfig:
    return vx.CacheConfig(dir=str(tmp_path / "vxcache"))


@pytest.fixture
def session() -> vx.Session:
    return vx.Session()


@pytest.fixture
def toy():
    """The 4-layer toy Llama (attention is the custom op vexplore::attention) and 16 tokens."""
    from vexplore.models import ToyLlama

    torch.manual_seed(0)
    m = ToyLlama(layers=4).eval()
    return m, m.example_inputs(16)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say which order the tests ran in (pytest-randomly's seed), also under -q, to rerun a failure."""
    seed = getattr(config.option, "randomly_seed", None) if config.pluginmanager.has_plugin("randomly") else None
    if isinstance(seed, int):
        terminalreporter.write_line(f"random order: rerun with `pytest -p randomly --randomly-seed={seed}`")
    else:
        terminalreporter.write_line("file order (pytest-randomly off)")
