"""Progress of long runs as events; the library never draws anything.

A long function (:func:`kirmatch.batch.run_batch`, :func:`kirmatch.persons.run_persons`,
:func:`kirmatch.ranking.rank_cohort`) takes ``progress``, a callable that
receives :class:`Progress` events: one when a stage starts (``done=0``), some
while it runs, and one when it ends (``finished=True``). A stage is one kind of
work with its own unit: ``people`` (the distinct typings of the genotypes,
resolved once each), ``pairs``, ``persons``, ``ranking``. Its ``seconds`` are
measured by the library from the start of the stage, so that a display and
the run's summary (:attr:`kirmatch.batch.BatchSummary.stage_seconds`) show the
same rate over the same wall time.

>>> events = []
>>> clock = iter([0.0, 0.5, 1.0, 2.0]).__next__
>>> stages = Stages(events.append, clock=clock)
>>> stages.start("pairs", total=200, unit="pairs")
>>> stages.update(100)
>>> stages.finish(200)
>>> [(e.stage, e.done, e.total, e.seconds, e.finished) for e in events]
[('pairs', 0, 200, 0.0, False), ('pairs', 100, 200, 0.5, False), ('pairs', 200, 200, 1.0, True)]
>>> events[-1].rate, stages.seconds
(200.0, {'pairs': 1.0})
>>> events[1].eta
0.5
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback", "Stages"]


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress event of a stage.

    ``done`` of ``total`` units (``total`` None when unknown) after ``seconds``
    in the stage; ``detail`` says what the stage works on (``"20,000 people
    (812 distinct HLA typings, 9 KIR)"``).
    """

    stage: str
    done: int
    total: int | None
    unit: str
    seconds: float
    detail: str = ""
    finished: bool = False

    @property
    def rate(self) -> float | None:
        """Units per second over the stage so far (None before any unit is done)."""
        if self.done <= 0 or self.seconds <= 0:
            return None
        return self.done / self.seconds

    @property
    def eta(self) -> float | None:
        """Seconds left at :attr:`rate` (None when the total or the rate is unknown)."""
        rate = self.rate
        if self.total is None or rate is None:
            return None
        return max(self.total - self.done, 0) / rate


#: What a ``progress`` argument is called with.
ProgressCallback = Callable[[Progress], None]


class Stages:
    """Times the stages of a run and sends their events to ``callback`` (if any).

    Updates are passed on when they move the stage by at least 1% of its total
    (or every one when the total is unknown), so that a stage of a million small
    steps sends about a hundred events; the sequence depends on the counts only,
    never on timing.
    """

    def __init__(self, callback: ProgressCallback | None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.callback = callback
        self.clock = clock
        #: Wall time of each finished stage, in seconds.
        self.seconds: dict[str, float] = {}
        self._stage: str | None = None
        self._total: int | None = None
        self._unit = ""
        self._detail = ""
        self._t0 = 0.0
        self._sent = 0
        self._done = 0
        self._step = 1

    def start(self, stage: str, *, total: int | None = None, unit: str = "",
              detail: str = "") -> None:
        """Begin ``stage`` (ending the current one)."""
        self.finish()
        self._stage, self._total, self._unit, self._detail = stage, total, unit, detail
        self._done = self._sent = 0
        self._step = max(1, (total or 0) // 100)
        self._t0 = self.clock()
        self._emit(0, 0.0)

    def update(self, done: int) -> None:
        """``done`` units of the current stage are done."""
        if self._stage is None:
            return
        self._done = done
        if self.callback is None or done - self._sent < self._step:
            return
        if self._total is None or done < self._total:  # finish() sends the last one
            self._emit(done, self.clock() - self._t0)

    def finish(self, done: int | None = None) -> None:
        """End the current stage (``done``: its final count, default the last update)."""
        if self._stage is None:
            return
        seconds = self.clock() - self._t0
        self.seconds[self._stage] = seconds
        final = self._done if done is None else done
        if self._total is not None:
            self._total = final     # an estimated total (line count) ends on the truth
        self._emit(final, seconds, finished=True)
        self._stage = None

    def _emit(self, done: int, seconds: float, *, finished: bool = False) -> None:
        self._sent = done
        if self.callback is not None and self._stage is not None:
            self.callback(Progress(self._stage, done, self._total, self._unit, seconds,
                                   self._detail, finished))
