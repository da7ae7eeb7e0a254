"""%load_ext vexplore through IPython's test shell: %vexplore and %vxbench, parsing and errors."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import vexplore as vx
from vexplore.ui.magiclines import VxbenchLine, split_vexplore_line, split_vxbench_line
from vexplore.ui.benchpanel import BenchView
from vexplore.ui.explorer import Explorer



def test_load_ext_registers_both_magics(ip):
    lines = ip.magics_manager.magics["line"]
    assert "vexplore" in lines and "vxbench" in lines


def test_vexplore_displays_the_explorer_with_the_options(ip):
    with capture_output() as cap:
        ip.run_line_magic("vexplore", "model (x,) --config cfg --strategy full --compiler inductor")
    assert len(cap.outputs) == 2                  # the widget, then its static snapshot (ui/snapshot.py)
    assert "application/vnd.jupyter.widget-view+json" in cap.outputs[0].data
    assert 'class="vx-snapshot' in cap.outputs[1].data["text/html"]
    ex = next(o for o in _displayed(cap) if isinstance(o, Explorer))
    assert ex.cm.report.strategy == "full" and ex.cm.config.compiler == "inductor"
    assert ex.cm.config.cache.dir == ip.user_ns["cfg"].cache.dir


def _displayed(cap):
    # the widget's model id maps back to the live widget object
    from ipywidgets.widgets.widget import _instances
    for out in cap.outputs:
        if "application/vnd.jupyter.widget-view+json" in out.data:
            yield _instances[out.data["application/vnd.jupyter.widget-view+json"]["model_id"]]


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
    for line, message in [("-n 0 model(x)", "0 is too small; give a whole number >= 1"), ("-r many model(x)", "give a whole number"),
                          ("-o", "needs a statement"), ("-t wall model(x)", "the timer is 'idle'")]:
        with pytest.raises(UsageError, match=message):
            split_vxbench_line(line)


def test_vxbench_times_eager_and_compiled(ip):
    with capture_output() as cap:
        rep = ip.run_line_magic("vxbench", "-n 2 -r 3 -o model(x)")
    assert isinstance(rep, vx.BenchReport)
    assert [r.variant for r in rep.rows] == ["eager", "vexplore-auto-auto"]
    assert all(r.max_rel_err < 1e-4 and 0 < r.p20_ms <= r.median_ms <= r.p80_ms for r in rep.rows)
    x = ip.user_ns["x"]
    assert {(r.tokens, r.size_dim) for r in rep.rows} == {(x.shape[0], "dim 0 of x")}   # never "tokens 0"
    assert len(cap.outputs) == 1 and "vexplore-auto-auto" in cap.outputs[0].data["text/plain"]
    assert "speed-up vs eager" in BenchView(rep)._repr_html_()


def test_vxbench_statement_quiet_and_errors(ip):
    with capture_output() as cap:
        out = ip.run_line_magic("vxbench", "-q -r 2 y = model(x); z = y.sum()")
    assert out is None and cap.outputs == []
    with pytest.raises(UsageError, match="not valid Python"):
        ip.run_line_magic("vxbench", "model(x")


# -- the help: %vexplore? and %vxbench? print the magics' docstrings, generated from their parsers --------

import vexplore.magics as magics_module  # noqa: E402
from vexplore.magics import VexploreMagics  # noqa: E402
from vexplore.ui.magiclines import VEXPLORE_PARSER, VXBENCH_PARSER  # noqa: E402
from vexplore.config import COMPILERS, CUDAGRAPH_MODES, STRATEGIES  # noqa: E402

MAGICS = [("vexplore", VEXPLORE_PARSER), ("vxbench", VXBENCH_PARSER)]


@pytest.mark.parametrize("name, parser", MAGICS)
def test_help_lists_every_parser_option_with_its_default_and_an_example(name, parser):
    doc = getattr(VexploreMagics, name).__doc__
    usage = doc.splitlines()[2].strip()
    assert usage == parser.usage_line() and "USAGE" not in doc      # the help itself, not a pointer to it
    assert usage in magics_module.__doc__                            # the module's summary says the same
    actions = parser._actions      # argparse's own list: an option added any way at all is here
    assert actions and len(actions) == len(parser.options)
    for action in actions:
        flag = action.option_strings[0]
        shown = flag if action.nargs == 0 else f"{flag} {action.metavar}"
        assert f"[{shown}]" in usage, (name, flag)
        entry = doc.split(f"\n  {shown}\n", 1)[1].split("\n  -", 1)[0]    # the option's own paragraph
        assert action.help and action.help.split()[0] in entry, (name, flag)
        assert "Default: " in entry, (name, flag)
        example = next(line for line in entry.splitlines() if line.strip().startswith("e.g."))
        assert f" {flag}" in example and f"%{name} " in example, (name, flag, example)


def _examples(doc, name):
    """The lines of the help that run the magic: each option's "e.g." and the Examples section."""
    section = doc.split("\nExamples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    lines = [ln.strip().removeprefix("e.g.") for ln in doc.splitlines() if ln.strip().startswith("e.g.")] + section
    return [ln.split(f"%{name} ", 1)[1] for ln in lines if f"%{name} " in ln]


def test_every_vexplore_example_in_the_help_parses():
    examples = list(_examples(VexploreMagics.vexplore.__doc__, "vexplore"))
    assert len(examples) >= len(VEXPLORE_PARSER.options) + 3
    for line in examples:
        model, inputs, tokens = split_vexplore_line(line)
        args = VEXPLORE_PARSER.parse_args(tokens)
        assert model == "model" and inputs in ("x", "ids, mask"), line
        if "--config" in line:
            assert args.config in ("cfg", "vx.CompileConfig(compile_sizes=[1, 16])")


def test_every_vxbench_example_in_the_help_parses():
    examples = list(_examples(VexploreMagics.vxbench.__doc__, "vxbench"))
    assert len(examples) >= len(VXBENCH_PARSER.options) + 3
    for line in examples:
        parsed = split_vxbench_line(line)
        assert parsed.statement.startswith(("model(x)", "y = model(x)")), line


def test_help_names_the_allowed_values_from_the_config():
    doc = VexploreMagics.vexplore.__doc__
    for values in (STRATEGIES, COMPILERS, CUDAGRAPH_MODES):
        assert " | ".join(values) in doc
    assert "idle|steady" in VexploreMagics.vxbench.__doc__


def test_question_mark_shows_the_help(ip, monkeypatch):
    import IPython.core.page as page

    shown = []
    monkeypatch.setattr(page, "page", lambda data, *a, **k: shown.append(data))
    for name, parser in MAGICS:
        ip.run_cell(f"%{name}?")
        text = shown.pop()["text/plain"]
        assert parser.usage_line() in text and "Options:" in text and "Examples:" in text
        assert all(a.option_strings[0] in text for a in parser._actions)


@pytest.mark.parametrize("magic, line", [("vexplore", ""), ("vexplore", "model x --colour red"),
                                         ("vxbench", "-o"), ("vxbench", "-n 0 model(x)")])
def test_usage_errors_point_to_the_help(ip, magic, line):
    with pytest.raises(UsageError, match=rf"usage: %{magic} .*\n%{magic}\? lists every option with an example"):
        ip.run_line_magic(magic, line)


def test_statement_function_and_size_are_library_functions():
    """%vxbench's statement compiler works on any namespace, without IPython (bench/statement.py)."""
    import torch

    from vexplore.bench.statement import statement_function, statement_size

    ns = {"x": torch.ones(7, 3), "k": 2}
    assert statement_function("x.sum() * k", ns)().item() == 42            # the last expression's value
    assert statement_function("y = x * k; z = y.sum()", ns)()[1].item() == 42   # else the names it assigns
    assert statement_size("y = f(x)", ns) == (7, "dim 0 of x") and statement_size("f(k)", ns) == (None, "tokens")
    with pytest.raises(vx.VexploreError, match="not valid Python"):
        statement_function("f(", ns)
