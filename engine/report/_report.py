"""An experiment's results as a Markdown report with PNG plots (schema and contents: docs/report.md).

Every number in the report is formatted from the results dictionary; rendering the same results
twice gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import MaxNLocator, NullLocator
from matplotlib.transforms import Bbox

from neurosel.errors import InputError
from neurosel.report._paired import paired_difference

DPI = 150
PNG_METADATA = {"Software": None}  # no version string in the PNG, so reruns are byte-identical
SCORE_DIGITS = 3
PERCENT_DIGITS = 1
MISSING = "–"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
}
PALETTE = matplotlib.colormaps["tab10"]
NORMALISATIONS = {
    "source": "the source's mean and standard deviation",
    "target": "the target's own unlabelled mean and standard deviation",
}
LINESTYLES = {"source": "-", "target": "--"}
# where a scatter label may go, in points from its point, nearest first; and how much worse a
# label is for each pixel outside the axes (where it could cover the legend) than for one overlapping
LABEL_OFFSETS = [
    *((dx, dy) for dy in (2, -2) for dx in (5, -5)),
    (0, 6),
    (0, -6),
    *((dx, dy) for dy in (9, -9, 16, -16) for dx in (5, -5)),
    (0, 13),
    (0, -13),
]
OUTSIDE_PENALTY = 10.0
METHOD_ORDER = ("selected", "selected_cv", "all", "random", "stats_topk", "best_layer", "last_cls", "sklearn")
METHOD_LABELS = {
    "selected": "selected k",
    "selected_cv": "selected, k by CV",
    "all": "all neurons",
    "random": "random k ± sd",
    "stats_topk": "stats top-k",
    "best_layer": "best layer",
    "last_cls": "last CLS",
    "sklearn": "sklearn",
}
DEFAULT_DESCRIPTIONS = {
    "selected": "L2 logistic classifier on the source's k most important neurons (sparse path ranking).",
    "selected_cv": "the selected neurons at the k (of ks) with the best source cross-validation score.",
    "all": "the same classifier on every neuron of every layer.",
    "random": "the same classifier on k random neurons; mean ± standard deviation over seeds.",
    "stats_topk": "the same classifier on the top k neurons by a statistics-only score.",
    "best_layer": "the same classifier on the single best layer (layer in parentheses).",
    "last_cls": "the same classifier on the last layer's CLS vector.",
    "sklearn": "scikit-learn reference classifier on all neurons.",
}
CONTROL_NUMBERS = ("spearman_closeness", "p_value_closeness", "partial_spearman", "p_value_partial")
PATH_COUNTS = ("k", "entered", "filled")  # integers of a path record (neurosel.crossdomain.PathRecord)
PLOT_FILES = (
    "fingerprints.png",
    "selected_per_layer.png",
    "accuracy_vs_k.png",
    "similarity_vs_transfer.png",
)
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
    plots = set()
    with matplotlib.rc_context(STYLE):
        for name, draw in zip(PLOT_FILES, _PLOTTERS, strict=True):
            fig = draw(results)
            if fig is None:
                (out / name).unlink(missing_ok=True)  # a stale plot from an earlier render would mislead
                continue
            fig.savefig(out / name, dpi=DPI, metadata=PNG_METADATA)
            plots.add(name)
    report = out / "report.md"
    report.write_text(render_markdown(results, plots), encoding="utf-8")
    return report


def _plain(value: Any) -> Any:
    """numpy scalars (as experiment code often produces) as the Python numbers JSON knows."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


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


def _is_a(value: Any, kind: type | None) -> bool:
    return kind is None or (isinstance(value, kind) and not isinstance(value, bool))


def _is_number(value: Any) -> bool:
    return _is_a(value, numbers.Real)


def _is_score(value: Any) -> bool:
    if isinstance(value, dict):
        return _is_number(value.get("mean", value.get("score")))
    return value is None or _is_number(value)


# ---------------------------------------------------------------- numbers


def _value(score: Any) -> float | None:
    """The comparable number of a score: itself, a seed mean, or the score of a detailed result."""
    if isinstance(score, dict):
        score = score.get("mean", score.get("score"))
    if score is None or not math.isfinite(score):
        return None
    return float(score)


def _fmt(x: float | None, digits: int = SCORE_DIGITS) -> str:
    return MISSING if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _cell(score: Any) -> str:
    """A score as printed: `0.812`, `0.741 ± 0.020` (over seeds), `0.790 (L5)` (best layer)."""
    text = _fmt(_value(score))
    if isinstance(score, dict) and text != MISSING:
        if _is_number(score.get("std")):
            text += f" ± {_fmt(score['std'])}"
        if "layer" in score:
            text += f" (L{score['layer']})"
    return text


def _bold_best(scores: list[Any]) -> list[str]:
    """Cells of one row with the best number (at printed precision; ties too) in bold."""
    printed = [_fmt(_value(s)) for s in scores]
    numbers = [float(p) for p in printed if p != MISSING]
    best = max(numbers, default=None)
    return [
        f"**{_cell(s)}**" if p != MISSING and float(p) == best else _cell(s)
        for s, p in zip(scores, printed, strict=True)
    ]


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _mean_score(scores: list[Any]) -> Any:
    """Mean over pairs; seed spreads are averaged too, so random-k keeps its ± sd."""
    present = [s for s in scores if _value(s) is not None]
    mean = _mean(_value(s) for s in present)
    if present and all(isinstance(s, dict) and _is_number(s.get("std")) for s in present):
        return {"mean": mean, "std": _mean(s["std"] for s in present)}
    return mean


# ---------------------------------------------------------------- selections of the results


def _transfers(results: dict[str, Any], normalisation: str, *, single: bool) -> list[dict[str, Any]]:
    return [
        t
        for t in results.get("transfers", [])
        if t.get("normalisation", "source") == normalisation and (len(t["sources"]) == 1) == single
    ]


def _normalisations(results: dict[str, Any]) -> list[str]:
    present = {t.get("normalisation", "source") for t in results.get("transfers", [])}
    return [n for n in NORMALISATIONS if n in present]


def _methods(rows: list[dict[str, Any]], key: str = "scores") -> list[str]:
    """Method keys in the usual order, then any others in order of first appearance."""
    seen = list(dict.fromkeys(m for t in rows for m in _scores(t, key)))
    return [m for m in METHOD_ORDER if m in seen] + [m for m in seen if m not in METHOD_ORDER]


def _scores(transfer: dict[str, Any], key: str) -> dict[str, Any]:
    return transfer["scores"] if key == "scores" else transfer.get("other_metrics", {}).get(key, {})


def _datasets(results: dict[str, Any], mapping: dict[str, Any]) -> list[str]:
    listed = [d for d in results.get("datasets", []) if d in mapping]
    return listed + [d for d in mapping if d not in listed]


def _layers(results: dict[str, Any], width: int) -> list[int]:
    return list(results.get("layers", range(width)))


def _label(transfer: dict[str, Any]) -> str:
    return f"{' + '.join(transfer['sources'])} → {transfer['target']}"


def _k_text(results: dict[str, Any]) -> str:
    return f"k = {results['k']:,}" if "k" in results else "k"


# ---------------------------------------------------------------- Markdown


def render_markdown(results: dict[str, Any], plots: set[str]) -> str:
    """The report's Markdown; `plots` names the PNG files written next to it."""
    sections = [
        _title(results),
        _summary(results),
        _transfer_section(results, plots),
        _paired_section(results),
        _paths_section(results),
        _row_samples_section(results),
        _multi_source_section(results),
        _fingerprint_section(results, plots),
        _correlation_section(results, plots),
        _methods_section(results),
        _notes_section(results),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _title(results: dict[str, Any]) -> str:
    lines = [f"# Neuron-selection transfer: {results.get('experiment', 'unnamed experiment')}", ""]
    facts = []
    if "model" in results:
        facts.append(f"model `{results['model']}`")
    if "layers" in results and "hidden" in results:
        n = len(results["layers"])
        facts.append(f"{n} layers × {results['hidden']:,} units = {n * results['hidden']:,} neurons")
    if "datasets" in results:
        facts.append(f"datasets {', '.join(results['datasets'])}")
    if "metric" in results:
        facts.append(f"metric {results['metric']} on the target")
    if "k" in results:
        facts.append(f"headline {_k_text(results)}")
    if "ks" in results:
        facts.append(f"k swept over {', '.join(f'{k:,}' for k in results['ks'])}")
    text = "; ".join(facts)
    lines.append(
        text[:1].upper() + text[1:] + "." if facts else "_No description of the setup in these results._"
    )
    return "\n".join(lines)


def _summary(results: dict[str, Any]) -> str:
    norms = _normalisations(results)
    if not norms:
        return "## Summary\n\n_No transfers in these results._"
    k = _k_text(results)
    sentences = []
    for norm in norms:
        rows = _transfers(results, norm, single=True)
        if not rows:
            sentences.append(f"There are no single-source pairs with the {norm} normalisation.")
            continue
        means = {m: _mean_score([t["scores"].get(m) for t in rows]) for m in ("selected", "all", "random")}
        against = [f"{_cell(means['all'])} with all neurons"] if _value(means["all"]) is not None else []
        if _value(means["random"]) is not None:
            against.append(f"{_cell(means['random'])} with {k} random neurons (± sd over seeds)")
        sentences.append(
            f"Normalised with {NORMALISATIONS[norm]}, the {k} selected neurons score "
            f"**{_cell(means['selected'])}** on average over {len(rows)} single-source pairs"
            + (f", against {' and '.join(against)}." if against else ".")
        )
        comparison = _multi_vs_single(results, norm)
        if comparison:
            multi = _mean(c[1] for c in comparison)
            single = _mean(c[2] for c in comparison)
            wins = sum(1 for _, m, s, _ in comparison if m is not None and s is not None and m > s)
            sentences.append(
                f"Multi-source transfer scores {_fmt(multi)} on average over {len(comparison)} targets, "
                f"against {_fmt(single)} for the mean single-source transfer into the same target "
                f"(better on {wins} of {len(comparison)})."
            )
    filled = _filled(results)
    if filled:
        sentences.append(
            f"For {len(filled)} of {len(results['paths'])} datasets ({', '.join(filled)}), some of the "
            f"{k} selected neurons never entered the sparse path: they are ranked by another rule than "
            "entry into it (see *Sparse paths behind the selections*)."
        )
    sentences += [
        f"These results have no rows normalised with {NORMALISATIONS[n]}."
        for n in NORMALISATIONS
        if n not in norms
    ]
    return "## Summary\n\n" + " ".join(sentences)


def _transfer_section(results: dict[str, Any], plots: set[str]) -> str:
    norms = _normalisations(results)
    if not norms:
        return ""
    metric = results.get("metric", "score")
    extra = list(dict.fromkeys(m for t in results["transfers"] for m in t.get("other_metrics", {})))
    lines = [
        f"## Transfer scores ({metric})",
        "",
        f"One row per transfer (source → target), {metric} on the target; the best in each row in bold. "
        "The mean row averages the single-source pairs.",
    ]
    for key, name in [("scores", metric), *((m, m) for m in extra)]:
        for norm in norms:
            lines += ["", f"### {name.capitalize()}, {norm} normalisation ({NORMALISATIONS[norm]})", ""]
            lines += _transfer_table(results, norm, key)
    lines.append("")
    if "accuracy_vs_k.png" in plots:
        lines.append(f"![{metric} against k](accuracy_vs_k.png)")
    else:
        lines.append("_No scores per k (`by_k`) in these results, so no plot against k._")
    return "\n".join(lines)


def _transfer_table(results: dict[str, Any], norm: str, key: str) -> list[str]:
    single = _transfers(results, norm, single=True)
    multi = _transfers(results, norm, single=False)
    methods = _methods(single + multi, key)
    if not methods:
        return [f"_No {key} for these transfers._"]
    header = ["transfer", *(_method_label(results, m) for m in methods)]
    rows = [[_label(t), *_bold_best([_scores(t, key).get(m) for m in methods])] for t in single + multi]
    if single:
        means = [_mean_score([_scores(t, key).get(m) for t in single]) for m in methods]
        rows.append([f"*mean of {len(single)} single-source*", *_bold_best(means)])
    return _table(header, rows)


# What the selection is compared with pair by pair: per-k baselines, then those that do not depend on k.
PAIRED_BY_K = ("random", "stats_topk", "sklearn")
PAIRED_FIXED = ("all", "best_layer", "last_cls")
PAIRED_LABELS = {"random": "random", "stats_topk": "stats top-k", "sklearn": "sklearn", "all": "all neurons"}
PAIRED_LABELS |= {"best_layer": "best layer", "last_cls": "last CLS"}


def _paired_section(results: dict[str, Any]) -> str:
    """Selected against each baseline within every single-source pair, at every k: the mean
    difference, the pairs won, and the sign-flip p-value (engine/report/_paired.py)."""
    blocks = []
    for norm in _normalisations(results):
        rows = [t for t in _transfers(results, norm, single=True) if "selected" in t.get("by_k", {})]
        ks = sorted({int(k) for t in rows for k in t["by_k"]["selected"]})
        table = []
        for method in (*PAIRED_BY_K, *PAIRED_FIXED):
            cells = [_paired_cell(rows, method, k) for k in ks]
            if any(c != MISSING for c in cells):
                table.append([PAIRED_LABELS[method], *cells])
        if table:
            header = ["selected against", *(f"k = {k:,}" for k in ks)]
            blocks += ["", f"### {norm.capitalize()} normalisation ({NORMALISATIONS[norm]})", ""]
            blocks += _table(header, table)
    if not blocks:
        return ""
    intro = (
        "## Selected against the baselines, pair by pair\n\n"
        "Each cell compares the selected neurons at that k with a baseline within every single-source "
        "pair: the mean difference (selected − baseline), the pairs where selected is ahead, and the "
        "two-sided sign-flip permutation p-value of the mean difference (exact over all sign patterns up "
        "to 16 pairs, sampled beyond). "
        "For random k, the difference is also given in the seeds' mean standard deviation. All neurons, "
        "the best layer and the last CLS do not depend on k."
    )
    return intro + "\n" + "\n".join(blocks)


def _paired_cell(rows: list[dict[str, Any]], method: str, k: int) -> str:
    a, b, spread = [], [], []
    for t in rows:
        mine = _value(t["by_k"]["selected"].get(str(k)))
        other = t["by_k"].get(method, {}).get(str(k)) if method in PAIRED_BY_K else t["scores"].get(method)
        if mine is not None and _value(other) is not None:
            a.append(mine)
            b.append(_value(other))
            if isinstance(other, dict) and _is_number(other.get("std")):
                spread.append(other["std"])
    if not a:
        return MISSING
    diff = paired_difference(a, b)
    text = f"{round(diff.mean, SCORE_DIGITS) + 0.0:+.{SCORE_DIGITS}f}"  # + 0.0: no "-0.000"
    sd = _mean(spread)
    if sd:
        text += f" ({round(diff.mean / sd, 1) + 0.0:+.1f} sd)"
    return f"{text}, {diff.wins}/{diff.pairs}, p {_p_text(diff.p_value)}"


def _method_label(results: dict[str, Any], method: str) -> str:
    label = METHOD_LABELS.get(method, method)
    if "k" in results and method in ("selected", "random"):
        return label.replace(" k", f" ({_k_text(results)})", 1)
    return label


def _filled(results: dict[str, Any]) -> list[str]:
    """Datasets whose selected k took neurons that never entered their sparse path."""
    paths = results.get("paths", {})
    return [n for n in _datasets(results, paths) if paths[n].get("filled")]


def _paths_section(results: dict[str, Any]) -> str:
    lines = ["## Sparse paths behind the selections", ""]
    paths = results.get("paths")
    if not paths:
        lines.append("_No sparse-path records (neurons entered, separation, filled) in these results._")
        return "\n".join(lines)
    lines += [
        "The path that ranks each dataset's neurons for its single-source transfers and its fingerprint: "
        "how many neurons entered it (a non-zero weight at some λ), the λ at which it stopped because "
        "the examples were separated (as a fraction of λ_max; – if it did not stop for that reason), "
        "the ranking rule that selected the k, and how many of the k selected neurons never entered "
        "the path: under the `entry` and `elastic-net` rules (entry into the path; the elastic-net "
        "rule's path is the one shown) they are ranked by closeness to entering (at a larger k of the "
        "curves: k − entered); the other rules (stability selection, the Fisher score, both) rank "
        "every neuron on their own terms.",
        "",
    ]
    header = ["dataset", "entered", "separated at λ / λ_max", "ranking", "selected k", "never entered"]
    rows = [
        [
            n, _count(p.get("entered")), _ratio(p), str(p.get("ranking", "entry")), _count(p.get("k")),
            _count(p.get("filled")),
        ]
        for n, p in ((n, paths[n]) for n in _datasets(results, paths))
    ]  # fmt: skip
    lines += _table(header, rows)
    filled = _filled(results)
    if filled:
        lines += [
            "",
            f"> {', '.join(filled)}: part of the selected neurons never entered the sparse path; their "
            "rank comes from another rule than the path's entry order.",
        ]
    return "\n".join(lines)


def _count(value: Any) -> str:
    return MISSING if value is None else f"{value:,}"


def _ratio(path: dict[str, Any]) -> str:
    """λ at separation / λ_max, to 3 significant digits."""
    lam, top = path.get("separation_lambda"), path.get("lambda_max")
    return MISSING if lam is None or not top else f"{lam / top:.3g}"


def _multi_vs_single(
    results: dict[str, Any], norm: str
) -> list[tuple[dict[str, Any], float | None, float | None, dict[str, Any] | None]]:
    """Each multi-source row, its selected score, and the mean and best single-source rows into its target."""
    single = _transfers(results, norm, single=True)
    out = []
    for t in _transfers(results, norm, single=False):
        into = [
            s
            for s in single
            if s["target"] == t["target"] and _value(s["scores"].get("selected")) is not None
        ]
        best = max(into, key=lambda s: _value(s["scores"]["selected"]), default=None)
        mean = _mean(_value(s["scores"]["selected"]) for s in into)
        out.append((t, _value(t["scores"].get("selected")), mean, best))
    return out


def _row_samples_section(results: dict[str, Any]) -> str:
    """Which classifiers saw a row sample of a streamed source, and how many rows (`rows_used`)."""
    seen: dict[str, dict[str, int]] = {}
    for t in results.get("transfers", []):
        used = t.get("rows_used")
        if used:
            seen.setdefault(" + ".join(t["sources"]), used)
    if not seen:
        return ""
    lines = [
        "## Row samples",
        "",
        "Sources larger than the in-core budget were streamed: the classifiers on every neuron were "
        "fitted on a stratified row sample (docs/scale-out.md); k-neuron classifiers saw every row.",
        "",
    ]
    for sources, used in seen.items():
        parts = ", ".join(f"{method} {count:,}" for method, count in used.items() if method != "of")
        lines.append(f"- {sources}: {parts} of {used.get('of', 0):,} rows")
    return "\n".join(lines)


def _multi_source_section(results: dict[str, Any]) -> str:
    tables = []
    for norm in _normalisations(results):
        comparison = _multi_vs_single(results, norm)
        if not comparison:
            continue
        rows = [
            [
                _label(t),
                *_bold_best([multi, mean]),
                f"{_fmt(_value(best['scores']['selected']))} ({best['sources'][0]})" if best else MISSING,
            ]
            for t, multi, mean, best in comparison
        ]
        header = ["transfer", "multi-source", "mean single-source", "best single-source (from)"]
        tables += ["", f"### {norm.capitalize()} normalisation", "", *_table(header, rows)]
    if not tables:
        return "## Multi-source transfer\n\n_No multi-source rows in these results._"
    intro = (
        f"Selected-neuron {results.get('metric', 'score')} of each multi-source transfer against the "
        "single-source transfers into the same target."
    )
    return "\n".join(["## Multi-source transfer", "", intro, *tables])


def _fingerprint_section(results: dict[str, Any], plots: set[str]) -> str:
    lines = ["## Fingerprints", ""]
    fingerprints = results.get("fingerprints")
    if fingerprints:
        names = _datasets(results, fingerprints)
        layers = _layers(results, len(fingerprints[names[0]]))
        lines += [
            f"Percentage of each dataset's {_k_text(results)} selected neurons in each layer "
            "(layer 0 = embeddings).",
            "",
        ]
        header = ["dataset", *(f"L{layer}" for layer in layers)]
        rows = [[n, *(_fmt(v, PERCENT_DIGITS) for v in fingerprints[n])] for n in names]
        lines += _table(header, rows)
    else:
        lines.append("_No fingerprints in these results._")
    for name, alt in (
        ("fingerprints.png", "fingerprint heatmap"),
        ("selected_per_layer.png", "selected per layer"),
    ):
        if name in plots:
            lines += ["", f"![{alt}]({name})"]
    similarity = results.get("similarity", {})
    matrix = similarity.get("matrix")
    names = results.get("datasets", [])
    if matrix and len(names) == len(matrix):
        lines += ["", f"### Fingerprint similarity ({similarity.get('measure', 'unnamed measure')})", ""]
        lines += _table(
            ["", *names], [[n, *(_fmt(v) for v in row)] for n, row in zip(names, matrix, strict=True)]
        )
    else:
        lines += ["", "_No fingerprint similarity matrix (with dataset names) in these results._"]
    return "\n".join(lines)


def _correlation_section(results: dict[str, Any], plots: set[str]) -> str:
    lines = ["## Does fingerprint similarity predict transfer?", ""]
    corr = results.get("correlation")
    if not corr:
        lines.append("_No correlation in these results (the runner needs at least 3 pairs)._")
        return "\n".join(lines)
    pairs = corr.get("pairs", [])
    permutations = f", {corr['permutations']:,} permutations" if "permutations" in corr else ""
    lines.append(
        f"Spearman ρ = {_fmt(corr.get('spearman'), 2)} between fingerprint similarity "
        f"({corr.get('measure', 'unnamed measure')}) and transfer {results.get('metric', 'score')} "
        f"over {len(pairs)} ordered pairs (permutation p = {_p_text(corr.get('p_value'))}{permutations})."
    )
    control = corr.get("control")
    if control:
        lines += [
            "",
            "Control, from unlabelled statistics only: the distance from source to target "
            f"({control.get('distance', 'unnamed')}). Closeness (the negated distance) against transfer: "
            f"Spearman ρ = {_fmt(control.get('spearman_closeness'), 2)} "
            f"(p = {_p_text(control.get('p_value_closeness'))}). Fingerprint similarity against transfer "
            f"with the distance held fixed: partial ρ = {_fmt(control.get('partial_spearman'), 2)} "
            f"(p = {_p_text(control.get('p_value_partial'))}): what the fingerprints say about transfer "
            "beyond how far the domains' activations moved.",
        ]
    lines += [
        "",
        "> Caveat: the target's fingerprint is computed with the target's labels, so this correlation "
        "is an analysis tool, not part of the unsupervised transfer pipeline.",
    ]
    if "similarity_vs_transfer.png" in plots:
        lines += ["", "![fingerprint similarity against transfer](similarity_vs_transfer.png)"]
    return "\n".join(lines)


def _p_text(p: float | None) -> str:
    return MISSING if p is None else f"{p:.2g}"


def _methods_section(results: dict[str, Any]) -> str:
    methods = _methods(results.get("transfers", []))
    given = results.get("baseline_descriptions", {})
    described = [(m, given.get(m, DEFAULT_DESCRIPTIONS.get(m))) for m in dict.fromkeys([*methods, *given])]
    lines = [f"- **{METHOD_LABELS.get(m, m)}**: {d}" for m, d in described if d]
    return "## Methods\n\n" + "\n".join(lines) if lines else ""


def _notes_section(results: dict[str, Any]) -> str:
    notes = results.get("notes")
    return "## Notes\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, first column left-aligned, numbers right-aligned."""
    align = ["---", *("---:" for _ in header[1:])]
    return ["| " + " | ".join(r) + " |" for r in (header, align, *rows)]


# ---------------------------------------------------------------- plots


def _plot_fingerprints(results: dict[str, Any]) -> Figure | None:
    """Heatmap datasets × layers of the fingerprint percentages, annotated."""
    fingerprints = results.get("fingerprints")
    if not fingerprints:
        return None
    names = _datasets(results, fingerprints)
    data = np.array([fingerprints[n] for n in names], dtype=float)
    layers = _layers(results, data.shape[1])
    fig = Figure(figsize=(2.4 + 0.7 * len(layers), 1.4 + 0.45 * len(names)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(data, cmap="viridis", aspect="auto", vmin=0)
    for (i, j), v in np.ndenumerate(data):
        r, g, b, _ = image.cmap(image.norm(v))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        ax.text(j, i, _fmt(v, PERCENT_DIGITS), ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(layers)), [str(layer) for layer in layers])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_title(f"Fingerprints: % of the {_k_text(results)} selected neurons per layer")
    ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=ax, label="selected neurons in the layer (%)")
    return fig


def _plot_selected_per_layer(results: dict[str, Any]) -> Figure | None:
    """Grouped bars: one group per layer, one bar per dataset."""
    counts = results.get("selected_per_layer")
    if not counts:
        return None
    names = _datasets(results, counts)
    layers = _layers(results, len(counts[names[0]]))
    fig = Figure(figsize=(max(6.0, 1.8 + 0.9 * len(layers)), 3.6), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(layers))
    for i, name in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, counts[name], width, label=name, color=PALETTE(i % 10))
    ax.set_xticks(x, [str(layer) for layer in layers])
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("selected neurons (count)")
    ax.yaxis.grid(True, color="0.9")
    ax.set_axisbelow(True)
    ax.set_title(f"Where each dataset's {_k_text(results)} selected neurons lie")
    fig.legend(title="dataset", loc="outside right upper")
    return fig


def _plot_accuracy_vs_k(results: dict[str, Any]) -> Figure | None:
    """Mean over single-source pairs of each method's score against k; line style = normalisation."""
    curves = []
    for norm in _normalisations(results):
        rows = [t for t in _transfers(results, norm, single=True) if t.get("by_k")]
        if rows:
            curves.append((norm, rows))
    if not curves:
        return None
    metric = results.get("metric", "score")
    fig = Figure(figsize=(8.5, 4.4), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ticks: set[int] = set()
    legend: dict[str, Line2D] = {}  # one entry per method (colour), then one per normalisation (style)
    for norm, rows in curves:
        style = LINESTYLES[norm]
        for colour, method, marker in ((0, "selected", "o"), (1, "random", "^"), (2, "stats_topk", "s")):
            ks, means, stds = _by_k_means(rows, method)
            if not ks:
                continue
            ticks.update(ks)
            ax.plot(ks, means, style, color=PALETTE(colour), marker=marker, markersize=4)
            label = METHOD_LABELS[method].replace(" ± sd", "")
            if stds is not None:
                low, high = np.subtract(means, stds), np.add(means, stds)
                ax.fill_between(ks, low, high, color=PALETTE(colour), alpha=0.12, linewidth=0)
                label += " (band: ± 1 sd over seeds)"
            legend[label] = Line2D([], [], color=PALETTE(colour), marker=marker, markersize=4)
        all_mean = _mean(_value(t["scores"].get("all")) for t in rows)
        if all_mean is not None:
            ax.axhline(all_mean, color="0.35", linestyle=style, linewidth=1.2)
            legend["all neurons"] = Line2D([], [], color="0.35", linewidth=1.2)
    if "k" in results:
        ax.axvline(results["k"], color="0.6", linestyle=":", linewidth=1)
        legend[f"headline {_k_text(results)}"] = Line2D([], [], color="0.6", linestyle=":", linewidth=1)
    for norm, _ in curves:
        legend[f"{norm} normalisation"] = Line2D([], [], color="black", linestyle=LINESTYLES[norm])
    ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), [f"{k:,}" for k in sorted(ticks)])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("k (neurons used, log scale)")
    ax.set_ylabel(f"{metric} on the target")
    sizes = "/".join(dict.fromkeys(str(len(rows)) for _, rows in curves))
    ax.set_title(f"{metric.capitalize()} against k, mean over {sizes} single-source pairs")
    fig.legend(legend.values(), legend.keys(), loc="outside right upper")
    return fig


def _by_k_means(rows: list[dict[str, Any]], method: str) -> tuple[list[int], list[float], list[float] | None]:
    """ks and the mean over rows of a method's score per k (and of its seed sd, when it has one)."""
    tables = [t["by_k"][method] for t in rows if isinstance(t["by_k"].get(method), dict)]
    ks = sorted({int(k) for table in tables for k in table})
    means, stds = [], []
    for k in ks:
        scores = [table[str(k)] for table in tables if str(k) in table]
        means.append(_value(_mean_score(scores)))
        stds.append(_mean(s.get("std") for s in scores if isinstance(s, dict)))
    kept = [i for i, m in enumerate(means) if m is not None]
    spread = None if any(stds[i] is None for i in kept) else [stds[i] for i in kept]
    return [ks[i] for i in kept], [means[i] for i in kept], spread


def _plot_similarity_vs_transfer(results: dict[str, Any]) -> Figure | None:
    """Scatter of fingerprint similarity against transfer score over ordered pairs, labelled src→tgt."""
    corr = results.get("correlation", {})
    pairs = corr.get("pairs")
    if not pairs:
        return None
    fig = Figure(figsize=(6.8 + 0.06 * len(pairs), 4.6 + 0.04 * len(pairs)), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    targets = _datasets(results, dict.fromkeys(p.get("target", "?") for p in pairs))
    for i, target in enumerate(targets):
        mine = [p for p in pairs if p.get("target", "?") == target]
        xs, ys = [p["similarity"] for p in mine], [p["score"] for p in mine]
        ax.scatter(xs, ys, s=28, color=PALETTE(i % 10), label=target, zorder=3)
    ax.margins(x=0.15, y=0.08)  # room for the labels of the outermost points
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.set_xlabel(f"fingerprint similarity ({corr.get('measure', 'unnamed measure')})")
    ax.set_ylabel(f"transfer {results.get('metric', 'score')} on the target")
    ax.set_title(
        f"Fingerprint similarity against transfer ({len(pairs)} ordered pairs)\n"
        f"Spearman ρ = {_fmt(corr.get('spearman'), 2)}, permutation p = {_p_text(corr.get('p_value'))}"
    )
    fig.legend(title="target", loc="outside right upper")
    points = [(p["similarity"], p["score"]) for p in pairs]
    _place_labels(fig, ax, points, [f"{p.get('source', '?')}→{p.get('target', '?')}" for p in pairs])
    return fig


def _place_labels(fig: Figure, ax: Axes, points: list[tuple[float, float]], labels: list[str]) -> None:
    """Put each label at the offset around its point that overlaps points, earlier labels and the
    outside of the axes least: symmetric similarities put X→Y and Y→X at the same x."""
    fig.draw_without_rendering()  # settle the layout: display coordinates are final from here
    pad = 4 * fig.dpi / 72
    taken = [Bbox.from_extents(x - pad, y - pad, x + pad, y + pad) for x, y in ax.transData.transform(points)]
    for point, label in zip(points, labels, strict=True):
        best: tuple[float, Annotation, Bbox] | None = None
        for dx, dy in LABEL_OFFSETS:
            text = ax.annotate(
                label,
                point,
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            )
            text.set_in_layout(False)
            box = text.get_window_extent()
            outside = box.width * box.height - _overlap(box, ax.bbox)
            cost = sum(_overlap(box, other) for other in taken) + OUTSIDE_PENALTY * outside
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        taken.append(best[2])


def _overlap(a: Bbox, b: Bbox) -> float:
    both = Bbox.intersection(a, b)
    return 0.0 if both is None else both.width * both.height


_PLOTTERS = (_plot_fingerprints, _plot_selected_per_layer, _plot_accuracy_vs_k, _plot_similarity_vs_transfer)
