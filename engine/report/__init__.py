"""The report: an experiment's results JSON rendered as Markdown tables and matplotlib plots."""

from __future__ import annotations

from neurosel.report._cells import baseline_descriptions
from neurosel.report._plots import PLOT_FILES
from neurosel.report._report import write_report
from neurosel.report._schema import load_results

__all__ = ["PLOT_FILES", "baseline_descriptions", "load_results", "write_report"]
