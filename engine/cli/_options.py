"""What every command's parser shares: the parser and help formatter, the value types, and the
options several commands take (--quiet, --device, --ranking, --in-core-bytes, --scheduler/--workers).

Values are checked here by `type=` functions, so that a malformed value (`--ks a,b`, `--seeds -1`,
`--cls foo`) is a usage error: one line naming the option and the fix, exit code 2, before any work.
Defaults and choices the API shares come from `neurosel.defaults`, which imports nothing heavy.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence

from neurosel.defaults import DEFAULT_KS, DEFAULT_RANKING, IN_CORE_BYTES, RANKINGS, SEEDS

DEVICE_HELP = "where to compute: auto (a GPU when one works, else the CPU), cpu, cuda or cuda:N"
QUIET_HELP = "print only results (and errors): no log lines or progress bars"
KS_TEXT = ",".join(map(str, DEFAULT_KS))  # parsed by --ks's type, so --help shows it as typed


class Formatter(argparse.HelpFormatter):
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


class Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, naming the command's --help, with exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"neurosel: error: {message} (see {self.prog} --help)\n")


def add_command(sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A command's parser under `sub` (the subparsers of `neurosel`), with its own -q/--quiet."""
    p = sub.add_parser(name, help=summary, description=description)
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
    return p


def either(values: Sequence[str]) -> str:
    """Choices as help text: `a, b or c`."""
    return " or ".join([", ".join(values[:-1]), values[-1]] if len(values) > 1 else values)


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


# Options several commands take.


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=device_spec, default="auto", help=DEVICE_HELP)


def add_in_core_bytes(p: argparse.ArgumentParser) -> None:
    """--in-core-bytes: how large a store the transfer reads whole."""
    p.add_argument(
        "--in-core-bytes", type=byte_size, default=IN_CORE_BYTES, metavar="SIZE",
        help="stores whose float32 activations fit this are read whole, larger ones are streamed "
        "(docs/scale-out.md); bytes or K/M/G/T, default 2G",
    )  # fmt: skip


def add_ks_and_seeds(p: argparse.ArgumentParser) -> None:
    """--ks and --seeds: the curves' k values and the random-k baseline's seeds (transfer, experiment)."""
    p.add_argument(
        "--ks", type=positive_ints, default=KS_TEXT, help="comma-separated k values for the curves"
    )
    p.add_argument("--seeds", type=positive_int, default=SEEDS, help="random-k baseline seeds")


def add_ranking(p: argparse.ArgumentParser) -> None:
    """--ranking: how a single source ranks the neurons it selects (docs/method.md, section 1)."""
    p.add_argument(
        "--ranking", choices=RANKINGS, default=DEFAULT_RANKING,
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
