"""bench job: one transfer job timed by stage in a fresh process, on fresh copies of the stores."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurosel
from neurosel.bench import job

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it


def test_bench_job_times_every_stage_on_fresh_copies(tmp_path):
    stores = tmp_path / "stores"
    rng = np.random.default_rng(0)
    for shift, name in enumerate(("a", "b")):
        x = rng.standard_normal((60, 3, 128)) + shift
        y = rng.integers(0, 2, 60)
        x[:, 0, :4] += (2 * y - 1)[:, None]
        neurosel.store_from_array(stores / f"{name}.zarr", x, labels=y, dtype="float16")
    neurosel.neuron_stats(neurosel.open_store(stores / "a.zarr"), progress=False, device="cpu")  # saved
    argv = [str(stores), "--source", "a", "--seeds", "1", "--cached", "--out-dir", str(tmp_path / "out")]
    assert job.main(argv) == 0
    (path,) = (tmp_path / "out").glob("job_a_cpu_*.json")
    report = json.loads(path.read_text())
    run = report["engine"]
    assert run["engine"] == str(job.REPO) and "speedup" not in report
    assert {"path and statistics", "stability selection", "fits and scoring"} <= set(run["stages"])
    solved = {"sparse path solved", "stability halves solved", "classifiers solved"}  # inside the above
    assert solved == {s for s in run["stages"] if s.endswith(job.NESTED)}
    outer = sum(v for s, v in run["stages"].items() if s not in solved)
    assert outer == pytest.approx(run["total"])  # "other" is the remainder
    assert run["cpu"] > 0 and report["parameters"]["cached"]
    again = run["cached"]  # the same copies again: every path, stability half and classifier read back
    assert not solved & set(again["stages"]) and "fits and scoring" in again["stages"]
    assert sum(again["stages"].values()) == pytest.approx(again["total"])
    assert (stores / "a.zarr" / "stats").exists()  # the originals keep their saved results
