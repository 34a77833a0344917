"""Donor-specific antibodies, rule 13 v2 (DOMAIN.md §A.14; issue "DSA screen a
transplant lab can trust").

* every worked check of §A.14 through the library, ``pair --json``, ``rank`` and
  ``batch``;
* the issue's families: the G-typed father with anti-B7 C1q+ ranks below donors
  without DSA; weak antibodies at untyped DP/DQA loci do not lift a donor with a
  known strong DSA;
* specificity forms and their errors, thresholds, self antigens, flow crossmatch;
* properties (Hypothesis) and a differential test batch vs pair on random panels.

No test here needs py-ard: rule 13 v2 uses the shipped antigen table only.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kirmatch.cli.main import app
from typer.testing import CliRunner

from kirmatch.batch import assess_pairs, run_batch
from kirmatch.dsa import (
    DSAScreen,
    antibodies_by_recipient,
    antibody_tier,
    parse_antibody,
    parse_specificity,
)
from kirmatch.errors import HLAParseError, InputSchemaError, UnknownAlleleError, UsageError
from kirmatch.hla import parse_hla_genotype
from kirmatch.options import Options
from kirmatch.pair import assess_pair, make_person

runner = CliRunner()

#: A recipient who carries none of the worked checks' specificities (class II untyped).
NEUTRAL_R = "A*01:01+A*26:01^B*08:01+B*18:01^C*07:01+C*12:03"
ABC = "A*01:01+A*02:01^{b}^C*07:01+C*07:02"


def _donor(b: str) -> str:
    return ABC.format(b=b)


#: DOMAIN.md §A.14 "Worked checks": (id, recipient HLA, donor HLA, antibodies, expected).
#: Antibodies are (specificity, MFI, C1q). Expected columns as the CSV/JSON cells.
WORKED: list[tuple[str, str, str, list[tuple[str, Any, str]], dict[str, str]]] = [
    ("g_group_b7_c1q", NEUTRAL_R, _donor("B*07:02:01G+B*44:02"), [("B7", 12500, "pos")],
     {"dsa_tier": "high", "dsa_tier_worst": "high", "dsa_max_mfi": "12500",
      "dsa_total_mfi": "12500", "dsa_hits": "B7 12500 C1q+", "dsa_possible": ""}),
    ("serology_b44_b7_vs_b51", NEUTRAL_R, _donor("B44+B7"), [("B51", 13800, "")],
     {"dsa_tier": "none", "dsa_tier_worst": "none", "dsa_max_mfi": "0", "dsa_hits": "",
      "dsa_possible": ""}),
    ("serology_a2_vs_a74", NEUTRAL_R, "A2+A1^B*08:01+B*07:02^C*07:01+C*07:02",
     [("A74", 9000, "")],
     {"dsa_tier": "none", "dsa_tier_worst": "none", "dsa_hits": "", "dsa_possible": ""}),
    ("b44xx_vs_b45", NEUTRAL_R, _donor("B*44:XX+B*08:01"), [("B45", 15000, "")],
     {"dsa_tier": "", "dsa_tier_worst": "high", "dsa_max_mfi": "0", "dsa_hits": "",
      "dsa_possible": "B45 15000 ?B*44:XX"}),
    ("bead_b5101_vs_b0702", NEUTRAL_R, _donor("B*07:02+B*08:01"), [("B*51:01", 13800, "")],
     {"dsa_tier": "none", "dsa_tier_worst": "none", "dsa_possible": ""}),
    ("bead_b5101_vs_b51xx", NEUTRAL_R, _donor("B*51:XX+B*08:01"), [("B*51:01", 13800, "")],
     {"dsa_tier": "", "dsa_tier_worst": "high", "dsa_possible": "B*51:01 13800 ?B*51:XX"}),
    ("untyped_dr11_cannot_raise", NEUTRAL_R, _donor("B*51:01+B*08:01"),
     [("B51", 14200, "pos"), ("DR11", 4100, "")],
     {"dsa_tier": "high", "dsa_tier_worst": "high", "dsa_max_mfi": "14200",
      "dsa_hits": "B51 14200 C1q+", "dsa_possible": "DR11 4100 ?untyped DRB1"}),
    ("untyped_dr11_only", NEUTRAL_R, _donor("B*51:01+B*08:01"), [("DR11", 4100, "")],
     {"dsa_tier": "", "dsa_tier_worst": "moderate", "dsa_hits": "",
      "dsa_possible": "DR11 4100 ?untyped DRB1"}),
    ("broad_b5_vs_b5101", NEUTRAL_R, _donor("B*51:01+B*08:01"), [("B5", 9000, "")],
     {"dsa_tier": "high", "dsa_hits": "B5 9000"}),
    ("split_b51_vs_serology_b5", NEUTRAL_R, _donor("B5+B8"), [("B51", 9000, "")],
     {"dsa_tier": "", "dsa_tier_worst": "high", "dsa_possible": "B51 9000 ?B5"}),
    ("self_b44", "A*01:01+A*02:01^B*44:02+B*08:01^C*07:01+C*05:01", _donor("B*44:02+B*18:01"),
     [("B44", 8000, "")],
     {"dsa_tier": "none", "dsa_tier_worst": "none", "dsa_hits": "", "dsa_possible": ""}),
    ("dq_heterodimer_trans_miss", NEUTRAL_R,
     "DQA1*01:01+DQA1*03:01^DQB1*02:01+DQB1*03:02", [("DQA1*05:01/DQB1*02:01", 6000, "")],
     {"dsa_tier": "none", "dsa_hits": "", "dsa_possible": ""}),
    ("dq_heterodimer_hit", NEUTRAL_R, "DQA1*05:01+DQA1*01:01^DQB1*02:01+DQB1*05:01",
     [("DQA1*05:01/DQB1*02:01", 6000, "")],
     {"dsa_tier": "high", "dsa_hits": "DQA1*05:01/DQB1*02:01 6000"}),
    ("mfi_1500_low", NEUTRAL_R, _donor("B*07:02+B*08:01"), [("B7", 1500, "")],
     {"dsa_tier": "low", "dsa_hits": "B7 1500"}),
    ("mfi_3000_moderate", NEUTRAL_R, _donor("B*07:02+B*08:01"), [("B7", 3000, "")],
     {"dsa_tier": "moderate"}),
    ("mfi_3000_c1q_high", NEUTRAL_R, _donor("B*07:02+B*08:01"), [("B7", 3000, "pos")],
     {"dsa_tier": "high", "dsa_hits": "B7 3000 C1q+"}),
    ("mfi_25000_very_high", NEUTRAL_R, _donor("B*07:02+B*08:01"), [("B7", 25000, "")],
     {"dsa_tier": "very high", "dsa_tier_worst": "very high", "dsa_total_mfi": "25000"}),
]
#: Extra warnings each worked check must carry (beyond the ligand models').
WORKED_WARNINGS = {
    "self_b44": ["self_antigen_antibody(B44)"],
    "b44xx_vs_b45": ["unknown(dsa_tier: ambiguous_typing)"],
    "untyped_dr11_only": ["unknown(dsa_tier: antibody_locus_untyped)",
                          "antibody_locus_untyped(DR11)"],
}
WORKED_IDS = [w[0] for w in WORKED]


def _antibodies(items: list[tuple[str, Any, str]]) -> list[Any]:
    return [parse_antibody(s, m, c or None) for s, m, c in items]


def _check(case: str, row: dict[str, Any]) -> None:
    expected = next(w[4] for w in WORKED if w[0] == case)
    got = {k: str(row[k]) for k in expected}
    assert got == expected, case
    warnings = row["warnings"].split(";")
    for w in WORKED_WARNINGS.get(case, []):
        assert w in warnings, (case, row["warnings"])
    assert row["status"] == "ok"


@pytest.mark.parametrize("case", WORKED_IDS)
def test_worked_checks_library(case: str, tables) -> None:
    _, rh, dh, abs_, _ = next(w for w in WORKED if w[0] == case)
    res = assess_pair({"id": "R", "hla": rh}, {"id": "D", "hla": dh}, tables=tables,
                      antibodies=_antibodies(abs_))
    _check(case, res.to_row())


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write_antibodies(path: Path, rows: list[tuple[str, str, Any, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recipient_id", "specificity", "mfi", "c1q"])
        w.writerows(rows)
    return path


@pytest.fixture
def no_pyard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No py-ard database anywhere: rule 13 must not need one."""
    import kirmatch.pyard_backend as pb

    monkeypatch.setenv("KIRMATCH_PYARD_DIR", str(tmp_path / "no-pyard"))
    pb._BACKENDS.clear()
    yield
    pb._BACKENDS.clear()
    assert not (tmp_path / "no-pyard").exists()


@pytest.mark.parametrize("case", WORKED_IDS)
def test_worked_checks_pair_json(case: str, tmp_path: Path, no_pyard: None) -> None:
    _, rh, dh, abs_, _ = next(w for w in WORKED if w[0] == case)
    ab = _write_antibodies(tmp_path / "ab.csv", [("R", s, m, c) for s, m, c in abs_])
    res = runner.invoke(app, ["pair", "--recipient-hla", rh, "--donor-hla", dh,
                              "--recipient-id", "R", "--antibodies", str(ab), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    _check(case, {k: ("" if v is None else v) for k, v in doc.items()})


def _cohort(tmp_path: Path) -> tuple[Path, Path, Path]:
    """One recipient and one donor per worked check, as files."""
    geno = tmp_path / "genotypes.csv"
    pairs = tmp_path / "pairs.csv"
    with open(geno, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        for case, rh, dh, _, _ in WORKED:
            w.writerow([f"R_{case}", rh, ""])
            w.writerow([f"D_{case}", dh, ""])
    with open(pairs, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recipient_id", "donor_id"])
        w.writerows([f"R_{c}", f"D_{c}"] for c in WORKED_IDS)
    ab = _write_antibodies(tmp_path / "antibodies.csv",
                           [(f"R_{case}", s, m, c) for case, _, _, abs_, _ in WORKED
                            for s, m, c in abs_])
    return geno, pairs, ab


def test_worked_checks_batch(tmp_path: Path, no_pyard: None) -> None:
    geno, pairs, ab = _cohort(tmp_path)
    out = tmp_path / "out.csv"
    res = runner.invoke(app, ["batch", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--antibodies", str(ab), "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [r["recipient_id"] for r in rows] == [f"R_{c}" for c in WORKED_IDS]
    for case, row in zip(WORKED_IDS, rows, strict=True):
        _check(case, row)
    prov = json.loads((tmp_path / "out.csv.provenance.json").read_text())
    assert prov["inputs"]["antibodies"]["path"] == str(ab.resolve())
    assert prov["options"]["dsa_moderate_mfi"] == 2000 and prov["options"]["dsa_count_self"] \
        is False


def test_worked_checks_rank(tmp_path: Path, no_pyard: None) -> None:
    geno, pairs, ab = _cohort(tmp_path)
    res = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(pairs), "-a", str(ab),
                              "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["results"]
    for case, row in zip(WORKED_IDS, rows, strict=True):
        assert row["recipient_id"] == f"R_{case}"
        _check(case, row)


# ---------------------------------------------------------------------------
# The families
# ---------------------------------------------------------------------------

PATIENT = "A*01:01+A*02:01^B*08:01+B*44:02^C*07:01+C*05:01^DRB1*03:01+DRB1*04:01"
FAMILY = {
    # the father shares the A*01:01~B*08:01 haplotype; his other one is typed at G level
    "father": "A*01:01+A*03:01:01G^B*08:01+B*07:02:01G^C*07:01+C*07:02:01G^"
              "DRB1*03:01+DRB1*15:01:01G",
    "mother": "A*02:01+A*24:02^B*44:02+B*35:01^C*05:01+C*04:01^DRB1*04:01+DRB1*11:01",
    "brother": "A*01:01+A*02:01^B*08:01+B*44:02^C*07:01+C*05:01^DRB1*03:01+DRB1*04:01",
    "sister": "A*02:01+A*24:02^B*44:02+B*35:01^C*05:01+C*04:01^DRB1*04:01+DRB1*11:01",
}
KIR_A = "KIR2DL1+KIR2DL3+KIR2DS4+KIR3DL1+KIR2DL4+KIR3DL2+KIR3DL3"


def _family_files(tmp_path: Path, people: dict[str, str], antibodies: list[tuple],
                  clinical: dict[str, tuple]) -> tuple[Path, Path, Path]:
    geno = tmp_path / "g.csv"
    with open(geno, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        w.writerow(["P", PATIENT, KIR_A])
        w.writerows([d, h, KIR_A] for d, h in people.items())
    pairs = tmp_path / "p.csv"
    with open(pairs, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recipient_id", "donor_id", "donor_age", "donor_sex", "recipient_sex",
                    "relationship"])
        w.writerows(["P", d, *clinical[d]] for d in people)
    ab = _write_antibodies(tmp_path / "a.csv", [("P", *a) for a in antibodies])
    return geno, pairs, ab


def test_family_g_typed_father_ranks_below_donors_without_dsa(tmp_path: Path,
                                                              no_pyard: None) -> None:
    """The issue: donor B*07:02:01G vs anti-B7 12,500 C1q+ was 'none' in v1 and the
    father ranked #1. Now he is high and below every donor without DSA."""
    clinical = {"father": (45, "M", "M", "father"), "mother": (44, "F", "M", "mother"),
                "brother": (30, "M", "M", "sibling"), "sister": (28, "F", "M", "sibling")}
    geno, pairs, ab = _family_files(tmp_path, FAMILY,
                                    [("B7", 12500, "pos"), ("A3", 6000, "neg")], clinical)
    res = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(pairs), "-a", str(ab),
                              "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["donor_id"]: r for r in json.loads(res.stdout)["results"]}
    father = rows["father"]
    assert (father["dsa_tier"], father["dsa_hits"]) == ("high", "B7 12500 C1q+;A3 6000")
    assert father["rank"] == "4"
    assert father["rank_reason"] == "dsa_tier: high (B7 12500 C1q+) vs none"
    assert all(rows[d]["dsa_tier"] == "none" for d in ("mother", "brother", "sister"))


def test_weak_untyped_locus_antibodies_do_not_lift_a_known_strong_dsa(tmp_path: Path,
                                                                       no_pyard: None) -> None:
    """The issue: DPB1*04:01 1,500 and DQA1*05:01 1,200 (DP/DQA untyped) made every
    donor unknown in v1 and the son with a known B51 14,200 C1q+ DSA moved from #6
    to #2. Now the others are unknown with worst case 'low' and he stays last."""
    six = {f"d{i}": h for i, h in enumerate([
        "A*01:01+A*02:01^B*08:01+B*44:02^C*07:01+C*05:01",
        "A*01:01+A*24:02^B*08:01+B*35:01^C*07:01+C*04:01",
        "A*02:01+A*03:01^B*44:02+B*07:02^C*05:01+C*07:02",
        "A*02:01+A*11:01^B*44:02+B*18:01^C*05:01+C*12:03",
        "A*01:01+A*26:01^B*08:01+B*38:01^C*07:01+C*12:03",
    ])}
    six["son"] = "A*01:01+A*02:01^B*08:01+B*51:01^C*07:01+C*15:02"
    clinical = {d: (20 + i, "M", "M", "child" if d == "son" else "sibling")
                for i, d in enumerate(six)}
    antibodies = [("B51", 14200, "pos"), ("DPB1*04:01", 1500, ""), ("DQA1*05:01", 1200, "")]
    geno, pairs, ab = _family_files(tmp_path, six, antibodies, clinical)
    res = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(pairs), "-a", str(ab),
                              "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["donor_id"]: r for r in json.loads(res.stdout)["results"]}
    son = rows["son"]
    assert (son["dsa_tier"], son["dsa_tier_worst"], son["rank"]) == ("high", "high", "6")
    assert son["dsa_possible"] == "DPB1*04:01 1500 ?untyped DPB1;DQA1*05:01 1200 ?untyped DQA1"
    for d in six:
        if d != "son":
            assert (rows[d]["dsa_tier"], rows[d]["dsa_tier_worst"]) == ("", "low"), d
            assert "unknown(dsa_tier: antibody_locus_untyped)" in rows[d]["warnings"]


# ---------------------------------------------------------------------------
# Specificities, options, inputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, name, kind, loci", [
    ("B*51:01", "B*51:01", "allele", ("B",)),
    ("HLA-B*51:01:01:01", "B*51:01", "allele", ("B",)),
    ("B51", "B51", "antigen", ("B",)),
    ("hla-cw4", "Cw4", "antigen", ("C",)),
    ("C4", "Cw4", "antigen", ("C",)),
    ("Cw12", "Cw12", "allele_group", ("C",)),
    ("DR15", "DR15", "antigen", ("DRB1",)),
    ("DR52", "DR52", "antigen", ("DRB3",)),
    ("DR51", "DR51", "antigen", ("DRB5",)),
    ("DQ7", "DQ7", "antigen", ("DQB1",)),
    ("Bw4", "Bw4", "public", ("A", "B")),
    ("Bw6", "Bw6", "public", ("B",)),
    ("DQA1*05:01~DQB1*02:01", "DQA1*05:01/DQB1*02:01", "heterodimer", ("DQA1", "DQB1")),
    ("DQB1*02:01/DQA1*05:01", "DQA1*05:01/DQB1*02:01", "heterodimer", ("DQA1", "DQB1")),
    ("DPA1*02:01/DPB1*01:01", "DPA1*02:01/DPB1*01:01", "heterodimer", ("DPA1", "DPB1")),
    ("NONE", "NONE", "none", ()),
])
def test_specificity_forms(text: str, name: str, kind: str, loci: tuple, tables) -> None:
    s = parse_specificity(text, tables)
    assert (s.name, s.kind, s.loci) == (name, kind, loci)


@pytest.mark.parametrize("text, error, fragment", [
    ("B99", UnknownAlleleError, "unknown antigen 'B99'"),
    ("B*99:99", UnknownAlleleError, "unknown allele 'B*99:99'"),
    ("B*51", HLAParseError, "two fields"),
    ("B*51:XX", HLAParseError, "two fields"),
    ("A*01:01:01:02N", HLAParseError, "null allele"),
    ("DQA1*05:01/DPB1*04:01", HLAParseError, "pairs DQA1 with DQB1"),
    ("B*51:01/B*52:01", HLAParseError, "pairs DQA1 with DQB1"),
    ("DQ2/DQ7", HLAParseError, "two alleles"),
    ("", HLAParseError, "empty antibody specificity"),
    ("B*5101", HLAParseError, "current nomenclature"),
])
def test_specificity_errors_name_the_value(text: str, error: type, fragment: str,
                                           tables) -> None:
    with pytest.raises(error) as exc:
        parse_specificity(text, tables)
    assert fragment in str(exc.value) and exc.value.column == "specificity"
    if text:
        assert repr(text) in str(exc.value)


def test_dr52_needs_drb3(tables) -> None:
    """DR52 is the DRB3 antigen: an untyped DRB3 possibly carries it, a typed one decides."""
    s = DSAScreen(tables)
    ab = [parse_antibody("DR52", 7000)]
    untyped = s.assess(ab, parse_hla_genotype("DRB1*03:01+DRB1*04:01"))
    assert (untyped.tier, untyped.possible_text) == (None, "DR52 7000 ?untyped DRB3")
    typed = s.assess(ab, parse_hla_genotype("DRB1*03:01+DRB1*04:01^DRB3*01:01"))
    assert (typed.tier, typed.hits_text) == ("high", "DR52 7000")


def test_public_bw4_on_hla_a_and_b(tables) -> None:
    s = DSAScreen(tables)
    ab = [parse_antibody("Bw4", 6000)]
    assert s.assess(ab, parse_hla_genotype("A*24:02+A*01:01^B*08:01+B*07:02")).tier == "high"
    assert s.assess(ab, parse_hla_genotype("A*01:01+A*02:01^B*08:01+B*07:02")).tier == "none"
    # HLA-A untyped: A*24 could carry Bw4
    only_b = s.assess(ab, parse_hla_genotype("B*08:01+B*07:02"))
    assert (only_b.tier, only_b.possible_text) == (None, "Bw4 6000 ?untyped A")


def test_allele_group_name_cw12(tables) -> None:
    s = DSAScreen(tables)
    ab = [parse_antibody("Cw12", 5000)]
    assert s.assess(ab, parse_hla_genotype("C*12:03+C*07:01")).tier == "high"
    assert s.assess(ab, parse_hla_genotype("C*07:02+C*07:01")).tier == "none"


def test_broad_only_allele_possibly_hits_splits(tables) -> None:
    """B*44:15 is assigned only the broad B12: it possibly carries B44 and B45."""
    s = DSAScreen(tables)
    res = s.assess([parse_antibody("B45", 8000)], parse_hla_genotype("B*44:15+B*08:01"))
    assert (res.tier, res.tier_worst, res.possible_text) == (None, "high",
                                                             "B45 8000 ?B*44:15")
    assert s.assess([parse_antibody("B12", 8000)],
                    parse_hla_genotype("B*44:15+B*08:01")).tier == "high"


def test_mac_without_data_is_possible(tables) -> None:
    res = DSAScreen(tables).assess([parse_antibody("B7", 8000)],
                                   parse_hla_genotype("B*07:AB+B*08:01"))
    assert (res.tier, res.possible_text, res.reason) == (None, "B7 8000 ?B*07:AB",
                                                         "ambiguous_typing")


def test_genotype_alternatives(tables) -> None:
    s = DSAScreen(tables)
    ab = [parse_antibody("B7", 8000)]
    both = s.assess(ab, parse_hla_genotype("B*07:02+B*08:01|B*07:02+B*18:01"))
    assert both.tier == "high"
    either = s.assess(ab, parse_hla_genotype("B*07:02+B*08:01|B*44:02+B*18:01"))
    assert (either.tier, either.possible_text) == (None, "B7 8000 ?B*07:02+B*08:01|B*44:02+B*18:01")


def test_single_allele_option(tables) -> None:
    ab = [parse_antibody("B7", 8000)]
    donor = parse_hla_genotype("B*08:01")
    assert DSAScreen(tables).assess(ab, donor).tier == "none"
    res = DSAScreen(tables, Options(single_allele="unknown")).assess(ab, donor)
    assert (res.tier, res.possible_text) == (None, "B7 8000 ?single B typing")


def test_tiers_thresholds_and_c1q() -> None:
    o = Options()
    assert [antibody_tier(x, None, o) for x in (0, 999.9, 1000, 1999, 2000, 4999.99, 5000,
                                                19999, 20000)] == [
        "none", "none", "low", "low", "moderate", "moderate", "high", "high", "very high"]
    # C1q-positive is high whatever the MFI (documented choice: prozone), never lowered
    assert antibody_tier(10, True, o) == "high" and antibody_tier(30000, True, o) == "very high"
    o2 = Options(dsa_low_mfi=500, dsa_moderate_mfi=3000, dsa_high_mfi=8000,
                 dsa_very_high_mfi=15000)
    assert [antibody_tier(x, None, o2) for x in (499, 500, 3000, 8000, 15000)] == [
        "none", "low", "moderate", "high", "very high"]
    with pytest.raises(UsageError, match="dsa_moderate_mfi <= dsa_high_mfi"):
        Options(dsa_moderate_mfi=6000)


def test_sub_threshold_hit_counts_in_mfi_columns_not_in_lists(tables) -> None:
    s = DSAScreen(tables)
    res = s.assess([parse_antibody("B7", 900), parse_antibody("B8", 1500)],
                   parse_hla_genotype("B*07:02+B*08:01"))
    assert (res.tier, res.max_mfi, res.total_mfi, res.hits_text) == ("low", 1500, 2400,
                                                                     "B8 1500")
    assert [h.specificity for h in res.below] == ["B7"]


def test_self_antigen_option(tables) -> None:
    r = parse_hla_genotype("B*44:02+B*08:01")
    d = parse_hla_genotype("B*44:02+B*07:02")
    ab = [parse_antibody("B44", 8000)]
    left_out = DSAScreen(tables).assess(ab, d, r)
    assert (left_out.tier, left_out.warnings) == ("none", ("self_antigen_antibody(B44)",))
    counted = DSAScreen(tables, Options(dsa_count_self=True)).assess(ab, d, r)
    assert (counted.tier, counted.hits_text, counted.warnings) == ("high", "B44 8000", ())
    # a recipient who only possibly carries it (B*44:XX): the antibody counts
    maybe = DSAScreen(tables).assess(ab, d, parse_hla_genotype("B*44:XX+B*08:01"))
    assert maybe.tier == "high"
    # allele level: anti-B*44:03 is not self for a B*44:02 recipient
    bead = DSAScreen(tables).assess([parse_antibody("B*44:02", 8000)],
                                    parse_hla_genotype("B*44:02+B*07:02"),
                                    parse_hla_genotype("B*44:03+B*08:01"))
    assert bead.tier == "high"


def test_an_allele_list_leaves_its_null_alleles_out(tables) -> None:
    """§A.14: allele lists are expanded as in rule 2, nulls left out; the typing
    hits when every expressed candidate does. ``A*24:02/A*24:09N`` carries A24
    as ``A*24:02`` and its G group ``A*24:02:01G`` (which holds A*24:09N) do; a
    null alternative made it only 'possible' (and, on the recipient's side, an
    anti-A24 no longer self: a false 'high')."""
    s = DSAScreen(tables)
    ab = [parse_antibody("A24", 8000)]
    for typed in ("A*24:02", "A*24:02:01G", "A*24:02/A*24:09N", "A*11:403N/A*24:02"):
        donor = s.assess(ab, parse_hla_genotype(f"A*01:01+{typed}"))
        assert (donor.tier, donor.hits_text, donor.possible_text) == ("high", "A24 8000", ""), \
            typed
        self_ = s.assess(ab, parse_hla_genotype("A*24:02+A*01:01"),
                         parse_hla_genotype(f"A*02:01+{typed}"))
        assert (self_.tier, self_.warnings) == ("none", ("self_antigen_antibody(A24)",)), typed
    # only null alleles: nothing carried
    assert s.assess(ab, parse_hla_genotype("A*01:01+A*24:09N/A*11:403N")).tier == "none"
    # an absent gene is a reading: DR53 (DRB4) on DRB4*01:01/DRB4*NNNN stays possible
    dr53 = s.assess([parse_antibody("DR53", 6000)],
                    parse_hla_genotype("DRB1*04:01+DRB1*15:01^DRB4*01:01/DRB4*NNNN"))
    assert (dr53.tier, dr53.hits_text) == (None, "")


def test_a_group_carries_the_antigens_of_its_named_allele(tables) -> None:
    """§A.14: every expressed member of a G/P group carries the group's antigens
    (one ARS); they are those of the allele the group is named after, not the
    union of every member's own assignment. rel_dna_ser.txt has B*15:01:01:01
    as B62 but B*15:104, a member of B*15:01:01G and B*15:01P, only as an
    assumed 'B15/70': a B*15:01:01G recipient does not carry B70, so anti-B70
    against a B72 donor (B*15:03) is a DSA, as for a B*15:01 recipient (it was
    left out as self: a false 'none'); and a B*15:01:01G donor does not carry
    B70 (a false 'high')."""
    s = DSAScreen(tables)
    b70 = [parse_antibody("B70", 9000)]
    for recipient in ("B*15:01:01G+B*08:01", "B*15:01P+B*08:01", "B*15:01+B*08:01"):
        res = s.assess(b70, parse_hla_genotype("B*15:03:01+B*08:01"),
                       parse_hla_genotype(recipient))
        assert (res.tier, res.hits_text, res.warnings) == ("high", "B70 9000", ()), recipient
    for donor in ("B*15:01:01G+B*08:01", "B*15:01+B*08:01"):
        assert s.assess(b70, parse_hla_genotype(donor),
                        parse_hla_genotype("B*07:02+B*08:01")).tier == "none", donor
        b62 = s.assess([parse_antibody("B62", 9000)], parse_hla_genotype(donor),
                       parse_hla_genotype("B*07:02+B*08:01"))
        assert (b62.tier, b62.hits_text) == ("high", "B62 9000"), donor


def test_antibody_ids_through_the_library(tables) -> None:
    """antibodies_by_recipient takes rows from any source: an id is its text
    (0 is "0"); a missing one (None, NaN: a pandas blank) refuses the file, as
    an empty cell does, rather than filing the row under "nan"."""
    cols = ["recipient_id", "specificity", "mfi"]
    got = antibodies_by_recipient(cols, [{"recipient_id": 0, "specificity": "B7", "mfi": 9000}],
                                  source="ab", tables=tables)
    assert list(got) == ["0"]
    for missing in (None, float("nan"), " "):
        rows = [{"recipient_id": "R1", "specificity": "B7", "mfi": 9000},
                {"recipient_id": missing, "specificity": "A2", "mfi": 9000}]
        with pytest.raises(InputSchemaError, match="recipient_id is empty in row 2"):
            antibodies_by_recipient(cols, rows, source="ab", tables=tables)


def test_flow_crossmatch(tables) -> None:
    s = DSAScreen(tables)
    donor = parse_hla_genotype("B*07:02+B*08:01")
    pos = s.assess([parse_antibody("B7", 1500)], donor, flow_crossmatch=True)
    assert (pos.tier, pos.hits_text) == ("high", "B7 1500")
    neg = s.assess([parse_antibody("NONE", "")], donor, flow_crossmatch=True)
    assert neg.tier == "high"           # a positive crossmatch is donor-specific by itself
    vh = s.assess([parse_antibody("B7", 25000)], donor, flow_crossmatch=True)
    assert vh.tier == "very high"
    assert s.assess([parse_antibody("B7", 1500)], donor, flow_crossmatch=False).tier == "low"


def test_flow_crossmatch_column_in_batch(tmp_path: Path, no_pyard: None) -> None:
    geno = tmp_path / "g.csv"
    geno.write_text("sample_id,hla,kir\nR,A*01:01+A*26:01^B*08:01+B*18:01,\n"
                    "D,A*01:01+A*02:01^B*07:02+B*08:01,\n")
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id,flow_crossmatch\nR,D,pos\nR,D,\nR,D,weak\nR,D,NEG\n")
    ab = _write_antibodies(tmp_path / "a.csv", [("R", "B7", 1500, "")])
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["batch", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--antibodies", str(ab), "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [r["dsa_tier"] for r in rows] == ["high", "low", "", "low"]
    assert [r["flow_crossmatch"] for r in rows] == ["pos", "", "weak", "NEG"]
    assert rows[2]["status"] == "error"
    assert rows[2]["error"] == ("input_parse_error: cannot parse 'weak': flow crossmatch must "
                                "be pos, neg or blank [row 3, column 'flow_crossmatch']")


def test_no_antibody_data_is_unknown_everywhere(tables) -> None:
    res = assess_pair({"id": "R", "hla": NEUTRAL_R}, {"id": "D", "hla": _donor("B*07:02")},
                      tables=tables).to_row()
    for col in ("dsa_max_mfi", "dsa_tier", "dsa_tier_worst", "dsa_total_mfi", "dsa_hits",
                "dsa_possible"):
        assert res[col] == ""
        assert f"unknown({col}: no_antibody_data)" in res["warnings"]


def test_negative_screen_is_none(tables) -> None:
    res = assess_pair({"id": "R", "hla": NEUTRAL_R}, {"id": "D", "hla": _donor("B*07:02")},
                      tables=tables, antibodies=[parse_antibody("NONE", "")]).to_row()
    assert (res["dsa_tier"], res["dsa_max_mfi"], res["dsa_hits"]) == ("none", "0", "")
    assert "no_antibody_data" not in res["warnings"]


def test_antibody_file_errors(tables) -> None:
    cols = ["recipient_id", "specificity", "mfi", "c1q"]
    got = antibodies_by_recipient(cols, [
        {"recipient_id": "R1", "specificity": "B7", "mfi": "3000", "c1q": ""},
        {"recipient_id": "R2", "specificity": "B99", "mfi": "3000", "c1q": ""},
        {"recipient_id": "R2", "specificity": "B7", "mfi": "3000", "c1q": ""},
        {"recipient_id": "R3", "specificity": "B7", "mfi": "3000", "c1q": "maybe"},
    ], source="ab.csv", tables=tables, require_recipient=True)
    assert [a.specificity for a in got["R1"]] == ["B7"]
    assert str(got["R2"]) == ("ab.csv: unknown antigen 'B99': not an HLA antigen, public "
                              "epitope (Bw4, Bw6) or allele-group name (Cw12) of IPD-IMGT/HLA "
                              "3.58.0 [row 2, column 'specificity']")
    assert str(got["R3"]).endswith("C1q must be pos, neg or blank [row 4, column 'c1q']")
    with pytest.raises(InputSchemaError, match="column 'bead_lot' is not an antibody column"):
        antibodies_by_recipient([*cols, "bead_lot"], [], source="ab.csv", tables=tables)


def test_batch_antibody_error_fails_only_that_recipient(tmp_path: Path,
                                                        no_pyard: None) -> None:
    geno, pairs, _ = _cohort(tmp_path)
    ab = _write_antibodies(tmp_path / "bad.csv", [("R_self_b44", "B44", "8,000", ""),
                                                  ("R_mfi_1500_low", "B7", 1500, "")])
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["batch", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--antibodies", str(ab), "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    rows = {r["recipient_id"]: r for r in _rows(out)}
    bad = rows["R_self_b44"]
    assert bad["status"] == "error" and "cannot parse '8,000'" in bad["error"]
    assert "bad.csv" in bad["error"] and "[row 1, column 'mfi']" in bad["error"]
    assert rows["R_mfi_1500_low"]["dsa_tier"] == "low"
    assert rows["R_g_group_b7_c1q"]["dsa_tier"] == ""   # no rows: no antibody data
    assert "unknown(dsa_tier: no_antibody_data)" in rows["R_g_group_b7_c1q"]["warnings"]


def test_report_dsa_section(tmp_path: Path, no_pyard: None) -> None:
    geno, pairs, ab = _cohort(tmp_path)
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(pairs), "-a", str(ab),
                              "--report", str(report), "--quiet"])
    assert res.exit_code == 0, res.output
    html = report.read_text()
    assert "Tiers by MFI: low ≥ 1,000, moderate ≥ 2,000, high ≥ 5,000" in html
    assert "untyped DRB1</td><td>type the donor at HLA-DRB1</td>" in html
    assert "B*44:XX</td><td>type B*44:XX at allele level (2 fields)</td>" in html
    assert "recipient&#x27;s own antigen: left out" in html
    assert "unknown (worst case high)" in html


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

POOL = ["A1", "A2", "A3", "A9", "A24", "A11", "B7", "B8", "B5", "B51", "B52", "B44", "B45",
        "B12", "B57", "B35", "Bw4", "Bw6", "Cw4", "Cw7", "Cw12", "DR4", "DR11", "DR15",
        "DR52", "DQ2", "DQ7", "B*51:01", "B*44:02", "A*02:01", "C*07:02", "DQB1*02:01",
        "DQA1*05:01/DQB1*02:01", "DPB1*04:01", "DPA1*01:03/DPB1*04:01"]
DONOR_LOCI = {
    "A": ["A*01:01", "A*02:01", "A*24:02", "A*03:01", "A*11:01", "A*02:XX", "A2", "A9",
          "A*02:01:01G", "A*24"],
    "B": ["B*07:02", "B*08:01", "B*44:02", "B*44:03", "B*51:01", "B*52:01", "B*57:01",
          "B*44:XX", "B*44:15", "B5", "B44", "B*07:02:01G", "B*51:01P", "B*35:01"],
    "C": ["C*07:01", "C*07:02", "C*04:01", "C*12:03", "C*05:01", "Cw4", "C*07:XX"],
    "DRB1": ["DRB1*04:01", "DRB1*11:01", "DRB1*15:01", "DRB1*03:01", "DR4", "DRB1*11:XX"],
    "DQB1": ["DQB1*02:01", "DQB1*03:01", "DQB1*06:02", "DQ7"],
    "DQA1": ["DQA1*05:01", "DQA1*01:02", "DQA1*03:01"],
    "DPB1": ["DPB1*04:01", "DPB1*02:01", "DPB1*01:01"],
}


@st.composite
def donors(draw: Any) -> str:
    parts = []
    for loc, options in DONOR_LOCI.items():
        if draw(st.booleans()) or loc in ("A", "B", "C"):
            a, b = draw(st.sampled_from(options)), draw(st.sampled_from(options))
            parts.append(f"{a}+{b}")
    return "^".join(parts)


antibody = st.tuples(st.sampled_from(POOL), st.sampled_from([500, 1500, 3000, 7000, 25000]),
                     st.sampled_from(["", "pos", "neg"]))
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(donor=donors(), panel=st.lists(antibody, min_size=1, max_size=6), extra=antibody)
def test_adding_an_antibody_never_lowers_the_worst_tier(tables, donor: str, panel: list,
                                                         extra: tuple) -> None:
    s = DSAScreen(tables)
    d = parse_hla_genotype(donor)
    before = s.assess(_antibodies(panel), d)
    after = s.assess(_antibodies([*panel, extra]), d)
    tiers = ("none", "low", "moderate", "high", "very high")
    assert tiers.index(after.tier_worst) >= tiers.index(before.tier_worst)
    assert after.total_mfi >= before.total_mfi


@SETTINGS
@given(donor=donors(), panel=st.lists(antibody, min_size=1, max_size=6), seed=st.integers())
def test_antibody_order_changes_nothing(tables, donor: str, panel: list, seed: int) -> None:
    s = DSAScreen(tables)
    d = parse_hla_genotype(donor)
    shuffled = list(panel)
    random.Random(seed).shuffle(shuffled)
    a, b = s.assess(_antibodies(panel), d), s.assess(_antibodies(shuffled), d)
    assert a.values() == b.values() and a.warnings == b.warnings


@SETTINGS
@given(donor=donors(), panel=st.lists(antibody, min_size=1, max_size=6))
def test_known_tier_is_between_definite_and_worst(tables, donor: str, panel: list) -> None:
    s = DSAScreen(tables)
    res = s.assess(_antibodies(panel), parse_hla_genotype(donor))
    if res.tier is not None:
        assert res.tier == res.tier_worst
    else:
        assert res.reason in ("ambiguous_typing", "antibody_locus_untyped") and res.possible


@pytest.mark.parametrize("protein", ["B*07:02", "B*44:02", "B*51:01", "A*02:01", "C*07:02",
                                     "A*24:02", "DRB1*15:01", "DQB1*02:01"])
def test_g_group_gives_the_tier_of_its_primary_allele(tables, protein: str) -> None:
    """A G-group typing gives the same result as its primary 2-field allele, for
    every antibody of the pool and MFI."""
    g = tables.hla_allele(protein + ":01:01").g_group if tables.hla_allele(
        protein + ":01:01") else tables.hla_alleles_with_prefix(protein)[0].g_group
    assert g is not None
    s = DSAScreen(tables)
    locus = protein.split("*")[0]
    other = {"A": "A*01:01", "B": "B*08:01", "C": "C*01:02", "DRB1": "DRB1*03:01",
             "DQB1": "DQB1*06:02"}[locus]
    for spec in POOL:
        for mfi, c1q in ((1500, None), (8000, True), (25000, None)):
            ab = [parse_antibody(spec, mfi, c1q)]
            a = s.assess(ab, parse_hla_genotype(f"{g}+{other}"))
            b = s.assess(ab, parse_hla_genotype(f"{protein}+{other}"))
            assert (a.tier, a.tier_worst) == (b.tier, b.tier_worst), (g, spec)


@SETTINGS
@given(donor=donors(), panel=st.lists(antibody, min_size=1, max_size=5))
def test_antibody_the_donor_lacks_at_a_typed_locus_changes_nothing(tables, donor: str,
                                                                    panel: list) -> None:
    s = DSAScreen(tables)
    d = parse_hla_genotype(donor)
    lacking = [spec for spec in ("B*27:05", "B27", "A*80:01", "Cw18", "B*82:01")
               if s.carriage(parse_specificity(spec, tables), d).status == 0]
    assert lacking
    base = s.assess(_antibodies(panel), d)
    for spec in lacking:
        more = s.assess(_antibodies([*panel, (spec, 25000, "pos")]), d)
        assert more.values() == base.values() and more.warnings == base.warnings


# ---------------------------------------------------------------------------
# Batch vs pair on random panels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("per_person", [True, False], ids=["per-person", "per-row"])
def test_batch_equals_pair_on_random_panels(tables, per_person: bool, golden: ModuleType,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch (vectorised) equals pair (per-pair reference) on random panels; both
    ways of tabulating carriage (per person; per row, for large cohorts)."""
    from kirmatch.dsa import PanelScreen

    if not per_person:
        monkeypatch.setattr(PanelScreen, "PER_PERSON_CELLS", 0)
    rng = random.Random(20261205)
    people = golden.random_people(rng, 120, odd=0.25, missing=0.03, single=0.08)
    # class II loci for about 60 % of the typed people, locus by locus
    people = [(pid, hla + "".join(
        f"^{rng.choice(opts)}+{rng.choice(opts)}" for loc, opts in DONOR_LOCI.items()
        if loc not in ("A", "B", "C") and rng.random() < 0.6) if hla else hla, kir)
        for pid, hla, kir in people]
    ids = [p[0] for p in people]
    recipients = ids[:40]
    panels: dict[str, Any] = {}
    for rid in recipients[:34]:
        panels[rid] = _antibodies([(rng.choice(POOL), rng.choice([300, 1200, 2500, 6000, 21000]),
                                    rng.choice(["", "pos", "neg"]))
                                   for _ in range(rng.randint(1, 10))])
    panels[recipients[34]] = _antibodies([("NONE", "", "")])
    pairs = pd.DataFrame({
        "recipient_id": [rng.choice(recipients) for _ in range(600)],
        "donor_id": [rng.choice(ids) for _ in range(600)],
        "flow_crossmatch": [rng.choice(["", "", "", "pos", "neg"]) for _ in range(600)],
    })
    geno = pd.DataFrame(people, columns=["sample_id", "hla", "kir"])
    for opts in (Options(), Options(dsa_count_self=True, single_allele="unknown",
                                    dsa_moderate_mfi=3000)):
        out = assess_pairs(geno, pairs, opts, tables=tables, antibodies=panels)
        parsed = {pid: make_person(pid, h, k, tables=tables) for pid, h, k in people}
        n_ok = 0
        for row in out.itertuples(index=False):
            flow = {"": None, "pos": True, "neg": False}[row.flow_crossmatch]
            try:
                exp = assess_pair(parsed[row.recipient_id], parsed[row.donor_id], opts,
                                  tables=tables, antibodies=panels.get(row.recipient_id),
                                  flow_crossmatch=flow).to_row()
            except Exception as exc:  # a person that cannot be assessed: batch error row
                assert row.status == "error", (row, exc)
                continue
            assert {k: getattr(row, k) for k in exp} == exp
            n_ok += 1
        assert n_ok > 400
        assert (out["dsa_possible"] != "").sum() > 20 and (out["dsa_hits"] != "").sum() > 50


def test_run_batch_with_antibodies_api(tmp_path: Path) -> None:
    geno, pairs, ab = _cohort(tmp_path)
    summary = run_batch(geno, pairs, tmp_path / "o.parquet", antibodies=ab)
    assert summary.rows_error == 0
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert got.loc[got["recipient_id"] == "R_g_group_b7_c1q", "dsa_tier"].tolist() == ["high"]


def test_an_unknown_allele_fails_only_its_persons_pairs(tmp_path: Path, no_pyard: None) -> None:
    """A typing that cannot be read (unknown allele) at an antibody's locus makes
    that person's pairs errors; every other pair still gets its DSA columns."""
    geno = tmp_path / "g.csv"
    geno.write_text("sample_id,hla,kir\nR,A*01:01+A*26:01^B*08:01+B*18:01,\n"
                    "D,A*01:01+A*02:01^B*07:02+B*08:01,\nX,A*01:01+A*02:01^B*99:99+B*08:01,\n")
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nR,D\nR,X\nX,D\n")
    ab = _write_antibodies(tmp_path / "a.csv", [("R", "B7", 6000, ""), ("X", "B7", 6000, "")])
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["batch", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--antibodies", str(ab), "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["ok", "error", "error"]
    assert rows[0]["dsa_tier"] == "high"
    assert all("B*99:99" in r["error"] for r in rows[1:])


def test_panel_screen_with_an_unknown_allele_in_the_cohort(tables: Any) -> None:
    """One unknown allele fails only that person's pairs, with antibodies too (as without)."""
    panels = antibodies_by_recipient(["recipient_id", "specificity", "mfi"],
                                     [{"recipient_id": "R1", "specificity": "A1", "mfi": "3000"}],
                                     source="a.csv", tables=tables, require_recipient=True)
    geno = pd.DataFrame([
        ("R1", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01", ""),
        ("D1", "A*99:99+A*01:01^B*07:02+B*08:01^C*07:01+C*07:02", ""),
        ("D2", "A*02:01+A*01:01^B*07:02+B*08:01^C*07:01+C*07:02", "")],
        columns=["sample_id", "hla", "kir"])
    pairs = pd.DataFrame({"recipient_id": ["R1", "R1"], "donor_id": ["D1", "D2"]})
    out = assess_pairs(geno, pairs, tables=tables, antibodies=panels)
    assert out["status"].tolist() == ["error", "ok"]
    assert out["error"][0].startswith("unknown_allele: donor 'D1'")
    assert out["dsa_hits"][1] == "A1 3000"


def test_absent_drb3_carries_nothing(tables) -> None:
    """DRB3*NNNN: no DRB3 gene, so no DR52 (not 'untyped DRB3')."""
    s = DSAScreen(tables)
    res = s.assess([parse_antibody("DR52", 9000)],
                   parse_hla_genotype("DRB1*01:01+DRB1*08:01^DRB3*NNNN+DRB3*NNNN"))
    assert (res.tier, res.possible_text) == ("none", "")
    one = s.assess([parse_antibody("DR52", 9000)],
                   parse_hla_genotype("DRB1*03:01+DRB1*08:01^DRB3*01:01+DRB3*NNNN"))
    assert (one.tier, one.hits_text) == ("high", "DR52 9000")
