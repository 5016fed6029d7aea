"""neurosel select: rank neurons by a sparse-logistic path and print the top k."""

from __future__ import annotations

import argparse

from neurosel.cli._options import add_cluster_options, add_command, add_device, float_in, positive_int
from neurosel.cli._outputs import check_output_file, dask_client, write_json
from neurosel.defaults import CLASS_WEIGHTS, DEFAULT_K, PENALTY_NAMES, RULES


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "select",
        "rank neurons by a sparse-logistic path and print the top k",
        "Rank every neuron of a labelled store by when it enters a sparse-logistic (or lasso) "
        "regularisation path, saved in the store, then select neurons and print the path, the "
        "per-layer fingerprint and the first neurons.",
    )
    p.add_argument("store", help="labelled store directory made by neurosel extract")
    p.add_argument(
        "--k", type=positive_int, default=DEFAULT_K, help="neurons to select (the path runs until k enter)"
    )
    p.add_argument(
        "--method",
        default=None,
        help="importance method, a name in neurosel.solver.METHODS (built in: l1-logistic for class "
        "labels, lasso for numeric labels; default: the registry's method for the store's labels)",
    )
    p.add_argument(
        "--penalty",
        choices=PENALTY_NAMES,
        default=None,
        help="sparsity penalty (default: group-l1 for more than two classes, else l1)",
    )
    p.add_argument(
        "--l1-ratio", type=float_in(0, 1), default=1.0, help="1 = L1, below 1 = elastic net; in (0, 1]"
    )
    p.add_argument(
        "--rule",
        choices=RULES,
        default=RULES[0],
        help="top-k: first k to enter; support: non-zero at the λ closest to k; mass: fewest holding --mass",
    )
    p.add_argument(
        "--mass", type=float_in(0, 1), default=0.5, help="weight fraction for --rule mass; in (0, 1]"
    )
    p.add_argument("--n-lambdas", type=positive_int, default=20, help="λ values on the path")
    add_cluster_options(p)
    p.add_argument(
        "--recompute", action="store_true", help="ignore a path saved in the store and solve it again"
    )
    p.add_argument(
        "--lambda-ratio",
        type=float_in(0, 1, high_open=True),
        default=1e-2,
        help="last λ / λ_max; in (0, 1)",
    )
    p.add_argument(
        "--tol",
        type=float_in(0, float("inf"), high_open=True),
        default=1e-6,
        help="duality-gap tolerance (units of log 2)",
    )
    p.add_argument(
        "--class-weight", choices=CLASS_WEIGHTS, default=None, help="reweight classes to equal total weight"
    )
    add_device(p)
    p.add_argument("--json", metavar="OUT", help="also write the selection and path summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import neurosel
    from neurosel.solver import get_method, method_for

    check_output_file(args.json, "--json")
    if args.method is not None:  # the registry says which methods exist (and names them if not)
        get_method(args.method)
    store = neurosel.open_store(args.store)
    device = neurosel.resolve_device(args.device)
    method = args.method or method_for(store.meta.get("label_kind") or "class", 2)
    with dask_client(args) as client:
        imp = neurosel.importance(
            store, method, device, penalty=args.penalty, l1_ratio=args.l1_ratio, n_lambdas=args.n_lambdas,
            lambda_ratio=args.lambda_ratio, target_support=args.k if args.rule == "top-k" else None,
            tol=args.tol, class_weight=args.class_weight, progress=not args.quiet, recompute=args.recompute,
            client=client,
        )  # fmt: skip
    sel = neurosel.select(imp, k=args.k, rule=args.rule, mass=args.mass)
    print(describe_selection(imp, sel))
    if args.json:
        record = {
            "store": store.path, "method": imp.method, "penalty": imp.penalty, "rule": args.rule,
            "neurons": sel.neurons.tolist(), "units": sel.units(), "fingerprint": sel.fingerprint().tolist(),
            "lambdas": imp.lambdas.tolist(), "support_sizes": imp.support_sizes.tolist(),
            "passes": imp.passes.tolist(), "gaps": imp.gaps.tolist(), "meta": imp.meta,
        }  # fmt: skip
        write_json(args.json, record)
    return 0


def describe_selection(imp, sel) -> str:
    """The path in a few lines, the per-layer fingerprint, and the first selected neurons."""
    m = imp.meta
    lines = [
        f"path      {len(imp.lambdas)} λs from {imp.lambdas[0]:.4g} to {imp.lambdas[-1]:.4g}, support "
        f"{imp.support_sizes[-1]}, {m['total_passes']} passes, {m['solve_seconds']:.2f} s on {m['design']}",
        f"certified {'all λs' if m['converged'] else 'NOT all λs'}; final gap {imp.gaps[-1]:.2e}",
        f"selected  {sel.neurons.size} neurons ({imp.method}, {imp.penalty})",
        "fingerprint "
        + "  ".join(f"L{layer} {p:.1f}%" for layer, p in zip(sel.layers, sel.fingerprint(), strict=True)),
        "top       " + ", ".join(f"L{layer}:{unit}" for layer, unit in sel.units()[:10]),
    ]
    return "\n".join(lines)
