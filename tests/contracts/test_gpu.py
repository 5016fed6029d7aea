"""The GPU paths on a real NVIDIA GPU, each against the CPU path on the same small store or model.

Every test here is marked `cuda` and skips unless a real GPU is usable: torch with CUDA for
extraction; cupy with a device and numba.cuda (not its simulator) for the statistics kernels and the
solver's GPU design. On machines without a GPU they all skip, so `make test` is unchanged; on a GPU
machine `make gpu-check` runs them (docs/gpu-check.md).

  statistics  neuron_stats(device="cuda") equals device="cpu" to 1e-9 (float16, bfloat16 and
              float32 stores; two classes, three classes, numeric labels), over several blocks
  solver      importance(device="cuda") keeps the raw activations on the GPU (cupy, products on
              cuBLAS, float32): the same first entries of the ranking and objectives within 1e-4
              relative of the CPU's in-core design
  extraction  extract(device="cuda") with bf16 autocast within 3e-2 of a float32 CPU extraction of
              the same tiny BERT, fp32 within 1e-4 (mean and cls pooling), staged through pinned
              host buffers on a copy stream
  devices     "cuda:0" resolves and runs; an index past the visible GPUs is an InputError
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch

import neurosel
from neurosel.errors import InputError
from tests.conftest import build_store, random_texts

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")

# Small launches on a big GPU make numba warn about occupancy; pytest turns warnings into errors.
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.filterwarnings("ignore:Grid size .* under-utilization"),
    pytest.mark.filterwarnings("ignore:Host array used in CUDA kernel"),
]


def _torch_gpu() -> str | None:
    """None if torch can run CUDA here, else why not."""
    if SIMULATOR:
        return "NUMBA_ENABLE_CUDASIM is set: these tests need a real GPU"
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    return None


def _numba_gpu() -> str | None:
    """None if cupy has a device and numba.cuda a real GPU here, else why not."""
    if SIMULATOR:
        return "NUMBA_ENABLE_CUDASIM is set: these tests need a real GPU"
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "cupy sees no GPU"
    except Exception as e:  # not installed, or no driver
        return f"cupy not usable ({type(e).__name__})"
    try:
        from numba import cuda

        if not cuda.is_available():
            return "numba.cuda sees no GPU"
    except Exception as e:
        return f"numba.cuda not usable ({type(e).__name__})"
    return None


TORCH_GPU = _torch_gpu()
NUMBA_GPU = _numba_gpu()
needs_torch_gpu = pytest.mark.skipif(TORCH_GPU is not None, reason=TORCH_GPU or "")
needs_numba_gpu = pytest.mark.skipif(NUMBA_GPU is not None, reason=NUMBA_GPU or "")

STATS_TOLERANCE = 1e-9
SOLVER_RTOL = 1e-4  # the GPU design accumulates whole 512 MiB blocks in float32, the CPU 8,192 rows
BF16_RTOL = 3e-2
FP32_RTOL = 1e-4


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def gpu_count() -> int:
    if TORCH_GPU is None:
        return torch.cuda.device_count()
    from numba import cuda

    return len(cuda.gpus)


def out_of_range() -> str:
    """A CUDA index past the visible GPUs: cuda:7 on machines with up to seven."""
    return f"cuda:{max(7, gpu_count())}"


# --- statistics: numba.cuda kernels on cupy arrays ------------------------------------------------

ROWS, LAYERS, HIDDEN = 3000, 3, 96  # 288 neurons; chunks of 256 rows, several blocks per pass


def stats_store(tmp_path, dtype: str, labels: np.ndarray, name: str):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((ROWS, LAYERS, HIDDEN)) * rng.uniform(0.5, 3.0, (LAYERS, HIDDEN)) + 10
    x[:, 0, 0] = np.round(x[:, 0, 0])  # ties
    x[:, 1, 1] = 2.5  # a constant neuron
    x[17, 2, 3] = np.nan  # left out and counted
    return neurosel.store_from_array(tmp_path / name, x, labels=labels, dtype=dtype, chunk_rows=256)


def stats_pair(store, device: str = "cuda"):
    by = None if store.labels is None else "label"
    kwargs = {"by": by, "progress": False, "save": False, "memory_budget": 1 << 20}
    return neurosel.neuron_stats(store, device="cpu", **kwargs), neurosel.neuron_stats(
        store, device=device, **kwargs
    )


def assert_stats_equal(cpu, gpu) -> None:
    arrays = cpu.arrays()
    assert set(arrays) == set(gpu.arrays())
    for name, values in arrays.items():
        np.testing.assert_allclose(
            getattr(gpu, name), values, rtol=STATS_TOLERANCE, atol=STATS_TOLERANCE, err_msg=name
        )
    assert cpu.meta["device"] == "cpu" and gpu.meta["device"] == "cuda"


def labels_of(kind: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    if kind == "2 classes":
        return rng.integers(0, 2, ROWS)
    if kind == "3 classes":
        return rng.integers(0, 3, ROWS)
    return rng.uniform(0.0, 5.0, ROWS)  # numeric: Pearson correlation


@needs_numba_gpu
@pytest.mark.parametrize("labels", ["2 classes", "3 classes", "numeric"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_neuron_stats_gpu_equals_cpu(tmp_path, dtype, labels):
    store = stats_store(tmp_path, dtype, labels_of(labels), "s.zarr")
    cpu, gpu = stats_pair(store)
    assert_stats_equal(cpu, gpu)
    if labels == "2 classes":
        assert gpu.auroc is not None
    if labels == "numeric":
        assert gpu.pearson is not None


@needs_numba_gpu
def test_neuron_stats_unlabelled_on_cuda_0(tmp_path):
    store = stats_store(tmp_path, "float16", None, "s.zarr")
    assert_stats_equal(*stats_pair(store, device="cuda:0"))


# --- solver: the GPU design (cupy, cuBLAS) -------------------------------------------------------

N, P_LAYERS, P_HIDDEN = 2000, 2, 32
PLANTED = [3, 40, 21]  # flat ids, strongest first: distinct weights keep the entry order clear


def planted_store(tmp_path, dtype: str, classes: int):
    """Two classes: every planted neuron moves ±weight with the class; three: planted neuron k moves up
    for class k, down otherwise (weights 1.5, 1.0, 0.6)."""
    return build_store(
        tmp_path / f"{dtype}-{classes}.zarr", n=N, layers=P_LAYERS, hidden=P_HIDDEN, seed=12,
        unit_scale=(0.5, 2.0), shift=3, classes=classes, planted=PLANTED, effect=[1.5, 1.0, 0.6],
        dtype=dtype, chunk_rows=256,
    )  # fmt: skip


@needs_numba_gpu
@pytest.mark.parametrize(("dtype", "classes"), [("float16", 2), ("float32", 2), ("bfloat16", 3)])
def test_importance_gpu_design_matches_cpu(tmp_path, dtype, classes):
    store = planted_store(tmp_path, dtype, classes)
    kwargs = {"n_lambdas": 12, "lambda_ratio": 0.05, "recompute": True, "save": False}
    cpu = neurosel.importance(store, device="cpu", **kwargs)
    gpu = neurosel.importance(store, device="cuda", **kwargs)
    assert gpu.meta["backend"] == "cuda" and gpu.meta["design"] == "gpu"
    assert cpu.meta["backend"] == "cpu" and cpu.meta["design"].startswith("in-core")
    assert gpu.meta["converged"] and cpu.meta["converged"]
    assert set(cpu.ranking[:3]) == set(PLANTED)
    np.testing.assert_array_equal(gpu.ranking[:3], cpu.ranking[:3])
    np.testing.assert_allclose(gpu.lambdas, cpu.lambdas, rtol=SOLVER_RTOL)
    np.testing.assert_allclose(gpu.objective, cpu.objective, rtol=SOLVER_RTOL)


@needs_numba_gpu
def test_gpu_design_computes_in_float64_for_a_tolerance_beyond_float32(tmp_path):
    """A tolerance below FLOAT32_TOL gets float64 products on the GPU too, and the path certifies it."""
    from neurosel.solver._store_design import FLOAT32_TOL, store_design

    store = planted_store(tmp_path, "float16", 2)
    gpu = neurosel.resolve_device("cuda")
    center, scale = np.zeros(store.hidden * len(store.layers)), np.ones(store.hidden * len(store.layers))
    assert store_design(store, center, scale, gpu, 1 << 20, tol=1e-6)[0].dtype == np.float32
    assert store_design(store, center, scale, gpu, 1 << 20, tol=FLOAT32_TOL / 1000)[0].dtype == np.float64
    kwargs = {"n_lambdas": 8, "lambda_ratio": 0.1, "recompute": True, "save": False, "tol": 1e-10}
    cpu, on_gpu = (neurosel.importance(store, device=d, **kwargs) for d in ("cpu", "cuda"))
    assert on_gpu.meta["converged"] and cpu.meta["converged"]
    np.testing.assert_allclose(on_gpu.objective, cpu.objective, rtol=1e-8)


# --- extraction: torch CUDA, bf16 autocast, pinned host buffers ----------------------------------


@pytest.fixture(scope="module")
def extract_texts() -> list[str]:
    return random_texts(150, seed=3, max_words=40)


@pytest.fixture(scope="module")
def cpu_reference(tiny_model, extract_texts, tmp_path_factory):
    """float32 CPU extractions of the tiny BERT, one per pooling."""
    out = tmp_path_factory.mktemp("cpu-reference")
    return {
        pooling: neurosel.extract(
            extract_texts,
            str(tiny_model),
            out / f"{pooling}.zarr",
            pooling=pooling,
            dtype="float32",
            precision="fp32",
            device="cpu",
            progress=False,
        ).read()
        for pooling in ("mean", "cls")
    }


@pytest.fixture
def pinned_transfers(monkeypatch):
    """Every HostTransfer extraction builds, to check its staging buffers."""
    from neurosel.extraction import HostTransfer

    made: list[HostTransfer] = []
    init = HostTransfer.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(HostTransfer, "__init__", spy)
    return made


@needs_torch_gpu
@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize(("precision", "rtol"), [("bf16", BF16_RTOL), ("fp32", FP32_RTOL)])
def test_extract_gpu_matches_cpu(
    tiny_model, extract_texts, cpu_reference, tmp_path, pinned_transfers, pooling, precision, rtol
):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    store = neurosel.extract(
        extract_texts,
        str(tiny_model),
        tmp_path / "gpu.zarr",
        pooling=pooling,
        dtype="float32",
        precision=precision,
        device="cuda",
        progress=False,
        token_budget=512,  # several batches, so the pinned slots are reused
    )
    got, want = store.read(), cpu_reference[pooling]
    assert store.meta["precision"] == precision and store.complete
    assert got.shape == want.shape and np.isfinite(got).all()
    error = relative_error(got, want)
    assert error <= rtol, f"{precision} {pooling}: relative error {error:.2e} > {rtol:g}"
    if precision == "fp32":
        assert np.abs(got - want).max() <= rtol * np.abs(want).max()
    else:
        assert error > 0, "bf16 autocast had no effect: identical to float32"
    assert pinned_transfers and all(t.cuda for t in pinned_transfers)
    buffers = [b for t in pinned_transfers for b in t.buffers]
    assert buffers and all(b.is_pinned() for b in buffers)


@needs_torch_gpu
def test_extract_on_cuda_0_default_precision_is_bf16(tiny_model, extract_texts, cpu_reference, tmp_path):
    store = neurosel.extract(
        extract_texts, str(tiny_model), tmp_path / "s.zarr", dtype="float32", device="cuda:0", progress=False
    )
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert store.meta["precision"] == expected
    assert relative_error(store.read(), cpu_reference["mean"]) <= BF16_RTOL


# --- devices ----------------------------------------------------------------------------------


@pytest.mark.skipif(TORCH_GPU is not None and NUMBA_GPU is not None, reason=TORCH_GPU or "")
def test_cuda_0_resolves_and_out_of_range_index_is_input_error(tiny_model, tmp_path):
    device = neurosel.resolve_device("cuda:0")
    assert device.name == "cuda:0" and device.is_gpu and not device.simulated
    spec = out_of_range()
    with pytest.raises(InputError, match=spec):
        neurosel.resolve_device(spec)
    if TORCH_GPU is None:
        with pytest.raises(InputError, match=spec):
            neurosel.extract(["a text"], str(tiny_model), tmp_path / "x.zarr", device=spec, progress=False)
    if NUMBA_GPU is None:
        store = neurosel.store_from_array(tmp_path / "s.zarr", np.ones((8, 1, 4)), labels=[0, 1] * 4)
        with pytest.raises(InputError, match=spec):
            neurosel.neuron_stats(store, device=spec, progress=False, save=False)
