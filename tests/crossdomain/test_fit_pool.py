"""The classifier fits shared with worker processes (engine/crossdomain/_fit_pool.py): the same
models bit for bit as fits one after another in this process, warnings and errors raised here, a
transfer's rows unchanged whether its fits went to the workers or not, and a user's unguarded script
run once, not again in each worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

import neurosel
from neurosel.crossdomain import _fit_pool
from neurosel.crossdomain._classifier import Fitted, fit
from neurosel.crossdomain._fit_pool import FitJob
from tests.conftest import build_store

pytestmark = pytest.mark.skipif(_fit_pool.worker_count() == 0, reason="one core: no worker processes")


@pytest.fixture
def pool(monkeypatch):
    """The pool started for any size of fits, and ready."""
    monkeypatch.setattr(_fit_pool, "MIN_VALUES", 0)
    _fit_pool.start(1)
    assert _fit_pool._ready.wait(120), "the worker processes did not start"
    return _fit_pool


def _columns(z: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return z[:, cols]


def _max_iter_one(z: np.ndarray, y: np.ndarray, kind: str) -> Fitted:
    """A fit that stops early: scikit-learn warns that lbfgs did not converge."""
    return Fitted(LogisticRegression(max_iter=1).fit(z, y), kind, float("nan"))


def jobs(rng: np.random.Generator) -> dict:
    n, p = 300, 40
    z = rng.standard_normal((n, p))
    y = (z[:, :3].sum(1) + rng.standard_normal(n) > 0).astype(int)
    out = {}
    for i, k in enumerate((3, 10, 25, 40)):
        cols = np.sort(rng.choice(p, k, replace=False))
        out["k", i] = FitJob(partial(fit, seed=i), partial(_columns, z, cols), y, "class", n * k)
    y3 = np.digitize(z[:, 0] + 0.5 * z[:, 1], [-0.5, 0.5])
    out["multi"] = FitJob(partial(fit, seed=0), partial(_columns, z, np.arange(p)), y3, "class", n * p)
    return out


def test_workers_give_the_models_of_fits_here_bit_for_bit(pool):
    planned = jobs(np.random.default_rng(0))
    counted = []
    shared = pool.run(planned, lambda: counted.append(1))
    here = pool._here(planned, lambda: None)
    assert list(shared) == list(planned) and len(counted) == len(planned)
    for key, fitted in here.items():
        other = shared[key]
        np.testing.assert_array_equal(other.coef, fitted.coef, err_msg=str(key))
        np.testing.assert_array_equal(other.model.intercept_, fitted.model.intercept_, err_msg=str(key))
        assert other.cv_score == fitted.cv_score and other.model.C_ == fitted.model.C_


def test_a_warning_in_a_worker_is_raised_here(pool):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((200, 30))
    y = (z[:, 0] > 0).astype(int)
    planned = {
        i: FitJob(_max_iter_one, partial(_columns, z, np.arange(30)), y, "class", 6000) for i in range(4)
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool.run(planned, lambda: None)
    assert sum(issubclass(w.category, ConvergenceWarning) for w in caught) == 4


def test_a_transfer_gives_the_same_rows_with_and_without_workers(tmp_path: Path, monkeypatch):
    def store(name: str, seed: int) -> str:
        return build_store(
            tmp_path / name, n=240, layers=2, hidden=12, seed=seed, planted=[3, 15, 20],
            effect=[1.0, 0.8, 0.6], labels_first=True,
        ).path  # fmt: skip

    source, target = store("s.zarr", 1), store("t.zarr", 2)
    options = {"k": 3, "ks": [3, 10], "seeds": 2, "importance_options": {"recompute": True}}
    monkeypatch.setattr(_fit_pool, "_workers", [])  # fits here only
    alone = neurosel.transfer(source, target, **options)
    monkeypatch.undo()
    monkeypatch.setattr(_fit_pool, "MIN_VALUES", 0)
    _fit_pool.start(1)
    assert _fit_pool._ready.wait(120)
    shared = neurosel.transfer(source, target, **options)
    assert shared.rows == alone.rows


def _fails(z: np.ndarray, y: np.ndarray, kind: str) -> Fitted:
    raise ValueError("a fit that fails")


def test_a_fit_that_fails_in_a_worker_raises_its_error_here(pool):
    z = np.zeros((10, 2))
    planned = {
        i: FitJob(_fails, partial(_columns, z, np.arange(2)), np.zeros(10), "class", 20) for i in range(3)
    }
    with pytest.raises(ValueError, match="a fit that fails"):
        pool.run(planned, lambda: None)
    assert pool._workers and pool._ready.is_set()  # the workers are still there for the next fits


def test_an_unguarded_script_runs_once(tmp_path):
    """No `if __name__ == "__main__"` in the user's script: the workers must not run it again (a
    multiprocessing worker would import it)."""
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            from functools import partial
            import numpy as np
            from neurosel.crossdomain import _fit_pool
            from neurosel.crossdomain._classifier import fit
            print("script body ran", flush=True)
            _fit_pool.MIN_VALUES = 0
            _fit_pool.start(1)
            assert _fit_pool._ready.wait(120)
            z = np.random.default_rng(0).standard_normal((100, 5))
            y = (z[:, 0] > 0).astype(int)
            jobs = {i: _fit_pool.FitJob(partial(fit, seed=0), partial(np.asarray, z), y, "class", 500)
                    for i in range(4)}
            print(len(_fit_pool.run(jobs, lambda: None)), "fits")
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script body ran") == 1 and "4 fits" in done.stdout


def test_a_user_who_allows_one_thread_gets_no_workers():
    """OPENBLAS_NUM_THREADS=1 (or a threadpoolctl limit of 1) keeps the fits in this process."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        assert _fit_pool.worker_count() == 0
    assert _fit_pool.worker_count() >= 1
