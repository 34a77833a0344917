"""kirmatch.output and the CLI's error mapping.

No output over an input (any spelling or link), all-or-nothing commits,
stale temporary files, signals, formula neutralisation for every Arrow type,
XLSX limits, system faults (disk full, no permission), and the exit code and
one-line message of every kind of failure.
"""

from __future__ import annotations

import csv
import doctest
import errno
import gzip
import importlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import kirmatch.output as output
from kirmatch.cli.main import handle_errors
from kirmatch.cli.signals import Terminated, raise_on_signals
from kirmatch.errors import EnvironmentFault, InputSchemaError, UsageError
from kirmatch.output import (
    XLSX_MAX_CELL_CHARS,
    OutputPlan,
    TableWriter,
    neutralise_formulas,
    remove_stale_temps,
    write_table,
    write_text,
)

HELPER = Path(__file__).with_name("plan_writer.py")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    p = tmp_path / "pairs.csv"
    p.write_text("recipient_id,donor_id\nR1,D1\n")
    return p


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("name", ["kirmatch.output", "kirmatch.cli.signals",
                                  "kirmatch.cli.main"])
def test_doctests(name: str) -> None:
    res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


def test_io_reexports_the_writers() -> None:
    import kirmatch.io as kio

    assert kio.TableWriter is TableWriter and kio.write_table is write_table
    assert kio.neutralise_formulas is neutralise_formulas
    assert kio.FORMULA_PREFIXES == ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------------------
# No output over an input
# ---------------------------------------------------------------------------

def _same_path(tmp: Path, pairs: Path) -> tuple[str, str]:
    return str(pairs), str(pairs)


def _relative_vs_absolute(tmp: Path, pairs: Path) -> tuple[str, str]:
    return "pairs.csv", str(tmp / "pairs.csv")


def _dot_dot(tmp: Path, pairs: Path) -> tuple[str, str]:
    return str(pairs), str(tmp / "nowhere" / ".." / "pairs.csv")


def _symlink(tmp: Path, pairs: Path) -> tuple[str, str]:
    (tmp / "link.csv").symlink_to(pairs)
    return str(pairs), str(tmp / "link.csv")


def _symlinked_folder(tmp: Path, pairs: Path) -> tuple[str, str]:
    (tmp / "alias").symlink_to(tmp, target_is_directory=True)
    return str(pairs), str(tmp / "alias" / "pairs.csv")


def _hard_link(tmp: Path, pairs: Path) -> tuple[str, str]:
    os.link(pairs, tmp / "hard.csv")
    return str(pairs), str(tmp / "hard.csv")


@pytest.mark.parametrize("spell", [_same_path, _relative_vs_absolute, _dot_dot, _symlink,
                                   _symlinked_folder, _hard_link],
                         ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("role", ["output", "report"])
def test_output_over_input_is_a_usage_error(tmp_path: Path, pairs: Path, monkeypatch: Any,
                                            spell: Callable[..., tuple[str, str]],
                                            role: str) -> None:
    monkeypatch.chdir(tmp_path)
    given_in, given_out = spell(tmp_path, pairs)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=r"the " + role + " file .* would overwrite an input: "
                                         "it is the input file") as err:
        OutputPlan({"errors": tmp_path / "err.csv", role: given_out},
                   inputs=[None, given_in])
    assert repr(given_out) in str(err.value) and repr(given_in) in str(err.value)
    assert snapshot(tmp_path) == before  # input untouched, nothing created


def test_write_text_checks_inputs(tmp_path: Path, pairs: Path) -> None:
    with pytest.raises(UsageError, match="would overwrite an input"):
        write_text(pairs, "x", inputs=[pairs])
    assert pairs.read_text() == "recipient_id,donor_id\nR1,D1\n"


@pytest.mark.parametrize("spell", ["same", "relative", "symlink", "hard link"])
def test_two_outputs_that_coincide(tmp_path: Path, monkeypatch: Any, spell: str) -> None:
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "out.csv"
    second: str | Path = first
    if spell == "relative":
        second = "out.csv"
    elif spell in ("symlink", "hard link"):
        first.write_text("old\n")
        second = tmp_path / "other.csv"
        if spell == "symlink":
            second.symlink_to(first)
        else:
            os.link(first, second)
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=r"the output file .* and the errors file .* are the "
                                         "same file"):
        OutputPlan({"output": first, "errors": second})
    assert snapshot(tmp_path) == before


def test_output_inside_an_input_folder(tmp_path: Path) -> None:
    calls = tmp_path / "ping"
    calls.mkdir()
    (calls / "finalAlleleCalls.csv").write_text("x\n")
    with pytest.raises(UsageError, match="inside the input folder"):
        OutputPlan({"output": calls / "finalAlleleCalls.csv"}, inputs=[calls])
    with pytest.raises(UsageError, match="inside the input folder"):
        OutputPlan({"output": calls / "new.csv"}, inputs=[calls])
    OutputPlan({"output": tmp_path / "new.csv"}, inputs=[calls]).abort()


def test_output_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder"):
        OutputPlan({"output": tmp_path})


# ---------------------------------------------------------------------------
# All or nothing
# ---------------------------------------------------------------------------

CHUNK = pa.table({"recipient_id": ["R1", "R2"], "score": [1, 2]})


@pytest.fixture
def previous(tmp_path: Path, pairs: Path) -> dict[str, bytes]:
    """The files of a previous run, and the folder's bytes."""
    (tmp_path / "out.csv").write_text("previous output\n")
    (tmp_path / "err.csv").write_text("previous errors\n")
    (tmp_path / "out.csv.provenance.json").write_text('{"run": "previous"}\n')
    return snapshot(tmp_path)


def new_plan(tmp_path: Path, pairs: Path) -> OutputPlan:
    return OutputPlan({"output": tmp_path / "out.csv", "errors": tmp_path / "err.csv",
                       "provenance": tmp_path / "out.csv.provenance.json"}, inputs=[pairs])


def write_run(plan: OutputPlan) -> None:
    plan.table_writer("output").write(CHUNK)
    plan.write_table("errors", CHUNK.slice(0, 1))
    plan.write_text("provenance", '{"run": "new"}\n')


def test_commit_replaces_every_file(tmp_path: Path, pairs: Path,
                                    previous: dict[str, bytes]) -> None:
    os.chmod(tmp_path / "out.csv", 0o640)
    with new_plan(tmp_path, pairs) as plan:
        write_run(plan)
        assert snapshot(tmp_path) != previous  # temporaries exist ...
        assert (tmp_path / "out.csv").read_text() == "previous output\n"  # ... beside the old
    assert (tmp_path / "out.csv").read_text() == "recipient_id,score\nR1,1\nR2,2\n"
    assert (tmp_path / "err.csv").read_text() == "recipient_id,score\nR1,1\n"
    assert (tmp_path / "out.csv.provenance.json").read_text() == '{"run": "new"}\n'
    assert hidden(tmp_path) == []
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o640  # permissions kept


@pytest.mark.parametrize("failure", [RuntimeError("bug"), KeyboardInterrupt(),
                                     Terminated(signal.SIGTERM)], ids=type)
def test_failure_before_commit_leaves_previous_run(tmp_path: Path, pairs: Path,
                                                   previous: dict[str, bytes],
                                                   failure: BaseException) -> None:
    with pytest.raises(type(failure)), new_plan(tmp_path, pairs) as plan:
        write_run(plan)
        raise failure
    assert snapshot(tmp_path) == previous
    assert hidden(tmp_path) == []


class _FullDisk(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(memoryview(data))
        if n > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= n
        return n


def test_disk_full_mid_write(tmp_path: Path, pairs: Path, previous: dict[str, bytes],
                             monkeypatch: Any) -> None:
    monkeypatch.setattr(output, "open", lambda *a, **k: _FullDisk(30), raising=False)
    with pytest.raises(EnvironmentFault, match=r"cannot write '.*out\.csv': No space left on "
                                               "device") as err, new_plan(tmp_path, pairs) as plan:
        writer = plan.table_writer("output")
        for _ in range(10):
            writer.write(CHUNK)
    assert err.value.errno == errno.ENOSPC and err.value.code == "environment_error"
    assert snapshot(tmp_path) == previous


def test_disk_full_when_flushing(tmp_path: Path, pairs: Path, previous: dict[str, bytes],
                                 monkeypatch: Any) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(EnvironmentFault, match=r"cannot write '.*out\.csv': No space"), \
            new_plan(tmp_path, pairs) as plan:
        write_run(plan)
    assert snapshot(tmp_path) == previous


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_failed_move_puts_previous_files_back(tmp_path: Path, pairs: Path,
                                              previous: dict[str, bytes], monkeypatch: Any,
                                              fail_at: int) -> None:
    real_replace = os.replace
    calls = []

    def replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    names = ["out.csv", "err.csv", "out.csv.provenance.json"]
    with pytest.raises(EnvironmentFault, match=rf"cannot write '.*{names[fail_at - 1]}': "
                                               "Read-only file system"), \
            new_plan(tmp_path, pairs) as plan:
        write_run(plan)
    assert snapshot(tmp_path) == previous
    assert hidden(tmp_path) == []


def test_failed_move_removes_new_files_that_had_no_previous(tmp_path: Path, pairs: Path,
                                                            monkeypatch: Any) -> None:
    (tmp_path / "out.csv").write_text("previous output\n")
    before = snapshot(tmp_path)
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(EnvironmentFault), new_plan(tmp_path, pairs) as plan:
        write_run(plan)
    assert snapshot(tmp_path) == before


def test_every_planned_output_must_be_written(tmp_path: Path, pairs: Path,
                                              previous: dict[str, bytes]) -> None:
    with pytest.raises(RuntimeError, match="nothing was written for the errors"), \
            new_plan(tmp_path, pairs) as plan:
        plan.write_table("output", CHUNK)
        plan.write_text("provenance", "{}")
    assert snapshot(tmp_path) == previous


def test_plan_is_closed_after_abort_and_commit(tmp_path: Path) -> None:
    with OutputPlan({"output": None, "report": None}, inputs=[tmp_path]) as nothing:
        assert nothing.roles == ()
    plan = OutputPlan({"output": tmp_path / "a.csv", "report": None})
    assert plan.roles == ("output",)
    plan.abort()
    with pytest.raises(RuntimeError, match="aborted"):
        plan.commit()
    with pytest.raises(RuntimeError, match="aborted"):
        plan.write_text("output", "x")
    plan = OutputPlan({"output": tmp_path / "a.csv"})
    plan.write_text("output", "x")
    with pytest.raises(RuntimeError, match="already being written"):
        plan.write_text("output", "y")
    with pytest.raises(KeyError, match="no output 'errors'"):
        plan.table_writer("errors")
    plan.commit()
    plan.commit()  # harmless
    plan.abort()  # harmless after commit
    assert (tmp_path / "a.csv").read_text() == "x"


def test_writer_failure_aborts_its_plan(tmp_path: Path) -> None:
    plan = OutputPlan({"output": tmp_path / "a.csv", "provenance": tmp_path / "a.json"})
    writer = plan.table_writer("output")
    writer.write(CHUNK)
    with pytest.raises(ValueError, match="same columns"):
        writer.write(CHUNK.drop_columns(["score"]))
    with pytest.raises(RuntimeError, match="aborted"):
        plan.commit()
    assert list(tmp_path.iterdir()) == []


def test_missing_folders_are_created_and_removed_on_abort(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.csv"
    OutputPlan({"output": target}).abort()
    assert not (tmp_path / "a").exists()
    write_table(CHUNK, target)
    assert target.read_text().startswith("recipient_id,score\n")


def test_standalone_table_writer_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.tsv.gz"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), TableWriter(target) as w:
        w.write(CHUNK)
        raise RuntimeError
    assert target.read_bytes() == b"previous" and hidden(tmp_path) == []
    with TableWriter(target) as w:
        w.write(CHUNK)
    assert gzip.decompress(target.read_bytes()) == b"recipient_id\tscore\nR1\t1\nR2\t2\n"
    w = TableWriter(tmp_path / "empty.parquet")
    w.close(empty=CHUNK.schema)
    assert pq.read_table(tmp_path / "empty.parquet").schema.names == ["recipient_id", "score"]


# ---------------------------------------------------------------------------
# Stale temporary files
# ---------------------------------------------------------------------------

def test_stale_temps_of_dead_processes_are_removed(tmp_path: Path, dead_pid: int) -> None:
    host = output._HOST_TAG
    stale = [f".out.csv.kirmatch-{dead_pid}-{host}0badf00d.partial",
             f".out.csv.kirmatch-{dead_pid}-{host}0badf00d.previous",
             f".out.csv.{dead_pid}.partial"]  # an earlier kirmatch version's name
    kept = [f".out.csv.kirmatch-{os.getpid()}-{host}00000001.partial",  # this process
            f".out.csv.kirmatch-{os.getppid()}-{host}00000002.partial",  # a live process
            f".out.csv.kirmatch-{dead_pid}-0123abcd00000003.partial",  # another machine
            f".other.csv.kirmatch-{dead_pid}-{host}00000004.partial",  # another output
            "out.csv"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    plan = OutputPlan({"output": tmp_path / "out.csv"})
    assert sorted(p.name for p in plan.removed_stale) == sorted(stale)
    plan.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_temps(tmp_path / "out.csv") == ()


def _start_helper(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(HELPER), str(tmp_path / "out.csv"), str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"helper did not start: {proc.returncode} {err.decode()}")
        time.sleep(0.02)
    ready.unlink()
    return proc, ready


def test_sigkill_leaves_a_temp_that_the_next_run_removes(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("previous\n")
    proc, _ = _start_helper(tmp_path)
    proc.kill()
    proc.communicate()
    left = hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".out.csv.kirmatch-{proc.pid}-")
    assert (tmp_path / left[0]).stat().st_size > 0
    plan = OutputPlan({"output": tmp_path / "out.csv"})
    assert [p.name for p in plan.removed_stale] == left
    plan.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert (tmp_path / "out.csv").read_text() == "previous\n"


# ---------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGTERM", "SIGHUP"])
def test_signal_mid_write_leaves_previous_output_and_no_temp(tmp_path: Path, sig: int,
                                                             code: int) -> None:
    (tmp_path / "out.csv").write_text("previous\n")
    proc, _ = _start_helper(tmp_path)
    assert len(hidden(tmp_path)) == 1
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()
    assert err.decode() == f"error: terminated by {signal.Signals(sig).name}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert (tmp_path / "out.csv").read_text() == "previous\n"


def test_sigterm_in_a_command_aborts_its_plan(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.command()
    @handle_errors
    def run() -> None:
        with OutputPlan({"output": tmp_path / "out.csv"}) as plan:
            plan.table_writer("output").write(CHUNK)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # the signal arrives first

    before = signal.getsignal(signal.SIGTERM)
    res = CliRunner().invoke(app, [])
    assert res.exit_code == 143 and res.stderr == "error: terminated by SIGTERM\n"
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_ignored_signals_stay_ignored() -> None:
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with raise_on_signals():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGHUP, old)


def test_only_the_first_signal_raises() -> None:
    caught = []
    with raise_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except Terminated as exc:
            caught.append(exc.signum)
            os.kill(os.getpid(), signal.SIGTERM)  # during cleanup: ignored
            time.sleep(0.05)
    assert caught == [signal.SIGTERM]


# ---------------------------------------------------------------------------
# Formula neutralisation
# ---------------------------------------------------------------------------

TEXT = ['=HYPERLINK("http://evil.example","x")', "@SUM(1)", "+1", "-2", "\t=1", "\r=1",
        "ok", "", None]
NEUTRAL = ["'" + v if v and v[0] in "=+-@\t\r" else v for v in TEXT]


def text_column(kind: str, values: list[str | None]) -> pa.Array | pa.ChunkedArray:
    if kind == "categorical":  # as pandas hands it over (dictionary<string, int8>)
        frame = pd.DataFrame({"c": pd.Categorical(values)})
        col = pa.Table.from_pandas(frame, preserve_index=False).column("c")
        assert pa.types.is_dictionary(col.type)
        return col
    raw = [None if v is None else v.encode() for v in values]
    return {
        "string": lambda: pa.array(values, pa.string()),
        "large_string": lambda: pa.array(values, pa.large_string()),
        "string_view": lambda: pa.array(values, pa.string_view()),
        "binary": lambda: pa.array(raw, pa.binary()),
        "large_binary": lambda: pa.array(raw, pa.large_binary()),
        "binary_view": lambda: pa.array(raw, pa.binary_view()),
    }[kind]()


KINDS = ["string", "large_string", "string_view", "categorical", "binary", "large_binary",
         "binary_view"]


def mixed_table(kind: str, values: list[str | None]) -> pa.Table:
    n = len(values)
    return pa.table({"note": text_column(kind, values), "n": pa.array([-1] * n),
                     "x": pa.array([-1.5] * n), "error": pa.array(["=computed"] * n)})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz"])
def test_neutralised_in_text_outputs(tmp_path: Path, kind: str, suffix: str) -> None:
    target = tmp_path / f"out{suffix}"
    write_table(mixed_table(kind, TEXT), target, neutralise=["note", "n", "x"])
    raw = gzip.decompress(target.read_bytes()) if suffix.endswith(".gz") else \
        target.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode(), newline=""),
                           delimiter="\t" if ".tsv" in suffix else ","))
    assert rows[0] == ["note", "n", "x", "error"]
    assert [r[0] for r in rows[1:]] == ["" if v is None else v for v in NEUTRAL]
    assert {(r[1], r[2], r[3]) for r in rows[1:]} == {("-1", "-1.5", "=computed")}


@pytest.mark.parametrize("kind", KINDS)
def test_neutralised_in_xlsx(tmp_path: Path, kind: str) -> None:
    from openpyxl import load_workbook

    values = [v for v in TEXT if v is None or "\r" not in v]  # CR: see the XLSX tests
    target = tmp_path / "out.xlsx"
    write_table(mixed_table(kind, values), target, neutralise=["note", "n"])
    ws = load_workbook(target, read_only=True).worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[0] == ["note", "n", "x", "error"]
    assert [r[0] for r in rows[1:]] == [None if not v else "'" + v if v[0] in "=+-@\t"
                                        else v for v in values]
    assert {(r[1], r[2], r[3]) for r in rows[1:]} == {(-1, -1.5, "=computed")}


@pytest.mark.parametrize("kind", KINDS)
def test_parquet_is_written_unchanged(tmp_path: Path, kind: str) -> None:
    table = mixed_table(kind, TEXT)
    write_table(table, tmp_path / "out.parquet", neutralise=["note", "n"])
    back = pq.read_table(tmp_path / "out.parquet")
    assert back.column("note").to_pylist() == table.column("note").to_pylist()
    assert back.column("error").to_pylist() == table.column("error").to_pylist()


def test_pandas_categorical_through_write_table(tmp_path: Path) -> None:
    frame = pd.DataFrame({"donor_id": pd.Categorical(["=cmd|' /C calc'!A0", "D2"]),
                          "score": [-3, 4]})
    write_table(frame, tmp_path / "out.csv", neutralise=["donor_id", "score"])
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "donor_id,score", "'=cmd|' /C calc'!A0,-3", "D2,4"]


def test_header_of_a_neutralised_column(tmp_path: Path) -> None:
    write_table(pa.table({"=cmd": ["a"], "=computed": ["b"]}), tmp_path / "out.csv",
                neutralise=["=cmd"])
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "'=cmd,=computed"


def test_neutralise_keeps_categorical_codes() -> None:
    col = text_column("categorical", ["=a", "b", "=a", None])
    out = neutralise_formulas(col)
    assert pa.types.is_dictionary(out.type)
    assert out.to_pylist() == ["'=a", "b", "'=a", None]
    assert neutralise_formulas(pa.chunked_array([], pa.string())).to_pylist() == []
    ints = pa.array([-1, 2])
    assert neutralise_formulas(ints) is ints


def test_undecodable_binary_names_column_and_row(tmp_path: Path) -> None:
    with pytest.raises(InputSchemaError, match=r"column 'raw', data row 5: .*not UTF-8 text "
                                               r"\(byte 0xff\)") as err, \
            TableWriter(tmp_path / "out.csv", neutralise=["raw"]) as w:
        w.write(pa.table({"raw": pa.array([b"a", b"b", b"c"])}))
        w.write(pa.table({"raw": pa.array([b"d", b"\xff"])}))
    assert err.value.row == 5 and err.value.column == "raw"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputSchemaError, match="column 'raw', data row 1"):
        write_table(pa.table({"raw": pa.array([b"\xfe"])}), tmp_path / "out.csv")


def test_nested_values_in_a_text_output(tmp_path: Path) -> None:
    with pytest.raises(InputSchemaError, match=r"column 'l' holds list<.*write Parquet"):
        write_table(pa.table({"l": [[1], [2]]}), tmp_path / "out.csv")


# ---------------------------------------------------------------------------
# XLSX limits
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("cell", "kind", "reason"), [
    ("x" * (XLSX_MAX_CELL_CHARS + 1), "string", "32,768 characters; an XLSX cell holds at "
                                                "most 32,767"),
    ("x" * (XLSX_MAX_CELL_CHARS + 1), "categorical", "32,768 characters"),
    ("\U0001F600" * 16_384, "string", "32,768 characters"),  # UTF-16: two units each
    ("a\x01b", "string", "control character U\\+0001"),
    ("a\x01b", "binary", "control character U\\+0001"),
    ("line\r\nbreak", "string", "carriage return"),
    ("\r=1", "string", "carriage return"),
    ("\uffff", "large_string", "U\\+FFFF"),
], ids=["long", "long categorical", "long emoji", "control", "control binary", "CRLF",
        "CR prefix", "U+FFFF"])
def test_xlsx_cell_it_cannot_hold(tmp_path: Path, cell: str, kind: str, reason: str) -> None:
    target = tmp_path / "out.xlsx"
    target.write_bytes(b"previous")
    values = ["ok", "fine", cell]
    with pytest.raises(InputSchemaError, match=r"out\.xlsx: data row 5, column 'notes': "
                                               f"the cell holds .*{reason}") as err, \
            TableWriter(target, neutralise=["notes"]) as w:
        w.write(pa.table({"id": ["a", "b"], "notes": ["x", "y"]}))
        w.write(pa.table({"id": ["c", "d", "e"], "notes": text_column(kind, values)}))
    assert "write CSV or Parquet" in str(err.value)
    assert err.value.row == 5 and err.value.column == "notes"
    assert target.read_bytes() == b"previous" and hidden(tmp_path) == []


def test_xlsx_keeps_a_cell_of_the_largest_size(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    cell = "y" * XLSX_MAX_CELL_CHARS
    write_table(pa.table({"notes": [cell, "tab\tand\nline feed"]}), tmp_path / "out.xlsx")
    ws = load_workbook(tmp_path / "out.xlsx", read_only=True).worksheets[0]
    assert [r[0] for r in ws.iter_rows(values_only=True)] == ["notes", cell,
                                                              "tab\tand\nline feed"]


@pytest.mark.parametrize(("column", "match"), [
    (pa.array([1, 2**53 + 1]), "integer 9007199254740993 has more digits"),
    (pa.array([1.0, float("inf")]), "value inf cannot be stored"),
])
def test_xlsx_numbers_it_cannot_hold(tmp_path: Path, column: pa.Array, match: str) -> None:
    with pytest.raises(InputSchemaError, match=f"data row 2, column 'v': the {match}"):
        write_table(pa.table({"v": column}), tmp_path / "out.xlsx")


def test_xlsx_nan_is_an_empty_cell(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    write_table(pa.table({"v": [1.5, float("nan"), None], "k": ["a", "b", "c"]}),
                tmp_path / "out.xlsx")
    ws = load_workbook(tmp_path / "out.xlsx", read_only=True).worksheets[0]
    assert list(ws.iter_rows(values_only=True)) == [("v", "k"), (1.5, "a"), (None, "b"),
                                                    (None, "c")]


def test_xlsx_row_limit_stays_an_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(output, "XLSX_MAX_ROWS", 3)
    with pytest.raises(InputSchemaError, match="XLSX holds at most 2 data rows"):
        write_table(pa.table({"v": [1, 2, 3]}), tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Faults of the system
# ---------------------------------------------------------------------------

def _refuse(err: int, when: Callable[[Any], bool]) -> Callable[..., Any]:
    real = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if when(path) and flags & os.O_CREAT:
            raise OSError(err, os.strerror(err), str(path))
        return real(path, flags, *args, **kwargs)

    return fake_open


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS, errno.ENOSPC])
def test_unwritable_folder_fails_before_any_work(tmp_path: Path, monkeypatch: Any,
                                                 err: int) -> None:
    monkeypatch.setattr(os, "open", _refuse(err, lambda p: str(p).endswith(".partial")))
    with pytest.raises(EnvironmentFault,
                       match=rf"^cannot write '.*out\.csv': {os.strerror(err)}$") as exc:
        OutputPlan({"output": tmp_path / "out.csv", "errors": tmp_path / "sub" / "err.csv"})
    assert exc.value.errno == err and exc.value.path == str(tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root may write into any folder")
def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(EnvironmentFault, match=r"cannot write '.*out\.csv': Permission"):
            write_table(CHUNK, folder / "out.csv")
    finally:
        folder.chmod(0o700)


def test_read_only_existing_output_is_not_replaced(tmp_path: Path, monkeypatch: Any) -> None:
    target = tmp_path / "out.csv"
    target.write_text("keep me\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == target
                        else real_access(p, mode))
    with pytest.raises(EnvironmentFault, match="the existing file is read-only"):
        write_text(target, "new")
    assert target.read_text() == "keep me\n" and hidden(tmp_path) == []


def test_folder_that_cannot_be_created(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(EnvironmentFault, match=r"cannot create the folder '.*file\.txt/sub' "
                                               r"for the output file: '.*file\.txt' is not a "
                                               "folder"):
        OutputPlan({"output": tmp_path / "file.txt" / "sub" / "out.csv"})

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(EnvironmentFault, match=r"cannot create the folder '.*new/deeper': "
                                               "Permission denied"):
        OutputPlan({"output": tmp_path / "new" / "deeper" / "out.csv"})


def test_disk_full_when_saving_xlsx(tmp_path: Path, monkeypatch: Any) -> None:
    from openpyxl import Workbook

    def save(self: Any, path: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Workbook, "save", save)
    with pytest.raises(EnvironmentFault, match=r"cannot write '.*out\.xlsx': No space left"):
        write_table(CHUNK, tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# The command line: exit codes and one-line messages
# ---------------------------------------------------------------------------

def _raise(exc: BaseException) -> Callable[[], None]:
    def run() -> None:
        raise exc
    return run


CLI_CASES = [
    ("usage", UsageError("the output file 'p.csv' would overwrite an input: it is the input "
                         "file 'p.csv'"), 2,
     "error: the output file 'p.csv' would overwrite an input: it is the input file 'p.csv'"),
    ("input", InputSchemaError("pairs file p.csv has no 'donor_id'\ncolumn"), 1,
     "error: pairs file p.csv has no 'donor_id' column"),
    ("fault", EnvironmentFault("cannot write '/data/out.csv': No space left on device",
                               path="/data/out.csv", errno=errno.ENOSPC), 3,
     "error: cannot write '/data/out.csv': No space left on device"),
    ("enospc", OSError(errno.ENOSPC, "No space left on device", "/data/out.csv"), 3,
     "error: cannot write '/data/out.csv': No space left on device"),
    ("eacces", PermissionError(errno.EACCES, "Permission denied", "/data"), 3,
     "error: cannot access '/data': Permission denied"),
    ("enoent", FileNotFoundError(errno.ENOENT, "No such file or directory", "/gone/x.csv"), 3,
     "error: cannot access '/gone/x.csv': No such file or directory"),
    ("memory", MemoryError(), 3, "error: out of memory; free memory or give a smaller input "
                                 "(batch: a smaller --chunk-size)"),
    ("bug", ValueError("oops"), 4, "error: internal error (ValueError: oops); please report it"),
    ("interrupt", KeyboardInterrupt(), 130, "error: interrupted"),
    ("sigterm", Terminated(signal.SIGTERM), 143, "error: terminated by SIGTERM"),
    ("sighup", Terminated(signal.SIGHUP), 129, "error: terminated by SIGHUP"),
]


@pytest.mark.parametrize(("exc", "code", "line"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_exit_codes(exc: BaseException, code: int, line: str) -> None:
    app = typer.Typer()
    app.command()(handle_errors(_raise(exc)))
    res = CliRunner().invoke(app, [])
    assert res.exit_code == code
    assert res.stderr == line + "\n"
    assert res.stdout == ""


def test_cli_leaves_click_exits_alone() -> None:
    app = typer.Typer()
    app.command("a")(handle_errors(_raise(typer.Exit(5))))
    app.command("b")(handle_errors(_raise(typer.BadParameter("no good"))))
    assert CliRunner().invoke(app, ["a"]).exit_code == 5
    res = CliRunner().invoke(app, ["b"])
    assert res.exit_code == 2 and "no good" in res.stderr and "internal" not in res.stderr


def test_real_cli_full_disk_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    from kirmatch.cli.main import app

    data = Path(__file__).parent / "data"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("".join(open(data / "golden_pairs.csv").readlines()[:6]))
    monkeypatch.setattr(os, "open", _refuse(errno.ENOSPC, lambda p: ".kirmatch-" in str(p)))
    out = tmp_path / "out" / "res.csv"
    res = CliRunner().invoke(app, ["batch", "--genotypes", str(data / "golden_genotypes.csv"),
                                   "--pairs", str(pairs), "--output", str(out), "--quiet"])
    assert res.exit_code == 3
    assert res.stderr == f"error: cannot write '{out}': No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]


# ---------------------------------------------------------------------------
# The delimited-text encoder against a plain reference (RFC 4180, minimal quoting)
# ---------------------------------------------------------------------------

def _reference_text(table: pa.Table, delimiter: str) -> str:
    """Each cell as text ('' for null, true/false), quoted only if it holds a
    quote, CR, LF or the delimiter; one line per row, header first."""
    def cell(v: Any) -> str:
        t = "" if v is None else ("true" if v is True else "false" if v is False else str(v))
        if any(ch in t for ch in ('"', "\r", "\n", delimiter)):
            t = '"' + t.replace('"', '""') + '"'
        return t
    lines = [delimiter.join(table.column_names)]
    lines += [delimiter.join(cell(row[c]) for c in table.column_names)
              for row in table.to_pylist()]
    return "\n".join(lines) + "\n"


_CELL_TEXT = st.one_of(st.none(), st.text(alphabet='ab ,;"\t\r\nxé', max_size=6))


@st.composite
def _tables(draw: Any) -> pa.Table:
    n = draw(st.integers(0, 30))
    cols: dict[str, pa.Array] = {}
    for k in range(draw(st.integers(1, 9))):
        kind = draw(st.sampled_from(["plain", "dict", "dict", "int", "bool"]))
        if kind == "int":
            arr = pa.array(draw(st.lists(st.one_of(st.none(), st.integers(-5, 10**6)),
                                         min_size=n, max_size=n)), pa.int64())
        elif kind == "bool":
            arr = pa.array(draw(st.lists(st.one_of(st.none(), st.booleans()),
                                         min_size=n, max_size=n)), pa.bool_())
        else:
            arr = pa.array(draw(st.lists(_CELL_TEXT, min_size=n + 3, max_size=n + 3)),
                           pa.string())
            if kind == "dict":    # the index types of pandas categoricals and of Arrow
                enc = arr.dictionary_encode()
                itype = draw(st.sampled_from([pa.int8(), pa.int16(), pa.int32(), pa.int64(),
                                              pa.uint8(), pa.uint64()]))
                arr = pa.DictionaryArray.from_arrays(enc.indices.cast(itype), enc.dictionary)
            arr = arr.slice(3)   # an offset into the buffers
        cols[f"c{k}"] = arr
    return pa.table(cols)


@given(table=_tables(), delimiter=st.sampled_from([",", "\t"]))
@settings(max_examples=150, deadline=None)
def test_text_encoder_matches_reference(table: pa.Table, delimiter: str,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Plain and dictionary columns, adjacent in any order, with nulls, quotes,
    delimiters and line breaks: the bytes equal the reference encoding."""
    path = tmp_path_factory.mktemp("enc") / ("t.csv" if delimiter == "," else "t.tsv")
    output.write_table(table, path)
    assert path.read_bytes().decode("utf-8") == _reference_text(table, delimiter)


def test_text_encoder_large_vocabularies_and_slices(tmp_path: Path) -> None:
    """Adjacent dictionary columns whose code combinations exceed what is
    pre-joined (200 x 200 x 200 entries), a column with nulls, and more rows than
    one written slice: every line equals the reference."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 10_001
    vocab = pa.array([f"v{i}" if i % 17 else f'q"{i},' for i in range(200)])
    cols = {"id": pa.array([f"R{i}" for i in range(n)])}
    for k in range(3):
        cols[f"d{k}"] = pa.DictionaryArray.from_arrays(
            pa.array(rng.integers(0, 200, n), pa.int32()), vocab)
    idx = rng.integers(0, 3, n)
    cols["small"] = pa.DictionaryArray.from_arrays(
        pa.array(idx, pa.int32(), mask=idx == 0), pa.array(["x", "y,z", "w"]))
    table = pa.table(cols)
    path = tmp_path / "big.csv"
    output.write_table(table, path)
    assert path.read_bytes().decode("utf-8") == _reference_text(table, ",")


def test_text_encoder_chunks_sharing_and_changing_dictionaries(tmp_path: Path) -> None:
    """A writer encodes a dictionary once for the chunks that share it (the
    engine reuses a column's dictionary until it grows); a chunk with another
    dictionary of the same length, or a grown one, is encoded anew: every line
    equals the reference."""
    shared = pa.array(["a", "b,c", "d"])
    other = pa.array(["x", 'y"', "z"])          # same length, other texts
    grown = pa.array(["a", "b,c", "d", "e\nf"])

    def chunk(dictionary: pa.Array, codes: list[int | None], start: int) -> pa.Table:
        idx = pa.array(codes, pa.int32())
        cols = {"id": pa.array([f"P{start + i}" for i in range(len(codes))])}
        for k in range(3):       # a run of dictionary columns, pre-joined together
            cols[f"d{k}"] = pa.DictionaryArray.from_arrays(idx, dictionary)
        cols["solo"] = pa.DictionaryArray.from_arrays(pa.array(codes[::-1], pa.int32()),
                                                      dictionary)
        return pa.table(cols)

    chunks = [chunk(shared, [0, 1, 2, None], 0), chunk(shared, [2, 2, 0, 1], 4),
              chunk(other, [0, 1, 2, 1], 8), chunk(grown, [3, 0, None, 1], 12),
              chunk(shared, [1, 0, 0, 2], 16)]
    path = tmp_path / "chunks.csv"
    with output.TableWriter(path) as w:
        for c in chunks:
            w.write(c)
    assert path.read_bytes().decode("utf-8") == \
        _reference_text(pa.concat_tables([c.cast(chunks[0].schema) for c in chunks]), ",")


def test_text_encoder_pandas_categoricals(tmp_path: Path) -> None:
    """pandas categoricals (int8 codes) after more rows than int8 holds, with a
    missing value, and a categorical of 200 categories (int16 codes): the text
    equals the frame's cells."""
    n = 300
    df = pd.DataFrame({"id": [f"R{i}" for i in range(n)],
                       "site": pd.Categorical(["north", "south", None] * 100),
                       "wide": pd.Categorical([f"c{i % 200}" for i in range(n)])})
    path = tmp_path / "cat.csv"
    output.write_table(df, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,site,wide"
    assert lines[1:] == [f"R{i},{['north', 'south', ''][i % 3]},c{i % 200}" for i in range(n)]


def test_parquet_statistics_for_plain_columns_only(tmp_path: Path) -> None:
    """Parquet row groups carry min/max statistics for plain columns (ids: a
    reader filtering on them skips row groups), not for the engine's
    dictionary columns (every row group holds their few values); the values
    read back unchanged either way."""
    target = tmp_path / "out.parquet"
    ids = pa.array([f"R{i:04d}" for i in range(300)])
    calls = pa.array(["true", "false", "true"] * 100).dictionary_encode()
    table = pa.table({"recipient_id": ids, "gvh_ligand_mismatch": calls})
    with TableWriter(target) as w:
        w.write(table.slice(0, 150))
        w.write(table.slice(150))
    meta = pq.ParquetFile(target).metadata
    assert meta.num_row_groups == 2
    for g in range(2):
        rg = meta.row_group(g)
        assert rg.column(0).is_stats_set and not rg.column(1).is_stats_set
        assert rg.column(0).statistics.min == f"R{150 * g:04d}"
    back = pq.read_table(target)
    assert back.column("recipient_id").to_pylist() == ids.to_pylist()
    assert back.column("gvh_ligand_mismatch").to_pylist() == calls.to_pylist()
