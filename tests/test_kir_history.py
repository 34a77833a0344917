"""The IPD-KIR allele-history table (``reference_tables/kir_allele_history.tsv``),
its generator (``reference_tables/build/build_kir_history.py``) and its loader
(``kirmatch.kir_history``).

Facts are checked against the pinned IPD-KIR 2.13.0 files themselves
(``../shared/ipdkir/Allelelist_history.txt.gz`` and ``Deleted_alleles.txt``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kirmatch.tables as kt
from kirmatch.errors import ReferenceTableError, UnknownAlleleError
from kirmatch.kir import parse_kir_value
from kirmatch.kir_history import HISTORY_TABLE, load_kir_history

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SOURCE_TABLES = Path(__file__).resolve().parents[1] / "reference_tables"
SCRIPT = SOURCE_TABLES / "build" / "build_kir_history.py"


@pytest.fixture(scope="module")
def tables_dir() -> Path:
    return kt.default_tables_dir()


def _copy_tables(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return dst


def _history_rows(shared: Path) -> dict[str, list[str]]:
    with gzip.open(shared / "ipdkir" / "Allelelist_history.txt.gz", "rt",
                   encoding="utf-8") as fh:
        lines = [ln for ln in fh if not ln.startswith("#")]
    return {row[0]: row for row in csv.reader(lines)}


def _kir(name: str) -> str:
    return name if name.startswith("KIR") else f"KIR{name}"


def test_manifest_lists_the_table(tables_dir: Path) -> None:
    manifest = tomllib.loads((tables_dir / "MANIFEST.toml").read_text(encoding="utf-8"))
    entry = manifest["tables"][HISTORY_TABLE]
    assert entry["file"] == "kir_allele_history.tsv"
    assert entry["sha256"] == hashlib.sha256(
        (tables_dir / entry["file"]).read_bytes()).hexdigest()
    assert set(entry["source_sha256"]) == {"ipdkir/Allelelist_history.txt.gz",
                                           "ipdkir/Deleted_alleles.txt",
                                           "ipdkir/Allelelist.txt"}
    assert entry["generated_by"].startswith(
        "reference_tables/build/build_kir_history.py --shared <shared> --out <out>")


@pytest.mark.parametrize(("name", "current", "allele_id"), [
    ("KIR2DP1*005", "KIR2DP1*0020110", "KIR00474"),  # renamed November 2018
    ("KIR2DP1*006", "KIR2DP1*00108", "KIR00475"),  # renamed November 2023
    ("KIR2DS1*007", "KIR2DS1*00502", "KIR00256"),  # renamed August 2009
    ("KIR3DL3*024", "KIR3DL3*02102", "KIR00215"),
    ("KIR2DL1*026N", "KIR2DL1*026", "KIR00677"),  # no longer null
])
@pytest.mark.shared
def test_renamed_entries_match_the_ipd_history(tables, shared_dir: Path, name: str,
                                               current: str, allele_id: str) -> None:
    (entry,) = [e for e in load_kir_history(tables).entries if e.name == name]
    assert (entry.current, entry.allele_id, entry.status) == (current, allele_id, "renamed")
    raw = _history_rows(shared_dir)[allele_id]
    assert _kir(raw[1]) == current  # the 2.13.0 column
    assert name in {_kir(c) for c in raw[2:]}  # an earlier release used the old name


@pytest.mark.shared
def test_every_entry_is_backed_by_the_ipd_files(tables, shared_dir: Path) -> None:
    history = _history_rows(shared_dir)
    deleted = (shared_dir / "ipdkir" / "Deleted_alleles.txt").read_text(encoding="utf-8")
    current = {_kir(r[1]) for r in history.values() if r[1] != "NA"}
    for e in load_kir_history(tables).entries:
        assert e.name not in current  # 2.13.0 does not use the old name
        if e.allele_id in history:
            assert e.name in {_kir(c) for c in history[e.allele_id][1:]}
            assert _kir(history[e.allele_id][1]) == (e.current or "KIRNA")
        else:
            assert e.status == "withdrawn" and f",{e.name}," in deleted


@pytest.mark.shared
def test_rebuild_is_byte_identical(shared_dir: Path, tmp_path: Path, tables_dir: Path) -> None:
    reference = SOURCE_TABLES if (SOURCE_TABLES / "MANIFEST.toml").is_file() else tables_dir
    out = tmp_path / "reference_tables"
    out.mkdir()
    shutil.copy2(reference / "MANIFEST.toml", out / "MANIFEST.toml")  # for the date
    proc = subprocess.run([sys.executable, str(SCRIPT), "--shared", str(shared_dir),
                           "--out", str(out)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert (out / "kir_allele_history.tsv").read_bytes() == \
        (reference / "kir_allele_history.tsv").read_bytes()
    # The printed entry is the one in MANIFEST.toml.
    printed = tomllib.loads(proc.stdout)["tables"][HISTORY_TABLE]
    manifest = tomllib.loads((reference / "MANIFEST.toml").read_text(encoding="utf-8"))
    assert printed == manifest["tables"][HISTORY_TABLE]
    # --append-manifest replaces its own entry: running it twice changes nothing.
    for _ in range(2):
        subprocess.run([sys.executable, str(SCRIPT), "--shared", str(shared_dir), "--out",
                        str(out), "--append-manifest"], capture_output=True, check=True)
    assert (out / "MANIFEST.toml").read_bytes() == (reference / "MANIFEST.toml").read_bytes()


def test_tampered_history_is_rejected(tables_dir: Path, tmp_path: Path) -> None:
    copy = _copy_tables(tables_dir, tmp_path / "t")
    path = copy / "kir_allele_history.tsv"
    path.write_bytes(path.read_bytes().replace(b"KIR2DP1*0020110", b"KIR2DP1*0010110"))
    with pytest.raises(ReferenceTableError, match=r"kir_allele_history\.tsv.*sha256"):
        kt.load_reference_tables(copy, verify=True)
    # Loaded without verification, the history loader still checks its bytes.
    with pytest.raises(ReferenceTableError, match=r"kir_allele_history\.tsv.*sha256"):
        load_kir_history(kt.load_reference_tables(copy, verify=False))


def test_bad_row_names_file_and_line(tables_dir: Path, tmp_path: Path) -> None:
    copy = _copy_tables(tables_dir, tmp_path / "t")
    path = copy / "kir_allele_history.tsv"
    data = path.read_bytes().replace(b"\trenamed\t", b"\twithdrawn\t", 1)
    path.write_bytes(data)
    manifest = copy / "MANIFEST.toml"
    text = manifest.read_text(encoding="utf-8")
    old = tomllib.loads(text)["tables"][HISTORY_TABLE]["sha256"]
    manifest.write_text(text.replace(old, hashlib.sha256(data).hexdigest()), encoding="utf-8")
    with pytest.raises(ReferenceTableError, match=r"kir_allele_history\.tsv, line 8"):
        load_kir_history(kt.load_reference_tables(copy))


def test_without_the_table_retired_names_stay_errors(tables_dir: Path, tmp_path: Path) -> None:
    """Reference tables built before the history existed: the old behaviour, never
    a silent acceptance."""
    copy = _copy_tables(tables_dir, tmp_path / "t")
    manifest = copy / "MANIFEST.toml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text[:text.index(f"\n[tables.{HISTORY_TABLE}]")] + "\n",
                        encoding="utf-8")
    (copy / "kir_allele_history.tsv").unlink()
    t = kt.load_reference_tables(copy)
    assert len(load_kir_history(t)) == 0
    with pytest.raises(UnknownAlleleError, match=r"KIR2DP1\*005"):
        parse_kir_value("2DP1", "005", t)


def test_doctests() -> None:
    import doctest

    import kirmatch.kir_history

    res = doctest.testmod(kirmatch.kir_history, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
