"""The `neurosel` argument parser: every command, its options, their defaults and help.

Values are checked here by `type=` functions, so that a malformed value (`--ks a,b`, `--seeds -1`,
`--cls foo`) is a usage error: one line naming the option and the fix, exit code 2, before any work.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence

from neurosel.bench import BENCHMARKS
from neurosel.cli import _commands as commands

DEMO_MODEL = "all-MiniLM-L6-v2"
DEFAULT_KS = "10,30,100,300,1000"
# neurosel.crossdomain.RANKINGS, default first; spelled out so --help loads no solver (tests/test_cli.py)
RANKINGS = ("auto", "stability+fisher", "stability", "entry", "elastic-net", "fisher")
IN_CORE_BYTES = 2 << 30  # neurosel.crossdomain's IN_CORE_BYTES, spelled out for the same reason
DEVICE_HELP = "where to compute: auto (a GPU when one works, else the CPU), cpu, cuda or cuda:N"
QUIET_HELP = "print only results (and errors): no log lines or progress bars"
DESCRIPTION = (
    "Activation cache and neuron scoring for neuron-level transfer learning with BERT-family encoders: "
    "extract, score, select, transfer, fingerprint, report. Exit codes: 0 success, 2 bad input or "
    "usage (one line on stderr), 1 internal error (a bug), 130 interrupted."
)


class _Formatter(argparse.HelpFormatter):
    """Every option's help ends with its default: the value, "off" for a flag, "none" when unset."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default:" in text or isinstance(action, argparse._HelpAction) or action.required:
            return text
        if action.default is argparse.SUPPRESS and action.nargs != 0:
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        if action.nargs == 0:
            shown = "off"
        elif action.default is None or action.default == []:
            shown = "none"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, naming the command's --help, with exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"neurosel: error: {message} (see {self.prog} --help)\n")


# Value types: each returns the parsed value or raises ArgumentTypeError with the fix.


def positive_int(text: str) -> int:
    """A whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; pass a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1; pass a positive integer")
    return value


BYTE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """A size in bytes ≥ 1: a whole number, optionally with K, M, G or T (powers of 1,024), e.g. 8G."""
    number, unit = text.strip()[:-1], text.strip()[-1:].upper()
    if unit not in BYTE_UNITS or unit == "":
        number, unit = text.strip(), ""
    try:
        value = int(number) * BYTE_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size; pass whole bytes or a number with K, M, G or T, e.g. 8G"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is below 1 byte; pass a positive size, e.g. 8G")
    return value


def add_in_core_bytes(p: argparse.ArgumentParser) -> None:
    """--in-core-bytes: how large a store the transfer reads whole."""
    p.add_argument(
        "--in-core-bytes", type=byte_size, default=IN_CORE_BYTES, metavar="SIZE",
        help="stores whose float32 activations fit this are read whole, larger ones are streamed "
        "(docs/scale-out.md); bytes or K/M/G/T, default 2G",
    )  # fmt: skip


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number; pass one in {low}..{high}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}; pass one in that range")
        return value

    parse.__name__ = f"int_in_{low}_{high}"
    return parse


def positive_ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of whole numbers ≥ 1, e.g. 10,30,100."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of positive integers; pass e.g. 10,30,100"
        )
    return values


def float_in(low: float, high: float, *, low_open: bool = True, high_open: bool = False):
    """A number in the interval from low to high (open or closed at each end)."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; pass one in {shown}") from None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"{text} is outside {shown}; pass a number in {shown}")
        return value

    parse.__name__ = "number"
    return parse


def name_store(text: str) -> tuple[str, str]:
    """NAME=STORE, both non-empty."""
    name, sep, store = text.partition("=")
    if not sep or not name.strip() or not store.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=STORE; pass e.g. --cls books=stores/books-cls.zarr"
        )
    return name.strip(), store.strip()


def device_spec(text: str) -> str:
    """auto, cpu, cuda or cuda:N (resolved, and checked against the machine, by the command)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text.strip().lower()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; pass auto, cpu, cuda or cuda:N")
    return text.strip().lower()


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_spec, default="auto", help=DEVICE_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurosel", description=DESCRIPTION)
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND", title="commands"
    )

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=description)
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
        return p

    ex = command(
        "extract",
        "text → Zarr store of per-layer pooled activations",
        "Run an encoder over the texts of INPUT and store every requested layer's pooled activations "
        "in a Zarr store; re-running resumes an interrupted extraction and does nothing after a "
        "finished one.",
    )
    ex.add_argument("input", help="CSV, TSV, JSONL or Parquet file with a text column")
    ex.add_argument(
        "--model", required=True, help="local model directory, Hugging Face hub id, or all-MiniLM-L6-v2"
    )
    ex.add_argument("--out", required=True, help="output store directory")
    add_extract_options(ex)
    add_cluster_options(ex)
    ex.set_defaults(func=commands.cmd_extract)

    info = command(
        "info",
        "what a store holds",
        "Print a store's shape, layers, model, labels, progress and any non-finite values.",
    )
    info.add_argument("store", help="store directory made by neurosel extract")
    info.add_argument("--json", action="store_true", help="print the store's metadata as JSON instead")
    info.add_argument(
        "--verify", action="store_true", help="also read every file and check it (as neurosel verify)"
    )
    info.set_defaults(func=commands.cmd_info)

    ver = command(
        "verify",
        "check every file of a store against what its commits recorded",
        "Read every file of a store once (activations of the committed rows, labels and other "
        "per-example arrays, saved statistics and importances) and check each against the manifest "
        "its commits wrote: presence, size, checksum, and that every chunk decodes. Prints one line "
        "per problem; exit code 2 if there is any.",
    )
    ver.add_argument("store", help="store directory made by neurosel extract")
    ver.set_defaults(func=commands.cmd_verify)

    st = command(
        "stats",
        "per-neuron statistics in one streaming pass (saved in the store)",
        "Compute per-neuron statistics (moments, per-class means, AUROC, ANOVA F or Pearson r) in one "
        "streaming pass, save them in the store, and print the most distinctive neurons.",
    )
    st.add_argument("store", help="store directory made by neurosel extract")
    st.add_argument(
        "--by", choices=["label", "none"], default="label", help="per class, or ignore the labels"
    )
    add_device(st)
    st.add_argument("--no-auroc", dest="auroc", action="store_false", help="skip the AUROC histograms")
    st.add_argument(
        "--auroc-bits",
        type=int_in(1, 24),
        default=None,
        help="AUROC histogram resolution, 1..24 (default: 16, exact for float16, fewer if memory is short)",
    )
    st.add_argument(
        "--memory-mb", type=positive_int, default=512, help="MiB of decoded activations in flight"
    )
    add_cluster_options(st)
    st.add_argument(
        "--allow-partial", action="store_true", help="use the committed rows of an incomplete store"
    )
    st.add_argument("--recompute", action="store_true", help="ignore statistics saved in the store")
    st.add_argument("--top", type=positive_int, default=10, help="neurons to list")
    st.set_defaults(func=commands.cmd_stats)

    sel = command(
        "select",
        "rank neurons by a sparse-logistic path and print the top k",
        "Rank every neuron of a labelled store by when it enters a sparse-logistic (or lasso) "
        "regularisation path, saved in the store, then select neurons and print the path, the "
        "per-layer fingerprint and the first neurons.",
    )
    sel.add_argument("store", help="labelled store directory made by neurosel extract")
    sel.add_argument(
        "--k", type=positive_int, default=300, help="neurons to select (the path runs until k enter)"
    )
    sel.add_argument(
        "--method",
        choices=["l1-logistic", "lasso"],
        default=None,
        help="importance method (default: l1-logistic for class labels, lasso for numeric labels)",
    )
    sel.add_argument(
        "--penalty",
        choices=["l1", "group-l1"],
        default=None,
        help="sparsity penalty (default: group-l1 for more than two classes, else l1)",
    )
    sel.add_argument(
        "--l1-ratio", type=float_in(0, 1), default=1.0, help="1 = L1, below 1 = elastic net; in (0, 1]"
    )
    sel.add_argument(
        "--rule",
        choices=["top-k", "support", "mass"],
        default="top-k",
        help="top-k: first k to enter; support: non-zero at the λ closest to k; mass: fewest holding --mass",
    )
    sel.add_argument(
        "--mass", type=float_in(0, 1), default=0.5, help="weight fraction for --rule mass; in (0, 1]"
    )
    sel.add_argument("--n-lambdas", type=positive_int, default=20, help="λ values on the path")
    add_cluster_options(sel)
    sel.add_argument(
        "--recompute", action="store_true", help="ignore a path saved in the store and solve it again"
    )
    sel.add_argument(
        "--lambda-ratio",
        type=float_in(0, 1, high_open=True),
        default=1e-2,
        help="last λ / λ_max; in (0, 1)",
    )
    sel.add_argument(
        "--tol",
        type=float_in(0, float("inf"), high_open=True),
        default=1e-6,
        help="duality-gap tolerance (units of log 2)",
    )
    sel.add_argument(
        "--class-weight", choices=["balanced"], default=None, help="reweight classes to equal total weight"
    )
    add_device(sel)
    sel.add_argument("--json", metavar="OUT", help="also write the selection and path summary as JSON")
    sel.set_defaults(func=commands.cmd_select)

    tr = command(
        "transfer",
        "unsupervised transfer with selected neurons, against baselines",
        "Select neurons on labelled source stores and score an unsupervised classifier on each target "
        "with them, against all neurons, random neurons, statistics and scikit-learn baselines.",
    )
    tr.add_argument("--source", action="append", required=True, help="labelled source store (repeatable)")
    tr.add_argument("--target", action="append", required=True, help="target store (repeatable)")
    tr.add_argument(
        "--k", type=positive_int, default=300, help="headline k (several sources: chosen from --ks)"
    )
    tr.add_argument(
        "--ks", type=positive_ints, default=DEFAULT_KS, help="comma-separated k values for the curves"
    )
    tr.add_argument("--seeds", type=positive_int, default=5, help="random-k baseline seeds")
    add_ranking(tr)
    add_in_core_bytes(tr)
    tr.add_argument(
        "--cls",
        type=name_store,
        action="append",
        default=[],
        metavar="NAME=STORE",
        help="last-layer CLS store of a domain, named by its store directory without .zarr (repeatable)",
    )
    add_device(tr)
    add_cluster_options(tr)
    tr.add_argument("--json", metavar="OUT", help="also write the TransferResult(s) as JSON")
    tr.set_defaults(func=commands.cmd_transfer)

    fp = command(
        "fingerprint",
        "percentage of each store's top-k neurons per layer, and their similarity",
        "Select each store's top-k neurons, print the percentage of them in each layer (the "
        "fingerprint) and the similarity matrix of the fingerprints.",
    )
    fp.add_argument("stores", nargs="+", help="labelled stores with the same layers")
    fp.add_argument("--k", type=positive_int, default=300, help="neurons selected per store")
    fp.add_argument(
        "--measure", choices=["cosine", "pearson", "jsd"], default="cosine", help="similarity measure"
    )
    fp.add_argument(
        "--method", choices=["l1-logistic", "lasso"], default="l1-logistic", help="importance method"
    )
    add_device(fp)
    add_cluster_options(fp)
    fp.add_argument("--json", metavar="OUT", default=None, help="also write the fingerprints as JSON")
    fp.set_defaults(func=commands.cmd_fingerprint)

    rep = command(
        "report",
        "re-render a results JSON as a Markdown report with plots",
        "Render a results.json written by an experiment into report.md, results.json and the plots.",
    )
    rep.add_argument("results", help="results.json written by an experiment")
    rep.add_argument("--out", required=True, help="folder for report.md, results.json and the PNGs")
    rep.set_defaults(func=commands.cmd_report)

    exp = command(
        "experiment",
        "the whole method on a shared dataset, with the report",
        "Extract every domain of a shared dataset, transfer between every pair and from all others to "
        "each, fingerprint the domains and write the report; re-running resumes.",
    )
    exp.add_argument("name", choices=["amazon", "sst-cr", "sick", "stsb"], help="the dataset")
    exp.add_argument("--data-dir", required=True, help="the datasets directory (e.g. ../shared/datasets)")
    exp.add_argument("--out", default=None, help="output folder (default: experiments/<name>)")
    exp.add_argument("--model", default=DEMO_MODEL, help="encoder")
    exp.add_argument("--k", type=positive_int, default=300, help="headline k")
    exp.add_argument(
        "--ks", type=positive_ints, default=DEFAULT_KS, help="comma-separated k values for the curves"
    )
    exp.add_argument("--seeds", type=positive_int, default=5, help="random-k baseline seeds")
    add_ranking(exp)
    add_in_core_bytes(exp)
    exp.add_argument("--max-length", type=positive_int, default=256, help="tokens per text (pair)")
    exp.add_argument(
        "--max-per-class",
        type=positive_int,
        default=None,
        help="balanced subsample per domain (default: all examples)",
    )
    exp.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="at most this many examples per domain (default: all)",
    )
    exp.add_argument("--no-cls", dest="cls_baseline", action="store_false", help="skip the CLS baseline")
    exp.add_argument(
        "--stsb-threshold", type=float, default=None, help="stsb only: binarise the scores at this value"
    )
    add_device(exp)
    add_cluster_options(exp)
    exp.set_defaults(func=commands.cmd_experiment)

    demo = command(
        "demo",
        "run the pipeline on the corpus shipped with neurosel",
        "Run the whole pipeline (extract, statistics, transfer, fingerprints, report) on 360 short "
        "reviews shipped with neurosel, in three domains.",
    )
    demo.add_argument("--out", default="demo-out", help="folder for the stores, transfers and report")
    demo.add_argument("--model", default=DEMO_MODEL, help="encoder")
    add_device(demo)
    demo.set_defaults(func=commands.cmd_demo)

    bench = command(
        "bench",
        "benchmarks against baselines (writes bench/results/)",
        "Run the benchmark NAME with ARGS on your own model, device or store and exit with its code; "
        "`neurosel bench NAME --help` lists its options and their defaults. The benchmarks: "
        + "; ".join(f"{name}: {b.description}" for name, b in BENCHMARKS.items())
        + ".",
    )
    bench.add_argument("name", choices=list(BENCHMARKS), help="the benchmark")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(func=commands.cmd_bench)
    return parser


def add_ranking(p: argparse.ArgumentParser) -> None:
    """--ranking: how a single source ranks the neurons it selects (docs/method.md, section 1)."""
    p.add_argument(
        "--ranking", choices=RANKINGS, default=RANKINGS[0],
        help="how a single source ranks its neurons: auto (for classes stability selection and Fisher "
        "ranks averaged, for numeric scores entry into an elastic-net path), those two, stability "
        "selection, entry into the sparse path, or the Fisher score",
    )  # fmt: skip


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """--scheduler / --workers: run the command's work as tasks on a Dask cluster."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="Dask scheduler to run the work on (tcp://…)"
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="run the work on a local Dask cluster of N worker processes",
    )


def add_extract_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="column of the texts")
    p.add_argument("--pair-column", default=None, help="column of the second texts of sentence pairs")
    p.add_argument(
        "--label-column",
        default="label",
        help="column of the labels (if the default column is absent: unlabelled)",
    )
    p.add_argument(
        "--label-kind",
        choices=["auto", "class", "numeric"],
        default="auto",
        help="auto: integers are class ids, other numbers numeric targets, words class names (numbers "
        "mixed with words are refused); class: every label a class name; numeric: every label a number",
    )
    p.add_argument("--pooling", default="mean", help="mean, cls, max or tokens")
    p.add_argument("--layers", default="all", help="all, last, or comma-separated layer numbers")
    p.add_argument("--dtype", default="float16", help="storage: float16, float32 or bfloat16")
    p.add_argument("--precision", default="auto", help="compute: auto, fp32, bf16 or fp16")
    p.add_argument("--max-length", type=positive_int, default=128, help="tokens per text, truncated")
    add_device(p)
    p.add_argument("--compression", default="none", help="activation chunks: none or zstd")
    p.add_argument(
        "--token-budget",
        type=positive_int,
        default=None,
        help="padded tokens per batch (default: 8192 on the CPU, 65536 on a GPU)",
    )
    p.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="replace an existing store at --out instead of resuming it",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="mark the store complete even if activations overflowed",
    )
    p.add_argument(
        "--no-texts",
        dest="store_texts",
        action="store_false",
        help="do not keep the texts in the store",
    )


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each command, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv`; an unknown argument is reported by the command's parser (naming its --help)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        owner = subcommands(parser).get(getattr(args, "command", None) or "", parser)
        owner.error(f"unrecognized arguments: {' '.join(extras)}")
    return args
