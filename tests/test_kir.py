"""KIR typing strings (kirmatch.kir): accepted inputs with their gene states, and
rejected inputs with the reason; the DKMS conventions (``|NEG``, KIR2DL5A/B
letters, ``NEW``, ``2DS4N``, retired names); and the one paralog merge."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

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
# KIR2DS4 variants
# ---------------------------------------------------------------------------

def test_kir2ds4_variant_rows_follow_domain_a20() -> None:
    # DOMAIN.md §A.20 names *003, *004 and *006 as deletion (2DS4N) alleles.
    assert {g for g, v in KIR2DS4_VARIANTS.items() if v == "deletion"} >= {
        "KIR2DS4*003", "KIR2DS4*004", "KIR2DS4*006"}
