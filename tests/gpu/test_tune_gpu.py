"""vx.tune on a GPU (GPU only): the 2-layer toy Llama at 1 and 16 tokens over the default CUDA space
(strategy, CUDA-graph modes, Inductor mode and options) within 120 s, the best config correct,
measured interleaved against the start, and applied."""
from __future__ import annotations

import time

import pytest
import torch

import vexplore as vx
from vexplore.models import ToyLlama, ToyLlamaConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_tune_a_two_layer_model_on_the_gpu(cache_cfg):
    torch.manual_seed(0)
    m = ToyLlama(ToyLlamaConfig(vocab=1024, dim=512, layers=2, heads=4, ffn=1024)).cuda().half().eval()
    xs = {n: m.example_inputs(n, "cuda") for n in (1, 16)}
    cm = vx.compile(m, vx.CompileConfig(cache=cache_cfg), session=vx.Session())
    with torch.no_grad():
        cm(*xs[16])
        t0 = time.perf_counter()
        r = vx.tune(cm, xs, budget_s=100)
        took = time.perf_counter() - t0
    print(f"\ntune of the 2-layer model: {took:.1f} s\n{r.table()}")   # the figures (session.sh shows them: -rP)
    assert took < 120, took
    assert {"cudagraph", "mode"} <= set(r.space), r.space    # the CUDA dimensions of the default space
    assert r.device.startswith("cuda")
    statuses = {t.status for t in r.trials}
    assert statuses <= {"ok", "worse", "pruned", "failed-accuracy", "crashed", "timeout"}
    assert len(r.trials) >= 3 and any(t.status == "ok" for t in r.trials)
    assert set(r.improvement) == {1, 16} and all(v > 0 for v in r.improvement.values())
    assert r.trials[r.best_trial].status == "ok"
    r.apply(cm)
    assert cm.config == r.best
    with torch.no_grad():
        for x in xs.values():
            torch.testing.assert_close(cm(*x), m(*x), rtol=2e-2, atol=2e-2)
