#!/usr/bin/env python3
"""Build ``kir_allele_history.tsv``: KIR allele names of earlier IPD-KIR releases
that the pinned release (2.13.0) no longer reads, with their current name.

Offline, deterministic and stdlib-only, like ``build_tables.py`` (whose helpers
it reuses so that the header block and the MANIFEST entry have exactly the same
format)::

    python reference_tables/build/build_kir_history.py --shared ../shared \\
        --out reference_tables [--date YYYY-MM-DD] [--append-manifest]

It writes ``<out>/kir_allele_history.tsv`` and prints the ``[tables.kir_allele_history]``
entry for ``MANIFEST.toml``; with ``--append-manifest`` it also appends that
entry to ``<out>/MANIFEST.toml`` (or replaces an older copy of it). The date
defaults to the one recorded in ``<out>/MANIFEST.toml``, so a rebuild is
byte-identical. ``build_tables.py`` rewrites the whole manifest, so run this
script (with ``--append-manifest``) after it.

Inputs (relative to ``shared/``, checked against ``ipdkir/SHA256SUMS``):

* ``ipdkir/Allelelist_history.txt.gz``: every allele ID with its name in each
  release from 1.0.0 to 2.13.0;
* ``ipdkir/Deleted_alleles.txt``: withdrawn names and why;
* ``ipdkir/Allelelist.txt``: the 2.13.0 names, to decide which old names the
  release still reads.

One row per old name that no allele of 2.13.0 matches (a typed name is read as
a prefix of the release's names, DOMAIN.md §C.13, so ``KIR2DL1*001`` needs no
row: ``KIR2DL1*0010101`` starts with it). ``status`` is ``renamed`` (the allele
lives on under ``current``) or ``withdrawn`` (no current allele; ``note`` keeps
IPD's reason). Run-time use: :mod:`kirmatch.kir_history`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gzip
import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_tables as bt  # the sibling generator's helpers (same formats)

SCRIPT = "reference_tables/build/build_kir_history.py"
NAME = "kir_allele_history"
FILE = "kir_allele_history.tsv"
COLUMNS = ("name", "current", "allele_id", "status", "last_release", "source", "note")
HISTORY = "ipdkir/Allelelist_history.txt.gz"
DELETED = "ipdkir/Deleted_alleles.txt"
ORIGIN = (HISTORY, DELETED, bt.KIR_ALLELELIST)
SOURCE = (
    "IPD-KIR allele history (Allelelist_history.txt) and withdrawn alleles "
    "(Deleted_alleles.txt): names of earlier releases that IPD-KIR 2.13.0 does not read, "
    "with their 2.13.0 name (renamed) or none (withdrawn)"
)


def _kir(name: str) -> str:
    """History cells of 2.12.0 and 2.13.0 drop the ``KIR`` prefix; put it back."""
    return name if name.startswith("KIR") else f"KIR{name}"


def _release(column: str) -> str:
    """History column label to release: ``2130`` → ``2.13.0``, ``290`` → ``2.9.0``."""
    if not re.fullmatch(r"\d{3,4}", column):
        raise bt.BuildError(f"{HISTORY}: unexpected release column {column!r}")
    return f"{column[0]}.{column[1:-1]}.{column[-1]}"


def _split(name: str, where: str) -> tuple[str, str, str]:
    match = bt.KIR_ALLELE_RE.match(name)
    if not match:
        raise bt.BuildError(f"{where}: {name!r} is not a KIR allele name")
    return match["gene"], match["digits"], match["suffix"]


def _ipd_lines(path: Path, opener=open) -> list[str]:
    """Data lines of an IPD file; checks ``# version:`` is the pinned release."""
    version = None
    lines = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\r\n")
            if line.startswith("# version:"):
                version = line.partition(":")[2].strip()
            if line.strip():
                lines.append(line)
    if version != bt.KIR_RELEASE_LABEL:
        raise bt.BuildError(f"{path}: '# version:' is {version!r}, expected "
                            f"{bt.KIR_RELEASE_LABEL!r}")
    return lines


def read_history(path: Path) -> tuple[list[str], list[list[str]]]:
    """Release labels (newest first) and rows ``[KIR_ID, name per release…]``."""
    lines = [ln for ln in _ipd_lines(path, gzip.open) if not ln.startswith("#")]
    rows = list(csv.reader(lines))
    header = rows[0]
    if header[0] != "KIR_ID" or header[1] != "2130":
        raise bt.BuildError(f"{path}: expected header 'KIR_ID,2130,…', got {header[:3]}")
    for row in rows[1:]:
        if len(row) != len(header):
            raise bt.BuildError(f"{path}: row {row[:2]} has {len(row)} cells, "
                                f"expected {len(header)}")
    return [_release(c) for c in header[1:]], rows[1:]


def read_deleted(path: Path) -> list[tuple[str, str, str]]:
    """``(AlleleID, Allele, Description)`` of the withdrawn alleles.

    The file has two sections (``# Deleted Alleles``, ``# Alleles With Suffix
    Changes``); the second is empty in 2.13.0 and any row there stops the build
    (its meaning would need a rule here).
    """
    out: list[tuple[str, str, str]] = []
    section = None
    for line in _ipd_lines(path):
        if line.startswith("#"):
            title = line[1:].strip()
            if title in ("Deleted Alleles", "Alleles With Suffix Changes"):
                section = title
            continue
        if line == "AlleleID,Allele,Description":
            continue
        if section != "Deleted Alleles":
            raise bt.BuildError(f"{path}: row {line!r} in section {section!r} is not handled")
        allele_id, allele, description = line.split(",", 2)
        out.append((allele_id, _kir(allele), description))
    return out


class Release:
    """The pinned release's names, to test whether it reads a typed name."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)
        self.prefixes: set[tuple[str, str, str]] = set()
        for name in names:
            gene, digits, suffix = _split(name, bt.KIR_ALLELELIST)
            for k in range(1, len(digits) + 1):
                self.prefixes.add((gene, digits[:k], ""))
                self.prefixes.add((gene, digits[:k], suffix))

    def reads(self, name: str) -> bool:
        """True if some 2.13.0 allele starts with ``name``'s digits (same suffix)."""
        return _split(name, "typed name") in self.prefixes


def build_rows(history: tuple[list[str], list[list[str]]],
               deleted: list[tuple[str, str, str]], release: Release) -> list[list[str]]:
    releases, rows = history
    reasons = {allele_id: description for allele_id, _, description in deleted}
    out: dict[str, list[str]] = {}
    for row in rows:
        allele_id, names = row[0], row[1:]
        current = None if names[0] == "NA" else _kir(names[0])
        if current is not None and current not in release.names:
            raise bt.BuildError(f"{HISTORY}: {allele_id} is {current} in 2.13.0 but "
                                f"{bt.KIR_ALLELELIST} does not list it")
        for label, cell in zip(releases, names, strict=True):  # newest first: last use
            if cell == "NA":
                continue
            old = _kir(cell)
            if old == current or old in out or release.reads(old):
                continue
            if current is not None and _split(old, HISTORY)[0] != _split(current, HISTORY)[0]:
                raise bt.BuildError(f"{HISTORY}: {allele_id} moved from {old} to another "
                                    f"gene ({current}); not handled")
            out[old] = [old, current or "", allele_id,
                        "renamed" if current else "withdrawn", label, "Allelelist_history.txt",
                        reasons.get(allele_id, "")]
    for allele_id, name, description in deleted:
        if name in out:
            out[name][6] = out[name][6] or description
        elif not release.reads(name):
            if "renamed" in description.lower():
                raise bt.BuildError(f"{DELETED}: {name} was renamed ({description}) but "
                                    f"{HISTORY} does not record the new name")
            out[name] = [name, "", allele_id, "withdrawn", "", "Deleted_alleles.txt",
                         description]
    return [out[k] for k in sorted(out, key=bt.kir_sort_key)]


def manifest_entry(rendered: bytes, rows: int, source_sha256: dict[str, str],
                   retrieved: str, generated_by: str) -> str:
    """The ``[tables.kir_allele_history]`` block, in build_tables.py's TOML format."""
    return bt.toml_table(f"tables.{NAME}", {
        "file": FILE,
        "kind": "table",
        "sha256": hashlib.sha256(rendered).hexdigest(),
        "rows": rows,
        "columns": list(COLUMNS),
        "schema_version": bt.SCHEMA_VERSION,
        "source": SOURCE,
        "source_release": bt.KIR_RELEASE_LABEL,
        "source_url": bt.KIR_URL,
        "source_sha256": source_sha256,
        "retrieved": retrieved,
        "generated_by": generated_by,
        "license": bt.KIR_LICENSE,
    })


def append_manifest(manifest: Path, entry: str) -> None:
    """Append ``entry`` to ``manifest``, replacing an older copy of the same table."""
    text = manifest.read_text(encoding="utf-8")
    block = re.compile(rf"\n?\[tables\.{NAME}\]\n(?:[^\[\n][^\n]*\n)*")
    text = block.sub("", text)
    manifest.write_text(text.rstrip("\n") + "\n\n" + entry, encoding="utf-8")


def build(shared: Path, out: Path, date: str) -> str:
    """Write the table into ``out``; return its MANIFEST entry."""
    generated_by = f"{SCRIPT} --shared <shared> --out <out> --date {date}"
    checksums = bt.read_checksums(shared, "ipdkir")
    hashes = bt.source_hashes(shared, ORIGIN, checksums)
    release = Release([name for _, name in bt.read_ipd_csv(shared / bt.KIR_ALLELELIST,
                                                            bt.KIR_RELEASE_LABEL)])
    rows = build_rows(read_history(shared / HISTORY), read_deleted(shared / DELETED), release)
    spec = bt.TableSpec(NAME, FILE, bt.KIR_RELEASE_LABEL, list(ORIGIN), bt.KIR_LICENSE,
                        COLUMNS, rows, SOURCE, bt.KIR_URL,
                        bt.commit_date(shared, "ipdkir", bt.KIR_COMMIT))
    rendered = bt.render_table(spec, date, generated_by)
    out.mkdir(parents=True, exist_ok=True)
    (out / FILE).write_bytes(rendered)
    return manifest_entry(rendered, len(rows), hashes, spec.retrieved, generated_by)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", required=True, type=Path,
                        help="folder holding ipdkir/ (the read-only IPD-KIR copy)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (reference_tables)")
    parser.add_argument("--date", help="date for the header (YYYY-MM-DD); default: the date in "
                        "<out>/MANIFEST.toml, else today")
    parser.add_argument("--append-manifest", action="store_true",
                        help="also append the entry to <out>/MANIFEST.toml (replacing an "
                        "older copy)")
    args = parser.parse_args(argv)
    try:
        date = args.date or bt.read_existing_date(args.out) or _dt.date.today().isoformat()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            raise bt.BuildError(f"--date must be YYYY-MM-DD, got {date!r}")
        _dt.date.fromisoformat(date)
        if not (args.shared / "ipdkir").is_dir():
            raise bt.BuildError(f"{args.shared / 'ipdkir'} not found (pass --shared <path>)")
        entry = build(args.shared, args.out, date)
        if args.append_manifest:
            append_manifest(args.out / "MANIFEST.toml", entry)
    except (bt.BuildError, OSError, ValueError) as exc:
        print(f"build_kir_history.py: error: {exc}", file=sys.stderr)
        return 1
    print(entry, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
