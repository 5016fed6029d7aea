"""Cell and number formatting for the report, and the selections of the results that the Markdown
and the plots share: which transfers, normalisations, methods and datasets a section shows."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SCORE_DIGITS = 3
PERCENT_DIGITS = 1
MISSING = "–"
NORMALISATIONS = {
    "source": "the source's mean and standard deviation",
    "target": "the target's own unlabelled mean and standard deviation",
}


@dataclass(frozen=True)
class Method:
    """How the report names a method (the selection or a baseline): its column `label` in the
    transfer tables, its `short` label in the pair-by-pair table (None: not a row there), and the
    one-sentence `description` the Methods section gives when the results give none."""

    label: str
    short: str | None
    description: str


# The one table of the methods' wordings, in the tables' column order; every use derives from it.
METHODS = {
    "selected": Method(
        "selected k", None,
        "neurosel: L2 logistic classifier (C by 3-fold CV on the source) on the source's top-k "
        "neurons by the ranking rule (default, for classes: the mean rank of stability selection over 16 "
        "half-subsamples of the sparse path and of the Fisher score; for scores: entry into an elastic-net "
        "path, l1_ratio 0.1); multi-source: mean scenario rank, k chosen on the sources.",
    ),
    "selected_cv": Method(
        "selected, k by CV", None,
        "single source: the selected neurons at the k of ks whose classifier scores best in "
        "3-fold cross-validation on the source (k chosen on the source alone; meta k_cv).",
    ),
    "all": Method("all neurons", "all neurons", "the same classifier on every neuron of every layer."),
    "random": Method(
        "random k ± sd", "random",
        "the same classifier on k random neurons; mean ± standard deviation over seeds.",
    ),
    "stats_topk": Method(
        "stats top-k", "stats top-k",
        "the same classifier on the top k neurons by Fisher score (|Pearson r| for scores).",
    ),
    "best_layer": Method(
        "best layer", "best layer",
        "the same classifier on the single layer with the best source CV score (its id).",
    ),
    "last_cls": Method("last CLS", "last CLS", "the same classifier on the last layer's CLS vector."),
    "sklearn": Method(
        "sklearn", "sklearn",
        "scikit-learn recipe: liblinear L1 path (20 Cs) for the ranking, LogisticRegression() "
        "with default C on the top k, source standardisation.",
    ),
}  # fmt: skip


def baseline_descriptions() -> dict[str, str]:
    """The one sentence describing each method, by key (what the experiment runner writes into
    results.json as `baseline_descriptions`, and what the report says where results give none)."""
    return {m: method.description for m, method in METHODS.items()}


METHOD_ORDER = tuple(METHODS)
METHOD_LABELS = {m: method.label for m, method in METHODS.items()}


# ---------------------------------------------------------------- kinds of values


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


def _p_text(p: float | None) -> str:
    return MISSING if p is None else f"{p:.2g}"
