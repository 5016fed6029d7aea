"""An experiment's results as a Markdown report with PNG plots (schema and contents: docs/report.md).

Every number in the report is formatted from the results dictionary; rendering the same results
twice gives byte-identical files. The parts: the schema (`_schema`), cells and numbers (`_cells`),
the Markdown sections (`_markdown`) and the plots (`_plots`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neurosel.errors import InputError
from neurosel.report._markdown import render_markdown
from neurosel.report._plots import write_plots
from neurosel.report._schema import _check


def write_report(results: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.md, results.json (the input) and the plots into `out_dir`; return report.md's path."""
    _check(results, "results")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"report folder {out}: is a file, not a folder; pass a folder path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, PermissionError) as e:
        raise InputError(
            f"report folder {out}: cannot be made ({e.strerror}); pass a folder path you can write to"
        ) from None
    text = json.dumps(results, indent=2, ensure_ascii=False, default=_plain) + "\n"
    (out / "results.json").write_text(text, encoding="utf-8")
    plots = write_plots(results, out)
    report = out / "report.md"
    report.write_text(render_markdown(results, plots), encoding="utf-8")
    return report


def _plain(value: Any) -> Any:
    """numpy scalars (as experiment code often produces) as the Python numbers JSON knows."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
