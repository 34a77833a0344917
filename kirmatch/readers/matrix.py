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

from kirmatch.hla import HLAGenotype
from kirmatch.kir import KIRGenotype
from kirmatch.readers import ReadResult, build_kir, read_genotype_table
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


def read_kir_matrix(path: Path, tables: ReferenceTables) -> ReadResult:
    """Read a KIR presence/absence or per-gene string table (see the module docstring).

    Raises
    ------
    InputSchemaError
        No id column, no KIR column, a blank or conflicting repeated sample id,
        or gene columns next to a whole-genotype column.
    KIRParseError, UnknownAlleleError
        A cell cannot be read (file, row and column in the message).
    """
    people = read_genotype_table(path, kind="kir", tables=tables)
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for i, sid in enumerate(people.ids):
        kir = people.kir(i)
        states = {g.gene: g for g in kir.genes} if kir is not None else {}
        genotype, warns = build_kir(sid, states, kir.raw if kir is not None else "",
                                    kir.warnings if kir is not None else ())
        genotypes[sid] = genotype
        warnings[sid] = warns
    ignored = people.layout.ignored if people.layout else ()
    return ReadResult("matrix", genotypes, warnings, (str(path),), ignored)
