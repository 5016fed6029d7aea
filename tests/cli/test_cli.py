"""The command line: --help everywhere, usage and output-path errors as one line with exit code 2,
quiet runs, one device line per command, closed pipes, and exit code 1 kept for bugs."""

from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import neurosel
from neurosel.cli import _info, main
from neurosel.cli._parser import build_parser, subcommands
from tests.conftest import two_class_store_at

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = sorted(subcommands(build_parser()))
COMPUTING = ["extract", "stats", "select", "transfer", "fingerprint", "experiment", "demo"]


def assert_one_line_error(code: int | None, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neurosel: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


def usage_error(capsys, *argv: str) -> str:
    """Run a command that must fail at parsing; return its one stderr line."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    err = capsys.readouterr().err
    assert_one_line_error(exc.value.code, err)
    return err.strip()


@pytest.fixture
def store(two_class_store):
    return two_class_store


# --help


def test_commands_are_the_documented_ones():
    assert set(COMMANDS) == {
        "extract", "info", "verify", "export", "stats", "select", "transfer", "fingerprint", "report",
        "experiment", "demo", "bench",
    }  # fmt: skip


@pytest.mark.parametrize("argv", [[]] + [[name] for name in COMMANDS], ids=lambda a: " ".join(a) or "top")
def test_help_exits_0_with_a_description_and_defaults(capsys, argv):
    """`neurosel --help` and `neurosel X --help` for every X: exit 0, the description, the defaults."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    parser = build_parser() if not argv else subcommands(build_parser())[argv[0]]
    assert parser.description, f"{argv}: no description"
    assert " ".join(parser.description.split()[:4]) in " ".join(out.split())
    assert "default" in out
    assert out.startswith(f"usage: neurosel{' ' + argv[0] if argv else ''} ")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name):
    for action in subcommands(build_parser())[name]._actions:
        assert action.help, f"neurosel {name} {action.dest}: no help text"


@pytest.mark.parametrize("name", COMPUTING)
def test_device_on_every_command_that_computes(name):
    options = {opt: a for a in subcommands(build_parser())[name]._actions for opt in a.option_strings}
    assert options["--device"].default == "auto"


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "CUDA:0"])
def test_device_values_parse(device):
    args = build_parser().parse_args(["stats", "s.zarr", "--device", device])
    assert args.device == device.lower()


# usage errors: one line, exit 2, naming the command's --help


BAD_VALUES = [
    (["transfer", "--source", "a", "--target", "b", "--ks", "a,b"], ["--ks", "'a,b'", "10,30,100"]),
    (["experiment", "amazon", "--data-dir", "d", "--ks", "abc"], ["--ks", "'abc'", "10,30,100"]),
    (["experiment", "amazon", "--data-dir", "d", "--ks", "10,-3"], ["--ks", "positive"]),
    (["transfer", "--source", "a", "--target", "b", "--cls", "foo"], ["--cls", "NAME=STORE"]),
    (["transfer", "--source", "a", "--target", "b", "--cls", "=x.zarr"], ["--cls", "NAME=STORE"]),
    (["transfer", "--source", "a", "--target", "b", "--seeds", "-1"], ["--seeds", "positive"]),
    (["transfer", "--source", "a", "--target", "b", "--seeds", "two"], ["--seeds", "whole number"]),
    (["select", "s.zarr", "--k", "0"], ["--k", "below 1"]),
    (["select", "s.zarr", "--mass", "1.5"], ["--mass", "(0, 1]"]),
    (["select", "s.zarr", "--lambda-ratio", "1"], ["--lambda-ratio", "(0, 1)"]),
    (["stats", "s.zarr", "--auroc-bits", "30"], ["--auroc-bits", "1..24"]),
    (["stats", "s.zarr", "--device", "gpu"], ["--device", "auto, cpu, cuda or cuda:N"]),
    (["fingerprint", "a.zarr", "--measure", "l2"], ["--measure", "invalid choice"]),
    (["extract", "x.csv"], ["--model", "--out", "required"]),
]


@pytest.mark.parametrize(("argv", "needles"), BAD_VALUES, ids=[" ".join(argv) for argv, _ in BAD_VALUES])
def test_bad_values_are_usage_errors(capsys, argv, needles):
    line = usage_error(capsys, *argv)
    for needle in needles:
        assert needle in line
    assert line.endswith(f"(see neurosel {argv[0]} --help)")


def test_unknown_argument_names_the_command(capsys):
    line = usage_error(capsys, "select", "s.zarr", "--frobnicate")
    assert "unrecognized arguments: --frobnicate" in line
    assert line.endswith("(see neurosel select --help)")


def test_missing_command_names_the_top_level_help(capsys):
    assert usage_error(capsys).endswith("(see neurosel --help)")


def test_values_are_parsed_into_types():
    args = build_parser().parse_args(
        ["transfer", "--source", "a", "--target", "b", "--ks", "5, 10,20", "--cls", "a=x.zarr"]
    )
    assert args.ks == (5, 10, 20) and args.cls == [("a", "x.zarr")]
    assert build_parser().parse_args(["transfer", "--source", "a", "--target", "b"]).ks == (
        10, 30, 100, 300, 1000,
    )  # fmt: skip


def test_ranking_choices_are_the_engine_s_and_default_to_its_default():
    from neurosel.crossdomain import DEFAULT_RANKING, RANKINGS

    for command in (
        ["transfer", "--source", "a", "--target", "b"],
        ["experiment", "amazon", "--data-dir", "d"],
    ):
        action = next(a for a in _subparser(command[0])._actions if a.dest == "ranking")
        assert tuple(action.choices) == RANKINGS
        assert build_parser().parse_args(command).ranking == DEFAULT_RANKING


@pytest.mark.parametrize(
    "base", [["transfer", "--source", "a", "--target", "b"], ["experiment", "amazon", "--data-dir", "d"]]
)
def test_in_core_bytes_default_is_the_engine_s_and_takes_units(capsys, base):
    from neurosel.defaults import IN_CORE_BYTES
    from neurosel.experiments import Options

    assert build_parser().parse_args(base).in_core_bytes == IN_CORE_BYTES == Options().in_core_bytes
    for text, value in (("8G", 8 << 30), ("512m", 512 << 20), ("1000", 1000), ("3K", 3 << 10)):
        assert build_parser().parse_args([*base, "--in-core-bytes", text]).in_core_bytes == value
    for bad in ("0", "-1G", "lots", "1.5G", "G"):
        err = usage_error(capsys, *base, f"--in-core-bytes={bad}")
        assert "--in-core-bytes" in err and "8G" in err


def _subparser(name: str):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[name]


# output paths: refused before any work


def _no_work(*args, **kwargs):
    raise AssertionError("the slow part ran before the output path was checked")


@pytest.mark.parametrize("where", ["missing folder", "existing folder", "under a file"])
def test_select_json_path_is_refused_before_the_solve(capsys, store, tmp_path, monkeypatch, where):
    monkeypatch.setattr(neurosel, "importance", _no_work)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    out = {
        "missing folder": tmp_path / "nope" / "sel.json",
        "existing folder": tmp_path / "adir",
        "under a file": tmp_path / "afile" / "sel.json",
    }[where]
    code = main(["-q", "select", store.path, "--k", "3", "--json", str(out)])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, "--json", str(out))
    assert (tmp_path / "adir").is_dir() and not any((tmp_path / "adir").iterdir())
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("command", ["fingerprint", "transfer"])
def test_json_into_a_missing_folder_is_refused_before_work(capsys, store, tmp_path, monkeypatch, command):
    monkeypatch.setattr(neurosel, command, _no_work)
    out = str(tmp_path / "nope" / "out.json")
    argv = (
        [command, store.path]
        if command == "fingerprint"
        else [command, "--source", store.path, "--target", store.path]
    )
    code = main(["-q", *argv, "--json", out])
    assert_one_line_error(code, capsys.readouterr().err, "--json", "does not exist", "create it")


def test_report_out_that_is_a_file(capsys, tmp_path):
    results = tmp_path / "results.json"
    results.write_text("{}")
    out = tmp_path / "report.md"
    out.write_text("mine")
    code = main(["report", str(results), "--out", str(out)])
    assert_one_line_error(code, capsys.readouterr().err, str(out), "is a file", "folder")
    assert out.read_text() == "mine"


@pytest.mark.parametrize("under", [False, True])
def test_demo_out_that_is_a_file(capsys, tmp_path, monkeypatch, under):
    import neurosel.experiments

    monkeypatch.setattr(neurosel.experiments, "run_demo", _no_work)
    target = tmp_path / "taken"
    target.write_text("mine")
    out = target / "demo" if under else target
    code = main(["-q", "demo", "--out", str(out), "--device", "cpu"])
    assert_one_line_error(code, capsys.readouterr().err, "--out", str(out), "is a file")
    assert target.read_text() == "mine"


def test_experiment_out_that_is_a_file(capsys, tmp_path, monkeypatch):
    import neurosel.experiments

    monkeypatch.setattr(neurosel.experiments, "run_experiment", _no_work)
    out = tmp_path / "taken"
    out.write_text("mine")
    code = main(["-q", "experiment", "amazon", "--data-dir", str(tmp_path), "--out", str(out)])
    assert_one_line_error(code, capsys.readouterr().err, "--out", "is a file")


# OSErrors while writing outputs: bad input (exit 2, one line); anything else: a bug (exit 1)


def test_disk_full_while_writing_json_is_one_line_and_leaves_no_file(capsys, store, tmp_path, monkeypatch):
    out = tmp_path / "sel.json"
    real = Path.write_text

    def half_then_full(self, text, *args, **kwargs):
        if not self.name.startswith(".sel.json"):
            return real(self, text, *args, **kwargs)
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", half_then_full)
    code = main(["-q", "select", store.path, "--k", "3", "--json", str(out)])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, "no space left on device", "free space")
    assert "selected" in captured.out  # the results were printed before the write failed
    assert not out.exists() and list(tmp_path.glob(".sel.json*")) == []


OUTPUT_ERRORS = [
    (PermissionError(errno.EACCES, "Permission denied", "/data/out"), ["/data/out", "permission"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/x"), ["/f/x", "is a file"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/d"), ["/d: is a directory", "file path"]),
    (FileExistsError(errno.EEXIST, "File exists", "/e"), ["/e: file exists", "remove it"]),
    (OSError(errno.ENOSPC, "No space left on device", "/full"), ["/full", "free space"]),
]


@pytest.mark.parametrize(
    ("error", "needles"), OUTPUT_ERRORS, ids=[errno.errorcode[e.errno] for e, _ in OUTPUT_ERRORS]
)
def test_output_oserrors_are_bad_input(capsys, monkeypatch, error, needles):
    def fail(args):
        raise error

    monkeypatch.setattr(_info, "run", fail)
    code = main(["info", "s.zarr"])
    assert_one_line_error(code, capsys.readouterr().err, *needles)


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), OSError(errno.ECONNRESET, "Connection reset"), KeyError("x")]
)
def test_other_exceptions_are_bugs_with_a_trace(capsys, monkeypatch, error):
    def fail(args):
        raise error

    monkeypatch.setattr(_info, "run", fail)
    assert main(["info", "s.zarr"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error (a bug)" in err


def test_multi_line_input_error_is_printed_as_one_line(capsys, monkeypatch):
    def fail(args):
        raise neurosel.InputError("store x: broken\n  details here; re-run")

    monkeypatch.setattr(_info, "run", fail)
    code = main(["info", "s.zarr"])
    assert_one_line_error(code, capsys.readouterr().err, "store x: broken details here; re-run")


# quiet runs and the device line


def test_quiet_leaves_only_results(capsys, store):
    assert main(["-q", "stats", store.path, "--device", "auto", "--recompute"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("stats ") and "top 10 neurons by" in captured.out


@pytest.mark.parametrize("command", ["stats", "select"])
def test_device_choice_is_logged_once_per_command(capsys, store, command):
    argv = [command, store.path, "--device", "auto"] + (["--k", "3"] if command == "select" else [])
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("device=auto chose") == 1, err


def test_explicit_cpu_logs_no_device_choice(capsys, store):
    assert main(["stats", store.path, "--device", "cpu"]) == 0
    assert "device=auto" not in capsys.readouterr().err


def test_transfer_and_fingerprint_run_with_device_and_json(capsys, tmp_path):
    a = two_class_store_at(tmp_path / "a.zarr", seed=1)
    b = two_class_store_at(tmp_path / "b.zarr", seed=2)
    out = tmp_path / "t.json"
    argv = ["-q", "transfer", "--source", a.path, "--target", b.path, "--k", "4", "--ks", "2,4"]
    assert main([*argv, "--seeds", "2", "--device", "cpu", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "a → b (source-normalised): all " in captured.out and " selected " in captured.out
    assert json.loads(out.read_text())[0]["ks"] == [2, 4]
    fp = tmp_path / "fp.json"
    assert main(["-q", "fingerprint", a.path, b.path, "--k", "4", "--device", "cpu", "--json", str(fp)]) == 0
    assert capsys.readouterr().err == ""
    assert json.loads(fp.read_text())["k"] == 4


def test_cuda_that_is_not_there_is_bad_input(capsys, store, monkeypatch):
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr("neurosel.devices._gpu_count", lambda: 0)
    code = main(["-q", "stats", store.path, "--device", "cuda:3"])
    assert_one_line_error(code, capsys.readouterr().err, "'cuda:3'", "no GPU visible", "cpu")


# closed pipes


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "neurosel.cli", *argv]


def test_stdout_closed_before_writing_is_quiet(store):
    """`neurosel info --json STORE | head -c 0`: the reader is gone before anything is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            _cli("info", "--json", store.path), stdout=write, stderr=subprocess.PIPE, cwd=ROOT, timeout=120
        )
    finally:
        os.close(write)
    assert proc.stderr.decode() == ""
    assert proc.returncode == 141


def test_stdout_closed_after_a_few_bytes_is_quiet(store):
    """`neurosel info --json STORE | head -c 10`."""
    with subprocess.Popen(
        _cli("info", "--json", store.path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(10).startswith(b"{")
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) in (0, 141)
    assert "Traceback" not in err and "Exception ignored" not in err and err == ""


def test_argparse_namespace_has_quiet_for_every_command():
    for name in COMMANDS:
        parser = build_parser()
        positional = {
            "extract": ["x.csv", "--model", "m", "--out", "o"],
            "info": ["s"],
            "verify": ["s"],
            "export": ["s", "--out", "o"],
            "stats": ["s"],
            "select": ["s"],
            "transfer": ["--source", "s", "--target", "t"],
            "fingerprint": ["s"],
            "report": ["r.json", "--out", "o"],
            "experiment": ["amazon", "--data-dir", "d"],
            "demo": [],
            "bench": ["stats"],
        }[name]
        args = parser.parse_args(["-q", name, *positional])
        assert isinstance(args, argparse.Namespace) and args.quiet and args.command == name


def test_extract_several_sites_writes_one_store_each(capsys, tiny_model, tmp_path):
    data = tmp_path / "in.csv"
    data.write_text(
        "text,label\n" + "".join(f"film {i} was {'good' if i % 2 else 'bad'},{i % 2}\n" for i in range(12))
    )
    out = str(tmp_path / "run-{site}.zarr")
    assert main(["-q", "extract", str(data), "--model", str(tiny_model), "--out", out,
                 "--sites", "hidden,ffn", "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert (
        "site      hidden" in printed
        and "site      ffn (encoder.layer.{block}.output.dense:input)" in printed
    )
    assert neurosel.open_store(tmp_path / "run-ffn.zarr").shape == (12, 2, 64)
    assert neurosel.open_store(tmp_path / "run-hidden.zarr").shape == (12, 3, 32)
    assert "hidden,attention" in usage_error(capsys, "extract", str(data), "--model", "m", "--out", out,
                                             "--sites", "hidden,attention")  # fmt: skip


def test_warnings_are_one_line_each_naming_the_store(capsys, tmp_path):
    """A select asking for more neurons than the path reaches: each of neurosel's warnings is one
    line, `neurosel: warning: store PATH: ...`, with no Python source line echoed."""
    import numpy as np

    rng = np.random.default_rng(0)
    store = neurosel.store_from_array(
        tmp_path / "s.zarr", rng.standard_normal((12, 2, 8)).astype(np.float32), labels=np.arange(12) % 2
    )
    assert main(["-q", "select", store.path, "--k", "16", "--device", "cpu"]) == 0
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "device=" not in line]
    assert err and all(line.startswith(f"neurosel: warning: store {store.path}: ") for line in err), err
