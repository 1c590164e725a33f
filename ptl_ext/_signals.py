"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM: nothing half-written, a one-line resume hint, a clear status.

Both signals stop the process where it is, as a ``KeyboardInterrupt`` (:class:`Interrupted` for SIGTERM).
What is on disk stays whole: every output is written atomically (:mod:`ptl_ext._io`), so the exception's
unwinding only removes the temporary of a write in progress, and the run folder's lock is released. A
resume continues from the last checkpoint (``last.pt``: the last saved epoch; the epoch in progress is
trained again, exactly as after a kill). Exit status: ``128 + signal number``, 130 for SIGINT and 143 for
SIGTERM, as shells report them.
"""

import contextlib
import os
import signal
import threading

__all__ = ["Interrupted", "exit_status", "interruption_message", "stop_on_sigterm"]


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by signal ``signum`` (a ``KeyboardInterrupt``, so cleanup runs alike)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_sigterm():
    """Within the block SIGTERM raises :class:`Interrupted` in the main thread (as SIGINT raises
    ``KeyboardInterrupt``); the previous handler is restored after. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signum(exc):
    return getattr(exc, "signum", signal.SIGINT)


def exit_status(exc):
    """``128 + signal number`` of a ``KeyboardInterrupt`` (130 for Ctrl-C) or an :class:`Interrupted` (143)."""
    return 128 + int(_signum(exc))


def interruption_message(exc, out_dir=None):
    """One line saying which signal stopped the process and, for a run folder ``out_dir``, how to go on."""
    name = signal.Signals(_signum(exc)).name
    if out_dir is None:
        return f"interrupted by {name}"
    last = os.path.join(out_dir, "last.pt")
    if os.path.isfile(last):
        return (
            f"interrupted by {name}: {last} holds the last saved epoch (the epoch in progress is not kept); "
            "continue with the same command and --resume"
        )
    return f"interrupted by {name} before the first checkpoint: nothing to resume in {out_dir}; run it again"
