"""Build :class:`~kirmatch.pair.Person` records from a genotypes table (long or
wide form) or from the format readers, keyed by sample id.

A record that cannot be parsed is kept as the error it raised (naming the
row and column), so that only the pairs that use it fail; a sample id with
conflicting records maps to a ``duplicate_person`` error naming every row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kirmatch.errors import KirmatchError
from kirmatch.hla import HLAGenotype, parse_hla_genotype
from kirmatch.kir import KIRGenotype, parse_kir_genotype
from kirmatch.pair import Person
from kirmatch.tables import ReferenceTables

__all__ = ["people_from_readers", "people_from_rows"]

People = dict[str, "Person | KirmatchError"]


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v) or str(v).strip() == ""


def people_from_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]],
                     tables: ReferenceTables, *, first_row: int = 2) -> People:
    """People from genotype rows (``sample_id`` + ``hla``/``kir``, or the wide forms).

    Row numbers in errors count the header as row 1 (``first_row`` = 2).
    """
    # The same layout detection and wide-form parsing as `kirmatch batch`, so a
    # genotypes file means the same to `rank` and to `batch`.
    from kirmatch.batch import detect_genotype_layout, hla_from_wide, kir_from_wide

    lay = detect_genotype_layout(list(columns), tables)
    out: People = {}
    raw_of: dict[str, tuple[Any, ...]] = {}
    rows_of: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        line = i + first_row
        pid = "" if _blank(row.get(lay.id_column)) else str(row.get(lay.id_column)).strip()
        if not pid:
            continue
        key = tuple("" if _blank(row.get(c)) else str(row.get(c)).strip()
                    for c in lay.typing_columns)
        rows_of.setdefault(pid, []).append(line)
        if pid in raw_of:
            if raw_of[pid] != key:
                err = KirmatchError(
                    f"sample_id {pid!r} has conflicting records in the genotypes file (rows "
                    f"{', '.join(str(r) for r in rows_of[pid])})", raw=pid,
                    column=lay.id_column)
                err.code = "duplicate_person"
                out[pid] = err
            continue
        raw_of[pid] = key
        values = dict(zip(lay.typing_columns, key, strict=True))
        col = lay.id_column
        try:
            hla: HLAGenotype | None = None
            if lay.hla_column:
                col = lay.hla_column
                text = values[col]
                hla = parse_hla_genotype(text) if text else None
            elif lay.hla_loci:
                col = lay.hla_loci[0][1][0]
                hla = hla_from_wide(lay, values)
                hla = hla if hla.loci else None
            kir: KIRGenotype | None = None
            if lay.kir_column:
                col = lay.kir_column
                kir = parse_kir_genotype(values[col] or None, tables)
            elif lay.kir_genes:
                col = lay.kir_genes[0][0]
                kir = kir_from_wide(lay, values, tables)
            out[pid] = Person(pid, hla, kir)
        except KirmatchError as exc:
            out[pid] = exc.located(row=line, column=exc.column or col)
    return out


def people_from_readers(hla: Mapping[str, HLAGenotype] | None,
                        kir: Mapping[str, KIRGenotype] | None) -> People:
    """Join reader outputs by sample id (a sample in one input only keeps the other untyped)."""
    ids = list(dict.fromkeys([*(hla or {}), *(kir or {})]))
    return {pid: Person(pid, (hla or {}).get(pid), (kir or {}).get(pid)) for pid in ids}
