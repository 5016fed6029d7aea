"""Experiments: the shared datasets' readers, the runner that takes domains through the whole
pipeline (extract, transfer, multi-source, fingerprints, report), and the shipped demo."""

from __future__ import annotations

from neurosel.experiments._demo import DEMO_OPTIONS, demo_corpus, run_demo
from neurosel.experiments._readers import (
    EXPERIMENTS,
    Domain,
    read_amazon,
    read_cr,
    read_domain,
    read_mr,
    read_sick,
    read_sst2,
    read_stsb,
    subsample,
)
from neurosel.experiments._runner import Options, pooled_correlation, run_experiment, run_pipeline, summary

__all__ = [
    "DEMO_OPTIONS",
    "EXPERIMENTS",
    "Domain",
    "Options",
    "demo_corpus",
    "pooled_correlation",
    "read_amazon",
    "read_cr",
    "read_domain",
    "read_mr",
    "read_sick",
    "read_sst2",
    "read_stsb",
    "run_demo",
    "run_experiment",
    "run_pipeline",
    "subsample",
    "summary",
]
