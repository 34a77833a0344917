"""Rule 14: ranking policies, clinical inputs, ABO class, reasons, determinism."""

from __future__ import annotations

import itertools

import pytest

from kirmatch.errors import InputSchemaError, UsageError
from kirmatch.ranking import (
    Candidate,
    Clinical,
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
])
def test_domain_illustration(policy, expected) -> None:
    got = [(r.donor_id, r.rank, r.rank_reason)
           for r in rank_donors(ILLUSTRATION, builtin_policy(policy))]
    assert got == expected


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_order_independent(perm) -> None:
    cands = [ILLUSTRATION[i] for i in perm]
    got = [(r.donor_id, r.rank) for r in rank_donors(cands, builtin_policy("kir-first"))]
    assert got == [("Da", 1), ("Db", 2), ("Dc", 3)]


@pytest.mark.parametrize(("criterion", "better", "worse", "reason"), [
    ("dsa_tier", {"dsa_tier": "high"}, {"dsa_tier": "very high"},
     "dsa_tier: very high vs high"),
    ("dsa_tier", {"dsa_tier": "very high"}, {"dsa_tier": ""}, "dsa_tier: unknown vs very high"),
    ("cf_ikir", {"cf_ikir": 0}, {"cf_ikir": ""}, "cf_ikir: unknown vs 0"),
    ("b_content_group", {"b_content_group": "Better"}, {"b_content_group": "Neutral"},
     "b_content_group: Neutral vs Better"),
])
def test_value_orders(criterion, better, worse, reason) -> None:
    pol = load_policy_inline(criterion)
    r = rank_donors([Candidate("Z", worse, Clinical()), Candidate("Y", better, Clinical())], pol)
    assert [x.donor_id for x in r] == ["Y", "Z"]
    assert r[1].rank_reason == reason


def load_policy_inline(criterion: str):
    from kirmatch.ranking import Policy

    return Policy("t", (criterion, "donor_id"))


@pytest.mark.parametrize(("criterion", "clinicals", "order"), [
    ("donor_sex", [Clinical(donor_sex="F", recipient_sex="M"),
                   Clinical(donor_sex="F", recipient_sex="F"), Clinical(donor_sex="M"),
                   Clinical()], [2, 1, 0, 3]),
    ("relationship", [Clinical(relationship="other"), Clinical(relationship="mother"),
                      Clinical(relationship="father"), Clinical(relationship="child"),
                      Clinical()], [3, 2, 1, 0, 4]),
    ("cmv", [Clinical(recipient_cmv="pos", donor_cmv="neg"),
             Clinical(recipient_cmv="pos", donor_cmv="pos"),
             Clinical(recipient_cmv="pos")], [1, 0, 2]),
    ("abo", [Clinical(donor_abo="A", recipient_abo="B"), Clinical(donor_abo="A",
                                                                   recipient_abo="O"),
             Clinical(donor_abo="O", recipient_abo="A"), Clinical(donor_abo="A",
                                                                   recipient_abo="A"),
             Clinical(donor_abo="A")], [3, 2, 1, 0, 4]),
    ("donor_age", [Clinical(donor_age=50), Clinical(), Clinical(donor_age=20.5)], [2, 0, 1]),
])
def test_clinical_orders(criterion, clinicals, order) -> None:
    cands = [Candidate(f"D{i}", {}, c) for i, c in enumerate(clinicals)]
    got = rank_donors(cands, load_policy_inline(criterion))
    assert [g.donor_id for g in got] == [f"D{i}" for i in order]


def test_cmv_negative_recipient_is_neutral() -> None:
    cands = [Candidate("D2", {}, Clinical(recipient_cmv="neg", donor_cmv="pos")),
             Candidate("D1", {}, Clinical(recipient_cmv="neg", donor_cmv="neg"))]
    got = rank_donors(cands, load_policy_inline("cmv"))
    assert [g.donor_id for g in got] == ["D1", "D2"]
    assert got[1].rank_reason == "donor_id: D2 vs D1"


def test_error_rows_follow_unranked() -> None:
    cands = [Candidate("A", {}, Clinical(), error="x"), Candidate("B", {}, Clinical())]
    got = rank_donors(cands, builtin_policy("kir-first"))
    assert [(g.donor_id, g.rank) for g in got] == [("B", 1), ("A", None)]


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


def test_policy_file(tmp_path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('[policy]\nname = "centre-2026"\ncriteria = ["dsa_tier", "donor_age", '
                 '"cf_ikir", "b_content_group"]\n[policy.bands]\ndonor_age = [35, 45]\n')
    p = load_policy(f)
    assert p.criteria == ("dsa_tier", "donor_age", "cf_ikir", "b_content_group", "donor_id")
    assert p.sha256 and p.name == "centre-2026"
    # age bands: 30 and 34 are equal, so CF-iKIR decides
    cands = [Candidate("Y", {"dsa_tier": "none", "cf_ikir": 2}, Clinical(donor_age=30)),
             Candidate("Z", {"dsa_tier": "none", "cf_ikir": 3}, Clinical(donor_age=34))]
    got = rank_donors(cands, p)
    assert [g.donor_id for g in got] == ["Z", "Y"]
    assert got[1].rank_reason == "cf_ikir: 2 vs 3"
    assert resolve_policy(str(f)).name == "centre-2026"


@pytest.mark.parametrize(("text", "match"), [
    ('[policy]\nname = "x"\ncriteria = ["dsa_tier", "height"]\n', "unknown criterion 'height'"),
    ('[policy]\nname = "x"\ncriteria = ["cf_ikir", "cf_ikir"]\n', "listed twice"),
    ('[policy]\nname = "x"\ncriteria = []\n', "non-empty list"),
    ('[policy]\ncriteria = ["cf_ikir"]\n', "name"),
    ('[policy]\nname = "x"\ncriteria = ["cf_ikir"]\ncolour = "red"\n', "unknown key"),
    ('[policy]\nname = "x"\ncriteria = ["cf_ikir"]\n[policy.bands]\ndonor_age = [40, 30]\n',
     "strictly increasing"),
    ('[policy]\nname = "x"\ncriteria = ["cf_ikir"]\n[policy.direction]\ncf_ikir = "up"\n',
     "'asc' or 'desc'"),
    ('[policy]\nname = "x"\ncriteria = ["cf_ikir"]\n[policy.bands]\nabo = [1]\n',
     "bands only apply"),
    # A NaN band would silently switch the criterion off (every comparison false).
    ('[policy]\nname = "x"\ncriteria = ["donor_age"]\n[policy.bands]\ndonor_age = [nan]\n',
     "must be finite numbers, not nan"),
    ('[policy]\nname = "x"\ncriteria = ["donor_age"]\n[policy.bands]\ndonor_age = [30, inf]\n',
     "must be finite numbers, not inf"),
    ("[policy\nname=", "not valid TOML"),
    ('name = "x"\n', "missing \\[policy\\]"),
])
def test_policy_file_errors(tmp_path, text, match) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UsageError, match=match):
        load_policy(f)


def test_unknown_builtin() -> None:
    with pytest.raises(UsageError, match="unknown ranking policy"):
        resolve_policy("fastest")
