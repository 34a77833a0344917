"""SIGTERM and SIGHUP as an exception, so that a stopped command cleans up.

By default SIGTERM and SIGHUP end Python at once: no ``finally`` runs, and an
:class:`kirmatch.output.OutputPlan` cannot remove its temporary files. Inside
:func:`raise_on_signals` they raise :class:`Terminated` instead (a
``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception``
swallows it). Every ``with OutputPlan(...)`` block on the way out aborts, and
the command line exits with 128 + the signal number (143 for SIGTERM, 129 for
SIGHUP). SIGKILL cannot be caught; the temporary files it leaves are removed by
the next run that writes the same outputs.

This lives in ``cli/``: the library never installs signal handlers.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["HANDLED_SIGNALS", "Terminated", "raise_on_signals"]

#: The signals turned into :class:`Terminated` (SIGHUP does not exist on Windows).
HANDLED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """The process was asked to stop by a signal (SIGTERM or SIGHUP).

    >>> exc = Terminated(signal.SIGTERM)
    >>> str(exc), exc.exit_code
    ('terminated by SIGTERM', 143)
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.name = signal.Signals(signum).name
        super().__init__(f"terminated by {self.name}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a death by signal: 128 + its number."""
        return 128 + self.signum


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`.

    Only the first signal raises: one arriving while the cleanup of the first
    runs is ignored, so that the cleanup finishes. A signal that is being
    ignored when the block starts (``nohup`` ignores SIGHUP) stays ignored.
    The previous handlers come back when the block ends. Outside the main
    thread (where Python cannot set handlers) the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        raise Terminated(signum)

    previous = {}
    try:
        for sig in HANDLED_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
