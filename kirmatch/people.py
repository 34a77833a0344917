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

>>> import pyarrow as pa
>>> from kirmatch.tables import load_reference_tables
>>> from kirmatch.tabular import Chunk
>>> table = pa.table({"ID": ["R1", "D1", "D1", "", "R9"],
...                   "hla_a": ["02:01+24:02", "01:01", "01:01", "03:01", "0x:01"],
...                   "KIR2DL1": ["POS", "NEG", "NEG", "", "POS"]})
>>> people = people_from_table(Chunk(table, 1), load_reference_tables())
>>> people.ids, str(people.hla(0)), people.repeated_ids, people.skipped_rows
(['R1', 'D1', 'R9'], 'A*02:01+A*24:02', ['D1'], [4])
>>> print(people.errors[2])
genotypes: cannot parse '0x:01': field 1 ('0x') must be digits, XX or a MAC code [row 5, column 'hla_a']
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kirmatch.errors import InputSchemaError, KirmatchError
from kirmatch.grammar import Layout, detect_layout, kir_from_cells, parse_locus_cell
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
from kirmatch.tabular import BLANK_TOKENS, Chunk, Dialect, TableReader, is_blank

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
    _index: dict[str, int] | None = None
    _lookup: Any = None
    _id_array: Any = None
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
        if self._index is not None:
            self._index[pid] = i
        self._lookup = None
        self._id_array = None
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

    @property
    def index(self) -> dict[str, int]:
        """Sample id → person index."""
        if self._index is None:
            self._index = {pid: i for i, pid in enumerate(self.ids)}
        return self._index

    def get(self, pid: str) -> int | None:
        """Index of a sample id (stripped), or ``None``."""
        return self.index.get(pid.strip())

    def locate(self, ids: pa.Array) -> np.ndarray:
        """Person index of each id of an Arrow string array (``-1`` = not found).

        Against a cohort no larger than a few times the array, Arrow's
        ``index_in`` (which hashes the cohort's ids on every call) is fastest;
        against a larger cohort the array's distinct ids are looked up in the
        hash table :meth:`positions` builds once.
        """
        if ids.type != pa.string():
            ids = ids.cast(pa.string())
        if len(self.ids) <= 4 * len(ids):
            if self._id_array is None:
                self._id_array = pa.array(self.ids, pa.string())
            got = pc.index_in(ids, value_set=self._id_array)
            return np.asarray(pc.fill_null(got, -1).to_numpy(zero_copy_only=False),
                              np.int64)
        enc = pc.dictionary_encode(ids)
        pos = self.positions(enc.dictionary.to_pylist())
        return pos[np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)]

    def positions(self, ids: Any) -> np.ndarray:
        """Person index of each id of a sequence or array (``-1`` = not found);
        the hash table is built once and reused for every chunk of pairs."""
        if self._lookup is None:
            self._lookup = pd.Index(np.asarray(self.ids, dtype=object))
        return np.asarray(self._lookup.get_indexer(np.asarray(ids, dtype=object)), np.int64)

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
            first = self.unreadable_rows[rows[0]]
            parts.append(f"{self.source or 'genotypes'} rows that could not be read: "
                         f"{', '.join(map(str, rows[:5]))}{' …' if len(rows) > 5 else ''}, "
                         f"first: {first}")
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


def _release_memory() -> None:
    """Give Arrow's freed buffers back to the system (its allocator keeps them
    otherwise, and a million-person table makes large temporaries)."""
    pa.default_memory_pool().release_unused()


def _blank_mask(values: pa.Array) -> np.ndarray:
    """True where a text cell is blank (:data:`kirmatch.tabular.BLANK_TOKENS`)."""
    trimmed = pc.utf8_trim_whitespace(values)
    short = np.asarray(pc.less_equal(pc.binary_length(trimmed), 4).to_numpy(
        zero_copy_only=False), bool)
    out = np.zeros(len(values), bool)
    idx = np.flatnonzero(short)
    if len(idx):
        sub = pc.utf8_upper(trimmed.take(pa.array(idx)))
        hit = pc.is_in(sub, value_set=pa.array(sorted(BLANK_TOKENS), pa.string()))
        out[idx] = np.asarray(hit.to_numpy(zero_copy_only=False), bool)
    return out


def _codes_of(values: pa.Array) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes of a text column and its distinct (stripped) values."""
    enc = pc.dictionary_encode(pc.utf8_trim_whitespace(values))
    return (np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64),
            enc.dictionary.to_pylist())


def _combos(chunk: Chunk, columns: Sequence[str]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Per row, the code of its tuple of (stripped) cells over ``columns``, and the
    distinct tuples: each distinct tuple is then parsed once."""
    from kirmatch.engine import _factorize

    parts = [_codes_of(chunk.text(c)) for c in columns]
    inv, rows = _factorize(*(codes for codes, _ in parts))
    return inv, [tuple(parts[k][1][c] for k, c in enumerate(row)) for row in rows]


def people_from_table(chunk: Chunk, tables: ReferenceTables, *, source: str = "genotypes",
                      what: str = "genotypes", need: Sequence[str] = ("hla", "kir"),
                      id_required: bool = True, dialect: Dialect | None = None,
                      notes: Sequence[str] = ()) -> People:
    """People from a genotypes table already read (see :func:`load_people`).

    Each distinct cell text (a GL block, a locus column's cells, a KIR string or
    a row of KIR gene cells) is parsed once, and people are mapped to their
    typings with integer arrays: a million people sharing a few hundred typings
    cost little more than the typings.

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
    n = chunk.num_rows
    hla = _HLACells(layout, people)
    # -- HLA per row: one code per locus, or the error that row raised -------------
    row_loci: dict[str, np.ndarray] = {}
    row_error: dict[int, KirmatchError] = {}
    row_version: dict[int, str] = {}

    def locus_array(locus: str) -> np.ndarray:
        return row_loci.setdefault(locus, np.zeros(n, np.int64))

    if layout.hla_gl is not None:
        texts = chunk.text(layout.hla_gl)
        blank = _blank_mask(texts)
        special = np.asarray(pc.match_substring(texts, "#").to_numpy(zero_copy_only=False),
                             bool) & ~blank
        easy = ~blank & ~special
        slow: set[int] = set(np.flatnonzero(special).tolist())
        if easy.any():
            idx = np.flatnonzero(easy)
            lists = pc.split_pattern(pc.utf8_trim_whitespace(texts.take(pa.array(idx))), "^")
            parents = idx[np.asarray(pc.list_parent_indices(lists).to_numpy(
                zero_copy_only=False), np.int64)]
            bcodes, blocks = _codes_of(pc.list_flatten(lists))
            parsed = [hla.block(b) for b in blocks]
            bad_block = np.array([p[1] is not None for p in parsed], bool)
            slow.update(np.unique(parents[bad_block[bcodes]]).tolist())
            for locus in {loc for p in parsed for loc, _ in p[0]}:
                per_block = np.array([dict(p[0]).get(locus, 0) for p in parsed], np.int64)
                vals = per_block[bcodes]
                has = vals > 0
                count = np.bincount(parents[has], minlength=n)
                slow.update(np.flatnonzero(count > 1).tolist())  # a locus in two blocks
                arr = locus_array(locus)
                arr[parents[has]] = vals[has]
            del lists, parents, bcodes
            _release_memory()
        for j in sorted(slow):  # namespaces, errors and merges: the careful path
            for arr in row_loci.values():
                arr[j] = 0
            try:
                loci, version = hla.read((texts[j].as_py().strip(),))
            except KirmatchError as exc:
                row_error[j] = exc
                continue
            for locus, code in loci.items():
                locus_array(locus)[j] = code
            if version:
                row_version[j] = version
    else:
        for locus, cols in (*layout.hla_slots.items(),
                            *((loc, (c,)) for loc, c in layout.hla_loci.items())):
            inv, tuples = _combos(chunk, cols)
            whole = locus in layout.hla_loci
            codes = np.zeros(len(tuples), np.int64)
            errs: dict[int, KirmatchError] = {}
            for u, cells in enumerate(tuples):
                try:
                    codes[u] = hla.locus(locus, cells, whole)
                except KirmatchError as exc:
                    errs[u] = exc
            arr = locus_array(locus)
            arr[:] = codes[inv]
            for u, exc in errs.items():
                for j in np.flatnonzero(inv == u).tolist():
                    row_error.setdefault(j, exc)
    # -- KIR per row ------------------------------------------------------------------
    row_kir = np.zeros(n, np.int64)
    if layout.kir_columns:
        inv, tuples = _combos(chunk, layout.kir_columns)
        yes_no = bool(layout.kir_genes) and any(
            bool(pc.any(pc.is_in(pc.utf8_upper(pc.utf8_trim_whitespace(chunk.text(c))),
                                 value_set=pa.array(["Y", "YES"]))).as_py())
            for c, _, _ in layout.kir_genes)
        kcodes = np.zeros(len(tuples), np.int64)
        kerrs: dict[int, KirmatchError] = {}
        for u, cells in enumerate(tuples):
            try:
                kir = kir_from_cells(layout, dict(zip(layout.kir_columns, cells, strict=True)),
                                     tables, yes_no=yes_no)
                kcodes[u] = people.kir_code(kir)
            except KirmatchError as exc:
                kerrs[u] = exc
        row_kir = kcodes[inv]
        for u, exc in kerrs.items():
            for j in np.flatnonzero(inv == u).tolist():
                row_error.setdefault(j, exc)
    _release_memory()
    # -- people: the first record of each id ------------------------------------------
    ids_arr = pc.utf8_trim_whitespace(chunk.text(layout.id_column))
    valid = ~_blank_mask(ids_arr)
    for j, msg in chunk.errors.items():
        valid[j] = False
        people.unreadable_rows[chunk.first_row + j] = msg
    no_id = [int(j) for j in np.flatnonzero(~valid) if int(j) not in chunk.errors]
    if no_id:  # rows without an id but with a typing: listed, never silently dropped
        sub = chunk.table.take(pa.array(no_id))
        typed = np.zeros(len(no_id), bool)
        for c in layout.typing_columns:
            typed |= ~_blank_mask(Chunk(sub, 1).text(c))
        people.skipped_rows = [chunk.first_row + j for j, t in zip(no_id, typed, strict=True)
                               if t]
    rows = np.flatnonzero(valid)
    ids_np = np.asarray(ids_arr.to_numpy(zero_copy_only=False), object)
    pcodes, uniques = pd.factorize(ids_np[rows], sort=False)
    first = np.full(len(uniques), -1, np.int64)
    first[pcodes[::-1]] = rows[::-1]
    people.ids = [str(u) for u in uniques]
    people.rows = (first + chunk.first_row).tolist()
    people.locus_codes = {loc: row_loci[loc][first] for loc in row_loci}
    for loc in people.locus_vocab:
        people.locus_codes.setdefault(loc, np.zeros(len(first), np.int64))
    people.kir_codes = row_kir[first]
    for i, j in enumerate(first.tolist()):
        if j in row_error:
            people.errors[i] = row_error[j].located(row=chunk.first_row + j, source=source)
        if j in row_version:
            people.gl_versions[i] = row_version[j]
    counts = np.bincount(pcodes, minlength=len(uniques))
    for i in np.flatnonzero(counts > 1).tolist():
        js = rows[pcodes == i]
        pid = people.ids[i]

        def typing(j: int) -> tuple[object, ...]:
            if j in row_error:
                return ("error", tuple(chunk.text(c)[j].as_py().strip()
                                       for c in layout.typing_columns))
            return (*(row_loci[loc][j] for loc in sorted(row_loci)), row_kir[j],
                    row_version.get(j))

        where = ", ".join(str(chunk.first_row + int(j)) for j in js)
        if len({typing(int(j)) for j in js}) > 1:
            err = KirmatchError(f"sample_id {pid!r} has {len(js)} conflicting records in the "
                                f"{what} file (rows {where})", raw=pid)
            err.code = "duplicate_person"
            people.errors[i] = err
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
            code = self.locus(loc, tuple(key[p] for p in pos), False)
            if code:
                loci[loc] = code
        for loc, p in self.locus_pos.items():
            code = self.locus(loc, (key[p],), True)
            if code:
                loci[loc] = code
        return loci, None

    def locus(self, locus: str, cells: tuple[str, ...], whole: bool) -> int:
        """The code of one locus's cells (parsed once per distinct tuple)."""
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
            got = self.block(b)
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

    def block(self, block: str) -> tuple[tuple[tuple[str, int], ...], KirmatchError | None]:
        """A ``^`` block to (locus, code) pairs, parsed and interned once."""
        hit = self.block_cache.get(block)
        if hit is None:
            try:
                g = parse_hla_genotype(block)
                hit = (tuple((lt.locus, self.people.locus_code(lt)) for lt in g.loci), None)
            except KirmatchError as exc:
                hit = ((), exc)
            self.block_cache[block] = hit
        return hit  # type: ignore[no-any-return]


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
