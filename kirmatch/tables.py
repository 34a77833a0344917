"""Load and verify kirmatch's shipped reference tables (``reference_tables/``).

The tables are derived offline from the pinned IPD releases by
``reference_tables/build/build_tables.py`` (DOMAIN.md §A.2, §A.14, §A.19, §C.6,
§C.7, §C.15; STYLE.md §5). At run time only these small TSV files are read,
never the IPD files and never the network.

Every table opens with an IPD-style header block (``# key: value`` lines), then
one TSV header row, then data. ``MANIFEST.toml`` lists each file with its
SHA-256, row count, columns and provenance. :func:`load_reference_tables`
re-hashes and parses the KIR-ligand and KIR tables at once and raises
:class:`~kirmatch.errors.ReferenceTableError` on any drift, missing file or
malformed row. The larger rules-v2 tables (all-loci alleles, antigens,
serology, HLA-B leader, DPB1 TCE) are checked to exist at load time but read,
checksum-verified and parsed only at their first use, so loading stays fast;
their data is never used before their checksum has been verified.

>>> tables = load_reference_tables()
>>> tables.hla_release, tables.kir_release, tables.rules
('3.58.0', '2.13.0', 'kirmatch-rules-v2')
>>> tables.protein_call("C*07:02").ligand
'C1'
>>> tables.hla_record("A*01:01:01:02N").ligand
'none'
>>> tables.kir_gene("2dl5a").gene
'KIR2DL5'
>>> tables.kir2dl1_245("KIR2DL1*004"), tables.kir3dl1_class("KIR3DL1*024N")
('C245', 'N')
>>> tables.hla_allele("DRB1*15:01:01:01").p_group
'DRB1*15:01P'
>>> sorted(tables.antigens_of("B*51:01").carries)
['B5', 'B51', 'Bw4']
>>> tables.b_leader("B*07:02"), tables.dpb1_tce("DPB1*09:01")
(('M', 'protein'), 1)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from kirmatch.api import check_path, check_type
from kirmatch.errors import AmbiguityError, ReferenceTableError, UnknownAlleleError

__all__ = [
    "TABLES_DIR_ENV",
    "AntigenRecord",
    "BLeaderRecord",
    "DPB1TCERecord",
    "HLAAlleleInfo",
    "HLAAlleleRecord",
    "KIRGeneInfo",
    "ReferenceTables",
    "SerologyRecord",
    "default_tables_dir",
    "load_reference_tables",
]

TABLES_DIR_ENV = "KIRMATCH_TABLES"
MANIFEST_FILE = "MANIFEST.toml"
SCHEMA_VERSION = 1

# Tables the loader needs, with their exact columns and schema versions.
HLA_TABLE = "hla_kir_ligands"
KIR_GENES_TABLE = "kir_genes"
KIR_ALLELES_TABLE = "kir_alleles"
KIR2DL1_TABLE = "kir2dl1_245"
KIR3DL1_TABLE = "kir3dl1_class"
HLA_ALLELES_TABLE = "hla_alleles"
HLA_ANTIGENS_TABLE = "hla_antigens"
HLA_SEROLOGY_TABLE = "hla_serology"
B_LEADER_TABLE = "hla_b_leader"
DPB1_TCE_TABLE = "hla_dpb1_tce"
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    HLA_TABLE: (
        "allele", "locus", "protein", "suffix", "expressed", "residues_76_83",
        "residue_note", "ligand", "b_c1", "a3a11", "note", "alignment",
    ),
    KIR_GENES_TABLE: ("alias", "gene", "kind", "variant", "note"),
    KIR_ALLELES_TABLE: ("allele_id", "allele", "gene", "ipd_gene", "protein", "suffix"),
    KIR2DL1_TABLE: ("allele_group", "residue_245", "call", "n_alleles", "note"),
    KIR3DL1_TABLE: ("allele_group", "class", "source", "note"),
    HLA_ALLELES_TABLE: ("allele", "locus", "protein", "suffix", "expressed", "g_group",
                        "p_group"),
    HLA_ANTIGENS_TABLE: ("allele", "antigens", "implied", "public", "group_name", "possible",
                         "assignment", "maybe_null", "note", "tentative"),
    HLA_SEROLOGY_TABLE: ("antigen", "kind", "loci", "broad", "splits", "parent", "associated",
                         "n_alleles"),
    B_LEADER_TABLE: ("allele", "protein", "expressed", "residue", "leader", "source", "note"),
    DPB1_TCE_TABLE: ("allele", "protein", "expressed", "tce_v2", "v2_label", "v2_predicted",
                     "tce_v1", "v1_label", "v1_predicted"),
}  # fmt: skip
# Per-table schema versions (MANIFEST ``schema_version``); 2 for the ligand
# table, which gained the ``alignment`` column.
TABLE_SCHEMA_VERSIONS: dict[str, int] = {name: 1 for name in REQUIRED_COLUMNS} | {HLA_TABLE: 2}
# Read, verified and parsed at first use, not by load_reference_tables().
LAZY_TABLES = frozenset(
    {HLA_ALLELES_TABLE, HLA_ANTIGENS_TABLE, HLA_SEROLOGY_TABLE, B_LEADER_TABLE, DPB1_TCE_TABLE}
)

_LIGAND_CELLS = frozenset({"C1", "C2", "Bw4-80I", "Bw4-80T", "Bw6", "unclassified", "none", ""})
_BOOL_CELLS = frozenset({"true", "false"})
_HLA_LOCI = frozenset({"A", "B", "C"})
_ALLELE_LOCI = frozenset(
    {"A", "B", "C", "DRB1", "DRB3", "DRB4", "DRB5", "DQA1", "DQB1", "DPA1", "DPB1"}
)
_HLA_SUFFIXES = frozenset({"", "N", "L", "S", "C", "A", "Q"})
_ALIGNMENT_CELLS = frozenset({"ungapped", "gapped", ""})
_KIR_KINDS = frozenset({"inhibitory", "activating", "framework", "pseudogene"})
_KIR2DL1_CALLS = frozenset({"R245", "C245", "other", "null"})
_KIR3DL1_CLASSES = frozenset({"H", "L", "N"})
_SEROLOGY_KINDS = frozenset({"who", "public", "allele_group"})
_LEADER_SOURCES = ("sequence", "protein", "first_field_fallback", "unknown", "null")
_TCE_GROUPS = frozenset({"1", "2", "3", ""})
_HLA_NAME = re.compile(r"^(?:HLA-)?([A-Z][A-Z0-9]*)\*(\d+(?::\d+)*)([A-Z]?)$")
_GROUP_NAME = re.compile(r"^(?:HLA-)?([A-Z][A-Z0-9]*\*\d+(?::\d+)+)([GP])$")
_KIR_NAME = re.compile(r"^(KIR[0-9][A-Z0-9]+)\*(\d+)([A-Z]?)$")
_KIR_DIGITS = re.compile(r"^(\d{3,})([A-Z]?)$")


@dataclass(frozen=True, slots=True)
class HLAAlleleRecord:
    """One HLA-A, -B or -C allele of the pinned release with its rule-1 call.

    ``ligand`` and ``b_c1`` are those of the allele's 2-field protein (rule 1.5);
    ``ligand`` is ``"none"`` for a null allele and ``None`` when no expressed
    entry of the protein covers the needed residues (``note`` says why).
    ``residues`` are the allele's own mature residues 76-83, or ``None``.
    """

    allele: str
    locus: str
    protein: str
    suffix: str
    expressed: bool
    residues: str | None
    ligand: str | None
    b_c1: bool
    a3a11: bool
    note: str
    alignment: str = ""  # "ungapped", "gapped" (rule-1 fallback) or "" (not placed)

    def __str__(self) -> str:
        return self.allele


@dataclass(frozen=True, slots=True)
class HLAAlleleInfo:
    """One allele of A, B, C, DRB1, DRB3/4/5, DQA1, DQB1, DPA1 or DPB1 of the release.

    ``g_group`` and ``p_group`` are ``None`` for an allele in no group (a null
    allele is never in a P group). Rule-16 allele identity (DOMAIN.md §A.19) is
    :attr:`ars_identity`.

    >>> info = load_reference_tables().hla_allele("DPB1*04:01:01:01")
    >>> info.protein, info.expressed, info.g_group, info.p_group
    ('DPB1*04:01', True, 'DPB1*04:01:01G', 'DPB1*04:01P')
    """

    allele: str
    locus: str
    protein: str
    suffix: str
    expressed: bool
    g_group: str | None
    p_group: str | None

    @property
    def ars_identity(self) -> str | None:
        """The antigen-recognition site identity of rule 16: the P group, or the
        2-field protein for an allele in no P group; ``None`` for a null allele."""
        if not self.expressed:
            return None
        return self.p_group or self.protein

    def __str__(self) -> str:
        return self.allele


@dataclass(frozen=True, slots=True)
class AntigenRecord:
    """What an allele carries for donor-specific antibodies (DOMAIN.md §A.14).

    ``antigens`` are its serological antigens (``rel_dna_ser.txt``, inherited
    from its P group, or its allele-group name); ``implied`` their broads and
    parents (``rel_ser_ser.txt``); ``public`` Bw4/Bw6 from the rule-1 call;
    ``group_name`` its allele-group name where WHO has none (``Cw12``,
    ``DPB1*04``); ``possible`` the splits of a broad it is assigned without any
    split (B*44:15: B12 only -> B44, B45), which it only *possibly* carries.
    ``assignment`` says how ``antigens`` were found: the ``rel_dna_ser.txt``
    fields joined by ``+`` (``unambiguous``, ``possible``, ``assumed``,
    ``expert``), ``p_group``, ``protein``, ``allele_group``, or ``null``
    (carries nothing). ``tentative`` are the antigens named only in the
    ``possible`` field: carried, but a serological typing of that antigen is not
    expanded to this allele (:meth:`ReferenceTables.alleles_assigned`).

    >>> rec = load_reference_tables().antigens_of("B*44:15:01:01")
    >>> rec.antigens, rec.possible, rec.broad_only
    (('B12',), ('B44', 'B45'), True)
    """

    allele: str
    antigens: tuple[str, ...]
    implied: tuple[str, ...]
    public: tuple[str, ...]
    group_name: str | None
    possible: tuple[str, ...]
    assignment: str
    maybe_null: bool
    note: str
    tentative: tuple[str, ...] = ()

    @property
    def carries(self) -> frozenset[str]:
        """Every name an antibody can hit on this allele (antigens, implied,
        public epitopes and allele-group name); empty for ``null``."""
        extra = (self.group_name,) if self.group_name else ()
        return frozenset((*self.antigens, *self.implied, *self.public, *extra))

    @property
    def broad_only(self) -> bool:
        """Assigned a broad without any of its splits (see ``possible``)."""
        return bool(self.possible)

    def __str__(self) -> str:
        return self.allele


@dataclass(frozen=True, slots=True)
class SerologyRecord:
    """A serological antigen name and its relations (``rel_ser_ser.txt``).

    ``kind`` is ``who`` (a WHO antigen), ``public`` (Bw4, Bw6) or
    ``allele_group`` (a lab name for a first field without WHO antigen).
    ``loci`` are the genes whose alleles carry it and ``n_alleles`` how many.

    >>> rec = load_reference_tables().serology_relation("B51")
    >>> rec.broad, rec.associated, rec.kind
    ('B5', ('B5102', 'B5103'), 'who')
    """

    antigen: str
    kind: str
    loci: tuple[str, ...]
    broad: str | None
    splits: tuple[str, ...]
    parent: str | None
    associated: tuple[str, ...]
    n_alleles: int

    def __str__(self) -> str:
        return self.antigen


@dataclass(frozen=True, slots=True)
class BLeaderRecord:
    """HLA-B leader residue -21 of one allele (DOMAIN.md §A.19).

    ``residue`` is the amino acid (``None`` if unknown or null), ``leader`` the
    same when it is ``M`` or ``T`` (else ``None``), ``source`` one of
    ``sequence``, ``protein``, ``first_field_fallback``, ``unknown``, ``null``.
    """

    allele: str
    protein: str
    expressed: bool
    residue: str | None
    leader: str | None
    source: str
    note: str

    def __str__(self) -> str:
        return self.allele


@dataclass(frozen=True, slots=True)
class DPB1TCERecord:
    """DPB1 T-cell-epitope groups of one allele (``tce/dpb_tce.csv``).

    ``tce_v2``/``tce_v1`` are 1, 2 or 3 (``None``: null or unassigned);
    ``v2_label``/``v1_label`` the file's label (``2a`` is V2 group 2 for an
    allele moved from V1 group 3; ``0`` null); ``*_predicted`` marks the file's
    ``$`` (assigned from sequence motifs or functional distance scores).
    """

    allele: str
    protein: str
    expressed: bool
    tce_v2: int | None
    v2_label: str
    v2_predicted: bool
    tce_v1: int | None
    v1_label: str
    v1_predicted: bool

    def __str__(self) -> str:
        return self.allele


@dataclass(frozen=True, slots=True)
class KIRGeneInfo:
    """A KIR gene name as labs write it (``alias``) and what it means."""

    alias: str
    gene: str
    kind: str
    variant: str
    note: str

    def __str__(self) -> str:
        return self.gene


def default_tables_dir() -> Path:
    """Where the shipped tables live.

    ``$KIRMATCH_TABLES`` first; then ``kirmatch/reference_tables`` inside the
    installed package (the wheel layout); else ``<repo>/reference_tables`` next
    to the source package.
    """
    env = os.environ.get(TABLES_DIR_ENV)
    if env:
        return Path(env)
    try:
        packaged = resources.files("kirmatch") / "reference_tables"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, TypeError, OSError):  # pragma: no cover - unusual loaders
        pass
    return Path(__file__).resolve().parents[1] / "reference_tables"


def _fields_key(locus: str, fields: Iterable[str]) -> str:
    return f"{locus}*{':'.join(fields)}"


class ReferenceTables:
    """The verified reference tables of one directory; build it with
    :func:`load_reference_tables`. Read-only after construction.

    The KIR-ligand and KIR tables are verified and parsed by the constructor;
    the tables in :data:`LAZY_TABLES` at their first use (thread-safe), each
    checksum-verified on the very bytes that are parsed.

    Raises
    ------
    ReferenceTableError
        A table is missing, malformed or fails its checksum.
    TypeError
        ``directory`` is not a str or path-like, or ``verify`` is not a bool; the
        lookup methods raise it for a name that is not a str.
    """

    directory: Path
    hla_release: str
    kir_release: str
    rules: str
    manifest: dict[str, Any]
    kir_canonical_genes: tuple[str, ...]

    def __init__(self, directory: str | os.PathLike[str], *, verify: bool = True) -> None:
        directory = check_path("directory", directory)  # type: ignore[assignment]
        check_type("verify", verify, bool)
        self.directory = directory
        self.manifest = _read_manifest(directory)
        meta = self.manifest["meta"]
        self.hla_release = str(meta["ipd_imgt_hla"])
        self.kir_release = str(meta["ipd_kir"])
        self.rules = str(meta["rules"])
        self._verify = verify
        self._sha256: dict[str, str] = {}
        self._lock = threading.RLock()
        self._lazy_rows: dict[str, _Rows] = {}
        raw: dict[str, _Rows] = {}
        for name, entry in sorted(self.manifest["tables"].items()):
            file = entry["file"]
            if name in LAZY_TABLES:
                if not (directory / file).is_file():
                    raise ReferenceTableError(
                        f"reference table {file} listed in {MANIFEST_FILE} is missing from "
                        f"{directory}",
                        raw=file,
                    )
                continue
            data = self._verified_bytes(entry)
            if entry.get("kind", "table") == "table":
                raw[name] = _parse_tsv(file, data, entry, REQUIRED_COLUMNS.get(name))
        self._build_hla(raw[HLA_TABLE])
        self._build_kir(raw)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (dask, multiprocessing): everything but the lock."""
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ------------------------------------------------------------ verification
    def _verified_bytes(self, entry: dict[str, Any]) -> bytes:
        """Read one listed file and check it against its MANIFEST SHA-256."""
        file = entry["file"]
        data = _read_bytes(self.directory, file)
        digest = hashlib.sha256(data).hexdigest() if self._verify else entry["sha256"]
        if self._verify and digest != entry["sha256"]:
            raise ReferenceTableError(
                f"reference table {file} fails its checksum: expected sha256 "
                f"{entry['sha256']} (MANIFEST.toml), actual {digest}",
                raw=file,
            )
        self._sha256[file] = digest
        return data

    def _lazy_table(self, name: str) -> _Rows:
        """Rows of a lazily loaded table: read, verified and parsed once, at first use."""
        rows = self._lazy_rows.get(name)
        if rows is None:
            with self._lock:
                rows = self._lazy_rows.get(name)
                if rows is None:
                    entry = self.manifest["tables"][name]
                    data = self._verified_bytes(entry)
                    rows = _parse_tsv(entry["file"], data, entry, REQUIRED_COLUMNS[name])
                    self._lazy_rows[name] = rows
        return rows

    def _lazy_index(self, name: str, build: Callable[[], Any]) -> Any:
        """A per-table index, built once under the lock (``build`` reads the table)."""
        key = "_index_" + name
        found = self.__dict__.get(key)
        if found is None:
            with self._lock:
                found = self.__dict__.get(key)
                if found is None:
                    found = self.__dict__[key] = build()
        return found

    def verify_all(self) -> None:
        """Checksum-verify every listed file not verified yet (the lazy tables).

        Called by :attr:`sha256` and :meth:`provenance`, so the run record only
        ever names verified files. Raises
        :class:`~kirmatch.errors.ReferenceTableError` on drift.
        """
        with self._lock:
            for entry in self.manifest["tables"].values():
                if entry["file"] not in self._sha256:
                    self._verified_bytes(entry)

    @property
    def loaded_tables(self) -> frozenset[str]:
        """Names of the lazily loaded tables read so far (diagnostics and tests).

        >>> fresh = ReferenceTables(default_tables_dir())
        >>> fresh.loaded_tables
        frozenset()
        >>> _ = fresh.hla_allele("DQB1*02:01:01:01"); sorted(fresh.loaded_tables)
        ['hla_alleles']
        """
        return frozenset(self._lazy_rows)

    @property
    def sha256(self) -> dict[str, str]:
        """SHA-256 of every file listed in ``MANIFEST.toml`` (file name -> hex digest).

        Files not used yet are hashed and verified on this first access. In
        file-name order, whatever order the tables were loaded in (run records
        are the same from run to run).
        """
        self.verify_all()
        return dict(sorted(self._sha256.items()))

    # ------------------------------------------------------------------ HLA
    def _build_hla(self, table: _Rows) -> None:
        """Index the HLA rows; records are built lazily (keeps loading fast)."""
        _check_columns(table, HLA_TABLE, (
            (1, _HLA_LOCI), (3, _HLA_SUFFIXES), (4, _BOOL_CELLS), (7, _LIGAND_CELLS),
            (8, _BOOL_CELLS), (9, _BOOL_CELLS), (11, _ALIGNMENT_CELLS),
        ))  # fmt: skip
        self._hla_index = _AlleleIndex.build(table)
        self._hla_rows = self._hla_index.by_name
        self._hla_protein_rows = self._hla_index.by_protein
        self._hla_cache: dict[str, HLAAlleleRecord] = {}
        self._hla_group_cache: dict[str, tuple[HLAAlleleRecord, ...]] = {}
        self._protein_calls: dict[str, HLAAlleleRecord | None] = {}
        self._b_leaders: dict[str, BLeaderRecord | None] = {}

    def _record(self, row: list[str]) -> HLAAlleleRecord:
        rec = self._hla_cache.get(row[0])
        if rec is None:
            rec = self._hla_cache[row[0]] = HLAAlleleRecord(
                allele=row[0],
                locus=row[1],
                protein=row[2],
                suffix=row[3],
                expressed=row[4] == "true",
                residues=row[5] or None,
                ligand=row[7] or None,
                b_c1=row[8] == "true",
                a3a11=row[9] == "true",
                note=row[10],
                alignment=row[11],
            )
        return rec

    def _records(self, key: str, rows: Iterable[list[str]]) -> tuple[HLAAlleleRecord, ...]:
        found = self._hla_group_cache.get(key)
        if found is None:
            found = self._hla_group_cache[key] = tuple(self._record(row) for row in rows)
        return found

    def hla_record(self, allele: str) -> HLAAlleleRecord | None:
        """The record of an exact allele name of the release, suffix included
        (``"A*01:01:01:02N"``); an ``HLA-`` prefix is accepted. ``None`` if absent."""
        if not isinstance(allele, str):
            check_type("allele", allele, str)
        row = self._hla_rows.get(allele)
        if row is None and allele.startswith("HLA-"):
            row = self._hla_rows.get(allele[4:])
        return None if row is None else self._record(row)

    def hla_records_with_prefix(self, name: str) -> tuple[HLAAlleleRecord, ...]:
        """All alleles whose colon-fields start with the fields of ``name``.

        The suffix of ``name`` is ignored and fields match whole:
        ``"C*07:01"`` matches ``C*07:01:01:01`` and ``C*07:01`` but not
        ``C*07:010``; ``"C*07"`` gives every allele of first field 07. Table
        order; empty when nothing matches or ``name`` is not an allele name.
        """
        if not isinstance(name, str):
            check_type("name", name, str)
        found = self._hla_index.with_prefix(name)
        return () if found is None else self._records(*found)

    def hla_records_for_protein(self, protein: str) -> tuple[HLAAlleleRecord, ...]:
        """Every allele (null ones included) of a 2-field protein such as ``"C*07:02"``."""
        if not isinstance(protein, str):
            check_type("protein", protein, str)
        protein = protein.strip().removeprefix("HLA-")
        rows = self._hla_protein_rows.get(protein)
        return () if rows is None else self._records(protein, rows)

    def protein_call(self, protein: str) -> HLAAlleleRecord | None:
        """A representative expressed record of the protein, carrying its ligand
        and B-C1 flag (rule 1.5); ``None`` if the protein has no expressed allele.

        A longer name (``"C*07:02:01:01"``) is reduced to its first two fields.
        """
        if not isinstance(protein, str):
            check_type("protein", protein, str)
        if protein in self._protein_calls:      # rule 2 asks for each protein many times
            return self._protein_calls[protein]
        found = None
        match = _HLA_NAME.match(protein.strip())
        if match:
            locus, fields_text, _suffix = match.groups()
            fields = fields_text.split(":")
            if len(fields) >= 2:
                for row in self._hla_protein_rows.get(_fields_key(locus, fields[:2]), ()):
                    if row[4] == "true":
                        found = self._record(row)
                        break
        self._protein_calls[protein] = found
        return found

    def hla_first_fields(self, locus: str) -> frozenset[str]:
        """First fields (``"01"``, ``"02"``, ...) of any locus of the release.

        ``locus`` is ``"A"``, ``"HLA-A"``, ``"DRB1"``, ``"DPB1"``, ...; empty for
        an unknown locus. HLA-A, -B and -C come from the KIR-ligand table (no
        lazy load); the other loci from the all-loci allele table.

        >>> t = load_reference_tables()
        >>> "73" in t.hla_first_fields("B"), sorted(t.hla_first_fields("DRB3"))
        (True, ['01', '02', '03'])
        """
        if not isinstance(locus, str):
            check_type("locus", locus, str)
        key = locus.strip().removeprefix("HLA-")
        if key in _HLA_LOCI:
            return self._hla_index.first_fields.get(key, frozenset())
        if key not in _ALLELE_LOCI:
            return frozenset()
        return self._alleles.index.first_fields.get(key, frozenset())

    # ------------------------------------------------------- rules v2 (lazy)
    @property
    def _alleles(self) -> _AlleleTable:
        return self._lazy_index(HLA_ALLELES_TABLE, self._build_alleles)

    def _build_alleles(self) -> _AlleleTable:
        table = self._lazy_table(HLA_ALLELES_TABLE)
        _check_columns(table, HLA_ALLELES_TABLE, (
            (1, _ALLELE_LOCI), (3, _HLA_SUFFIXES), (4, _BOOL_CELLS),
        ))  # fmt: skip
        index = _AlleleIndex.build(table)
        g_members: dict[str, list[str]] = {}
        p_members: dict[str, list[str]] = {}
        for row in table.rows:
            if row[5]:
                g_members.setdefault(row[5], []).append(row[0])
            if row[6]:
                p_members.setdefault(row[6], []).append(row[0])
        # Group names are checked once each: well formed, and every member of
        # the group's locus; a P group never holds a null allele.
        for members, letter in ((g_members, "G"), (p_members, "P")):
            for group, names in members.items():
                match = _GROUP_NAME.match(group)
                locus = group.split("*", 1)[0] + "*"
                good = match is not None and match.group(2) == letter
                good = good and all(n.startswith(locus) for n in names)
                if letter == "P":
                    good = good and all(index.by_name[n][4] == "true" for n in names)
                if not good:
                    i = next(i for i, row in enumerate(table.rows) if group in (row[5], row[6]))
                    raise table.error(i, f"bad {letter} group {group!r}")
        return _AlleleTable(index, g_members, p_members)

    def _allele_info(self, row: list[str]) -> HLAAlleleInfo:
        cache = self._alleles.cache
        info = cache.get(row[0])
        if info is None:
            info = cache[row[0]] = HLAAlleleInfo(
                allele=row[0], locus=row[1], protein=row[2], suffix=row[3],
                expressed=row[4] == "true", g_group=row[5] or None, p_group=row[6] or None,
            )  # fmt: skip
        return info

    def hla_allele(self, name: str) -> HLAAlleleInfo | None:
        """The allele of that exact name (suffix included) at any locus of the
        all-loci table; an ``HLA-`` prefix is accepted. ``None`` if absent, which
        for a well-formed name means ``unknown_allele`` (DOMAIN.md §A.3 item 6).

        >>> t = load_reference_tables()
        >>> t.hla_allele("HLA-DQA1*05:01:01:01").locus, t.hla_allele("DQB1*02:99:99") is None
        ('DQA1', True)
        """
        key = name.strip().removeprefix("HLA-")
        row = self._alleles.index.by_name.get(key)
        return None if row is None else self._allele_info(row)

    def hla_alleles_with_prefix(self, name: str) -> tuple[HLAAlleleInfo, ...]:
        """All alleles (nulls included) whose fields start with the fields of ``name``.

        Same matching as :meth:`hla_records_with_prefix`, at every locus of the
        all-loci table: fields match whole, the suffix of ``name`` is ignored,
        ``"DPB1*04"`` gives the whole first field (a 1-field or ``XX`` typing).

        >>> t = load_reference_tables()
        >>> [a.allele for a in t.hla_alleles_with_prefix("DRB1*15:01:01")][:2]
        ['DRB1*15:01:01:01', 'DRB1*15:01:01:02']
        >>> t.hla_alleles_with_prefix("DRB1*15:010")
        ()
        """
        alleles = self._alleles
        found = alleles.index.with_prefix(name)
        if found is None:
            return ()
        got = alleles.groups.get(found[0])     # kept per prefix, as hla_records_with_prefix
        if got is None:
            got = alleles.groups[found[0]] = tuple(self._allele_info(row) for row in found[1])
        return got

    def g_group_members(self, name: str) -> tuple[HLAAlleleInfo, ...]:
        """Members (nulls included) of a G group such as ``"A*01:01:01G"``
        (``hla_nom_g.txt``); empty if no such group.

        >>> len(load_reference_tables().g_group_members("HLA-DPB1*04:01:01G")) > 50
        True
        """
        return self._group_members(name, self._alleles.g_members)

    def p_group_members(self, name: str) -> tuple[HLAAlleleInfo, ...]:
        """Members of a P group such as ``"DPB1*04:01P"`` (``hla_nom_p.txt``;
        never a null allele); empty if no such group.

        >>> [a.allele for a in load_reference_tables().p_group_members("A*01:02P")][:2]
        ['A*01:02:01:01', 'A*01:02:01:02']
        """
        return self._group_members(name, self._alleles.p_members)

    def _group_members(self, name: str, groups: dict[str, list[str]]
                       ) -> tuple[HLAAlleleInfo, ...]:
        members = groups.get(name.strip().removeprefix("HLA-"), ())
        rows = self._alleles.index.by_name
        return tuple(self._allele_info(rows[allele]) for allele in members)

    def p_group_of(self, name: str) -> str | None:
        """The P group of an allele, or of the expressed alleles of a shorter
        name (``"C*07:02"``; one protein never spans two P groups); ``None`` for
        a null allele, an allele in no P group, or an unknown name.

        >>> t = load_reference_tables()
        >>> t.p_group_of("C*07:02:01:01"), t.p_group_of("C*07:02"), t.p_group_of("A*01:06")
        ('C*07:02P', 'C*07:02P', None)
        """
        groups = {a.p_group for a in self._typed_members(name)}
        return groups.pop() if len(groups) == 1 else None

    def ars_identity(self, name: str) -> str | None:
        """Rule-16 allele identity (DOMAIN.md §A.19): the P group, or the 2-field
        protein for an allele in no P group; ``None`` for a null allele, an
        unknown name, or a name whose expressed alleles differ (a 1-field name).

        >>> t = load_reference_tables()
        >>> t.ars_identity("A*02:01:01:01") == t.ars_identity("A*02:01:48")
        True
        >>> t.ars_identity("A*01:06"), t.ars_identity("A*01:01:01:02N")
        ('A*01:06', None)
        """
        keys = {a.ars_identity for a in self._typed_members(name)}
        return keys.pop() if len(keys) == 1 else None

    def _typed_members(self, name: str) -> tuple[HLAAlleleInfo, ...]:
        """The alleles a typed name stands for (DOMAIN.md §A.3 item 1): those
        whose fields start with its fields; a typed suffix must match, and
        without one the null alleles are left out."""
        match = _HLA_NAME.match(name.strip())
        if not match:
            return ()
        suffix = match.group(3)
        members = self.hla_alleles_with_prefix(name)
        if suffix:
            return tuple(a for a in members if a.suffix == suffix)
        return tuple(a for a in members if a.expressed)

    def _members_or_raise(self, name: str, locus: str) -> tuple[HLAAlleleInfo, ...]:
        """:meth:`_typed_members` of a name that must exist at ``locus``."""
        match = _HLA_NAME.match(name.strip())
        if not match or match.group(1) != locus:
            raise UnknownAlleleError(name, f"IPD-IMGT/HLA {self.hla_release} (HLA-{locus})")
        if not self.hla_alleles_with_prefix(name):
            raise UnknownAlleleError(name, f"IPD-IMGT/HLA {self.hla_release}")
        return self._typed_members(name)

    # -- antigens (rule 13 v2)
    @property
    def _antigens(self) -> _AntigenTable:
        return self._lazy_index(HLA_ANTIGENS_TABLE, self._build_antigens)

    def _build_antigens(self) -> _AntigenTable:
        table = self._lazy_table(HLA_ANTIGENS_TABLE)
        _check_columns(table, HLA_ANTIGENS_TABLE, ((7, _BOOL_CELLS),))
        by_allele = {row[0]: row for row in table.rows}
        if list(by_allele) != list(self._alleles.index.by_name):
            raise ReferenceTableError(
                f"{self.manifest['tables'][HLA_ANTIGENS_TABLE]['file']}: alleles differ from "
                f"{self.manifest['tables'][HLA_ALLELES_TABLE]['file']}",
                raw=HLA_ANTIGENS_TABLE,
            )
        return _AntigenTable(by_allele, {})

    @property
    def _assigned(self) -> dict[str, tuple[str, ...]]:
        """Antigen name -> expressed alleles carrying it (built at first use)."""

        def build() -> dict[str, tuple[str, ...]]:
            assigned: dict[str, list[str]] = {}
            known: dict[tuple[str, ...], set[str]] = {}   # most alleles share their cells
            for allele, row in self._antigens.by_allele.items():
                if row[6] == "null":
                    continue
                key = (row[1], row[9], row[3], row[4])
                names = known.get(key)
                if names is None:
                    firm = set(_split(row[1])) - set(_split(row[9]))
                    names = known[key] = {*firm, *(u for a in firm for u in self._upward(a)),
                                          *_split(row[3]), row[4]}
                for antigen in names:
                    assigned.setdefault(antigen, []).append(allele)
            assigned.pop("", None)
            return {k: tuple(v) for k, v in assigned.items()}

        return self._lazy_index("assigned", build)

    def _upward(self, antigen: str) -> list[str]:
        """The broad and parent of an antigen, and theirs (B5102 -> B51, B5)."""
        out: list[str] = []
        rec = self._serology.get(antigen)
        while rec is not None:
            up = [x for x in (rec.broad, rec.parent) if x and x not in out]
            out.extend(up)
            rec = self._serology.get(rec.parent) if rec.parent else None
        return out

    def _antigen_record(self, row: list[str]) -> AntigenRecord:
        cache = self._antigens.cache
        rec = cache.get(row[0])
        if rec is None:
            rec = cache[row[0]] = AntigenRecord(
                allele=row[0], antigens=_split(row[1]), implied=_split(row[2]),
                public=_split(row[3]), group_name=row[4] or None, possible=_split(row[5]),
                assignment=row[6], maybe_null=row[7] == "true", note=row[8],
                tentative=_split(row[9]),
            )  # fmt: skip
        return rec

    def antigens_of(self, name: str) -> AntigenRecord | None:
        """What an allele carries for DSA (DOMAIN.md §A.14): see :class:`AntigenRecord`.

        ``name`` is an allele of the release, or a shorter name such as a 2-field
        protein (``"B*51:01"``, an allele-level bead): then the record of its
        expressed alleles (those with the typed suffix, if one is typed), which
        must all carry the same names (true of every 2-field protein of 3.58.0),
        else :class:`~kirmatch.errors.AmbiguityError` (expand the typing instead).
        ``None`` if no allele matches.

        >>> t = load_reference_tables()
        >>> rec = t.antigens_of("B*44:09")
        >>> rec.antigens, rec.implied, rec.public, rec.assignment
        (('B44', 'B45'), ('B12',), ('Bw6',), 'unambiguous+expert')
        >>> t.antigens_of("C*12:03:01:01").antigens, t.antigens_of("C*12:03:01:01").assignment
        (('Cw12',), 'allele_group')
        >>> t.antigens_of("A*01:01:01:02N").carries
        frozenset()
        """
        key = name.strip().removeprefix("HLA-")
        row = self._antigens.by_allele.get(key)
        if row is not None:
            return self._antigen_record(row)
        members = [self._antigen_record(self._antigens.by_allele[a.allele])
                   for a in self._typed_members(key)]
        if not members:
            return None
        first = members[0]
        facts = {(r.antigens, r.implied, r.public, r.group_name, r.possible) for r in members}
        if len(facts) != 1:
            raise AmbiguityError(
                f"{key}: its alleles carry different antigens; expand it to alleles", raw=key
            )
        kinds = sorted({r.assignment for r in members})
        return AntigenRecord(
            allele=key, antigens=first.antigens, implied=first.implied, public=first.public,
            group_name=first.group_name, possible=first.possible,
            assignment=kinds[0] if len(kinds) == 1 else "mixed:" + ";".join(kinds),
            maybe_null=any(r.maybe_null for r in members), note="",
            tentative=tuple(sorted({x for r in members for x in r.tentative})),
        )  # fmt: skip

    def alleles_assigned(self, antigen: str) -> tuple[str, ...]:
        """Expressed alleles assigned ``antigen`` (table order; empty if none).

        This is the expansion of a serology typing (DOMAIN.md §A.3, §A.14):
        ``"B44"`` gives the alleles assigned B44 (B*44:09 too, which also carries
        B45), never those assigned only the broad B12, never B*51:01, and not
        B*51:42, named B44 only in the ``possible`` field (its expert antigen is
        B51: see :attr:`AntigenRecord.tentative`). A
        broad gives the alleles of its splits *and* those assigned the broad only;
        a parent also those of its associated antigens (``"B51"`` includes
        B*51:02, assigned B5102). Public epitopes (``"Bw4"``) and allele-group
        names (``"Cw12"``: every expressed C*12 allele) work too. The name is
        matched case-insensitively; ``HLA-`` is accepted.

        >>> t = load_reference_tables()
        >>> b44 = t.alleles_assigned("B44")
        >>> "B*44:02:01:01" in b44, "B*44:15:01:01" in b44, "B*51:01:01:01" in b44
        (True, False, False)
        >>> "B*44:15:01:01" in t.alleles_assigned("B12"), "B*51:42" in b44
        (True, False)
        """
        canonical = self._canonical_antigen(antigen)
        return () if canonical is None else self._assigned.get(canonical, ())

    # -- serology relations
    @property
    def _serology(self) -> dict[str, SerologyRecord]:
        return self._lazy_index(HLA_SEROLOGY_TABLE, self._build_serology)

    @property
    def _serology_upper(self) -> dict[str, str]:
        """Upper-cased antigen name -> its spelling in the table."""
        return self._lazy_index("serology_upper", lambda: {k.upper(): k for k in self._serology})

    def _build_serology(self) -> dict[str, SerologyRecord]:
        table = self._lazy_table(HLA_SEROLOGY_TABLE)
        _check_columns(table, HLA_SEROLOGY_TABLE, ((1, _SEROLOGY_KINDS),))
        out: dict[str, SerologyRecord] = {}
        for i, row in enumerate(table.rows):
            if row[0] in out or not row[7].isdigit():
                raise table.error(i, f"duplicate antigen or bad count in {row!r}")
            out[row[0]] = SerologyRecord(
                antigen=row[0], kind=row[1], loci=_split(row[2]), broad=row[3] or None,
                splits=_split(row[4]), parent=row[5] or None, associated=_split(row[6]),
                n_alleles=int(row[7]),
            )  # fmt: skip
        return out

    def _canonical_antigen(self, name: str) -> str | None:
        key = name.strip().removeprefix("HLA-")
        return key if key in self._serology else self._serology_upper.get(key.upper())

    def serology_relation(self, antigen: str) -> SerologyRecord | None:
        """The antigen's broad, splits, parent and associated antigens
        (``rel_ser_ser.txt``); ``None`` if the name is not an antigen.

        >>> t = load_reference_tables()
        >>> t.serology_relation("B12").splits, t.serology_relation("cw3").splits
        (('B44', 'B45'), ('Cw10', 'Cw9'))
        >>> t.serology_relation("A74").broad, t.serology_relation("Bw4").kind
        ('A19', 'public')
        """
        canonical = self._canonical_antigen(antigen)
        return None if canonical is None else self._serology[canonical]

    def is_serology_antigen(self, name: str) -> bool:
        """True for a WHO antigen, a public epitope (Bw4, Bw6) or an allele-group
        name of the release (``B44``, ``Cw12``, ``DR52``, ``DQ7``, ``DPB1*04``);
        case-insensitive.

        >>> t = load_reference_tables()
        >>> t.is_serology_antigen("DR52"), t.is_serology_antigen("B99")
        (True, False)
        """
        return self._canonical_antigen(name) is not None

    # -- HLA-B leader and DPB1 TCE (rule 16)
    def _keyed_rows(self, name: str) -> dict[str, list[str]]:
        def build() -> dict[str, list[str]]:
            table = self._lazy_table(name)
            if name == B_LEADER_TABLE:
                _check_columns(table, name, ((2, _BOOL_CELLS), (5, frozenset(_LEADER_SOURCES))))
            else:
                _check_columns(table, name, (
                    (2, _BOOL_CELLS), (3, _TCE_GROUPS), (5, _BOOL_CELLS), (6, _TCE_GROUPS),
                    (8, _BOOL_CELLS),
                ))  # fmt: skip
            return {row[0]: row for row in table.rows}

        return self._lazy_index(name, build)

    def b_leader_record(self, allele: str) -> BLeaderRecord | None:
        """The HLA-B leader record of an exact allele name; ``None`` if absent.

        >>> load_reference_tables().b_leader_record("B*44:02:01:01").leader
        'T'
        """
        if allele in self._b_leaders:           # asked once per allele of each expansion
            return self._b_leaders[allele]
        row = self._keyed_rows(B_LEADER_TABLE).get(allele.strip().removeprefix("HLA-"))
        found = None if row is None else BLeaderRecord(
            allele=row[0], protein=row[1], expressed=row[2] == "true", residue=row[3] or None,
            leader=row[4] or None, source=row[5], note=row[6],
        )  # fmt: skip
        self._b_leaders[allele] = found
        return found

    def b_leader(self, name: str) -> tuple[str | None, str]:
        """HLA-B leader residue -21 (``"M"``, ``"T"`` or ``None``) and its source.

        ``name`` is an HLA-B allele or a shorter name (``"B*07:02"``): then all
        its expressed alleles (or those with the typed suffix) must agree, and
        the source is the weakest of theirs (``sequence`` > ``protein`` >
        ``first_field_fallback``). ``None`` comes with ``unknown`` (no usable
        entry, or a residue other than M/T), ``ambiguous`` (alleles disagree) or
        ``null``. A name absent from the release raises
        :class:`~kirmatch.errors.UnknownAlleleError`.

        >>> t = load_reference_tables()
        >>> [t.b_leader(b)[0] for b in ("B*07:02", "B*44:02", "B*35:01", "B*08:01")]
        ['M', 'T', 'T', 'M']
        >>> t.b_leader("B*07")
        (None, 'ambiguous')
        """
        rows = self._keyed_rows(B_LEADER_TABLE)
        found = [rows[a.allele] for a in self._members_or_raise(name, "B") if a.allele in rows]
        leaders = [row[4] for row in found]
        known = set(leaders) - {""}
        if len(known) > 1:
            return None, "ambiguous"
        if not known or "" in leaders:
            return None, "null" if all(row[5] == "null" for row in found) else "unknown"
        weakest = max(_LEADER_SOURCES.index(row[5]) for row in found)
        return known.pop(), _LEADER_SOURCES[weakest]

    def dpb1_tce_record(self, allele: str) -> DPB1TCERecord | None:
        """The DPB1 TCE record of an exact allele name; ``None`` if absent.

        >>> rec = load_reference_tables().dpb1_tce_record("DPB1*06:01:01:01")
        >>> rec.tce_v2, rec.v2_label, rec.tce_v1
        (2, '2a', 3)
        """
        row = self._keyed_rows(DPB1_TCE_TABLE).get(allele.strip().removeprefix("HLA-"))
        if row is None:
            return None
        return DPB1TCERecord(
            allele=row[0], protein=row[1], expressed=row[2] == "true",
            tce_v2=int(row[3]) if row[3] else None, v2_label=row[4],
            v2_predicted=row[5] == "true", tce_v1=int(row[6]) if row[6] else None,
            v1_label=row[7], v1_predicted=row[8] == "true",
        )  # fmt: skip

    def dpb1_tce(self, name: str) -> int | None:
        """V2 TCE group (1, 2 or 3; Crivello 2015) of a DPB1 allele or shorter name.

        A shorter name (``"DPB1*04:01"``) gives the group its expressed alleles
        share, else ``None``; ``None`` also for a null allele or an allele without
        assignment. A name absent from the release raises
        :class:`~kirmatch.errors.UnknownAlleleError`.

        >>> t = load_reference_tables()
        >>> [t.dpb1_tce(a) for a in ("DPB1*04:01", "DPB1*09:01", "DPB1*02:01", "DPB1*04:02")]
        [3, 1, 3, 3]
        """
        groups = {rec.tce_v2 for a in self._members_or_raise(name, "DPB1")
                  if (rec := self.dpb1_tce_record(a.allele)) is not None}
        return groups.pop() if len(groups) == 1 else None

    # ------------------------------------------------------------------ KIR
    def _build_kir(self, raw: dict[str, _Rows]) -> None:
        tables = self.manifest["tables"]
        # Genes and aliases.
        file = tables[KIR_GENES_TABLE]["file"]
        genes: dict[str, KIRGeneInfo] = {}
        canonical: list[str] = []
        for lineno, row in raw[KIR_GENES_TABLE].numbered():
            info = KIRGeneInfo(*row)
            if info.kind not in _KIR_KINDS or info.alias != info.alias.upper():
                raise _row_error(file, lineno, f"bad kind or alias case in {row!r}")
            if info.alias in genes:
                raise _row_error(file, lineno, f"duplicate alias {info.alias!r}")
            genes[info.alias] = info
            if info.alias == info.gene:
                canonical.append(info.gene)
        self._kir_genes = genes
        self.kir_canonical_genes = tuple(canonical)

        # Alleles: every digit prefix of every allele, per IPD gene.
        file = tables[KIR_ALLELES_TABLE]["file"]
        prefixes: dict[str, set[tuple[str, str]]] = {}
        paralogs: dict[str, set[str]] = {}
        for lineno, row in raw[KIR_ALLELES_TABLE].numbered():
            _aid, allele, gene, ipd_gene, _protein, suffix = row
            match = _KIR_NAME.match(allele)
            if not match or match.group(1) != ipd_gene or match.group(3) != suffix:
                raise _row_error(file, lineno, f"allele {allele!r} does not match its columns")
            digits = match.group(2)
            bucket = prefixes.setdefault(ipd_gene, set())
            for k in range(1, len(digits) + 1):
                bucket.add((digits[:k], ""))
                if suffix:
                    bucket.add((digits[:k], suffix))
            paralogs.setdefault(gene, set()).add(ipd_gene)
        self._kir_prefixes = {k: frozenset(v) for k, v in prefixes.items()}
        self._kir_ipd_genes = {k: tuple(sorted(v)) for k, v in paralogs.items()}

        # KIR2DL1 residue 245 and KIR3DL1 classes.
        file = tables[KIR2DL1_TABLE]["file"]
        self._kir2dl1: dict[str, str] = {}
        for lineno, row in raw[KIR2DL1_TABLE].numbered():
            if row[2] not in _KIR2DL1_CALLS:
                raise _row_error(file, lineno, f"unknown residue-245 call {row[2]!r}")
            self._kir2dl1[row[0]] = row[2]
        file = tables[KIR3DL1_TABLE]["file"]
        self._kir3dl1: dict[str, str] = {}
        for lineno, row in raw[KIR3DL1_TABLE].numbered():
            if row[1] not in _KIR3DL1_CLASSES:
                raise _row_error(file, lineno, f"unknown KIR3DL1 class {row[1]!r}")
            self._kir3dl1[row[0]] = row[1]

    def kir_gene(self, alias: str) -> KIRGeneInfo | None:
        """Resolve a KIR gene name as written (case-insensitive): ``"KIR2DL1"``,
        ``"2dl1"``, ``"KIR2DL5A"`` (→ KIR2DL5), ``"2DS4N"`` (→ KIR2DS4)."""
        if not isinstance(alias, str):
            check_type("alias", alias, str)
        return self._kir_genes.get(alias.strip().upper())

    def kir_allele_exists(self, gene: str, digits: str) -> bool:
        """True if an IPD-KIR allele of ``gene`` starts with the typed ``digits``.

        ``digits`` is at least three digits plus an optional suffix (``"001"``,
        ``"00302"``, ``"024N"``); a typed suffix must equal the allele's. A
        gene alias is resolved first, so ``KIR2DL5`` covers KIR2DL5A and
        KIR2DL5B, while ``KIR2DL5A`` covers only KIR2DL5A.
        """
        if not (isinstance(gene, str) and isinstance(digits, str)):
            check_type("gene", gene, str)
            check_type("digits", digits, str)
        key = gene.strip().upper()
        if key in self._kir_prefixes:
            ipd_genes: tuple[str, ...] = (key,)
        else:
            info = self.kir_gene(key)
            if info is None:
                return False
            ipd_genes = self._kir_ipd_genes.get(info.gene, ())
        match = _KIR_DIGITS.match(digits.strip().upper())
        if not match:
            return False
        probe = (match.group(1), match.group(2))
        return any(probe in self._kir_prefixes[g] for g in ipd_genes)

    def _group_lookup(
        self, table: dict[str, str], gene: str, name: str, *, suffixed_groups: bool
    ) -> str | None:
        """Exact key first, then the allele's 3-digit group.

        ``suffixed_groups``: the table names N/Q groups with their suffix
        (``KIR2DL1*032N``); otherwise a ``Q`` allele takes its unsuffixed
        group's value and any other suffixed name must match exactly.
        """
        key = name.strip().upper()
        if not key.startswith("KIR"):
            key = "KIR" + key
        if key in table:
            return table[key]
        match = _KIR_NAME.match(key)
        if not match or match.group(1) != gene or len(match.group(2)) < 3:
            return None
        group = f"{gene}*{match.group(2)[:3]}"
        suffix = match.group(3)
        if suffix:
            if suffixed_groups:
                return table.get(group + suffix)
            return table.get(group) if suffix == "Q" else None
        if group in table:
            return table[group]
        # An unsuffixed typing of a group listed only with a suffix (KIR3DL1*024 -> *024N).
        hits = {value for k, value in table.items() if k[:-1] == group and k[-1].isalpha()}
        return hits.pop() if len(hits) == 1 else None

    def kir3dl1_class(self, allele_group: str) -> str | None:
        """KIR3DL1 class ``H``, ``L`` or ``N`` (DOMAIN.md §C.7); ``None`` if unclassified.

        ``"KIR3DL1*001"`` → ``"H"``; an allele (``"KIR3DL1*00101"``) takes its
        group's class, a ``Q`` allele too (the caller warns
        ``expression_variant``); ``"KIR3DL1*024N"`` → ``"N"``. Other
        ``N``-suffixed names must be listed exactly. KIR3DS1 (class N by rule
        11) is handled by the caller, not here.
        """
        if not isinstance(allele_group, str):
            check_type("allele_group", allele_group, str)
        return self._group_lookup(self._kir3dl1, "KIR3DL1", allele_group, suffixed_groups=False)

    def kir2dl1_245(self, allele_group: str) -> str | None:
        """KIR2DL1 residue-245 call (``R245``, ``C245``, ``other`` or ``null``;
        DOMAIN.md §C.6) of an allele or allele group; ``None`` if unknown.

        ``"KIR2DL1*004"`` → ``"C245"``, ``"KIR2DL1*00302"`` → ``"R245"``,
        ``"KIR2DL1*0320101N"`` → ``"null"`` (group ``KIR2DL1*032N``).
        """
        if not isinstance(allele_group, str):
            check_type("allele_group", allele_group, str)
        return self._group_lookup(self._kir2dl1, "KIR2DL1", allele_group, suffixed_groups=True)

    # ------------------------------------------------------------- provenance
    def sha256_of(self, file: str) -> str:
        """SHA-256 of a table file (name relative to the tables directory),
        verified against ``MANIFEST.toml`` (now, if the file was not used yet)."""
        check_type("file", file, str)
        if file not in self._sha256:
            entry = next((e for e in self.manifest["tables"].values() if e["file"] == file), None)
            if entry is None:
                raise ReferenceTableError(f"{file} is not listed in {MANIFEST_FILE}", raw=file)
            with self._lock:
                self._verified_bytes(entry)
        return self._sha256[file]

    def provenance(self) -> dict[str, Any]:
        """Releases, commits and file checksums for the run record (DOMAIN.md §A.1).

        Every file listed in ``MANIFEST.toml`` is named, each verified against
        its SHA-256 (now, for a lazily loaded table not used yet).
        """
        meta = self.manifest["meta"]
        return {
            "rules": self.rules,
            "ipd_imgt_hla": self.hla_release,
            "ipd_imgt_hla_commit": meta.get("ipd_imgt_hla_commit", ""),
            "ipd_kir": self.kir_release,
            "ipd_kir_commit": meta.get("ipd_kir_commit", ""),
            "reference_tables": dict(sorted(self.sha256.items())),
        }

    def __repr__(self) -> str:
        return (
            f"ReferenceTables({str(self.directory)!r}, IPD-IMGT/HLA {self.hla_release}, "
            f"IPD-KIR {self.kir_release}, {self.rules})"
        )


# ------------------------------------------------------------------ indices
def _split(cell: str) -> tuple[str, ...]:
    """A ``;``-joined cell as a tuple (empty cell -> ``()``)."""
    return tuple(cell.split(";")) if cell else ()


def _check_columns(table: _Rows, name: str,
                   checks: Iterable[tuple[int, frozenset[str]]]) -> None:
    """Column-wise value checks; only the slow path names the first bad line."""
    rows = table.rows
    for col, allowed in checks:
        if not {row[col] for row in rows} <= allowed:
            i = next(i for i, row in enumerate(rows) if row[col] not in allowed)
            raise table.error(i, f"{REQUIRED_COLUMNS[name][col]} {rows[i][col]!r} not allowed")


@dataclass(frozen=True, slots=True)
class _AlleleIndex:
    """Rows of a table keyed by allele (columns allele, locus, protein, suffix)."""

    by_name: dict[str, list[str]]
    by_protein: dict[str, list[list[str]]]
    by_first: dict[str, list[list[list[str]]]]  # first field -> protein row lists
    first_fields: dict[str, frozenset[str]]

    @classmethod
    def build(cls, table: _Rows) -> _AlleleIndex:
        """Index and check the rows: unique alleles, each named after its protein."""
        by_name: dict[str, list[str]] = {}
        by_protein: dict[str, list[list[str]]] = {}
        by_first: dict[str, list[list[list[str]]]] = {}
        for i, row in enumerate(table.rows):
            allele, locus, protein = row[0], row[1], row[2]
            base = allele[:-1] if row[3] else allele
            if not (base == protein or base.startswith(protein + ":")) or not protein.startswith(
                locus + "*"
            ):
                raise table.error(i, f"protein {protein!r} does not match allele {allele!r}")
            if allele in by_name:
                raise table.error(i, f"duplicate allele {allele!r}")
            by_name[allele] = row
            group = by_protein.get(protein)
            if group is None:
                group = by_protein[protein] = []
                by_first.setdefault(protein.split(":", 1)[0], []).append(group)
            group.append(row)
        first_fields: dict[str, set[str]] = {}
        for first in by_first:
            locus, field = first.split("*", 1)
            first_fields.setdefault(locus, set()).add(field)
        return cls(by_name, by_protein, by_first,
                   {k: frozenset(v) for k, v in first_fields.items()})

    def with_prefix(self, name: str) -> tuple[str, Iterable[list[str]]] | None:
        """``(key, rows)`` of the alleles whose fields start with those of
        ``name`` (fields match whole, suffix ignored); ``None`` when ``name`` is
        not an allele name or names no known protein or first field. ``rows`` is
        lazy (callers cache by ``key``) and may be empty."""
        match = _HLA_NAME.match(name.strip())
        if not match:
            return None
        locus, fields_text, _suffix = match.groups()
        fields = fields_text.split(":")
        if len(fields) == 1:
            key = _fields_key(locus, fields)
            groups = self.by_first.get(key)
            return None if groups is None else (key, (r for g in groups for r in g))
        protein = _fields_key(locus, fields[:2])
        rows = self.by_protein.get(protein)
        if rows is None:
            return None
        if len(fields) == 2:
            return protein, rows
        prefix = _fields_key(locus, fields)
        longer = prefix + ":"
        return prefix, (r for r in rows
                        if (b := r[0][:-1] if r[3] else r[0]) == prefix or b.startswith(longer))


@dataclass(frozen=True, slots=True)
class _AlleleTable:
    index: _AlleleIndex
    g_members: dict[str, list[str]]
    p_members: dict[str, list[str]]
    cache: dict[str, HLAAlleleInfo] = dataclasses.field(default_factory=dict)
    groups: dict[str, tuple[HLAAlleleInfo, ...]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _AntigenTable:
    by_allele: dict[str, list[str]]
    cache: dict[str, AntigenRecord]


# ---------------------------------------------------------------------- I/O
def _read_bytes(directory: Path, file: str) -> bytes:
    path = directory / file
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReferenceTableError(
            f"reference table {file} listed in {MANIFEST_FILE} is missing from {directory}",
            raw=file,
        ) from None
    except OSError as exc:
        raise ReferenceTableError(f"cannot read reference table {path}: {exc}", raw=file) from exc


def _read_manifest(directory: Path) -> dict[str, Any]:
    data = _read_bytes(directory, MANIFEST_FILE)
    try:
        manifest = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReferenceTableError(
            f"{directory / MANIFEST_FILE} is not valid TOML: {exc}", raw=MANIFEST_FILE
        ) from exc
    meta = manifest.get("meta")
    tables = manifest.get("tables")
    if not isinstance(meta, dict) or not isinstance(tables, dict):
        raise ReferenceTableError(f"{MANIFEST_FILE} lacks [meta] or [tables.*]", raw=MANIFEST_FILE)
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ReferenceTableError(
            f"{MANIFEST_FILE}: schema_version {meta.get('schema_version')!r} is not supported "
            f"(expected {SCHEMA_VERSION})",
            raw=MANIFEST_FILE,
        )
    for key in ("rules", "ipd_imgt_hla", "ipd_kir"):
        if key not in meta:
            raise ReferenceTableError(f"{MANIFEST_FILE}: [meta] lacks {key!r}", raw=MANIFEST_FILE)
    for name in REQUIRED_COLUMNS:
        if name not in tables:
            raise ReferenceTableError(
                f"{MANIFEST_FILE} does not list the required table {name!r}", raw=MANIFEST_FILE
            )
        found = tables[name].get("schema_version") if isinstance(tables[name], dict) else None
        if found != TABLE_SCHEMA_VERSIONS[name]:
            raise ReferenceTableError(
                f"{MANIFEST_FILE}: [tables.{name}] schema_version {found!r} is not supported "
                f"(expected {TABLE_SCHEMA_VERSIONS[name]})",
                raw=MANIFEST_FILE,
            )
    for name, entry in tables.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) or not isinstance(
            entry.get("sha256"), str
        ):
            raise ReferenceTableError(
                f"{MANIFEST_FILE}: [tables.{name}] needs 'file' and 'sha256'", raw=MANIFEST_FILE
            )
        if entry.get("kind", "table") == "table" and (
            not isinstance(entry.get("columns"), list) or not isinstance(entry.get("rows"), int)
        ):
            raise ReferenceTableError(
                f"{MANIFEST_FILE}: [tables.{name}] needs 'columns' and 'rows'", raw=MANIFEST_FILE
            )
    return manifest


def _row_error(file: str, lineno: int, reason: str) -> ReferenceTableError:
    return ReferenceTableError(
        f"malformed row in reference table {file}, line {lineno}: {reason}", raw=file
    )


@dataclass(frozen=True, slots=True)
class _Rows:
    """Data rows of one TSV table and the file line number of the first one."""

    file: str
    first_line: int
    rows: list[list[str]]

    def numbered(self) -> Iterable[tuple[int, list[str]]]:
        return enumerate(self.rows, self.first_line)

    def error(self, index: int, reason: str) -> ReferenceTableError:
        return _row_error(self.file, self.first_line + index, reason)


def _parse_tsv(
    file: str, data: bytes, entry: dict[str, Any], required: tuple[str, ...] | None
) -> _Rows:
    """Strip the ``#`` header block explicitly, then split the TSV on tabs.

    The tables never quote or escape (the generator refuses cells with tabs,
    newlines or a leading ``#``), so a plain split is the exact reading of
    ``csv.reader(..., quoting=csv.QUOTE_NONE)``, at two thirds of its cost.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReferenceTableError(f"reference table {file} is not UTF-8: {exc}", raw=file) from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start = 0
    header: dict[str, str] = {}
    while start < len(lines) and lines[start].startswith("#"):
        key, _, value = lines[start][1:].partition(":")
        header[key.strip()] = value.strip()
        start += 1
    if "source_release" in entry and header.get("version") != entry["source_release"]:
        raise ReferenceTableError(
            f"reference table {file}: '# version: {header.get('version')}' differs from "
            f"{MANIFEST_FILE} source_release {entry['source_release']!r}",
            raw=file,
        )
    if start >= len(lines):
        raise ReferenceTableError(f"reference table {file} has no column header", raw=file)
    columns = lines[start].split("\t")
    expected = list(entry["columns"])
    if columns != expected or (required is not None and tuple(columns) != required):
        raise ReferenceTableError(
            f"reference table {file}, line {start + 1}: columns {columns} differ from "
            f"{list(required) if required is not None else expected}",
            raw=file,
        )
    table = _Rows(file, start + 2, [line.split("\t") for line in lines[start + 1 :]])
    width = len(columns)
    if any(len(row) != width for row in table.rows):
        i = next(i for i, row in enumerate(table.rows) if len(row) != width)
        raise table.error(i, f"{len(table.rows[i])} cells, expected {width}")
    if len(table.rows) != entry["rows"]:
        raise ReferenceTableError(
            f"reference table {file} has {len(table.rows)} data rows, {MANIFEST_FILE} says "
            f"{entry['rows']}",
            raw=file,
        )
    return table


@functools.lru_cache(maxsize=8)
def _load_cached(directory: Path, verify: bool) -> ReferenceTables:
    return ReferenceTables(directory, verify=verify)


def load_reference_tables(directory: str | os.PathLike[str] | None = None, *,
                          verify: bool = True) -> ReferenceTables:
    """Load (and by default verify) the reference tables of ``directory``.

    ``directory`` defaults to :func:`default_tables_dir`. Results are cached per
    resolved directory. With ``verify=True`` every file listed in
    ``MANIFEST.toml`` is re-hashed; drift, a missing file or a malformed row
    raises :class:`~kirmatch.errors.ReferenceTableError` naming the file (and
    line). With ``verify=False`` the hashes are taken from the manifest
    unchecked, but the tables are still parsed and validated.

    Raises
    ------
    ReferenceTableError
        A table is missing, malformed or fails its checksum.
    TypeError
        ``directory`` is not a str, path-like or None, or ``verify`` is not a bool.
    UsageError
        ``directory`` is an empty string.
    """
    path = check_path("directory", directory, none_ok=True) or default_tables_dir()
    check_type("verify", verify, bool)
    return _load_cached(path.resolve(), verify)
