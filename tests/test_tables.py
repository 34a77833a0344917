"""Tests for the shipped reference tables and their loader (``kirmatch.tables``).

Facts come from DOMAIN.md §A.2 (rule 1), §C.1-§C.4, §C.6, §C.7 and §C.16; the
checksum, header and rebuild checks from STYLE.md §5 and §7. The tables are
read from the installed package (wheel layout); the byte-identical rebuild
needs ``../shared`` and is skipped cleanly without it.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kirmatch.tables as kt
from kirmatch.errors import ReferenceTableError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_TABLES = REPO_ROOT / "reference_tables"
HLA_V2_TABLES = ("hla_alleles", "hla_antigens", "hla_serology", "hla_b_leader", "hla_dpb1_tce")
TABLE_NAMES = ("hla_kir_ligands", "kir_genes", "kir_alleles", "kir2dl1_245", "kir3dl1_class",
               *HLA_V2_TABLES)


# --------------------------------------------------------------------------- helpers
def read_tsv(path: Path) -> tuple[dict[str, str], list[str], list[dict[str, str]]]:
    """Header block (stripped explicitly), columns, rows as dicts."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{path.name} must end with a newline"
    lines.pop()
    header = {}
    i = 0
    while lines[i].startswith("#"):
        key, _, value = lines[i][1:].partition(":")
        header[key.strip()] = value.strip()
        i += 1
    columns = lines[i].split("\t")
    rows = [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[i + 1 :]]
    return header, columns, rows


@pytest.fixture(scope="module")
def tables_dir() -> Path:
    return kt.default_tables_dir()


@pytest.fixture(scope="module")
def tables(tables_dir: Path) -> kt.ReferenceTables:
    return kt.load_reference_tables(tables_dir)


@pytest.fixture(scope="module")
def manifest(tables_dir: Path) -> dict:
    return tomllib.loads((tables_dir / "MANIFEST.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hla_rows(tables_dir: Path) -> list[dict[str, str]]:
    return read_tsv(tables_dir / "hla_kir_ligands.tsv")[2]


def build_script() -> Path:
    for base in (SOURCE_TABLES, kt.default_tables_dir()):
        script = base / "build" / "build_tables.py"
        if script.is_file():
            return script
    pytest.skip("reference_tables/build/build_tables.py not found")


# --------------------------------------------------------------------------- manifest
def test_manifest_meta(manifest: dict, tables: kt.ReferenceTables) -> None:
    meta = manifest["meta"]
    assert meta["schema_version"] == 1
    assert meta["rules"] == "kirmatch-rules-v2" == tables.rules
    assert meta["ipd_imgt_hla"] == "3.58.0" == tables.hla_release
    assert meta["ipd_imgt_hla_commit"] == "c17540e5f55011c51fd338f0167a106c27ec06bf"
    assert meta["ipd_kir"] == "2.13.0" == tables.kir_release
    assert meta["ipd_kir_commit"] == "ed2e1b401a512481f887df39f87422ea633a60b2"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["generated"])
    assert set(TABLE_NAMES) <= set(manifest["tables"])


def test_every_listed_file_rehashes(manifest: dict, tables_dir: Path, tables) -> None:
    assert manifest["tables"], "MANIFEST lists no tables"
    for name, entry in manifest["tables"].items():
        data = (tables_dir / entry["file"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert digest == entry["sha256"], f"{entry['file']} drifted from MANIFEST ({name})"
        assert tables.sha256_of(entry["file"]) == digest
        for key in ("schema_version", "source", "source_release", "source_url", "source_sha256",
                    "retrieved", "generated_by", "license"):
            assert key in entry, f"[tables.{name}] lacks {key}"
        assert "<shared>" in entry["generated_by"] or entry.get("kind") == "policy"


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_table_header_rows_and_columns(name: str, manifest: dict, tables_dir: Path) -> None:
    entry = manifest["tables"][name]
    path = tables_dir / entry["file"]
    raw = path.read_bytes()
    assert b"\r" not in raw
    header, columns, rows = read_tsv(path)
    assert header["file"] == entry["file"]
    assert header["version"] == entry["source_release"]
    assert header["date"] == manifest["meta"]["generated"]
    assert header["generated-by"].startswith(
        "reference_tables/build/build_tables.py --shared <shared> --out <out>"
    )
    assert "CC BY-ND" in header["license"]
    assert columns == entry["columns"]
    assert len(rows) == entry["rows"]
    for rel in header["origin"].split(", "):
        assert rel in entry["source_sha256"]
    if name == "kir3dl1_class":
        expected_release = "kirmatch rules v2"
    elif name.startswith("hla_"):
        expected_release = "IPD-IMGT/HLA 3.58.0"
    else:
        expected_release = "IPD-KIR 2.13.0"
    assert entry["source_release"] == expected_release
    # Per-table schema: the ligand table gained the `alignment` column (v2).
    assert entry["schema_version"] == kt.TABLE_SCHEMA_VERSIONS[name]
    assert tuple(columns) == kt.REQUIRED_COLUMNS[name]


def test_installed_tables_match_source_tree(manifest: dict, tables_dir: Path) -> None:
    """Packaging guard: the wheel ships the same bytes as reference_tables/."""
    if not (SOURCE_TABLES / "MANIFEST.toml").is_file():
        pytest.skip("no source tree next to the tests")
    if SOURCE_TABLES.resolve() == tables_dir.resolve():
        pytest.skip("running against the source tree itself")
    for entry in [*manifest["tables"].values(), {"file": "MANIFEST.toml"}]:
        assert (tables_dir / entry["file"]).read_bytes() == (
            SOURCE_TABLES / entry["file"]
        ).read_bytes(), f"installed {entry['file']} differs from the source tree (reinstall?)"


@pytest.mark.shared
def test_rebuild_is_byte_identical(shared_dir: Path, tmp_path: Path, manifest: dict,
                                   tables_dir: Path) -> None:
    """Rebuild from ../shared with the manifest's date (taken from the copied
    MANIFEST, i.e. the default for --date) and compare every byte."""
    reference = SOURCE_TABLES if (SOURCE_TABLES / "MANIFEST.toml").is_file() else tables_dir
    out = tmp_path / "reference_tables"
    out.mkdir()
    shutil.copy2(reference / "MANIFEST.toml", out / "MANIFEST.toml")
    if (reference / "policies").is_dir():
        shutil.copytree(reference / "policies", out / "policies")
    proc = subprocess.run(
        [sys.executable, str(build_script()), "--shared", str(shared_dir), "--out", str(out),
         "--quiet"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    files = [e["file"] for e in manifest["tables"].values()] + ["MANIFEST.toml"]
    for file in files:
        assert (out / file).read_bytes() == (reference / file).read_bytes(), f"{file} differs"
    rebuilt = tomllib.loads((out / "MANIFEST.toml").read_text(encoding="utf-8"))
    assert rebuilt["meta"]["generated"] == manifest["meta"]["generated"]


@pytest.mark.shared
def test_source_sha256_matches_shared(shared_dir: Path, manifest: dict) -> None:
    for name, entry in manifest["tables"].items():
        for rel, digest in entry["source_sha256"].items():
            actual = hashlib.sha256((shared_dir / rel).read_bytes()).hexdigest()
            assert actual == digest, f"{rel} ({name})"


# --------------------------------------------------------------------------- HLA ligands
LIGAND_FACTS = [
    # (protein, ligand, b_c1 or None for "not asserted"), DOMAIN.md §C.1, §C.3, §C.4, §C.16
    *[(p, "C2", False) for p in ("C*03:07", "C*07:07", "C*12:04", "C*16:02", "C*04:01",
                                 "C*05:01", "C*06:02", "C*04:10", "C*05:50", "C*02:02",
                                 "C*15:02", "C*01:14", "C*17:01", "C*18:01")],
    *[(p, "C1", False) for p in ("C*07:01", "C*07:02", "C*03:04", "C*01:02", "C*03:02",
                                 "C*08:01", "C*12:02", "C*14:02", "C*16:01")],
    *[(p, "Bw4-80T", False) for p in ("B*44:02", "B*13:02", "B*27:05", "B*08:02", "B*13:01",
                                      "B*37:01", "B*38:02", "B*44:03", "B*47:01")],
    *[(p, "Bw4-80I", False) for p in ("B*57:01", "B*51:01", "B*27:02", "B*38:01", "B*07:36",
                                      "B*15:13", "B*15:16", "B*15:17", "B*49:01", "B*52:01",
                                      "B*53:01", "B*58:01")],
    *[(p, "Bw6", False) for p in ("B*07:02", "B*08:01", "B*35:01", "B*39:15", "B*46:72",
                                  "B*15:01", "B*18:01", "B*40:01", "B*44:09", "B*55:01")],
    ("B*46:01", "Bw6", True),
    ("B*73:01", "Bw6", True),
    *[(p, "unclassified", False) for p in ("B*41:05", "B*42:22", "B*08:29", "B*37:14",
                                           "B*47:03", "B*45:16", "B*49:21", "B*57:08")],
    *[(p, "Bw4-80I", False) for p in ("A*24:02", "A*23:01", "A*32:01", "A*25:01", "A*24:03")],
    *[(p, "unclassified", False) for p in ("A*24:04", "A*02:01", "A*01:01", "A*03:01", "A*11:01",
                                           "A*23:27", "A*26:01", "A*68:01")],
]


@pytest.mark.parametrize(("protein", "ligand", "b_c1"), LIGAND_FACTS,
                         ids=[f"{p}->{lig}{'+B-C1' if b else ''}" for p, lig, b in LIGAND_FACTS])
def test_ligand_fact(tables: kt.ReferenceTables, protein: str, ligand: str, b_c1: bool) -> None:
    rep = tables.protein_call(protein)
    assert rep is not None, f"{protein} has no expressed allele"
    assert rep.ligand == ligand
    assert rep.b_c1 is b_c1
    assert rep.expressed and rep.protein == protein
    for rec in tables.hla_records_for_protein(protein):
        assert rec.ligand == (ligand if rec.expressed else "none")


@pytest.mark.parametrize(("protein", "motif"), [
    ("A*02:01", "DLGTLRG"), ("A*01:01", "NLGTLRG"), ("B*46:01", "SLRNLRG"),
    ("B*73:01", "GLRNLRG"), ("B*27:05", "DLRTLLR"), ("C*01:02", "SLRNLRG"),
])
def test_residues_77_83(tables: kt.ReferenceTables, protein: str, motif: str) -> None:
    """The HLA-A Thr80 trap (§C.1): Thr80 without Leu82-Arg83 is not Bw4."""
    rep = tables.protein_call(protein)
    assert rep is not None and rep.residues is not None
    assert rep.residues[1:] == motif


def test_c_pair_cross_check(tables: kt.ReferenceTables) -> None:
    """DOMAIN.md §C.16: (C*02:03, C*07:59) -> C1/C2."""
    calls = {tables.protein_call(p).ligand for p in ("C*02:03", "C*07:59")}
    assert calls == {"C1", "C2"}


@pytest.mark.parametrize("protein", ["A*03:01", "A*11:01", "A*03:02", "A*11:02"])
def test_a3a11_flag(tables: kt.ReferenceTables, protein: str) -> None:
    assert tables.protein_call(protein).a3a11 is True


def test_flags_follow_their_rules(hla_rows: list[dict[str, str]]) -> None:
    for row in hla_rows:
        expressed = row["expressed"] == "true"
        assert expressed == (row["suffix"] != "N")
        first = row["allele"].split("*")[1].split(":")[0]
        assert (row["a3a11"] == "true") == (
            expressed and row["locus"] == "A" and first in ("03", "11")
        ), row["allele"]
        if row["b_c1"] == "true":
            assert row["locus"] == "B" and expressed, row["allele"]
        if not expressed:
            assert (row["ligand"], row["b_c1"], row["a3a11"]) == ("none", "false", "false")
        fields = row["allele"].rstrip("NLSCAQ").split(":")
        assert row["protein"] == f"{fields[0]}:{fields[1]}"


def _call(locus: str, residues: str) -> tuple[str, bool]:
    """Rule 1 re-implemented independently from residues 76-83."""
    r = dict(zip(range(76, 84), residues, strict=True))
    if locus == "C":
        return {"N": "C1", "K": "C2"}.get(r[80], "unclassified"), False
    if r[82] == "L" and r[83] == "R":
        lig = {"I": "Bw4-80I", "T": "Bw4-80T"}.get(r[80], "unclassified")
    elif (r[80], r[82], r[83]) == ("N", "R", "G"):
        lig = "Bw6"
    else:
        lig = "unclassified"
    return lig, locus == "B" and r[76] == "V" and r[80] == "N"


def test_expressed_entries_of_a_protein_never_disagree(hla_rows: list[dict[str, str]]) -> None:
    """Rule 1.5, re-checked from the table: every expressed allele with its own
    residues gives its protein's call, and all expressed alleles of a protein
    carry one ligand and one B-C1 flag."""
    by_protein: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    checked = 0
    for row in hla_rows:
        if row["expressed"] != "true":
            continue
        by_protein[row["protein"]].add((row["ligand"], row["b_c1"]))
        if row["residues_76_83"]:
            lig, bc1 = _call(row["locus"], row["residues_76_83"])
            assert (lig, "true" if bc1 else "false") == (row["ligand"], row["b_c1"]), row["allele"]
            checked += 1
    disagree = {p: v for p, v in by_protein.items() if len(v) > 1}
    assert not disagree
    assert checked > 25000  # non-vacuous


def test_coverage_and_reasons(hla_rows: list[dict[str, str]]) -> None:
    """Issue "100 % ligand coverage": every expressed allele has a call; the
    `alignment` column says how the allele's own entry was placed."""
    per_locus = collections.Counter()
    called = collections.Counter()
    for row in hla_rows:
        assert row["ligand"] in {"C1", "C2", "Bw4-80I", "Bw4-80T", "Bw6", "unclassified", "none",
                                 ""}
        assert row["residue_note"] in {"", "no_sequence", "not_aligned", "no_sequence_coverage"}
        assert bool(row["residues_76_83"]) != bool(row["residue_note"]), row["allele"]
        assert row["alignment"] in {"ungapped", "gapped", ""}
        assert (row["alignment"] == "") == (row["residue_note"] in ("not_aligned", "no_sequence"))
        if row["alignment"] == "gapped":
            assert row["expressed"] == "true" and row["residues_76_83"], row["allele"]
        if row["ligand"] == "":
            assert row["note"] == "no_sequence_coverage", row["allele"]
            assert row["residue_note"], row["allele"]  # its own entry cannot be the reason
        else:
            assert row["note"] == "", row["allele"]
        if row["locus"] == "C" and row["ligand"] not in ("", "none"):
            assert row["ligand"] in ("C1", "C2", "unclassified")
        if row["locus"] in "AB":
            assert row["ligand"] not in ("C1", "C2")
        if row["expressed"] == "true":
            per_locus[row["locus"]] += 1
            called[row["locus"]] += row["ligand"] != ""
    assert set(per_locus) == {"A", "B", "C"}
    assert called == per_locus == {"A": 8027, "B": 9819, "C": 8185}


def test_allele_universe(hla_rows: list[dict[str, str]]) -> None:
    names = [row["allele"] for row in hla_rows]
    assert len(names) == len(set(names)) > 27000
    assert {row["locus"] for row in hla_rows} == {"A", "B", "C"}

    def key(name: str) -> tuple:
        m = re.match(r"([ABC])\*([\d:]+)([A-Z]?)$", name)
        return (m[1], tuple(int(f) for f in m[2].split(":")), m[3])

    assert names == sorted(names, key=key)
    # Six HLA-B nulls of the allele list have no protein sequence.
    no_seq = [r["allele"] for r in hla_rows if r["residue_note"] == "no_sequence"]
    assert no_seq and all(a.endswith("N") for a in no_seq)


def test_natural_order_example(hla_rows: list[dict[str, str]]) -> None:
    proteins = list(dict.fromkeys(r["protein"] for r in hla_rows if r["locus"] == "C"))
    assert proteins.index("C*07:02") < proteins.index("C*07:10") < proteins.index("C*07:100")


# --------------------------------------------------------------------------- HLA lookups
def test_hla_record_exact_names(tables: kt.ReferenceTables) -> None:
    null = tables.hla_record("A*01:01:01:02N")
    assert null is not None and not null.expressed and null.ligand == "none"
    assert null.protein == "A*01:01" and null.suffix == "N"
    assert tables.hla_record("A*01:01:01:01").ligand == "unclassified"
    assert tables.hla_record("HLA-A*01:01:01:01") == tables.hla_record("A*01:01:01:01")
    assert tables.hla_record("A*01:01:01:02") is None  # suffix is part of the name
    assert tables.hla_record("A*99:99") is None
    assert str(tables.hla_record("C*07:02:01:01")) == "C*07:02:01:01"


@pytest.mark.parametrize("name", ["C*07", "C*07:01", "C*07:01:01", "C*07:01:01:01",
                                  "A*01:01:01:02N", "B*15:01:01", "HLA-B*46", "C*07:1", "C*99"])
def test_prefix_lookup_matches_brute_force(tables: kt.ReferenceTables,
                                           hla_rows: list[dict[str, str]], name: str) -> None:
    base = re.sub(r"[A-Z]$", "", name.removeprefix("HLA-"))
    locus, fields = base.split("*")
    want = fields.split(":")
    expected = [
        r["allele"] for r in hla_rows
        if r["locus"] == locus
        and r["allele"].rstrip("NLSCAQ").split("*")[1].split(":")[: len(want)] == want
    ]
    got = [r.allele for r in tables.hla_records_with_prefix(name)]
    assert got == expected
    if name in ("C*07:1", "C*99"):
        assert got == []
    else:
        assert got


def test_prefix_field_boundary(tables: kt.ReferenceTables) -> None:
    got = {r.allele for r in tables.hla_records_with_prefix("C*07:01")}
    assert "C*07:01:01:01" in got
    assert all(a.startswith("C*07:01:") or a.rstrip("NLSCAQ") == "C*07:01" for a in got)
    assert not any(a.startswith("C*07:010") for a in got)
    assert tables.hla_records_with_prefix("not an allele") == ()


def test_protein_call_and_first_fields(tables: kt.ReferenceTables,
                                       hla_rows: list[dict[str, str]]) -> None:
    only_null = collections.defaultdict(set)
    for row in hla_rows:
        only_null[row["protein"]].add(row["expressed"])
    nulls = sorted(p for p, v in only_null.items() if v == {"false"})
    assert nulls
    assert tables.protein_call(nulls[0]) is None
    assert tables.protein_call("C*99:99") is None
    assert tables.protein_call("C*07:02:01:01") == tables.protein_call("C*07:02")
    assert {"01", "02", "03", "11", "23", "24", "25", "32"} <= tables.hla_first_fields("A")
    assert tables.hla_first_fields("HLA-B") == tables.hla_first_fields("B")
    assert "73" in tables.hla_first_fields("B") and "18" in tables.hla_first_fields("C")
    assert {"01", "04", "15", "16"} <= tables.hla_first_fields("DRB1")
    assert tables.hla_first_fields("KIR2DL1") == tables.hla_first_fields("XYZ") == frozenset()


# --------------------------------------------------------------------------- KIR
def test_canonical_genes(tables: kt.ReferenceTables) -> None:
    assert tables.kir_canonical_genes == (
        "KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL4", "KIR2DL5", "KIR2DS1", "KIR2DS2",
        "KIR2DS3", "KIR2DS4", "KIR2DS5", "KIR3DL1", "KIR3DL2", "KIR3DL3", "KIR3DS1",
        "KIR2DP1", "KIR3DP1",
    )


ALIASES = [
    ("KIR2DL1", "KIR2DL1", "inhibitory", ""), ("2dl1", "KIR2DL1", "inhibitory", ""),
    ("KIR2DL5A", "KIR2DL5", "inhibitory", "paralog"), ("2DL5B", "KIR2DL5", "inhibitory", "paralog"),
    ("kir2dl5", "KIR2DL5", "inhibitory", ""), ("2DS4N", "KIR2DS4", "activating", "deletion"),
    ("KIR2DS4DEL", "KIR2DS4", "activating", "deletion"),
    ("2DS4D", "KIR2DS4", "activating", "deletion"),
    ("2DS4FL", "KIR2DS4", "activating", "full_length"), ("3DS1", "KIR3DS1", "activating", ""),
    ("KIR3DL3", "KIR3DL3", "framework", ""), ("2DL4", "KIR2DL4", "framework", ""),
    ("KIR3DL2", "KIR3DL2", "framework", ""), ("2DP1", "KIR2DP1", "pseudogene", ""),
    (" KIR3DP1 ", "KIR3DP1", "pseudogene", ""),
]


@pytest.mark.parametrize(("alias", "gene", "kind", "variant"), ALIASES,
                         ids=[a[0].strip() for a in ALIASES])
def test_kir_alias(tables: kt.ReferenceTables, alias: str, gene: str, kind: str,
                   variant: str) -> None:
    info = tables.kir_gene(alias)
    assert info is not None
    assert (info.gene, info.kind, info.variant) == (gene, kind, variant)


def test_every_canonical_gene_has_long_and_short_alias(tables: kt.ReferenceTables) -> None:
    for gene in tables.kir_canonical_genes:
        assert tables.kir_gene(gene).gene == gene
        assert tables.kir_gene(gene[3:]).gene == gene
    for bad in ("KIR2DL23", "KIR9DL1", "", "2DL"):
        assert tables.kir_gene(bad) is None


@pytest.mark.parametrize(("gene", "digits", "exists"), [
    ("KIR2DL1", "003", True), ("KIR2DL1", "00302", True), ("KIR2DL1", "0010101", True),
    ("KIR3DL1", "004", True), ("KIR3DL1", "024N", True), ("KIR3DL1", "024", True),
    ("KIR3DL1", "1680101N", True), ("KIR2DL5", "001", True), ("KIR2DL5A", "001", True),
    ("KIR2DL5B", "002", True), ("2DL1", "004", True), ("KIR2DL1", "100Q", True),
    ("KIR2DL1", "999", False), ("KIR3DL1", "00499", False), ("KIR2DL1", "001N", False),
    ("KIR2DL1", "0", False), ("KIR9DL9", "001", False), ("KIR2DL1", "abc", False),
])
def test_kir_allele_exists(tables: kt.ReferenceTables, gene: str, digits: str,
                           exists: bool) -> None:
    assert tables.kir_allele_exists(gene, digits) is exists


def test_kir2dl5_alleles_keep_their_paralog(tables_dir: Path) -> None:
    rows = read_tsv(tables_dir / "kir_alleles.tsv")[2]
    assert len(rows) == 2219
    paralogs = {r["ipd_gene"] for r in rows if r["gene"] == "KIR2DL5"}
    assert paralogs == {"KIR2DL5A", "KIR2DL5B"}
    for r in rows:
        assert r["allele"].startswith(r["ipd_gene"] + "*")
        assert r["protein"] == r["allele"][: len(r["ipd_gene"]) + 4]


C245 = {
    "004", "006", "007", "011", "024", "029", "035", "039", "041", "042", "050", "051", "052",
    "054", "055", "056", "058", "070", "080", "081", "084", "092", "096", "104", "106", "116",
    "124", "100Q",
}
KIR2DL1_NULL = {"013N", "032N", "045N", "094N", "114N"}


def test_kir2dl1_245_table_matches_domain(tables_dir: Path) -> None:
    """DOMAIN.md §C.6, exactly: C245 groups, His245 in *037, five nulls, R245 otherwise."""
    rows = read_tsv(tables_dir / "kir2dl1_245.tsv")[2]
    calls = {r["allele_group"].split("*")[1]: r for r in rows}
    assert {g for g, r in calls.items() if r["call"] == "C245"} == C245
    assert {g for g, r in calls.items() if r["call"] == "other"} == {"037"}
    assert calls["037"]["residue_245"] == "H"
    assert {g for g, r in calls.items() if r["call"] == "null"} == KIR2DL1_NULL
    assert calls["026"]["call"] == "R245" and calls["026"]["residue_245"] == "R"
    assert all(r["residue_245"] == "R" for r in rows if r["call"] == "R245")
    assert len([r for r in rows if r["call"] == "R245"]) == len(rows) - len(C245) - 1 - 5 == 97
    assert sum(int(r["n_alleles"]) for r in rows) == 428


@pytest.mark.parametrize(("name", "call"), [
    ("KIR2DL1*004", "C245"), ("KIR2DL1*00403", "C245"), ("KIR2DL1*001", "R245"),
    ("KIR2DL1*0030201", "R245"), ("KIR2DL1*037", "other"), ("KIR2DL1*013N", "null"),
    ("KIR2DL1*0320101N", "null"), ("KIR2DL1*100Q", "C245"), ("KIR2DL1*026", "R245"),
    ("2DL1*124", "C245"), ("KIR2DL1*999", None), ("KIR3DL1*004", None),
])
def test_kir2dl1_245_lookup(tables: kt.ReferenceTables, name: str, call: str | None) -> None:
    assert tables.kir2dl1_245(name) == call


KIR3DL1_EXPECTED = {
    "KIR3DL1*001": "H", "KIR3DL1*002": "H", "KIR3DL1*008": "H", "KIR3DL1*009": "H",
    "KIR3DL1*015": "H", "KIR3DL1*020": "H", "KIR3DL1*005": "L", "KIR3DL1*007": "L",
    "KIR3DL1*004": "N", "KIR3DL1*019": "N", "KIR3DL1*053": "L", "KIR3DL1*054": "N",
    "KIR3DL1*024N": "N", "KIR3DL1*081N": "N", "KIR3DL1*094N": "N",
    "KIR3DL1*1680101N": "N", "KIR3DL1*1680102N": "N",
}


def test_kir3dl1_class_table_is_exactly_domain(tables_dir: Path) -> None:
    rows = read_tsv(tables_dir / "kir3dl1_class.tsv")[2]
    assert {r["allele_group"]: r["class"] for r in rows} == KIR3DL1_EXPECTED
    for r in rows:
        assert r["source"]
        if r["allele_group"].endswith("N") and r["allele_group"] != "KIR3DL1*004":
            assert r["source"] == "IPD-KIR nomenclature"
    sources = {r["allele_group"]: r["source"] for r in rows}
    assert "Boudreau" in sources["KIR3DL1*001"] and "Thomas" in sources["KIR3DL1*053"]
    assert not any("3DS1" in r["allele_group"] for r in rows)


@pytest.mark.parametrize(("name", "cls"), [
    *KIR3DL1_EXPECTED.items(), ("KIR3DL1*00101", "H"), ("KIR3DL1*0150222Q", "H"),
    ("KIR3DL1*024", "N"), ("3DL1*005", "L"), ("KIR3DL1*095", None), ("KIR3DL1*999", None),
    ("KIR3DS1*013", None), ("KIR3DL1*001N", None),
])
def test_kir3dl1_class_lookup(tables: kt.ReferenceTables, name: str, cls: str | None) -> None:
    assert tables.kir3dl1_class(name) == cls


# --------------------------------------------------------------------------- loader behaviour
def _copy_tables(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return dst


def test_tampered_table_is_rejected(tables_dir: Path, tmp_path: Path) -> None:
    copy = _copy_tables(tables_dir, tmp_path / "t")
    path = copy / "hla_kir_ligands.tsv"
    data = bytearray(path.read_bytes())
    i = data.index(b"\tC1\t")
    data[i + 2] = ord("2")  # C1 -> C2, one byte
    path.write_bytes(bytes(data))
    with pytest.raises(ReferenceTableError, match=r"hla_kir_ligands\.tsv.*expected sha256"):
        kt.load_reference_tables(copy, verify=True)


@pytest.mark.parametrize("file", ["kir2dl1_245.tsv", "hla_antigens.tsv"])
def test_missing_table_is_rejected(tables_dir: Path, tmp_path: Path, file: str) -> None:
    """An eagerly and a lazily loaded table: both are missed at load time."""
    copy = _copy_tables(tables_dir, tmp_path / "t")
    (copy / file).unlink()
    with pytest.raises(ReferenceTableError, match=re.escape(file) + ".*missing"):
        kt.load_reference_tables(copy)


def test_malformed_row_names_file_and_line(tables_dir: Path, tmp_path: Path) -> None:
    copy = _copy_tables(tables_dir, tmp_path / "t")
    path = copy / "kir3dl1_class.tsv"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[9] = lines[9].rsplit("\t", 1)[0]  # drop the last cell of the 3rd data row
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ReferenceTableError, match=r"kir3dl1_class\.tsv, line 10"):
        kt.load_reference_tables(copy, verify=False)
    with pytest.raises(ReferenceTableError, match=r"kir3dl1_class\.tsv"):
        kt.load_reference_tables(copy, verify=True)


@pytest.mark.parametrize(("file", "col", "value", "use", "match"), [
    ("hla_kir_ligands.tsv", 4, "yes", None, r"hla_kir_ligands\.tsv, line 8"),
    # A lazily loaded table is checked when first used.
    ("hla_alleles.tsv", 4, "yes", lambda t: t.hla_allele("A*01:01:01:01"),
     r"hla_alleles\.tsv, line 8: expressed 'yes' not allowed"),
], ids=["eager", "lazy"])
def test_bad_value_names_file_and_line(tables_dir: Path, tmp_path: Path, file: str, col: int,
                                       value: str, use, match: str) -> None:
    copy = _copy_tables(tables_dir, tmp_path / "t")
    path = copy / file
    lines = path.read_text(encoding="utf-8").split("\n")
    cells = lines[7].split("\t")
    cells[col] = value
    lines[7] = "\t".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ReferenceTableError, match=match):
        tables = kt.load_reference_tables(copy, verify=False)
        if use is not None:
            use(tables)


def test_version_header_must_match_manifest(tables_dir: Path, tmp_path: Path) -> None:
    copy = _copy_tables(tables_dir, tmp_path / "t")
    path = copy / "kir_genes.tsv"
    path.write_text(path.read_text(encoding="utf-8").replace("IPD-KIR 2.13.0", "IPD-KIR 2.14.0"),
                    encoding="utf-8")
    with pytest.raises(ReferenceTableError, match=r"kir_genes\.tsv.*2\.14\.0"):
        kt.load_reference_tables(copy, verify=False)


def test_unknown_file_checksum(tables: kt.ReferenceTables) -> None:
    with pytest.raises(ReferenceTableError, match="nope.tsv"):
        tables.sha256_of("nope.tsv")


def test_cache_and_env_override(tables_dir: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert kt.load_reference_tables(tables_dir) is kt.load_reference_tables(tables_dir)
    copy = _copy_tables(tables_dir, tmp_path / "t")
    monkeypatch.setenv(kt.TABLES_DIR_ENV, str(copy))
    assert kt.default_tables_dir() == copy
    loaded = kt.load_reference_tables()
    assert loaded.directory == copy.resolve()
    assert loaded.sha256 == kt.load_reference_tables(tables_dir).sha256


def test_default_dir_is_packaged_or_source() -> None:
    if kt.TABLES_DIR_ENV in os.environ:
        pytest.skip(f"{kt.TABLES_DIR_ENV} is set")
    path = kt.default_tables_dir()
    assert (path / "MANIFEST.toml").is_file()
    assert path.name == "reference_tables"


def test_load_is_fast(tables_dir: Path, tmp_path: Path) -> None:
    """Budget 150 ms on a quiet machine; asserted loosely to avoid CI flakes."""
    copy = _copy_tables(tables_dir, tmp_path / "t")
    start = time.perf_counter()
    kt.load_reference_tables(copy)
    assert time.perf_counter() - start < 2.0


def test_provenance(tables: kt.ReferenceTables) -> None:
    prov = tables.provenance()
    assert prov["ipd_imgt_hla"] == "3.58.0" and prov["ipd_kir"] == "2.13.0"
    assert set(prov["reference_tables"]) >= {f"{n}.tsv" for n in TABLE_NAMES}


def test_checksums_listed_in_file_order_whatever_the_load_order() -> None:
    """The run record's checksums do not depend on which table a run happened to
    load first (rank's ``tables_sha256`` came out in either order)."""
    fresh = kt.ReferenceTables(kt.default_tables_dir())
    fresh.hla_allele("DQB1*02:01:01:01")      # one lazy table verified before the rest
    names = list(fresh.sha256)
    assert names == sorted(names) and len(names) > 5
    assert names == list(kt.ReferenceTables(kt.default_tables_dir()).sha256)
