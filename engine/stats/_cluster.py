"""The statistics pass as a runner builds it: in this process or on each Dask worker."""

from __future__ import annotations

from neurosel.devices import Device, resolve_device
from neurosel.stats._chunks import CpuStatsPass, GpuStatsPass, StatsPlan, make_pass


class StatsFactory:
    """Builds the statistics pass for `plan` on `device`: the live Device in this process, or on a
    worker the device's `worker_spec` ("cpu" or "cuda"), which the worker resolves for itself
    (`Runner.placed`). It pickles: a plan of arrays and a name, no device buffers."""

    def __init__(self, plan: StatsPlan, device: str | Device) -> None:
        self.plan, self.device = plan, device

    def __call__(self) -> CpuStatsPass | GpuStatsPass:
        return make_pass(self.plan, resolve_device(self.device).for_stage("stats"))
