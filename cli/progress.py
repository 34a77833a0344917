"""The progress display of long commands (``batch``, ``persons``, ``rank``, ``convert``).

The library sends :class:`kirmatch.progress.Progress` events; this draws them on
stderr with rich: a line saying what a stage works on (``preparing 20,000
people (812 distinct HLA typings, 9 KIR)…``), then a bar with the count, the
rate and the time left, all computed by the library over the stage's own wall
time, so that the bar ends on the rate the summary line prints
(:attr:`kirmatch.batch.BatchSummary.rate`).

Nothing is drawn when stderr is not a terminal or with ``--quiet``
(:func:`showing_progress` gives None), nor for a run that ends within
:data:`DELAY` seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from kirmatch.progress import Progress

__all__ = ["DELAY", "ProgressDisplay", "showing_progress", "stage_summary"]

#: A display appears only once a run has taken this long (seconds): quick runs
#: print nothing but their result.
DELAY = 1.0

#: How each stage is named on its bar.
STAGE_NAMES = {"inputs": "reading", "people": "people", "pairs": "pairs", "persons": "persons",
               "rows": "rows", "ranking": "ranking", "kir": "KIR", "hla": "HLA"}


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class ProgressDisplay:
    """Draws progress events on a rich console (stderr); use as a context manager
    and pass the instance as the ``progress`` callback."""

    def __init__(self, console: Any = None, *, delay: float = DELAY) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        self.console = console or Console(stderr=True)
        self.delay = delay
        self._created = time.monotonic()
        self._live = False
        self._tasks: dict[str, Any] = {}
        self._pending: list[Progress] = []
        # a stage that sends no update for a while (reading a large file) still
        # appears after the delay: a timer shows what is pending
        self._lock = threading.Lock()
        self._timer = threading.Timer(delay, self._wake)
        self._timer.daemon = True
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, width=8)),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[count]}", table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[rate]}", table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[time]}", table_column=Column(no_wrap=True)),
            console=self.console, transient=False, auto_refresh=True, expand=True)

    def __enter__(self) -> ProgressDisplay:
        self._timer.start()
        return self

    def _wake(self) -> None:
        with self._lock:
            if not self._live and self._pending:
                self._go_live()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            if self._live:
                if exc_type is not None:        # a run that stopped leaves no running bar
                    for task in self._tasks.values():
                        self.progress.remove_task(task)
                self.progress.stop()
                self._live = False

    def __call__(self, event: Progress) -> None:
        with self._lock:
            if not self._live:
                if time.monotonic() - self._created < self.delay:
                    self._pending = [e for e in self._pending if e.stage != event.stage]
                    self._pending.append(event)
                    return
                self._go_live()
            self._show(event)

    def _go_live(self) -> None:
        """Start drawing, with what ran before the display appeared."""
        self.progress.start()
        self._live = True
        for earlier in self._pending:
            self._show(earlier)
        self._pending = []

    def _show(self, e: Progress) -> None:
        """A running stage is a bar; a finished one a line of the log above the bars."""
        task = self._tasks.get(e.stage)
        if task is None:
            if e.detail:
                self.progress.console.print(f"{e.detail}…", highlight=False)
            task = self._tasks[e.stage] = self.progress.add_task(
                STAGE_NAMES.get(e.stage, e.stage), total=e.total, **_fields(e))
        if e.finished:
            self.progress.remove_task(self._tasks.pop(e.stage))
            self.progress.console.print(finished_line(e), highlight=False)
            return
        self.progress.update(task, completed=e.done, total=e.total, **_fields(e))


def _count(e: Progress) -> str:
    return f"{e.done:,}/{e.total:,} {e.unit}" if e.total is not None else f"{e.done:,} {e.unit}"


def _rate(e: Progress) -> str:
    return f"{e.rate:,.0f} {e.unit}/s" if e.rate is not None else ""


def _fields(e: Progress) -> dict[str, str]:
    return {"count": _count(e), "rate": _rate(e),
            "time": f"ETA {_clock(e.eta)}" if e.eta is not None else f"{e.seconds:.0f} s"}


def finished_line(e: Progress) -> str:
    """The log line of a finished stage.

    >>> finished_line(Progress("pairs", 200_000, 200_000, "pairs", 3.0, finished=True))
    '  pairs: 200,000 pairs in 3.0 s (66,667 pairs/s)'
    """
    rate = _rate(e)
    return (f"  {STAGE_NAMES.get(e.stage, e.stage)}: {e.done:,} {e.unit} in {e.seconds:.1f} s"
            + (f" ({rate})" if rate else ""))


@contextlib.contextmanager
def showing_progress(quiet: bool) -> Iterator[ProgressDisplay | None]:
    """A display on stderr for the block, or None with ``--quiet`` or when stderr
    is not a terminal (then the library sends no events at all)."""
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    with ProgressDisplay(console) as display:
        yield display


def stage_summary(stage_seconds: dict[str, float]) -> str:
    """Each stage's wall time, in order.

    >>> stage_summary({"inputs": 0.3, "people": 1.2, "pairs": 2.0})
    'reading 0.3 s, people 1.2 s, pairs 2.0 s'
    """
    return ", ".join(f"{STAGE_NAMES.get(s, s)} {t:.1f} s" for s, t in stage_seconds.items())
