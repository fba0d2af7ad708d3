"""Stop a sending process between messages, never inside the handoff window.

The outbox's one loss window is the moment between committing "handoff" (this message counts as sent if
we die) and giving the server the message's end (SMTP's final "."). A process asked to stop (SIGTERM; the
delivery process also gets it when its parent dies) exits at once when it is outside that window, and
right after the final "." when it is inside; only SIGKILL of the sending process itself can still land
in the window, which is two system calls wide."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

_inside = False
_exit_status: int | None = None  # a stop asked for inside the window: exit with this when it closes


@contextmanager
def handoff_window() -> Iterator[None]:
    """Around "commit handoff, then hand the message's end to the server"."""
    global _inside
    _inside = True
    try:
        yield
    finally:
        _inside = False
        if _exit_status is not None:
            os._exit(_exit_status)


def _stop(signum: int, _frame: object) -> None:
    global _exit_status
    if _inside:
        _exit_status = 128 + signum
    else:
        # Like a crash, on purpose: what this process claimed and did not hand over is taken back by the
        # next sender (its pid is dead), and nothing half-done is committed.
        os._exit(128 + signum)


def exit_between_messages(*signals: int) -> None:
    """Make ``signals`` (default SIGTERM) stop this process at the next safe point (main thread only)."""
    for signum in signals or (signal.SIGTERM,):
        signal.signal(signum, _stop)
