"""Which neuron ranking transfers? Every ranking rule against random k and all neurons, on every
ordered pair of an experiment's stores, with the pipeline's classifier (`neurosel bench rankings`).

The rules: the transfer ranking rules (neurosel.crossdomain.RANKINGS, "elastic-net" with l1_ratio
0.1), an elastic-net path with l1_ratio 0.3 ranked by entry, and a shift-aware variant of entry and
Fisher that moves the neurons whose unlabelled statistics shift most between source and target to
the end. The rule is then chosen without target labels, by leaving one domain out: for each held-out
domain, the rule with the best mean score over the pairs among the other domains is picked and
scored on the pairs into the held-out one. Every path-based rule is also scored "unfilled" (its own
order past the n // 10 neurons it ranks, as before issue 24), and `k_by_cv` gives, per rule, the k
each source's own cross-validation would choose and the target score there against the best fixed
k. `--rules` limits the comparison to the rules named (without the extras above). Stores come from
`neurosel experiment NAME --out DIR` (DIR/stores/<domain>.zarr).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import neurosel
from neurosel.bench._harness import RESULTS_DIR, write_report
from neurosel.crossdomain import (
    RANKINGS,
    load_activations,
    path_options,
    selection_ranking,
    sparse_importance,
    standardise,
    stats_ranking,
)
from neurosel.crossdomain import fit_classifier as fit
from neurosel.crossdomain import score_classifier as score
from neurosel.devices import single_threaded_blas
from neurosel.kernels.standardise import safe_scale

KS = (10, 30, 100, 300, 1000)
SEEDS = 5
SHIFTED = 0.2  # the share of most-shifted neurons the shift-aware rules move to the end


def shift(source, target) -> np.ndarray:
    """Per neuron, from unlabelled statistics: standardised mean shift plus |log std ratio|."""
    safe = safe_scale(source.std)
    ratio = safe_scale(target.std) / safe
    return np.abs(target.mean - source.mean) / safe + np.abs(np.log(ratio))


def demote_shifted(ranking: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """`ranking` with the SHIFTED most-moved neurons last, the order kept otherwise."""
    keep = moved[ranking] <= np.quantile(moved, 1 - SHIFTED)
    return np.concatenate([ranking[keep], ranking[~keep]])


def source_rankings(src, kind: str, support: int, rules: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every target-independent rule's ranking of a source's neurons ("auto" is one of the others),
    or only `rules` (RANKINGS names; then without the elastic net 0.3 and shift-aware extras)."""
    stats_rank = stats_ranking([src], "cpu")
    paths: dict[float | None, Any] = {}  # by l1_ratio: the rules share the L1 path

    def path(options: dict[str, Any]) -> Any:
        ratio = options.get("l1_ratio")
        if ratio not in paths:
            paths[ratio] = sparse_importance(src.store, kind, support, options)
        return paths[ratio]

    out = {}
    for rule in (r for r in RANKINGS if r != "auto" and (not rules or r in rules)):
        imp = path(path_options(rule, {"device": "cpu"}))
        out[rule] = selection_ranking(rule, src, imp, stats_rank, support)[0]
        if rule != "fisher":  # the rule's own order past trusted_size too: what the fill changes
            out[f"{rule}, unfilled"] = selection_ranking(rule, src, imp, stats_rank, support, fill=False)[0]
    if not rules:
        out["elastic net 0.3"] = path({"device": "cpu", "l1_ratio": 0.3}).ranking
    return out


def run(
    stores_dir: Path, names: list[str], ks: tuple[int, ...], rules: tuple[str, ...] = ()
) -> dict[str, Any]:
    domains = {n: load_activations(neurosel.open_store(stores_dir / f"{n}.zarr"), n, "cpu") for n in names}
    kind = next(iter(domains.values())).kind
    p = next(iter(domains.values())).p
    ks = tuple(k for k in ks if k <= p)
    scores: dict[tuple[str, int, str], dict[tuple[str, str], float]] = collections.defaultdict(dict)
    spread: dict[tuple[int, str], list[float]] = collections.defaultdict(list)
    cv: dict[tuple[str, int], dict[str, float]] = collections.defaultdict(dict)  # source CV score
    metric = "accuracy" if kind == "class" else "pearson"
    for s_name, src in domains.items():
        start = time.perf_counter()
        rankings = source_rankings(src, kind, max(ks), rules)
        zs = standardise(src, src.mean, src.std)
        fits: dict[tuple[str, int], Any] = {}
        with single_threaded_blas():
            fits["all", p] = (np.arange(p), fit(zs, src.y, kind))
            for k in ks:
                for seed in range(SEEDS):
                    cols = np.sort(np.random.default_rng((0, seed, k)).choice(p, k, replace=False))
                    fits[f"random {seed}", k] = (cols, fit(zs[:, cols], src.y, kind))
        for t_name, tgt in domains.items():
            if t_name == s_name:
                continue
            moved = shift(src, tgt)
            for rule, ranking in rankings.items():  # the source's rules: fitted once, for every target
                for k in ks:
                    if (rule, k) not in fits:
                        with single_threaded_blas():
                            fits[rule, k] = (ranking[:k], fit(zs[:, ranking[:k]], src.y, kind))
                        cv[rule, k][s_name] = fits[rule, k][1].cv_score
            pair_fits = dict(fits)  # the shift-aware rules depend on the target: fitted for this pair
            extras = () if rules else (("shift-aware entry", "entry"), ("shift-aware fisher", "fisher"))
            for rule, base in extras:
                ranking = demote_shifted(rankings[base], moved)
                for k in ks:
                    with single_threaded_blas():
                        pair_fits[rule, k] = (ranking[:k], fit(zs[:, ranking[:k]], src.y, kind))
            for norm in ("source", "target"):
                mean, std = (tgt.mean, tgt.std) if norm == "target" else (src.mean, src.std)
                zt = standardise(tgt, mean, std)
                seeds: dict[int, list[float]] = collections.defaultdict(list)
                for (rule, k), (cols, fitted) in pair_fits.items():
                    value = score(fitted, zt[:, cols], tgt.y)[metric]
                    if rule.startswith("random"):
                        seeds[k].append(value)
                    elif rule == "all":
                        scores["all", 0, norm][s_name, t_name] = value
                    else:
                        scores[rule, k, norm][s_name, t_name] = value
                for k, values in seeds.items():
                    scores["random", k, norm][s_name, t_name] = float(np.mean(values))
                    spread[k, norm].append(float(np.std(values)))
        print(f"{s_name}: {time.perf_counter() - start:.0f} s", flush=True)
    rules = sorted({rule for rule, _, _ in scores if rule != "all"})
    table = {
        norm: {
            rule: {str(k): float(np.mean(list(scores[rule, k, norm].values()))) for k in ks} for rule in rules
        }
        for norm in ("source", "target")
    }
    for norm in table:
        table[norm]["all"] = float(np.mean(list(scores["all", 0, norm].values())))
        table[norm]["random sd"] = {str(k): float(np.mean(spread[k, norm])) for k in ks}
    headline = max((k for k in ks if k <= 300), default=max(ks))  # the default k, or the nearest below
    choice = {"k": headline, **leave_one_out(scores, names, rules, headline)}
    pairs = {  # every pair's score, for checks beyond the means
        norm: {
            rule: {str(k): {f"{a}->{b}": v for (a, b), v in scores[rule, k, norm].items()} for k in ks}
            for rule in rules
        }
        for norm in ("source", "target")
    }
    by_cv = k_by_source_cv(scores, cv, rules, ks)
    return {
        "metric": metric,
        "ks": list(ks),
        "table": table,
        "choice": choice,
        "pairs": pairs,
        "k_by_cv": by_cv,
        "below_random": below_random(scores, rules, ks),
    }


def below_random(scores, rules: list[str], ks: tuple[int, ...]) -> dict[str, list[dict[str, Any]]]:
    """Per normalisation, every (rule, k) whose mean score over the pairs is below random k's (the
    mean over its seeds, pair by pair): the mean difference, in how many pairs it is below, and a
    paired t-test over the pairs, its p-value two-sided and Holm-adjusted over every (rule, k) of the
    normalisation. The pairs share domains, so the test is optimistic about independence: a Holm p
    well above 0.05 says the gap is noise; a small one needs a look."""
    from scipy.stats import ttest_1samp

    out: dict[str, list[dict[str, Any]]] = {}
    for norm in ("source", "target"):
        cells = []
        for rule in (r for r in rules if r != "random"):
            for k in ks:
                pairs = sorted(scores[rule, k, norm])
                diff = np.array([scores[rule, k, norm][p] - scores["random", k, norm][p] for p in pairs])
                if diff.size < 2:
                    continue
                p_value = float(ttest_1samp(diff, 0.0).pvalue) if np.ptp(diff) > 0 else float(diff[0] == 0)
                cell = {"rule": rule, "k": k, "mean": float(diff.mean()), "below": int((diff < 0).sum())}
                cells.append({**cell, "pairs": int(diff.size), "p": p_value})
        for cell, adjusted in zip(cells, holm([c["p"] for c in cells]), strict=True):
            cell["p_holm"] = adjusted
        out[norm] = [c for c in cells if c["mean"] < 0]
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for testing them all at once (in the given order)."""
    order = np.argsort(p_values)
    adjusted, running = np.empty(len(p_values)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def k_by_source_cv(scores, cv, rules: list[str], ks: tuple[int, ...]) -> dict[str, Any]:
    """Per rule: the k each source's own cross-validation prefers (best CV score of the k-neuron
    classifier, ties to the smaller k, as a transfer's `selected_cv`), and the mean target score at
    those ks against the best fixed k's, under each normalisation."""
    out: dict[str, Any] = {}
    for rule in (r for r in rules if r != "random" and (r, ks[0]) in cv):
        chosen = {s: max(ks, key=lambda k: (cv[rule, k][s], -k)) for s in cv[rule, ks[0]]}
        row: dict[str, Any] = {"k": chosen, "cv": {str(k): cv[rule, k] for k in ks}}
        for norm in ("source", "target"):
            at_cv = [scores[rule, chosen[s], norm][s, t] for s, t in scores[rule, ks[0], norm]]
            fixed = {k: float(np.mean(list(scores[rule, k, norm].values()))) for k in ks}
            best = max(fixed, key=fixed.get)
            row[norm] = {"k by source CV": float(np.mean(at_cv)), "best fixed k": best, "best": fixed[best]}
        out[rule] = row
    return out


def leave_one_out(scores, names: list[str], rules: list[str], k: int) -> dict[str, Any]:
    """For each held-out domain: the rule best on the pairs among the others, and its score into it."""
    choice: dict[str, Any] = {}
    for norm in ("source", "target"):
        choice[norm] = {}
        for held in names:
            candidates = [r for r in rules if r != "random" and (r, k, norm) in scores]
            if not candidates:
                continue
            dev = {
                r: float(np.mean([v for (s, t), v in scores[r, k, norm].items() if held not in (s, t)]))
                for r in candidates
            }
            best = max(dev, key=dev.get)
            into = [v for (s, t), v in scores[best, k, norm].items() if t == held]
            choice[norm][held] = {"rule": best, "others": dev[best], "into": float(np.mean(into))}
    return choice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="neurosel bench rankings", description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", type=Path, help="an experiment's stores folder (OUT/stores)")
    parser.add_argument("--domains", required=True, help="comma list of the domains (store names)")
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="comma list of k")
    parser.add_argument("--name", default="experiment", help="names the JSON in bench/results/")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="reports (JSON)")
    parser.add_argument(
        "--rules", default="", help="comma list of RANKINGS to compare (default: every one, with the extras)"
    )
    args = parser.parse_args(argv)
    rules = tuple(r.strip() for r in args.rules.split(",") if r.strip())
    if bad := [r for r in rules if r not in RANKINGS or r == "auto"]:
        parser.error(
            f"--rules {','.join(bad)}: use names from {', '.join(r for r in RANKINGS if r != 'auto')}"
        )
    names = [n.strip() for n in args.domains.split(",") if n.strip()]
    report = run(args.stores, names, tuple(int(k) for k in args.ks.split(",")), rules)
    report["parameters"] = {
        "stores": str(args.stores), "domains": names, "seeds": SEEDS, "shifted": SHIFTED,
        "rules": list(rules) or "all",
    }  # fmt: skip
    report["note"] = "scores, not timings: a machine shared with other jobs changes the wall time only"
    out = write_report(report, args.out_dir, f"rankings_{args.name}", "cpu")
    for norm, rows in report["table"].items():
        print(f"{norm} normalisation ({report['metric']}), all neurons {rows['all']:.3f}")
        print(f"{'rule':<22}" + "".join(f"{k:>8}" for k in report["ks"]))
        for rule, by_k in rows.items():
            if isinstance(by_k, dict):
                print(f"{rule:<22}" + "".join(f"{by_k[str(k)]:8.3f}" for k in report["ks"]))
    for norm, held in report["choice"].items():
        if norm == "k":
            continue
        picks = ", ".join(f"{h}: {c['rule']} ({c['into']:.3f})" for h, c in held.items())
        print(f"leave one domain out, {norm}: {picks}")
    for norm, cells in report["below_random"].items():
        worst = min((c["p_holm"] for c in cells), default=1.0)
        listed = ", ".join(f"{c['rule']} k={c['k']} {c['mean']:+.3f}" for c in cells)
        print(f"below random k, {norm}: {len(cells)} (smallest Holm p {worst:.2f}) {listed}".rstrip())
    for rule, row in report["k_by_cv"].items():
        picks = " / ".join(
            f"{row[n]['k by source CV']:.3f} (best fixed k {row[n]['best fixed k']}: {row[n]['best']:.3f})"
            for n in ("source", "target")
        )
        print(f"k by source CV, {rule}: {picks}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
