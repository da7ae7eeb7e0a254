"""`vexplore demo` from the command line, as the README runs it."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import vexplore.demo
from vexplore.cli import build_parser, main
from vexplore.errors import ConfigError


def test_demo_runs(tmp_path):
    res = subprocess.run([sys.executable, "-m", "vexplore", "demo", "--layers", "2", "--tokens", "16", "--reps", "3",
                          "--cache-dir", str(tmp_path / "c")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Failed to initialize NumPy" not in res.stderr
    out = res.stdout
    assert "== full: compiling" in out and "== piecewise: compiling" in out
    assert "pieces 5, compiled 3, unique 3" in out
    assert "piece  0 (general): compiled in" in out
    for variant in ("eager", "vexplore-full-auto", "vexplore-piecewise-auto"):
        assert variant in out.split("time per call")[1]


def test_help_lists_commands():
    res = subprocess.run([sys.executable, "-m", "vexplore", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    for command in ("demo", "cache"):   # one line each under "positional arguments"
        assert re.search(rf"^\s+{command}\s+\w", res.stdout, re.M), res.stdout


# -- a user's mistake: usage, one line saying what is wrong and how to fix it, exit 2, nothing built --

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if the demo gets as far as building a model."""
    def run(args):
        raise AssertionError("the demo ran; the mistake should have stopped it while parsing")
    monkeypatch.setattr(vexplore.demo, "run", run)


def mistake(capsys, argv: list[str]) -> str:
    """The error line of ``vexplore *argv``, after checking the exit status and the usage line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert err.startswith("usage: vexplore") and "Traceback" not in err, err
    return err.splitlines()[-1]


@pytest.mark.parametrize("argv, line", [
    (["--dtype", "int8"], "argument --dtype: 'int8' is not a dtype the demo runs; choose float32, float16 or "
                          "bfloat16 (or fp32, fp16, bf16)"),
    (["--dtype", "float64"], "argument --dtype: 'float64' is not a dtype the demo runs;"),
    (["--device", "tpu"], "argument --device: 'tpu' is not a device the demo runs on; choose cpu or cuda "
                          "(cuda:N for one GPU of several)"),
    pytest.param(["--device", "cuda"], "argument --device: 'cuda': torch ",
                 marks=pytest.mark.skipif(not NO_CUDA, reason="this torch sees a GPU")),
    (["--tokens", "0"], "argument --tokens: 0 is too small; give at least 1 token, e.g. --tokens 32"),
    (["--tokens", "many"], "argument --tokens: 'many' is not a whole number; give at least 1 token, e.g. --tokens 32"),
    (["--reps", "0"], "argument --reps: 0 is too small; give at least 1 sample per variant (e.g. --reps 20), "
                      "or leave --reps out to sample until the median is stable"),
    (["--layers", "-1"], "argument --layers: -1 is too small; give at least 1 layer, e.g. --layers 4"),
    (["--layers", "0"], "argument --layers: 0 is too small;"),
    (["--dim", "6"], "argument --dim: 6 is not a multiple of 4; give a positive multiple of 4 (the toy Llama's "
                     "heads), e.g. --dim 64"),
    (["--dim", "-8"], "argument --dim: -8 is too small;"),
    (["--timer", "fast"], "argument --timer: invalid choice: 'fast'"),
    (["--layers"], "argument --layers: expected one argument"),
    (["--tokens", "4", "extra"], "unrecognized arguments: extra"),
])
def test_demo_mistakes(capsys, nothing_built, argv, line):
    got = mistake(capsys, ["demo", *argv])
    assert got.startswith(("vexplore demo: error: " + line, "vexplore: error: " + line)), got


def test_demo_cuda_without_cuda_says_use_cpu(capsys, nothing_built):
    if not NO_CUDA:
        pytest.skip("this torch sees a GPU")
    got = mistake(capsys, ["demo", "--device", "cuda:0"])
    assert got.endswith("; use --device cpu") and ("CPU-only build" in got or "sees no CUDA GPU" in got), got


def test_demo_cache_dir_that_is_a_file(capsys, nothing_built, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert mistake(capsys, ["demo", "--cache-dir", str(f)]) == (
        f"vexplore demo: error: argument --cache-dir: '{f}' is a file; give a directory for the cache "
        "(a missing one is fine)")
    assert mistake(capsys, ["demo", "--cache-dir", str(f / "sub")]).endswith(
        f"'{f / 'sub'}' cannot be a directory: {f} is a file; give a directory for the cache (a missing one is fine)")


def test_demo_dtype_aliases_and_defaults(tmp_path):
    parse = build_parser().parse_args
    assert parse(["demo", "--dtype", "fp16"]).dtype == "float16"
    assert parse(["demo", "--dtype", "BF16"]).dtype == "bfloat16"
    assert parse(["demo", "--dtype", "float32"]).dtype == "float32"
    args = parse(["demo", "--device", "cpu", "--cache-dir", str(tmp_path / "new")])
    assert (args.device, args.dtype, args.layers, args.tokens, args.reps) == ("cpu", None, 4, 32, None)


def test_demo_cache_dir_default_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VEXPLORE_CACHE_DIR", str(tmp_path / "env"))
    assert build_parser().parse_args(["demo"]).cache_dir == str(tmp_path / "env")


def test_config_error_at_run_time_is_one_line(capsys, monkeypatch):
    def run(args):
        raise ConfigError("CompileConfig.mode='turbo' is not allowed; choose one of 'default'.")
    monkeypatch.setattr(vexplore.demo, "run", run)
    assert main(["demo"]) == 2
    assert capsys.readouterr().err == ("vexplore demo: error: CompileConfig.mode='turbo' is not allowed; "
                                       "choose one of 'default'.\n")


def test_no_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "vexplore: error: the following arguments are required: {demo,cache}"


def test_mistake_from_the_shell_has_no_traceback_and_no_numpy_line(tmp_path):
    """As a user sees it: no traceback, no "Failed to initialize NumPy" (numpy is a dependency)."""
    res = subprocess.run([sys.executable, "-m", "vexplore", "demo", "--tokens", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == "", res.stderr
    assert res.stderr.splitlines()[-1] == ("vexplore demo: error: argument --tokens: 0 is too small; "
                                           "give at least 1 token, e.g. --tokens 32")
    assert "Traceback" not in res.stderr and "NumPy" not in res.stderr, res.stderr
    res = subprocess.run([sys.executable, "-m", "vexplore", "cache", "info", "--dir", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout == f"no vexplore cache at {tmp_path / 'none'} (nothing to do)\n"
