"""The CPU moments kernel (engine/kernels/moments.py) against float64 numpy computed here: every
storage format, any number of classes, rows and features that fill no group or tile evenly,
NaN/±Inf, values whose squares overflow float32, and any thread count."""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pytest

from neurosel.kernels.moments import GROUP, MAX_TILE, cpu_tile, moments_cpu
from neurosel.store import decode, encode
from tests.stats_reference import RTOL16


def run(
    stored: np.ndarray, dtype: str, cls: np.ndarray, classes: int, block: int | None = None
) -> dict[str, np.ndarray]:
    """The kernel over stored values (bfloat16 as uint16 patterns), folded block by block from a
    partial of no rows: one block unless `block` rows are given."""
    block = block or max(stored.shape[0], 1)
    x = stored.view(np.uint16) if dtype != "float32" else stored
    features = x.shape[1]
    out = {n: np.zeros((classes, features)) for n in ("count", "mean", "m2")}
    out |= {"lo": np.full(features, np.inf), "hi": np.full(features, -np.inf), "bad": np.zeros(features)}
    acc = np.empty(0, np.float64 if dtype == "float32" else np.float32)
    for first in range(0, x.shape[0], block):  # the kernel folds each block into the totals
        moments_cpu(
            x[first : first + block], dtype == "float16", cls[first : first + block].astype(np.int32), acc,
            cpu_tile(features), out["count"], out["mean"], out["m2"], out["lo"], out["hi"], out["bad"],
        )  # fmt: skip
    return out


def reference(values: np.ndarray, cls: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """float64 numpy over the finite values, per class."""
    finite = np.isfinite(values)
    masked = np.where(finite, values, np.nan)
    ref = {
        "count": np.stack([finite[cls == k].sum(0) for k in range(classes)]).astype(np.float64),
        "bad": (~finite).sum(0).astype(np.float64),
        "lo": np.where(finite.any(0), np.nanmin(np.where(finite, values, np.inf), 0), np.inf),
        "hi": np.where(finite.any(0), np.nanmax(np.where(finite, values, -np.inf), 0), -np.inf),
    }
    with warnings.catch_warnings():  # a neuron with no finite value: numpy warns, the kernel gives 0
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(masked[cls == k], 0) for k in range(classes)]
    ref["mean"] = np.nan_to_num(np.stack(means))
    ref["m2"] = np.stack([np.nansum((masked[cls == k] - means[k]) ** 2, 0) for k in range(classes)])
    ref["std"] = np.sqrt(ref["m2"] / np.maximum(ref["count"], 1))
    return ref


def check(got: dict, ref: dict, rtol: float) -> None:
    for name in ("count", "bad", "lo", "hi"):
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    scale = np.maximum(np.maximum(np.abs(ref["mean"]), ref["std"]), 1e-30)
    assert np.all(np.abs(got["mean"] - ref["mean"]) <= rtol * scale), "mean"
    np.testing.assert_allclose(got["m2"], ref["m2"], rtol=rtol, atol=1e-300, err_msg="m2")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("classes", [1, 2, 5])
@pytest.mark.parametrize("block", [None, 13])
def test_moments_match_float64_numpy(dtype, classes, block):
    """Rows (203) that fill no four-row sweep or GROUP evenly, 37 features (no whole vector),
    offsets that cancel, outliers, ties; each class's count, mean, M2 and the min/max, in one block
    or folded from blocks of 13 rows (some without a class: an empty side of Chan's merge)."""
    rng = np.random.default_rng(classes)
    rows, features = 203, 37
    values = rng.standard_normal((rows, features)) * rng.uniform(0.01, 50, features)
    values += rng.choice([0.0, 3.0, -250.0, 1000.0], features)
    values[rng.integers(0, rows, 4), 5] = 60.0
    values[:, 9] = np.round(values[:, 9])
    stored = encode(values, dtype)
    exact = np.asarray(decode(stored, dtype), dtype=np.float64)
    cls = rng.integers(0, classes, rows)
    check(
        run(stored, dtype, cls, classes, block),
        reference(exact, cls, classes),
        RTOL16 if dtype != "float32" else 1e-12,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("block", [None, GROUP + 3])
def test_nan_and_inf_are_left_out_and_counted(dtype, block):
    """NaN and ±Inf in a few row groups (those groups are summed again in float64, value by value),
    a neuron with no finite value at all (count 0, min +inf, max -inf) and, folded from blocks,
    one whose finite values are all in the last block."""
    rng = np.random.default_rng(7)
    rows, features = 3 * GROUP + 5, 20
    values = rng.standard_normal((rows, features)) * 4 + 10
    values[[0, 70, 71], 2] = np.nan
    values[GROUP + 1, 3] = np.inf
    values[rows - 1, 3] = -np.inf
    values[:, 6] = np.nan
    values[: rows - 4, 7] = np.nan
    with np.errstate(invalid="ignore"):
        stored = encode(values, dtype)
    exact = np.asarray(decode(stored, dtype), dtype=np.float64)
    cls = rng.integers(0, 2, rows)
    got = run(stored, dtype, cls, 2, block)
    check(got, reference(exact, cls, 2), RTOL16 if dtype != "float32" else 1e-12)
    assert got["bad"][2] == 3 and got["bad"][3] == 2 and got["bad"][6] == rows
    assert got["lo"][6] == np.inf and got["hi"][6] == -np.inf and np.all(got["count"][:, 6] == 0)


def test_bfloat16_squares_beyond_float32_fall_back_to_float64():
    """bfloat16 spans float32's range: squares of 1e30 overflow float32 sums, so those groups are
    summed in float64 (exact), not reported as Inf."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal((150, 8))
    values[:, 1] = rng.choice([1e30, -1e30, 2e30], 150)
    stored = encode(values, "bfloat16")
    exact = np.asarray(decode(stored, "bfloat16"), dtype=np.float64)
    cls = np.zeros(150, np.int64)
    got = run(stored, "bfloat16", cls, 1)
    assert np.all(np.isfinite(got["m2"])) and got["bad"].sum() == 0
    check(got, reference(exact, cls, 1), RTOL16)


def test_same_numbers_on_any_thread_count_and_past_one_tile():
    """More features than MAX_TILE: the tiles split differently on 1 and 2 threads, but each
    neuron's sums do not depend on its tile, so the results are identical."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal((40, MAX_TILE + 70)).astype(np.float16)
    cls = rng.integers(0, 3, 40)
    before = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            results.append(run(values, "float16", cls, 3))
    finally:
        numba.set_num_threads(before)
    for name in results[0]:
        np.testing.assert_array_equal(results[-1][name], results[0][name], err_msg=name)
    check(results[0], reference(values.astype(np.float64), cls, 3), RTOL16)
