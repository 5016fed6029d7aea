"""The demo: the corpus shipped with neurosel, one store per domain, with the real MiniLM model."""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import engine

log = logging.getLogger("neurosel")


def demo_corpus() -> dict[str, tuple[list[str], list[str]]]:
    """The shipped sentiment corpus, split by domain: {domain: (texts, 'positive'/'negative')}."""
    path = files("engine") / "data" / "demo_corpus.jsonl"
    domains: dict[str, tuple[list[str], list[str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts, labels = domains.setdefault(row["domain"], ([], []))
        texts.append(row["text"])
        labels.append("positive" if row["label"] == 1 else "negative")
    return domains


def run_demo(out: Path, model: str, device: str) -> dict[str, engine.ActivationStore]:
    """Extract every demo domain into `out/<domain>.zarr`, compute its per-neuron statistics, and
    print what each store holds and its most class-distinctive neurons."""
    from engine.cli import describe, describe_stats

    out.mkdir(parents=True, exist_ok=True)
    stores = {}
    for domain, (texts, labels) in demo_corpus().items():
        log.info("extracting %s: %d texts with %s", domain, len(texts), model)
        stores[domain] = engine.extract(texts, model, out / f"{domain}.zarr", labels=labels, device=device)
        stats = engine.neuron_stats(stores[domain], device=device, progress=False)
        print(describe(stores[domain]), describe_stats(stores[domain], stats, top=5), sep="\n", end="\n\n")
    print(f"demo stores written to {out.resolve()}")
    return stores
