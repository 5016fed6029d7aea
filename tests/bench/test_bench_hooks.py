"""The hooks the benchmarks use instead of patching internals: neurosel.timing's stages and
neurosel.importance's `solver` (a baseline commit's path solver loaded beside today's)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import neurosel
import neurosel.timing
from neurosel.bench.baseline import REPO, load_baseline, rewrite_imports


def test_stages_add_up_only_while_recorded():
    with neurosel.timing.stage("unseen"):
        pass
    with neurosel.timing.record() as stages:
        for _ in range(2):
            with neurosel.timing.stage("a"):
                time.sleep(0.01)
    assert set(stages) == {"a"} and stages["a"] >= 0.02
    with neurosel.timing.stage("a"):
        pass  # nobody records: nothing changes
    assert set(stages) == {"a"}


def test_transfer_marks_its_stages(tmp_path):
    rng = np.random.default_rng(0)
    stores = []
    for shift, name in enumerate(("a", "b")):
        x = rng.standard_normal((60, 2, 32)) + shift
        y = rng.integers(0, 2, 60)
        x[:, 0, :4] += (2 * y - 1)[:, None]
        stores.append(neurosel.store_from_array(tmp_path / f"{name}.zarr", x, labels=y, dtype="float32"))
    with neurosel.timing.record() as stages:
        neurosel.transfer([stores[0]], [stores[1]], k=10, ks=(10,), seeds=1, device="cpu")
    assert {
        "load",
        "path and statistics",
        "fisher ranking",
        "stability selection",
        "fits and scoring",
    } <= set(stages)


def test_rewrite_imports_binds_the_old_kernels_and_engine_modules():
    old = "from kernels.cd import a, b\nfrom engine.errors import InputError\n    import engine.solver._x\n"
    new = rewrite_imports(old, "_baseline_cd_x")
    expected = "from _baseline_cd_x import a, b\nfrom neurosel.errors import InputError\n"
    assert new == expected + "    import neurosel.solver._x\n"
    assert rewrite_imports("from neurosel.kernels import cd\n", "m") == "import m as cd\n"
    assert rewrite_imports("from neurosel.kernels.cd import f\n", "m") == "from m import f\n"


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs the git checkout"
)
def test_baseline_solver_runs_beside_todays_without_replacing_it(tmp_path):
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    kernels = sys.modules.get("neurosel.kernels.cd")
    baseline = load_baseline(head.strip(), tmp_path)
    assert not isinstance(baseline, str), baseline
    assert sys.modules.get("neurosel.kernels.cd") is kernels
    assert baseline.sparse_path is not neurosel.solver.sparse_path
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 1, 12))
    store = neurosel.store_from_array(
        tmp_path / "s.zarr", x, labels=(x[:, 0, 0] > 0).astype(int), dtype="float32"
    )
    ours = neurosel.importance(store, n_lambdas=4, device="cpu", recompute=True, save=False)
    theirs = neurosel.importance(store, n_lambdas=4, device="cpu", solver=baseline.sparse_path)
    np.testing.assert_allclose(theirs.coef, ours.coef, rtol=1e-6, atol=1e-9)
    assert not (tmp_path / "s.zarr" / "importance").exists()  # another solver's path is never saved
