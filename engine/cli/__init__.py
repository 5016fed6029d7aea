"""The `neurosel` command line: argument parsing and every line printed for people.

Commands call the public API (`engine`), print results on stdout and progress and logs on stderr.
Exit codes: 0 success, 2 bad input or usage (one line on stderr), 1 an internal error (a bug),
130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

from engine.cli._parser import build_parser
from engine.errors import InputError

log = logging.getLogger("neurosel")

__all__ = ["build_parser", "main"]


class _StderrHandler(logging.StreamHandler):
    """Log lines to whatever sys.stderr is when they are emitted (it may be replaced after setup)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("neurosel: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    _quiet_third_party()
    try:
        return args.func(args)
    except InputError as e:
        print(f"neurosel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurosel: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            "neurosel: internal error (a bug): please report it with the trace above",
            file=sys.stderr,
        )
        return 1


def _quiet_third_party() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

