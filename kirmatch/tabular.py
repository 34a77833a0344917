"""One reader for every input table: pairs, genotypes, antibodies and the
genotyper formats (DOMAIN.md §C.13).

It never guesses structure silently:

* **Delimiter.** ``,``, ``;`` (what Excel writes in most of Europe) or TAB is
  detected from the header and the first lines, whatever the extension, and
  recorded in :attr:`TableReader.dialect` (``kirmatch`` says which was used).
* **Encoding.** UTF-8, UTF-8 with a byte-order mark, UTF-16 with a BOM. A cell
  that is not valid text makes *its row* an error naming the row and column;
  the other rows are read.
* **Line endings.** LF, CRLF and CR-only (Excel for Mac) alike; quoted cells
  may hold line breaks.
* **Rows.** A row with more or fewer fields than the header is a *row error*
  (its cells are left empty and it keeps its place), never a shift of the
  columns and never an index inferred from the data. Rows are numbered as data
  rows, 1-based, blank lines not counted - the numbering of ``pairs_row``.
* **Compression and binary formats.** gzip (by extension or by content; a
  truncated file is a clear error), Parquet (column types checked: text,
  categorical, binary, numbers, booleans and dates are read; nested types are
  an error naming the column), XLSX (first sheet).

Everything is read as text except Parquet columns, which keep their type for
exact pass-through; :meth:`Chunk.text` gives any column as text.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "p.csv").write_bytes(b"recipient_id;donor_id\\r\\nR1;D1\\r\\nR2;D2;x\\r\\n")
>>> r = TableReader(d / "p.csv", what="pairs")
>>> r.columns, r.dialect.delimiter, r.dialect.newline
(('recipient_id', 'donor_id'), ';', 'CRLF')
>>> c = r.read()
>>> c.text("donor_id").to_pylist(), c.errors
(['D1', ''], {1: "row 2 has 3 fields but the header has 2 (extra value 'x')"})
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from kirmatch.errors import InputSchemaError, UsageError

__all__ = [
    "BLANK_TOKENS",
    "Chunk",
    "Dialect",
    "TableReader",
    "decode_text",
    "is_blank",
    "is_table_file",
    "read_table_arrow",
]

#: Cell values that mean "no value" in every input column (compared stripped and
#: upper-case). One definition for the whole program: a blank typing is untyped,
#: a blank clinical field is unknown, a blank id is an error.
BLANK_TOKENS = frozenset({"", "NA", "N/A", "NAN", "NULL"})

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_SNIFF_BYTES = 1 << 16
_DELIMITERS = (",", ";", "\t")
_DELIM_NAME = {",": "comma", ";": "semicolon", "\t": "tab"}
#: Extensions and the format they name (compression is also detected from content).
_SUFFIXES: tuple[tuple[str, str, str | None], ...] = (
    (".csv.gz", "csv", "gzip"), (".tsv.gz", "tsv", "gzip"), (".tab.gz", "tsv", "gzip"),
    (".txt.gz", "tsv", "gzip"), (".csv", "csv", None), (".tsv", "tsv", None),
    (".tab", "tsv", None), (".txt", "tsv", None), (".parquet", "parquet", None),
    (".pq", "parquet", None), (".xlsx", "xlsx", None),
)


def is_blank(value: object) -> bool:
    """True for a missing cell: ``None``, NaN, empty or whitespace, ``NA``, ``N/A``,
    ``NaN``, ``NULL`` (any case).

    >>> [is_blank(v) for v in ("", " na ", "N/A", None, float("nan"), "0", "NEG", "-")]
    [True, True, True, True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return str(value).strip().upper() in BLANK_TOKENS


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a table file was read (recorded in every run record)."""

    format: str                     # csv | tsv | parquet | xlsx
    delimiter: str | None = None    # text formats only
    encoding: str | None = None     # utf-8 | utf-8-sig | utf-16-le | utf-16-be
    compression: str | None = None  # gzip or None
    newline: str | None = None      # LF | CRLF | CR

    def describe(self) -> str:
        """One line for users: ``CSV, semicolon-delimited, UTF-8 with BOM, CRLF``.

        >>> Dialect("csv", ";", "utf-8-sig", None, "CRLF").describe()
        'text, semicolon-delimited, UTF-8 with BOM, CRLF line endings'
        """
        if self.format in ("parquet", "xlsx"):
            return "Parquet" if self.format == "parquet" else "XLSX (first sheet)"
        enc = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16-le": "UTF-16 (LE, BOM)",
               "utf-16-be": "UTF-16 (BE, BOM)"}.get(self.encoding or "", str(self.encoding))
        parts = ["text", f"{_DELIM_NAME.get(self.delimiter or ',', '?')}-delimited", enc]
        if self.newline:
            parts.append(f"{self.newline} line endings")
        if self.compression:
            parts.append(f"{self.compression}-compressed")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "delimiter": self.delimiter, "encoding": self.encoding,
                "compression": self.compression, "newline": self.newline}


@dataclass(slots=True)
class Chunk:
    """Consecutive data rows of a table, in file order.

    ``table`` has the header's columns in order (text files: ``string``;
    Parquet: the file's own types). ``first_row`` is the 1-based data-row number
    of the first row. ``errors`` maps a row index of this chunk to the reason the
    row could not be read (its cells are then empty); every other row is intact.
    """

    table: pa.Table
    first_row: int
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.table.column_names)

    def text(self, name: str) -> pa.Array:
        """Column ``name`` as a ``string`` array, with ``""`` for missing values.

        Numbers, booleans and dates are rendered as text (booleans as
        ``true``/``false``).
        """
        return as_text(self.table.column(name))

    def texts(self, name: str) -> list[str]:
        """:meth:`text` of column ``name`` as a list (a dictionary column's
        texts made once per distinct value)."""
        return _texts(self.table.column(name))

    def row_numbers(self) -> range:
        """The 1-based data-row numbers of the rows of this chunk."""
        return range(self.first_row, self.first_row + self.num_rows)

    def records(self) -> list[dict[str, str]]:
        """Rows as dicts of text (for small tables: antibodies, family pairs); a
        dictionary column's texts are made once per distinct value."""
        names = self.table.column_names
        if not names:
            return [{} for _ in range(self.num_rows)]
        cols = [self.texts(name) for name in names]
        return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def _texts(values: pa.Array | pa.ChunkedArray) -> list[str]:
    """:func:`as_text` of a column as a list (a dictionary column: each distinct
    value converted once)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_dictionary(arr.type):
        return as_text(arr).to_pylist()  # type: ignore[no-any-return]
    vocab = as_text(arr.dictionary).to_pylist()
    return ["" if k is None else vocab[k] for k in arr.indices.to_pylist()]


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Any supported column as ``string`` with ``""`` for null (see :meth:`Chunk.text`).

    >>> as_text(pa.array([1, None, 3])).to_pylist()
    ['1', '', '3']
    >>> as_text(pa.array([True, False])).to_pylist()
    ['true', 'false']
    >>> as_text(pa.array([14500.0, 2.5, float("inf"), float("nan"), 1e300])).to_pylist()
    ['14500', '2.5', 'inf', 'nan', '1e+300']
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_boolean(t):
        arr = pc.if_else(arr, "true", "false")
    elif pa.types.is_floating(t):
        # 14500.0 -> "14500": integral floats (spreadsheet numbers) read as integers;
        # only those an int64 holds (inf and 1e300 are not: cast, they wrap to -2**63).
        ints = pc.and_(pc.equal(arr, pc.floor(arr)), pc.less(pc.abs(arr), 2.0**63))
        as_int = pc.cast(pc.if_else(ints, arr, 0), pa.int64(), safe=False)
        arr = pc.if_else(ints, pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))
    elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        arr = arr.cast(pa.string())
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    return pc.fill_null(arr, "")


# ---------------------------------------------------------------------------
# Format and dialect detection
# ---------------------------------------------------------------------------

def detect_format(path: str | Path) -> tuple[str, str | None]:
    """(format, compression) from a file name: ``csv``, ``tsv``, ``parquet`` or ``xlsx``.

    >>> detect_format("out/results.tsv.gz")
    ('tsv', 'gzip')

    Raises
    ------
    UsageError
        The extension is not a supported one.
    """
    name = Path(path).name.lower()
    for suffix, kind, compression in _SUFFIXES:
        if name.endswith(suffix):
            return kind, compression
    raise UsageError(
        f"cannot tell the format of {Path(path).name!r} from its extension; use .csv, "
        ".tsv (optionally .gz), .parquet or .xlsx", raw=str(path))


def _open_raw(path: Path, compression: str | None) -> IO[bytes]:
    if compression == "gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _sniff_encoding(head: bytes) -> tuple[str, int]:
    """(encoding, BOM length) from the first bytes."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", 3
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise ValueError("UTF-32 text is not supported; save the file as UTF-8")
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    first = head.split(b"\n", 1)[0]
    if len(first) >= 4 and first.count(b"\x00") * 3 >= len(first):
        # every other byte NUL: UTF-16 without a byte-order mark (never guessed)
        raise ValueError("the file looks like UTF-16 text without a byte-order mark; save it "
                         "as UTF-8 (or UTF-16 with a byte-order mark)")
    return "utf-8", 0


def is_table_file(head: bytes) -> bool:
    """True for Parquet or XLSX (zip) content, which is no text."""
    return head.startswith((_PARQUET_MAGIC, _ZIP_MAGIC))


def decode_text(data: bytes, name: str) -> str:
    """A whole text file's bytes as text, decoded as :class:`TableReader`
    decodes text: gzip by content; UTF-8, or UTF-8/UTF-16 with a byte-order mark.

    >>> decode_text("a,b\\n".encode("utf-16"), "x.csv")
    'a,b\\n'

    Raises
    ------
    InputSchemaError
        Empty, broken gzip, binary (a NUL byte in UTF-8) or undecodable; the
        message names the file and the line.
    """
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputSchemaError(f"{name}: broken gzip data ({exc})") from None
    if not data.strip():
        raise InputSchemaError(f"{name}: empty file")
    try:
        encoding, bom = _sniff_encoding(data[:4096])
    except ValueError as exc:
        raise InputSchemaError(f"{name}: {exc}", row=1) from None
    if not encoding.startswith("utf-16") and b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        raise InputSchemaError(f"{name}: binary content (NUL byte), not a text file", row=line)
    try:
        return data[bom:].decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputSchemaError(f"{name}: undecodable bytes (not {encoding.upper()}) at byte "
                               f"{exc.start}; save the file as UTF-8", row=line) from None


def _newline(text: str) -> str | None:
    if "\r\n" in text:
        return "CRLF"
    if "\r" in text:
        return "CR"
    if "\n" in text:
        return "LF"
    return None


def _sample_records(text: str, delimiter: str, limit: int = 25) -> list[list[str]]:
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows


def _choose_delimiter(sample: str, default: str, complete: bool) -> str:
    """The delimiter that splits the header into the most fields and agrees with
    the next lines; ties go to the extension's delimiter."""
    # The last line of an incomplete sample may be cut: leave it out.
    if not complete and "\n" in sample.replace("\r", "\n"):
        cut = max(sample.rfind("\n"), sample.rfind("\r"))
        sample = sample[:cut]
    best: tuple[int, int, int, str] | None = None
    for d in _DELIMITERS:
        rows = _sample_records(sample, d)
        if not rows:
            continue
        width = len(rows[0])
        agree = sum(len(r) == width for r in rows[1:])
        score = (int(width > 1), agree, width, int(d == default))
        if best is None or score > (*best[:3], best[3]):
            best = (*score[:3], score[3], d)  # type: ignore[assignment]
    if best is None or best[0] == 0:
        return default
    return best[4]  # type: ignore[misc]


# ---------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------

class TableReader:
    """Open a table file, check its header and read it in chunks.

    Parameters
    ----------
    path:
        The file (format from the extension: ``.csv``/``.tsv``/``.txt`` with an
        optional ``.gz``, ``.parquet``, ``.xlsx``).
    what:
        How the file is named in messages (``pairs``, ``genotypes``, ``antibodies``).
    names, skip_header:
        Text files only: column names to use instead of a header row (the first
        line is then data, unless ``skip_header``: then it is skipped). For
        headerless tables and R row-name tables whose header lacks a cell.
    text:
        Read a file with an unknown extension as delimited text (genotyper
        outputs) instead of refusing it.

    Raises
    ------
    InputSchemaError
        The file is missing, empty, undecodable, has no header row, a column
        without a name or a repeated column name; the message names the file.
    UsageError
        The extension is not a supported one.
    """

    def __init__(self, path: str | Path, *, what: str = "input",
                 names: Sequence[str] | None = None, skip_header: bool = False,
                 text: bool = False) -> None:
        self.path = Path(path)
        self.what = what
        self.name = self.path.name
        self._names = tuple(names) if names is not None else None
        self._skip_header = skip_header
        try:
            fmt, compression = detect_format(self.path)
        except UsageError:
            if not text:
                raise
            fmt, compression = "csv", None
        if not self.path.exists():
            raise InputSchemaError(f"{what} file {self.path} does not exist", raw=str(path))
        if self.path.is_dir():
            raise InputSchemaError(f"{what} file {self.path} is a folder, not a file",
                                   raw=str(path))
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise InputSchemaError(f"{what} file {self.path} cannot be read: "
                                   f"{exc.strerror or exc}", raw=str(path)) from None
        if size == 0:
            raise InputSchemaError(f"{what} file {self.name} is empty (0 bytes)", raw=str(path))
        if magic.startswith(_GZIP_MAGIC) and fmt in ("csv", "tsv"):
            compression = "gzip"
        elif compression == "gzip" and not magic.startswith(_GZIP_MAGIC):
            raise InputSchemaError(f"{what} file {self.name} has a .gz name but is not gzip "
                                   "data", raw=str(path))
        if fmt in ("csv", "tsv") and magic.startswith(_PARQUET_MAGIC):
            fmt = "parquet"
        if fmt == "parquet" and not magic.startswith(_PARQUET_MAGIC):
            raise InputSchemaError(f"{what} file {self.name} is not a Parquet file",
                                   raw=str(path))
        self._format = fmt
        self._compression = compression
        self.notes: list[str] = []
        if fmt in ("csv", "tsv"):
            self._open_text("\t" if fmt == "tsv" else ",")
        elif fmt == "parquet":
            self._open_parquet()
        else:
            self._open_xlsx()
        # Genotyper outputs written by R carry row names under a blank first header cell.
        _check_header(self.columns, self.name, what, blank_first=text or (
            self._names is not None and self._names[0] == ""))

    # -- set-up per format ---------------------------------------------------
    def _fail(self, message: str, **kw: Any) -> InputSchemaError:
        return InputSchemaError(f"{self.what} file {self.name}: {message}", raw=str(self.path),
                                **kw)

    def _open_text(self, default_delim: str) -> None:
        try:
            with _open_raw(self.path, self._compression) as fh:
                head = fh.read(_SNIFF_BYTES + 4)
        except (OSError, EOFError, zlib.error) as exc:
            raise self._fail(f"cannot be read ({exc}); is it truncated or corrupt?") from None
        complete = len(head) <= _SNIFF_BYTES
        try:
            encoding, bom = _sniff_encoding(head)
        except ValueError as exc:
            raise self._fail(str(exc)) from None
        body = head[bom:]
        if encoding.startswith("utf-16") and len(body) % 2:
            body = body[:-1]
        try:
            sample = body.decode(encoding.replace("-sig", ""), errors="strict")
        except UnicodeDecodeError as exc:
            cut = body[: exc.start]
            if exc.start >= len(body) - 4 and not complete:
                sample = cut.decode(encoding.replace("-sig", ""))
            else:
                # The header must be text; later rows are checked one by one.
                line = cut.count(b"\n") + 1
                first = cut.split(b"\n")[0]
                if b"\n" not in cut or (line == 1 and first.strip()):
                    raise self._fail(
                        f"line {line} is not valid UTF-8 text (byte 0x{body[exc.start]:02x}); "
                        "save the file as UTF-8 (or UTF-16 with a byte-order mark)") from None
                sample = cut.decode(encoding.replace("-sig", ""))
        if not sample.strip():
            raise InputSchemaError(f"{self.what} file {self.name} is empty (no header row, "
                                   "only blank lines)", raw=str(self.path))
        self._delimiter = _choose_delimiter(sample, default_delim, complete)
        rows = _sample_records(sample, self._delimiter, limit=1)
        if not rows:
            raise self._fail("has no header row")
        header = self._names if self._names is not None else rows[0]
        self.columns: tuple[str, ...] = tuple(c.strip().lstrip("\ufeff") for c in header)
        self._raw_columns = tuple(header)
        #: The first records of the file as split by the chosen delimiter (header first).
        self.sample_records = _sample_records(sample, self._delimiter, limit=25)
        self.dialect = Dialect("tsv" if self._delimiter == "\t" else "csv", self._delimiter,
                               encoding, self._compression, _newline(sample))
        if self._delimiter != default_delim:
            self.notes.append(f"{self.what} file {self.name} read as "
                              f"{_DELIM_NAME[self._delimiter]}-delimited text")

    def _open_parquet(self) -> None:
        import pyarrow.parquet as pq

        try:
            self._pq = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise self._fail(f"is not a readable Parquet file ({exc})") from None
        schema = self._pq.schema_arrow
        self.columns = tuple(schema.names)
        if not self.columns:
            raise self._fail("has no columns")
        for f in schema:
            t = f.type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if pa.types.is_nested(t) or isinstance(t, pa.ExtensionType):
                raise self._fail(f"column {f.name!r} has type {f.type} (a list or record per "
                                 "cell); kirmatch reads one value per cell: text, numbers, "
                                 "booleans or dates", column=f.name)
        self.dialect = Dialect("parquet")

    def _open_xlsx(self) -> None:
        from openpyxl import load_workbook

        try:
            self._wb = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for bad files
            raise self._fail(f"is not a readable XLSX workbook ({exc})") from None
        ws = self._wb.worksheets[0]
        self._xrows = ws.iter_rows(values_only=True)
        # A formula cell keeps the value the spreadsheet last computed; a file
        # written by a script may hold the formula only, and openpyxl then reads
        # the cell as empty. Read the formulas alongside, so such a cell is a row
        # error rather than a silent "untyped".
        self._fwb = None
        self._frows: Iterator[tuple[Any, ...]] | None = None
        if _xlsx_has_formulas(self.path):
            self._fwb = load_workbook(self.path, read_only=True, data_only=False)
            self._frows = self._fwb.worksheets[0].iter_rows(values_only=True)
        self._xline = 0
        header = None
        for row in self._xrows:
            self._xline += 1
            if self._frows is not None:
                next(self._frows, None)
            if any(v is not None and str(v).strip() for v in row):
                header = row
                break
        if header is None:
            self._wb.close()
            raise self._fail("is empty (no header row)")
        last = max(i for i, v in enumerate(header) if v is not None and str(v).strip())
        self.columns = tuple(_xlsx_cell(v).strip() for v in header[: last + 1])
        self.dialect = Dialect("xlsx")

    # -- reading ---------------------------------------------------------------
    def chunks(self, chunk_rows: int = 100_000) -> Iterator[Chunk]:
        """Yield the data rows in chunks of at most ``chunk_rows`` rows (at least
        one chunk, possibly empty, is always yielded)."""
        if chunk_rows < 1:
            raise UsageError(f"chunk size must be at least 1, not {chunk_rows}")
        if self._format in ("csv", "tsv"):
            yield from self._text_chunks(chunk_rows)
        elif self._format == "parquet":
            yield from self._parquet_chunks(chunk_rows)
        else:
            yield from self._xlsx_chunks(chunk_rows)

    def read(self) -> Chunk:
        """The whole table as one chunk."""
        parts = list(self.chunks(1 << 20))
        if len(parts) == 1:
            return parts[0]
        errors: dict[int, str] = {}
        offset = 0
        for p in parts:
            errors.update({offset + i: m for i, m in p.errors.items()})
            offset += p.num_rows
        return Chunk(pa.concat_tables([p.table for p in parts]), 1, errors)

    def _text_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        import pyarrow.csv as pcsv

        names = self._raw_columns
        emitted = 0
        binary = False
        restarts = 0
        while True:
            bad: list[tuple[int, str]] = []

            def handler(row: Any, bad: list[tuple[int, str]] = bad) -> str:
                if row.number is None:  # pragma: no cover - only with threads
                    return "error"
                got, want = row.actual_columns, row.expected_columns
                try:
                    text = row.text or ""
                except (UnicodeDecodeError, ValueError):  # a ragged row that is not UTF-8
                    text = ""
                if got > want:
                    extra = next((c for c in _split_row(text, self._delimiter)[want:]
                                  if c.strip()), "")
                    what = (f"extra value {extra!r}" if extra else
                            "an empty extra field: a trailing delimiter?")
                    msg = f"has {got} fields but the header has {want} ({what})"
                else:
                    msg = f"has {got} field{'s' if got != 1 else ''} but the header has {want}"
                bad.append((row.number - 1, msg))
                return "skip"

            typ = pa.binary() if binary else pa.string()
            opts = dict(
                read_options=pcsv.ReadOptions(
                    use_threads=False, block_size=1 << 22,
                    column_names=list(names) if self._names is not None else None,
                    skip_rows=1 if self._skip_header else 0,
                    encoding=self.dialect.encoding.replace("-sig", "")
                    if self.dialect.encoding and self.dialect.encoding.startswith("utf-16")
                    else "utf8"),
                parse_options=pcsv.ParseOptions(delimiter=self._delimiter, quote_char='"',
                                                double_quote=True, newlines_in_values=True,
                                                ignore_empty_lines=True,
                                                invalid_row_handler=handler),
                convert_options=pcsv.ConvertOptions(
                    column_types={n: typ for n in names}, strings_can_be_null=False,
                    quoted_strings_can_be_null=False, null_values=[], check_utf8=not binary),
            )
            try:
                source = pa.CompressedInputStream(pa.OSFile(str(self.path)), "gzip") \
                    if self._compression == "gzip" else str(self.path)
                undecodable: list[bool] = []
                with _quiet_row_decoding(undecodable):
                    reader = pcsv.open_csv(source, **opts)  # type: ignore[arg-type]
                got_names = tuple(reader.schema.names)
                if got_names != names:  # pragma: no cover - sniffer and Arrow disagree
                    raise self._fail(f"header could not be read consistently ({got_names})")
                placer = _RowPlacer(len(names))
                skip = emitted
                while True:
                    with _quiet_row_decoding(undecodable):
                        try:
                            batch = None if undecodable else reader.read_next_batch()
                        except StopIteration:
                            break
                    if undecodable or batch is None:  # Arrow could not hand a ragged, non-UTF-8 row over
                        raise pa.ArrowInvalid("Expected columns: undecodable ragged row")
                    rows = placer.place(batch, bad)
                    for chunk_table, errs in rows:
                        n = chunk_table.num_rows
                        if skip >= n:
                            skip -= n
                            continue
                        if skip:
                            chunk_table = chunk_table.slice(skip)
                            errs = {i - skip: m for i, m in errs.items() if i >= skip}
                            skip = 0
                        yield from self._emit(chunk_table, errs, emitted, chunk_rows, binary)
                        emitted += chunk_table.num_rows
                tail, errs = placer.finish(bad)
                if tail is not None and skip < tail.num_rows:
                    tail = tail.slice(skip)
                    errs = {i - skip: m for i, m in errs.items() if i >= skip}
                    yield from self._emit(tail, errs, emitted, chunk_rows, binary)
                    emitted += tail.num_rows
                if emitted == 0:
                    yield Chunk(pa.table({n: pa.array([], pa.string()) for n in self.columns}),
                                1, {})
                return
            except pa.ArrowInvalid as exc:
                msg = str(exc)
                if "UTF8" in msg.upper() and not binary and restarts == 0:
                    # A row that is not valid text: read again as bytes from where we
                    # stopped, and make only the undecodable rows errors.
                    binary = True
                    restarts += 1
                    continue
                if "Expected" in msg and "columns" in msg:
                    # Arrow could not even hand the row over (a ragged row that is not
                    # UTF-8 either): read the rest with the exact, slower parser.
                    yield from self._python_chunks(chunk_rows, skip=emitted)
                    return
                raise self._fail(_arrow_message(msg)) from None
            except (OSError, EOFError, zlib.error) as exc:
                raise self._fail(f"cannot be read to the end ({exc}); is it truncated or "
                                 "corrupt?") from None

    def _python_chunks(self, chunk_rows: int, *, skip: int) -> Iterator[Chunk]:
        """The exact fallback parser (Python's csv module): every row is read as
        bytes decoded with ``surrogateescape``, so that a row that is both ragged
        and undecodable is one row error and the others are intact."""
        enc = self.dialect.encoding or "utf-8"
        enc = enc.replace("-sig", "")
        width = len(self.columns)
        try:
            with _open_raw(self.path, self._compression) as raw:
                data = raw.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise self._fail(f"cannot be read to the end ({exc}); is it truncated or "
                             "corrupt?") from None
        if self.dialect.encoding == "utf-8-sig" and data.startswith(codecs.BOM_UTF8):
            data = data[3:]
        text = data.decode(enc, errors="surrogateescape")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter)
        rows: list[list[str | None]] = []
        errs: dict[int, str] = {}
        emitted = 0
        header_seen = self._names is not None and not self._skip_header
        skipped_header = not self._skip_header
        n = 0
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if not header_seen:
                header_seen = True
                continue
            if not skipped_header:
                skipped_header = True
                continue
            n += 1
            if n <= skip:
                continue
            bad = next((j for j, c in enumerate(cells) if any(
                "\udc80" <= ch <= "\udcff" for ch in c)), None)
            if len(cells) != width:
                got = len(cells)
                errs[len(rows)] = (f"has {got} field{'s' if got != 1 else ''} but the header "
                                   f"has {width}")
                rows.append([None] * width)
            elif bad is not None:
                col = self.columns[bad]
                errs[len(rows)] = f"column {col!r} is not valid UTF-8 text"
                rows.append([None] * width)
            else:
                rows.append(list(cells))
            if len(rows) >= chunk_rows:
                yield self._list_chunk(rows, errs, skip + emitted)
                emitted += len(rows)
                rows, errs = [], {}
        if rows or skip + emitted == 0:
            yield self._list_chunk(rows, errs, skip + emitted)

    def _list_chunk(self, rows: list[list[str | None]], errs: dict[int, str],
                    emitted: int) -> Chunk:
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(self.columns)
        table = pa.table({n: pa.array(list(c), pa.string())
                          for n, c in zip(self.columns, cols, strict=True)})
        table, e2 = _flag_nul(table, dict(errs), emitted + 1)
        return Chunk(table, emitted + 1, {i: f"row {emitted + 1 + i} {m}"
                                          for i, m in e2.items()})

    def _emit(self, table: pa.Table, errors: dict[int, str], emitted: int, chunk_rows: int,
              binary: bool) -> Iterator[Chunk]:
        table = table.rename_columns(list(self.columns))
        for start in range(0, max(table.num_rows, 1), chunk_rows):
            part = table.slice(start, chunk_rows)
            if part.num_rows == 0:
                return
            errs = {i - start: m for i, m in errors.items() if start <= i < start + chunk_rows}
            first = emitted + start + 1
            if binary:
                part, errs = _decode_binary(part, errs, first)
            part, errs = _flag_nul(part, errs, first)
            yield Chunk(part, first, {i: f"row {first + i} {m}" if not m.startswith("row ")
                                      else m for i, m in errs.items()})

    def _parquet_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        emitted = 0
        try:
            for batch in self._pq.iter_batches(batch_size=chunk_rows):
                table = pa.Table.from_batches([batch])
                table, errs = _decode_binary(table, {}, emitted + 1, only_binary=True)
                table, errs = _flag_nul(table, errs, emitted + 1)
                yield Chunk(table, emitted + 1, {i: f"row {emitted + 1 + i} {m}"
                                                 for i, m in errs.items()})
                emitted += table.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise self._fail(f"cannot be read ({exc})") from None
        if emitted == 0:
            yield Chunk(self._pq.schema_arrow.empty_table(), 1, {})

    def _xlsx_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        width = len(self.columns)
        buf: list[list[str]] = []
        errs: dict[int, str] = {}
        emitted = 0
        try:
            for row in self._xrows:
                self._xline += 1
                frow = next(self._frows, ()) if self._frows is not None else ()
                cells = [_xlsx_cell(v) for v in row]
                lost = next((j for j, (v, f) in enumerate(zip(row, frow, strict=False))
                             if v is None and isinstance(f, str) and f.startswith("=")
                             and j < width), None)
                if lost is not None:
                    errs[len(buf)] = (f"column {self.columns[lost]!r} holds a formula without a "
                                      f"saved value ({str(frow[lost])[:40]!r}, sheet row "
                                      f"{self._xline}); open and save the file in a "
                                      "spreadsheet program, or export CSV")
                    buf.append([""] * width)
                    continue
                if not any(c.strip() for c in cells):
                    continue  # formatted but empty rows are not data
                extra = [c for c in cells[width:] if c.strip()]
                if extra:
                    errs[len(buf)] = (f"has a value beyond the header's {width} columns "
                                      f"({extra[0]!r}, sheet row {self._xline})")
                    cells = [""] * width
                cells = (cells + [""] * width)[:width]
                buf.append(cells)
                if len(buf) >= chunk_rows:
                    yield self._xlsx_chunk(buf, errs, emitted)
                    emitted += len(buf)
                    buf, errs = [], {}
            if buf or emitted == 0:
                yield self._xlsx_chunk(buf, errs, emitted)
        finally:
            self._wb.close()
            if self._fwb is not None:
                self._fwb.close()

    def _xlsx_chunk(self, buf: list[list[str]], errs: dict[int, str], emitted: int) -> Chunk:
        cols = list(zip(*buf, strict=True)) if buf else [()] * len(self.columns)
        table = pa.table({n: pa.array(list(c), pa.string()) for n, c in zip(self.columns, cols,
                                                                            strict=True)})
        table, e2 = _flag_nul(table, dict(errs), emitted + 1)
        return Chunk(table, emitted + 1, {i: f"row {emitted + 1 + i} {m}"
                                          for i, m in e2.items()})


@contextlib.contextmanager
def _quiet_row_decoding(flag: list[bool]) -> Iterator[None]:
    """While Arrow parses: a ragged row that is not UTF-8 cannot be handed to the
    invalid-row handler (Arrow decodes its text first and reports the failure as
    an "unraisable" exception on stderr). Swallow that report, note it in
    ``flag``, and let the caller switch to the exact parser."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            flag.append(True)
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


class _RowPlacer:
    """Put the rows the CSV parser rejected (ragged rows) back in their places.

    The parser skips a bad row and reports its record number; valid rows keep
    their order. Bad rows become all-null rows with an error, so that output
    rows stay one per input row, in order.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.next_row = 1          # 1-based data row of the next row to place
        self.pending: list[tuple[int, str]] = []

    def _take(self, bad: list[tuple[int, str]]) -> None:
        if bad:
            self.pending.extend(bad)
            bad.clear()
            self.pending.sort()
            if self.pending[0][0] < self.next_row:
                raise InputSchemaError(
                    f"malformed row {self.pending[0][0]} could not be placed; the file "
                    "cannot be read reliably (check its quoting)")

    def place(self, batch: pa.RecordBatch, bad: list[tuple[int, str]]
              ) -> list[tuple[pa.Table, dict[int, str]]]:
        self._take(bad)
        n = batch.num_rows
        end = self.next_row + n  # exclusive, before counting the bad rows inside
        inside = []
        while self.pending and self.pending[0][0] < end + len(inside):
            inside.append(self.pending.pop(0))
        table = pa.Table.from_batches([batch])
        if not inside:
            self.next_row += n
            return [(table, {})]
        # Interleave: positions of bad rows within the combined range.
        total = n + len(inside)
        start = self.next_row
        bad_pos = {r - start: m for r, m in inside}
        idx: list[int | None] = []
        g = 0
        for i in range(total):
            if i in bad_pos:
                idx.append(None)
            else:
                idx.append(g)
                g += 1
        take = pa.array(idx, pa.int64())
        self.next_row += total
        return [(table.take(take), bad_pos)]

    def finish(self, bad: list[tuple[int, str]]) -> tuple[pa.Table | None, dict[int, str]]:
        self._take(bad)
        if not self.pending:
            return None, {}
        errs = {}
        for i, (r, m) in enumerate(self.pending):
            if r != self.next_row + i:  # pragma: no cover - defensive
                raise InputSchemaError(f"malformed row {r} could not be placed; the file "
                                       "cannot be read reliably (check its quoting)")
            errs[i] = m
        return None if not errs else _null_rows(self.width, len(errs)), errs


def _null_rows(width: int, n: int) -> pa.Table:
    return pa.table({f"c{i}": pa.nulls(n, pa.string()) for i in range(width)})


def _split_row(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([text], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return text.split(delimiter)


def _arrow_message(msg: str) -> str:
    msg = msg.strip().replace("CSV parse error: ", "")
    return msg[:300]


def _decode_binary(table: pa.Table, errs: dict[int, str], first_row: int, *,
                   only_binary: bool = False) -> tuple[pa.Table, dict[int, str]]:
    """Binary columns to text; a cell that is not UTF-8 makes its row an error."""
    cols = []
    errs = dict(errs)
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
            cols.append(col)
            continue
        arr = col.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(t)
        try:
            cols.append(arr.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        values = arr.to_pylist()
        out: list[str | None] = []
        for i, v in enumerate(values):
            if v is None:
                out.append(None)
                continue
            try:
                out.append(v.decode("utf-8"))
            except UnicodeDecodeError as exc:
                out.append(None)
                if i not in errs:
                    errs[i] = (f"column {name!r} is not valid UTF-8 text (byte "
                               f"0x{v[exc.start]:02x} at character {exc.start + 1})")
        cols.append(pa.array(out, pa.string()))
    if only_binary and len(cols) == table.num_columns and all(
            c is o for c, o in zip(cols, table.columns, strict=True)):
        return table, errs
    table = pa.table(cols, names=table.column_names)
    if errs:
        table = _blank_rows(table, errs)
    return table, errs


def _flag_nul(table: pa.Table, errs: dict[int, str], first_row: int
              ) -> tuple[pa.Table, dict[int, str]]:
    """A NUL byte in a text cell makes its row an error (a corrupt or binary file)."""
    found = dict(errs)
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            continue
        arr = col.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(t)
        hit = pc.fill_null(pc.match_substring(arr, "\x00"), False)
        if not pc.any(hit).as_py():
            continue
        for i in pc.indices_nonzero(hit).to_pylist():
            found.setdefault(i, f"column {name!r} holds a NUL byte (a corrupt or binary "
                                "file?)")
    if len(found) != len(errs):
        table = _blank_rows(table, found)
    return table, found


def _blank_rows(table: pa.Table, errs: dict[int, str]) -> pa.Table:
    """Null every cell of the error rows (their values cannot be trusted)."""
    mask = [False] * table.num_rows
    for i in errs:
        mask[i] = True
    m = pa.array(mask)
    cols = [pc.if_else(m, pa.scalar(None, c.type), c) for c in table.columns]
    return pa.table(cols, names=table.column_names)


def _xlsx_has_formulas(path: Path) -> bool:
    """True when a worksheet of the workbook holds a formula (an ``<f>`` element)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    with z.open(name) as fh:
                        for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                            if b"<f>" in block or b"<f " in block:
                                return True
    except (OSError, zipfile.BadZipFile):
        return False
    return False


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


def _check_header(columns: Sequence[str], name: str, what: str, *,
                  blank_first: bool = False) -> None:
    seen: set[str] = set()
    dups: list[str] = []
    for i, text in enumerate(columns, start=1):
        if not str(text).strip() and not (blank_first and i == 1):
            hint = " (a trailing delimiter?)" if i == len(columns) else ""
            raise InputSchemaError(f"{what} file {name}: column {i} has no name{hint}",
                                   raw=name)
        if text in seen and text not in dups:
            dups.append(text)
        seen.add(text)
    if dups:
        raise InputSchemaError(f"{what} file {name}: duplicate column name(s) "
                               f"{', '.join(repr(d) for d in dups)}", raw=name, column=dups[0])


def read_table_arrow(path: str | Path, *, what: str = "input") -> tuple[TableReader, Chunk]:
    """Open and read a whole (small) table: the reader (dialect, notes) and its rows."""
    reader = TableReader(path, what=what)
    return reader, reader.read()
