"""Ctrl-C while a solver runs native code: turn SIGINT into a flag the solver polls, then a KeyboardInterrupt.

Python raises KeyboardInterrupt only between bytecodes. A solver busy in C++ (HiGHS) runs no bytecode except its
callbacks, and raising inside a callback that C++ called would unwind through the solver. So while a solve runs,
`solver_section` swaps the SIGINT handler for one that only sets a process-wide flag; the solver's callback reads
`interrupt_requested()` and stops the search, and on leaving the section the interrupt is raised as an ordinary
KeyboardInterrupt, which the CLI turns into "interrupted" and exit 130 (README "Exit codes").
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()


def interrupt_requested() -> bool:
    """True once SIGINT arrived inside a solver section (process-wide; solver callbacks poll it)."""
    return _requested.is_set()


def request_interrupt() -> None:
    """Record an interrupt that a solver consumed itself (CP-SAT catches SIGINT and returns early)."""
    _requested.set()


def _set_flag(_signum: int, _frame: FrameType | None) -> None:
    _requested.set()


@contextmanager
def solver_section() -> Iterator[None]:
    """Within: SIGINT sets the flag instead of raising. On exit: KeyboardInterrupt if it was set.

    Only the main thread can own signal handlers; elsewhere, or where SIGINT is ignored (pool workers, which the
    parent stops), or replaced by someone else's handler, the section changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        raise_if_requested()
        return
    signal.signal(signal.SIGINT, _set_flag)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    raise_if_requested()


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt (once) for an interrupt a solver section deferred."""
    if _requested.is_set():
        _requested.clear()
        raise KeyboardInterrupt


def ignore_sigint() -> None:
    """Process-pool initializer: a worker ignores Ctrl-C; the parent cancels and stops the pool instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
