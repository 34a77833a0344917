"""The one people loader: a genotypes table (or genotyper outputs) to persons
keyed by sample id, each parsed once.

``rank``, ``batch``, ``persons`` and the library read genotypes through
:func:`load_people` (a file), :func:`people_from_table` (an in-memory table)
or :func:`people_from_results` (the format readers' outputs); all three give a
:class:`People`:

* one entry per distinct sample id, in file order; a record that cannot be
  parsed is kept as the error it raised (naming file, data row, column and
  value), so that only the pairs that use it fail;
* a sample id with *conflicting* records is a ``duplicate_person`` error
  naming every row; identical repeats are accepted and listed;
* rows without a sample id and rows that could not be read at all are listed
  (``skipped_rows``, ``unreadable_rows``), never dropped silently: a pair that
  names a missing id is told about them.

Rows are data rows, 1-based (the numbering of ``pairs_row``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kirmatch.errors import InputSchemaError, KirmatchError
from kirmatch.grammar import Layout, detect_layout, kir_from_cells, kir_yes_no, parse_locus_cell
from kirmatch.hla import (
    KNOWN_LOCI,
    HLAGenotype,
    HLALocusTyping,
    genotype_from_loci,
    parse_hla_genotype,
)
from kirmatch.kir import KIRGenotype
from kirmatch.pair import Person
from kirmatch.tables import ReferenceTables
from kirmatch.tabular import Chunk, Dialect, TableReader, is_blank

__all__ = ["People", "load_people", "people_from_results", "people_from_table"]


@dataclass
class People:
    """Persons by sample id (see the module docstring).

    HLA is held per locus: ``locus_codes[locus][i]`` indexes
    ``locus_vocab[locus]`` (code 0 = not typed), so that each distinct locus
    typing is parsed and resolved once however many people share it. KIR is
    held the same way (``kir_codes`` into ``kir_vocab``; code 0 = not typed).
    """

    ids: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    locus_codes: dict[str, list[int]] = field(default_factory=dict)
    locus_vocab: dict[str, list[HLALocusTyping | None]] = field(default_factory=dict)
    kir_codes: list[int] = field(default_factory=list)
    kir_vocab: list[KIRGenotype | None] = field(default_factory=lambda: [None])
    gl_versions: dict[int, str] = field(default_factory=dict)
    errors: dict[int, KirmatchError] = field(default_factory=dict)
    warnings: dict[int, tuple[str, ...]] = field(default_factory=dict)
    duplicate_ids: list[str] = field(default_factory=list)
    repeated_ids: list[str] = field(default_factory=list)
    skipped_rows: list[int] = field(default_factory=list)
    unreadable_rows: dict[int, str] = field(default_factory=dict)
    layout: Layout | None = None
    dialect: Dialect | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    _locus_index: dict[str, dict[HLALocusTyping, int]] = field(default_factory=dict)
    _kir_index: dict[KIRGenotype, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    # -- building ------------------------------------------------------------
    def locus_code(self, lt: HLALocusTyping) -> int:
        """Intern a locus typing (code ≥ 1)."""
        index = self._locus_index.setdefault(lt.locus, {})
        code = index.get(lt)
        if code is None:
            vocab = self.locus_vocab.setdefault(lt.locus, [None])
            code = len(vocab)
            vocab.append(lt)
            index[lt] = code
            self.locus_codes.setdefault(lt.locus, [0] * len(self.ids))
        return code

    def kir_code(self, kir: KIRGenotype | None) -> int:
        """Intern a KIR typing (0 = not typed)."""
        if kir is None:
            return 0
        code = self._kir_index.get(kir)
        if code is None:
            code = len(self.kir_vocab)
            self.kir_vocab.append(kir)
            self._kir_index[kir] = code
        return code

    def add(self, pid: str, row: int, loci: Mapping[str, int] | None, kir_code: int,
            error: KirmatchError | None = None, warnings: tuple[str, ...] = ()) -> int:
        """Add one person (``loci``: locus → code from :meth:`locus_code`)."""
        i = len(self.ids)
        self.ids.append(pid)
        self.rows.append(row)
        for locus, codes in self.locus_codes.items():
            codes.append((loci or {}).get(locus, 0))
        self.kir_codes.append(kir_code)
        if error is not None:
            self.errors[i] = error
        if warnings:
            self.warnings[i] = warnings
        self.index[pid] = i
        return i

    def add_genotypes(self, pid: str, row: int, hla: HLAGenotype | None,
                      kir: KIRGenotype | None, error: KirmatchError | None = None,
                      warnings: tuple[str, ...] = ()) -> int:
        """Add one person from parsed genotypes."""
        loci = {lt.locus: self.locus_code(lt) for lt in hla.loci} if hla is not None else {}
        i = self.add(pid, row, loci, self.kir_code(kir), error, warnings)
        if hla is not None and hla.gl_version:
            self.gl_versions[i] = hla.gl_version
        return i

    # -- reading ------------------------------------------------------------------
    @property
    def loci(self) -> tuple[str, ...]:
        """The loci typed in anyone, in canonical order."""
        order = {loc: i for i, loc in enumerate(KNOWN_LOCI)}
        return tuple(sorted(self.locus_codes, key=order.__getitem__))

    def get(self, pid: str) -> int | None:
        """Index of a sample id (stripped), or ``None``."""
        return self.index.get(pid.strip())

    def hla(self, i: int) -> HLAGenotype | None:
        """Person ``i``'s HLA typing (``None`` when not typed)."""
        loci = [self.locus_vocab[loc][codes[i]] for loc, codes in self.locus_codes.items()
                if codes[i]]
        if not loci:
            return None
        return genotype_from_loci([lt for lt in loci if lt is not None],
                                  gl_version=self.gl_versions.get(i))

    def kir(self, i: int) -> KIRGenotype | None:
        """Person ``i``'s KIR typing (``None`` when not typed)."""
        return self.kir_vocab[self.kir_codes[i]]

    def person(self, i: int) -> Person | KirmatchError:
        """The :class:`~kirmatch.pair.Person` of index ``i``, or its error."""
        if i in self.errors:
            return self.errors[i]
        return Person(self.ids[i], self.hla(i), self.kir(i))

    def by_id(self) -> dict[str, Person | KirmatchError]:
        """Every person (or error) by sample id."""
        return {pid: self.person(i) for i, pid in enumerate(self.ids)}

    def missing_hint(self) -> str:
        """Why an id may be missing: the rows that could not be used (or ``""``)."""
        parts = []
        if self.unreadable_rows:
            rows = sorted(self.unreadable_rows)
            parts.append(f"{self.source or 'genotypes'} rows that could not be read: "
                         f"{', '.join(map(str, rows[:5]))}{' …' if len(rows) > 5 else ''}")
        if self.skipped_rows:
            rows = self.skipped_rows
            parts.append(f"rows without a sample_id: {', '.join(map(str, rows[:5]))}"
                         f"{' …' if len(rows) > 5 else ''}")
        return f" ({'; '.join(parts)})" if parts else ""

    def record(self) -> dict[str, Any]:
        """What the run record says about the genotypes input."""
        return {
            "source": self.source,
            "dialect": self.dialect.to_dict() if self.dialect else None,
            "layout": self.layout.describe() if self.layout else None,
            "people": len(self.ids),
            "errors": len(self.errors),
            "duplicate_ids": list(self.duplicate_ids),
            "repeated_identical_ids": list(self.repeated_ids),
            "rows_without_sample_id": list(self.skipped_rows),
            "unreadable_rows": {str(k): v for k, v in sorted(self.unreadable_rows.items())},
            "reader_warnings": {self.ids[i]: list(w) for i, w in sorted(self.warnings.items())},
            "notes": list(self.notes),
        }


def _column_texts(chunk: Chunk, columns: Sequence[str]) -> list[list[str]]:
    return [[v.strip() for v in chunk.text(c).to_pylist()] for c in columns]


def people_from_table(chunk: Chunk, tables: ReferenceTables, *, source: str = "genotypes",
                      what: str = "genotypes", need: Sequence[str] = ("hla", "kir"),
                      id_required: bool = True, dialect: Dialect | None = None,
                      notes: Sequence[str] = ()) -> People:
    """People from a genotypes table already read (see :func:`load_people`).

    Each distinct cell text (a GL block, a locus column's cells, a KIR string or
    a row of KIR gene cells) is parsed once.

    Raises
    ------
    InputSchemaError
        The columns cannot be understood (:func:`kirmatch.grammar.detect_layout`).
    """
    columns = list(chunk.columns)
    sample = {c: chunk.text(c).slice(0, 50).to_pylist() for c in columns}
    layout = detect_layout(columns, tables, what=what, source=source, sample=sample,
                           need=need, id_required=id_required)
    people = People(layout=layout, dialect=dialect, source=source, notes=list(notes))
    ids = [v.strip() for v in chunk.text(layout.id_column).to_pylist()]
    hla_cols = _column_texts(chunk, layout.hla_columns)
    kir_cols = _column_texts(chunk, layout.kir_columns)
    yes_no = bool(layout.kir_genes) and kir_yes_no(layout, (c for col in kir_cols for c in col))
    hla_reader = _HLACells(layout, people)
    kir_cache: dict[tuple[str, ...], tuple[int, KirmatchError | None]] = {}
    first: dict[str, int] = {}
    rows_of: dict[str, list[int]] = {}
    keys: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for j in range(chunk.num_rows):
        row = chunk.first_row + j
        hkey = tuple(col[j] for col in hla_cols)
        kkey = tuple(col[j] for col in kir_cols)
        keys.append((hkey, kkey))
        if j in chunk.errors:
            people.unreadable_rows[row] = chunk.errors[j]
            continue
        pid = ids[j]
        if is_blank(pid):
            if any(not is_blank(v) for v in (*hkey, *kkey)):
                people.skipped_rows.append(row)
            continue
        if pid in first:
            rows_of.setdefault(pid, [first[pid]]).append(j)
            continue
        first[pid] = j
        error: KirmatchError | None = None
        loci: dict[str, int] = {}
        kcode = 0
        gl_version = None
        try:
            loci, gl_version = hla_reader.read(hkey)
            hit = kir_cache.get(kkey)
            if hit is None:
                try:
                    kir = kir_from_cells(layout, dict(zip(layout.kir_columns, kkey, strict=True)),
                                         tables, yes_no=yes_no)
                    hit = (people.kir_code(kir), None)
                except KirmatchError as exc:
                    hit = (0, exc)
                kir_cache[kkey] = hit
            if hit[1] is not None:
                raise hit[1]
            kcode = hit[0]
        except KirmatchError as exc:
            error = exc.located(row=row, source=source)
            loci, kcode = {}, 0
        i = people.add(pid, row, loci, kcode, error)
        if gl_version:
            people.gl_versions[i] = gl_version
    for pid, js in rows_of.items():
        rows = ", ".join(str(chunk.first_row + j) for j in js)
        if len({keys[j] for j in js}) > 1:
            err = KirmatchError(f"sample_id {pid!r} has {len(js)} conflicting records in the "
                                f"{what} file (rows {rows})", raw=pid)
            err.code = "duplicate_person"
            people.errors[people.index[pid]] = err
            people.duplicate_ids.append(pid)
        else:
            people.repeated_ids.append(pid)
    return people


class _HLACells:
    """Per-person HLA cells to locus codes, parsing each distinct text once.

    A GL-string column is split into its ``^`` blocks, and each distinct block is
    parsed once (1,000,000 people share a few hundred blocks); per-locus columns
    are parsed once per distinct cell tuple of a locus.
    """

    def __init__(self, layout: Layout, people: People) -> None:
        self.layout = layout
        self.people = people
        self.block_cache: dict[str, Any] = {}
        self.locus_cache: dict[tuple[str, tuple[str, ...]], Any] = {}
        lay = layout
        self.gl = lay.hla_gl is not None
        self.slot_pos = {loc: [lay.hla_columns.index(c) for c in cols]
                         for loc, cols in lay.hla_slots.items()}
        self.locus_pos = {loc: lay.hla_columns.index(c) for loc, c in lay.hla_loci.items()}

    def read(self, key: tuple[str, ...]) -> tuple[dict[str, int], str | None]:
        if not key:
            return {}, None
        if self.gl:
            return self._gl(key[0])
        loci: dict[str, int] = {}
        for loc, pos in self.slot_pos.items():
            code = self._locus(loc, tuple(key[p] for p in pos), False)
            if code:
                loci[loc] = code
        for loc, p in self.locus_pos.items():
            code = self._locus(loc, (key[p],), True)
            if code:
                loci[loc] = code
        return loci, None

    def _locus(self, locus: str, cells: tuple[str, ...], whole: bool) -> int:
        ck = (locus, cells)
        hit = self.locus_cache.get(ck)
        if hit is None:
            try:
                slots: list[Any] = []
                typing = None
                for c, text in zip(self._cols(locus, whole), cells, strict=True):
                    try:
                        lt = parse_locus_cell(locus, text, whole_locus=whole)
                    except KirmatchError as exc:
                        raise exc.located(column=c) from None
                    if lt is None:
                        continue
                    if whole:
                        typing = lt
                    else:
                        slots.extend(lt.alternatives[0])
                if not whole and slots:
                    typing = HLALocusTyping(locus, (tuple(slots),))
                hit = (self.people.locus_code(typing) if typing is not None else 0, None)
            except KirmatchError as exc:
                hit = (0, exc)
            self.locus_cache[ck] = hit
        if hit[1] is not None:
            raise hit[1]
        return hit[0]  # type: ignore[no-any-return]

    def _cols(self, locus: str, whole: bool) -> tuple[str, ...]:
        return (self.layout.hla_loci[locus],) if whole else self.layout.hla_slots[locus]

    def _gl(self, text: str) -> tuple[dict[str, int], str | None]:
        if is_blank(text):
            return {}, None
        version = None
        body = text
        if "#" in text:
            m = _GL_NAMESPACE.match(text)
            if m is not None and m.group("ns").lower() == "hla":
                version, body = m.group("version"), m.group("body")
        loci: dict[str, int] = {}
        merge = False
        for b in body.split("^"):
            got = self.block_cache.get(b)
            if got is None:
                got = self._block(b)
                self.block_cache[b] = got
            if got[1] is not None:
                try:  # re-parse the whole string so that the message shows it all
                    parse_hla_genotype(text)
                except KirmatchError as exc:
                    raise exc.located(column=self.layout.hla_gl) from None
                raise got[1].located(column=self.layout.hla_gl)
            for locus, code in got[0]:
                if locus in loci:
                    merge = True
                loci[locus] = code
        if merge:  # a locus in two blocks: join them like the GL parser does
            try:
                merged = genotype_from_loci(
                    [lt for b in body.split("^") for lt in parse_hla_genotype(b).loci], raw=text)
            except KirmatchError as exc:
                raise exc.located(column=self.layout.hla_gl) from None
            loci = {lt.locus: self.people.locus_code(lt) for lt in merged.loci}
        return loci, version

    def _block(self, block: str) -> tuple[tuple[tuple[str, int], ...], KirmatchError | None]:
        """A ``^`` block to (locus, code) pairs, parsed and interned once."""
        try:
            g = parse_hla_genotype(block)
        except KirmatchError as exc:
            return (), exc
        return tuple((lt.locus, self.people.locus_code(lt)) for lt in g.loci), None


_GL_NAMESPACE = re.compile(r"^(?P<ns>[a-z]+)#(?P<version>[0-9.]+)#(?P<body>.*)$", re.IGNORECASE)


def rename_columns(chunk: Chunk, mapping: Mapping[str, str], *, what: str) -> Chunk:
    """Apply a column map (ours → theirs) to a chunk; errors name the missing column."""
    if not mapping:
        return chunk
    names = list(chunk.columns)
    rename: dict[str, str] = {}
    for ours, theirs in mapping.items():
        if theirs == ours:
            continue
        if theirs not in names:
            raise InputSchemaError(
                f"column map: the {what} file has no column {theirs!r} (mapped to {ours}); "
                f"its columns are {', '.join(map(repr, names))}", column=theirs)
        if ours in names and ours not in mapping.values():
            raise InputSchemaError(
                f"column map: the {what} file already has a column {ours!r}; mapping "
                f"{theirs!r} onto it would hide it", column=ours)
        rename[theirs] = ours
    table = chunk.table.rename_columns([rename.get(n, n) for n in names])
    return Chunk(table, chunk.first_row, chunk.errors)


def load_people(path: str | os.PathLike[str], tables: ReferenceTables, *,
                column_map: Mapping[str, str] | None = None, what: str = "genotypes",
                need: Sequence[str] = ("hla", "kir")) -> People:
    """Read a genotypes file (any table format; see :mod:`kirmatch.grammar`).

    Raises
    ------
    InputSchemaError
        The file cannot be read or its columns cannot be understood.
    """
    reader = TableReader(path, what=what)
    chunk = reader.read()
    chunk = rename_columns(chunk, column_map or {}, what=what)
    return people_from_table(chunk, tables, source=Path(path).name, what=what, need=need,
                             dialect=reader.dialect, notes=reader.notes)


def people_from_results(hla: Any = None, kir: Any = None) -> People:
    """Join format-reader results (:class:`kirmatch.readers.ReadResult`) by sample id.

    Samples come in order of first appearance (HLA input first); a sample in one
    input only keeps the other untyped. Linear in the number of samples.
    """
    people = People(source="; ".join(f"{what} {r.format}" for what, r in (("HLA", hla),
                                                                         ("KIR", kir)) if r))
    order: dict[str, None] = {}
    for result in (hla, kir):
        if result is not None:
            order.update(dict.fromkeys(result.genotypes))
    hg = hla.genotypes if hla is not None else {}
    kg = kir.genotypes if kir is not None else {}
    hw = hla.warnings if hla is not None else {}
    kw = kir.warnings if kir is not None else {}
    for n, pid in enumerate(order, start=1):
        h = hg.get(pid)
        k = kg.get(pid)
        # The readers' own warnings (T1K quality, PING copy number …) describe the
        # input, not a pair: they go to the run record, not into every row.
        if isinstance(k, KIRGenotype) and k.warnings:
            k = replace(k, warnings=())
        people.add_genotypes(pid, n, h if isinstance(h, HLAGenotype) else None,
                             k if isinstance(k, KIRGenotype) else None, None,
                             (*hw.get(pid, ()), *kw.get(pid, ())))
    return people


def table_from_pandas(df: Any) -> Chunk:
    """An in-memory pandas table as a :class:`~kirmatch.tabular.Chunk` (library API)."""
    from kirmatch.io import arrow_from_pandas

    table = arrow_from_pandas(df)
    return Chunk(table.rename_columns([str(c) for c in table.column_names]), 1, {})
