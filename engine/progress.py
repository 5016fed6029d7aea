"""Progress bars on stderr: examples/s from tqdm, tokens/s alongside."""

from __future__ import annotations

import time

from tqdm.auto import tqdm


class ExtractProgress:
    """A bar over examples that also reports tokens per second."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=total,
            initial=done,
            unit="ex",
            disable=not enabled,
            smoothing=0.1,
            desc="extract",
            dynamic_ncols=True,
        )
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
