"""The shape of every pass over a store: a chunk function, an associative merge, a finish.

`chunk(block)` turns one `Block` of rows into a partial result and depends on nothing else; `merge`
combines the partials of disjoint rows in any order or tree; `finish` turns the merged partial into
the result. `chunk(block, out=p)` is the same as `merge(p, chunk(block))` but may update `p` in
place instead of allocating a second partial (the statistics pass writes its blocks' AUROC keys into
one buffer of all rows on the CPU, and adds into key histograms of up to 2 GiB on a GPU):
the single-process runner folds a stream of blocks that way, a cluster runs `chunk` per row range
and merges the partials in a tree (`tree_merge`). The statistics pass and every solver product
follow this protocol; tests check each merge against a single pass in shuffled tree orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from neurosel.store._stream import Block

P = TypeVar("P")
R = TypeVar("R", covariant=True)


class ChunkPass(Protocol[P, R]):
    """A pass over row blocks: partials of type P, a result of type R."""

    def identity(self) -> P:
        """The partial of no rows (the merge's neutral element)."""
        ...

    def chunk(self, block: Block, out: P | None = None) -> P:
        """The partial of `block`'s rows; with `out`, `merge(out, partial)`, possibly in place."""
        ...

    def merge(self, a: P, b: P) -> P:
        """The partial of the union of two disjoint sets of rows (may reuse `a`'s buffers)."""
        ...

    def finish(self, partial: P) -> R:
        """The result from the partial of all rows."""
        ...


def run_pass(p: ChunkPass[P, R], blocks: Iterable[Block], on_block=None) -> R:
    """Fold a stream of blocks through `p` in one process and finish; `on_block(block)` after each
    (progress bars)."""
    total = p.identity()
    for block in blocks:
        total = p.chunk(block, out=total)
        if on_block is not None:
            on_block(block)
    return p.finish(total)


def tree_merge(p: ChunkPass[P, R], partials: Sequence[P], split_every: int = 2) -> P:
    """Merge partials pairwise (or `split_every` at a time) in a balanced tree, as a cluster would."""
    return tree_reduce(partials, p.merge, split_every) if partials else p.identity()


def tree_reduce(items: Sequence[Any], combine: Callable[[Any, Any], Any], split_every: int = 2) -> Any:
    """Combine a non-empty sequence in a balanced tree, `split_every` at a time: the merge order of
    `tree_merge`, also for combines that submit tasks and return futures (neurosel.scaleout)."""
    level = list(items)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), split_every):
            group = level[i : i + split_every]
            merged = group[0]
            for other in group[1:]:
                merged = combine(merged, other)
            nxt.append(merged)
        level = nxt
    return level[0]
