"""Shared fixtures: one Inductor cache per test session, a fresh vexplore cache dir per test."""
from __future__ import annotations

import os
import sys
import tempfile

# One Inductor cache for the whole session (set before torch._inductor is imported): vexplore's
# own tiers are what the tests check, and each test gets a fresh vexplore cache dir.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"vexplore-tests-inductor-{os.getuid()}"))

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
