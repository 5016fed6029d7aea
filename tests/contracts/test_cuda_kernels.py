"""The numba.cuda path of neuron_stats equals the CPU path.

Runs where numba.cuda works: on a real GPU, or in CI under the CUDA simulator
(`NUMBA_ENABLE_CUDASIM=1 pytest tests/contracts/test_cuda_kernels.py`, which `make test` does), on
small inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import cuda

import neurosel
from tests.stats_reference import RTOL16

pytestmark = pytest.mark.skipif(not cuda.is_available(), reason="numba.cuda has no GPU and no simulator")

ROWS, LAYERS, HIDDEN = 70, 2, 5


def pair(tmp_path, dtype, labels, name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, LAYERS, HIDDEN)) * 3 + 10
    x[:, 0, 0] = np.round(x[:, 0, 0])  # ties
    x[:, 1, 1] = 2.5  # constant
    x[5, 1, 2] = np.nan
    store = neurosel.store_from_array(tmp_path / name, x, labels=labels, dtype=dtype, chunk_rows=8)
    by = None if labels is None else "label"
    kwargs = {"by": by, "progress": False, "save": False, "memory_budget": 8 * LAYERS * HIDDEN * 2 * 4}
    return neurosel.neuron_stats(store, device="cpu", **kwargs), neurosel.neuron_stats(
        store, device="cuda", **kwargs
    )


def assert_same(cpu, gpu, dtype):
    """Equal to rounding; for 16-bit stores within RTOL16 (the CPU sums their row groups in float32,
    the GPU in float64), the AUROC, counts and min/max still exactly."""
    arrays = cpu.arrays()
    assert set(arrays) == set(gpu.arrays())
    for name, values in arrays.items():
        moment = dtype != "float32" and name not in (
            "count",
            "min",
            "max",
            "nonfinite",
            "class_count",
            "auroc",
        )
        rtol = RTOL16 if moment else 1e-12
        np.testing.assert_allclose(getattr(gpu, name), values, rtol=rtol, atol=1e-12, err_msg=name)
    assert gpu.meta["device"] == "cuda"


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16"])
def test_two_classes(tmp_path, dtype):
    labels = np.random.default_rng(1).integers(0, 2, ROWS)
    assert_same(*pair(tmp_path, dtype, labels, f"{dtype}.zarr"), dtype)


def test_three_classes_and_unlabelled(tmp_path):
    labels = np.random.default_rng(2).integers(0, 3, ROWS)
    assert_same(*pair(tmp_path, "float16", labels, "k3.zarr"), "float16")
    assert_same(*pair(tmp_path, "float16", None, "none.zarr"), "float16")


def test_numeric_labels(tmp_path):
    labels = np.random.default_rng(3).uniform(0, 5, ROWS)
    cpu, gpu = pair(tmp_path, "float32", labels, "num.zarr")
    assert_same(cpu, gpu, "float32")
    assert gpu.pearson is not None
