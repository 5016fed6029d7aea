"""The fits and scores of one transfer call (`Evaluation`): every planned model trained once on the
sources, per normalisation, then scored on every target in one pass over its row blocks, and the
rows of the result assembled from the scores.

Models on every neuron (all, best layer, last CLS) see the source rows of `sample_rows` (all in
core, a stratified sample when a source is streamed); a k-neuron model sees every source row of its
columns. The fits are shared between this process and worker processes when it pays
(engine/crossdomain/_fit_pool.py): on threads they contend for the GIL (scikit-learn's lbfgs is
Python between its BLAS calls) and were slower than one after another (docs/benchmarks.md).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from neurosel.crossdomain import _fit_pool
from neurosel.crossdomain._classifier import Fitted, Tally, fit
from neurosel.crossdomain._domains import (
    Activations,
    column_sets,
    dense_matrix,
    pooled_statistics,
    sample_rows,
    scaled,
    standardised_columns,
)
from neurosel.crossdomain._fit_pool import FitJob
from neurosel.crossdomain._saved_fits import saved_fits
from neurosel.defaults import NORMALISATIONS
from neurosel.devices import single_threaded_blas
from neurosel.progress import bar
from neurosel.solver import metric_for
from neurosel.timing import stage


class Evaluation:
    """The fits of one transfer call: trained once on the source side, applied to every target.
    `plan` (method → (k or None, columns, seed) entries) says what to fit; `headline` is the k of
    the rows' `scores`."""

    def __init__(
        self, srcs, tgts, ks, seeds, seed, cls, importance_options, device, in_core_bytes, ranking
    ) -> None:
        self.srcs, self.tgts, self.ks, self.seeds, self.seed = srcs, tgts, ks, seeds, seed
        self.ranking = ranking  # the rule that ranks a single source's neurons (RANKINGS)
        self.cls, self.importance_options, self.device = cls, importance_options, device
        self.budget = in_core_bytes
        self.progress = bool(importance_options.get("progress", False))
        self.kind = srcs[0].kind
        self.metric = metric_for(self.kind)
        self.p = srcs[0].p
        self.layers, self.hidden = srcs[0].layers, srcs[0].hidden
        self._cls_srcs = [cls[d.name] for d in srcs] if cls else []
        # the source rows the classifiers on every neuron see: all (None) unless a source is streamed
        self.rows = sample_rows(srcs, in_core_bytes, seed)
        self.cls_rows = sample_rows(self._cls_srcs, in_core_bytes, seed) if cls else None
        self.cv_scores: dict[tuple, float] = {}  # source CV score of every fitted model, by plan key

    # -- the training side -------------------------------------------------------------------

    @staticmethod
    def _train_stats(srcs: list[Activations], norm: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """The statistics that standardise each source's training rows for a normalisation: pooled
        source statistics (several sources, source normalisation) or each source's own."""
        if norm == "source" and len(srcs) > 1:
            return [pooled_statistics(srcs)] * len(srcs)
        return [(d.mean, d.std) for d in srcs]

    @staticmethod
    def _apply_stats(
        srcs: list[Activations], norm: str, target: Activations
    ) -> tuple[np.ndarray, np.ndarray]:
        """The statistics that standardise the target: its own, or the (pooled) sources'."""
        if norm == "target":
            return target.mean, target.std
        return pooled_statistics(srcs) if len(srcs) > 1 else (srcs[0].mean, srcs[0].std)

    def evaluate(self, plan, headline) -> list[list[dict]]:
        """Fit every planned model per normalisation and score it on every target."""
        with stage("fits and scoring"), single_threaded_blas():
            return self._fit_and_score(plan, headline)

    def _fit_and_score(self, plan, headline) -> list[list[dict]]:
        fits_total = sum(len(entries) for entries in plan.values()) + len(self.layers) + bool(self.cls)
        with bar(fits_total * (1 + (len(self.srcs) > 1)), "fits", "fit", self.progress) as fits_bar:
            return self._fit_all(plan, headline, fits_bar)

    def _fit_all(self, plan, headline, fits_bar) -> list[list[dict]]:
        union = [cols for method, entries in plan.items() if method != "all" for _, cols, _ in entries]
        columns = column_sets(self.srcs, np.concatenate(union), self.budget, "the k-neuron classifiers")
        trained = {}  # one source trains the same data under both normalisations: fit it once
        models = {}
        for norm in NORMALISATIONS:
            pooled = norm == "source" and len(self.srcs) > 1
            if pooled not in trained:
                trained[pooled] = self._fit_side(plan, norm, columns, fits_bar)
                self.cv_scores = {key: f.cv_score for key, (_, f) in trained[pooled][0].items()}
            fits, layer_fits, cls_fit = trained[pooled]
            if norm == "target":  # the scikit-learn recipe standardises with the source only
                fits = {key: value for key, value in fits.items() if key[0] != "sklearn"}
            models[norm] = fits, layer_fits, cls_fit
        del columns  # the sources' columns, read for the k-neuron models, are not needed to score
        scoring, cls_models = {}, {}
        for norm, (fits, (best, layer_fit), cls_fit) in models.items():
            scoring[norm] = {**fits, _BEST: (self._layer_cols(best), layer_fit)}
            cls_models[norm] = {_CLS: (None, cls_fit)}
        out = [[] for _ in self.tgts]
        for t, target in enumerate(self.tgts):
            scored = self._score(target, self.srcs, scoring)
            cls_scored = self._score(self.cls[target.name], self._cls_srcs, cls_models) if self.cls else {}
            for norm, (_, (best, _), _) in models.items():
                layer_score = scored[norm].pop(_BEST)
                cls_score = cls_scored[norm][_CLS] if self.cls else None
                out[t].append(self._row(norm, target, scored[norm], headline, best, layer_score, cls_score))
        return out

    def _fit_side(self, plan, norm, columns, fits_bar) -> tuple[dict, tuple[int, Fitted], Fitted | None]:
        """Every planned model, the best layer and the CLS classifier, fitted on the sources standardised
        for a normalisation (`_fit_jobs`), or read back from the store when one source saved the same
        fits before (engine/crossdomain/_saved_fits.py)."""
        stats = self._train_stats(self.srcs, norm)
        ((_, every, _),) = plan["all"]
        jobs = {_DENSE: ("fit", every)}
        jobs |= {(_LAYER, i): ("fit", self._layer_cols(i)) for i in range(len(self.layers))}
        for method, entries in plan.items():
            for kk, cols, s in entries:
                if method != "all":
                    jobs[method, kk, s] = ("sklearn" if method == "sklearn" else "fit", cols)
        compute = partial(self._fit_jobs, jobs, stats, columns, fits_bar)
        done = self._saved(self.srcs, stats, self.rows, jobs, compute, fits_bar)
        cls_fit = None
        if self.cls:
            cls_stats = self._train_stats(self._cls_srcs, norm)
            cls_jobs = {_CLS_FIT: ("fit", np.arange(self._cls_srcs[0].p))}

            def fit_cls() -> dict[Any, Fitted]:
                z, y = dense_matrix(self._cls_srcs, self.cls_rows, cls_stats)
                job = FitJob(partial(fit, seed=self.seed), partial(_same, z), y, self.kind, z.size)
                return _run_fits({_CLS_FIT: job}, fits_bar)

            saved = self._saved(self._cls_srcs, cls_stats, self.cls_rows, cls_jobs, fit_cls, fits_bar)
            cls_fit = saved[_CLS_FIT]
        fits = {}
        for method, entries in plan.items():
            for kk, cols, s in entries:
                fits[method, kk, s] = (cols, done[_DENSE] if method == "all" else done[method, kk, s])
        layers = [done[_LAYER, i] for i in range(len(self.layers))]
        best = int(np.argmax([f.cv_score for f in layers]))
        return fits, (best, layers[best]), cls_fit

    def _saved(self, domains, stats, rows, jobs, compute, fits_bar) -> dict[Any, Fitted]:
        """`saved_fits` (computed anew under the importance option `recompute`, as saved paths are),
        with the progress bar advanced past the fits that were read back."""
        computed = []

        def counted() -> dict[Any, Fitted]:
            computed.append(True)
            return compute()

        recompute = bool(self.importance_options.get("recompute", False))
        done = saved_fits(domains, stats, rows, self.seed, jobs, counted, recompute)
        if not computed:
            fits_bar.update(len(jobs))
        return done

    def _fit_jobs(self, jobs, stats, columns, fits_bar) -> dict[Any, Fitted]:
        """Fit `jobs` ((model, columns) by key) on the sources standardised with `stats`: the models
        on every neuron on all rows when every source is in core, else on the row sample (freed
        before the k-neuron models read their columns); a k-neuron model on every source row of its
        columns. In core, all in one batch for the fit pool; streamed, the sample's models first."""
        z, y = dense_matrix(self.srcs, self.rows, stats)
        in_core = self.rows is None  # all rows in core: k-neuron models take z's columns
        y_all = np.concatenate([d.y for d in self.srcs])
        n_all = len(y_all)
        wide, narrow = {}, {}
        estimator = partial(fit, seed=self.seed)
        for key, (model, cols) in jobs.items():
            if key == _DENSE:  # in core, the copy z[:, every] as always (BLAS's last bits: alignment)
                data = partial(_take, z, cols) if in_core else partial(_same, z)
                wide[key] = FitJob(estimator, data, y, self.kind, z.shape[0] * len(cols))
            elif key[0] == _LAYER:
                wide[key] = FitJob(estimator, partial(_take, z, cols), y, self.kind, z.shape[0] * len(cols))
            else:
                chosen = _default_l2 if model == "sklearn" else estimator
                read = partial(standardised_columns, columns, stats, cols)  # streamed: from the store
                data = partial(_take, z, cols) if in_core else read
                narrow[key] = FitJob(chosen, data, y_all, self.kind, n_all * len(cols))
        if in_core:
            return _run_fits(wide | narrow, fits_bar)
        done = _run_fits(wide, fits_bar)
        del z, wide  # the row sample (streamed), freed before the k-neuron models read their columns
        return done | _run_fits(narrow, fits_bar)

    def _score(
        self, target: Activations, srcs: list[Activations], models: dict[str, dict[Any, tuple]]
    ) -> dict[str, dict[Any, dict[str, float]]]:
        """Scores of every model (columns, fit) on `target` per normalisation, in one pass over its
        row blocks (the whole matrix in core): each block standardised with the normalisation's
        statistics, then cut to each model's columns. Equals scoring the whole matrix at once."""
        stats = {norm: self._apply_stats(srcs, norm, target) for norm in models}
        tallies = {
            norm: {key: Tally(f, target.n) for key, (_, f) in fits.items()} for norm, fits in models.items()
        }
        for start, stop, x in target.blocks():
            y = target.y[start:stop]
            for norm, fits in models.items():
                z = scaled(x, *stats[norm])
                for key, (cols, _) in fits.items():
                    tallies[norm][key].add(start, z if cols is None else z[:, cols], y)
        return {norm: {key: t.result(target.y) for key, t in ts.items()} for norm, ts in tallies.items()}

    def _layer_cols(self, position: int) -> np.ndarray:
        return np.arange(position * self.hidden, (position + 1) * self.hidden)

    def _rows_used(self, sklearn_ranking: bool = False, scenarios: int | None = None) -> dict[str, int]:
        """How many source rows each classifier on every neuron saw, when it was not all of them:
        `all`, `best_layer` (and `sklearn_ranking`) on the row sample, `last_cls` on the CLS stores',
        `scenarios` (several sources) the scenarios' dense classifiers together; `of` the rows."""
        used = {}
        if self.rows is not None:
            m = int(sum(r.size for r in self.rows))
            used = {"all": m, "best_layer": m, **({"sklearn_ranking": m} if sklearn_ranking else {})}
        if self.cls_rows is not None:
            used["last_cls"] = int(sum(r.size for r in self.cls_rows))
        if scenarios is not None:
            used["scenarios"] = scenarios
        if used:
            used["of"] = int(sum(d.n for d in self.srcs))
        return used

    # -- assembling rows ---------------------------------------------------------------------

    def _row(self, norm, target, scored, headline, best_layer, layer_score, cls_score) -> dict[str, Any]:
        metrics = list(next(iter(scored.values())))
        tables = {m: {} for m in metrics}
        curves = {m: {} for m in metrics}
        for (method, kk, _seed), values in scored.items():
            for m, v in values.items():
                if method == "random":
                    curves[m].setdefault(method, {}).setdefault(str(kk), []).append(v)
                elif kk is None:
                    tables[m][method] = v
                else:
                    curves[m].setdefault(method, {})[str(kk)] = v
        for m in metrics:
            runs = curves[m].pop("random")
            curves[m]["random"] = {kk: _spread(v) for kk, v in runs.items()}
            for method, curve in curves[m].items():
                if str(headline) in curve:
                    tables[m][method] = curve[str(headline)]
            tables[m]["best_layer"] = {"score": layer_score[m], "layer": int(self.layers[best_layer])}
            if cls_score is not None:
                tables[m]["last_cls"] = cls_score[m]
            curves[m] = {method: c for method, c in curves[m].items() if len(c) > 1 or str(headline) not in c}
        row = {
            "sources": [d.name for d in self.srcs], "target": target.name, "normalisation": norm,
            "scores": tables[self.metric], "by_k": curves[self.metric],
        }  # fmt: skip
        others = {m: tables[m] for m in metrics if m != self.metric}
        if others:
            row["other_metrics"] = others
        return row


_BEST, _CLS = ("best_layer", None, None), ("last_cls", None, None)  # their keys among the scored models
_DENSE, _LAYER, _CLS_FIT = "all", "layer", "cls"  # keys of the fits on every neuron, per layer, on CLS


def _run_fits(jobs: dict[Any, FitJob], fits_bar: Any) -> dict[Any, Fitted]:
    """Every job's fitted model by key (engine/crossdomain/_fit_pool.py), the bar advanced per fit."""
    return _fit_pool.run(jobs, lambda: fits_bar.update(1))


def _take(z: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return z[:, cols]


def _same(z: np.ndarray) -> np.ndarray:
    return z


def record_rows(meta: dict[str, Any], rows: list[list[dict]], used: dict[str, int]) -> None:
    """Say in the result's meta and in every row how many source rows the models on every neuron saw,
    when that was a sample (the report's schema takes rows with more keys)."""
    if used:
        meta["rows_used"] = used
        for target_rows in rows:
            for row in target_rows:
                row["rows_used"] = dict(used)


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "seeds": len(values)}


def _default_l2(z: np.ndarray, y: np.ndarray, kind: str) -> Fitted:
    """scikit-learn's defaults, as a user would fit them: LogisticRegression() or Ridge()."""
    from sklearn.linear_model import LogisticRegression, Ridge

    model = LogisticRegression(max_iter=2000).fit(z, y) if kind == "class" else Ridge().fit(z, y)
    return Fitted(model, kind, float("nan"))
