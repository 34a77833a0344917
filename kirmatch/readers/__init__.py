"""Readers for what KIR genotypers and HLA labs actually emit (DOMAIN.md §C.13).

Each reader turns one file format into the same genotype objects the string
parsers build (:class:`~kirmatch.kir.KIRGenotype`,
:class:`~kirmatch.hla.HLAGenotype`), one per sample, in file order:

========  =====================================================  ======================
format    source                                                 module
========  =====================================================  ======================
ping      PING ``finalAlleleCalls.csv`` (+ copy-number frame)    :mod:`.ping`
t1k       T1K ``*_genotype.tsv`` (file, folder), consolidated    :mod:`.t1k`
kirimp    KIR*IMP ``imputations.csv``                            :mod:`.kirimp`
matrix    MiDAS / allelefrequencies.net / DKMS per-gene tables   :mod:`.matrix`
gl        HLA GL-string column table                             :mod:`.hla_tables`
columns   HLA per-locus columns (``A_1``, ``A_2``, …)            :mod:`.hla_tables`
hml       NMDP HML 1.0 XML                                       :mod:`.hml`
hlaimp    HLA*IMP:03 ``imputations.csv``                         :mod:`.hlaimp`
optitype  OptiType ``*_result.tsv`` (file, folder), consolidated :mod:`.optitype`
========  =====================================================  ======================

Every reader keeps the KIR gene states present, absent and unknown; a failed
or low-confidence call is *unknown* with a reason and a warning, never absent
(DOMAIN.md §A.0). Errors are :class:`~kirmatch.errors.KirmatchError` subclasses
whose message names the file, the 1-based line and the column.

The shared helpers below (table reading, error location, merging paralog
typings) are used by the reader modules; the reader modules are imported lazily
so that importing :mod:`kirmatch.readers` stays cheap.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kirmatch.api import check_path, check_type
from kirmatch.errors import InputSchemaError, KirmatchError, UnknownAlleleError, UsageError
from kirmatch.hla import HLAGenotype
from kirmatch.kir import (
    CANONICAL_GENES,
    Copy,
    GeneState,
    KIRGeneTyping,
    KIRGenotype,
    merge_gene_typings,
    parse_kir_value,
    sort_copies,
)

if TYPE_CHECKING:
    from kirmatch.options import Options
    from kirmatch.people import People
    from kirmatch.tables import ReferenceTables

__all__ = [
    "GENOTYPES_TABLE_COLUMNS",
    "HLA_FORMATS",
    "KIR_FORMATS",
    "ReadResult",
    "detect_hla_format",
    "detect_kir_format",
    "genotypes_table",
    "read_hla",
    "read_kir",
]

#: KIR input formats accepted by :func:`read_kir` (plus ``auto``).
KIR_FORMATS = ("ping", "t1k", "kirimp", "matrix")
#: HLA input formats accepted by :func:`read_hla` (plus ``auto``).
HLA_FORMATS = ("gl", "columns", "hml", "hlaimp", "optitype")

#: Column names taken as the sample id column of a table (compared lower-case).
ID_COLUMNS = frozenset({
    "id", "sample_id", "sample", "sampleid", "sample id", "sample.id", "subject_id",
    "subject", "individual", "ind", "iid", "person_id", "person", "donor_id", "patient_id",
})

@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a reader understood from one input.

    Attributes
    ----------
    format:
        The format that was read (``ping``, ``t1k``, ``kirimp``, ``matrix``,
        ``gl``, ``columns``, ``hml``, ``hlaimp`` or ``optitype``).
    genotypes:
        Sample id → genotype, in file order (first appearance).
    warnings:
        Sample id → warning codes of the form ``code(detail)`` (DOMAIN.md
        §A.17), e.g. ``kir_gene_unknown(S1 KIR2DS4)``,
        ``t1k_low_quality(S1 KIR3DL1*005 quality 0)``,
        ``kirimp_exon_disagree(S1 KIR3DL1: ex4 present, ex9 absent)``. Every
        sample has an entry (possibly empty).
    sources:
        The files actually read, in reading order (e.g. a PING calls file and
        the copy-number frame found beside it).
    ignored:
        Columns of a table that carry no typing of this kind and were not read.
    """

    format: str
    genotypes: dict[str, KIRGenotype | HLAGenotype]
    warnings: dict[str, tuple[str, ...]]
    sources: tuple[str, ...] = field(default=())
    ignored: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------
# Facade
# ---------------------------------------------------------------------------

def read_kir(path: str | Path, fmt: str = "auto", *, tables: ReferenceTables | None = None,
             options: Options | None = None,
             copy_number: str | Path | None = None) -> ReadResult:
    """Read KIR typings from a genotyper's output file (or folder).

    Parameters
    ----------
    path:
        The input file; for ``t1k`` also a folder of ``*_genotype.tsv`` files
        or a consolidated multi-sample CSV, for ``ping`` also a PING results
        folder holding ``finalAlleleCalls.csv``.
    fmt:
        ``ping``, ``t1k``, ``kirimp``, ``matrix`` or ``auto`` (see
        :func:`detect_kir_format`).
    tables:
        Reference tables (IPD-KIR allele names); loaded when omitted.
    options:
        Reader settings ``t1k_min_quality`` and ``kirimp_min_posterior``
        (DOMAIN.md §A.1); the v1 defaults when omitted.
    copy_number:
        PING only: a copy-number frame to use instead of the
        ``manualCopyNumberFrame.csv`` / ``predictedCopyNumberFrame.csv``
        found beside the calls.

    Returns
    -------
    ReadResult
        ``format`` is the format actually read (never ``auto``).

    Raises
    ------
    UsageError
        ``fmt`` is not a known format.
    InputSchemaError, KIRParseError, UnknownAlleleError
        The input cannot be read; the message names file, line and column.
    TypeError
        An argument has the wrong type (e.g. a path that is not a str or
        path-like object); the message names it.
    """
    from kirmatch.options import Options
    from kirmatch.tables import ReferenceTables, load_reference_tables

    p = _existing_path("path", path)
    check_type("fmt", fmt, str)
    check_type("tables", tables, ReferenceTables, none_ok=True)
    check_type("options", options, Options, none_ok=True)
    if copy_number is not None:
        copy_number = _existing_path("copy_number", copy_number)
    t = tables if tables is not None else load_reference_tables()
    opts = options if options is not None else Options()
    name = fmt.strip().lower()
    if name == "auto":
        name = detect_kir_format(p)
    if name not in KIR_FORMATS:
        raise UsageError(f"unknown KIR format {fmt!r} (expected one of "
                         f"{', '.join((*KIR_FORMATS, 'auto'))})", raw=fmt)
    if copy_number is not None and name != "ping":
        raise UsageError("a copy-number frame can only be given with PING calls")
    if name == "ping":
        from kirmatch.readers.ping import read_ping

        cn = Path(copy_number) if copy_number is not None else None
        return read_ping(p, t, copy_number=cn)
    if name == "t1k":
        from kirmatch.readers.t1k import read_t1k

        return read_t1k(p, t, min_quality=opts.t1k_min_quality)
    if name == "kirimp":
        from kirmatch.readers.kirimp import read_kirimp

        return read_kirimp(p, t, min_posterior=opts.kirimp_min_posterior)
    from kirmatch.readers.matrix import read_kir_matrix

    return read_kir_matrix(p, t)


def read_hla(path: str | Path, fmt: str = "auto", *, options: Options | None = None,
             sample: str | None = None) -> ReadResult:
    """Read HLA typings: a GL-string table, per-locus columns, NMDP HML,
    HLA*IMP:03 imputations or OptiType calls.

    Parameters
    ----------
    path:
        The input file; for ``optitype`` also a folder of ``*_result.tsv`` files.
    fmt:
        ``gl``, ``columns``, ``hml``, ``hlaimp``, ``optitype`` or ``auto`` (see
        :func:`detect_hla_format`).
    options:
        Reader setting ``hlaimp_min_posterior`` (DOMAIN.md §A.1); the v1
        default when omitted.
    sample:
        OptiType only: the sample id of a single ``*_result.tsv`` (default:
        its file name without ``_result.tsv``).

    Returns
    -------
    ReadResult
        Sample id → :class:`~kirmatch.hla.HLAGenotype`, in file order.

    Raises
    ------
    UsageError
        ``fmt`` is not a known format, or ``sample`` is given for anything but
        one OptiType result file.
    InputSchemaError, HLAParseError
        The input cannot be read; the message names file, line and column.
    TypeError
        ``path`` is not a str or path-like object, ``fmt`` or ``sample`` is
        not a str, or ``options`` is not :class:`~kirmatch.options.Options`.
    """
    from kirmatch.options import Options

    p = _existing_path("path", path)
    check_type("fmt", fmt, str)
    check_type("options", options, Options, none_ok=True)
    check_type("sample", sample, str, none_ok=True)
    opts = options if options is not None else Options()
    name = fmt.strip().lower()
    if name == "auto":
        name = detect_hla_format(p)
    if name not in HLA_FORMATS:
        raise UsageError(f"unknown HLA format {fmt!r} (expected one of "
                         f"{', '.join((*HLA_FORMATS, 'auto'))})", raw=fmt)
    if name == "optitype":
        from kirmatch.readers.optitype import read_optitype

        return read_optitype(p, sample=sample)
    if sample is not None:
        raise UsageError(f"a sample id ({sample!r}) can only be given with an OptiType "
                         "result file", raw=sample)
    if p.is_dir():
        raise InputSchemaError(f"{p}: is a folder; only OptiType results (*_result.tsv) are "
                               "read from a folder", raw=str(p))
    if name == "hml":
        from kirmatch.readers.hml import read_hml

        return read_hml(p)
    if name == "hlaimp":
        from kirmatch.readers.hlaimp import read_hlaimp

        return read_hlaimp(p, min_posterior=opts.hlaimp_min_posterior)
    from kirmatch.readers.hla_tables import read_hla_columns, read_hla_gl_table

    return read_hla_gl_table(p) if name == "gl" else read_hla_columns(p)


def _existing_path(name: str, value: str | os.PathLike[str]) -> Path:
    """``value`` as a Path that exists (checked before any reader touches it)."""
    p = check_path(name, value)
    assert p is not None
    if not os.path.exists(p):  # False for unusable names (too long, …) as well
        raise InputSchemaError(f"{p}: no such file or folder", raw=str(p))
    return p


def detect_kir_format(path: str | Path) -> str:
    """Guess the KIR format of ``path`` from its name, header and content.

    * a folder with ``finalAlleleCalls.csv`` → ``ping``; with ``*_genotype.tsv``
      files → ``t1k``;
    * a file named ``*_genotype.tsv``, or tab-separated rows
      ``KIR… <int> <allele> <abundance> <quality> …``, or a header with
      ``sample_id, kir_gene, allele_count, quality_score`` (consolidated
      T1K) → ``t1k``; T1K's merge matrix (``t1k-merge.py``: ``sample``, allele
      columns, ``inconsistency``) is an error, as it holds allele abundances
      of runs of one individual, not genotypes;
    * a header with ``ID_1, ID_2, haplotypeID, locus, imputedType,
      posteriorProbability`` → ``kirimp`` (an error when its loci are HLA
      loci: HLA*IMP output is HLA input);
    * a header with PING's combined columns (``KIR2DL23``, ``KIR2DS35``,
      ``KIR3DL1S1``), or a file named ``finalAlleleCalls.csv`` or
      ``*CopyNumberFrame.csv`` → ``ping``;
    * any other table whose columns are KIR genes (or a ``kir`` column) →
      ``matrix``.

    Raises
    ------
    InputSchemaError
        Nothing matched; the message says how to name the format.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "finalAlleleCalls.csv").is_file():
            return "ping"
        if any(q.name.endswith("_genotype.tsv") for q in p.iterdir()):
            return "t1k"
        raise InputSchemaError(f"{p}: folder holds neither PING finalAlleleCalls.csv nor "
                               "T1K *_genotype.tsv files")
    if p.name.endswith("_genotype.tsv"):
        return "t1k"
    text = read_text(p)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    cells = first.split("\t")
    if len(cells) >= 8 and cells[0].strip().upper().startswith("KIR") \
            and cells[1].strip().isdigit():
        return "t1k"
    from kirmatch.readers.t1k import is_consolidated

    header = header_cells(text)
    if is_consolidated(header):
        return "t1k"
    if len(header) > 2 and header[0].lower() == "sample" and \
            header[-1].lower() == "inconsistency":
        raise InputSchemaError(
            f"{p.name}: a T1K merge matrix (t1k-merge.py: allele abundances of several runs of "
            "one individual), not per-sample genotypes; give the *_genotype.tsv files (or "
            "their folder)", row=1)
    lower = {h.lower() for h in header}
    if IMPUTATION_COLUMNS.issubset(lower):
        locus = _first_imputed_locus(text, header)
        if locus.upper().startswith("HLA"):
            raise InputSchemaError(f"{p.name}: HLA*IMP imputations (locus {locus!r}), not a "
                                   "KIR typing; give it as the HLA input", row=1)
        return "kirimp"
    from kirmatch.readers.ping import COMBINED_COLUMNS

    if p.name == "finalAlleleCalls.csv" or p.name.endswith("CopyNumberFrame.csv") or any(
            h.upper() in COMBINED_COLUMNS for h in header):
        return "ping"
    from kirmatch.readers.matrix import looks_like_kir_matrix

    if looks_like_kir_matrix(header):
        return "matrix"
    raise InputSchemaError(f"{p.name}: cannot tell the KIR format from its header "
                           f"{', '.join(repr(h) for h in header[:6])}; name it with "
                           "--kir-format ping|t1k|kirimp|matrix", row=1)


def detect_hla_format(path: str | Path) -> str:
    """Guess the HLA format of ``path``.

    * a folder of ``*_result.tsv`` files, a file named ``*_result.tsv``, a
      header ``A1, A2, B1, B2, C1, C2, Reads, Objective``, or a header with
      ``sample_id, hla_gene, hla_allele`` → ``optitype``;
    * XML (a file starting with ``<``) → ``hml``;
    * a header with ``ID_1, ID_2, haplotypeID, locus, imputedType,
      posteriorProbability`` whose loci are HLA loci (``HLAA`` …) →
      ``hlaimp`` (an error when they are KIR loci: KIR*IMP output is KIR
      input);
    * a table with per-locus columns (``A_1``, ``HLA-A_2``, ``B.1`` …) →
      ``columns``;
    * a table with a GL column (``hla``, ``gl``, ``glstring`` …) or two
      columns of id and GL string → ``gl``.

    Raises
    ------
    InputSchemaError
        Nothing matched.
    """
    from kirmatch.readers.optitype import RESULT_COLUMNS, SUFFIX, is_consolidated

    p = Path(path)
    if p.is_dir():
        if any(q.name.endswith(SUFFIX) for q in p.iterdir()):
            return "optitype"
        raise InputSchemaError(f"{p}: is a folder without OptiType *{SUFFIX} files, not an "
                               "HLA typing file")
    if p.name.endswith(SUFFIX):
        return "optitype"
    text = read_text(p)
    if text.lstrip().startswith("<"):
        return "hml"
    from kirmatch.readers.hla_tables import guess_table_kind

    header = header_cells(text)
    if {c.lower() for c in RESULT_COLUMNS}.issubset(h.lower() for h in header) or \
            is_consolidated(header):
        return "optitype"
    if IMPUTATION_COLUMNS.issubset(h.lower() for h in header):
        locus = _first_imputed_locus(text, header)
        if locus and not locus.upper().startswith("HLA"):
            raise InputSchemaError(f"{p.name}: KIR*IMP imputations (locus {locus!r}), not an "
                                   "HLA typing; give it as the KIR input", row=1)
        return "hlaimp"
    kind = guess_table_kind(header)
    if kind is None:
        raise InputSchemaError(f"{p.name}: cannot tell the HLA format from its header "
                               f"{', '.join(repr(h) for h in header[:6])}; name it with "
                               "--hla-format " + "|".join(HLA_FORMATS), row=1)
    return kind


#: The columns of KIR*IMP and HLA*IMP:03 ``imputations.csv``, as written.
IMPUTATION_HEADER = ("ID_1", "ID_2", "haplotypeID", "locus", "imputedType",
                     "posteriorProbability")
#: The same, lower-case (header cells are compared case-insensitively).
IMPUTATION_COLUMNS = frozenset(c.lower() for c in IMPUTATION_HEADER)


def _first_imputed_locus(text: str, header: Sequence[str], rows: int = 200) -> str:
    """The first non-blank ``locus`` cell of an imputations file (``""`` if none in
    the first ``rows`` lines): ``HLA…`` for HLA*IMP, ``KIR…``/``AvsB`` for KIR*IMP."""
    col = [h.lower() for h in header].index("locus")
    lines = [ln for ln in text.splitlines()[:rows + 1] if ln.strip()]
    for cells in csv.reader(lines[1:], delimiter=sniff_delimiter(lines[0])):
        if len(cells) > col and cells[col].strip():
            return cells[col].strip()
    return ""


# ---------------------------------------------------------------------------
# Shared helpers for the reader modules
# ---------------------------------------------------------------------------

def read_text(path: Path) -> str:
    """A genotyper file's text, read as every table is (the guide's "Text
    files"): Parquet and XLSX through the table reader, as CSV text (header and
    rows); other files decoded as the table reader decodes text
    (:func:`kirmatch.tabular.decode_text`: gzip, UTF-8, UTF-16 with a BOM).

    Raises
    ------
    InputSchemaError
        The file is missing, empty, binary or not decodable; the message names
        the file and the line of the first bad byte.
    """
    import io

    from kirmatch.tabular import TableReader, decode_text, is_table_file

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputSchemaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputSchemaError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputSchemaError(f"{path}: cannot read ({exc.strerror})") from None
    if is_table_file(data):
        chunk = TableReader(path, what="genotyper").read()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(chunk.columns)
        writer.writerows(zip(*(chunk.texts(c) for c in chunk.columns), strict=True))
        return out.getvalue()
    return decode_text(data, path.name)


def header_cells(text: str) -> list[str]:
    """The cells of the first non-blank line, split at its delimiter, stripped.

    >>> header_cells("sample_id; kir_gene ;allele_count")
    ['sample_id', 'kir_gene', 'allele_count']
    """
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    return [h.strip() for h in next(csv.reader([first], delimiter=sniff_delimiter(first)))]


def sniff_delimiter(header_line: str) -> str:
    """Tab if the header has tabs, else comma, else semicolon (spreadsheet exports)."""
    if "\t" in header_line:
        return "\t"
    if "," in header_line:
        return ","
    if ";" in header_line:
        return ";"
    return ","


@dataclass(frozen=True, slots=True)
class Table:
    """A delimited text table: header, and data rows with their 1-based data-row numbers."""

    source: str
    header: tuple[str, ...]
    header_line: int | None       # None: messages about the header name no row
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def read_table(path: Path) -> Table:
    """Read a delimited text table with a header row (the shared reader of
    :mod:`kirmatch.tabular`: delimiter, encodings and line endings detected).

    Rows are numbered as data rows, 1-based. Entirely blank rows are skipped.
    R's ``write.table`` writes row names under a header that lacks their cell:
    when *every* row has exactly one field more than such a header (one without
    an id column), a blank first header cell is added.

    Raises
    ------
    InputSchemaError
        Empty file, no header, a header cell repeated, or a row that cannot be
        read (the message names the row).
    """
    from kirmatch.tabular import TableReader

    reader = TableReader(path, what="input", text=True)
    chunk = reader.read()
    header = tuple(reader.columns)
    if chunk.errors and len(chunk.errors) == chunk.num_rows and not any(
            h.lower() in ID_COLUMNS for h in header) and all(
            f"has {len(header) + 1} fields" in m for m in chunk.errors.values()):
        reader = TableReader(path, what="input", text=True, names=("", *header),
                             skip_header=True)
        chunk = reader.read()
        header = ("", *header)
    if chunk.errors:
        i = min(chunk.errors)
        raise InputSchemaError(f"{path.name}: {chunk.errors[i]}", row=chunk.first_row + i)
    cols = [chunk.texts(c) for c in chunk.columns]
    rows = tuple((chunk.first_row + j, tuple(col[j] for col in cols))
                 for j in range(chunk.num_rows))
    return Table(path.name, header, None, rows)


@dataclass(frozen=True, slots=True)
class ImputationRow:
    """One row of an ``imputations.csv``: sample id (``ID_2``, else ``ID_1``),
    locus and imputed type as written, haplotype ``"1"`` or ``"2"``, and the
    posterior as written."""

    line: int
    sample: str
    locus: str
    haplotype: str
    imputed: str
    posterior: str


def read_imputations(path: Path, what: str) -> tuple[list[ImputationRow], tuple[str, ...]]:
    """The rows of a KIR*IMP or HLA*IMP:03 ``imputations.csv`` (``what`` names
    the tool in messages) and the columns that are not read.

    Raises
    ------
    InputSchemaError
        A required column is missing, a blank sample id (``ID_1`` and ``ID_2``
        both blank), or a ``haplotypeID`` that does not end in ``.1``/``.2``
        (file, data row and column in the message).
    """
    table = read_table(path)
    src = table.source
    index = {h.strip().lower(): i for i, h in enumerate(table.header)}
    missing = [c for c in IMPUTATION_HEADER if c.lower() not in index]
    if missing:
        raise InputSchemaError(f"{src}: missing {what} column(s) {', '.join(missing)}",
                               row=table.header_line, column=missing[0])
    col = [index[c.lower()] for c in IMPUTATION_HEADER]
    rows = []
    for line, cells in table.rows:
        id1, id2, hap_text, locus, imputed, posterior = (cells[i].strip() for i in col)
        if not (id2 or id1):
            raise InputSchemaError(f"{src}: blank sample id (ID_1 and ID_2 are both blank)",
                                   row=line, column="ID_2")
        hap = hap_text.rsplit(".", 1)[-1]
        if hap not in ("1", "2"):
            raise InputSchemaError(f"{src}: haplotypeID {hap_text!r} should end in .1 or .2 "
                                   "(hap.N.1, hap.N.2)", raw=hap_text, row=line,
                                   column="haplotypeID")
        rows.append(ImputationRow(line, id2 or id1, locus, hap, imputed, posterior))
    ignored = tuple(h for i, h in enumerate(table.header) if i not in col)
    return rows, ignored


class SubjectSamples:
    """The ``subject_id`` of each ``sample_id`` in a consolidated pipeline table
    (OptiType, T1K), where a subject (person) may have several samples
    (technical replicates). Samples are never merged: each is read on its own.

    >>> subjects = SubjectSamples("calls.csv")
    >>> subjects.add("S1", "P1", 1); subjects.add("S2", "P1", 2); subjects.add("S1", "P1", 3)
    >>> subjects.note("optitype", "S1")
    'optitype_subject_samples(S1 subject P1 has samples S1, S2: each read separately)'
    >>> subjects.add("S2", "P2", 4)
    Traceback (most recent call last):
    ...
    kirmatch.errors.InputSchemaError: calls.csv: sample 'S2' belongs to subject 'P1' on row 2 ...
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._subject: dict[str, tuple[str, int]] = {}
        self._samples: dict[str, list[str]] = {}

    def sample(self, cells: Sequence[str], line: int, col: Mapping[str, int]) -> str:
        """The ``sample_id`` of a row (``col``: column name → index), recording its
        ``subject_id`` when the table has one.

        Raises
        ------
        InputSchemaError
            A blank sample id, or a sample under a second subject.
        """
        sid = cells[col["sample_id"]].strip()
        if not sid:
            raise InputSchemaError(f"{self.source}: blank sample id", row=line,
                                   column="sample_id")
        if "subject_id" in col:
            self.add(sid, cells[col["subject_id"]].strip(), line)
        return sid

    def add(self, sample: str, subject: str, line: int) -> None:
        """Record a row; a sample under a second subject is an error."""
        first, first_line = self._subject.setdefault(sample, (subject, line))
        if first_line == line:
            self._samples.setdefault(subject, []).append(sample)
        elif subject != first:
            raise InputSchemaError(f"{self.source}: sample {sample!r} belongs to subject "
                                   f"{first!r} on row {first_line} and to {subject!r} on row "
                                   f"{line}", raw=subject, row=line, column="subject_id")

    def note(self, reader: str, sample: str) -> str | None:
        """``<reader>_subject_samples(…)`` when the sample's subject has several samples."""
        subject = self._subject.get(sample, ("", 0))[0]
        same = self._samples.get(subject, [])
        if len(same) < 2:
            return None
        return (f"{reader}_subject_samples({sample} subject {subject} has samples "
                f"{', '.join(same)}: each read separately)")


def folder_files(path: Path, suffix: str) -> list[Path]:
    """``[path]`` for a file; for a folder, its files named ``*<suffix>`` in name order.

    Raises
    ------
    InputSchemaError
        A folder without such files.
    """
    if not path.is_dir():
        return [path]
    files = sorted(q for q in path.iterdir() if q.is_file() and q.name.endswith(suffix))
    if not files:
        raise InputSchemaError(f"{path}: no *{suffix} files in this folder")
    return files


def find_id_column(table: Table, *,
                   is_data_column: Callable[[str], bool] | None = None) -> int:
    """Index of the sample id column.

    A column named like ``ID``/``sample_id``/``sample`` (case-insensitive), or
    an unnamed first column (R row names), or else the first column when it is
    not itself a data column (``is_data_column``).

    Raises
    ------
    InputSchemaError
        No id column can be found.
    """
    for i, h in enumerate(table.header):
        if h.strip().lower() in ID_COLUMNS:
            return i
    if table.header and not table.header[0].strip():
        return 0
    if table.header and (is_data_column is None or not is_data_column(table.header[0])):
        return 0
    raise InputSchemaError(f"{table.source}: no sample id column (name it ID or sample_id)",
                           row=table.header_line)


def sample_id(table: Table, line: int, cells: Sequence[str], id_col: int,
              seen: dict[str, int]) -> str:
    """The sample id of a row; blank or repeated ids are errors (never dropped or merged)."""
    sid = cells[id_col].strip()
    col = table.header[id_col] or "(row names)"
    if not sid:
        raise InputSchemaError(f"{table.source}: blank sample id", row=line, column=col)
    if sid in seen:
        raise InputSchemaError(f"{table.source}: sample {sid!r} appears twice (rows "
                               f"{seen[sid]} and {line})", raw=sid, row=line, column=col)
    seen[sid] = line
    return sid


def locate(exc: KirmatchError, source: str, line: int | None,
           column: str | None) -> KirmatchError:
    """Copy of ``exc`` whose message starts with the file name and names line and column."""
    new = exc.located()
    if not new.reason.startswith(f"{source}: "):
        new.reason = f"{source}: {new.reason}"
    return new.located(row=line, column=column)


_ALLELE_TOKEN = re.compile(r"^(?P<gene>(?:KIR)?[23]D[LSP][0-9][AB]?)\*(?P<digits>[0-9]+)"
                           r"(?P<suffix>[A-Z]?)$", re.IGNORECASE)


def hla_untyped_warnings(sample: str, genotype: HLAGenotype) -> list[str]:
    """``hla_untyped(<sample> <locus>)`` for every class I locus (A, B, C) without a typing.

    >>> from kirmatch.hla import parse_hla_genotype
    >>> hla_untyped_warnings("S1", parse_hla_genotype("A*02:01+A*24:02^DRA*01:01"))
    ['hla_untyped(S1 B)', 'hla_untyped(S1 C)']
    """
    from kirmatch.hla import CLASS_I_LOCI

    return [f"hla_untyped({sample} {loc})" for loc in CLASS_I_LOCI
            if genotype.locus(loc) is None]


def allele_name(token: str, tables: ReferenceTables) -> tuple[str, str]:
    """Validate an IPD-KIR allele name; return (canonical gene, protein-level name).

    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> allele_name("KIR2DL1*00302", t), allele_name("KIR2DL5A*001", t)
    (('KIR2DL1', 'KIR2DL1*003'), ('KIR2DL5', 'KIR2DL5A*001'))

    Raises
    ------
    KIRParseError
        Not a KIR allele name.
    UnknownAlleleError
        Well-formed but absent from IPD-KIR 2.13.0.
    """
    from kirmatch.errors import KIRParseError

    m = _ALLELE_TOKEN.match(token.strip())
    if m is None:
        raise KIRParseError(token, "not a KIR allele name (GENE*digits, e.g. KIR2DL1*00302)")
    typing = parse_kir_value(m.group("gene"), token.strip(), tables, raw=token)
    if typing.genotypes is None:  # a withdrawn name (IPD-KIR history): no allele to return
        raise UnknownAlleleError(token.strip(), tables.kir_release)
    return typing.gene, typing.genotypes[0][0][0]


def unknown(gene: str, reason: str) -> KIRGeneTyping:
    """An unknown gene state with a reason (``untyped``, ``failed``, ``low_quality`` …)."""
    return KIRGeneTyping(gene, GeneState.UNKNOWN, None, reason)


def present(gene: str, genotypes: Iterable[Iterable[Copy]]) -> KIRGeneTyping:
    """A present gene from its alternative genotypes (deduplicated, order kept).

    When no copy names an allele the typing is gene-level (``genotypes=None``).
    """
    alts: list[tuple[Copy, ...]] = []
    for g in genotypes:
        key = sort_copies(g)
        if key and key not in alts:
            alts.append(key)
    if not alts or all(not c for alt in alts for c in alt):
        return KIRGeneTyping(gene, GeneState.PRESENT)
    return KIRGeneTyping(gene, GeneState.PRESENT, tuple(alts))


#: Paralog and variant typings of one gene are joined by the one merge in kirmatch.kir.
merge_typings = merge_gene_typings


def build_kir(sample: str, states: dict[str, KIRGeneTyping], raw: str,
              warnings: Iterable[str] = ()) -> tuple[KIRGenotype, tuple[str, ...]]:
    """Assemble a sample's genotype (missing genes unknown) and its warning list.

    The reader-specific ``warnings`` are kept on the genotype too; the list
    returned adds ``kir_gene_unknown(<sample> <gene>)`` for every unknown gene
    and ``kir_gene_failed(<sample> <gene>)`` for failed calls.
    """
    genes = []
    for g in CANONICAL_GENES:
        genes.append(states.get(g) or unknown(g, "untyped"))
    own = tuple(dict.fromkeys(warnings))
    extra: list[str] = []
    for gt in genes:
        if gt.state is GeneState.UNKNOWN:
            if gt.reason == "failed":
                extra.append(f"kir_gene_failed({sample} {gt.gene})")
            extra.append(f"kir_gene_unknown({sample} {gt.gene})")
    genotype = KIRGenotype(raw, tuple(genes), own)
    return genotype, tuple(dict.fromkeys((*own, *extra)))


# ---------------------------------------------------------------------------
# Genotype tables through the one input grammar (``gl``, ``columns``, ``matrix``)
# ---------------------------------------------------------------------------

def read_genotype_table(path: Path, *, kind: str, tables: ReferenceTables,
                        headerless: tuple[str, ...] | None = None) -> People:
    """Read a genotypes-style table for one kind of typing (``hla`` or ``kir``)
    through :mod:`kirmatch.grammar`, strictly: any row or person that cannot be
    read is an error for the whole file (a genotyper's output must be whole).

    ``headerless``: column names to use when the first line is data.

    Raises
    ------
    InputSchemaError, ParseError, UnknownAlleleError
        The first problem, naming file, data row and column.
    """
    from kirmatch.people import people_from_table
    from kirmatch.tabular import TableReader

    reader = TableReader(path, what=kind.upper(), text=True, names=headerless)
    chunk = reader.read()
    if chunk.errors:
        i = min(chunk.errors)
        raise InputSchemaError(f"{path.name}: {chunk.errors[i]}", row=chunk.first_row + i)
    people = people_from_table(chunk, tables, source=path.name, what=kind.upper(),
                               need=(kind,), id_required=False, dialect=reader.dialect,
                               notes=reader.notes)
    if people.skipped_rows:
        raise InputSchemaError(f"{path.name}: blank sample id", row=people.skipped_rows[0],
                               column=people.layout.id_column if people.layout else None)
    if people.errors:
        i = min(people.errors)
        exc = people.errors[i]
        if exc.code == "duplicate_person":
            raise InputSchemaError(f"{path.name}: {exc.reason}", raw=people.ids[i],
                                   row=people.rows[i])
        raise exc if exc.source else exc.located(source=path.name)
    return people


# ---------------------------------------------------------------------------
# The genotypes table (what ``kirmatch convert`` writes)
# ---------------------------------------------------------------------------

#: Columns of kirmatch's own genotypes table.
GENOTYPES_TABLE_COLUMNS = ("sample_id", "hla", "kir")


def genotypes_table(kir: ReadResult | None = None,
                    hla: ReadResult | None = None) -> list[tuple[str, str, str]]:
    """Join KIR and HLA read results by sample id into genotypes-table rows.

    Rows are ``(sample_id, hla, kir)`` in order of first appearance (HLA input
    first, then KIR-only samples). A sample found in only one input gets the
    other column empty. The ``kir`` cell is :meth:`KIRGenotype.to_string`, which
    reads back through :func:`kirmatch.kir.parse_kir_genotype` with the same
    meaning (unknown genes stay unknown); a genotype with every gene unknown is
    written blank, which reads back as untyped (the same meaning). The ``hla``
    cell is the GL string.
    """
    order: dict[str, None] = {}  # insertion-ordered set: linear in the number of samples
    for result in (hla, kir):
        if result is not None:
            order.update(dict.fromkeys(result.genotypes))
    rows = []
    for sid in order:
        h = hla.genotypes.get(sid) if hla is not None else None
        k = kir.genotypes.get(sid) if kir is not None else None
        kir_text = k.to_string() if isinstance(k, KIRGenotype) and k.typed else ""
        rows.append((sid, str(h) if h is not None else "", kir_text))
    return rows
