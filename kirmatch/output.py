"""Writing outputs safely: all or nothing, never over an input, spreadsheet safe.

Every file kirmatch writes (tables, errors tables, HTML reports, run records)
goes through an :class:`OutputPlan`, which gives three guarantees:

* **No input is ever written over.** Before anything is written, every output
  is checked against every input and against the other outputs by file
  identity (:func:`os.path.samefile`) and by resolved path, so a relative and
  an absolute spelling, a symbolic link or a hard link of an input are all
  caught. A clash is a :class:`~kirmatch.errors.UsageError` naming both paths.
* **All or nothing.** Each output is written to a hidden temporary file in its
  own folder, ``.NAME.kirmatch-PID-TOKEN.partial``. :meth:`OutputPlan.commit`
  moves them all into place only once every one is complete and on disk;
  before that the previous run's files stay exactly as they were, and a
  failure, an interrupt or a signal (turned into an exception by the command
  line) removes the temporary files. Temporary files of a process that was
  killed outright (``SIGKILL``, power loss) are removed by the next plan that
  writes the same names on the same machine, once that process is gone.
* **Spreadsheet safe.** In CSV, TSV and XLSX, a text cell of an input-derived
  column that begins with ``=``, ``+``, ``-``, ``@``, TAB or CR is written with
  a leading ``'`` (:func:`neutralise_formulas`; OWASP "CSV injection"),
  whatever Arrow type holds the text (string, categorical, binary). XLSX
  refuses, naming row and column, a cell it cannot hold instead of cutting it.

Faults of the system (disk full, no permission, read-only file system, a
folder that cannot be created) are raised as
:class:`~kirmatch.errors.EnvironmentFault`, naming the path and the reason.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with OutputPlan({"output": folder / "out.csv", "provenance": folder / "run.json"},
...                 inputs=[folder / "pairs.csv"]) as plan:
...     plan.write_table("output", pa.table({"id": ["=1+2", "R1"], "n": [1, 2]}),
...                      neutralise=["id"])
...     plan.write_text("provenance", "{}\\n")
>>> print((folder / "out.csv").read_text(), end="")
id,n
'=1+2,1
R1,2
>>> sorted(p.name for p in folder.iterdir())
['out.csv', 'run.json']
"""

from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import hashlib
import io
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from kirmatch.errors import EnvironmentFault, InputSchemaError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from kirmatch.io import FileFormat

__all__ = [
    "FORMULA_PREFIXES",
    "XLSX_MAX_CELL_CHARS",
    "XLSX_MAX_ROWS",
    "OutputPlan",
    "TableWriter",
    "neutralise_formulas",
    "remove_stale_temps",
    "write_table",
    "write_text",
]

StrPath = str | os.PathLike[str]

#: First characters that make a spreadsheet read a cell as a formula. TAB and
#: CR are on OWASP's list too: some spreadsheets drop them and read what follows.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"^[=+\-@\t\r]"
#: Excel's sheet limit, header row included.
XLSX_MAX_ROWS = 1_048_576
#: Excel's cell limit, in characters (UTF-16 code units: an emoji counts twice).
XLSX_MAX_CELL_CHARS = 32_767
# Characters an XLSX cell cannot hold as they are: the C0 controls other than
# TAB and LF (openpyxl rejects all but TAB, LF and CR); CR, which XML parsers
# turn into LF when the file is read (so "a\r\nb" would come back "a\nb"); and
# the non-characters U+FFFE and U+FFFF, which openpyxl would write into a file
# that Excel refuses to open.
_XLSX_ILLEGAL_RE = r"[\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]"
_XLSX_ILLEGAL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_ASTRAL_RE = r"[\x{10000}-\x{10FFFF}]"
# Excel keeps numbers as IEEE doubles: integers beyond 2**53 lose digits.
_XLSX_EXACT_INT = 2**53
_SPECIAL_CSV = re.compile(rb'[",\r\n]')
_SPECIAL_TSV = re.compile(rb'["\t\r\n]')
_QUOTE = re.compile(rb'"')

# Temporary files carry the writing process's id and a tag of its machine, so
# that stale ones can be told from live ones, also in a folder shared between
# machines (where another machine's process ids mean nothing here).
_HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


# ---------------------------------------------------------------------------
# Paths, temporary files and faults
# ---------------------------------------------------------------------------

def _temp_name(name: str, kind: str = "partial") -> str:
    return f".{name}.kirmatch-{os.getpid()}-{_HOST_TAG}{secrets.token_hex(4)}.{kind}"


def _fault(exc: OSError, path: StrPath, action: str = "write") -> EnvironmentFault:
    """An :class:`EnvironmentFault` for ``exc``, naming ``path`` and the OS reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return EnvironmentFault(f"cannot {action} {os.fspath(path)!r}: {reason}",
                            path=os.fspath(path), errno=exc.errno)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (when unsure: yes)."""
    if pid <= 0 or os.name == "nt":  # os.kill(pid, 0) would kill on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, but another user's
        return True
    return True


def remove_stale_temps(target: StrPath) -> tuple[Path, ...]:
    """Remove the temporary files of ``target`` left by processes that are gone.

    A process killed outright (``SIGKILL``, power loss) cannot clean up; its
    ``.NAME.kirmatch-PID-TOKEN.partial`` files (and ``.previous`` backups of a
    commit in progress) stay beside the target. They are removed here when
    they were made on this machine by a process id that is no longer running.
    Files of live processes, of this process and of other machines are kept.
    The ``.NAME.PID.partial`` files of kirmatch 0.1 (no machine tag) are
    removed too when their process id is not running here.

    Returns
    -------
    tuple of Path
        The files removed.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> live = folder / f".out.csv.kirmatch-{os.getpid()}-{_HOST_TAG}00000000.partial"
    >>> _ = live.write_text("")
    >>> remove_stale_temps(folder / "out.csv")
    ()
    >>> live.exists()
    True
    """
    target = Path(target)
    folder = target.parent
    name = re.escape(target.name)
    ours = re.compile(rf"\.{name}\.kirmatch-(\d+)-([0-9a-f]{{8}})[0-9a-f]{{8}}"
                      r"\.(?:partial|previous)")
    legacy = re.compile(rf"\.{name}\.(\d+)\.partial")
    try:
        entries = os.listdir(folder)
    except OSError:
        return ()
    removed = []
    for entry in entries:
        m = ours.fullmatch(entry)
        if m is not None:
            if m.group(2) != _HOST_TAG:
                continue
        else:
            m = legacy.fullmatch(entry)
            if m is None:
                continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        path = folder / entry
        try:
            if path.is_symlink() or not path.is_file():
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return tuple(removed)


def _real(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    """True if ``a`` and ``b`` name one file (links and spellings included)."""
    with contextlib.suppress(OSError, ValueError):  # one does not exist (yet)
        if os.path.samefile(a, b):
            return True
    return _real(a) == _real(b)


def _inside(path: Path, folder: Path) -> bool:
    real, top = _real(path), _real(folder)
    try:
        return real != top and os.path.commonpath([real, top]) == top
    except ValueError:  # different drives
        return False


def _is_dir(path: Path) -> bool:
    """``Path.is_dir`` that reads an unusable name (too long, …) as "not a folder";
    the reader of that input then reports it."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _check_paths(outputs: Mapping[str, Path], inputs: Sequence[Path]) -> None:
    """Every output differs from every input and from every other output."""
    roles = list(outputs)
    for i, role in enumerate(roles):
        out = outputs[role]
        if out.is_dir():
            raise UsageError(f"the {role} path {str(out)!r} is a folder; give a file name",
                             raw=str(out))
        for inp in inputs:
            if _same_file(out, inp):
                raise UsageError(
                    f"the {role} file {str(out)!r} would overwrite an input: it is the input "
                    f"file {str(inp)!r}; choose another {role} file", raw=str(out))
            if _is_dir(inp) and _inside(out, inp):
                raise UsageError(
                    f"the {role} file {str(out)!r} is inside the input folder {str(inp)!r}, "
                    "which is read as input; write it to another folder", raw=str(out))
        for other in roles[i + 1:]:
            if _same_file(out, outputs[other]):
                raise UsageError(
                    f"the {role} file {str(out)!r} and the {other} file "
                    f"{str(outputs[other])!r} are the same file; give them different names",
                    raw=str(out))


def _cleanup(action: Callable[..., object], *args: Any) -> BaseException | None:
    """Run one cleanup step to its end: OS errors are ignored, and a signal or
    interrupt arriving meanwhile is returned (to be raised once all steps ran)
    after the step is tried once more."""
    caught: BaseException | None = None
    for _ in range(2):
        try:
            action(*args)
        except OSError:
            return caught
        except BaseException as exc:  # a signal turned into an exception
            caught = caught or exc
            continue
        return caught
    return caught


# ---------------------------------------------------------------------------
# The output transaction
# ---------------------------------------------------------------------------

class OutputPlan:
    """All the files of one run, written together or not at all.

    Creating a plan checks the paths (no output is an input, a file inside an
    input folder, a folder, or another output), creates missing folders,
    removes stale temporary files of the same names (:func:`remove_stale_temps`)
    and reserves one hidden temporary file per output in the output's own
    folder, so that an unwritable folder fails at once, before any work.
    Write each output through :meth:`table_writer`, :meth:`write_table`,
    :meth:`write_text` or :meth:`temp_path`; :meth:`commit` then moves every
    temporary file into place. Used as a context manager, the plan commits on
    a clean exit and aborts on any exception, ``KeyboardInterrupt`` and
    signals raised as exceptions included.

    Parameters
    ----------
    outputs:
        Role name (``"output"``, ``"errors"``, ``"provenance"``, ``"report"``) to
        path; ``None`` paths are left out, so optional outputs can be passed
        as they are (a plan left with no output does nothing). Roles name
        the files in messages and are committed in this order (put the run
        record last).
    inputs:
        Every file or folder the run reads (``None`` entries are ignored).

    Attributes
    ----------
    removed_stale:
        Stale temporary files removed when the plan was made.

    Raises
    ------
    UsageError
        An output is an input (by any spelling or link), lies inside an input
        folder, is a folder, or is the same file as another output. Nothing
        has been written or created.
    EnvironmentFault
        A folder cannot be created, the existing output file is read-only,
        or the folder is not writable; the message names the path.

    Notes
    -----
    Each file is replaced atomically (:func:`os.replace` in its own folder),
    and the temporary files are flushed to disk first, so a crash never
    leaves a truncated file under a final name. Across files, commit keeps a
    hard-linked backup of every file it replaces and puts them back if a later
    move fails; a file system without hard links loses that rollback only.
    The permissions of a replaced file are kept. A symbolic link at an
    output path is replaced by the new file; the file it pointed to is not
    changed.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "pairs.csv").write_text("recipient_id,donor_id\\n")
    >>> OutputPlan({"output": folder / "sub" / ".." / "pairs.csv"},
    ...            inputs=[folder / "pairs.csv"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kirmatch.errors.UsageError: the output file '...pairs.csv' would overwrite an input: ...
    >>> plan = OutputPlan({"report": folder / "report.html"})
    >>> plan.write_text("report", "<p>ok</p>")
    >>> (folder / "report.html").exists()
    False
    >>> plan.commit()
    >>> (folder / "report.html").read_text()
    '<p>ok</p>'
    """

    def __init__(self, outputs: Mapping[str, StrPath | None], *,
                 inputs: Iterable[StrPath | None] = ()) -> None:
        self._given = {role: Path(p) for role, p in outputs.items() if p is not None}
        _check_paths(self._given, [Path(p) for p in inputs if p is not None])
        # Absolute now, so that a later change of working folder cannot move them.
        self._targets = {role: p.absolute() for role, p in self._given.items()}
        self._temps: dict[str, Path] = {}
        self._backups: list[Path] = []
        self._claimed: set[str] = set()
        self._writers: list[TableWriter] = []
        self._created: list[Path] = []
        self._state = "open"
        self.removed_stale: tuple[Path, ...] = ()
        removed: list[Path] = []
        try:
            for role, target in self._targets.items():
                self._make_folder(role, target.parent)
                removed.extend(remove_stale_temps(target))
                self._check_replaceable(role, target)
                self._reserve(role, target)
        except BaseException:
            self.abort()
            raise
        self.removed_stale = tuple(removed)

    def __repr__(self) -> str:
        files = ", ".join(f"{r}={str(p)!r}" for r, p in self._given.items())
        return f"OutputPlan({files}; {self._state})"

    def __enter__(self) -> OutputPlan:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    # -- setting up ---------------------------------------------------------

    def _make_folder(self, role: str, folder: Path) -> None:
        if folder.is_dir():
            return
        shown = self._given[role].parent
        missing = []
        p = folder
        while not os.path.lexists(p) and p != p.parent:
            missing.append(p)
            p = p.parent
        if not p.is_dir():
            raise EnvironmentFault(
                f"cannot create the folder {str(shown)!r} for the {role} file: {str(p)!r} is "
                "not a folder", path=str(shown), errno=errno.ENOTDIR)
        for m in reversed(missing):
            try:
                m.mkdir()
            except FileExistsError:
                if not m.is_dir():
                    raise EnvironmentFault(
                        f"cannot create the folder {str(shown)!r}: {str(m)!r} is not a folder",
                        path=str(shown), errno=errno.ENOTDIR) from None
                continue
            except OSError as exc:
                raise _fault(exc, shown, "create the folder") from exc
            self._created.append(m)

    def _check_replaceable(self, role: str, target: Path) -> None:
        """A read-only file is a statement: do not replace it behind its back."""
        if target.is_file() and not target.is_symlink() and not os.access(target, os.W_OK):
            raise EnvironmentFault(
                f"cannot write {str(self._given[role])!r}: the existing file is read-only "
                "(make it writable or remove it to replace it)",
                path=str(self._given[role]), errno=errno.EACCES)

    def _reserve(self, role: str, target: Path) -> None:
        tmp = target.with_name(_temp_name(target.name))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except OSError as exc:
            raise _fault(exc, self._given[role]) from exc
        self._temps[role] = tmp
        os.close(fd)

    # -- handing out --------------------------------------------------------

    @property
    def roles(self) -> tuple[str, ...]:
        """The planned outputs' role names, in commit order."""
        return tuple(self._given)

    def target(self, role: str) -> Path:
        """The final path of output ``role``, as given."""
        return self._given[self._known(role)]

    def _known(self, role: str) -> str:
        if role not in self._given:
            raise KeyError(f"no output {role!r} in this plan (it has {', '.join(self._given)})")
        return role

    def _claim(self, role: str) -> Path:
        self._known(role)
        if self._state != "open":
            raise RuntimeError(f"this output plan is {self._state}; nothing more can be written")
        if role in self._claimed:
            raise RuntimeError(f"the {role} file is already being written")
        self._claimed.add(role)
        return self._temps[role]

    def _adopt(self, role: str, writer: TableWriter) -> Path:
        tmp = self._claim(role)
        self._writers.append(writer)
        return tmp

    def temp_path(self, role: str) -> Path:
        """The temporary file to write output ``role`` to (it exists, empty).

        For writers this module does not provide; the caller writes the whole
        file (an :class:`OSError` then is the caller's to translate).
        """
        return self._claim(role)

    def table_writer(self, role: str, *, neutralise: Sequence[str] = ()) -> TableWriter:
        """A :class:`TableWriter` for output ``role`` (format from its extension).

        Its :meth:`~TableWriter.close` finishes the file; :meth:`commit` moves it
        into place. Aborting the writer aborts the whole plan.
        """
        writer = TableWriter(self._given[self._known(role)], neutralise=neutralise)
        writer._join(self, self._adopt(role, writer))
        return writer

    def write_table(self, role: str, table: pa.Table | pd.DataFrame, *,
                    neutralise: Sequence[str] = ()) -> None:
        """Write a whole table as output ``role`` (see :func:`write_table`)."""
        with self.table_writer(role, neutralise=neutralise) as writer:
            writer.write(_to_arrow(table))

    def write_text(self, role: str, text: str, *, encoding: str = "utf-8") -> None:
        """Write ``text`` as output ``role`` (line ends are written as given).

        A failure aborts the plan, as a failed table writer does.
        """
        tmp = self._claim(role)
        try:
            with open(tmp, "w", encoding=encoding, newline="") as fh:
                fh.write(text)
        except OSError as exc:
            self.abort()
            raise _fault(exc, self._given[role]) from exc

    # -- finishing ----------------------------------------------------------

    def commit(self) -> None:
        """Move every output into place (all of them, or none on failure).

        Open table writers are closed first. Calling it again is harmless.

        Raises
        ------
        EnvironmentFault
            A file could not be finished, flushed or moved; the previous
            files are back in place and the temporary files are removed.
        RuntimeError
            The plan was aborted, or an output was never written (plan only
            the outputs a run writes).
        """
        if self._state == "committed":
            return
        if self._state != "open":
            raise RuntimeError("this output plan was aborted; nothing can be committed")
        try:
            for writer in list(self._writers):
                writer.close()
            if self._state != "open":  # a writer failed and aborted the plan
                raise RuntimeError("this output plan was aborted; nothing can be committed")
            unwritten = [r for r in self._given if r not in self._claimed]
            if unwritten:
                raise RuntimeError(f"nothing was written for the {', '.join(unwritten)} "
                                   "output(s) of this plan")
            for role in self._given:
                self._flush(role)
            self._swap()
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        for backup in self._backups:
            _cleanup(os.unlink, backup)
        self._backups.clear()
        for folder in {t.parent for t in self._targets.values()}:
            _fsync_folder(folder)

    def _flush(self, role: str) -> None:
        """Give the temporary file the old file's permissions; put it on disk."""
        tmp, target = self._temps[role], self._targets[role]
        with contextlib.suppress(OSError):
            if target.is_file():
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        try:
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _fault(exc, self._given[role]) from exc

    def _swap(self) -> None:
        moves: list[tuple[str, Path | None, bool]] = []
        role = ""
        try:
            for role, tmp in self._temps.items():
                target = self._targets[role]
                existed = os.path.lexists(target)
                backup = None
                if existed:
                    backup = target.with_name(_temp_name(target.name, "previous"))
                    try:
                        os.link(target, backup, follow_symlinks=False)
                        self._backups.append(backup)
                    except (OSError, NotImplementedError):
                        backup = None  # no hard links here: this file cannot be rolled back
                moves.append((role, backup, existed))
                os.replace(tmp, target)
        except BaseException as exc:
            kept = self._roll_back(moves)
            if not isinstance(exc, OSError):
                raise
            fault = _fault(exc, self._given[role])
            if kept:
                fault = EnvironmentFault(
                    f"{fault}; {', '.join(kept)} already hold this run's new contents (their "
                    "previous contents could not be put back)", path=fault.path,
                    errno=fault.errno)
            raise fault from exc

    def _roll_back(self, moves: list[tuple[str, Path | None, bool]]) -> list[str]:
        """Undo the moves done; return the outputs that could not be undone."""
        kept: list[str] = []
        pending: BaseException | None = None
        for role, backup, existed in reversed(moves):
            if os.path.lexists(self._temps[role]):
                continue  # never moved
            target = self._targets[role]
            if backup is not None:
                caught = _cleanup(os.replace, backup, target)
                if os.path.lexists(backup):
                    kept.append(f"{str(self._given[role])!r} (previous contents in "
                                f"{backup.name!r})")
                self._backups.remove(backup)  # restored, or the only copy: keep it
            elif not existed:
                caught = _cleanup(os.unlink, target)
            else:
                caught = None
                kept.append(repr(str(self._given[role])))
            pending = pending or caught
        if pending is not None:
            raise pending
        return kept

    def abort(self) -> None:
        """Remove every temporary file (and the folders the plan created, if
        empty); the previous files stay as they were. Harmless after commit."""
        if self._state != "open":
            return
        self._state = "aborted"
        steps: list[tuple[Callable[..., object], tuple[Any, ...]]] = [
            *((w._discard, ()) for w in self._writers),
            *((os.unlink, (p,)) for p in [*self._temps.values(), *self._backups]),
            *((os.rmdir, (d,)) for d in reversed(self._created))]
        self._backups.clear()
        pending: BaseException | None = None
        for action, args in steps:  # every step, even after an interruption
            caught = _cleanup(action, *args)
            pending = pending or caught
        if pending is not None and not isinstance(pending, Exception):
            raise pending


def _fsync_folder(folder: Path) -> None:
    """Put a folder's entries (the renames) on disk; not possible everywhere."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text(path: StrPath, text: str, *, encoding: str = "utf-8",
               inputs: Iterable[StrPath | None] = ()) -> None:
    """Write a text file (a report, a run record) atomically.

    The file appears whole or not at all; ``inputs`` are checked as in
    :class:`OutputPlan`.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "run.json"
    >>> write_text(target, '{"rows": 2}\\n')
    >>> target.read_text()
    '{"rows": 2}\\n'
    """
    with OutputPlan({"output": path}, inputs=inputs) as plan:
        plan.write_text("output", text, encoding=encoding)


# ---------------------------------------------------------------------------
# Formula neutralisation
# ---------------------------------------------------------------------------

# View types exist from pyarrow 16 on; older versions cannot hand them over.
_is_string_view: Callable[[pa.DataType], bool] = getattr(
    pa.types, "is_string_view", lambda t: False)
_is_binary_view: Callable[[pa.DataType], bool] = getattr(
    pa.types, "is_binary_view", lambda t: False)


def _is_binary(t: pa.DataType) -> bool:
    return (pa.types.is_binary(t) or pa.types.is_large_binary(t)
            or pa.types.is_fixed_size_binary(t) or _is_binary_view(t))


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t)


def _first(mask: pa.Array) -> int:
    """Index of the first true value of a boolean array, or -1."""
    return int(pc.index(pc.fill_null(mask, False), True).as_py())


def _decode_utf8(values: pa.Array, column: str | None, first_row: int) -> pa.Array:
    """Binary cells as UTF-8 text (large_string)."""
    arr = values
    if pa.types.is_fixed_size_binary(arr.type) or _is_binary_view(arr.type):
        arr = arr.cast(pa.large_binary())
    try:
        return arr.cast(pa.large_string())
    except pa.ArrowInvalid:
        pass
    for i, cell in enumerate(arr.to_pylist()):  # only on the error path
        if cell is None:
            continue
        try:
            cell.decode("utf-8")
        except UnicodeDecodeError as exc:
            err = InputSchemaError(
                f"column {column!r}, data row {first_row + i}: the cell holds bytes that are not "
                f"UTF-8 text (byte 0x{cell[exc.start]:02x}); text outputs are UTF-8: decode the "
                "column first, or write Parquet", column=column)
            err.row = first_row + i
            raise err from None
    raise InputSchemaError(  # pragma: no cover - Arrow and Python disagree on UTF-8
        f"column {column!r} is not UTF-8 text", column=column)


def neutralise_formulas(values: pa.Array | pa.ChunkedArray, *, column: str | None = None,
                        first_row: int = 1) -> pa.Array | pa.ChunkedArray:
    """Prefix ``'`` to text cells beginning with ``=``, ``+``, ``-``, ``@``, TAB or CR.

    Works on every Arrow type that holds text: string, large_string and
    string_view; dictionary (a pandas categorical: its dictionary is
    neutralised, the codes are kept); binary, large_binary, fixed-size and
    view binary, decoded as UTF-8 (the result is text). Other types (numbers,
    booleans, dates) are returned unchanged. Vectorised: no Python per cell.

    Parameters
    ----------
    values:
        One column.
    column, first_row:
        The column's name and the 1-based data row of ``values[0]``, for
        error messages.

    Raises
    ------
    InputSchemaError
        A binary cell is not UTF-8; the message names column and data row.

    >>> neutralise_formulas(pa.array(["=1+2", "R1", "-", "@x", "\\t=1", None])).to_pylist()
    ["'=1+2", 'R1', "'-", "'@x", "'\\t=1", None]
    >>> neutralise_formulas(pa.array([b"=HYPERLINK(1)"])).to_pylist()
    ["'=HYPERLINK(1)"]
    >>> neutralise_formulas(pa.array(["=a", "b", "=a"]).dictionary_encode()).to_pylist()
    ["'=a", 'b', "'=a"]
    >>> neutralise_formulas(pa.array([-1, 2])).to_pylist()
    [-1, 2]
    """
    if isinstance(values, pa.ChunkedArray):
        chunks = []
        row = first_row
        for chunk in values.chunks:
            chunks.append(neutralise_formulas(chunk, column=column, first_row=row))
            row += len(chunk)
        if not chunks:
            return values
        return pa.chunked_array(chunks, type=chunks[0].type)
    t = values.type
    if pa.types.is_dictionary(t):
        if not (_is_string(t.value_type) or _is_binary(t.value_type)):
            return values
        if _is_binary(t.value_type):  # row numbers need the decoded cells
            return neutralise_formulas(values.cast(t.value_type), column=column,
                                       first_row=first_row)
        dictionary = neutralise_formulas(values.dictionary, column=column)
        return pa.DictionaryArray.from_arrays(values.indices, dictionary, ordered=t.ordered)
    if _is_binary(t):
        values = _decode_utf8(values, column, first_row)
    elif _is_string_view(t):
        values = values.cast(pa.large_string())
    elif not _is_string(t):
        return values
    hit = pc.match_substring_regex(values, _FORMULA_RE)
    if not pc.any(hit).as_py():
        return values
    quoted = pc.binary_join_element_wise(pa.scalar("'", values.type), values,
                                         pa.scalar("", values.type))
    return pc.if_else(hit, quoted, values)


def _neutralise_name(name: str) -> str:
    return "'" + name if name.startswith(FORMULA_PREFIXES) else name


# ---------------------------------------------------------------------------
# Delimited text
# ---------------------------------------------------------------------------

def _text_column(col: pa.ChunkedArray | pa.Array, name: str, first_row: int) -> pa.Array:
    """One column as large_string cells (nulls kept), or a clear error."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_boolean(arr.type):
        return pc.if_else(arr, "true", "false").cast(pa.large_string())
    if _is_binary(arr.type):
        return _decode_utf8(arr, name, first_row)
    try:
        return arr.cast(pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
        raise InputSchemaError(f"column {name!r} holds {arr.type} values, which cannot be "
                               "written as text; write Parquet", column=name) from exc


def _string_buffer(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a large_string array (no copy)."""
    import numpy as np

    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    if bufs[2] is None or len(arr) == 0:
        return memoryview(b"")
    return memoryview(bufs[2])[int(offsets[0]): int(offsets[-1])]


def _quote_text(arr: pa.Array, delimiter: str) -> pa.Array:
    """RFC 4180 quoting, only for the cells that need it."""
    special = _SPECIAL_TSV if delimiter == "\t" else _SPECIAL_CSV
    data = _string_buffer(arr)
    if special.search(data) is None:  # scans the bytes, no copy
        return arr
    pattern = '["\\r\\n' + ("\\t" if delimiter == "\t" else delimiter) + "]"
    need = pc.match_substring_regex(arr, pattern)
    # quotes inside are doubled; most texts that need quoting (a comma) have none
    escaped = pc.replace_substring(arr, '"', '""') if _QUOTE.search(data) else arr
    # one pass: each cell between two marks, '"' where it needs quoting, else ""
    mark = pc.if_else(need, pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string()))
    return pc.binary_join_element_wise(mark, escaped, mark, pa.scalar("", pa.large_string()))


#: Rows whose line pieces are built at once (the plain columns' text of a block
#: is held in memory while its lines are written).
_BLOCK_ROWS = 100_000


def _write_text_lines(fh: IO[bytes], table: pa.Table, delimiter: str, first_row: int,
                      batch_rows: int = 4096, cache: dict[Any, Any] | None = None) -> None:
    """Write a table as delimited text lines (no header).

    Each block of ``_BLOCK_ROWS`` rows is cut into line pieces once
    (:func:`_line_pieces`), with one index of every row's pieces; the lines
    are then assembled and written a few thousand rows at a time, so each
    slice's bytes are copied once and are still in the processor's cache when
    written, and the memory a slice's text needs is reused by the next.
    ``cache`` (one per file) keeps each dictionary's encoded texts for the next
    table that has the same dictionary.
    """
    import numpy as np

    cache = {} if cache is None else cache
    for block in range(0, table.num_rows, _BLOCK_ROWS):
        part = table.slice(block, _BLOCK_ROWS)
        n = part.num_rows
        texts, segments = _line_pieces(part, delimiter, first_row + block, cache)
        # each row's pieces, in line order: row-major, so a slice's are contiguous
        rows = np.empty((n, len(segments)), np.int64)
        for j, (base, codes) in enumerate(segments):
            rows[:, j] = np.arange(n) if codes is None else codes
            rows[:, j] += base
        flat = rows.ravel()
        width = len(segments)
        for start in range(0, n, batch_rows):
            stop = min(start + batch_rows, n)
            fh.write(_string_buffer(texts.take(pa.array(flat[start * width: stop * width]))))


def _encoded_cells(arr: pa.Array, name: str, first_row: int, delimiter: str) -> pa.Array:
    """One column as quoted large_string cells, ``""`` for null."""
    return _quote_text(pc.fill_null(_text_column(arr, name, first_row), ""), delimiter)


def _vocabulary(arr: pa.DictionaryArray, name: str, first_row: int, delimiter: str,
                cache: dict[Any, Any]) -> tuple[pa.Array, Any]:
    """A dictionary column's entries, quoted once each, with ``""`` appended for
    null; and each row's code into them (numpy, no copy when nothing is null).

    The entries of a text dictionary are encoded once: a later table whose
    column has the same dictionary (the same Arrow buffers: kirmatch's engine
    reuses a column's dictionary until it grows) finds them in ``cache``, which
    keeps that dictionary alive, so its buffers cannot be reused for another.
    (Arrow text arrays are immutable; other dictionary types, which numpy
    memory could back, are encoded every time.)"""
    dictionary = arr.dictionary
    key = (str(dictionary.type), dictionary.offset, len(dictionary),
           *(b.address if b is not None else 0 for b in dictionary.buffers()))
    hit = cache.get(("vocab", name)) if _is_string(dictionary.type) else None
    if hit is not None and hit[0] == key:
        vocab = hit[2]
    else:
        vocab = _encoded_cells(dictionary, name, first_row, delimiter)
        cache[("vocab", name)] = (key, dictionary, vocab)
    indices = arr.indices
    if not (pa.types.is_int32(indices.type) or pa.types.is_int64(indices.type)):
        indices = indices.cast(pa.int64())     # int8 (pandas categorical), unsigned ...
    if arr.null_count:     # a null is "", appended (copying the entries only then)
        vocab = pa.concat_arrays([vocab, pa.array([""], pa.large_string())])
        indices = pc.fill_null(indices, len(vocab) - 1)
    return vocab, indices.to_numpy(zero_copy_only=False)


_COMBINED_TEXTS = 4096  # most texts a run of dictionary columns is pre-joined into


def _dictionary_segments(cols: Sequence[pa.Array], names: Sequence[str], first_row: int,
                         delimiter: str, cache: dict[Any, Any]) -> list[tuple[pa.Array, Any]]:
    """Adjacent dictionary columns as (texts, row codes) segments.

    Each column's vocabulary is quoted once. Adjacent columns are then taken
    together while the number of their code combinations stays at most
    ``_COMBINED_TEXTS``: every combination is joined once, and a row's code
    into the combinations is computed from its codes (mixed radix), so a line
    is assembled from a few pre-joined texts rather than one per column (kept
    in ``cache`` while the run's vocabularies are the same).
    """
    import numpy as np

    encoded = [_vocabulary(arr, name, first_row, delimiter, cache)
               for arr, name in zip(cols, names, strict=True)]
    runs: list[list[tuple[pa.Array, Any]]] = []
    firsts: list[str] = []      # each run's first column
    size = 0
    for name, (vocab, codes) in zip(names, encoded, strict=True):
        if runs and size * len(vocab) <= _COMBINED_TEXTS:
            runs[-1].append((vocab, codes))
            size *= len(vocab)
        else:
            runs.append([(vocab, codes)])
            firsts.append(name)
            size = len(vocab)
    sep = pa.scalar(delimiter, pa.large_string())
    segments = []
    for first, run in zip(firsts, runs, strict=True):
        if len(run) == 1:
            segments.append(run[0])
            continue
        total = 1
        code = np.zeros(len(run[0][1]), np.int32)   # < _COMBINED_TEXTS
        for vocab, c in run:
            code *= len(vocab)
            code += c.astype(np.int32, copy=False)   # each code < len(vocab)
            total *= len(vocab)
        vocabs = tuple(vocab for vocab, _ in run)
        slot = ("run", first)    # its texts are reused while its vocabularies are the same
        hit = cache.get(slot)
        if hit is None or len(hit[0]) != len(vocabs) or \
                any(a is not b for a, b in zip(hit[0], vocabs, strict=True)):
            every = np.arange(total, dtype=np.int64)
            parts = []
            for vocab in reversed(vocabs):  # the mixed-radix digits, last column first
                parts.append(vocab.take(pa.array(every % len(vocab))))
                every //= len(vocab)
            hit = cache[slot] = (vocabs, pc.binary_join_element_wise(*reversed(parts), sep))
        segments.append((hit[1], code))
    return segments


def _line_pieces(table: pa.Table, delimiter: str, first_row: int, cache: dict[Any, Any]
                 ) -> tuple[pa.Array, list[tuple[int, Any]]]:
    """A table's delimited text lines (no header) as pieces, in Arrow.

    A line is cut into segments: runs of adjacent dictionary columns (encoded
    once per combination, see :func:`_dictionary_segments`) and runs of other
    columns (joined row by row). Each segment's texts end with the delimiter,
    the last with a newline. Returns every segment's texts in one large_string
    array and, per segment, where its texts start in that array and each row's
    code into them (``None``: the row number); taking a row's texts gives its
    line.
    """
    groups: list[tuple[bool, list[tuple[str, pa.Array]]]] = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        coded = pa.types.is_dictionary(arr.type) and not _is_binary(arr.type.value_type)
        if groups and groups[-1][0] == coded:
            groups[-1][1].append((name, arr))
        else:
            groups.append((coded, [(name, arr)]))
    segments: list[tuple[pa.Array, Any]] = []
    for coded, members in groups:
        names = [nm for nm, _ in members]
        arrays = [a for _, a in members]
        if coded:
            segments.extend(_dictionary_segments(arrays, names, first_row, delimiter, cache))
        else:
            cells = [_encoded_cells(a, nm, first_row, delimiter) for nm, a in members]
            joined = (pc.binary_join_element_wise(*cells, pa.scalar(delimiter, pa.large_string()))
                      if len(cells) > 1 else cells[0])
            segments.append((joined, None))
    texts: list[pa.Array] = []
    pieces: list[tuple[int, Any]] = []
    base = 0
    for j, (values, codes) in enumerate(segments):
        end = "\n" if j == len(segments) - 1 else delimiter
        values = pc.binary_join_element_wise(values, pa.scalar("", pa.large_string()),
                                             pa.scalar(end, pa.large_string()))
        texts.append(values)
        pieces.append((base, codes))
        base += len(values)
    return pa.concat_arrays(texts), pieces


def _header_line(names: Sequence[str], delimiter: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(names)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------
# XLSX cell checks
# ---------------------------------------------------------------------------

def _xlsx_problem(arr: pa.Array) -> tuple[int, str] | None:
    """(index, reason) of the first cell XLSX cannot hold exactly, or ``None``."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    found: list[tuple[int, str]] = []
    if _is_string(t):
        if _is_string_view(t):
            arr = arr.cast(pa.large_string())
        longest = pc.max(pc.binary_length(arr)).as_py()
        if longest is not None and longest > XLSX_MAX_CELL_CHARS:  # bytes >= characters
            units = pc.add(pc.utf8_length(arr), pc.count_substring_regex(arr, _ASTRAL_RE))
            i = _first(pc.greater(units, XLSX_MAX_CELL_CHARS))
            if i >= 0:
                found.append((i, f"the cell holds {units[i].as_py():,} characters; an XLSX "
                                 f"cell holds at most {XLSX_MAX_CELL_CHARS:,}"))
        i = _first(pc.match_substring_regex(arr, _XLSX_ILLEGAL_RE))
        if i >= 0:
            char = _XLSX_ILLEGAL.search(arr[i].as_py())
            code = ord(char.group()) if char else 0
            found.append((i, "the cell holds a carriage return (U+000D), which XLSX turns into "
                             "a line feed" if code == 0x0D else
                             f"the cell holds the control character U+{code:04X}, which XLSX "
                             "cannot store"))
    elif pa.types.is_integer(t) and t.bit_width == 64:
        i = _first(pc.or_(pc.greater(arr, _XLSX_EXACT_INT),
                          pc.less(arr, -_XLSX_EXACT_INT)) if pa.types.is_signed_integer(t)
                   else pc.greater(arr, _XLSX_EXACT_INT))
        if i >= 0:
            found.append((i, f"the integer {arr[i].as_py()} has more digits than an XLSX "
                             "number keeps"))
    elif pa.types.is_floating(t):
        i = _first(pc.is_inf(arr))
        if i >= 0:
            found.append((i, f"the value {arr[i].as_py()} cannot be stored in XLSX"))
    return min(found) if found else None


#: An errors table names each row's place in the pairs file here; a cell error in
#: such a table names that row too (the errors file itself is never written).
_SOURCE_ROW = "pairs_row"


def _source_row(table: pa.Table, i: int) -> int | None:
    if _SOURCE_ROW not in table.column_names:
        return None
    value = table.column(_SOURCE_ROW)[i].as_py()
    return value if isinstance(value, int) else None


def _cell_error(path: Path, row: int | None, column: str | None, reason: str,
                source_row: int | None = None) -> InputSchemaError:
    at = f"data row {row}" if row is not None else ""
    if at and source_row is not None:
        at += f" (pairs file row {source_row})"
    where = ", ".join(x for x in (at, f"column {column!r}" if column is not None else "") if x)
    err = InputSchemaError(f"{path.name}: {where}: {reason}; write CSV or Parquet, which "
                           "keep it whole", raw=str(path))
    err.row, err.column = row, column
    return err


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

class TableWriter:
    """Write a table in chunks to CSV, TSV (optionally gzip), Parquet or XLSX.

    Rows go to a hidden temporary file next to the target. Made directly, the
    writer has its own one-file :class:`OutputPlan` (created on the first
    write): :meth:`close` moves the file into place, :meth:`abort` (or an
    exception inside a ``with`` block) removes it. Made by
    :meth:`OutputPlan.table_writer`, :meth:`close` only finishes the file and
    the plan's commit moves it, together with the run's other files; aborting
    the writer aborts the plan. A failed :meth:`write` aborts too: a file
    with part of a chunk is never kept.

    Columns named in ``neutralise`` (the input-derived ones) get formula
    neutralisation in CSV, TSV and XLSX (:func:`neutralise_formulas`), cells
    and header alike; the other (computed) columns are written as they are.
    Parquet is written unchanged.

    Raises
    ------
    EnvironmentFault
        The file cannot be created, written or moved (disk full, no
        permission, read-only file system); the message names the target.
    InputSchemaError
        A value the format cannot hold as it is: in XLSX a cell over 32,767
        characters, a control character (CR included: XML reads it back as
        LF), U+FFFE/U+FFFF, an integer beyond 2**53, an infinity, or over
        1,048,575 rows; in any text format a binary cell that is not UTF-8 or
        a nested value. The message names the data row and the column.
        XLSX NaN is written as an empty cell, like a missing value.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.tsv"
    >>> with TableWriter(target, neutralise=["note"]) as w:
    ...     w.write(pa.table({"note": ["+1", "ok"], "score": [-1, 2]}))
    >>> target.read_text().splitlines()
    ['note\\tscore', "'+1\\t-1", 'ok\\t2']
    """

    def __init__(self, path: StrPath, *, neutralise: Sequence[str] = ()) -> None:
        from kirmatch.io import detect_format  # kirmatch.io re-exports this module

        self.path = Path(path)
        self.format: FileFormat = detect_format(self.path)
        self.neutralise = frozenset(neutralise) if self.format.neutralises else frozenset()
        self.rows = 0
        self._plan: OutputPlan | None = None
        self._tmp: Path | None = None
        self._owns_plan = True
        self._state = "new"  # -> "open" -> "finished" | "aborted"
        self._names: list[str] | None = None
        self._schema: pa.Schema | None = None
        self._fh: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._pq: Any = None
        self._wb: Any = None
        self._ws: Any = None
        self._text_cache: dict[Any, Any] = {}

    def _join(self, plan: OutputPlan, tmp: Path) -> None:
        self._plan, self._tmp, self._owns_plan = plan, tmp, False

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _neutralises(self, name: str) -> bool:
        return self.format.neutralises and name in self.neutralise

    def _start(self, table: pa.Table) -> None:
        if self._plan is None:
            plan = OutputPlan({"output": self.path})
            self._join(plan, plan._adopt("output", self))
            self._owns_plan = True
        assert self._tmp is not None
        self._names = list(table.column_names)
        header = [_neutralise_name(n) if self._neutralises(n) else n for n in self._names]
        self._state = "open"
        if self.format.is_text:
            # the reserved temporary exists and is empty: opened without O_TRUNC, as
            # ext4 starts writing back a truncated file's pages when it is closed
            self._raw = open(self._tmp, "r+b")
            self._fh = self._raw
            if self.format.compression == "gzip":
                self._fh = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw,
                                         compresslevel=6, mtime=0)
            self._fh.write(_header_line(header, self.format.delimiter))
        elif self.format.kind == "parquet":
            import pyarrow.parquet as pq

            self._schema = table.schema.remove_metadata()
            # min/max statistics for plain columns (ids, pass-through values: a
            # reader filtering on them skips row groups), none for dictionary
            # columns: their few values all occur in every row group, so the
            # statistics would prune nothing, and computing them took 40 % of
            # the writing time
            stats = [f.name for f in self._schema if not pa.types.is_dictionary(f.type)]
            self._pq = pq.ParquetWriter(self._tmp, self._schema, write_statistics=stats)
        else:
            from openpyxl import Workbook

            for i, name in enumerate(header, start=1):
                if len(name) > XLSX_MAX_CELL_CHARS or _XLSX_ILLEGAL.search(name):
                    raise _cell_error(self.path, None, name[:40],
                                      f"column name {i} cannot be stored in XLSX")
            self._wb = Workbook(write_only=True)
            self._ws = self._wb.create_sheet("kirmatch")
            self._ws.append([self._xlsx_value(v) for v in header])

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (same columns, in the same order, every time)."""
        if self._state in ("finished", "aborted"):
            raise ValueError("writer is closed")
        try:
            if self._state == "new":
                self._start(table)
            elif list(table.column_names) != self._names:
                raise ValueError("every chunk must have the same columns")
            first_row = self.rows + 1
            for i, name in enumerate(table.column_names):
                if self._neutralises(name):
                    table = table.set_column(i, name, neutralise_formulas(
                        table.column(i), column=name, first_row=first_row))
            if self.format.is_text:
                assert self._fh is not None
                _write_text_lines(self._fh, table, self.format.delimiter, first_row,
                                  cache=self._text_cache)
            elif self.format.kind == "parquet":
                assert self._schema is not None
                t = table.replace_schema_metadata(None)
                if t.schema != self._schema:
                    t = t.cast(self._schema)
                self._pq.write_table(t)
            else:
                self._write_xlsx(table)
        except OSError as exc:
            self.abort()
            raise self._fault(exc) from exc
        except BaseException:
            self.abort()
            raise
        self.rows += table.num_rows

    def _fault(self, exc: OSError) -> EnvironmentFault:
        fault = _fault(exc, self.path)
        if self.format.kind != "xlsx":
            return fault
        import tempfile

        return EnvironmentFault(f"{fault} (XLSX rows wait in the system temporary folder "
                                f"{tempfile.gettempdir()!r} until the file is saved)",
                                path=fault.path, errno=fault.errno)

    def _write_xlsx(self, table: pa.Table) -> None:
        if self.rows + table.num_rows + 1 > XLSX_MAX_ROWS:
            raise InputSchemaError(
                f"{self.path.name}: XLSX holds at most {XLSX_MAX_ROWS - 1:,} data rows; "
                "write CSV or Parquet for larger batches", raw=str(self.path))
        cols = []
        problems = []
        for name, col in zip(table.column_names, table.columns, strict=True):
            arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            if _is_binary(arr.type) or (pa.types.is_dictionary(arr.type)
                                        and _is_binary(arr.type.value_type)):
                arr = _text_column(arr, name, self.rows + 1)
            found = _xlsx_problem(arr)
            if found is not None:
                problems.append((found[0], name, found[1]))
            if pa.types.is_floating(arr.type):  # openpyxl writes NaN as an empty <v/>
                arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
            cols.append(arr.to_pylist())
        if problems:
            i, name, reason = min(problems, key=lambda p: p[0])
            raise _cell_error(self.path, self.rows + i + 1, name, reason, _source_row(table, i))
        from openpyxl.utils.exceptions import IllegalCharacterError

        for offset, row in enumerate(zip(*cols, strict=True)):
            try:
                self._ws.append([self._xlsx_value(v) for v in row])
            except (IllegalCharacterError, TypeError, ValueError) as exc:
                raise _cell_error(self.path, self.rows + offset + 1, None,
                                  f"cannot be stored in XLSX ({exc})",
                                  _source_row(table, offset)) from exc

    def _xlsx_value(self, value: object) -> object:
        """Text is always stored as text: openpyxl would store ``=…`` as a formula."""
        if isinstance(value, str) and value.startswith("="):
            from openpyxl.cell import WriteOnlyCell

            cell = WriteOnlyCell(self._ws, value=value)
            cell.data_type = "s"
            return cell
        return value

    def close(self, *, empty: pa.Schema | None = None) -> None:
        """Finish the file (and, without a plan, move it into place).

        ``empty``: the schema to write a header with when no chunk was written.
        """
        if self._state in ("finished", "aborted"):
            return
        if self._state == "new":
            if empty is None:
                raise ValueError("nothing was written and no schema was given")
            self.write(empty.empty_table())
        try:
            if self._fh is not None:
                self._fh.close()
            if self._raw is not None:
                self._raw.close()
            if self._pq is not None:
                self._pq.close()
            if self._wb is not None:
                self._wb.save(self._tmp)
        except OSError as exc:
            self.abort()
            raise _fault(exc, self.path) from exc
        except BaseException:
            self.abort()
            raise
        self._state = "finished"
        if self._owns_plan and self._plan is not None:
            self._plan.commit()

    def _discard(self) -> None:
        """Close every handle, quietly (the plan removes the file)."""
        self._state = "aborted"
        # openpyxl stages a write-only sheet in a file of its own in the system
        # temporary folder: finish it and remove it now, not at interpreter exit.
        sheet_writer = getattr(self._ws, "_writer", None)
        for closer in (getattr(self._fh, "close", None), getattr(self._raw, "close", None),
                       getattr(self._pq, "close", None), getattr(self._ws, "close", None),
                       getattr(sheet_writer, "cleanup", None)):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()
        self._fh = self._raw = self._pq = self._wb = self._ws = None

    def abort(self) -> None:
        """Drop the file (and, in a plan, the whole plan)."""
        self._discard()
        if self._plan is not None:
            self._plan.abort()


def _to_arrow(df: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(df, pa.Table):
        return df
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # Mixed Python objects in a column (say numbers and text): write them as text.
        fixed = df.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                fixed[c] = fixed[c].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(fixed, preserve_index=False)


def write_table(df: pd.DataFrame | pa.Table, path: StrPath, *,
                neutralise: Sequence[str] = ()) -> None:
    """Write a whole table (format from the extension; see :class:`TableWriter`).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "ids.csv"
    >>> write_table(pa.table({"id": ["@SUM(1)", "D1"]}), target, neutralise=["id"])
    >>> target.read_text().splitlines()
    ['id', "'@SUM(1)", 'D1']
    """
    with TableWriter(path, neutralise=neutralise) as w:
        w.write(_to_arrow(df))
