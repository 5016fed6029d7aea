"""The results schema (docs/report.md): reading a results JSON and checking it, failing early with
an `InputError` that names the offending key."""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from neurosel.errors import InputError
from neurosel.report._cells import NORMALISATIONS, _is_a, _is_number, _is_score

CONTROL_NUMBERS = ("spearman_closeness", "p_value_closeness", "partial_spearman", "p_value_partial")
PATH_COUNTS = ("k", "entered", "filled")  # integers of a path record (neurosel.crossdomain.PathRecord)
_TOP_LEVEL = {  # key: (type, its items' type or None, what to say)
    "experiment": (str, None, "a string"),
    "model": (str, None, "a string"),
    "layers": (list, numbers.Integral, "a list of layer ids"),
    "hidden": (numbers.Integral, None, "an integer"),
    "k": (numbers.Integral, None, "an integer"),
    "ks": (list, numbers.Integral, "a list of integers"),
    "metric": (str, None, "a string"),
    "datasets": (list, str, "a list of dataset names"),
    "fingerprints": (dict, list, "an object: dataset → percentages per layer"),
    "selected_per_layer": (dict, list, "an object: dataset → counts per layer"),
    "similarity": (dict, None, 'an object with "measure" and "matrix"'),
    "paths": (dict, dict, "an object: dataset → its sparse path's record"),
    "transfers": (list, dict, "a list of transfer objects"),
    "correlation": (dict, None, 'an object with "spearman", "p_value" and "pairs"'),
    "notes": (list, str, "a list of strings"),
    "baseline_descriptions": (dict, str, "an object: method → description"),
}


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and check a results JSON file; `InputError` naming the file if it is missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"results file {path}: no such file; pass a results.json written earlier") from None
    except UnicodeDecodeError:
        raise InputError(f"results file {path}: not UTF-8 text; pass a results.json") from None
    except OSError as e:
        raise InputError(f"results file {path}: cannot read it ({e.strerror})") from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"results file {path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    _check(results, f"results file {path}")
    return results


# ---------------------------------------------------------------- checking


def _check(results: Any, where: str) -> None:
    """Fail early, naming the offending key, on results that do not follow docs/report.md."""

    def fail(what: str) -> NoReturn:
        raise InputError(f"{where}: {what} (schema in docs/report.md)")

    if not isinstance(results, dict):
        fail(f"expected a JSON object, got {type(results).__name__}")
    for key, (kind, item, name) in _TOP_LEVEL.items():
        if key not in results:
            continue
        value = results[key]
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        if not isinstance(value, kind) or isinstance(value, bool) or not all(_is_a(v, item) for v in items):
            fail(f"{key!r} must be {name}")
    for key in ("fingerprints", "selected_per_layer"):
        widths = {len(values) for values in results.get(key, {}).values()}
        if "layers" in results:
            widths.add(len(results["layers"]))
        if len(widths) > 1 or not all(
            _is_number(v) for values in results.get(key, {}).values() for v in values
        ):
            fail(f"{key!r} must hold one number per layer for every dataset (lengths {sorted(widths)})")
    matrix = results.get("similarity", {}).get("matrix")
    if matrix is not None and not (
        isinstance(matrix, list)
        and all(isinstance(row, list) and len(row) == len(matrix) for row in matrix)
        and all(_is_number(v) or v is None for row in matrix for v in row)
    ):
        fail("similarity['matrix'] must be a square list of lists of numbers")
    for name, path in results.get("paths", {}).items():
        if not all(_is_a(path.get(key, 0), numbers.Integral) for key in PATH_COUNTS) or not all(
            path.get(key) is None or _is_number(path[key]) for key in ("separation_lambda", "lambda_max")
        ):
            fail(
                f"paths[{name!r}] must hold integers {', '.join(map(repr, PATH_COUNTS))} and numbers "
                "(or null) 'separation_lambda', 'lambda_max'"
            )
    for i, transfer in enumerate(results.get("transfers", [])):
        _check_transfer(transfer, f"transfers[{i}]", fail)
    corr = results.get("correlation", {})
    if not all(corr.get(key) is None or _is_number(corr[key]) for key in ("spearman", "p_value")):
        fail("correlation['spearman'] and ['p_value'] must be numbers")
    if not _is_a(corr.get("permutations", 0), numbers.Integral):
        fail("correlation['permutations'] must be an integer")
    pairs = corr.get("pairs", [])
    if not isinstance(pairs, list) or not all(
        isinstance(p, dict) and _is_number(p.get("similarity")) and _is_number(p.get("score")) for p in pairs
    ):
        fail("correlation['pairs'] must be a list of {source, target, similarity, score} with numbers")
    control = corr.get("control", {})
    if not isinstance(control, dict) or not all(
        control.get(key) is None or _is_number(control[key]) for key in CONTROL_NUMBERS
    ):
        fail(f"correlation['control'] must be an object of numbers {', '.join(map(repr, CONTROL_NUMBERS))}")


def _check_transfer(t: dict[str, Any], where: str, fail: Callable[[str], NoReturn]) -> None:
    """One transfer row: sources, target, normalisation, scores (and other metrics), by_k."""
    sources = t.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
        fail(f"{where} needs 'sources', a non-empty list of dataset names")
    if not isinstance(t.get("target"), str):
        fail(f"{where} needs 'target', a dataset name")
    if t.get("normalisation", "source") not in NORMALISATIONS:
        fail(f"{where}['normalisation'] must be one of {', '.join(NORMALISATIONS)}")
    other = t.get("other_metrics", {})
    if not isinstance(other, dict):
        fail(f"{where}['other_metrics'] must be an object: metric → scores")
    for name, scores in {
        "scores": t.get("scores"),
        **{f"other_metrics[{m!r}]": s for m, s in other.items()},
    }.items():
        if not isinstance(scores, dict) or not all(_is_score(v) for v in scores.values()):
            fail(f"{where}[{name!r}] must map methods to numbers, null, {{mean, std}} or {{score}}")
    by_k = t.get("by_k", {})
    if not isinstance(by_k, dict) or not all(
        isinstance(table, dict) and all(str(k).isdigit() and _is_score(v) for k, v in table.items())
        for table in by_k.values()
    ):
        fail(f"{where}['by_k'] must map methods to {{k as a string: score}}")
