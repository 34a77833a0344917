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

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
# Writing: kirmatch.output (re-exported here so that existing imports keep working)
# ---------------------------------------------------------------------------

from kirmatch.output import (  # noqa: E402 - after the reading code it depends on
    FORMULA_PREFIXES,
    XLSX_MAX_ROWS,
    TableWriter,
    neutralise_formulas,
    write_table,
)
