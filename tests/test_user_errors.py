"""User mistakes that used to reach a raw traceback or pass silently (issue 23, part 5): each now
raises a ConfigError saying what, where and how to fix it. The ``vexplore cache`` command's
mistakes are tested in tests/cache/test_cache_cli.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import vexplore as vx

FIELDS = "Fields: strategy, splitting_ops, compiler, mode, inductor_options,"


# -- a misspelt field in replace / recompile --------------------------------------------------
def test_replace_names_an_unknown_field_and_the_nearest_one():
    cfg = vx.CompileConfig(strategy="piecewise")
    with pytest.raises(vx.ConfigError) as exc:
        cfg.replace(stratgy="full")
    msg = str(exc.value)
    assert msg.startswith("'stratgy' is not a CompileConfig field (in cfg.replace(...) or cm.recompile(...)). "
                          "Did you mean 'strategy'? " + FIELDS)
    assert "max_compile_mb" in msg and cfg.strategy == "piecewise"
    with pytest.raises(vx.ConfigError, match=r"^'xyzzy' is not a CompileConfig field \(in .*\)\. Fields: "):
        cfg.replace(xyzzy=1)     # nothing near: no guess
    assert cfg.replace(strategy="full").strategy == "full"


def test_recompile_names_an_unknown_field():
    cm = vx.compile(nn.Linear(4, 4), vx.CompileConfig(compiler="eager", cache=vx.CacheConfig(tiers=())))
    with pytest.raises(vx.ConfigError, match=r"'cudagrph' is not a CompileConfig field .* Did you mean 'cudagraph'\? "
                                             + FIELDS):
        cm.recompile(cudagrph="full")
    with pytest.raises(vx.ConfigError, match=r"Did you mean 'strategy'\?"):
        cm.recompile(stratgy="full")


# -- Inductor options checked against the installed torch --------------------------------------
@pytest.mark.parametrize("name, near", [
    ("epilogue_fusoin", "epilogue_fusion"),
    ("triton.cudagraph_tree", "triton.cudagraph_trees"),     # options of nested sections are dotted
    ("cpp.thread", "cpp.threads"),
])
def test_misspelt_inductor_option_is_refused_with_the_nearest(name, near):
    with pytest.raises(vx.ConfigError) as exc:
        vx.CompileConfig(inductor_options={"max_autotune": False, name: False})
    assert str(exc.value) == (
        f"CompileConfig.inductor_options: {name!r} is not an Inductor option of the installed torch "
        f"{torch.__version__}. Did you mean {near!r}? Options of nested sections are dotted "
        "(e.g. 'triton.cudagraphs'); torch._inductor.list_options() lists them all.")


@pytest.mark.parametrize("name", ["triton", "os", "is_fbcode", "no_such_inductor_option", 3])
def test_what_is_not_an_option_is_refused(name):
    """A nested section, a module or function of Inductor's config module, a made-up name, a non-string."""
    with pytest.raises(vx.ConfigError, match=rf"^CompileConfig.inductor_options: {name!r} is not an Inductor option"):
        vx.CompileConfig(inductor_options={name: True})


def test_real_inductor_options_are_accepted():
    import torch._inductor

    opts = {"epilogue_fusion": False, "triton.cudagraph_trees": False, "cpp.threads": 2,
            "force_disable_caches": False}   # an alias of another module's option, missing from list_options()
    cfg = vx.CompileConfig(inductor_options=opts)
    assert cfg.inductor_options == dict(sorted(opts.items()))
    assert cfg.replace(mode="max-autotune").inductor_options == cfg.inductor_options
    every = {name: torch._inductor.config.get_config_copy()[name] for name in torch._inductor.list_options()}
    assert vx.CompileConfig(inductor_options=every).inductor_options == every


def test_no_inductor_import_for_a_config_without_options():
    """Checking options imports Inductor's config (about a second); a config without options does not."""
    code = ("import sys, vexplore as vx\n"
            "def inductor(): return {m for m in sys.modules if m.startswith('torch._inductor')}\n"
            "before = inductor(); vx.CompileConfig(strategy='full').replace(mode='max-autotune')\n"
            "assert inductor() == before, sorted(inductor() - before)\n"
            "vx.CompileConfig(inductor_options={'epilogue_fusion': False})\n"
            "assert 'torch._inductor.config' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- a saved report from another torch still loads ----------------------------------------------
@pytest.fixture(scope="module")
def foreign_report(tmp_path_factory):
    """A real report, saved as a machine with another torch would: its config sets an Inductor
    option this torch does not have."""
    torch._dynamo.reset()
    cm = vx.compile(nn.Sequential(nn.Linear(4, 4), nn.ReLU()).eval(),
                    vx.CompileConfig(strategy="full", compiler="eager", cache=vx.CacheConfig(tiers=())),
                    session=vx.Session())
    with torch.no_grad():
        cm(torch.randn(2, 4))
    path = cm.report.save(tmp_path_factory.mktemp("foreign") / "run.vxreport.json")
    data = json.loads(path.read_text())
    data["report"]["config"]["inductor_options"] = {"option_of_torch_3": "True", "epilogue_fusion": "False"}
    data["report"]["versions"]["torch"] = "3.0.0"
    path.write_text(json.dumps(data))
    return path


def test_report_with_an_option_this_torch_lacks_loads(foreign_report, tmp_path):
    pytest.importorskip("plotly")   # export_html draws with the notebook extra
    rep = vx.load_report(foreign_report)
    assert rep.config["inductor_options"] == {"option_of_torch_3": "True", "epilogue_fusion": "False"}
    assert rep.to_dict()["config"] == json.loads(foreign_report.read_text())["report"]["config"]
    assert "option_of_torch_3" in vx.export_html(rep, tmp_path / "foreign.html").read_text()
    assert not vx.diff(rep, rep).changed
    with pytest.raises(vx.ConfigError, match="option_of_torch_3"):   # a new config on this torch is checked
        vx.CompileConfig(inductor_options=rep.config["inductor_options"])


# -- export_html's path ----------------------------------------------------------------------------
def test_export_html_to_a_directory(foreign_report, tmp_path):
    pytest.importorskip("plotly")   # export_html draws with the notebook extra
    rep = vx.load_report(foreign_report)
    for given in (tmp_path, str(tmp_path) + os.sep, str(tmp_path / "new") + os.sep):   # "new/": meant as a folder
        with pytest.raises(vx.ConfigError) as exc:
            vx.export_html(rep, given)
        shown = str(given).rstrip(os.sep) if isinstance(given, str) else str(given)
        assert str(exc.value) == (f"vx.export_html(..., {os.fspath(given)!r}): {shown!r} is a directory; pass a "
                                  f"file path for the page, e.g. {os.path.join(shown, 'run.html')!r}.")
    assert not (tmp_path / "new").exists() and os.listdir(tmp_path) == []


def test_export_html_under_a_file_or_an_unwritable_folder(foreign_report, tmp_path):
    pytest.importorskip("plotly")   # export_html draws with the notebook extra
    rep = vx.load_report(foreign_report)
    (tmp_path / "notes.txt").write_text("x")
    target = tmp_path / "notes.txt" / "runs" / "run.html"
    with pytest.raises(vx.ConfigError) as exc:
        vx.export_html(rep, target)
    assert str(exc.value) == (f"vx.export_html(..., {str(target)!r}): the folder {str(target.parent)!r} cannot be "
                              f"made, {str(tmp_path / 'notes.txt')!r} is a file; pass a path inside a directory, "
                              "e.g. 'run.html'.")
    assert (tmp_path / "notes.txt").read_text() == "x"
    made = vx.export_html(rep, tmp_path / "missing" / "parents" / "run.html")   # missing folders are made
    assert made.is_file() and made.read_text().startswith("<!DOCTYPE html>")
    if os.geteuid() != 0:   # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(vx.ConfigError, match=r"cannot make the folder .*Permission denied.*you can write to"):
            vx.export_html(rep, locked / "sub" / "run.html")
