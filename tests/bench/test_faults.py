"""The fault-injection matrix (engine/bench/faults.py): every kind of file in a store deleted, emptied,
truncated, with a flipped byte, replaced by another store's file of the same size, symlinked to it or
swapped with a sibling; as a hostile store, a flipped byte or a decompression bomb with the manifest
re-signed to agree; and the manifest removed, nulled, escaping the store or beside an array nobody
wrote, under `info`, `stats`, `select`, `transfer` and `verify`. Each run must name the damage (exit 2)
or give exactly the undamaged answer; never a different answer, never a bug."""

from __future__ import annotations

import pytest

from neurosel.bench.faults import run_matrix
from neurosel.cli import main

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return run_matrix(tmp_path_factory.mktemp("faults"), main)


def test_no_damage_gives_a_wrong_answer_or_a_traceback(outcomes):
    bad = [o for o in outcomes if o.result not in ("named", "same", "identical")]
    assert not bad, "\n".join(f"{o.kind}, {o.fault}, {o.command}: {o.result} {o.detail}" for o in bad)


def test_every_read_of_a_missing_or_cut_file_names_it(outcomes):
    """A deleted, emptied, truncated or foreign file that a command needs is named, never read as
    zeros or as another store's numbers."""
    for o in outcomes:
        if o.fault in ("flipped", "re-signed", "bomb") or o.kind == "manifest" or o.result == "identical":
            continue  # a flipped byte is tested by verify; the hostile faults by the test below
        if o.kind in ("labels chunk", "activations zarr.json", "root zarr.json"):  # every command reads these
            assert o.result == "named", (o.kind, o.fault, o.command)
        if o.kind == "activation shard" and o.command == "transfer":  # reads every shard
            assert o.result == "named", (o.kind, o.fault, o.command)
        if o.kind == "activation shard" and o.command == "info":  # sizes only: a cut file, not a foreign one
            assert o.result == "named" or o.fault in ("foreign", "symlinked", "swapped"), (o.fault, o.command)


def test_verify_names_every_fault(outcomes):
    """Every fault but a flipped byte in the root zarr.json, which is rewritten by every commit (so
    not checksummed) and mostly holds the consolidated copy of the arrays' metadata that neurosel
    never reads: a flip there is named only when it breaks the JSON or changes what is read."""
    missed = [
        (o.kind, o.fault, o.result)
        for o in outcomes
        if o.command == "verify"
        and o.result not in ("named", "identical")
        and (o.kind, o.fault) != ("root zarr.json", "flipped")
    ]
    assert not missed
    swaps = 1  # the activation shard has a sibling of the same size; other kinds have none
    hostile = 2 + 1  # re-signed: the shard and the labels chunk; a bomb: the (zstd) labels chunk
    assert len(outcomes) == (9 * 6 + swaps + hostile + 4) * 5


def test_a_hostile_store_that_re_signs_its_damage_is_still_named(outcomes):
    """A manifest that agrees with the damage (a flipped byte, a 32 KB chunk that decodes to 1 GiB)
    cannot vouch for it: the chunks' own CRC32C and the bounded decoder name it in every command
    that reads the file."""
    hostile = [o for o in outcomes if o.fault in ("re-signed", "bomb")]
    assert {(o.kind, o.fault) for o in hostile} == {
        ("activation shard", "re-signed"),
        ("labels chunk", "re-signed"),
        ("labels chunk", "bomb"),
    }
    for o in hostile:
        reads = o.kind == "labels chunk" or o.command in ("transfer", "verify")
        if reads:
            assert o.result == "named", (o.kind, o.fault, o.command, o.detail)


def test_the_manifest_cannot_be_switched_off(outcomes):
    """Removing the manifest, nulling an entry over a deleted shard, a key out of the store, an
    array nobody wrote: every command that opens the store names it (stats and select may answer
    from saved results the manifest still vouches for)."""
    for o in outcomes:
        if o.kind == "manifest" and o.command in ("info", "transfer", "verify"):
            assert o.result == "named", (o.fault, o.command, o.detail)
