"""Stage timings: the library marks its stages, a caller who wants their seconds records them.

    import neurosel.timing

    with neurosel.timing.record() as stages:
        neurosel.transfer(...)
    stages  # {"load": 1.2, "path and statistics": 8.4, "fits and scoring": 20.1, ...}

`record()` collects wall-clock seconds per stage name into a dict (a stage entered several times
adds up; a stage inside another counts in both). The library wraps its stages in `stage(name)`;
while nobody records, that is one context-variable lookup. Recording follows the context: stages
run on worker threads the recorder did not start are not seen, stages of the recording thread are.
This module imports nothing from neurosel (it sits at the bottom layer, beside errors and progress).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

_RECORDING: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "neurosel_timing", default=None
)


@contextlib.contextmanager
def record() -> Iterator[dict[str, float]]:
    """Collect the seconds of every stage run inside the block: {stage name: seconds}."""
    stages: dict[str, float] = {}
    token = _RECORDING.set(stages)
    try:
        yield stages
    finally:
        _RECORDING.reset(token)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark a stage of the library: its wall-clock seconds go to the active `record()`, if any."""
    stages = _RECORDING.get()
    if stages is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - started


__all__ = ["record", "stage"]
