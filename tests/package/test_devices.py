"""One Device from "auto | cpu | cuda | cuda:N", resolved once, with the CPU fallback said once."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from numba import cuda

import neurosel
from neurosel.devices import (
    CPU,
    PARALLEL_FLOPS,
    Device,
    blas_allowance,
    blas_threads,
    blas_threads_for,
    resolve_device,
    single_threaded_blas,
)


def test_cpu_and_auto_without_gpu():
    cpu = resolve_device("cpu")
    assert cpu.kind == "cpu" and cpu.name == "cpu" and cpu.xp is np and not cpu.is_gpu
    assert resolve_device(cpu) is cpu  # a Device passes through unchanged
    if not cuda.is_available():
        assert resolve_device("auto").name == "cpu"


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu:0", 3])
def test_unknown_device_is_input_error(spec):
    with pytest.raises(neurosel.InputError, match="device"):
        resolve_device(spec)


def test_cuda_without_a_gpu_is_input_error(monkeypatch):
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr("neurosel.devices._gpu_count", lambda: 0)
    with pytest.raises(neurosel.InputError, match=r"device 'cuda:1': no GPU visible"):
        resolve_device("cuda:1")


def test_index_is_kept(monkeypatch):
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr("neurosel.devices._gpu_count", lambda: 4)
    device = resolve_device("cuda:3")
    assert device.name == "cuda:3" and device.index == 3 and device.is_gpu


def test_auto_falls_back_per_stage_and_says_it_once(monkeypatch, caplog):
    monkeypatch.setattr("neurosel.devices._has", lambda piece, simulated: piece == "torch")
    auto = Device("cuda", 0, requested="auto")
    with caplog.at_level(logging.INFO, logger="neurosel"):
        for _ in range(3):
            assert auto.for_stage("stats") is CPU
            assert auto.for_stage("solver") is CPU
        assert auto.for_stage("extract") is auto
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "device=auto: cupy, numba not usable, so stats runs on the CPU",
        "device=auto: cupy not usable, so solver runs on the CPU",
    ]


def test_explicit_cuda_with_a_missing_piece_names_it(monkeypatch):
    monkeypatch.setattr("neurosel.devices._has", lambda piece, simulated: piece != "cupy")
    with pytest.raises(neurosel.InputError, match=r"solver needs cupy.*pip install 'neurosel\[gpu\]'"):
        Device("cuda", 0, requested="cuda").for_stage("solver")


def test_simulator_runs_gpu_paths_on_numpy(monkeypatch):
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    device = resolve_device("cuda")
    assert device.is_gpu and device.simulated and device.xp is np
    assert device.for_stage("stats") is device
    with pytest.raises(neurosel.InputError, match="extract needs torch"):
        device.for_stage("extract")
    assert resolve_device("auto").name == "cpu"  # auto never picks the simulator


# BLAS threads: one per operation's size, the user's setting an upper bound never raised


def blas_pools() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_threads_never_raise_a_users_limit():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        assert blas_allowance() == 1
        with single_threaded_blas(), blas_threads() as granted:  # the large operation inside a 1-thread block
            assert granted == 1 and set(blas_pools()) == {1}
        with blas_threads_for(1e15) as granted:
            assert granted == 1 and set(blas_pools()) == {1}
        assert set(blas_pools()) == {1}


def test_blas_threads_by_size_within_the_allowance(monkeypatch):
    import neurosel.devices

    monkeypatch.setattr(neurosel.devices, "idle_cores", lambda: 64)  # as if every core were idle
    allowed = blas_allowance()
    before = blas_pools()
    with single_threaded_blas():
        assert set(blas_pools()) == {1}
        with blas_threads_for(PARALLEL_FLOPS / 2) as small:
            assert small == 1
        with blas_threads_for(PARALLEL_FLOPS) as large:  # the outer 1-thread block does not cap it
            assert large == allowed and set(blas_pools()) == {allowed}
        assert set(blas_pools()) == {1}
    with blas_threads(10 * allowed) as granted:
        assert granted == allowed
    assert blas_pools() == before


@pytest.mark.parametrize("variable", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_blas_thread_variables_are_honoured(variable):
    """A fresh process with the variable at 1: the allowance is 1, and a large operation inside a
    real solve asks for no more."""
    import os
    import subprocess
    import sys

    script = (
        "import logging, numpy as np\n"
        "from neurosel import devices\n"
        "from neurosel.solver import ArrayDesign, Logistic, sparse_path\n"
        "devices.PARALLEL_FLOPS = 0.0\n"  # every product and factorisation asks for threads,
        "devices.idle_cores = lambda: 64\n"  # as if every core were idle
        "seen = []\n"
        "class Hook(logging.Handler):\n"
        "    def emit(self, record): seen.append(record.args[0])\n"
        "log = logging.getLogger('neurosel'); log.addHandler(Hook()); log.setLevel(logging.DEBUG)\n"
        "rng = np.random.default_rng(0); z = rng.standard_normal((200, 30))\n"
        "y = (z[:, 0] + rng.standard_normal(200) > 0).astype(float)\n"
        "sparse_path(ArrayDesign(z), y, Logistic(), n_lambdas=4)\n"
        "print(devices.blas_allowance(), max(seen))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")} | {variable: "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_idle_cores_counts_the_cores_no_one_else_runs_on():
    """Between 1 and the cores; 1 while other processes keep every core busy (real spinning ones)."""
    import os
    import subprocess
    import sys
    import time

    from neurosel.devices import idle_cores

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert 1 <= idle_cores() <= cores
    if not os.path.exists("/proc/loadavg"):
        return
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.5)
        assert max(idle_cores() for _ in range(5)) == 1
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
