"""KIR typing strings (kirmatch.kir): accepted inputs with their gene states, and
rejected inputs with the reason; the DKMS conventions (``|NEG``, KIR2DL5A/B
letters, ``NEW``, ``2DS4N``, retired names); the one paralog merge; and the
KIR features the models read (KIR3DL1 class under propagation: bug K1)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import kirmatch
from kirmatch.errors import KIRParseError, UnknownAlleleError
from kirmatch.kir import (
    KIR2DS4_VARIANTS,
    GeneState,
    KIRGeneTyping,
    kir_features,
    merge_gene_typings,
    parse_kir_genotype,
    parse_kir_value,
)
from kirmatch.options import Options

DATA = Path(__file__).parent / "data"
with open(DATA / "kir_cases.tsv", newline="") as fh:
    CASES = list(csv.DictReader(fh, delimiter="\t"))


def _split(text: str) -> list[str]:
    return [x for x in (text or "").split(";") if x.strip()]


def _genotypes(spec: str) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """``A*001/A*002+POS|A*003`` → alternatives of copies; ``POS`` = allele unknown."""
    return tuple(tuple(() if c == "POS" else tuple(c.split("/")) for c in alt.split("+"))
                 for alt in spec.split("|"))


def _meaning(t: KIRGeneTyping) -> tuple:
    """What a typing says (not how it was written: no warnings or unknown reason)."""
    return (t.gene, t.state, t.genotypes, t.variant, tuple(_meaning(p) for p in t.parts))


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<blank>" for c in CASES])
def test_accepts(tables, case) -> None:
    g = parse_kir_genotype(case["input"], tables)
    for gene in _split(case["present"]):
        assert g.gene(gene).state is GeneState.PRESENT, gene
    for gene in _split(case["absent"]):
        assert g.gene(gene).state is GeneState.ABSENT, gene
    for gene in _split(case["unknown"]):
        assert g.gene(gene).state is GeneState.UNKNOWN, gene
    for spec in _split(case["alleles"]):
        gene, copies = spec.split(":")
        assert g.gene(gene).genotypes == _genotypes(copies), case["fact"]


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<blank>" for c in CASES])
def test_round_trip_keeps_meaning(tables, case) -> None:
    g = parse_kir_genotype(case["input"], tables)
    again = parse_kir_genotype(g.to_string(), tables) if g.to_string() else g
    assert [_meaning(x) for x in again.genes] == [_meaning(x) for x in g.genes]


@pytest.mark.parametrize(("text", "error", "match"), [
    ("KIR9XX1", KIRParseError, "unknown KIR gene 'KIR9XX1'"),
    ("KIR2DL1*999", UnknownAlleleError, r"KIR2DL1\*999.*IPD-KIR 2\.13\.0"),
    ("KIR3DL1*00499", UnknownAlleleError, r"KIR3DL1\*00499"),
    ("KIR2DL1+", KIRParseError, "empty item"),
    ("KIR2DL1*001/KIR3DL1*001", KIRParseError, "mixes genes"),
    ("2DL1=POS;2DL1=NEG", KIRParseError, "KIR2DL1 given twice"),
    ("2DS4N=003;2DS4DEL=004", KIRParseError, r"KIR2DS4 \(2DS4N and 2DS4DEL\) given twice"),
    ("2DL1=POS;3DL1", KIRParseError, "GENE=VALUE"),
    ("2DL1=abc", KIRParseError, "not a KIR allele"),
    ("hla#3.58.0#KIR2DL1", KIRParseError, "not 'kir'"),
    # NEG and NA are whole genotype alternatives, never a copy or an allele.
    ("2DL1=003+NEG", KIRParseError, "must stand alone"),
    ("2DL1=003/NEG", KIRParseError, "must stand alone"),
    ("2DL1=003|NA", KIRParseError, "must stand alone"),
    # Paralog letters: only for KIR2DL5, and they must fit the column.
    ("3DL1=001A", KIRParseError, "unknown KIR allele suffix 'A'"),
    ("2DL5A=002B", KIRParseError, "KIR2DL5B allele, not KIR2DL5A"),
    ("2DL5=001B", UnknownAlleleError, r"KIR2DL5B\*001"),
    ("2DL5A=KIR2DL5B*002", KIRParseError, "not a KIR2DL5A allele"),
    # A well-formed name in neither 2.13.0 nor its history stays an error (§A.3 item 6).
    ("2DP1=999", UnknownAlleleError, r"KIR2DP1\*999"),
    ("3DL1=NEW;3DS1=KIR3DL1*NEW", KIRParseError, "not a KIR3DS1 allele"),
])
def test_rejects(tables, text, error, match) -> None:
    with pytest.raises(error, match=match):
        parse_kir_genotype(text, tables)


@pytest.mark.parametrize(("text", "bad"), [
    ("2DL1=POS;2DL5=001C", "001C"),
    ("2DL1=003|004+0x1", "0X1"),
    ("KIR2DL1+KIR2DL3*001/ABC", "ABC"),
])
def test_errors_name_the_value_and_position(tables, text, bad) -> None:
    with pytest.raises(KIRParseError) as err:
        parse_kir_genotype(text, tables)
    assert err.value.position == text.upper().index(bad)
    assert repr(text) in str(err.value) and f"(char {err.value.position})" in str(err.value)


def test_unknown_never_read_as_absent(tables) -> None:
    g = parse_kir_genotype("", tables)
    assert not g.typed
    assert all(x.state is GeneState.UNKNOWN for x in g.genes)
    # |NEG leaves the state unknown but the typing informative.
    assert parse_kir_genotype("2DL1=003|NEG", tables).typed


# ---------------------------------------------------------------------------
# Retired names: IPD-KIR allele history (reference_tables/kir_allele_history.tsv)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("gene", "value", "alleles", "warning"), [
    ("2DP1", "005", (("KIR2DP1*002",),),
     "kir_allele_renamed(KIR2DP1*005 -> KIR2DP1*0020110)"),
    ("2DP1", "006", (("KIR2DP1*001",),), "kir_allele_renamed(KIR2DP1*006 -> KIR2DP1*00108)"),
    ("3DP1", "046", (("KIR3DP1*003",),), "kir_allele_renamed(KIR3DP1*046 -> KIR3DP1*00320)"),
    ("2DS1", "KIR2DS1*007", (("KIR2DS1*005",),),
     "kir_allele_renamed(KIR2DS1*007 -> KIR2DS1*00502)"),
    ("2DL1", "026N", (("KIR2DL1*026",),), "kir_allele_renamed(KIR2DL1*026N -> KIR2DL1*026)"),
    # Withdrawn: no current allele, so that copy's allele is unknown; the gene
    # was typed, so it stays present.
    ("3DL1", "003", ((),), "kir_allele_unknown(KIR3DL1*003)"),
    ("2DS4", "002", ((),), "kir_allele_unknown(KIR2DS4*002)"),
    ("2DL5B", "0020105", ((),), "kir_allele_unknown(KIR2DL5B*0020105)"),
])
def test_retired_names_are_mapped_with_a_warning(tables, gene, value, alleles,
                                                 warning) -> None:
    t = parse_kir_value(gene, value, tables)
    assert t.state is GeneState.PRESENT
    assert (t.genotypes or (((),),)) == (alleles,)  # gene level: one copy, allele unknown
    assert t.warnings == (warning,)
    # The warning reaches the genotype and the pair output.
    g = parse_kir_genotype(f"{gene}={value}", tables)
    assert warning in g.warnings
    assert warning in kir_features(g, tables).warnings


def test_current_names_win_over_history(tables) -> None:
    # KIR3DS1*049N was renamed KIR3DS1*04901N, which 2.13.0 still reads as *049N.
    t = parse_kir_value("3DS1", "049N", tables)
    assert t.genotypes == ((("KIR3DS1*049N",),),) and t.warnings == ()


# ---------------------------------------------------------------------------
# The one paralog/variant merge
# ---------------------------------------------------------------------------

TWO_COLUMNS = [
    # (column A, value A, column B, value B, state, value_string with paralog letters)
    ("2DL5A", "001", "2DL5B", "002", "present", "001A+002B"),
    ("2DL5A", "001", "2DL5B", "NEG", "present", "001A"),
    ("2DL5A", "NEG", "2DL5B", "002", "present", "002B"),
    ("2DL5A", "001", "2DL5B", "NA", "present", "001A|001A+POS"),
    ("2DL5A", "POS", "2DL5B", "002", "present", "002B+POS"),
    ("2DL5A", "POS", "2DL5B", "NEG", "present", "POS"),
    ("2DL5A", "NEG", "2DL5B", "NEG", "absent", "NEG"),
    ("2DL5A", "NEG", "2DL5B", "NA", "unknown", "NA"),
    ("2DL5A", "001|NEG", "2DL5B", "NEG", "unknown", "001A|NEG"),
    ("2DL5A", "001|NEG", "2DL5B", "002", "present", "001A+002B|002B"),
    ("2DS4", "001", "2DS4N", "006", "present", "001+006"),
    ("2DS4", "NEG", "2DS4N", "POS", "present", "POS"),
    ("2DS4", "NEG", "2DS4N", "NEG", "absent", "NEG"),
    ("2DS4", "NA", "2DS4N", "NEG", "unknown", "NA"),
    ("2DS4", "004+003|006+010", "2DS4N", "NEG", "present", "003+004|006+010"),
]


@pytest.mark.parametrize(("col_a", "val_a", "col_b", "val_b", "state", "value"), TWO_COLUMNS)
def test_merge_gene_typings_two_columns(tables, col_a, val_a, col_b, val_b, state,
                                        value) -> None:
    a, b = parse_kir_value(col_a, val_a, tables), parse_kir_value(col_b, val_b, tables)
    for parts in ([a, b], [b, a]):  # the order of the columns does not matter
        m = merge_gene_typings(a.gene, parts)
        assert m.state.value == state
        assert m.value_string(paralog_letters=True) == value
    # The per-gene string form and the matrix reader use the same merge.
    g = parse_kir_genotype(f"{col_a}={val_a};{col_b}={val_b}", tables)
    assert _meaning(g.gene(a.gene)) == _meaning(merge_gene_typings(a.gene, [a, b]))
    from kirmatch.readers import merge_typings

    assert merge_typings is merge_gene_typings


def test_merge_keeps_the_deletion_status_per_part(tables) -> None:
    g = parse_kir_genotype("2DS4=001;2DS4N=006", tables)
    t = g.gene("KIR2DS4")
    assert [(p.alias, p.value_string()) for p in t.parts] == [("KIR2DS4", "001"),
                                                             ("KIR2DS4N", "006")]
    assert g.to_string().split(";")[8:10] == ["KIR2DS4=001", "KIR2DS4N=006"]


def test_merge_gives_up_detail_not_correctness_beyond_the_cap(tables) -> None:
    many = "|".join(f"{a:03d}" for a in range(1, 10))
    m = merge_gene_typings("KIR3DL1", [parse_kir_value("3DL1", many, tables),
                                       parse_kir_value("3DL1", many, tables)])
    assert m.state is GeneState.PRESENT and m.genotypes is None


# ---------------------------------------------------------------------------
# KIR2DS4 full length (rule 17 reads KIRFeatures.kir2ds4_full_length)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "full_length"), [
    ("2DS4=001;2DS4N=006", True),
    ("2DS4=NEG;2DS4N=006", False),
    ("2DS4=NEG;2DS4N=POS", False),
    ("2DS4=NEG;2DS4N=NEG", False),
    ("2DS4=POS;2DS4N=NEG", None),  # a gene-level copy could be either variant
    ("2DS4=004+003|006+010;2DS4N=NEG", False),  # every allele a deletion allele
    ("2DS4=003|NEG", False),
    ("2DS4=001|NEG", None),
    ("2DS4=008", None),  # *008 is not in the curated variant rows: not guessed
    ("2DS4=008+001", True),
    ("2DS4=NA", None),
    ("2DS4FL=POS", True),
    ("KIR2DS4*004+KIR2DS4*001", True),
    ("KIR2DS4*004+2DS4N", False),
    ("2DS4=001/003", None),
])
def test_kir2ds4_full_length(tables, text, full_length) -> None:
    f = kir_features(parse_kir_genotype(text, tables), tables)
    c = f.kir2ds4_full_length
    assert (c.value if c.known else None) is full_length
    if full_length is None:
        assert c.reason in ("kir2ds4_variant_unknown", "kir_gene_unknown")


def test_kir2ds4_column_and_allele_disagree(tables) -> None:
    g = parse_kir_genotype("2DS4N=001", tables)
    assert "kir2ds4_variant_conflict(KIR2DS4*001 typed as KIR2DS4N)" in g.warnings
    assert not kir_features(g, tables).kir2ds4_full_length.known


def test_kir2ds4_variant_rows_follow_domain_a20() -> None:
    # DOMAIN.md §A.20 names *003, *004 and *006 as deletion (2DS4N) alleles.
    assert {g for g, v in KIR2DS4_VARIANTS.items() if v == "deletion"} >= {
        "KIR2DS4*003", "KIR2DS4*004", "KIR2DS4*006"}


# ---------------------------------------------------------------------------
# K1: KIR3DL1 alleles outside the class table propagate over H, L and N
# ---------------------------------------------------------------------------

HLA_B0702 = "A*01:01+A*01:01^B*07:02+B*07:02^C*01:02+C*01:02"  # Bw6
HLA_B5701 = "A*01:01+A*01:01^B*57:01+B*57:01^C*01:02+C*01:02"  # Bw4-80I


def _pair(tables, recipient_hla: str, donor_kir: str, **opts):
    return kirmatch.assess_pair({"id": "R", "hla": recipient_hla},
                                {"id": "D", "hla": HLA_B0702, "kir": donor_kir},
                                Options(**opts), tables=tables)


def test_k1_unclassified_allele_with_bw6_recipient(tables) -> None:
    unclassified = _pair(tables, HLA_B0702, "3DL1=095;3DS1=NEG")
    gene_level = _pair(tables, HLA_B0702, "3DL1=POS;3DS1=NEG")
    assert unclassified.values["kir3dl1_hlab"] == gene_level.values["kir3dl1_hlab"] \
        == "non-inhibiting"
    assert "kir3dl1_unclassified_allele(KIR3DL1*095)" in unclassified.warnings


def test_k1_unclassified_allele_where_the_class_matters(tables) -> None:
    r = _pair(tables, HLA_B5701, "3DL1=095;3DS1=NEG")
    assert r.values["kir3dl1_hlab"] is None
    assert r.unknown["kir3dl1_hlab"] == "kir3dl1_unclassified_allele"
    assert "kir3dl1_unclassified_allele(KIR3DL1*095)" in r.warnings
    assert "unknown(kir3dl1_hlab: kir3dl1_unclassified_allele)" in r.warnings


@pytest.mark.parametrize(("kir", "hla", "expected"), [
    ("3DL1=005+095;3DS1=NEG", HLA_B5701, "weak inhibiting"),  # L beats any allele
    ("3DL1=005+NEW;3DS1=NEG", HLA_B5701, "weak inhibiting"),  # NEW too
    ("3DL1=005|NEG;3DS1=NEG", HLA_B0702, "non-inhibiting"),  # L or absent: same answer
    ("3DL1=095|NEG;3DS1=013", HLA_B0702, "non-inhibiting"),
    ("3DL1=001+NEW;3DS1=NEG", HLA_B5701, None),  # the new allele could be L
    ("3DL1=001|NEG;3DS1=NEG", HLA_B5701, None),  # H or absent (N)
])
def test_kir3dl1_hlab_propagates(tables, kir, hla, expected) -> None:
    assert _pair(tables, hla, kir).values["kir3dl1_hlab"] == expected


def test_k1_exclude_null_kir3dl1(tables) -> None:
    kir = "2DL1=NEG;2DL2=NEG;2DL3=NEG;3DL1=095;3DS1=NEG"
    # No Bw4 in the recipient: KIR3DL1 never counts, whatever the class of *095.
    assert _pair(tables, HLA_B0702, kir, exclude_null_kir3dl1=True).values["cf_ikir"] == 0
    # Bw4: *095 counts if H or L, not if N: unknown, with the reason.
    r = _pair(tables, HLA_B5701, kir, exclude_null_kir3dl1=True)
    assert r.values["cf_ikir"] is None
    assert r.unknown["cf_ikir"] == "kir3dl1_unclassified_allele"
    # L plus an unclassified allele always counts.
    r = _pair(tables, HLA_B5701, kir.replace("095", "005+095"), exclude_null_kir3dl1=True)
    assert r.values["cf_ikir"] == 1


@pytest.mark.parametrize(("kir", "expected", "reason"), [
    ("2DL1=003+NEW", "R245", None),  # any R245 allele settles it
    ("2DL1=004+NEW", None, "gene_level_kir"),  # the new allele could be R245
    ("2DL1=003|NEG", None, "kir_gene_unknown"),  # R245 or absent
    ("2DL1=004+004", "C245", None),
])
def test_kir2dl1_245_with_unknown_copies(tables, kir, expected, reason) -> None:
    c = kir_features(parse_kir_genotype(kir, tables), tables).kir2dl1_245
    assert (c.value if c.known else None) == expected
    if reason:
        assert c.reason == reason
