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

Formula neutralisation (STYLE.md §6, OWASP "CSV injection"): in CSV, TSV and
XLSX output, a cell of an input-derived column that begins with ``=``, ``+``,
``-`` or ``@`` is written with a leading single quote (``'``) so that a
spreadsheet shows it as text instead of evaluating it
(:func:`neutralise_formulas`). Parquet output is left unchanged.

>>> detect_format("out/results.tsv.gz")
FileFormat(kind='tsv', compression='gzip')
>>> import pyarrow as pa
>>> neutralise_formulas(pa.array(["=1+2", "R1", "-", "@x", None])).to_pylist()
["'=1+2", 'R1', "'-", "'@x", None]
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
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
import pyarrow.compute as pc

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

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@")
_FORMULA_RE = r"^[=+\-@]"
#: Excel's sheet limit, header row included.
XLSX_MAX_ROWS = 1_048_576
_SPECIAL_CSV = re.compile(rb'[",\r\n]')
_SPECIAL_TSV = re.compile(rb'["\t\r\n]')

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

def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Strings become pandas ``str``; other types keep their Arrow type exactly."""

    def mapper(t: pa.DataType) -> Any:
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return pd.StringDtype("pyarrow", na_value=np.nan)
        return pd.ArrowDtype(t)

    return table.to_pandas(types_mapper=mapper)


def iter_table(path: str | os.PathLike[str], *, chunk_rows: int = 100_000,
               what: str = "input") -> Iterator[pd.DataFrame]:
    """Stream a table in chunks of at most ``chunk_rows`` rows, in file order, as
    pandas frames (see :class:`kirmatch.tabular.TableReader` for what is checked).

    Text cells are strings (empty cells ``""``); Parquet columns keep their
    types; a row that could not be read raises here (the batch front end keeps
    such rows as ``status=error`` rows instead).

    Raises
    ------
    InputSchemaError
        The file cannot be read, or a row of it (the message names the row).
    """
    from kirmatch.tabular import TableReader

    reader = TableReader(path, what=what)
    for chunk in reader.chunks(chunk_rows):
        if chunk.errors:
            i = min(chunk.errors)
            raise InputSchemaError(f"{what} file {Path(path).name}: {chunk.errors[i]}",
                                   raw=str(path), row=chunk.first_row + i)
        yield _arrow_to_pandas(chunk.table)


def arrow_from_pandas(df: pd.DataFrame) -> pa.Table:
    """A pandas frame as an Arrow table (index dropped; a column of mixed Python
    objects, say numbers and text, becomes text)."""
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        fixed = df.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                fixed[c] = fixed[c].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(fixed, preserve_index=False)


def read_table(path: str | os.PathLike[str], *, what: str = "input") -> pd.DataFrame:
    """Read a whole table as a pandas frame (see :func:`iter_table`)."""
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
# Writing
# ---------------------------------------------------------------------------

def neutralise_formulas(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prefix ``'`` to text cells beginning with ``=``, ``+``, ``-`` or ``@``.

    Non-text arrays (numbers, booleans) are returned unchanged.
    """
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    hit = pc.match_substring_regex(values, _FORMULA_RE)
    if not pc.any(hit).as_py():
        return values
    quoted = pc.binary_join_element_wise(pa.scalar("'", values.type), values,
                                         pa.scalar("", values.type))
    return pc.if_else(hit, quoted, values)


def _as_large_string(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_boolean(arr.type):
        arr = pc.if_else(arr, "true", "false")
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr.cast(pa.large_string())


def _string_buffer(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a large_string array (no copy)."""
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    if bufs[2] is None or len(arr) == 0:
        return memoryview(b"")
    return memoryview(bufs[2])[int(offsets[0]): int(offsets[-1])]


def _quote_text(arr: pa.Array, delimiter: str) -> pa.Array:
    """RFC 4180 quoting, only for the cells that need it."""
    special = _SPECIAL_TSV if delimiter == "\t" else _SPECIAL_CSV
    if special.search(_string_buffer(arr)) is None:  # scans the bytes, no copy
        return arr
    pattern = '["\\r\\n' + ("\\t" if delimiter == "\t" else delimiter) + "]"
    need = pc.match_substring_regex(arr, pattern)
    quoted = pc.binary_join_element_wise(
        pa.scalar('"', pa.large_string()), pc.replace_substring(arr, '"', '""'),
        pa.scalar('"', pa.large_string()), pa.scalar("", pa.large_string()))
    return pc.if_else(need, quoted, arr)


def _write_text_lines(fh: IO[bytes], table: pa.Table, delimiter: str,
                      batch_rows: int = 25_000) -> None:
    """Write a table as delimited text lines (no header), a slice at a time."""
    for start in range(0, table.num_rows, batch_rows):
        part = table.slice(start, batch_rows)
        line = _text_lines(part, delimiter)
        fh.write(_string_buffer(line))
        del line


def _text_lines(table: pa.Table, delimiter: str) -> pa.Array:
    """Encode a table as delimited text lines (no header), fast, in Arrow.

    Returns a large_string array whose value buffer holds the lines back to back.
    """
    cols = []
    for col in table.columns:
        arr = _as_large_string(col)
        arr = pc.fill_null(arr, "")
        cols.append(_quote_text(arr, delimiter))
    sep = pa.scalar(delimiter, pa.large_string())
    line = cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, sep)
    line = pc.binary_join_element_wise(line, pa.scalar("", pa.large_string()),
                                       pa.scalar("\n", pa.large_string()))
    if isinstance(line, pa.ChunkedArray):  # pragma: no cover - defensive
        line = line.combine_chunks()
    return line


def _header_line(names: Sequence[str], delimiter: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(names)
    return out.getvalue().encode("utf-8")


class TableWriter:
    """Write a table in chunks to CSV, TSV (optionally gzip), Parquet or XLSX.

    Rows go to a hidden ``.partial`` file next to the target, which replaces
    the target only on :meth:`close`; :meth:`abort` (or an exception inside a
    ``with`` block) removes it, so a failed run never leaves a half-written
    output under the final name. Columns named in ``neutralise`` get formula
    neutralisation in CSV, TSV and XLSX (see the module docstring).
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 neutralise: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.format = detect_format(self.path)
        self.neutralise = frozenset(neutralise) if self.format.neutralises else frozenset()
        self.rows = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self._names: list[str] | None = None
        self._schema: pa.Schema | None = None
        self._fh: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._pq: Any = None
        self._wb: Any = None
        self._ws: Any = None
        self._closed = False

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _start(self, table: pa.Table) -> None:
        self._names = list(table.column_names)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format.is_text:
            self._raw = open(self._tmp, "wb")
            self._fh = self._raw
            if self.format.compression == "gzip":
                self._fh = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw,
                                         compresslevel=6, mtime=0)
            self._fh.write(_header_line(self._names, self.format.delimiter))
        elif self.format.kind == "parquet":
            import pyarrow.parquet as pq

            self._schema = table.schema.remove_metadata()
            self._pq = pq.ParquetWriter(self._tmp, self._schema)
        else:
            from openpyxl import Workbook

            self._wb = Workbook(write_only=True)
            self._ws = self._wb.create_sheet("kirmatch")
            self._ws.append(self._names)

    def write(self, table: pa.Table) -> None:
        """Append the rows of ``table`` (same columns, in the same order, every time)."""
        if self._closed:
            raise ValueError("writer is closed")
        if self._names is None:
            self._start(table)
        elif list(table.column_names) != self._names:
            raise ValueError("every chunk must have the same columns")
        if self.neutralise:
            for i, name in enumerate(table.column_names):
                if name in self.neutralise:
                    table = table.set_column(i, name, neutralise_formulas(table.column(i)))
        if self.format.is_text:
            assert self._fh is not None
            _write_text_lines(self._fh, table, self.format.delimiter)
        elif self.format.kind == "parquet":
            assert self._schema is not None
            t = table.replace_schema_metadata(None)
            if t.schema != self._schema:
                t = t.cast(self._schema)
            self._pq.write_table(t)
        else:
            if self.rows + table.num_rows + 1 > XLSX_MAX_ROWS:
                raise InputSchemaError(
                    f"{self.path.name}: XLSX holds at most {XLSX_MAX_ROWS - 1:,} data rows; "
                    "write CSV or Parquet for larger batches", raw=str(self.path))
            cols = [c.to_pylist() for c in table.columns]
            from openpyxl.utils.exceptions import IllegalCharacterError

            for offset, row in enumerate(zip(*cols, strict=True)):
                try:
                    self._ws.append([self._xlsx_value(v) for v in row])
                except IllegalCharacterError as exc:
                    raise InputSchemaError(
                        f"{self.path.name}: row {self.rows + offset + 1} holds a control "
                        "character that XLSX cannot store; write CSV or Parquet",
                        raw=str(self.path)) from exc
        self.rows += table.num_rows

    def _xlsx_value(self, value: object) -> object:
        """Text is always stored as text: openpyxl would store ``=…`` as a formula."""
        if isinstance(value, str) and value.startswith("="):
            from openpyxl.cell import WriteOnlyCell

            cell = WriteOnlyCell(self._ws, value=value)
            cell.data_type = "s"
            return cell
        return value

    def close(self, *, empty: pa.Schema | None = None) -> None:
        """Finish the file and move it into place.

        ``empty``: the schema to write a header with when no chunk was written.
        """
        if self._closed:
            return
        if self._names is None:
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
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Drop the partial file."""
        self._closed = True
        for fh in (self._fh, self._raw):
            with contextlib.suppress(Exception):
                if fh is not None:
                    fh.close()
        with contextlib.suppress(Exception):
            if self._pq is not None:
                self._pq.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


def write_table(df: pd.DataFrame | pa.Table, path: str | os.PathLike[str], *,
                neutralise: Sequence[str] = ()) -> None:
    """Write a whole table (format from the extension; see :class:`TableWriter`)."""
    if isinstance(df, pa.Table):
        table = df
    else:
        try:
            table = pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            # Mixed Python objects in a column (say numbers and text): write them as text.
            fixed = df.copy()
            for c in fixed.columns:
                if fixed[c].dtype == object:
                    fixed[c] = fixed[c].map(lambda v: None if v is None else str(v))
            table = pa.Table.from_pandas(fixed, preserve_index=False)
    with TableWriter(path, neutralise=neutralise) as w:
        w.write(table)
