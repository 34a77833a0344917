"""Batch engine: every pair of a pairs table against a genotypes table.

:func:`assess_pairs` is the engine (one partition in, one result frame out);
:func:`run_batch` streams files through it (``kirmatch batch``).

How it stays exact and fast
---------------------------
* Each distinct person is parsed once, and resolved once per role (the
  ``who`` in warnings differs between recipient and donor).
* A person in a role is reduced to a *profile*: the candidate sets that the
  models read (HLA-A/B/C genotype candidates, KIR gene states, KIR3DL1 class,
  KIR2DL1 residue 245). Thousands of people share a few hundred profiles.
* Columns that depend on one person only (``recipient_*``, ``donor_*``, the
  donor's KIR motifs, ``kir2ds1_status``, ``kir2dl1_245``,
  ``cf_ikir_donor_ligands``) are computed once per profile by the scalar
  engine itself (:func:`kirmatch.pair.compute_models`), so they equal
  :func:`kirmatch.pair.assess_pair` by construction.
* Columns that combine both persons run vectorized (numpy) when every input
  they read is resolved (a singleton candidate set): ligand sets and KIR gene
  sets are bit masks, and each model is a small lookup table indexed by those
  masks. The tables are filled by calling the scoring functions of
  :mod:`kirmatch.scores`, so the two paths cannot drift apart. The KIR3DL1
  class, which is a set for gene-level typings, is carried as a set bit mask
  and propagated exactly (DOMAIN.md §A.0).
* Any pair with an unresolved input to a two-person column falls back to
  :func:`~kirmatch.pair.compute_models`, memoised per profile pair.
* Warnings are sets per person and role, combined per distinct combination.

Row-level failures never stop a batch: they become ``status=error`` rows
with a ``code: message`` error (DOMAIN.md §A.17).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from kirmatch.errors import HLAParseError, InputSchemaError, KirmatchError, UsageError
from kirmatch.hla import HLAGenotype, hla_genotype_from_columns, parse_hla_genotype, \
    parse_hla_typing
from kirmatch.io import (
    ColumnMap,
    TableWriter,
    apply_column_map,
    detect_format,
    file_sha256,
    iter_table,
    read_column_map,
    read_table,
)
from kirmatch.kir import (
    CANONICAL_GENES,
    GeneState,
    KIRFeatures,
    KIRGeneTyping,
    KIRGenotype,
    kir_features,
    kir_genotype_from_states,
    parse_kir_genotype,
    parse_kir_value,
)
from kirmatch.ligands import PersonHLA, b_class, has_b_c1, ligand_set, shared_resolver
from kirmatch.options import RULES_ID, RULES_VERSION, Options
from kirmatch.pair import _ALLELE_GENE, COMPUTED_COLUMNS, CONTRACT_COLUMNS, compute_models, \
    encode, to_cell
from kirmatch.propagation import Cand, evaluate
from kirmatch.pyard_backend import PyardBackend
from kirmatch.scores import (
    IKIR,
    cf_ikir,
    gene_gene_mismatches,
    ikir_score_weighted,
    kir3dl1_hlab,
    ligand_mismatch,
    missing_ligands,
    receptor_ligand_mismatches,
)
from kirmatch.tables import ReferenceTables, load_reference_tables

__all__ = [
    "OUTPUT_COLUMNS",
    "BatchSummary",
    "GenotypeLayout",
    "assess_pairs",
    "detect_genotype_layout",
    "run_batch",
]

#: Columns the engine adds after the pair file's own columns (§A.16 minus the ids).
OUTPUT_COLUMNS: tuple[str, ...] = CONTRACT_COLUMNS[2:]
#: Columns that come from input text (formula neutralisation applies to them).
INPUT_DERIVED = ("recipient_id", "donor_id", "error")

RECIPIENT_COLUMNS = ("recipient_c_group", "recipient_b_class", "recipient_ligands")
DONOR_COLUMNS = (
    "donor_c_group", "donor_b_class", "donor_ligands", "cf_ikir_donor_ligands",
    "donor_kir_genotype", "cen_motif", "tel_motif", "b_content_score", "b_content_group",
    "kir2ds1_status", "kir2dl1_245",
)
CROSS_COLUMNS = (
    "gvh_ligand_mismatch", "gvh_mismatched_ligands", "hvg_ligand_mismatch",
    "hvg_mismatched_ligands", "missing_ligand_count", "missing_ligands",
    "receptor_ligand_mismatches", "gene_gene_mismatches", "cf_ikir", "ikir_score_weighted",
    "kir3dl1_hlab",
)
DSA_COLUMNS = ("dsa_max_mfi", "dsa_tier")
# Guard: the partition above must cover the contract exactly.
assert sorted(RECIPIENT_COLUMNS + DONOR_COLUMNS + CROSS_COLUMNS + DSA_COLUMNS) == sorted(
    COMPUTED_COLUMNS), "batch column groups are out of date with kirmatch.pair"

#: The antibody screen is not part of a batch: rule 13 is unknown on every row.
_DSA_WARNINGS = frozenset(f"unknown({c}: no_antibody_data)" for c in DSA_COLUMNS)

_LIG_BITS = {"A3/A11": 1, "Bw4": 2, "C1": 4, "C2": 8}
_GENE_BITS = {"KIR2DL1": 1, "KIR2DL2": 2, "KIR2DL3": 4, "KIR3DL1": 8, "KIR3DL2": 16}
_CLASS_BITS: dict[str | None, int] = {"H": 1, "L": 2, "N": 4, None: 8}
_B_CLASSES = ("Bw4-80I", "Bw4-80T", "Bw6")
_DUMMY_HLA = "A*01:01+A*01:01^B*08:01+B*08:01^C*07:01+C*07:01"
_DUMMY_KIR = "KIR2DL1+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1+KIR3DL2+KIR3DL3+KIR2DP1+KIR3DP1"


def _decode(mask: int, bits: dict[Any, int]) -> frozenset[Any]:
    return frozenset(k for k, b in bits.items() if mask & b)


def _encode(values: Iterable[Any], bits: dict[Any, int]) -> int:
    return sum(bits[v] for v in set(values))


def _cell(column: str, value: Any) -> str:
    return to_cell(encode(column, value))


def _unknown_warnings(unknown: dict[str, str] | Iterable[tuple[str, str]]) -> frozenset[str]:
    """The warnings :func:`~kirmatch.pair.assess_pair` adds for unknown columns."""
    items = unknown.items() if isinstance(unknown, dict) else unknown
    out: set[str] = set()
    for col, reason in items:
        out.add(f"unknown({col}: {reason})")
        if reason == "gene_level_kir" and col in _ALLELE_GENE:
            out.add(f"gene_level_kir(donor {_ALLELE_GENE[col]})")
    return frozenset(out)


def _join_warnings(parts: Iterable[frozenset[str]]) -> str:
    allw: set[str] = set()
    for p in parts:
        allw |= p
    return ";".join(sorted({w.replace(";", ",") for w in allw}))


# ---------------------------------------------------------------------------
# Genotype table layout
# ---------------------------------------------------------------------------

_ID_NAMES = ("sample_id", "sampleid", "sample", "id", "subject_id")
_HLA_COLUMN = re.compile(r"^(?:hla[-_. ]?)?(a|b|c)[-_. ]?(?:typ|allele)?[-_. ]?([12])$", re.I)
_KIR_COLUMN = re.compile(r"^(?:kir[-_. ]?)?([23]d[lsp][0-9][a-z]*)$", re.I)


@dataclass(frozen=True, slots=True)
class GenotypeLayout:
    """Where a genotypes table keeps its ids and typings.

    Long form: ``hla`` (a GL string) and ``kir`` (a KIR string). Wide form:
    one column per HLA allele (``A_1``, ``A_2``, ``HLA-B_1`` …, in
    ``hla_loci``) and/or one column per KIR gene (``KIR2DL1``, ``kir_2DL1``,
    ``2DS4N`` …, in ``kir_genes`` as (column, canonical gene)).
    """

    id_column: str
    hla_column: str | None = None
    hla_loci: tuple[tuple[str, tuple[str, ...]], ...] = ()
    kir_column: str | None = None
    kir_genes: tuple[tuple[str, str], ...] = ()

    @property
    def typing_columns(self) -> tuple[str, ...]:
        """Every column that holds a typing, in a fixed order."""
        cols: list[str] = []
        if self.hla_column:
            cols.append(self.hla_column)
        for _, lc in self.hla_loci:
            cols.extend(lc)
        if self.kir_column:
            cols.append(self.kir_column)
        cols.extend(c for c, _ in self.kir_genes)
        return tuple(cols)

    @property
    def has_kir(self) -> bool:
        """True when the table has any KIR column (else KIR is not typed at all)."""
        return bool(self.kir_column or self.kir_genes)


def detect_genotype_layout(columns: Sequence[str], tables: ReferenceTables) -> GenotypeLayout:
    """Find the id and typing columns of a genotypes table (case-insensitive).

    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> lay = detect_genotype_layout(["ID", "HLA-A_1", "HLA-A_2", "B_1", "kir_2DL1", "3DS1"], t)
    >>> lay.id_column, lay.hla_loci
    ('ID', (('A', ('HLA-A_1', 'HLA-A_2')), ('B', ('B_1',))))
    >>> lay.kir_genes
    (('kir_2DL1', 'KIR2DL1'), ('3DS1', 'KIR3DS1'))

    Raises
    ------
    InputSchemaError
        No id column, no typing column, or both the long and the wide form of
        HLA (or of KIR).
    """
    names = [str(c) for c in columns]
    lower = {n.strip().lower(): n for n in reversed(names)}
    id_col = next((lower[k] for k in _ID_NAMES if k in lower), None)
    if id_col is None:
        raise InputSchemaError(
            "genotypes file has no 'sample_id' column (columns: "
            f"{', '.join(map(repr, names))}); name yours with --column-map",
            column="sample_id")
    hla_col = lower.get("hla")
    kir_col = lower.get("kir")
    loci: dict[str, list[tuple[int, str]]] = {}
    genes: list[tuple[str, str]] = []
    for n in names:
        if n in (id_col, hla_col, kir_col):
            continue
        m = _HLA_COLUMN.match(n.strip())
        if m:
            loci.setdefault(m.group(1).upper(), []).append((int(m.group(2)), n))
            continue
        k = _KIR_COLUMN.match(n.strip())
        if k:
            info = tables.kir_gene(k.group(1))
            if info is not None:
                genes.append((n, info.gene))
    for loc, cols in loci.items():
        if len({i for i, _ in cols}) != len(cols):
            raise InputSchemaError(
                f"genotypes file has more than one column for HLA-{loc} allele "
                f"{cols[0][0]}: {', '.join(repr(c) for _, c in cols)}", column=cols[0][1])
    if hla_col and loci:
        first = next(iter(loci.values()))[0][1]
        raise InputSchemaError(
            f"genotypes file has both an 'hla' column and per-allele HLA columns ({first!r} "
            "…); keep one form", column=first)
    if kir_col and genes:
        raise InputSchemaError(
            f"genotypes file has both a 'kir' column and per-gene KIR columns "
            f"({genes[0][0]!r} …); keep one form", column=genes[0][0])
    hla_loci = tuple((loc, tuple(c for _, c in sorted(loci[loc])))
                     for loc in ("A", "B", "C") if loc in loci)
    if not (hla_col or hla_loci or kir_col or genes):
        raise InputSchemaError(
            "genotypes file has no typing columns: expected 'hla' and 'kir', or per-allele "
            "HLA columns (A_1, A_2, B_1, …) and per-gene KIR columns (KIR2DL1, …); name "
            "yours with --column-map", column="hla")
    return GenotypeLayout(id_col, hla_col, hla_loci, kir_col, tuple(genes))


def _validate_genotype_map(mapping: dict[str, str], tables: ReferenceTables) -> dict[str, str]:
    """Normalise the keys of a genotypes column map (``2DL1`` → ``KIR2DL1``)."""
    out: dict[str, str] = {}
    for ours, theirs in mapping.items():
        key = ours.strip()
        low = key.lower()
        if low in ("sample_id", "hla", "kir"):
            out[low] = theirs
        elif _HLA_COLUMN.match(key):
            m = _HLA_COLUMN.match(key)
            assert m is not None
            out[f"{m.group(1).upper()}_{m.group(2)}"] = theirs
        elif (km := _KIR_COLUMN.match(key)) and tables.kir_gene(km.group(1)):
            out[f"KIR{km.group(1).upper()}"] = theirs  # KIR2DL5A stays apart from KIR2DL5B
        else:
            raise InputSchemaError(
                f"column map: unknown genotypes column {ours!r} (use sample_id, hla, kir, "
                "A_1 … C_2, or a KIR gene such as KIR2DL1)", column=ours)
    return out


# ---------------------------------------------------------------------------
# People and profiles
# ---------------------------------------------------------------------------

@dataclass(slots=True)
class _Person:
    """One parsed genotypes record (role independent)."""

    id: str
    row: int
    hla: HLAGenotype | None = None
    kir: KIRGenotype | None = None
    error: str | None = None


@dataclass(slots=True)
class _RoleSide:
    """Per-person and per-profile state of one role (recipient or donor)."""

    role: str
    n: int
    state: np.ndarray = field(init=False)       # 0 new, 1 ok, 2 error
    prof: np.ndarray = field(init=False)        # profile id (0 = none)
    wfast: np.ndarray = field(init=False)       # warning-set id for the fast path
    errors: dict[int, str] = field(default_factory=dict)
    raw_warnings: dict[int, frozenset[str]] = field(default_factory=dict)
    profiles: dict[Hashable, int] = field(default_factory=dict)
    pdata: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    _built: int = -1

    def __post_init__(self) -> None:
        # One spare slot, so that index 0 is valid even for an empty cohort.
        self.state = np.zeros(self.n + 1, dtype=np.int8)
        self.prof = np.zeros(self.n + 1, dtype=np.int32)
        self.wfast = np.zeros(self.n + 1, dtype=np.int64)
        self.pdata.append({})  # profile 0: the "no profile" sentinel

    def array(self, name: str) -> np.ndarray:
        """A per-profile column as a numpy array (rebuilt when profiles were added)."""
        if self._built != len(self.pdata):
            keys = {k for d in self.pdata[1:] for k in d if not k.startswith("_")}
            self.arrays = {}
            for k in keys:
                vals = [d.get(k, 0) for d in self.pdata]
                self.arrays[k] = np.asarray(vals, dtype=np.int64)
            self._built = len(self.pdata)
        hit = self.arrays.get(name)
        if hit is None:
            hit = np.zeros(len(self.pdata), dtype=np.int64)
        return hit


class _Vocab:
    """Interned cell strings of one output column; code 0 is the empty cell."""

    __slots__ = ("codes", "items")

    def __init__(self) -> None:
        self.items: list[str] = [""]
        self.codes: dict[str, int] = {"": 0}

    def code(self, text: str) -> int:
        c = self.codes.get(text)
        if c is None:
            c = len(self.items)
            self.items.append(text)
            self.codes[text] = c
        return c

    def arrow(self, codes: np.ndarray) -> pa.Array:
        return pa.array(self.items, pa.large_string()).take(pa.array(codes, pa.int32()))




@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The computed columns of one chunk, as Arrow arrays, and its row counts."""

    columns: dict[str, pa.Array]
    status_error: np.ndarray
    error_codes: Counter[str]

    @property
    def n_error(self) -> int:
        """Rows with ``status=error``."""
        return int(self.status_error.sum())


class Cohort:
    """A genotypes table prepared for assessing pairs (see the module docstring).

    Parameters
    ----------
    genotypes:
        The genotypes table (long or wide form; see :class:`GenotypeLayout`),
        with our column names.
    options, tables, pyard:
        As for :func:`~kirmatch.pair.assess_pair`.
    """

    def __init__(self, genotypes: pd.DataFrame, options: Options, tables: ReferenceTables,
                 pyard: PyardBackend | None = None) -> None:
        self.options = options
        self.tables = tables
        self.pyard = pyard
        self.layout = detect_genotype_layout(list(genotypes.columns), tables)
        self.resolver = shared_resolver(tables, options, pyard)
        lay = self.layout
        ids = _as_text(genotypes[lay.id_column]).str.strip()
        typing = [_as_text(genotypes[c]).to_numpy(dtype=object)
                  for c in lay.typing_columns]
        self._typing = list(zip(*typing, strict=True)) if typing else [()] * len(ids)
        self.rows_in = len(ids)
        id_list = ids.tolist()
        first: dict[str, int] = {}
        rows_of: dict[str, list[int]] = {}
        for i, pid in enumerate(id_list):
            if not pid:
                continue
            if pid in first:
                rows_of.setdefault(pid, [first[pid]]).append(i)
            else:
                first[pid] = i
        self.ids = list(first)
        self.index = pd.Index(self.ids, dtype=object)
        self._first_row = [first[p] for p in self.ids]
        self.duplicate_ids: list[str] = []
        self.repeated_ids: list[str] = []
        self._dup_error: dict[str, str] = {}
        for pid, rows in rows_of.items():
            if len({tuple(v.strip() for v in self._typing[r]) for r in rows}) > 1:
                self.duplicate_ids.append(pid)
                where = ", ".join(str(r + 1) for r in rows)
                self._dup_error[pid] = (
                    f"sample_id {pid!r} has {len(rows)} conflicting records in the genotypes "
                    f"file (rows {where})")
            else:
                self.repeated_ids.append(pid)
        self.persons: list[_Person | None] = [None] * len(self.ids)
        self.sides = {role: _RoleSide(role, len(self.ids)) for role in ("recipient", "donor")}
        self.vocab = {c: _Vocab() for c in OUTPUT_COLUMNS}
        self._wsets: dict[frozenset[str], int] = {}
        self._wlist: list[frozenset[str]] = []
        self._wstrings: dict[int, str] = {}
        self._reasons: dict[str, int] = {"": 0}
        self._reason_list: list[str] = [""]
        self._fallback: dict[tuple[int, int], tuple[dict[str, int], frozenset[str]]] = {}
        self._xkeys: dict[Hashable, int] = {}
        self._hla_cache: dict[Any, Any] = {}
        self._kir_cache: dict[Any, Any] = {}
        dummy = parse_hla_genotype(_DUMMY_HLA)
        self._dummy_h = self.resolver.resolve_genotype(dummy, "dummy")
        self._dummy_k = kir_features(parse_kir_genotype(_DUMMY_KIR, tables), tables, "dummy")
        self._build_tables()

    # -- lookup tables for the two-person columns -----------------------------
    def _build_tables(self) -> None:
        o = self.options
        ipd = o.ipd_compatible
        v = self.vocab
        lig = [_decode(m, _LIG_BITS) for m in range(16)]
        genes = [_decode(m, _GENE_BITS) for m in range(32)]
        shape = (16, 16)
        self.t_gvh = np.zeros(shape, np.int32)
        self.t_hvg = np.zeros(shape, np.int32)
        self.t_gvh_b = np.zeros(shape, np.int32)
        self.t_hvg_b = np.zeros(shape, np.int32)
        for dm in range(16):
            for rm in range(16):
                gvh, hvg = ligand_mismatch(lig[dm], lig[rm],
                                           include_a3a11=o.include_a3a11 and not ipd)
                self.t_gvh[dm, rm] = v["gvh_mismatched_ligands"].code(
                    _cell("gvh_mismatched_ligands", gvh))
                self.t_hvg[dm, rm] = v["hvg_mismatched_ligands"].code(
                    _cell("hvg_mismatched_ligands", hvg))
                self.t_gvh_b[dm, rm] = v["gvh_ligand_mismatch"].code(
                    _cell("gvh_ligand_mismatch", bool(gvh)))
                self.t_hvg_b[dm, rm] = v["hvg_ligand_mismatch"].code(
                    _cell("hvg_ligand_mismatch", bool(hvg)))
        self.t_ml = np.zeros(shape, np.int32)
        self.t_mlc = np.zeros(shape, np.int32)
        self.t_gg = np.zeros(shape, np.int32)
        for gm in range(16):
            for rm in range(16):
                ml = missing_ligands(genes[gm], lig[rm])
                self.t_ml[gm, rm] = v["missing_ligands"].code(_cell("missing_ligands", ml))
                self.t_mlc[gm, rm] = v["missing_ligand_count"].code(
                    _cell("missing_ligand_count", len(ml)))
                self.t_gg[gm, rm] = v["gene_gene_mismatches"].code(
                    _cell("gene_gene_mismatches", gene_gene_mismatches(genes[gm], genes[rm])))
        self.t_rl = np.zeros((32, 16), np.int32)
        for gm in range(32):
            for rm in range(16):
                rl = receptor_ligand_mismatches(genes[gm], lig[rm],
                                                include_a3a11=o.include_a3a11)
                self.t_rl[gm, rm] = v["receptor_ligand_mismatches"].code(
                    _cell("receptor_ligand_mismatches", rl))
        self.t_cf = np.zeros((16, 16, 2), np.int32)
        self.t_w = np.zeros((16, 16, 2), np.int32)
        for gm in range(16):
            for rm in range(16):
                for bc in (0, 1):
                    self.t_cf[gm, rm, bc] = v["cf_ikir"].code(
                        _cell("cf_ikir", cf_ikir(genes[gm], lig[rm], bool(bc))))
                    self.t_w[gm, rm, bc] = v["ikir_score_weighted"].code(_cell(
                        "ikir_score_weighted", ikir_score_weighted(genes[gm], lig[rm],
                                                                   bool(bc))))
        # KIR3DL1 class *set* x recipient HLA-B class, propagated as in compute_models;
        # -1 = unknown (the reason is the donor's class reason).
        self.t_h = np.full((16, 3), -1, np.int32)
        inv = {b: k for k, b in _CLASS_BITS.items()}
        for cm in range(1, 16):
            classes = frozenset(inv[b] for b in inv if cm & b)
            cand: Cand[Any] = Cand(classes, "class")
            for bi, bname in enumerate(_B_CLASSES):
                val, _ = evaluate(kir3dl1_hlab, cand, Cand.of(bname))
                if val is not None:
                    self.t_h[cm, bi] = v["kir3dl1_hlab"].code(_cell("kir3dl1_hlab", val))

    # -- people ----------------------------------------------------------------
    def lookup(self, ids: pd.Series) -> np.ndarray:
        """Person index of each id: ``-1`` = not in the genotypes, ``-2`` = empty."""
        text = _as_text(ids).str.strip()
        idx = self.index.get_indexer(text.to_numpy(dtype=object))
        empty = (text == "").to_numpy(dtype=bool)
        idx[empty] = -2
        return idx.astype(np.int64)

    def _person(self, i: int) -> _Person:
        p = self.persons[i]
        if p is None:
            p = self._parse_person(i)
            self.persons[i] = p
        return p

    def _parse_person(self, i: int) -> _Person:
        pid = self.ids[i]
        row = self._first_row[i]
        person = _Person(pid, row + 1)
        if pid in self._dup_error:
            person.error = f"duplicate_person: {{role}} {pid!r}: {self._dup_error[pid]}"
            return person
        lay = self.layout
        values = dict(zip(lay.typing_columns, self._typing[row], strict=True))
        column = lay.hla_column or "HLA columns"
        try:
            if lay.hla_column is not None:
                person.hla = self._parse_hla_text(values[lay.hla_column])
            elif lay.hla_loci:
                column = "HLA columns"
                person.hla = self._parse_hla_wide(lay, values)
            column = lay.kir_column or "KIR columns"
            if lay.kir_column is not None:
                person.kir = self._parse_kir_text(values[lay.kir_column])
            elif lay.kir_genes:
                person.kir = self._parse_kir_wide(lay, values)
        except KirmatchError as exc:
            col = exc.column or column
            person.error = (f"{exc.code}: {{role}} {pid!r} (genotypes row {row + 1}, column "
                            f"{col!r}): {exc}")
        return person

    def _cached(self, cache: dict[Any, Any], key: Any, fn: Callable[[], Any]) -> Any:
        hit = cache.get(key)
        if hit is None:
            try:
                hit = (fn(), None)
            except KirmatchError as exc:
                hit = (None, exc)
            if len(cache) > 200_000:
                cache.clear()
            cache[key] = hit
        if hit[1] is not None:
            raise hit[1]
        return hit[0]

    def _parse_hla_text(self, text: str) -> HLAGenotype | None:
        if not text.strip():
            return None
        hit: HLAGenotype = self._cached(self._hla_cache, text,
                                        lambda: parse_hla_genotype(text))
        return hit

    def _parse_hla_wide(self, lay: GenotypeLayout, values: dict[str, str]) -> HLAGenotype:
        key = tuple(sorted((loc, tuple(values[c] for c in cols)) for loc, cols in lay.hla_loci))
        return self._cached(self._hla_cache, ("wide", key),  # type: ignore[no-any-return]
                            lambda: hla_from_wide(lay, values))

    def _parse_kir_text(self, text: str) -> KIRGenotype:
        return self._cached(self._kir_cache, text,  # type: ignore[no-any-return]
                            lambda: parse_kir_genotype(text, self.tables))

    def _parse_kir_wide(self, lay: GenotypeLayout, values: dict[str, str]) -> KIRGenotype:
        key = tuple((c, values[c]) for c, _ in lay.kir_genes)
        return self._cached(self._kir_cache, ("wide", key),  # type: ignore[no-any-return]
                            lambda: kir_from_wide(lay, values, self.tables))

    # -- roles and profiles ------------------------------------------------------
    def prepare(self, role: str, idx: np.ndarray) -> None:
        """Resolve the people ``idx`` (valid person indices) in ``role``, once each."""
        side = self.sides[role]
        if idx.size == 0:
            return
        todo = np.unique(idx[side.state[idx] == 0])
        if todo.size == 0:
            return
        # Bulk creation of small objects triggers many full garbage collections
        # that find nothing to free; pause the collector meanwhile.
        paused = gc.isenabled() and todo.size > 1000
        if paused:
            gc.disable()
        try:
            for i in todo.tolist():
                self._prepare_one(side, int(i))
        finally:
            if paused:
                gc.enable()

    def _prepare_one(self, side: _RoleSide, i: int) -> None:
        role = side.role
        p = self._person(i)
        if p.error is not None:
            side.state[i] = 2
            side.errors[i] = p.error.replace("{role}", role).replace("\n", " ")
            return
        try:
            h = self.resolver.resolve_genotype(p.hla, role)
            k: KIRFeatures | None = None
            if role == "donor" or p.kir is not None:
                # Gene-content profiles repeat a lot: features once per (genotype, role).
                raw_kir = p.kir.raw if p.kir is not None else None
                k = self._cached(self._kir_cache, ("features", raw_kir, role),
                                 lambda: kir_features(p.kir, self.tables, role))
        except KirmatchError as exc:
            side.state[i] = 2
            col = self.layout.hla_column or "HLA columns"
            side.errors[i] = (f"{exc.code}: {role} {p.id!r} (genotypes row {p.row}, column "
                              f"{col!r}): {exc}").replace("\n", " ")
            return
        warnings = set(h.warnings)
        if role == "donor":
            assert k is not None
            warnings.update(k.warnings)
        elif k is not None:
            warnings.update(w for w in k.warnings if w.startswith("kir_gene_unknown"))
        raw = frozenset(warnings)
        key = self._profile_key(role, h, k)
        prof = side.profiles.get(key)
        if prof is None:
            prof = len(side.pdata)
            side.profiles[key] = prof
            side.pdata.append(self._profile(role, h, k))
        side.prof[i] = prof
        side.raw_warnings[i] = raw
        side.wfast[i] = self._wset(raw | side.pdata[prof]["_fast_unknown"])
        side.state[i] = 1

    @staticmethod
    def _profile_key(role: str, h: PersonHLA, k: KIRFeatures | None) -> Hashable:
        loci = (h.cand("A"), h.cand("B"), h.cand("C"))
        if role == "recipient":
            if k is None or not k.typed:
                return (loci, None)
            return (loci, tuple(k.present[g] for g in IKIR))
        assert k is not None
        return (loci, tuple(k.present[g] for g in CANONICAL_GENES), k.kir3dl1_class,
                k.kir3dl1_functional, k.kir2dl1_245)

    def _profile(self, role: str, h: PersonHLA, k: KIRFeatures | None) -> dict[str, Any]:
        o = self.options
        d: dict[str, Any] = {"_h": h, "_k": k}
        singleton = all(len(h.cand(loc).values) == 1 for loc in ("A", "B", "C"))
        if role == "recipient":
            values, unknown, _ = compute_models(h, self._dummy_h, self._dummy_k, None, o)
            cols = RECIPIENT_COLUMNS
            typed = k is not None and k.typed
            fast = singleton and (k is None or not typed
                                  or all(k.present[g].known for g in IKIR))
        else:
            assert k is not None
            values, unknown, _ = compute_models(self._dummy_h, h, k, None, o)
            cols = DONOR_COLUMNS
            genes = IKIR + (("KIR3DL2",) if o.include_a3a11 else ())
            fast = singleton and all(k.present[g].known for g in genes)
            if o.exclude_null_kir3dl1:
                fast = fast and k.kir3dl1_functional.known
        for col in cols:
            d[col] = self.vocab[col].code(_cell(col, None if col in unknown else values[col]))
        own_unknown = {c: r for c, r in unknown.items() if c in cols}
        d["_own_unknown"] = _unknown_warnings(own_unknown)
        d["fast"] = int(fast)
        # For the fallback: only the inputs of the two-person columns matter; the
        # donor's other KIR genes are pinned (their columns come from this profile), so
        # compute_models does not enumerate, say, 2^10 gene-content combinations again.
        loci = (h.cand("A"), h.cand("B"), h.cand("C"))
        if role == "recipient":
            d["_kx"] = k
            xkey: Hashable = (loci, None if not typed else tuple(
                k.present[g] for g in IKIR))  # type: ignore[union-attr]
        else:
            assert k is not None
            keep = (*IKIR, "KIR3DL2")
            d["_kx"] = replace(
                k, present={g: (k.present[g] if g in keep else Cand.of(False))
                            for g in CANONICAL_GENES},
                kir2dl1_245=Cand.of("absent"))
            xkey = (loci, tuple(k.present[g] for g in keep), k.kir3dl1_class,
                    k.kir3dl1_functional)
        d["_xkey"] = self._xkeys.setdefault(xkey, len(self._xkeys))
        fast_unknown = dict(own_unknown)
        if fast:
            a, b, c = (next(iter(h.cand(loc).values)) for loc in ("A", "B", "C"))
            if role == "recipient":
                d["lig"] = _encode(ligand_set(a, b, c, o), _LIG_BITS)
                d["mm"] = _encode(ligand_set(a, b, c, o, ipd=o.ipd_compatible), _LIG_BITS)
                d["bc1"] = int(has_b_c1(b))
                d["bclass"] = _B_CLASSES.index(b_class(b))
                d["typed"] = int(typed)
                if typed:
                    assert k is not None
                    d["ikir"] = _encode((g for g in IKIR if k.present[g].value), _GENE_BITS)
                else:
                    fast_unknown["gene_gene_mismatches"] = "no_recipient_kir"
            else:
                assert k is not None
                present = {g for g in (*IKIR, "KIR3DL2") if k.present[g].known
                           and k.present[g].value}
                d["mm"] = _encode(ligand_set(a, b, c, o, ipd=o.ipd_compatible), _LIG_BITS)
                d["ikir"] = _encode(present & set(IKIR), _GENE_BITS)
                rl = present & set(IKIR) | (present & {"KIR3DL2"} if o.include_a3a11 else set())
                d["rl"] = _encode(rl, _GENE_BITS)
                if o.exclude_null_kir3dl1:
                    base = present & {"KIR2DL1", "KIR2DL2", "KIR2DL3"}
                    cf = base | ({"KIR3DL1"} if k.kir3dl1_functional.value else set())
                else:
                    cf = present & set(IKIR)
                d["cf"] = _encode(cf, _GENE_BITS)
                cls = k.kir3dl1_class
                d["cls"] = _encode(cls.values, _CLASS_BITS)
                d["clsreason"] = self._reason(cls.reason or "ambiguous_typing")
        d["_fast_unknown"] = _unknown_warnings(fast_unknown)
        return d

    def _reason(self, reason: str) -> int:
        r = self._reasons.get(reason)
        if r is None:
            r = len(self._reason_list)
            self._reasons[reason] = r
            self._reason_list.append(reason)
        return r

    def _wset(self, s: frozenset[str]) -> int:
        w = self._wsets.get(s)
        if w is None:
            w = len(self._wlist)
            self._wsets[s] = w
            self._wlist.append(s)
        return w

    # -- pairs -------------------------------------------------------------------
    def assess_chunk(self, recipient_ids: pd.Series, donor_ids: pd.Series) -> ChunkResult:
        """Compute the output columns for one chunk of pairs (ids as given)."""
        n = len(recipient_ids)
        ri = self.lookup(recipient_ids)
        di = self.lookup(donor_ids)
        R, D = self.sides["recipient"], self.sides["donor"]
        self.prepare("recipient", ri[ri >= 0])
        self.prepare("donor", di[di >= 0])
        rv = np.where(ri >= 0, ri, 0)
        dv = np.where(di >= 0, di, 0)
        ok = (ri >= 0) & (R.state[rv] == 1) & (di >= 0) & (D.state[dv] == 1)
        pr = np.where(ok, R.prof[rv], 0)
        pdn = np.where(ok, D.prof[dv], 0)
        codes: dict[str, np.ndarray] = {}
        for col in RECIPIENT_COLUMNS:
            codes[col] = R.array(col)[pr].astype(np.int32)
        for col in DONOR_COLUMNS:
            codes[col] = D.array(col)[pdn].astype(np.int32)
        for col in (*CROSS_COLUMNS, *DSA_COLUMNS):
            codes[col] = np.zeros(n, np.int32)
        warn_codes = np.zeros(n, np.int32)
        wvocab: dict[str, int] = {"": 0}
        wlist: list[str] = [""]

        def wcode(text: str) -> int:
            c = wvocab.get(text)
            if c is None:
                c = len(wlist)
                wvocab[text] = c
                wlist.append(text)
            return c

        if ok.any():
            fast = ok & (R.array("fast")[pr] == 1) & (D.array("fast")[pdn] == 1)
            f = np.flatnonzero(fast)
            if f.size:
                self._fast(f, pr[f], pdn[f], R.wfast[rv[f]], D.wfast[dv[f]], codes,
                           warn_codes, wcode)
            slow = np.flatnonzero(ok & ~fast)
            for j in slow.tolist():
                cells, unk = self._slow(int(pr[j]), int(pdn[j]))
                for col, c in cells.items():
                    codes[col][j] = c
                warn_codes[j] = wcode(_join_warnings(
                    (R.raw_warnings[int(rv[j])], D.raw_warnings[int(dv[j])], unk,
                     _DSA_WARNINGS)))
        # status and error
        status = np.where(ok, 1, 2).astype(np.int32)
        err_idx = np.flatnonzero(~ok)
        err_vocab = _Vocab()
        err_codes = np.zeros(n, np.int32)
        counter: Counter[str] = Counter()
        if err_idx.size:
            rid_text = _as_text(recipient_ids).to_numpy(dtype=object)
            did_text = _as_text(donor_ids).to_numpy(dtype=object)
            for j in err_idx.tolist():
                msgs = []
                for role, idx, text, side in (("recipient", ri, rid_text, R),
                                              ("donor", di, did_text, D)):
                    m = self._error_message(role, int(idx[j]), str(text[j]), side)
                    if m:
                        msgs.append(m)
                msg = "; ".join(msgs)
                counter[msg.split(":", 1)[0]] += 1
                err_codes[j] = err_vocab.code(msg)
        columns: dict[str, pa.Array] = {}
        status_vocab = pa.array(["", "ok", "error"], pa.large_string())
        for col in OUTPUT_COLUMNS:
            if col == "status":
                columns[col] = status_vocab.take(pa.array(status))
            elif col == "error":
                columns[col] = err_vocab.arrow(err_codes)
            elif col == "warnings":
                columns[col] = pa.array(wlist, pa.large_string()).take(pa.array(warn_codes))
            else:
                columns[col] = self.vocab[col].arrow(codes[col])
        return ChunkResult(columns, ~ok, counter)

    def _error_message(self, role: str, idx: int, text: str, side: _RoleSide) -> str:
        if idx == -2:
            return f"input_parse_error: {role}_id is empty"
        if idx == -1:
            return (f"person_not_found: {role} {text.strip()!r} has no record in the "
                    "genotypes file")
        if side.state[idx] == 2:
            return side.errors[idx]
        return ""

    def _fast(self, f: np.ndarray, pr: np.ndarray, pdn: np.ndarray, wr: np.ndarray,
              wd: np.ndarray, codes: dict[str, np.ndarray], warn_codes: np.ndarray,
              wcode: Callable[[str], int]) -> None:
        R, D = self.sides["recipient"], self.sides["donor"]
        r_lig = R.array("lig")[pr]
        r_mm = R.array("mm")[pr]
        r_bc1 = R.array("bc1")[pr]
        r_bclass = R.array("bclass")[pr]
        r_typed = R.array("typed")[pr]
        r_ikir = R.array("ikir")[pr]
        d_mm = D.array("mm")[pdn]
        d_ikir = D.array("ikir")[pdn]
        d_rl = D.array("rl")[pdn]
        d_cf = D.array("cf")[pdn]
        d_cls = D.array("cls")[pdn]
        d_reason = D.array("clsreason")[pdn]
        codes["gvh_mismatched_ligands"][f] = self.t_gvh[d_mm, r_mm]
        codes["hvg_mismatched_ligands"][f] = self.t_hvg[d_mm, r_mm]
        codes["gvh_ligand_mismatch"][f] = self.t_gvh_b[d_mm, r_mm]
        codes["hvg_ligand_mismatch"][f] = self.t_hvg_b[d_mm, r_mm]
        codes["missing_ligands"][f] = self.t_ml[d_ikir, r_lig]
        codes["missing_ligand_count"][f] = self.t_mlc[d_ikir, r_lig]
        codes["receptor_ligand_mismatches"][f] = self.t_rl[d_rl, r_lig]
        codes["gene_gene_mismatches"][f] = np.where(r_typed == 1, self.t_gg[d_ikir, r_ikir], 0)
        codes["cf_ikir"][f] = self.t_cf[d_cf, r_lig, r_bc1]
        codes["ikir_score_weighted"][f] = self.t_w[d_cf, r_lig, r_bc1]
        h = self.t_h[d_cls, r_bclass]
        unknown_h = h < 0
        codes["kir3dl1_hlab"][f] = np.where(unknown_h, 0, h)
        # Warnings: one string per distinct (recipient set, donor set, hlab reason).
        hk = np.where(unknown_h, d_reason + 1, 0)
        if len(self._wlist) >= 1 << 24 or len(self._reason_list) >= 63:  # pragma: no cover
            raise RuntimeError("too many distinct warning sets for the packed key")
        key = (wr.astype(np.int64) << 30) | (wd.astype(np.int64) << 6) | hk.astype(np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        local = np.empty(len(uniq), np.int32)
        for u, k in enumerate(uniq.tolist()):
            s = self._wstrings.get(k)
            if s is None:
                r_set = self._wlist[k >> 30]
                d_set = self._wlist[(k >> 6) & ((1 << 24) - 1)]
                extra: frozenset[str] = frozenset()
                if k & 63:
                    reason = self._reason_list[(k & 63) - 1]
                    extra = _unknown_warnings({"kir3dl1_hlab": reason})
                s = _join_warnings((r_set, d_set, extra, _DSA_WARNINGS))
                if len(self._wstrings) > 500_000:
                    self._wstrings.clear()
                self._wstrings[k] = s
            local[u] = wcode(s)
        warn_codes[f] = local[inv.reshape(-1)]

    def _slow(self, pr: int, pdn: int) -> tuple[dict[str, int], frozenset[str]]:
        """The two-person columns of one pair by the scalar engine (memoised).

        Returns the cell codes of :data:`CROSS_COLUMNS` and the warnings of the
        pair (person warnings excepted).
        """
        R, D = self.sides["recipient"], self.sides["donor"]
        rd, dd = R.pdata[pr], D.pdata[pdn]
        key = (rd["_xkey"], dd["_xkey"])
        hit = self._fallback.get(key)
        if hit is None:
            values, unknown, _ = compute_models(rd["_h"], dd["_h"], dd["_kx"], rd["_kx"],
                                                self.options)
            cells = {col: self.vocab[col].code(
                _cell(col, None if col in unknown else values[col])) for col in CROSS_COLUMNS}
            hit = (cells, _unknown_warnings(
                {c: r for c, r in unknown.items() if c in CROSS_COLUMNS}))
            if len(self._fallback) > 200_000:
                self._fallback.clear()
            self._fallback[key] = hit
        return hit[0], hit[1] | rd["_own_unknown"] | dd["_own_unknown"]


def hla_from_wide(lay: GenotypeLayout, values: Mapping[str, str]) -> HLAGenotype:
    """HLA from per-allele columns (``A_1``, ``A_2``, …); errors name the column."""
    cells = {loc: tuple(values[c] for c in cols) for loc, cols in lay.hla_loci}
    try:
        return hla_genotype_from_columns(cells)
    except HLAParseError as exc:
        for loc, cols in lay.hla_loci:
            for c in cols:
                cell = values[c].strip()
                if not cell or cell.upper() in ("NA", "NAN"):
                    continue
                try:
                    for part in cell.split("/"):
                        parse_hla_typing(part, locus=loc)
                except HLAParseError as inner:
                    raise inner.located(column=c) from exc
        raise


def kir_from_wide(lay: GenotypeLayout, values: Mapping[str, str],
                  tables: ReferenceTables) -> KIRGenotype:
    """KIR from per-gene columns; a gene in several columns is merged
    (:func:`_merge_gene`); errors name the column."""
    per_gene: dict[str, list[KIRGeneTyping]] = {}
    for col, gene in lay.kir_genes:
        cell = values[col]
        try:
            typing = parse_kir_value(gene, cell, tables, raw=f"{col}={cell}")
        except KirmatchError as exc:
            raise exc.located(column=col) from None
        per_gene.setdefault(gene, []).append(typing)
    states = {g: _merge_gene(g, ts) for g, ts in per_gene.items()}
    raw = ";".join(f"{c}={values[c]}" for c, _ in lay.kir_genes)
    return kir_genotype_from_states(states, raw, default=GeneState.UNKNOWN)


def _merge_gene(gene: str, typings: list[KIRGeneTyping]) -> KIRGeneTyping:
    """One gene typed in several columns (``2DL5A`` and ``2DL5B``; ``2DS4FL`` and
    ``2DS4DEL``): present if any column says present, absent if all say absent,
    else unknown. Allele detail is kept only when a single column has it."""
    if len(typings) == 1:
        return typings[0]
    present = [t for t in typings if t.state is GeneState.PRESENT]
    if present:
        with_alleles = [t for t in present if t.genotypes is not None]
        if len(with_alleles) == 1:
            return with_alleles[0]
        return KIRGeneTyping(gene, GeneState.PRESENT)
    if all(t.state is GeneState.ABSENT for t in typings):
        return KIRGeneTyping(gene, GeneState.ABSENT)
    reason = next((t.reason for t in typings if t.state is GeneState.UNKNOWN), "untyped")
    return KIRGeneTyping(gene, GeneState.UNKNOWN, None, reason or "untyped")


def _as_text(s: pd.Series) -> pd.Series:
    """A column as text with missing values as ``""`` (ids from Parquet may be numbers)."""
    if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
        return s.fillna("").astype("str")
    return s.astype("str").where(s.notna(), "")


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def check_pair_columns(columns: Sequence[str]) -> None:
    """The pairs table needs ``recipient_id`` and ``donor_id`` and must not already
    hold a column of the output contract (it would be silently overwritten).

    Raises
    ------
    InputSchemaError
        Naming the missing or clashing column(s).
    """
    cols = [str(c) for c in columns]
    missing = [c for c in ("recipient_id", "donor_id") if c not in cols]
    if missing:
        raise InputSchemaError(
            f"pairs file has no {' or '.join(repr(m) for m in missing)} column (columns: "
            f"{', '.join(map(repr, cols))}); name yours with --column-map", column=missing[0])
    clash = [c for c in cols if c in OUTPUT_COLUMNS]
    if clash:
        raise InputSchemaError(
            f"pairs file column(s) {', '.join(repr(c) for c in clash)} clash with kirmatch "
            "output columns of the same name; rename them in the pairs file",
            column=clash[0])


def assess_pairs(
    genotypes: pd.DataFrame,
    pairs: pd.DataFrame,
    options: Options | None = None,
    *,
    tables: ReferenceTables | None = None,
    pyard: PyardBackend | None = None,
) -> pd.DataFrame:
    """Assess every pair of ``pairs`` against the people of ``genotypes``.

    A pure function of one partition: equal inputs give equal outputs, row
    for row equal to :func:`kirmatch.pair.assess_pair`, so it can run on
    each partition of a Dask dataframe (see the README).

    Parameters
    ----------
    genotypes:
        One row per person: ``sample_id`` plus ``hla`` (GL string) and ``kir``
        (KIR string), or the wide forms (``A_1``, ``A_2``, … and one column
        per KIR gene); see :func:`detect_genotype_layout`.
    pairs:
        ``recipient_id``, ``donor_id`` and any other columns (kept as they are).
    options:
        Rule-set options (default :class:`~kirmatch.options.Options`).
    tables, pyard:
        Reference tables (default: the shipped ones) and an optional py-ard
        backend for serology and MAC codes.

    Returns
    -------
    pandas.DataFrame
        The pair columns, then the contract columns of DOMAIN.md §A.16 from
        ``status`` on, as text cells (``true``/``false``, ``;``-joined lists,
        empty = unknown). The index is the index of ``pairs``. Rows that cannot
        be computed have ``status=error`` and an ``error`` of the form
        ``code: message``; no row is dropped.

    Raises
    ------
    InputSchemaError
        A required column is missing, or a pair column clashes with an
        output column.
    """
    opts = options or Options()
    t = tables or load_reference_tables()
    check_pair_columns(list(pairs.columns))
    cohort = Cohort(genotypes, opts, t, pyard)
    res = cohort.assess_chunk(pairs["recipient_id"], pairs["donor_id"])
    extra = pd.DataFrame({c: pd.Series(a, dtype="str", index=pairs.index)
                          for c, a in res.columns.items()}, index=pairs.index)
    return pd.concat([pairs, extra], axis=1)


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What :func:`run_batch` did: row counts, files and timing."""

    rows_in: int
    rows_ok: int
    rows_error: int
    error_codes: dict[str, int]
    duplicate_ids: tuple[str, ...]
    output: Path
    errors: Path | None
    provenance: Path
    seconds: float


def _input_record(path: Path) -> dict[str, Any]:
    return {"path": str(path.resolve()), "sha256": file_sha256(path),
            "bytes": path.stat().st_size}


def _pyard_record(pyard: PyardBackend | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver: str | None = version("py-ard")
    except PackageNotFoundError:  # pragma: no cover
        ver = None
    rec: dict[str, Any] = {"version": ver, "opened": False}
    if pyard is not None:
        from kirmatch.pyard_backend import status

        st = status(pyard.data_dir)
        rec.update({"database": st.database, "database_version": st.database_version,
                    "imgt_version": st.imgt_version, "mac_loaded": st.mac_loaded,
                    "opened": pyard.open_seconds is not None})
    return rec


@dataclass(frozen=True)
class GenotypeSource:
    """Genotypes already read by the format readers (``kirmatch.readers``), as a
    ``sample_id, hla, kir`` table, with the files they came from."""

    table: pd.DataFrame
    paths: tuple[Path, ...]
    description: str


def run_batch(
    genotypes: str | os.PathLike[str] | GenotypeSource,
    pairs: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: Options | None = None,
    *,
    errors: str | os.PathLike[str] | None = None,
    column_map: str | os.PathLike[str] | None = None,
    chunk_rows: int = 100_000,
    tables: ReferenceTables | None = None,
    pyard: PyardBackend | None = None,
    progress: Callable[[int], None] | None = None,
    command: Sequence[str] | None = None,
) -> BatchSummary:
    """Stream a pairs file through :func:`assess_pairs` into an output file.

    The genotypes file is read whole; the pairs file is read and written in
    chunks of ``chunk_rows`` rows, so memory stays flat whatever its size.
    The output has one row per pairs row, in input order: the pair file's
    columns (with ``recipient_id``/``donor_id`` under those names after the
    column map), then the contract columns. ``errors`` gets the ``status=error``
    rows again, led by ``pairs_row`` (1-based data row of the pairs file).
    ``OUTPUT + ".provenance.json"`` records versions, table checksums,
    options, input checksums, the command line, row counts and wall time.

    Parameters
    ----------
    genotypes, pairs, output, errors:
        Files; formats come from the extensions (CSV, TSV, ``.gz``, Parquet, XLSX).
    options:
        Rule-set options.
    column_map:
        A TOML or JSON file mapping our column names to the files' names.
    chunk_rows:
        Pairs per chunk.
    tables, pyard:
        Reference tables and optional py-ard backend.
    progress:
        Called with the number of rows done after each chunk.
    command:
        The command line, for the run record.

    Raises
    ------
    InputSchemaError
        Missing or clashing columns, empty or undecodable files (nothing is
        left under the output name).
    UsageError
        Unknown file extensions, or an output that would overwrite an input.
    """
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    opts = options or Options()
    t = tables or load_reference_tables()
    source = genotypes if isinstance(genotypes, GenotypeSource) else None
    g_paths = list(source.paths) if source is not None else [Path(genotypes)]  # type: ignore[arg-type]
    p_path, o_path = Path(pairs), Path(output)
    e_path = Path(errors) if errors is not None else None
    for p in (*([] if source is not None else g_paths), p_path, o_path,
              *([e_path] if e_path else [])):
        detect_format(p)
    ins = {*(g.resolve() for g in g_paths), p_path.resolve()}
    outs = [o_path, *([e_path] if e_path else [])]
    for o in outs:
        if o.resolve() in ins:
            raise UsageError(f"output {o} would overwrite an input file")
    if e_path is not None and e_path.resolve() == o_path.resolve():
        raise UsageError("--errors must differ from --output")
    cmap = read_column_map(column_map) if column_map is not None else ColumnMap()
    geno_df = source.table if source is not None else read_table(g_paths[0], what="genotypes")
    geno_df = apply_column_map(geno_df, _validate_genotype_map(cmap.genotypes, t),
                               what="genotypes")
    cohort = Cohort(geno_df, opts, t, pyard)

    rows_in = rows_err = 0
    codes: Counter[str] = Counter()
    neutral = None
    out_w = TableWriter(o_path)
    err_w = TableWriter(e_path) if e_path is not None else None
    schema: pa.Schema | None = None
    try:
        for chunk in iter_table(p_path, chunk_rows=chunk_rows, what="pairs"):
            chunk = apply_column_map(chunk, cmap.pairs, what="pairs")
            if neutral is None:
                check_pair_columns(list(chunk.columns))
                if e_path is not None and "pairs_row" in chunk.columns:
                    raise InputSchemaError(
                        "pairs file column 'pairs_row' clashes with the errors file's row "
                        "number column; rename it", column="pairs_row")
                neutral = [c for c in chunk.columns if _is_text(chunk[c])] + ["error"]
                out_w.neutralise = frozenset(neutral) if out_w.format.neutralises \
                    else frozenset()
                if err_w is not None and err_w.format.neutralises:
                    err_w.neutralise = frozenset(neutral)
            res = cohort.assess_chunk(chunk["recipient_id"], chunk["donor_id"])
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            for col, arr in res.columns.items():
                table = table.append_column(col, arr)
            if schema is None:
                schema = table.schema.remove_metadata()
            out_w.write(table)
            n_err = res.n_error
            if err_w is not None and n_err:
                rows = np.flatnonzero(res.status_error)
                sub = table.take(pa.array(rows))
                sub = sub.add_column(0, "pairs_row", pa.array(rows + rows_in + 1, pa.int64()))
                err_w.write(sub)
            rows_in += table.num_rows
            rows_err += n_err
            codes.update(res.error_codes)
            if progress is not None:
                progress(rows_in)
        assert schema is not None
        out_w.close(empty=schema)
        if err_w is not None:
            err_w.close(empty=pa.schema([pa.field("pairs_row", pa.int64()), *schema]))
    except BaseException:
        out_w.abort()
        if err_w is not None:
            err_w.abort()
        raise
    seconds = time.perf_counter() - t_start
    prov_path = o_path.with_name(o_path.name + ".provenance.json")
    from kirmatch import __version__

    record = {
        "kirmatch_version": __version__,
        "rules": RULES_ID,
        "rules_version": RULES_VERSION,
        **{k: v for k, v in t.provenance().items() if k != "rules"},
        "pyard": _pyard_record(pyard),
        "options": opts.to_dict(),
        "inputs": {
            "genotypes": (_input_record(g_paths[0]) if source is None else
                          {"format": source.description,
                           "files": [_input_record(g) for g in g_paths if g.is_file()]}),
            "pairs": _input_record(p_path),
            "column_map": _input_record(Path(column_map)) if column_map is not None else None,
        },
        "outputs": {"output": str(o_path), "errors": str(e_path) if e_path else None},
        "command": list(command) if command is not None else None,
        "rows": {"in": rows_in, "ok": rows_in - rows_err, "error": rows_err,
                 "error_codes": dict(sorted(codes.items()))},
        "genotypes": {"rows": cohort.rows_in, "people": len(cohort.ids),
                      "duplicate_ids": cohort.duplicate_ids,
                      "repeated_identical_ids": cohort.repeated_ids},
        "started_at": started,
        "wall_seconds": round(seconds, 3),
        "platform": {"python": platform.python_version(), "system": platform.system(),
                     "machine": platform.machine()},
        "argv": list(sys.argv),
    }
    tmp = prov_path.with_name(f".{prov_path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, prov_path)
    return BatchSummary(rows_in, rows_in - rows_err, rows_err, dict(codes),
                        tuple(cohort.duplicate_ids), o_path, e_path, prov_path, seconds)


def _is_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or s.dtype == object or (
        isinstance(s.dtype, pd.ArrowDtype) and (pa.types.is_string(s.dtype.pyarrow_dtype)
                                               or pa.types.is_large_string(
                                                   s.dtype.pyarrow_dtype)))


def genotype_source_from_readers(
    *, hla: str | os.PathLike[str] | None = None, hla_format: str = "auto",
    kir: str | os.PathLike[str] | None = None, kir_format: str = "auto",
    tables: ReferenceTables | None = None, options: Options | None = None,
) -> GenotypeSource:
    """Read HLA and/or KIR typings with the format readers and join them by sample id.

    The result feeds :func:`run_batch` like a genotypes file would; unknown KIR
    genes stay unknown (see :func:`kirmatch.readers.genotypes_table`).
    """
    from kirmatch.readers import genotypes_table, read_hla, read_kir

    if hla is None and kir is None:
        raise UsageError("give --genotypes, or --hla and/or --kir")
    t = tables or load_reference_tables()
    h = read_hla(hla, hla_format) if hla is not None else None
    k = read_kir(kir, kir_format, tables=t, options=options) if kir is not None else None
    rows = genotypes_table(kir=k, hla=h)
    table = pd.DataFrame(rows, columns=["sample_id", "hla", "kir"], dtype=object)
    parts = [f"{what} {res.format} ({len(res.genotypes)} samples)"
             for what, res in (("HLA", h), ("KIR", k)) if res is not None]
    paths = tuple(Path(p) for p in (hla, kir) if p is not None)
    return GenotypeSource(table, paths, "; ".join(parts))
