"""Every public function refuses a bad option before any work: one option at a time (wrong type, out
of range, unknown choice, a bool where a number is wanted, NaN), an InputError of one line naming
the option, and the store's files unchanged (names, sizes, mtimes and bytes): nothing was computed
or saved. The tables (neurosel.params) are covered option by option; the CLI refuses in one line."""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

import neurosel
from neurosel.crossdomain._fingerprint import FINGERPRINT_PARAMS
from neurosel.crossdomain._transfer import TRANSFER_PARAMS
from neurosel.errors import InputError
from neurosel.experiments._runner import OPTIONS_PARAMS, RUN_PARAMS, Options, run_experiment, run_pipeline
from neurosel.extraction._extract import EXTRACT_PARAMS
from neurosel.params import Anything, Boolean, Instance, Integral, Interval, OneOf, Optional, check, validated
from neurosel.solver._importance import IMPORTANCE_PARAMS
from neurosel.solver._selection import SELECT_PARAMS
from neurosel.solver._selector import SparseLogisticSelector
from neurosel.solver._stability import STABILITY_PARAMS, stability_selection
from neurosel.stats._api import STATS_PARAMS
from neurosel.store._from_array import STORE_FROM_ARRAY_PARAMS
from neurosel.store._reader import OPEN_STORE_PARAMS
from neurosel.store._verify import VERIFY_PARAMS

NAN = float("nan")
N, LAYERS, HIDDEN = 24, 2, 4


def _make(path: Path, seed: int = 0) -> neurosel.ActivationStore:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, LAYERS, HIDDEN)).astype(np.float32)
    labels = np.arange(N) % 2
    x[:, 1, 0] += 2 * labels  # a planted neuron, so that a path has something to find
    return neurosel.store_from_array(path, x, labels=labels)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    return _make(root / "a.zarr"), _make(root / "b.zarr", 1)


@pytest.fixture(scope="module")
def imp(tmp_path_factory):
    """An Importance for select (computed on a store of its own)."""
    store = _make(tmp_path_factory.mktemp("imp") / "c.zarr", 2)
    return neurosel.importance(store, n_lambdas=5, device="cpu", save=False)


def snapshot(root: str | Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root`: (size, mtime in ns, sha-1 of its bytes)."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            stat = path.stat()
            found[str(path.relative_to(root))] = (
                stat.st_size,
                stat.st_mtime_ns,
                hashlib.sha1(path.read_bytes()).hexdigest(),
            )
    return found


# (function, bad keyword arguments, a part of the message). `S` stands for the first store, `T` for
# the second; the functions are called as `CALLS[function](S, T, imp, tmp_path, **bad)`.
CALLS = {
    "neuron_stats": lambda s, t, i, tmp, **kw: neurosel.neuron_stats(**{"store": s, "progress": False, **kw}),
    "importance": lambda s, t, i, tmp, **kw: neurosel.importance(**{"store": s, **kw}),
    "importance_params": lambda s, t, i, tmp, **kw: neurosel.solver.importance_params(**{"store": s, **kw}),
    "select": lambda s, t, i, tmp, **kw: neurosel.select(**{"imp": i, **kw}),
    "transfer": lambda s, t, i, tmp, **kw: neurosel.transfer(**{"sources": [s], "target": t, "k": 2, **kw}),
    "fingerprint": lambda s, t, i, tmp, **kw: neurosel.fingerprint(**{"stores": [s, t], "k": 2, **kw}),
    "extract": lambda s, t, i, tmp, **kw: neurosel.extract(
        **{"inputs": ["a b", "c d"], "model": str(tmp / "no-model"), "out": tmp / "x.zarr", **kw}
    ),
    "store_from_array": lambda s, t, i, tmp, **kw: neurosel.store_from_array(
        **{"out": tmp / "y.zarr", "activations": np.zeros((4, 1, 2)), **kw}
    ),
    "open_store": lambda s, t, i, tmp, **kw: neurosel.open_store(**kw),
    "verify": lambda s, t, i, tmp, **kw: neurosel.verify(**kw),
    "stability_selection": lambda s, t, i, tmp, **kw: stability_selection(
        **{
            "rows": lambda ids: np.zeros((len(ids), 2), np.float32),
            "labels": np.arange(8) % 2,
            "datafit": None,
            "penalty": None,
            "lambdas": np.array([1.0]),
            "tie_ranking": np.arange(2),
            **kw,
        }
    ),
    "run_pipeline": lambda s, t, i, tmp, **kw: run_pipeline(
        **{"name": "x", "domains": {"a": (["x"], [0]), "b": (["y"], [1])}, "out": tmp / "run", **kw}
    ),
    "run_experiment": lambda s, t, i, tmp, **kw: run_experiment(
        **{"experiment": "amazon", "data_dir": tmp / "no-data", "out": tmp / "run", **kw}
    ),
}

BAD_IMPORTANCE = [
    ({"store": 3}, "store 3"),
    ({"method": "bogus"}, "method 'bogus': use one of l1-logistic"),
    ({"device": 3}, "device 3"),
    ({"penalty": "l2"}, "penalty 'l2'"),
    ({"l1_ratio": 0}, "l1_ratio 0: must be a number in (0, 1]"),
    ({"l1_ratio": NAN}, "l1_ratio nan"),
    ({"l1_ratio": True}, "l1_ratio True"),
    ({"n_lambdas": 0}, "n_lambdas 0: must be a whole number ≥ 1"),
    ({"n_lambdas": 2.5}, "n_lambdas 2.5"),
    ({"n_lambdas": True}, "n_lambdas True"),
    ({"lambda_ratio": 1.0}, "lambda_ratio 1.0"),
    ({"target_support": 0}, "target_support 0"),
    ({"tol": -1e-6}, "tol -1e-06"),
    ({"tol": NAN}, "tol nan"),
    ({"class_weight": "equal"}, "class_weight 'equal'"),
    ({"memory_budget": 0}, "memory_budget 0"),
    ({"in_core_bytes": "2G"}, "in_core_bytes '2G'"),
    ({"recompute": 1}, "recompute 1: must be True or False"),
    ({"save": "no"}, "save 'no'"),
    ({"progress": None}, "progress None"),
    ({"solver": "sparse_path"}, "solver 'sparse_path'"),
]

CASES: list[tuple[str, dict, str]] = [
    *[("importance", bad, part) for bad, part in BAD_IMPORTANCE],
    ("importance_params", {"n_lambdas": -1}, "n_lambdas -1"),
    ("neuron_stats", {"store": 3}, "store 3"),
    ("neuron_stats", {"by": "class"}, "by 'class': use one of label, None"),
    ("neuron_stats", {"device": None}, "device None"),
    ("neuron_stats", {"auroc": "yes"}, "auroc 'yes'"),
    ("neuron_stats", {"auroc_bits": 25}, "auroc_bits 25: must be a whole number in 1..24"),
    ("neuron_stats", {"auroc_bits": True}, "auroc_bits True"),
    ("neuron_stats", {"memory_budget": -1}, "memory_budget -1"),
    ("neuron_stats", {"readers": 0}, "readers 0"),
    ("neuron_stats", {"allow_partial": "x"}, "allow_partial 'x'"),
    ("neuron_stats", {"recompute": 0}, "recompute 0"),
    ("neuron_stats", {"save": None}, "save None"),
    ("neuron_stats", {"progress": 2}, "progress 2"),
    ("select", {"imp": None}, "imp None"),
    ("select", {"k": 0}, "k 0"),
    ("select", {"k": 2.0}, "k 2.0"),
    ("select", {"rule": "best"}, "rule 'best': use one of top-k, support, mass"),
    ("select", {"at": 1.5}, "at 1.5"),
    ("select", {"mass": 0}, "mass 0"),
    ("select", {"mass": NAN}, "mass nan"),
    ("transfer", {"sources": []}, "sources []"),
    ("transfer", {"sources": 3}, "sources 3"),
    ("transfer", {"target": 3}, "target 3"),
    ("transfer", {"k": 0}, "k 0"),
    ("transfer", {"k": True}, "k True"),
    ("transfer", {"ks": [0, 2]}, "ks [0, 2]"),
    ("transfer", {"names": "ab"}, "names 'ab'"),
    ("transfer", {"normalisations": ["both"]}, "normalisations ['both']"),
    ("transfer", {"normalisations": []}, "normalisations []"),
    ("transfer", {"seeds": 0}, "seeds 0"),
    ("transfer", {"cls": ["a"]}, "cls ['a']"),
    ("transfer", {"choose_k": "yes"}, "choose_k 'yes'"),
    ("transfer", {"sklearn_baseline": 1}, "sklearn_baseline 1"),
    ("transfer", {"importance_options": ["n_lambdas"]}, "importance_options ['n_lambdas']"),
    ("transfer", {"importance_options": {"n_lambdas": 0}}, "n_lambdas 0"),
    ("transfer", {"importance_options": {"bogus": 1}}, "importance_options: 'bogus'"),
    ("transfer", {"importance_options": {"device": "cpu"}}, "importance_options: 'device'"),
    ("transfer", {"seed": -1}, "seed -1"),
    ("transfer", {"device": 0}, "device 0"),
    ("transfer", {"progress": "no"}, "progress 'no'"),
    ("transfer", {"in_core_bytes": 1.5}, "in_core_bytes 1.5"),
    ("transfer", {"in_core_bytes": NAN}, "in_core_bytes nan"),
    ("transfer", {"ranking": "bogus"}, "ranking 'bogus': use one of auto"),
    ("fingerprint", {"stores": []}, "stores []"),
    ("fingerprint", {"k": 0}, "k 0"),
    ("fingerprint", {"method": "ridge"}, "method 'ridge'"),
    ("fingerprint", {"names": "ab"}, "names 'ab'"),
    ("fingerprint", {"measure": "l2"}, "measure 'l2'"),
    ("fingerprint", {"device": 1}, "device 1"),
    ("fingerprint", {"progress": "x"}, "progress 'x'"),
    ("fingerprint", {"ranking": "best"}, "ranking 'best'"),
    ("fingerprint", {"importance_options": {"tol": 0}}, "tol 0"),
    ("fingerprint", {"importance_options": 3}, "importance_options 3"),
    ("fingerprint", {"n_lambdas": True}, "n_lambdas True"),
    ("extract", {"inputs": ["a"], "model": 3}, "model 3"),
    ("extract", {"out": None}, "out None"),
    ("extract", {"text_column": 1}, "text_column 1"),
    ("extract", {"pair_column": 1}, "pair_column 1"),
    ("extract", {"label_column": 2}, "label_column 2"),
    ("extract", {"label_kind": "regression"}, "label_kind 'regression'"),
    ("extract", {"pooling": "sum"}, "pooling 'sum': use one of auto, mean, cls, max, last, tokens"),
    ("extract", {"sites": "attention"}, "sites 'attention'"),
    ("extract", {"sites": ("hidden", 3)}, "sites ('hidden', 3)"),
    ("extract", {"layers": 1.5}, "layers 1.5"),
    ("extract", {"layers": []}, "layers []"),
    ("extract", {"dtype": "int8"}, "dtype 'int8'"),
    ("extract", {"precision": "fp8"}, "precision 'fp8'"),
    ("extract", {"max_length": 1}, "max_length 1: must be a whole number ≥ 2"),
    ("extract", {"max_length": NAN}, "max_length nan"),
    ("extract", {"device": 0}, "device 0"),
    ("extract", {"resume": "yes"}, "resume 'yes'"),
    ("extract", {"progress": 1}, "progress 1"),
    ("extract", {"token_budget": 1}, "token_budget 1"),
    ("extract", {"allow_nonfinite": None}, "allow_nonfinite None"),
    ("extract", {"store_texts": 0}, "store_texts 0"),
    ("extract", {"chunk_rows": 0}, "chunk_rows 0: must be a whole number ≥ 1"),
    ("extract", {"compression": "gzip"}, "compression 'gzip'"),
    ("store_from_array", {"out": 3}, "out 3"),
    ("store_from_array", {"layers": [-1]}, "layers [-1]"),
    ("store_from_array", {"dtype": "float64"}, "dtype 'float64'"),
    ("store_from_array", {"model_id": None}, "model_id None"),
    ("store_from_array", {"chunk_rows": True}, "chunk_rows True"),
    ("store_from_array", {"compression": "lz4"}, "compression 'lz4'"),
    ("store_from_array", {"label_kind": "str"}, "label_kind 'str'"),
    ("open_store", {"path": 3}, "path 3"),
    ("open_store", {"path": ""}, "path ''"),
    ("verify", {"store": None}, "store None"),
    ("stability_selection", {"rows": None}, "rows None"),
    ("stability_selection", {"l1_ratio": 2}, "l1_ratio 2"),
    ("stability_selection", {"target_support": 0}, "target_support 0"),
    ("stability_selection", {"subsamples": 0}, "subsamples 0"),
    ("stability_selection", {"seed": -1}, "seed -1"),
    ("stability_selection", {"stratify": "yes"}, "stratify 'yes'"),
    ("stability_selection", {"tol": 0}, "tol 0"),
    ("stability_selection", {"workers": 0}, "workers 0"),
    ("stability_selection", {"on_subsample": 1}, "on_subsample 1"),
    ("run_pipeline", {"name": 1}, "name 1"),
    ("run_pipeline", {"domains": [1]}, "domains [1]"),
    ("run_pipeline", {"out": None}, "out None"),
    ("run_pipeline", {"options": {"k": 2}}, "options {'k': 2}"),
    ("run_pipeline", {"progress": "no"}, "progress 'no'"),
    ("run_pipeline", {"device": 1}, "device 1"),
    ("run_experiment", {"experiment": 1}, "experiment 1"),
    ("run_experiment", {"data_dir": None}, "data_dir None"),
    *[
        ("run_pipeline", {"options": Options(**{field: bad})}, f"options.{field} ")
        for field, bad in [
            ("model", 3),
            ("k", 0),
            ("ks", ()),
            ("seeds", True),
            ("pooling", "sum"),
            ("max_length", 1),
            ("device", None),
            ("cls_baseline", "no"),
            ("measure", "l2"),
            ("permutations", 0),
            ("multi_source", 1),
            ("ranking", "best"),
            ("in_core_bytes", 0),
        ]
    ],
    ("run_experiment", {"options": Options(k=-1)}, "options.k -1"),
]
FUNCTIONS = {"importance", "importance_params", "stability_selection", "select"}


@pytest.mark.parametrize(
    ("function", "bad", "part"), CASES, ids=[f"{c[0]}-{next(iter(c[1]))}" for c in CASES]
)
def test_a_bad_option_is_refused_before_any_work(stores, imp, tmp_path, function, bad, part):
    s, t = stores
    before = [snapshot(s.path), snapshot(t.path)]
    started = time.perf_counter()
    with pytest.raises(InputError) as raised:
        CALLS[function](s, t, imp, tmp_path, **bad)
    message = str(raised.value)
    assert "\n" not in message, message
    assert part in message, message
    assert next(iter(bad)).split("_")[0] in message or part.split(" ")[0] in message, message
    assert time.perf_counter() - started < 2.0  # no statistics pass, no path
    assert [snapshot(s.path), snapshot(t.path)] == before, "a store's files changed"
    assert not list(tmp_path.iterdir()), "something was written"
    for store in (s, t):
        assert not os.path.exists(os.path.join(store.path, "stats"))
        assert not os.path.exists(os.path.join(store.path, "importance"))


TABLES = {
    "importance": IMPORTANCE_PARAMS,
    "neuron_stats": STATS_PARAMS,
    "select": SELECT_PARAMS,
    "transfer": TRANSFER_PARAMS,
    "fingerprint": FINGERPRINT_PARAMS,
    "extract": EXTRACT_PARAMS,
    "store_from_array": STORE_FROM_ARRAY_PARAMS,
    "open_store": OPEN_STORE_PARAMS,
    "verify": VERIFY_PARAMS,
    "stability_selection": STABILITY_PARAMS,
    "run_pipeline": RUN_PARAMS,
    "options": OPTIONS_PARAMS,
    "selector": SparseLogisticSelector._parameter_table,
}
SELECTOR_CASES = [
    ({"C": 0}, "C 0"),
    ({"C": NAN}, "C nan"),
    ({"k": 0}, "k 0"),
    ({"l1_ratio": 1.5}, "l1_ratio 1.5"),
    ({"penalty": "l2"}, "penalty 'l2'"),
    ({"standardize": "yes"}, "standardize 'yes'"),
    ({"class_weight": "equal"}, "class_weight 'equal'"),
    ({"n_lambdas": True}, "n_lambdas True"),
    ({"lambda_ratio": 0}, "lambda_ratio 0"),
    ({"tol": -1}, "tol -1"),
]


def test_every_option_of_every_table_has_a_case():
    """Each constrained option (not `Anything`) is refused by at least one case above."""
    named = {(f, name) for f, bad, _ in CASES for name in bad}
    named |= {("run_experiment", name) for f, bad, _ in CASES if f == "run_pipeline" for name in bad}
    named |= {
        ("options", part.split(" ")[0].removeprefix("options.")) for f, _, part in CASES if "options." in part
    }
    named |= {("selector", name) for bad, _ in SELECTOR_CASES for name in bad}
    missing = []
    for function, table in TABLES.items():
        for name, spec in table.items():
            if isinstance(spec, Anything):
                continue
            owners = {function, "run_experiment"} if function == "run_pipeline" else {function}
            if not any((owner, name) for owner in owners if (owner, name) in named):
                missing.append(f"{function}.{name}")
    assert not missing, f"options without a bad-value case: {missing}"


@pytest.mark.parametrize(("bad", "part"), SELECTOR_CASES)
def test_the_selector_checks_its_parameters_in_fit(bad, part):
    x, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError) as raised:
        SparseLogisticSelector(**bad).fit(x, y)
    assert "\n" not in str(raised.value) and part in str(raised.value)


def test_registry_choices_are_read_at_check_time():
    methods = neurosel.solver.METHODS
    spec = IMPORTANCE_PARAMS["method"]
    assert spec.choices == tuple(methods)
    method = neurosel.solver.Method("toy-x", "class", methods["l1-logistic"].datafit, lambda k: "l1")
    neurosel.solver.register_method(method)
    try:
        check("importance", IMPORTANCE_PARAMS, {"method": "toy-x"})
    finally:
        neurosel.solver.unregister_method("toy-x")
    with pytest.raises(InputError, match="method 'toy-x'"):
        check("importance", IMPORTANCE_PARAMS, {"method": "toy-x"})


def test_the_constraints():
    whole = Interval(Integral, 1, None)
    assert whole.ok(3) and whole.ok(np.int64(3)) and not whole.ok(True) and not whole.ok(2.0)
    fraction = Interval(float, 0, 1, closed="right")
    assert (
        fraction.ok(1) and not fraction.ok(0) and not fraction.ok(math.nan) and not fraction.ok(np.bool_(1))
    )
    assert OneOf("a", "b").choices == ("a", "b") and not OneOf(1, 2).ok(True)
    assert Boolean().ok(np.bool_(True)) and not Boolean().ok(1)
    assert Instance("ActivationStore").describe() == "a ActivationStore"
    spec = Optional(whole)
    with pytest.raises(InputError, match=r"^k 0: must be a whole number ≥ 1 or None$"):
        check("f", {"k": spec}, {"k": 0})

    @validated({"k": whole})
    def f(k: int = 1) -> int:
        """Doc."""
        return k

    assert f.__wrapped__.__doc__ == "Doc." and f(2) == 2 and f.params["k"] is whole
    with pytest.raises(InputError, match="k 0"):
        f(0)
    with pytest.raises(TypeError):
        validated({"nope": whole})(f.__wrapped__)


@pytest.mark.parametrize(
    ("argv", "part"),
    [
        (["select", "{store}", "--k", "0"], "--k"),
        (["select", "{store}", "--rule", "best"], "--rule"),
        (["select", "{store}", "--l1-ratio", "nan"], "--l1-ratio"),
        (["transfer", "{store}", "{store}", "--ranking", "bogus"], "--ranking"),
        (["fingerprint", "{store}", "--measure", "l2"], "--measure"),
        (["stats", "{store}", "--by", "class"], "--by"),
        (["select", "{store}", "--method", "bogus"], "method 'bogus'"),
    ],
)
def test_the_cli_refuses_bad_options_in_one_line(stores, capsys, argv, part):
    from neurosel.cli import main

    s, _ = stores
    before = snapshot(s.path)
    try:
        code = main([a.format(store=s.path) for a in argv])
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and part in err, err
    assert snapshot(s.path) == before
