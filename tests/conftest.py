"""Shared fixtures: fresh Inductor and vexplore cache dirs per test run, a fresh vexplore cache dir per test,
and the ``solo`` mark (a test that runs alone under pytest-xdist).

Each pytest run compiles into an Inductor cache dir and a default vexplore cache dir of its own (made
here, before torch._inductor is imported, and removed when the run ends), so a run never depends on
what the machine compiled before: Inductor's FX-graph cache would otherwise serve a compile another
run made (or a compile made while Inductor's per-process lowering registry held a fallback an earlier
test registered). Within a run the Inductor cache is shared: vexplore's own tiers are what the tests
check, and each test that caches gets a fresh vexplore dir (``cache_cfg``).
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import sys
import tempfile

# Under pytest-xdist (README's command runs two workers) the controller imports this module first and
# the workers inherit its environment: they share the run's Inductor cache (as one process's tests do),
# and each gets a vexplore cache dir of its own. The controller (or a run without xdist) removes the dir.
_SHARED = os.environ.get("VEXPLORE_TESTS_RUN_DIR")
_RUN_DIR = _SHARED or tempfile.mkdtemp(prefix="vexplore-tests-")
if not _SHARED:
    os.environ["VEXPLORE_TESTS_RUN_DIR"] = _RUN_DIR
    atexit.register(shutil.rmtree, _RUN_DIR, ignore_errors=True)
os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(_RUN_DIR, "inductor")
os.environ["VEXPLORE_CACHE_DIR"] = tempfile.mkdtemp(prefix="vexplore-", dir=_RUN_DIR)

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

import vexplore as vx  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "solo: runs with no other test running (it measures time or the "
                                       "machine's load); under xdist the other worker waits")


@contextlib.contextmanager
def _flock(path: str, how: int):
    with open(path, "a") as f:
        fcntl.flock(f, how)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _solo_or_shared(request):
    """A readers-writer lock over the run's workers: a ``solo`` test holds it alone, the others share it.
    Each test takes it through a turnstile, so a solo test waiting for the sharers to finish keeps new
    ones out (flock itself is not fair)."""
    mode = fcntl.LOCK_EX if request.node.get_closest_marker("solo") else fcntl.LOCK_SH
    with contextlib.ExitStack() as held:
        with _flock(os.path.join(_RUN_DIR, "turnstile.lock"), fcntl.LOCK_EX):
            held.enter_context(_flock(os.path.join(_RUN_DIR, "solo.lock"), mode))
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
