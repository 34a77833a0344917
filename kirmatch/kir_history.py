"""IPD-KIR allele history: names of earlier releases that the pinned release no
longer reads (DOMAIN.md §A.3 item 6, §C.13 "Pinning matters").

A KIR allele name is read against IPD-KIR 2.13.0 first. Only a name that release
does not read is looked up here, in ``reference_tables/kir_allele_history.tsv``
(derived offline by ``reference_tables/build/build_kir_history.py`` from
``Allelelist_history.txt`` and ``Deleted_alleles.txt``; listed with its SHA-256
in ``MANIFEST.toml`` and verified again when read):

* ``renamed``: the allele lives on under another 2.13.0 name, e.g.
  ``KIR2DP1*005`` → ``KIR2DP1*0020110`` (renamed November 2018);
* ``withdrawn``: no 2.13.0 allele carries it, e.g. ``KIR3DL1*003`` (March 2004).

A name in neither the release nor this table stays an ``unknown_allele`` error:
a typo must not become a quiet unknown.

>>> from kirmatch.tables import load_reference_tables
>>> history = load_kir_history(load_reference_tables())
>>> [(e.name, e.current) for e in history.lookup(("KIR2DP1",), "005", "")]
[('KIR2DP1*005', 'KIR2DP1*0020110')]
>>> history.lookup(("KIR3DL1",), "003", "")[0].status
'withdrawn'
>>> history.lookup(("KIR2DL1",), "999", "")
()
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from kirmatch.errors import ReferenceTableError
from kirmatch.tables import MANIFEST_FILE, ReferenceTables, _parse_tsv, _read_bytes

__all__ = ["HISTORY_TABLE", "KIRAlleleHistory", "KIRHistoryEntry", "load_kir_history"]

#: The MANIFEST name of the history table.
HISTORY_TABLE = "kir_allele_history"
_COLUMNS = ("name", "current", "allele_id", "status", "last_release", "source", "note")
_NAME = re.compile(r"^(KIR[0-9][A-Z0-9]+)\*(\d{3,})([A-Z]?)$")


@dataclass(frozen=True, slots=True)
class KIRHistoryEntry:
    """One old name: its 2.13.0 name (``current``, ``None`` when withdrawn)."""

    name: str
    current: str | None
    allele_id: str
    status: str
    last_release: str
    note: str

    def __str__(self) -> str:
        return self.name


class KIRAlleleHistory:
    """The old names, searchable by IPD gene and typed digits (see :func:`lookup`)."""

    def __init__(self, entries: tuple[KIRHistoryEntry, ...] = (), file: str = "") -> None:
        self.entries = entries
        self.file = file
        self._by_gene: dict[str, list[tuple[str, str, KIRHistoryEntry]]] = {}
        for e in entries:
            m = _NAME.match(e.name)
            assert m is not None  # checked when read
            self._by_gene.setdefault(m.group(1), []).append((m.group(2), m.group(3), e))

    def lookup(self, ipd_genes: tuple[str, ...], digits: str,
               suffix: str) -> tuple[KIRHistoryEntry, ...]:
        """Old names of ``ipd_genes`` that start with the typed ``digits``.

        A typed name is a prefix of the names it means (DOMAIN.md §C.13), so
        ``("KIR2DP1",), "005"`` finds ``KIR2DP1*005``; a typed ``suffix``
        (``N``, ``Q``) must equal the old name's.
        """
        hits = []
        for gene in ipd_genes:
            for d, s, entry in self._by_gene.get(gene, ()):
                if d.startswith(digits) and (not suffix or s == suffix):
                    hits.append(entry)
        return tuple(hits)

    def __len__(self) -> int:
        return len(self.entries)


@functools.lru_cache(maxsize=8)
def load_kir_history(tables: ReferenceTables) -> KIRAlleleHistory:
    """The history table listed in ``tables``' MANIFEST, checksum-verified.

    A MANIFEST without the table (reference tables built before it existed)
    gives an empty history: renamed names are then ``unknown_allele`` errors,
    as before, never silently accepted.

    Raises
    ------
    ReferenceTableError
        The file is missing, fails its MANIFEST SHA-256, or has a malformed
        row (the message names the file and line).
    """
    entry = tables.manifest["tables"].get(HISTORY_TABLE)
    if entry is None:
        return KIRAlleleHistory()
    file = entry["file"]
    data = _read_bytes(tables.directory, file)
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ReferenceTableError(
            f"reference table {file} fails its checksum: expected sha256 {entry['sha256']} "
            f"({MANIFEST_FILE}), actual {digest}", raw=file)
    rows = _parse_tsv(file, data, entry, _COLUMNS)
    entries = []
    for i, row in enumerate(rows.rows):
        name, current, allele_id, status, last_release, _source, note = row
        m = _NAME.match(name)
        if m is None:
            raise rows.error(i, f"{name!r} is not a KIR allele name")
        if status not in ("renamed", "withdrawn") or (status == "renamed") != bool(current):
            raise rows.error(i, f"status {status!r} does not fit current name {current!r}")
        if current:
            c = _NAME.match(current)
            if c is None or c.group(1) != m.group(1) or not tables.kir_allele_exists(
                    c.group(1), c.group(2) + c.group(3)):
                raise rows.error(i, f"current name {current!r} is not a {m.group(1)} allele "
                                 f"of IPD-KIR {tables.kir_release}")
        entries.append(KIRHistoryEntry(name, current or None, allele_id, status, last_release,
                                       note))
    return KIRAlleleHistory(tuple(entries), file)
