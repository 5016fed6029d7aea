"""Scale-out on Dask: the same chunk passes, run as tasks on a `dask.distributed` cluster.

A pass over a store is split into row ranges aligned to the store's shards; each task opens the
store on its worker (by path or URL: workers read it straight from the file system), folds its
range through the pass (`chunk(block, out=...)`) and returns the partial; partials are merged in a
tree on the workers (`merge`), and only the merged partial comes back to finish. Statistics use it
directly (`neuron_stats(..., client=)`); the path solver's three products run through
`DistributedDesign`, while its outer loop stays on the client (`importance(..., client=)`).
Without a client nothing changes.
"""

from __future__ import annotations

from engine.scaleout._passes import DistributedDesign, StatsFactory, map_reduce, row_ranges

__all__ = ["DistributedDesign", "StatsFactory", "map_reduce", "row_ranges"]
