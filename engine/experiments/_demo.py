"""The demo: the corpus shipped with neurosel, one store per domain, with the real MiniLM model."""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import numpy as np

from neurosel.devices import Device

log = logging.getLogger("neurosel")


def demo_corpus() -> dict[str, tuple[list[str], list[str]]]:
    """The shipped sentiment corpus, split by domain: {domain: (texts, 'positive'/'negative')}."""
    path = files("neurosel.experiments") / "data" / "demo_corpus.jsonl"
    domains: dict[str, tuple[list[str], list[str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts, labels = domains.setdefault(row["domain"], ([], []))
        texts.append(row["text"])
        labels.append("positive" if row["label"] == 1 else "negative")
    return domains


DEMO_OPTIONS = {"k": 30, "ks": (5, 10, 20, 30), "seeds": 3, "max_length": 128, "permutations": 2000}


def run_demo(out: Path, model: str, device: str | Device = "auto", progress: bool = True) -> Path:
    """The whole pipeline on the shipped corpus: extract each domain, statistics, selection, transfer
    between every pair and from two domains to the third, fingerprints, and the report; returns the
    report's path (the stores are in out/stores/<domain>.zarr)."""
    from neurosel.experiments._runner import Options, run_pipeline

    domains = {domain: (texts, np.array(labels)) for domain, (texts, labels) in demo_corpus().items()}
    options = Options(
        model=model, device=str(device) if isinstance(device, str) else device.name, **DEMO_OPTIONS
    )
    return run_pipeline("demo", domains, out, options, progress, device=device)
