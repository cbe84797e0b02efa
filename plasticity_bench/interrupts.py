"""Ctrl-C stops a training run at the next step boundary, not wherever Python happens to be.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside a library's thread
hand-off and leave it waiting. Seen here (py-spy, a Ctrl-C'd workflow under load that hung
for minutes, tests/test_failures.py): the trainer's ``close()`` of TensorBoard's event
writer joined the writer thread, which sat in its queue wait until ``flush_secs`` (120 s)
ran out: its wake-up was lost. Python's ``Condition.notify`` loses one that way when a
KeyboardInterrupt falls between releasing a waiter and removing it from the queue: the
next notify releases that stale waiter instead of the one really waiting.

So while a run trains, the first SIGINT only asks it to stop: the loop calls
``stop_if_requested()`` between steps, which raises KeyboardInterrupt there, and the run's
records stay as a kill leaves them (status running, the last checkpoint), so the next
start resumes. A second SIGINT interrupts at once, for a step that takes too long.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_stop_requested = False


def stop_if_requested() -> None:
    """Raise KeyboardInterrupt if a SIGINT came since ``stop_at_step_boundaries`` began."""
    if _stop_requested:
        raise KeyboardInterrupt


@contextmanager
def stop_at_step_boundaries() -> Iterator[None]:
    """Within: the first SIGINT is held until ``stop_if_requested()``. On leaving normally
    (training ended before that call), a held SIGINT is raised then. Outside the main thread,
    or where SIGINT is not Python's default handler (ignored, or someone else's), nothing
    changes."""
    global _stop_requested
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def request_stop(signum, frame) -> None:
        global _stop_requested
        _stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    _stop_requested = False
    signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        requested, _stop_requested = _stop_requested, False
    if requested:
        raise KeyboardInterrupt
