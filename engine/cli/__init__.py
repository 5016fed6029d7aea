"""The `neurosel` command line: argument parsing and every line printed for people.

Commands call the public API (`engine`), print results on stdout and progress and logs on stderr
(`-q`: results only). Exit codes: 0 success, 2 bad input or usage (one line on stderr naming the
input and the fix, no traceback), 1 an internal error (a bug: the trace is printed), 130
interrupted, 141 stdout closed early (e.g. piped into `head`; nothing is printed).

Bad input is an `InputError`, or an OSError that output paths cause (no permission, a file where a
folder goes, a full disk); any other exception is a bug.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from neurosel.cli._format import describe_os_error, one_line
from neurosel.cli._parser import build_parser, parse_args
from neurosel.errors import InputError

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
    args = parse_args(build_parser(), argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("neurosel: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    _quiet_third_party()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            warnings.filterwarnings("always", module=r"neurosel(\.|$)")  # shown, whatever -W says
            code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except InputError as e:
        print(f"neurosel: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurosel: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except OSError as e:
        message = describe_os_error(e)
        if message is None:
            return _bug()
        print(f"neurosel: error: {one_line(message)}", file=sys.stderr)
        return 2
    except Exception:
        return _bug()


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """neurosel's own warnings (SupportWarning, ConvergenceWarning, ...) as one line each, as a person
    reads them: `neurosel: warning: <message>`, without Python's source-line echo; other packages'
    warnings keep Python's form."""
    if category.__module__.startswith("neurosel"):
        print(f"neurosel: warning: {one_line(str(message))}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), file=sys.stderr)


def _bug() -> int:
    traceback.print_exc()
    print("neurosel: internal error (a bug): please report it with the trace above", file=sys.stderr)
    return 1


def _drop_stdout() -> None:
    """The reader of stdout went away: send what is still buffered to /dev/null, so that Python's
    flush at exit neither fails nor prints a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


def _quiet_third_party() -> None:
    """transformers' own logs and bars off (without importing it when the command does not)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
