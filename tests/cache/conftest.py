"""Fixtures of the cache tests: a real redis-server on a free loopback port, a signing secret,
and the toy model compiled once into a template cache dir that each test copies."""
from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import redis
import torch

import vexplore as vx

SPLIT = ["vexplore::attention"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server process this test started: ``kill()`` it, ``start()`` it again on the same port."""

    port: int
    password: str | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)")
        args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        for _ in range(200):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server for this test (stopped at its end)."""
    srv = RedisServer(free_port()).start()
    yield srv
    srv.kill()


@pytest.fixture
def cache_secret(monkeypatch) -> str:
    key = secrets.token_hex(32)
    monkeypatch.setenv("VEXPLORE_CACHE_KEY", key)
    monkeypatch.delenv("VEXPLORE_CACHE_KEY_FILE", raising=False)
    monkeypatch.delenv("VEXPLORE_REDIS_PASSWORD", raising=False)
    return key


def toy_model():
    from vexplore.models import ToyLlama

    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    return m, m.example_inputs(16)


def compile_toy(cache: vx.CacheConfig, session: vx.Session | None = None, **cfg) -> vx.CompileReport:
    """Compile the 2-layer toy Llama (3 unique pieces) under ``cache``; check it against eager."""
    torch._dynamo.reset()
    m, (x,) = toy_model()
    config = vx.CompileConfig(strategy="piecewise", splitting_ops=SPLIT, cache=cache, **cfg)
    cm = vx.compile(m, config, session=session or vx.Session())
    with torch.no_grad():
        torch.testing.assert_close(cm(x), m(x))
    return cm.report


@dataclass(frozen=True)
class Template:
    dir: Path
    report: vx.CompileReport


@pytest.fixture(scope="session")
def toy_template(tmp_path_factory) -> Template:
    """A cache dir holding the toy model's 3 artifacts (compiled once per test session)."""
    d = tmp_path_factory.mktemp("template") / "vx"
    return Template(d, compile_toy(vx.CacheConfig(tiers=("memory", "disk"), dir=str(d))))


@pytest.fixture
def warm_dir(toy_template, tmp_path) -> Path:
    """A copy of the template cache dir for this test to damage."""
    d = tmp_path / "vx"
    shutil.copytree(toy_template.dir, d)
    return d
