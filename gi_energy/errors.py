"""The project's own exceptions.

Each one maps to an exit status in the command line: bad input is 2, a failure at run
time is 1. Library callers catch them by type.
"""

from __future__ import annotations

import difflib
import signal


class GiEnergyError(Exception):
    """Base of every error gi-energy raises on purpose."""

    exit_code = 1


class ProblemError(GiEnergyError):
    """A problem file (or a Problem built in Python) is invalid.

    The message names the file, the key path and what was expected, in one line.
    """

    exit_code = 2

    def __init__(self, source: str, key: str, expected: str):
        self.source = source
        self.key = key
        self.expected = expected
        where = f"{source}: " if source else ""
        keypart = f"[{key}] " if key else ""
        super().__init__(f"{where}{keypart}{expected}")

    def __reduce__(self):
        # Pickled by its fields, not by the joined message: raised in a worker process, it
        # must arrive in the parent as itself (the default rebuilds it from ``args``).
        return (type(self), (self.source, self.key, self.expected))


class UsageError(GiEnergyError):
    """Bad command-line input that is not a problem file (paths, run directories)."""

    exit_code = 2


class MeterError(GiEnergyError):
    """A hardware meter failed; vendor errors are translated into this."""


class RunInterrupted(GiEnergyError):
    """Something outside the run cut it off (the Dask scheduler went away): a failure at
    run time (exit status 1) after which the run is marked "interrupted", not "failed",
    and resumes like one stopped by Ctrl-C once the cause is gone."""


class Terminated(KeyboardInterrupt):  # noqa: N818 - an interrupt, like KeyboardInterrupt
    """SIGTERM, raised in the main thread by the command line's handler.

    A KeyboardInterrupt, so that every path that saves a checkpoint and marks the run
    "interrupted" on Ctrl-C does the same on SIGTERM; the exit status is 128 + 15.
    """

    signal_number = int(signal.SIGTERM)
    exit_code = 128 + int(signal.SIGTERM)

    def __init__(self, message: str = "terminated (SIGTERM)"):
        super().__init__(message)


def did_you_mean(word: str, choices) -> str:
    """' (did you mean "x"?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type's name when it has none): a library's
    error said in one line of ours."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
