"""Fault injection: damage each kind of file in a store and run the commands a user would run on it.

Every file kind (an activation shard, a labels chunk, each zarr.json, a saved statistics or
importance array) gets each fault (deleted, emptied, truncated to half, one byte flipped, replaced
by the same file of another store of the same shape, a symlink to it, swapped with a sibling of
the same size; and, as a hostile store would, one byte flipped or a zstd chunk replaced by a
decompression bomb, with the manifest re-signed to agree), and the manifest itself each of its
faults (removed, an entry nulled over a deleted shard, a key leading out of the store, an array
nobody wrote); then `info`, `stats`, `select`, `transfer` and `verify` run on the damaged copy
through the real command line. The outcome of each run is one of:

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

FAULTS = (
    "deleted",
    "emptied",
    "truncated",
    "flipped",
    "foreign",
    "symlinked",
    "swapped",
    "re-signed",
    "bomb",
)
# the hostile faults: the store's own manifest is updated to agree with the damage, so only the
# chunks' own CRC32C and the bounded decoder stand between the bytes and the answer
SIGNED = {"activation shard": ("activations", "1"), "labels chunk": ("labels", "0")}
BOMB_BYTES = 1 << 30  # what the bomb decodes to (from 32 KB)
MANIFEST_FAULTS = ("removed", "entry nulled", "key escapes", "foreign array")
MANIFEST = "manifest"  # the kind of the faults that edit the manifest
COMMANDS = ("info", "stats", "select", "transfer", "verify")
ROWS, LAYERS, HIDDEN = 240, 2, 16
TIMING = re.compile(r"\d[\d.,]*\s*(s|GB/s)\b")


@dataclass(frozen=True)
class Outcome:
    kind: str
    fault: str
    command: str
    result: str  # named, same, identical (the "foreign" file had the same bytes), unnamed, WRONG, BUG
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


def damage(path: Path, fault: str, other: Path, sibling: Path | None = None) -> None:
    """Apply one fault to one file; `other` is the same file in another store of the same shape,
    `sibling` a file of the same kind in the same store (swapped with it)."""
    if fault == "foreign":
        shutil.copyfile(other, path)
    elif fault == "symlinked":
        path.unlink()
        path.symlink_to(other)
    elif fault == "swapped" and sibling is not None:
        data = path.read_bytes()
        path.write_bytes(sibling.read_bytes())
        sibling.write_bytes(data)
    elif fault == "deleted":
        path.unlink()
    elif fault == "emptied":
        path.write_bytes(b"")
    elif fault == "truncated":
        os.truncate(path, path.stat().st_size // 2)
    elif fault == "bomb":
        from numcodecs.checksum32 import CRC32C

        frame = np.frombuffer(bomb_frame(BOMB_BYTES), np.uint8)
        path.write_bytes(bytes(CRC32C(location="end").encode(frame)))
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20  # a bit in the middle: a JSON letter's case, or a value bit
        path.write_bytes(bytes(data))


def bomb_frame(size: int) -> bytes:
    """A zstd frame that declares no content size and decodes to `size` zero bytes: RLE blocks of
    128 KiB, 4 bytes each (RFC 8878, 3.1.1), so a gigabyte takes 32 KB."""
    block = 1 << 17
    head = (0xFD2FB528).to_bytes(4, "little") + bytes([0x00, 0x38])  # no content size; 128 KiB window
    blocks = []
    for start in range(0, size, block):
        last = start + block >= size
        blocks.append(((min(block, size - start) << 3) | (1 << 1) | last).to_bytes(3, "little") + b"\x00")
    return head + b"".join(blocks)


def _compressed(store: Path, relpath: str) -> bool:
    """Whether the array holding `relpath` stores zstd chunks that are whole files (not shards)."""
    import json

    meta = json.loads((store / relpath.split("/c/")[0] / "zarr.json").read_text())
    return [c["name"] for c in meta["codecs"]][-2:] == ["zstd", "crc32c"]


def re_sign(store: Path, relpath: str, array: str, unit: str) -> None:
    """Record the damaged file's size and checksum in the store's manifest, as a hostile store would."""
    import json

    from neurosel.store import checksum

    data = (store / relpath).read_bytes()
    meta_file = store / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"]["neurosel_manifest"][array][unit] = [len(data), checksum(data)]
    meta_file.write_text(json.dumps(meta))


def damage_manifest(store: Path, fault: str, other: Path) -> None:
    """Apply one fault to a store's manifest (the `neurosel_manifest` attribute), as a careless or
    hostile edit would."""
    import json

    meta_file = store / "zarr.json"
    meta = json.loads(meta_file.read_text())
    manifest = meta["attributes"]["neurosel_manifest"]
    if fault == "removed":
        del meta["attributes"]["neurosel_manifest"]
    elif fault == "entry nulled":
        manifest["activations"]["1"] = None
        (store / "activations/c/1/0/0").unlink()
    elif fault == "key escapes":
        manifest["../../../../../../dev/zero"] = {"0": [1 << 40, 0]}
    else:
        shutil.copytree(other / "labels", store / "labels_extra")
    meta_file.write_text(json.dumps(meta))


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
    siblings = {"activation shard": "activations/c/0/0/0"}
    outcomes = []
    for kind in kinds or [*files, MANIFEST]:
        for fault in MANIFEST_FAULTS if kind == MANIFEST else FAULTS:
            if (fault == "swapped" and kind not in siblings) or (
                fault in ("re-signed", "bomb") and kind not in SIGNED
            ):
                continue
            if fault == "bomb" and not _compressed(source, files[kind]):
                continue
            for command in commands:
                case = workdir / "case"
                shutil.rmtree(case, ignore_errors=True)
                shutil.copytree(pristine, case)
                src, tgt = case / source.name, case / target.name
                if kind == MANIFEST:
                    damage_manifest(src, fault, tgt)
                else:
                    other = tgt / files[kind]
                    if not other.exists():  # a saved result only the source has: another of its own
                        other = case / "other" / files[kind]
                        other.parent.mkdir(parents=True, exist_ok=True)
                        other.write_bytes(bytes(reversed((src / files[kind]).read_bytes())))
                    sibling = src / siblings[kind] if kind in siblings else None
                    same_bytes = other.read_bytes() == (src / files[kind]).read_bytes()
                    if fault in ("foreign", "symlinked") and same_bytes:
                        # the other store's file is byte for byte this one (a zarr.json of the same
                        # shape): nothing is changed, so nothing is to be named
                        outcomes.append(Outcome(kind, fault, command, "identical", ""))
                        continue
                    damage(src / files[kind], fault, other, sibling)
                    if kind in SIGNED and fault in ("re-signed", "bomb"):
                        re_sign(src, files[kind], *SIGNED[kind])
                code, out, err = _run(main, command_line(command, src, tgt))
                out = out.replace(str(case), str(pristine))
                relpath = "neurosel_manifest" if kind == MANIFEST else files[kind]
                outcomes.append(_judge(kind, fault, command, code, out, err, expected[command], relpath))
    return outcomes


def _judge(kind, fault, command, code, out, err, expected, relpath) -> Outcome:
    first = err.strip().splitlines()[0] if err.strip() else ""
    if code == 2:
        array = relpath.split("/c/")[0].removesuffix("/zarr.json").removesuffix("zarr.json") or "zarr.json"
        named = (
            array.split("/")[-1] in first or relpath in first or "zarr.json" in first or "manifest" in first
        )
        # the root zarr.json is the commit point and holds the manifest: another store's there makes
        # every file disagree with it, and the first file read is named
        named = named or (relpath == "zarr.json" and ("damaged" in first or "does not match" in first))
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
    results = ("named", "same", "identical", "unnamed", "WRONG", "BUG")
    counts = ", ".join(f"{r} {sum(o.result == r for o in outcomes)}" for r in results)
    print(f"\n{len(outcomes)} cases: {counts}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
