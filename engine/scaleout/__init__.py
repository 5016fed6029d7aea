"""The execution layer: chunk passes in this process or as tasks on a `dask.distributed` cluster.

`resolve_runner(client)` turns a public `client=` keyword into one `Runner`, resolved once at the
boundary and passed down like a Device: `InProcess` (client None) or `OnDask(client)`. A runner's
`reduce` folds rows of a store through a pass built by a picklable factory (`fold`, the one fold
function): in this process with read-ahead; on a cluster as shard-aligned row ranges, one task each,
every task opening the store on its worker (by path or URL), the partials merged in a tree there.
`Runner.placed(device)` is how a device reaches a worker: its `Device.worker_spec`, resolved there.

This layer sits below the stages and knows only `neurosel.store`. Each stage keeps its own cluster
code: `neurosel.stats._cluster` (the statistics pass factory), `neurosel.solver._cluster` (the
design whose products are map-reduces), `neurosel.extraction._cluster` (one task per window).
"""

from __future__ import annotations

from neurosel.scaleout._runner import (
    IN_PROCESS,
    TASKS_PER_WORKER,
    InProcess,
    OnDask,
    Runner,
    fold,
    resolve_runner,
    row_ranges,
)

__all__ = [
    "IN_PROCESS",
    "TASKS_PER_WORKER",
    "InProcess",
    "OnDask",
    "Runner",
    "fold",
    "resolve_runner",
    "row_ranges",
]
