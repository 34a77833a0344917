"""Progress that tells the truth (issue 14): the stages of batch, persons and rank as
callback events, the rate of the last event equal to the summary's, and nothing on
stderr when it is not a terminal or with --quiet."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from kirmatch.cli.main import app
from kirmatch.cli.progress import ProgressDisplay, finished_line
from rich.console import Console
from typer.testing import CliRunner

from kirmatch.batch import run_batch
from kirmatch.people import load_people
from kirmatch.persons import run_persons
from kirmatch.progress import Progress, Stages
from kirmatch.ranking import builtin_policy, rank_cohort
from kirmatch.tabular import TableReader

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
G, P, A = EXAMPLES / "genotypes.csv", EXAMPLES / "pairs.csv", EXAMPLES / "antibodies.csv"


def _stages(events: list[Progress]) -> list[str]:
    return list(dict.fromkeys(e.stage for e in events))


def _check_stage_shape(events: list[Progress]) -> None:
    """Each stage opens with done=0, counts up, and closes with one finished event."""
    for stage in _stages(events):
        mine = [e for e in events if e.stage == stage]
        assert mine[0].done == 0 and not mine[0].finished, stage
        assert mine[-1].finished and sum(e.finished for e in mine) == 1, stage
        dones = [e.done for e in mine]
        assert dones == sorted(dones), stage
        seconds = [e.seconds for e in mine]
        assert seconds == sorted(seconds), stage
        if mine[0].total is not None:
            assert mine[-1].done == mine[0].total, stage


def test_batch_stages_and_rate(tmp_path: Path) -> None:
    events: list[Progress] = []
    s = run_batch(G, P, tmp_path / "out.csv", antibodies=A, chunk_rows=4,
                  progress=events.append)
    assert _stages(events) == ["inputs", "people", "pairs"]
    _check_stage_shape(events)
    people = next(e for e in events if e.stage == "people")
    m = re.fullmatch(r"preparing 19 people \((\d+) distinct HLA typings, (\d+) KIR\)",
                     people.detail)
    assert m, people.detail
    assert people.total == int(m[1]) + int(m[2])     # the bar counts what the line says
    assert next(e for e in events if e.stage == "pairs").detail == "assessing 14 pairs"
    assert [e.done for e in events if e.stage == "pairs"] == [0, 4, 8, 12, 14]
    last = events[-1]
    assert (last.done, last.total, last.unit) == (s.rows_in, 14, "pairs")
    assert list(s.stage_seconds) == ["inputs", "people", "pairs"]
    assert last.seconds == s.stage_seconds["pairs"] and last.rate == s.rate  # one quantity
    assert sum(s.stage_seconds.values()) <= s.seconds


def test_persons_and_rank_stages(tmp_path: Path, tables) -> None:
    events: list[Progress] = []
    s = run_persons(G, tmp_path / "persons.csv", progress=events.append)
    assert _stages(events) == ["inputs", "people", "persons"]
    _check_stage_shape(events)
    assert events[-1].done == s.rows_in == 19 and events[-1].rate == s.rate
    events.clear()
    from kirmatch.options import Options

    rank_cohort(load_people(G, tables), TableReader(P, what="pairs").read(),
                policy=builtin_policy("kir-first"), options=Options(), tables=tables,
                progress=events.append)
    assert _stages(events) == ["people", "pairs", "rows", "ranking"]
    assert (events[-1].unit, events[-1].done) == ("recipients", 5)  # R1, R2, P1, P2, P3
    _check_stage_shape(events)


def test_stages_send_about_a_hundred_events() -> None:
    events: list[Progress] = []
    stages = Stages(events.append)
    stages.start("pairs", total=1_000_000, unit="pairs")
    for done in range(0, 1_000_001, 1000):
        stages.update(done)
    stages.finish()
    assert 100 <= len(events) <= 102
    assert events[-1].finished and events[-1].done == 1_000_000
    assert Stages(None).callback is None  # no callback: timing only


def test_display_log_lines_and_delay() -> None:
    out = io.StringIO()
    with ProgressDisplay(Console(file=out, width=80), delay=0) as display:
        display(Progress("people", 0, 10, "typings", 0.0, "preparing 4 people (9 distinct "
                                                           "HLA typings, 1 KIR)"))
        display(Progress("people", 10, 10, "typings", 0.5, "", finished=True))
        display(Progress("pairs", 0, 200_000, "pairs", 0.0))
        display(Progress("pairs", 200_000, 200_000, "pairs", 3.0, finished=True))
    text = out.getvalue()
    assert "preparing 4 people (9 distinct HLA typings, 1 KIR)…" in text
    assert "  people: 10 typings in 0.5 s (20 typings/s)" in text
    assert finished_line(Progress("pairs", 200_000, 200_000, "pairs", 3.0, finished=True)) \
        in text and "66,667 pairs/s" in text
    out = io.StringIO()
    with ProgressDisplay(Console(file=out, width=80), delay=3600) as display:
        display(Progress("pairs", 0, 10, "pairs", 0.0))
        display(Progress("pairs", 10, 10, "pairs", 0.01, finished=True))
    assert out.getvalue() == ""  # a quick run draws nothing


def test_display_appears_for_a_silent_stage_and_leaves_no_bar_on_abort() -> None:
    """A stage that sends no update (reading a large file) still shows its line
    once the delay has passed; a run that stops with an error leaves no running
    bar behind (its last frame has no bar), and the error is not masked."""
    import time

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True)
    with pytest.raises(KeyboardInterrupt):
        with ProgressDisplay(console, delay=0.2) as display:
            display(Progress("inputs", 0, None, "people", 0.0, "reading big.csv"))
            time.sleep(0.6)                  # no event: the timer shows the stage
            assert "reading big.csv…" in out.getvalue()
            display(Progress("pairs", 5, 10, "pairs", 0.1))
            raise KeyboardInterrupt
    last_frame = out.getvalue().rsplit("\r", 1)[-1]
    assert "5/10 pairs" not in last_frame


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_no_progress_off_a_terminal(tmp_path: Path, quiet: bool) -> None:
    res = CliRunner().invoke(app, ["batch", "-g", str(G), "-p", str(P), "-o",
                                   str(tmp_path / "o.csv"), *(["-q"] if quiet else [])])
    assert res.exit_code == 0, res.output
    if quiet:
        assert res.stderr == ""
    else:
        assert "━" not in res.stderr and "\r" not in res.stderr
        m = re.search(r"pairs ([\d.]+) s; ([\d,]+) pairs/s\)", res.stderr)
        assert m, res.stderr


def test_an_estimated_total_ends_on_the_count() -> None:
    """The pairs total is a line count (an estimate: blank lines, quoted line
    breaks); the stage's last event carries the true count as its total, so the
    bar ends full and its rate is the summary's."""
    events: list[Progress] = []
    clock = iter([0.0, 1.0, 2.0]).__next__
    stages = Stages(events.append, clock=clock)
    stages.start("pairs", total=5, unit="pairs")
    stages.update(2)
    stages.finish()
    assert [(e.done, e.total, e.finished) for e in events] == [(0, 5, False), (2, 5, False),
                                                                 (2, 2, True)]
    assert events[-1].rate == 1.0
