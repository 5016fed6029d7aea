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
    assert job.main([str(stores), "--source", "a", "--seeds", "1", "--out-dir", str(tmp_path / "out")]) == 0
    (path,) = (tmp_path / "out").glob("job_a_cpu_*.json")
    report = json.loads(path.read_text())
    run = report["engine"]
    assert run["engine"] == str(job.REPO) and "speedup" not in report
    assert {"path and statistics", "stability selection", "fits and scoring"} <= set(run["stages"])
    assert sum(run["stages"].values()) == pytest.approx(run["total"])  # "other" is the remainder
    assert (stores / "a.zarr" / "stats").exists()  # the originals keep their saved results
