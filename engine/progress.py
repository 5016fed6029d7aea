"""Progress bars on stderr, one style for every long stage.

Bars are tqdm bars that disappear when done (`leave=False`), so a finished command leaves only its
results on the terminal; `enabled=False` (the CLI's -q, or `progress=False`) shows nothing.
"""

from __future__ import annotations

import time
from typing import Any

from tqdm.auto import tqdm


def bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, **options: Any) -> tqdm:
    """A progress bar over `total` units (a context manager; `update(n)` as work is done)."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        dynamic_ncols=True,
        leave=False,
        smoothing=0.1,
        **options,
    )


class ExtractProgress:
    """A bar over examples that also reports tokens per second."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.bar = bar(total, "extract", "ex", enabled, initial=done)
        self.tokens = 0
        self.start = time.perf_counter()

    def update(self, rows: int, tokens: int) -> None:
        self.tokens += tokens
        self.bar.update(rows)
        elapsed = time.perf_counter() - self.start
        if elapsed > 0:
            self.bar.set_postfix_str(f"{self.tokens / elapsed:,.0f} tok/s", refresh=False)

    def close(self) -> None:
        self.bar.close()
