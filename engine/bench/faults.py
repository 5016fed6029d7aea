"""Fault injection: damage each kind of file in a store and run the commands a user would run on it.

Every file kind (an activation shard, a labels chunk, each zarr.json, a saved statistics or
importance array) gets each fault (deleted, emptied, truncated to half, one byte flipped); then
`info`, `stats`, `select`, `transfer` and `verify` run on the damaged copy through the real command
line. The
outcome of each run is one of:

- `named` (exit 2, the damaged array or file named on stderr): the damage was caught;
- `same` (exit 0, the same answer as on the undamaged store): the command did not need the file;
- `WRONG` (exit 0, a different answer) or `BUG` (exit 1, a traceback): what must never happen.

`neurosel bench faults` prints the table that docs/reliability.md shows; tests/bench/test_faults.py
runs the same matrix and fails on any WRONG or BUG.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CommandLine = Callable[[list[str]], int]  # neurosel.cli.main: argv -> exit code

FAULTS = ("deleted", "emptied", "truncated", "flipped")
COMMANDS = ("info", "stats", "select", "transfer", "verify")
ROWS, LAYERS, HIDDEN = 240, 2, 16
TIMING = re.compile(r"\d[\d.,]*\s*(s|GB/s)\b")


@dataclass(frozen=True)
class Outcome:
    kind: str
    fault: str
    command: str
    result: str  # named, same, WRONG, BUG
    detail: str


def make_stores(root: Path, main: CommandLine) -> tuple[Path, Path]:
    """A labelled source and target store (planted signal in a few neurons), with saved statistics
    and an importance path, as a user's stores look after `stats` and `select` (run by `main`)."""
    import neurosel

    rng = np.random.default_rng(0)
    paths = []
    for name, shift in (("source", 0.0), ("target", 0.3)):
        y = rng.integers(0, 2, ROWS)
        x = rng.standard_normal((ROWS, LAYERS, HIDDEN)) + shift
        x[:, 1, :3] += 1.5 * y[:, None]
        path = root / f"{name}.zarr"
        neurosel.store_from_array(path, x, labels=y, chunk_rows=20)
        paths.append(path)
    for argv in (["stats", str(paths[0])], ["select", str(paths[0]), "--k", "5"]):
        if _run(main, ["-q", *argv, "--device", "cpu"])[0] != 0:
            raise RuntimeError(f"setting up the fault stores failed: {argv}")
    return paths[0], paths[1]


def file_kinds(source: Path) -> dict[str, str]:
    """One file of each kind, relative to the source store."""
    stats_key = sorted(p.name for p in (source / "stats").iterdir() if p.name.startswith("by-label"))[0]
    imp_key = sorted(p.name for p in (source / "importance").iterdir())[0]
    return {
        "activation shard": "activations/c/1/0/0",
        "labels chunk": "labels/c/0",
        "root zarr.json": "zarr.json",
        "activations zarr.json": "activations/zarr.json",
        "labels zarr.json": "labels/zarr.json",
        "lengths zarr.json": "lengths/zarr.json",
        "statistics array": f"stats/{stats_key}/fisher/c/0/0",
        "statistics zarr.json": f"stats/{stats_key}/zarr.json",
        "importance array": f"importance/{imp_key}/ranking/c/0",
    }


def damage(path: Path, fault: str) -> None:
    """Apply one fault to one file."""
    if fault == "deleted":
        path.unlink()
    elif fault == "emptied":
        path.write_bytes(b"")
    elif fault == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20  # a bit in the middle: a JSON letter's case, or a value bit
        path.write_bytes(bytes(data))


def command_line(command: str, source: Path, target: Path) -> list[str]:
    common = ["--device", "cpu"]
    return {
        "info": ["info", str(source)],
        "verify": ["verify", str(source)],
        "stats": ["stats", str(source), *common],
        "select": ["select", str(source), "--k", "5", *common],
        "transfer": [
            "transfer",
            "--source",
            str(source),
            "--target",
            str(target),
            "--k",
            "5",
            "--ks",
            "5",
            "--seeds",
            "1",
            *common,
        ],
    }[command]


def _run(main: CommandLine, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["-q", *argv] if argv[0] != "-q" else argv)
        except SystemExit as e:  # argparse
            code = int(e.code or 0)
    return code, TIMING.sub("T", out.getvalue()), err.getvalue()


def run_matrix(
    workdir: Path, main: CommandLine, kinds: Sequence[str] | None = None, commands: Sequence[str] = COMMANDS
) -> list[Outcome]:
    """Every (file kind, fault, command) case, each on a fresh copy of the undamaged stores, run by
    the command line `main` (`neurosel.cli.main`: given, since the harness sits below the CLI)."""
    pristine = workdir / "pristine"
    pristine.mkdir(parents=True, exist_ok=True)
    source, target = make_stores(pristine, main)
    expected = {c: _run(main, command_line(c, source, target)) for c in commands}
    files = file_kinds(source)
    outcomes = []
    for kind in kinds or list(files):
        for fault in FAULTS:
            for command in commands:
                case = workdir / "case"
                shutil.rmtree(case, ignore_errors=True)
                shutil.copytree(pristine, case)
                src, tgt = case / source.name, case / target.name
                damage(src / files[kind], fault)
                code, out, err = _run(main, command_line(command, src, tgt))
                out = out.replace(str(case), str(pristine))
                outcomes.append(_judge(kind, fault, command, code, out, err, expected[command], files[kind]))
    return outcomes


def _judge(kind, fault, command, code, out, err, expected, relpath) -> Outcome:
    first = err.strip().splitlines()[0] if err.strip() else ""
    if code == 2:
        array = relpath.split("/c/")[0].removesuffix("/zarr.json").removesuffix("zarr.json") or "zarr.json"
        named = array.split("/")[-1] in first or relpath in first or "zarr.json" in first
        return Outcome(kind, fault, command, "named" if named else "unnamed", first)
    if code == 0 and out == expected[1]:
        return Outcome(kind, fault, command, "same", "")
    if code == 0:
        return Outcome(kind, fault, command, "WRONG", "exit 0 with a different answer")
    return Outcome(kind, fault, command, "BUG", f"exit {code}: {err.strip().splitlines()[-1] if err else ''}")


def table(outcomes: list[Outcome]) -> str:
    """Markdown: one row per (file kind, fault), one column per command."""
    commands = list(dict.fromkeys(o.command for o in outcomes))
    rows = {}
    for o in outcomes:
        rows.setdefault((o.kind, o.fault), {})[o.command] = o.result
    lines = ["| file | fault | " + " | ".join(commands) + " |", "|---|---|" + "---|" * len(commands)]
    for (kind, fault), cells in rows.items():
        lines.append(f"| {kind} | {fault} | " + " | ".join(cells.get(c, "") for c in commands) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, command_line: CommandLine | None = None) -> int:
    """The matrix and its table; `command_line` is the `neurosel` command's main, which
    `neurosel bench faults` passes in (the harness imports nothing from the CLI above it)."""
    if command_line is None:
        print("bench faults drives the command line: run it as `neurosel bench faults`", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="neurosel bench faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--details", action="store_true", help="also print the first error line of each case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="neurosel-faults-") as tmp:
        outcomes = run_matrix(Path(tmp), command_line)
    print(table(outcomes))
    if args.details:
        for o in outcomes:
            print(f"- {o.kind}, {o.fault}, {o.command}: {o.result} {o.detail}")
    bad = [o for o in outcomes if o.result in ("WRONG", "BUG", "unnamed")]
    print(f"\n{len(outcomes)} cases: " + ", ".join(
        f"{r} {sum(o.result == r for o in outcomes)}" for r in ("named", "same", "unnamed", "WRONG", "BUG")
    ))  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
