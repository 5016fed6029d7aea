"""The fault-injection matrix (engine/bench/faults.py): every kind of file in a store deleted, emptied,
truncated or with a flipped byte, under `info`, `stats`, `select`, `transfer` and `verify`. Each run must name
the damage (exit 2) or give exactly the undamaged answer; never a different answer, never a bug."""

from __future__ import annotations

import pytest

from neurosel.bench.faults import run_matrix
from neurosel.cli import main

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return run_matrix(tmp_path_factory.mktemp("faults"), main)


def test_no_damage_gives_a_wrong_answer_or_a_traceback(outcomes):
    bad = [o for o in outcomes if o.result not in ("named", "same")]
    assert not bad, "\n".join(f"{o.kind}, {o.fault}, {o.command}: {o.result} {o.detail}" for o in bad)


def test_every_read_of_a_missing_or_cut_file_names_it(outcomes):
    """A deleted, emptied or truncated file that a command needs is named, never read as zeros."""
    for o in outcomes:
        if o.fault == "flipped":
            continue
        if o.kind in ("labels chunk", "activations zarr.json", "root zarr.json"):  # every command reads these
            assert o.result == "named", (o.kind, o.fault, o.command)
        if o.kind == "activation shard" and o.command in ("info", "transfer"):  # read or checked
            assert o.result == "named", (o.kind, o.fault, o.command)


def test_verify_names_every_fault(outcomes):
    """Every fault but a flipped byte in the root zarr.json, which is rewritten by every commit (so
    not checksummed) and mostly holds the consolidated copy of the arrays' metadata that neurosel
    never reads: a flip there is named only when it breaks the JSON or changes what is read."""
    missed = [
        (o.kind, o.fault, o.result)
        for o in outcomes
        if o.command == "verify"
        and o.result != "named"
        and (o.kind, o.fault) != ("root zarr.json", "flipped")
    ]
    assert not missed
    assert len(outcomes) == 9 * 4 * 5
