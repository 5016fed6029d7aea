"""One Device from "auto | cpu | cuda | cuda:N", resolved once, with the CPU fallback said once."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from numba import cuda

import neurosel
from neurosel.devices import CPU, Device, resolve_device


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
