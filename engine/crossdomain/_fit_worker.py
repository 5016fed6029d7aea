"""A classifier worker process (engine/crossdomain/_fit_pool.py): `python -m
neurosel.crossdomain._fit_worker` reads fits from its standard input and writes their results to
its standard output, one framed pickle each, until its input ends.

A request is (estimator, data, y, kind); the answer is ("ok", result, warnings) or ("error",
exception, []). Each fit runs on one BLAS thread, as in the process that asked. Anything a library
prints goes to standard error: standard output carries the answers only.

A plain interpreter and a module of its own, not multiprocessing: a multiprocessing worker imports
the user's main script again (spawn and forkserver do), which runs an unguarded script's work once
more in every worker.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import BinaryIO


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer fits until the requests end."""
    from neurosel.crossdomain._fit_pool import receive, send
    from neurosel.devices import single_threaded_blas

    while True:
        try:
            estimator, data, y, kind = receive(requests)
        except EOFError:
            return
        with warnings.catch_warnings(record=True) as caught, single_threaded_blas():
            warnings.simplefilter("always")
            try:
                answer = ("ok", estimator(data, y, kind))
            except Exception as error:  # the caller raises it, as a fit in its own process would
                answer = ("error", error)
        send(answers, (*answer, [(str(w.message), w.category) for w in caught]))


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to standard error
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
