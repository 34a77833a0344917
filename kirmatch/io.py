"""File input and output for the batch front end (pandas and pyarrow live here).

Formats are chosen by extension, for inputs and outputs alike:

========================  ==========================================
Extension                 Format
========================  ==========================================
``.csv``, ``.csv.gz``     comma-separated text, UTF-8 (optionally gzip)
``.tsv``, ``.tsv.gz``     tab-separated text (also ``.tab``, ``.txt``)
``.parquet``, ``.pq``     Apache Parquet
``.xlsx``                 Excel workbook (first sheet)
========================  ==========================================

Text inputs are read as text, cell for cell: nothing is converted to numbers
or dates and an empty cell stays an empty string, so pass-through columns
come out exactly as they went in. Pairs files are streamed in chunks, so the
memory used does not grow with the file (:func:`iter_table`); the genotypes
file, the small side, is read whole (:func:`read_table`).

Writing lives in :mod:`kirmatch.output` (all-or-nothing output sets, no
output over an input, formula neutralisation of input-derived columns in CSV,
TSV and XLSX); :class:`TableWriter`, :func:`write_table` and
:func:`neutralise_formulas` are re-exported here.

>>> detect_format("out/results.tsv.gz")
FileFormat(kind='tsv', compression='gzip')
>>> import pyarrow as pa
>>> from kirmatch.io import neutralise_formulas
>>> neutralise_formulas(pa.array(["=1+2", "R1", "-", "@x", None])).to_pylist()
["'=1+2", 'R1', "'-", "'@x", None]
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from kirmatch.errors import InputSchemaError, UsageError

__all__ = [
    "FORMULA_PREFIXES",
    "XLSX_MAX_ROWS",
    "ColumnMap",
    "FileFormat",
    "TableWriter",
    "apply_column_map",
    "count_rows",
    "detect_format",
    "file_sha256",
    "iter_table",
    "neutralise_formulas",
    "read_column_map",
    "read_table",
    "write_table",
]

FormatKind = Literal["csv", "tsv", "parquet", "xlsx"]

_SUFFIXES: tuple[tuple[str, FormatKind, str | None], ...] = (
    (".csv.gz", "csv", "gzip"),
    (".tsv.gz", "tsv", "gzip"),
    (".tab.gz", "tsv", "gzip"),
    (".txt.gz", "tsv", "gzip"),
    (".csv", "csv", None),
    (".tsv", "tsv", None),
    (".tab", "tsv", None),
    (".txt", "tsv", None),
    (".parquet", "parquet", None),
    (".pq", "parquet", None),
    (".xlsx", "xlsx", None),
)


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A table format chosen from a file name (``kind`` plus optional ``compression``)."""

    kind: FormatKind
    compression: str | None = None

    @property
    def is_text(self) -> bool:
        """True for CSV and TSV."""
        return self.kind in ("csv", "tsv")

    @property
    def delimiter(self) -> str:
        """The field separator of a text format."""
        return "\t" if self.kind == "tsv" else ","

    @property
    def neutralises(self) -> bool:
        """True where spreadsheet formulas must be neutralised (CSV, TSV, XLSX)."""
        return self.kind != "parquet"


def detect_format(path: str | os.PathLike[str]) -> FileFormat:
    """The format of a file, from its extension.

    Raises
    ------
    UsageError
        The extension is not one of the supported formats.

    >>> detect_format("pairs.parquet").kind
    'parquet'
    >>> detect_format("pairs.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kirmatch.errors.UsageError: cannot tell the format of 'pairs.json' from its extension; ...
    """
    name = Path(path).name.lower()
    for suffix, kind, compression in _SUFFIXES:
        if name.endswith(suffix):
            return FileFormat(kind, compression)
    raise UsageError(
        f"cannot tell the format of {Path(path).name!r} from its extension; use .csv, "
        ".tsv (optionally .gz), .parquet or .xlsx",
        raw=str(path),
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (for the run record)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def _open_binary(path: Path, fmt: FileFormat) -> IO[bytes]:
    if fmt.compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _bad_utf8_line(path: Path, fmt: FileFormat) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first undecodable byte, or ``None``."""
    try:
        with _open_binary(path, fmt) as fh:
            for lineno, line in enumerate(fh, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return lineno, exc.start + 1, line[exc.start]
    except (OSError, EOFError):  # pragma: no cover - truncated gzip etc.
        return None
    return None


def _undecodable(path: Path, fmt: FileFormat, what: str) -> InputSchemaError:
    where = _bad_utf8_line(path, fmt)
    if where is None:  # pragma: no cover - pandas and Python disagree
        return InputSchemaError(f"{what} file {path.name}: not valid UTF-8 text", raw=str(path))
    line, col, byte = where
    return InputSchemaError(
        f"{what} file {path.name}: line {line} is not valid UTF-8 (byte 0x{byte:02x} at "
        f"character {col}); save the file as UTF-8",
        raw=str(path), row=None,
    )


def _text_header(path: Path, fmt: FileFormat, what: str) -> list[str]:
    """The header row of a text file, checked: present, decodable, no duplicate names."""
    try:
        with _open_binary(path, fmt) as fh:
            first = fh.readline()
            while first and not first.strip():
                first = fh.readline()
    except (OSError, EOFError) as exc:
        raise InputSchemaError(f"{what} file {path.name} cannot be read: {exc}",
                               raw=str(path)) from exc
    if not first.strip():
        raise InputSchemaError(f"{what} file {path.name} is empty (no header row)",
                               raw=str(path))
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _undecodable(path, fmt, what) from None
    header = next(csv.reader([text.rstrip("\r\n")], delimiter=fmt.delimiter))
    _check_header(header, path, what)
    return header


def _check_header(header: Sequence[object], path: Path, what: str) -> None:
    seen: set[str] = set()
    dups: list[str] = []
    for i, name in enumerate(header, start=1):
        text = "" if name is None else str(name)
        if not text.strip():
            raise InputSchemaError(f"{what} file {path.name}: column {i} has no name",
                                   raw=str(path))
        if text in seen and text not in dups:
            dups.append(text)
        seen.add(text)
    if dups:
        raise InputSchemaError(
            f"{what} file {path.name}: duplicate column name(s) "
            f"{', '.join(repr(d) for d in dups)}", raw=str(path), column=dups[0])


def _xlsx_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return, union-attr]
    return str(value)


def _iter_xlsx(path: Path, chunk_rows: int, what: str) -> Iterator[pd.DataFrame]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for bad files
        raise InputSchemaError(f"{what} file {path.name} is not a readable XLSX workbook: "
                               f"{exc}", raw=str(path)) from exc
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header_row = None
        for row in rows:
            if any(v is not None and str(v).strip() for v in row):
                header_row = row
                break
        if header_row is None:
            raise InputSchemaError(f"{what} file {path.name} is empty (no header row)",
                                   raw=str(path))
        last = max(i for i, v in enumerate(header_row) if v is not None and str(v).strip())
        header = [_xlsx_cell(v) for v in header_row[: last + 1]]
        _check_header(header, path, what)
        width = len(header)
        buf: list[list[str]] = []
        emitted = False
        for row in rows:
            cells = [_xlsx_cell(v) for v in row[:width]]
            if not any(cells):
                continue  # formatted but empty rows are not data
            cells.extend([""] * (width - len(cells)))
            buf.append(cells)
            if len(buf) >= chunk_rows:
                yield pd.DataFrame(buf, columns=header, dtype="str")
                emitted = True
                buf = []
        if buf or not emitted:
            yield pd.DataFrame(buf, columns=header, dtype="str") if buf else \
                pd.DataFrame({c: pd.Series([], dtype="str") for c in header})
    finally:
        wb.close()


def _iter_parquet(path: Path, chunk_rows: int, what: str) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputSchemaError(f"{what} file {path.name} is not a readable Parquet file: "
                               f"{exc}", raw=str(path)) from exc
    names = pf.schema_arrow.names
    if not names:
        raise InputSchemaError(f"{what} file {path.name} is empty (no columns)",
                               raw=str(path))
    _check_header(names, path, what)
    emitted = False
    for batch in pf.iter_batches(batch_size=chunk_rows):
        emitted = True
        yield _arrow_to_pandas(pa.Table.from_batches([batch]))
    if not emitted:
        yield _arrow_to_pandas(pf.schema_arrow.empty_table())


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Strings become pandas ``str``; other types keep their Arrow type exactly."""

    def mapper(t: pa.DataType) -> Any:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return pd.StringDtype("pyarrow", na_value=np.nan)
        return pd.ArrowDtype(t)

    return table.to_pandas(types_mapper=mapper)


def _iter_text(path: Path, fmt: FileFormat, chunk_rows: int, what: str
               ) -> Iterator[pd.DataFrame]:
    header = _text_header(path, fmt, what)
    try:
        reader = pd.read_csv(
            path, sep=fmt.delimiter, dtype="str", keep_default_na=False, na_filter=False,
            encoding="utf-8", compression=fmt.compression, chunksize=chunk_rows,
            skip_blank_lines=True, engine="c",
        )
        with reader:
            emitted = False
            for chunk in reader:
                emitted = True
                yield chunk.fillna("")
            if not emitted:  # pragma: no cover - pandas yields an empty frame itself
                yield pd.DataFrame({c: pd.Series([], dtype="str") for c in header})
    except UnicodeDecodeError:
        raise _undecodable(path, fmt, what) from None
    except pd.errors.EmptyDataError as exc:  # pragma: no cover - caught by _text_header
        raise InputSchemaError(f"{what} file {path.name} is empty", raw=str(path)) from exc
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().replace("Error tokenizing data. C error: ", "")
        m = re.search(r"line (\d+)", msg)
        raise InputSchemaError(f"{what} file {path.name}: {msg}", raw=str(path),
                               row=int(m.group(1)) if m else None) from None


def iter_table(path: str | os.PathLike[str], *, chunk_rows: int = 100_000,
               what: str = "input") -> Iterator[pd.DataFrame]:
    """Stream a table in chunks of at most ``chunk_rows`` rows, in file order.

    Text formats are read as strings (empty cells are ``""``); Parquet keeps
    its column types; XLSX cells are rendered as text. At least one (possibly
    empty) chunk is always produced, so the column names are known.

    Parameters
    ----------
    path:
        The file; its format comes from the extension (:func:`detect_format`).
    chunk_rows:
        Rows per chunk.
    what:
        How the file is named in error messages (``"pairs"``, ``"genotypes"``).

    Raises
    ------
    InputSchemaError
        Empty file, undecodable bytes, ragged rows or duplicate column names;
        the message names the file and the line or column.
    """
    p = Path(path)
    fmt = detect_format(p)
    if not p.is_file():
        raise InputSchemaError(f"{what} file {p} does not exist", raw=str(p))
    if p.stat().st_size == 0:
        raise InputSchemaError(f"{what} file {p.name} is empty (0 bytes)", raw=str(p))
    if chunk_rows < 1:
        raise UsageError(f"chunk size must be at least 1, not {chunk_rows}")
    if fmt.is_text:
        return _iter_text(p, fmt, chunk_rows, what)
    if fmt.kind == "parquet":
        return _iter_parquet(p, chunk_rows, what)
    return _iter_xlsx(p, chunk_rows, what)


def read_table(path: str | os.PathLike[str], *, what: str = "input") -> pd.DataFrame:
    """Read a whole table (see :func:`iter_table` for the conventions)."""
    chunks = list(iter_table(path, chunk_rows=1_000_000, what=what))
    if len(chunks) == 1:
        return chunks[0]
    return pd.concat(chunks, ignore_index=True)


def count_rows(path: str | os.PathLike[str]) -> int | None:
    """Data rows of a table, cheaply, for progress display; ``None`` if unknown.

    Text files count line breaks (a quoted cell with a line break makes it an
    estimate); gzip files are not counted.
    """
    p = Path(path)
    try:
        fmt = detect_format(p)
        if fmt.is_text and fmt.compression is None:
            n = 0
            last = b"\n"
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    n += block.count(b"\n")
                    last = block[-1:]
            if last != b"\n":
                n += 1
            return max(n - 1, 0)
        if fmt.kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        if fmt.kind == "xlsx":
            from openpyxl import load_workbook

            wb = load_workbook(p, read_only=True)
            try:
                rows = wb.worksheets[0].max_row
            finally:
                wb.close()
            return max(int(rows) - 1, 0) if rows else None
    except (OSError, UsageError, pa.ArrowException, ValueError, KeyError):
        return None
    return None


# ---------------------------------------------------------------------------
# Column maps
# ---------------------------------------------------------------------------

#: Pair-file columns a column map may name; every other key is a genotypes column.
PAIR_KEYS = frozenset({"recipient_id", "donor_id"})


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Our column names mapped to the names used in a lab's files.

    ``genotypes`` and ``pairs`` each map *our* name (``sample_id``, ``A_1``,
    ``KIR2DL1``, ``recipient_id`` …) to *theirs*.
    """

    genotypes: dict[str, str] = field(default_factory=dict)
    pairs: dict[str, str] = field(default_factory=dict)
    source: str | None = None


def read_column_map(path: str | os.PathLike[str]) -> ColumnMap:
    """Read a column map from TOML or JSON.

    Either flat (``sample_id = "PatientID"``, ``recipient_id = "rid"``; the
    keys ``recipient_id`` and ``donor_id`` belong to the pairs file, every
    other key to the genotypes file), or in two sections ``[genotypes]`` and
    ``[pairs]``.

    Raises
    ------
    InputSchemaError
        The file cannot be read or a value is not a column name.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputSchemaError(f"column map {p} cannot be read: {exc}", raw=str(p)) from exc
    try:
        text = raw.decode("utf-8-sig")
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        elif p.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise UsageError(f"column map {p.name}: use a .toml or .json file", raw=str(p))
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputSchemaError(f"column map {p.name} cannot be parsed: {exc}",
                               raw=str(p)) from exc
    if not isinstance(data, dict):
        raise InputSchemaError(f"column map {p.name}: expected a table of names",
                               raw=str(p))
    geno: dict[str, str] = {}
    pairs: dict[str, str] = {}

    def take(section: Mapping[str, Any], target: dict[str, str] | None, where: str) -> None:
        for ours, theirs in section.items():
            if isinstance(theirs, Mapping):
                raise InputSchemaError(
                    f"column map {p.name}: unexpected section [{where}{ours}] (use "
                    "[genotypes] and [pairs])", raw=str(p), column=str(ours))
            if not isinstance(theirs, str) or not theirs.strip():
                raise InputSchemaError(
                    f"column map {p.name}: {where}{ours} must be a column name, not "
                    f"{theirs!r}", raw=str(p), column=str(ours))
            dest = target if target is not None else (pairs if ours in PAIR_KEYS else geno)
            if target is geno and ours in PAIR_KEYS:
                raise InputSchemaError(
                    f"column map {p.name}: {ours} is a pairs column, not a genotypes one",
                    raw=str(p), column=ours)
            if target is pairs and ours not in PAIR_KEYS:
                raise InputSchemaError(
                    f"column map {p.name}: pairs columns to map are recipient_id and "
                    f"donor_id, not {ours!r}", raw=str(p), column=str(ours))
            dest[str(ours)] = theirs

    sections = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    unknown = set(sections) - {"genotypes", "pairs"}
    if unknown:
        raise InputSchemaError(f"column map {p.name}: unknown section(s) "
                               f"{', '.join(sorted(unknown))} (use genotypes and pairs)",
                               raw=str(p))
    take({k: v for k, v in data.items() if k not in sections}, None, "")
    if "genotypes" in sections:
        take(sections["genotypes"], geno, "genotypes.")
    if "pairs" in sections:
        take(sections["pairs"], pairs, "pairs.")
    return ColumnMap(geno, pairs, str(p))


def apply_column_map(df: pd.DataFrame, mapping: Mapping[str, str], *,
                     what: str) -> pd.DataFrame:
    """Rename a lab's columns to ours (``mapping`` is ours → theirs).

    Raises
    ------
    InputSchemaError
        A mapped column is missing from the file, or the file already has a
        different column under our name (which would be silently shadowed).
    """
    if not mapping:
        return df
    rename: dict[str, str] = {}
    for ours, theirs in mapping.items():
        if theirs == ours:
            continue
        if theirs not in df.columns:
            raise InputSchemaError(
                f"column map: the {what} file has no column {theirs!r} (mapped to {ours}); "
                f"its columns are {', '.join(map(repr, df.columns))}", column=theirs)
        if ours in df.columns and ours not in mapping.values():
            raise InputSchemaError(
                f"column map: the {what} file already has a column {ours!r}; mapping "
                f"{theirs!r} onto it would hide it", column=ours)
        rename[theirs] = ours
    return df.rename(columns=rename)


# ---------------------------------------------------------------------------
# Writing: kirmatch.output (re-exported here so that existing imports keep working)
# ---------------------------------------------------------------------------

from kirmatch.output import (  # noqa: E402 - after the reading code it depends on
    FORMULA_PREFIXES,
    XLSX_MAX_ROWS,
    TableWriter,
    neutralise_formulas,
    write_table,
)
