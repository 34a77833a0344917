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

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kirmatch.errors import InputSchemaError
from kirmatch.hla import (
    CLASS_I_LOCI,
    HLAGenotype,
)
from kirmatch.kir import KIRGenotype
from kirmatch.readers import ID_COLUMNS, ReadResult, read_genotype_table

if TYPE_CHECKING:
    from kirmatch.people import People

__all__ = ["GL_COLUMNS", "PINNED_HLA_RELEASE", "guess_table_kind", "locus_column",
           "read_hla_columns", "read_hla_gl_table"]

#: GL-string column names (compared lower-case).
GL_COLUMNS = frozenset({"hla", "gl", "glstring", "gl_string", "hla_gl", "hla_glstring",
                        "hla_gl_string", "hla_typing", "typing", "hla_genotype"})
#: Columns an HLA table may carry and that are not read (the genotypes table's KIR).
IGNORED_COLUMNS = frozenset({"kir"})
PINNED_HLA_RELEASE = "3.58.0"


def locus_column(name: str) -> tuple[str, int] | None:
    """``"HLA-A_1"`` → ``("A", 1)``; ``None`` if not a per-allele column
    (the grammar of :mod:`kirmatch.grammar`).

    >>> locus_column("A_1"), locus_column("hla_drb1.2"), locus_column("B1")
    (('A', 1), ('DRB1', 2), ('B', 1))
    >>> locus_column("age") is None
    True
    """
    from kirmatch.grammar import _slot

    return _slot(name)


def guess_table_kind(header: Sequence[str]) -> str | None:
    """``columns`` if any header cell is a per-allele or whole-locus HLA column,
    ``gl`` if one is a GL column or the table is two columns ``id, GL``; else ``None``."""
    from kirmatch.grammar import _locus

    cells = [h.strip() for h in header]
    if any(locus_column(h) for h in cells) or any(
            _locus(h) and h.lower().startswith("hla") for h in cells):
        return "columns"
    if any(h.lower() in GL_COLUMNS for h in cells):
        return "gl"
    if len(cells) == 2 and ("*" in cells[1] or cells[0].lower() in ID_COLUMNS):
        return "gl"
    return None


def _untyped_warnings(sid: str, genotype: HLAGenotype) -> list[str]:
    return [f"hla_untyped({sid} {loc})" for loc in CLASS_I_LOCI if genotype.locus(loc) is None]


def _result(fmt: str, path: Path, people: People) -> ReadResult:
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for i, sid in enumerate(people.ids):
        g = people.hla(i) or HLAGenotype(raw="", loci=())
        own: list[str] = []
        version = people.gl_versions.get(i)
        if version is not None and version != PINNED_HLA_RELEASE:
            own.append(f"gl_version({sid} hla {version})")
        own.extend(_untyped_warnings(sid, g))
        genotypes[sid] = g
        warnings[sid] = tuple(own)
    ignored = people.layout.ignored if people.layout else ()
    return ReadResult(fmt, genotypes, warnings, (str(path),), ignored)


def read_hla_gl_table(path: Path) -> ReadResult:
    """Read a table of GL strings (see the module docstring).

    Raises
    ------
    InputSchemaError
        No id or GL column, a blank or conflicting repeated sample id.
    HLAParseError
        A GL string cannot be parsed (file, row and column in the message).
    """
    from kirmatch.tables import load_reference_tables

    tables = load_reference_tables()
    people = read_genotype_table(path, kind="hla", tables=tables,
                                 headerless=_headerless(path))
    if people.layout is None or people.layout.hla_gl is None:
        raise InputSchemaError(f"{path.name}: no GL-string column (name it hla or glstring)")
    return _result("gl", path, people)


def _headerless(path: Path) -> tuple[str, ...] | None:
    """``(sample_id, hla)`` when a two-column table has no header (its second
    cell is already a typing)."""
    from kirmatch.tabular import TableReader

    header = TableReader(path, what="HLA", text=True).columns
    if len(header) == 2 and "*" in header[1] and header[1].strip().lower() not in GL_COLUMNS:
        return ("sample_id", "hla")
    return None


def read_hla_columns(path: Path) -> ReadResult:
    """Read per-locus HLA columns (see the module docstring).

    Raises
    ------
    InputSchemaError
        No id or locus columns, a blank or conflicting repeated sample id.
    HLAParseError
        A cell cannot be parsed (file, row and column in the message).
    """
    from kirmatch.tables import load_reference_tables

    people = read_genotype_table(path, kind="hla", tables=load_reference_tables())
    lay = people.layout
    if lay is None or not (lay.hla_slots or lay.hla_loci):
        raise InputSchemaError(f"{path.name}: no HLA locus columns (A_1, A_2, …)")
    return _result("columns", path, people)
