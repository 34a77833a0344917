"""Worked pairs of DOMAIN.md Part B (table-driven), option variants (B.3) and
the unknown paths of rules 3-13 through assess_pair."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kirmatch.dsa import parse_antibody
from kirmatch.hlamatch import OPTIONAL_LOCI
from kirmatch.options import Options
from kirmatch.pair import CONTRACT_COLUMNS, assess_pair, make_person

DATA = Path(__file__).parent / "data"

# DOMAIN.md B.1 inputs.
R1 = ("R1", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01", None)
D1 = ("D1", "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01",
      "KIR2DL1*002+KIR2DL1*003+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1*001+KIR3DL1*002+KIR3DL2+KIR3DL3")
R2 = ("R2", "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04",
      "KIR2DL1+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1+KIR3DL2+KIR3DL3")
D2 = ("D2", "A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02",
      "KIR2DL1*004+KIR2DL1*004+KIR2DL2+KIR2DL4+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS4+"
      "KIR3DL1*005+KIR3DS1*013+KIR3DL2+KIR3DL3")
ANTIBODIES = {
    "R1": [("A*11:01", 3200, "neg"), ("B57", 9000, "neg")],
    "R2": [("B57", 14500, "pos"), ("A3", 2100, "neg"), ("B44", 3000, "neg")],
}
with open(DATA / "worked_pairs.tsv", newline="") as fh:
    EXPECTED = {row["column"]: row for row in csv.DictReader(fh, delimiter="\t")}


def person(spec, tables):
    return make_person(spec[0], spec[1], spec[2], tables=tables)


def run(r, d, tables, pyard=None, options=None, antibodies=True):
    abs_ = [parse_antibody(*a) for a in ANTIBODIES[r[0]]] if antibodies else None
    return assess_pair(person(r, tables), person(d, tables), options or Options(),
                       tables=tables, antibodies=abs_, pyard=pyard)


@pytest.mark.pyard
@pytest.mark.parametrize("which", ["pair1", "pair2"])
@pytest.mark.parametrize("column", list(EXPECTED), ids=list(EXPECTED))
def test_worked_pairs(tables, pyard, which, column) -> None:
    r, d = (R1, D1) if which == "pair1" else (R2, D2)
    row = run(r, d, tables, pyard).to_row()
    assert row[column] == EXPECTED[column][which]


def test_worked_pairs_cover_the_contract() -> None:
    # Non-vacuous guard: the table covers every computed contract column.
    assert set(EXPECTED) == set(CONTRACT_COLUMNS) - {"recipient_id", "donor_id"}


def test_to_dict_order_and_types(tables) -> None:
    res = run(R2, D2, tables, antibodies=False)
    d = res.to_dict()
    assert list(d)[: len(CONTRACT_COLUMNS)] == list(CONTRACT_COLUMNS)
    assert d["gvh_ligand_mismatch"] is True and d["hvg_ligand_mismatch"] is False
    assert d["cf_ikir"] == 1 and d["ikir_score_weighted"] == "1.00"
    assert d["options"]["rules"] == "kirmatch-rules-v2"
    assert d["options"]["ipd_imgt_hla"] == "3.58.0" and d["options"]["ipd_kir"] == "2.13.0"
    assert d["dsa_tier"] == "" and "unknown(dsa_tier: no_antibody_data)" in d["warnings"]


# DOMAIN.md B.3 option variants: (options, pair, column, expected)
VARIANTS = [
    ({"include_a3a11": True}, "pair1", "gvh_mismatched_ligands", "A3/A11"),
    ({"include_a3a11": True}, "pair1", "gvh_ligand_mismatch", "true"),
    ({"include_a3a11": True}, "pair1", "hvg_mismatched_ligands", "Bw4"),
    ({"include_a3a11": True}, "pair1", "receptor_ligand_mismatches", "KIR3DL2"),
    ({"include_a3a11": True}, "pair2", "gvh_mismatched_ligands", "A3/A11;Bw4;C2"),
    ({"include_a3a11": True}, "pair2", "receptor_ligand_mismatches", "KIR2DL1;KIR3DL1;KIR3DL2"),
    ({"ipd_compatible": True}, "pair1", "gvh_ligand_mismatch", "false"),
    ({"ipd_compatible": True}, "pair1", "hvg_mismatched_ligands", "Bw4"),
    ({"ipd_compatible": True}, "pair2", "gvh_mismatched_ligands", "Bw4;C2"),
    ({"ipd_compatible": True}, "pair2", "hvg_ligand_mismatch", "false"),
    ({"ipd_compatible": True, "include_a3a11": True}, "pair2", "gvh_mismatched_ligands",
     "Bw4;C2"),
    ({"hla_a_bw4": False}, "pair1", "recipient_ligands", "Bw4;C1;C2"),
    ({"hla_a_bw4": False}, "pair1", "cf_ikir", "3"),
    ({"exclude_null_kir3dl1": True}, "pair1", "cf_ikir", "3"),
    ({"exclude_null_kir3dl1": True}, "pair2", "cf_ikir_donor_ligands", "3"),
]


@pytest.mark.parametrize(("opts", "which", "column", "expected"), VARIANTS,
                         ids=[f"{v[1]}-{v[2]}-{'-'.join(v[0])}" for v in VARIANTS])
def test_option_variants(tables, opts, which, column, expected) -> None:
    r, d = (R1, D1) if which == "pair1" else (R2, D2)
    assert run(r, d, tables, options=Options(**opts), antibodies=False).to_row()[column] \
        == expected


@pytest.mark.pyard
def test_dsa_high_threshold_variant(tables, pyard) -> None:
    row = run(R2, D2, tables, pyard, Options(dsa_high_mfi=15000)).to_row()
    assert row["dsa_tier"] == "high"  # still C1q-positive


def test_ipd_option_overrides_only_rule4(tables) -> None:
    base = run(R1, D1, tables, antibodies=False).to_row()
    ipd = run(R1, D1, tables, options=Options(ipd_compatible=True), antibodies=False).to_row()
    changed = {k for k in base if base[k] != ipd[k]} - {"warnings"}
    assert changed <= {"gvh_ligand_mismatch", "gvh_mismatched_ligands",
                       "hvg_ligand_mismatch", "hvg_mismatched_ligands"}


def _pair(tables, r_hla, d_hla, d_kir=None, r_kir=None, **opts):
    r = make_person("R", r_hla, r_kir, tables=tables)
    d = make_person("D", d_hla, d_kir, tables=tables)
    return assess_pair(r, d, Options(**opts), tables=tables)


def test_no_donor_kir_keeps_ligand_models(tables) -> None:
    res = _pair(tables, R2[1], D2[1])
    row = res.to_row()
    assert row["gvh_mismatched_ligands"] == "Bw4;C2"  # ligand-ligand needs no KIR
    for col in ("cf_ikir", "missing_ligand_count", "cen_motif", "kir2dl1_245"):
        assert row[col] == ""
        assert f"unknown({col}: kir_gene_unknown)" in res.warnings
    # A Bw6 recipient is not inhibited whatever the donor's KIR3DL1 (propagation).
    assert row["kir3dl1_hlab"] == "non-inhibiting"


def test_every_unknown_has_exactly_one_warning(tables) -> None:
    res = _pair(tables, "A*24^B*44+B*07:02^C*07", "A*01:01^B*57:01^C*06:02+C*07:02",
                "KIR2DL1+KIR3DL1")
    row = res.to_row()
    # the optional rule-16 loci (DRB3/4/5, DQA1, DPA1) are compared only when both
    # persons are typed there: empty, not unknown (§A.19)
    optional = {f"hla_mm_{d}_{loc}" for d in ("gvh", "hvg") for loc in OPTIONAL_LOCI}
    for col, val in row.items():
        n = sum(1 for w in res.warnings if w.startswith(f"unknown({col}: "))
        if val == "" and col not in ("error", "warnings", "gvh_mismatched_ligands",
                                     "hvg_mismatched_ligands", "missing_ligands",
                                     "receptor_ligand_mismatches", "gene_gene_mismatches",
                                     *optional):
            assert n == 1, col
        if val != "":
            assert n == 0, col


def test_gene_level_kir3dl1_with_bw6_recipient_propagates(tables) -> None:
    # DOMAIN.md Part D 18: every class gives non-inhibiting with a Bw6 recipient.
    row = _pair(tables, R2[1], D2[1], "KIR2DL1+KIR3DL1+KIR2DL3").to_row()
    assert row["kir3dl1_hlab"] == "non-inhibiting"
    res = _pair(tables, R1[1], D2[1], "KIR2DL1+KIR3DL1+KIR2DL3")
    assert res.to_row()["kir3dl1_hlab"] == ""
    assert "unknown(kir3dl1_hlab: gene_level_kir)" in res.warnings
    assert "gene_level_kir(donor KIR3DL1)" in res.warnings


def test_kir2dl1_245_unknown_paths(tables) -> None:
    r = _pair(tables, R2[1], D2[1], "KIR2DL1+KIR2DL3")
    assert r.to_row()["kir2dl1_245"] == "" and "unknown(kir2dl1_245: gene_level_kir)" in r.warnings
    other = _pair(tables, R2[1], D2[1], "KIR2DL1*037+KIR2DL1*004")
    assert other.to_row()["kir2dl1_245"] == ""
    assert "unknown(kir2dl1_245: kir2dl1_245_other)" in other.warnings
    settled = _pair(tables, R2[1], D2[1], "KIR2DL1*037+KIR2DL1*001")
    assert settled.to_row()["kir2dl1_245"] == "R245"
    absent = _pair(tables, R2[1], D2[1], "KIR2DL3")
    assert absent.to_row()["kir2dl1_245"] == "absent"
    null = _pair(tables, R2[1], D2[1], "KIR2DL1*004+KIR2DL1*013N")
    assert null.to_row()["kir2dl1_245"] == "C245"


def test_kir3dl1_classes(tables) -> None:
    bw4_80i = "A*01:01^B*57:01+B*57:01^C*07:02"
    cases = {
        "KIR3DL1*001": "strong inhibiting",
        "KIR3DL1*005": "weak inhibiting",
        "KIR3DL1*004": "non-inhibiting",
        "KIR3DL1*005+KIR3DS1*013": "weak inhibiting",  # L beats N
        "KIR3DS1*013": "non-inhibiting",
        "KIR2DL1": "non-inhibiting",  # neither gene: N with a warning
    }
    for kir, expected in cases.items():
        res = _pair(tables, bw4_80i, D2[1], kir)
        assert res.to_row()["kir3dl1_hlab"] == expected, kir
    res = _pair(tables, bw4_80i, D2[1], "KIR2DL1")
    assert "no_kir3dl1_or_kir3ds1(donor)" in res.warnings
    # *095 is unclassified: with *004 it is unknown (DOMAIN.md C.7)
    res = _pair(tables, bw4_80i, D2[1], "KIR3DL1=001/095+004")
    assert res.to_row()["kir3dl1_hlab"] == ""


def test_gene_gene_with_unknown_recipient_gene(tables) -> None:
    res = _pair(tables, R2[1], D2[1], "KIR2DL1+KIR2DL2", r_kir="KIR2DL1=POS;KIR2DL2=NA")
    assert res.to_row()["gene_gene_mismatches"] == ""
    assert "unknown(gene_gene_mismatches: kir_gene_unknown)" in res.warnings
    ok = _pair(tables, R2[1], D2[1], "KIR2DL1+KIR2DL2", r_kir="KIR2DL1=POS;KIR2DL2=NEG")
    assert ok.to_row()["gene_gene_mismatches"] == "KIR2DL2"


def test_cen_unclassifiable(tables) -> None:
    res = _pair(tables, R2[1], D2[1], "KIR2DL1+KIR3DL1+KIR2DS4")
    row = res.to_row()
    assert row["cen_motif"] == "" and row["b_content_group"] == ""
    assert "unknown(cen_motif: cen_unclassifiable)" in res.warnings
    assert row["tel_motif"] == "A/A" and row["donor_kir_genotype"] == "A/A"


def test_boelen_rows(tables) -> None:
    # DOMAIN.md C.16 Boelen rows with v1 (KIR3DL1 always counted), recipient = the person.
    row2 = _pair(tables, "A*01:01^B*07:02+B*46:01^C*06:02", "A*01:01^B*07:02^C*07:02",
                 "KIR2DL1*001+KIR2DL2*001+KIR2DL3*001").to_row()
    assert row2["ikir_score_weighted"] == "2.75" and row2["cf_ikir"] == "3"
    row3 = _pair(tables, "A*01:01^B*44:02+B*46:01^C*06:02", "A*01:01^B*07:02^C*07:02",
                 "KIR2DL1*001+KIR2DL2*001+KIR2DL3*001+KIR3DL1*001").to_row()
    assert row3["ikir_score_weighted"] == "3.75" and row3["cf_ikir"] == "4"
