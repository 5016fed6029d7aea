"""Per-neuron statistics in one streaming pass: chunk functions (CPU and GPU), the moment algebra,
and the finish that turns merged moments into t, F, Fisher, AUROC, Pearson, ...

`neuron_stats` runs the pass over a store and keeps the result in the store; `StatsPlan`,
`make_pass` and `Moments` are the pieces a scheduler (or a test) composes itself.
"""

from __future__ import annotations

from neurosel.stats._api import NeuronStats, finish, neuron_stats
from neurosel.stats._chunks import CpuStatsPass, GpuStatsPass, StatsPlan, make_pass
from neurosel.stats._moments import CoMoments, Moments

__all__ = [
    "CoMoments",
    "CpuStatsPass",
    "GpuStatsPass",
    "Moments",
    "NeuronStats",
    "StatsPlan",
    "finish",
    "make_pass",
    "neuron_stats",
]
