"""Rule 14 v2: ranking criteria, policies, clinical inputs, ABO class, reasons, determinism."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kirmatch import ranking
from kirmatch.errors import InputSchemaError, UsageError
from kirmatch.ranking import (
    BUILTIN_POLICIES,
    CRITERIA,
    Candidate,
    Clinical,
    Policy,
    abo_class,
    builtin_policy,
    load_policy,
    parse_clinical,
    rank_donors,
    resolve_policy,
)

# DOMAIN.md A.15 illustration (criterion values only)
ILLUSTRATION = [
    Candidate("Da", {"dsa_tier": "none", "cf_ikir": 4}, Clinical(donor_age=34)),
    Candidate("Db", {"dsa_tier": "none", "cf_ikir": 2}, Clinical(donor_age=29)),
    Candidate("Dc", {"dsa_tier": "low", "cf_ikir": 4}, Clinical(donor_age=25)),
]


@pytest.mark.parametrize(("policy", "expected"), [
    ("kir-first", [("Da", 1, "top"), ("Db", 2, "cf_ikir: 2 vs 4"),
                   ("Dc", 3, "dsa_tier: low vs none")]),
    ("ebmt", [("Db", 1, "top"), ("Da", 2, "donor_age: 34 vs 29"),
              ("Dc", 3, "dsa_tier: low vs none")]),
    # not in A.15's table: 34, 29 and 25 are all < 35 and the HLA-level criteria
    # are unknown for all three, so CF-iKIR decides here too
    ("haplo-ptcy", [("Da", 1, "top"), ("Db", 2, "cf_ikir: 2 vs 4"),
                    ("Dc", 3, "dsa_tier: low vs none")]),
])
def test_domain_illustration(policy, expected) -> None:
    # rules v2 kir-first has donor_age_band (< 58, >= 58) before cf_ikir: the
    # three ages share a band, so the A.15 table still holds
    got = [(r.donor_id, r.rank, r.rank_reason)
           for r in rank_donors(ILLUSTRATION, builtin_policy(policy))]
    assert got == expected


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_order_independent(perm) -> None:
    cands = [ILLUSTRATION[i] for i in perm]
    got = [(r.donor_id, r.rank) for r in rank_donors(cands, builtin_policy("kir-first"))]
    assert got == [("Da", 1), ("Db", 2), ("Dc", 3)]


# ---------------------------------------------------------------------------
# One table per criterion: candidates best first, each with the rank_reason it
# gets against the candidate above it (None: equal on the criterion, so
# donor_id decides). Candidates are D0, D1, ... in that order and are ranked
# from reversed input.
# ---------------------------------------------------------------------------


def R(reason: str | None, values: dict[str, Any] | None = None, detail: str = "",
      **clinical: Any) -> tuple[str | None, dict[str, Any], str, Clinical]:
    return (reason, values or {}, detail, Clinical(**clinical))


B7 = "B7, MFI 12,500, C1q+"
CASES = [
    pytest.param("dsa_tier", {}, [
        R("top", {"dsa_tier": "none", "dsa_tier_worst": "none"}),
        R(None, {"dsa_tier": "none"}),  # no dsa_tier_worst column: the known tier stands
        R("dsa_tier: low vs none", {"dsa_tier": "low", "dsa_tier_worst": "low"}),
        R("dsa_tier: unknown (worst low) vs low", {"dsa_tier": "", "dsa_tier_worst": "low"}),
        R("dsa_tier: moderate vs unknown (worst low)", {"dsa_tier": "moderate"}),
        R(f"dsa_tier: high ({B7}) vs moderate", {"dsa_tier": "high", "dsa_tier_worst": "high"},
          B7),
        R(f"dsa_tier: unknown (worst high) vs high ({B7})",
          {"dsa_tier": "", "dsa_tier_worst": "high"}, B7),
        R("dsa_tier: very high vs unknown (worst high)", {"dsa_tier": "very high"}),
        R("dsa_tier: unknown vs very high", {"dsa_tier": ""}),
        R(None, {}),
    ], id="dsa_tier"),
    pytest.param("cf_ikir", {}, [
        R("top", {"cf_ikir": 4}),
        R("cf_ikir: 3 vs 4", {"cf_ikir": "3"}),
        R(None, {"cf_ikir": 3.0}),
        R("cf_ikir: 0 vs 3", {"cf_ikir": 0}),
        R("cf_ikir: unknown vs 0", {"cf_ikir": ""}),
        R(None, {}),
    ], id="cf_ikir"),
    pytest.param("donor_age", {}, [
        R("top", donor_age=20.5),
        R("donor_age: 50 vs 20.5", donor_age=50),
        R("donor_age: unknown vs 50"),
    ], id="donor_age"),
    pytest.param("donor_sex", {}, [
        R("top", donor_sex="M", recipient_sex="F"),
        R(None, donor_sex="M"),
        R("donor_sex: female donor to female recipient vs male donor", donor_sex="F",
          recipient_sex="F"),
        R("donor_sex: female donor to male recipient vs female donor to female recipient",
          donor_sex="F", recipient_sex="M"),
        R("donor_sex: unknown vs female donor to male recipient", donor_sex="F"),
        R(None, recipient_sex="M"),
    ], id="donor_sex"),
    pytest.param("relationship", {}, [
        R("top", relationship="child"),
        R(None, relationship="sibling"),
        R("relationship: father vs sibling", relationship="father"),
        R("relationship: mother vs father", relationship="mother"),
        R("relationship: other vs mother", relationship="other"),
        R("relationship: unknown vs other"),
    ], id="relationship"),
    pytest.param("cmv", {}, [
        R("top", donor_cmv="pos", recipient_cmv="pos"),
        R("cmv: D-/R+ vs D+/R+", donor_cmv="neg", recipient_cmv="pos"),
        R("cmv: unknown vs D-/R+", recipient_cmv="pos"),
    ], id="cmv-recipient-seropositive"),
    pytest.param("cmv", {}, [  # Fuchs 2022: D-/R- first
        R("top", donor_cmv="neg", recipient_cmv="neg"),
        R("cmv: D+/R- vs D-/R-", donor_cmv="pos", recipient_cmv="neg"),
        R("cmv: unknown vs D+/R-", donor_cmv="neg"),
    ], id="cmv-recipient-seronegative"),
    pytest.param("abo", {}, [
        R("top", donor_abo="A", recipient_abo="A"),
        R(None, donor_abo="O", recipient_abo="O"),
        R("abo: minor vs match", donor_abo="O", recipient_abo="A"),
        R("abo: major vs minor", donor_abo="A", recipient_abo="O"),
        R("abo: bidirectional vs major", donor_abo="A", recipient_abo="B"),
        R("abo: unknown vs bidirectional", donor_abo="A"),
    ], id="abo"),
    pytest.param("b_content_group", {}, [
        R("top", {"b_content_group": "Best"}),
        R("b_content_group: Better vs Best", {"b_content_group": "Better"}),
        R("b_content_group: Neutral vs Better", {"b_content_group": "Neutral"}),
        R("b_content_group: unknown vs Neutral", {"b_content_group": ""}),
    ], id="b_content_group"),
    pytest.param("donor_age_band", {"donor_age_band": [58]}, [  # kir-first
        R("top", donor_age=38),
        R(None, donor_age=57.9),
        R("donor_age_band: 58 (≥ 58) vs 57.9 (< 58)", donor_age=58),
        R(None, donor_age=72),
        R("donor_age_band: unknown vs 72 (≥ 58)"),
    ], id="donor_age_band-58"),
    pytest.param("donor_age_band", {"donor_age": [35, 45]}, [  # bands.donor_age serves too
        R("top", donor_age=30),
        R("donor_age_band: 35 (35 to < 45) vs 30 (< 35)", donor_age=35),
        R(None, donor_age=44.5),
        R("donor_age_band: 45 (≥ 45) vs 44.5 (35 to < 45)", donor_age=45),
    ], id="donor_age_band-35-45"),
    pytest.param("b_leader_match", {}, [
        R("top", {"b_leader_match": True}),
        R(None, {"b_leader_match": "true"}),
        R("b_leader_match: false vs true", {"b_leader_match": False}),
        R(None, {"b_leader_match": "false"}),
        R("b_leader_match: unknown vs false", {"b_leader_match": ""}),
        R(None, {}),
    ], id="b_leader_match"),
    pytest.param("drb1_mm_dqb1_match", {}, [
        R("top", {"drb1_mm_dqb1_match": "true"}),
        R("drb1_mm_dqb1_match: false vs true", {"drb1_mm_dqb1_match": False}),
        R("drb1_mm_dqb1_match: unknown vs false", {"drb1_mm_dqb1_match": None}),
    ], id="drb1_mm_dqb1_match"),
    pytest.param("dpb1_tce", {}, [
        R("top", {"dpb1_tce": "non-permissive GvH"}),
        R("dpb1_tce: permissive vs non-permissive GvH", {"dpb1_tce": "permissive"}),
        R(None, {"dpb1_tce": "match"}),
        R("dpb1_tce: non-permissive HvG vs match", {"dpb1_tce": "non-permissive HvG"}),
        R("dpb1_tce: unknown vs non-permissive HvG", {"dpb1_tce": ""}),
    ], id="dpb1_tce"),
    pytest.param("donor_parity", {}, [
        R("top", donor_sex="M", recipient_sex="M"),
        R(None, donor_sex="F", recipient_sex="M", donor_parity=0),
        R("donor_parity: parous donor (2 pregnancies) vs nulliparous donor", donor_sex="F",
          recipient_sex="M", donor_parity=2),
        R(None, donor_sex="F", recipient_sex="M", donor_parity=1),
        R("donor_parity: unknown vs parous donor (1 pregnancy)", donor_sex="F",
          recipient_sex="M"),
        R(None, recipient_sex="M"),
    ], id="donor_parity-male-recipient"),
    pytest.param("donor_parity", {}, [  # to a female recipient parity is not a criterion
        R("top", donor_sex="F", recipient_sex="F", donor_parity=3),
        R(None, donor_sex="F", recipient_sex="F"),
        R(None, donor_sex="M", recipient_sex="F"),
        R(None, recipient_sex="F"),
    ], id="donor_parity-female-recipient"),
    pytest.param("donor_parity", {}, [  # recipient's sex unknown: a parous donor is unknown
        R("top", donor_sex="M"),
        R(None, donor_sex="F", donor_parity=0),
        R("donor_parity: unknown vs nulliparous donor", donor_sex="F", donor_parity=1),
        R(None, donor_sex="F"),
    ], id="donor_parity-recipient-sex-unknown"),
    pytest.param("hla_relation", {}, [
        R("top", {"hla_relation": "identical"}),
        R("hla_relation: haploidentical vs identical", {"hla_relation": "haploidentical"}),
        R("hla_relation: not haploidentical vs haploidentical",
          {"hla_relation": "not haploidentical"}),
        R("hla_relation: unknown vs not haploidentical", {"hla_relation": ""}),
    ], id="hla_relation"),
    pytest.param("donor_id", {}, [R("top"), R("donor_id: D1 vs D0")], id="donor_id"),
]


@pytest.mark.parametrize(("criterion", "bands", "rows"), CASES)
def test_criterion_order(criterion, bands, rows) -> None:
    policy = Policy("t", (criterion,), bands=bands)
    cands = [Candidate(f"D{i}", values, clinical, detail)
             for i, (_, values, detail, clinical) in enumerate(rows)]
    got = [(r.donor_id, r.rank, r.rank_reason)
           for r in rank_donors(cands[::-1], policy)]
    want = [(f"D{i}", i + 1, reason or f"donor_id: D{i} vs D{i - 1}")
            for i, (reason, _, _, _) in enumerate(rows)]
    assert got == want


def test_every_criterion_has_a_table() -> None:
    """Completeness: each name of the A.15 table has an order case (non-vacuous)."""
    tested = {p.values[0] for p in CASES}
    assert tested == set(CRITERIA)
    assert tuple(ranking._CRITERION_FUNCTIONS) == CRITERIA  # one function per criterion
    assert len(CRITERIA) == 15 and CRITERIA[-1] == "donor_id"


def test_numbers_rank_before_strings_of_one_criterion(monkeypatch) -> None:
    """Keys of one criterion that are numbers for some donors and strings for
    others never compare with each other: the numbers come first."""
    def mixed(cand: Candidate, policy: Policy) -> Any:
        k = cand.values["k"]
        return ranking._Value(k, str(k))

    monkeypatch.setitem(ranking._CRITERION_FUNCTIONS, "cf_ikir", mixed)
    cands = [Candidate(d, {"k": k}, Clinical()) for d, k in
             (("A", "b"), ("B", 2), ("C", "a"), ("D", 1), ("E", 1))]
    got = [(r.donor_id, r.rank_reason) for r in rank_donors(cands, Policy("t", ("cf_ikir",)))]
    assert got == [("D", "top"), ("E", "donor_id: E vs D"), ("B", "cf_ikir: 2 vs 1"),
                   ("C", "cf_ikir: a vs 2"), ("A", "cf_ikir: b vs a")]


def test_vocabulary_words_are_plain() -> None:
    """A cell that is already a word of its vocabulary is taken as it is: no word
    is blank or padded (the cell is otherwise stripped and checked for blanks)."""
    from kirmatch.tabular import is_blank

    for order in (ranking._DSA_KEY, ranking._BCONTENT_KEY, ranking._BOOL_KEY,
                  ranking._DPB1_TCE_KEY, ranking._HLA_RELATION_KEY):
        assert all(w == w.strip() and not is_blank(w) for w in order), order


def test_shown_numbers_as_given() -> None:
    """A number is shown as it was given, whatever was ranked before it (-0 too)."""
    pol = Policy("t", ("donor_age",))
    for ages in ((0.0, -0.0), (-0.0, 0.0)):
        cands = [Candidate("A", {}, Clinical(donor_age=ages[0])),
                 Candidate("B", {}, Clinical(donor_age=ages[1])),
                 Candidate("C", {}, Clinical(donor_age=5.0))]
        got = [r.rank_reason for r in rank_donors(cands, pol)]
        assert got == ["top", "donor_id: B vs A", f"donor_age: 5 vs {ages[1]:g}"]


def test_donor_id_is_code_point_order() -> None:
    cands = [Candidate(i, {}, Clinical()) for i in ("b", "B", "a", "A9", "A10")]
    got = [r.donor_id for r in rank_donors(cands, Policy("t", ("donor_id",)))]
    assert got == ["A10", "A9", "B", "a", "b"]


@pytest.mark.parametrize(("criterion", "clinical", "missing"), [
    ("donor_age", Clinical(), ("donor_age",)),
    ("donor_age_band", Clinical(), ("donor_age",)),
    ("donor_sex", Clinical(), ("donor_sex", "recipient_sex")),
    ("donor_sex", Clinical(donor_sex="F"), ("recipient_sex",)),
    ("donor_sex", Clinical(donor_sex="M"), ()),
    ("donor_parity", Clinical(donor_sex="F", recipient_sex="M"), ("donor_parity",)),
    ("donor_parity", Clinical(recipient_sex="M"), ("donor_parity", "donor_sex")),
    ("donor_parity", Clinical(donor_parity=2), ("recipient_sex",)),
    ("donor_parity", Clinical(donor_sex="M"), ()),
    ("donor_parity", Clinical(recipient_sex="F"), ()),  # parity does not enter
    ("relationship", Clinical(), ("relationship",)),
    ("cmv", Clinical(recipient_cmv="neg"), ("donor_cmv",)),
    ("cmv", Clinical(donor_cmv="neg"), ("recipient_cmv",)),
    ("abo", Clinical(donor_abo="A"), ("recipient_abo",)),
    ("abo", Clinical(), ("donor_abo", "recipient_abo")),
    # pair columns are not clinical inputs: the engine warns for them
    ("dsa_tier", Clinical(), ()),
    ("hla_relation", Clinical(), ()),
])
def test_clinical_unknown_fields(criterion, clinical, missing) -> None:
    pol = Policy("t", (criterion,), bands={"donor_age": [58]})
    [got] = rank_donors([Candidate("D", {}, clinical)], pol)
    assert got.clinical_unknown == tuple(sorted(missing))


@pytest.mark.parametrize(("criterion", "values", "match"), [
    ("dpb1_tce", {"dpb1_tce": "permisive"}, "dpb1_tce of donor 'D' is 'permisive'"),
    ("hla_relation", {"hla_relation": "haplo"}, "hla_relation of donor 'D' is 'haplo'"),
    ("b_leader_match", {"b_leader_match": "yes"}, "b_leader_match of donor 'D' is 'yes'"),
    ("b_content_group", {"b_content_group": "best"}, "b_content_group of donor 'D' is 'best'"),
    ("dsa_tier", {"dsa_tier": "medium"}, "dsa_tier of donor 'D' is 'medium'"),
    ("dsa_tier", {"dsa_tier_worst": "High"}, "dsa_tier_worst of donor 'D' is 'High'"),
    ("cf_ikir", {"cf_ikir": "four"}, "cf_ikir of donor 'D' is 'four', not a number"),
    ("cf_ikir", {"cf_ikir": "inf"}, "cf_ikir of donor 'D' is 'inf', not a number"),
    ("cf_ikir", {"cf_ikir": True}, "cf_ikir of donor 'D' is True, not a number"),
    # the worst tier equals the tier whenever the tier is known (rule 13)
    ("dsa_tier", {"dsa_tier": "none", "dsa_tier_worst": "high"},
     "dsa_tier_worst 'high' differs from the known dsa_tier 'none'"),
])
def test_values_outside_the_vocabulary_are_errors(criterion, values, match) -> None:
    with pytest.raises(UsageError, match=match):
        rank_donors([Candidate("D", values, Clinical())], Policy("t", (criterion,)))


# ---------------------------------------------------------------------------
# Built-in policies
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "criteria", "bands"), [
    ("kir-first", ("dsa_tier", "donor_age_band", "cf_ikir", "donor_age", "donor_sex",
                   "donor_parity", "relationship", "cmv", "abo", "b_content_group",
                   "donor_id"), {"donor_age_band": (58.0,)}),
    ("haplo-ptcy", ("dsa_tier", "donor_age_band", "b_leader_match", "drb1_mm_dqb1_match",
                    "dpb1_tce", "cmv", "donor_sex", "donor_parity", "relationship", "abo",
                    "cf_ikir", "donor_age", "donor_id"), {"donor_age_band": (35.0,)}),
    ("ebmt", ("dsa_tier", "donor_age", "donor_sex", "donor_parity", "relationship", "cmv",
              "abo", "cf_ikir", "b_content_group", "donor_id"), {}),
])
def test_builtin_policies_are_those_of_a15(name, criteria, bands) -> None:
    p = resolve_policy(name)
    assert (p.name, p.criteria, p.bands, p.direction) == (name, criteria, bands, {})
    assert p.to_dict()["source"] == "built-in"


def test_builtin_names() -> None:
    assert BUILTIN_POLICIES == ("kir-first", "haplo-ptcy", "ebmt")


V1_KIR_FIRST = Policy("v1 kir-first", ("dsa_tier", "cf_ikir", "donor_age", "donor_sex",
                                       "relationship", "cmv", "abo", "b_content_group"))
# A.15's motivation: a 72-year-old father with one more inhibitory KIR (CF-iKIR 4)
# than a 38-year-old brother (3); the brother carries the HLA-B leader match.
FAMILY = [
    Candidate("father", {"dsa_tier": "none", "cf_ikir": 4, "b_leader_match": False,
                         "hla_relation": "haploidentical"},
              Clinical(donor_age=72, donor_sex="M", recipient_sex="M", relationship="father")),
    Candidate("brother", {"dsa_tier": "none", "cf_ikir": 3, "b_leader_match": True,
                          "hla_relation": "haploidentical"},
              Clinical(donor_age=38, donor_sex="M", recipient_sex="M", relationship="sibling")),
]


@pytest.mark.parametrize(("policy", "expected"), [
    (builtin_policy("kir-first"),
     [("brother", "top"), ("father", "donor_age_band: 72 (≥ 58) vs 38 (< 58)")]),
    (V1_KIR_FIRST, [("father", "top"), ("brother", "cf_ikir: 3 vs 4")]),  # what v1 did
    (builtin_policy("ebmt"), [("brother", "top"), ("father", "donor_age: 72 vs 38")]),
    # both are >= 35: the HLA-B leader decides under haplo-ptcy
    (builtin_policy("haplo-ptcy"),
     [("brother", "top"), ("father", "b_leader_match: false vs true")]),
], ids=["kir-first", "v1", "ebmt", "haplo-ptcy"])
def test_family_72_year_old_father(policy, expected) -> None:
    assert [(r.donor_id, r.rank_reason) for r in rank_donors(FAMILY, policy)] == expected


def _siblings(recipient: dict[str, Any], *donors: dict[str, Any]) -> list[Candidate]:
    base = {"donor_age": 40, "relationship": "sibling", "donor_abo": "O", "recipient_abo": "O"}
    return [Candidate(f"S{i}", {"dsa_tier": "none", "cf_ikir": 3, "b_content_group": "Best"},
                      Clinical(**{**base, **recipient, **d})) for i, d in enumerate(donors)]


@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_cmv_negative_recipient_prefers_negative_donor(name) -> None:
    cands = _siblings({"recipient_cmv": "neg", "recipient_sex": "F"},
                      {"donor_cmv": "pos", "donor_sex": "M"},
                      {"donor_cmv": "neg", "donor_sex": "M"})
    got = [(r.donor_id, r.rank_reason) for r in rank_donors(cands, builtin_policy(name))]
    assert got == [("S1", "top"), ("S0", "cmv: D+/R- vs D-/R-")]


@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_parity_to_a_male_recipient(name) -> None:
    sisters = ({"donor_sex": "F", "donor_parity": 3, "donor_cmv": "pos"},
               {"donor_sex": "F", "donor_parity": 0, "donor_cmv": "pos"})
    male = _siblings({"recipient_sex": "M", "recipient_cmv": "pos"}, *sisters)
    got = [(r.donor_id, r.rank_reason) for r in rank_donors(male, builtin_policy(name))]
    assert got == [("S1", "top"),
                   ("S0", "donor_parity: parous donor (3 pregnancies) vs nulliparous donor")]
    # to a female recipient the sisters are equal: the donor id decides
    female = _siblings({"recipient_sex": "F", "recipient_cmv": "pos"}, *sisters)
    got = [(r.donor_id, r.rank_reason) for r in rank_donors(female, builtin_policy(name))]
    assert got == [("S0", "top"), ("S1", "donor_id: S1 vs S0")]


@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_not_haploidentical_donor_is_ranked_not_hidden(name) -> None:
    # a donor sharing no haplotype keeps its rank under every built-in policy:
    # hla_relation is reported (and warned by rule 16), never a filter
    cands = [Candidate("odd", {"dsa_tier": "none", "cf_ikir": 4,
                               "hla_relation": "not haploidentical"}, Clinical(donor_age=30)),
             Candidate("haplo", {"dsa_tier": "none", "cf_ikir": 2,
                                 "hla_relation": "haploidentical"}, Clinical(donor_age=30))]
    got = rank_donors(cands, builtin_policy(name))
    assert sorted((r.donor_id, r.rank) for r in got) == [("haplo", 2), ("odd", 1)]
    # a user policy that asks for it ranks it after haploidentical donors
    mine = Policy("mine", ("dsa_tier", "hla_relation", "cf_ikir"))
    assert [(r.donor_id, r.rank_reason) for r in rank_donors(cands, mine)] == [
        ("haplo", "top"), ("odd", "hla_relation: not haploidentical vs haploidentical")]


def test_error_rows_follow_unranked() -> None:
    cands = [Candidate("A", {}, Clinical(), error="x"), Candidate("B", {}, Clinical())]
    got = rank_donors(cands, builtin_policy("kir-first"))
    assert [(g.donor_id, g.rank) for g in got] == [("B", 1), ("A", None)]


# ---------------------------------------------------------------------------
# Row-order independence and the reason invariant (Hypothesis)
# ---------------------------------------------------------------------------

COLUMN_VALUES = {
    "dsa_tier": ["none", "low", "moderate", "high", "very high", ""],
    "cf_ikir": [0, 1, 2, "3", 4, ""],
    "b_content_group": ["Best", "Better", "Neutral", ""],
    "b_leader_match": [True, False, "true", "false", ""],
    "drb1_mm_dqb1_match": [True, False, ""],
    "dpb1_tce": ["match", "permissive", "non-permissive GvH", "non-permissive HvG", ""],
    "hla_relation": ["identical", "haploidentical", "not haploidentical", ""],
}
WORSE = {"none": ["none"], "low": ["low"], "moderate": ["moderate"], "high": ["high"],
         "very high": ["very high"], "": ["", "low", "moderate", "high", "very high"]}


@st.composite
def candidate(draw, donor_id: str) -> Candidate:
    values = {c: draw(st.sampled_from(v)) for c, v in COLUMN_VALUES.items()
              if draw(st.booleans())}
    tier = values.get("dsa_tier", "")
    if draw(st.booleans()):  # a worst tier consistent with rule 13
        values["dsa_tier_worst"] = draw(st.sampled_from(WORSE[tier]))
    sex = draw(st.sampled_from(["M", "F", None]))
    clinical = Clinical(
        donor_age=draw(st.sampled_from([None, 20, 34.5, 35, 57, 58, 70])),
        donor_sex=sex, recipient_sex=draw(st.sampled_from(["M", "F", None])),
        relationship=draw(st.sampled_from(["child", "sibling", "father", "mother", "other",
                                           None])),
        donor_cmv=draw(st.sampled_from(["pos", "neg", None])),
        recipient_cmv=draw(st.sampled_from(["pos", "neg", None])),
        donor_abo=draw(st.sampled_from(["O", "A", "B", "AB", None])),
        recipient_abo=draw(st.sampled_from(["O", "A", "B", "AB", None])),
        donor_parity=None if sex == "M" else draw(st.sampled_from([None, 0, 1, 4])))
    return Candidate(donor_id, values, clinical, draw(st.sampled_from(["", "B7, MFI 9,000"])))


@st.composite
def cohort(draw) -> tuple[list[Candidate], Policy]:
    ids = draw(st.lists(st.text("ABab12", min_size=1, max_size=3), min_size=1, max_size=8,
                        unique=True))
    cands = [draw(candidate(i)) for i in ids]
    if draw(st.booleans()):
        return cands, builtin_policy(draw(st.sampled_from(BUILTIN_POLICIES)))
    crit = draw(st.permutations(CRITERIA[:-1]))[:draw(st.integers(1, len(CRITERIA) - 1))]
    direction = {c: draw(st.sampled_from(["asc", "desc"])) for c in ("cf_ikir", "donor_age")
                 if draw(st.booleans())}
    return cands, Policy("random", tuple(crit), direction,
                         {"donor_age": (35, 58), "cf_ikir": (2,)})


@settings(max_examples=200, deadline=None)
@given(cohort(), st.randoms(use_true_random=False))
def test_ranking_is_row_order_independent(data, rnd) -> None:
    cands, policy = data
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    first = rank_donors(cands, policy)
    assert rank_donors(shuffled, policy) == first
    # nobody is hidden, ranks are 1..n
    assert sorted(r.donor_id for r in first) == sorted(c.donor_id for c in cands)
    assert [r.rank for r in first] == list(range(1, len(cands) + 1))
    # each reason names the first criterion on which this donor is worse than the
    # one above, and every earlier criterion is equal
    for above, this in itertools.pairwise(first):
        name = this.rank_reason.split(":")[0]
        i = policy.criteria.index(name)
        assert this.keys[:i] == above.keys[:i] and this.keys[i] > above.keys[i]


# ---------------------------------------------------------------------------
# Clinical inputs and ABO
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "r", "cls"), [
    ("O", "O", "match"), ("A", "A", "match"), ("O", "AB", "minor"), ("AB", "O", "major"),
    ("A", "B", "bidirectional"), ("B", "AB", "minor"), ("AB", "A", "major"), (None, "A", None),
])
def test_abo(d, r, cls) -> None:
    assert abo_class(d, r) == cls


def test_parse_clinical() -> None:
    c = parse_clinical({"donor_age": "34", "donor_sex": "f", "recipient_sex": "M",
                        "relationship": "Sibling", "donor_cmv": "POS", "recipient_cmv": "",
                        "donor_abo": "ab", "recipient_abo": "O", "donor_parity": "2"})
    assert (c.donor_age, c.donor_sex, c.relationship, c.donor_cmv, c.recipient_cmv, c.abo,
            c.donor_parity) == (34.0, "F", "sibling", "pos", None, "major", 2)
    assert parse_clinical({"donor_sex": "M", "donor_parity": "0"}).donor_parity == 0


@pytest.mark.parametrize(("row", "column"), [
    ({"relationship": "cousin"}, "relationship"),
    ({"donor_sex": "X"}, "donor_sex"),
    ({"donor_age": "old"}, "donor_age"),
    ({"donor_age": "-3"}, "donor_age"),
    ({"donor_age": "1e309"}, "donor_age"),     # quoted as written, not as inf
    ({"donor_age": "130"}, "donor_age"),
    ({"donor_abo": "C"}, "donor_abo"),
    ({"recipient_cmv": "maybe"}, "recipient_cmv"),
    ({"donor_parity": "-1"}, "donor_parity"),
    # pregnancies for a male donor: one of the two cells is wrong, so neither is guessed
    ({"donor_sex": "M", "donor_parity": "2"}, "donor_parity"),
])
def test_parse_clinical_rejects(row, column) -> None:
    with pytest.raises(InputSchemaError) as info:
        parse_clinical(row)
    assert info.value.column == column
    assert str(next(iter(row.values()))) in str(info.value) or "negative" in str(info.value)


#: Cells of each clinical column: understood (listed thrice, so most rows are
#: accepted), then blank, then rejected ones.
_CLINICAL_CELLS = {
    "donor_age": ["34", " 41 ", "1e1", "57.99", "0"] * 3 + ["", "NA", "-1", "130", "old", "inf"],
    "donor_parity": ["0", "2", "2.0", "2.5"] * 3 + ["", "n/a", "-1", "x"],
    "donor_sex": ["M", "f", " male "] * 3 + ["", "X"],
    "recipient_sex": ["F", "Male"] * 3 + ["", "q"],
    "relationship": ["child", "brother", "Half Sister"] * 3 + ["", "uncle"],
    "donor_cmv": ["pos", "-"] * 3 + ["", "maybe"],
    "recipient_cmv": ["NEG", "+"] * 3 + ["", "?"],
    "donor_abo": ["O", "ab"] * 3 + ["", "C"],
    "recipient_abo": ["A", "b"] * 3 + ["", "0"],
}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.fixed_dictionaries({c: st.sampled_from(v)
                                       for c, v in _CLINICAL_CELLS.items()}), max_size=30),
       st.sets(st.sampled_from(sorted(_CLINICAL_CELLS))))
def test_clinical_rows_are_parse_clinical(rows, absent) -> None:
    """A pairs table's clinical columns read once per distinct cell give, row for
    row, parse_clinical's Clinical, and reject the rows parse_clinical rejects."""
    rows = [{c: v for c, v in r.items() if c not in absent} for r in rows]
    columns = {c: [r[c] for r in rows] for c in _CLINICAL_CELLS if c not in absent}
    got, rejected, understood = ranking._clinical_rows(columns, len(rows))
    assert len(got) == len(rows) and set(understood) == set(columns)
    for j, row in enumerate(rows):
        try:
            want = parse_clinical(row)
        except InputSchemaError:
            assert j in rejected and got[j] is None
        else:
            assert j not in rejected and got[j] == want
            for c in columns:   # the cell as read: 34.0 -> 34, male -> M, blank as given
                v = getattr(want, c)
                assert understood[c][j] == (row[c] if v is None else f"{v:g}"
                                            if isinstance(v, float) else str(v))


def test_unknown_reasons_read_when_asked() -> None:
    ws = ("gene_level_kir(donor KIR2DL1)", "unknown(kir2dl1_245: gene_level_kir)",
          "unknown(dsa_tier: no_antibody_data)", "unknown(x)")
    reasons = ranking._Reasons(ws)
    assert reasons == {"kir2dl1_245": "gene_level_kir", "dsa_tier": "no_antibody_data"}
    assert reasons.get("dsa_tier") == "no_antibody_data" and "cf_ikir" not in reasons
    assert repr(reasons) == repr(dict(reasons)) and len(reasons) == 2


def test_clinical_rows_examples() -> None:
    columns = {"donor_age": ["34", "", "old", "40"], "donor_sex": ["female", "M", "F", "M"],
               "donor_parity": ["2", "0", "", "1"]}
    got, rejected, understood = ranking._clinical_rows(columns, 4)
    assert rejected == [2, 3]       # an age that is not a number; a male donor's pregnancy
    assert understood == {"donor_age": ["34", "", "old", "40"], "donor_sex": ["F", "M", "F", "M"],
                          "donor_parity": ["2", "0", "", "1"]}
    assert got[:2] == [Clinical(donor_age=34.0, donor_sex="F", donor_parity=2),
                       Clinical(donor_sex="M", donor_parity=0)]
    assert got[2:] == [None, None]


# ---------------------------------------------------------------------------
# User policies (TOML)
# ---------------------------------------------------------------------------


def test_policy_file(tmp_path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('[policy]\nname = "centre-2026"\ncriteria = ["dsa_tier", "donor_age", '
                 '"cf_ikir", "b_content_group"]\n[policy.bands]\ndonor_age = [35, 45]\n')
    p = load_policy(f)
    assert p.criteria == ("dsa_tier", "donor_age", "cf_ikir", "b_content_group", "donor_id")
    assert p.sha256 and p.name == "centre-2026"
    # age bands: 30 and 34 are equal, so CF-iKIR decides
    cands = [Candidate("Y", {"dsa_tier": "none", "cf_ikir": 2}, Clinical(donor_age=30)),
             Candidate("Z", {"dsa_tier": "none", "cf_ikir": 3}, Clinical(donor_age=34)),
             Candidate("X", {"dsa_tier": "none", "cf_ikir": 4}, Clinical(donor_age=40))]
    got = rank_donors(cands, p)
    assert [(g.donor_id, g.rank_reason) for g in got] == [
        ("Z", "top"), ("Y", "cf_ikir: 2 vs 3"), ("X", "donor_age: 40 (35 to < 45) vs 30 (< 35)")]
    assert resolve_policy(str(f)).name == "centre-2026"


def _toml(tmp_path, criteria: list[str], tables: str = "") -> Policy:
    f = tmp_path / "p.toml"
    f.write_text(f'[policy]\nname = "t"\ncriteria = {criteria!r}\n'.replace("'", '"') + tables)
    return load_policy(f)


def test_policy_file_with_every_criterion(tmp_path) -> None:
    p = _toml(tmp_path, list(CRITERIA),
              "[policy.bands]\ndonor_age_band = [58]\ncf_ikir = [2]\n"
              '[policy.direction]\ncf_ikir = "desc"\ndonor_age = "asc"\n'
              'donor_age_band = "asc"\n')
    assert p.criteria == CRITERIA
    got = rank_donors(FAMILY, p)
    # CF-iKIR 4 and 3 share the band >= 2, so the exact age decides
    assert [(r.donor_id, r.rank_reason) for r in got] == [
        ("brother", "top"), ("father", "donor_age: 72 vs 38")]


@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_builtin_policies_written_as_toml_rank_the_same(tmp_path, name) -> None:
    b = builtin_policy(name)
    bands = "".join(f"{k} = {list(v)}\n" for k, v in b.bands.items())
    p = _toml(tmp_path, list(b.criteria), "[policy.bands]\n" + bands if bands else "")
    cands = [*FAMILY, *ILLUSTRATION, *_siblings({"recipient_sex": "M"}, {"donor_parity": 2})]
    assert [(r.donor_id, r.rank_reason) for r in rank_donors(cands, p)] == [
        (r.donor_id, r.rank_reason) for r in rank_donors(cands, b)]


@pytest.mark.parametrize(("bands", "expected"), [
    # bands.donor_age serves donor_age_band and bands donor_age as well: equal
    # twice, so CF-iKIR decides
    ("donor_age = [40]", [("A", "top"), ("B", "cf_ikir: 2 vs 3")]),
    # bands.donor_age_band leaves donor_age exact
    ("donor_age_band = [40]", [("B", "top"), ("A", "donor_age: 35 vs 30")]),
])
def test_age_band_keys(tmp_path, bands, expected) -> None:
    p = _toml(tmp_path, ["donor_age_band", "donor_age", "cf_ikir"], f"[policy.bands]\n{bands}\n")
    cands = [Candidate("A", {"cf_ikir": 3}, Clinical(donor_age=35)),
             Candidate("B", {"cf_ikir": 2}, Clinical(donor_age=30))]
    assert [(r.donor_id, r.rank_reason) for r in rank_donors(cands, p)] == expected


def test_direction_reverses_a_band(tmp_path) -> None:
    p = _toml(tmp_path, ["donor_age_band"],
              '[policy.bands]\ndonor_age = [40]\n[policy.direction]\ndonor_age_band = "desc"\n')
    cands = [Candidate("young", {}, Clinical(donor_age=30)),
             Candidate("old", {}, Clinical(donor_age=50))]
    assert [(r.donor_id, r.rank_reason) for r in rank_donors(cands, p)] == [
        ("old", "top"), ("young", "donor_age_band: 30 (< 40) vs 50 (≥ 40)")]


P = '[policy]\nname = "x"\n'


@pytest.mark.parametrize(("text", "match"), [
    (P + 'criteria = ["dsa_tier", "height"]\n', "unknown criterion 'height'"),
    (P + 'criteria = ["cf_ikir", "cf_ikir"]\n', "criterion 'cf_ikir' listed twice"),
    (P + 'criteria = ["donor_id", "abo"]\n',
     "'donor_id' is unique per recipient, so it must be the last criterion .it would hide abo"),
    (P + "criteria = []\n", "non-empty list of names, not \\[\\]"),
    (P + 'criteria = "abo"\n', "non-empty list of names, not 'abo'"),
    ('[policy]\ncriteria = ["cf_ikir"]\n', "name must be a non-empty string, not None"),
    (P + 'criteria = ["cf_ikir"]\ncolour = "red"\n', "unknown key.s. in \\[policy\\]: colour"),
    (P + 'criteria = ["cf_ikir"]\n[policy.bands]\ndonor_age = [40, 30]\n',
     "\\[policy.bands\\] donor_age = \\[40, 30\\]: must be strictly increasing"),
    (P + 'criteria = ["cf_ikir"]\n[policy.direction]\ncf_ikir = "up"\n',
     "\\[policy.direction\\] cf_ikir = 'up': must be 'asc' or 'desc'"),
    (P + 'criteria = ["abo"]\n[policy.direction]\nabo = "asc"\n',
     "\\[policy.direction\\] abo = 'asc': direction only applies to cf_ikir, donor_age, "
     "donor_age_band"),
    (P + 'criteria = ["cf_ikir"]\n[policy.bands]\nabo = [1]\n',
     "\\[policy.bands\\] abo = \\[1\\]: bands only apply"),
    (P + 'criteria = ["donor_age"]\n[policy.bands]\ndonor_age = 40\n',
     "\\[policy.bands\\] donor_age = 40: must be a non-empty list of numbers"),
    (P + 'criteria = ["donor_age"]\n[policy.bands]\ndonor_age = [true]\n',
     "\\[policy.bands\\] donor_age = \\[True\\]: must be a non-empty list of numbers"),
    # A NaN band would silently switch the criterion off (every comparison false).
    (P + 'criteria = ["donor_age"]\n[policy.bands]\ndonor_age = [nan]\n',
     "must be finite numbers, not nan"),
    (P + 'criteria = ["donor_age"]\n[policy.bands]\ndonor_age = [30, inf]\n',
     "must be finite numbers, not inf"),
    (P + 'criteria = ["dsa_tier", "donor_age_band"]\n',
     "'donor_age_band' needs age bands: \\[policy.bands\\] donor_age"),
    (P + 'criteria = ["dsa_tier", "donor_age_band", "cf_ikir"]\n[policy.bands]\ncf_ikir = [2]\n',
     "'donor_age_band' needs age bands"),
    # a direction or band for a criterion the policy does not use would be ignored
    (P + 'criteria = ["cf_ikir"]\n[policy.direction]\ndonor_age = "desc"\n',
     "\\[policy.direction\\] donor_age: 'donor_age' is not one of the policy's criteria"),
    (P + 'criteria = ["cf_ikir"]\n[policy.bands]\ndonor_age = [40]\n',
     "\\[policy.bands\\] donor_age: 'donor_age' is not one of the policy's criteria"),
    (P + 'criteria = ["abo"]\ndirection = "asc"\n', "\\[policy.direction\\] must be a table"),
    ("[policy\nname=", "not valid TOML"),
    ('name = "x"\n', "missing \\[policy\\]"),
])
def test_policy_file_errors(tmp_path, text, match) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UsageError, match=match) as info:
        load_policy(f)
    assert str(f) in str(info.value)


def test_unknown_builtin() -> None:
    with pytest.raises(UsageError, match="unknown ranking policy 'fastest': use kir-first, "
                                         "haplo-ptcy, ebmt or a TOML file"):
        resolve_policy("fastest")
