"""KIR presence/absence matrices and per-gene string tables (MiDAS, allelefrequencies.net, DKMS).

A table with a sample id column (``ID``, ``sample_id`` … or R row names) and
one column per KIR gene (DOMAIN.md §C.13). Column names are resolved through
the reference gene table, case-insensitively and with an optional ``KIR_`` /
``KIR-`` / ``KIR.`` prefix: ``KIR2DL1``, ``2DL1``, ``kir_2DL1``, ``KIR2DS4N``,
``KIR2DL5A`` … An unknown column name is an error naming it.

Cell values (per gene):

* ``1``/``0``, ``POS``/``NEG`` (and ``+``/``-``, ``present``/``absent``,
  ``Y``/``N`` …) → present/absent;
* blank, ``NA``, ``NT``, ``UNK``, ``failed`` → **unknown** (``failed`` adds a
  ``kir_gene_failed`` warning);
* ``n`` (allelefrequencies.net: *not tested*) → **unknown**. Only in a file
  that uses ``Y``/``YES`` somewhere is ``N`` read as *no* (absent);
* DKMS-style allele strings (``001+002``, ``001/095+004``,
  ``004+003|006+010``) are read with :func:`kirmatch.kir.parse_kir_value` and
  validated against IPD-KIR 2.13.0.

Several columns of one gene (``KIR2DL5A`` and ``KIR2DL5B``, ``KIR2DS4`` and
``KIR2DS4N``) are merged: present if any is present, absent if all are absent,
else unknown. Genes without a column are unknown.

A whole-genotype column (``kir``, ``kir_genotype``, ``kir_gl`` …) may be used
instead of gene columns; its strings are read with
:func:`kirmatch.kir.parse_kir_genotype` (gene lists, the explicit
``KIR2DL1=POS;…`` form, ``kir#2.13.0#…`` GL strings). This is also how the
genotypes table written by ``kirmatch convert`` reads back. An ``hla`` column
is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from kirmatch.errors import InputSchemaError, KirmatchError
from kirmatch.hla import HLAGenotype
from kirmatch.kir import KIRGeneTyping, KIRGenotype, parse_kir_genotype, parse_kir_value
from kirmatch.readers import (
    ReadResult,
    build_kir,
    find_id_column,
    locate,
    merge_typings,
    read_table,
    sample_id,
    unknown,
)
from kirmatch.tables import ReferenceTables, load_reference_tables

__all__ = ["GENOTYPE_COLUMNS", "IGNORED_COLUMNS", "kir_column_gene", "looks_like_kir_matrix",
           "read_kir_matrix"]

#: Whole-genotype string columns (compared lower-case).
GENOTYPE_COLUMNS = frozenset({"kir", "kir_genotype", "kir_gl", "kir_glstring", "kir_typing",
                              "kir_string"})
#: Columns a KIR table may carry and that are not read (the genotypes table's HLA).
IGNORED_COLUMNS = frozenset({"hla"})
_PREFIX = re.compile(r"^KIR[\s_.\-]+", re.IGNORECASE)
_YES = frozenset({"Y", "YES"})


def kir_column_gene(name: str, tables: ReferenceTables) -> tuple[str, str] | None:
    """Resolve a column name to (canonical gene, the alias as written without prefix).

    >>> t = load_reference_tables()
    >>> kir_column_gene("kir_2DL1", t), kir_column_gene("KIR2DS4N", t)
    (('KIR2DL1', 'KIR2DL1'), ('KIR2DS4', 'KIR2DS4N'))
    >>> kir_column_gene("age", t) is None
    True
    """
    text = _PREFIX.sub("KIR", name.strip()).upper()
    info = tables.kir_gene(text)
    if info is None:
        return None
    return info.gene, text if text.startswith("KIR") else f"KIR{text}"


def looks_like_kir_matrix(header: Sequence[str]) -> bool:
    """True if some column is a KIR gene or a whole-genotype ``kir`` column."""
    tables = load_reference_tables()
    return any(h.strip().lower() in GENOTYPE_COLUMNS or kir_column_gene(h, tables) is not None
               for h in header)


def _cell(gene: str, alias: str, value: str, yes_no: bool,
          tables: ReferenceTables) -> KIRGeneTyping:
    text = value.strip()
    if text.upper() == "N" and not yes_no:
        return unknown(gene, "not_tested")
    typing = parse_kir_value(alias, text, tables, raw=text)
    return typing


def read_kir_matrix(path: Path, tables: ReferenceTables) -> ReadResult:
    """Read a KIR presence/absence or per-gene string table (see the module docstring).

    Raises
    ------
    InputSchemaError
        No id column, an unknown column name, a blank or repeated sample id,
        or gene columns next to a whole-genotype column.
    KIRParseError, UnknownAlleleError
        A cell cannot be read (file, line and column in the message).
    """
    table = read_table(path)
    src = table.source
    id_col = find_id_column(
        table, is_data_column=lambda h: kir_column_gene(h, tables) is not None
        or h.strip().lower() in GENOTYPE_COLUMNS)
    gene_cols: dict[int, tuple[str, str]] = {}
    genotype_col: int | None = None
    for i, h in enumerate(table.header):
        if i == id_col or h.strip().lower() in IGNORED_COLUMNS:
            continue
        if h.strip().lower() in GENOTYPE_COLUMNS:
            if genotype_col is not None:
                raise InputSchemaError(f"{src}: two KIR genotype columns "
                                       f"({table.header[genotype_col]!r} and {h!r})",
                                       row=table.header_line, column=h)
            genotype_col = i
            continue
        resolved = kir_column_gene(h, tables)
        if resolved is None:
            raise InputSchemaError(f"{src}: column {h!r} is not a KIR gene (expected names "
                                   "like KIR2DL1, 2DL1 or kir_2DL1)", raw=h,
                                   row=table.header_line, column=h)
        gene_cols[i] = resolved
    if genotype_col is not None and gene_cols:
        first = table.header[next(iter(gene_cols))]
        raise InputSchemaError(f"{src}: both a KIR genotype column "
                               f"({table.header[genotype_col]!r}) and gene columns "
                               f"({first!r} …); keep one", row=table.header_line,
                               column=first)
    if genotype_col is None and not gene_cols:
        raise InputSchemaError(f"{src}: no KIR gene columns", row=table.header_line)
    yes_no = any(c.strip().upper() in _YES for _, cells in table.rows
                 for i, c in enumerate(cells) if i in gene_cols)
    seen: dict[str, int] = {}
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for line, cells in table.rows:
        sid = sample_id(table, line, cells, id_col, seen)
        if genotype_col is not None:
            col = table.header[genotype_col]
            try:
                parsed = parse_kir_genotype(cells[genotype_col], tables)
            except KirmatchError as exc:
                raise locate(exc, src, line, col) from None
            states = {g.gene: g for g in parsed.genes}
            genotype, warns = build_kir(sid, states, parsed.raw, parsed.warnings)
        else:
            parts: dict[str, list[KIRGeneTyping]] = {}
            for i, (gene, alias) in gene_cols.items():
                try:
                    typing = _cell(gene, alias, cells[i], yes_no, tables)
                except KirmatchError as exc:
                    raise locate(exc, src, line, table.header[i]) from None
                parts.setdefault(gene, []).append(typing)
            states = {g: merge_typings(g, p) for g, p in parts.items()}
            genotype, warns = build_kir(sid, states, f"{src}:{line}")
        genotypes[sid] = genotype
        warnings[sid] = warns
    return ReadResult("matrix", genotypes, warnings, (str(path),))
