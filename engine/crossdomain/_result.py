"""What a transfer call returns: the scores of every method on one target (`TransferResult`), and the
one number a method's score stands for (`headline`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.crossdomain._paths import PathRecord
from neurosel.solver import layer_counts


@dataclass
class TransferResult:
    """Scores of every method on one target, one row per normalisation (docs/report.md schema)."""

    sources: list[str]
    target: str
    metric: str
    k: int
    ks: list[int]
    layers: tuple[int, ...]
    hidden: int
    selected: np.ndarray  # the k neurons used by "selected" (flat ids), in rank order
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    # what the sparse path that ranked the selection did (entered, separation λ, filled): one for a
    # single source, none for several (ranked by the scenarios, not by a path)
    paths: list[PathRecord] = field(default_factory=list)

    def fingerprint(self) -> np.ndarray:
        """Percentage of the selected neurons in each layer (the source side's fingerprint)."""
        return layer_counts(self.selected, self.hidden, len(self.layers))[1]

    def score(self, method: str = "selected", normalisation: str = "source") -> float:
        """The headline score of `method` (the mean for random) under `normalisation`."""
        row = next(r for r in self.rows if r["normalisation"] == normalisation)
        return headline(row["scores"][method])

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources, "target": self.target, "metric": self.metric, "k": self.k,
            "ks": self.ks, "layers": list(self.layers), "selected": self.selected.tolist(),
            "fingerprint": self.fingerprint().tolist(), "rows": self.rows, "meta": self.meta,
            "paths": [p.to_dict() for p in self.paths],
        }  # fmt: skip

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def headline(value: float | dict[str, Any]) -> float:
    """One number for a method's score: the mean for random-k, the score for the best layer."""
    if isinstance(value, dict):
        return float(value["mean"] if "mean" in value else value["score"])
    return float(value)
