"""The `neurosel` argument parser: one module per command adds its own (`add_parser`), in the order
`neurosel --help` lists them; the options they share are in `_options`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from neurosel.cli import (
    _bench,
    _demo,
    _experiment,
    _export,
    _extract,
    _fingerprint,
    _info,
    _report,
    _select,
    _stats,
    _transfer,
    _verify,
)
from neurosel.cli._options import QUIET_HELP, Parser

COMMANDS = (
    _extract,
    _info,
    _verify,
    _export,
    _stats,
    _select,
    _transfer,
    _fingerprint,
    _report,
    _experiment,
    _demo,
    _bench,
)
DESCRIPTION = (
    "Activation cache and neuron scoring for neuron-level transfer learning with BERT-family encoders: "
    "extract, score, select, transfer, fingerprint, report. Exit codes: 0 success, 2 bad input or "
    "usage (one line on stderr), 1 internal error (a bug), 130 interrupted."
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="neurosel", description=DESCRIPTION)
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="COMMAND", title="commands"
    )
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


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
