"""Ctrl-C while a solver runs native code: turn SIGINT into a flag the solver polls, then a KeyboardInterrupt.

Python raises KeyboardInterrupt only between bytecodes. A solver busy in C++ (HiGHS) runs no bytecode except its
callbacks, and raising inside a callback that C++ called would unwind through the solver. So while a solve runs,
`solver_section` swaps the SIGINT handler for one that only sets a process-wide flag; the solver's callback reads
`interrupt_requested()` and stops the search, and on leaving the section the interrupt is raised as an ordinary
KeyboardInterrupt, which the CLI turns into "interrupted" and exit 130 (README "Exit codes").
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
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


_QUIT = b"\0"  # no signal has number 0: the byte that tells the watcher to leave


@contextmanager
def stop_on_sigint(stop: Callable[[], None]) -> Iterator[None]:
    """Within: a SIGINT calls `stop()` at once from a watcher thread and sets the flag.

    For a solver that runs native code for a long time and offers a thread-safe stop (CP-SAT's `stop_search`) but
    no callback that polls. Python runs signal handlers only on the main thread between bytecodes, which a native
    solve never reaches; the wakeup fd is written by the C-level handler the moment the signal arrives, so a thread
    blocked on reading it wakes up then. The solver must not catch SIGINT itself (CP-SAT: catch_sigint_signal off),
    or Python's handler — and so the wakeup fd — never sees it. Elsewhere than the main thread, or where SIGINT is
    ignored or left to the OS (pool workers), nothing changes. Another wakeup fd (an asyncio loop's) is set aside
    for the section and put back after it."""
    handler = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or handler in (signal.SIG_IGN, signal.SIG_DFL, None):
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def watch() -> None:
        while True:
            data = os.read(read_fd, 64)
            if bytes([signal.SIGINT]) in data:
                _requested.set()
                stop()
            if not data or _QUIT in data:
                return

    watcher = threading.Thread(target=watch, name="sigint-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, _QUIT)
        watcher.join()
        os.close(read_fd)
        os.close(write_fd)


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt (once) for an interrupt a solver section deferred."""
    if _requested.is_set():
        _requested.clear()
        raise KeyboardInterrupt


def ignore_sigint() -> None:
    """Process-pool initializer: a worker ignores Ctrl-C; the parent cancels and stops the pool instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
