"""Boundary tables for each model function (every branch of rules 4-12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirmatch import scores as s
from kirmatch.propagation import Unknown

F = frozenset
ALL4 = F({"KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR3DL1"})


@pytest.mark.parametrize(("donor", "recipient", "a3", "gvh", "hvg"), [
    ({"C1"}, {"C1"}, False, set(), set()),
    ({"C1", "C2"}, {"C1"}, False, {"C2"}, set()),
    ({"C1"}, {"C1", "C2", "Bw4"}, False, set(), {"C2", "Bw4"}),
    ({"A3/A11", "C1"}, {"C1"}, False, set(), set()),
    ({"A3/A11", "C1"}, {"C1"}, True, {"A3/A11"}, set()),
    ({"Bw4"}, set(), False, {"Bw4"}, set()),
])
def test_ligand_mismatch(donor, recipient, a3, gvh, hvg) -> None:
    g, h = s.ligand_mismatch(F(donor), F(recipient), include_a3a11=a3)
    assert (g, h) == (F(gvh), F(hvg))
    assert not g & h


@pytest.mark.parametrize(("genes", "rlig", "missing"), [
    (ALL4, {"C1", "C2", "Bw4"}, set()),
    (ALL4, {"C1"}, {"C2", "Bw4"}),
    ({"KIR2DL2", "KIR2DL3"}, {"C2"}, {"C1"}),  # one group, counted once
    ({"KIR2DL1"}, {"C1"}, {"C2"}),
    (set(), set(), set()),
    ({"KIR3DL1"}, {"A3/A11"}, {"Bw4"}),
])
def test_missing_ligands(genes, rlig, missing) -> None:
    assert s.missing_ligands(F(genes), F(rlig)) == F(missing)


@pytest.mark.parametrize(("genes", "rlig", "a3", "out"), [
    ({"KIR2DL2", "KIR2DL3"}, {"C2"}, False, {"KIR2DL2", "KIR2DL3"}),
    ({"KIR3DL2"}, set(), False, set()),
    ({"KIR3DL2"}, set(), True, {"KIR3DL2"}),
    ({"KIR3DL2"}, {"A3/A11"}, True, set()),
])
def test_receptor_ligand(genes, rlig, a3, out) -> None:
    assert s.receptor_ligand_mismatches(F(genes), F(rlig), include_a3a11=a3) == F(out)


@pytest.mark.parametrize(("genes", "lig", "bc1", "cf", "w"), [
    (ALL4, {"C1", "C2", "Bw4"}, False, 4, 3.75),
    (ALL4, {"C1"}, False, 2, 1.75),
    (ALL4, {"C2"}, False, 2, 1.5),  # 2DL2 with C2 only: functional, weight 0.5
    (ALL4, {"C2"}, True, 3, 2.75),  # B-C1 licenses 2DL2 and 2DL3
    ({"KIR2DL3"}, {"C2"}, False, 0, 0.0),
    ({"KIR3DL1"}, {"Bw4"}, False, 1, 1.0),
    (set(), {"C1", "C2", "Bw4"}, True, 0, 0.0),
])
def test_cf_ikir_and_weighted(genes, lig, bc1, cf, w) -> None:
    assert s.cf_ikir(F(genes), F(lig), bc1) == cf
    assert s.ikir_score_weighted(F(genes), F(lig), bc1) == w


@pytest.mark.parametrize(("genes", "cen", "tel", "score_group", "ab"), [
    # DOMAIN C.16 cross-checks and C.8 v1-vs-MiDAS disagreements
    ({"KIR2DL3", "KIR2DS2", "KIR3DL1", "KIR2DS4", "KIR2DS1"}, "A/B", "A/B", (2, "Better"), "B/x"),
    ({"KIR2DS2", "KIR2DL2", "KIR2DS4", "KIR3DS1", "KIR2DS1"}, "B/B", "B/B", (4, "Best"), "B/x"),
    ({"KIR2DL3", "KIR3DL1", "KIR2DS4"}, "A/A", "A/A", (0, "Neutral"), "A/A"),
    ({"KIR2DS2"}, "B/B", "B/B", (4, "Best"), "B/x"),
    ({"KIR2DL3", "KIR3DL1"}, "A/A", "B/B", (2, "Better"), "A/A"),
    ({"KIR2DL3", "KIR2DS4", "KIR3DS1", "KIR2DS1"}, "A/A", "B/B", (2, "Better"), "B/x"),
    ({"KIR2DL3", "KIR2DL2", "KIR3DL1", "KIR2DS4"}, "A/B", "A/A", (1, "Neutral"), "B/x"),
])
def test_motifs(genes, cen, tel, score_group, ab) -> None:
    g = F(genes)
    assert s.cen_motif(g) == cen
    assert s.tel_motif(g) == tel
    assert s.b_content(g) == score_group
    assert s.kir_ab_genotype(g) == ab


def test_cen_unclassifiable() -> None:
    assert s.cen_motif(F({"KIR3DL1"})) == Unknown("cen_unclassifiable")
    assert s.b_content(F({"KIR3DL1"})) == Unknown("cen_unclassifiable")


@pytest.mark.parametrize(("has", "group", "out"), [
    (False, "C1/C1", "2DS1-"), (False, "-/-", "2DS1-"),
    (True, "C1/C1", "2DS1+/C1+"), (True, "C1/C2", "2DS1+/C1+"), (True, "C1/-", "2DS1+/C1+"),
    (True, "C2/C2", "2DS1+/C2C2"), (True, "C2/-", "2DS1+/C2C2"),
])
def test_kir2ds1(has, group, out) -> None:
    assert s.kir2ds1_status(has, group) == out


def test_kir2ds1_unknown() -> None:
    assert isinstance(s.kir2ds1_status(True, "-/-"), Unknown)


@pytest.mark.parametrize(("cls", "b", "out"), [
    ("H", "Bw4-80I", "strong inhibiting"), ("H", "Bw4-80T", "weak inhibiting"),
    ("H", "Bw6", "non-inhibiting"), ("L", "Bw4-80I", "weak inhibiting"),
    ("L", "Bw4-80T", "strong inhibiting"), ("L", "Bw6", "non-inhibiting"),
    ("N", "Bw4-80I", "non-inhibiting"), ("N", "Bw4-80T", "non-inhibiting"),
    ("N", "Bw6", "non-inhibiting"),
])
def test_kir3dl1_hlab(cls, b, out) -> None:
    assert s.kir3dl1_hlab(cls, b) == out


def test_every_model_has_a_test() -> None:
    # completeness meta-test: every public model function appears in this module
    src = Path(__file__).read_text()
    for name in s.__all__:
        if name[0].islower():
            assert f"s.{name}(" in src, name


@pytest.mark.parametrize(("donor", "recipient", "out"), [
    (ALL4, ALL4, set()),
    ({"KIR2DL1", "KIR2DL2", "KIR3DL1"}, {"KIR2DL1", "KIR2DL3", "KIR3DL1"}, {"KIR2DL2"}),
    ({"KIR3DL2", "KIR2DS1"}, set(), set()),  # only the four iKIR count
    (ALL4, set(), ALL4),
])
def test_gene_gene(donor, recipient, out) -> None:
    assert s.gene_gene_mismatches(F(donor), F(recipient)) == F(out)


# ---------------------------------------------------------------------------
# Rule 16 (DOMAIN.md §A.19): boundary tables of the comparison functions
# ---------------------------------------------------------------------------

def _L(gvh: int, hvg: int, shared: bool) -> object:
    from kirmatch.hlamatch import LocusComparison

    return LocusComparison(gvh, hvg, shared)


MATCH = (0, 0, True)


@pytest.mark.parametrize(("loci", "totals", "relation"), [
    ([MATCH] * 5, (0, 0), "identical"),
    ([(1, 1, True), MATCH, (1, 0, True), (0, 1, True), MATCH], (2, 2), "haploidentical"),
    ([(2, 2, False), MATCH, MATCH, MATCH, MATCH], (2, 2), "not haploidentical"),
    # homozygous recipient whose allele the donor carries: 0 GvH, 1 HvG, shared
    ([(0, 1, True)] * 5, (0, 5), "haploidentical"),
    # a recipient null allele: one present allele, not shared
    ([(1, 2, False), MATCH, MATCH, MATCH, MATCH], (1, 2), "not haploidentical"),
    ([(2, 2, False)] * 5, (10, 10), "not haploidentical"),
])
def test_hla_totals_and_relation(loci, totals, relation) -> None:
    cmp = [_L(*x) for x in loci]
    assert s.hla_mismatch_totals(*cmp) == totals
    assert s.hla_relation(*cmp) == relation


@pytest.mark.parametrize(("drb1", "dqb1", "out"), [
    ((1, 0, True), MATCH, True), ((0, 1, True), MATCH, True), ((2, 2, False), MATCH, True),
    (MATCH, MATCH, False), ((1, 1, True), (0, 1, True), False), ((1, 1, True), (1, 0, True),
                                                                   False),
])
def test_drb1_mm_dqb1_match(drb1, dqb1, out) -> None:
    assert s.drb1_mm_dqb1_match(_L(*drb1), _L(*dqb1)) is out


@pytest.mark.parametrize(("dpb1", "r", "d", "out"), [
    (MATCH, 3, 1, "match"),
    (MATCH, "unassigned", "unassigned", "match"),
    ((1, 1, True), 3, 3, "permissive"),
    ((1, 1, True), 2, 2, "permissive"),
    ((0, 1, True), 3, 1, "non-permissive HvG"),     # §A.19: donor's group lower
    ((1, 0, True), 1, 3, "non-permissive GvH"),     # recipient's group lower
    ((1, 1, True), 2, 3, "non-permissive GvH"),
    ((1, 1, True), "unassigned", 3, Unknown("unclassified_allele")),
])
def test_dpb1_tce(dpb1, r, d, out) -> None:
    assert s.dpb1_tce(_L(*dpb1), r, d) == out


@pytest.mark.parametrize(("genes", "lig", "bc1", "weights"), [
    # DOMAIN §A.9 weight table, one branch per row
    (ALL4, {"C1", "C2", "Bw4"}, False, (1.0, 1.0, 0.75, 1.0)),
    (ALL4, {"C2"}, False, (1.0, 0.5, 0.0, 0.0)),     # 2DL2 with C2 only: 0.5
    (ALL4, {"C2"}, True, (1.0, 1.0, 0.75, 0.0)),     # B-C1 licenses 2DL2 (1.0) and 2DL3
    (ALL4, {"A3/A11"}, False, (0.0, 0.0, 0.0, 0.0)),
    ({"KIR3DL1"}, {"C1", "C2", "Bw4"}, False, (0.0, 0.0, 0.0, 1.0)),  # not carried: 0
])
def test_ikir_weights(genes, lig, bc1, weights) -> None:
    w = s.ikir_weights(F(genes), F(lig), bc1)
    assert tuple(w.values()) == weights and tuple(w) == s.IKIR
    # the rule-8 columns are the count of non-zero weights and their sum
    assert s.cf_ikir(F(genes), F(lig), bc1) == sum(1 for x in weights if x)
    assert s.ikir_score_weighted(F(genes), F(lig), bc1) == sum(weights)


# Rule 17 (DOMAIN §A.20), worked by hand. Donor genes: KIR3DL2 is there unless
# typed absent, KIR2DS4 only for a full-length allele; recipient ligands: C1/C2
# from HLA-C, Bw4 from HLA-B only, A3/A11 for A*03 or A*11, A11 for A*11.
@pytest.mark.parametrize(("genes", "lig", "counts", "scores"), [
    # CTUtools score_krieger's own example row: 2DL1, 2DL2, 3DL2, 2DS1, 2DS4, 2DS5
    # (3DL1 and 2DL3 NEG), C1/C1, Bw6/Bw4-80T, A*01:01 homozygous:
    # 2DL2-C1 iKIR; 2DL1 (no C2) and 3DL2 (no A3/A11) mKIR; no activating ligand.
    ({"KIR2DL1", "KIR2DL2", "KIR3DL2", "KIR2DS1", "KIR2DS4", "KIR2DS5"}, {"C1", "Bw4"},
     (1, 2, 0), (1, 3, 2.78)),
    # every inhibitory pair matched: -5 + 0 + 0; 0.80 x 5 = 4.00
    ({"KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR3DL1", "KIR3DL2"},
     {"C1", "C2", "Bw4", "A3/A11"}, (5, 0, 0), (-5, 5, 4.0)),
    # every inhibitory pair missing: 0.99 x 5 = 4.95
    ({"KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR3DL1", "KIR3DL2"}, set(), (0, 5, 0), (5, 5, 4.95)),
    # the four activating pairs, all with their ligand (C2 and A*11): 0.14 x 4 = 0.56
    ({"KIR2DS1", "KIR2DS2", "KIR2DS4", "KIR2DS5"}, {"C2", "A11", "A3/A11"},
     (0, 0, 4), (4, 0, 0.56)),
    # A*03 is a KIR3DL2 ligand but not a KIR2DS2/KIR2DS4 one
    ({"KIR3DL2", "KIR2DS2", "KIR2DS4"}, {"A3/A11"}, (1, 0, 0), (-1, 1, 0.8)),
    # activating KIR without ligand adds nothing; no KIR at all gives zeros
    ({"KIR2DS1", "KIR2DS5"}, {"C1"}, (0, 0, 0), (0, 0, 0.0)),
    (set(), {"C1", "C2", "Bw4", "A3/A11", "A11"}, (0, 0, 0), (0, 0, 0.0)),
    # 2DL1-C2 iKIR, 2DL3 (no C1) and 3DL1 mKIR, 2DS1-C2 aKIR:
    # KIR-L -1 + 2 + 1 = 2; imKIR 3; wKIR 0.80 + 0.14 + 1.98 = 2.92
    ({"KIR2DL1", "KIR2DL3", "KIR3DL1", "KIR2DS1"}, {"C2"}, (1, 2, 1), (2, 3, 2.92)),
])
def test_krieger(genes, lig, counts, scores) -> None:
    assert s.krieger_counts(F(genes), F(lig)) == counts
    assert s.krieger_scores(F(genes), F(lig)) == scores


def test_krieger_weights_are_an_option() -> None:
    genes, lig = F({"KIR2DL1", "KIR2DL3", "KIR3DL1", "KIR2DS1"}), F({"C2"})
    assert s.krieger_scores(genes, lig, (1.0, 1.0, 1.0)) == (2, 3, 4.0)
    assert s.WKIR_WEIGHTS == (0.80, 0.14, 0.99)


@pytest.mark.parametrize(("r", "d", "out"), [
    ("M/T", "M/T", True), ("M/M", "M/T", False), ("T/T", "T/T", True), ("T/T", "M/M", False),
])
def test_b_leader_match(r, d, out) -> None:
    assert s.b_leader_match(r, d) is out
