"""What the CLI does when a command fails in a way the user did not cause: one line and an exit code of its own.

Exit codes (README "Exit codes"): 4 for an unexpected exception (a bug, never a traceback unless asked for with
`--debug` or HETPLACE_DEBUG=1), 130 for Ctrl-C, and a reader that stops early (`hetplace … | head`) is not an
error: the output it did not read is dropped and the command keeps its own exit code.
"""

from __future__ import annotations

import os
import sys
import traceback

DEBUG_ENV = "HETPLACE_DEBUG"
_debug = False


def set_debug(value: bool) -> None:
    global _debug
    _debug = value


def debug_requested() -> bool:
    """`--debug` was given or HETPLACE_DEBUG is set to something other than 0/false/no/empty."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return _debug or env not in ("", "0", "false", "no")


def unexpected_error_line(exc: BaseException) -> str:
    """One line naming the exception and where to get the full story."""
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return (
        f"internal error: {last}. This is a bug in hetplace, not in your input; rerun with --debug (or "
        f"{DEBUG_ENV}=1) for the traceback and report it."
    )


def drop_unread_stdout() -> None:
    """The reader of stdout went away (`| head`): point stdout at /dev/null so the interpreter's final flush does
    not fail again (and exit 120 with a second message)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests capture it): nothing to do
        pass


def flush_stdout() -> None:
    """Flush now, inside the command's error handling, rather than at interpreter exit (BrokenPipeError there
    cannot be caught)."""
    sys.stdout.flush()
