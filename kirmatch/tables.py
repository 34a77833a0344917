"""Load and verify kirmatch's shipped reference tables (``reference_tables/``).

The tables are derived offline from the pinned IPD releases by
``reference_tables/build/build_tables.py`` (DOMAIN.md §A.2, §C.6, §C.7, §C.15;
STYLE.md §5). At run time only these small TSV files are read, never the IPD
files and never the network.

Every table opens with an IPD-style header block (``# key: value`` lines), then
one TSV header row, then data. ``MANIFEST.toml`` lists each file with its
SHA-256, row count, columns and provenance; :func:`load_reference_tables`
re-hashes every listed file and raises :class:`~kirmatch.errors.ReferenceTableError`
on any drift, missing file or malformed row.

>>> tables = load_reference_tables()
>>> tables.hla_release, tables.kir_release, tables.rules
('3.58.0', '2.13.0', 'kirmatch-rules-v1')
>>> tables.protein_call("C*07:02").ligand
'C1'
>>> tables.hla_record("A*01:01:01:02N").ligand
'none'
>>> tables.kir_gene("2dl5a").gene
'KIR2DL5'
>>> tables.kir2dl1_245("KIR2DL1*004"), tables.kir3dl1_class("KIR3DL1*024N")
('C245', 'N')
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from kirmatch.errors import ReferenceTableError

__all__ = [
    "TABLES_DIR_ENV",
    "HLAAlleleRecord",
    "KIRGeneInfo",
    "ReferenceTables",
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
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    HLA_TABLE: (
        "allele", "locus", "protein", "suffix", "expressed", "residues_76_83",
        "residue_note", "ligand", "b_c1", "a3a11", "note", "alignment",
    ),
    KIR_GENES_TABLE: ("alias", "gene", "kind", "variant", "note"),
    KIR_ALLELES_TABLE: ("allele_id", "allele", "gene", "ipd_gene", "protein", "suffix"),
    KIR2DL1_TABLE: ("allele_group", "residue_245", "call", "n_alleles", "note"),
    KIR3DL1_TABLE: ("allele_group", "class", "source", "note"),
}  # fmt: skip
# Per-table schema versions (MANIFEST ``schema_version``); 2 for the ligand
# table, which gained the ``alignment`` column.
TABLE_SCHEMA_VERSIONS: dict[str, int] = {name: 1 for name in REQUIRED_COLUMNS} | {HLA_TABLE: 2}

_LIGAND_CELLS = frozenset({"C1", "C2", "Bw4-80I", "Bw4-80T", "Bw6", "unclassified", "none", ""})
_BOOL_CELLS = frozenset({"true", "false"})
_HLA_LOCI = frozenset({"A", "B", "C"})
_HLA_SUFFIXES = frozenset({"", "N", "L", "S", "C", "A", "Q"})
_ALIGNMENT_CELLS = frozenset({"ungapped", "gapped", ""})
_KIR_KINDS = frozenset({"inhibitory", "activating", "framework", "pseudogene"})
_KIR2DL1_CALLS = frozenset({"R245", "C245", "other", "null"})
_KIR3DL1_CLASSES = frozenset({"H", "L", "N"})
_HLA_NAME = re.compile(r"^(?:HLA-)?([A-Z][A-Z0-9]*)\*(\d+(?::\d+)*)([A-Z]?)$")
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
    :func:`load_reference_tables`. Read-only after construction."""

    directory: Path
    hla_release: str
    kir_release: str
    rules: str
    manifest: dict[str, Any]
    sha256: dict[str, str]
    kir_canonical_genes: tuple[str, ...]

    def __init__(self, directory: Path, *, verify: bool = True) -> None:
        self.directory = directory
        self.manifest = _read_manifest(directory)
        meta = self.manifest["meta"]
        self.hla_release = str(meta["ipd_imgt_hla"])
        self.kir_release = str(meta["ipd_kir"])
        self.rules = str(meta["rules"])
        self.sha256 = {}
        raw: dict[str, _Rows] = {}
        for name, entry in sorted(self.manifest["tables"].items()):
            file = entry["file"]
            data = _read_bytes(directory, file)
            digest = hashlib.sha256(data).hexdigest() if verify else entry["sha256"]
            if verify and digest != entry["sha256"]:
                raise ReferenceTableError(
                    f"reference table {file} fails its checksum: expected sha256 "
                    f"{entry['sha256']} (MANIFEST.toml), actual {digest}",
                    raw=file,
                )
            self.sha256[file] = digest
            if entry.get("kind", "table") == "table":
                raw[name] = _parse_tsv(file, data, entry, REQUIRED_COLUMNS.get(name))
        self._build_hla(raw[HLA_TABLE])
        self._build_kir(raw)

    # ------------------------------------------------------------------ HLA
    def _build_hla(self, table: _Rows) -> None:
        """Index the HLA rows; records are built lazily (keeps loading fast)."""
        rows = table.rows
        # Column-wise value checks; the slow path below only names the first bad line.
        checks = (
            (1, _HLA_LOCI), (3, _HLA_SUFFIXES), (4, _BOOL_CELLS), (7, _LIGAND_CELLS),
            (8, _BOOL_CELLS), (9, _BOOL_CELLS), (11, _ALIGNMENT_CELLS),
        )  # fmt: skip
        for col, allowed in checks:
            if not {row[col] for row in rows} <= allowed:
                i = next(i for i, row in enumerate(rows) if row[col] not in allowed)
                column = REQUIRED_COLUMNS[HLA_TABLE][col]
                raise table.error(i, f"{column} {rows[i][col]!r} not allowed")
        by_name: dict[str, list[str]] = {}
        by_protein: dict[str, list[list[str]]] = {}
        by_first: dict[str, list[list[str]]] = {}
        for i, row in enumerate(rows):
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
                first = protein.split(":", 1)[0]
                by_first.setdefault(first, []).append(group)  # type: ignore[arg-type]
            group.append(row)
        self._hla_rows = by_name
        self._hla_protein_rows = by_protein
        self._hla_first_rows = by_first  # first field -> list of protein row lists
        first_fields: dict[str, set[str]] = {}
        for first in by_first:
            locus, field = first.split("*", 1)
            first_fields.setdefault(locus, set()).add(field)
        self._hla_first_fields = {k: frozenset(v) for k, v in first_fields.items()}
        self._hla_cache: dict[str, HLAAlleleRecord] = {}
        self._hla_group_cache: dict[str, tuple[HLAAlleleRecord, ...]] = {}

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
        match = _HLA_NAME.match(name.strip())
        if not match:
            return ()
        locus, fields_text, _suffix = match.groups()
        fields = fields_text.split(":")
        if len(fields) == 1:
            key = _fields_key(locus, fields)
            groups = self._hla_first_rows.get(key)
            if groups is None:
                return ()
            return self._records(key, (row for group in groups for row in group))
        protein = _fields_key(locus, fields[:2])
        rows = self._hla_protein_rows.get(protein)
        if rows is None:
            return ()
        if len(fields) == 2:
            return self._records(protein, rows)
        prefix = _fields_key(locus, fields)
        longer = prefix + ":"
        return self._records(
            prefix,
            (
                row
                for row in rows
                if (base := row[0][:-1] if row[3] else row[0]) == prefix or base.startswith(longer)
            ),
        )

    def hla_records_for_protein(self, protein: str) -> tuple[HLAAlleleRecord, ...]:
        """Every allele (null ones included) of a 2-field protein such as ``"C*07:02"``."""
        protein = protein.strip().removeprefix("HLA-")
        rows = self._hla_protein_rows.get(protein)
        return () if rows is None else self._records(protein, rows)

    def protein_call(self, protein: str) -> HLAAlleleRecord | None:
        """A representative expressed record of the protein, carrying its ligand
        and B-C1 flag (rule 1.5); ``None`` if the protein has no expressed allele.

        A longer name (``"C*07:02:01:01"``) is reduced to its first two fields.
        """
        match = _HLA_NAME.match(protein.strip())
        if not match:
            return None
        locus, fields_text, _suffix = match.groups()
        fields = fields_text.split(":")
        if len(fields) < 2:
            return None
        for row in self._hla_protein_rows.get(_fields_key(locus, fields[:2]), ()):
            if row[4] == "true":
                return self._record(row)
        return None

    def hla_first_fields(self, locus: str) -> frozenset[str]:
        """First fields (``"01"``, ``"02"``, ...) of a locus (``"A"`` or ``"HLA-A"``)."""
        return self._hla_first_fields.get(locus.strip().removeprefix("HLA-"), frozenset())

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
        return self._kir_genes.get(alias.strip().upper())

    def kir_allele_exists(self, gene: str, digits: str) -> bool:
        """True if an IPD-KIR allele of ``gene`` starts with the typed ``digits``.

        ``digits`` is at least three digits plus an optional suffix (``"001"``,
        ``"00302"``, ``"024N"``); a typed suffix must equal the allele's. A
        gene alias is resolved first, so ``KIR2DL5`` covers KIR2DL5A and
        KIR2DL5B, while ``KIR2DL5A`` covers only KIR2DL5A.
        """
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
        return self._group_lookup(self._kir3dl1, "KIR3DL1", allele_group, suffixed_groups=False)

    def kir2dl1_245(self, allele_group: str) -> str | None:
        """KIR2DL1 residue-245 call (``R245``, ``C245``, ``other`` or ``null``;
        DOMAIN.md §C.6) of an allele or allele group; ``None`` if unknown.

        ``"KIR2DL1*004"`` → ``"C245"``, ``"KIR2DL1*00302"`` → ``"R245"``,
        ``"KIR2DL1*0320101N"`` → ``"null"`` (group ``KIR2DL1*032N``).
        """
        return self._group_lookup(self._kir2dl1, "KIR2DL1", allele_group, suffixed_groups=True)

    # ------------------------------------------------------------- provenance
    def sha256_of(self, file: str) -> str:
        """SHA-256 of a table file (name relative to the tables directory)."""
        try:
            return self.sha256[file]
        except KeyError:
            raise ReferenceTableError(
                f"{file} is not listed in {MANIFEST_FILE}", raw=file
            ) from None

    def provenance(self) -> dict[str, Any]:
        """Releases, commits and file checksums for the run record (DOMAIN.md §A.1)."""
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


def load_reference_tables(directory: Path | None = None, *, verify: bool = True) -> ReferenceTables:
    """Load (and by default verify) the reference tables of ``directory``.

    ``directory`` defaults to :func:`default_tables_dir`. Results are cached per
    resolved directory. With ``verify=True`` every file listed in
    ``MANIFEST.toml`` is re-hashed; drift, a missing file or a malformed row
    raises :class:`~kirmatch.errors.ReferenceTableError` naming the file (and
    line). With ``verify=False`` the hashes are taken from the manifest
    unchecked, but the tables are still parsed and validated.
    """
    path = Path(directory) if directory is not None else default_tables_dir()
    return _load_cached(path.resolve(), bool(verify))
