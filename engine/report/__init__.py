"""The report: an experiment's results JSON rendered as Markdown tables and matplotlib plots."""

from __future__ import annotations

from neurosel.report._report import PLOT_FILES, load_results, write_report

__all__ = ["PLOT_FILES", "load_results", "write_report"]
