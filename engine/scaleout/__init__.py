"""Scale-out on Dask: the same chunk passes, run as tasks on a `dask.distributed` cluster.

A pass over a store is split into row ranges aligned to the store's shards; each task opens the
store on its worker (by path or URL: workers read it straight from the file system), folds its
range through the pass (`chunk(block, out=...)`) and returns the partial; partials are merged in a
tree on the workers (`merge`), and only the merged partial comes back to finish. Statistics use it
directly (`neuron_stats(..., client=)`); the path solver's three products run through
`DistributedDesign`, while its outer loop stays on the client (`importance(..., client=)`).
Extraction runs one task per window of rows (`extract_on_cluster`): workers load the model once and
write their own shards; the client commits the windows in row order (`extract(..., client=)`).
Without a client nothing changes.
"""

from __future__ import annotations

from neurosel.scaleout._passes import DistributedDesign, StatsFactory, map_reduce, row_ranges

__all__ = ["DistributedDesign", "StatsFactory", "extract_on_cluster", "map_reduce", "row_ranges"]


def __getattr__(name: str):  # extraction on a cluster imports torch: only when asked for
    if name == "extract_on_cluster":
        from neurosel.scaleout._extract import extract_on_cluster

        return extract_on_cluster
    raise AttributeError(name)
