"""%load_ext vexplore through IPython's test shell: %vexplore and %vxbench, parsing and errors."""
from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

import vexplore as vx
from vexplore.models import ToyLlama
from vexplore.magics import VxbenchLine, split_vexplore_line, split_vxbench_line
from vexplore.ui.benchpanel import BenchView
from vexplore.ui.explorer import Explorer

from uihelpers import toy_config


@pytest.fixture
def ip(tmp_path, monkeypatch):
    """The test shell with the extension loaded, a 2-layer toy, and HOME (the default cache dir) in tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path))
    globalipapp.start_ipython()         # once per process; later calls return None
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "vexplore")
    torch.manual_seed(0)
    m = ToyLlama(layers=2).eval()
    shell.user_ns.update(model=m, x=m.example_inputs(16)[0], cfg=toy_config(tmp_path), n_calls=0)
    yield shell
    for name in ("model", "x", "cfg", "n_calls", "rep", "ex"):
        shell.user_ns.pop(name, None)


def test_load_ext_registers_both_magics(ip):
    lines = ip.magics_manager.magics["line"]
    assert "vexplore" in lines and "vxbench" in lines


def test_vexplore_displays_the_explorer_with_the_options(ip):
    with capture_output() as cap:
        ip.run_line_magic("vexplore", "model (x,) --config cfg --strategy full --compiler inductor")
    assert len(cap.outputs) == 1
    assert "application/vnd.jupyter.widget-view+json" in cap.outputs[0].data
    ex = next(o for o in _displayed(cap) if isinstance(o, Explorer))
    assert ex.cm.report.strategy == "full" and ex.cm.config.compiler == "inductor"
    assert ex.cm.config.cache.dir == ip.user_ns["cfg"].cache.dir


def _displayed(cap):
    # the widget's model id maps back to the live widget object
    from ipywidgets.widgets.widget import _instances
    for out in cap.outputs:
        model_id = out.data["application/vnd.jupyter.widget-view+json"]["model_id"]
        yield _instances[model_id]


def test_vexplore_split_ops_option(ip):
    with capture_output() as cap:
        ip.run_line_magic("vexplore", "model x --config cfg --strategy piecewise --split-ops vexplore::attention")
    ex = next(iter(_displayed(cap)))
    assert ex.cm.config.splitting_ops == ("vexplore::attention",) and len(ex.cm.report.pieces) == 5


@pytest.mark.parametrize("line, message", [
    ("", "needs a model and its inputs"),
    ("model", "needs a model and its inputs"),
    ("model --strategy full", "needs a model and its inputs"),
    ("nomodel x", "could not evaluate MODEL 'nomodel'.*NameError"),
    ("model x[ --strategy full", "could not evaluate INPUTS 'x\\['.*SyntaxError"),
    ("model x --strategy sideways", "strategy='sideways' is not allowed; choose one of 'auto', 'full', 'piecewise'"),
    ("model x --split-ops not-an-op", "'not-an-op' is not an op name"),
    ("model x --colour red", "unrecognized arguments: --colour red"),
    ("model x --config x", "--config x: is a Tensor, not a vx.CompileConfig"),
])
def test_vexplore_errors_are_usage_errors(ip, line, message):
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("vexplore", line)


def test_split_vexplore_line_follows_design():
    assert split_vexplore_line("m  (a, b) + c --strategy full") == ("m", "(a, b) + c", ["--strategy", "full"])
    assert split_vexplore_line("m f(x, y=2)") == ("m", "f(x, y=2)", [])
    assert split_vexplore_line("m x --split-ops a::b,c::d") == ("m", "x", ["--split-ops", "a::b,c::d"])


def test_split_vxbench_line_is_timeit_like():
    assert split_vxbench_line("model(x)") == VxbenchLine(None, None, False, False, "idle", "model(x)")  # until stable
    assert split_vxbench_line("-n 3 -r5 -t steady -o -q model(x) + 1") == VxbenchLine(3, 5, True, True, "steady",
                                                                                       "model(x) + 1")
    for line, message in [("-n 0 model(x)", "must be >= 1"), ("-r many model(x)", "give a whole number"),
                          ("-o", "needs a statement"), ("-t wall model(x)", "the timer is 'idle'")]:
        with pytest.raises(UsageError, match=message):
            split_vxbench_line(line)


def test_vxbench_times_eager_and_compiled(ip):
    with capture_output() as cap:
        rep = ip.run_line_magic("vxbench", "-n 2 -r 3 -o model(x)")
    assert isinstance(rep, vx.BenchReport)
    assert [r.variant for r in rep.rows] == ["eager", "vexplore-auto-none"]
    assert all(r.max_rel_err < 1e-4 and 0 < r.p20_ms <= r.median_ms <= r.p80_ms for r in rep.rows)
    x = ip.user_ns["x"]
    assert {(r.tokens, r.size_dim) for r in rep.rows} == {(x.shape[0], "dim 0 of x")}   # never "tokens 0"
    assert len(cap.outputs) == 1 and "vexplore-auto-none" in cap.outputs[0].data["text/plain"]
    assert "speed-up vs eager" in BenchView(rep)._repr_html_()


def test_vxbench_statement_quiet_and_errors(ip):
    with capture_output() as cap:
        out = ip.run_line_magic("vxbench", "-q -r 2 y = model(x); z = y.sum()")
    assert out is None and cap.outputs == []
    with pytest.raises(UsageError, match="not valid Python"):
        ip.run_line_magic("vxbench", "model(x")
