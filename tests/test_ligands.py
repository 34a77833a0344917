"""Rule 1 (per-allele calls), rule 2 (resolution, ambiguity policies) and rule 3
(genotype summary) through kirmatch.ligands."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kirmatch.errors import PyardUnavailableError, UnknownAlleleError
from kirmatch.hla import parse_hla_genotype, parse_hla_typing
from kirmatch.ligands import LigandResolver
from kirmatch.options import Options

DATA = Path(__file__).parent / "data"
with open(DATA / "ligand_cases.tsv", newline="") as fh:
    CASES = list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def resolver(tables):
    return LigandResolver(tables, Options())


@pytest.mark.parametrize("case", CASES, ids=[c["allele"] for c in CASES])
def test_allele_calls(resolver, case: dict[str, str]) -> None:
    call = resolver.resolve_typing(parse_hla_typing(case["allele"]))
    assert call.status == "resolved"
    assert call.call == case["ligand"]
    assert call.b_c1 is (case["b_c1"] == "true")
    assert call.a3a11 is (case["a3a11"] == "true")


def test_null_allele_warns(resolver) -> None:
    call = resolver.resolve_typing(parse_hla_typing("A*01:01:01:02N"), "donor")
    assert call.expression == "null"
    assert "null_allele(donor A*01:01:01:02N)" in call.warnings


def test_expression_variant(resolver) -> None:
    call = resolver.resolve_typing(parse_hla_typing("A*24:02:01:02L"), "donor")
    assert call.call == "Bw4-80I"
    assert call.expression == "flagged:L"
    assert "expression_variant(donor A*24:02:01:02L)" in call.warnings


@pytest.mark.parametrize("name", ["A*99:99", "C*07:9999", "B*07:02:01:999", "C*99", "C*99:XX"])
def test_unknown_allele_is_an_error(resolver, name: str) -> None:
    with pytest.raises(UnknownAlleleError, match=r"not in IPD-IMGT/HLA 3\.58\.0"):
        resolver.resolve_typing(parse_hla_typing(name))


def test_one_field_ambiguous_under_strict(resolver) -> None:
    call = resolver.resolve_typing(parse_hla_typing("C*07"), "recipient")
    assert call.status == "ambiguous"
    assert call.call is None
    assert set(call.candidates) >= {"C1", "C2"}
    assert any(w.startswith("ambiguous_typing(recipient C*07: ") for w in call.warnings)
    assert "null_in_expansion(recipient C*07)" in call.warnings


def test_unanimous_group_resolves(resolver) -> None:
    # C*18: every covered expressed protein is C2 in 3.58.0 (DOMAIN.md C.2).
    assert resolver.resolve_typing(parse_hla_typing("C*18")).call == "C2"
    assert resolver.resolve_typing(parse_hla_typing("B*73:XX")).call == "Bw6"


def test_majority_policy(tables) -> None:
    r = LigandResolver(tables, Options(ambiguity_policy="majority"))
    call = r.resolve_typing(parse_hla_typing("C*07"), "donor")
    assert call.call == "C1"
    assert "resolved_by_majority(donor C*07)" in call.warnings
    # B*38: 80I 82/126 vs 80T 43 -> more than half is 80I.
    assert r.resolve_typing(parse_hla_typing("B*38")).call == "Bw4-80I"


def test_cwd_policy(tables) -> None:
    r = LigandResolver(tables, Options(ambiguity_policy="cwd"))
    call = r.resolve_typing(parse_hla_typing("C*07"), "donor")
    # the CWD C*07 proteins include C*07:07 (C2) and C*07:01 (C1): still ambiguous
    assert call.status in ("ambiguous", "resolved")
    if call.status == "resolved":
        assert "resolved_by_cwd(donor C*07)" in call.warnings


def test_allele_list(resolver) -> None:
    agree = resolver.resolve_slot(parse_hla_genotype("C*07:01/C*07:02").loci[0]
                                  .alternatives[0][0])
    assert agree.call == "C1"
    disagree = resolver.resolve_slot(parse_hla_genotype("C*07:01/C*07:07").loci[0]
                                     .alternatives[0][0])
    assert disagree.status == "ambiguous" and disagree.candidates == ("C1", "C2")


def test_g_and_p_groups(resolver) -> None:
    assert resolver.resolve_typing(parse_hla_typing("C*07:01:01G")).call == "C1"
    assert resolver.resolve_typing(parse_hla_typing("B*57:01P")).call == "Bw4-80I"


@pytest.mark.parametrize(("typing", "has_null"), [
    ("C*02:02:02G", True),    # holds C*02:150N, C*02:193N, C*02:218N (other proteins)
    ("A*02:01:01G", True),    # holds A*02:43N, A*02:83N ... ; protein A*02:01 has no null
    ("A*01:01:01G", True),    # holds A*01:01:01:02N
    ("A*01:01P", False),      # a P group has expressed members only (hla_nom_p.txt)
    ("C*02:02P", False),
])
def test_group_null_warning_follows_its_members(resolver, tables, typing: str,
                                                has_null: bool) -> None:
    """Rule 2 (§A.3 items 2-3): a G or P group expands to its members in
    hla_nom_g.txt / hla_nom_p.txt; nulls among them are left out with
    ``null_in_expansion``, and only then (not the named protein's nulls)."""
    members = (tables.g_group_members if typing.endswith("G") else
               tables.p_group_members)(typing)
    assert any(not a.expressed for a in members) is has_null   # the table's fact
    call = resolver.resolve_typing(parse_hla_typing(typing), "recipient")
    assert call.status == "resolved"
    assert (f"null_in_expansion(recipient {typing})" in call.warnings) is has_null


def test_groups_named_after_a_null_allele(resolver, tables) -> None:
    """G groups named after a null allele are groups of the release (rule-16
    expansion takes them): with an expressed member (A*11:403:01G holds
    A*11:403N and A*11:441) the call is the expressed proteins' (rule 2.3),
    nulls left out with ``null_in_expansion``; of null alleles only
    (B*44:23:01G), the typing is a null allele (rule 1)."""
    mixed = tables.g_group_members("A*11:403:01G")
    assert {a.allele: a.expressed for a in mixed} == {"A*11:403N": False, "A*11:441": True}
    call = resolver.resolve_typing(parse_hla_typing("A*11:403:01G"), "donor")
    want = resolver.resolve_typing(parse_hla_typing("A*11:441"), "donor")
    assert (call.status, call.call, call.proteins) == ("resolved", want.call, ("A*11:441",))
    assert "null_in_expansion(donor A*11:403:01G)" in call.warnings
    assert not any(a.expressed for a in tables.g_group_members("B*44:23:01G"))
    null = resolver.resolve_typing(parse_hla_typing("B*44:23:01G"), "donor")
    assert (null.status, null.call, null.expression) == ("resolved", "null", "null")
    assert not any(w.startswith("null_in_expansion") for w in null.warnings)


@pytest.mark.parametrize("typing", ["C*02:02:01G", "A*01:01:99G", "A*01:04P"])
def test_a_group_the_release_lacks_is_unknown(resolver, tables, typing: str) -> None:
    """Rule 2 item 6: a well-formed group name that is no group of 3.58.0 is
    ``unknown_allele``, even when alleles have its fields (C*02:02:01 is in no G
    group; A*01:04 is null, so in no P group), as expanding it for rule 16 says."""
    from kirmatch.expand import expand_typing

    assert tables.hla_alleles_with_prefix(typing[:-1])     # the fields exist
    with pytest.raises(UnknownAlleleError, match=r"not in IPD-IMGT/HLA 3\.58\.0"):
        resolver.resolve_typing(parse_hla_typing(typing))
    with pytest.raises(UnknownAlleleError):
        expand_typing(parse_hla_typing(typing), tables)


@pytest.mark.parametrize(("antigen", "call"), [("B5102", "Bw4-80I"), ("A2403", "Bw4-80I"),
                                               ("B3901", "Bw6")])
def test_four_digit_serologic_antigens(resolver, tables, antigen: str, call: str) -> None:
    """§A.3: a serology typing expands to the alleles mapped to the antigen
    (rel_dna_ser.txt): the associated antigens with four digits (A*24:03 is
    A2403 there) are typings too, as they are antibody specificities."""
    from kirmatch.expand import expand_typing

    t = parse_hla_typing(antigen)
    assert (t.name, t.kind.value) == (antigen, "serology")
    assigned = tables.alleles_assigned(antigen)
    assert assigned and [a.allele for a in expand_typing(t, tables).alleles] == list(assigned)
    assert resolver.resolve_typing(t).call == call


def test_a_four_digit_name_that_is_no_antigen(resolver, tables) -> None:
    """``A2402`` (an allele written without ``*``) is read as a serologic name
    and is no antigen of the release: unknown_allele, saying it is no antigen
    (not that the reference tables are too old)."""
    from kirmatch.errors import UnknownAntigenError
    from kirmatch.expand import expand_typing

    t = parse_hla_typing("A2402")
    for expand in (resolver.resolve_typing, lambda x: expand_typing(x, tables)):
        with pytest.raises(UnknownAntigenError, match=r"unknown antigen 'A2402': not an HLA "
                                                      r"antigen") as err:
            expand(t)
        assert err.value.code == "unknown_allele"


def test_v2_names(resolver) -> None:
    assert resolver.resolve_typing(parse_hla_typing("A*2402")).call == "Bw4-80I"
    assert resolver.resolve_typing(parse_hla_typing("Cw*0702")).call == "C1"


def test_mac_without_data_is_unknown(resolver) -> None:
    call = resolver.resolve_typing(parse_hla_typing("C*01:AWFCH"), "recipient")
    assert call.status == "unknown"
    assert call.reason == "mac_unavailable"
    assert "kirmatch data build" in call.note


def test_serology_from_the_shipped_tables(tables) -> None:
    """A serological typing is the alleles assigned the antigen (§A.3), from the
    shipped antigen table: no py-ard needed (rule 13 v2 / issue: first serology
    typing < 1 s)."""
    r = LigandResolver(tables, Options(), None)
    b57 = r.resolve_typing(parse_hla_typing("B57"))
    assert b57.status == "ambiguous" and "Bw4-80I" in b57.candidates
    assert r.resolve_typing(parse_hla_typing("B73")).call == "Bw6"
    with pytest.raises(UnknownAlleleError):
        r.resolve_typing(parse_hla_typing("B99"))


def summary(tables, gl: str, **opts):
    r = LigandResolver(tables, Options(**opts))
    return r.summarize(r.resolve_genotype(parse_hla_genotype(gl), "person"))


@pytest.mark.parametrize(
    ("gl", "c_group", "b_class", "ligands"),
    [
        ("A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01", "C1/C2", "Bw4-80T", "Bw4;C1;C2"),
        ("A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04", "C1/C1", "Bw6", "C1"),
        ("A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02", "C1/C2", "Bw4-80I",
         "A3/A11;Bw4;C1;C2"),
        # DOMAIN.md C.16 cross-checks
        ("A*01:01^B*07:02+B*08:02^C*02:03+C*07:59", "C1/C2", "Bw4-80T", None),
        ("A*01:01^B*07:02+B*07:36^C*04:10+C*05:50", "C2/C2", "Bw4-80I", None),
        ("A*01:01^B*07:02+B*39:15^C*01:02", "C1/C1", "Bw6", None),
        # null and unclassified alleles
        ("A*01:01^B*41:05+B*07:02^C*04:09N+C*07:02", "C1/-", "Bw6", "C1"),
        # A*24:04 is not Bw4; A*25 only with a25_bw4
        ("A*24:04+A*25:01^B*07:02^C*07:02", "C1/C1", "Bw6", "C1"),
    ],
)
def test_genotype_summary(tables, gl, c_group, b_class, ligands) -> None:
    s = summary(tables, gl)
    assert s.c_group == c_group
    assert s.b_class == b_class
    if ligands is not None:
        assert ";".join(sorted(s.ligands)) == ligands


def test_hla_a_bw4_options(tables) -> None:
    gl = "A*24:02+A*25:01^B*07:02^C*07:02"
    assert "Bw4" in summary(tables, gl).ligands
    assert "Bw4" not in summary(tables, gl, hla_a_bw4=False).ligands
    gl25 = "A*25:01+A*01:01^B*07:02^C*07:02"
    assert "Bw4" not in summary(tables, gl25).ligands
    assert "Bw4" in summary(tables, gl25, a25_bw4=True).ligands
    assert "Bw4" not in summary(tables, gl25, a25_bw4=True, hla_a_bw4=False).ligands


def test_single_allele_policies(tables) -> None:
    s = summary(tables, "A*01:01^B*07:02^C*07:02")
    assert s.c_group == "C1/C1"
    assert "single_allele(person C)" in s.warnings
    u = summary(tables, "A*01:01^B*07:02^C*07:02", single_allele="unknown")
    assert u.c_group is None and u.unknown["c_group"] == "single_allele"
    # propagation: an HLA-B 80I allele decides the class whatever the second one is
    u2 = summary(tables, "A*01:01+A*02:01^B*57:01^C*07:02+C*06:02", single_allele="unknown")
    assert u2.b_class == "Bw4-80I"


def test_untyped_locus(tables) -> None:
    s = summary(tables, "A*01:01+A*02:01^C*07:02+C*06:02")
    assert s.b_class is None and s.unknown["b_class"] == "hla_untyped"
    assert s.c_group == "C1/C2"
    assert "hla_untyped(person B)" in s.warnings


def test_ambiguity_propagates_when_irrelevant(tables) -> None:
    # C*07 is ambiguous, but with C*06:02 (C2) and C*07:02... the C1 question decides:
    # C*07 is ambiguous (C1/C2/unclassified): the C group and the C2 question stay
    # unknown, whatever C*07:02 adds.
    s = summary(tables, "A*01:01+A*02:01^B*07:02+B*08:01^C*07+C*07:02")
    assert s.c_group is None and s.unknown["c_group"] == "ambiguous_typing"
    assert s.ligands is None and s.unknown["ligands"] == "ambiguous_typing"
    # A fully typed HLA-C settles the ligand set.
    s1 = summary(tables, "A*01:01+A*02:01^B*07:02+B*08:01^C*07:02+C*06:02")
    assert s1.ligands == frozenset({"C1", "C2"})
    # B*44 is ambiguous (80T/Bw6/80I) but B*57:01 already gives 80I and Bw4
    s2 = summary(tables, "A*01:01+A*02:01^B*44+B*57:01^C*07:02+C*06:02")
    assert s2.b_class == "Bw4-80I"
    assert s2.ligands == frozenset({"Bw4", "C1", "C2"})


def test_gl_genotype_alternatives(tables) -> None:
    s = summary(tables, "A*01:01^B*07:02^C*07:01+C*05:01|C*07:02+C*06:02")
    assert s.c_group == "C1/C2"
    s2 = summary(tables, "A*01:01^B*07:02^C*07:01+C*05:01|C*07:02+C*07:01")
    assert s2.c_group is None
