"""HLA typing tables: a GL-string column, or per-locus columns (DOMAIN.md §C.13).

**GL table** (``format="gl"``): a sample id column and one typing column named
``hla``, ``gl``, ``glstring``, ``gl_string``, ``hla_gl`` … (or a two-column
table ``id, typing``, with or without a header). Each cell is read with
:func:`kirmatch.hla.parse_hla_genotype`: GL strings with the operators ``^``,
``|``, ``+``, ``~`` and ``/``, with or without the ``hla#3.58.0#`` namespace,
or plain allele lists. A GL version other than 3.58.0 gets a ``gl_version``
warning. A ``kir`` column (the genotypes table written by ``kirmatch
convert``) is ignored.

**Per-locus columns** (``format="columns"``): ``A_1, A_2, B_1, B_2, C_1,
C_2`` (also ``HLA-A_1``, ``HLA_A.1``, ``A1``, ``A.2`` …, any locus known to
:mod:`kirmatch.hla`), read with :func:`kirmatch.hla.hla_genotype_from_columns`.
A cell holds a full name (``A*02:01``), the numeric part only (``02:01``),
``/``-separated alternatives or serology; blank, ``NA`` and the WMDA
placeholders ``NNNN`` (absent DRB3/4/5), ``XXXX``, ``UUUU`` and ``NEW`` are
left untyped.

In both formats an HLA class I locus (A, B, C) without typing gets an
``hla_untyped(<sample> <locus>)`` warning; a sample with no typing at all is
kept with an empty genotype. Any other column is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from kirmatch.errors import HLAParseError, InputSchemaError, KirmatchError
from kirmatch.hla import (
    CLASS_I_LOCI,
    KNOWN_LOCI,
    HLAGenotype,
    hla_genotype_from_columns,
    parse_hla_genotype,
    parse_hla_typing,
)
from kirmatch.kir import KIRGenotype
from kirmatch.readers import (
    ID_COLUMNS,
    ReadResult,
    Table,
    find_id_column,
    locate,
    read_table,
    sample_id,
)

__all__ = ["GL_COLUMNS", "PINNED_HLA_RELEASE", "guess_table_kind", "locus_column",
           "read_hla_columns", "read_hla_gl_table"]

#: GL-string column names (compared lower-case).
GL_COLUMNS = frozenset({"hla", "gl", "glstring", "gl_string", "hla_gl", "hla_glstring",
                        "hla_gl_string", "hla_typing", "typing", "hla_genotype"})
#: Columns an HLA table may carry and that are not read (the genotypes table's KIR).
IGNORED_COLUMNS = frozenset({"kir"})
PINNED_HLA_RELEASE = "3.58.0"
_PLACEHOLDERS = frozenset({"", "NA", "NAN", "NNNN", "XXXX", "UUUU", "NEW"})
_LOCI = "|".join(sorted(KNOWN_LOCI, key=len, reverse=True))
_LOCUS_COL = re.compile(rf"^(?:HLA[\s_.\-]?)?(?P<locus>{_LOCI}|CW)[\s_.\-]?(?P<n>[12])$",
                        re.IGNORECASE)


def locus_column(name: str) -> tuple[str, int] | None:
    """``"HLA-A_1"`` → ``("A", 1)``; ``None`` if not a per-locus column.

    >>> locus_column("A_1"), locus_column("hla_drb1.2"), locus_column("B1")
    (('A', 1), ('DRB1', 2), ('B', 1))
    >>> locus_column("age") is None
    True
    """
    m = _LOCUS_COL.match(name.strip())
    if m is None:
        return None
    locus = m.group("locus").upper()
    return ("C" if locus == "CW" else locus), int(m.group("n"))


def guess_table_kind(header: Sequence[str]) -> str | None:
    """``columns`` if any header cell is a per-locus column, ``gl`` if one is a GL
    column or the table is two columns ``id, GL``; else ``None``."""
    cells = [h.strip() for h in header]
    if any(locus_column(h) for h in cells):
        return "columns"
    if any(h.lower() in GL_COLUMNS for h in cells):
        return "gl"
    if len(cells) == 2 and ("*" in cells[1] or cells[0].lower() in ID_COLUMNS):
        return "gl"
    return None


def _untyped_warnings(sid: str, genotype: HLAGenotype) -> list[str]:
    return [f"hla_untyped({sid} {loc})" for loc in CLASS_I_LOCI if genotype.locus(loc) is None]


def read_hla_gl_table(path: Path) -> ReadResult:
    """Read a table of GL strings (see the module docstring).

    Raises
    ------
    InputSchemaError
        No id or GL column, an unknown column, a blank or repeated sample id.
    HLAParseError
        A GL string cannot be parsed (file, line and column in the message).
    """
    table = read_table(path)
    src = table.source
    header = [h.strip() for h in table.header]
    headerless = len(header) == 2 and "*" in header[1] and header[1].lower() not in GL_COLUMNS
    if headerless:
        # No header row: the first line is data (id, GL string).
        table = Table(src, ("sample_id", "hla"), 0,
                      ((table.header_line, table.header), *table.rows))
        header = ["sample_id", "hla"]
    gl_cols = [i for i, h in enumerate(header) if h.lower() in GL_COLUMNS]
    if len(gl_cols) > 1:
        raise InputSchemaError(f"{src}: several GL columns "
                               f"({', '.join(repr(header[i]) for i in gl_cols)})",
                               row=table.header_line, column=header[gl_cols[1]])
    if not gl_cols:
        if len(header) != 2:
            raise InputSchemaError(f"{src}: no GL-string column (name it hla or glstring)",
                                   row=table.header_line)
        id_col = find_id_column(table, is_data_column=lambda h: False)
        gl_col = 1 - id_col
    else:
        gl_col = gl_cols[0]
        id_col = find_id_column(table, is_data_column=lambda h: h.strip().lower()
                                in GL_COLUMNS)
    for i, h in enumerate(header):
        if i not in (id_col, gl_col) and h.lower() not in IGNORED_COLUMNS:
            raise InputSchemaError(f"{src}: unexpected column {h!r} in a GL-string table",
                                   raw=h, row=table.header_line, column=h)
    seen: dict[str, int] = {}
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    col = header[gl_col]
    for line, cells in table.rows:
        sid = sample_id(table, line, cells, id_col, seen)
        text = cells[gl_col].strip()
        own: list[str] = []
        if text.upper() in ("", "NA", "NAN"):
            genotype = HLAGenotype(raw="", loci=())
        else:
            try:
                genotype = parse_hla_genotype(text)
            except KirmatchError as exc:
                raise locate(exc, src, line, col) from None
            if genotype.gl_version is not None and genotype.gl_version != PINNED_HLA_RELEASE:
                own.append(f"gl_version({sid} hla {genotype.gl_version})")
        own.extend(_untyped_warnings(sid, genotype))
        genotypes[sid] = genotype
        warnings[sid] = tuple(own)
    return ReadResult("gl", genotypes, warnings, (str(path),))


def read_hla_columns(path: Path) -> ReadResult:
    """Read per-locus HLA columns (see the module docstring).

    Raises
    ------
    InputSchemaError
        No id or locus columns, an unknown column, a blank or repeated sample id.
    HLAParseError
        A cell cannot be parsed (file, line and column in the message).
    """
    table = read_table(path)
    src = table.source
    id_col = find_id_column(table, is_data_column=lambda h: locus_column(h) is not None)
    loci: dict[int, tuple[str, int]] = {}
    for i, h in enumerate(table.header):
        if i == id_col or h.strip().lower() in IGNORED_COLUMNS:
            continue
        lc = locus_column(h)
        if lc is None:
            raise InputSchemaError(f"{src}: column {h!r} is not an HLA locus column (expected "
                                   "names like A_1, A_2, HLA-B_1)", raw=h,
                                   row=table.header_line, column=h)
        loci[i] = lc
    if not loci:
        raise InputSchemaError(f"{src}: no HLA locus columns (A_1, A_2, …)",
                               row=table.header_line)
    seen: dict[str, int] = {}
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for line, cells in table.rows:
        sid = sample_id(table, line, cells, id_col, seen)
        values: dict[str, list[str]] = {}
        for i, (locus, _n) in sorted(loci.items(), key=lambda kv: kv[1][1]):
            text = cells[i].strip()
            col = table.header[i]
            if text.upper() in _PLACEHOLDERS:
                continue
            try:
                for piece in text.split("/"):
                    if not piece.strip():
                        raise HLAParseError(text, "empty allele between '/'")
                    parse_hla_typing(piece.strip(), locus=locus)
            except KirmatchError as exc:
                raise locate(exc, src, line, col) from None
            values.setdefault(locus, []).append(text)
        try:
            genotype = hla_genotype_from_columns(values)
        except KirmatchError as exc:
            raise locate(exc, src, line, None) from None
        genotypes[sid] = genotype
        warnings[sid] = tuple(_untyped_warnings(sid, genotype))
    return ReadResult("columns", genotypes, warnings, (str(path),))
